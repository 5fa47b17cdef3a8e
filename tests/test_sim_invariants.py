"""Property tests: random workloads through every policy, invariants checked every step.

``check_invariants=True`` makes every engine assert after each step that KV blocks
are never exceeded (``used + cached <= total``), running calls never exceed
``max_num_seqs``, and each call is in exactly one place (running or waiting, and in
the queue). Here we also check that every program completes and every call is
recorded exactly once, completed."""

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autellix.config import QueueConfig
from autellix.program import Call, Program
from autellix.sim import EngineConfig, SimConfig, simulate

POLICIES = ["fcfs", "plas", "atlas", "mlfq", "las", "srpt"]


@st.composite
def programs(draw):
    n = draw(st.integers(1, 6))
    out = []
    for i in range(n):
        k = draw(st.integers(1, 5))
        calls = []
        for j in range(k):
            parents = ()
            if j:
                earlier = st.sampled_from([f"c{x}" for x in range(j)])
                parents = tuple(sorted(set(draw(st.lists(earlier, min_size=1, max_size=2)))))
            shared = draw(st.integers(0, 64)) if parents else 0
            calls.append(Call(id=f"c{j}", parents=parents, shared_prompt_tokens=shared,
                              new_prompt_tokens=draw(st.integers(1, 80)),
                              output_tokens=draw(st.integers(1, 40)),
                              tool_delay=draw(st.sampled_from([0.0, 0.01, 0.2]))))
        out.append(Program(id=f"p{i}", calls=tuple(calls), workload="prop"))
    return out


@pytest.mark.parametrize("policy", POLICIES)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(progs=programs(),
       seats=st.integers(1, 4), kv_blocks=st.integers(12, 40),
       preemption=st.sampled_from(["recompute", "swap"]),
       interval=st.sampled_from([1, 3]), caching=st.booleans(),
       engines=st.integers(1, 2),
       balancer=st.sampled_from(["autellix", "round_robin", "least_used"]),
       rate=st.sampled_from([0.5, 5.0, 100.0]), seed=st.integers(0, 3))
def test_invariants_hold_and_nothing_is_lost(progs, policy, seats, kv_blocks, preemption,
                                            interval, caching, engines, balancer, rate, seed):
    cfg = SimConfig(policy=policy, balancer=balancer, n_engines=engines, rate=rate, seed=seed,
                    check_invariants=True,
                    queue=QueueConfig(boundaries=(0.005, 0.01, 0.02, 0.04), beta=2.0),
                    engine=EngineConfig(max_num_seqs=seats, max_batched_tokens=64, block_size=8,
                                        kv_capacity_tokens=kv_blocks * 8, preemption=preemption,
                                        schedule_interval=interval, prefix_caching=caching))
    res = simulate(progs, cfg)
    assert sorted(p.program_id for p in res.programs) == sorted(p.id for p in progs)
    seen = Counter((c.program_id, c.call_id) for c in res.calls)
    assert all(v == 1 for v in seen.values()), "a call ran twice"
    assert set(seen) == {(p.id, c.id) for p in progs for c in p.calls}, "a call vanished"
    by_id = {p.id: p for p in progs}
    for c in res.calls:
        call = by_id[c.program_id].call(c.call_id)
        too_big = -(-(call.prompt_tokens + call.output_tokens) // 8) > kv_blocks
        assert c.status == ("failed" if too_big else "completed") or c.status == "aborted"
    for p in res.programs:
        if p.status == "completed":
            assert p.output_tokens == by_id[p.program_id].output_tokens
    assert sum(e.steps for e in res.engines) > 0 or all(c.status != "completed" for c in res.calls)
    # dependencies held: a call was issued only after all its parents finished
    fin = {(c.program_id, c.call_id): c.finish for c in res.calls}
    for c in res.calls:
        for par in by_id[c.program_id].call(c.call_id).parents:
            if c.status == "completed":
                assert c.issue >= fin[(c.program_id, par)] - 1e-12
