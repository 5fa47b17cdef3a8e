"""One simulated engine: continuous batching over a KV block pool, driven by a policy.

Each step the engine (1) lets the multi-level queue promote starved calls, (2) walks
calls in strict queue order forming the batch and stops at the first waiting call
that does not fit (seats or KV blocks; no backfilling) or once the step's token
budget is planned (later waiting calls could not start this step anyway, and on long
contexts their prefix lookups were most of the run), (3) preempts running calls
ranked *behind* an admitted call only when it needs their seat or blocks (recompute
or swap; never a call that has not produced a token since its admission), (4) gives one token to every decode and the remaining token budget to
prefill chunks in queue order, and (5) asks the cost model for the step time.
Service (engine-seconds) is charged to every call in the step when it ends.

When nothing can change the decision for a while (all running calls decode, no
event, completion, demotion, promotion or block shortage is due), the engine
advances many decode steps at once with a closed-form sum of their times. This is
exact for the model, and is what makes 1,000-program runs take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from autellix.mlq import MultiLevelQueue
from autellix.preemption import guard_passed, prefill_tokens
from autellix.sim.costmodel import CostModel
from autellix.sim.block_pool import BlockPool, cdiv
from autellix.sim.sim_config import EngineConfig


@dataclass(slots=True, eq=False)
class SimCall:
    key: str
    pid: str
    prompt: int
    output: int
    hashes: list
    issue: float
    computed: int = 0
    generated: int = 0
    n_hashed: int = 0  # leading blocks of ``hashes`` held as shared, hashed blocks
    private: int = 0
    running: bool = False
    swapped: int = 0
    first_token: float | None = None
    preemptions: int = 0
    cached_tokens: int = 0
    tokens: int = 0  # tokens scheduled in the current step
    seq_len: int = 0  # prompt + generated, kept in step with ``generated``
    gen_at_admit: int = 0  # ``generated`` when last admitted (progress guard)
    admit_seq: int = 0  # order of the latest admission

    def __post_init__(self) -> None:
        self.seq_len = self.prompt + self.generated

    @property
    def held(self) -> int:
        return self.n_hashed + self.private


@dataclass
class EngineStats:
    steps: int = 0
    busy: float = 0.0
    preemptions: int = 0
    swapped_bytes: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    decisions: int = 0


class SimEngine:
    def __init__(self, idx: int, cfg: EngineConfig, cost: CostModel, mlq: MultiLevelQueue):
        self.idx = idx
        self.cfg = cfg
        self.cost = cost
        self.mlq = mlq
        self.B = cfg.block_size
        self.kv = BlockPool(cfg.kv_blocks(cost.p), cfg.block_size, cfg.prefix_caching)
        self.calls: dict[str, SimCall] = {}
        self.running: dict[str, SimCall] = {}
        self.waiting: dict[str, SimCall] = {}
        self.stats = EngineStats()
        self.busy = False
        self._step_idx = 0
        self._batch: list[SimCall] = []
        self._k = 1
        self._ff = False  # the current step is a multi-step decode run
        self._dirty = True  # something changed since the last decision
        self._admits = 0
        # prompt tokens one step may compute for a call: a chunk, or (vLLM 0.6.1,
        # chunked_prefill=False) the whole prompt
        self._cap = cfg.max_batched_tokens if cfg.chunked_prefill else 1 << 40

    # -------------------------------------------------------------- interface
    def add(self, call: SimCall, now: float, remaining_work: float = 0.0) -> None:
        self.calls[call.key] = call
        self.waiting[call.key] = call
        self._dirty = True
        self.mlq.add(call.key, call.pid, now, remaining_work=remaining_work, engine=self.idx)

    def active(self) -> int:
        return len(self.calls)

    def start_step(self, now: float, t_limit: float) -> float:
        """Form the next batch; returns its duration (0 if there is nothing to run)."""
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
            self._batch = []
            return 0.0
        k = self._fast_forward_steps(now, t_limit) if swap_s == 0 else 1
        self._batch, self._k, self._ff = batch, k, k > 1
        if k > 1:
            ctx = sum(c.computed + 1 for c in batch)
            self._alloc_decode_run(batch, k, now)
            return self.cost.decode_run_seconds(len(batch), ctx, k)
        return swap_s + self._assign_tokens(batch)

    def end_step(self, now: float, dt: float) -> list[SimCall]:
        """Apply the step's tokens, charge its time, return calls that finished."""
        batch, k, ff = self._batch, self._k, self._ff
        self.stats.steps += k
        self.stats.busy += dt
        self._step_idx += k
        done: list[SimCall] = []
        ids = []
        counts = []
        for c in batch:
            if not c.running:
                continue
            t = k if ff else c.tokens
            if t == 0:
                continue
            ids.append(c.key)
            counts.append(t)
            c.computed += t
            if ff:
                c.generated += k
                c.seq_len += k
            elif c.computed >= c.seq_len:
                c.generated += 1
                c.seq_len += 1
                if c.first_token is None:
                    c.first_token = now
            if c.computed // self.B > c.n_hashed:
                self._seal(c)
            if c.generated >= c.output:
                done.append(c)
        mlq = self.mlq
        if mlq.charge(ids, dt, now, steps=k,
                      prefill_tokens=0 if ff else prefill_tokens(counts)):
            self._dirty = True
        waiting = len(self.calls) > len(self.running)
        for cid in ids:  # every scheduled call that completed its prompt produced a token
            c = self.calls[cid]
            if c.generated > c.gen_at_admit:
                e = mlq.get(cid)
                if not e.produced:
                    mlq.token(cid)
                if waiting and not self._dirty and guard_passed(e):
                    self._dirty = True  # a new eviction may be allowed now
        if done or (ids and self.mlq.policy.rekey_on_service):
            self._dirty = True
        for c in done:
            self._release(c)
            del self.running[c.key]
            del self.calls[c.key]
        self._batch = []
        return done

    def finish_record(self, c: SimCall, now: float):
        return self.mlq.finish(c.key, now)

    # ---------------------------------------------------------------- decide
    def _decide(self, now: float) -> float:
        cfg, kv = self.cfg, self.kv
        if len(self.running) + len(self.waiting) <= cfg.max_num_seqs:
            # fast path: every waiting call fits (seats and blocks, with a margin of one
            # block of growth per running call), so queue order cannot change the outcome
            room = kv.free - len(self.running)
            for c in self.waiting.values():  # stop at the first call that overflows
                room -= self._admission_need(c)[1]
                if room < 0:
                    break
            else:
                swap_s = 0.0
                for c in sorted(self.waiting.values(), key=lambda c: self.mlq.rank_key(c.key)):
                    swap_s += self._admit(c, now) or 0.0
                return swap_s
        reclaim = sum(c.held for c in self.running.values())
        pending = 0
        seats = cfg.max_num_seqs
        plan: list[tuple[SimCall, int]] = []
        visited = set()
        budget0 = cfg.max_batched_tokens - sum(1 for c in self.running.values()
                                               if c.seq_len - c.computed <= 1)
        budget = budget0
        for e in self.mlq.ordered():
            c = self.calls[e.call_id]
            if seats <= 0:
                break  # every seat is taken by calls ahead; the rest are victims
            if c.running:
                visited.add(c.key)
                seats -= 1
                reclaim -= c.held
                pending += self._growth_blocks(c, 1)
                continue
            if budget <= 0:
                break  # this step's tokens are planned: later calls wait for a step anyway
            need, gate, tokens = self._admission_need(c)
            if gate > kv.free + reclaim - pending:
                break
            seats -= 1
            pending += need
            budget -= tokens
            plan.append((c, need))
        if not plan:
            return 0.0
        victims = sorted((c for k, c in self.running.items() if k not in visited),
                         key=lambda c: self.mlq.rank_key(c.key))
        budget = budget0
        swap_s = 0.0
        for c, _ in plan:
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

    def _victims_for(self, c: SimCall, victims: list) -> list | None:
        """Running calls to evict so that ``c`` is admitted, or None if it cannot be.

        The shared rule (:func:`autellix.preemption.may_evict`) says which running
        calls ``c`` may evict; the lowest-ranked go first, and only as many as ``c``
        needs (a seat, then KV blocks). If even all of them would not make room,
        nobody is evicted, as in the vLLM plug-in."""
        seats = self.cfg.max_num_seqs - len(self.running)
        free = self.kv.free - self._admission_blocks(c, full=True)
        chosen: list = []
        for v in reversed(victims):
            if seats > 0 and free >= 0:
                break
            if self.mlq.may_evict(c.key, v.key):
                chosen.append(v)
                seats += 1
                free += self.kv.freed_by(v.hashes, v.n_hashed, v.private)
        return chosen if seats > 0 and free >= 0 else None

    def _admission_blocks(self, c: SimCall, full: bool = False) -> int:
        """Blocks ``c``'s admission allocates now (prefix hits it revives, then its
        first chunk), or with ``full`` the blocks its whole sequence needs."""
        return self._admission_need(c)[1 if full else 0]

    def _admission_need(self, c: SimCall) -> tuple[int, int, int]:
        """(blocks allocated at admission, blocks that must be free to admit, tokens
        left to compute): vLLM 0.32 admits a call only if its whole sequence fits
        (``scheduler_reserve_full_isl``, on by default, what the plug-in's fit test asks
        too), though it allocates the first chunk only. Without this gate, 56k-token
        prompts were admitted by their first chunk and thrashed: 6.8 memory preemptions
        per call on longctx."""
        if c.swapped:
            n = cdiv(c.swapped, self.B)
            return n, n, c.seq_len - c.swapped
        B = self.B
        hit = self.kv.lookup(c.hashes, (c.seq_len - 1) // B)
        revived = self.kv.revived_by(c.hashes, hit)
        first = min(c.seq_len - hit * B, self._cap)
        alloc = revived + cdiv(hit * B + first, B) - hit
        # a sequence longer than the whole pool could never pass the gate; vLLM refuses
        # to start with a max_model_len the cache cannot hold, so cap it there
        gate = min(revived + cdiv(c.seq_len, B) - hit, self.kv.total)
        return alloc, max(alloc, gate), c.seq_len - hit * B

    def _admit(self, c: SimCall, now: float) -> float | None:
        swap_s = 0.0
        if self._admission_blocks(c, full=True) > self.kv.free:
            return None  # does not fit after all: it stays waiting
        if c.swapped:
            ok = self.kv.allocate(cdiv(c.swapped, self.B))
            assert ok
            c.private = cdiv(c.swapped, self.B)
            c.computed = c.swapped
            swap_s = self.cost.swap_seconds(c.swapped)
            self.stats.swapped_bytes += c.swapped * self.cost.p.kv_bytes_per_token
            c.swapped = 0
            self._seal(c)
        else:
            hit = self.kv.lookup(c.hashes, (c.seq_len - 1) // self.B)
            self.kv.acquire(c.hashes, hit)
            c.n_hashed = hit
            c.computed = hit * self.B
            t = min(c.seq_len - c.computed, self._cap)
            need = self._growth_blocks(c, t)
            if not self.kv.allocate(need):  # cannot happen after the check above
                raise AssertionError(f"admission allocated beyond the pool: {c.key}")
            c.private += need
            if c.preemptions == 0:
                self.stats.prompt_tokens += c.prompt
                self.stats.cached_tokens += min(c.computed, c.prompt)
                c.cached_tokens = min(c.computed, c.prompt)
        c.running = True
        c.gen_at_admit = c.generated
        self._admits += 1
        c.admit_seq = self._admits
        self.running[c.key] = c
        del self.waiting[c.key]
        self.mlq.start(c.key, now, resumed=swap_s > 0)
        return swap_s

    def _preempt(self, c: SimCall, now: float, priority: bool = False) -> float:
        """Evict ``c``; ``priority``: the preemption rule chose it (else memory pressure)."""
        self._dirty = True
        swap_s = 0.0
        lost = c.computed
        if self.cfg.preemption == "swap" and c.computed:
            c.swapped = c.computed
            swap_s = self.cost.swap_seconds(c.computed)
            self.stats.swapped_bytes += c.computed * self.cost.p.kv_bytes_per_token
        self._release(c)
        c.computed = 0
        c.running = False
        c.preemptions += 1
        self.stats.preemptions += 1
        del self.running[c.key]
        self.waiting[c.key] = c
        if priority:
            self.mlq.evict(c.key, now, 0 if c.swapped else lost)
        else:
            self.mlq.preempt(c.key, now)
        return swap_s

    def _release(self, c: SimCall) -> None:
        self.kv.release(c.hashes, c.n_hashed, c.private)
        c.n_hashed, c.private = 0, 0

    # ------------------------------------------------------------ tokens, KV
    def _growth_blocks(self, c: SimCall, t: int) -> int:
        # cdiv inlined: this runs about a million times in a 1,000-program run
        return max(0, -(-(c.computed + t) // self.B) - c.n_hashed - c.private)

    def _grow(self, now: float) -> float:
        """Make sure every running call has blocks for its next token(s); preempt if not."""
        swap_s = 0.0
        B, cap = self.B, self._cap
        needs = []
        total = 0
        for c in self.running.values():
            t = c.seq_len - c.computed
            if t > cap:
                t = cap
            n = -(-(c.computed + t) // B) - c.n_hashed - c.private  # cdiv, inlined (hot)
            if n > 0:
                needs.append((c, n))
                total += n
        if total <= self.kv.free:  # common case: everyone gets blocks, order is irrelevant
            for c, n in needs:
                self.kv.allocate(n)
                c.private += n
            return 0.0
        self._dirty = True
        order = sorted(self.running.values(), key=lambda c: self.mlq.rank_key(c.key))
        for c in order:
            if not c.running:
                continue
            t = min(c.seq_len - c.computed, self._cap)
            need = self._growth_blocks(c, t)
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

    def _alloc_decode_run(self, batch, k: int, now: float) -> None:
        for c in batch:
            need = self._growth_blocks(c, k)
            ok = self.kv.allocate(need)
            assert ok, "fast-forward allocated beyond the pool"
            c.private += need

    def _seal(self, c: SimCall) -> None:
        if not self.kv.prefix_caching:
            return
        n = min(c.computed // self.B, len(c.hashes)) - c.n_hashed
        n = min(n, c.private)
        if n > 0:
            self.kv.seal(c.hashes, c.n_hashed, c.n_hashed + n)
            c.private -= n
            c.n_hashed += n

    def _assign_tokens(self, batch) -> float:
        if not self.cfg.chunked_prefill and any(c.seq_len - c.computed > 1 for c in batch):
            return self._assign_whole_prefills(batch)
        budget = self.cfg.max_batched_tokens
        n_dec = ctx = 0
        for c in batch:
            c.tokens = 0
            if c.seq_len - c.computed == 1:
                c.tokens = 1
                budget -= 1
                n_dec += 1
                ctx += c.computed + 1
        chunks = []
        n_samp = n_dec
        prefills = sorted((c for c in batch if c.seq_len - c.computed > 1),
                          key=lambda c: self.mlq.rank_key(c.key))
        for c in prefills:
            if budget <= 0:
                break
            t = min(budget, c.seq_len - c.computed, c.held * self.B - c.computed)
            if t <= 0:
                continue
            c.tokens = t
            budget -= t
            chunks.append((t, c.computed + t))
            if c.computed + t >= c.seq_len:
                n_samp += 1
        return self.cost.step_seconds(chunks, n_dec, ctx, n_samp)

    def _assign_whole_prefills(self, batch) -> float:
        """vLLM 0.6.1 without chunked prefill: a step that prefills runs no decodes and
        computes whole prompts, in queue order, while they fit the token budget (the
        first one always runs, as 0.6.1 requires the budget to hold any prompt)."""
        for c in batch:
            c.tokens = 0
        chunks, used, n_samp = [], 0, 0
        for c in sorted((c for c in batch if c.seq_len - c.computed > 1),
                        key=lambda c: self.mlq.rank_key(c.key)):
            t = min(c.seq_len - c.computed, c.held * self.B - c.computed)
            if t <= 0:
                continue
            if chunks and used + t > self.cfg.max_batched_tokens:
                break
            c.tokens = t
            used += t
            chunks.append((t, c.computed + t))
            n_samp += c.computed + t >= c.seq_len
        return self.cost.step_seconds(chunks, 0, 0, n_samp)

    def _fast_forward_steps(self, now: float, t_limit: float) -> int:
        if not self.cfg.fast_forward:
            return 1
        batch = self.running.values()
        if any(c.seq_len - c.computed != 1 for c in batch):
            return 1
        if self.mlq.policy.rekey_on_service and len(self.calls) > len(self.running):
            return 1
        r = len(self.running)
        k = min(c.output - c.generated for c in batch)
        free = self.kv.free
        first = min(c.held * self.B - c.computed for c in batch)  # steps before a new block
        k = min(k, first + (free // r) * self.B)
        limit = min(t_limit, self.mlq.next_promotion_time()) - now
        if self.mlq.policy.demotes:
            qmin = min(self.mlq.get(c.key).quantum_left for c in batch)
            limit = min(limit, qmin)
        if len(self.calls) > len(self.running) and self.mlq.policy.preempts:
            for c in batch:  # a guard that passes may allow an eviction: decide then
                e = self.mlq.get(c.key)
                left = max(e.admit_quantum, e.prefill_paid) - e.ran
                if e.produced and left > 0:
                    limit = min(limit, left)
        k = min(k, self.mlq.bounds.steps_to_update())  # boundaries move at block edges
        if k <= 1:
            return 1
        ctx = sum(c.computed + 1 for c in batch)
        lo, hi = 1, k  # smallest k' whose run time reaches ``limit`` (that step still runs)
        if self.cost.decode_run_seconds(r, ctx, hi) > limit:
            while lo < hi:
                mid = (lo + hi) // 2
                if self.cost.decode_run_seconds(r, ctx, mid) >= limit:
                    hi = mid
                else:
                    lo = mid + 1
            k = lo
        return max(1, k)

    def check(self) -> None:
        self.kv.check()
        assert len(self.running) <= self.cfg.max_num_seqs, "running exceeds max_num_seqs"
        held = sum(c.held for c in self.running.values())
        assert held >= self.kv.used or not self.kv.prefix_caching, "blocks leaked"
        assert set(self.calls) == {e.call_id for e in self.mlq.ordered()}, \
            "engine calls and queue disagree"
        assert set(self.calls) == set(self.running) | set(self.waiting), "a call is lost"
        assert not set(self.running) & set(self.waiting), "a call is in two places"
        for c in self.calls.values():
            assert (c.key in self.running) == c.running
            assert c.running or c.held == 0
