"""``autellix gate``: the performance gate (simulated baseline, two result folders, or a
live OpenAI endpoint)."""

from __future__ import annotations

from pathlib import Path

import typer

from autellix.cli.common import fail, parse_floats
from autellix.errors import AutellixError


def register(app: typer.Typer) -> None:
    @app.command(help="Fail (exit 1) on a performance regression outside the noise band. "
                      "Default: rerun the simulated comparison in a committed baseline "
                      "(results/baselines/ci-gate.json). --compare A B: judge result folder B "
                      "against A. --endpoint URL: replay --workload against any OpenAI "
                      "endpoint --repeats times per rate and judge against --baseline "
                      "(write it with --update). A metric regresses when its mean is worse by "
                      "more than --tolerance and the 95% CIs over repeats/seeds do not overlap.")
    def gate(
        baseline: Path = typer.Option(Path("results/baselines/ci-gate.json"), help="baseline file"),
        tolerance: float = typer.Option(0.10, help="allowed relative regression (0.10 = 10%)"),
        update: bool = typer.Option(False, help="measure now and overwrite the baseline"),
        compare: tuple[Path, Path] | None = typer.Option(
            None, help="two 'autellix compare' result folders: A (baseline) B (candidate)"),
        endpoint: str = typer.Option("", help="OpenAI-compatible base URL to replay against"),
        workload: str = typer.Option("chatbot", help="(endpoint) generator name or JSONL file"),
        n: int = typer.Option(16, help="(endpoint) programs per replay"),
        rates: str = typer.Option("1", help="(endpoint) arrival rates, programs/s"),
        repeats: int = typer.Option(3, help="(endpoint) replays per rate (the noise band)"),
        seed: int = typer.Option(0, help="(endpoint) workload seed"),
        model: str = typer.Option("", help="(endpoint) model name (default: the server's first)"),
        max_prompt_tokens: int = typer.Option(1024, help="(endpoint) clip replayed prompts"),
        max_output_tokens: int = typer.Option(64, help="(endpoint) clip replayed outputs"),
        jobs: int = typer.Option(0, help="(sim) parallel processes (0: number of cores)"),
    ):
        from rich.console import Console

        from autellix import gate as g
        from autellix.sweep import default_jobs

        console = Console()
        jobs = jobs or default_jobs()
        try:
            if compare:
                rep = g.compare_folders(compare[0], compare[1], tolerance)
                what = f"{compare[1]} against {compare[0]}"
            elif endpoint:
                from autellix import gate_endpoint as ge

                cfg = ge.endpoint_config(workload, n, parse_floats(rates, "rates"), repeats,
                                         seed, model, max_prompt_tokens, max_output_tokens)
                if update:
                    doc = ge.write_endpoint_baseline(baseline, endpoint, cfg)
                    console.print(f"wrote {baseline} ({len(doc['metrics'])} metrics from "
                                  f"{endpoint})")
                    return
                rep = ge.run_endpoint_gate(endpoint, baseline, tolerance, cfg)
                what = f"{endpoint} against {baseline}"
            elif update:
                doc = g.write_baseline(baseline, jobs=jobs)
                console.print(f"wrote {baseline} ({len(doc['metrics'])} metrics)")
                return
            else:
                rep = g.run_gate(baseline, tolerance, jobs)
                what = f"against {baseline}"
        except (AutellixError, OSError) as e:
            fail(str(e))
        for line in rep.improvements:
            console.print(f"[green]improved[/green] {line}")
        for line in rep.within_noise:
            console.print(f"[yellow]noisy[/yellow] {line}")
        if not rep.ok:
            for line in rep.failures:
                console.print(f"[red]REGRESSION[/red] {line}")
            fail(f"perf gate failed: {len(rep.failures)} regression(s) {what}")
        console.print(f"perf gate passed {what} ({rep.checked} metrics within the noise band "
                      f"or {tolerance:.0%})")
