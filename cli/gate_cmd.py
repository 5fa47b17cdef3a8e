"""``autellix gate``: the CI performance gate."""

from __future__ import annotations

from pathlib import Path

import typer

from autellix.cli.common import USER_ERRORS, fail


def register(app: typer.Typer) -> None:
    @app.command(help="Rerun the sweep recorded in a committed baseline (results/baselines/) and "
                      "exit non-zero if a scheduler's throughput ratio to FCFS, or a point's mean "
                      "or p95 program token latency, regresses beyond the tolerance.")
    def gate(
        baseline: Path = typer.Option(Path("results/baselines/ci-gate.json"), help="baseline file"),
        tolerance: float = typer.Option(0.10, help="allowed relative regression (0.10 = 10%)"),
        update: bool = typer.Option(False, help="measure now and overwrite the baseline"),
    ):
        from rich.console import Console

        from autellix.gate import run_gate, write_baseline

        console = Console()
        if update:
            try:
                doc = write_baseline(baseline)
            except USER_ERRORS as e:
                fail(str(e))
            ratios = ", ".join(f"{k} {v:.2f}x" for k, v in doc["ratios_vs_fcfs"].items() if v)
            console.print(f"wrote {baseline} (ratios vs fcfs: {ratios})")
            return
        try:
            rep = run_gate(baseline, tolerance)
        except USER_ERRORS as e:
            fail(str(e))
        ratios = ", ".join(f"{k} {v:.2f}x" for k, v in rep.current["ratios_vs_fcfs"].items() if v)
        for line in rep.improvements:
            console.print(f"[green]improved[/green] {line}")
        if not rep.ok:
            for line in rep.failures:
                console.print(f"[red]REGRESSION[/red] {line}")
            fail(f"perf gate failed: {len(rep.failures)} regression(s) against {baseline}")
        console.print(f"perf gate passed against {baseline} (ratios vs fcfs: {ratios})")
