"""`reclaim-ext validate kernel --vm KERNEL`: the same replay as on the host, on a real Debian
kernel (or any vmlinuz) booted with qemu, with MGLRU on or off (`--lru-gen`).

One boot per invocation: the guest's /init (vmimage.py) makes a cgroup v2 memcg with memory.max
= the limit, drops the caches, runs the statically linked worker in it `reps` times, prints every
run's worker output, memory.stat and /proc/vmstat before and after between markers on the serial
console, and powers off. The host reads the console (parse_console), turns each run into the host
path's run record (kernel.run_record) and compares it with the model (kernel.compare): the model
runs MGLRU when the guest's lru_gen is on, classic otherwise.

qemu tries KVM first and falls back to TCG (`-accel tcg -cpu max`) when KVM is missing or the
guest stops early (on some hosts KVM reports "emulation failure" during boot); which one ran is
in the result (`host.accel`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from typing import Callable

import numpy as np

from ..errors import ReclaimExtError
from ..trace import Trace
from .errors import Unavailable
from .kernel import (FLUSH_EVERY, LOW_SIBLINGS, PAGE, ZRAM_PRIO, zram_front_bytes, SAMPLE_EVERY, compare, dense_pages, lru_gen_seqs, run_record, signals_raise,
                     swap_bytes)
from .cgroup import parse_stat
from .vmimage import (GUEST_ACCESS, INSTALL_HINT, MARK, PIDS_FILE, TRACE_FILE, GuestPlan, build_disk, build_initramfs, compile_static_worker,
                      find_busybox, init_script, module_load_order, resolve_kernel, WANTED_MODULES, ZRAM_MODULES)
from .worker import parse_worker_output

QEMU = "qemu-system-x86_64"
KVM_FAILURE = ("KVM internal error", "emulation failure", "failed to initialize kvm", "Could not access KVM")
KVM_DEV = "/dev/kvm"
KVM_BOOT_WAIT = 60.0       # seconds KVM gets to reach the guest's /init before falling back to TCG
TAIL_LINES = 12
DEFAULT_SWAPPINESS = 60
ZRAM_REGIME = "zram (/dev/zram0, the zram module's default compressor), memory.swap.max max"


class GuestError(ReclaimExtError):
    """The guest did not produce results (it did not boot, failed, or timed out)."""


def find_qemu() -> str:
    q = shutil.which(QEMU)
    if not q:
        raise Unavailable(f"{QEMU} not found: booting a kernel needs qemu ({INSTALL_HINT})")
    return q


def guest_memory_mib(limit_pages: int, trace_bytes: int) -> int:
    """The guest's RAM: the memcg limit, the trace (copied into the initramfs' tmpfs) and room for
    the kernel and busybox, so only the memcg limit reclaims."""
    return max(512, (limit_pages * PAGE + 2 * trace_bytes) // (1 << 20) + 384)


def qemu_command(qemu: str, accel: str, vmlinuz: str, initrd: str, disk: str, memory_mib: int,
                 swap: str | None = None, nodes: int = 1) -> list[str]:
    """The qemu command line; `nodes` > 1: that many NUMA nodes sharing memory_mib equally (RAM
    backends, the vCPU on node 0)."""
    cmd = [qemu, "-accel", accel]
    if accel == "tcg":
        cmd += ["-cpu", "max"]
    else:
        cmd += ["-cpu", "host"]
    if nodes > 1:
        each = memory_mib // nodes
        memory_mib = each * nodes
        for n in range(nodes):
            cmd += ["-object", f"memory-backend-ram,id=ram{n},size={each}M",
                    "-numa", f"node,nodeid={n},memdev=ram{n}" + (",cpus=0" if n == 0 else "")]
    return cmd + ["-m", str(memory_mib), "-smp", "1", "-nographic", "-no-reboot", "-nic", "none",
                  "-kernel", vmlinuz, "-initrd", initrd,
                  "-append", "console=ttyS0 panic=-1 loglevel=1 quiet",
                  "-drive", f"file={disk},if=virtio,format=raw,cache=none"] + \
        (["-drive", f"file={swap},if=virtio,format=raw,cache=none"] if swap else [])


def _tail(text: str, n: int = TAIL_LINES) -> str:
    lines = [x.strip() for x in text.replace("\r", "").splitlines() if x.strip()]
    return " | ".join(lines[-n:]) if lines else "(no console output)"


def _read(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def boot(cmd: list[str], workdir: str, timeout: float, *, accel: str, boot_wait: float | None = None,
         log: Callable[[str], None] = lambda s: None) -> str:
    """Run qemu until the guest prints the done marker and powers off; returns the console text.
    Raises GuestError (with the console tail) on a timeout, a qemu failure, or (KVM only) a guest
    that stops before /init or within `boot_wait` seconds. qemu is killed on every way out."""
    console = os.path.join(workdir, f"console-{accel}.log")
    errlog = os.path.join(workdir, f"qemu-{accel}.err")
    with open(console, "wb") as out, open(errlog, "wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=workdir)
    t0 = time.monotonic()
    try:
        while True:
            rc = proc.poll()
            text = _read(console)
            done = f"{MARK} done" in text
            if rc is not None:
                if done:
                    return text
                raise GuestError(f"qemu ({accel}) exited with {rc} before the guest finished: "
                                 f"{_tail(_read(errlog), 3)}; console: {_tail(text)}")
            if done:
                # the guest powers off right after the marker; give it a moment, then stop it
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
                return _read(console)
            if accel == "kvm":
                e = _read(errlog)
                if any(s in e for s in KVM_FAILURE):
                    raise GuestError(f"KVM failed: {_tail(e, 2)}")
                if boot_wait is not None and time.monotonic() - t0 > boot_wait and f"{MARK} init" not in text:
                    raise GuestError(f"KVM guest did not reach /init within {boot_wait:.0f} s")
            if time.monotonic() - t0 > timeout:
                raise GuestError(f"the guest did not finish within {timeout:.0f} s ({accel}); console tail: "
                                 f"{_tail(text)}")
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def run_guest(qemu: str, vmlinuz: str, initrd: str, disk: str, memory_mib: int, workdir: str, timeout: float,
              accel: str = "auto", log: Callable[[str], None] = lambda s: None,
              swap: str | None = None, nodes: int = 1) -> tuple[str, str, str | None]:
    """Boot with KVM, falling back to TCG if KVM is unusable. Returns (console, accel used, why KVM was not used)."""
    why = None
    if accel in ("auto", "kvm"):
        if os.access(KVM_DEV, os.R_OK | os.W_OK):
            try:
                log("booting the guest with KVM")
                cmd = qemu_command(qemu, "kvm", vmlinuz, initrd, disk, memory_mib, swap, nodes)
                return boot(cmd, workdir, timeout, accel="kvm", boot_wait=KVM_BOOT_WAIT, log=log), "kvm", None
            except GuestError as e:
                if accel == "kvm":
                    raise
                why = str(e)
        else:
            why = f"{KVM_DEV} is not accessible"
            if accel == "kvm":
                raise Unavailable(f"--vm-accel kvm: {why}")
        log(f"KVM not usable ({why[:200]}); falling back to TCG (emulation, slower)")
    cmd = qemu_command(qemu, "tcg", vmlinuz, initrd, disk, memory_mib, swap, nodes)
    return boot(cmd, workdir, timeout, accel="tcg", log=log), "tcg", why


# ---------------------------------------------------------------- the console

def parse_console(text: str) -> dict:
    """The guest's console output as {"release", "lru_gen", "min_ttl_ms", "guest", "warnings",
    "runs": [{"rc", "out", "err", "stat0", ...}]}. An `error` line raises GuestError with it."""
    res: dict = {"release": None, "lru_gen": None, "min_ttl_ms": None, "guest": {}, "warnings": [], "runs": [],
                 "swap": None}
    run = None
    section = None
    for raw in text.replace("\r", "").splitlines():
        at = raw.find(MARK + " ")
        if at >= 0:     # a marker; the first may follow the firmware's escape sequences on its line
            raw = raw[at:]
            word, _, rest = raw[len(MARK) + 1:].partition(" ")
            section = None
            if word == "init":
                res["release"] = rest.strip()
            elif word == "error":
                raise GuestError(f"in the guest: {rest.strip()}")
            elif word == "warning":
                res["warnings"].append(rest.strip())
            elif word == "lru_gen":
                p = rest.split()
                res["lru_gen"] = p[0] if p else None
                res["min_ttl_ms"] = int(p[1]) if len(p) > 1 and p[1].isdigit() else None
            elif word == "swap":       # swap devices (lines of /proc/swaps), swappiness, THP setting
                p = rest.split()
                res["swap"] = {"devices": int(p[0]) - 1 if p and p[0].isdigit() else None,
                               "swappiness": int(p[1]) if len(p) > 1 and p[1].isdigit() else None,
                               "thp": p[2] if len(p) > 2 else None}
            elif word == "global":     # the global path's min_free_kbytes, watermark_scale_factor, lowmem_reserve_ratio
                p = rest.split()
                if len(p) >= 3 and p[0].isdigit() and p[1].isdigit():
                    res["global"] = {"min_free_kbytes": int(p[0]), "watermark_scale_factor": int(p[1]),
                                     "lowmem_reserve_ratio": [int(x) for x in p[2].split(",") if x.isdigit()]}
            elif word == "guest":
                for kv in rest.split():
                    k, _, v = kv.partition("=")
                    res["guest"][k] = int(v) if v.isdigit() else v
            elif word == "run":
                p = rest.split()
                run = {"n": int(p[0]), "rc": None}
                for kv in p[1:]:        # rc=0, and in newer guests trace=, access=, limit= (bytes)
                    k, _, v = kv.partition("=")
                    run[k] = int(v) if v.lstrip("-").isdigit() else v
                res["runs"].append(run)
            elif word == "section" and run is not None:
                section = rest.strip()
                run[section] = []
            elif word == "end":
                run = None
            continue
        if run is not None and section is not None:
            run[section].append(raw)
    for r in res["runs"]:
        for k, v in list(r.items()):
            if isinstance(v, list):
                r[k] = "\n".join(v)
    return res


def lru_gen_on(value: str | None) -> bool:
    """/sys/kernel/mm/lru_gen/enabled reads a hex mask (0x0007 on, 0x0000 off) or `none` (no MGLRU)."""
    if not value or value == "none":
        return False
    try:
        return int(value, 16) != 0
    except ValueError:
        return value.lower() in ("y", "on")


def guest_run_record(r: dict, limit_pages: int) -> dict:
    """One guest run as the host path's run record (kernel.run_record), with its memcg's MGLRU
    generations at the end (`lru_gen`, lru_gen_seqs; None without MGLRU)."""
    if r.get("rc") != 0:
        err = [x for x in r.get("err", "").splitlines() if x.strip()]
        why = "killed by the OOM killer? raise --memory" if r.get("rc") == 137 else (err[-1] if err else "no output")
        raise GuestError(f"guest run {r.get('n')}: the replay worker failed (exit {r.get('rc')}): {why}")
    try:
        w = parse_worker_output(r.get("out", ""))
    except (RuntimeError, ValueError) as e:
        raise GuestError(f"guest run {r.get('n')}: {e}") from None
    extra = {f"events_{k}": v for k, v in parse_stat(r.get("events", "")).items()}
    peak = r.get("peak", "").strip()
    rec = run_record(w, parse_stat(r.get("stat0", "")), parse_stat(r.get("stat1", "")),
                     parse_stat(r.get("vmstat0", "")), parse_stat(r.get("vmstat1", "")), extra,
                     int(peak) // PAGE if peak.isdigit() else None, limit_pages)
    rec["lru_gen"] = lru_gen_seqs(r.get("lru_gen", ""), f"/probe{r.get('n')}")
    if r.get("reclaim", "").strip():
        rec["reclaim"] = parse_reclaim(r["reclaim"], parse_stat(r.get("stat1", "")))
    if f"current_{LOW_SIBLINGS[0]}" in r:   # a memory.low run: the probe's two children
        from .low import sibling_record

        rec["siblings"] = sibling_record(r)
        rec["moves"] = parse_worker_output(r.get("out", "")).get("moves")
    numa = parse_numa_stat(r.get("numa_stat", ""))
    if len(numa.get("file", ())) > 1:  # several nodes
        rec["numa_stat"] = numa
    if r.get("nodes0", "").strip():  # the global path: each node's zones and counters (globalpath.py)
        from .globalpath import global_run_record

        rec["global"] = global_run_record(r["nodes0"], r.get("nodes1", ""), parse_stat(r.get("vmstat0", "")),
                                          parse_stat(r.get("vmstat1", "")))
    if r.get("swaps", "").strip():
        rec["swap_devices"] = parse_swap_devices(r.get("swaps", ""), r.get("swapio0", ""), r.get("swapio1", ""))
    return rec


SWAP_KINDS = {"zram": "zram", "vd": "disk"}  # guest block device name prefix -> swap device kind


def parse_swap_devices(swaps: str, io0: str, io1: str) -> list[dict]:
    """Each swap device of a guest run, in /proc/swaps' order (swapon order): its kind, slots used
    at the end and priority (/proc/swaps: Used in KiB), and the pages read and written during the
    run (its /sys/block/DEV/stat sectors before and after: fields 3 and 7, 512-byte sectors; with
    page-cluster 0 each swap-in reads one page)."""
    def io(text: str) -> dict:
        out = {}
        for line in text.splitlines():
            p = line.split()
            if len(p) >= 8 and all(x.isdigit() for x in p[1:8]):
                out[p[0]] = (int(p[3]), int(p[7]))
        return out

    before, after = io(io0), io(io1)
    devs = []
    for line in swaps.splitlines()[1:]:
        p = line.split()
        if len(p) < 5 or not p[3].isdigit():
            continue
        name = p[0].rpartition("/")[2]
        kind = next((k for pre, k in SWAP_KINDS.items() if name.startswith(pre)), name)
        r0, w0 = before.get(name, (0, 0))
        r1, w1 = after.get(name, (r0, w0))
        devs.append({"kind": kind, "used_pages": int(p[3]) // 4, "priority": int(p[4]),
                     "pswpin": (r1 - r0) // 8, "pswpout": (w1 - w0) // 8})
    return devs


def parse_numa_stat(text: str) -> dict:
    """memory.numa_stat (`file N0=4096 N1=8192`, ...) as {key: [node 0, node 1, ...]}: the anon and
    file sizes in pages, the workingset counters as counts (the model's `numa_stat` keys)."""
    from ..core.engine import Simulator

    counts = Simulator.NUMA_STAT
    out = {}
    for line in text.splitlines():
        key, *cols = line.split()
        if key not in ("anon", "file") + counts:
            continue
        vals = [int(c.partition("=")[2]) for c in cols if c.startswith("N") and c.partition("=")[2].isdigit()]
        out[key] = vals if key in counts else [v // PAGE for v in vals]
    return out


def parse_reclaim(text: str, stat1: dict) -> dict:
    """The guest's memory.reclaim after a replay (its `reclaim` section: before=, after= bytes of
    memory.current, the write's rc and error, then memory.stat): the page-cache pages it took
    (memory.stat's file before minus after), its result ("ok", or the error: EAGAIN)."""
    head, _, stat = text.strip().partition("\n")
    kv = dict(p.partition("=")[::2] for p in head.split())
    after = parse_stat(stat)
    err = kv.get("error", "").replace("_", " ").strip()
    ok = kv.get("rc") == "0"
    return {"memory_current_before_pages": int(kv.get("before", 0)) // PAGE,
            "memory_current_after_pages": int(kv.get("after", 0)) // PAGE,
            "reclaimed_pages": (stat1.get("file", 0) - after.get("file", 0)) // PAGE,
            "result": "ok" if ok else ("EAGAIN" if "temporarily unavailable" in err.lower() else err or "failed")}


# ---------------------------------------------------------------- the whole validation

def default_timeout(accesses: int, reps: int) -> float:
    """Boot (~5-30 s under TCG) plus ~1 ms per access and run under TCG (200K accesses took 17-47 s)."""
    return 180.0 + reps * accesses * 1e-3


def guest_timeout(total_accesses: int) -> float:
    """The default timeout of a boot that replays `total_accesses` in all."""
    return default_timeout(total_accesses, 1)


def boot_plan(k, plan: GuestPlan, traces: dict[str, np.ndarray], npages: int, *, qemu: str, busybox: str,
              workdir: str, timeout: float, accel: str = "auto", worker: str | None = None,
              log: Callable[[str], None] = lambda s: None) -> dict:
    """One boot of kernel `k` (a KernelImage) running `plan` over `traces` ({file name on the disk:
    pages}) and an `npages` data file. Returns {"parsed" (parse_console), "console", "accel",
    "kvm_fallback_reason", "memory_mib", "modules", "seconds"}; GuestError when the guest did not
    report every run of the plan."""
    zram = plan.swap and "zram" in plan.swap_device
    mods = module_load_order(k.modules_dir, WANTED_MODULES + (ZRAM_MODULES if zram else ()))
    runs = plan.guest_runs()
    tmp = tempfile.mkdtemp(prefix="reclaim-ext-vm-", dir=workdir)
    t0 = time.monotonic()
    try:
        with signals_raise():
            exe = worker or compile_static_worker(tmp)
            initrd = os.path.join(tmp, "initrd.gz")
            info = build_initramfs(initrd, busybox, exe, mods, init_script(plan))
            disk = os.path.join(tmp, "disk.img")
            build_disk(disk, traces, npages, os.path.join(tmp, "disk"))
            trace_bytes = sum(len(traces[t]) for t in plan.trace_files()) * 4
            mem = (plan.limit_pages * PAGE >> 20) if plan.knob == "none" else \
                guest_memory_mib(max(lim for _, _, lim in runs), trace_bytes)
            log(f"booting {k.package or k.vmlinuz} ({mem} MiB, modules: {', '.join(info['modules']) or 'none'}); "
                f"{len(runs)} run(s) inside, timeout {timeout:.0f} s")
            swap = None
            if plan.swap and "disk" in plan.swap_device:
                swap = os.path.join(tmp, "swap.img")
                with open(swap, "wb") as fh:     # sparse: room to swap out every data page and more
                    fh.truncate(swap_bytes(npages))
            console, used, why = run_guest(qemu, k.vmlinuz, initrd, disk, mem, tmp, timeout, accel, log, swap=swap,
                                           nodes=plan.nodes)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    parsed = parse_console(console)
    for w in parsed["warnings"]:
        log(f"warning: in the guest: {w}")
    if len(parsed["runs"]) != len(runs):
        raise GuestError(f"the guest reported {len(parsed['runs'])} of {len(runs)} runs; console tail: {_tail(console)}")
    return {"parsed": parsed, "console": console, "accel": used, "kvm_fallback_reason": why, "memory_mib": mem,
            "modules": info["modules"], "seconds": time.monotonic() - t0}


def check_lru_gen(parsed: dict, lru_gen: str | None) -> bool:
    """Whether the guest ran MGLRU; GuestError when --lru-gen on did not take."""
    mglru = lru_gen_on(parsed["lru_gen"])
    if lru_gen == "on" and not mglru:
        raise GuestError(f"the guest's lru_gen reads {parsed['lru_gen']} after writing y")
    return mglru


def mglru_model(release: str | None) -> str:
    """The model policy for a guest running MGLRU: `mglru-6.12` (the rules before the December
    2024 rework) for a kernel older than 6.14, else `mglru`."""
    import re

    m = re.match(r"(\d+)\.(\d+)", release or "")
    if m and (int(m.group(1)), int(m.group(2))) < (6, 14):
        return "mglru-6.12"
    return "mglru"


def check_args(access: str, reps: int, lru_gen: str | None, min_ttl_ms: int | None) -> None:
    if access not in GUEST_ACCESS:
        raise ReclaimExtError(f"access: {access!r} is not one of {', '.join(GUEST_ACCESS)}")
    if reps < 1:
        raise ReclaimExtError("reps: need at least 1")
    if lru_gen not in ("on", "off", None):
        raise ReclaimExtError(f"lru_gen: {lru_gen!r} is not on or off")
    if min_ttl_ms is not None and lru_gen != "on":
        raise ReclaimExtError("min_ttl_ms is MGLRU's: it needs --lru-gen on")


def validate_vm(trace: Trace, kernel: str, *, limit_pages: int, access: str = "pread", reps: int = 3,
                lru_gen: str | None = None, min_ttl_ms: int | None = None, modules: str | None = None,
                workdir: str | None = None, overhead: int | None = None, max_accesses: int | None = None,
                timeout: float | None = None, accel: str = "auto", cache: str | None = None,
                swappiness: int | None = None, swap_device: str = "disk", knob: str = "max",
                reclaim_pages: int = 0, nodes: int = 1, low_pages: int = 0,
                log: Callable[[str], None] = lambda s: None) -> dict:
    """Replay `trace` `reps` times in a VM booting `kernel` (validate_kernel's result, plus the
    guest's kernel, lru_gen state and the accelerator in `host`). `lru_gen` None leaves the
    kernel's default; the model runs MGLRU when the guest's lru_gen reads on. `access` "anon":
    the pages are anonymous memory, with a swap device in the guest (`swap_device`: a virtio disk
    or zram, of swap_bytes; swappiness `swappiness`, default 60) and the model run with anon
    records and the same kind of swap. `knob` "high": the limit is the probe's memory.high
    (memory.max left at max), in the guest and in the model. `reclaim_pages` > 0 (pread only):
    after each replay, that much is written to the probe's memory.reclaim, and to the model's
    after its run; the pages each took and the result (ok or EAGAIN) are compared. `nodes` 2: a
    guest of two NUMA nodes, the worker interleaved over them (MPOL_INTERLEAVE), the model on two
    nodes with the task interleaved; the probe's memory.numa_stat is compared with the model's.
    `low_pages` > 0 (pread, memory.max, one node): the probe gets children a (memory.low =
    low_pages) and b; the trace's pid 0 runs in a and pid 1 in b (validate/low.py), one worker
    moving between them; misses, memory.current, memory.events low and refaults are compared per
    child."""
    check_args(access, reps, lru_gen, min_ttl_ms)
    if nodes not in (1, 2):
        raise ReclaimExtError(f"nodes: {nodes} guest nodes; 1 or 2")
    if reclaim_pages and access != "pread":
        raise ReclaimExtError("reclaim: only with pread access (after the replay the worker has exited: its "
                              "mappings and anon memory are gone in the guest, not in the model)")
    if limit_pages < 64:
        raise ReclaimExtError(f"memory: {limit_pages} pages is too small for the probe memcg (at least 64)")
    if low_pages:
        check_low(low_pages, limit_pages, access, knob, reclaim_pages, nodes)
    if knob == "none":
        check_global(limit_pages, access, reclaim_pages, nodes, low_pages)
    qemu = find_qemu()
    busybox = find_busybox()
    pids = None
    if low_pages:
        from .low import sibling_trace

        pages, pids, npages = sibling_trace(trace, max_accesses)
    else:
        pages, npages = dense_pages(trace, max_accesses)
    workdir = workdir or "/var/tmp"
    if not os.path.isdir(workdir):
        raise ReclaimExtError(f"--dir {workdir}: no such directory")
    k = resolve_kernel(kernel, modules, cache, log)
    if swappiness is not None and access != "anon":
        raise ReclaimExtError("swappiness: only with anon access (the file runs have no swap)")
    anon = access == "anon"
    swappiness = (DEFAULT_SWAPPINESS if swappiness is None else swappiness) if anon else None
    if swap_device != "disk" and not anon:
        raise ReclaimExtError("swap device: only with anon access (the file runs have no swap)")
    plan = GuestPlan(limit_pages=limit_pages, reps=reps, access=access, lru_gen=lru_gen, min_ttl_ms=min_ttl_ms,
                     sample_every=SAMPLE_EVERY, flush_every=FLUSH_EVERY, swap=anon, swappiness=swappiness,
                     swap_device=swap_device, swap_bytes=swap_bytes(npages), zram_bytes=zram_front_bytes(npages),
                     knob=knob,
                     reclaim_bytes=reclaim_pages * PAGE, nodes=nodes, low_bytes=low_pages * PAGE)
    timeout = timeout or default_timeout(len(pages), reps)
    log(f"disk image: {npages} data pages ({npages * PAGE >> 20} MiB) and {len(pages):,} accesses")
    files = {TRACE_FILE: pages} if pids is None else {TRACE_FILE: pages, PIDS_FILE: pids}
    b = boot_plan(k, plan, files, npages, qemu=qemu, busybox=busybox, workdir=workdir,
                  timeout=timeout, accel=accel, log=log)
    parsed, used = b["parsed"], b["accel"]
    runs = []
    for r in parsed["runs"]:
        rec = guest_run_record(r, limit_pages)
        if rec["bad_reads"]:
            raise GuestError(f"guest run {r['n']}: {rec['bad_reads']} reads returned wrong data")
        log(f"guest run {r['n']}/{reps}: {rec['misses']:,} misses in {rec['seconds']:.1f} s ({used})")
        runs.append(rec)
    mglru = check_lru_gen(parsed, lru_gen)
    host = vm_host(k, b)
    regime = vm_regime(access)
    if anon:
        if not parsed.get("swap") or not parsed["swap"].get("devices"):
            raise GuestError(f"the guest has no swap device active ({parsed.get('swap')})")
        host["swap"] = dict(parsed["swap"], bytes=swap_bytes(npages), device=swap_device)
        regime.update(swappiness=swappiness, page_cluster=0, thp="never", zswap="off or absent")
        if swap_device == "zram":
            regime["swap"] = ZRAM_REGIME
        elif swap_device == "zram+disk":
            regime["swap"] = (f"zram (/dev/zram0, {zram_front_bytes(npages) // PAGE} pages, priority {ZRAM_PRIO}) "
                              f"in front of a virtio disk (/dev/vdb), memory.swap.max max")
    if low_pages:
        from .low import CHUNK

        regime["low"] = (f"probe children {LOW_SIBLINGS[0]} (memory.low {low_pages} pages) and {LOW_SIBLINGS[1]}; "
                         f"one worker, started in a third child w (its own memory), moves into the child of the "
                         f"trace's pid; each pid's accesses in runs of {CHUNK}")
    if knob == "none":
        from .globalpath import compare_global

        if not parsed.get("global"):
            raise GuestError("the guest did not report its global-path settings (min_free_kbytes)")
        host["global"] = parsed["global"]
        regime["global"] = ("no memcg limit; the worker prefers node 1 (MPOL_PREFERRED), cachestat(2) for the "
                            "hit/miss checks; lowmem_reserve_ratio keeps ZONE_DMA out of page cache; "
                            "watermark_boost_factor 0")
        return compare_global(trace, pages, npages, runs, guest=parsed["global"], host=host, regime=regime,
                              policy=mglru_model(parsed["release"]) if mglru else "classic",
                              min_ttl_ms=(parsed["min_ttl_ms"] or 0) if mglru else 0, log=log)
    out = compare(trace, pages, npages, runs, limit_pages=limit_pages, access=access, overhead=overhead,
                  host=host, regime=regime, policy=mglru_model(parsed["release"]) if mglru else "classic",
                  min_ttl_ms=(parsed["min_ttl_ms"] or 0) if mglru else 0, swappiness=swappiness or 60,
                  swap_device=swap_device, knob=knob, reclaim_pages=reclaim_pages, nodes=nodes, low_pages=low_pages,
                  pids=pids, log=log)
    if low_pages:
        from .low import low_comparison

        out["low"] = low_comparison(out, pids, low_pages)
    return out


GLOBAL_MIN_MIB = 256   # the global path's smallest guest (two nodes): room for the kernel and busybox on node 0


def check_global(memory_pages: int, access: str, reclaim_pages: int, nodes: int, low_pages: int) -> None:
    """The global path's arguments (`--knob none`: --memory is the guest's memory): one error line
    for what it cannot take."""
    if nodes != 2:
        raise ReclaimExtError("knob none (the global path): needs --vm-nodes 2 (the worker prefers node 1 and "
                              "falls back to node 0)")
    if access != "pread":
        raise ReclaimExtError("knob none (the global path): only with pread access (the hit/miss checks use "
                              "cachestat, which sees page cache only)")
    if reclaim_pages or low_pages:
        raise ReclaimExtError("knob none (the global path): not with --reclaim or --low (there is no limited memcg)")
    if memory_pages * PAGE < GLOBAL_MIN_MIB << 20 or memory_pages * PAGE >= 3 << 30:
        raise ReclaimExtError(f"knob none (the global path): --memory is the guest's memory; "
                              f"{memory_pages * PAGE >> 20} MiB is outside {GLOBAL_MIN_MIB} MiB to 3 GiB (below 4 GiB, "
                              "each node is one ZONE_DMA32)")


def check_low(low_pages: int, limit_pages: int, access: str, knob: str, reclaim_pages: int, nodes: int) -> None:
    """The memory.low run's arguments: one error line for what it cannot take."""
    if low_pages > limit_pages:
        raise ReclaimExtError(f"low: {low_pages} pages is above the probe's limit ({limit_pages} pages)")
    if access != "pread":
        raise ReclaimExtError("low: only with pread access (the worker's moves between the siblings are checked "
                              "for page-cache reads)")
    others = [o for o, on in (("--knob high", knob != "max"), ("--reclaim", reclaim_pages),
                              ("--vm-nodes 2", nodes != 1)) if on]
    if others:
        raise ReclaimExtError(f"low: not with {', '.join(others)} (the siblings' parent is limited by memory.max "
                              "on one node)")


def vm_host(k, b: dict) -> dict:
    """The `host` part of a VM result: the guest's kernel and how it was booted."""
    parsed = b["parsed"]
    return {"vm": True, "kernel": parsed["release"], "kernel_package": k.package, "vmlinuz": k.vmlinuz,
            "kernel_config": k.config, "accel": b["accel"], "kvm_fallback_reason": b["kvm_fallback_reason"],
            "lru_gen": parsed["lru_gen"], "min_ttl_ms": parsed["min_ttl_ms"], "cgroup_version": 2, "fs_type": "ext4",
            "guest": parsed["guest"], "guest_memory_mib": b["memory_mib"], "modules": b["modules"],
            "vm_seconds": b["seconds"], "warnings": parsed["warnings"]}


def vm_regime(access: str) -> dict:
    if access == "anon":
        return {"flush_every": FLUSH_EVERY, "sample_every": SAMPLE_EVERY, "cpus": 1,
                "anon": "MAP_PRIVATE|MAP_ANONYMOUS; first access writes the page, later ones read it",
                "swap": "a virtio disk (/dev/vdb), memory.swap.max max"}
    return {"flush_every": FLUSH_EVERY, "sample_every": SAMPLE_EVERY,
            "readahead": ("POSIX_FADV_RANDOM, " if access == "pread" else "") + "read_ahead_kb 0 on the guest's vda",
            "cpus": 1}


# ---------------------------------------------------------------- the suite in a VM

def suite_batches(configs: list, reps: int) -> list[list]:
    """The suite's configurations grouped into boots: one boot per trace (both access modes, every
    limit, `reps` runs of each), so a boot copies one trace and a failure loses one trace's runs."""
    out: dict[str, list] = {}
    for c in configs:
        out.setdefault(c.trace, []).append(c)
    return list(out.values())


def batch_plan(batch: list, reps: int, lru_gen: str | None, min_ttl_ms: int | None, swap_device: str = "disk",
               npages: int = 0) -> GuestPlan:
    """The guest plan of one boot: every configuration of `batch`, `reps` runs each, in order;
    with the swap device (`swap_device` of swap_bytes(npages); swappiness DEFAULT_SWAPPINESS)
    when an anon run is among them."""
    runs = [(f"{c.trace}.u32", c.access, c.limit_pages) for c in batch for _ in range(reps)]
    anon = any(c.access == "anon" for c in batch)
    return GuestPlan(limit_pages=max(c.limit_pages for c in batch), lru_gen=lru_gen, min_ttl_ms=min_ttl_ms,
                     sample_every=SAMPLE_EVERY, flush_every=FLUSH_EVERY, runs=runs, swap=anon,
                     swappiness=DEFAULT_SWAPPINESS if anon else None, swap_device=swap_device,
                     swap_bytes=swap_bytes(npages) if anon else 0, zram_bytes=zram_front_bytes(npages))


def run_suite_vm(kernel: str, *, traces=None, access=None, fractions=None, reps: int = 1, lru_gen: str | None = None,
                 min_ttl_ms: int | None = None, modules: str | None = None, workdir: str = "/var/tmp",
                 n: int | None = None, scale: float = 1.0, timeout: float | None = None, accel: str = "auto",
                 cache: str | None = None, swap_device: str = "disk",
                 log: Callable[[str], None] = lambda s: None) -> dict:
    """The validation suite (suite.py's traces and limits) in VMs booting `kernel`, one boot per
    trace; then suite.compare_suite with the model's policy matching the guest's lru_gen (and the
    anon set's `swap_device`, disk or zram, on both sides). Returns the suite's JSON-ready
    result, `host` describing the VM."""
    from . import suite as S

    traces = tuple(traces or S.TRACES)
    access = tuple(access or S.VM_ACCESS)
    fractions = tuple(fractions or S.FRACTIONS)
    n = n or S.N_PAGES
    check_args(access[0], reps, lru_gen, min_ttl_ms)
    if swap_device != "disk" and "anon" not in access:
        raise ReclaimExtError("swap device: only with the anon set (the file runs have no swap)")
    configs = S.plan(traces, access, fractions, n)
    if min(c.limit_pages for c in configs) < 64:
        raise ReclaimExtError(f"suite: a limit of {min(c.limit_pages for c in configs)} pages is too small for "
                              "the probe memcg (at least 64)")
    t_start = time.monotonic()
    qemu = find_qemu()
    busybox = find_busybox()
    if not os.path.isdir(workdir):
        raise ReclaimExtError(f"--dir {workdir}: no such directory")
    k = resolve_kernel(kernel, modules, cache, log)
    pages = {t: S.make_trace(t, n, S.SEED, scale) for t in traces}
    batches = suite_batches(configs, reps)
    runs: dict = {}
    boots = []
    mglru = None
    worker_dir = tempfile.mkdtemp(prefix="reclaim-ext-vm-worker-", dir=workdir)
    try:
        worker = compile_static_worker(worker_dir)
        for bi, batch in enumerate(batches, 1):
            plan = batch_plan(batch, reps, lru_gen, min_ttl_ms, swap_device, n)
            trace = batch[0].trace
            total = sum(len(pages[c.trace]) for c in batch) * reps
            log(f"[boot {bi}/{len(batches)}] {trace}: {len(batch)} configurations x {reps} run(s), "
                f"{total:,} accesses (elapsed {(time.monotonic() - t_start) / 60:.1f} min)")
            b = boot_plan(k, plan, {f"{trace}.u32": pages[trace]}, n, qemu=qemu, busybox=busybox,
                          workdir=workdir, timeout=timeout or guest_timeout(total), accel=accel, worker=worker,
                          log=log)
            accel = b["accel"]      # KVM failed once: the remaining boots go straight to TCG
            on = check_lru_gen(b["parsed"], lru_gen)
            if mglru is not None and on != mglru:
                raise GuestError(f"the guest's lru_gen changed between boots ({b['parsed']['lru_gen']})")
            mglru = on
            if plan.swap and not (b["parsed"].get("swap") or {}).get("devices"):
                raise GuestError(f"the guest has no swap device active ({b['parsed'].get('swap')})")
            grs = iter(b["parsed"]["runs"])
            for c in batch:
                rs = []
                for rep in range(reps):
                    r = next(grs)
                    want = (f"{c.trace}.u32", c.access, c.limit_pages * PAGE)
                    got = (r.get("trace", want[0]), r.get("access", want[1]), r.get("limit", want[2]))
                    if got != want:
                        raise GuestError(f"guest run {r['n']}: ran {got}, planned {want}")
                    rec = guest_run_record(r, c.limit_pages)
                    if rec["bad_reads"]:
                        raise GuestError(f"{c.trace} {c.access}: {rec['bad_reads']} reads returned wrong data")
                    rs.append(rec)
                    log(f"  {c.trace} {c.access} {c.limit_pages} run {rep + 1}/{reps}: {rec['misses']:,} misses "
                        f"in {rec['seconds']:.1f} s")
                runs[c] = rs
            boots.append({"trace": trace, "runs": len(plan.guest_runs()), "seconds": b["seconds"],
                          "accel": b["accel"], "memory_mib": b["memory_mib"]})
            last = b
    finally:
        shutil.rmtree(worker_dir, ignore_errors=True)
    kernel_seconds = time.monotonic() - t_start
    policy = mglru_model(last["parsed"]["release"]) if mglru else "classic"
    ttl = (last["parsed"]["min_ttl_ms"] or 0) if mglru else 0
    log(f"model: {policy} for {len(configs)} configurations")
    data = S.compare_suite(configs, runs, pages, n, reps, policy=policy, min_ttl_ms=ttl, swappiness=DEFAULT_SWAPPINESS,
                           swap_device=swap_device, log=log)
    data["suite"]["scale"] = scale
    data["suite"]["fractions"] = list(fractions)
    host = vm_host(k, last)
    host.pop("vm_seconds", None)
    host["boots"] = boots
    if "anon" in access:
        host["swap"] = dict(last["parsed"].get("swap") or {}, bytes=swap_bytes(n), device=swap_device)
    data["host"] = host
    data["regime"] = {a: vm_regime(a) for a in access}
    if "anon" in access:
        data["regime"]["anon"].update(swappiness=DEFAULT_SWAPPINESS, page_cluster=0, thp="never",
                                      zswap="off or absent")
        if swap_device == "zram":
            data["regime"]["anon"]["swap"] = ZRAM_REGIME
    data["kernel_seconds"] = kernel_seconds
    data["wall_seconds"] = time.monotonic() - t_start
    return data
