"""``autellix compare``'s engine-independent core: a rate grid, then capacity at an SLO.

1. **Grid.** Every arm (:mod:`autellix.arms`) at every rate, per seed, each point
   measured at steady state (:mod:`autellix.steady`); this is the latency table.
2. **SLO.** Absolute, or a multiple of the unloaded statistic of the reference arm
   (``vllm-opt``, else ``fcfs``, else the first arm) at 5% of capacity.
3. **Capacity search** per (arm, balancer, engine count, seed), bracketed from the
   grid and bisected (:mod:`autellix.slo`), all searches in lockstep so a process
   pool runs each round in parallel (:mod:`autellix.sweep`).
4. **Ratios** of capacities against every baseline present (``vllm``, ``vllm-opt``,
   ``fcfs``, ``mlfq``; balancers against ``round_robin``/``least_used`` under the same
   arm), one ratio per seed, then mean and 95% CI over seeds (:mod:`autellix.stats`).
   A ratio involving a bound is itself a bound (``>=`` or ``<``).
5. **Window check** (``compare --check-window``, ``benchmarks/convergence.py``): the
   same comparison with the window doubled; :func:`window_change` says how far each
   ratio moved. Issue 12's criterion for a converged answer: at most ``CONVERGED``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from autellix.arms import BASELINES
from autellix.config import ConfigError
from autellix.slo import SLO, UNLOADED_LOAD, Capacity, CapacitySearch, run_searches, statistic
from autellix.stats import mean_ci
from autellix.sweep import Point


@dataclass
class SweepResult:
    """Summaries and per-program rows of a sweep (the real-engine path fills this)."""
    summaries: list = field(default_factory=list)
    program_rows: list[dict] = field(default_factory=list)
    call_rows: list[dict] = field(default_factory=list)


def grid_points(arms, rates_by_n: dict, balancers=("autellix",), seeds=(0,)) -> list[Point]:
    return [Point(a, r, b, n, s) for n, rates in rates_by_n.items() for b in balancers
            for a in arms for r in sorted(rates) for s in seeds]


def reference_arm(arms) -> str:
    for name in ("vllm-opt", "fcfs", "vllm-fcfs"):
        if name in arms:
            return name
    return arms[0]


def slo_values(slo: SLO, unloaded: dict, engines) -> dict:
    """SLO value per engine count: absolute, or factor x the reference's unloaded
    statistic (``unloaded``: seed -> RunSummary of the reference arm at low load)."""
    vals = [statistic(s, slo.metric) for s in unloaded.values()]
    if slo.value is None and not all(math.isfinite(v) for v in vals):
        raise ConfigError(f"the reference arm is not stable even at {UNLOADED_LOAD:.0%} of "
                           "capacity; give --slo as a number")
    base = sum(vals) / len(vals) if vals else math.nan
    rate = next(iter(unloaded.values())).rate if unloaded else None
    return {n: {"value": slo.resolve(base), "unloaded": base, "unloaded_rate": rate}
            for n in engines}


def search_capacities(runner, curves, seeds, slo_by_n: dict, metric: str, start_by_n: dict,
                      rel_tol: float = 0.03, max_rate: float = math.inf) -> dict:
    """(curve, seed) -> Capacity. Grid points already run seed each bracket for free."""
    searches = {}
    for curve in curves:
        arm, bal, n = curve
        for s in seeds:
            srch = CapacitySearch(slo_by_n[n]["value"], start_by_n[n], rel_tol=rel_tol,
                                  max_rate=max_rate)
            for pt, res in runner.done.items():
                if pt.curve == curve and pt.seed == s:
                    srch.observe(pt.rate, statistic(res.summary, metric))
            searches[(curve, s)] = srch

    def measure(todo):
        pts = [Point(k[0][0], r, k[0][1], k[0][2], k[1]) for k, r in todo]
        return [statistic(res.summary, metric) for res in runner.run(pts)]

    return run_searches(searches, measure)


def _pair_ratio(a: Capacity, b: Capacity) -> tuple[float, str | None]:
    """Ratio of capacities and its kind: None (estimate), 'lower' or 'upper' bound."""
    kinds = {(None, None): None, ("lower", None): "lower", (None, "upper"): "lower",
             ("lower", "upper"): "lower", (None, "lower"): "upper", ("upper", None): "upper",
             ("upper", "lower"): "upper"}
    kind = kinds.get((a.bound, b.bound), "unknown")
    ra = a.hi if a.bound == "upper" else a.rate
    rb = b.hi if b.bound == "upper" else b.rate
    if kind == "unknown" or not ra or not rb:
        return math.nan, "unknown"
    return ra / rb, kind


def _combine(kinds) -> str | None:
    ks = set(kinds)
    if "unknown" in ks or {"lower", "upper"} <= ks:
        return "unknown"
    return "lower" if "lower" in ks else "upper" if "upper" in ks else None


def capacity_rows(caps: dict, seeds, baselines=BASELINES) -> list[dict]:
    curves = list(dict.fromkeys(k[0] for k in caps))
    rows = []
    for curve in curves:
        arm, bal, n = curve
        per = [caps[(curve, s)] for s in seeds]
        est = mean_ci(c.rate for c in per)
        row = {"policy": arm, "balancer": bal, "n_engines": n, "capacity": est.to_dict(),
               "bound": _combine(c.bound for c in per), "per_seed": [c.to_dict() for c in per]}
        for base in baselines:
            other = None
            if (base, bal, n) in curves and base != arm:
                other = (base, bal, n)
            elif (arm, base, n) in curves and base != bal:
                other = (arm, base, n)
            if other is None:
                continue
            pairs = [_pair_ratio(caps[(curve, s)], caps[(other, s)]) for s in seeds]
            r = mean_ci(v for v, _ in pairs)
            row[f"vs_{base}"] = {**r.to_dict(), "bound": _combine(k for _, k in pairs),
                                 "per_seed": [v for v, _ in pairs]}
        rows.append(row)
    return rows


def grid_capacities(summaries, slo_value: float, metric: str) -> dict:
    """Capacity read off measured points only (no new runs): for real engines."""
    groups: dict = {}
    for s in summaries:
        key = ((s.policy, s.balancer, s.extra.get("n_engines", 1)), s.extra.get("seed", 0))
        groups.setdefault(key, []).append(s)
    out = {}
    for key, ss in groups.items():
        srch = CapacitySearch(slo_value, min(x.rate for x in ss), max_extend=0)
        for x in ss:
            srch.observe(x.rate, statistic(x, metric))
        out[key] = srch.result()
    return out


def curves(summaries, metric: str = "mean") -> dict[tuple, list[tuple[float, float]]]:
    """(arm, balancer, n_engines) -> sorted [(rate, seed-mean statistic)]; nan if unstable."""
    acc: dict = {}
    for s in summaries:
        key = (s.policy, s.balancer, s.extra.get("n_engines", 1))
        v = s.token_latency[metric] if s.completed and s.extra.get("stable", True) else math.nan
        acc.setdefault(key, {}).setdefault(s.rate, []).append(v)
    return {k: sorted((r, sum(v) / len(v)) for r, v in d.items()) for k, d in acc.items()}


CONVERGED = 0.10  # doubling the window moves no ratio by more than this


def window_change(short: dict, long: dict, short_s: float, long_s: float,
                  tolerance: float = CONVERGED) -> dict:
    """Each capacity ratio (mean over seeds) of analysis ``short`` against the same
    ratio of ``long``, the comparison rerun with a longer window (``short_s`` and
    ``long_s`` seconds). A ratio that is a bound in either run cannot be compared
    (``change`` None), and then the answer is not ``converged``."""
    by_key = {(r["policy"], r["balancer"], r["n_engines"]): r for r in long.get("rows", [])}
    rows, worst, unknown = [], 0.0, False
    for r1 in short.get("rows", []):
        key = (r1["policy"], r1["balancer"], r1["n_engines"])
        r2 = by_key.get(key)
        for k in (k for k in r1 if k.startswith("vs_")):
            a, b = r1[k], (r2 or {}).get(k)
            change = None
            if b is not None and a.get("bound") is None and b.get("bound") is None \
                    and a["mean"] > 0 and math.isfinite(b["mean"]):
                change = b["mean"] / a["mean"] - 1
            if change is None:
                unknown = True
            else:
                worst = max(worst, abs(change))
            rows.append({"policy": key[0], "balancer": key[1], "n_engines": key[2],
                         "ratio": k, "short": a["mean"], "long": b["mean"] if b else None,
                         "change": change})
    return {"window_s": [short_s, long_s], "tolerance": tolerance, "rows": rows,
            "max_abs_change": worst, "converged": bool(rows) and not unknown
            and worst <= tolerance}
