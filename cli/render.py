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


def sweep_table(summaries, title: str, capacity: float | None = None) -> Table:
    """Rates down, schedulers across: mean / p95 / p99 program token latency (ms/token)."""
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
    by = {(s.policy, s.balancer, s.extra.get("n_engines", 1), s.rate): s for s in summaries}
    for rate in sorted({s.rate for s in summaries}):
        row = [f"{rate:g}" + (f" ({rate / capacity:.1f}x)" if capacity else "")]
        for k in keys:
            s = by.get((*k, rate))
            if s is None:
                row.append("-")
                continue
            tl = s.token_latency
            cell = " / ".join(_f(tl[k] * 1e3, ".1f") for k in ("mean", "p95", "p99"))
            if s.failed or s.aborted:
                cell += f" ({s.failed + s.aborted} lost)"
            row.append(cell)
        t.add_row(*row)
    return t


def throughput_table(analysis: dict, title: str) -> Table:
    rows = analysis["rows"]
    ratio_cols = sorted({k for r in rows for k in r if k.startswith("vs_")})
    t = Table(title=title)
    for col in ("policy", "balancer", "engines", "programs/s at target", *ratio_cols):
        t.add_column(col.replace("vs_", "x vs "), justify="left" if col in ("policy", "balancer") else "right")
    sat = analysis.get("saturated", {})
    for r in rows:
        tp = _f(r["throughput"], ".3f")
        if sat.get(f"{r['policy']}/{r['balancer']}/{r['n_engines']}"):
            tp = ">=" + tp
        t.add_row(r["policy"], r["balancer"], str(r["n_engines"]), tp,
                  *[_ratio(r.get(c)) for c in ratio_cols])
    return t
