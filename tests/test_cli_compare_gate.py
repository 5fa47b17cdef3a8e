"""`autellix compare` and `autellix gate` through the real CLI (Typer CliRunner)."""

import json

import pytest
from typer.testing import CliRunner

from autellix.cli.app import app
from autellix.gate import compare_to_baseline, run_gate, write_baseline

runner = CliRunner()


def test_compare_writes_results_and_prints_tables(tmp_path):
    r = runner.invoke(app, ["compare", "--n", "12", "--rates", "0.5,2",
                            "--policies", "fcfs,atlas,srpt",
                            "--max-num-seqs", "4", "--out", str(tmp_path), "--name", "t"])
    assert r.exit_code == 0, r.output
    assert "program token latency" in r.output and "results:" in r.output
    d = tmp_path / "t"
    for f in ("config.json", "summary.json", "programs.csv", "latency.png"):
        assert (d / f).is_file(), f
    doc = json.loads((d / "summary.json").read_text())
    assert {s["engine"] for s in doc["summaries"]} == {"sim"}
    assert len(doc["summaries"]) == 6 and doc["analysis"]["rows"]
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["sim"]["engine"]["max_num_seqs"] == 4
    assert cfg["policies"] == ["fcfs", "atlas", "srpt"]
    rows = (d / "programs.csv").read_text().splitlines()
    assert len(rows) == 1 + 6 * 12


def test_compare_default_loads_use_capacity(tmp_path):
    r = runner.invoke(app, ["compare", "--n", "8", "--loads", "0.5", "--policies", "fcfs",
                            "--out", str(tmp_path), "--name", "cap"])
    assert r.exit_code == 0, r.output
    cfg = json.loads((tmp_path / "cap" / "config.json").read_text())
    assert cfg["capacity_per_engine"] > 0 and cfg["rates"][0] == pytest.approx(
        0.5 * cfg["capacity_per_engine"], rel=1e-3)


@pytest.mark.parametrize("args,msg", [
    (["--workload", "nope"], "unknown workload"),
    (["--rates", "x"], "comma-separated numbers"),
    (["--policies", "fcfs,magic", "--n", "2", "--rates", "1"], "unknown policy"),
    (["--profile", "tpu", "--n", "2", "--rates", "1"], "unknown cost profile"),
    (["--boundaries", "2,1", "--n", "2"], "increase strictly"),
    (["--engine", "gpu"], "--engine"),
])
def test_compare_bad_input_is_one_line_and_nonzero(args, msg, tmp_path):
    r = runner.invoke(app, ["compare", "--out", str(tmp_path), *args])
    assert r.exit_code != 0
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and msg in lines[0], r.output


SMALL = {"workload": "mixed", "n": 24, "seed": 0, "rates": [0.3, 1.0, 2.0],
         "policies": ["fcfs", "atlas"], "engine": {"max_num_seqs": 8}, "queue": {},
         "metric": "mean", "target_factor": 1.3}


def test_gate_passes_on_a_fresh_baseline_and_fails_on_injected_regression(tmp_path, monkeypatch):
    path = tmp_path / "b.json"
    doc = write_baseline(path, SMALL)
    assert doc["ratios_vs_fcfs"]["atlas"] > 1.0  # the gate watches a real effect
    assert run_gate(path, 0.05).ok
    # inject a regression: ATLAS's queue placement ignores program history
    from autellix import policies
    from autellix.policies.atlas import ATLAS
    from autellix.policies.mlfq import MLFQ
    broken = type(MLFQ)(**{**ATLAS.__dict__})
    monkeypatch.setitem(policies.POLICIES, "atlas", broken)
    rep = run_gate(path, 0.05)
    assert not rep.ok and any("atlas" in f for f in rep.failures)


def test_gate_flags_latency_regression_against_doctored_baseline():
    cur = {"ratios_vs_fcfs": {"atlas": 2.0},
           "points": [{"policy": "atlas", "rate": 1.0, "mean": 0.02, "p95": 0.05, "completed": 10}]}
    base = json.loads(json.dumps(cur))
    assert compare_to_baseline(base, cur, 0.1).ok
    base["points"][0]["mean"] = 0.015
    base["ratios_vs_fcfs"]["atlas"] = 3.0
    rep = compare_to_baseline(base, cur, 0.1)
    assert len(rep.failures) == 2


def test_gate_cli_on_committed_baseline_and_bad_paths(tmp_path):
    r = runner.invoke(app, ["gate"])
    assert r.exit_code == 0, r.output
    assert "perf gate passed" in r.output
    r = runner.invoke(app, ["gate", "--baseline", str(tmp_path / "missing.json")])
    assert r.exit_code == 1 and "baseline not found" in r.output
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    r = runner.invoke(app, ["gate", "--baseline", str(bad)])
    assert r.exit_code == 1 and "not a gate baseline" in r.output
