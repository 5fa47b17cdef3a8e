"""Sweeps: arrival rates x schedulers (x balancers x engine counts), and their analysis.

``run_sweep`` runs every point on the simulator (or, through ``runner``, on real
engines) and returns plain summaries; ``analyze`` turns them into throughput at a
latency target per scheduler and ratios against the baselines. Pure functions;
the CLI renders them.

Latency target: by default halfway (geometrically) between FCFS's latency at the
lowest and at the highest swept rate, so FCFS's curve crosses it inside the sweep
and the horizontal gap to the other curves is measured where FCFS has degraded.
``target_factor`` instead sets it to that multiple of FCFS's latency at the lowest
rate; a user may also give an absolute target in s/token. Throughput at the target is read
off each scheduler's latency-vs-rate curve by linear interpolation
(:func:`autellix.metrics.throughput_at_latency`).
"""

from __future__ import annotations

import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace

from autellix.config import ConfigError
from autellix.metrics import RunSummary, throughput_at_latency, throughput_ratio


@dataclass(frozen=True)
class SweepPoint:
    policy: str
    rate: float
    balancer: str = "autellix"
    n_engines: int = 1

    @property
    def group(self) -> str:
        return f"{self.balancer}/{self.n_engines}"


@dataclass
class SweepResult:
    summaries: list[RunSummary] = field(default_factory=list)
    program_rows: list[dict] = field(default_factory=list)
    call_rows: list[dict] = field(default_factory=list)


def sweep_points(policies, rates, balancers=("autellix",), engines=(1,)) -> list[SweepPoint]:
    return [SweepPoint(p, r, b, n) for n in engines for b in balancers for p in policies
            for r in sorted(rates)]


def default_jobs() -> int:
    """Worker processes for a sweep: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def sim_point(programs, pt: SweepPoint, base_cfg, keep_calls: bool = False):
    """One sweep point: (summary, program rows, call rows). A pure function of its
    arguments, so it may run in any process (or on a Ray worker) with equal results."""
    from autellix.sim import simulate

    cfg = replace(base_cfg, policy=pt.policy, rate=pt.rate, balancer=pt.balancer,
                  n_engines=pt.n_engines)
    res = simulate(programs, cfg)
    rows = [{"policy": pt.policy, "rate": pt.rate, "balancer": pt.balancer,
             "n_engines": pt.n_engines, **p.to_row()} for p in res.programs]
    calls = [{"policy": pt.policy, "rate": pt.rate, **_call_row(c)} for c in res.calls] \
        if keep_calls else []
    return res.summary(), rows, calls


def run_sim_sweep(programs, points, base_cfg, progress=None, keep_calls=False,
                  jobs: int = 1) -> SweepResult:
    """Simulate every point with the same programs and seed; only the policy,
    balancer, engine count and rate differ between arms.

    ``jobs > 1`` runs points in that many worker processes (each point is
    independent and the simulator is deterministic); results are assembled in point
    order, so they are identical to a serial run. ``progress(done, point, summary)``
    is called as points finish."""
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    results: list = [None] * len(points)
    if jobs == 1 or len(points) < 2:
        for i, pt in enumerate(points):
            results[i] = sim_point(programs, pt, base_cfg, keep_calls)
            if progress is not None:
                progress(i + 1, pt, results[i][0])
    else:
        # spawn, not fork: the parent may hold threads (progress bars, HTTP clients)
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(jobs, len(points)), mp_context=ctx) as pool:
            futures = {pool.submit(sim_point, programs, pt, base_cfg, keep_calls): i
                       for i, pt in enumerate(points)}
            for done, fut in enumerate(as_completed(futures), 1):
                i = futures[fut]
                results[i] = fut.result()
                if progress is not None:
                    progress(done, points[i], results[i][0])
    return assemble(results)


def assemble(results) -> SweepResult:
    """Point results (``sim_point``'s, in point order) as one :class:`SweepResult`."""
    out = SweepResult()
    for summary, rows, calls in results:
        out.summaries.append(summary)
        out.program_rows.extend(rows)
        out.call_rows.extend(calls)
    return out


def _call_row(c) -> dict:
    from dataclasses import asdict
    return {**asdict(c), "e2e": c.e2e, "ttft": c.ttft}


def curves(summaries, metric: str = "mean") -> dict[tuple, list[tuple[float, float]]]:
    """(policy, balancer, n_engines) -> sorted [(rate, token latency metric)]."""
    out: dict[tuple, list] = {}
    for s in summaries:
        key = (s.policy, s.balancer, s.extra.get("n_engines", 1))
        lat = s.token_latency[metric] if s.completed else math.nan
        out.setdefault(key, []).append((s.rate, lat))
    return {k: sorted(v) for k, v in out.items()}


def analyze(summaries, target: float | None = None, target_factor: float | None = None,
            metric: str = "mean", baselines=("fcfs", "mlfq", "round_robin", "least_used"),
            reference: str = "fcfs") -> dict:
    """Throughput at the latency target for each curve, and ratios to baselines.

    Policy ratios compare schedulers under the same balancer and engine count;
    balancer ratios compare balancers under the same policy and engine count. The
    default target is read off the ``reference`` curves (a policy or balancer name;
    all curves when none matches)."""
    cs = curves(summaries, metric)
    if target is None:
        ref = [v for (p, b, n), v in cs.items() if reference in (p, b)] or list(cs.values())
        ref = [[x for x in pts if not math.isnan(x[1])] for pts in ref]
        ref = [pts for pts in ref if pts]
        if not ref:
            target = math.nan
        elif target_factor is None:  # halfway (geometric) up FCFS's curve
            lo = min(pts[0][1] for pts in ref)
            hi = min(max(lat for _, lat in pts) for pts in ref)
            target = math.sqrt(lo * hi)
        else:
            target = target_factor * min(pts[0][1] for pts in ref)
    tput = {k: throughput_at_latency([r for r, _ in v], [lat for _, lat in v], target)
            for k, v in cs.items()}
    rows = []
    for (p, b, n), t in sorted(tput.items(), key=lambda kv: (kv[0][2], kv[0][1], kv[0][0])):
        row = {"policy": p, "balancer": b, "n_engines": n, "throughput": t}
        for base in baselines:
            if (base, b, n) in tput and base != p:
                row[f"vs_{base}"] = throughput_ratio(t, tput[(base, b, n)])
            if (p, base, n) in tput and base != b:
                row[f"vs_{base}"] = throughput_ratio(t, tput[(p, base, n)])
        rows.append(row)
    max_rates = {k: v[-1][0] for k, v in cs.items()}
    return {"metric": metric, "target": target, "rows": rows,
            "saturated": {f"{k[0]}/{k[1]}/{k[2]}": tput[k] >= max_rates[k] for k in tput}}
