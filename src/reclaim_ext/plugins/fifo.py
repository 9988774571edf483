"""FIFO: evict the object that was admitted first; hits change nothing.

Matches libCacheSim's `FIFO` (no parameters): new objects enter at the head of one queue, the
victim is always the tail, and a hit does not move anything.
"""

from __future__ import annotations

from ..ext import IndexedList, Policy


class FIFO(Policy):
    name = "fifo"

    def init(self, ctx):
        self.q = IndexedList()  # head = newest admission, tail = oldest

    def added(self, ctx, handles):
        for h in handles.tolist():
            self.q.push_head(h)

    def removed(self, ctx, handles):
        for h in handles.tolist():
            self.q.discard(h)

    def evict(self, ctx, n):
        if n == 1:
            return [self.q.tail()] if self.q else []
        out = []
        for h in self.q.from_tail():
            if len(out) == n:
                break
            out.append(h)
        return out
