"""Forwarding one OpenAI call to an engine: routing, tagging, streaming, aborts, failures.

* The call is tagged for the engine's scheduler with ``vllm_xargs`` =
  ``{program_id, thread_id, program_service}``, merged over the client's own
  ``vllm_xargs``; nothing else in the body changes.
* A refused or timed-out *connect* counts as a failure of the engine and the call is
  retried on another available engine: it never reached the first one, so it cannot
  run twice. Nothing else is retried. Any failure after that (read timeout, dropped
  connection) counts against the engine and fails the call with 502, or with an SSE
  ``error`` event when the response is already streaming. Every outcome feeds the
  engine's outlier detector (:mod:`autellix.gateway.outlier`). No engine available:
  503. Nothing waits without a timeout.
* A client that disconnects aborts the upstream request: the upstream exchange runs
  as a task raced against the ASGI ``http.disconnect`` message, and is cancelled,
  which closes the connection so vLLM aborts the request and frees its KV cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid

import anyio
import httpx
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from autellix.gateway.parsing import (GatewayError, error_body, identify, parse_json_object,
                                      prompt_tokens, validate_call)
from autellix.gateway.state import GatewayState

PATHS = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}
FORWARD_HEADERS = ("authorization", "x-request-id", "x-vllm-priority", "traceparent",
                   "tracestate", "x-session-id", "x-data-parallel-rank")
CLIENT_CLOSED = 499  # nginx's code; the client never sees it
GATEWAY_FAILURES = (502, 503, 504)  # engine answers that count against it (Envoy's gateway errors)


class ClientGone(Exception):
    pass


async def _wait_disconnect(receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _race_disconnect(coro, request: Request):
    """Run ``coro``; if the client disconnects first, cancel it and raise ClientGone."""
    task = asyncio.ensure_future(coro)
    watch = asyncio.ensure_future(_wait_disconnect(request.receive))
    try:
        done, _ = await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        watch.cancel()
        raise
    watch.cancel()
    if task in done:
        return task.result()
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    raise ClientGone()


def _failure(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, httpx.TimeoutException):
        return "engine_timeout", f"engine timed out ({type(exc).__name__})"
    return "engine_failed", f"engine failed ({type(exc).__name__}: {exc})"


def _sse_error(message: str, code: str) -> bytes:
    return f"data: {json.dumps(error_body(message, 'server_error', code))}\n\n".encode()


class _Call:
    """Bookkeeping of one call from routing to its end (exactly one ``finish``)."""

    def __init__(self, state: GatewayState, kind: str, ident, call_id: str, engine: int):
        self.state, self.kind, self.ident, self.call_id, self.engine = (
            state, kind, ident, call_id, engine)
        self.t0 = time.monotonic()
        self.first: float | None = None
        self.done = False
        self.ticket: tuple = (0, False)  # the engine's outlier ticket, set at call_started
        self.judged = False  # the engine's outcome was reported to its outlier detector

    def engine_answered(self, status_code: int) -> None:
        if not self.judged:
            self.judged = True
            if status_code in GATEWAY_FAILURES:
                self.state.engine_failed(self.engine, f"engine answered {status_code}",
                                         self.ticket)
            else:
                self.state.engine_ok(self.engine, self.ticket)

    def engine_failed(self, reason: str) -> None:
        """Charge a failure, also after a first chunk was judged a success (a crash
        mid-stream still counts towards ejection, but no longer as the trial's)."""
        ticket = self.ticket if not self.judged else (self.ticket[0], False)
        self.judged = True
        self.state.engine_failed(self.engine, reason, ticket)

    def finish(self, status: str, service: float | None = None) -> None:
        if self.done:
            return
        self.done = True
        if not self.judged:  # no verdict on the engine (client gone): free a trial slot
            self.judged = True
            self.state.engines[self.engine].outlier.released(self.ticket)
        now = time.monotonic()
        e2e = now - self.t0
        if service is None:
            service = (now - self.first) if self.first is not None else e2e
        wait = (self.first - self.t0) if self.first is not None else 0.0
        self.state.call_finished(self.ident, self.call_id, self.engine, endpoint=self.kind,
                                 status=status, service=service, wait=wait, e2e=e2e)

    def headers(self) -> dict:
        return {"x-autellix-engine": self.state.engines[self.engine].url,
                "x-autellix-program": self.ident.program_id, "x-autellix-call": self.call_id}


async def _send(state: GatewayState, call: _Call, path: str, payload: bytes, headers: dict,
                tokens: int) -> httpx.Response:
    """POST to the call's engine, moving to another engine while connects fail."""
    tried = {call.engine}
    while True:
        req = state.client.build_request("POST", state.engine_url(call.engine, path),
                                         content=payload, headers=headers)
        try:
            return await state.client.send(req, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            state.engine_failed(call.engine, f"connect failed: {type(exc).__name__}",
                                call.ticket)
            new = state.choose(call.ident.program_id, tokens, exclude=tried)  # or 503
            call.ticket = state.call_moved(call.ident, call.call_id, call.engine, new)
            call.engine = new
            tried.add(new)


async def forward(state: GatewayState, request: Request, kind: str) -> Response:
    cfg = state.config
    try:
        body = parse_json_object(await request.body())
        validate_call(kind, body)
        call_id = uuid.uuid4().hex[:16]
        ident = identify(request.headers, body, call_id, cfg.program_header, cfg.thread_header)
        tokens = prompt_tokens(kind, body, cfg.chars_per_token)
        engine = state.choose(ident.program_id, tokens)
    except GatewayError as e:
        state.metrics.call_done(kind, "rejected", 0.0)
        return e.response()

    call = _Call(state, kind, ident, call_id, engine)
    service, call.ticket = state.call_started(ident, call_id, engine)
    body["vllm_xargs"] = {**(body.get("vllm_xargs") or {}), "program_id": ident.program_id,
                          "thread_id": ident.thread_id, "program_service": float(service)}
    headers = {k: v for k, v in request.headers.items() if k in FORWARD_HEADERS}
    headers["content-type"] = "application/json"
    headers["accept-encoding"] = "identity"  # bytes are relayed raw: no compression upstream
    payload = json.dumps(body, separators=(",", ":")).encode()
    stream = bool(body.get("stream"))
    path = PATHS[kind]

    async def exchange():
        resp = await _send(state, call, path, payload, headers, tokens)
        if stream and resp.status_code == 200:
            return resp, None
        try:
            content = await resp.aread()
        finally:
            await resp.aclose()
        return resp, content

    try:
        resp, content = await _race_disconnect(exchange(), request)
    except ClientGone:
        call.finish("aborted")
        return Response(status_code=CLIENT_CLOSED)
    except GatewayError as e:
        call.judged = True  # every engine tried was already charged with its connect failure
        call.finish("failed" if e.status >= 500 else "rejected")
        return e.response()
    except httpx.HTTPError as exc:
        code, msg = _failure(exc)
        call.engine_failed(msg)
        call.finish("failed")
        return JSONResponse(error_body(msg, "server_error", code), status_code=502,
                            headers=call.headers())
    except BaseException:
        call.finish("failed")
        raise

    if content is None:
        return ProxyStream(resp, call)
    call.engine_answered(resp.status_code)
    status = "ok" if resp.status_code < 300 else "upstream_error"
    reported = None
    if status == "ok" and b'"autellix"' in content:
        with contextlib.suppress(Exception):
            reported = float(json.loads(content)["autellix"]["service"])
    call.finish(status, reported)
    return Response(content, status_code=resp.status_code, headers=call.headers(),
                    media_type=resp.headers.get("content-type", "application/json"))


class ProxyStream(Response):
    """Relays an upstream SSE stream; client disconnect closes the upstream stream."""

    def __init__(self, upstream: httpx.Response, call: _Call):
        self.upstream, self.call = upstream, call
        self.status_code = upstream.status_code
        self.media_type = upstream.headers.get("content-type", "text/event-stream")
        self.background = None
        self.init_headers({**call.headers(), "cache-control": "no-cache"})

    async def __call__(self, scope, receive, send) -> None:
        outcome = {"status": "aborted"}
        call = self.call

        async def pump(tg) -> None:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            try:
                async for chunk in self.upstream.aiter_raw():
                    if call.first is None:
                        call.first = time.monotonic()
                        call.engine_answered(self.status_code)  # a trial passes on its first token
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                outcome["status"] = "ok"
                call.engine_answered(self.status_code)  # an empty stream: judged at its end
            except httpx.HTTPError as exc:
                code, msg = _failure(exc)
                call.engine_failed(msg)
                outcome["status"] = "failed"
                await send({"type": "http.response.body", "body": _sse_error(msg, code),
                            "more_body": True})
            await self.upstream.aclose()
            call.finish(outcome["status"])  # book the call before the client sees the end
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            tg.cancel_scope.cancel()

        async def listen(tg) -> None:
            await _wait_disconnect(receive)
            tg.cancel_scope.cancel()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(pump, tg)
                tg.start_soon(listen, tg)
        except OSError:  # the client vanished while we were sending
            outcome["status"] = "aborted"
        finally:
            with anyio.CancelScope(shield=True):
                await self.upstream.aclose()
            call.finish(outcome["status"])
