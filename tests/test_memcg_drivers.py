"""Several memcgs with memory.max: the fast driver (segments cut before the first charge over a
limit) and the exact driver give identical counters, per memcg too, for both policies, with the
conservation check (per-memcg usage, folios on their own memcg's lists) after every reclaim."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reclaim_ext.core.engine import OutOfMemory, SimConfig, Simulator
from reclaim_ext.policies import get_policy
from reclaim_ext.policies.mglru import MGLRU
from reclaim_ext.trace import ArrayTrace, make_workload
from test_engine_drivers import assert_same, small_traces


def run_both(records: np.ndarray, policy: str, memcgs: list[str], mechanisms: str | None = None, check: bool = True,
             **config) -> dict:
    out = {}
    for mode in ("fast", "exact"):
        sim = Simulator(SimConfig(mode=mode, check=check, memcgs=memcgs, **config), get_policy(policy, mechanisms))
        oom = None
        try:
            sim.run(ArrayTrace("t", records))
        except OutOfMemory as e:
            oom = str(e)
        res = sim.result()
        out[mode] = {
            "oom": oom, "misses": res["misses"], "vmstat": res["vmstat"], "cost": res["cost"],
            "free_pages": res["free_pages"], "memcgs": res["memcgs"], "policy_state": sim.ops.dump(sim),
            "clocks": [m.lruvecs[0].nonresident_age for m in sim.memcgs.values()],
            "memcg_of_folio": sim.folios.memcg[: sim.folios.count].tolist(),
        }
    return out


@st.composite
def memcg_specs(draw):
    """Two or three memcgs over pids 0..2 (one may be nested), each maybe limited."""
    lim = st.one_of(st.none(), st.integers(32, 160))
    shape = draw(st.sampled_from(["flat", "nested", "parent-limit"]))
    if shape == "flat":
        names = ["a", "b"]
    elif shape == "nested":
        names = ["a", "a/b"]
    else:
        names = ["p/x", "p/y", "p"]
    specs = []
    for i, name in enumerate(names):
        mx = draw(lim)
        pids = f",pids={i}" if i < 2 else ""
        specs.append(f"name={name}{pids}" + (f",max={mx}" if mx is not None else ""))
    return specs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rec=small_traces(), memcgs=memcg_specs(), memory=st.integers(64, 400), swap=st.integers(0, 400),
       swappiness=st.sampled_from([0, 60, 200]))
def test_drivers_agree_with_memcg_limits_classic(rec, memcgs, memory, swap, swappiness):
    assert_same(run_both(rec, "classic", memcgs, memory_pages=memory, swap_pages=swap, swappiness=swappiness))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rec=small_traces(), memcgs=memcg_specs(), memory=st.integers(64, 400), swap=st.integers(0, 400),
       swappiness=st.sampled_from([0, 60, 200]), mechanisms=st.sampled_from([None, "-memcg_lru"]))
def test_drivers_agree_with_memcg_limits_mglru(rec, memcgs, memory, swap, swappiness, mechanisms):
    """MGLRU with its memcg LRU for root reclaim and without it (-memcg_lru: the tree walk)."""
    assert_same(run_both(rec, "mglru", memcgs, mechanisms, memory_pages=memory, swap_pages=swap,
                         swappiness=swappiness))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rec=small_traces(), memcgs=memcg_specs(), memory=st.integers(64, 400), swap=st.integers(0, 400),
       mechanisms=st.sampled_from(["+ptwalk,+pmd_young,+bloom", "+lookaround", "+ptwalk,+lookaround"]))
def test_drivers_agree_with_memcg_limits_classic_mechanisms(rec, memcgs, memory, swap, mechanisms):
    """Classic with MGLRU's access-detection mechanisms: per-memcg walks and lookaround."""
    assert_same(run_both(rec, "classic", memcgs, mechanisms, memory_pages=memory, swap_pages=swap))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rec=small_traces(), memcgs=memcg_specs(), memory=st.integers(64, 400), swap=st.integers(0, 400),
       swappiness=st.sampled_from([0, 60, 200]), policy=st.sampled_from(["classic", "mglru"]))
def test_compiled_paths_agree_with_memcg_limits(rec, memcgs, memory, swap, swappiness, policy):
    """Without the contract checks, which turn MGLRU's evict_round and compiled
    try_to_shrink_lruvec loop off: where a random trace reclaims, the compiled paths may run
    (test_drivers_agree_on_mixed_workload_with_memcgs asserts that they do), under memcg limits."""
    assert_same(run_both(rec, policy, memcgs, check=False, memory_pages=memory, swap_pages=swap,
                         swappiness=swappiness))


@pytest.mark.parametrize("policy,mechanisms", [("classic", None), ("mglru", None), ("mglru", "-memcg_lru")])
@pytest.mark.parametrize("check", [True, False])
def test_drivers_agree_on_mixed_workload_with_memcgs(policy, mechanisms, check, monkeypatch):
    """A larger run (many segments, memcg and global reclaim interleaved) on the mixed workload;
    without the contract checks, MGLRU's compiled try_to_shrink_lruvec loop really ran in it."""
    tr = make_workload("mixed", seed=3, procs=3, anon_pages=600, files=2, file_pages=800, exec_pages=64,
                       accesses=40_000)
    rec = np.concatenate(list(tr.chunks()))
    calls = {"driver": 0, "loop": 0}  # compiled calls: the segment driver, MGLRU's shrink loop
    drive, loop = Simulator.drive_compiled, MGLRU._shrink_compiled

    def counted(key, fn):
        def wrapper(*a):
            calls[key] += 1
            return fn(*a)
        return wrapper

    monkeypatch.setattr(Simulator, "drive_compiled", counted("driver", drive))
    monkeypatch.setattr(MGLRU, "_shrink_compiled", counted("loop", loop))
    out = run_both(rec, policy, ["name=a,pids=0,max=700", "name=b/c,pids=1,max=500", "name=b,max=900"], mechanisms,
                   check, memory_pages=2048, swap_pages=2048)
    assert_same(out)
    if not check:
        # with memcgs the segment driver stays off (classic keeps its per-batch path); MGLRU's
        # reclaim takes its compiled loop (evict_round) from the per-batch path
        assert calls["driver"] == 0 and (calls["loop"] > 0) == (policy == "mglru"), calls
    res = out["fast"]
    ev = {m["name"]: m["memory_events_local"]["max"] for m in res["memcgs"]}
    assert ev["/a"] > 0 and ev["/b/c"] > 0  # both limits were hit: memcg reclaim ran in the comparison
    assert res["vmstat"]["pgscan_kswapd"] > 0  # and global reclaim too
