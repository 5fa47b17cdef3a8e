"""Configuration of the multi-level queue (frozen, validated on construction).

Units are engine-seconds: the wall time of every engine step that included the
call, prefill steps as well as decode steps (the same quantity in the simulator and
the vLLM plug-in).

Defaults and why (the paper publishes none of these, §11 of our notes):

* **Boundaries follow the engine** (``boundaries=None``, the default): the first
  boundary is 16 times the engine's measured step time (the median of its last 512
  steps), and the others double after it (K = 13 queues), so the levels spread
  programs the same way on an A100 running Llama-3.1-8B (a loaded 64-seat step takes
  about 20 ms, so the first boundary is about 0.3 s) and on a tiny CPU model whose
  steps take a few milliseconds. It starts at 0.25 s and is re-read every 64 steps,
  moving by at most a factor of 2; calls already queued keep their level. See
  :mod:`autellix.boundaries` (also for why not a quantile of call service). A fixed
  boundary in seconds fits one setup only: on the tiny model a whole warm-up stayed
  in Q1 and PLAS degenerated to FCFS.
  Measured on the calibrated Llama-3.1-8B/A100 profile (64 seats, light load): per-call
  service p10/p50/p90 is 1.1/2.7/6.5 s for ShareGPT-like chat, 0.16/0.33/0.7 s for
  BFCL-like ReAct and 0.3/0.7/1.7 s for LATS-like search; whole programs reach
  12/57/171 s (chat p50/p90/max), 3/9/22 s (ReAct) and 106/246/325 s (LATS), so 12
  doublings from the first boundary reach past the largest program and long
  programs do not all pile into the last queue, where order degenerates to FCFS.
  Explicit ``boundaries`` (engine-seconds) override this and stay fixed.
* **Quanta** default to each queue's width (``hi - lo``; the last queue never
  demotes), so a call that runs through its quantum has attained the service of the
  next queue's lower bound.
* **beta** = 8: a call is promoted to Q1 once ``(W_prog + W_call) / max(floor,
  T_prog + T_call) >= beta``; that is, after waiting about eight times the service its
  program has received. Smaller values trade mean latency for tail latency.
* **starvation_floor** = 1 s, so a brand-new program (T = 0) is promoted after
  ``beta * floor`` seconds of waiting at the latest, not immediately.

``QueueConfig.from_call_service(samples)`` derives boundaries from observed call
service instead: the first boundary at a low quantile, doubling after it.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from itertools import pairwise

from autellix.errors import AutellixError


class ConfigError(AutellixError, ValueError):
    """A configuration value is invalid. The message says what to change."""


def geometric(first: float, levels: int) -> tuple[float, ...]:
    """``levels - 1`` boundaries: ``first``, then doubling."""
    return tuple(first * 2 ** i for i in range(levels - 1))


def widths(boundaries) -> tuple[float, ...]:
    """Default quanta: each queue's width; the last queue never demotes."""
    return tuple(hi - lo for lo, hi in pairwise((0.0, *boundaries))) + (math.inf,)




@dataclass(frozen=True)
class QueueConfig:
    """``boundaries=None``: they follow observed call service (see module docstring)."""

    boundaries: tuple[float, ...] | None = None
    quanta: tuple[float, ...] | None = None
    beta: float = 8.0
    starvation_floor: float = 1.0
    starvation: bool = True
    levels: int = 13                  # K when the boundaries follow the engine
    initial_boundary: float = 0.25    # first boundary before the first 64 steps
    first_steps: float = 16.0         # first boundary, in engine step times
    adapt_window: int = 512           # steps whose median is the step time
    recompute_budget: float = 0.1     # rule 5 of autellix.preemption
    recompute_horizon: float = 30.0   # engine-seconds
    _quanta: tuple[float, ...] = field(default=(), init=False, repr=False, compare=False)
    _bounds: tuple[float, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (isinstance(self.levels, int) and self.levels >= 2):
            raise ConfigError(f"levels must be an integer >= 2, got {self.levels!r}")
        if not (self.initial_boundary > 0 and math.isfinite(self.initial_boundary)):
            raise ConfigError(f"initial_boundary must be > 0 engine-seconds, got "
                              f"{self.initial_boundary!r}")
        if not (self.first_steps > 0 and math.isfinite(self.first_steps)):
            raise ConfigError(f"first_steps must be a positive number, got {self.first_steps!r}")
        if not (isinstance(self.adapt_window, int) and self.adapt_window >= 1):
            raise ConfigError(f"adapt_window must be an integer >= 1, got {self.adapt_window!r}")
        if not 0 <= self.recompute_budget <= 1:
            raise ConfigError(f"recompute_budget must be in [0, 1], got {self.recompute_budget!r}")
        if not self.recompute_horizon > 0:
            raise ConfigError(f"recompute_horizon must be > 0 engine-seconds, got "
                              f"{self.recompute_horizon!r}")
        if self.boundaries is None:
            if self.quanta is not None:
                raise ConfigError("explicit quanta need explicit boundaries (adaptive "
                                  "boundaries derive each quantum from its queue's width)")
            b = geometric(self.initial_boundary, self.levels)
        else:
            b = tuple(float(x) for x in self.boundaries)
            object.__setattr__(self, "boundaries", b)
        if any(x <= 0 for x in b):
            raise ConfigError(f"queue boundaries must be > 0 engine-seconds, got {b}")
        if any(b2 <= b1 for b1, b2 in pairwise(b)):
            raise ConfigError(f"queue boundaries must increase strictly, got {b}")
        k = len(b) + 1
        if self.quanta is None:
            q = widths(b)
        else:
            q = tuple(float(x) for x in self.quanta)
            if len(q) != k:
                raise ConfigError(f"need one quantum per queue: {k} queues from {len(b)} "
                                  f"boundaries, got {len(q)} quanta")
            if any(x <= 0 for x in q):
                raise ConfigError(f"quanta must be > 0 engine-seconds, got {q}")
        object.__setattr__(self, "_quanta", q)
        object.__setattr__(self, "_bounds", b)
        if not (self.beta > 0 and math.isfinite(self.beta)):
            raise ConfigError(f"beta must be a positive number, got {self.beta}")
        if not self.starvation_floor > 0:
            raise ConfigError(f"starvation_floor must be > 0, got {self.starvation_floor}")

    @property
    def adaptive(self) -> bool:
        return self.boundaries is None

    @property
    def k(self) -> int:
        return len(self._bounds) + 1

    def quantum(self, level: int) -> float:
        return self._quanta[level]

    def level_for(self, service: float) -> int:
        """Queue whose half-open range ``[lo, hi)`` contains ``service``."""
        return bisect.bisect_right(self._bounds, service)

    def to_dict(self) -> dict:
        return {"boundaries": "adaptive" if self.boundaries is None else list(self.boundaries),
                "initial_boundaries": list(self._bounds),
                "quanta": [q if math.isfinite(q) else "inf" for q in self._quanta],
                "beta": self.beta, "starvation_floor": self.starvation_floor,
                "starvation": self.starvation, "k": self.k,
                "recompute_budget": self.recompute_budget,
                "recompute_horizon": self.recompute_horizon,
                **({"initial_boundary": self.initial_boundary,
                    "first_steps": self.first_steps, "adapt_window": self.adapt_window}
                   if self.boundaries is None else {})}

    @classmethod
    def from_call_service(cls, samples, k: int = 10, quantile: float = 0.1, **kw) -> QueueConfig:
        """Boundaries from observed per-call service: first at ``quantile``, then doubling."""
        xs = sorted(float(s) for s in samples if s > 0)
        if not xs:
            raise ConfigError("need at least one positive service sample")
        if k < 2:
            raise ConfigError("k must be >= 2")
        first = xs[min(len(xs) - 1, int(quantile * len(xs)))]
        return cls(boundaries=tuple(first * 2 ** i for i in range(k - 1)), **kw)
