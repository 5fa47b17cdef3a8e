"""Iteration-time cost model: a pure function of the batch (calibration.md §7).

``step_ms = L(N) + c_dec * sum(decode contexts) + c_pf * sum(e_i * s_i)
            + lm_head (once, if any sequence samples)
            + lm_head_per_token * sampling sequences + overhead``

where ``N`` is the number of batched tokens (prefill chunk tokens plus one per
decode), ``L`` interpolates the profiled linear-layer table and uses the fitted
line beyond it, ``e_i``/``s_i`` are a prefill chunk's new tokens and its sequence
length after the chunk. Every constant comes from a profile file in
``autellix/sim/profiles/`` (sources cited inside); none lives in code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from autellix.config import ConfigError

PROFILE_DIR = "profiles"


@dataclass(frozen=True)
class Profile:
    name: str
    gpu: str
    model: str
    table_tokens: tuple[float, ...]
    table_ms: tuple[float, ...]
    fit_a: float
    fit_b: float
    c_dec: float
    c_pf: float
    lm_head_ms: float
    lm_head_ms_per_token: float
    overhead_ms: float
    kv_bytes_per_token: int
    kv_capacity_tokens: int
    swap_gb_per_s: float
    raw: dict

    @classmethod
    def from_dict(cls, d: dict) -> Profile:
        t = d["linear_ms_table"]
        return cls(name=d["name"], gpu=d["gpu"], model=d["model"],
                   table_tokens=tuple(t["tokens"]), table_ms=tuple(t["ms"]),
                   fit_a=d["linear_ms_fit"]["a"], fit_b=d["linear_ms_fit"]["b"],
                   c_dec=d["c_dec_ms_per_ctx_token"], c_pf=d["c_pf_ms_per_e_s"],
                   lm_head_ms=d["lm_head_ms"],
                   lm_head_ms_per_token=d.get("lm_head_ms_per_token", 0.0),
                   overhead_ms=d["overhead_ms"],
                   kv_bytes_per_token=int(d["kv_bytes_per_token"]),
                   kv_capacity_tokens=int(d["kv_capacity_tokens"]),
                   swap_gb_per_s=float(d["swap_gb_per_s"]), raw=d)


def list_profiles() -> list[str]:
    files = resources.files("autellix.sim").joinpath(PROFILE_DIR).iterdir()
    return sorted(f.name[:-5] for f in files if f.name.endswith(".json"))


def load_profile(name_or_path: str) -> Profile:
    p = Path(name_or_path)
    if p.suffix == ".json" and p.is_file():
        return Profile.from_dict(json.loads(p.read_text()))
    f = resources.files("autellix.sim") / PROFILE_DIR / f"{name_or_path}.json"
    if not f.is_file():
        raise ConfigError(f"unknown cost profile {name_or_path!r}; choose one of "
                         f"{', '.join(list_profiles())} or give a .json file")
    return Profile.from_dict(json.loads(f.read_text()))


class CostModel:
    """Step time in seconds from batch features. Pure; cached table lookups."""

    def __init__(self, profile: Profile):
        self.p = profile
        self._tx = np.asarray(profile.table_tokens, dtype=float)
        self._ty = np.asarray(profile.table_ms, dtype=float)
        self._tmax = self._tx[-1]
        self._lin_cache: dict[int, float] = {}

    def linear_ms(self, n_tokens: int) -> float:
        v = self._lin_cache.get(n_tokens)
        if v is None:
            if n_tokens <= self._tmax:
                v = float(np.interp(n_tokens, self._tx, self._ty))
            else:
                v = max(float(self._ty[-1]), self.p.fit_a + self.p.fit_b * n_tokens)
            self._lin_cache[n_tokens] = v
        return v

    def step_seconds(self, prefill_chunks, n_decode: int, decode_ctx: int,
                     n_sampling: int) -> float:
        """``prefill_chunks``: iterable of (new tokens, sequence length after the chunk)."""
        n_tok = n_decode
        pf = 0.0
        for e, s in prefill_chunks:
            n_tok += e
            pf += e * s
        if n_tok == 0:
            return 0.0
        p = self.p
        ms = (self.linear_ms(n_tok) + p.c_dec * decode_ctx + p.c_pf * pf
              + (p.lm_head_ms if n_sampling else 0.0) + p.lm_head_ms_per_token * n_sampling
              + p.overhead_ms)
        return ms / 1000.0

    def decode_run_seconds(self, n_seqs: int, ctx0: int, k: int) -> float:
        """Total time of ``k`` consecutive decode-only steps of ``n_seqs`` sequences whose
        summed attention context is ``ctx0`` in the first step and grows by ``n_seqs`` per step."""
        p = self.p
        base = (self.linear_ms(n_seqs) + p.lm_head_ms + p.lm_head_ms_per_token * n_seqs
                + p.overhead_ms)
        ms = k * base + p.c_dec * (k * ctx0 + n_seqs * k * (k - 1) / 2)
        return ms / 1000.0

    def swap_seconds(self, tokens: int) -> float:
        return tokens * self.p.kv_bytes_per_token / (self.p.swap_gb_per_s * 1e9)

    def single_call_seconds(self, prompt_tokens: int, output_tokens: int) -> float:
        """Service estimate of one call running alone (used by the SRPT oracle)."""
        pre = self.step_seconds([(prompt_tokens, prompt_tokens)], 0, 0, 1)
        return pre + self.decode_run_seconds(1, prompt_tokens + 1, max(0, output_tokens - 1))
