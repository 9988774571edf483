"""SIEVE (Zhang et al., NSDI'24): a FIFO queue with a visited bit and a hand that stays put.

Matches libCacheSim's `Sieve` (no parameters): a new object goes to the head with the bit clear,
a hit sets the bit. To evict, the hand starts where it stopped last time (at the tail on the first
eviction or after it ran off the head), walks from tail towards head clearing set bits, wrapping
from the head back to the tail, and evicts the first object with a clear bit; the hand then rests
on that victim's neighbour towards the head. Survivors are never moved.
"""

from __future__ import annotations

from reclaim_ext.ext import IndexedList, Policy


class Sieve(Policy):
    name = "sieve"
    per_lruvec = True  # one instance per memcg's lruvec in the reclaim core

    def init(self, ctx):
        self.q = IndexedList()  # head = newest
        self.visited = set()
        self.hand = None        # next object to examine; None = start at the tail

    def added(self, ctx, handles):
        for h in handles.tolist():
            self.q.push_head(h)

    def accessed(self, ctx, handles):
        self.visited.update(handles.tolist())

    def removed(self, ctx, handles):
        q = self.q
        for h in handles.tolist():
            if h in q:
                if h == self.hand:
                    self.hand = q.prev(h)
                q.remove(h)
                self.visited.discard(h)

    def _victim(self, skip=()):
        q, visited = self.q, self.visited
        h = q.tail() if self.hand is None else self.hand
        while h in visited or h in skip:
            visited.discard(h)
            h = q.prev(h)
            if h is None:
                h = q.tail()
        self.hand = q.prev(h)
        return h

    def evict(self, ctx, n):
        if not self.q:
            return []
        if n == 1:
            return [self._victim()]
        out = []
        for _ in range(min(n, len(self.q))):
            out.append(self._victim(out))
        return out
