"""``longctx``: long-context map-reduce agents (document or repository analysis).

A stress workload for KV pressure, not a trace the paper used. Each program reads a
long document, fans out over it, and joins:

* ``read``: the document (lognormal, mean ``document_mean`` = 56k tokens, sigma 0.4,
  clipped to [32k, 100k]) plus the task; it decodes a plan (mean 200 tokens);
* ``map0..map{k-1}``: ``k`` parallel calls (uniform in [2, ``max_fanout``], mean 5),
  each sharing the whole document and plan and adding its own question (mean 150
  tokens), decoding a partial answer (mean 250);
* ``reduce``: joins every map; it shares its first parent's context (document, plan,
  question, answer) and adds the other maps' answers as new tokens; it decodes the
  result (mean 300);
* optionally ``follow`` (probability ``follow_p`` = 0.5): one more turn on the
  reduce's context.

So almost every call carries 35k-100k tokens of context, shared within a program
(prefix caching matters) but not across programs, and a 430k-token KV cache holds
only a handful of programs at once. Tool delays between calls: lognormal, median
0.5 s, sigma 1.0, capped at 30 s.
"""

from __future__ import annotations

from autellix.config import ConfigError
from autellix.program import Call, Program

from .common import check_non_negative, check_positive, program_id, program_rngs
from .distributions import int_lognormal, lognormal_seconds

NAME = "longctx"
DESCRIPTION = "Long-context map-reduce: 32k-100k-token documents, fan-out 2-8 then a join"


def generate(n: int, seed: int = 0, *, document_mean: float = 56_000.0, max_fanout: int = 8,
             follow_p: float = 0.5, tool_delay_median: float = 0.5,
             tool_delay_cap: float = 30.0) -> list[Program]:
    check_positive(document_mean=document_mean, max_fanout=max_fanout)
    check_non_negative(follow_p=follow_p, tool_delay_median=tool_delay_median,
                       tool_delay_cap=tool_delay_cap)
    if max_fanout < 2:
        raise ConfigError(f"max_fanout must be >= 2, got {max_fanout}")
    doc = int_lognormal(document_mean, 0.4, 32_000, 100_000)
    plan, question = int_lognormal(200, 0.5, 16, 2000), int_lognormal(150, 0.5, 16, 2000)
    answer, result = int_lognormal(250, 0.6, 16, 4000), int_lognormal(300, 0.6, 16, 4000)
    programs = []
    for i, rng in enumerate(program_rngs(seed, n)):
        k = int(rng.integers(2, max_fanout + 1))
        d, p = doc.sample(rng), plan.sample(rng)
        qs, ans = question.sample(rng, k), answer.sample(rng, k)
        delays = lognormal_seconds(rng, tool_delay_median, 1.0, tool_delay_cap, k + 2)
        calls = [Call(id="read", new_prompt_tokens=d, output_tokens=p)]
        for j in range(k):
            calls.append(Call(id=f"map{j}", parents=("read",), shared_prompt_tokens=d + p,
                              new_prompt_tokens=int(qs[j]), output_tokens=int(ans[j]),
                              tool_delay=float(delays[j])))
        ctx = d + p + int(qs[0]) + int(ans[0])
        calls.append(Call(id="reduce", parents=tuple(f"map{j}" for j in range(k)),
                          shared_prompt_tokens=ctx, new_prompt_tokens=int(sum(ans[1:])) + 32,
                          output_tokens=result.sample(rng), tool_delay=float(delays[k])))
        if rng.random() < follow_p:
            r = calls[-1]
            calls.append(Call(id="follow", parents=("reduce",),
                              shared_prompt_tokens=r.prompt_tokens + r.output_tokens,
                              new_prompt_tokens=question.sample(rng),
                              output_tokens=answer.sample(rng), tool_delay=float(delays[k + 1])))
        programs.append(Program(id=program_id(NAME, seed, i), workload=NAME, calls=tuple(calls)))
    return programs
