"""Arms of a comparison: a scheduling policy plus the engine features that define it.

An arm is data, ``Arm(name, policy, engine overrides)``. Between the arms of one
comparison only these may differ; programs, seed, cost profile and every other
engine setting are shared (lessons.md: baselines must not smuggle in their own
cost assumptions). Any policy name (``fcfs``, ``plas``, ``atlas``, ``mlfq``,
``las``, ``srpt``) is also an arm with no overrides. The named baselines:

* ``vllm``: the paper's vLLM 0.6.1: FCFS, no prefix caching, no chunked prefill;
* ``vllm-opt``: FCFS with prefix caching and chunked prefill (our default engine);
* ``vllm-priority``: what a vLLM user can do today: the client sets ``priority`` to
  its program's service so far; priority orders admission, nothing is preempted
  for it (policy ``program-priority``, ``Policy.preempts=False``);
* ``las-router``: llm-d's program-aware fairness: least *recent* program service first
  (service decays with a 60 s half-life), at admission only, no preemption.

On real engines (``compare --engine vllm``) ``vllm-fcfs``/``vllm-opt`` and
``vllm-priority`` run stock vLLM (see :mod:`autellix.cli.compare_vllm`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from autellix.config import ConfigError


@dataclass(frozen=True)
class Arm:
    name: str
    policy: str
    engine: tuple[tuple[str, object], ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        from autellix.policies import POLICIES
        from autellix.sim.sim_config import EngineConfig

        if self.policy not in POLICIES:
            raise ConfigError(f"arm {self.name!r}: unknown policy {self.policy!r}")
        known = {f.name for f in fields(EngineConfig)}
        bad = [k for k, _ in self.engine if k not in known]
        if bad:
            raise ConfigError(f"arm {self.name!r}: no engine setting {bad[0]!r}; "
                              f"choose from {', '.join(sorted(known))}")

    def sim_config(self, base):
        """``base`` (a SimConfig) with this arm's policy and engine overrides."""
        eng = replace(base.engine, **dict(self.engine)) if self.engine else base.engine
        return replace(base, policy=self.policy, engine=eng)

    def to_dict(self) -> dict:
        return {"name": self.name, "policy": self.policy, "engine": dict(self.engine),
                "description": self.description}


NAMED_ARMS: dict[str, Arm] = {a.name: a for a in (
    Arm("vllm", "fcfs", (("prefix_caching", False), ("chunked_prefill", False)),
        "the paper's vLLM 0.6.1: FCFS, no prefix caching, no chunked prefill"),
    Arm("vllm-opt", "fcfs", (), "FCFS with prefix caching and chunked prefill"),
    Arm("vllm-priority", "program-priority", (),
        "client priority = program service so far, no preemption"),
)}
# names whose throughput every other arm is divided by, in column order
BASELINES = ("vllm", "vllm-opt", "fcfs", "mlfq", "round_robin", "least_used")


def arm_names() -> list[str]:
    from autellix.policies import POLICIES

    return list(NAMED_ARMS) + [p for p in POLICIES if p not in NAMED_ARMS]


def get_arm(name: str) -> Arm:
    if name in NAMED_ARMS:
        return NAMED_ARMS[name]
    from autellix.policies import POLICIES

    if name in POLICIES:
        return Arm(name, name, (), POLICIES[name].description)
    raise ConfigError(f"unknown policy or arm {name!r}; choose one of {', '.join(arm_names())}")
