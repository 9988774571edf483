"""The flusher's compiled steps: the pass over the folio table (core.vmscan.end_writeback) and
folio_rotate_reclaimable for a policy of two classes (core.lru.move_to_tail), which both the
engine's flush_writeback and a compiled driver's (core.kswapd.driver_writeback) call."""

import numpy as np

from reclaim_ext.core.lru import move_to_tail
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


def test_move_to_tail_moves_each_folio_of_the_type_in_order_the_last_ending_oldest():
    n = 6
    flags = np.full(n, R | PG_active, dtype=np.uint16)
    ftype = np.array([LRU_FILE, LRU_FILE, LRU_ANON, LRU_FILE, LRU_FILE, LRU_FILE], dtype=np.int8)
    flru = np.array([3, 2, 1, 3, 2, 3], dtype=np.int8)  # file: 2 inactive, 3 active
    fstamp = np.arange(n, dtype=np.int64)
    nr = np.array([0, 1, 2, 3], dtype=np.int64)
    clock = np.array([100], dtype=np.int64)
    li, ls, lo, hi = _list([4, 1], 8)
    ls[8:10] = fstamp[[4, 1]]
    li, ls, lo, hi = move_to_tail(np.array([3, 2, 0], dtype=np.int64), LRU_FILE, 2, li, ls, lo, hi, flags, ftype, flru,
                                  fstamp, nr, clock)
    # 3 then 0 pushed at the tail: 0 is the oldest; the anon folio 2 is not touched
    assert li[lo:hi].tolist() == [0, 3, 4, 1]
    assert (lo, hi) == (6, 10)
    assert fstamp[3] == 100 and fstamp[0] == 101 and clock[0] == 102
    assert ls[lo:hi].tolist() == [101, 100, 4, 1]
    assert flru.tolist() == [2, 2, 1, 2, 2, 3]
    assert nr.tolist() == [0, 1, 4, 1]
    assert flags[[0, 3]].tolist() == [R, R] and flags[2] & PG_active


def test_move_to_tail_makes_room_before_the_tail():
    flags = np.full(3, R, dtype=np.uint16)
    ftype = np.zeros(3, dtype=np.int8)
    flru = np.array([1, 1, 0], dtype=np.int8)
    fstamp = np.array([0, 0, 7], dtype=np.int64)
    nr = np.array([1, 2, 0, 0], dtype=np.int64)
    clock = np.array([10], dtype=np.int64)
    li, ls, lo, hi = _list([2], 0)  # no slot before the tail
    ls[0] = 7
    li, ls, lo, hi = move_to_tail(np.array([0, 1], dtype=np.int64), LRU_ANON, 0, li, ls, lo, hi, flags, ftype, flru,
                                  fstamp, nr, clock)
    assert li[lo:hi].tolist() == [1, 0, 2]
    assert (fstamp[li[lo:hi]] == ls[lo:hi]).all()
    assert nr.tolist() == [3, 0, 0, 0]
