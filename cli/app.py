"""The ``autellix`` command line (Typer + rich).

Subcommands: ``compare`` (simulated or real-engine sweeps), ``gate`` (perf gate
against a committed baseline), ``workloads`` (list/describe/generate/export),
``serve`` (vLLM engines with the Autellix scheduler, plus the gateway),
``gateway`` (the gateway alone), ``replay`` (drive any OpenAI endpoint), ``profile``
(fit a simulator cost profile to a real engine's step records).
An error that input causes (an :class:`autellix.errors.AutellixError` or an
``OSError``) prints one line and exits non-zero; any other exception is a bug
and keeps its traceback.
"""

from __future__ import annotations

import sys

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="autellix: program-aware LLM serving for AI agents (PLAS/ATLAS on vLLM).")


def _register() -> None:
    from autellix.cli import (
        compare_cmd,
        gate_cmd,
        gateway_cmd,
        profile_cmd,
        replay_cmd,
        serve_cmd,
    )
    from autellix.cli.workloads_cmd import app as workloads_app

    compare_cmd.register(app)
    gate_cmd.register(app)
    serve_cmd.register(app)
    gateway_cmd.register(app)
    replay_cmd.register(app)
    profile_cmd.register(app)
    app.add_typer(workloads_app, name="workloads")


_register()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
