"""Workingset detection helpers (mm/workingset.c): the non-resident age clock and the refault
distance test. Shadow storage itself is the folio table's shadow fields."""

from __future__ import annotations

import numpy as np

from ..machine.folio import LRU_ANON, LRU_FILE


def workingset_age_nonresident(lruvec, nr_pages: int) -> None:
    """Advance the non-resident age of the lruvec and of every ancestor memcg's lruvec."""
    lv = lruvec
    while lv is not None:
        lv.nonresident_age += nr_pages
        parent = lv.memcg.parent
        lv = parent.lruvecs.get(lv.node.nid) if parent is not None else None


def workingset_size(sizes, file: bool, swap_ok: bool) -> int:
    """The refault distance threshold of workingset_test_recent (classic).

    sizes = (inactive_anon, active_anon, inactive_file, active_file) of the eviction lruvec;
    swap_ok = the eviction memcg still has swap space.
    """
    ia, aa, if_, af = sizes
    ws = af
    if not file:
        ws += if_
    if swap_ok:
        ws += aa
        if file:
            ws += ia
    return ws


def workingset_size_batch(ia, aa, if_, af, file: np.ndarray, swap_ok: np.ndarray) -> np.ndarray:
    """workingset_size over arrays (one entry per refault)."""
    ws = af + np.where(file, 0, if_)
    ws = ws + np.where(swap_ok, aa + np.where(file, ia, 0), 0)
    return ws


__all__ = ["workingset_age_nonresident", "workingset_size", "workingset_size_batch", "LRU_ANON", "LRU_FILE"]
