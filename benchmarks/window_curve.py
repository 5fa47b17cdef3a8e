"""One arm's latency curve at several steady-state windows, with each point's verdict.

usage: python benchmarks/window_curve.py --workload chatbot --arm vllm \
           --rates 0.13,0.145,0.16 --windows 1600,3200

Each window is N arrivals at one engine's capacity, built as ``autellix compare``
builds it on the simulator (half a window of warm-up and of cool-down; below
capacity a window stretched to hold N arrivals), without the lifetime floor. For
each (window, rate) it prints the measured programs, the mean program token latency
(ms), its median per quarter of the window by arrival, and the steady-state
verdict with its reason: whether a capacity that moves
with the window moved because latency did or because the drift detector did
(``results/convergence/x-vllm-stretched/``). The pool is the workload's first
programs for the highest rate; every generator is prefix-stable, so a point sees
the programs ``compare`` would give it.
"""

from __future__ import annotations

import argparse

from autellix.sim import EngineConfig, SimConfig
from autellix.sim_compare import engine_capacity
from autellix.steady import Window
from autellix.sweep import Point, simulate_point
from autellix.workloads.registry import generate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workload", default="chatbot")
    ap.add_argument("--arm", default="vllm")
    ap.add_argument("--rates", required=True, help="programs/s, comma-separated")
    ap.add_argument("--windows", default="1600,3200", help="arrivals at capacity")
    ap.add_argument("--seats", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rates = [float(x) for x in a.rates.split(",")]
    base = SimConfig(engine=EngineConfig(max_num_seqs=a.seats), seed=a.seed)
    cap = engine_capacity(generate(a.workload, 400, a.seed), base)
    print(f"{a.workload}, arm {a.arm}, one engine's capacity {cap:.4f} programs/s")
    print("| window | rate | window s | measured programs | mean ms/token | "
          "quarter medians (ms) | verdict |")
    print("|---|---|---|---|---|---|---|")
    for n in (float(x) for x in a.windows.split(",")):
        w = Window.at_capacity(n, cap, min_programs=n)
        progs = generate(a.workload, w.programs_needed(max(rates)), a.seed)
        for r in rates:
            s = simulate_point(Point(a.arm, r, "autellix", 1, a.seed), progs, base, w).summary
            steady = s.extra["steady"]
            verdict = "stable" if s.extra["stable"] else steady["reason"]
            quarters = ", ".join(f"{q * 1000:.1f}" for q in steady["quarter_medians"])
            print(f"| {n:g} | {r:g} | {s.extra['window_s']:.0f} | {s.n_programs} | "
                  f"{s.token_latency['mean'] * 1000:.2f} | {quarters} | {verdict} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
