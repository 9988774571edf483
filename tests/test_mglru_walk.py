"""MGLRU access detection through page tables (reference §3.5-§3.7, §3.15): the two-step
promotion rule of the aging walk with lock-free (logical) generations, lookaround from the
eviction's rmap walk, and the Bloom-filter feedback between walks."""

from __future__ import annotations

import numpy as np
import pytest
from mglru_helpers import age, ids_of, lst, new_sim, ptes_of, recs, replay, state

from reclaim_ext.core.ops import ScanControl
from reclaim_ext.core.ptwalk import pmd_entry_address
from reclaim_ext.machine.folio import (
    LRU_ANON,
    LRU_FILE,
    PG_referenced,
    PG_resident,
    PG_workingset,
)
from reclaim_ext.trace import Kind

# ------------------------------------------------------------------------------------------------
# the page-table walk: folio_update_gen (§3.5) with lock-free generations (§3.15)


@pytest.mark.parametrize("kind", [Kind.FILE_MMAP, Kind.ANON])
def test_walk_promotes_on_the_second_sighting_logically(kind):
    sim = new_sim()
    ops, lv, lg = state(sim)
    t = LRU_ANON if kind == Kind.ANON else LRU_FILE
    m = recs(kind, [0])
    replay(sim, m)
    g = int(ids_of(sim, m)[0])
    f = sim.folios
    assert f.lru[g] == lst(t, 2)
    # first sighting: PG_referenced only, no promotion, the young bit is cleared
    age(sim)
    assert f.flags[g] & PG_referenced and not f.flags[g] & PG_workingset
    assert f.lru[g] == f.lru_gen[g] == lst(t, 2)
    assert not sim.ptes.young[ptes_of(sim, m)].any()
    assert sim.cost["atomic_updates"] == 0
    # accessed again: promoted to gen(max_seq) of the walk, a lock-free update only
    replay(sim, m)
    walk_seq = lg.max_seq
    age(sim)
    assert f.lru_gen[g] == lst(t, walk_seq)      # logical: the walk's max_seq
    assert f.lru[g] == lst(t, 2)                 # physical: still the old list
    assert f.flags[g] & PG_workingset and not f.flags[g] & PG_referenced
    assert f.lru_refs[g] == 0
    assert sim.cost["atomic_updates"] == 1
    assert lv.nr_logical[lst(t, walk_seq)] == 1 and lv.nr_logical[lst(t, 2)] == 0
    assert lv.nr[lst(t, 2)] == 1 and lv.nr[lst(t, walk_seq)] == 0
    assert ops.check(sim, lv) == []


def test_walk_without_lockfree_moves_the_folio():
    sim = new_sim(mechanisms="-lockfree")
    ops, lv, lg = state(sim)
    m = recs(Kind.FILE_MMAP, [0])
    replay(sim, m)
    g = int(ids_of(sim, m)[0])
    age(sim)
    replay(sim, m)
    walk_seq = lg.max_seq
    age(sim)
    f = sim.folios
    assert f.lru[g] == f.lru_gen[g] == lst(LRU_FILE, walk_seq)
    assert f.flags[g] & PG_workingset and not f.flags[g] & PG_referenced
    assert sim.cost["atomic_updates"] == 0
    assert list(lv.nr) == list(lv.nr_logical)


def test_walk_promotes_a_read_folio_on_first_sighting():
    """PG_referenced from a read() counts as the first sighting."""
    sim = new_sim()
    ops, lv, lg = state(sim)
    replay(sim, recs(Kind.FILE_FD, [5]), recs(Kind.FILE_MMAP, [5]))
    g = int(ids_of(sim, recs(Kind.FILE_FD, [5]))[0])
    walk_seq = lg.max_seq
    age(sim)
    assert sim.folios.flags[g] & PG_workingset
    # generation 0 had four generations: inc_min_seq reconciled it to the promoted generation
    assert sim.folios.lru[g] == sim.folios.lru_gen[g] == lst(LRU_FILE, walk_seq)


def test_walk_promotes_a_folio_young_in_two_mappings_at_once():
    """Two young PTEs of one folio in one walk: the first sets PG_referenced, the second
    promotes (folio_update_gen runs per PTE)."""
    sim = new_sim()
    ops, lv, lg = state(sim)
    a, b = recs(Kind.FILE_MMAP, [7], pid=0), recs(Kind.FILE_MMAP, [7], pid=1)
    replay(sim, a, b)
    g = int(ids_of(sim, a)[0])
    walk_seq = lg.max_seq
    age(sim)
    assert sim.folios.lru_gen[g] == lst(LRU_FILE, walk_seq)
    assert sim.folios.flags[g] & PG_workingset


def test_walk_skips_anon_at_swappiness_0():
    sim = new_sim(swappiness=0)
    an, mm = recs(Kind.ANON, range(4)), recs(Kind.FILE_MMAP, range(4))
    replay(sim, an, mm)
    age(sim, swappiness=0)
    assert sim.ptes.young[ptes_of(sim, an)].all()
    assert not (sim.folios.flags[ids_of(sim, an)] & PG_referenced).any()
    assert not sim.ptes.young[ptes_of(sim, mm)].any()
    assert (sim.folios.flags[ids_of(sim, mm)] & PG_referenced).all()


def test_sort_folio_reconciles_a_promoted_folio():
    """With three generations aging does not run inc_min_seq: a folio promoted by the walk stays
    on the oldest list until eviction's sort_folio moves it to its generation."""
    sim = new_sim()
    ops, lv, lg = state(sim)
    assert ops.try_to_inc_min_seq(lv, 60)  # two generations: [2, 2], max_seq 3
    rd = recs(Kind.FILE_FD, range(10))
    replay(sim, rd, recs(Kind.FILE_MMAP, [0]))
    p = int(ids_of(sim, rd)[0])
    age(sim)                               # walk promotes p to gen(3); three generations now
    f = sim.folios
    assert lg.min_seq == [2, 2] and f.lru[p] == lst(LRU_FILE, 2) and f.lru_gen[p] == lst(LRU_FILE, 3)
    sc = ScanControl(nr_to_reclaim=32)
    scanned, iso = ops.scan_folios(sim, lv, sc, LRU_FILE, 3, 4096)
    assert p not in iso.tolist() and len(iso) == 9 and scanned == 10
    assert f.lru[p] == f.lru_gen[p] == lst(LRU_FILE, 3)
    assert lv.nr[lst(LRU_FILE, 3)] == lv.nr_logical[lst(LRU_FILE, 3)] == 1
    assert not lg.protected.any()  # promoted folios are not counted as protected


# ------------------------------------------------------------------------------------------------
# lookaround (§3.6)


def lookaround_scene(mechanisms, walk_sees_neighbours: bool = True):
    """Target T (file page 0, mapped) alone in the oldest file generation, its ten neighbours
    N (pages 1..10, same PTE table and VMA) in a younger generation with PG_referenced from an
    earlier walk; T and N young again. The Bloom filter is off so that every walk scans the
    table."""
    sim = new_sim(mechanisms=mechanisms)
    ops, lv, lg = state(sim)
    T = recs(Kind.FILE_MMAP, [0])
    N = recs(Kind.FILE_MMAP, range(1, 11))
    replay(sim, T)
    age(sim, 2)                 # T: referenced, then in the oldest generation (2)
    replay(sim, N)              # N: faulted into max_seq - 1 = 4
    age(sim)                    # N: first sighting (PG_referenced); T -> min_seq + 1 = 3
    replay(sim, T, N)
    t, n = int(ids_of(sim, T)[0]), ids_of(sim, N)
    f = sim.folios
    assert lg.max_seq == 6 and lg.min_seq == [3, 3]
    assert f.lru[t] == lst(LRU_FILE, 3) and (f.lru[n] == lst(LRU_FILE, 4)).all()
    assert bool((f.flags[n] & PG_referenced).all()) == walk_sees_neighbours
    assert sim.ptes.young[ptes_of(sim, N)].all()
    return sim, t, n, ptes_of(sim, N)


@pytest.mark.parametrize("kswapd", [False, True])
def test_lookaround_promotes_young_neighbours(kswapd):
    sim, t, n, npte = lookaround_scene("-bloom")
    ops, lv, lg = state(sim)
    f = sim.folios
    c0, v0 = dict(sim.cost), dict(sim.vm)
    sc = ScanControl(nr_to_reclaim=32, kswapd=kswapd)
    ops.evict_folios(sim, lv, sc, 64, 60)
    assert sim.cost["ptes_walked"] - c0["ptes_walked"] == 11  # the window: the VMA's 11 pages
    assert not sim.ptes.young[npte].any()                      # neighbours' young bits cleared
    assert (f.flags[n] & PG_workingset).all() and not (f.flags[n] & PG_referenced).any()
    young = lst(LRU_FILE, lg.max_seq)
    assert (f.lru_gen[n] == young).all()                       # promoted to gen(max_seq)
    if kswapd:  # with a walk struct: folio_update_gen, lock-free, the list is not touched
        assert (f.lru[n] == lst(LRU_FILE, 4)).all()
        assert sim.cost["atomic_updates"] - c0["atomic_updates"] == 10
        assert sim.vm["pgactivate"] == v0["pgactivate"]
    else:       # without: lru_gen_set_refs + folio_activate, a real move
        assert (f.lru[n] == young).all()
        assert sim.cost["atomic_updates"] == c0["atomic_updates"]
        assert sim.vm["pgactivate"] - v0["pgactivate"] == 10
    assert f.flags[t] & PG_resident and sc.nr_reclaimed == 0  # T itself was young: kept
    assert ops.check(sim, lv) == []


@pytest.mark.parametrize("kswapd", [False, True])
def test_lookaround_first_sighting_only_references(kswapd):
    """Neighbours seen for the first time only get PG_referenced."""
    sim, t, n, npte = lookaround_scene("-bloom")
    ops, lv, lg = state(sim)
    f = sim.folios
    f.flags[n] &= ~np.uint16(PG_referenced)
    ops.evict_folios(sim, lv, ScanControl(nr_to_reclaim=32, kswapd=kswapd), 64, 60)
    assert not sim.ptes.young[npte].any()
    assert (f.flags[n] & PG_referenced).all() and not (f.flags[n] & PG_workingset).any()
    assert (f.lru[n] == lst(LRU_FILE, 4)).all() and (f.lru_gen[n] == lst(LRU_FILE, 4)).all()


@pytest.mark.parametrize("kswapd", [False, True])
def test_without_lookaround_only_the_target_is_touched(kswapd):
    sim, t, n, npte = lookaround_scene("-bloom,-lookaround")
    ops, lv, lg = state(sim)
    f = sim.folios
    c0 = dict(sim.cost)
    flags = f.flags[n].copy()
    ops.evict_folios(sim, lv, ScanControl(nr_to_reclaim=32, kswapd=kswapd), 64, 60)
    assert sim.cost["ptes_walked"] == c0["ptes_walked"]
    assert sim.ptes.young[npte].all()
    assert (f.flags[n] == flags).all()
    assert (f.lru[n] == lst(LRU_FILE, 4)).all() and (f.lru_gen[n] == lst(LRU_FILE, 4)).all()
    assert not sim.ptes.young[ptes_of(sim, recs(Kind.FILE_MMAP, [0]))].any()  # the target's bit


def test_lookaround_feeds_the_bloom_filter_for_max_seq():
    """A dense lookaround window puts its PTE table into the filter of the current max_seq,
    which the next walk reads."""
    # with the filter on, the last walk skipped the table (sparse in the round before): the
    # neighbours were not seen and the table is not in the filter of max_seq
    sim, t, n, npte = lookaround_scene(None, walk_sees_neighbours=False)
    ops, lv, lg = state(sim)
    pm = int(sim.ptes.pmd[npte[0]])
    addr = pmd_entry_address(sim.mm.pmds.pid[[pm]], sim.mm.pmds.index[[pm]])
    assert not lg.bloom.test(lg.max_seq, addr)[0]
    ops.evict_folios(sim, lv, ScanControl(nr_to_reclaim=32), 64, 60)
    assert lg.bloom.test(lg.max_seq, addr)[0]


def test_lookaround_skips_folios_isolated_with_the_target():
    """§3.6 step 4: only folios on an MGLRU list are looked at (get_pfn_folio:
    folio_lru_gen < 0 -> skip). 64 recently used mapped folios isolated in one batch are each
    found young by their own rmap walk (first sighting: KEEP), so none is reclaimed, with or
    without lookaround. A lookaround that clears the young bits of the other isolated folios
    makes them look unused and reclaims them."""
    out = {}
    for mech in (None, "-lookaround"):
        sim = new_sim(mechanisms=mech)
        ops, lv, lg = state(sim)
        r = recs(Kind.FILE_MMAP, range(64))
        replay(sim, r)
        sim.ptes.young[: sim.ptes.count] = False  # not seen by the aging walks
        age(sim, 2)
        replay(sim, r)                             # used again: all young
        sc = ScanControl(nr_to_reclaim=32)
        ops.evict_folios(sim, lv, sc, 64, 60)
        resident = int(((sim.folios.flags[ids_of(sim, r)] & PG_resident) != 0).sum())
        out[mech] = (sc.nr_reclaimed, resident)
    assert out == {None: (0, 64), "-lookaround": (0, 64)}


# ------------------------------------------------------------------------------------------------
# Bloom filters (§3.7)


def bloom_scene(mechanisms):
    """pid 0: PTE table 0 fully used (dense), table 1 with 2 young PTEs out of 512 (sparse)."""
    sim = new_sim(memory=4096, swap=4096, mechanisms=mechanisms)
    dense = recs(Kind.ANON, range(512))
    sparse = recs(Kind.ANON, [512, 1023])
    replay(sim, dense, sparse)
    pm = sim.mm.pmds
    assert pm.count == 2
    addrs = pmd_entry_address(pm.pid[:2], pm.index[:2])
    return sim, dense, sparse, addrs


def test_dense_tables_enter_the_filter_for_the_next_walk_and_sparse_ones_are_skipped():
    sim, dense, sparse, addrs = bloom_scene(None)
    ops, lv, lg = state(sim)
    c0 = dict(sim.cost)
    age(sim)  # first walk of a new mm: forced, every table scanned
    assert sim.cost["ptes_walked"] - c0["ptes_walked"] == 1024
    assert sim.cost["pmd_tables_skipped"] == c0["pmd_tables_skipped"]
    # the filter of max_seq (the next walk's seq) holds the dense table only
    assert lg.bloom.test(lg.max_seq, addrs).tolist() == [True, False]
    replay(sim, dense, sparse)  # everything young again, both PMDs accessed
    c1 = dict(sim.cost)
    sp = ids_of(sim, sparse)
    gen_before = sim.folios.lru_gen[sp].copy()
    walk_seq = lg.max_seq
    age(sim)
    assert sim.cost["pmd_tables_skipped"] - c1["pmd_tables_skipped"] == 1
    assert sim.cost["ptes_walked"] - c1["ptes_walked"] == 512
    assert sim.ptes.young[ptes_of(sim, sparse)].all()          # the sparse table was not scanned
    assert (sim.folios.lru_gen[sp] == gen_before).all()
    dn = ids_of(sim, dense)
    assert (sim.folios.lru_gen[dn] == lst(LRU_ANON, walk_seq)).all()  # the dense one was
    # the sparse table stays out, the dense one stays in
    assert lg.bloom.test(lg.max_seq, addrs).tolist() == [True, False]


def test_a_table_that_stops_being_dense_drops_out_after_one_round():
    sim, dense, sparse, addrs = bloom_scene(None)
    ops, lv, lg = state(sim)
    age(sim)
    assert lg.bloom.test(lg.max_seq, addrs)[0]
    replay(sim, dense[:10])  # now only 10 of 512 young: scanned (in the filter), not dense
    age(sim)
    assert not lg.bloom.test(lg.max_seq, addrs)[0]
    replay(sim, dense)
    c = dict(sim.cost)
    age(sim)
    assert sim.cost["pmd_tables_skipped"] - c["pmd_tables_skipped"] == 2
    assert sim.ptes.young[ptes_of(sim, dense)].all()


def test_without_bloom_no_table_is_skipped_by_the_filter():
    sim, dense, sparse, addrs = bloom_scene("-bloom")
    ops, lv, lg = state(sim)
    age(sim)
    replay(sim, dense, sparse)
    c1 = dict(sim.cost)
    walk_seq = lg.max_seq
    age(sim)
    assert sim.cost["pmd_tables_skipped"] == c1["pmd_tables_skipped"]
    assert sim.cost["ptes_walked"] - c1["ptes_walked"] == 1024
    assert not sim.ptes.young[ptes_of(sim, sparse)].any()
    assert (sim.folios.lru_gen[ids_of(sim, sparse)] == lst(LRU_ANON, walk_seq)).all()


def test_without_ptwalk_aging_only_bumps_the_sequence():
    sim, dense, sparse, addrs = bloom_scene("-ptwalk")
    ops, lv, lg = state(sim)
    mm0 = lg.mm_seq
    c0 = dict(sim.cost)
    age(sim)
    assert lg.max_seq == 4 and lg.mm_seq == mm0 + 1 and lg.walks == 0
    assert sim.cost["ptes_walked"] == c0["ptes_walked"]
    assert sim.ptes.young[ptes_of(sim, dense)].all()
