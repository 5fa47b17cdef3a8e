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


def in_queue_order(batch: list[SimCall], idx: list[int]):
    """``idx`` (positions in ``batch``) in queue order, lazily: a heap, as the budget
    usually runs out at the first or second of dozens of prompts (long contexts)."""
    if len(idx) <= 1:
        return idx
    heap = [(batch[i].entry.pos, i) for i in idx]  # positions are unique: no ties
    heapq.heapify(heap)
    return (heapq.heappop(heap)[1] for _ in range(len(heap)))


def assign_tokens(batch: list[SimCall], budget: int, block: int,
                  cost) -> tuple[list[int], float]:
    """vLLM's chunked prefill: one token per decode, then the rest of the ``budget``
    to prompt chunks in queue order, each within the blocks (of ``block`` tokens) it
    holds. Returns the tokens per call, in ``batch`` order, and the step's seconds."""
    tokens = [0] * len(batch)
    n_dec = ctx = 0
    prefills = []
    for i, c in enumerate(batch):
        left = c.seq_len - c.computed
        if left == 1:
            tokens[i] = 1
            budget -= 1
            n_dec += 1
            ctx += c.computed + 1
        elif left > 1:
            prefills.append(i)
    chunks = []
    n_samp = n_dec
    for i in in_queue_order(batch, prefills):
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
