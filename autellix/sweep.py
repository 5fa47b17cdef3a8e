"""Running sweep points on the simulator, serially or in a process pool (``--jobs``).

A *point* is (arm, rate, balancer, engine count, seed). Each seed has one pool of
programs; a point simulates the pool's first ``window.programs_needed(rate)``
programs, so every arm at a rate sees the same programs and arrival times, and
statistics come from its steady-state window (:mod:`autellix.steady`).

With ``jobs > 1`` points run in a ``ProcessPoolExecutor``; the pools and the base
config are handed to each worker once, by its initializer, not with every point.
A point's result depends only on the point (the simulator is deterministic given
its seed), and results are returned in submission order, so ``--jobs N`` writes
byte-identical results to ``--jobs 1``. Wall time is the one thing that differs;
it is kept out of the summaries (see ``PointResult.wall``).
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from autellix.arms import get_arm
from autellix.config import ConfigError
from autellix.metrics import RunSummary, summarize
from autellix.steady import Window, check_steady


@dataclass(frozen=True)
class Point:
    arm: str
    rate: float
    balancer: str = "autellix"
    n_engines: int = 1
    seed: int = 0

    @property
    def curve(self) -> tuple:
        return (self.arm, self.balancer, self.n_engines)


@dataclass
class PointResult:
    point: Point
    summary: RunSummary
    program_rows: list[dict] = field(default_factory=list)
    call_rows: list[dict] = field(default_factory=list)
    wall: float = 0.0


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


_CTX: dict = {}


def _init(pools: dict, base, window: Window, keep_calls: bool) -> None:
    _CTX.update(pools=pools, base=base, window=window, keep_calls=keep_calls)


def simulate_point(pt: Point, programs, base, window: Window,
                   keep_calls: bool = False) -> PointResult:
    """Simulate one point and summarise its steady-state window (``window`` as
    :meth:`Window.for_rate` gives it for the point's rate)."""
    from autellix.sim import simulate

    arm = get_arm(pt.arm)
    window = window.for_rate(pt.rate)
    need = window.programs_needed(pt.rate)
    if need > len(programs):
        raise ConfigError(f"{pt.rate:g} programs/s over a {window.span:.0f} s span needs {need} "
                         f"programs; the workload holds {len(programs)}: shorten --window")
    cfg = replace(arm.sim_config(base), rate=pt.rate, balancer=pt.balancer,
                  n_engines=pt.n_engines, seed=pt.seed, max_sim_time=window.horizon,
                  # half the run's programs in the system at once: a stable point's
                  # backlog is rate x mean lifetime, and a lifetime of half the span
                  # (4 unloaded p99 lifetimes) already makes it unstable; past that an
                  # overloaded point only drains, which is most of its cost
                  max_backlog=max(32, need // 2))
    res = simulate(programs[:need], cfg)
    full = res.summary()
    extra = {k: v for k, v in full.extra.items() if k != "wall_time"}
    measured = window.select(res.programs)
    steady = check_steady(measured, window.tolerance, res.programs, window)
    extra.update(n_engines=pt.n_engines, seed=pt.seed, arm=pt.arm, stable=steady.stable,
                 steady=steady.to_dict(), simulated_programs=len(res.programs),
                 simulated_calls=len(res.calls), window_s=window.duration)
    s = summarize(measured, engine="sim", policy=pt.arm, balancer=pt.balancer, rate=pt.rate,
                  extra=extra)
    in_window = {r.program_id for r in measured}
    tag = {"policy": pt.arm, "rate": pt.rate, "balancer": pt.balancer,
           "n_engines": pt.n_engines, "seed": pt.seed}
    rows = [{**tag, **p.to_row(), "in_window": p.program_id in in_window} for p in res.programs]
    calls = [{**tag, **_call_row(c)} for c in res.calls] if keep_calls else []
    return PointResult(pt, s, rows, calls, res.wall_time)


def _call_row(c) -> dict:
    from dataclasses import asdict

    return {**asdict(c), "e2e": c.e2e, "ttft": c.ttft}


def _run_one(pt: Point) -> PointResult:
    c = _CTX
    return simulate_point(pt, c["pools"][pt.seed], c["base"], c["window"], c["keep_calls"])


class PointRunner:
    """Runs batches of points, memoising results, with a pool when ``jobs > 1``.

    Use as a context manager so the pool's workers are shut down."""

    def __init__(self, pools: dict, base, window: Window, jobs: int = 1,
                 keep_calls: bool = False, progress=None, ray_address: str | None = None):
        """``ray_address`` not None: points run as Ray tasks (:mod:`autellix.ray.sweep`;
        "" starts a local Ray instance, else the cluster address) instead of ``jobs``."""
        if jobs < 1:
            raise ConfigError("--jobs must be >= 1")
        self.pools, self.base, self.window = pools, base, window
        self.jobs, self.keep_calls, self.progress = jobs, keep_calls, progress
        self.done: dict[Point, PointResult] = {}
        self._pool: ProcessPoolExecutor | None = None
        self.ray_address = ray_address
        self._ray: Any = None  # autellix.ray.sweep.RayPoints (Ray is optional)

    def __enter__(self) -> PointRunner:
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        if self._ray is not None:
            self._ray.close()
            self._ray = None

    def run(self, points: list[Point]) -> list[PointResult]:
        todo = list(dict.fromkeys(p for p in points if p not in self.done))
        if self.ray_address is not None and todo:
            if self._ray is None:
                from autellix.ray.sweep import RayPoints

                self._ray = RayPoints(self.pools, self.base, self.window, self.keep_calls,
                                      self.ray_address or None)
            for res in self._ray.map(todo):
                self._store(res)
        elif self.jobs == 1 or len(todo) <= 1:
            for pt in todo:
                self._store(simulate_point(pt, self.pools[pt.seed], self.base, self.window,
                                           self.keep_calls))
        else:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.jobs, initializer=_init,
                    initargs=(self.pools, self.base, self.window, self.keep_calls))
            for res in self._pool.map(_run_one, todo):
                self._store(res)
        return [self.done[p] for p in points]

    def _store(self, res: PointResult) -> None:
        self.done[res.point] = res
        if self.progress is not None:
            self.progress(len(self.done), res)
