"""Default queue boundaries follow the engine's step time (autellix/boundaries.py)."""

import random
from itertools import pairwise

import pytest

from autellix.boundaries import UPDATE_EVERY, Boundaries
from autellix.config import ConfigError, QueueConfig
from autellix.mlq import MultiLevelQueue
from autellix.policies import get_policy


def _levels(step_s: float, steps: int = 1500, seed: int = 3) -> list[tuple]:
    """Drive one queue: programs arrive, run a random number of steps, finish."""
    rnd = random.Random(seed)
    q = MultiLevelQueue(get_policy("plas"), QueueConfig())
    t, running, log, n = 0.0, [], [], 0
    for i in range(steps):
        if len(running) < 8:
            n += 1
            pid = f"p{rnd.randint(0, 12)}"
            cid = f"c{n}"
            e = q.add(cid, pid, t)
            log.append((i, cid, e.level))
            q.start(cid, t)
            running.append([cid, rnd.randint(5, 120)])
        t += step_s
        q.charge([c for c, _ in running], step_s, t)
        for r in list(running):
            r[1] -= 1
            if r[1] <= 0:
                q.finish(r[0], t)
                running.remove(r)
    return log


def test_levels_are_the_same_on_a_fast_and_a_slow_engine():
    # an engine 100x slower (a tiny CPU model on a busy machine against an A100) gives
    # the same placements once each has converged from the 0.25 s start (2x per 64
    # steps: 7 updates for the slow one)
    fast, slow = _levels(0.02), _levels(2.0)
    late = lambda log: [x for x in log if x[0] >= 8 * UPDATE_EVERY]  # noqa: E731
    assert late(fast) == late(slow) and len(late(fast)) > 50
    assert len({lvl for *_, lvl in late(fast)}) >= 4  # programs spread over the levels


def test_fixed_boundaries_do_not_scale():
    # the failure mode the default avoids: fixed 0.25 s boundaries put everything of a
    # fast engine in the top levels
    cfg = QueueConfig(boundaries=(0.25, 0.5, 1, 2, 4, 8))
    b = Boundaries(cfg)
    for _ in range(10 * UPDATE_EVERY):
        b.observe_steps(0.002)
    assert b.boundaries[0] == 0.25 and not b.adaptive


def test_first_boundary_moves_at_most_2x_per_update_toward_16_step_times():
    b = Boundaries(QueueConfig())
    assert b.boundaries[0] == 0.25
    firsts = []
    for _ in range(6):
        for _ in range(UPDATE_EVERY):
            b.observe_steps(0.001)  # target: 16 ms
        firsts.append(b.boundaries[0])
    assert firsts[:4] == pytest.approx([0.125, 0.0625, 0.03125, 0.016])
    assert firsts[-1] == pytest.approx(0.016)
    assert all(b2 == 2 * b1 for b1, b2 in pairwise(b.boundaries))


def test_reports_of_many_steps_at_once_give_the_same_boundaries_as_single_steps():
    one, many = Boundaries(QueueConfig()), Boundaries(QueueConfig())
    times = [0.001 * (1 + (i % 7)) for i in range(UPDATE_EVERY * 10)]
    for t in times:
        one.observe_steps(t)
    i = 0
    while i < len(times):  # runs that never cross a block edge, as the simulator reports
        k = min(37, many.steps_to_update(), len(times) - i)
        many.observe_steps(sum(times[i:i + k]), k)
        i += k
    assert many.boundaries == pytest.approx(one.boundaries, rel=1e-12)
    assert one.step_time() == pytest.approx(0.004, rel=0.1)


def test_adaptive_boundaries_reject_explicit_quanta():
    with pytest.raises(ConfigError, match="explicit quanta"):
        QueueConfig(quanta=(1.0,) * 13)
