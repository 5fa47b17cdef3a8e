"""The autellix gateway: an OpenAI-compatible front for N engines (Autellix §4.1, §4.3).

Endpoints:

* ``POST /v1/chat/completions``, ``POST /v1/completions``: forwarded to an engine
  picked by the balancer (streaming SSE is relayed as it arrives).
* ``GET /v1/models``: the first healthy engine's answer, plus
  ``"autellix": {"policy", "balancer", "engines"}`` (policy: ``engine_policy``, or
  null when the gateway was not told).
* ``POST /v1/programs`` (optional body ``{"id": ...}``) starts a program and returns
  ``{"id": ...}``; ``GET /v1/programs/{id}`` shows its table entry;
  ``DELETE /v1/programs/{id}`` ends it (404 if unknown).
* ``GET /health``: 200 while at least one engine is admitted or due a trial call,
  else 503; ``engines`` maps each engine to ``admitted``, ``probing`` or ``ejected``.
* ``GET /metrics``: Prometheus text (see :mod:`autellix.gateway.metrics`).

Program identity of a call: see :func:`autellix.gateway.parsing.identify` (the
``X-Autellix-Program`` header, ``vllm_xargs.agentic_context``, ``session_id``,
``X-Session-ID``, llm-d's fairness id, ``user``, in that order); with none, the call
is a program of its own that ends with it.

Every error is OpenAI-shaped: ``{"error": {"message", "type", "code", "param"}}``.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from autellix.gateway.config import GatewayConfig
from autellix.gateway.forward import ROUTES, forward
from autellix.gateway.guard import Guard
from autellix.gateway.parsing import (
    GatewayError,
    bad_request,
    check_id,
    error_body,
    parse_json_object,
)
from autellix.gateway.state import GatewayState


def create_app(engine_urls, balancer: str = "autellix", *, clock=None, **settings) -> Guard:
    """Build the gateway's ASGI app. ``settings`` are :class:`GatewayConfig` fields.

    ``POST /v1/chat/completions`` and ``/v1/completions`` go straight to the raw ASGI
    :func:`forward`; every other route is a FastAPI app. Both sit behind
    :class:`Guard` (keys, size limits), whose ``.state`` reaches the FastAPI app's.
    ``clock`` (a monotonic-seconds callable) replaces the ejection clock, for tests.
    """
    config = GatewayConfig(engine_urls=tuple(engine_urls), balancer=balancer, **settings)
    state = GatewayState(config, clock=clock or time.monotonic)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    app = FastAPI(title="autellix gateway", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.gateway = state

    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, exc: GatewayError):
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        loc = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return JSONResponse(error_body(f"invalid request: {first.get('msg', exc)}",
                                       "invalid_request_error", "invalid_value", loc or None),
                            status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        type_ = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(error_body(str(exc.detail), type_, str(exc.status_code)),
                            status_code=exc.status_code)

    async def _served_by_forward():  # pragma: no cover - POSTs never reach FastAPI
        raise RuntimeError("completions are served by the raw ASGI forward()")

    for path in ROUTES:  # registered so that other methods get FastAPI's 405
        app.add_api_route(path, _served_by_forward, methods=["POST"])

    @app.get("/v1/models")
    async def models():
        for e in state.healthy_engines():
            try:
                r = await state.client.get(f"{e.url}/v1/models",
                                           timeout=state.config.health_timeout * 5)
            except httpx.HTTPError as exc:
                state.engine_failed(e.index, f"/v1/models failed: {type(exc).__name__}",
                                    (e.outlier.ejections, False))
                continue
            if r.status_code == 200:
                return _with_gateway_metadata(r.content, state.config)
        raise GatewayError(503, "no healthy engine is available", "server_error",
                           "no_engine_available")

    @app.post("/v1/programs")
    async def start_program(request: Request):
        raw = await request.body()
        pid = None
        if raw.strip():
            body = parse_json_object(raw)
            pid = body.get("id")
            if pid is not None and not isinstance(pid, str):
                raise bad_request("'id' must be a string", param="id", code="invalid_type")
        pid = check_id(pid, "id") if pid is not None else f"prog-{uuid.uuid4().hex}"
        state.start_program(pid)
        return {"id": pid, "object": "program"}

    @app.get("/v1/programs/{pid}")
    async def get_program(pid: str):
        e = state.table.get(pid)
        if e is None:
            raise GatewayError(404, f"program {pid!r} not found", "not_found_error",
                               "program_not_found", "id")
        return {"id": pid, "object": "program", "service": e.service, "wait": e.wait,
                "calls": e.calls_done, "active_threads": len(e.threads),
                "engines": sorted(state.engines[i].url for i in e.engines)}

    @app.delete("/v1/programs/{pid}")
    async def end_program(pid: str):
        info = state.end_program(pid)
        if info is None:
            raise GatewayError(404, f"program {pid!r} not found", "not_found_error",
                               "program_not_found", "id")
        return {**info, "object": "program", "deleted": True}

    @app.get("/health")
    async def health():
        up = state.healthy_engines()  # admitted, or due a trial call
        body = {"status": "ok" if up else "unavailable",
                "healthy": [e.url for e in state.engines if e.healthy],
                "unhealthy": [e.url for e in state.engines if not e.healthy],
                "engines": {e.url: e.outlier.state_at(state.clock()).value
                            for e in state.engines},
                "programs": len(state.table), "time": time.time()}
        return JSONResponse(body, status_code=200 if up else 503)

    @app.get("/metrics")
    async def metrics():
        return Response(state.render_metrics(), media_type=state.metrics.content_type)

    async def gateway(scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST":
            kind = ROUTES.get(scope["path"])
            if kind is not None:
                return await forward(state, scope, receive, send, kind)
        return await app(scope, receive, send)

    gateway.state = app.state  # type: ignore[attr-defined]  # Guard's .state reaches it
    return Guard(gateway, api_keys=config.api_keys, max_body_bytes=config.max_body_bytes,
                 max_header_bytes=config.max_header_bytes)


def _with_gateway_metadata(content: bytes, config: GatewayConfig) -> Response:
    """The engine's model list with the gateway's own facts added (left as is if odd)."""
    try:
        doc = json.loads(content)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        return Response(content, media_type="application/json")
    doc["autellix"] = {"policy": config.engine_policy or None, "balancer": config.balancer,
                       "engines": len(config.engine_urls)}
    return JSONResponse(doc)


def run_gateway(engine_urls, host: str = "127.0.0.1", port: int = 18400,
                balancer: str = "autellix", log_level: str = "warning", **settings) -> None:
    """Serve the gateway with uvicorn until interrupted (blocks)."""
    app = create_app(engine_urls, balancer, **settings)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
