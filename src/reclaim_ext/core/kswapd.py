"""kswapd's run compiled: balance_pgdat, shrink_node, shrink_lruvec, shrink_inactive_list,
shrink_active_list and shrink_folio_list in one compiled call, for a node whose only lruvec has
two classes per type and whose policy's hooks are the two-list rules of mm/vmscan.c (the
classic policy without mechanisms: ReclaimOps.compiled_refaults is not None). Over page cache that is clean and
never mapped, a dry run on scalars decides the run and the folio work is done in bulk
(bulk_kswapd_wake); kswapd_wake tries that first.

It is the per-batch path of core.vmscan with the policy's hooks written in: it runs the same
compiled rules (deactivate_flags, scan_balance/scan_targets, budget_next, _shrink_census_into,
referenced_into, folio_check_references, _shrink_pageout, _shrink_finish_into, _leave_shadows,
note_cost, shrink_active_list, node_flags, balance_priority, kswapd_sleep_flags) in the
same order, so its result is the per-batch result (tests/test_engine_drivers.py compares them).
What Python kept per batch (ScanControl, the counters' dicts) is scalars and a counter array here.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..jit import noref

from ..machine.folio import LRU_ANON, LRU_FILE, PG_referenced
from .access import FREE, NR_FILE_DIRTY, STOP_WMARK, SWAP_TOTAL, SWAP_USED
from .counts import (  # the policies import these from here too
    KSWAPD_COUNTS, NODE_EVENTS, K_ATOMIC_UPDATES, K_BULK, K_FILE_WRITES, K_IMMEDIATE, K_LOCK_OPS, K_PAGEOUTRUN,
    K_PGACTIVATE, K_PGDEACTIVATE, K_PGFREE, K_PGPGOUT, K_PGREFILL, K_PGROTATED, K_PGSCAN, K_PGSCAN_ANON, K_PGSCAN_FILE,
    K_PGSTEAL, K_PGSTEAL_ANON, K_PGSTEAL_FILE, K_PSWPOUT, K_PTES_CHECKED, K_PTES_WALKED, K_RECLAIMS, K_RMAP_WALKS,
    K_SCANNED, K_SWAP_OUTS, K_VMSCAN_WRITE, K_WAKEUPS, WB_REQUESTED, WB_WRITEBACK, flush_counts, reclaim_scalars,
    set_reclaim_scalars, tables,
)
from .lru import add_at, add_tail, compact_slots, folio_deactivate, isolate_tail_into, rotate_dest
from .ops import (
    DEF_PRIORITY, FOLIOREF_ACTIVATE, FOLIOREF_KEEP, FOLIOREF_RECLAIM, FOLIOREF_RECLAIM_CLEAN, MAX_RECLAIM_RETRIES,
    SWAP_CLUSTER_MAX, ScanControl,
)
from .rmap import referenced_into
from .vmscan import (
    N_DIRTY, N_FAILURES, N_FREE, N_HIGH, N_LOW, N_MIN, N_WRITEBACK, _clean_unmapped_file, _leave_shadows,
    balance_pgdat, bulk_isolate_deactivate, end_writeback, mem_cgroup_swappiness, node_scalars, note_cost_batches,
    set_node_scalars, writeback_due, _scatter_pending, _shrink_census_into, budget_next, count_pageout, shrink_folio_list_tail,
    shrink_folio_list_tail_into,
    deactivate_flags, file_is_tiny, inactive_low, balance_priority,
    kswapd_sleep_flags, node_flags, note_cost, scan_balance, scan_targets,
)
from .workingset import age_nonresident

INACTIVE, ACTIVE = 0, 1

# what a compiled driver's kswapd step did (driver_kswapd), and bulk_kswapd_wake
# WAKE_PART: the run stopped between two balance passes; the engine finishes it (balance_pgdat's
# resume, from the priority and pages reclaimed the driver left in its `resume` argument)
WAKE_DONE, WAKE_NO, WAKE_ROOM, WAKE_RAN, WAKE_DIVERGED, WAKE_PART = range(6)
DRY_BATCHES = 1 << 16  # kswapd_dry_run's batch buffer
# scan_control.nr (ReclaimStat) as an array
R_DIRTY, R_UNQUEUED, R_CONGESTED, R_WRITEBACK, R_IMMEDIATE, R_FILE_TAKEN, R_TAKEN = range(7)


@njit(cache=True)
def folio_check_references(ids, young, vm_exec, flags, ftype):
    """folio_check_references for each isolated folio: PG_referenced is tested and cleared; a
    folio mapped young (young = mappings found young by the rmap walk) is hot when it was
    referenced before, is young through two mappings, or is an executable file folio: ACTIVATE;
    otherwise it gets PG_referenced and stays (KEEP). An unmapped-young folio is reclaimed
    (RECLAIM_CLEAN for a referenced file folio: do not write it back just for this)."""
    v = np.empty(len(ids), dtype=np.int8)
    check_references_into(ids, young, vm_exec, flags, ftype, v)
    return v


@noref
def check_references_into(ids, young, vm_exec, flags, ftype, v):
    """folio_check_references with the verdicts written into `v`."""
    for i in range(len(ids)):
        g = ids[i]
        fl = flags[g]
        ref = (fl & PG_referenced) != 0
        file = ftype[g] == LRU_FILE
        if young[i] > 0:
            flags[g] = fl | PG_referenced
            v[i] = FOLIOREF_ACTIVATE if ref or young[i] > 1 or (vm_exec[i] and file) else FOLIOREF_KEEP
        else:
            flags[g] = fl & ~PG_referenced
            v[i] = FOLIOREF_RECLAIM_CLEAN if file and ref else FOLIOREF_RECLAIM


@noref
def folio_referenced_into(ids, pte_head, ptab, kc, young, vm_exec, none):
    """folio_referenced on the PTE table `ptab` (present, young, exec, next): rmap.referenced_into,
    the young counts and VM_EXEC flags written into `young` and `vm_exec` (`none`: an empty int64
    array), its cost (folios walked, PTEs checked) counted into `kc` as rmap.count_rmap_walks
    counts it."""
    walked, checked = referenced_into(ids, pte_head, ptab[0], ptab[1], ptab[2], ptab[3], young, vm_exec, none)
    if walked:
        kc[K_RMAP_WALKS] += walked
        kc[K_PTES_CHECKED] += checked


@noref
def free_evicted(freed, row, nonres, parent, flags, fshadow, fshadow_ws, fshadow_memcg, fever, usage, nodev, tokens,
                 kc):
    """remove_mapping and free for folios reclaimed from the lruvec in `row`, in order: each
    leaves a shadow stamped with the lruvec's non-resident age, which each eviction advances
    (workingset_eviction on the reclaim target: the only lruvec here), then the pages go back
    to the free pages, uncharged up the memcg tree (`usage`), counted as pgfree. `tokens`: a
    buffer of len(freed)."""
    n = len(freed)
    for i in range(n):
        tokens[i] = nonres[row] + i
    age_nonresident(nonres, parent, row, n)
    evict_free(freed, tokens[:n], row, flags, fshadow, fshadow_ws, fshadow_memcg, fever, usage, parent, nodev, kc)


@noref
def evict_free(freed, tokens, row, flags, fshadow, fshadow_ws, fshadow_memcg, fever, usage, parent, nodev, kc):
    """__remove_mapping and free for folios reclaimed from the lruvec in `row`, in order, with
    their eviction tokens: each leaves its shadow, then the pages go back to the free pages,
    uncharged up the memcg tree (`usage`), counted as pgfree (engine.Simulator.free_folios)."""
    n = len(freed)
    _leave_shadows(freed, tokens, row, flags, fshadow, fshadow_ws, fshadow_memcg, fever)
    nodev[N_FREE] += n
    m = row
    while m >= 0:
        usage[m] -= n
        m = parent[m]
    kc[K_PGFREE] += n


@njit(cache=True)
def scratch():
    """The buffers of one reclaim batch (at most SWAP_CLUSTER_MAX folios), reused batch after
    batch: folios taken, their flags, the census, verdicts, shadow tokens, rotations, zero
    young counts and exec flags, an empty walk_exec (no page-table walk); then for
    shrink_folio_list: the outcomes, the pending folios, their young counts and exec flags, the
    folios freed and kept, an empty id array, the kept folios' activations and the pending
    folios' verdicts."""
    m = SWAP_CLUSTER_MAX
    return (np.empty(m, dtype=np.int64), np.empty(m, dtype=np.uint16), np.zeros(8, dtype=np.int64),
            np.empty(m, dtype=np.int8), np.empty(m, dtype=np.int64), np.zeros(m, dtype=np.bool_),
            np.zeros(m, dtype=np.int32), np.zeros(m, dtype=np.bool_), np.zeros(0, dtype=np.bool_),
            np.empty(m, dtype=np.int8), np.empty(m, dtype=np.int64), np.empty(m, dtype=np.int32),
            np.empty(m, dtype=np.bool_), np.empty(m, dtype=np.int64), np.empty(m, dtype=np.int64),
            np.zeros(0, dtype=np.int64), np.empty(m, dtype=np.bool_), np.empty(m, dtype=np.int8))


@noref
def list_fits(ids, lohi, lru, need):
    """Whether list `lru` (of the lists' `ids`, windows `lohi`) has room for `need` slots past
    its head."""
    return lohi[2 * lru + 1] + need <= len(ids[lru])


@njit(cache=True)
def list_room(ids, stamps, lohi, lru, need, fstamp):
    """List `lru`'s arrays (of the lists' `ids`, `stamps`, windows `lohi`) with room for `need`
    slots past its head: compacted, as FolioList._compact, when they lack it (lohi updated)."""
    if list_fits(ids, lohi, lru, need):
        return ids[lru], stamps[lru]
    nids, nst, lohi[2 * lru], lohi[2 * lru + 1] = compact_slots(ids[lru], stamps[lru], lohi[2 * lru],
                                                                lohi[2 * lru + 1], fstamp, need, 0)
    return nids, nst


@noref
def lists_fit(ids, lohi, need):
    """Whether each of the lists (`ids`, windows `lohi`) has room for `need` slots past its head
    (list_room then compacts none)."""
    for lru in range(len(ids)):
        if not list_fits(ids, lohi, lru, need):
            return False
    return True


@njit(cache=True)
def _room(ids, stamps, lohi, lru, need, fstamp):
    """The four lists' arrays, list `lru`'s with room for `need` slots past its head (list_room)."""
    if list_fits(ids, lohi, lru, need):
        return ids, stamps
    nids, nst = list_room(ids, stamps, lohi, lru, need, fstamp)
    return _with(ids, lru, nids), _with(stamps, lru, nst)


@njit(cache=True)
def _with(t, k, a):
    """The four lists' arrays `t` with list k's replaced by `a`."""
    if k == 0:
        return (a, t[1], t[2], t[3])
    if k == 1:
        return (t[0], a, t[2], t[3])
    if k == 2:
        return (t[0], t[1], a, t[3])
    return (t[0], t[1], t[2], a)


@noref
def type_fits(ids, lohi, t, need):
    """Whether type t's two lists (of the four: `ids`, windows `lohi`) have room for `need`
    slots past their heads (type_room then compacts neither)."""
    return list_fits(ids, lohi, 2 * t, need) and list_fits(ids, lohi, 2 * t + 1, need)


@njit(cache=True)
def type_room(ids, stamps, lohi, t, need, fstamp):
    """The four lists' arrays, type t's two with room for `need` slots past their heads
    (list_room)."""
    ids, stamps = _room(ids, stamps, lohi, 2 * t, need, fstamp)
    return _room(ids, stamps, lohi, 2 * t + 1, need, fstamp)


@njit(cache=True)
def shrink_active_list(ids, stamps, lohi, t, n, walk_exec, ftab, ptab, lvt, row, clock, scr, kc):
    """_shrink_active with the room made first. Returns the lists' arrays (ids, stamps)."""
    if not type_fits(ids, lohi, t, n):
        ids, stamps = type_room(ids, stamps, lohi, t, n, ftab[0])
    _shrink_active(ids, stamps, lohi, t, n, walk_exec, ftab, ptab, lvt, row, clock, scr, kc)
    return ids, stamps


@noref
def _shrink_active(ids, stamps, lohi, t, n, walk_exec, ftab, ptab, lvt, row, clock, scr, kc):
    """shrink_active_lists on type t's lists of the four (`ids`, `stamps`, windows `lohi`; both
    with room for n slots past their heads), at most as many folios as the active list holds.
    `scr`: scratch() buffers."""
    a = t * 2 + ACTIVE
    n = min(n, lvt[0][row, a])
    if n <= 0:
        return
    shrink_active_lists(ids[a], stamps[a], ids[a - 1], stamps[a - 1], lohi[2 * a - 2: 2 * a + 2], t, n, walk_exec,
                        (ftab[0], ftab[1], ftab[2], ftab[4]), ptab, lvt, row, clock,
                        (scr[0], scr[5], scr[11], scr[12], scr[15]), kc)


@noref
def shrink_active_lists(aids, astamps, iids, istamps, lh, t, n, walk_exec, ftab, ptab, lvt, row, clock, scr, kc):
    """shrink_active_list over type t's active list (`aids`, `astamps`) and inactive list (`lh`:
    the inactive list's lo and hi, the active list's lo and hi; both have room for n slots past
    their hi): up to n folios isolated from the active tail, each one's references taken
    (folio_referenced; with ptwalk, `walk_exec` not empty, what the last page-table walk found
    instead), only the young executable file folios kept on the active list, in order, the
    others deactivated (PG_active cleared, PG_workingset set) onto the inactive head in order;
    the counters (pgrefill, pgdeactivate, the rmap walk) go to `kc`, the kept folios tick the
    workingset clock and count as rotated in the cost signal. `ftab`: the folios' stamp, list,
    flags and rmap head; `scr`: buffers of at least n slots for the folios taken, their
    rotations, young counts and VM_EXEC flags, and an empty int64 array. Allocates nothing."""
    fstamp, flru, flags, pte_head = ftab
    nr, nonres, anon_cost, file_cost, parent, sub_ptr, sub_idx = lvt
    a = t * 2 + ACTIVE
    file = t == LRU_FILE
    k, lh[2] = isolate_tail_into(aids, astamps, lh[2], lh[3], fstamp, flru, n, scr[0])
    nr[row, a] -= k
    taken = scr[0][:k]
    rotate = scr[1][:k]
    rotate[:] = False
    mapped = False  # a folio never mapped has no rmap to walk
    for i in range(k):
        mapped = mapped or pte_head[taken[i]] >= 0
    if len(walk_exec):
        for i in range(k):
            rotate[i] = walk_exec[taken[i]] and file
            walk_exec[taken[i]] = False
    elif mapped:
        young, vm_exec = scr[2][:k], scr[3][:k]
        folio_referenced_into(taken, pte_head, ptab, kc, young, vm_exec, scr[4])
        for i in range(k):
            rotate[i] = young[i] > 0 and vm_exec[i] and file
    nkeep = 0
    for i in range(k):  # the kept folios first (shrink_active_list puts them back first)
        if rotate[i]:
            add_at(taken[i], a, aids, astamps, lh[3], fstamp, flru, clock)
            lh[3] += 1
            nkeep += 1
    for i in range(k):
        if not rotate[i]:
            folio_deactivate(flags, taken[i])
            add_at(taken[i], a - 1, iids, istamps, lh[1], fstamp, flru, clock)
            lh[1] += 1
    nr[row, a] += nkeep
    nr[row, a - 1] += k - nkeep
    kc[K_PGREFILL] += k
    kc[K_SCANNED] += k
    kc[K_PGDEACTIVATE] += k - nkeep
    if nkeep:
        age_nonresident(nonres, parent, row, nkeep)
        note_cost(nr, anon_cost, file_cost, parent, sub_ptr, sub_idx, row, file, 0, nkeep, 0)


@noref
def _shrink_inactive(ids, stamps, lohi, t, n, ftab, ptab, lvt, usage, swtab, row, nodev, s, wb, rstat, clock, scr, kc):
    """shrink_inactive_list on type t's inactive list with the two-list hooks: isolate from the
    tail, shrink_folio_list (the core's compiled steps, folio_check_references, the shadows of
    workingset_eviction on this lruvec's clock, the freed pages uncharged), move_folios_to_lru,
    the cost signal and the batch's census. A batch of clean, never-mapped file folios takes
    the Python path's shortcut (vmscan._shrink_clean_unmapped): the references verdict alone
    decides, and frees every folio. `scr`: scratch() buffers (n at most SWAP_CLUSTER_MAX); the
    inactive and active lists have room for n slots past their heads (list_room). Allocates
    nothing. Returns (pages reclaimed, pages scanned)."""
    fstamp, flru, flags, ftype, pte_head, fshadow, fshadow_ws, fshadow_memcg, fever = ftab[:9]
    nr, nonres, anon_cost, file_cost, parent, sub_ptr, sub_idx = lvt
    lru = t * 2 + INACTIVE
    kc[K_LOCK_OPS] += 1
    taken = scr[0]
    k, lohi[2 * lru] = isolate_tail_into(ids[lru], stamps[lru], lohi[2 * lru], lohi[2 * lru + 1], fstamp, flru, n, taken)
    if k == 0:
        return 0, 0
    nr[row, lru] -= k
    batch = taken[:k]
    file = t == LRU_FILE
    kc[K_PGSCAN] += k
    kc[K_PGSCAN_FILE if file else K_PGSCAN_ANON] += k
    kc[K_SCANNED] += k
    fl = scr[1][:k]
    for i in range(k):
        fl[i] = flags[batch[i]]
    census = scr[2]
    census[:] = 0
    freed, keep, keep_active = scr[13], scr[14], scr[16]
    if _clean_unmapped_file(batch, fl, ftype, pte_head):  # every verdict RECLAIM or RECLAIM_CLEAN
        check_references_into(batch, scr[6][:k], scr[7][:k], flags, ftype, scr[3][:k])
        freed, nfree, nkeep, nact, nr_pageout = batch, k, 0, 0, 0
    else:  # shrink_folio_list: steps 3-6, the references of the folios still pending, steps 9-12
        out, verdict = scr[9][:k], scr[3][:k]
        out[:] = 0  # _PENDING
        verdict[:] = -1
        npend = _shrink_census_into(batch, flags, ftype, True, nodev[N_WRITEBACK] != 0, out, census, scr[10])
        if npend:
            pid = scr[10][:npend]
            young, vm_exec, v = scr[11][:npend], scr[12][:npend], scr[17][:npend]
            folio_referenced_into(pid, pte_head, ptab, kc, young, vm_exec, scr[15])
            check_references_into(pid, young, vm_exec, flags, ftype, v)
            _scatter_pending(out, v, verdict)
        nfree, nkeep, nact, nr_pageout = shrink_folio_list_tail_into(batch, out, verdict, fl, ftab, ptab, swtab, True,
                                                                     True, nodev, s, wb, census, kc, freed, keep,
                                                                     keep_active)
    if nfree:
        free_evicted(freed[:nfree], row, nonres, parent, flags, fshadow, fshadow_ws, fshadow_memcg, fever, usage,
                     nodev, scr[4], kc)
    # move_folios_to_lru: activated folios to the active head, the others to the inactive head
    kc[K_LOCK_OPS] += 1
    for i in range(nkeep):
        to = lru + 1 if keep_active[i] else lru
        add_at(keep[i], to, ids[to], stamps[to], lohi[2 * to + 1], fstamp, flru, clock)
        lohi[2 * to + 1] += 1
        nr[row, to] += 1
    if nact:
        age_nonresident(nonres, parent, row, nact)
    kc[K_PGSTEAL] += nfree
    kc[K_PGSTEAL_FILE if file else K_PGSTEAL_ANON] += nfree
    note_cost(nr, anon_cost, file_cost, parent, sub_ptr, sub_idx, row, file, nr_pageout, k - nfree, 0)
    # note_folio_list_result
    if census[1] and census[1] == k:
        wb[WB_REQUESTED] = 1  # wakeup_flusher_threads
    rstat[R_DIRTY] += census[0]
    rstat[R_UNQUEUED] += census[1]
    rstat[R_CONGESTED] += census[2]
    rstat[R_IMMEDIATE] += census[3]
    rstat[R_WRITEBACK] += census[4]
    rstat[R_TAKEN] += k
    if file:
        rstat[R_FILE_TAKEN] += k
    return nfree, k


@noref
def kswapd_pass_start(lv, N, refaulted_anon, refaulted_file, may, priority, free, high, can_anon, swp, anon_cost,
                      file_cost, targets, budget, st):
    """The start of one kswapd pass over the lruvec's list sizes `lv` (kswapd_shrink_node):
    prepare_scan_control (deactivate_flags, file_is_tiny), get_scan_count (scan_balance,
    scan_targets into `targets`), and shrink_lruvec's budget loop state (`budget`, `st`; kswapd
    is never proportional from the start). Returns may_deactivate."""
    may, trim = deactivate_flags(lv, N, refaulted_anon, refaulted_file, False, may, priority)
    tiny = file_is_tiny(lv, N, may, priority, free, high)
    balance = scan_balance(True, can_anon, False, swp, priority, tiny, trim)
    scan_targets(lv, N, priority, balance, swp, anon_cost, file_cost, 0, 0, targets)
    for k in range(len(targets)):
        budget[k] = targets[k]
    st[0], st[1], st[2], st[3] = -1, 0, 0, 0
    return may


@njit(cache=True)
def kswapd_balance(ids, stamps, lohi, ftab, ptab, lvt, usage, swtab, row, nodev, s, wb, refaulted_anon, refaulted_file,
                   swp, clock, kc):
    """balance_pgdat for the node's only lruvec (`row`) under the two-list rules: priority 12
    down to 1 until free pages are above the high watermark; each pass kswapd_age_node, then
    kswapd_shrink_node (prepare_scan_control, get_scan_count, shrink_lruvec's budget loop over
    shrink_inactive_list / shrink_active_list, the anon aging at its end, the node flags), then
    the priority decision; at the end the sleep flags. `ids`, `stamps`: the four lists' arrays
    and `lohi` their windows (new arrays are returned where a list needed room); `usage`: the
    memcgs' charges; `s`: run_accesses' scalars (swap, dirty pages); `wb`: the flusher's.
    Returns (pages reclaimed, ids, stamps)."""
    nr = lvt[0]
    N = 2
    L = 2 * N
    priority = DEF_PRIORITY
    may = 0
    reclaimed = 0
    targets = np.zeros(L, dtype=np.int64)
    budget = np.zeros(L, dtype=np.int64)
    st = np.zeros(4, dtype=np.int64)
    rstat = np.zeros(7, dtype=np.int64)
    scr = scratch()
    no_walk = scr[8]  # shrink_active_list reads the rmap
    anon_cost, file_cost = lvt[2], lvt[3]
    while nodev[N_FREE] <= nodev[N_HIGH]:  # pgdat_balanced
        can_anon = s[SWAP_TOTAL] - s[SWAP_USED] > 0
        if can_anon and inactive_low(nr[row], LRU_ANON * N, N):  # kswapd_age_node
            kc[K_LOCK_OPS] += 2
            ids, stamps = shrink_active_list(ids, stamps, lohi, LRU_ANON, SWAP_CLUSTER_MAX, no_walk, ftab, ptab, lvt,
                                             row, clock, scr, kc)
        nr_scanned = 0
        before = reclaimed
        nr_to_reclaim = max(nodev[N_HIGH], SWAP_CLUSTER_MAX)
        rstat[:] = 0
        # shrink_node and shrink_lruvec up to the budget loop
        may = kswapd_pass_start(nr[row], N, refaulted_anon, refaulted_file, may, priority, nodev[N_FREE], nodev[N_HIGH],
                                s[SWAP_TOTAL] - s[SWAP_USED] > 0, swp, anon_cost[row], file_cost[row], targets, budget,
                                st)
        while True:
            lru, n = budget_next(budget, targets, st, N, may, nr_to_reclaim)
            if lru < 0:
                break
            if not type_fits(ids, lohi, lru // N, n):  # room for the folios put back
                ids, stamps = type_room(ids, stamps, lohi, lru // N, n, ftab[0])
            if lru % N:
                kc[K_LOCK_OPS] += 2
                _shrink_active(ids, stamps, lohi, lru // N, n, no_walk, ftab, ptab, lvt, row, clock, scr, kc)
                continue
            got, scanned = _shrink_inactive(ids, stamps, lohi, lru // N, n, ftab, ptab, lvt, usage, swtab, row, nodev, s,
                                            wb, rstat, clock, scr, kc)
            nr_scanned += scanned
            st[1] += got
        reclaimed += st[1]
        can_anon = s[SWAP_TOTAL] - s[SWAP_USED] > 0
        if can_anon and inactive_low(nr[row], LRU_ANON * N, N):  # after_lruvec
            kc[K_LOCK_OPS] += 2
            ids, stamps = shrink_active_list(ids, stamps, lohi, LRU_ANON, SWAP_CLUSTER_MAX, no_walk, ftab, ptab, lvt,
                                             row, clock, scr, kc)
        writeback, dirty = node_flags(rstat[R_WRITEBACK], rstat[R_TAKEN], rstat[R_UNQUEUED], rstat[R_FILE_TAKEN])
        if writeback:
            nodev[N_WRITEBACK] = 1
        if dirty:
            nodev[N_DIRTY] = 1
        if reclaimed != before:
            nodev[N_FAILURES] = 0
        priority = balance_priority(priority, nr_scanned, nr_to_reclaim, reclaimed - before)
        if priority < 1:
            break
    kswapd_sleep_flags(nodev, reclaimed)
    return reclaimed, ids, stamps


@njit(cache=True)
def kswapd_dry_run(nr, anon_cost, file_cost, parent, sub_ptr, sub_idx, row, nr_classes, free, high,
                   refaulted_anon, refaulted_file, swp, can_anon, batches):
    """balance_pgdat (kswapd_shrink_node, shrink_node, shrink_lruvec) on scalars for a node whose
    only lruvec (`row` of the LruvecTable arrays, which are changed: pass copies) holds file folios
    only, all clean and never mapped, under the two-list rules: every folio isolated from the
    inactive list is freed, aging moves folios to the inactive list, each batch notes its (zero)
    cost. prepare_scan_control (deactivate_flags, file_is_tiny), get_scan_count (scan_balance,
    scan_targets) and the budget loop (budget_next) are the very rules the per-batch path runs;
    kswapd_age_node and the anon aging after each lruvec do nothing without anon folios.
    Records the batches (list, pages) in `batches`; returns (batches recorded, pages reclaimed,
    pages freed, whether a pass set the node's dirty flag, whether one reset kswapd_failures),
    or batches recorded -1 when the run would meet anon work (the per-batch path then runs)."""
    N = nr_classes
    L = 2 * N
    inactive = LRU_FILE * N
    nb = 0
    reclaimed = 0
    freed = 0
    may = 0
    dirty = False
    reset = False
    priority = DEF_PRIORITY
    targets = np.zeros(L, dtype=np.int64)
    budget = np.zeros(L, dtype=np.int64)
    st = np.zeros(4, dtype=np.int64)
    while free + freed <= high:  # pgdat_balanced
        nr_scanned = 0
        before = reclaimed
        nr_to_reclaim = max(high, SWAP_CLUSTER_MAX)
        taken = 0
        lv = nr[row]
        may = kswapd_pass_start(lv, N, refaulted_anon, refaulted_file, may, priority, free + freed, high, can_anon, swp,
                                anon_cost[row], file_cost[row], targets, budget, st)
        for c in range(N):
            if targets[c]:
                return -1, 0, 0, False, False
        while True:
            lru, n = budget_next(budget, targets, st, N, may, nr_to_reclaim)
            if lru < 0:
                break
            if nb == len(batches):
                return -1, 0, 0, False, False
            batches[nb, 0], batches[nb, 1] = lru, n
            nb += 1
            if lru % N:  # shrink_active_list: nothing young, every folio deactivated
                lv[lru] -= n
                lv[inactive] += n
                continue
            lv[inactive] -= n  # shrink_inactive_list: every folio isolated is freed
            freed += n
            nr_scanned += n
            taken += n
            note_cost(nr, anon_cost, file_cost, parent, sub_ptr, sub_idx, row, True, 0, 0, 0)
            st[1] += n
        reclaimed += st[1]
        dirty |= node_flags(0, taken, 0, taken)[1]  # no folio under writeback or dirty was met
        if reclaimed != before:
            reset = True
        priority = balance_priority(priority, nr_scanned, nr_to_reclaim, reclaimed - before)
        if priority < 1:
            break
    return nb, reclaimed, freed, dirty, reset


@njit(cache=True)
def bulk_kswapd_wake(in_ids, in_stamps, act_ids, act_stamps, lohi, clock, fstamp, flru, flags, pte_head, fshadow,
                     fshadow_ws, fshadow_memcg, fever, nr, nonres, anon_cost, file_cost, parent, sub_ptr, sub_idx, row,
                     usage, nodev, refaulted_anon, refaulted_file, swp, can_anon, batches, kc):
    """balance_pgdat in bulk for a node whose only lruvec (`row`, also the reclaim target, whose
    workingset clock stamps the shadows) holds file folios only, all of them that the run
    reaches clean and never mapped, under the two-list rules: kswapd_dry_run decides the batches,
    bulk_isolate_deactivate does the folio work, then the evicted folios leave their shadows
    (workingset_eviction: the target's non-resident age, advanced per eviction), go back to the
    free pages and are uncharged (`usage`, up the memcg tree), the cost signal is replayed, the
    counters go to `kc` (KSWAPD_COUNTS) and the node's scalars to `nodev`. `lohi`: the inactive
    list's lo and hi, the active list's lo and hi. Returns WAKE_DONE; with nothing changed,
    WAKE_NO (the run does not qualify) or WAKE_ROOM (the inactive list's arrays need room at its
    head); WAKE_DIVERGED: the result differs from the dry run (a bug)."""
    inactive = LRU_FILE * 2
    if nr[row, LRU_ANON * 2] or nr[row, LRU_ANON * 2 + 1]:  # anon aging would run (kswapd_age_node)
        return WAKE_NO
    nr_after = nr.copy()
    nb, reclaimed, freed, dirty, reset = kswapd_dry_run(
        nr_after, anon_cost.copy(), file_cost.copy(), parent, sub_ptr, sub_idx, row, 2, nodev[N_FREE], nodev[N_HIGH],
        refaulted_anon, refaulted_file, swp, can_anon, batches)
    if nb <= 0:
        return WAKE_NO
    t_in = 0
    for b in range(nb):
        if batches[b, 0] == inactive:
            t_in += batches[b, 1]
    n_act = nr[row, inactive + 1] - nr_after[row, inactive + 1]
    if lohi[1] + n_act > len(in_ids):
        return WAKE_ROOM
    ids = np.empty(t_in, dtype=np.int64)
    ok, lo, hi, alo = bulk_isolate_deactivate(in_ids, in_stamps, lohi[0], lohi[1], act_ids, act_stamps, lohi[2], lohi[3],
                                              fstamp, flru, flags, pte_head, nr, row, inactive, inactive + 1, t_in, n_act,
                                              clock, ids)
    if not ok:
        return WAKE_NO
    lohi[0], lohi[1], lohi[2] = lo, hi, alo
    free_evicted(ids, row, nonres, parent, flags, fshadow, fshadow_ws, fshadow_memcg, fever, usage, nodev,
                 np.empty(t_in, dtype=np.int64), kc)
    note_cost_batches(nr, anon_cost, file_cost, parent, sub_ptr, sub_idx, row, batches[:nb], inactive)
    kc[K_PGSCAN] += t_in
    kc[K_PGSTEAL] += t_in
    kc[K_PGSCAN_FILE] += t_in
    kc[K_PGSTEAL_FILE] += t_in
    kc[K_PGREFILL] += n_act
    kc[K_PGDEACTIVATE] += n_act
    kc[K_LOCK_OPS] += 2 * nb
    kc[K_SCANNED] += t_in + n_act
    for k in range(nr.shape[1]):
        if nr[row, k] != nr_after[row, k]:
            return WAKE_DIVERGED
    if freed != t_in:
        return WAKE_DIVERGED
    if dirty:
        nodev[N_DIRTY] = 1
    if reset:
        nodev[N_FAILURES] = 0
    kswapd_sleep_flags(nodev, reclaimed)
    return WAKE_DONE


# ---- the steps of a policy's compiled driver (ReclaimOps.segment_driver, engine.drive_compiled)


@njit(cache=True)
def kswapd_wake(ids, stamps, lohi, ftab, ptab, lvt, usage, swtab, row, nodev, s, wb, refaulted_anon, refaulted_file, swp,
                clock, batches, kc):
    """One kswapd run: in bulk when bulk_kswapd_wake can do it (page cache that is clean and
    never mapped as far as the run reaches: the same result, decided by a dry run, without the
    batches), else kswapd_balance. Arguments as kswapd_balance's, and `batches` for the dry run.
    Returns (pages reclaimed, or -1 when the bulk run diverged from its dry run: a bug; ids,
    stamps)."""
    fstamp, flru, flags, ftype, pte_head, fshadow, fshadow_ws, fshadow_memcg, fever, fmemcg, fswap_memcg = ftab
    nr, nonres, anon_cost, file_cost, parent, sub_ptr, sub_idx = lvt
    inactive = LRU_FILE * 2
    kc[K_BULK] += 1
    free = nodev[N_FREE]
    for attempt in range(2):
        done = bulk_kswapd_wake(ids[inactive], stamps[inactive], ids[inactive + 1], stamps[inactive + 1],
                                lohi[2 * inactive: 2 * inactive + 4], clock, fstamp, flru, flags, pte_head, fshadow,
                                fshadow_ws, fshadow_memcg, fever, nr, nonres, anon_cost, file_cost, parent, sub_ptr,
                                sub_idx, row, usage, nodev, refaulted_anon, refaulted_file, swp,
                                s[SWAP_TOTAL] > s[SWAP_USED], batches, kc)
        if done == WAKE_DONE:
            return nodev[N_FREE] - free, ids, stamps
        if done == WAKE_DIVERGED:
            return -1, ids, stamps
        if done != WAKE_ROOM:
            break
        # room at the inactive head for what aging may move there (at most the active list)
        ids, stamps = _room(ids, stamps, lohi, inactive, nr[row, inactive + 1], fstamp)
    return kswapd_balance(ids, stamps, lohi, ftab, ptab, lvt, usage, swtab, row, nodev, s, wb, refaulted_anon,
                          refaulted_file, swp, clock, kc)


def compiled_lruvec(sim, node, ops):
    """The lruvec kswapd_balance would run on (the node's only one) and the refault flags
    prepare_scan_control reads, or None when the run is not the compiled one's: bulk reclaim
    off, several memcgs, or a policy whose hooks are not the two-list rules."""
    if not sim.bulk_on(node) or sim.root_memcg.children:
        return None
    lv = sim.root_memcg.lruvecs[node.nid]
    if lv.nr_classes != 2:
        return None
    refaulted = ops.compiled_refaults(sim, lv)
    return None if refaulted is None else (lv, refaulted)


def kswapd_run(sim, node, ops) -> int:
    """kswapd's run to the high watermark: kswapd_balance when it applies (compiled_lruvec),
    else core.vmscan.balance_pgdat. Returns the pages reclaimed."""
    got = compiled_lruvec(sim, node, ops)
    if got is None:
        return balance_pgdat(sim, node, ops)
    lv, refaulted = got
    sim.vm["pageoutrun"] += 1
    node.vm["pageoutrun"] += 1
    lists = lv.lists
    ids, stamps, lohi = get_lists(lists)
    nodev = node_scalars(node)
    s, wb = reclaim_scalars(sim, node)
    mcs = sim._memcg_list
    usage = np.array([m.usage for m in mcs], dtype=np.int64)
    kc = np.zeros(len(KSWAPD_COUNTS), dtype=np.int64)
    ftab, ptab, lvt, swtab, row = tables(sim, lv)
    reclaimed, ids, stamps = kswapd_wake(ids, stamps, lohi, ftab, ptab, lvt, usage, swtab, row, nodev, s, wb,
                                         bool(refaulted[0]), bool(refaulted[1]), int(swp_of(sim, lv)), sim._stamp_clock,
                                         dry_batches(sim), kc)
    if reclaimed < 0:
        raise AssertionError(f"bulk kswapd run diverged from its dry run: lists {lv.table.nr[lv.row]}")
    set_lists(lists, ids, stamps, lohi)
    set_node_scalars(node, nodev)
    set_reclaim_scalars(sim, s, wb)
    for m, u in zip(mcs, usage.tolist()):
        m.usage = u
    flush_counts(sim, lv, kc)
    ops.reclaim_done(sim, node, ScanControl(nr_to_reclaim=max(node.wmark.high, SWAP_CLUSTER_MAX), kswapd=True))
    return int(reclaimed)


def dry_batches(sim) -> np.ndarray:
    """The simulator's buffer for kswapd_dry_run's batches."""
    if sim.dry_batches is None:
        sim.dry_batches = np.zeros((DRY_BATCHES, 2), dtype=np.int64)
    return sim.dry_batches


def swp_of(sim, lv) -> int:
    """mem_cgroup_swappiness of the lruvec's memcg."""
    return mem_cgroup_swappiness(sim, lv.memcg)


def get_lists(lists) -> tuple:
    """The lists' arrays and windows for a compiled call: (ids, stamps, lohi), set_lists's
    arguments back."""
    lohi = np.array([v for fl in lists for v in (fl.lo, fl.hi)], dtype=np.int64)
    return tuple(fl.ids for fl in lists), tuple(fl.stamps for fl in lists), lohi


def set_lists(lists, ids, stamps, lohi) -> None:
    """The lists' arrays and windows back from a compiled call."""
    for k, fl in enumerate(lists):
        fl.ids, fl.stamps, fl.lo, fl.hi = ids[k], stamps[k], int(lohi[2 * k]), int(lohi[2 * k + 1])


@njit(cache=True)
def flush_due(bg, s, wb):
    """Whether engine.flush_writeback has work: writeback reclaim started, or dirty file pages to
    write (core.vmscan.writeback_due)."""
    return wb[WB_WRITEBACK] > 0 or writeback_due(s[NR_FILE_DIRTY], wb[WB_REQUESTED] != 0, bg)


@njit(cache=True)
def wake_due(why, s, nodev):
    """Whether engine._make_room, at a stop of run_accesses in a compiled driver (its flusher
    done: flush_due false or driver_writeback run), wakes kswapd with all before the wake done:
    the stop is the watermark's and kswapd is woken (free at or below low, not failed out)."""
    return not (why != STOP_WMARK or s[FREE] > nodev[N_LOW] or nodev[N_FAILURES] >= MAX_RECLAIM_RETRIES)


@njit(cache=True)
def driver_flush(bg, s, wb, flags, ftype, flru, on, kc):
    """The flusher's pass and its counts, when it has work (flush_due), for engine.flush_writeback
    and a compiled driver's watermark stop alike: core.vmscan.end_writeback over the folio table
    (`on`: a buffer as long as the table's used part). Returns how many folios it left in `on`
    for the policy's folio_rotate_reclaimable (0 when it had no work)."""
    if not flush_due(bg, s, wb):
        return 0
    flush_dirty = writeback_due(s[NR_FILE_DIRTY], wb[WB_REQUESTED] != 0, bg)
    nw, k = end_writeback(flags, ftype, flru, len(on), flush_dirty, on)
    if flush_dirty:
        kc[K_PGPGOUT] += 4 * nw
        kc[K_FILE_WRITES] += nw
        s[NR_FILE_DIRTY] = 0
    wb[WB_WRITEBACK] = 0
    wb[WB_REQUESTED] = 0
    kc[K_PGROTATED] += k
    return k


@njit(cache=True)
def driver_writeback(bg, s, wb, ids, stamps, lohi, ftab, lvt, row, clock, on, kc):
    """The flusher (driver_flush) in a compiled driver whose policy rotates as ReclaimOps'
    default does (two classes, the four lists `ids`, `stamps`, windows `lohi`): the folios it
    hands back go to their inactive lists' tails (core.lru.rotate_dest, add_tail), anon then
    file. Returns the lists' arrays."""
    fstamp, flru, flags, ftype = ftab[0], ftab[1], ftab[2], ftab[3]
    k = driver_flush(bg, s, wb, flags, ftype, flru, on, kc)
    if k:
        dest = rotate_dest(on[:k], flags, ftype, 2)
        nr = lvt[0][row]
        for lru in (INACTIVE, 2 + INACTIVE):
            li, ls, lohi[2 * lru], lohi[2 * lru + 1] = add_tail(on[:k], dest, lru, ids[lru], stamps[lru], lohi[2 * lru],
                                                              lohi[2 * lru + 1], flru, fstamp, nr, clock)
            ids, stamps = _with(ids, lru, li), _with(stamps, lru, ls)
    return ids, stamps


@njit(cache=True)
def wake_done(got, sampled, s, nodev, kc):
    """The end of a compiled driver's kswapd wake (`got`: pages reclaimed, < 0 when a bulk run
    diverged from its dry run): its counts, and WAKE_DONE when the allocation may then go on
    (free above min) and the chunk has its sample, else WAKE_RAN: the engine finishes
    _make_room after the wake (direct reclaim, the chunk's first sample)."""
    s[FREE] = nodev[N_FREE]
    kc[K_RECLAIMS] += 1
    kc[K_WAKEUPS] += 1
    kc[K_PAGEOUTRUN] += 1
    if got < 0:
        return WAKE_DIVERGED
    if nodev[N_FREE] <= nodev[N_MIN] or not sampled:
        return WAKE_RAN
    return WAKE_DONE


@njit(cache=True)
def driver_kswapd(why, sampled, bg, s, wb, nodev, ids, stamps, lohi, kt, usage, refaulted_anon, refaulted_file, swp,
                  clock, batches, kc, on):
    """engine._make_room at a watermark stop of run_accesses, in a compiled driver whose policy
    rotates as ReclaimOps' default does: the flusher (driver_writeback; `on` its buffer), then,
    when it wakes kswapd (wake_due), kswapd_wake runs and wake_done answers. WAKE_NO when the
    wake is not due (the flusher's work, if any, done). Returns (answer, ids, stamps)."""
    if why != STOP_WMARK:
        return WAKE_NO, ids, stamps
    ftab, ptab, lvt, swtab, row = kt
    ids, stamps = driver_writeback(bg, s, wb, ids, stamps, lohi, ftab, lvt, row, clock, on, kc)
    if not wake_due(why, s, nodev):
        return WAKE_NO, ids, stamps
    nodev[N_FREE] = s[FREE]
    got, ids, stamps = kswapd_wake(ids, stamps, lohi, ftab, ptab, lvt, usage, swtab, row, nodev, s, wb, refaulted_anon,
                                   refaulted_file, swp, clock, batches, kc)
    return wake_done(got, sampled, s, nodev, kc), ids, stamps


def buffers(sim) -> tuple:
    """The buffers a Python caller hands a compiled reclaim step, one set per simulator: the
    folios taken and their rotations, the counters (KSWAPD_COUNTS, left at zero by
    flush_counts), and the folios' young counts and VM_EXEC flags (SWAP_CLUSTER_MAX each)."""
    b = sim.__dict__.get("_reclaim_buffers")
    if b is None:
        m = SWAP_CLUSTER_MAX
        b = sim.__dict__["_reclaim_buffers"] = (np.empty(m, dtype=np.int64), np.zeros(m, dtype=np.bool_),
                                                np.zeros(len(KSWAPD_COUNTS), dtype=np.int64),
                                                np.empty(m, dtype=np.int32), np.empty(m, dtype=np.bool_))
    return b


_NO_WALK = np.zeros(0, dtype=np.bool_)  # shrink_active_on without a page-table walk
_NO_IDS = np.zeros(0, dtype=np.int64)


def shrink_active_on(sim, lruvec, lru_type: int, nr_to_scan: int, walk_exec: np.ndarray | None) -> None:
    """shrink_active_lists on an lruvec of two classes per type, from Python: its lists given
    room first (FolioList._compact), the counters flushed after. `walk_exec`: what the last
    page-table walk found (ptwalk), or None."""
    a = lru_type * 2 + ACTIVE
    n = min(nr_to_scan, lruvec.nr[a])
    if n <= 0:
        return
    f, p = sim.folios, sim.ptes
    la, li = lruvec.lists[a], lruvec.lists[a - 1]
    for fl in (la, li):
        if fl.hi + n > len(fl.ids):
            fl._compact(f, n, 0)
    lh = np.array([li.lo, li.hi, la.lo, la.hi], dtype=np.int64)
    taken, rotate, kc, young, vm_exec = buffers(sim)
    if n > len(taken):  # more than a batch: buffers for this call
        taken, rotate = np.empty(n, dtype=np.int64), np.zeros(n, dtype=np.bool_)
        young, vm_exec = np.empty(n, dtype=np.int32), np.empty(n, dtype=np.bool_)
    walk_exec = _NO_WALK if walk_exec is None else walk_exec
    shrink_active_lists(la.ids, la.stamps, li.ids, li.stamps, lh, lru_type, n, walk_exec,
                        (f.stamp, f.lru, f.flags, f.pte_head), (p.present, p.young, p.exec, p.next),
                        lruvec.table.arrays(), lruvec.row, sim._stamp_clock, (taken, rotate, young, vm_exec, _NO_IDS),
                        kc)
    li.hi, la.lo, la.hi = int(lh[1]), int(lh[2]), int(lh[3])
    flush_counts(sim, lruvec, kc)


__all__ = ["KSWAPD_COUNTS", "compiled_lruvec", "count_pageout", "driver_kswapd", "flush_counts", "folio_check_references",
           "buffers", "evict_free", "kswapd_balance", "kswapd_run", "kswapd_wake", "list_room", "scratch", "set_lists",
           "shrink_folio_list_tail", "shrink_active_list", "shrink_active_lists", "shrink_active_on", "tables", "wake_done", "wake_due",
           "driver_flush", "flush_due", "get_lists"]
