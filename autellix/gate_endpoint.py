"""``autellix gate --endpoint URL``: a perf gate for a user's own deployment.

Replays a workload (:mod:`autellix.replay`: dependencies, tool delays, growing
shared context) against any OpenAI-compatible endpoint, their vLLM with or without
our gateway, ``repeats`` times per arrival rate, each repeat with its own arrival
seed. Every repeat gives one value of each metric per rate: mean and p95 program
token latency, mean program end-to-end time (lower is better) and the fraction of
programs completed (higher is better). The spread over repeats is the noise band
:func:`autellix.gate.judge` uses: a failure needs the mean to be worse by more than
the tolerance *and* the 95% intervals to separate.

The baseline file records the workload, rates, repeats and clipping with the
metrics, so a rerun measures exactly the same thing; only the endpoint may change.
"""

from __future__ import annotations

from autellix.config import ConfigError
from autellix.gate import GateReport, judge, load_baseline, metric, save_baseline


def endpoint_config(workload: str, n: int, rates, repeats: int, seed: int, model: str,
                    max_prompt_tokens: int, max_output_tokens: int) -> dict:
    if repeats < 1:
        raise ConfigError("--repeats must be >= 1")
    if n < 1:
        raise ConfigError("--n must be >= 1")
    return {"workload": workload, "n": n, "rates": list(rates), "repeats": repeats,
            "seed": seed, "model": model or None, "max_prompt_tokens": max_prompt_tokens,
            "max_output_tokens": max_output_tokens}


def measure_endpoint(endpoint: str, cfg: dict, progress=None) -> dict:
    """Gate metrics from ``repeats`` replays per rate against ``endpoint``."""
    from autellix.cli.common import load_workload
    from autellix.metrics import summarize
    from autellix.replay import replay

    programs = load_workload(cfg["workload"], cfg["n"], cfg["seed"])
    acc: dict = {}
    for rate in cfg["rates"]:
        for k in range(cfg["repeats"]):
            progs, _ = replay(programs, endpoint, rate=rate, seed=cfg["seed"] + k,
                              model=cfg.get("model"), max_prompt_tokens=cfg["max_prompt_tokens"],
                              max_output_tokens=cfg["max_output_tokens"])
            s = summarize(progs, engine="endpoint", policy="-", balancer="-", rate=rate)
            at = f"@ {rate:g}/s"
            for name, v, up in ((f"mean token latency {at}", s.token_latency["mean"], False),
                                (f"p95 token latency {at}", s.token_latency["p95"], False),
                                (f"mean program e2e {at}", s.e2e["mean"], False),
                                (f"completed {at}", s.completed / max(1, s.n_programs), True)):
                acc.setdefault(name, ([], up))[0].append(v)
            if progress is not None:
                progress(rate, k, s)
    return {name: metric(vals, up) for name, (vals, up) in acc.items()}


def write_endpoint_baseline(path, endpoint: str, cfg: dict) -> dict:
    return save_baseline(path, "endpoint", cfg, measure_endpoint(endpoint, cfg),
                         f"endpoint perf-gate baseline measured against {endpoint}; rerun "
                         "with 'autellix gate --endpoint URL --baseline FILE'")


def run_endpoint_gate(endpoint: str, baseline_path, tolerance: float,
                      cfg: dict | None = None) -> GateReport:
    """Replay the baseline's own configuration (``cfg`` is used only when the baseline
    records none) and judge the fresh metrics against it."""
    base = load_baseline(baseline_path)
    if base.get("kind") != "endpoint":
        raise ConfigError(f"{baseline_path}: not an endpoint baseline (write one with "
                         "'autellix gate --endpoint URL --baseline FILE --update')")
    config = base["config"] or cfg
    if not config:
        raise ConfigError(f"{baseline_path}: the baseline records no configuration to replay")
    current = measure_endpoint(endpoint, config)
    return judge(base["metrics"], current, tolerance)
