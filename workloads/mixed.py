"""``mixed``: the paper's Mixed workload, an equal mix of chatbot, react and mcts.

The paper samples equally from its three workloads (§6.1). We interleave the
``k`` components in blocks of ``k`` positions, each block a permutation drawn from
``default_rng(seed)``, so any prefix holds every component within one program of
the others, and program ``i`` does not depend on ``n`` (like its components, the
mix is prefix-stable: a longer window of the same seed adds programs, it does not
redraw the ones before). ``include_swe=True`` adds ``swe`` as a fourth equal
component. Each component runs with its own seed drawn from ``seed``, so the mix is
deterministic. Programs are renamed ``mixed-{seed}-{i}`` (i = position in the
mix); ``Program.workload`` keeps the component's name so results can be broken
down per workload. ``component_params`` passes keyword arguments to a component,
e.g. ``{"react": {"tool_delay_median": 0}}``.

Before 53e315c (2026-12-03) the interleaving was one shuffle over all ``n``, so a window that
changed the pool size drew a different mix of the same seed
(``results/convergence/x-vllm-stretched/``); mixed results from before it are of
that generator.
"""

from __future__ import annotations

import numpy as np

from autellix.config import ConfigError
from autellix.program import Program

from . import chatbot, mcts, react, swe
from .common import program_id

NAME = "mixed"
DESCRIPTION = ("Equal interleaved mix of chatbot, react and mcts (optionally swe), "
               "as in the paper's Mixed")
# `autellix compare`'s default steady-state window here (arrivals at capacity), and
# the arms its doubling was measured on (workloads/registry.py). At 150 (a 699 s
# window) every capacity was still falling toward the engine's full-batch capacity:
# doubling moved the SRPT bound over MLFQ by 12% and the ratios over vLLM by up to
# 22%. At 900 (1,401 s) doubling moves no ratio between the policies by more than
# 8.3%, nor any policy's ratio over vLLM by more than 9.9%; only the SRPT bound over
# vLLM moves more, 11.8%, so compare names vllm as not settling
# (results/convergence/README.md).
STEADY_WINDOW = 900
STEADY_CHECKED = ("vllm", "vllm-opt", "mlfq", "plas", "atlas", "srpt")
STEADY_UNSETTLED = ("vllm",)

COMPONENTS = {"chatbot": chatbot.generate, "react": react.generate, "mcts": mcts.generate}


def generate(n: int, seed: int = 0, *, include_swe: bool = False,
             component_params: dict[str, dict] | None = None) -> list[Program]:
    if n < 0:
        raise ConfigError(f"n must be >= 0, got {n}")
    parts = dict(COMPONENTS, swe=swe.generate) if include_swe else dict(COMPONENTS)
    params = component_params or {}
    unknown = set(params) - set(parts)
    if unknown:
        raise ConfigError(f"mixed: component_params names unknown components {sorted(unknown)}; "
                          f"choose from {sorted(parts)}")
    rng = np.random.default_rng(seed)
    names = sorted(parts)
    k = len(names)
    # Seeds first, a fixed number of draws, so nothing below depends on n.
    sub_seeds = {name: int(rng.integers(2**31)) for name in names}
    order = [names[j] for _ in range(-(-n // k)) for j in rng.permutation(k)][:n]
    pools = {name: iter(parts[name](order.count(name), sub_seeds[name], **params.get(name, {})))
             for name in names}
    return [Program(id=program_id(NAME, seed, i), calls=next(pools[name]).calls, workload=name)
            for i, name in enumerate(order)]
