"""Classic hot path in both drivers: folio_mark_accessed two-touch promotion (reference §2.3),
filemap_read's once-per-folio rule, and refault activation from shadow entries (§1.13, §2.11)."""

from __future__ import annotations

import numpy as np
from conftest import (
    ACTIVE_ANON, ACTIVE_FILE, INACTIVE_FILE, Kind, cat, lruvec, new_sim, one_id, reads, recs, replay,
    vm_delta, writes,
)

from reclaim_ext.core.workingset import workingset_size_of
from reclaim_ext.machine.folio import PG_active, PG_referenced, PG_resident, PG_workingset

P = [5]  # the page under test (file 1, index 5)


def state(sim, g):
    f = sim.folios
    fl = int(f.flags[g])
    return {"list": int(f.lru[g]), "active": bool(fl & PG_active), "referenced": bool(fl & PG_referenced)}


# ---- folio_mark_accessed ---------------------------------------------------------------------


def test_first_read_sets_referenced_on_inactive(mode):
    sim = new_sim(mode=mode)
    replay(sim, reads(P))
    g = one_id(sim, reads(P))
    assert state(sim, g) == {"list": INACTIVE_FILE, "active": False, "referenced": True}
    assert sim.vm["pgactivate"] == 0


def test_second_read_activates(mode):
    sim = new_sim(mode=mode)
    replay(sim, cat(reads(P, pid=0), reads(P, pid=1)))
    g = one_id(sim, reads(P))
    assert state(sim, g) == {"list": ACTIVE_FILE, "active": True, "referenced": False}
    assert lruvec(sim).nr[ACTIVE_FILE] == 1 and lruvec(sim).nr[INACTIVE_FILE] == 0


def test_activation_counts_pgactivate_and_ages_nonresident_clock(mode):
    sim = new_sim(mode=mode)
    replay(sim, reads(P, pid=0))
    age = lruvec(sim).nonresident_age
    before = dict(sim.vm)
    replay(sim, reads(P, pid=1))
    assert vm_delta(before, sim) == {"pgactivate": 1}
    assert lruvec(sim).nonresident_age == age + 1


def test_third_read_sets_referenced_on_active(mode):
    sim = new_sim(mode=mode)
    replay(sim, cat(reads(P, pid=0), reads(P, pid=1), reads(P, pid=2)))
    g = one_id(sim, reads(P))
    assert state(sim, g) == {"list": ACTIVE_FILE, "active": True, "referenced": True}
    assert sim.vm["pgactivate"] == 1 and lruvec(sim).nonresident_age == 1


def test_two_touches_split_across_runs_activate(mode):
    """The fast driver's segment boundary does not lose the first touch."""
    sim = new_sim(mode=mode)
    replay(sim, reads(P, pid=0))
    replay(sim, reads(P, pid=1))
    assert state(sim, one_id(sim, reads(P)))["active"]


def test_same_stream_rereading_a_page_counts_once(mode):
    """filemap_read skips the folio the previous read() of the same file ended in."""
    sim = new_sim(mode=mode)
    replay(sim, cat(reads(P), reads(P), reads(P)))
    g = one_id(sim, reads(P))
    assert state(sim, g) == {"list": INACTIVE_FILE, "active": False, "referenced": True}
    assert sim.vm["pgactivate"] == 0


def test_same_stream_rereading_across_runs_counts_once(mode):
    sim = new_sim(mode=mode)
    replay(sim, reads(P))
    replay(sim, reads(P))
    assert not state(sim, one_id(sim, reads(P)))["active"]


def test_same_stream_reading_another_page_in_between_counts_again(mode):
    sim = new_sim(mode=mode)
    replay(sim, reads([5, 6, 5]))
    assert state(sim, one_id(sim, reads(P)))["active"]


def test_read_of_another_file_does_not_reset_the_stream(mode):
    """prev_pos lives in the struct file: a read of file 2 in between leaves file 1's alone."""
    sim = new_sim(mode=mode)
    replay(sim, cat(reads(P, file=1), reads([0], file=2), reads(P, file=1)))
    assert not state(sim, one_id(sim, reads(P)))["active"]


def test_many_streams_each_keep_their_previous_read(mode):
    """Each of 1,000 streams (pid, file) reads its own page, all interleaved, then all again:
    the second round repeats every stream's previous read, so nothing is activated; a third
    round through other streams (pid + 1) activates every page. 1,000 streams outgrow the
    streams' hash table (core.access.read_marks, KeyIndex.hash_table: 716 keys at first)."""
    sim = new_sim(memory=4096, mode=mode)  # no reclaim: the 1,000 pages stay resident
    first = cat(*[reads([k], pid=k % 250, file=1 + k // 250) for k in range(1000)])
    replay(sim, first)
    replay(sim, first)
    assert sim.vm["pgactivate"] == 0 and sim._streams.count == 1000 and len(sim._streams._slots) // 2 > 1024
    replay(sim, cat(*[reads([k], pid=k % 250 + 1, file=1 + k // 250) for k in range(1000)]))
    assert sim.vm["pgactivate"] == 1000


def test_other_process_reading_same_page_counts(mode):
    sim = new_sim(mode=mode)
    replay(sim, cat(reads(P, pid=0), reads(P, pid=1)))
    assert sim.vm["pgactivate"] == 1


def test_write_does_not_mark_accessed(mode):
    """A buffered write() finds or creates the folio without FGP_ACCESSED (generic_perform_write):
    it dirties the folio but neither sets PG_referenced nor activates it."""
    sim = new_sim(mode=mode)
    replay(sim, cat(writes(P), writes(P), writes(P)))
    g = one_id(sim, reads(P))
    assert state(sim, g) == {"list": INACTIVE_FILE, "active": False, "referenced": False}
    assert sim.vm["pgactivate"] == 0


def test_write_miss_reads_nothing(mode):
    """A whole-page write() of an uncached page allocates a folio without reading it."""
    sim = new_sim(mode=mode)
    replay(sim, writes(P))
    assert sim.vm["pgpgin"] == 0 and sim.misses == 1


def test_write_between_reads_of_same_page(mode):
    """write() does not move the read position: read, write, read of one page by one stream
    marks the folio once (the second read starts where the first ended)."""
    sim = new_sim(mode=mode)
    replay(sim, cat(reads(P), writes(P), reads(P)))
    g = one_id(sim, reads(P))
    assert state(sim, g) == {"list": INACTIVE_FILE, "active": False, "referenced": True}


def test_read_after_write_of_same_page_counts_once(mode):
    """The first read() after a write() marks the folio (referenced), a second read of another
    stream activates it."""
    sim = new_sim(mode=mode)
    replay(sim, cat(writes(P), reads(P), reads(P, pid=1)))
    assert state(sim, one_id(sim, reads(P)))["active"]


# ---- refault activation ----------------------------------------------------------------------
#
# 256 pages of memory (watermarks min 32, low 40, high 48), no swap: the workingset size of a file
# refault is the active file list. Streaming reads of fresh pages (file 3) fill memory; reclaim
# evicts the inactive tail.

X = [0]  # file 2, page 0
HOT = 150


def evict_by_streaming(sim, g, start=0):
    """Read fresh pages of file 3 one at a time until folio g is evicted; returns the next page."""
    n = start
    while sim.folios.flags[g] & PG_resident:
        replay(sim, reads([n], file=3))
        n += 1
        assert n < start + 2000, "the folio was never evicted"
    return n


def distance_and_size(sim, g):
    """Refault distance and workingset size as the reference defines them (§1.13), swap off."""
    lv = lruvec(sim)
    return lv.nonresident_age - int(sim.folios.shadow[g]), workingset_size_of(*lv.nr[:4], True, False)


def inactive_then_evicted(mode):
    """X read once (never active), a hot set on the active list, X evicted by a stream."""
    sim = new_sim(mode=mode, swap=0)
    replay(sim, reads(X, file=2))
    hot = reads(range(100), file=1)
    replay(sim, cat(hot, reads(range(100), file=1, pid=1)))
    g = one_id(sim, reads(X, file=2))
    end = evict_by_streaming(sim, g)
    return sim, g, end


def active_then_evicted(mode):
    """X activated first, then a larger hot set: X is deactivated first (PG_workingset) and then
    evicted."""
    sim = new_sim(mode=mode, swap=0)
    replay(sim, cat(reads(X, file=2, pid=0), reads(X, file=2, pid=1)))
    replay(sim, cat(reads(range(HOT), file=1), reads(range(HOT), file=1, pid=1)))
    g = one_id(sim, reads(X, file=2))
    assert sim.folios.flags[g] & PG_active
    evict_by_streaming(sim, g)
    return sim, g


def test_evicted_folio_leaves_a_shadow(mode):
    sim, g, _ = inactive_then_evicted(mode)
    assert sim.folios.shadow[g] >= 0 and not sim.folios.shadow_ws[g]


def test_refault_within_distance_comes_back_active(mode):
    sim, g, _ = inactive_then_evicted(mode)
    distance, ws = distance_and_size(sim, g)
    assert distance <= ws  # precondition: the refault is recent
    before = dict(sim.vm)
    replay(sim, reads(X, file=2))
    d = vm_delta(before, sim)
    assert d.get("workingset_refault_file") == 1 and d.get("workingset_activate_file") == 1
    assert "workingset_restore_file" not in d
    assert sim.folios.lru[g] == ACTIVE_FILE
    assert not sim.folios.flags[g] & PG_workingset


def test_refault_of_workingset_folio_is_restored(mode):
    sim, g = active_then_evicted(mode)
    assert sim.folios.shadow_ws[g]  # the shadow remembers it was active
    distance, ws = distance_and_size(sim, g)
    assert distance <= ws
    before = dict(sim.vm)
    replay(sim, reads(X, file=2))
    d = vm_delta(before, sim)
    assert d.get("workingset_refault_file") == 1
    assert d.get("workingset_activate_file") == 1 and d.get("workingset_restore_file") == 1
    assert sim.folios.lru[g] == ACTIVE_FILE
    assert sim.folios.flags[g] & PG_workingset


def test_refault_activation_ages_nonresident_clock(mode):
    sim, g, _ = inactive_then_evicted(mode)
    age = lruvec(sim).nonresident_age
    replay(sim, reads(X, file=2))
    assert lruvec(sim).nonresident_age == age + 1


def test_refault_beyond_distance_comes_back_inactive(mode):
    sim, g, end = inactive_then_evicted(mode)
    replay(sim, reads(range(end, end + 600), file=3))  # 600 more evictions since X's
    distance, ws = distance_and_size(sim, g)
    assert distance > ws  # precondition: the refault is not recent
    before = dict(sim.vm)
    replay(sim, reads(X, file=2))
    d = vm_delta(before, sim)
    assert d.get("workingset_refault_file") == 1
    assert "workingset_activate_file" not in d
    assert sim.folios.lru[g] == INACTIVE_FILE


def test_first_touch_is_not_a_refault(mode):
    sim = new_sim(mode=mode)
    replay(sim, reads(range(50)))
    assert sim.vm["workingset_refault_file"] == 0 and sim.vm["workingset_activate_file"] == 0
    assert np.all(sim.folios.lru[: sim.folios.count] == INACTIVE_FILE)


def test_swapped_out_anon_refault_within_distance_comes_back_active(mode):
    """Anon refaults use the same clock; their workingset size also counts the file lists."""
    sim = new_sim(mode=mode, swap=512)
    replay(sim, cat(reads(range(100)), reads(range(100), pid=1)))  # 100 active file pages
    a = recs(Kind.ANON, [0], pid=5)
    replay(sim, a)
    g = one_id(sim, a)
    n = 1
    while sim.folios.flags[g] & PG_resident:  # anonymous pressure until A is swapped out
        replay(sim, recs(Kind.ANON, [n], pid=5))
        n += 1
        assert n < 2000, "the anon folio was never swapped out"
    lv = lruvec(sim)
    assert lv.nonresident_age - int(sim.folios.shadow[g]) <= workingset_size_of(*lv.nr[:4], False, sim.swap.free > 0)
    before = dict(sim.vm)
    replay(sim, a)
    d = vm_delta(before, sim)
    assert d.get("pswpin") == 1 and d.get("workingset_refault_anon") == 1
    assert d.get("workingset_activate_anon") == 1
    assert sim.folios.lru[g] == ACTIVE_ANON


def test_mark_accessed_decision_over_every_flag_combination():
    """classic_events' folio_mark_accessed (stated as one test of the three flags and the list
    tag) against the kernel's order of tests: not referenced -> referenced; else unevictable ->
    nothing; else inactive on a list -> activated (referenced cleared); else nothing. Unevictable
    and off-list folios never meet the hot path in a run, so only this test tells them apart."""
    from reclaim_ext.machine.folio import PG_unevictable
    from reclaim_ext.policies.classic import classic_events

    combos = [(r, u, a, lru) for r in (0, 1) for u in (0, 1) for a in (0, 1) for lru in (-1, 0)]
    n = len(combos)
    flags = np.zeros(n, dtype=np.uint16)
    flru = np.zeros(n, dtype=np.int8)
    for g, (r, u, a, lru) in enumerate(combos):
        flags[g] = (PG_referenced if r else 0) | (PG_unevictable if u else 0) | (PG_active if a else 0)
        flru[g] = lru if lru < 0 else (1 if a else 0)  # file type 0 here: list = type * 2 + active
    before = flags.copy()
    page = np.arange(n, dtype=np.int64)
    nr = np.full((1, 4), 100, dtype=np.int64)
    lvt = (nr, np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64), np.full(1, -1, np.int64),
           np.array([0, 1], np.int64), np.zeros(1, np.int64))
    stat = np.zeros((1, 5), dtype=np.int64)
    push = (np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64))
    npush = classic_events(page, np.zeros(n, np.bool_), np.full(n, -1, np.int64), np.zeros(n, np.bool_),
                           np.zeros(n, np.int64), flags, np.zeros(n, np.uint8), flru, np.zeros(n, np.int64),
                           np.zeros(n, np.int16), np.zeros(n, np.int16), lvt, np.zeros(1, np.int64), stat, push)
    activated = set(push[0][:npush].tolist())
    for g, (r, u, a, lru) in enumerate(combos):
        fl = int(before[g])
        if not r:
            want = fl | PG_referenced
        elif u or a or lru < 0:
            want = fl
        else:
            want = (fl | PG_active) & ~PG_referenced
        assert int(flags[g]) == want, (combos[g], int(flags[g]), want)
        assert (g in activated) == (want != fl and r == 1), combos[g]
    assert stat[0, 4] == len(activated) == 1  # pgactivate: the one evictable inactive referenced folio
