"""Regression cases found by random search: recompute preemption must not livelock.

Each case once ran forever: two calls evicting each other before either produced a
token (a 65-token prompt against a 64-token step budget under plas; las priorities
moving under KV pressure). The engine now never evicts a call before it has produced
a token since its admission, and under memory pressure never evicts the call that
was admitted first."""

import random

import pytest

from autellix.config import QueueConfig
from autellix.program import Call, Program
from autellix.sim import EngineConfig, SimConfig, simulate


def case(it: int):
    r = random.Random(it)
    progs = []
    for i in range(r.randint(1, 6)):
        calls = []
        for j in range(r.randint(1, 5)):
            parents = ()
            if j:
                parents = tuple(sorted({r.choice([f"c{x}" for x in range(j)])
                                        for _ in range(r.randint(1, 2))}))
            calls.append(Call(id=f"c{j}", parents=parents,
                              shared_prompt_tokens=r.randint(0, 64) if parents else 0,
                              new_prompt_tokens=r.randint(1, 80), output_tokens=r.randint(1, 40),
                              tool_delay=r.choice([0.0, 0.01, 0.2])))
        progs.append(Program(id=f"p{i}", calls=tuple(calls)))
    cfg = SimConfig(
        policy=r.choice(["fcfs", "plas", "atlas", "mlfq", "las", "srpt"]),
        balancer=r.choice(["autellix", "round_robin", "least_used"]), n_engines=r.randint(1, 2),
        rate=r.choice([0.5, 5.0, 100.0]), seed=r.randint(0, 3), check_invariants=True,
        queue=QueueConfig(boundaries=(0.005, 0.01, 0.02, 0.04), beta=2.0),
        engine=EngineConfig(max_num_seqs=r.randint(1, 4), max_batched_tokens=64, block_size=8,
                            kv_capacity_tokens=r.randint(12, 40) * 8,
                            preemption=r.choice(["recompute", "swap"]),
                            schedule_interval=r.choice([1, 3]), prefix_caching=r.random() < 0.5))
    return progs, cfg


@pytest.mark.timeout(120)
@pytest.mark.parametrize("it", [344, 948, 1355])
def test_no_preemption_livelock(it):
    progs, cfg = case(it)
    res = simulate(progs, cfg)
    assert len(res.programs) == len(progs)
    assert sum(len(p.calls) for p in progs) == len(res.calls)
