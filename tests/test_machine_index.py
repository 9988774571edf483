"""KeyIndex: dense ids for sparse 64-bit keys, in order of first appearance."""

import numpy as np

from reclaim_ext.machine.index import KeyIndex


def test_ids_in_order_of_first_appearance():
    k = KeyIndex()
    assert k.get_or_add(np.array([5, 3, 5, 9], np.uint64)).tolist() == [0, 1, 0, 2]
    assert k.get_or_add(np.array([3, 100, 7], np.uint64)).tolist() == [1, 3, 4]
    assert k.count == 5


def test_large_keys_switch_to_the_hash_index_and_keep_ids():
    k = KeyIndex()
    small = np.array([1, 2, 3], np.uint64)
    assert k.get_or_add(small).tolist() == [0, 1, 2]
    big = np.array([2**40, 2, 2**63 + 5, 2**40], np.uint64)
    assert k.get_or_add(big).tolist() == [3, 1, 4, 3]
    assert k.get_or_add(small).tolist() == [0, 1, 2]  # earlier ids survive the switch
    assert k.lookup(np.array([2**63 + 5, 77], np.uint64)).tolist() == [4, -1]


def test_random_keys_match_a_dict():
    rng = np.random.default_rng(3)
    k, ref = KeyIndex(), {}
    for _ in range(20):
        keys = rng.choice(np.array([rng.integers(0, 2**20), rng.integers(0, 2**62)], dtype=np.uint64), 1)
        chunk = np.concatenate([rng.integers(0, 5000, 300).astype(np.uint64), keys])
        got = k.get_or_add(chunk)
        for key in chunk.tolist():
            ref.setdefault(key, len(ref))
        assert got.tolist() == [ref[key] for key in chunk.tolist()]


def test_hash_index_grows_and_keeps_ids_for_colliding_and_extreme_keys():
    """Keys far above the direct table's range, many of them alike in their low or high bits
    (multiples of 2**40, the extremes 0 and 2**64-1): the table grows several times and every key
    keeps the id of its first appearance, as a dict gives."""
    rng = np.random.default_rng(7)
    k, ref = KeyIndex(), {}
    pool = np.concatenate([np.arange(1, 3000, dtype=np.uint64) << np.uint64(40),
                           rng.integers(2**24, 2**63, 3000, dtype=np.uint64),
                           np.array([0, 2**64 - 1, 2**63], dtype=np.uint64)])
    for _ in range(12):
        chunk = rng.choice(pool, 1500)
        got = k.get_or_add(chunk)
        for key in chunk.tolist():
            ref.setdefault(key, len(ref))
        assert got.tolist() == [ref[key] for key in chunk.tolist()]
    assert k.count == len(ref) and len(ref) > 1024  # grown past the first table
    probe = np.concatenate([pool, np.array([12345 << 40, 2**62 + 1], dtype=np.uint64)])
    assert k.lookup(probe).tolist() == [ref.get(key, -1) for key in probe.tolist()]


def test_sparse_small_keys_leave_the_direct_table_and_keep_ids():
    """Block offsets: few keys spread over millions (a direct table sized by the largest key
    would be mostly empty): the hash index takes over, ids as a dict gives; dense keys stay
    direct."""
    k, ref = KeyIndex(), {}
    rng = np.random.default_rng(5)
    for _ in range(5):
        chunk = rng.integers(0, 1 << 23, 1000).astype(np.uint64)
        got = k.get_or_add(chunk)
        for key in chunk.tolist():
            ref.setdefault(key, len(ref))
        assert got.tolist() == [ref[key] for key in chunk.tolist()]
    assert k._direct is None
    dense = KeyIndex()
    dense.get_or_add(np.arange(1 << 21, dtype=np.uint64))
    assert dense._direct is not None


def test_ids_past_int32_leave_the_direct_table():
    """The direct table holds int32 ids: small keys whose ids (from a shared counter) reach
    2**31 go to the hash index instead, and keep the ids they had."""
    k = KeyIndex()
    first = (1 << 31) - 10
    a = k.get_or_add(np.arange(5, dtype=np.uint64), first_id=first)
    assert k._direct is not None and a.tolist() == list(range(first, first + 5))
    b = k.get_or_add(np.arange(3, 25, dtype=np.uint64), first_id=first + 5)
    assert k._direct is None
    assert b.tolist() == [first + 3, first + 4] + list(range(first + 5, first + 25))
    assert k.lookup(np.array([0, 24, 99], dtype=np.uint64)).tolist() == [first, first + 24, -1]
