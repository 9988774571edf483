"""Memory accesses (lackey ops and addresses) + the process's mappings -> trace records."""

from __future__ import annotations

import os

import numpy as np

from ..trace.record import MAX_PID, RECORD_DTYPE, Kind
from .lackey import OP_I, OP_M, OP_S
from .maps import M_ANON, M_FILE, M_SKIP, MapsSnapshot

PAGE_SHIFT = 12
PAGE = 1 << PAGE_SHIFT


class PidIds:
    """Real pids -> the trace's u16 pids, dense in order of first appearance (0, 1, ...)."""

    def __init__(self):
        self.ids: dict[int, int] = {}

    def __call__(self, pid: int) -> int:
        if pid not in self.ids:
            if len(self.ids) > MAX_PID:
                raise OverflowError("more than 65536 processes")
            self.ids[pid] = len(self.ids)
        return self.ids[pid]


class FileIds:
    """Files -> the trace's u32 file ids, dense from 1 in order of first appearance. A file is
    keyed by (st_dev, st_ino), so one file reached by two paths, two processes or both mmap and
    read() is one file; `names` keeps the first path seen for each id."""

    def __init__(self):
        self.ids: dict = {}
        self.names: dict[int, str] = {}

    def key(self, key, path: str) -> int:
        if key not in self.ids:
            self.ids[key] = len(self.ids) + 1
            self.names[self.ids[key]] = path
        return self.ids[key]

    def path(self, path: str) -> int:
        """The id of a file named by path (stat'ed for its (dev, inode); the path itself if gone)."""
        try:
            st = os.stat(path)
            key = (st.st_dev, st.st_ino)
        except OSError:
            key = ("path", path)
        return self.key(key, path)


def split_pages(op: np.ndarray, addr: np.ndarray, size: np.ndarray, at: np.ndarray | None = None):
    """An access that crosses a page boundary touches both pages: repeat it for its last page.
    Returns (op, addr), and with `at` (one value per access, such as its line's offset) also `at`
    repeated alike."""
    last = addr + np.maximum(size, 1).astype(np.uint64) - np.uint64(1)
    cross = (last >> np.uint64(PAGE_SHIFT)) != (addr >> np.uint64(PAGE_SHIFT))
    if not cross.any():
        return (op, addr) if at is None else (op, addr, at)
    rep = 1 + cross.astype(np.int64)
    op2 = np.repeat(op, rep)
    addr2 = np.repeat(addr, rep)
    second = np.cumsum(rep) - 1
    second = second[cross]
    addr2[second] = last[cross]
    return (op2, addr2) if at is None else (op2, addr2, np.repeat(at, rep))


def kept(snap: MapsSnapshot, idx: np.ndarray) -> np.ndarray:
    """Which accesses classify() keeps: all but those in [vdso], [vvar], [vsyscall] and valgrind's
    own binary (M_SKIP)."""
    ic = np.maximum(idx, 0)
    what = np.where(idx >= 0, snap.what[ic] if len(snap) else M_ANON, M_ANON)
    return what != M_SKIP


def classify(op: np.ndarray, addr: np.ndarray, pid: int, snap: MapsSnapshot, idx: np.ndarray,
             files: FileIds) -> tuple[np.ndarray, dict]:
    """Records of accesses (`idx`: each address's mapping in `snap`, -1 for none) by trace pid `pid`.

    - instruction fetch from a file mapping: FILE_EXEC (file, page offset in the file)
    - load/store in a file mapping (shared, or private read-only): FILE_MMAP (file, page offset)
    - load/store in a private writable file mapping (.data, relocations), and any store to a
      private file mapping: ANON (pid, VPN), the kernel's copy-on-write page (the first read of
      such a page, from the page cache, is not told apart; a read of a private read-only page
      after it was written stays FILE_MMAP)
    - anonymous memory, heap, stack, and addresses outside every known mapping: ANON (pid, VPN)
    - [vdso], [vvar], [vsyscall]: dropped
    Store and modify (M) set the write flag; M gives one record.
    Returns the records and counts {"unmapped": n, "dropped": n}.
    """
    ic = np.maximum(idx, 0)
    what = np.where(idx >= 0, snap.what[ic] if len(snap) else M_ANON, M_ANON)
    keep = kept(snap, idx)
    n_drop = int(len(op) - np.count_nonzero(keep))
    if n_drop:
        op, addr, idx, ic, what = op[keep], addr[keep], idx[keep], ic[keep], what[keep]
    rec = np.zeros(len(op), dtype=RECORD_DTYPE)
    rec["pid"] = pid
    rec["write"] = (op == OP_S) | (op == OP_M)
    # a store to any private file mapping is the kernel's copy-on-write: an anonymous page (this
    # also catches RELRO pages written before ld.so made them read-only)
    private = np.where(idx >= 0, snap.private[ic] if len(snap) else False, False)
    is_file = (what == M_FILE) & ~(private & (rec["write"] == 1))
    rec["kind"] = np.where(is_file, np.where(op == OP_I, Kind.FILE_EXEC, Kind.FILE_MMAP), Kind.ANON)
    page = addr >> np.uint64(PAGE_SHIFT)
    if is_file.any():
        fidx = np.flatnonzero(is_file)
        maps_i = ic[fidx]
        u = np.unique(maps_i)
        fid_of = np.zeros(len(snap), dtype=np.uint32)
        for m in u:
            fid_of[m] = files.key(snap.file_key[m], snap.path[m])
        rec["file"][fidx] = fid_of[maps_i]
        page[fidx] = (snap.offset[maps_i] + addr[fidx] - snap.start[maps_i]) >> np.uint64(PAGE_SHIFT)
    rec["page"] = page
    return rec, {"unmapped": int(np.count_nonzero(idx < 0)), "dropped": n_drop}


__all__ = ["FileIds", "PidIds", "classify", "kept", "split_pages"]
