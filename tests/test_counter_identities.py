"""Counter identities (issue 16, item 1): the vmstat counters of every run add up, for every policy
(classic, MGLRU, every plug-in, every example file), in both drivers, with and without memcgs.

* pgscan_kswapd + pgscan_direct == pgscan_anon + pgscan_file, and the same for pgsteal: a policy
  evicting through the reclaim_ext adapter once left the per-type counters at 0;
* pgsteal <= pgscan per source (kswapd, direct) and per type (anon, file);
* pgfree == pgsteal (pages leave memory only through reclaim) and pgalloc_normal == misses;
* pswpout == pgsteal_anon (every reclaimed anon folio goes to the synchronous swap device),
  pswpin == workingset_refault_anon (every swap-in finds its shadow), and per type the shadows
  left == pgsteal - workingset_refault;
* workingset_activate and _restore <= workingset_refault per type; pgmajfault <= pgfault;
* memory.stat of a memcg holding every page == vmstat.

The conservation check (--check) verifies these after every reclaim and fails naming the identity.
"""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest
from conftest import run_json

from reclaim_ext.api import RunConfig, build_simulator, build_trace, run
from reclaim_ext.core.engine import ConservationError
from reclaim_ext.core.stats import vmstat_problems
from reclaim_ext.machine.folio import LRU_ANON, LRU_FILE, PG_resident

ROOT = os.path.join(os.path.dirname(__file__), "..")
PLUGINS = sorted("reclaim_ext.plugins." + os.path.basename(p)[:-3]
                 for p in glob.glob(os.path.join(ROOT, "src", "reclaim_ext", "plugins", "[a-z]*.py")))
EXAMPLES = sorted(glob.glob(os.path.join(ROOT, "examples", "*.py")))
POLICIES = ["classic", "mglru", *PLUGINS, *EXAMPLES]
IDS = [p.rpartition(".")[2] if p.startswith("reclaim_ext.") else os.path.basename(p) for p in POLICIES]

# anon, read()/mmap'd file pages and an executable; swap; small enough for ~0.3 s a run
WL = dict(procs=3, anon_pages=150, files=2, file_pages=250, exec_pages=50, accesses=4000)
MEMCGS = {
    "nomemcg": [],
    # a at its limit: memcg reclaim (counted as direct); b unlimited: kswapd reclaims it
    "memcg": ["name=a,pids=0,max=64", "name=b,pids=1-2"],
}


def config(policy: str, mode: str = "fast", memcgs=(), check: bool = True) -> RunConfig:
    return RunConfig(policy=policy, workload="mixed", workload_params=WL, memory=300, swap=600, mode=mode,
                     check=check, memcgs=list(memcgs))


@pytest.mark.parametrize("memcgs", list(MEMCGS))
@pytest.mark.parametrize("mode", ["fast", "exact"])
@pytest.mark.parametrize("policy", POLICIES, ids=IDS)
def test_counter_identities_hold(policy, mode, memcgs):
    r = run(config(policy, mode, MEMCGS[memcgs]))  # check=True: verified after every reclaim too
    v = r["vmstat"]
    assert v["pgscan_anon"] > 0 and v["pgscan_file"] > 0 and v["pswpout"] > 0  # both types reclaimed
    if memcgs == "memcg":
        assert v["pgscan_kswapd"] > 0 and v["pgscan_direct"] > 0 and v["pgsteal_direct"] > 0
    assert vmstat_problems(v, r["misses"], r["cost"]) == []
    # memory.stat at the root sums every memcg: it is vmstat
    root = r["memcgs"][0]["memory_stat"]
    assert root["pgscan"] == v["pgscan_kswapd"] + v["pgscan_direct"]
    assert root["pgsteal"] == v["pgsteal_kswapd"] + v["pgsteal_direct"]
    assert {k: root[k] for k in root if k in v} == {k: v[k] for k in root if k in v}


@pytest.mark.parametrize("policy", POLICIES, ids=IDS)
def test_memcg_holding_everything_has_the_global_memory_stat(policy):
    r = run(config(policy, "fast", ["name=a,pids=0-2"]))
    v = r["vmstat"]
    (a,) = [m for m in r["memcgs"] if m["name"] == "/a"]
    st = a["memory_stat"]
    assert st["pgscan"] == v["pgscan_kswapd"] + v["pgscan_direct"] == v["pgscan_anon"] + v["pgscan_file"] > 0
    assert st["pgsteal"] == v["pgsteal_kswapd"] + v["pgsteal_direct"] == v["pgsteal_anon"] + v["pgsteal_file"] > 0
    for k in ("pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct", "pgfault", "pgmajfault",
              "workingset_refault_anon", "workingset_refault_file"):
        assert st[k] == v[k], k
    assert st == r["memcgs"][0]["memory_stat"]


@pytest.mark.parametrize("policy", ["lru", os.path.join(ROOT, "examples", "hello.py")], ids=["lru", "hello.py"])
def test_cli_run_of_an_evicting_plugin_counts_scans_per_type(policy):
    """The issue's command, smaller: `reclaim-ext run --policy lru --workload zipf --json -`."""
    out = run_json("--policy", policy, "--workload", "zipf", "-p", "pages=3000", "-p", "accesses=20000",
                   "--memory", "1024", "--check")
    v = out["vmstat"]
    assert v["pgscan_kswapd"] > 0
    assert v["pgscan_file"] == v["pgscan_kswapd"] + v["pgscan_direct"] and v["pgscan_anon"] == 0
    assert v["pgsteal_file"] == v["pgsteal_kswapd"] + v["pgsteal_direct"] > 0 and v["pgsteal_anon"] == 0


# ---- the check fails loudly when an identity breaks ------------------------------------------------


@pytest.fixture(scope="module")
def checked_sims():
    """One simulator per reclaim path (classic, MGLRU, a plug-in through the adapter), after a run."""
    sims = {}
    for policy in ("classic", "mglru", "lru"):
        cfg = config(policy, "fast", MEMCGS["memcg"])
        sim = build_simulator(cfg)
        sim.run(build_trace(cfg))
        sim.ops.finish()
        sim.check_conservation()
        sims[policy] = sim
    return sims


# each corruption returns what undoes it (the simulators are shared by the module's tests)


def _bump(name: str, n: int = 1):
    def corrupt(sim):
        sim.vm[name] += n
        return lambda: sim.vm.__setitem__(name, sim.vm[name] - n)
    return corrupt


def _bump_lruvec(name: str):
    def corrupt(sim):
        stat = sim.memcgs[1].lruvecs[sim.node.nid].stat
        stat[name] += 1
        return lambda: stat.__setitem__(name, stat[name] - 1)
    return corrupt


def _drop_shadow(t: int):
    def corrupt(sim):
        f = sim.folios
        cnt = f.count
        g = np.flatnonzero(((f.flags[:cnt] & PG_resident) == 0) & (f.shadow[:cnt] >= 0) & (f.type[:cnt] == t))[0]
        old = int(f.shadow[g])
        f.shadow[g] = -1
        return lambda: f.shadow.__setitem__(g, old)
    return corrupt


CORRUPTIONS = {
    "pgscan_anon": (_bump("pgscan_anon"), r"pgscan_kswapd \+ pgscan_direct = \d+ != pgscan_anon \+ pgscan_file"),
    "pgscan_kswapd": (_bump("pgscan_kswapd"), r"pgscan_kswapd \+ pgscan_direct = \d+ != pgscan_anon"),
    "pgsteal_file": (_bump("pgsteal_file"), r"pgsteal_kswapd \+ pgsteal_direct = \d+ != pgsteal_anon"),
    "pgsteal_direct>pgscan": (_bump("pgsteal_direct", 10**6), r"pgsteal_direct \d+ > pgscan_direct"),
    "pgfree": (_bump("pgfree"), r"pgfree \d+ != pgsteal"),
    "pgalloc_normal": (_bump("pgalloc_normal"), r"pgalloc_normal \d+ - pgfree \d+ != resident"),
    "pswpout": (_bump("pswpout"), r"pswpout \d+ != pgsteal_anon"),
    "pswpin": (_bump("pswpin"), r"pswpin \d+ != workingset_refault_anon"),
    "workingset_refault_file": (_bump("workingset_refault_file"), r"workingset_refault_file"),
    "workingset_activate_anon": (_bump("workingset_activate_anon", 10**6),
                                 r"workingset_activate_anon \d+ > workingset_refault_anon"),
    "pgmajfault": (_bump("pgmajfault", 10**7), r"pgmajfault \d+ > pgfault"),
    "memory.stat": (_bump_lruvec("pgscan_direct"), r"pgscan_direct: vmstat \d+ != \d+ summed over the memcgs"),
    "shadow": (_drop_shadow(LRU_FILE), r"file: \d+ shadow entries != pgsteal_file - workingset_refault_file"),
    "shadow_anon": (_drop_shadow(LRU_ANON), r"anon: \d+ shadow entries != pgsteal_anon - workingset_refault_anon"),
}


@pytest.mark.parametrize("policy", ["classic", "mglru", "lru"])
@pytest.mark.parametrize("what", list(CORRUPTIONS))
def test_check_fails_naming_the_broken_identity(checked_sims, policy, what):
    sim = checked_sims[policy]
    corrupt, pattern = CORRUPTIONS[what]
    undo = corrupt(sim)
    try:
        with pytest.raises(ConservationError, match="counter identity") as e:
            sim.check_conservation()
        assert e.match(pattern)
    finally:
        undo()
    sim.check_conservation()
