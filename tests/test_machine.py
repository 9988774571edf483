"""Machine layer: sizes with units, address spaces (PTE tables, VMAs, the reverse map)."""

import numpy as np
import pytest

from reclaim_ext.errors import ConfigError, TraceError
from reclaim_ext.machine.folio import FolioTable, PteTable
from reclaim_ext.machine.mm import FILE_MAP_BASE, VM_EXEC, VM_SHARED, AddressSpaces
from reclaim_ext.machine.units import format_size, parse_size
from reclaim_ext.trace import Kind
from reclaim_ext.trace.record import make_records


@pytest.mark.parametrize("text,pages", [("64MiB", 16384), ("2GiB", 524288), ("4096B", 1), ("1000", 1000),
                                        ("6KiB", 1), ("8k", 2), ("3 pages", 3), (" 12 MiB ", 3072)])
def test_parse_size_units(text, pages):
    assert parse_size(text) == pages


@pytest.mark.parametrize("text", ["12XB", "-5", "abc", "1.5", ""])
def test_parse_size_rejects_bad_sizes_naming_the_option(text):
    with pytest.raises(ConfigError, match="memory"):
        parse_size(text, "memory")


def test_format_size():
    assert format_size(16384) == "64 MiB"
    assert format_size(1) == "4 KiB"
    assert format_size(3) == "12 KiB"
    assert format_size(100) == "400 KiB"
    assert format_size(1000) == "3.9 MiB"


def _records(rows):
    r = make_records(len(rows))
    for i, (pid, kind, file, page) in enumerate(rows):
        r[i] = (pid, kind, 0, file, page)
    return r


def _mm():
    return AddressSpaces(FolioTable(), PteTable())


def test_pages_are_named_once_and_ptes_per_process():
    mm = _mm()
    pages, ptes, kinds = mm.translate(_records([(0, Kind.FILE_MMAP, 3, 7), (1, Kind.FILE_MMAP, 3, 7),
                                                (0, Kind.FILE_FD, 3, 7), (0, Kind.ANON, 0, 7), (1, Kind.ANON, 0, 7)]))
    assert kinds[Kind.FILE_MMAP] == 2 and kinds[Kind.FILE_FD] == 1 and kinds[Kind.ANON] == 2 and kinds.sum() == 5
    assert pages[0] == pages[1] == pages[2]              # one file page, shared
    assert len({pages[0], pages[3], pages[4]}) == 3      # anon pages are per process
    assert ptes[2] == -1                                 # read() has no PTE
    assert len(set(ptes[[0, 1, 3, 4]].tolist())) == 4


def test_read_only_chunks_name_their_pages_without_ptes():
    """A chunk of read()/write() records only: page ids in record order, every PTE -1."""
    mm = _mm()
    pages, ptes, kinds = mm.translate(_records([(0, Kind.FILE_FD, 1, 4), (1, Kind.FILE_FD, 1, 4),
                                                (0, Kind.FILE_FD, 2, 4)]))
    assert pages[0] == pages[1] != pages[2] and ptes.tolist() == [-1, -1, -1] and kinds[Kind.FILE_FD] == 3
    again, _, _ = mm.translate(_records([(3, Kind.FILE_FD, 2, 4)]))
    assert again[0] == pages[2] and mm.pids == {0, 1, 3}


def test_reverse_map_chains_every_pte_of_a_page():
    mm = _mm()
    pages, ptes, _ = mm.translate(_records([(p, Kind.FILE_MMAP, 1, 5) for p in range(4)]))
    chain, cur = [], mm.folios.pte_head[pages[0]]
    while cur >= 0:
        chain.append(int(cur))
        cur = mm.ptes.next[cur]
    assert sorted(chain) == sorted(ptes.tolist())


def test_ptes_are_grouped_512_to_a_pte_table():
    mm = _mm()
    _, ptes, _ = mm.translate(_records([(0, Kind.ANON, 0, v) for v in (0, 511, 512, 1023, 1024)]))
    pmd = mm.ptes.pmd[ptes]
    assert pmd[0] == pmd[1] and pmd[2] == pmd[3] and len(set(pmd.tolist())) == 3
    assert mm.pmds.index[pmd].tolist() == [0, 0, 1, 1, 2]


def test_vmas_cover_mapped_pages_with_flags():
    mm = _mm()
    mm.translate(_records([(2, Kind.ANON, 0, 10), (2, Kind.ANON, 0, 30), (2, Kind.FILE_EXEC, 4, 3),
                           (2, Kind.FILE_MMAP, 5, 9)]))
    vmas = mm.vmas[2]
    assert (vmas[None].start, vmas[None].end) == (10, 31)
    assert vmas[4].flags & VM_EXEC and vmas[4].flags & VM_SHARED
    assert not vmas[5].flags & VM_EXEC
    assert vmas[5].start == FILE_MAP_BASE + (5 << 32) + 9


def test_wide_page_index_only_in_file_zero():
    mm = _mm()
    mm.translate(_records([(0, Kind.FILE_FD, 0, 2**40)]))
    with pytest.raises(TraceError, match="only allowed in file 0"):
        mm.translate(_records([(0, Kind.FILE_FD, 1, 2**40)]))


def test_pmd_accessed_bit_set_by_mapped_access():
    from reclaim_ext.core.engine import SimConfig, Simulator
    from reclaim_ext.policies.classic import Classic
    from reclaim_ext.trace import ArrayTrace

    sim = Simulator(SimConfig(memory_pages=256, swap_pages=0), Classic())
    sim.run(ArrayTrace("t", _records([(0, Kind.ANON, 0, 700), (0, Kind.FILE_FD, 1, 1)])))
    assert sim.mm.pmds.young[: sim.mm._nr_pmds[0]].tolist() == [True]
    assert np.count_nonzero(sim.ptes.young[: sim.ptes.count]) == 1
