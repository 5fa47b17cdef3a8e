"""``atlas``: Adaptive Thread-Level Attained Service (Autellix Eq. 2, as implemented).

The program's service is its longest observed critical path: on completion
``service = max(service, call.priority + call.model_time)``. All parallel calls of a
program copy the same priority at arrival, so they are gang-scheduled. Placement,
demotion and anti-starvation are as for PLAS."""

from autellix.policies.base import Policy

ATLAS = Policy(name="atlas", description="thread-level attained service (critical-path max rule)",
               table_rule="max", multilevel=True, demotes=True, starvation="program")
