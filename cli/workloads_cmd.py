"""``autellix workloads``: list, describe, generate and export workloads.

Mounted by the main CLI as ``app.add_typer(workloads_app, name="workloads")``.
Errors print one line to stderr and exit with status 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from autellix.cli.common import USER_ERRORS
from autellix.cli.common import fail as _fail
from autellix.program import load_programs, save_programs
from autellix.workloads import loaders, registry, stats

app = typer.Typer(help="List, describe, generate and export agent workloads (programs as JSONL).",
                  no_args_is_help=True)
console = Console()

PARAM_HELP = "Generator parameter KEY=VALUE (repeatable; VALUE parsed as JSON when it can be)."


def _params(items: list[str] | None) -> dict:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _fail(f"--param expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _generate(name: str, n: int, seed: int, params: dict):
    if n < 1:
        _fail(f"--n must be >= 1, got {n}")
    try:
        return registry.generate(name, n, seed, **params)
    except USER_ERRORS as e:
        _fail(str(e))


@app.command("list")
def list_workloads() -> None:
    """Show the generators and the loader kinds, one line each."""
    table = Table(title="workload generators")
    table.add_column("name", style="bold")
    table.add_column("description")
    for name, text in registry.DESCRIPTIONS.items():
        table.add_row(name, text)
    console.print(table)
    kinds = Table(title="loaders (autellix workloads export KIND PATH)")
    kinds.add_column("kind", style="bold")
    kinds.add_column("input")
    for kind, text in loaders.DESCRIPTIONS.items():
        kinds.add_row(kind, text)
    console.print(kinds)


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}"


def _stats_table(s: dict, title: str) -> Table:
    table = Table(title=title)
    for col in ("metric", "mean", "p50", "p99", "max"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    rows = [("calls / program", "calls_per_program"),
            ("prompt tokens / call (total)", "prompt_tokens"),
            ("prompt tokens / call (new)", "new_prompt_tokens"),
            ("output tokens / call", "output_tokens"),
            ("DAG width", "width"), ("DAG depth", "depth"),
            ("tool delay, s (non-root calls)", "tool_delay")]
    for label, key in rows:
        d = s[key]
        table.add_row(label, *(_fmt(d[k]) if k in d else "" for k in ("mean", "p50", "p99", "max")))
    table.add_section()
    table.add_row("programs / calls", f"{s['programs']:,} / {s['calls']:,}", "", "", "")
    table.add_row("single / multi share", f"{s['single_share']:.0%} / {s['multi_share']:.0%}",
                  "", "", "")
    table.add_row("shared share of prompt tokens", f"{s['shared_prompt_share']:.0%}", "", "", "")
    if len(s["workloads"]) > 1:
        table.add_row("programs per workload",
                      ", ".join(f"{k} {v}" for k, v in s["workloads"].items()), "", "", "")
    return table


def _targets_table(s: dict, name: str) -> Table:
    table = Table(title=f"{name}: documented targets")
    for col in ("metric", "target", "measured", "error"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for metric, target, measured, err in stats.compare(s, name):
        style = "green" if abs(err) <= 0.10 else "red"
        table.add_row(metric, _fmt(target), _fmt(measured), f"[{style}]{err:+.1%}[/{style}]")
    return table


@app.command()
def describe(
    source: str = typer.Argument(..., help="A generator name or a workload JSONL file."),
    n: int = typer.Option(1000, "--n", help="Programs to generate."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    param: list[str] | None = typer.Option(None, "--param", "-p", help=PARAM_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the statistics as JSON."),
) -> None:
    """Statistics of a generated workload or a JSONL file, with the generator's targets."""
    if source in registry.GENERATORS:
        programs, name = _generate(source, n, seed, _params(param)), source
        title = f"{source} (n={n}, seed={seed})"
    elif Path(source).is_file():
        try:
            programs = load_programs(source)
        except USER_ERRORS as e:
            _fail(str(e))
        kinds = {p.workload for p in programs}
        name, title = (kinds.pop() if len(kinds) == 1 else None), source
    else:
        _fail(f"{source!r} is neither a workload name "
              f"({', '.join(registry.GENERATORS)}) nor a file")
    s = stats.describe(programs)
    if as_json:
        typer.echo(json.dumps(s, indent=2))
        return
    console.print(_stats_table(s, title))
    if name in stats.TARGETS:
        console.print(_targets_table(s, name))


@app.command()
def generate(
    name: str = typer.Argument(..., help="Generator name (see `list`)."),
    n: int = typer.Option(1000, "--n", help="Programs to generate."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    out: Path = typer.Option(..., "--out", "-o", help="Output JSONL file."),
    param: list[str] | None = typer.Option(None, "--param", "-p", help=PARAM_HELP),
) -> None:
    """Generate a workload and write it as JSONL."""
    params = _params(param)
    programs = _generate(name, n, seed, params)
    try:
        count = save_programs(programs, out, generator=name, n=n, seed=seed, params=params)
    except OSError as e:
        _fail(f"cannot write {out}: {e.strerror or e}")
    calls = sum(len(p.calls) for p in programs)
    typer.echo(f"wrote {count} {name} programs ({calls:,} calls) to {out}")


def _tokenizer(spec: str | None):
    if spec is None:
        return None
    try:
        from transformers import AutoTokenizer
    except ImportError:
        _fail("--tokenizer needs the transformers package")
    try:
        return AutoTokenizer.from_pretrained(spec, local_files_only=True)
    except Exception as e:  # noqa: BLE001 - any loading problem is one user-facing line
        _fail(f"cannot load tokenizer {spec!r} from local files: {str(e).splitlines()[0]}")


@app.command()
def export(
    kind: str = typer.Argument(..., help=f"Loader kind: {', '.join(loaders.LOADERS)}."),
    path: Path = typer.Argument(..., help="Local input file (never downloaded)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output JSONL file."),
    limit: int | None = typer.Option(None, "--limit", help="Keep at most this many programs."),
    tokenizer: str | None = typer.Option(None, "--tokenizer",
                                         help="Local Hugging Face tokenizer (name or path); "
                                              "default: about 4 characters per token."),
    param: list[str] | None = typer.Option(None, "--param", "-p",
                                           help="Loader option KEY=VALUE, e.g. block_size=512, "
                                                "time_unit=0.001, answers_path=FILE."),
) -> None:
    """Convert a dataset or trace into an autellix workload JSONL."""
    if kind not in loaders.LOADERS:
        _fail(f"unknown loader kind {kind!r}; choose from {', '.join(loaders.LOADERS)}")
    try:
        programs = loaders.load(kind, path, tokenizer=_tokenizer(tokenizer), limit=limit,
                                **_params(param))
    except USER_ERRORS as e:  # a bad option is a ConfigError, a bad file a TraceError
        _fail(str(e))
    if not programs:
        _fail(f"{path}: no programs found")
    try:
        count = save_programs(programs, out, source=str(path), kind=kind)
    except OSError as e:
        _fail(f"cannot write {out}: {e.strerror or e}")
    calls = sum(len(p.calls) for p in programs)
    typer.echo(f"wrote {count} programs ({calls:,} calls) from {path} to {out}")
