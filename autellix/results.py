"""Writing a run's results: resolved config, per-program and per-call CSV, summary JSON, plot.

Layout of ``results/<name>/``::

    config.json      resolved configuration (engine, profile, policies, rates, seed, ...)
    programs.csv     one row per program per sweep point
    calls.csv        one row per call (when kept)
    summary.json     run summaries (every one names its engine: "sim" or "vllm") + analysis
    latency.png      program token latency against arrival rate, per scheduler
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, is_dataclass
from pathlib import Path


def _rows(items) -> list[dict]:
    out = []
    for it in items:
        if isinstance(it, dict):
            out.append(it)
        elif hasattr(it, "to_row"):
            out.append(it.to_row())
        elif is_dataclass(it) and not isinstance(it, type):
            d = asdict(it)
            for prop in ("e2e", "ttft", "itl"):
                if hasattr(it, prop):
                    d[prop] = getattr(it, prop)
            out.append(d)
    return out


def _write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    fields: list[str] = []
    for r in rows:
        for k in r:
            if k not in fields:
                fields.append(k)
    with path.open("w", newline="") as fp:
        w = csv.DictWriter(fp, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def _clean(x):
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def write_run(out_dir, config: dict, programs, calls, summaries, analysis: dict | None = None,
              plot: bool = True) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(_clean(config), indent=1, sort_keys=True,
                                                default=str) + "\n")
    _write_csv(out / "programs.csv", _rows(programs))
    _write_csv(out / "calls.csv", _rows(calls))
    doc: dict = {"summaries": [s.to_dict() for s in summaries]}
    if analysis is not None:
        doc["analysis"] = analysis
    (out / "summary.json").write_text(json.dumps(_clean(doc), indent=1, default=str) + "\n")
    if plot and summaries:
        plot_latency(summaries, out / "latency.png", analysis)
    return out


def plot_latency(summaries, path: Path, analysis: dict | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from autellix.compare import curves

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("mean", "p95"), strict=True):
        for (pol, bal, n), pts in sorted(curves(summaries, metric).items()):
            label = pol if len({s.balancer for s in summaries}) == 1 else f"{pol}/{bal}"
            if len({s.extra.get("n_engines", 1) for s in summaries}) > 1:
                label += f" x{n}"
            ax.plot([r for r, _ in pts], [lat for _, lat in pts], marker="o", label=label)
        if analysis and metric == analysis.get("metric") and analysis.get("target"):
            ax.axhline(analysis["target"], color="grey", ls="--", lw=0.8, label="latency target")
        engine = summaries[0].engine
        ax.set_title(f"{metric} program token latency ({engine})")
        ax.set_xlabel("arrival rate (programs/s)")
        ax.set_ylabel("s / token")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
