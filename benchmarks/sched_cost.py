"""Scheduler cost: simulated calls per second, and the cost of one scheduling
decision with 10,000 queued calls.

A decision here is what an engine does every step: promote starved calls, walk the
queue in priority order until a 256-call batch is formed, and charge the step's
time to the running calls (demoting some). The queue holds 10,000 waiting calls
from 2,000 programs spread over all levels. We time it against the same decision
done by a full scan (sort every queued call by priority each step), the cost a
naive implementation pays.

usage: python benchmarks/sched_cost.py [--queued 10000] [--batch 256]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from autellix.config import QueueConfig
from autellix.mlq import MultiLevelQueue
from autellix.policies import get_policy
from autellix.sim import EngineConfig, SimConfig, simulate
from autellix.workloads.registry import generate


def build(policy: str, queued: int, batch: int, rng) -> MultiLevelQueue:
    q = MultiLevelQueue(get_policy(policy), QueueConfig())
    for i in range(2000):
        q.table.entry(f"p{i}", 0.0).service = float(rng.exponential(8.0))
    for i in range(queued + batch):
        q.add(f"c{i}", f"p{i % 2000}", now=i * 1e-4)
    for i in range(batch):
        q.start(f"c{i}", 1.0)
    return q


def decision(q: MultiLevelQueue, batch: int, now: float, running: list[str]) -> None:
    q.promote_starved(now)
    taken = 0
    for _e in q.ordered():
        taken += 1
        if taken >= batch + 1:
            break
    q.charge(running, 0.02, now)


def naive(q: MultiLevelQueue, batch: int) -> None:
    entries = list(q._entries.values())
    entries.sort(key=lambda e: (e.level, e.seq))
    _ = entries[: batch + 1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queued", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--reps", type=int, default=200)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"scheduler decision with {args.queued} queued calls, batch {args.batch}")
    for pol in ("fcfs", "plas", "atlas", "mlfq", "las"):
        q = build(pol, args.queued, args.batch, rng)
        running = [f"c{i}" for i in range(args.batch)]
        t = time.perf_counter()
        for r in range(args.reps):
            decision(q, args.batch, 1.0 + r * 0.02, running)
        ours = (time.perf_counter() - t) / args.reps
        t = time.perf_counter()
        for _ in range(max(10, args.reps // 10)):
            naive(q, args.batch)
        scan = (time.perf_counter() - t) / max(10, args.reps // 10)
        print(f"  {pol:6s} {ours * 1e6:8.0f} us/decision   full-scan sort {scan * 1e6:8.0f} us "
              f"({scan / ours:.1f}x)")
    progs = generate("mixed", 150, 0)
    calls = sum(len(p.calls) for p in progs)
    for pol in ("fcfs", "atlas"):
        t = time.perf_counter()
        res = simulate(progs, SimConfig(policy=pol, rate=1.0, engine=EngineConfig(max_num_seqs=64)))
        wall = time.perf_counter() - t
        print(f"simulated {calls} calls ({res.summary().extra['steps']} engine steps) under {pol} "
              f"in {wall:.1f}s: {calls / wall:.0f} calls/s, "
              f"{res.summary().extra['steps'] / wall:.0f} steps/s")


if __name__ == "__main__":
    main()
