"""/proc/PID/maps snapshots: which mapping an address falls into.

Under valgrind the guest program runs inside valgrind's own process, so /proc/<valgrind pid>/maps
lists the guest's mappings and valgrind's. The tool binary itself (valgrind's `<tool>-<arch>-linux`
under a `valgrind/` directory) is excluded: guest addresses never fall into it. Valgrind's own
anonymous regions cannot be told from the guest's in /proc; the guest's accesses simply never land
in them, so leaving them in the table changes nothing.
"""

from __future__ import annotations

import os
import time

import numpy as np

# what a mapping is
M_ANON = 0         # anonymous, heap, stack, or a file-less special mapping
M_FILE = 1         # a file mapping read through the page cache (shared, or private and read-only)
M_FILE_COW = 2     # a private writable file mapping: its pages are anonymous copies once written
M_SKIP = 3         # [vdso], [vvar], [vsyscall], valgrind's own binary: not reclaimable, dropped

_SPECIAL = ("[vdso]", "[vvar]", "[vsyscall]")


class MapsSnapshot:
    """Sorted arrays of one maps file: start, end, offset (bytes), what (M_*), exec and private
    flags; `file_key` the (dev, inode) and `path` the path of each mapping."""

    def __init__(self, rows: list[tuple]):
        rows = sorted(rows)
        self.start = np.array([r[0] for r in rows], dtype=np.uint64)
        self.end = np.array([r[1] for r in rows], dtype=np.uint64)
        self.offset = np.array([r[2] for r in rows], dtype=np.uint64)
        self.what = np.array([r[3] for r in rows], dtype=np.uint8)
        self.exec = np.array([r[4] for r in rows], dtype=bool)
        self.private = np.array([r[7] for r in rows], dtype=bool)
        self.file_key = [r[5] for r in rows]
        self.path = [r[6] for r in rows]

    def __len__(self) -> int:
        return len(self.start)

    def lookup(self, addr: np.ndarray) -> np.ndarray:
        """Index of the mapping holding each address, -1 where none does."""
        if len(self.start) == 0:
            return np.full(len(addr), -1, dtype=np.int64)
        i = np.searchsorted(self.start, addr, side="right").astype(np.int64) - 1
        ic = np.maximum(i, 0)
        return np.where((i >= 0) & (addr < self.end[ic]), i, -1)


def _is_valgrind_binary(path: str) -> bool:
    return "/valgrind/" in path and path.rsplit("/", 1)[-1].endswith("-linux") and "vgpreload" not in path


def parse_maps(text: str) -> MapsSnapshot:
    """Parse the text of /proc/PID/maps: `start-end perms offset major:minor inode [path]`."""
    rows = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5:
            continue
        lo, _, hi = parts[0].partition("-")
        perms, off, dev, inode = parts[1], parts[2], parts[3], int(parts[4])
        path = parts[5].strip() if len(parts) > 5 else ""
        start, end = int(lo, 16), int(hi, 16)
        maj, _, mnr = dev.partition(":")
        key = (os.makedev(int(maj, 16), int(mnr, 16)), inode)
        if path in _SPECIAL or _is_valgrind_binary(path):
            what = M_SKIP
        elif inode != 0 and path.startswith("/") and not path.startswith("/dev/"):
            what = M_FILE_COW if (perms[3] == "p" and perms[1] == "w") else M_FILE
        else:
            what, key = M_ANON, None
        rows.append((start, end, int(off, 16), what, perms[2] == "x", key, path, perms[3] == "p"))
    return MapsSnapshot(rows)


class MapsTracker:
    """The current mappings of a live process: re-read at most every `period` seconds, and on
    demand when an address falls outside every known mapping (the process mapped something new).
    Once the process is gone the last snapshot stays."""

    def __init__(self, pid: int, period: float = 0.1, reader=None):
        self.pid = pid
        self.period = period
        self.reader = reader or self._read
        self.snap = MapsSnapshot([])
        self.t = -1e9
        self.reads = 0
        self.refresh()

    def _read(self) -> str | None:
        try:
            with open(f"/proc/{self.pid}/maps") as f:
                return f.read()
        except OSError:
            return None

    def refresh(self) -> bool:
        text = self.reader()
        self.t = time.monotonic()
        if not text:  # gone, or a zombie (its maps read empty): keep the last snapshot
            return False
        self.reads += 1
        self.snap = parse_maps(text)
        return True

    def lookup(self, addr: np.ndarray) -> tuple[MapsSnapshot, np.ndarray]:
        if time.monotonic() - self.t > self.period:
            self.refresh()
        idx = self.snap.lookup(addr)
        if (idx < 0).any() and self.refresh():
            idx = self.snap.lookup(addr)
        return self.snap, idx
