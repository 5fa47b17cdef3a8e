"""Small helpers shared by the generators: per-program RNGs, ids, validation."""

from __future__ import annotations

import numpy as np


def program_rngs(seed: int, n: int) -> list[np.random.Generator]:
    """One independent generator per program, derived from ``default_rng(seed)``.

    Program ``i`` depends only on ``(seed, i)``, so the first 10 programs of
    ``n=1000`` equal those of ``n=10``.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return np.random.default_rng(seed).spawn(n)


def program_id(name: str, seed: int, i: int) -> str:
    return f"{name}-{seed}-{i}"


def check_positive(**values: float) -> None:
    for key, v in values.items():
        if v is None or v <= 0:
            raise ValueError(f"{key} must be > 0, got {v}")


def check_non_negative(**values: float) -> None:
    for key, v in values.items():
        if v is None or v < 0:
            raise ValueError(f"{key} must be >= 0, got {v}")
