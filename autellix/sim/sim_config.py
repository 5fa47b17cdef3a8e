"""Simulator configuration: frozen dataclasses validated on construction.

``EngineConfig`` defaults follow the paper's vLLM-opt setup on one A100-80GB with
Llama-3.1-8B: ``max_num_seqs`` 256 (vLLM's default), a chunked-prefill token budget
of 2048 per step, 16-token KV blocks with automatic prefix caching, and preemption
by recompute (vLLM V1's only mechanism; ``swap`` models the paper's bulk swap).
``kv_capacity_tokens`` of ``None`` takes the profile's capacity.
``chunked_prefill=False`` models vLLM 0.6.1's scheduler (the paper's plain vLLM
baseline, with ``prefix_caching=False``): a step that prefills computes whole
prompts and runs no decodes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from autellix.config import ConfigError, QueueConfig

PREEMPTION_MODES = ("recompute", "swap")


@dataclass(frozen=True)
class EngineConfig:
    profile: str = "a100-80gb-llama-3.1-8b"
    max_num_seqs: int = 256
    max_batched_tokens: int = 2048
    block_size: int = 16
    kv_capacity_tokens: int | None = None
    prefix_caching: bool = True
    chunked_prefill: bool = True
    preemption: str = "recompute"
    schedule_interval: int = 1
    fast_forward: bool = True

    def __post_init__(self) -> None:
        if self.max_num_seqs < 1:
            raise ConfigError("max_num_seqs must be >= 1")
        if self.max_batched_tokens < 1:
            raise ConfigError("max_batched_tokens must be >= 1")
        if self.block_size < 1:
            raise ConfigError("block_size must be >= 1")
        if self.kv_capacity_tokens is not None and self.kv_capacity_tokens < self.block_size:
            raise ConfigError("kv_capacity_tokens must hold at least one block")
        if self.preemption not in PREEMPTION_MODES:
            raise ConfigError(f"preemption must be one of {PREEMPTION_MODES}, "
                              f"got {self.preemption!r}")
        if self.schedule_interval < 1:
            raise ConfigError("schedule_interval must be >= 1 (steps between scheduler runs)")

    def kv_blocks(self, profile) -> int:
        tokens = self.kv_capacity_tokens or profile.kv_capacity_tokens
        return tokens // self.block_size


@dataclass(frozen=True)
class SimConfig:
    policy: str = "atlas"
    balancer: str = "autellix"
    n_engines: int = 1
    engine: EngineConfig = field(default_factory=EngineConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    rate: float = 1.0
    seed: int = 0
    check_invariants: bool = False
    max_sim_time: float | None = None
    # stop once more programs than this are in the system at once (arrived, not
    # finished): an overloaded run whose backlog only grows; the rest is aborted
    max_backlog: int | None = None

    def __post_init__(self) -> None:
        if self.n_engines < 1:
            raise ConfigError("n_engines must be >= 1")
        if not self.rate > 0:
            raise ConfigError(f"arrival rate must be > 0 programs/s, got {self.rate}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["queue"] = self.queue.to_dict()
        return d
