"""Reproduce the paper's comparison table in simulation (results/paper-table/).

For each workload (ShareGPT-like chatbot, BFCL-like react, LATS-like mcts, mixed)
on one simulated Llama-3.1-8B / A100-80GB engine, sweep arrival rates from 0.6x to
2.4x of the engine's full-batch capacity under fcfs, mlfq, the autellix policy
(plas for single-threaded workloads, atlas otherwise) and the clairvoyant srpt
bound; then read throughput at a latency target (halfway, geometrically, up
FCFS's mean-latency curve) and its ratio to fcfs and mlfq. A second part compares balancers
on 4 engines (round_robin, least_used, autellix; all running atlas).

usage: python benchmarks/paper_table.py [--quick] [--seats 256] [--out results/paper-table]
Every arm uses the same programs, seed, cost profile and engine configuration;
only the policy (or the balancer) differs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from autellix.compare import analyze, run_sim_sweep, sweep_points
from autellix.results import write_run
from autellix.sim import EngineConfig, SimConfig
from autellix.sim.capacity import estimate_capacity
from autellix.workloads.registry import generate

WORKLOADS = {  # name: (programs, autellix policy)
    "chatbot": (400, "plas"), "react": (400, "plas"), "mcts": (80, "atlas"),
    "mixed": (300, "atlas"),
}
LOADS = (0.6, 0.9, 1.2, 1.6, 2.4)
PAPER = {"chatbot": "~8x (ShareGPT)", "react": "~8x (BFCL)", "mcts": "~5x (LATS)",
         "mixed": "~15x", "balancer": "~1.4x vs RR/least-used"}


def single_engine(name, n, policy, seats, seed, out, loads):
    programs = generate(name, n, seed)
    ecfg = EngineConfig(max_num_seqs=seats)
    base = SimConfig(engine=ecfg, seed=seed)
    cap = estimate_capacity(programs, base)
    rates = [round(x * cap, 4) for x in loads]
    pts = sweep_points(["fcfs", "mlfq", policy, "srpt"], rates)
    res = run_sim_sweep(programs, pts, base)
    an = analyze(res.summaries)
    an_p95 = analyze(res.summaries, metric="p95")
    cfg = {"workload": name, "n_programs": n, "seed": seed, "loads": list(loads), "rates": rates,
           "capacity": cap, "sim": base.to_dict(), "engine": "sim"}
    write_run(out / name, cfg, res.program_rows, [], res.summaries, an)
    (out / name / "analysis_p95.json").write_text(json.dumps(an_p95, indent=1, default=str))
    return an, an_p95, res.summaries, cap


def multi_engine(name, n, seats, seed, out, engines, loads):
    programs = generate(name, n, seed)
    base = SimConfig(engine=EngineConfig(max_num_seqs=seats), seed=seed)
    cap = estimate_capacity(programs, base) * engines
    rates = [round(x * cap, 4) for x in loads]
    pts = sweep_points(["atlas"], rates, ["round_robin", "least_used", "autellix"], [engines])
    res = run_sim_sweep(programs, pts, base)
    an = analyze(res.summaries, reference="round_robin")
    cfg = {"workload": name, "n_programs": n, "seed": seed, "engines": engines, "rates": rates,
           "capacity": cap, "sim": base.to_dict(), "engine": "sim"}
    write_run(out / f"{name}-x{engines}", cfg, res.program_rows, [], res.summaries, an)
    return an, res.summaries


def row_ratio(an, policy, key):
    for r in an["rows"]:
        if r["policy"] == policy and key in r:
            return r[key]
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer programs, for a smoke run")
    ap.add_argument("--seats", type=int, default=256, help="max_num_seqs per engine")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("results/paper-table"))
    ap.add_argument("--only", default="", help="comma-separated workloads (default: all)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the program counts")
    ap.add_argument("--no-balancers", action="store_true", help="skip the multi-engine part")
    args = ap.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    scale = (0.25 if args.quick else 1.0) * args.scale
    lines = ["| workload | autellix policy | capacity (prog/s) | latency target (s/tok) | "
             "x vs fcfs (mean) | x vs mlfq (mean) | srpt x vs fcfs | x vs fcfs (p95) | paper |",
             "|---|---|---|---|---|---|---|---|---|"]
    only = [w for w in args.only.split(",") if w] or list(WORKLOADS)
    t0 = time.time()
    for name in only:
        n, pol = WORKLOADS[name]
        an, an95, _, cap = single_engine(name, max(20, int(n * scale)), pol, args.seats,
                                         args.seed, out, LOADS)
        lines.append(f"| {name} | {pol} | {cap:.3f} | {an['target']:.4f} | "
                     f"{row_ratio(an, pol, 'vs_fcfs'):.2f}x | "
                     f"{row_ratio(an, pol, 'vs_mlfq'):.2f}x | "
                     f"{row_ratio(an, 'srpt', 'vs_fcfs'):.2f}x | "
                     f"{row_ratio(an95, pol, 'vs_fcfs'):.2f}x | "
                     f"{PAPER[name]} |")
        print(lines[-1], f"({time.time() - t0:.0f}s)", flush=True)
    bal_lines = ["| workload | engines | autellix x vs round_robin | autellix x vs least_used "
                 "| paper |",
                 "|---|---|---|---|---|"]
    for name in [w for w in ("chatbot", "mcts") if w in only and not args.no_balancers]:
        n, _ = WORKLOADS[name]
        an, _ = multi_engine(name, max(20, int(2 * n * scale)), args.seats, args.seed, out, 4,
                             LOADS)
        bal_lines.append(f"| {name} | 4 | {row_ratio(an, 'atlas', 'vs_round_robin'):.2f}x | "
                         f"{row_ratio(an, 'atlas', 'vs_least_used'):.2f}x | {PAPER['balancer']} |")
        print(bal_lines[-1], f"({time.time() - t0:.0f}s)", flush=True)
    import sys
    text = ("# Paper table, simulated\n\nCommand: `python benchmarks/paper_table.py "
            + " ".join(sys.argv[1:]) + "`\n\n"
            "Throughput at equal mean program token latency (target: halfway up FCFS's curve), "
            "one simulated Llama-3.1-8B / A100-80GB engine, vLLM-opt settings (chunked prefill, "
            f"prefix caching, recompute preemption), max_num_seqs {args.seats}. '>=' cases "
            "(curve never crossed the target) are capped at the highest swept rate.\n\n"
            + "\n".join(lines) + "\n\nMulti-engine (atlas on every engine):\n\n"
            + "\n".join(bal_lines) + "\n")
    tag = "-".join(only) if args.only else "all"
    (out / f"README-seats{args.seats}-{tag}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
