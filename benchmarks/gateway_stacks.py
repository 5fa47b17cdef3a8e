"""Which HTTP stack should the gateway relay with? Bare relays side by side, one run.

    .venv/bin/python benchmarks/gateway_stacks.py [--n 3000] [--concurrency 32]

Each relay does nothing but forward ``POST /v1/completions`` to the fast fake engine
of ``benchmarks/gateway_overhead.py`` and return its answer. It runs in its own
process pinned to CPU 0; the engine and the load generator share CPU 1. The figure
that decides is the relay process's CPU time per call (from /proc: robust to other
load on the machine); calls/s and p50 are printed beside it for reference.

Relays (server side / upstream client):

* ``uvicorn-h11+httpx``: uvicorn on asyncio with h11, httpx (the old default);
* ``uvicorn+httpx``: uvicorn with uvloop + httptools, httpx;
* ``uvicorn+aiohttp``: uvicorn with uvloop + httptools, an aiohttp ``ClientSession``;
* ``aiohttp+aiohttp``: aiohttp's own server and client on uvloop;
* ``uvicorn+pyreqwest``, ``granian+aiohttp``, ``granian+pyreqwest``: the Rust-based
  client (pyreqwest, reqwest on a Tokio thread) and server (granian, ASGI, embedded
  on uvloop), when they are installed (they are not autellix dependencies:
  ``pip install pyreqwest granian``; a missing one is skipped).

Besides CPU, each relay's p50 at concurrency 1 is measured twice: pinned to CPU 0
(split from the client and engine) and on CPU 1 beside them (co-located, so no
cross-CPU wake-ups); ``direct`` (client -> engine) is the p50 the relays add to.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_overhead import _cpu_seconds, _pin, _spawn_free, _wait_up, fake_engine  # noqa: E402

RELAYS = ("uvicorn-h11+httpx", "uvicorn+httpx", "uvicorn+aiohttp", "aiohttp+aiohttp",
          "uvicorn+pyreqwest", "granian+aiohttp", "granian+pyreqwest")


def installed(kind: str) -> bool:
    import importlib.util
    return all(importlib.util.find_spec(m) is not None for m in kind.split("+")
               if m in ("pyreqwest", "granian"))


async def _read_body(receive) -> bytes:
    body, more = b"", True
    while more:
        m = await receive()
        body, more = body + m.get("body", b""), m.get("more_body", False)
    return body


def asgi_relay(engine: str, client: str):
    state: dict = {}

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            return await fake_engine(scope, receive, send)
        body = await _read_body(receive)
        if scope["path"] == "/health":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            return await send({"type": "http.response.body", "body": b"{}"})
        url = engine + scope["path"]
        if client == "pyreqwest":
            from pyreqwest.client import ClientBuilder
            c = state.get("c")
            if c is None:
                c = state["c"] = await ClientBuilder().build().__aenter__()
            r = await (c.post(url).header("content-type", "application/json")
                       .body_bytes(body).build().send())
            status, ctype, content = r.status, r.get_header("content-type"), bytes(await r.bytes())
        elif client == "httpx":
            import httpx
            c = state.get("c") or state.setdefault("c", httpx.AsyncClient(trust_env=False))
            r = await c.post(url, content=body, headers={"content-type": "application/json"})
            status, ctype, content = r.status_code, r.headers["content-type"], r.content
        else:
            import aiohttp
            c = state.get("c") or state.setdefault("c", aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), auto_decompress=False))
            async with c.post(url, data=body, headers={"content-type": "application/json"}) as r:
                status, ctype, content = r.status, r.headers["content-type"], await r.read()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", ctype.encode())]})
        await send({"type": "http.response.body", "body": content})
    return app


def serve(kind: str, port: int, engine: str, cpu: int) -> None:
    _pin(cpu)
    if kind == "aiohttp+aiohttp":
        import aiohttp
        import uvloop
        from aiohttp import web

        async def handler(request):
            s = request.app["s"]
            async with s.post(engine + request.path, data=await request.read(),
                              headers={"content-type": "application/json"}) as r:
                return web.Response(body=await r.read(), status=r.status,
                                    content_type=r.content_type)

        async def start(app):
            app["s"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                             auto_decompress=False)

        app = web.Application()
        app.on_startup.append(start)
        app.router.add_get("/health", lambda r: web.json_response({}))
        app.router.add_post("/v1/completions", handler)
        web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None,
                    loop=uvloop.new_event_loop())
        return
    if kind.startswith("granian+"):
        import uvloop
        from granian.constants import Interfaces
        from granian.server.embed import Server

        app = asgi_relay(engine, kind.split("+")[1])
        uvloop.run(Server(app, address="127.0.0.1", port=port, interface=Interfaces.ASGI,
                          log_enabled=False).serve())
        return
    import uvicorn
    h11 = kind.startswith("uvicorn-h11")
    uvicorn.run(asgi_relay(engine, kind.split("+")[1]), host="127.0.0.1", port=port,
                log_level="error", access_log=False, loop="asyncio" if h11 else "uvloop",
                http="h11" if h11 else "httptools")


async def drive(url: str, n: int, concurrency: int) -> list[float]:
    import aiohttp
    body = json.dumps({"model": "tiny", "prompt": "hello there", "max_tokens": 1})
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


def _p50(lat: list[float]) -> float:
    return float(np.percentile(np.array(lat) * 1000, 50))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    args = ap.parse_args()
    _pin(1)
    eng_proc, eng_port = _spawn_free(["serve-engine", "-", "1"], script=Path(__file__).parent
                                     / "gateway_overhead.py")
    engine = f"http://127.0.0.1:{eng_port}"
    rows = []
    try:
        _wait_up(engine)
        direct = _p50(asyncio.run(drive(engine, args.n // 5, 1)))
        for kind in (k for k in RELAYS if installed(k)):
            row = [kind]
            for cpu in ("0", "1"):  # split (CPU, throughput, p50), then co-located (p50)
                proc, port = _spawn_free([f"serve-{kind}", engine, cpu], script=Path(__file__))
                url = f"http://127.0.0.1:{port}"
                try:
                    _wait_up(url)
                    asyncio.run(drive(url, args.n // 5, args.concurrency))  # warm up
                    if cpu == "0":
                        cpu0, t0 = _cpu_seconds(proc.pid), time.perf_counter()
                        asyncio.run(drive(url, args.n, args.concurrency))
                        wall, used = time.perf_counter() - t0, _cpu_seconds(proc.pid) - cpu0
                        row += [used * 1000 / args.n, args.n / wall]
                    row.append(_p50(asyncio.run(drive(url, args.n // 5, 1))))
                finally:
                    proc.terminate()
                    proc.wait(10)
            rows.append(row)
    finally:
        eng_proc.terminate()
        eng_proc.wait(10)
    lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M:%S')}, load average "
             f"{os.getloadavg()[0]:.2f}; command: `python {' '.join(sys.argv)}`; direct "
             f"(client -> engine) p50 at 1: {direct:.2f} ms", "",
             f"| relay | CPU ms/call | calls/s at {args.concurrency} in flight | p50 ms at 1 "
             "| p50 ms at 1, co-located | added p50 ms, co-located |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {k} | {cpu:.3f} | {tput:.0f} | {p50:.2f} | {p50c:.2f} | {p50c - direct:.2f} |"
              for k, cpu, tput, p50, p50c in rows]
    print("\n".join(lines))
    if args.out:
        args.out.write_text("# Relay stacks, side by side\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("serve-"):
        kind, engine, cpu, port = sys.argv[1:5]
        serve(kind.removeprefix("serve-"), int(port), engine, int(cpu))
    else:
        main()
