"""``program-priority``: what a vLLM user can do today with ``--scheduling-policy priority``.

The client sets each call's vLLM ``priority`` to its program's service so far, so
the engine admits waiting calls in order of that number (ties FCFS), fixed when
the call is issued. There is no process-table feedback while the call runs (no
demotion), no anti-starvation, and no preemption of a running call for a waiting
one (``preempts=False``). It is the ``vllm-priority`` arm of :mod:`autellix.arms`
in the simulator; on real engines that arm is stock vLLM with client priorities.
Not offered to the vLLM plug-in (the real-engine arm needs no plug-in).
"""

from autellix.policies.base import Policy


class _ProgramPriority(Policy):
    def sort_key(self, entry) -> float:
        return entry.priority


LAS_ROUTER = _ProgramPriority(
    name="las-router", description="llm-d-style fairness: least recent program service "
    "first (half-life 60 s), at admission only, no preemption", table_rule="decay",
    multilevel=False, demotes=False, starvation=None, preempts=False)
"""``las-router``: llm-d's program-aware fairness, modelled. An LAS over each program's
time-decayed service (:mod:`autellix.process_table`'s ``decay`` rule; engine-seconds
stand in for llm-d's token counts, the two being near proportional at a fixed batch),
applied where a router can: to the order in which waiting calls are admitted, never by
preempting a running call. The 60 s half-life is our choice; llm-d's is configurable."""

PROGRAM_PRIORITY = _ProgramPriority(
    name="program-priority", description="client-side priority = program service so far, "
    "no preemption (stock vLLM priority scheduling)", table_rule="sum", multilevel=False,
    demotes=False, starvation=None, preempts=False)
