"""KV block pool with automatic prefix caching (per engine, LRU), as in vLLM.

A sequence's *full* blocks are identified by a hash id (an int); a call's list of
hash ids is its parent's shared prefix followed by fresh ids. A call holds a prefix
of its list as *hashed* blocks (``n_hashed`` of them: shared and reference-counted,
so two calls with the same prefix hold one block) plus some *private* blocks (the
partial last block, and chunks not yet sealed). When the last holder releases a
hashed block it stays in the pool as a cached, evictable block, in LRU order, so a
later call of the same program that lands on this engine reuses it. Allocation takes
free blocks first, then evicts the least recently used cached ones.

Every hashed or cached block is a key of ``ref`` (its holder count; 0 = cached),
so a prefix lookup is one membership scan. Long contexts (tens of thousands of
tokens, thousands of blocks per call) made per-block Python loops the simulator's
main cost, so the bulk operations here run as C-level ``map``/``islice`` chains.

Invariant (checked by ``check``): ``used + cached <= total``.
"""

from __future__ import annotations

import operator
from collections import OrderedDict, deque
from itertools import compress, count, islice, repeat, starmap

from autellix.config import ConfigError


def cdiv(a: int, b: int) -> int:
    """Ceiling division: blocks needed for ``a`` tokens of ``b`` per block."""
    return -(-a // b)


def _drain(it) -> None:
    deque(it, maxlen=0)


_inc = (1).__add__
_first, _second = operator.itemgetter(0), operator.itemgetter(1)


class BlockPool:
    def __init__(self, total_blocks: int, block_size: int, prefix_caching: bool = True):
        if total_blocks < 1 or block_size < 1:
            raise ConfigError("total_blocks and block_size must be >= 1")
        self.total = total_blocks
        self.block_size = block_size
        self.prefix_caching = prefix_caching
        self.used = 0                         # blocks held by live sequences
        self.ref: dict[int, int] = {}         # hashed or cached block -> holders
        self.cached: OrderedDict[int, None] = OrderedDict()  # evictable, LRU first

    @property
    def free(self) -> int:
        """Blocks that can be allocated now (evicting cached ones as needed)."""
        return self.total - self.used

    # ----------------------------------------------------------------- queries
    def lookup(self, hashes: list, limit: int) -> int:
        """Number of leading blocks of ``hashes[:limit]`` present (in use or cached)."""
        if not self.prefix_caching or limit <= 0:
            return 0
        missing = compress(count(), map(operator.not_, map(self.ref.__contains__,
                                                           islice(hashes, limit))))
        return next(missing, min(limit, len(hashes)))

    def revived_by(self, hashes: list, hit: int) -> int:
        """Blocks a prefix hit of ``hit`` blocks would newly occupy (cached ones; blocks
        in use are shared)."""
        if hit <= 0:
            return 0
        return operator.countOf(map(self.ref.__getitem__, islice(hashes, hit)), 0)

    def freed_by(self, hashes: list, n_hashed: int, n_private: int) -> int:
        """Blocks that releasing a sequence would make allocatable (shared ones stay)."""
        if n_hashed <= 0:
            return n_private
        return n_private + operator.countOf(map(self.ref.__getitem__,
                                                islice(hashes, n_hashed)), 1)

    # ------------------------------------------------------------- transitions
    def acquire(self, hashes: list, hit: int) -> None:
        """Take a reference on the first ``hit`` blocks (found by :meth:`lookup`)."""
        if hit <= 0:
            return
        ref = self.ref
        hs = hashes[:hit]
        revived = [h for h in hs if not ref[h]]
        if revived:
            _drain(map(self.cached.pop, revived))
            self.used += len(revived)
        ref.update(zip(hs, map(_inc, map(ref.__getitem__, hs)), strict=True))

    def allocate(self, n: int) -> bool:
        """Take ``n`` private blocks, evicting LRU cached blocks if needed."""
        if n <= 0:
            return True
        if n > self.total - self.used:
            return False
        over = self.used + len(self.cached) + n - self.total
        if over > 0:
            if over < 8:  # a few blocks (most steps): a plain loop is cheaper
                for _ in range(over):
                    del self.ref[self.cached.popitem(last=False)[0]]
            else:
                gone = [k for k, _ in starmap(self.cached.popitem, repeat((False,), over))]
                _drain(map(self.ref.pop, gone))
        self.used += n
        return True

    def seal(self, hashes: list, start: int, end: int) -> None:
        """Private blocks ``start:end`` of a sequence became full: make them hashed and
        shareable. A block someone else computed meanwhile is shared (its private copy
        freed); a cached one is taken back from the LRU."""
        if not self.prefix_caching or end <= start:
            return
        ref = self.ref
        if end - start == 1 and hashes[start] not in ref:  # a decode step filled a block
            ref[hashes[start]] = 1
            return
        hs = hashes[start:end]
        if ref.keys().isdisjoint(hs):  # the common case: fresh content
            ref.update(dict.fromkeys(hs, 1))
            return
        # per block: new -> 1 holder; held by others -> one more (this copy is freed);
        # cached -> taken back from the LRU. As bulk operations: a re-prefill after an
        # eviction seals a chunk of 128 cached blocks each step (long contexts)
        got = list(map(ref.get, hs))
        # holders > 0 (None and 0 are falsy)
        shared = list(compress(zip(hs, got, strict=True), got))
        revived = list(compress(hs, map(operator.eq, got, repeat(0))))
        ref.update(dict.fromkeys(hs, 1))
        if shared:
            ref.update(zip(map(_first, shared), map(_inc, map(_second, shared)), strict=True))
            self.used -= len(shared)
        if revived:
            _drain(map(self.cached.pop, revived))

    def release(self, hashes: list, n_hashed: int, n_private: int) -> None:
        """Release a sequence's blocks: hashed ones go to the LRU cache when unreferenced."""
        self.used -= n_private
        if n_hashed <= 0:
            return
        ref = self.ref
        hs = hashes[:n_hashed]
        left = list(map(operator.sub, map(ref.__getitem__, hs), repeat(1)))
        ref.update(zip(hs, left, strict=True))
        gone = list(compress(hs, map(operator.not_, left)))
        if gone:
            self.cached.update(dict.fromkeys(gone))
            self.used -= len(gone)

    def check(self) -> None:
        assert 0 <= self.used <= self.total, f"KV blocks exceeded: used {self.used} of {self.total}"
        assert self.used + len(self.cached) <= self.total, "cached + used exceed the pool"
        live = sum(1 for v in self.ref.values() if v)
        assert live <= self.used, "hashed blocks exceed used blocks"
        assert live + len(self.cached) == len(self.ref), "cached blocks and refcounts disagree"
