"""Plain-cache mode, one access at a time (a policy without lookahead, CacheSim._run_each): which
hooks are called, in what order, with which handles, `ctx.when` and `ctx.now`; and the arrays a
hook gets are its own."""

from __future__ import annotations

import numpy as np

from reclaim_ext.ext import Policy
from reclaim_ext.ext.cache import run_cache
from reclaim_ext.trace import ArrayTrace, Kind
from reclaim_ext.trace.record import make_records


class Recorder(Policy):
    """FIFO by admission; records every call, then scribbles over the arrays it was given."""

    name = "recorder"

    def init(self, ctx):
        self.calls, self.queue = [], []

    def _log(self, hook, ctx, handles):
        self.calls.append((hook, handles.tolist(), ctx.when.tolist(), ctx.now, str(handles.dtype)))
        handles[:] = -1  # the policy's own copy: the core must not see this
        ctx.when[:] = -1

    def added(self, ctx, handles):
        self.queue.extend(handles.tolist())
        self._log("added", ctx, handles)

    def accessed(self, ctx, handles):
        self._log("accessed", ctx, handles)

    def removed(self, ctx, handles):
        self.queue.remove(int(handles[0]))
        self._log("removed", ctx, handles)

    def evict(self, ctx, n):
        self.calls.append(("evict", n, ctx.incoming, ctx.now))
        return [self.queue[0]]


def _trace(pages) -> ArrayTrace:
    rec = make_records(len(pages))
    rec["kind"] = Kind.FILE_FD
    rec["page"] = np.asarray(pages, dtype=np.uint64)
    return ArrayTrace("calls", rec)


def test_calls_access_by_access():
    # pages 1, 2, 3 get handles 0, 1, 2 (first appearance); capacity 2
    p = Recorder()
    res = run_cache(_trace([1, 1, 2, 3, 1, 1, 1]), p, 2)
    assert p.calls == [
        ("added", [0], [0], 0, "int64"),
        ("accessed", [0], [1], 1, "int64"),      # the run of hits ends at the miss on page 2
        ("added", [1], [2], 2, "int64"),
        ("evict", 1, 2, 3),                      # page 3 comes in: FIFO names page 1
        ("removed", [0], [3], 3, "int64"),
        ("added", [2], [3], 3, "int64"),
        ("evict", 1, 0, 4),                      # page 1 again: a miss
        ("removed", [1], [4], 4, "int64"),
        ("added", [0], [4], 4, "int64"),
        ("accessed", [0, 0], [5, 6], 6, "int64"),  # the chunk ends in a run of two hits
    ]
    assert (res["hits"], res["misses"], res["evictions"]) == (3, 4, 2)
    assert [e["kind"] for e in res["exits"]] == ["DONE"]  # the scribbling broke no rule
    assert not any(res["events"].values())  # no stale handle, top-up or fallback
