"""Workingset detection helpers (mm/workingset.c): the non-resident age clock and the refault
distance test. Shadow storage itself is the folio table's shadow fields.

Each rule is stated once, compiled (numba), over the arrays of core.lru.LruvecTable; the Python
functions taking a Lruvec call the same compiled code."""

from __future__ import annotations

import numpy as np

from ..jit import noref

from ..machine.folio import LRU_ANON, LRU_FILE
from .lru import subtree_nr


@noref
def age_nonresident(nonresident_age, parent, row, nr_pages):
    """workingset_age_nonresident: advance the clock of the lruvec in `row` and of every
    ancestor memcg's lruvec."""
    while row >= 0:
        nonresident_age[row] += nr_pages
        row = parent[row]


@noref
def workingset_size_of(ia, aa, if_, af, file, swap_ok):
    """The refault distance threshold of workingset_test_recent (classic), from the eviction
    lruvec's list sizes (inactive_anon, active_anon, inactive_file, active_file) and whether its
    memcg still has swap space."""
    ws = af
    if not file:
        ws += if_
    if swap_ok:
        ws += aa
        if file:
            ws += ia
    return ws


@noref
def workingset_test_recent(nr, nonres, sub_ptr, sub_idx, row, token, file, swap_ok):
    """workingset_test_recent (classic): whether a refault's distance on the eviction lruvec's
    clock (`row`: its row; `token`: the clock at eviction) is within its workingset size, over
    its memcg subtree's lists."""
    size = workingset_size_of(subtree_nr(nr, sub_ptr, sub_idx, row, 0), subtree_nr(nr, sub_ptr, sub_idx, row, 1),
                              subtree_nr(nr, sub_ptr, sub_idx, row, 2), subtree_nr(nr, sub_ptr, sub_idx, row, 3),
                              file, swap_ok)
    return nonres[row] - token <= size


def workingset_age_nonresident(lruvec, nr_pages: int) -> None:
    """Advance the non-resident age of the lruvec and of every ancestor memcg's lruvec."""
    t = lruvec.table
    age_nonresident(t.nonresident_age, t.parent, lruvec.row, nr_pages)


def workingset_eviction(lruvec, nr_pages: int) -> np.ndarray:
    """workingset_eviction's tokens for nr_pages folios evicted in order: the non-resident age
    of the lruvec stamped (the reclaim target's), which each eviction advances."""
    tokens = lruvec.nonresident_age + np.arange(nr_pages, dtype=np.int64)
    workingset_age_nonresident(lruvec, nr_pages)
    return tokens


__all__ = ["age_nonresident", "workingset_age_nonresident", "workingset_eviction", "workingset_size_of",
           "workingset_test_recent", "LRU_ANON", "LRU_FILE"]
