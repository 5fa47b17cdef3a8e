"""Workload statistics (:func:`describe`) and the documented targets (:data:`TARGETS`).

``describe`` is a pure function of a list of programs. Per-call statistics
weight every call equally (the paper's "tokens per call"). ``prompt_tokens``
is the whole prompt (shared + new); ``new_prompt_tokens`` only the new part.
``tool_delay`` is taken over calls that have parents (a root call waits for
nothing). ``width`` is peak parallelism and ``depth`` the longest dependency
chain, both in calls.

Targets, per generator, as ``{metric path: value}`` (means unless named):

* chatbot (paper, ShareGPT): 6.66 calls; **255.65 new** prompt tokens per call
  (the total grows with the history; see ``chatbot``); 276.81 output.
* react (paper, BFCL v3): 10.75 calls; 735.06 **total** prompt; 34.14 output.
* mcts (paper, LATS): 159.71 calls; 467.24 total prompt; 72.64 output.
* swe (nebius SWE-agent-trajectories for calls; our design for tokens):
  26.4 calls; 16,126 total prompt (``swe.expected_prompt_mean()``); 180 output.
* mixed: the equal mix of the first three: calls 59.04 (mean of the three);
  output 77.98 (call-weighted: sum(calls*out) / sum(calls)). Its prompt mean
  mixes "new" and "total" semantics, so it has no prompt target.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np

from autellix.program import Program

TARGETS: dict[str, dict[str, float]] = {
    "chatbot": {"calls_per_program.mean": 6.66, "new_prompt_tokens.mean": 255.65,
                "output_tokens.mean": 276.81},
    "react": {"calls_per_program.mean": 10.75, "prompt_tokens.mean": 735.06,
              "output_tokens.mean": 34.14},
    "mcts": {"calls_per_program.mean": 159.71, "prompt_tokens.mean": 467.24,
             "output_tokens.mean": 72.64},
    "swe": {"calls_per_program.mean": 26.4, "prompt_tokens.mean": 16126.0,
            "output_tokens.mean": 180.0},
    # longctx (our stress workload): 1 read + 5 maps (mean) + 1 reduce + 0.5 follow-ups
    "longctx": {"calls_per_program.mean": 7.5, "prompt_tokens.mean": 56_500.0},
    "mixed": {"calls_per_program.mean": (6.66 + 10.75 + 159.71) / 3,
              "output_tokens.mean": (6.66 * 276.81 + 10.75 * 34.14 + 159.71 * 72.64)
              / (6.66 + 10.75 + 159.71)},
}

# The paper's observed maxima, for the tail checks (None: not published).
TAIL_MAX = {"chatbot": 80, "react": 70, "mcts": 400, "swe": None, "mixed": None,
            "longctx": None}


def _summary(x: np.ndarray, *, p99: bool = False) -> dict[str, float]:
    if x.size == 0:
        return {"mean": 0.0, "p50": 0.0, "max": 0.0} | ({"p99": 0.0} if p99 else {})
    out = {"mean": float(x.mean()), "p50": float(np.percentile(x, 50))}
    if p99:
        out["p99"] = float(np.percentile(x, 99))
    out["max"] = float(x.max())
    return out


def describe(programs: Iterable[Program]) -> dict:
    """Statistics of a workload as a nested dict of plain floats and ints."""
    programs = list(programs)
    calls = [c for p in programs for c in p.calls]
    n_calls = np.array([len(p.calls) for p in programs], dtype=float)
    prompt = np.array([c.prompt_tokens for c in calls], dtype=float)
    new = np.array([c.new_prompt_tokens for c in calls], dtype=float)
    out = np.array([c.output_tokens for c in calls], dtype=float)
    delays = np.array([c.tool_delay for c in calls if c.parents], dtype=float)
    widths = np.array([p.width() for p in programs], dtype=float)
    depths = np.array([p.depth() for p in programs], dtype=float)
    kinds = Counter(p.kind for p in programs)
    n = max(len(programs), 1)
    return {
        "programs": len(programs),
        "calls": len(calls),
        "workloads": dict(sorted(Counter(p.workload for p in programs).items())),
        "calls_per_program": _summary(n_calls, p99=True),
        "prompt_tokens": _summary(prompt),
        "new_prompt_tokens": _summary(new),
        "shared_prompt_share": float(1 - new.sum() / prompt.sum()) if prompt.size else 0.0,
        "output_tokens": _summary(out),
        "width": {"mean": float(widths.mean()) if widths.size else 0.0,
                  "max": float(widths.max()) if widths.size else 0.0},
        "depth": {"mean": float(depths.mean()) if depths.size else 0.0,
                  "max": float(depths.max()) if depths.size else 0.0},
        "tool_delay": _summary(delays),
        "single_share": kinds["single"] / n,
        "multi_share": kinds["multi"] / n,
    }


def lookup(stats: dict, path: str) -> float:
    """``lookup(stats, "prompt_tokens.mean")``."""
    value = stats
    for key in path.split("."):
        value = value[key]
    return float(value)


def compare(stats: dict, name: str) -> list[tuple[str, float, float, float]]:
    """``(metric, target, measured, relative error)`` for each of ``name``'s targets."""
    rows = []
    for path, target in TARGETS.get(name, {}).items():
        measured = lookup(stats, path)
        rows.append((path, target, measured, (measured - target) / target))
    return rows
