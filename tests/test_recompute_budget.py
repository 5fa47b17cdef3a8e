"""Rule 5 of the preemption rule (autellix/preemption.py): priority evictions pause
while recent recompute exceeds a share of the engine's busy time, and an eviction is
charged the recompute it commits the engine to when it happens."""

import pytest

from autellix.config import QueueConfig
from autellix.mlq import MultiLevelQueue
from autellix.policies import get_policy
from autellix.preemption import prefill_tokens

DECODE = 0.01  # seconds per decode-only step in these scenarios


def _queue(**cfg) -> MultiLevelQueue:
    return MultiLevelQueue(get_policy("mlfq"),
                           QueueConfig(boundaries=(0.05, 0.1), beta=1e9, **cfg))


def _running_long_call(q, cid: str, now: float, steps: int = 20) -> None:
    """A call admitted, past its first token, that has run ``steps`` decode steps."""
    q.add(cid, cid, now)
    q.start(cid, now)
    q.charge([cid], DECODE, now)  # its prefill step
    q.token(cid)
    for i in range(steps):
        q.charge([cid], DECODE, now + (i + 1) * DECODE)


def test_prefill_tokens_counts_only_chunks_longer_than_one_token():
    assert prefill_tokens([1, 1, 512, 2]) == 514
    assert prefill_tokens([1] * 64) == 0


def test_recompute_estimate_is_the_marginal_cost_of_prefill_over_decode():
    q = _queue()
    q.add("a", "a", 0.0)
    q.start("a", 0.0)
    q.charge(["a"], 0.05, 0.0, prefill_tokens=400)  # no decode baseline yet: unused
    assert q.recompute_seconds(1000) == 0.0
    for i in range(10):
        q.charge(["a"], DECODE, 0.1 + i * DECODE)
    q.charge(["a"], 0.05, 0.3, prefill_tokens=400)  # 0.04 s over a decode step
    assert q.recompute_seconds(1000) == pytest.approx(0.1, rel=1e-6)


def test_an_eviction_charges_its_recompute_to_the_budget_at_once():
    q = _queue(recompute_budget=0.1)
    for v in ("v1", "v2"):
        _running_long_call(q, v, 0.0)
    q.charge(["v1"], 0.05, 0.3, prefill_tokens=400)  # learn 1e-4 s per prefill token
    q.add("w", "w", 0.5)  # a new call: Q1 under mlfq, outranks both
    assert q.may_evict("w", "v1") and q.may_evict("w", "v2")
    busy = 2 * 21 * DECODE + 0.05  # 0.47 engine-seconds so far (decay: under 2%)
    # re-prefilling 1,000 tokens costs about 0.1 s, a fifth of the recent busy time:
    # the budget is spent at the eviction, before the victim recomputes anything
    q.evict("v1", 0.5, context_tokens=1000)
    assert q.recompute_share() == pytest.approx(0.1 / busy, rel=0.05)
    assert not q.may_evict("w", "v2")


def test_a_prepaid_recompute_is_not_counted_again_when_it_runs():
    q = _queue()
    _running_long_call(q, "v", 0.0)
    q.charge(["v"], 0.05, 0.3, prefill_tokens=400)
    q.evict("v", 0.4, context_tokens=1000)
    share = q.recompute_share()
    q.start("v", 0.5)  # readmitted: it re-prefills what it had computed
    q.charge(["v"], 0.2, 0.7, prefill_tokens=1000)
    assert q.get("v").recompute == pytest.approx(0.2)  # still not attained service
    assert q.recompute_share() < share  # the step only diluted the share


def test_memory_pressure_recompute_is_counted_as_it_runs():
    q = _queue()
    _running_long_call(q, "v", 0.0)
    q.preempt("v", 0.4)  # no room for its next token: not a priority decision
    assert q.recompute_share() == 0.0
    q.start("v", 0.5)
    q.charge(["v"], 0.2, 0.7, prefill_tokens=1000)
    assert q.recompute_share() > 0.2
