"""Configuration of the Autellix scheduler inside one vLLM engine.

Passed through vLLM's ``additional_config`` under the key ``"autellix"``::

    --additional-config '{"autellix": {"policy": "plas", "boundaries": [0.25, 0.5, 1],
                                        "beta": 8, "starvation_floor": 1.0}}'

Every field is validated on construction; an invalid value raises
:class:`autellix.config.ConfigError` at engine start-up, with a message naming the
field. There are no environment-variable knobs.

Fields (units: engine-seconds unless said otherwise):

* ``policy``: one of :data:`autellix.policies.REAL_ENGINE_POLICIES`. ``fcfs`` leaves
  vLLM's own order untouched (stock behaviour, no priority preemption).
* ``boundaries``, ``quanta``, ``beta``, ``starvation_floor``, ``starvation``: the
  multi-level queue (see :class:`autellix.config.QueueConfig`).
* ``schedule_interval``: run the policy pass (anti-starvation promotion, re-ranking,
  priority preemption) every N engine steps; 1 = every step.
* ``preempt``: evict a lower-priority running call for a better waiting one (the
  thing stock vLLM never does). Always off for ``fcfs``.
* ``table_ttl`` (s), ``table_max_entries``: bounds of the engine-local process table.
* ``expire_interval`` (s): how often idle programs are expired and stray state swept.
* ``boundaries``: ``null`` (the default) makes them follow the engine's observed call
  service (:mod:`autellix.boundaries`); a list fixes them.
* ``step_log``: a file path; one JSON line per engine step (batch composition and
  duration, :mod:`autellix.vllm.step_log`), for ``autellix profile``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from autellix.config import ConfigError, QueueConfig

CONFIG_KEY = "autellix"


@dataclass(frozen=True)
class AutellixEngineConfig:
    policy: str = "plas"
    boundaries: tuple[float, ...] | None = None
    quanta: tuple[float, ...] | None = None
    beta: float = 8.0
    starvation_floor: float = 1.0
    starvation: bool = True
    schedule_interval: int = 1
    preempt: bool = True
    table_ttl: float = 600.0
    table_max_entries: int = 100_000
    expire_interval: float = 5.0
    step_log: str | None = None

    def __post_init__(self) -> None:
        from autellix.policies import POLICIES, REAL_ENGINE_POLICIES

        if not isinstance(self.policy, str) or self.policy not in POLICIES:
            raise ConfigError(f"autellix.policy: unknown policy {self.policy!r}; "
                              f"choose one of {', '.join(REAL_ENGINE_POLICIES)}")
        if self.policy not in REAL_ENGINE_POLICIES:
            raise ConfigError(f"autellix.policy: {self.policy!r} needs to know the future "
                              "(simulation only); a real engine can run "
                              f"{', '.join(REAL_ENGINE_POLICIES)}")
        if self.boundaries is not None:
            if (isinstance(self.boundaries, (str, bytes))
                    or not hasattr(self.boundaries, "__iter__")):
                raise ConfigError("autellix.boundaries must be a list of numbers or null, got "
                                  f"{self.boundaries!r}")
            object.__setattr__(self, "boundaries", tuple(self.boundaries))
        if self.step_log is not None and not (isinstance(self.step_log, str) and self.step_log):
            raise ConfigError(f"autellix.step_log must be a file path, got {self.step_log!r}")
        if self.quanta is not None:
            if isinstance(self.quanta, (str, bytes)) or not hasattr(self.quanta, "__iter__"):
                raise ConfigError(f"autellix.quanta must be a list of numbers, got {self.quanta!r}")
            object.__setattr__(self, "quanta", tuple(self.quanta))
        for name in ("beta", "starvation_floor", "table_ttl", "expire_interval"):
            v = getattr(self, name)
            if (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                    or v <= 0):
                raise ConfigError(f"autellix.{name} must be a positive number, got {v!r}")
        for name in ("schedule_interval", "table_max_entries"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"autellix.{name} must be an integer >= 1, got {v!r}")
        for name in ("starvation", "preempt"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"autellix.{name} must be true or false, "
                                  f"got {getattr(self, name)!r}")
        try:
            self.queue_config()  # validates boundaries/quanta/beta/floor
        except (TypeError, ValueError) as e:
            raise ConfigError(f"autellix queue settings: {e}") from None

    def queue_config(self) -> QueueConfig:
        return QueueConfig(boundaries=self.boundaries, quanta=self.quanta, beta=self.beta,
                           starvation_floor=self.starvation_floor, starvation=self.starvation)

    @property
    def reorders(self) -> bool:
        """False for ``fcfs``: vLLM's own order is kept and nothing is preempted for priority."""
        return self.policy != "fcfs"

    @classmethod
    def from_dict(cls, d: dict | None) -> AutellixEngineConfig:
        if d is None:
            return cls()
        if not isinstance(d, dict):
            raise ConfigError(f"additional_config[{CONFIG_KEY!r}] must be a JSON object, "
                              f"got {d!r:.100}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown autellix setting(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(known))}")
        return cls(**d)

    @classmethod
    def from_additional_config(cls, additional: object) -> AutellixEngineConfig:
        """Read ``additional_config["autellix"]`` (absent: defaults)."""
        if not additional:
            return cls()
        if not isinstance(additional, dict):
            additional = getattr(additional, "__dict__", {})
        return cls.from_dict(additional.get(CONFIG_KEY))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["boundaries"] = None if self.boundaries is None else list(self.boundaries)
        d["quanta"] = None if self.quanta is None else list(self.quanta)
        return d
