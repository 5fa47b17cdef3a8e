"""Rich renderings of summaries and sweep analyses (presentation only)."""

from __future__ import annotations

import math

from rich import box
from rich.markup import escape
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


_IDENTITY = ("policy", "balancer", "rate", "engine")


def _short_engine(engine: str) -> str:
    return engine.split("://", 1)[-1].rstrip("/")


def _ms(x) -> str:
    """ms/token at a width that stays small: 12.3, 4567, 1.23e+06."""
    if x is None or math.isnan(x):
        return "-"
    return f"{x:.1f}" if x < 1000 else f"{x:.0f}" if x < 100_000 else f"{x:.3g}"


def _run_name(s, varying) -> str:
    """The identity parts that differ between rows: ``policy / balancer @rate engine``."""
    name = " / ".join(getattr(s, k) or "-" for k in ("policy", "balancer") if k in varying)
    if "rate" in varying:
        name += f" @{s.rate:g}"
    if "engine" in varying:
        name += " " + (_short_engine(s.engine) or "-")
    return name.strip()


def summary_table(summaries, title: str = "results") -> Table:
    """One row per run: program token latency (mean/p95/p99, ms/token) and throughput.

    Readable at 80 columns: the run's identity (policy, balancer, rate, engine) goes
    into the caption when every row shares it; the parts that differ between rows
    share one first column that wraps between words (``policy / balancer @rate
    engine``). Headers are short words on two lines, numbers never wrap and stay
    short, and adjacent paddings collapse, so no header or number is cut.
    """
    ident = {"engine": lambda s: _short_engine(s.engine) or "-",
             "policy": lambda s: s.policy or "-",
             "balancer": lambda s: s.balancer or "-", "rate": lambda s: f"{s.rate:g}"}
    varying = [k for k in _IDENTITY if len({ident[k](s) for s in summaries}) > 1]
    fixed = [f"{k} {ident[k](summaries[0])}" + (" prog/s" if k == "rate" else "")
             for k in _IDENTITY if k not in varying and summaries]
    caption = escape("  ".join(fixed))
    note = "tok-lat: program e2e / its output tokens, ms"
    t = Table(title=title, caption=f"{caption}\n{note}" if caption else note,
              box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False,
              min_width=max(len(caption), len(note)))
    if varying:
        head = " / ".join(k for k in ("policy", "balancer") if k in varying)
        head += "".join(f" {'@' if k == 'rate' else ''}{k}" for k in ("rate", "engine")
                        if k in varying)
        t.add_column(head.strip(), overflow="fold", ratio=1)
    for col in ("done", "failed aborted", "tok-lat mean", "tok-lat p95", "tok-lat p99",
                "e2e mean(s)", "prog/s"):
        t.add_column(col.replace(" ", "\n"), justify="right", no_wrap=True)
    for s in summaries:
        tl = s.token_latency
        t.add_row(*([escape(_run_name(s, varying))] if varying else []),
                  f"{s.completed}/{s.n_programs}",
                  f"{s.failed}/{s.aborted}", *(_ms(tl[q] * 1e3) for q in ("mean", "p95", "p99")),
                  _f(s.e2e["mean"], ".2f"), _f(s.programs_per_s, ".3f"))
    return t


def failure_table(reasons, title: str = "failed calls") -> Table:
    """Failure reasons with their call and program counts and one example message."""
    t = Table(title=title, box=box.SIMPLE_HEAD)
    t.add_column("reason", overflow="fold")
    t.add_column("calls", justify="right", no_wrap=True)
    t.add_column("programs", justify="right", no_wrap=True)
    t.add_column("example", overflow="fold", ratio=1)
    for r in reasons:
        ex = r.example if len(r.example) <= 160 else r.example[:160].rsplit(" ", 1)[0] + " ..."
        t.add_row(escape(r.kind), str(r.calls), str(r.programs), escape(ex))
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
        t.add_column(col.replace("vs_", "x vs "),
                     justify="left" if col in ("policy", "balancer") else "right")
    sat = analysis.get("saturated", {})
    for r in rows:
        tp = _f(r["throughput"], ".3f")
        if sat.get(f"{r['policy']}/{r['balancer']}/{r['n_engines']}"):
            tp = ">=" + tp
        t.add_row(r["policy"], r["balancer"], str(r["n_engines"]), tp,
                  *[_ratio(r.get(c)) for c in ratio_cols])
    return t
