"""How calls enter and leave a simulated engine's batch.

Each scheduling pass (:meth:`Admission._decide`) walks calls in strict queue order
and plans admissions until the first waiting call that does not fit (seats or KV
blocks; no backfilling) or until the step's token budget is planned (later waiting
calls could not start this step anyway, and on long contexts their prefix lookups
were most of the run). A planned call that needs room takes it from running calls
ranked behind it, only as the shared rule (:func:`autellix.preemption.may_evict`)
allows, lowest-ranked first, and only if it is then admitted. :meth:`Admission._grow`
gives running calls the blocks for their next tokens and, under memory pressure,
preempts (recompute or swap) the lowest-ranked call admitted after the one in need.

vLLM 0.32 admits a call only if its whole sequence fits (``scheduler_reserve_full_isl``),
though it allocates the first chunk only; the walk applies the same gate. The
engine (:class:`autellix.sim.engine.SimEngine`) holds the state these methods use.
"""

from __future__ import annotations

import itertools

from autellix.mlq import CallState, MultiLevelQueue
from autellix.sim.block_pool import BlockPool, cdiv
from autellix.sim.call import EngineStats, SimCall
from autellix.sim.costmodel import CostModel
from autellix.sim.sim_config import EngineConfig
from autellix.sim.step import BatchScan, scan_batch


class Admission:
    """The batch-membership half of :class:`~autellix.sim.engine.SimEngine`, which
    sets the state declared here."""

    cfg: EngineConfig
    cost: CostModel
    mlq: MultiLevelQueue
    kv: BlockPool
    stats: EngineStats
    calls: dict[str, SimCall]    # every call on the engine
    running: dict[str, SimCall]  # the batch
    B: int                       # tokens per KV block
    _cap: int                    # prompt tokens one step may compute for a call
    _dirty: bool
    _admits: int
    _scan: BatchScan | None  # the batch as _grow left it (None: calls were preempted)

    def _decide(self, now: float) -> float:
        cfg, kv, running = self.cfg, self.kv, self.running
        if len(self.calls) <= cfg.max_num_seqs:
            # fast path: every waiting call fits (seats and blocks, with a margin of one
            # block of growth per running call), so queue order cannot change the outcome
            room = kv.free - len(running)
            waiting = [c for k, c in self.calls.items() if k not in running]
            for c in waiting:  # stop at the first call that overflows
                room -= self._admission_need(c)[1]
                if room < 0:
                    break
            else:
                swap_s = 0.0
                for c in sorted(waiting, key=lambda c: self.mlq.rank_key(c.key)):
                    swap_s += self._admit(c, now) or 0.0
                return swap_s
        mlq, calls, RUNNING = self.mlq, self.calls, CallState.RUNNING
        if not mlq.policy.preempts or mlq.evictions_paused():
            # nobody may be evicted, so the walk admits the first waiting call (plan[0])
            # only into a free seat with its gate free now, and nothing if not; decided
            # here without the walk (most passes on a busy engine admit nothing)
            if len(running) >= cfg.max_num_seqs:
                return 0.0
            head = next(e for e in mlq.ordered() if e.state is not RUNNING)
            if self._admission_need(calls[head.call_id])[1] > kv.free:
                return 0.0
        B = self.B
        reclaim = n_dec = grow_all = 0
        for c in running.values():
            held = c.n_hashed + c.private
            reclaim += held
            if c.seq_len - c.computed <= 1:
                n_dec += 1
            grow = -(-(c.computed + 1) // B) - held  # _growth_blocks(c, 1), inlined
            if grow > 0:
                grow_all += grow
        pending = 0
        seats = cfg.max_num_seqs
        plan: list[SimCall] = []
        stop = None  # position of the entry the walk stopped at (None: it saw them all)
        budget0 = cfg.max_batched_tokens - n_dec
        budget = budget0
        order = mlq.ordered()
        ahead = 0
        for head in order:  # the running calls ranked ahead of the first waiting one
            if head.state is not RUNNING:
                break
            ahead += 1
        else:
            return 0.0  # nobody waits
        if ahead == len(running):  # all of them (the usual case): the walk's sums are known
            seats -= ahead
            reclaim, pending = 0, grow_all
            order = itertools.chain((head,), order)
        else:
            order = mlq.ordered()
        for e in order:
            if seats <= 0:
                stop = e.pos
                break  # every seat is taken by calls ahead; the rest are victims
            c = calls[e.call_id]
            if e.state is RUNNING:  # the hot branch: inlined (held, _growth_blocks)
                seats -= 1
                held = c.n_hashed + c.private
                reclaim -= held
                grow = -(-(c.computed + 1) // B) - held
                if grow > 0:
                    pending += grow
                continue
            if budget <= 0:
                stop = e.pos
                break  # this step's tokens are planned: later calls wait for a step anyway
            need, gate, tokens, _ = self._admission_need(c)
            if gate > kv.free + reclaim - pending:
                stop = e.pos
                break
            seats -= 1
            pending += need
            budget -= tokens
            plan.append(c)
        if not plan:
            return 0.0
        # the running calls the walk did not reach (ranked at or after where it stopped)
        victims: list[SimCall] = [] if stop is None else sorted(
            (c for c in running.values() if c.entry.pos >= stop), key=lambda c: c.entry.pos)
        budget = budget0
        swap_s = 0.0
        for c in plan:
            if budget <= 0:
                break
            chosen = self._victims_for(c, victims)
            if chosen is None:
                break  # strict order: nothing behind this call may jump it
            for v in chosen:
                victims.remove(v)
                swap_s += self._preempt(v, now, priority=True)
            admitted = self._admit(c, now)
            if admitted is None:
                break
            swap_s += admitted
            budget -= min(budget, c.seq_len - c.computed)
        return swap_s

    def _victims_for(self, c: SimCall, victims: list[SimCall]) -> list[SimCall] | None:
        """Running calls to evict so that ``c`` is admitted, or None if it cannot be.

        The shared rule (:func:`autellix.preemption.may_evict`) says which running
        calls ``c`` may evict; the lowest-ranked go first, and only as many as ``c``
        needs (a seat, then KV blocks). If even all of them would not make room,
        nobody is evicted, as in the vLLM plug-in."""
        seats = self.cfg.max_num_seqs - len(self.running)
        free = self.kv.free - self._admission_need(c)[1]
        chosen: list[SimCall] = []
        for v in reversed(victims):
            if seats > 0 and free >= 0:
                break
            if self.mlq.may_evict(c.key, v.key):
                chosen.append(v)
                seats += 1
                free += self.kv.freed_by(v.hashes, v.n_hashed, v.private)
        return chosen if seats > 0 and free >= 0 else None

    def _admission_need(self, c: SimCall) -> tuple[int, int, int, int]:
        """(blocks allocated at admission, blocks that must be free to admit, tokens
        left to compute, leading blocks found in the prefix cache). The gate is the
        whole sequence, net of prefix hits; without it, 56k-token prompts were admitted
        by their first chunk and thrashed (6.8 memory preemptions per call on longctx)."""
        if c.host_tokens:
            n = cdiv(c.host_tokens, self.B)
            return n, n, c.seq_len - c.host_tokens, 0
        B = self.B
        hit = self.kv.lookup(c.hashes, (c.seq_len - 1) // B)
        revived = self.kv.revived_by(c.hashes, hit)
        first = min(c.seq_len - hit * B, self._cap)
        alloc = revived + cdiv(hit * B + first, B) - hit
        # a sequence longer than the whole pool could never pass the gate; vLLM refuses
        # to start with a max_model_len the cache cannot hold, so cap it there
        gate = min(revived + cdiv(c.seq_len, B) - hit, self.kv.total)
        return alloc, max(alloc, gate), c.seq_len - hit * B, hit

    def _admit(self, c: SimCall, now: float) -> float | None:
        """Admit ``c`` if its whole sequence fits (else None: it stays waiting);
        returns the seconds its swap-in costs."""
        swap_s = 0.0
        _, gate, _, hit = self._admission_need(c)  # one prefix lookup serves both
        if gate > self.kv.free:
            return None
        resumed = self.mlq.get(c.key).state is CallState.SWAPPED
        if resumed:
            n = cdiv(c.host_tokens, self.B)
            ok = self.kv.allocate(n)
            assert ok
            c.private = n
            c.computed = c.host_tokens
            swap_s = self.cost.swap_seconds(c.host_tokens)
            self.stats.swapped_bytes += c.host_tokens * self.cost.p.kv_bytes_per_token
            c.host_tokens = 0
            self._seal(c)
        else:
            self.kv.acquire(c.hashes, hit)
            c.n_hashed = hit
            c.computed = hit * self.B
            need = self._growth_blocks(c, min(c.seq_len - c.computed, self._cap))
            if not self.kv.allocate(need):  # cannot happen after the check above
                raise AssertionError(f"admission allocated beyond the pool: {c.key}")
            c.private += need
            if c.preemptions == 0:
                self.stats.prompt_tokens += c.prompt
                self.stats.cached_tokens += min(c.computed, c.prompt)
                c.cached_tokens = min(c.computed, c.prompt)
        c.gen_at_admit = c.generated
        self._admits += 1
        c.admit_seq = self._admits
        self.running[c.key] = c
        self.mlq.start(c.key, now, resumed=resumed)
        return swap_s

    def _preempt(self, c: SimCall, now: float, priority: bool = False) -> float:
        """Evict ``c``; ``priority``: the preemption rule chose it (else memory pressure)."""
        self._dirty = True
        swap_s = 0.0
        lost = c.computed
        swapped = self.cfg.preemption == "swap" and c.computed > 0
        if swapped:
            c.host_tokens = c.computed
            swap_s = self.cost.swap_seconds(c.computed)
            self.stats.swapped_bytes += c.computed * self.cost.p.kv_bytes_per_token
        self._release(c)
        c.computed = 0
        c.preemptions += 1
        self.stats.preemptions += 1
        del self.running[c.key]
        if priority:
            self.mlq.evict(c.key, now, 0 if swapped else lost, swapped=swapped)
        else:
            self.mlq.preempt(c.key, now, swapped=swapped)
        return swap_s

    def _release(self, c: SimCall) -> None:
        self.kv.release(c.hashes, c.n_hashed, c.private)
        c.n_hashed, c.private = 0, 0

    def _growth_blocks(self, c: SimCall, t: int) -> int:
        # cdiv inlined: this runs about a million times in a 1,000-program run
        return max(0, -(-(c.computed + t) // self.B) - c.n_hashed - c.private)

    def _grow(self, now: float) -> float:
        """Make sure every running call has blocks for its next token(s); preempt if
        not. Leaves the batch's scan in ``_scan`` (None after preemptions)."""
        swap_s = 0.0
        scan = scan_batch(self.running.values(), self.B, self._cap)
        if scan.total <= self.kv.free:  # common case: everyone gets blocks, order is irrelevant
            self.kv.allocate(scan.total)  # one call evicts the same LRU blocks as one per call
            for c, n in scan.needs:
                c.private += n
            self._scan = scan
            return 0.0
        self._scan = None
        self._dirty = True
        order = sorted(self.running.values(), key=lambda c: self.mlq.rank_key(c.key))
        for c in order:
            if c.key not in self.running:
                continue
            need = self._growth_blocks(c, min(c.seq_len - c.computed, self._cap))
            while not self.kv.allocate(need):
                # evict the lowest-ranked call admitted after this one (else itself): the
                # longest-running call is never a memory victim, so it always finishes
                # (vLLM's ordering alone can livelock when priorities move, as in las)
                later = [v for v in self.running.values() if v.admit_seq > c.admit_seq]
                victim = max(later, key=lambda v: self.mlq.rank_key(v.key)) if later else c
                swap_s += self._preempt(victim, now)
                if victim is c:
                    break
            else:
                c.private += need
        return swap_s

    def _seal(self, c: SimCall) -> None:
        """Turn ``c``'s filled private blocks into hashed, shareable ones."""
        if not self.kv.prefix_caching:
            return
        n = min(c.computed // self.B, len(c.hashes)) - c.n_hashed
        n = min(n, c.private)
        if n > 0:
            self.kv.seal(c.hashes, c.n_hashed, c.n_hashed + n)
            c.private -= n
            c.n_hashed += n
