"""Workingset detection helpers (mm/workingset.c): the non-resident age clock and the refault
distance test. Shadow storage itself is the folio table's shadow fields.

Each rule is stated once, compiled (numba), over the arrays of core.lru.LruvecTable; the Python
functions taking a Lruvec call the same compiled code."""

from __future__ import annotations

from numba import njit

from ..jit import noref

from ..machine.folio import LRU_ANON, LRU_FILE


@noref
def age_nonresident(nonresident_age, parent, row, nr_pages):
    """workingset_age_nonresident: advance the clock of the lruvec in `row` and of every
    ancestor memcg's lruvec."""
    while row >= 0:
        nonresident_age[row] += nr_pages
        row = parent[row]


@njit(cache=True)
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


def workingset_age_nonresident(lruvec, nr_pages: int) -> None:
    """Advance the non-resident age of the lruvec and of every ancestor memcg's lruvec."""
    t = lruvec.table
    age_nonresident(t.nonresident_age, t.parent, lruvec.row, nr_pages)


__all__ = ["age_nonresident", "workingset_age_nonresident", "workingset_size_of", "LRU_ANON",
           "LRU_FILE"]
