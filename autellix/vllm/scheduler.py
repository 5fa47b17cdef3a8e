"""The Autellix scheduler inside vLLM 0.32 (V1 engine).

``--scheduler-cls autellix.vllm.scheduler.AutellixScheduler --scheduling-policy priority``
(or ``AutellixAsyncScheduler`` where vLLM uses async scheduling, e.g. on GPUs).

The policy itself lives in :class:`autellix.mlq.MultiLevelQueue` driven by a policy
from :func:`autellix.policies.get_policy`; this module only translates between the
queue and vLLM's scheduler state:

* **arrival** (``add_request``): program metadata is read from ``vllm_xargs``
  (:mod:`autellix.vllm.metadata`). With a ``program_service`` from the gateway the
  engine-local table entry is raised to ``max(local, given)`` before the call is
  queued, so the call is placed by the program's global service.
* **order**: before every vLLM ``schedule()`` each request's ``priority`` becomes its
  rank in the queue (``0`` = first), so vLLM's waiting heap, which orders by
  ``(priority, arrival_time, id)``, pops exactly in queue order. vLLM reads priority
  only at heap push, so the heaps are re-heapified; ``running`` is sorted by rank,
  because vLLM allocates slots (and, under memory pressure, picks victims) by it.
* **preemption**: stock vLLM never evicts a running request for a better waiting one.
  Before ``super().schedule()`` we evict the lowest-ranked running requests while the
  best waiting request sits in a strictly higher queue level (by rank for single-level
  policies) and cannot be admitted (sequence limit reached, or too few free KV
  blocks), using vLLM's own ``_preempt_request`` so the victims appear in the step's
  ``preempted_req_ids``. Same-level waiters never evict (vLLM preemption is recompute;
  trading places at every quantum expiry thrashes).
* **service** (engine-seconds): the wall time of each step, from the later of its
  ``schedule()`` and the previous ``update_from_output()`` to its own
  ``update_from_output()``, is charged to every request scheduled in it, prefill
  chunks included (``MultiLevelQueue.charge``: demotion by quantum).
* **state**: after ``schedule()`` the queue learns which calls vLLM actually runs
  (``start``/``preempt``); every freed request (finished or aborted, through vLLM's
  single ``_free_request`` path) is folded into the process table (``finish``).
  The table is bounded and expired periodically, and stray entries are swept.

``fcfs`` keeps vLLM's own order and never preempts for priority (stock behaviour);
its calls are still accounted, so statistics are comparable.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import OrderedDict
from itertools import chain

from vllm.v1.core.sched.async_scheduler import AsyncScheduler
from vllm.v1.core.sched.request_queue import SchedulingPolicy
from vllm.v1.core.sched.scheduler import Scheduler
from vllm.v1.request import RequestStatus

from autellix.config import ConfigError
from autellix.mlq import MultiLevelQueue
from autellix.policies import get_policy
from autellix.process_table import ProcessTable
from autellix.vllm.engine_config import AutellixEngineConfig
from autellix.vllm.metadata import parse_call_meta

logger = logging.getLogger("vllm.autellix")  # under vLLM's log handler

_ADMISSIBLE = (RequestStatus.WAITING, RequestStatus.PREEMPTED)
_MAX_INFLIGHT_STEPS = 16  # schedule() outputs awaiting update_from_output (async: 2)


class AutellixSchedulerMixin:
    """Policy glue shared by the synchronous and the async vLLM scheduler."""

    def __init__(self, *args, **kwargs) -> None:
        vllm_config = kwargs.get("vllm_config", args[0] if args else None)
        cfg = AutellixEngineConfig.from_additional_config(
            getattr(vllm_config, "additional_config", None))
        super().__init__(*args, **kwargs)
        if cfg.reorders and self.policy != SchedulingPolicy.PRIORITY:
            raise ConfigError(f"autellix policy {cfg.policy!r} needs vLLM's priority queue: "
                              "start vLLM with --scheduling-policy priority")
        self.autellix_config = cfg
        self.autellix_clock = time.monotonic  # tests substitute a fake clock
        policy = get_policy(cfg.policy)
        table = ProcessTable(rule=policy.table_rule, ttl=cfg.table_ttl,
                             max_entries=cfg.table_max_entries)
        self.mlq = MultiLevelQueue(policy, cfg.queue_config(), table)
        self.autellix_stats = {"calls": 0, "preemptions": 0, "promotions": 0,
                               "demotions": 0, "steps_charged": 0, "swept": 0}
        self._ax_running: set[str] = set()
        self._ax_inflight: OrderedDict[int, tuple[float, object]] = OrderedDict()
        self._ax_last_update = 0.0
        self._ax_steps = 0
        self._ax_dirty = True
        self._ax_next_expire = float("-inf")  # first schedule() arms it
        self._ax_logged: dict = {}
        logger.info("autellix scheduler: %s", cfg.to_dict())

    # ------------------------------------------------------------------ arrival
    def add_request(self, request) -> None:
        rid = request.request_id
        is_new = rid not in self.requests
        super().add_request(request)
        if not is_new or rid not in self.requests or rid in self.mlq:
            return
        sp = request.sampling_params
        meta = parse_call_meta(rid, getattr(sp, "extra_args", None) if sp is not None else None,
                               getattr(request, "session_id", None))
        now = self.autellix_clock()
        if meta.program_service is not None:
            entry = self.mlq.table.entry(meta.program_id, now)
            entry.service = max(entry.service, meta.program_service)
        self.mlq.add(rid, meta.program_id, now)
        self.autellix_stats["calls"] += 1
        if self.autellix_config.reorders:
            request.priority = len(self.mlq)  # provisional; exact rank set before scheduling
            self._ax_dirty = True

    # --------------------------------------------------------------- scheduling
    def schedule(self, *args, **kwargs):
        start = self.autellix_clock()
        cfg = self.autellix_config
        if cfg.reorders:
            self._ax_steps += 1
            policy_pass = self._ax_steps % cfg.schedule_interval == 0
            if policy_pass:
                promoted = self.mlq.promote_starved(start)
                if promoted:
                    self.autellix_stats["promotions"] += len(promoted)
                    self._ax_dirty = True
            if self._ax_dirty:
                self._ax_rerank()
            self.running.sort(key=_priority)
            if policy_pass and cfg.preempt and self.running:
                self._ax_preempt_for_waiting(start)
        if start >= self._ax_next_expire:
            self._ax_expire(start)
        out = super().schedule(*args, **kwargs)
        self._ax_sync_running(self.autellix_clock())
        self._ax_inflight[id(out)] = (start, out)
        while len(self._ax_inflight) > _MAX_INFLIGHT_STEPS:
            self._ax_inflight.popitem(last=False)
        return out

    def _ax_rerank(self) -> None:
        """priority := queue rank; restore the heap and running-list invariants."""
        requests = self.requests
        for rank, e in enumerate(self.mlq.ordered()):
            req = requests.get(e.call_id)
            if req is not None:
                req.priority = rank
        for q in (self.waiting, self.kv_holding_waiting):
            heap = getattr(q, "_heap", None)
            if heap is not None:
                heapq.heapify(heap)
        self._ax_dirty = False

    def _ax_preempt_for_waiting(self, now: float) -> None:
        """Evict lower-ranked running calls that stand in the way of better waiting ones."""
        cap = getattr(self, "max_num_active_reqs", self.max_num_running_reqs)
        slots = cap - len(self.running) - self.num_waiting_for_streaming_input
        pool = self.kv_cache_manager.block_pool
        reserved = 0
        k = max(1, self.max_num_running_reqs)
        heads = heapq.nsmallest(k, chain(_heap_of(self.kv_holding_waiting), _heap_of(self.waiting)),
                                key=_priority)
        victims = list(self.running)  # sorted by rank, best first
        chunk = self.max_num_scheduled_tokens
        for cand in heads:
            if cand.status not in _ADMISSIBLE:
                continue
            need = -(-(min(cand.num_tokens, chunk) + 1) // self.block_size)
            while not (slots > 0 and pool.get_num_free_blocks() - reserved >= need):
                victim = victims[-1] if victims else None
                if (victim is None or not self._ax_outranks(cand, victim)
                        or victim.status != RequestStatus.RUNNING
                        or not self._request_blocks_can_be_freed(victim)):
                    return  # strict order: nothing behind this head may jump it
                victims.pop()
                self.running.remove(victim)
                self._preempt_request(victim, now)
                if victim.request_id in self.mlq:
                    self.mlq.preempt(victim.request_id, now)
                self._ax_running.discard(victim.request_id)
                self.autellix_stats["preemptions"] += 1
                slots += 1
            slots -= 1
            reserved += need

    def _ax_outranks(self, cand, victim) -> bool:
        """May ``cand`` (waiting) evict ``victim`` (running)?

        Multi-level policies: only from a strictly higher queue level. Inside one level
        calls are served FCFS and a running call keeps its place, so a waiting call of
        the same level never evicts it; otherwise every quantum expiry would trade
        places with a same-level waiter, and each trade costs vLLM a recompute.
        Single-level policies (``las``): by queue rank."""
        mlq = self.mlq
        c, v = cand.request_id, victim.request_id
        if c not in mlq or v not in mlq:
            return False
        if mlq.policy.multilevel:
            return mlq.get(v).level > mlq.get(c).level
        return victim.priority > cand.priority

    def _ax_sync_running(self, now: float) -> None:
        """Tell the queue which calls vLLM runs now (it may also have preempted some)."""
        current = {r.request_id for r in self.running}
        mlq = self.mlq
        for rid in current - self._ax_running:
            if rid in mlq:
                mlq.start(rid, now)
        for rid in self._ax_running - current:
            if rid in mlq:
                mlq.preempt(rid, now)
        self._ax_running = current

    # ------------------------------------------------------------------ service
    def update_from_output(self, scheduler_output, model_runner_output):
        now = self.autellix_clock()
        rec = self._ax_inflight.pop(id(scheduler_output), None)
        if rec is not None and rec[1] is scheduler_output and scheduler_output.num_scheduled_tokens:
            dt = now - max(rec[0], self._ax_last_update)
            mlq = self.mlq
            ids = [rid for rid in scheduler_output.num_scheduled_tokens if rid in mlq]
            if ids and dt > 0:
                demoted = mlq.charge(ids, dt, now)
                self.autellix_stats["steps_charged"] += 1
                if demoted:
                    self.autellix_stats["demotions"] += len(demoted)
                    self._ax_dirty = True
                elif mlq.policy.rekey_on_service:
                    self._ax_dirty = True
        self._ax_last_update = now
        return super().update_from_output(scheduler_output, model_runner_output)

    # ---------------------------------------------------------------- lifecycle
    def _free_request(self, request, *args, **kwargs):
        """vLLM's single exit for finished *and* aborted requests."""
        rid = request.request_id
        if rid in self.mlq:
            self.mlq.finish(rid, self.autellix_clock())
        self._ax_running.discard(rid)
        return super()._free_request(request, *args, **kwargs)

    def _ax_expire(self, now: float) -> None:
        self._ax_next_expire = now + self.autellix_config.expire_interval
        self.mlq.table.expire(now)
        stray = [e.call_id for e in self.mlq.ordered()
                 if (r := self.requests.get(e.call_id)) is None or r.is_finished()]
        for rid in stray:  # never expected; keeps memory bounded whatever happens
            self.mlq.finish(rid, now)
            self._ax_running.discard(rid)
        self.autellix_stats["swept"] += len(stray)
        stats = dict(self.autellix_stats, queued=len(self.mlq), programs=len(self.mlq.table))
        if stats != self._ax_logged:
            self._ax_logged = stats
            logger.info("autellix: %s", " ".join(f"{k}={v}" for k, v in stats.items()))

    def autellix_snapshot(self) -> dict:
        """Queue state for tests and debugging: call id -> (program, level, state, service)."""
        return {e.call_id: {"pid": e.pid, "level": e.level, "state": e.state.value,
                            "service": e.service, "rank": i}
                for i, e in enumerate(self.mlq.ordered())}


def _priority(req) -> int:
    return req.priority


def _heap_of(queue):
    heap = getattr(queue, "_heap", None)
    return heap if heap is not None else list(queue)


class AutellixScheduler(AutellixSchedulerMixin, Scheduler):
    """Autellix policy on vLLM's synchronous scheduler (CPU, ``--no-async-scheduling``)."""


class AutellixAsyncScheduler(AutellixSchedulerMixin, AsyncScheduler):
    """Autellix policy on vLLM's async scheduler (the GPU default)."""


__all__ = ["AutellixSchedulerMixin", "AutellixScheduler", "AutellixAsyncScheduler",
           "AutellixEngineConfig"]
