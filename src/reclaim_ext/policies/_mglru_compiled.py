"""MGLRU's per-folio rules, compiled (numba), each stated once and called by both the per-batch
path (evict_folios, scan_folios) and the bulk try_to_shrink_lruvec pass in policies/mglru.py:
the tier of a folio (lru_tier_from_refs), placement (lru_gen_folio_seq), the PID controller
(read_ctrl_pos, positive_ctrl_err, get_tier_idx, get_type_to_scan), the scan verdict of
scan_folios (sort_folio or isolate_folio), the folio work of sorting and isolating, and the
eviction token (lru_gen_eviction); plus the hot path's event loop (mglru_events)."""

from __future__ import annotations

import numpy as np
from numba import njit

from ..core.lru import list_add
from ..core.ptwalk import MAX_LRU_BATCH, MIN_LRU_BATCH
from ..machine.folio import (
    LRU_ANON, LRU_FILE, NO_LIST, PG_active, PG_dirty, PG_mlocked, PG_referenced, PG_reclaim, PG_unevictable,
    PG_workingset, PG_writeback,
)

MIN_NR_GENS = 2
MAX_NR_GENS = 4
MAX_NR_TIERS = 4
LRU_REFS_MAX = 3  # LRU_REFS is 2 bits wide
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
def _tiers(refs, workingset):
    out = np.empty(len(refs), dtype=np.int64)
    for i in range(len(refs)):
        out[i] = tier_from_refs(refs[i], workingset[i])
    return out


def lru_tier_from_refs(refs: np.ndarray, workingset: np.ndarray) -> np.ndarray:
    """tier_from_refs over arrays."""
    refs = np.asarray(refs, dtype=np.int64)
    return _tiers(refs, np.broadcast_to(np.asarray(workingset, dtype=np.bool_), refs.shape))


@njit(cache=True)
def folio_seq(max_seq, min_seq, t, fl, reclaiming):
    """lru_gen_folio_seq (mm_inline.h): an active folio (a fault, or activated by reclaim) goes
    to the youngest generation (the second youngest with PG_workingset); otherwise a folio
    being reclaimed goes to the oldest, anon (or dirty/writeback under reclaim) to the second
    oldest of MIN_NR_GENS, and file to the oldest (the second oldest with PG_workingset); never
    below min_seq of its type."""
    ws = 1 if fl & PG_workingset else 0
    if fl & PG_active:
        g = MIN_NR_GENS - ws
    elif reclaiming:
        g = MAX_NR_GENS
    elif t == LRU_ANON or ((fl & PG_reclaim) != 0 and (fl & (PG_dirty | PG_writeback)) != 0):
        g = MIN_NR_GENS
    else:
        g = MAX_NR_GENS - ws
    return max(max_seq - g + 1, min_seq)


@njit(cache=True)
def folio_seqs(max_seq, min_anon, min_file, t, fl, reclaiming):
    out = np.empty(len(t), dtype=np.int64)
    for i in range(len(t)):
        out[i] = folio_seq(max_seq, min_file if t[i] == LRU_FILE else min_anon, t[i], fl[i], reclaiming)
    return out


@njit(cache=True)
def scan_verdict(fl, gen, lru_refs, lru, t, tier_idx):
    """scan_folios on one folio of the oldest list `lru`: sort_folio keeps a folio promoted
    meanwhile (its generation is not the list's), one in a protected tier (above tier_idx, or
    with every ref bit set) and one waiting for writeback (under writeback, or a dirty file
    folio); isolate_folio takes the rest."""
    if gen != lru:
        return SORT_PROMOTED
    if folio_tier(fl, lru_refs) > tier_idx or all_ref_bits(fl, lru_refs):
        return SORT_PROTECTED
    if fl & PG_writeback or (t == LRU_FILE and fl & PG_dirty):
        return SORT_WAITING
    return ISOLATE


@njit(cache=True)
def scan_step(cand, pos, scan_batch, lru, t, tier_idx, flags, lru_gen, lru_refs, verdict):
    """One scan_folios from cand[pos] (the oldest list's folios, tail first): verdicts until
    MIN_LRU_BATCH folios are isolated or scan_batch are scanned. Returns (end, isolated); end ==
    len(cand) short of both means the candidates ran out."""
    niso = 0
    i = pos
    stop = min(pos + scan_batch, len(cand))
    while i < stop and niso < MIN_LRU_BATCH:
        g = cand[i]
        v = scan_verdict(flags[g], lru_gen[g], lru_refs[g], lru, t, tier_idx)
        verdict[i] = v
        niso += v == ISOLATE
        i += 1
    return i, niso


@njit(cache=True)
def folio_inc_gen(g, t, min_seq_t, flags, lru_refs, reclaiming):
    """folio_inc_gen for a folio of the oldest generation: to min_seq + 1 with PG_referenced and
    LRU_REFS cleared (PG_reclaim set when reclaiming: for folio_end_writeback). Returns the list."""
    fl = flags[g] & ~PG_referenced
    if reclaiming:
        fl |= PG_reclaim
    flags[g] = fl
    lru_refs[g] = 0
    return t * MAX_NR_GENS + (min_seq_t + 1) % MAX_NR_GENS


@njit(cache=True)
def sort_and_isolate(ids, verdict, t, min_seq_t, flags, lru_gen, lru_refs, flru, fstamp, nr, nr_logical, row,
                     clock, push, protected_t, census):
    """The folio work of scan_folios for `ids`, just taken off the tail of the oldest list, in
    order, given their verdicts: each leaves its logical list (core.lockfree.take); sort_folio
    puts a promoted folio at the head of its generation and a protected or waiting one
    (folio_inc_gen; waiting: reclaiming, dirty file census) at the head of min_seq + 1 (slots in
    `push`, core.lru.list_add); isolate_folio zeroes an unreferenced folio's LRU_REFS and clears
    PG_reclaim. census: [dirty file folios waiting, of them not under writeback]. Returns (the
    isolated folios in order, the number of list slots)."""
    iso = np.empty(len(ids), dtype=np.int64)
    niso = npush = 0
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
            flags[g] = fl & ~PG_reclaim
            iso[niso] = g
            niso += 1
            continue
        new = logical
        if v == SORT_PROTECTED:
            if not all_ref_bits(fl, lru_refs[g]):
                protected_t[folio_tier(fl, lru_refs[g])] += 1
            new = folio_inc_gen(g, t, min_seq_t, flags, lru_refs, False)
        elif v == SORT_WAITING:
            if t == LRU_FILE and fl & PG_dirty:
                census[0] += 1
                census[1] += (fl & PG_writeback) == 0
            new = folio_inc_gen(g, t, min_seq_t, flags, lru_refs, True)
        npush = list_add(g, row, new, flru, fstamp, nr, clock, push, npush)
        lru_gen[g] = new
        nr_logical[row, new] += 1
    return iso[:niso], npush


@njit(cache=True)
def inc_min_seq_folios(ids, logical, t, min_seq_t, flags, lru_refs, protected_t):
    """inc_min_seq's folio work for the oldest generation's folios (`logical`: their logical
    lists): each counts in `protected` (but the lazily promoted workingset) and goes to its
    promoted generation, else through folio_inc_gen. Returns the lists."""
    new = np.empty(len(ids), dtype=np.int64)
    oldest = t * MAX_NR_GENS + min_seq_t % MAX_NR_GENS
    for i in range(len(ids)):
        g = ids[i]
        if not all_ref_bits(flags[g], lru_refs[g]):
            protected_t[folio_tier(flags[g], lru_refs[g])] += 1
        new[i] = logical[i] if logical[i] != oldest else folio_inc_gen(g, t, min_seq_t, flags, lru_refs, False)
    return new


@njit(cache=True)
def eviction_tokens(ids, flags, ftype, lru_refs, min_seq, evicted):
    """lru_gen_eviction: token = min_seq of the type << 2 | max(refs - 1, 0); counts `evicted`
    per type and tier."""
    out = np.empty(len(ids), dtype=np.int64)
    for i in range(len(ids)):
        g = ids[i]
        fl = flags[g]
        t = np.int64(ftype[g])
        refs = folio_refs(fl, lru_refs[g])
        evicted[t, folio_tier(fl, lru_refs[g])] += 1
        out[i] = (min_seq[t] << 2) | max(refs - 1, 0)
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
def get_tier_idx(ctrl, t):
    """get_tier_idx: tiers above the returned index are protected (gain 2:3 leaves a 50 % margin)."""
    sp_r, sp_t = read_ctrl_pos(ctrl, t, 0)
    tier = 1
    while tier < MAX_NR_TIERS:
        pv_r, pv_t = read_ctrl_pos(ctrl, t, tier)
        if not ctrl_err_ok(sp_r, sp_t, 2, pv_r, pv_t, 3):
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


# ---- the bulk try_to_shrink_lruvec pass -------------------------------------------------------


@njit(cache=True)
def bulk_dry_run(cand, avail, lru, flags, lru_gen, lru_refs, pte_head, ctrl, total, priority, free, reclaimed, goal,
                 root, kswapd_high, verdict):
    """try_to_shrink_lruvec's loop over the oldest file generation, replayed without touching
    anything: before each evict_folios the PID controller picks the tier (get_tier_idx, on a
    copy of its counters that the earlier batches' evictions and protections update), scan_step
    gives the verdicts, and the loop's budget and should_abort_scan decide whether to go on.
    Every folio isolated must be one shrink_folio_list simply frees (no mapping, evictable), and
    the oldest generation must outlast the loop. Returns the folios scanned (verdicts in
    `verdict`) and the number of evict_folios rounds; (-1, 0): the candidates ran out (peek
    more); (-2, 0): not a bulk pass. kswapd_high: the free-page target that stops kswapd, or -1."""
    ctrl = (ctrl[0], ctrl[1], ctrl[2], ctrl[3].copy(), ctrl[4].copy())
    evicted, protected = ctrl[3], ctrl[4]
    pos = scanned = rounds = 0
    while True:
        n = total >> priority
        if n <= 0:
            break
        k = get_tier_idx(ctrl, LRU_FILE)
        scan_batch = min(n, MAX_LRU_BATCH)
        end, niso = scan_step(cand, pos, scan_batch, lru, LRU_FILE, k, flags, lru_gen, lru_refs, verdict)
        if end == len(cand) and niso < MIN_LRU_BATCH and end - pos < scan_batch:
            return (-1 if len(cand) < avail else -2), 0
        if end >= avail:
            return -2, 0  # the oldest generation would empty: min_seq moves
        for i in range(pos, end):
            g = cand[i]
            fl = flags[g]
            if verdict[i] == ISOLATE:
                if pte_head[g] >= 0 or fl & (PG_unevictable | PG_mlocked):
                    return -2, 0  # a folio that shrink_folio_list would not simply free
                evicted[LRU_FILE, folio_tier(fl, lru_refs[g])] += 1
            elif verdict[i] == SORT_PROTECTED and not all_ref_bits(fl, lru_refs[g]):
                protected[LRU_FILE, folio_tier(fl, lru_refs[g])] += 1
        rounds += 1
        delta = (end - pos) if (niso or end - pos == scan_batch) else 0
        pos = end
        total -= niso
        free += niso
        reclaimed += niso
        if not delta:
            break
        scanned += delta
        if scanned >= n:
            break
        if root and (reclaimed >= goal or (kswapd_high >= 0 and free > kswapd_high)):
            break
    return pos, rounds


# ---- the hot path -----------------------------------------------------------------------------


@njit(cache=True)
def mglru_events(page, is_add, shadow, shadow_ws, fault, flags, ftype, flru, fstamp, flru_gen, flru_refs, fmemcg,
                 fshadow_memcg, multi, nr, nr_logical, seqs, refaulted, clock, stat, push):
    """MGLRU's hot path, one event after the other, each on its folio's lruvec (row: the memcg it
    is charged to; seqs[row] = max_seq, min_seq[anon], min_seq[file]): an ADD is lru_gen_refault
    (a shadow of this lruvec within MAX_NR_GENS generations of max_seq), lru_gen_in_fault's
    PG_active, then lru_gen_add_folio at the list head; an ACCESS is lru_gen_inc_refs. Returns
    the number of list insertions left in `push` (HookOut.apply)."""
    npush = 0
    for j in range(len(page)):
        g = page[j]
        row = np.int64(fmemcg[g])
        t = np.int64(ftype[g])
        max_seq = seqs[row, 0]
        if is_add[j]:
            token = shadow[j]
            if token >= 0 and (not multi or fshadow_memcg[g] == fmemcg[g]) and abs(max_seq - (token >> 2)) < MAX_NR_GENS:
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
            fl = flags[g]
            seq = folio_seq(max_seq, seqs[row, 1 + t], t, fl, False)
            flags[g] = fl & ~PG_active
            lru = t * MAX_NR_GENS + seq % MAX_NR_GENS
            npush = list_add(g, row, lru, flru, fstamp, nr, clock, push, npush)
            flru_gen[g] = lru
            nr_logical[row, lru] += 1
        else:  # lru_gen_inc_refs: flag updates only, no list movement
            fl = flags[g]
            if fl & PG_unevictable:
                continue
            if (fl & PG_referenced) == 0:
                flags[g] = fl | PG_referenced
                flru_refs[g] = 0
            elif flru_refs[g] == LRU_REFS_MAX:
                flags[g] = fl | PG_workingset
            else:
                flru_refs[g] += 1
    return npush
