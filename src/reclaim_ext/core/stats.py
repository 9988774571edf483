"""Counters with kernel vmstat names, cost counters, and the cost model that turns them into time."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .memcontrol import HZ

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
    "numa_hit", "numa_miss", "numa_foreign",  # zone_statistics (per node in the result's nodes)
    "pgdemote_kswapd", "pgdemote_direct", "pgmigrate_success",  # demotion to a lower memory tier
    # NUMA balancing's memory tiering mode: hint faults, promotion to the top tier
    "numa_hint_faults", "numa_pages_migrated", "pgpromote_success", "pgpromote_candidate",
)

# Work counters that the cost model prices (not in /proc/vmstat).
COST_NAMES = (
    "hits", "minor_faults", "major_faults", "file_reads", "swap_ins", "swap_outs", "file_writes",
    "pages_scanned", "rmap_walks", "ptes_checked", "lru_lock_ops", "atomic_updates",
    "ptes_walked", "pmd_tables_skipped",  # page-table walks and lookaround (core.ptwalk)
    "high_delay_jiffies",  # tasks throttled above memory.high (mem_cgroup_handle_over_high)
    "hits_cxl", "hits_pmem",  # the hits that found their page on a node of a slower tier
    "pages_migrated",  # folios copied to another node (demotion: migrate_pages)
)


def si_mem_available(free: int, file_pages: int, wmark_low: int, wmark_high: int) -> int:
    """MemAvailable of /proc/meminfo (si_mem_available, mm/show_mem.c) on the model's one zone: the
    free pages above the reserve (calculate_totalreserve_pages: the high watermark, as one zone has
    no lowmem reserve), plus the page cache less what the low watermark would keep of it (at most
    half). The model has no reclaimable slab or other kernel memory to add."""
    available = free - wmark_high
    available += file_pages - min(file_pages // 2, wmark_low)
    return max(available, 0)


def new_vmstat() -> dict[str, int]:
    return dict.fromkeys(VMSTAT_NAMES, 0)


def new_cost() -> dict[str, int]:
    return dict.fromkeys(COST_NAMES, 0)


@dataclass
class CostModel:
    """CPU nanoseconds charged per unit of work. Round numbers for a current x86 server; they only
    scale `modeled_seconds`, never a decision. Device I/O is priced by the devices themselves
    (machine.node.Swap's devices, StorageDevice)."""

    hit_ns: float = 5.0               # a cached access (TLB/cache effects ignored)
    minor_fault_ns: float = 700.0     # page fault that maps a page already in memory / zero-fills
    major_fault_ns: float = 1500.0    # CPU side of a fault that waits for I/O
    page_scan_ns: float = 60.0        # isolate + inspect one folio in shrink_folio_list
    rmap_walk_ns: float = 250.0       # one folio_referenced rmap walk (locks, VMA tree)
    pte_check_ns: float = 20.0        # test-and-clear one PTE young bit
    lru_lock_ns: float = 40.0         # one LRU-lock acquisition / list operation batch
    atomic_update_ns: float = 10.0    # one compare-and-swap on a folio's flags (lock-free aging)
    pte_walk_ns: float = 5.0          # one PTE of a sequential page-table scan (walk, lookaround)
    cxl_hit_ns: float = 50.0          # extra for an access to a page on a CXL node (a slower tier)
    pmem_hit_ns: float = 150.0        # extra for an access to a page on a PMEM node
    page_migrate_ns: float = 1500.0   # migrate one folio: unmap, copy 4 KiB, remap (migrate_pages)

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
            + cost.get("hits_cxl", 0) * self.cxl_hit_ns
            + cost.get("hits_pmem", 0) * self.pmem_hit_ns
            + cost.get("pages_migrated", 0) * self.page_migrate_ns
        )
        io_us = (
            cost["file_reads"] * storage.read_latency_us
            + swap.io_us()  # each device's swap-ins and swap-outs (machine.node.Swap)
        )
        return (ns * 1e-9 + io_us * 1e-6 + cost["file_writes"] / storage.write_bandwidth_pages_per_s
                + cost.get("high_delay_jiffies", 0) / HZ)

    def as_dict(self) -> dict:
        return asdict(self)


def vmstat_problems(v: dict, misses: int, cost: dict, swapcache: bool = False, demoted=(0, 0),
                    dropped=(0, 0)) -> list[str]:
    """The identities between vmstat counters (and the cost counters of device I/O) that this
    model keeps, each broken one named: reclaim is counted by source and by type together
    (core.vmscan.count_reclaim), pages enter memory only by allocation and leave it only by
    reclaim, a reclaimed anon folio goes to the swap device (every one with zram; with a disk
    (`swapcache`) a clean one in the swap cache is dropped unwritten) and comes back by a fault,
    and activations and restores are refaults. A demoted folio (`demoted`: anon, file) counts as
    reclaimed and freed on its node, and allocated on the lower tier's. A swap-in whose shadow
    was another lruvec's (`dropped`: anon, file; lru_gen_refault's rule) counts no refault."""
    out = []
    for ev in ("pgscan", "pgsteal"):
        by_src, by_type = v[ev + "_kswapd"] + v[ev + "_direct"], v[ev + "_anon"] + v[ev + "_file"]
        if by_src != by_type:
            out.append(f"{ev}_kswapd + {ev}_direct = {by_src} != {ev}_anon + {ev}_file = {by_type}")
    for part in ("kswapd", "direct", "anon", "file"):
        if v["pgsteal_" + part] > v["pgscan_" + part]:
            out.append(f"pgsteal_{part} {v['pgsteal_' + part]} > pgscan_{part} {v['pgscan_' + part]}")
    steal = v["pgsteal_kswapd"] + v["pgsteal_direct"]
    if v["pgfree"] != steal + v["pgpromote_success"]:
        out.append(f"pgfree {v['pgfree']} != pgsteal {steal} + pgpromote_success {v['pgpromote_success']} "
                   "(pages are freed only by reclaim and by promotion's migration)")
    if v["pgalloc_normal"] != misses + v["pgmigrate_success"]:
        out.append(f"pgalloc_normal {v['pgalloc_normal']} != misses {misses} + pgmigrate_success "
                   f"{v['pgmigrate_success']}")
    if v["pgdemote_kswapd"] + v["pgdemote_direct"] != sum(demoted):
        out.append(f"pgdemote_kswapd + pgdemote_direct != {sum(demoted)} folios demoted")
    swapped = v["pgsteal_anon"] - demoted[0]
    if v["pswpout"] > swapped or (not swapcache and v["pswpout"] != swapped):
        out.append(f"pswpout {v['pswpout']} != pgsteal_anon {v['pgsteal_anon']} - {demoted[0]} demoted")
    if v["pswpin"] != v["workingset_refault_anon"] + dropped[0]:
        out.append(f"pswpin {v['pswpin']} != workingset_refault_anon {v['workingset_refault_anon']}"
                   + (f" + {dropped[0]} shadows of another lruvec" if dropped[0] else ""))
    for name in ("anon", "file"):
        if v["workingset_refault_" + name] > v["pgsteal_" + name]:
            out.append(f"workingset_refault_{name} {v['workingset_refault_' + name]} > "
                       f"pgsteal_{name} {v['pgsteal_' + name]}")
        for w in ("activate", "restore"):  # MGLRU may restore without activating (lru_gen_refault)
            if v[f"workingset_{w}_{name}"] > v["workingset_refault_" + name]:
                out.append(f"workingset_{w}_{name} {v[f'workingset_{w}_{name}']} > "
                           f"workingset_refault_{name} {v['workingset_refault_' + name]}")
    if v["pgmajfault"] > v["pgfault"]:
        out.append(f"pgmajfault {v['pgmajfault']} > pgfault {v['pgfault']}")
    if v["pswpin"] > v["pgmajfault"]:
        out.append(f"pswpin {v['pswpin']} > pgmajfault {v['pgmajfault']} (anon pages come back by faults)")
    if v["pgpgin"] != 4 * (v["pswpin"] + cost["file_reads"]):
        out.append(f"pgpgin {v['pgpgin']} != 4 * (pswpin {v['pswpin']} + file reads {cost['file_reads']})")
    if v["pgpgout"] != 4 * (v["pswpout"] + cost["file_writes"]):
        out.append(f"pgpgout {v['pgpgout']} != 4 * (pswpout {v['pswpout']} + file writes {cost['file_writes']})")
    return out
