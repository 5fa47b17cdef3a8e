"""`autellix compare --jobs`: sweep points in worker processes, results as a serial run."""

from typer.testing import CliRunner

from autellix.cli.app import app

runner = CliRunner()


def _compare(tmp_path, name, jobs):
    r = runner.invoke(app, ["compare", "--workload", "mixed", "--n", "16", "--loads", "0.8,2.4",
                            "--policies", "fcfs,atlas,las", "--max-num-seqs", "8",
                            "--jobs", str(jobs), "--out", str(tmp_path), "--name", name])
    assert r.exit_code == 0, r.output
    return tmp_path / name


def test_two_workers_write_the_same_summary_and_records_as_one(tmp_path):
    serial, parallel = _compare(tmp_path, "j1", 1), _compare(tmp_path, "j2", 2)
    for f in ("summary.json", "programs.csv"):
        assert (serial / f).read_bytes() == (parallel / f).read_bytes(), f


def test_a_negative_job_count_is_refused_with_one_line(tmp_path):
    r = runner.invoke(app, ["compare", "--n", "4", "--rates", "1", "--policies", "fcfs",
                            "--jobs", "-1", "--out", str(tmp_path)])
    assert r.exit_code != 0 and "--jobs must be >= 1" in r.output
    assert "Traceback" not in r.output
