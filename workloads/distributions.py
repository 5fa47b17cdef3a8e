"""Calibrated integer distributions shared by the workload generators.

Every generator draws counts (calls per program, tokens per message) from a
*discrete, clipped lognormal*: ``round(X)`` with ``X ~ LogNormal(mu, sigma)``,
clipped to ``[lo, hi]``. The lognormal keeps the heavy right tail that makes
least-attained-service scheduling matter (see the reference ``lessons.md``);
the clip bounds it at the paper's observed maxima.

``mu`` is not given by hand: :func:`int_lognormal` solves for the ``mu`` whose
*clipped, rounded* distribution has exactly the requested mean, computing the
probability mass function from the normal CDF. Generators then sample from
that pmf, and can use its exact moments (e.g. ``E[n(n-1)/2]``) to calibrate
token sizes analytically instead of by trial runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from autellix.config import ConfigError


def _phi(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF, vectorised (Abramowitz & Stegun 7.1.26 erf, error < 1.5e-7)."""
    x = np.abs(z) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741
                + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-x * x)
    return 0.5 * (1.0 + np.sign(z) * erf)


@dataclass(frozen=True)
class IntDist:
    """A finite distribution on ``values`` with probabilities ``pmf``."""

    values: np.ndarray
    pmf: np.ndarray

    @property
    def mean(self) -> float:
        return float((self.values * self.pmf).sum())

    def expect(self, f) -> float:
        """E[f(n)] for a vectorised function ``f``."""
        return float((np.asarray(f(self.values.astype(float))) * self.pmf).sum())

    def sample(self, rng: np.random.Generator, size: int | None = None):
        """Inverse-CDF draws: one uniform per value, so streams stay reproducible."""
        cdf = self.__dict__.get("_cdf")
        if cdf is None:
            cdf = np.cumsum(self.pmf)
            cdf[-1] = 1.0
            object.__setattr__(self, "_cdf", cdf)
        idx = np.searchsorted(cdf, rng.random(size), side="right")
        out = self.values[np.minimum(idx, len(self.values) - 1)]
        return int(out) if size is None else out.astype(int)


def _log_edges(lo: int, hi: int) -> np.ndarray:
    """log of the rounding boundaries between lo..hi (k rounds to k for x in [k-0.5, k+0.5))."""
    return np.log(np.arange(lo, hi, dtype=float) + 0.5)


def _clipped_pmf(mu: float, sigma: float, log_edges: np.ndarray) -> np.ndarray:
    cdf = _phi((log_edges - mu) / sigma)
    pmf = np.clip(np.diff(cdf, prepend=0.0, append=1.0), 0.0, None)
    return pmf / pmf.sum()


@lru_cache(maxsize=256)
def int_lognormal(mean: float, sigma: float, lo: int = 1, hi: int = 10**6) -> IntDist:
    """Clipped, rounded lognormal on ``[lo, hi]`` whose mean is exactly ``mean``."""
    if not lo <= mean <= hi:
        raise ConfigError(f"mean {mean} must lie within [lo={lo}, hi={hi}]")
    if sigma <= 0:
        raise ConfigError(f"sigma must be > 0, got {sigma}")
    if lo == hi:
        return IntDist(np.array([lo]), np.array([1.0]))
    values, log_edges = np.arange(lo, hi + 1), _log_edges(lo, hi)
    fvalues = values.astype(float)
    a, b = -10.0, math.log(hi) + 10.0
    for _ in range(60):  # bisection: the clipped mean grows monotonically with mu
        mid = 0.5 * (a + b)
        if float((fvalues * _clipped_pmf(mid, sigma, log_edges)).sum()) < mean:
            a = mid
        else:
            b = mid
    return IntDist(values, _clipped_pmf(0.5 * (a + b), sigma, log_edges))


def lognormal_seconds(rng: np.random.Generator, median: float, sigma: float,
                      cap: float, size: int | None = None):
    """Continuous delays: ``LogNormal(log(median), sigma)`` capped at ``cap``; 0 if median is 0."""
    if median <= 0:
        return 0.0 if size is None else np.zeros(size)
    x = np.minimum(rng.lognormal(math.log(median), sigma, size=size), cap)
    return float(x) if size is None else x
