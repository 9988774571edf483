"""What `reclaim-ext validate kernel --vm KERNEL` boots: the kernel (a Debian package fetched with
apt and cached, or a vmlinuz given by path), the initramfs (busybox, the needed kernel modules, the
/init script and the statically linked replay worker) and the disk image holding the data file and
the trace. validate/vm.py boots them with qemu and reads the results.

Everything here is plain file work on the host (no root, no loop mounts): the initramfs is written
as a cpio "newc" archive by this module and gzipped; the disk is made with `mkfs.ext4 -d`.
"""

from __future__ import annotations

import gzip
import lzma
import os
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import ReclaimExtError
from .errors import Unavailable
from .kernel import GUEST_SWAP, ZRAM_PRIO
from .worker import compile_worker

PAGE = 4096
PKG_PREFIX = "linux-image-"
PKG_SUFFIX = "-cloud-amd64-unsigned"    # Debian's cloud flavour: virtio, small, no firmware
# modules the guest needs when they are not built in (their dependencies come from the modules)
WANTED_MODULES = ("virtio_pci", "virtio_blk", "crc32c_generic", "ext4")
ZRAM_MODULES = ("zram",)  # with its dependencies (zsmalloc): the guest's zram swap device
INSTALL_HINT = "apt-get install qemu-system-x86 busybox-static"
MARK = "@@reclaim-ext"     # console markers: "@@reclaim-ext <word> ..."
BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")   # where busybox-static puts it, if not on PATH


# ---------------------------------------------------------------- the kernel

@dataclass
class KernelImage:
    """A bootable kernel: the vmlinuz, its modules directory (lib/modules/<release>, or None when
    the needed drivers are built in), and where it came from."""

    vmlinuz: str
    modules_dir: str | None
    release: str | None = None
    package: str | None = None
    config: dict = field(default_factory=dict)   # CONFIG_ values of interest, when a config is next to it

    def to_dict(self) -> dict:
        return {"vmlinuz": self.vmlinuz, "modules_dir": self.modules_dir, "release": self.release,
                "package": self.package, "config": self.config}


def cache_dir() -> str:
    """$XDG_CACHE_HOME/reclaim-ext, else ~/.cache/reclaim-ext."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "reclaim-ext")


def _version_key(name: str) -> tuple:
    """Sort key of a package name: its numbers in order (6.12.118+deb12 > 6.12.9, 6.1.0-57 > 6.1.0-9)."""
    return tuple(int(x) for x in re.findall(r"\d+", name))


def package_for(spec: str, names: list[str]) -> str:
    """The Debian kernel package for `spec`: a full package name (taken as is when listed), or a
    version prefix (`6.12`, `6.1`, `6.12.115`, `6.1.0-47`) -> the newest listed cloud package
    whose version starts with it (6.1 does not match 6.12)."""
    if spec.startswith(PKG_PREFIX):
        if spec in names:
            return spec
        raise ReclaimExtError(f"--vm {spec}: no such package in apt's lists ({_available(names)}); run "
                              "apt-get update, or give the path of a vmlinuz")
    if not re.fullmatch(r"\d+\.\d+[0-9A-Za-z.+~-]*", spec):
        raise ReclaimExtError(f"--vm {spec}: not a kernel version (6.12, 6.1), a package name "
                              f"({PKG_PREFIX}...{PKG_SUFFIX}) or an existing vmlinuz path")
    hits = []
    for n in names:
        if not (n.startswith(PKG_PREFIX) and n.endswith(PKG_SUFFIX)):
            continue
        ver = n[len(PKG_PREFIX):-len(PKG_SUFFIX)]
        if ver == spec or (ver.startswith(spec) and ver[len(spec)] in ".+-~"):
            hits.append(n)
    if not hits:
        raise ReclaimExtError(f"--vm {spec}: no Debian package {PKG_PREFIX}{spec}*{PKG_SUFFIX} ({_available(names)}); "
                              "run apt-get update, or give the path of a vmlinuz")
    return max(hits, key=_version_key)


def _available(names: list[str]) -> str:
    vers = sorted({n[len(PKG_PREFIX):-len(PKG_SUFFIX)] for n in names
                   if n.startswith(PKG_PREFIX) and n.endswith(PKG_SUFFIX)}, key=_version_key)
    return "apt knows " + ", ".join(vers) if vers else "apt knows no cloud kernel packages"


def apt_kernel_packages() -> list[str]:
    """The cloud kernel packages in apt's lists (apt-cache search)."""
    if not shutil.which("apt-cache"):
        raise Unavailable("apt-cache not found: fetching a kernel by version needs Debian's apt; give the path "
                          "of a vmlinuz instead (--vm /path/to/vmlinuz)")
    p = subprocess.run(["apt-cache", "search", "--names-only", f"^{PKG_PREFIX}.*{PKG_SUFFIX}$"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise Unavailable(f"apt-cache search failed: {_last(p.stderr)}")
    return [line.split()[0] for line in p.stdout.splitlines() if line.strip()]


def _last(text: str) -> str:
    lines = [x for x in (text or "").strip().splitlines() if x.strip() and not x.startswith("W: ")]
    return lines[-1].strip() if lines else "(no output)"


def fetch_package(pkg: str, cache: str | None = None, log: Callable[[str], None] = lambda s: None) -> str:
    """Download `pkg` with `apt-get download` and unpack it with `dpkg-deb -x` into
    <cache>/kernels/<pkg>/root (once: later calls reuse it). Returns the unpacked root."""
    base = os.path.join(cache or cache_dir(), "kernels", pkg)
    root = os.path.join(base, "root")
    if os.path.isdir(root):
        return root
    for tool, hint in (("apt-get", "apt"), ("dpkg-deb", "dpkg")):
        if not shutil.which(tool):
            raise Unavailable(f"{tool} not found: fetching a kernel package needs Debian's {hint}; give the path "
                              "of a vmlinuz instead (--vm /path/to/vmlinuz)")
    os.makedirs(base, exist_ok=True)
    for f in os.listdir(base):      # a download a killed run left half done
        if f.endswith(".deb"):
            os.unlink(os.path.join(base, f))
    log(f"fetching {pkg} (apt-get download) into {base}")
    p = subprocess.run(["apt-get", "download", pkg], cwd=base, capture_output=True, text=True)
    debs = sorted(f for f in os.listdir(base) if f.endswith(".deb"))
    if p.returncode != 0 or not debs:
        raise Unavailable(f"apt-get download {pkg} failed: {_last(p.stderr)}")
    tmp = root + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    p = subprocess.run(["dpkg-deb", "-x", os.path.join(base, debs[-1]), tmp], capture_output=True, text=True)
    if p.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise Unavailable(f"dpkg-deb -x {debs[-1]} failed: {_last(p.stderr)}")
    os.rename(tmp, root)
    os.unlink(os.path.join(base, debs[-1]))     # the unpacked tree is what is used
    return root


def cached_packages(cache: str | None = None) -> list[str]:
    """Kernel packages already fetched and unpacked into the cache."""
    base = os.path.join(cache or cache_dir(), "kernels")
    try:
        return sorted(n for n in os.listdir(base) if os.path.isdir(os.path.join(base, n, "root")))
    except OSError:
        return []


def kernel_from_tree(root: str, package: str | None = None) -> KernelImage:
    """The kernel of an unpacked package (or any tree with boot/vmlinuz-* and lib/modules/*)."""
    boot = os.path.join(root, "boot")
    vmlinuz = sorted(f for f in os.listdir(boot) if f.startswith("vmlinuz")) if os.path.isdir(boot) else []
    if not vmlinuz:
        raise ReclaimExtError(f"{root}: no boot/vmlinuz-* in it")
    return kernel_from_file(os.path.join(boot, vmlinuz[-1]), None, package)


def kernel_from_file(vmlinuz: str, modules: str | None = None, package: str | None = None) -> KernelImage:
    """A vmlinuz given by path; its modules from `modules` (a lib/modules/<release> directory) or
    found next to it: <tree>/lib/modules/<release> for <tree>/boot/vmlinuz-<release>, or a
    `modules` or `lib/modules/<release>` directory beside the file."""
    if not os.path.isfile(vmlinuz):
        raise ReclaimExtError(f"--vm {vmlinuz}: no such file")
    name = os.path.basename(vmlinuz)
    release = name[len("vmlinuz-"):] if name.startswith("vmlinuz-") else None
    here = os.path.dirname(os.path.abspath(vmlinuz))
    if modules is not None:
        if not os.path.isdir(modules):
            raise ReclaimExtError(f"--vm-modules {modules}: no such directory")
        mdir = modules
    else:
        cands = [os.path.join(here, "modules")]
        if release:
            cands = [os.path.join(here, "..", "lib", "modules", release), os.path.join(here, "lib", "modules", release),
                     os.path.join(here, "..", "usr", "lib", "modules", release)] + cands
        mdir = next((os.path.normpath(c) for c in cands if os.path.isdir(c)), None)
    config = {}
    if release and os.path.isfile(os.path.join(here, f"config-{release}")):
        config = read_config(os.path.join(here, f"config-{release}"))
    return KernelImage(os.path.abspath(vmlinuz), mdir, release or (os.path.basename(mdir) if mdir else None),
                       package, config)


CONFIG_KEYS = ("CONFIG_LRU_GEN", "CONFIG_LRU_GEN_ENABLED", "CONFIG_MEMCG", "CONFIG_SWAP", "CONFIG_NUMA",
               "CONFIG_ZRAM", "CONFIG_VIRTIO_BLK", "CONFIG_EXT4_FS")


def read_config(path: str) -> dict:
    out = {}
    with open(path) as fh:
        for line in fh:
            k, _, v = line.strip().partition("=")
            if k in CONFIG_KEYS:
                out[k] = v
    return out


def resolve_kernel(spec: str, modules: str | None = None, cache: str | None = None,
                   log: Callable[[str], None] = lambda s: None) -> KernelImage:
    """--vm KERNEL: a vmlinuz path, an unpacked kernel tree, or a Debian version / package name
    (fetched with apt into the cache the first time)."""
    if os.path.isfile(spec):
        return kernel_from_file(spec, modules)
    if os.path.isdir(spec):
        k = kernel_from_tree(spec)
        return kernel_from_file(k.vmlinuz, modules) if modules else k
    if os.sep in spec:
        raise ReclaimExtError(f"--vm {spec}: no such file")
    cached = cached_packages(cache)
    try:
        names = apt_kernel_packages()
    except Unavailable:
        if not cached:
            raise
        names = []          # no apt here: what the cache holds
    pkg = package_for(spec, sorted(set(names) | set(cached)))
    root = fetch_package(pkg, cache, log)
    k = kernel_from_tree(root, pkg)
    return kernel_from_file(k.vmlinuz, modules, pkg) if modules else k


# ---------------------------------------------------------------- kernel modules

def _module_name(filename: str) -> str:
    base = os.path.basename(filename)
    base = re.sub(r"\.ko(\.(xz|zst|gz))?$", "", base)
    return base.replace("-", "_")


def module_bytes(path: str) -> bytes:
    """A module file, decompressed (.ko.xz, .ko.zst, .ko.gz): busybox insmod takes plain .ko."""
    with open(path, "rb") as fh:
        data = fh.read()
    if path.endswith(".xz"):
        return lzma.decompress(data)
    if path.endswith(".gz"):
        return gzip.decompress(data)
    if path.endswith(".zst"):
        import zstandard
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def modinfo(data: bytes) -> dict[str, str]:
    """The .modinfo section of an ELF64 little-endian module (key=value strings)."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ReclaimExtError("not a 64-bit little-endian ELF module")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def sec(i):
        name, _typ, _flags, _addr, off, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
        return name, off, size

    _, stroff, _ = sec(shstrndx)
    out = {}
    for i in range(shnum):
        name, off, size = sec(i)
        end = data.index(b"\0", stroff + name)
        if data[stroff + name:end] == b".modinfo":
            for item in data[off:off + size].split(b"\0"):
                k, sep, v = item.decode("utf-8", "replace").partition("=")
                if sep:
                    out.setdefault(k, v)
    return out


def module_index(modules_dir: str) -> dict[str, str]:
    """Module name -> file, for every .ko[.xz|.zst|.gz] under modules_dir."""
    out = {}
    for d, _, files in os.walk(modules_dir):
        for f in files:
            if re.search(r"\.ko(\.(xz|zst|gz))?$", f):
                out.setdefault(_module_name(f), os.path.join(d, f))
    return out


def _modules_dep(modules_dir: str) -> dict[str, list[str]] | None:
    """modules.dep as name -> dependency names, when the tree has one (depmod was run)."""
    path = os.path.join(modules_dir, "modules.dep")
    if not os.path.isfile(path):
        return None
    out = {}
    with open(path) as fh:
        for line in fh:
            mod, _, deps = line.partition(":")
            if mod.strip():
                out[_module_name(mod.strip())] = [_module_name(d) for d in deps.split()]
    return out


def module_load_order(modules_dir: str | None, wanted=WANTED_MODULES) -> list[tuple[str, bytes]]:
    """The wanted modules that exist as files, with their dependencies first, decompressed:
    [(name, .ko bytes)] in insmod order. Dependencies come from modules.dep when the tree has
    one, else from each module's own .modinfo `depends=` (a Debian package has no modules.dep:
    depmod runs at install)."""
    if modules_dir is None:
        return []
    index = module_index(modules_dir)
    deps = _modules_dep(modules_dir)
    order: list[tuple[str, bytes]] = []
    seen: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in seen or name not in index:
            return          # loaded already, or built in
        if name in chain:
            raise ReclaimExtError(f"{modules_dir}: module dependency cycle {' -> '.join(chain + (name,))}")
        data = module_bytes(index[name])
        need = deps.get(name, []) if deps is not None else \
            [d.replace("-", "_") for d in modinfo(data).get("depends", "").split(",") if d]
        for d in need:
            visit(d, chain + (name,))
        seen.add(name)
        order.append((name, data))

    for w in wanted:
        visit(w, ())
    return order


# ---------------------------------------------------------------- cpio (newc) and the initramfs

class Cpio:
    """A cpio archive in the "newc" format the kernel unpacks as initramfs."""

    def __init__(self):
        self.parts: list[bytes] = []
        self.ino = 721

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0), nlink: int = 1):
        self.ino += 1
        nameb = name.encode() + b"\0"
        fields = (self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(nameb), 0)
        hdr = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.parts.append(hdr + nameb + b"\0" * (-(110 + len(nameb)) % 4))
        self.parts.append(data + b"\0" * (-len(data) % 4))

    def dir(self, name: str) -> None:
        self._entry(name, 0o040755, nlink=2)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, 0o100000 | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, 0o120777, target.encode())

    def chardev(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(name, 0o020000 | mode, rdev=(major, minor))

    def to_bytes(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return b"".join(self.parts)


def read_cpio(data: bytes) -> dict[str, tuple[int, bytes]]:
    """A newc archive as {name: (mode, contents)} (the tests list an initramfs with it)."""
    out, pos = {}, 0
    while True:
        if data[pos:pos + 6] != b"070701":
            raise ValueError(f"not a newc cpio header at {pos}")
        f = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = f[1], f[6], f[11]
        name = data[pos + 110:pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += -pos % 4
        if name == "TRAILER!!!":
            return out
        out[name] = (mode, data[pos:pos + size])
        pos += size + (-size % 4)


def find_busybox() -> str:
    """A statically linked busybox (Debian's busybox-static), or Unavailable with how to get it."""
    for c in (shutil.which("busybox"), *BUSYBOX_PATHS):
        if c and os.path.isfile(c):
            if not _is_static(c):
                raise Unavailable(f"{c} is dynamically linked and cannot run in the guest's initramfs: install "
                                  "the static one (apt-get install busybox-static)")
            return c
    raise Unavailable(f"busybox not found: the guest's initramfs needs a static busybox ({INSTALL_HINT})")


def _is_static(path: str) -> bool:
    """An ELF executable without a program interpreter (PT_INTERP)."""
    with open(path, "rb") as fh:
        head = fh.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            return False
        phoff, = struct.unpack_from("<Q", head, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        fh.seek(phoff)
        ph = fh.read(phentsize * phnum)
    return all(struct.unpack_from("<I", ph, i * phentsize)[0] != 3 for i in range(phnum))


def compile_static_worker(tmpdir: str) -> str:
    """The replay worker (validate/worker.py's C source) linked statically for the guest."""
    return compile_worker(tmpdir, static=True)


@dataclass
class GuestPlan:
    """What /init does: `reps` replays of the trace under a memcg of `limit_pages`, or, when `runs`
    is given (the VM suite), each of `runs` in order: (trace file on the disk, access mode, limit
    pages), one fresh memcg per run, all in one boot."""

    limit_pages: int
    reps: int = 1
    access: str = "pread"
    lru_gen: str | None = None         # "on" | "off" | None (leave the kernel's default)
    min_ttl_ms: int | None = None
    sample_every: int = 1000
    flush_every: int = 64
    runs: list[tuple[str, str, int]] | None = None
    swap: bool = False                 # a swap device (anon runs), swap readahead off
    swap_device: str = "disk"          # disk: /dev/vdb; zram: /dev/zram0 of swap_bytes (the zram module);
                                       # zram+disk: /dev/zram0 of zram_bytes at priority ZRAM_PRIO, then /dev/vdb
    swap_bytes: int = 0                # zram's disksize
    zram_bytes: int = 0                # zram's disksize in front of the disk (zram+disk)
    swappiness: int | None = None      # /proc/sys/vm/swappiness (cgroup v2 has no per-memcg one)
    knob: str = "max"                  # the probe's limit: memory.max, or memory.high (memory.max stays max);
                                       # none (two nodes, pread): no limit, the worker prefers node 1 (global path)
    nodes: int = 1                     # 2: two NUMA nodes, the worker interleaved over both (MPOL_INTERLEAVE)
    reclaim_bytes: int = 0             # after each replay: write this to the probe's memory.reclaim (0: no)
    low_bytes: int = 0                 # > 0: the probe has children a (this memory.low) and b; PIDS_FILE says
                                       # which one each access is charged to (the worker moves between them)

    def guest_runs(self) -> list[tuple[str, str, int]]:
        """Every run of the boot, in order: (trace file, access, limit pages)."""
        if self.runs is not None:
            return list(self.runs)
        return [(TRACE_FILE, self.access, self.limit_pages)] * self.reps

    def trace_files(self) -> list[str]:
        return list(dict.fromkeys(t for t, _, _ in self.guest_runs())) + ([PIDS_FILE] if self.low_bytes else [])


TRACE_FILE = "trace.u32"
PIDS_FILE = "trace.pids"        # memory.low runs: per access, the pid (0: sibling a, 1: sibling b; kernel.LOW_SIBLINGS)
LIMIT_KNOBS = ("max", "high", "none")  # the probe memcg's limit: memory.max, memory.high (cgroup v2), or
                                       # none: no limit, the machine's own memory reclaims (the global path)
GLOBAL_PREFERRED = 1   # the global path: the worker prefers node 1 (MPOL_PREFERRED), which has no CPU
# the global path's lowmem_reserve_ratio (DMA, DMA32, Normal, Movable, Device): DMA's 1 reserves all of
# node 0's DMA32 against it, so no page-cache allocation falls back to ZONE_DMA (the kernel's default 256
# lets ~3,500 pages of it take page cache); the others are the kernel's defaults
GLOBAL_LOWMEM_RESERVE = "1 256 32 0 0"
GUEST_ACCESS = ("pread", "mmap", "anon")
_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")


INIT_TEMPLATE = r"""#!/bin/busybox sh
# reclaim-ext validate kernel --vm: the guest's /init (generated by validate/vmimage.py)
/bin/busybox --install -s /bin
export PATH=/bin
M=@@reclaim-ext
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t debugfs none /sys/kernel/debug 2>/dev/null
mount -t devtmpfs dev /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
echo 1 > /proc/sys/kernel/printk
fail() { echo "$M error $*"; echo "$M done"; sync; poweroff -f; sleep 5; exit 1; }
echo "$M init $(uname -r)"
while read m; do insmod /lib/modules/$m.ko || echo "$M warning insmod $m failed"; done < /modules.order
i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
[ -b /dev/vda ] || fail "no /dev/vda: the kernel has no virtio block driver (virtio_blk missing from its modules?)"
echo 0 > /sys/block/vda/queue/read_ahead_kb || fail "cannot set read_ahead_kb"
mkdir -p /mnt /sys/fs/cgroup
mount -t ext4 -o ro /dev/vda /mnt || fail "cannot mount /dev/vda (ext4)"
for t in @TRACES@; do cp /mnt/$t /$t || fail "cannot copy the trace $t"; done
mount -t cgroup2 none /sys/fs/cgroup || fail "cannot mount cgroup2"
grep -qw memory /sys/fs/cgroup/cgroup.controllers || fail "no memory controller in cgroup2 (CONFIG_MEMCG)"
echo +memory > /sys/fs/cgroup/cgroup.subtree_control || fail "cannot enable +memory"
LG=/sys/kernel/mm/lru_gen
LRU_GEN=@LRU_GEN@
MIN_TTL=@MIN_TTL@
if [ -n "$LRU_GEN" ]; then
  if [ -e $LG/enabled ]; then echo $LRU_GEN > $LG/enabled || fail "cannot write $LRU_GEN to $LG/enabled"
  elif [ "$LRU_GEN" = y ]; then fail "this kernel has no MGLRU ($LG missing: CONFIG_LRU_GEN not set)"; fi
fi
if [ -n "$MIN_TTL" ]; then echo $MIN_TTL > $LG/min_ttl_ms || fail "cannot write $LG/min_ttl_ms"; fi
echo "$M lru_gen $(cat $LG/enabled 2>/dev/null || echo none) $(cat $LG/min_ttl_ms 2>/dev/null || echo none)"
SWAP=@SWAP@
SWAPPINESS=@SWAPPINESS@
SWAPDEVS=
if [ -n "$SWAP" ]; then
  for kind in $(echo $SWAP | tr + ' '); do   # in swapon order
    if [ $kind = zram ]; then
      SWAPDEV=/dev/zram0; PRIO=@ZRAM_PRIO@
      [ -e /sys/block/zram0 ] || fail "no zram device (CONFIG_ZRAM, or the zram module did not load)"
      echo @ZRAM_BYTES@ > /sys/block/zram0/disksize || fail "cannot set zram0's disksize"
    else
      SWAPDEV=/dev/vdb; PRIO=
    fi
    [ -b $SWAPDEV ] || fail "no $SWAPDEV for swap"
    mkswap $SWAPDEV >/dev/null || fail "cannot mkswap $SWAPDEV (CONFIG_SWAP?)"
    if [ -n "$PRIO" ]; then /worker swapon $SWAPDEV $PRIO; else swapon $SWAPDEV; fi || fail "cannot swapon $SWAPDEV"
    SWAPDEVS="$SWAPDEVS ${SWAPDEV#/dev/}"
  done
  echo 0 > /proc/sys/vm/page-cluster || fail "cannot set page-cluster"
  echo never > /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null
  [ -e /sys/module/zswap/parameters/enabled ] && echo N > /sys/module/zswap/parameters/enabled
  echo "$M swap $(grep -c . /proc/swaps) $(cat /proc/sys/vm/swappiness) $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null | tr ' ' ,)"
fi
if [ -n "$SWAPPINESS" ]; then echo $SWAPPINESS > /proc/sys/vm/swappiness || fail "cannot set swappiness"; fi
if [ -n "@GLOBAL@" ]; then   # the global path: no DMA zone for page cache, no watermark boost, and the
  # watermarks recomputed from the zones' managed pages now (writing min_free_kbytes back)
  echo @LOWMEM_RESERVE@ > /proc/sys/vm/lowmem_reserve_ratio || fail "cannot set lowmem_reserve_ratio"
  echo 0 > /proc/sys/vm/watermark_boost_factor || fail "cannot set watermark_boost_factor"
  cat /proc/sys/vm/min_free_kbytes > /proc/sys/vm/min_free_kbytes || fail "cannot rewrite min_free_kbytes"
  echo "$M global $(cat /proc/sys/vm/min_free_kbytes) $(cat /proc/sys/vm/watermark_scale_factor) $(cat /proc/sys/vm/lowmem_reserve_ratio | tr '\t' ,)"
fi
echo "$M guest nproc=$(nproc) memtotal_kb=$(grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2)"
node_snap() {   # /proc/zoneinfo, then each node's numastat and vmstat under "== nodeN numastat|vmstat"
  cat /proc/zoneinfo
  for d in /sys/devices/system/node/node[0-9]*; do
    echo "== ${d##*/} numastat"; cat $d/numastat; echo "== ${d##*/} vmstat"; cat $d/vmstat
  done
}
run_one() {   # run_one N TRACE ACCESS LIMIT_BYTES: one replay in a fresh memcg probeN
  r=$1; CG=/sys/fs/cgroup/probe$r
  sync; echo 3 > /proc/sys/vm/drop_caches
  mkdir $CG || fail "cannot create $CG"
  [ @KNOB@ = none ] || echo $4 > $CG/memory.@KNOB@ || fail "cannot set memory.@KNOB@"
  if [ "$3" = anon ]; then echo max > $CG/memory.swap.max || fail "cannot set memory.swap.max"
  elif [ -e $CG/memory.swap.max ]; then echo 0 > $CG/memory.swap.max; fi
  HOME_CG=$CG; PIDS=; CGS=
  if [ @LOW@ -gt 0 ]; then   # memory.low: children a (protected) and b; the worker starts in w, which
    # holds its own memory, and moves itself into a or b as the trace's pid says (PIDS_FILE)
    echo +memory > $CG/cgroup.subtree_control || fail "cannot enable +memory in $CG"
    for s in a b w; do mkdir $CG/$s || fail "cannot create $CG/$s"; done
    echo @LOW@ > $CG/a/memory.low || fail "cannot set memory.low of $CG/a"
    HOME_CG=$CG/w; PIDS=/@PIDS_FILE@; CGS=$CG/a/cgroup.procs:$CG/b/cgroup.procs
  fi
  nodes0=; [ -n "@GLOBAL@" ] && nodes0=$(node_snap)   # each node's zones, numastat and vmstat before
  cat $CG/memory.stat > /tmp/stat0; cat /proc/vmstat > /tmp/vmstat0
  for d in $SWAPDEVS; do echo "$d $(cat /sys/block/$d/stat)"; done > /tmp/swapio0   # each swap device's I/O
  : > /tmp/swaps   # the worker writes /proc/swaps there at the end of its replay (RECLAIM_EXT_SWAPS)
  RECLAIM_EXT_SWAPS=${SWAPDEVS:+/tmp/swaps} RECLAIM_EXT_INTERLEAVE=@INTERLEAVE@ RECLAIM_EXT_PIDS=$PIDS RECLAIM_EXT_CGROUPS=$CGS \
    RECLAIM_EXT_PREFERRED=@PREFERRED@ RECLAIM_EXT_CACHESTAT=@CACHESTAT@ \
    sh -c "echo \$\$ > $HOME_CG/cgroup.procs && exec /worker /mnt/data /$2 $3 \
    @SAMPLE@ @FLUSH@ $CG/memory.stat $CG/memory.current" > /tmp/out 2> /tmp/err
  rc=$?
  cat $CG/memory.stat > /tmp/stat1; cat /proc/vmstat > /tmp/vmstat1
  if [ -n "@GLOBAL@" ]; then echo "$nodes0" > /tmp/nodes0; node_snap > /tmp/nodes1; else : > /tmp/nodes0; : > /tmp/nodes1; fi
  for d in $SWAPDEVS; do echo "$d $(cat /sys/block/$d/stat)"; done > /tmp/swapio1
  cat /sys/kernel/debug/lru_gen > /tmp/lru_gen 2>/dev/null || : > /tmp/lru_gen
  : > /tmp/reclaim
  if [ @RECLAIM@ -gt 0 ]; then   # proactive reclaim once the replay is over: memory.current before, after, rc
    c0=$(cat $CG/memory.current); echo @RECLAIM@ > $CG/memory.reclaim 2>/tmp/reclaim_err; rrc=$?
    echo "before=$c0 after=$(cat $CG/memory.current) rc=$rrc error=$(tr ' ' _ < /tmp/reclaim_err)" > /tmp/reclaim
    cat $CG/memory.stat >> /tmp/reclaim
  fi
  cat $CG/memory.numa_stat > /tmp/numa_stat 2>/dev/null || : > /tmp/numa_stat   # at the end (after memory.reclaim)
  echo "$M run $r rc=$rc trace=$2 access=$3 limit=$4"
  for f in out err stat0 stat1 vmstat0 vmstat1 lru_gen reclaim numa_stat swapio0 swapio1 swaps nodes0 nodes1; do echo "$M section $f"; cat /tmp/$f; done
  echo "$M section peak"; cat $CG/memory.peak 2>/dev/null
  echo "$M section events"; cat $CG/memory.events 2>/dev/null
  if [ @LOW@ -gt 0 ]; then   # each sibling at the end: memory.current, memory.stat, memory.events
    for s in a b; do
      echo "$M section current_$s"; cat $CG/$s/memory.current
      echo "$M section stat_$s"; cat $CG/$s/memory.stat
      echo "$M section events_$s"; cat $CG/$s/memory.events
    done
    rmdir $CG/a $CG/b $CG/w 2>/dev/null
  fi
  echo "$M end $r"
  rmdir $CG 2>/dev/null
}
@RUNS@
echo "$M done"
sync
poweroff -f
"""


def init_script(plan: GuestPlan) -> str:
    lru = {"on": "y", "off": "n", None: ""}[plan.lru_gen]
    runs = plan.guest_runs()
    if not runs:
        raise ReclaimExtError("the guest plan has no runs")
    for t, a, lim in runs:
        if not _SAFE_NAME.fullmatch(t) or a not in GUEST_ACCESS or int(lim) < 1:
            raise ReclaimExtError(f"guest run ({t!r}, {a!r}, {lim!r}): not a trace file name, access mode and limit")
        if a == "anon" and not plan.swap:
            raise ReclaimExtError("anon runs need the guest's swap device (GuestPlan.swap)")
    if plan.swap_device not in GUEST_SWAP:
        raise ReclaimExtError(f"swap device: {plan.swap_device!r} is not one of {', '.join(GUEST_SWAP)}")
    if plan.knob not in LIMIT_KNOBS:
        raise ReclaimExtError(f"knob: {plan.knob!r} is not one of {', '.join(LIMIT_KNOBS)}")
    if plan.low_bytes and (plan.knob != "max" or plan.nodes != 1 or plan.reclaim_bytes or plan.swap):
        raise ReclaimExtError("memory.low runs take memory.max, one node, no memory.reclaim and no swap")
    glob = plan.knob == "none"
    if glob and (plan.nodes != 2 or plan.swap or plan.reclaim_bytes or any(a != "pread" for _, a, _ in runs)):
        raise ReclaimExtError("the global path (knob none) takes two nodes, pread, no swap and no memory.reclaim")
    zram_bytes = plan.zram_bytes if plan.swap_device == "zram+disk" else plan.swap_bytes
    if plan.swap and "zram" in plan.swap_device and zram_bytes < 2 * PAGE:
        raise ReclaimExtError("a zram swap device needs its size (GuestPlan.swap_bytes, or zram_bytes in front of "
                              "the disk)")
    lines = "".join(f"run_one {i} {t} {a} {int(lim) * PAGE}\n" for i, (t, a, lim) in enumerate(runs, 1))
    subst = {"@LRU_GEN@": lru, "@MIN_TTL@": "" if plan.min_ttl_ms is None else str(int(plan.min_ttl_ms)),
             "@TRACES@": " ".join(plan.trace_files()), "@SAMPLE@": str(plan.sample_every),
             "@FLUSH@": str(plan.flush_every), "@RUNS@\n": lines, "@KNOB@": plan.knob,
             "@RECLAIM@": str(int(plan.reclaim_bytes)), "@LOW@": str(int(plan.low_bytes)),
             "@PIDS_FILE@": PIDS_FILE,
             "@INTERLEAVE@": str((1 << plan.nodes) - 1) if plan.nodes > 1 and not glob else "",
             "@GLOBAL@": "1" if glob else "", "@LOWMEM_RESERVE@": f'"{GLOBAL_LOWMEM_RESERVE}"',
             "@PREFERRED@": str(GLOBAL_PREFERRED) if glob else "", "@CACHESTAT@": "1" if glob else "",
             "@SWAP@": (plan.swap_device if plan.swap else ""), "@ZRAM_BYTES@": str(int(zram_bytes)),
             "@ZRAM_PRIO@": str(ZRAM_PRIO) if plan.swap_device == "zram+disk" else "",
             "@SWAPPINESS@": "" if plan.swappiness is None else str(int(plan.swappiness))}
    text = INIT_TEMPLATE
    for k, v in subst.items():
        text = text.replace(k, v)
    return text


def build_initramfs(out: str, busybox: str, worker: str, modules: list[tuple[str, bytes]], init: str) -> dict:
    """Write the gzipped newc initramfs to `out`; returns what is in it."""
    a = Cpio()
    for d in ("bin", "dev", "proc", "sys", "mnt", "tmp", "lib", "lib/modules"):
        a.dir(d)
    a.chardev("dev/console", 5, 1)
    a.chardev("dev/null", 1, 3, 0o666)
    with open(busybox, "rb") as fh:
        a.file("bin/busybox", fh.read(), 0o755)
    a.symlink("bin/sh", "busybox")
    with open(worker, "rb") as fh:
        a.file("worker", fh.read(), 0o755)
    for name, data in modules:
        a.file(f"lib/modules/{name}.ko", data)
    a.file("modules.order", "".join(f"{n}\n" for n, _ in modules).encode())
    a.file("init", init.encode(), 0o755)
    with open(out, "wb") as fh:
        fh.write(gzip.compress(a.to_bytes(), compresslevel=6))
    return {"modules": [n for n, _ in modules], "bytes": os.path.getsize(out)}


# ---------------------------------------------------------------- the disk

def build_disk(out: str, pages, npages: int, staging: str) -> int:
    """An ext4 image (mkfs.ext4 -d, no root needed) holding `data` (npages pages, page i filled
    with the 8-byte value i, as on the host) and the trace: `pages` as `trace.u32`, or a dict
    {file name: pages} of several traces (the VM suite). Returns its size in bytes."""
    from .kernel import write_data_file

    mkfs = shutil.which("mkfs.ext4") or next((p for p in ("/sbin/mkfs.ext4", "/usr/sbin/mkfs.ext4")
                                              if os.path.exists(p)), None)
    if mkfs is None:
        raise Unavailable("mkfs.ext4 not found: the guest's disk image is made with it (apt-get install e2fsprogs)")
    traces = pages if isinstance(pages, dict) else {TRACE_FILE: pages}
    os.makedirs(staging, exist_ok=True)
    write_data_file(os.path.join(staging, "data"), npages)
    for name, p in traces.items():
        if not _SAFE_NAME.fullmatch(name) or name == "data":
            raise ReclaimExtError(f"trace file name {name!r}: not usable on the guest's disk")
        np.asarray(p).astype(np.uint32).tofile(os.path.join(staging, name))
    size = npages * PAGE + sum(len(p) for p in traces.values()) * 4
    size = (size + size // 8 + (32 << 20) + (1 << 20) - 1) // (1 << 20) << 20
    with open(out, "wb") as fh:
        fh.truncate(size)
    p = subprocess.run([mkfs, "-q", "-F", "-b", "4096", "-O", "^has_journal", "-L", "reclaim-ext", "-d", staging, out],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise Unavailable(f"mkfs.ext4 -d failed: {_last(p.stderr)} (needs e2fsprogs 1.43 or newer)")
    shutil.rmtree(staging, ignore_errors=True)
    return size
