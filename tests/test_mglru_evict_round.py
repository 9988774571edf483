"""MGLRU's evict_folios as one compiled call (evict_round) is its per-step Python path: on the
same state both leave the same folios, lists, generations, PID counters, shadows, swap slots,
counters and scan_control, batch after batch of real runs (each batch is run both ways from one
snapshot); and the cases evict_round does not cover take the Python path."""

from __future__ import annotations

import numpy as np
import pytest

from numba import njit

from reclaim_ext.core import vmscan
from reclaim_ext.core.engine import OutOfMemory, SimConfig, Simulator
from reclaim_ext.core.kswapd import lists_fit
from reclaim_ext.core.ops import ScanControl
from reclaim_ext.core.vmscan import _KEEP, shrink_folio_list_tail
from reclaim_ext.machine.folio import LRU_ANON, NO_LIST, PG_active, PG_mlocked, PG_resident
from reclaim_ext.machine.memcg import MemcgConfig
from reclaim_ext.policies import get_policy
from reclaim_ext.policies import mglru
from reclaim_ext.policies.mglru import MGLRU
from reclaim_ext.trace import make_workload

_SCALARS = (int, float, bool, np.integer, np.floating, np.bool_, type(None))


def _objects(sim, lruvec, sc) -> dict:
    """Every object evict_folios (and the aging that may end try_to_shrink_lruvec's loop) may
    change, by name."""
    lg = sim.ops.lrugen(lruvec)
    objs = {"sim": sim, "folios": sim.folios, "ptes": sim.ptes, "swap": sim.swap, "table": lruvec.table,
            "lrugen": lg, "bloom": lg.bloom, "walk_state": lg.bloom.walk_state, "pmds": sim.mm.pmds,
            "node": lruvec.node, "sc": sc, "sc.nr": sc.nr, "lruvec": lruvec}
    for m in sim._memcg_list:
        objs[f"memcg{m.id}"] = m
    for k, fl in enumerate(lruvec.lists):
        objs[f"list{k}"] = fl
    return objs


def _fields(obj) -> dict:
    d = obj.__dict__ if hasattr(obj, "__dict__") else {}
    if hasattr(obj, "__slots__"):
        d = {**d, **{k: getattr(obj, k) for k in obj.__slots__ if hasattr(obj, k)}}
    return d


def snapshot(sim, lruvec, sc) -> dict:
    """Copies of the arrays, numbers, lists of numbers and counter dicts of _objects."""
    snap = {}
    for name, obj in _objects(sim, lruvec, sc).items():
        for k, v in _fields(obj).items():
            if isinstance(v, np.ndarray):
                snap[name, k] = v.copy()
            elif isinstance(v, _SCALARS):
                snap[name, k] = v
            elif isinstance(v, list) and all(isinstance(x, _SCALARS) for x in v):
                snap[name, k] = list(v)
            elif isinstance(v, list) and all(isinstance(x, np.ndarray) or x is None for x in v):
                snap[name, k] = [None if x is None else x.copy() for x in v]
            elif isinstance(v, dict) and all(isinstance(x, _SCALARS) for x in v.values()):
                snap[name, k] = dict(v)
    return snap


def restore(sim, lruvec, sc, snap: dict) -> None:
    """Put the snapshot back (arrays in place where they can be: others may view them)."""
    objs = _objects(sim, lruvec, sc)
    for (name, k), v in snap.items():
        obj = objs[name]
        cur = getattr(obj, k)
        if isinstance(v, np.ndarray) and isinstance(cur, np.ndarray) and cur.shape == v.shape \
                and not name.startswith("list"):
            cur[...] = v
        elif isinstance(v, np.ndarray):
            setattr(obj, k, v.copy())
        elif isinstance(v, dict):
            cur.clear()
            cur.update(v)
        elif isinstance(v, list) and isinstance(cur, list):
            cur[:] = [x.copy() if isinstance(x, np.ndarray) else x for x in v]
        else:
            setattr(obj, k, v)


def differences(a: dict, b: dict, sim) -> list[str]:
    """What differs between two snapshots (lists compared by their folios, tail first)."""
    out = []
    for key in sorted(set(a) | set(b), key=str):
        name, k = key
        if name.startswith("list") or (name == "sim" and k == "_hook_out"):
            continue
        x, y = a.get(key), b.get(key)
        same = np.array_equal(x, y) if isinstance(x, np.ndarray) else (
            all(np.array_equal(p, q) for p, q in zip(x, y)) and len(x) == len(y)
            if isinstance(x, list) and x and isinstance(x[0], np.ndarray) else x == y)
        if not same:
            if isinstance(x, dict):
                out.append(f"{name}.{k}: " + ", ".join(f"{c} {x.get(c)} != {y.get(c)}" for c in sorted(set(x) | set(y))
                                                          if x.get(c) != y.get(c)))
            else:
                out.append(f"{name}.{k}")
    return out


def list_contents(sim, lruvec) -> list[list[int]]:
    return [fl.valid_ids(sim.folios).tolist() for fl in lruvec.lists]


def both_ways(diffs, sim, lruvec, sc, compiled_path, python_path):
    """Run the compiled path, snapshot, restore, run the Python path from the same state; add
    what differs (state, list contents, return value) to `diffs`. Returns the Python path's
    result (the run goes on from its state)."""
    before = snapshot(sim, lruvec, sc)
    got = compiled_path()
    compiled, clists = snapshot(sim, lruvec, sc), list_contents(sim, lruvec)
    restore(sim, lruvec, sc, before)
    want = python_path()
    python, plists = snapshot(sim, lruvec, sc), list_contents(sim, lruvec)
    d = differences(compiled, python, sim)
    if clists != plists:
        d.append("lists")
    if got != want:
        d.append(f"returned {got} != {want}")
    if d:
        diffs.append(d)
    return want


class Both:
    """MGLRU.evict_folios replaced by: evict_round and the Python path from one snapshot,
    compared; the run goes on from the Python path's state."""

    def __init__(self, monkeypatch):
        self.compared = 0
        self.direct = 0  # of them, direct reclaim's (no walk struct)
        self.diffs: list = []
        orig = MGLRU.evict_folios

        def evict_folios(ops, sim, lruvec, sc, nr_to_scan, swappiness):
            if not ops.evict_compiled(sim, lruvec, sc):
                return orig(ops, sim, lruvec, sc, nr_to_scan, swappiness)
            def python():
                monkeypatch.setattr(MGLRU, "evict_compiled", lambda *a: False)
                want = orig(ops, sim, lruvec, sc, nr_to_scan, swappiness)
                monkeypatch.setattr(MGLRU, "evict_compiled", compiled_check)
                return want

            want = both_ways(self.diffs, sim, lruvec, sc,
                             lambda: ops._evict_round(sim, lruvec, sc, nr_to_scan, swappiness), python)
            self.compared += 1
            self.direct += not sc.kswapd
            return want

        compiled_check = MGLRU.evict_compiled
        monkeypatch.setattr(MGLRU, "evict_folios", evict_folios)
        monkeypatch.setattr(MGLRU, "loop_compiled", lambda *a: False)  # the loop calls evict_folios


class BothLoops:
    """MGLRU._shrink_loop replaced by: the compiled loop (shrink_lruvec_loop) and the per-step
    Python loop from one snapshot, compared; the run goes on from the Python loop's state."""

    def __init__(self, monkeypatch):
        self.compared = self.aged = self.reentered = 0
        self.diffs: list = []
        orig, orig_loop = MGLRU._shrink_loop, mglru.shrink_lruvec_loop

        def counting_loop(*a):
            got = orig_loop(*a)
            self.reentered += got[0] == mglru.LOOP_ROOM
            return got

        def shrink_loop(ops, sim, lruvec, sc, swp):
            if not ops.loop_compiled(sim, lruvec, sc):
                return orig(ops, sim, lruvec, sc, swp)
            def python():
                monkeypatch.setattr(MGLRU, "loop_compiled", lambda *a: False)
                want = orig(ops, sim, lruvec, sc, swp)
                monkeypatch.setattr(MGLRU, "loop_compiled", loop_check)
                return want

            want = both_ways(self.diffs, sim, lruvec, sc, lambda: orig(ops, sim, lruvec, sc, swp), python)
            self.compared += 1
            self.aged += bool(want)
            return want

        loop_check = MGLRU.loop_compiled
        monkeypatch.setattr(MGLRU, "_shrink_loop", shrink_loop)
        monkeypatch.setattr(mglru, "shrink_lruvec_loop", counting_loop)


def run(policy="mglru", mechanisms=None, memcgs=(), **config) -> Simulator:
    workload = config.pop("workload", "mixed")
    params = config.pop("params", {})
    cfg = dict(memory_pages=3000, swap_pages=3000, mode="fast", check=False)
    cfg.update(config)
    sim = Simulator(SimConfig(**cfg, memcgs=list(memcgs)), get_policy(policy, mechanisms))
    try:
        sim.run(make_workload(workload, **params))
    except OutOfMemory:
        pass
    return sim


CASES = {
    "mixed": {"params": {"accesses": 150_000, "anon_pages": 600, "file_pages": 900, "exec_pages": 100}},
    "anon-dirty": {"workload": "zipf", "params": {"accesses": 100_000, "pages": 5000, "kind": "anon",
                                                     "write_ratio": 0.5}},
    "mmap-writes": {"workload": "zipf", "params": {"accesses": 100_000, "pages": 5000, "kind": "mmap",
                                                      "write_ratio": 0.3}},
    "no-swap": {"swap_pages": 0, "params": {"accesses": 100_000, "anon_pages": 300, "file_pages": 1500}},
    # direct reclaim of two memcgs at their memory.max (no walk struct: look_around_activate), one
    # under a memory.swap.max
    "memcg-limits": {"memory_pages": 6000, "params": {"accesses": 100_000, "procs": 2, "anon_pages": 800,
                                                       "file_pages": 900},
                     "memcgs": (MemcgConfig("a", pids=[0], max=1200, swap_max=300),
                                MemcgConfig("b", pids=[1], max=1500))},
    "swap-full": {"swap_pages": 200, "params": {"accesses": 100_000, "anon_pages": 500, "file_pages": 900}},
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("mechanisms", [None, "-lookaround", "-ptwalk"])
def test_evict_round_equals_python_path(case, mechanisms, monkeypatch):
    both = Both(monkeypatch)
    run(mechanisms=mechanisms, **{k: (dict(v) if isinstance(v, dict) else v) for k, v in CASES[case].items()})
    assert both.compared > 20
    assert both.diffs == []
    if "memcgs" in CASES[case]:
        assert both.direct > 0


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("mechanisms", [None, "-lookaround"])
def test_compiled_loop_equals_python_loop(case, mechanisms, monkeypatch):
    """try_to_shrink_lruvec's loop as one compiled call (shrink_lruvec_loop, the arguments built
    once, aging left to Python) leaves the per-step loop's state, call after call; the runs age
    in the loop, and with two memcgs' lruvecs some calls need the lists grown between two
    rounds (LOOP_ROOM)."""
    both = BothLoops(monkeypatch)
    run(mechanisms=mechanisms, **{k: (dict(v) if isinstance(v, dict) else v) for k, v in CASES[case].items()})
    assert both.compared > 20 and both.aged > 0
    assert both.diffs == []
    if case == "memcg-limits":
        assert both.reentered > 0


class Referencing(MGLRU):
    """A plug-in that overrides one of the hooks evict_round has written in."""

    def references(self, sim, lruvec, ids, young, vm_exec, sc):
        return super().references(sim, lruvec, ids, young, vm_exec, sc)


def evict_compiled(ops, mode="fast", check=False, bulk_reclaim=True, kswapd=True) -> bool:
    sim = Simulator(SimConfig(memory_pages=1000, swap_pages=1000, mode=mode, check=check, bulk_reclaim=bulk_reclaim),
                    ops)
    lv = sim.root_lruvec(sim.node)
    return ops.evict_compiled(sim, lv, ScanControl(nr_to_reclaim=32, kswapd=kswapd))


def test_evict_round_runs_for_mglru():
    assert evict_compiled(get_policy("mglru"))
    assert evict_compiled(get_policy("mglru"), kswapd=False)
    assert evict_compiled(get_policy("mglru", "-lookaround,-lockfree"))
    assert evict_compiled(get_policy("mglru", "-lockfree"), kswapd=False)  # look_around_activate


@pytest.mark.parametrize("why", ["mglru-6.12", "check", "no bulk", "plug-in hook", "untrusted",
                                 "lookaround walk without lockfree"])
def test_evict_round_leaves_the_rest_to_the_python_path(why, monkeypatch):
    ops = get_policy("mglru-6.12" if why == "mglru-6.12" else "mglru",
                     "-lockfree" if why == "lookaround walk without lockfree" else None)
    if why == "plug-in hook":
        ops = Referencing()
    if why == "untrusted":
        monkeypatch.setattr(ops, "trusted", False)
    assert not evict_compiled(ops, check=why == "check", bulk_reclaim=why != "no bulk")


def old_unmapped_anon(policy="mglru"):
    """A zipf anon run, then test-only state: its folios out of the two youngest generations and
    unmapped (every PTE cleared: no rmap walk finds them, folio_mapped is false), clean (zram:
    none is in the swap cache)."""
    sim = run(policy, workload="zipf", params={"accesses": 20_000, "pages": 2500, "kind": "anon"},
              memory_pages=3000, swap_pages=6000)
    ops, lv = sim.ops, sim.root_lruvec(sim.node)
    lg = ops.lrugen(lv)
    for _ in range(2):
        ops.inc_max_seq(sim, lv, lg.max_seq, 200)
    ops.try_to_inc_min_seq(lv, 200)  # past empty generations (6.1-6.13 fault the folios in younger)
    sim.ptes.young[:] = False
    sim.ptes.present[:] = False
    return sim, ops, lv


def evict_both_ways(sim, ops, lv, sc, monkeypatch) -> list:
    """evict_folios(64) by evict_round and by the Python path from one snapshot (the compiled
    one first when the policy has it): both leave the same state. Returns the Python path's
    _putback calls (survivors, skip_retry, folios to retry)."""
    compiled = ops.evict_compiled(sim, lv, sc)
    before = snapshot(sim, lv, sc)
    if compiled:
        got = ops.evict_folios(sim, lv, sc, 64, 200)
        after, clists = snapshot(sim, lv, sc), list_contents(sim, lv)
        restore(sim, lv, sc, before)
    putbacks = []
    orig = MGLRU._putback

    def putback(ops, sim, lruvec, keep, skip_retry):
        retry = orig(ops, sim, lruvec, keep, skip_retry)
        putbacks.append((len(keep), skip_retry, len(retry)))
        return retry

    monkeypatch.setattr(MGLRU, "_putback", putback)
    monkeypatch.setattr(MGLRU, "evict_compiled", lambda *a: False)
    want = ops.evict_folios(sim, lv, sc, 64, 200)
    if compiled:
        assert got == want
        assert differences(after, snapshot(sim, lv, sc), sim) == [] and clists == list_contents(sim, lv)
    return putbacks


@njit
def shrink_folio_list_tail_trylock_fails(ids, out, verdict, fl, ftab, ptab, swtab, kswapd, may_writepage, nodev,
                                         s, wb, census, kc):
    """The test's seam: shrink_folio_list with folio_trylock failing on every folio of the batch
    (someone else holds the folio lock), which the kernel keeps at once, untouched and not
    activated (reference §1.9 step 1). The model has no folio lock: the tail runs with every
    outcome KEEP. (The steps the model ran before its tail leave such a folio as it was: an anon
    folio not under writeback, no PTE to walk; only sc->nr_scanned counts it.)"""
    out[:] = _KEEP
    return shrink_folio_list_tail(ids, out, verdict, fl, ftab, ptab, swtab, kswapd, may_writepage, nodev, s, wb,
                                  census, kc)


def test_evict_round_retries_the_clean_survivors(monkeypatch):
    """evict_folios' retry (skip_retry): the survivors of shrink_folio_list that are neither
    active, mapped, dirty nor under writeback go through it once more, then back on the lists.
    The kernel's case is a folio whose writeback completed during shrink_folio_list (it missed
    folio_rotate_reclaimable); the model's writes complete inside reclaim (a written folio is
    freed) and add_to_swap leaves a folio kept unwritten dirty, so its reclaim leaves no such
    survivor. The test makes them at a seam both paths call: shrink_folio_list_tail with
    folio_trylock failing (a locked folio is kept clean, and on the retry pass too), over
    unmapped clean anon folios (old_unmapped_anon). evict_round (compiled afresh with the seam)
    leaves what the Python path leaves, and that path did retry every survivor, once."""
    sim, ops, lv = old_unmapped_anon()
    monkeypatch.setattr(vmscan, "shrink_folio_list_tail", shrink_folio_list_tail_trylock_fails)
    monkeypatch.setattr(mglru, "shrink_folio_list_tail", shrink_folio_list_tail_trylock_fails)
    monkeypatch.setattr(mglru, "evict_round", njit(mglru.evict_round.py_func))  # binds the seam
    sc = ScanControl(nr_to_reclaim=32)
    assert ops.evict_compiled(sim, lv, sc)
    vm, used = dict(sim.vm), sim.swap.used
    putbacks = evict_both_ways(sim, ops, lv, sc, monkeypatch)
    assert putbacks == [(64, False, 64), (64, True, 0)]  # every survivor retried, once
    assert sim.vm["pgsteal_direct"] == vm["pgsteal_direct"] and sim.swap.used == used  # locked: untouched


@pytest.mark.parametrize("policy", ["mglru", "mglru-6.12"])
def test_evict_folios_puts_an_unevictable_survivor_back_unretried(policy, monkeypatch):
    """evict_folios puts a survivor that is not evictable (PG_mlocked here; PG_unevictable too)
    back before its retry test (folio_putback_lru), as it is: shrink_folio_list activated it
    without PG_active (an mlocked folio), and unmapped and clean it would otherwise be retried.
    Test-only state: the isolated folios mlocked (old_unmapped_anon's, so unmapped). Both paths
    (evict_round and the Python path; 6.1-6.13's rules only on the Python path) put each back
    once, none retried, none freed, none given PG_active."""
    sim, ops, lv = old_unmapped_anon(policy)
    f = sim.folios
    anon = np.flatnonzero((f.type[: f.count] == LRU_ANON) & ((f.flags[: f.count] & PG_resident) != 0))
    f.flags[anon] |= PG_mlocked
    sc = ScanControl(nr_to_reclaim=32)
    assert ops.evict_compiled(sim, lv, sc) == (policy == "mglru")
    vm = dict(sim.vm)
    putbacks = evict_both_ways(sim, ops, lv, sc, monkeypatch)
    assert putbacks == [(64, False, 0)]
    assert sim.vm["pgsteal_direct"] == vm["pgsteal_direct"] and sim.vm["pgactivate"] == vm["pgactivate"] + 64
    assert not (f.flags[anon] & PG_active).any() and (f.lru[anon] != NO_LIST).all()


def test_lists_room_compacts_only_a_list_short_of_room():
    """lists_room (the compiled kswapd's room for a pass): with room on every list
    (core.kswapd.lists_fit) it hands back the lists' own arrays; a list short of room gets
    arrays with it, holding the same valid slots, and the other lists keep theirs."""
    fstamp = np.arange(16, dtype=np.int64)  # folio g's stamp is g: every slot below is valid
    ids = tuple(np.arange(16, dtype=np.int64) for _ in range(8))
    stamps = tuple(np.arange(16, dtype=np.int64) for _ in range(8))
    lohi = np.array([4, 8] * 8, dtype=np.int64)
    assert lists_fit(ids, lohi, 8)
    got_ids, got_stamps = mglru.lists_room(ids, stamps, lohi, 8, fstamp)
    assert all(np.shares_memory(a, b) for a, b in zip(got_ids + got_stamps, ids + stamps))
    lohi[15] = 12  # list 7: slots 4..11, no room for 8 more past its head
    assert not lists_fit(ids, lohi, 8) and lists_fit(ids, lohi, 4)
    got_ids, got_stamps = mglru.lists_room(ids, stamps, lohi, 8, fstamp)
    assert all(np.shares_memory(a, b) for a, b in zip(got_ids[:7] + got_stamps[:7], ids[:7] + stamps[:7]))
    lo, hi = lohi[14], lohi[15]
    assert hi + 8 <= len(got_ids[7]) and list(got_ids[7][lo:hi]) == list(range(4, 12))
    assert list(got_stamps[7][lo:hi]) == list(range(4, 12)) and list(lohi[:14]) == [4, 8] * 7
