"""The simulator's block pool: prefix hits, sharing, LRU caching, eviction, in bulk."""

import pytest

from autellix.sim.block_pool import BlockPool, cdiv


def test_cdiv_rounds_up():
    assert [cdiv(n, 16) for n in (0, 1, 15, 16, 17, 32)] == [0, 1, 1, 1, 2, 2]


def sealed(pool: BlockPool, hashes: list) -> None:
    """A sequence computes ``hashes`` from scratch: allocate, then seal every block."""
    assert pool.allocate(len(hashes))
    pool.seal(hashes, 0, len(hashes))


def test_released_blocks_stay_cached_and_are_found_again():
    pool = BlockPool(10, 16)
    seq = [1, 2, 3, 4]
    sealed(pool, seq)
    assert pool.used == 4 and pool.lookup(seq, 4) == 4
    pool.release(seq, 4, 0)
    assert pool.used == 0 and pool.free == 10
    assert pool.lookup(seq, 4) == 4          # cached, not freed
    assert pool.revived_by(seq, 4) == 4      # a hit on cached blocks occupies them again
    pool.acquire(seq, 3)
    assert pool.used == 3 and list(pool.cached) == [4]
    pool.check()


def test_lookup_stops_at_the_first_missing_block_and_at_the_limit():
    pool = BlockPool(10, 16)
    sealed(pool, [1, 2, 3])
    assert pool.lookup([1, 2, 9, 3], 4) == 2
    assert pool.lookup([1, 2, 3], 2) == 2
    assert pool.lookup([1, 2, 3], 0) == 0
    assert pool.lookup([1, 2], 5) == 2


def test_a_shared_prefix_is_held_once_and_freed_by_its_last_holder():
    pool = BlockPool(10, 16)
    parent = [1, 2, 3]
    sealed(pool, parent)
    child = [1, 2, 7]
    hit = pool.lookup(child, 2)
    assert hit == 2 and pool.revived_by(child, hit) == 0  # in use: shared, not new
    pool.acquire(child, hit)
    assert pool.used == 3
    assert pool.freed_by(parent, 3, 0) == 1   # only block 3 is the parent's alone
    pool.release(parent, 3, 0)
    assert pool.used == 2 and list(pool.cached) == [3]
    pool.release(child, 2, 0)
    assert pool.used == 0 and list(pool.cached) == [3, 1, 2]
    pool.check()


def test_sealing_content_someone_else_computed_shares_their_block():
    pool = BlockPool(10, 16)
    sealed(pool, [1, 2])
    assert pool.allocate(2)  # a second sequence computes the same two blocks privately
    assert pool.used == 4
    pool.seal([1, 2], 0, 2)
    assert pool.used == 2 and pool.ref == {1: 2, 2: 2}
    pool.check()


def test_sealing_a_cached_block_takes_it_back_from_the_lru():
    pool = BlockPool(10, 16)
    sealed(pool, [1, 2])
    pool.release([1, 2], 2, 0)
    assert pool.allocate(1)
    pool.seal([5, 2], 1, 2)
    assert list(pool.cached) == [1] and pool.ref[2] == 1 and pool.used == 1
    pool.check()


@pytest.mark.parametrize("n_cached", [3, 20])  # the one-by-one path and the bulk path
def test_allocation_evicts_least_recently_used_cached_blocks_first(n_cached):
    pool = BlockPool(n_cached + 2, 16)
    old, new = list(range(1, n_cached // 2 + 1)), list(range(100, 100 + n_cached - n_cached // 2))
    sealed(pool, old)
    sealed(pool, new)
    pool.release(old, len(old), 0)
    pool.release(new, len(new), 0)
    assert pool.allocate(2 + len(old))  # two free blocks, then all of ``old`` goes
    assert pool.lookup(old, len(old)) == 0 and pool.lookup(new, len(new)) == len(new)
    assert not pool.allocate(len(new) + 1)  # more than free plus cached: refused, nothing lost
    assert pool.lookup(new, len(new)) == len(new)
    pool.check()


def test_without_prefix_caching_nothing_is_shared_or_found():
    pool = BlockPool(10, 16, prefix_caching=False)
    assert pool.allocate(3)
    pool.seal([1, 2, 3], 0, 3)
    assert pool.lookup([1, 2, 3], 3) == 0 and not pool.ref
    pool.release([1, 2, 3], 0, 3)
    assert pool.used == 0
