"""Counters with kernel vmstat names, cost counters, and the cost model that turns them into time."""

from __future__ import annotations

from dataclasses import asdict, dataclass

# /proc/vmstat names this simulator maintains (all start at 0 so every key is always present).
VMSTAT_NAMES = (
    "pgfault", "pgmajfault", "pgpgin", "pgpgout", "pswpin", "pswpout",
    "pgalloc_normal", "pgfree",
    "pgactivate", "pgdeactivate", "pgrefill", "pgrotated",
    "pgscan_kswapd", "pgscan_direct", "pgscan_anon", "pgscan_file",
    "pgsteal_kswapd", "pgsteal_direct", "pgsteal_anon", "pgsteal_file",
    "workingset_refault_anon", "workingset_refault_file",
    "workingset_activate_anon", "workingset_activate_file",
    "workingset_restore_anon", "workingset_restore_file",
    "allocstall_normal", "pageoutrun", "kswapd_wakeups",
    "nr_vmscan_write", "nr_vmscan_immediate_reclaim",
    "oom_kill",
)

# Work counters that the cost model prices (not in /proc/vmstat).
COST_NAMES = (
    "hits", "minor_faults", "major_faults", "file_reads", "swap_ins", "swap_outs", "file_writes",
    "pages_scanned", "rmap_walks", "ptes_checked", "lru_lock_ops", "atomic_updates",
    "ptes_walked", "pmd_tables_skipped",  # page-table walks and lookaround (core.ptwalk)
)


def new_vmstat() -> dict[str, int]:
    return dict.fromkeys(VMSTAT_NAMES, 0)


def new_cost() -> dict[str, int]:
    return dict.fromkeys(COST_NAMES, 0)


@dataclass
class CostModel:
    """CPU nanoseconds charged per unit of work. Round numbers for a current x86 server; they only
    scale `modeled_seconds`, never a decision. Device I/O is priced by the devices themselves
    (machine.node.SwapDevice, StorageDevice)."""

    hit_ns: float = 5.0               # a cached access (TLB/cache effects ignored)
    minor_fault_ns: float = 700.0     # page fault that maps a page already in memory / zero-fills
    major_fault_ns: float = 1500.0    # CPU side of a fault that waits for I/O
    page_scan_ns: float = 60.0        # isolate + inspect one folio in shrink_folio_list
    rmap_walk_ns: float = 250.0       # one folio_referenced rmap walk (locks, VMA tree)
    pte_check_ns: float = 20.0        # test-and-clear one PTE young bit
    lru_lock_ns: float = 40.0         # one LRU-lock acquisition / list operation batch
    atomic_update_ns: float = 10.0    # one compare-and-swap on a folio's flags (lock-free aging)
    pte_walk_ns: float = 5.0          # one PTE of a sequential page-table scan (walk, lookaround)

    def seconds(self, cost: dict[str, int], swap, storage) -> float:
        """Modelled runtime: CPU work plus device I/O (synchronous reads and swap I/O; file
        writeback at the device's bandwidth)."""
        ns = (
            cost["hits"] * self.hit_ns
            + cost["minor_faults"] * self.minor_fault_ns
            + cost["major_faults"] * self.major_fault_ns
            + cost["pages_scanned"] * self.page_scan_ns
            + cost["rmap_walks"] * self.rmap_walk_ns
            + cost["ptes_checked"] * self.pte_check_ns
            + cost["lru_lock_ops"] * self.lru_lock_ns
            + cost["atomic_updates"] * self.atomic_update_ns
            + cost.get("ptes_walked", 0) * self.pte_walk_ns
        )
        io_us = (
            cost["file_reads"] * storage.read_latency_us
            + cost["swap_ins"] * swap.read_latency_us
            + cost["swap_outs"] * swap.write_latency_us
        )
        return ns * 1e-9 + io_us * 1e-6 + cost["file_writes"] / storage.write_bandwidth_pages_per_s

    def as_dict(self) -> dict:
        return asdict(self)
