"""The one reclaim path: kswapd and direct reclaim, shrink_node, the list-budget loop,
get_scan_count, shrink_inactive_list and shrink_folio_list. No policy is named here: every
policy decision is a reclaim_ops hook.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..jit import PREFETCH_AHEAD, noref, prefetch

from ..machine.folio import (
    LRU_ANON, LRU_FILE, NO_LIST, PG_active, PG_dirty, PG_mlocked, PG_reclaim, PG_referenced, PG_resident,
    PG_swapcache, PG_unevictable, PG_workingset, PG_writeback, TYPE_NAMES,
)
from ..machine.node import SWP_OUT, folio_alloc_swap, swap_used_add
from .ops import (
    DEF_PRIORITY, FOLIOREF_ACTIVATE, FOLIOREF_KEEP, FOLIOREF_RECLAIM, FOLIOREF_RECLAIM_CLEAN, MAX_RECLAIM_RETRIES,
    SWAP_CLUSTER_MAX, AccessEvents, ReclaimStat, ScanControl,
)
from .access import (
    FREE, NODE_COLUMNS, NR_FILE_DIRTY, STOP_MEMCG, STOP_WMARK, SWAP_TOTAL, SWAP_USED, alloc_budget, count_numa_all,
    mem_cgroup_swap_full, run_accesses, swap_slot_free,
)
from .counts import (
    K_FILE_WRITES, K_IMMEDIATE, K_PGACTIVATE, K_PGPGOUT, K_PSWPOUT, K_SWAP_OUTS, K_VMSCAN_WRITE, KSWAPD_COUNTS,
    WB_WRITEBACK, flush_counts, reclaim_scalars, set_reclaim_scalars, tables,
)
from .lru import add_at, add_tail, folio_deactivate, isolate_tail_into, rotate_dest, subtree_total
from .rmap import folio_referenced, folio_referenced_lookaround, unmap_folio

# shrink_folio_list outcomes
_PENDING, _FREE, _KEEP, _ACTIVATE, _DEMOTED = 0, 1, 2, 3, 4

SCAN_EQUAL, SCAN_FRACT, SCAN_ANON, SCAN_FILE = range(4)


# ------------------------------------------------------------------------------------------------
# cost signal


@noref
def note_cost(nr, anon_cost, file_cost, parent, sub_ptr, sub_idx, row, file, nr_io, nr_rotated, pending):
    """lru_note_cost on the arrays of core.lru.LruvecTable: charge reclaim cost to a type on the
    lruvec in `row` and every ancestor; halve both costs once they exceed a quarter of the LRU
    pages (the memcg subtree's). `pending` counts folios a batched caller has added to the
    lruvec in the kernel's order but not yet put on the lists."""
    cost = nr_io * SWAP_CLUSTER_MAX + nr_rotated
    while row >= 0:
        if file:
            file_cost[row] += cost
        else:
            anon_cost[row] += cost
        if anon_cost[row] + file_cost[row] > (subtree_total(nr, sub_ptr, sub_idx, row) + pending) // 4:
            anon_cost[row] //= 2
            file_cost[row] //= 2
        row = parent[row]


def lru_note_cost(lruvec, file: bool, nr_io: int, nr_rotated: int, pending: int = 0) -> None:
    """note_cost for a Lruvec."""
    t = lruvec.table
    note_cost(t.nr, t.anon_cost, t.file_cost, t.parent, t.sub_ptr, t.sub_idx, lruvec.row, bool(file), int(nr_io),
              int(nr_rotated), int(pending))


@njit(cache=True)
def inactive_low(nr, b, nr_classes):
    """inactive_is_low on list sizes `nr` for the type whose lists start at `b`: inactive *
    isqrt(10 * GiB) < active (ratio 1 below 1 GiB)."""
    inactive = nr[b]
    active = 0
    for c in range(1, nr_classes):
        active += nr[b + c]
    gb = (inactive + active) >> 18
    ratio = _isqrt(10 * gb) if gb else 1
    return inactive * ratio < active


@njit(cache=True)
def _isqrt(n):
    """int_sqrt: the largest r with r * r <= n."""
    r = np.int64(math.sqrt(n))
    while r * r > n:
        r -= 1
    while (r + 1) * (r + 1) <= n:
        r += 1
    return r


def inactive_is_low(lruvec, lru_type: int, hierarchical: bool = False) -> bool:
    """inactive_low on the lruvec's own lists (lruvec_lru_size, in shrink_lruvec) or,
    `hierarchical`, its memcg subtree's (lruvec_page_state: the target lruvec of
    prepare_scan_control, kswapd_age_node)."""
    nr = np.asarray(lruvec.hier_nr(), dtype=np.int64) if hierarchical else lruvec.nr.a
    return bool(inactive_low(nr, lru_type * lruvec.nr_classes, lruvec.nr_classes))


@noref
def deactivate_flags(nr, nr_classes, refaulted_anon, refaulted_file, force_deactivate, may_deactivate, priority):
    """prepare_scan_control, from the target lruvec's subtree list sizes `nr`: which types may be
    deactivated (refault activations since the last snapshot_refaults, or a low inactive list;
    both with force_deactivate; bit `1 << type`), and cache_trim_mode (inactive file left at this
    priority and file not to be deactivated). Returns (may_deactivate, cache_trim_mode)."""
    N = nr_classes
    anon_bit, file_bit = 1 << LRU_ANON, 1 << LRU_FILE
    if force_deactivate:
        may = anon_bit | file_bit
    else:
        may = may_deactivate
        if refaulted_anon or inactive_low(nr, LRU_ANON * N, N):
            may |= anon_bit
        else:
            may &= ~anon_bit
        if refaulted_file or inactive_low(nr, LRU_FILE * N, N):
            may |= file_bit
        else:
            may &= ~file_bit
    return may, (nr[LRU_FILE * N] >> priority) != 0 and not may & file_bit


@noref
def file_is_tiny(nr, nr_classes, may_deactivate, priority, free, high):
    """prepare_scan_control for root reclaim: file pages plus free pages at or below the high
    watermark while anon may not be deactivated and has inactive pages at this priority."""
    N = nr_classes
    file = 0
    for c in range(N):
        file += nr[LRU_FILE * N + c]
    return file + free <= high and not may_deactivate & (1 << LRU_ANON) and (nr[LRU_ANON * N] >> priority) != 0


def nr_swap_pages(sim, memcg=None) -> int:
    """mem_cgroup_nr_swap_pages for a memcg (None: the system's free slots)."""
    free = sim.swap.free
    if memcg is None or memcg.parent is None:
        return free
    return int(mem_cgroup_nr_swap_pages(free, memcg.id, sim._swap_max, sim.swap_usage, sim._mparent))


@noref
def mem_cgroup_nr_swap_pages(free, mc, swap_max, swap_usage, mparent):
    """mem_cgroup_get_nr_swap_pages: the `free` swap slots, and for memcg `mc` the least room
    left under memory.swap.max on its way to the root (the root, 0, has no limit)."""
    m = mc
    while m > 0:
        free = min(free, swap_max[m] - swap_usage[m])
        m = mparent[m]
    return free


def can_reclaim_anon(sim, sc: ScanControl | None = None, memcg=None) -> bool:
    """can_reclaim_anon_pages: swap space left, for `memcg` under its memory.swap.max (no demotion
    in this version)."""
    return nr_swap_pages(sim, memcg) > 0


@noref
def swap_try_charge(mc, swap_usage, swap_max, mparent, swap_events):
    """mem_cgroup_try_charge_swap: charge a swap slot to the memcg and its ancestors (not the
    root) unless one is at its memory.swap.max; a refusal counts max and fail in the memcg's
    memory.swap.events."""
    m = mc
    while m > 0:
        if swap_usage[m] + 1 > swap_max[m]:
            swap_events[mc, 0] += 1
            swap_events[mc, 1] += 1
            return False
        m = mparent[m]
    m = mc
    while m > 0:
        swap_usage[m] += 1
        m = mparent[m]
    return True


def swappiness(sim, lruvec, sc: ScanControl) -> int:
    """mem_cgroup_swappiness, or the proactive override."""
    if sc.swappiness is not None:
        return sc.swappiness
    return mem_cgroup_swappiness(sim, lruvec.memcg)


def mem_cgroup_swappiness(sim, memcg) -> int:
    """The memcg's memory.swappiness, else the system's vm.swappiness."""
    return memcg.swappiness if memcg.swappiness is not None else sim.config.swappiness


# ------------------------------------------------------------------------------------------------
# scan budget


@noref
def scan_balance(may_swap, can_anon, cgroup_reclaim, swp, priority, file_is_tiny, cache_trim_mode):
    """get_scan_count's choice of scan_balance."""
    if not may_swap or not can_anon:
        return SCAN_FILE
    if cgroup_reclaim and swp == 0:
        return SCAN_FILE
    if priority == 0 and swp > 0:
        return SCAN_EQUAL
    if file_is_tiny:
        return SCAN_ANON
    if cache_trim_mode:
        return SCAN_FILE
    return SCAN_FRACT


@noref
def scan_targets(nr, nr_classes, priority, balance, swp, anon_cost, file_cost, protection, cgroup_size, out):
    """get_scan_count's per-list arithmetic: each list's size, scaled down for a protected memcg
    (`protection` > 0: apply_proportional_protection over the memcg's `cgroup_size`, at least
    SWAP_CLUSTER_MAX), >> priority, scaled by its type's fraction of the swappiness-weighted cost
    (SCAN_FRACT) or kept/zeroed by type. All classes of a type share its fraction."""
    ap = fp = denominator = 0
    if balance == SCAN_FRACT:
        total = anon_cost + file_cost
        a = total + anon_cost
        f = total + file_cost
        total = a + f
        ap = swp * (total + 1) // (a + 1)
        fp = (200 - swp) * (total + 1) // (f + 1)
        denominator = ap + fp
    for lru in range(len(nr)):
        file = lru // nr_classes
        scan = nr[lru]
        if protection:
            size = max(cgroup_size, protection)
            scan = max(scan - scan * protection // (size + 1), SWAP_CLUSTER_MAX)
        scan >>= priority
        if balance == SCAN_FRACT:
            scan = scan * (fp if file else ap) // denominator if denominator else 0
        elif balance == SCAN_FILE and not file:
            scan = 0
        elif balance == SCAN_ANON and file:
            scan = 0
        out[lru] = scan


def get_scan_count(sim, lruvec, sc: ScanControl) -> list[int]:
    """get_scan_count: how many pages to scan on each list (scan_balance, scan_targets).
    Returns a list indexed by list index."""
    swp = swappiness(sim, lruvec, sc)
    cgroup_reclaim = sc.target_memcg is not None and sc.target_memcg.parent is not None
    balance = scan_balance(bool(sc.may_swap), can_reclaim_anon(sim, sc, lruvec.memcg), cgroup_reclaim, int(swp),
                           int(sc.priority),
                           bool(sc.file_is_tiny), bool(sc.cache_trim_mode))
    out = np.zeros(lruvec.nr_lists, dtype=np.int64)
    scan_targets(lruvec.nr.a, lruvec.nr_classes, int(sc.priority), balance, int(swp), int(sc.anon_cost),
                 int(sc.file_cost), proportional_protection(sim, lruvec, sc), lruvec.memcg.usage, out)
    return out.tolist()


def proportional_protection(sim, lruvec, sc: ScanControl) -> int:
    """The protection get_scan_count scales a memcg's scan by (mem_cgroup_protection, then
    apply_proportional_protection's choice): elow when above emin and reclaim does not yet go
    into memory.low (which sets memcg_low_skipped, so a failed reclaim retries), else emin;
    0 for the target and the root."""
    memcg = lruvec.memcg
    target = sc.target_memcg or sim.root_memcg
    if memcg is target or memcg.parent is None or not (memcg.min or memcg.low or _recursive(sim)):
        return 0
    rec = _recursive(sim)
    emin, elow = effective_prot(target, memcg, "min", rec), effective_prot(target, memcg, "low", rec)
    if not sc.memcg_low_reclaim and elow > emin:
        sc.memcg_low_skipped = True
        return elow
    return emin


# ------------------------------------------------------------------------------------------------
# the list-budget loop (shrink_lruvec)


@noref
def budget_next(nr, targets, st, nr_classes, may_deactivate, nr_to_reclaim):
    """One step of shrink_lruvec's list-budget loop: the next batch to run, as (list, pages), or
    (-1, 0) when the loop is over. The loop walks the per-list budgets `nr` (from get_scan_count's
    `targets`) in SWAP_CLUSTER_MAX steps; active-class batches run only when `may_deactivate`
    allows the type (else st[3] is set: skipped_deactivate); once the goal is met (kswapd, cgroup
    and non-first-priority direct reclaim) the remaining budget is trimmed so the anon:file
    proportion of the original targets is kept. State `st`: [next list of the round (-1: the top
    of the loop), pages reclaimed (the caller adds each batch's), proportional, skipped]."""
    N = nr_classes
    while True:
        if st[0] < 0:  # the loop condition: inactive anon, or any file list, has budget left
            left = nr[0] > 0
            for lru in range(N, 2 * N):
                left = left or nr[lru] > 0
            if not left:
                return -1, 0
            st[0] = 0
        lru = st[0]
        while lru < 2 * N:
            if nr[lru]:
                n = min(nr[lru], SWAP_CLUSTER_MAX)
                nr[lru] -= n
                if lru % N and not may_deactivate & (1 << (lru // N)):
                    st[3] = 1
                else:
                    st[0] = lru + 1
                    return lru, n
            lru += 1
        st[0] = -1
        if st[1] < nr_to_reclaim or st[2]:
            continue
        nr_anon = nr_file = t_anon = t_file = 0
        for c in range(N):
            nr_anon += nr[c]
            nr_file += nr[N + c]
            t_anon += targets[c]
            t_file += targets[N + c]
        if not nr_file or not nr_anon:
            return -1, 0
        if nr_file > nr_anon:
            small, other = LRU_ANON, LRU_FILE
            percentage = nr_anon * 100 // (t_anon + 1)
        else:
            small, other = LRU_FILE, LRU_ANON
            percentage = nr_file * 100 // (t_file + 1)
        for c in range(N):
            nr[small * N + c] = 0
        for c in range(N):
            lru = other * N + c
            scanned = targets[lru] - nr[lru]
            t = targets[lru] * (100 - percentage) // 100
            nr[lru] = t - min(t, scanned)
        st[2] = 1


def _budget_loop(lruvec, sc: ScanControl, targets: list[int], on_batch) -> int:
    """The control flow of shrink_lruvec (budget_next): `on_batch(lru, n)` does the work of each
    batch and returns the pages reclaimed. Returns the pages reclaimed."""
    t = np.asarray(targets, dtype=np.int64)
    nr = t.copy()
    proportional = (not sc.kswapd) and sc.target_memcg is None and sc.priority == DEF_PRIORITY
    st = np.array([-1, 0, proportional, 0], dtype=np.int64)
    while True:
        lru, n = budget_next(nr, t, st, lruvec.nr_classes, int(sc.may_deactivate), int(sc.nr_to_reclaim))
        if lru < 0:
            break
        if st[3]:
            sc.skipped_deactivate = True
        st[1] += on_batch(lru, n)
    if st[3]:
        sc.skipped_deactivate = True
    return int(st[1])


def shrink_lruvec_lists(sim, lruvec, sc: ScanControl, ops) -> None:
    """shrink_lruvec: class 0 lists are reclaimed (shrink_inactive_list), other classes are aged
    by the policy, under the budget loop of _budget_loop. A pass over clean page cache only may be
    run in bulk (_clean_file_pass) with the same result."""
    N = lruvec.nr_classes
    targets = list(ops.scan_budget(sim, lruvec, sc))
    if not _clean_file_pass(sim, lruvec, sc, ops, targets):

        def on_batch(lru: int, n: int) -> int:
            if lru % N:
                sim.cost["lru_lock_ops"] += 2  # isolate + putback
                ops.age(sim, lruvec, lru, n, sc)
                return 0
            return shrink_inactive_list(sim, lruvec, lru // N, n, sc, ops)

        sc.nr_reclaimed += _budget_loop(lruvec, sc, targets, on_batch)
    ops.after_lruvec(sim, lruvec, sc)


_NOT_SIMPLE = PG_unevictable | PG_mlocked | PG_dirty | PG_writeback | PG_reclaim


def _clean_file_pass(sim, lruvec, sc: ScanControl, ops, targets: list[int]) -> bool:
    """Run one shrink_lruvec pass in bulk when it only meets clean, never-mapped file folios.

    For such folios (and a policy that declares `bulk_clean_file_pass`), every folio isolated from
    the inactive class is freed, aging moves nothing that affects the inactive tail or the clock,
    and eviction tokens depend only on eviction order. The budget loop's control flow is then
    known from the batch sizes alone: it is run dry, the candidates it would scan are checked,
    and the whole pass is applied with a few array operations instead of one shrink_folio_list
    per 32 folios. Returns False (nothing done) when the pass does not qualify.
    """
    if not (ops.bulk_clean_file_pass and sim.bulk_on(lruvec.node) and sc.priority >= 1):
        return False
    N = lruvec.nr_classes
    if any(targets[:N]):
        return False
    batches: list[tuple[int, int]] = []
    skipped = sc.skipped_deactivate

    def dry(lru: int, n: int) -> int:
        batches.append((lru, n))
        return 0 if lru % N else n

    _budget_loop(lruvec, sc, targets, dry)
    if not batches:
        sc.skipped_deactivate = skipped
        return False
    inactive = lruvec.list_index(LRU_FILE, 0)
    t_in = sum(n for lru, n in batches if lru == inactive)
    if not _bulk_apply(sim, lruvec, sc, ops, np.array(batches, dtype=np.int64)):
        sc.skipped_deactivate = skipped
        return False
    sim.bulk_passes += 1
    sc.nr_scanned += t_in
    sc.nr.taken += t_in
    sc.nr.file_taken += t_in
    sc.nr_reclaimed += t_in
    return True


@noref
def _tail_simple(ids, stamps, lo, hi, fstamp, flags, pte_head, n, bad):
    """Whether the first n valid folios from a list's tail exist and are never mapped with none
    of the `bad` flags."""
    k = 0
    unfit = False
    while k < n and lo < hi:
        if lo + PREFETCH_AHEAD < hi:  # the folios ahead: each is a random access into the tables
            h = ids[lo + PREFETCH_AHEAD]
            prefetch(fstamp, h)
            prefetch(flags, h)
            prefetch(pte_head, h)
        g = ids[lo]
        valid = fstamp[g] == stamps[lo]  # stale slots come at random: no branch on it
        unfit |= valid and ((flags[g] & bad) != 0 or pte_head[g] >= 0)
        k += valid
        lo += 1
    return k == n and not unfit


@njit(cache=True)
def bulk_isolate_deactivate(in_ids, in_stamps, in_lo, in_hi, act_ids, act_stamps, act_lo, act_hi, fstamp, flru,
                            flags, pte_head, nr, row, inactive, active, t_in, n_act, clock, out):
    """The folio work of a bulk pass over one lruvec's file lists (inactive, active), or none
    when a folio it would reach is not a clean, never-mapped folio with no special state or a
    list holds fewer than asked (ok False, nothing changed): t_in folios isolated from the
    inactive tail into `out`, oldest first (isolate_lru_folios), then n_act folios from the active
    tail deactivated onto the inactive head in order (shrink_active_list for never-mapped
    folios: none is young, so none stays active). The inactive list's arrays need room for n_act
    slots past in_hi. Returns (ok, inactive lo, inactive hi, active lo)."""
    if not (_tail_simple(in_ids, in_stamps, in_lo, in_hi, fstamp, flags, pte_head, t_in, _NOT_SIMPLE)
            and _tail_simple(act_ids, act_stamps, act_lo, act_hi, fstamp, flags, pte_head, n_act,
                             PG_unevictable | PG_mlocked)):
        return False, in_lo, in_hi, act_lo
    _, in_lo = isolate_tail_into(in_ids, in_stamps, in_lo, in_hi, fstamp, flru, t_in, out)
    aged = np.empty(n_act, dtype=np.int64)
    _, act_lo = isolate_tail_into(act_ids, act_stamps, act_lo, act_hi, fstamp, flru, n_act, aged)
    for k in range(n_act):
        folio_deactivate(flags, aged[k])
        add_at(aged[k], inactive, in_ids, in_stamps, in_hi, fstamp, flru, clock)
        in_hi += 1
    nr[row, inactive] += n_act - t_in
    nr[row, active] -= n_act
    return True, in_lo, in_hi, act_lo


def rotate_reclaimable(sim, lruvec, ids: np.ndarray) -> None:
    """ReclaimOps.rotate_reclaimable's default (folio_rotate_reclaimable -> lru_move_tail):
    PG_active cleared, each folio to the tail of its type's first class (core.lru.rotate_dest,
    add_tail; a compiled driver's flusher calls the same two, core.kswapd.driver_writeback)."""
    f = sim.folios
    ids = np.asarray(ids, dtype=np.int64)
    dest = rotate_dest(ids, f.flags, f.type, lruvec.nr_classes)
    for lru in (lruvec.list_index(LRU_ANON, 0), lruvec.list_index(LRU_FILE, 0)):
        fl = lruvec.lists[lru]
        fl.ids, fl.stamps, fl.lo, fl.hi = add_tail(ids, dest, lru, fl.ids, fl.stamps, fl.lo, fl.hi, f.lru, f.stamp,
                                                   lruvec.table.nr[lruvec.row], sim._stamp_clock)


@njit(cache=True)
def writeback_due(dirty, requested, bg):
    """Whether the flusher writes the dirty file pages now: there are some, and reclaim woke it
    (wakeup_flusher_threads: `requested`) or they exceed dirty_background_ratio (`bg` pages)."""
    return dirty > 0 and (requested or dirty > bg)


@noref
def end_writeback(flags, ftype, flru, count, flush_dirty, on):
    """The flusher's pass over folios 0..count-1, in id order: writeback that reclaim started
    completes (PG_writeback cleared), and with `flush_dirty` each dirty resident file folio is
    written (PG_dirty cleared; its writeback counted as done at once). A folio whose writeback
    completed and that reclaim marked PG_reclaim has the flag cleared (folio_end_writeback); the
    clean ones of those still on a list go to `on`, for folio_rotate_reclaimable. Returns (file
    folios written, folios in `on`)."""
    nw = 0
    k = 0
    for g in range(count):
        fl = np.int64(flags[g])
        done = (fl & PG_writeback) != 0
        fl &= ~PG_writeback
        if flush_dirty and (fl & (PG_dirty | PG_resident)) == PG_dirty | PG_resident and ftype[g] == LRU_FILE:
            fl &= ~PG_dirty
            nw += 1
            done = True
        if done and (fl & PG_reclaim) != 0:
            fl &= ~PG_reclaim
            if flru[g] != NO_LIST and (fl & PG_dirty) == 0:
                on[k] = g
                k += 1
        if fl != flags[g]:  # the table's other lines stay clean
            flags[g] = fl
    return nw, k


@noref
def note_cost_batches(nr, anon_cost, file_cost, parent, sub_ptr, sub_idx, row, batches, inactive):
    """lru_note_cost after each inactive-list batch of `batches` (rows: list, pages) that freed
    all it isolated, replayed after the whole bulk isolation: the folios of later batches count
    as still on the list (pending)."""
    t_in = 0
    for i in range(len(batches)):
        if batches[i, 0] == inactive:
            t_in += batches[i, 1]
    done = 0
    for i in range(len(batches)):
        if batches[i, 0] == inactive:
            done += batches[i, 1]
            note_cost(nr, anon_cost, file_cost, parent, sub_ptr, sub_idx, row, True, 0, 0, t_in - done)


def _bulk_apply(sim, lruvec, sc: ScanControl, ops, batches: np.ndarray) -> bool:
    """Do the folio work of `batches` (rows: list, pages; the file lists only) in bulk, or
    nothing (False) when a folio they reach does not qualify: every inactive folio isolated is
    freed with its shadow, the active list is aged in one step (bulk_isolate_deactivate), and
    the counters and the cost signal are replayed batch by batch. Needs a policy whose age() is
    shrink_active_list's deactivation of unrotated folios in tail order (`deactivates_in_order`)
    and two classes."""
    if lruvec.nr_classes != 2 or not getattr(type(ops).age, "deactivates_in_order", False):
        return False
    f = sim.folios
    inactive = lruvec.list_index(LRU_FILE, 0)
    active = inactive + 1
    is_in = batches[:, 0] == inactive
    if not (is_in | (batches[:, 0] == active)).all():
        return False
    t_in = int(batches[is_in, 1].sum())
    n_act = int(batches[:, 1].sum()) - t_in
    li, la = lruvec.lists[inactive], lruvec.lists[active]
    if li.hi + n_act > len(li.ids):
        li._compact(f, n_act, 0)
    ids = np.empty(t_in, dtype=np.int64)
    t = lruvec.table
    ok, lo, hi, alo = bulk_isolate_deactivate(li.ids, li.stamps, li.lo, li.hi, la.ids, la.stamps, la.lo, la.hi, f.stamp,
                                              f.lru, f.flags, f.pte_head, t.nr, lruvec.row, inactive, active, t_in,
                                              n_act, sim._stamp_clock, ids)
    if not ok:
        return False
    li.lo, li.hi, la.lo = lo, hi, alo
    cost, vm = sim.cost, sim.vm
    cost["lru_lock_ops"] += 2 * len(batches)
    cost["pages_scanned"] += t_in + n_act
    if n_act:
        vm["pgrefill"] += n_act
        vm["pgdeactivate"] += n_act
    remove_mapping(sim, lruvec, ops, ids, sc)
    count_reclaim(sim, lruvec, sc, "pgscan", LRU_FILE, t_in)
    count_reclaim(sim, lruvec, sc, "pgsteal", LRU_FILE, t_in)
    note_cost_batches(t.nr, t.anon_cost, t.file_cost, t.parent, t.sub_ptr, t.sub_idx, lruvec.row, batches, inactive)
    return True


# node scalars a compiled kswapd run reads and writes (`nodev`)
N_FREE, N_MIN, N_LOW, N_HIGH, N_FAILURES, N_DIRTY, N_WRITEBACK = range(7)


@njit(cache=True)
def kswapd_sleep_flags(nodev, reclaimed):
    """The end of balance_pgdat: a balanced node lets kswapd sleep (prepare_kswapd_sleep ->
    clear_pgdat_congested: the dirty and writeback flags are cleared); a run that reclaimed
    nothing counts a kswapd failure."""
    if nodev[N_FREE] > nodev[N_HIGH]:  # pgdat_balanced
        nodev[N_DIRTY] = 0
        nodev[N_WRITEBACK] = 0
    elif reclaimed == 0:
        nodev[N_FAILURES] += 1


# ---- the steps of a policy's compiled driver (ReclaimOps.segment_driver, engine.drive_compiled)


@noref
def driver_stretch(head, tail, s, nodev, i, granted, skip_used, budget):
    """engine._run_chunk's stretch from record i: the allocation budget (the watermarks) into
    `budget` (one node: a compiled driver runs only on one), then run_accesses (`head` and
    `tail` its arguments around start, budget, skip_used). Returns (next record, why stopped,
    events, granted, skip_used) for the next stretch."""
    budget[0] = alloc_budget(s[FREE], nodev[N_LOW], nodev[N_MIN], nodev[N_FAILURES], MAX_RECLAIM_RETRIES)
    if granted:
        budget[0] = max(budget[0], 1)
    nxt, why, ne, na = run_accesses(head[0], head[1], head[2], head[3], head[4], head[5], i, budget, skip_used, *tail)
    return nxt, why, ne, granted and na == 0, why == STOP_WMARK or why == STOP_MEMCG


@noref
def push_slots(push, npush, ids, stamps, lohi):
    """HookOut.apply for one lruvec's lists: the first npush slots of `push` (folio, list,
    stamp) onto the lists' heads in order, or nothing (False) when a list lacks the room."""
    for lru in range(len(ids)):
        if lohi[2 * lru + 1] + npush > len(ids[lru]):  # maybe short: count this list's slots
            cnt = 0
            for k in range(npush):
                if push[1][k] == lru:
                    cnt += 1
            if lohi[2 * lru + 1] + cnt > len(ids[lru]):
                return False
    for k in range(npush):
        lru = push[1][k]
        h = lohi[2 * lru + 1]
        ids[lru][h] = push[0][k]
        stamps[lru][h] = push[2][k]
        lohi[2 * lru + 1] = h + 1
    return True


def node_scalars(node) -> np.ndarray:
    """The node's scalars a compiled kswapd run reads and writes (N_FREE ...)."""
    return np.array([node.free, node.wmark.min, node.wmark.low, node.wmark.high, node.kswapd_failures, node.dirty_flag,
                     node.writeback_flag], dtype=np.int64)


def set_node_scalars(node, nodev: np.ndarray) -> None:
    node.free, _, _, _, node.kswapd_failures, dirty, writeback = nodev.tolist()
    node.dirty_flag, node.writeback_flag = bool(dirty), bool(writeback)


def count_reclaim(sim, lruvec, sc: ScanControl, event: str, lru_type: int, n: int) -> None:
    """Count `n` folios of type `lru_type` scanned (`event` "pgscan": isolated) or reclaimed
    ("pgsteal") by one reclaimer, as shrink_inactive_list counts nr_taken / nr_reclaimed and
    MGLRU's scan_folios / evict_folios count isolated / reclaimed: PGSCAN_KSWAPD or PGSCAN_DIRECT
    in vmstat and in the scanned lruvec's memcg (count_memcg_events), and PGSCAN_ANON + file in
    vmstat (__count_vm_events(PGSCAN_ANON + file, nr_scanned)). Every reclaim path counts through
    here, so pgscan_kswapd + pgscan_direct == pgscan_anon + pgscan_file (and for pgsteal) by
    construction; a batch that mixes types (a reclaim_ext policy's) is counted per type
    (count_reclaim_batch). Unlike the kernel, cgroup reclaim is counted in the global
    pgscan_direct / pgsteal_direct too (docs/model.md, memcg reclaim)."""
    if n:
        sim.count(lruvec, f"{event}_{'kswapd' if sc.kswapd else 'direct'}", n)
        sim.vm[f"{event}_{TYPE_NAMES[lru_type]}"] += n


def count_reclaim_batch(sim, lruvec, sc: ScanControl, event: str, ids: np.ndarray) -> None:
    """count_reclaim for a batch of folios of either type, each counted under its own type."""
    if len(ids):
        nr = np.bincount(sim.folios.type[ids], minlength=2)
        count_reclaim(sim, lruvec, sc, event, LRU_ANON, int(nr[LRU_ANON]))
        count_reclaim(sim, lruvec, sc, event, LRU_FILE, int(nr[LRU_FILE]))


def shrink_inactive_list(sim, lruvec, lru_type: int, nr_to_scan: int, sc: ScanControl, ops) -> int:
    """shrink_inactive_list: isolate from the policy's candidates, run shrink_folio_list, put the
    survivors back, note the cost."""
    ids = np.asarray(ops.isolate(sim, lruvec, lru_type, nr_to_scan, sc), dtype=np.int64)
    sim.check_candidates(lruvec, ids, lru_type)
    nr_taken = len(ids)
    sim.cost["lru_lock_ops"] += 1
    if not nr_taken:
        return 0
    count_reclaim(sim, lruvec, sc, "pgscan", lru_type, nr_taken)
    sim.cost["pages_scanned"] += nr_taken
    res = shrink_folio_list(sim, lruvec, ids, sc, ops)
    # move_folios_to_lru
    sim.cost["lru_lock_ops"] += 1
    ops.putback(sim, lruvec, res.keep_ids, res.keep_active)
    reclaimed = res.nr_reclaimed
    count_reclaim(sim, lruvec, sc, "pgsteal", lru_type, reclaimed)
    lru_note_cost(lruvec, lru_type == LRU_FILE, res.nr_pageout, nr_taken - reclaimed)
    note_folio_list_result(sim, sc, res, nr_taken)
    if lru_type == LRU_FILE:
        sc.nr.file_taken += nr_taken
    return reclaimed


def note_folio_list_result(sim, sc: ScanControl, res: "FolioListResult", nr_taken: int) -> None:
    """The end of shrink_inactive_list after shrink_folio_list of `nr_taken` folios: wake the
    flushers when every folio taken was dirty and not queued for writeback, and add the batch's
    dirty / writeback census to the pass's (sc.nr, read by shrink_node's throttling flags)."""
    if res.nr_unqueued_dirty and res.nr_unqueued_dirty == nr_taken:
        sim.writeback_requested = True  # wakeup_flusher_threads(WB_REASON_VMSCAN)
    st = sc.nr
    st.dirty += res.nr_dirty
    st.congested += res.nr_congested
    st.unqueued_dirty += res.nr_unqueued_dirty
    st.writeback += res.nr_writeback
    st.immediate += res.nr_immediate
    st.taken += nr_taken


class FolioListResult:
    __slots__ = ("nr_reclaimed", "keep_ids", "keep_active", "nr_dirty", "nr_unqueued_dirty",
                 "nr_congested", "nr_writeback", "nr_immediate", "nr_pageout", "nr_activate")


_SLOW_FLAGS = PG_unevictable | PG_mlocked | PG_dirty | PG_writeback

# shrink_folio_list's counts kept by the compiled steps (index into `census`)
_NR_CENSUS = 8  # nr_dirty, nr_unqueued_dirty, nr_congested, nr_immediate, nr_writeback,
#                 immediate reclaims (dirty file folios marked), file pageouts, swap pageouts


@noref
def _clean_unmapped_file(ids, fl, ftype, pte_head):
    """Whether a batch holds only clean, never-mapped file folios with no special state (`fl`:
    their flags)."""
    for i in range(len(ids)):
        g = ids[i]
        if fl[i] & _SLOW_FLAGS or ftype[g] != LRU_FILE or pte_head[g] >= 0:
            return False
    return True


@noref
def _scatter_pending(out, v, verdict):
    """The references verdicts `v` of the pending folios, in order, into `verdict` (one per
    folio of the batch)."""
    k = 0
    for i in range(len(out)):
        if out[i] == _PENDING:
            verdict[i] = v[k]
            k += 1


@njit(cache=True)
def _shrink_census(ids, flags, ftype, kswapd, writeback_flag, out, census):
    """_shrink_census_into. Returns the folios still pending (for the references step), in
    order."""
    pend = np.empty(len(ids), dtype=np.int64)
    return pend[:_shrink_census_into(ids, flags, ftype, kswapd, writeback_flag, out, census, pend)]


@noref
def _shrink_census_into(ids, flags, ftype, kswapd, writeback_flag, out, census, pend):
    """shrink_folio_list steps 3-6 for each isolated folio, in list order: an unevictable or
    mlocked folio is activated (putback culls it); dirty / writeback file folios are counted; a
    folio under writeback is activated after being marked PG_reclaim, unless kswapd meets it
    again (PG_reclaim already set) while the node is flagged for writeback (nr_immediate).
    The folios still pending (for the references step) go to `pend`, in order; returns their
    number."""
    for i in range(len(ids)):
        g = ids[i]
        fl = flags[g]
        file = ftype[g] == LRU_FILE
        if fl & (PG_unevictable | PG_mlocked):
            out[i] = _ACTIVATE
        recl = (fl & PG_reclaim) != 0
        dirty = (fl & PG_dirty) != 0
        wb = (fl & PG_writeback) != 0
        if file and (dirty or wb):
            census[0] += 1
        if file and dirty and not wb:
            census[1] += 1
        if file and wb and recl:
            census[2] += 1
        if wb and out[i] == _PENDING:
            if kswapd and recl and writeback_flag:
                census[3] += 1
            else:
                flags[g] = fl | PG_reclaim
                census[4] += 1
            out[i] = _ACTIVATE
    k = 0
    for i in range(len(ids)):
        if out[i] == _PENDING:
            pend[k] = ids[i]
            k += 1
    return k


@noref
def _shrink_pageout(ids, flags, ftype, pte_head, present, pyoung, nxt_of, verdict, kswapd, may_writepage,
                    dirty_flag, out, census, fmemcg, swap_memcg, swap_usage, swap_max, mparent, swap_events, swap_type,
                    sw):
    """shrink_folio_list steps 8-12 for each folio, in list order, after the references verdicts:
    ACTIVATE / KEEP verdicts decide first; an anon folio not in the swap cache gets a swap slot
    (first come, first served, on the device folio_alloc_swap picks; none left: activate) and
    joins the swap cache dirty (add_to_swap: PG_swapcache, PG_dirty); every folio still going is unmapped
    (try_to_unmap, which always succeeds here); a dirty file folio is written only by kswapd on
    a second sighting (PG_reclaim) while the node is flagged dirty, unless the verdict was
    RECLAIM_CLEAN, and is kept under writeback; otherwise it is marked PG_reclaim and activated;
    a dirty anon folio is written to the swap device and freed; a clean one in the swap cache
    (swapped in from a disk, not written since) is freed without a write. Returns the swap
    slots taken and the node pages zram's pool grew by."""
    got = 0
    grow = 0
    for i in range(len(ids)):
        v = verdict[i]
        if out[i] == _PENDING and v == FOLIOREF_ACTIVATE:
            out[i] = _ACTIVATE
        elif out[i] == _PENDING and v == FOLIOREF_KEEP:
            out[i] = _KEEP
    for i in range(len(ids)):
        if out[i] != _PENDING:
            continue
        g = ids[i]
        fl = flags[g]
        dirty = (fl & PG_dirty) != 0
        if ftype[g] != LRU_FILE:  # 9. add_to_swap: a free slot, charged to the memcg (memory.swap.max)
            if (fl & PG_swapcache) == 0:  # (in the swap cache already, a disk's: its slot, dirty only if written)
                d = folio_alloc_swap(sw)
                if d < 0 or not swap_try_charge(fmemcg[g], swap_usage, swap_max, mparent, swap_events):
                    out[i] = _ACTIVATE
                    continue
                got += 1
                grow += swap_used_add(sw, d, 1)
                swap_memcg[g] = fmemcg[g]
                swap_type[g] = d
                # add_to_swap: in the swap cache and dirty (its copy on swap is not written yet),
                # so a folio kept below (!may_writepage) keeps this slot for its next reclaim
                fl |= PG_swapcache | PG_dirty
                flags[g] = fl
                dirty = True
        unmap_folio(g, pte_head, present, pyoung, nxt_of)  # 10. try_to_unmap
        if not dirty:  # 12. dirty folios
            continue
        if ftype[g] == LRU_FILE:
            if not (kswapd and (fl & PG_reclaim) != 0 and dirty_flag):
                flags[g] = fl | PG_reclaim
                census[5] += 1
                out[i] = _ACTIVATE
            elif verdict[i] == FOLIOREF_RECLAIM_CLEAN or not may_writepage:
                out[i] = _KEEP
            else:
                flags[g] = (fl & ~PG_dirty) | PG_writeback | PG_reclaim
                census[6] += 1
                out[i] = _KEEP
        elif not may_writepage:
            out[i] = _KEEP
        else:  # pageout: the write cleans it; it leaves the swap cache when freed (__remove_mapping)
            flags[g] = fl & ~PG_dirty
            census[7] += 1
            sw[swap_type[g], SWP_OUT] += 1
    return got, grow


def can_demote(sim, node) -> bool:
    """can_demote: demotion is on (the demotion mechanism: /sys/kernel/mm/numa/demotion_enabled)
    and the node has a node of a lower tier to demote to (next_demotion_node)."""
    return bool(sim.demotion[node.nid]) and sim.ops.uses("demotion")


def demote_folio_list(sim, lruvec, ids: np.ndarray, sc: ScanControl) -> int:
    """demote_folio_list: migrate the folios, in order, to lower-tier nodes (alloc_demote_folio:
    the target node, then the other allowed lower-tier nodes by distance, GFP_NOWAIT without
    direct reclaim: a node above its low watermark, else one above min whose kswapd is then woken;
    the model runs a kswapd woken here after the reclaim it happened in: sim.kswapd_pending).
    A migrated folio keeps its memcg charge, flags and mappings; its page on the source node is
    freed (pgfree), its new page allocated (pgalloc_normal, numa_hit on the target) and the folio
    goes on the target node's lruvec as a new folio (folio_add_lru: the policy's ADD event).
    Counted: pgdemote_kswapd / pgdemote_direct on the source lruvec, pgmigrate_success,
    pages_migrated. Returns how many were demoted (the first ones: once no node has room, none
    of the rest gets a page)."""
    f, nodes, src = sim.folios, sim.nodes, lruvec.node
    order = sim.demotion[src.nid]
    dest = np.empty(len(ids), dtype=np.int64)
    free = {m: nodes[m].free for m in order}  # as the allocations so far leave them
    done = 0
    for _ in range(len(ids)):
        nid = -1
        for m in order:
            t = nodes[m]
            if free[m] > t.wmark.low:
                nid = m
                break
            sim.wakeup_kswapd(t)  # the node is at or below low
            if free[m] > t.wmark.min:
                nid = m
                break
        if nid < 0:
            break
        free[nid] -= 1
        dest[done] = nid
        done += 1
    if not done:
        return 0
    moved = ids[:done]
    sim.count(lruvec, f"pgdemote_{'kswapd' if sc.kswapd else 'direct'}", done)
    sim.demoted += np.bincount(f.type[moved], minlength=2)
    migrate_folios(sim, src, moved, dest[:done], np.full(done, order[0], dtype=np.int64))
    return done


def migrate_folios(sim, src, ids: np.ndarray, dest: np.ndarray, preferred: np.ndarray) -> None:
    """migrate_pages of isolated folios from node `src` to the nodes `dest` (each folio's, its
    allocation's `preferred` node given): a new page on its node (pgalloc_normal and
    zone_statistics' NUMA events: core.access.count_numa), the old one freed (pgfree), the folio
    keeping its memcg charge, flags and mappings, then on its new node's lruvec as a new folio
    (folio_add_lru: the policy's ADD event, in order). Counted: pgmigrate_success, the cost
    counter pages_migrated. The policy hears of the old folios first (ReclaimOps.folio_migrate).
    Shared by demotion and promotion."""
    f, nodes, n = sim.folios, sim.nodes, len(ids)
    sim.ops.folio_migrate(sim, ids)
    src.free += n
    f.nid[ids] = dest
    for m, c in zip(*np.unique(dest, return_counts=True)):
        nodes[int(m)].free -= int(c)
    ncnt = np.zeros((len(nodes), len(NODE_COLUMNS)), dtype=np.int64)
    count_numa_all(dest, preferred, ncnt)
    sim.add_node_counts(ncnt)
    sim.vm["pgalloc_normal"] += n
    sim.vm["pgfree"] += n
    sim.vm["pgmigrate_success"] += n
    sim.cost["pages_migrated"] += n
    ev = AccessEvents(page=ids, is_add=np.ones(n, dtype=bool), shadow=np.full(n, -1, dtype=np.int64),
                      shadow_ws=np.zeros(n, dtype=bool), lru_type=f.type[ids],
                      swap_free=np.full(n, sim.swap.free, dtype=np.int64), fault=np.zeros(n, dtype=bool))
    sim._dispatch_events(ev)


def shrink_folio_list(sim, lruvec, ids: np.ndarray, sc: ScanControl, ops) -> FolioListResult:
    """shrink_folio_list (mm/vmscan.c) over the isolated batch in list order: the per-folio steps
    are compiled (_shrink_census, then shrink_folio_list_tail as on the compiled
    paths); the policy's verdicts and eviction tokens come from its hooks in between.

    Survivors are returned in input order with whether they were activated; freed folios leave
    a shadow entry (the policy's eviction token) and go back to the free pool. A batch of clean,
    never-mapped file folios takes a shorter path (_shrink_clean_unmapped).
    """
    f = sim.folios
    node = lruvec.node
    n = len(ids)
    fl = f.flags[ids]
    demote = can_demote(sim, node)
    if not demote and _clean_unmapped_file(ids, fl, f.type, f.pte_head):
        return _shrink_clean_unmapped(sim, lruvec, ids, fl, sc, ops)
    res = FolioListResult()
    sc.nr_scanned += n
    # steps 3-6 (compiled): unevictable, the dirty / writeback census, folios under writeback
    out = np.zeros(n, dtype=np.int8)  # _PENDING
    census = np.zeros(_NR_CENSUS, dtype=np.int64)
    pid = _shrink_census(ids, f.flags, f.type, sc.kswapd, node.writeback_flag, out, census)
    res.nr_dirty, res.nr_unqueued_dirty, res.nr_congested, res.nr_immediate, res.nr_writeback = \
        census[:5].tolist()

    # 7. references (the policy's verdicts on what the rmap walk found) for the folios still pending
    verdict = np.full(n, -1, dtype=np.int8)
    if len(pid):
        look = ops.rmap_look(sim, lruvec, sc)
        if look is None:
            young, vm_exec = folio_referenced(sim, pid)
        else:
            young, vm_exec = folio_referenced_lookaround(sim, pid, look)
        v = np.asarray(ops.references(sim, lruvec, pid, young, vm_exec, sc), dtype=np.int8)
        sim.check_verdicts(v, len(pid))
        _scatter_pending(out, v, verdict)

    # 8. demotion (do_demote_pass): a folio going (RECLAIM / RECLAIM_CLEAN) migrates to a lower
    # tier's node first; those no node had room for go on below (the retry without demotion; a
    # proactive reclaim keeps them instead)
    nr_demoted = 0
    if demote:
        going = np.flatnonzero((out == _PENDING) & (verdict >= FOLIOREF_RECLAIM))
        if len(going):
            nr_demoted = demote_folio_list(sim, lruvec, ids[going], sc)
            out[going[:nr_demoted]] = _DEMOTED
            if sc.proactive:
                out[going[nr_demoted:]] = _KEEP

    # steps 9-16 (compiled, as on every path: shrink_folio_list_tail): swap slots,
    # unmap, dirty folios, their counts, the outcome
    ftab, ptab, _, swtab, _ = tables(sim, lruvec)
    nodev = node_scalars(node)
    sv, wb = reclaim_scalars(sim, node)
    kc = np.zeros(len(KSWAPD_COUNTS), dtype=np.int64)
    freed, res.keep_ids, res.keep_active, nact, res.nr_pageout = shrink_folio_list_tail(
        ids, out, verdict, fl, ftab, ptab, swtab, sc.kswapd, sc.may_writepage, nodev, sv, wb, census, kc)
    set_node_scalars(node, nodev)
    set_reclaim_scalars(sim, sv, wb)
    flush_counts(sim, lruvec, kc)
    # 15/16. remove from page cache / swap cache with a shadow entry, free
    if len(freed):
        remove_mapping(sim, lruvec, ops, freed, sc)
    res.nr_reclaimed = len(freed) + nr_demoted  # demoted folios count as reclaimed
    res.nr_activate = int(nact)
    return res


@noref
def swap_after_pageout(ids, out, flags, fmemcg, swap_memcg, swap_usage, swap_max, mparent, swap_type, sw, taken,
                       used, total, free):
    """Swap after shrink_folio_list's pageouts (_shrink_pageout; called by shrink_folio_list_tail
    for every path): `taken` (the slots add_to_swap took, the node pages zram's pool grew by)
    and the slots activate_locked gives back (_activate_free_swap). Returns (slots used, free
    pages)."""
    got, grow = taken
    after = used + got
    freed, shrink = _activate_free_swap(ids, out, flags, fmemcg, swap_memcg, swap_usage, swap_max, mparent, swap_type,
                                        sw, after, total)
    return after - freed, free - grow - shrink


@noref
def count_pageout(census, s, wb, kc):
    """shrink_folio_list's counts after its pageouts (`census`: _shrink_census's and
    _shrink_pageout's): immediate reclaims; file pages written (asynchronously: from
    NR_FILE_DIRTY, `s`, to the flusher's pages under writeback, `wb`) and swap pages written;
    pgpgout and nr_vmscan_write. Returns the pages paged out."""
    file_writes, swap_writes = census[6], census[7]
    nr_pageout = file_writes + swap_writes
    kc[K_IMMEDIATE] += census[5]
    s[NR_FILE_DIRTY] -= file_writes
    wb[WB_WRITEBACK] += file_writes
    kc[K_FILE_WRITES] += file_writes
    kc[K_PSWPOUT] += swap_writes
    kc[K_SWAP_OUTS] += swap_writes
    kc[K_PGPGOUT] += 4 * nr_pageout
    kc[K_VMSCAN_WRITE] += nr_pageout
    return nr_pageout


@njit(cache=True)
def shrink_folio_list_tail(ids, out, verdict, fl, ftab, ptab, swtab, kswapd, may_writepage, nodev, s, wb, census, kc):
    """shrink_folio_list_tail_into. Returns (freed, keep, keep_active, activated, pages paged
    out)."""
    n = len(ids)
    freed = np.empty(n, dtype=np.int64)
    keep = np.empty(n, dtype=np.int64)
    keep_active = np.empty(n, dtype=np.bool_)
    nfree, nkeep, nact, nr_pageout = shrink_folio_list_tail_into(ids, out, verdict, fl, ftab, ptab, swtab, kswapd,
                                                                 may_writepage, nodev, s, wb, census, kc, freed, keep,
                                                                 keep_active)
    return freed[:nfree], keep[:nkeep], keep_active[:nkeep], nact, nr_pageout


@noref
def shrink_folio_list_tail_into(ids, out, verdict, fl, ftab, ptab, swtab, kswapd, may_writepage, nodev, s, wb, census,
                                kc, freed, keep, keep_active):
    """shrink_folio_list from its pageouts to its outcome, once for every caller (the Python
    path shrink_folio_list, core.kswapd._shrink_inactive, a policy's compiled eviction), each
    of which has run _shrink_census and put the references verdicts in `verdict`: steps 9-12
    (_shrink_pageout), the swap slots after them (swap_after_pageout), their counts
    (count_pageout), the outcome (_shrink_finish_into, into `freed`, `keep`, `keep_active`)
    and its activations (PGACTIVATE). `fl`: the folios' flags at the start; `ftab`, `ptab`,
    `swtab`: as tables(); `nodev`, `s`, `wb`, `kc`: as kswapd_balance's. Returns (folios freed,
    kept, activated, pages paged out)."""
    flags, ftype, pte_head, fmemcg, fswap_memcg = ftab[2], ftab[3], ftab[4], ftab[9], ftab[10]
    swap_usage, swap_max, mparent, swap_events, swap_type, sw = swtab
    taken = _shrink_pageout(ids, flags, ftype, pte_head, ptab[0], ptab[1], ptab[3], verdict, kswapd, may_writepage,
                            nodev[N_DIRTY] != 0, out, census, fmemcg, fswap_memcg, swap_usage, swap_max, mparent,
                            swap_events, swap_type, sw)
    s[SWAP_USED], nodev[N_FREE] = swap_after_pageout(ids, out, flags, fmemcg, fswap_memcg, swap_usage, swap_max, mparent,
                                                     swap_type, sw, taken, s[SWAP_USED], s[SWAP_TOTAL], nodev[N_FREE])
    nr_pageout = count_pageout(census, s, wb, kc)
    nfree, nkeep, nact = _shrink_finish_into(ids, out, fl, flags, freed, keep, keep_active)
    kc[K_PGACTIVATE] += nact
    return nfree, nkeep, nact, nr_pageout


@noref
def _activate_free_swap(ids, out, flags, fmemcg, swap_memcg, swap_usage, swap_max, mparent, swap_type, sw, swap_used,
                        swap_total):
    """shrink_folio_list's activate_locked: an activated folio in the swap cache gives its slot
    up (folio_free_swap) when mem_cgroup_swap_full or it is mlocked. Returns the slots freed and
    the node pages zram's pool grew by (negative or 0)."""
    freed = 0
    grow = 0
    for i in range(len(ids)):
        g = ids[i]
        fl = flags[g]
        if out[i] != _ACTIVATE or (fl & PG_swapcache) == 0:
            continue
        if (fl & PG_mlocked) != 0 or mem_cgroup_swap_full(fmemcg[g], swap_used - freed, swap_total, swap_usage,
                                                          swap_max, mparent):
            flags[g] = fl & ~PG_swapcache
            grow += swap_slot_free(g, swap_memcg, swap_usage, mparent, swap_type, sw)
            freed += 1
    return freed, grow


@noref
def _shrink_finish_into(ids, out, fl, flags, freed, keep, keep_active):
    """The end of shrink_folio_list over the outcomes `out`: the folios to free (in order, into
    `freed`), the survivors (into `keep`) with whether each is activated (`keep_active`);
    activated folios get PG_active unless mlocked (`fl`: their flags at the start). Returns
    (folios freed, kept, activated)."""
    a = b = nact = 0
    for i in range(len(ids)):
        if out[i] == _PENDING:
            freed[a] = ids[i]
            a += 1
            continue
        if out[i] == _DEMOTED:  # on another node's list already
            continue
        act = out[i] == _ACTIVATE
        keep[b] = ids[i]
        keep_active[b] = act
        b += 1
        if act:
            nact += 1
            if not fl[i] & PG_mlocked:
                flags[ids[i]] |= PG_active
    return a, b, nact


_EVICT_CLEAR = ~np.uint16(
    PG_resident | PG_active | PG_referenced | PG_workingset | PG_dirty | PG_reclaim | PG_swapcache | PG_writeback
)


def remove_mapping(sim, lruvec, ops, ids: np.ndarray, sc: ScanControl | None = None) -> None:
    """__remove_mapping + free, for folios of `lruvec` leaving memory in this order: each leaves
    a shadow entry (the policy's eviction token, the workingset bit, the eviction memcg) in its
    page-cache or swap-cache slot, loses its folio flags, and its page goes back to the free
    pool. The token is taken on the policy's eviction lruvec (workingset_eviction: the reclaim
    target's; lru_gen_eviction: the folio's own)."""
    f = sim.folios
    elv = ops.eviction_lruvec(sim, lruvec, sc) if sc is not None else lruvec
    tokens = np.asarray(ops.eviction_token(sim, elv, ids), dtype=np.int64)
    _leave_shadows(ids, tokens, elv.memcg.id, f.flags, f.shadow, f.shadow_ws, f.shadow_memcg, f.ever)
    sim.free_folios(lruvec, ids)


@noref
def _leave_shadows(ids, tokens, memcg_id, flags, shadow, shadow_ws, shadow_memcg, ever):
    """The shadow entry each evicted folio leaves (token, workingset bit, eviction memcg) and
    the folio flags it loses."""
    for i in range(len(ids)):
        if i + PREFETCH_AHEAD < len(ids):
            h = ids[i + PREFETCH_AHEAD]
            prefetch(shadow, h)
            prefetch(shadow_ws, h)
            prefetch(shadow_memcg, h)
            prefetch(ever, h)
        g = ids[i]
        fl = flags[g]
        shadow[g] = tokens[i]
        shadow_ws[g] = (fl & PG_workingset) != 0
        shadow_memcg[g] = memcg_id
        flags[g] = fl & _EVICT_CLEAR
        ever[g] = True


def _shrink_clean_unmapped(sim, lruvec, ids, fl, sc: ScanControl, ops) -> FolioListResult:
    """shrink_folio_list for a batch of clean, never-mapped file folios: only the references
    verdict decides (RECLAIM and RECLAIM_CLEAN both free a clean folio). Same result as the
    general path, with a fraction of the array passes."""
    f = sim.folios
    n = len(ids)
    sc.nr_scanned += n
    zeros = np.zeros(n, dtype=np.int32)
    v = np.asarray(ops.references(sim, lruvec, ids, zeros, zeros.astype(bool), sc), dtype=np.int8)
    sim.check_verdicts(v, n)
    free = v >= FOLIOREF_RECLAIM
    res = FolioListResult()
    res.nr_dirty = res.nr_unqueued_dirty = res.nr_congested = 0
    res.nr_immediate = res.nr_writeback = res.nr_pageout = 0
    freed = ids[free]
    if len(freed):
        remove_mapping(sim, lruvec, ops, freed, sc)
    res.nr_reclaimed = len(freed)
    if len(freed) == n:
        res.nr_activate = 0
        res.keep_ids = ids[:0]
        res.keep_active = free[:0]
        return res
    keep_mask = ~free
    act = v == FOLIOREF_ACTIVATE
    nact = int(act.sum())
    res.nr_activate = nact
    if nact:
        f.flags[ids[act]] |= PG_active
        sim.vm["pgactivate"] += nact
    res.keep_ids = ids[keep_mask]
    res.keep_active = act[keep_mask]
    return res


# ------------------------------------------------------------------------------------------------
# node level


def shrink_node(sim, node, sc: ScanControl, ops) -> None:
    """shrink_node: one reclaim pass over a node; the policy may replace the pass (MGLRU's
    lru_gen_shrink_node for root reclaim)."""
    sc.nr = ReclaimStat()
    ops.shrink_node(sim, node, sc)


def effective_protection(usage: int, parent_usage: int, setting: int, parent_eff: int, siblings: int,
                         recursive: bool) -> int:
    """effective_protection (mm/page_counter.c): a memcg's share of its parent's effective
    protection. Its claim is min(usage, setting); when the siblings' claims (`siblings`, the
    parent's children_min_usage / children_low_usage) overcommit the parent's effective
    protection, each gets a proportional share; with memory_recursiveprot, the protection the
    children leave unclaimed is shared in proportion to their unprotected usage."""
    protected = min(usage, setting)
    if siblings > parent_eff:
        return protected * parent_eff // siblings
    ep = protected
    if recursive and parent_eff > siblings and parent_usage > siblings and usage > protected:
        ep += (parent_eff - siblings) * (usage - protected) // (parent_usage - siblings)
    return ep


def effective_prot(target, memcg, which: str, recursive: bool = False) -> int:
    """memory.emin (`which` "min") or memory.elow ("low") of `memcg` for a reclaim of `target`
    (page_counter_calculate_protection, top-down): a child of the target keeps its own setting;
    deeper down, effective_protection of its parent's. The target and the root are unprotected
    (mem_cgroup_protection)."""
    if memcg is target or memcg.parent is None:
        return 0
    parent = memcg.parent
    if parent is target:
        return getattr(memcg, which)
    parent_eff = effective_prot(target, parent, which, recursive)
    siblings = sum(min(c.usage, getattr(c, which)) for c in parent.children)
    return effective_protection(memcg.usage, parent.usage, getattr(memcg, which), parent_eff, siblings, recursive)


def _recursive(sim) -> bool:
    return sim.config.memory_recursiveprot


def mem_cgroup_below_min(target, memcg, recursive: bool = False) -> bool:
    """mem_cgroup_below_min: hard protection; shrink_node_memcgs skips such a memcg. (A memcg
    with emin 0 is never treated as protected: the kernel also skips it when it is empty, which
    changes nothing.)"""
    if memcg is target or memcg.parent is None or not (memcg.min or recursive):
        return False
    emin = effective_prot(target, memcg, "min", recursive)
    return emin > 0 and emin >= memcg.usage


def mem_cgroup_below_low(target, memcg, recursive: bool = False) -> bool:
    """mem_cgroup_below_low: elow >= usage, for any memcg but the target and the root: an empty
    memcg is below low too, and skipping it sets memcg_low_skipped (which only matters when a
    reclaim ends with nothing: do_try_to_free_pages then retries with memcg_low_reclaim)."""
    if memcg is target or memcg.parent is None:
        return False
    return effective_prot(target, memcg, "low", recursive) >= memcg.usage


def mem_cgroup_iter(sim, node, sc: ScanControl):
    """The memcgs shrink_node_memcgs visits, pre-order under the target (mem_cgroup_iter).
    kswapd and sc.memcg_full_walk walk the whole subtree; other reclaimers share a cursor per
    (target, node) - the memcg visited last - continue after it to the end of the subtree (from
    the start when the cursor is at the end) and stop once nr_reclaimed >= nr_to_reclaim (the
    caller's partial-walk bail-out), leaving the cursor on the last memcg visited."""
    target = sc.target_memcg or sim.root_memcg
    order = list(target.subtree())
    if sc.kswapd or sc.memcg_full_walk:
        yield from order
        return
    cursors = target.reclaim_iter
    pos = cursors.get(node.nid)
    i = order.index(pos) + 1 if pos in order else 0
    if i >= len(order):  # a new walk that would see nothing restarts from the beginning
        i = 0
    for m in order[i:]:
        cursors[node.nid] = m
        yield m
    cursors[node.nid] = None  # the walk passed the end: the next one starts over


def shrink_node_lruvecs(sim, node, sc: ScanControl, ops) -> None:
    """The classic body of shrink_node: prepare_scan_control on the target's lruvec,
    shrink_node_memcgs (shrink_lruvec on each memcg's lruvec, mem_cgroup_iter order; a partial
    walk stops at the reclaim goal), then the node's writeback/dirty flags."""
    target = sc.target_memcg or sim.root_memcg
    lruvec = target.lruvecs[node.nid]
    ops.prepare(sim, lruvec, sc)
    before = sc.nr_reclaimed
    if not target.children:  # one memcg under the target: every walk is that memcg
        ops.shrink_lruvec(sim, lruvec, sc)
    else:
        partial = not (sc.kswapd or sc.memcg_full_walk)
        rec = _recursive(sim)
        for m in mem_cgroup_iter(sim, node, sc):
            if mem_cgroup_below_min(target, m, rec):  # hard protection: skipped
                continue
            if mem_cgroup_below_low(target, m, rec):  # soft protection while others have memory
                if not sc.memcg_low_reclaim:
                    sc.memcg_low_skipped = True
                    continue
                m.events["low"] += 1  # memcg_memory_event(MEMCG_LOW)
            ops.shrink_lruvec(sim, m.lruvecs[node.nid], sc)
            if partial and sc.nr_reclaimed >= sc.nr_to_reclaim:
                break  # mem_cgroup_iter_break: the cursor stays here
    reclaimed = sc.nr_reclaimed - before
    st = sc.nr
    if sc.kswapd:
        writeback, dirty = node_flags(st.writeback, st.taken, st.unqueued_dirty, st.file_taken)
        node.writeback_flag |= writeback
        node.dirty_flag |= dirty
    if reclaimed:
        node.kswapd_failures = 0


@njit(cache=True)
def node_flags(writeback, taken, unqueued_dirty, file_taken):
    """shrink_node's node flags after a kswapd pass: PGDAT_WRITEBACK when every folio taken was
    under writeback, PGDAT_DIRTY when every file folio taken was dirty and unqueued (also when no
    file folio was taken). Returns (set writeback, set dirty)."""
    return writeback != 0 and writeback == taken, unqueued_dirty == file_taken


@njit(cache=True)
def kswapd_lower_priority(nr_scanned, nr_to_reclaim, reclaimed):
    """balance_pgdat: the next pass scans harder (priority - 1) when kswapd_shrink_node scanned
    less than its goal or reclaimed nothing."""
    return nr_scanned < nr_to_reclaim or reclaimed == 0


@njit(cache=True)
def balance_priority(priority, nr_scanned, nr_to_reclaim, reclaimed):
    """balance_pgdat's step after a pass (kswapd_lower_priority): the next pass's priority; the
    loop ends below 1."""
    return priority - 1 if kswapd_lower_priority(nr_scanned, nr_to_reclaim, reclaimed) else priority


def node_balanced(node) -> bool:
    """pgdat_balanced for order 0: free above the high watermark."""
    return node.free > node.wmark.high


def balance_pgdat(sim, node, ops, resume: tuple[int, int] | None = None) -> int:
    """kswapd's balance_pgdat: priority 12 down to 1 until the node is balanced. `resume`:
    (priority, pages reclaimed) of a run a compiled driver began and stopped between two passes
    (kswapd.WAKE_PART; it counted the run)."""
    if resume is None:
        sim.vm["pageoutrun"] += 1
        node.vm["pageoutrun"] += 1
    sc = _balance_loop(sim, node, ops, resume)
    _balance_end(sim, node, ops, sc)
    return sc.nr_reclaimed


def _balance_loop(sim, node, ops, resume: tuple[int, int] | None = None) -> ScanControl:
    sc = ScanControl(nr_to_reclaim=0, kswapd=True, may_writepage=True, may_swap=True)
    sc.priority = DEF_PRIORITY
    if resume is not None:  # the passes before set nr_to_reclaim (kswapd_shrink_node)
        sc.priority, sc.nr_reclaimed = resume
        sc.nr_to_reclaim = max(node.wmark.high, SWAP_CLUSTER_MAX)
    while True:
        if node_balanced(node):
            break
        oom = ops.kswapd_age_node(sim, node, sc)
        if oom:
            sim.oom_kill(oom)
        sc.nr_scanned = 0
        before = sc.nr_reclaimed
        # kswapd_shrink_node
        sc.nr_to_reclaim = max(node.wmark.high, SWAP_CLUSTER_MAX)
        shrink_node(sim, node, sc, ops)
        sc.priority = int(balance_priority(sc.priority, sc.nr_scanned, sc.nr_to_reclaim, sc.nr_reclaimed - before))
        if sc.priority < 1:
            break
    return sc


def _balance_end(sim, node, ops, sc: ScanControl) -> None:
    nodev = node_scalars(node)
    kswapd_sleep_flags(nodev, sc.nr_reclaimed)
    set_node_scalars(node, nodev)
    ops.reclaim_done(sim, node, sc)


def try_to_free_pages(sim, zonelist, ops, target_memcg=None) -> int:
    """Direct reclaim: do_try_to_free_pages with nr_to_reclaim = SWAP_CLUSTER_MAX over the
    allocating task's zonelist (a node, or its nodes in order)."""
    sim.vm["allocstall_normal"] += 1
    sc = ScanControl(nr_to_reclaim=SWAP_CLUSTER_MAX, target_memcg=target_memcg)
    return do_try_to_free_pages(sim, zonelist, ops, sc)


def try_to_free_mem_cgroup_pages(sim, zonelist, memcg, nr_pages: int, ops, proactive: bool = False,
                                 swappiness: int | None = None) -> int:
    """memcg reclaim (try_charge_memcg, reclaim_high, memory.reclaim: try_to_free_mem_cgroup_pages):
    nr_to_reclaim = max(nr_pages, SWAP_CLUSTER_MAX), target_mem_cgroup = memcg, may_writepage,
    may_unmap, may_swap; `proactive` and a `swappiness` override for memory.reclaim; no kswapd
    wakeup and no allocstall (do_try_to_free_pages counts it only for global reclaim)."""
    sc = ScanControl(nr_to_reclaim=max(nr_pages, SWAP_CLUSTER_MAX), target_memcg=memcg,
                     may_writepage=True, may_unmap=True, may_swap=True, proactive=proactive, swappiness=swappiness)
    return do_try_to_free_pages(sim, zonelist, ops, sc)


def memory_reclaim(sim, zonelist, memcg, nr_to_reclaim: int, ops, swappiness: int | None = None) -> tuple[int, bool]:
    """A write to memory.reclaim (user_proactive_reclaim): proactive memcg reclaim in batches of
    a quarter of what is left (reclaim enforces SWAP_CLUSTER_MAX), until nr_to_reclaim pages are
    reclaimed; a batch that reclaims nothing uses up one of MAX_RECLAIM_RETRIES, and when none
    are left the write fails (-EAGAIN). Returns (pages reclaimed, whether the write succeeded)."""
    retries = MAX_RECLAIM_RETRIES
    reclaimed = 0
    while reclaimed < nr_to_reclaim:
        got = try_to_free_mem_cgroup_pages(sim, zonelist, memcg, (nr_to_reclaim - reclaimed) // 4, ops,
                                           proactive=True, swappiness=swappiness)
        if not got:
            if not retries:
                return reclaimed, False
            retries -= 1
        reclaimed += got
    return reclaimed, True


def shrink_zones(sim, zonelist: list, sc: ScanControl, ops, reclaimed: dict) -> None:
    """shrink_zones: shrink_node on each node of the zonelist in order (each node once, no
    stop between nodes); `reclaimed[nid]` adds what each node gave."""
    for node in zonelist:
        before = sc.nr_reclaimed
        shrink_node(sim, node, sc, ops)
        reclaimed[node.nid] = reclaimed.get(node.nid, 0) + sc.nr_reclaimed - before


def do_try_to_free_pages(sim, zonelist, ops, sc: ScanControl) -> int:
    """do_try_to_free_pages over a zonelist (a node, or nodes in order; shrink_zones): priority
    12 down to 0 until nr_to_reclaim; if nothing was
    reclaimed, retry with a full memcg walk (when the walk could be partial: more than one
    memcg under the target), then with force_deactivate when active lists were skipped, then
    into memory.low (memcg_low_reclaim) when protection made the walk skip memcgs."""
    zonelist = zonelist if isinstance(zonelist, list) else [zonelist]
    several = bool((sc.target_memcg or sim.root_memcg).children)
    reclaimed: dict[int, int] = {}
    while True:
        sc.priority = DEF_PRIORITY
        while sc.priority >= 0:  # the policy may change sc.priority (set_initial_priority)
            sc.nr_scanned = 0
            shrink_zones(sim, zonelist, sc, ops, reclaimed)
            if sc.nr_reclaimed >= sc.nr_to_reclaim:
                break
            if sc.priority < DEF_PRIORITY - 2:
                sc.may_writepage = True
            sc.priority -= 1
        if sc.nr_reclaimed:
            break
        if several and not sc.memcg_full_walk:
            sc.memcg_full_walk = True
            continue
        if sc.skipped_deactivate and not sc.force_deactivate:
            sc.force_deactivate = True
            sc.skipped_deactivate = False
            continue
        if sc.memcg_low_skipped:  # untapped cgroup reserves: retry into memory.low
            sc.force_deactivate = False
            sc.memcg_low_reclaim = True
            sc.memcg_low_skipped = False
            continue
        break
    for node in zonelist:
        if reclaimed.get(node.nid):  # shrink_node: reclaimable -> kswapd_failures = 0
            node.kswapd_failures = 0
        ops.reclaim_done(sim, node, sc)
    return sc.nr_reclaimed


__all__ = [
    "balance_pgdat", "try_to_free_pages", "try_to_free_mem_cgroup_pages", "do_try_to_free_pages", "mem_cgroup_iter", "shrink_node", "shrink_node_lruvecs", "shrink_lruvec_lists",
    "shrink_inactive_list", "shrink_folio_list", "get_scan_count", "lru_note_cost",
    "inactive_is_low", "can_reclaim_anon", "node_balanced", "MAX_RECLAIM_RETRIES",
]
