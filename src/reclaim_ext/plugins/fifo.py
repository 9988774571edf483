"""FIFO: evict the object that was admitted first; hits change nothing.

Matches libCacheSim's `FIFO` (no parameters): the victim is always the oldest admission and a hit
does not change anything. Each page's score is its admission time (`ctx.when`), so the n oldest
admissions stay the next n victims whatever is accessed: the policy declares `lookahead`.
"""

from __future__ import annotations

from reclaim_ext.ext import Policy, ScoreTable


class FIFO(Policy):
    name = "fifo"
    lookahead = True
    per_lruvec = True  # one instance per memcg's lruvec in the reclaim core

    def init(self, ctx):
        self.admitted = ScoreTable()

    def added(self, ctx, handles):
        self.admitted.set(handles, ctx.when)

    def removed(self, ctx, handles):
        self.admitted.remove(handles)

    def evict(self, ctx, n):
        return self.admitted.lowest(n)
