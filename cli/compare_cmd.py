"""``autellix compare``: latency-vs-throughput sweeps of schedulers on one workload."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from autellix.cli.common import (
    USER_ERRORS,
    fail,
    load_workload,
    parse_floats,
    parse_ints,
    parse_list,
    queue_config,
)
from autellix.config import ConfigError

DEFAULT_LOADS = "0.8,1.2,1.6,2.4"
DEFAULT_VLLM_RATES = "0.5,1,2"


def register(app: typer.Typer) -> None:
    @app.command(help="Sweep arrival rates x schedulers (x balancers x engines) on one workload; "
                      "print mean/p95/p99 program token latency per rate, throughput at a latency "
                      "target and ratios to FCFS/MLFQ; write results/<name>/. With no options: the "
                      "mixed workload on one simulated A100 Llama-3.1-8B engine.")
    def compare(
        workload: str = typer.Option("mixed", help="generator name or a JSONL program file"),
        n: int = typer.Option(150, help="programs per run"),
        rates: str = typer.Option("", help="comma-separated arrival rates (programs/s); "
                                           "overrides --loads"),
        loads: str = typer.Option(DEFAULT_LOADS, help="(sim) arrival rates as multiples of the "
                                  "cluster's full-batch capacity (autellix.sim.capacity)"),
        policies: str = typer.Option("fcfs,mlfq,atlas,srpt", help="schedulers to compare"),
        balancers: str = typer.Option("autellix", help="balancers (with --engines > 1)"),
        engines: str = typer.Option("1", help="engine counts, comma-separated"),
        engine: str = typer.Option("sim",
            help="'sim' (calibrated simulator) or 'vllm' (real engines)"),
        profile: str = typer.Option("a100-80gb-llama-3.1-8b", help="simulator cost profile"),
        max_num_seqs: int = typer.Option(64,
            help="max running sequences per engine (vLLM default: 256; see README on why 64)"),
        max_batched_tokens: int = typer.Option(2048,
            help="token budget per step (chunked prefill)"),
        kv_tokens: int = typer.Option(0, help="KV capacity in tokens (0: the profile's)"),
        preemption: str = typer.Option("recompute", help="'recompute' or 'swap' (simulator)"),
        schedule_interval: int = typer.Option(1, help="run the scheduler every N steps"),
        boundaries: str = typer.Option("",
            help="fixed queue boundaries in engine-seconds (default: 16 step times, doubling)"),
        beta: float = typer.Option(8.0, help="anti-starvation ratio"),
        latency_target: float = typer.Option(0.0,
            help="s/token; 0 = halfway (geometric) up FCFS's curve"),
        metric: str = typer.Option("mean",
            help="latency statistic for throughput: mean, p95 or p99"),
        seed: int = typer.Option(0, help="seed for workload and arrivals"),
        name: str = typer.Option("", help="results folder name (default: <workload>-<engine>)"),
        out: Path = typer.Option(Path("results"), help="parent folder of results"),
        save_calls: bool = typer.Option(False, help="also write per-call records"),
        jobs: int = typer.Option(0, help="(sim) worker processes for the sweep points; 0 = one "
                                 "per core. Results are identical to --jobs 1"),
        ray: bool = typer.Option(False, "--ray", help="(sim) run the sweep points as Ray tasks "
                                 "(needs autellix[ray]); results are identical to a local run"),
        address: str = typer.Option(None, help="(sim, --ray) join this Ray cluster: 'auto' or "
                                    "ray://HOST:10001 (default: a local Ray instance)"),
        engine_url: list[str] = typer.Option([],
            help="(vllm) use running engines; one per policy run"),
        model: str = typer.Option("", help="(vllm) model path; default: the tiny CPU model"),
        max_prompt_tokens: int = typer.Option(1536, help="(vllm) clip replayed prompts to this"),
        max_model_len: int = typer.Option(2048,
            help="(vllm) engine context; prompts+outputs are clipped to fit"),
    ):
        from rich.console import Console

        console = Console()
        try:
            pols = parse_list(policies, "policies")
            bals = parse_list(balancers, "balancers")
            ns = parse_ints(engines, "engines")
            load_list = parse_floats(loads, "loads") if not rates and engine == "sim" else None
            rate_list = (parse_floats(rates or DEFAULT_VLLM_RATES, "rates")
                         if load_list is None else [])
            if metric not in ("mean", "p95", "p99"):
                raise ConfigError("--metric must be mean, p95 or p99")
            if engine not in ("sim", "vllm"):
                raise ConfigError("--engine must be 'sim' or 'vllm'")
            if (ray or address) and engine != "sim":
                raise ConfigError("--ray runs simulation points; it needs --engine sim")
            if address and not ray:
                raise ConfigError("--address needs --ray")
            if ray:
                from autellix.ray import require_ray

                require_ray()
            programs = load_workload(workload, n, seed)
            qcfg = queue_config(boundaries, beta)
        except USER_ERRORS as e:
            fail(str(e))
        from autellix.compare import analyze, sweep_points

        capacity = None
        if load_list is not None:
            from autellix.sim import EngineConfig, SimConfig
            from autellix.sim.capacity import estimate_capacity

            try:
                capacity = estimate_capacity(programs, SimConfig(engine=EngineConfig(
                    profile=profile, max_num_seqs=max_num_seqs,
                    max_batched_tokens=max_batched_tokens)))
            except USER_ERRORS as e:
                fail(str(e))
            points = [pt for k in ns for pt in sweep_points(
                pols, [round(x * capacity * k, 4) for x in load_list], bals, [k])]
            rate_list = sorted({pt.rate for pt in points})
        else:
            points = sweep_points(pols, rate_list, bals, ns)
        label = name or f"{Path(workload).stem}-{engine}"
        config = {"workload": workload, "n_programs": len(programs), "seed": seed, "engine": engine,
                  "policies": pols, "balancers": bals, "engines": ns, "rates": rate_list,
                  "metric": metric, "latency_target": latency_target or "auto",
                  "loads": load_list, "capacity_per_engine": capacity,
                  "command": "autellix compare " + " ".join(__import__("sys").argv[2:])}
        t0 = time.perf_counter()
        try:
            if engine == "sim":
                result, cfg = _run_sim(programs, points, qcfg, profile, max_num_seqs,
                                       max_batched_tokens, kv_tokens, preemption,
                                       schedule_interval, seed, save_calls, console, jobs,
                                       ray_address=(address or "") if ray else None)
                config["sim"] = cfg.to_dict()
            else:
                from autellix.cli.compare_vllm import run_vllm_sweep

                result = run_vllm_sweep(programs, points, seed=seed, urls=engine_url,
                                        model=model or None, max_prompt_tokens=max_prompt_tokens,
                                        max_num_seqs=max_num_seqs, queue=qcfg, console=console,
                                        max_model_len=max_model_len)
                config["vllm"] = {"max_num_seqs": max_num_seqs,
                                  "max_prompt_tokens": max_prompt_tokens,
                                  "model": model or "tiny (random weights)", "urls": engine_url}
        except USER_ERRORS as e:
            fail(str(e))
        reference = "fcfs" if "fcfs" in pols or len(bals) < 2 else bals[0]
        analysis = analyze(result.summaries, target=latency_target or None, metric=metric,
                           reference=reference)
        from autellix.cli.render import sweep_table, throughput_table
        from autellix.results import write_run

        where = write_run(out / label, config, result.program_rows, result.call_rows,
                          result.summaries, analysis)
        cap_note = f", capacity {capacity:.3f} programs/s per engine" if capacity else ""
        console.print(sweep_table(result.summaries, f"{workload}: program token latency "
                                  f"(ms/token), engine={engine}{cap_note}", capacity))
        console.print(throughput_table(analysis, f"throughput at {metric} latency <= "
                                       f"{analysis['target']:.4f} s/token"))
        console.print(f"results: {where}/ (summary.json, programs.csv, latency.png) "
                      f"in {time.perf_counter() - t0:.0f}s")


def _run_sim(programs, points, qcfg, profile, max_num_seqs, max_batched_tokens, kv_tokens,
             preemption, schedule_interval, seed, save_calls, console, jobs=0,
             ray_address: str | None = None):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from autellix.compare import default_jobs, run_sim_sweep
    from autellix.sim import EngineConfig, SimConfig

    ecfg = EngineConfig(profile=profile, max_num_seqs=max_num_seqs,
                        max_batched_tokens=max_batched_tokens,
                        kv_capacity_tokens=kv_tokens or None, preemption=preemption,
                        schedule_interval=schedule_interval)
    base = SimConfig(engine=ecfg, queue=qcfg, seed=seed)
    from autellix.sim.costmodel import load_profile

    load_profile(profile)  # fail early on a bad name
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("simulating", total=len(points))

        def step(i, pt, s):
            bar.update(task, completed=i, description=f"{pt.policy} @ {pt.rate:g}/s")

        if ray_address is not None:  # "" = a local Ray instance
            from autellix.ray.sweep import run_ray_sweep

            result = run_ray_sweep(programs, points, base, progress=step,
                                   keep_calls=save_calls, address=ray_address or None)
        else:
            result = run_sim_sweep(programs, points, base, progress=step,
                                   keep_calls=save_calls, jobs=jobs or default_jobs())
    return result, base
