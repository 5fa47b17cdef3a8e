"""Small helpers shared by CLI commands: parsing and one-line errors."""

from __future__ import annotations

from pathlib import Path

import typer


def fail(msg: str) -> None:
    """Print one line saying why, and exit non-zero."""
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(1)


def parse_list(text: str, what: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise ValueError(f"--{what} needs at least one value")
    return items


def parse_floats(text: str, what: str) -> list[float]:
    try:
        vals = [float(x) for x in parse_list(text, what)]
    except ValueError:
        raise ValueError(f"--{what} must be comma-separated numbers, got {text!r}") from None
    if any(v <= 0 for v in vals):
        raise ValueError(f"--{what} must be > 0")
    return vals


def load_workload(workload: str, n: int | None, seed: int):
    """Programs from a generator name, or the first ``n`` of a JSONL program file."""
    from autellix.program import TraceError, load_programs
    from autellix.workloads.registry import GENERATORS, generate

    path = Path(workload)
    if workload not in GENERATORS:
        if not (path.suffix in (".jsonl", ".json") or path.exists()):
            raise ValueError(f"unknown workload {workload!r}: not a generator "
                             f"({', '.join(GENERATORS)}) nor a file")
        try:
            programs = load_programs(path)
        except TraceError as e:
            raise ValueError(str(e)) from None
        return programs[:n] if n else programs
    if n is not None and n < 1:
        raise ValueError("--n must be >= 1")
    return generate(workload, n, seed)


def queue_config(boundaries: str, beta: float):
    from autellix.config import QueueConfig

    kw = {"beta": beta}
    if boundaries:
        kw["boundaries"] = tuple(parse_floats(boundaries, "boundaries"))
    return QueueConfig(**kw)
