"""memory.max behaviour on hand-made traces, both policies and both drivers: a memcg at its limit
reclaims only its own pages, a memcg whose working set fits sees no reclaim while its neighbour
thrashes, usage is hierarchical, and a memcg that cannot reclaim ends the run out of memory
naming it."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import cat, reads, recs
from reclaim_ext.core.engine import OutOfMemory, SimConfig, Simulator
from reclaim_ext.policies import get_policy
from reclaim_ext.trace import ArrayTrace, Kind

POLICIES = ["classic", "mglru"]


@pytest.fixture(params=POLICIES)
def policy(request) -> str:
    return request.param


def sim_with(policy: str, mode: str, memcgs: list[str], memory: int = 4096, swap: int = 0) -> Simulator:
    return Simulator(SimConfig(memory_pages=memory, swap_pages=swap, mode=mode, check=True, memcgs=memcgs),
                     get_policy(policy))


def memcg(sim: Simulator, path: str) -> dict:
    return next(m for m in sim.result()["memcgs"] if m["name"] == path)


def interleave(*parts: np.ndarray) -> np.ndarray:
    """Records of several streams, round-robin (the processes run side by side)."""
    n = max(len(p) for p in parts)
    out = []
    for i in range(n):
        for p in parts:
            if i < len(p):
                out.append(p[i : i + 1])
    return np.concatenate(out)


def test_limited_memcg_reclaims_only_its_own_pages(policy, mode):
    """pid 0 (memcg a, max 64 pages) streams 400 file pages; pid 1 (memcg b, no limit) reads 100
    pages of another file. Memory is plentiful: no kswapd, no direct reclaim, and every page of b
    stays resident while a is held at its limit by its own reclaim."""
    sim = sim_with(policy, mode, ["name=a,pids=0,max=64", "name=b,pids=1"])
    a_pages = cat(*(reads(range(400), file=1, pid=0) for _ in range(2)))
    b_pages = reads(range(100), file=2, pid=1)
    sim.run(ArrayTrace("t", interleave(a_pages, b_pages)))
    a, b = memcg(sim, "/a"), memcg(sim, "/b")
    assert sim.vm["kswapd_wakeups"] == 0 and sim.vm["allocstall_normal"] == 0
    assert a["memory_events"]["max"] > 0 and a["memory_stat"]["pgsteal"] > 0
    assert a["usage"] <= 64 and a["peak"] == 64
    assert b["usage"] == 100 and b["memory_stat"]["pgscan"] == 0 and b["memory_events"]["max"] == 0
    # every page b read is still resident and charged to b
    ids = sim.mm.translate(b_pages)[0]
    f = sim.folios
    assert (f.flags[ids] & (1 << 11)).all()  # PG_resident
    assert (f.memcg[ids] == sim.memcg_by_path("b").id).all()
    # cgroup reclaim counts direct scans and steals (memory.stat and vmstat), not allocstall
    assert sim.vm["pgscan_direct"] == a["memory_stat"]["pgscan_direct"] > 0


def test_fitting_working_set_sees_no_reclaim_while_neighbour_thrashes(policy, mode):
    """a loops over 100 pages under max 200: never reclaimed. b loops over 300 pages under max 64:
    it thrashes (refaults, steals), limited to its own memcg."""
    sim = sim_with(policy, mode, ["name=a,pids=0,max=200", "name=b,pids=1,max=64"])
    a_pages = cat(*(reads(range(100), file=1, pid=0) for _ in range(5)))
    b_pages = cat(*(reads(range(300), file=2, pid=1) for _ in range(5)))
    sim.run(ArrayTrace("t", interleave(a_pages, b_pages)))
    a, b = memcg(sim, "/a"), memcg(sim, "/b")
    assert a["memory_stat"]["pgscan"] == 0 and a["memory_events"]["max"] == 0
    assert a["usage"] == 100 and a["memory_stat"]["workingset_refault_file"] == 0
    assert b["memory_events"]["max"] > 0 and b["memory_stat"]["pgsteal"] > 500
    assert b["memory_stat"]["workingset_refault_file"] > 500


def test_usage_is_hierarchical(policy, mode):
    """p (max 150) holds p/x and p/y (no limits of their own), 100 pages each: the parent's limit
    binds, its usage is its children's sum, the max events are the parent's."""
    sim = sim_with(policy, mode, ["name=p/x,pids=0", "name=p/y,pids=1", "name=p,max=150"])
    sim.run(ArrayTrace("t", interleave(reads(range(100), file=1, pid=0), reads(range(100), file=2, pid=1))))
    p, x, y, root = memcg(sim, "/p"), memcg(sim, "/p/x"), memcg(sim, "/p/y"), memcg(sim, "/")
    assert p["usage"] == x["usage"] + y["usage"] <= 150
    assert p["peak"] == 150 and p["max"] == 150
    assert root["usage"] == sim.node.managed - sim.node.free == p["usage"]
    assert p["memory_events_local"]["max"] > 0
    assert x["memory_events_local"]["max"] == y["memory_events_local"]["max"] == 0
    assert p["memory_stat"]["pgsteal"] == x["memory_stat"]["pgsteal"] + y["memory_stat"]["pgsteal"] >= 50
    # every pid's faults (read() has none) and page-cache refaults are charged below p
    assert root["memory_stat"]["pgsteal"] == sim.vm["pgsteal_direct"]


def test_memcg_oom_names_the_memcg(policy, mode):
    """Anonymous pages, no swap: memcg a cannot reclaim below its limit; the run ends out of
    memory naming it, with its oom event counted; the rest of the machine is untouched."""
    sim = sim_with(policy, mode, ["name=a,pids=0,max=64", "name=b,pids=1"])
    rec = cat(reads(range(50), file=2, pid=1), recs(Kind.ANON, range(200), pid=0))
    with pytest.raises(OutOfMemory, match=r"memcg /a: usage 64 pages at memory.max 64"):
        sim.run(ArrayTrace("t", rec))
    a = memcg(sim, "/a")
    assert a["memory_events"]["oom"] == 1 and a["memory_events"]["oom_kill"] == 1
    assert sim.vm["oom_kill"] == 1
    assert a["memory_events"]["max"] == 1 + 1 + 16  # first try, the drain retry, MAX_RECLAIM_RETRIES
    assert memcg(sim, "/b")["usage"] == 50


def test_unassigned_pids_stay_in_the_root(policy, mode):
    sim = sim_with(policy, mode, ["name=a,pids=0,max=64"])
    sim.run(ArrayTrace("t", cat(reads(range(30), file=1, pid=0), reads(range(40), file=2, pid=5))))
    root, a = memcg(sim, "/"), memcg(sim, "/a")
    assert a["usage"] == 30 and root["usage"] == 70
    assert root["pids"] is None and a["pids"] == [0]
