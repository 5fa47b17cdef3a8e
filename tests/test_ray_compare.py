"""`autellix compare --ray`: sweep points as Ray tasks, files identical to a local run."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

pytest.importorskip("ray")

from autellix.cli.app import app  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]
runner = CliRunner()


def _compare(tmp_path, name, *how):
    # the capacity search runs points in several batches, so the Ray backend is
    # reused across them (tests/test_cli_compare_gate.py's small case)
    r = runner.invoke(app, ["compare", "--workload", "chatbot", "--window", "20",
                            "--max-num-seqs", "4", "--loads", "0.5,1", "--min-lifetimes", "1",
                            "--policies", "vllm-opt,plas", "--out", str(tmp_path),
                            "--name", name, *how])
    assert r.exit_code == 0, r.output
    return tmp_path / name


def test_a_sweep_run_as_ray_tasks_writes_the_same_files_as_a_local_run(tmp_path):
    import ray

    local, on_ray = _compare(tmp_path, "local", "--jobs", "1"), _compare(tmp_path, "ray", "--ray")
    for f in ("summary.json", "programs.csv"):
        assert (local / f).read_bytes() == (on_ray / f).read_bytes(), f
    assert not ray.is_initialized()  # the local Ray instance it started is gone


def test_ray_options_are_refused_where_they_mean_nothing(tmp_path):
    r = runner.invoke(app, ["compare", "--engine", "vllm", "--ray", "--out", str(tmp_path)])
    assert r.exit_code == 1 and "--ray runs simulation points" in r.output
    r = runner.invoke(app, ["compare", "--address", "auto", "--out", str(tmp_path)])
    assert r.exit_code == 1 and "--address needs --ray" in r.output
