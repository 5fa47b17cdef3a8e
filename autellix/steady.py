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
rise is statistically clear (Mann-Whitney z >= 3, about 99.9% one-sided) *and* it
runs through the window: each quarter of the second half is above each quarter of
the first (:func:`rises_throughout`). The first two are rank statistics:
per-program token latency is heavy-tailed (long prompts, short outputs), and a mean
or Welch's t flagged stationary points at 20% of capacity; with ~10 points per
search a looser test flags some stable point too often.

The third tells a queue that keeps growing from a swing in what the arrivals
offer. Near capacity a stable point's latency swings for hundreds of seconds with
the work its arrivals bring, and a long window's rank test is sharp enough to see
a swing as a significant rise. Measured (``results/convergence/detector/``): on
MCTS at 0.262 programs/s (vllm-opt, a 2,748 s window) the quarter medians are 9.4,
11.2, 14.9 and 9.9 ms, a burst that has passed; on chatbot without prefix caching
at 0.16/s (1,600 arrivals) they are 31.6, 19.9, 26.4 and 37.7 ms, a first quarter
as slow as the last. Both passed the halves test and made the capacity the
detector's rather than the SLO's, so it fell as the window grew. A backlog that
grows without bound rises in every quarter, so the rule costs no overload
(``tests/test_steady_state.py`` keeps its overload cases unstable, a simulated point
at 2x capacity among them).

A point is unstable too when a measured program did not complete, or when its
backlog (programs in the system, time-averaged) grows from the first half of the
window to the second by more than ``tolerance`` and by more than three Poisson
standard deviations of the difference, 3 sqrt(n1 + n2 + 1), and, by the same
rule, rises throughout: under LAS-like policies an overload starves old, long
programs while new arrivals stay fast, so latency by arrival alone would miss it.
Unstable points print as ``unstable``, never as a number, and count as missing any
latency SLO.
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
    quarters: tuple[float, ...] = ()  # median token latency per quarter of the window

    def to_dict(self) -> dict:
        return {"stable": self.stable, "first_half_median": self.first,
                "second_half_median": self.second, "growth": self.growth, "rank_z": self.t,
                "quarter_medians": list(self.quarters), "reason": self.reason}


def rises_throughout(quarters) -> bool:
    """Does a series of four (quarters of a window) rise through the window: is each
    value of the second half above each of the first? A queue that outgrows service
    rises in every quarter; a swing that peaks in one quarter and falls back, or a
    first quarter as high as the last, does not. Fewer than four values (too few
    programs to split) cannot rule a rise out, so they count as rising."""
    q = [x for x in quarters if not math.isnan(x)]
    if len(q) < 4:
        return True
    return min(q[2], q[3]) > max(q[0], q[1])


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
    quarters = _quarter_medians(measured)
    if lost:
        return SteadyCheck(False, m1, m2, growth, t, f"{lost} measured programs did not complete",
                           quarters)
    if growth > tolerance and t >= T_CRITICAL and rises_throughout(quarters):
        return SteadyCheck(False, m1, m2, growth, t,
                           f"latency grew {growth:.0%} from the first to the second half",
                           quarters)
    if records is not None and window is not None:
        w0, q = window.warmup, window.duration / 4
        n = [mean_backlog(records, w0 + i * q, w0 + (i + 1) * q) for i in range(4)]
        n1, n2 = (n[0] + n[1]) / 2, (n[2] + n[3]) / 2
        if (n2 > n1 * (1 + tolerance) and n2 - n1 > 3 * math.sqrt(n1 + n2 + 1)
                and rises_throughout(n)):
            return SteadyCheck(False, m1, m2, growth, t, f"programs in the system grew from "
                               f"{n1:.1f} to {n2:.1f} over the window", quarters)
    return SteadyCheck(True, m1, m2, growth, t, "", quarters)


def _quarter_medians(measured: list) -> tuple[float, ...]:
    """Median token latency of the completed programs in each quarter by arrival; NaN
    for a quarter with fewer than 4 (too few to say where latency is heading)."""
    k = len(measured) / 4
    out = []
    for i in range(4):
        part = [r.token_latency for r in measured[round(i * k):round((i + 1) * k)]
                if r.status == "completed"]
        out.append(statistics.median(part) if len(part) >= 4 else math.nan)
    return tuple(out)
