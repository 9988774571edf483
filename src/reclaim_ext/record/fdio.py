"""read()/write() of files, whichever tool saw them (strace.py: mode `syscalls`; vgsys.py: valgrind's
`--trace-syscalls=yes`, mode `all`): the rules both modes share, stated once.

- Which calls transfer bytes (READS, WRITES), and which carry their own offset (OFFSET_ARG: the
  index of the offset argument; -1 there, as preadv2/pwritev2 allow, means the file position).
- Which files count: `regular(path)`, a path under `/` not under /dev, /proc, /sys (pipes, sockets
  and terminals have no such path).
- The file position, per open file description (FdTable): 0 at open, lseek's result, advanced by
  each transfer of the current position (not by the p* calls); a dup'ed fd shares it, a forked
  child gets its parent's descriptors; an fd the trace never saw opened starts at 0.
- One FILE_FD record per 4 KiB page of the bytes actually transferred (the call's result), with the
  write flag for writes (fd_records).
"""

from __future__ import annotations

import numpy as np

from ..trace.record import RECORD_DTYPE, Kind

PAGE_SHIFT = 12

READS = frozenset({"read", "pread64", "readv", "preadv", "preadv2"})
WRITES = frozenset({"write", "pwrite64", "writev", "pwritev", "pwritev2"})
OFFSET_ARG = {"pread64": 3, "pwrite64": 3, "preadv": 3, "pwritev": 3, "preadv2": 3, "pwritev2": 3}


def regular(path: str | None) -> bool:
    """A regular file's path: the transfers worth a FILE_FD record."""
    return bool(path) and path.startswith("/") and not path.startswith(("/dev/", "/proc/", "/sys/"))


class Ofd:
    """An open file description: its path, file position and (once a transfer needs it) file id."""

    __slots__ = ("path", "pos", "fid")

    def __init__(self, path: str | None, pos: int = 0):
        self.path, self.pos, self.fid = path, pos, None


class FdTable:
    """(real pid, fd) -> Ofd."""

    def __init__(self):
        self.fds: dict[tuple[int, int], Ofd] = {}

    def open(self, pid: int, fd: int, path: str | None) -> None:
        self.fds[(pid, fd)] = Ofd(path)

    def close(self, pid: int, fd: int) -> None:
        self.fds.pop((pid, fd), None)

    def dup(self, pid: int, old: int, new: int) -> None:
        ofd = self.fds.get((pid, old))
        if ofd is None:
            self.fds.pop((pid, new), None)
        else:
            self.fds[(pid, new)] = ofd

    def seek(self, pid: int, fd: int, pos: int, path: str | None = None) -> None:
        ofd = self.get(pid, fd, path)
        if ofd is not None:
            ofd.pos = pos

    def fork(self, parent: int, child: int) -> None:
        for (p, fd), ofd in list(self.fds.items()):
            if p == parent:
                self.fds[(child, fd)] = ofd

    def get(self, pid: int, fd: int, path: str | None = None) -> Ofd | None:
        """The description of fd; with `path` (strace names each fd's file) a description of
        another file is replaced, and an fd never seen opened starts at position 0."""
        ofd = self.fds.get((pid, fd))
        if path is not None and (ofd is None or ofd.path != path):
            ofd = self.fds[(pid, fd)] = Ofd(path)
        return ofd

    def transfer(self, pid: int, fd: int, name: str, nbytes: int, offset: int | None,
                 path: str | None = None) -> tuple[Ofd, int] | None:
        """A transfer of nbytes (the result, >= 0) by call `name`: (its description, the file offset
        of its first byte), the position advanced unless the call gave its own offset; None for
        an fd of unknown file."""
        ofd = self.get(pid, fd, path)
        if ofd is None:
            return None
        if name in OFFSET_ARG and offset is not None and offset >= 0:
            return ofd, offset
        start = ofd.pos
        ofd.pos = start + nbytes
        return ofd, start


def page_span(offset: int, nbytes: int) -> tuple[int, int]:
    """The first page and the number of pages of nbytes (> 0) at file offset `offset`."""
    first = offset >> PAGE_SHIFT
    return first, ((offset + nbytes - 1) >> PAGE_SHIFT) - first + 1


def fd_records(first, count, write, pid, fid) -> tuple[np.ndarray, np.ndarray]:
    """FILE_FD records of transfers (one list entry per transfer: first page, page count, write
    flag, trace pid, file id), one record per page in order; and for each record the index of its
    transfer."""
    if len(first) == 0:
        return np.zeros(0, dtype=RECORD_DTYPE), np.zeros(0, dtype=np.int64)
    count = np.asarray(count, dtype=np.int64)
    rep = np.repeat(np.arange(len(count)), count)
    starts = np.cumsum(count) - count
    rec = np.zeros(len(rep), dtype=RECORD_DTYPE)
    rec["kind"] = Kind.FILE_FD
    rec["pid"] = np.asarray(pid, dtype=np.uint16)[rep]
    rec["file"] = np.asarray(fid, dtype=np.uint32)[rep]
    rec["write"] = np.asarray(write, dtype=np.uint8)[rep]
    rec["page"] = np.asarray(first, dtype=np.uint64)[rep] + (np.arange(len(rep)) - starts[rep]).astype(np.uint64)
    return rec, rep


class Transfers:
    """Collects transfers and turns them into FILE_FD records (fd_records); shared by both parsers."""

    def __init__(self, pids, files):
        self.pids, self.files = pids, files
        self.cols: tuple[list, ...] = ([], [], [], [], [], [])

    def add(self, real_pid: int, ofd: Ofd, offset: int, nbytes: int, write: bool, at: int = 0) -> bool:
        """Note a transfer; False (nothing noted) when it moved no bytes or not a regular file's."""
        if nbytes <= 0 or not regular(ofd.path):
            return False
        if ofd.fid is None:
            ofd.fid = self.files.path(ofd.path)
        first, n = page_span(offset, nbytes)
        for col, v in zip(self.cols, (first, n, write, self.pids(real_pid), ofd.fid, at)):
            col.append(v)
        return True

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        """The records noted so far, and for each the `at` of its transfer; then starts afresh."""
        first, count, write, pid, fid, at = self.cols
        rec, rep = fd_records(first, count, write, pid, fid)
        at = np.asarray(at, dtype=np.int64)[rep] if len(rep) else np.zeros(0, dtype=np.int64)
        self.cols = ([], [], [], [], [], [])
        return rec, at
