"""KV block pool with automatic prefix caching (per engine, LRU), as in vLLM.

A sequence's *full* blocks are identified by a hash id (an int). Blocks held by
running calls are either *hashed* (shared, reference-counted: two calls with the
same prefix hold one block) or *private* (the partial last block). When the last
holder releases a hashed block it stays in the cache as an evictable block, in LRU
order, so a later call of the same program that lands on this engine reuses it.
Allocation takes free blocks first, then evicts the least recently used cached ones.

Invariant (checked by ``check``): ``used + cached <= total``.
"""

from __future__ import annotations

from collections import OrderedDict


class KVPool:
    def __init__(self, total_blocks: int, block_size: int, prefix_caching: bool = True):
        if total_blocks < 1 or block_size < 1:
            raise ValueError("total_blocks and block_size must be >= 1")
        self.total = total_blocks
        self.block_size = block_size
        self.prefix_caching = prefix_caching
        self.used = 0                            # blocks held by live sequences
        self.ref: dict[int, int] = {}            # hashed blocks in use -> holders
        self.cached: OrderedDict[int, None] = OrderedDict()  # evictable, LRU first

    @property
    def free(self) -> int:
        """Blocks that can be allocated now (evicting cached ones as needed)."""
        return self.total - self.used

    def shared_fraction(self, h: int) -> float:
        """This holder's share of a hashed block (1/holders)."""
        return 1.0 / self.ref.get(h, 1)

    def lookup(self, hashes) -> int:
        """Number of leading blocks of ``hashes`` present (in use or cached)."""
        if not self.prefix_caching:
            return 0
        n = 0
        for h in hashes:
            if h in self.ref or h in self.cached:
                n += 1
            else:
                break
        return n

    def new_blocks_for_hits(self, hashes) -> int:
        """Blocks a prefix hit would newly occupy (cached ones; in-use ones are shared)."""
        return sum(1 for h in hashes if h not in self.ref)

    def freed_by(self, hashed, n_private: int) -> int:
        """Blocks that releasing a sequence would make allocatable (shared ones stay)."""
        return n_private + sum(1 for h in hashed if self.ref.get(h, 0) == 1)

    def acquire_hits(self, hashes) -> None:
        for h in hashes:
            if h in self.ref:
                self.ref[h] += 1
            else:
                del self.cached[h]
                self.ref[h] = 1
                self.used += 1

    def allocate(self, n: int) -> bool:
        """Take ``n`` private blocks, evicting LRU cached blocks if needed."""
        if n <= 0:
            return True
        if n > self.total - self.used:
            return False
        over = self.used + len(self.cached) + n - self.total
        for _ in range(max(0, over)):
            self.cached.popitem(last=False)
        self.used += n
        return True

    def seal(self, h: int) -> None:
        """A private block became full with content ``h``: make it hashed and shareable."""
        if not self.prefix_caching:
            return
        if h in self.ref:  # someone computed the same block meanwhile: share theirs
            self.ref[h] += 1
            self.used -= 1
        elif h in self.cached:
            del self.cached[h]
            self.ref[h] = 1
        else:
            self.ref[h] = 1

    def release(self, hashed, n_private: int) -> None:
        """Release a sequence's blocks: hashed ones go to the LRU cache when unreferenced."""
        for h in hashed:
            c = self.ref[h] - 1
            if c:
                self.ref[h] = c
            else:
                del self.ref[h]
                self.used -= 1
                self.cached[h] = None
                self.cached.move_to_end(h)
        self.used -= n_private

    def check(self) -> None:
        assert 0 <= self.used <= self.total, f"KV blocks exceeded: used {self.used} of {self.total}"
        assert self.used + len(self.cached) <= self.total, "cached + used exceed the pool"
        assert len(self.ref) <= self.used
