"""Cost of the real ``schedule()``: AutellixScheduler against vLLM 0.32's stock Scheduler.

Both are vLLM's own scheduler classes driven with a fake model runner, as vLLM's
tests do (no model, no server): 256 requests running (decoding), N waiting
(100, 1,000, 10,000), and a few new requests arriving every step, so the queue
changes as it would under load. By default the backlog belongs to programs that have
already received much service, so it queues below the running calls and both arms do
the same work: the difference is the plug-in's overhead (``--backlog-service 0``
makes them new programs that evict running calls: then the ratio includes the
evictions and admissions the policy causes). Only ``schedule()`` is timed (``update_from_output``
runs between steps, untimed). Arms alternate step by step in one process, so a busy
machine slows both alike; the figure is the ratio of medians.

    python benchmarks/sched_overhead.py                       # plas vs stock priority
    python benchmarks/sched_overhead.py --policy atlas --out results/sched-overhead
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

TINY = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
        "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 2,
        "num_key_value_heads": 2, "vocab_size": 512, "max_position_embeddings": 8192,
        "torch_dtype": "float16"}
BLOCK = 16


def build(model_dir: str, cls, autellix: dict | None, running: int, blocks: int):
    import torch
    from vllm.config import CacheConfig, ModelConfig, SchedulerConfig, VllmConfig
    from vllm.v1.kv_cache_interface import FullAttentionSpec, KVCacheConfig, KVCacheGroupSpec
    from vllm.v1.structured_output import StructuredOutputManager

    model = ModelConfig(model=model_dir, skip_tokenizer_init=True, dtype="float16",
                        max_model_len=4096)
    sched = SchedulerConfig(max_num_seqs=running, max_num_batched_tokens=8192,
                            max_model_len=4096, enable_chunked_prefill=True,
                            async_scheduling=False, policy="priority",
                            is_encoder_decoder=False, scheduler_cls=cls)
    cache = CacheConfig(block_size=BLOCK, enable_prefix_caching=True)
    vcfg = VllmConfig(scheduler_config=sched, model_config=model, cache_config=cache,
                      additional_config={"autellix": autellix} if autellix else {})
    spec = FullAttentionSpec(block_size=BLOCK, num_kv_heads=1, head_size=1, dtype=torch.float32)
    kv = KVCacheConfig(num_blocks=blocks, kv_cache_tensors=[],
                       kv_cache_groups=[KVCacheGroupSpec(["layer"], spec)])
    cache.num_gpu_blocks = blocks
    return sched.get_scheduler_cls()(vllm_config=vcfg, kv_cache_config=kv, block_size=BLOCK,
                                     log_stats=True,
                                     structured_output_manager=StructuredOutputManager(vcfg))


class Arm:
    def __init__(self, name, sched, hasher):
        self.name, self.s, self.hasher, self.n, self.times = name, sched, hasher, 0, []
        self.clock = 1000.0
        if hasattr(sched, "autellix_clock"):
            sched.autellix_clock = lambda: self.clock

    def add(self, prog_id: int, out: int, service: float = 0.0) -> None:
        from vllm.sampling_params import SamplingParams
        from vllm.v1.request import Request

        self.n += 1
        req = Request(request_id=f"r{self.n}", prompt_token_ids=[self.n % 500 + 1] * 32,
                      pooling_params=None, priority=0, block_hasher=self.hasher,
                      sampling_params=SamplingParams(
                          max_tokens=out, ignore_eos=True,
                          extra_args={"program_id": f"p{prog_id}", "program_service": service}))
        self.s.add_request(req)

    def step(self, timed: bool) -> None:
        from vllm.v1.outputs import ModelRunnerOutput

        t0 = time.perf_counter()
        out = self.s.schedule()
        dt = time.perf_counter() - t0
        if timed:
            self.times.append(dt)
        self.clock += 0.02
        ids = list(out.num_scheduled_tokens)
        toks = [[] if self.s.requests[r].is_prefill_chunk else [1] for r in ids]
        self.s.update_from_output(out, ModelRunnerOutput(
            req_ids=ids, req_id_to_index={r: i for i, r in enumerate(ids)},
            sampled_token_ids=toks))


def measure(model_dir, policy: str, waiting: int, running: int, steps: int, arrivals: int,
            warmup: int = 20, service: float = 1000.0) -> dict:
    from vllm.utils.hashing import sha256
    from vllm.v1.core.kv_cache_utils import get_request_block_hasher, init_none_hash
    from vllm.v1.core.sched.scheduler import Scheduler

    from autellix.vllm.scheduler import AutellixScheduler

    init_none_hash(sha256)
    hasher = get_request_block_hasher(BLOCK, sha256)
    blocks = running * 12 + 64
    arms = [Arm("stock", build(model_dir, Scheduler, None, running, blocks), hasher),
            Arm(policy, build(model_dir, AutellixScheduler, {"policy": policy}, running, blocks),
                hasher)]
    for arm in arms:  # fill the batch with long decodes, then the backlog
        for i in range(running):
            arm.add(i, 10_000)
        for _ in range(3):
            arm.step(False)
        for i in range(waiting):
            arm.add(running + i, 8, service)
    for k in range(-warmup, steps):  # untimed warm-up: the policy's first evictions settle
        timed = k >= 0
        for arm in arms if k % 2 == 0 else arms[::-1]:
            for j in range(arrivals):
                arm.add(10**6 + k * arrivals + j, 8, service)
            arm.step(timed)
    row = {"waiting": waiting, "running": running, "steps": steps, "arrivals_per_step": arrivals,
           "backlog_program_service": service}
    for arm in arms:
        row[arm.name] = {"median_ms": statistics.median(arm.times) * 1e3,
                         "p90_ms": sorted(arm.times)[int(0.9 * len(arm.times))] * 1e3,
                         "running_at_end": len(arm.s.running),
                         "evictions": getattr(arm.s, "autellix_stats", {}).get("preemptions", 0)}
    row["ratio"] = row[policy]["median_ms"] / row["stock"]["median_ms"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default="plas")
    ap.add_argument("--waiting", default="100,1000,10000")
    ap.add_argument("--running", type=int, default=256)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--arrivals", type=int, default=4, help="new requests per step")
    ap.add_argument("--backlog-service", type=float, default=1000.0,
                    help="program service (s) the waiting calls carry: 1000 puts them below "
                         "the running calls, so the queue is pure overhead; 0 makes them new "
                         "programs that evict (the policy's own extra work is then timed too)")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "config.json").write_text(json.dumps(TINY))
        for w in (int(x) for x in a.waiting.split(",")):
            r = measure(d, a.policy, w, a.running, a.steps, a.arrivals,
                        service=a.backlog_service)
            rows.append(r)
            print(f"waiting {w:>6}, running {a.running}: stock {r['stock']['median_ms']:.2f} ms, "
                  f"{a.policy} {r[a.policy]['median_ms']:.2f} ms per schedule() (median; "
                  f"p90 {r['stock']['p90_ms']:.2f} / {r[a.policy]['p90_ms']:.2f}) -> "
                  f"{r['ratio']:.2f}x ({r[a.policy]['evictions']} evictions)", flush=True)
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / f"{a.policy}.json").write_text(json.dumps(
            {"command": " ".join(["python"] + sys.argv), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
