"""LRU: evict the page whose last access is the oldest (libCacheSim's LRU)."""

from __future__ import annotations

from reclaim_ext.ext import IndexedList, Policy


class LRU(Policy):
    name = "lru"

    def init(self, ctx):
        self.q = IndexedList()

    def added(self, ctx, handles):
        for h in handles.tolist():
            self.q.push_head(h)

    def accessed(self, ctx, handles):
        for h in handles.tolist():
            self.q.move_head(h)

    def removed(self, ctx, handles):
        for h in handles.tolist():
            self.q.discard(h)

    def evict(self, ctx, n):
        out = []
        for h in self.q.from_tail():
            if len(out) == n:
                break
            out.append(h)
        return out
