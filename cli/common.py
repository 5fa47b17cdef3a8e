"""Small helpers shared by CLI commands: parsing and one-line errors.

A command catches :data:`USER_ERRORS` (what bad input causes) and prints it with
:func:`fail`; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path

import typer

from autellix.config import ConfigError
from autellix.errors import AutellixError

USER_ERRORS = (AutellixError, OSError)


def fail(msg: str) -> None:
    """Print one line saying why, and exit non-zero."""
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(1)


def parse_list(text: str, what: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise ConfigError(f"--{what} needs at least one value")
    return items


def _parse_numbers(text: str, what: str, kind, noun: str) -> list:
    try:
        return [kind(x) for x in parse_list(text, what)]
    except ValueError:
        raise ConfigError(f"--{what} must be comma-separated {noun}, got {text!r}") from None


def parse_floats(text: str, what: str) -> list[float]:
    vals = _parse_numbers(text, what, float, "numbers")
    if any(v <= 0 for v in vals):
        raise ConfigError(f"--{what} must be > 0")
    return vals


def parse_ints(text: str, what: str) -> list[int]:
    vals = _parse_numbers(text, what, int, "integers")
    if any(v < 1 for v in vals):
        raise ConfigError(f"--{what} must be >= 1")
    return vals


def load_workload(workload: str, n: int | None, seed: int):
    """Programs from a generator name, or the first ``n`` of a JSONL program file."""
    from autellix.program import load_programs
    from autellix.workloads.registry import GENERATORS, generate

    path = Path(workload)
    if workload not in GENERATORS:
        if not (path.suffix in (".jsonl", ".json") or path.exists()):
            raise ConfigError(f"unknown workload {workload!r}: not a generator "
                              f"({', '.join(GENERATORS)}) nor a file")
        programs = load_programs(path)  # a malformed file raises TraceError
        return programs[:n] if n else programs
    if n is not None and n < 1:
        raise ConfigError("--n must be >= 1")
    return generate(workload, n, seed)


def queue_config(boundaries: str, beta: float):
    from autellix.config import QueueConfig

    kw = {"beta": beta}
    if boundaries:
        kw["boundaries"] = tuple(parse_floats(boundaries, "boundaries"))
    return QueueConfig(**kw)
