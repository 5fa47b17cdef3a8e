"""The paper's multi-level queue (Autellix §4.2.2, Alg. 1), shared by every policy.

Both waiting and running calls live in one ordered structure keyed by
``(level, policy key, entry sequence)``: level first (Q1 highest), then the
policy's key (constant 0 for the MLQ policies, so FCFS by entry into the level).
A running call keeps its position inside its level; it moves only when it is
demoted (to the tail of the next level) or promoted (to the tail of Q1).

Costs per operation, with n queued calls and r running:

* add / finish / demotion / promotion: O(log n) (a ``SortedList`` plus a heap);
* charging a step: O(r);
* batch order: ``ordered()`` yields lazily, so batch formation stops after the
  first call that does not fit and never touches the rest of the queue;
* anti-starvation: each waiting call's promotion *deadline* is computed when it
  starts waiting and kept in a heap, so a pass costs O(promotions · log n) instead
  of a scan of every queued call. A deadline is recomputed when its program's
  table entry changes (a sibling call finished).

Anti-starvation (only for calls below Q1 while waiting): a call is promoted when
``(W_prog + W_call) / max(floor, T_prog + T_call) >= beta``. ``W_call`` and
``T_call`` are *window* counters that promotion resets; the call's lifetime service
and wait are kept separately and are what the process table receives when the call
finishes or is aborted.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass
from enum import Enum

from sortedcontainers import SortedList

from autellix.config import QueueConfig
from autellix.policies.base import Policy
from autellix.process_table import ProcessTable


class CallState(Enum):
    WAITING = "waiting"
    RUNNING = "running"


@dataclass(slots=True, eq=False)
class QEntry:
    call_id: str
    pid: str
    arrival: float
    priority: float          # program service copied at arrival
    level: int
    seq: int
    quantum_left: float
    remaining_work: float = 0.0
    state: CallState = CallState.WAITING
    service: float = 0.0        # lifetime engine-seconds
    window_service: float = 0.0  # reset on promotion
    wait: float = 0.0           # lifetime queueing seconds (closed intervals)
    wait_window: float = 0.0    # reset on promotion
    wait_since: float | None = None
    version: int = 0
    pos: tuple = ()
    demotions: int = 0
    promotions: int = 0


class MultiLevelQueue:
    def __init__(self, policy: Policy, cfg: QueueConfig | None = None,
                 table: ProcessTable | None = None):
        self.policy = policy
        self.cfg = cfg or QueueConfig()
        self.table = table if table is not None else ProcessTable(rule=policy.table_rule)
        self._order = SortedList()
        self._entries: dict[str, QEntry] = {}
        self._by_prog: dict[str, set[str]] = {}
        self._starve: list[tuple[float, int, str, int]] = []
        self._seq = itertools.count()
        self._starvation = policy.starvation if self.cfg.starvation else None

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, call_id: str) -> bool:
        return call_id in self._entries

    def get(self, call_id: str) -> QEntry:
        return self._entries[call_id]

    def ordered(self):
        """Entries in strict priority order (waiting and running), lazily."""
        entries = self._entries
        for pos in self._order:
            yield entries[pos[-1]]

    def rank_key(self, call_id: str) -> tuple:
        return self._entries[call_id].pos

    # ------------------------------------------------------------- transitions
    def add(self, call_id: str, pid: str, now: float, remaining_work: float = 0.0,
            engine=None) -> QEntry:
        if call_id in self._entries:
            raise ValueError(f"call {call_id!r} is already queued")
        t = self.table.call_arrived(pid, call_id, now, engine)
        level = self.policy.initial_level(t.priority, self.cfg)
        e = QEntry(call_id=call_id, pid=pid, arrival=now, priority=t.priority, level=level,
                   seq=next(self._seq), quantum_left=self.cfg.quantum(level),
                   remaining_work=remaining_work, wait_since=now)
        self._entries[call_id] = e
        self._by_prog.setdefault(pid, set()).add(call_id)
        self._place(e)
        self._arm(e)
        return e

    def start(self, call_id: str, now: float) -> None:
        """WAITING -> RUNNING (admitted into the batch)."""
        e = self._entries[call_id]
        if e.state is CallState.RUNNING:
            return
        waited = now - e.wait_since
        e.wait += waited
        e.wait_window += waited
        e.wait_since = None
        e.state = CallState.RUNNING
        e.version += 1  # cancels its starvation deadline

    def preempt(self, call_id: str, now: float) -> None:
        """RUNNING -> WAITING (evicted from the batch); keeps its queue position."""
        e = self._entries[call_id]
        if e.state is CallState.WAITING:
            return
        e.state = CallState.WAITING
        e.wait_since = now
        self._arm(e)

    def charge(self, call_ids, dt: float, now: float) -> list[str]:
        """Add ``dt`` engine-seconds to each call (one engine step). Returns demoted ids."""
        demoted: list[str] = []
        if dt <= 0:
            return demoted
        last = self.cfg.k - 1
        for cid in call_ids:
            e = self._entries[cid]
            e.service += dt
            e.window_service += dt
            moved = False
            if self.policy.demotes and e.level < last:
                e.quantum_left -= dt
                while e.quantum_left <= 1e-12 and e.level < last:
                    e.level += 1
                    e.quantum_left += self.cfg.quantum(e.level)
                    e.demotions += 1
                    moved = True
                if moved:
                    e.seq = next(self._seq)
                    demoted.append(cid)
            if moved or self.policy.rekey_on_service:
                self._order.remove(e.pos)
                self._place(e)
        return demoted

    def finish(self, call_id: str, now: float) -> QEntry:
        """Remove a finished *or aborted* call and fold it into the process table."""
        e = self._entries.pop(call_id)
        self._order.remove(e.pos)
        if e.state is CallState.WAITING and e.wait_since is not None:
            e.wait += now - e.wait_since
        e.version += 1
        sibs = self._by_prog.get(e.pid)
        if sibs is not None:
            sibs.discard(call_id)
            if not sibs:
                del self._by_prog[e.pid]
        self.table.call_finished(e.pid, call_id, model_time=e.service, wait=e.wait, now=now)
        if self._starvation == "program" and sibs:
            for cid in sibs:  # the program's wait and service changed: re-arm deadlines
                s = self._entries[cid]
                if s.state is CallState.WAITING:
                    s.version += 1
                    self._arm(s)
        return e

    def promote_starved(self, now: float) -> list[str]:
        """Move every waiting call whose starvation deadline has passed to Q1."""
        out: list[str] = []
        heap = self._starve
        while heap and heap[0][0] <= now + 1e-12:
            _, _, cid, version = heapq.heappop(heap)
            e = self._entries.get(cid)
            if e is None or e.version != version or e.state is not CallState.WAITING or e.level == 0:
                continue
            self._order.remove(e.pos)
            e.wait_window = 0.0
            e.window_service = 0.0
            e.wait += now - e.wait_since
            e.wait_since = now
            e.level = 0
            e.quantum_left = self.cfg.quantum(0)
            e.seq = next(self._seq)
            e.promotions += 1
            e.version += 1
            self._place(e)
            out.append(cid)
        return out

    def next_promotion_time(self) -> float:
        """Earliest pending starvation deadline (may be stale: it is an upper bound on work)."""
        heap = self._starve
        while heap:
            _, _, cid, version = heap[0]
            e = self._entries.get(cid)
            if e is not None and e.version == version and e.state is CallState.WAITING:
                return heap[0][0]
            heapq.heappop(heap)
        return math.inf

    # ----------------------------------------------------------------- helpers
    def _place(self, e: QEntry) -> None:
        e.pos = (e.level, self.policy.sort_key(e), e.seq, e.call_id)
        self._order.add(e.pos)

    def _arm(self, e: QEntry) -> None:
        scope = self._starvation
        if scope is None or e.level == 0 or e.state is not CallState.WAITING:
            return
        w, t = e.wait_window, e.window_service
        if scope == "program":
            pe = self.table.get(e.pid)
            if pe is not None:
                w += pe.wait
                t += pe.service
        deadline = e.wait_since + self.cfg.beta * max(self.cfg.starvation_floor, t) - w
        heapq.heappush(self._starve, (deadline, next(self._seq), e.call_id, e.version))

    def check_invariants(self) -> None:
        assert len(self._order) == len(self._entries), "order and entries disagree"
        for cid, e in self._entries.items():
            assert e.pos[-1] == cid and e.pos in self._order, f"{cid} misplaced"
            assert 0 <= e.level < self.cfg.k
            assert (e.wait_since is None) == (e.state is CallState.RUNNING)
