"""NUMA balancing's memory tiering mode (numa_balancing = 2): promotion of hot pages from a slower
tier back to the top tier, the `promotion` mechanism.

The scan (task_numa_work, kernel/sched/fair.c): every scan period of modelled time each task's
present PTEs that map a folio on a node below the top tier are made PROT_NONE (change_prot_numa;
in tiering mode top-tier pages are skipped), and the folio records when (folio_xchg_access_time).
An access through such a PTE is a NUMA hint fault (do_numa_page, mm/memory.c): the PTE is
restored and, when the task's node is a top-tier node, the folio is a promotion candidate
(should_numa_migrate_memory): promoted at once when that node has plenty of free memory
(pgdat_free_space_enough), else only if the fault came within the hot threshold of the scan
(numa_hint_fault_latency) and the node's promotion rate limit is not exceeded
(numa_promotion_rate_limit). The migration (migrate_misplaced_folio) needs the node above its
high watermark (migrate_balanced_pgdat); otherwise it wakes the node's kswapd, whose reclaim
demotes to make room, and the folio stays.

Simplified: the scan covers each task's whole address space at once (the kernel scans
numa_balancing_scan_size_mb per pass and adapts the period), the hot threshold is fixed (no
numa_promotion_adjust_threshold), and a hint fault is priced as a minor fault.
"""

from __future__ import annotations

import numpy as np

from ..machine.folio import PG_resident
from . import vmscan

# the defaults of SimConfig.numa_scan_period_ms and numa_hot_threshold_ms:
SCAN_PERIOD_MS = 1000.0       # sysctl_numa_balancing_scan_period_min (and the first scan's delay)
HOT_THRESHOLD_MS = 1000.0     # sysctl_numa_balancing_hot_threshold
PROMOTE_RATE_LIMIT_MB = 65536  # sysctl_numa_balancing_promote_rate_limit (MB/s)
ENOUGH_BYTES = 1 << 30        # pgdat_free_space_enough: 1 GiB, or 1/16 of the node


class NumaBalancing:
    """The scan and the hint faults of one simulator (Simulator.numa_balancing)."""

    def __init__(self, sim):
        self.sim = sim
        self.period = sim.config.numa_scan_period_ms
        self.hot = sim.config.numa_hot_threshold_ms
        self.next_scan = self.period
        self.scan_ms = sim.folios.add_field("numa_scan_ms", np.float64, -1.0)  # folio_xchg_access_time
        self.rate_start = [0.0] * len(sim.nodes)  # numa_promotion_rate_limit's window per node
        self.rate_cand = [0] * len(sim.nodes)
        self.scans = 0

    def scan_if_due(self, prot_numa: np.ndarray) -> None:
        """task_numa_work when the scan period has passed: mark the present PTEs of folios on
        slower tiers PROT_NONE and stamp their folios with the time."""
        sim = self.sim
        now = sim.now_ms()
        if now < self.next_scan:
            return
        self.next_scan = now + self.period
        self.scans += 1
        pt, f = sim.ptes, sim.folios
        n = pt.count
        page = pt.page[:n]
        ok = pt.present[:n] & (page >= 0)
        g = np.where(ok, page, 0)
        slow = np.array([nd.tier != "dram" for nd in sim.nodes])
        ok &= ((f.flags[g] & PG_resident) != 0) & slow[f.nid[g]]
        prot_numa[:n] |= ok
        self.scan_ms = f.numa_scan_ms  # the table may have grown
        self.scan_ms[g[ok]] = now

    def hint_fault(self, pid: int, g: int, p: int) -> None:
        """do_numa_page for the access of task `pid` to folio g through PTE p."""
        sim = self.sim
        f, pt = sim.folios, sim.ptes
        pt.prot_numa[p] = False
        src = sim.nodes[int(f.nid[g])]
        sim.vm["numa_hint_faults"] += 1
        sim.count(sim.lruvec_of(g), "pgfault")  # handle_mm_fault counts it
        sim.cost["minor_faults"] += 1
        dst = sim.zonelist(pid)[0]  # the task's node
        if src.tier == "dram" or dst.tier != "dram" or f.lru[g] < 0:
            return
        if not self._should_migrate(g, dst):
            return
        if dst.free <= dst.wmark.high + 1:  # migrate_balanced_pgdat: wake the node's kswapd, keep the folio
            sim.wakeup_kswapd(dst)
            sim._run_pending_kswapds()
            return
        ids = np.array([g], dtype=np.int64)
        sim.ops.folio_isolate(sim, sim.lruvec_of(g), ids)
        dst.vm["pgpromote_success"] += 1
        sim.vm["pgpromote_success"] += 1
        sim.vm["numa_pages_migrated"] += 1
        dest = np.array([dst.nid], dtype=np.int64)
        vmscan.migrate_folios(sim, src, ids, dest, dest)

    def _should_migrate(self, g: int, dst) -> bool:
        """should_numa_migrate_memory in tiering mode, for a folio on a slower tier."""
        enough = max(ENOUGH_BYTES >> 12, dst.managed >> 4)
        if dst.free > dst.wmark.high + enough:  # pgdat_free_space_enough
            return True
        now = self.sim.now_ms()
        if now - self.scan_ms[g] >= self.hot:  # numa_hint_fault_latency: not hot
            return False
        # numa_promotion_rate_limit: candidates per second of modelled time
        k = dst.nid
        dst.vm["pgpromote_candidate"] += 1
        self.sim.vm["pgpromote_candidate"] += 1
        if now - self.rate_start[k] > 1000.0:
            self.rate_start[k] = now
            self.rate_cand[k] = dst.vm["pgpromote_candidate"]
        return dst.vm["pgpromote_candidate"] - self.rate_cand[k] <= PROMOTE_RATE_LIMIT_MB << 8
