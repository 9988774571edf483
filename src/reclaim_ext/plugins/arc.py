"""ARC: Adaptive Replacement Cache -- two LRU lists of resident objects (T1: seen once recently,
T2: seen at least twice), their ghost lists (B1, B2), and a target size p for T1 that grows on
a B1 ghost hit and shrinks on a B2 ghost hit.

Paper: N. Megiddo and D. S. Modha, "ARC: A Self-Tuning, Low Overhead Replacement Cache",
FAST 2003.

Matches libCacheSim's `ARC` (libcachesim 0.3.5, no parameters), every object one unit, C the
capacity. libCacheSim's variant, which this follows step by step:

  * p is a float (libCacheSim follows a float reference implementation of the paper), 0 at
    start; on a B1 hit p = min(p + max(|B2| / |B1|, 1), C), on a B2 hit
    p = max(p - max(|B1| / |B2|, 1), 0), with the list sizes before the hit entry is dropped;
  * a hit in T1 moves the object to T2's head; a hit in T2 moves it to T2's head;
  * a miss on a ghost adapts p, drops the ghost entry and, if the cache is full, runs REPLACE;
    the object enters T2's head. Any other miss, if the cache is full, first trims the lists
    (case IV of the paper): if |T1| + |B1| >= C then, when B1 is not empty, forget B1's LRU
    entry and run REPLACE, else evict T1's LRU object *without* a ghost entry; otherwise, when
    |T1| + |B1| + |T2| + |B2| >= 2C and B2 is not empty, forget B2's LRU entry, and run
    REPLACE. The object enters T1's head;
  * REPLACE: if T1 is not empty and (|T1| > p, or |T1| == p and the missed object was in B2), or
    T2 is empty, T1's LRU object moves to B1's head; otherwise T2's LRU object moves to B2's head.

libCacheSim handles a miss as find (adapt p on a ghost hit) -> evict -> insert, and the victim
depends on the incoming object: a ghost hit moves p, and a B2 hit changes the tie rule, before
REPLACE. The API calls `evict` before `added`, so the plug-in reads the incoming object from
`ctx.incoming` (set by plain-cache mode during `evict` and the `removed` that follows), adapts p
in `removed` before the victim's ghost entry is made, exactly in libCacheSim's order. Where
`ctx.incoming` is None (inside the reclaim core), `evict` and `removed` treat the miss as case IV
and `added` adapts p on a ghost hit afterwards.

For `evict(ctx, n)` with n > 1 (the reclaim core's batches) it proposes the victims that n
successive evictions would take, treating those already chosen as gone; they stay on their
lists until `removed`. Every hook is O(1) per object.
"""

from __future__ import annotations

from reclaim_ext.ext import IndexedList, Policy


def _oldest(q: IndexedList, chosen):
    """The LRU end of q, skipping handles already chosen in this batch."""
    h = q.tail()
    while h is not None and h in chosen:
        h = q.prev(h)
    return h


class ARC(Policy):
    name = "arc"
    per_lruvec = True  # one instance per memcg's lruvec in the reclaim core

    def init(self, ctx):
        self.c = ctx.capacity
        self.p = 0.0
        self.t1 = IndexedList()   # resident, seen once; head = MRU
        self.t2 = IndexedList()   # resident, seen twice or more; head = MRU
        self.b1 = IndexedList()   # ghosts of T1; head = MRU
        self.b2 = IndexedList()   # ghosts of T2; head = MRU
        self._ghost_hit = None    # the incoming object whose ghost hit `removed` already handled

    # ---- the adaptation and REPLACE ------------------------------------------------------------

    def _p_after_ghost_hit(self, in_b1: bool) -> float:
        nb1, nb2 = len(self.b1), len(self.b2)
        if in_b1:
            return min(self.p + max(nb2 / nb1, 1.0), self.c)
        return max(self.p - max(nb1 / nb2, 1.0), 0.0)

    def _ghost_hit_on(self, h) -> None:
        """libCacheSim's find on a ghost: adapt p, forget the ghost entry."""
        in_b1 = h in self.b1
        self.p = self._p_after_ghost_hit(in_b1)
        (self.b1 if in_b1 else self.b2).remove(h)

    def _replace_from_t1(self, n1: int, n2: int, p: float, in_b2: bool) -> bool:
        """REPLACE's choice with |T1| = n1, |T2| = n2: True = T1's LRU object, False = T2's.
        (Case IV's eviction without a ghost happens only when T1 is the whole cache, so T2 is
        empty and this answers T1 too.)"""
        return (n1 > 0 and (n1 > p or (n1 == p and in_b2))) or n2 == 0

    # ---- hooks -----------------------------------------------------------------------------------

    def evict(self, ctx, n):
        h = ctx.incoming
        p, in_b2 = self.p, False
        if h is not None and h != self._ghost_hit:
            if h in self.b1:
                p = self._p_after_ghost_hit(True)
            elif h in self.b2:
                p, in_b2 = self._p_after_ghost_hit(False), True
        n1, n2 = len(self.t1), len(self.t2)
        if n == 1:  # plain-cache mode: one victim per miss
            q = self.t1 if self._replace_from_t1(n1, n2, p, in_b2) else self.t2
            return [q.tail()] if q else []
        out = []
        chosen = set()
        while len(out) < n and n1 + n2 > 0:
            if self._replace_from_t1(n1, n2, p, in_b2):
                v, n1 = _oldest(self.t1, chosen), n1 - 1
            else:
                v, n2 = _oldest(self.t2, chosen), n2 - 1
            out.append(v)
            chosen.add(v)
            p, in_b2 = self.p, False  # only the first eviction belongs to the incoming object
        return out

    def removed(self, ctx, handles):
        for v in handles.tolist():
            from_t1 = v in self.t1
            if not from_t1 and v not in self.t2:
                continue
            h = ctx.incoming
            if h is not None and (h in self.b1 or h in self.b2):
                self._ghost_hit_on(h)            # find comes before evict in libCacheSim
                self._ghost_hit = h
            keep_ghost = True                    # REPLACE always leaves a ghost entry
            if h is None or h != self._ghost_hit:  # case IV, on the sizes before this eviction
                n1, nb1 = len(self.t1), len(self.b1)
                if n1 + nb1 + 1 > self.c:
                    if nb1 > 0:
                        self.b1.pop_tail()
                    else:
                        keep_ghost = False       # T1 was the whole cache: no ghost
                elif n1 + nb1 + len(self.t2) + len(self.b2) >= 2 * self.c and self.b2:
                    self.b2.pop_tail()
            if from_t1:
                self.t1.remove(v)
                if keep_ghost:
                    self.b1.push_head(v)
            else:
                self.t2.remove(v)
                if keep_ghost:
                    self.b2.push_head(v)

    def added(self, ctx, handles):
        for h in handles.tolist():
            if h == self._ghost_hit:             # its ghost hit was handled in removed()
                self._ghost_hit = None
                self.t2.push_head(h)
            elif h in self.b1 or h in self.b2:   # a ghost hit without an eviction
                self._ghost_hit_on(h)
                self.t2.push_head(h)
            else:
                self.t1.push_head(h)

    def accessed(self, ctx, handles):
        t1, t2 = self.t1, self.t2
        for h in handles.tolist():
            if h in t1:
                t1.remove(h)
                t2.push_head(h)
            else:
                t2.move_head(h)

    def dump(self, ctx):
        return (f"p {self.p:.2f} T1 {len(self.t1)} T2 {len(self.t2)} "
                f"B1 {len(self.b1)} B2 {len(self.b2)}")
