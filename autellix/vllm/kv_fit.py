"""Does a waiting request fit? vLLM 0.32's own KV accounting, asked ahead of time.

The plug-in decides *before* vLLM's ``schedule()`` whether evicting running calls
would let the head of the waiting queue in. A guess here either evicts too little
(the top call keeps waiting; sizing the head by its first chunk made a level-0 call
wait 193 steps) or evicts for nothing (ignoring prefix hits evicted a call for a
sibling that needed one new block). So every number comes from vLLM's own
``KVCacheManager``: the prefix-cache hit (``get_computed_blocks``), the blocks to
allocate for the *whole* prompt when ``scheduler_reserve_full_isl`` is on (vLLM
then admits a request only if all of it fits), the watermark kept free for
admissions, and the blocks running calls take this step before any admission.
"""

from __future__ import annotations


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def admission_blocks(sched, request) -> int:
    """Free blocks ``request`` needs for vLLM to admit it now (watermark included)."""
    kvm = sched.kv_cache_manager
    if request.num_computed_tokens == 0:
        blocks, hit = kvm.get_computed_blocks(request)[:2]
    else:  # holds blocks already (kv_holding_waiting)
        blocks, hit = kvm.empty_kv_cache_blocks, 0
    computed = request.num_computed_tokens + hit
    full = min(request.num_tokens, sched.max_model_len)
    if sched.scheduler_reserve_full_isl:
        n_tokens = full
    else:
        n_tokens = min(full, computed + sched.max_num_scheduled_tokens)
    need = kvm.coordinator.get_num_blocks_to_allocate(
        request_id=request.request_id, num_tokens=n_tokens, new_computed_blocks=blocks.blocks,
        num_encoder_tokens=0, total_computed_tokens=computed, num_local_computed_tokens=computed,
        num_tokens_main_model=n_tokens, apply_admission_cap=True,
        prefill_end=max(request.num_prompt_tokens, request.num_tokens - 1))
    return need + (kvm.watermark_blocks if sched.running else 0)


def step_tokens(sched, request) -> int:
    """Tokens vLLM will schedule for a running request this step (before budget cuts)."""
    left = (request.num_tokens_with_spec + request.num_output_placeholders
            - request.num_computed_tokens)
    return max(0, min(left, sched.max_num_scheduled_tokens))


def growth_blocks(sched, request) -> int:
    """New blocks a running request takes this step (vLLM's running-first pass)."""
    t = step_tokens(sched, request)
    if t == 0:
        return 0
    kvm = sched.kv_cache_manager
    n = request.num_computed_tokens + t + sched.num_lookahead_tokens
    held = max((len(b) for b in kvm.coordinator.get_blocks(request.request_id)), default=0)
    return max(0, _cdiv(min(n, sched.max_model_len), sched.block_size) - held)


def freeable_blocks(sched, request) -> int:
    """Blocks that return to the free pool if ``request`` is evicted (unshared ones)."""
    groups = sched.kv_cache_manager.coordinator.get_blocks(request.request_id)
    return sum(1 for g in groups for b in g if b.ref_cnt == 1 and not b.is_null)
