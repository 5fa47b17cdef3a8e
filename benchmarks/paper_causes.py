"""Why a paper-table ratio is what it is: how much queue there is to reorder at capacity.

usage: python benchmarks/paper_causes.py results/paper-table/react [--policy plas]
           [--reference vllm-opt]

Reads a ``compare``/``paper_table`` results folder (``config.json``, ``summary.json``)
and prints, per seed:

* the reference arm's capacity at the SLO, in programs/s and as a multiple of the
  engine's full-batch capacity;
* the reference's *waiting share* (the fraction of program time spent queued, not
  running) at the grid point nearest below that capacity: a scheduler reorders the
  queue, so where the share is small there is little for it to gain at the SLO;
* mean program token latency of the reference and of ``--policy`` at the highest grid
  load, with ``unstable`` where the steady-state detector flagged the point, and
  their ratio: the gain past the SLO's capacity.

Nothing is rerun; the figures come from the folder's grid points.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def by_seed(summaries, policy):
    out: dict[int, list] = {}
    for s in summaries:
        if s["policy"] == policy and s.get("balancer", "autellix") == "autellix":
            out.setdefault(s["extra"]["seed"], []).append(s)
    return {k: sorted(v, key=lambda s: s["rate"]) for k, v in out.items()}


def latency(point) -> str:
    ms = point["token_latency"]["mean"] * 1e3
    return f"{ms:.1f}" + ("" if point["extra"].get("stable", True) else " (unstable)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--policy", default="", help="the autellix arm (default: the "
                    "folder's atlas or plas arm)")
    ap.add_argument("--reference", default="vllm-opt")
    a = ap.parse_args()
    cfg = json.loads((a.folder / "config.json").read_text())
    doc = json.loads((a.folder / "summary.json").read_text())
    policy = a.policy or next(p for p in ("atlas", "plas") if p in cfg["arms"])
    full = cfg["capacity_per_engine"]
    cap_row = next(r for r in doc["analysis"]["rows"] if r["policy"] == a.reference
                   and r.get("balancer", "autellix") == "autellix")
    ref, pol = by_seed(doc["summaries"], a.reference), by_seed(doc["summaries"], policy)
    print(f"{a.folder}: full-batch capacity {full:.3f} programs/s, SLO target "
          f"{doc['analysis']['target'] * 1e3:.1f} ms/token ({doc['analysis']['metric']})\n")
    print(f"| seed | {a.reference} capacity | waiting share just below it | "
          f"at {max(p['rate'] for p in ref[0]) / full:.2f}x: {a.reference} ms/token | "
          f"{policy} ms/token | ratio |")
    print("|---|---|---|---|---|---|")
    for i, seed in enumerate(sorted(ref)):
        cap = cap_row["per_seed"][i]["rate"]
        below = [p for p in ref[seed] if p["rate"] <= cap] or ref[seed][:1]
        top_r, top_p = ref[seed][-1], pol[seed][-1]
        ratio = top_r["token_latency"]["mean"] / top_p["token_latency"]["mean"]
        print(f"| {seed} | {cap:.3f} ({cap / full:.2f}x) | {below[-1]['waiting_share']:.1%} "
              f"at {below[-1]['rate'] / full:.2f}x | {latency(top_r)} | {latency(top_p)} | "
              f"{ratio:.2f}x |")


if __name__ == "__main__":
    main()
