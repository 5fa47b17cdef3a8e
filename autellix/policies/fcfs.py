"""``fcfs``: what stock vLLM does. One queue, first come first served, no preemption
for priority (a running call is only displaced under memory pressure, newest first)."""

from autellix.policies.base import Policy

FCFS = Policy(name="fcfs", description="first come first served (stock vLLM)",
              multilevel=False, demotes=False, starvation=None)
