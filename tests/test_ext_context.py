"""What a policy can ask the reclaim core besides its hook arguments: page types (ctx.types),
whether anon can be reclaimed (ctx.anon_ok) and the young bits of its pages (ctx.referenced, and
the page-table walk ctx.walk_page_tables)."""

from __future__ import annotations

import json

import numpy as np
import pytest

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


class WalkProbe(Policy):
    """Walks the page tables in every evict() (twice: the second walk finds the bits the first
    cleared gone) and in added(); proposes nothing (the core tops up)."""

    name = "walk-probe"

    def init(self, ctx):
        self.pages = set()

    def added(self, ctx, handles):
        self.pages.update(handles.tolist())
        c = ctx.counters
        c["young_outside"] = c.get("young_outside", 0) + len(ctx.walk_page_tables()[0])

    def removed(self, ctx, handles):
        self.pages.difference_update(handles.tolist())

    def evict(self, ctx, n):
        c = ctx.counters
        ids, young = ctx.walk_page_tables()
        c["walks"] = c.get("walks", 0) + 1
        c["young"] = c.get("young", 0) + len(ids)
        c["young_ptes"] = c.get("young_ptes", 0) + int(young.sum())
        c["unique"] = c.get("unique", True) and len(set(ids.tolist())) == len(ids)
        c["own"] = c.get("own", True) and set(ids.tolist()) <= self.pages
        c["counts_ok"] = c.get("counts_ok", True) and bool((young >= 1).all())
        c["again"] = c.get("again", 0) + len(ctx.walk_page_tables()[0])
        c["file_only"] = c.get("file_only", 0) + len(ctx.walk_page_tables((FILE,))[0])
        return []

    def dump(self, ctx):
        return json.dumps(ctx.counters)


def _walk_run(policy: str) -> dict:
    cfg = RunConfig(policy=f"{__file__}:{policy}", workload="zipf", memory=256, swap=2048,
                    workload_params=dict(pages=1024, accesses=4000, kind="anon"))
    return run(cfg)


def test_walk_page_tables_finds_young_pages_of_the_lruvec_at_walk_cost():
    res = _walk_run("WalkProbe")
    c = json.loads(res["exits"][-1]["dump"])
    assert c["walks"] > 0 and c["young"] > 0          # mapped accesses set young bits; the walk finds them
    assert c["young_ptes"] >= c["young"] and c["counts_ok"] and c["unique"]
    assert c["own"]                                   # only pages of the policy's lruvec
    assert c["again"] == 0                            # the bits found were cleared
    assert c["file_only"] == 0                        # an anon workload: no file page to find
    assert c["young_outside"] == 0                    # outside evict() nothing is found
    assert res["cost"]["ptes_walked"] > 0             # charged as the kernel's walk, not as rmap walks
    base = _walk_run("Probe")                          # ctx.referenced on every page instead
    assert base["cost"]["ptes_walked"] == 0
    assert res["cost"]["rmap_walks"] < base["cost"]["rmap_walks"]
    # without the Bloom filter the walk finds the young PTEs that folio_referenced on every page finds
    assert c["young_ptes"] == json.loads(base["exits"][-1]["dump"])["young"]


def test_plain_cache_mode_context():
    ctx = Context(capacity=4, rng=np.random.default_rng(0))
    assert ctx.types([1, 2]).tolist() == [FILE, FILE]
    assert ctx.referenced([1, 2])[0].tolist() == [0, 0]
    assert [len(a) for a in ctx.walk_page_tables()] == [0, 0]
    with pytest.raises(ValueError):
        ctx.walk_page_tables((2,))
    assert ctx.anon_ok
