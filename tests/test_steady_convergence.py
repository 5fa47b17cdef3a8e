"""Issue 12's convergence check on a small case: doubling the steady-state window moves
no capacity ratio by more than 10%.

ReAct-like programs on one simulated engine with 4 seats, arms vllm-opt / plas / srpt,
SLO 3x the unloaded mean token latency, one seed. The first run uses the default
window (here the floor of 4 unloaded p99 program lifetimes); the second doubles its
duration. Same programs pool generator and seed; only the window differs.
"""

import pytest

from autellix.sim import EngineConfig, SimConfig
from autellix.sim_compare import engine_capacity, run_sim_compare
from autellix.slo import SLO
from autellix.workloads.registry import generate


def _ratios(out):
    return {r["policy"]: r["vs_vllm-opt"] for r in out.analysis["rows"] if "vs_vllm-opt" in r}


def test_doubling_the_window_changes_no_ratio_by_more_than_ten_percent():
    base = SimConfig(engine=EngineConfig(max_num_seqs=4))

    def load(n, s):
        return generate("react", n, s)

    cap = engine_capacity(load(400, 0), base)
    kw = dict(slo=SLO("mean"), capacity=cap, loads=(0.5, 1.0, 1.3), jobs=2)
    short = run_sim_compare(load, [0], base, ["vllm-opt", "plas", "srpt"], window_programs=20, **kw)
    long = run_sim_compare(load, [0], base, ["vllm-opt", "plas", "srpt"],
                           window_programs=2 * short.window.duration * cap, **kw)
    assert long.window.duration == pytest.approx(2 * short.window.duration)
    r1, r2 = _ratios(short), _ratios(long)
    assert set(r1) == set(r2) == {"plas", "srpt"}
    for arm in r1:
        assert r1[arm]["bound"] is None and r2[arm]["bound"] is None, (arm, r1[arm], r2[arm])
        assert r2[arm]["mean"] == pytest.approx(r1[arm]["mean"], rel=0.10), (arm, r1, r2)
    assert r1["srpt"]["mean"] > 1.2  # the case has a real scheduling effect to converge on


def test_every_point_below_capacity_measures_as_many_programs_as_one_at_capacity():
    """A slow arm (vLLM without prefix caching) is searched at a fraction of the others'
    rates; with a fixed duration its capacity would be a mean over a fraction of their
    programs. Below capacity each point's window holds the window's arrivals at capacity
    (Poisson arrivals scale with the rate, so these are the same programs)."""
    base = SimConfig(engine=EngineConfig(max_num_seqs=4))

    def load(n, s):
        return generate("react", n, s)

    cap = engine_capacity(load(400, 0), base)
    out = run_sim_compare(load, [0], base, ["vllm-opt", "vllm"], window_programs=40,
                          slo=SLO("mean"), capacity=cap, loads=(0.3, 1.0), jobs=2,
                          lifetimes=1.0, rel_tol=0.1)
    floor = out.analysis["window"]["min_programs"]
    assert floor == pytest.approx(out.window.duration * cap)
    points = [r.summary for r in out.grid + out.extra_points]
    below = [s for s in points if s.rate < 0.999 * cap]
    assert {s.policy for s in below} == {"vllm", "vllm-opt"}
    assert min(s.rate for s in below) < 0.5 * cap
    # a fixed duration would give the 0.3x points about 0.3 x floor programs
    assert len({s.n_programs for s in below}) == 1, [(s.rate, s.n_programs) for s in below]
    assert below[0].n_programs >= 0.7 * floor
    assert all(s.n_programs >= below[0].n_programs for s in points)
    for s in points:  # each point says how long its window was
        assert s.extra["window_s"] == pytest.approx(
            out.window.duration * max(1.0, floor / (s.rate * out.window.duration)))
