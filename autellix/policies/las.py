"""``las``: call-level least attained service. One queue ordered by each call's own
attained engine time (ties FCFS). Continuous priorities: the paper's argument for
binning is that this degrades toward round-robin and preempts often."""

from autellix.policies.base import Policy


class _LAS(Policy):
    def sort_key(self, entry) -> float:
        return entry.service


LAS = _LAS(name="las", description="call-level least attained service",
           multilevel=False, demotes=False, starvation=None, rekey_on_service=True)
