"""Registry of workload generators, keyed by name (also feeds the CLI)."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from autellix.config import ConfigError
from autellix.program import Program

from . import chatbot, longctx, mcts, mixed, react, swe

_MODULES = (chatbot, react, mcts, swe, mixed, longctx)

GENERATORS: dict[str, Callable[..., list[Program]]] = {m.NAME: m.generate for m in _MODULES}
DESCRIPTIONS: dict[str, str] = {m.NAME: m.DESCRIPTION for m in _MODULES}
# `autellix compare --window`'s default (arrivals at capacity) on the simulator: the
# window whose answer moves <= 10% when it doubles, measured per generator by
# benchmarks/convergence.py and set as its STEADY_WINDOW. A generator without one
# (swe, longctx) or a JSONL file gets DEFAULT_STEADY_WINDOW, unchecked:
# `autellix compare --check-window` checks it.
DEFAULT_STEADY_WINDOW = 150.0
STEADY_WINDOWS: dict[str, float] = {m.NAME: float(m.STEADY_WINDOW) for m in _MODULES
                                    if hasattr(m, "STEADY_WINDOW")}
# What the convergence runs (benchmarks/convergence.py, results/convergence/) covered at
# each STEADY_WINDOW: the arms measured (``STEADY_CHECKED``), and those among them
# with a ratio that moved by more than 10% when the window doubled
# (``STEADY_UNSETTLED``). A doubling says nothing of an arm it did not run, and a
# ratio that does not settle is the arm's, not the workload's: on mcts only the
# ratios over ``vllm`` move. ``autellix compare`` names either kind when it uses the
# default window (:func:`window_caveats`). The defaults stay where an arm does not
# settle: a longer one costs more than a comparison should.
STEADY_CHECKED: dict[str, frozenset[str]] = {
    m.NAME: frozenset(m.STEADY_CHECKED) for m in _MODULES if hasattr(m, "STEADY_WINDOW")}
STEADY_UNSETTLED: dict[str, frozenset[str]] = {
    m.NAME: frozenset(getattr(m, "STEADY_UNSETTLED", ())) for m in _MODULES
    if hasattr(m, "STEADY_WINDOW")}


def window_caveats(workload: str, arms) -> tuple[list[str], list[str]]:
    """``(unchecked, unsettled)``: the arms of a comparison that the convergence runs
    of ``workload``'s default window did not measure, and those measured to move by
    more than 10% when it doubles. Every arm is unchecked on a workload without a
    measured window (swe, longctx, a JSONL file)."""
    checked = STEADY_CHECKED.get(workload, frozenset())
    unsettled = STEADY_UNSETTLED.get(workload, frozenset())
    return ([a for a in arms if a not in checked], [a for a in arms if a in unsettled])


def steady_window(workload: str) -> float:
    """The default steady-state window for ``workload`` (a generator name or a file)."""
    return STEADY_WINDOWS.get(workload, DEFAULT_STEADY_WINDOW)


def generate(name: str, n: int, seed: int = 0, **params) -> list[Program]:
    """Generate ``n`` programs of workload ``name``.

    The same (name, n, seed, params) always gives the same programs."""
    try:
        gen = GENERATORS[name]
    except KeyError:
        raise ConfigError(f"unknown workload {name!r}; "
                          f"choose from {', '.join(GENERATORS)}") from None
    try:
        inspect.signature(gen).bind(n, seed, **params)
    except TypeError as e:
        raise ConfigError(f"{name}: bad parameter ({e})") from None
    return gen(n, seed, **params)


def parameters(name: str) -> dict[str, object]:
    """The generator's keyword parameters and their defaults."""
    sig = inspect.signature(GENERATORS[name])
    return {k: p.default for k, p in sig.parameters.items() if p.kind is p.KEYWORD_ONLY}
