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

Engines are admitted, ejected and re-admitted by :mod:`autellix.gateway.outlier`
from the outcomes of real calls; ``/health`` probes can only eject.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import aiohttp
import httpx
import yarl

from autellix.balancer import NoEngineAvailable, make_balancer
from autellix.gateway.config import GatewayConfig
from autellix.gateway.metrics import GatewayMetrics
from autellix.gateway.outlier import EjectionPolicy, EngineHealth, OutlierDetector
from autellix.gateway.parsing import GatewayError, Identity
from autellix.process_table import ProcessTable

log = logging.getLogger("autellix.gateway")


@dataclass
class EngineState:
    index: int
    url: str
    outlier: OutlierDetector
    inflight: int = 0

    @property
    def healthy(self) -> bool:
        """Admitted (not ejected, not on probation)."""
        return self.outlier.state is EngineHealth.ADMITTED

    @property
    def last_error(self) -> str:
        return self.outlier.reason


def no_engine(engines) -> GatewayError:
    """The 503 for a call no engine can take: all ejected, or all at their limit."""
    if any(e.outlier.state is EngineHealth.ADMITTED for e in engines):
        limit = engines[0].outlier.policy.max_inflight
        return GatewayError(503, f"every available engine has {limit} calls in flight "
                            "(max_inflight_per_engine); retry shortly", "server_error",
                            "engines_busy")
    return GatewayError(503, "no healthy engine is available", "server_error",
                        "no_engine_available")


class GatewayState:
    def __init__(self, config: GatewayConfig, clock=time.monotonic):
        self.config = config
        self.clock = clock  # drives ejections; tests pass a controllable one
        policy = EjectionPolicy(config.eject_after, config.ejection_base, config.ejection_max,
                                config.max_inflight_per_engine)
        self.engines = [EngineState(i, u, OutlierDetector(policy))
                        for i, u in enumerate(config.engine_urls)]
        self.table = ProcessTable(rule="max", ttl=config.ttl, max_entries=config.max_entries)
        self.balancer = make_balancer(config.balancer, len(self.engines))
        if hasattr(self.balancer, "max_pins"):  # a pin never outlives the table's bound
            self.balancer.max_pins = config.max_entries
        self.metrics = GatewayMetrics(config.engine_urls)
        self.probes = 0  # /health probes answered, counted so tests can wait for some
        self.client: httpx.AsyncClient | None = None  # probes and /v1/models (cold paths)
        self.session: aiohttp.ClientSession | None = None  # forwarded calls (the hot path)
        self._tasks: list[asyncio.Task] = []
        self._urls: dict = {}

    # ---- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        c = self.config
        timeout = httpx.Timeout(connect=c.connect_timeout, read=c.read_timeout,
                                write=c.read_timeout, pool=c.read_timeout)
        limits = httpx.Limits(max_connections=c.max_connections,
                              max_keepalive_connections=min(256, c.max_connections))
        self.client = httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False)
        # connect covers the wait for a pooled connection too; sock_connect the TCP connect
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=c.max_connections, limit_per_host=0),
            timeout=aiohttp.ClientTimeout(total=None, connect=c.read_timeout,
                                          sock_connect=c.connect_timeout,
                                          sock_read=c.read_timeout),
            auto_decompress=False, trust_env=False, skip_auto_headers=("User-Agent",))
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
        if self.session is not None:
            await self.session.close()
            self.session = None

    # ---- engines ---------------------------------------------------------------------
    def engine_url(self, i: int, path: str) -> yarl.URL:
        """Parsed once per (engine, path), not on every call."""
        key = (i, path)
        url = self._urls.get(key)
        if url is None:
            url = self._urls[key] = yarl.URL(self.engines[i].url + path)
        return url

    def unavailable(self) -> set[int]:
        """Engines a new call may not go to now.

        *Panic routing*, after Envoy's panic threshold: when every engine is out
        (ejected, or on probation with its trial in flight), ejection is ignored and
        only the concurrency limit holds. Under a burst on a loaded host, probes and
        connects time out on every engine at once though none has failed; refusing
        every call then would turn overload into an outage, while a truly dead engine
        still answers a panic call with a refused connect, which fails fast.
        """
        now = self.clock()
        out = {e.index for e in self.engines if not e.outlier.available(now, e.inflight)}
        if len(out) == len(self.engines):
            busy = {e.index for e in self.engines
                    if e.inflight >= e.outlier.policy.max_inflight}
            if len(busy) < len(self.engines):
                self.metrics.panic.inc()
                return busy
        return out

    def healthy_engines(self) -> list[EngineState]:
        """Engines not ejected now (admitted or on probation), admitted ones first."""
        now = self.clock()
        live = [e for e in self.engines if e.outlier.state_at(now) is not EngineHealth.EJECTED]
        return sorted(live, key=lambda e: not e.healthy)

    def engine_ok(self, i: int, ticket) -> None:
        e = self.engines[i]
        if e.outlier.success(self.clock(), ticket):
            log.info("engine %s re-admitted after a successful trial call", e.url)
            self.metrics.healthy.labels(e.url).set(1)

    def engine_failed(self, i: int, reason: str, ticket) -> None:
        e = self.engines[i]
        self.metrics.failures.labels(e.url).inc()
        others = any(x.healthy for x in self.engines if x is not e)
        if e.outlier.failure(self.clock(), reason, ticket, may_eject=others):
            self._ejected(e)

    def _ejected(self, e: EngineState) -> None:
        o = e.outlier
        log.warning("engine %s ejected for %.1f s (ejection %d): %s", e.url,
                    o.until - self.clock(), o.ejections, o.reason)
        self.metrics.healthy.labels(e.url).set(0)
        self.metrics.ejections.labels(e.url).inc()
        self.balancer.engine_failed(e.index)

    async def probe(self, i: int) -> bool:
        e = self.engines[i]
        try:
            assert self.client is not None, "probe() before start()"
            r = await self.client.get(f"{e.url}/health", timeout=self.config.health_timeout)
            ok = r.status_code == 200
            reason = f"/health answered {r.status_code}"
        except httpx.HTTPError as exc:
            ok, reason = False, f"/health failed: {type(exc).__name__}"
        if not ok:
            self.metrics.failures.labels(e.url).inc()
        if e.outlier.health(ok, self.clock(), reason):
            self._ejected(e)
        self.probes += 1
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
        return gone

    # ---- programs and calls ----------------------------------------------------------
    def start_program(self, pid: str) -> None:
        self.table.entry(pid, time.monotonic())

    def end_program(self, pid: str) -> dict | None:
        e = self.table.end_program(pid)
        self.balancer.program_ended(pid)
        if e is None:
            return None
        return {"id": pid, "service": e.service, "wait": e.wait, "calls": e.calls_done}

    def choose(self, pid: str, tokens: int, exclude: AbstractSet[int] = frozenset()) -> int:
        """Engine index for a call; raises a 503 :class:`GatewayError` when none can take it."""
        loads = [e.inflight for e in self.engines]
        out = self.unavailable()
        if exclude:
            out.update(exclude)
        try:
            return self.balancer.choose(pid, tokens, loads, out)
        except NoEngineAvailable:
            if exclude:  # a retry: every engine left was tried and could not be reached
                raise GatewayError(503, "no engine could be reached (connect failed on every "
                                   "engine tried)", "server_error", "no_engine_available") from None
            raise no_engine(self.engines) from None

    def call_started(self, ident: Identity, call_id: str, engine: int) -> tuple[float, tuple]:
        """Register the call; returns the program service it carries and its engine ticket."""
        e = self.engines[engine]
        e.inflight += 1
        if ident.one_call:  # a program of one call has no history to carry: no entry
            return 0.0, e.outlier.begin(self.clock())
        prio = self.table.call_arrived(ident.program_id, call_id, time.monotonic(),
                                       engine=engine).priority
        return prio, e.outlier.begin(self.clock())

    def call_moved(self, ident: Identity, call_id: str, old: int, new: int) -> tuple:
        """The call never reached ``old`` and goes to ``new``; returns its new ticket."""
        for i, d in ((old, -1), (new, +1)):
            self.engines[i].inflight += d
        entry = self.table.get(ident.program_id)
        if entry is not None and call_id in entry.threads:
            entry.threads[call_id].engine = new
            entry.engines.add(new)
        return self.engines[new].outlier.begin(self.clock())

    def call_finished(self, ident: Identity, call_id: str, engine: int, *, endpoint: str,
                      status: str, service: float, wait: float, e2e: float) -> None:
        e = self.engines[engine]
        e.inflight = max(0, e.inflight - 1)
        if ident.one_call:  # the program ends with its call: nothing to fold into
            self.table.end_program(ident.program_id)
            self.balancer.program_ended(ident.program_id)
        else:
            self.table.call_finished(ident.program_id, call_id, max(0.0, service),
                                     max(0.0, wait), time.monotonic())
        self.metrics.call_done(endpoint, status, e2e)

    def render_metrics(self) -> bytes:
        """Prometheus text; the gauges are read off the state now, not kept per call."""
        m = self.metrics
        m.programs_active.set(len(self.table))
        for e in self.engines:
            m.inflight_of[e.url].set(e.inflight)
        return m.render()


__all__ = ["EngineState", "GatewayState", "NoEngineAvailable"]
