"""memory.swap.max: a memcg's swap slots (its subtree's swapped-out pages) never exceed it
(mem_cgroup_try_charge_swap refuses, counting max and fail in memory.swap.events), a swap-in
uncharges the memcg charged at swap-out, and get_scan_count / MGLRU's get_swappiness see the room
left (mem_cgroup_get_nr_swap_pages); the conservation check verifies the accounting."""

from __future__ import annotations

import pytest

from conftest import invoke
from reclaim_ext.api import RunConfig, run
from reclaim_ext.machine.memcg import parse_memcg_spec

WORKLOAD = dict(workload="mixed", workload_params=dict(procs=2, accesses=80_000, anon_pages=1500, file_pages=3000,
                                                        anon_share=0.7),
                memory=16384 // 4, swap=8192, check=True)


def go(a_swap="max", policy="classic", mode="fast"):
    return run(RunConfig(memcgs=[f"name=a,pids=0,swap_max={a_swap}", "name=b,pids=1"], policy=policy, mode=mode,
                         **WORKLOAD))


def memcg(r, path):
    return next(m for m in r["memcgs"] if m["name"] == path)


@pytest.mark.parametrize("policy", ["classic", "mglru"])
def test_swap_max_caps_the_memcgs_swap(policy):
    free, capped, none = go("max", policy), go("256", policy), go("0", policy)
    assert memcg(free, "/a")["swap_usage"] > 256  # without a limit a swaps more than that
    a = memcg(capped, "/a")
    assert a["swap_max"] == 256 and 0 < a["swap_usage"] <= 256
    assert memcg(none, "/a")["swap_usage"] == 0
    # the other memcg is not limited
    assert memcg(capped, "/b")["swap_usage"] > 0
    for r in (free, capped, none):
        assert memcg(r, "/")["swap_usage"] == r["vmstat"]["pswpout"] - r["vmstat"]["pswpin"]


def test_a_refused_charge_counts_max_and_fail():
    a = memcg(go("256"), "/a")
    assert a["memory_swap_events"]["max"] == a["memory_swap_events"]["fail"] > 0


@pytest.mark.parametrize("policy", ["classic", "mglru"])
def test_drivers_agree_with_swap_max(policy):
    fast, exact = go("256", policy, "fast"), go("256", policy, "exact")
    assert fast["vmstat"] == exact["vmstat"] and fast["memcgs"] == exact["memcgs"]


def test_specs():
    assert parse_memcg_spec("name=a,swap_max=1MiB").swap_max == 256
    assert parse_memcg_spec("name=a,swap_max=max").swap_max is None
    assert parse_memcg_spec("name=a,swap_max=0").swap_max == 0
    r = invoke("run", "-p", "accesses=1000", "--memcg", "name=a,pids=0,swap_max=-1")
    assert r.exit_code == 2 and "swap_max" in r.stderr and "Traceback" not in r.stderr


def test_a_plug_in_gets_no_anon_reclaimed_beyond_the_memcgs_swap_max():
    """The extension layer sets aside anon victims of a memcg at its memory.swap.max (as with no
    swap at all), so a plug-in cannot push the memcg past it."""
    r = run(RunConfig(memcgs=["name=a,pids=0,swap_max=0", "name=b,pids=1"], policy="lru", **WORKLOAD))
    assert memcg(r, "/a")["swap_usage"] == 0 and memcg(r, "/b")["swap_usage"] > 0
    assert r["ext"]["events"]["anon_without_swap"] > 0
