"""The flusher's compiled steps: the pass over the folio table (core.vmscan.end_writeback) and
folio_rotate_reclaimable under ReclaimOps' default rule (core.lru.rotate_dest, add_tail), which
both the engine's flush_writeback and a compiled driver's (core.kswapd.driver_writeback) call."""

import numpy as np

from reclaim_ext.core.lru import add_tail, rotate_dest
from reclaim_ext.core.vmscan import end_writeback
from reclaim_ext.machine.folio import (
    LRU_ANON, LRU_FILE, NO_LIST, PG_active, PG_dirty, PG_reclaim, PG_resident, PG_writeback,
)

R = PG_resident


def _table():
    """Eight folios: their flags, types and lists (a policy of two classes: list 2 t + class)."""
    flags = np.array([R | PG_writeback,                           # 0 writeback completes
                      R | PG_writeback | PG_reclaim,              # 1 ... and is rotated
                      R | PG_writeback | PG_reclaim | PG_dirty,   # 2 ... redirtied: not rotated
                      R | PG_dirty,                               # 3 dirty file page: written
                      R | PG_dirty,                               # 4 dirty anon page: left alone
                      R | PG_dirty | PG_reclaim,                  # 5 written, then rotated
                      R | PG_writeback | PG_reclaim,              # 6 off its list (isolated): flag cleared only
                      R | PG_reclaim],                            # 7 no writeback: left alone
                     dtype=np.uint16)
    ftype = np.array([LRU_FILE, LRU_ANON, LRU_FILE, LRU_FILE, LRU_ANON, LRU_FILE, LRU_FILE, LRU_FILE], dtype=np.int8)
    flru = np.array([2, 0, 2, 3, 1, 3, NO_LIST, 2], dtype=np.int8)
    return flags, ftype, flru


def test_end_writeback_completes_writeback_and_hands_back_the_folios_to_rotate():
    flags, ftype, flru = _table()
    on = np.full(8, -1, dtype=np.int64)
    nw, k = end_writeback(flags, ftype, flru, 8, False, on)
    assert (nw, k) == (0, 1)
    assert on[:k].tolist() == [1]
    assert not (flags & PG_writeback).any()
    assert flags[1] & PG_reclaim == 0 and flags[2] & PG_reclaim == 0 and flags[6] & PG_reclaim == 0
    assert flags[5] & PG_reclaim and flags[7] & PG_reclaim  # no writeback completed for them
    assert (flags & PG_dirty).nonzero()[0].tolist() == [2, 3, 4, 5]  # nothing written


def test_end_writeback_writes_dirty_file_pages_when_asked():
    flags, ftype, flru = _table()
    on = np.full(8, -1, dtype=np.int64)
    nw, k = end_writeback(flags, ftype, flru, 8, True, on)
    assert nw == 3  # folios 2, 3 and 5 (4 is anon: swap is written by reclaim only)
    assert on[:k].tolist() == [1, 2, 5]  # in id order; 2 is clean now
    assert (flags & PG_dirty).nonzero()[0].tolist() == [4]
    assert (flags & PG_reclaim).nonzero()[0].tolist() == [7]


def test_end_writeback_reads_only_the_used_part_of_the_table():
    flags, ftype, flru = _table()
    on = np.full(8, -1, dtype=np.int64)
    nw, k = end_writeback(flags, ftype, flru, 2, True, on)
    assert (nw, k) == (0, 1)
    assert flags[2] & PG_writeback and flags[3] & PG_dirty


def _list(ids, lo):
    li = np.zeros(16, dtype=np.int64)
    ls = np.zeros(16, dtype=np.int64)
    li[lo : lo + len(ids)] = ids
    return li, ls, lo, lo + len(ids)


def test_the_default_rotation_moves_each_folio_to_its_inactive_tail_in_order_the_last_ending_oldest():
    n = 6
    flags = np.full(n, R | PG_active, dtype=np.uint16)
    ftype = np.array([LRU_FILE, LRU_FILE, LRU_ANON, LRU_FILE, LRU_FILE, LRU_FILE], dtype=np.int8)
    flru = np.array([3, 2, 1, 3, 2, 3], dtype=np.int8)  # file: 2 inactive, 3 active
    fstamp = np.arange(n, dtype=np.int64)
    nr = np.array([0, 1, 2, 3], dtype=np.int64)
    clock = np.array([100], dtype=np.int64)
    li, ls, lo, hi = _list([4, 1], 8)
    ls[8:10] = fstamp[[4, 1]]
    ids = np.array([3, 2, 0], dtype=np.int64)
    dest = rotate_dest(ids, flags, ftype, 2)
    assert dest.tolist() == [2, 0, 2]
    assert not (flags[[0, 2, 3]] & PG_active).any() and flags[1] & PG_active
    li, ls, lo, hi = add_tail(ids, dest, 2, li, ls, lo, hi, flru, fstamp, nr, clock)
    # 3 then 0 pushed at the tail: 0 is the oldest; the anon folio 2 is not moved by this call
    assert li[lo:hi].tolist() == [0, 3, 4, 1]
    assert (lo, hi) == (6, 10)
    assert fstamp[3] == 100 and fstamp[0] == 101 and clock[0] == 102
    assert ls[lo:hi].tolist() == [101, 100, 4, 1]
    assert flru.tolist() == [2, 2, 1, 2, 2, 3]
    assert nr.tolist() == [0, 1, 4, 1]


def test_add_tail_makes_room_before_the_tail():
    flru = np.array([1, NO_LIST, 0], dtype=np.int8)  # folio 1 is on no list
    fstamp = np.array([0, -1, 7], dtype=np.int64)
    nr = np.array([1, 1, 0, 0], dtype=np.int64)
    clock = np.array([10], dtype=np.int64)
    li, ls, lo, hi = _list([2], 0)  # no slot before the tail
    ls[0] = 7
    ids = np.array([0, 1], dtype=np.int64)
    li, ls, lo, hi = add_tail(ids, np.zeros(2, dtype=np.int64), 0, li, ls, lo, hi, flru, fstamp, nr, clock)
    assert li[lo:hi].tolist() == [1, 0, 2]
    assert (fstamp[li[lo:hi]] == ls[lo:hi]).all()
    assert nr.tolist() == [3, 0, 0, 0]


def test_mglru_rotation_puts_each_folio_at_the_tail_of_the_generation_for_reclaim():
    """MGLRU.rotate_reclaimable (lru_gen_rotate, which its compiled driver calls too): the last
    folio first, list by list, each to the tail of lru_gen_folio_seq's generation for a folio
    being reclaimed (the oldest of its type here), PG_active cleared, sizes moved."""
    from reclaim_ext.policies.mglru import lru_gen_rotate

    flags = np.array([R, R, R | PG_active], dtype=np.uint16)
    ftype = np.array([LRU_FILE, LRU_ANON, LRU_FILE], dtype=np.int8)
    flru = np.array([5, 1, 6], dtype=np.int8)  # list t * 4 + seq % 4
    lru_gen = flru.copy()
    fstamp = np.array([1, 2, 3], dtype=np.int64)
    nr = np.array([0, 1, 0, 0, 0, 1, 1, 0], dtype=np.int64)
    nl = nr.copy()
    seqs = np.array([[5, 2, 3]], dtype=np.int64)  # max_seq, min_seq[anon], min_seq[file]
    clock = np.array([50], dtype=np.int64)
    lists = [_list([], 8) for _ in range(8)]
    lohi = np.array([v for li in lists for v in li[2:]], dtype=np.int64)
    lids, lstamps = lru_gen_rotate(np.array([0, 1, 2], dtype=np.int64), tuple(li[0] for li in lists),
                                   tuple(li[1] for li in lists), lohi, flags, ftype, flru, fstamp, lru_gen, nr, nl,
                                   seqs, 0, clock, False)
    on = {k: lids[k][lohi[2 * k]:lohi[2 * k + 1]].tolist() for k in range(8) if lohi[2 * k + 1] > lohi[2 * k]}
    assert on == {2: [1], 7: [0, 2]}  # anon gen 2; file gen 3, folio 0 the oldest
    assert fstamp.tolist() == [52, 50, 51] and clock[0] == 53
    assert lstamps[7][lohi[14]:lohi[15]].tolist() == [52, 51]
    assert flru.tolist() == [7, 2, 7] and lru_gen.tolist() == [7, 2, 7]
    assert nr.tolist() == [0, 0, 1, 0, 0, 0, 0, 2] and nl.tolist() == nr.tolist()
    assert not (flags & PG_active).any()
