"""Vectorized helpers for batched hooks: first occurrences and dense relabelling without sorting.

They use a scratch array indexed by folio id, so each call is O(batch), not O(batch log batch).
"""

from __future__ import annotations

import numpy as np

_SCRATCH = np.zeros(0, dtype=np.int64)


def _scratch(size: int) -> np.ndarray:
    global _SCRATCH
    if len(_SCRATCH) < size:
        _SCRATCH = np.zeros(max(size, 2 * len(_SCRATCH), 1024), dtype=np.int64)
    return _SCRATCH


def first_occurrence(ids: np.ndarray, size: int) -> np.ndarray:
    """Mask of the first occurrence of each id in `ids` (all ids < size)."""
    n = len(ids)
    scratch = _scratch(size)
    pos = np.arange(n, dtype=np.int64)
    scratch[ids] = n
    np.minimum.at(scratch, ids, pos)  # ufunc.at is unbuffered: the smallest position wins
    return scratch[ids] == pos


def first_occurrence_masked(ids: np.ndarray, mask: np.ndarray, size: int) -> np.ndarray:
    """first_occurrence over the entries selected by mask (False elsewhere)."""
    out = np.zeros(len(ids), dtype=bool)
    sel = mask.nonzero()[0]
    if len(sel):
        out[sel] = first_occurrence(ids[sel], size)
    return out


def dense_labels(ids: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(uniq, inv): the distinct ids in order of first appearance and, per entry, its index into
    uniq (like np.unique(return_inverse=True) but in appearance order and without a sort)."""
    first = first_occurrence(ids, size)
    uniq = ids[first]
    scratch = _scratch(size)
    scratch[uniq] = np.arange(len(uniq), dtype=np.int64)
    return uniq, scratch[ids].copy()


def occurrence_rank_lt2(ids: np.ndarray, size: int) -> np.ndarray:
    """Per entry: 0 for the first occurrence of its id, 1 for the second, 2 for any later one."""
    r0 = first_occurrence(ids, size)
    rank = np.empty(len(ids), dtype=np.int64)
    rank.fill(2)
    rank[r0] = 0
    rest = (~r0).nonzero()[0]
    if len(rest):
        r1 = first_occurrence(ids[rest], size)
        rank[rest[r1]] = 1
    return rank
