"""Capacity at a latency SLO: the largest arrival rate whose statistic stays at or under it.

Found per arm (and per seed) by bracketing, then bisection, as ``vllm bench sweep
serve_sla`` and GuideLLM's goodput profile do:

1. **Bracket.** Start from the rates already measured (the sweep's grid). If every
   rate met the SLO, multiply the highest by ``growth`` (2) until one misses; if
   none met it, divide the lowest until one meets. Each arm's bracket is extended
   until that arm crosses, up to ``max_extend`` steps and ``max_rate`` (the most
   the programs at hand can fill; ``compare`` sizes its pools to 4x its top grid rate).
2. **Bisect** the bracket ``[lo meets, hi misses]`` at its geometric midpoint until
   ``hi / lo <= 1 + rel_tol`` (default 3%).
3. **Report** ``lo`` moved toward ``hi`` by linear interpolation of the statistic
   (both ends measured), so the answer is not quantised to the bisection grid.

A point that is unstable (:mod:`autellix.steady`) misses the SLO. An arm that met
the SLO at every rate tried has only a lower bound: ``bound = "lower"``, printed
``>=``. One that missed at every rate has an upper bound (``"upper"``, ``<``).

**SLO.** Absolute (s/token for token latency, s for program e2e), or a multiple of
the workload's *unloaded* statistic: the reference arm at 5% of the estimated
capacity, same window and programs. Default: 3x the unloaded mean program token
latency: queueing then makes up two thirds of latency, the regime the paper reads
its gains in, while staying below the rates where finite windows stop converging.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autellix.config import ConfigError

# metric name -> (RunSummary attribute, statistic)
METRICS = {"mean": ("token_latency", "mean"), "p95": ("token_latency", "p95"),
           "p99": ("token_latency", "p99"), "e2e": ("e2e", "mean"), "e2e-p95": ("e2e", "p95")}
DEFAULT_FACTOR = 3.0
UNLOADED_LOAD = 0.05


@dataclass(frozen=True)
class SLO:
    metric: str = "mean"
    value: float | None = None   # absolute; None: factor x unloaded
    factor: float = DEFAULT_FACTOR

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ConfigError(f"SLO metric must be one of {', '.join(METRICS)}, "
                              f"got {self.metric!r}")
        if self.value is not None and not self.value > 0:
            raise ConfigError("an absolute SLO must be > 0")
        if not self.factor > 1:
            raise ConfigError("an SLO multiple of unloaded latency must be > 1 (e.g. 3x)")

    @classmethod
    def parse(cls, text: str, metric: str = "mean") -> SLO:
        """``"3x"`` -> 3 times unloaded; ``"0.05"`` -> absolute."""
        t = text.strip().lower()
        try:
            x = float(t[:-1] if t.endswith("x") else t)
        except ValueError:
            raise ConfigError(f"--slo must be a number (absolute) or a multiple like 3x, "
                              f"got {text!r}") from None
        return cls(metric, None, x) if t.endswith("x") else cls(metric, x)

    def resolve(self, unloaded: float) -> float:
        return self.value if self.value is not None else self.factor * unloaded

    def to_dict(self) -> dict:
        return {"metric": self.metric, "value": self.value, "factor": self.factor}


def statistic(summary, metric: str) -> float:
    """The summary's SLO statistic; inf when the point is unstable or lost programs."""
    if not summary.extra.get("stable", True) or summary.completed < summary.n_programs:
        return math.inf
    attr, key = METRICS[metric]
    v = getattr(summary, attr)[key]
    return math.inf if v is None or math.isnan(v) else float(v)


@dataclass(frozen=True)
class Capacity:
    rate: float          # capacity estimate (0 when even the lowest rate missed)
    lo: float | None     # largest rate measured to meet the SLO
    hi: float | None     # smallest rate measured to miss it
    bound: str | None    # None (bracketed), "lower" (>= rate) or "upper" (< hi)
    evaluations: int

    def to_dict(self) -> dict:
        return {"rate": self.rate, "lo": self.lo, "hi": self.hi, "bound": self.bound,
                "evaluations": self.evaluations}


class CapacitySearch:
    """Bracketing + bisection for one curve; drive it with ``next_rate``/``observe``."""

    def __init__(self, slo: float, start: float, growth: float = 2.0, rel_tol: float = 0.03,
                 max_extend: int = 6, max_rate: float = math.inf):
        if not (start > 0 and growth > 1 and rel_tol > 0):
            raise ConfigError("capacity search needs start > 0, growth > 1 and rel_tol > 0")
        self.slo, self.start, self.growth, self.rel_tol = slo, start, growth, rel_tol
        self.max_extend, self.max_rate = max_extend, max_rate
        self.seen: dict[float, float] = {}
        self._up = self._down = 0

    def observe(self, rate: float, value: float) -> None:
        self.seen[float(rate)] = float(value)

    def _bracket(self):
        ok = [r for r, v in self.seen.items() if v <= self.slo]
        lo = max(ok) if ok else None
        bad = [r for r, v in self.seen.items() if v > self.slo and (lo is None or r > lo)]
        hi = min(bad) if bad else None
        return lo, hi

    def next_rate(self) -> float | None:
        """The next rate to measure, or None when the search is over."""
        if not self.seen:
            return round(min(self.start, self.max_rate), 6)
        lo, hi = self._bracket()
        if hi is None:  # never missed: extend upward
            nxt = round(min(lo * self.growth, self.max_rate), 6)
            if self._up >= self.max_extend or nxt <= lo or nxt in self.seen:
                return None
            self._up += 1
            return nxt
        if lo is None:  # never met: extend downward
            if self._down >= self.max_extend:
                return None
            self._down += 1
            return round(min(self.seen) / self.growth, 6)
        if hi / lo <= 1 + self.rel_tol:
            return None
        mid = round(math.sqrt(lo * hi), 6)
        return None if mid in self.seen else mid

    def result(self) -> Capacity:
        lo, hi = self._bracket()
        n = len(self.seen)
        if lo is None:
            return Capacity(0.0, None, hi, "upper", n)
        if hi is None:
            return Capacity(lo, lo, None, "lower", n)
        vlo, vhi = self.seen[lo], self.seen[hi]
        rate = lo
        if math.isfinite(vhi) and vhi > vlo:
            rate = lo + (self.slo - vlo) * (hi - lo) / (vhi - vlo)
        return Capacity(rate, lo, hi, None, n)


def run_searches(searches: dict, measure) -> dict:
    """Drive several searches in lockstep: each round asks every unfinished search for
    its next rate and measures them all in one batch (``measure(list of keys and
    rates) -> list of statistics``), so a process pool runs a round in parallel."""
    while True:
        todo = [(k, r) for k, s in searches.items() if (r := s.next_rate()) is not None]
        if not todo:
            return {k: s.result() for k, s in searches.items()}
        for (k, r), v in zip(todo, measure(todo), strict=False):
            searches[k].observe(r, v)
