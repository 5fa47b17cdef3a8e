"""A real engine's capacity, measured on this machine before any rate is placed.

The simulator places its grid at multiples of a *modelled* full-batch capacity
(:mod:`autellix.sim.capacity`). A real engine has no model, and how many programs per
second it serves depends on the machine and on what else runs there: a fixed
``--rates 0.5,1,2`` saturates a busy laptop and leaves a quiet server idle, so the
same command measures different regimes. ``autellix compare --engine vllm`` therefore
first measures capacity the way it is defined, by keeping the engine saturated: it
submits ``k`` programs at once (a standing backlog) and takes the completion rate
over the middle half of the completions, which skips the ramp-up (batches still
filling) and the drain (the last programs running in a thinning batch). Rates are
then ``loads`` times that figure, so a run means the same load on any machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autellix.errors import EngineError

#: arrivals this fast all land within microseconds: a burst, not a Poisson stream
BURST_RATE = 1e6
MIN_PROGRAMS = 8


@dataclass(frozen=True)
class Capacity:
    """Programs/s the endpoint completed with a standing backlog, and how it was read."""

    programs_per_s: float
    programs: int          # submitted at once
    counted: int           # completions inside the middle half
    span_s: float          # seconds between the first and last counted completion
    makespan_s: float      # first arrival to last completion

    def to_dict(self) -> dict:
        return {"programs_per_s": self.programs_per_s, "programs": self.programs,
                "counted": self.counted, "span_s": self.span_s, "makespan_s": self.makespan_s,
                "method": "burst of programs at t=0; completion rate over the middle half"}


def saturated_throughput(records) -> Capacity:
    """Completion rate over the middle half of a burst's completions.

    With ``k`` finish times sorted, the rate is the number of completions after the
    one at index ``k // 4`` up to the one at ``ceil(3k / 4) - 1``, over the time
    between them. A program that did not complete makes the figure meaningless (the
    engine was not serving, or refused it), so it is an error, with its status.
    """
    recs = list(records)
    if len(recs) < MIN_PROGRAMS:
        raise EngineError(f"a capacity probe needs >= {MIN_PROGRAMS} programs, got {len(recs)}")
    bad = [r for r in recs if r.status != "completed"]
    if bad:
        raise EngineError(f"capacity probe: {len(bad)} of {len(recs)} programs did not "
                          f"complete (first: {bad[0].program_id} {bad[0].status})")
    finish = sorted(r.finish for r in recs)
    k = len(finish)
    lo, hi = k // 4, math.ceil(3 * k / 4) - 1
    span = finish[hi] - finish[lo]
    if not span > 0:
        raise EngineError("capacity probe: the middle half of the burst finished at one "
                          "instant; use more programs (--capacity-programs)")
    start = min(r.arrival for r in recs)
    return Capacity((hi - lo) / span, k, hi - lo, span, finish[-1] - start)


def measure_capacity(programs, endpoint: str, *, seed: int, **replay_kwargs) -> Capacity:
    """Replay ``programs`` as one burst against ``endpoint`` and read its capacity."""
    from autellix.replay import replay

    progs, _ = replay(list(programs), endpoint, rate=BURST_RATE, seed=seed, **replay_kwargs)
    return saturated_throughput(progs)
