"""Page-table walks for access detection: the aging walk, lookaround, and their Bloom filters.

This models MGLRU's two page-table scanners (mm/vmscan.c: walk_mm, lru_gen_look_around):

* `walk_mm` — the walk `try_to_inc_max_seq` does over every mm before `max_seq` is incremented:
  per PTE table (one PMD entry, 512 PTEs) it may skip on the PMD's non-leaf accessed bit or on
  the Bloom filter of PTE tables found dense in the previous round, scans the others, clears
  their young PTEs and hands the folios to the policy.
* `look_around` — what `lru_gen_look_around` does when the rmap walk of eviction finds a young
  PTE: scan up to 64 neighbouring PTEs of the same table and VMA.
* `BloomFilters` — the double-buffered filters of PTE tables worth scanning.

The promotion rule itself (`folio_update_gen`, `lru_gen_set_refs`) belongs to the policy: both
scanners report the folio ids of the young PTEs they cleared through an `on_young` callback.

The walk is vectorized with numpy (the Python work is one step per mm and per VMA); lookaround's
windows are one compiled call per batch of targets (`lookaround_clear`), and
both scanners test a PTE with one compiled rule (`pte_young_eligible`). To find the PTEs of a
table without a pass over every PTE, `pte_index(sim)` keeps PTE ids sorted by (PTE table, vaddr),
refreshed incrementally when new PTEs appear (PTEs are only created, never destroyed).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from numba import njit

from ..jit import noref
from ..machine.folio import NO_LIST, LRU_ANON, LRU_FILE, PG_resident
from ..machine.mm import FILE_MAP_BASE, PMD_SHIFT, PTRS_PER_PTE

NR_BLOOM_FILTERS = 2
BLOOM_FILTER_SHIFT = 15
MIN_LRU_BATCH = 64
MAX_LRU_BATCH = 4096
GOLDEN_RATIO_64 = 0x61C8864680B583EB

NR_PIDS = 1 << 16
PTES_PER_CACHELINE = 8  # clamp(64-byte cache line / 8-byte PTE, 2, 8)
PMD_BASE_ADDRESS = 0xFFFF888000000000  # synthetic direct-map address of the page-table pages

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


# ------------------------------------------------------------------------------------------------
# hashing and Bloom filters


def pmd_entry_address(pids, index) -> np.ndarray:
    """A synthetic kernel address of each PMD entry (uint64): the entries of one process's page
    tables are 8 bytes apart, processes are 2**32 bytes apart (arithmetic modulo 2**64)."""
    pids = np.asarray(pids).astype(np.uint64)
    index = np.asarray(index).astype(np.uint64)
    with np.errstate(over="ignore"):
        return np.uint64(PMD_BASE_ADDRESS) + (pids << np.uint64(32)) + index * np.uint64(8)


def hash_ptr(addr, bits: int = 30) -> np.ndarray:
    """Multiplicative (Fibonacci) hash of 64-bit values to `bits` bits, as the kernel's hash_ptr /
    hash_64: (addr * GOLDEN_RATIO_64 mod 2**64) >> (64 - bits)."""
    a = np.asarray(addr).astype(np.uint64)
    with np.errstate(over="ignore"):
        return (a * np.uint64(GOLDEN_RATIO_64)) >> np.uint64(64 - bits)


@dataclass
class WalkState:
    """Per-lruvec walk state kept across rounds: the mms (pids) seen by an earlier walk. An mm not
    seen before is walked with force_scan (kernel: mms added after the previous round ended)."""

    seen: np.ndarray = field(default_factory=lambda: np.zeros(NR_PIDS, dtype=bool))


class BloomFilters:
    """Two Bloom filters of PTE tables (m = 2**15 bits, k = 2), indexed by seq % 2.

    Keys: h = hash_ptr(PMD entry address, 30); key0 = h & 0x7FFF, key1 = h >> 15. A filter that
    was never allocated (reset) tests as present for everything and ignores additions (kernel:
    test_bloom_filter / update_bloom_filter on a missing filter). The object also carries the
    lruvec's `WalkState` (`.walk_state`).
    """

    BITS = 1 << BLOOM_FILTER_SHIFT

    def __init__(self) -> None:
        self.filters: list[np.ndarray | None] = [None] * NR_BLOOM_FILTERS
        self.walk_state = WalkState()

    @staticmethod
    def keys(addrs) -> tuple[np.ndarray, np.ndarray]:
        h = hash_ptr(addrs, 2 * BLOOM_FILTER_SHIFT)
        mask = np.uint64((1 << BLOOM_FILTER_SHIFT) - 1)
        return (h & mask).astype(np.int64), (h >> np.uint64(BLOOM_FILTER_SHIFT)).astype(np.int64)

    def reset(self, seq: int) -> None:
        """Allocate or clear the filter of seq (reset_bloom_filter)."""
        i = seq % NR_BLOOM_FILTERS
        if self.filters[i] is None:
            self.filters[i] = np.zeros(self.BITS, dtype=np.bool_)
        else:
            self.filters[i][:] = False

    def add(self, seq: int, addrs) -> None:
        """Set both key bits of each address in the filter of seq (no-op if not allocated)."""
        f = self.filters[seq % NR_BLOOM_FILTERS]
        if f is None:
            return
        k0, k1 = self.keys(np.atleast_1d(addrs))
        f[k0] = True
        f[k1] = True

    def test(self, seq: int, addrs) -> np.ndarray:
        """Whether each address may be in the filter of seq (both bits set)."""
        addrs = np.atleast_1d(addrs)
        f = self.filters[seq % NR_BLOOM_FILTERS]
        if f is None:
            return np.ones(len(addrs), dtype=bool)
        k0, k1 = self.keys(addrs)
        return f[k0] & f[k1]


def suitable_to_scan(total, young):
    """A PTE table is dense enough to scan when at least one PTE per cache line is young
    (kernel: suitable_to_scan): young * 8 >= total."""
    return np.asarray(young) * PTES_PER_CACHELINE >= np.asarray(total)


# ------------------------------------------------------------------------------------------------
# the cached PTE index


class PteIndex:
    """PTE ids in (PTE table, vaddr) order, with the tables in (pid, vaddr >> 9) order.

    * `pmd_keys` (sorted) / `pmd_order`: PMD table ids sorted by key pid << 48 | index (the key
      machine.mm names tables by); `rank[pmd]` is a table's position in that order.
    * `pte_keys` (sorted) / `pte_order`: PTE ids sorted by rank[pmd] * 512 + (vaddr & 511), so the
      PTEs of table position r with in-table offsets [a, b) are one searchsorted range.

    `refresh` merges the rows created since the last refresh (one searchsorted + insert, no
    full sort) and is a no-op when nothing was created.
    """

    def __init__(self) -> None:
        self.nptes = 0
        self.npmds = 0
        self.pmd_keys = np.zeros(0, dtype=np.uint64)
        self.pmd_order = np.zeros(0, dtype=np.int64)
        self.rank = np.zeros(0, dtype=np.int64)
        self.pte_keys = np.zeros(0, dtype=np.int64)
        self.pte_order = np.zeros(0, dtype=np.int64)

    def _pte_keys_of(self, ptes, ids: np.ndarray) -> np.ndarray:
        off = (ptes.vaddr[ids] & np.uint64(PTRS_PER_PTE - 1)).astype(np.int64)
        return self.rank[ptes.pmd[ids]] * PTRS_PER_PTE + off

    def refresh(self, mm) -> "PteIndex":
        ptes, pmds = mm.ptes, mm.pmds
        n, m = ptes.count, pmds.count
        if n == self.nptes and m == self.npmds:
            return self
        if m > self.npmds:
            new = np.arange(self.npmds, m, dtype=np.int64)
            nk = (pmds.pid[new].astype(np.uint64) << np.uint64(48)) | pmds.index[new]
            o = np.argsort(nk, kind="stable")
            nk, new = nk[o], new[o]
            pos = np.searchsorted(self.pmd_keys, nk)
            self.pmd_keys = np.insert(self.pmd_keys, pos, nk)
            self.pmd_order = np.insert(self.pmd_order, pos, new)
            self.rank = np.empty(m, dtype=np.int64)
            self.rank[self.pmd_order] = np.arange(m, dtype=np.int64)
            # ranks moved, order did not: old position j moves up by the number of tables
            # inserted before it; the PTE keys follow (a sequential pass, no re-sort)
            old = np.arange(self.npmds, dtype=np.int64)
            moved = old + np.searchsorted(pos, old, side="right")
            tab, off = self.pte_keys >> PMD_SHIFT, self.pte_keys & (PTRS_PER_PTE - 1)
            self.pte_keys = (moved[tab] << PMD_SHIFT) | off
            self.npmds = m
        if n > self.nptes:
            new = np.arange(self.nptes, n, dtype=np.int64)
            nk = self._pte_keys_of(ptes, new)
            o = np.argsort(nk, kind="stable")
            nk, new = nk[o], new[o]
            pos = np.searchsorted(self.pte_keys, nk)
            self.pte_keys = np.insert(self.pte_keys, pos, nk)
            self.pte_order = np.insert(self.pte_order, pos, new)
            self.nptes = n
        return self

    def table_range(self, ranks, lo_off, hi_off) -> tuple[np.ndarray, np.ndarray]:
        """[a, b) positions in pte_order of the PTEs of table positions `ranks` whose in-table
        offset lies in [lo_off, hi_off)."""
        base = np.asarray(ranks, dtype=np.int64) * PTRS_PER_PTE
        a = np.searchsorted(self.pte_keys, base + lo_off)
        b = np.searchsorted(self.pte_keys, base + hi_off)
        return a, b


_INDEXES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def pte_index(sim) -> PteIndex:
    """The simulator's PTE index, brought up to date (kept per address-space object)."""
    mm = sim.mm
    idx = _INDEXES.get(mm)
    if idx is None:
        idx = _INDEXES[mm] = PteIndex()
    return idx.refresh(mm)


def _ranges(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenation of the integer ranges [a_i, b_i), and the range number of each element."""
    cnt = np.maximum(b - a, 0)
    total = int(cnt.sum())
    which = np.repeat(np.arange(len(a), dtype=np.int64), cnt)
    if total == 0:
        return np.zeros(0, dtype=np.int64), which
    starts = np.cumsum(cnt) - cnt
    pos = np.arange(total, dtype=np.int64) - starts[which] + a[which]
    return pos, which


@noref
def pte_young_eligible(p, present, young, ppage, fflags, flru, ftype, fmemcg, fnid, memcg, nid, anon_ok, file_ok):
    """Whether PTE p is present and young and maps a folio on an LRU list (resident and not
    isolated) of an allowed type, of memcg `memcg` and on node `nid` (-1: any). Kernel:
    get_pte_pfn / get_pfn_folio filter before the young test; get_pfn_folio refuses a folio whose
    LRU_GEN is clear, i.e. one isolated for eviction (its young bit is left for its own rmap
    check), and one of another memcg or, on a machine of several nodes, another node (folio_nid
    == pgdat's)."""
    if not (present[p] and young[p]):
        return False
    g = ppage[p]
    if g < 0 or (fflags[g] & PG_resident) == 0 or flru[g] == NO_LIST:
        return False
    t = ftype[g]
    if (t == LRU_ANON and not anon_ok) or (t == LRU_FILE and not file_ok):
        return False
    return (memcg < 0 or fmemcg[g] == memcg) and (nid < 0 or fnid[g] == nid)


@njit(cache=True)
def _eligible_mask(pte_ids, present, young, ppage, fflags, flru, ftype, fmemcg, fnid, memcg, nid, anon_ok, file_ok):
    ok = np.empty(len(pte_ids), dtype=np.bool_)
    for i in range(len(pte_ids)):
        ok[i] = pte_young_eligible(pte_ids[i], present, young, ppage, fflags, flru, ftype, fmemcg, fnid, memcg, nid,
                                   anon_ok, file_ok)
    return ok


def _eligibility(sim, lruvec, anon_ok: bool, file_ok: bool) -> tuple:
    """pte_young_eligible's arguments after the PTE id: the tables, the lruvec's memcg and node
    (-1: not tested) and the allowed types."""
    ptes, f = sim.ptes, sim.folios
    memcg = getattr(getattr(lruvec, "memcg", None), "id", None)
    node = getattr(lruvec, "node", None)
    nid = node.nid if node is not None and len(getattr(sim, "nodes", ())) > 1 else -1
    return (ptes.present, ptes.young, ptes.page, f.flags, f.lru, f.type, f.memcg, f.nid,
            -1 if memcg is None else int(memcg), int(nid), bool(anon_ok), bool(file_ok))


def _eligible_young(sim, lruvec, pte_ids: np.ndarray, anon_ok: bool, file_ok: bool) -> np.ndarray:
    """Mask of the PTEs pte_young_eligible accepts for this lruvec."""
    return _eligible_mask(np.asarray(pte_ids, dtype=np.int64), *_eligibility(sim, lruvec, anon_ok, file_ok))


# ------------------------------------------------------------------------------------------------
# the aging walk


@dataclass
class WalkStats:
    ptes_walked: int = 0        # PTEs in the ranges of the tables scanned (present or not)
    young: int = 0              # young PTEs cleared and reported
    tables_scanned: int = 0
    skipped_pmd_young: int = 0  # tables skipped on a clear non-leaf PMD accessed bit
    skipped_bloom: int = 0      # tables skipped as absent from the Bloom filter of seq
    tables_added: int = 0       # dense tables added to the Bloom filter of seq + 1
    mms_walked: int = 0


def walk_mm(sim, lruvec, seq: int, on_young: Callable[[np.ndarray], object], *,
            bloom: BloomFilters | None, use_pmd_young: bool = True, anon_ok: bool = True,
            file_ok: bool = True, force_scan: bool = False,
            state: WalkState | None = None) -> WalkStats:
    """One aging round's page-table walk over every mm (kernel: the walk try_to_inc_max_seq does
    through iterate_mm_list / walk_mm / walk_pmd_range / walk_pte_range).

    mms in ascending pid order (with several memcgs: those of the lruvec's memcg); one is skipped unless force_scan or its `sim.mm_used[pid, node]` bit is
    set (no `mm_used` attribute = every mm used); the bit of every mm walked is cleared. An mm
    not in the walk state's `seen` set is walked with force_scan (the state is `state`, else
    `bloom.walk_state`, else none: no mm counts as new). Filter seq + 1 is reset first.

    Per PTE table overlapping an allowed VMA, in address order: unless forced, skip it if its
    PMD accessed bit is clear (else clear that bit; `use_pmd_young`), then skip it if it is not
    in the Bloom filter of seq. Scanned tables count every PTE of table ∩ VMA as walked; their
    young PTEs of eligible folios are cleared; a table with >= 1/8 young goes into the filter
    of seq + 1.

    `on_young` is called exactly once, at the end, with the folio ids of the young PTEs cleared
    (one per PTE, in walk order: a folio mapped twice appears twice), possibly empty.

    Eligible folios: resident, of an allowed type, and charged to the lruvec's memcg (kernel:
    get_pfn_folio). Tables are handled all at once per walk; in this model no PTE table is shared
    by two VMAs (anonymous pages lie below FILE_MAP_BASE, file areas are 2**32-page aligned).
    """
    stats = WalkStats()
    mm = sim.mm
    if state is None and bloom is not None:
        state = bloom.walk_state
    if bloom is not None:
        bloom.reset(seq + 1)
    used = getattr(sim, "mm_used", None)  # per pid and node
    nid = lruvec.node.nid if used is not None else 0

    # one Python step per mm and per VMA: the VMAs to walk, in walk order
    v_pid, v_start, v_end, v_force = [], [], [], []
    # with several memcgs each memcg's lruvec walks the mms of its own tasks (the per-memcg
    # lru_gen_mm_list; an mm is on its owner's list)
    owner = sim.memcg_of_pid if getattr(sim, "multi", False) else None
    for pid in sorted(mm.vmas):
        if owner is not None and owner[pid] != lruvec.memcg.id:
            continue
        new = state is not None and not state.seen[pid]
        force = force_scan or new
        if not force and used is not None and not used[pid, nid]:  # should_skip_mm
            continue
        if used is not None:
            used[pid, nid] = False
        if state is not None:
            state.seen[pid] = True
        stats.mms_walked += 1
        for file, vma in sorted(mm.vmas[pid].items(), key=lambda kv: kv[1].start):
            if (file is None and not anon_ok) or (file is not None and not file_ok):
                continue
            v_pid.append(pid)
            v_start.append(vma.start)
            v_end.append(vma.end)
            v_force.append(force)

    young_ptes = np.zeros(0, dtype=np.int64)
    if v_pid:
        young_ptes = _walk_vmas(sim, lruvec, seq, bloom, stats, use_pmd_young, anon_ok, file_ok,
                                np.array(v_pid, dtype=np.uint64), np.array(v_start, dtype=np.uint64),
                                np.array(v_end, dtype=np.uint64), np.array(v_force, dtype=bool))
    sim.cost["ptes_walked"] += stats.ptes_walked
    sim.cost["pmd_tables_skipped"] += stats.skipped_pmd_young + stats.skipped_bloom
    on_young(sim.ptes.page[young_ptes])
    return stats


class WalkRounds:
    """The page-table walks of an lruvec whose policy numbers the rounds itself (MGLRU's round is
    its max_seq; classic's mechanisms and a plug-in's ctx.walk_page_tables count walks): the
    Bloom filters and the round, which each walk advances."""

    def __init__(self) -> None:
        self.bloom = BloomFilters()
        self.seq = 0

    def walk(self, sim, lruvec, on_young: Callable[[np.ndarray], object], *, bloom: bool, pmd_young: bool,
             anon_ok: bool, file_ok: bool = True) -> WalkStats:
        """walk_mm for the next round."""
        stats = walk_mm(sim, lruvec, self.seq, on_young, bloom=self.bloom if bloom else None,
                        use_pmd_young=pmd_young, anon_ok=anon_ok, file_ok=file_ok, state=self.bloom.walk_state)
        self.seq += 1
        return stats

    def look(self, sim, lruvec, ptes: np.ndarray, on_young: Callable[[np.ndarray], object], *, bloom: bool,
             anon_ok: bool, file_ok: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """look_around_batch with the filter of the current round."""
        return look_around_batch(sim, lruvec, ptes, on_young, bloom=self.bloom if bloom else None, seq=self.seq,
                                 anon_ok=anon_ok, file_ok=file_ok)


def _walk_vmas(sim, lruvec, seq, bloom, stats, use_pmd_young, anon_ok, file_ok,
               v_pid, v_start, v_end, v_force) -> np.ndarray:
    """The vectorized part of walk_mm over the selected VMAs; returns the young PTE ids cleared."""
    idx = pte_index(sim)
    pmds = sim.mm.pmds
    shift = np.uint64(48)
    lo_key = (v_pid << shift) | (v_start >> np.uint64(PMD_SHIFT))
    last_key = (v_pid << shift) | ((v_end - np.uint64(1)) >> np.uint64(PMD_SHIFT))
    t0 = np.searchsorted(idx.pmd_keys, lo_key, side="left")
    t1 = np.searchsorted(idx.pmd_keys, last_key, side="right")
    tpos, vi = _ranges(t0, t1)  # table positions in walk order, and their VMA
    if len(tpos) == 0:
        return np.zeros(0, dtype=np.int64)
    pm = idx.pmd_order[tpos]
    tstart = pmds.index[pm] << np.uint64(PMD_SHIFT)
    lo = np.maximum(tstart, v_start[vi])
    hi = np.minimum(tstart + np.uint64(PTRS_PER_PTE), v_end[vi])
    total = (hi - lo).astype(np.int64)
    force = v_force[vi]
    scan = np.ones(len(tpos), dtype=bool)

    if use_pmd_young:  # non-leaf PMD accessed bit: skip, or test-and-clear (pmdp_test_and_clear_young)
        tested = ~force
        y = pmds.young[pm]
        skip = tested & ~y
        pmds.young[pm[tested & y]] = False
        stats.skipped_pmd_young = int(skip.sum())
        scan &= ~skip
    addrs = pmd_entry_address(pmds.pid[pm], pmds.index[pm])
    if bloom is not None:
        tested = scan & ~force
        if tested.any():
            miss = np.zeros(len(tpos), dtype=bool)
            miss[tested] = ~bloom.test(seq, addrs[tested])
            stats.skipped_bloom = int(miss.sum())
            scan &= ~miss

    s = np.flatnonzero(scan)
    stats.tables_scanned = len(s)
    stats.ptes_walked = int(total[s].sum())
    if len(s) == 0:
        return np.zeros(0, dtype=np.int64)
    a, b = idx.table_range(tpos[s], (lo[s] - tstart[s]).astype(np.int64),
                           (hi[s] - tstart[s]).astype(np.int64))
    pos, which = _ranges(a, b)
    cand = idx.pte_order[pos]
    ok = _eligible_young(sim, lruvec, cand, anon_ok, file_ok)
    young_ptes = cand[ok]
    sim.ptes.young[young_ptes] = False
    stats.young = len(young_ptes)
    if bloom is not None:
        ny = np.bincount(which[ok], minlength=len(s))
        dense = suitable_to_scan(total[s], ny)
        stats.tables_added = int(dense.sum())
        if stats.tables_added:
            bloom.add(seq + 1, addrs[s][dense])
    return young_ptes


# ------------------------------------------------------------------------------------------------
# lookaround


@njit(cache=True)
def lookaround_window(table_start, vma_start, vma_end, addr):
    """[start, end) in pages that lru_gen_look_around scans around addr: the part of the PTE
    table inside the VMA, cut to MIN_LRU_BATCH pages (near the start, near the end, or centred)."""
    start = max(table_start, vma_start)
    end = min(table_start + PTRS_PER_PTE, vma_end)
    if end - start > MIN_LRU_BATCH:
        half = MIN_LRU_BATCH // 2
        if addr - start < half:
            end = start + MIN_LRU_BATCH
        elif end - addr < half:
            start = end - MIN_LRU_BATCH
        else:
            start, end = addr - half, addr + half
    return start, end


@noref
def vma_window(pid, a, vma_keys, vma_bounds):
    """lookaround_window of the target (pid, a) in its VMA: the anonymous one below
    FILE_MAP_BASE, else its file's (mm.AddressSpaces.vma_keys; the areas are disjoint, so no
    other VMA can hold a; none found: the PTE table)."""
    ts = (a >> PMD_SHIFT) << PMD_SHIFT
    area = 0 if a < FILE_MAP_BASE else ((a - FILE_MAP_BASE) >> 32) + 1
    key = (pid << 40) | area
    k = np.searchsorted(vma_keys, key)
    vstart, vend = ts, ts + PTRS_PER_PTE
    if k < len(vma_keys) and vma_keys[k] == key and vma_bounds[k, 0] <= a < vma_bounds[k, 1]:
        vstart, vend = vma_bounds[k, 0], vma_bounds[k, 1]
    return lookaround_window(ts, vstart, vend, a)


@njit(cache=True)
def lookaround_clear(targets, vaddr, pid, pmd, vma_keys, vma_bounds, rank, pte_keys, pte_order, present, young, ppage,
                     fflags, flru, ftype, fmemcg, fnid, memcg, nid, anon_ok, file_ok):
    """The windows of look_around_batch, target after target (vma_window; `rank`, `pte_keys`,
    `pte_order`: the PteIndex): each PTE of the target's table in its window, in address order,
    other than the target itself, that pte_young_eligible accepts has its young bit cleared,
    counts as young for the target and gives its folio to `pages`. A PTE in two windows is
    cleared by the first (the second finds it old). A window of one page is not scanned.
    Returns per target (young, scanned), the folios, the PTEs walked and the PMD tables of the
    dense windows (suitable_to_scan), in target order."""
    k = len(targets)
    nyoung = np.ones(k, dtype=np.int64)
    scanned = np.ones(k, dtype=np.int64)
    pages = np.empty(k * MIN_LRU_BATCH, dtype=np.int64)  # at most one folio per PTE of the windows
    dense = np.empty(k, dtype=np.int64)
    n = nd = walked = 0
    for w in range(k):
        t = targets[w]
        a = np.int64(vaddr[t])
        lo, hi = vma_window(np.int64(pid[t]), a, vma_keys, vma_bounds)
        if hi - lo <= 1:
            continue
        scanned[w] = hi - lo
        walked += hi - lo
        ts = (a >> PMD_SHIFT) << PMD_SHIFT
        base = rank[pmd[t]] * PTRS_PER_PTE
        end = base + hi - ts
        pos = np.searchsorted(pte_keys, base + lo - ts)
        while pos < len(pte_keys) and pte_keys[pos] < end:  # the window's PTEs: one search, then a scan
            c = pte_order[pos]
            pos += 1
            if c != t and pte_young_eligible(c, present, young, ppage, fflags, flru, ftype, fmemcg, fnid, memcg, nid,
                                             anon_ok, file_ok):
                young[c] = False
                nyoung[w] += 1
                pages[n] = ppage[c]
                n += 1
        if nyoung[w] * PTES_PER_CACHELINE >= scanned[w]:  # suitable_to_scan
            dense[nd] = pmd[t]
            nd += 1
    return nyoung, scanned, pages[:n], walked, dense[:nd]


def look_around(sim, lruvec, pte_id: int, on_young: Callable[[np.ndarray], object], *,
                bloom: BloomFilters | None, seq: int, anon_ok: bool = True,
                file_ok: bool = True) -> tuple[int, int]:
    """Scan the neighbours of one young PTE the rmap walk found (kernel: lru_gen_look_around).

    The caller has already test-and-cleared the target's young bit (young starts at 1). Every
    other PTE of the window that is present, young and maps an eligible folio is cleared and its
    folio id passed to `on_young` (one call, window order, only if there is at least one).
    Returns (young, scanned pages). A window of one page does nothing and returns (1, 1). If the
    window is dense (suitable_to_scan), the target's PTE table is added to the Bloom filter of
    `seq` (the current max_seq), which the next walk reads.
    """
    young, scanned = look_around_batch(sim, lruvec, np.array([pte_id], dtype=np.int64), on_young,
                                       bloom=bloom, seq=seq, anon_ok=anon_ok, file_ok=file_ok)
    return int(young[0]), int(scanned[0])


def look_around_batch(sim, lruvec, targets: np.ndarray, on_young: Callable[[np.ndarray], object], *,
                      bloom: BloomFilters | None, seq: int, anon_ok: bool = True,
                      file_ok: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """look_around for a sequence of young target PTEs, with the result of calling it on each in
    order: a neighbour young at the start is cleared by the first window (in target order) that
    holds it, so later windows do not count it. Eligibility does not change along the sequence
    (folios stay on their lists; targets' folios are isolated, so never neighbours). `on_young`
    gets, in one call, the folio ids of every window's cleared neighbours in target then window
    order. Returns per target (young, scanned)."""
    if len(targets) == 0:
        return np.ones(0, dtype=np.int64), np.ones(0, dtype=np.int64)
    young, scanned, pages, walked, dense = lookaround_clear(targets, *lookaround_tables(sim),
                                                           *_eligibility(sim, lruvec, anon_ok, file_ok))
    if walked:
        sim.cost["ptes_walked"] += walked
    if len(pages):
        on_young(pages)
    if bloom is not None:
        add_dense(sim, bloom, seq, dense)
    return young, scanned


def lookaround_tables(sim) -> tuple:
    """lookaround_clear's arguments after the targets, up to the eligibility test: the PTEs'
    addresses, processes and PMD tables, the VMAs, and the PTE index (pte_index)."""
    ptes, idx = sim.ptes, pte_index(sim)
    return (ptes.vaddr, ptes.pid, ptes.pmd, sim.mm.vma_keys, sim.mm.vma_bounds, idx.rank, idx.pte_keys,
            idx.pte_order)


def add_dense(sim, bloom: BloomFilters, seq: int, dense: np.ndarray) -> None:
    """update_bloom_filter for the PMD tables (`dense`: their ids) lookaround found dense."""
    if len(dense):
        bloom.add(seq, pmd_entry_address(sim.mm.pmds.pid[dense], sim.mm.pmds.index[dense]))
