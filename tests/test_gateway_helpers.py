"""Test support for the gateway tests: a fake OpenAI engine and uvicorn servers in threads.

The fake engine speaks enough of vLLM's OpenAI API (chat and completions, streaming
and not, /health, /v1/models) and records what reaches it: bodies, headers, how many
calls are running, finished or aborted. Like vLLM it aborts a non-streaming call
when its client disconnects. ``mode`` makes it misbehave: ``hang`` (never answers),
``crash`` (drops the connection after two chunks), ``sick`` (/health answers 500).
While ``held`` is true, calls that reached it wait (so a test can have several calls
in flight at once without relying on timing).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ManualClock:
    """A monotonic clock that moves only when told: drives the gateway's ejections."""

    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


class ServerThread:
    """Run an ASGI app with uvicorn on 127.0.0.1 in a daemon thread.

    With no ``port`` it listens on a socket bound to port 0, so the kernel picks a
    free port and parallel test runs never collide.
    """

    def __init__(self, app, port: int | None = None):
        self.sock = None
        if port is None:
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", 0))
            port = self.sock.getsockname()[1]
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error",
                             access_log=False, lifespan="on", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(cfg)
        socks = [self.sock] if self.sock is not None else None
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": socks},
                                       daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
        if self.sock is not None:
            self.sock.close()


class FakeEngine:
    def __init__(self, name: str = "fake", token_delay: float = 0.0, port: int | None = None):
        self.name = name
        self.token_delay = token_delay
        self.mode = "ok"
        self.held = False
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.running = 0
        self.finished = 0
        self.aborted = 0
        self.app = self._build()
        self.server = ServerThread(self.app, port)
        self.url = self.server.url

    def start(self) -> FakeEngine:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def wait_for(self, pred, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return True
            time.sleep(0.01)
        return pred()

    def _build(self) -> FastAPI:
        app = FastAPI()
        eng = self

        @app.get("/health")
        async def health():
            return JSONResponse({}, status_code=500 if eng.mode == "sick" else 200)

        @app.get("/v1/models")
        async def models():
            return {"object": "list", "data": [{"id": "tiny", "object": "model",
                                                "owned_by": eng.name}]}

        async def handle(request: Request, kind: str):
            body = await request.json()
            eng.bodies.append(body)
            eng.headers.append(dict(request.headers))
            if "max_tokens" in body and not isinstance(body["max_tokens"], int):
                return JSONResponse({"error": {"message": "bad max_tokens", "type": "BadRequest",
                                               "code": 400}}, status_code=400)
            if body.get("prompt") == "reject":  # the engine's own validation error
                return JSONResponse({"error": {"message": "prompt rejected", "type": "BadRequest",
                                               "code": 400}}, status_code=400)
            if body.get("prompt") == "explode":
                return JSONResponse({"error": {"message": "internal", "type": "Internal",
                                               "code": 500}}, status_code=500)
            n = int(body.get("max_tokens") or 4)
            if body.get("stream"):
                return StreamingResponse(eng._stream(kind, n, body), media_type="text/event-stream")
            eng.running += 1
            work = asyncio.ensure_future(eng._work(n))
            watch = asyncio.ensure_future(_disconnected(request))
            done, _ = await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
            eng.running -= 1
            if work not in done:
                work.cancel()
                eng.aborted += 1
                return JSONResponse({}, status_code=499)
            watch.cancel()
            eng.finished += 1
            return _full(kind, n, eng.name)

        @app.post("/v1/chat/completions")
        async def chat(request: Request):
            return await handle(request, "chat")

        @app.post("/v1/completions")
        async def completions(request: Request):
            return await handle(request, "completions")

        return app

    async def _work(self, n: int) -> None:
        while self.held:
            await asyncio.sleep(0.002)
        if self.mode == "hang":
            await asyncio.sleep(3600)
        await asyncio.sleep(self.token_delay * n)

    async def _stream(self, kind: str, n: int, body: dict):
        self.running += 1
        try:
            while self.held:
                await asyncio.sleep(0.002)
            for i in range(n):
                if self.mode == "hang":
                    await asyncio.sleep(3600)
                if self.mode == "crash" and i == 2:
                    raise RuntimeError("engine crashed mid-stream")
                await asyncio.sleep(self.token_delay)
                yield f"data: {json.dumps(_chunk(kind, i, self.name))}\n\n"
            if (body.get("stream_options") or {}).get("include_usage"):
                yield f"data: {json.dumps(_usage_chunk(kind, n, self.name))}\n\n"
            yield "data: [DONE]\n\n"
            self.finished += 1
        except asyncio.CancelledError:
            self.aborted += 1
            raise
        finally:
            self.running -= 1


async def _disconnected(request: Request) -> None:
    while True:
        if (await request.receive())["type"] == "http.disconnect":
            return


def _usage(n: int) -> dict:
    return {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": 5 + n}


def _full(kind: str, n: int, name: str) -> dict:
    text = " tok" * n
    if kind == "chat":
        return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "tiny",
                "choices": [{"index": 0, "finish_reason": "length",
                             "message": {"role": "assistant", "content": text}}],
                "usage": _usage(n), "system_fingerprint": name}
    return {"id": "cmpl-1", "object": "text_completion", "created": 0, "model": "tiny",
            "choices": [{"index": 0, "text": text, "finish_reason": "length", "logprobs": None}],
            "usage": _usage(n)}


def _chunk(kind: str, i: int, name: str) -> dict:
    if kind == "chat":
        return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0,
                "model": "tiny", "choices": [{"index": 0, "delta": {"content": " tok"},
                                              "finish_reason": None}]}
    return {"id": "cmpl-1", "object": "text_completion", "created": 0, "model": "tiny",
            "choices": [{"index": 0, "text": " tok", "finish_reason": None, "logprobs": None}]}


def _usage_chunk(kind: str, n: int, name: str) -> dict:
    obj = "chat.completion.chunk" if kind == "chat" else "text_completion"
    return {"id": "x-1", "object": obj, "created": 0, "model": "tiny", "choices": [],
            "usage": _usage(n)}


def start_gateway(engine_urls, **settings) -> ServerThread:
    """The gateway on a free port; ``settings`` go to ``create_app`` (``clock`` too)."""
    from autellix.gateway import create_app
    settings.setdefault("health_interval", 0.2)
    settings.setdefault("read_timeout", 5.0)
    settings.setdefault("connect_timeout", 1.0)
    gw = ServerThread(create_app(engine_urls, **settings)).start()
    gw.state = gw.server.config.app.state.gateway
    return gw


def two_engine_stack():
    """Two fake engines behind a gateway that ejects on the first failure and reads
    ejection times off a :class:`ManualClock`; yields ``(gateway, engines, client)``."""
    import httpx

    engines = [FakeEngine("e0").start(), FakeEngine("e1").start()]
    gw = start_gateway([e.url for e in engines], read_timeout=1.0, eject_after=1,
                       clock=ManualClock())
    client = httpx.Client(base_url=gw.url, timeout=10)
    yield gw, engines, client
    client.close()
    gw.stop()
    for e in engines:
        e.stop()
