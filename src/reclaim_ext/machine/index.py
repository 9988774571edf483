"""Dense ids for sparse 64-bit keys, grown chunk by chunk (no Python per key)."""

from __future__ import annotations

import numpy as np
from numba import njit

_EMPTY = -1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio (Fibonacci hashing)


def _table_shift(hkeys) -> np.uint64:
    return np.uint64(64 - int(np.log2(len(hkeys))))


@njit(cache=True)
def _probe(hkeys, hids, key, shift, mask):
    """The slot holding `key`, or the empty slot where it would go (open addressing, linear
    probing from its Fibonacci hash: multiply, keep the top bits)."""
    j = np.int64((key * _GOLDEN) >> shift) & mask
    while hids[j] != _EMPTY and hkeys[j] != key:
        j = (j + 1) & mask
    return j


@njit(cache=True)
def _hash_get_or_add(hkeys, hids, keys, count, shift):
    """Look up each key in order, giving an unseen key the next id (so ids follow first
    appearance). The caller guarantees room for every key."""
    mask = len(hkeys) - 1
    out = np.empty(len(keys), dtype=np.int64)
    for i in range(len(keys)):
        j = _probe(hkeys, hids, keys[i], shift, mask)
        if hids[j] == _EMPTY:
            hkeys[j] = keys[i]
            hids[j] = count
            count += 1
        out[i] = hids[j]
    return out, count


@njit(cache=True)
def _hash_lookup(hkeys, hids, keys, shift):
    """Ids of keys, _EMPTY (-1) where absent."""
    mask = len(hkeys) - 1
    out = np.empty(len(keys), dtype=np.int64)
    for i in range(len(keys)):
        out[i] = hids[_probe(hkeys, hids, keys[i], shift, mask)]
    return out


@njit(cache=True)
def _hash_insert_all(hkeys, hids, keys, ids, shift):
    """Rebuild: put known (key, id) pairs (distinct keys) into an empty table."""
    mask = len(hkeys) - 1
    for i in range(len(keys)):
        j = _probe(hkeys, hids, keys[i], shift, mask)
        hkeys[j] = keys[i]
        hids[j] = ids[i]


@njit(cache=True)
def _direct_get_or_add(direct, keys, count):
    """_hash_get_or_add with a direct table (key -> id, -1 = unseen): one gather per key."""
    out = np.empty(len(keys), dtype=np.int64)
    for i in range(len(keys)):
        k = np.int64(keys[i])
        if direct[k] < 0:
            direct[k] = count
            count += 1
        out[i] = direct[k]
    return out, count


class KeyIndex:
    """Maps uint64 keys to dense ids 0, 1, 2, ... in order of first appearance.

    While the keys stay small (the common case for generated and block traces) a direct table
    makes a lookup a single gather. Beyond that, a compiled open-addressing hash table (numba)
    takes over: O(1) per key, so a footprint of tens of millions of pages costs what a small one
    does, with no Python per key.
    """

    DIRECT_LIMIT = 1 << 24
    MAX_LOAD = 0.7  # hash table: grown (doubled) before it is fuller than this

    def __init__(self) -> None:
        self.count = 0
        self._direct = np.full(1024, -1, dtype=np.int64)  # key -> id while all keys < DIRECT_LIMIT
        self._hkeys = np.zeros(0, dtype=np.uint64)
        self._hids = np.zeros(0, dtype=np.int64)

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
        self._reserve(self.count + len(keys))
        ids, self.count = _hash_get_or_add(self._hkeys, self._hids, keys, self.count, _table_shift(self._hkeys))
        return ids

    def _direct_get_or_add(self, keys: np.ndarray, kmax: int) -> np.ndarray:
        if kmax >= len(self._direct):
            size = max(kmax + 1, 2 * len(self._direct))
            grown = np.full(min(size, self.DIRECT_LIMIT), -1, dtype=np.int64)
            grown[: len(self._direct)] = self._direct
            self._direct = grown
        ids, self.count = _direct_get_or_add(self._direct, keys, self.count)
        return ids

    def _leave_direct(self) -> None:
        known = np.flatnonzero(self._direct >= 0)
        ids = self._direct[known]
        self._direct = None
        self._rebuild(known.astype(np.uint64), ids, self.count)

    def _reserve(self, n: int) -> None:
        """Room for n keys within MAX_LOAD."""
        if n <= self.MAX_LOAD * len(self._hkeys):
            return
        used = self._hids >= 0
        self._rebuild(self._hkeys[used], self._hids[used], n)

    def _rebuild(self, keys: np.ndarray, ids: np.ndarray, n: int) -> None:
        cap = 1024
        while n > self.MAX_LOAD * cap:
            cap *= 2
        self._hkeys = np.zeros(cap, dtype=np.uint64)
        self._hids = np.full(cap, _EMPTY, dtype=np.int64)
        _hash_insert_all(self._hkeys, self._hids, keys, ids, _table_shift(self._hkeys))

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Dense ids for keys, -1 where unknown (never adds)."""
        keys = np.asarray(keys, dtype=np.uint64)
        if self._direct is not None:
            out = np.full(len(keys), -1, dtype=np.int64)
            ok = keys < len(self._direct)
            out[ok] = self._direct[keys[ok].astype(np.int64)]
            return out
        if len(self._hkeys) == 0:
            return np.full(len(keys), -1, dtype=np.int64)
        return _hash_lookup(self._hkeys, self._hids, keys, _table_shift(self._hkeys))
