"""The Autellix scheduler inside a real vLLM 0.32 ``Scheduler`` (no model, no server).

Each test builds vLLM's scheduler from a local ``config.json`` with a fake KV-cache
config, then drives ``schedule() -> fake model output -> update_from_output()``.
The scheduler's clock is replaced by a fake one that advances a fixed ``DT`` per
step, so service (engine-seconds) and therefore levels are deterministic.
"""

from __future__ import annotations

import json
import logging
import math

import pytest

pytest.importorskip("vllm")

import torch  # noqa: E402
from vllm.config import CacheConfig, ModelConfig, SchedulerConfig, VllmConfig  # noqa: E402
from vllm.sampling_params import SamplingParams  # noqa: E402
from vllm.utils.hashing import sha256  # noqa: E402
from vllm.v1.core.kv_cache_utils import get_request_block_hasher, init_none_hash  # noqa: E402
from vllm.v1.kv_cache_interface import FullAttentionSpec, KVCacheConfig, KVCacheGroupSpec  # noqa: E402
from vllm.v1.outputs import ModelRunnerOutput  # noqa: E402
from vllm.v1.request import Request, RequestStatus  # noqa: E402
from vllm.v1.structured_output import StructuredOutputManager  # noqa: E402

from autellix.config import ConfigError  # noqa: E402
from autellix.vllm.scheduler import AutellixScheduler  # noqa: E402

pytestmark = pytest.mark.vllm

BLOCK = 16
DT = 0.5  # engine-seconds per step
TINY_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
               "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 2,
               "num_key_value_heads": 2, "vocab_size": 512, "max_position_embeddings": 4096,
               "torch_dtype": "float16"}


class FakeClock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny-config")
    (d / "config.json").write_text(json.dumps(TINY_CONFIG))
    init_none_hash(sha256)
    return str(d)


class Harness:
    """A vLLM scheduler plus helpers to add calls and run steps."""

    def __init__(self, model_dir, autellix: dict | None, *, max_num_seqs=4, num_blocks=200,
                 vllm_policy="priority", cls=AutellixScheduler, async_scheduling=False,
                 chunk=2048, prefix_caching=True):
        model = ModelConfig(model=model_dir, skip_tokenizer_init=True, dtype="float16",
                            max_model_len=2048)
        sched = SchedulerConfig(max_num_seqs=max_num_seqs, max_num_batched_tokens=chunk,
                                max_model_len=2048, enable_chunked_prefill=True,
                                async_scheduling=async_scheduling, policy=vllm_policy,
                                is_encoder_decoder=False, scheduler_cls=cls)
        cache = CacheConfig(block_size=BLOCK, enable_prefix_caching=prefix_caching)
        extra = {} if autellix is None else {"autellix": autellix}
        vcfg = VllmConfig(scheduler_config=sched, model_config=model, cache_config=cache,
                          additional_config=extra)
        spec = FullAttentionSpec(block_size=BLOCK, num_kv_heads=1, head_size=1, dtype=torch.float32)
        kv = KVCacheConfig(num_blocks=num_blocks, kv_cache_tensors=[],
                           kv_cache_groups=[KVCacheGroupSpec(["layer"], spec)])
        cache.num_gpu_blocks = num_blocks
        self.s = sched.get_scheduler_cls()(vllm_config=vcfg, kv_cache_config=kv, block_size=BLOCK,
                                           log_stats=True,
                                           structured_output_manager=StructuredOutputManager(vcfg))
        self.clock = FakeClock()
        self.s.autellix_clock = self.clock
        self.hasher = get_request_block_hasher(BLOCK, sha256)
        self.finished: list[str] = []
        self.outputs = []
        self._tok = 0

    def add(self, rid, *, prompt=20, out=4, xargs=None, session_id=None, token=None):
        # distinct prompt tokens per call: no accidental prefix sharing between calls
        self._tok += 1
        tok = token if token is not None else self._tok
        req = Request(request_id=rid, prompt_token_ids=[tok] * prompt, pooling_params=None,
                      priority=0, block_hasher=self.hasher, session_id=session_id,
                      sampling_params=SamplingParams(max_tokens=out, ignore_eos=True,
                                                     extra_args=xargs))
        self.s.add_request(req)
        return req

    def step(self):
        out = self.schedule()
        self.clock.t += DT
        self.update(out)
        return out

    def schedule(self):
        out = self.s.schedule()
        self.outputs.append(out)
        # one sampled token per request whose prompt is complete; none mid-prefill
        out._fake_tokens = [[] if self.s.requests[r].is_prefill_chunk else [1]
                            for r in out.num_scheduled_tokens]
        return out

    def update(self, out):
        s = self.s
        ids = list(out.num_scheduled_tokens)
        s.update_from_output(out, ModelRunnerOutput(
            req_ids=ids, req_id_to_index={r: i for i, r in enumerate(ids)},
            sampled_token_ids=out._fake_tokens))
        self.finished += [r for r in ids if r not in self.finished
                          and (r not in s.requests or s.requests[r].is_finished())]
        s.mlq.check_invariants()

    def run_until_idle(self, limit=500):
        for _ in range(limit):
            if not self.s.requests:
                return
            self.step()
        raise AssertionError("scheduler did not drain")

    def waiting_order(self) -> list[str]:
        return [r.request_id for r in self.s.waiting]


def prog(pid, **kw):
    return {"program_id": pid, **kw}


PLAS = {"policy": "plas", "boundaries": [1.0, 2.0, 4.0, 8.0], "beta": 100.0}


def test_plas_orders_programs_by_attained_service(model_dir):
    h = Harness(model_dir, PLAS, max_num_seqs=1)
    h.add("a1", out=6, xargs=prog("A"))
    h.run_until_idle()
    assert h.s.mlq.table.service("A") == pytest.approx(6 * DT)  # prefill step included
    # A's second call arrives first, B's first call after it: B (no service) goes first
    h.add("a2", out=2, xargs=prog("A"))
    h.add("b1", out=2, xargs=prog("B"))
    assert h.waiting_order() == ["b1", "a2"]
    assert h.s.autellix_snapshot()["a2"]["level"] == 2  # 3.0 s in [2, 4)
    h.run_until_idle()
    assert h.finished.index("b1") < h.finished.index("a2")


def test_fcfs_keeps_arrival_order(model_dir):
    h = Harness(model_dir, {"policy": "fcfs"}, max_num_seqs=1, vllm_policy="fcfs")
    h.add("a1", out=6, xargs=prog("A"))
    h.run_until_idle()
    h.add("a2", out=2, xargs=prog("A"))
    h.add("b1", out=2, xargs=prog("B"))
    h.run_until_idle()
    assert h.finished.index("a2") < h.finished.index("b1")
    assert h.s.autellix_stats["preemptions"] == 0
    assert len(h.s.mlq) == 0


def test_program_service_from_gateway_places_call(model_dir):
    h = Harness(model_dir, PLAS, max_num_seqs=1)
    h.add("g1", xargs=prog("G", program_service=5.0))    # 5 s -> level 3
    h.add("n1", xargs=prog("N"))
    snap = h.s.autellix_snapshot()
    assert snap["g1"]["level"] == 3 and snap["n1"]["level"] == 0
    assert h.waiting_order() == ["n1", "g1"]
    # the engine keeps max(local, given): a lower value later does not lower it
    h.add("g2", xargs=prog("G", program_service=0.5))
    assert h.s.autellix_snapshot()["g2"]["level"] == 3


def test_atlas_parallel_calls_share_one_priority(model_dir):
    cfg = {"policy": "atlas", "boundaries": [1.0, 3.0, 8.0], "beta": 100.0}
    h = Harness(model_dir, cfg, max_num_seqs=4)
    for i in range(2):  # two parallel calls of P, 4 steps each (prefill + 3 decodes)
        h.add(f"p{i}", out=4, xargs=prog("P", thread_id=f"t{i}"))
    h.run_until_idle()
    # ATLAS: critical path = max(0 + 2.0, 0 + 2.0) = 2.0, not the sum 4.0
    assert h.s.mlq.table.service("P") == pytest.approx(4 * DT)
    for i in range(3):
        h.add(f"q{i}", xargs=prog("P", thread_id=f"t{i}"))
    entries = [h.s.mlq.get(f"q{i}") for i in range(3)]
    assert {e.priority for e in entries} == {2.0} and {e.level for e in entries} == {1}
    h.add("z", xargs=prog("Z"))  # a new program still goes first
    assert h.waiting_order() == ["z", "q0", "q1", "q2"]
    # the same run under PLAS sums the parallel calls' service
    h2 = Harness(model_dir, {**cfg, "policy": "plas"}, max_num_seqs=4)
    for i in range(2):
        h2.add(f"p{i}", out=4, xargs=prog("P"))
    h2.run_until_idle()
    assert h2.s.mlq.table.service("P") == pytest.approx(8 * DT)


def test_preempts_lower_priority_call_at_sequence_limit(model_dir):
    h = Harness(model_dir, PLAS, max_num_seqs=2)
    h.add("l0", out=50, xargs=prog("L"))
    h.add("l1", out=50, xargs=prog("L"))
    for _ in range(6):  # 3 s each: both demoted to level 2
        h.step()
    assert {r.request_id for r in h.s.running} == {"l0", "l1"}
    h.add("s0", out=3, xargs=prog("S"))
    out = h.step()
    assert "s0" in out.num_scheduled_tokens
    assert set(out.preempted_req_ids) == {"l1"}  # the later one ranks last in its level
    assert h.s.requests["l1"].status == RequestStatus.PREEMPTED
    assert h.s.mlq.get("l1").state.value == "waiting"
    assert h.s.autellix_stats["preemptions"] == 1
    h.run_until_idle()
    assert h.finished.index("s0") < h.finished.index("l0")
    assert len(h.s.mlq) == 0


def test_fcfs_never_preempts_for_priority(model_dir):
    h = Harness(model_dir, {"policy": "fcfs"}, max_num_seqs=2)
    h.add("l0", out=20, xargs=prog("L"))
    h.add("l1", out=20, xargs=prog("L"))
    for _ in range(4):
        h.step()
    h.add("s0", out=3, xargs=prog("S"))
    for _ in range(5):
        out = h.step()
        assert "s0" not in out.num_scheduled_tokens and not out.preempted_req_ids
    h.run_until_idle()
    assert h.finished.index("s0") > h.finished.index("l0")
    assert h.s.autellix_stats["preemptions"] == 0


def test_preempts_under_kv_pressure(model_dir):
    # 11 blocks: two running calls of 64 prompt tokens (4 blocks + growth) leave too few
    h = Harness(model_dir, PLAS, max_num_seqs=8, num_blocks=11)
    h.add("l0", prompt=64, out=40, xargs=prog("L"))
    h.add("l1", prompt=64, out=40, xargs=prog("L"))
    for _ in range(4):
        h.step()
    h.add("s0", prompt=64, out=2, xargs=prog("S"))
    out = h.step()
    assert "s0" in out.num_scheduled_tokens and out.preempted_req_ids
    h.run_until_idle()
    assert h.finished.index("s0") < h.finished.index("l0")


def test_demotion_by_quantum(model_dir):
    h = Harness(model_dir, PLAS, max_num_seqs=1)
    h.add("c", out=30, xargs=prog("C"))
    levels = []
    for _ in range(12):
        h.step()
        levels.append(h.s.mlq.get("c").level)
    # quanta 1, 1, 2, 4 (queue widths): level 1 after 1 s, 2 after 2 s, 3 after 4 s
    assert levels[:9] == [0, 1, 1, 2, 2, 2, 2, 3, 3]
    assert h.s.mlq.get("c").service == pytest.approx(12 * DT)
    assert h.s.autellix_stats["demotions"] == 3
    assert h.s.requests["c"].status == RequestStatus.RUNNING  # demotion alone never preempts


def test_starvation_promotion_moves_a_call_to_the_front_but_never_evicts(model_dir):
    cfg = {"policy": "plas", "boundaries": [1.0, 2.0, 40.0], "beta": 0.1, "starvation_floor": 1.0}
    h = Harness(model_dir, cfg, max_num_seqs=1)
    h.add("s", out=40, xargs=prog("S"))
    h.step()
    h.add("w", out=2, xargs=prog("W", program_service=50.0))  # level 3, behind S
    assert h.s.mlq.get("w").level == 3
    promoted_at = None
    for i in range(60):
        out = h.step()
        assert not out.preempted_req_ids  # a promotion never buys the right to evict
        if promoted_at is None and h.s.mlq.get("w").level == 0:
            promoted_at = i
        if i == 15:  # a new program arriving after the promotion queues behind w
            h.add("n", out=2, xargs=prog("N"))
        if "w" in out.num_scheduled_tokens:
            break
    # deadline: wait >= beta * (T_prog + T_call) = 0.1 * 50 = 5 s = 10 steps
    assert promoted_at is not None and 9 <= promoted_at <= 11
    assert "s" in h.finished  # w ran as soon as the seat freed, not before
    assert h.s.autellix_stats["promotions"] == 1 and h.s.autellix_stats["preemptions"] == 0
    h.run_until_idle()
    assert h.finished.index("w") < h.finished.index("n")
    assert len(h.s.mlq) == 0


def test_abort_leaves_no_state(model_dir):
    h = Harness(model_dir, PLAS, max_num_seqs=2)
    ids = [f"r{i}" for i in range(5)]
    for i, rid in enumerate(ids):
        h.add(rid, out=50, xargs=prog(f"P{i % 2}"))
    for _ in range(3):
        h.step()
    assert len(h.s.running) == 2 and len(h.s.waiting) == 3
    h.s.finish_requests(ids[:1], RequestStatus.FINISHED_ABORTED)   # a running one
    h.s.finish_requests(ids[4:], RequestStatus.FINISHED_ABORTED)   # a waiting one
    assert "r0" not in h.s.mlq and "r4" not in h.s.mlq
    h.step()
    h.s.finish_requests(None, RequestStatus.FINISHED_ABORTED)
    h.step()  # the step that reports the aborts to the workers
    s = h.s
    assert len(s.mlq) == 0 and not s.requests and not s.running and not s._ax_running
    assert not s.waiting and not s.kv_holding_waiting
    assert s.mlq.next_promotion_time() == math.inf
    # aborted calls still counted: service folded into the programs
    assert s.mlq.table.service("P0") > 0 and s.mlq.table.service("P1") > 0
    assert all(not s.mlq.table.get(p).threads for p in ("P0", "P1"))
    # idle programs expire after the TTL
    h.clock.t += s.autellix_config.table_ttl + 1
    s._ax_next_expire = -math.inf
    s.schedule()
    assert len(s.mlq.table) == 0


def test_malformed_metadata_falls_back(model_dir, caplog):
    h = Harness(model_dir, PLAS, max_num_seqs=4)
    caplog.set_level(logging.WARNING, logger="autellix.vllm")
    bad = [("m1", {"program_id": 3.5}), ("m2", {"program_id": ["x"]}), ("m3", {"program_id": ""}),
           ("m4", {"program_id": "P", "program_service": "lots"}),
           ("m5", {"program_id": "P", "program_service": float("nan")}),
           ("m6", {"program_id": "P", "program_service": -1.0}),
           ("m7", {"program_id": "P", "program_service": True}),
           ("m8", {"program_id": "Q" * 1000}), ("m9", None)]
    for rid, xargs in bad:
        h.add(rid, xargs=xargs)
    h.add("m10", xargs={"thread_id": {"no": 1}}, session_id="sess")
    h.add("m11", xargs={"program_id": 7})  # an int id is accepted
    snap = h.s.autellix_snapshot()
    for rid in ("m1", "m2", "m3", "m8", "m9"):
        assert snap[rid]["pid"] == f"req:{rid}"
    for rid in ("m4", "m5", "m6", "m7"):
        assert snap[rid]["pid"] == "P" and snap[rid]["level"] == 0
    assert snap["m10"]["pid"] == "sess" and snap["m11"]["pid"] == "7"
    assert sum("autellix" in r.getMessage() for r in caplog.records) >= 9
    h.run_until_idle()
    assert len(h.s.mlq) == 0


def test_vllm_sees_queue_order(model_dir, monkeypatch):
    """Whenever vLLM's own schedule() starts: waiting order == queue order, running
    sorted by rank, and while the batch is full the head of the waiting queue may
    evict none of the running calls (the plug-in has already evicted those)."""
    import random

    from vllm.v1.core.sched.scheduler import Scheduler

    seen = []
    original = Scheduler.schedule

    def checked(self, *args, **kwargs):
        queue = [e.call_id for e in self.mlq.ordered() if e.state.value == "waiting"]
        order = [r.request_id for r in self.waiting]
        assert order == queue
        prios = [r.priority for r in self.running]
        assert prios == sorted(prios)
        if self.waiting and len(self.running) == self.max_num_running_reqs:
            head = self.waiting.peek_request()  # the rule left it nobody to evict
            assert not any(self.mlq.may_evict(head.request_id, r.request_id)
                           for r in self.running)
        seen.append(len(order))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Scheduler, "schedule", checked)
    rnd = random.Random(7)
    h = Harness(model_dir, PLAS, max_num_seqs=2)
    for i in range(30):
        h.add(f"c{i}", out=rnd.randint(1, 30),
              xargs=prog(f"P{rnd.randint(0, 5)}", program_service=rnd.choice([0.0, 1.5, 3.0, 9.0])))
        for _ in range(rnd.randint(0, 2)):
            h.step()
    h.run_until_idle()
    assert max(seen) >= 5  # the check ran with a real backlog
    assert h.s.autellix_stats["preemptions"] > 0
    assert len(h.s.mlq) == 0 and not h.s.requests


def test_las_and_mlfq_run(model_dir):
    for policy in ("las", "mlfq"):
        h = Harness(model_dir, {"policy": policy, "boundaries": [1.0, 2.0]}, max_num_seqs=2)
        for i in range(6):
            h.add(f"{policy}{i}", out=3 + i, xargs=prog(f"P{i % 3}"))
        h.run_until_idle()
        assert len(h.s.mlq) == 0


def test_rejects_bad_configuration(model_dir):
    with pytest.raises(ConfigError, match="simulation only"):
        Harness(model_dir, {"policy": "srpt"})
    with pytest.raises(ConfigError, match="unknown autellix setting"):
        Harness(model_dir, {"policy": "plas", "quantum": 3})
    with pytest.raises(ConfigError, match="--scheduling-policy priority"):
        Harness(model_dir, {"policy": "plas"}, vllm_policy="fcfs")
    with pytest.raises(ConfigError, match="increase strictly"):
        Harness(model_dir, {"policy": "plas", "boundaries": [2.0, 1.0]})
    h = Harness(model_dir, None)  # no additional_config: defaults (plas)
    assert h.s.autellix_config.policy == "plas"


def test_async_scheduler_variant(model_dir):
    """The GPU default (async scheduling: one step in flight) with the same policy."""
    from autellix.vllm.scheduler import AutellixAsyncScheduler

    h = Harness(model_dir, PLAS, max_num_seqs=2, cls=AutellixAsyncScheduler,
                async_scheduling=True)
    assert isinstance(h.s, AutellixAsyncScheduler)
    h.add("l0", out=40, xargs=prog("L"))
    h.add("l1", out=40, xargs=prog("L"))
    prev = h.schedule()
    for i in range(60):  # overlapped: step n+1 is scheduled before step n's output arrives
        if i == 8:
            h.add("s0", out=3, xargs=prog("S"))
        nxt = h.schedule() if h.s.requests else None
        h.clock.t += DT
        h.update(prev)
        if i == 8:
            assert "s0" in nxt.num_scheduled_tokens and nxt.preempted_req_ids
        if nxt is None:
            break
        prev = nxt
    h.run_until_idle()
    assert h.finished.index("s0") < h.finished.index("l0")
    assert h.s.autellix_stats["steps_charged"] > 20
    assert len(h.s.mlq) == 0 and not h.s.requests


def test_same_level_waiter_does_not_evict(model_dir):
    """A running call demoted into the level where older calls wait keeps running."""
    h = Harness(model_dir, PLAS, max_num_seqs=1)
    h.add("a", out=30, xargs=prog("A"))
    h.step()
    h.add("b", out=30, xargs=prog("B", program_service=1.5))  # level 1, waits
    for _ in range(3):  # a: 0.5 s per step, reaches level 1 after 1 s, level 2 after 2 s
        out = h.step()
        assert not out.preempted_req_ids, h.s.autellix_snapshot()
    assert h.s.mlq.get("a").level == 2 and h.s.mlq.get("b").level == 1
    out = h.step()  # now b's level is strictly higher: it evicts a
    assert out.preempted_req_ids == {"a"} and "b" in out.num_scheduled_tokens
