"""Classic reclaim: shrink_active_list (reference §2.7), inactive_is_low (§2.8), get_scan_count
(§1.8), watermarks (§1.2), and who reclaims when (kswapd vs direct reclaim, §1.3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import (
    ACTIVE_ANON, ACTIVE_FILE, INACTIVE_ANON, INACTIVE_FILE, Kind, cat, ids_of, lruvec, new_sim,
    reads, recs, replay, scan_control,
)

from reclaim_ext.core.engine import OutOfMemory
from reclaim_ext.core.lru import Lruvec
from reclaim_ext.core.ops import MAX_RECLAIM_RETRIES
from reclaim_ext.core.rmap import folio_referenced
from reclaim_ext.core.vmscan import get_scan_count, inactive_is_low, node_balanced, shrink_inactive_list
from reclaim_ext.machine.folio import LRU_ANON, LRU_FILE, PG_active, PG_referenced, PG_workingset
from reclaim_ext.machine.node import Memcg, Node, compute_watermarks, default_min_free_kbytes
from reclaim_ext.policies.classic import Classic
from reclaim_ext.trace import make_workload

# ---- shrink_active_list ------------------------------------------------------------------------

N_EXEC, N_MMAP, N_CACHE = 4, 8, 40


def active_mapped_folios():
    """A sim whose active file list holds N_EXEC exec folios and N_MMAP shared-mapping folios,
    all young again, plus N_CACHE read-once folios on the inactive list."""
    sim = new_sim(memory=256)
    exe = recs(Kind.FILE_EXEC, range(N_EXEC), file=1)
    mm0 = recs(Kind.FILE_MMAP, range(N_MMAP), file=2, pid=0)
    mm1 = recs(Kind.FILE_MMAP, range(N_MMAP), file=2, pid=1)
    replay(sim, cat(exe, mm0, mm1))
    lv = lruvec(sim)
    # one inactive scan: exec folios (first use) and folios young in two processes are activated
    shrink_inactive_list(sim, lv, LRU_FILE, lv.nr[INACTIVE_FILE], scan_control(), sim.ops)
    assert lv.nr[ACTIVE_FILE] == N_EXEC + N_MMAP
    replay(sim, cat(exe, mm0))  # used again through the mappings: young
    replay(sim, reads(range(N_CACHE), file=3))
    return sim, ids_of(sim, exe), ids_of(sim, mm0)


def age_active_file(sim):
    lv = lruvec(sim)
    lv.anon_cost = lv.file_cost = 0
    sim.ops.shrink_active_list(sim, lv, LRU_FILE, lv.nr[ACTIVE_FILE], scan_control())


def test_shrink_active_list_deactivates_young_non_exec_folios():
    sim, _, mm = active_mapped_folios()
    age_active_file(sim)
    f = sim.folios
    assert (f.lru[mm] == INACTIVE_FILE).all()
    assert not (f.flags[mm] & PG_active).any()


def test_deactivated_folios_get_workingset():
    sim, _, mm = active_mapped_folios()
    age_active_file(sim)
    assert (sim.folios.flags[mm] & PG_workingset).all()


def test_shrink_active_list_consumes_young_bits():
    sim, exe, mm = active_mapped_folios()
    age_active_file(sim)
    young, _ = folio_referenced(sim, np.concatenate([exe, mm]))
    assert not young.any()


def test_shrink_active_list_rotates_young_exec_file_folios():
    sim, exe, _ = active_mapped_folios()
    age_active_file(sim)
    f = sim.folios
    assert (f.lru[exe] == ACTIVE_FILE).all() and (f.flags[exe] & PG_active).all()
    assert not (f.flags[exe] & PG_workingset).any()


def test_rotated_exec_folios_are_charged_as_file_cost():
    sim, _, _ = active_mapped_folios()
    age_active_file(sim)
    lv = lruvec(sim)
    assert (lv.file_cost, lv.anon_cost) == (N_EXEC, 0)  # lru_note_cost(file, 0, nr_rotated)


def test_shrink_active_list_counts_refill_and_deactivate():
    sim, _, _ = active_mapped_folios()
    before = dict(sim.vm)
    age_active_file(sim)
    assert sim.vm["pgrefill"] - before["pgrefill"] == N_EXEC + N_MMAP
    assert sim.vm["pgdeactivate"] - before["pgdeactivate"] == N_MMAP


def test_idle_exec_folio_is_deactivated():
    """Only a *young* exec folio stays active."""
    sim = new_sim(memory=256)
    exe = recs(Kind.FILE_EXEC, range(N_EXEC))
    replay(sim, exe)
    lv = lruvec(sim)
    shrink_inactive_list(sim, lv, LRU_FILE, lv.nr[INACTIVE_FILE], scan_control(), sim.ops)
    assert lv.nr[ACTIVE_FILE] == N_EXEC
    age_active_file(sim)  # not touched since the scan that activated them
    assert (sim.folios.lru[ids_of(sim, exe)] == INACTIVE_FILE).all()


def test_deactivated_folio_keeps_referenced_and_reactivates_on_one_young_sighting():
    """§2.7 note: a folio activated by the references check still carries PG_referenced after
    deactivation, so one young observation on the inactive list activates it again."""
    sim, _, mm = active_mapped_folios()
    age_active_file(sim)
    assert (sim.folios.flags[mm] & PG_referenced).all()
    replay(sim, recs(Kind.FILE_MMAP, range(N_MMAP), file=2, pid=0))  # young in one process
    lv = lruvec(sim)
    shrink_inactive_list(sim, lv, LRU_FILE, lv.nr[INACTIVE_FILE], scan_control(), sim.ops)
    assert (sim.folios.lru[mm] == ACTIVE_FILE).all()


# ---- inactive_is_low ---------------------------------------------------------------------------

GIB = 1 << 18  # pages


def lruvec_with(lru_type: int, inactive: int, active: int) -> Lruvec:
    lv = Lruvec(Memcg(id=0), Node(nid=0, managed=1, wmark=compute_watermarks(1, 128, 10)), 2, [0])
    lv.nr[lru_type * 2] = inactive
    lv.nr[lru_type * 2 + 1] = active
    return lv


@pytest.mark.parametrize("gib, ratio", [(0, 1), (1, 3), (10, 10), (100, 31), (1024, 101)])
@pytest.mark.parametrize("lru_type", [LRU_ANON, LRU_FILE])
def test_inactive_is_low_ratio_table(gib, ratio, lru_type):
    """inactive * ratio < active, ratio = isqrt(10 * GiB) (1 below 1 GiB)."""
    x = max(1000, math.ceil(gib * GIB / (ratio + 1)))
    assert (((ratio + 1) * x + 1) >> 18) == gib  # both cases below are this many GiB
    assert not inactive_is_low(lruvec_with(lru_type, x, ratio * x), lru_type)
    assert inactive_is_low(lruvec_with(lru_type, x, ratio * x + 1), lru_type)


def test_inactive_is_low_looks_at_one_type():
    lv = lruvec_with(LRU_FILE, 10, 1000)
    lv.nr[INACTIVE_ANON], lv.nr[ACTIVE_ANON] = 1000, 10
    assert inactive_is_low(lv, LRU_FILE) and not inactive_is_low(lv, LRU_ANON)


def test_inactive_is_low_below_1gib_keeps_half():
    lv = lruvec_with(LRU_FILE, 50_000, 50_000)
    assert not inactive_is_low(lv, LRU_FILE)
    lv.nr[INACTIVE_FILE] -= 1
    assert inactive_is_low(lv, LRU_FILE)


# ---- get_scan_count ----------------------------------------------------------------------------

SIZES = [4096, 8192, 16384, 32768]  # inactive_anon, active_anon, inactive_file, active_file


def scan_count(*, swappiness=60, swap=1000, priority=2, anon_cost=0, file_cost=0, **sc_kw):
    sim = new_sim(memory=1024, swap=swap, swappiness=swappiness)
    lv = lruvec(sim)
    lv.nr[:] = SIZES  # get_scan_count only reads the list sizes
    sc = scan_control(priority=priority, anon_cost=anon_cost, file_cost=file_cost, **sc_kw)
    return get_scan_count(sim, lv, sc)


def test_scan_fract_worked_example():
    """swappiness 100, anon_cost 100, file_cost 300, priority 2 (§1.8 by hand):
    T = 400, a = 500, f = 700, T2 = 1200, ap = 100 * 1201 // 501 = 239,
    fp = 100 * 1201 // 701 = 171; scan = (size >> 2) * fraction // 410."""
    nr = scan_count(swappiness=100, anon_cost=100, file_cost=300)
    assert nr == [1024 * 239 // 410, 2048 * 239 // 410, 4096 * 171 // 410, 8192 * 171 // 410]
    assert nr == [596, 1193, 1708, 3416]


def test_scan_fract_default_swappiness_without_cost():
    """ap = 60, fp = 140 when no cost has been noted."""
    nr = scan_count(swappiness=60)
    assert nr == [1024 * 60 // 200, 2048 * 60 // 200, 4096 * 140 // 200, 8192 * 140 // 200]


def test_swappiness_zero_global_reclaim_scans_no_anon():
    nr = scan_count(swappiness=0, anon_cost=5, file_cost=500)
    assert nr[INACTIVE_ANON] == nr[ACTIVE_ANON] == 0
    assert nr[INACTIVE_FILE] == 4096 and nr[ACTIVE_FILE] == 8192


def test_swappiness_zero_is_not_scan_equal_at_priority_zero():
    nr = scan_count(swappiness=0, priority=0)
    assert nr == [0, 0, SIZES[2], SIZES[3]]


def test_swappiness_zero_global_reclaim_still_swaps_when_file_is_tiny():
    nr = scan_count(swappiness=0, file_is_tiny=True)
    assert nr == [1024, 2048, 0, 0]


def test_no_swap_scans_file_only():
    nr = scan_count(swap=0, anon_cost=1000, file_cost=1)
    assert nr == [0, 0, 4096, 8192]


def test_may_swap_off_scans_file_only():
    nr = scan_count(may_swap=False)
    assert nr == [0, 0, 4096, 8192]


def test_priority_zero_scans_equal():
    nr = scan_count(priority=0, anon_cost=1000, file_cost=1)
    assert nr == SIZES


def test_cache_trim_mode_scans_file_only():
    nr = scan_count(cache_trim_mode=True)
    assert nr == [0, 0, 4096, 8192]


def test_scan_count_shifts_by_priority():
    assert scan_count(priority=12, swap=0) == [0, 0, 16384 >> 12, 32768 >> 12]


# ---- watermarks --------------------------------------------------------------------------------


def test_watermarks_16gib_worked_example():
    pages = 16 * GIB
    mfk = default_min_free_kbytes(pages)
    assert mfk == 16384
    wm = compute_watermarks(pages, mfk, 10)
    assert (wm.min, wm.low, wm.high, wm.promo) == (4096, 8290, 12484, 16678)


@pytest.mark.parametrize("pages, kbytes", [(64, 128), (256, 128), (4 * GIB, 8192), (1 << 30, 262144)])
def test_min_free_kbytes_formula_and_clamp(pages, kbytes):
    assert default_min_free_kbytes(pages) == kbytes


def test_watermark_scale_factor_widens_gaps():
    wm = compute_watermarks(16 * GIB, 16384, 100)
    assert (wm.min, wm.low, wm.high) == (4096, 4096 + 41943, 4096 + 2 * 41943)


def test_small_machine_gap_is_a_quarter_of_min():
    wm = compute_watermarks(256, default_min_free_kbytes(256), 10)
    assert (wm.min, wm.low, wm.high) == (32, 40, 48)


def test_simulator_uses_kernel_watermarks():
    sim = new_sim(memory=16 * GIB)
    w = sim.node.wmark
    assert (w.min, w.low, w.high) == (4096, 8290, 12484)


# ---- kswapd and direct reclaim -----------------------------------------------------------------


class RecordingClassic(Classic):
    """Classic, noting the node's state at the end of every kswapd run / direct reclaim."""

    def __init__(self):
        self.runs = []

    def reclaim_done(self, sim, node, sc):
        super().reclaim_done(sim, node, sc)
        self.runs.append((sc.kswapd, node.free, node_balanced(node)))


def file_run():
    ops = RecordingClassic()
    sim = new_sim(memory=500, swap=500, ops=ops, check=False)
    replay(sim, make_workload("zipf", pages=2000, accesses=20_000, kind="file").to_array())
    return sim, ops


def test_kswapd_balances_node_above_high_watermark():
    sim, ops = file_run()
    kswapd = [r for r in ops.runs if r[0]]
    assert len(kswapd) == sim.vm["pageoutrun"] > 10
    assert all(balanced and free > sim.node.wmark.high for _, free, balanced in kswapd)


def test_kswapd_alone_keeps_up_with_page_cache():
    sim, _ = file_run()
    assert sim.vm["allocstall_normal"] == 0 and sim.vm["pgscan_direct"] == 0
    assert sim.vm["pgsteal_kswapd"] > 0


def test_free_pages_stay_above_low_watermark():
    sim, _ = file_run()
    assert sim.node.free >= sim.node.wmark.low
    assert all(s["free"] >= sim.node.wmark.low for s in sim.samples)


def anon_run(swap):
    sim = new_sim(memory=500, swap=swap, check=False)
    replay(sim, make_workload("zipf", pages=2000, accesses=20_000, kind="anon").to_array())
    return sim


def test_anon_without_swap_ends_in_oom():
    with pytest.raises(OutOfMemory, match=r"out of memory: \d+ pages in use, nothing reclaimable "
                                          r"\(swap 0/0 pages used\); give more --memory or --swap"):
        anon_run(swap=0)


def test_oom_comes_after_max_reclaim_retries_of_direct_reclaim():
    sim = new_sim(memory=500, swap=0, check=False)
    with pytest.raises(OutOfMemory):
        replay(sim, make_workload("zipf", pages=2000, accesses=20_000, kind="anon").to_array())
    assert sim.vm["allocstall_normal"] == MAX_RECLAIM_RETRIES
    assert sim.vm["oom_kill"] == 1 and sim.vm["pswpout"] == 0


def test_anon_with_enough_swap_completes_by_swapping():
    sim = anon_run(swap=2000)
    assert sim.accesses == 20_000
    assert sim.vm["pswpout"] > 0 and sim.vm["pswpin"] > 0
    assert sim.vm["allocstall_normal"] == 0 and sim.vm["oom_kill"] == 0
