"""reclaim-ext record: the lackey, maps and strace parsers, classification, folding, and one real
recording of /bin/true per mode when valgrind / strace are installed."""

from __future__ import annotations

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


@pytest.mark.skipif(shutil.which("valgrind") is None,
                    reason="needs valgrind (Debian package valgrind), which .ci/run's clean machine may lack")
def test_ctrl_c_keeps_a_valid_trace(tmp_path):
    """SIGINT to the recorder stops the program and leaves a native file of whole records."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = str(tmp_path / "loop.rxt")
    p = subprocess.Popen([sys.executable, "-m", "reclaim_ext", "record", "--out", out, "--",
                          "sh", "-c", "while :; do :; done"], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not os.path.exists(out) or os.path.getsize(out) < 100_000):
        time.sleep(0.2)
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
