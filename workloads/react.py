"""``react``: BFCL-like ReAct tool loops (single-threaded chains).

Sources (``shared/reference/workloads.md`` §1, §3; paper §6.1):

* calls per program: paper mean 10.75, max 70. BFCL v4 multi-turn entries
  have 3.7-4.7 user turns and about 5.7 ground-truth function calls; the
  paper's count presumably includes every LLM step. A narrow N(11, 4) (as one
  peer used) removes the tail that PLAS needs, so we draw a discrete lognormal
  (sigma 0.8, median 8) clipped to [1, 70] with mean 10.75; about 0.3% of
  programs sit at 70.
* prompt: **735.06 tokens/call is the whole prompt** (shared + new), mostly
  repeated context. Call 0's prompt is the program's base context (system
  prompt, tool schemas and the user's request). Every later call repeats the
  previous call's prompt and output (shared) and appends a short tool
  observation or follow-up user message (new; lognormal, mean 20 tokens;
  BFCL's simulated tools return small JSON objects). The base-context mean is
  *solved* so the expected total prompt per call equals the target:
  ``base = 735.06 - (output_mean + observation_mean) * E[n(n-1)/2] / E[n]``,
  about 236 tokens with the defaults (a compact tool listing).
* output tokens per call: paper mean 34.14 (a function call or a short
  answer); lognormal sigma 0.6 clipped to [1, 512].
* tool delay: BFCL's tools are simulated Python classes and record no time, so
  latency is a modelling choice: lognormal with median ``tool_delay_median``
  (0.5 s) and sigma 1.0, capped at 30 s, before every call after the first.
  Set the median to 0 for back-to-back replay like the paper.
"""

from __future__ import annotations

from autellix.config import ConfigError
from autellix.program import Program

from .common import check_non_negative, check_positive, context_chain, program_id, program_rngs
from .distributions import int_lognormal, lognormal_seconds

NAME = "react"
DESCRIPTION = ("BFCL-like tool loops: chains, mean 10.8 calls (tail to 70), "
               "~735 prompt / 34 out, tool delays")
# `autellix compare`'s default steady-state window here (arrivals at capacity), and
# the arms its doubling was measured on (workloads/registry.py): it moves no ratio by
# more than 6.1%, the ones over vLLM included (results/convergence/).
STEADY_WINDOW = 150
STEADY_CHECKED = ("vllm", "vllm-opt", "mlfq", "plas", "srpt")


def base_context_mean(calls_mean: float, calls_sigma: float, max_calls: int,
                      prompt_mean: float, output_mean: float, observation_mean: float) -> float:
    """Mean base context that makes the expected total prompt per call ``prompt_mean``."""
    calls = int_lognormal(calls_mean, calls_sigma, 1, int(max_calls))
    steps_before = calls.expect(lambda n: n * (n - 1) / 2) / calls.mean
    return prompt_mean - (output_mean + observation_mean) * steps_before


def generate(n: int, seed: int = 0, *, calls_mean: float = 10.75, calls_sigma: float = 0.8,
             max_calls: int = 70, prompt_mean: float = 735.06, output_mean: float = 34.14,
             output_sigma: float = 0.6, observation_mean: float = 20.0,
             tool_delay_median: float = 0.5, tool_delay_sigma: float = 1.0,
             tool_delay_cap: float = 30.0) -> list[Program]:
    check_positive(calls_mean=calls_mean, prompt_mean=prompt_mean, output_mean=output_mean,
                   observation_mean=observation_mean)
    check_non_negative(tool_delay_median=tool_delay_median, tool_delay_cap=tool_delay_cap)
    base_mean = base_context_mean(calls_mean, calls_sigma, max_calls, prompt_mean,
                                  output_mean, observation_mean)
    if base_mean < 32:
        raise ConfigError(f"react: prompt_mean={prompt_mean} is too small for the history that "
                          f"calls_mean={calls_mean} and observation/output sizes build up "
                          f"(base context would be {base_mean:.0f} tokens); raise prompt_mean or "
                          "lower calls_mean/observation_mean")
    calls_dist = int_lognormal(calls_mean, calls_sigma, 1, int(max_calls))
    base_dist = int_lognormal(base_mean, 0.35, 16, 8192)
    obs_dist = int_lognormal(observation_mean, 0.8, 1, 1024)
    out_dist = int_lognormal(output_mean, output_sigma, 1, 512)
    programs = []
    for i, rng in enumerate(program_rngs(seed, n)):
        k = calls_dist.sample(rng)
        base = base_dist.sample(rng)
        obs = obs_dist.sample(rng, k)
        out = out_dist.sample(rng, k)
        delay = lognormal_seconds(rng, tool_delay_median, tool_delay_sigma, tool_delay_cap, k)
        programs.append(Program(id=program_id(NAME, seed, i), workload=NAME,
                                calls=context_chain(base, obs, out, delay)))
    return programs
