"""A whole simulated comparison: programs per seed, the grid, the SLO, the search.

``run_sim_compare`` is what ``autellix compare`` (engine ``sim``), the perf gate and
``benchmarks/paper_table.py`` call. It returns plain data; writing and printing
live in :mod:`autellix.results` and the CLI.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from autellix.compare import (capacity_rows, grid_points, reference_arm, search_capacities,
                              unloaded_slo)
from autellix.slo import SLO
from autellix.steady import Window
from autellix.sweep import PointRunner


@dataclass
class CompareOutcome:
    grid: list                      # PointResult per grid point, in grid order
    extra_points: list              # PointResults the search added, in run order
    analysis: dict
    capacity_by_n: dict
    rates_by_n: dict
    timings: dict = field(default_factory=dict)

    @property
    def summaries(self) -> list:
        return [r.summary for r in self.grid]


SEARCH_HEADROOM = 4.0  # the search may try rates up to this multiple of the top grid rate


def engine_capacity(sample, base) -> float:
    """Programs/s one engine serves at full batch efficiency (autellix.sim.capacity)."""
    from dataclasses import replace

    from autellix.sim.capacity import estimate_capacity

    return estimate_capacity(sample, replace(base, n_engines=1))


def make_pools(loader, seeds, window: Window, max_rate: float) -> dict:
    """seed -> a pool big enough for every point up to ``max_rate``: ``loader(n, seed)``."""
    n = window.programs_needed(max_rate)
    return {s: loader(n, s) for s in seeds}


def run_sim_compare(pools: dict, base, arms, *, window: Window, slo: SLO, capacity: float,
                    loads=None, rates=None, balancers=("autellix",), engines=(1,), jobs: int = 1,
                    search: bool = True, keep_calls: bool = False, progress=None,
                    rel_tol: float = 0.03, also=()) -> CompareOutcome:
    """``capacity``: one engine's (``engine_capacity``); rates default to ``loads`` x it.
    ``also``: more SLOs (e.g. p95, p99) searched on the same runs; their rows land in
    ``analysis["also"][metric]``."""
    seeds = list(pools)
    arms = list(arms)
    t0 = time.perf_counter()
    capacity_by_n = {n: capacity * n for n in engines}
    max_rate = window.max_rate(min(len(p) for p in pools.values()))
    if rates:
        rates_by_n = {n: sorted(rates) for n in engines}
    else:
        rates_by_n = {n: sorted(round(x * capacity_by_n[n], 6) for x in loads) for n in engines}
    pts = grid_points(arms, rates_by_n, balancers, seeds)
    analysis: dict = {"seeds": seeds, "window": window.to_dict(), "slo": slo.to_dict(),
                      "metric": slo.metric, "rows": []}
    with PointRunner(pools, base, window, jobs, keep_calls, progress) as runner:
        grid = runner.run(pts)
        if search:
            ref = reference_arm(arms)
            curves = list(dict.fromkeys(p.curve for p in pts))
            for i, target in enumerate([slo, *also]):
                slo_by_n = unloaded_slo(runner, target, ref, balancers[0], capacity_by_n, seeds)
                caps = search_capacities(runner, curves, seeds, slo_by_n, target.metric,
                                         {n: capacity_by_n[n] * 0.5 for n in engines}, rel_tol,
                                         max_rate)
                part = {"slo": target.to_dict(), "reference": ref,
                        "slo_by_engines": {str(n): v for n, v in slo_by_n.items()},
                        "target": slo_by_n[engines[0]]["value"], "rows": capacity_rows(caps, seeds)}
                if i == 0:
                    analysis.update(part)
                else:
                    analysis.setdefault("also", {})[target.metric] = part
        in_grid = set(pts)
        extra = [r for p, r in runner.done.items() if p not in in_grid]
    timings = {"total_s": time.perf_counter() - t0, "jobs": jobs, "points": len(runner.done),
               "sim_wall_s": sum(r.wall for r in runner.done.values())}
    return CompareOutcome(grid, extra, analysis, capacity_by_n, rates_by_n, timings)
