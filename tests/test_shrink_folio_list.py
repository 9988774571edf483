"""shrink_folio_list's tail (core.vmscan.shrink_folio_list_tail, which every reclaim path runs:
the Python path, the compiled kswapd run, MGLRU's evict_round): its outcome on a hand-built
batch, and the swap slot add_to_swap gives an anon folio (reference §1.9 step 9: the folio joins
the swap cache, dirty), which a folio kept unwritten (!may_writepage) keeps for its next
reclaim instead of taking a second one."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import Kind, ids_of, lruvec, recs, replay, scan_control

from reclaim_ext.core.counts import KSWAPD_COUNTS, reclaim_scalars, tables
from reclaim_ext.core.engine import SimConfig, Simulator
from reclaim_ext.core.ops import FOLIOREF_RECLAIM, FOLIOREF_RECLAIM_CLEAN
from reclaim_ext.core.vmscan import (
    N_DIRTY, N_FREE, _NR_CENSUS, _shrink_census, node_scalars, shrink_folio_list_tail, shrink_inactive_list,
)
from reclaim_ext.machine.folio import (
    LRU_ANON, PG_active, PG_dirty, PG_mlocked, PG_reclaim, PG_resident, PG_swapcache, PG_writeback,
)
from reclaim_ext.machine.node import SWP_OUT, SWP_USED
from reclaim_ext.policies import get_policy

N_ANON = 200
IN_SWAP_CACHE = PG_resident | PG_swapcache | PG_dirty  # a resident folio in the swap cache, dirty


def anon_sim(policy: str, swap_pages: int = 1024, mode: str = "exact") -> Simulator:
    """N_ANON anon pages faulted in (written) on a machine with room to spare, their PTEs old."""
    sim = Simulator(SimConfig(memory_pages=1024, swap_pages=swap_pages, mode=mode, check=True), get_policy(policy))
    replay(sim, recs(Kind.ANON, range(N_ANON), write=1))
    sim.ptes.young[:] = False
    return sim


def slot_holders(sim) -> np.ndarray:
    """The folios that hold a swap slot (its device recorded)."""
    return np.flatnonzero(sim.folios.swap_type[: sim.folios.count] >= 0)


def reclaim_unwritten(sim) -> None:
    """Direct reclaim of every anon folio without may_writepage (laptop_mode's first
    priorities): each gets a swap slot but is not written."""
    lv, sc = lruvec(sim), scan_control(may_writepage=False)
    start = sim.vm["pgscan_direct"]
    if sim.ops.name == "classic":
        shrink_inactive_list(sim, lv, LRU_ANON, N_ANON, sc, sim.ops)
    else:
        ops, lg = sim.ops, sim.ops.lrugen(lv)
        for _ in range(2):  # the folios out of the two youngest generations
            ops.inc_max_seq(sim, lv, lg.max_seq, 200)
        while sim.vm["pgscan_direct"] - start < N_ANON:  # evict_folios' batches (evict_round's)
            before = sim.vm["pgscan_direct"]
            ops.evict_folios(sim, lv, sc, N_ANON, 200)
            assert sim.vm["pgscan_direct"] > before
    assert sim.vm["pgscan_direct"] - start == N_ANON


@pytest.mark.parametrize("policy", ["classic", "mglru"])
def test_a_folio_kept_unwritten_keeps_its_swap_slot(policy):
    """add_to_swap puts the folio in the swap cache, dirty; kept because !may_writepage, it stays
    there with its slot, so meeting it again gives it no second slot: slots used == folios holding
    one, every one of them a resident swap-cache folio (the conservation check's rule too)."""
    sim = anon_sim(policy)
    f = sim.folios
    for _ in range(2):  # the second meets every folio again
        reclaim_unwritten(sim)
        held = slot_holders(sim)
        assert len(held) == N_ANON and sim.vm["pswpout"] == 0
        assert sim.swap.used == len(held)
        assert (f.flags[held] & IN_SWAP_CACHE == IN_SWAP_CACHE).all()
        assert not sim.ptes.present[f.pte_head[held]].any()  # try_to_unmap ran before the dirty test
        sim.check_conservation()


def test_kept_swap_cache_folio_is_written_to_its_slot_and_freed():
    """The folio kept with its slot is written to that slot by a later reclaim that may write
    (a dirty swap-cache folio), then freed: its slot now holds its only copy."""
    sim = anon_sim("classic")
    reclaim_unwritten(sim)
    held = slot_holders(sim)
    slots = sim.folios.swap_type[held].copy()
    used = sim.swap.used
    lv = lruvec(sim)
    shrink_inactive_list(sim, lv, LRU_ANON, N_ANON, scan_control(), sim.ops)
    f = sim.folios
    out = held[(f.flags[held] & PG_resident) == 0]
    assert len(out) > 0 and sim.vm["pswpout"] == len(out)
    assert sim.swap.used == used and (f.swap_type[held] == slots).all()
    assert not (f.flags[out] & (PG_swapcache | PG_dirty)).any()  # __remove_mapping took it out
    sim.check_conservation()


def test_kept_swap_cache_folio_faulted_back():
    """A folio kept in the swap cache is mapped again by a minor fault (do_swap_page finds it
    there): a read fault leaves it in the swap cache with its slot, dirty; a write fault frees
    the slot (should_try_to_free_swap). The conservation check (run after the replay) agrees."""
    sim = anon_sim("classic")
    reclaim_unwritten(sim)
    half = N_ANON // 2
    replay(sim, np.concatenate([recs(Kind.ANON, range(half)), recs(Kind.ANON, range(half, N_ANON), write=1)]))
    f = sim.folios
    held = slot_holders(sim)
    assert len(held) == half == sim.swap.used and sim.vm["pgmajfault"] == 0
    assert (f.flags[held] & IN_SWAP_CACHE == IN_SWAP_CACHE).all() and sim.ptes.present[f.pte_head[held]].all()
    sim.ptes.young[:] = False
    shrink_inactive_list(sim, lruvec(sim), LRU_ANON, N_ANON, scan_control(), sim.ops)
    assert sim.vm["pswpout"] == N_ANON == sim.swap.used  # the read ones to their slots, the others to new ones
    sim.check_conservation()


@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_read_fault_frees_the_slot_while_swap_is_full(mode):
    """should_try_to_free_swap frees the slot on a read fault too while mem_cgroup_swap_full
    (vm_swap_full: fewer than half the slots free): with 300 slots and N_ANON = 200 held, read
    faults on kept swap-cache folios free slots until 150 are used, the next ones keep theirs."""
    sim = anon_sim("classic", swap_pages=300, mode=mode)
    reclaim_unwritten(sim)
    assert sim.swap.used == N_ANON
    reads = recs(Kind.ANON, range(N_ANON // 2))
    replay(sim, reads)
    f = sim.folios
    ids = ids_of(sim, reads)
    cached = (f.flags[ids] & PG_swapcache) != 0
    assert sim.swap.used == 150 == len(slot_holders(sim)) and sim.vm["pgmajfault"] == 0
    assert not cached[:50].any() and cached[50:].all()  # in fault order: freed while full, then kept
    sim.check_conservation()


def test_read_fault_frees_an_mlocked_folios_slot():
    """should_try_to_free_swap frees the slot of an mlocked folio on a read fault, swap not full."""
    sim = anon_sim("classic")
    reclaim_unwritten(sim)
    f = sim.folios
    ids = ids_of(sim, recs(Kind.ANON, range(2)))
    f.flags[ids[0]] |= PG_mlocked
    replay(sim, recs(Kind.ANON, range(2)))
    assert sim.swap.used == N_ANON - 1
    assert f.flags[ids[0]] & PG_swapcache == 0 and f.flags[ids[1]] & PG_swapcache != 0


# ---- shrink_folio_list_tail on a hand-built batch -----------------------------------------------


def folios_of(*records: np.ndarray):
    """A small classic machine with disk swap (its slots take no node memory) after the records;
    the folio ids of the pages they name, in order."""
    sim = Simulator(SimConfig(memory_pages=256, swap_pages=64, swap_device="disk", mode="exact", check=True),
                    get_policy("classic"))
    replay(sim, np.concatenate(records))
    return sim, sim.mm.translate(np.concatenate(records))[0]


def run_tail(sim, ids, verdict, *, kswapd, may_writepage, census=None):
    """shrink_folio_list_tail over `ids` (all pending, with these verdicts) on a node flagged
    dirty, as a caller runs it. Returns its result, the scalars `s`, `wb`, `nodev` and `kc`."""
    fl = sim.folios.flags[ids].copy()
    out = np.zeros(len(ids), dtype=np.int8)
    census = np.zeros(_NR_CENSUS, dtype=np.int64) if census is None else census
    ftab, ptab, _, swtab, _ = tables(sim, lruvec(sim))
    nodev = node_scalars(sim.node)
    nodev[N_DIRTY] = 1
    s, wb = reclaim_scalars(sim, sim.node)
    kc = np.zeros(len(KSWAPD_COUNTS), dtype=np.int64)
    res = shrink_folio_list_tail(np.asarray(ids, dtype=np.int64), out, np.asarray(verdict, dtype=np.int8), fl, ftab,
                                 ptab, swtab, kswapd, may_writepage, nodev, s, wb, census, kc)
    return res, s, wb, nodev, kc


def test_shrink_folio_list_tail_outcome():
    """kswapd's tail over three folios, in order: a clean file folio (RECLAIM) is freed; a dirty
    file folio met for the first time (no PG_reclaim) is marked PG_reclaim and activated
    (NR_VMSCAN_IMMEDIATE), not written, though the node is flagged dirty; an anon folio gets a
    swap slot (in the swap cache, dirty), is unmapped, written to the slot (pswpout, pgpgout,
    nr_vmscan_write: the write cleans it) and freed."""
    sim, ids = folios_of(recs(Kind.FILE_FD, [0], file=1), recs(Kind.FILE_FD, [1], file=1, write=1),
                         recs(Kind.ANON, [0], write=1))
    f = sim.folios
    clean, dirty, anon = (int(g) for g in ids)
    assert f.flags[dirty] & PG_dirty and not f.flags[clean] & PG_dirty and f.type[anon] == LRU_ANON
    assert sim.ptes.present[f.pte_head[anon]]
    free0, used0, dirty0 = sim.node.free, sim.swap.used, sim.nr_file_dirty
    census = np.zeros(_NR_CENSUS, dtype=np.int64)
    assert len(_shrink_census(ids, f.flags, f.type, True, False, np.zeros(3, dtype=np.int8), census)) == 3
    (freed, keep, keep_active, nact, nr_pageout), s, wb, nodev, kc = run_tail(
        sim, ids, [FOLIOREF_RECLAIM] * 3, kswapd=True, may_writepage=True, census=census)

    assert freed.tolist() == [clean, anon]
    assert keep.tolist() == [dirty] and keep_active.tolist() == [True]
    assert nact == 1 and nr_pageout == 1
    assert f.flags[dirty] & (PG_dirty | PG_reclaim | PG_active | PG_writeback) == PG_dirty | PG_reclaim | PG_active
    assert f.swap_type[anon] == 0 and f.swap_memcg[anon] == f.memcg[anon]
    assert f.flags[anon] & IN_SWAP_CACHE == PG_resident | PG_swapcache  # freed by the caller (__remove_mapping)
    assert not sim.ptes.present[f.pte_head[anon]]
    assert sim.swap.table[0, SWP_USED] == used0 + 1 and sim.swap.table[0, SWP_OUT] == 1
    assert s[0] == used0 + 1 and nodev[N_FREE] == free0  # SWAP_USED; the node's free pages
    assert s[2] == dirty0 and wb.tolist() == [0, 0]  # NR_FILE_DIRTY: no page-cache write started
    assert census.tolist() == [1, 1, 0, 0, 0, 1, 0, 1]
    counts = {KSWAPD_COUNTS[k][1]: int(c) for k, c in enumerate(kc) if c}
    assert counts == {"pgactivate": 1, "pswpout": 1, "swap_outs": 1, "pgpgout": 4, "nr_vmscan_write": 1,
                      "nr_vmscan_immediate_reclaim": 1}


def test_shrink_folio_list_tail_keeps_reclaim_clean_and_unwritable():
    """The tail's keep outcomes: kswapd's second sighting (PG_reclaim) of a dirty file folio with
    the RECLAIM_CLEAN verdict is kept dirty, not written; without may_writepage an anon folio is
    kept in the swap cache, dirty, with its slot."""
    sim, ids = folios_of(recs(Kind.FILE_FD, [1], file=1, write=1), recs(Kind.ANON, [0], write=1))
    f = sim.folios
    dirty, anon = (int(g) for g in ids)
    f.flags[dirty] |= PG_reclaim
    (freed, keep, keep_active, nact, nr_pageout), s, _, _, kc = run_tail(
        sim, ids, [FOLIOREF_RECLAIM_CLEAN, FOLIOREF_RECLAIM], kswapd=True, may_writepage=False)
    assert freed.tolist() == [] and keep.tolist() == [dirty, anon] and keep_active.tolist() == [False, False]
    assert nact == 0 and nr_pageout == 0 and not kc.any()
    assert f.flags[dirty] & (PG_dirty | PG_writeback | PG_active) == PG_dirty
    assert f.flags[anon] & IN_SWAP_CACHE == IN_SWAP_CACHE and f.swap_type[anon] == 0
    assert sim.swap.used == 1 and s[0] == 1
