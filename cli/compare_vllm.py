"""``autellix compare --engine vllm``: the same sweep on real vLLM engines.

For each (policy, balancer, engine count) it launches engines with that scheduler
(or uses ``--engine-url``), puts the gateway in front (it tags every call with its
program for the engine scheduler), replays the same programs at every rate, and
stops them. ``vllm-fcfs`` and ``vllm-priority`` run *stock* vLLM (the latter with
client-side priorities, the crude PLAS of lessons.md); the other policies run
autellix's scheduler.
"""

from __future__ import annotations

import threading
import time

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


def run_vllm_sweep(programs, points, *, seed: int, urls, model, max_prompt_tokens: int,
                   max_num_seqs: int, queue, console, max_model_len: int = 2048) -> SweepResult:
    from autellix.metrics import summarize
    from autellix.replay import replay
    from autellix.vllm.launch import free_port_run, launch_engines, stop_engines

    out = SweepResult()
    groups: dict[tuple, list] = {}
    for pt in points:
        groups.setdefault((pt.policy, pt.balancer, pt.n_engines), []).append(pt.rate)
    qdict = {"boundaries": None if queue.boundaries is None else list(queue.boundaries),
             "beta": queue.beta,
             "starvation_floor": queue.starvation_floor}
    for (policy, balancer, n), rates in groups.items():
        if policy == "srpt":
            raise ConfigError("srpt is a clairvoyant simulator-only oracle; "
                              "drop it with --engine vllm")
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
            endpoint = gw.url
            for rate in rates:
                console.print(f"  replaying {len(programs)} programs at {rate:g}/s on {policy}")
                progs, calls = replay(programs, endpoint, rate=rate, seed=seed,
                                      max_prompt_tokens=max_prompt_tokens,
                                      max_model_len=max_model_len,
                                      priority_mode=(policy == "vllm-priority"))
                s = summarize(progs, engine="vllm", policy=policy, balancer=balancer, rate=rate,
                              extra={"n_engines": n, "failed_calls": sum(c.status != "completed"
                                                                         for c in calls)})
                out.summaries.append(s)
                for p in progs:
                    out.program_rows.append({"policy": policy, "rate": rate, "balancer": balancer,
                                             "n_engines": n, **p.to_row()})
        finally:
            if gw is not None:
                gw.stop()
            if engines:
                stop_engines(engines)
    return out
