"""The fast (vectorized segments) and exact (one access at a time) drivers are the same machine:
identical vmstat, cost counters, misses, final list sizes and free pages on any trace, including
runs that end in OutOfMemory, with page conservation checked after every reclaim."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reclaim_ext.core.engine import OutOfMemory, SimConfig, Simulator
from reclaim_ext.policies import get_policy
from reclaim_ext.trace import ArrayTrace, Kind, make_workload, open_trace
from reclaim_ext.trace.record import make_records


POLICIES = ["classic", "mglru", "mglru-6.12"]


def replay(trace_records: np.ndarray, policy: str = "classic", mechanisms: str | None = None,
           **config) -> tuple[Simulator, str | None]:
    """Replay on a machine running `policy`; the OutOfMemory message (or None) instead of the
    exception."""
    sim = Simulator(SimConfig(**config), get_policy(policy, mechanisms))
    try:
        sim.run(ArrayTrace("t", trace_records))
    except OutOfMemory as e:
        return sim, str(e)
    return sim, None


def run_both(trace_records: np.ndarray, memory: int, swap: int, swappiness: int = 60,
             check: bool = True, policy: str = "classic", mechanisms: str | None = None) -> dict:
    """Outcome of each driver: the OutOfMemory message (or None) and every counter."""
    out = {}
    for mode in ("fast", "exact"):
        sim, oom = replay(trace_records, policy, mechanisms, memory_pages=memory, swap_pages=swap,
                          swappiness=swappiness, mode=mode, check=check)
        res = sim.result()
        out[mode] = {
            "oom": oom,
            "misses": res["misses"],
            "vmstat": res["vmstat"],
            "cost": res["cost"],
            "lists": res["lists"],
            "free_pages": res["free_pages"],
            "swap_used": sim.swap.used,
            "nonresident_age": sim.root_lruvec(sim.node).nonresident_age,
            "policy_state": sim.ops.dump(sim),
        }
    return out


def assert_same(out: dict) -> None:
    fast, exact = out["fast"], out["exact"]
    for key in fast:
        if isinstance(fast[key], dict):
            diff = {k: (fast[key][k], exact[key][k]) for k in fast[key] if fast[key][k] != exact[key][k]}
            assert not diff, f"{key} differs (fast, exact): {diff}"
        else:
            assert fast[key] == exact[key], f"{key} differs: fast {fast[key]!r}, exact {exact[key]!r}"


@st.composite
def small_traces(draw):
    """A mix of all four kinds, writes, 1-3 processes and files, skewed page popularity and some
    back-to-back repeats (for filemap_read's once-per-folio rule)."""
    n = draw(st.integers(100, 3000))
    pages = draw(st.integers(50, 600))
    procs = draw(st.integers(1, 3))
    files = draw(st.integers(1, 3))
    weights = draw(st.lists(st.integers(0, 4), min_size=4, max_size=4).filter(lambda w: sum(w) > 0))
    write_ratio = draw(st.sampled_from([0.0, 0.1, 0.5]))
    skew = draw(st.sampled_from([1.0, 2.0, 4.0]))
    repeat = draw(st.sampled_from([0.0, 0.2]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    p = np.array(weights, dtype=float) / sum(weights)
    kind = rng.choice([Kind.ANON, Kind.FILE_MMAP, Kind.FILE_FD, Kind.FILE_EXEC], size=n, p=p)
    rec = make_records(n)
    rec["kind"] = kind
    rec["pid"] = rng.integers(0, procs, n)
    rec["file"] = np.where(kind == Kind.ANON, 0, rng.integers(1, files + 1, n))
    rec["page"] = np.floor(pages * rng.random(n) ** skew).astype(np.uint64)
    rec["write"] = (rng.random(n) < write_ratio) & (kind != Kind.FILE_EXEC)
    rep = np.flatnonzero(rng.random(n) < repeat)
    rep = rep[rep > 0]
    rec[rep] = rec[rep - 1]
    return rec


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rec=small_traces(),
    memory=st.integers(64, 400),
    swap=st.integers(0, 400),
    swappiness=st.integers(0, 200),
)
def test_drivers_agree_on_random_traces(rec, memory, swap, swappiness):
    assert_same(run_both(rec, memory, swap, swappiness))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rec=small_traces(),
    memory=st.integers(64, 400),
    swap=st.integers(0, 400),
    swappiness=st.integers(0, 200),
    mechanisms=st.sampled_from(["+ptwalk", "+ptwalk,+pmd_young,+bloom", "+lookaround",
                                "+ptwalk,+pmd_young,+bloom,+lookaround"]),
)
def test_drivers_agree_on_random_traces_classic_mechanisms(rec, memory, swap, swappiness, mechanisms):
    """Classic with MGLRU's access-detection mechanisms added."""
    assert_same(run_both(rec, memory, swap, swappiness, mechanisms=mechanisms))


MGLRU_MECHANISMS = [None, "-lockfree", "-bloom,-pmd_young", "-ptwalk,-lookaround", "-memcg_lru"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rec=small_traces(),
    memory=st.integers(64, 400),
    swap=st.integers(0, 400),
    swappiness=st.sampled_from([0, 1, 30, 60, 100, 199, 200]),
    mechanisms=st.sampled_from(MGLRU_MECHANISMS),
    policy=st.sampled_from(["mglru", "mglru-6.12"]),
)
def test_drivers_agree_on_random_traces_mglru(rec, memory, swap, swappiness, mechanisms, policy):
    """MGLRU with the reworked rules (mglru) and with those of Linux 6.1-6.13 (mglru-6.12)."""
    assert_same(run_both(rec, memory, swap, swappiness, policy=policy, mechanisms=mechanisms))


def test_drivers_agree_when_out_of_memory():
    """An anonymous footprint larger than memory + swap: both drivers stop at the same access
    with the same counters."""
    rec = make_workload("zipf", pages=1500, accesses=5000, kind="anon", seed=3).to_array()
    out = run_both(rec, memory=300, swap=200)
    assert out["fast"]["oom"] is not None
    assert_same(out)


WORKLOADS = {
    "zipf": dict(pages=2000, accesses=20_000, write_ratio=0.2),
    "loop": dict(pages=800, passes=25),
    "scan-hot": dict(hot_pages=300, scan_pages=1200, scan_every=2000, accesses=20_000),
    "shift": dict(pages=700, accesses=20_000, kind="mmap", write_ratio=0.1),
    "mixed": dict(procs=3, anon_pages=300, files=2, file_pages=500, exec_pages=100, accesses=20_000),
}


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("name", list(WORKLOADS))
def test_drivers_agree_on_builtin_workload(name, policy):
    rec = make_workload(name, **WORKLOADS[name]).to_array()
    out = run_both(rec, memory=500, swap=500, check=False, policy=policy)
    assert out["fast"]["oom"] is None
    assert out["fast"]["vmstat"]["pgscan_kswapd"] > 0  # the run did reclaim
    assert_same(out)


def test_drivers_agree_across_trace_chunks():
    """A trace of several 64K-record chunks: per-stream read() state, address-space naming and
    the fast driver's windows carry over chunk boundaries."""
    rec = make_workload("mixed", procs=2, anon_pages=600, files=2, file_pages=1500, exec_pages=100,
                        accesses=150_000).to_array()
    out = run_both(rec, memory=1200, swap=1200, check=False)
    assert out["fast"]["oom"] is None
    assert out["fast"]["vmstat"]["pswpout"] > 0 and out["fast"]["vmstat"]["workingset_refault_file"] > 0
    assert_same(out)


def run_bulk(rec: np.ndarray, memory: int, swap: int, bulk: bool, policy: str = "classic",
             swappiness: int = 60, check: bool | None = None) -> dict:
    extra = {} if check is None else {"check": check}
    sim, oom = replay(rec, policy, memory_pages=memory, swap_pages=swap, mode="fast", bulk_reclaim=bulk,
                      swappiness=swappiness, **extra)
    res = sim.result()
    lv = sim.root_lruvec(sim.node)
    return {"oom": oom, "vmstat": res["vmstat"], "cost": res["cost"], "lists": res["lists"],
            "age": lv.nonresident_age, "costs": (lv.anon_cost, lv.file_cost),
            "shadow": sim.folios.shadow[: sim.folios.count].tolist(),
            "flags": sim.folios.flags[: sim.folios.count].tolist(),
            "policy_state": sim.ops.dump(sim)}, sim.bulk_passes


@pytest.mark.parametrize("policy", ["classic", "mglru"])
@pytest.mark.parametrize("name", list(WORKLOADS))
def test_bulk_clean_file_pass_equals_per_batch_reclaim(name, policy):
    """Bulk reclaim (classic: core.vmscan._clean_file_pass over clean page cache and the bulk
    kswapd run; MGLRU: its compiled kswapd run, lru_gen_kswapd, through the compiled
    try_to_shrink_lruvec loop, which runs without the contract checks only) leaves exactly the
    state the per-batch path leaves: counters, lists, shadows, flags, clock, costs, policy
    state. (mglru-6.12 has no bulk or compiled reclaim: both runs would be the same code.)"""
    rec = make_workload(name, **WORKLOADS[name]).to_array()
    check = None if policy == "classic" else False
    bulk, n_bulk = run_bulk(rec, 500, 500, True, policy, check=check)
    batched, n_none = run_bulk(rec, 500, 500, False, policy, check=check)
    assert n_none == 0
    if name in ("zipf", "loop", "scan-hot"):  # page-cache workloads: the bulk path really ran
        assert n_bulk > 0
    assert bulk == batched


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_compiled_driver_equals_per_batch_reclaim(name, monkeypatch):
    """Without the conservation check (which the compiled driver leaves to the engine), classic's
    compiled driver (classic_segments: stretches, events and bulk kswapd runs in one call) leaves
    the per-batch path's state, and really runs on the page-cache workloads: fewer calls than
    kswapd runs."""
    rec = make_workload(name, **WORKLOADS[name]).to_array()
    calls = []
    orig = Simulator.drive_compiled
    monkeypatch.setattr(Simulator, "drive_compiled", lambda self, *a: calls.append(1) or orig(self, *a))
    fused, _ = run_bulk(rec, 500, 500, True, check=False)
    assert fused == run_bulk(rec, 500, 500, False, check=False)[0]
    if name in ("zipf", "loop", "scan-hot"):
        assert 0 < len(calls) < fused["vmstat"]["pageoutrun"]


def memcg_lru_state(rec: np.ndarray, memory: int, swap: int, bulk: bool) -> tuple:
    """MGLRU's memcg LRU after a run: the bins drawn so far, seq, and where the lruvec sits."""
    sim, _ = replay(rec, "mglru", memory_pages=memory, swap_pages=swap, mode="fast", bulk_reclaim=bulk, check=False)
    lru = sim.ops.memcg_lru(sim.node)
    lv = sim.root_lruvec(sim.node)
    where = [(g, b) for g in range(len(lru.fifo)) for b in range(len(lru.fifo[g])) if lv in lru.fifo[g][b]]
    return int(lru.bin_pos[0]), lru.bins.tolist(), lru.seq, where, lv.priv["memcg_gen"], lv.priv["memcg_seg"]


MGLRU_ONE_PASS = {  # page cache over 4,000 pages: most kswapd runs are one pass at the initial priority
    "zipf": dict(pages=20_000, accesses=60_000, write_ratio=0.2),
    "loop": dict(pages=8000, passes=6),
    "scan-hot": dict(hot_pages=2000, scan_pages=12_000, scan_every=2000, accesses=60_000),
}


@pytest.mark.parametrize("name", ["zipf", "loop", "scan-hot"])
def test_mglru_compiled_driver_resumes_a_run_in_python(name, monkeypatch):
    """At 500 pages MGLRU's kswapd runs take a second pass at a lower priority: the compiled
    driver runs the passes whose try_to_shrink_lruvec loop surely runs to its end compiled
    (loop_bound), and when a later one may not it hands the run to balance_pgdat to finish from
    its priority and progress (kswapd.WAKE_PART; at 500 pages that happens on `loop`).
    The state left is the per-batch path's, and the driver ran most runs."""
    from reclaim_ext.core import vmscan

    rec = make_workload(name, **WORKLOADS[name]).to_array()
    calls, resumed = [], []
    orig, orig_balance = Simulator.drive_compiled, vmscan.balance_pgdat
    monkeypatch.setattr(Simulator, "drive_compiled", lambda self, *a: calls.append(1) or orig(self, *a))

    def balance(sim, node, ops, resume=None):
        if resume is not None:
            resumed.append(resume)
        return orig_balance(sim, node, ops, resume)

    monkeypatch.setattr(vmscan, "balance_pgdat", balance)
    fused, _ = run_bulk(rec, 500, 500, True, "mglru", check=False)
    assert fused == run_bulk(rec, 500, 500, False, "mglru", check=False)[0]
    assert 0 < 2 * len(calls) < fused["vmstat"]["pageoutrun"]
    assert all(1 <= p < 12 and r > 0 for p, r in resumed)
    if name == "loop":
        assert resumed
    assert memcg_lru_state(rec, 500, 500, True) == memcg_lru_state(rec, 500, 500, False)


@pytest.mark.parametrize("name", list(MGLRU_ONE_PASS))
def test_mglru_compiled_driver_equals_per_batch_reclaim(name, monkeypatch):
    """MGLRU's compiled driver (mglru_segments: stretches, mglru_events, and each kswapd run
    that is one bulk pass as one compiled call, lru_gen_kswapd) leaves the per-batch path's
    state, runs most kswapd runs itself (a quarter of the calls or fewer), and draws the memcg
    LRU's random bins as the Python run does."""
    rec = make_workload(name, **MGLRU_ONE_PASS[name]).to_array()
    calls = []
    orig = Simulator.drive_compiled
    monkeypatch.setattr(Simulator, "drive_compiled", lambda self, *a: calls.append(1) or orig(self, *a))
    fused, _ = run_bulk(rec, 4000, 500, True, "mglru", check=False)
    assert fused == run_bulk(rec, 4000, 500, False, "mglru", check=False)[0]
    assert 0 < 4 * len(calls) < fused["vmstat"]["pageoutrun"]
    assert memcg_lru_state(rec, 4000, 500, True) == memcg_lru_state(rec, 4000, 500, False)


@pytest.mark.parametrize("check", [False, True])
def test_compiled_kswapd_equals_per_batch_with_anon_swap_and_writeback(check):
    """kswapd as one compiled call (core.kswapd.kswapd_balance) over anon folios with swap,
    mapped and executable folios, dirty pages under writeback: every kswapd run is the compiled
    one, and the state left is the per-batch path's (core.vmscan.balance_pgdat)."""
    rec = make_workload("mixed", procs=3, anon_pages=600, files=2, file_pages=900, exec_pages=120, accesses=60_000,
                        write_ratio=0.3).to_array()
    fast, n_compiled = run_bulk(rec, 900, 400, True, check=check)
    slow, n_none = run_bulk(rec, 900, 400, False, check=check)
    vm = fast["vmstat"]
    assert n_none == 0 and n_compiled >= vm["pageoutrun"] > 50
    for name in ("pswpout", "nr_vmscan_write", "pgactivate", "pgrotated", "pgdeactivate", "pgsteal_anon"):
        assert vm[name] > 0, name
    assert fast["cost"]["rmap_walks"] > 0 and fast["cost"]["file_writes"] > 0
    assert fast == slow


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rec=small_traces(), memory=st.integers(64, 400), swap=st.integers(0, 400),
       swappiness=st.sampled_from([0, 60, 200]))
def test_compiled_driver_equals_per_batch_on_random_traces(rec, memory, swap, swappiness):
    for policy in ("classic", "mglru"):
        assert run_bulk(rec, memory, swap, True, policy, swappiness, check=False)[0] == \
            run_bulk(rec, memory, swap, False, policy, swappiness, check=False)[0]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rec=small_traces(), memory=st.integers(64, 400), swap=st.integers(0, 400),
       swappiness=st.sampled_from([0, 60, 200]))
def test_bulk_clean_file_pass_equals_per_batch_on_random_traces(rec, memory, swap, swappiness):
    """Classic's bulk passes with the contract checks on (MGLRU's compiled reclaim runs without
    them: test_compiled_driver_equals_per_batch_on_random_traces)."""
    assert run_bulk(rec, memory, swap, True, "classic", swappiness)[0] == \
        run_bulk(rec, memory, swap, False, "classic", swappiness)[0]


# ---- a real block trace (issue 16 item 5): multi-page read()/write() requests on one stream

VSCSI = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                                      "traces", "cloudPhysicsIO.vscsi"))
needs_vscsi = pytest.mark.skipif(not os.path.exists(VSCSI), reason="shared vscsi trace not present")


def vscsi_prefix(n: int) -> np.ndarray:
    """The first n page accesses of the CloudPhysics vscsi trace (one FILE_FD record per page of
    each request, reads and writes)."""
    out, got = [], 0
    for chunk in open_trace(VSCSI, "vscsi").chunks():
        out.append(chunk[: n - got])
        got += len(out[-1])
        if got >= n:
            break
    return np.concatenate(out)


@needs_vscsi
def test_drivers_agree_on_vscsi_trace():
    """kswapd every few dozen allocations, dirty page cache and writeback, read()s that mark a
    folio once per request run: the drivers agree."""
    rec = vscsi_prefix(40_000)
    out = run_both(rec, memory=384, swap=384)
    assert out["fast"]["oom"] is None
    vm = out["fast"]["vmstat"]
    assert vm["kswapd_wakeups"] > 500 and vm["pgpgout"] > 0
    assert_same(out)


@needs_vscsi
def test_compiled_kswapd_equals_per_batch_on_vscsi_trace():
    """On a real block trace the compiled kswapd run (core.kswapd.kswapd_run) does most of
    kswapd's work, and the state left is the per-batch path's."""
    rec = vscsi_prefix(40_000)
    bulk, n_bulk = run_bulk(rec, 384, 384, True)
    assert bulk == run_bulk(rec, 384, 384, False)[0]
    sim, oom = replay(rec, memory_pages=384, swap_pages=384, mode="fast")
    assert oom is None
    assert n_bulk > sim.vm["kswapd_wakeups"] // 2  # most kswapd runs were done in bulk


def test_drivers_agree_when_memcg_limits_cut_segments():
    """Small memcg limits on a large node: segments end at memory.max long before the watermark
    budget runs out (the fast driver sizes its windows by the memcg's rate)."""
    tr = make_workload("mixed", seed=5, procs=3, anon_pages=500, files=2, file_pages=700, exec_pages=64,
                       accesses=30_000)
    rec = tr.to_array()
    sims = {}
    out = {}
    for mode in ("fast", "exact"):
        sim, oom = replay(rec, memory_pages=4096, swap_pages=2048, mode=mode, check=True,
                          memcgs=["name=a,pids=0,max=256", "name=b/c,pids=1+2,max=384"])
        res = sim.result()
        sims[mode] = sim
        out[mode] = {"oom": oom, "misses": res["misses"], "vmstat": res["vmstat"], "cost": res["cost"],
                     "free_pages": res["free_pages"], "memcgs": res["memcgs"]}
    assert_same(out)
    ev = {m["name"]: m["memory_events_local"]["max"] for m in out["fast"]["memcgs"]}
    assert ev["/a"] > 20 and ev["/b/c"] > 20
    assert out["fast"]["vmstat"]["kswapd_wakeups"] == 0  # only memcg reclaim cut the segments


def test_mglru_compiled_driver_equals_per_batch_as_swap_runs_out():
    """Anon reclaim until swap runs out (OOM): when a pass's swap slots could take the free
    slots below MIN_LRU_BATCH, get_swappiness after the loop (shrink_one's lruvec_is_sizable)
    may differ from before it, so the compiled kswapd leaves that pass to Python (lru_gen_kswapd's test);
    the run leaves the per-batch path's state, out-of-memory point included."""
    rec = make_workload("zipf", kind="anon").to_array()
    fused, _ = run_bulk(rec, 4096, 4096, True, "mglru", check=False)
    assert fused["oom"] and fused["vmstat"]["pswpout"] > 4000
    assert fused == run_bulk(rec, 4096, 4096, False, "mglru", check=False)[0]


MECHANISM_SETS = [("classic", m) for m in (None, *get_policy("classic").ablation_variants)] + \
    [("mglru", m) for m in (None, *get_policy("mglru").ablation_variants)]


@pytest.mark.parametrize("policy,mechanisms", MECHANISM_SETS)
def test_compiled_paths_equal_the_exact_driver_for_each_mechanism_set(policy, mechanisms, monkeypatch):
    """Without the contract checks (so MGLRU's evict_round and shrink_lruvec_loop run too), the
    fast driver with its compiled paths gives the exact driver's counters for each mechanism set
    `reclaim-ext ablate` runs (classic with each addition, MGLRU without each mechanism), on
    anon with swap, mapped, executable and read() files in three processes; and the compiled
    driver really ran where it applies (MGLRU with any set; classic with no mechanism: with
    one, classic's batches take the per-batch path and its compiled steps)."""
    rec = make_workload("mixed", procs=3, anon_pages=300, files=2, file_pages=500, exec_pages=100, accesses=20_000,
                        write_ratio=0.2).to_array()
    calls = []
    orig = Simulator.drive_compiled
    monkeypatch.setattr(Simulator, "drive_compiled", lambda self, *a: calls.append(1) or orig(self, *a))
    out = run_both(rec, 500, 400, 60, check=False, policy=policy, mechanisms=mechanisms)
    assert bool(calls) == (policy == "mglru" or mechanisms is None)
    assert out["fast"]["vmstat"]["pageoutrun"] > 0
    assert_same(out)
