"""LRU: evict the page whose last access is the oldest (libCacheSim's LRU).

Each page's score is the time of its last access (`ctx.when`), kept in a ScoreTable; the victims
are the lowest scores. Because a later access only ever raises a score, the n oldest pages stay
the next n victims until one of them is touched: the policy declares `lookahead`, and the core
replays whole stretches of accesses between two evict() calls with numpy.
"""

from __future__ import annotations

from reclaim_ext.ext import Policy, ScoreTable


class LRU(Policy):
    name = "lru"
    lookahead = True
    per_lruvec = True  # one instance per memcg's lruvec in the reclaim core

    def init(self, ctx):
        self.last = ScoreTable()

    def added(self, ctx, handles):
        self.last.set(handles, ctx.when)

    def accessed(self, ctx, handles):
        self.last.set(handles, ctx.when)

    def removed(self, ctx, handles):
        self.last.remove(handles)

    def evict(self, ctx, n):
        return self.last.lowest(n)
