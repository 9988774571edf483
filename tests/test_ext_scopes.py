"""Scopes (R8), helper permissions (R7, test T7), resource caps (R11) and neighbour safety (T8).

A policy attached to a memcg governs that memcg's subtree; the nearest attached scope wins; when a
policy leaves, its memcgs go to the next scope up (the parent's policy, then classic), and the
neighbours are not disturbed."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import invoke, list_lru, run_json
from reclaim_ext.core.engine import SimConfig, Simulator
from reclaim_ext.ext import IndexedList, Policy, ScoreTable
from reclaim_ext.ext.adapter import ExtOps, parse_scope
from reclaim_ext.ext.cache import run_cache
from reclaim_ext.plugins.fifo import FIFO
from reclaim_ext.plugins.lru import LRU
from reclaim_ext.trace import ArrayTrace, Kind
from reclaim_ext.trace.record import make_records

MEMCGS = ["name=a,pids=0,max=160", "name=b,pids=1,max=160"]


def two_memcg_trace(n: int = 24_000, seed: int = 3) -> np.ndarray:
    """pid 0 (memcg a) and pid 1 (memcg b) interleaved, each with a skewed mix of read() and mmap
    loads over its own file, 600 pages each: both memcgs run at their limits."""
    rng = np.random.default_rng(seed)
    rec = make_records(n)
    pid = rng.integers(0, 2, n)
    rec["pid"] = pid
    rec["file"] = 1 + pid
    rec["page"] = (rng.zipf(1.2, n) % 600).astype(np.uint64)
    rec["kind"] = np.where(rng.random(n) < 0.5, Kind.FILE_FD, Kind.FILE_MMAP)
    return rec


TRACE = two_memcg_trace()


def sim_of(ops, mode: str = "fast") -> Simulator:
    return Simulator(SimConfig(memory_pages=4096, swap_pages=0, mode=mode, check=True, memcgs=MEMCGS), ops)


def memcg(sim: Simulator, path: str) -> dict:
    return next(m for m in sim.result()["memcgs"] if m["name"] == path)


class RaisesAt(LRU):
    """The LRU plug-in until its k-th evict() call, which raises."""

    def __init__(self, k: int):
        self.k, self.calls = k, 0

    def evict(self, ctx, n):
        self.calls += 1
        if self.calls == self.k:
            raise RuntimeError("policy bug")
        return super().evict(ctx, n)


class Recording(LRU):
    """The LRU plug-in that records the memcg of every handle it is given or asked about (or
    another folio field and Context field: nid and node)."""

    def __init__(self, sim_ref: list, folio_field: str = "memcg", ctx_field: str = "memcg"):
        self.sim_ref, self.seen, self.asked = sim_ref, set(), set()
        self.folio_field, self.ctx_field = folio_field, ctx_field

    def _note(self, handles):
        self.seen.update(getattr(self.sim_ref[0].folios, self.folio_field)[handles].tolist())

    def added(self, ctx, handles):
        self._note(handles)
        super().added(ctx, handles)

    def accessed(self, ctx, handles):
        self._note(handles)
        super().accessed(ctx, handles)

    def evict(self, ctx, n):
        self.asked.add(getattr(ctx, self.ctx_field))
        return super().evict(ctx, n)


def test_parse_scope():
    assert parse_scope(None) == "system" and parse_scope("system") == "system"
    assert parse_scope("node:0") == "node:0"
    assert parse_scope("memcg:/a/b/") == parse_scope("/a/b") == parse_scope("memcg:a/b") == "memcg:/a/b"
    for bad in ("node:x", "node:-1", "memcg:/a/../b", "nonsense"):
        with pytest.raises(Exception, match="scope"):
            parse_scope(bad)


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_a_memcg_policy_sees_only_its_memcg(mode):
    ref: list = []
    pol = Recording(ref)
    ops = ExtOps(pol, scope="memcg:/a")
    sim = sim_of(ops, mode)
    ref.append(sim)
    sim.run(ArrayTrace("t", TRACE))
    ops.finish()
    a = sim.memcg_by_path("a")
    assert pol.seen == {a.id}
    assert pol.asked == {"/a"}
    assert ops.exit.kind == "DONE" and ops.events["topped_up"] == 0
    assert memcg(sim, "/a")["memory_stat"]["pgsteal"] > 0


def test_drivers_agree_with_scoped_policies():
    out = []
    for mode in ("fast", "exact"):
        ops = ExtOps(LRU(), scope="memcg:/a")
        sim = sim_of(ops, mode)
        sim.run(ArrayTrace("t", TRACE[:12_000]))
        ops.switch(FIFO(), 12_000, "memcg:/b")
        sim.run(ArrayTrace("t", TRACE[12_000:]))
        ops.finish()
        out.append((sim.vm, sim.result()["memcgs"], ops.events))
    assert out[0] == out[1]


def test_t8_neighbour_safety_and_fallback_to_the_parent():
    """A policy that raises on memcg a is ejected; memcg b (with its own FIFO) has exactly the
    metrics of a control run in which a ran classic; a falls back to the system policy (its
    parent scope), which adopts a's pages."""
    control_ops = ExtOps(FIFO(), scope="memcg:/b")
    control = sim_of(control_ops)
    control.run(ArrayTrace("t", TRACE))
    control_ops.finish()

    ops = ExtOps(FIFO(), scope="memcg:/b")
    sim = sim_of(ops)
    sim.run(ArrayTrace("t", TRACE[:1]))
    ops.attach(LRU(), "system", 1)                 # the parent scope of a: an LRU
    ops.attach(RaisesAt(5), "memcg:/a", 1)         # memcg a: a policy that raises
    a = sim.memcg_by_path("a")
    assert ops._owner[a.id] is ops.attached["memcg:/a"]
    sim.run(ArrayTrace("t", TRACE[1:]))
    ops.finish()
    sim.check_conservation()
    bad = ops.attached["memcg:/a"]
    assert bad.host.exit.kind == "ERROR_POLICY" and "policy bug" in bad.host.exit.reason
    assert ops._owner[a.id] is ops.attached["system"]      # fell back to the parent scope
    assert ops.attached["system"].host.exit.kind == "DONE"
    assert ops.attached["system"].events["topped_up"] == 0  # it chose a's victims from then on
    assert ops.enable_seq == 3
    b_ctl, b_run = memcg(control, "/b"), memcg(sim, "/b")
    for key in ("memory_stat", "memory_events", "usage", "peak", "lru_sizes"):
        assert b_run[key] == b_ctl[key], key
    assert ops.attached["memcg:/b"].events == control_ops.attached["memcg:/b"].events
    assert memcg(sim, "/a")["memory_stat"]["pgsteal"] > 0


def test_ejection_without_a_parent_policy_falls_back_to_classic():
    ops = ExtOps(RaisesAt(3), scope="memcg:/a")
    sim = sim_of(ops)
    sim.run(ArrayTrace("t", TRACE))
    ops.finish()
    sim.check_conservation()
    assert ops.exit.kind == "ERROR_POLICY"
    assert sim.memcg_by_path("a").id not in ops._owner  # classic alone governs a now


class OtherScope(Policy):
    """Attached to memcg a, it names a page of memcg b (set by the test)."""

    evil = None

    def evict(self, ctx, n):
        return [self.evil] if self.evil is not None else []


def test_t3_a_handle_from_another_memcg_ends_the_policy():
    pol = OtherScope()
    ops = ExtOps(pol, scope="memcg:/a", starve_limit=10_000)
    sim = sim_of(ops)
    sim.run(ArrayTrace("t", TRACE[:4000]))
    f = sim.folios
    b = sim.memcg_by_path("b")
    live_b = np.flatnonzero(((f.flags[: f.count] & (1 << 11)) != 0) & (f.memcg[: f.count] == b.id))
    pol.evil = int(live_b[0])
    sim.run(ArrayTrace("t", TRACE[4000:]))
    ops.finish()
    sim.check_conservation()
    ex = ops.exit
    assert ex.kind == "ERROR" and "outside the policy's scope (memcg:/a)" in ex.reason
    assert f.flags[pol.evil] & (1 << 11)  # the named page of b was not evicted because of it


# ---- R7: helper permissions (T7) ----------------------------------------------------------------


class MovesInInit(Policy):
    def init(self, ctx):
        self.q = IndexedList()
        self.q.push_head(0)  # no page exists yet: changing a list in init is forbidden

    def added(self, ctx, handles):
        pass


class SwallowsTheError(Policy):
    def init(self, ctx):
        self.t = ScoreTable()
        try:
            self.t.set([1, 2], [0.0, 1.0])
        except Exception:  # noqa: BLE001 - the policy hides it; the core still sees it
            pass


class ChangesInDump(list_lru()):
    def evict(self, ctx, n):
        raise RuntimeError("bye")

    def dump(self, ctx):
        self.q.push_head(10**9)
        return "changed"


def small_cache_trace(n=3000):
    rec = make_records(n)
    rec["kind"] = Kind.FILE_FD
    rec["page"] = (np.random.default_rng(0).zipf(1.2, n) % 300).astype(np.uint64)
    return ArrayTrace("z", rec)


@pytest.mark.parametrize("cls", [MovesInInit, SwallowsTheError])
def test_t7_forbidden_helper_in_init_is_an_error(cls):
    ref = run_cache(small_cache_trace(), list_lru()(), 50, check=True)
    res = run_cache(small_cache_trace(), cls(), 50, check=True)
    ex = res["exit"]
    assert ex["kind"] == "ERROR" and ex["hook"] == "init" and "rule R7" in ex["reason"]
    assert res["misses"] == ref["misses"]  # the fallback (LRU) ran the whole trace


def test_t7_forbidden_helper_in_init_inside_the_reclaim_core():
    ops = ExtOps(MovesInInit())
    sim = Simulator(SimConfig(memory_pages=512, swap_pages=0, check=True), ops)
    sim.run(small_cache_trace())
    ops.finish()
    assert ops.exit.kind == "ERROR" and "rule R7" in ops.exit.reason


def test_a_dump_may_not_change_lists():
    res = run_cache(small_cache_trace(), ChangesInDump(), 50, check=True)
    ex = res["exit"]
    assert ex["kind"] == "ERROR_POLICY" and ex["dump"].startswith("(dump failed: HelperNotAllowed")


# ---- R11: bounded resources ---------------------------------------------------------------------


class Leaks(LRU):
    """The LRU plug-in plus an unbounded history of every page it ever saw (a ghost list
    without a bound)."""

    def init(self, ctx):
        super().init(ctx)
        self.seen = ScoreTable()

    def added(self, ctx, handles):
        super().added(ctx, handles)
        self.seen.set(handles, ctx.when)


class ManyLists(Policy):
    def added(self, ctx, handles):
        self.lists = [IndexedList() for _ in range(5000)]


def test_r11_entries_over_the_cap_end_the_policy():
    trace = small_cache_trace(20_000)
    ok = run_cache(trace, LRU(), 50, entry_cap=100)
    assert ok["exit"]["kind"] == "DONE"
    res = run_cache(trace, Leaks(), 50, check=True, entry_cap=100)
    ex = res["exit"]
    assert ex["kind"] == "ERROR" and "over the cap of 100" in ex["reason"] and "R11" in ex["reason"]
    assert res["misses"] == ok["misses"]  # LRU until ejected, the LRU fallback after: same misses


def test_r11_too_many_lists_end_the_policy():
    res = run_cache(small_cache_trace(), ManyLists(), 50, check=True)
    assert res["exit"]["kind"] == "ERROR" and "lists/tables" in res["exit"]["reason"]


def test_ghost_table_capacity_over_the_cap():
    from reclaim_ext.ext import GhostTable

    class BigGhost(Policy):
        def init(self, ctx):
            self.g = GhostTable(10**9)

    res = run_cache(small_cache_trace(), BigGhost(), 50, check=True)
    assert res["exit"]["kind"] == "ERROR" and "ghost table" in res["exit"]["reason"]


# ---- the command line ---------------------------------------------------------------------------


def test_cli_scope_runs_and_reports_each_attachment():
    out = run_json("--workload", "mixed", "-p", "procs=2", "-p", "accesses=40000", "--memory", "32MiB",
                   "--memcg", "name=a,pids=0,max=4MiB", "--memcg", "name=b,pids=1", "--policy", "lru",
                   "--scope", "memcg:/a", "--switch", "20000:fifo@memcg:/b")
    scopes = {s["scope"]: s for s in out["ext"]["scopes"]}
    assert set(scopes) == {"memcg:/a", "memcg:/b"}
    assert scopes["memcg:/a"]["policy"] == "lru" and scopes["memcg:/b"]["policy"] == "fifo"
    assert all(s["exit"]["kind"] == "DONE" for s in scopes.values())
    assert out["ext"]["enable_seq"] == 2


@pytest.mark.parametrize("args,msg", [
    (["--policy", "lru", "--scope", "memcg:/zz"], "no such memcg"),
    (["--policy", "classic", "--scope", "memcg:/a"], "scopes are for reclaim_ext policies"),
    (["--policy", "lru", "--scope", "node:3"], "no such node"),
    (["--policy", "lru", "--scope", "bogus"], "is not system, node:N or memcg:PATH"),
    (["--policy", "lru", "--switch", "10:fifo@"], "AT:POLICY@SCOPE"),
])
def test_cli_bad_scopes(args, msg):
    r = invoke("run", "--workload", "mixed", "-p", "procs=2", "--memcg", "name=a,pids=0", *args)
    assert r.exit_code == 2 and msg in r.stderr and "Traceback" not in r.stderr


def test_cache_mode_has_no_scopes():
    r = invoke("run", "--cache", "--capacity", "100", "--policy", "lru", "--scope", "node:0")
    assert r.exit_code == 2 and "plain-cache mode" in r.stderr

