"""LFU: evict the least frequently used object; among equals, the one that reached that
frequency first.

Matches libCacheSim's `LFU` (the C one, no parameters): an object is admitted with frequency 1
(nothing is remembered after eviction), each hit adds 1 and moves it to the young end of the
bucket of its new frequency, and the victim is the oldest member of the lowest non-empty bucket
(FIFO within a frequency; that is also LRU within a frequency, since an object's last access is
when it reached its frequency). One IndexedList per frequency and the lowest non-empty frequency:
O(1) per hook call (a scan of the buckets only when the core removes, on its own, the last object
of the lowest bucket).
"""

from __future__ import annotations

from reclaim_ext.ext import IndexedList, Policy


class LFU(Policy):
    name = "lfu"
    per_lruvec = True  # one instance per memcg's lruvec in the reclaim core

    def init(self, ctx):
        self.freq = {}        # handle -> frequency
        self.one = IndexedList()
        self.buckets = {1: self.one}  # frequency -> IndexedList (head = entered last); empty ones dropped
        self.min_freq = None  # lowest non-empty frequency; None = recompute when needed

    def added(self, ctx, handles):
        freq, one = self.freq, self.one
        for h in handles.tolist():
            freq[h] = 1
            one.push_head(h)
        self.min_freq = 1

    def accessed(self, ctx, handles):
        freq, buckets = self.freq, self.buckets
        for h in handles.tolist():
            f = freq[h]
            old = buckets[f]
            old.remove(h)
            if not old:
                if self.min_freq == f:
                    self.min_freq = f + 1
                if f > 1:
                    del buckets[f]
            freq[h] = f + 1
            new = buckets.get(f + 1)
            if new is None:
                new = buckets[f + 1] = IndexedList()
            new.push_head(h)

    def removed(self, ctx, handles):
        freq, buckets = self.freq, self.buckets
        for h in handles.tolist():
            f = freq.pop(h, None)
            if f is None:
                continue
            b = buckets[f]
            b.remove(h)
            if not b:
                if self.min_freq == f:
                    self.min_freq = None
                if f > 1:
                    del buckets[f]

    def evict(self, ctx, n):
        buckets = self.buckets
        if not self.freq:
            return []
        if self.min_freq is None:  # only after the core removed the last object of the lowest bucket
            self.min_freq = min(f for f, b in buckets.items() if b)
        if n == 1:
            return [buckets[self.min_freq].tail()]
        out = []
        for f in sorted(buckets):
            for h in buckets[f].from_tail():
                if len(out) == n:
                    return out
                out.append(h)
        return out
