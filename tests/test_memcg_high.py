"""memory.high: a task that charges pages above its memcg's (or an ancestor's) high reclaims on its
return to user space (reclaim_high, a `high` event per memcg over), and is throttled
(calculate_high_delay) when reclaim does not bring the memcg back; the drivers agree."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import invoke
from reclaim_ext.core.engine import SimConfig, Simulator
from reclaim_ext.core.memcontrol import HZ, calculate_high_delay, calculate_overage, mem_find_max_overage
from reclaim_ext.machine.memcg import parse_memcg_spec
from reclaim_ext.machine.node import Memcg
from reclaim_ext.policies import get_policy
from reclaim_ext.trace import ArrayTrace, Kind
from reclaim_ext.trace.record import make_records


def trace(n=30_000, kind=Kind.FILE_FD) -> np.ndarray:
    """pid 0 (memcg a) streams over 3,000 pages, pid 1 (memcg b) reads 200 hot pages."""
    rec = make_records(n)
    pid = (np.arange(n) % 2).astype(np.int64)
    rec["pid"] = pid
    rec["file"] = 1 + pid
    rec["page"] = np.where(pid == 0, (np.arange(n) // 2) % 3000, (np.arange(n) // 2) % 200).astype(np.uint64)
    rec["kind"] = np.where(pid == 0, int(kind), int(Kind.FILE_FD))
    return rec


def run(policy="classic", mode="fast", high="2MiB", kind=Kind.FILE_FD, swap=0):
    sim = Simulator(SimConfig(memory_pages=8192, swap_pages=swap, mode=mode, check=True,
                              memcgs=[f"name=a,pids=0,high={high}", "name=b,pids=1"]), get_policy(policy))
    sim.run(ArrayTrace("t", trace(kind=kind)))
    return sim


def stats(sim, path):
    return next(m for m in sim.result()["memcgs"] if m["name"] == path)


@pytest.mark.parametrize("policy", ["classic", "mglru"])
def test_high_holds_the_memcg_near_its_high(policy):
    plain, held = run(policy, high="max"), run(policy)
    a0, a1 = stats(plain, "/a"), stats(held, "/a")
    assert a0["usage"] == 3000 and a0["memory_events"]["high"] == 0  # memory is large: nothing reclaimed
    assert a1["high"] == 512 and a1["memory_events"]["high"] > 0
    assert a1["peak"] <= 512 + 64  # at most one charge batch above high
    assert a1["memory_stat"]["pgsteal"] > 0 and stats(held, "/b")["memory_stat"]["pgsteal"] == 0
    assert held.cost["high_delay_jiffies"] == 0  # reclaim kept up: no throttling


@pytest.mark.parametrize("policy", ["classic", "mglru"])
def test_drivers_agree_with_high(policy):
    fast, exact = run(policy, "fast"), run(policy, "exact")
    assert fast.vm == exact.vm and fast.result()["memcgs"] == exact.result()["memcgs"]
    assert fast.cost == exact.cost


def test_a_task_is_throttled_when_reclaim_cannot_keep_up():
    """Anonymous memory without swap cannot be reclaimed: the task charges on above high, and is
    throttled for calculate_high_delay's penalty, which the modelled time includes."""
    sim = run(kind=Kind.ANON)
    a = stats(sim, "/a")
    assert a["usage"] > a["high"] and a["memory_events"]["high"] > 0
    jiffies = sim.cost["high_delay_jiffies"]
    assert jiffies > 0
    base = run(kind=Kind.ANON, high="max")
    assert sim.result()["modeled_seconds"] == pytest.approx(base.result()["modeled_seconds"] + jiffies / HZ, rel=0.05)


def test_the_penalty_formula():
    assert calculate_overage(500, 512) == 0
    assert calculate_overage(768, 512) == (256 << 20) // 512  # 50 % over: half of 2**20
    assert calculate_high_delay(64, 0) == 0
    over = calculate_overage(1024, 512)  # 100 % over
    assert calculate_high_delay(64, over) == (over * over * HZ) >> 20 >> 14
    assert calculate_high_delay(32, over) == calculate_high_delay(64, over) // 2
    root = Memcg(id=0)
    p = Memcg(id=1, name="p", parent=root, usage=1024, high=512)
    c = Memcg(id=2, name="p/c", parent=p, usage=600, high=1 << 62)
    root.children, p.children = [p], [c]
    assert mem_find_max_overage(c) == over  # the parent's overage counts for the child's tasks


def test_specs():
    assert parse_memcg_spec("name=a,high=2MiB").high == 512
    assert parse_memcg_spec("name=a,high=max").high is None
    r = invoke("run", "-p", "accesses=1000", "--memcg", "name=a,pids=0,high=4KiB")
    assert r.exit_code == 2 and "high" in r.stderr and "Traceback" not in r.stderr
