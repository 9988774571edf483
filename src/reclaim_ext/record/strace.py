"""strace output -> FILE_FD read()/write() records, one per 4 KiB page of the bytes transferred.

Expects `strace -f -qq -y -s 0 -e trace=read,pread64,readv,preadv,write,pwrite64,writev,pwritev,
openat,close,lseek` lines: `PID name(FD</path>, ...) = RET`, with `<unfinished ...>` /
`<... name resumed>` pairs joined. The file position of read/write/readv/writev is tracked per
(pid, fd): 0 at openat, lseek's result, advanced by each transfer; an fd the trace never saw
opened starts at 0. Only regular files count (a path starting with `/`, not under /dev, /proc,
/sys); pipes, sockets and terminals are skipped.
"""

from __future__ import annotations

import re

import numpy as np

from ..trace.record import RECORD_DTYPE, Kind
from .classify import FileIds, PidIds

_LINE = re.compile(r"^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+|\?)")
_FD = re.compile(r"^(-?\d+)<(.*?)>(?:,|$)")
_RET_FD = re.compile(r"=\s+(\d+)<")
_READS = {"read", "pread64", "readv", "preadv", "preadv2"}
_WRITES = {"write", "pwrite64", "writev", "pwritev", "pwritev2"}
_POSITIONED = {"pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2"}


def _regular(path: str) -> bool:
    return path.startswith("/") and not path.startswith(("/dev/", "/proc/", "/sys/"))


class StraceParser:
    """Feed lines, get records. `pids` and `files` may be shared with the memory recorder."""

    def __init__(self, pids: PidIds | None = None, files: FileIds | None = None):
        self.pids = pids or PidIds()
        self.files = files or FileIds()
        self.pos: dict[tuple[int, int], int] = {}
        self.pending: dict[int, str] = {}
        self.file_of: dict[str, int] = {}
        self.syscalls = 0
        self.skipped = 0

    def _fid(self, path: str) -> int:
        fid = self.file_of.get(path)
        if fid is None:
            fid = self.file_of[path] = self.files.path(path)
        return fid

    def _join(self, line: str) -> str | None:
        """A complete syscall line, or None while one is unfinished."""
        if line.endswith("<unfinished ...>"):
            pid, _, rest = line.partition(" ")
            self.pending[int(pid)] = line[: -len("<unfinished ...>")].rstrip()
            return None
        m = re.match(r"^(\d+)\s+<\.\.\. \w+ resumed>(.*)$", line)
        if m:
            head = self.pending.pop(int(m.group(1)), None)
            if head is None:
                return None
            tail = m.group(2)
            return head + ("" if head.endswith(("(", " ")) else " ") + tail.lstrip()
        return line

    def feed(self, lines) -> np.ndarray:
        first, count, write, pid, fid = [], [], [], [], []
        for raw in lines:
            line = self._join(raw.rstrip("\n"))
            if line is None:
                continue
            m = _LINE.match(line)
            if not m:
                self.skipped += 1
                continue
            p, name, args, ret = int(m.group(1)), m.group(2), m.group(3), m.group(4)
            if ret == "?" or ret.startswith("-"):
                continue
            ret = int(ret)
            if name == "openat":
                r = _RET_FD.search(line)
                if r:
                    self.pos[(p, int(r.group(1)))] = 0
                continue
            fdm = _FD.match(args)
            if not fdm:
                continue
            fd, path = int(fdm.group(1)), fdm.group(2)
            if name == "close":
                self.pos.pop((p, fd), None)
                continue
            if name == "lseek":
                self.pos[(p, fd)] = ret
                continue
            if name not in _READS and name not in _WRITES:
                continue
            self.syscalls += 1
            if name in _POSITIONED:
                try:
                    off = int(args.rsplit(",", 1)[1].strip())
                except (IndexError, ValueError):
                    continue
            else:
                off = self.pos.get((p, fd), 0)
                self.pos[(p, fd)] = off + ret
            if ret <= 0 or not _regular(path):
                continue
            first.append(off >> 12)
            count.append(((off + ret - 1) >> 12) - (off >> 12) + 1)
            write.append(name in _WRITES)
            pid.append(self.pids(p))
            fid.append(self._fid(path))
        if not first:
            return np.zeros(0, dtype=RECORD_DTYPE)
        count = np.array(count, dtype=np.int64)
        rep = np.repeat(np.arange(len(count)), count)
        starts = np.cumsum(count) - count
        rec = np.zeros(int(count.sum()), dtype=RECORD_DTYPE)
        rec["kind"] = Kind.FILE_FD
        rec["pid"] = np.array(pid, dtype=np.uint16)[rep]
        rec["file"] = np.array(fid, dtype=np.uint32)[rep]
        rec["write"] = np.array(write, dtype=np.uint8)[rep]
        rec["page"] = np.array(first, dtype=np.uint64)[rep] + (np.arange(len(rep)) - starts[rep]).astype(np.uint64)
        return rec
