"""``mcts``: LATS-like tree search on HotpotQA (multi-threaded DAGs).

Sources (``shared/reference/workloads.md`` §1, §4; paper §6.1): LATS runs
``--n_generate_sample 5`` with a value call per child, self-reflection, depth
limit 7 and up to 50 iterations; the paper reports 159.71 calls/program (up to
about 400), 467.24 prompt and 72.64 output tokens per call. No traces exist,
so the DAG is synthesized. One *iteration* is ``2 + 2 * fanout`` calls (12):

* ``E``  expand: extends the selected node's trajectory (parents: previous
  iteration's join). Prompt = base context ``B`` (instructions + question) +
  trajectory ``L`` of the selected node; it shares ``B`` with the join before it.
* ``G1..G5`` generate children in parallel (parent ``E``): each repeats ``E``'s
  prompt and output (shared) and adds a short sampling instruction (new).
* ``V1..V5`` value calls (parent ``Gj``): repeat ``Gj``'s context, add a value
  prompt. Each waits a tool delay first: the environment step (Wikipedia
  search/lookup) for the child's action, lognormal median 0.3 s, sigma 0.8,
  capped at 10 s (no recorded timings exist).
* ``J`` join/reflection (parents: all ``Vj``): shares ``B + L`` with ``V1`` and
  adds the five children and a reflection instruction. The next iteration
  depends on it.

The selected node's depth at iteration ``i`` is uniform on
``0..min(i, depth_limit - 1)`` (nodes at the depth limit are not expanded) and
its trajectory costs ``step_mean`` tokens per level. Iterations per program are
a discrete lognormal (sigma 0.6) clipped to ``[1, max_iterations]`` (33, so at
most 396 calls; programs that never find an answer use the whole budget) with
mean ``calls_mean / 12``. Output sizes keep the role ratios E:G:V:J =
80:95:40:120, scaled so the mean per call is ``output_mean``. The base context
mean is solved analytically so the expected total prompt per call is
``prompt_mean`` (about 150 tokens of instructions with the defaults).
"""

from __future__ import annotations

import numpy as np

from autellix.config import ConfigError
from autellix.program import Call, Program

from .common import check_non_negative, check_positive, program_id, program_rngs
from .distributions import int_lognormal, lognormal_seconds

NAME = "mcts"
DESCRIPTION = ("LATS-like tree search DAGs: fan-out 5 with joins, mean 160 calls, "
               "~467 prompt / 73 out")
# `autellix compare`'s default steady-state window here (arrivals at capacity), and
# the arms its doubling was measured on (workloads/registry.py). The others' ratios
# move by at most 7.9%; the ratios over vLLM by up to 19%, as every capacity falls
# toward the engine's full-batch capacity, vLLM's by a different amount
# (results/convergence/, x-vllm-stretched/, detector/README.md); compare says so.
STEADY_WINDOW = 150
STEADY_CHECKED = ("vllm", "vllm-opt", "mlfq", "plas", "atlas", "srpt")
STEADY_UNSETTLED = ("vllm",)

ROLE_OUTPUT = {"E": 80.0, "G": 95.0, "V": 40.0, "J": 120.0}
GENERATE_NEW, VALUE_NEW, JOIN_NEW = 20.0, 60.0, 40.0


def _iteration_dist(calls_mean: float, fanout: int, max_iterations: int):
    per_iter = 2 + 2 * fanout
    return int_lognormal(calls_mean / per_iter, 0.6, 1, int(max_iterations))


def _output_means(output_mean: float, fanout: int) -> dict[str, float]:
    r = ROLE_OUTPUT
    per_iter = (r["E"] + fanout * (r["G"] + r["V"]) + r["J"]) / (2 + 2 * fanout)
    return {k: v * output_mean / per_iter for k, v in r.items()}


def base_context_mean(calls_mean: float, fanout: int, max_iterations: int, depth_limit: int,
                      prompt_mean: float, output_mean: float, step_mean: float) -> float:
    """Mean of ``B`` that makes the expected total prompt per call ``prompt_mean``."""
    f, o = fanout, _output_means(output_mean, fanout)
    extra = ((2 * f * (o["E"] + GENERATE_NEW) + 2 * f * o["G"] + f * VALUE_NEW + JOIN_NEW)
             / (2 + 2 * f))
    iters = _iteration_dist(calls_mean, fanout, max_iterations)
    cap = depth_limit - 1
    depth_sum = iters.expect(
        lambda n: np.array([sum(min(i, cap) / 2 for i in range(int(k))) for k in n]))
    return prompt_mean - extra - step_mean * depth_sum / iters.mean


def generate(n: int, seed: int = 0, *, calls_mean: float = 159.71, fanout: int = 5,
             max_iterations: int = 33, depth_limit: int = 7, prompt_mean: float = 467.24,
             output_mean: float = 72.64, step_mean: float = 50.0,
             tool_delay_median: float = 0.3, tool_delay_sigma: float = 0.8,
             tool_delay_cap: float = 10.0) -> list[Program]:
    check_positive(calls_mean=calls_mean, fanout=fanout, max_iterations=max_iterations,
                   depth_limit=depth_limit, prompt_mean=prompt_mean, output_mean=output_mean)
    check_non_negative(step_mean=step_mean, tool_delay_median=tool_delay_median)
    if not 2 + 2 * fanout <= calls_mean <= (2 + 2 * fanout) * max_iterations:
        raise ConfigError(f"mcts: calls_mean={calls_mean} must lie between one iteration "
                          f"({2 + 2 * fanout} calls) and "
                          f"max_iterations={max_iterations} iterations")
    base_mean = base_context_mean(calls_mean, fanout, max_iterations, depth_limit,
                                  prompt_mean, output_mean, step_mean)
    if base_mean < 16:
        raise ConfigError(f"mcts: prompt_mean={prompt_mean} leaves no room for a base context "
                          f"({base_mean:.0f} tokens); raise prompt_mean or lower step_mean")
    iters_dist = _iteration_dist(calls_mean, fanout, max_iterations)
    base_dist = int_lognormal(base_mean, 0.3, 8, 8192)
    step_dist = int_lognormal(step_mean, 0.5, 1, 2048) if step_mean > 0 else None
    out_dist = {k: int_lognormal(m, 0.5, 1, 1024)
                for k, m in _output_means(output_mean, fanout).items()}
    new_dist = {k: int_lognormal(m, 0.3, 1, 1024)
                for k, m in (("G", GENERATE_NEW), ("V", VALUE_NEW), ("J", JOIN_NEW))}
    programs = []
    for p, rng in enumerate(program_rngs(seed, n)):
        base, calls, join = base_dist.sample(rng), [], None
        for i in range(iters_dist.sample(rng)):
            depth = int(rng.integers(0, min(i, depth_limit - 1) + 1))
            traj = int(step_dist.sample(rng, depth).sum()) if step_dist and depth else 0
            e_out = out_dist["E"].sample(rng)
            expand = Call(id=f"i{i}.E", parents=(join.id,) if join else (),
                          shared_prompt_tokens=base if join else 0,
                          new_prompt_tokens=traj if join else base + traj, output_tokens=e_out)
            calls.append(expand)
            children, values = [], []
            for j in range(fanout):
                g = Call(id=f"i{i}.G{j}", parents=(expand.id,),
                         shared_prompt_tokens=expand.prompt_tokens + e_out,
                         new_prompt_tokens=new_dist["G"].sample(rng),
                         output_tokens=out_dist["G"].sample(rng))
                v = Call(id=f"i{i}.V{j}", parents=(g.id,),
                         shared_prompt_tokens=g.prompt_tokens + g.output_tokens,
                         new_prompt_tokens=new_dist["V"].sample(rng),
                         output_tokens=out_dist["V"].sample(rng),
                         tool_delay=lognormal_seconds(rng, tool_delay_median, tool_delay_sigma,
                                                      tool_delay_cap))
                children.append(g)
                values.append(v)
            join = Call(id=f"i{i}.J", parents=tuple(v.id for v in values),
                        shared_prompt_tokens=base + traj,
                        new_prompt_tokens=sum(g.output_tokens for g in children)
                        + new_dist["J"].sample(rng),
                        output_tokens=out_dist["J"].sample(rng))
            calls += children + values + [join]
        programs.append(Program(id=program_id(NAME, seed, p), calls=tuple(calls), workload=NAME))
    return programs
