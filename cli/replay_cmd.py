"""``autellix replay``: replay a workload against an OpenAI-compatible endpoint.

Works against autellix's gateway and against plain vLLM alike (see
:mod:`autellix.replay` for how prompts are built). Writes the run under ``--out``
(resolved config, per-program and per-call records, summary) and ends with the
summary table.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import typer

DEFAULT_ENDPOINT = "http://127.0.0.1:18400"


def load_workload(workload: str, n: int | None, seed: int):
    """Programs from a workload name (generated) or a JSONL trace file (first ``n``)."""
    from autellix.program import load_programs

    path = Path(workload)
    if path.suffix in (".jsonl", ".json") or path.is_file():
        programs = load_programs(path)
        return programs[:n] if n else programs
    from autellix.workloads.registry import generate

    return generate(workload, n or 20, seed)


def write_results(out: Path, config: dict, programs, calls, summaries) -> Path:
    """Use the project's writer when present, else JSON/CSV in the same spirit."""
    try:
        from autellix.results import write_run
    except ImportError:
        write_run = None
    if write_run is not None:
        return write_run(out, config, programs, calls, summaries)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")
    rows = [p.to_row() for p in programs]
    call_rows = [{**asdict(c), "e2e": c.e2e, "ttft": c.ttft, "itl": c.itl} for c in calls]
    for name, data in (("programs", rows), ("calls", call_rows)):
        with (out / f"{name}.csv").open("w", newline="") as fp:
            if data:
                w = csv.DictWriter(fp, fieldnames=list(data[0]))
                w.writeheader()
                w.writerows(data)
    (out / "summary.json").write_text(
        json.dumps([s.to_dict() for s in summaries], indent=1, default=str) + "\n")
    return out


def summary_table(summaries, title: str):
    try:
        from autellix.cli.render import summary_table as render
    except ImportError:
        render = None
    if render is not None:
        return render(summaries, title)
    from rich.table import Table

    t = Table(title=title)
    for col in ("engine", "policy", "rate", "done/total", "failed", "tok-lat mean (s)",
                "tok-lat p95", "e2e mean (s)", "e2e p99", "programs/s"):
        t.add_column(col, justify="left" if col in ("engine", "policy") else "right")
    for s in summaries:
        t.add_row(s.engine, s.policy, f"{s.rate:g}", f"{s.completed}/{s.n_programs}",
                  str(s.failed), f"{s.token_latency['mean']:.4f}", f"{s.token_latency['p95']:.4f}",
                  f"{s.e2e['mean']:.2f}", f"{s.e2e['p99']:.2f}", f"{s.programs_per_s:.3f}")
    return t


def fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    @app.command("replay")
    def replay_cmd(
        workload: str = typer.Option(..., "--workload", "-w",
                                     help="workload name (chatbot, react, mcts, swe, mixed) "
                                          "or a JSONL trace file"),
        endpoint: str = typer.Option(DEFAULT_ENDPOINT, help="gateway or vLLM base URL"),
        rate: float = typer.Option(1.0, help="program arrivals per second (Poisson)"),
        n: int = typer.Option(None, help="programs to replay (default 20; a file: all)"),
        seed: int = typer.Option(0, help="seed of the workload and the arrivals"),
        out: Path = typer.Option(None, help="output folder (default results/replay/<run>)"),
        model: str = typer.Option(None, help="model name (default: the endpoint's first)"),
        api: str = typer.Option("completions", help="completions or chat"),
        max_prompt_tokens: int = typer.Option(None, help="clip longer prompts (keep prefix)"),
        max_output_tokens: int = typer.Option(None, help="cap each call's output tokens"),
        max_model_len: int = typer.Option(None, help="engine context: clip prompt+output to fit"),
        scale: float = typer.Option(1.0, help="multiply every token count first"),
        timeout: float = typer.Option(300.0, help="seconds before a call counts as failed"),
        priority: bool = typer.Option(False, "--priority",
                                      help="send priority = program's served output tokens "
                                           "(the vllm-priority baseline)"),
        label: str = typer.Option("", help="policy label for the summary (e.g. plas)"),
    ) -> None:
        """Replay a workload's programs against an OpenAI-compatible endpoint."""
        import httpx
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, \
            TimeElapsedColumn

        from autellix.metrics import summarize
        from autellix.program import TraceError
        from autellix.replay import replay

        if n is not None and n < 1:
            fail("--n must be >= 1")
        try:
            programs = load_workload(workload, n, seed)
        except (ValueError, TraceError, OSError) as e:
            fail(str(e))
        name = Path(workload).stem
        out = out or Path("results") / "replay" / f"{name}-r{rate:g}-s{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
        console = Console(stderr=True)
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("programs {task.fields[programs]}  failed {task.fields[failed]}"),
                      TimeElapsedColumn(), console=console, transient=False) as bar:
            task = bar.add_task(f"replay {name}", total=sum(len(p.calls) for p in programs),
                                programs=f"0/{len(programs)}", failed=0)

            def on_progress(s):
                bar.update(task, completed=s.calls_done, failed=s.calls_failed,
                           programs=f"{s.programs_done}/{s.programs_total}")

            error = None
            try:
                progs, calls = replay(programs, endpoint, rate=rate, seed=seed, model=model,
                                      api=api, progress=on_progress, timeout=timeout,
                                      scale=scale, max_prompt_tokens=max_prompt_tokens,
                                      max_output_tokens=max_output_tokens,
                                      max_model_len=max_model_len, priority_mode=priority)
            except (ValueError, RuntimeError, httpx.HTTPError, OSError) as e:
                error = e
        if error is not None:
            fail(f"replay against {endpoint} failed: {type(error).__name__}: {error}")
        policy = label or ("vllm-priority" if priority else "unknown")
        summary = summarize(progs, engine=endpoint, policy=policy, balancer="", rate=rate,
                            extra={"workload": workload, "seed": seed, "calls": len(calls),
                                   "failed_calls": sum(c.status != "completed" for c in calls)})
        config = {"command": "replay", "workload": workload, "endpoint": endpoint, "rate": rate,
                  "n": len(programs), "seed": seed, "model": model, "api": api,
                  "max_prompt_tokens": max_prompt_tokens, "max_output_tokens": max_output_tokens,
                  "max_model_len": max_model_len,
                  "scale": scale, "timeout": timeout, "priority": priority, "label": policy,
                  "argv": sys.argv}
        path = write_results(Path(out), config, progs, calls, [summary])
        Console().print(summary_table([summary], f"replay {name} @ {rate:g} programs/s"))
        console.print(f"results in {path}")
