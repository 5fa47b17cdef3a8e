"""``mixed``: the paper's Mixed workload, an equal mix of chatbot, react and mcts.

The paper samples equally from its three workloads (§6.1). We generate
``n // k`` programs of each of the ``k`` components (the remainder goes to
components picked by the seed), then interleave them in an order shuffled by
``default_rng(seed)``. ``include_swe=True`` adds ``swe`` as a fourth equal
component. Each component runs with its own seed drawn from ``seed``, so the
mix is deterministic. Programs are renamed ``mixed-{seed}-{i}`` (i = position
in the mix); ``Program.workload`` keeps the component's name so results can be
broken down per workload. ``component_params`` passes keyword arguments to a
component, e.g. ``{"react": {"tool_delay_median": 0}}``.

Known defect: unlike its components, the mix is not prefix-stable. The interleaving
is shuffled over all ``n``, so ``generate(m, seed)[:k]`` and ``generate(n, seed)[:k]``
differ, and a comparison whose window (which sizes the pool) changes draws a
different mix of the same seed (``results/convergence/x-vllm-stretched/``). Fixing it
changes every mixed result and the simulator goldens that use it.
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
# `autellix compare`'s default steady-state window here (arrivals at capacity):
# doubling it moves no capacity ratio over vLLM-opt or MLFQ by more than 7.1%
# (results/convergence/).
STEADY_WINDOW = 150

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
    counts = {k: n // len(names) for k in names}
    for k in rng.choice(names, size=n % len(names), replace=False):
        counts[str(k)] += 1
    pools = {}
    for k in names:
        sub_seed = int(rng.integers(2**31))
        pools[k] = iter(parts[k](counts[k], sub_seed, **params.get(k, {})))
    order = [k for k in names for _ in range(counts[k])]
    rng.shuffle(order)
    out = []
    for i, k in enumerate(order):
        p = next(pools[k])
        out.append(Program(id=program_id(NAME, seed, i), calls=p.calls, workload=k))
    return out
