"""Vectorized helpers for batched hooks: first occurrences without sorting.

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
