"""Data-structure helpers for policy authors: an indexed list and a ghost table.

Both are keyed by page handles (ints). They cost O(1) per operation and never touch the
simulator's state: a policy keeps its own view of the pages in them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterable, Iterator

import numpy as np

from ..core.batch import first_occurrence
from .safety import ContractError

# The core's view of the policy code running now (set by ext.host.PolicyHost around every hook):
# the hook's name, and the registry of helper structures of the policy being called.
_HOOK: list = [None]
_REGISTRY: list = [None]
_VIOLATION: list = [None]  # the first R7 violation in the running hook (even if the policy catches it)
READ_ONLY_HOOKS = ("init", "dump")  # hooks that may create helpers but not change them (R7)


class HelperNotAllowed(ContractError):
    """A helper changed from a hook that may not change lists (R7, like scx_kf_allowed)."""


def _may_change(what: str) -> None:
    hook = _HOOK[0]
    if hook in READ_ONLY_HOOKS:
        msg = (f"{what} called from {hook}(): lists and tables may change only in "
               "added/accessed/evict/removed (rule R7)")
        if _VIOLATION[0] is None:
            _VIOLATION[0] = msg
        raise HelperNotAllowed(msg)


def _register(obj) -> None:
    reg = _REGISTRY[0]
    if reg is not None:
        reg.add(obj)


class IndexedList:
    """A doubly linked list of distinct handles with O(1) insert, delete and move at either end.

    The head is the most recently inserted end; `tail()` / `pop_tail()` give the oldest. Iterate
    from either end with `from_tail()` / `from_head()`.
    """

    __slots__ = ("_prev", "_next", "_head", "_tail", "__weakref__")

    def __init__(self, handles: Iterable[int] = ()):
        self._prev: dict[int, int | None] = {}
        self._next: dict[int, int | None] = {}
        self._head: int | None = None
        self._tail: int | None = None
        _register(self)
        for h in handles:
            self.push_head(h)

    def __len__(self) -> int:
        return len(self._prev)

    def __contains__(self, h: int) -> bool:
        return h in self._prev

    def __bool__(self) -> bool:
        return self._head is not None

    def head(self) -> int | None:
        return self._head

    def tail(self) -> int | None:
        return self._tail

    def push_head(self, h: int) -> None:
        """Insert h (not in the list) at the head."""
        if _HOOK[0] in READ_ONLY_HOOKS:  # (_may_change raises)
            _may_change("IndexedList.push_head")
        h = int(h)
        if h in self._prev:
            raise KeyError(f"handle {h} is already in the list")
        old = self._head
        self._prev[h] = None
        self._next[h] = old
        if old is None:
            self._tail = h
        else:
            self._prev[old] = h
        self._head = h

    def push_tail(self, h: int) -> None:
        """Insert h (not in the list) at the tail."""
        if _HOOK[0] in READ_ONLY_HOOKS:  # (_may_change raises)
            _may_change("IndexedList.push_tail")
        h = int(h)
        if h in self._prev:
            raise KeyError(f"handle {h} is already in the list")
        old = self._tail
        self._next[h] = None
        self._prev[h] = old
        if old is None:
            self._head = h
        else:
            self._next[old] = h
        self._tail = h

    def remove(self, h: int) -> None:
        """Delete h (KeyError if absent)."""
        if _HOOK[0] in READ_ONLY_HOOKS:  # (_may_change raises)
            _may_change("IndexedList.remove")
        h = int(h)
        p = self._prev.pop(h)
        n = self._next.pop(h)
        if p is None:
            self._head = n
        else:
            self._next[p] = n
        if n is None:
            self._tail = p
        else:
            self._prev[n] = p

    def discard(self, h: int) -> bool:
        """Delete h if present; whether it was."""
        if int(h) in self._prev:
            self.remove(h)
            return True
        return False

    def move_head(self, h: int) -> None:
        if self._head != h:
            self.remove(h)
            self.push_head(h)

    def move_tail(self, h: int) -> None:
        if self._tail != h:
            self.remove(h)
            self.push_tail(h)

    def pop_tail(self) -> int:
        h = self._tail
        if h is None:
            raise IndexError("pop from an empty list")
        self.remove(h)
        return h

    def pop_head(self) -> int:
        h = self._head
        if h is None:
            raise IndexError("pop from an empty list")
        self.remove(h)
        return h

    def prev(self, h: int) -> int | None:
        """The neighbour towards the head."""
        return self._prev[int(h)]

    def next(self, h: int) -> int | None:
        """The neighbour towards the tail."""
        return self._next[int(h)]

    def from_tail(self) -> Iterator[int]:
        h = self._tail
        while h is not None:
            p = self._prev[h]
            yield h
            h = p

    def from_head(self) -> Iterator[int]:
        h = self._head
        while h is not None:
            n = self._next[h]
            yield h
            h = n

    def sample(self, k: int, rng: np.random.Generator) -> np.ndarray:
        """k handles drawn uniformly without replacement (all of them if k >= len)."""
        keys = np.fromiter(self._prev.keys(), dtype=np.int64, count=len(self._prev))
        if k >= len(keys):
            return keys
        return rng.choice(keys, size=k, replace=False)

    @staticmethod
    def lowest(handles: np.ndarray, scores: np.ndarray, n: int = 1) -> np.ndarray:
        """Batch scoring: the n handles with the lowest scores (ties: earlier first)."""
        order = np.argsort(np.asarray(scores), kind="stable")[:n]
        return np.asarray(handles)[order]


class GhostTable:
    """A bounded FIFO set of handles of pages no longer resident (a shadow / ghost queue): the
    oldest entry is dropped when a new one would exceed the capacity."""

    __slots__ = ("capacity", "_d", "__weakref__")

    def __init__(self, capacity: int):
        if capacity < 0:
            raise ValueError("ghost table capacity must be >= 0")
        self.capacity = int(capacity)
        self._d: OrderedDict[int, None] = OrderedDict()
        _register(self)

    def __len__(self) -> int:
        return len(self._d)

    def __contains__(self, h: int) -> bool:
        return int(h) in self._d

    def add(self, h: int) -> None:
        """Remember h (moved to the young end if already present)."""
        if _HOOK[0] in READ_ONLY_HOOKS:  # (_may_change raises)
            _may_change("GhostTable.add")
        h = int(h)
        if h in self._d:
            self._d.move_to_end(h)
        else:
            self._d[h] = None
        while len(self._d) > self.capacity:
            self._d.popitem(last=False)

    def remove(self, h: int) -> bool:
        """Forget h; whether it was there."""
        if _HOOK[0] in READ_ONLY_HOOKS:  # (_may_change raises)
            _may_change("GhostTable.remove")
        return self._d.pop(int(h), 0) is None

    def pop_oldest(self) -> int:
        if _HOOK[0] in READ_ONLY_HOOKS:  # (_may_change raises)
            _may_change("GhostTable.pop_oldest")
        return self._d.popitem(last=False)[0]

    def resize(self, capacity: int) -> None:
        if _HOOK[0] in READ_ONLY_HOOKS:  # (_may_change raises)
            _may_change("GhostTable.resize")
        self.capacity = int(capacity)
        while len(self._d) > self.capacity:
            self._d.popitem(last=False)


def _distinct(ids: np.ndarray, size: int) -> bool:
    """Whether the ids (all < size) are pairwise distinct, in O(len) with a scratch array."""
    return bool(first_occurrence(ids, size).all())


class ScoreTable:
    """A set of handles with a numeric score each, held in numpy arrays: set or update the scores
    of a whole batch, remove a batch, and find the members with the lowest scores, all without
    Python work per handle. A policy that ranks pages by a number (last access time for LRU,
    insertion time for FIFO, a frequency, a cost) keeps it here.

    Members live in compact slots, so `lowest(n)` costs O(members), not O(handles issued).
    """

    __slots__ = ("_slot", "_handle", "_score", "_free", "_nfree", "_n", "__weakref__")

    def __init__(self) -> None:
        self._slot = np.full(1024, -1, dtype=np.int64)   # handle -> slot (-1: not a member)
        self._handle = np.zeros(0, dtype=np.int64)       # slot -> handle
        self._score = np.zeros(0, dtype=np.float64)      # slot -> score (+inf: free slot)
        self._free = np.zeros(0, dtype=np.int64)         # stack of free slots
        self._nfree = 0
        self._n = 0
        _register(self)

    def __len__(self) -> int:
        return self._n

    def __contains__(self, h: int) -> bool:
        h = int(h)
        return 0 <= h < len(self._slot) and self._slot[h] >= 0

    def _grow_handles(self, top: int) -> None:
        if top >= len(self._slot):
            n = max(top + 1, 2 * len(self._slot))
            self._slot = np.concatenate((self._slot, np.full(n - len(self._slot), -1, np.int64)))

    def _take_slots(self, k: int) -> np.ndarray:
        if self._nfree < k:
            old = len(self._handle)
            add = max(k - self._nfree, old, 1024)
            self._handle = np.concatenate((self._handle, np.zeros(add, np.int64)))
            self._score = np.concatenate((self._score, np.full(add, np.inf)))
            fresh = np.arange(old + add - 1, old - 1, -1, dtype=np.int64)  # lowest slot on top
            self._free = np.concatenate((self._free[: self._nfree], fresh))
            self._nfree += add
        top = self._nfree
        slots = self._free[top - k : top][::-1]
        self._nfree = top - k
        return slots

    def set(self, handles, scores) -> None:
        """Give each handle its score, adding the handles not yet members (for a handle listed
        more than once, its last score counts)."""
        if _HOOK[0] in READ_ONLY_HOOKS:  # (_may_change raises)
            _may_change("ScoreTable.set")
        h = np.asarray(handles, dtype=np.int64)
        if len(h) == 0:
            return
        s = np.broadcast_to(np.asarray(scores, dtype=np.float64), h.shape)
        if h.min() < 0:
            raise ValueError("ScoreTable: negative handle")
        if not np.isfinite(s).all():
            raise ValueError("ScoreTable: scores must be finite numbers")
        self._grow_handles(int(h.max()))
        slot = self._slot[h]
        new = slot < 0
        if new.any():
            nh = h[new]
            # distinct new handles (several entries of one new handle share a slot)
            uniq = nh if len(nh) == len(h) and _distinct(nh, len(self._slot)) else np.unique(nh)
            slots = self._take_slots(len(uniq))
            self._slot[uniq] = slots
            self._handle[slots] = uniq
            self._n += len(uniq)
            slot = self._slot[h]
        self._score[slot] = s  # a repeated handle: the last assignment wins

    def add(self, handles, scores) -> None:
        """Alias of set() for readability when the handles are new."""
        self.set(handles, scores)

    def score(self, handles) -> np.ndarray:
        """The scores of member handles."""
        h = np.asarray(handles, dtype=np.int64)
        slot = self._slot[h]
        if (slot < 0).any():
            raise KeyError(f"handle {int(h[slot < 0][0])} is not in the table")
        return self._score[slot]

    def remove(self, handles) -> None:
        """Drop the handles that are members (others are ignored)."""
        if _HOOK[0] in READ_ONLY_HOOKS:  # (_may_change raises)
            _may_change("ScoreTable.remove")
        h = np.asarray(handles, dtype=np.int64)
        if len(h) == 0:
            return
        h = h[(h >= 0) & (h < len(self._slot))]
        slot = self._slot[h]
        keep = slot >= 0
        h, slot = h[keep], slot[keep]
        if len(h) == 0:
            return
        if not _distinct(slot, len(self._handle)):
            slot, first = np.unique(slot, return_index=True)
            h = h[first]
        self._slot[h] = -1
        self._score[slot] = np.inf
        k = len(slot)
        if self._nfree + k > len(self._free):
            self._free = np.concatenate((self._free, np.zeros(self._nfree + k - len(self._free), np.int64)))
        self._free[self._nfree : self._nfree + k] = slot
        self._nfree += k
        self._n -= k

    def lowest(self, n: int) -> np.ndarray:
        """The (at most n) members with the lowest scores, lowest first; equal scores in slot
        order (deterministic)."""
        n = min(int(n), self._n)
        if n <= 0:
            return np.zeros(0, dtype=np.int64)
        sc = self._score
        if n < len(sc) // 2:
            # the n lowest, and of the slots scored like the n-th lowest, the first ones in
            # slot order (argpartition alone would take any of them)
            edge = sc[np.argpartition(sc, n - 1)[n - 1]]
            below = np.flatnonzero(sc < edge)
            part = np.concatenate((below, np.flatnonzero(sc == edge)[: n - len(below)]))
            vals = sc[part]
            by = np.argsort(vals)  # numpy's fastest sort; its order among equal scores is arbitrary,
            sv = vals[by]
            if (sv[1:] == sv[:-1]).any():  # so with ties the stable sort puts them in slot order
                by = np.argsort(vals, kind="stable")
            order = part[by]
        else:
            order = np.argsort(sc, kind="stable")[:n]
        return self._handle[order]

    def members(self) -> np.ndarray:
        """Every member handle (in slot order)."""
        return self._handle[np.flatnonzero(np.isfinite(self._score))]
