"""core.ptwalk: Bloom filters, the aging page-table walk, lookaround, and the rmap path with
lookaround (core.rmap.folio_referenced_lookaround), on small real machines."""

from __future__ import annotations

import numpy as np
import pytest

from reclaim_ext.core.engine import SimConfig, Simulator
from reclaim_ext.core.ptwalk import (
    BLOOM_FILTER_SHIFT, GOLDEN_RATIO_64, MAX_LRU_BATCH, MIN_LRU_BATCH, NR_BLOOM_FILTERS,
    BloomFilters, WalkState, hash_ptr, look_around, look_around_batch, lookaround_window, pmd_entry_address,
    pte_index, suitable_to_scan, walk_mm,
)
from reclaim_ext.core.rmap import folio_referenced, folio_referenced_lookaround
from reclaim_ext.machine.mm import FILE_MAP_BASE
from reclaim_ext.policies import get_policy
from reclaim_ext.trace import ArrayTrace, Kind
from reclaim_ext.trace.record import make_records


# ------------------------------------------------------------------------------------------------
# helpers


def new_machine() -> Simulator:
    return Simulator(SimConfig(memory_pages=4096, swap_pages=4096), get_policy("classic"))


def records(kind: int, pages, *, pid: int = 1, file: int = 0) -> np.ndarray:
    pages = list(pages)
    r = make_records(len(pages))
    r["pid"] = pid
    r["kind"] = int(kind)
    r["file"] = 0 if kind == Kind.ANON else file
    r["page"] = pages
    return r


def run(sim: Simulator, *parts: np.ndarray) -> None:
    sim.run(ArrayTrace("t", np.concatenate(parts)))


def pte_of(sim: Simulator, pid: int, vaddr: int) -> int:
    n = sim.ptes.count
    hit = np.flatnonzero((sim.ptes.pid[:n] == pid) & (sim.ptes.vaddr[:n] == np.uint64(vaddr)))
    assert len(hit) == 1
    return int(hit[0])


def pmd_of(sim: Simulator, pid: int, vaddr: int) -> int:
    return int(sim.ptes.pmd[pte_of(sim, pid, vaddr)])


def pmd_addr(sim: Simulator, pmd: int) -> np.ndarray:
    return pmd_entry_address(sim.mm.pmds.pid[[pmd]], sim.mm.pmds.index[[pmd]])


def young_of(sim: Simulator, pid: int, vaddrs) -> np.ndarray:
    return np.array([bool(sim.ptes.young[pte_of(sim, pid, v)]) for v in vaddrs])


class Collect:
    """An on_young callback that records every call."""

    def __init__(self) -> None:
        self.calls: list[np.ndarray] = []

    def __call__(self, ids) -> None:
        self.calls.append(np.asarray(ids).copy())

    @property
    def ids(self) -> list[int]:
        return [int(x) for c in self.calls for x in c]


def walk(sim, seq=5, bloom=None, *, used=True, **kw):
    """One walk; by default every mm is marked used first (the engine sets these bits)."""
    if used:
        sim.mm_used = np.ones((1 << 16, 1), dtype=bool)  # per pid and node
    cb = Collect()
    st = walk_mm(sim, sim.root_lruvec(sim.node), seq, cb, bloom=bloom, **kw)
    return st, cb


def seen_all(sim: Simulator) -> WalkState:
    """A walk state in which every current mm was seen by an earlier round (no forcing)."""
    s = WalkState()
    s.seen[list(sim.mm.vmas)] = True
    return s


# ------------------------------------------------------------------------------------------------
# constants, hash, Bloom filters


def test_constants():
    assert (NR_BLOOM_FILTERS, BLOOM_FILTER_SHIFT, MIN_LRU_BATCH, MAX_LRU_BATCH) == (2, 15, 64, 4096)
    assert GOLDEN_RATIO_64 == 0x61C8864680B583EB


def test_hash_ptr_hand_computed():
    # 1 * G >> 34 = 0x61C8864680B583EB >> 34
    assert int(hash_ptr(np.uint64(1), 30)) == 0x61C8864680B583EB >> 34 == 410132881
    # 2 * G = 0xC3910C8D016B07D6 (no wrap); >> 34
    assert int(hash_ptr(np.uint64(2), 30)) == 0xC3910C8D016B07D6 >> 34
    # 4 * G wraps: 0x1_8722_191A_02D6_0FAC mod 2**64 = 0x8722191A02D60FAC
    assert int(hash_ptr(np.uint64(4), 30)) == 0x8722191A02D60FAC >> 34
    a = 0xFFFF888000000000 + (7 << 32) + 123 * 8
    assert int(pmd_entry_address([7], [123])[0]) == a
    assert int(hash_ptr(np.array([a], dtype=np.uint64))[0]) == ((a * GOLDEN_RATIO_64) % 2**64) >> 34
    assert int(hash_ptr(np.uint64(a), 12)) == ((a * GOLDEN_RATIO_64) % 2**64) >> 52


def test_bloom_keys_split_the_30_bit_hash():
    a = pmd_entry_address([3], [9])
    h = int(hash_ptr(a, 30)[0])
    k0, k1 = BloomFilters.keys(a)
    assert (int(k0[0]), int(k1[0])) == (h & 0x7FFF, h >> 15)


def test_bloom_add_test_reset_and_unallocated():
    b = BloomFilters()
    addrs = pmd_entry_address(np.arange(5), np.arange(5) * 1000)
    assert b.test(4, addrs).all()  # never allocated: everything present
    b.add(4, addrs[:2])            # adding to an unallocated filter is a no-op
    assert b.filters[0] is None
    b.reset(4)
    assert not b.test(4, addrs).any()
    assert b.test(5, addrs).all()  # the other filter is still unallocated
    b.add(4, addrs[:2])
    assert b.test(4, addrs).tolist()[:2] == [True, True]
    assert not b.test(4, addrs[2:]).any()  # 3 keys in 2**15 bits: no false positive here
    assert b.test(6, addrs[:2]).all()      # same filter index (6 % 2 == 4 % 2)
    b.reset(6)
    assert not b.test(4, addrs).any()      # reset clears


def test_bloom_test_needs_both_bits():
    b = BloomFilters()
    b.reset(0)
    a = pmd_entry_address([1], [2])
    k0, k1 = BloomFilters.keys(a)
    assert k0[0] != k1[0]
    b.filters[0][k0] = True
    assert not b.test(0, a)[0]
    b.filters[0][k0] = False
    b.filters[0][k1] = True
    assert not b.test(0, a)[0]
    b.filters[0][k0] = True
    assert b.test(0, a)[0]


def test_suitable_to_scan():
    assert suitable_to_scan(64, 8) and not suitable_to_scan(64, 7)
    np.testing.assert_array_equal(suitable_to_scan(np.array([8, 9, 512]), np.array([1, 1, 64])),
                                  [True, False, True])


# ------------------------------------------------------------------------------------------------
# the walk


def test_walk_total_counts_vma_intersection_and_clears_young():
    sim = new_machine()
    run(sim, records(Kind.ANON, [100, 699, 300]))  # anon VMA [100, 700): tables 0 and 1
    before = sim.cost["ptes_walked"]
    st, cb = walk(sim)
    assert st.tables_scanned == 2
    assert st.ptes_walked == (512 - 100) + (700 - 512) == 600
    assert sim.cost["ptes_walked"] - before == 600
    assert st.young == 3
    assert not young_of(sim, 1, [100, 300, 699]).any()
    pages = sim.ptes.page[[pte_of(sim, 1, v) for v in (100, 300, 699)]].tolist()
    assert cb.ids == pages  # vaddr order
    assert len(cb.calls) == 1


def test_walk_calls_on_young_once_even_when_nothing_is_young():
    sim = new_machine()
    run(sim, records(Kind.ANON, [1, 2]))
    walk(sim)
    st, cb = walk(sim, use_pmd_young=False)
    assert st.young == 0 and len(cb.calls) == 1 and len(cb.calls[0]) == 0


def test_walk_skips_tables_with_clear_pmd_young_and_clears_the_others():
    sim = new_machine()
    run(sim, records(Kind.ANON, [10, 520, 1040]))  # three tables
    p0, p1, p2 = (pmd_of(sim, 1, v) for v in (10, 520, 1040))
    assert sim.mm.pmds.young[[p0, p1, p2]].all()
    sim.mm.pmds.young[p1] = False
    before = sim.cost["pmd_tables_skipped"]
    st, cb = walk(sim)
    assert st.skipped_pmd_young == 1 and st.tables_scanned == 2
    assert sim.cost["pmd_tables_skipped"] - before == 1
    assert young_of(sim, 1, [10, 520, 1040]).tolist() == [False, True, False]
    assert not sim.mm.pmds.young[[p0, p1, p2]].any()  # the bits of the passed tables were cleared
    # next round: every table is skipped; with use_pmd_young=False all are scanned again
    st, _ = walk(sim)
    assert st.skipped_pmd_young == 3 and st.tables_scanned == 0
    st, cb = walk(sim, use_pmd_young=False)
    assert st.tables_scanned == 3 and cb.ids == [int(sim.ptes.page[pte_of(sim, 1, 520)])]


def test_walk_force_scan_ignores_pmd_young_and_keeps_the_bit():
    sim = new_machine()
    run(sim, records(Kind.ANON, [10, 520]))
    p0, p1 = pmd_of(sim, 1, 10), pmd_of(sim, 1, 520)
    sim.mm.pmds.young[p0] = False
    st, _ = walk(sim, force_scan=True)
    assert st.skipped_pmd_young == 0 and st.tables_scanned == 2
    assert sim.mm.pmds.young[p1]  # not test-and-cleared under force_scan


def test_walk_bloom_skip_unless_force_and_double_buffering():
    sim = new_machine()
    # table 0 dense (64 of 512 young), table 1 sparse (1 young of 512)
    run(sim, records(Kind.ANON, list(range(0, 512, 8)) + [700, 1023]))
    p0, p1 = pmd_of(sim, 1, 0), pmd_of(sim, 1, 700)
    b = BloomFilters()
    b.walk_state = seen_all(sim)
    seq = 7
    b.reset(seq)  # the filter this walk reads: allocated and empty
    st, cb = walk(sim, seq=seq, bloom=b)
    assert st.skipped_bloom == 2 and st.tables_scanned == 0 and cb.ids == []
    assert young_of(sim, 1, [0, 700]).all()
    # walk seq reads filter seq % 2 and wrote (reset) filter (seq + 1) % 2 only
    assert b.filters[(seq + 1) % 2] is not None and b.filters[seq % 2] is not None
    b.add(seq, pmd_addr(sim, p0))
    sim.mm.pmds.young[[p0, p1]] = True
    st, cb = walk(sim, seq=seq, bloom=b)
    assert st.skipped_bloom == 1 and st.tables_scanned == 1 and st.young == 64
    assert young_of(sim, 1, [0, 700]).tolist() == [False, True]
    assert st.tables_added == 1
    assert b.test(seq + 1, pmd_addr(sim, p0))[0]       # dense table kept for the next round
    assert not b.test(seq + 1, pmd_addr(sim, p1))[0]
    # force_scan bypasses the filter
    sim.mm.pmds.young[[p0, p1]] = True
    st, _ = walk(sim, seq=seq, bloom=b, force_scan=True)
    assert st.skipped_bloom == 0 and st.tables_scanned == 2


def test_walk_adds_dense_tables_for_seq_plus_one_and_not_sparse():
    sim = new_machine()
    # table 0: VMA part [0, 512), 64 young = exactly 1/8 -> dense; table 1: [512, 1024), 63 young
    run(sim, records(Kind.ANON, list(range(0, 512, 8)) + list(range(512, 1016, 8)) + [1023]))
    sim.ptes.young[pte_of(sim, 1, 1023)] = False
    p0, p1 = pmd_of(sim, 1, 0), pmd_of(sim, 1, 512)
    b = BloomFilters()
    st, _ = walk(sim, seq=2, bloom=b)  # filter 2 never allocated: everything passes
    assert st.tables_scanned == 2 and st.tables_added == 1
    assert b.test(3, pmd_addr(sim, p0))[0] and not b.test(3, pmd_addr(sim, p1))[0]
    # the next round reads filter 3: only the dense table is scanned
    run(sim, records(Kind.ANON, [0, 8, 512, 520]))
    st, cb = walk(sim, seq=3, bloom=b)
    assert st.skipped_bloom == 1 and st.tables_scanned == 1
    assert cb.ids == sim.ptes.page[[pte_of(sim, 1, 0), pte_of(sim, 1, 8)]].tolist()
    # filter 4 (= index 0) was reset at the start of walk 3, and the table was sparse this time
    assert not b.test(4, pmd_addr(sim, p0))[0]


def test_walk_anon_ok_file_ok():
    sim = new_machine()
    run(sim, records(Kind.ANON, [5, 6]), records(Kind.FILE_MMAP, [0, 1, 2], file=3))
    anon = [pte_of(sim, 1, v) for v in (5, 6)]
    file = [pte_of(sim, 1, FILE_MAP_BASE + (3 << 32) + i) for i in range(3)]
    st, cb = walk(sim, anon_ok=False)
    assert st.tables_scanned == 1 and st.ptes_walked == 3
    assert sim.ptes.young[anon].all() and not sim.ptes.young[file].any()
    assert cb.ids == sim.ptes.page[file].tolist()
    sim.ptes.young[file] = True
    sim.mm.pmds.young[:sim.mm.pmds.count] = True
    st, cb = walk(sim, file_ok=False)
    assert st.ptes_walked == 2 and cb.ids == sim.ptes.page[anon].tolist()
    assert sim.ptes.young[file].all() and not sim.ptes.young[anon].any()


def test_walk_skips_folios_not_resident_or_not_present():
    sim = new_machine()
    run(sim, records(Kind.ANON, [1, 2, 3]))
    p1, p2, p3 = (pte_of(sim, 1, v) for v in (1, 2, 3))
    sim.ptes.present[p2] = False
    from reclaim_ext.machine.folio import PG_resident
    sim.folios.flags[sim.ptes.page[p3]] &= ~np.uint16(PG_resident)
    st, cb = walk(sim)
    assert cb.ids == [int(sim.ptes.page[p1])]
    assert st.ptes_walked == 3  # every PTE of the range counts, present or not
    assert sim.ptes.young[p2] and sim.ptes.young[p3]  # ineligible PTEs are not cleared


def test_walk_used_bits_and_new_mms():
    sim = new_machine()
    run(sim, records(Kind.ANON, [1], pid=1), records(Kind.ANON, [1], pid=2),
        records(Kind.ANON, [1], pid=3))
    b = BloomFilters()
    b.walk_state = WalkState()
    b.walk_state.seen[[1, 2]] = True  # pid 3 is new this round
    sim.mm_used = np.zeros((1 << 16, 1), dtype=bool)  # per pid and node
    sim.mm_used[1] = True
    pmd3 = pmd_of(sim, 3, 1)
    sim.mm.pmds.young[pmd3] = False  # would be skipped unless forced
    st, cb = walk(sim, bloom=b, used=False)
    assert st.mms_walked == 2
    assert young_of(sim, 2, [1]).all()               # unused mm: not walked
    assert not young_of(sim, 1, [1]).any() and not young_of(sim, 3, [1]).any()
    assert not sim.mm_used[1] and b.walk_state.seen[3]
    assert cb.ids == [int(sim.ptes.page[pte_of(sim, p, 1)]) for p in (1, 3)]  # pid order
    # next round: nobody used, nobody new -> nothing walked; force_scan walks everyone
    st, _ = walk(sim, bloom=b, used=False)
    assert st.mms_walked == 0
    sim.mm_used[2] = True
    st, _ = walk(sim, bloom=b, force_scan=True, used=False)
    assert st.mms_walked == 3 and not sim.mm_used[2]
    assert not young_of(sim, 2, [1]).any()


def test_walk_reports_a_shared_folio_once_per_mapping_in_order():
    sim = new_machine()
    run(sim, records(Kind.FILE_MMAP, [4, 5], pid=9, file=2),
        records(Kind.FILE_MMAP, [5], pid=3, file=2), records(Kind.ANON, [0], pid=3))
    f4, f5 = (int(sim.ptes.page[pte_of(sim, 9, FILE_MAP_BASE + (2 << 32) + i)]) for i in (4, 5))
    a0 = int(sim.ptes.page[pte_of(sim, 3, 0)])
    st, cb = walk(sim)
    assert cb.ids == [a0, f5, f4, f5]  # pid 3 (anon VMA, then file), then pid 9
    assert st.young == 4
    assert not sim.ptes.young[: sim.ptes.count].any()


def test_walk_matches_a_brute_force_oracle():
    rng = np.random.default_rng(7)
    sim = new_machine()
    parts = []
    for pid in (1, 4, 6):
        parts.append(records(Kind.ANON, rng.integers(0, 3000, 300), pid=pid))
        parts.append(records(Kind.FILE_MMAP, rng.integers(0, 2000, 200), pid=pid, file=int(pid % 2)))
    run(sim, *parts)
    n, m = sim.ptes.count, sim.mm.pmds.count
    sim.ptes.young[:n] = rng.random(n) < 0.3
    sim.mm.pmds.young[:m] = rng.random(m) < 0.7
    b = BloomFilters()
    b.walk_state = seen_all(sim)
    b.reset(1)
    passing = rng.random(m) < 0.5
    b.add(1, pmd_entry_address(sim.mm.pmds.pid[:m], sim.mm.pmds.index[:m])[passing])
    in_filter = b.test(1, pmd_entry_address(sim.mm.pmds.pid[:m], sim.mm.pmds.index[:m]))
    scanned = sim.mm.pmds.young[:m] & in_filter
    # oracle: young PTEs of scanned tables, ordered by (pid, vaddr)
    young0 = sim.ptes.young[:n].copy()
    keep = young0 & scanned[sim.ptes.pmd[:n]]
    ids = np.flatnonzero(keep)
    ids = ids[np.lexsort((sim.ptes.vaddr[ids], sim.ptes.pid[ids]))]
    st, cb = walk(sim, seq=1, bloom=b)
    assert cb.ids == sim.ptes.page[ids].tolist()
    assert st.tables_scanned == int(scanned.sum())
    np.testing.assert_array_equal(sim.ptes.young[:n], young0 & ~keep)
    assert st.skipped_pmd_young + st.skipped_bloom + st.tables_scanned == m


def test_pte_index_incremental_equals_full_sort():
    rng = np.random.default_rng(3)
    sim = new_machine()
    for k in range(4):
        sim.mm.translate(records(Kind.ANON, rng.integers(0, 5000, 200), pid=int(rng.integers(0, 4))))
        sim.mm.translate(records(Kind.FILE_MMAP, rng.integers(0, 5000, 100), pid=2, file=k))
        idx = pte_index(sim)
        n = sim.ptes.count
        assert idx.nptes == n
        full = np.lexsort((sim.ptes.vaddr[:n], sim.ptes.pid[:n]))
        np.testing.assert_array_equal(idx.pte_order, full)
        assert (np.diff(idx.pte_keys) > 0).all()


# ------------------------------------------------------------------------------------------------
# lookaround


@pytest.mark.parametrize("vma,addr,window", [
    ((0, 512), 10, (0, 64)),        # near the start
    ((0, 512), 500, (448, 512)),    # near the end
    ((0, 512), 200, (168, 232)),    # middle
    ((0, 512), 31, (0, 64)),        # 31 < 32 pages from the start
    ((0, 512), 32, (0, 64)),        # exactly 32: centred window [0, 64)
    ((0, 512), 480, (448, 512)),    # end - addr = 32: centred [448, 512)
    ((0, 512), 481, (448, 512)),
    ((100, 140), 120, (100, 140)),  # VMA smaller than 64
    ((300, 2000), 700, (668, 732)),  # VMA across tables: table [512, 1024)
])
def test_lookaround_window(vma, addr, window):
    assert lookaround_window(addr - addr % 512, vma[0], vma[1], addr) == window


def lookaround_machine(pages):
    sim = new_machine()
    run(sim, records(Kind.ANON, pages))
    return sim


@pytest.mark.parametrize("target,window", [(10, (0, 64)), (500, (448, 512)), (200, (168, 232))])
def test_look_around_clears_the_window_only(target, window):
    sim = lookaround_machine(range(512))  # one full table, VMA [0, 512), all young
    t = pte_of(sim, 1, target)
    sim.ptes.young[t] = False  # the caller's test-and-clear
    cb = Collect()
    before = sim.cost["ptes_walked"]
    young, scanned = look_around(sim, sim.root_lruvec(sim.node), t, cb, bloom=None, seq=3)
    assert (young, scanned) == (64, 64)
    assert sim.cost["ptes_walked"] - before == 64
    y = young_of(sim, 1, range(512))
    lo, hi = window
    assert not y[lo:hi].any() and y[:lo].all() and y[hi:].all()
    expect = [int(sim.ptes.page[pte_of(sim, 1, v)]) for v in range(lo, hi) if v != target]
    assert cb.ids == expect and len(cb.calls) == 1


def test_look_around_small_vma_and_sparse_window():
    sim = lookaround_machine([100, 105, 120, 139])  # VMA [100, 140)
    t = pte_of(sim, 1, 120)
    sim.ptes.young[t] = False
    sim.ptes.young[pte_of(sim, 1, 139)] = False
    cb = Collect()
    young, scanned = look_around(sim, sim.root_lruvec(sim.node), t, cb, bloom=None, seq=3)
    assert (young, scanned) == (3, 40)
    assert cb.ids == [int(sim.ptes.page[pte_of(sim, 1, v)]) for v in (100, 105)]


def test_look_around_single_page_does_nothing():
    sim = lookaround_machine([77])
    t = pte_of(sim, 1, 77)
    sim.ptes.young[t] = False
    cb = Collect()
    b = BloomFilters()
    b.reset(3)
    before = dict(sim.cost)
    assert look_around(sim, sim.root_lruvec(sim.node), t, cb, bloom=b, seq=3) == (1, 1)
    assert cb.calls == [] and sim.cost == before and not b.filters[1].any()


def test_look_around_respects_types_and_skips_the_target():
    sim = new_machine()
    run(sim, records(Kind.FILE_MMAP, range(10), file=4))
    t = pte_of(sim, 1, FILE_MAP_BASE + (4 << 32) + 5)
    # the target is still young here: look_around must not report or clear it
    cb = Collect()
    young, scanned = look_around(sim, sim.root_lruvec(sim.node), t, cb, bloom=None, seq=3,
                                 file_ok=False)
    assert (young, scanned) == (1, 10) and cb.calls == []
    young, scanned = look_around(sim, sim.root_lruvec(sim.node), t, cb, bloom=None, seq=3)
    assert (young, scanned) == (10, 10) and len(cb.ids) == 9
    assert sim.ptes.young[t]


def test_look_around_bloom_feedback_goes_to_current_seq():
    sim = lookaround_machine(list(range(0, 64, 8)) + list(range(512, 576, 9)) + [1023])
    dense, sparse = pte_of(sim, 1, 0), pte_of(sim, 1, 512)
    b = BloomFilters()
    for s in (4, 5):
        b.reset(s)
    for t in (dense, sparse):
        sim.ptes.young[t] = False
    lv = sim.root_lruvec(sim.node)
    assert look_around(sim, lv, dense, Collect(), bloom=b, seq=4) == (8, 64)  # 8 * 8 >= 64
    assert look_around(sim, lv, sparse, Collect(), bloom=b, seq=4) == (8, 64)
    p0, p1 = pmd_of(sim, 1, 0), pmd_of(sim, 1, 512)
    assert b.test(4, pmd_addr(sim, p0))[0] and b.test(4, pmd_addr(sim, p1))[0]
    assert not b.test(5, pmd_addr(sim, p0))[0]  # not seq + 1
    b.reset(4)
    sim.ptes.young[[pte_of(sim, 1, v) for v in range(512 + 18, 576, 9)]] = True  # 6 + target
    assert look_around(sim, lv, sparse, Collect(), bloom=b, seq=4) == (7, 64)
    assert not b.test(4, pmd_addr(sim, p1))[0]  # 7 * 8 < 64: sparse


# ------------------------------------------------------------------------------------------------
# rmap with lookaround


def test_folio_referenced_lookaround_looks_after_the_walk_and_spares_the_batch():
    """The batch's folios are isolated (off their lists), so a lookaround never clears their PTEs:
    page 2 keeps its young bit for its own check, page 1 (on its list, not in the batch) is the
    neighbour the lookaround of page 0 clears."""
    sim = new_machine()
    run(sim, records(Kind.ANON, [0, 1, 2]), records(Kind.ANON, [1000], pid=2))
    ids = sim.ptes.page[[pte_of(sim, 1, 0), pte_of(sim, 1, 2), pte_of(sim, 2, 1000)]]
    lv = sim.root_lruvec(sim.node)
    lv.delete(sim.folios, ids)  # isolated, as shrink_folio_list's batch is
    snapshot = sim.ptes.young.copy()
    cost0 = dict(sim.cost)
    young_ref, exec_ref = folio_referenced(sim, ids)
    cost_ref = {k: sim.cost[k] - cost0[k] for k in ("rmap_walks", "ptes_checked")}
    assert young_ref.tolist() == [1, 1, 1]
    sim.ptes.young[:] = snapshot
    looked = []
    seen = Collect()

    def look(ptes):
        looked.extend(ptes.tolist())
        for p in ptes.tolist():
            look_around(sim, lv, p, seen, bloom=None, seq=3)

    cost1 = dict(sim.cost)
    young, vm_exec = folio_referenced_lookaround(sim, ids, look)
    assert young.tolist() == [1, 1, 1]
    assert {k: sim.cost[k] - cost1[k] for k in ("rmap_walks", "ptes_checked")} == cost_ref
    assert looked == [pte_of(sim, 1, 0), pte_of(sim, 1, 2), pte_of(sim, 2, 1000)]
    assert seen.ids == sim.ptes.page[[pte_of(sim, 1, 1)]].tolist()
    assert not sim.ptes.young[: sim.ptes.count].any()


def test_look_around_batch_equals_one_look_around_after_another():
    """Overlapping windows: a neighbour is cleared (and reported) by the first window holding
    it, exactly as sequential look_around calls do."""
    results = []
    for batched in (False, True):
        sim = new_machine()
        run(sim, records(Kind.ANON, list(range(0, 200))))
        lv = sim.root_lruvec(sim.node)
        targets = np.array([pte_of(sim, 1, p) for p in (10, 20, 150, 40)], dtype=np.int64)
        lv.delete(sim.folios, sim.ptes.page[targets])
        sim.ptes.young[targets] = False
        seen = Collect()
        b = BloomFilters()
        b.reset(3)
        c0 = sim.cost["ptes_walked"]
        if batched:
            y, sc = look_around_batch(sim, lv, targets, seen, bloom=b, seq=3)
            out = (y.tolist(), sc.tolist())
        else:
            out = tuple(map(list, zip(*[look_around(sim, lv, int(t), seen, bloom=b, seq=3) for t in targets])))
        results.append((out, seen.ids, sim.cost["ptes_walked"] - c0, sim.ptes.young.copy(), b.filters[1].copy()))
    (o1, s1, w1, y1, f1), (o2, s2, w2, y2, f2) = results
    assert o1 == o2 and s1 == s2 and w1 == w2
    assert o1[0][1] < o1[1][1]  # the second window found fewer: the first had cleared the overlap
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(f1, f2)


def test_folio_referenced_lookaround_matches_folio_referenced_without_lookaround():
    rng = np.random.default_rng(11)
    sim = new_machine()
    run(sim, records(Kind.FILE_EXEC, rng.integers(0, 300, 200), pid=1, file=1),
        records(Kind.FILE_MMAP, rng.integers(0, 300, 200), pid=2, file=1),
        records(Kind.ANON, rng.integers(0, 300, 200), pid=2))
    n = sim.ptes.count
    sim.ptes.young[:n] = rng.random(n) < 0.5
    sim.ptes.present[:n] &= rng.random(n) < 0.9
    ids = np.unique(sim.ptes.page[:n])
    rng.shuffle(ids)
    snap = sim.ptes.young.copy()
    c0 = dict(sim.cost)
    y_ref, x_ref = folio_referenced(sim, ids)
    d_ref = {k: sim.cost[k] - c0[k] for k in sim.cost}
    after_ref = sim.ptes.young.copy()
    sim.ptes.young[:] = snap
    calls = []
    c1 = dict(sim.cost)
    y, x = folio_referenced_lookaround(sim, ids, calls.append)
    assert {k: sim.cost[k] - c1[k] for k in sim.cost} == d_ref
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(x, x_ref)
    np.testing.assert_array_equal(sim.ptes.young, after_ref)
    assert sum(len(c) for c in calls) == int(y_ref.sum()) and x_ref.any() and (y_ref > 1).any()


def test_folio_referenced_lookaround_empty_and_unmapped():
    sim = new_machine()
    run(sim, records(Kind.FILE_FD, [1, 2], file=1))
    ids = np.unique(sim.mm.translate(records(Kind.FILE_FD, [1, 2], file=1))[0])
    y, x = folio_referenced_lookaround(sim, ids, lambda p: pytest.fail("no PTE to look at"))
    assert y.tolist() == [0, 0] and not x.any()
    y, x = folio_referenced_lookaround(sim, ids[:0], lambda p: None)
    assert len(y) == 0
