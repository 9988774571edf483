"""valgrind's `--trace-syscalls=yes` lines -> FILE_FD read()/write() records (mode `all`).

Valgrind prints the client's system calls (never its own) into the same log stream as lackey's
accesses, so their order against the accesses is exact. On valgrind 3.19 (amd64) the lines are:

    SYSCALL[PID,TID](NR) sys_openat ( 4294967196, 0x10a004(data.bin), 0 ) --> [async] ...
    SYSCALL[PID,TID](NR) ... [async] --> Success(0x3)
    SYSCALL[PID,TID](NR) sys_lseek ( 3, 100, 0 )[sync] --> Success(0x64)
    SYSCALL[PID,TID](NR) sys_pread64 ( 3, 0x1ffeffdf40, 100, 8192 ) --> [async] ...
    SYSCALL[PID,TID](NR) ... [async] --> Failure(0x9)
    SYSCALL[PID,TID](NR) sys_clone ( 1200011, ... )   clone(fork): process 481 created child 484

Paths are printed as the program passed them (`0xADDR(path)`), so a relative one is resolved
against the process's working directory (followed through chdir/fchdir; at first sight the one in
/proc/PID/cwd, else the recorder's), or against the directory fd of openat. A transfer's record is
placed at its result line (where the byte count is known). Which calls, which files, the file
position and the records follow fdio.py, the rules the strace mode uses too. The fds a process
inherits are read from /proc/PID/fd when its connection opens (right after its exec); an fd still
unknown at a transfer is looked up there while the process lives, else its transfers are skipped
and counted (`unknown_fd`).

A successful mmap, munmap or mremap is counted per pid (`maps_changes`): the recorder then re-reads
the process's maps before placing the chunk's addresses, rather than trust a snapshot that may
still show what was mapped there before.

A child that forks without exec shares its parent's log connection; the two processes' writes
can then splice lines (`SYSCALL[481,1](61) ` + `SYSCALL[484,1](273) sys_wait4 (...)`): a line
whose number does not match its call's name is skipped and counted (`garbled`).
"""

from __future__ import annotations

import os
import platform
import re

import numpy as np

from .classify import FileIds, PidIds
from .fdio import OFFSET_ARG, READS, WRITES, FdTable, Transfers

_HEAD = re.compile(r"SYSCALL\[(\d+),(\d+)\]\((\d+)\) ")
_CALL = re.compile(r"(?:sys_)?(\w+)(?:\[[^\]]*\])? ?\( ?")
_RESULT = re.compile(r"--> (?:\[[\w-]+\] )?(Success|Failure)\((0x[0-9a-fA-F]+)\)")
_CHILD = re.compile(r"process (\d+) created child (\d+)")
_PATH = re.compile(r"^0x[0-9a-fA-F]+\((.*)\)$")
_P = r"0x[0-9a-fA-F]+\((?P<path>.*)\)"
_OPEN_ARGS = {"openat": re.compile(rf"^(?P<dirfd>\d+), {_P}, \d+(?:, \d+)?$"),
              "open": re.compile(rf"^{_P}, \d+(?:, \d+)?$"),
              "creat": re.compile(rf"^{_P}, \d+$")}
AT_FDCWD = -100
F_DUPFD, F_DUPFD_CLOEXEC = 0, 1030

# x86_64 numbers of the calls acted on: a line whose number disagrees was spliced (see above)
_NR_AMD64 = {"read": 0, "write": 1, "open": 2, "close": 3, "lseek": 8, "pread64": 17, "pwrite64": 18,
             "readv": 19, "writev": 20, "dup": 32, "dup2": 33, "fcntl": 72, "chdir": 80, "fchdir": 81,
             "creat": 85, "openat": 257, "dup3": 292, "preadv": 295, "pwritev": 296, "preadv2": 327,
             "pwritev2": 328, "clone": 56, "fork": 57, "vfork": 58, "clone3": 435, "mmap": 9, "munmap": 11,
             "mremap": 25}
MAPS_CALLS = frozenset({"mmap", "munmap", "mremap"})
_NR = _NR_AMD64 if platform.machine() in ("x86_64", "AMD64") else {}
_ACTED = set(_NR_AMD64)


def _int(s: str) -> int:
    s = s.strip()
    return int(s, 16) if s.startswith("0x") else int(s)


def _signed32(v: int) -> int:
    return v - (1 << 32) if (1 << 31) <= v < (1 << 32) else v


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


class VgSyscalls:
    """Feed the syscall lines of a buffer (with their byte offsets), get FILE_FD records and their
    offsets. `pids` and `files` are the recorder's, so a page read() and the same page mapped are
    one page (FileIds keys both by (device, inode))."""

    def __init__(self, pids: PidIds | None = None, files: FileIds | None = None):
        self.pids = pids or PidIds()
        self.files = files or FileIds()
        self.fds = FdTable()
        self.cwd: dict[int, str] = {}
        self.pending: dict[tuple[int, int], tuple[int, str, str]] = {}
        self.out = Transfers(self.pids, self.files)
        self.syscalls = 0     # transfers (read/write calls that succeeded)
        self.unknown_fd = 0   # transfers on an fd of unknown file
        self.garbled = 0      # spliced lines skipped
        self.maps_changes: dict[int, int] = {}  # per pid, mmap/munmap/mremap calls that succeeded

    # -- processes
    def started(self, pid: int) -> None:
        """A traced process appeared (its log connection opened, right after its exec): note its
        working directory and the files of the fds it inherited (a shell's `< file`), those the
        parser does not know yet (from the parent's fork line), at position 0."""
        if pid not in self.cwd:
            cwd = _readlink(f"/proc/{pid}/cwd")
            if cwd:
                self.cwd[pid] = cwd
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            return
        for name in fds:
            if name.isdigit() and self.fds.get(pid, int(name)) is None:
                target = _readlink(f"/proc/{pid}/fd/{name}")
                if target is not None:
                    self.fds.open(pid, int(name), target)

    def _cwd(self, pid: int) -> str:
        if pid not in self.cwd:
            self.cwd[pid] = _readlink(f"/proc/{pid}/cwd") or os.getcwd()
        return self.cwd[pid]

    def _resolve(self, pid: int, dirfd: int, path: str) -> str:
        if not path.startswith("/"):
            if dirfd == AT_FDCWD:
                base = self._cwd(pid)
            else:
                ofd = self.fds.get(pid, dirfd)
                base = ofd.path if ofd is not None and ofd.path else None
                if base is None:
                    return path  # unknown directory: left relative (not a regular file's path)
            path = os.path.join(base, path)
        return os.path.normpath(path)

    def _unknown(self, pid: int, fd: int) -> bool:
        """An fd never seen opened: its file from /proc/PID/fd while the process lives."""
        target = _readlink(f"/proc/{pid}/fd/{fd}")
        if target is None:
            return False
        self.fds.open(pid, fd, target)
        return True

    # -- lines
    def feed(self, buf, end: int | None = None) -> None:
        """Parse the SYSCALL lines among the complete lines of buf[:end]."""
        end = len(buf) if end is None else end
        i = 0
        while True:
            i = buf.find(b"SYSCALL[", i, end)
            if i < 0:
                return
            j = buf.find(b"\n", i, end)
            if j < 0:
                return
            if i == 0 or buf[i - 1] == 10:
                self.line(bytes(buf[i:j]).decode("utf-8", "surrogateescape"), i)
            i = j + 1

    def line(self, line: str, at: int = 0) -> None:
        m = _HEAD.match(line)
        if not m:
            return
        pid, tid, nr = int(m.group(1)), int(m.group(2)), int(m.group(3))
        rest = line[m.end():]
        if rest.startswith("... [async]"):  # the result of an earlier line of this thread
            head = self.pending.pop((pid, tid), None)
            if head is None or head[0] != nr:
                if head is not None:
                    self.garbled += 1
                return
            _, name, args = head
        else:
            c = _CALL.match(rest)
            if not c:
                return
            name = c.group(1)
            if name not in _ACTED:
                return
            if _NR and _NR[name] != nr:
                self.garbled += 1
                return
            tail = rest[c.end():]
            cut = tail.find(" -->")
            body = tail if cut < 0 else tail[:cut]
            close = body.rfind(")")
            args = body[:close].rstrip() if close >= 0 else body
            if cut >= 0 and tail[cut:].startswith(" --> [async] ..."):
                self.pending[(pid, tid)] = (nr, name, args)
                return
            ch = _CHILD.search(rest)
            if ch:
                self.fds.fork(int(ch.group(1)), int(ch.group(2)))
                self.cwd.setdefault(int(ch.group(2)), self._cwd(int(ch.group(1))))
        r = _RESULT.search(line)
        if not r or r.group(1) != "Success":
            return
        self.call(pid, name, args, int(r.group(2), 16), at)

    def call(self, pid: int, name: str, args: str, ret: int, at: int = 0) -> None:
        """A call that succeeded with result ret."""
        if name in MAPS_CALLS:
            self.maps_changes[pid] = self.maps_changes.get(pid, 0) + 1
            return
        if name in ("openat", "open", "creat"):
            m = _OPEN_ARGS[name].match(args)
            dirfd = _signed32(int(m.group("dirfd"))) if m and name == "openat" else AT_FDCWD
            self.fds.open(pid, ret, self._resolve(pid, dirfd, m.group("path")) if m else None)
            return
        if name == "chdir":
            pm = _PATH.match(args.strip())
            if pm:
                self.cwd[pid] = self._resolve(pid, AT_FDCWD, pm.group(1))
            return
        a = args.split(", ")
        try:
            fd = _int(a[0])
        except (ValueError, IndexError):
            return
        if name == "close":
            self.fds.close(pid, fd)
        elif name == "lseek":
            self.fds.seek(pid, fd, ret)
        elif name in ("dup", "dup2", "dup3"):
            self.fds.dup(pid, fd, ret)
        elif name == "fcntl":
            if len(a) > 1 and _int(a[1]) in (F_DUPFD, F_DUPFD_CLOEXEC):
                self.fds.dup(pid, fd, ret)
        elif name == "fchdir":
            ofd = self.fds.get(pid, fd)
            if ofd is not None and ofd.path:
                self.cwd[pid] = ofd.path
        elif name in READS or name in WRITES:
            self.syscalls += 1
            offset = None
            if name in OFFSET_ARG:
                try:
                    offset = _int(a[OFFSET_ARG[name]])  # -1 (preadv2): the file position
                except (ValueError, IndexError):
                    return
            if self.fds.get(pid, fd) is None and not self._unknown(pid, fd):
                if ret > 0:
                    self.unknown_fd += 1
                return
            t = self.fds.transfer(pid, fd, name, ret, offset)
            if t is not None:
                self.out.add(pid, t[0], t[1], ret, name in WRITES, at)

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        """The FILE_FD records since the last take, and each one's byte offset (`at` of its line)."""
        return self.out.take()
