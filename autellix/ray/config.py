"""Settings of a Ray Serve deployment of autellix: one frozen dataclass, checked at once.

Ray-free, so ``autellix serve --backend ray`` rejects a bad setting before it
starts or joins a cluster.

* ``replicas`` 2: vLLM replicas, each a vLLM OpenAI server with the Autellix
  scheduler (:mod:`autellix.ray.engine`).
* ``replica_cpus`` 1.0: Ray CPUs reserved per replica. A tiny CPU model needs
  less; a real model on a GPU node also wants ``replica_gpus`` 1.
* ``balancer`` "autellix": the router's rule (:mod:`autellix.balancer`).
* ``engine`` holds :func:`autellix.vllm.launch.launch_engines`' settings (policy,
  model, max_num_seqs, max_model_len, kv_cache_bytes, queue, served_model_name),
  passed to every replica as they are, so a replica runs exactly what
  ``autellix serve`` would run on one machine.
* ``read_timeout`` 600 s, as the gateway: the longest silence from an engine.
* ``state_key``: names the router's state shared by the ingress and the router
  in the ingress's process (:func:`autellix.ray.routing.shared_state`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from autellix.balancer import BALANCERS
from autellix.config import ConfigError

ENGINE_KEYS = ("policy", "model", "max_num_seqs", "max_model_len", "kv_cache_bytes", "queue",
               "served_model_name", "vllm_policy", "extra_args")


@dataclass(frozen=True)
class RayServeConfig:
    replicas: int = 2
    balancer: str = "autellix"
    replica_cpus: float = 1.0
    replica_gpus: float = 0.0
    engine: dict = field(default_factory=dict)
    read_timeout: float = 600.0
    chars_per_token: float = 4.0
    ttl: float = 600.0
    max_entries: int = 100_000
    state_key: str = "autellix-engine"
    app_name: str = "autellix"
    route_prefix: str = "/"
    program_header: str = "x-autellix-program"
    thread_header: str = "x-autellix-thread"

    def __post_init__(self) -> None:
        if not (isinstance(self.replicas, int) and self.replicas >= 1):
            raise ConfigError(f"replicas must be an integer >= 1, got {self.replicas!r}")
        if self.balancer not in BALANCERS:
            raise ConfigError(f"unknown balancer {self.balancer!r}; choose one of "
                              f"{', '.join(BALANCERS)}")
        for name in ("replica_cpus", "replica_gpus"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0")
        for name in ("read_timeout", "chars_per_token", "ttl"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0")
        unknown = sorted(set(self.engine) - set(ENGINE_KEYS))
        if unknown:
            raise ConfigError(f"unknown engine setting(s) {', '.join(unknown)}; "
                              f"known: {', '.join(ENGINE_KEYS)}")
        self.policy  # noqa: B018 - validates the policy name now

    @property
    def policy(self) -> str:
        from autellix.vllm.launch import engine_policies

        policy = self.engine.get("policy", "plas")
        if policy not in engine_policies():
            raise ConfigError(f"unknown engine policy {policy!r}; choose one of "
                              f"{', '.join(engine_policies())}")
        return policy

    def router_kwargs(self) -> dict:
        return {"state_key": self.state_key, "balancer": self.balancer,
                "n_replicas": self.replicas, "ttl": self.ttl, "max_entries": self.max_entries}

    def to_dict(self) -> dict:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.__dict__.items()}
