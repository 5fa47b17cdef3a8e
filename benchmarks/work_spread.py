"""How much a program's attained service predicts its remaining work, per workload.

Least-attained-service policies (PLAS, ATLAS, MLFQ, LAS) help when program work is
spread out and heavy-tailed: a program that has received little service is then
likely to need little more. When work is tightly spread, service received means the
program is *closer* to done, and favouring newcomers delays the programs about to
finish. This prints, per workload, each program's total work on the simulator's
cost model (every call run alone on the engine), its coefficient of variation, and
the mean residual work of programs that have already received the median work.

    python benchmarks/work_spread.py
    python benchmarks/work_spread.py --workloads chatbot,longctx --n 1000
"""

from __future__ import annotations

import argparse

import numpy as np

from autellix.sim.costmodel import CostModel, load_profile
from autellix.sim.sim_config import EngineConfig
from autellix.workloads.registry import generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="chatbot,mixed,longctx")
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    cost = CostModel(load_profile(EngineConfig().profile))
    print(f"{'workload':9s} {'mean work':>10s} {'cv':>5s} {'p99/p50':>8s} "
          f"{'residual at median':>19s}")
    for wl in a.workloads.split(","):
        work = np.array([sum(cost.single_call_seconds(c.new_prompt_tokens, c.output_tokens)
                             for c in p.calls) for p in generate(wl, a.n, a.seed)])
        med = float(np.median(work))
        residual = float(np.mean(work[work > med] - med))
        print(f"{wl:9s} {work.mean():9.1f}s {work.std() / work.mean():5.2f} "
              f"{np.percentile(work, 99) / med:8.1f} {residual:18.1f}s")


if __name__ == "__main__":
    main()
