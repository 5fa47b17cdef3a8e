"""The simulation's events: a kind and a typed payload, in one deterministic heap.

**Ordering rule.** Events are ordered by (time, kind, sequence). At one instant a
step's end comes before a call's issue, and an issue before a program's arrival
(``STEP_END < ISSUE < ARRIVAL``): an engine frees what a step finished before new
calls are placed, so the balancer and the batch see the freed seats. Among events of
one kind at one instant, the one pushed first goes first. Payloads are never
compared (the sequence number is unique).
"""

from __future__ import annotations

import heapq
import itertools
from enum import IntEnum
from typing import NamedTuple

from autellix.program import Program


class EventKind(IntEnum):
    STEP_END = 0
    ISSUE = 1
    ARRIVAL = 2


class StepEnd(NamedTuple):
    engine: int
    version: int   # stale if the engine's step was cut short and rescheduled


class Issue(NamedTuple):
    program_id: str
    call_id: str


class Arrival(NamedTuple):
    program: Program


Payload = StepEnd | Issue | Arrival


class Event(NamedTuple):
    time: float
    kind: EventKind
    seq: int
    payload: Payload


class EventQueue:
    def __init__(self) -> None:
        self._heap: list[Event] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, time: float, kind: EventKind, payload: Payload) -> None:
        heapq.heappush(self._heap, Event(time, kind, next(self._seq), payload))

    def pop(self) -> Event:
        return heapq.heappop(self._heap)

    def drain(self) -> list[Event]:
        """Remove and return every pending event, in order."""
        out = sorted(self._heap)
        self._heap.clear()
        return out
