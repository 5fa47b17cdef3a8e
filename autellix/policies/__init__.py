"""Scheduling policies, one module each, in a registry keyed by name.

``get_policy(name)`` returns the policy; ``POLICIES`` lists them in display order
and feeds the CLI's choices. ``REAL_ENGINE_POLICIES`` are those a live server can
run in the plug-in (``srpt`` needs to know the future; ``program-priority``
is stock vLLM's priority scheduling, run as the ``vllm-priority`` engine arm;
``las-router`` models a router's admission-only fairness)."""

from autellix.config import ConfigError
from autellix.policies.atlas import ATLAS
from autellix.policies.base import Policy
from autellix.policies.fcfs import FCFS
from autellix.policies.las import LAS
from autellix.policies.mlfq import MLFQ
from autellix.policies.plas import PLAS
from autellix.policies.priority import LAS_ROUTER, PROGRAM_PRIORITY
from autellix.policies.srpt import SRPT

POLICIES: dict[str, Policy] = {p.name: p for p in (FCFS, PLAS, ATLAS, MLFQ, LAS, SRPT,
                                                    PROGRAM_PRIORITY, LAS_ROUTER)}
REAL_ENGINE_POLICIES = tuple(n for n, p in POLICIES.items() if not p.clairvoyant and p.preempts)


def get_policy(name: str) -> Policy:
    try:
        return POLICIES[name]
    except KeyError:
        raise ConfigError(f"unknown policy {name!r}; choose one of {', '.join(POLICIES)}") from None


__all__ = ["Policy", "POLICIES", "REAL_ENGINE_POLICIES", "get_policy"]
