"""MGLRU shadow entries and refaults (reference §3.10, with the placement of §3.4): the eviction
token, the 'recent' window, what a recent refault counts and restores."""

from __future__ import annotations

import numpy as np
import pytest
from mglru_helpers import age, lst, new_sim, one, reads_by_many, recs, replay, state

from reclaim_ext.core.ops import ScanControl
from reclaim_ext.machine.folio import (
    LRU_ANON,
    LRU_FILE,
    PG_active,
    PG_referenced,
    PG_resident,
    PG_workingset,
)
from reclaim_ext.policies.mglru import NODES_SHIFT, lru_tier_from_refs
from reclaim_ext.trace import Kind

# ------------------------------------------------------------------------------------------------
# helpers

def evict_file_page0(*, accesses: int = 1, two_gens_first: bool = False, workingset: bool = False,
                     mode: str = "exact"):
    """100 read() folios in the oldest file generation, file page 0 at the tail read `accesses`
    times; one evict_folios call evicts the 64 at the tail (page 0 among them) and leaves 36, so
    min_seq stays put. With two_gens_first, the lruvec starts with two generations (min_seq 2)
    and is aged once before the reads: three generations at eviction."""
    sim = new_sim(mode=mode)
    ops, lv, lg = state(sim)
    if two_gens_first:
        assert ops.try_to_inc_min_seq(lv, 60)
        age(sim)
        assert lg.min_seq == [2, 2] and lg.max_seq == 4
    first = reads_by_many(0, accesses) if accesses else recs(Kind.FILE_FD, [0], write=1)
    replay(sim, first, recs(Kind.FILE_FD, range(1, 100)))
    g = one(sim, first)
    if not accesses:  # written, never read: let the flusher clean it so that it can be evicted
        sim.writeback_requested = True
        sim.flush_writeback()
    if workingset:
        sim.folios.flags[g] |= PG_workingset
    oldest = lg.min_seq[LRU_FILE]
    assert sim.folios.lru[g] == lst(LRU_FILE, oldest)
    sc = ScanControl(nr_to_reclaim=32)
    ops.evict_folios(sim, lv, sc, 64, 60)
    assert sc.nr_reclaimed == 64 and not sim.folios.flags[g] & PG_resident
    assert lg.min_seq[LRU_FILE] == oldest
    return sim, g


# ------------------------------------------------------------------------------------------------
# the token (§3.10)


@pytest.mark.parametrize("accesses, low_bits", [(0, 0), (1, 0), (2, 1), (3, 2), (4, 3)])
def test_eviction_token(accesses, low_bits):
    """token = min_seq << 2 | max(refs - 1, 0), packed above the node (0); evicted[type][tier]
    counts the eviction. (Five accesses set every ref bit: such a folio is moved up, not evicted.)"""
    for two_gens_first in (False, True):
        sim, g = evict_file_page0(accesses=accesses, two_gens_first=two_gens_first)
        ops, lv, lg = state(sim)
        min_seq = lg.min_seq[LRU_FILE]
        assert sim.folios.shadow[g] == ((min_seq << 2) | low_bits) << NODES_SHIFT
        assert not sim.folios.shadow_ws[g]
        tier = int(lru_tier_from_refs(np.array([accesses]), np.array([False]))[0])
        expect = np.zeros(4, dtype=np.int64)
        expect[0] = 63
        expect[tier] += 1
        assert lg.evicted[LRU_FILE].tolist() == expect.tolist()


def test_token_workingset_bit_and_tier():
    sim, g = evict_file_page0(workingset=True)
    ops, lv, lg = state(sim)
    assert sim.folios.shadow_ws[g]
    assert sim.folios.shadow[g] == 0  # min_seq 0, refs 1
    assert lg.evicted[LRU_FILE].tolist() == [63, 0, 0, 1]


# ------------------------------------------------------------------------------------------------
# recent refaults


@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_recent_refault_via_read(mode):
    """Refault by read() before any aging: counted in refaulted[file][tier of the token's refs],
    WORKINGSET_REFAULT but not WORKINGSET_ACTIVATE; placed in the oldest generation."""
    sim, g = evict_file_page0(accesses=2, mode=mode)
    ops, lv, lg = state(sim)
    vm0 = dict(sim.vm)
    replay(sim, recs(Kind.FILE_FD, [0]))
    assert sim.folios.flags[g] & PG_resident
    assert lg.refaulted[LRU_FILE].tolist() == [0, 1, 0, 0]  # refs 2 -> tier 1
    assert sim.vm["workingset_refault_file"] - vm0["workingset_refault_file"] == 1
    assert sim.vm["workingset_activate_file"] == vm0["workingset_activate_file"]
    assert sim.vm["workingset_restore_file"] == vm0["workingset_restore_file"]
    assert sim.folios.lru[g] == lst(LRU_FILE, lg.max_seq - 3)
    assert not sim.folios.flags[g] & PG_workingset


@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_recent_refault_via_fault_activates(mode):
    """The same folio refaulting through a mapping: WORKINGSET_ACTIVATE, PG_active at the add
    (max_seq - 1), and LRU_REFS restored to refs - 1 (no read() clears it here)."""
    sim, g = evict_file_page0(accesses=3, mode=mode)
    ops, lv, lg = state(sim)
    vm0 = dict(sim.vm)
    replay(sim, recs(Kind.FILE_MMAP, [0]))
    assert lg.refaulted[LRU_FILE].tolist() == [0, 0, 1, 0]  # refs 3 -> tier 2
    assert sim.vm["workingset_activate_file"] - vm0["workingset_activate_file"] == 1
    assert sim.vm["workingset_refault_file"] - vm0["workingset_refault_file"] == 1
    assert sim.folios.lru[g] == lst(LRU_FILE, lg.max_seq - 1)
    assert int(sim.folios.lru_refs[g]) == 2
    assert not sim.folios.flags[g] & (PG_referenced | PG_active)


@pytest.mark.parametrize("via", ["read", "fault"])
def test_recent_refault_restores_workingset(via):
    """A shadow with the workingset bit: PG_workingset restored, WORKINGSET_RESTORE counted,
    refaulted[tier 3]; placed at max_seq - 2 by read(), max_seq by a fault."""
    sim, g = evict_file_page0(workingset=True)
    ops, lv, lg = state(sim)
    vm0 = dict(sim.vm)
    kind = Kind.FILE_FD if via == "read" else Kind.FILE_MMAP
    replay(sim, recs(kind, [0]))
    assert sim.folios.flags[g] & PG_workingset
    assert sim.vm["workingset_restore_file"] - vm0["workingset_restore_file"] == 1
    assert lg.refaulted[LRU_FILE].tolist() == [0, 0, 0, 1]
    assert lg.max_seq == 3 and lg.min_seq[LRU_FILE] == 0  # so max_seq - 2 is not clamped
    expect = lg.max_seq - 2 if via == "read" else lg.max_seq
    assert sim.folios.lru[g] == lst(LRU_FILE, expect)
    assert sim.vm["workingset_activate_file"] - vm0["workingset_activate_file"] == (via == "fault")


def test_anon_refault_with_workingset_goes_to_max_seq():
    """A swapped-out anon folio with the workingset bit refaults into max_seq; one without into
    max_seq - 1; both count WORKINGSET_ACTIVATE (faults)."""
    sim = new_sim()
    ops, lv, lg = state(sim)
    an = recs(Kind.ANON, range(10))
    replay(sim, an)
    ids = sim.mm.translate(an)[0]
    sim.ptes.young[: sim.ptes.count] = False
    age(sim, 2)  # the anon folios are now in the oldest generation (2)
    sim.folios.flags[ids[0]] |= PG_workingset
    sc = ScanControl(nr_to_reclaim=32)
    ops.evict_folios(sim, lv, sc, 64, 200)
    assert sc.nr_reclaimed == 10 and sim.vm["pswpout"] == 10
    assert sim.folios.shadow_ws[ids[0]] and not sim.folios.shadow_ws[ids[1]]
    vm0 = dict(sim.vm)
    replay(sim, recs(Kind.ANON, [0, 1]))
    assert lg.refaulted[LRU_ANON].tolist() == [1, 0, 0, 1]
    assert sim.vm["workingset_activate_anon"] - vm0["workingset_activate_anon"] == 2
    assert sim.vm["workingset_restore_anon"] - vm0["workingset_restore_anon"] == 1
    assert sim.folios.lru[ids[0]] == lst(LRU_ANON, lg.max_seq)
    assert sim.folios.lru[ids[1]] == lst(LRU_ANON, lg.max_seq - 1)
    assert sim.folios.flags[ids[0]] & PG_workingset
    assert not sim.folios.flags[ids[1]] & PG_workingset


# ------------------------------------------------------------------------------------------------
# the 'recent' window: |max_seq - token_seq| < 4


@pytest.mark.parametrize("two_gens_first, ages, recent", [
    (False, 0, True),   # token seq 0, max_seq 3: distance 3
    (False, 1, False),  # four generations at eviction: one aging step is already too many
    (False, 4, False),
    (True, 0, True),    # token seq 2, max_seq 4: distance 2
    (True, 1, True),    # distance 3
    (True, 2, False),   # distance 4
    (True, 5, False),
])
def test_recent_window(two_gens_first, ages, recent):
    sim, g = evict_file_page0(accesses=2, workingset=True, two_gens_first=two_gens_first)
    ops, lv, lg = state(sim)
    token_seq = int(sim.folios.shadow[g]) >> (2 + NODES_SHIFT)
    age(sim, ages)
    assert (lg.max_seq - token_seq < 4) == recent
    refaulted0 = lg.refaulted[LRU_FILE].copy()
    vm0 = dict(sim.vm)
    replay(sim, recs(Kind.FILE_MMAP, [0]))
    got = lg.refaulted[LRU_FILE] - refaulted0
    assert got.tolist() == ([0, 0, 0, 1] if recent else [0, 0, 0, 0])
    d = {k: sim.vm[k] - vm0[k] for k in vm0}
    assert d["workingset_refault_file"] == 1  # counted for every shadow found
    assert d["workingset_activate_file"] == int(recent)
    assert d["workingset_restore_file"] == int(recent)
    assert bool(sim.folios.flags[g] & PG_workingset) == recent
    expect = lg.max_seq if recent else lg.max_seq - 1  # PG_active (fault): 2 - workingset
    assert sim.folios.lru[g] == lst(LRU_FILE, expect)


def test_old_refault_by_read_is_placed_as_new():
    """Not recent: nothing restored; a read() miss goes to the oldest generation."""
    sim, g = evict_file_page0(workingset=True)
    ops, lv, lg = state(sim)
    age(sim, 4)
    replay(sim, recs(Kind.FILE_FD, [0]))
    assert not lg.refaulted.any()
    assert not sim.folios.flags[g] & PG_workingset
    assert sim.folios.lru[g] == lst(LRU_FILE, max(lg.max_seq - 3, lg.min_seq[LRU_FILE]))


def test_refaults_feed_the_pid_controller():
    """Recent refaults of tier-1 folios raise tier 1's refault rate above tier 0's: the tier is
    then protected (get_tier_idx 0), and the refaults are carried into avg_refaulted when
    min_seq advances."""
    sim = new_sim(memory=2048, swap=2048)
    ops, lv, lg = state(sim)
    # 128 folios read twice (tier 1) at the tail of the oldest generation, then 200 read once
    twice = [p for p in range(128) for _ in (0, 1)]
    r = recs(Kind.FILE_FD, twice)
    r["pid"] = np.arange(len(twice)) % 2  # two streams: every read counts
    replay(sim, r, recs(Kind.FILE_FD, range(1000, 1200)))
    sc = ScanControl(nr_to_reclaim=32)
    ops.evict_folios(sim, lv, sc, 64, 60)
    ops.evict_folios(sim, lv, sc, 64, 60)
    assert lg.evicted[LRU_FILE].tolist() == [0, 128, 0, 0]
    replay(sim, recs(Kind.FILE_MMAP, range(128)))  # all refault while recent
    assert lg.refaulted[LRU_FILE].tolist() == [0, 128, 0, 0]
    assert ops.get_tier_idx(lg, LRU_FILE) == 0
    age(sim)  # inc_min_seq folds the P term into the I term
    assert lg.avg_refaulted[LRU_FILE, 1] == 64 and not lg.refaulted.any()
