"""Ordering at load: 1,000 mixed programs at ~80% load on one simulated A100 engine.

Runs fcfs, atlas and srpt on the same programs and arrivals, prints each run's wall
time and mean/p95 program token latency, and exits non-zero unless
``srpt <= atlas < fcfs`` in mean program token latency.

usage: python benchmarks/sim_ordering.py [--n 1000] [--load 0.8] [--seats 32]

Load is the arrival rate over the engine's full-batch capacity
(``autellix.sim.capacity``). The default engine holds 32 running sequences, so
calls queue near capacity; with vLLM's default 256 the 8B model on an A100 batches
this workload's whole concurrency at 80% load and every policy gives the same
latency (see README, "Where we differ from the paper").
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

from autellix.sim import EngineConfig, SimConfig, simulate
from autellix.sim.capacity import estimate_capacity
from autellix.workloads.registry import generate


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--load", type=float, default=0.8)
    ap.add_argument("--seats", type=int, default=32)
    ap.add_argument("--workload", default="mixed")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    programs = generate(args.workload, args.n, args.seed)
    cfg = SimConfig(engine=EngineConfig(max_num_seqs=args.seats), seed=args.seed)
    cap = estimate_capacity(programs, cfg)
    cfg = replace(cfg, rate=args.load * cap)
    print(f"{args.n} {args.workload} programs ({sum(len(p.calls) for p in programs)} calls), "
          f"capacity {cap:.3f} programs/s, rate {cfg.rate:.3f} ({args.load:.0%} load), "
          f"max_num_seqs {args.seats}")
    means = {}
    for pol in ("fcfs", "atlas", "srpt"):
        t = time.perf_counter()
        s = simulate(programs, replace(cfg, policy=pol)).summary()
        wall = time.perf_counter() - t
        means[pol] = s.token_latency["mean"]
        print(f"  {pol:5s} wall {wall:5.1f}s  mean {s.token_latency['mean']:.5f}  "
              f"p95 {s.token_latency['p95']:.5f}  p99 {s.token_latency['p99']:.5f} s/token  "
              f"completed {s.completed}/{s.n_programs}  preemptions {s.extra['preemptions']}")
    ok = means["srpt"] <= means["atlas"] < means["fcfs"]
    print(("ORDER OK" if ok else "ORDER VIOLATED") +
          f": srpt {means['srpt']:.5f} <= atlas {means['atlas']:.5f} < fcfs {means['fcfs']:.5f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
