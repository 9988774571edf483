"""`reclaim-ext validate kernel --vm`: kernel resolution, the initramfs and disk image, the console
parsing and the error paths, without a VM (fake apt, dpkg-deb and qemu scripts on PATH; a fake
kernel tree in tmp_path). One real boot is behind the `vm` marker (see test_real_vm_replay)."""

import gzip
import json
import lzma
import os
import shutil
import stat
import struct
import subprocess
import time

import numpy as np
import pytest
from click.testing import CliRunner

from reclaim_ext.cli import main
from reclaim_ext.errors import ReclaimExtError
from reclaim_ext.validate import kernel as kernel_mod
from reclaim_ext.validate import vm as vmmod
from reclaim_ext.validate import vmimage as vi
from reclaim_ext.validate.errors import Unavailable
from reclaim_ext.validate.kernel import run_record

SAMPLE = os.path.join(os.path.dirname(__file__), "data", "vm_console_sample.txt")
NAMES = ["linux-image-6.1.0-9-cloud-amd64-unsigned", "linux-image-6.1.0-57-cloud-amd64-unsigned",
         "linux-image-6.12.9+deb12-cloud-amd64-unsigned", "linux-image-6.12.118+deb12-cloud-amd64-unsigned",
         "linux-image-6.12.115+deb12-cloud-amd64-unsigned", "linux-image-6.12.118+deb12-amd64-unsigned"]


def _script(path, text):
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture(autouse=True)
def own_cache(request, tmp_path, monkeypatch):
    """Every test but the real boot gets an empty kernel cache (not the user's ~/.cache)."""
    if request.node.get_closest_marker("vm") is None:
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def fakebin(tmp_path, monkeypatch):
    """A directory of fake tools first on PATH; the real ones (sh, cat, sleep, ...) stay reachable."""
    d = tmp_path / "bin"
    d.mkdir()
    monkeypatch.setenv("PATH", f"{d}:{os.environ['PATH']}")
    return d


@pytest.fixture
def only_fakebin(tmp_path, monkeypatch):
    """PATH = only the fake tools (plus the shell utilities they use), so a real qemu is not found."""
    d = tmp_path / "onlybin"
    d.mkdir()
    for tool in ("sh", "cat", "sleep", "echo", "mkdir"):
        real = shutil.which(tool)
        if real:
            os.symlink(real, d / tool)
    monkeypatch.setenv("PATH", str(d))
    monkeypatch.setattr(vi, "BUSYBOX_PATHS", ())
    return d


# ---------------------------------------------------------------- kernel name resolution

@pytest.mark.parametrize("spec, want", [
    ("6.12", "linux-image-6.12.118+deb12-cloud-amd64-unsigned"),        # the newest 6.12, cloud flavour
    ("6.1", "linux-image-6.1.0-57-cloud-amd64-unsigned"),               # 6.1 is not a prefix of 6.12
    ("6.12.115", "linux-image-6.12.115+deb12-cloud-amd64-unsigned"),
    ("6.1.0-9", "linux-image-6.1.0-9-cloud-amd64-unsigned"),
    ("linux-image-6.12.118+deb12-amd64-unsigned", "linux-image-6.12.118+deb12-amd64-unsigned"),
])
def test_package_for(spec, want):
    assert vi.package_for(spec, NAMES) == want


@pytest.mark.parametrize("spec, msg", [
    ("6.3", "no Debian package linux-image-6.3*-cloud-amd64-unsigned (apt knows 6.1.0-9, 6.1.0-57, 6.12.9+deb12"),
    ("6.12.2", "no Debian package"),
    ("linux-image-9.9-cloud-amd64-unsigned", "no such package"),
    ("latest", "not a kernel version"),
])
def test_package_for_errors(spec, msg):
    with pytest.raises(ReclaimExtError, match=None) as e:
        vi.package_for(spec, NAMES)
    assert msg in str(e.value)


def _fake_apt(fakebin, log):
    """apt-cache lists NAMES; apt-get download writes a .deb; dpkg-deb -x makes a kernel tree."""
    lines = "".join(f"{n} - Linux\n" for n in NAMES)
    _script(fakebin / "apt-cache", f'cat <<"EOF"\n{lines}EOF\n')
    _script(fakebin / "apt-get", f'echo "apt-get $*" >> {log}\n[ "$1" = download ] || exit 1\n'
                                 'echo deb > "$2_1_amd64.deb"\n')
    _script(fakebin / "dpkg-deb", f'echo "dpkg-deb $*" >> {log}\n'
                                  'mkdir -p "$3/boot" "$3/lib/modules/6.12.118+deb12-cloud-amd64/kernel"\n'
                                  'echo kernel > "$3/boot/vmlinuz-6.12.118+deb12-cloud-amd64"\n'
                                  'echo CONFIG_LRU_GEN_ENABLED=y > "$3/boot/config-6.12.118+deb12-cloud-amd64"\n')


def test_resolve_fetches_once_into_the_cache(fakebin, tmp_path, monkeypatch):
    log = tmp_path / "calls"
    _fake_apt(fakebin, log)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    k = vi.resolve_kernel("6.12")
    pkg = "linux-image-6.12.118+deb12-cloud-amd64-unsigned"
    root = tmp_path / "cache" / "reclaim-ext" / "kernels" / pkg / "root"
    assert k.package == pkg and k.vmlinuz == str(root / "boot" / "vmlinuz-6.12.118+deb12-cloud-amd64")
    assert k.modules_dir == str(root / "lib" / "modules" / "6.12.118+deb12-cloud-amd64")
    assert k.release == "6.12.118+deb12-cloud-amd64" and k.config == {"CONFIG_LRU_GEN_ENABLED": "y"}
    again = vi.resolve_kernel("6.12")          # cached: no second download
    assert again.vmlinuz == k.vmlinuz
    assert log.read_text().splitlines() == [f"apt-get download {pkg}",
                                            f"dpkg-deb -x {root.parent}/{pkg}_1_amd64.deb {root}.partial"]


def test_resolve_from_the_cache_without_apt(only_fakebin, fakebin, tmp_path, monkeypatch):
    _fake_apt(fakebin, tmp_path / "calls")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    k = vi.resolve_kernel("6.12")
    monkeypatch.setenv("PATH", str(only_fakebin))        # apt gone: the cached package still resolves
    assert vi.resolve_kernel("6.12").vmlinuz == k.vmlinuz
    with pytest.raises(ReclaimExtError, match=r"no Debian package .*apt knows 6.12.118\+deb12\)"):
        vi.resolve_kernel("6.1")


def test_resolve_a_vmlinuz_path_and_its_modules(tmp_path):
    tree = tmp_path / "tree"
    (tree / "boot").mkdir(parents=True)
    (tree / "lib" / "modules" / "6.1.0-57-cloud-amd64").mkdir(parents=True)
    vmlinuz = tree / "boot" / "vmlinuz-6.1.0-57-cloud-amd64"
    vmlinuz.write_text("k")
    k = vi.resolve_kernel(str(vmlinuz))
    assert k.modules_dir == str(tree / "lib" / "modules" / "6.1.0-57-cloud-amd64") and k.package is None
    assert vi.resolve_kernel(str(tree)).vmlinuz == str(vmlinuz)
    bare = tmp_path / "bzImage"
    bare.write_text("k")
    assert vi.resolve_kernel(str(bare)).modules_dir is None          # drivers built in
    mods = tmp_path / "mods"
    mods.mkdir()
    assert vi.resolve_kernel(str(bare), modules=str(mods)).modules_dir == str(mods)
    with pytest.raises(ReclaimExtError, match="no such file"):
        vi.resolve_kernel(str(tmp_path / "nope" / "vmlinuz"))


# ---------------------------------------------------------------- modules and the initramfs

def fake_module(name: str, depends: str = "") -> bytes:
    """A minimal ELF64 relocatable with a .modinfo section (what modinfo() reads)."""
    info = f"license=GPL\0depends={depends}\0name={name}\0".encode()
    shstr = b"\0.modinfo\0.shstrtab\0"
    off_info = 64
    off_shstr = off_info + len(info)
    shoff = (off_shstr + len(shstr) + 7) & ~7
    hdr = bytearray(64)
    hdr[:7] = b"\x7fELF\x02\x01\x01"
    struct.pack_into("<HHI", hdr, 16, 1, 62, 1)
    struct.pack_into("<Q", hdr, 0x28, shoff)
    struct.pack_into("<HHHHHH", hdr, 0x34, 64, 0, 0, 64, 3, 2)
    body = bytes(hdr) + info + shstr + b"\0" * (shoff - off_shstr - len(shstr))
    sh = bytes(64)
    sh += struct.pack("<IIQQQQIIQQ", 1, 1, 0, 0, off_info, len(info), 0, 0, 1, 0)
    sh += struct.pack("<IIQQQQIIQQ", 10, 3, 0, 0, off_shstr, len(shstr), 0, 0, 1, 0)
    return body + sh


@pytest.fixture
def fake_tree(tmp_path):
    """lib/modules/<release> with virtio_blk (needs virtio_ring_x), virtio_ring_x and ext4 (needs jbd2
    and crc16), all .ko.xz as in Debian's packages, and no modules.dep."""
    mdir = tmp_path / "tree" / "lib" / "modules" / "6.12.0-test"
    for rel, name, dep in (("drivers/block/virtio_blk.ko.xz", "virtio_blk", "virtio_ring_x"),
                           ("drivers/virtio/virtio_ring_x.ko.xz", "virtio_ring_x", ""),
                           ("fs/ext4/ext4.ko.xz", "ext4", "jbd2,crc16"),
                           ("fs/jbd2/jbd2.ko.xz", "jbd2", ""),
                           ("lib/crc16.ko.xz", "crc16", ""),
                           ("drivers/net/unused.ko.xz", "unused", "")):
        p = mdir / "kernel" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(lzma.compress(fake_module(name, dep), format=lzma.FORMAT_XZ))
    boot = tmp_path / "tree" / "boot"
    boot.mkdir()
    (boot / "vmlinuz-6.12.0-test").write_text("kernel")
    return mdir


def test_module_order_from_modinfo(fake_tree):
    order = [n for n, _ in vi.module_load_order(str(fake_tree))]
    assert order == ["virtio_ring_x", "virtio_blk", "jbd2", "crc16", "ext4"]
    data = dict(vi.module_load_order(str(fake_tree)))
    assert vi.modinfo(data["ext4"])["depends"] == "jbd2,crc16"     # decompressed on the host
    assert vi.module_load_order(None) == []


def test_module_order_from_modules_dep(fake_tree):
    (fake_tree / "modules.dep").write_text("kernel/fs/ext4/ext4.ko.xz: kernel/lib/crc16.ko.xz kernel/fs/jbd2/jbd2.ko.xz\n"
                                           "kernel/drivers/block/virtio_blk.ko.xz:\n")
    assert [n for n, _ in vi.module_load_order(str(fake_tree))] == ["virtio_blk", "crc16", "jbd2", "ext4"]


def test_initramfs_contents(fake_tree, tmp_path):
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF-busybox")
    worker = tmp_path / "worker"
    worker.write_bytes(b"\x7fELF-worker")
    plan = vi.GuestPlan(limit_pages=8192, reps=3, access="mmap", lru_gen="on", min_ttl_ms=1000)
    out = tmp_path / "initrd.gz"
    info = vi.build_initramfs(str(out), str(busybox), str(worker), vi.module_load_order(str(fake_tree)),
                              vi.init_script(plan))
    assert info["modules"] == ["virtio_ring_x", "virtio_blk", "jbd2", "crc16", "ext4"]
    files = vi.read_cpio(gzip.decompress(out.read_bytes()))
    mode, init = files["init"]
    assert mode == 0o100755 and init.startswith(b"#!/bin/busybox sh\n")
    text = init.decode()
    assert "echo $4 > $CG/memory.max" in text
    assert [x for x in text.splitlines() if x.startswith("run_one ")] == \
        [f"run_one {i} trace.u32 mmap 33554432" for i in (1, 2, 3)]         # 3 runs, 8192 pages
    assert "LRU_GEN=y" in text and "MIN_TTL=1000" in text
    assert "for t in trace.u32; do cp /mnt/$t /$t" in text
    assert "exec /worker /mnt/data /$2 $3 \\\n    1000 64 $CG/memory.stat $CG/memory.current" in text
    assert "echo 0 > /sys/block/vda/queue/read_ahead_kb" in text and "poweroff -f" in text
    assert files["worker"] == (0o100755, b"\x7fELF-worker")
    assert files["bin/busybox"] == (0o100755, b"\x7fELF-busybox")
    assert files["bin/sh"][0] & 0o170000 == 0o120000
    assert files["dev/console"][0] == 0o020600
    assert files["modules.order"][1].decode().split() == info["modules"]
    ko = files["lib/modules/ext4.ko"][1]
    assert ko[:4] == b"\x7fELF" and vi.modinfo(ko)["name"] == "ext4"
    assert "lib/modules/unused.ko" not in files
    if shutil.which("cpio"):      # the system's cpio reads it too
        p = subprocess.run(["cpio", "-t", "--quiet"], input=gzip.decompress(out.read_bytes()), capture_output=True)
        assert p.returncode == 0 and b"lib/modules/virtio_blk.ko" in p.stdout.split(b"\n")


@pytest.mark.parametrize("lru_gen, want", [("on", "LRU_GEN=y"), ("off", "LRU_GEN=n"), (None, "LRU_GEN=\n")])
def test_init_lru_gen(lru_gen, want):
    assert want in vi.init_script(vi.GuestPlan(limit_pages=1000, lru_gen=lru_gen))


@pytest.mark.skipif(not (shutil.which("mkfs.ext4") or os.path.exists("/sbin/mkfs.ext4")) or not shutil.which("debugfs")
                    and not os.path.exists("/sbin/debugfs"), reason="needs e2fsprogs (mkfs.ext4, debugfs)")
def test_disk_image(tmp_path):
    pages = np.array([3, 1, 4, 1, 5], dtype=np.uint32)
    img = tmp_path / "disk.img"
    size = vi.build_disk(str(img), pages, 8, str(tmp_path / "staging"))
    assert img.stat().st_size == size and not (tmp_path / "staging").exists()
    debugfs = shutil.which("debugfs") or "/sbin/debugfs"

    def cat(name):
        return subprocess.run([debugfs, "-R", f"cat /{name}", str(img)], capture_output=True).stdout

    data = cat("data")
    assert len(data) == 8 * 4096
    assert struct.unpack_from("<Q", data, 5 * 4096)[0] == 5 and struct.unpack_from("<Q", data, 5 * 4096 + 4088)[0] == 5
    assert np.frombuffer(cat("trace.u32"), dtype=np.uint32).tolist() == [3, 1, 4, 1, 5]


def test_busybox_must_be_static(tmp_path, monkeypatch):
    dyn = tmp_path / "busybox"
    shutil.copy(shutil.which("sh") or "/bin/sh", dyn)        # a dynamically linked executable
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(vi, "BUSYBOX_PATHS", ())
    if vi._is_static(str(dyn)):
        pytest.skip("this host's sh is static")
    with pytest.raises(Unavailable, match="busybox-static"):
        vi.find_busybox()


def test_no_static_libc(fakebin, tmp_path, monkeypatch):
    _script(fakebin / "fakecc", 'echo "/usr/bin/ld: cannot find -lc: No such file or directory" >&2; exit 1\n')
    monkeypatch.setenv("CC", "fakecc")
    with pytest.raises(Unavailable, match=r"cannot find -lc.*apt-get install libc6-dev"):
        vi.compile_static_worker(str(tmp_path))


@pytest.mark.skipif(not shutil.which("gcc") or not os.path.exists("/usr/lib/x86_64-linux-gnu/libc.a"),
                    reason="needs gcc and a static libc (libc6-dev)")
def test_static_worker(tmp_path):
    exe = vi.compile_static_worker(str(tmp_path))
    assert vi._is_static(exe)


# ---------------------------------------------------------------- the console

def test_parse_recorded_console():
    text = open(SAMPLE, encoding="utf-8").read()
    p = vmmod.parse_console(text)
    assert p["release"] == "6.12.118+deb12-cloud-amd64"          # after the firmware's escape codes
    assert p["lru_gen"] == "0x0000" and p["min_ttl_ms"] == 0 and not vmmod.lru_gen_on(p["lru_gen"])
    assert p["guest"] == {"nproc": 1, "memtotal_kb": 475008}
    assert [r["n"] for r in p["runs"]] == [1, 2] and all(r["rc"] == 0 for r in p["runs"])
    rec = vmmod.guest_run_record(p["runs"][0], 256)
    assert (rec["accesses"], rec["misses"], rec["bad_reads"], rec["resident_end"]) == (3000, 941, 0, 168)
    assert rec["peak_pages"] <= 256 and rec["counters"]["events_max"] > 0
    assert rec["vmstat_delta"]["pgsteal_file"] > 0 and rec["memory_stat_delta"]["pgscan"] > 0
    assert rec["memory_stat_delta"]["workingset_refault_file"] >= 0
    # cgroup v2: the probe's own scan counters, as the memcg's pgscan splits them
    d = rec["memory_stat_delta"]
    assert {"pgrefill", "pgactivate", "pgdeactivate", "workingset_activate_anon"} <= set(d)
    assert d["pgscan"] == d["pgscan_kswapd"] + d["pgscan_direct"] and d["pgsteal"] == d["pgsteal_kswapd"] + d["pgsteal_direct"]
    assert rec["calibration"]["samples"] >= 1 and rec["foreign_evictions"] is not None
    # the same keys as a host run record
    host_like = run_record({"accesses": 1, "misses": 1, "bad": 0, "resident_end": 0, "samples": [(0, 1, 8192)]},
                           {}, {}, {}, {}, {}, None, 100)
    assert set(rec) == set(host_like)


@pytest.mark.parametrize("value, on", [("0x0007", True), ("0x0001", True), ("0x0000", False), ("none", False),
                                       (None, False)])
def test_lru_gen_on(value, on):
    assert vmmod.lru_gen_on(value) is on


def test_guest_error_line():
    with pytest.raises(vmmod.GuestError, match="in the guest: no /dev/vda"):
        vmmod.parse_console("junk\n@@reclaim-ext init 6.1\n@@reclaim-ext error no /dev/vda: no driver\n"
                            "@@reclaim-ext done\n")


def test_worker_failure_in_the_guest():
    with pytest.raises(vmmod.GuestError, match="exit 137.*raise --memory"):
        vmmod.guest_run_record({"n": 1, "rc": 137, "out": "", "err": ""}, 256)
    with pytest.raises(vmmod.GuestError, match=r"\(exit 1\): pread: Input/output error"):
        vmmod.guest_run_record({"n": 1, "rc": 1, "out": "", "err": "pread: Input/output error\n"}, 256)


# ---------------------------------------------------------------- the whole command, with a fake qemu

@pytest.fixture
def fake_guest(fakebin, tmp_path, monkeypatch):
    """Everything but qemu is stubbed (no busybox, compiler or mkfs needed); the fake qemu prints
    the recorded console (or what a test writes into its `mode` file) and records its pid."""
    tree = tmp_path / "k" / "boot"
    tree.mkdir(parents=True)
    (tree / "vmlinuz-6.12.0-test").write_text("kernel")
    monkeypatch.setattr(vmmod, "find_busybox", lambda: "busybox")
    monkeypatch.setattr(vmmod, "compile_static_worker", lambda tmp: "worker")
    monkeypatch.setattr(vmmod, "build_initramfs", lambda out, *a: {"modules": [], "bytes": 0})
    monkeypatch.setattr(vmmod, "build_disk", lambda out, *a: 0)
    monkeypatch.setattr(vmmod, "KVM_DEV", str(tmp_path / "no-kvm"))
    state = tmp_path / "qemu-state"
    state.mkdir()
    (state / "mode").write_text("ok")
    _script(fakebin / "qemu-system-x86_64", f"""echo $$ > {state}/pid
echo "$*" >> {state}/args
mode=$(cat {state}/mode)
case "$*" in *"-accel kvm"*) echo "KVM internal error. Suberror: 1" >&2; echo "emulation failure" >&2; sleep 30;; esac
case $mode in
ok) cat {SAMPLE};;
hang) echo "Booting from ROM.."; echo "[    0.9] Run /init as init process"; sleep 30;;
crash) echo "Kernel panic - not syncing: VFS: Unable to mount root fs"; exit 1;;
esac
""")
    return {"kernel": str(tree / "vmlinuz-6.12.0-test"), "state": state, "dir": tmp_path / "work"}


def _cli(fake_guest, *extra):
    fake_guest["dir"].mkdir(exist_ok=True)
    args = ["validate", "kernel", "--vm", fake_guest["kernel"], "-p", "pages=1024", "-p", "accesses=3000",
            "--memory", "1MiB", "--reps", "2", "--dir", str(fake_guest["dir"]), *extra]
    return CliRunner().invoke(main, args)


def test_fake_vm_end_to_end(fake_guest):
    r = _cli(fake_guest, "--lru-gen", "off", "--json", "-")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["kernel_misses"] == 939.5 and res["kernel_misses_min"] == 938 and res["reps"] == 2
    assert res["model"]["policy"] == "classic"          # the guest read back lru_gen 0x0000
    assert res["host"]["vm"] and res["host"]["accel"] == "tcg" and res["host"]["kernel"] == "6.12.118+deb12-cloud-amd64"
    assert "not accessible" in res["host"]["kvm_fallback_reason"]
    assert abs(res["error"]) < 0.2 and res["calibration"]["model_max"] == 256 - res["calibration"]["overhead"]
    args = (fake_guest["state"] / "args").read_text()
    assert "-accel tcg -cpu max" in args and "-no-reboot" in args and "if=virtio,format=raw,cache=none" in args
    assert os.listdir(fake_guest["dir"]) == []           # the temporary directory is gone
    # run by run: each run against the model at its own overhead; and on non-compulsory misses
    pr = res["per_run"]
    assert [x["kernel_misses"] for x in pr["runs"]] == [941, 938]
    assert [x["overhead"] for x in pr["runs"]] == [x["overhead"] for x in res["calibration"]["runs"]]
    assert all(x["model_max"] == 256 - x["overhead"] for x in pr["runs"])
    assert pr["worst_abs_error"] == max(abs(x["error"]) for x in pr["runs"])
    nc = res["kernel_misses"] - res["distinct_pages"]
    assert nc > 0 and res["error_noncompulsory"] == pytest.approx((res["model_misses"] - res["kernel_misses"]) / nc)
    r = _cli(fake_guest, "--lru-gen", "off")
    assert r.exit_code == 0, r.output
    assert "  non-compulsory  " in r.stdout and "distinct pages)" in r.stdout
    assert "  run by run      median |error| " in r.stdout and "each run at its own capacity (model max): " in r.stdout


def test_memory_high_knob_in_the_guest_and_the_model(fake_guest, monkeypatch):
    """--knob high: the guest sets the probe's memory.high (memory.max left at max) and the model's
    memcg gets high = the calibrated capacity and no max; the result compares the high events."""
    text = vi.init_script(vi.GuestPlan(limit_pages=1000, knob="high"))
    assert 'echo $4 > $CG/memory.high || fail "cannot set memory.high"' in text and "memory.max ||" not in text
    assert 'echo $4 > $CG/memory.max' in vi.init_script(vi.GuestPlan(limit_pages=1000))
    with pytest.raises(ReclaimExtError, match="knob: 'low' is not one of max, high"):
        vi.init_script(vi.GuestPlan(limit_pages=1000, knob="low"))
    seen = []
    real = kernel_mod.model_run

    def spy(*a, **kw):
        out = real(*a, **kw)
        seen.append(out)
        return out

    monkeypatch.setattr(kernel_mod, "model_run", spy)
    r = _cli(fake_guest, "--lru-gen", "off", "--knob", "high", "--json", "-")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["knob"] == "high" and seen and all(m["knob"] == "high" for m in seen)
    hi = res["high"]
    assert hi["model_events_high"] > 0 and hi["model_peak_pages"] > res["calibration"]["model_max"]
    assert hi["kernel_events_high"] == [0, 0]  # the recorded console's runs (memory.max ones: never over high)
    assert hi["kernel_peak_pages"] == [r["peak_pages"] for r in res["kernel_runs"]]
    mc = seen[0]["memory_events"]
    assert mc["max"] == 0 and mc["oom"] == 0  # no memory.max in the model either


def test_memory_reclaim_after_the_replay():
    """--reclaim SIZE: the guest writes SIZE to memory.reclaim after each replay and reports what
    it took; the model writes it after its last access."""
    text = vi.init_script(vi.GuestPlan(limit_pages=1000, reclaim_bytes=8192 * 4096))
    assert "echo 33554432 > $CG/memory.reclaim" in text and " lru_gen reclaim numa_stat swapio0 swapio1 swaps nodes0 nodes1; do" in text
    assert "if [ 0 -gt 0 ]" in vi.init_script(vi.GuestPlan(limit_pages=1000))  # off by default
    stat1 = {"file": 5000 * 4096}
    ok = vmmod.parse_reclaim("before=20971520 after=16777216 rc=0 error=\nanon 0\nfile 16384000\n", stat1)
    assert ok == {"memory_current_before_pages": 5120, "memory_current_after_pages": 4096, "reclaimed_pages": 1000,
                  "result": "ok"}
    bad = vmmod.parse_reclaim("before=1 after=1 rc=1 error=sh:_write_error:_Resource_temporarily_unavailable\n"
                              "file 0\n", stat1)
    assert bad["result"] == "EAGAIN" and bad["reclaimed_pages"] == 5000
    rng = np.random.default_rng(1)
    pages = (rng.zipf(1.3, 6000) % 800).astype(np.int64)
    m = kernel_mod.model_run(pages, 800, 300, "pread", reclaim_pages=100)
    assert m["proactive"]["result"] == "ok" and 100 <= m["proactive"]["reclaimed"] < 100 + 64
    m = kernel_mod.model_run(pages, 800, 300, "pread", reclaim_pages=5000)
    assert m["proactive"]["result"] == "EAGAIN" and m["proactive"]["reclaimed"] <= 300
    with pytest.raises(ReclaimExtError, match="reclaim: only with pread access"):
        vmmod.validate_vm(None, "6.12", limit_pages=1000, access="mmap", reclaim_pages=10)


def test_kvm_failure_falls_back_to_tcg(fake_guest, tmp_path, monkeypatch):
    kvm = tmp_path / "kvm"
    kvm.write_text("")
    monkeypatch.setattr(vmmod, "KVM_DEV", str(kvm))
    r = _cli(fake_guest, "--json", "-")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["host"]["accel"] == "tcg" and "KVM internal error" in res["host"]["kvm_fallback_reason"]
    assert "falling back to TCG" in r.stderr
    calls = (fake_guest["state"] / "args").read_text().splitlines()
    assert "-accel kvm" in calls[0] and "-accel tcg" in calls[1]


def test_guest_that_never_finishes_times_out_with_the_console_tail(fake_guest):
    (fake_guest["state"] / "mode").write_text("hang")
    t0 = time.monotonic()
    r = _cli(fake_guest, "--vm-timeout", "2")
    assert r.exit_code == 2 and time.monotonic() - t0 < 20
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("reclaim-ext: error: the guest did not finish within 2 s (tcg); console tail:")
    assert "Run /init as init process" in lines[-1] and "Traceback" not in r.output
    pid = int((fake_guest["state"] / "pid").read_text())
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    assert os.listdir(fake_guest["dir"]) == []


def test_kernel_that_does_not_boot(fake_guest):
    (fake_guest["state"] / "mode").write_text("crash")
    r = _cli(fake_guest)
    assert r.exit_code == 2
    assert "qemu (tcg) exited with 1 before the guest finished" in r.stderr
    assert "Kernel panic - not syncing" in r.stderr


def test_ctrl_c_kills_qemu_and_cleans_up(fake_guest, monkeypatch):
    (fake_guest["state"] / "mode").write_text("hang")
    real_read = vmmod._read

    def interrupt(path):
        if (fake_guest["state"] / "pid").exists():
            raise KeyboardInterrupt
        return real_read(path)

    monkeypatch.setattr(vmmod, "_read", interrupt)
    r = _cli(fake_guest)
    assert r.exit_code != 0 and isinstance(r.exception, (KeyboardInterrupt, SystemExit))
    pid = int((fake_guest["state"] / "pid").read_text())
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    assert os.listdir(fake_guest["dir"]) == []


# ---------------------------------------------------------------- error lines

def _err(r):
    """The one error line (progress lines may come before it)."""
    assert "Traceback" not in r.output
    lines = r.stderr.strip().splitlines()
    errors = [x for x in lines if x.startswith("reclaim-ext: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], r.stderr
    return errors[0]


def test_no_qemu(only_fakebin, tmp_path):
    r = CliRunner().invoke(main, ["validate", "kernel", "--vm", "6.12", "--dir", str(tmp_path)])
    assert r.exit_code == 4
    assert _err(r) == ("reclaim-ext: error: qemu-system-x86_64 not found: booting a kernel needs qemu "
                       "(apt-get install qemu-system-x86 busybox-static)")


def test_no_busybox(only_fakebin, tmp_path):
    _script(only_fakebin / "qemu-system-x86_64", "exit 1\n")
    r = CliRunner().invoke(main, ["validate", "kernel", "--vm", "6.12", "--dir", str(tmp_path)])
    assert r.exit_code == 4
    assert "busybox not found" in _err(r) and "apt-get install qemu-system-x86 busybox-static" in r.stderr


def _with_fake_busybox(only_fakebin, monkeypatch):
    _script(only_fakebin / "qemu-system-x86_64", "exit 1\n")
    monkeypatch.setattr(vmmod, "find_busybox", lambda: "busybox")


def test_no_such_kernel_package(only_fakebin, tmp_path, monkeypatch):
    _with_fake_busybox(only_fakebin, monkeypatch)
    _fake_apt(only_fakebin, tmp_path / "calls")
    r = CliRunner().invoke(main, ["validate", "kernel", "--vm", "6.3", "-p", "accesses=2000", "--dir", str(tmp_path)])
    assert r.exit_code == 2
    assert _err(r).startswith("reclaim-ext: error: --vm 6.3: no Debian package linux-image-6.3*-cloud-amd64-unsigned "
                              "(apt knows 6.1.0-9, 6.1.0-57, 6.12.9+deb12, 6.12.115+deb12, 6.12.118+deb12)")


def test_download_failure(only_fakebin, tmp_path, monkeypatch):
    _with_fake_busybox(only_fakebin, monkeypatch)
    _fake_apt(only_fakebin, tmp_path / "calls")
    _script(only_fakebin / "apt-get", 'echo "E: Failed to fetch http://deb.debian.org/x  404  Not Found" >&2; exit 100\n')
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    r = CliRunner().invoke(main, ["validate", "kernel", "--vm", "6.12", "-p", "accesses=2000", "--dir", str(tmp_path)])
    assert r.exit_code == 4
    assert "apt-get download linux-image-6.12.118+deb12-cloud-amd64-unsigned failed: E: Failed to fetch" in _err(r)


def test_no_apt(only_fakebin, tmp_path, monkeypatch):
    _with_fake_busybox(only_fakebin, monkeypatch)
    r = CliRunner().invoke(main, ["validate", "kernel", "--vm", "6.12", "-p", "accesses=2000", "--dir", str(tmp_path)])
    assert r.exit_code == 4 and "apt-cache not found" in _err(r) and "--vm /path/to/vmlinuz" in r.stderr


@pytest.mark.parametrize("args, msg", [
    (["--lru-gen", "on"], "--lru-gen does not apply with the host kernel (no --vm)"),
    (["--vm-timeout", "10"], "--vm-timeout does not apply with the host kernel"),
    (["--vm", "6.12", "--min-ttl-ms", "100"], "needs --lru-gen on"),
    (["--vm", "6.12", "--lru-gen", "off", "--min-ttl-ms", "100"], "needs --lru-gen on"),
    (["--scale", "0.5"], "only with --suite"),
    (["--vm", "6.12", "--suite", "--json", "-"], "--json does not apply with --suite"),
    (["--knob", "high"], "--knob does not apply with the host kernel"),
    (["--vm", "6.12", "--suite", "--knob", "high"], "--knob does not apply with --suite"),
    (["--reclaim", "4MiB"], "--reclaim does not apply with the host kernel"),
])
def test_option_errors(args, msg):
    r = CliRunner().invoke(main, ["validate", "kernel", *args])
    assert r.exit_code == 2 and msg in r.output and "Traceback" not in r.output


# ---------------------------------------------------------------- a real VM

@pytest.mark.vm
def test_real_vm_replay(request, tmp_path):
    """Boots Debian's 6.12 cloud kernel under qemu and replays 6000 accesses with MGLRU on. Behind
    the `vm` marker (run it with `pytest -m vm`) because it needs qemu-system-x86, busybox-static,
    a static libc, apt access to fetch the 34 MB kernel package on first use, and ~15-30 s of TCG
    emulation (KVM fails on the project's machines), which CI does not have. Deselected (not
    skipped) unless selected: tests/conftest.py."""
    r = CliRunner().invoke(main, ["validate", "kernel", "--vm", "6.12", "--lru-gen", "on", "--workload", "zipf",
                                  "-p", "pages=2048", "-p", "accesses=6000", "--memory", "2MiB", "--reps", "1",
                                  "--dir", str(tmp_path), "--json", "-"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["host"]["lru_gen"] == "0x0007" and res["model"]["policy"] == "mglru"
    assert res["distinct_pages"] <= res["kernel_misses"] < 6000 and res["kernel_runs"][0]["bad_reads"] == 0
    assert abs(res["error"]) < 0.15
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- several configurations per boot (the suite)

def test_guest_plan_with_several_runs():
    plan = vi.GuestPlan(limit_pages=16384, lru_gen="off",
                        runs=[("loop.u32", "pread", 3277), ("loop.u32", "mmap", 16384), ("zipf1.2.u32", "pread", 8192)])
    assert plan.trace_files() == ["loop.u32", "zipf1.2.u32"]
    text = vi.init_script(plan)
    assert [x for x in text.splitlines() if x.startswith("run_one ")] == [
        "run_one 1 loop.u32 pread 13422592", "run_one 2 loop.u32 mmap 67108864", "run_one 3 zipf1.2.u32 pread 33554432"]
    assert "for t in loop.u32 zipf1.2.u32; do cp /mnt/$t /$t" in text and "LRU_GEN=n" in text
    assert text.index("run_one 3") < text.rindex('echo "$M done"')
    for bad in ([("../x", "pread", 100)], [("t.u32", "mmaprand", 100)], [("t.u32", "pread", 0)], []):
        with pytest.raises(ReclaimExtError):
            vi.init_script(vi.GuestPlan(limit_pages=100, runs=bad))


def test_suite_batches_one_boot_per_trace():
    from reclaim_ext.validate import suite

    cfgs = suite.plan(("zipf0.9", "loop"), ("pread", "mmap"))
    batches = vmmod.suite_batches(cfgs, 2)
    assert [[c.trace for c in b] for b in batches] == [["zipf0.9"] * 6, ["loop"] * 6]
    plan = vmmod.batch_plan(batches[1], 2, "on", None)
    assert plan.limit_pages == 16384 and plan.lru_gen == "on" and plan.trace_files() == ["loop.u32"]
    runs = plan.guest_runs()
    assert len(runs) == 12 and runs[0] == runs[1] == ("loop.u32", "pread", 3277) and runs[-1] == ("loop.u32", "mmap", 16384)


def test_parse_run_marker_fields():
    p = vmmod.parse_console("@@reclaim-ext init 6.12\n@@reclaim-ext run 1 rc=0 trace=loop.u32 access=mmap limit=13422592\n"
                            "@@reclaim-ext section out\naccesses 1\n@@reclaim-ext end 1\n@@reclaim-ext run 2 rc=137\n"
                            "@@reclaim-ext end 2\n@@reclaim-ext done\n")
    r1, r2 = p["runs"]
    assert (r1["n"], r1["rc"], r1["trace"], r1["access"], r1["limit"], r1["out"]) == (1, 0, "loop.u32", "mmap", 13422592,
                                                                                       "accesses 1")
    assert r2["rc"] == 137 and "trace" not in r2         # an older guest's marker: rc only


@pytest.mark.skipif(not (shutil.which("mkfs.ext4") or os.path.exists("/sbin/mkfs.ext4")) or not shutil.which("debugfs")
                    and not os.path.exists("/sbin/debugfs"), reason="needs e2fsprogs (mkfs.ext4, debugfs)")
def test_disk_image_with_several_traces(tmp_path):
    img = tmp_path / "disk.img"
    vi.build_disk(str(img), {"a.u32": np.array([1, 2], dtype=np.uint32), "b.u32": np.array([7], dtype=np.uint32)},
                  8, str(tmp_path / "staging"))
    debugfs = shutil.which("debugfs") or "/sbin/debugfs"
    ls = subprocess.run([debugfs, "-R", "ls -l /", str(img)], capture_output=True, text=True).stdout
    assert "a.u32" in ls and "b.u32" in ls and "data" in ls and "trace.u32" not in ls
    with pytest.raises(ReclaimExtError, match="not usable"):
        vi.build_disk(str(img), {"data": np.array([1], dtype=np.uint32)}, 8, str(tmp_path / "staging2"))


def _fake_suite_boot(monkeypatch, tmp_path, calls):
    """boot_plan replaced: every planned run reports the recorded console's first run (3000
    accesses, 941 misses), with the marker fields of the plan."""
    sample = vmmod.parse_console(open(SAMPLE, encoding="utf-8").read())

    def boot(k, plan, traces, npages, **kw):
        calls.append({"plan": plan, "traces": sorted(traces), "npages": npages, "accel": kw["accel"],
                      "timeout": kw["timeout"]})
        runs = []
        for i, (t, a, lim) in enumerate(plan.guest_runs(), 1):
            r = dict(sample["runs"][0], n=i, trace=t, access=a, limit=lim * 4096)
            runs.append(r)
        parsed = dict(sample, runs=runs)
        return {"parsed": parsed, "console": "", "accel": "tcg", "kvm_fallback_reason": "no kvm", "memory_mib": 512,
                "modules": [], "seconds": 1.5}

    monkeypatch.setattr(vmmod, "boot_plan", boot)
    monkeypatch.setattr(vmmod, "find_qemu", lambda: "qemu")
    monkeypatch.setattr(vmmod, "find_busybox", lambda: "busybox")
    monkeypatch.setattr(vmmod, "compile_static_worker", lambda d: "worker")
    tree = tmp_path / "k" / "boot"
    tree.mkdir(parents=True)
    (tree / "vmlinuz-6.12.0-test").write_text("kernel")
    return str(tree / "vmlinuz-6.12.0-test")


def test_vm_suite_with_a_fake_boot(monkeypatch, tmp_path):
    calls = []
    kernel = _fake_suite_boot(monkeypatch, tmp_path, calls)
    data = vmmod.run_suite_vm(kernel, traces=("zipf1.2", "loop"), access=("pread",), reps=2, lru_gen="off", n=1024,
                              scale=0.01, workdir=str(tmp_path))
    assert [c["traces"] for c in calls] == [["zipf1.2.u32"], ["loop.u32"]] and all(c["npages"] == 1024 for c in calls)
    assert len(calls[0]["plan"].guest_runs()) == 6 and calls[0]["plan"].lru_gen == "off"
    assert data["policy"] == "classic" and data["host"]["vm"] and len(data["host"]["boots"]) == 2
    assert data["reps"] == 2 and len(data["results"]) == 6 and data["suite"]["scale"] == 0.01
    r = data["results"][0]
    assert r["kernel_runs_misses"] == [941, 941] and r["model_policy"] == "classic"
    assert len(r["per_run"]["runs"]) == 2 and r["per_run"]["runs"][0]["kernel_misses"] == 941
    assert r["error_noncompulsory"] == pytest.approx((r["model_misses"] - 941) / (941 - r["distinct_pages"]))
    s = data["summary"]
    assert s["configs"] == 6 and s["runs_compared"] == 12 and "median_abs_run_error" in s
    assert os.listdir(tmp_path) == ["k"]                  # the worker's directory is gone


def test_vm_suite_anon_set(monkeypatch, tmp_path):
    """The anon set: the boot gets the swap device and swappiness 60, the model runs anon with the
    guest's disk swap, and each row carries the swap comparison; the host suite refuses anon."""
    from reclaim_ext.validate import suite

    calls = []
    kernel = _fake_suite_boot(monkeypatch, tmp_path, calls)
    real = vmmod.boot_plan

    def with_swap(*a, **kw):
        b = real(*a, **kw)
        b["parsed"]["swap"] = {"devices": 1, "swappiness": 60, "thp": "[never]"}
        return b

    monkeypatch.setattr(vmmod, "boot_plan", with_swap)
    data = vmmod.run_suite_vm(kernel, traces=("zipf1.2",), access=("pread", "anon"), reps=1, lru_gen="off", n=1024,
                              scale=0.01, workdir=str(tmp_path))
    plan = calls[0]["plan"]
    assert plan.swap and plan.swappiness == 60 and [a for _, a, _ in plan.guest_runs()] == ["pread"] * 3 + ["anon"] * 3
    anon = [r for r in data["results"] if r["access"] == "anon"]
    assert len(anon) == 3 and all("swap" in r for r in anon) and not any("swap" in r for r in data["results"][:3])
    assert anon[0]["swap"]["model_pswpin"] is not None and data["calibration"]["anon"]
    assert data["host"]["swap"]["bytes"] == vmmod.swap_bytes(1024) and data["regime"]["anon"]["swappiness"] == 60
    with pytest.raises(ReclaimExtError, match="host suite has no anon set"):
        suite.run_suite(traces=("zipf1.2",), access=("anon",), reps=1)
    assert plan.swap_device == "disk" and data["host"]["swap"]["device"] == "disk"
    # zram: the boot gets the zram device of swap_bytes, the model swaps to its zram device
    models = []
    real_model = kernel_mod.model_run
    monkeypatch.setattr(kernel_mod, "model_run", lambda *a: models.append(a) or real_model(*a))
    z = vmmod.run_suite_vm(kernel, traces=("zipf1.2",), access=("anon",), reps=1, lru_gen="off", n=1024, scale=0.01,
                           workdir=str(tmp_path), swap_device="zram")
    zplan = calls[-1]["plan"]
    assert zplan.swap_device == "zram" and zplan.swap_bytes == vmmod.swap_bytes(1024)
    assert z["host"]["swap"]["device"] == "zram" and z["regime"]["anon"]["swap"] == vmmod.ZRAM_REGIME
    assert models and all(m[3] == "anon" and m[-1] == "zram" for m in models)
    with pytest.raises(ReclaimExtError, match="only with the anon set"):
        vmmod.run_suite_vm(kernel, traces=("zipf1.2",), access=("pread",), reps=1, n=1024, scale=0.01,
                           workdir=str(tmp_path), swap_device="zram")
    # a boot that did not bring its swap device up is refused
    monkeypatch.setattr(vmmod, "boot_plan", real)
    with pytest.raises(vmmod.GuestError, match="no swap device active"):
        vmmod.run_suite_vm(kernel, traces=("zipf1.2",), access=("anon",), reps=1, n=1024, scale=0.01,
                           workdir=str(tmp_path))


def test_vm_suite_refuses_a_run_that_is_not_the_planned_one(monkeypatch, tmp_path):
    calls = []
    kernel = _fake_suite_boot(monkeypatch, tmp_path, calls)
    real = vmmod.boot_plan

    def swapped(*a, **kw):
        b = real(*a, **kw)
        b["parsed"]["runs"][1]["access"] = "mmap"
        return b

    monkeypatch.setattr(vmmod, "boot_plan", swapped)
    with pytest.raises(vmmod.GuestError, match="guest run 2: ran .*mmap.*planned .*pread"):
        vmmod.run_suite_vm(kernel, traces=("zipf1.2",), access=("pread",), reps=2, n=1024, scale=0.01,
                           workdir=str(tmp_path))


def test_vm_suite_cli_writes_the_json_and_the_table(monkeypatch, tmp_path):
    from reclaim_ext.validate import suite

    calls = []
    kernel = _fake_suite_boot(monkeypatch, tmp_path, calls)
    out = tmp_path / "vm.json"
    r = CliRunner().invoke(main, ["validate", "kernel", "--suite", "--vm", kernel, "--lru-gen", "off", "--only", "zipf1.2",
                                  "--access", "pread", "--reps", "1", "--scale", "0.01", "--dir", str(tmp_path),
                                  "--out", str(out)])
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert data["command"] == (f"reclaim-ext validate kernel --suite --vm {kernel} --lru-gen off --only zipf1.2 "
                               "--access pread --reps 1 --scale 0.01")
    assert calls[0]["plan"].lru_gen == "off" and len(calls[0]["plan"].guest_runs()) == 3
    table = suite.table_markdown(data)
    assert table in r.stdout and table.startswith("VM, kernel 6.12.118+deb12-cloud-amd64 (tcg), lru_gen 0x0000; "
                                                  "model classic\n")
    assert "| per-run error median [worst] | non-compulsory error |" in table
    assert "Run by run (3 kernel runs" in table
    t = CliRunner().invoke(main, ["validate", "kernel", "--table", str(out)])
    assert t.exit_code == 0 and t.output == table


def test_default_vm_out_and_command():
    from reclaim_ext.validate.cli import default_vm_out, suite_command

    assert default_vm_out("6.12", "on") == "docs/data/fidelity-vm-6.12-lru-gen-on.json"
    assert default_vm_out("6.12", "on", "zram") == "docs/data/fidelity-vm-6.12-lru-gen-on-zram.json"
    assert default_vm_out("6.12", "on", "disk") == "docs/data/fidelity-vm-6.12-lru-gen-on.json"
    assert suite_command((), "anon", 1, None, {"kernel": "6.12", "lru_gen": "off", "swap_device": "zram"}) == \
        "reclaim-ext validate kernel --suite --vm 6.12 --lru-gen off --swap-device zram --access anon --reps 1"
    assert default_vm_out("/x/boot/vmlinuz-6.1.0-57-cloud-amd64", None) == \
        "docs/data/fidelity-vm-vmlinuz-6.1.0-57-cloud-amd64-lru-gen-default.json"
    assert suite_command((), None, 3, None, None) == "reclaim-ext validate kernel --suite --reps 3"
    assert suite_command(("loop",), "mmap", 1, 0.5, {"kernel": "6.12", "lru_gen": "on", "min_ttl_ms": None}) == \
        "reclaim-ext validate kernel --suite --vm 6.12 --lru-gen on --only loop --access mmap --reps 1 --scale 0.5"


# ---------------------------------------------------------------- anon memory with swap (issue 11, item 3)

def test_init_with_swap_and_anon_runs():
    plan = vi.GuestPlan(limit_pages=2048, reps=2, access="anon", lru_gen="on", swap=True, swappiness=100)
    text = vi.init_script(plan)
    assert "SWAP=disk" in text and "SWAPPINESS=100" in text and "SWAPDEV=/dev/vdb" in text
    assert "mkswap $SWAPDEV" in text and "else swapon $SWAPDEV; fi" in text
    assert "echo 0 > /proc/sys/vm/page-cluster" in text and "echo never > /sys/kernel/mm/transparent_hugepage" in text
    assert 'if [ "$3" = anon ]; then echo max > $CG/memory.swap.max' in text
    assert [x for x in text.splitlines() if x.startswith("run_one ")] == ["run_one 1 trace.u32 anon 8388608",
                                                                          "run_one 2 trace.u32 anon 8388608"]
    file_plan = vi.init_script(vi.GuestPlan(limit_pages=2048))
    assert "SWAP=\n" in file_plan and "SWAPPINESS=\n" in file_plan      # file runs: no swap device, as before
    with pytest.raises(ReclaimExtError, match="swap device"):
        vi.init_script(vi.GuestPlan(limit_pages=2048, access="anon"))
    # zram: the zram module's device, sized, instead of the second disk
    z = vi.init_script(vi.GuestPlan(limit_pages=2048, access="anon", swap=True, swap_device="zram",
                                    swap_bytes=160841728))
    assert "SWAP=zram" in z and "echo 160841728 > /sys/block/zram0/disksize" in z and "SWAPDEV=/dev/zram0" in z
    with pytest.raises(ReclaimExtError, match="zram swap device needs its size"):
        vi.init_script(vi.GuestPlan(limit_pages=2048, access="anon", swap=True, swap_device="zram"))
    with pytest.raises(ReclaimExtError, match="swap device: 'tape' is not one of"):
        vi.init_script(vi.GuestPlan(limit_pages=2048, access="anon", swap=True, swap_device="tape"))


def test_qemu_command_with_a_swap_disk():
    cmd = vmmod.qemu_command("qemu", "tcg", "vmlinuz", "initrd", "disk.img", 512, "swap.img")
    assert cmd[-4:] == ["-drive", "file=disk.img,if=virtio,format=raw,cache=none",
                        "-drive", "file=swap.img,if=virtio,format=raw,cache=none"]
    assert "swap.img" not in " ".join(vmmod.qemu_command("qemu", "tcg", "vmlinuz", "initrd", "disk.img", 512))


def test_two_guest_nodes_interleaved():
    """--vm-nodes 2: qemu gets two RAM-backed nodes (the vCPU on node 0), the worker runs with
    MPOL_INTERLEAVE over both, memory.numa_stat is read back; the model interleaves over two nodes."""
    cmd = vmmod.qemu_command("qemu", "tcg", "vmlinuz", "initrd", "disk.img", 513, nodes=2)
    line = " ".join(cmd)
    assert "-object memory-backend-ram,id=ram0,size=256M -numa node,nodeid=0,memdev=ram0,cpus=0" in line
    assert "-object memory-backend-ram,id=ram1,size=256M -numa node,nodeid=1,memdev=ram1 " in line
    assert cmd[cmd.index("-m") + 1] == "512" and "-numa" not in vmmod.qemu_command("q", "tcg", "v", "i", "d", 512)
    text = vi.init_script(vi.GuestPlan(limit_pages=1000, nodes=2))
    assert "RECLAIM_EXT_INTERLEAVE=3 RECLAIM_EXT_PIDS=$PIDS" in text and "cat $CG/memory.numa_stat > /tmp/numa_stat" in text
    assert "RECLAIM_EXT_INTERLEAVE= RECLAIM_EXT_PIDS=$PIDS" in vi.init_script(vi.GuestPlan(limit_pages=1000))
    got = vmmod.parse_numa_stat("anon N0=0 N1=4096\nfile N0=8192 N1=12288\nkernel_stack N0=1 N1=2\n"
                                "workingset_refault_file N0=7 N1=9\n")
    assert got == {"anon": [0, 1], "file": [2, 3], "workingset_refault_file": [7, 9]}
    rng = np.random.default_rng(2)
    pages = (rng.zipf(1.2, 20000) % 1500).astype(np.int64)
    one = kernel_mod.model_run(pages, 1500, 400, "pread")
    two = kernel_mod.model_run(pages, 1500, 400, "pread", nodes=2)
    assert one["numa_stat"] is None
    ns = two["numa_stat"]
    assert min(ns["file"]) > 150 and sum(ns["file"]) <= 400  # both nodes hold a share, within the limit
    assert sum(ns["workingset_refault_file"]) == two["memory_stat"]["workingset_refault_file"] > 0
    assert abs(two["misses"] - one["misses"]) < 0.05 * one["misses"]
    with pytest.raises(ReclaimExtError, match="nodes: 3 guest nodes"):
        vmmod.validate_vm(None, "6.12", limit_pages=1000, nodes=3)


def test_parse_swap_marker():
    p = vmmod.parse_console("@@reclaim-ext init 6.12\n@@reclaim-ext swap 2 60 always,madvise,[never]\n"
                            "@@reclaim-ext done\n")
    assert p["swap"] == {"devices": 1, "swappiness": 60, "thp": "always,madvise,[never]"}
    assert vmmod.parse_console("@@reclaim-ext init 6.12\n@@reclaim-ext done\n")["swap"] is None


def test_anon_model_run_swaps():
    from reclaim_ext.validate.kernel import model_run

    pages = np.tile(np.arange(600, dtype=np.uint32), 3)            # a 600-page loop, 3 passes
    big = model_run(pages, 600, 1000, "anon")
    assert big["misses"] == 600 and big["vmstat"]["pswpin"] == 0     # fits: first touches only
    small = model_run(pages, 600, 300, "anon")
    assert small["misses"] > 600 and small["vmstat"]["pswpin"] == small["misses"] - 600
    # the guest's swap is a disk: a page read back keeps its slot in the swap cache, so each page
    # is written once, the first time it is reclaimed, however often it comes back
    assert small["vmstat"]["pswpout"] == 600 < small["vmstat"]["pswpin"]


def test_swap_comparison():
    from reclaim_ext.validate.kernel import swap_comparison

    runs = [{"vmstat_delta": {"pswpin": 100, "pswpout": 150}, "majflt": 110,
             "memory_stat_delta": {"workingset_refault_anon": 90}},
            {"vmstat_delta": {"pswpin": 120, "pswpout": 170}, "majflt": 130,
             "memory_stat_delta": {"workingset_refault_anon": 100}}]
    sw = swap_comparison(runs, {"vmstat": {"pswpin": 99, "pswpout": 160, "pgmajfault": 99,
                                           "workingset_refault_anon": 95}})
    assert (sw["kernel_pswpin"], sw["kernel_pswpout"], sw["kernel_majflt"], sw["kernel_refault_anon"]) == (110, 160, 120, 95)
    assert sw["error_pswpin"] == pytest.approx(-0.10) and sw["error_majflt"] == pytest.approx(-21 / 120)
    assert sw["error_pswpout"] == pytest.approx(0.0)
    sw = swap_comparison(runs, {"vmstat": {"pswpin": 99, "pswpout": 176, "pgmajfault": 99}})
    assert sw["error_pswpout"] == pytest.approx(0.10)


@pytest.mark.parametrize("args, msg", [
    (["--access", "anon"], "anon needs --vm"),
    (["--vm", "6.12", "--swappiness", "10"], "needs --access anon"),
    (["--swappiness", "10"], "--swappiness does not apply with the host kernel"),
    (["--vm", "6.12", "--suite", "--access", "anon", "--swappiness", "10"], "the suite's anon set runs at swappiness 60"),
    (["--vm", "6.12", "--swap-device", "zram"], "needs --access anon (only anon runs have swap"),
    (["--vm", "6.12", "--suite", "--swap-device", "zram"], "with --suite, the anon set alone"),
    (["--swap-device", "zram"], "--swap-device does not apply with the host kernel"),
])
def test_anon_option_errors(args, msg):
    r = CliRunner().invoke(main, ["validate", "kernel", *args])
    assert r.exit_code == 2 and msg in r.output and "Traceback" not in r.output


@pytest.mark.skipif(not shutil.which("gcc") or not os.path.exists("/usr/lib/x86_64-linux-gnu/libc.a"),
                    reason="needs gcc and a static libc (libc6-dev)")
def test_worker_anon_mode_on_the_host(tmp_path):
    """The worker's anon mode without a VM: first touches miss, rereads of resident pages hit, data checked."""
    from reclaim_ext.validate.worker import parse_worker_output

    exe = vi.compile_static_worker(str(tmp_path))
    data = tmp_path / "data"
    data.write_bytes(b"\0" * 16 * 4096)
    trace = tmp_path / "t.u32"
    np.array([3, 1, 3, 4, 1, 15, 3], dtype=np.uint32).tofile(trace)
    usage = tmp_path / "usage"
    usage.write_text("123\n")
    p = subprocess.run([exe, str(data), str(trace), "anon", "1000", "0", "/dev/null", str(usage)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    w = parse_worker_output(p.stdout)
    assert (w["accesses"], w["misses"], w["bad"]) == (7, 4, 0)
    assert w["bitmap"][0] == 0b0101011                               # accesses 0, 1, 3, 5 missed


@pytest.mark.vm
def test_real_vm_anon_replay(tmp_path):
    """Anon memory with swap in a real 6.12 guest (classic LRU), 6000 accesses; behind the `vm`
    marker for the reasons of test_real_vm_replay."""
    r = CliRunner().invoke(main, ["validate", "kernel", "--vm", "6.12", "--lru-gen", "off", "--access", "anon",
                                  "--workload", "zipf", "-p", "pages=2048", "-p", "accesses=6000", "--memory", "2MiB",
                                  "--reps", "1", "--dir", str(tmp_path), "--json", "-"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["access"] == "anon" and res["model"]["policy"] == "classic" and res["host"]["swap"]["devices"] == 1
    assert res["kernel_runs"][0]["bad_reads"] == 0 and res["distinct_pages"] <= res["kernel_misses"]
    assert res["swap"]["kernel_pswpin"] > 0 and res["swap"]["model_pswpin"] > 0
    assert abs(res["error"]) < 0.15
    assert os.listdir(tmp_path) == []


def test_lru_gen_seqs_of_the_probe_from_the_guests_debugfs_file():
    """The guest prints /sys/kernel/debug/lru_gen after each run; each run record keeps its probe
    memcg's max_seq and evictable min_seq (the first generation listed)."""
    text = "\n".join([
        "memcg     1 /", " node     0", "          0       5000          0          0",
        "          3       5000          0          0",
        "memcg    17 /probe1", " node     0", "         41      12345       1200          0 ",
        "         42       3000       3000          3 ", "         43        100       4000          0 ",
        "memcg    18 /probe12", " node     0", "          0       5000          0          0"])
    assert vmmod.lru_gen_seqs(text, "/probe1") == {"max_seq": 43, "min_seq": 41}
    assert vmmod.lru_gen_seqs(text, "/probe12") == {"max_seq": 0, "min_seq": 0}
    assert vmmod.lru_gen_seqs(text, "/probe3") is None and vmmod.lru_gen_seqs("", "/probe1") is None
    # the model's side is read the same way, from its own rendering of the file (format_lru_gen)
    from reclaim_ext.policies.mglru import format_lru_gen
    from reclaim_ext.validate.kernel import model_run

    st = {"memcg_id": 3, "memcg_path": "/probe", "node": 0, "max_seq": 8, "min_seq": {"anon": 6, "file": 7},
          "generations": [{"seq": q, "age_ms": 10 * q, "anon": q, "file": 0} for q in (5, 6, 7, 8)]}
    assert vmmod.lru_gen_seqs(format_lru_gen([st]), "/probe") == {"max_seq": 8, "min_seq": 6}
    pages = (np.random.default_rng(1).zipf(1.1, 30000) % 2000).astype(np.int64)
    m = model_run(pages, 2048, 300, "anon", "mglru-6.12")        # anon under a limit: it ages
    assert m["lru_gen"]["max_seq"] > 3 and m["lru_gen"]["max_seq"] - m["lru_gen"]["min_seq"] in (1, 2, 3)
    assert model_run(pages[:2000], 2048, 300, "pread", "classic")["lru_gen"] is None
    script = vi.init_script(vi.GuestPlan(limit_pages=2048))
    assert "mount -t debugfs none /sys/kernel/debug" in script
    assert "cat /sys/kernel/debug/lru_gen > /tmp/lru_gen" in script and "vmstat1 lru_gen reclaim numa_stat swapio0 swapio1 swaps nodes0 nodes1; do" in script
