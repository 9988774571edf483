"""MGLRU generations (reference §3.1-§3.4, §3.7, §3.8 try_to_inc_min_seq): the generation-count
invariant on real runs, the initial state, insertion placement, the access-counting tiers of
read() accesses, the aging trigger and what aging does to the oldest generation."""

from __future__ import annotations

import numpy as np
import pytest
from mglru_helpers import ids_of, lst, new_sim, nr_gens, recs, replay, state

from reclaim_ext.core.engine import Simulator
from reclaim_ext.core.ops import DEF_PRIORITY, ScanControl
from reclaim_ext.machine.folio import (
    LRU_ANON,
    LRU_FILE,
    NO_LIST,
    PG_active,
    PG_referenced,
    PG_workingset,
)
from reclaim_ext.trace import Kind
from reclaim_ext.trace.generators import make_workload

# ------------------------------------------------------------------------------------------------
# the invariant 2 <= nr_gens <= 4 after every reclaim, max_seq / min_seq only grow


WORKLOADS = {
    "zipf-file": ("zipf", dict(pages=1500, accesses=8000, write_ratio=0.2)),
    "zipf-anon": ("zipf", dict(pages=900, accesses=8000, kind="anon", write_ratio=0.3)),
    "loop": ("loop", dict(pages=700, passes=6)),
    "scan-hot": ("scan-hot", dict(hot_pages=250, scan_pages=900, scan_every=1500, accesses=8000)),
    "shift-mmap": ("shift", dict(pages=600, accesses=8000, kind="mmap", write_ratio=0.1)),
    "mixed": ("mixed", dict(procs=2, anon_pages=120, files=2, file_pages=400, exec_pages=80, accesses=10000)),
}


def run_watching_generations(sim: Simulator, trace) -> list[tuple[int, list[int]]]:
    """Run `trace`, checking after every allocator slow path (every reclaim), and inside reclaim
    after every aging step and every eviction call, the generation invariants; returns the
    (max_seq, min_seq) seen after each reclaim."""
    ops, lv, lg = state(sim)
    seen: list[tuple[int, list[int]]] = []
    make_room = sim._make_room
    inc_max_seq, evict_folios = ops.inc_max_seq, ops.evict_folios

    def bounds_hold():
        return all(2 <= nr_gens(lg, t) <= 4 for t in (LRU_ANON, LRU_FILE))

    def checked_inc_max_seq(sim_, lruvec, seq, swappiness):
        before = lg.max_seq
        ok = inc_max_seq(sim_, lruvec, seq, swappiness)
        assert lg.max_seq == before + ok and bounds_hold()
        return ok

    def checked_evict_folios(*a):
        before = lg.max_seq, list(lg.min_seq)
        out = evict_folios(*a)
        assert lg.max_seq == before[0] and all(m >= b for m, b in zip(lg.min_seq, before[1]))
        assert bounds_hold()
        return out

    ops.inc_max_seq, ops.evict_folios = checked_inc_max_seq, checked_evict_folios

    def checked_make_room(pid, page=0):
        before_max, before_min = lg.max_seq, list(lg.min_seq)
        make_room(pid, page)
        assert lg.max_seq >= before_max, "max_seq went backwards"
        for t in (LRU_ANON, LRU_FILE):
            assert 2 <= nr_gens(lg, t) <= 4, (t, lg.max_seq, lg.min_seq)
            assert lg.min_seq[t] >= before_min[t], "min_seq went backwards"
        # PG_active is clear on every folio on an MGLRU list (§3.2)
        on = np.flatnonzero(sim.folios.lru[: sim.folios.count] != NO_LIST)
        assert not (sim.folios.flags[on] & PG_active).any()
        seen.append((lg.max_seq, list(lg.min_seq)))

    sim._make_room = checked_make_room
    sim.run(trace)
    return seen


# (an anon-only footprint above memory cannot run at swappiness 0: that case is left out)
BOUNDS_CASES = [(w, s) for w in WORKLOADS for s in (0, 1, 60, 200) if (w, s) != ("zipf-anon", 0)]


@pytest.mark.parametrize("workload, swappiness", BOUNDS_CASES)
def test_generation_count_stays_between_two_and_four(workload, swappiness):
    name, params = WORKLOADS[workload]
    sim = new_sim(memory=400, swap=2048, swappiness=swappiness, mode="fast")
    seen = run_watching_generations(sim, make_workload(name, seed=5, **params))
    ops, lv, lg = state(sim)
    assert len(seen) > 20  # the run really reclaimed, many times
    maxes = [m for m, _ in seen]
    assert maxes == sorted(maxes)
    for t in (LRU_ANON, LRU_FILE):
        assert 2 <= nr_gens(lg, t) <= 4
    assert ops.check(sim, lv) == []
    # the invariant was checked across aging, not only in the initial generations
    if workload in ("zipf-anon", "shift-mmap", "mixed"):
        assert lg.max_seq > 3 + 5


def test_generation_count_exact_driver_mixed():
    """The exact driver keeps the same invariant (and the same generations as the fast one)."""
    name, params = WORKLOADS["mixed"]
    out = {}
    for mode in ("exact", "fast"):
        sim = new_sim(memory=400, swap=2048, swappiness=60, mode=mode)
        seen = run_watching_generations(sim, make_workload(name, seed=2, **{**params, "accesses": 5000}))
        assert seen
        out[mode] = seen
    assert out["exact"] == out["fast"]


# ------------------------------------------------------------------------------------------------
# initial state and insertion placement (§3.1, §3.4)


def test_initial_state():
    sim = new_sim()
    ops, lv, lg = state(sim)
    assert lg.max_seq == 3
    assert lg.min_seq == [0, 0]
    assert lg.mm_seq == 2
    assert lg.timestamps == [sim.now_ms()] * 4
    assert nr_gens(lg, LRU_ANON) == nr_gens(lg, LRU_FILE) == 4
    assert not lg.refaulted.any() and not lg.evicted.any() and not lg.protected.any()


@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_placement_of_new_folios(mode):
    """read() miss -> max_seq - 3 (oldest); write() miss -> oldest too; anon, mmap and exec
    faults -> max_seq - 1; PG_active is clear once on the list."""
    sim = new_sim(mode=mode)
    ops, lv, lg = state(sim)
    rd = recs(Kind.FILE_FD, [0], file=1)
    wr = recs(Kind.FILE_FD, [0], file=2, write=1)
    an = recs(Kind.ANON, [7])
    mm = recs(Kind.FILE_MMAP, [3], file=3)
    ex = recs(Kind.FILE_EXEC, [4], file=4)
    replay(sim, rd, wr, an, mm, ex)
    f = sim.folios
    r, w, a, m, x = (int(ids_of(sim, p)[0]) for p in (rd, wr, an, mm, ex))
    assert f.lru[r] == lst(LRU_FILE, lg.max_seq - 3)
    assert f.lru[w] == lst(LRU_FILE, lg.max_seq - 3)
    assert f.lru[a] == lst(LRU_ANON, lg.max_seq - 1)
    assert f.lru[m] == lst(LRU_FILE, lg.max_seq - 1)
    assert f.lru[x] == lst(LRU_FILE, lg.max_seq - 1)
    for g in (r, w, a, m, x):
        assert f.lru_gen[g] == f.lru[g]  # logical = physical on insertion
        assert not f.flags[g] & PG_active
    assert list(lv.nr) == list(lv.nr_logical)
    assert lv.nr[lst(LRU_FILE, 0)] == 2 and lv.nr[lst(LRU_ANON, 2)] == 1 and lv.nr[lst(LRU_FILE, 2)] == 2


@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_read_miss_placement_is_clamped_to_min_seq(mode):
    """With only two generations (min_seq = max_seq - 1) a read() miss cannot go to
    max_seq - 3: it is clamped to min_seq."""
    sim = new_sim(mode=mode)
    ops, lv, lg = state(sim)
    assert ops.try_to_inc_min_seq(lv, 60)  # empty lruvec: both types skip their empty gens
    assert lg.min_seq == [2, 2] and lg.max_seq == 3
    rd = recs(Kind.FILE_FD, [0])
    replay(sim, rd)
    g = int(ids_of(sim, rd)[0])
    assert sim.folios.lru[g] == lst(LRU_FILE, 2)


def test_placement_after_aging_follows_max_seq():
    sim = new_sim()
    ops, lv, lg = state(sim)
    for _ in range(3):
        assert ops.try_to_inc_max_seq(sim, lv, lg.max_seq, 60)
    assert lg.max_seq == 6 and lg.min_seq == [3, 3]
    rd, an = recs(Kind.FILE_FD, [0]), recs(Kind.ANON, [0])
    replay(sim, rd, an)
    assert sim.folios.lru[ids_of(sim, rd)[0]] == lst(LRU_FILE, 3)
    assert sim.folios.lru[ids_of(sim, an)[0]] == lst(LRU_ANON, 5)


# ------------------------------------------------------------------------------------------------
# lru_gen_inc_refs and the tier table (§3.3)

# fd accesses -> (PG_referenced, LRU_REFS, PG_workingset, refs, tier)
TIER_TABLE = {
    1: (True, 0, False, 1, 0),
    2: (True, 1, False, 2, 1),
    3: (True, 2, False, 3, 2),
    4: (True, 3, False, 4, 2),
    5: (True, 3, True, 4, 3),
    6: (True, 3, True, 4, 3),
    9: (True, 3, True, 4, 3),
}


@pytest.mark.parametrize("mode", ["exact", "fast"])
@pytest.mark.parametrize("accesses", list(TIER_TABLE))
def test_read_accesses_follow_the_tier_table(accesses, mode):
    from reclaim_ext.policies.mglru import folio_refs, lru_tier_from_refs

    sim = new_sim(mode=mode)
    ops, lv, lg = state(sim)
    seq = []
    for _ in range(accesses):  # interleave: a read continuing the previous one is not counted
        seq += [0, 1]
    replay(sim, recs(Kind.FILE_FD, seq))
    g = int(ids_of(sim, recs(Kind.FILE_FD, [0]))[0])
    f = sim.folios
    fl = int(f.flags[g])
    ref, lru_refs, ws, refs, tier = TIER_TABLE[accesses]
    assert bool(fl & PG_referenced) == ref
    assert int(f.lru_refs[g]) == lru_refs
    assert bool(fl & PG_workingset) == ws
    got_refs = np.array([folio_refs(fl, f.lru_refs[g])])
    assert int(got_refs[0]) == refs
    assert int(lru_tier_from_refs(got_refs, np.array([ws]))[0]) == tier
    # no list movement: still in the oldest generation, physically and logically
    assert f.lru[g] == f.lru_gen[g] == lst(LRU_FILE, lg.max_seq - 3)
    assert not fl & PG_active


def test_unaccessed_folio_is_tier_zero():
    """A folio added by write() (no folio_mark_accessed) has refs 0, tier 0."""
    sim = new_sim()
    ops, lv, lg = state(sim)
    w = recs(Kind.FILE_FD, [0], write=1)
    replay(sim, w)
    g = int(ids_of(sim, w)[0])
    fl = int(sim.folios.flags[g])
    assert not fl & (PG_referenced | PG_workingset)
    assert int(sim.folios.lru_refs[g]) == 0


def test_consecutive_reads_of_one_folio_count_once():
    sim = new_sim()
    replay(sim, recs(Kind.FILE_FD, [0, 0, 0, 0, 0, 0]))
    g = int(ids_of(sim, recs(Kind.FILE_FD, [0]))[0])
    assert sim.folios.flags[g] & PG_referenced and int(sim.folios.lru_refs[g]) == 0
    assert not sim.folios.flags[g] & PG_workingset


def test_fd_accesses_never_move_folios():
    """Hundreds of read() hits on resident folios change flags only: every list and logical size
    stays the same."""
    sim = new_sim()
    ops, lv, lg = state(sim)
    replay(sim, recs(Kind.FILE_FD, range(50)), recs(Kind.ANON, range(10)))
    nr, nl = list(lv.nr), list(lv.nr_logical)
    lru = sim.folios.lru[: sim.folios.count].copy()
    stamps = sim.folios.stamp[: sim.folios.count].copy()
    rng = np.random.default_rng(0)
    replay(sim, recs(Kind.FILE_FD, rng.integers(0, 50, 500)))
    assert list(lv.nr) == list(nr) and list(lv.nr_logical) == list(nl)
    assert (sim.folios.lru[: sim.folios.count] == lru).all()
    assert (sim.folios.stamp[: sim.folios.count] == stamps).all()  # not even re-queued


# ------------------------------------------------------------------------------------------------
# the aging trigger (§3.7 should_run_aging, §3.8 get_nr_to_scan)


def young_folios_sim(n_anon: int = 40, n_file: int = 30, memory: int = 1024):
    """Faulted anon and mmap folios only: they all sit in max_seq - 1 = 2, so generations 0 and
    1 are empty and min_seq may be set to 0, 1 or 2 consistently."""
    sim = new_sim(memory=memory, swap=memory, mode="fast")
    replay(sim, recs(Kind.ANON, range(n_anon)), recs(Kind.FILE_MMAP, range(n_file)))
    return sim


@pytest.mark.parametrize("min_seq, swappiness, aging, total", [
    ([0, 0], 60, False, 70),   # 4 generations: no aging
    ([1, 1], 60, True, 70),    # 3 generations: better age
    ([2, 2], 60, True, 0),     # 2 generations: must age, nothing to scan
    ([2, 1], 0, True, 30),     # swappiness 0: only file counts (3 file generations)
    ([2, 1], 201, True, 0),    # anon only: anon has 2 generations
    ([1, 2], 201, True, 40),
    ([1, 2], 0, True, 0),
    ([0, 1], 60, False, 70),   # evictable min_seq is the smaller one
])
def test_should_run_aging(min_seq, swappiness, aging, total):
    sim = young_folios_sim()
    ops, lv, lg = state(sim)
    lg.min_seq = list(min_seq)
    assert ops.check(sim, lv) == []
    assert ops.should_run_aging(lv, swappiness) == (aging, total)


def test_priority_12_never_ages():
    """With three generations aging would be 'better', but at DEF_PRIORITY get_nr_to_scan just
    returns total >> 12."""
    sim = young_folios_sim(n_anon=4500, n_file=200, memory=8192)
    ops, lv, lg = state(sim)
    lg.min_seq = [1, 1]
    assert ops.should_run_aging(lv, 60) == (True, 4700)
    sc = ScanControl(nr_to_reclaim=32)
    assert sc.priority == DEF_PRIORITY
    walks = lg.walks
    assert ops.get_nr_to_scan(sim, lv, sc, 60) == 4700 >> 12 == 1
    assert lg.max_seq == 3 and lg.walks == walks


def test_must_age_at_priority_12_reports_nothing():
    sim = young_folios_sim()
    ops, lv, lg = state(sim)
    lg.min_seq = [2, 2]
    sc = ScanControl(nr_to_reclaim=32)
    assert ops.get_nr_to_scan(sim, lv, sc, 60) == 0
    assert lg.max_seq == 3


@pytest.mark.parametrize("min_seq", [[1, 1], [2, 2]])
def test_below_priority_12_aging_runs(min_seq):
    sim = young_folios_sim()
    ops, lv, lg = state(sim)
    lg.min_seq = list(min_seq)
    sim.cost["hits"] += 10**6  # let the clock move past the initial timestamps
    sc = ScanControl(nr_to_reclaim=32, priority=DEF_PRIORITY - 1)
    assert ops.get_nr_to_scan(sim, lv, sc, 60) == -1
    assert lg.max_seq == 4
    assert lg.min_seq == list(min_seq)  # fewer than 4 generations: no inc_min_seq
    assert lg.timestamps[4 % 4] == sim.now_ms() > 0
    assert lg.timestamps[1:] == [0.0, 0.0, 0.0]
    # a stale sequence number does nothing (another walker finished this round)
    assert not ops.try_to_inc_max_seq(sim, lv, 3, 60)
    assert lg.max_seq == 4


def test_no_aging_with_four_generations_at_any_priority():
    sim = young_folios_sim()
    ops, lv, lg = state(sim)
    for prio in range(DEF_PRIORITY, -1, -1):
        sc = ScanControl(nr_to_reclaim=32, priority=prio)
        assert ops.get_nr_to_scan(sim, lv, sc, 60) == 70 >> prio
    assert lg.max_seq == 3


# ------------------------------------------------------------------------------------------------
# what aging does to the oldest generation (inc_min_seq, §3.7)


def test_inc_min_seq_moves_the_oldest_generation_up():
    """Aging with four generations: the oldest generation's folios go to min_seq + 1 (at the
    tail), lose PG_referenced and LRU_REFS, are counted as protected by tier and folded into the
    PID averages; min_seq advances for both types."""
    sim = new_sim()
    ops, lv, lg = state(sim)
    once = recs(Kind.FILE_FD, range(10))
    twice = recs(Kind.FILE_FD, [20, 21, 20, 21])
    replay(sim, once, twice)
    f = sim.folios
    a, b = ids_of(sim, once), ids_of(sim, twice)[:2]
    assert (f.lru[np.concatenate([a, b])] == lst(LRU_FILE, 0)).all()
    assert ops.try_to_inc_max_seq(sim, lv, 3, 60)
    assert lg.max_seq == 4 and lg.min_seq == [1, 1]
    moved = np.concatenate([a, b])
    assert (f.lru[moved] == lst(LRU_FILE, 1)).all() and (f.lru_gen[moved] == lst(LRU_FILE, 1)).all()
    assert not (f.flags[moved] & PG_referenced).any()
    assert not f.lru_refs[moved].any()
    # protected: 10 folios of tier 0 and 2 of tier 1, folded into avg_total (halved)
    assert lg.avg_total[LRU_FILE].tolist() == [10 // 2, 2 // 2, 0, 0]
    assert not lg.protected.any()
    assert lv.nr[lst(LRU_FILE, 0)] == 0
    assert ops.check(sim, lv) == []


def test_inc_min_seq_appends_at_the_tail():
    """Folios moved up by inc_min_seq land behind (older than) the folios already in
    min_seq + 1."""
    sim = new_sim()
    ops, lv, lg = state(sim)
    rd = recs(Kind.FILE_FD, range(5))
    mm = recs(Kind.FILE_MMAP, range(100, 105))
    replay(sim, rd, mm)                            # rd in generation 0, mm in generation 2
    assert ops.try_to_inc_max_seq(sim, lv, 3, 60)  # rd -> generation 1
    assert ops.try_to_inc_max_seq(sim, lv, 4, 60)  # rd -> generation 2, behind mm
    assert lg.min_seq == [2, 2]
    tail_first = lv.lists[lst(LRU_FILE, 2)].valid_ids(sim.folios)
    assert len(tail_first) == 10
    assert set(tail_first[:5].tolist()) == set(ids_of(sim, rd).tolist())
    assert set(tail_first[5:].tolist()) == set(ids_of(sim, mm).tolist())


def test_inc_min_seq_puts_promoted_folios_in_their_generation():
    """A folio promoted by the walk (read() then mapped: PG_referenced, young PTE) is moved by
    inc_min_seq to its promoted generation, not to min_seq + 1."""
    sim = new_sim()
    ops, lv, lg = state(sim)
    rd = recs(Kind.FILE_FD, [0, 1])
    mm = recs(Kind.FILE_MMAP, [0])
    replay(sim, rd, mm)
    p, q = (int(x) for x in ids_of(sim, rd))
    assert sim.folios.lru[p] == lst(LRU_FILE, 0)
    assert ops.try_to_inc_max_seq(sim, lv, 3, 60)
    f = sim.folios
    assert f.lru[p] == f.lru_gen[p] == lst(LRU_FILE, 3)  # gen(max_seq) at walk time
    assert f.flags[p] & PG_workingset and not f.flags[p] & PG_referenced
    assert f.lru[q] == lst(LRU_FILE, 1)
    assert list(lv.nr) == list(lv.nr_logical)


def test_cold_hot_inversion_for_unevictable_type():
    """At swappiness 0 anon is not evictable: aging with four anon generations only increments
    min_seq[anon], so the oldest slot becomes the youngest generation and its folios stay put
    (cold/hot inversion). At swappiness 60 the same folios would move to min_seq + 1."""
    out = {}
    for swp in (0, 60):
        sim = new_sim(swappiness=swp)
        ops, lv, lg = state(sim)
        an = recs(Kind.ANON, range(8))
        replay(sim, an)
        a = ids_of(sim, an)
        sim.ptes.young[: sim.ptes.count] = False  # nothing young: no promotion by the walk
        for _ in range(2):
            assert ops.try_to_inc_max_seq(sim, lv, lg.max_seq, swp)
        assert lg.max_seq == 5 and lg.min_seq == [2, 2]
        assert (sim.folios.lru[a] == lst(LRU_ANON, 2)).all()     # now the oldest anon generation
        assert ops.try_to_inc_max_seq(sim, lv, 5, swp)
        assert lg.max_seq == 6 and lg.min_seq == [3, 3]
        out[swp] = sim.folios.lru[a].copy(), sim.folios.lru_gen[a].copy()
        assert ops.check(sim, lv) == []
    lru0, gen0 = out[0]
    assert (lru0 == lst(LRU_ANON, 6)).all() and (gen0 == lst(LRU_ANON, 6)).all()  # youngest
    lru60, gen60 = out[60]
    assert (lru60 == lst(LRU_ANON, 3)).all() and (gen60 == lst(LRU_ANON, 3)).all()  # min_seq


def test_cold_hot_inversion_of_file_at_anon_only():
    """Symmetrically, at SWAPPINESS_ANON_ONLY (201) file is not evictable."""
    sim = new_sim()
    ops, lv, lg = state(sim)
    rd = recs(Kind.FILE_FD, range(6))
    replay(sim, rd)
    assert ops.try_to_inc_max_seq(sim, lv, 3, 201)
    assert lg.min_seq == [1, 1]
    assert (sim.folios.lru[ids_of(sim, rd)] == lst(LRU_FILE, 0)).all()  # = gen(max_seq 4)
    assert lg.max_seq % 4 == 0


# ------------------------------------------------------------------------------------------------
# try_to_inc_min_seq (§3.8)


def test_try_to_inc_min_seq_skips_empty_generations_and_caps_the_gap():
    """Only file folios in generation 0: anon could skip to max_seq - 1 but is capped at
    max_seq - 2 while file lags behind it; at swappiness 0 anon is left alone, at 201 it is not
    capped and file is left alone."""
    for swp, expect in ((60, [1, 0]), (0, [0, 0]), (201, [2, 0]), (1, [1, 0]), (200, [1, 0])):
        sim = new_sim()
        ops, lv, lg = state(sim)
        replay(sim, recs(Kind.FILE_FD, range(5)))
        assert ops.try_to_inc_min_seq(lv, swp) == (expect != [0, 0])
        assert lg.min_seq == expect, swp


def test_try_to_inc_min_seq_folds_pid_counters_of_advanced_types():
    sim = new_sim()
    ops, lv, lg = state(sim)
    replay(sim, recs(Kind.FILE_FD, range(5)))
    lg.refaulted[:] = 8
    lg.evicted[:] = 6
    lg.protected[:] = 2
    assert ops.try_to_inc_min_seq(lv, 60)  # anon advances, file does not
    assert lg.avg_refaulted[LRU_ANON].tolist() == [4] * 4
    assert lg.avg_total[LRU_ANON].tolist() == [4] * 4
    assert not lg.refaulted[LRU_ANON].any() and not lg.evicted[LRU_ANON].any()
    assert lg.refaulted[LRU_FILE].tolist() == [8] * 4 and not lg.avg_total[LRU_FILE].any()
