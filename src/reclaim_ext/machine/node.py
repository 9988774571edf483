"""Nodes, zones' watermarks, memcgs and devices: the simulated hardware and accounting state."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from numba import njit

from ..errors import ConfigError


@njit(cache=True)
def zram_pool(used, ratio_milli):
    """Pages of the node's memory zram's pool takes for `used` stored pages at the compression
    ratio `ratio_milli` / 1000 (0: not modelled): ceil(used / ratio). Called by the compiled
    swap paths and from Python alike."""
    if ratio_milli <= 0:
        return 0
    return (used * 1000 + ratio_milli - 1) // ratio_milli


@njit(cache=True)
def zram_pool_growth(used_before, used_after, ratio_milli):
    """Node pages zram's pool takes (negative: gives back) when its stored pages go from
    `used_before` to `used_after`."""
    return zram_pool(used_after, ratio_milli) - zram_pool(used_before, ratio_milli)


def default_min_free_kbytes(lowmem_pages: int) -> int:
    """calculate_min_free_kbytes: isqrt(lowmem_kbytes * 16) clamped to [128, 262144]."""
    lowmem_kbytes = lowmem_pages * 4
    return min(max(math.isqrt(lowmem_kbytes * 16), 128), 262144)


@dataclass(frozen=True)
class Watermarks:
    min: int
    low: int
    high: int
    promo: int


def compute_watermarks(managed: int, min_free_kbytes: int, watermark_scale_factor: int,
                       lowmem_pages: int | None = None) -> Watermarks:
    """__setup_per_zone_wmarks for a normal zone of `managed` pages out of `lowmem_pages` (all
    the nodes' zones; default: this zone holds all of lowmem): min is the zone's proportional
    share of min_free_kbytes."""
    pages_min = min_free_kbytes // 4
    wmark_min = pages_min * managed // (lowmem_pages or managed)
    delta = max(wmark_min // 4, managed * watermark_scale_factor // 10000)
    low = wmark_min + delta
    high = low + delta
    return Watermarks(min=wmark_min, low=low, high=high, promo=high + delta)


@dataclass
class Node:
    """A NUMA node with one zone (ZONE_NORMAL). `free` counts free base pages."""

    nid: int
    managed: int
    wmark: Watermarks
    free: int = 0
    kswapd_failures: int = 0
    dirty_flag: bool = False      # PGDAT_DIRTY
    writeback_flag: bool = False  # PGDAT_WRITEBACK
    priv: dict = field(default_factory=dict)  # a policy's per-node state (MGLRU: the memcg LRU)
    # the node's own events (/sys/devices/system/node/nodeN/vmstat and numastat): allocations,
    # NUMA hits and misses, kswapd's wakeups and runs (the engine adds the per-lruvec ones)
    vm: Counter = field(default_factory=Counter)
    tier: str = "dram"  # its memory tier (machine.numa.TIERS)

    def __post_init__(self) -> None:
        self.free = self.managed


SWAP_DEVICES = ("zram", "disk")


def check_swap_device(kind: str) -> str:
    """A swap device kind (SWAP_DEVICES)."""
    if kind not in SWAP_DEVICES:
        raise ConfigError(f"swap_device: {kind!r} is not one of {', '.join(SWAP_DEVICES)}")
    return kind


def check_zram_ratio(ratio: float, kind: str = "zram") -> float:
    """A zram compression ratio: 0 (memory not modelled) or at least 1, and zram's only."""
    if not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or not (ratio == 0 or 1 <= ratio < 1e6):
        raise ConfigError(f"zram_ratio: {ratio!r} is not 0 (not modelled) or a ratio of at least 1")
    if ratio and kind != "zram":
        raise ConfigError(f"zram_ratio: the swap device is {kind}, not zram")
    return float(ratio)


# (read, write) latency of one page in µs: zram (de)compression; a disk swap partition or file on
# NVMe (a random 4 KiB read; writes go out in clusters)
SWAP_LATENCY_US = {"zram": (15.0, 10.0), "disk": (80.0, 20.0)}


@dataclass
class SwapDevice:
    """The swap device. Swap-out completes inside reclaim on both kinds. `kind`:

    * "zram" (SWP_SYNCHRONOUS_IO): swap-in bypasses the swap cache and frees the slot
      (do_swap_page's skip-swapcache path);
    * "disk": swap-in goes through the swap cache, and a read fault leaves the folio there with
      its slot (PG_swapcache) unless swap is more than half full (mem_cgroup_swap_full); a
      write fault frees it. Reclaiming such a folio again writes it only if it was written.

    The latencies price swap I/O in the modelled runtime."""

    total: int
    used: int = 0
    kind: str = "zram"
    # zram's compression ratio: the pages it stores take ceil(used / ratio) pages of the node's
    # memory (zsmalloc's pool, not charged to a memcg); 0: its memory is not modelled
    ratio: float = 0.0
    read_latency_us: float | None = None   # swap-in of one page (None: the kind's default)
    write_latency_us: float | None = None  # swap-out of one page

    def __post_init__(self) -> None:
        check_swap_device(self.kind)
        check_zram_ratio(self.ratio, self.kind)
        r, w = SWAP_LATENCY_US[self.kind]
        if self.read_latency_us is None:
            self.read_latency_us = r
        if self.write_latency_us is None:
            self.write_latency_us = w

    @property
    def free(self) -> int:
        return self.total - self.used

    @property
    def ratio_milli(self) -> int:
        """The compression ratio in thousandths, as the compiled paths take it (0: not modelled)."""
        return round(self.ratio * 1000)

    @property
    def pool_pages(self) -> int:
        """The node pages zram's compressed store takes now."""
        return int(zram_pool(self.used, self.ratio_milli))

    @property
    def keeps_cache(self) -> bool:
        """Whether swapped-in folios stay in the swap cache with their slots (a disk)."""
        return self.kind == "disk"


@dataclass
class StorageDevice:
    """The block device behind file pages: read latency per page and writeback bandwidth."""

    read_latency_us: float = 80.0                                   # NVMe random 4 KiB read
    write_bandwidth_pages_per_s: float = 1024 * 1024 * 1024 / 4096  # 1 GiB/s sequential writeback


PAGE_COUNTER_MAX = 1 << 62  # memory.max "max"


@dataclass(eq=False)
class Memcg:
    """A memory cgroup: a node of the memcg tree (the root has parent None). `usage` is the
    hierarchical page_counter (a charge counts on the memcg and every ancestor), `max` is
    memory.max in pages, `events` the memory.events counters (low, high, max, oom, oom_kill) of this memcg
    alone (memory.events.local; the result sums them over the subtree as memory.events does)."""

    id: int
    name: str = "/"
    parent: "Memcg | None" = None
    children: list["Memcg"] = field(default_factory=list)
    usage: int = 0
    max: int = PAGE_COUNTER_MAX
    high: int = PAGE_COUNTER_MAX  # memory.high: reclaim and throttling above it (mem_cgroup_handle_over_high)
    swap_max: int = PAGE_COUNTER_MAX  # memory.swap.max: swap slots its subtree may hold (usage: Simulator.swap_usage)
    min: int = 0  # memory.min: hard protection from reclaim (mem_cgroup_below_min)
    low: int = 0  # memory.low: protection while others have reclaimable memory (mem_cgroup_below_low)
    peak: int = 0                  # memory.peak: the highest usage seen
    swappiness: int | None = None  # cgroup v1 per-memcg swappiness; None = use vm.swappiness
    lruvecs: dict = field(default_factory=dict)  # nid -> core.lru.Lruvec
    events: dict = field(default_factory=lambda: {"low": 0, "high": 0, "max": 0, "oom": 0, "oom_kill": 0})
    reclaim_iter: dict = field(default_factory=dict)  # nid -> memcg visited last (mem_cgroup_reclaim_iter)

    @property
    def path(self) -> str:
        """The cgroup path ("/" for the root, "/a/b" below it)."""
        return "/" if self.parent is None else "/" + self.name

    def ancestors(self):
        """This memcg and every ancestor up to the root (mem_cgroup_iter towards the root)."""
        m = self
        while m is not None:
            yield m
            m = m.parent

    def subtree(self):
        """This memcg and every descendant, pre-order (css_next_descendant_pre)."""
        stack = [self]
        while stack:
            m = stack.pop()
            yield m
            stack.extend(reversed(m.children))

    def margin(self) -> int:
        """mem_cgroup_margin: pages this memcg can still be charged (its own counter only)."""
        return max(self.max - self.usage, 0)


def check_swappiness(value: int) -> int:
    if not 0 <= value <= 200:
        raise ConfigError(f"swappiness: {value} is out of range 0..200")
    return value
