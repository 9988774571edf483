"""Broken policies in plain-cache mode (reference extension-anchors.md §5(c), tests T1-T3, T5, T6,
T9): each is ejected with the right exit kind, or tolerated where the rules say so; the run
finishes; no page is lost (conservation); and because the fallback is LRU by last access, a
policy that behaved as LRU until it broke gives exactly the misses of a pure LRU run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import invoke, list_lru, write_raising_lru

from reclaim_ext.ext import IndexedList, Policy
from reclaim_ext.ext.cache import run_cache
from reclaim_ext.trace import ArrayTrace, Kind
from reclaim_ext.trace.record import make_records

CAP = 200


def zipf_trace(n: int = 20_000, objects: int = 2_000, seed: int = 1) -> ArrayTrace:
    rng = np.random.default_rng(seed)
    rec = make_records(n)
    rec["kind"] = Kind.FILE_FD
    rec["page"] = (rng.zipf(1.1, n) % objects).astype(np.uint64)
    return ArrayTrace("zipf", rec)


TRACE = zipf_trace()
LRU = list_lru()  # one evict() call per miss: the tests count calls


def lru_misses() -> int:
    return run_cache(TRACE, LRU(), CAP, check=True)["misses"]


class Breaks(LRU):
    """LRU until its k-th evict() call, then does `bad(ctx, n)` instead."""

    def __init__(self, k: int, bad):
        self.k, self.bad, self.calls = k, bad, 0

    def evict(self, ctx, n):
        self.calls += 1
        if self.calls >= self.k:
            return self.bad(ctx, n)
        return super().evict(ctx, n)

    def dump(self, ctx):
        return f"calls={self.calls} queue={len(self.q)}"


def run(policy, **limits):
    return run_cache(TRACE, policy, CAP, check=True, **limits)


def test_t1_raising_policy_is_ejected_and_the_fallback_finishes_the_run():
    def boom(ctx, n):
        raise RuntimeError("policy bug")

    res = run(Breaks(10, boom))
    ex = res["exit"]
    assert ex["kind"] == "ERROR_POLICY" and ex["hook"] == "evict"
    assert "RuntimeError: policy bug" in ex["reason"] and "Traceback" in ex["traceback"]
    assert ex["dump"].startswith("calls=10")  # the policy's dump is in the record
    assert res["accesses"] == len(TRACE.to_array())
    assert res["misses"] == lru_misses()  # the fallback continued exactly where LRU was
    assert res["events"]["fallback_evictions"] > 0


def test_t2_endless_loop_is_stopped_by_the_watchdog():
    def spin(ctx, n):
        while True:
            pass

    res = run(Breaks(5, spin), hook_budget=0.2)
    assert res["exit"]["kind"] == "ERROR_STALL" and "0.2 s" in res["exit"]["reason"]
    assert res["misses"] == lru_misses()


@pytest.mark.parametrize("answer,why", [
    (lambda ctx, n: None, "None"),
    (lambda ctx, n: "a", "scalar"),
    (lambda ctx, n: ["a"], "not integer handles"),
    (lambda ctx, n: 3, "scalar"),
    (lambda ctx, n: [1.5], "float64 values"),
    (lambda ctx, n: [-1], "never issued"),
    (lambda ctx, n: [10**9], "never issued"),
    (lambda ctx, n: [[1, 2]], "shape"),
])
def test_t3_garbage_answers_eject_the_policy(answer, why):
    res = run(Breaks(7, answer))
    ex = res["exit"]
    assert ex["kind"] == "ERROR" and why in ex["reason"], ex
    assert res["misses"] == lru_misses()  # nothing was evicted on the bad answer's say-so


def test_naming_the_incoming_page_is_a_stale_answer():
    """The page being brought in is not resident yet: ignored and counted like any stale
    handle, and the fallback evicts; always doing it is starvation."""
    res = run(Breaks(7, lambda ctx, n: [ctx.incoming]), starve_limit=10)
    assert res["events"]["stale_handles"] == 10
    assert res["exit"]["kind"] == "ERROR_STALL"
    assert res["misses"] == lru_misses()


def test_t3_duplicates_and_too_many_handles_are_contract_errors():
    from reclaim_ext.ext.safety import ContractError, check_victims

    resident = np.ones(10, dtype=bool)
    with pytest.raises(ContractError, match="twice"):
        check_victims([3, 3], 2, resident, 10)
    with pytest.raises(ContractError, match="2 handles for a request of 1"):
        check_victims([3, 4], 1, resident, 10)
    with pytest.raises(ContractError, match="never issued"):
        check_victims([11], 1, resident, 10)
    resident[4] = False
    live, stale = check_victims([3, 4], 2, resident, 10)
    assert live.tolist() == [3] and stale == 1
    # residency as a function of the answer's handles (the reclaim core's form): the same verdict,
    # asked for those handles only
    asked = []
    live, stale = check_victims([3, 4], 2, lambda h: asked.append(h.tolist()) or resident[h], 10)
    assert live.tolist() == [3] and stale == 1 and asked == [[3, 4]]


def test_t5_starving_policy_is_topped_up_then_ejected():
    res = run(Breaks(1, lambda ctx, n: []), starve_limit=16)
    assert res["exit"]["kind"] == "ERROR_STALL" and "starvation" in res["exit"]["reason"]
    assert res["events"]["topped_up"] == 16
    assert res["misses"] == lru_misses()


class SometimesStale(LRU):
    """Every 10th answer names a page that was evicted earlier (a stale handle)."""

    def init(self, ctx):
        super().init(ctx)
        self.gone, self.calls = [], 0

    def removed(self, ctx, handles):
        super().removed(ctx, handles)
        self.gone.extend(handles.tolist())

    def evict(self, ctx, n):
        self.calls += 1
        if self.calls % 10 == 0 and self.gone and self.gone[0] not in self.q:
            return [self.gone[0]]
        return super().evict(ctx, n)


def test_t6_stale_handles_are_ignored_and_counted_not_ejected():
    res = run(SometimesStale())
    assert res["exit"]["kind"] == "DONE"
    assert res["events"]["stale_handles"] > 0
    assert res["events"]["topped_up"] == res["events"]["stale_handles"]


@pytest.mark.parametrize("hook", ["init", "added", "accessed", "evict", "removed"])
def test_t9_voluntary_exit_from_each_hook(hook):
    class Leaves(LRU):
        def __getattribute__(self, name):
            fn = super().__getattribute__(name)
            if name == hook:
                def leave(ctx, *args):
                    ctx.exit(7, f"leaving from {hook}")
                return leave
            return fn

    res = run(Leaves())
    ex = res["exit"]
    assert (ex["kind"], ex["code"], ex["hook"]) == ("UNREG_POLICY", 7, hook)
    assert ex["reason"] == f"leaving from {hook}"
    if hook != "init":
        assert res["misses"] == lru_misses()


def test_policy_that_cannot_init_runs_on_the_fallback_from_the_start():
    class NoInit(Policy):
        name = "no-init"

        def init(self, ctx):
            raise ValueError("cannot start")

    res = run(NoInit())
    assert res["exit"]["kind"] == "ERROR_POLICY" and res["exit"]["at_access"] == 0
    assert res["misses"] == lru_misses()


def test_cli_run_with_a_policy_that_raises_on_its_10th_call(tmp_path):
    spec = write_raising_lru(tmp_path)
    r = invoke("run", "--cache", "--capacity", "300", "--policy", spec, "--check", "-p", "accesses=20000",
               "-p", "pages=3000", "--json", "-")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["exit"]["kind"] == "ERROR_POLICY" and "KeyError" in out["exit"]["reason"]
    assert out["accesses"] == 20000
    lru = json.loads(invoke("run", "--cache", "--capacity", "300", "--policy", "lru", "-p", "accesses=20000",
                            "-p", "pages=3000", "--json", "-").stdout)
    assert out["misses"] == lru["misses"]


def test_indexed_list_and_ghost_table():
    from reclaim_ext.ext import GhostTable

    q = IndexedList([1, 2, 3])  # pushed at the head in turn: 3 is the head, 1 the tail
    assert list(q.from_tail()) == [1, 2, 3] and list(q.from_head()) == [3, 2, 1]
    q.move_head(1)
    q.move_tail(3)
    assert list(q.from_tail()) == [3, 2, 1] and q.pop_tail() == 3 and len(q) == 2
    with pytest.raises(KeyError):
        q.push_head(2)
    g = GhostTable(2)
    for h in (5, 6, 7):
        g.add(h)
    assert 5 not in g and 6 in g and 7 in g and len(g) == 2
    g.add(6)  # refreshed: 7 is now the oldest
    g.add(8)
    assert 7 not in g and 6 in g
    assert IndexedList.lowest(np.array([10, 11, 12]), np.array([3, 1, 2]), 2).tolist() == [11, 12]


def test_t10_attach_detach_loop():
    """Attach and detach a policy every 500 accesses, in both modes: every page survives, every
    detached policy ends with UNREG, and the run completes."""
    from reclaim_ext.api import RunConfig
    from reclaim_ext.api import run as api_run

    switches = [f"{i * 500}:{'none' if i % 2 else 'lru'}" for i in range(1, 40)]
    for cache in (True, False):
        cfg = RunConfig(policy="lru", workload="zipf", workload_params=dict(pages=3000, accesses=20_000),
                        check=True, switches=switches, **(dict(cache=True, capacity=300) if cache else
                                                            dict(memory=512, swap=2048)))
        res = api_run(cfg)
        assert res["accesses"] == 20_000
        kinds = [e["kind"] for e in res["exits"]]
        assert kinds.count("UNREG") >= 19 and set(kinds) <= {"UNREG", "DONE"}


class Chaos(LRU):
    """T11: a good policy with faults injected at random: exceptions, garbage, stale answers and
    slow calls, decided by a seeded generator."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def evict(self, ctx, n):
        fault = self.rng.random()
        if fault < 0.002:
            raise RuntimeError("chaos")
        if fault < 0.004:
            return [object()]
        if fault < 0.05:
            return [10**12]
        return super().evict(ctx, n)


@pytest.mark.parametrize("seed", range(5))
def test_t11_chaos_policy_never_breaks_the_run(seed):
    """Whatever fault comes first ejects the policy; the run completes with conservation checked,
    and since the policy was an LRU until then and the fallback is LRU, the misses are LRU's."""
    res = run(Chaos(seed))
    assert res["accesses"] == len(TRACE.to_array())
    assert res["exit"]["kind"] in ("ERROR", "ERROR_POLICY")
    assert res["misses"] == lru_misses()
