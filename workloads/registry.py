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
# Generators whose STEADY_WINDOW was measured *not* to converge (``STEADY_CONVERGED =
# False``): the default stays (a longer one costs more than a comparison should), and
# ``autellix compare`` prints a note when it uses it.
UNCONVERGED: frozenset[str] = frozenset(m.NAME for m in _MODULES
                                        if not getattr(m, "STEADY_CONVERGED", True))


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
