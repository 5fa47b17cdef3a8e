"""`autellix compare` and `autellix gate` through the real CLI (Typer CliRunner)."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from autellix.cli.app import app
from autellix.cli.compare_cmd import window_note
from autellix.compare import window_change
from autellix.gate import judge, run_gate, write_baseline
from autellix.workloads.registry import (
    DEFAULT_STEADY_WINDOW,
    STEADY_CHECKED,
    STEADY_UNSETTLED,
    STEADY_WINDOWS,
    steady_window,
    window_caveats,
)

runner = CliRunner()


# plumbing, not convergence: a window floor of 1 unloaded p99 lifetime (default 4) keeps
# each point to about 100 programs; tests/test_steady_convergence.py runs the default
SMALL_CMP = ["compare", "--workload", "chatbot", "--window", "20", "--max-num-seqs", "4",
             "--loads", "0.5,1", "--policies", "vllm-opt,plas", "--min-lifetimes", "1"]


def test_compare_writes_results_and_prints_tables(tmp_path):
    r = runner.invoke(app, [*SMALL_CMP, "--policies", "vllm-opt,atlas,srpt", "--jobs", "1",
                            "--out", str(tmp_path), "--name", "t"])
    assert r.exit_code == 0, r.output
    assert "program token latency" in r.output and "capacity at mean" in r.output
    d = tmp_path / "t"
    for f in ("config.json", "summary.json", "programs.csv", "latency.png", "timings.json"):
        assert (d / f).is_file(), f
    doc = json.loads((d / "summary.json").read_text())
    assert {s["engine"] for s in doc["summaries"]} == {"sim"}
    assert len(doc["summaries"]) == 6
    assert all("stable" in s["extra"] and "wall_time" not in s["extra"] for s in doc["summaries"])
    an = doc["analysis"]
    assert [r["policy"] for r in an["rows"]] == ["vllm-opt", "atlas", "srpt"]
    assert an["slo"]["factor"] == 3.0 and an["target"] > 0 and an["search_points"]
    assert "vs_vllm-opt" in an["rows"][1] and an["rows"][1]["capacity"]["mean"] > 0
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["sim"]["engine"]["max_num_seqs"] == 4
    assert cfg["arms"] == ["vllm-opt", "atlas", "srpt"]
    # the window: 20 arrivals at capacity, but at least 1 unloaded p99 program lifetime
    life = an["unloaded"]["p99_program_e2e_s"]
    assert cfg["window"]["duration_s"] == pytest.approx(max(20 / cfg["capacity_per_engine"],
                                                            1 * life))
    assert an["window"]["min_lifetimes"] == 1
    rows = (d / "programs.csv").read_text().splitlines()
    assert len(rows) > 1 + 6 * 20 and "in_window" in rows[0]


def test_compare_jobs_2_and_jobs_1_write_byte_identical_summaries(tmp_path):
    for jobs in ("1", "2"):
        r = runner.invoke(app, [*SMALL_CMP, "--seeds", "2", "--jobs", jobs, "--out",
                                str(tmp_path), "--name", f"j{jobs}"])
        assert r.exit_code == 0, r.output
    one = (tmp_path / "j1" / "summary.json").read_bytes()
    assert one == (tmp_path / "j2" / "summary.json").read_bytes()
    assert (tmp_path / "j1" / "programs.csv").read_bytes() == \
        (tmp_path / "j2" / "programs.csv").read_bytes()
    assert json.loads((tmp_path / "j2" / "timings.json").read_text())["jobs"] == 2
    doc = json.loads(one)
    assert {s["extra"]["seed"] for s in doc["summaries"]} == {0, 1}
    assert all(r["capacity"]["n"] == 2 for r in doc["analysis"]["rows"])


def test_compare_default_loads_use_capacity(tmp_path):
    r = runner.invoke(app, [*SMALL_CMP, "--loads", "0.5", "--policies", "fcfs", "--no-search",
                            "--out", str(tmp_path), "--name", "cap"])
    assert r.exit_code == 0, r.output
    cfg = json.loads((tmp_path / "cap" / "config.json").read_text())
    assert cfg["capacity_per_engine"] > 0 and cfg["rates"][0] == pytest.approx(
        0.5 * cfg["capacity_per_engine"], rel=1e-3)
    assert "capacity at" not in r.output


def test_check_window_reruns_with_the_window_doubled_and_reports_each_ratio(tmp_path):
    r = runner.invoke(app, [*SMALL_CMP, "--check-window", "--jobs", "2", "--out",
                            str(tmp_path), "--name", "w"])
    assert r.exit_code == 0, r.output
    assert "window check" in r.output
    an = json.loads((tmp_path / "w" / "summary.json").read_text())["analysis"]
    chk = an["window_check"]
    d1, d2 = chk["window_s"]
    assert d1 == pytest.approx(an["window"]["duration_s"]) and d2 == pytest.approx(2 * d1)
    (row,) = [x for x in chk["rows"] if x["policy"] == "plas" and x["ratio"] == "vs_vllm-opt"]
    assert row["short"] == an["rows"][1]["vs_vllm-opt"]["mean"]
    assert row["change"] == pytest.approx(row["long"] / row["short"] - 1)
    assert chk["max_abs_change"] >= abs(row["change"])
    assert chk["converged"] == (all(x["change"] is not None for x in chk["rows"])
                                and chk["max_abs_change"] <= 0.10)


def test_a_workload_file_gets_the_default_window_and_a_note_that_it_is_unchecked(tmp_path):
    from autellix.program import save_programs
    from autellix.workloads.registry import generate

    save_programs(generate("react", 600, 0), tmp_path / "mine.jsonl")
    args = ["compare", "--workload", str(tmp_path / "mine.jsonl"), "--rates", "1",
            "--no-search", "--policies", "fcfs", "--min-lifetimes", "0", "--out", str(tmp_path)]
    r = runner.invoke(app, [*args, "--name", "a"])
    assert r.exit_code == 0, r.output
    assert "never checked" in r.output and "--check-window" in r.output
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert cfg["window_programs"] == DEFAULT_STEADY_WINDOW and cfg["window_unchecked"]
    r = runner.invoke(app, [*args, "--name", "b", "--window", "150"])  # chosen: no note
    assert r.exit_code == 0 and "never checked" not in r.output, r.output


def test_window_change_compares_ratios_and_never_calls_a_bound_converged():
    def an(**ratios):
        return {"rows": [{"policy": p, "balancer": "autellix", "n_engines": 1,
                          "vs_vllm-opt": v} for p, v in ratios.items()]}
    est = lambda m, bound=None: {"mean": m, "bound": bound}  # noqa: E731
    chk = window_change(an(plas=est(1.10), srpt=est(1.50)), an(plas=est(1.12), srpt=est(1.80)),
                        400, 800)
    assert chk["window_s"] == [400, 800] and not chk["converged"]
    assert chk["max_abs_change"] == pytest.approx(0.2)
    assert [round(x["change"], 4) for x in chk["rows"]] == [0.0182, 0.2]
    assert window_change(an(plas=est(1.1)), an(plas=est(1.15)), 1, 2)["converged"]
    bound = window_change(an(plas=est(1.1)), an(plas=est(1.1, "lower")), 1, 2)
    assert bound["rows"][0]["change"] is None and not bound["converged"]
    assert not window_change(an(plas=est(1.1)), an(), 1, 2)["converged"]  # arm missing


def test_chatbot_and_mixed_default_to_the_windows_they_were_measured_to_need():
    assert steady_window("chatbot") == 1600 and steady_window("mixed") == 900
    assert steady_window("react") == steady_window("mcts") == DEFAULT_STEADY_WINDOW == 150
    assert steady_window("my-programs.jsonl") == DEFAULT_STEADY_WINDOW
    assert set(STEADY_WINDOWS) == {"chatbot", "react", "mcts", "mixed"}  # the ones measured


def test_the_output_names_the_arms_whose_default_window_does_not_settle_or_was_not_checked():
    # results/convergence/: on mcts the ratios over vllm move > 10% when the window
    # doubles, on mixed (900) only the SRPT bound's over vllm does; chatbot and react settle
    assert window_caveats("mcts", ["vllm", "vllm-opt", "atlas"]) == ([], ["vllm"])
    assert window_caveats("mcts", ["vllm-opt", "mlfq", "plas", "atlas", "srpt"]) == ([], [])
    assert window_caveats("mixed", ["vllm-opt", "srpt", "vllm", "las"]) == (["las"], ["vllm"])
    assert window_caveats("mixed", ["vllm-opt", "mlfq", "plas", "atlas", "srpt"]) == ([], [])
    assert window_caveats("react", ["vllm", "vllm-opt", "mlfq", "plas", "srpt"]) == ([], [])
    assert window_caveats("react", ["vllm-opt", "las"]) == (["las"], [])  # never measured
    assert window_caveats("mine.jsonl", ["fcfs"]) == (["fcfs"], [])
    assert set(STEADY_CHECKED) == set(STEADY_WINDOWS)  # a measured window names its arms
    assert all(STEADY_UNSETTLED[w] <= STEADY_CHECKED[w] for w in STEADY_WINDOWS)  # measured

    base = {"window_programs": 150.0, "workload": "mixed"}
    note = window_note({**base, "window_unsettled": ["srpt", "vllm"]})
    assert "does not settle for srpt, vllm" in note and "never checked" not in note
    both = window_note({**base, "window_unsettled": ["vllm"], "window_unchecked": ["las"]})
    assert "settle for vllm" in both and "never checked on mixed with las" in both
    assert window_note({**base, "window_unsettled": [], "window_unchecked": []}) is None
    assert window_note(base) is None


@pytest.mark.parametrize("args,msg", [
    (["--workload", "nope"], "unknown workload"),
    (["--engine", "vllm", "--check-window"], "--check-window"),
    (["--check-window", "--no-search"], "--no-search"),
    (["--rates", "x"], "comma-separated numbers"),
    (["--policies", "fcfs,magic", "--n", "2", "--rates", "1"], "unknown policy"),
    (["--profile", "tpu", "--n", "2", "--rates", "1"], "unknown cost profile"),
    (["--boundaries", "2,1", "--n", "2"], "increase strictly"),
    (["--engine", "gpu"], "--engine"),
    (["--slo", "fast"], "--slo"),
    (["--metric", "median"], "SLO metric"),
    (["--seeds", "0"], "--seeds"),
    (["--window", "0", "--rates", "1"], "--window"),
])
def test_compare_bad_input_is_one_line_and_nonzero(args, msg, tmp_path):
    r = runner.invoke(app, ["compare", "--out", str(tmp_path), *args])
    assert r.exit_code != 0
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and msg in lines[0], r.output


# 8 seats: with 4, PLAS and FCFS are within noise on seed 0 (ratio 0.98), and a gate
# must watch a real effect (here 1.31 and 1.99 on seeds 0 and 1)
SMALL = {"workload": "chatbot", "window": 30, "seeds": [0, 1], "loads": [0.5, 0.9],
         "arms": ["vllm-opt", "plas"], "engine": {"max_num_seqs": 8}, "queue": {},
         "slo": "3x", "metric": "mean", "rel_tol": 0.1, "min_lifetimes": 1}


def test_gate_passes_on_a_fresh_baseline_and_fails_on_injected_regression(tmp_path, monkeypatch):
    path = tmp_path / "b.json"
    doc = write_baseline(path, SMALL)
    ratio = doc["metrics"]["ratio plas/autellix/x1 vs_vllm-opt"]["values"]
    assert min(ratio) > 1.0  # the gate watches a real effect
    rep = run_gate(path, 0.05)
    assert rep.ok and rep.checked == len(doc["metrics"]), rep.failures
    # inject a regression: PLAS forgets program history and orders calls FCFS
    from autellix import policies
    from autellix.policies.fcfs import FCFS
    broken = type(FCFS)(**{**FCFS.__dict__, "name": "plas"})
    monkeypatch.setitem(policies.POLICIES, "plas", broken)
    rep = run_gate(path, 0.05)
    assert not rep.ok and all("plas" in f for f in rep.failures), rep.failures


def test_judge_is_noise_aware():
    def m(vals, up=False):
        return {"x": {"values": vals, "higher_is_better": up}}
    assert judge(m([1.0, 1.0]), m([1.0, 1.0]), 0.1).ok
    # 30% worse on every seed: outside tolerance and noise -> fails
    assert not judge(m([1.0, 2.0, 3.0]), m([1.3, 2.6, 3.9]), 0.1).ok
    # 30% worse on average but one seed better: inside the paired noise band -> passes,
    # and the pass says what the noise may be hiding
    rep = judge(m([1.0, 2.0, 3.0]), m([2.0, 1.2, 4.6]), 0.1)
    assert rep.ok and len(rep.within_noise) == 1 and "95% CI" in rep.within_noise[0]
    assert not judge(m([1.0, 1.0]), m([1.05, 1.05]), 0.1).within_noise  # inside tolerance
    # 2.5x slower on every repeat, one of them also hit by CPU contention: the paired
    # interval is over log ratios, so the inflated repeat does not hide the regression
    # (over y/x - 1 it would: +169%, +129%, +438% has a 95% CI reaching below zero)
    assert not judge(m([0.016, 0.017, 0.013]), m([0.043, 0.039, 0.070]), 0.3).ok
    # unpaired (different repeat counts): needs separated intervals
    assert judge(m([1.0, 1.1, 0.9]), m([1.5, 1.4]), 0.1).ok            # wide 2-sample CI
    assert not judge(m([1.0, 1.01, 0.99]), m([1.5, 1.51, 1.49, 1.5]), 0.1).ok
    # one value a side: tolerance alone; higher-is-better metrics fail on drops
    assert not judge(m([2.0], True), m([1.7], True), 0.1).ok
    assert judge(m([2.0], True), m([1.9], True), 0.1).ok
    # a point that became unstable fails; improvements are listed, never failures
    assert not judge(m([0.02, 0.02]), m([float("inf"), 0.02]), 0.1).ok
    rep = judge(m([1.0, 2.0]), m([0.5, 1.0]), 0.1)
    assert rep.ok and rep.improvements
    assert "missing" in judge(m([1.0]), {}, 0.1).failures[0]


def test_gate_compare_two_result_folders(tmp_path):
    base = ["compare", "--workload", "chatbot", "--window", "20", "--loads", "0.5,1",
            "--policies", "vllm-opt,plas", "--seeds", "2", "--jobs", "2", "--out", str(tmp_path),
            "--min-lifetimes", "1"]
    assert runner.invoke(app, [*base, "--max-num-seqs", "8", "--name", "a"]).exit_code == 0
    shutil.copytree(tmp_path / "a", tmp_path / "a2")  # a rerun: the simulator is deterministic
    assert runner.invoke(app, [*base, "--max-num-seqs", "2", "--name", "slow"]).exit_code == 0
    r = runner.invoke(app, ["gate", "--compare", str(tmp_path / "a"), str(tmp_path / "a2")])
    assert r.exit_code == 0 and "perf gate passed" in r.output, r.output
    r = runner.invoke(app, ["gate", "--compare", str(tmp_path / "a"), str(tmp_path / "slow")])
    assert r.exit_code == 1 and "REGRESSION" in r.output and "perf gate failed" in r.output
    r = runner.invoke(app, ["gate", "--compare", str(tmp_path / "a"), str(tmp_path / "none")])
    assert r.exit_code == 1 and "no summary.json" in r.output


def test_gate_cli_on_committed_baseline_and_bad_paths(tmp_path):
    r = runner.invoke(app, ["gate", "--jobs", "2"])
    assert r.exit_code == 0, r.output
    assert "perf gate passed" in r.output
    r = runner.invoke(app, ["gate", "--baseline", str(tmp_path / "missing.json")])
    assert r.exit_code == 1 and "baseline not found" in r.output
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    r = runner.invoke(app, ["gate", "--baseline", str(bad)])
    assert r.exit_code == 1 and "not a gate baseline" in r.output
