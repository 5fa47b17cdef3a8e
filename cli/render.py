"""Rich renderings of summaries and sweep analyses (presentation only)."""

from __future__ import annotations

import math

from rich.table import Table


def _f(x, fmt=".4f") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    return format(x, fmt)


def _ratio(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return _f(x, ".2f") + "x"


def summary_table(summaries, title: str = "results") -> Table:
    """One row per run: program token latency (mean/p95/p99) and throughput."""
    t = Table(title=title)
    for col in ("engine", "policy", "balancer", "rate", "done", "failed/aborted",
                "tok-lat mean", "p95", "p99", "e2e mean (s)", "programs/s"):
        t.add_column(col, justify="left" if col in ("engine", "policy", "balancer") else "right")
    for s in summaries:
        t.add_row(s.engine, s.policy, s.balancer, f"{s.rate:g}", f"{s.completed}/{s.n_programs}",
                  f"{s.failed}/{s.aborted}", _f(s.token_latency["mean"]), _f(s.token_latency["p95"]),
                  _f(s.token_latency["p99"]), _f(s.e2e["mean"], ".2f"), _f(s.programs_per_s, ".3f"))
    return t


def bound_text(value: float, bound: str | None, fmt: str = ".3f", suffix: str = "") -> str:
    """A capacity or ratio: ``>=v`` for a lower bound, ``<v`` for an upper bound, ``?``
    when bounds conflict; a bound never prints as a bare number."""
    if bound == "unknown" or value is None or (isinstance(value, float) and math.isnan(value)):
        return "?"
    text = _f(value, fmt) + suffix
    return {"lower": ">=", "upper": "<"}.get(bound or "", "") + text


def _cell_stats(group) -> str:
    if any(not s.extra.get("stable", True) for s in group):
        return "unstable"
    tl = [s.token_latency for s in group]
    cell = " / ".join(_f(sum(t[k] for t in tl) / len(tl) * 1e3, ".1f") for k in ("mean", "p95", "p99"))
    lost = sum(s.failed + s.aborted for s in group)
    return cell + (f" ({lost} lost)" if lost else "")


def sweep_table(summaries, title: str, capacity: float | None = None) -> Table:
    """Rates down, schedulers across: mean / p95 / p99 program token latency (ms/token),
    averaged over seeds; ``unstable`` where a point never reached steady state."""
    keys = []
    for s in summaries:
        k = (s.policy, s.balancer, s.extra.get("n_engines", 1))
        if k not in keys:
            keys.append(k)
    multi_bal = len({k[1] for k in keys}) > 1
    multi_n = len({k[2] for k in keys}) > 1
    t = Table(title=title)
    t.add_column("rate (prog/s)", justify="right")
    for p, b, n in keys:
        name = p + (f"/{b}" if multi_bal else "") + (f" x{n}" if multi_n else "")
        t.add_column(f"{name}\nmean / p95 / p99", justify="right")
    by: dict = {}
    for s in summaries:
        by.setdefault((s.policy, s.balancer, s.extra.get("n_engines", 1), s.rate), []).append(s)
    for rate in sorted({s.rate for s in summaries}):
        n0 = min(k[2] for k in keys)
        row = [f"{rate:g}" + (f" ({rate / (capacity * n0):.2f}x)" if capacity else "")]
        for k in keys:
            group = by.get((*k, rate))
            row.append(_cell_stats(group) if group else "-")
        t.add_row(*row)
    return t


def _ratio_cell(r: dict | None) -> str:
    if not r:
        return "-"
    text = bound_text(r["mean"], r.get("bound"), ".2f", "x")
    lo, hi = r.get("ci95", [None, None])
    if r.get("bound") is None and lo is not None and not math.isnan(lo):
        text += f" [{lo:.2f}, {hi:.2f}]"
    return text


def throughput_table(analysis: dict, title: str) -> Table:
    """Capacity at the SLO per arm, and its ratio to each baseline (mean [95% CI] over seeds)."""
    rows = analysis["rows"]
    from autellix.arms import BASELINES

    order = {f"vs_{b}": i for i, b in enumerate(BASELINES)}
    ratio_cols = sorted({k for r in rows for k in r if k.startswith("vs_")},
                        key=lambda k: (order.get(k, len(order)), k))
    t = Table(title=title)
    for col in ("policy", "balancer", "engines", "programs/s at SLO", *ratio_cols):
        t.add_column(col.replace("vs_", "x vs "),
                     justify="left" if col in ("policy", "balancer") else "right")
    for r in rows:
        cap = r["capacity"]
        cell = bound_text(cap["mean"], r.get("bound"))
        if r.get("bound") is None and cap["ci95"][0] is not None and not math.isnan(cap["ci95"][0]):
            cell += f" [{cap['ci95'][0]:.3f}, {cap['ci95'][1]:.3f}]"
        t.add_row(r["policy"], r["balancer"], str(r["n_engines"]), cell,
                  *[_ratio_cell(r.get(c)) for c in ratio_cols])
    return t
