"""Classic folio_check_references (reference §2.5): one test per row of the decision table, on real
folios, then the same rules end to end through the rmap walk and shrink_inactive_list."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import (
    ACTIVE_FILE, INACTIVE_FILE, Kind, cat, new_sim, one_id, reads, recs, replay, lruvec,
    scan_control,
)

from reclaim_ext.core.ops import (
    FOLIOREF_ACTIVATE, FOLIOREF_KEEP, FOLIOREF_RECLAIM, FOLIOREF_RECLAIM_CLEAN,
)
from reclaim_ext.core.rmap import folio_referenced
from reclaim_ext.core.vmscan import shrink_inactive_list
from reclaim_ext.machine.folio import LRU_FILE, PG_active, PG_referenced, PG_resident

NAMES = {FOLIOREF_ACTIVATE: "ACTIVATE", FOLIOREF_KEEP: "KEEP", FOLIOREF_RECLAIM: "RECLAIM",
         FOLIOREF_RECLAIM_CLEAN: "RECLAIM_CLEAN"}


@pytest.fixture
def sim():
    return new_sim(memory=256)


def folio(sim, lru_type: str, referenced: bool) -> int:
    """A resident folio of the type, faulted in by a real access, with PG_referenced as asked."""
    n = sim.folios.count
    if lru_type == "file":
        r = reads([n], file=7)
    else:
        r = recs(Kind.ANON, [n])
    replay(sim, r)
    g = one_id(sim, r)
    if referenced:
        sim.folios.flags[g] |= np.uint16(PG_referenced)
    else:
        sim.folios.flags[g] &= ~np.uint16(PG_referenced)
    return g


def check(sim, g: int, young: int, vm_exec: bool = False) -> int:
    """Classic().references on one folio; returns the verdict."""
    v = sim.ops.references(sim, lruvec(sim), np.array([g]), np.array([young], dtype=np.int32),
                           np.array([vm_exec]), scan_control())
    assert len(v) == 1
    return int(v[0])


def referenced(sim, g: int) -> bool:
    return bool(sim.folios.flags[g] & PG_referenced)


# ---- the decision table, row by row --------------------------------------------------------------


@pytest.mark.parametrize("lru_type", ["file", "anon"])
def test_young_and_referenced_activates(sim, lru_type):
    g = folio(sim, lru_type, referenced=True)
    assert NAMES[check(sim, g, young=1)] == "ACTIVATE"


@pytest.mark.parametrize("lru_type", ["file", "anon"])
def test_young_in_two_vmas_activates_without_referenced(sim, lru_type):
    g = folio(sim, lru_type, referenced=False)
    assert NAMES[check(sim, g, young=2)] == "ACTIVATE"


def test_young_exec_file_activates_on_first_sighting(sim):
    g = folio(sim, "file", referenced=False)
    assert NAMES[check(sim, g, young=1, vm_exec=True)] == "ACTIVATE"


def test_young_exec_anon_is_kept(sim):
    g = folio(sim, "anon", referenced=False)
    assert NAMES[check(sim, g, young=1, vm_exec=True)] == "KEEP"


@pytest.mark.parametrize("lru_type", ["file", "anon"])
def test_young_once_is_kept(sim, lru_type):
    g = folio(sim, lru_type, referenced=False)
    assert NAMES[check(sim, g, young=1)] == "KEEP"


@pytest.mark.parametrize("lru_type", ["file", "anon"])
def test_young_sets_referenced_for_next_sighting(sim, lru_type):
    g = folio(sim, lru_type, referenced=False)
    check(sim, g, young=1)
    assert referenced(sim, g)


def test_not_young_referenced_file_is_reclaimed_only_if_clean(sim):
    g = folio(sim, "file", referenced=True)
    assert NAMES[check(sim, g, young=0)] == "RECLAIM_CLEAN"


def test_not_young_referenced_anon_is_reclaimed(sim):
    g = folio(sim, "anon", referenced=True)
    assert NAMES[check(sim, g, young=0)] == "RECLAIM"


@pytest.mark.parametrize("lru_type", ["file", "anon"])
def test_not_young_unreferenced_is_reclaimed(sim, lru_type):
    g = folio(sim, lru_type, referenced=False)
    assert NAMES[check(sim, g, young=0)] == "RECLAIM"


@pytest.mark.parametrize("lru_type", ["file", "anon"])
def test_check_clears_referenced(sim, lru_type):
    g = folio(sim, lru_type, referenced=True)
    check(sim, g, young=0)
    assert not referenced(sim, g)


def test_check_leaves_other_flags_alone(sim):
    g = folio(sim, "file", referenced=True)
    before = int(sim.folios.flags[g]) & ~PG_referenced
    check(sim, g, young=0)
    assert int(sim.folios.flags[g]) & ~PG_referenced == before


def test_batch_verdicts_are_per_folio(sim):
    """The vectorized hook gives each folio its own row of the table."""
    rows = [  # (type, referenced, young, exec, expected)
        ("file", True, 1, False, "ACTIVATE"),
        ("anon", False, 2, False, "ACTIVATE"),
        ("file", False, 1, True, "ACTIVATE"),
        ("anon", False, 1, True, "KEEP"),
        ("file", False, 1, False, "KEEP"),
        ("file", True, 0, False, "RECLAIM_CLEAN"),
        ("anon", True, 0, False, "RECLAIM"),
        ("file", False, 0, False, "RECLAIM"),
        ("anon", False, 0, False, "RECLAIM"),
    ]
    ids = np.array([folio(sim, t, r) for t, r, _, _, _ in rows])
    young = np.array([y for _, _, y, _, _ in rows], dtype=np.int32)
    vm_exec = np.array([x for _, _, _, x, _ in rows])
    v = sim.ops.references(sim, lruvec(sim), ids, young, vm_exec, scan_control())
    assert [NAMES[int(x)] for x in v] == [e for *_, e in rows]
    assert [referenced(sim, int(g)) for g in ids] == [y > 0 for y in young]


# ---- end to end: PTE young bits, the rmap walk, inactive scans -----------------------------------


def scan_inactive_file(sim):
    """One shrink_inactive_list pass over the whole (small) inactive file list."""
    lv = lruvec(sim)
    return shrink_inactive_list(sim, lv, LRU_FILE, lv.nr[INACTIVE_FILE], scan_control(), sim.ops)


def test_folio_referenced_counts_young_mappings():
    sim = new_sim()
    page = cat(recs(Kind.FILE_MMAP, [3], pid=0), recs(Kind.FILE_MMAP, [3], pid=1),
               recs(Kind.FILE_MMAP, [3], pid=2))
    replay(sim, page)
    young, vm_exec = folio_referenced(sim, np.array([one_id(sim, page)]))
    assert young.tolist() == [3] and vm_exec.tolist() == [False]


def test_folio_referenced_consumes_young_bits():
    sim = new_sim()
    page = recs(Kind.FILE_MMAP, [3])
    replay(sim, page)
    g = np.array([one_id(sim, page)])
    first, _ = folio_referenced(sim, g)
    second, _ = folio_referenced(sim, g)
    assert first.tolist() == [1] and second.tolist() == [0]


def test_folio_referenced_reports_exec_mapping():
    sim = new_sim()
    page = recs(Kind.FILE_EXEC, [3])
    replay(sim, page)
    young, vm_exec = folio_referenced(sim, np.array([one_id(sim, page)]))
    assert young.tolist() == [1] and vm_exec.tolist() == [True]


def test_mapped_page_young_once_is_kept_on_first_scan():
    sim = new_sim()
    page = recs(Kind.FILE_MMAP, [3])
    replay(sim, page)
    g = one_id(sim, page)
    scan_inactive_file(sim)
    f = sim.folios
    assert f.flags[g] & PG_resident and f.lru[g] == INACTIVE_FILE
    assert sim.vm["pgactivate"] == 0


def test_mapped_page_activated_on_second_young_sighting():
    sim = new_sim()
    page = recs(Kind.FILE_MMAP, [3])
    replay(sim, page)
    g = one_id(sim, page)
    scan_inactive_file(sim)   # young once: kept, PG_referenced
    replay(sim, page)         # touched again through the mapping: young again
    scan_inactive_file(sim)
    f = sim.folios
    assert f.lru[g] == ACTIVE_FILE and f.flags[g] & PG_active
    assert sim.vm["pgactivate"] == 1


def test_mapped_page_kept_once_then_idle_is_reclaimed():
    """Young on the first scan, not touched since: PG_referenced alone does not save a page that
    is clean (RECLAIM_CLEAN), so the second scan frees it."""
    sim = new_sim()
    page = recs(Kind.FILE_MMAP, [3])
    replay(sim, page)
    g = one_id(sim, page)
    scan_inactive_file(sim)
    freed = scan_inactive_file(sim)
    assert freed == 1 and not sim.folios.flags[g] & PG_resident
    assert not sim.ptes.present[sim.folios.pte_head[g]]  # unmapped on the way out


def test_exec_file_page_activated_on_first_observed_use():
    sim = new_sim()
    page = recs(Kind.FILE_EXEC, [3])
    replay(sim, page)
    g = one_id(sim, page)
    scan_inactive_file(sim)
    assert sim.folios.lru[g] == ACTIVE_FILE and sim.vm["pgactivate"] == 1


def test_page_young_in_two_processes_activated_at_once():
    sim = new_sim()
    page = cat(recs(Kind.FILE_MMAP, [3], pid=0), recs(Kind.FILE_MMAP, [3], pid=1))
    replay(sim, page)
    g = one_id(sim, page)
    scan_inactive_file(sim)
    assert sim.folios.lru[g] == ACTIVE_FILE and sim.vm["pgactivate"] == 1


def test_read_once_page_is_reclaimed_if_clean():
    """An unmapped page read once (PG_referenced) is still reclaimed on the first scan."""
    sim = new_sim()
    page = reads([3])
    replay(sim, page)
    g = one_id(sim, page)
    assert sim.folios.flags[g] & PG_referenced
    assert scan_inactive_file(sim) == 1 and not sim.folios.flags[g] & PG_resident
