"""The one preemption rule, shared by the simulator and the vLLM plug-in.

Both engines form batches in strict queue order (level, then the policy's key, then
entry order) and stop at the first waiting call that does not fit. When the call at
the head of the waiting order does not fit, a running call may give way to it only
under this rule; both engines ask :func:`may_evict` and nothing else.

**Who may evict whom.** A waiting call ``W`` may evict a running call ``V`` only if

1. ``W`` belongs to a strictly better *class* than ``V``: a strictly higher queue
   level for the multi-level policies (``plas``, ``atlas``, ``mlfq``), or a strictly
   smaller policy key for the single-level preemptive ones (``las``: call service,
   ``srpt``: remaining program work). Inside one class nobody evicts anybody, so a
   call that merely demoted is never traded for a same-level waiter (every trade
   costs a recompute on vLLM). ``fcfs`` has one class, so it never evicts for
   priority, like stock vLLM. A policy with ``preempts = False`` never evicts.
2. ``W`` is not in Q1 by anti-starvation promotion. A promotion moves a call to the
   front of the queue, so it takes the next free seat before anybody else, but it
   never buys the right to evict: otherwise, under sustained overload, every
   promoted call runs one Q1 quantum, demotes, and is evicted by the next promoted
   waiter, and re-prefilling its history costs more than the quantum gave it
   (measured: 485,000 preemptions for 1,600 chat programs). In particular promoted
   calls never evict one another.
3. ``W`` and ``V`` are calls of different programs. Threads of one program share
   its priority; evicting a sibling gains the program nothing and costs a recompute.
4. **Progress guard.** ``V`` has produced a token since it was (re)admitted, and has
   run, after that first token, at least ``max(q, r)`` engine-seconds, where ``q`` is
   the quantum of the level it was admitted at (the last finite quantum for the
   bottom queue) and ``r`` is what its prefill since admission cost, i.e. what the
   eviction makes it pay again. So an eviction never wastes more than half of a
   call's engine time, no call is evicted before its first token, and each
   admission yields at least one quantum of progress.

5. **Recompute budget.** Priority evictions pause while the engine's recent time
   spent in steps that re-prefill evicted calls exceeds ``recompute_budget`` (10%)
   of its busy time (both decayed over ``recompute_horizon``, 30 engine-seconds).
   A priority eviction is charged when it happens, with the estimated cost of
   re-prefilling the victim's context (its tokens at the engine's recent marginal
   prefill cost per token), since a deep-level victim may recompute much later;
   memory-pressure recompute is counted as it runs.
   Each eviction's recompute slows the *whole batch*: at 64 seats a 10k-token
   re-prefill stalls 63 other calls for about 0.6 s, which a per-victim guard does
   not see. Without this bound, MLFQ, where every new call enters Q1 and outranks
   every running call, evicted 0.7 calls per arrival at 4.8x load and stretched the
   makespan by 29%. With it, priority scheduling can cost at most about a tenth of
   the engine. Counting a whole step when any call in it recomputes overstates the
   waste, so the bound errs on the side of fewer evictions.

**Victim order.** Among the running calls that the rule allows, the lowest-ranked
goes first; the engine evicts only as many as the head needs (a seat, and KV blocks
by the engine's own accounting) and only if the head is then admitted.

**Memory pressure** (a *running* call cannot get a block for its next token) is not
a priority decision, and the guard does not apply: the lowest-ranked running call
yields. vLLM's own ``schedule()`` makes this choice inside the plug-in; the
simulator does the same, except that it never picks a call admitted before the one
that needs the block, so the oldest call always progresses (README, "Scheduling").

**Recompute is not attained service.** Engine time a readmitted call spends
re-prefilling what it had already computed is kept apart (``QEntry.recompute``):
it does not consume the call's quantum, raise its program's service, or count as
service in the starvation ratio. It is waste the scheduler caused; charging it would
demote a call for having been evicted, and keep its starvation ratio low so that it
is never promoted either.
"""

from __future__ import annotations

import math


def eviction_class(entry, policy) -> tuple:
    """The class compared by rule 1: level, then the policy key for single-level
    preemptive policies (the key is 0 for the multi-level ones)."""
    return (entry.level, policy.sort_key(entry))


def guard_passed(v) -> bool:
    """Rule 4 on a running queue entry ``v``."""
    if not v.produced:
        return False
    return v.ran >= max(v.admit_quantum, v.prefill_paid)


def may_evict(w, v, policy) -> bool:
    """May waiting entry ``w`` evict running entry ``v``? (rules 1-4 above; rule 5,
    the recompute budget, is engine-wide: :meth:`MultiLevelQueue.may_evict`)."""
    if not policy.preempts or w.promoted or w.pid == v.pid:
        return False
    if not eviction_class(w, policy) < eviction_class(v, policy):
        return False
    return guard_passed(v)


def prefill_tokens(scheduled) -> int:
    """The prompt-chunk tokens of a step, from each call's scheduled token count: a
    decode schedules exactly one token, so anything larger is a (re-)prefill chunk.
    Both engines feed this to rule 5's recompute estimate."""
    return sum(n for n in scheduled if n > 1)


def finite_quantum(quantum: float, fallback: float) -> float:
    """The bottom queue never demotes (infinite quantum); its guard uses ``fallback``."""
    return quantum if math.isfinite(quantum) else fallback
