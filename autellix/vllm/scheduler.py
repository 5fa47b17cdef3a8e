"""The Autellix scheduler inside vLLM 0.32 (V1 engine).

``--scheduler-cls autellix.vllm.scheduler.AutellixScheduler --scheduling-policy priority``
(or ``AutellixAsyncScheduler`` where vLLM uses async scheduling, e.g. on GPUs).

The policy lives in :class:`autellix.mlq.MultiLevelQueue` driven by a policy from
:func:`autellix.policies.get_policy`, and who may evict whom in
:mod:`autellix.preemption`: the same code the simulator runs. This module only
translates between them and vLLM's scheduler state, at O(batch + changes) per step:

* **arrival** (``add_request``): program metadata is read from ``vllm_xargs``
  (:mod:`autellix.vllm.metadata`) and the call is queued *before* vLLM enqueues it.
  With a ``program_service`` from the gateway the engine-local table entry is raised
  to ``max(local, given)``, so the call is placed by the program's global service.
* **order**: vLLM's ``waiting`` and ``kv_holding_waiting`` queues are
  :class:`autellix.vllm.request_queue.PositionQueue`s ordered by queue position
  (O(log n) per arrival or promotion; no re-rank, no heapify). ``running`` is sorted
  by position each step and each running request's ``priority`` is its rank there,
  because vLLM walks ``running`` in list order and, under memory pressure, evicts
  ``max(running, key=priority)``.
* **preemption**: stock vLLM never evicts a running request for a better waiting
  one. Before ``super().schedule()`` the heads of the waiting queue are taken lazily,
  in order; for a head that does not fit (seats, token budget, or KV blocks by vLLM's
  own accounting, :mod:`autellix.vllm.kv_fit`) the lowest-ranked running calls that
  :func:`autellix.preemption.may_evict` allows are evicted, but only if the head then
  fits, with vLLM's ``_preempt_request`` (so they appear in the step's
  ``preempted_req_ids``). vLLM then admits the head in the same step. A head that
  cannot be let in stops the pass: strict order.
* **service** (engine-seconds): the wall time of each step, from the later of its
  ``schedule()`` and the previous ``update_from_output()`` to its own
  ``update_from_output()``, is charged to every request scheduled in it, prefill
  chunks included (``MultiLevelQueue.charge``: demotion by quantum; re-prefill after
  an eviction is kept apart as recompute). A request that finished its prompt in a
  step produced a token (``MultiLevelQueue.token``, read by the progress guard).
* **state**: after ``schedule()`` the queue learns which calls vLLM actually runs
  (``start``/``preempt``); every freed request (finished or aborted, through vLLM's
  single ``_free_request`` path) is folded into the process table (``finish``).
  The table is bounded and expired periodically, and stray entries are swept.
* **step records** (``step_log`` setting): one JSON line per step with its batch
  composition and duration, for ``autellix profile``, and one per call event
  (arrived, evicted, finished).

``fcfs`` keeps vLLM's own queues and order and never preempts for priority (stock
behaviour); its calls are still accounted, so statistics are comparable.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from vllm.v1.core.sched.async_scheduler import AsyncScheduler
from vllm.v1.core.sched.request_queue import SchedulingPolicy
from vllm.v1.core.sched.scheduler import Scheduler
from vllm.v1.request import RequestStatus

from autellix.config import ConfigError
from autellix.mlq import MultiLevelQueue
from autellix.policies import get_policy
from autellix.preemption import eviction_class, prefill_tokens
from autellix.process_table import ProcessTable
from autellix.vllm import kv_fit
from autellix.vllm.engine_config import AutellixEngineConfig
from autellix.vllm.metadata import parse_call_meta
from autellix.vllm.request_queue import PositionQueue
from autellix.vllm.step_log import StepLog

logger = logging.getLogger("vllm.autellix")  # under vLLM's log handler

_ADMISSIBLE = (RequestStatus.WAITING, RequestStatus.PREEMPTED)
_MAX_INFLIGHT_STEPS = 16  # schedule() outputs awaiting update_from_output (async: 2)

if TYPE_CHECKING:
    from vllm.v1.request import Request

    class _SchedulerHost:
        """What the mixin uses of its host class, vLLM 0.32's ``Scheduler`` (for mypy only;
        at run time the mixin's base is ``object`` and the host comes next in the MRO)."""

        policy: SchedulingPolicy
        requests: dict[str, Request]
        running: list[Request]
        waiting: Any  # vLLM's request queue; a PositionQueue when the policy reorders
        kv_holding_waiting: Any
        kv_cache_manager: Any
        max_num_running_reqs: int
        max_num_scheduled_tokens: int
        num_waiting_for_streaming_input: int

        def __init__(self, *args: Any, **kwargs: Any) -> None: ...
        def add_request(self, request: Request) -> None: ...
        def schedule(self, *args: Any, **kwargs: Any) -> Any: ...
        def update_from_output(self, scheduler_output: Any, model_runner_output: Any) -> Any: ...
        def _free_request(self, request: Request, *args: Any, **kwargs: Any) -> Any: ...
        def _preempt_request(self, request: Request, timestamp: float) -> None: ...
        def _request_blocks_can_be_freed(self, request: Request) -> bool: ...
else:
    _SchedulerHost = object


class AutellixSchedulerMixin(_SchedulerHost):
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
        if cfg.reorders:  # vLLM's queues, ordered by queue position
            position = self._ax_position
            for name in ("waiting", "kv_holding_waiting"):
                old = getattr(self, name)
                q = PositionQueue(position)
                q.prepend_requests(list(old))
                setattr(self, name, q)
        self._ax_steplog = StepLog(cfg.step_log) if cfg.step_log else None
        self.autellix_stats = {"calls": 0, "preemptions": 0, "promotions": 0,
                               "demotions": 0, "steps_charged": 0, "swept": 0}
        self._ax_running: set[str] = set()
        self._ax_inflight: OrderedDict[int, tuple[float, object]] = OrderedDict()
        self._ax_last_update = 0.0
        self._ax_steps = 0
        self._ax_next_expire = float("-inf")  # first schedule() arms it
        self._ax_logged: dict = {}
        logger.info("autellix scheduler: %s", cfg.to_dict())

    # ------------------------------------------------------------------ arrival
    def add_request(self, request) -> None:
        rid = request.request_id
        if rid not in self.requests and rid not in self.mlq:
            # queued first, so that vLLM's PositionQueue can order it on enqueue
            sp = request.sampling_params
            meta = parse_call_meta(rid, getattr(sp, "extra_args", None) if sp is not None else None,
                                   getattr(request, "session_id", None))
            now = self.autellix_clock()
            if meta.program_service is not None:
                program = self.mlq.table.entry(meta.program_id, now)
                program.service = max(program.service, meta.program_service)
            entry = self.mlq.add(rid, meta.program_id, now)
            self.autellix_stats["calls"] += 1
            if self._ax_steplog is not None:
                self._ax_steplog.event(now, "arrived", rid, meta.program_id, level=entry.level)
        super().add_request(request)

    def _ax_position(self, request_id: str):
        mlq = self.mlq
        return mlq.rank_key(request_id) if request_id in mlq else None

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
                    for rid in promoted:
                        self.waiting.reposition(rid)
                        self.kv_holding_waiting.reposition(rid)
            self._ax_sort_running()
            if policy_pass and cfg.preempt and self.running and (
                    self.waiting or self.kv_holding_waiting):
                self._ax_preempt_for_waiting(start)
        if start >= self._ax_next_expire:
            self._ax_expire(start)
        out = super().schedule(*args, **kwargs)
        self._ax_sync_running(self.autellix_clock())
        self._ax_inflight[id(out)] = (start, out)
        while len(self._ax_inflight) > _MAX_INFLIGHT_STEPS:
            self._ax_inflight.popitem(last=False)
        return out

    def _ax_sort_running(self) -> None:
        """``running`` in queue order; ``priority`` = rank among running (O(r log r))."""
        position = self._ax_position
        self.running.sort(key=lambda r: position(r.request_id) or (float("inf"),))
        for i, r in enumerate(self.running):
            r.priority = i

    def _ax_heads(self):
        """Waiting requests in the order vLLM admits them: block holders first."""
        yield from self.kv_holding_waiting.heads()
        yield from self.waiting.heads()

    def _ax_preempt_for_waiting(self, now: float) -> None:
        """Evict running calls that the rule lets a better waiting call replace.

        Walks the waiting heads in order (lazily). A head that fits as things stand
        is left to vLLM; for one that does not, the lowest-ranked running calls that
        :func:`autellix.preemption.may_evict` allows are chosen until it would fit,
        and evicted only if it then fits. The first head that cannot be let in ends
        the pass (strict order, as vLLM's own admission loop). Block and token
        totals are computed only once a head needs them, and the victim scan stops
        at the first running call of the head's class or better, so a saturated
        engine with nothing to evict pays O(1) here."""
        mlq = self.mlq
        policy = mlq.policy
        cap = getattr(self, "max_num_active_reqs", self.max_num_running_reqs)
        seats = cap - len(self.running) - self.num_waiting_for_streaming_input
        free: int | None = None  # free blocks and token budget, computed on first use
        budget: int | None = None
        victims = list(self.running)  # best first
        evict = []
        for head in self._ax_heads():
            if head.status not in _ADMISSIBLE or head.request_id not in mlq:
                break  # vLLM would stop or skip here; do not evict around it
            head_class = eviction_class(mlq.get(head.request_id), policy)
            if seats <= 0 and not self._ax_any_victim(head, head_class, victims):
                break  # a full engine with nobody this head may evict: the common case
            if free is None or budget is None:  # both or neither
                free = self.kv_cache_manager.block_pool.get_num_free_blocks()
                budget = self.max_num_scheduled_tokens
                for r in self.running:
                    free -= kv_fit.growth_blocks(self, r)
                    budget -= kv_fit.step_tokens(self, r)
            need = kv_fit.admission_blocks(self, head)
            if seats > 0 and free >= need and budget > 0:
                seats, free, budget = seats - 1, free - need, budget - 1
                continue
            chosen, s, f, b = [], seats, free, budget
            for v in reversed(victims):
                if s > 0 and f >= need and b > 0:
                    break
                rid = v.request_id
                if rid not in mlq:
                    continue
                if not head_class < eviction_class(mlq.get(rid), policy):
                    break  # ranked order: nobody further up is evictable either
                if (v.status == RequestStatus.RUNNING and mlq.may_evict(head.request_id, rid)
                        and self._request_blocks_can_be_freed(v)):
                    chosen.append(v)
                    s += 1
                    f += kv_fit.freeable_blocks(self, v) + kv_fit.growth_blocks(self, v)
                    b += kv_fit.step_tokens(self, v)
            if not (s > 0 and f >= need and b > 0):
                break
            for v in chosen:
                victims.remove(v)
            evict += chosen
            seats, free, budget = s - 1, f - need, b - 1
        for v in evict:  # after the walk: the heads must not change while it iterates
            self.running.remove(v)
            mlq.evict(v.request_id, now, v.num_computed_tokens)  # before vLLM resets it
            if self._ax_steplog is not None:
                e = mlq.get(v.request_id)
                self._ax_steplog.event(now, "evicted", v.request_id, e.pid, level=e.level)
            self._preempt_request(v, now)
            self._ax_running.discard(v.request_id)
            self.autellix_stats["preemptions"] += 1

    def _ax_any_victim(self, head, head_class, victims) -> bool:
        """Whether the rule lets ``head`` evict any of ``victims`` (ranked best first)."""
        mlq, policy = self.mlq, self.mlq.policy
        for v in reversed(victims):
            rid = v.request_id
            if rid not in mlq:
                continue
            if not head_class < eviction_class(mlq.get(rid), policy):
                return False
            if mlq.may_evict(head.request_id, rid):
                return True
        return False

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
        scheduled = scheduler_output.num_scheduled_tokens
        if rec is not None and rec[1] is scheduler_output and scheduled:
            dt = now - max(rec[0], self._ax_last_update)
            mlq, requests = self.mlq, self.requests
            ids = [rid for rid in scheduled if rid in mlq]
            if ids and dt > 0:
                demoted = mlq.charge(ids, dt, now,
                                     prefill_tokens=prefill_tokens(scheduled.values()))
                self.autellix_stats["steps_charged"] += 1
                self.autellix_stats["demotions"] += len(demoted)
            for rid in ids:  # a request past its prompt sampled a token this step
                req = requests.get(rid)
                if req is not None and not req.is_prefill_chunk:
                    mlq.token(rid)
            if self._ax_steplog is not None:
                self._ax_steplog.record(rec[0], dt, scheduled, requests, len(self.running))
        self._ax_last_update = now
        return super().update_from_output(scheduler_output, model_runner_output)

    # ---------------------------------------------------------------- lifecycle
    def _free_request(self, request, *args, **kwargs):
        """vLLM's single exit for finished *and* aborted requests."""
        rid = request.request_id
        now = self.autellix_clock()
        pid = None
        if rid in self.mlq:
            pid = self.mlq.finish(rid, now).pid
        if self._ax_steplog is not None:
            self._ax_steplog.event(now, "finished", rid, pid, status=request.status.name,
                                   output_tokens=request.num_output_tokens)
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
        stats = dict(self.autellix_stats, queued=len(self.mlq), programs=len(self.mlq.table),
                     first_boundary=round(self.mlq.bounds.boundaries[0], 4))
        if stats != self._ax_logged:
            self._ax_logged = stats
            logger.info("autellix: %s", " ".join(f"{k}={v}" for k, v in stats.items()))

    def autellix_snapshot(self) -> dict:
        """Queue state for tests and debugging: call id -> (program, level, state, service)."""
        return {e.call_id: {"pid": e.pid, "level": e.level, "state": e.state.value,
                            "service": e.service, "rank": i}
                for i, e in enumerate(self.mlq.ordered())}


class AutellixScheduler(AutellixSchedulerMixin, Scheduler):
    """Autellix policy on vLLM's synchronous scheduler (CPU, ``--no-async-scheduling``)."""


class AutellixAsyncScheduler(AutellixSchedulerMixin, AsyncScheduler):
    """Autellix policy on vLLM's async scheduler (the GPU default)."""


__all__ = ["AutellixSchedulerMixin", "AutellixScheduler", "AutellixAsyncScheduler",
           "AutellixEngineConfig"]
