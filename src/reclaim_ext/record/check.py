"""Sanity of a recording against the kernel (`reclaim-ext record --check`, docs/traces.md,
"Sanity against the kernel").

The program is run again natively (no valgrind), and the kernel's view of its memory is compared
with the trace's process 0 (the program itself; its children are not followed):

- peak RSS: the process runs under ptrace and is stopped at its exit (PTRACE_O_TRACEEXIT) while
  its memory is still mapped: VmHWM (the kernel's peak RSS), the peaks of RssAnon and RssFile over
  samples of /proc/PID/status taken every millisecond and at that stop, the resident pages of its
  executable file mappings (/proc/PID/smaps) and its mappings (/proc/PID/maps) at that stop.
- page cache: before the run, the cache of every file the trace touched through a mapping is
  dropped (posix_fadvise DONTNEED; pages mapped by other processes stay) and what stays is noted
  with mincore; after the run, mincore again: the pages the run brought in.

The trace counts pages the program touched; the kernel also maps and reads pages it did not touch.
So each comparison is between the kernel's number and a model: the trace's pages plus what the
kernel adds to them:
- fault-around: a fault on a file page maps the cached pages of its aligned fault_around_bytes
  window (64 KiB) in the same mapping (clipped to it), so RssFile counts those too;
- read-around: a fault on an uncached file page reads the device's readahead window around it
  (read_ahead_kb, from ra/2 pages before the page), in the order the trace first touched them.
Anonymous pages get no model: a page is resident once written or read, as the trace has it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import subprocess
import time

import numpy as np

from ..trace import Kind, open_trace
from .maps import MapsSnapshot, parse_maps
from .runner import RecordError

PAGE = 4096
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
_libc.ptrace.restype = ctypes.c_long
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]

PTRACE_TRACEME, PTRACE_CONT, PTRACE_SETOPTIONS = 0, 7, 0x4200
PTRACE_O_TRACEEXIT, PTRACE_O_EXITKILL = 0x40, 0x100000
PTRACE_EVENT_EXIT = 6

# The stated tolerance (docs/traces.md): each ratio model / kernel must lie in [1/t, t]. The page
# cache gets more room: readahead is asynchronous and the cache's earlier state (pages mapped by
# other processes, which DONTNEED cannot drop) shapes what the run reads.
TOLERANCE = {"anon": 1.25, "file": 1.25, "exec": 1.25, "total": 1.25, "page cache": 1.5}
MIN_PAGES = 16  # a kind with fewer pages than this on both sides is not compared (too small to mean much)


def resident_pages(path: str) -> np.ndarray | None:
    """Page offsets of `path` in the page cache (mincore over a read-only shared mapping, which
    faults nothing in); None if the file cannot be opened, empty array if it is empty."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return np.zeros(0, dtype=np.int64)
        addr = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            return None
        try:
            n = (size + PAGE - 1) // PAGE
            vec = ctypes.create_string_buffer(n)
            if _libc.mincore(addr, size, vec) != 0:
                return None
            return np.flatnonzero(np.frombuffer(vec.raw, dtype=np.uint8) & 1)
        finally:
            _libc.munmap(addr, size)
    finally:
        os.close(fd)


def drop_cache(path: str) -> None:
    """Ask the kernel to drop the file's clean, unmapped pages (POSIX_FADV_DONTNEED)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _status(pid: int) -> dict:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                k, _, v = line.partition(":")
                if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    out[k] = int(v.split()[0]) // 4  # kB -> pages
    except (OSError, ValueError, IndexError):
        pass
    return out


def _exec_rss(pid: int) -> int:
    """Resident pages of the process's executable file mappings (/proc/PID/smaps)."""
    pages = 0
    exec_file = False
    try:
        with open(f"/proc/{pid}/smaps") as fh:
            for line in fh:
                head = line.split(None, 6)
                if "-" in head[0] and len(head) >= 5 and not line.startswith(("Rss", "Pss")):
                    path = head[5].strip() if len(head) > 5 else ""
                    exec_file = (head[1][2] == "x" and int(head[4]) != 0 and path.startswith("/")
                                 and "/valgrind/" not in path)
                elif head[0] == "Rss:" and exec_file:
                    pages += int(head[1]) // 4
    except (OSError, ValueError, IndexError):
        pass
    return pages


def run_native(cmd: list[str], cwd: str | None = None, sample_every: float = 0.001, timeout: float = 600) -> dict:
    """Run cmd natively and return the kernel's view of its memory: VmHWM and the peaks of RssAnon
    and RssFile (pages), its executable mappings' resident pages at exit, and its exit status."""

    def traceme():
        _libc.ptrace(PTRACE_TRACEME, 0, None, None)

    try:
        p = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             preexec_fn=traceme)
    except OSError as e:
        raise RecordError(f"record --check: cannot run {cmd[0]}: {e.strerror or e}") from None
    pid = p.pid
    peak = {"RssAnon": 0, "RssFile": 0, "VmHWM": 0}
    at_exit: dict = {}
    exec_rss = 0
    maps_text = ""
    samples = 0
    status = None
    deadline = time.monotonic() + timeout
    try:
        _, st = os.waitpid(pid, 0)  # the SIGTRAP stop after execve (PTRACE_TRACEME)
        if not os.WIFSTOPPED(st):
            status = os.waitstatus_to_exitcode(st)
            raise RecordError(f"record --check: {cmd[0]} did not start (exit status {status})")
        _libc.ptrace(PTRACE_SETOPTIONS, pid, None, ctypes.c_void_p(PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL))
        _libc.ptrace(PTRACE_CONT, pid, None, None)
        while True:
            wpid, st = os.waitpid(pid, os.WNOHANG)
            if wpid == 0:
                s = _status(pid)
                samples += 1
                for k in peak:
                    peak[k] = max(peak[k], s.get(k, 0))
                if time.monotonic() > deadline:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    status = -9
                    raise RecordError(f"record --check: {cmd[0]} ran over {timeout:.0f} s natively")
                time.sleep(sample_every)
                continue
            if os.WIFSTOPPED(st):
                sig = os.WSTOPSIG(st)
                if sig == 5 and (st >> 16) == PTRACE_EVENT_EXIT:  # SIGTRAP | PTRACE_EVENT_EXIT << 8
                    at_exit = _status(pid)
                    exec_rss = _exec_rss(pid)
                    try:
                        with open(f"/proc/{pid}/maps") as fh:
                            maps_text = fh.read()
                    except OSError:
                        pass
                    for k in peak:
                        peak[k] = max(peak[k], at_exit.get(k, 0))
                    _libc.ptrace(PTRACE_CONT, pid, None, None)
                else:  # a signal for the program: deliver it
                    _libc.ptrace(PTRACE_CONT, pid, None, ctypes.c_void_p(sig))
                continue
            status = os.waitstatus_to_exitcode(st)
            break
    finally:
        p.returncode = status if status is not None else -9
    return {"peak_pages": peak, "exit_pages": at_exit, "exec_rss_pages": exec_rss, "samples": samples,
            "exit_status": status, "maps": maps_text}


_LOW40 = np.uint64((1 << 40) - 1)


def trace_pages(path: str, pid: int = 0) -> dict:
    """The trace's distinct pages of one process: `anon` (a count of VPNs); `per_file` {file id:
    page offsets touched through mappings (FILE_MMAP and FILE_EXEC), in order of first touch};
    `exec_per_file` the FILE_EXEC ones."""
    anon = []
    first: list[np.ndarray] = []   # file keys, each chunk's in order of first touch
    execd = []
    for c in open_trace(path, "native").chunks():
        c = c[c["pid"] == pid]
        anon.append(np.unique(c["page"][c["kind"] == Kind.ANON]))
        f = c[(c["kind"] == Kind.FILE_MMAP) | (c["kind"] == Kind.FILE_EXEC)]
        keys = (f["file"].astype(np.uint64) << np.uint64(40)) | f["page"]
        u, i = np.unique(keys, return_index=True)
        first.append(u[np.argsort(i)])
        execd.append(np.unique(keys[f["kind"] == Kind.FILE_EXEC]))
    anon_n = len(np.unique(np.concatenate(anon))) if anon else 0
    keys = np.concatenate(first) if first else np.zeros(0, np.uint64)
    u, i = np.unique(keys, return_index=True)
    keys = u[np.argsort(i)]  # every file page once, in order of first touch
    ex = np.unique(np.concatenate(execd)) if execd else np.zeros(0, np.uint64)

    def split(k):
        fid = (k >> np.uint64(40)).astype(np.int64)
        return {int(f): (k[fid == f] & _LOW40).astype(np.int64) for f in dict.fromkeys(fid.tolist())}

    per_file, exec_per_file = split(keys), split(ex)
    return {"anon": anon_n, "file": len(keys), "exec": len(ex), "per_file": per_file, "exec_per_file": exec_per_file}


def fault_around_bytes() -> int:
    try:
        with open("/sys/kernel/debug/fault_around_bytes") as fh:
            return int(fh.read())
    except (OSError, ValueError):
        return 65536  # the kernel's default


def read_ahead_pages(path: str) -> int:
    """The readahead window of the block device holding path (its bdi's read_ahead_kb), in pages."""
    try:
        st = os.stat(path)
        base = f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
        for q in (f"{base}/queue/read_ahead_kb", f"{base}/../queue/read_ahead_kb"):
            if os.path.exists(q):
                with open(q) as fh:
                    return max(1, int(fh.read()) // 4)
    except (OSError, ValueError):
        pass
    return 32  # VM_READAHEAD_PAGES (128 KiB)


def fault_around(pages: np.ndarray, key, snap: MapsSnapshot, resident: np.ndarray, window: int) -> int:
    """Pages the kernel maps for a process that touched file pages `pages` of the file `key`:
    every touched page, plus the cached pages of the same fault-around window (`window` bytes,
    aligned in the virtual address space, clipped to the mapping) - mapping by mapping, as RssFile
    counts them. Mappings are those of the native process at its exit."""
    total = 0
    res = set(resident.tolist())
    done = np.zeros(len(pages), dtype=bool)
    for m in range(len(snap)):
        if snap.file_key[m] != key:
            continue
        off0 = int(snap.offset[m]) // PAGE
        n = (int(snap.end[m]) - int(snap.start[m])) // PAGE
        sel = (pages >= off0) & (pages < off0 + n)
        if not sel.any():
            continue
        done |= sel
        mapped = set()
        wp = max(1, window // PAGE)
        va0 = int(snap.start[m]) // PAGE
        for p in pages[sel].tolist():
            va = va0 + p - off0
            lo = max(va - va % wp, va0)
            hi = min(va - va % wp + wp, va0 + n)
            mapped.add(p)
            mapped.update(q for q in range(lo - va0 + off0, hi - va0 + off0) if q in res)
        total += len(mapped)
    return total + int(np.count_nonzero(~done))  # pages outside every native mapping: as touched


def read_around(pages: np.ndarray, before: np.ndarray, npages: int, ra: int) -> int:
    """Pages the kernel reads into the cache when a process faults on file pages `pages` in this
    order, the file's cache holding `before`: a fault on an uncached page reads the `ra` pages
    around it (mmap read-around: from ra/2 before it). Returns the pages added to the cache."""
    cached = np.zeros(max(npages, 1), dtype=bool)
    cached[before[before < npages]] = True
    n0 = int(cached.sum())
    for p in pages.tolist():
        if p < npages and not cached[p]:
            lo = max(0, p - ra // 2)
            cached[lo:min(npages, lo + ra)] = True
    return int(cached.sum()) - n0


def check(trace: str, meta: dict, cmd: list[str], cwd: str | None = None, tolerance: dict | None = None) -> dict:
    """Compare the recording `trace` (with its FILE.json `meta`) of `cmd` with a native run of it."""
    tolerance = {**TOLERANCE, **(tolerance or {})}
    tp = trace_pages(trace, 0)
    names = {int(k): v for k, v in meta.get("files", {}).items()}
    paths = {f: names.get(f) for f in tp["per_file"]}
    for path in paths.values():
        if path:
            drop_cache(path)
    before = {f: resident_pages(p) if p else None for f, p in paths.items()}
    native = run_native(cmd, cwd=cwd)
    after = {f: resident_pages(p) if p else None for f, p in paths.items()}
    snap = parse_maps(native.pop("maps"))
    window = fault_around_bytes()

    file_model = exec_model = 0   # trace pages + fault-around, as RssFile counts them
    cache_new = cache_model = 0   # pages the run brought into the cache; the read-around model of it
    trace_cold = trace_cold_in = 0
    files_measured = files_warm = 0
    for f, pages in tp["per_file"].items():
        b, a, path = before[f], after[f], paths[f]
        if b is None or a is None:
            file_model += len(pages)
            exec_model += len(tp["exec_per_file"].get(f, ()))
            continue
        st = os.stat(path)
        key = (st.st_dev, st.st_ino)
        file_model += fault_around(pages, key, snap, a, window)
        ex = tp["exec_per_file"].get(f)
        if ex is not None:
            exec_model += fault_around(ex, key, snap, a, window)
        files_measured += 1
        files_warm += bool(len(b))
        npages = (st.st_size + PAGE - 1) // PAGE
        cache_new += len(np.setdiff1d(a, b))
        cache_model += read_around(pages, b, npages, read_ahead_pages(path))
        cold = np.setdiff1d(pages, b)
        trace_cold += len(cold)
        trace_cold_in += len(np.intersect1d(cold, a))

    peak = native["peak_pages"]
    rows = [
        ("anon", tp["anon"], tp["anon"], peak["RssAnon"], "ANON pages vs peak RssAnon"),
        ("file", tp["file"], file_model, peak["RssFile"],
         "FILE_MMAP + FILE_EXEC pages (+ fault-around) vs peak RssFile"),
        ("exec", tp["exec"], exec_model, native["exec_rss_pages"],
         "FILE_EXEC pages (+ fault-around) vs Rss of executable file mappings at exit"),
        ("total", tp["anon"] + tp["file"], tp["anon"] + file_model, peak["VmHWM"],
         "anon + file (+ fault-around) vs VmHWM (peak RSS)"),
        ("page cache", trace_cold, cache_model, cache_new,
         "file pages not cached before the run (+ read-around) vs pages the run brought into the cache"),
    ]
    out_rows = []
    ok = True
    for name, raw, model, k, what in rows:
        ratio = model / k if k else (float("inf") if model else 1.0)
        compared = max(model, k) >= MIN_PAGES
        t = tolerance[name]
        good = (not compared) or (1 / t <= ratio <= t)
        ok &= good
        out_rows.append({"what": name, "trace": int(raw), "model": int(model), "kernel": int(k),
                         "ratio": round(ratio, 3), "tolerance": t, "compared": compared, "ok": good,
                         "how": what})
    cover = trace_cold_in / trace_cold if trace_cold else 1.0
    return {"tolerance": tolerance, "ok": bool(ok), "rows": out_rows, "fault_around_bytes": window,
            "page_cache_coverage": round(cover, 4), "files_measured": files_measured, "files_warm": files_warm,
            "native": native, "processes_in_trace": len(meta.get("pids", {})) or None,
            "recorded_exit_status": meta.get("exit_status")}


def check_text(res: dict) -> str:
    lines = [f"reclaim-ext: record --check: the trace's process 0 against a native run of the program "
             f"(pages; model = the trace's pages plus what the kernel adds: fault-around "
             f"{res['fault_around_bytes'] // 1024} KiB, read-around):"]
    for r in res["rows"]:
        verdict = "too small to compare" if not r["compared"] else ("ok" if r["ok"] else "OUT")
        lines.append(f"  {r['what']:<10} trace {r['trace']:>7,}  model {r['model']:>7,}  kernel {r['kernel']:>7,}  "
                     f"model/kernel {r['ratio']:.2f} (tolerance 1/{r['tolerance']:g}..{r['tolerance']:g}) {verdict}"
                     f"  ({r['how']})")
    lines.append(f"  {res['page_cache_coverage']:.1%} of the trace's file pages not cached before were cached after "
                 f"the native run ({res['files_measured']} files, {res['files_warm']} partly cached before: mapped "
                 f"by other processes)")
    st, rst = res["native"]["exit_status"], res.get("recorded_exit_status")
    if rst is not None and st != rst:
        lines.append(f"  note: the native run exited with status {st}, the recorded one with {rst}: "
                     f"they may not have done the same work")
    lines.append(f"  result: {'within' if res['ok'] else 'OUTSIDE'} the tolerance")
    return "\n".join(lines)


__all__ = ["TOLERANCE", "check", "check_text", "drop_cache", "resident_pages", "run_native", "trace_pages"]

