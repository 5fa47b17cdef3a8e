"""Fit the simulator's step-time cost model to an engine's own step records.

The plug-in's step log (:mod:`autellix.vllm.step_log`) gives, per engine step, its
duration on the engine's clock and its batch composition. The simulator's model
(:mod:`autellix.sim.costmodel`) is linear in those features::

    step_ms = overhead + b * N + c_dec * decode_context + c_pf * prefill_attention
              + lm_per_token * sampled

with ``N`` = prefill tokens + decodes and ``decode_context`` = sum of decode
contexts (+1 each, as the simulator counts the token being decoded). The fixed LM
head cost is almost always paid (some sequence samples in nearly every step), so it
is folded into ``overhead``. The fit is least squares with every coefficient held
>= 0 (a negative cost would be nonsense the simulator then extrapolates): a
coefficient that comes out negative is dropped and the rest refitted.

The fit's error is *held out*: the coefficients reported are fitted on every step,
but the error comes from fitting every other step and predicting the rest, per step
(median and p90 of |predicted - measured| / measured) and as the total time of the
held-out steps, which is what a simulation sums. (On the fitted steps themselves
least squares with an intercept makes the total error zero by construction.)
Pure: numpy only, no vLLM.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from autellix.program import TraceError

FEATURES = ("overhead", "per_token", "c_dec", "c_pf", "per_sampled")


def read_steps(path, offset: int = 0) -> list[dict]:
    """Step lines (those with ``dt``) of a step log, from byte ``offset`` on (what an
    engine wrote after that point); event lines are skipped."""
    steps = []
    try:
        with open(path, "rb") as fp:
            fp.seek(offset)
            text = fp.read().decode()
    except OSError as e:
        raise TraceError(f"cannot read the step log {path}: {e.strerror or e}") from None
    where = str(path) if not offset else f"{path} (from byte {offset})"
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise TraceError(f"{where}:{i}: not a JSON line") from None
        if "dt" in rec:
            if "prefill_attention" not in rec:
                raise TraceError(f"{where}:{i}: a step record without prefill_attention "
                                 "(written by an older autellix)")
            steps.append(rec)
    return steps


def _row(s: dict) -> list[float]:
    n_tok = s["prefill_tokens"] + s["decode_seqs"]
    return [1.0, float(n_tok), float(s["context_tokens"] + s["decode_seqs"]),
            float(s["prefill_attention"]), float(s["sampled"])]


def _nnls(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    active = list(range(x.shape[1]))
    coef = np.zeros(x.shape[1])
    while active:
        sol, *_ = np.linalg.lstsq(x[:, active], y, rcond=None)
        if (sol >= 0).all():
            coef[active] = sol
            return coef
        active.pop(int(np.argmin(sol)))  # drop the most negative and refit
    return coef


@dataclass(frozen=True)
class Fit:
    coef: dict               # FEATURES -> ms per unit
    steps: int
    median_rel_error: float  # held out (see the module docstring)
    p90_rel_error: float
    total_rel_error: float   # (sum predicted - sum measured) / sum measured, held out

    def predict_ms(self, s: dict) -> float:
        return float(np.dot([self.coef[f] for f in FEATURES], _row(s)))

    def to_dict(self) -> dict:
        return {"coefficients_ms": self.coef, "steps": self.steps,
                "median_rel_error": self.median_rel_error,
                "p90_rel_error": self.p90_rel_error, "total_rel_error": self.total_rel_error}


def fit_steps(steps: list[dict], skip: int = 0) -> Fit:
    """Fit the model to ``steps`` (after the first ``skip``: a fresh engine's first
    steps include kernel warm-up)."""
    steps = steps[skip:]
    if len(steps) < len(FEATURES) * 2:
        raise TraceError(f"{len(steps)} step records are too few to fit "
                         f"{len(FEATURES)} coefficients")
    x = np.array([_row(s) for s in steps])
    y = np.array([s["dt"] * 1e3 for s in steps])
    coef = _nnls(x, y)
    train, test = slice(0, None, 2), slice(1, None, 2)  # held out: every other step
    pred = x[test] @ _nnls(x[train], y[train])
    y = y[test]
    rel = np.abs(pred - y) / np.maximum(y, 1e-9)
    return Fit(coef=dict(zip(FEATURES, map(float, coef), strict=True)), steps=len(steps),
               median_rel_error=float(np.median(rel)),
               p90_rel_error=float(np.percentile(rel, 90)),
               total_rel_error=float((pred.sum() - y.sum()) / y.sum()))


def profile_dict(fit: Fit, *, name: str, model: str, device: str, kv_capacity_tokens: int,
                 kv_bytes_per_token: int = 0, swap_gb_per_s: float = 1.0,
                 max_tokens: int = 8192, source: str = "") -> dict:
    """A profile file (the format of ``autellix/sim/profiles/*.json``) from a fit."""
    if kv_capacity_tokens < 1:
        raise TraceError("the profile needs the engine's KV capacity in tokens (> 0)")
    b = fit.coef["per_token"]
    return {
        "name": name, "gpu": device, "model": model,
        "source": source or "autellix profile: least squares on the plug-in's step log",
        "linear_ms_table": {"tokens": [1, max_tokens], "ms": [b, b * max_tokens]},
        "linear_ms_fit": {"a": 0.0, "b": b},
        "c_dec_ms_per_ctx_token": fit.coef["c_dec"], "c_pf_ms_per_e_s": fit.coef["c_pf"],
        "lm_head_ms": 0.0, "lm_head_ms_per_token": fit.coef["per_sampled"],
        "overhead_ms": fit.coef["overhead"],
        "kv_bytes_per_token": int(kv_bytes_per_token),
        "kv_capacity_tokens": int(kv_capacity_tokens),
        "swap_gb_per_s": float(swap_gb_per_s),
        "fit": fit.to_dict(),
    }


def fmt_error(fit: Fit) -> str:
    def pct(v: float) -> str:
        return f"{v:.1%}" if math.isfinite(v) else "n/a"

    return (f"{fit.steps} steps; held-out error per step: median "
            f"{pct(fit.median_rel_error)}, p90 {pct(fit.p90_rel_error)}; on their total "
            f"time {fit.total_rel_error:+.1%}")
