"""One engine step as a value, and how a batch's token budget is split.

As in vLLM's ``SchedulerOutput`` / ``update_from_output`` pair, the engine's
``schedule`` returns a :class:`Step` (who runs, how many tokens each, how long it
takes) and ``update`` applies it; nothing about the step hides in the engine.
A step with ``decode_steps > 1`` is a run of that many decode steps in which every
call decodes one token per step (the simulator's fast-forward); the driver may cut
it short at a step boundary when an event arrives (:meth:`SimEngine.shorten`).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from autellix.sim.call import SimCall


@dataclass(slots=True)
class Step:
    start: float
    calls: list[SimCall]
    tokens: list[int]      # tokens scheduled per call (per decode step in a run)
    decode_steps: int      # 1, or the length of a decode run
    seconds: float         # the step's (or run's) duration, swap transfers included
    context: int = 0       # a run's context tokens at its start (its cost depends on it)

    @property
    def is_run(self) -> bool:
        return self.decode_steps > 1


@dataclass(slots=True)
class BatchScan:
    """One pass over the batch before a step: the KV blocks each call needs for its
    next tokens (:meth:`Admission._grow`), and what the token split and the
    fast-forward test need, so neither walks the batch again (each pass over ~60
    calls, every step, was a tenth of a run)."""
    needs: list[tuple[SimCall, int]]  # (call, blocks it needs) where it needs any
    total: int           # blocks needed in all
    tokens: list[int]    # per call, in batch order: 1 for a decode, else 0
    prefills: list[int]  # positions of calls with prompt tokens left
    n_dec: int           # decoding calls
    ctx: int             # decode context tokens (computed + 1 per decode)
    togo: int            # fewest output tokens a decoding call has left
    room: int            # fewest tokens a decoding call fits in its blocks once given ``needs``

    @property
    def all_decode(self) -> bool:
        return self.n_dec == len(self.tokens)


def scan_batch(batch, block: int, cap: int) -> BatchScan:
    """Scan ``batch`` (the running calls, in batch order); ``cap``: prompt tokens one
    step may compute for a call."""
    needs = []
    tokens = [0] * len(batch)
    prefills = []
    total = ctx = n_dec = 0
    togo = room = 1 << 62
    for i, c in enumerate(batch):
        computed = c.computed
        t = c.seq_len - computed
        held = c.n_hashed + c.private
        n = -(-(computed + (t if t <= cap else cap)) // block) - held  # cdiv, inlined
        if n > 0:
            needs.append((c, n))
            total += n
            held += n
        if t == 1:
            tokens[i] = 1
            n_dec += 1
            ctx += computed + 1
            if c.output - c.generated < togo:
                togo = c.output - c.generated
            if held * block - computed < room:
                room = held * block - computed
        elif t > 1:
            prefills.append(i)
    return BatchScan(needs, total, tokens, prefills, n_dec, ctx, togo, room)


def in_queue_order(batch: list[SimCall], idx: list[int]):
    """``idx`` (positions in ``batch``) in queue order, lazily: a heap, as the budget
    usually runs out at the first or second of dozens of prompts (long contexts)."""
    if len(idx) <= 1:
        return idx
    heap = [(batch[i].entry.pos, i) for i in idx]  # positions are unique: no ties
    heapq.heapify(heap)
    return (heapq.heappop(heap)[1] for _ in range(len(heap)))


def assign_tokens(batch: list[SimCall], budget: int, block: int, cost,
                  scan: BatchScan) -> tuple[list[int], float]:
    """vLLM's chunked prefill: one token per decode, then the rest of the ``budget``
    to prompt chunks in queue order, each within the blocks (of ``block`` tokens) it
    holds. ``scan``: the batch's :func:`scan_batch`, blocks given. Returns the tokens
    per call, in ``batch`` order, and the step's seconds."""
    tokens, n_dec, ctx = scan.tokens, scan.n_dec, scan.ctx
    budget -= n_dec
    chunks = []
    n_samp = n_dec
    for i in in_queue_order(batch, scan.prefills):
        if budget <= 0:
            break
        c = batch[i]
        t = min(budget, c.seq_len - c.computed, c.held * block - c.computed)
        if t <= 0:
            continue
        tokens[i] = t
        budget -= t
        chunks.append((t, c.computed + t))
        if c.computed + t >= c.seq_len:
            n_samp += 1
    return tokens, cost.step_seconds(chunks, n_dec, ctx, n_samp)


def assign_whole_prefills(batch: list[SimCall], budget: int, block: int,
                          cost) -> tuple[list[int], float]:
    """vLLM 0.6.1 without chunked prefill: a step that prefills runs no decodes and
    computes whole prompts, in queue order, while they fit the token budget (the
    first one always runs, as 0.6.1 requires the budget to hold any prompt)."""
    tokens = [0] * len(batch)
    chunks: list[tuple[int, int]] = []
    used = n_samp = 0
    for i in in_queue_order(batch, [i for i, c in enumerate(batch)
                                    if c.seq_len - c.computed > 1]):
        c = batch[i]
        t = min(c.seq_len - c.computed, c.held * block - c.computed)
        if t <= 0:
            continue
        if chunks and used + t > budget:
            break
        tokens[i] = t
        used += t
        chunks.append((t, c.computed + t))
        n_samp += c.computed + t >= c.seq_len
    return tokens, cost.step_seconds(chunks, 0, 0, n_samp)
