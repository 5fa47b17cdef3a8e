"""Program arrival times, shared by the simulator and ``autellix replay``.

One function, so that for the same seed and rate both engines see the same
schedule, not one shifted by a random gap: a Poisson process at ``rate`` programs/s
whose first program arrives at t = 0 (``numpy.random.default_rng(seed)`` draws ``n``
exponential gaps; the first is dropped). ``rate = inf`` puts every program at t = 0
(the paper's offline batch).
"""

from __future__ import annotations

import math

import numpy as np

from autellix.config import ConfigError


def poisson_arrivals(n: int, rate: float, seed: int) -> list[float]:
    if not rate > 0:
        raise ConfigError(f"rate must be > 0 programs/s (inf: all at once), got {rate}")
    if math.isinf(rate):
        return [0.0] * n
    gaps = np.random.default_rng(seed).exponential(1.0 / rate, size=n)
    return [0.0] + np.cumsum(gaps[1:]).tolist() if n else []
