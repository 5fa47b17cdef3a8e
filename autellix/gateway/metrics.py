"""Prometheus metrics of the gateway, kept in their own ``CollectorRegistry``.

Several gateways (tests, benchmarks) can live in one process without their series
colliding in the global registry.

* ``autellix_gateway_calls_total{endpoint,status}``: finished calls. ``status`` is
  ``ok`` (engine answered 2xx), ``upstream_error`` (engine answered non-2xx),
  ``failed`` (engine unreachable, timed out or dropped the call), ``aborted`` (the
  client went away and the upstream request was cancelled), ``rejected`` (400 at the
  gateway, or no engine available).
* ``autellix_gateway_aborts_total``: upstream requests cancelled for a client disconnect.
* ``autellix_gateway_programs_active``: live entries in the process table.
* ``autellix_gateway_inflight{engine}``: calls the gateway has open on each engine.
* ``autellix_gateway_engine_healthy{engine}``: 1 while the engine is admitted, 0 while
  it is ejected or on probation (half-open, waiting for its trial call to succeed).
* ``autellix_gateway_engine_failures_total{engine}``: gateway failures charged to the
  engine (connect refused or timed out, read timeout, dropped connection, an answer
  of 502/503/504, a failed ``/health`` probe).
* ``autellix_gateway_engine_ejections_total{engine}``: times the engine was ejected.
* ``autellix_gateway_panic_routed_total``: calls routed while every engine was out, so
  ejection was ignored (panic routing, see ``GatewayState.unavailable``).
* ``autellix_gateway_call_latency_seconds{endpoint}``: end-to-end call latency as the
  gateway sees it (ok calls only).
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class GatewayMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, engine_urls) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.calls = Counter("autellix_gateway_calls", "Calls finished at the gateway",
                             ["endpoint", "status"], registry=r)
        self.aborts = Counter("autellix_gateway_aborts",
                              "Upstream requests cancelled because the client disconnected",
                              registry=r)
        self.programs_active = Gauge("autellix_gateway_programs_active",
                                     "Programs in the gateway's process table", registry=r)
        self.inflight = Gauge("autellix_gateway_inflight", "Calls open on each engine",
                              ["engine"], registry=r)
        self.healthy = Gauge("autellix_gateway_engine_healthy", "1 if the engine is up",
                             ["engine"], registry=r)
        self.failures = Counter("autellix_gateway_engine_failures",
                                "Gateway failures charged to an engine", ["engine"], registry=r)
        self.ejections = Counter("autellix_gateway_engine_ejections",
                                 "Times an engine was ejected", ["engine"], registry=r)
        self.panic = Counter("autellix_gateway_panic_routed",
                             "Calls routed while every engine was out (ejection ignored)",
                             registry=r)
        self.latency = Histogram("autellix_gateway_call_latency_seconds",
                                 "End-to-end latency of successful calls", ["endpoint"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        for u in engine_urls:
            self.inflight.labels(u).set(0)
            self.healthy.labels(u).set(1)
            self.failures.labels(u)
            self.ejections.labels(u)
        # labelled children cached: ``labels()`` takes a lock and hashes on every call
        self.inflight_of = {u: self.inflight.labels(u) for u in engine_urls}
        self._calls: dict = {}
        self._latency: dict = {}

    def call_done(self, endpoint: str, status: str, e2e: float) -> None:
        c = self._calls.get((endpoint, status))
        if c is None:
            c = self._calls[(endpoint, status)] = self.calls.labels(endpoint, status)
        c.inc()
        if status == "ok":
            h = self._latency.get(endpoint)
            if h is None:
                h = self._latency[endpoint] = self.latency.labels(endpoint)
            h.observe(e2e)
        elif status == "aborted":
            self.aborts.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
