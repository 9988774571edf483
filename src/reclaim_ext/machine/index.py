"""Dense ids for sparse 64-bit keys, grown chunk by chunk (no Python per key)."""

from __future__ import annotations

import numpy as np
from numba import njit

from ..jit import PREFETCH_AHEAD, noref, prefetch

_EMPTY = -1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio (Fibonacci hashing)


def _table_shift(slots) -> np.uint64:
    return np.uint64(64 - int(np.log2(len(slots) // 2)))


@njit(cache=True)
def _home(key, shift, mask):
    """A key's first slot: its Fibonacci hash (multiply, keep the top bits)."""
    return np.int64((np.uint64(key) * _GOLDEN) >> shift) & mask


@noref
def _probe(slots, key, shift, mask):
    """The slot holding `key`, or the empty slot where it would go (open addressing, linear
    probing from its home). Slot j is slots[2j] (key bits) and slots[2j + 1] (id): a probe reads
    one cache line."""
    j = _home(key, shift, mask)
    while slots[2 * j + 1] != _EMPTY and slots[2 * j] != key:
        j = (j + 1) & mask
    return j


@noref
def hash_get_or_add(slots, key, nxt, shift, mask):
    """One key (int64 bits): its id, or the id `nxt` for an unseen key (added). Returns (id, the
    next free id). The caller guarantees room (KeyIndex.hash_table)."""
    j = _probe(slots, key, shift, mask)
    if slots[2 * j + 1] == _EMPTY:
        slots[2 * j] = key
        slots[2 * j + 1] = nxt
        nxt += 1
    return slots[2 * j + 1], nxt


@njit(cache=True)
def _hash_get_or_add(slots, keys, nxt, shift):
    """Look up each key (int64 bits) in order, giving an unseen key the next id from `nxt` (so
    ids follow first appearance). Returns the ids and the next free id. The caller guarantees room
    for every key."""
    mask = len(slots) // 2 - 1
    n = len(keys)
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        if i + PREFETCH_AHEAD < n:
            prefetch(slots, 2 * _home(keys[i + PREFETCH_AHEAD], shift, mask))
        out[i], nxt = hash_get_or_add(slots, keys[i], nxt, shift, mask)
    return out, nxt


@njit(cache=True)
def _hash_lookup(slots, keys, shift):
    """Ids of keys (int64 bits), _EMPTY (-1) where absent."""
    mask = len(slots) // 2 - 1
    out = np.empty(len(keys), dtype=np.int64)
    for i in range(len(keys)):
        out[i] = slots[2 * _probe(slots, keys[i], shift, mask) + 1]
    return out


@njit(cache=True)
def _hash_insert_all(slots, keys, ids, shift):
    """Rebuild: put known (key bits, id) pairs (distinct keys) into an empty table."""
    mask = len(slots) // 2 - 1
    for i in range(len(keys)):
        j = _probe(slots, keys[i], shift, mask)
        slots[2 * j] = keys[i]
        slots[2 * j + 1] = ids[i]


@njit(cache=True)
def _direct_get_or_add(direct, keys, nxt):
    """_hash_get_or_add with a direct table (key -> id, -1 = unseen): one gather per key."""
    n = len(keys)
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        if i + PREFETCH_AHEAD < n:
            prefetch(direct, np.int64(keys[i + PREFETCH_AHEAD]))
        k = np.int64(keys[i])
        if direct[k] < 0:
            direct[k] = nxt
            nxt += 1
        out[i] = direct[k]
    return out, nxt


_DIRECT_IDS = (1 << 31) - 1  # the direct table's ids are int32


class KeyIndex:
    """Maps uint64 keys to dense ids 0, 1, 2, ... in order of first appearance (or, with
    `first_id`, to ids a caller hands out from its own counter).

    While the keys stay small (the common case for generated and block traces) a direct table
    makes a lookup a single gather. Beyond that, a compiled open-addressing hash table (numba)
    takes over: O(1) per key, so a footprint of tens of millions of pages costs what a small one
    does, with no Python per key.
    """

    DIRECT_LIMIT = 1 << 24
    DIRECT_SPARSE = 16  # leave the direct table once the largest key is this many times the keys seen
    MAX_LOAD = 0.7  # hash table: grown (doubled) before it is fuller than this

    def __init__(self) -> None:
        self.count = 0  # keys held
        # key -> id while all keys < DIRECT_LIMIT and ids < 2**31 (int32: half the cache lines)
        self._direct = np.full(1024, -1, dtype=np.int32)
        self._slots = np.zeros(0, dtype=np.int64)  # hash table: (key bits, id) per slot
        self._direct_none = np.zeros(0, dtype=np.int32)

    def get_or_add(self, keys: np.ndarray, first_id: int | None = None) -> np.ndarray:
        """Ids for `keys` (uint64), adding unseen keys in order of first appearance with the ids
        first_id, first_id + 1, ... (default: count, which makes the ids dense)."""
        keys = np.asarray(keys, dtype=np.uint64)
        if len(keys) == 0:
            return np.zeros(0, dtype=np.int64)
        nxt = self.count if first_id is None else first_id
        if self._direct is not None:
            kmax = int(keys.max())
            # a direct table while the keys stay small and dense enough (block traces' offsets
            # are sparse: a table sized by the largest key would be mostly empty)
            if kmax < self.DIRECT_LIMIT and (kmax < self.DIRECT_SPARSE * (self.count + len(keys)) or kmax < 1 << 20) \
                    and nxt + len(keys) < _DIRECT_IDS:
                return self._direct_get_or_add(keys, kmax, nxt)
            self._leave_direct()
        self._reserve(self.count + len(keys))
        ids, end = _hash_get_or_add(self._slots, keys.view(np.int64), nxt, _table_shift(self._slots))
        self.count += end - nxt
        return ids

    def _direct_get_or_add(self, keys: np.ndarray, kmax: int, nxt: int) -> np.ndarray:
        if kmax >= len(self._direct):
            size = max(kmax + 1, 2 * len(self._direct))
            grown = np.full(min(size, self.DIRECT_LIMIT), -1, dtype=np.int32)
            grown[: len(self._direct)] = self._direct
            self._direct = grown
        ids, end = _direct_get_or_add(self._direct, keys, nxt)
        self.count += end - nxt
        return ids

    def table_for(self, n: int, last_id: int) -> tuple[np.ndarray, np.ndarray, np.uint64]:
        """The tables themselves, for compiled code that adds up to n keys one at a time (the
        caller adds what it added to `count`): (the direct table (key -> id, -1 unseen) while
        the index has one and ids up to `last_id` fit it, else an empty one; the hash table
        with room for n more keys, or an empty one while the direct table serves; its shift).
        A key past the direct table's length needs get_or_add."""
        if self._direct is not None and last_id < _DIRECT_IDS:
            return self._direct, self._slots[:0], np.uint64(0)
        slots, shift, _ = self.hash_table(self.count + n)
        return self._direct_none, slots, shift

    def hash_table(self, n: int) -> tuple[np.ndarray, np.uint64, int]:
        """The hash table itself, for compiled code that adds keys one at a time
        (hash_get_or_add, ids from `count` on; the caller stores the new count): (slots, shift,
        the keys it can hold), with room for at least n keys."""
        if self._direct is not None:
            self._leave_direct()
        self._reserve(n)
        return self._slots, _table_shift(self._slots), int(self.MAX_LOAD * (len(self._slots) // 2))

    def _leave_direct(self) -> None:
        known = np.flatnonzero(self._direct >= 0)
        ids = self._direct[known].astype(np.int64)
        self._direct = None
        self._rebuild(known.astype(np.int64), ids, self.count)

    def _reserve(self, n: int) -> None:
        """Room for n keys within MAX_LOAD."""
        if n <= self.MAX_LOAD * (len(self._slots) // 2):
            return
        keys, ids = self._slots[0::2], self._slots[1::2]
        used = ids != _EMPTY
        self._rebuild(keys[used], ids[used], n)

    def _rebuild(self, keys: np.ndarray, ids: np.ndarray, n: int) -> None:
        cap = 1024
        while n > self.MAX_LOAD * cap:
            cap *= 2
        self._slots = np.empty(2 * cap, dtype=np.int64)
        self._slots[1::2] = _EMPTY
        _hash_insert_all(self._slots, keys, ids, _table_shift(self._slots))

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Ids for keys, -1 where unknown (never adds)."""
        keys = np.asarray(keys, dtype=np.uint64)
        if self._direct is not None:
            out = np.full(len(keys), -1, dtype=np.int64)
            ok = keys < len(self._direct)
            out[ok] = self._direct[keys[ok].astype(np.int64)]
            return out
        if len(self._slots) == 0:
            return np.full(len(keys), -1, dtype=np.int64)
        return _hash_lookup(self._slots, keys.view(np.int64), _table_shift(self._slots))
