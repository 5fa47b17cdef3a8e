"""Engine capacity and offered load, from the cost model.

A program's *work* is the engine time it needs when the engine runs at full batch
efficiency: every decode token costs ``step(S decodes) / S`` (``S`` =
``max_num_seqs``, at the workload's mean context), every new prompt token costs a
chunk's linear-layer time per token at the step token budget (shared context is
assumed served from the prefix cache). *Capacity* is ``n_engines / mean work``
programs/s and *load* is ``rate / capacity``: "80% load" is arrivals at 0.8 x
capacity. Dependencies and tool delays add latency but not work, so long critical
paths can keep latency high far below full load; the batch limit is what makes
calls queue, and queueing is what scheduling can change.
"""

from __future__ import annotations

from autellix.config import ConfigError
from autellix.sim.costmodel import CostModel, load_profile
from autellix.sim.sim_config import SimConfig


def mean_work(programs, cfg: SimConfig) -> float:
    cost = CostModel(load_profile(cfg.engine.profile))
    calls = [c for p in programs for c in p.calls]
    if not calls:
        raise ConfigError("no calls")
    s = cfg.engine.max_num_seqs
    ctx = sum(c.prompt_tokens + c.output_tokens / 2 for c in calls) / len(calls)
    per_decode = cost.step_seconds([], s, int(s * ctx), s) / s
    budget = cfg.engine.max_batched_tokens
    per_prefill = cost.step_seconds([(budget, budget)], 0, 0, 1) / budget
    total = sum(c.output_tokens * per_decode + c.new_prompt_tokens * per_prefill for c in calls)
    return total / len(programs)


def estimate_capacity(programs, cfg: SimConfig) -> float:
    """Programs/s the configured cluster can serve at full batch efficiency."""
    return cfg.n_engines / mean_work(programs, cfg)


def rate_for_load(programs, cfg: SimConfig, load: float) -> float:
    if not load > 0:
        raise ConfigError("load must be > 0")
    return load * estimate_capacity(programs, cfg)
