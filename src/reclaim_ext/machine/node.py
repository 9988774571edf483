"""Nodes, zones' watermarks, memcgs and devices: the simulated hardware and accounting state."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from ..errors import ConfigError
from ..jit import noref


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

    @classmethod
    def of(cls, wmin: int, low: int, high: int) -> "Watermarks":
        """A zone's min, low and high, and WMARK_PROMO one step (high - low) above high, as
        __setup_per_zone_wmarks sets it."""
        return cls(min=int(wmin), low=int(low), high=int(high), promo=int(high) + int(high) - int(low))


def compute_watermarks(managed: int, min_free_kbytes: int, watermark_scale_factor: int,
                       lowmem_pages: int | None = None) -> Watermarks:
    """__setup_per_zone_wmarks for a normal zone of `managed` pages out of `lowmem_pages` (all
    the nodes' zones; default: this zone holds all of lowmem): min is the zone's proportional
    share of min_free_kbytes."""
    pages_min = min_free_kbytes // 4
    wmark_min = pages_min * managed // (lowmem_pages or managed)
    delta = max(wmark_min // 4, managed * watermark_scale_factor // 10000)
    low = wmark_min + delta
    return Watermarks.of(wmark_min, low, low + delta)


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
    """One swap device (a swap_info_struct). Swap-out completes inside reclaim on both kinds. `kind`:

    * "zram" (SWP_SYNCHRONOUS_IO): swap-in bypasses the swap cache and frees the slot
      (do_swap_page's skip-swapcache path);
    * "disk": swap-in goes through the swap cache, and a read fault leaves the folio there with
      its slot (PG_swapcache) unless swap is more than half full (mem_cgroup_swap_full); a
      write fault frees it. Reclaiming such a folio again writes it only if it was written.

    `priority` is swapon's (-p): slots come from the highest-priority device with room, devices
    of equal priority in turn; None takes swapon's default, below every device before it (-2,
    -3, ...). The latencies price swap I/O in the modelled runtime."""

    total: int
    kind: str = "zram"
    # zram's compression ratio: the pages it stores take ceil(used / ratio) pages of the node's
    # memory (zsmalloc's pool, not charged to a memcg); 0: its memory is not modelled
    ratio: float = 0.0
    priority: int | None = None
    read_latency_us: float | None = None   # swap-in of one page (None: the kind's default)
    write_latency_us: float | None = None  # swap-out of one page

    def __post_init__(self) -> None:
        check_swap_device(self.kind)
        check_zram_ratio(self.ratio, self.kind)
        if self.total < 0:
            raise ConfigError(f"size: {self.total} pages is negative")
        if self.priority is not None and (isinstance(self.priority, bool) or not isinstance(self.priority, int)
                                          or not 0 <= self.priority <= 32767):
            raise ConfigError(f"prio: {self.priority!r} is not an integer from 0 to 32767 (swapon -p; leave it out "
                              "for the default)")
        r, w = SWAP_LATENCY_US[self.kind]
        if self.read_latency_us is None:
            self.read_latency_us = r
        if self.write_latency_us is None:
            self.write_latency_us = w

    @property
    def ratio_milli(self) -> int:
        """The compression ratio in thousandths, as the compiled paths take it (0: not modelled)."""
        return round(self.ratio * 1000)

    @property
    def keeps_cache(self) -> bool:
        """Whether swapped-in folios stay in the swap cache with their slots (a disk)."""
        return self.kind == "disk"


SWAPON_KEYS = ("kind", "size", "prio", "ratio")


def parse_swapon(spec, what: str = "--swapon") -> SwapDevice:
    """One swap device: `kind=zram,size=64MiB[,prio=100][,ratio=3]` (--swapon; a machine file's
    [[swap_device]] table gives the same keys as a dict). kind zram or disk, size as --swap,
    prio swapon's -p (default: below the devices before it), ratio zram's compression ratio."""
    from .units import parse_size

    if isinstance(spec, str):
        what = f"{what} {spec!r}"
        fields = {}
        for item in spec.split(","):
            k, sep, v = item.strip().partition("=")
            if not sep or k not in SWAPON_KEYS:
                raise ConfigError(f"{what}: {item.strip()!r} is not one of {', '.join(k + '=' for k in SWAPON_KEYS)} "
                                  "(e.g. kind=zram,size=64MiB,prio=100)")
            if k in fields:
                raise ConfigError(f"{what}: {k}= given twice")
            fields[k] = v
    else:
        fields = dict(spec)
        unknown = [k for k in fields if k not in SWAPON_KEYS]
        if unknown:
            raise ConfigError(f"{what}: unknown key {unknown[0]!r} (keys: {', '.join(SWAPON_KEYS)})")
    try:
        kind = check_swap_device(str(fields.get("kind", "zram")))
    except ConfigError as e:
        raise ConfigError(f"{what}: {e}") from None
    if "size" not in fields:
        raise ConfigError(f"{what}: needs a size (e.g. kind=disk,size=1GiB)")
    try:
        prio = fields.get("prio")
        if isinstance(prio, str):
            try:
                prio = int(prio)
            except ValueError:
                pass  # not an integer: SwapDevice says so
        ratio = fields.get("ratio", 0.0)
        if isinstance(ratio, str):
            try:
                ratio = float(ratio)
            except ValueError:
                raise ConfigError(f"ratio={ratio!r} is not a number") from None
        try:
            check_zram_ratio(ratio, kind)
        except ConfigError as e:  # the key here is ratio
            raise ConfigError("ratio" + str(e).removeprefix("zram_ratio")) from None
        return SwapDevice(total=parse_size(fields["size"], "size"), kind=kind, ratio=ratio,
                          priority=prio)
    except ConfigError as e:
        raise ConfigError(f"{what}: {e}") from None


# the columns of Swap.table, one row per device (the compiled swap paths' view of swap_info[]):
# slots used and in all, priority, zram's ratio in thousandths (0: its memory not modelled),
# SWP_SYNCHRONOUS_IO (zram: swap-in skips the swap cache), the device's place among equal
# priorities (plist_requeue's order: lower goes first), and its swap-ins and swap-outs
SWP_USED, SWP_TOTAL, SWP_PRIO, SWP_RATIO, SWP_SYNC, SWP_QUEUE, SWP_IN, SWP_OUT = range(8)
# the last row of Swap.table: the CPU's swap slots cache (mm/swap_slots.c): the device its slots
# are from (-1: none), how many are left, and the clock that orders plist_requeue
SC_DEV, SC_LEFT, SC_CLOCK = range(3)
# SWAP_SLOTS_CACHE_SIZE: get_swap_pages refills the cache with this many slots of one device
SWAP_BATCH = 64


@noref
def swap_used_add(sw, d, n):
    """Device d's used slots change by n (sw: Swap.table). Returns the node pages its zram pool
    takes (negative: gives back) for that."""
    before = sw[d, SWP_USED]
    sw[d, SWP_USED] = before + n
    return zram_pool_growth(before, before + n, sw[d, SWP_RATIO])


@noref
def folio_alloc_swap(sw):
    """The device of a new swap slot for a folio (folio_alloc_swap through the swap slots
    cache, as in 6.12): the cache's device while it has slots left, else get_swap_pages refills
    it with up to SWAP_BATCH slots of the highest-priority device with free slots, devices of
    equal priority in turn (plist_requeue moves the one taken behind its equals). The slot is
    not taken here: the caller charges it (swap_used_add) once memory.swap.max allows.
    Returns -1 when every device is full."""
    nd = len(sw) - 1
    c = sw[nd]
    d = c[SC_DEV]
    if d >= 0 and c[SC_LEFT] > 0 and sw[d, SWP_USED] < sw[d, SWP_TOTAL]:
        c[SC_LEFT] -= 1
        return d
    best = -1
    for k in range(nd):
        if sw[k, SWP_USED] >= sw[k, SWP_TOTAL]:
            continue
        if best < 0 or sw[k, SWP_PRIO] > sw[best, SWP_PRIO] or (
                sw[k, SWP_PRIO] == sw[best, SWP_PRIO] and sw[k, SWP_QUEUE] < sw[best, SWP_QUEUE]):
            best = k
    c[SC_DEV] = best
    if best < 0:
        return -1
    c[SC_CLOCK] += 1
    sw[best, SWP_QUEUE] = c[SC_CLOCK]
    c[SC_LEFT] = min(SWAP_BATCH, sw[best, SWP_TOTAL] - sw[best, SWP_USED]) - 1
    return best


class Swap:
    """The machine's swap: its devices in swapon order (swap_info[]) and their state in one
    array the compiled paths share (`table`: a row per device, columns SWP_*, and a last row for
    the swap slots cache, SC_*). A folio's slot is on device `FolioTable.swap_type`."""

    def __init__(self, devices: list[SwapDevice]):
        if not devices:
            raise ConfigError("swap: no swap device")
        self.devices = list(devices)
        t = np.zeros((len(devices) + 1, 8), dtype=np.int64)
        prio = -1  # swapon's least_priority (setup_swap_info): a device without -p goes below every one before it
        for i, dev in enumerate(self.devices):
            if dev.priority is None:
                prio -= 1
            t[i, SWP_TOTAL] = dev.total
            t[i, SWP_PRIO] = prio if dev.priority is None else dev.priority
            t[i, SWP_RATIO] = dev.ratio_milli
            t[i, SWP_SYNC] = not dev.keeps_cache
            t[i, SWP_QUEUE] = i - len(devices)  # swapon order among equal priorities
        t[len(devices), SC_DEV] = -1
        self.table = t
        # read per reclaim batch and per stretch of accesses: the sizes are fixed, and one device's
        # used slots are one element
        self._total = int(t[:-1, SWP_TOTAL].sum())
        self._used_col = t[:-1, SWP_USED]

    @property
    def rows(self) -> np.ndarray:
        return self.table[:-1]

    @property
    def used(self) -> int:
        return int(self.table[0, SWP_USED]) if len(self.devices) == 1 else int(self._used_col.sum())

    @used.setter
    def used(self, n: int) -> None:
        """Set the used slots of the only device (tests that break the accounting on purpose)."""
        if len(self.devices) != 1:
            raise ValueError("swap.used: several devices; set table[d, SWP_USED]")
        self.table[0, SWP_USED] = n

    @property
    def total(self) -> int:
        return self._total

    @property
    def free(self) -> int:
        return self.total - self.used

    @property
    def keeps_cache(self) -> bool:
        """Whether any device keeps swapped-in folios in the swap cache (a disk)."""
        return any(d.keeps_cache for d in self.devices)

    @property
    def kind(self) -> str:
        """The devices' kinds in swapon order, joined by + (zram, disk, zram+disk)."""
        return "+".join(d.kind for d in self.devices)

    @property
    def ratio(self) -> float:
        """zram's compression ratio (the first zram device's; 0: none modelled)."""
        return next((d.ratio for d in self.devices if d.ratio), 0.0)

    @property
    def pool_pages(self) -> int:
        """The node pages zram's compressed stores take now."""
        return sum(int(zram_pool(u, r)) for u, r in self.rows[:, [SWP_USED, SWP_RATIO]].tolist())

    @property
    def read_latency_us(self) -> float:
        """The mean swap-in latency: over the swap-ins so far, else the first device's."""
        n = self.rows[:, SWP_IN]
        if n.sum() == 0:
            return self.devices[0].read_latency_us
        return float(sum(k * d.read_latency_us for k, d in zip(n.tolist(), self.devices)) / n.sum())

    def io_us(self) -> float:
        """Swap I/O in µs: each device's swap-ins and swap-outs at its latencies."""
        return sum(i * d.read_latency_us + o * d.write_latency_us
                   for (i, o), d in zip(self.rows[:, [SWP_IN, SWP_OUT]].tolist(), self.devices))

    def describe(self) -> list[dict]:
        """Each device as the result reports it (as /proc/swaps: kind, size, used, priority)."""
        return [{"kind": d.kind, "size_pages": int(r[SWP_TOTAL]), "used_pages": int(r[SWP_USED]),
                 "priority": int(r[SWP_PRIO]), "zram_ratio": d.ratio,
                 "zram_pool_pages": int(zram_pool(int(r[SWP_USED]), int(r[SWP_RATIO]))),
                 "pswpin": int(r[SWP_IN]), "pswpout": int(r[SWP_OUT])}
                for d, r in zip(self.devices, self.rows)]


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
