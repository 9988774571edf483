"""Address spaces: turn trace records into folio (page) ids and PTE ids.

Each process has an anonymous area (virtual page = the record's page) and maps file f at virtual
page FILE_MAP_BASE + f * 2**32 + index. A page is named once for the whole run: anonymous pages by
(pid, vpn), file pages by (file, index). A PTE is named by (pid, page). PTEs are grouped 512 to a
PTE table (one PMD entry, PmdTable): (pid, vaddr >> 9). Each process's VMAs cover the pages it has
mapped: one anonymous VMA and one per mapped file (VM_EXEC if it was executed from).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from ..errors import TraceError
from ..jit import PREFETCH_AHEAD, prefetch
from ..trace.record import Kind
from .folio import LRU_ANON, LRU_FILE, PG_swapbacked, FolioTable, PmdTable, PteTable
from .index import KeyIndex, _home, hash_get_or_add

FILE_MAP_BASE = 1 << 36
PTRS_PER_PTE = 512
PMD_SHIFT = 9  # in pages

VM_READ, VM_WRITE, VM_EXEC, VM_SHARED = 0x1, 0x2, 0x4, 0x8
# record kinds as plain ints: comparing an array with an enum member is slow
_ANON, _FILE_FD, _FILE_EXEC = int(Kind.ANON), int(Kind.FILE_FD), int(Kind.FILE_EXEC)


@dataclass
class Vma:
    """A virtual memory area of one process: pages [start, end), flags, file (None = anon)."""

    start: int
    end: int
    flags: int
    file: int | None = None


@njit(cache=True)
def _page_keys(kind, pid, page, file, keys, where, kinds):
    """The page key of each record, in one pass: anonymous pages (pid << 36 | page) first in
    `keys`, then file pages (file << 32 | page), each group in record order; `where[i]` is record
    i's position in `keys`; `kinds` counts the records of each kind. Returns (anonymous records,
    the first record whose file page index is above 2**32 outside file 0 or -1, the lowest and
    highest pid)."""
    n = len(kind)
    for i in range(n):
        if kind[i] < len(kinds):
            kinds[kind[i]] += 1
    na = kinds[_ANON]
    a, f = 0, na
    wide = -1
    pmin = pmax = np.int64(pid[0]) if n else 0
    for i in range(n):
        pg = np.uint64(page[i])
        p = np.int64(pid[i])
        pmin = min(pmin, p)
        pmax = max(pmax, p)
        if kind[i] == _ANON:
            keys[a] = (np.uint64(pid[i]) << np.uint64(36)) | pg
            where[i] = a
            a += 1
        else:
            fl = np.uint64(file[i])
            if wide < 0 and fl != 0 and pg > np.uint64(0xFFFFFFFF):
                wide = i
            keys[f] = (fl << np.uint64(32)) | pg
            where[i] = f
            f += 1
    return na, wide, pmin, pmax


@njit(cache=True)
def _fd_ids(kind, pid, page, file, direct, slots, shift, nxt, pages):
    """_page_keys and the file-page index's lookup in one pass, for a chunk of read()/write()
    records only: each record's page id (its key file << 32 | page in the index's direct table,
    or, when `direct` is empty, in its hash table `slots`, with room for every key: KeyIndex)
    into `pages`, an unseen key taking the next id from `nxt`. Returns (whether the chunk
    qualified, the next free id, the lowest and highest pid); a chunk with another kind of
    record, a key past the direct table or a page index above 2**32 outside file 0 changes
    nothing (the general path takes it)."""
    n = len(kind)
    use_direct = len(direct) > 0
    pmin = pmax = np.int64(pid[0]) if n else 0
    for i in range(n):
        if kind[i] != _FILE_FD:
            return False, nxt, pmin, pmax
        if use_direct:
            k = (np.int64(file[i]) << 32) | np.int64(page[i])  # negative: a page index of 2**63 or more
            if k < 0 or k >= len(direct):
                return False, nxt, pmin, pmax
        elif file[i] != 0 and np.uint64(page[i]) > np.uint64(0xFFFFFFFF):
            return False, nxt, pmin, pmax
        p = np.int64(pid[i])
        pmin = min(pmin, p)
        pmax = max(pmax, p)
    mask = len(slots) // 2 - 1
    for i in range(n):
        if i + PREFETCH_AHEAD < n:
            ka = (np.int64(file[i + PREFETCH_AHEAD]) << 32) | np.int64(page[i + PREFETCH_AHEAD])
            if use_direct:
                prefetch(direct, ka)
            else:
                prefetch(slots, 2 * _home(ka, shift, mask))
        k = (np.int64(file[i]) << 32) | np.int64(page[i])
        if use_direct:
            if direct[k] < 0:
                direct[k] = nxt
                nxt += 1
            pages[i] = direct[k]
        else:
            pages[i], nxt = hash_get_or_add(slots, k, nxt, shift, mask)
    return True, nxt, pmin, pmax


@njit(cache=True)
def _place(where, anon_ids, anon_ptes, file_ids, kind, pid, pages, ptes, pkeys, pos):
    """Each record's page id (and an anonymous record's PTE id, -1 for a read()/write() record)
    from the ids of its key. `pos` gets the positions of the anonymous records first, in record
    order, then those of the file records reached through a mapping (their PTEs are named later,
    from their PTE keys pid << 40 | page id, which go to `pkeys` in record order). Returns the
    number of those mapped records (their positions start at pos[len(anon_ids)])."""
    na = len(anon_ids)
    a = 0
    m = 0
    for i in range(len(where)):
        w = where[i]
        if kind[i] == _ANON:
            pages[i] = anon_ids[w]
            ptes[i] = anon_ptes[w]
            pos[a] = i
            a += 1
        else:
            g = file_ids[w - na]
            pages[i] = g
            if kind[i] == _FILE_FD:
                ptes[i] = -1
            else:
                pkeys[m] = (np.uint64(pid[i]) << np.uint64(40)) | np.uint64(g)
                pos[na + m] = i
                m += 1
    return m


@njit(cache=True)
def _set_ptes(recs, pte_ids, lo, hi, kind, pid, page, file, pages, ptes, pte_page, pte_pid, pte_vaddr,
              pte_exec, pte_next, pte_head):
    """Record recs[j] gets PTE pte_ids[j]; the new PTEs lo..hi-1 (each one named by some record
    here) get their rows and are linked into their page's reverse-map chain."""
    seen = np.zeros(hi - lo, dtype=np.bool_)
    for j in range(len(recs)):
        i = recs[j]
        t = pte_ids[j]
        ptes[i] = t
        if t < lo:
            continue
        ex = kind[i] == _FILE_EXEC
        if seen[t - lo]:
            # an executable mapping of a file page makes the (pid, page)'s PTE exec
            pte_exec[t] |= ex
            continue
        # the first record of a new PTE gives its page/pid/vaddr
        seen[t - lo] = True
        pte_page[t] = pages[i]
        pte_pid[t] = pid[i]
        if kind[i] == _ANON:
            pte_vaddr[t] = np.uint64(page[i])
        else:
            pte_vaddr[t] = np.uint64(FILE_MAP_BASE) + (np.uint64(file[i]) << np.uint64(32)) + np.uint64(page[i])
        pte_exec[t] = ex
    # rmap chains: new ptes of a page are pushed onto its chain in id order (pushing the highest
    # id first leaves the lowest at the head, followed by the others in id order, then the chain
    # the page had)
    for t in range(hi - 1, lo - 1, -1):
        g = pte_page[t]
        pte_next[t] = pte_head[g]
        pte_head[g] = t


class _Namespace:
    """A KeyIndex whose new keys take their ids from a counter shared with other namespaces."""

    def __init__(self) -> None:
        self.index = KeyIndex()

    def ids(self, keys: np.ndarray, counter: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Global ids of keys, plus the global ids created now (in order of creation)."""
        before = self.index.count
        ids = self.index.get_or_add(keys, counter[0])
        added = self.index.count - before
        new = counter[0] + np.arange(added, dtype=np.int64)
        counter[0] += added
        return ids, new


class AddressSpaces:
    """Names pages and PTEs; creates their table rows on first sight."""

    def __init__(self, folios: FolioTable, ptes: PteTable, pmds: PmdTable | None = None):
        self.folios = folios
        self.ptes = ptes
        self.pmds = pmds if pmds is not None else PmdTable()
        self._pmd_index = _Namespace()
        self._nr_pmds = [0]
        self.vmas: dict[int, dict] = {}  # pid -> {None (anon) | file id: Vma}
        # the VMAs as arrays for compiled code (vma_table): sorted keys pid << 40 | area (0 anon,
        # file + 1), and each one's [start, end)
        self.vma_keys = np.zeros(0, dtype=np.int64)
        self.vma_bounds = np.zeros((0, 2), dtype=np.int64)
        self._anon_pages = _Namespace()
        self._file_pages = _Namespace()
        self._anon_ptes = _Namespace()
        self._file_ptes = _Namespace()
        self._nr_pages = [0]
        self._nr_ptes = [0]
        self.pids: set[int] = set()
        self._none = np.zeros(0, dtype=np.int64)

    @property
    def nr_pages(self) -> int:
        return self._nr_pages[0]

    def translate(self, rec: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(page ids, pte ids, records of each kind) for a chunk of records; pte id is -1 for
        read()/write() accesses."""
        n = len(rec)
        kind, pid, page, file = rec["kind"], rec["pid"], rec["page"], rec["file"]
        fast = self._fd_only(kind, pid, page, file)
        if fast is not None:
            return fast
        keys = np.empty(n, dtype=np.uint64)
        where = np.empty(n, dtype=np.int64)
        kinds = np.zeros(len(Kind), dtype=np.int64)
        nanon, wide, pmin, pmax = _page_keys(kind, pid, page, file, keys, where, kinds)
        nfd = kinds[_FILE_FD]
        if wide >= 0:
            raise TraceError("trace", f"file {int(file[wide])} page {int(page[wide])}: a page index above 2**32 "
                             "is only allowed in file 0")
        if pmin == pmax:
            self.pids.add(int(pmin))
        else:
            self.pids.update(np.flatnonzero(np.bincount(pid)).tolist())
        if nfd == n:  # read()s and write()s only: the keys are in record order, and no PTE
            pages, new = self._file_pages.ids(keys, self._nr_pages)
            self._init_pages(new, LRU_FILE)
            return pages, self._no_ptes(n), kinds
        pages = np.empty(n, dtype=np.int64)
        ptes = np.empty(n, dtype=np.int64)
        anon_ids = pte_ids = file_ids = new_anon_ptes = self._none[:0]
        if nanon:
            akeys = keys[:nanon]
            anon_ids, new = self._anon_pages.ids(akeys, self._nr_pages)
            self._init_pages(new, LRU_ANON)
            pte_ids, new_anon_ptes = self._anon_ptes.ids(akeys, self._nr_ptes)
        if nanon < n:
            file_ids, new = self._file_pages.ids(keys[nanon:], self._nr_pages)
            self._init_pages(new, LRU_FILE)
        pkeys = np.empty(n, dtype=np.uint64)
        pos = np.empty(n, dtype=np.int64)
        nmapped = _place(where, anon_ids, pte_ids, file_ids, kind, pid, pages, ptes, pkeys, pos)
        if len(new_anon_ptes):
            self._init_ptes(pos[:nanon], pte_ids, new_anon_ptes, rec, pages, ptes)
        if nmapped:
            pte_ids, new_ptes = self._file_ptes.ids(pkeys[:nmapped], self._nr_ptes)
            self._init_ptes(pos[nanon:nanon + nmapped], pte_ids, new_ptes, rec, pages, ptes)
        return pages, ptes, kinds

    def _fd_only(self, kind, pid, page, file):
        """translate for a chunk of read()/write() records only (block traces, page-cache
        workloads), in one compiled pass (_fd_ids): the ids the general path gives, or None when
        the chunk does not qualify."""
        n = len(kind)
        if n == 0:
            return None
        first = self._nr_pages[0]
        index = self._file_pages.index
        direct, slots, shift = index.table_for(n, first + n)
        pages = np.empty(n, dtype=np.int64)
        ok, nxt, pmin, pmax = _fd_ids(kind, pid, page, file, direct, slots, shift, first, pages)
        if not ok:
            return None
        index.count += nxt - first
        self._nr_pages[0] = nxt
        self._init_pages(np.arange(first, nxt, dtype=np.int64), LRU_FILE)
        if pmin == pmax:
            self.pids.add(int(pmin))
        else:
            self.pids.update(np.flatnonzero(np.bincount(pid)).tolist())
        kinds = np.zeros(len(Kind), dtype=np.int64)
        kinds[_FILE_FD] = n
        return pages, self._no_ptes(n), kinds

    def _no_ptes(self, n: int) -> np.ndarray:
        """The PTE ids of n read()/write() records (-1 each), from one array kept for every chunk
        (the access path only reads it)."""
        if len(self._none) < n:
            self._none = np.full(n, -1, dtype=np.int64)
        return self._none[:n]

    def _init_pages(self, new: np.ndarray, lru_type: int) -> None:
        if len(new) == 0:
            return
        f = self.folios
        f.ensure(int(new[-1]) + 1)
        f.type[new] = lru_type
        if lru_type == LRU_ANON:
            f.flags[new] |= PG_swapbacked

    def _init_ptes(self, recs, pte_ids, new_ptes, rec, pages, ptes) -> None:
        """Give records recs their PTEs pte_ids (ptes[recs] = pte_ids), fill the rows of the new
        PTEs new_ptes (consecutive ids) and link them into their page's reverse-map chain."""
        # the new PTEs are the last ids handed out (none: every id in pte_ids is below lo)
        p, lo = self.ptes, self._nr_ptes[0] - len(new_ptes)
        if len(new_ptes):
            p.ensure(int(new_ptes[-1]) + 1)
        _set_ptes(recs, pte_ids, lo, lo + len(new_ptes), rec["kind"], rec["pid"], rec["page"], rec["file"],
                  pages, ptes, p.page, p.pid, p.vaddr, p.exec, p.next, self.folios.pte_head)
        if len(new_ptes):
            self._init_pmds(new_ptes)
            self._grow_vmas(new_ptes)

    def _init_pmds(self, new_ptes: np.ndarray) -> None:
        """Give new PTEs their PTE table (PMD entry), creating tables on first use."""
        p = self.ptes
        keys = (p.pid[new_ptes].astype(np.uint64) << np.uint64(48)) | (p.vaddr[new_ptes] >> np.uint64(PMD_SHIFT))
        pmd_ids, new = self._pmd_index.ids(keys, self._nr_pmds)
        p.pmd[new_ptes] = pmd_ids
        if len(new):
            self.pmds.ensure(int(new[-1]) + 1)
            first = pmd_ids >= new[0]
            self.pmds.pid[pmd_ids[first]] = p.pid[new_ptes[first]]
            self.pmds.index[pmd_ids[first]] = p.vaddr[new_ptes[first]] >> np.uint64(PMD_SHIFT)

    def _grow_vmas(self, new_ptes: np.ndarray) -> None:
        """Create or extend the VMAs that cover new PTEs (one Python step per (pid, area))."""
        p = self.ptes
        vaddr = p.vaddr[new_ptes]
        pid = p.pid[new_ptes].astype(np.uint64)
        is_file = vaddr >= np.uint64(FILE_MAP_BASE)
        area = np.where(is_file, ((vaddr - np.uint64(FILE_MAP_BASE)) >> np.uint64(32)) + np.uint64(1), 0)
        key = (pid << np.uint64(40)) | area.astype(np.uint64)
        order = np.argsort(key, kind="stable")
        ks, vs, ex = key[order], vaddr[order], p.exec[new_ptes][order]
        starts = np.flatnonzero(np.concatenate(([True], ks[1:] != ks[:-1])))
        lo = np.minimum.reduceat(vs, starts)
        hi = np.maximum.reduceat(vs, starts)
        anyx = np.logical_or.reduceat(ex, starts)
        for k, a, b, x in zip(ks[starts].tolist(), lo.tolist(), hi.tolist(), anyx.tolist()):
            pid_, area_ = k >> 40, k & ((1 << 40) - 1)
            file = None if area_ == 0 else area_ - 1
            vmas = self.vmas.setdefault(pid_, {})
            vma = vmas.get(file)
            flags = VM_READ | VM_WRITE | (VM_SHARED if file is not None else 0) | (VM_EXEC if x else 0)
            if vma is None:
                vmas[file] = Vma(start=a, end=b + 1, flags=flags, file=file)
            else:
                vma.start, vma.end = min(vma.start, a), max(vma.end, b + 1)
                vma.flags |= flags
        rows = sorted(((pid_ << 40) | (0 if file is None else file + 1), v.start, v.end)
                      for pid_, vs in self.vmas.items() for file, v in vs.items())
        self.vma_keys = np.array([r[0] for r in rows], dtype=np.int64)
        self.vma_bounds = np.array([r[1:] for r in rows], dtype=np.int64).reshape(-1, 2)
