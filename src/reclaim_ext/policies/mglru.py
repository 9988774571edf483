"""MGLRU, the multi-generational LRU (mm/vmscan.c, Documentation/mm/multigen_lru.rst), as a reclaim_ops instance.

Four classes per type form a ring of generations addressed by seq % 4 (max_seq shared, min_seq per
type). Everything that is not "how many age buckets and how folios move between them" comes from
the core: shrink_folio_list, the rmap walk, shadows, the page-table walk with its Bloom filters
(core.ptwalk), lookaround, and the lock-free logical-generation bookkeeping (core.lockfree).
Each of those mechanisms can be switched off for a run (`--mechanism`), which is how ablations
are measured.

Time (generation birth, min_ttl_ms) is the simulator's modelled clock, sim.now_ms().
"""

from __future__ import annotations

import functools

import numpy as np
from numba import njit

from ..core import lockfree
from ..core.lockfree import lazy_cost, take_one, update_gen
from ..core.access import DONE, FREE, STOP_WMARK, SWAP_TOTAL, SWAP_USED
from ..core.kswapd import (
    K_ATOMIC_UPDATES, K_BULK, K_LOCK_OPS, K_PGACTIVATE, K_PGREFILL, K_PGSCAN, K_PGSCAN_ANON, K_PGSCAN_FILE, K_PGSTEAL,
    K_PGSTEAL_ANON, K_PGSTEAL_FILE, K_PTES_CHECKED, K_PTES_WALKED, K_RMAP_WALKS, K_SCANNED, WAKE_DONE,
    WAKE_NO, WAKE_PART, WAKE_ROOM, WB_REQUESTED, buffers, evict_free, flush_counts, get_lists, list_room, lists_fit,
    folio_check_references, reclaim_scalars, set_lists, set_reclaim_scalars, shrink_folio_list_tail, tables,
    driver_flush, wake_done, wake_due,
)
from ..core.ops import (
    DEF_PRIORITY, FOLIOREF_ACTIVATE, FOLIOREF_KEEP, FOLIOREF_RECLAIM, ACCESS_MECHANISMS, SWAP_CLUSTER_MAX, AccessEvents,
    BatchedEvents, ScanControl,
)
from ..core.lru import HookOut, add_tail, isolate_tail_into, list_add, list_del, tail_valid
from ..core.ptwalk import (
    BloomFilters, MAX_LRU_BATCH, MIN_LRU_BATCH, add_dense, look_around_batch, lookaround_clear, lookaround_tables,
    walk_mm,
)
from ..core.rmap import folio_mapped, mapped_one, walk_referenced
from ..core.vmscan import (
    N_FAILURES, N_FREE, N_HIGH, N_WRITEBACK, _clean_unmapped_file, _scatter_pending, _shrink_census,
    can_reclaim_anon, count_reclaim, balance_priority, driver_stretch,
    kswapd_sleep_flags, mem_cgroup_below_low, mem_cgroup_below_min, mem_cgroup_nr_swap_pages, node_scalars,
    push_slots, set_node_scalars, shrink_folio_list, swappiness as vm_swappiness,
)
from ..jit import PREFETCH_AHEAD, noref, prefetch
from ..machine.folio import (
    LRU_ANON, LRU_FILE, NO_LIST, PG_active, PG_dirty, PG_mlocked, PG_referenced, PG_reclaim, PG_swapcache,
    PG_unevictable, PG_workingset, PG_writeback, TYPE_NAMES,
)

MIN_SWAPPINESS, MAX_SWAPPINESS, SWAPPINESS_ANON_ONLY = 0, 200, 201
MEMCG_NR_GENS = 3         # memcg LRU generations (old = seq % 3, young = (seq + 1) % 3)
MEMCG_NR_BINS = 8         # random bins per generation
MEMCG_LRU_HEAD, MEMCG_LRU_TAIL, MEMCG_LRU_OLD, MEMCG_LRU_YOUNG = 1, 2, 3, 4
_U16 = np.uint16


# ---- compiled rules (numba): each stated once, called by the per-batch path (evict_folios,
# scan_folios), the bulk try_to_shrink_lruvec pass and the hot path's event loop ----------------

MIN_NR_GENS = 2
MAX_NR_GENS = 4
MAX_NR_TIERS = 4
LRU_REFS_MAX = 3  # LRU_REFS is 2 bits wide
# a shadow's token carries its node below the eviction (pack_shadow's node bits): up to 64 nodes
NODES_SHIFT = 6
NODES_MASK = (1 << NODES_SHIFT) - 1
# scan_folios' verdict per folio: isolate_folio, or the reason sort_folio keeps it
ISOLATE, SORT_PROMOTED, SORT_PROTECTED, SORT_WAITING = 0, 1, 2, 3
_SAFE = 1 << 27  # below this, the PID products fit in int64 exactly (gains are below 2**8)


# ---- per-folio rules -------------------------------------------------------------------------


@njit(cache=True)
def tier_from_refs(refs, workingset):
    """lru_tier_from_refs: 3 if workingset, else order_base_2(refs) (0, 0, 1, 2, 2 for 0..4)."""
    if workingset:
        return MAX_NR_TIERS - 1
    return 0 if refs <= 1 else (1 if refs == 2 else 2)


@njit(cache=True)
def folio_refs(fl, lru_refs):
    """folio_lru_refs: 0 without PG_referenced, else LRU_REFS + 1."""
    return np.int64(lru_refs) + 1 if fl & PG_referenced else 0


@njit(cache=True)
def folio_tier(fl, lru_refs):
    return tier_from_refs(folio_refs(fl, lru_refs), (fl & PG_workingset) != 0)


@njit(cache=True)
def all_ref_bits(fl, lru_refs):
    """Every ref bit set (LRU_REFS_MAX with PG_referenced and PG_workingset): the workingset being
    lazily promoted, protected by sort_folio but not counted in `protected`."""
    return folio_refs(fl, lru_refs) + (1 if fl & PG_workingset else 0) == LRU_REFS_MAX + 2


@njit(cache=True)
def folio_tier_v(fl, lru_refs, pre):
    """folio_tier under the rules of `pre` (True: Linux 6.1-6.13, before the December 2024 rework):
    there folio_lru_refs is LRU_REFS + PG_workingset (PG_referenced not counted) and the tier is
    order_base_2(refs + 1): 0, 1, 2, 2, 3 for refs 0..4."""
    if pre:
        refs = np.int64(lru_refs) + (1 if fl & PG_workingset else 0)
        return 0 if refs == 0 else (1 if refs == 1 else (2 if refs <= 3 else 3))
    return folio_tier(fl, lru_refs)


@njit(cache=True)
def all_ref_bits_v(fl, lru_refs, pre):
    """all_ref_bits; before the rework: refs == BIT(LRU_REFS_WIDTH), i.e. LRU_REFS full and
    PG_workingset (sort_folio protects it; it is counted in `protected` like any other)."""
    if pre:
        return lru_refs == LRU_REFS_MAX and (fl & PG_workingset) != 0
    return all_ref_bits(fl, lru_refs)


@njit(cache=True)
def _tiers(refs, workingset):
    out = np.empty(len(refs), dtype=np.int64)
    for i in range(len(refs)):
        out[i] = tier_from_refs(refs[i], workingset[i])
    return out


def lru_tier_from_refs(refs: np.ndarray, workingset: np.ndarray) -> np.ndarray:
    """tier_from_refs over arrays."""
    refs = np.asarray(refs, dtype=np.int64)
    return _tiers(refs, np.broadcast_to(np.asarray(workingset, dtype=np.bool_), refs.shape))


@noref
def folio_seq(max_seq, min_seq, t, fl, reclaiming, pre=False):
    """lru_gen_folio_seq (mm_inline.h): an active folio (a fault, or activated by reclaim) goes
    to the youngest generation (the second youngest with PG_workingset); otherwise a folio
    being reclaimed goes to the oldest, anon not in the swap cache (or dirty/writeback under
    reclaim) to the second oldest of MIN_NR_GENS, and the rest (page cache, swap-cache anon) to
    the oldest (the second oldest with PG_workingset); never below min_seq of its type.

    `pre` (lru_gen_add_folio before the rework, Linux 6.1-6.13): an active folio goes to max_seq
    itself; anon (or dirty/writeback under reclaim) to max_seq - 1; the rest to min_seq + 1 when
    four generations exist, else (or when reclaiming) to min_seq."""
    if pre:
        if fl & PG_active:
            return max_seq
        if (t == LRU_ANON and (fl & PG_swapcache) == 0) or \
                ((fl & PG_reclaim) != 0 and (fl & (PG_dirty | PG_writeback)) != 0):
            return max_seq - 1
        if reclaiming or min_seq + MIN_NR_GENS >= max_seq:
            return min_seq
        return min_seq + 1
    ws = 1 if fl & PG_workingset else 0
    if fl & PG_active:
        g = MIN_NR_GENS - ws
    elif reclaiming:
        g = MAX_NR_GENS
    elif (t == LRU_ANON and (fl & PG_swapcache) == 0) or ((fl & PG_reclaim) != 0 and (fl & (PG_dirty | PG_writeback)) != 0):
        g = MIN_NR_GENS
    else:
        g = MAX_NR_GENS - ws
    return max(max_seq - g + 1, min_seq)


@njit(cache=True)
def folio_seqs(max_seq, min_anon, min_file, t, fl, reclaiming, pre):
    out = np.empty(len(t), dtype=np.int64)
    for i in range(len(t)):
        out[i] = folio_seq(max_seq, min_file if t[i] == LRU_FILE else min_anon, t[i], fl[i], reclaiming, pre)
    return out


@noref
def scan_verdict(fl, gen, lru_refs, lru, t, tier_idx, pre):
    """scan_folios on one folio of the oldest list `lru`: sort_folio keeps a folio promoted
    meanwhile (its generation is not the list's), one in a protected tier (above tier_idx, or
    with every ref bit set) and one waiting for writeback (under writeback, or a dirty file
    folio); isolate_folio takes the rest."""
    if gen != lru:
        return SORT_PROMOTED
    if folio_tier_v(fl, lru_refs, pre) > tier_idx or all_ref_bits_v(fl, lru_refs, pre):
        return SORT_PROTECTED
    if fl & PG_writeback or (t == LRU_FILE and fl & PG_dirty):
        return SORT_WAITING
    return ISOLATE


@njit(cache=True)
def scan_batch_of(nr_to_scan, pre):
    """scan_folios' scan limit: MAX_LRU_BATCH in Linux 6.1-6.13 (`remaining = MAX_LRU_BATCH`:
    the caller's nr_to_scan does not reach scan_folios, so even at priority 12, where
    nr_to_scan is total >> 12, a batch isolates up to MIN_LRU_BATCH); bounded by nr_to_scan
    too otherwise ("mm/mglru: relocate the LRU scan batch limit to callers")."""
    return MAX_LRU_BATCH if pre else min(nr_to_scan, MAX_LRU_BATCH)


@noref
def scan_step(cand, pos, scan_batch, lru, t, tier_idx, flags, lru_gen, lru_refs, verdict, pre):
    """One scan_folios from cand[pos] (the oldest list's folios, tail first): verdicts until
    MIN_LRU_BATCH folios are isolated or scan_batch are scanned. Returns (end, isolated); end ==
    len(cand) short of both means the candidates ran out."""
    niso = 0
    i = pos
    stop = min(pos + scan_batch, len(cand))
    while i < stop and niso < MIN_LRU_BATCH:
        g = cand[i]
        v = scan_verdict(flags[g], lru_gen[g], lru_refs[g], lru, t, tier_idx, pre)
        verdict[i] = v
        niso += v == ISOLATE
        i += 1
    return i, niso


@noref
def folio_inc_gen(g, t, min_seq_t, flags, lru_refs, reclaiming, pre):
    """folio_inc_gen for a folio of the oldest generation: to min_seq + 1 with PG_referenced and
    LRU_REFS cleared (PG_reclaim set when reclaiming: for folio_end_writeback); before the rework
    (`pre`) LRU_REFS_FLAGS held PG_workingset too, which is cleared as well. Returns the list."""
    fl = flags[g] & ~PG_referenced
    if pre:
        fl &= ~PG_workingset
    if reclaiming:
        fl |= PG_reclaim
    flags[g] = fl
    lru_refs[g] = 0
    return t * MAX_NR_GENS + (min_seq_t + 1) % MAX_NR_GENS


@noref
def folio_update_gen(ids, gen, flags, lru_refs, lru_gen, ftype, nl, lazy, pre, out):
    """folio_update_gen for the folio of each young PTE in `ids`, in order: a folio neither
    referenced nor workingset only gets PG_referenced (LRU_REFS cleared); one isolated meanwhile
    is left alone; the others get PG_workingset (PG_referenced and LRU_REFS cleared) and, outside
    generation `gen` (max_seq's), are promoted to it: with `lazy` by the lock-free update
    (core.lockfree.update_gen on `nl`, the lruvec's logical sizes), else only listed in `out`
    (a folio possibly more than once) for the caller to move. `pre` (Linux 6.1-6.13): every
    young PTE of a folio on a list promotes it, LRU_REFS, PG_referenced and PG_workingset
    cleared; an isolated folio gets PG_referenced. Returns (folios in `out`, of them anon)."""
    n = nanon = 0
    for i in range(len(ids)):
        g = ids[i]
        fl = flags[g]
        if pre:
            if lru_gen[g] == NO_LIST:
                flags[g] = fl | PG_referenced
                continue
            flags[g] = fl & ~(PG_referenced | PG_workingset)
        elif not fl & (PG_referenced | PG_workingset):
            flags[g] = fl | PG_referenced
            lru_refs[g] = 0
            continue
        elif lru_gen[g] == NO_LIST:
            continue
        else:
            flags[g] = (fl & ~PG_referenced) | PG_workingset
        lru_refs[g] = 0
        t = np.int64(ftype[g])
        lru = t * MAX_NR_GENS + gen
        if lru_gen[g] == lru:
            continue
        if lazy:
            update_gen(g, lru, lru_gen, nl)
        out[n] = g
        n += 1
        nanon += t == LRU_ANON
    return n, nanon


@noref
def lru_gen_set_refs(g, flags, lru_refs):
    """lru_gen_set_refs: a first sighting (neither PG_referenced nor PG_workingset) gets
    PG_referenced, LRU_REFS cleared; any other gets PG_workingset with PG_referenced and
    LRU_REFS cleared, and is to be promoted (True)."""
    fl = flags[g]
    if not fl & (PG_referenced | PG_workingset):
        flags[g] = fl | PG_referenced
        lru_refs[g] = 0
        return False
    flags[g] = (fl & ~PG_referenced) | PG_workingset
    lru_refs[g] = 0
    return True


@njit(cache=True)
def set_refs_verdicts(ids, young, flags, lru_refs):
    """folio_check_references with MGLRU for each isolated folio: no young PTE -> RECLAIM
    (PG_referenced is not consulted), else ACTIVATE if lru_gen_set_refs promotes, KEEP on a
    first sighting."""
    v = np.full(len(ids), FOLIOREF_RECLAIM, dtype=np.int8)
    for i in range(len(ids)):
        if young[i] > 0:
            v[i] = FOLIOREF_ACTIVATE if lru_gen_set_refs(ids[i], flags, lru_refs) else FOLIOREF_KEEP
    return v


@noref
def lru_gen_add_folio(g, row, seqs, flags, ftype, lru_refs, flru, fstamp, flru_gen, nr, nr_logical, clock, push, npush,
                      pre):
    """lru_gen_add_folio at the head of the lruvec in `row` (seqs[row]: its max_seq,
    min_seq[anon], min_seq[file]): the generation folio_seq gives, PG_active cleared (before the rework, `pre`,
    an active folio also loses LRU_REFS and PG_referenced), the slot left in `push`
    (core.lru.list_add) and the logical list set. Returns the new number of slots."""
    t = np.int64(ftype[g])
    fl = flags[g]
    seq = folio_seq(seqs[row, 0], seqs[row, 1 + t], t, fl, False, pre)
    if pre and fl & PG_active:
        fl &= ~PG_referenced
        lru_refs[g] = 0
    flags[g] = fl & ~PG_active
    lru = t * MAX_NR_GENS + seq % MAX_NR_GENS
    npush = list_add(g, row, lru, flru, fstamp, nr, clock, push, npush)
    flru_gen[g] = lru
    nr_logical[row, lru] += 1
    return npush


@noref
def lru_gen_add_folios(ids, row, seqs, flags, ftype, lru_refs, flru, fstamp, flru_gen, nr, nr_logical, clock, push,
                       pre):
    """lru_gen_add_folio for folios on no list, in order. Returns the number of slots in `push`."""
    npush = 0
    for i in range(len(ids)):
        npush = lru_gen_add_folio(ids[i], row, seqs, flags, ftype, lru_refs, flru, fstamp, flru_gen, nr, nr_logical,
                                  clock, push, npush, pre)
    return npush


@njit(cache=True)
def lru_gen_rotate(ids, lids, lstamps, lohi, flags, ftype, flru, fstamp, flru_gen, nr, nl, seqs, row, clock, pre):
    """folio_rotate_reclaimable -> lru_gen_add_folio(reclaiming) on the lruvec's eight lists
    (`lids`, `lstamps`, windows `lohi`; `nr`, `nl`: its physical and logical sizes): each folio
    leaves its generation with PG_active cleared and goes to the tail of the generation
    lru_gen_folio_seq gives a folio being reclaimed, the last of `ids` first, list by list.
    Returns the lists' arrays."""
    rev = ids[::-1]
    dest = np.empty(len(ids), dtype=np.int64)
    for k in range(len(rev)):
        g = rev[k]
        take_one(g, flru_gen, nl)
        flags[g] &= ~PG_active
        t = np.int64(ftype[g])
        dest[k] = t * MAX_NR_GENS + folio_seq(seqs[row, 0], seqs[row, 1 + t], t, flags[g], True, pre) % MAX_NR_GENS
    for lru in range(len(lids)):
        li, ls, lohi[2 * lru], lohi[2 * lru + 1] = add_tail(rev, dest, lru, lids[lru], lstamps[lru], lohi[2 * lru],
                                                          lohi[2 * lru + 1], flru, fstamp, nr, clock)
        lids, lstamps = _with8(lids, lru, li), _with8(lstamps, lru, ls)
    for k in range(len(rev)):
        flru_gen[rev[k]] = dest[k]
        nl[dest[k]] += 1
    return lids, lstamps


@njit(cache=True)
def _with8(t, k, a):
    """The eight lists' arrays `t` with list k's replaced by `a`."""
    return (a if k == 0 else t[0], a if k == 1 else t[1], a if k == 2 else t[2], a if k == 3 else t[3],
            a if k == 4 else t[4], a if k == 5 else t[5], a if k == 6 else t[6], a if k == 7 else t[7])


@noref
def look_around_activate(ids, row, seqs, flags, ftype, lru_refs, flru, fstamp, flru_gen, nr, nr_logical, clock, push,
                         pre):
    """lru_gen_look_around without a walk struct, for the folio of each young PTE in `ids`, in
    order: lru_gen_set_refs, and a folio it promotes that is on a list outside gen(max_seq) is
    activated (folio_activate: off its list, PG_active, lru_gen_add_folio). Before the rework (`pre`): an
    isolated folio gets PG_referenced; one on a list outside gen(max_seq) loses LRU_REFS,
    PG_referenced and PG_workingset (folio_clear_lru_refs) and is activated. Returns (slots in
    `push`, folios activated)."""
    npush = nact = 0
    nl = nr_logical[row]
    for i in range(len(ids)):
        g = ids[i]
        if pre:
            if flru_gen[g] == NO_LIST:
                flags[g] |= PG_referenced
                continue
            if flru_gen[g] % MAX_NR_GENS == seqs[row, 0] % MAX_NR_GENS or flru[g] == NO_LIST:
                continue
            flags[g] &= ~(PG_referenced | PG_workingset)
            lru_refs[g] = 0
        elif not lru_gen_set_refs(g, flags, lru_refs) or flru[g] == NO_LIST or flru_gen[g] == NO_LIST or \
                flru_gen[g] % MAX_NR_GENS == seqs[row, 0] % MAX_NR_GENS:
            continue  # only a folio on a list outside max_seq's generation is activated
        take_one(g, flru_gen, nl)
        list_del(g, row, flru, fstamp, nr)
        flags[g] |= PG_active
        npush = lru_gen_add_folio(g, row, seqs, flags, ftype, lru_refs, flru, fstamp, flru_gen, nr, nr_logical, clock,
                                  push, npush, pre)
        nact += 1
    return npush, nact


@njit(cache=True)
def evict_putback(keep, skip_retry, row, seqs, flags, ftype, lru_refs, flru, fstamp, flru_gen, nr, nr_logical, clock,
                  push, ptab, pre):
    """evict_folios' survivors of shrink_folio_list, in order: an unevictable one (PG_unevictable
    or PG_mlocked: !folio_evictable) goes back as it is, on either pass (folio_putback_lru; the
    model has no unevictable list: lru_gen_add_folio); of the others, one neither active, mapped
    (`ptab`: the PTEs' present, exec, next and the folios' rmap heads), dirty nor under
    writeback is to be retried (unless skip_retry: the retry pass); the rest go back
    (lru_gen_add_folio), a rejected one that would land in the oldest generation of its type
    with PG_active (LRU_REFS and PG_referenced cleared). Before the rework (`pre`): a dirty or
    writeback folio with PG_reclaim goes back as it is (PG_referenced restored on a workingset
    one); any other that is active, referenced, mapped, dirty or under writeback (every one on
    the retry pass) is rejected: LRU_REFS, PG_referenced and PG_workingset cleared, PG_active
    set. Returns (the folios to retry, list slots in `push`, folios put back)."""
    retry = np.empty(len(keep), dtype=np.int64)
    nretry = npush = 0
    present, pexec, nxt_of, pte_head = ptab
    for i in range(len(keep)):
        g = keep[i]
        fl = flags[g]
        t = np.int64(ftype[g])
        busy = fl & (PG_dirty | PG_writeback)
        if fl & (PG_unevictable | PG_mlocked):  # !folio_evictable: folio_putback_lru, no retry
            pass
        elif pre and fl & PG_reclaim and busy:
            if fl & PG_workingset:
                flags[g] = fl | PG_referenced
        elif skip_retry or fl & (PG_active | PG_dirty | PG_writeback | (PG_referenced if pre else 0)) or \
                mapped_one(g, pte_head, present, pexec, nxt_of, False):
            if pre:
                flags[g] = (fl & ~(PG_referenced | PG_workingset)) | PG_active
                lru_refs[g] = 0
            elif folio_seq(seqs[row, 0], seqs[row, 1 + t], t, fl, False, False) == seqs[row, 1 + t]:
                flags[g] = (fl & ~PG_referenced) | PG_active
                lru_refs[g] = 0
        else:
            retry[nretry] = g
            nretry += 1
            continue
        npush = lru_gen_add_folio(g, row, seqs, flags, ftype, lru_refs, flru, fstamp, flru_gen, nr, nr_logical, clock,
                                  push, npush, pre)
    return retry[:nretry], npush, len(keep) - nretry


@njit(cache=True)
def sort_and_isolate(ids, verdict, t, min_seq_t, flags, lru_gen, lru_refs, flru, fstamp, nr, nr_logical, row,
                     clock, push, protected_t, census, pre, tailq):
    """The folio work of scan_folios for `ids`, just taken off the tail of the oldest list, in
    order, given their verdicts: each leaves its logical list (core.lockfree.take); sort_folio
    puts a promoted folio at the head of its generation and a protected or waiting one
    (folio_inc_gen; waiting: reclaiming, dirty file census) at the head of min_seq + 1 (slots in
    `push`, core.lru.list_add); isolate_folio zeroes an unreferenced folio's LRU_REFS and clears
    PG_reclaim. census: [dirty file folios waiting, of them not under writeback]. Returns (the
    isolated folios in order, the number of list slots, the number in `tailq`).

    `pre` (Linux 6.1-6.13): isolate_folio also clears PG_referenced (and, on a folio without it,
    PG_workingset), and sort_folio moves a protected folio to the *tail* of min_seq + 1
    (list_move_tail) and counts it in `protected` even with every ref bit set: such folios are
    left off the lists, in order, in `tailq` (folio, list) for the caller."""
    iso = np.empty(len(ids), dtype=np.int64)
    niso = npush = ntail = 0
    for i in range(len(ids)):
        g = ids[i]
        logical = np.int64(lru_gen[g])
        nr_logical[row, logical] -= 1
        lru_gen[g] = NO_LIST
        v = verdict[i]
        fl = flags[g]
        if v == ISOLATE:
            if not fl & PG_referenced:
                lru_refs[g] = 0
                if pre:
                    fl &= ~PG_workingset
            fl &= ~PG_reclaim
            if pre:
                fl &= ~PG_referenced
            flags[g] = fl
            iso[niso] = g
            niso += 1
            continue
        new = logical
        if v == SORT_PROTECTED:
            if pre:
                protected_t[folio_tier_v(fl, lru_refs[g], True)] += 1
                new = folio_inc_gen(g, t, min_seq_t, flags, lru_refs, False, True)
                tailq[0, ntail] = g
                tailq[1, ntail] = new
                ntail += 1
                continue
            if not all_ref_bits(fl, lru_refs[g]):
                protected_t[folio_tier(fl, lru_refs[g])] += 1
            new = folio_inc_gen(g, t, min_seq_t, flags, lru_refs, False, False)
        elif v == SORT_WAITING:
            if t == LRU_FILE and fl & PG_dirty:
                census[0] += 1
                census[1] += (fl & PG_writeback) == 0
            new = folio_inc_gen(g, t, min_seq_t, flags, lru_refs, True, pre)
        npush = list_add(g, row, new, flru, fstamp, nr, clock, push, npush)
        lru_gen[g] = new
        nr_logical[row, new] += 1
    return iso[:niso], npush, ntail


@njit(cache=True)
def isolate_and_sort(lids, lstamps, lo, hi, verdict, lru, t, min_seq_t, flags, lru_gen, lru_refs, flru, fstamp, nr,
                     nr_logical, row, clock, push, protected_t, census, pre, tailq):
    """isolate_lru_folios of the len(verdict) folios at the tail of list `lru` (its arrays
    `lids`, `lstamps`, window [lo, hi)), then sort_and_isolate with their verdicts. Returns (the
    list's new lo, the isolated folios, the slots in `push`, the folios in `tailq`)."""
    ids = np.empty(len(verdict), dtype=np.int64)
    k, lo = isolate_tail_into(lids, lstamps, lo, hi, fstamp, flru, len(verdict), ids)
    nr[row, lru] -= k
    iso, npush, ntail = sort_and_isolate(ids[:k], verdict[:k], t, min_seq_t, flags, lru_gen, lru_refs, flru, fstamp,
                                         nr, nr_logical, row, clock, push, protected_t, census, pre, tailq)
    return lo, iso, npush, ntail


@njit(cache=True)
def scan_folios_on(lids, lstamps, lo, hi, scan_batch, lru, t, tier_idx, min_seq_t, flags, lru_gen, lru_refs, flru,
                   fstamp, nr, nr_logical, row, clock, push, protected_t, census, pre, tailq):
    """scan_folios on the oldest list `lru` of type t (arrays and window as isolate_and_sort's):
    scan_step's verdicts on the folios of its tail (peeked in growing steps; 2 * MIN_LRU_BATCH
    is usually enough to find MIN_LRU_BATCH to isolate), then isolate_and_sort on those
    scanned. Returns (folios scanned, the list's new lo, isolated folios, slots in `push`,
    folios in `tailq`)."""
    want = min(scan_batch, 2 * MIN_LRU_BATCH)
    while True:
        cand = tail_valid(lids, lstamps, lo, hi, fstamp, want)[0]
        if len(cand) == 0:
            return 0, lo, cand, 0, 0
        verdict = np.empty(len(cand), dtype=np.int8)
        n, niso = scan_step(cand, 0, scan_batch, lru, t, tier_idx, flags, lru_gen, lru_refs, verdict, pre)
        if niso == MIN_LRU_BATCH or len(cand) < want or want == scan_batch:
            break
        want = min(scan_batch, 4 * want)
    lo, iso, npush, ntail = isolate_and_sort(lids, lstamps, lo, hi, verdict[:n], lru, t, min_seq_t, flags, lru_gen,
                                             lru_refs, flru, fstamp, nr, nr_logical, row, clock, push, protected_t,
                                             census, pre, tailq)
    return n, lo, iso, npush, ntail


@njit(cache=True)
def inc_min_seq_folios(ids, logical, t, min_seq_t, flags, lru_refs, protected_t, pre):
    """inc_min_seq's folio work for the oldest generation's folios (`logical`: their logical
    lists): each counts in `protected` (but the lazily promoted workingset) and goes to its
    promoted generation, else through folio_inc_gen. Returns the lists. Before the rework (`pre`)
    inc_min_seq counted nothing in `protected`."""
    new = np.empty(len(ids), dtype=np.int64)
    oldest = t * MAX_NR_GENS + min_seq_t % MAX_NR_GENS
    for i in range(len(ids)):
        g = ids[i]
        if not pre and not all_ref_bits(flags[g], lru_refs[g]):
            protected_t[folio_tier(flags[g], lru_refs[g])] += 1
        new[i] = logical[i] if logical[i] != oldest else folio_inc_gen(g, t, min_seq_t, flags, lru_refs, False, pre)
    return new


@njit(cache=True)
def eviction_tokens(ids, flags, ftype, lru_refs, min_seq, evicted, pre, nid):
    """lru_gen_eviction: token = min_seq of the type << 2 | max(refs - 1, 0), packed with the
    node `nid` the folios leave (as pack_shadow packs the pgdat; the memcg is the folio's
    shadow_memcg); counts `evicted` per type and tier (`pre`: refs = LRU_REFS + PG_workingset,
    the tier of the old rules)."""
    out = np.empty(len(ids), dtype=np.int64)
    for i in range(len(ids)):
        g = ids[i]
        fl = flags[g]
        t = np.int64(ftype[g])
        if pre:
            refs = np.int64(lru_refs[g]) + (1 if fl & PG_workingset else 0)
        else:
            refs = folio_refs(fl, lru_refs[g])
        evicted[t, folio_tier_v(fl, lru_refs[g], pre)] += 1
        out[i] = (((min_seq[t] << 2) | max(refs - 1, 0)) << NODES_SHIFT) | nid
    return out


# ---- the PID controller ---------------------------------------------------------------------


@njit(cache=True)
def _le3(a, b, c, d, e, f):
    """a * b * c <= d * e * f for non-negative integers, exact (gains c, f below 2**8)."""
    if a < _SAFE and b < _SAFE and d < _SAFE and e < _SAFE:
        return a * b * c <= d * e * f
    x, y = float(a) * b * c, float(d) * e * f
    if abs(x - y) > 1e-9 * max(x, y):
        return x <= y
    raise OverflowError("MGLRU PID controller: counters too large to compare exactly")


@njit(cache=True)
def ctrl_err_ok(sp_refaulted, sp_total, sp_gain, pv_refaulted, pv_total, pv_gain):
    """positive_ctrl_err: the PV has few refaults or a refault rate no worse than the SP's."""
    return pv_refaulted < MIN_LRU_BATCH or _le3(pv_refaulted, sp_total + MIN_LRU_BATCH, sp_gain, sp_refaulted + 1,
                                                pv_total, pv_gain)


@njit(cache=True)
def read_ctrl_pos(ctrl, t, tier):
    """read_ctrl_pos: (refaulted, total) of one tier of type t, or of all four for tier ==
    MAX_NR_TIERS, the I term plus the P term. ctrl: (avg_refaulted, avg_total, refaulted,
    evicted, protected), each [type][tier]."""
    avg_refaulted, avg_total, refaulted, evicted, protected = ctrl
    lo, hi = (0, MAX_NR_TIERS) if tier == MAX_NR_TIERS else (tier, tier + 1)
    r = tot = 0
    for k in range(lo, hi):
        r += avg_refaulted[t, k] + refaulted[t, k]
        tot += avg_total[t, k] + protected[t, k] + evicted[t, k]
    return r, tot


@njit(cache=True)
def get_tier_idx(ctrl, t, pre=False):
    """get_tier_idx: tiers above the returned index are protected (gain 2:3 leaves a 50 % margin;
    before the rework, `pre`, the gains were 1:2)."""
    g0, g1 = (1, 2) if pre else (2, 3)
    sp_r, sp_t = read_ctrl_pos(ctrl, t, 0)
    tier = 1
    while tier < MAX_NR_TIERS:
        pv_r, pv_t = read_ctrl_pos(ctrl, t, tier)
        if not ctrl_err_ok(sp_r, sp_t, g0, pv_r, pv_t, g1):
            break
        tier += 1
    return tier - 1


@njit(cache=True)
def get_type_to_scan(ctrl, swappiness):
    """get_type_to_scan: file at swappiness 0 or 1, anon at 200 and above, else the type whose
    refault rate the PID controller finds no worse (gains: swappiness vs 200 - swappiness)."""
    if swappiness <= 1:
        return LRU_FILE
    if swappiness >= 200:
        return LRU_ANON
    sp_r, sp_t = read_ctrl_pos(ctrl, LRU_ANON, MAX_NR_TIERS)
    pv_r, pv_t = read_ctrl_pos(ctrl, LRU_FILE, MAX_NR_TIERS)
    return LRU_FILE if ctrl_err_ok(sp_r, sp_t, swappiness, pv_r, pv_t, 200 - swappiness) else LRU_ANON


@njit(cache=True)
def get_type_to_scan_pre(ctrl, swappiness):
    """get_type_to_scan before the rework (Linux 6.1-6.13): compare the first tier of anon with
    that of file (gains swappiness : 200 - swappiness), then the other tiers of the chosen type
    with the first tier of the other type for the last tier to evict. Returns (type, tier_idx)."""
    gain = (swappiness, 200 - swappiness)
    sp_r, sp_t = read_ctrl_pos(ctrl, LRU_ANON, 0)
    pv_r, pv_t = read_ctrl_pos(ctrl, LRU_FILE, 0)
    t = LRU_FILE if ctrl_err_ok(sp_r, sp_t, gain[LRU_ANON], pv_r, pv_t, gain[LRU_FILE]) else LRU_ANON
    sp_r, sp_t = read_ctrl_pos(ctrl, 1 - t, 0)
    tier = 1
    while tier < MAX_NR_TIERS:
        pv_r, pv_t = read_ctrl_pos(ctrl, t, tier)
        if not ctrl_err_ok(sp_r, sp_t, gain[1 - t], pv_r, pv_t, gain[t]):
            break
        tier += 1
    return t, tier - 1


@njit(cache=True)
def type_evictable(swappiness, t):
    """for_each_evictable_type: file only at 0, anon only at 201 (SWAPPINESS_ANON_ONLY)."""
    if t == LRU_ANON:
        return swappiness != MIN_SWAPPINESS
    return swappiness <= MAX_SWAPPINESS


@noref
def evictable_size_of(nl, min_seq, max_seq, swappiness):
    """Pages in every live generation of the evictable types (negative sizes as 0); `nl`: the
    lruvec's sizes by logical list (nr_logical)."""
    total = 0
    for t in range(2):
        if type_evictable(swappiness, t):
            for seq in range(min_seq[t], max_seq + 1):
                total += max(nl[t * MAX_NR_GENS + seq % MAX_NR_GENS], 0)
    return total


@noref
def inactive_size_of(nl, t, min_seq_t, max_seq):
    """The NR_INACTIVE_* compatibility counter of type t: every generation but the two youngest."""
    total = 0
    for seq in range(min_seq_t, max_seq - 1):
        total += nl[t * MAX_NR_GENS + seq % MAX_NR_GENS]
    return total


@noref
def inactive_reclaimable(nl, min_seq, max_seq, can_anon):
    """What set_initial_priority counts as reclaimable on one lruvec: its inactive file pages,
    and its inactive anon pages when anon can be reclaimed (can_reclaim_anon)."""
    n = inactive_size_of(nl, LRU_FILE, min_seq[LRU_FILE], max_seq)
    if can_anon:
        n += inactive_size_of(nl, LRU_ANON, min_seq[LRU_ANON], max_seq)
    return n


@njit(cache=True)
def _bit_length(x):
    n = 0
    while x > 0:
        x >>= 1
        n += 1
    return n


@njit(cache=True)
def initial_priority(reclaimable, nr_to_reclaim):
    """set_initial_priority: where (reclaimable >> priority) meets the goal, in [6, 12]."""
    priority = _bit_length(max(reclaimable, 0)) - 1 - _bit_length(nr_to_reclaim - 1)
    return min(max(priority, DEF_PRIORITY // 2), DEF_PRIORITY)


@njit(cache=True)
def should_run_aging_of(nl, min_seq, max_seq, swappiness, pre):
    """should_run_aging on the lruvec's logical sizes `nl`: (aging needed or better, pages in the
    evictable types). After the rework aging is due with MIN_NR_GENS generations of the oldest
    evictable type; before it (`pre`) with three, when the youngest holds more than half the
    pages or the oldest fewer than a quarter, and never with four."""
    emin = evictable_min_seq_of(min_seq, swappiness)
    if emin + MIN_NR_GENS > max_seq:
        return True, 0
    total = evictable_size_of(nl, min_seq, max_seq, swappiness)
    if not pre:
        return emin + MIN_NR_GENS == max_seq, total
    if emin + MIN_NR_GENS < max_seq:
        return False, total
    young = old = 0
    for t in range(2):
        if type_evictable(swappiness, t):
            young += max(nl[t * MAX_NR_GENS + max_seq % MAX_NR_GENS], 0)
            if max_seq - MIN_NR_GENS >= min_seq[t]:
                old += max(nl[t * MAX_NR_GENS + (max_seq - MIN_NR_GENS) % MAX_NR_GENS], 0)
    return young * MIN_NR_GENS > total or old * (MIN_NR_GENS + 2) < total, total


@njit(cache=True)
def nr_to_scan_of(nl, min_seq, max_seq, swappiness, priority, pre):
    """get_nr_to_scan up to its aging: the evictable pages >> priority, or -1 when
    try_to_inc_max_seq is due (should_run_aging, below DEF_PRIORITY)."""
    aging, total = should_run_aging_of(nl, min_seq, max_seq, swappiness, pre)
    if not aging or priority == DEF_PRIORITY:
        return total >> priority
    return -1


@njit(cache=True)
def abort_scan(root, reclaimed, goal, kswapd_high, free):
    """should_abort_scan: root reclaim stops at its goal (max(nr_to_reclaim, compact_gap)), and
    kswapd at order 0 once free pages pass `kswapd_high` (the high watermark + MIN_LRU_BATCH;
    -1 for the others)."""
    return root and (reclaimed >= goal or 0 <= kswapd_high < free)


@njit(cache=True)
def min_seq_candidates(nr, min_seq, max_seq, swappiness, pre):
    """What try_to_inc_min_seq would set min_seq to: past the physically empty oldest
    generations (`nr`: the lruvec's list sizes), anon and file kept within one generation of
    max_seq - 2 of each other. Before the rework (`pre`) anon's min_seq never passed file's
    (the file type is always evictable): with swap, anon stops at file's candidate, and file
    at anon's or its own."""
    out = min_seq.copy()
    for t in range(2):
        if not type_evictable(swappiness, t):
            continue
        while out[t] + MIN_NR_GENS <= max_seq:
            if nr[t * MAX_NR_GENS + out[t] % MAX_NR_GENS]:
                break
            out[t] += 1
    if pre:
        if swappiness != MIN_SWAPPINESS:
            out[LRU_ANON] = min(out[LRU_ANON], out[LRU_FILE])
            out[LRU_FILE] = max(out[LRU_ANON], min_seq[LRU_FILE])
        return out
    if MIN_SWAPPINESS < swappiness <= MAX_SWAPPINESS:
        s = max_seq - MIN_NR_GENS
        if out[LRU_ANON] > s and out[LRU_FILE] < s:
            out[LRU_ANON] = s
        elif out[LRU_FILE] > s and out[LRU_ANON] < s:
            out[LRU_FILE] = s
    return out


# ---- evict_folios: rules the Python path and the compiled round share, and the round ----------

# evict_folios' changes to scan_control (`rs`): nr_scanned, nr_reclaimed, nr.unqueued_dirty,
# nr.file_taken
RS_SCANNED, RS_RECLAIMED, RS_UNQUEUED, RS_FILE_TAKEN = range(4)
# what shrink_folio_list's rmap walk does with each young PTE (lru_gen_look_around): nothing
# (lookaround off), folio_update_gen (with a walk struct: kswapd, proactive), look_around_activate
LOOK_NONE, LOOK_UPDATE_GEN, LOOK_ACTIVATE = range(3)


@noref
def reset_ctrl_pos(ctrl, t):
    """reset_ctrl_pos with carryover for type t: fold the P term into the I term, halving."""
    avg_refaulted, avg_total, refaulted, evicted, protected = ctrl
    for k in range(MAX_NR_TIERS):
        avg_refaulted[t, k] = (avg_refaulted[t, k] + refaulted[t, k]) // 2
        avg_total[t, k] = (avg_total[t, k] + protected[t, k] + evicted[t, k]) // 2
        refaulted[t, k] = 0
        evicted[t, k] = 0
        protected[t, k] = 0


@noref
def inc_min_seq_to(ctrl, min_seq, cand, swappiness):
    """try_to_inc_min_seq with min_seq_candidates' `cand`: each evictable type whose min_seq
    moves has its PID position reset. Returns whether one moved."""
    success = False
    for t in range(2):
        if not type_evictable(swappiness, t) or cand[t] <= min_seq[t]:
            continue
        reset_ctrl_pos(ctrl, t)
        min_seq[t] = cand[t]
        success = True
    return success


@noref
def evictable_min_seq_of(min_seq, swappiness):
    """The oldest min_seq of the evictable types (evict_folios' and should_run_aging's)."""
    out = -1
    for t in range(2):
        if type_evictable(swappiness, t) and (out < 0 or min_seq[t] < out):
            out = min_seq[t]
    return out


@noref
def lru_gen_swappiness(may_swap, swap_free, mc, swap_max, swap_usage, mparent, swappiness):
    """get_swappiness: 0 without may_swap or with fewer than MIN_LRU_BATCH free swap slots for
    memcg `mc` (mem_cgroup_get_nr_swap_pages), else the memcg's (or the proactive) swappiness."""
    if not may_swap or mem_cgroup_nr_swap_pages(swap_free, mc, swap_max, swap_usage, mparent) < MIN_LRU_BATCH:
        return 0
    return swappiness


@njit(cache=True)
def scan_folios_lv(lids, lstamps, lohi, t, tier_idx, nr_to_scan, max_seq, min_seq, flags, lru_gen, lru_refs, flru,
                   fstamp, nr, nr_logical, row, clock, push, protected_t, census, pre, tailq):
    """scan_folios on the lruvec's lists (`lids`, `lstamps`: the eight lists' arrays, `lohi`
    their windows; the oldest list's lo is updated): nothing while type t has MIN_NR_GENS
    generations, else scan_folios_on the list of its oldest one. Returns (folios scanned, what
    scan_folios returns: 0 when it isolated none and stopped short of its batch, isolated
    folios, slots in `push`, folios in `tailq`)."""
    if max_seq - min_seq[t] + 1 == MIN_NR_GENS:
        return 0, 0, np.empty(0, dtype=np.int64), 0, 0
    scan_batch = scan_batch_of(nr_to_scan, pre)
    lru = t * MAX_NR_GENS + min_seq[t] % MAX_NR_GENS
    n, lohi[2 * lru], iso, npush, ntail = scan_folios_on(
        lids[lru], lstamps[lru], lohi[2 * lru], lohi[2 * lru + 1], scan_batch, lru, t, tier_idx, min_seq[t], flags,
        lru_gen, lru_refs, flru, fstamp, nr, nr_logical, row, clock, push, protected_t, census, pre, tailq)
    return n, (n if len(iso) or n == scan_batch else 0), iso, npush, ntail


@noref
def count_scan(kc, rs, t, n, niso, census):
    """scan_folios' counts for n folios scanned of type t, niso isolated: PGSCAN_* of the
    isolated, pgrefill of the sorted, pages_scanned; for file, sc->nr's taken (the isolated and
    the dirty ones sorted) and unqueued dirty (`census`: sort_and_isolate's)."""
    kc[K_PGSCAN] += niso
    kc[K_PGSCAN_FILE if t == LRU_FILE else K_PGSCAN_ANON] += niso
    kc[K_PGREFILL] += n - niso
    kc[K_SCANNED] += n
    if t == LRU_FILE:
        rs[RS_FILE_TAKEN] += niso + census[0]
        rs[RS_UNQUEUED] += census[1]


@njit(cache=True)
def _push_room(push, npush, need):
    """`push` (HookOut's slots) with room for `need` slots past its first npush: grown, the
    slots kept, when it lacks it."""
    if npush + need <= len(push[0]):
        return push
    m = 2 * (npush + need)
    grown = (np.empty(m, dtype=np.int64), np.empty(m, dtype=np.int64), np.empty(m, dtype=np.int64))
    for k in range(3):
        grown[k][:npush] = push[k][:npush]
    return grown


@njit(cache=True)
def _push_from(push, npush):
    """The free part of `push` past its first npush slots."""
    return push[0][npush:], push[1][npush:], push[2][npush:]


@njit(cache=True)
def _look_around(found, look, lk, row, swappiness, seqs, flags, ftype, lru_refs, flru, fstamp, lru_gen, fmemcg, nr, nl,
                 present, pyoung, clock, push, kc):
    """lru_gen_look_around on each young PTE shrink_folio_list's rmap walk found (`found`, in
    order: core.rmap.folio_referenced_lookaround): lookaround_clear's windows (`lk`: the PTE
    table's addresses, the VMAs, core.ptwalk.PteIndex, the PTEs' folios, the folios' nodes, the
    node tested or -1) over the types get_swappiness allows, then each young neighbour's folio
    through folio_update_gen (LOOK_UPDATE_GEN, lock-free) or look_around_activate
    (LOOK_ACTIVATE). Returns (slots in `push`, dense PMD tables for the Bloom filter)."""
    vaddr, pid, pmd, vma_keys, vma_bounds, rank, pte_keys, pte_order, ppage, fnid, nid = lk
    _, _, pages, walked, dense = lookaround_clear(found, vaddr, pid, pmd, vma_keys, vma_bounds, rank, pte_keys,
                                                  pte_order, present, pyoung, ppage, flags, flru, ftype, fmemcg, fnid,
                                                  row, nid, swappiness != MIN_SWAPPINESS,
                                                  swappiness <= MAX_SWAPPINESS)
    kc[K_PTES_WALKED] += walked
    npush = 0
    if len(pages) == 0:
        return npush, dense
    if look == LOOK_UPDATE_GEN:
        n, nanon = folio_update_gen(pages, seqs[row, 0] % MAX_NR_GENS, flags, lru_refs, lru_gen, ftype, nl[row], True,
                                    False, np.empty(len(pages), dtype=np.int64))
        for c in (nanon, n - nanon):  # each type's batch (MGLRU._update_gen)
            atomic, locks = lazy_cost(c)
            kc[K_ATOMIC_UPDATES] += atomic
            kc[K_LOCK_OPS] += locks
    else:
        npush, nact = look_around_activate(pages, row, seqs, flags, ftype, lru_refs, flru, fstamp, lru_gen, nr, nl,
                                           clock, push, False)
        kc[K_PGACTIVATE] += nact
        kc[K_LOCK_OPS] += nact  # folio_activate: one LRU-lock acquisition each
    return npush, dense


# what evict_round's try_to_shrink_lruvec loop stopped for: its end, try_to_inc_max_seq due
# (Python ages; the loop ends there), list slots for HookOut.apply (Python makes room, re-enters)
LOOP_DONE, LOOP_AGE, LOOP_ROOM = range(3)
# evict_round's `lc` for one evict_folios call (no loop)
ONE_ROUND = (-1, 0, 0, False, 0, 0)


@njit(cache=True)
def evict_round(lids, lstamps, lohi, ftab, lru_gen, lru_refs, ptab, lvt, nl, swtab, lk, row, nid, seqs, ctrl, usage,
                nodev, s, wb, swappiness, swap_ctl, kswapd, may_writepage, nr_to_scan, look, clock, push, kc, rs, lc):
    """evict_folios (after the rework) for the lruvec in `row` of node `nid`, as MGLRU's
    per-batch Python path runs it: isolate_folios (get_type_to_scan, get_tier_idx,
    scan_folios_lv on one type, then the other), try_to_inc_min_seq, then shrink_folio_list
    (_shrink_census, the rmap walk with lru_gen_look_around, set_refs_verdicts,
    core.vmscan.shrink_folio_list_tail, lru_gen_eviction's tokens, the folios freed), the
    survivors put back (evict_putback) and the clean unmapped ones retried once. `lids`,
    `lstamps`, `lohi`: the eight lists (scan_folios_lv); `ftab`, `ptab`, `lvt`, `swtab`: as
    core.kswapd.tables; `nl`: the logical sizes; `seqs[row]`: max_seq and min_seq (updated);
    `ctrl`: the PID counters; `usage`, `nodev`, `s`, `wb`: as core.kswapd.kswapd_balance's;
    `swap_ctl`: (may_swap, the memcg's swappiness) for get_swappiness at each
    shrink_folio_list; `lk`: _look_around's. List insertions go in `push` (HookOut's slots,
    grown as needed), then onto the lists (_push_lists: `lohi` updated), counters in `kc`
    (KSWAPD_COUNTS) and `rs` (RS_*).

    `lc`: ONE_ROUND (one evict_folios of `nr_to_scan`), or (priority, reclaimed, goal, root,
    kswapd_high, scanned) for try_to_shrink_lruvec's loop around it (shrink_lruvec_loop:
    get_nr_to_scan, evict_folios, should_abort_scan), its rounds in this one call: a call per
    round would take a reference to each of the ~80 arrays above twice. Returns (LOOP_*, what
    evict_folios returns or the loop's count of it, push, the slots in it left for
    HookOut.apply, the lookarounds' dense PMD tables)."""
    fstamp, flru, flags, ftype, pte_head, fshadow, fshadow_ws, fshadow_memcg, fever, fmemcg = ftab[:10]
    present, pyoung, pexec, nxt_of = ptab
    nr, parent = lvt[0], lvt[4]
    swap_usage, swap_max, mparent = swtab[:3]
    priority, reclaimed, goal, root, kswapd_high, total = lc
    loop = priority >= 0
    max_seq = seqs[row, 0]
    min_seq = seqs[row, 1:]
    census = np.zeros(2, dtype=np.int64)
    no_tail = np.empty((2, 0), dtype=np.int64)
    dense = np.empty(0, dtype=np.int64)
    while True:
        if loop:  # get_nr_to_scan
            nr_to_scan = nr_to_scan_of(nl[row], min_seq, max_seq, swappiness, priority, False)
            if nr_to_scan < 0:
                return LOOP_AGE, total, push, 0, dense
            if nr_to_scan == 0:
                return LOOP_DONE, total, push, 0, dense
        kc[K_LOCK_OPS] += 1
        npush = 0
        # isolate_folios
        t = get_type_to_scan(ctrl, swappiness)
        iso = np.empty(0, dtype=np.int64)
        scanned = 0
        for _ in range(int(type_evictable(swappiness, LRU_ANON)) + int(type_evictable(swappiness, LRU_FILE))):
            push = _push_room(push, npush, MAX_LRU_BATCH)
            census[:] = 0
            n, scanned, iso, k, _ = scan_folios_lv(lids, lstamps, lohi, t, get_tier_idx(ctrl, t, False), nr_to_scan,
                                                   max_seq, min_seq, flags, lru_gen, lru_refs, flru, fstamp, nr, nl,
                                                   row, clock, _push_from(push, npush), ctrl[4][t], census, False,
                                                   no_tail)
            npush += k
            if n:
                count_scan(kc, rs, t, n, len(iso), census)
            if scanned:
                break
            t = 1 - t
        scanned += int(inc_min_seq_to(ctrl, min_seq, min_seq_candidates(nr[row], min_seq, max_seq, swappiness, False),
                                      swappiness))
        if evictable_min_seq_of(min_seq, swappiness) + MIN_NR_GENS > max_seq:
            scanned = 0
        ids = iso
        skip_retry = False
        while len(ids):
            # shrink_folio_list
            k = len(ids)
            rs[RS_SCANNED] += k
            fl = flags[ids]
            if _clean_unmapped_file(ids, fl, ftype, pte_head):
                freed, keep = ids, ids[:0]  # no young PTE: set_refs_verdicts' RECLAIM for each
            else:
                out = np.zeros(k, dtype=np.int8)
                c8 = np.zeros(8, dtype=np.int64)
                pid = _shrink_census(ids, flags, ftype, kswapd, nodev[N_WRITEBACK] != 0, out, c8)
                verdict = np.full(k, -1, dtype=np.int8)
                if len(pid):
                    young, vm_exec, walked, checked, found = walk_referenced(pid, pte_head, present, pyoung, pexec,
                                                                             nxt_of)
                    kc[K_RMAP_WALKS] += walked
                    kc[K_PTES_CHECKED] += checked
                    if look != LOOK_NONE and len(found):
                        swp = lru_gen_swappiness(swap_ctl[0], s[SWAP_TOTAL] - s[SWAP_USED], row, swap_max, swap_usage,
                                                 mparent, swap_ctl[1])
                        push = _push_room(push, npush, len(found) * MIN_LRU_BATCH)
                        k2, d = _look_around(found, look, lk, row, swp, seqs, flags, ftype, lru_refs, flru, fstamp,
                                             lru_gen, fmemcg, nr, nl, present, pyoung, clock, _push_from(push, npush),
                                             kc)
                        npush += k2
                        if len(d):
                            dense = np.concatenate((dense, d))
                    _scatter_pending(out, set_refs_verdicts(pid, young, flags, lru_refs), verdict)
                freed, keep, _, _, _ = shrink_folio_list_tail(ids, out, verdict, fl, ftab, ptab, swtab, kswapd,
                                                              may_writepage, nodev, s, wb, c8, kc)
                rs[RS_UNQUEUED] += c8[1]
            nfree = len(freed)
            if nfree:  # __remove_mapping with lru_gen_eviction's shadows, then free
                evict_free(freed, eviction_tokens(freed, flags, ftype, lru_refs, min_seq, ctrl[3], False, nid), row,
                           flags, fshadow, fshadow_ws, fshadow_memcg, fever, usage, parent, nodev, kc)
            rs[RS_RECLAIMED] += nfree
            retry = keep
            if len(keep):
                push = _push_room(push, npush, len(keep))
                retry, k2, nput = evict_putback(keep, skip_retry, row, seqs, flags, ftype, lru_refs, flru, fstamp,
                                                lru_gen, nr, nl, clock, _push_from(push, npush),
                                                (present, pexec, nxt_of, pte_head), False)
                npush += k2
                if nput:
                    kc[K_LOCK_OPS] += 1
            kc[K_PGSTEAL] += nfree
            kc[K_PGSTEAL_FILE if t == LRU_FILE else K_PGSTEAL_ANON] += nfree
            if len(retry) == 0:
                break
            ids = retry
            rs[RS_SCANNED] -= len(ids)
            skip_retry = True
        npush = _push_lists(push, npush, lids, lstamps, lohi, row * nr.shape[1])
        if not loop:
            return LOOP_DONE, scanned, push, npush, dense
        total += scanned  # should_abort_scan and the loop's ends
        if not scanned or total >= nr_to_scan or abort_scan(root, reclaimed + rs[RS_RECLAIMED], goal, kswapd_high,
                                                           nodev[N_FREE]):
            return LOOP_DONE, total, push, npush, dense
        if npush:
            return LOOP_ROOM, total, push, npush, dense


@njit(cache=True)
def shrink_lruvec_loop(a, look, clock, push, kc, rs, priority, reclaimed, goal, root, kswapd_high, scanned):
    """try_to_shrink_lruvec's loop for one lruvec: get_nr_to_scan (nr_to_scan_of), evict_folios
    and should_abort_scan (abort_scan) until the budget is used, a round makes no progress or the
    goal is met (evict_round with its loop). `a`: evict_round's arguments before nr_to_scan,
    `look` ... `rs` after it; `reclaimed`: sc->nr_reclaimed at the call (evict_round adds to
    rs[RS_RECLAIMED]); `goal`, `root`, `kswapd_high`: abort_scan's; `scanned`: the loop's count
    so far (a re-entry). Returns (LOOP_*, scanned, push, its slots left for HookOut.apply, the
    lookarounds' dense PMD tables)."""
    return evict_round(*a, 0, look, clock, push, kc, rs, (priority, reclaimed, goal, root, kswapd_high, scanned))


@noref
def _push_lists(push, npush, lids, lstamps, lohi, base):
    """HookOut.apply of the first npush slots of `push` (lists named base + list, base: the
    lruvec's first) onto the lruvec's lists (push_slots), when they have the room. Returns the
    slots left for HookOut.apply: 0, or npush (nothing was pushed)."""
    for k in range(npush):
        push[1][k] -= base
    if push_slots(push, npush, lids, lstamps, lohi):
        return 0
    for k in range(npush):
        push[1][k] += base
    return npush


# ---- the hot path -----------------------------------------------------------------------------


@njit(cache=True)
def mglru_events(page, is_add, shadow, shadow_ws, fault, flags, ftype, flru, fstamp, flru_gen, flru_refs, fmemcg,
                 fshadow_memcg, multi, nr, nr_logical, seqs, refaulted, clock, stat, push, pre, nid):
    """MGLRU's hot path, one event after the other, each on its folio's lruvec (row: the memcg it
    is charged to; seqs[row] = max_seq, min_seq[anon], min_seq[file]): an ADD is lru_gen_refault
    (a shadow of this lruvec within MAX_NR_GENS generations of max_seq), lru_gen_in_fault's
    PG_active, then lru_gen_add_folio at the list head; an ACCESS is lru_gen_inc_refs. Returns
    the number of list insertions left in `push` (HookOut.apply). The events' folios are on node
    `nid`; lru_gen_refault ignores a shadow of another lruvec (another memcg, or another node: the
    folio came back elsewhere), and counts no refault for it: the core counted every shadow
    (workingset_refault's rule), so `stat` takes that count back.

    `pre` (Linux 6.1-6.13, before the December 2024 rework): a shadow is recent when its token's
    min_seq is the type's min_seq now (lru_gen_test_recent); every recent refault counts
    workingset_activate, and one in a page fault (or with refs >= 3) gets LRU_REFS full and
    PG_workingset (workingset_restore); an active add (a fault) goes to max_seq with LRU_REFS and
    PG_referenced cleared; lru_gen_inc_refs sets PG_referenced, then PG_workingset, then counts
    LRU_REFS."""
    npush = 0
    for j in range(len(page)):
        if j + PREFETCH_AHEAD < len(page):  # the fields the event ahead reads (an ADD's too: which
            h = page[j + PREFETCH_AHEAD]     # events are ADDs is random, a branch mispredicted)
            prefetch(flru_refs, h)
            prefetch(fmemcg, h)
            prefetch(ftype, h)
            prefetch(fstamp, h)
        g = page[j]
        if is_add[j]:
            row = np.int64(fmemcg[g])  # read here only: an ACCESS needs the flags and refs alone
            t = np.int64(ftype[g])
            max_seq = seqs[row, 0]
            token = shadow[j]
            if token >= 0:
                if (token & NODES_MASK) != nid or (multi and fshadow_memcg[g] != fmemcg[g]):
                    stat[row, 4 + t] -= 1  # workingset_refault: not this lruvec's
                    token = -1
                else:
                    token >>= NODES_SHIFT
            if pre:
                if token >= 0 and (token >> 2) == seqs[row, 1 + t]:
                    refs = (token & 3) + (1 if shadow_ws[j] else 0)
                    refaulted[row, t, 0 if refs == 0 else (1 if refs == 1 else (2 if refs <= 3 else 3))] += 1
                    stat[row, t] += 1  # workingset_activate
                    if fault[j] or refs >= LRU_REFS_MAX:
                        flru_refs[g] = LRU_REFS_MAX
                        flags[g] |= PG_workingset
                        stat[row, 2 + t] += 1  # workingset_restore
            elif token >= 0 and abs(max_seq - (token >> 2)) < MAX_NR_GENS:
                refs = (token & 3) + 1
                refaulted[row, t, tier_from_refs(refs, shadow_ws[j])] += 1
                if fault[j]:
                    stat[row, t] += 1  # workingset_activate
                if shadow_ws[j]:
                    stat[row, 2 + t] += 1  # workingset_restore
                    flags[g] |= PG_workingset
                else:
                    flru_refs[g] = refs - 1  # without PG_referenced this has no effect
            if fault[j]:  # folio_add_lru inside a page fault: lru_gen_in_fault
                flags[g] |= PG_active
            npush = lru_gen_add_folio(g, row, seqs, flags, ftype, flru_refs, flru, fstamp, flru_gen, nr, nr_logical,
                                      clock, push, npush, pre)
        else:  # lru_gen_inc_refs: flag updates only, no list movement
            fl = flags[g]
            if fl & PG_unevictable:
                continue
            if pre:
                if (fl & PG_referenced) == 0:
                    flags[g] = fl | PG_referenced
                elif (fl & PG_workingset) == 0:
                    flags[g] = fl | PG_workingset
                elif flru_refs[g] < LRU_REFS_MAX:
                    flru_refs[g] += 1
            elif (fl & PG_referenced) == 0:
                flags[g] = fl | PG_referenced
                flru_refs[g] = 0
            elif flru_refs[g] == LRU_REFS_MAX:
                flags[g] = fl | PG_workingset
            else:
                flru_refs[g] += 1
    return npush


@njit(cache=True)
def loop_bound(nl, nr, min_seq, max_seq, swappiness, priority):
    """A bound on the folios a try_to_shrink_lruvec loop starting now takes off the lists
    (nr_to_scan + scan_folios' batch: it stops once it has scanned nr_to_scan), when that loop surely
    runs to its end in shrink_lruvec_loop with nothing left to Python: no aging (get_nr_to_scan
    needs none now, and an evictable type at the oldest min_seq keeps its oldest generation:
    scan_folios runs out of a list only when it empties it) and the lruvec sizable after it
    (shrink_one rotates nothing) at the same swappiness (the caller's test: the swap slots the
    loop may take, one a folio, leave get_swappiness as it is); else -1. `nr`, `nl`: the
    lruvec's physical and logical sizes."""
    n = nr_to_scan_of(nl, min_seq, max_seq, swappiness, priority, False)
    if n < 0:
        return -1
    bound = n + scan_batch_of(n, False)
    emin = evictable_min_seq_of(min_seq, swappiness)
    for t in range(2):
        if type_evictable(swappiness, t) and min_seq[t] == emin \
                and nr[t * MAX_NR_GENS + min_seq[t] % MAX_NR_GENS] > bound:
            return bound if (evictable_size_of(nl, min_seq, max_seq, swappiness) - bound) >> priority else -1
    return -1


@njit(cache=True)
def lists_room(ids, stamps, lohi, need, fstamp):
    """The lruvec's eight lists' arrays, each with room for `need` slots past its head
    (core.kswapd.list_room)."""
    if lists_fit(ids, lohi, need):  # no list_room calls: each takes references to its arrays
        return ids, stamps
    i0, s0 = list_room(ids, stamps, lohi, 0, need, fstamp)
    i1, s1 = list_room(ids, stamps, lohi, 1, need, fstamp)
    i2, s2 = list_room(ids, stamps, lohi, 2, need, fstamp)
    i3, s3 = list_room(ids, stamps, lohi, 3, need, fstamp)
    i4, s4 = list_room(ids, stamps, lohi, 4, need, fstamp)
    i5, s5 = list_room(ids, stamps, lohi, 5, need, fstamp)
    i6, s6 = list_room(ids, stamps, lohi, 6, need, fstamp)
    i7, s7 = list_room(ids, stamps, lohi, 7, need, fstamp)
    return (i0, i1, i2, i3, i4, i5, i6, i7), (s0, s1, s2, s3, s4, s5, s6, s7)


@njit(cache=True)
def lru_gen_kswapd(ids, stamps, lohi, kt, usage, nodev, s, wb, swp, clock, kc, resume, gen):
    """A kswapd run under MGLRU compiled, pass by pass while each pass's try_to_shrink_lruvec
    loop surely runs compiled to its end (loop_bound): balance_pgdat's loop (kswapd_age_node's
    set_initial_priority, kswapd_shrink_node, balance_priority), lru_gen_shrink_node
    (set_initial_priority, progress counted from zero and resetting kswapd_failures),
    shrink_many from a random bin (bin_pos: the next of the memcg LRU's drawn bins) over the
    node's only lruvec (in the old generation: `kswapd_ok`, which also says evict_round applies),
    shrink_one and try_to_shrink_lruvec (shrink_lruvec_loop, then wakeup_flusher_threads).
    `gen`: the lruvec's logical sizes, seqs (max_seq, min_seq[anon], min_seq[file]), the PID
    counters, kswapd_ok, the bins and bin_pos, evict_round's `lk`, `look`, its `push`, the
    folio fields lru_gen and lru_refs, and a mask of the PMD tables lookaround found dense (for
    Python's Bloom filter); the rest as core.kswapd.kswapd_balance's. Returns the pages
    reclaimed (-1 when the first pass does not qualify: nothing changed; -3 when a later one
    does not: `resume` then holds (priority, reclaimed) for balance_pgdat to go on from; -2 when
    a loop stopped short of its end: a bug) and the lists' arrays (given room: lists_room)."""
    nl, seqs, ctrl, kswapd_ok, bins, bin_pos, lk, look, push, lru_gen, lru_refs, dense_mask = gen
    ftab, ptab, lvt, swtab, row = kt
    nr = lvt[0]
    swap_usage, swap_max, mparent = swtab[:3]
    high = nodev[N_HIGH]
    if not kswapd_ok:
        return -1, ids, stamps
    max_seq, min_seq = seqs[row, 0], seqs[row, 1:]
    priority = DEF_PRIORITY
    reclaimed = 0
    nr_to_reclaim = 0
    passes = 0
    rs = np.zeros(4, dtype=np.int64)
    swap_ctl = np.array([1, swp], dtype=np.int64)  # evict_round's (may_swap, the memcg's swappiness)
    while nodev[N_FREE] <= high:  # pgdat_balanced
        swap_free = s[SWAP_TOTAL] - s[SWAP_USED]
        reclaimable = inactive_reclaimable(nl[row], min_seq, max_seq, swap_free > 0)  # can_reclaim_anon
        # kswapd_age_node's set_initial_priority (nr_to_reclaim: the last pass's), then
        # kswapd_shrink_node's goal and lru_gen_shrink_node's set_initial_priority
        for goal in (nr_to_reclaim, max(high, SWAP_CLUSTER_MAX)):
            if priority == DEF_PRIORITY and goal >= MIN_LRU_BATCH:
                priority = initial_priority(reclaimable, goal)
        nr_to_reclaim = max(high, SWAP_CLUSTER_MAX)
        swappiness = lru_gen_swappiness(1, swap_free, row, swap_max, swap_usage, mparent, swp)  # get_swappiness
        bound = loop_bound(nl[row], nr[row], min_seq, max_seq, swappiness, priority)
        if bound >= 0 and lru_gen_swappiness(1, swap_free - bound, row, swap_max, swap_usage, mparent,
                                             swp) != swappiness:
            bound = -1  # the loop's swap slots may change get_swappiness before shrink_one's sizable test
        if bound < 0 or bin_pos[0] >= len(bins):  # aging, a rotation of the lruvec or bins to draw: Python
            if not passes:
                return -1, ids, stamps
            resume[0], resume[1] = priority, reclaimed
            return -3, ids, stamps
        ids, stamps = lists_room(ids, stamps, lohi, bound, ftab[0])
        passes += 1
        kc[K_BULK] += 1
        bin_pos[0] += 1  # shrink_many's first bin
        rs[:] = 0
        # shrink_lruvec_loop, its arguments not gathered in a tuple (one reference to each array fewer)
        status, _, push, npush, dense = evict_round(ids, stamps, lohi, ftab, lru_gen, lru_refs, ptab, lvt, nl, swtab,
                                                    lk, row, 0, seqs, ctrl, usage, nodev, s, wb, swappiness, swap_ctl,
                                                    True, True, 0, look, clock, push, kc, rs,
                                                    (priority, 0, max(nr_to_reclaim, 2), True, high + MIN_LRU_BATCH, 0))
        if status != LOOP_DONE or npush:
            return -2, ids, stamps
        for d in dense:
            dense_mask[d] = True
        if rs[RS_UNQUEUED] and rs[RS_UNQUEUED] == rs[RS_FILE_TAKEN]:  # wakeup_flusher_threads
            wb[WB_REQUESTED] = 1
        got = rs[RS_RECLAIMED]
        if got:  # lru_gen_shrink_node: progress resets kswapd_failures
            nodev[N_FAILURES] = 0
        reclaimed += got
        priority = balance_priority(priority, rs[RS_SCANNED], nr_to_reclaim, got)
        if priority < 1:
            break
    kswapd_sleep_flags(nodev, reclaimed)
    return reclaimed, ids, stamps


@njit(cache=True)
def mglru_segments(head, tail, ev, s, usage, i, granted, skip_used, sampled, bg, own, ids, stamps, lohi, kt, nodev, wb,
                   wa_base, refaults, swp, clock, batches, kc, resume, on):
    """MGLRU's compiled driver (ReclaimOps.segment_driver; engine.drive_compiled has the
    arguments and the answer): stretches of the chunk (driver_stretch), their events
    (mglru_events) and list insertions, and each kswapd wake that lru_gen_kswapd can run,
    until a stop it leaves to the engine: a wake it cannot run (WAKE_NO), or one it stopped
    between two passes (WAKE_PART: `resume` holds where balance_pgdat goes on). At a watermark
    stop the flusher runs first (core.kswapd.driver_flush, `on` its buffer; lru_gen_rotate)."""
    evt, gen = own
    fstamp, flru, flags, ftype = kt[0][:4]
    nr, row, nl, seqs, lru_gen = kt[2][0], kt[4], gen[0], gen[1], gen[9]
    push = evt[15]
    why = DONE
    budget = np.empty(1, dtype=np.int64)  # driver_stretch's allocation budget
    while i < len(head[0]):
        i, why, ne, granted, skip_used = driver_stretch(head, tail, s, nodev, i, granted, skip_used, budget)
        npush = mglru_events(ev[0][:ne], ev[1][:ne], ev[2][:ne], ev[3][:ne], ev[5][:ne], *evt)
        if not push_slots(push, npush, ids, stamps, lohi):
            return i, why, granted, npush, WAKE_ROOM, ids, stamps
        if why == DONE:
            continue
        if why != STOP_WMARK:
            return i, why, granted, 0, WAKE_NO, ids, stamps
        k = driver_flush(bg, s, wb, flags, ftype, flru, on, kc)  # engine._make_room's flusher
        if k:  # MGLRU.rotate_reclaimable
            ids, stamps = lru_gen_rotate(on[:k], ids, stamps, lohi, flags, ftype, flru, fstamp, lru_gen, nr[row], nl[row],
                                         seqs, row, clock, False)  # pre False: no driver pre-rework (segment_driver)
        if not wake_due(why, s, nodev):
            return i, why, granted, 0, WAKE_NO, ids, stamps
        nodev[N_FREE] = s[FREE]
        got, ids, stamps = lru_gen_kswapd(ids, stamps, lohi, kt, usage, nodev, s, wb, swp, clock, kc, resume, gen)
        if got == -1:
            return i, why, granted, 0, WAKE_NO, ids, stamps
        if got == -3:  # counted as a wake here; the engine finishes the run (balance_pgdat's resume)
            wake_done(0, sampled, s, nodev, kc)
            return i, why, granted, 0, WAKE_PART, ids, stamps
        done = wake_done(got, sampled, s, nodev, kc)
        if done != WAKE_DONE:
            return i, why, granted, 0, done, ids, stamps
        granted = True
    return i, why, granted, 0, WAKE_NO, ids, stamps


def _look_tables(sim, node) -> tuple:
    """_look_around's `lk` for reclaim on `node`: the PTEs' addresses, the VMAs, the PTE index,
    the PTEs' folios, the folios' nodes and the node lookaround tests (-1 with one node: any)."""
    return lookaround_tables(sim) + (sim.ptes.page, sim.folios.nid,
                                     node.nid if len(sim.nodes) > 1 else -1)  # (core.ptwalk._eligibility's node)


class _DriverOut:
    """The compiled driver's HookOut (engine.drive_compiled sets npush and calls apply), and
    `after`: what its kswapd runs leave for the policy's Python state."""

    def __init__(self, out: HookOut, after):
        self.out, self.after, self.npush = out, after, 0

    def apply(self) -> None:
        self.out.npush = self.npush
        self.out.apply()
        self.after()


class MemcgLru:
    """The per-node memcg LRU of root reclaim (`struct lru_gen_memcg`, mm/vmscan.c):
    MEMCG_NR_GENS generations x MEMCG_NR_BINS bins, each a FIFO of lruvecs; `seq` names the old
    generation. Bins are chosen at random (get_random_u32_below) from a generator seeded per
    node, so both drivers, which reach the same reclaim points, draw the same bins."""

    def __init__(self, seed: int = 0):
        self.seq = 0
        self.fifo = [[[] for _ in range(MEMCG_NR_BINS)] for _ in range(MEMCG_NR_GENS)]
        self.nr_memcgs = [0] * MEMCG_NR_GENS
        self.rng = np.random.Generator(np.random.PCG64(seed))
        # drawn 1024 at a time; bin_pos[0]: the next one (compiled code draws from them too)
        self.bins = np.zeros(1024, dtype=np.int64)
        self.bin_pos = np.array([len(self.bins)], dtype=np.int64)

    def random_bin(self) -> int:
        """get_random_u32_below(MEMCG_NR_BINS)."""
        k = int(self.bin_pos[0])
        if k == len(self.bins):
            self.bins[:] = self.rng.integers(MEMCG_NR_BINS, size=len(self.bins))
            k = 0
        self.bin_pos[0] = k + 1
        return int(self.bins[k])

    def online(self, lruvec) -> None:
        """lru_gen_online_memcg: the tail of a random bin of the old generation."""
        gen = self.seq % MEMCG_NR_GENS
        lruvec.priv["memcg_gen"] = gen
        lruvec.priv["memcg_seg"] = 0
        self.fifo[gen][self.random_bin()].append(lruvec)
        self.nr_memcgs[gen] += 1

    def rotate(self, lruvec, op: int) -> None:
        """lru_gen_rotate_memcg: HEAD/TAIL stay in the generation (segment flag set), OLD/YOUNG
        move to the old/young generation; HEAD and OLD go to the head of a random bin, the others
        to its tail. An emptied old generation advances seq."""
        b = self.random_bin()
        old = new = lruvec.priv["memcg_gen"]
        seg = 0
        if op == MEMCG_LRU_HEAD:
            seg = MEMCG_LRU_HEAD
        elif op == MEMCG_LRU_TAIL:
            seg = MEMCG_LRU_TAIL
        elif op == MEMCG_LRU_OLD:
            new = self.seq % MEMCG_NR_GENS
        elif op == MEMCG_LRU_YOUNG:
            new = (self.seq + 1) % MEMCG_NR_GENS
        lruvec.priv["memcg_seg"] = seg
        lruvec.priv["memcg_gen"] = new
        for bin_ in self.fifo[old]:
            if any(x is lruvec for x in bin_):
                bin_.remove(lruvec)
                break
        if op in (MEMCG_LRU_HEAD, MEMCG_LRU_OLD):
            self.fifo[new][b].insert(0, lruvec)
        else:
            self.fifo[new][b].append(lruvec)
        self.nr_memcgs[old] -= 1
        self.nr_memcgs[new] += 1
        if not self.nr_memcgs[old] and old == self.seq % MEMCG_NR_GENS:
            self.seq += 1


def lru_gen_from_seq(seq: int) -> int:
    return seq % MAX_NR_GENS


# per-lruvec counters mglru_events keeps (HookOut.stat columns)
_EVENT_COUNTERS = ("workingset_activate_anon", "workingset_activate_file", "workingset_restore_anon",
                   "workingset_restore_file", "workingset_refault_anon", "workingset_refault_file")


@functools.cache
def evictable_types(swappiness: int) -> tuple[int, ...]:
    """for_each_evictable_type (type_evictable)."""
    return tuple(t for t in (LRU_ANON, LRU_FILE) if type_evictable(swappiness, t))


class LruGen:
    """struct lru_gen_folio (include/linux/mmzone.h) plus the mm_state sequence and the Bloom filters."""

    def __init__(self, now: float):
        self.max_seq = MAX_NR_GENS - 1
        self.min_seq = [0, 0]
        self.timestamps = [now] * MAX_NR_GENS
        self.mm_seq = MAX_NR_GENS - 2  # lru_gen_mm_state.seq
        # PID controller: [type][tier] (NR_HIST_GENS = 1)
        self.avg_refaulted = np.zeros((2, MAX_NR_TIERS), dtype=np.int64)
        self.avg_total = np.zeros((2, MAX_NR_TIERS), dtype=np.int64)
        self.refaulted = np.zeros((2, MAX_NR_TIERS), dtype=np.int64)
        self.evicted = np.zeros((2, MAX_NR_TIERS), dtype=np.int64)
        self.protected = np.zeros((2, MAX_NR_TIERS), dtype=np.int64)
        self.bloom = BloomFilters()
        self.walks = 0

    @property
    def ctrl(self) -> tuple:
        """The PID controller's counters as the compiled rules take them."""
        return self.avg_refaulted, self.avg_total, self.refaulted, self.evicted, self.protected

    def nr_gens(self, t: int) -> int:
        return self.max_seq - self.min_seq[t] + 1

    def evictable_min_seq(self, swappiness: int) -> int:
        return int(evictable_min_seq_of(np.asarray(self.min_seq, dtype=np.int64), swappiness))


def positive_ctrl_err(sp, pv) -> bool:
    """positive_ctrl_err on two control positions (refaulted, total, gain)."""
    return ctrl_err_ok(sp.refaulted, sp.total, sp.gain, pv.refaulted, pv.total, pv.gain)


# the hooks evict_round has written in: a subclass (a reclaim_ext plug-in) that overrides one
# of them takes evict_folios' per-step path
_EVICT_HOOKS = ("isolate_folios", "scan_folios", "references", "rmap_look", "eviction_token", "eviction_lruvec",
                "_putback", "_update_gen", "_activate", "get_swappiness", "try_to_inc_min_seq", "_min_seq_candidates",
                "get_type_to_scan", "get_tier_idx", "_reset_ctrl_pos")


# and the ones shrink_lruvec_loop has: a subclass that overrides one takes _shrink_loop's per-step loop
_LOOP_HOOKS = ("get_nr_to_scan", "should_run_aging", "evict_folios", "_evict_round", "should_abort_scan")


@functools.cache
def _own_hooks(cls, hooks: tuple = _EVICT_HOOKS) -> bool:
    """Whether class `cls` has MGLRU's own `hooks`."""
    return all(getattr(cls, h) is getattr(MGLRU, h) for h in hooks)


class MGLRU(BatchedEvents):
    """Linux's multi-generational LRU (6.14 and later) on the shared reclaim core."""

    name = "mglru"
    nr_classes = MAX_NR_GENS
    trusted = True
    multi_lruvec_events = True  # access_events applies each event on its folio's lruvec
    supported_mechanisms = ACCESS_MECHANISMS
    default_mechanisms = ACCESS_MECHANISMS
    # `reclaim-ext ablate`: each mechanism removed on its own
    ablation_variants = tuple("-" + m for m in ACCESS_MECHANISMS)
    # The rules of Linux 6.1-6.13 (MGLRU612), before Yu Zhao's December 2024 rework
    # ("mm/mglru: rework aging feedback / type selection / refault detection / workingset
    # protection", merged for 6.14); False: the reworked rules (docs/kernel-reclaim reference).
    pre_rework = False

    def __init__(self, mechanisms=None, min_ttl_ms: float = 0):
        super().__init__(mechanisms)
        self.min_ttl_ms = min_ttl_ms

    # ---- helpers --------------------------------------------------------------------------------

    @staticmethod
    def lrugen(lruvec) -> LruGen:
        return lruvec.priv["lrugen"]

    def init_lruvec(self, sim, lruvec) -> None:
        if not hasattr(sim.folios, "lru_refs"):
            sim.folios.add_field("lru_refs", np.uint8, 0)  # LRU_REFS
        lockfree.init(sim, lruvec)
        lruvec.priv["lrugen"] = LruGen(sim.now_ms())
        if self.uses("memcg_lru"):
            self.memcg_lru(lruvec.node).online(lruvec)

    @staticmethod
    def memcg_lru(node) -> MemcgLru:
        """The node's memcg LRU (pgdat->memcg_lru)."""
        lru = node.priv.get("memcg_lru")
        if lru is None:
            lru = node.priv["memcg_lru"] = MemcgLru(seed=node.nid)
        return lru

    def get_swappiness(self, sim, lruvec, sc: ScanControl) -> int:
        """get_swappiness (lru_gen_swappiness) for the lruvec's memcg."""
        return int(lru_gen_swappiness(sc.may_swap, sim.swap.free, lruvec.memcg.id, sim._swap_max, sim.swap_usage,
                                      sim._mparent, vm_swappiness(sim, lruvec, sc)))

    def _add(self, sim, lruvec, ids: np.ndarray) -> None:
        """lru_gen_add_folio for folios on no list, in order, at the list heads
        (lru_gen_add_folios; at the tails when reclaiming: lru_gen_rotate)."""
        if len(ids) == 0:
            return
        out = HookOut.get(sim, (), len(ids), lruvec.node)
        out.npush = lru_gen_add_folios(np.asarray(ids, dtype=np.int64), *self._lists(sim, lruvec), out.push,
                                       self.pre_rework)
        out.apply()

    def _lists(self, sim, lruvec) -> tuple:
        """What lru_gen_add_folio takes before `push`: the lruvec's row and seqs (in that row),
        the folio fields, the list sizes and the stamp clock."""
        f, lg, table = sim.folios, self.lrugen(lruvec), lruvec.table
        seqs = np.empty((lruvec.row + 1, 3), dtype=np.int64)
        seqs[lruvec.row] = lg.max_seq, lg.min_seq[LRU_ANON], lg.min_seq[LRU_FILE]
        return (lruvec.row, seqs, f.flags, f.type, f.lru_refs, f.lru, f.stamp, f.lru_gen, table.nr, table.nr_logical,
                sim._stamp_clock)

    # ---- workingset -----------------------------------------------------------------------------

    def eviction_token(self, sim, lruvec, ids):
        """lru_gen_eviction (eviction_tokens): counts evicted."""
        f = sim.folios
        lg = self.lrugen(lruvec)
        return eviction_tokens(ids, f.flags, f.type, f.lru_refs, np.array(lg.min_seq, dtype=np.int64), lg.evicted,
                               self.pre_rework, lruvec.node.nid)

    # ---- hot path: mglru_events (compiled, above) for one event or a whole stretch -----------

    def apply_events(self, sim, lruvec, ev: AccessEvents) -> None:
        """mglru_events over events in order, each on its folio's lruvec on lruvec's node
        (multi_lruvec_events)."""
        f = sim.folios
        nid = lruvec.node.nid
        lgs = [m.lruvecs[nid].priv["lrugen"] for m in sim._memcg_list]
        seqs = np.array([(lg.max_seq, lg.min_seq[LRU_ANON], lg.min_seq[LRU_FILE]) for lg in lgs], dtype=np.int64)
        refaulted = np.zeros((len(lgs), 2, MAX_NR_TIERS), dtype=np.int64)
        t = lruvec.table
        out = HookOut.get(sim, _EVENT_COUNTERS, len(ev.page), lruvec.node)
        out.npush = mglru_events(ev.page, ev.is_add, ev.shadow, ev.shadow_ws, ev.fault, f.flags, f.type, f.lru, f.stamp,
                                 f.lru_gen, f.lru_refs, f.memcg, f.shadow_memcg, sim.multi, t.nr, t.nr_logical, seqs,
                                 refaulted, sim._stamp_clock, out.stat, out.push, self.pre_rework, nid)
        if refaulted.any():
            for lg, r in zip(lgs, refaulted):
                lg.refaulted += r
        if sim.multi or len(sim.nodes) > 1:  # only then can a shadow be another lruvec's
            sim.shadows_dropped -= out.stat[:, 4:6].sum(axis=0)  # the refaults taken back
        out.apply()

    def segment_driver(self, sim, slots):
        """mglru_segments and its own arguments (ReclaimOps.segment_driver), for MGLRU after the
        rework without min_ttl_ms (lru_gen_age_node's check runs in Python). Its kswapd part,
        lru_gen_kswapd (lru_gen_shrink_node's path), runs a wake only while the lruvec is in the
        memcg LRU's old generation and try_to_shrink_lruvec's loop is compiled (loop_compiled);
        else (as without the memcg LRU) each wake goes back to the engine's balance_pgdat."""
        if self.pre_rework or self.min_ttl_ms:
            return None
        f = sim.folios
        t = sim.lruvec_table
        lv = sim.root_lruvec(sim.node)
        lg = self.lrugen(lv)
        mlru = self.memcg_lru(sim.node)
        out = HookOut.get(sim, _EVENT_COUNTERS, slots)
        look = LOOK_UPDATE_GEN if self.uses("lookaround") else LOOK_NONE  # kswapd has a walk struct
        ksc = ScanControl(nr_to_reclaim=0, kswapd=True)
        state = {}
        push = tuple(np.empty(2 * MAX_LRU_BATCH, dtype=np.int64) for _ in range(3))  # evict_round's scratch slots

        # the seqs, the memcg LRU's generation and the PTE index are Python's: taken at each call
        def own():
            seqs = state["seqs"] = np.array([[lg.max_seq, lg.min_seq[LRU_ANON], lg.min_seq[LRU_FILE]]], dtype=np.int64)
            dense = state["dense"] = np.zeros(sim.mm.pmds.count, dtype=np.bool_)
            evt = (f.flags, f.type, f.lru, f.stamp, f.lru_gen, f.lru_refs, f.memcg, f.shadow_memcg, False, t.nr,
                   t.nr_logical, seqs, lg.refaulted.reshape(1, 2, MAX_NR_TIERS), sim._stamp_clock, out.stat, out.push,
                   False, 0)  # (the compiled driver runs on one node)
            ok = self.uses("memcg_lru") and lv.priv["memcg_gen"] == mlru.seq % MEMCG_NR_GENS and \
                self.loop_compiled(sim, lv, ksc)
            return evt, (t.nr_logical, seqs, lg.ctrl, ok, mlru.bins, mlru.bin_pos, _look_tables(sim, sim.node), look,
                         push, f.lru_gen, f.lru_refs, dense)

        def after():
            lg.min_seq[:] = state["seqs"][0, 1:].tolist()
            self._update_bloom(sim, lg, np.flatnonzero(state["dense"]))

        return mglru_segments, own, _DriverOut(out, after)

    # ---- access detection through page tables ----------------------------------------------------

    def _update_gen(self, sim, lruvec, ids: np.ndarray) -> None:
        """folio_update_gen (compiled) for each young PTE the walk (or lookaround with a walk
        struct) cleared, in order; without the lockfree mechanism the promoted folios are moved
        (per type, in folio order) through the LRU lock instead."""
        if len(ids) == 0:
            return
        f = sim.folios
        lazy = self.uses("lockfree")
        gen = lru_gen_from_seq(self.lrugen(lruvec).max_seq)
        out = np.empty(len(ids), dtype=np.int64)
        n, nanon = folio_update_gen(ids, gen, f.flags, f.lru_refs, f.lru_gen, f.type, lruvec.nr_logical.a, lazy,
                                    self.pre_rework, out)
        if lazy:
            lockfree.count_lazy(sim, nanon)
            lockfree.count_lazy(sim, n - nanon)
            return
        p = np.unique(out[:n])
        t = f.type[p]
        for typ in (LRU_ANON, LRU_FILE):
            lockfree.promote(sim, lruvec, p[t == typ], typ * MAX_NR_GENS + gen, lazy=False)

    def _activate(self, sim, lruvec, ids: np.ndarray) -> None:
        """look_around_activate (lookaround without a walk struct) and its counters: one
        LRU-lock acquisition per folio activated (folio_activate's per-CPU batch)."""
        out = HookOut.get(sim, (), len(ids), lruvec.node)
        out.npush, nact = look_around_activate(np.asarray(ids, dtype=np.int64), *self._lists(sim, lruvec), out.push,
                                               self.pre_rework)
        out.apply()
        if nact:
            sim.vm["pgactivate"] += nact
            sim.cost["lru_lock_ops"] += nact

    def rmap_look(self, sim, lruvec, sc):
        """lru_gen_look_around on every young PTE of shrink_folio_list's rmap walk."""
        if not self.uses("lookaround"):
            return None
        lg = self.lrugen(lruvec)
        swp = self.get_swappiness(sim, lruvec, sc)
        has_walk = sc.kswapd or sc.proactive  # set_mm_walk(pgdat, sc->proactive)
        on_young = (lambda ids: self._update_gen(sim, lruvec, ids)) if has_walk else \
            (lambda ids: self._activate(sim, lruvec, ids))
        bloom = lg.bloom if self.uses("bloom") and self.uses("ptwalk") else None
        anon_ok = swp != MIN_SWAPPINESS
        file_ok = swp <= MAX_SWAPPINESS

        def look(ptes: np.ndarray) -> None:
            look_around_batch(sim, lruvec, ptes, on_young, bloom=bloom, seq=lg.max_seq, anon_ok=anon_ok,
                              file_ok=file_ok)

        return look

    def references(self, sim, lruvec, ids, young, vm_exec, sc):
        """folio_check_references with MGLRU: no young PTE -> RECLAIM (PG_referenced is not
        consulted), else ACTIVATE if lru_gen_set_refs promotes, KEEP on a first sighting."""
        f = sim.folios
        ids = np.asarray(ids, dtype=np.int64)
        if not self.pre_rework:
            return set_refs_verdicts(ids, young, f.flags, f.lru_refs)
        v = np.full(len(ids), FOLIOREF_RECLAIM, dtype=np.int8)
        y = young > 0
        # before the rework: "folio_update_gen() tried to promote this page?" (a mapped folio
        # given PG_referenced since its isolation is kept), then the classic verdict:
        # folio_test_clear_referenced; a young PTE sets PG_referenced and activates with a
        # second reference (PG_referenced, more than one young PTE, or an executable file)
        fl = f.flags[ids]
        tried = ((fl & PG_referenced) != 0) & folio_mapped(sim, ids)
        if y.any():  # the young ones: the core's folio_check_references
            v[y] = folio_check_references(ids[y], young[y], np.asarray(vm_exec, dtype=bool)[y], f.flags, f.type)
        n = ~y
        f.flags[ids[n]] = np.where(tried[n], fl[n] | _U16(PG_referenced), fl[n] & ~_U16(PG_referenced))
        v[tried] = FOLIOREF_KEEP
        return v

    # ---- aging -----------------------------------------------------------------------------------

    def _reset_ctrl_pos(self, lg: LruGen, t: int) -> None:
        reset_ctrl_pos(lg.ctrl, t)

    def inc_min_seq(self, sim, lruvec, t: int, swappiness: int) -> None:
        """inc_min_seq: an evictable type's oldest generation is emptied into the next one (or the
        folios' promoted generations), appended at the tail; then min_seq advances."""
        lg = self.lrugen(lruvec)
        if t in evictable_types(swappiness):
            f = sim.folios
            lru = t * MAX_NR_GENS + lru_gen_from_seq(lg.min_seq[t])
            ids = lruvec.isolate_tail(f, lru, lruvec.nr[lru])
            if len(ids):
                logical = f.lru_gen[ids].astype(np.int64)
                lockfree.take(sim, lruvec, ids)
                new = inc_min_seq_folios(ids, logical, t, lg.min_seq[t], f.flags, f.lru_refs, lg.protected[t],
                                         self.pre_rework)
                for lst in np.unique(new).tolist():  # list_move_tail one by one: the last is oldest
                    lockfree.add(sim, lruvec, ids[new == lst], lst, tail=True)
                sim.cost["lru_lock_ops"] += -(-len(ids) // MAX_LRU_BATCH)
        self._reset_ctrl_pos(lg, t)
        lg.min_seq[t] += 1

    def inc_max_seq(self, sim, lruvec, seq: int, swappiness: int) -> bool:
        """inc_max_seq: make room (a type with four generations loses its oldest), then open a new
        youngest generation stamped now."""
        lg = self.lrugen(lruvec)
        if seq != lg.max_seq:
            return False
        sim.cost["lru_lock_ops"] += 1
        for t in (LRU_ANON, LRU_FILE):
            if lg.nr_gens(t) == MAX_NR_GENS:
                self.inc_min_seq(sim, lruvec, t, swappiness)
        lg.timestamps[lru_gen_from_seq(lg.max_seq + 1)] = sim.now_ms()
        lg.max_seq += 1
        return True

    def try_to_inc_max_seq(self, sim, lruvec, seq: int, swappiness: int, force_scan: bool = False) -> bool:
        """try_to_inc_max_seq: one walker here, so each call finishes a round: walk the page tables
        (ptwalk on) promoting young folios to gen(max_seq), then inc_max_seq."""
        lg = self.lrugen(lruvec)
        if seq <= lg.mm_seq:
            return False
        if self.uses("ptwalk"):
            lg.walks += 1
            walk_mm(sim, lruvec, seq, lambda ids: self._update_gen(sim, lruvec, ids),
                    bloom=lg.bloom if self.uses("bloom") else None, use_pmd_young=self.uses("pmd_young"),
                    anon_ok=swappiness != MIN_SWAPPINESS, file_ok=swappiness <= MAX_SWAPPINESS,
                    force_scan=force_scan, state=lg.bloom.walk_state)
        lg.mm_seq += 1  # iterate_mm_list(_nowalk): the round is over
        return self.inc_max_seq(sim, lruvec, seq, swappiness)

    def should_run_aging(self, lruvec, swappiness: int) -> tuple[bool, int]:
        """should_run_aging (should_run_aging_of): (aging needed or better, pages in the evictable types)."""
        lg = self.lrugen(lruvec)
        aging, total = should_run_aging_of(lruvec.nr_logical.a, np.asarray(lg.min_seq, dtype=np.int64), lg.max_seq,
                                           swappiness, self.pre_rework)
        return bool(aging), int(total)

    def evictable_size(self, lruvec, swappiness: int) -> int:
        """evictable_size_of the lruvec."""
        lg = self.lrugen(lruvec)
        return int(evictable_size_of(lruvec.nr_logical.a, np.asarray(lg.min_seq, dtype=np.int64), lg.max_seq,
                                     swappiness))

    # ---- eviction --------------------------------------------------------------------------------

    def get_type_to_scan(self, lg: LruGen, swappiness: int) -> int:
        return get_type_to_scan(lg.ctrl, swappiness)

    def get_tier_idx(self, lg: LruGen, t: int) -> int:
        """Tiers above the returned index are protected (gain 2:3 leaves a 50 % margin)."""
        return get_tier_idx(lg.ctrl, t, self.pre_rework)

    def scan_folios(self, sim, lruvec, sc, t: int, tier_idx: int, nr_to_scan: int) -> tuple[int, np.ndarray]:
        """scan_folios (scan_folios_lv) on the oldest generation of type t, and its counters
        (count_scan). Returns (scanned, isolated ids in isolation order)."""
        lg = self.lrugen(lruvec)
        f, table, lists = sim.folios, lruvec.table, lruvec.lists
        lids, lstamps, lohi = get_lists(lists)
        out = HookOut.get(sim, (), MAX_LRU_BATCH, lruvec.node)
        census = np.zeros(2, dtype=np.int64)
        tailq = np.empty((2, MAX_LRU_BATCH if self.pre_rework else 0), dtype=np.int64)
        n, scanned, iso, out.npush, ntail = scan_folios_lv(
            lids, lstamps, lohi, t, tier_idx, nr_to_scan,
            lg.max_seq, np.asarray(lg.min_seq, dtype=np.int64), f.flags, f.lru_gen, f.lru_refs, f.lru, f.stamp,
            table.nr, table.nr_logical, lruvec.row, sim._stamp_clock, out.push, lg.protected[t], census,
            self.pre_rework, tailq)
        if n == 0:
            return 0, iso
        for k, fl in enumerate(lists):
            fl.lo = int(lohi[2 * k])
        out.apply()
        if ntail:  # list_move_tail, one after the other: the last is the oldest
            lockfree.add(sim, lruvec, tailq[0, :ntail], tailq[1, :ntail], tail=True)
        kc, rs = self._counts(sim)
        count_scan(kc, rs, t, n, len(iso), census)
        self._flush(sim, lruvec, sc, kc, rs)
        return scanned, iso

    @staticmethod
    def _counts(sim) -> tuple[np.ndarray, np.ndarray]:
        """The simulator's counter buffers for evict_folios' compiled steps (KSWAPD_COUNTS, RS_*),
        at zero."""
        rs = sim.__dict__.get("_evict_rs")
        if rs is None:
            rs = sim.__dict__["_evict_rs"] = np.zeros(4, dtype=np.int64)
        return buffers(sim)[2], rs

    @staticmethod
    def _flush(sim, lruvec, sc, kc: np.ndarray, rs: np.ndarray) -> None:
        """Counts of evict_folios' compiled steps to the simulator (flush_counts; direct reclaim's
        PGSCAN / PGSTEAL as count_reclaim counts them) and to `sc`; both buffers reset."""
        if not sc.kswapd:  # flush_counts names kswapd's events
            for k, name in ((K_PGSCAN, "pgscan_direct"), (K_PGSTEAL, "pgsteal_direct")):
                if kc[k]:
                    sim.count(lruvec, name, int(kc[k]))
                    kc[k] = 0
        flush_counts(sim, lruvec, kc)
        scanned, reclaimed, unqueued, taken = rs.tolist()
        sc.nr_scanned += scanned
        sc.nr_reclaimed += reclaimed
        sc.nr.unqueued_dirty += unqueued
        sc.nr.file_taken += taken
        rs[:] = 0

    def isolate_folios(self, sim, lruvec, sc, nr_to_scan: int, swappiness: int):
        lg = self.lrugen(lruvec)
        tier = -1
        if not self.pre_rework:
            t = self.get_type_to_scan(lg, swappiness)
        elif swappiness == MIN_SWAPPINESS:  # isolate_folios before the rework
            t = LRU_FILE
        elif lg.min_seq[LRU_ANON] < lg.min_seq[LRU_FILE]:
            t = LRU_ANON
        elif swappiness == 1:
            t = LRU_FILE
        elif swappiness == MAX_SWAPPINESS:
            t = LRU_ANON
        else:
            t, tier = get_type_to_scan_pre(lg.ctrl, swappiness)
        for _ in evictable_types(swappiness):
            if tier < 0:
                tier = self.get_tier_idx(lg, t)
            scanned, ids = self.scan_folios(sim, lruvec, sc, t, tier, nr_to_scan)
            if scanned:
                return t, ids, scanned
            t = 1 - t
            tier = -1
        return t, np.zeros(0, dtype=np.int64), 0

    def try_to_inc_min_seq(self, lruvec, swappiness: int) -> bool:
        """try_to_inc_min_seq (inc_min_seq_to): skip empty oldest generations (physically empty
        lists), keep anon and file within one generation of max_seq - 2 of each other."""
        lg = self.lrugen(lruvec)
        min_seq = np.asarray(lg.min_seq, dtype=np.int64)
        success = inc_min_seq_to(lg.ctrl, min_seq, np.asarray(self._min_seq_candidates(lruvec, swappiness)),
                                 swappiness)
        lg.min_seq[:] = min_seq.tolist()
        return bool(success)

    def _min_seq_candidates(self, lruvec, swappiness: int) -> list[int]:
        """What try_to_inc_min_seq would set min_seq to."""
        lg = self.lrugen(lruvec)
        return min_seq_candidates(lruvec.table.nr[lruvec.row], np.asarray(lg.min_seq, dtype=np.int64), lg.max_seq,
                                  swappiness, self.pre_rework).tolist()

    def evict_compiled(self, sim, lruvec, sc) -> bool:
        """Whether evict_folios runs as evict_round: the rules after the rework, MGLRU's own
        hooks (_own_hooks), a trusted policy without contract checks (config.check), no
        demotion and the compiled paths on (Simulator.bulk_on), and lookaround with a walk struct
        only through the lock-free update (without it, lockfree.promote moves the folios)."""
        if self.pre_rework or not self.trusted or sim.config.check or not sim.bulk_on(lruvec.node):
            return False
        if self.uses("lookaround") and not self.uses("lockfree") and (sc.kswapd or sc.proactive):
            return False
        return _own_hooks(type(self))

    def _round_args(self, sim, lruvec, sc, swappiness: int) -> tuple:
        """evict_round's arguments before nr_to_scan, and its `look`: once per call."""
        lg = self.lrugen(lruvec)
        f, node, row, lists = sim.folios, lruvec.node, lruvec.row, lruvec.lists
        lids, lstamps, lohi = get_lists(lists)
        seqs = np.empty((row + 1, 3), dtype=np.int64)
        seqs[row] = lg.max_seq, lg.min_seq[LRU_ANON], lg.min_seq[LRU_FILE]
        look = LOOK_NONE
        if self.uses("lookaround"):
            look = LOOK_UPDATE_GEN if sc.kswapd or sc.proactive else LOOK_ACTIVATE  # set_mm_walk
        ftab, ptab, lvt, swtab, _ = tables(sim, lruvec)
        usage = np.array([m.usage for m in sim._memcg_list], dtype=np.int64)
        s, wb = reclaim_scalars(sim, node)
        swap_ctl = np.array([sc.may_swap, vm_swappiness(sim, lruvec, sc)], dtype=np.int64)
        return (lids, lstamps, lohi, ftab, f.lru_gen, f.lru_refs, ptab,
                lvt, lruvec.table.nr_logical, swtab, _look_tables(sim, node), row, node.nid, seqs, lg.ctrl, usage,
                node_scalars(node), s, wb, swappiness, swap_ctl, sc.kswapd, sc.may_writepage), look

    def _round_end(self, sim, lruvec, sc, a: tuple, out: HookOut, dense: np.ndarray) -> None:
        """What evict_round (or shrink_lruvec_loop) changed in its arguments `a`, handed back."""
        lg = self.lrugen(lruvec)
        ids, stamps, lohi, seqs, usage, nodev, s, wb = a[0], a[1], a[2], a[13], a[15], a[16], a[17], a[18]
        set_lists(lruvec.lists, ids, stamps, lohi)
        lg.min_seq[:] = seqs[lruvec.row, 1:].tolist()
        out.apply()  # what _push_lists left
        set_node_scalars(lruvec.node, nodev)
        set_reclaim_scalars(sim, s, wb)
        for m, u in zip(sim._memcg_list, usage.tolist()):
            m.usage = u
        self._update_bloom(sim, lg, dense)
        self._flush(sim, lruvec, sc, *self._counts(sim))

    def _update_bloom(self, sim, lg: LruGen, dense: np.ndarray) -> None:
        """lru_gen_look_around's update_bloom_filter for the PMD tables it found dense."""
        if self.uses("bloom") and self.uses("ptwalk"):
            add_dense(sim, lg.bloom, lg.max_seq, dense)

    def _evict_round(self, sim, lruvec, sc, nr_to_scan: int, swappiness: int) -> int:
        """evict_folios as one evict_round call."""
        a, look = self._round_args(sim, lruvec, sc, swappiness)
        out = HookOut.get(sim, (), 2 * MAX_LRU_BATCH, lruvec.node)
        _, scanned, out.push, out.npush, dense = evict_round(*a, nr_to_scan, look, sim._stamp_clock, out.push,
                                                             *self._counts(sim), ONE_ROUND)
        self._round_end(sim, lruvec, sc, a, out, dense)
        return int(scanned)

    def loop_compiled(self, sim, lruvec, sc) -> bool:
        """Whether try_to_shrink_lruvec's loop runs as shrink_lruvec_loop: evict_folios is
        evict_round (evict_compiled) and the loop's hooks are MGLRU's own (_LOOP_HOOKS)."""
        return self.evict_compiled(sim, lruvec, sc) and _own_hooks(type(self), _LOOP_HOOKS)

    def _shrink_compiled(self, sim, lruvec, sc, swp: int) -> bool:
        """_shrink_loop as shrink_lruvec_loop (called again when the lists need room), then
        try_to_inc_max_seq when the loop found it due. Returns whether that aged the lruvec."""
        root, goal, high = self._abort_args(sc, lruvec.node)
        scanned, status = 0, LOOP_ROOM
        while status == LOOP_ROOM:
            a, look = self._round_args(sim, lruvec, sc, swp)
            out = HookOut.get(sim, (), 2 * MAX_LRU_BATCH, lruvec.node)
            status, scanned, out.push, out.npush, dense = shrink_lruvec_loop(
                a, look, sim._stamp_clock, out.push, *self._counts(sim), sc.priority, sc.nr_reclaimed, goal, root, high,
                scanned)
            self._round_end(sim, lruvec, sc, a, out, dense)
        return status == LOOP_AGE and self.try_to_inc_max_seq(sim, lruvec, self.lrugen(lruvec).max_seq, swp)

    def evict_folios(self, sim, lruvec, sc, nr_to_scan: int, swappiness: int) -> int:
        """evict_folios: evict_round when it applies (evict_compiled), else this per-step path."""
        if self.evict_compiled(sim, lruvec, sc):
            return self._evict_round(sim, lruvec, sc, nr_to_scan, swappiness)
        lg = self.lrugen(lruvec)
        sim.cost["lru_lock_ops"] += 1
        t, ids, scanned = self.isolate_folios(sim, lruvec, sc, nr_to_scan, swappiness)
        scanned += int(self.try_to_inc_min_seq(lruvec, swappiness))
        if lg.evictable_min_seq(swappiness) + MIN_NR_GENS > lg.max_seq:
            scanned = 0
        if len(ids) == 0:
            return scanned
        skip_retry = False
        while True:
            res = shrink_folio_list(sim, lruvec, ids, sc, self)
            reclaimed = res.nr_reclaimed
            sc.nr_reclaimed += reclaimed
            sc.nr.unqueued_dirty += res.nr_unqueued_dirty
            retry = res.keep_ids[:0]
            if len(res.keep_ids):
                retry = self._putback(sim, lruvec, res.keep_ids, skip_retry)
            count_reclaim(sim, lruvec, sc, "pgsteal", t, reclaimed)  # evict_folios, each round
            if not len(retry):
                break
            ids = retry
            sc.nr_scanned -= len(ids)
            skip_retry = True
        return scanned

    def _putback(self, sim, lruvec, keep: np.ndarray, skip_retry: bool) -> np.ndarray:
        """evict_folios' survivors (evict_putback) back on the lists under one LRU-lock hold.
        Returns the folios to retry, in order."""
        p = sim.ptes
        out = HookOut.get(sim, (), len(keep), lruvec.node)
        retry, out.npush, nput = evict_putback(keep, skip_retry, *self._lists(sim, lruvec), out.push,
                                               (p.present, p.exec, p.next, sim.folios.pte_head), self.pre_rework)
        out.apply()
        if nput:
            sim.cost["lru_lock_ops"] += 1
        return retry

    @staticmethod
    def _abort_args(sc, node) -> tuple:
        """abort_scan's (root, goal, kswapd_high) for `sc` on `node`."""
        root = sc.target_memcg is None or sc.target_memcg.parent is None
        high = node.wmark.high + MIN_LRU_BATCH if sc.kswapd and not sc.order else -1
        return root, max(sc.nr_to_reclaim, 2 << sc.order), high

    def should_abort_scan(self, sim, lruvec, sc) -> bool:
        """should_abort_scan (abort_scan)."""
        root, goal, high = self._abort_args(sc, lruvec.node)
        return bool(abort_scan(root, sc.nr_reclaimed, goal, high, lruvec.node.free))

    def get_nr_to_scan(self, sim, lruvec, sc, swappiness: int) -> int:
        """get_nr_to_scan: nr_to_scan_of, or try_to_inc_max_seq when it is due (-1 when that aged
        the lruvec, else 0)."""
        lg = self.lrugen(lruvec)
        n = nr_to_scan_of(lruvec.nr_logical.a, np.asarray(lg.min_seq, dtype=np.int64), lg.max_seq, swappiness,
                          sc.priority, self.pre_rework)
        if n >= 0:
            return int(n)
        return -1 if self.try_to_inc_max_seq(sim, lruvec, lg.max_seq, swappiness) else 0

    def try_to_shrink_lruvec(self, sim, lruvec, sc) -> bool:
        """try_to_shrink_lruvec: evict in rounds of get_nr_to_scan until the budget is used, no
        progress is made, or the goal is met. Returns whether the lruvec was aged (it is then
        rotated to the young generation of the memcg LRU)."""
        aged = self._shrink_loop(sim, lruvec, sc, self.get_swappiness(sim, lruvec, sc))
        if sc.nr.unqueued_dirty and sc.nr.unqueued_dirty == sc.nr.file_taken:
            sim.writeback_requested = True  # wakeup_flusher_threads(WB_REASON_VMSCAN)
        return aged

    def shrink_lruvec(self, sim, lruvec, sc):
        """lru_gen_shrink_lruvec: cgroup reclaim (and, without the memcg LRU, root reclaim), called
        by the core's memcg tree walk (shrink_node_memcgs); an aged lruvec moves to the young
        generation of the memcg LRU, when there is one."""
        if self.try_to_shrink_lruvec(sim, lruvec, sc) and self.uses("memcg_lru"):
            self.memcg_lru(lruvec.node).rotate(lruvec, MEMCG_LRU_YOUNG)

    def _shrink_loop(self, sim, lruvec, sc, swp: int) -> bool:
        """The loop of try_to_shrink_lruvec, one evict_folios batch at a time; True when the last
        get_nr_to_scan aged the lruvec (nr_to_scan < 0)."""
        if self.loop_compiled(sim, lruvec, sc):
            return self._shrink_compiled(sim, lruvec, sc, swp)
        scanned = 0
        while True:
            n = self.get_nr_to_scan(sim, lruvec, sc, swp)
            if n <= 0:
                break
            delta = self.evict_folios(sim, lruvec, sc, n, swp)
            if not delta:
                break
            scanned += delta
            if scanned >= n or self.should_abort_scan(sim, lruvec, sc):
                break
        return n < 0

    def set_initial_priority(self, sim, node, sc) -> None:
        """set_initial_priority: start where (reclaimable >> priority) meets the goal, in [6, 12]."""
        if sc.priority != DEF_PRIORITY or sc.nr_to_reclaim < MIN_LRU_BATCH:
            return
        can_anon = can_reclaim_anon(sim, sc)
        reclaimable = 0
        for lv in sim.lruvecs_under(None, node):  # node_page_state: every memcg's lruvec
            lg = self.lrugen(lv)
            reclaimable += int(inactive_reclaimable(lv.nr_logical.a, np.asarray(lg.min_seq, dtype=np.int64),
                                                    lg.max_seq, can_anon))
        sc.priority = int(initial_priority(reclaimable, sc.nr_to_reclaim))

    def inactive_size(self, lruvec, t: int) -> int:
        """The NR_INACTIVE_* compatibility counter: every generation but the two youngest."""
        lg = self.lrugen(lruvec)
        return int(inactive_size_of(lruvec.nr_logical.a, t, lg.min_seq[t], lg.max_seq))

    def shrink_node(self, sim, node, sc):
        """shrink_node under MGLRU: root reclaim is lru_gen_shrink_node (the memcg LRU); cgroup
        reclaim takes the classic driver (the core's memcg tree walk calling shrink_lruvec).

        Without the memcg LRU (mechanism memcg_lru off), root reclaim takes the classic driver
        too, as on Linux 6.1 and 6.2, before the memcg LRU (e4dde56cd208, "mm: multi-gen LRU:
        per-node lru_gen_folio lists") was merged for 6.3: shrink_node_memcgs walks the memcg
        tree (mem_cgroup_iter: kswapd a full walk, direct reclaim a partial one from the shared
        cursor), skips memcgs below memory.min and, unless memcg_low_reclaim, below memory.low,
        and calls lru_gen_shrink_lruvec (try_to_shrink_lruvec) on each. What goes with
        lru_gen_shrink_node: set_initial_priority (here and in lru_gen_age_node, so the priority
        steps from DEF_PRIORITY as for cgroup reclaim), kswapd counting progress from zero per
        call (should_abort_scan then sees balance_pgdat's total), the skip without
        may_writepage/may_unmap, shrink_many's bins and shrink_one's rotations (the memcg LRU is
        never filled; its seq stays 0). What the core's shrink_node adds: kswapd's
        PGDAT_WRITEBACK/PGDAT_DIRTY flags. Everything else keeps this class's rules (the 6.14
        rework; MGLRU612: 6.1-6.13): try_to_shrink_lruvec with should_abort_scan, and no aging
        in lru_gen_age_node (6.1's age_lruvec and the memcgs_need_aging / eviction fairness
        safeguards of "mm: multi-gen LRU: optimize multiple memcgs", removed in 6.3, are not
        brought back)."""
        if not self.uses("memcg_lru") or (sc.target_memcg is not None and sc.target_memcg.parent is not None):
            from ..core.vmscan import shrink_node_lruvecs

            shrink_node_lruvecs(sim, node, sc, self)
            return
        self.lru_gen_shrink_node(sim, node, sc)

    def lru_gen_shrink_node(self, sim, node, sc) -> None:
        """lru_gen_shrink_node: skipped without may_writepage/may_unmap; set_initial_priority;
        kswapd counts progress from zero during the call; shrink_many."""
        reclaimed = sc.nr_reclaimed
        if sc.may_writepage and sc.may_unmap:
            self.set_initial_priority(sim, node, sc)
            if sc.kswapd:
                sc.nr_reclaimed = 0
            self.shrink_many(sim, node, sc)
            if sc.kswapd:
                sc.nr_reclaimed += reclaimed
        if sc.nr_reclaimed > reclaimed:
            node.kswapd_failures = 0

    def shrink_many(self, sim, node, sc) -> None:
        """shrink_many: from a random bin of the old generation, each bin's lruvecs from the head
        (shrink_one, then the rotation it asks for, applied once the walk has moved past the
        lruvec), until should_abort_scan; then the other bins of that generation. A lruvec
        rotated to the tail of a bin not yet walked is met again, as in the kernel."""
        lru = self.memcg_lru(node)
        gen = lru.seq % MEMCG_NR_GENS
        first_bin = b = lru.random_bin()
        while True:
            bin_ = lru.fifo[gen][b]
            i = 0
            op, prev = 0, None
            abort = False
            while i < len(bin_):
                lv = bin_[i]
                if op:
                    lru.rotate(prev, op)
                    op = 0
                    # the rotated lruvec left this bin (or went to its tail): re-find our place
                    i = next((k for k, x in enumerate(bin_) if x is lv), None)
                    if i is None:
                        break
                i += 1
                if lv.priv["memcg_gen"] != gen:
                    continue
                op, prev = self.shrink_one(sim, lv, sc), lv
                if self.should_abort_scan(sim, lv, sc):
                    abort = True
                    break
            if op:
                lru.rotate(prev, op)
            if abort:
                return
            b = (b + 1) % MEMCG_NR_BINS
            if b == first_bin:
                return

    def shrink_one(self, sim, lruvec, sc) -> int:
        """shrink_one: try_to_shrink_lruvec and the memcg-LRU rotation it earns: YOUNG when aged,
        none while still sizable, else TAIL once and then YOUNG; a memcg below memory.min is not
        reclaimed and goes YOUNG; one below memory.low goes to the TAIL first, and is reclaimed
        (a MEMCG_LOW event) when it is met there again."""
        rec = sim.config.memory_recursiveprot
        if mem_cgroup_below_min(sim.root_memcg, lruvec.memcg, rec):
            return MEMCG_LRU_YOUNG
        if mem_cgroup_below_low(sim.root_memcg, lruvec.memcg, rec):
            if lruvec.priv["memcg_seg"] != MEMCG_LRU_TAIL:
                return MEMCG_LRU_TAIL
            lruvec.memcg.events["low"] += 1
        success = self.try_to_shrink_lruvec(sim, lruvec, sc)
        if success:
            return MEMCG_LRU_YOUNG
        if self.evictable_size(lruvec, self.get_swappiness(sim, lruvec, sc)) >> sc.priority:  # lruvec_is_sizable
            return 0
        return MEMCG_LRU_TAIL if lruvec.priv["memcg_seg"] != MEMCG_LRU_TAIL else MEMCG_LRU_YOUNG

    def putback(self, sim, lruvec, ids, active):
        """move_folios_to_lru: placement by lru_gen_folio_seq (PG_active was set by the core on
        activated folios)."""
        self._add(sim, lruvec, ids)

    def folio_isolate(self, sim, lruvec, ids):
        """folio_isolate_lru -> lru_gen_del_folio: off its generation's lists."""
        lockfree.take(sim, lruvec, ids)
        lruvec.delete(sim.folios, ids)

    def rotate_reclaimable(self, sim, lruvec, ids):
        """folio_rotate_reclaimable -> lru_gen_add_folio(reclaiming): lru_gen_rotate."""
        f, lg, lists = sim.folios, self.lrugen(lruvec), lruvec.lists
        lids, lstamps, lohi = get_lists(lists)
        seqs = np.array([[lg.max_seq, lg.min_seq[LRU_ANON], lg.min_seq[LRU_FILE]]], dtype=np.int64)
        lids, lstamps = lru_gen_rotate(np.asarray(ids, dtype=np.int64), lids, lstamps, lohi, f.flags, f.type, f.lru, f.stamp,
                                       f.lru_gen, lruvec.table.nr[lruvec.row], lruvec.table.nr_logical[lruvec.row],
                                       seqs, 0, sim._stamp_clock, self.pre_rework)
        set_lists(lists, lids, lstamps, lohi)

    # ---- kswapd ----------------------------------------------------------------------------------

    def kswapd_age_node(self, sim, node, sc):
        """lru_gen_age_node: no aging here; with min_ttl_ms, OOM-kill when no lruvec's oldest
        evictable generation is older than min_ttl (thrashing protection). set_initial_priority
        only with the memcg LRU (see shrink_node)."""
        if self.uses("memcg_lru"):
            self.set_initial_priority(sim, node, sc)
        if not self.min_ttl_ms:
            return None
        now = sim.now_ms()
        for lv in sim.lruvecs_under(None, node):
            lg = self.lrugen(lv)
            swp = self.get_swappiness(sim, lv, sc)
            if not self.evictable_size(lv, swp) >> sc.priority:  # lruvec_is_sizable
                continue
            birth = lg.timestamps[lru_gen_from_seq(lg.evictable_min_seq(swp))]
            if birth + self.min_ttl_ms < now:
                return None
        return f"min_ttl_ms={self.min_ttl_ms:g}: every generation is younger than min_ttl (lru_gen_age_node)"

    # ---- introspection ---------------------------------------------------------------------------

    def lru_gen_state(self, sim, lruvec) -> dict:
        """The content of /sys/kernel/debug/lru_gen for one lruvec, as data."""
        lg = self.lrugen(lruvec)
        now = sim.now_ms()
        nl = lruvec.nr_logical[:]  # a list of ints: cheaper to index than the row
        gens = []
        start = max(0, lg.max_seq - MAX_NR_GENS + 1)
        for seq in range(start, lg.max_seq + 1):
            g = lru_gen_from_seq(seq)
            gens.append({
                "seq": seq,
                "age_ms": int(now - lg.timestamps[g]),
                "anon": max(nl[LRU_ANON * MAX_NR_GENS + g], 0) if seq >= lg.min_seq[LRU_ANON] else 0,
                "file": max(nl[LRU_FILE * MAX_NR_GENS + g], 0) if seq >= lg.min_seq[LRU_FILE] else 0,
            })
        return {
            "memcg_id": lruvec.memcg.id, "memcg_path": lruvec.memcg.path, "node": lruvec.node.nid,
            "max_seq": lg.max_seq, "min_seq": {"anon": lg.min_seq[0], "file": lg.min_seq[1]},
            "generations": gens,
            "walks": lg.walks,
            "pid": {
                "avg_refaulted": lg.avg_refaulted.tolist(), "avg_total": lg.avg_total.tolist(),
                "refaulted": lg.refaulted.tolist(), "evicted": lg.evicted.tolist(),
                "protected": lg.protected.tolist(),
            },
        }

    def lru_sizes(self, lruvec) -> dict[str, int]:
        """The active/inactive compatibility counters: the two youngest generations are active."""
        out = {}
        for t, name in ((LRU_ANON, "anon"), (LRU_FILE, "file")):
            inactive = self.inactive_size(lruvec, t)
            out[f"inactive_{name}"] = inactive
            out[f"active_{name}"] = lruvec.type_size(t) - inactive
        return out

    def dump(self, sim) -> dict:
        # per memcg (pre-order), each node's lruvec (lru_gen_seq_show's order)
        return {"lru_gen": [self.lru_gen_state(sim, lv.memcg.lruvecs[n.nid])
                            for lv in sim.lruvecs_under(None, sim.node) for n in sim.nodes],
                "min_ttl_ms": self.min_ttl_ms}

    def sample(self, sim, lruvec) -> dict:
        """Per-generation logical sizes for the time series: [seq, anon, file] per generation."""
        return {"gens": [[g["seq"], g["anon"], g["file"]] for g in self.lru_gen_state(sim, lruvec)["generations"]]}

    def check(self, sim, lruvec) -> list[str]:
        problems = lockfree.check(sim, lruvec)
        lg = self.lrugen(lruvec)
        for t in (LRU_ANON, LRU_FILE):
            if not MIN_NR_GENS <= lg.nr_gens(t) <= MAX_NR_GENS:
                problems.append(f"{TYPE_NAMES[t]}: {lg.nr_gens(t)} generations (min_seq {lg.min_seq[t]}, max_seq {lg.max_seq})")
            # Neither a retired slot's list nor its logical count is checked: after a type was not
            # evictable for a while (swappiness 0 when swap runs low) inc_min_seq only relabels, so
            # a folio's LRU_GEN may name a retired slot, and sort_folio then moves the folio to
            # that slot's list, as in the kernel; the slot is the youngest once max_seq reaches it.
        return problems


class MGLRU612(MGLRU):
    """MGLRU as in Linux 6.1-6.13 (Debian's 6.12): the rules before the 6.14 rework.

    Yu Zhao's December 2024 rework was merged for 6.14. For folios mapped by page tables: a faulted-in folio goes to the
    youngest generation (max_seq, not max_seq - 1); every young PTE the page-table walk or the
    lookaround finds promotes its folio to max_seq at once (no PG_referenced first sighting); and a
    mapped folio that shrink_folio_list keeps (any young PTE) is put back active, in max_seq. For
    file-descriptor accesses: PG_referenced, then PG_workingset, then LRU_REFS; tier =
    order_base_2(LRU_REFS + workingset + 1). Aging waits for three generations and then runs only
    when the youngest holds more than half the pages or the oldest less than a quarter; clean page
    cache is added to min_seq + 1 when four generations exist; a refault is recent only if its
    token's min_seq is still the type's min_seq. docs/fidelity.md ("Why MGLRU with mmap took fewer
    misses than 6.12")."""

    name = "mglru-6.12"
    pre_rework = True


def format_lru_gen(states: list[dict]) -> str:
    """The layout of reading /sys/kernel/debug/lru_gen (lru_gen_seq_show, not the full form):
    per memcg and node, one line per generation from the evictable min_seq: seq, age in ms,
    anon pages, file pages. `states` is the "lru_gen" list of a JSON result."""
    lines = []
    last = None
    for st in states:
        if st["memcg_id"] != last:  # the memcg's line, then each of its nodes
            lines.append(f"memcg {st['memcg_id']:5d} {st['memcg_path']}")
            last = st["memcg_id"]
        lines.append(f" node {st['node']:5d}")
        emin = min(st["min_seq"]["anon"], st["min_seq"]["file"])
        for g in st["generations"]:
            if g["seq"] >= emin:
                lines.append(f" {g['seq']:10d} {g['age_ms']:10d} {g['anon']:10d}  {g['file']:10d} ")
    return "\n".join(lines) + "\n"


__all__ = ["format_lru_gen", "MGLRU", "MGLRU612", "LruGen", "lru_tier_from_refs", "positive_ctrl_err", "evictable_types"]
