"""Live queue boundaries of one engine: fixed, or in units of its measured step time.

:class:`autellix.mlq.MultiLevelQueue` places and demotes calls through a
``Boundaries`` object, so the simulator and the vLLM plug-in use the same rule.

With ``QueueConfig(boundaries=None)`` (the default) the first boundary is
``first_steps`` (16) times the engine's step time, the median duration of its last
``adapt_window`` (512) steps, and boundary ``i`` is that times ``2**i``. A call's
service is the time of the steps it was in, so in these units the queue looks the
same on an A100 running Llama-3.1-8B (a 64-seat step takes about 20 ms, first
boundary about 0.3 s, close to the 0.25 s measured there) and on a tiny CPU model
whose steps take 2-20 ms depending on how busy the machine is.

Why step time and not a quantile of completed-call service (tried first): which
calls happen to complete moves a quantile, so a burst of short calls shrank the
levels under calls already queued at the old ones, and a new short program landed
at the same level as an old long one (seen end to end). Step time is a property of
the engine, not of the traffic. It is re-read every 64 steps and moves by at most a
factor of 2 each time, so levels drift slowly; it starts at ``initial_boundary``
(0.25 s) until the first 64 steps. Calls already queued keep the level they were
placed at; a new arrival and every demotion use the current boundaries and quanta
(each queue's width).
"""

from __future__ import annotations

from collections import deque

from sortedcontainers import SortedList

from autellix.config import QueueConfig, geometric, widths

MIN_FIRST, MAX_FIRST = 1e-4, 3600.0  # engine-seconds; keeps a broken clock from collapsing levels
MAX_STEP = 2.0  # largest factor the first boundary moves per update
UPDATE_EVERY = 64  # steps between updates


class Boundaries:
    def __init__(self, cfg: QueueConfig):
        self.cfg = cfg
        self.adaptive = cfg.adaptive
        self.k = cfg.k
        self.first = cfg._bounds[0]
        self._b = cfg._bounds
        self._q = cfg._quanta
        self._window: deque[float] = deque()
        self._sorted = SortedList()
        self._since = 0
        self.updates = 0

    @property
    def boundaries(self) -> tuple[float, ...]:
        return self._b

    def level_for(self, service: float) -> int:
        """Queue whose half-open range ``[lo, hi)`` contains ``service``."""
        b = self._b
        lo, hi = 0, len(b)
        while lo < hi:  # bisect_right, inlined: this runs for every call placed
            mid = (lo + hi) // 2
            if service < b[mid]:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def quantum(self, level: int) -> float:
        return self._q[level]

    def last_finite_quantum(self) -> float:
        return self._q[-2] if len(self._q) > 1 else self._b[0]

    def step_time(self) -> float | None:
        """Median of the recent step durations (None before any step)."""
        xs = self._sorted
        return xs[len(xs) // 2] if xs else None

    def observe_steps(self, seconds: float, steps: int = 1) -> None:
        """The engine ran ``steps`` steps in ``seconds`` (adaptive mode only)."""
        if not self.adaptive or not seconds > 0 or steps < 1:
            return
        per = seconds / steps
        cfg = self.cfg
        # one sample per report: a simulated run of k identical decode steps counts once
        self._window.append(per)
        self._sorted.add(per)
        if len(self._window) > cfg.adapt_window:
            self._sorted.remove(self._window.popleft())
        self._since += steps
        if self._since < UPDATE_EVERY:
            return
        self._since = 0
        target = cfg.first_steps * self.step_time()
        first = min(max(target, self.first / MAX_STEP), self.first * MAX_STEP)
        first = min(max(first, MIN_FIRST), MAX_FIRST)
        if first != self.first:
            self.first = first
            self._b = geometric(first, cfg.levels)
            self._q = widths(self._b)
            self.updates += 1

    def to_dict(self) -> dict:
        return {"adaptive": self.adaptive, "first": self._b[0], "k": self.k,
                "boundaries": list(self._b), "step_time": self.step_time()}
