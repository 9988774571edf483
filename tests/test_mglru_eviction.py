"""MGLRU eviction (reference §3.8, §3.9, §3.11, §3.13): sort_folio and scan_folios, the PID
controller (tier protection and type selection), swappiness extremes and min_ttl_ms."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from mglru_helpers import ids_of, lst, new_sim, one, reads_by_many, recs, replay, state

from reclaim_ext.core import vmscan
from reclaim_ext.core.engine import OutOfMemory, SimConfig, Simulator
from reclaim_ext.policies import get_policy
from reclaim_ext.core.ops import DEF_PRIORITY, ScanControl
from reclaim_ext.machine.folio import (
    LRU_ANON,
    LRU_FILE,
    NO_LIST,
    PG_reclaim,
    PG_referenced,
    PG_workingset,
    PG_writeback,
)
from reclaim_ext.policies.mglru import positive_ctrl_err
from reclaim_ext.trace import Kind
from reclaim_ext.trace.generators import make_workload

# ------------------------------------------------------------------------------------------------
# sort_folio / scan_folios (§3.8)


def sorting_scene():
    """Three file generations (min_seq 2, max_seq 4); the oldest (2) holds, from the tail:
    P promoted by the walk, D dirty, W under writeback, T1 read twice (tier 1), H read six times
    (refs + workingset = 5), then 100 clean folios read once (tier 0)."""
    sim = new_sim()
    ops, lv, lg = state(sim)
    assert ops.try_to_inc_min_seq(lv, 60)  # empty: min_seq = [2, 2], two generations
    scene = dict(
        P=recs(Kind.FILE_FD, [0]),
        D=recs(Kind.FILE_FD, [1], write=1),
        W=recs(Kind.FILE_FD, [2]),
        T1=reads_by_many(3, 2),
        H=reads_by_many(4, 6),
        C=recs(Kind.FILE_FD, range(10, 110)),
    )
    replay(sim, *scene.values())
    replay(sim, recs(Kind.FILE_MMAP, [0]))  # P is mapped now: the walk finds it young
    assert ops.try_to_inc_max_seq(sim, lv, 3, 60)
    assert lg.max_seq == 4 and lg.min_seq == [2, 2]
    ids = {k: ids_of(sim, v) if k == "C" else one(sim, v) for k, v in scene.items()}
    f = sim.folios
    f.flags[ids["W"]] |= PG_writeback
    # P is logically in gen(3) now, physically still in the oldest list
    assert f.lru[ids["P"]] == lst(LRU_FILE, 2) and f.lru_gen[ids["P"]] == lst(LRU_FILE, 3)
    assert (f.lru[ids["C"]] == lst(LRU_FILE, 2)).all()
    tail = lv.lists[lst(LRU_FILE, 2)].valid_ids(f)[:5].tolist()
    assert tail == [ids[k] for k in ("P", "D", "W", "T1", "H")]
    return sim, ids


@pytest.mark.parametrize("tier_idx", [0, 3])
def test_sort_folio_cases(tier_idx):
    sim, ids = sorting_scene()
    ops, lv, lg = state(sim)
    f = sim.folios
    sc = ScanControl(nr_to_reclaim=32)
    vm0 = dict(sim.vm)
    scanned, iso = ops.scan_folios(sim, lv, sc, LRU_FILE, tier_idx, 4096)
    iso = iso.tolist()
    nxt = lst(LRU_FILE, lg.min_seq[LRU_FILE] + 1)
    # promoted: moved to the list of its logical generation, not isolated, not counted
    P = ids["P"]
    assert f.lru[P] == f.lru_gen[P] == lst(LRU_FILE, 3) and P not in iso
    # dirty file folio: min_seq + 1 with PG_reclaim; counted as taken and unqueued dirty
    D = ids["D"]
    assert f.lru[D] == f.lru_gen[D] == nxt and f.flags[D] & PG_reclaim and D not in iso
    # under writeback: min_seq + 1 with PG_reclaim, not "unqueued"
    W = ids["W"]
    assert f.lru[W] == nxt and f.flags[W] & PG_reclaim and W not in iso
    # refs + workingset == 5: moved up at any tier_idx, never counted as protected
    H = ids["H"]
    assert f.lru[H] == nxt and H not in iso
    assert not f.flags[H] & PG_referenced and f.lru_refs[H] == 0  # folio_inc_gen
    assert f.flags[H] & PG_workingset
    T1 = ids["T1"]
    if tier_idx == 0:  # tier 1 > tier_idx: protected, counted in protected[file][1]
        assert f.lru[T1] == nxt and T1 not in iso
        assert not f.flags[T1] & PG_referenced and f.lru_refs[T1] == 0
        assert lg.protected[LRU_FILE].tolist() == [0, 1, 0, 0]
        nsorted = 5
    else:              # not protected: isolated
        assert T1 in iso and f.lru[T1] == NO_LIST
        assert not lg.protected.any()
        nsorted = 4
    assert sc.nr.unqueued_dirty == 1
    # scan_folios stops at MIN_LRU_BATCH = 64 isolated folios
    assert len(iso) == 64
    assert scanned == nsorted + 64
    assert sc.nr.file_taken == 1 + 64  # the dirty folio + the isolated ones
    assert (f.lru[iso] == NO_LIST).all() and (f.lru_gen[iso] == NO_LIST).all()
    assert lv.nr[lst(LRU_FILE, 2)] == 105 - nsorted - 64
    assert sim.vm["pgscan_file"] - vm0["pgscan_file"] == 64
    assert sim.vm["pgrefill"] - vm0["pgrefill"] == nsorted
    # isolation order is the tail order
    clean = [int(x) for x in ids["C"]]
    expect = ([T1] if tier_idx == 3 else []) + clean[: 64 - (tier_idx == 3)]
    assert iso == expect


def test_sorted_folios_go_to_the_head():
    """Protected / waiting folios are moved to the head of min_seq + 1 (list_move)."""
    sim, ids = sorting_scene()
    ops, lv, lg = state(sim)
    replay(sim, recs(Kind.FILE_MMAP, [200, 201]))  # faulted: max_seq - 1 = 3 = min_seq + 1
    before = lv.lists[lst(LRU_FILE, 3)].valid_ids(sim.folios).tolist()
    assert len(before) == 2
    sc = ScanControl(nr_to_reclaim=32)
    ops.scan_folios(sim, lv, sc, LRU_FILE, 0, 4096)
    after = lv.lists[lst(LRU_FILE, 3)].valid_ids(sim.folios).tolist()
    assert after[:2] == before  # what was there stays at the tail end
    assert set(after[2:]) == {ids[k] for k in ("P", "D", "W", "T1", "H")}


def test_scan_folios_needs_three_generations():
    sc = ScanControl(nr_to_reclaim=32)
    two = new_sim()
    ops, lv, lg = state(two)
    assert ops.try_to_inc_min_seq(lv, 60)  # empty: two generations
    replay(two, recs(Kind.FILE_FD, range(10)))
    assert lv.nr[lst(LRU_FILE, 2)] == 10
    assert ops.scan_folios(two, lv, sc, LRU_FILE, 3, 4096)[0] == 0
    assert lv.nr[lst(LRU_FILE, 2)] == 10
    four = new_sim()
    ops, lv, lg = state(four)
    replay(four, recs(Kind.FILE_FD, range(10)))
    scanned, iso = ops.scan_folios(four, lv, sc, LRU_FILE, 3, 4096)
    assert scanned == 10 and len(iso) == 10


@pytest.mark.parametrize("policy, isolated", [("mglru", 2), ("mglru-6.12", 64)])
def test_scan_folios_batch_at_a_small_nr_to_scan(policy, isolated):
    """At priority 12 nr_to_scan is total >> 12, here 2. Linux 6.1-6.13's scan_folios scans up to
    MAX_LRU_BATCH whatever nr_to_scan (remaining = MAX_LRU_BATCH), isolating MIN_LRU_BATCH; later
    kernels bound the batch by nr_to_scan (policies.mglru.scan_batch_of)."""
    sim = Simulator(SimConfig(memory_pages=16384, swap_pages=0, mode="exact", check=True), get_policy(policy))
    ops, lv, lg = state(sim)
    replay(sim, recs(Kind.FILE_FD, range(8192)))
    ops.try_to_inc_min_seq(lv, 60)  # 6.12 adds clean page cache at min_seq + 1: skip the empty oldest
    sc = ScanControl(nr_to_reclaim=32)
    scanned, iso = ops.scan_folios(sim, lv, sc, LRU_FILE, 3, 8192 >> DEF_PRIORITY)
    assert len(iso) == isolated and scanned == isolated


def test_scan_folios_returns_zero_without_isolation_unless_batch_used():
    """All folios sorted (dirty) and the scan batch not used up: 0 (no progress); with the batch
    used up: the number scanned."""
    for nr_to_scan, expect in ((4096, 0), (5, 5)):
        sim = new_sim()
        ops, lv, lg = state(sim)
        replay(sim, recs(Kind.FILE_FD, range(8), write=1))
        sc = ScanControl(nr_to_reclaim=32)
        scanned, iso = ops.scan_folios(sim, lv, sc, LRU_FILE, 3, nr_to_scan)
        assert scanned == expect and len(iso) == 0
        assert lv.nr[lst(LRU_FILE, 1)] == min(nr_to_scan, 8)


def test_evict_folios_never_puts_rejects_back_in_the_oldest_generation():
    """A read() folio kept by reclaim (mapped, young PTE, first sighting: KEEP) would be placed
    in min_seq; it is put back with PG_active (max_seq - 1) and PG_referenced cleared instead.
    The unmapped read() folios are reclaimed although PG_referenced is set (not consulted)."""
    sim = new_sim()
    ops, lv, lg = state(sim)
    rd = recs(Kind.FILE_FD, range(100))
    replay(sim, rd, recs(Kind.FILE_MMAP, [0]))
    g = one(sim, rd)
    sim.folios.flags[g] &= ~np.uint16(PG_referenced)  # not seen before: the rmap hit is a KEEP
    assert (sim.folios.flags[ids_of(sim, rd)[1:]] & PG_referenced).all()
    sc = ScanControl(nr_to_reclaim=32)
    ops.evict_folios(sim, lv, sc, 64, 60)
    assert sc.nr_reclaimed == 63
    assert lg.min_seq[LRU_FILE] == 0  # 36 folios are left in generation 0
    assert sim.folios.lru[g] == sim.folios.lru_gen[g] == lst(LRU_FILE, lg.max_seq - 1)
    assert not sim.folios.flags[g] & PG_referenced
    assert ops.check(sim, lv) == []


def test_dirty_file_folios_wake_the_flusher_not_pageout():
    """MGLRU never starts file writeback: dirty folios are passed over and, when every file
    folio taken was unqueued dirty, the flushers are woken."""
    sim = new_sim()
    ops, lv, lg = state(sim)
    replay(sim, recs(Kind.FILE_FD, range(30), write=1))
    sc = ScanControl(nr_to_reclaim=32, priority=0)
    sim.writeback_requested = False
    ops.shrink_lruvec(sim, lv, sc)
    assert sc.nr.unqueued_dirty == sc.nr.file_taken == 30
    assert sim.writeback_requested
    assert sim.vm["nr_vmscan_write"] == 0 and sc.nr_reclaimed == 0
    assert (sim.folios.flags[ids_of(sim, recs(Kind.FILE_FD, range(30)))] & PG_reclaim).all()


# ------------------------------------------------------------------------------------------------
# the PID controller (§3.9)


def pos(refaulted: int, total: int, gain: int):
    return SimpleNamespace(refaulted=refaulted, total=total, gain=gain)


def test_positive_ctrl_err_noise_floor():
    """Fewer than 64 refaults in the PV: always 'no worse', whatever the rates."""
    sp = pos(0, 100000, 2)
    assert positive_ctrl_err(sp, pos(63, 63, 3))
    assert positive_ctrl_err(sp, pos(0, 0, 1))
    assert not positive_ctrl_err(sp, pos(64, 64, 3))


def test_positive_ctrl_err_formula_boundary():
    """pv.refaulted * (sp.total + 64) * sp.gain <= (sp.refaulted + 1) * pv.total * pv.gain."""
    sp = pos(0, 0, 2)
    # 64 * 64 * 2 = 8192 <= 1 * total * 3  <=>  total >= 2731
    assert positive_ctrl_err(sp, pos(64, 2731, 3))
    assert not positive_ctrl_err(sp, pos(64, 2730, 3))
    # equality counts as positive: 100 * (36 + 64) * 3 == (99 + 1) * 100 * 3
    assert positive_ctrl_err(pos(99, 36, 3), pos(100, 100, 3))
    assert not positive_ctrl_err(pos(99, 36, 3), pos(100, 99, 3))
    # gains weigh the rates
    assert positive_ctrl_err(pos(999, 10000 - 64, 1), pos(1000, 10000, 1))
    assert not positive_ctrl_err(pos(999, 10000 - 64, 2), pos(1000, 10000, 1))


def set_tiers(lg, t, refaulted, total):
    lg.avg_refaulted[t] = refaulted
    lg.avg_total[t] = total
    lg.refaulted[t] = 0
    lg.evicted[t] = 0
    lg.protected[t] = 0


@pytest.mark.parametrize("t", [LRU_ANON, LRU_FILE])
def test_tier_protection_needs_one_and_a_half_times_the_refault_rate(t):
    sim = new_sim()
    ops, lv, lg = state(sim)
    assert ops.get_tier_idx(lg, t) == 3  # no refaults: nothing protected
    # tier 0: 10 % refaults; tier 1 at 16 % (1.6x): protected
    set_tiers(lg, t, [1000, 1600, 0, 0], [10000, 10000, 0, 0])
    assert ops.get_tier_idx(lg, t) == 0
    # tier 1 at 14 % (1.4x): below the 50 % margin, not protected; tiers 2, 3 quiet
    set_tiers(lg, t, [1000, 1400, 0, 0], [10000, 10000, 0, 0])
    assert ops.get_tier_idx(lg, t) == 3
    # tier 2 at 2x, tier 1 fine: tiers above 1 protected
    set_tiers(lg, t, [1000, 1000, 2000, 0], [10000, 10000, 10000, 0])
    assert ops.get_tier_idx(lg, t) == 1
    # the other type's counters do not matter
    set_tiers(lg, 1 - t, [0, 50000, 50000, 50000], [10000, 10000, 10000, 10000])
    assert ops.get_tier_idx(lg, t) == 1


def test_tier_protection_counts_the_current_generation_too():
    """read_ctrl_pos adds the P term (refaulted, protected, evicted) to the averages."""
    sim = new_sim()
    ops, lv, lg = state(sim)
    set_tiers(lg, LRU_FILE, [1000, 0, 0, 0], [10000, 10000, 0, 0])
    assert ops.get_tier_idx(lg, LRU_FILE) == 3
    lg.refaulted[LRU_FILE, 1] = 1600
    assert ops.get_tier_idx(lg, LRU_FILE) == 0
    lg.evicted[LRU_FILE, 1] = 10000  # tier 1 rate halves: no longer protected
    assert ops.get_tier_idx(lg, LRU_FILE) == 3


def test_type_to_scan():
    sim = new_sim()
    ops, lv, lg = state(sim)
    assert ops.get_type_to_scan(lg, 60) == LRU_FILE  # no refaults anywhere: file
    # file refaults a lot, anon does not
    set_tiers(lg, LRU_ANON, [0, 0, 0, 0], [10000, 0, 0, 0])
    set_tiers(lg, LRU_FILE, [5000, 0, 0, 0], [10000, 0, 0, 0])
    assert ops.get_type_to_scan(lg, 60) == LRU_ANON
    assert ops.get_type_to_scan(lg, 2) == LRU_ANON
    assert ops.get_type_to_scan(lg, 1) == LRU_FILE    # <= 1: file, whatever the refaults
    assert ops.get_type_to_scan(lg, 0) == LRU_FILE
    # anon refaults a lot, file little
    set_tiers(lg, LRU_ANON, [5000, 0, 0, 0], [10000, 0, 0, 0])
    set_tiers(lg, LRU_FILE, [100, 0, 0, 0], [10000, 0, 0, 0])
    assert ops.get_type_to_scan(lg, 60) == LRU_FILE
    assert ops.get_type_to_scan(lg, 150) == LRU_FILE
    assert ops.get_type_to_scan(lg, 199) == LRU_ANON  # file gain 1: its rate must be 199x lower
    assert ops.get_type_to_scan(lg, 200) == LRU_ANON  # >= 200: anon, whatever the refaults
    assert ops.get_type_to_scan(lg, 201) == LRU_ANON


def test_type_to_scan_weighs_rates_by_swappiness():
    """Equal refault rates (20 %): file iff file_rate * swappiness <= anon_rate * (200 - swp),
    i.e. file below 100 and anon above (the +1/+64 smoothing aside)."""
    sim = new_sim()
    ops, lv, lg = state(sim)
    set_tiers(lg, LRU_ANON, [20000, 0, 0, 0], [100000, 0, 0, 0])
    set_tiers(lg, LRU_FILE, [20000, 0, 0, 0], [100000, 0, 0, 0])
    assert ops.get_type_to_scan(lg, 90) == LRU_FILE
    assert ops.get_type_to_scan(lg, 110) == LRU_ANON
    # sums over all tiers
    set_tiers(lg, LRU_FILE, [5000, 5000, 5000, 5000], [25000, 25000, 25000, 25000])
    assert ops.get_type_to_scan(lg, 90) == LRU_FILE
    assert ops.get_type_to_scan(lg, 110) == LRU_ANON


# ------------------------------------------------------------------------------------------------
# swappiness (§3.11)


def test_get_swappiness():
    sc = ScanControl(nr_to_reclaim=32)
    for swap, expect in ((63, 0), (64, 60), (1000, 60), (0, 0)):
        sim = new_sim(swap=swap)
        ops, lv, lg = state(sim)
        assert ops.get_swappiness(sim, lv, sc) == expect
    sim = new_sim(swap=100)
    ops, lv, lg = state(sim)
    sim.swap.used = 40  # 60 slots free: fewer than MIN_LRU_BATCH
    assert ops.get_swappiness(sim, lv, sc) == 0
    sim.swap.used = 36
    assert ops.get_swappiness(sim, lv, sc) == 60
    assert ops.get_swappiness(sim, lv, ScanControl(nr_to_reclaim=32, may_swap=False)) == 0
    assert ops.get_swappiness(sim, lv, ScanControl(nr_to_reclaim=32, swappiness=201)) == 201
    assert ops.get_swappiness(sim, lv, ScanControl(nr_to_reclaim=32, swappiness=0)) == 0


MIXED = dict(procs=2, anon_pages=120, files=2, file_pages=500, exec_pages=100, accesses=12000)


def run_recording_first_type(swappiness: int):
    """A mixed anon + file run; records the type each isolate_folios call tries first."""
    sim = new_sim(memory=400, swap=2048, swappiness=swappiness, mode="fast")
    ops, lv, lg = state(sim)
    first: list[int] = []
    scan = ops.scan_folios
    isolate = ops.isolate_folios
    calls = {"n": 0}

    def scan_folios(sim_, lruvec, sc, t, tier_idx, nr):
        if calls["n"] == 0:
            first.append(t)
        calls["n"] += 1
        return scan(sim_, lruvec, sc, t, tier_idx, nr)

    def isolate_folios(*a, **k):
        calls["n"] = 0
        return isolate(*a, **k)

    ops.scan_folios = scan_folios
    ops.isolate_folios = isolate_folios
    sim.run(make_workload("mixed", seed=1, **MIXED))
    return sim, first


def test_swappiness_0_never_scans_anon():
    sim, first = run_recording_first_type(0)
    assert sim.vm["pgscan_file"] > 1000
    assert sim.vm["pgscan_anon"] == 0 and sim.vm["pswpout"] == 0 and sim.vm["pgsteal_anon"] == 0
    assert first and set(first) == {LRU_FILE}


def test_swappiness_1_tries_file_first():
    sim, first = run_recording_first_type(1)
    assert first and set(first) == {LRU_FILE}


def test_swappiness_200_tries_anon_first():
    sim, first = run_recording_first_type(200)
    assert first and set(first) == {LRU_ANON}
    assert sim.vm["pgscan_anon"] > 0 and sim.vm["pswpout"] > 0


def test_swappiness_60_uses_both_types():
    sim, first = run_recording_first_type(60)
    assert sim.vm["pgscan_anon"] > 0 and sim.vm["pgscan_file"] > 0


def test_swappiness_201_proactive_reclaims_anon_only():
    """memory.reclaim swappiness=max: sc.swappiness = 201 overrides vm.swappiness; only anon is
    scanned, and the aging walk leaves file mappings alone."""
    sim = new_sim(memory=2048, swap=2048)
    ops, lv, lg = state(sim)
    an = recs(Kind.ANON, range(300))
    mm = recs(Kind.FILE_MMAP, range(300))
    rd = recs(Kind.FILE_FD, range(1000, 1300), file=2)
    replay(sim, an, mm, rd)
    node = sim.node
    sc = ScanControl(nr_to_reclaim=128, proactive=True, swappiness=201)
    vm0 = dict(sim.vm)
    for prio in range(DEF_PRIORITY, -1, -1):
        sc.priority = prio
        vmscan.shrink_node(sim, node, sc, ops)
        if sc.nr_reclaimed >= sc.nr_to_reclaim:
            break
    assert sc.nr_reclaimed >= 128
    assert sim.vm["pgscan_anon"] - vm0["pgscan_anon"] >= 128
    assert sim.vm["pgscan_file"] == vm0["pgscan_file"]
    assert sim.vm["pswpout"] - vm0["pswpout"] >= 128
    assert lg.max_seq > 3  # it had to age
    mm_ptes = sim.mm.translate(mm)[1]
    assert sim.ptes.young[mm_ptes].all()  # file VMAs were not walked
    assert not (sim.folios.flags[ids_of(sim, mm)] & PG_referenced).any()


def test_swappiness_0_spares_anon_even_when_the_pid_prefers_it():
    """evict_folios at swappiness 0 isolates file only, even when the PID controller would pick
    anon; at 60 the same state evicts anon."""
    sim = new_sim()
    ops, lv, lg = state(sim)
    an = recs(Kind.ANON, range(50))
    replay(sim, recs(Kind.FILE_FD, range(50)), an)
    sim.ptes.young[: sim.ptes.count] = False
    for _ in range(2):  # both types' folios into the oldest generation (2)
        ops.try_to_inc_max_seq(sim, lv, lg.max_seq, 60)
    assert lg.min_seq == [2, 2] and (sim.folios.lru[ids_of(sim, an)] == lst(LRU_ANON, 2)).all()
    set_tiers(lg, LRU_FILE, [5000, 0, 0, 0], [10000, 0, 0, 0])
    assert ops.get_type_to_scan(lg, 60) == LRU_ANON
    sc = ScanControl(nr_to_reclaim=32)
    ops.evict_folios(sim, lv, sc, 64, 0)
    assert sim.vm["pgscan_anon"] == 0 and sim.vm["pgscan_file"] == 50
    ops.evict_folios(sim, lv, sc, 64, 60)
    assert sim.vm["pgscan_anon"] == 50 and sim.vm["pswpout"] == 50


# ------------------------------------------------------------------------------------------------
# min_ttl_ms (§3.13)


def test_min_ttl_triggers_oom_from_kswapd_aging():
    sim = new_sim(memory=256, swap=256, min_ttl_ms=10**9, mode="fast")
    ops, lv, lg = state(sim)
    reasons = []
    age_node = ops.kswapd_age_node

    def kswapd_age_node(sim_, node, sc):
        r = age_node(sim_, node, sc)
        reasons.append(r)
        return r

    ops.kswapd_age_node = kswapd_age_node
    with pytest.raises(OutOfMemory, match="min_ttl"):
        sim.run(make_workload("loop", pages=400, passes=3))
    assert sim.vm["oom_kill"] == 1
    assert reasons and reasons[-1] is not None  # raised because kswapd_age_node asked for it
    assert sim.reclaims == 1  # at the first kswapd pass, before any eviction
    assert sim.vm["pgscan_file"] == 0


def test_min_ttl_zero_completes_the_same_run():
    sim = new_sim(memory=256, swap=256, min_ttl_ms=0, mode="fast")
    sim.run(make_workload("loop", pages=400, passes=3))
    assert sim.vm["oom_kill"] == 0 and sim.vm["pgscan_file"] > 0


def test_min_ttl_compares_the_oldest_evictable_generation_birth():
    """lru_gen_age_node: a lruvec is reclaimable iff it is sizable (total >> priority) and its
    oldest evictable generation was born more than min_ttl ago; no reclaimable lruvec -> OOM."""
    sim = new_sim(min_ttl_ms=50)
    ops, lv, lg = state(sim)
    replay(sim, recs(Kind.FILE_FD, range(300)), recs(Kind.ANON, range(300)))
    lg.min_seq[LRU_ANON] = 1  # generation 0 of anon is empty: a consistent state
    assert ops.check(sim, lv) == []
    node = sim.node
    sc = ScanControl(nr_to_reclaim=0, kswapd=True, priority=1)
    sim.cost["hits"] += 10**8  # half a modelled second of work: the clock is well past 100 ms
    now = sim.now_ms()
    assert now > 100
    lg.timestamps = [now - 49.0] * 4
    assert ops.kswapd_age_node(sim, node, sc) is not None     # younger than min_ttl: OOM
    lg.timestamps[0] = now - 51.0                              # file's min_seq 0 is old enough
    assert ops.kswapd_age_node(sim, node, sc) is None
    # at swappiness 201 only anon is evictable: its min_seq (1) decides
    sc201 = ScanControl(nr_to_reclaim=0, kswapd=True, priority=1, swappiness=201)
    assert ops.kswapd_age_node(sim, node, sc201) is not None
    lg.timestamps[1] = now - 51.0
    assert ops.kswapd_age_node(sim, node, sc201) is None
    # too small to matter at DEF_PRIORITY (600 >> 12 == 0): not reclaimable either
    sc12 = ScanControl(nr_to_reclaim=0, kswapd=True)
    lg.timestamps = [0.0] * 4
    assert ops.kswapd_age_node(sim, node, sc12) is not None
    # min_ttl_ms 0: never
    ops.min_ttl_ms = 0
    assert ops.kswapd_age_node(sim, node, sc12) is None
