"""Run a program under valgrind lackey (memory accesses) or strace (read()/write()) and stream
what it does into a native trace with write_native.

Memory mode (`mem`, and `all`, which adds valgrind's `--trace-syscalls=yes` lines to the same
stream, vgsys.py): valgrind writes lackey's output to a TCP socket on 127.0.0.1 (`--log-socket`); every
valgrind process (the program, and each program it execs, `--trace-children=yes`) opens its own
connection and starts with `==PID==` lines, which name the process whose /proc/PID/maps maps its
addresses. Each connection is parsed in chunks (lackey.py), classified against that process's
mappings (maps.py, classify.py), merged in stream order with the read()/write() records of the
syscall lines among them (mode `all`), folded (fold.py) and handed to the writer. Valgrind blocks when
the socket is full, so the maps are read while the program runs, close to the accesses parsed.

Ctrl-C: the first one stops the program (SIGINT to valgrind/strace) and keeps reading what is
still buffered; the writer then ends normally, so the file holds whole records. A second Ctrl-C
stops reading at once (still a valid file). Whenever reading stops while the program runs, its
processes are killed before their connections close: valgrind would write to stderr instead.

A child that forks without exec writes into its parent's connection (nothing in lackey's lines
tells the two apart): the recorder only notices it, from /proc/PID/task/*/children, and counts it.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np

from ..errors import ReclaimExtError
from ..trace.base import Trace
from ..trace.readers import write_native
from .classify import FileIds, PidIds, classify, kept, split_pages
from .fold import DEFAULT_WINDOW, Folder
from .lackey import message_pid, parse_lackey
from .maps import MapsTracker
from .strace import StraceParser
from .vgsys import VgSyscalls

READ_BYTES = 1 << 20
PARSE_BYTES = 1 << 20
SOCK_BUF = 1 << 20  # bounded, so valgrind blocks and the maps are read close to the accesses
BATCH_SLEEP = 0.005  # lackey writes one line per write(): let a round's data pile up before reading it
STRACE_CALLS = ("read,pread64,readv,preadv,preadv2,write,pwrite64,writev,pwritev,pwritev2,openat,close,lseek,"
                "dup,dup2,dup3,fcntl,clone,clone3,fork,vfork")


class RecordError(ReclaimExtError):
    pass


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _children(pid: int) -> list[int]:
    """The child processes of pid (of all its threads), from /proc; [] once it is gone."""
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    out.extend(int(x) for x in fh.read().split())
            except OSError:
                pass
    except OSError:
        pass
    return out


def need_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RecordError(f"record: {name} is not installed (Debian: apt-get install -y {package})")
    return path


class _Stream(Trace):
    """A Trace over a one-shot generator, for write_native."""

    def __init__(self, gen):
        super().__init__(name="record", length=None, params={})
        self.gen = gen

    def chunks(self, chunk: int = 65536):
        return self.gen


class Progress:
    def __init__(self, out=sys.stderr, every: float = 2.0):
        self.out, self.every = out, every
        self.t0 = self.t = time.monotonic()
        self.events = 0
        self.records = 0
        self.tty = out.isatty()

    def __call__(self, events: int, records: int, force: bool = False) -> None:
        self.events += events
        self.records += records
        now = time.monotonic()
        if not force and now - self.t < self.every:
            return
        self.t = now
        dt = max(now - self.t0, 1e-9)
        line = (f"reclaim-ext: record: {self.events:,} accesses, {self.records:,} records "
                f"({self.events / dt:,.0f} accesses/s, {dt:.0f} s)")
        self.out.write(("\r" + line) if self.tty else line + "\n")
        self.out.flush()

    def close(self) -> None:
        if self.tty:
            self.out.write("\n")


class _Conn:
    """One valgrind process's lackey stream."""

    def __init__(self, sock, window: int):
        self.sock = sock
        self.buf = bytearray()
        self.real_pid = None
        self.pid = None
        self.maps = None
        self.folder = Folder(window)


class Recorder:
    """State and counters of one recording."""

    def __init__(self, mode: str, window: int = DEFAULT_WINDOW, progress: Progress | None = None):
        self.mode = mode
        self.window = window
        self.pids = PidIds()
        self.files = FileIds()
        self.progress = progress or Progress(every=1e9)
        self.interrupted = 0
        self.proc = None
        self.stats = dict(lines=0, accesses=0, unmapped=0, dropped=0, records=0, folded=0, syscalls=0,
                          processes=0, maps_reads=0, forked_without_exec=0)
        self.forked: dict[int, int] = {}  # child pid -> parent pid, of every child seen (memory mode)
        self._next_scan = 0.0
        self.exit_status = None
        self._tail: list[np.ndarray] = []
        # mode all: valgrind's syscall lines, parsed among lackey's, one parser for all processes
        # (fds are inherited across fork)
        self.vgsys = VgSyscalls(self.pids, self.files) if mode == "all" else None

    # -- signals
    def _on_sigint(self, signum, frame):
        self.interrupted += 1
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGINT)
            except OSError:
                pass

    # -- memory
    SCAN_PERIOD = 0.05

    def _scan_children(self, force: bool = False) -> None:
        """Note the children of every traced process. A child that never opens its own lackey
        connection forked without exec: valgrind keeps writing its accesses into its parent's
        connection, with nothing telling them apart (docs/traces.md)."""
        now = time.monotonic()
        if not force and now < self._next_scan:
            return
        self._next_scan = now + self.SCAN_PERIOD
        todo = [p for p in self.pids.ids if p > 0]
        if self.proc is not None:
            todo.append(self.proc.pid)
        todo.extend(self.forked)
        seen = set()
        while todo:
            p = todo.pop()
            if p in seen:
                continue
            seen.add(p)
            for ch in _children(p):
                if ch not in self.forked:
                    self.forked[ch] = p
                    todo.append(ch)

    def forked_without_exec(self) -> list[int]:
        """Children seen that never had a lackey connection of their own (real pids)."""
        return sorted(ch for ch in self.forked if ch not in self.pids.ids)

    def _start(self, c: _Conn) -> bool:
        """Learn the connection's pid from its first line; refresh its maps when due."""
        if c.real_pid is None:
            nl = c.buf.find(b"\n")
            if nl < 0:
                return False
            c.real_pid = message_pid(bytes(c.buf[:nl]))
            if c.real_pid is None:
                c.real_pid = -1 - len(self.pids.ids)
            c.pid = self.pids(c.real_pid)
            c.maps = MapsTracker(c.real_pid)
            if self.vgsys is not None:
                self.vgsys.started(c.real_pid)
            self.stats["processes"] += 1
        elif time.monotonic() - c.maps.t > c.maps.period:
            c.maps.refresh()
        return True

    def _process(self, c: _Conn, final: bool) -> np.ndarray | None:
        if c.real_pid is None and not self._start(c):
            return None
        if final and c.buf and not c.buf.endswith(b"\n"):
            c.buf += b"\n"
        p = parse_lackey(c.buf)
        fd_rec = None
        if self.vgsys is not None:
            before = self.vgsys.syscalls
            remapped = self.vgsys.maps_changes.get(c.real_pid, 0)
            self.vgsys.feed(c.buf, p.consumed)
            if self.vgsys.maps_changes.get(c.real_pid, 0) != remapped:
                c.maps.refresh()  # it mapped or unmapped something: the snapshot may be stale
            fd_rec, fd_at = self.vgsys.take()
            n_sys = self.vgsys.syscalls - before
            self.stats["syscalls"] += n_sys
            self.stats["accesses"] += n_sys
        del c.buf[: p.consumed]
        self.stats["lines"] += p.lines
        self.stats["accesses"] += len(p.op)
        if len(p.op) == 0 and (fd_rec is None or len(fd_rec) == 0):
            return None
        op, addr, at = split_pages(p.op, p.addr, p.size, p.at)
        snap, idx = c.maps.lookup(addr)
        rec, st = classify(op, addr, c.pid, snap, idx, self.files)
        self.stats["unmapped"] += st["unmapped"]
        self.stats["dropped"] += st["dropped"]
        if fd_rec is not None and len(fd_rec):
            # each read()/write() record where its result line is among the accesses' lines
            both = np.concatenate([at[kept(snap, idx)], fd_at])
            rec = np.concatenate([rec, fd_rec])[np.argsort(both, kind="stable")]
        out = c.folder(rec)
        self.stats["folded"] += len(rec) - len(out)
        self.progress(len(p.op) + (n_sys if fd_rec is not None else 0), len(out))
        return out

    def memory_chunks(self, cmd: list[str]):
        valgrind = need_tool("valgrind", "valgrind")
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(64)
        port = lsock.getsockname()[1]
        argv = [valgrind, "--tool=lackey", "--trace-mem=yes", "--trace-children=yes",
                *(["--trace-syscalls=yes"] if self.vgsys is not None else []),
                f"--log-socket=127.0.0.1:{port}", *cmd]
        try:
            self.proc = subprocess.Popen(argv)
        except OSError as e:
            raise RecordError(f"record: cannot run valgrind: {e.strerror or e}") from None
        sel = selectors.DefaultSelector()
        sel.register(lsock, selectors.EVENT_READ)
        conns: dict = {}
        drain_until = None
        try:
            while True:
                if self.interrupted >= 2:
                    break
                if self.interrupted and drain_until is None:
                    drain_until = time.monotonic() + 10
                if drain_until is not None and time.monotonic() > drain_until:
                    break
                got = 0
                for key, _ in sel.select(0.2):
                    if key.fileobj is lsock:
                        s, _ = lsock.accept()
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCK_BUF)
                        c = _Conn(s, self.window)
                        conns[s] = c
                        sel.register(s, selectors.EVENT_READ, c)
                        continue
                    c = key.data
                    try:
                        data = c.sock.recv(READ_BYTES)
                    except OSError:
                        data = b""
                    if data:
                        got += len(data)
                        c.buf += data
                        if c.maps is None or time.monotonic() - c.maps.t > c.maps.period:
                            self._start(c)
                        if len(c.buf) >= PARSE_BYTES:
                            out = self._process(c, False)
                            if out is not None and len(out):
                                yield out
                    else:
                        sel.unregister(c.sock)
                        c.sock.close()
                        del conns[c.sock]
                        out = self._process(c, True)
                        if c.maps is not None:
                            self.stats["maps_reads"] += c.maps.reads
                        if out is not None and len(out):
                            yield out
                self._scan_children()
                if 0 < got < READ_BYTES // 4:
                    time.sleep(BATCH_SLEEP)
                if self.proc.poll() is not None and not conns:
                    # a last connection may still be queued
                    if not sel.select(0.05):
                        break
        finally:
            self.stats["forked_without_exec"] = len(self.forked_without_exec())
            if conns:
                # stopped reading while the program still runs (a second Ctrl-C, or it did not end
                # within the drain time): kill its processes before closing their connections, else
                # valgrind reverts to writing its lackey lines to stderr
                self._scan_children(force=True)
                # the children still under the process they were seen under (checked before any kill)
                for pid in [pid for pid, parent in self.forked.items() if _ppid(pid) == parent]:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                if self.proc.poll() is None:
                    self.proc.kill()
            for c in list(conns.values()):  # interrupted: keep what was read
                out = self._process(c, True)
                if out is not None and len(out):
                    self._tail.append(out)
                c.sock.close()
            lsock.close()
            self._stop_child()
        yield from self._tail

    # -- syscalls
    def syscall_chunks(self, cmd: list[str]):
        strace = need_tool("strace", "strace")
        r, w = os.pipe()
        argv = [strace, "-f", "-qq", "-y", "-s", "0", "-e", f"trace={STRACE_CALLS}", "-o", f"/dev/fd/{w}", *cmd]
        try:
            self.proc = subprocess.Popen(argv, pass_fds=(w,))
        except OSError as e:
            raise RecordError(f"record: cannot run strace: {e.strerror or e}") from None
        finally:
            os.close(w)
        parser = StraceParser(self.pids, self.files)
        rest = b""
        try:
            with os.fdopen(r, "rb", buffering=0) as f:
                while self.interrupted < 2:
                    data = f.read(READ_BYTES)
                    if not data:
                        break
                    data = rest + data
                    cut = data.rfind(b"\n") + 1
                    rest = data[cut:]
                    lines = data[:cut].decode("utf-8", "surrogateescape").splitlines()
                    before = parser.syscalls
                    rec = parser.feed(lines)
                    self.stats["syscalls"] += parser.syscalls - before
                    self.stats["accesses"] += parser.syscalls - before
                    self.progress(parser.syscalls - before, len(rec))
                    if len(rec):
                        yield rec
        finally:
            self._stop_child()
        self.stats["processes"] = len(self.pids.ids)

    def _stop_child(self):
        if self.proc is None:
            return
        try:
            self.exit_status = self.proc.wait(timeout=10 if self.interrupted < 2 else 1)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.exit_status = self.proc.wait()

    def record(self, out: str, cmd: list[str]) -> int:
        self._tail = []
        gen = self.memory_chunks(cmd) if self.mode in ("mem", "all") else self.syscall_chunks(cmd)

        by_kind = np.zeros(4, dtype=np.int64)
        pages: list[set] = [set() for _ in range(4)]

        def counted():
            for part in gen:
                self.stats["records"] += len(part)
                by_kind[:] += np.bincount(part["kind"], minlength=4)[:4]
                for k in range(4):
                    sel = part[part["kind"] == k]
                    if len(sel):
                        u = np.unique(sel[["pid", "file", "page"]])
                        pages[k].update(zip(u["pid"].tolist(), u["file"].tolist(), u["page"].tolist()))
                yield part

        old = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            n = write_native(out, _Stream(counted()))
            self.progress(0, 0, force=True)
            self.progress.close()
            if n == 0 and not self.interrupted:
                try:
                    os.unlink(out)
                except OSError:
                    pass
                tool = "strace" if self.mode == "syscalls" else "valgrind"
                raise RecordError(f"record: {' '.join(cmd)}: nothing recorded ({tool} exit status "
                                  f"{self.exit_status}; its messages are above)")
        finally:
            if self.vgsys is not None:
                self.stats["unknown_fd"] = self.vgsys.unknown_fd
                self.stats["garbled_syscall_lines"] = self.vgsys.garbled
            names = ("anon", "file_mmap", "file_fd", "file_exec")
            self.stats["records_by_kind"] = dict(zip(names, by_kind.tolist()))
            # anon pages are (pid, VPN); file pages (file, pgoff): the pid is not part of them
            self.stats["pages_by_kind"] = {n: len(p if k == 0 else {(f, pg) for _, f, pg in p})
                                           for k, (n, p) in enumerate(zip(names, pages))}
            signal.signal(signal.SIGINT, old)
        return n

    def meta(self) -> dict:
        return {
            "mode": self.mode,
            "fold_window": self.window,
            "pids": {str(v): k for k, v in self.pids.ids.items()},
            "files": {str(k): v for k, v in self.files.names.items()},
            "stats": self.stats,
            "exit_status": self.exit_status,
            "interrupted": bool(self.interrupted),
        }
