"""``swe``: SWE-agent-like coding-agent trajectories (single-threaded chains).

Autellix did not evaluate a SWE workload; this one follows public trajectory
sets (``shared/reference/workloads.md`` §5). ``nebius/SWE-agent-trajectories``
(80,036 trajectories) has mean 26.4 turns and max 408; SWE-smith 30.2 / 151,
SWE-Gym 18.9 / 50. Assumptions, each a parameter:

* calls per program: discrete lognormal, mean 26.4 (nebius), sigma 0.7,
  clipped to [2, 200]; about 18% of programs take 40+ calls.
* call 0's prompt: system prompt, command docs, a demonstration and the issue
  text, lognormal with mean ``first_prompt_mean`` (3000 tokens, sigma 0.35).
* every later call repeats the whole previous prompt and output (shared) and
  appends the tool observation (new): file views, edits, search hits and test
  logs, lognormal with mean ``observation_mean`` (450 tokens) and sigma 1.2
  (long test logs are the tail), clipped to 16k. The prompt therefore grows
  from thousands to tens of thousands of tokens. SWE-agent's option to elide
  old observations is not modelled.
* output tokens: a thought plus one command, mean 180, sigma 0.6.
* tool delay before every call after the first: commands range from ``ls``
  to full test runs; lognormal median 1.0 s, sigma 1.3 (mean about 2.3 s),
  capped at 300 s. No recorded timings in these datasets.
* a trajectory stops early once the next prompt would exceed
  ``max_context_tokens`` (128k), like SWE-agent's ``exit_context``.

The expected prompt per call is ``first_prompt_mean + (output_mean +
observation_mean) * E[n(n-1)/2] / E[n]``, about 16k tokens with the defaults
(:func:`expected_prompt_mean`); :data:`stats.TARGETS` records that figure.
"""

from __future__ import annotations

from autellix.program import Program

from .common import check_non_negative, check_positive, context_chain, program_id, program_rngs
from .distributions import int_lognormal, lognormal_seconds

NAME = "swe"
DESCRIPTION = ("SWE-agent-like repair loops: chains, mean 26 calls (tail to 200), "
               "prompts growing to 10k+ tokens")


def expected_prompt_mean(calls_mean: float = 26.4, calls_sigma: float = 0.7, max_calls: int = 200,
                         first_prompt_mean: float = 3000.0, output_mean: float = 180.0,
                         observation_mean: float = 450.0) -> float:
    """Expected total prompt tokens per call, ignoring the context cap."""
    calls = int_lognormal(calls_mean, calls_sigma, 2, int(max_calls))
    steps_before = calls.expect(lambda n: n * (n - 1) / 2) / calls.mean
    return first_prompt_mean + (output_mean + observation_mean) * steps_before


def generate(n: int, seed: int = 0, *, calls_mean: float = 26.4, calls_sigma: float = 0.7,
             max_calls: int = 200, first_prompt_mean: float = 3000.0,
             observation_mean: float = 450.0, output_mean: float = 180.0,
             tool_delay_median: float = 1.0, tool_delay_sigma: float = 1.3,
             tool_delay_cap: float = 300.0, max_context_tokens: int = 128_000) -> list[Program]:
    check_positive(calls_mean=calls_mean, first_prompt_mean=first_prompt_mean,
                   observation_mean=observation_mean, output_mean=output_mean,
                   max_context_tokens=max_context_tokens)
    check_non_negative(tool_delay_median=tool_delay_median, tool_delay_cap=tool_delay_cap)
    calls_dist = int_lognormal(calls_mean, calls_sigma, 2, int(max_calls))
    first_dist = int_lognormal(first_prompt_mean, 0.35, 64, 32768)
    obs_dist = int_lognormal(observation_mean, 1.2, 1, 16384)
    out_dist = int_lognormal(output_mean, 0.6, 8, 4096)
    programs = []
    for i, rng in enumerate(program_rngs(seed, n)):
        k = calls_dist.sample(rng)
        first = first_dist.sample(rng)
        obs = obs_dist.sample(rng, k)
        out = out_dist.sample(rng, k)
        delay = lognormal_seconds(rng, tool_delay_median, tool_delay_sigma, tool_delay_cap, k)
        programs.append(Program(id=program_id(NAME, seed, i), workload=NAME,
                                calls=context_chain(first, obs, out, delay, max_context_tokens)))
    return programs
