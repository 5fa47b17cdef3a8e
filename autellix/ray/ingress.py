"""The OpenAI-compatible ingress of the Ray Serve deployment.

The same endpoints and error bodies as the gateway (:mod:`autellix.gateway.app`),
built from the gateway's own pieces: a call is read by
:func:`autellix.gateway.parsing.parse_call` (JSON shape, validation, program
identity, approximate prompt tokens), tagged by ``tag_call``, and its headers
filtered by ``upstream_headers``; errors are answered by the gateway's handlers.
What differs is the hop to the engine: a Ray Serve handle call to the engine
deployment, which :class:`autellix.ray.router.AutellixRouter` routes.

* ``POST /v1/chat/completions``, ``/v1/completions``: streamed or not.
* ``GET /v1/models``: a replica's answer plus ``"autellix": {policy, balancer, engines}``.
* ``POST /v1/programs``, ``GET|DELETE /v1/programs/{id}``: the router's process table.
* ``GET /health``: 200 while a replica answers, with the router's live replicas.
* ``GET /metrics``: the gateway's call, abort and program series, in-flight calls by
  replica slot (no ejection series: Serve's health checks replace replicas).

A replica that dies fails its in-flight calls at once: 502 ``engine_failed``, or,
once a stream has started, an SSE ``error`` event, as at the gateway. Nothing
waits without a timeout: the first answer of an engine must come within
``read_timeout``, as must each later chunk (the replica's read timeout).

Run one ingress replica: the process table lives in its process (as in one
gateway). Several ingress replicas would each keep their own table.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from ray import serve
from ray.exceptions import RayError
from ray.serve.exceptions import RayServeException

from autellix.gateway.app import install_error_handlers, with_autellix_metadata
from autellix.gateway.forward import new_call_id, sse_error, upstream_headers
from autellix.gateway.metrics import GatewayMetrics
from autellix.gateway.parsing import (
    GatewayError,
    error_body,
    parse_call,
    program_id_to_start,
    program_not_found,
    tag_call,
)
from autellix.ray.config import RayServeConfig
from autellix.ray.routing import Route, shared_state

api = FastAPI(title="autellix on Ray Serve", docs_url=None, redoc_url=None, openapi_url=None)
install_error_handlers(api)
REPLICA_FAILURES = (RayError, RayServeException, TimeoutError)


def replica_failure(exc: BaseException) -> tuple[str, str]:
    """(code, one-line message) for a call its replica could not answer."""
    if isinstance(exc, TimeoutError):
        return "engine_timeout", "engine replica timed out"
    text = str(exc).strip()
    first = text.splitlines()[0][:300] if text else ""
    return "engine_failed", f"engine replica failed ({type(exc).__name__}: {first})"


@serve.ingress(api)
class Ingress:
    """OpenAI front: parses and tags calls, hands them to the routed engine deployment."""

    def __init__(self, engines, config: dict):
        self.cfg = RayServeConfig(**config)
        self.engines = engines
        kw = self.cfg.router_kwargs()
        self.state = shared_state(kw.pop("state_key"), **kw)
        self.metrics = GatewayMetrics(())  # the gateway's series; engines by slot

    # ---- calls -------------------------------------------------------------------
    @api.post("/v1/chat/completions")
    async def chat(self, request: Request):
        return await self._call(request, "chat", "/v1/chat/completions")

    @api.post("/v1/completions")
    async def completions(self, request: Request):
        return await self._call(request, "completions", "/v1/completions")

    async def _call(self, request: Request, kind: str, path: str):
        c = self.cfg
        headers = {k.lower(): v for k, v in request.headers.items()}
        call_id = new_call_id()
        try:
            body, ident, tokens = parse_call(kind, await request.body(), headers, call_id,
                                             c.program_header, c.thread_header,
                                             c.chars_per_token)
        except GatewayError as e:
            self.metrics.call_done(kind, "rejected", 0.0)
            return e.response()
        route = Route(ident.program_id, ident.thread_id, call_id, tokens, ident.one_call)
        tag_call(body, ident, 0.0)  # the router writes the program's service when it routes
        args = (route.to_dict(), path, body, upstream_headers(headers))
        ours = {"x-autellix-program": ident.program_id, "x-autellix-call": call_id}
        if body.get("stream"):
            return await self._stream(kind, route, args, ours, time.monotonic())
        t0 = time.monotonic()
        resp = self.engines.call.remote(*args)
        try:
            out = await asyncio.wait_for(resp, c.read_timeout)
        except asyncio.CancelledError:  # the client went away: abort the engine's call
            resp.cancel()
            self.metrics.call_done(kind, "aborted", time.monotonic() - t0)
            raise
        except REPLICA_FAILURES as exc:
            return self._failed(kind, exc, ours)
        status = "ok" if out["status"] < 300 else "upstream_error"
        self.metrics.call_done(kind, status, time.monotonic() - t0)
        return Response(out["body"], status_code=out["status"], media_type=out["content_type"],
                        headers={**ours, "x-autellix-engine": out["engine"]})

    async def _stream(self, kind: str, route: Route, args: tuple, ours: dict, t0: float):
        gen = self.engines.options(stream=True).stream.remote(*args)
        try:
            head = await asyncio.wait_for(gen.__anext__(), self.cfg.read_timeout)
        except REPLICA_FAILURES as exc:
            gen.cancel()
            return self._failed(kind, exc, ours)
        headers = {**ours, "x-autellix-engine": head["engine"], "cache-control": "no-cache"}
        if head["status"] != 200:  # the engine's own error: relay it whole
            content = b"".join([chunk async for chunk in gen])
            self.metrics.call_done(kind, "upstream_error", time.monotonic() - t0)
            return Response(content, status_code=head["status"],
                            media_type=head["content_type"], headers=headers)
        return StreamingResponse(self._relay(kind, route, gen, t0), media_type=head["content_type"],
                                 headers=headers)

    async def _relay(self, kind: str, route: Route, gen, t0: float):
        status = "aborted"
        try:
            first = True
            async for chunk in gen:
                if first:
                    first = False
                    self.state.first_chunk(route.call_id)
                yield chunk
            status = "ok"
        except REPLICA_FAILURES as exc:
            status = "failed"
            yield sse_error(*reversed(replica_failure(exc)))
        finally:
            if status == "aborted":
                gen.cancel()
            self.metrics.call_done(kind, status, time.monotonic() - t0)

    def _failed(self, kind: str, exc: BaseException, ours: dict) -> JSONResponse:
        code, msg = replica_failure(exc)
        self.metrics.call_done(kind, "failed", 0.0)
        return JSONResponse(error_body(msg, "server_error", code), status_code=502, headers=ours)

    # ---- the rest ----------------------------------------------------------------
    @api.get("/v1/models")
    async def models(self):
        try:
            content = await asyncio.wait_for(self.engines.models.remote(), 30.0)
        except REPLICA_FAILURES:
            raise GatewayError(503, "no healthy engine is available", "server_error",
                               "no_engine_available") from None
        return with_autellix_metadata(content, self.cfg.policy, self.cfg.balancer,
                                      len(self.state.slot_of) or self.cfg.replicas)

    @api.post("/v1/programs")
    async def start_program(self, request: Request):
        pid = program_id_to_start(await request.body())
        self.state.start_program(pid)
        return {"id": pid, "object": "program"}

    @api.get("/v1/programs/{pid}")
    async def get_program(self, pid: str):
        info = self.state.program_info(pid)
        if info is None:
            raise program_not_found(pid)
        return {**info, "object": "program"}

    @api.delete("/v1/programs/{pid}")
    async def end_program(self, pid: str):
        info = self.state.end_program(pid)
        if info is None:
            raise program_not_found(pid)
        return {**info, "object": "program", "deleted": True}

    @api.get("/health")
    async def health(self):
        try:
            await asyncio.wait_for(self.engines.info.remote(), 10.0)
            up = True
        except REPLICA_FAILURES:
            up = False
        with self.state.lock:
            body = {"status": "ok" if up else "unavailable",
                    "replicas": len(self.state.slot_of),
                    "inflight": list(self.state.loads), "programs": len(self.state.table)}
        return JSONResponse(body, status_code=200 if up else 503)

    @api.get("/metrics")
    async def metrics_text(self):
        m = self.metrics
        with self.state.lock:
            m.programs_active.set(len(self.state.table))
            for slot, n in enumerate(self.state.loads):
                m.inflight.labels(f"slot-{slot}").set(n)
        return Response(m.render(), media_type=m.content_type)
