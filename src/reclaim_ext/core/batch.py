"""Helpers for batched hooks: first occurrences and membership without sorting.

They use a scratch array indexed by folio id, so each call is O(batch), not O(batch log batch),
and run compiled (one pass to clear the batch's scratch entries, one to mark).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_SCRATCH = np.zeros(0, dtype=np.bool_)


def _scratch(size: int) -> np.ndarray:
    global _SCRATCH
    if len(_SCRATCH) < size:
        _SCRATCH = np.zeros(max(size, 2 * len(_SCRATCH), 1024), dtype=np.bool_)
    return _SCRATCH


@njit(cache=True)
def _first(ids, mask, seen, out):
    """out[i]: ids[i] is selected by mask and no selected entry before it has the same id
    (`seen`: scratch indexed by id, left all False)."""
    for i in range(len(ids)):
        out[i] = False
        if mask[i] and not seen[ids[i]]:
            seen[ids[i]] = True
            out[i] = True
    for i in range(len(ids)):
        seen[ids[i]] = False


def first_occurrence(ids: np.ndarray, size: int) -> np.ndarray:
    """Mask of the first occurrence of each id in `ids` (all ids < size)."""
    return first_occurrence_masked(ids, np.ones(len(ids), dtype=np.bool_), size)


def first_occurrence_masked(ids: np.ndarray, mask: np.ndarray, size: int) -> np.ndarray:
    """first_occurrence over the entries selected by mask (False elsewhere)."""
    ids = np.asarray(ids, dtype=np.int64)
    out = np.empty(len(ids), dtype=np.bool_)
    if len(ids):
        if int(ids.min()) < 0 or int(ids.max()) >= size:
            raise IndexError(f"first_occurrence: an id outside 0..{size - 1}")
        _first(ids, np.asarray(mask, dtype=np.bool_), _scratch(size), out)
    return out


@njit(cache=True)
def _member(ids, of, seen, size, out):
    """out[i]: ids[i] is one of `of` (`seen`: scratch indexed by id, at least `size` long, left
    all False). False when an id is outside 0..size-1 (nothing written then)."""
    n = size
    for j in range(len(of)):
        if of[j] < 0 or of[j] >= n:
            return False
    for i in range(len(ids)):
        if ids[i] < 0 or ids[i] >= n:
            return False
    for j in range(len(of)):
        seen[of[j]] = True
    for i in range(len(ids)):
        out[i] = seen[ids[i]]
    for j in range(len(of)):
        seen[of[j]] = False
    return True


def is_member(ids: np.ndarray, of: np.ndarray, size: int) -> np.ndarray:
    """np.isin(ids, of) for folio ids (all < size) in O(len(ids) + len(of)): what a reclaim
    batch needs, where np.isin's sort costs tens of microseconds."""
    ids = np.asarray(ids, dtype=np.int64)
    of = np.asarray(of, dtype=np.int64)
    out = np.zeros(len(ids), dtype=np.bool_)
    if len(ids) and len(of) and not _member(ids, of, _scratch(size), size, out):
        raise IndexError(f"is_member: an id outside 0..{size - 1}")
    return out
