"""The policy interface: how a call is placed and re-placed in the multi-level queue.

A policy is a small, stateless description consumed by
:class:`autellix.mlq.MultiLevelQueue`, which owns all queue mechanics (levels,
FCFS order, demotion, anti-starvation, batch order). The same policy object drives
the simulator and the vLLM plug-in.

Hooks:

* ``initial_level(program_service, cfg)``: queue of a newly arrived call;
* ``sort_key(entry)``: secondary order inside a level (default: FCFS by entry into
  the level, which ``MultiLevelQueue`` supplies as a sequence number);
* flags saying whether service demotes, whether the policy may preempt a running
  call for a waiting one (``preempts``; the rule itself: :mod:`autellix.preemption`),
  whether the key changes as a call is served (``rekey_on_service``), which
  anti-starvation scope applies, which process-table rule to use, and whether the
  policy needs clairvoyant knowledge (simulation only).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    name: str = "base"
    description: str = ""
    table_rule: str = "max"          # ProcessTable service rule: "sum" (PLAS) or "max" (ATLAS)
    multilevel: bool = True          # use K levels (else everything lives in level 0)
    demotes: bool = True             # quantum expiry moves a call down a level
    starvation: str | None = None    # None, "program" or "call"
    rekey_on_service: bool = False   # sort key depends on attained call service (LAS)
    clairvoyant: bool = False        # needs the program's remaining work (SRPT)
    # May a waiting call evict a running call ranked behind it? False models stock
    # vLLM's priority scheduling: priority orders admission only. (Memory pressure
    # may still force a recompute, as in vLLM.) Read by autellix.preemption.may_evict.
    preempts: bool = True

    def initial_level(self, program_service: float, bounds) -> int:
        """``bounds``: the queue's live :class:`autellix.boundaries.Boundaries`."""
        return bounds.level_for(program_service) if self.multilevel else 0

    def sort_key(self, entry) -> float:
        """Order inside a level; ties break by entry sequence (FCFS)."""
        return 0.0
