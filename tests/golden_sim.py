"""The golden simulator cases: fixed seeds, several policies, recompute and swap, one
and four engines, chains and DAGs. ``python tests/golden_sim.py`` prints their
figures as JSON (how ``tests/data/sim_golden.json`` was made, before the simulator's
restructuring); ``tests/test_sim_golden.py`` requires the same figures."""

from __future__ import annotations

import json
from dataclasses import replace

from autellix.sim import EngineConfig, SimConfig, simulate
from autellix.sim.capacity import rate_for_load
from autellix.workloads.registry import generate

# name -> (workload, programs, policy, load, engines, engine overrides)
CASES = {
    "chatbot-fcfs": ("chatbot", 120, "fcfs", 1.5, 1, {"max_num_seqs": 16}),
    "chatbot-plas": ("chatbot", 120, "plas", 1.5, 1, {"max_num_seqs": 16}),
    "chatbot-mlfq": ("chatbot", 120, "mlfq", 1.5, 1, {"max_num_seqs": 16}),
    "chatbot-las": ("chatbot", 120, "las", 1.5, 1, {"max_num_seqs": 16}),
    "chatbot-srpt": ("chatbot", 120, "srpt", 1.5, 1, {"max_num_seqs": 16}),
    "chatbot-plas-swap": ("chatbot", 120, "plas", 1.5, 1,
                          {"max_num_seqs": 16, "preemption": "swap",
                           "kv_capacity_tokens": 60_000}),
    "chatbot-fcfs-recompute-tight": ("chatbot", 120, "fcfs", 1.5, 1,
                                     {"max_num_seqs": 16, "kv_capacity_tokens": 60_000}),
    "mixed-atlas": ("mixed", 80, "atlas", 1.2, 1, {"max_num_seqs": 32}),
    "mixed-fcfs-4-engines": ("mixed", 80, "fcfs", 1.2, 4, {"max_num_seqs": 8}),
    "mixed-atlas-4-engines": ("mixed", 80, "atlas", 1.2, 4, {"max_num_seqs": 8}),
    "mcts-atlas": ("mcts", 30, "atlas", 1.5, 1, {"max_num_seqs": 32}),
    "longctx-plas": ("longctx", 24, "plas", 1.5, 1, {"max_num_seqs": 16}),
    "longctx-fcfs-no-prefix-cache": ("longctx", 24, "fcfs", 1.5, 1,
                                     {"max_num_seqs": 16, "prefix_caching": False,
                                      "kv_capacity_tokens": 600_000}),
    "react-fcfs-vllm-0.6.1": ("react", 60, "fcfs", 1.2, 1,
                              {"max_num_seqs": 32, "prefix_caching": False,
                               "chunked_prefill": False}),
}


def case(name: str):
    """(programs, config with its rate) of a case."""
    wl, n, policy, load, engines, over = CASES[name]
    progs = generate(wl, n, 0)
    cfg = SimConfig(policy=policy, n_engines=engines, engine=EngineConfig(**over))
    return progs, replace(cfg, rate=rate_for_load(progs, cfg, load))


def first_gap(name: str) -> float:
    """The first arrival's time under the old schedule (main 503fc34 drew ``n`` gaps
    and summed them all, so every time was this much later than replay's)."""
    import numpy as np

    progs, cfg = case(name)
    return float(np.random.default_rng(cfg.seed).exponential(1.0 / cfg.rate, size=len(progs))[0])


def figures(name: str) -> dict:
    progs, cfg = case(name)
    res = simulate(progs, cfg)
    s = res.summary()
    return {"completed": s.completed, "failed": s.failed, "aborted": s.aborted,
            "calls": len(res.calls), "preemptions": s.extra["preemptions"],
            "swapped_bytes": s.extra["swapped_bytes"], "makespan": res.sim_time,
            "token_latency_mean": s.token_latency["mean"],
            "token_latency_p95": s.token_latency["p95"],
            "e2e_mean": s.e2e["mean"], "prefix_hit_rate": s.extra["prefix_hit_rate"],
            "utilization": s.extra["utilization"]}


if __name__ == "__main__":
    print(json.dumps({name: figures(name) for name in CASES}, indent=1))
