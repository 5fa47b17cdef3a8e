"""Live queue boundaries of one engine: fixed, or following its observed call service.

:class:`autellix.mlq.MultiLevelQueue` places and demotes calls through a
``Boundaries`` object, so the simulator and the vLLM plug-in use the same rule.

With ``QueueConfig(boundaries=None)`` (the default) the first boundary tracks the
``adapt_quantile`` (10th percentile) of the service of the engine's last
``adapt_window`` (512) completed calls, and boundary ``i`` is ``first * 2**i``.
Each completed call moves ``first`` toward that target by at most a factor of 2,
so a few odd calls cannot reshuffle the queue, and it starts at
``initial_boundary`` (0.25 s, the value measured on the A100 profile). Queued calls
keep the level they were placed at; a new arrival and every demotion use the
current boundaries and quanta (each queue's width).

Aborted calls are not observed: their service is partial and would bias the
quantile down.
"""

from __future__ import annotations

from collections import deque

from sortedcontainers import SortedList

from autellix.config import QueueConfig, geometric, widths

MIN_FIRST, MAX_FIRST = 1e-4, 3600.0  # engine-seconds; keeps a broken clock from collapsing levels
MAX_STEP = 2.0  # largest factor the first boundary moves per completed call


class Boundaries:
    def __init__(self, cfg: QueueConfig):
        self.cfg = cfg
        self.adaptive = cfg.adaptive
        self.k = cfg.k
        self.first = cfg.initial_boundary
        self._b = cfg._bounds
        self._q = cfg._quanta
        self._window: deque[float] = deque()
        self._sorted = SortedList()
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

    def observe(self, service: float) -> None:
        """A call completed with ``service`` engine-seconds (adaptive mode only)."""
        if not self.adaptive or not service > 0:
            return
        cfg = self.cfg
        self._window.append(service)
        self._sorted.add(service)
        if len(self._window) > cfg.adapt_window:
            self._sorted.remove(self._window.popleft())
        xs = self._sorted
        target = xs[min(len(xs) - 1, int(cfg.adapt_quantile * len(xs)))]
        first = min(max(target, self.first / MAX_STEP), self.first * MAX_STEP)
        first = min(max(first, MIN_FIRST), MAX_FIRST)
        if first != self.first:
            self.first = first
            self._b = geometric(first, cfg.levels)
            self._q = widths(self._b)
            self.updates += 1

    def to_dict(self) -> dict:
        return {"adaptive": self.adaptive, "first": self._b[0], "k": self.k,
                "boundaries": list(self._b), "observed": len(self._window)}
