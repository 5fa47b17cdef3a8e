"""A whole simulated comparison: unloaded reference, window, grid, SLO, search.

``run_sim_compare`` is what ``autellix compare`` (engine ``sim``), the perf gate and
the benchmarks call. Steps:

1. **Unloaded reference**: the reference arm at 5% of capacity, over a window of
   ``UNLOADED_PROGRAMS`` arrivals per seed: the base of a relative SLO, and the
   programs' unloaded lifetimes.
2. **Window**: ``window_programs`` arrivals at capacity, but never shorter than
   ``LIFETIMES`` x the unloaded p99 program e2e: a window shorter than the longest
   programs' lifetime measures programs still in flight and drifts with its length.
   A point below capacity gets a window stretched to hold as many arrivals as that
   (:meth:`autellix.steady.Window.for_rate`), so a slow arm is measured on as many
   programs as a fast one.
3. **Grid**, then **capacity search** per SLO (:mod:`autellix.compare`).

It returns plain data; writing and printing live in :mod:`autellix.results` and the CLI.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from autellix.compare import (
    capacity_rows,
    grid_points,
    reference_arm,
    search_capacities,
    slo_values,
)
from autellix.slo import SLO, UNLOADED_LOAD
from autellix.steady import Window
from autellix.sweep import Point, PointRunner, simulate_point

SEARCH_HEADROOM = 4.0    # the search may try rates up to this multiple of the top grid rate
UNLOADED_PROGRAMS = 200  # arrivals measured for the unloaded reference
LIFETIMES = 4.0          # window >= this many unloaded p99 program lifetimes


@dataclass
class CompareOutcome:
    grid: list                      # PointResult per grid point, in grid order
    extra_points: list              # PointResults the search added, in run order
    analysis: dict
    capacity_by_n: dict
    rates_by_n: dict
    window: Window | None = None
    timings: dict = field(default_factory=dict)

    @property
    def summaries(self) -> list:
        return [r.summary for r in self.grid]

    @property
    def window_programs(self) -> float:
        """The window as ``window_programs`` states it: arrivals, over its duration, at
        the smallest cluster's capacity (a rerun with twice this doubles the window)."""
        assert self.window is not None
        return self.window.duration * self.capacity_by_n[min(self.capacity_by_n)]


def engine_capacity(sample, base) -> float:
    """Programs/s one engine serves at full batch efficiency (autellix.sim.capacity)."""
    from autellix.sim.capacity import estimate_capacity

    return estimate_capacity(sample, replace(base, n_engines=1))


def unloaded_reference(loader, seeds, base, ref: str, balancer: str, rate: float) -> dict:
    """seed -> RunSummary of ``ref`` at ``rate`` over ``UNLOADED_PROGRAMS`` arrivals."""
    win = Window.at_capacity(UNLOADED_PROGRAMS, rate)
    out = {}
    for s in seeds:
        programs = loader(win.programs_needed(rate), s)
        out[s] = simulate_point(Point(ref, rate, balancer, 1, s), programs, base, win).summary
    return out


def run_sim_compare(loader, seeds, base, arms, *, window_programs: float, slo: SLO,
                    capacity: float, loads=None, rates=None, balancers=("autellix",),
                    engines=(1,), jobs: int = 1, search: bool = True, keep_calls: bool = False,
                    progress=None, rel_tol: float = 0.03, also=(), warmup: float = 0.5,
                    cooldown: float = 0.5, lifetimes: float = LIFETIMES,
                    ray_address: str | None = None) -> CompareOutcome:
    """``loader(n, seed)`` -> programs; ``capacity``: one engine's (``engine_capacity``);
    rates default to ``loads`` x capacity. ``also``: more SLOs searched on the same runs
    (rows in ``analysis["also"][metric]``). ``lifetimes``: the window's floor, in
    unloaded p99 program lifetimes (tests of plumbing lower it to run faster).
    ``ray_address`` not None: sweep points run as Ray tasks (``compare --ray``)."""
    seeds, arms, engines = list(seeds), list(arms), list(engines)
    t0 = time.perf_counter()
    capacity_by_n = {n: capacity * n for n in engines}
    ref = reference_arm(arms)
    unloaded = unloaded_reference(loader, seeds, base, ref, balancers[0],
                                  round(UNLOADED_LOAD * capacity, 6))
    life = max(s.e2e["p99"] for s in unloaded.values())
    user = Window.at_capacity(window_programs, capacity * min(engines), warmup, cooldown)
    d = max(user.duration, lifetimes * life)
    # every point holds at least the arrivals the window holds at capacity (Window.for_rate)
    window = Window(d, warmup * d, cooldown * d, min_programs=d * capacity * min(engines))
    if rates:
        rates_by_n = {n: sorted(rates) for n in engines}
    else:
        rates_by_n = {n: sorted(round(x * capacity_by_n[n], 6) for x in loads) for n in engines}
    top = max(max(r) for r in rates_by_n.values())
    pools = {s: loader(window.programs_needed(top * SEARCH_HEADROOM), s) for s in seeds}
    max_rate = window.max_rate(min(len(p) for p in pools.values()))
    pts = grid_points(arms, rates_by_n, balancers, seeds)
    analysis: dict = {"seeds": seeds, "window": {**window.to_dict(), "min_lifetimes": lifetimes},
                      "slo": slo.to_dict(),
                      "metric": slo.metric, "rows": [],
                      "unloaded": {"arm": ref, "rate": next(iter(unloaded.values())).rate,
                                   "p99_program_e2e_s": life,
                                   "token_latency_mean": [s.token_latency["mean"]
                                                          for s in unloaded.values()]}}
    with PointRunner(pools, base, window, jobs, keep_calls, progress, ray_address) as runner:
        grid = runner.run(pts)
        if search:
            curves = list(dict.fromkeys(p.curve for p in pts))
            for i, target in enumerate([slo, *also]):
                slo_by_n = slo_values(target, unloaded, engines)
                caps = search_capacities(runner, curves, seeds, slo_by_n, target.metric,
                                         {n: capacity_by_n[n] * 0.5 for n in engines}, rel_tol,
                                         max_rate)
                part = {"slo": target.to_dict(), "reference": ref,
                        "slo_by_engines": {str(n): v for n, v in slo_by_n.items()},
                        "target": slo_by_n[engines[0]]["value"],
                        "rows": capacity_rows(caps, seeds)}
                if i == 0:
                    analysis.update(part)
                else:
                    analysis.setdefault("also", {})[target.metric] = part
        in_grid = set(pts)
        extra = [r for p, r in runner.done.items() if p not in in_grid]
    timings = {"total_s": time.perf_counter() - t0, "jobs": jobs, "points": len(runner.done),
               "sim_wall_s": sum(r.wall for r in runner.done.values())}
    return CompareOutcome(grid, extra, analysis, capacity_by_n, rates_by_n, window, timings)
