"""Small helpers shared by the generators: per-program RNGs, ids, validation."""

from __future__ import annotations

import numpy as np

from autellix.config import ConfigError
from autellix.program import Call


def program_rngs(seed: int, n: int) -> list[np.random.Generator]:
    """One independent generator per program, derived from ``default_rng(seed)``.

    Program ``i`` depends only on ``(seed, i)``, so the first 10 programs of
    ``n=1000`` equal those of ``n=10``.
    """
    if n < 0:
        raise ConfigError(f"n must be >= 0, got {n}")
    return np.random.default_rng(seed).spawn(n)


def program_id(name: str, seed: int, i: int) -> str:
    return f"{name}-{seed}-{i}"


def check_positive(**values: float) -> None:
    for key, v in values.items():
        if v is None or v <= 0:
            raise ConfigError(f"{key} must be > 0, got {v}")


def check_non_negative(**values: float) -> None:
    for key, v in values.items():
        if v is None or v < 0:
            raise ConfigError(f"{key} must be >= 0, got {v}")


def context_chain(first: int, observations, outputs, delays,
                  max_context: int | None = None) -> tuple[Call, ...]:
    """A single-threaded agent loop whose context grows by every turn.

    Call ``t`` shares everything before it (all earlier prompts and outputs) and adds
    ``first`` new tokens at ``t = 0``, else ``observations[t]``; it decodes
    ``outputs[t]`` and is issued ``delays[t]`` seconds after its parent (none for the
    first call). With ``max_context``, the chain stops before a call whose prompt
    would exceed it (the first call is always kept)."""
    calls, shared = [], 0
    for t in range(len(outputs)):
        new = first if t == 0 else int(observations[t])
        if t and max_context is not None and shared + new > max_context:
            break
        calls.append(Call(id=f"s{t}", parents=(f"s{t - 1}",) if t else (),
                          shared_prompt_tokens=shared, new_prompt_tokens=new,
                          output_tokens=int(outputs[t]), tool_delay=float(delays[t]) if t else 0.0))
        shared += new + int(outputs[t])
    return tuple(calls)
