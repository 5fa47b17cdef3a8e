"""The router's state, without Ray: replica slots, the process table, the balancer.

Ray Serve calls a request router with replica objects that come and go (a replica
that dies is replaced by one with a new id); our balancers
(:mod:`autellix.balancer`) pick an *index* among a fixed number of engines. This
module maps one onto the other and keeps the same books as the gateway
(:class:`autellix.gateway.state.GatewayState`), so the two engines apply one rule:

* each live replica holds a **slot** (0, 1, ...); a replica that goes away frees
  its slot, the balancer forgets its pins (``engine_failed``, as when the gateway
  ejects an engine), and its replacement takes the slot over;
* load is the number of calls routed to a slot and not yet completed (the
  gateway's in-flight count); slots without a live replica are ``unavailable``;
* the process table uses the gateway's ``max`` rule and TTL; a call copies its
  program's service at routing time (sent to vLLM as
  ``vllm_xargs.program_service``) and is folded back when Ray reports it complete.
  A program's service is the gateway's measured proxy: ``e2e - ttft`` for a
  streamed call whose first chunk the ingress reported, else ``e2e``.

Ray may ask for a replica several times for one request (a full replica, a
backoff), so a decision is kept per request id until the request completes or
its caller gives up: a second ask keeps the first choice while that replica is
still a candidate, and otherwise moves the call (``call_moved``). Everything here
is guarded by one lock: Ray runs the router on its own event loop thread while
the ingress reads the table from the ASGI one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from autellix.balancer import make_balancer
from autellix.process_table import ProcessTable


@dataclass(frozen=True, slots=True)
class Route:
    """What the ingress learned about a call (with the gateway's parsing)."""

    program_id: str
    thread_id: str
    call_id: str
    tokens: int
    one_call: bool = False

    def to_dict(self) -> dict:
        return {"program_id": self.program_id, "thread_id": self.thread_id,
                "call_id": self.call_id, "tokens": self.tokens, "one_call": self.one_call}

    @classmethod
    def from_dict(cls, d: dict) -> Route:
        return cls(str(d["program_id"]), str(d["thread_id"]), str(d["call_id"]),
                   int(d["tokens"]), bool(d.get("one_call", False)))


@dataclass(slots=True)
class _Decision:
    route: Route
    slot: int
    t0: float
    gone: Callable[[], bool] | None = None  # says whether the caller gave up


class RouterState:
    """Slots, loads, process table and balancer of one routed deployment."""

    def __init__(self, balancer: str = "autellix", n_replicas: int = 2, ttl: float = 600.0,
                 max_entries: int = 100_000, clock=time.monotonic):
        self.balancer_name = balancer
        self.balancer = make_balancer(balancer, max(1, n_replicas))
        if hasattr(self.balancer, "max_pins"):  # a pin never outlives the table's bound
            self.balancer.max_pins = max_entries
        self.table = ProcessTable(rule="max", ttl=ttl, max_entries=max_entries)
        self.clock = clock
        self.lock = threading.RLock()
        self.slot_of: dict[Hashable, int] = {}  # live replica id -> slot
        self.loads: list[int] = [0] * self.balancer.n
        self._decided: dict[Hashable, _Decision] = {}
        self._first: dict[str, float] = {}  # call id -> time of its first streamed chunk
        self._next_expiry = clock() + 30.0
        self.routed = 0  # calls routed, for tests and the benchmark

    # ---- replicas ----------------------------------------------------------------
    def replicas_changed(self, replica_ids) -> None:
        """The live replicas are now ``replica_ids``: free the slots of the gone ones."""
        with self.lock:
            live = set(replica_ids)
            for rid in [r for r in self.slot_of if r not in live]:
                slot = self.slot_of.pop(rid)
                self.balancer.engine_failed(slot)
            for rid in replica_ids:
                if rid not in self.slot_of:
                    self.slot_of[rid] = self._free_slot()

    def _free_slot(self) -> int:
        used = set(self.slot_of.values())
        slot = next(i for i in range(len(used) + 1) if i not in used)
        if slot >= self.balancer.n:  # more replicas than configured: widen the balancer
            self.balancer.n = slot + 1
            self.loads.append(0)
        self.loads[slot] = sum(1 for d in self._decided.values() if d.slot == slot)
        return slot

    # ---- routing -----------------------------------------------------------------
    def choose(self, request_id: Hashable, route: Route | None, candidates,
               gone=None) -> Hashable:
        """The replica id (one of ``candidates``) for a request; registers the call.

        ``route`` None (a call with no program, e.g. ``/v1/models``): the least
        loaded candidate, with no bookkeeping. ``gone()`` says whether the request's
        caller has given up, so a decision Ray never completes is not kept."""
        with self.lock:
            self._expire_maybe()
            self._drop_abandoned()
            for r in candidates:  # Ray told the router before it told us
                if r not in self.slot_of:
                    self.slot_of[r] = self._free_slot()
            by_slot = {self.slot_of[r]: r for r in candidates}
            if route is None:
                return by_slot[min(by_slot, key=lambda s: (self.loads[s], s))]
            d = self._decided.get(request_id)
            if d is not None and d.slot in by_slot:
                return by_slot[d.slot]
            out = {s for s in range(self.balancer.n) if s not in by_slot}
            slot = self.balancer.choose(route.program_id, route.tokens, self.loads, out)
            if d is None:
                self._started(request_id, route, slot, gone)
            else:
                self._moved(d, slot)
            return by_slot[slot]

    def _started(self, request_id, route: Route, slot: int, gone) -> None:
        self.loads[slot] += 1
        self.routed += 1
        self._decided[request_id] = _Decision(route, slot, self.clock(), gone)
        if not route.one_call:
            self.table.call_arrived(route.program_id, route.call_id, self.clock(), engine=slot)

    def _moved(self, d: _Decision, slot: int) -> None:
        self.loads[d.slot] = max(0, self.loads[d.slot] - 1)
        self.loads[slot] += 1
        entry = self.table.get(d.route.program_id)
        if entry is not None and d.route.call_id in entry.threads:
            entry.threads[d.route.call_id].engine = slot
            entry.engines.add(slot)
        d.slot = slot

    def program_service(self, route: Route) -> float:
        """The service the call copied when it was routed (0 for a one-call program)."""
        with self.lock:
            entry = self.table.get(route.program_id)
            t = entry.threads.get(route.call_id) if entry is not None else None
            return float(t.priority) if t is not None else 0.0

    def first_chunk(self, call_id: str) -> None:
        """The ingress saw the call's first streamed chunk now (its TTFT)."""
        with self.lock:
            self._first.setdefault(call_id, self.clock())

    def completed(self, request_id: Hashable) -> None:
        """Ray says the request finished (answered, failed or cancelled): book it."""
        with self.lock:
            d = self._decided.pop(request_id, None)
            if d is not None:
                self._finish(d)

    def _finish(self, d: _Decision) -> None:
        now = self.clock()
        self.loads[d.slot] = max(0, self.loads[d.slot] - 1)
        first = self._first.pop(d.route.call_id, None)
        wait = (first - d.t0) if first is not None else 0.0
        service = (now - first) if first is not None else (now - d.t0)
        if d.route.one_call:  # the program ends with its call: nothing to fold into
            self.table.end_program(d.route.program_id)
            self.balancer.program_ended(d.route.program_id)
        else:
            self.table.call_finished(d.route.program_id, d.route.call_id, max(0.0, service),
                                     max(0.0, wait), now)

    def _drop_abandoned(self) -> None:
        for rid in [r for r, d in self._decided.items() if d.gone is not None and d.gone()]:
            self._finish(self._decided.pop(rid))

    # ---- programs ----------------------------------------------------------------
    def start_program(self, pid: str) -> None:
        with self.lock:
            self.table.entry(pid, self.clock())

    def program_info(self, pid: str) -> dict | None:
        with self.lock:
            e = self.table.get(pid)
            if e is None:
                return None
            return {"id": pid, "service": e.service, "wait": e.wait, "calls": e.calls_done,
                    "active_threads": len(e.threads), "engines": sorted(e.engines)}

    def end_program(self, pid: str) -> dict | None:
        with self.lock:
            e = self.table.end_program(pid)
            self.balancer.program_ended(pid)
            if e is None:
                return None
            return {"id": pid, "service": e.service, "wait": e.wait, "calls": e.calls_done}

    def _expire_maybe(self) -> None:
        now = self.clock()
        if now >= self._next_expiry:
            self._next_expiry = now + 30.0
            for pid in self.table.expire(now):
                self.balancer.program_ended(pid)


_STATES: dict[str, RouterState] = {}
_STATES_LOCK = threading.Lock()


def shared_state(key: str, **settings) -> RouterState:
    """The process's one :class:`RouterState` for ``key`` (a deployment), made on first use.

    Ray builds the request router inside the process that holds the deployment's
    handle (here the ingress replica), after the ingress starts; both ask for the
    state by the deployment's name, and whichever asks first creates it."""
    with _STATES_LOCK:
        s = _STATES.get(key)
        if s is None:
            s = _STATES[key] = RouterState(**settings)
        return s
