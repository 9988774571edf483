"""Compiled hooks (reclaim_ext.ext.compiled) in plain-cache mode: the compiled plug-ins take
exactly their Python twins' misses (and libcachesim's where the twins match it); a compiled hook
that raises, an on_evict that answers garbage and hooks that do not compile are ejected like a
Python policy, the fallback finishes the run without losing a page, and the counters are the
Python path's for the same policy logic; switching to and from compiled policies; the reclaim
core runs them through the Python API; a compiled hook that never returns meets the watchdog's
last resort (compiled code cannot be interrupted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import list_lru
from numba import njit

from reclaim_ext.ext.cache import run_cache
from reclaim_ext.ext.compiled import CompiledPolicy
from reclaim_ext.plugins.lru import LRU
from reclaim_ext.plugins.lru_compiled import LRUCompiled, _evict as lru_evict, _removed as lru_removed, \
    _touch as lru_touch
from reclaim_ext.plugins.s3fifo import S3FIFO
from reclaim_ext.plugins.s3fifo_compiled import MAIN, QUEUE, S3FIFOCompiled
from reclaim_ext.trace import ArrayTrace, Kind
from reclaim_ext.trace.record import make_records

HERE = os.path.dirname(os.path.abspath(__file__))


def trace_of(ids) -> ArrayTrace:
    ids = np.asarray(ids, dtype=np.uint64)
    rec = make_records(len(ids))
    rec["kind"] = Kind.FILE_FD
    rec["page"] = ids
    return ArrayTrace("t", rec)


def zipf(n=40_000, objects=3_000, alpha=1.1, seed=1) -> ArrayTrace:
    rng = np.random.default_rng(seed)
    return trace_of(rng.zipf(alpha, n) % objects)


def loop(pages=700, passes=8) -> ArrayTrace:
    return trace_of(np.tile(np.arange(pages), passes))


def mixed(seed=3) -> ArrayTrace:
    """Zipf with scans through it: ghost hits, promotions and the clock all happen."""
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(6):
        parts.append(rng.zipf(1.2, 4_000) % 500)
        parts.append(1_000 + rng.permutation(800))
    return trace_of(np.concatenate(parts))


TRACES = {"zipf": zipf(), "loop": loop(), "mixed": mixed()}
COUNTERS = ("accesses", "hits", "misses", "evictions", "events")


def same(a: dict, b: dict) -> None:
    assert {k: a[k] for k in COUNTERS} == {k: b[k] for k in COUNTERS}
    assert a["exit"]["kind"] == b["exit"]["kind"] == "DONE", (a["exit"], b["exit"])


# ---- the compiled plug-ins are their Python twins ---------------------------------------------------

@pytest.mark.parametrize("trace", list(TRACES))
@pytest.mark.parametrize("cap", [1, 2, 10, 13, 19, 20, 25, 100, 640, 1000])
@pytest.mark.parametrize("compiled,python", [(LRUCompiled, LRU), (S3FIFOCompiled, S3FIFO)], ids=["lru", "s3fifo"])
def test_compiled_plugin_equals_its_python_twin(compiled, python, trace, cap):
    a = run_cache(TRACES[trace], compiled(), cap, check=True)
    b = run_cache(TRACES[trace], python(), cap, check=True)
    same(a, b)


@pytest.mark.parametrize("ghost", [0.0, 0.1, 0.5, 0.9, 2.0])
@pytest.mark.parametrize("cap", [10, 20, 57, 300])
def test_compiled_s3fifo_ghost_sizes_and_thresholds_equal_the_python_twin(ghost, cap):
    for small, threshold in ((0.10, 2), (0.25, 1), (0.05, 3)):
        a = run_cache(TRACES["mixed"], S3FIFOCompiled(small, ghost, threshold), cap, check=True)
        b = run_cache(TRACES["mixed"], S3FIFO(small, ghost, threshold), cap, check=True)
        same(a, b)


def test_compiled_s3fifo_incoming_object_leaves_the_ghost_before_the_victim_enters_it():
    # as test_plugins_adaptive: a 2-entry ghost holds {1, 2}, 1 the oldest, when the miss on 1
    # evicts small's 21 into it. libCacheSim looks 1 up (and drops it) first: a ghost hit, so 1
    # goes to main and the ghost ends as {2, 21}.
    ids = list(range(1, 21)) + [21, 22, 1]
    p = S3FIFOCompiled(ghost_size_ratio=0.1)
    res = run_cache(trace_of(ids), p, 20, check=True)
    # handles follow first appearance: page k (1..22) is handle k - 1
    rows, s = p.arrays
    assert rows[0, QUEUE] == MAIN
    assert {h + 1 for h in range(22) if rows[h, 6]} == {2, 21}
    assert res["misses"] == run_cache(trace_of(ids), S3FIFO(ghost_size_ratio=0.1), 20)["misses"] == 23


def _stored_reference():
    with open(os.path.join(HERE, "data", "cache_reference.json")) as fh:
        ref = json.load(fh)
    entry = ref["traces"]["cloudPhysicsIO"]
    return entry, [(name, plug, int(cap)) for name, plug in (("lru-compiled", "lru"), ("s3fifo-compiled", "s3fifo"))
                   for cap in entry["miss_ratio"][plug]]


_ENTRY, _REF_CASES = _stored_reference()


@pytest.mark.parametrize("name,plugin,cap", _REF_CASES, ids=[f"{n}-{c}" for n, _, c in _REF_CASES])
def test_compiled_plugins_take_libcachesims_stored_misses(name, plugin, cap):
    from reclaim_ext.policies import get_policy
    from reclaim_ext.trace import open_trace

    path = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "traces", _ENTRY["file"]))
    if not os.path.exists(path):
        pytest.skip(f"{path} not present")
    res = run_cache(open_trace(path, _ENTRY["format"]), get_policy(name), cap, check=True)
    assert res["exit"]["kind"] == "DONE", res["exit"]
    assert res["misses"] == round(_ENTRY["miss_ratio"][plugin][str(cap)] * _ENTRY["requests"])


def test_compiled_s3fifo_takes_libcachesims_misses_on_a_fresh_trace(tmp_path):
    import libcachesim as lcs

    from reclaim_ext.bench.reference import write_oracle_general

    rng = np.random.default_rng(11)
    ids = (rng.zipf(1.2, 30_000) % 5000).astype(np.uint64)
    path = str(tmp_path / "z.oracleGeneral.bin")
    write_oracle_general(ids, path)
    for cap in (20, 21, 50, 700):  # libCacheSim refuses below 10 and admits nothing from 10 to 19
        reader = lcs.TraceReader(path, lcs.TraceType.ORACLE_GENERAL_TRACE, lcs.ReaderInitParam(ignore_obj_size=True))
        mr, _ = lcs.S3FIFO(cap).process_trace(reader)
        assert run_cache(trace_of(ids), S3FIFOCompiled(), cap, check=True)["misses"] == round(mr * len(ids)), cap


# ---- broken compiled hooks: ejected as a Python policy is -------------------------------------------
# FaultyLRU: LRUCompiled whose hook number `which` (0 on_hit, 1 on_admit, 2 on_evict, 3 on_removed)
# raises, or whose on_evict answers `bad` (1 forged: -1, 2 forged: beyond the handles issued,
# 3 not resident: the incoming page), at its first call at access `at` or later.

@njit(cache=True)
def _fault(state, which, now):
    cfg = state[2]
    if cfg[0] == which and now >= cfg[1]:
        raise ValueError("injected fault")


@njit(cache=True)
def _f_hit(state, h, now):
    _fault(state, 0, now)
    lru_touch((state[0], state[1]), h, now)


@njit(cache=True)
def _f_admit(state, h, now):
    _fault(state, 1, now)
    lru_touch((state[0], state[1]), h, now)


@njit(cache=True)
def _f_evict(state, incoming, now):
    _fault(state, 2, now)
    cfg = state[2]
    if cfg[2] and now >= cfg[1]:
        if cfg[2] == 1:
            return -1
        if cfg[2] == 2:
            return 10_000_000
        return incoming
    return lru_evict((state[0], state[1]), incoming, now)


@njit(cache=True)
def _f_removed(state, h, now):
    _fault(state, 3, now)
    lru_removed((state[0], state[1]), h, now)


class FaultyLRU(CompiledPolicy):
    name = "faulty-lru"
    handle_arrays = LRUCompiled.handle_arrays
    on_hit, on_admit, on_evict, on_removed = _f_hit, _f_admit, _f_evict, _f_removed

    def __init__(self, which=-1, at=0, bad=0):
        self.cfg = (which, at, bad)

    def state(self, ctx):
        return (np.array([-1, -1, 0], dtype=np.int64), np.array(self.cfg, dtype=np.int64))

    def dump(self, ctx):
        return f"{int(self.arrays[1][2])} pages on the list"


PyLRU = list_lru()  # one evict() per miss, hits one accessed() per run of hits: the Python path


class FaultyPyLRU(PyLRU):
    """The Python twin of FaultyLRU: raises in the matching hook at the same access."""

    def __init__(self, hook, at):
        self.hook, self.at = hook, at

    def _fault(self, hook, ctx):
        when = ctx.when if hook != "evict" else [ctx.now]
        if hook == self.hook and max(when) >= self.at:
            raise ValueError("injected fault")

    def accessed(self, ctx, handles):
        self._fault("accessed", ctx)
        super().accessed(ctx, handles)

    def added(self, ctx, handles):
        self._fault("added", ctx)
        super().added(ctx, handles)

    def evict(self, ctx, n):
        self._fault("evict", ctx)
        return super().evict(ctx, n)

    def removed(self, ctx, handles):
        self._fault("removed", ctx)
        super().removed(ctx, handles)


HOOKS = [("on_hit", "accessed"), ("on_admit", "added"), ("on_evict", "evict"), ("on_removed", "removed")]


@pytest.mark.parametrize("which", range(4), ids=[h for h, _ in HOOKS])
@pytest.mark.parametrize("at", [0, 9_000, 25_001])
def test_a_raising_compiled_hook_is_ejected_like_a_python_one(which, at):
    trace = TRACES["zipf"]
    a = run_cache(trace, FaultyLRU(which, at), 200, check=True)
    b = run_cache(trace, FaultyPyLRU(HOOKS[which][1], at), 200, check=True)
    ex = a["exit"]
    assert ex["kind"] == "ERROR_POLICY" and ex["hook"] == HOOKS[which][0], ex
    assert ex["reason"] == "ValueError: injected fault" and "ValueError" in ex["traceback"]
    assert ex["at_access"] >= at and ex["dump"].endswith("pages on the list")
    assert b["exit"]["kind"] == "ERROR_POLICY"
    # the same hits, misses, evictions and events (a failed evict: one top-up, as in Python)
    for k in ("accesses", "hits", "misses", "evictions", "events"):
        assert a[k] == b[k], k
    assert a["events"]["topped_up"] == (1 if which == 2 else 0)
    assert a["misses"] == run_cache(trace, LRU(), 200)["misses"]  # LRU, then the fallback LRU


@pytest.mark.parametrize("bad,reason", [
    (1, "on_evict() returned handle -1, which the core never issued (forged)"),
    (2, "on_evict() returned handle 10000000, which the core never issued (forged)"),
    (3, "which is not resident (a compiled evict must name a resident page)"),
])
def test_a_compiled_evict_answering_garbage_is_ejected(bad, reason):
    trace = TRACES["zipf"]
    res = run_cache(trace, FaultyLRU(-1, 5_000, bad), 200, check=True)
    ex = res["exit"]
    assert ex["kind"] == "ERROR" and ex["hook"] == "on_evict" and reason in ex["reason"], ex
    assert ex["at_access"] >= 5_000
    assert res["accesses"] == 40_000 and res["events"]["topped_up"] == 1
    assert res["misses"] == run_cache(trace, LRU(), 200)["misses"]


@njit(cache=True)
def _float_evict(state, incoming, now):
    return 1.5


def _py_evict(state, incoming, now):
    return 0


class FloatEvict(LRUCompiled):
    on_evict = _float_evict


class PlainFunction(LRUCompiled):
    on_evict = _py_evict


class NoEvict(LRUCompiled):
    on_evict = None


@pytest.mark.parametrize("cls,kind,reason", [
    (FloatEvict, "ERROR", "on_evict returns float64, not an integer handle"),
    (PlainFunction, "ERROR_POLICY", "compiled hook on_evict is a function, not a numba @njit function"),
    (NoEvict, "ERROR_POLICY", "compiled hook on_evict is missing"),
])
def test_hooks_that_cannot_run_are_ejected_at_the_start(cls, kind, reason):
    res = run_cache(TRACES["zipf"], cls(), 200, check=True)
    assert res["exit"]["kind"] == kind and reason in res["exit"]["reason"], res["exit"]
    assert res["exit"]["at_access"] == 0
    assert res["misses"] == run_cache(TRACES["zipf"], LRU(), 200)["misses"]


@njit(cache=True)
def _dynamic_raise_hit(state, h, now):
    if now >= 7_000:
        raise ValueError("hit on handle", h)  # a non-constant argument: needs numba's runtime
    lru_touch(state, h, now)


class DynamicRaise(LRUCompiled):
    on_hit = _dynamic_raise_hit


class DynamicRaiseNRT(DynamicRaise):
    nrt = True


def test_hooks_that_need_numbas_runtime_run_with_nrt_true():
    lean = run_cache(TRACES["zipf"], DynamicRaise(), 200, check=True)
    assert lean["exit"]["kind"] == "ERROR" and "set nrt = True on the policy class" in lean["exit"]["reason"]
    res = run_cache(TRACES["zipf"], DynamicRaiseNRT(), 200, check=True)
    ex = res["exit"]
    assert ex["kind"] == "ERROR_POLICY" and ex["hook"] == "on_hit" and ex["at_access"] >= 7_000, ex
    assert ex["reason"].startswith("ValueError: ") and "hit on handle" in ex["reason"]
    assert res["misses"] == lean["misses"] == run_cache(TRACES["zipf"], LRU(), 200)["misses"]


# ---- switching, the reclaim core -----------------------------------------------------------------------

def test_switching_to_and_from_compiled_policies():
    trace = TRACES["zipf"]
    plan = [(4_000, S3FIFOCompiled()), (15_000, LRUCompiled()), (25_000, None), (32_000, S3FIFOCompiled())]
    twin = [(4_000, S3FIFO()), (15_000, LRU()), (25_000, None), (32_000, S3FIFO())]
    a = run_cache(trace, LRU(), 300, check=True, switches=plan)
    b = run_cache(trace, LRU(), 300, check=True, switches=twin)
    assert [e["kind"] for e in a["exits"]] == ["UNREG"] * 4 + ["DONE"]
    for k in ("hits", "misses", "evictions"):
        assert a[k] == b[k], k
    c = run_cache(trace, S3FIFOCompiled(), 300, check=True, switches=[(20_000, S3FIFO())])
    d = run_cache(trace, S3FIFO(), 300, check=True, switches=[(20_000, S3FIFOCompiled())])
    assert c["misses"] == d["misses"] == run_cache(trace, S3FIFO(), 300, switches=[(20_000, S3FIFO())])["misses"]


def _core_run(policy, kind):
    from reclaim_ext.api import RunConfig, run

    return run(RunConfig(policy=policy, workload="zipf", memory=512, swap=2048, check=True,
                         workload_params=dict(pages=3_000, accesses=30_000, kind=kind)))


@pytest.mark.parametrize("compiled,python", [("lru-compiled", "lru"), ("s3fifo-compiled", "s3fifo")])
def test_the_reclaim_core_runs_a_compiled_policy_as_its_python_twin(compiled, python):
    """In the reclaim core a compiled policy answers evict(ctx, n) with n victims (on_evict, then
    on_removed before the next one), so it decides every eviction, as its Python twin does:
    the same misses and reclaim counters on read()s, no top-up by the core. (S3-FIFO's ghost
    may differ by a miss: in the core the incoming page is not known at eviction, and the
    compiled on_removed puts a victim into the ghost at once, the Python twin at the next add.)"""
    a, b = _core_run(compiled, "file"), _core_run(python, "file")
    assert a["exit"]["kind"] == b["exit"]["kind"] == "DONE", a["exit"]
    assert a["ext"]["events"]["topped_up"] == 0 and b["ext"]["events"]["topped_up"] == 0
    assert a["vmstat"]["pgsteal_kswapd"] > 0
    if python == "lru":
        assert a["misses"] == b["misses"] and a["vmstat"] == b["vmstat"]
    else:
        assert abs(a["misses"] - b["misses"]) <= b["misses"] // 1000


def test_victims_the_core_keeps_come_back_to_a_compiled_policy():
    """Mapped pages: the core keeps (activates) a victim whose PTE is young; evict() had taken it
    out of the policy, so it comes back as admitted and the policy still holds every resident
    page of its lruvec (its list length), with no top-up and the conservation check on."""
    from reclaim_ext.core.engine import SimConfig, Simulator
    from reclaim_ext.ext.adapter import ExtOps
    from reclaim_ext.machine.folio import PG_resident
    from reclaim_ext.trace.generators import make_workload

    pol = LRUCompiled()
    ops = ExtOps(pol)
    sim = Simulator(SimConfig(memory_pages=512, swap_pages=2048, check=True), ops)
    sim.run(make_workload("zipf", pages=3_000, accesses=30_000, kind="mmap"))
    ops.finish()
    assert ops.exit.kind == "DONE" and ops.events["topped_up"] == 0
    assert sim.vm["pgactivate"] > 0  # victims kept
    resident = int(((sim.folios.flags[: sim.folios.count] & PG_resident) != 0).sum())
    assert int(pol.arrays[1][2]) == resident == int(pol._resident.sum())


# ---- liveness: the watchdog times each block of the compiled loop ----------------------------------------

SPIN = """
import numpy as np
from numba import njit
from reclaim_ext.ext.cache import run_cache
from reclaim_ext.plugins.lru_compiled import LRUCompiled, _evict
from reclaim_ext.trace import ArrayTrace, Kind
from reclaim_ext.trace.record import make_records

@njit(cache=True)
def spin_evict(state, incoming, now):
    s = state[1]  # LRU's head, tail, length, and a flag
    if now >= 3000 and s[3] == 0:
        x = np.uint64(88172645463325252)
        for i in range(SPINS):  # xorshift: no closed form, no early exit
            x ^= x << np.uint64(13)
            x ^= x >> np.uint64(7)
            x ^= x << np.uint64(17)
            if x == np.uint64(0):
                break
        s[3] = 1 if x != np.uint64(0) else 2
    return _evict(state, incoming, now)

class Spin(LRUCompiled):
    name = "spin"
    on_evict = spin_evict

    def state(self, ctx):
        return (np.array([-1, -1, 0, 0], dtype=np.int64),)

rng = np.random.default_rng(1)
rec = make_records(8000)
rec["kind"] = Kind.FILE_FD
rec["page"] = (rng.zipf(1.1, 8000) % 2000).astype(np.uint64)
res = run_cache(ArrayTrace("z", rec), Spin(), 100, check=True, hook_budget=BUDGET)
print(res["exit"]["kind"], res["exit"]["hook"], res["accesses"], "|", res["exit"]["reason"])
"""


def _spin(tmp_path, spins: str, budget: float):
    src = tmp_path / "spin.py"
    src.write_text(SPIN.replace("SPINS", spins).replace("BUDGET", repr(budget)))
    return subprocess.run([sys.executable, str(src)], capture_output=True, text=True, timeout=120)


def test_a_compiled_block_past_its_budget_is_ejected_once_it_returns(tmp_path):
    r = _spin(tmp_path, "400_000_000", 0.05)  # ~0.4 s or more: past 0.05 s, well within the 2 s grace
    assert r.returncode == 0, r.stderr
    kind, hook, accesses, _, reason = r.stdout.split(maxsplit=4)
    assert (kind, hook, accesses) == ("ERROR_STALL", "None", "8000"), r.stdout
    assert reason.startswith("compiled hooks ran longer than 0.05 s on accesses 0 to 7,999")


def test_a_compiled_hook_that_never_returns_meets_the_last_resort(tmp_path):
    r = _spin(tmp_path, "2**62", 0.2)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    assert r.stderr.splitlines() == ["reclaim-ext: error: policy spin: compiled hooks ran past its 0.2 s budget and "
                                     "could not be stopped (compiled code cannot be interrupted); gave up 2 s later"]


def test_docs_example_is_the_shipped_lru(tmp_path):
    """The minimal example in docs/writing-policies.md runs and equals the lru plug-in."""
    doc = open(os.path.join(HERE, "..", "docs", "writing-policies.md")).read()
    start = doc.index("## Compiled hooks")
    code = doc[doc.index("```python", start) + len("```python"): doc.index("```", doc.index("```python", start) + 9)]
    mod = tmp_path / "doc_compiled.py"
    mod.write_text(textwrap.dedent(code))
    from reclaim_ext.policies import get_policy

    a = run_cache(TRACES["zipf"], get_policy(f"{mod}"), 150, check=True)
    same(a, run_cache(TRACES["zipf"], LRU(), 150, check=True))
