"""S3-FIFO: a small FIFO for new objects, a main FIFO with a 2-bit clock, and a ghost FIFO that
remembers objects the small queue evicted without a second access.

Paper: J. Yang, Y. Zhang, Z. Qiu, Y. Yue, R. Vinayak, "FIFO queues are all you need for cache
eviction", SOSP 2023.

Matches libCacheSim's `S3FIFO` (libcachesim 0.3.5; the S3FIFO.c variant, not S3FIFOv0) with its
default parameters `small-size-ratio=0.10, ghost-size-ratio=0.90, move-to-main-threshold=2`,
every object one unit:

  * sizes, with libCacheSim's integer truncation: small S = int(C * 0.1), main M = C - S,
    ghost G = int(C * 0.9) entries;
  * a hit adds 1 to the object's frequency (uncapped while it counts; capped when used);
  * a miss on an object in the ghost forgets the ghost entry and admits the object to main;
    any other miss admits it to small -- except before the first eviction, when a small queue
    already holding S objects sends it to main instead (the S3FIFO.c variant); admitted
    objects start at frequency 0;
  * eviction (cache full): if main holds more than M objects, or small is empty, evict from
    main, else from small;
      - small: take its oldest object; with frequency >= 2 it moves to main's head (frequency
        0) and the next oldest is tried; otherwise it is evicted and remembered in the ghost.
        If small empties this way, evict from main;
      - main: take its oldest object; with frequency f >= 1 it goes back to main's head with
        frequency min(f, 3) - 1 (a 2-bit clock); otherwise it is evicted (no ghost).

Order of one miss, as in libCacheSim's find -> evict -> insert: the incoming object's ghost entry
is removed *before* the small queue's victim enters the ghost. The victim is known in `evict` /
`removed` and the incoming object only in `added`, so the victim's ghost entry waits in
`_pending` until `added` has looked the incoming object up.

libCacheSim stops with "Invalid cache size configuration" below 10 objects (S = 0), and refuses
to admit a non-ghost object as large as the small queue, so from 10 to 19 objects (S = 1) it
admits nothing; the API has no refusal, so there the plug-in differs. From C = 20 on it is the
same algorithm. Every hook is O(1), the clock's laps amortized (each lap undoes a hit).
"""

from __future__ import annotations

from reclaim_ext.ext import GhostTable, IndexedList, Policy


class S3FIFO(Policy):
    name = "s3fifo"
    per_lruvec = True  # one instance per memcg's lruvec in the reclaim core

    def __init__(self, small_size_ratio: float = 0.10, ghost_size_ratio: float = 0.90,
                 move_to_main_threshold: int = 2):
        self.small_size_ratio = small_size_ratio
        self.ghost_size_ratio = ghost_size_ratio
        self.move_to_main_threshold = move_to_main_threshold

    def init(self, ctx):
        c = ctx.capacity
        self.small_size = int(c * self.small_size_ratio)  # libCacheSim truncates to int64
        self.main_size = c - self.small_size
        self.small = IndexedList()                          # FIFO, head = newest
        self.main = IndexedList()                           # FIFO + 2-bit clock, head = newest
        self.ghost = GhostTable(int(c * self.ghost_size_ratio))
        self.freq: dict[int, int] = {}
        self.has_evicted = False
        self._pending: list[int] = []                       # small-queue victims not yet in ghost

    def added(self, ctx, handles):
        for h in handles.tolist():
            ghost_hit = self.ghost.remove(h)   # libCacheSim's find: before the eviction's ghost
            for v in self._pending:
                self.ghost.add(v)
            self._pending.clear()
            if ghost_hit or (not self.has_evicted and len(self.small) >= self.small_size):
                self.main.push_head(h)
            else:
                self.small.push_head(h)
            self.freq[h] = 0

    def accessed(self, ctx, handles):
        freq = self.freq
        for h in handles.tolist():
            freq[h] += 1

    def _oldest(self, q, chosen):
        """The oldest object of q, skipping those already chosen in this batch."""
        h = q.tail()
        while h is not None and h in chosen:
            h = q.prev(h)
        return h

    def _evict_main(self, chosen):
        main, freq = self.main, self.freq
        while True:
            h = self._oldest(main, chosen)
            if h is None:
                return None
            f = freq[h]
            if f < 1:
                return h
            main.move_head(h)                  # reinsert: one more lap of the clock
            freq[h] = min(f, 3) - 1

    def _evict_small(self, chosen):
        small, main, freq = self.small, self.main, self.freq
        while True:
            h = self._oldest(small, chosen)
            if h is None:                      # every object in small was promoted
                return self._evict_main(chosen)
            if freq[h] < self.move_to_main_threshold:
                return h
            small.remove(h)                    # accessed again while in small: promote
            main.push_head(h)
            freq[h] = 0

    def evict(self, ctx, n):
        """One victim per call in plain-cache mode; for n > 1 (the reclaim core's batches) the
        victims of n successive evictions, those already chosen counted as gone (they stay on
        their queues until removed())."""
        self.has_evicted = True
        out, chosen = [], set()
        in_small = 0                           # chosen victims still on the small queue
        while len(out) < n:
            if len(self.main) - (len(chosen) - in_small) > self.main_size or len(self.small) == in_small:
                victim = self._evict_main(chosen)
            else:
                victim = self._evict_small(chosen)
            if victim is None:
                break
            in_small += victim in self.small
            out.append(victim)
            chosen.add(victim)
        return out

    def removed(self, ctx, handles):
        for h in handles.tolist():
            if h in self.small:
                self.small.remove(h)
                self._pending.append(h)        # enters the ghost once the incoming is known
            else:
                self.main.discard(h)
            self.freq.pop(h, None)

    def dump(self, ctx):
        return (f"small {len(self.small)}/{self.small_size} main {len(self.main)}/{self.main_size} "
                f"ghost {len(self.ghost)}/{self.ghost.capacity}")
