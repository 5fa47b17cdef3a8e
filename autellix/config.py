"""Configuration of the multi-level queue (frozen, validated on construction).

Units are engine-seconds: the wall time of every engine step that included the
call, prefill steps as well as decode steps (the same quantity in the simulator and
the vLLM plug-in).

Defaults and why (the paper publishes none of these, §11 of our notes):

* **Boundaries** ``0.25, 0.5, 1, ..., 512`` s (K = 13 queues). Measured on the
  calibrated Llama-3.1-8B/A100 profile (64 seats, light load): per-call service
  p10/p50/p90 is 1.1/2.7/6.5 s for ShareGPT-like chat, 0.16/0.33/0.7 s for BFCL-like
  ReAct and 0.3/0.7/1.7 s for LATS-like search; whole programs reach 12/57/171 s
  (chat p50/p90/max), 3/9/22 s (ReAct) and 106/246/325 s (LATS). The first boundary
  sits at a low quantile of *call* service and doubling reaches past the largest
  program, so programs stay spread over the queues instead of collapsing into the
  last one, where order degenerates to FCFS (the trap that makes PLAS collapse
  when service is counted in decode steps).
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

import math
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A configuration value is invalid. The message says what to change."""


DEFAULT_BOUNDARIES = tuple(0.25 * 2 ** i for i in range(12))  # 0.25 ... 512 s


@dataclass(frozen=True)
class QueueConfig:
    boundaries: tuple[float, ...] = DEFAULT_BOUNDARIES
    quanta: tuple[float, ...] | None = None
    beta: float = 8.0
    starvation_floor: float = 1.0
    starvation: bool = True
    _quanta: tuple[float, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        b = tuple(float(x) for x in self.boundaries)
        object.__setattr__(self, "boundaries", b)
        if any(x <= 0 for x in b):
            raise ConfigError(f"queue boundaries must be > 0 engine-seconds, got {b}")
        if any(b2 <= b1 for b1, b2 in zip(b, b[1:])):
            raise ConfigError(f"queue boundaries must increase strictly, got {b}")
        k = len(b) + 1
        if self.quanta is None:
            lows = (0.0,) + b
            q = tuple(hi - lo for lo, hi in zip(lows, b)) + (math.inf,)
        else:
            q = tuple(float(x) for x in self.quanta)
            if len(q) != k:
                raise ConfigError(f"need one quantum per queue: {k} queues from {len(b)} "
                                  f"boundaries, got {len(q)} quanta")
            if any(x <= 0 for x in q):
                raise ConfigError(f"quanta must be > 0 engine-seconds, got {q}")
        object.__setattr__(self, "_quanta", q)
        if not (self.beta > 0 and math.isfinite(self.beta)):
            raise ConfigError(f"beta must be a positive number, got {self.beta}")
        if not self.starvation_floor > 0:
            raise ConfigError(f"starvation_floor must be > 0, got {self.starvation_floor}")

    @property
    def k(self) -> int:
        return len(self.boundaries) + 1

    def quantum(self, level: int) -> float:
        return self._quanta[level]

    def level_for(self, service: float) -> int:
        """Queue whose half-open range ``[lo, hi)`` contains ``service``."""
        lo, hi = 0, len(self.boundaries)
        while lo < hi:  # bisect_right on boundaries
            mid = (lo + hi) // 2
            if service < self.boundaries[mid]:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def to_dict(self) -> dict:
        return {"boundaries": list(self.boundaries), "quanta": [q if math.isfinite(q) else "inf"
                                                                for q in self._quanta],
                "beta": self.beta, "starvation_floor": self.starvation_floor,
                "starvation": self.starvation, "k": self.k}

    @classmethod
    def from_call_service(cls, samples, k: int = 10, quantile: float = 0.1, **kw) -> "QueueConfig":
        """Boundaries from observed per-call service: first at ``quantile``, then doubling."""
        xs = sorted(float(s) for s in samples if s > 0)
        if not xs:
            raise ConfigError("need at least one positive service sample")
        if k < 2:
            raise ConfigError("k must be >= 2")
        first = xs[min(len(xs) - 1, int(quantile * len(xs)))]
        return cls(boundaries=tuple(first * 2 ** i for i in range(k - 1)), **kw)
