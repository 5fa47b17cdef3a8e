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
        name = [escape(_run_name(s, varying))] if varying else []
        t.add_row(*name, f"{s.completed}/{s.n_programs}",
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
    cell = " / ".join(_f(sum(t[k] for t in tl) / len(tl) * 1e3, ".1f")
                      for k in ("mean", "p95", "p99"))
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


def window_check_table(check: dict) -> Table:
    """``compare --check-window``: each ratio at the window and at twice it."""
    d1, d2 = check["window_s"]
    verdict = ("converged" if check["converged"] else "NOT converged")
    t = Table(title=f"window check: {d1:.0f} s -> {d2:.0f} s; largest change "
                    f"{check['max_abs_change']:.1%}, {verdict} (at most "
                    f"{check['tolerance']:.0%})")
    for col in ("policy", "balancer", "engines", "ratio", f"{d1:.0f} s", f"{d2:.0f} s",
                "change"):
        t.add_column(col, justify="left" if col in ("policy", "balancer", "ratio") else "right")
    for r in check["rows"]:
        cells = [f"{v:.3f}" if v is not None and math.isfinite(v) else "-"
                 for v in (r["short"], r["long"])]
        ch = "bound" if r["change"] is None else f"{r['change']:+.1%}"
        t.add_row(r["policy"], r["balancer"], str(r["n_engines"]),
                  r["ratio"].replace("vs_", "x "), *cells, ch)
    return t
