"""``mlfq``: FastServe-style multi-level feedback queue. Every new call enters Q1
whatever its program has received, demotes by its own service, and is promoted by
call-level anti-starvation (its own wait over its own service)."""

from autellix.policies.base import Policy


class _MLFQ(Policy):
    def initial_level(self, program_service: float, bounds) -> int:
        return 0


MLFQ = _MLFQ(name="mlfq", description="call-level MLFQ, every call enters Q1 (FastServe)",
             multilevel=True, demotes=True, starvation="call")
