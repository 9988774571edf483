"""2Q: a FIFO probation queue (A1in), a ghost FIFO of its evictions (A1out) and an LRU for
objects that came back (Am).

Paper: T. Johnson and D. Shasha, "2Q: A Low Overhead High Performance Buffer Management
Replacement Algorithm", VLDB 1994 (the "full version" with A1in, A1out and Am).

Matches libCacheSim's `TwoQ` (libcachesim 0.3.5) with its default parameters
`Ain-size-ratio=0.25, Aout-size-ratio=0.5`, every object one unit:

  * sizes, with libCacheSim's integer truncation: A1in = int(C * 0.25), A1out = int(C * 0.5)
    ghost entries, Am = C - A1in;
  * a miss on an object remembered in A1out forgets the ghost entry and admits the object at
    the head of Am; any other miss admits it at the head of A1in;
  * a hit in A1in changes nothing (FIFO); a hit in Am moves the object to Am's head (LRU);
  * eviction (cache full): if A1in holds more than its share, its oldest object leaves and is
    remembered at the young end of A1out (the oldest A1out entry is forgotten when A1out is
    full); otherwise Am's least recently used object leaves and is forgotten.

For `evict(ctx, n)` with n > 1 (the reclaim core's batches) it proposes what n successive
evictions would take: A1in's oldest while A1in is above its share, then Am's LRU end.

Order of one miss, as in libCacheSim's find -> evict -> insert: the incoming object's A1out entry
is removed *before* the victim of that miss enters A1out. Here the victim is known in `evict` /
`removed` but the incoming object only in `added`, so the victim's A1out entry waits in
`_pending` until `added` has looked the incoming object up. (Adding it earlier could push the
incoming object's own entry out of a full A1out.)

In libCacheSim, Am is its own LRU of capacity C - A1in and admitting into a full Am evicts from
Am inside the insert. With unit-size objects and no removals this never happens: Am stays empty
until the cache first fills, and from then on every eviction either leaves A1in above its share
(so Am has room) or frees a slot of Am. This plug-in therefore never needs that second eviction.

libCacheSim admits nothing when A1in's share is 0 objects (C < 4); the API has no refusal, so
there the plug-in differs. From C = 4 on it is the same algorithm. Every hook is O(1).
"""

from __future__ import annotations

from reclaim_ext.ext import GhostTable, IndexedList, Policy


class TwoQ(Policy):
    name = "2q"
    per_lruvec = True  # one instance per memcg's lruvec in the reclaim core

    def __init__(self, ain_size_ratio: float = 0.25, aout_size_ratio: float = 0.5):
        self.ain_size_ratio = ain_size_ratio
        self.aout_size_ratio = aout_size_ratio

    def init(self, ctx):
        c = ctx.capacity
        self.ain_size = int(c * self.ain_size_ratio)    # libCacheSim truncates to int64
        self.am_size = c - self.ain_size
        self.ain = IndexedList()                         # A1in: FIFO, head = newest
        self.am = IndexedList()                          # Am: LRU, head = most recent
        self.aout = GhostTable(int(c * self.aout_size_ratio))  # A1out: ghost FIFO
        self._pending: list[int] = []                    # A1in victims not yet in A1out

    def _flush_pending(self):
        for v in self._pending:
            self.aout.add(v)
        self._pending.clear()

    def added(self, ctx, handles):
        for h in handles.tolist():
            ghost_hit = self.aout.remove(h)   # libCacheSim's find: before the eviction's ghost
            self._flush_pending()
            if ghost_hit:
                self.am.push_head(h)
            else:
                self.ain.push_head(h)

    def accessed(self, ctx, handles):
        am = self.am
        for h in handles.tolist():
            if h in am:
                am.move_head(h)
            # a hit in A1in changes nothing

    def evict(self, ctx, n):
        if n == 1:  # plain-cache mode: one victim per miss
            if len(self.ain) > self.ain_size or not self.am:
                return [self.ain.tail()] if self.ain else []
            return [self.am.tail()]
        # a batch (the reclaim core): what n successive evictions would take; victims stay on
        # their lists until removed()
        out = []
        k = min(n, max(len(self.ain) - self.ain_size, 0))   # A1in above its share first
        for q, limit in ((self.ain, k), (self.am, n), (self.ain, n)):
            for h in q.from_tail():
                if len(out) >= limit:
                    break
                if h not in out:
                    out.append(h)
        return out

    def removed(self, ctx, handles):
        for h in handles.tolist():
            if h in self.ain:
                self.ain.remove(h)
                self._pending.append(h)       # enters A1out once the incoming object is known
            else:
                self.am.discard(h)

    def dump(self, ctx):
        return (f"A1in {len(self.ain)}/{self.ain_size} Am {len(self.am)}/{self.am_size} "
                f"A1out {len(self.aout)}/{self.aout.capacity}")
