"""Data-structure helpers for policy authors: an indexed list and a ghost table.

Both are keyed by page handles (ints). They cost O(1) per operation and never touch the
simulator's state: a policy keeps its own view of the pages in them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterable, Iterator

import numpy as np


class IndexedList:
    """A doubly linked list of distinct handles with O(1) insert, delete and move at either end.

    The head is the most recently inserted end; `tail()` / `pop_tail()` give the oldest. Iterate
    from either end with `from_tail()` / `from_head()`.
    """

    __slots__ = ("_prev", "_next", "_head", "_tail")

    def __init__(self, handles: Iterable[int] = ()):
        self._prev: dict[int, int | None] = {}
        self._next: dict[int, int | None] = {}
        self._head: int | None = None
        self._tail: int | None = None
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

    __slots__ = ("capacity", "_d")

    def __init__(self, capacity: int):
        if capacity < 0:
            raise ValueError("ghost table capacity must be >= 0")
        self.capacity = int(capacity)
        self._d: OrderedDict[int, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._d)

    def __contains__(self, h: int) -> bool:
        return int(h) in self._d

    def add(self, h: int) -> None:
        """Remember h (moved to the young end if already present)."""
        h = int(h)
        if h in self._d:
            self._d.move_to_end(h)
        else:
            self._d[h] = None
        while len(self._d) > self.capacity:
            self._d.popitem(last=False)

    def remove(self, h: int) -> bool:
        """Forget h; whether it was there."""
        return self._d.pop(int(h), 0) is None

    def pop_oldest(self) -> int:
        return self._d.popitem(last=False)[0]

    def resize(self, capacity: int) -> None:
        self.capacity = int(capacity)
        while len(self._d) > self.capacity:
            self._d.popitem(last=False)
