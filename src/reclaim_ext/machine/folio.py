"""The folio table and the page tables, as struct-of-arrays (one numpy array per field).

A folio is one 4 KiB page in this version. Every page the trace ever names gets a dense page id
for the whole run; whether it is in memory right now is the PG_resident bit (a simulator flag, not
a kernel one). A non-resident page may carry a shadow entry (machine/pagecache view: the page cache
slot or swap-cache slot of an evicted folio).
"""

from __future__ import annotations

import numpy as np

# Folio flags (kernel names; PG_resident is the simulator's "folio exists").
PG_referenced = 1 << 0
PG_active = 1 << 1
PG_workingset = 1 << 2
PG_dirty = 1 << 3
PG_writeback = 1 << 4
PG_reclaim = 1 << 5
PG_swapbacked = 1 << 6
PG_swapcache = 1 << 7
PG_unevictable = 1 << 8
PG_mlocked = 1 << 9
PG_lru = 1 << 10
PG_resident = 1 << 11

FLAG_NAMES = {
    PG_referenced: "referenced", PG_active: "active", PG_workingset: "workingset",
    PG_dirty: "dirty", PG_writeback: "writeback", PG_reclaim: "reclaim",
    PG_swapbacked: "swapbacked", PG_swapcache: "swapcache", PG_unevictable: "unevictable",
    PG_mlocked: "mlocked", PG_lru: "lru", PG_resident: "resident",
}

LRU_ANON = 0
LRU_FILE = 1
TYPE_NAMES = ("anon", "file")
NO_LIST = -1


class GrowableTable:
    """Struct-of-arrays whose rows are dense ids; fields grow together by doubling."""

    def __init__(self, fields: dict[str, tuple[np.dtype, int]], capacity: int = 1024):
        self._spec = dict(fields)
        self.capacity = capacity
        self.count = 0
        for name, (dtype, fill) in self._spec.items():
            setattr(self, name, np.full(capacity, fill, dtype=dtype))

    def add_field(self, name: str, dtype, fill) -> np.ndarray:
        """A new per-row array (e.g. a policy's private per-folio state)."""
        if name in self._spec:
            arr = getattr(self, name)
            arr[:] = fill
            return arr
        self._spec[name] = (np.dtype(dtype), fill)
        setattr(self, name, np.full(self.capacity, fill, dtype=dtype))
        return getattr(self, name)

    def ensure(self, count: int) -> None:
        """Make room for ids < count."""
        if count > self.capacity:
            cap = self.capacity
            while cap < count:
                cap *= 2
            for name, (dtype, fill) in self._spec.items():
                old = getattr(self, name)
                new = np.full(cap, fill, dtype=dtype)
                new[: self.capacity] = old
                setattr(self, name, new)
            self.capacity = cap
        self.count = max(self.count, count)


class FolioTable(GrowableTable):
    """Per-page state. `lru` is the list index (type * nr_classes + class) or NO_LIST; `stamp` is
    the insertion stamp that makes the folio's slot on that list valid (lazy deletion)."""

    def __init__(self, capacity: int = 1024):
        super().__init__(
            {
                "flags": (np.dtype(np.uint16), 0),
                "lru": (np.dtype(np.int8), NO_LIST),
                "stamp": (np.dtype(np.int64), -1),
                "type": (np.dtype(np.uint8), 0),
                "memcg": (np.dtype(np.int16), 0),
                "nid": (np.dtype(np.int8), 0),           # the node its page is on (folio_nid)
                "pte_head": (np.dtype(np.int64), -1),
                "shadow": (np.dtype(np.int64), -1),      # eviction token, -1 = no shadow
                "shadow_ws": (np.dtype(np.bool_), False),  # workingset bit of the shadow
                "shadow_memcg": (np.dtype(np.int16), 0),
                "ever": (np.dtype(np.bool_), False),     # has been resident once (anon: swapped out)
                "swap_memcg": (np.dtype(np.int16), -1),  # memcg charged for its swap slot (swap_cgroup), -1: none
                "swap_type": (np.dtype(np.int8), -1),    # the device of its slot (swp_type of its entry), -1: none
            },
            capacity,
        )


class PteTable(GrowableTable):
    """Per-mapping state: one row per (process, virtual page) that the trace maps.

    `next` chains the PTEs that map the same page (the reverse map), `pmd` is the PTE table (vaddr
    >> 9) the entry lives in.
    """

    def __init__(self, capacity: int = 1024):
        super().__init__(
            {
                "page": (np.dtype(np.int64), -1),
                "pid": (np.dtype(np.uint16), 0),
                "vaddr": (np.dtype(np.uint64), 0),
                "present": (np.dtype(np.bool_), False),
                "young": (np.dtype(np.bool_), False),
                "exec": (np.dtype(np.bool_), False),
                "next": (np.dtype(np.int64), -1),
                "pmd": (np.dtype(np.int64), -1),
                "prot_numa": (np.dtype(np.bool_), False),  # made PROT_NONE by NUMA balancing's scan
            },
            capacity,
        )


class PmdTable(GrowableTable):
    """Per PTE table (the 512 PTEs one PMD entry points to): owner, first virtual page / 512, and
    the non-leaf accessed bit the hardware sets on any access through it (x86)."""

    def __init__(self, capacity: int = 1024):
        super().__init__(
            {
                "pid": (np.dtype(np.uint16), 0),
                "index": (np.dtype(np.uint64), 0),  # vaddr >> 9
                "young": (np.dtype(np.bool_), False),
            },
            capacity,
        )
