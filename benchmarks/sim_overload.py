"""Sustained overload in the simulator (issue 10 acceptance).

Chatbot programs on one simulated Llama-3.1-8B/A100 engine with 64 seats, at
multiples of its full-batch capacity. Every policy must finish with a makespan at
most 1.1x FCFS's and at most one preemption per call on average; PLAS and ATLAS
must beat FCFS on mean program token latency.

    python benchmarks/sim_overload.py                    # 1,600 programs at 3.2x and 4.8x
    python benchmarks/sim_overload.py --n 300 --loads 4.8
    python benchmarks/sim_overload.py --beta 2,4,8,16,inf   # the beta sweep (mean vs tail)
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from autellix.config import QueueConfig
from autellix.sim import EngineConfig, SimConfig, simulate
from autellix.sim.capacity import estimate_capacity
from autellix.workloads.registry import generate


def run_point(programs, policy: str, rate: float, seats: int, beta: float, seed: int) -> dict:
    queue = QueueConfig(beta=beta) if math.isfinite(beta) else QueueConfig(starvation=False)
    cfg = SimConfig(policy=policy, rate=rate, seed=seed, queue=queue,
                    engine=EngineConfig(max_num_seqs=seats))
    t0 = time.perf_counter()
    res = simulate(programs, cfg)
    s = res.summary()
    calls = len(res.calls)
    return {"policy": policy, "rate": rate, "beta": beta, "completed": s.completed,
            "n": s.n_programs, "makespan": res.sim_time, "preemptions": s.extra["preemptions"],
            "preemptions_per_call": s.extra["preemptions"] / max(1, calls),
            "mean": s.token_latency["mean"], "p95": s.token_latency["p95"],
            "p99": s.token_latency["p99"], "wall_s": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", default="chatbot")
    ap.add_argument("--n", type=int, default=1600)
    ap.add_argument("--loads", default="3.2,4.8")
    ap.add_argument("--policies", default="fcfs,plas,atlas,mlfq")
    ap.add_argument("--seats", type=int, default=64)
    ap.add_argument("--beta", default="8", help="comma-separated; 'inf' = anti-starvation off")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    programs = generate(a.workload, a.n, a.seed)
    cap = estimate_capacity(programs, SimConfig(engine=EngineConfig(max_num_seqs=a.seats)))
    rows = []
    for load in (float(x) for x in a.loads.split(",")):
        rate = load * cap
        for beta in (float(x) for x in a.beta.split(",")):
            base = None
            for pol in a.policies.split(","):
                r = run_point(programs, pol, rate, a.seats, beta, a.seed)
                r["load"] = load
                if pol == "fcfs":
                    base = r
                if base is not None:
                    r["makespan_vs_fcfs"] = r["makespan"] / base["makespan"]
                    r["mean_vs_fcfs"] = r["mean"] / base["mean"]
                rows.append(r)
                print(f"load {load:.1f}x beta {beta:g} {pol:6s} done {r['completed']}/{r['n']} "
                      f"makespan {r['makespan']:.0f}s ({r.get('makespan_vs_fcfs', 1):.3f}x fcfs) "
                      f"preempt/call {r['preemptions_per_call']:.3f} "
                      f"mean/p95/p99 {r['mean']*1e3:.1f}/{r['p95']*1e3:.1f}/"
                      f"{r['p99']*1e3:.1f} ms/tok "
                      f"(wall {r['wall_s']:.1f}s)", flush=True)
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        doc = {"command": vars(a) | {"out": str(a.out)}, "capacity": cap, "rows": rows}
        (a.out / "summary.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
