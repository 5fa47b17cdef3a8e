"""One simulated engine: continuous batching over a KV block pool, driven by a policy.

A step is a value, as in vLLM's ``SchedulerOutput`` / ``update_from_output``:
:meth:`SimEngine.schedule` (1) lets the multi-level queue promote starved calls,
(2) runs the scheduling pass (:mod:`autellix.sim.admission`: the batch walk in strict
queue order, the shared preemption rule, KV growth), (3) splits the token budget
(one token per decode, prompt chunks in queue order: :mod:`autellix.sim.step`) and
(4) asks the cost model for the step's time, and returns a :class:`Step`.
:meth:`SimEngine.update` applies it: tokens, sealed blocks, service charged to every
call in the step, finished calls.

When nothing can change the decision for a while (all running calls decode, no
event, completion, demotion, promotion, guard expiry or block shortage is due), the
step is a run of many decode steps with a closed-form sum of their times. This is
exact for the model, and is what makes 1,000-program runs take seconds; the driver
cuts a run short (:meth:`SimEngine.shorten`) when a new call arrives.
"""

from __future__ import annotations

from autellix.mlq import CallState, MultiLevelQueue
from autellix.preemption import guard_passed
from autellix.sim.admission import Admission
from autellix.sim.block_pool import BlockPool
from autellix.sim.call import EngineStats, SimCall
from autellix.sim.costmodel import CostModel
from autellix.sim.sim_config import EngineConfig
from autellix.sim.step import BatchScan, Step, assign_tokens, assign_whole_prefills, scan_batch


class SimEngine(Admission):
    def __init__(self, idx: int, cfg: EngineConfig, cost: CostModel, mlq: MultiLevelQueue):
        self.idx = idx
        self.cfg = cfg
        self.cost = cost
        self.mlq = mlq
        self.B = cfg.block_size
        self.kv = BlockPool(cfg.kv_blocks(cost.p), cfg.block_size, cfg.prefix_caching)
        self.calls: dict[str, SimCall] = {}    # every call on this engine
        self.running: dict[str, SimCall] = {}  # the batch (queue state RUNNING)
        self.stats = EngineStats()
        self._step_idx = 0
        self._dirty = True  # something changed since the last decision
        self._admits = 0
        self._scan: BatchScan | None = None
        # prompt tokens one step may compute for a call: a chunk, or (vLLM 0.6.1,
        # chunked_prefill=False) the whole prompt
        self._cap = cfg.max_batched_tokens if cfg.chunked_prefill else 1 << 40

    # -------------------------------------------------------------- interface
    @property
    def capacity_blocks(self) -> int:
        return self.kv.total

    def add(self, call: SimCall, now: float, remaining_work: float = 0.0) -> None:
        self.calls[call.key] = call
        self._dirty = True
        call.entry = self.mlq.add(call.key, call.program_id, now,
                                  remaining_work=remaining_work, engine=self.idx)

    def active(self) -> int:
        return len(self.calls)

    def schedule(self, now: float, horizon: float = float("inf")) -> Step | None:
        """Form the next step (None if nothing can run). ``horizon``: a decode run
        must not pass it (the driver's next known event)."""
        decide = (self._step_idx % self.cfg.schedule_interval == 0) or not self.running
        swap_s = 0.0
        if decide:
            if self.mlq.promote_starved(now):
                self._dirty = True
            # an unchanged state gives an unchanged decision: skip the walk
            if self._dirty and len(self.calls) > len(self.running):
                self.stats.decisions += 1
                swap_s += self._decide(now)
            self._dirty = False
        swap_s += self._grow(now)
        batch = list(self.running.values())
        if not batch:
            return None
        scan = self._scan
        if scan is None:  # calls were preempted for blocks: scan what is left
            scan = scan_batch(batch, self.B, self._cap)
        k = self._fast_forward_steps(now, horizon, scan) if swap_s == 0 else 1
        if k > 1:
            self._alloc_decode_run(batch, k)
            return Step(now, batch, [1] * len(batch), k,
                        self.cost.decode_run_seconds(len(batch), scan.ctx, k), scan.ctx)
        budget = self.cfg.max_batched_tokens
        if self.cfg.chunked_prefill or not scan.prefills:
            tokens, seconds = assign_tokens(batch, budget, self.B, self.cost, scan)
        else:
            tokens, seconds = assign_whole_prefills(batch, budget, self.B, self.cost)
        return Step(now, batch, tokens, 1, swap_s + seconds)

    def shorten(self, step: Step, t: float) -> Step | None:
        """``step`` cut at the first step boundary at or after ``t``, or None if it is
        not a decode run or already ends there."""
        if not step.is_run:
            return None
        r, k = len(step.calls), step.decode_steps
        lo = _first_step(k, lambda j: step.start + self.cost.decode_run_seconds(
            r, step.context, j) >= t)
        if lo >= k:
            return None
        return Step(step.start, step.calls, step.tokens, lo,
                    self.cost.decode_run_seconds(r, step.context, lo), step.context)

    def update(self, step: Step, now: float) -> list[SimCall]:
        """Apply ``step`` (ended at ``now``): tokens, blocks, service; returns the calls
        that finished (already removed from the engine)."""
        k, run, dt = step.decode_steps, step.is_run, step.seconds
        self.stats.steps += k
        self.stats.busy += dt
        self._step_idx += k
        done: list[SimCall] = []
        sched: list[SimCall] = []
        running, B, pf = self.running, self.B, 0
        # two loops, not one with branches: this runs for every running call, every step
        if run:
            sched = [c for c in step.calls if c.key in running]
            for c in sched:
                c.computed += k
                c.generated += k
                c.seq_len += k
                if c.computed // B > c.n_hashed:
                    self._seal(c)
                if c.generated >= c.output:
                    done.append(c)
        else:
            for c, t in zip(step.calls, step.tokens, strict=True):
                if t == 0 or c.key not in running:
                    continue
                sched.append(c)
                if t > 1:  # preemption.prefill_tokens, summed here
                    pf += t
                c.computed += t
                if c.computed >= c.seq_len:
                    c.generated += 1
                    c.seq_len += 1
                    if c.first_token is None:
                        c.first_token = now
                if c.computed // B > c.n_hashed:
                    self._seal(c)
                if c.generated >= c.output:
                    done.append(c)
        mlq = self.mlq
        entries = [c.entry for c in sched]
        if mlq.charge_entries(entries, dt, now, steps=k, prefill_tokens=pf):
            self._dirty = True
        # every scheduled call that completed its prompt produced a token (charged above
        # as prefill); then a new eviction may be allowed once a guard passes
        for c in sched:
            if c.generated > c.gen_at_admit and not c.entry.produced:
                mlq.token(c.key)
        if len(self.calls) > len(running) and not self._dirty:
            for c in sched:
                if c.generated > c.gen_at_admit and guard_passed(c.entry):
                    self._dirty = True
                    break
        if done or (entries and mlq.policy.rekey_on_service):
            self._dirty = True
        for c in done:
            self._release(c)
            del self.running[c.key]
            del self.calls[c.key]
        return done

    def finish_record(self, c: SimCall, now: float):
        return self.mlq.finish(c.key, now)

    def abort_all(self, now: float) -> list:
        """Remove every call (the simulation's time limit); returns (call, queue entry)
        pairs for their records."""
        out = []
        for c in list(self.calls.values()):
            if c.key in self.running:
                self._preempt(c, now)
            out.append((c, self.mlq.finish(c.key, now)))
            del self.calls[c.key]
        return out

    # ------------------------------------------------------------ decode runs
    def _alloc_decode_run(self, batch, k: int) -> None:
        for c in batch:
            need = self._growth_blocks(c, k)
            ok = self.kv.allocate(need)
            assert ok, "fast-forward allocated beyond the pool"
            c.private += need

    def _fast_forward_steps(self, now: float, t_limit: float, scan: BatchScan) -> int:
        """Decode steps the next step may run: 1 unless every running call decodes;
        otherwise up to the first completion, block shortage, boundary update or time
        limit (demotion, guard, promotion, event). ``scan``: the batch, blocks given."""
        if not self.cfg.fast_forward or not scan.all_decode:
            return 1
        mlq = self.mlq
        waiting = len(self.calls) > len(self.running)
        if mlq.policy.rekey_on_service and waiting:
            return 1
        r, ctx, batch = len(self.running), scan.ctx, self.running.values()
        k = min(scan.togo, scan.room + (self.kv.free // r) * self.B)
        k = min(k, mlq.bounds.steps_to_update())  # boundaries move at block edges
        if k <= 1:
            return 1
        limit = min(t_limit, mlq.next_promotion_time()) - now
        if mlq.policy.demotes:
            limit = min(limit, min(c.entry.quantum_left for c in batch))
        if waiting and mlq.policy.preempts:
            for c in batch:  # a guard that passes may allow an eviction: decide then
                e = c.entry
                left = max(e.admit_quantum, e.prefill_paid) - e.ran
                if e.produced and left > 0:
                    limit = min(limit, left)
        # the smallest run whose time reaches ``limit`` (that step still runs)
        if self.cost.decode_run_seconds(r, ctx, k) > limit:
            k = _first_step(k, lambda j: self.cost.decode_run_seconds(r, ctx, j) >= limit)
        return max(1, k)

    def check(self) -> None:
        self.kv.check()
        assert len(self.running) <= self.cfg.max_num_seqs, "running exceeds max_num_seqs"
        held = sum(c.held for c in self.running.values())
        assert held >= self.kv.used or not self.kv.prefix_caching, "blocks leaked"
        assert set(self.calls) == {e.call_id for e in self.mlq.ordered()}, \
            "engine calls and queue disagree"
        assert set(self.running) <= set(self.calls), "a running call is lost"
        for c in self.calls.values():
            state = self.mlq.get(c.key).state
            assert (c.key in self.running) == (state is CallState.RUNNING), c.key
            assert (state is CallState.SWAPPED) == (c.host_tokens > 0), c.key
            assert state is CallState.RUNNING or c.held == 0


def _first_step(k: int, reached) -> int:
    """The smallest ``j`` in ``1..k`` with ``reached(j)`` (monotone in ``j``), else ``k``:
    where a decode run is cut, by bisection over its closed-form time."""
    lo, hi = 1, k
    while lo < hi:
        mid = (lo + hi) // 2
        if reached(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo
