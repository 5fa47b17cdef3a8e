"""``autellix replay``: replay a workload against an OpenAI-compatible endpoint.

Works against autellix's gateway and against plain vLLM alike (see
:mod:`autellix.replay` for how prompts are built and fitted). It reads the endpoint's
``/v1/models`` first: the model, its context length (calls are fitted to it unless
``--no-fit``) and, from autellix's gateway, the engines' policy (the summary's label
unless ``--label``). Writes the run under ``--out`` (resolved config, per-program
and per-call records with ``clipped_tokens``, summary) and ends with the summary
table, one line on what the fit clipped, and a table of failure reasons. Exit code 1
when more than ``--max-failed`` programs failed (default 0, so a CI gate fails on any
lost program); a run whose every call failed says so in one line.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer

from autellix.cli.common import USER_ERRORS, fail
from autellix.cli.common import load_workload as common_load_workload
from autellix.cli.render import failure_table, summary_table
from autellix.replay_report import DEFAULT_MAX_FAILED
from autellix.results import write_run

DEFAULT_ENDPOINT = "http://127.0.0.1:18400"


def load_workload(workload: str, n: int | None, seed: int):
    """Programs from a workload name (``n`` generated, default 20) or a JSONL file (first ``n``)."""
    from autellix.workloads.registry import GENERATORS

    return common_load_workload(workload, n or (20 if workload in GENERATORS else None), seed)


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
        max_prompt_tokens: int = typer.Option(None, help="clip prompts to this many tokens "
                                                         "(as the fit does)"),
        max_output_tokens: int = typer.Option(None, help="cap each call's output tokens"),
        max_model_len: int = typer.Option(None, help="context to fit calls to (default: the "
                                                     "max_model_len the endpoint reports)"),
        fit: bool = typer.Option(True, "--fit/--no-fit",
                                 help="clip prompts over the context (keep the program's "
                                      "shared prefix, drop the oldest turns); --no-fit fails "
                                      "those calls instead"),
        max_failed: int = typer.Option(DEFAULT_MAX_FAILED, min=0,
                                       help="exit 1 when more programs than this fail "
                                            "(0: any lost program fails the run)"),
        max_tool_delay: float = typer.Option(None, min=0,
                                             help="cap each call's tool delay, s (a quick run)"),
        scale: float = typer.Option(1.0, help="multiply every token count first"),
        timeout: float = typer.Option(300.0, help="seconds before a call counts as failed"),
        priority: bool = typer.Option(False, "--priority",
                                      help="send priority = program's served output tokens "
                                           "(the vllm-priority baseline)"),
        label: str = typer.Option("", help="policy label for the summary (default: the "
                                           "policy autellix's gateway reports)"),
    ) -> None:
        """Replay a workload's programs against an OpenAI-compatible endpoint.

        Calls are fitted to the endpoint's context; the run ends with the summary,
        one line on clipping, the failure reasons, and exit 1 when more than
        --max-failed programs failed."""
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        from autellix.metrics import summarize
        from autellix.replay import endpoint_info, replay
        from autellix.replay_report import failure_reasons, fit_line, verdict

        if n is not None and n < 1:
            fail("--n must be >= 1")
        try:
            programs = load_workload(workload, n, seed)
        except USER_ERRORS as e:
            fail(str(e))
        try:
            info = endpoint_info(endpoint, model)  # an unreachable endpoint: EngineError
        except USER_ERRORS as e:
            fail(str(e))
        context = max_model_len or info.max_model_len
        name = Path(workload).stem
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = out or Path("results") / "replay" / f"{name}-r{rate:g}-s{seed}-{stamp}"
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
                progs, calls = replay(programs, endpoint, rate=rate, seed=seed, model=info.model,
                                      api=api, progress=on_progress, timeout=timeout,
                                      scale=scale, max_prompt_tokens=max_prompt_tokens,
                                      max_output_tokens=max_output_tokens,
                                      max_model_len=context, fit=fit,
                                      max_tool_delay=max_tool_delay, priority_mode=priority)
            except USER_ERRORS as e:
                error = e
        if error is not None:
            fail(f"replay against {endpoint} failed: {type(error).__name__}: {error}")
        policy = label or info.policy or ("vllm-priority" if priority else "unknown")
        failed_calls = sum(c.status != "completed" for c in calls)
        summary = summarize(progs, engine=endpoint, policy=policy, balancer=info.balancer or "",
                            rate=rate, extra={"workload": workload, "seed": seed,
                                              "calls": len(calls), "failed_calls": failed_calls,
                                              "clipped_calls": sum(c.clipped_tokens > 0
                                                                   for c in calls),
                                              "clipped_tokens": sum(c.clipped_tokens
                                                                    for c in calls)})
        config = {"command": "replay", "workload": workload, "endpoint": endpoint, "rate": rate,
                  "n": len(programs), "seed": seed, "model": info.model, "api": api,
                  "max_prompt_tokens": max_prompt_tokens, "max_output_tokens": max_output_tokens,
                  "max_model_len": context, "max_model_len_source":
                      "--max-model-len" if max_model_len else ("endpoint" if context else None),
                  "fit": fit, "max_failed": max_failed, "max_tool_delay": max_tool_delay,
                  "scale": scale, "timeout": timeout,
                  "priority": priority, "label": policy, "endpoint_policy": info.policy,
                  "balancer": info.balancer, "argv": sys.argv}
        path = write_run(Path(out), config, progs, calls, [summary])
        why = verdict(progs, calls, max_failed)
        stdout = Console()
        if not (calls and failed_calls == len(calls)):  # all dashes otherwise
            stdout.print(summary_table([summary], f"replay {name}"))
        stdout.print(fit_line(calls, context, fit, "--max-model-len's" if max_model_len
                              else "the endpoint's"), markup=False)
        reasons = failure_reasons(calls)
        if reasons:
            stdout.print(failure_table(reasons, f"failed calls ({failed_calls} of {len(calls)})"))
        console.print(f"results in {path}")
        if why is not None:
            fail(why)
