"""Hand-worked checks of the paper's rules: service updates, queues, demotion,
anti-starvation, balancing."""

import math

import pytest

from autellix.balancer import AutellixBalancer, LeastUsed, RoundRobin, make_balancer
from autellix.config import ConfigError, QueueConfig
from autellix.mlq import MultiLevelQueue
from autellix.policies import POLICIES, get_policy
from autellix.process_table import ProcessTable


def test_plas_sum_rule():
    t = ProcessTable(rule="sum")
    t.call_arrived("p", "a", 0.0)
    assert t.call_finished("p", "a", model_time=2.0, wait=0.5, now=3.0) == 2.0
    t.call_arrived("p", "b", 4.0)
    assert t.call_finished("p", "b", model_time=3.0, wait=1.0, now=8.0) == 5.0
    assert t.get("p").wait == 1.5


def test_atlas_max_rule_tracks_critical_path():
    t = ProcessTable(rule="max")
    for c in ("a", "b"):  # two parallel threads copy priority 0
        assert t.call_arrived("p", c, 0.0).priority == 0.0
    t.call_finished("p", "a", model_time=2.0, wait=0, now=2)
    assert t.call_finished("p", "b", model_time=3.0, wait=0, now=3) == 3.0  # max, not 5
    assert t.call_arrived("p", "j", 3.0).priority == 3.0
    assert t.call_finished("p", "j", model_time=1.0, wait=0, now=4) == 4.0
    # the sum rule on the same history would give 6
    s = ProcessTable(rule="sum")
    for c, m in (("a", 2.0), ("b", 3.0), ("j", 1.0)):
        s.call_arrived("p", c, 0)
        s.call_finished("p", c, model_time=m, wait=0, now=1)
    assert s.get("p").service == 6.0


def test_table_expiry_and_bound():
    t = ProcessTable(ttl=10, max_entries=3)
    for i in range(5):
        t.call_arrived(f"p{i}", "c", float(i))
        t.call_finished(f"p{i}", "c", 1.0, 0.0, float(i))
    assert len(t) == 3 and "p0" not in t  # bounded, oldest evicted
    t.call_arrived("busy", "c", 0.0)  # an active call keeps its program alive
    gone = t.expire(now=100.0)
    assert "p2" not in t  # the fourth entry evicted the idlest one
    assert set(gone) == {"p3", "p4"} and "busy" in t


def test_queue_placement_uses_program_service_half_open():
    cfg = QueueConfig(boundaries=(1.0, 2.0, 4.0))
    assert [cfg.level_for(s) for s in (0, 0.99, 1.0, 3.9, 4.0, 100)] == [0, 0, 1, 2, 3, 3]
    assert cfg.k == 4 and cfg.quantum(0) == 1.0 and cfg.quantum(2) == 2.0
    assert math.isinf(cfg.quantum(3))
    with pytest.raises(ConfigError):
        QueueConfig(boundaries=(2.0, 1.0))
    with pytest.raises(ConfigError):
        QueueConfig(boundaries=(1.0,), quanta=(1.0,))


def test_new_call_placed_by_program_service_but_mlfq_enters_q1():
    cfg = QueueConfig(boundaries=(1.0, 2.0))
    for name, expect in (("plas", 2), ("atlas", 2), ("mlfq", 0)):
        q = MultiLevelQueue(get_policy(name), cfg)
        q.table.entry("p", 0).service = 5.0
        assert q.add("c", "p", 0.0).level == expect, name


def test_demotion_carries_overshoot_and_moves_to_tail():
    cfg = QueueConfig(boundaries=(1.0, 2.0), starvation=False)
    q = MultiLevelQueue(get_policy("plas"), cfg)
    q.add("a", "pa", 0.0)
    q.add("b", "pb", 0.0)
    q.start("a", 0.0)
    assert q.charge(["a"], 0.6, 0.6) == []
    assert q.charge(["a"], 0.5, 1.1) == ["a"]
    a = q.get("a")
    assert a.level == 1 and a.quantum_left == pytest.approx(0.9) and a.service == pytest.approx(1.1)
    assert [e.call_id for e in q.ordered()] == ["b", "a"]
    q.charge(["a"], 50.0, 60.0)  # saturates in the last queue
    assert q.get("a").level == 2


def test_running_call_keeps_fcfs_position_within_level():
    q = MultiLevelQueue(get_policy("plas"), QueueConfig(starvation=False))
    for c in "abc":
        q.add(c, "p" + c, 0.0)
    q.start("a", 0.0)
    q.preempt("a", 1.0)
    assert [e.call_id for e in q.ordered()] == ["a", "b", "c"]


def test_program_level_starvation_promotion():
    cfg = QueueConfig(boundaries=(1.0, 2.0), beta=2.0, starvation_floor=1.0)
    q = MultiLevelQueue(get_policy("plas"), cfg)
    q.table.entry("old", 0).service = 4.0  # T = 4, W = 0: promote after beta*T = 8 s waiting
    q.add("x", "old", 0.0)
    q.add("y", "new", 0.0)  # level 0, never needs promotion
    assert q.get("x").level == 2
    assert q.next_promotion_time() == pytest.approx(8.0)
    assert q.promote_starved(7.9) == []
    assert q.promote_starved(8.0) == ["x"]
    x = q.get("x")
    assert x.level == 0 and x.wait_window == 0 and x.window_service == 0
    assert x.wait == pytest.approx(8.0)  # lifetime wait is kept for the table
    assert [e.call_id for e in q.ordered()] == ["y", "x"]  # tail of Q1
    e = q.finish("x", 9.0)
    assert e.wait == pytest.approx(9.0) and q.table.get("old").wait == pytest.approx(9.0)


def test_starvation_floor_for_new_programs_and_rearm_on_sibling_finish():
    cfg = QueueConfig(boundaries=(0.5,), beta=4.0, starvation_floor=1.0)
    q = MultiLevelQueue(get_policy("atlas"), cfg)
    q.add("a", "p", 0.0)
    q.start("a", 0.0)
    q.charge(["a"], 0.6, 0.6)  # demoted to level 1 while running
    q.preempt("a", 0.6)  # waits in level 1: T = 0.6 -> floor 1.0: deadline 0.6 + 4
    assert q.next_promotion_time() == pytest.approx(4.6)
    q.add("b", "p", 0.6)
    q.start("b", 0.6)
    q.charge(["b"], 0.2, 0.8)
    q.finish("b", 1.0)  # program now has wait 0 and service 0.2: deadline unchanged
    assert q.next_promotion_time() == pytest.approx(4.6)
    assert q.promote_starved(4.6) == ["a"]


def test_call_level_starvation_for_mlfq_ignores_program():
    cfg = QueueConfig(boundaries=(0.5,), beta=2.0, starvation_floor=1.0)
    q = MultiLevelQueue(get_policy("mlfq"), cfg)
    q.table.entry("p", 0).wait = 100.0
    q.add("a", "p", 0.0)
    q.start("a", 0.0)
    q.charge(["a"], 3.0, 3.0)
    q.preempt("a", 3.0)
    assert q.next_promotion_time() == pytest.approx(3.0 + 2 * 3.0)


def test_las_orders_by_attained_call_service_and_fcfs_by_arrival():
    q = MultiLevelQueue(get_policy("las"), QueueConfig())
    for c in "ab":
        q.add(c, c, 0.0)
    q.start("a", 0)
    q.charge(["a"], 1.0, 1.0)
    assert [e.call_id for e in q.ordered()] == ["b", "a"]
    f = MultiLevelQueue(get_policy("fcfs"), QueueConfig())
    for c in "ab":
        f.add(c, c, 0.0)
    f.start("a", 0)
    f.charge(["a"], 100.0, 100.0)
    assert [e.call_id for e in f.ordered()] == ["a", "b"]


def test_abort_folds_service_into_program():
    q = MultiLevelQueue(get_policy("plas"), QueueConfig())
    q.add("a", "p", 0.0)
    q.start("a", 0.0)
    q.charge(["a"], 0.7, 1.0)
    q.finish("a", 1.0)  # an abort takes the same path
    assert q.table.get("p").service == pytest.approx(0.7) and len(q) == 0
    q.check_invariants()


def test_registry_names():
    assert list(POLICIES) == ["fcfs", "plas", "atlas", "mlfq", "las", "srpt", "program-priority",
                             "las-router"]
    with pytest.raises(ValueError, match="unknown policy"):
        get_policy("nope")


def test_autellix_balancer_2048_boundary_and_pinning():
    b = AutellixBalancer(3)
    loads = [2, 0, 1]
    assert b.choose("p", 2048, loads) == 1  # short (<= 2048): least used
    assert b.choose("p", 2049, [0, 5, 1]) == 0  # long: pin to least used now
    assert b.choose("p", 9000, [9, 0, 0]) == 0  # sticks despite load
    assert b.choose("p", 100, [9, 0, 0]) == 1  # short calls still spread
    b.program_ended("p")
    assert b.choose("p", 9000, [9, 0, 3]) == 1
    b.engine_failed(1)
    assert b.choose("p", 9000, [9, 0, 3], unavailable={1}) == 2


def test_round_robin_and_least_used():
    rr = RoundRobin(3)
    assert [rr.choose("p", 1, [0, 0, 0]) for _ in range(4)] == [0, 1, 2, 0]
    assert rr.choose("p", 1, [0, 0, 0], unavailable={1}) == 2
    assert LeastUsed(3).choose("p", 1, [3, 1, 1]) == 1
    with pytest.raises(ValueError):
        make_balancer("random", 2)
