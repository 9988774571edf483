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
from ..jit import announce_compile
from ..machine.folio import (
    LRU_ANON, LRU_FILE, NO_LIST, PG_dirty, PG_resident, PG_swapcache, TYPE_NAMES,
    FolioTable, PteTable,
)
from ..machine.memcg import MemcgConfig, resolve_memcgs
from ..machine.index import KeyIndex
from ..machine.mm import AddressSpaces
from ..machine.node import (SWP_USED, Memcg, Node, StorageDevice, Swap, SwapDevice, Watermarks, compute_watermarks,
                            default_min_free_kbytes)
from ..machine.numa import TIERS, check_tiers, demotion_order, zonelists
from ..trace.base import TimedChunks
from ..trace.record import Kind
from .access import COST_NAMES as ACCESS_COST
from .access import (
    DONE, STOP_HIGH, STOP_MEMCG, STOP_NUMA, STOP_WMARK, alloc_budget, new_event_arrays, over_limit, read_marks,
    run_accesses, zonelist_row,
)
from .access import FREE, NODE_COLUMNS, NODE_NAMES
from .access import MEMCG_NAMES as ACCESS_MEMCG
from .access import VM_NAMES as ACCESS_VM
from .lru import Lruvec, LruvecTable
from .memcontrol import HZ, MEMCG_MAX_HIGH_DELAY_JIFFIES, calculate_high_delay, mem_find_max_overage
from .ops import MAX_RECLAIM_RETRIES, SWAP_CLUSTER_MAX, AccessEvents, ReclaimOps
from .stats import CostModel, new_cost, new_vmstat, vmstat_problems
from . import vmscan
from . import kswapd
from .kswapd import kswapd_run
from .numa_balancing import NumaBalancing
from .vmscan import try_to_free_mem_cgroup_pages, try_to_free_pages

HOT_PATH = (run_accesses,)  # what every run compiles first (jit.announce_compile)

DIRTY_BACKGROUND_RATIO = 10  # vm.dirty_background_ratio (percent of memory)


def default_check() -> bool:
    """The conservation check is on by default when RECLAIM_EXT_CHECK=1 (the test suite sets it)."""
    return os.environ.get("RECLAIM_EXT_CHECK", "") == "1"


class OutOfMemory(ReclaimExtError):
    """Reclaim could not free a page after MAX_RECLAIM_RETRIES direct reclaims.

    `memcg`: the path of the memcg at memory.max (None: the node ran out). api.run sets `result`:
    the result of the run up to the access that could not be served (its `out_of_memory` says where).
    """

    def __init__(self, message: str, memcg: str | None = None):
        super().__init__(message)
        self.memcg = memcg
        self.result: dict | None = None


class ConservationError(AssertionError):
    """A page was lost or counted twice (a bug in the core or a policy)."""


@dataclass
class SimConfig:
    memory_pages: int
    swap_pages: int
    swappiness: int = 60
    swap_device: str = "zram"     # machine.node.SWAP_DEVICES: zram (no swap cache on swap-in) or disk
    zram_ratio: float = 0.0       # zram's compression ratio: its pool takes node memory (0: not modelled)
    # several swap devices (machine.node.SwapDevice, swapon order); empty: one of the three above
    swap_devices: list = field(default_factory=list)
    min_free_kbytes: int | None = None
    watermark_scale_factor: int = 10
    mode: str = "fast"            # "fast" | "exact"
    check: bool = field(default_factory=default_check)  # conservation check after every reclaim
    bulk_reclaim: bool = True     # allow bulk passes over clean page cache (same result, faster)
    cost_model: CostModel = field(default_factory=CostModel)
    # memory cgroups below the root (machine.memcg.MemcgConfig or "name=a,pids=1-3,max=32MiB")
    memcgs: list = field(default_factory=list)
    # cgroup2's memory_recursiveprot mount option: unclaimed memory.min/low of a parent is shared
    # among its children in proportion to their unprotected usage (effective_protection)
    memory_recursiveprot: bool = False
    # NUMA nodes: each node's memory in pages (empty: one node of memory_pages; else they add up
    # to memory_pages), and the tasks' memory policies (machine.numa.NumaPolicy or
    # "pids=1-3,node=1[,bind]"; a task not named runs on node pid mod N, fallback allowed)
    nodes: list = field(default_factory=list)
    numa: list = field(default_factory=list)
    # each node's memory tier (machine.numa.TIERS; empty: all dram): reclaim demotes down the tiers
    tiers: list = field(default_factory=list)
    # NUMA balancing (the promotion mechanism): scan period and hot threshold, modelled ms
    # (numa_balancing_scan_period_min_ms, numa_balancing_hot_threshold_ms)
    numa_scan_period_ms: float = 1000.0
    numa_hot_threshold_ms: float = 1000.0
    # each node's (min, low, high) watermarks in pages instead of __setup_per_zone_wmarks' share of
    # min_free_kbytes (empty: the formula); e.g. a real zone's, read from /proc/zoneinfo
    node_watermarks: list = field(default_factory=list)


class Simulator:
    """One simulated machine (NUMA nodes, a memcg tree) running one policy."""

    def __init__(self, config: SimConfig, ops: ReclaimOps):
        if config.memory_pages < 64:
            raise ReclaimExtError(f"memory: {config.memory_pages} pages is too small (need at least 64)")
        announce_compile(HOT_PATH)
        self.config = config
        self.ops = ops
        # the core's reclaim functions, which reclaim_ops' default hooks call (the interface,
        # core.ops, does not import its implementation)
        self.vmscan = vmscan
        self.folios = FolioTable()
        self.ptes = PteTable()
        self.mm = AddressSpaces(self.folios, self.ptes)
        sizes = [int(n) for n in config.nodes] or [config.memory_pages]
        if sum(sizes) != config.memory_pages or min(sizes) < 64:
            raise ReclaimExtError(f"nodes: sizes {sizes} pages must each be at least 64 and add up to the memory "
                                  f"({config.memory_pages} pages)")
        if len(sizes) > 1 and config.zram_ratio:
            raise ReclaimExtError("zram_ratio: zram's pool memory is modelled on one node only (give no --nodes, "
                                  "or no --zram-ratio)")
        mfk = config.min_free_kbytes or default_min_free_kbytes(config.memory_pages)
        self.nodes = [Node(nid=n, managed=size, wmark=compute_watermarks(size, mfk, config.watermark_scale_factor,
                                                                          config.memory_pages))
                      for n, size in enumerate(sizes)]
        if config.node_watermarks:
            if len(config.node_watermarks) != len(self.nodes) or any(
                    not 0 <= mn <= lo <= hi < n.managed for (mn, lo, hi), n in zip(config.node_watermarks, self.nodes)):
                raise ReclaimExtError(f"node watermarks {config.node_watermarks}: need one (min, low, high) per node, "
                                      "0 <= min <= low <= high < the node's pages")
            for (mn, lo, hi), n in zip(config.node_watermarks, self.nodes):
                n.wmark = Watermarks.of(mn, lo, hi)
        self.node = self.nodes[0]
        tiers = check_tiers(list(config.tiers), len(self.nodes))
        for node, t in zip(self.nodes, tiers):
            node.tier = t
        # where each node's reclaim demotes to (machine.numa.demotion_order; empty: nowhere)
        self.demotion = [demotion_order(tiers, n.nid) for n in self.nodes]
        self.kswapd_pending: set[int] = set()  # nodes whose kswapd a demotion woke (run after the reclaim)
        self.demoted = np.zeros(2, dtype=np.int64)  # folios demoted, by type (the counter identities)
        # shadows a refault consumed without counting it (lru_gen_refault: another lruvec's), by type
        self.shadows_dropped = np.zeros(2, dtype=np.int64)
        # NUMA balancing's memory tiering mode (the promotion mechanism), on a machine with tiers
        self.promo = ops.uses("promotion") and any(n.tier != "dram" for n in self.nodes)
        self.numa_balancing = NumaBalancing(self) if self.promo else None
        # each task's zonelist (machine.numa.zonelists): the compiled access path's table; tasks
        # run on DRAM nodes
        self.zonelists, pid_row = zonelists(len(self.nodes), list(config.numa),
                                            [n.nid for n in self.nodes if n.tier == "dram"])
        # per task: its zonelist row, and its page-cache allocations so far (il_prev, interleave)
        self.pid_zonelist = np.stack([pid_row, np.zeros_like(pid_row)], axis=1)
        self.swap = Swap(list(config.swap_devices) or
                         [SwapDevice(total=config.swap_pages, kind=config.swap_device, ratio=config.zram_ratio)])
        self.storage = StorageDevice()
        self.vm = new_vmstat()
        self.cost = new_cost()
        self._stamp_clock = np.zeros(1, dtype=np.int64)  # the next list stamp (core.lru)
        self._ev = None  # the access path's event buffers (_run_chunk)
        self._build_memcgs(resolve_memcgs(list(config.memcgs)))
        self.nr_file_dirty = 0
        self.nr_writeback = 0
        self.writeback_requested = False
        self.accesses = 0
        self.chunks = TimedChunks(None)  # the trace's chunks and the time they took (Simulator.run)
        self.pos = 0  # index of the access being processed, kept current at reclaim points
        self.misses = 0
        # opt-in (record_misses): the positions of the accesses that missed, one array per stretch
        self.miss_log: list[np.ndarray] | None = None
        self.reclaims = 0
        self.bulk_passes = 0  # passes / kswapd runs done in bulk or compiled (core.vmscan, core.kswapd: same result)
        self.dry_batches = None  # core.kswapd.kswapd_dry_run's batch buffer
        self._flush_on = np.empty(0, dtype=np.int64)  # the flusher's folios to rotate (flush_buffer)
        # the (pid, file) streams, and each one's page of its previous read() (core.access.read_marks)
        self._streams = KeyIndex()
        self._slast = np.zeros(0, dtype=np.int64)
        # per mm (pid) and node: ran since the page-table walker last took it for that node
        # (lru_gen_mm_state's per-node bitmap, set for every node on a context switch into the
        # mm; here: on every access by the pid)
        self.mm_used = np.zeros((1 << 16, len(self.nodes)), dtype=bool)
        self.samples: list[dict] = []

    def _build_memcgs(self, declared: list[MemcgConfig]) -> None:
        """The memcg tree (parents before children), each memcg's lruvec on the node (the
        policy's init_lruvec, in creation order) and the pid -> memcg map (unassigned pids stay in
        the root memcg)."""
        self.root_memcg = Memcg(id=0)
        self.memcgs = {0: self.root_memcg}
        by_name = {"": self.root_memcg}
        self.memcg_of_pid = np.zeros(1 << 16, dtype=np.int16)
        for i, mc in enumerate(declared, start=1):
            parent = by_name[mc.name.rpartition("/")[0]]
            m = Memcg(id=i, name=mc.name, parent=parent)
            if mc.max is not None:
                m.max = mc.max
            if mc.high is not None:
                m.high = mc.high
            if mc.swap_max is not None:
                m.swap_max = mc.swap_max
            m.min = mc.min
            m.low = mc.low
            parent.children.append(m)
            by_name[mc.name] = m
            self.memcgs[i] = m
            if mc.pids:
                self.memcg_of_pid[np.asarray(mc.pids, dtype=np.int64)] = i
        self.multi = len(self.memcgs) > 1
        # memcgs by id, and each one's parent id (-1 at the root), for the compiled access path
        self._memcg_list = [self.memcgs[i] for i in range(len(self.memcgs))]
        self._mparent = np.array([m.parent.id if m.parent is not None else -1 for m in self._memcg_list],
                                 dtype=np.int64)
        # the memcgs with a limit, each with a mask over memcg ids of its subtree (a charge to
        # any of them counts against that limit)
        # memory.swap.max: each memcg's swap slots (hierarchical, the root's not counted) and
        # memory.swap.events (max, fail) of the memcg itself
        self.swap_usage = np.zeros(len(self.memcgs), dtype=np.int64)
        self._swap_max = np.array([min(m.swap_max, 1 << 62) for m in self._memcg_list], dtype=np.int64)
        self.swap_events = np.zeros((len(self.memcgs), 2), dtype=np.int64)
        self.kind_counts = np.zeros(len(Kind), dtype=np.int64)  # accesses by record kind (result: accesses_by_kind)
        self.highs = any(m.high < (1 << 62) for m in self.memcgs.values())
        self._mhigh = np.array([min(m.high, 1 << 62) for m in self._memcg_list], dtype=np.int64)
        self.over_high = np.zeros(len(self.memcg_of_pid), dtype=np.int64)  # per task: memcg_nr_pages_over_high
        self.limited = []
        for m in self.memcgs.values():
            if m.max < (1 << 62):
                under = np.zeros(len(self.memcgs), dtype=bool)
                under[[d.id for d in m.subtree()]] = True
                self.limited.append((m, under))
        # one table per node, a row per memcg (core.lru.LruvecTable)
        self.lruvec_tables = []
        for node in self.nodes:
            table = LruvecTable(len(self.memcgs), 2 * self.ops.nr_classes)
            table.set_tree(self._mparent.tolist())
            self.lruvec_tables.append(table)
            for m in self.root_memcg.subtree():
                m.lruvecs[node.nid] = Lruvec(m, node, self.ops.nr_classes, self._stamp_clock, table, m.id)
        self.lruvec_table = self.lruvec_tables[0]
        for m in self.memcgs.values():  # mem_cgroup_css_online, in creation order: each node's lruvec
            for node in self.nodes:
                self.ops.init_lruvec(self, m.lruvecs[node.nid])

    def memcg_by_path(self, path: str) -> Memcg:
        for m in self.memcgs.values():
            if m.path == path or m.name == path:
                return m
        raise KeyError(path)

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
        """folio_lruvec: the lruvec of the folio's memcg on the folio's node."""
        return self.memcgs[int(self.folios.memcg[page])].lruvecs[int(self.folios.nid[page])]

    def target_lruvec(self, sc, node) -> Lruvec:
        """mem_cgroup_lruvec(sc->target_mem_cgroup, pgdat): the root's for global reclaim."""
        return (sc.target_memcg or self.root_memcg).lruvecs[node.nid]

    def bulk_on(self, node) -> bool:
        """Whether reclaim on `node` may take the bulk and compiled paths (same result, faster):
        on unless switched off, or the node demotes (the Python shrink_folio_list does that)."""
        return self.config.bulk_reclaim and not vmscan.can_demote(self, node)

    def zonelist(self, pid: int, memcg_reclaim: bool = False, page: int = 0) -> list:
        """The nodes task `pid` allocates folio `page` from, in order (its zonelist under its
        memory policy: core.access.zonelist_row); with `memcg_reclaim` its node's whole zonelist
        (try_to_free_mem_cgroup_pages takes the zonelist of the task's node with no nodemask: a
        bound task's memcg reclaims everywhere)."""
        row = int(zonelist_row(self.zonelists, self.pid_zonelist, pid, page, self.folios.type))
        if memcg_reclaim:
            row %= len(self.nodes)
        return [self.nodes[n] for n in self.zonelists[row].tolist() if n >= 0]

    def by_lruvec(self, ids: np.ndarray):
        """(lruvec, ids of its folios) for the folios' memcgs and nodes, each group in input order."""
        if not self.multi and len(self.nodes) == 1:
            yield self.root_lruvec(self.node), ids
            return
        f = self.folios
        key = f.memcg[ids].astype(np.int64) * len(self.nodes) + f.nid[ids]
        for k in np.unique(key).tolist():
            m, nid = divmod(k, len(self.nodes))
            yield self.memcgs[m].lruvecs[nid], ids[key == k]

    def flush_buffer(self) -> np.ndarray:
        """The flusher's buffer for the folios it hands back to rotate (core.kswapd.driver_flush):
        as long as the folio table's used part, kept from call to call (grown by doubling)."""
        n = self.folios.count
        if len(self._flush_on) < n:
            self._flush_on = np.empty(max(n, 2 * len(self._flush_on)), dtype=np.int64)
        return self._flush_on[:n]

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

    def _budget(self, granted: int = -1, page: int = 0) -> np.ndarray:
        """Per node, the allocations that can happen before the next one must enter the slow
        path. `granted`: the pid whose allocation the slow path just let through: at least one
        on the first node of its zonelist above min (get_page_from_freelist with
        ALLOC_WMARK_MIN), else on its first node."""
        b = np.array([alloc_budget(n.free, n.wmark.low, n.wmark.min, n.kswapd_failures, MAX_RECLAIM_RETRIES)
                      for n in self.nodes], dtype=np.int64)
        if granted >= 0:
            zl = self.zonelist(granted, page=page)
            if not any(b[n.nid] for n in zl):
                n = next((n for n in zl if n.free > n.wmark.min), zl[0])
                b[n.nid] = 1
        return b

    def _make_room(self, pid: int, page: int = 0) -> None:
        """The allocator slow path for one order-0 page of task `pid`: wake the kswapd of each
        node of its zonelist that is not balanced (wake_all_kswapds -> wakeup_kswapd; each runs
        synchronously to its high watermark), then direct reclaim while no node of the
        zonelist is above min."""
        self.reclaims += 1
        self.flush_writeback()
        for node in self.zonelist(pid, page=page):
            self._kswapd_wake(node)
        self._after_kswapd(pid, page)

    def _kswapd_wake(self, node) -> None:
        """wakeup_kswapd and the run it starts (synchronous here, to the high watermark): only a
        node that is not balanced and has not failed MAX_RECLAIM_RETRIES times."""
        if node.free <= node.wmark.high and node.kswapd_failures < MAX_RECLAIM_RETRIES:
            self.vm["kswapd_wakeups"] += 1
            node.vm["kswapd_wakeups"] += 1
            kswapd_run(self, node, self.ops)

    def wakeup_kswapd(self, node) -> None:
        """wakeup_kswapd from inside a reclaim or a fault (a demotion's or a promotion's
        allocation on `node`): its run comes after that (_run_pending_kswapds)."""
        self.kswapd_pending.add(node.nid)

    def _run_pending_kswapds(self) -> None:
        """The kswapd runs woken by wakeup_kswapd, lowest node first (a kswapd's own demotions
        may wake the next tier's)."""
        while self.kswapd_pending:
            nid = min(self.kswapd_pending)
            self.kswapd_pending.discard(nid)
            self._kswapd_wake(self.nodes[nid])

    def _after_kswapd(self, pid: int, page: int = 0) -> None:
        """The allocator slow path after kswapd's runs (_make_room; a compiled driver's wake,
        kswapd.driver_kswapd, ran the steps before it): direct reclaim over the task's zonelist
        while no node of it is above min, then the check and the sample."""
        zl = self.zonelist(pid, page=page)
        for _ in range(MAX_RECLAIM_RETRIES):
            if any(n.free > n.wmark.min for n in zl):
                break
            try_to_free_pages(self, zl, self.ops)
        else:
            if not any(n.free > n.wmark.min for n in zl):
                self.vm["oom_kill"] += 1
                used = sum(n.managed - n.free for n in zl)
                raise OutOfMemory(
                    f"out of memory: {used} pages in use, nothing reclaimable "
                    f"(swap {self.swap.used}/{self.swap.total} pages used); give more --memory or --swap"
                )
        self._run_pending_kswapds()
        if self.config.check:
            self.check_conservation()
        self.sample()

    def free_folios(self, lruvec, ids: np.ndarray) -> None:
        """Freed folios go back to the node's free pages and are uncharged."""
        n = len(ids)
        lruvec.node.free += n
        m = lruvec.memcg
        while m is not None:  # page_counter_uncharge
            m.usage -= n
            m = m.parent
        self.vm["pgfree"] += n

    def mem_over_limit(self, memcg: Memcg, n: int = 1) -> Memcg | None:
        """core.access.over_limit on the memcg tree now: the lowest memcg from `memcg` up whose
        memory.max a charge of n pages would exceed, or None."""
        mcs = self._memcg_list
        usage = np.array([m.usage for m in mcs], dtype=np.int64)
        mmax = np.array([min(m.max, 1 << 62) for m in mcs], dtype=np.int64)
        over = over_limit(memcg.id, n, usage, mmax, self._mparent)
        return mcs[over] if over >= 0 else None

    def proactive_reclaim(self, p, at: int) -> dict:
        """A write to memory.reclaim (`p`: machine.memcg.Proactive) before access `at`
        (vmscan.memory_reclaim); its record for the result."""
        memcg = self.memcg_by_path("/" + p.path)
        self.pos = at
        got, ok = vmscan.memory_reclaim(self, self.nodes, memcg, p.pages, self.ops, p.swappiness)
        self._run_pending_kswapds()
        return {"at": at, "memcg": memcg.path, "requested": p.pages, "swappiness": p.swappiness,
                "reclaimed": got, "result": "ok" if ok else "EAGAIN"}

    def _handle_over_high(self, pid: int) -> None:
        """mem_cgroup_handle_over_high on the task's return to user space: reclaim_high for the
        pages it charged above memory.high (then SWAP_CLUSTER_MAX a retry) while the overage
        would cost it a penalty worth sleeping for and reclaim makes progress (or retries are
        left); when it does not, the task is throttled for the penalty (calculate_high_delay,
        at most MEMCG_MAX_HIGH_DELAY_JIFFIES), counted as `high_delay_jiffies`."""
        nr_pages = int(self.over_high[pid])
        self.over_high[pid] = 0
        memcg = self.memcgs[int(self.memcg_of_pid[pid])] if self.multi else self.root_memcg
        self.flush_writeback()
        retries, in_retry = MAX_RECLAIM_RETRIES, False
        while True:
            reclaimed = self._reclaim_high(memcg, SWAP_CLUSTER_MAX if in_retry else nr_pages, pid)
            penalty = min(calculate_high_delay(nr_pages, mem_find_max_overage(memcg)), MEMCG_MAX_HIGH_DELAY_JIFFIES)
            if penalty <= HZ // 100:  # too little to be worth a sleep
                break
            if reclaimed or retries:  # progress (or retries left): reclaim rather than throttle
                if not reclaimed:
                    retries -= 1
                in_retry = True
                continue
            self.cost["high_delay_jiffies"] += penalty
            break
        self._run_pending_kswapds()

    def _reclaim_high(self, memcg: Memcg, nr_pages: int, pid: int) -> int:
        """reclaim_high: try_to_free_mem_cgroup_pages on the memcg and each ancestor below the root
        that is above its memory.high, each counting a `high` event."""
        got = 0
        m = memcg
        while m is not None:
            if m.usage > m.high:
                m.events["high"] += 1
                self.reclaims += 1
                got += try_to_free_mem_cgroup_pages(self, self.zonelist(pid, True), m, nr_pages, self.ops)
            m = m.parent
            if m is not None and m.parent is None:  # not the root
                break
        return got

    def _charge_slow(self, memcg: Memcg, pid: int) -> None:
        """try_charge_memcg for one page when a memcg (or an ancestor) is at memory.max: count a
        `max` event on the memcg over its limit and reclaim from it
        (try_to_free_mem_cgroup_pages), until the charge fits; one extra round for the per-CPU
        stock drain, then MAX_RECLAIM_RETRIES rounds that reclaim nothing, then
        mem_cgroup_out_of_memory (the run ends)."""
        self.reclaims += 1
        self.flush_writeback()
        retries = MAX_RECLAIM_RETRIES
        drained = False
        while True:
            over = self.mem_over_limit(memcg)
            if over is None:
                break
            over.events["max"] += 1
            got = try_to_free_mem_cgroup_pages(self, self.zonelist(pid, True), over, 1, self.ops)
            if over.margin() >= 1:
                continue
            if not drained:
                drained = True
                continue
            if got:
                continue
            if retries:
                retries -= 1
                continue
            over.events["oom"] += 1
            over.events["oom_kill"] += 1
            self.vm["oom_kill"] += 1
            raise OutOfMemory(
                f"out of memory in memcg {over.path}: usage {over.usage} pages at memory.max {over.max} pages, "
                f"nothing reclaimable (swap {self.swap.used}/{self.swap.total} pages used); "
                f"raise its max or give more --swap", memcg=over.path
            )
        self._run_pending_kswapds()
        if self.config.check:
            self.check_conservation()
        self.sample()

    def dirty_background(self) -> int:
        """Dirty file pages above which the flusher writes them back (dirty_background_ratio)."""
        return sum(n.managed for n in self.nodes) * DIRTY_BACKGROUND_RATIO // 100

    def flush_writeback(self) -> None:
        """The flusher: writeback started by reclaim completes, and dirty file folios are written
        when reclaim asked for it or they exceed dirty_background_ratio. Folios reclaim marked
        PG_reclaim are rotated to the tail of their list (folio_end_writeback ->
        folio_rotate_reclaimable)."""
        if not (self.nr_writeback or self.nr_file_dirty):  # nothing in flight, nothing dirty
            return
        f = self.folios
        s, wb = kswapd.reclaim_scalars(self, self.node)
        kc = np.zeros(len(kswapd.KSWAPD_COUNTS), dtype=np.int64)
        on = self.flush_buffer()
        # the pass and its counts as a compiled driver's flusher runs them (nothing when it has no work)
        k = kswapd.driver_flush(self.dirty_background(), s, wb, f.flags, f.type, f.lru, on, kc)
        kswapd.set_reclaim_scalars(self, s, wb)
        kswapd.flush_counts(self, self.root_lruvec(self.node), kc)
        if k:  # folio_rotate_reclaimable, by lruvec (a copy: the buffer is the next flush's)
            for lv, part in self.by_lruvec(on[:k].copy()):
                self.ops.rotate_reclaimable(self, lv, part)

    # --------------------------------------------------------------------------------------------
    # drivers

    def swap_cache_pages(self) -> int:
        """Resident anon folios in the swap cache, each holding a slot (disk swap only)."""
        f = self.folios
        fl = f.flags[: f.count]
        return int((((fl & PG_swapcache) != 0) & ((fl & PG_resident) != 0)).sum())

    def record_misses(self) -> None:
        """Record which accesses miss (allocate a folio: a read or fault of a page not in memory)
        from now on; `miss_bitmap` gives them. Opt-in: the compiled segment driver, which does not
        come back per stretch, is not used while recording (a plain run without memcg limits is
        slower then; a run with limits uses the per-stretch path anyway)."""
        if self.miss_log is None:
            self.miss_log = []

    def miss_bitmap(self, n: int | None = None) -> np.ndarray:
        """Per access (bool, `n` or all accesses replayed): whether it missed (record_misses)."""
        if self.miss_log is None:
            raise ReclaimExtError("miss_bitmap: record_misses was not called before the run")
        out = np.zeros(self.accesses if n is None else n, dtype=bool)
        if self.miss_log:
            out[np.concatenate(self.miss_log)] = True
        return out

    def _log_misses(self, pages: np.ndarray, a: int, b: int, ev, ne: int, na: int) -> None:
        """The misses of the stretch of records a..b-1 of the chunk (run_accesses allocated `na`
        folios there, each with an ADD event). No reclaim runs inside a stretch, so a page is
        added at most once in it, by its first record: the misses are the first records of the
        pages with an ADD event."""
        adds = ev[0][:ne][ev[1][:ne]]
        first_pages, first = np.unique(pages[a:b], return_index=True)
        hit = np.isin(first_pages, adds, assume_unique=True)
        pos = np.sort(first[hit]) + (self.accesses + a)
        if len(pos) != na:
            raise AssertionError(f"miss record: {len(pos)} first records of added pages, {na} allocations")
        self.miss_log.append(pos)

    def run(self, trace, progress=None, on_chunk=None) -> None:
        """Replay a whole trace. `progress(n_done)` is called after each chunk, `on_chunk(accesses
        so far)` before each (where a policy switch can happen)."""
        exact = self.config.mode != "fast"
        self.chunks = TimedChunks(trace)
        for chunk in self.chunks:
            if len(chunk) == 0:
                continue
            if on_chunk is not None:
                on_chunk(self.accesses)
            try:
                self._run_chunk(chunk, exact)
            except OutOfMemory:  # served: the accesses before the one that found no memory
                self.kind_counts += np.bincount(chunk["kind"][: self.pos - self.accesses], minlength=len(Kind))
                raise
            self.kind_counts += self._chunk_kinds  # accesses by kind (counted by mm.translate)
            self.accesses += len(chunk)
            if progress is not None:
                progress(len(chunk))
        if self.config.check:
            self.check_conservation()
        self.sample()

    # ---- the drivers -----------------------------------------------------------------------------

    def _run_chunk(self, chunk: np.ndarray, exact: bool) -> None:
        """One chunk of the trace through the compiled access path (core.access.run_accesses).

        Both drivers stop at the same records: before an allocation that needs the slow path,
        which runs here exactly as the kernel runs it inside that allocation. Between two such
        stops nothing the policy does changes what the accesses do (no reclaim runs), so the
        stretch is replayed first and its software-visible events go to the policy after it, in
        order: one scalar hook call per event (folio_add, mark_accessed) in the exact driver, one
        batched call (access_events) in the fast driver."""
        pages, ptes, self._chunk_kinds = self.mm.translate(chunk)
        pids = chunk["pid"]
        kinds = chunk["kind"]
        writes = chunk["write"]  # tested for nonzero only: the trace's 0/1 field as it is, not cast
        # which read()s call folio_mark_accessed depends on the trace alone (each stream's
        # previous read), so it is found for the whole chunk at once
        marks = np.empty(len(chunk), dtype=np.bool_)
        j = 0
        st = self._streams
        while j < len(chunk):
            slots, shift, room = st.hash_table(st.count + 1)
            if len(self._slast) < room:
                self._slast = np.concatenate((self._slast, np.full(room - len(self._slast), -1, dtype=np.int64)))
            j, st.count = read_marks(kinds, writes, pids, chunk["file"], pages, j, slots, shift, st.count, room,
                                     self._slast, marks)
        n = len(pages)
        # the event buffers, kept from chunk to chunk (new arrays per chunk cost page faults);
        # a hook sees its AccessEvents only during its call
        if self._ev is None or len(self._ev[0]) < 2 * n:
            self._ev = new_event_arrays(n)
        ev = self._ev
        f, pt, node, swap, nodes = self.folios, self.ptes, self.node, self.swap, self.nodes
        mcs = self._memcg_list
        M, N = len(mcs), len(nodes)
        s = np.zeros(FREE + N, dtype=np.int64)
        # the counters of a run_accesses call in one array (vmstat, cost, each memcg's
        # memory.stat per node, each node's allocation events), and the dict entry each one is
        # added to (_add_counts)
        nv, nc, nm = len(ACCESS_VM), len(ACCESS_COST), M * N * len(ACCESS_MEMCG)
        counts = np.zeros(nv + nc + nm + N * len(NODE_COLUMNS), dtype=np.int64)
        vmc, cost = counts[:nv], counts[nv : nv + nc]
        mstat = counts[nv + nc : nv + nc + nm].reshape(M * N, len(ACCESS_MEMCG))
        ncnt = counts[nv + nc + nm :].reshape(N, len(NODE_COLUMNS))
        sinks = ([((self.vm,), name) for name in ACCESS_VM] + [((self.cost,), name) for name in ACCESS_COST]
                 + [((m.lruvecs[n.nid].stat,), name) for m in mcs for n in nodes for name in ACCESS_MEMCG]
                 + self._node_sinks())
        usage = np.zeros(M, dtype=np.int64)
        peak = np.zeros(M, dtype=np.int64)
        mmax = np.zeros(M, dtype=np.int64)
        limited = bool(self.limited)
        head = (pages, ptes, kinds, writes, marks, pids)
        tail = (self.multi, limited, f.flags, f.type, f.memcg, f.shadow, f.shadow_ws, f.ever, pt.present, pt.young,
                pt.pmd, self.mm.pmds.young, self.mm_used, self.memcg_of_pid, usage, peak, mmax, self._mparent, s, vmc,
                cost, mstat, ev, self.highs, self._mhigh, self.over_high, f.swap_memcg, self.swap_usage, self._swap_max,
                f.swap_type, self.swap.table, f.nid, self.zonelists, self.pid_zonelist,
                np.zeros(N, dtype=np.int64), ncnt, self.promo, pt.prot_numa)
        # the policy's compiled driver runs stretches and kswapd wakes without coming back here
        # (ReclaimOps.segment_driver), for a plain run: one memcg, no limit, no check
        fused = None if (exact or self.multi or limited or self.highs or self.config.check or not self.config.bulk_reclaim
                         or len(nodes) > 1
                         or self.miss_log is not None) \
            else self.ops.segment_driver(self, len(ev[0]))
        i = 0
        granted = False  # the watermark slow path ran for the allocation at record i: it may proceed
        skip_used = False  # the record at i stopped for a slow path: its mm is marked used already
        while i < n:
            if self.promo:
                self.numa_balancing.scan_if_due(pt.prot_numa)
            s[:FREE] = (swap.used, swap.total, self.nr_file_dirty, self.misses)
            s[FREE:] = [nd.free for nd in nodes]
            if self.multi:
                for j, m in enumerate(mcs):
                    usage[j], peak[j], mmax[j] = m.usage, m.peak, min(m.max, 1 << 62)
            else:
                m = mcs[0]
                usage[0], peak[0], mmax[0] = m.usage, m.peak, min(m.max, 1 << 62)
            kswapd_ran = False  # or the (priority, reclaimed) of a run to finish (balance_pgdat's resume)
            if fused is not None:  # (its flusher: kswapd.flush_due, driver_writeback)
                nxt, why, granted, kswapd_ran = self.drive_compiled(fused, head, tail, ev, s, usage, i, granted,
                                                                    skip_used)
                ne = 0
            else:
                budget = self._budget(int(pids[i]) if granted else -1, int(pages[i]))
                nxt, why, ne, na = run_accesses(*head, i, budget, skip_used, *tail)
                if na:
                    granted = False
                    if self.miss_log is not None:
                        self._log_misses(pages, i, nxt, ev, ne, na)
            _, _, self.nr_file_dirty, self.misses = s[:FREE].tolist()  # swap: its table, in place
            for nd, free in zip(nodes, s[FREE:].tolist()):
                nd.free = free
            for m, u, pk in zip(mcs, usage.tolist(), peak.tolist()):
                m.usage, m.peak = u, pk
            self._add_counts(counts, sinks)
            if ne:
                self._deliver(ev, ne, exact)
            i = nxt
            skip_used = why in (STOP_WMARK, STOP_MEMCG, STOP_NUMA)  # stopped before record i, which marked its mm
            if why == DONE:
                continue
            self.pos = self.accesses + i
            if why == STOP_HIGH:  # after record i - 1: its task returns to user space
                self._handle_over_high(int(pids[i - 1]))
            elif why == STOP_NUMA:  # before record i: its PTE was made PROT_NONE by the scan
                self.numa_balancing.hint_fault(int(pids[i]), int(pages[i]), int(ptes[i]))
            elif why == STOP_WMARK:
                pid, g = int(pids[i]), int(pages[i])
                if isinstance(kswapd_ran, tuple):
                    vmscan.balance_pgdat(self, node, self.ops, resume=kswapd_ran)
                    self._after_kswapd(pid, g)
                elif kswapd_ran:
                    self._after_kswapd(pid, g)
                else:
                    self._make_room(pid, g)
                granted = True
            else:
                self._charge_slow(self.memcgs[int(self.memcg_of_pid[pids[i]])], int(pids[i]))

    def drive_compiled(self, fused, head, tail, ev, s, usage, i: int, granted: bool, skip_used: bool):
        """Hand the chunk from record i to the policy's compiled driver (`fused`: the loop, its
        own arguments, its HookOut; ReclaimOps.segment_driver). The loop is called as
        loop(head, tail, ev, s, usage, i, granted, skip_used, sampled, dirty_background, own
        arguments, list ids, list stamps, lists' lo and hi, kswapd's tables (core.kswapd.tables),
        node scalars, the flusher's scalars, workingset_activate counts, refault snapshot,
        swappiness, stamp clock, the dry run's batch buffer, kswapd counters, kswapd's resume
        state: priority, reclaimed, and a buffer as long as the folio table's used part for the
        flusher's folios to rotate: core.kswapd.driver_writeback) with run_accesses' arguments
        before and after (start, budget, skip_used) in head and tail. It replays stretches, hands their events to
        the policy and runs the kswapd wakes it can (core.kswapd.driver_kswapd), and returns (next
        record, why it stopped, granted, list slots left in the HookOut, the last kswapd step's
        answer, list ids, list stamps) at the first stop it leaves to the engine, the events before
        it delivered. The lists, node, counters and snapshot are written back here. Returns (next
        record, why, granted, whether the stop's kswapd run is done, or the (priority, reclaimed)
        its Python part resumes from)."""
        loop, own, out = fused
        if callable(own):
            own = own()
        node = self.node
        lv = self.root_lruvec(node)
        lists = lv.lists
        lids, lstamps, lohi = kswapd.get_lists(lists)
        nodev = vmscan.node_scalars(node)
        wb = np.array([self.nr_writeback, self.writeback_requested], dtype=np.int64)
        kc = np.zeros(len(kswapd.KSWAPD_COUNTS), dtype=np.int64)
        resume = np.zeros(2, dtype=np.int64)
        wa_base = np.array([lv.stat["workingset_activate_anon"], lv.stat["workingset_activate_file"]], dtype=np.int64)
        refaults = np.array(lv.refaults, dtype=np.int64)
        sampled = bool(self.samples) and self.samples[-1]["accesses"] == self.accesses
        i, why, granted, npush, done, ids, stamps = loop(
            head, tail, ev, s, usage, i, granted, skip_used, sampled, self.dirty_background(), own,
            lids, lstamps, lohi, kswapd.tables(self, lv), nodev, wb,
            wa_base, refaults, int(kswapd.swp_of(self, lv)), self._stamp_clock, kswapd.dry_batches(self), kc,
            resume, self.flush_buffer())
        kswapd.set_lists(lists, ids, stamps, lohi)
        vmscan.set_node_scalars(node, nodev)  # node.free: the caller takes the access path's count (s)
        self.nr_writeback, self.writeback_requested = int(wb[0]), bool(wb[1])
        kswapd.flush_counts(self, lv, kc)
        lv.refaults = refaults.tolist()
        out.npush = npush  # list slots the lists had no room for: pushed (room made) here
        out.apply()
        if done == kswapd.WAKE_DIVERGED:
            raise AssertionError(f"compiled kswapd run diverged from its plan: lists {lv.table.nr[lv.row]}")
        if done == kswapd.WAKE_PART:
            return i, why, bool(granted), (int(resume[0]), int(resume[1]))
        return i, why, bool(granted), done == kswapd.WAKE_RAN

    def _node_sinks(self) -> list:
        """Where each column of a (nodes x access.NODE_COLUMNS) count array goes: a node's
        allocations to its vmstat (the access path counts the global one itself), its NUMA
        events to its vmstat and the global one, its hits to the cost counter of its tier when
        that is slower than DRAM (CostModel prices it), else nowhere."""
        out = []
        for n in self.nodes:
            for name in NODE_COLUMNS:
                if name == "hits":
                    out.append(((self.cost,), f"hits_{n.tier}") if n.tier != "dram" else ((), name))
                else:
                    out.append(((n.vm,) if name == "pgalloc_normal" else (n.vm, self.vm), name))
        return out

    def add_node_counts(self, ncnt: np.ndarray) -> None:
        """Add (and reset) a (nodes x access.NODE_COLUMNS) count array (_node_sinks)."""
        self._add_counts(ncnt.reshape(-1), self._node_sinks())

    def _add_counts(self, counts: np.ndarray, sinks: list) -> None:
        """Add (and reset) the counters one run_accesses call kept in an array: counts[k] goes to
        the entry `name` of every dict of sinks[k] (dicts, name)."""
        nz = np.flatnonzero(counts)
        for k, c in zip(nz.tolist(), counts[nz].tolist()):
            ds, name = sinks[k]
            for d in ds:
                d[name] += c
        counts[nz] = 0

    def _deliver(self, ev, ne: int, exact: bool) -> None:
        """The events of a stretch to the policy: one scalar hook call each (exact driver), or
        one batched call (fast driver). An event belongs to its folio's lruvec (an ADD's folio is
        charged to the faulting task's memcg)."""
        f = self.folios
        if exact:
            for k in range(ne):
                g = int(ev[0][k])
                lv = self.lruvec_of(g)
                if ev[1][k]:
                    self.ops.folio_add(self, lv, g, int(ev[2][k]), bool(ev[3][k]), int(ev[4][k]), bool(ev[5][k]))
                else:
                    self.ops.mark_accessed(self, lv, g)
            return
        if type(self.ops).trusted is True:  # a built-in policy keeps none of the arrays: views of the buffers
            page, is_add, shadow, ws, swap_free, fault = (a[:ne] for a in ev)
        else:
            page, is_add, shadow, ws, swap_free, fault = (a[:ne].copy() for a in ev)
        events = AccessEvents(page=page, is_add=is_add, shadow=shadow, shadow_ws=ws, lru_type=f.type[page],
                              swap_free=swap_free, fault=fault)
        if self.multi or len(self.nodes) > 1:
            self._dispatch_events(events)
        else:
            self.ops.access_events(self, self.root_lruvec(self.node), events)

    def _dispatch_events(self, ev: AccessEvents) -> None:
        """A segment's events with several memcgs or nodes: each event belongs to its folio's
        lruvec (ev.memcg, the folio's node). A policy that takes events of several memcgs in one
        call (`multi_lruvec_events`) gets each node's events, in order, with that node's root
        lruvec (nodes share no list, counter or generation, so one node's events need not wait
        for another's); otherwise each maximal run of events of one lruvec is handed over in
        order, on that lruvec."""
        f = self.folios
        ev.memcg = mc = f.memcg[ev.page]
        N = len(self.nodes)
        if getattr(self.ops, "multi_lruvec_events", False):
            nid = f.nid[ev.page]
            for n in (np.unique(nid).tolist() if N > 1 else [0]):
                sel = np.flatnonzero(nid == n) if N > 1 else None
                sub = ev if sel is None or len(sel) == len(nid) else AccessEvents(
                    page=ev.page[sel], is_add=ev.is_add[sel], shadow=ev.shadow[sel], shadow_ws=ev.shadow_ws[sel],
                    lru_type=ev.lru_type[sel], swap_free=ev.swap_free[sel], fault=ev.fault[sel], memcg=mc[sel])
                self.ops.access_events(self, self.root_lruvec(self.nodes[n]), sub)
            return
        key = mc.astype(np.int64) * N + f.nid[ev.page]
        bounds = np.flatnonzero(key[1:] != key[:-1]) + 1
        for a, b in zip(np.concatenate(([0], bounds)).tolist(), np.concatenate((bounds, [len(key)])).tolist()):
            m, n = divmod(int(key[a]), N)
            sub = ev if a == 0 and b == len(key) else AccessEvents(
                page=ev.page[a:b], is_add=ev.is_add[a:b], shadow=ev.shadow[a:b], shadow_ws=ev.shadow_ws[a:b],
                lru_type=ev.lru_type[a:b], swap_free=ev.swap_free[a:b], fault=ev.fault[a:b], memcg=mc[a:b])
            self.ops.access_events(self, self.memcgs[m].lruvecs[n], sub)

    # --------------------------------------------------------------------------------------------
    # observability and invariants

    def sample(self) -> None:
        """Record list sizes and free pages (a time series over accesses)."""
        lv = self.root_lruvec(self.node)
        if self.samples and self.samples[-1]["accesses"] == self.accesses:
            return
        point = {"accesses": self.accesses, "free": sum(n.free for n in self.nodes), "lists": self.lists()}
        if len(self.nodes) > 1:
            point["node_free"] = [n.free for n in self.nodes]
        if any(n.tier != "dram" for n in self.nodes):
            point["tier_used"] = {t["tier"]: t["used_pages"] for t in self.tier_usage()}
        if self.multi:
            point["memcg_usage"] = {m.path: m.usage for m in self.memcgs.values()}
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
        problems = []
        pool = self.swap.pool_pages
        on_node = np.bincount(f.nid[:cnt][resident].astype(np.int64), minlength=len(self.nodes))
        for node in self.nodes:
            here = int(on_node[node.nid])
            zpool = pool if node.nid == 0 else 0  # zram's pool is on node 0
            name = f"node {node.nid}: " if len(self.nodes) > 1 else ""
            if node.free + here + zpool != node.managed:
                problems.append(f"{name}free {node.free} + resident {here}" + (f" + zram pool {zpool}" if zpool else "")
                                + f" != memory {node.managed}")
            if node.free < 0:
                problems.append(f"{name}free pages negative ({node.free})")
        if self.root_memcg.usage != nres:
            problems.append(f"memcg usage {self.root_memcg.usage} != resident {nres}")
        if self.multi:  # hierarchical usage == resident folios charged in the subtree
            local = np.bincount(f.memcg[:cnt][resident].astype(np.int64), minlength=len(self.memcgs))
            for m in self.memcgs.values():
                want = int(sum(local[d.id] for d in m.subtree()))
                if m.usage != want:
                    problems.append(f"memcg {m.path}: usage {m.usage} != {want} resident folios charged to it")
                if m.usage > m.max:
                    problems.append(f"memcg {m.path}: usage {m.usage} is over memory.max {m.max}")
        lru = f.lru[:cnt]
        if (lru[~resident] != NO_LIST).any():
            problems.append("an evicted page is still on a list")
        if (lru[resident] == NO_LIST).any():
            problems.append(f"{int((lru[resident] == NO_LIST).sum())} resident pages are on no list")
        seen = np.zeros(cnt, dtype=np.int64)
        for m in self.memcgs.values():
            for node in self.nodes:
                lv = m.lruvecs[node.nid]
                where = (f" of memcg {m.path}" if self.multi else "") + (f" on node {node.nid}" if len(self.nodes) > 1 else "")
                for i, fl in enumerate(lv.lists):
                    ids = fl.valid_ids(f)
                    if len(ids) != lv.nr[i]:
                        problems.append(f"list {i}{where}: {len(ids)} folios on it but its size says {lv.nr[i]}")
                    if (lru[ids] != i).any():
                        problems.append(f"list {i}{where}: holds folios whose list tag differs")
                    if (f.memcg[ids] != m.id).any():
                        problems.append(f"list {i}{where}: holds {int((f.memcg[ids] != m.id).sum())} folios charged to another memcg")
                    if (f.nid[ids] != node.nid).any():
                        problems.append(f"list {i}{where}: holds {int((f.nid[ids] != node.nid).sum())} folios of another node")
                    np.add.at(seen, ids, 1)
                problems += self.ops.check(self, lv)
        if (seen > 1).any():
            problems.append(f"{int((seen > 1).sum())} pages are on two lists")
        if (seen[resident] != 1).any():
            problems.append(f"{int((seen[resident] != 1).sum())} resident pages are on no list")
        anon = f.type[:cnt] == LRU_ANON
        swapped = int((anon & f.ever[:cnt] & ~resident).sum())
        cached = int((anon & resident & ((flags & PG_swapcache) != 0)).sum())  # disk swap: slots kept
        if swapped + cached != self.swap.used:
            problems.append(f"swap slots used {self.swap.used} != swapped-out pages {swapped} + pages in the swap "
                            f"cache {cached}")
        typ = f.swap_type[:cnt].astype(np.int64)
        if ((typ >= 0) != (f.swap_memcg[:cnt] >= 0)).any():
            problems.append(f"{int(((typ >= 0) != (f.swap_memcg[:cnt] >= 0)).sum())} pages have a swap device but no "
                            "swap charge, or the other way round")
        on_dev = np.bincount(typ[typ >= 0], minlength=len(self.swap.devices))
        for d, (n, used) in enumerate(zip(on_dev.tolist(), self.swap.rows[:, SWP_USED].tolist())):
            if n != used:
                problems.append(f"swap device {d}: {used} slots used != {n} pages whose slot is on it")
        if self.multi:  # memory.swap.max accounting: each memcg's slots are its subtree's swapped-out pages
            owner = f.swap_memcg[:cnt].astype(np.int64)
            held = np.bincount(owner[owner > 0], minlength=len(self.memcgs))
            for m in self.memcgs.values():
                if m.parent is not None:
                    n = int(sum(held[d.id] for d in m.subtree()))
                    if n != self.swap_usage[m.id] or self.swap_usage[m.id] > self._swap_max[m.id]:
                        problems.append(f"memcg {m.path}: swap usage {self.swap_usage[m.id]} != its swapped-out "
                                        f"pages {n} (or above its swap.max {m.swap_max})")
        ndirty = int((((flags & PG_dirty) != 0) & resident & (f.type[:cnt] == LRU_FILE)).sum())
        if ndirty != self.nr_file_dirty:
            problems.append(f"dirty file pages {ndirty} != counter {self.nr_file_dirty}")
        problems += ["counter identity: " + p for p in self.counter_problems(nres, resident)]
        if problems:
            raise ConservationError(f"conservation check failed in the trace chunk starting at access {self.accesses}: " + "; ".join(problems))

    def counter_problems(self, nres: int, resident: np.ndarray) -> list[str]:
        """The vmstat identities this model keeps (part of check_conservation), each broken one
        named: pages enter memory only by allocation and leave it only by reclaim, a reclaimed
        anon folio always goes to the (synchronous) swap device, every shadow entry comes from one
        eviction and is consumed by one refault, and every per-lruvec event is also a vmstat one."""
        v = self.vm
        out = vmstat_problems(v, self.misses, self.cost, self.swap.keeps_cache, self.demoted.tolist(),
                              self.shadows_dropped.tolist())
        if v["pgalloc_normal"] - v["pgfree"] != nres:
            out.append(f"pgalloc_normal {v['pgalloc_normal']} - pgfree {v['pgfree']} != resident {nres}")
        # zram: a slot holds a page written and not read back, or a folio reclaim gave it to and
        # kept unwritten (!may_writepage), resident in the swap cache
        cached = 0 if self.swap.keeps_cache else self.swap_cache_pages()
        if not self.swap.keeps_cache and v["pswpout"] - v["pswpin"] + cached != self.swap.used:
            out.append(f"pswpout {v['pswpout']} - pswpin {v['pswpin']} + swap-cache pages {cached} != swap slots "
                       f"used {self.swap.used}")
        f = self.folios
        cnt = f.count
        shadows = np.bincount(f.type[:cnt][~resident & (f.shadow[:cnt] >= 0)], minlength=2)
        for t, name in enumerate(TYPE_NAMES):
            dropped = int(self.shadows_dropped[t])
            left = v["pgsteal_" + name] - int(self.demoted[t]) - v["workingset_refault_" + name] - dropped
            if int(shadows[t]) != left:  # a demoted folio leaves no shadow
                out.append(f"{name}: {int(shadows[t])} shadow entries != pgsteal_{name} - "
                           f"workingset_refault_{name}" + (f" - {int(self.demoted[t])} demoted" if self.demoted[t] else "")
                           + (f" - {dropped} shadows of another lruvec" if dropped else "") + f" = {left}")
        lvs = [m.lruvecs[n.nid] for m in self.memcgs.values() for n in self.nodes]
        for name in self.MEMCG_STAT:  # memory.stat events: the root's sum is vmstat
            if name in v:
                local = sum(lv.stat[name] for lv in lvs)
                if local != v[name]:
                    out.append(f"{name}: vmstat {v[name]} != {local} summed over the memcgs' memory.stat")
        for name, total in self.node_vmstat_totals().items():  # per-node counters add up to vmstat
            if total != v[name]:
                out.append(f"{name}: vmstat {v[name]} != {total} summed over the nodes")
        return out

    def tier_usage(self) -> list[dict]:
        """Per memory tier present (top first): its nodes, memory and pages in use."""
        out = []
        for t in TIERS:
            ns = [n for n in self.nodes if n.tier == t]
            if ns:
                out.append({"tier": t, "nodes": [n.nid for n in ns], "memory_pages": sum(n.managed for n in ns),
                            "used_pages": sum(n.managed - n.free for n in ns)})
        return out

    def lists(self) -> list[int]:
        """The machine's list sizes (every memcg's, on every node), by list."""
        return np.sum([self.root_lruvec(n).hier_nr() for n in self.nodes], axis=0).tolist()

    def node_vmstat(self, node) -> dict:
        """A node's counters (/sys/devices/system/node/nodeN/vmstat and numastat names): its free
        pages, its allocation and NUMA events and kswapd's, and the per-lruvec events of every
        memcg on it."""
        out = {"nr_free_pages": node.free}
        out.update((name, node.vm[name]) for name in sorted(set(NODE_NAMES) | set(kswapd.NODE_EVENTS) | set(node.vm)))
        for name in self.MEMCG_STAT:
            out[name] = sum(m.lruvecs[node.nid].stat[name] for m in self.memcgs.values())
        return out

    def node_vmstat_totals(self) -> dict:
        """Each event counter of node_vmstat summed over the nodes (conservation: equals vmstat)."""
        tot: dict[str, int] = {}
        for n in self.nodes:
            for name, c in self.node_vmstat(n).items():
                if name != "nr_free_pages" and name in self.vm:
                    tot[name] = tot.get(name, 0) + c
        return tot

    def result(self) -> dict:
        """Counters and derived numbers of the run so far."""
        return {
            "accesses": self.accesses,
            "accesses_by_kind": {k.name.lower(): int(self.kind_counts[k]) for k in Kind},
            "misses": self.misses,
            "miss_ratio": self.misses / self.accesses if self.accesses else 0.0,
            "vmstat": dict(self.vm),
            "cost": dict(self.cost),
            "modeled_seconds": self.config.cost_model.seconds(self.cost, self.swap, self.storage),
            "lists": self.lists(),
            "free_pages": sum(n.free for n in self.nodes),
            # summed over the nodes' zones (si_mem_available's wmark_low)
            "watermarks": {k: sum(getattr(n.wmark, k) for n in self.nodes) for k in ("min", "low", "high")},
            "tiers": self.tier_usage(),
            "nodes": [{"nid": n.nid, "tier": n.tier, "memory_pages": n.managed, "free_pages": n.free,
                       "watermarks": {"min": n.wmark.min, "low": n.wmark.low, "high": n.wmark.high},
                       "kswapd_failures": n.kswapd_failures, "lists": list(self.root_lruvec(n).hier_nr()),
                       "vmstat": self.node_vmstat(n)} for n in self.nodes],
            "memcgs": self.memcg_results(),
        }

    @staticmethod
    def _sum_sizes(per_node: list[dict]) -> dict:
        """A memcg's list sizes over its lruvecs on every node."""
        out = dict(per_node[0])
        for d in per_node[1:]:
            for k, v in d.items():
                out[k] = out[k] + v if isinstance(v, int) else v
        return out

    # memory.stat names this simulator keeps per memcg (the lruvec event counters), and the
    # memory.events names
    MEMCG_STAT = ("pgfault", "pgmajfault", "pgscan", "pgsteal", "pgscan_kswapd", "pgscan_direct",
                  "pgsteal_kswapd", "pgsteal_direct", "workingset_refault_anon", "workingset_refault_file", "workingset_activate_anon",
                  "workingset_activate_file", "workingset_restore_anon", "workingset_restore_file",
                  "pgdemote_kswapd", "pgdemote_direct")

    NUMA_STAT = tuple(name for name in MEMCG_STAT if name.startswith("workingset_"))  # memory.numa_stat's events

    def memcg_results(self) -> list[dict]:
        """Per memcg (pre-order): name, memory.max, usage, peak, memory.stat and memory.events
        counters (both hierarchical, as cgroup v2 shows them) and the sizes of its own lists; on
        several nodes also `numa_stat` (memory.numa_stat: per node, anon and file pages and the
        workingset counters, hierarchical)."""
        out = []
        for m in self.root_memcg.subtree():
            lvs = [m.lruvecs[n.nid] for n in self.nodes]
            stat = {}
            for name in self.MEMCG_STAT:
                if name == "pgscan":
                    stat[name] = sum(lv.hier_stat("pgscan_kswapd") + lv.hier_stat("pgscan_direct") for lv in lvs)
                elif name == "pgsteal":
                    stat[name] = sum(lv.hier_stat("pgsteal_kswapd") + lv.hier_stat("pgsteal_direct") for lv in lvs)
                else:
                    stat[name] = sum(lv.hier_stat(name) for lv in lvs)
            events = {k: sum(d.events[k] for d in m.subtree()) for k in ("low", "high", "max", "oom", "oom_kill")}
            out.append({
                "name": m.path,
                "max": None if m.max >= (1 << 62) else m.max,
                "min": m.min,
                "low": m.low,
                "high": m.high if m.high < (1 << 62) else None,
                "swap_max": m.swap_max if m.swap_max < (1 << 62) else None,
                "swap_usage": int(self.swap_usage[m.id]) if m.parent is not None else self.swap.used,
                "memory_swap_events": {k: int(sum(self.swap_events[d.id, j] for d in m.subtree()))
                                       for j, k in enumerate(("max", "fail"))},
                "usage": m.usage,
                "peak": m.peak,
                "pids": sorted(np.flatnonzero(self.memcg_of_pid == m.id).tolist()) if m.parent is not None else None,
                "memory_stat": stat,
                "memory_events": events,
                "memory_events_local": dict(m.events),
                "lru_sizes": self._sum_sizes([self.ops.lru_sizes(lv) for lv in lvs]),
            })
            if len(self.nodes) > 1:
                sub = list(m.subtree())
                out[-1]["numa_stat"] = {
                    "anon": [sum(d.lruvecs[n.nid].type_size(LRU_ANON) for d in sub) for n in self.nodes],
                    "file": [sum(d.lruvecs[n.nid].type_size(LRU_FILE) for d in sub) for n in self.nodes],
                    **{name: [lv.hier_stat(name) for lv in lvs] for name in self.NUMA_STAT}}
        return out
