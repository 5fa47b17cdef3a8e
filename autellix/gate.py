"""Performance gate: rerun a committed baseline's sweep and flag regressions.

A baseline (``results/baselines/*.json``) records a simulator sweep's full config,
the latency target it used, each scheduler's throughput ratio to FCFS and each
point's mean and p95 program token latency. ``run_gate`` reruns the same sweep
(the simulator is deterministic) and reports a regression when

* a scheduler's throughput ratio to FCFS falls below ``baseline * (1 - tolerance)``;
* a point's mean or p95 token latency rises above ``baseline * (1 + tolerance)``.

Improvements never fail the gate; they are listed so a maintainer can refresh the
baseline with ``autellix gate --update``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from autellix.compare import analyze, run_sim_sweep, sweep_points
from autellix.config import ConfigError, QueueConfig

DEFAULT_BASELINE = Path("results/baselines/ci-gate.json")
DEFAULT_GATE_CONFIG = {
    "workload": "mixed", "n": 120, "seed": 0, "rates": [0.3, 0.7, 1.0, 1.4],
    "policies": ["fcfs", "atlas", "srpt"],
    "engine": {"profile": "a100-80gb-llama-3.1-8b", "max_num_seqs": 32},
    "queue": {}, "metric": "mean", "target_factor": 1.3,
}


@dataclass
class GateReport:
    failures: list[str] = field(default_factory=list)
    improvements: list[str] = field(default_factory=list)
    current: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


def measure(config: dict, target: float | None = None) -> dict:
    """Run the gate's sweep; returns a baseline-shaped document."""
    from autellix.sim import EngineConfig, SimConfig
    from autellix.workloads.registry import generate

    programs = generate(config["workload"], config["n"], config["seed"])
    qkw = dict(config.get("queue") or {})
    if "boundaries" in qkw:
        qkw["boundaries"] = tuple(qkw["boundaries"])
    base = SimConfig(engine=EngineConfig(**config["engine"]), queue=QueueConfig(**qkw),
                     seed=config["seed"])
    pts = sweep_points(config["policies"], config["rates"])
    res = run_sim_sweep(programs, pts, base)
    an = analyze(res.summaries, target=target, target_factor=config.get("target_factor", 2.0),
                 metric=config.get("metric", "mean"))
    ratios = {r["policy"]: r.get("vs_fcfs") for r in an["rows"] if r["policy"] != "fcfs"}
    points = [{"policy": s.policy, "rate": s.rate, "mean": s.token_latency["mean"],
               "p95": s.token_latency["p95"], "completed": s.completed, "n": s.n_programs}
              for s in res.summaries]
    return {"config": config, "target": an["target"], "ratios_vs_fcfs": ratios, "points": points}


def compare_to_baseline(baseline: dict, current: dict, tolerance: float) -> GateReport:
    rep = GateReport(current=current)
    for pol, base_ratio in baseline["ratios_vs_fcfs"].items():
        new = current["ratios_vs_fcfs"].get(pol)
        if base_ratio is None or (isinstance(base_ratio, float) and math.isnan(base_ratio)):
            continue
        if new is None or new < base_ratio * (1 - tolerance):
            rep.failures.append(f"{pol}: throughput ratio to fcfs fell from {base_ratio:.2f}x "
                                f"to {new if new is None else round(new, 2)}x "
                                f"(tolerance {tolerance:.0%})")
        elif new > base_ratio * (1 + tolerance):
            rep.improvements.append(f"{pol}: ratio to fcfs rose {base_ratio:.2f}x -> {new:.2f}x")
    now = {(p["policy"], p["rate"]): p for p in current["points"]}
    for p in baseline["points"]:
        q = now.get((p["policy"], p["rate"]))
        if q is None:
            rep.failures.append(f"{p['policy']} @ {p['rate']}/s: missing from the fresh run")
            continue
        if q["completed"] < p["completed"]:
            rep.failures.append(f"{p['policy']} @ {p['rate']}/s: {q['completed']} programs "
                                f"completed, baseline {p['completed']}")
        for stat in ("mean", "p95"):
            if q[stat] > p[stat] * (1 + tolerance):
                rep.failures.append(f"{p['policy']} @ {p['rate']}/s: {stat} token latency "
                                    f"{q[stat]:.4f} > baseline {p[stat]:.4f} (+{tolerance:.0%})")
    return rep


def run_gate(baseline_path: Path = DEFAULT_BASELINE, tolerance: float = 0.10) -> GateReport:
    if not 0 <= tolerance < 1:
        raise ConfigError("tolerance must be in [0, 1)")
    path = Path(baseline_path)
    if not path.is_file():
        raise FileNotFoundError(f"baseline not found: {path} "
                                "(create it with 'autellix gate --update')")
    try:
        baseline = json.loads(path.read_text())
        config = baseline["config"]
    except (json.JSONDecodeError, KeyError) as e:
        raise ConfigError(f"{path}: not a gate baseline ({e})") from None
    current = measure(config, target=baseline["target"])
    return compare_to_baseline(baseline, current, tolerance)


def write_baseline(path: Path = DEFAULT_BASELINE, config: dict | None = None) -> dict:
    doc = measure(config or DEFAULT_GATE_CONFIG)
    doc["note"] = ("perf-gate baseline: simulator sweep, rerun by 'autellix gate'; "
                   "refresh with 'autellix gate --update' after an intended change")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return doc
