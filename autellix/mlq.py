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

Levels and quanta come from a live :class:`autellix.boundaries.Boundaries` (fixed,
or in units of the engine's measured step time). The queue also keeps what the
preemption rule (:mod:`autellix.preemption`) reads: whether a call was promoted,
and, since its latest admission, its prefill cost and its run after the first
token (the engine reports tokens with :meth:`MultiLevelQueue.token`). Engine time
spent re-prefilling after an eviction goes to ``QEntry.recompute``, not to service.
"""

from __future__ import annotations

import heapq
import itertools
import math
import operator
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from sortedcontainers import SortedList

from autellix import preemption
from autellix.boundaries import Boundaries
from autellix.config import QueueConfig
from autellix.policies.base import Policy
from autellix.process_table import ProcessTable

_last = operator.itemgetter(-1)  # a queue position's last field: the call id


class CallState(Enum):
    """A queued call's one state. ``SWAPPED`` waits like ``WAITING``, with its KV in
    host memory (the simulator's swap preemption; vLLM V1 only recomputes)."""
    WAITING = "waiting"
    RUNNING = "running"
    SWAPPED = "swapped"


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
    promoted: bool = False       # in its level by an anti-starvation promotion
    evictions: int = 0           # priority or memory preemptions
    recompute: float = 0.0       # engine-seconds spent re-prefilling after evictions
    # since the latest admission (read by the preemption rule):
    produced: bool = False       # a token was produced
    prefill_paid: float = 0.0    # engine-seconds before that first token
    ran: float = 0.0             # engine-seconds after it
    admit_quantum: float = 0.0   # quantum of the admission level (finite)
    recomputing: bool = False    # re-prefilling context it had before an eviction
    prepaid: bool = False        # that recompute was charged to rule 5 at the eviction


class MultiLevelQueue:
    def __init__(self, policy: Policy, cfg: QueueConfig | None = None,
                 table: ProcessTable | None = None):
        self.policy = policy
        self.cfg = cfg or QueueConfig()
        self.bounds = Boundaries(self.cfg)
        self.table = table if table is not None else ProcessTable(rule=policy.table_rule)
        self._order = SortedList()
        self._entries: dict[str, QEntry] = {}
        # per program, its queued calls in arrival order (a dict, not a set: re-arming
        # siblings in set order made equal deadlines depend on PYTHONHASHSEED)
        self._by_prog: dict[str, dict[str, None]] = {}
        self._starve: list[tuple[float, int, str, int]] = []
        self._seq = itertools.count()
        self._starvation = policy.starvation if self.cfg.starvation else None
        self._busy_s = 0.0       # decayed engine busy time (rule 5)
        # decayed time of steps with a recomputing call, plus the estimated recompute
        # of priority evictions, charged when they happen (rule 5)
        self._recompute_s = 0.0
        # rule 5's recompute estimate: decayed decode-only step time, and the extra
        # time of steps with prefill chunks over that, per prefill token
        self._dec_s = self._dec_n = 0.0
        self._pf_s = self._pf_tok = 0.0

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, call_id: str) -> bool:
        return call_id in self._entries

    def get(self, call_id: str) -> QEntry:
        return self._entries[call_id]

    def ordered(self) -> Iterator[QEntry]:
        """Entries in strict priority order (waiting and running), lazily (a C-level
        ``map`` chain: the simulator walks the running calls on every pass)."""
        return map(self._entries.__getitem__, map(_last, self._order))

    def rank_key(self, call_id: str) -> tuple:
        return self._entries[call_id].pos

    # ------------------------------------------------------------- transitions
    def add(self, call_id: str, pid: str, now: float, remaining_work: float = 0.0,
            engine=None) -> QEntry:
        if call_id in self._entries:
            raise ValueError(f"call {call_id!r} is already queued")
        t = self.table.call_arrived(pid, call_id, now, engine)
        level = self.policy.initial_level(t.priority, self.bounds)
        e = QEntry(call_id=call_id, pid=pid, arrival=now, priority=t.priority, level=level,
                   seq=next(self._seq), quantum_left=self.bounds.quantum(level),
                   remaining_work=remaining_work, wait_since=now)
        self._entries[call_id] = e
        self._by_prog.setdefault(pid, {})[call_id] = None
        self._place(e)
        self._arm(e)
        return e

    def start(self, call_id: str, now: float, resumed: bool = False) -> None:
        """WAITING -> RUNNING (admitted into the batch). ``resumed``: its KV came back
        from swap, so nothing is recomputed."""
        e = self._entries[call_id]
        if e.state is CallState.RUNNING:
            return
        assert e.wait_since is not None  # every queued, not running call has one
        waited = now - e.wait_since
        e.wait += waited
        e.wait_window += waited
        e.wait_since = None
        e.state = CallState.RUNNING
        e.version += 1  # cancels its starvation deadline
        e.produced, e.prefill_paid, e.ran = False, 0.0, 0.0
        e.admit_quantum = preemption.finite_quantum(self.bounds.quantum(e.level),
                                                    self.bounds.last_finite_quantum())
        e.recomputing = e.evictions > 0 and not resumed

    def token(self, call_id: str) -> None:
        """The engine produced a token for a running call (ends its prefill phase)."""
        e = self._entries[call_id]
        e.produced = True
        e.recomputing = False

    def may_evict(self, waiting_id: str, running_id: str) -> bool:
        """The shared preemption rule (:mod:`autellix.preemption`, rules 1-5)."""
        if self.evictions_paused():
            return False
        return preemption.may_evict(self._entries[waiting_id], self._entries[running_id],
                                    self.policy)

    def evictions_paused(self) -> bool:
        """Rule 5: no priority eviction while recent recompute exceeds the budget (only
        an eviction raises the recompute between two charges)."""
        return self._recompute_s > self.cfg.recompute_budget * self._busy_s

    def recompute_share(self) -> float:
        """Recent recompute (run, or committed by priority evictions) over busy time."""
        return self._recompute_s / self._busy_s if self._busy_s > 0 else 0.0

    def evict(self, call_id: str, now: float, context_tokens: int,
              swapped: bool = False) -> None:
        """A priority eviction (the rule said yes): :meth:`preempt`, and the recompute it
        commits the engine to is charged to rule 5's budget *now*, estimated as
        ``context_tokens`` at the engine's recent marginal prefill cost per token
        (:meth:`recompute_seconds`).

        Charging at the eviction, not when the victim re-prefills, matters: a victim
        from a deep level may wait minutes before it recomputes, and meanwhile a budget
        that only sees past recompute lets every new arrival evict (MLFQ at 4.8x made
        4,900 evictions and stretched the makespan by 21% under a 10% budget). The
        estimate ignores prefix-cache hits on the victim's own blocks, so it errs
        toward fewer evictions. Its later re-prefill steps are not counted again."""
        self._recompute_s += self.recompute_seconds(context_tokens)
        self.preempt(call_id, now, swapped)
        self._entries[call_id].prepaid = True

    def recompute_seconds(self, tokens: int) -> float:
        """Estimated engine-seconds to re-prefill ``tokens``: the recent extra time of
        steps with prefill chunks over decode-only steps, per prefill token. (Whole
        step time per token would overstate it some 40-fold on a small model, where a
        step's fixed cost dominates: on the tiny CPU model a 62-token prompt chunk
        added about 2 ms to a 3 ms two-seat decode step, 0.03 ms per prefill token
        against 1.5 ms per token of the whole step.) 0 until a prefill step has been seen
        after a decode-only one."""
        return tokens * self._pf_s / self._pf_tok if self._pf_tok > 0 else 0.0

    def preempt(self, call_id: str, now: float, swapped: bool = False) -> None:
        """RUNNING -> WAITING, or SWAPPED if its KV went to host memory (evicted from
        the batch); keeps its queue position. Used as is for memory-pressure
        preemptions, whose recompute rule 5 counts when it happens; priority evictions
        go through :meth:`evict`."""
        e = self._entries[call_id]
        if e.state is not CallState.RUNNING:
            return
        e.prepaid = False
        e.state = CallState.SWAPPED if swapped else CallState.WAITING
        e.wait_since = now
        e.evictions += 1
        self._arm(e)

    def charge(self, call_ids, dt: float, now: float, steps: int = 1,
               prefill_tokens: int = 0) -> list[str]:
        """Add ``dt`` engine-seconds to each call (``steps`` engine steps; the simulator
        advances several decode steps at once). ``prefill_tokens``: the step's prompt
        chunk tokens (:func:`autellix.preemption.prefill_tokens`), which rule 5's
        recompute estimate learns from. Returns demoted ids."""
        entries = self._entries
        return self.charge_entries([entries[cid] for cid in call_ids], dt, now, steps,
                                   prefill_tokens)

    def charge_entries(self, scheduled: list[QEntry], dt: float, now: float, steps: int = 1,
                       prefill_tokens: int = 0) -> list[str]:
        """:meth:`charge` given the queue entries themselves (the simulator keeps each
        call's entry, and charges every running call every step)."""
        demoted: list[str] = []
        if dt <= 0:
            return demoted
        self.bounds.observe_steps(dt, steps)
        last = self.bounds.k - 1
        quantum = self.bounds.quantum
        decay = math.exp(-dt / self.cfg.recompute_horizon)
        self._busy_s = self._busy_s * decay + dt
        self._recompute_s *= decay
        self._dec_s *= decay
        self._dec_n *= decay
        self._pf_s *= decay
        self._pf_tok *= decay
        if prefill_tokens:
            if self._dec_n > 0:  # no decode-only step yet: no baseline to compare with
                base = self._dec_s / self._dec_n
                self._pf_s += max(0.0, dt - steps * base)
                self._pf_tok += prefill_tokens
        else:
            self._dec_s += dt
            self._dec_n += steps
        recomputed = False
        policy = self.policy
        demotes, rekey = policy.demotes, policy.rekey_on_service
        for e in scheduled:  # hot (every running call, every step): locals, no calls
            if e.produced:
                e.ran += dt
            else:
                e.prefill_paid += dt
            if e.recomputing:  # waste the scheduler caused: not attained service
                e.recompute += dt
                recomputed = recomputed or not e.prepaid
                continue
            e.service += dt
            e.window_service += dt
            moved = False
            if demotes and e.level < last:
                e.quantum_left -= dt
                while e.quantum_left <= 1e-12 and e.level < last:
                    e.level += 1
                    e.quantum_left += quantum(e.level)
                    e.demotions += 1
                    moved = True
                if moved:
                    e.seq = next(self._seq)
                    demoted.append(e.call_id)
            if moved or rekey:
                self._order.remove(e.pos)
                self._place(e)
        if recomputed:
            self._recompute_s += dt
        return demoted

    def finish(self, call_id: str, now: float) -> QEntry:
        """Remove a finished *or aborted* call and fold it into the process table."""
        e = self._entries.pop(call_id)
        self._order.remove(e.pos)
        if e.state is not CallState.RUNNING and e.wait_since is not None:
            e.wait += now - e.wait_since
        e.version += 1
        sibs = self._by_prog.get(e.pid)
        if sibs is not None:
            sibs.pop(call_id, None)
            if not sibs:
                del self._by_prog[e.pid]
        self.table.call_finished(e.pid, call_id, model_time=e.service, wait=e.wait, now=now)
        if self._starvation == "program" and sibs:
            for cid in sibs:  # the program's wait and service changed: re-arm deadlines
                s = self._entries[cid]
                if s.state is not CallState.RUNNING:
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
            if (e is None or e.version != version or e.state is CallState.RUNNING
                    or e.level == 0):
                continue
            self._order.remove(e.pos)
            e.wait_window = 0.0
            e.window_service = 0.0
            assert e.wait_since is not None
            e.wait += now - e.wait_since
            e.wait_since = now
            e.level = 0
            e.quantum_left = self.bounds.quantum(0)
            e.seq = next(self._seq)
            e.promotions += 1
            e.promoted = True
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
            if e is not None and e.version == version and e.state is not CallState.RUNNING:
                return heap[0][0]
            heapq.heappop(heap)
        return math.inf

    # ----------------------------------------------------------------- helpers
    def _place(self, e: QEntry) -> None:
        e.pos = (e.level, self.policy.sort_key(e), e.seq, e.call_id)
        self._order.add(e.pos)

    def _arm(self, e: QEntry) -> None:
        scope = self._starvation
        if scope is None or e.level == 0 or e.state is CallState.RUNNING:
            return
        w, t = e.wait_window, e.window_service
        if scope == "program":
            pe = self.table.get(e.pid)
            if pe is not None:
                w += pe.wait
                t += pe.service
        assert e.wait_since is not None
        deadline = e.wait_since + self.cfg.beta * max(self.cfg.starvation_floor, t) - w
        heapq.heappush(self._starve, (deadline, next(self._seq), e.call_id, e.version))

    def check_invariants(self) -> None:
        assert len(self._order) == len(self._entries), "order and entries disagree"
        for cid, e in self._entries.items():
            assert e.pos[-1] == cid and e.pos in self._order, f"{cid} misplaced"
            assert 0 <= e.level < self.bounds.k
            assert (e.wait_since is None) == (e.state is CallState.RUNNING)
