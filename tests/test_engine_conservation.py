"""check_conservation: every page is free, on exactly one list, or evicted, and every total adds
up. It passes after real runs and names each kind of corruption."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import INACTIVE_FILE, cat, lruvec, new_sim, replay, writes

from reclaim_ext.core.engine import ConservationError
from reclaim_ext.machine.folio import LRU_FILE, NO_LIST, PG_dirty, PG_reclaim, PG_resident, PG_writeback
from reclaim_ext.trace import Kind, make_workload
from reclaim_ext.trace.record import make_records

WORKLOADS = {
    "zipf": dict(pages=2000, accesses=20_000, write_ratio=0.2),
    "loop": dict(pages=800, passes=25, kind="anon", write_ratio=0.5),
    "scan-hot": dict(hot_pages=300, scan_pages=1200, scan_every=2000, accesses=20_000),
    "shift": dict(pages=700, accesses=20_000, kind="mmap", write_ratio=0.1),
    "mixed": dict(procs=3, anon_pages=300, files=2, file_pages=500, exec_pages=100, accesses=20_000),
}


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_conservation_holds_after_every_reclaim(name, mode):
    sim = new_sim(memory=500, swap=1000, mode=mode, check=True)
    replay(sim, make_workload(name, **WORKLOADS[name]).to_array())
    assert sim.reclaims > 0
    sim.check_conservation()


# ---- corruption is detected ----------------------------------------------------------------------


@pytest.fixture
def sim():
    """A clean state after reclaim: file pages (some dirty) and anon pages, some swapped out."""
    s = new_sim(memory=300, swap=600, check=True)
    file = make_workload("zipf", pages=600, accesses=4000, kind="file", write_ratio=0.05).to_array()
    anon = make_workload("zipf", pages=600, accesses=4000, kind="anon", seed=1).to_array()
    replay(s, cat(file, anon))
    assert s.swap.used > 0 and s.reclaims > 0
    s.check_conservation()
    return s


def resident_on(sim, lru: int) -> int:
    f = sim.folios
    return int(np.flatnonzero(f.lru[: f.count] == lru)[0])


def test_detects_resident_folio_on_no_list(sim):
    g = resident_on(sim, INACTIVE_FILE)
    sim.folios.lru[g] = NO_LIST
    sim.folios.stamp[g] = -1
    with pytest.raises(ConservationError, match="resident pages are on no list"):
        sim.check_conservation()


def test_detects_list_size_out_of_step(sim):
    lruvec(sim).nr[INACTIVE_FILE] += 1
    with pytest.raises(ConservationError, match=r"list 2: \d+ folios on it but its size says \d+"):
        sim.check_conservation()


def test_detects_free_pages_change(sim):
    sim.node.free += 1
    with pytest.raises(ConservationError, match=r"free \d+ \+ resident \d+ != memory 300"):
        sim.check_conservation()


def test_detects_negative_free_pages(sim):
    sim.node.free = -1
    with pytest.raises(ConservationError, match=r"free pages negative \(-1\)"):
        sim.check_conservation()


def test_detects_page_on_two_lists(sim):
    g = resident_on(sim, INACTIVE_FILE)
    lv = lruvec(sim)
    other = INACTIVE_FILE + 1
    lv.lists[other].push_head(sim.folios, np.array([g]), np.array([sim.folios.stamp[g]]))
    lv.nr[other] += 1
    with pytest.raises(ConservationError, match="1 pages are on two lists"):
        sim.check_conservation()


def test_detects_swap_slot_leak(sim):
    sim.swap.used += 1
    with pytest.raises(ConservationError, match=r"swap slots used \d+ != swapped-out pages \d+"):
        sim.check_conservation()


def test_detects_memcg_usage_change(sim):
    sim.root_memcg.usage -= 1
    with pytest.raises(ConservationError, match=r"memcg usage \d+ != resident \d+"):
        sim.check_conservation()


def test_detects_evicted_page_left_on_a_list(sim):
    g = resident_on(sim, INACTIVE_FILE)
    sim.folios.flags[g] &= ~np.uint16(PG_resident)
    sim.node.free += 1
    sim.root_memcg.usage -= 1
    with pytest.raises(ConservationError, match="an evicted page is still on a list"):
        sim.check_conservation()


def test_detects_dirty_counter_drift(sim):
    sim.nr_file_dirty += 1
    with pytest.raises(ConservationError, match=r"dirty file pages \d+ != counter \d+"):
        sim.check_conservation()


def test_message_names_the_access(sim):
    sim.swap.used += 1
    with pytest.raises(ConservationError, match=f"chunk starting at access {sim.accesses}:"):
        sim.check_conservation()


# ---- writeback completion ------------------------------------------------------------------------


_WRITEBACK_STOP: list[int] = []


def folio_under_writeback():
    """Replay a prefix of the `mixed` workload (file writes through write() and mmap) that ends
    with reclaim's writeback of a resident file folio still in flight while the flusher has no
    reason to write dirty pages (below dirty_background_ratio with room for one more, not
    requested). The prefix is found once, in steps of 50 records, then replayed in one go."""
    rec = make_workload("mixed", **WORKLOADS["mixed"]).to_array()

    def fresh():
        return new_sim(memory=500, swap=500, mode="fast", check=False)

    def candidate(sim):
        f = sim.folios
        fl = f.flags[: f.count]
        wb = np.flatnonzero(((fl & PG_writeback) != 0) & ((fl & PG_resident) != 0))
        bg = sim.node.managed * 10 // 100
        if len(wb) and sim.nr_file_dirty < bg and not sim.writeback_requested:
            return int(wb[0])
        return None

    if not _WRITEBACK_STOP:
        sim = fresh()
        for start in range(0, len(rec), 50):
            replay(sim, rec[start : start + 50])
            if candidate(sim) is not None:
                _WRITEBACK_STOP.append(start + 50)
                break
        else:
            pytest.fail("reclaim never started writeback of a file folio in this run")
    stop = _WRITEBACK_STOP[0]
    sim = fresh()
    replay(sim, rec[:stop])
    g = candidate(sim)
    assert g is not None, "replaying the prefix in one go did not reach the same state"
    return sim, rec[:stop], g


def write_record_for(sim, records, g: int) -> np.ndarray:
    """A write() of the file page that folio g caches."""
    ids = sim.mm.translate(records)[0]
    i = int(np.flatnonzero(ids == g)[0])
    r = make_records(1)
    r["kind"] = Kind.FILE_FD
    r["write"] = 1
    r["file"] = records["file"][i]
    r["page"] = records["page"][i]
    r["pid"] = records["pid"][i]
    return r


def test_writeback_completion_keeps_redirtied_folio_dirty():
    """folio_end_writeback clears PG_writeback only: a folio written to again while its writeback
    was in flight is still dirty afterwards (its new data has not reached the disk), and the
    dirty-page count stays in step with the flags."""
    sim, records, g = folio_under_writeback()
    assert sim.folios.type[g] == LRU_FILE and not sim.folios.flags[g] & PG_dirty
    replay(sim, write_record_for(sim, records, g))
    assert sim.folios.flags[g] & PG_dirty and sim.folios.flags[g] & PG_writeback
    sim.flush_writeback()  # the flusher: in-flight writeback completes
    assert not sim.folios.flags[g] & PG_writeback
    assert sim.folios.flags[g] & PG_dirty, "re-dirtied folio was marked clean when writeback ended"
    sim.check_conservation()


def test_writeback_completion_of_clean_folio_keeps_counts():
    sim, _, g = folio_under_writeback()
    dirty_before = sim.nr_file_dirty
    sim.flush_writeback()
    assert not sim.folios.flags[g] & (PG_writeback | PG_dirty)
    assert sim.nr_file_dirty == dirty_before and sim.nr_writeback == 0
    sim.check_conservation()


def test_writeback_completion_does_not_rotate_redirtied_folio():
    """folio_rotate_reclaimable moves a PG_reclaim folio to the inactive tail only if it is clean
    (§1.10): a folio dirtied again during writeback stays where it is."""
    sim, records, g = folio_under_writeback()
    assert sim.folios.flags[g] & PG_reclaim and sim.folios.lru[g] != NO_LIST
    replay(sim, write_record_for(sim, records, g))
    stamp = int(sim.folios.stamp[g])
    sim.flush_writeback()
    assert int(sim.folios.stamp[g]) == stamp, "re-dirtied folio was rotated to the tail"


def test_write_to_clean_page_counts_one_dirty_page():
    sim = new_sim()
    replay(sim, cat(writes([1, 2, 2, 3]), writes([1], pid=1)))
    assert sim.nr_file_dirty == 3
    sim.check_conservation()
