"""``autellix compare --engine vllm``: the same sweep on real vLLM engines.

For each (policy, balancer, engine count) it launches engines with that scheduler
(or uses ``--engine-url``), puts the gateway in front (it tags every call with its
program for the engine scheduler), replays the same programs at every rate, and
stops them. ``vllm-fcfs`` (alias ``vllm-opt``: vLLM 0.32 has prefix caching and
chunked prefill on) and ``vllm-priority`` run *stock* vLLM (the latter with
client-side priorities, the crude PLAS of lessons.md); the other policies run
autellix's scheduler. Statistics come from the steady-state window
(:mod:`autellix.steady`), as in the simulator. Unless ``--rates`` fixes them, rates
are ``--loads`` times the capacity :func:`probe_capacity` measures first, on the
reference arm, on this machine (:mod:`autellix.real_capacity`).
"""

from __future__ import annotations

import math
import threading
import time
from contextlib import contextmanager

from autellix.compare import SweepResult
from autellix.config import ConfigError
from autellix.errors import EngineError


class _Gateway:
    def __init__(self, urls, balancer: str):
        import uvicorn

        from autellix.gateway import create_app
        from autellix.vllm.launch import free_port_run

        self.port = free_port_run()
        cfg = uvicorn.Config(create_app(urls, balancer), host="127.0.0.1", port=self.port,
                             log_level="warning", access_log=False)
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise EngineError("gateway did not start within 30 s")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


STOCK_ALIASES = {"vllm-opt": "vllm-fcfs"}
SIM_ONLY = ("srpt", "vllm")


def stock_policy(arm: str) -> str:
    policy = STOCK_ALIASES.get(arm, arm)
    if policy in SIM_ONLY:
        raise ConfigError(f"{arm} is simulator-only (srpt is clairvoyant; vllm needs prefix "
                          "caching and chunked prefill off); drop it with --engine vllm")
    return policy


@contextmanager
def arm_endpoint(arm: str, balancer: str, n: int, *, urls, model, max_num_seqs: int,
                 max_model_len: int, queue, console):
    """The gateway URL in front of ``n`` engines running ``arm`` (launched here and
    stopped on exit, or the given ``urls``)."""
    from autellix.vllm.launch import free_port_run, launch_engines, stop_engines

    policy = stock_policy(arm)
    # only what the command set: boundaries left as None follow the engine's step time
    qdict = {"beta": queue.beta, "starvation_floor": queue.starvation_floor}
    if queue.boundaries is not None:
        qdict["boundaries"] = list(queue.boundaries)
    engines = []
    gw = None
    try:
        if urls:
            eng_urls = list(urls)
        else:
            console.print(f"starting {n} vLLM engine(s) with policy {policy} ...")
            engines = launch_engines(n, policy=policy, model=model,
                                     base_port=free_port_run(n), max_num_seqs=max_num_seqs,
                                     max_model_len=max_model_len,
                                     queue=None if policy.startswith("vllm-") else qdict)
            eng_urls = [e.url for e in engines]
        # every arm goes through the gateway, even with one engine: it tags calls with
        # vllm_xargs (program id, thread, service) and costs every arm the same
        gw = _Gateway(eng_urls, balancer)
        yield gw.url
    finally:
        if gw is not None:
            gw.stop()
        if engines:
            stop_engines(engines)


def probe_capacity(programs, arm: str, balancer: str, n: int, *, seed: int, urls, model,
                   max_prompt_tokens: int, max_num_seqs: int, max_model_len: int, queue,
                   console):
    """``arm``'s capacity on ``n`` engines on this machine (:mod:`autellix.real_capacity`)."""
    from autellix.real_capacity import measure_capacity

    with arm_endpoint(arm, balancer, n, urls=urls, model=model, max_num_seqs=max_num_seqs,
                      max_model_len=max_model_len, queue=queue, console=console) as url:
        console.print(f"  measuring capacity: {len(programs)} programs at once on {arm}")
        cap = measure_capacity(programs, url, seed=seed, max_prompt_tokens=max_prompt_tokens,
                               max_model_len=max_model_len)
    console.print(f"  capacity {cap.programs_per_s:.3g} programs/s ({n} engine(s); "
                  f"{cap.counted} completions over {cap.span_s:.1f} s)")
    return cap


def run_vllm_sweep(programs, points, *, seed: int, urls, model, max_prompt_tokens: int,
                   max_num_seqs: int, queue, console, max_model_len: int = 2048,
                   window=None) -> SweepResult:
    from autellix.metrics import summarize
    from autellix.replay import replay
    from autellix.steady import Window, check_steady

    if window is None:  # measure every program: one window over all arrivals
        window = Window(1e12, 0.0, 0.0, horizon_factor=1.0)

    out = SweepResult()
    groups: dict[tuple, list] = {}
    for pt in points:
        groups.setdefault((pt.arm, pt.balancer, pt.n_engines), []).append(pt.rate)
    for (arm, balancer, n), rates in groups.items():
        policy = stock_policy(arm)
        with arm_endpoint(arm, balancer, n, urls=urls, model=model, max_num_seqs=max_num_seqs,
                          max_model_len=max_model_len, queue=queue,
                          console=console) as endpoint:
            for rate in rates:
                # real engines: rate x span programs (no safety margin: every one costs time)
                k = min(len(programs), max(4, math.ceil(rate * window.span)))
                console.print(f"  replaying {k} programs at {rate:g}/s on {policy}")
                progs, calls = replay(programs[:k], endpoint,
                                      rate=rate, seed=seed,
                                      max_prompt_tokens=max_prompt_tokens,
                                      max_model_len=max_model_len,
                                      priority_mode=(policy == "vllm-priority"))
                measured = window.select(progs)
                steady = check_steady(measured, window.tolerance, progs, window)
                s = summarize(measured, engine="vllm", policy=arm, balancer=balancer, rate=rate,
                              extra={"n_engines": n, "seed": seed, "stable": steady.stable,
                                     "steady": steady.to_dict(),
                                     "failed_calls": sum(c.status != "completed" for c in calls)})
                out.summaries.append(s)
                ids = {p.program_id for p in measured}
                for p in progs:
                    out.program_rows.append({"policy": arm, "rate": rate, "balancer": balancer,
                                             "n_engines": n, **p.to_row(),
                                             "in_window": p.program_id in ids})
    return out
