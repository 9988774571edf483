"""The simulator: machine state, the allocation path, and the two trace drivers.

Both drivers apply the same access semantics and call the same reclaim code at the same points:

* exact: one access at a time through the scalar policy hooks (folio_add, mark_accessed);
* fast: the trace is cut into segments between reclaim points and each segment is applied with
  numpy in one go (residency lookup, first-touch faults, young/dirty bits), the policy getting the
  segment's software-visible events in order through its batched hook (access_events).

A segment ends right before the allocation that would find free pages at or below the watermark:
that allocation runs reclaim first, exactly as the exact driver does.

Access semantics (per record):
* read() (FILE_FD): a page-cache miss allocates a folio (read from the file device, refault
  check against the shadow entry), then folio_mark_accessed is called, except for a read that
  starts in the folio where the previous read() of the same (process, file) ended
  (filemap_read).
* write() (FILE_FD): a whole-page buffered write (generic_perform_write): a miss allocates a
  folio without reading it (refault check as above), the folio is dirtied, and it is not marked
  accessed (write_begin finds or creates the folio without FGP_ACCESSED).
* load/store through a mapping (ANON, FILE_MMAP, FILE_EXEC): a present PTE is a hit and the
  "hardware" sets its young bit; otherwise a page fault: anon first touch allocates a zeroed
  folio (minor), an anon page that was swapped out is read back (major, pswpin), a file page not
  in the page cache is read (major), a file page already cached is just mapped (minor). The new PTE
  is young. A store through a file mapping dirties the folio.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import ReclaimExtError
from ..machine.folio import (
    LRU_ANON, LRU_FILE, NO_LIST, PG_dirty, PG_reclaim, PG_resident, PG_writeback, TYPE_NAMES,
    FolioTable, PteTable,
)
from ..machine.mm import AddressSpaces
from ..machine.node import Memcg, Node, StorageDevice, SwapDevice, compute_watermarks, default_min_free_kbytes
from ..trace.record import Kind
from .batch import first_occurrence as _first_occurrence
from .batch import first_occurrence_masked as _first_occurrence_masked
from .lru import Lruvec
from .ops import MAX_RECLAIM_RETRIES, AccessEvents, ReclaimOps
from .stats import CostModel, new_cost, new_vmstat
from .vmscan import balance_pgdat, try_to_free_pages

DIRTY_BACKGROUND_RATIO = 10  # vm.dirty_background_ratio (percent of memory)


def default_check() -> bool:
    """The conservation check is on by default when RECLAIM_EXT_CHECK=1 (the test suite sets it)."""
    return os.environ.get("RECLAIM_EXT_CHECK", "") == "1"


class OutOfMemory(ReclaimExtError):
    """Reclaim could not free a page after MAX_RECLAIM_RETRIES direct reclaims."""


class ConservationError(AssertionError):
    """A page was lost or counted twice (a bug in the core or a policy)."""


@dataclass
class SimConfig:
    memory_pages: int
    swap_pages: int
    swappiness: int = 60
    min_free_kbytes: int | None = None
    watermark_scale_factor: int = 10
    mode: str = "fast"            # "fast" | "exact"
    check: bool = field(default_factory=default_check)  # conservation check after every reclaim
    bulk_reclaim: bool = True     # allow bulk passes over clean page cache (same result, faster)
    cost_model: CostModel = field(default_factory=CostModel)


class Simulator:
    """One simulated machine (one node, a root memcg) running one policy."""

    def __init__(self, config: SimConfig, ops: ReclaimOps):
        if config.memory_pages < 64:
            raise ReclaimExtError(f"memory: {config.memory_pages} pages is too small (need at least 64)")
        self.config = config
        self.ops = ops
        self.folios = FolioTable()
        self.ptes = PteTable()
        self.mm = AddressSpaces(self.folios, self.ptes)
        mfk = config.min_free_kbytes or default_min_free_kbytes(config.memory_pages)
        wm = compute_watermarks(config.memory_pages, mfk, config.watermark_scale_factor)
        self.node = Node(nid=0, managed=config.memory_pages, wmark=wm)
        self.nodes = [self.node]
        self.root_memcg = Memcg(id=0)
        self.memcgs = {0: self.root_memcg}
        self.swap = SwapDevice(total=config.swap_pages)
        self.storage = StorageDevice()
        self.vm = new_vmstat()
        self.cost = new_cost()
        self._stamp_clock = [0]
        lruvec = Lruvec(self.root_memcg, self.node, ops.nr_classes, self._stamp_clock)
        self.root_memcg.lruvecs[self.node.nid] = lruvec
        ops.init_lruvec(self, lruvec)
        self.nr_file_dirty = 0
        self.nr_writeback = 0
        self.writeback_requested = False
        self.accesses = 0
        self.misses = 0
        self.reclaims = 0
        self.bulk_passes = 0  # passes / kswapd runs done in bulk (core.vmscan, same result)
        self.dry_run = None   # set while core.vmscan runs kswapd on scalars only
        self._fd_last: dict[int, int] = {}  # (pid, file) stream -> page of the previous read()
        # per mm (pid): ran since the page-table walker last took it (lru_gen_mm_state "used"
        # bit, set on every context switch into the mm; here: on every access by the pid)
        self.mm_used = np.zeros(1 << 16, dtype=bool)
        self.samples: list[dict] = []

    # --------------------------------------------------------------------------------------------
    # topology helpers used by the reclaim path

    def root_lruvec(self, node) -> Lruvec:
        return self.root_memcg.lruvecs[node.nid]

    def lruvecs_under(self, target_memcg, node):
        """Lruvecs of every memcg under the target, pre-order (mem_cgroup_iter)."""
        stack = [target_memcg or self.root_memcg]
        while stack:
            m = stack.pop()
            yield m.lruvecs[node.nid]
            stack.extend(reversed(m.children))

    def lruvec_of(self, page: int) -> Lruvec:
        return self.memcgs[int(self.folios.memcg[page])].lruvecs[self.node.nid]

    def now_ms(self) -> float:
        """The virtual clock (jiffies in ms): the modelled runtime so far. Both drivers reach a
        reclaim point with the same counters, so they read the same time there."""
        return self.config.cost_model.seconds(self.cost, self.swap, self.storage) * 1000.0

    def oom_kill(self, reason: str) -> None:
        """out_of_memory: this simulator has no process to kill, so the run ends."""
        self.vm["oom_kill"] += 1
        raise OutOfMemory(f"out of memory: {reason}")

    def count(self, lruvec, name: str, n: int = 1) -> None:
        """Bump a vmstat event both globally and on the lruvec (lruvec_page_state events)."""
        self.vm[name] += n
        lruvec.stat[name] += n

    # --------------------------------------------------------------------------------------------
    # checks on what a policy hands back

    def check_candidates(self, lruvec, ids: np.ndarray, lru_type: int) -> None:
        """Eviction candidates must be isolated folios of this type (off every list)."""
        if len(ids) == 0 or (self.ops.trusted and not self.config.check):
            return
        f = self.folios
        bad = (f.lru[ids] != NO_LIST) | ((f.flags[ids] & PG_resident) == 0) | (f.type[ids] != lru_type)
        if bad.any() or len(np.unique(ids)) != len(ids):
            raise ConservationError(f"policy {self.ops.name}: isolate returned folios that are not isolated {TYPE_NAMES[lru_type]} folios")

    def check_verdicts(self, v: np.ndarray, n: int) -> None:
        if self.ops.trusted and not self.config.check:
            return
        if len(v) != n or (v < 0).any() or (v > 3).any():
            raise ConservationError(f"policy {self.ops.name}: references returned a bad verdict array")

    # --------------------------------------------------------------------------------------------
    # allocation and freeing

    def _budget(self) -> int:
        """Allocations that can happen before the next one must enter the slow path."""
        node = self.node
        if node.free > node.wmark.low:
            return node.free - node.wmark.low
        if node.kswapd_failures >= MAX_RECLAIM_RETRIES and node.free > node.wmark.min:
            return node.free - node.wmark.min
        return 0

    def _make_room(self) -> None:
        """The allocator slow path for one order-0 page: wake kswapd (run synchronously to the
        high watermark), then direct reclaim while free pages are at or below min."""
        node = self.node
        self.reclaims += 1
        self.flush_writeback()
        if node.free <= node.wmark.low and node.kswapd_failures < MAX_RECLAIM_RETRIES:
            self.vm["kswapd_wakeups"] += 1
            balance_pgdat(self, node, self.ops)
        for _ in range(MAX_RECLAIM_RETRIES):
            if node.free > node.wmark.min:
                break
            try_to_free_pages(self, node, self.ops)
        else:
            if node.free <= node.wmark.min:
                self.vm["oom_kill"] += 1
                raise OutOfMemory(
                    f"out of memory: {node.managed - node.free} pages in use, nothing reclaimable "
                    f"(swap {self.swap.used}/{self.swap.total} pages used); give more --memory or --swap"
                )
        if self.config.check:
            self.check_conservation()
        self.sample()

    def free_folios(self, lruvec, ids: np.ndarray) -> None:
        """Freed folios go back to the node's free pages and are uncharged."""
        n = len(ids)
        lruvec.node.free += n
        lruvec.memcg.usage -= n
        self.vm["pgfree"] += n

    def flush_writeback(self) -> None:
        """The flusher: writeback started by reclaim completes, and dirty file folios are written
        when reclaim asked for it or they exceed dirty_background_ratio. Folios reclaim marked
        PG_reclaim are rotated to the tail of their list (folio_end_writeback ->
        folio_rotate_reclaimable)."""
        bg = self.node.managed * DIRTY_BACKGROUND_RATIO // 100
        flush_dirty = self.nr_file_dirty > 0 and (self.writeback_requested or self.nr_file_dirty > bg)
        if not (self.nr_writeback or flush_dirty):
            return
        f = self.folios
        flags = f.flags[: f.count]
        done = (flags & PG_writeback) != 0  # writeback reclaim started completes
        f.flags[: f.count][done] &= ~np.uint16(PG_writeback)
        if flush_dirty:
            wr = ((flags & PG_dirty) != 0) & ((flags & PG_resident) != 0) & (f.type[: f.count] == LRU_FILE)
            nw = int(wr.sum())
            self.vm["pgpgout"] += 4 * nw
            self.cost["file_writes"] += nw
            f.flags[: f.count][wr] &= ~np.uint16(PG_dirty)
            done |= wr
            self.nr_file_dirty = 0
        ids = np.flatnonzero(done)
        self.nr_writeback = 0
        self.writeback_requested = False
        rot = ids[(f.flags[ids] & PG_reclaim) != 0]
        if len(rot):
            # folio_end_writeback clears PG_reclaim; folio_rotate_reclaimable moves only clean
            # folios that are on a list
            f.flags[rot] &= ~np.uint16(PG_reclaim)
            on = rot[(f.lru[rot] != NO_LIST) & ((f.flags[rot] & PG_dirty) == 0)]
            if len(on):
                self.vm["pgrotated"] += len(on)
                self.ops.rotate_reclaimable(self, self.root_lruvec(self.node), on)

    # --------------------------------------------------------------------------------------------
    # drivers

    def run(self, trace, progress=None, on_chunk=None) -> None:
        """Replay a whole trace. `progress(n_done)` is called after each chunk, `on_chunk(accesses
        so far)` before each (where a policy switch can happen)."""
        step = self._run_chunk_fast if self.config.mode == "fast" else self._run_chunk_exact
        for chunk in trace.chunks():
            if len(chunk) == 0:
                continue
            if on_chunk is not None:
                on_chunk(self.accesses)
            step(chunk)
            self.accesses += len(chunk)
            if progress is not None:
                progress(len(chunk))
        if self.config.check:
            self.check_conservation()
        self.sample()

    def _streams(self, chunk: np.ndarray) -> np.ndarray:
        """(pid, file) stream key of each read()/write() (the struct file the read-ahead state and
        prev_pos live in)."""
        return (chunk["pid"].astype(np.int64) << 32) | chunk["file"].astype(np.int64)

    # ---- exact driver ----------------------------------------------------------------------------

    def _run_chunk_exact(self, chunk: np.ndarray) -> None:
        pages, ptes = self.mm.translate(chunk)
        kinds = chunk["kind"].tolist()
        writes = chunk["write"].tolist()
        streams = self._streams(chunk).tolist()
        pids = chunk["pid"].tolist()
        pages_l = pages.tolist()
        ptes_l = ptes.tolist()
        for i in range(len(pages_l)):
            self.mm_used[pids[i]] = True
            self._access_one(pages_l[i], ptes_l[i], kinds[i], writes[i], streams[i])

    def _alloc_one(self, g: int, lruvec, read: bool = True, fault: bool = False) -> None:
        """Allocate and place the folio for page g (the caller has made room); a file folio is
        read from the device unless a whole-page write() fills it."""
        f = self.folios
        node = self.node
        node.free -= 1
        lruvec.memcg.usage += 1
        self.vm["pgalloc_normal"] += 1
        self.misses += 1
        t = int(f.type[g])
        shadow = int(f.shadow[g])
        ws = bool(f.shadow_ws[g])
        f.shadow[g] = -1
        f.flags[g] |= PG_resident
        if shadow >= 0:
            self.vm["workingset_refault_" + TYPE_NAMES[t]] += 1
        self.ops.folio_add(self, lruvec, g, shadow, ws, self.swap.free, fault)
        if t == LRU_ANON:
            if f.ever[g]:
                self.swap.used -= 1
                self.vm["pswpin"] += 1
                self.vm["pgpgin"] += 4
                self.cost["swap_ins"] += 1
        elif read:
            self.vm["pgpgin"] += 4
            self.cost["file_reads"] += 1

    def _access_one(self, g: int, p: int, kind: int, write: int, stream: int) -> None:
        f = self.folios
        lruvec = self.root_lruvec(self.node)
        resident = bool(f.flags[g] & PG_resident)
        if kind == Kind.FILE_FD:
            if not resident:
                if self._budget() <= 0:
                    self._make_room()
                self._alloc_one(g, lruvec, read=not write)
            else:
                self.cost["hits"] += 1
            if write:
                self._dirty_one(g)
            else:
                if self._fd_last.get(stream) != g:
                    self.ops.mark_accessed(self, lruvec, g)
                self._fd_last[stream] = g
            return
        ptes = self.ptes
        if ptes.present[p]:
            self.cost["hits"] += 1
        else:
            if not resident:
                if self._budget() <= 0:
                    self._make_room()
                major = f.type[g] == LRU_FILE or bool(f.ever[g])
                self._alloc_one(g, lruvec, fault=True)
                if major:
                    self.vm["pgmajfault"] += 1
                    self.cost["major_faults"] += 1
                else:
                    self.cost["minor_faults"] += 1
            else:
                self.cost["minor_faults"] += 1
            self.vm["pgfault"] += 1
            ptes.present[p] = True
        ptes.young[p] = True
        self.mm.pmds.young[ptes.pmd[p]] = True
        if write and f.type[g] == LRU_FILE:
            self._dirty_one(g)

    def _dirty_one(self, g: int) -> None:
        f = self.folios
        if not f.flags[g] & PG_dirty:
            f.flags[g] |= PG_dirty
            self.nr_file_dirty += 1

    # ---- fast driver -----------------------------------------------------------------------------

    def _run_chunk_fast(self, chunk: np.ndarray) -> None:
        pages, ptes = self.mm.translate(chunk)
        self._pids = chunk["pid"]
        kinds = chunk["kind"]
        writes = chunk["write"].astype(bool)
        streams = self._streams(chunk)
        n = len(pages)
        f = self.folios
        start = 0
        window = 4096
        granted = False  # the slow path has run for the allocation at `start`: it may proceed
        while start < n:
            budget = self._budget()
            if granted:
                budget = max(budget, 1)
            end = min(n, start + window)
            g = pages[start:end]
            first = _first_occurrence(g, f.count)
            alloc = first & ((f.flags[g] & PG_resident) == 0)
            nalloc = int(alloc.sum())
            if nalloc > budget:
                cut = int(np.flatnonzero(alloc)[budget])  # the allocation that needs reclaim
                if cut == 0:
                    self.mm_used[self._pids[start]] = True  # the faulting task is running
                    self._make_room()
                    granted = True
                    continue
                end = start + cut
                alloc = alloc[:cut]
                first = first[:cut]
                g = g[:cut]
                nalloc = budget
            # the access reclaim ran for marked its mm used before the walk (see _make_room's
            # caller above); the walk may have cleared it since, and the task keeps running
            self._used_from = start + 1 if granted else start
            self._apply_segment(start, end, g, first, alloc, pages, ptes, kinds, writes, streams)
            granted = granted and nalloc == 0
            # size the next window so that it usually holds one segment's worth of allocations
            seg = end - start
            if nalloc:
                window = int(min(65536, max(256, 1.5 * seg * max(budget, 1) / nalloc)))
            else:
                window = min(65536, window * 2)
            start = end

    def _apply_segment(self, s, e, g, first, alloc, pages, ptes_all, kinds_all, writes_all, streams_all):
        f = self.folios
        pt = self.ptes
        vm = self.vm
        cost = self.cost
        lruvec = self.root_lruvec(self.node)
        p = ptes_all[s:e]
        k = kinds_all[s:e]
        w = writes_all[s:e]
        n = e - s
        fd = k == Kind.FILE_FD
        mapped = ~fd
        self.mm_used[self._pids[self._used_from:e]] = True

        # --- page faults on mapped accesses
        nfault = 0
        major = np.zeros(n, dtype=bool)
        if mapped.any():
            mp = p[mapped]
            firstpte = _first_occurrence_masked(p, mapped, pt.count)
            fault = firstpte & ~pt.present[np.where(mapped, p, 0)]
            nfault = int(fault.sum())
            ever = f.ever[g]
            major = fault & alloc & ((f.type[g] == LRU_FILE) | ever)
            nmajor = int(major.sum())
            vm["pgfault"] += nfault
            vm["pgmajfault"] += nmajor
            cost["major_faults"] += nmajor
            cost["minor_faults"] += nfault - nmajor
            pt.present[mp] = True
            pt.young[mp] = True
            self.mm.pmds.young[pt.pmd[mp]] = True  # the non-leaf accessed bit
        nfd_alloc = int((alloc & fd).sum())
        cost["hits"] += n - nfault - nfd_alloc

        # --- allocations, in trace order
        ag = g[alloc]
        na = len(ag)
        if na:
            node = self.node
            node.free -= na
            lruvec.memcg.usage += na
            vm["pgalloc_normal"] += na
            self.misses += na
            at = f.type[ag]
            shadow = f.shadow[ag].copy()
            sws = f.shadow_ws[ag].copy()
            f.shadow[ag] = -1
            f.flags[ag] |= PG_resident
            refault = shadow >= 0
            for t in (LRU_ANON, LRU_FILE):
                c = int((refault & (at == t)).sum())
                if c:
                    vm["workingset_refault_" + TYPE_NAMES[t]] += c
            swapin = (at == LRU_ANON) & f.ever[ag]
            nswapin = int(swapin.sum())
            nfile = int(((at == LRU_FILE) & ~(fd & w)[alloc]).sum())  # a whole-page write() reads nothing
            vm["pswpin"] += nswapin
            vm["pgpgin"] += 4 * (nswapin + nfile)
            cost["swap_ins"] += nswapin
            cost["file_reads"] += nfile
            # free swap slots seen by each allocation's refault check: a swap-in releases its slot
            # after the check
            swap_free_at = self.swap.free + np.concatenate(([0], np.cumsum(swapin)[:-1]))
            self.swap.used -= nswapin
        else:
            at = shadow = sws = swap_free_at = None

        # --- dirty file folios
        wfile = w & (f.type[g] == LRU_FILE)
        if wfile.any():
            wg = np.unique(g[wfile])
            clean = wg[(f.flags[wg] & PG_dirty) == 0]
            f.flags[clean] |= PG_dirty
            self.nr_file_dirty += len(clean)

        # --- software-visible events: ADD for each allocation, ACCESS for each mark_accessed call
        # (read() only: write_begin does not mark the folio accessed)
        rd = fd & ~w
        mark = rd.copy()
        if rd.any():
            mark[rd] = self._fd_read_marks(g[rd], streams_all[s:e][rd])
        add_pos = np.flatnonzero(alloc)
        acc_pos = np.flatnonzero(mark)
        if len(add_pos) or len(acc_pos):
            key = np.concatenate((add_pos * 2, acc_pos * 2 + 1))
            order = np.argsort(key, kind="stable")
            ev_page = np.concatenate((ag, g[acc_pos]))[order]
            is_add = np.zeros(len(key), dtype=bool)
            is_add[: len(add_pos)] = True
            is_add = is_add[order]
            nacc = len(acc_pos)
            if na:
                ev_shadow = np.concatenate((shadow, np.full(nacc, -1, np.int64)))[order]
                ev_ws = np.concatenate((sws, np.zeros(nacc, bool)))[order]
                ev_swap = np.concatenate((swap_free_at, np.zeros(nacc, np.int64)))[order]
                ev_fault = np.concatenate((mapped[alloc], np.zeros(nacc, bool)))[order]
            else:
                ev_shadow = np.full(nacc, -1, np.int64)
                ev_ws = np.zeros(nacc, bool)
                ev_swap = np.zeros(nacc, np.int64)
                ev_fault = np.zeros(nacc, bool)
            ev = AccessEvents(
                page=ev_page, is_add=is_add, shadow=ev_shadow, shadow_ws=ev_ws,
                lru_type=f.type[ev_page], swap_free=ev_swap, fault=ev_fault,
            )
            self.ops.access_events(self, lruvec, ev)

    def _fd_read_marks(self, g: np.ndarray, streams: np.ndarray) -> np.ndarray:
        """For a segment's read() accesses (in order): whether each calls folio_mark_accessed,
        i.e. does not start in the folio the previous read of the same stream ended in."""
        if streams[0] == streams[-1] and (streams == streams[0]).all():  # one stream: no sort
            prev = np.empty_like(g)
            prev[1:] = g[:-1]
            prev[0] = self._fd_last.get(int(streams[0]), -1)
            self._fd_last[int(streams[0])] = int(g[-1])
            return g != prev
        order = np.argsort(streams, kind="stable")
        ss, gs = streams[order], g[order]
        prev = np.empty_like(gs)
        prev[1:] = gs[:-1]
        newgrp = np.ones(len(ss), dtype=bool)
        newgrp[1:] = ss[1:] != ss[:-1]
        heads = np.flatnonzero(newgrp)
        last = self._fd_last
        prev[heads] = [last.get(int(sk), -1) for sk in ss[heads]]
        tails = np.append(heads[1:] - 1, len(ss) - 1)
        for sk, pg in zip(ss[tails].tolist(), gs[tails].tolist()):
            last[sk] = pg
        out = np.empty(len(g), dtype=bool)
        out[order] = gs != prev
        return out

    # --------------------------------------------------------------------------------------------
    # observability and invariants

    def sample(self) -> None:
        """Record list sizes and free pages (a time series over accesses)."""
        lv = self.root_lruvec(self.node)
        if self.samples and self.samples[-1]["accesses"] == self.accesses:
            return
        point = {"accesses": self.accesses, "free": self.node.free, "lists": list(lv.nr)}
        point.update(self.ops.sample(self, lv))
        self.samples.append(point)
        if len(self.samples) > 4096:  # keep the series bounded: drop every other sample
            self.samples = self.samples[::2]

    def check_conservation(self) -> None:
        """Every page is free, on exactly one list, or evicted; every total adds up."""
        f = self.folios
        cnt = f.count
        flags = f.flags[:cnt]
        resident = (flags & PG_resident) != 0
        nres = int(resident.sum())
        node = self.node
        problems = []
        if node.free + nres != node.managed:
            problems.append(f"free {node.free} + resident {nres} != memory {node.managed}")
        if node.free < 0:
            problems.append(f"free pages negative ({node.free})")
        if self.root_memcg.usage != nres:
            problems.append(f"memcg usage {self.root_memcg.usage} != resident {nres}")
        lru = f.lru[:cnt]
        if (lru[~resident] != NO_LIST).any():
            problems.append("an evicted page is still on a list")
        if (lru[resident] == NO_LIST).any():
            problems.append(f"{int((lru[resident] == NO_LIST).sum())} resident pages are on no list")
        seen = np.zeros(cnt, dtype=np.int64)
        lv = self.root_lruvec(node)
        for i, fl in enumerate(lv.lists):
            ids = fl.valid_ids(f)
            if len(ids) != lv.nr[i]:
                problems.append(f"list {i}: {len(ids)} folios on it but its size says {lv.nr[i]}")
            if (lru[ids] != i).any():
                problems.append(f"list {i}: holds folios whose list tag differs")
            np.add.at(seen, ids, 1)
        if (seen > 1).any():
            problems.append(f"{int((seen > 1).sum())} pages are on two lists")
        if (seen[resident] != 1).any():
            problems.append(f"{int((seen[resident] != 1).sum())} resident pages are on no list")
        problems += self.ops.check(self, lv)
        swapped = int(((f.type[:cnt] == LRU_ANON) & f.ever[:cnt] & ~resident).sum())
        if swapped != self.swap.used:
            problems.append(f"swap slots used {self.swap.used} != swapped-out pages {swapped}")
        ndirty = int((((flags & PG_dirty) != 0) & resident & (f.type[:cnt] == LRU_FILE)).sum())
        if ndirty != self.nr_file_dirty:
            problems.append(f"dirty file pages {ndirty} != counter {self.nr_file_dirty}")
        if problems:
            raise ConservationError(f"conservation check failed in the trace chunk starting at access {self.accesses}: " + "; ".join(problems))

    def result(self) -> dict:
        """Counters and derived numbers of the run so far."""
        lv = self.root_lruvec(self.node)
        return {
            "accesses": self.accesses,
            "misses": self.misses,
            "miss_ratio": self.misses / self.accesses if self.accesses else 0.0,
            "vmstat": dict(self.vm),
            "cost": dict(self.cost),
            "modeled_seconds": self.config.cost_model.seconds(self.cost, self.swap, self.storage),
            "lists": list(lv.nr),
            "free_pages": self.node.free,
            "watermarks": {"min": self.node.wmark.min, "low": self.node.wmark.low, "high": self.node.wmark.high},
        }
