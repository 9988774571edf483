"""CLOCK (second chance / FIFO-reinsertion) with one reference bit.

Matches libCacheSim's `Clock` with its defaults (n-bit-counter=1, init-freq=0): objects enter
at the head of a FIFO queue with the bit clear; a hit sets the bit (a 1-bit counter saturates at
1); to evict, the hand looks at the tail: a set bit is cleared and the object is moved to the
head (second chance), a clear bit makes it the victim. The hand is always the tail, so "moving
the hand past an object" and "moving the object to the head" are the same thing.
"""

from __future__ import annotations

from reclaim_ext.ext import IndexedList, Policy


class Clock(Policy):
    name = "clock"
    per_lruvec = True  # one instance per memcg's lruvec in the reclaim core

    def init(self, ctx):
        self.q = IndexedList()  # head = newest (or just re-inserted), tail = under the hand
        self.ref = set()        # handles whose reference bit is set

    def added(self, ctx, handles):
        for h in handles.tolist():
            self.q.push_head(h)  # bit clear (init-freq=0)

    def accessed(self, ctx, handles):
        self.ref.update(handles.tolist())

    def removed(self, ctx, handles):
        for h in handles.tolist():
            self.q.discard(h)
            self.ref.discard(h)

    def evict(self, ctx, n):
        q, ref = self.q, self.ref
        if n == 1:  # the hot path: one victim per miss
            h = q.tail()
            while h in ref:
                ref.discard(h)
                q.move_head(h)
                h = q.tail()
            return [] if h is None else [h]
        out = []  # several victims: sweep towards the head; victims stay put until removed()
        h = q.tail()
        while h is not None and len(out) < n:
            p = q.prev(h)
            if h in ref:
                ref.discard(h)
                if p is None:  # h is the head already: look at it again, now without its bit
                    continue
                q.move_head(h)
            else:
                out.append(h)
            h = p
        return out
