"""S3-FIFO with compiled hooks: the `s3fifo` plug-in's algorithm (plugins/s3fifo.py describes it
and how it matches libCacheSim's S3FIFO) over a per-handle array, run by plain-cache mode's
compiled loop (reclaim_ext.ext.compiled). Same misses as `s3fifo` in plain-cache mode.

State: per handle one row (its links on small or main, head = newest; its links on the ghost;
its queue; its frequency; whether it is in the ghost), and one int64 array of scalars (each
queue's head, tail and length, the sizes, the threshold, has_evicted, a ghost hit found by
on_evict). libCacheSim looks the incoming object up in the ghost before the small queue's victim
enters it: on_evict, which knows the incoming page, does the lookup and remembers a hit for
on_admit (the Python plug-in keeps the victim back until `added` instead). Every loop is
bounded: a hook that would exceed its bound raises (the core ejects the policy).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from reclaim_ext.ext.compiled import CompiledPolicy, list_move_head, list_push_head, list_remove

# columns of a handle's row: links on small/main, links on the ghost, queue, frequency, in ghost
LINK, GLINK, QUEUE, FREQ, INGHOST = 0, 2, 4, 5, 6
NONE, SMALL, MAIN = 0, 1, 2  # QUEUE
# the scalars: each list's head, tail, length at SQ, MQ, GQ; then the parameters and flags
SQ, MQ, GQ = 0, 3, 6
SMALL_SIZE, MAIN_SIZE, GHOST_SIZE, THRESHOLD, HAS_EVICTED, GHOST_HIT = 9, 10, 11, 12, 13, 14


@njit(cache=True)
def _ghost_remove(nd, s, h):
    if nd[h, INGHOST] == 0:
        return False
    list_remove(nd, GLINK, s, GQ, h)
    nd[h, INGHOST] = 0
    return True


@njit(cache=True)
def _ghost_add(nd, s, h):
    if nd[h, INGHOST]:
        list_move_head(nd, GLINK, s, GQ, h)
    else:
        list_push_head(nd, GLINK, s, GQ, h)
        nd[h, INGHOST] = 1
    while s[GQ + 2] > s[GHOST_SIZE]:  # drop the oldest (at most one per entry added)
        old = s[GQ + 1]
        list_remove(nd, GLINK, s, GQ, old)
        nd[old, INGHOST] = 0


@njit(cache=True)
def _hit(state, h, now):
    state[0][h, FREQ] += 1


@njit(cache=True)
def _admit(state, h, now):
    nd, s = state
    ghost_hit = _ghost_remove(nd, s, h) or s[GHOST_HIT] == h
    s[GHOST_HIT] = -1
    if nd[h, QUEUE] == SMALL:  # (adopted twice: one entry)
        list_remove(nd, LINK, s, SQ, h)
    elif nd[h, QUEUE] == MAIN:
        list_remove(nd, LINK, s, MQ, h)
    if ghost_hit or (s[HAS_EVICTED] == 0 and s[SQ + 2] >= s[SMALL_SIZE]):
        list_push_head(nd, LINK, s, MQ, h)
        nd[h, QUEUE] = MAIN
    else:
        list_push_head(nd, LINK, s, SQ, h)
        nd[h, QUEUE] = SMALL
    nd[h, FREQ] = 0


@njit(cache=True)
def _evict_main(nd, s):
    for _ in range(4 * s[MQ + 2] + 1):  # each lap lowers a frequency of at most 3
        h = s[MQ + 1]
        if h < 0:
            return -1
        f = nd[h, FREQ]
        if f < 1:
            return h
        list_move_head(nd, LINK, s, MQ, h)  # one more lap of the 2-bit clock
        nd[h, FREQ] = min(f, 3) - 1
    raise RuntimeError("s3fifo-compiled: the main queue's clock did not settle")


@njit(cache=True)
def _evict(state, incoming, now):
    nd, s = state
    if incoming >= 0 and _ghost_remove(nd, s, incoming):  # libCacheSim's find, before the eviction
        s[GHOST_HIT] = incoming
    s[HAS_EVICTED] = 1
    if s[MQ + 2] > s[MAIN_SIZE] or s[SQ + 2] == 0:
        return _evict_main(nd, s)
    for _ in range(s[SQ + 2]):  # small's oldest: evicted, or promoted to main if hit twice
        h = s[SQ + 1]
        if nd[h, FREQ] < s[THRESHOLD]:
            return h
        list_remove(nd, LINK, s, SQ, h)
        list_push_head(nd, LINK, s, MQ, h)
        nd[h, QUEUE] = MAIN
        nd[h, FREQ] = 0
    return _evict_main(nd, s)  # every object in small was promoted


@njit(cache=True)
def _removed(state, h, now):
    nd, s = state
    if nd[h, QUEUE] == SMALL:
        list_remove(nd, LINK, s, SQ, h)
        _ghost_add(nd, s, h)
    elif nd[h, QUEUE] == MAIN:
        list_remove(nd, LINK, s, MQ, h)
    nd[h, QUEUE] = NONE
    nd[h, FREQ] = 0


class S3FIFOCompiled(CompiledPolicy):
    name = "s3fifo-compiled"
    per_lruvec = True  # one instance per memcg's lruvec in the reclaim core
    # one row per handle: LINK (2), GLINK (2), QUEUE, FREQ, INGHOST, a spare (64 bytes)
    handle_arrays = ((np.int64, (-1, -1, -1, -1, NONE, 0, 0, 0)),)

    def __init__(self, small_size_ratio: float = 0.10, ghost_size_ratio: float = 0.90,
                 move_to_main_threshold: int = 2):
        self.small_size_ratio = small_size_ratio
        self.ghost_size_ratio = ghost_size_ratio
        self.move_to_main_threshold = move_to_main_threshold

    def state(self, ctx):
        c = ctx.capacity
        s = np.zeros(15, dtype=np.int64)
        s[[SQ, SQ + 1, MQ, MQ + 1, GQ, GQ + 1, GHOST_HIT]] = -1  # empty lists, no ghost hit
        s[SMALL_SIZE] = int(c * self.small_size_ratio)  # libCacheSim truncates to int64
        s[MAIN_SIZE] = c - s[SMALL_SIZE]
        s[GHOST_SIZE] = int(c * self.ghost_size_ratio)
        s[THRESHOLD] = self.move_to_main_threshold
        return (s,)

    on_hit = _hit
    on_admit = _admit
    on_evict = _evict
    on_removed = _removed

    def dump(self, ctx):
        s = self.arrays[1]
        return (f"small {s[SQ + 2]}/{s[SMALL_SIZE]} main {s[MQ + 2]}/{s[MAIN_SIZE]} "
                f"ghost {s[GQ + 2]}/{s[GHOST_SIZE]}")
