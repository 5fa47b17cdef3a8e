"""Simulator speed: simulated calls per wall second, this tree against a baseline commit.

Both run side by side in one invocation, on the same machine, each point in its own
fresh process (``PYTHONPATH`` pointing at the tree): the baseline is the commit's
files unpacked with ``git archive`` into a temporary folder. Each point is timed
around ``simulate()`` only (workload generation excluded), best of ``--repeat``
runs, and the two results must agree (same completed programs, calls, preemptions,
mean token latency to 1e-9), so the ratio compares the same simulation. Rates are
simulated calls per CPU second of the process (``time.process_time``), which a
busy shared machine disturbs far less than wall time; wall-time ratios are printed
too.

Workloads (issues 10 and 11):
* ``mixed``: the paper's mix, 1,000 programs, 64 seats, 1.2x capacity;
* ``swe-long``: SWE-agent programs (contexts growing to tens of thousands of tokens),
  64 seats, 1.2x capacity, on the A100 profile's 430k-token KV cache, which they
  overflow (preemptions every few calls): long contexts under KV pressure;
* ``longctx``: map-reduce programs over 32k-100k-token documents, 400 programs,
  64 seats, 1.2x capacity: a few such calls fill the KV cache.

    .venv/bin/python benchmarks/sim_speed.py                      # vs a0eb8af
    .venv/bin/python benchmarks/sim_speed.py --base main --repeat 3 --out results/sim-speed
    .venv/bin/python benchmarks/sim_speed.py --points longctx --policies fcfs,plas --scale 0.25
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

POINTS = {  # name -> (workload, programs, seats, load, kv tokens or None)
    "mixed": ("mixed", 1000, 64, 1.2, None),
    "swe-long": ("swe", 100, 64, 1.2, None),
    "longctx": ("longctx", 400, 64, 1.2, None),
}

CHILD = r"""
import json, sys, time
from dataclasses import replace
import autellix
from autellix.sim import EngineConfig, SimConfig, simulate
from autellix.sim.capacity import rate_for_load
from autellix.workloads.registry import generate
wl, n, seats, load, kv, policy, tree = sys.argv[1:8]
assert autellix.__file__.startswith(tree), f"imported {autellix.__file__}, not {tree}"
progs = generate(wl, int(n), seed=0)
cfg = SimConfig(policy=policy, engine=EngineConfig(max_num_seqs=int(seats),
                kv_capacity_tokens=None if kv == "None" else int(kv)))
cfg = replace(cfg, rate=rate_for_load(progs, cfg, float(load)))
t, c = time.perf_counter(), time.process_time()
res = simulate(progs, cfg)
wall, cpu = time.perf_counter() - t, time.process_time() - c
s = res.summary()
print(json.dumps({"calls": len(res.calls), "wall": wall, "cpu": cpu, "completed": s.completed,
                  "preemptions": s.extra["preemptions"], "mean": s.token_latency["mean"]}))
"""


def run_point(tree: Path, point: str, policy: str, scale: float = 1.0) -> dict:
    wl, n, seats, load, kv = POINTS[point]
    n = max(1, round(n * scale))
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, "-c", CHILD, wl, str(n), str(seats), str(load), str(kv),
                          policy, str(tree)], env=env, cwd=tree, capture_output=True, text=True,
                         check=False)
    if out.returncode:
        raise SystemExit(f"{point}/{policy} failed in {tree}:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def same(a: dict, b: dict) -> bool:
    return (a["calls"], a["completed"], a["preemptions"]) == \
        (b["calls"], b["completed"], b["preemptions"]) and \
        math.isclose(a["mean"], b["mean"], rel_tol=1e-9)


def unpack(rev: str, into: Path) -> str:
    sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    archive = subprocess.run(["git", "archive", sha], cwd=ROOT, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return sha


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default="a0eb8af", help="baseline git revision (default a0eb8af, "
                    "main before the block pool)")
    ap.add_argument("--points", default=",".join(POINTS), help=f"of {', '.join(POINTS)}")
    ap.add_argument("--policies", default="fcfs,atlas")
    ap.add_argument("--repeat", type=int, default=1, help="runs per point and tree (best kept)")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply each point's program count (a quick check; the reported "
                    "figures use 1)")
    ap.add_argument("--out", type=Path, default=None, help="write speed.json here")
    a = ap.parse_args()
    points = [p for p in a.points.split(",") if p]
    unknown = set(points) - set(POINTS)
    if unknown or a.repeat < 1:
        raise SystemExit(f"unknown points {sorted(unknown)}" if unknown
                         else "--repeat must be >= 1")
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()
    rows = []
    with tempfile.TemporaryDirectory(prefix="sim-speed-base-") as tmp:
        base_sha = unpack(a.base, Path(tmp))
        print(f"baseline {a.base} ({base_sha}) vs this tree (HEAD {head}); best of {a.repeat}")
        print(f"{'point':10s} {'policy':7s} {'calls':>7s} {'base calls/s':>13s} "
              f"{'new calls/s':>12s} {'ratio':>7s} {'wall':>7s}  same results")
        for point in points:
            for policy in a.policies.split(","):
                base = new = None
                for _ in range(a.repeat):  # alternate, so load on the machine hits both alike
                    b = run_point(Path(tmp), point, policy, a.scale)
                    n = run_point(ROOT, point, policy, a.scale)
                    base = b if base is None or b["cpu"] < base["cpu"] else base
                    new = n if new is None or n["cpu"] < new["cpu"] else new
                bs, ns = base["calls"] / base["cpu"], new["calls"] / new["cpu"]
                wall_ratio = base["wall"] / new["wall"]
                ok = same(base, new)
                rows.append({"point": point, "policy": policy, "workload": POINTS[point],
                             "calls": new["calls"], "base_calls_per_cpu_s": bs,
                             "new_calls_per_cpu_s": ns, "ratio": ns / bs, "wall_ratio": wall_ratio,
                             "same_results": ok, "base": base, "new": new})
                print(f"{point:10s} {policy:7s} {new['calls']:7d} {bs:13.0f} {ns:12.0f} "
                      f"{ns / bs:6.1f}x {wall_ratio:6.1f}x  {'yes' if ok else 'NO'}", flush=True)
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "speed.json").write_text(json.dumps(
            {"base": a.base, "base_sha": base_sha, "head": head, "repeat": a.repeat,
             "scale": a.scale,
             "command": " ".join(["benchmarks/sim_speed.py", *sys.argv[1:]]), "rows": rows},
            indent=1) + "\n")
    return 0 if all(r["same_results"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
