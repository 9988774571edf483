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


@pytest.mark.parametrize("files", [1, 3])
def test_read_only_chunks_take_one_pass_and_name_pages_as_the_general_path(monkeypatch, files):
    """Chunks of read()/write() records only are translated in one compiled pass (_fd_ids), on
    the index's direct table (file 0 alone: small keys) or its hash table (files 1, 2 as well);
    a chunk that does not qualify (a key past the direct table, an anon or mmap record, a page
    index above 2**32 outside file 0) changes nothing there and takes the general path. Ids,
    kinds and pids equal the numpy reference's on every chunk, and the one-pass path ran."""
    import reclaim_ext.machine.mm as mm_mod

    done = []
    real = mm_mod._fd_ids

    def counted(*args):
        out = real(*args)
        done.append(bool(out[0]))
        return out

    monkeypatch.setattr(mm_mod, "_fd_ids", counted)
    rng = np.random.default_rng(3)
    mm, ref = _mm(), _ReferenceSpaces(FolioTable(), PteTable())
    for chunk in range(8):
        n = 500
        r = make_records(n)
        r["pid"] = rng.integers(0, 3, n)
        r["kind"] = Kind.FILE_FD
        r["write"] = rng.integers(0, 2, n)
        r["file"] = rng.integers(0, files, n)
        r["page"] = rng.integers(0, 300 + 100 * chunk, n)
        if chunk == 3:
            r["page"][250:] += 5000  # file 0 alone: keys past the direct table from record 250 on
        if chunk == 5:
            r["kind"][400] = Kind.ANON
        if chunk == 6:
            r["kind"][100] = Kind.FILE_MMAP
        if chunk == 4:
            r["file"][20], r["page"][20] = 0, 2**63 + 5  # file 0 takes any 64-bit page (hashed ids)
        if chunk == 7:
            r["file"][50], r["page"][50] = 0, 2**40  # allowed in file 0 (a block device's offsets)
        got, want = mm.translate(r), ref.translate(r)
        for g, w in zip(got, want):
            assert np.array_equal(g, w), chunk
    assert mm._nr_pages[0] == ref._nr_pages[0] and mm.pids == ref.pids
    assert np.array_equal(mm.folios.type[: mm._nr_pages[0]], ref.folios.type[: ref._nr_pages[0]])
    assert sum(done) >= 4 and not all(done)
    wide = _records([(0, Kind.FILE_FD, 1, 7), (0, Kind.FILE_FD, 2, 2**40)])
    with pytest.raises(TraceError, match="page index above 2"):
        mm.translate(wide)


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


def _reference_place(where, anon_ids, anon_ptes, file_ids, kind, pid, pages, ptes, pkeys):
    """mm._place before the compiled PTE pass (plain Python): mapped file records get PTE -2."""
    na, m = len(anon_ids), 0
    for i in range(len(where)):
        w = where[i]
        if kind[i] == Kind.ANON:
            pages[i], ptes[i] = anon_ids[w], anon_ptes[w]
        else:
            pages[i] = file_ids[w - na]
            if kind[i] != Kind.FILE_FD:
                ptes[i] = -2
                pkeys[m] = (np.uint64(pid[i]) << np.uint64(40)) | np.uint64(pages[i])
                m += 1
    return m


class _ReferenceSpaces(AddressSpaces):
    """AddressSpaces.translate with the numpy passes it had before the compiled _set_ptes."""

    def translate(self, rec):
        from reclaim_ext.machine.folio import LRU_ANON, LRU_FILE
        from reclaim_ext.machine.mm import _page_keys

        n = len(rec)
        kind, pid, page, file = rec["kind"], rec["pid"], rec["page"], rec["file"]
        keys, where, kinds = np.empty(n, np.uint64), np.empty(n, np.int64), np.zeros(len(Kind), np.int64)
        nanon, _, _, _ = _page_keys(kind, pid, page, file, keys, where, kinds)
        self.pids.update(np.unique(pid).tolist())
        pages, ptes = np.empty(n, dtype=np.int64), np.full(n, -1, dtype=np.int64)
        anon_ids = file_ids = np.zeros(0, dtype=np.int64)
        if nanon:
            anon_ids, new = self._anon_pages.ids(keys[:nanon], self._nr_pages)
            self._init_pages(new, LRU_ANON)
            pte_ids, new_ptes = self._anon_ptes.ids(keys[:nanon], self._nr_ptes)
            if len(new_ptes):
                anon = kind == Kind.ANON
                self._ref_init_ptes(pte_ids, new_ptes, anon_ids, pid[anon].astype(np.uint64),
                                    page[anon].astype(np.uint64), np.zeros(nanon, bool))
        else:
            pte_ids = anon_ids
        if nanon < n:
            file_ids, new = self._file_pages.ids(keys[nanon:], self._nr_pages)
            self._init_pages(new, LRU_FILE)
        pkeys = np.empty(n, dtype=np.uint64)
        nmapped = _reference_place(where, anon_ids, pte_ids, file_ids, kind, pid, pages, ptes, pkeys)
        if nmapped:
            mapped = ptes == -2
            pm = pages[mapped]
            pte_ids, new_ptes = self._file_ptes.ids(pkeys[:nmapped], self._nr_ptes)
            ptes[mapped] = pte_ids
            if len(new_ptes):
                vaddr = np.uint64(FILE_MAP_BASE) + (file[mapped].astype(np.uint64) << np.uint64(32)) + \
                    page[mapped].astype(np.uint64)
                self._ref_init_ptes(pte_ids, new_ptes, pm, pid[mapped].astype(np.uint64), vaddr,
                                    kind[mapped] == Kind.FILE_EXEC)
        return pages, ptes, kinds

    def _ref_init_ptes(self, pte_ids, new_ptes, pages, pids, vaddrs, exec_):
        p, f = self.ptes, self.folios
        p.ensure(int(new_ptes[-1]) + 1)
        isnew = pte_ids >= new_ptes[0]
        sel_ptes = pte_ids[isnew]
        uniq, first = np.unique(sel_ptes, return_index=True)
        p.page[uniq] = pages[isnew][first]
        p.pid[uniq] = pids[isnew][first].astype(np.uint16)
        p.vaddr[uniq] = vaddrs[isnew][first]
        p.exec[uniq] = exec_[isnew][first]
        ex_any = np.zeros(len(uniq), bool)
        np.logical_or.at(ex_any, np.searchsorted(uniq, sel_ptes), exec_[isnew])
        p.exec[uniq] |= ex_any
        pg = p.page[uniq]
        order = np.lexsort((uniq, pg))
        pg_s, pt_s = pg[order], uniq[order]
        last_of_group = np.ones(len(pg_s), bool)
        last_of_group[:-1] = pg_s[1:] != pg_s[:-1]
        first_of_group = np.ones(len(pg_s), bool)
        first_of_group[1:] = pg_s[1:] != pg_s[:-1]
        nxt = np.empty(len(pt_s), dtype=np.int64)
        nxt[:-1] = pt_s[1:]
        nxt[last_of_group] = f.pte_head[pg_s[last_of_group]]
        p.next[pt_s] = nxt
        f.pte_head[pg_s[first_of_group]] = pt_s[first_of_group]
        self._init_pmds(uniq)
        self._grow_vmas(uniq)


@pytest.mark.parametrize("seed", range(6))
def test_translate_matches_the_numpy_reference(seed):
    """Random mixes of anon, read(), mmap and exec records over several chunks (pages seen again,
    PTEs shared across chunks, a page mapped by many processes and executed by some): page and PTE
    ids, every PTE row, the reverse-map chains, PTE tables and VMAs equal the numpy reference's."""
    rng = np.random.default_rng(seed)
    mm, ref = _mm(), _ReferenceSpaces(FolioTable(), PteTable())
    kinds_ = np.array([Kind.ANON, Kind.FILE_FD, Kind.FILE_MMAP, Kind.FILE_EXEC])
    for chunk in range(5):
        n = int(rng.integers(1, 3000))
        r = make_records(n)
        r["pid"] = rng.integers(0, 1 + 4 * seed, n)
        mix = rng.dirichlet(np.ones(4)) if chunk != 2 else [0.0, 0.0, 0.5, 0.5]  # one chunk: no anon
        r["kind"] = kinds_[rng.choice(4, n, p=mix)]
        r["file"] = rng.integers(0, 4, n)
        r["page"] = rng.integers(0, 2000 if seed % 2 else 40, n)  # few pages: many PTEs per page
        got, want = mm.translate(r), ref.translate(r)
        for g, w in zip(got, want):
            assert np.array_equal(g, w)
    nptes, npages = ref._nr_ptes[0], ref._nr_pages[0]
    assert mm._nr_ptes[0] == nptes and mm._nr_pages[0] == npages
    for field in ("page", "pid", "vaddr", "exec", "next", "pmd"):
        assert np.array_equal(getattr(mm.ptes, field)[:nptes], getattr(ref.ptes, field)[:nptes]), field
    assert np.array_equal(mm.folios.pte_head[:npages], ref.folios.pte_head[:npages])
    assert np.array_equal(mm.folios.flags[:npages], ref.folios.flags[:npages])
    n = ref._nr_pmds[0]
    assert mm._nr_pmds[0] == n
    assert np.array_equal(mm.pmds.pid[:n], ref.pmds.pid[:n]) and np.array_equal(mm.pmds.index[:n], ref.pmds.index[:n])
    assert mm.vmas == ref.vmas and mm.pids == ref.pids
    assert np.array_equal(mm.vma_keys, ref.vma_keys) and np.array_equal(mm.vma_bounds, ref.vma_bounds)
