"""The gateway's shared state: engines, process table, balancer, background loops.

Process table (rule ``max``, Alg. 1 line 4). A call copies its program's service at
arrival (sent to the engine as ``vllm_xargs.program_service``) and is folded back in
when it finishes, fails or is aborted. The service the gateway charges a call is a
*measured proxy*, because the engine's own engine-seconds are not returned:

* streaming call: ``e2e - ttft`` (the decode phase; time spent queued before the
  first token is excluded so a program that waited is not pushed down for it);
* non-streaming call: ``e2e`` (queueing cannot be separated from outside);
* if the engine's response carries ``autellix.service`` (engine-seconds), that wins.

Each engine's scheduler keeps its own exact accounting; the gateway's number only
seeds a program's priority, which matters most when its calls move between engines.

Program wait is the call's TTFT when streaming (queueing plus prefill), else 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import httpx

from autellix.balancer import NoEngineAvailable, make_balancer
from autellix.gateway.config import GatewayConfig
from autellix.gateway.metrics import GatewayMetrics
from autellix.gateway.parsing import Identity
from autellix.process_table import ProcessTable

log = logging.getLogger("autellix.gateway")


@dataclass
class EngineState:
    index: int
    url: str
    healthy: bool = True
    inflight: int = 0
    last_error: str = ""


class GatewayState:
    def __init__(self, config: GatewayConfig, transport: httpx.AsyncBaseTransport | None = None):
        self.config = config
        self.engines = [EngineState(i, u) for i, u in enumerate(config.engine_urls)]
        self.table = ProcessTable(rule="max", ttl=config.ttl, max_entries=config.max_entries)
        self.balancer = make_balancer(config.balancer, len(self.engines))
        self.metrics = GatewayMetrics(config.engine_urls)
        self._transport = transport
        self.client: httpx.AsyncClient | None = None
        self._tasks: list[asyncio.Task] = []
        self._urls: dict = {}

    # ---- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        c = self.config
        timeout = httpx.Timeout(connect=c.connect_timeout, read=c.read_timeout,
                                write=c.read_timeout, pool=c.read_timeout)
        limits = httpx.Limits(max_connections=c.max_connections,
                              max_keepalive_connections=min(256, c.max_connections))
        self.client = httpx.AsyncClient(timeout=timeout, limits=limits, transport=self._transport,
                                        trust_env=False)
        self._tasks = [asyncio.create_task(self._health_loop(), name="autellix-health"),
                       asyncio.create_task(self._expire_loop(), name="autellix-expire")]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks = []
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    # ---- engines ---------------------------------------------------------------------
    def engine_url(self, i: int, path: str) -> httpx.URL:
        """Parsed once per (engine, path): httpx's URL parsing is costly on the hot path."""
        key = (i, path)
        url = self._urls.get(key)
        if url is None:
            url = self._urls[key] = httpx.URL(self.engines[i].url + path)
        return url

    def unavailable(self) -> set[int]:
        return {e.index for e in self.engines if not e.healthy}

    def healthy_engines(self) -> list[EngineState]:
        return [e for e in self.engines if e.healthy]

    def mark_down(self, i: int, reason: str) -> None:
        e = self.engines[i]
        e.last_error = reason
        if e.healthy:
            e.healthy = False
            log.warning("engine %s marked unhealthy: %s", e.url, reason)
            self.metrics.healthy.labels(e.url).set(0)
            self.metrics.failures.labels(e.url).inc()
            self.balancer.engine_failed(i)

    def mark_up(self, i: int) -> None:
        e = self.engines[i]
        if not e.healthy:
            e.healthy = True
            log.info("engine %s is healthy again", e.url)
            self.metrics.healthy.labels(e.url).set(1)

    async def probe(self, i: int) -> bool:
        e = self.engines[i]
        try:
            r = await self.client.get(f"{e.url}/health", timeout=self.config.health_timeout)
            ok = r.status_code == 200
            reason = f"/health answered {r.status_code}"
        except httpx.HTTPError as exc:
            ok, reason = False, f"/health failed: {type(exc).__name__}"
        if ok:
            self.mark_up(i)
        else:
            self.mark_down(i, reason)
        return ok

    async def _health_loop(self) -> None:
        while True:
            await asyncio.gather(*(self.probe(i) for i in range(len(self.engines))),
                                 return_exceptions=True)
            await asyncio.sleep(self.config.health_interval)

    async def _expire_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.expire_interval)
            self.expire()

    def expire(self, now: float | None = None) -> list[str]:
        gone = self.table.expire(time.monotonic() if now is None else now)
        for pid in gone:
            self.balancer.program_ended(pid)
        self.metrics.programs_active.set(len(self.table))
        return gone

    # ---- programs and calls ----------------------------------------------------------
    def start_program(self, pid: str) -> None:
        self.table.entry(pid, time.monotonic())
        self.metrics.programs_active.set(len(self.table))

    def end_program(self, pid: str) -> dict | None:
        e = self.table.end_program(pid)
        self.balancer.program_ended(pid)
        self.metrics.programs_active.set(len(self.table))
        if e is None:
            return None
        return {"id": pid, "service": e.service, "wait": e.wait, "calls": e.calls_done}

    def choose(self, pid: str, tokens: int, exclude: set[int] = frozenset()) -> int:
        """Engine index for a call; raises NoEngineAvailable."""
        loads = [e.inflight for e in self.engines]
        return self.balancer.choose(pid, tokens, loads, self.unavailable() | set(exclude))

    def call_started(self, ident: Identity, call_id: str, engine: int) -> float:
        """Register the call; returns the program service it carries to the engine."""
        e = self.engines[engine]
        e.inflight += 1
        self.metrics.inflight_of[e.url].set(e.inflight)
        return self.table.call_arrived(ident.program_id, call_id, time.monotonic(),
                                       engine=engine).priority

    def call_moved(self, ident: Identity, call_id: str, old: int, new: int) -> None:
        """The call could not reach ``old`` and goes to ``new`` instead."""
        for i, d in ((old, -1), (new, +1)):
            self.engines[i].inflight += d
            self.metrics.inflight_of[self.engines[i].url].set(self.engines[i].inflight)
        entry = self.table.get(ident.program_id)
        if entry is not None and call_id in entry.threads:
            entry.threads[call_id].engine = new
            entry.engines.add(new)

    def call_finished(self, ident: Identity, call_id: str, engine: int, *, endpoint: str,
                      status: str, service: float, wait: float, e2e: float) -> None:
        e = self.engines[engine]
        e.inflight = max(0, e.inflight - 1)
        self.metrics.inflight_of[e.url].set(e.inflight)
        self.table.call_finished(ident.program_id, call_id, max(0.0, service), max(0.0, wait),
                                 time.monotonic())
        if ident.one_call:
            self.end_program(ident.program_id)
        self.metrics.programs_active.set(len(self.table))
        self.metrics.call_done(endpoint, status, e2e)


__all__ = ["EngineState", "GatewayState", "NoEngineAvailable"]
