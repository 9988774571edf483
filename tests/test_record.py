"""reclaim-ext record: the lackey, maps and strace parsers, classification, folding, one real
recording of /bin/true per mode when valgrind / strace are installed, and the sanity check against
the kernel (peak RSS, mincore)."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from reclaim_ext.record import FileIds, MapsTracker, StraceParser, classify, fold, parse_lackey, parse_maps
from reclaim_ext.record.classify import split_pages
from reclaim_ext.record.lackey import OP_I, OP_L, OP_M, OP_S, message_pid
from reclaim_ext.trace import RECORD_DTYPE, Kind, open_trace

# the start of `valgrind --tool=lackey --trace-mem=yes /bin/true` (valgrind 3.19), plus M lines
LACKEY = (b"==20466== Lackey, an example Valgrind tool\n"
          b"==20466== Command: /bin/true\n"
          b"==20466== \n"
          b"I  0401ab70,3\n"
          b"I  0401ab73,5\n"
          b" S 1fff000778,8\n"
          b"I  0401b770,1\n"
          b" L 04032e40,8\n"
          b" M 04032e58,8\n"
          b"I  0401b771,7\n")

MAPS = """\
04000000-04001000 r--p 00000000 fe:00 100 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
04001000-04027000 r-xp 00001000 fe:00 100 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
04031000-04033000 r--p 00030000 fe:00 100 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
04033000-04035000 rw-p 00032000 fe:00 100 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
04035000-04036000 rw-p 00000000 00:00 0
58000000-58200000 r-xp 00000000 fe:00 200 /usr/libexec/valgrind/lackey-amd64-linux
1ffeffd000-1fff001000 rw-p 00000000 00:00 0 [stack]
7fff00000000-7fff00001000 r-xp 00000000 00:00 0 [vdso]
"""


def test_lackey_lines():
    p = parse_lackey(LACKEY)
    assert p.op.tolist() == [OP_I, OP_I, OP_S, OP_I, OP_L, OP_M, OP_I]
    assert p.addr.tolist() == [0x0401AB70, 0x0401AB73, 0x1FFF000778, 0x0401B770, 0x04032E40, 0x04032E58, 0x0401B771]
    assert p.size.tolist() == [3, 5, 8, 1, 8, 8, 7]
    assert p.skipped == 3 and p.consumed == len(LACKEY)
    assert message_pid(LACKEY.split(b"\n")[0]) == 20466


def test_lackey_partial_line_and_garbage():
    buf = LACKEY + b" X 1234,8\n S zz12,8\nI  0401b7"
    p = parse_lackey(buf)
    assert len(p.op) == 7 and p.consumed == len(buf) - len(b"I  0401b7")
    rest = buf[p.consumed:] + b"78,7\n"  # the next chunk completes the line
    q = parse_lackey(rest)
    assert q.addr.tolist() == [0x0401B778] and q.op.tolist() == [OP_I]


def test_lackey_chunking_is_invariant():
    buf = LACKEY * 50
    whole = parse_lackey(buf)
    ops, off = [], 0
    for cut in range(37, len(buf) + 37, 37):
        p = parse_lackey(buf[off:cut])
        off += p.consumed
        ops.extend(p.addr.tolist())
    assert ops == whole.addr.tolist()


def test_maps_lookup_and_kinds():
    snap = parse_maps(MAPS)
    files = FileIds()
    addr = np.array([0x0401AB70, 0x04032E40, 0x04033010, 0x04035008, 0x1FFF000778, 0x58000100, 0x7FFF00000010,
                     0x90000000], dtype=np.uint64)
    op = np.array([OP_I, OP_L, OP_S, OP_L, OP_S, OP_L, OP_I, OP_L], dtype=np.uint8)
    idx = snap.lookup(addr)
    assert idx[-1] == -1
    rec, st = classify(op, addr, 3, snap, idx, files)
    assert st == {"unmapped": 1, "dropped": 2}  # vdso and valgrind's own binary dropped
    assert rec["kind"].tolist() == [Kind.FILE_EXEC, Kind.FILE_MMAP, Kind.ANON, Kind.ANON, Kind.ANON, Kind.ANON]
    assert rec["file"][:2].tolist() == [1, 1] and rec["file"][2:].tolist() == [0, 0, 0, 0]
    assert rec["page"][:2].tolist() == [0x1A, 0x31]  # page offset in the file: offset + (addr - start)
    assert rec["page"][2] == 0x04033010 >> 12 and rec["page"][4] == 0x1FFF000778 >> 12
    assert rec["write"].tolist() == [0, 0, 1, 0, 1, 0] and (rec["pid"] == 3).all()


def test_two_processes_share_file_pages():
    files = FileIds()
    other = MAPS.replace("04001000-04027000 r-xp", "05001000-05027000 r-xp")
    a = classify(np.array([OP_I], np.uint8), np.array([0x04002000], np.uint64), 0, parse_maps(MAPS),
                 parse_maps(MAPS).lookup(np.array([0x04002000], np.uint64)), files)[0]
    b_snap = parse_maps(other)
    b = classify(np.array([OP_I], np.uint8), np.array([0x05002000], np.uint64), 1, b_snap,
                 b_snap.lookup(np.array([0x05002000], np.uint64)), files)[0]
    assert (a["file"][0], a["page"][0]) == (b["file"][0], b["page"][0]) == (1, 2)


def test_maps_tracker_follows_changes():
    texts = [MAPS, MAPS + "90000000-90002000 r--s 00004000 fe:00 300 /data/db\n", ""]
    tracker = MapsTracker(1, period=1e9, reader=lambda: texts[0])
    addr = np.array([0x90001000], dtype=np.uint64)
    snap, idx = tracker.lookup(addr)
    assert idx[0] == -1  # not mapped yet (and a re-read shows nothing new)
    texts.pop(0)  # the process mmaps /data/db: a miss re-reads the maps
    snap, idx = tracker.lookup(addr)
    assert idx[0] >= 0 and snap.path[idx[0]] == "/data/db"
    rec, _ = classify(np.array([OP_L], np.uint8), addr, 0, snap, idx, FileIds())
    assert rec["kind"][0] == Kind.FILE_MMAP and rec["page"][0] == 5
    texts.pop(0)  # the process exits: its maps read empty; the last snapshot stays
    tracker.refresh()
    assert tracker.snap.lookup(addr)[0] >= 0


def test_page_crossing_access_touches_both_pages():
    op, addr = split_pages(np.array([OP_L, OP_S], np.uint8), np.array([0x1FFC, 0x3000], np.uint64),
                           np.array([8, 8], np.uint32))
    assert op.tolist() == [OP_L, OP_L, OP_S] and (addr >> np.uint64(12)).tolist() == [1, 2, 3]


def _recs(pages, kinds=None, writes=None, pid=0):
    r = np.zeros(len(pages), dtype=RECORD_DTYPE)
    r["page"], r["pid"] = pages, pid
    if kinds is not None:
        r["kind"] = kinds
    if writes is not None:
        r["write"] = writes
    return r


def test_fold_window():
    r = _recs([1, 2, 1, 2, 1, 3, 1], writes=[0, 0, 0, 0, 1, 0, 1])
    out, carry = fold(r, window=2)
    # page 1 read repeats within 2 are dropped; the first store to page 1 is kept; so is page 3
    assert out["page"].tolist() == [1, 2, 1, 3] and out["write"].tolist() == [0, 0, 1, 0]
    assert fold(r, window=0)[0].tolist() == r.tolist()
    # the carry continues the window across chunks
    out2, _ = fold(_recs([3, 1, 4]), window=2, carry=carry)
    assert out2["page"].tolist() == [1, 4]  # 3 repeats the carry; the read of 1 follows only a store to 1


def test_fold_keeps_other_kinds_and_processes():
    r = np.concatenate([_recs([5]), _recs([5], kinds=[Kind.FILE_EXEC]), _recs([5], pid=1), _recs([5])])
    assert len(fold(r, window=8)[0]) == 3


STRACE = """\
100 openat(AT_FDCWD</tmp>, "/etc/x", O_RDONLY|O_CLOEXEC) = 3</etc/x>
100 read(3</etc/x>, ""..., 832) = 832
100 read(3</etc/x>, ""..., 8192) = 8192
100 pread64(3</etc/x>, ""..., 784, 8192) = 784
100 lseek(3</etc/x>, 20000, SEEK_SET) = 20000
100 read(3</etc/x>,  <unfinished ...>
101 write(1</dev/pts/0>, ""..., 5) = 5
100 <... read resumed>""..., 100) = 100
101 openat(AT_FDCWD</tmp>, "/tmp/nope", O_RDONLY) = -1 ENOENT (No such file or directory)
101 pwrite64(4</tmp/out>, ""..., 4098, 4095) = 4098
101 writev(4</tmp/out>, [{iov_base=""..., iov_len=3}], 1) = 3
100 close(3</etc/x>) = 0
100 read(0<pipe:[123]>, ""..., 10) = 10
"""


def test_strace_lines():
    p = StraceParser()
    rec = p.feed(STRACE.splitlines(True))
    rows = [(int(r["pid"]), int(r["kind"]), int(r["write"]), int(r["file"]), int(r["page"])) for r in rec]
    fd = int(Kind.FILE_FD)
    assert rows == [
        (0, fd, 0, 1, 0),                                  # read 832 at 0
        (0, fd, 0, 1, 0), (0, fd, 0, 1, 1), (0, fd, 0, 1, 2),  # read 8192 at 832
        (0, fd, 0, 1, 2),                                  # pread64 784 at 8192
        (0, fd, 0, 1, 4),                                  # after lseek 20000: read 100 (joined unfinished)
        (1, fd, 1, 2, 0), (1, fd, 1, 2, 1), (1, fd, 1, 2, 2),  # pwrite64 4098 at 4095
        (1, fd, 1, 2, 0),                                  # writev 3 at position 0 (fd never seen opened)
    ]
    assert p.files.names == {1: "/etc/x", 2: "/tmp/out"}


@pytest.mark.skipif(shutil.which("valgrind") is None,
                    reason="needs valgrind (Debian package valgrind), which .ci/run's clean machine may lack")
def test_record_true_under_valgrind(tmp_path):
    """A real recording of sh running /bin/true twice (fork + exec, followed): anon, file and exec
    records of three processes, which share the exec pages of libc; the file reads back as native.
    Skipped without valgrind: CI's clean Debian machine (.ci/run) is not guaranteed to have it."""
    from reclaim_ext.record.runner import Recorder

    out = str(tmp_path / "true.rxt")
    rec = Recorder("mem")
    n = rec.record(out, ["sh", "-c", "/bin/true; /bin/true"])
    a = open_trace(out, "native").to_array()
    assert n == len(a) > 1000 and rec.exit_status == 0
    kinds = set(a["kind"].tolist())
    assert {Kind.ANON, Kind.FILE_MMAP, Kind.FILE_EXEC} <= kinds
    assert set(a["pid"].tolist()) == {0, 1, 2} and rec.stats["processes"] == 3
    libc = [k for k, v in rec.files.names.items() if v.endswith("/libc.so.6")][0]
    ex = a[(a["kind"] == Kind.FILE_EXEC) & (a["file"] == libc)]
    shared = set(ex[ex["pid"] == 1]["page"].tolist()) & set(ex[ex["pid"] == 2]["page"].tolist())
    assert len(shared) > 10
    assert rec.stats["unmapped"] < rec.stats["accesses"] // 100
    assert rec.stats["folded"] > 0


@pytest.mark.skipif(shutil.which("strace") is None,
                    reason="needs strace (Debian package strace), which .ci/run's clean machine may lack")
def test_record_syscalls_under_strace(tmp_path):
    from reclaim_ext.record.runner import Recorder

    src = tmp_path / "in.dat"
    src.write_bytes(b"x" * 10000)
    out = str(tmp_path / "cat.rxt")
    rec = Recorder("syscalls")
    # through a pipe: cat copies a file to a regular-file stdout with copy_file_range, not traced
    rec.record(out, ["sh", "-c", f"cat {src} | cat > /dev/null"])
    a = open_trace(out, "native").to_array()
    fid = [k for k, v in rec.files.names.items() if v == str(src)][0]
    mine = a[a["file"] == fid]
    assert (mine["kind"] == Kind.FILE_FD).all() and sorted(set(mine["page"].tolist())) == [0, 1, 2]


def _recording(tmp_path, script: str):
    """`reclaim-ext record` of `sh -c SCRIPT` in the background, once its trace has grown past
    100 KB (or after 60 s): (the process, the trace path)."""
    import os
    import subprocess
    import sys
    import time

    out = str(tmp_path / "loop.rxt")
    p = subprocess.Popen([sys.executable, "-m", "reclaim_ext", "record", "--out", out, "--", "sh", "-c", script],
                         stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not os.path.exists(out) or os.path.getsize(out) < 100_000):
        time.sleep(0.2)
    return p, out


@pytest.mark.skipif(shutil.which("valgrind") is None,
                    reason="needs valgrind (Debian package valgrind), which .ci/run's clean machine may lack")
def test_ctrl_c_keeps_a_valid_trace(tmp_path):
    """SIGINT to the recorder stops the program and leaves a native file of whole records."""
    import os
    import signal

    p, out = _recording(tmp_path, "while :; do :; done")
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert (os.path.getsize(out) - 16) % 16 == 0
    t = open_trace(out, "native")
    assert t.length > 1000 and b"interrupted" in err


def test_missing_tool_is_one_error_line(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from reclaim_ext.cli import main
    from reclaim_ext.record import runner

    monkeypatch.setattr(runner.shutil, "which", lambda name: None)
    for mode, package in (("mem", "valgrind"), ("syscalls", "strace")):
        r = CliRunner().invoke(main, ["record", "--mode", mode, "--out", str(tmp_path / "x.rxt"), "--", "true"])
        assert r.exit_code == 2
        lines = [ln for ln in r.output.splitlines() if ln.startswith("reclaim-ext: error:")]
        assert lines == [f"reclaim-ext: error: record: {package} is not installed "
                         f"(Debian: apt-get install -y {package})"], r.output
        assert not (tmp_path / "x.rxt").exists()


def test_recipes_prepare_their_input_and_command(tmp_path):
    from reclaim_ext.record.recipes import RECIPES, recipe_command
    from reclaim_ext.record.runner import RecordError

    for name in RECIPES:
        d = tmp_path / name
        d.mkdir()
        cmd = recipe_command(name, str(d))
        assert cmd and any(str(d) in a for a in cmd), name  # works on its own input
        assert list(d.iterdir()), name
    with pytest.raises(RecordError, match="unknown recipe"):
        recipe_command("nope", str(tmp_path))


def test_recipe_and_command_exclude_each_other():
    from conftest import invoke

    r = invoke("record", "--recipe", "xz", "--", "ls")
    assert r.exit_code == 2 and "not both" in r.stderr
    r = invoke("record")
    assert r.exit_code == 2 and "--recipe" in r.stderr


# -- the kernel sanity check (reclaim_ext.record.check)

def test_read_around_model():
    from reclaim_ext.record.check import read_around

    # a fault on page 10 reads pages 0..31 (16 before it, clipped at 0); 20 is then cached; 50 reads 34..65
    assert read_around(np.array([10, 20]), np.zeros(0, np.int64), 100, 32) == 32
    assert read_around(np.array([10, 20, 50]), np.zeros(0, np.int64), 100, 32) == 32 + 32
    # pages cached before are not counted, and the file's end clips the window
    assert read_around(np.array([91]), np.arange(0, 100, 2), 100, 32) == 13  # 75..99, the odd ones
    assert read_around(np.array([90]), np.arange(0, 100, 2), 100, 32) == 0   # a cached page: no read
    assert read_around(np.array([5]), np.arange(100), 100, 32) == 0


def test_fault_around_model():
    from reclaim_ext.record.check import fault_around

    key = (os.makedev(0xfe, 0), 7)
    # a 32-page mapping of the file from offset 0 at virtual page 16 (64 KiB aligned)
    snap = parse_maps("00010000-00030000 r-xp 00000000 fe:00 7 /usr/lib/x.so\n")
    assert fault_around(np.array([3]), key, snap, np.arange(64), 65536) == 16   # pages 0..15
    assert fault_around(np.array([3]), key, snap, np.arange(8), 65536) == 8     # only cached pages are mapped
    assert fault_around(np.array([3, 20]), key, snap, np.arange(64), 65536) == 32
    # the same mapping at virtual page 20: the aligned window 16..31 is clipped to the mapping's start
    snap = parse_maps("00014000-00034000 r-xp 00000000 fe:00 7 /usr/lib/x.so\n")
    assert fault_around(np.array([0]), key, snap, np.arange(64), 65536) == 12   # pages 0..11
    # a page outside every mapping of the file counts as itself; another file's mapping is ignored
    assert fault_around(np.array([40]), key, snap, np.arange(64), 65536) == 1
    assert fault_around(np.array([3]), (1, 2), snap, np.arange(64), 65536) == 1


def test_mincore_and_dontneed(tmp_path):
    from reclaim_ext.record.check import drop_cache, resident_pages

    f = tmp_path / "data"
    f.write_bytes(b"x" * (10 * 4096 + 1))
    with open(f, "rb+") as fh:
        os.fsync(fh.fileno())
    assert resident_pages(str(f)).tolist() == list(range(11))  # just written: all cached
    drop_cache(str(f))
    after = resident_pages(str(f))
    assert len(after) < 11 or _tmpfs(str(f))  # clean pages dropped (tmpfs keeps them: they are its storage)
    assert resident_pages(str(tmp_path / "nope")) is None
    (tmp_path / "empty").write_bytes(b"")
    assert len(resident_pages(str(tmp_path / "empty"))) == 0


def _tmpfs(path: str) -> bool:
    best, fs = "", ""
    with open("/proc/mounts") as fh:
        for line in fh:
            dev, mnt, typ = line.split()[:3]
            if path.startswith(mnt) and len(mnt) > len(best):
                best, fs = mnt, typ
    return fs == "tmpfs"


def test_run_native_measures_peak_rss_and_exit_status():
    import sys

    from reclaim_ext.record.check import run_native

    # 3000 pages of anonymous memory written, then freed before exit: the peak sees them, the exit does not
    # (held for 0.3 s: RssAnon is sampled every millisecond, a shorter peak could fall between samples)
    prog = ("import sys, time\nb = bytearray(3000 * 4096)\nfor i in range(0, len(b), 4096): b[i] = 1\n"
            "time.sleep(0.3)\ndel b\nsys.exit(3)")
    r = run_native([sys.executable, "-S", "-c", prog])
    assert r["exit_status"] == 3
    assert r["peak_pages"]["RssAnon"] >= 3000 and r["peak_pages"]["VmHWM"] >= 3000
    assert r["exit_pages"]["RssAnon"] < 3000 <= r["exit_pages"]["VmHWM"]
    assert r["exec_rss_pages"] > 0 and "python" in r["maps"]


@pytest.mark.skipif(shutil.which("valgrind") is None,
                    reason="needs valgrind (Debian package valgrind), which .ci/run's clean machine may lack")
def test_record_check_against_the_kernel(tmp_path):
    """`record --check` on `ls -l /` (about 5 s): the trace's anon pages match the kernel's peak
    RssAnon, and its file pages plus fault-around match RssFile, within the stated tolerance."""
    import json

    from conftest import invoke

    out = tmp_path / "ls.rxt"
    r = invoke("record", "--check", "--out", str(out), "--", "ls", "-l", "/")
    assert r.exit_code == 0, r.stderr
    assert "result: within the tolerance" in r.stderr
    res = json.loads((tmp_path / "ls.rxt.json").read_text())["check"]
    rows = {row["what"]: row for row in res["rows"]}
    assert res["ok"] and all(rows[k]["compared"] for k in ("anon", "file", "exec", "total"))
    assert 0.8 <= rows["anon"]["ratio"] <= 1.25
    # the kernel maps more file pages than the program touched (fault-around), and the model sees it
    assert rows["file"]["kernel"] > rows["file"]["trace"] and rows["file"]["model"] > rows["file"]["trace"]
    assert res["native"]["exit_status"] == 0 and res["page_cache_coverage"] > 0.8


def test_record_check_needs_the_memory_accesses():
    from conftest import invoke

    r = invoke("record", "--check", "--mode", "syscalls", "--", "true")
    assert r.exit_code == 2
    assert [ln for ln in r.stderr.splitlines() if ln.startswith("reclaim-ext: error:")] == \
        ["reclaim-ext: error: --check applies to --mode all or mem: it compares mapped and anonymous pages "
         "with the process's RSS (see `reclaim-ext record --help`)"], r.stderr


@pytest.mark.skipif(shutil.which("valgrind") is None,
                    reason="needs valgrind (Debian package valgrind), which .ci/run's clean machine may lack")
def test_fork_without_exec_is_recorded_as_the_parent_and_counted(tmp_path):
    """sh runs a subshell (fork, no exec) and then /bin/true (fork + exec). Valgrind gives the exec'd
    child a connection of its own, but keeps writing the forked child's accesses into its parent's:
    they are recorded under the parent's pid, and the recorder counts the child as forked without exec."""
    import json

    from conftest import invoke

    from reclaim_ext.record.runner import Recorder

    out = tmp_path / "fork.rxt"
    r = invoke("record", "--out", str(out), "--", "sh", "-c",
               "( i=0; while [ $i -lt 30 ]; do i=$((i+1)); done ); /bin/true")
    assert r.exit_code == 0, r.stderr
    assert "reclaim-ext: warning: record: 1 process(es) forked without exec" in r.stderr
    meta = json.loads((tmp_path / "fork.rxt.json").read_text())
    a = open_trace(str(out), "native").to_array()
    assert meta["exit_status"] == 0 and len(meta["pids"]) == 2  # sh and /bin/true; the subshell has no pid
    assert set(a["pid"].tolist()) == {0, 1} and meta["stats"]["processes"] == 2
    assert meta["stats"]["forked_without_exec"] == 1
    # without the subshell nothing is counted: every child exec'd and has a pid of its own
    rec = Recorder("mem")
    rec.record(str(tmp_path / "nofork.rxt"), ["sh", "-c", "/bin/true; /bin/true"])
    assert rec.stats["forked_without_exec"] == 0 and rec.stats["processes"] == 3 and len(rec.forked) == 2


@pytest.mark.skipif(shutil.which("valgrind") is None,
                    reason="needs valgrind (Debian package valgrind), which .ci/run's clean machine may lack")
def test_second_ctrl_c_kills_a_program_that_ignores_it(tmp_path):
    """A program that ignores SIGINT keeps running after the first Ctrl-C; the second stops the
    reading at once. The recorder kills the program before it closes the connection: valgrind would
    otherwise go on writing its lackey lines to stderr."""
    import re
    import signal
    import time

    p, out = _recording(tmp_path, "trap '' INT; while :; do :; done")
    p.send_signal(signal.SIGINT)
    time.sleep(1)
    assert p.poll() is None  # the program ignores it: still recording
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err[-2000:]
    assert not re.search(rb"^(I | [LSM]) [0-9a-f]+,\d+$", err, re.M), err[-2000:]
    assert open_trace(out, "native").length > 1000


def test_check_flags_a_trace_that_does_not_match(tmp_path):
    """A made-up trace of 50 anon pages against a program that writes 3000: outside the tolerance."""
    import sys

    from reclaim_ext.record.check import check, check_text
    from reclaim_ext.trace import write_native

    r = np.zeros(100, dtype=RECORD_DTYPE)
    r["kind"] = Kind.ANON
    r["page"] = np.tile(np.arange(50), 2)
    path = str(tmp_path / "made-up.rxt")
    write_native(path, r)
    prog = "import time\nb = bytearray(3000 * 4096)\nfor i in range(0, len(b), 4096): b[i] = 1\ntime.sleep(0.3)"
    res = check(path, {"files": {}, "pids": {"0": 1}, "exit_status": 0}, [sys.executable, "-S", "-c", prog])
    rows = {row["what"]: row for row in res["rows"]}
    assert rows["anon"]["trace"] == 50 and rows["anon"]["kernel"] >= 3000 and not rows["anon"]["ok"]
    assert not res["ok"] and "result: OUTSIDE the tolerance" in check_text(res)
    assert not rows["page cache"]["compared"]  # no file pages on either side


# valgrind 3.19's `--trace-syscalls=yes` lines (amd64), captured from a C program and `sh -c`
# under lackey (PATH stands for the data file's directory); lackey lines in between
VGSYS = """\
SYSCALL[30899,1](257) sys_openat ( 4294967196, 0x10a004(data.bin), 578, 420 ) --> [async] ... 
SYSCALL[30899,1](257) ... [async] --> Success(0x4) 
 S 1ffeffdf38,8
SYSCALL[30899,1](1) sys_write ( 4, 0x1ffeffdf40, 10000 ) --> [async] ... 
SYSCALL[30899,1](1) ... [async] --> Success(0x2710) 
I  0010919e,4
SYSCALL[30899,1](8) sys_lseek ( 4, 0, 0 )[sync] --> Success(0x0) 
SYSCALL[30899,1](0) sys_read ( 4, 0x1ffeffdf40, 5000 ) --> [async] ... 
SYSCALL[30899,1](0) ... [async] --> Success(0x1388) 
SYSCALL[30899,1](17) sys_pread64 ( 4, 0x1ffeffdf40, 100, 8192 ) --> [async] ... 
SYSCALL[30899,1](17) ... [async] --> Success(0x64) 
SYSCALL[30899,1](18) sys_pwrite64 ( 4, 0x1ffeffdf40, 100, 4096 ) --> [async] ... 
SYSCALL[30899,1](18) ... [async] --> Success(0x64) 
SYSCALL[30899,1](8) sys_lseek ( 4, 100, 0 )[sync] --> Success(0x64) 
SYSCALL[30899,1](20) sys_writev ( 4, 0x1ffeffdf20, 2 ) --> [async] ... 
SYSCALL[30899,1](20) ... [async] --> Success(0x1770) 
SYSCALL[30899,1](8) sys_lseek ( 4, 0, 0 )[sync] --> Success(0x0) 
SYSCALL[30899,1](19) sys_readv ( 4, 0x1ffeffdf20, 2 ) --> [async] ... 
SYSCALL[30899,1](19) ... [async] --> Success(0x1770) 
SYSCALL[30899,1](295) sys_preadv ( 4, 0x1ffeffdf20, 2, 10 ) --> [async] ... 
SYSCALL[30899,1](295) ... [async] --> Success(0x1770) 
SYSCALL[30899,1](327) sys_preadv2 ( 4, 0x1fff0005f0, 1, -1, 0 ) --> [async] ... 
SYSCALL[30899,1](327) ... [async] --> Success(0x32) 
SYSCALL[30899,1](32) sys_dup ( 4 )[sync] --> Success(0x5) 
SYSCALL[30899,1](0) sys_read ( 5, 0x1ffeffdf40, 10 ) --> [async] ... 
SYSCALL[30899,1](0) ... [async] --> Success(0xa) 
SYSCALL[30899,1](0) sys_read ( 99, 0x1ffeffdf40, 10 ) --> [async] ... 
SYSCALL[30899,1](0) ... [async] --> Failure(0x9) 
SYSCALL[30899,1](72) sys_fcntl[ARG3=='arg'] ( 4, 1030, 20 )[sync] --> Success(0x14) 
SYSCALL[30899,1](3) sys_close ( 5 )[sync] --> Success(0x0) 
SYSCALL[30899,1](3) sys_close ( 4 )[sync] --> Success(0x0) 
SYSCALL[30899,1](56) sys_clone ( 1200011, 0x0, 0x0, 0x4a28a10, 0x0 )   clone(fork): process 30899 created child 30900
 --> [pre-success] Success(0x7834)  --> [pre-success] Success(0x0)
SYSCALL[30899,1](61)  
SYSCALL[30900,1](273) sys_wait4 ( 30900, 0x0, 0, 0x0 ) --> [async] ... 
SYSCALL[30900,1](0) sys_read ( 20, 0x1fff000600, 4096 ) --> [async] ... 
SYSCALL[30900,1](0) ... [async] --> Success(0x1000) 
SYSCALL[30899,1](80) sys_chdir ( 0x10a00d(/) )[sync] --> Success(0x0) 
SYSCALL[30899,1](257) sys_openat ( 4294967196, 0x10a004(data.bin), 0 ) --> [async] ... 
SYSCALL[30899,1](257) ... [async] --> Failure(0x2) 
"""


def test_valgrind_syscall_lines(tmp_path):
    """Every form of valgrind's syscall lines: async pairs, [sync], the fd's file from a relative
    openat, the position (lseek, transfers, p* offsets, preadv2's -1), dup and F_DUPFD sharing the
    position, fork copying the fd table, a failure, a spliced line; each record at its result line."""
    from reclaim_ext.record.vgsys import VgSyscalls

    (tmp_path / "data.bin").write_bytes(b"x" * 10000)
    v = VgSyscalls()
    v.cwd[30899] = str(tmp_path)
    buf = VGSYS.encode()
    v.feed(buf)
    rec, at = v.take()
    rows = [(int(r["pid"]), int(r["write"]), int(r["page"])) for r in rec]
    assert (rec["kind"] == Kind.FILE_FD).all() and set(rec["file"].tolist()) == {1}
    assert v.files.names == {1: str(tmp_path / "data.bin")}
    assert rows == [
        (0, 1, 0), (0, 1, 1), (0, 1, 2),  # write 10000 at 0
        (0, 0, 0), (0, 0, 1),             # lseek 0, read 5000
        (0, 0, 2),                        # pread64 100 at 8192
        (0, 1, 1),                        # pwrite64 100 at 4096 (the position stays 5000)
        (0, 1, 0), (0, 1, 1),             # lseek 100, writev 6000
        (0, 0, 0), (0, 0, 1),             # lseek 0, readv 6000
        (0, 0, 0), (0, 0, 1),             # preadv 6000 at 10
        (0, 0, 1),                        # preadv2 50 at -1: the position, 6000
        (0, 0, 1),                        # read 10 on the dup: the shared position, 6050
        (1, 0, 1), (1, 0, 2),             # the child reads 4096 on the F_DUPFD copy: 6060 on
    ]
    lines = buf.splitlines(True)
    starts = np.cumsum([0] + [len(x) for x in lines])
    assert lines[int(np.searchsorted(starts, at[0]))].startswith(b"SYSCALL[30899,1](1) ... [async] --> Success")
    assert v.syscalls == 10 and v.unknown_fd == 0 and v.garbled == 0  # the read on fd 99 failed: not one
    # a line spliced from two processes' writes: its number is not its call's
    v.line("SYSCALL[30900,1](273) sys_close ( 20 )[sync] --> Success(0x0) ")
    assert v.garbled == 1 and v.fds.get(30900, 20) is not None
    assert v.cwd[30899] == "/" and v.cwd[30900] == str(tmp_path)


def test_valgrind_syscall_unknown_fd_and_the_parsers_share_rules():
    """A transfer on an fd never seen opened, of a process gone: skipped, counted. The strace and
    valgrind parsers give the same records for the same calls (fdio.py holds the rules)."""
    from reclaim_ext.record.vgsys import VgSyscalls

    v = VgSyscalls()
    v.line("SYSCALL[999999999,1](0) sys_read ( 7, 0x1fff000600, 10 )[sync] --> Success(0xa) ")
    assert len(v.take()[0]) == 0 and v.unknown_fd == 1
    s = StraceParser()
    a = s.feed(["100 openat(AT_FDCWD</>, \"/etc/passwd\", O_RDONLY) = 3</etc/passwd>",
                "100 read(3</etc/passwd>, \"\"..., 5000) = 5000",
                "100 preadv2(3</etc/passwd>, [{iov_base=\"\"..., iov_len=50}], 1, 9000, 0) = 50"])
    v = VgSyscalls()
    for line in ["SYSCALL[100,1](257) sys_openat ( 4294967196, 0x10a004(/etc/passwd), 0 )[sync] --> Success(0x3) ",
                 "SYSCALL[100,1](0) sys_read ( 3, 0x1ffeffdf40, 5000 )[sync] --> Success(0x1388) ",
                 "SYSCALL[100,1](327) sys_preadv2 ( 3, 0x1fff0005f0, 1, 9000, 0 )[sync] --> Success(0x32) "]:
        v.line(line)
    b = v.take()[0]
    assert a.tolist() == b.tolist() and a["page"].tolist() == [0, 1, 2]


@pytest.mark.skipif(shutil.which("valgrind") is None or shutil.which("gcc") is None,
                    reason="needs valgrind and gcc (Debian packages valgrind, gcc), which .ci/run's clean machine may lack")
def test_record_all_reads_and_maps_one_page(tmp_path):
    """Mode all: a program read()s a file, maps it and touches the page it read, then pread()s it
    again. The page is FILE_FD and FILE_MMAP with the same (file, page) key, in program order."""
    import subprocess

    from reclaim_ext.record.runner import Recorder

    src = tmp_path / "rm.c"
    src.write_text(r"""
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
static char buf[8192];
int main(void) {
    int fd = open("data.bin", O_RDONLY);
    if (fd < 0 || read(fd, buf, 8192) != 8192) return 1;
    volatile char *m = mmap(0, 16384, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) return 2;
    volatile unsigned long s = 0;
    s += m[4096 + 7];
    /* the mapping stays while the recorder reads the maps: a pause, not a busy loop, whose
       memory accesses it would have to parse first (that made the test depend on the load) */
    usleep(500000);
    if (pread(fd, buf, 100, 4096 + 50) != 100) return 3;
    return 0;
}
""")
    subprocess.run(["gcc", "-O0", "-o", str(tmp_path / "rm"), str(src)], check=True)
    (tmp_path / "data.bin").write_bytes(b"y" * 16384)
    out = str(tmp_path / "rm.rxt")
    rec = Recorder("all")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        rec.record(out, [str(tmp_path / "rm")])
    finally:
        os.chdir(cwd)
    assert rec.exit_status == 0
    a = open_trace(out, "native").to_array()
    fid = [k for k, v in rec.files.names.items() if v.endswith("data.bin")]
    assert len(fid) == 1, rec.files.names
    mine = a[a["file"] == fid[0]]
    seq = [(int(r["kind"]), int(r["page"])) for r in mine]
    fd, mm = int(Kind.FILE_FD), int(Kind.FILE_MMAP)
    assert seq == [(fd, 0), (fd, 1), (mm, 1), (fd, 1)], seq
    assert {Kind.ANON, Kind.FILE_EXEC} <= set(a["kind"].tolist())
    assert rec.stats["syscalls"] >= 2 and rec.stats["unknown_fd"] == 0
    # an fd inherited across exec (the shell's `<`): its file read from /proc/PID/fd at the start
    rec = Recorder("all")
    rec.record(str(tmp_path / "cat.rxt"), ["sh", "-c", f"cat < {tmp_path / 'data.bin'} > /dev/null"])
    a = open_trace(str(tmp_path / "cat.rxt"), "native").to_array()
    fid = [k for k, v in rec.files.names.items() if v.endswith("data.bin")]
    assert len(fid) == 1 and rec.stats["unknown_fd"] == 0, (rec.files.names, rec.stats)
    mine = a[a["file"] == fid[0]]
    assert (mine["kind"] == Kind.FILE_FD).all() and mine["page"].tolist() == [0, 1, 2, 3]
    assert set(mine["pid"].tolist()) == {1}  # cat, not sh


def test_strace_dup_and_fork_share_the_position():
    """strace's lines for dup, fcntl(F_DUPFD), dup2 and a fork (captured, `-f -y -s 0 -o`): the
    copies share the open file description's position, as in mode all (fdio.FdTable)."""
    lines = [
        '8400 openat(AT_FDCWD</tmp>, "/etc/passwd", O_RDONLY) = 3</etc/passwd>',
        "8400 dup(3</etc/passwd>)                = 4</etc/passwd>",
        '8400 read(3</etc/passwd>, ""..., 5000)  = 5000',
        '8400 read(4</etc/passwd>, ""..., 10)    = 10',
        "8400 fcntl(3</etc/passwd>, F_DUPFD_CLOEXEC, 20) = 20</etc/passwd>",
        "8400 dup2(3</etc/passwd>, 30)           = 30</etc/passwd>",
        "8400 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, "
        "child_tidptr=0x7fec0e24ca10) = 8415",
        '8415 read(30</etc/passwd>, ""..., 4000) = 4000',
        '8400 read(20</etc/passwd>, ""..., 10)   = 10',
        # a file unlinked while open (sqlite's temp files)
        '8400 openat(AT_FDCWD</tmp/ts>, "/var/tmp/etilqs_b7355116d4f6c82b", O_RDWR|O_CREAT|O_EXCL|O_NOFOLLOW|'
        'O_CLOEXEC, 0600) = 6</var/tmp/etilqs_b7355116d4f6c82b>',
        '8400 pwrite64(6</var/tmp/etilqs_b7355116d4f6c82b>(deleted), ""..., 4096, 8192) = 4096',
    ]
    p = StraceParser()
    rec = p.feed(lines)
    assert [(int(r["pid"]), int(r["page"])) for r in rec] == [(0, 0), (0, 1), (0, 1), (1, 1), (1, 2), (0, 2), (0, 2)]
    assert p.files.names[int(rec["file"][-1])] == "/var/tmp/etilqs_b7355116d4f6c82b" and rec["write"][-1] == 1
