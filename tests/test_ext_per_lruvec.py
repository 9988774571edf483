"""Policy.per_lruvec (issue 13): one instance of a policy per lruvec it governs, as the kernel
keeps one set of lists per memcg's lruvec. A shipped plug-in attached over several memcgs governs
each of them as if it were attached to that memcg alone (same counters, no page of another lruvec
offered, no top-up); switching, adoption and ejection work per instance, and one instance's failure
ejects the attachment as any policy's does. A policy without the attribute keeps one instance."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_json
from test_ext_scopes import MEMCGS, TRACE, two_memcg_trace

from reclaim_ext.core.engine import SimConfig, Simulator
from reclaim_ext.ext import IndexedList
from reclaim_ext.ext.adapter import ExtOps
from reclaim_ext.ext.lruvecs import PerLruvec
from reclaim_ext.plugins.fifo import FIFO
from reclaim_ext.plugins.lru import LRU
from reclaim_ext.plugins.s3fifo import S3FIFO
from reclaim_ext.policies import get_policy
from reclaim_ext.trace import ArrayTrace

PLUGINS = ["lru", "fifo", "mru", "lfu", "clock", "sieve", "2q", "arc", "s3fifo"]
TENANTS = ("--workload", "tenants", "-p", "a=zipf pages=3000 accesses=30000 alpha=0.99", "-p",
           "b=loop pages=800 passes=8", "--memcg", "name=a,pids=0", "--memcg", "name=b,pids=1", "--memory", "4MiB")


def run_ops(attach: list[tuple[str, object]], memcgs=MEMCGS, trace=TRACE, mode: str = "fast", mechanisms=None,
            **config):
    """A run with the policies attached at access 0 ((scope, policy), ...): (simulator, ops);
    `config`: SimConfig fields beside the defaults (4096 pages, no swap)."""
    ops = ExtOps(attach[0][1], scope=attach[0][0], mechanisms=mechanisms)
    sim = Simulator(SimConfig(**{"memory_pages": 4096, "swap_pages": 0, "mode": mode, "check": True,
                                 "memcgs": list(memcgs), **config}), ops)
    sim.run(ArrayTrace("t", trace[:1]))
    for scope, pol in attach[1:]:
        ops.attach(pol, scope, 1)
    sim.run(ArrayTrace("t", trace[1:]))
    ops.finish()
    sim.check_conservation()
    return sim, ops


def same_run(x, y) -> None:
    (sx, ox), (sy, oy) = x, y
    assert sx.vm == sy.vm
    assert sx.result()["memcgs"] == sy.result()["memcgs"]
    assert ox.events == oy.events


def test_cli_a_plugin_over_two_memcgs_governs_both():
    """`--policy lru --scope system` over two tenants' memcgs: no page of another lruvec offered,
    no top-up (before: each memcg's reclaim was offered the other's pages, counted and topped up
    from classic's lists), and the same run as an LRU attached to each memcg."""
    out = run_json(*TENANTS, "--policy", "lru", "--scope", "system")
    ev = out["ext"]["events"]
    assert ev["other_lruvec"] == 0 and ev["topped_up"] == 0
    assert out["ext"]["scopes"][0]["per_lruvec"] and out["ext"]["scopes"][0]["exit"]["kind"] == "DONE"
    sep = run_json(*TENANTS, "--policy", "lru", "--scope", "memcg:/a", "--switch", "0:lru@memcg:/b",
                   "--switch", "0:lru@memcg:/")
    for key in ("misses", "vmstat", "memcgs"):
        assert out[key] == sep[key], key


@pytest.mark.parametrize("name", PLUGINS)
def test_a_plugin_over_the_system_is_one_per_memcg(name):
    """Each shipped plug-in at the system scope evicts exactly what it does attached to each
    memcg (and the root) on its own."""
    one = run_ops([("system", get_policy(name))])
    sep = run_ops([("memcg:/a", get_policy(name)), ("memcg:/b", get_policy(name)), ("memcg:/", get_policy(name))])
    same_run(one, sep)
    assert one[1].events["other_lruvec"] == 0
    att = one[1].attached["system"]
    assert isinstance(att.policy, PerLruvec) and len(att.policy.instances) == 3  # root, a, b


def test_a_subtree_scope_is_one_instance_per_memcg():
    """memcg:/a over a and its child a/b: as an LRU on a (alone) and one on a/b."""
    memcgs = ["name=a,pids=0,max=240", "name=a/b,pids=1,max=120"]
    one = run_ops([("memcg:/a", LRU())], memcgs)
    sep = run_ops([("memcg:/a", LRU()), ("memcg:/a/b", LRU())], memcgs)
    same_run(one, sep)
    assert one[1].events["other_lruvec"] == 0
    glob = type("GlobalLRU", (LRU,), {"per_lruvec": False})
    assert run_ops([("memcg:/a", glob())], memcgs)[1].events["other_lruvec"] > 0  # one LRU over both: as before


def test_drivers_agree():
    out = []
    for mode in ("fast", "exact"):
        sim, ops = run_ops([("system", S3FIFO())], mode=mode)
        out.append((sim.vm, sim.result()["memcgs"], ops.events))
    assert out[0] == out[1]


def test_instances_are_made_like_the_first_and_see_their_memcg():
    pol = S3FIFO(small_size_ratio=0.2)
    sim, ops = run_ops([("system", pol)])
    per = ops.attached["system"].policy
    got = {ictx.memcg: (p, ictx) for p, ictx in per.instances.values()}
    assert set(got) == {"/", "/a", "/b"}
    assert pol in [p for p, _ in got.values()]  # the object attached is one of them
    assert all(type(p) is S3FIFO and p.small_size_ratio == 0.2 for p, _ in got.values())
    assert got["/a"][1].capacity == 160 and got["/"][1].capacity == sim.node.managed
    assert got["/a"][0].small_size == 32 and len(got["/a"][0].small) + len(got["/a"][0].main) > 0


class Counting(LRU):
    def evict(self, ctx, n):
        ctx.counters["asked"] = ctx.counters.get("asked", 0) + 1
        ctx.counters[ctx.memcg] = 1
        return super().evict(ctx, n)


def test_counters_are_summed_over_instances():
    sim, ops = run_ops([("system", Counting())])
    att = ops.attached["system"]
    own = att.as_dict()["policy_counters"]
    asked = [ictx.counters.get("asked", 0) for _, ictx in att.policy.instances.values()]
    assert own["asked"] == sum(asked) and sorted(asked)[-2] > 0  # a and b were both asked
    assert own["/a"] == own["/b"] == 1


def test_a_memcg_moving_to_a_nearer_scope_takes_its_instance():
    """A FIFO attached to memcg b takes b from the system's LRU: b's instance saw its pages leave
    and is gone; when the FIFO is detached, a new instance adopts b's pages."""
    ops = ExtOps(LRU())
    sim = Simulator(SimConfig(memory_pages=4096, swap_pages=0, check=True, memcgs=MEMCGS), ops)
    sim.run(ArrayTrace("t", TRACE[:8000]))
    per = ops.attached["system"].policy
    b = sim.memcg_by_path("b")
    old_b, old_a = per.instances[b.id][0], per.instances[sim.memcg_by_path("a").id][0]
    ops.switch(FIFO(), 8000, "memcg:/b")
    assert b.id not in per.instances and len(old_b.last) == 0
    sim.run(ArrayTrace("t", TRACE[8000:16000]))
    ops.switch(None, 16000, "memcg:/b")
    new_b = per.instances[b.id][0]
    assert new_b is not old_b and len(new_b.last) == b.lruvecs[0].total() > 0
    assert per.instances[sim.memcg_by_path("a").id][0] is old_a  # a's never moved
    sim.run(ArrayTrace("t", TRACE[16000:]))
    ops.finish()
    sim.check_conservation()
    assert ops.exit.kind == "DONE" and ops.events["other_lruvec"] == 0 and ops.events["topped_up"] == 0
    assert [h["kind"] for h in ops.history] == ["UNREG"] and ops.enable_seq == 2


class RaisesInB(LRU):
    """The LRU plug-in whose instance for memcg b raises on its 5th evict()."""

    def __init__(self):
        self.calls = 0

    def evict(self, ctx, n):
        self.calls += ctx.memcg == "/b"
        if self.calls == 5:
            raise RuntimeError("policy bug in b")
        return super().evict(ctx, n)

    def dump(self, ctx):
        return f"{len(self.last)} pages"


def test_one_instance_failing_ejects_the_attachment():
    sim, ops = run_ops([("system", RaisesInB())])
    ex = ops.exit
    assert ex.kind == "ERROR_POLICY" and ex.hook == "evict" and "policy bug in b" in ex.reason
    assert ex.dump.splitlines()[0].startswith("/: ") and "\n/a: " in ex.dump and "\n/b: " in ex.dump
    assert ops._owner == {}  # classic governs every memcg from then on
    assert ops.attached["system"].successor == "classic"
    # with an FIFO on b, a's instance failing hands a (only) to the parent scope's policy
    sim, ops = run_ops([("memcg:/b", FIFO()), ("system", RaisesInB())], trace=two_memcg_trace(seed=5))
    assert ops.attached["memcg:/b"].host.exit.kind == "DONE"


class ChangesInInit(LRU):
    def init(self, ctx):
        super().init(ctx)
        if ctx.memcg == "/b":
            IndexedList().push_head(1)


class FailsInInit(LRU):
    def init(self, ctx):
        if ctx.memcg == "/b":
            raise ValueError("no b")
        super().init(ctx)


@pytest.mark.parametrize("cls,kind,words", [(ChangesInInit, "ERROR", "rule R7"),
                                            (FailsInInit, "ERROR_POLICY", "no b")])
def test_an_instance_init_is_init(cls, kind, words):
    sim, ops = run_ops([("system", cls())])
    assert ops.exit.kind == kind and ops.exit.hook == "init" and words in ops.exit.reason
    assert ops._owner == {}


def test_an_instance_made_later_is_checked_like_init():
    """An instance made after the start (memcg b given back by a nearer scope) runs its init
    under the same rules: its failure ejects the attachment."""
    ops = ExtOps(FIFO(), scope="memcg:/b")
    sim = Simulator(SimConfig(memory_pages=4096, swap_pages=0, check=True, memcgs=MEMCGS), ops)
    sim.run(ArrayTrace("t", TRACE[:100]))
    ops.attach(ChangesInInit(), "system", 100)
    assert ops.attached["system"].alive
    ops.switch(None, 100, "memcg:/b")
    sim.run(ArrayTrace("t", TRACE[100:]))
    ops.finish()
    sim.check_conservation()
    assert ops.exit.kind == "ERROR" and "rule R7" in ops.exit.reason


@pytest.mark.parametrize("name", ["lru-compiled", "s3fifo-compiled"])
def test_a_compiled_plugin_is_one_per_memcg(name):
    one = run_ops([("system", get_policy(name))])
    sep = run_ops([("memcg:/a", get_policy(name)), ("memcg:/b", get_policy(name)), ("memcg:/", get_policy(name))])
    same_run(one, sep)
    per = one[1].attached["system"].policy
    assert one[1].events["other_lruvec"] == 0 and len(per.instances) == 3
    assert one[1].exit.kind == "DONE"


def test_a_policy_without_the_attribute_is_one_instance():
    glob = type("GlobalLRU", (LRU,), {"per_lruvec": False})()
    sim, ops = run_ops([("system", glob)])
    assert ops.attached["system"].policy is glob
    assert ops.events["other_lruvec"] > 0 and ops.events["topped_up"] > 0  # today's behaviour
    assert np.array_equal(ops.attached["system"].lruvec_keys, sorted(sim.memcgs))  # one node: key = memcg id


def test_without_memcgs_the_policy_runs_as_it_is():
    """The root memcg's lruvec is the machine's only one: the attached object is its instance,
    called directly (no cost per call)."""
    pol = LRU()
    ops = ExtOps(pol)
    sim = Simulator(SimConfig(memory_pages=512, swap_pages=0, check=True), ops)
    sim.run(ArrayTrace("t", two_memcg_trace(6000)))
    ops.finish()
    att = ops.attached["system"]
    assert att.policy is pol and not att.as_dict()["per_lruvec"] and len(pol.last) > 0


@pytest.mark.parametrize("name", ["lru-compiled", "s3fifo-compiled"])
@pytest.mark.parametrize("memcgs", [MEMCGS, ()], ids=["memcgs", "root"])
def test_a_compiled_plugin_takes_a_stretchs_events_in_one_call(name, memcgs, monkeypatch):
    """A compiled policy gets a stretch's adds and accesses in one call (CompiledPolicy.events,
    through PerLruvec for one instance per memcg): the same run as with one call per run of one
    kind, in fewer calls."""
    from reclaim_ext.ext import adapter, compiled

    calls = {}
    for hook in ("events", "added", "accessed"):
        orig = getattr(compiled.CompiledPolicy, hook)
        monkeypatch.setattr(compiled.CompiledPolicy, hook,
                            lambda self, ctx, *a, _o=orig, _h=hook: calls.__setitem__(_h, calls.get(_h, 0) + 1)
                            or _o(self, ctx, *a))
    one = run_ops([("system", get_policy(name))], memcgs=memcgs)
    batched = dict(calls)
    calls.clear()
    monkeypatch.setattr(adapter, "is_compiled", lambda policy: False)
    runs = run_ops([("system", get_policy(name))], memcgs=memcgs)
    same_run(one, runs)
    assert one[1].exit.kind == runs[1].exit.kind == "DONE" and one[1].events["topped_up"] == 0
    assert batched["events"] > 0 and "events" not in calls
    assert batched["events"] + batched.get("added", 0) + batched.get("accessed", 0) < calls["added"] + calls["accessed"]


@pytest.mark.parametrize("memcgs", [MEMCGS, ()], ids=["memcgs", "root"])
def test_a_lookahead_plugin_takes_a_stretchs_adds_then_its_accesses(memcgs, monkeypatch):
    """A Python policy with `lookahead` gets a stretch's adds in one `added` call and its accesses
    in one `accessed` call (no reclaim inside a stretch, so a page's add comes before its
    accesses; ctx.when numbers the events as one call per event would): the run of one call per
    event (the exact driver) and of one call per run of one kind (without lookahead), in far
    fewer calls."""
    calls = {"added": 0, "accessed": 0}

    class Counted(LRU):
        def added(self, ctx, handles):
            calls["added"] += 1
            super().added(ctx, handles)

        def accessed(self, ctx, handles):
            calls["accessed"] += 1
            super().accessed(ctx, handles)

    class Runs(Counted):
        lookahead = False

    small = {"memory_pages": 1024}  # reclaim without memcgs too
    grouped = run_ops([("system", Counted())], memcgs=memcgs, **small)
    n_grouped = sum(calls.values())
    calls.update(added=0, accessed=0)
    runs = run_ops([("system", Runs())], memcgs=memcgs, **small)
    n_runs = sum(calls.values())
    same_run(grouped, runs)
    same_run(grouped, run_ops([("system", Counted())], memcgs=memcgs, mode="exact", **small))
    assert grouped[1].events["topped_up"] == 0 and grouped[0].vm["pgsteal_file"] + grouped[0].vm["pgsteal_anon"] > 0
    assert 0 < 3 * n_grouped < n_runs
