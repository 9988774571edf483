"""MRU: evict the most recently used object (admission or hit counts as a use).

libCacheSim has no MRU, so there is no variant to match. On a miss with a full cache the victim is
chosen before the new object is admitted, so it is the resident object used last (not the
incoming one). Useful for cyclic scans larger than the cache, where LRU misses every time.
"""

from __future__ import annotations

from reclaim_ext.ext import IndexedList, Policy


class MRU(Policy):
    name = "mru"
    per_lruvec = True  # one instance per memcg's lruvec in the reclaim core

    def init(self, ctx):
        self.q = IndexedList()  # head = most recently used

    def added(self, ctx, handles):
        for h in handles.tolist():
            self.q.push_head(h)

    def accessed(self, ctx, handles):
        q = self.q
        for h in handles.tolist():
            q.move_head(h)

    def removed(self, ctx, handles):
        for h in handles.tolist():
            self.q.discard(h)

    def evict(self, ctx, n):
        if n == 1:
            return [self.q.head()] if self.q else []
        out = []
        for h in self.q.from_head():
            if len(out) == n:
                break
            out.append(h)
        return out
