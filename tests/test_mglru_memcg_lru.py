"""MGLRU's memcg LRU as a mechanism (memcg_lru): on, root reclaim (kswapd, global direct reclaim)
is lru_gen_shrink_node over the memcg LRU's bins (shrink_many, shrink_one's rotations,
set_initial_priority); off (`-memcg_lru`), it is the core's memcg tree walk
(shrink_node_memcgs, mem_cgroup_iter order, memory.min/low as the core applies them) calling
lru_gen_shrink_lruvec per memcg, and the memcg LRU is never used; both drivers agree."""

from __future__ import annotations

import numpy as np
import pytest

from reclaim_ext.core.engine import SimConfig, Simulator
from reclaim_ext.policies import get_policy
from reclaim_ext.policies.mglru import MGLRU
from reclaim_ext.trace import ArrayTrace, Kind
from reclaim_ext.trace.record import make_records

MEMCGS = ["name=a,pids=0", "name=b,pids=1", "name=c/d,pids=2", "name=c,pids=3"]


def trace(n=40_000, seed=7, procs=4, pages=1500) -> np.ndarray:
    """`procs` processes, one per memcg, each reading its own file over `pages` pages (Zipf-like):
    global pressure on a 1,024-page machine falls on every memcg."""
    rng = np.random.default_rng(seed)
    rec = make_records(n)
    pid = rng.integers(0, procs, n)
    rec["pid"] = pid
    rec["file"] = 1 + pid
    rec["page"] = np.floor(pages * rng.random(n) ** 2).astype(np.uint64)
    rec["kind"] = Kind.FILE_FD
    return rec


def run(mechanisms=None, mode="fast", memcgs=MEMCGS, rec=None):
    """The run, per root-reclaim call of try_to_shrink_lruvec (kswapd, memcg path, its usage),
    and the priority of each set_initial_priority call."""
    ops = get_policy("mglru", mechanisms)
    calls, primes = [], []
    shrink, prime = ops.try_to_shrink_lruvec, ops.set_initial_priority

    def try_to_shrink_lruvec(sim, lruvec, sc):
        if sc.target_memcg is None:
            calls.append((sc.kswapd, lruvec.memcg.path, lruvec.memcg.usage))
        return shrink(sim, lruvec, sc)

    def set_initial_priority(sim, node, sc):
        primes.append(sc.priority)
        return prime(sim, node, sc)

    ops.try_to_shrink_lruvec = try_to_shrink_lruvec
    ops.set_initial_priority = set_initial_priority
    sim = Simulator(SimConfig(memory_pages=1024, swap_pages=0, mode=mode, check=True, memcgs=memcgs), ops)
    sim.run(ArrayTrace("t", trace() if rec is None else rec))
    return sim, calls, primes


def tree_walks(sim, n: int) -> list[str]:
    """n memcg visits of kswapd's full walks, one after the other, in mem_cgroup_iter's order."""
    order = [m.path for m in sim.root_memcg.subtree()]
    return (order * (n // len(order) + 1))[:n]


def kswapd_calls(calls: list) -> list[str]:
    return [path for kswapd, path, _ in calls if kswapd]


def test_memcg_lru_is_a_default_mechanism():
    assert "memcg_lru" in MGLRU.supported_mechanisms and "memcg_lru" in MGLRU.default_mechanisms
    assert "-memcg_lru" in MGLRU.ablation_variants
    assert get_policy("mglru").uses("memcg_lru") and not get_policy("mglru", "-memcg_lru").uses("memcg_lru")


def test_off_root_reclaim_walks_the_memcg_tree():
    """Without the memcg LRU every kswapd pass visits the memcgs in mem_cgroup_iter's pre-order
    (a full walk), the memcg LRU stays empty with its seq at 0, and set_initial_priority never
    runs (the priority steps from DEF_PRIORITY as for cgroup reclaim)."""
    sim, calls, primes = run("-memcg_lru")
    assert [m.path for m in sim.root_memcg.subtree()] == ["/", "/a", "/b", "/c", "/c/d"]
    seen = kswapd_calls(calls)
    assert len(seen) > 200 and len(seen) % 5 == 0
    assert seen == tree_walks(sim, len(seen))
    lru = MGLRU.memcg_lru(sim.node)
    assert lru.seq == 0 and sum(lru.nr_memcgs) == 0
    assert not any(b for gen in lru.fifo for b in gen)
    assert primes == []


def test_on_root_reclaim_follows_the_memcg_lru():
    """With the memcg LRU (the default) kswapd takes the lruvecs from the bins, not in tree
    order; shrink_one's rotations move lruvecs out of the old generation, and
    set_initial_priority runs."""
    sim, calls, primes = run()
    lru = MGLRU.memcg_lru(sim.node)
    assert sum(lru.nr_memcgs) == len(sim.memcgs) and lru.nr_memcgs[lru.seq % 3] < len(sim.memcgs)
    seen = kswapd_calls(calls)
    assert len(seen) > 200 and seen != tree_walks(sim, len(seen))
    assert primes


def test_switch_changes_the_run():
    on, _, _ = run()
    off, _, _ = run("-memcg_lru")
    assert on.result()["vmstat"] != off.result()["vmstat"]


def test_off_respects_memory_low_as_the_core_does():
    """Off: root reclaim skips a memcg within its memory.low while the others have memory
    (shrink_node_memcgs: memcg_low_skipped, no MEMCG_LOW event), so it reclaims /a only above
    its low; on: shrink_one moves it to the tail once and reclaims it when it meets it there
    again, with a MEMCG_LOW event."""
    memcgs = ["name=a,pids=0,low=300", "name=b,pids=1", "name=c/d,pids=2", "name=c,pids=3"]

    def memcg_a(mechanisms):
        sim, calls, _ = run(mechanisms, memcgs=memcgs)
        a = next(m for m in sim.memcgs.values() if m.path == "/a")
        return a, [usage for _, path, usage in calls if path == "/a"]

    a, usages = memcg_a("-memcg_lru")
    assert a.events["low"] == 0 and usages and min(usages) > 300
    a, usages = memcg_a(None)
    assert a.events["low"] > 0 and min(usages) <= 300


@pytest.mark.parametrize("mechanisms", ["-memcg_lru", None])
def test_drivers_agree_with_and_without_the_memcg_lru(mechanisms):
    fast, _, _ = run(mechanisms, "fast")
    exact, _, _ = run(mechanisms, "exact")
    rf, re_ = fast.result(), exact.result()
    for key in ("misses", "vmstat", "cost", "lists", "free_pages", "memcgs"):
        assert rf[key] == re_[key], key


def eight_memcgs(n=60_000, seed=11) -> tuple[list[str], np.ndarray]:
    """Eight memcgs (two levels: four parents with a child each), one process each, every process
    reading its own file: global pressure falls on all eight."""
    memcgs = [f"name=p{i},pids={2 * i}" for i in range(4)] + [f"name=p{i}/c,pids={2 * i + 1}" for i in range(4)]
    return memcgs, trace(n, seed, procs=8, pages=800)


@pytest.mark.parametrize("nodes", [1, 2])
def test_eight_memcgs_rotate_through_the_memcg_lru_and_all_give_pages(nodes):
    """MGLRU with 8 memcgs under global pressure (kswapd only): the memcg LRU takes lruvecs from
    its bins in an order other than the tree's, each of the eight memcgs is reclaimed from, and
    both drivers agree; on two nodes, each node has its own memcg LRU holding every memcg."""
    memcgs, rec = eight_memcgs()
    out = {}
    for mode in ("fast", "exact"):
        ops = get_policy("mglru")
        calls, shrink = [], ops.try_to_shrink_lruvec

        def try_to_shrink_lruvec(sim, lruvec, sc, calls=calls, shrink=shrink):
            if sc.kswapd and lruvec.node.nid == 0:
                calls.append(lruvec.memcg.path)
            return shrink(sim, lruvec, sc)

        ops.try_to_shrink_lruvec = try_to_shrink_lruvec
        sim = Simulator(SimConfig(memory_pages=1024, swap_pages=0, mode=mode, check=True, memcgs=memcgs,
                                  nodes=[1024] if nodes == 1 else [512, 512]), ops)
        sim.run(ArrayTrace("t", rec))
        out[mode] = sim.result()
        assert len(calls) > 100 and calls != tree_walks(sim, len(calls))
        for node in sim.nodes:
            lru = MGLRU.memcg_lru(node)
            assert sum(lru.nr_memcgs) == len(sim.memcgs) == 9  # the root and the eight
    assert out["fast"] == out["exact"]
    steal = {m["name"]: m["memory_stat"]["pgsteal"] for m in out["fast"]["memcgs"]}
    assert all(steal[f"/p{i}/c"] > 0 and steal[f"/p{i}"] > steal[f"/p{i}/c"] for i in range(4)), steal
