"""``autellix compare``: capacity of schedulers at a latency SLO, measured at steady state."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer

from autellix.cli.common import fail, load_workload, parse_floats, parse_list, queue_config
from autellix.config import ConfigError
from autellix.errors import AutellixError

DEFAULT_LOADS = "0.4,0.7,0.85,1.0,1.2"
DEFAULT_VLLM_LOADS = "0.5,0.8,1.1"
DEFAULT_ARMS = "vllm-opt,mlfq,plas,srpt"
DEFAULT_VLLM_ARMS = "vllm-opt,mlfq,plas"  # srpt is clairvoyant: simulator only


def register(app: typer.Typer) -> None:
    @app.command(help="Compare schedulers on one workload: mean/p95/p99 program token latency "
                      "at a grid of arrival rates (each point at steady state, or 'unstable'), "
                      "then each scheduler's capacity at a latency SLO (bracketing + bisection) "
                      "and its ratio to the baselines, with 95% CIs over --seeds; writes "
                      "results/<name>/. With no options: BFCL-like ReAct tool loops on one "
                      "simulated A100 Llama-3.1-8B engine (the default workload is one whose "
                      "answer holds when the window doubles; see README). Arms: any policy, "
                      "or vllm (no prefix caching, no chunked prefill), vllm-opt, "
                      "vllm-priority, las-router.")
    def compare(
        workload: str = typer.Option("react", help="generator name or a JSONL program file"),
        n: float | None = typer.Option(None, "--window", "--n", help="steady-state window: as "
                                       "long as this many arrivals take at capacity, and at "
                                       "least 4 unloaded p99 program lifetimes (programs "
                                       "arriving in it are measured; on sim, a rate below "
                                       "capacity gets a longer window holding as many "
                                       "arrivals). Default: 150, or the "
                                       "window a generator was measured to need on the "
                                       "simulator (chatbot: 1600, mixed: 900)"),
        check_window: bool = typer.Option(False, "--check-window", help="(sim) rerun with the "
                                          "window doubled and report how far each capacity "
                                          "ratio moved (converged: at most 10%)"),
        min_lifetimes: float = typer.Option(4.0, help="(sim) the window lasts at least this "
                                            "many unloaded p99 program lifetimes; lower is "
                                            "faster but can drift with the window's length"),
        warmup: float = typer.Option(0.5, help="warm-up before the window, as a fraction of it"),
        cooldown: float = typer.Option(0.5, help="cool-down after the window, as a fraction of it"),
        rates: str = typer.Option("", help="comma-separated arrival rates (programs/s), "
                                           "instead of --loads"),
        loads: str = typer.Option("", help="grid rates as multiples of capacity: the "
                                  "simulated cluster's full-batch capacity (default "
                                  f"{DEFAULT_LOADS}), or with --engine vllm the capacity "
                                  "measured first on this machine (default "
                                  f"{DEFAULT_VLLM_LOADS})"),
        policies: str = typer.Option("", help="arms to compare (policies or named "
                                     "baselines: vllm, vllm-opt, vllm-priority, las-router; "
                                     f"default {DEFAULT_ARMS}, with --engine vllm "
                                     f"{DEFAULT_VLLM_ARMS})"),
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
            help="queue boundaries in engine-seconds (default 0.25..512)"),
        beta: float = typer.Option(8.0, help="anti-starvation ratio"),
        slo: str = typer.Option("3x", help="latency SLO: a multiple of the unloaded statistic "
                                "(e.g. 3x) or an absolute value (s/token; s for e2e metrics)"),
        metric: str = typer.Option("mean", help="SLO statistic: mean, p95, p99 (program token "
                                   "latency), e2e or e2e-p95 (program end-to-end seconds)"),
        search: bool = typer.Option(True, help="search each arm's capacity at the SLO"),
        seeds: int = typer.Option(1,
            help="repeat every point with K seeds (workload and arrivals)"),
        seed: int = typer.Option(0, help="first seed"),
        jobs: int = typer.Option(0, help="parallel simulator processes (0: number of cores)"),
        ray: bool = typer.Option(False, "--ray", help="(sim) run the sweep points as Ray tasks "
                                 "(needs autellix[ray]); results are identical to a local run"),
        address: str = typer.Option("", help="(sim, --ray) join this Ray cluster: 'auto' or "
                                    "ray://HOST:10001 (default: a local Ray instance)"),
        name: str = typer.Option("", help="results folder name (default: <workload>-<engine>)"),
        out: Path = typer.Option(Path("results"), help="parent folder of results"),
        save_calls: bool = typer.Option(False, help="also write per-call records"),
        engine_url: list[str] = typer.Option([],
            help="(vllm) use running engines; one per policy run"),
        model: str = typer.Option("", help="(vllm) model path; default: the tiny CPU model"),
        max_prompt_tokens: int = typer.Option(1536, help="(vllm) clip replayed prompts to this"),
        max_model_len: int = typer.Option(2048,
            help="(vllm) engine context; prompts+outputs are clipped to fit"),
        capacity_programs: int = typer.Option(0, help="(vllm) programs submitted at once to "
                                              "measure capacity (0: 2 x --max-num-seqs per "
                                              "engine, at least 16)"),
    ):
        from rich.console import Console

        from autellix.arms import get_arm
        from autellix.compare import window_change
        from autellix.sim_compare import engine_capacity
        from autellix.slo import SLO
        from autellix.steady import Window
        from autellix.sweep import default_jobs
        from autellix.workloads.registry import (
            DEFAULT_STEADY_WINDOW,
            steady_window,
            window_caveats,
        )

        console = Console()
        try:
            arms = parse_list(policies or (DEFAULT_VLLM_ARMS if engine == "vllm"
                                           else DEFAULT_ARMS), "policies")
            bals = parse_list(balancers, "balancers")
            ns = [int(x) for x in parse_list(engines, "engines")]
            if engine not in ("sim", "vllm"):
                raise ConfigError("--engine must be 'sim' or 'vllm'")
            if (ray or address) and engine != "sim":
                raise ConfigError("--ray runs simulation points; it needs --engine sim")
            if address and not ray:
                raise ConfigError("--address needs --ray")
            if ray:
                from autellix.ray import require_ray

                require_ray()
            arm_defs = {a: (get_arm(a).to_dict() if engine == "sim" else {"name": a})
                        for a in arms}
            if rates and loads:
                raise ConfigError("give --rates or --loads, not both")
            load_list = None if rates else parse_floats(
                loads or (DEFAULT_VLLM_LOADS if engine == "vllm" else DEFAULT_LOADS), "loads")
            rate_list = parse_floats(rates, "rates") if rates else []
            if capacity_programs < 0:
                raise ConfigError("--capacity-programs must be >= 0 (0: automatic)")
            slo_spec = SLO.parse(slo, metric)
            if seeds < 1:
                raise ConfigError("--seeds must be >= 1")
            if jobs < 0:
                raise ConfigError("--jobs must be >= 0 (0: number of cores)")
            qcfg = queue_config(boundaries, beta)
            loader = _loader(workload, seed)
        except (AutellixError, OSError) as e:
            fail(str(e))
        if n is None:
            n = steady_window(workload) if engine == "sim" else DEFAULT_STEADY_WINDOW
            unchecked, unsettled = (window_caveats(workload, arms)
                                    if engine == "sim" and not check_window else ([], []))
        else:
            unchecked, unsettled = [], []
        if check_window and engine != "sim":
            fail("--check-window reruns simulated points; it needs --engine sim")
        if check_window and not search:
            fail("--check-window compares capacity ratios; it needs the search (drop --no-search)")
        seed_list = list(range(seed, seed + seeds))
        label = name or f"{Path(workload).stem}-{engine}"
        config = {"workload": workload, "seeds": seed_list, "engine": engine, "arms": arms,
                  "window_programs": n, "window_unchecked": unchecked,
                  "window_unsettled": unsettled,
                  "policies": arms, "balancers": bals, "engines": ns, "loads": load_list,
                  "slo": slo_spec.to_dict(),
                  "arm_definitions": arm_defs,
                  "command": "autellix compare " + " ".join(sys.argv[2:])}
        t0 = time.perf_counter()
        if engine == "vllm":
            _run_vllm(console, config, loader, n, warmup, cooldown, arms, bals, ns, rate_list,
                      load_list, capacity_programs, seed, slo_spec, engine_url, model,
                      max_prompt_tokens, max_num_seqs, qcfg, max_model_len, out / label, t0)
            return
        try:
            from autellix.sim import EngineConfig, SimConfig
            from autellix.sim.costmodel import load_profile

            load_profile(profile)  # fail early on a bad name
            ecfg = EngineConfig(profile=profile, max_num_seqs=max_num_seqs,
                                max_batched_tokens=max_batched_tokens,
                                kv_capacity_tokens=kv_tokens or None, preemption=preemption,
                                schedule_interval=schedule_interval)
            base = SimConfig(engine=ecfg, queue=qcfg, seed=seed)
            cap = engine_capacity(loader(CAPACITY_SAMPLE, seed), base)
            Window.at_capacity(n, cap, warmup, cooldown)  # validate before any run
            if not min_lifetimes >= 0:
                raise ConfigError("--min-lifetimes must be >= 0")

            def run(window_programs, keep_calls):
                return _run_sim(console, loader, seed_list, base, arms, window_programs,
                                warmup, cooldown, slo_spec, cap, load_list, rate_list, bals,
                                ns, jobs or default_jobs(), search, keep_calls,
                                min_lifetimes, address if ray else None)

            outcome = run(n, save_calls)
            config["window"] = outcome.window.to_dict()
            if check_window:
                doubled = run(2 * outcome.window_programs, False)
                outcome.analysis["window_check"] = window_change(
                    outcome.analysis, doubled.analysis, outcome.window.duration,
                    doubled.window.duration)
        except (AutellixError, OSError) as e:
            fail(str(e))
        config.update(sim=base.to_dict(), rates=outcome.rates_by_n[ns[0]],
                      capacity_per_engine=outcome.capacity_by_n[ns[0]] / ns[0],
                      jobs=jobs or default_jobs())
        _report(console, config, outcome.summaries, outcome.analysis, out / label,
                rows=[row for r in outcome.grid for row in r.program_rows],
                calls=[row for r in outcome.grid for row in r.call_rows],
                extra_points=outcome.extra_points, timings=outcome.timings,
                capacity=outcome.capacity_by_n[ns[0]] / ns[0], t0=t0)


CAPACITY_SAMPLE = 400  # programs the capacity estimate averages over


def _loader(workload, seed):
    """``loader(n, seed)`` -> programs: a generator's, or the first n of a JSONL file
    (a file is the same programs for every seed; only arrivals change)."""
    if Path(workload).suffix in (".jsonl", ".json") or Path(workload).exists():
        programs = load_workload(workload, None, seed)
        return lambda total, s: programs[:total]
    load_workload(workload, 1, seed)  # fail early on a bad name
    return lambda total, s: load_workload(workload, total, s)


def _run_sim(console, loader, seeds, base, arms, n, warmup, cooldown, slo, cap, loads, rates,
             bals, ns, jobs, search, save_calls, lifetimes, ray_address):
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from autellix.sim_compare import run_sim_compare

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("simulating", total=None)

        def step(i, res):
            pt = res.point
            bar.update(task, description=f"{i} points simulated ({jobs} jobs); last: "
                       f"{pt.arm} @ {pt.rate:g}/s seed {pt.seed}")

        return run_sim_compare(loader, seeds, base, arms, window_programs=n, warmup=warmup,
                               cooldown=cooldown, slo=slo, capacity=cap, loads=loads,
                               rates=rates, balancers=bals, engines=ns, jobs=jobs,
                               search=search, keep_calls=save_calls, progress=step,
                               lifetimes=lifetimes, ray_address=ray_address)


def _report(console, config, summaries, analysis, where, *, rows=(), calls=(), extra_points=(),
            timings=None, capacity=None, t0=0.0):
    import json

    from autellix.cli.render import sweep_table, throughput_table, window_check_table
    from autellix.results import write_run

    analysis = dict(analysis)
    analysis["search_points"] = [
        {"arm": r.point.arm, "balancer": r.point.balancer, "n_engines": r.point.n_engines,
         "seed": r.point.seed, "rate": r.point.rate, "stable": r.summary.extra.get("stable", True),
         "token_latency": r.summary.token_latency, "e2e": r.summary.e2e}
        for r in extra_points]
    out = write_run(where, config, list(rows), list(calls), summaries, analysis)
    timings = {**(timings or {}), "wall_s": time.perf_counter() - t0}
    (out / "timings.json").write_text(json.dumps(timings, indent=1) + "\n")
    w = config["window"]
    cap_note = f", capacity {capacity:.3f} programs/s per engine" if capacity else ""
    stretch = (f" (below capacity: as long as {w['min_programs']:.0f} arrivals take)"
               if w.get("min_programs") else "")
    console.print(sweep_table(summaries, f"{config['workload']}: program token latency "
                              f"(ms/token), programs arriving in a {w['duration_s']:.0f} s "
                              f"steady-state window{stretch}, "
                              f"engine={config['engine']}{cap_note}", capacity))
    if analysis["rows"]:
        slo = analysis["slo"]
        unit = "s" if slo["metric"].startswith("e2e") else "s/token"
        how = f"{slo['factor']:g}x unloaded" if slo["value"] is None else "absolute"
        seeds = len(analysis["seeds"])
        console.print(throughput_table(analysis, f"capacity at {slo['metric']} <= "
                                       f"{analysis['target']:.4g} {unit} ({how}); ratios: mean "
                                       f"[95% CI] over {seeds} seed(s)"))
    if analysis.get("window_check"):
        console.print(window_check_table(analysis["window_check"]))
    elif note := window_note(config):
        console.print(note)
    console.print(f"results: {out}/ (summary.json, programs.csv, latency.png, timings.json) "
                  f"in {time.perf_counter() - t0:.0f}s")


def window_note(config: dict) -> str | None:
    """What the printed table must say about the default window: the arms compared
    whose ratios were measured to move by more than 10% when it doubles on this
    workload, and those its doubling was never measured on
    (``autellix.workloads.registry.window_caveats``)."""
    w, wl = config["window_programs"], config["workload"]
    unsettled, unchecked = config.get("window_unsettled"), config.get("window_unchecked")
    notes = []
    if unsettled:
        notes.append(f"note: on {wl} the default window ({w:g} arrivals) does not settle "
                     f"for {', '.join(unsettled)}: doubling it moves ratios involving "
                     f"{'it' if len(unsettled) == 1 else 'them'} by more than 10% "
                     f"(results/convergence/); read those as rough, or pass a longer "
                     f"--window with --check-window")
    if unchecked:
        notes.append(f"note: the default window ({w:g} arrivals) was never checked on {wl} "
                     f"with {', '.join(unchecked)}; --check-window checks it")
    return "\n".join(notes) or None


def _run_vllm(console, config, loader, n, warmup, cooldown, arms, bals, ns, rates, loads,
              capacity_programs, seed, slo, urls, model, max_prompt_tokens, max_num_seqs, qcfg,
              max_model_len, where, t0):
    from autellix.cli.compare_vllm import probe_capacity, run_vllm_sweep, stock_policy
    from autellix.compare import capacity_rows, grid_capacities, grid_points, reference_arm
    from autellix.steady import Window

    capacity = None
    try:
        for a in arms:
            stock_policy(a)  # fail on a simulator-only arm before any engine starts
        if loads is not None:
            # measure this machine's capacity on the reference arm, then place the rates
            ref_n = ns[0]
            k = capacity_programs or max(16, 2 * max_num_seqs * ref_n)
            cap = probe_capacity(loader(k, seed), reference_arm(arms), bals[0], ref_n,
                                 seed=seed, urls=urls, model=model or None,
                                 max_prompt_tokens=max_prompt_tokens, max_num_seqs=max_num_seqs,
                                 max_model_len=max_model_len, queue=qcfg, console=console)
            capacity = cap.programs_per_s / ref_n
            config["capacity_probe"] = {**cap.to_dict(), "arm": reference_arm(arms),
                                        "n_engines": ref_n}
            config["capacity_per_engine"] = capacity
            rates_by_n = {m: [x * capacity * m for x in loads] for m in ns}
            window = Window.at_capacity(n, capacity * ref_n, warmup, cooldown,
                                        horizon_factor=1e9)
        else:
            # fixed rates: no capacity; the window is --window programs at the lowest rate
            rates_by_n = {m: list(rates) for m in ns}
            window = Window.at_capacity(n, min(rates), warmup, cooldown, horizon_factor=1e9)
        config["window"] = window.to_dict()
        top = max(r for rs in rates_by_n.values() for r in rs)
        programs = loader(window.programs_needed(top), seed)
        pts = grid_points(arms, rates_by_n, bals, [seed])
        result = run_vllm_sweep(programs, pts, seed=seed, urls=urls, model=model or None,
                                max_prompt_tokens=max_prompt_tokens, max_num_seqs=max_num_seqs,
                                queue=qcfg, console=console, max_model_len=max_model_len,
                                window=window)
    except (AutellixError, OSError) as e:
        fail(str(e))
    analysis = {"seeds": [seed], "window": window.to_dict(), "slo": slo.to_dict(),
                "metric": slo.metric, "rows": []}
    from autellix.slo import statistic

    ref = reference_arm(arms)
    ref_pts = sorted((s for s in result.summaries if s.policy == ref), key=lambda s: s.rate)
    base = statistic(ref_pts[0], slo.metric) if ref_pts else float("nan")
    if slo.value is not None or base < float("inf"):
        # real engines: the unloaded statistic is the reference arm's at the lowest rate
        value = slo.resolve(base)
        caps = grid_capacities(result.summaries, value, slo.metric)
        analysis.update(reference=ref, target=value, unloaded=base,
                        rows=capacity_rows(caps, [seed]))
    config["vllm"] = {"max_num_seqs": max_num_seqs, "max_prompt_tokens": max_prompt_tokens,
                      "model": model or "tiny (random weights)", "urls": urls}
    config["rates"] = rates_by_n[ns[0]]
    _report(console, config, result.summaries, analysis, where, rows=result.program_rows, t0=t0,
            capacity=capacity)
