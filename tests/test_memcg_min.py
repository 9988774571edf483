"""memory.min: a memcg at or below its effective min is skipped by reclaim (classic's memcg walk,
MGLRU's memcg LRU), the drivers agree, and a reclaim_ext policy cannot get such pages evicted
(R3)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import invoke
from reclaim_ext.core.engine import SimConfig, Simulator
from reclaim_ext.core.vmscan import effective_prot, mem_cgroup_below_min
from reclaim_ext.ext.adapter import ExtOps
from reclaim_ext.machine.node import Memcg
from reclaim_ext.plugins.lru import LRU
from reclaim_ext.policies import get_policy
from reclaim_ext.trace import ArrayTrace, Kind
from reclaim_ext.trace.record import make_records


def effective_min(target, memcg):
    return effective_prot(target, memcg, "min")


def trace(n=30_000, seed=5) -> np.ndarray:
    """pid 0 (memcg a): 300 hot pages read over and over; pid 1 (memcg b): a stream over 4000
    pages. Global pressure (memory 1024 pages) falls on both memcgs."""
    rng = np.random.default_rng(seed)
    rec = make_records(n)
    pid = (rng.random(n) < 0.5).astype(np.int64)
    rec["pid"] = pid
    rec["file"] = 1 + pid
    rec["page"] = np.where(pid == 0, rng.integers(0, 300, n), np.arange(n) % 4000).astype(np.uint64)
    rec["kind"] = Kind.FILE_FD
    return rec


def run(ops, mode="fast", amin="0"):
    sim = Simulator(SimConfig(memory_pages=1024, swap_pages=0, mode=mode, check=True,
                              memcgs=[f"name=a,pids=0,min={amin}", "name=b,pids=1"]), ops)
    sim.run(ArrayTrace("t", trace()))
    return sim


def stats(sim, path):
    return next(m for m in sim.result()["memcgs"] if m["name"] == path)


@pytest.mark.parametrize("policy", ["classic", "mglru"])
def test_min_protects_the_working_set(policy):
    plain = run(get_policy(policy))
    prot = run(get_policy(policy), amin="300")
    a0, a1 = stats(plain, "/a"), stats(prot, "/a")
    assert a0["memory_stat"]["pgsteal"] > 0  # without min, global reclaim takes a's pages too
    assert a1["memory_stat"]["pgsteal"] == 0 and a1["usage"] == 300
    assert a1["min"] == 300
    assert a1["memory_stat"]["workingset_refault_file"] == 0 < a0["memory_stat"]["workingset_refault_file"]


@pytest.mark.parametrize("policy", ["classic", "mglru"])
def test_drivers_agree_with_min(policy):
    fast, exact = run(get_policy(policy), "fast", "200"), run(get_policy(policy), "exact", "200")
    assert fast.vm == exact.vm and fast.result()["memcgs"] == exact.result()["memcgs"]


def test_effective_min_is_scaled_when_children_overcommit():
    root = Memcg(id=0)
    p = Memcg(id=1, name="p", parent=root, min=100, usage=400)
    c1 = Memcg(id=2, name="p/c1", parent=p, min=150, usage=150)
    c2 = Memcg(id=3, name="p/c2", parent=p, min=150, usage=250)
    root.children, p.children = [p], [c1, c2]
    assert effective_min(root, p) == 100 and not mem_cgroup_below_min(root, p)
    # siblings protect 300 > the parent's 100: each gets its share, 150 * 100 // 300 = 50
    assert effective_min(root, c1) == 50 and not mem_cgroup_below_min(root, c1)
    c1.usage = 40  # now protected 40 + 150 = 190 > 100: 40 * 100 // 190 = 21 < 40
    assert effective_min(root, c1) == 21
    p.min = 1000  # the parent covers both: each keeps min(usage, min)
    assert effective_min(root, c1) == 40 and mem_cgroup_below_min(root, c1)
    assert effective_min(p, c1) == 150  # a child of the reclaim target keeps its own min
    assert not mem_cgroup_below_min(p, p) and not mem_cgroup_below_min(root, root)


def test_a_policy_cannot_get_min_protected_pages_evicted():
    """T4 for memcg min: a system-scope policy that proposes a's pages (protected) while b is
    reclaimed: they are ignored and counted, and a keeps every page."""

    class ProposesA(LRU):
        per_lruvec = False  # one LRU over every memcg

        def evict(self, ctx, n):
            return self.last.lowest(n)  # a global LRU: its oldest pages are often a's

    ops = ExtOps(ProposesA())
    sim = run(ops, amin="300")
    ops.finish()
    sim.check_conservation()
    assert stats(sim, "/a")["memory_stat"]["pgsteal"] == 0
    assert ops.events["other_lruvec"] > 0  # ignored and counted ...
    assert ops.exit.kind == "ERROR_STALL" and "starvation" in ops.exit.reason  # ... then ejected (R3, R4)


def test_cli_min_spec():
    r = invoke("run", "--workload", "mixed", "-p", "procs=2", "--memcg", "name=a,pids=0,min=-3")
    assert r.exit_code == 2 and "--memcg" in r.stderr and "Traceback" not in r.stderr
