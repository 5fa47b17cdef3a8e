"""The process table: one entry per live program (Autellix §4.2.1).

Service is in engine-seconds. Two update rules exist:

* ``sum`` (PLAS, Eq. 1): a completed call adds its model time to the program;
* ``max`` (ATLAS, Alg. 1 line 4): ``service = max(service, c.priority + c.model_time)``
  where ``c.priority`` is the program service the call copied when it arrived. With
  parallel calls this tracks the longest critical path of service.

For a single-threaded program both rules give the same value.

A third rule, ``decay``, models llm-d's program-aware fairness (the ``las-router``
arm): service is a sum whose past decays by half every ``half_life`` seconds, so a
program that has paused (a long tool call) regains priority, and what counts is
recent use. It is applied at the router only, at admission, never by the plug-in.

Program wait is its longest *waiting path*: a finished (or aborted) call updates it
with the same max rule, ``wait = max(wait, wait_at_arrival + call_wait)``, where
``wait_at_arrival`` is the program's wait when the call arrived. For a chain this is
the sum of its calls' waits (the paper's ``pt.wait``); for parallel calls it is not
their sum: eight calls queued side by side for 1 s have kept the program waiting
1 s, not 8 s. Summing them let a program that floods the engine with parallel calls
reach the anti-starvation threshold several times faster than a chain and jump
ahead of new programs (seen end to end on a busy machine). A call's wait and
service are folded in when it completes *or* is aborted, so nothing leaks. Entries
go when their program ends and expire after ``ttl`` seconds without a call
arriving or completing. A hard ``max_entries`` bound evicts the idlest
entries first, so memory stays bounded whatever clients do.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from autellix.config import ConfigError

SERVICE_RULES = ("sum", "max", "decay")


@dataclass(slots=True)
class ThreadInfo:
    """An active call of a program."""

    call_id: str
    arrival: float
    priority: float  # program service copied at arrival
    wait_at_arrival: float = 0.0  # program wait copied at arrival
    wait: float = 0.0
    service: float = 0.0
    engine: int | str | None = None


@dataclass(slots=True)
class ProgramEntry:
    pid: str
    created: float
    service: float = 0.0
    wait: float = 0.0
    engines: set = field(default_factory=set)
    threads: dict = field(default_factory=dict)  # call_id -> ThreadInfo
    last_arrival: float = 0.0
    last_completion: float | None = None
    calls_done: int = 0
    decayed_at: float = 0.0  # ``decay`` rule: when ``service`` was last brought up to date

    def last_activity(self) -> float:
        return max(self.last_arrival, self.last_completion or 0.0)


class ProcessTable:
    """Global (gateway) or engine-local (vLLM plug-in) table of live programs."""

    def __init__(self, rule: str = "max", ttl: float = 600.0, max_entries: int = 1_000_000,
                 half_life: float = 60.0):
        if rule not in SERVICE_RULES:
            raise ConfigError(f"service rule must be one of {SERVICE_RULES}, got {rule!r}")
        if ttl <= 0 or max_entries < 1:
            raise ConfigError("ttl must be > 0 and max_entries >= 1")
        if not half_life > 0:
            raise ConfigError("half_life must be > 0")
        self.rule = rule
        self.half_life = half_life
        self.ttl = ttl
        self.max_entries = max_entries
        # ordered by last activity (move_to_end on every touch) so expiry is O(expired)
        self._entries: OrderedDict[str, ProgramEntry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, pid: str) -> bool:
        return pid in self._entries

    def get(self, pid: str) -> ProgramEntry | None:
        return self._entries.get(pid)

    def entry(self, pid: str, now: float) -> ProgramEntry:
        e = self._entries.get(pid)
        if e is None:
            e = ProgramEntry(pid=pid, created=now, last_arrival=now)
            self._entries[pid] = e
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return e

    def _touch(self, e: ProgramEntry) -> None:
        self._entries.move_to_end(e.pid)

    def service(self, pid: str) -> float:
        e = self._entries.get(pid)
        return e.service if e else 0.0

    def call_arrived(self, pid: str, call_id: str, now: float, engine=None) -> ThreadInfo:
        """Register an active call; it copies the program's current service as priority."""
        e = self.entry(pid, now)
        if self.rule == "decay":
            self._decay(e, now)
        t = ThreadInfo(call_id=call_id, arrival=now, priority=e.service, engine=engine,
                       wait_at_arrival=e.wait)
        e.threads[call_id] = t
        e.last_arrival = now
        if engine is not None:
            e.engines.add(engine)
        self._touch(e)
        return t

    def call_finished(self, pid: str, call_id: str, model_time: float, wait: float,
                      now: float) -> float:
        """Fold a finished or aborted call into its program. Returns the new service."""
        e = self._entries.get(pid)
        if e is None:  # expired meanwhile: start afresh so the call still counts
            e = self.entry(pid, now)
        t = e.threads.pop(call_id, None)
        prio = t.priority if t is not None else e.service
        if self.rule == "sum":
            e.service += model_time
        elif self.rule == "decay":
            self._decay(e, now)
            e.service += model_time
        else:
            e.service = max(e.service, prio + model_time)
        e.wait = max(e.wait, (t.wait_at_arrival if t is not None else e.wait) + wait)
        e.calls_done += 1
        e.last_completion = now
        self._touch(e)
        return e.service

    def _decay(self, e: ProgramEntry, now: float) -> None:
        if now > e.decayed_at:
            e.service *= 0.5 ** ((now - e.decayed_at) / self.half_life)
            e.decayed_at = now

    def end_program(self, pid: str) -> ProgramEntry | None:
        return self._entries.pop(pid, None)

    def expire(self, now: float) -> list[str]:
        """Drop entries idle for longer than ``ttl`` with no active call. O(expired)."""
        gone: list[str] = []
        for pid, e in list(self._entries.items()):
            if now - e.last_activity() <= self.ttl:
                break
            if e.threads:
                # a call still running: keep it, but re-queue so the scan stays short
                self._entries.move_to_end(pid)
                continue
            del self._entries[pid]
            gone.append(pid)
        return gone
