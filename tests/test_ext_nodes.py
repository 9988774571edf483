"""reclaim_ext plug-ins on machines of several NUMA nodes: each lruvec is a (memcg, node) pair, so
a `node:N` attachment governs that node's lruvecs only, a per-lruvec policy runs one instance per
memcg per node, a handle of another node is out of scope (R8), both drivers agree, and the core's
demotion works under a plug-in without a line of it."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_json
from test_ext_per_lruvec import run_ops
from test_ext_scopes import Recording
from test_nodes import anon_trace

from reclaim_ext.core.engine import SimConfig, Simulator
from reclaim_ext.ext.adapter import ExtOps
from reclaim_ext.plugins.fifo import FIFO
from reclaim_ext.plugins.lru import LRU
from reclaim_ext.plugins.lru_compiled import LRUCompiled
from reclaim_ext.plugins.s3fifo import S3FIFO
from reclaim_ext.trace import ArrayTrace, Kind

NODES = (2048, 2048)
MEMCGS = ["name=a,pids=0+2,max=2400", "name=b,pids=1+3"]


def trace(seed: int = 3, n: int = 40000) -> np.ndarray:
    rec = anon_trace({0: 1500, 1: 1500, 2: 800, 3: 800}, n, seed=seed)
    rec["kind"][::3] = Kind.FILE_MMAP
    rec["file"][::3] = 1
    return rec


def run_on_nodes(attach, rec=None, mode="fast", memcgs=MEMCGS, nodes=NODES, numa=("pids=2,node=1,bind",),
                 tiers=(), mechanisms=None, swap=8000):
    """A run with these (scope, policy) attached from the start on a machine of `nodes`."""
    return run_ops(attach, list(memcgs), trace() if rec is None else rec, mode, mechanisms,
                   memory_pages=sum(nodes), swap_pages=swap, nodes=list(nodes), numa=list(numa), tiers=list(tiers),
                   bulk_reclaim=mode == "fast")


@pytest.mark.parametrize("attach", [[("system", LRU)], [("system", S3FIFO)], [("system", LRUCompiled)],
                                    [("node:1", FIFO), ("memcg:/a", LRU)]])
def test_drivers_agree_with_plugins_on_two_nodes(attach):
    # (a policy of one instance over several lruvecs may see a stretch's events node by node in
    # the fast driver, in trace order in the exact one: ctx.when orders them; its answers may differ)
    out = []
    for mode in ("fast", "exact"):
        sim, ops = run_on_nodes([(scope, make()) for scope, make in attach], mode=mode)
        res = sim.result()
        out.append((res["vmstat"], res["nodes"], res["memcgs"], ops.events, ops.exit.kind))
    assert out[0] == out[1]
    assert out[0][4] == "DONE" and out[0][0]["numa_miss"] > 0
    assert out[0][3]["topped_up"] == 0 and out[0][0]["pgscan_kswapd"] > 0  # (a compiled one answers n too)


def test_a_policy_of_one_instance_over_two_nodes_is_told_why_it_starves():
    """One instance over both nodes' lruvecs (per_lruvec False) proposes the global tail, often
    another node's pages: R8 sets those aside; starved, it is ejected with the reason named."""
    sim, ops = run_on_nodes([("system", type("GlobalLRU", (LRU,), {"per_lruvec": False})())])
    ex = ops.exit
    assert ex.kind == "ERROR_STALL" and "pages of other lruvecs" in ex.reason and "per_lruvec = True" in ex.reason
    assert ops.events["other_lruvec"] > 0 and ops.governor("system") == "classic"


class NodeRecording(Recording):
    """test_ext_scopes' Recording of the nodes (folio nid, ctx.node), one instance for its scope."""

    per_lruvec = False


def test_a_node_policy_governs_that_node_only():
    ref: list = []
    pol = NodeRecording(ref, "nid", "node")
    ops = ExtOps(pol, scope="node:1")
    sim = Simulator(SimConfig(memory_pages=sum(NODES), swap_pages=8000, nodes=list(NODES), check=True,
                              memcgs=MEMCGS), ops)
    ref.append(sim)
    sim.run(ArrayTrace("t", trace()))
    ops.finish()
    sim.check_conservation()
    assert pol.seen == {1} and pol.asked == {1}
    assert ops.governor("node:1") == "lru" and ops.governor("node:0") == "classic"
    assert ops.governor("system") == "classic"  # node 0 has no policy of its own: the system's (none)
    att = ops.attached["node:1"]
    assert att.ctx.capacity == sim.nodes[1].managed
    assert att.events["topped_up"] < sim.result()["nodes"][1]["vmstat"]["pgscan_kswapd"]
    # every lruvec of node 1 (each memcg's) and none of node 0
    assert sorted(divmod(int(k), 2)[1] for k in att.lruvec_keys) == [1] * len(sim.memcgs)
    # ctx.nr_resident: the pages on the lists of those lruvecs (node 1's table), not node 0's
    on_node1 = sum(ops.lruvec_of(k).total() for k in att.lruvec_keys.tolist())
    assert ops._resident(att) == on_node1 and 0 < on_node1 < sum(lv.total() for lv in ops._lruvecs())


def test_per_lruvec_instances_are_per_memcg_and_node():
    sim, ops = run_on_nodes([("system", S3FIFO())])
    per = ops.attached["system"].policy
    got = {(ictx.memcg, ictx.node): ictx for _, ictx in per.instances.values()}
    assert set(got) == {(m, n) for m in ("/", "/a", "/b") for n in (0, 1)}
    for (m, n), ictx in got.items():
        lv = sim.memcg_by_path(m).lruvecs[n] if m != "/" else sim.root_memcg.lruvecs[n]
        assert ictx.nr_resident == lv.total()
        assert ictx.capacity == (min(2400, sim.nodes[n].managed) if m == "/a" else sim.nodes[n].managed)
    assert ops.events["other_lruvec"] == 0 and ops.events["topped_up"] == 0


class OtherNode(LRU):
    """The LRU plug-in on node 0 that answers a page of node 1 at its 20th evict()."""

    per_lruvec = False

    def __init__(self, sim_ref: list):
        self.sim_ref, self.calls = sim_ref, 0

    def evict(self, ctx, n):
        self.calls += 1
        if self.calls == 20:
            f = self.sim_ref[0].folios
            far = np.flatnonzero(f.nid[: f.count] == 1)
            return far[:1]
        return super().evict(ctx, n)


def test_r8_a_handle_of_another_node_ends_a_node_policy():
    ref: list = []
    ops = ExtOps(OtherNode(ref), scope="node:0")
    sim = Simulator(SimConfig(memory_pages=sum(NODES), swap_pages=8000, nodes=list(NODES), check=True), ops)
    ref.append(sim)
    sim.run(ArrayTrace("t", trace()))
    ops.finish()
    sim.check_conservation()
    ex = ops.exit
    assert ex.kind == "ERROR" and "on node 1, outside the policy's scope (node:0)" in ex.reason
    assert ops.governor("node:0") == "classic"


@pytest.mark.parametrize("make", [LRU, LRUCompiled])
def test_a_plugin_gets_demotion_without_a_line(make):
    rec = anon_trace({0: 6000}, 80000, seed=4)
    rec["page"] = np.floor(6000 * np.random.default_rng(4).random(len(rec)) ** 2.0).astype(np.uint64)
    kw = dict(memcgs=(), nodes=(2000, 2000), numa=("pids=0,node=0,bind",), tiers=("dram", "cxl"))
    on, _ = run_on_nodes([("system", make())], rec, **kw)
    off, _ = run_on_nodes([("system", make())], rec, mechanisms={"demotion": False}, **kw)
    v, w = on.result()["vmstat"], off.result()["vmstat"]
    assert v["pgdemote_kswapd"] + v["pgdemote_direct"] > 0 and w["pgdemote_kswapd"] + w["pgdemote_direct"] == 0
    assert v["pgmajfault"] < 0.8 * w["pgmajfault"]


def test_cli_plugin_on_nodes_with_a_node_scope_and_core_mechanisms():
    args = ("--workload", "zipf", "-p", "accesses=60000", "-p", "pages=6000", "-p", "kind=anon", "--memory", "16MiB",
            "--nodes", "2", "--tiers", "dram,cxl", "--numa", "pids=0,node=0,bind", "--policy", "lru")
    on = run_json(*args)
    off = run_json(*args, "--mechanism", "-demotion")
    assert on["vmstat"]["pgdemote_kswapd"] + on["vmstat"]["pgdemote_direct"] > 0
    assert off["vmstat"]["pgdemote_kswapd"] + off["vmstat"]["pgdemote_direct"] == 0
    assert on["ext"]["scopes"][0]["exit"]["kind"] == "DONE"
    one = run_json(*args, "--scope", "node:1")
    assert one["ext"]["scopes"][0]["scope"] == "node:1"
