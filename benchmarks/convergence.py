"""Does the answer depend on the window? Capacity ratios at window W and at 2W, side by side.

usage: python benchmarks/convergence.py [--workload chatbot] [--window 150]
           [--arms vllm-opt,mlfq,plas,srpt] [--seeds 1] [--jobs 2] [--out results/convergence]

Runs the same comparison (simulator, one engine, 64 seats, SLO 3x unloaded mean
token latency unless --slo) with the steady-state window of W programs at capacity
(or its lifetime floor) and with twice that duration, and prints each arm's capacity
ratio to the reference under both, with the relative change. Issue 12's acceptance:
no ratio moves by more than 10%.
Writes ``<out>/<workload>-w<W>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from autellix.compare import window_change
from autellix.sim import EngineConfig, SimConfig
from autellix.sim_compare import engine_capacity, run_sim_compare
from autellix.slo import SLO
from autellix.workloads.registry import generate

LOADS = (0.4, 0.7, 0.85, 1.0, 1.2)


def ratios(analysis, base) -> dict:
    return {r["policy"]: r.get(f"vs_{base}", {}).get("mean", 1.0 if r["policy"] == base else None)
            for r in analysis["rows"]}


def run(workload, window_programs, arms, seeds, jobs, slo, seats, warmup=0.5):
    base = SimConfig(engine=EngineConfig(max_num_seqs=seats), seed=seeds[0])
    cap = engine_capacity(generate(workload, 400, seeds[0]), base)
    t0 = time.perf_counter()
    out = run_sim_compare(lambda n, s: generate(workload, n, s), seeds, base, arms,
                          window_programs=window_programs, slo=slo, capacity=cap, loads=LOADS,
                          jobs=jobs, warmup=warmup, cooldown=warmup)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", default="chatbot")
    ap.add_argument("--window", type=float, default=150)
    ap.add_argument("--arms", default="vllm-opt,mlfq,plas,srpt")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seats", type=int, default=64)
    ap.add_argument("--slo", default="3x")
    ap.add_argument("--out", type=Path, default=Path("results/convergence"))
    a = ap.parse_args()
    arms = a.arms.split(",")
    seeds = list(range(a.seeds))
    slo = SLO.parse(a.slo)
    doc = {"command": "python benchmarks/convergence.py " + " ".join(sys.argv[1:]), "runs": {}}
    w, runs = a.window, []
    for _ in range(2):
        out, wall = run(a.workload, w, arms, seeds, a.jobs, slo, a.seats)
        runs.append(out)
        ref = out.analysis["reference"]
        doc["runs"][str(w)] = {"wall_s": wall, "analysis": out.analysis,
                               "points": out.timings["points"]}
        print(f"window {w:g} ({out.window.duration:.0f} s): {wall:.0f}s, "
              f"{out.timings['points']} points; ratios vs {ref}: "
              + ", ".join(f"{k} {v:.3f}" for k, v in ratios(out.analysis, ref).items() if v),
              flush=True)
        w = 2 * out.window_programs  # twice the duration
    short, long = runs
    check = window_change(short.analysis, long.analysis, short.window.duration,
                          long.window.duration)
    lines = [f"| arm | x {ref} ({short.window.duration:.0f} s window) | x {ref} "
             f"({long.window.duration:.0f} s) | change |",
             "|---|---|---|---|",
             f"| {ref} | 1.000 | 1.000 | +0.0% |"]
    for r in check["rows"]:
        if r["ratio"] == f"vs_{ref}":
            ch = "bound" if r["change"] is None else f"{r['change']:+.1%}"
            lines.append(f"| {r['policy']} | {r['short']:.3f} | {r['long']:.3f} | {ch} |")
    doc["table"] = lines
    doc["window_check"] = check
    doc["max_abs_change"] = check["max_abs_change"]
    print("\n".join(lines))
    print(f"largest change over every ratio: {check['max_abs_change']:.1%} "
          f"({'converged' if check['converged'] else 'NOT converged'}, at most "
          f"{check['tolerance']:.0%})")
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"{a.workload}-w{a.window:g}.json").write_text(json.dumps(doc, indent=1, default=str))


if __name__ == "__main__":
    main()
