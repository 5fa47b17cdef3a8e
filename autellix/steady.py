"""Steady-state measurement: an arrival window, and a detector for points that never settle.

A run at rate ``r`` is one Poisson arrival process over ``warmup + duration +
cooldown`` seconds, about ``r x span`` programs (:meth:`Window.programs_needed`).
All of them run; statistics use only the programs that *arrive* inside the window
``[warmup, warmup + duration)``. Warm-up arrivals fill the engine from empty;
cool-down arrivals keep it loaded while the last measured programs finish, so no
measured program sees an empty start or a draining end. The window is a duration,
so an overloaded point piles up a backlog that grows with the window, and the
detector sees it. (A fixed program count would not: past capacity its arrivals
bunch into a shorter and shorter burst that never queues.) Below capacity the
duration is a floor, not the rule: a simulated point whose window would hold fewer
arrivals than the window holds at capacity (``min_programs``) gets a longer one
(:meth:`Window.for_rate`), so a slow arm's capacity, such as vLLM's without prefix
caching at a fifth of the others' rate, is a mean over as many programs as theirs.

The CLI states the window as programs *at capacity* (``--window 150``: a duration
of 150 / capacity seconds), never shorter than 4 unloaded p99 program lifetimes
(:mod:`autellix.sim_compare`). Warm-up and cool-down are half a window each. The
convergence check (``tests/test_steady_convergence.py``, ``benchmarks/convergence.py``)
doubles the window and requires every capacity ratio to move by at most 10%. The simulation stops at
``horizon_factor x span`` seconds; a measured program unfinished by then is lost,
which makes the point unstable (and bounds the cost of overloaded points).

**Detector.** The measured programs are split into halves by arrival. A point is
*unstable* (latency still growing: arrivals outpace service, so the number is an
artefact of the window's length) when the second half's *median* program token
latency exceeds the first's by more than ``tolerance`` (default 25%) *and* the
rise is statistically clear (Mann-Whitney z >= 3, about 99.9% one-sided). Both are
rank statistics: per-program token latency is heavy-tailed (long prompts, short
outputs), and a mean or Welch's t flagged stationary points at 20% of capacity;
with ~10 points per search a looser test flags some stable point too often.

A point is unstable too when a measured program did not complete, or when its
backlog (programs in the system, time-averaged) grows from the first half of the
window to the second by more than ``tolerance`` and by more than three Poisson
standard deviations of the difference, 3 sqrt(n1 + n2 + 1): under LAS-like
policies an overload starves old, long programs while new arrivals stay fast, so
latency by arrival alone would miss it. Unstable points print as ``unstable``,
never as a number, and count as missing any latency SLO.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace

from autellix.config import ConfigError
from autellix.stats import rank_z

T_CRITICAL = 3.0  # rank z


@dataclass(frozen=True)
class Window:
    duration: float              # seconds of measured arrivals
    warmup: float = math.nan    # seconds before the window (NaN: duration / 2)
    cooldown: float = math.nan  # seconds after it (NaN: duration / 2)
    tolerance: float = 0.25
    horizon_factor: float = 4.0
    min_programs: float | None = None  # below this many arrivals, a rate's window stretches

    def __post_init__(self) -> None:
        if not self.duration > 0:
            raise ConfigError("the steady-state window must last > 0 s (--window)")
        for name in ("warmup", "cooldown"):
            v = getattr(self, name)
            if math.isnan(v):
                object.__setattr__(self, name, self.duration / 2)
            elif v < 0:
                raise ConfigError(f"--{name} must be >= 0")
        if not self.tolerance > 0:
            raise ConfigError("steady-state tolerance must be > 0")
        if not self.horizon_factor >= 1:
            raise ConfigError("horizon_factor must be >= 1")
        if self.min_programs is not None and not self.min_programs > 0:
            raise ConfigError("min_programs must be > 0")

    @classmethod
    def at_capacity(cls, programs: float, capacity: float, warmup: float = 0.5,
                    cooldown: float = 0.5, **kw) -> Window:
        """A window as long as ``programs`` arrivals take at ``capacity`` programs/s;
        warm-up and cool-down as fractions of it."""
        if not programs > 0:
            raise ConfigError("--window must be > 0 programs")
        if warmup < 0 or cooldown < 0:
            raise ConfigError("--warmup and --cooldown are fractions of the window, >= 0")
        d = programs / capacity
        return cls(d, warmup * d, cooldown * d, **kw)

    def for_rate(self, rate: float) -> Window:
        """The window a point at ``rate`` measures: this one, stretched (warm-up and
        cool-down with it) where it would hold fewer than ``min_programs`` arrivals, so
        every point's statistics average over as many programs as a point at capacity.

        Why: a fixed duration gives an arm that serves a fifth of the others' rate a
        fifth of their programs. Without prefix caching a program's work grows with the
        square of its turns (chatbot: CV 3.65, the top 1% doing 30% of it), so vLLM's
        capacity, read from ~280 programs, moved 20-35% when the window doubled
        (``results/convergence/x-vllm/``). Above ``min_programs / duration`` the window
        keeps its duration, so an overloaded point still piles up a backlog."""
        if self.min_programs is None or not rate > 0 or \
                rate * self.duration >= self.min_programs:
            return self
        k = self.min_programs / (rate * self.duration)
        return replace(self, duration=self.duration * k, warmup=self.warmup * k,
                       cooldown=self.cooldown * k, min_programs=None)

    @property
    def span(self) -> float:
        return self.warmup + self.duration + self.cooldown

    @property
    def horizon(self) -> float:
        """Simulated seconds after which unfinished programs are aborted."""
        return self.horizon_factor * self.span

    def programs_needed(self, rate: float) -> int:
        """Programs to hand the simulator so Poisson arrivals at ``rate`` cover the span
        (mean + 4 standard deviations; extra programs arrive after it and only add
        cool-down), over the window :meth:`for_rate` gives ``rate``."""
        m = rate * self.for_rate(rate).span
        return int(math.ceil(m + 4 * math.sqrt(m) + 8))

    def max_rate(self, n_programs: int) -> float:
        """The highest rate a pool of ``n_programs`` can fill (inverse of programs_needed)."""
        lo, hi = 0.0, n_programs / self.span
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if self.programs_needed(mid) <= n_programs else (lo, mid)
        return lo

    def select(self, records: list) -> list:
        """The measured programs (arrival inside the window), sorted by arrival."""
        lo, hi = self.warmup, self.warmup + self.duration
        return sorted((r for r in records if lo <= r.arrival < hi),
                      key=lambda r: (r.arrival, r.program_id))

    def to_dict(self) -> dict:
        return {"duration_s": self.duration, "warmup_s": self.warmup,
                "cooldown_s": self.cooldown, "tolerance": self.tolerance,
                "horizon_s": self.horizon, "min_programs": self.min_programs}


@dataclass(frozen=True)
class SteadyCheck:
    stable: bool
    first: float
    second: float
    growth: float
    t: float
    reason: str = ""

    def to_dict(self) -> dict:
        return {"stable": self.stable, "first_half_median": self.first,
                "second_half_median": self.second, "growth": self.growth, "rank_z": self.t,
                "reason": self.reason}


def mean_backlog(records, a: float, b: float) -> float:
    """Time-averaged number of programs in the system (arrived, not finished) over [a, b)."""
    if b <= a:
        return math.nan
    return sum(max(0.0, min(r.finish, b) - max(r.arrival, a)) for r in records) / (b - a)


def check_steady(measured: list, tolerance: float = 0.25, records=None,
                 window: Window | None = None) -> SteadyCheck:
    """Is the window in steady state? ``measured`` sorted by arrival; with ``records``
    (every program of the run) and ``window``, the backlog test runs too."""
    if not measured:
        return SteadyCheck(False, math.nan, math.nan, math.nan, 0.0,
                           "no program arrived in the window")
    lost = sum(r.status != "completed" for r in measured)
    half = len(measured) // 2
    a = [r.token_latency for r in measured[:half] if r.status == "completed"]
    b = [r.token_latency for r in measured[half:] if r.status == "completed"]
    m1 = statistics.median(a) if a else math.nan
    m2 = statistics.median(b) if b else math.nan
    growth = m2 / m1 - 1 if a and b and m1 > 0 else math.nan
    t = rank_z(a, b)
    if lost:
        return SteadyCheck(False, m1, m2, growth, t, f"{lost} measured programs did not complete")
    if growth > tolerance and t >= T_CRITICAL:
        return SteadyCheck(False, m1, m2, growth, t,
                           f"latency grew {growth:.0%} from the first to the second half")
    if records is not None and window is not None:
        mid = window.warmup + window.duration / 2
        n1 = mean_backlog(records, window.warmup, mid)
        n2 = mean_backlog(records, mid, window.warmup + window.duration)
        if n2 > n1 * (1 + tolerance) and n2 - n1 > 3 * math.sqrt(n1 + n2 + 1):
            return SteadyCheck(False, m1, m2, growth, t, f"programs in the system grew from "
                               f"{n1:.1f} to {n2:.1f} over the window")
    return SteadyCheck(True, m1, m2, growth, t)
