"""strace output -> FILE_FD read()/write() records, one per 4 KiB page of the bytes transferred.

Expects `strace -f -qq -y -s 0 -e trace=read,pread64,readv,preadv,write,pwrite64,writev,pwritev,
openat,close,lseek,dup,dup2,dup3,fcntl,clone,clone3,fork,vfork` lines: `PID name(FD</path>, ...) = RET`, with `<unfinished ...>` /
`<... name resumed>` pairs joined. Which calls, which files and the file position follow the rules
of fdio.py (shared with valgrind's syscall lines, mode `all`); strace names each fd's file (`-y`),
so an fd never seen opened is still attributed.
"""

from __future__ import annotations

import re

import numpy as np

from .classify import FileIds, PidIds
from .fdio import OFFSET_ARG, READS, WRITES, FdTable, Transfers

_LINE = re.compile(r"^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+|\?)")
_FD = re.compile(r"^(-?\d+)<(.*?)>(?:\(deleted\))?(?:,|$)")  # `(deleted)`: unlinked while open (temp files)
_RET_FD = re.compile(r"=\s+(\d+)<(.*)>")


def split_args(args: str) -> list[str]:
    """strace's argument list split at its top-level commas (not those inside [...], {...},
    (...) or quotes)."""
    out, depth, cur, quote, i = [], 0, [], False, 0
    while i < len(args):
        ch = args[i]
        if quote:
            if ch == "\\":
                cur.append(args[i:i + 2])
                i += 2
                continue
            quote = ch != '"'
        elif ch == '"':
            quote = True
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            i += 1
            continue
        cur.append(ch)
        i += 1
    out.append("".join(cur).strip())
    return out


class StraceParser:
    """Feed lines, get records. `pids` and `files` may be shared with the memory recorder."""

    def __init__(self, pids: PidIds | None = None, files: FileIds | None = None):
        self.pids = pids or PidIds()
        self.files = files or FileIds()
        self.fds = FdTable()
        self.pending: dict[int, str] = {}
        self.syscalls = 0
        self.skipped = 0

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
        out = Transfers(self.pids, self.files)
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
                    self.fds.open(p, int(r.group(1)), r.group(2))
                continue
            if name in ("clone", "clone3", "fork", "vfork"):
                if ret > 0:
                    self.fds.fork(p, ret)
                continue
            fdm = _FD.match(args)
            if not fdm:
                continue
            fd, path = int(fdm.group(1)), fdm.group(2)
            if name == "close":
                self.fds.close(p, fd)
                continue
            if name == "lseek":
                self.fds.seek(p, fd, ret, path)
                continue
            if name in ("dup", "dup2", "dup3") or (name == "fcntl" and ", F_DUPFD" in args):
                self.fds.dup(p, fd, ret)
                continue
            if name not in READS and name not in WRITES:
                continue
            self.syscalls += 1
            offset = None
            if name in OFFSET_ARG:
                try:
                    offset = int(split_args(args)[OFFSET_ARG[name]])
                except (IndexError, ValueError):
                    continue
            t = self.fds.transfer(p, fd, name, ret, offset, path)
            if t is not None:
                out.add(p, t[0], t[1], ret, name in WRITES)
        return out.take()[0]
