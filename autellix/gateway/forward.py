"""Forwarding one OpenAI call to an engine: routing, tagging, streaming, aborts, failures.

This is the hot path, so it is a plain ASGI handler (no framework routing, request
or response objects) over a shared aiohttp session; ``benchmarks/gateway_stacks.py``
measured that choice (see ``results/gateway-overhead/``).

* The call is tagged for the engine's scheduler with ``vllm_xargs`` =
  ``{program_id, thread_id, program_service}``, merged over the client's own
  ``vllm_xargs``; nothing else in the body changes.
* A refused or timed-out *connect* counts as a failure of the engine and the call is
  retried on another available engine: it never reached the first one, so it cannot
  run twice (timeouts alone get up to ``CONNECT_ROUNDS`` rounds, see ``_post``).
  Nothing else is retried. Any failure after that (read timeout, dropped
  connection) counts against the engine and fails the call with 502, or with an SSE
  ``error`` event when the response is already streaming. Every outcome feeds the
  engine's outlier detector (:mod:`autellix.gateway.outlier`). No engine available:
  503. Nothing waits without a timeout.
* A client that disconnects aborts the upstream request: a small watcher task waits
  for the ASGI ``http.disconnect`` message and cancels the call's task, which closes
  the upstream connection, so vLLM aborts the request and frees its KV cache. The
  watcher starts once the call has run ``WATCH_AFTER`` (50 ms); a call that ends
  sooner is never watched, and its answer to a departed client is dropped by the
  server (the call is booked as served).
* Streaming relays each upstream chunk as it arrives, untouched: per chunk, one read
  and one send, and no parsing or bookkeeping beyond noting the first chunk's time.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time

import aiohttp

from autellix.gateway.parsing import (
    GatewayError,
    error_body,
    parse_call,
    send_json,
    tag_call,
)
from autellix.gateway.state import GatewayState

ROUTES = {"/v1/chat/completions": "chat", "/v1/completions": "completions"}
FORWARD_HEADERS = frozenset(("authorization", "x-request-id", "x-vllm-priority", "traceparent",
                             "tracestate", "x-session-id", "x-data-parallel-rank"))
GATEWAY_FAILURES = (502, 503, 504)  # engine answers that count against it (Envoy's gateway errors)
NEVER_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
CONNECT_ROUNDS = 3      # rounds over every engine while connects only time out
CONNECT_BACKOFF = 0.1   # seconds before the second round; doubled for each later one
_PREFIX = os.urandom(4).hex()
_ids = itertools.count()


def new_call_id() -> str:
    """A call id unique in this process and, by its random prefix, across processes."""
    return f"{_PREFIX}{next(_ids):08x}"


def upstream_headers(headers: dict) -> dict:
    """The client's headers that an engine may use, plus what a raw relay needs."""
    up = {k: v for k, v in headers.items() if k in FORWARD_HEADERS}
    up["content-type"] = "application/json"
    up["accept-encoding"] = "identity"  # bytes are relayed raw: no compression upstream
    return up


def _failure(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, TimeoutError):
        return "engine_timeout", f"engine timed out ({type(exc).__name__})"
    return "engine_failed", f"engine failed ({type(exc).__name__}: {exc})"


def sse_error(message: str, code: str) -> bytes:
    """The SSE event that ends a stream its engine failed mid-way (OpenAI error body)."""
    return f"data: {json.dumps(error_body(message, 'server_error', code))}\n\n".encode()


WATCH_AFTER = 0.05  # seconds before a call starts watching for its client leaving


class _Watch:
    """Cancels the call's task when the client disconnects (unless the call is done).

    The watcher task starts only once the call has run ``WATCH_AFTER`` seconds. A
    task per call (create, a pending ``receive()``, cancel) was the largest single
    cost of the gateway's own logic for a short call (0.06-0.18 ms of CPU on a 2-core
    VM, found by switching parts off one at a time against
    ``benchmarks/gateway_overhead.py``'s fake engine); a timer costs about 1 us. So
    short calls (refused, cached, a few tokens) no longer pay it; a call that runs
    longer still does, a negligible part of its time. A client that leaves is
    noticed at most ``WATCH_AFTER`` late, which a call worth aborting (one holding
    KV cache for seconds) does not feel."""

    __slots__ = ("gone", "done", "_task", "_timer")

    def __init__(self, receive, task: asyncio.Task, after: float = WATCH_AFTER):
        self.gone = self.done = False
        self._task: asyncio.Task | None = None
        self._timer = asyncio.get_running_loop().call_later(after, self._start, receive, task)

    def _start(self, receive, task: asyncio.Task) -> None:
        if not self.done:
            self._task = asyncio.get_running_loop().create_task(self._run(receive, task))

    async def _run(self, receive, task) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if not self.done:
            self.gone = True
            task.cancel()

    def stop(self) -> None:
        self.done = True
        self._timer.cancel()
        if self._task is not None:
            self._task.cancel()


class _Call:
    """Bookkeeping of one call from routing to its end (exactly one ``finish``)."""

    __slots__ = ("state", "kind", "ident", "call_id", "engine", "t0", "first", "done",
                 "ticket", "judged")

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

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"x-autellix-engine", self.state.engines[self.engine].url.encode()),
                (b"x-autellix-program", self.ident.program_id.encode()),
                (b"x-autellix-call", self.call_id.encode())]


async def _post(state: GatewayState, call: _Call, path: str, payload: bytes, headers: dict,
                tokens: int) -> aiohttp.ClientResponse:
    """POST to the call's engine, moving to another engine while connects fail.

    When every engine has been tried and some connect in that round *timed out*, a
    new round starts after a short backoff, up to ``CONNECT_ROUNDS`` rounds: on a
    loaded host, a burst of thousands of calls makes the gateway's own event loop
    late, and its connect timers then fire on engines that are fine. A round of
    refused connects only (every engine gone) ends with the 503 at once.
    """
    tried = {call.engine}
    rounds, timeouts = 1, False
    assert state.session is not None, "a call before GatewayState.start()"
    while True:
        try:
            return await state.session.post(state.engine_url(call.engine, path), data=payload,
                                            headers=headers)
        except NEVER_SENT as exc:
            state.engine_failed(call.engine, f"connect failed: {type(exc).__name__}",
                                call.ticket)
            timeouts = timeouts or isinstance(exc, aiohttp.ConnectionTimeoutError)
            try:
                new = state.choose(call.ident.program_id, tokens, exclude=tried)
            except GatewayError:
                if not timeouts or rounds >= CONNECT_ROUNDS:
                    raise  # the 503: no engine could be reached
                await asyncio.sleep(CONNECT_BACKOFF * 2 ** (rounds - 1))
                rounds, timeouts, tried = rounds + 1, False, set()
                new = state.choose(call.ident.program_id, tokens)  # or 503
            call.ticket = state.call_moved(call.ident, call.call_id, call.engine, new)
            call.engine = new
            tried.add(new)


async def _read_body(receive) -> bytes:
    message = await receive()  # the guard hands the whole body over in one message
    body = message.get("body", b"")
    while message.get("more_body", False):
        message = await receive()
        body += message.get("body", b"")
    return body


async def forward(state: GatewayState, scope, receive, send, kind: str) -> None:
    cfg = state.config
    raw = await _read_body(receive)
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    try:
        call_id = new_call_id()
        body, ident, tokens = parse_call(kind, raw, headers, call_id, cfg.program_header,
                                         cfg.thread_header, cfg.chars_per_token)
        engine = state.choose(ident.program_id, tokens)
    except GatewayError as e:
        state.metrics.call_done(kind, "rejected", 0.0)
        return await send_json(send, e.status, e.body())

    call = _Call(state, kind, ident, call_id, engine)
    service, call.ticket = state.call_started(ident, call_id, engine)
    tag_call(body, ident, service)
    up_headers = upstream_headers(headers)
    payload = json.dumps(body, separators=(",", ":")).encode()
    task = asyncio.current_task()
    assert task is not None  # the ASGI server runs each request as a task
    watch = _Watch(receive, task)
    resp = None
    try:
        try:
            resp = await _post(state, call, scope["path"], payload, up_headers, tokens)
            if body.get("stream") and resp.status == 200:
                return await _relay_stream(resp, call, send, watch)
            content = await resp.read()
        except GatewayError as e:
            call.judged = True  # every engine tried was charged with its connect failure
            call.finish("failed")
            return await send_json(send, e.status, e.body())
        except (aiohttp.ClientError, TimeoutError) as exc:
            code, msg = _failure(exc)
            call.engine_failed(msg)
            call.finish("failed")
            return await send_json(send, 502, error_body(msg, "server_error", code),
                                   call.headers())
        call.engine_answered(resp.status)
        watch.done = True
        await send({"type": "http.response.start", "status": resp.status, "headers": [
            (b"content-type", resp.headers.get("content-type", "application/json").encode()),
            (b"content-length", str(len(content)).encode()), *call.headers()]})
        await send({"type": "http.response.body", "body": content})
        # booked after the answer left, off the client's wait; no await in between, so no
        # other request on this loop can see the table before the call is in it
        status = "ok" if resp.status < 300 else "upstream_error"
        reported = None
        if status == "ok" and b'"autellix"' in content:
            try:
                reported = float(json.loads(content)["autellix"]["service"])
            except (ValueError, KeyError, TypeError):
                pass
        call.finish(status, reported)
    except asyncio.CancelledError:
        if not watch.gone:
            raise
        if hasattr(task, "uncancel"):  # Python >= 3.11: we cancelled ourselves, the client left
            task.uncancel()
        if resp is not None:
            resp.close()  # drop the upstream connection: vLLM aborts the request
        call.finish("aborted")
    finally:
        watch.stop()
        if resp is not None:
            resp.release()
        call.finish("failed")  # no-op unless something unexpected escaped


async def _relay_stream(resp: aiohttp.ClientResponse, call: _Call, send, watch: _Watch) -> None:
    await send({"type": "http.response.start", "status": resp.status, "headers": [
        (b"content-type", resp.headers.get("content-type", "text/event-stream").encode()),
        (b"cache-control", b"no-cache"), *call.headers()]})
    status = "ok"
    try:
        async for chunk in resp.content.iter_any():
            if call.first is None:
                call.first = time.monotonic()
                call.engine_answered(resp.status)  # a trial passes on its first token
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        call.engine_answered(resp.status)  # an empty stream: judged at its end
    except (aiohttp.ClientError, TimeoutError) as exc:
        code, msg = _failure(exc)
        call.engine_failed(msg)
        status = "failed"
        await send({"type": "http.response.body", "body": sse_error(msg, code),
                    "more_body": True})
    call.finish(status)  # book the call before the client sees the end
    watch.done = True
    await send({"type": "http.response.body", "body": b"", "more_body": False})
