"""``plas``: Program-Level Attained Service (Autellix Eq. 1) for single-threaded programs.

A call is placed by its program's service so far (the *sum* of its completed calls'
engine time), demotes as it consumes quanta, and is protected by program-level
anti-starvation."""

from autellix.policies.base import Policy

PLAS = Policy(name="plas", description="program-level attained service (sum rule)",
              table_rule="sum", multilevel=True, demotes=True, starvation="program")
