"""Probe cgroup set-up and tear-down, host checks and the CLI's error lines, on a fake cgroup root
in tmp_path (no root needed)."""

import errno
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from reclaim_ext.cli import main
from reclaim_ext.trace import ArrayTrace, Kind
from reclaim_ext.trace.record import make_records
from reclaim_ext.validate import cgroup as cgmod
from reclaim_ext.validate import kernel as kmod
from reclaim_ext.validate import worker as wmod
from reclaim_ext.validate.cgroup import MemoryController, ProbeCgroup, find_memory_controller, stale_cgroups
from reclaim_ext.validate.errors import CgroupError, Unavailable


@pytest.fixture
def fake_rmdir(monkeypatch):
    """cgroupfs removes a cgroup with its control files; a plain directory needs rmtree."""
    calls = []

    def rm(path):
        calls.append(path)
        shutil.rmtree(path)

    monkeypatch.setattr(cgmod, "_rmdir", rm)
    return calls


def _mounts(tmp_path, lines):
    f = tmp_path / "mounts"
    f.write_text("".join(line + "\n" for line in lines))
    return str(f)


def test_v2_with_memory_is_preferred(tmp_path):
    v2 = tmp_path / "unified"
    v2.mkdir()
    (v2 / "cgroup.controllers").write_text("cpu io memory pids\n")
    m = _mounts(tmp_path, [f"cgroup {tmp_path}/mem cgroup rw,memory 0 0", f"cgroup2 {v2} cgroup2 rw 0 0"])
    assert find_memory_controller(m) == MemoryController(2, str(v2))


def test_v1_when_v2_has_no_memory_controller(tmp_path):
    v2 = tmp_path / "unified"
    v2.mkdir()
    (v2 / "cgroup.controllers").write_text("\n")
    m = _mounts(tmp_path, [f"cgroup2 {v2} cgroup2 rw 0 0", f"cgroup {tmp_path}/cpu cgroup rw,cpu 0 0",
                           f"cgroup {tmp_path}/mem cgroup rw,relatime,memory 0 0"])
    ctrl = find_memory_controller(m)
    assert ctrl == MemoryController(1, f"{tmp_path}/mem")
    assert (ctrl.limit_file, ctrl.usage_file) == ("memory.limit_in_bytes", "memory.usage_in_bytes")
    assert MemoryController(2, "/x").limit_file == "memory.max"


def test_no_memory_controller(tmp_path):
    m = _mounts(tmp_path, [f"cgroup {tmp_path}/cpu cgroup rw,cpu 0 0"])
    with pytest.raises(Unavailable, match="no memory cgroup controller"):
        find_memory_controller(m)


def test_not_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(Unavailable, match="needs root"):
        cgmod.check_host()


def test_create_sets_the_limit_and_remove_deletes(tmp_path, fake_rmdir):
    ctrl = MemoryController(1, str(tmp_path))
    with ProbeCgroup(ctrl, 1000, name="probe") as cg:
        assert (tmp_path / "probe" / "memory.limit_in_bytes").read_text() == str(1000 * 4096)
        assert cg.created
    assert not (tmp_path / "probe").exists()
    assert fake_rmdir == [str(tmp_path / "probe")]


def test_v2_enables_and_restores_the_memory_controller(tmp_path, fake_rmdir):
    (tmp_path / "cgroup.subtree_control").write_text("cpu\n")
    ctrl = MemoryController(2, str(tmp_path))
    with ProbeCgroup(ctrl, 100, name="probe"):
        assert (tmp_path / "cgroup.subtree_control").read_text() == "+memory"
        assert (tmp_path / "probe" / "memory.max").read_text() == str(100 * 4096)
    assert (tmp_path / "cgroup.subtree_control").read_text() == "-memory"


def test_removed_on_an_exception_and_on_ctrl_c(tmp_path, fake_rmdir):
    ctrl = MemoryController(1, str(tmp_path))
    for exc in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with ProbeCgroup(ctrl, 100, name="probe"):
                raise exc
        assert not (tmp_path / "probe").exists()


def test_missing_parent(tmp_path):
    cg = ProbeCgroup(MemoryController(1, str(tmp_path / "nope")), 100, name="probe")
    with pytest.raises(CgroupError, match="does not exist"):
        cg.create()


def test_existing_cgroup_is_not_taken_over(tmp_path, fake_rmdir):
    (tmp_path / "probe").mkdir()
    with pytest.raises(CgroupError, match="cannot create cgroup"):
        ProbeCgroup(MemoryController(1, str(tmp_path)), 100, name="probe").create()
    assert (tmp_path / "probe").exists() and fake_rmdir == []   # not ours: left alone


def test_limit_write_failure_removes_the_cgroup(tmp_path, fake_rmdir, monkeypatch):
    real_write = cgmod._write

    def write(path, text):
        if path.endswith("memory.limit_in_bytes"):
            raise OSError(errno.EINVAL, "Invalid argument")
        real_write(path, text)

    monkeypatch.setattr(cgmod, "_write", write)
    with pytest.raises(CgroupError, match="cannot set the limit.*Invalid argument"):
        ProbeCgroup(MemoryController(1, str(tmp_path)), 100, name="probe").create()
    assert not (tmp_path / "probe").exists()


def test_limit_read_back_mismatch_removes_the_cgroup(tmp_path, fake_rmdir, monkeypatch):
    real_read = cgmod._read
    monkeypatch.setattr(cgmod, "_read", lambda p: "4096\n" if p.endswith("limit_in_bytes") else real_read(p))
    with pytest.raises(CgroupError, match="reads 4096 after writing 409600"):
        ProbeCgroup(MemoryController(1, str(tmp_path)), 100, name="probe").create()
    assert not (tmp_path / "probe").exists()


def test_busy_cgroup_is_retried(tmp_path, monkeypatch):
    tries = []

    def rm(path):
        tries.append(path)
        if len(tries) < 3:
            raise OSError(errno.EBUSY, "Device or resource busy")
        shutil.rmtree(path)

    monkeypatch.setattr(cgmod, "_rmdir", rm)
    with ProbeCgroup(MemoryController(1, str(tmp_path)), 100, name="probe"):
        pass
    assert len(tries) == 3 and not (tmp_path / "probe").exists()


def test_stuck_cgroup_is_an_error_naming_it(tmp_path, monkeypatch):
    def rm(path):
        raise OSError(errno.EBUSY, "Device or resource busy")

    monkeypatch.setattr(cgmod, "_rmdir", rm)
    cg = ProbeCgroup(MemoryController(1, str(tmp_path)), 100, name="probe").create()
    with pytest.raises(CgroupError, match=f"rmdir {tmp_path}/probe"):
        cg.remove(timeout=0.1)


def test_foreign_processes_are_moved_to_the_parent(tmp_path, fake_rmdir):
    (tmp_path / "cgroup.procs").write_text("")
    cg = ProbeCgroup(MemoryController(1, str(tmp_path)), 100, name="probe").create()
    (tmp_path / "probe" / "cgroup.procs").write_text("4242\n")
    cg.remove()
    assert (tmp_path / "cgroup.procs").read_text() == "4242"


def test_stale_cgroups_of_dead_runs(tmp_path):
    (tmp_path / f"{cgmod.NAME_PREFIX}{os.getpid()}-1").mkdir()       # alive: ours right now
    (tmp_path / f"{cgmod.NAME_PREFIX}999999999-1").mkdir()          # no such process
    (tmp_path / "someone-else").mkdir()
    assert stale_cgroups(MemoryController(1, str(tmp_path))) == [str(tmp_path / f"{cgmod.NAME_PREFIX}999999999-1")]


def test_read_ahead_is_restored_after_an_error(tmp_path):
    ra = tmp_path / "read_ahead_kb"
    ra.write_text("8192\n")
    with pytest.raises(RuntimeError):
        with kmod.read_ahead_zero(str(ra)):
            assert ra.read_text() == "0"
            raise RuntimeError
    assert ra.read_text() == "8192"


def test_no_compiler(monkeypatch):
    monkeypatch.setenv("CC", "no-such-compiler-xyz")
    with pytest.raises(Unavailable, match="no C compiler"):
        wmod.find_compiler()


def test_worker_output_parsing():
    out = wmod.parse_worker_output("accesses 3\nmisses 2\nbad 0\nseconds 0.5\nresident_end 2\n"
                                   "samples 0:0:8192 1000:5:40960\nbitmap 05\n")
    assert out["samples"] == [(0, 0, 8192), (1000, 5, 40960)]
    assert (out["misses"], out["seconds"], out["bitmap"]) == (2, 0.5, b"\x05")
    with pytest.raises(RuntimeError, match="misses"):
        wmod.parse_worker_output("accesses 3\n")


def test_dense_remapping():
    r = make_records(6)
    r["kind"] = [Kind.FILE_FD, Kind.FILE_FD, Kind.ANON, Kind.FILE_MMAP, Kind.ANON, Kind.FILE_FD]
    r["file"] = [2, 1, 0, 1, 0, 2]
    r["pid"] = [0, 0, 3, 0, 4, 0]
    r["page"] = [7, 100, 7, 100, 7, 7]
    pages, n = kmod.dense_pages(ArrayTrace("t", r))
    # keys sorted: file 1 page 100, file 2 page 7, anon pid 3, anon pid 4
    assert n == 4 and pages.tolist() == [1, 0, 2, 0, 3, 1] and pages.dtype == np.uint32
    assert kmod.dense_pages(ArrayTrace("t", r), max_accesses=2)[0].tolist() == [1, 0]


def test_cli_unavailable_is_one_line_exit_4(monkeypatch):
    def unavailable():
        raise Unavailable("the kernel replay needs root (it creates a memory cgroup); run it as root")

    monkeypatch.setattr(kmod, "check_host", unavailable)
    r = CliRunner().invoke(main, ["validate", "kernel", "-p", "pages=100", "-p", "accesses=1000"])
    assert r.exit_code == 4
    assert r.output.strip() == ("reclaim-ext: error: the kernel replay needs root (it creates a memory cgroup); "
                                "run it as root")


def test_cli_bad_workload_parameter():
    r = CliRunner().invoke(main, ["validate", "kernel", "-p", "nope=1"])
    assert r.exit_code == 2 and "nope" in r.output and len(r.output.strip().splitlines()) == 1
