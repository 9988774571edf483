"""reclaim_ext policies inside the reclaim core (reclaim_ext.ext.adapter): the run works on every
kind of access, both drivers agree, and a broken policy is ejected to the classic fallback with
its exit record in the result and page conservation checked throughout."""

from __future__ import annotations

import json
import os

import pytest
from conftest import invoke, write_raising_lru

from reclaim_ext.api import RunConfig, run

HELLO = os.path.join(os.path.dirname(__file__), "..", "examples", "hello.py")
SMALL = {"zipf": dict(pages=3000, accesses=30_000),
         "mixed": dict(procs=2, anon_pages=400, files=2, file_pages=600, exec_pages=100, accesses=30_000)}


@pytest.mark.parametrize("policy", ["lru", HELLO])
@pytest.mark.parametrize("workload", list(SMALL))
def test_drivers_agree_for_an_ext_policy(policy, workload):
    out = {}
    for mode in ("fast", "exact"):
        r = run(RunConfig(policy=policy, workload=workload, workload_params=SMALL[workload], memory=512, swap=2048,
                          mode=mode, check=True))
        assert r["exit"]["kind"] == "DONE", r["exit"]
        assert r["vmstat"]["pgscan_kswapd"] + r["vmstat"]["pgscan_direct"] > 0  # reclaim ran
        out[mode] = (r["misses"], r["vmstat"], r["cost"])
    assert out["fast"] == out["exact"]


def test_policy_raising_on_its_10th_call_is_ejected_and_the_run_completes(tmp_path):
    spec = write_raising_lru(tmp_path)
    args = ["--workload", "mixed", *[a for k, v in SMALL["mixed"].items() for a in ("-p", f"{k}={v}")],
            "--memory", "512", "--swap", "2048", "--check", "--json", "-"]
    r = invoke("run", "--policy", spec, *args)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    ex = out["exit"]
    assert ex["kind"] == "ERROR_POLICY" and "KeyError" in ex["reason"] and ex["hook"] == "evict"
    assert "Traceback" in ex["traceback"]
    assert out["accesses"] == SMALL["mixed"]["accesses"] and out["conservation_checked"]
    assert out["ext"]["attached"] is False


def test_voluntary_exit_hands_over_to_classic():
    from reclaim_ext.core.engine import SimConfig, Simulator
    from reclaim_ext.core.ops import SWAP_CLUSTER_MAX
    from reclaim_ext.ext.adapter import ExtOps
    from reclaim_ext.plugins.lru import LRU
    from reclaim_ext.trace import make_workload

    class Quits(LRU):
        calls = {"evict": 0, "added": 0}

        def added(self, ctx, handles):
            self.calls["added"] += 1
            super().added(ctx, handles)

        def evict(self, ctx, n):
            self.calls["evict"] += 1
            self.calls["added_at_exit"] = self.calls["added"]
            ctx.exit(5, "done experimenting")

    pol = Quits()
    ops = ExtOps(pol)
    sim = Simulator(SimConfig(memory_pages=512, swap_pages=2048, check=True), ops)
    trace = make_workload("zipf", **SMALL["zipf"])
    sim.run(trace)
    ops.finish()
    assert (ops.exit.kind, ops.exit.code, ops.exit.hook) == ("UNREG_POLICY", 5, "evict")
    assert pol.calls["evict"] == 1  # never asked again
    assert pol.calls["added"] == pol.calls["added_at_exit"]  # no hook after the exit
    assert sim.vm["pgscan_kswapd"] + sim.vm["pgscan_direct"] > SWAP_CLUSTER_MAX  # classic went on reclaiming


NOOP = os.path.join(os.path.dirname(__file__), "..", "examples", "noop.py")


@pytest.mark.parametrize("workload", list(SMALL))
def test_a_policy_that_always_defers_changes_no_counter(workload):
    """The classic policy runs underneath: deferring every pass (examples/noop.py) reproduces a
    plain classic run exactly (the no-op overhead check of the issue)."""
    out = {}
    for policy in ("classic", NOOP):
        r = run(RunConfig(policy=policy, workload=workload, workload_params=SMALL[workload], memory=512, swap=2048,
                          check=True))
        out[policy] = (r["misses"], r["vmstat"], r["cost"])
    assert out[NOOP] == out["classic"]


def test_defer_in_plain_cache_mode_is_the_fallback_lru():
    from reclaim_ext.ext.cache import run_cache
    from reclaim_ext.plugins.lru import LRU
    from reclaim_ext.policies import get_policy
    from reclaim_ext.trace import make_workload

    trace = make_workload("zipf", **SMALL["zipf"])
    noop = run_cache(trace, get_policy(NOOP), 300, check=True)
    assert noop["exit"]["kind"] == "DONE" and noop["events"]["deferred"] == noop["evictions"] > 0
    assert noop["misses"] == run_cache(trace, LRU(), 300)["misses"]


def test_t4_protected_pages_are_refused_then_the_policy_is_ejected():
    """A policy that proposes only mlocked, unevictable or under-writeback folios: none of them
    is evicted, each refusal is counted, the core tops up the batch, and a policy that keeps
    doing it starves reclaim and is ejected."""
    import numpy as np

    from reclaim_ext.core.engine import SimConfig, Simulator
    from reclaim_ext.core.ops import ScanControl
    from reclaim_ext.ext import Policy
    from reclaim_ext.ext.adapter import ExtOps
    from reclaim_ext.machine.folio import PG_mlocked, PG_unevictable, PG_writeback
    from reclaim_ext.trace import make_workload

    class ProposesProtected(Policy):
        def added(self, ctx, handles):
            pass

        def evict(self, ctx, n):
            return self.protected[:n].tolist()

    pol = ProposesProtected()
    ops = ExtOps(pol, starve_limit=3)
    sim = Simulator(SimConfig(memory_pages=2048, swap_pages=2048, check=True), ops)
    sim.run(make_workload("zipf", pages=1500, accesses=3000))  # fits: no reclaim yet
    f = sim.folios
    resident = np.flatnonzero(f.flags[: f.count] & np.uint16(1 << 11))
    pol.protected = resident[:30]
    for i, flag in enumerate((PG_mlocked, PG_unevictable, PG_writeback)):
        f.flags[pol.protected[i * 10:(i + 1) * 10]] |= np.uint16(flag)
    lv = sim.root_lruvec(sim.node)
    for _ in range(3):
        sc = ScanControl(nr_to_reclaim=32, priority=0)
        ids = ops._candidates(sim, lv, ops.attached["system"], 30)  # refused; the batch is topped up from classic's lists
        ops._shrink(sim, lv, sc, ids)
        assert sc.nr_reclaimed > 0
        assert (f.flags[pol.protected] & np.uint16(1 << 11)).all()  # every protected folio resident
    sim.check_conservation()
    assert ops.events["refused_protected"] == 90
    assert ops.exit.kind == "ERROR_STALL" and "starvation" in ops.exit.reason
    ops.finish()  # the run is over: stops the policy's watchdog thread
