"""NUMA nodes (machine.numa, the engine's zonelists): allocation on the task's node with fallback by
the zonelist, bound tasks, per-node watermarks and kswapd, per-node counters that add up to the
global ones, and both drivers agreeing on machines of several nodes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reclaim_ext.api import RunConfig, run
from reclaim_ext.core.engine import SimConfig, Simulator
from reclaim_ext.errors import ConfigError
from reclaim_ext.machine.node import compute_watermarks
from reclaim_ext.machine.numa import demotion_order, parse_numa_spec, split_memory, zonelist, zonelists
from reclaim_ext.policies import get_policy
from reclaim_ext.trace import ArrayTrace, Kind
from reclaim_ext.trace.record import make_records

from test_engine_drivers import assert_same, small_traces


def anon_trace(pids_pages: dict[int, int], n: int, seed: int = 0) -> np.ndarray:
    """Anon accesses, uniformly over each pid's own pages (pid -> footprint), pids interleaved."""
    rng = np.random.default_rng(seed)
    pids = np.array(sorted(pids_pages), dtype=np.int64)
    rec = make_records(n)
    rec["kind"] = Kind.ANON
    who = pids[rng.integers(0, len(pids), n)]
    rec["pid"] = who
    sizes = np.array([pids_pages[int(p)] for p in who])
    rec["page"] = (rng.random(n) * sizes).astype(np.uint64)
    return rec


def machine(rec, policy="classic", nodes=(2000, 2000), numa=(), mode="fast", memcgs=(), mechanisms=None,
            swap=8000, tiers=(), scan_ms=1000.0, swap_device="zram") -> Simulator:
    """A run on a machine of these nodes; the exact driver without bulk passes or compiled kswapd
    runs (the fast one takes them where they apply), so agreeing checks those too."""
    sim = Simulator(SimConfig(memory_pages=sum(nodes), swap_pages=swap, nodes=list(nodes), numa=list(numa), mode=mode,
                              check=True, memcgs=list(memcgs), tiers=list(tiers), bulk_reclaim=mode == "fast",
                              numa_scan_period_ms=scan_ms, numa_hot_threshold_ms=scan_ms, swap_device=swap_device),
                    get_policy(policy, mechanisms))
    sim.run(ArrayTrace("t", rec))
    return sim


def test_zonelist_orders_by_distance_then_id():
    assert zonelist(0, 3) == [0, 1, 2]
    assert zonelist(2, 3) == [2, 0, 1]
    far = {(0, 1): 30, (0, 2): 20}
    assert zonelist(0, 3, lambda a, b: 10 if a == b else far[(a, b)]) == [0, 2, 1]


def test_zonelists_table_binds_and_defaults():
    zl, row = zonelists(2, ["pids=5,node=1,bind", "pids=6,node=0", "pids=7-8,interleave=1+0"])
    assert zl[row[7]].tolist() == [1, 0] and row[7] == row[8] == 4  # the interleave row: its nodes
    assert zl[row[5]].tolist() == [1, -1]      # bound: node 1 alone
    assert zl[row[6]].tolist() == [0, 1]       # preferred node 0, then node 1
    assert zl[row[3]].tolist() == [1, 0]       # not named: node pid mod 2
    with pytest.raises(ConfigError, match="node 2 does not exist"):
        zonelists(2, ["pids=1,node=2"])


def test_numa_spec_errors_name_the_input():
    assert parse_numa_spec("pids=1-3,node=1,bind").pids == [1, 2, 3]
    assert parse_numa_spec("pids=1,interleave=0+2").interleave == [0, 2]
    for bad, msg in (("pids=1", "give pids= and node="), ("node=1,pids=x", "pid"), ("pids=1,node=a", "not a node number"),
                     ("pids=1,node=0,strict", "bind"), ("pids=1,node=0,interleave=0+1", "takes the place"),
                     ("pids=1,interleave=0+0", "twice"), ("pids=1,interleave=a", "node numbers")):
        with pytest.raises(ConfigError, match=msg):
            parse_numa_spec(bad)


def test_split_memory_and_watermark_shares():
    assert split_memory(10001, 2) == [5000, 5001]
    mfk = 4096  # pages_min 1024
    a = compute_watermarks(3000, mfk, 10, 4000)
    b = compute_watermarks(1000, mfk, 10, 4000)
    assert (a.min, b.min) == (768, 256)  # __setup_per_zone_wmarks: pages_min * managed / lowmem
    assert compute_watermarks(4000, mfk, 10).min == 1024


def test_bound_task_stays_on_its_node_and_others_fall_back():
    # pid 0 (node 0, may fall back) needs more than node 0 holds; pid 1 is bound to node 1
    rec = anon_trace({0: 3000, 1: 500}, 40000)
    sim = machine(rec, numa=["pids=0,node=0", "pids=1,node=1,bind"])
    f = sim.folios
    res = sim.result()
    n0, n1 = (n["vmstat"] for n in res["nodes"])
    assert n1["numa_miss"] > 0 and n0["numa_foreign"] == n1["numa_miss"]  # pid 0's pages spilled to node 1
    assert n0["numa_miss"] == 0 and n1["numa_foreign"] == 0  # pid 1 never left node 1
    # pages only pid 1 touched (pid 1's page p is anon page p of its own mm) are on node 1
    pages1, _, _ = sim.mm.translate(rec[rec["pid"] == 1])
    assert (f.nid[np.unique(pages1)] == 1).all()


def test_each_node_runs_its_own_kswapd_and_counters_add_up():
    rec = anon_trace({0: 2600, 1: 2600, 2: 400}, 60000, seed=1)
    sim = machine(rec, nodes=(2048, 2048), numa=["pids=0,node=0", "pids=1,node=1", "pids=2,node=0,bind"])
    res = sim.result()
    per = [n["vmstat"] for n in res["nodes"]]
    assert all(v["kswapd_wakeups"] > 0 and v["pgsteal_kswapd"] > 0 for v in per)
    v = res["vmstat"]
    for name in ("pgalloc_normal", "numa_hit", "numa_miss", "numa_foreign", "kswapd_wakeups", "pageoutrun",
                 "pgscan_kswapd", "pgsteal_kswapd", "pgmajfault", "workingset_refault_anon"):
        assert sum(p[name] for p in per) == v[name], name
    assert sum(p["numa_miss"] for p in per) == sum(p["numa_foreign"] for p in per)
    assert sum(n["free_pages"] for n in res["nodes"]) == res["free_pages"]
    assert sim.node_vmstat_totals() == {k: v[k] for k in sim.node_vmstat_totals()}


def test_one_node_machine_reports_one_node():
    rec = anon_trace({0: 3000}, 20000)
    sim = machine(rec, nodes=(2000,))
    res = sim.result()
    (n,) = res["nodes"]
    assert n["free_pages"] == res["free_pages"] and n["vmstat"]["pgalloc_normal"] == res["vmstat"]["pgalloc_normal"]
    assert n["vmstat"]["numa_miss"] == 0 and n["vmstat"]["numa_hit"] == res["vmstat"]["pgalloc_normal"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rec=small_traces(),
    sizes=st.sampled_from([(64, 64), (100, 200), (64, 80, 120)]),
    swap=st.integers(0, 400),
    policy=st.sampled_from(["classic", "mglru", "mglru-6.12"]),
    bind=st.booleans(),
    memcgs=st.booleans(),
    tiered=st.booleans(),
    promotion=st.booleans(),
    disk=st.booleans(),
)
def test_drivers_agree_on_several_nodes(rec, sizes, swap, policy, bind, memcgs, tiered, promotion, disk):
    numa = ["pids=1,node=0,bind"] if bind else []
    mc = ["name=a,pids=0+2,max=96", "name=b,pids=1"] if memcgs else []
    tiers = (["dram", "cxl", "pmem"] if len(sizes) == 3 else ["dram", "cxl"]) if tiered else []
    out = {}
    for mode in ("fast", "exact"):
        try:
            sim = machine(rec, policy, sizes, numa, mode, mc, "+promotion" if promotion else None, swap=swap,
                          tiers=tiers, scan_ms=0.05, swap_device="disk" if disk else "zram")
            oom = None
        except Exception as e:  # noqa: BLE001 - OutOfMemory: both drivers must end the same way
            if type(e).__name__ != "OutOfMemory":
                raise
            oom, sim = str(e), None
        res = sim.result() if sim is not None else {}
        out[mode] = {"oom": oom, "misses": res.get("misses"), "vmstat": res.get("vmstat", {}),
                     "nodes": repr(res.get("nodes")), "lists": res.get("lists")}
    assert_same(out)


@pytest.mark.parametrize("policy,mechanisms", [("classic", "+ptwalk,+lookaround"), ("mglru", None),
                                               ("mglru", "-memcg_lru")])
def test_drivers_agree_on_two_nodes_with_memcgs_and_mechanisms(policy, mechanisms):
    rec = anon_trace({0: 1500, 1: 1500, 2: 800, 3: 800}, 40000, seed=3)
    rec["kind"][::3] = Kind.FILE_MMAP
    rec["file"][::3] = 1
    mc = ["name=a,pids=0+2,max=2400", "name=b,pids=1+3"]
    res = [machine(rec, policy, (2048, 2048), ["pids=2,node=1,bind"], mode, mc, mechanisms).result()
           for mode in ("fast", "exact")]
    assert res[0] == res[1]
    assert res[0]["vmstat"]["numa_miss"] > 0


def test_memcg_numa_stat_adds_up():
    """memory.numa_stat on two nodes: per node, hierarchical; its columns add up to memory.stat's
    counters and to the memcg's file and anon pages."""
    rec = anon_trace({0: 1500, 1: 1500, 2: 800}, 30000, seed=5)
    rec["kind"][::3] = Kind.FILE_FD
    rec["file"][::3] = 1
    sim = machine(rec, "classic", (2048, 2048), ["pids=0,interleave=0+1"], memcgs=["name=a,pids=0,max=1800",
                                                                                  "name=a/b,pids=2"])
    res = {m["name"]: m for m in sim.result()["memcgs"]}
    for name in ("/a", "/a/b"):
        ns, st = res[name]["numa_stat"], res[name]["memory_stat"]
        assert len(ns["file"]) == 2
        for key in sim.NUMA_STAT:
            assert sum(ns[key]) == st[key]
    a, b = res["/a"]["numa_stat"], res["/a/b"]["numa_stat"]
    assert min(a["anon"]) > 0 and all(x >= y for x, y in zip(a["anon"], b["anon"]))  # a's include b's
    assert sum(a["anon"]) + sum(a["file"]) == res["/a"]["usage"]
    assert "numa_stat" not in machine(rec[:2000], nodes=(4096,), memcgs=["name=a,pids=0"]).result()["memcgs"][1]


@pytest.mark.parametrize("policy", ["mglru", "mglru-6.12"])
def test_mglru_ignores_a_shadow_of_another_node(policy):
    """lru_gen_refault: a folio that comes back on another node than the one it left (interleaved
    here, every other allocation) finds a shadow of another lruvec: no refault is counted and it
    gets no tier credit. Pages read twice far apart: about half come back on their old node."""
    rng = np.random.default_rng(7)
    rec = make_records(40000)
    rec["kind"] = Kind.FILE_FD
    rec["file"] = 1
    rec["page"] = (rng.zipf(1.1, len(rec)) % 6000).astype(np.uint64)
    res = {}
    for name, numa in (("bound", ["pids=0,node=0,bind"]), ("interleaved", ["pids=0,interleave=0+1"])):
        out = [machine(rec, policy, (2048, 2048), numa, mode, memcgs=["name=a,pids=0,max=1500"], swap=0).result()
               for mode in ("fast", "exact")]
        assert out[0] == out[1]
        res[name] = out[0]
    found = {k: r["misses"] - len(np.unique(rec["page"])) for k, r in res.items()}  # misses that find a shadow
    refault = {k: r["vmstat"]["workingset_refault_file"] for k, r in res.items()}
    assert refault["bound"] == found["bound"] > 0  # one node: every shadow is this lruvec's
    assert 0.35 < refault["interleaved"] / found["interleaved"] < 0.65
    ns = next(m for m in res["interleaved"]["memcgs"] if m["name"] == "/a")["numa_stat"]
    assert sum(ns["workingset_refault_file"]) == refault["interleaved"]


def test_cli_errors_for_nodes():
    for kw, msg in ((dict(nodes=0), "--nodes"), (dict(nodes=2, numa=["pids=1,node=3"]), "node 3 does not exist"),
                    (dict(nodes=[100, 100]), "add up")):
        with pytest.raises(ConfigError, match=msg):
            run(RunConfig(workload="zipf", memory="4MiB", **kw))


def test_demotion_order_follows_the_tiers():
    assert demotion_order(["dram", "dram"], 0) == []
    assert demotion_order(["dram", "cxl", "pmem"], 0) == [1, 2]  # the next tier first, then lower ones
    assert demotion_order(["dram", "cxl", "pmem"], 1) == [2]
    assert demotion_order(["dram", "cxl", "pmem"], 2) == []
    assert demotion_order(["cxl", "dram", "cxl"], 1) == [0, 2]


@pytest.mark.parametrize("policy", ["classic", "mglru"])
def test_demotion_moves_folios_down_and_saves_major_faults(policy):
    rec = anon_trace({0: 6000}, 80000, seed=4)  # more than both nodes hold, hot pages first
    rec["page"] = np.floor(6000 * np.random.default_rng(4).random(len(rec)) ** 2.0).astype(np.uint64)
    # the task allocates on DRAM only (bound): CXL holds only what DRAM's reclaim demotes
    bound = ["pids=0,node=0,bind"]
    on = machine(rec, policy, (2000, 2000), bound, tiers=["dram", "cxl"])
    off = machine(rec, policy, (2000, 2000), bound, tiers=["dram", "cxl"], mechanisms="-demotion")
    v, w = on.result()["vmstat"], off.result()["vmstat"]
    assert v["pgdemote_kswapd"] + v["pgdemote_direct"] > 0 and v["pgmigrate_success"] > 0
    assert w["pgdemote_kswapd"] + w["pgdemote_direct"] == 0
    assert v["pgmajfault"] < 0.8 * w["pgmajfault"]  # twice the memory to keep pages in
    res = on.result()
    n0, n1 = res["nodes"]
    assert n0["vmstat"]["pgdemote_kswapd"] + n0["vmstat"]["pgdemote_direct"] > 0  # counted on the source
    assert n1["vmstat"]["pgdemote_kswapd"] + n1["vmstat"]["pgdemote_direct"] == 0  # CXL is the lowest tier
    assert [t["tier"] for t in res["tiers"]] == ["dram", "cxl"] and res["tiers"][1]["used_pages"] > 0
    assert on.cost["hits_cxl"] > 0 and on.cost["pages_migrated"] == v["pgmigrate_success"]
    # the task runs on the DRAM node: nothing it allocates prefers CXL; without demotion CXL stays empty
    assert n1["vmstat"]["numa_foreign"] == 0 and off.result()["tiers"][1]["used_pages"] == 0


def test_tiers_errors():
    for kw, msg in ((dict(nodes=2, tiers=["dram"]), "1 tiers for 2 nodes"),
                    (dict(nodes=2, tiers=["dram", "hbm"]), "not a memory tier"),
                    (dict(nodes=2, tiers=["cxl", "cxl"]), "no dram node")):
        with pytest.raises(ConfigError, match=msg):
            run(RunConfig(workload="zipf", memory="4MiB", **kw))


@pytest.mark.parametrize("policy", ["classic", "mglru"])
def test_promotion_brings_hot_pages_back_to_dram(policy):
    # a hot set first (it ends up partly demoted while a cold sweep passes), then the hot set alone
    hot = anon_trace({0: 1500}, 30000, seed=5)
    sweep = anon_trace({0: 5000}, 20000, seed=6)
    sweep["page"] += 1500
    rec = np.concatenate([hot, sweep, hot, hot])
    kw = dict(nodes=(2000, 2000), numa=["pids=0,node=0,bind"], tiers=["dram", "cxl"], scan_ms=2.0)
    on = machine(rec, policy, mechanisms="+promotion", **kw)
    off = machine(rec, policy, **kw)
    v, w = on.result()["vmstat"], off.result()["vmstat"]
    assert v["numa_hint_faults"] > 0 and v["pgpromote_success"] > 0
    assert w["numa_hint_faults"] == w["pgpromote_success"] == 0
    assert v["pgpromote_success"] <= v["pgpromote_candidate"] <= v["numa_hint_faults"]
    assert on.result()["nodes"][0]["vmstat"]["pgpromote_success"] == v["pgpromote_success"]  # on DRAM
    assert on.cost["hits_cxl"] < off.cost["hits_cxl"]  # the hot set is read from DRAM again


def test_interleave_spreads_a_task_over_its_nodes():
    rec = anon_trace({0: 1000, 1: 1000}, 20000, seed=8)
    sim = machine(rec, nodes=(2000, 2000), numa=["pids=0,interleave=0+1", "pids=1,node=0,bind"])
    f = sim.folios
    p0, _, _ = sim.mm.translate(rec[rec["pid"] == 0])
    p1, _, _ = sim.mm.translate(rec[rec["pid"] == 1])
    g0 = np.unique(p0)
    assert (f.nid[g0] == g0 % 2).all()  # no pressure: each folio on its interleave node
    assert (f.nid[np.unique(p1)] == 0).all()
    res = sim.result()
    assert sum(n["vmstat"]["numa_miss"] for n in res["nodes"]) == 0
    # under pressure both drivers still agree
    rec = anon_trace({0: 3000, 1: 3000}, 30000, seed=9)
    out = [machine(rec, "mglru", (1500, 1500), ["pids=0,interleave=1+0"], mode).result() for mode in ("fast", "exact")]
    assert out[0] == out[1]


def test_ablate_on_a_tiered_machine_adds_the_core_mechanisms():
    import json

    from conftest import invoke

    r = invoke("ablate", "--policy", "classic", "--nodes", "2", "--tiers", "dram,cxl", "--numa", "pids=0,node=0,bind",
               "--workload", "zipf", "-p", "accesses=30000", "-p", "kind=anon", "-p", "pages=3000", "--memory", "8MiB",
               "--swap", "64MiB", "--variant", "-demotion", "--variant", "+promotion", "--jobs", "1", "--json", "-")
    assert r.exit_code == 0, r.output
    a = json.loads(r.stdout)
    assert [v["mechanisms"] for v in a["variants"]] == ["-demotion", "+promotion"]
    assert a["baseline"]["effective"]["demotion"] and not a["variants"][0]["effective"]["demotion"]
    assert a["variants"][0]["metrics"]["misses"] > a["baseline"]["metrics"]["misses"]  # demotion kept pages in


def test_ablate_takes_a_machine_file():
    import json

    from conftest import invoke

    r = invoke("ablate", "--policy", "mglru", "--machine", "examples/machines/dram-cxl.toml", "--workload", "zipf",
               "-p", "accesses=150000", "-p", "kind=anon", "-p", "pages=16000", "--variant", "-demotion",
               "--jobs", "1", "--json", "-")
    assert r.exit_code == 0, r.output
    a = json.loads(r.stdout)
    assert a["memory_pages"] == 16384 and a["swap_pages"] == 65536  # the file's two 32 MiB nodes, 256 MiB swap
    assert a["baseline"]["effective"]["demotion"] and not a["variants"][0]["effective"]["demotion"]
    assert a["variants"][0]["metrics"]["misses"] > 1.2 * a["baseline"]["metrics"]["misses"]
    r = invoke("ablate", "--machine", "examples/machines/nope.toml")
    assert r.exit_code == 2 and "nope.toml" in r.stderr and "Traceback" not in r.stderr


def test_ablate_default_variants_include_the_core_ones_only_with_tiers():
    from reclaim_ext.bench.ablate import default_variants

    flat = RunConfig(policy="mglru", workload="zipf", memory="4MiB", nodes=2)
    tiered = RunConfig(policy="mglru", workload="zipf", memory="4MiB", nodes=2, tiers=["dram", "cxl"])
    assert "-demotion" not in default_variants(flat) and "-ptwalk" in default_variants(flat)
    assert default_variants(tiered)[-2:] == ["-demotion", "+promotion"]


@pytest.mark.parametrize("policy", ["classic", "mglru"])
def test_memory_high_and_proactive_reclaim_on_two_nodes(policy):
    """memory.high's reclaim and a memory.reclaim write run over every node of the zonelist: both
    drivers agree, and direct (memcg) reclaim took pages on both nodes."""
    from reclaim_ext.api import RunConfig, run

    out = []
    for mode in ("fast", "exact"):
        cfg = RunConfig(policy=policy, workload="mixed", workload_params={"procs": 2, "accesses": 60000}, memory="32MiB",
                        nodes=2, mode=mode, check=True, memcgs=["name=a,pids=0,high=6MiB", "name=b,pids=1"],
                        proactive=["30000:/b:4MiB"])
        out.append(run(cfg))
    for r in out:
        for k in ("wall_seconds", "accesses_per_second", "trace_seconds", "simulated_accesses_per_second", "mode",
                  "provenance", "git_commit", "conservation_checked"):
            r.pop(k, None)
    assert out[0] == out[1]
    a = next(m for m in out[0]["memcgs"] if m["name"] == "/a")
    assert a["memory_events"]["high"] > 0
    (write,) = out[0]["proactive"]
    assert write["reclaimed"] > 0
    assert all(n["vmstat"]["pgsteal_direct"] > 0 for n in out[0]["nodes"])
