"""Capacity at an SLO: bracketing + bisection on synthetic latency curves, ratio bounds,
and how bounds render (a bound never prints as a bare number)."""

import math

import pytest

from autellix.compare import _pair_ratio, capacity_rows
from autellix.config import ConfigError
from autellix.slo import SLO, Capacity, CapacitySearch, run_searches
from autellix.stats import mean_ci, rank_z, t975, welch_t


def queueing_curve(cap, base=1.0):
    """M/M/1-like: latency base / (1 - rate/cap), infinite (unstable) past cap."""
    return lambda r: base / (1 - r / cap) if r < cap else math.inf


def search(curve, slo, start=1.0, **kw):
    s = CapacitySearch(slo, start, **kw)
    while (r := s.next_rate()) is not None:
        s.observe(r, curve(r))
    return s.result()


def test_search_finds_the_crossing_of_a_queueing_curve_within_tolerance():
    # latency 3 (= SLO) at rate 2/3 of cap
    res = search(queueing_curve(10.0), slo=3.0, start=1.0, rel_tol=0.01)
    assert res.bound is None and res.lo <= res.rate <= res.hi
    assert res.rate == pytest.approx(10 * 2 / 3, rel=0.01)
    assert queueing_curve(10.0)(res.lo) <= 3.0 < queueing_curve(10.0)(res.hi)


def test_search_brackets_downward_when_the_start_already_misses():
    res = search(queueing_curve(1.0), slo=3.0, start=4.0, rel_tol=0.01)
    assert res.bound is None and res.rate == pytest.approx(2 / 3, rel=0.01)


def test_curve_that_never_crosses_gives_a_lower_bound_at_the_last_rate_tried():
    res = search(lambda r: 1.0, slo=3.0, start=1.0, max_extend=3)
    assert res.bound == "lower" and res.hi is None and res.rate == 8.0
    res = search(lambda r: 1.0, slo=3.0, start=1.0, max_rate=5.0)
    assert res.bound == "lower" and res.rate == 5.0  # stopped at what the programs can fill


def test_curve_that_always_misses_gives_an_upper_bound():
    res = search(lambda r: math.inf, slo=3.0, start=1.0, max_extend=2)
    assert res.bound == "upper" and res.rate == 0.0 and res.hi == 0.25


def test_searches_run_in_lockstep_rounds_and_reuse_seeded_observations():
    curves = {"a": queueing_curve(10.0), "b": queueing_curve(20.0)}
    searches = {k: CapacitySearch(3.0, 1.0, rel_tol=0.02) for k in curves}
    searches["a"].observe(5.0, curves["a"](5.0))   # from a grid
    searches["a"].observe(8.0, curves["a"](8.0))
    rounds = []

    def measure(todo):
        rounds.append([k for k, _ in todo])
        return [curves[k](r) for k, r in todo]

    caps = run_searches(searches, measure)
    assert caps["a"].rate == pytest.approx(20 / 3, rel=0.02)
    assert caps["b"].rate == pytest.approx(40 / 3, rel=0.02)
    assert rounds[0] == ["a", "b"]            # one batch per round, both arms
    assert sum(k == "a" for r in rounds for k in r) < sum(k == "b" for r in rounds for k in r)


def test_ratio_against_or_of_a_bound_is_a_bound():
    exact, lower, upper = Capacity(2.0, 2.0, 2.1, None, 5), Capacity(4.0, 4.0, None, "lower", 3), \
        Capacity(0.0, None, 0.5, "upper", 3)
    assert _pair_ratio(exact, exact) == (1.0, None)
    assert _pair_ratio(lower, exact) == (2.0, "lower")
    assert _pair_ratio(exact, lower) == (0.5, "upper")
    assert _pair_ratio(exact, upper) == (4.0, "lower")
    assert _pair_ratio(lower, lower)[1] == "unknown"


def test_capacity_rows_give_mean_and_ci_over_seeds_and_propagate_bounds():
    caps = {}
    for s, (a, b) in enumerate([(2.0, 1.0), (2.2, 1.0), (1.8, 1.0)]):
        caps[(("atlas", "autellix", 1), s)] = Capacity(a, a, a * 1.01, None, 4)
        caps[(("vllm-opt", "autellix", 1), s)] = Capacity(b, b, b * 1.01, None, 4)
    caps[(("srpt", "autellix", 1), 0)] = Capacity(5.0, 5.0, None, "lower", 4)
    for s in (1, 2):
        caps[(("srpt", "autellix", 1), s)] = Capacity(5.0, 5.0, 5.1, None, 4)
    rows = {r["policy"]: r for r in capacity_rows(caps, [0, 1, 2])}
    r = rows["atlas"]["vs_vllm-opt"]
    assert r["mean"] == pytest.approx(2.0) and r["bound"] is None
    half = t975(2) * 0.2 / math.sqrt(3)
    assert r["ci95"] == pytest.approx([2.0 - half, 2.0 + half])
    assert rows["srpt"]["bound"] == "lower" and rows["srpt"]["vs_vllm-opt"]["bound"] == "lower"
    assert "vs_vllm-opt" not in rows["vllm-opt"]


def test_bounds_render_with_signs_and_never_as_bare_numbers():
    from rich.console import Console

    from autellix.cli.render import bound_text, throughput_table

    assert bound_text(2.5, "lower", ".2f", "x") == ">=2.50x"
    assert bound_text(0.5, "upper", ".2f", "x") == "<0.50x"
    assert bound_text(1.5, None, ".2f", "x") == "1.50x"
    assert bound_text(1.5, "unknown") == "?"
    analysis = {"rows": [
        {"policy": "srpt", "balancer": "autellix", "n_engines": 1, "bound": "lower",
         "capacity": {"mean": 5.0, "ci95": [math.nan, math.nan], "n": 1},
         "vs_fcfs": {"mean": 2.5, "ci95": [math.nan, math.nan], "n": 1, "bound": "lower"}},
        {"policy": "atlas", "balancer": "autellix", "n_engines": 1, "bound": None,
         "capacity": {"mean": 3.0, "ci95": [2.8, 3.2], "n": 3},
         "vs_fcfs": {"mean": 1.5, "ci95": [1.4, 1.6], "n": 3, "bound": None}}]}
    con = Console(width=200, record=True)
    con.print(throughput_table(analysis, "t"))
    text = con.export_text()
    assert ">=5.000" in text and ">=2.50x" in text and "1.50x [1.40, 1.60]" in text
    assert " 5.000" not in text.replace(">=5.000", "")


def test_slo_parsing_and_validation():
    assert SLO.parse("3x").factor == 3.0 and SLO.parse("3x").value is None
    assert SLO.parse("0.05", "p95").value == 0.05 and SLO.parse("0.05", "p95").resolve(1) == 0.05
    assert SLO.parse("2.5X").resolve(0.01) == pytest.approx(0.025)
    for bad in ("fast", "-1", "0.5x"):
        with pytest.raises(ConfigError):
            SLO.parse(bad)
    with pytest.raises(ConfigError, match="metric"):
        SLO("median")


def test_mean_ci_and_welch_t():
    e = mean_ci([1.0, 2.0, 3.0])
    assert e.mean == 2.0 and e.lo == pytest.approx(2 - 4.303 / math.sqrt(3))
    one = mean_ci([1.7])
    assert one.mean == 1.7 and math.isnan(one.lo) and one.n == 1
    assert mean_ci([]).n == 0 and math.isnan(mean_ci([]).mean)
    assert welch_t([1, 2, 3], [4, 5, 6]) > 3 and welch_t([1, 2, 3], [1, 2, 3]) == 0.0
    assert t975(100) == 1.96
    assert rank_z([1, 2, 3, 4], [5, 6, 7, 8]) > 2 and rank_z([1, 2], [1, 2]) == 0.0
    assert rank_z([5, 6, 7, 8], [1, 2, 3, 4]) == -rank_z([1, 2, 3, 4], [5, 6, 7, 8])
    # one huge outlier moves Welch's t but barely the rank statistic
    a, b = [1.0, 1.1, 0.9, 1.0, 1.05, 0.95], [1.0, 1.1, 0.9, 1.0, 1.05, 60.0]
    assert abs(rank_z(a, b)) < 1.0
