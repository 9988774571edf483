"""Proactive reclaim (--proactive AT:PATH:SIZE[:swappiness=N]): a write to memory.reclaim at a
point of the trace runs user_proactive_reclaim's loop (batches of a quarter of what is left,
MAX_RECLAIM_RETRIES batches without progress, then -EAGAIN), with the swappiness override."""

from __future__ import annotations

import pytest

from conftest import invoke
from reclaim_ext.api import RunConfig, run
from reclaim_ext.errors import ConfigError
from reclaim_ext.machine.memcg import parse_proactive

MEMCGS = ["name=a,pids=0", "name=b,pids=1"]
WORKLOAD = dict(workload="mixed", workload_params=dict(procs=2, accesses=60_000, anon_pages=600, file_pages=2000),
                memory=4096, swap=4096, memcgs=MEMCGS, check=True)


def go(*proactive, **kw):
    return run(RunConfig(proactive=list(proactive), **{**WORKLOAD, **kw}))


def test_a_write_reclaims_what_it_asks_for():
    base = go()
    r = go("30000:/a:2MiB")
    (w,) = r["proactive"]
    assert w["at"] == 30000 and w["memcg"] == "/a" and w["result"] == "ok"
    assert 512 <= w["reclaimed"] < 512 + 4 * 32  # batches of a quarter of the rest, at least 32 each
    a0 = next(m for m in base["memcgs"] if m["name"] == "/a")["memory_stat"]["pgsteal"]
    a1 = next(m for m in r["memcgs"] if m["name"] == "/a")["memory_stat"]["pgsteal"]
    assert a1 > a0  # the write's reclaim is a's (later pressure on a is lighter: it had room)


def test_swappiness_zero_reclaims_no_anon_and_fails_when_file_runs_out():
    r = go("59000:/:64MiB:swappiness=0")
    (w,) = r["proactive"]
    assert w["result"] == "EAGAIN" and 0 < w["reclaimed"] < 16384
    anon = go("59000:/:64MiB:swappiness=200")["proactive"][0]
    assert anon["reclaimed"] > w["reclaimed"]  # with anon allowed, swap takes more


def test_a_write_after_the_last_access_happens_and_one_past_it_is_a_warning():
    r = go("60000:/a:1MiB", "70000:/b:1MiB")
    (w,) = r["proactive"]
    assert w["at"] == 60000 and w["result"] == "ok" and w["reclaimed"] >= 256
    assert r["warnings"] == ["--proactive 70000:/b:256 (pages) never happened: the run ended after 60,000 accesses"]
    assert go("59999:/a:1MiB")["proactive"][0]["at"] == 59999  # before the last access, as before


@pytest.mark.parametrize("policy", ["classic", "mglru"])
def test_drivers_agree_with_proactive_reclaim(policy):
    fast = go("20000:/a:1MiB", "40000:/:2MiB:swappiness=100", policy=policy, mode="fast")
    exact = go("20000:/a:1MiB", "40000:/:2MiB:swappiness=100", policy=policy, mode="exact")
    assert fast["vmstat"] == exact["vmstat"] and fast["proactive"] == exact["proactive"]


def test_specs():
    p = parse_proactive("1_000:a/b:8MiB:swappiness=0")
    assert (p.at, p.path, p.pages, p.swappiness) == (1000, "a/b", 2048, 0)
    assert parse_proactive("5:/:4KiB").path == ""
    for bad in ("5:/a", "x:/a:1MiB", "-1:/a:1MiB", "5:/a:0", "5:/a:1MiB:swap=1", "5:/a:1MiB:swappiness=201",
                "5:a//b:1MiB"):
        with pytest.raises(ConfigError):
            parse_proactive(bad)
    r = invoke("run", "-p", "accesses=1000", "--proactive", "10:/nope:1MiB")
    assert r.exit_code == 2 and "no such memcg" in r.stderr
