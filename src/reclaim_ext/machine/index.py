"""Dense ids for sparse 64-bit keys, grown chunk by chunk (no Python per key)."""

from __future__ import annotations

import numpy as np


class KeyIndex:
    """Maps uint64 keys to dense ids 0, 1, 2, ... in order of first appearance.

    Keys are kept in one sorted array; a chunk is looked up with one searchsorted and new keys are
    merged in with one sort, so the cost per chunk is O(chunk log n) with no Python per key.
    A direct table is used instead while the keys stay small (the common case for generated and
    block traces), which makes a lookup a single gather.
    """

    DIRECT_LIMIT = 1 << 24

    def __init__(self) -> None:
        self.count = 0
        self._direct = np.full(1024, -1, dtype=np.int64)  # key -> id while all keys < DIRECT_LIMIT
        self._keys = np.zeros(0, dtype=np.uint64)
        self._ids = np.zeros(0, dtype=np.int64)

    def get_or_add(self, keys: np.ndarray) -> np.ndarray:
        """Dense ids for `keys` (uint64), adding unseen keys in order of first appearance."""
        keys = np.asarray(keys, dtype=np.uint64)
        if len(keys) == 0:
            return np.zeros(0, dtype=np.int64)
        if self._direct is not None:
            kmax = int(keys.max())
            if kmax < self.DIRECT_LIMIT:
                return self._direct_get_or_add(keys, kmax)
            self._leave_direct()
        return self._sorted_get_or_add(keys)

    def _direct_get_or_add(self, keys: np.ndarray, kmax: int) -> np.ndarray:
        if kmax >= len(self._direct):
            size = max(kmax + 1, 2 * len(self._direct))
            grown = np.full(min(size, self.DIRECT_LIMIT), -1, dtype=np.int64)
            grown[: len(self._direct)] = self._direct
            self._direct = grown
        k = keys.astype(np.int64)
        ids = self._direct[k]
        miss = ids < 0
        if miss.any():
            mk = k[miss]
            uniq, first = np.unique(mk, return_index=True)
            order = np.argsort(first, kind="stable")  # ids in order of first appearance
            self._direct[uniq[order]] = self.count + np.arange(len(uniq), dtype=np.int64)
            self.count += len(uniq)
            ids = self._direct[k]
        return ids

    def _leave_direct(self) -> None:
        known = np.flatnonzero(self._direct >= 0)
        self._keys = known.astype(np.uint64)
        self._ids = self._direct[known]
        self._direct = None

    def _sorted_get_or_add(self, keys: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self._keys, keys)
        pos_c = np.minimum(pos, max(len(self._keys) - 1, 0))
        found = (len(self._keys) > 0) & (self._keys[pos_c] == keys) if len(self._keys) else np.zeros(len(keys), bool)
        if not found.all():
            new = keys[~found]
            uniq, first = np.unique(new, return_index=True)
            order = np.argsort(first, kind="stable")
            new_ids = np.empty(len(uniq), dtype=np.int64)
            new_ids[order] = self.count + np.arange(len(uniq), dtype=np.int64)
            self.count += len(uniq)
            allk = np.concatenate([self._keys, uniq])
            alli = np.concatenate([self._ids, new_ids])
            srt = np.argsort(allk, kind="stable")
            self._keys, self._ids = allk[srt], alli[srt]
            pos = np.searchsorted(self._keys, keys)
            pos_c = pos
        return self._ids[pos_c]

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Dense ids for keys, -1 where unknown (never adds)."""
        keys = np.asarray(keys, dtype=np.uint64)
        if self._direct is not None:
            out = np.full(len(keys), -1, dtype=np.int64)
            ok = keys < len(self._direct)
            out[ok] = self._direct[keys[ok].astype(np.int64)]
            return out
        if len(self._keys) == 0:
            return np.full(len(keys), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        return np.where(self._keys[pos] == keys, self._ids[pos], -1)
