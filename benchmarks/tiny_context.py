"""What a longer context costs the tiny CPU model: startup time, memory, a long prefill.

For each ``--max-model-len`` value, one engine as ``autellix serve`` starts it (plas,
8 sequences, 256 MiB KV cache), measured one at a time:

* ``ready_s``: from launch to ``/health`` answering 200;
* ``rss_mib``: resident memory of the engine's whole process group once ready, and
  again after the long call (``rss_after_mib``);
* ``kv_tokens``: the KV cache's capacity in tokens, from vLLM's log;
* ``fill_s``: one call whose prompt fills 90% of the context, 16 output tokens
  (a cold prefill: the cost of one long agent turn with nothing cached).

    python benchmarks/tiny_context.py --lens 2048,8192,32768,131072 --out results/tiny-context

Wall times depend on the machine and on what else runs; compare rows of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import time
from pathlib import Path

import httpx

from autellix.replay_fit import WORDS
from autellix.vllm.launch import launch_engines, stop_engines


def group_rss_mib(pgid: int) -> float:
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getpgid(int(pid)) != pgid:
                continue
            with open(f"/proc/{pid}/status") as f:
                total += next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:"))
        except (OSError, StopIteration, ValueError):
            continue
    return total / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(mml: int, log_dir: Path) -> dict:
    t0 = time.monotonic()
    (eng,) = launch_engines(1, policy="plas", base_port=free_port(), max_model_len=mml,
                            log_dir=log_dir, timeout=600)
    ready = time.monotonic() - t0
    try:
        rss = group_rss_mib(eng.proc.pid)
        log = eng.log_path.read_text(errors="replace")
        m = re.search(r"KV cache size: ([\d,]+) tokens", log)
        words = int(mml * 0.9)
        prompt = " ".join(WORDS[i % len(WORDS)] for i in range(words))
        t1 = time.monotonic()
        r = httpx.post(eng.url + "/v1/completions", timeout=600, json={
            "model": "tiny", "prompt": prompt, "max_tokens": 16, "min_tokens": 16,
            "ignore_eos": True})
        r.raise_for_status()
        fill = time.monotonic() - t1
        usage = r.json()["usage"]
        return {"max_model_len": mml, "ready_s": round(ready, 1), "rss_mib": round(rss),
                "rss_after_mib": round(group_rss_mib(eng.proc.pid)),
                "kv_tokens": int(m.group(1).replace(",", "")) if m else None,
                "fill_prompt_tokens": usage["prompt_tokens"], "fill_s": round(fill, 2)}
    finally:
        stop_engines([eng])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lens", default="2048,8192,32768,131072")
    ap.add_argument("--out", default="results/tiny-context")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for mml in (int(x) for x in args.lens.split(",")):
        rows.append(measure(mml, out / "logs"))
        print(json.dumps(rows[-1]), flush=True)
    (out / "results.json").write_text(json.dumps({"command": "python benchmarks/tiny_context.py "
                                                  f"--lens {args.lens} --out {args.out}",
                                                  "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
