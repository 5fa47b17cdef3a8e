"""The steady-state window and detector, on synthetic program records and on the simulator."""

import math
import random

import pytest

from autellix.config import ConfigError
from autellix.metrics import ProgramRecord
from autellix.steady import Window, check_steady, mean_backlog


def rec(i, arrival, e2e, tokens=100, status="completed"):
    return ProgramRecord(f"p{i}", "t", "single", arrival, arrival + e2e, 1, tokens, status=status)


def stream(n, rate, e2e_of, seed=0):
    rng = random.Random(seed)
    t, out = 0.0, []
    for i in range(n):
        t += rng.expovariate(rate)
        out.append(rec(i, t, e2e_of(t, rng)))
    return out


W = Window(100.0)  # warm-up 50 s, window [50, 150), cool-down 50 s


def test_window_defaults_halves_and_selects_by_arrival_time():
    assert (W.warmup, W.cooldown, W.span, W.horizon) == (50.0, 50.0, 200.0, 800.0)
    recs = stream(400, 2.0, lambda t, r: 5.0)
    sel = W.select(recs)
    assert sel and all(50 <= r.arrival < 150 for r in sel)
    assert [r.arrival for r in sel] == sorted(r.arrival for r in sel)
    assert len(sel) == sum(50 <= r.arrival < 150 for r in recs)


def test_window_programs_needed_cover_the_span_and_invert():
    w = Window.at_capacity(150, capacity=1.5)
    assert w.duration == pytest.approx(100.0) and w.warmup == pytest.approx(50.0)
    n = w.programs_needed(2.0)
    assert n > 2.0 * w.span
    assert w.programs_needed(w.max_rate(n)) <= n < w.programs_needed(w.max_rate(n) * 1.01)


def test_a_point_below_capacity_gets_a_window_holding_as_many_arrivals_as_at_capacity():
    w = Window(100.0, 50.0, 50.0, min_programs=300.0)  # 300 arrivals: capacity is 3/s
    assert w.for_rate(3.0) is w and w.for_rate(6.0) is w  # at and past capacity: the duration
    slow = w.for_rate(0.6)  # a fifth of capacity: five times as long, warm-up and cool-down too
    assert (slow.duration, slow.warmup, slow.cooldown) == pytest.approx((500.0, 250.0, 250.0))
    assert slow.horizon == pytest.approx(5 * w.horizon) and slow.min_programs is None
    assert 0.6 * slow.duration == pytest.approx(300.0)
    # so below capacity every rate needs the same pool, and more only past it
    assert w.programs_needed(0.6) == w.programs_needed(1.5) == w.programs_needed(3.0)
    assert w.programs_needed(6.0) > w.programs_needed(3.0)
    n = w.programs_needed(6.0)
    assert w.programs_needed(w.max_rate(n)) <= n < w.programs_needed(w.max_rate(n) * 1.01)
    recs = stream(900, 0.6, lambda t, r: 5.0)
    assert all(250 <= r.arrival < 750 for r in slow.select(recs))
    assert len(slow.select(recs)) > len(w.select(recs)) * 3
    assert Window(100.0).for_rate(0.01) == Window(100.0)  # no floor: a fixed duration
    with pytest.raises(ConfigError):
        Window(10.0, min_programs=0)


def test_window_rejects_nonsense():
    for kw in ({"duration": 0}, {"duration": 10, "warmup": -1}, {"duration": 10, "tolerance": 0}):
        with pytest.raises(ConfigError):
            Window(**kw)
    with pytest.raises(ConfigError, match="--window"):
        Window.at_capacity(0, 1.0)


def test_stationary_noisy_latency_is_stable():
    recs = stream(400, 2.0, lambda t, r: r.lognormvariate(1.0, 0.8))  # heavy-ish tail, no trend
    chk = check_steady(W.select(recs), W.tolerance, recs, W)
    assert chk.stable, chk


def test_latency_that_keeps_growing_is_unstable():
    recs = stream(400, 2.0, lambda t, r: 2.0 + 0.2 * t + r.random())  # backlog grows with time
    chk = check_steady(W.select(recs), W.tolerance)
    assert not chk.stable and "grew" in chk.reason and chk.growth > 0.25


def test_small_growth_or_insignificant_growth_is_not_flagged():
    recs = stream(400, 2.0, lambda t, r: 10.0 + 0.01 * t)   # +10% over the window
    assert check_steady(W.select(recs), W.tolerance).stable
    few = [rec(0, 60, 1.0), rec(1, 70, 1.0), rec(2, 120, 1.0), rec(3, 130, 9.0)]
    assert check_steady(few, 0.25).stable  # +400% but two samples a side: not significant


def test_a_lost_measured_program_makes_the_point_unstable():
    recs = stream(400, 2.0, lambda t, r: 5.0)
    sel = W.select(recs)
    sel[3] = rec(999, sel[3].arrival, 1.0, status="aborted")
    chk = check_steady(sel, W.tolerance)
    assert not chk.stable and "did not complete" in chk.reason
    assert not check_steady([], 0.25).stable


def test_backlog_growth_catches_starvation_that_latency_by_arrival_misses():
    # LAS under overload: arrivals stay fast, but a growing set of old programs starves
    # until after the window (they finish in the drain, so nothing is lost).
    recs = stream(400, 2.0, lambda t, r: 2.0)
    starved = [rec(1000 + i, 50 + i, 400 - i) for i in range(0, 100, 2)]  # finish at ~450
    sel = W.select(recs + starved)
    lat_only = check_steady(sel, W.tolerance)
    with_backlog = check_steady(sel, W.tolerance, recs + starved, W)
    assert not with_backlog.stable and "in the system grew" in with_backlog.reason
    assert lat_only.growth < W.tolerance or lat_only.stable


def test_mean_backlog_is_littles_law_on_a_steady_stream():
    recs = stream(2000, 2.0, lambda t, r: 5.0)
    assert mean_backlog(recs, 100, 900) == pytest.approx(10.0, rel=0.1)  # rate x time in system
    assert math.isnan(mean_backlog(recs, 5, 5))


def test_rises_throughout_needs_every_late_quarter_above_every_early_one():
    from autellix.steady import rises_throughout

    assert rises_throughout([1.0, 2.0, 3.0, 4.0])
    assert rises_throughout([2.0, 1.0, 3.0, 2.5])       # noisy, but still a rise
    assert not rises_throughout([9.4, 11.2, 14.9, 9.9])  # a burst that passed (MCTS)
    assert not rises_throughout([31.6, 19.9, 26.4, 37.7])  # first quarter as slow as the last
    assert rises_throughout([1.0, math.nan, 3.0, 4.0])   # too few to rule a rise out


def test_a_swing_that_passes_within_the_window_is_not_a_growing_queue():
    # stationary, with a burst of slow programs over the third quarter [100, 125) that
    # is gone before the window ends: the halves differ by far more than 25%, and the
    # rank test is sure of it
    recs = stream(1600, 8.0, lambda t, r: 5.0 * (2.0 if 97 <= t < 127 else 1.0))
    chk = check_steady(W.select(recs), W.tolerance, recs, W)
    assert chk.growth > 0.25 and chk.t >= 3
    assert chk.stable, chk
    # the same burst, and a first quarter as slow, but latency rising to the end: a trend
    rising = stream(1600, 8.0, lambda t, r: 5.0 + 0.2 * max(0.0, t - 50))
    assert not check_steady(W.select(rising), W.tolerance, rising, W).stable


def test_a_backlog_that_swells_and_drains_is_not_a_growing_one():
    recs = stream(400, 2.0, lambda t, r: 2.0)
    # 60 programs stuck through the third quarter only, out by its end
    stuck = [rec(2000 + i, 100 + i * 0.4, 25 - i * 0.4) for i in range(60)]
    chk = check_steady(W.select(recs + stuck), W.tolerance, recs + stuck, W)
    assert chk.stable, chk
    assert mean_backlog(recs + stuck, 100, 150) > 1.25 * mean_backlog(recs + stuck, 50, 100)


def test_a_simulated_point_past_capacity_is_unstable_and_one_below_it_is_not():
    from autellix.sim import EngineConfig, SimConfig
    from autellix.sim_compare import engine_capacity
    from autellix.sweep import Point, simulate_point
    from autellix.workloads.registry import generate

    base = SimConfig(engine=EngineConfig(max_num_seqs=4))
    cap = engine_capacity(generate("react", 200, 0), base)
    w = Window.at_capacity(60, cap, min_programs=60)
    progs = generate("react", w.programs_needed(2 * cap), 0)
    verdict = {load: simulate_point(Point("fcfs", load * cap, "autellix", 1, 0), progs, base,
                                    w).summary.extra["stable"] for load in (0.5, 2.0)}
    assert verdict == {0.5: True, 2.0: False}
