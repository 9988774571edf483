"""`reclaim-ext validate kernel`: replay a file-page trace on the host's page cache under a memcg
limit, count the kernel's misses, and run the classic model on the same trace at the calibrated
capacity. docs/fidelity.md describes what is measured and why.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import platform
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ReclaimExtError
from ..trace import Kind, Trace
from .bitmaps import compare_bitmaps
from .calibrate import calibrate_run, combine, noncompulsory_error, per_run_comparison, relative_error
from .cgroup import ProbeCgroup, check_host, parse_stat, stale_cgroups, _rmdir
from .errors import Unavailable
from .worker import compile_worker, find_compiler, parse_worker_output

PAGE = 4096
SAMPLE_EVERY = 1000     # calibration samples (whole-file mincore + memcg usage)
FLUSH_EVERY = 64        # the worker reads memory.stat every 64 accesses (fresh-stats regime)
LOW_SIBLINGS = ("a", "b")  # memory.low runs (validate/low.py): the probe's children; pid i runs in the i-th,
                           # the first has the memory.low
ACCESS_MODES = ("pread", "mmap")
VMSTAT_KEYS = ("workingset_refault_file", "workingset_activate_file", "workingset_restore_file",
               "workingset_nodereclaim", "pgscan_file", "pgsteal_file", "pgscan_direct", "pgsteal_direct",
               "pgscan_kswapd", "pgsteal_kswapd", "pgactivate", "pgdeactivate", "pgrefill", "pgmajfault", "pgpgin",
               "pswpin", "pswpout", "workingset_refault_anon", "pgscan_anon", "pgsteal_anon")
NO_PAGE_CACHE_FS = ("tmpfs", "ramfs", "hugetlbfs", "devtmpfs")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long)
_libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
_libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)
_libc.mlock.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
MAP_FAILED = ctypes.c_void_p(-1).value


# ---------------------------------------------------------------- the trace

def dense_pages(trace: Trace, max_accesses: int | None = None) -> tuple[np.ndarray, int]:
    """The trace's accesses as dense page indices of one data file (uint32) and the number of
    distinct pages (dense_index of trace_records)."""
    return dense_index(trace_records(trace, max_accesses), trace.name)


def trace_records(trace: Trace, max_accesses: int | None = None) -> np.ndarray:
    """The trace's first `max_accesses` records (all when None) in one array."""
    parts, n = [], 0
    for chunk in trace.chunks():
        if max_accesses is not None and n + len(chunk) > max_accesses:
            chunk = chunk[: max_accesses - n]
        parts.append(chunk)
        n += len(chunk)
        if max_accesses is not None and n >= max_accesses:
            break
    if not parts or n == 0:
        raise ReclaimExtError(f"{trace.name}: the trace has no accesses")
    return np.concatenate(parts)


def dense_index(rec: np.ndarray, name: str) -> tuple[np.ndarray, int]:
    """Records as dense page indices of one data file (uint32) and the number of distinct pages.
    Every record is a read of one page: file pages are keyed by (file, page), anonymous pages by
    (pid, page), and the keys are numbered in sorted order, so sequential runs of a file stay
    sequential. Writes are replayed as reads."""
    anon = rec["kind"] == Kind.ANON
    keys = np.empty((len(rec), 3), dtype=np.uint64)
    keys[:, 0] = anon
    keys[:, 1] = np.where(anon, rec["pid"].astype(np.uint64), rec["file"].astype(np.uint64))
    keys[:, 2] = rec["page"]
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    npages = int(inverse.max()) + 1
    if npages >= 2**32:
        raise ReclaimExtError(f"{name}: {npages} distinct pages do not fit one data file")
    return inverse.astype(np.uint32), npages


# ---------------------------------------------------------------- host helpers

def fs_type(path: str, mounts: str = "/proc/self/mounts") -> str:
    """The file-system type of the mount holding `path`."""
    path = os.path.realpath(path)
    best, typ = "", "?"
    with open(mounts) as fh:
        for line in fh:
            p = line.split()
            if len(p) >= 3:
                mp = p[1].replace("\\040", " ")
                if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
                    best, typ = mp, p[2]
    return typ


def read_ahead_file(path: str) -> str | None:
    """/sys/.../queue/read_ahead_kb of the block device holding `path`, or None (no block device)."""
    st = os.stat(path)
    dev = f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    for cand in (os.path.join(dev, "queue", "read_ahead_kb"), os.path.join(dev, "..", "queue", "read_ahead_kb")):
        if os.path.exists(cand):
            return os.path.realpath(cand)
    return None


@contextmanager
def read_ahead_zero(ra_file: str):
    """read_ahead_kb = 0 for the duration of the block (a file opened inside keeps ra_pages = 0);
    the old value is always written back."""
    with open(ra_file) as fh:
        old = fh.read().strip()
    try:
        with open(ra_file, "w") as fh:
            fh.write("0")
        yield
    finally:
        with open(ra_file, "w") as fh:
            fh.write(old)


def open_no_readaround(path: str) -> tuple[int, dict]:
    """The data file opened with the block device's read-ahead at 0, so the struct file has
    ra_pages = 0 and mmap faults read one page (do_sync_mmap_readahead ignores FADV_RANDOM)."""
    ra = read_ahead_file(path)
    if ra is None:
        raise Unavailable(f"{path}: not on a block device, so mmap read-around cannot be switched off; "
                          "use --access pread or --dir on a disk file system")
    with read_ahead_zero(ra):
        fd = os.open(path, os.O_RDONLY)
    with open(ra) as fh:
        now = fh.read().strip()
    return fd, {"read_ahead_file": ra, "read_ahead_kb_restored": now}


def resident_pages(fd: int, size: int) -> int:
    """Resident pages of an open file (mincore on a fresh mapping; does not touch LRU state)."""
    if size == 0:
        return 0
    addr = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    if addr in (None, MAP_FAILED):
        raise OSError(ctypes.get_errno(), "mmap failed")
    try:
        buf = ctypes.create_string_buffer((size + PAGE - 1) // PAGE)
        if _libc.mincore(addr, size, buf) != 0:
            raise OSError(ctypes.get_errno(), "mincore failed")
        return int((np.frombuffer(buf.raw, dtype=np.uint8) & 1).sum())
    finally:
        _libc.munmap(addr, size)


def evict(fd: int, size: int) -> None:
    """Drop the file's pages from the page cache (POSIX_FADV_DONTNEED, checked with mincore)."""
    for _ in range(5):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        if resident_pages(fd, size) == 0:
            return
        time.sleep(0.05)
    raise ReclaimExtError(f"cannot evict the data file: {resident_pages(fd, size)} pages stay resident")


def write_data_file(path: str, npages: int) -> None:
    """Page i holds the 8-byte value i repeated (the worker checks every read); written, synced and
    dropped from the page cache."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        step = 1024
        for lo in range(0, npages, step):
            hi = min(npages, lo + step)
            os.write(fd, np.repeat(np.arange(lo, hi, dtype=np.uint64), PAGE // 8).tobytes())
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


class PinnedFile:
    """A file mapped and mlocked by this (parent) process: its page cache is charged to the parent's
    memcg and stays resident, so the worker's reads of it charge nothing to the probe memcg."""

    def __init__(self, path: str):
        self.size = os.path.getsize(path)
        fd = os.open(path, os.O_RDONLY)
        try:
            self.addr = _libc.mmap(None, self.size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        finally:
            os.close(fd)
        if self.addr in (None, MAP_FAILED):
            raise OSError(ctypes.get_errno(), f"mmap {path} failed")
        self.locked = _libc.mlock(self.addr, self.size) == 0
        if not self.locked:  # no CAP_IPC_LOCK: at least read it in
            ctypes.string_at(self.addr, self.size)

    def close(self) -> None:
        if self.addr:
            _libc.munmap(self.addr, self.size)
            self.addr = None


def damon_state(proc: str = "/proc", admin: str = "/sys/kernel/mm/damon/admin/kdamonds") -> dict:
    """DAMON on the host: the kdamond threads and each kdamond's state and scheme actions (sysfs
    admin interface). A running `pageout` (or `lru_deprio`, `lru_prio`) scheme reclaims or moves
    pages the probe memcg's own reclaim does not, which shows as foreign evictions."""
    threads = 0
    for d in Path(proc).glob("[0-9]*"):
        try:
            if (d / "comm").read_text().startswith("kdamond"):
                threads += 1
        except OSError:
            continue
    kdamonds = []
    for k in sorted(Path(admin).glob("[0-9]*"), key=lambda p: int(p.name)):
        try:
            state = (k / "state").read_text().strip()
            actions = sorted({a.read_text().strip() for a in k.glob("contexts/*/schemes/*/action")})
        except OSError:
            continue
        kdamonds.append({"id": int(k.name), "state": state, "actions": actions})
    return {"kdamond_threads": threads, "kdamonds": kdamonds,
            "reclaiming": any(kd["state"] == "on" and set(kd["actions"]) & {"pageout", "lru_deprio", "lru_prio"}
                              for kd in kdamonds)}


def vmstat() -> dict[str, int]:
    with open("/proc/vmstat") as fh:
        return parse_stat(fh.read())


@contextmanager
def signals_raise():
    """SIGTERM and SIGHUP raise KeyboardInterrupt inside the block (like Ctrl-C), so every finally
    clause runs: the cgroup is removed and settings are restored."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    old = {}
    for s in (signal.SIGTERM, signal.SIGHUP):
        try:
            old[s] = signal.signal(s, handler)
        except ValueError:  # not the main thread
            pass
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# ---------------------------------------------------------------- one kernel run

def run_worker(cg: ProbeCgroup, exe: str, data_arg: str, trace_path: str, access: str, cpu: int,
               pass_fds: tuple[int, ...]) -> dict:
    """Start the worker inside the cgroup, pinned to `cpu`; wait for it. Ctrl-C kills it (by pid)."""
    def preexec():
        cg.join_self()
        os.sched_setaffinity(0, {cpu})

    cmd = [exe, data_arg, trace_path, access, str(SAMPLE_EVERY), str(FLUSH_EVERY),
           cg.file("memory.stat"), cg.file(cg.ctrl.usage_file)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, pass_fds=pass_fds,
                         preexec_fn=preexec)
    try:
        out, err = p.communicate()
    except BaseException:
        p.kill()
        p.wait()
        raise
    if p.returncode == -signal.SIGKILL:
        raise ReclaimExtError(f"replay worker killed (SIGKILL), most likely by the OOM killer of its memory cgroup "
                              f"({cg.path}): the limit is too small for the worker's own memory; raise --memory")
    if p.returncode != 0:
        how = f"killed by signal {-p.returncode}" if p.returncode < 0 else f"exit {p.returncode}"
        raise ReclaimExtError(f"replay worker failed ({how}): {(err.strip().splitlines() or ['no output'])[-1]}")
    return parse_worker_output(out)


def kernel_run(ctrl, exe: str, data_path: str, data_fd: int, data_size: int, trace_path: str, access: str,
               limit_pages: int, cpu: int, parent: str | None = None) -> dict:
    """One replay in a fresh memcg; the memcg is removed before this returns or raises."""
    evict(data_fd, data_size)
    v0 = vmstat()
    cg = ProbeCgroup(ctrl, limit_pages, parent=parent)
    with cg:
        stat0 = cg.stat()
        if access == "mmap":
            w = run_worker(cg, exe, f"fd:{data_fd}", trace_path, access, cpu, (data_fd,))
        else:
            w = run_worker(cg, exe, data_path, trace_path, access, cpu, ())
        stat1 = cg.stat()
        extra = cg.extra_counters()
        peak = cg.peak_pages()
        v1 = vmstat()
        evict(data_fd, data_size)
    return run_record(w, stat0, stat1, v0, v1, extra, peak, limit_pages)


# the probe memcg's own memory.stat counters kept per run (cgroup v1 has the first five and
# pgmajfault; v2, in the VM, has the rest: the workingset and scan counters of the probe alone,
# which host-wide /proc/vmstat mixes with other processes'; 6.12's has no pswpin/pswpout)
MSTAT_KEYS = ("cache", "rss", "mapped_file", "active_file", "inactive_file", "workingset_refault_file",
              "workingset_activate_file", "workingset_restore_file", "workingset_refault_anon",
              "workingset_activate_anon", "workingset_restore_anon", "pgmajfault",
              "pgscan", "pgsteal", "pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct",
              "pgrefill", "pgactivate", "pgdeactivate",
              "file", "anon", "kernel")


def run_record(w: dict, stat0: dict, stat1: dict, v0: dict, v1: dict, extra: dict, peak: int | None,
               limit_pages: int) -> dict:
    """One kernel run's record from the worker's output (parse_worker_output), the memcg's
    memory.stat before and after, /proc/vmstat before and after, the extra counters and the peak
    (the host path and the VM path, validate/vm.py, both build it here)."""
    dv = {k: v1.get(k, 0) - v0.get(k, 0) for k in VMSTAT_KEYS if k in v0}
    evictions = w["misses"] - w["resident_end"]
    cal = calibrate_run(w["samples"], limit_pages)
    return {
        "misses": w["misses"],
        "accesses": w["accesses"],
        "bad_reads": w["bad"],
        "majflt": w.get("majflt"),
        "read_pages": w.get("read_bytes", 0) // PAGE,
        "seconds": w.get("seconds"),
        "resident_end": w["resident_end"],
        "evictions": evictions,
        # evictions the memcg's own reclaim did not do (the host's DAMON pageout; noise otherwise)
        "foreign_evictions": evictions - dv.get("pgsteal_file", 0) if "pgsteal_file" in dv else None,
        "other_activity": other_activity(dv, evictions, w.get("read_bytes", 0) // PAGE, stat0, stat1),
        "peak_pages": peak,
        "counters": extra,
        "memory_stat_delta": {k: stat1[k] - stat0.get(k, 0) for k in MSTAT_KEYS if k in stat1
                              and k.startswith(("workingset_", "pg"))},
        "memory_stat_end": {k: stat1[k] for k in MSTAT_KEYS if k in stat1 and not k.startswith(("workingset_", "pg"))},
        "vmstat_delta": dv,
        "lru_gen": None,  # the memcg's MGLRU generations at the end: in a VM (vm.guest_run_record)
        "calibration": cal.to_dict(),
        "_cal": cal,
        "_bitmap": w.get("bitmap"),
    }


OTHER_MARGIN = 64  # pages: host-wide counters may run ahead of the probe's by this much (per-CPU batching)


def other_activity(dv: dict, evictions: int, read_pages: int, stat0: dict, stat1: dict) -> dict:
    """What other processes did to the host-wide /proc/vmstat counters during a run: the excess of
    each host-wide delta over what the probe itself accounts for (its evictions, its reads, its own
    memory.stat where the kernel keeps the counter per memcg), where above OTHER_MARGIN pages."""
    own = {"pgsteal_file": evictions, "pgpgin": 4 * read_pages}  # pgpgin counts KiB
    if "workingset_refault_file" in stat1:
        own["workingset_refault_file"] = stat1["workingset_refault_file"] - stat0.get("workingset_refault_file", 0)
    if "pgscan" in stat1:  # cgroup v2 (the probe reads only file pages)
        own["pgscan_file"] = stat1["pgscan"] - stat0.get("pgscan", 0)
    out = {}
    for k, mine in own.items():
        if k in dv and dv[k] - mine > OTHER_MARGIN * (4 if k == "pgpgin" else 1):
            out[k] = int(dv[k] - mine)
    return out


# ---------------------------------------------------------------- the model

def swap_bytes(npages: int) -> int:
    """The guest's swap device (validate.vm, --access anon): every data page, plus 64 MiB."""
    return npages * PAGE + (64 << 20)


# the guest's swap for anon runs (--swap-device): one device of swap_bytes, or zram in front of the
# disk (zram+disk: zram of ZRAM_SHARE of the data pages at priority ZRAM_PRIO, as zram-generator
# sets it up, then the disk of swap_bytes at swapon's default priority), so zram fills and the
# rest goes to the disk
GUEST_SWAP = ("disk", "zram", "zram+disk")
ZRAM_PRIO = 100
ZRAM_SHARE = 4


def zram_front_bytes(npages: int) -> int:
    """zram's disksize in front of the disk (zram+disk): a ZRAM_SHARE-th of the data pages."""
    return max(npages // ZRAM_SHARE, 2) * PAGE


def model_swap(swap_device: str, npages: int) -> dict:
    """The model's RunConfig swap fields for the guest's swap of an anon run (GUEST_SWAP). With
    zram+disk each device has its pages less the swap header's (mkswap's page 0): zram fills."""
    if swap_device != "zram+disk":
        return {"swap": swap_bytes(npages) // PAGE, "swap_device": swap_device}
    return {"swap_devices": [f"kind=zram,size={zram_front_bytes(npages) // PAGE - 1},prio={ZRAM_PRIO}",
                             f"kind=disk,size={swap_bytes(npages) // PAGE - 1}"]}


def lru_gen_seqs(text: str, memcg: str) -> dict | None:
    """max_seq and the evictable min_seq of memcg `memcg`'s lruvec (node 0) in a reading of
    /sys/kernel/debug/lru_gen, the kernel's or the model's (policies.mglru.format_lru_gen):
    lru_gen_seq_show writes a `memcg ID PATH` line, a `node N` line, then one line `seq age_ms
    nr_anon nr_file` per generation from evictable_min_seq at swappiness 100 (the lower of the
    two types' min_seq) to max_seq. None when the memcg or MGLRU is not there."""
    lines = text.splitlines()
    start = next((i for i, x in enumerate(lines) if x.split()[:1] == ["memcg"] and x.split()[-1:] == [memcg]), None)
    if start is None:
        return None
    seqs = []
    for x in lines[start + 1:]:
        p = x.split()
        if not p or p[0] == "memcg" or (p[0] == "node" and seqs):
            break
        if len(p) == 4 and all(v.isdigit() for v in p):
            seqs.append(int(p[0]))
    return {"max_seq": max(seqs), "min_seq": min(seqs)} if seqs else None


def model_run(pages: np.ndarray, npages: int, model_max: int, access: str, policy: str = "classic",
              min_ttl_ms: float = 0, swappiness: int = 60, swap_device: str = "disk", knob: str = "max",
              reclaim_pages: int = 0, nodes: int = 1, low_pages: int = 0, pids: np.ndarray | None = None,
              node_sizes: list[int] | None = None, node_watermarks: list | None = None, preferred: int = 1) -> dict:
    """The model (`policy`: classic, or mglru for a kernel with lru_gen on) on the same accesses:
    pid 0 in memcg `probe` with memory.max = model_max (`knob` "high": memory.high = model_max and
    no memory.max), on a node large enough that only the memcg limit reclaims; no swap;
    `reclaim_pages` > 0: written to the probe's memory.reclaim after the last access (`proactive`).
    `nodes` > 1: that many equal nodes, pid 0 interleaved over them (MPOL_INTERLEAVE); the
    probe's per-node `numa_stat`. `access` "anon": anonymous pages of pid 0 (the first access to a page
    a write, later ones reads, as the VM's worker does), with the guest's swap of swap_bytes
    (`swap_device` disk: a virtio disk, swapped-in pages keep their slots in the swap cache while
    it is at most half full; zram: the slot is freed at swap-in) and `swappiness`. `low_pages` > 0:
    the probe (memory.max) has children probe/a (memory.low = low_pages) and probe/b, access i is
    made by pid `pids[i]` (0 in a, 1 in b); their usage, memory.stat and memory.events are in
    `siblings`. `node_sizes` (the global path, validate/globalpath.py): nodes of these sizes with
    `node_watermarks` ((min, low, high) each), the probe without a limit, pid 0 preferring node `preferred` (fallback
    allowed); each node's counters in `nodes`. `_bitmap` (not JSON; popped by the callers): per access, whether it missed."""
    from ..api import RunConfig
    from ..api import run as api_run
    from ..policies.mglru import format_lru_gen
    from ..trace import ArrayTrace
    from ..trace.record import make_records

    rec = make_records(len(pages))
    anon = access == "anon"
    if anon:
        rec["kind"] = int(Kind.ANON)
        first = np.zeros(len(pages), dtype=bool)
        first[np.unique(pages, return_index=True)[1]] = True
        rec["write"] = first
    else:
        rec["kind"] = int(Kind.FILE_FD if access == "pread" else Kind.FILE_MMAP)
        rec["file"] = 1
    rec["page"] = pages
    memcgs = [f"name=probe,pids=0,{knob}={model_max}"]
    if low_pages:
        rec["pid"] = pids
        memcgs = [f"name=probe,max={model_max}", f"name=probe/{LOW_SIBLINGS[0]},pids=0,low={low_pages}",
                  f"name=probe/{LOW_SIBLINGS[1]},pids=1"]
    memory = npages + model_max + 8192 + npages // 8
    memory *= nodes  # equal nodes, each large enough that only the memcg limit reclaims
    numa = [f"pids=0,interleave={'+'.join(map(str, range(nodes)))}"] if nodes > 1 else []
    if node_sizes:
        memcgs, memory, nodes, numa = ["name=probe,pids=0"], sum(node_sizes), list(node_sizes), [f"pids=0,node={preferred}"]
    swap = model_swap(swap_device, npages) if anon else {"swap": 0, "swap_device": swap_device}
    cfg = RunConfig(policy=policy, workload=None, memory=memory, **swap, swappiness=swappiness, min_ttl_ms=min_ttl_ms,
                    memcgs=memcgs,
                    proactive=[f"{len(pages)}:probe:{reclaim_pages}"] if reclaim_pages else [], nodes=nodes,
                    numa=numa, node_watermarks=node_watermarks or [])
    res = api_run(cfg, trace=ArrayTrace("validate", rec), record_misses=True)
    vm = res["vmstat"]
    mc = next((m for m in res.get("memcgs") or [] if m.get("name") == "/probe"), {})
    siblings = {m["name"].rpartition("/")[2]: {k: m.get(k) for k in ("usage", "low", "memory_stat", "memory_events")}
                for m in res.get("memcgs") or [] if m.get("name", "").startswith("/probe/")}
    return {
        "policy": policy,
        "misses": res["misses"],
        "memcg_max_pages": model_max,
        "knob": knob,
        "proactive": (res.get("proactive") or [None])[0],
        "numa_stat": mc.get("numa_stat"),
        "swap_devices": res.get("swap_devices") if anon else None,
        "siblings": siblings or None,
        "high_delay_jiffies": res.get("cost", {}).get("high_delay_jiffies"),
        "node_pages": memory,
        "global_reclaim_scans": vm.get("pgscan_kswapd", 0) + vm.get("pgscan_direct", 0)
        - mc.get("memory_stat", {}).get("pgscan", 0),
        "memory_stat": mc.get("memory_stat"),
        "vmstat": {k: vm.get(k, 0) for k in ("pswpin", "pswpout", "pgmajfault", "workingset_refault_anon",
                                               "workingset_refault_file", "pgsteal_anon", "pgsteal_file")},
        "memory_events": mc.get("memory_events"),
        "nodes": res.get("nodes") if node_sizes else None,
        "kswapd": {k: vm.get(k, 0) for k in ("pgscan_kswapd", "pgsteal_kswapd", "pgscan_direct", "pgsteal_direct",
                                             "allocstall_normal", "pageoutrun", "kswapd_wakeups")}
        if node_sizes else None,
        "peak_pages": mc.get("peak"),
        # MGLRU: the probe's generations at the end, read as the kernel's are (lru_gen_seqs)
        "lru_gen": lru_gen_seqs(format_lru_gen(res.get("lru_gen") or []), "/probe"),
        "_bitmap": res["miss_bitmap"],
    }


MIN_MODEL_MAX = 32


def run_model_max(limit_pages: int, overhead: int) -> int:
    """The model memcg's max at one run's own calibration (at least MIN_MODEL_MAX pages)."""
    return max(MIN_MODEL_MAX, int(limit_pages) - int(overhead))


def lru_misses(pages: np.ndarray, capacity: int) -> int:
    """Plain LRU (the lru plug-in in plain-cache mode) at `capacity` pages, for contrast."""
    from ..api import RunConfig
    from ..api import run as api_run
    from ..trace import ArrayTrace
    from ..trace.record import make_records

    rec = make_records(len(pages))
    rec["kind"] = int(Kind.FILE_FD)
    rec["file"] = 1
    rec["page"] = pages
    cfg = RunConfig(policy="lru", workload=None, cache=True, capacity=max(1, int(capacity)))
    return int(api_run(cfg, trace=ArrayTrace("validate", rec))["misses"])


# ---------------------------------------------------------------- the whole validation

def validate_kernel(trace: Trace, *, limit_pages: int, access: str = "pread", reps: int = 3,
                    workdir: str | None = None, overhead: int | None = None, max_accesses: int | None = None,
                    cgroup_parent: str | None = None, log: Callable[[str], None] = lambda s: None) -> dict:
    """Replay `trace` `reps` times on the host kernel under a memcg of `limit_pages`, then run the
    classic model at the calibrated capacity. Returns the JSON-ready result."""
    if access not in ACCESS_MODES:
        raise ReclaimExtError(f"access: {access!r} is not one of {', '.join(ACCESS_MODES)}")
    if reps < 1:
        raise ReclaimExtError("reps: need at least 1")
    ctrl = check_host()
    find_compiler()
    for path in stale_cgroups(ctrl):
        try:
            _rmdir(path)
            log(f"removed a probe cgroup left by a killed run: {path}")
        except OSError:
            log(f"warning: a probe cgroup of a killed run is still there: {path}")
    workdir = workdir or "/var/tmp"
    if not os.path.isdir(workdir):
        raise ReclaimExtError(f"--dir {workdir}: no such directory")
    fst = fs_type(workdir)
    if fst in NO_PAGE_CACHE_FS:
        raise Unavailable(f"--dir {workdir} is on {fst}, whose pages are not reclaimable page cache; "
                          "use a directory on a disk file system")
    pages, npages = dense_pages(trace, max_accesses)
    if limit_pages < 64:
        raise ReclaimExtError(f"memory: {limit_pages} pages is too small for the probe memcg (at least 64)")
    with device_lock(workdir):
        return _validate_locked(trace, pages, npages, ctrl, fst, limit_pages=limit_pages, access=access, reps=reps,
                                workdir=workdir, overhead=overhead, cgroup_parent=cgroup_parent, log=log)


def lock_dir() -> str:
    return "/run/lock" if os.path.isdir("/run/lock") else tempfile.gettempdir()


@contextmanager
def device_lock(workdir: str):
    """One validation at a time per block device: the runs evict and read the device's page cache,
    mmap mode sets its read_ahead_kb, and each reads host-wide counters. A second one on the same
    device is refused (Unavailable) while the first holds the lock."""
    import fcntl

    st = os.stat(workdir)
    path = os.path.join(lock_dir(), f"reclaim-ext-validate-{os.major(st.st_dev)}-{os.minor(st.st_dev)}.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise Unavailable(f"another reclaim-ext validation (pid {holder}) is running on the device of {workdir} "
                              f"(lock {path}); wait for it to finish") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)


def _validate_locked(trace: Trace, pages: np.ndarray, npages: int, ctrl, fst: str, *, limit_pages: int, access: str,
                     reps: int, workdir: str, overhead: int | None, cgroup_parent: str | None,
                     log: Callable[[str], None]) -> dict:
    cpu = max(os.sched_getaffinity(0))
    runs: list[dict] = []
    host: dict = {"kernel": platform.release(), "cgroup_version": ctrl.version, "cgroup_root": ctrl.root,
                  "fs_type": fst, "cpu": cpu, "damon": damon_state()}
    if host["damon"]["reclaiming"]:
        log("warning: a DAMON scheme that reclaims or reorders pages is running on this host (kdamond "
            f"{', '.join(str(k['id']) for k in host['damon']['kdamonds'] if k['state'] == 'on')}): it may evict "
            "the probe's pages besides its own reclaim (foreign_evictions in the JSON)")
    tmp = tempfile.mkdtemp(prefix="reclaim-ext-validate-", dir=workdir)
    data_fd = -1
    pinned = None
    try:
        with signals_raise():
            exe = compile_worker(tmp)
            data_path = os.path.join(tmp, "data")
            trace_path = os.path.join(tmp, "trace.u32")
            log(f"writing the data file: {npages} pages ({npages * PAGE >> 20} MiB) in {tmp}")
            write_data_file(data_path, npages)
            pages.tofile(trace_path)
            pinned = PinnedFile(trace_path)
            host["trace_mlocked"] = pinned.locked
            if access == "mmap":
                data_fd, ra = open_no_readaround(data_path)
                host.update(ra)
            else:
                data_fd = os.open(data_path, os.O_RDONLY)
            size = npages * PAGE
            for i in range(reps):
                t0 = time.monotonic()
                r = kernel_run(ctrl, exe, data_path, data_fd, size, trace_path, access, limit_pages, cpu,
                               parent=cgroup_parent)
                log(f"kernel run {i + 1}/{reps}: {r['misses']:,} misses in {time.monotonic() - t0:.1f} s")
                if r["bad_reads"]:
                    raise ReclaimExtError(f"kernel run {i + 1}: {r['bad_reads']} reads returned wrong data")
                runs.append(r)
    finally:
        if data_fd >= 0:
            os.close(data_fd)
        if pinned is not None:
            pinned.close()
        shutil.rmtree(tmp, ignore_errors=True)

    return compare(trace, pages, npages, runs, limit_pages=limit_pages, access=access, overhead=overhead,
                   host=host, regime={"flush_every": FLUSH_EVERY, "sample_every": SAMPLE_EVERY,
                                      "readahead": "POSIX_FADV_RANDOM" if access == "pread"
                                      else "read_ahead_kb 0 at open"}, log=log)


def compare(trace: Trace, pages: np.ndarray, npages: int, runs: list[dict], *, limit_pages: int, access: str,
            overhead: int | None, host: dict, regime: dict, policy: str = "classic", min_ttl_ms: float = 0,
            swappiness: int = 60, swap_device: str = "disk", knob: str = "max", reclaim_pages: int = 0,
            nodes: int = 1, low_pages: int = 0, pids: np.ndarray | None = None,
            log: Callable[[str], None] = lambda s: None) -> dict:
    """Calibrate from the kernel runs (run_record), run the model (`policy`) at the calibrated
    capacity (as memory.max, or memory.high with `knob` "high") and plain LRU at C_eff; the
    JSON-ready result of one validation. `low_pages` > 0: the model's probe has the two
    children, pid `pids[i]` making access i (model_run; the caller compares them, low.py)."""
    reps = len(runs)
    cal = combine([r.pop("_cal") for r in runs], limit_pages, overhead)
    kernel_bits = [r.pop("_bitmap", None) for r in runs]
    for i, r in enumerate(runs, 1):
        if r.get("other_activity"):
            log(f"warning: kernel run {i}: other processes changed the host-wide counters it reads: " +
                ", ".join(f"{k} +{v:,}" for k, v in r["other_activity"].items()))
    log(f"model: {policy}, memcg {knob} {cal.model_max} pages (limit {limit_pages} − overhead {cal.overhead})")
    model = model_run(pages, npages, cal.model_max, access, policy, min_ttl_ms, swappiness, swap_device, knob,
                      reclaim_pages, nodes, low_pages, pids)
    km = [r["misses"] for r in runs]
    kmean = statistics.fmean(km)
    c_eff = statistics.fmean(r["calibration"]["c_eff"] for r in runs)
    # run by run: each kernel run against the model at its own calibrated capacity
    overheads = [cal.overhead if cal.source == "given" else r["calibration"]["overhead"] for r in runs]
    bits = {cal.model_max: model.pop("_bitmap")}
    by_max = {cal.model_max: model["misses"]}
    for o in overheads:
        mm = run_model_max(limit_pages, o)
        if mm not in by_max:
            m = model_run(pages, npages, mm, access, policy, min_ttl_ms, swappiness, swap_device, knob, reclaim_pages,
                          nodes, low_pages, pids)
            by_max[mm], bits[mm] = m["misses"], m["_bitmap"]
    run_max = [run_model_max(limit_pages, o) for o in overheads]
    per_run = per_run_comparison(km, [by_max[m] for m in run_max], overheads, limit_pages, npages)
    per_access = compare_bitmaps(pages, kernel_bits, bits, run_max, cal.model_max)
    out = {
        "workload": trace.name,
        "trace_params": trace.params,
        "access": access,
        "accesses": int(len(pages)),
        "distinct_pages": npages,
        "limit_pages": limit_pages,
        "reps": reps,
        "kernel_misses": kmean,
        "kernel_misses_min": min(km),
        "kernel_misses_max": max(km),
        "kernel_misses_cv": statistics.pstdev(km) / kmean if kmean else 0.0,
        "model_misses": model["misses"],
        "error": relative_error(model["misses"], kmean),
        # on non-compulsory misses (misses − distinct pages); None when the kernel had none
        "error_noncompulsory": noncompulsory_error(model["misses"], kmean, npages),
        "per_run": per_run,
        "lru_misses_at_c_eff": lru_misses(pages, round(c_eff)),
        "c_eff": c_eff,
        "calibration": cal.to_dict(),
        "model": model,
        "kernel_runs": runs,
        "regime": regime,
        "host": host,
    }
    if per_access is not None:
        out["bitmaps"], out["divergence"] = per_access
    if access == "anon":
        out["swap"] = swap_comparison(runs, model)
    if knob != "max":
        out["knob"] = knob
        out["high"] = high_comparison(runs, model)
    if nodes > 1:
        out["nodes"] = nodes
        out["numa_stat"] = {"kernel": [r.get("numa_stat") for r in runs], "model": model.get("numa_stat")}
    if len(model.get("swap_devices") or ()) > 1:  # each device's I/O and slots (the VM's per-device sections)
        out["swap_devices"] = {"kernel": [r.get("swap_devices") for r in runs], "model": model["swap_devices"]}
    if reclaim_pages:
        p = model.get("proactive") or {}
        out["reclaim"] = {"requested_pages": reclaim_pages, "kernel": [r.get("reclaim") for r in runs],
                          "model_reclaimed_pages": p.get("reclaimed"), "model_result": p.get("result")}
    return out


def high_comparison(runs: list[dict], model: dict) -> dict:
    """memory.high runs: the probe's memory.events `high` (times it went over high; each kernel
    run's, from the guest) and its peak usage, against the model's."""
    k_high = [r.get("counters", {}).get("events_high") for r in runs]
    k_peak = [r.get("peak_pages") for r in runs]
    return {"kernel_events_high": k_high, "model_events_high": (model.get("memory_events") or {}).get("high"),
            "kernel_peak_pages": k_peak, "model_peak_pages": model.get("peak_pages"),
            "model_high_delay_jiffies": model.get("high_delay_jiffies")}


def mean_known(xs):
    """The mean of the values that are not None (None when there are none)."""
    xs = [x for x in xs if x is not None]
    return statistics.fmean(xs) if xs else None


def swap_comparison(runs: list[dict], model: dict) -> dict:
    """Anon runs: the kernel's swap-ins and swap-outs (Δpswpin, Δpswpout of the guest's
    /proc/vmstat; the probe is the only process that swaps), its major faults (the worker's
    ru_majflt) and anon refaults, against the model's pswpin, pswpout, pgmajfault and
    workingset_refault_anon."""
    mean = mean_known
    k_in = mean([r["vmstat_delta"].get("pswpin") for r in runs])
    k_out = mean([r["vmstat_delta"].get("pswpout") for r in runs])
    k_maj = mean([r.get("majflt") for r in runs])
    k_ref = mean([r["memory_stat_delta"].get("workingset_refault_anon") for r in runs])
    mv = model.get("vmstat", {})
    return {"kernel_pswpin": k_in, "kernel_pswpout": k_out, "kernel_majflt": k_maj, "kernel_refault_anon": k_ref,
            "model_pswpin": mv.get("pswpin"), "model_pswpout": mv.get("pswpout"),
            "model_pgmajfault": mv.get("pgmajfault"), "model_refault_anon": mv.get("workingset_refault_anon"),
            "error_pswpin": None if not k_in else relative_error(mv.get("pswpin", 0), k_in),
            "error_pswpout": None if not k_out else relative_error(mv.get("pswpout", 0), k_out),
            "error_majflt": None if not k_maj else relative_error(mv.get("pgmajfault", 0), k_maj)}
