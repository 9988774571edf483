"""What a policy can ask the reclaim core besides its hook arguments: page types (ctx.types),
whether anon can be reclaimed (ctx.anon_ok) and the young bits of its pages (ctx.referenced)."""

from __future__ import annotations

import json

import numpy as np

from reclaim_ext.api import RunConfig, run
from reclaim_ext.core.engine import OutOfMemory
from reclaim_ext.ext import ANON, FILE, Context, Policy


class Probe(Policy):
    """Counts what the context says (ctx.counters, given back through dump); proposes nothing of its own (the core
    tops up, and after 64 empty answers ejects it: enough to look)."""

    name = "probe"

    def init(self, ctx):
        self.pages = set()

    def added(self, ctx, handles):
        c = ctx.counters
        for t in ctx.types(handles).tolist():
            key = {ANON: "anon", FILE: "file"}[t]
            c[key] = c.get(key, 0) + 1
        self.pages.update(handles.tolist())
        c["young_outside"] = c.get("young_outside", 0) + int(ctx.referenced(handles)[0].sum())

    def removed(self, ctx, handles):
        self.pages.difference_update(handles.tolist())

    def evict(self, ctx, n):
        c = ctx.counters
        key = f"anon_ok_{ctx.anon_ok}"
        c[key] = c.get(key, 0) + 1
        c["young"] = c.get("young", 0) + int(ctx.referenced(sorted(self.pages))[0].sum())
        return []

    def dump(self, ctx):
        return json.dumps(ctx.counters)


def _counters(kind: str, swap: int) -> dict:
    cfg = RunConfig(policy=f"{__file__}:Probe", workload="zipf", memory=256, swap=swap,
                    workload_params=dict(pages=1024, accesses=4000, kind=kind))
    try:
        res = run(cfg)
    except OutOfMemory as e:  # anon without swap: what the probe saw before is what counts
        res = e.result
    return json.loads(res["exits"][-1]["dump"])


def test_types_and_anon_ok_in_the_reclaim_core():
    c = _counters("anon", 0)
    assert c["anon"] > 0 and "file" not in c
    assert c["anon_ok_False"] > 0 and "anon_ok_True" not in c  # no swap: get_scan_count scans no anon
    c = _counters("anon", 2048)
    assert c["anon_ok_True"] > 0 and "anon_ok_False" not in c
    c = _counters("file", 0)
    assert c["file"] > 0 and "anon" not in c


def test_referenced_sees_young_mapped_pages_only_in_evict():
    c = _counters("anon", 2048)
    assert c["young"] > 0            # mapped accesses set young bits; evict() may test them
    assert c["young_outside"] == 0   # in other hooks every count is 0
    c = _counters("file", 0)         # read(): never mapped, never young
    assert c["young"] == 0


def test_plain_cache_mode_context():
    ctx = Context(capacity=4, rng=np.random.default_rng(0))
    assert ctx.types([1, 2]).tolist() == [FILE, FILE]
    assert ctx.referenced([1, 2])[0].tolist() == [0, 0]
    assert ctx.anon_ok
