"""The paper's comparison table, in simulation, at steady state (results/paper-table/).

For each workload (ShareGPT-like chatbot, BFCL-like react, LATS-like mcts, mixed) on
one simulated Llama-3.1-8B / A100-80GB engine, every arm runs the same programs and
seeds: ``vllm`` (no prefix caching, no chunked prefill), ``vllm-opt``, ``mlfq``, the
autellix policy (plas for single-threaded workloads, atlas otherwise) and the
clairvoyant ``srpt`` bound. Each arm's capacity at an SLO (mean program token
latency at 3x unloaded; p95 and p99 searched on the same runs) is found by
bracketing and bisection (``autellix.compare``); ratios carry 95% CIs over seeds.
Part two: balancers on 4 engines (atlas everywhere). Part three (``--offline``): the
paper's offline ablation, N chatbot programs all at t=0, makespan per policy.

usage: python benchmarks/paper_table.py [--window W] [--seeds 3] [--jobs 2]
           [--only chatbot,react | --only none] [--seats 64]
           [--no-balancers | --balancers-only] [--balancers round_robin,least_used]
           [--offline 1000,2000,4000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from autellix.results import write_run
from autellix.sim import EngineConfig, SimConfig, simulate
from autellix.sim_compare import engine_capacity, run_sim_compare
from autellix.slo import SLO
from autellix.workloads.registry import generate, steady_window

WORKLOADS = {"chatbot": "plas", "react": "plas", "mcts": "atlas", "mixed": "atlas"}
LOADS = (0.4, 0.7, 0.85, 1.0, 1.2)
PAPER = {  # the paper's gains (Autellix, Fig. 8/9): over vLLM 0.6.1, and over vLLM-opt
    "chatbot": ("~8x", "~2x"), "react": ("~8x", "~2x"), "mcts": ("~5x", "~2x"),
    "mixed": ("~15x", "4-5x"),
}


def ratio(rows, arm, base, key="vs_"):
    for r in rows:
        if r["policy"] == arm and f"{key}{base}" in r:
            v = r[f"{key}{base}"]
            sign = {"lower": ">=", "upper": "<", "unknown": "?"}.get(v.get("bound") or "", "")
            if sign == "?":
                return "?"
            ci = v.get("ci95") or [None, None]
            band = f" [{ci[0]:.2f}, {ci[1]:.2f}]" if not sign and ci[0] == ci[0] and \
                ci[0] is not None else ""
            return f"{sign}{v['mean']:.2f}x{band}"
    return "-"


def window_for(name, args) -> float:
    """--window, else the workload's default (what `autellix compare` uses)."""
    return args.window if args.window is not None else steady_window(name)


def run_workload(name, args, engines=1, balancers=("autellix",), arms=None, label=None):
    pol = WORKLOADS[name]
    arms = arms or ["vllm", "vllm-opt", "mlfq", pol, "srpt"]
    seeds = list(range(args.seeds))
    base = SimConfig(engine=EngineConfig(max_num_seqs=args.seats), seed=0)
    cap = engine_capacity(generate(name, 400, 0), base)
    out = run_sim_compare(lambda n, s: generate(name, n, s), seeds, base, arms,
                          window_programs=window_for(name, args), slo=SLO("mean"),
                          capacity=cap,
                          loads=LOADS, balancers=balancers, engines=(engines,), jobs=args.jobs,
                          also=(SLO("p95"), SLO("p99")))
    cfg = {"workload": name, "arms": arms, "seeds": seeds, "window": out.window.to_dict(),
           "loads": list(LOADS), "capacity_per_engine": cap, "sim": base.to_dict(),
           "engine": "sim", "command": "python benchmarks/paper_table.py " + " ".join(sys.argv[1:])}
    where = args.out / (label or name)
    write_run(where, cfg, [], [], out.summaries, out.analysis)
    (where / "timings.json").write_text(json.dumps(out.timings, indent=1) + "\n")
    return out.analysis, pol


def offline(sizes, args):
    """Makespan with every program submitted at t=0 (the paper: 10-40% shorter), and
    each policy's prefix-cache hit rate, which explains most of the differences: a
    policy that finishes programs one after another finds their history still cached."""
    pols = ("fcfs", "mlfq", "plas", "srpt")
    lines = ["| programs | " + " | ".join(pols) + " | plas vs fcfs | prefix hit rate "
             + ", ".join(pols) + " |", "|---|---|---|---|---|---|---|"]
    for n in sizes:
        programs = generate("chatbot", n, 0)
        span, hits = {}, {}
        for pol in pols:
            cfg = SimConfig(policy=pol, engine=EngineConfig(max_num_seqs=args.seats), rate=1e9)
            res = simulate(programs, cfg)
            span[pol], hits[pol] = res.sim_time, res.summary().extra["prefix_hit_rate"]
        lines.append(f"| {n} | " + " | ".join(f"{span[p]:.0f} s" for p in pols)
                     + f" | {1 - span['plas'] / span['fcfs']:+.1%} shorter | "
                     + ", ".join(f"{hits[p]:.0%}" for p in pols) + " |")
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=float, default=None,
                    help="programs at capacity (default: the workload's, as in compare)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seats", type=int, default=64, help="max_num_seqs per engine")
    ap.add_argument("--out", type=Path, default=Path("results/paper-table"))
    ap.add_argument("--only", default="", help="comma-separated workloads (default: all; "
                    "'none' for the offline ablation alone)")
    ap.add_argument("--no-balancers", action="store_true", help="skip the 4-engine part")
    ap.add_argument("--balancers-only", action="store_true",
                    help="run only the 4-engine part (chatbot and mcts among --only)")
    ap.add_argument("--balancers", default="round_robin,least_used",
                    help="baseline balancers of the 4-engine part (autellix is always run)")
    ap.add_argument("--offline", default="", help="program counts for the t=0 ablation")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    only = [w for w in args.only.split(",") if w] or list(WORKLOADS)
    if only == ["none"]:
        only = []
    if unknown := [w for w in only if w not in WORKLOADS]:
        ap.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    t0 = time.time()
    lines = ["| workload | policy | x vLLM | x vLLM-opt | x MLFQ | SRPT x vLLM-opt | "
             "x vLLM-opt (p95) | x vLLM-opt (p99) | paper x vLLM / x vLLM-opt |",
             "|---|---|---|---|---|---|---|---|---|"]
    if args.balancers_only and args.no_balancers:
        ap.error("--balancers-only and --no-balancers exclude each other")
    for name in [] if args.balancers_only else only:
        an, pol = run_workload(name, args)
        also = an.get("also", {})
        lines.append(f"| {name} | {pol} | {ratio(an['rows'], pol, 'vllm')} | "
                     f"{ratio(an['rows'], pol, 'vllm-opt')} | {ratio(an['rows'], pol, 'mlfq')} | "
                     f"{ratio(an['rows'], 'srpt', 'vllm-opt')} | "
                     f"{ratio(also.get('p95', {}).get('rows', []), pol, 'vllm-opt')} | "
                     f"{ratio(also.get('p99', {}).get('rows', []), pol, 'vllm-opt')} | "
                     f"{' / '.join(PAPER[name])} |")
        print(lines[-1], f"({time.time() - t0:.0f}s)", flush=True)
    bal = ["| workload | x round_robin | x least_used | paper |", "|---|---|---|---|"]
    for name in [w for w in ("chatbot", "mcts") if w in only and not args.no_balancers]:
        an, _ = run_workload(name, args, 4, (*args.balancers.split(","), "autellix"),
                             ["atlas"], f"{name}-x4")
        rows = [r for r in an["rows"] if r["balancer"] == "autellix"]
        bal.append(f"| {name} | {ratio(rows, 'atlas', 'round_robin')} | "
                   f"{ratio(rows, 'atlas', 'least_used')} | ~1.4x |")
        print(bal[-1], f"({time.time() - t0:.0f}s)", flush=True)
    off = offline([int(x) for x in args.offline.split(",") if x], args) if args.offline else []
    text = ("# Paper table, simulated at steady state\n\nCommand: "
            "`python benchmarks/paper_table.py " + " ".join(sys.argv[1:]) + "`\n\n")
    windows = (f"{args.window:g}" if args.window is not None else
               ", ".join(f"{w} {steady_window(w):g}" for w in only or WORKLOADS))
    if len(lines) > 2:
        text += ("Capacity at mean program token latency <= 3x unloaded (p95/p99 columns: "
                 "the same search on those statistics); mean [95% CI] "
                 f"over {args.seeds} seeds; max_num_seqs {args.seats}; window {windows} "
                 "programs at capacity, stretched below capacity to hold as many arrivals. "
                 "`>=`: the arm never crossed the SLO in the search.\n\n"
                 + "\n".join(lines) + "\n")
    if len(bal) > 2:
        text += "\nBalancers, 4 engines (atlas):\n\n" + "\n".join(bal) + "\n"
    if off:
        text += (f"\nOffline ablation (chatbot, seed 0, all programs at t=0, max_num_seqs "
                 f"{args.seats}, makespan):\n\n" + "\n".join(off) + "\n")
    tag = ("-".join(only) or "offline") + ("-x4" if args.balancers_only else "")
    (args.out / f"README-{tag}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
