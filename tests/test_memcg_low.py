"""memory.low: a memcg at or below its effective low is spared while other memcgs have reclaimable
memory (shrink_node_memcgs skips it, setting memcg_low_skipped), reclaimed with a MEMCG_LOW event
when nothing else can be (do_try_to_free_pages' memcg_low_reclaim retry); the scan of a protected
memcg is scaled down in proportion (apply_proportional_protection); memory_recursiveprot shares
a parent's unclaimed protection; the drivers agree."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import invoke
from reclaim_ext.core.engine import SimConfig, Simulator
from reclaim_ext.core.ops import ScanControl
from reclaim_ext.core.vmscan import (
    SCAN_EQUAL, effective_prot, effective_protection, mem_cgroup_below_low, proportional_protection, scan_targets,
)
from reclaim_ext.machine.node import Memcg
from reclaim_ext.policies import get_policy
from reclaim_ext.trace import ArrayTrace, Kind
from reclaim_ext.trace.record import make_records


def trace(n=30_000, seed=5, b_pages=4000) -> np.ndarray:
    """pid 0 (memcg a): 300 hot pages read over and over; pid 1 (memcg b): a stream over
    `b_pages` pages. Global pressure (memory 1024 pages) falls on both memcgs."""
    rng = np.random.default_rng(seed)
    rec = make_records(n)
    pid = (rng.random(n) < 0.5).astype(np.int64)
    rec["pid"] = pid
    rec["file"] = 1 + pid
    rec["page"] = np.where(pid == 0, rng.integers(0, 300, n), np.arange(n) % b_pages).astype(np.uint64)
    rec["kind"] = Kind.FILE_FD
    return rec


def run(policy, mode="fast", alow="0", bmax=None, **kw):
    b = "name=b,pids=1" + (f",max={bmax}" if bmax else "")
    sim = Simulator(SimConfig(memory_pages=1024, swap_pages=0, mode=mode, check=True,
                              memcgs=[f"name=a,pids=0,low={alow}", b], **kw), get_policy(policy))
    sim.run(ArrayTrace("t", trace(**({"b_pages": 4000}))))
    return sim


def stats(sim, path):
    return next(m for m in sim.result()["memcgs"] if m["name"] == path)


def test_low_protects_the_working_set_while_others_have_memory():
    plain, prot = run("classic"), run("classic", alow="300")
    a0, a1 = stats(plain, "/a"), stats(prot, "/a")
    assert a0["memory_stat"]["pgsteal"] > 0  # without low, global reclaim takes a's pages too
    assert a1["low"] == 300
    assert a1["memory_stat"]["pgsteal"] == 0 and a1["memory_events"]["low"] == 0
    assert a1["memory_stat"]["workingset_refault_file"] == 0


def test_mglru_root_reclaim_spares_a_low_memcg_once_per_encounter():
    """MGLRU's root reclaim walks its memcg LRU (shrink_one): a memcg below low is rotated to the
    tail of its bin the first time, and reclaimed with a MEMCG_LOW event when the walk meets it
    there again, so with two memcgs memory.low barely protects (the kernel's rule, not classic's)."""
    plain, prot = run("mglru"), run("mglru", alow="300")
    a0, a1 = stats(plain, "/a"), stats(prot, "/a")
    assert a0["memory_events"]["low"] == 0 and a1["memory_events"]["low"] > 0
    assert a1["memory_stat"]["pgsteal"] > 0


@pytest.mark.parametrize("policy", ["classic", "mglru"])
def test_drivers_agree_with_low(policy):
    fast, exact = run(policy, "fast", "200"), run(policy, "exact", "200")
    assert fast.vm == exact.vm and fast.result()["memcgs"] == exact.result()["memcgs"]


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_low_gives_way_when_nothing_else_is_reclaimable(mode):
    """memcg a streams over 3,000 pages under a memory.low larger than memory; b holds 50 hot
    pages. Reclaim must take a's pages: the walk skips a (memcg_low_skipped), reclaims nothing
    elsewhere, and do_try_to_free_pages retries with memcg_low_reclaim: a is reclaimed with a
    MEMCG_LOW event each time, and the run completes."""
    n = 20_000
    rec = make_records(n)
    pid = (np.arange(n) % 4 == 0).astype(np.int64)  # every 4th access is b's
    rec["pid"] = pid
    rec["file"] = 1 + pid
    rec["page"] = np.where(pid == 0, np.arange(n) % 3000, np.arange(n) % 50).astype(np.uint64)
    rec["kind"] = Kind.FILE_FD
    sim = Simulator(SimConfig(memory_pages=1024, swap_pages=0, mode=mode, check=True,
                              memcgs=["name=a,pids=0,low=64MiB", "name=b,pids=1"]), get_policy("classic"))
    sim.run(ArrayTrace("t", rec))
    a = stats(sim, "/a")
    assert sim.result()["accesses"] == n
    assert a["memory_events"]["low"] > 0 and a["memory_stat"]["pgsteal"] > 0


def test_effective_low_with_and_without_recursive_protection():
    root = Memcg(id=0)
    p = Memcg(id=1, name="p", parent=root, low=300, usage=400)
    c1 = Memcg(id=2, name="p/c1", parent=p, low=100, usage=150)
    c2 = Memcg(id=3, name="p/c2", parent=p, low=0, usage=250)
    root.children, p.children = [p], [c1, c2]
    assert effective_prot(root, p, "low") == 300  # a child of the target keeps its setting
    assert effective_prot(root, c1, "low") == 100  # claims 100 <= the parent's 300
    assert effective_prot(root, c2, "low") == 0
    # memory_recursiveprot: the 200 unclaimed go by unprotected usage: c1 50, c2 250 of 300
    assert effective_prot(root, c1, "low", True) == 100 + 200 * 50 // 300
    assert effective_prot(root, c2, "low", True) == 200 * 250 // 300
    assert mem_cgroup_below_low(root, c2, True) is False and mem_cgroup_below_low(root, c1) is False
    c1.usage = 90
    assert mem_cgroup_below_low(root, c1)
    assert not mem_cgroup_below_low(root, root) and not mem_cgroup_below_low(p, p)
    # overcommit: siblings claim 90 + 250 > the parent's 200 -> shares
    p.low = 200
    c2.low = 400
    assert effective_protection(90, 400, 100, 200, 340, False) == 90 * 200 // 340
    assert effective_prot(root, c1, "low") == 90 * 200 // 340


def test_proportional_protection_scales_the_scan():
    out = np.zeros(4, dtype=np.int64)
    nr = np.array([0, 0, 4000, 1000], dtype=np.int64)
    scan_targets(nr, 2, 0, SCAN_EQUAL, 60, 0, 0, 0, 0, out)
    assert out.tolist() == [0, 0, 4000, 1000]
    # 60 % protected; every list, empty ones too, is targeted at least SWAP_CLUSTER_MAX
    scan_targets(nr, 2, 0, SCAN_EQUAL, 60, 0, 0, 3000, 5000, out)
    assert out.tolist() == [32, 32, 4000 - 4000 * 3000 // 5001, max(1000 - 1000 * 3000 // 5001, 32)]
    scan_targets(nr, 2, 4, SCAN_EQUAL, 60, 0, 0, 5000, 5000, out)  # all protected: 32, then >> 4
    assert out.tolist() == [32 >> 4] * 4


def test_the_scan_uses_low_until_reclaim_goes_into_low():
    sim = run("classic", alow="200")
    a = next(m for m in sim.memcgs.values() if m.path == "/a")
    lv = a.lruvecs[0]
    a.min = 100
    sc = ScanControl(nr_to_reclaim=32)
    assert proportional_protection(sim, lv, sc) == 200 and sc.memcg_low_skipped
    sc = ScanControl(nr_to_reclaim=32, memcg_low_reclaim=True)
    assert proportional_protection(sim, lv, sc) == 100 and not sc.memcg_low_skipped


def test_cli_low_spec_and_recursiveprot():
    r = invoke("run", "--workload", "mixed", "-p", "procs=2", "-p", "accesses=3000", "--memcg",
               "name=a,pids=0,low=2MiB", "--memory-recursiveprot", "--json", "-")
    assert r.exit_code == 0, r.stderr
    bad = invoke("run", "--workload", "mixed", "-p", "procs=2", "--memcg", "name=a,pids=0,max=1MiB,low=2MiB")
    assert bad.exit_code == 2 and "low" in bad.stderr and "Traceback" not in bad.stderr
    alone = invoke("run", "-p", "accesses=1000", "--memory-recursiveprot")
    assert alone.exit_code == 2 and "--memcg" in alone.stderr
