"""Small statistics for repeated runs: mean with a Student-t 95% confidence interval.

``mean_ci`` is what ``--seeds K`` reports for every ratio: the mean over seeds and
the interval ``mean +/- t(0.975, K-1) * sd / sqrt(K)``. The t quantiles are the
standard table values (scipy is not a core dependency); past 30 degrees of freedom
the normal quantile 1.96 is within 2% of t. One seed has no interval (``lo = hi =
nan``). ``rank_z`` (Mann-Whitney U, normal approximation) is the two-sample test
the steady-state detector uses: rank-based, so a few heavy-tailed programs cannot
fake a trend, as they can with Welch's t (kept for reference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# two-sided 95% Student-t quantiles t(0.975, df), df = 1..30
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: int) -> float:
    if df < 1:
        raise ValueError("need at least one degree of freedom")
    return _T975[df - 1] if df <= len(_T975) else 1.96


@dataclass(frozen=True)
class Estimate:
    mean: float
    lo: float
    hi: float
    n: int

    def to_dict(self) -> dict:
        return {"mean": self.mean, "ci95": [self.lo, self.hi], "n": self.n}

    def overlaps(self, other: Estimate) -> bool:
        """True when the two 95% intervals overlap (or either has none)."""
        if any(math.isnan(x) for x in (self.lo, self.hi, other.lo, other.hi)):
            return True
        return self.lo <= other.hi and other.lo <= self.hi


def mean_ci(xs) -> Estimate:
    vals = [float(x) for x in xs if x is not None and not math.isnan(float(x))]
    n = len(vals)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    m = sum(vals) / n
    if n == 1 or any(math.isinf(v) for v in vals):
        return Estimate(m, math.nan, math.nan, n)
    sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (n - 1))
    half = t975(n - 1) * sd / math.sqrt(n)
    return Estimate(m, m - half, m + half, n)


def welch_t(a, b) -> float:
    """Welch's t for mean(b) - mean(a); 0 when either sample has fewer than 2 values."""
    a, b = list(a), list(b)
    if len(a) < 2 or len(b) < 2:
        return 0.0
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    va = sum((x - ma) ** 2 for x in a) / (len(a) - 1)
    vb = sum((x - mb) ** 2 for x in b) / (len(b) - 1)
    se = math.sqrt(va / len(a) + vb / len(b))
    if se == 0:
        return 0.0 if mb == ma else math.copysign(math.inf, mb - ma)
    return (mb - ma) / se


def rank_z(a, b) -> float:
    """Mann-Whitney z for "b tends to exceed a" (normal approximation, mid-ranks for ties);
    0 when either sample is empty."""
    a, b = list(a), list(b)
    na, nb = len(a), len(b)
    if not na or not nb:
        return 0.0
    pooled = sorted([(x, 0) for x in a] + [(x, 1) for x in b])
    ranks_b, i = 0.0, 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        mid = (i + j) / 2 + 1
        ranks_b += mid * sum(1 for k in range(i, j + 1) if pooled[k][1] == 1)
        i = j + 1
    u = ranks_b - nb * (nb + 1) / 2
    sd = math.sqrt(na * nb * (na + nb + 1) / 12)
    return (u - na * nb / 2) / sd
