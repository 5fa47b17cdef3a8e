"""Performance gate: compare a fresh measurement with a baseline, and fail only on a
regression that lies outside the noise.

Three sources, one judgement:

* ``autellix gate`` reruns the simulated comparison recorded in a committed baseline
  (``results/baselines/ci-gate.json``) with its seeds;
* ``autellix gate --compare A B`` compares two ``autellix compare`` result folders;
* ``autellix gate --endpoint URL`` replays a workload against any OpenAI endpoint,
  ``--repeats`` times per rate (:mod:`autellix.gate_endpoint`).

Each yields *metrics*: a name, a direction (higher or lower is better) and one value
per repeat or seed. A metric **regresses** when its mean is worse than the
baseline's by more than ``tolerance`` *and* the change is outside the noise: with
the same number (>= 2) of values a side, value k of each run shares seed k, so the
test is paired: the 95% interval (:mod:`autellix.stats`) of the per-seed relative
changes must exclude zero; otherwise the two runs' 95% intervals must not overlap.
With a single value a side the tolerance alone decides. This is ``vllm bench --compare``'s
regression marker with the noise band made explicit. Improvements never fail; they
are listed so a maintainer refreshes the baseline (``--update``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from autellix.config import ConfigError
from autellix.stats import mean_ci

DEFAULT_BASELINE = Path("results/baselines/ci-gate.json")
# The gate reruns the same code path on the same seeds, and the simulator is
# deterministic, so it needs sensitivity, not a converged window: a floor of 1 unloaded
# p99 lifetime (compare's default is 4) and a 10% search tolerance keep it to about
# half a minute, and PLAS still beats vllm-opt by 1.3x and 2.0x on the two seeds.
DEFAULT_GATE_CONFIG = {
    "workload": "chatbot", "window": 30, "seeds": [0, 1], "loads": [0.5, 0.9],
    "arms": ["vllm-opt", "plas"], "engine": {"max_num_seqs": 8}, "queue": {},
    "slo": "3x", "metric": "mean", "rel_tol": 0.1, "min_lifetimes": 1,
}


@dataclass
class GateReport:
    failures: list[str] = field(default_factory=list)
    improvements: list[str] = field(default_factory=list)
    # worse by more than the tolerance, but the repeats are too noisy to call it: a
    # pass that says so, so a user sees what a noisy baseline or run may be hiding
    within_noise: list[str] = field(default_factory=list)
    checked: int = 0
    current: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


def metric(values, higher_is_better: bool) -> dict:
    vals = [None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
            for v in values]
    return {"values": vals, "higher_is_better": higher_is_better}


def metrics_from_results(doc: dict) -> dict:
    """Gate metrics of an ``autellix compare`` summary.json: capacity and ratios per arm
    (per seed, higher is better) and mean / p95 token latency per grid point (per seed,
    lower is better; an unstable point counts as infinite latency)."""
    out = {}
    an = doc.get("analysis") or {}
    for row in an.get("rows", []):
        name = f"{row['policy']}/{row['balancer']}/x{row['n_engines']}"
        if row.get("bound") is None:
            out[f"capacity {name}"] = metric([c["rate"] for c in row["per_seed"]], True)
        for k, v in row.items():
            if k.startswith("vs_") and v.get("bound") is None and "per_seed" in v:
                out[f"ratio {name} {k}"] = metric(v["per_seed"], True)
    pts: dict = {}
    for s in doc.get("summaries", []):
        key = f"{s['policy']}/{s['balancer']}/x{s['extra'].get('n_engines', 1)} @ {s['rate']:g}/s"
        stable = s["extra"].get("stable", True) and s["completed"] == s["n_programs"]
        for stat in ("mean", "p95"):
            v = s["token_latency"][stat] if stable else math.inf
            pts.setdefault(f"{stat} token latency {key}", []).append(v)
        pts.setdefault(f"completed {key}", []).append(s["completed"] / max(1, s["n_programs"]))
    for k, vals in pts.items():
        out[k] = metric(vals, k.startswith("completed"))
    return out


def _fmt(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:.4g}"


def judge(baseline: dict, current: dict, tolerance: float) -> GateReport:
    """Compare metric dicts (``metric`` entries) and report noise-aware regressions."""
    if not 0 <= tolerance < 1:
        raise ConfigError("tolerance must be in [0, 1)")
    rep = GateReport(current=current)
    for name, b in baseline.items():
        c = current.get(name)
        if c is None:
            rep.failures.append(f"{name}: missing from the fresh run")
            continue
        rep.checked += 1
        be, ce = mean_ci(_finite_or_inf(b["values"])), mean_ci(_finite_or_inf(c["values"]))
        if be.n == 0:
            continue
        if ce.n == 0:
            rep.failures.append(f"{name}: no value in the fresh run")
            continue
        up = b["higher_is_better"]
        if not up and math.isinf(ce.mean) and math.isfinite(be.mean):
            rep.failures.append(f"{name}: {_fmt(be.mean)} -> unstable or lost programs")
            continue
        worse = ce.mean < be.mean * (1 - tolerance) if up else ce.mean > be.mean * (1 + tolerance)
        better = ce.mean > be.mean * (1 + tolerance) if up else ce.mean < be.mean * (1 - tolerance)
        band = f"{_fmt(be.mean)} -> {_fmt(ce.mean)}"
        outside, why = _noise(b["values"], c["values"], be, ce, up)
        if worse and outside:
            rep.failures.append(f"{name}: {band}, worse by more than {tolerance:.0%}{why}")
        elif worse:
            rep.within_noise.append(f"{name}: {band}, worse by more than {tolerance:.0%} "
                                    f"but inside the noise{why}")
        elif better and _noise(b["values"], c["values"], be, ce, not up)[0]:
            rep.improvements.append(f"{name}: {band}")
    return rep


def _noise(bv, cv, be, ce, up: bool) -> tuple[bool, str]:
    """Whether a move *down* (``up``: higher is better) or *up* (lower is better) lies
    outside the noise, and the band that says so (text for the report)."""
    pairs = list(zip(bv, cv, strict=False))
    if len(bv) == len(cv) >= 2 and all(x is not None and y is not None for x, y in pairs):
        if all(_positive(x) and _positive(y) for x, y in pairs):
            # Latencies and capacities are ratio-scale: a slowdown multiplies them, and
            # noise (a repeat that shared the CPU) does too. The interval is taken over
            # log ratios, so one inflated repeat cannot stretch it past zero the way it
            # stretches an interval over y/x - 1, which is unbounded above.
            e = mean_ci([math.log(y / x) for x, y in pairs])
            lo, hi, mid = math.expm1(e.lo), math.expm1(e.hi), math.expm1(e.mean)
            kind = "geometric mean"
        else:
            e = mean_ci([(y / x - 1) if x else 0.0 for x, y in pairs])
            lo, hi, mid, kind = e.lo, e.hi, e.mean, "mean"
        why = f" (paired over {e.n} seeds: {kind} {mid:+.1%}, 95% CI [{lo:+.1%}, {hi:+.1%}])"
        return ((hi < 0) if up else (lo > 0)), why
    if math.isnan(be.lo) or math.isnan(ce.lo):
        return True, ""  # one value a side: no interval, the tolerance decides
    why = f" (95% CIs [{_fmt(be.lo)}, {_fmt(be.hi)}] vs [{_fmt(ce.lo)}, {_fmt(ce.hi)}])"
    return not be.overlaps(ce), why


def _positive(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v) and v > 0


def _finite_or_inf(vals):
    return [math.inf if v == "inf" else v for v in vals if v is not None]


# --------------------------------------------------------------- simulated gate
def measure(config: dict, jobs: int = 1) -> dict:
    """Run the gate's simulated comparison; returns the summary.json-shaped document."""
    from autellix.config import QueueConfig
    from autellix.sim import EngineConfig, SimConfig
    from autellix.sim_compare import LIFETIMES, engine_capacity, run_sim_compare
    from autellix.slo import SLO
    from autellix.workloads.registry import generate

    qkw = dict(config.get("queue") or {})
    if "boundaries" in qkw:
        qkw["boundaries"] = tuple(qkw["boundaries"])
    seeds = list(config["seeds"])
    base = SimConfig(engine=EngineConfig(**config["engine"]), queue=QueueConfig(**qkw),
                     seed=seeds[0])

    def load(n, s):
        return generate(config["workload"], n, s)

    cap = engine_capacity(load(400, seeds[0]), base)
    out = run_sim_compare(load, seeds, base, config["arms"], window_programs=config["window"],
                          slo=SLO.parse(config["slo"], config["metric"]), capacity=cap,
                          loads=config["loads"], jobs=jobs,
                          rel_tol=config.get("rel_tol", 0.03),
                          lifetimes=config.get("min_lifetimes", LIFETIMES))
    from autellix.results import _clean

    return _clean({"summaries": [s.to_dict() for s in out.summaries], "analysis": out.analysis})


def run_gate(baseline_path: Path = DEFAULT_BASELINE, tolerance: float = 0.10,
             jobs: int = 1) -> GateReport:
    baseline = load_baseline(baseline_path)
    if baseline.get("kind", "sim") != "sim":
        raise ConfigError(f"{baseline_path}: an endpoint baseline; use --endpoint")
    current = metrics_from_results(measure(baseline["config"], jobs))
    return judge(baseline["metrics"], current, tolerance)


def load_baseline(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"baseline not found: {path} (create it with 'autellix gate "
                                f"--update')")
    try:
        doc = json.loads(path.read_text())
        doc["config"], doc["metrics"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: not a gate baseline ({e})") from None
    return doc


def save_baseline(path, kind: str, config: dict, metrics: dict, note: str) -> dict:
    doc = {"kind": kind, "config": config, "metrics": metrics, "note": note}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    return doc


def write_baseline(path: Path = DEFAULT_BASELINE, config: dict | None = None,
                   jobs: int = 1) -> dict:
    config = config or DEFAULT_GATE_CONFIG
    metrics = metrics_from_results(measure(config, jobs))
    return save_baseline(path, "sim", config, metrics,
                         "perf-gate baseline: simulated comparison, rerun by 'autellix gate'; "
                         "refresh with 'autellix gate --update' after an intended change")


def compare_folders(a, b, tolerance: float = 0.10) -> GateReport:
    """``gate --compare A B``: B judged against A (two ``autellix compare`` folders)."""
    docs = []
    for d in (a, b):
        p = Path(d) / "summary.json"
        if not p.is_file():
            raise FileNotFoundError(f"{d}: no summary.json (not an 'autellix compare' folder)")
        try:
            docs.append(json.loads(p.read_text()))
        except json.JSONDecodeError as e:
            raise ConfigError(f"{p}: not JSON ({e})") from None
    return judge(metrics_from_results(docs[0]), metrics_from_results(docs[1]), tolerance)
