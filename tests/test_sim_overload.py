"""Sustained overload (issue 10): no preemption storm, no livelock, PLAS/ATLAS beat FCFS.

The small version of ``benchmarks/sim_overload.py``: 300 chatbot programs on one
simulated A100 engine with 64 seats at 4.8x its full-batch capacity. Before the
shared preemption rule, PLAS made hundreds of thousands of preemptions here (every
promoted call ran one quantum, demoted, and was evicted by the next promoted
waiter). Assertions are on simulated time and counts only.
"""

import pytest

from autellix.sim import EngineConfig, SimConfig, simulate
from autellix.sim.capacity import estimate_capacity
from autellix.workloads.registry import generate


@pytest.fixture(scope="module")
def runs():
    programs = generate("chatbot", 300, 0)
    engine = EngineConfig(max_num_seqs=64)
    rate = 4.8 * estimate_capacity(programs, SimConfig(engine=engine))
    out = {}
    for policy in ("fcfs", "plas", "atlas", "mlfq"):
        res = simulate(programs, SimConfig(policy=policy, rate=rate, engine=engine))
        out[policy] = (res, res.summary())
    return out


@pytest.mark.parametrize("policy", ["plas", "atlas", "mlfq"])
def test_every_policy_finishes_without_a_preemption_storm(runs, policy):
    res, s = runs[policy]
    fcfs_res, _ = runs["fcfs"]
    assert s.completed == s.n_programs == 300
    assert res.sim_time <= 1.1 * fcfs_res.sim_time
    assert s.extra["preemptions"] <= len(res.calls)  # at most one per call on average


@pytest.mark.parametrize("policy", ["plas", "atlas"])
def test_program_level_policies_beat_fcfs_on_mean_token_latency(runs, policy):
    assert runs[policy][1].token_latency["mean"] < runs["fcfs"][1].token_latency["mean"]
