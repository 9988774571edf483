"""LRU with compiled hooks: the `lru` plug-in's policy (evict the page whose last access is the
oldest) as a doubly linked list over a per-handle array, run by plain-cache mode's compiled loop
(reclaim_ext.ext.compiled). Same misses as `lru` (and libCacheSim's LRU).

State: per handle its prev and next on the list (head = most recent); [head, tail, length].
"""

from __future__ import annotations

import numpy as np
from numba import njit

from reclaim_ext.ext.compiled import CompiledPolicy, list_contains, list_move_head, list_push_head, list_remove


@njit(cache=True)
def _touch(state, h, now):  # a hit, or an admission: h becomes the most recent
    links, s = state
    if list_contains(links, 0, s, 0, h):
        list_move_head(links, 0, s, 0, h)
    else:
        list_push_head(links, 0, s, 0, h)


@njit(cache=True)
def _evict(state, incoming, now):
    return state[1][1]  # the tail: the least recently used (-1 if none: the core ejects the policy)


@njit(cache=True)
def _removed(state, h, now):
    links, s = state
    if list_contains(links, 0, s, 0, h):
        list_remove(links, 0, s, 0, h)


class LRUCompiled(CompiledPolicy):
    name = "lru-compiled"
    per_lruvec = True  # one instance per memcg's lruvec in the reclaim core
    handle_arrays = ((np.int64, (-1, -1)),)  # links: prev, next

    def state(self, ctx):
        return (np.array([-1, -1, 0], dtype=np.int64),)  # head, tail, length

    on_hit = _touch
    on_admit = _touch
    on_evict = _evict
    on_removed = _removed

    def dump(self, ctx):
        return f"{int(self.arrays[1][2])} pages on the list"
