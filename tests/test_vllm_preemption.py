"""The preemption rule inside a real vLLM 0.32 scheduler (issue 10), and the same
decisions in the simulator.

Harness: vLLM's own ``Scheduler`` with our plug-in, a fake model runner and a fake
clock (``DT`` engine-seconds per step; see tests/test_vllm_scheduler.py).
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("vllm")

import test_vllm_scheduler  # noqa: E402
from test_vllm_scheduler import BLOCK, DT, Harness, prog  # noqa: E402

from autellix.config import QueueConfig  # noqa: E402
from autellix.program import Call, Program  # noqa: E402
from autellix.sim import EngineConfig, SimConfig  # noqa: E402
from autellix.sim.engine import SimEngine  # noqa: E402
from autellix.sim.simulation import Simulation  # noqa: E402

pytestmark = pytest.mark.vllm
model_dir = test_vllm_scheduler.model_dir  # the tiny model fixture, requested by name below

BOUNDS = [1.0, 2.0, 4.0, 8.0]
PLAS = {"policy": "plas", "boundaries": BOUNDS, "beta": 100.0}


def _steps_until(h, pred, limit=400):
    for i in range(limit):
        out = h.step()
        if pred(out):
            return i, out
    raise AssertionError("condition never held")


def test_long_prompt_under_kv_pressure_is_admitted_in_the_step_of_its_eviction(model_dir):
    # 40 blocks; two long-running calls of a low level hold most of them. The head needs
    # its whole 400-token prompt (25 blocks; vLLM admits only a full prompt), not just
    # its first 128-token chunk (9 blocks), which the old plug-in sized it by.
    h = Harness(model_dir, PLAS, max_num_seqs=4, num_blocks=40, chunk=128)
    h.add("l0", prompt=200, out=60, xargs=prog("L", program_service=5.0))
    h.add("l1", prompt=200, out=60, xargs=prog("L", program_service=5.0))
    for _ in range(14):  # level 3, quantum 4 s = 8 steps: both pass the guard
        h.step()
    h.add("top", prompt=400, out=4, xargs=prog("T"))
    i, out = _steps_until(h, lambda o: o.preempted_req_ids)
    assert "top" in out.num_scheduled_tokens  # admitted in the very step of the eviction
    assert len(out.preempted_req_ids) == 1   # and only as many evicted as it needed
    h.run_until_idle()
    assert h.finished.index("top") < h.finished.index("l0")


def test_no_eviction_when_prefix_hits_cover_the_need(model_dir):
    # R runs a 160-token prompt (10 blocks). H, of another program at a higher level,
    # shares those 160 tokens and adds 16: it needs one or two new blocks, and 3 are
    # free, so nothing is evicted (sizing H without its prefix hit would evict R).
    h = Harness(model_dir, PLAS, max_num_seqs=2, num_blocks=15)
    h.add("r", prompt=160, out=40, token=9, xargs=prog("R", program_service=5.0))
    for _ in range(12):
        h.step()
    free = h.s.kv_cache_manager.block_pool.get_num_free_blocks()
    assert free <= 3
    h.add("h", prompt=176, out=2, token=9, xargs=prog("H"))
    out = h.step()
    assert not out.preempted_req_ids and "h" in out.num_scheduled_tokens
    assert out.num_scheduled_tokens["h"] == 176 - 160  # the shared 160 tokens were hits
    h.run_until_idle()


def test_no_call_is_evicted_before_its_first_token(model_dir):
    # a 320-token prompt prefilled in 32-token chunks (10 steps) on one seat; a new
    # program arrives at every step. The long call demotes during its prefill, yet it
    # is never evicted before its first token.
    h = Harness(model_dir, PLAS, max_num_seqs=1, chunk=32, prefix_caching=False)
    h.add("long", prompt=320, out=3, xargs=prog("L"))
    evicted_at = []
    for i in range(12):
        h.add(f"s{i}", prompt=8, out=1, xargs=prog(f"S{i}"))
        out = h.step()
        if "long" in out.preempted_req_ids:
            evicted_at.append(i)
        if h.s.requests.get("long") is None or h.s.requests["long"].num_output_tokens:
            break
    assert not evicted_at
    assert h.s.requests["long"].num_output_tokens >= 1 or "long" in h.finished


def test_a_stream_of_short_programs_cannot_keep_a_long_prompt_call_from_finishing(model_dir):
    """The issue's example: a 320-token prompt, 32-token chunks, one seat, no prefix
    caching, and a new one-token program every 2 steps. Before, the long call was
    evicted 149 times before its first token and had not finished after 300 steps.

    Bound: each admission of the long call yields its first token and then at least
    max(quantum, prefill cost) of progress (>= 10 steps here), evictions stop while
    recompute exceeds 10% of recent engine time, and anti-starvation promotes it to
    the front. So it needs at most a handful of admissions: we require it to finish
    within 150 steps, and to be evicted at most 3 times."""
    h = Harness(model_dir, PLAS, max_num_seqs=1, chunk=32, prefix_caching=False)
    h.add("long", prompt=320, out=20, xargs=prog("L"))
    for i in range(150):
        if i % 2 == 0:
            h.add(f"s{i}", prompt=4, out=1, xargs=prog(f"S{i}"))
        h.step()
        if "long" in h.finished:
            break
    assert "long" in h.finished, h.s.autellix_snapshot().get("long")
    assert sum("long" in o.preempted_req_ids for o in h.outputs) <= 3


# ---------------------------------------------------------------- differential
# The same scenario through the plug-in and through the simulator, with every step
# costing DT engine-seconds in both, gives the same eviction decisions.

SCENARIO = [  # (arrival step, program, output tokens); one call per program, 20-token prompts
    (0, "A", 30), (0, "B", 30), (6, "C", 12), (7, "D", 25), (14, "E", 6), (15, "F", 40),
    (22, "G", 3), (23, "H", 8), (30, "I", 10),
]


def _plugin_evictions(model_dir) -> list[tuple[int, str]]:
    h = Harness(model_dir, PLAS, max_num_seqs=2, num_blocks=400)
    out_log = []
    arrivals = {}
    for step, pid, out in SCENARIO:
        arrivals.setdefault(step, []).append((pid, out))
    for i in range(300):
        for pid, out in arrivals.get(i, []):
            h.add(pid, prompt=20, out=out, xargs=prog(pid))
        if not h.s.requests and i > max(arrivals):
            break
        o = h.step()
        out_log += [(i, rid) for rid in sorted(o.preempted_req_ids)]
    return out_log


def _sim_evictions(tmp_path) -> list[tuple[int, str]]:
    prof = {"name": "const", "gpu": "test", "model": "test",
            "linear_ms_table": {"tokens": [1, 8192], "ms": [DT * 1e3, DT * 1e3]},
            "linear_ms_fit": {"a": DT * 1e3, "b": 0.0}, "c_dec_ms_per_ctx_token": 0.0,
            "c_pf_ms_per_e_s": 0.0, "lm_head_ms": 0.0, "overhead_ms": 0.0,
            "kv_bytes_per_token": 1, "kv_capacity_tokens": 400 * BLOCK, "swap_gb_per_s": 1.0}
    path = tmp_path / "const.json"
    path.write_text(json.dumps(prof))
    programs = [Program(id=pid, calls=(Call(id="c", new_prompt_tokens=20, output_tokens=out),))
                for _, pid, out in SCENARIO]
    cfg = SimConfig(policy="plas", check_invariants=True,
                    queue=QueueConfig(boundaries=tuple(BOUNDS), beta=100.0),
                    engine=EngineConfig(profile=str(path), max_num_seqs=2, block_size=BLOCK,
                                        fast_forward=False))
    # a call added before the plug-in's step k is seen at step k: arrive just before it
    sim = Simulation(programs, cfg,
                     arrivals=[k * DT - 1e-9 if k else 0.0 for k, _, _ in SCENARIO])
    log = []
    original = SimEngine._preempt

    def record(self, c, now, priority=False):
        log.append((round(now / DT), c.program_id))
        return original(self, c, now, priority)

    SimEngine._preempt = record
    try:
        sim.run()
    finally:
        SimEngine._preempt = original
    return log


def test_simulator_and_plugin_make_the_same_eviction_decisions(model_dir, tmp_path):
    plugin = _plugin_evictions(model_dir)
    sim = _sim_evictions(tmp_path)
    assert plugin, "the scenario must exercise evictions"
    assert sim == plugin
