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
        # step time = median over the last adapt_window steps of 64-step block averages:
        # robust to a few slow steps (a cold server), and the same however the steps
        # were reported (the simulator reports runs of decode steps at once and ends
        # them at block edges, see steps_to_update)
        self._blocks: deque[float] = deque(maxlen=max(1, cfg.adapt_window // UPDATE_EVERY))
        self._block_s = 0.0
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
        """Median of the recent 64-step block averages (None before the first block)."""
        xs = sorted(self._blocks)
        return xs[len(xs) // 2] if xs else None

    def steps_to_update(self) -> int:
        """Steps until the next update (a multi-step report must not cross it)."""
        return UPDATE_EVERY - self._since if self.adaptive else 1 << 62

    def observe_steps(self, seconds: float, steps: int = 1) -> None:
        """The engine ran ``steps`` steps in ``seconds`` (adaptive mode only)."""
        if not self.adaptive or not seconds >= 0 or steps < 1:
            return
        while steps > 0:  # a report crossing a block edge is split pro rata
            take = min(steps, UPDATE_EVERY - self._since)
            part = seconds * take / steps
            self._block_s += part
            self._since += take
            seconds -= part
            steps -= take
            if self._since == UPDATE_EVERY:
                self._blocks.append(self._block_s / UPDATE_EVERY)
                self._block_s, self._since = 0.0, 0
                self._update()

    def _update(self) -> None:
        cfg = self.cfg
        step = self.step_time()
        assert step is not None  # called once a block of steps has been recorded
        target = cfg.first_steps * step
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
