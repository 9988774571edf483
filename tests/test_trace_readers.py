"""Trace readers: the shared real traces, streaming, the native round trip and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from reclaim_ext.errors import TraceError
from reclaim_ext.trace import FORMATS, RECORD_DTYPE, ArrayTrace, Kind, make_workload, open_trace, write_native
from reclaim_ext.trace.readers import NATIVE_MAGIC, ORACLE_DTYPE, VSCSI1_DTYPE, VSCSI2_DTYPE

SHARED = Path(__file__).parents[2] / "shared" / "traces"
CP_REQUESTS = 113_872  # README: cloudPhysicsIO, all three forms
TWITTER_REQUESTS = 1_000_000
CP_CSV_PAGES = dict(offset_col="lbn", size_col="size", offset_unit=512, op_col="op", op_codes="scsi")


def shared(name: str) -> Path:
    p = SHARED / name
    if not p.is_file():
        pytest.fail(f"shared trace {p} is missing: the tests expect shared/traces beside the repository checkout")
    return p


@pytest.fixture(scope="module")
def oracle():
    return open_trace(shared("cloudPhysicsIO.oracleGeneral.bin"), "oraclegeneral")


@pytest.fixture(scope="module")
def vscsi():
    return open_trace(shared("cloudPhysicsIO.vscsi"), "vscsi")


@pytest.fixture(scope="module")
def twitter():
    return open_trace(shared("twitter_cluster52.csv.zst"), "csv")


def raises(path, *words):
    """pytest.raises for a TraceError naming `path`, whose problem contains every word."""

    class _Check:
        def __enter__(self):
            self.ctx = pytest.raises(TraceError)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            handled = self.ctx.__exit__(*exc)
            err = self.info.value
            assert err.source == str(path) and str(err).startswith(f"{path}: ")
            for w in words:
                assert w in err.problem, (w, err.problem)
            return handled

    return _Check()


def chunked(trace, chunk):
    parts = list(trace.chunks(chunk))
    assert all(0 < len(p) <= chunk for p in parts)
    assert all(p.dtype == RECORD_DTYPE for p in parts)
    return np.concatenate(parts) if parts else np.zeros(0, RECORD_DTYPE)


def write_oracle(path, ids, sizes=None, nxt=None):
    rec = np.zeros(len(ids), dtype=ORACLE_DTYPE)
    rec["obj_id"] = ids
    rec["obj_size"] = 1 if sizes is None else sizes
    rec["next_access_vtime"] = -1 if nxt is None else nxt
    Path(path).write_bytes(rec.tobytes())
    return rec


def zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


# ============================================================ the shared real traces


def test_oraclegeneral_shared(oracle):
    assert oracle.length == CP_REQUESTS
    a = oracle.to_array()
    assert len(a) == CP_REQUESTS
    assert (a["kind"] == Kind.FILE_FD).all() and (a["write"] == 0).all()
    assert (a["file"] == 0).all() and (a["pid"] == 0).all()
    raw = np.fromfile(shared("cloudPhysicsIO.oracleGeneral.bin"), dtype=ORACLE_DTYPE)
    assert np.array_equal(a["page"], raw["obj_id"])
    assert np.array_equal(chunked(oracle, 10_000), a)


def test_oraclegeneral_matches_libcachesim(oracle):
    lcs = pytest.importorskip("libcachesim")
    reader = lcs.TraceReader(
        str(shared("cloudPhysicsIO.oracleGeneral.bin")),
        lcs.TraceType.ORACLE_GENERAL_TRACE,
        lcs.ReaderInitParam(ignore_obj_size=True),
    )
    ids = np.fromiter((req.obj_id for req in reader), dtype=np.uint64)
    assert np.array_equal(ids, oracle.to_array()["page"])


def test_vscsi_shared(vscsi, oracle):
    assert vscsi.params["version"] == 1
    a = vscsi.to_array()
    assert len(a) == vscsi.length >= CP_REQUESTS  # one record per 4 KiB page of each request
    assert (a["kind"] == Kind.FILE_FD).all() and (a["file"] == 0).all()
    raw = np.fromfile(shared("cloudPhysicsIO.vscsi"), dtype=VSCSI1_DTYPE)
    assert len(raw) == CP_REQUESTS
    # the first record of each request is the page of its first sector; the lbns are the oracle ids
    assert np.array_equal(raw["lbn"], oracle.to_array()["page"])
    first = raw["lbn"] * 512 // 4096
    npages = (raw["lbn"] * 512 + raw["len"] - 1) // 4096 - first + 1
    starts = np.concatenate([[0], np.cumsum(npages)[:-1]]).astype(np.int64)
    assert np.array_equal(a["page"][starts], first)
    assert np.array_equal(a["write"][starts], (raw["cmd"] == 0x2A).astype(np.uint8))
    assert 0.5 < a["write"].mean() < 0.7  # 66,898 write requests of 113,872
    assert np.array_equal(chunked(vscsi, 7777), a)


def test_vscsi_matches_libcachesim(vscsi):
    lcs = pytest.importorskip("libcachesim")
    reader = lcs.TraceReader(str(shared("cloudPhysicsIO.vscsi")), lcs.TraceType.VSCSI_TRACE)
    reqs = np.array([(r.obj_id, r.obj_size, r.op == lcs.ReqOp.OP_WRITE) for r in reader], dtype=np.uint64)
    lbn, length, write = reqs[:, 0], reqs[:, 1], reqs[:, 2]
    assert len(lbn) == CP_REQUESTS
    first = lbn * 512 // 4096
    count = ((lbn * 512 + length - 1) // 4096 - first + 1).astype(np.int64)
    rep = np.repeat(np.arange(len(lbn)), count)
    within = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    a = vscsi.to_array()
    assert np.array_equal(a["page"], first[rep] + within.astype(np.uint64))
    assert np.array_equal(a["write"], write[rep].astype(np.uint8))


def test_csv_cloudphysics_ids(oracle):
    t = open_trace(shared("cloudPhysicsIO.csv"), "csv")  # header names the id column: lbn
    assert t.params["header"] and t.params["id_col"] == 5
    a = t.to_array()
    assert len(a) == CP_REQUESTS
    assert np.array_equal(a["page"], oracle.to_array()["page"])
    w = open_trace(shared("cloudPhysicsIO.csv"), "csv", op_col="op", op_codes="scsi").to_array()
    assert int(w["write"].sum()) == 66_898


def test_csv_cloudphysics_pages_equal_vscsi(vscsi):
    t = open_trace(shared("cloudPhysicsIO.csv"), "csv", **CP_CSV_PAGES)
    a = chunked(t, 50_000)
    assert np.array_equal(a, vscsi.to_array())


def test_csv_twitter(twitter):
    assert twitter.params["id_col"] == 2 and twitter.params["header"]
    a = twitter.to_array()
    assert len(a) == TWITTER_REQUESTS
    assert (a["kind"] == Kind.FILE_FD).all() and (a["write"] == 0).all()
    # independent parse of the first lines
    with open(shared("twitter_cluster52.csv.zst"), "rb") as f:
        text = zstandard.ZstdDecompressor().stream_reader(f).read(4 << 20).decode()
    lines = text.split("\n")[1:-1]
    ids = np.array([int(line.split(",")[1]) for line in lines], dtype=np.uint64)
    assert np.array_equal(a["page"][: len(ids)], ids)
    assert a["page"].max() > 2**63  # 20-digit u64 ids survive


def test_twitter_chunked_equals_whole(twitter):
    assert np.array_equal(chunked(twitter, 300_001), twitter.to_array())


def test_twitter_hashed_ids(twitter):
    h = open_trace(shared("twitter_cluster52.csv.zst"), "csv", id_col=2, id_is_num=False).to_array()
    a = twitter.to_array()
    assert len(h) == len(a)
    # hashing is injective here: the same ids map to the same pages, distinct to distinct
    order = np.argsort(a["page"], kind="stable")
    sa, sh = a["page"][order], h["page"][order]
    assert np.array_equal(sa[1:] != sa[:-1], sh[1:] != sh[:-1])  # same groups of equal ids
    assert len(np.unique(sh)) == len(np.unique(sa))


# ============================================================ native


def test_native_round_trip(tmp_path):
    t = make_workload("mixed", seed=3, accesses=50_000)
    p = tmp_path / "mixed.rxt"
    assert write_native(p, t) == 50_000
    raw = p.read_bytes()
    assert raw[:8] == NATIVE_MAGIC and len(raw) == 16 + 50_000 * 16
    assert np.frombuffer(raw[8:16], "<u4").tolist() == [1, 16]
    back = open_trace(p, "native")
    assert back.length == 50_000
    assert np.array_equal(back.to_array(), t.to_array())
    assert np.array_equal(chunked(back, 999), t.to_array())
    # from an array, and compressed
    pz = tmp_path / "mixed.rxt.zst"
    write_native(pz, t.to_array())
    assert pz.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    bz = open_trace(pz, "native")
    assert bz.length is None and np.array_equal(bz.to_array(), t.to_array())


def test_native_of_reader_output(tmp_path, oracle):
    p = tmp_path / "cp.rxt"
    write_native(p, oracle)
    assert np.array_equal(open_trace(p, "native").to_array(), oracle.to_array())


def test_native_empty_trace_is_refused(tmp_path):
    p = tmp_path / "none.rxt"
    assert write_native(p, ArrayTrace("none", np.zeros(0, RECORD_DTYPE))) == 0
    with raises(p, "holds no records"):  # a header only: nothing to replay (issue 16)
        open_trace(p, "native")
    z = tmp_path / "none.rxt.zst"
    z.write_bytes(zstandard.ZstdCompressor().compress(p.read_bytes()))
    with raises(z, "holds no records"):
        open_trace(z, "native")


def test_write_native_rejects_bad_records(tmp_path):
    rec = np.zeros(3, RECORD_DTYPE)
    rec["kind"][1] = 9
    p = tmp_path / "bad.rxt"
    with raises(p, "record 1", "kind 9"):
        write_native(p, rec)
    assert not p.exists()
    with raises(p, "RECORD_DTYPE"):
        write_native(p, np.zeros(3, dtype=np.uint64))


# ============================================================ compressed input and streaming


def test_zstd_oraclegeneral_equals_plain(tmp_path, oracle):
    data = shared("cloudPhysicsIO.oracleGeneral.bin").read_bytes()
    p = tmp_path / "cp.oracleGeneral.bin.zst"
    p.write_bytes(zst(data[: 24 * 50_000]) + zst(data[24 * 50_000 :]))  # two frames
    t = open_trace(p, "oraclegeneral")
    assert t.length is None
    assert np.array_equal(chunked(t, 4096), oracle.to_array())
    # compression is detected by the magic bytes, whatever the name
    q = tmp_path / "noext"
    q.write_bytes(zst(data))
    assert np.array_equal(open_trace(q, "oraclegeneral").to_array(), oracle.to_array())


def test_zstd_vscsi(tmp_path, vscsi):
    p = tmp_path / "cp.vscsi.zst"
    p.write_bytes(zst(shared("cloudPhysicsIO.vscsi").read_bytes()))
    assert np.array_equal(open_trace(p, "vscsi").to_array(), vscsi.to_array())


def test_replay_is_repeatable(oracle):
    assert np.array_equal(oracle.to_array(), oracle.to_array())


def test_vscsi_v2_and_page_split(tmp_path):
    rec = np.zeros(4, dtype=VSCSI2_DTYPE)
    rec["ver"] = 2 << 8
    rec["cmd"] = [0x28, 0x2A, 0x35, 0x8A]  # read, write, SYNCHRONIZE CACHE (skipped), write(16)
    rec["lbn"] = [7, 16, 0, 1]  # byte offsets 3584, 8192, 0, 512
    rec["len"] = [1024, 8192, 0, 4096]
    p = tmp_path / "v2.vscsi"
    p.write_bytes(rec.tobytes())
    t = open_trace(p, "vscsi")
    assert t.params["version"] == 2 and t.length == 6
    a = t.to_array()
    # [3584, 4608) -> pages 0, 1; [8192, 16384) -> 2, 3; [512, 4608) -> 0, 1
    assert a["page"].tolist() == [0, 1, 2, 3, 0, 1]
    assert a["write"].tolist() == [0, 0, 1, 1, 1, 1]


def test_vscsi_huge_request_streams_in_bounded_chunks(tmp_path):
    rec = np.zeros(3, dtype=VSCSI1_DTYPE)
    rec["ver"] = 1 << 8
    rec["cmd"] = 0x28
    rec["len"] = [1 << 30, 4096, 0]  # 1 GiB = 262144 pages; 1 page; none
    rec["lbn"] = [0, 8, 0]
    p = tmp_path / "big.vscsi"
    p.write_bytes(rec.tobytes())
    t = open_trace(p, "vscsi")
    assert t.length == 262_145
    sizes = [len(c) for c in t.chunks(65536)]
    assert max(sizes) == 65536 and sum(sizes) == 262_145


# ============================================================ csv variants


def write_text(tmp_path, name, text):
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def pages(trace):
    return trace.to_array()["page"].tolist()


def test_csv_no_header(tmp_path):
    p = write_text(tmp_path, "a.csv", "5,10\n6,11\n7,12\n")
    assert pages(open_trace(p, "csv", id_col=2)) == [10, 11, 12]
    assert open_trace(p, "csv", id_col=2).params["header"] is False


def test_csv_op_column_and_words(tmp_path):
    p = write_text(tmp_path, "ops.csv", "id,op\n1,read\n2,WRITE\n3,r\n4,w\n5,0\n6,1\n7,get\n8,set\n")
    a = open_trace(p, "csv", op_col="op").to_array()
    assert a["page"].tolist() == list(range(1, 9))
    assert a["write"].tolist() == [0, 1, 0, 1, 0, 1, 0, 1]


def test_csv_formatting_variants(tmp_path):
    text = '# time, object\n1, 10\r\n\n# a comment\n2,"11"\r\n3 ,\t12 \n4,13'
    p = write_text(tmp_path, "v.csv", text)
    assert pages(open_trace(p, "csv")) == [10, 11, 12, 13]
    q = write_text(tmp_path, "q.csv", 'key,x\n"a,b",1\nc,2\n"a,b",3\n')
    h = pages(open_trace(q, "csv", id_is_num=False))
    assert h[0] == h[2] != h[1]
    t = write_text(tmp_path, "t.tsv", "1\t100\n2\t200\n")
    assert pages(open_trace(t, "csv", id_col=2, delimiter="\t")) == [100, 200]


def test_csv_hash_is_deterministic(tmp_path):
    p = write_text(tmp_path, "s.csv", "k\nalpha\nbeta\nalpha\n")
    a = pages(open_trace(p, "csv", id_col=1, header=True, id_is_num=False))
    b = pages(open_trace(p, "csv", id_col="k", header=True, id_is_num=False))
    assert a == b and a[0] == a[2] != a[1]
    assert a[0] == fnv1a64(b"alpha") and a[1] == fnv1a64(b"beta")


def fnv1a64(data: bytes) -> int:
    """Reference 64-bit FNV-1a (the documented string-id hash)."""
    h = 0xCBF29CE484222325
    for c in data:
        h = ((h ^ c) * 0x100000001B3) & (2**64 - 1)
    return h


def test_csv_header_auto_detection(tmp_path):
    p = write_text(tmp_path, "h.csv", "time,obj_id\n0,1\n0,2\n")
    assert pages(open_trace(p, "csv")) == [1, 2]
    p = write_text(tmp_path, "h2.csv", "obj_id\n\n# note\n5\n")
    assert pages(open_trace(p, "csv")) == [5]
    # string ids on every line: no header detected, the first line is data
    q = write_text(tmp_path, "s.csv", "apple\npear\n")
    assert len(pages(open_trace(q, "csv", id_col=1, id_is_num=False))) == 2
    # forced
    r = write_text(tmp_path, "f.csv", "7\n8\n9\n")
    assert pages(open_trace(r, "csv", id_col=1, header=True)) == [8, 9]
    assert pages(open_trace(r, "csv", id_col=1, header="auto")) == [7, 8, 9]


def test_csv_offset_size_pages(tmp_path):
    p = write_text(tmp_path, "o.csv", "off,len,op\n0,4096,w\n4000,200,r\n8192,0,r\n12288,8193,r\n")
    a = open_trace(p, "csv", offset_col=1, size_col="len", op_col=3).to_array()
    assert a["page"].tolist() == [0, 0, 1, 3, 4, 5]
    assert a["write"].tolist() == [1, 0, 0, 0, 0, 0]


def test_csv_streams_across_blocks(tmp_path):
    ids = np.arange(300_000, dtype=np.uint64) * 7919
    text = "id\n" + "\n".join(map(str, ids.tolist())) + "\n"
    p = write_text(tmp_path, "big.csv", text)  # > 1 block of CSV_BLOCK bytes
    t = open_trace(p, "csv")
    assert np.array_equal(t.to_array()["page"], ids)
    assert np.array_equal(chunked(t, 12345)["page"], ids)
    z = write_text(tmp_path, "big.csv.zst", zst(text.encode()))
    assert np.array_equal(open_trace(z, "csv").to_array()["page"], ids)


# ============================================================ bad input


def test_unknown_format(tmp_path):
    p = write_text(tmp_path, "x", "1\n")
    with raises(p, "unknown trace format 'parquet'", *FORMATS):
        open_trace(p, "parquet")


def test_unknown_option(tmp_path, oracle):
    with raises(oracle.path, "unknown option 'id_col'"):
        open_trace(oracle.path, "oraclegeneral", id_col=1)


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_and_empty_and_directory(tmp_path, fmt):
    missing = tmp_path / "nope.bin"
    with raises(missing, "no such file"):
        open_trace(missing, fmt)
    empty = write_text(tmp_path, "empty.bin", b"")
    with raises(empty, "empty file"):
        open_trace(empty, fmt)
    with raises(tmp_path, "directory"):
        open_trace(tmp_path, fmt)


def test_unreadable(tmp_path, monkeypatch):
    from reclaim_ext.trace import readers

    p = write_text(tmp_path, "locked.bin", b"\0" * 24)

    def denied(path, mode="r", *a, **k):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(readers, "open", denied, raising=False)  # works even when run as root
    with raises(p, "permission denied"):
        open_trace(p, "oraclegeneral")


@settings(max_examples=60, deadline=None)
@given(
    ids=st.lists(st.integers(min_value=0, max_value=2**64 - 1), min_size=1, max_size=40),
    pad=st.sampled_from(["", " ", "\t", "  "]),
    crlf=st.booleans(),
)
def test_csv_numeric_parse_property(tmp_path_factory, ids, pad, crlf):
    eol = "\r\n" if crlf else "\n"
    text = "t,id" + eol + "".join(f"{i},{pad}{v}{pad}{eol}" for i, v in enumerate(ids))
    p = tmp_path_factory.mktemp("prop") / "p.csv"
    p.write_text(text, newline="")
    assert pages(open_trace(p, "csv")) == ids


def test_oraclegeneral_truncated(tmp_path):
    p = tmp_path / "t.bin"
    write_oracle(p, [1, 2, 3])
    with open(p, "ab") as f:
        f.write(b"\1" * 10)
    with raises(p, "truncated record", "10 trailing bytes", "3 whole records"):
        open_trace(p, "oraclegeneral")


def test_oraclegeneral_truncated_zstd(tmp_path):
    rec = np.zeros(100_000, ORACLE_DTYPE)
    rec["obj_size"] = 1
    data = rec.tobytes()
    p = write_text(tmp_path, "odd.bin.zst", zst(data + b"\0" * 5))
    t = open_trace(p, "oraclegeneral")  # the first block is not the end: found while streaming
    with raises(p, "truncated record", "5 bytes into record 100000"):
        t.to_array()
    small = write_text(tmp_path, "small.bin.zst", zst(data[:2400] + b"\0" * 5))
    with raises(small, "truncated record", "5 bytes into record 100"):  # within the first block
        open_trace(small, "oraclegeneral")
    q = write_text(tmp_path, "cut.bin.zst", zst(np.arange(200_000).tobytes())[:-100])
    with raises(q, "truncated zstd data"):
        open_trace(q, "oraclegeneral").to_array()


def test_zstd_corrupt(tmp_path):
    good = zst(np.arange(100_000, dtype=np.uint64).tobytes() * 3)
    bad = bytearray(good)
    for i in range(20, len(bad), 97):
        bad[i] ^= 0x5A
    p = write_text(tmp_path, "bad.bin.zst", bytes(bad))
    with raises(p, "corrupt zstd data"):
        open_trace(p, "oraclegeneral").to_array()


def test_zst_suffix_without_magic(tmp_path):
    p = tmp_path / "plain.bin.zst"
    write_oracle(p, [1, 2])
    with raises(p, ".zst suffix", "magic"):
        open_trace(p, "oraclegeneral")


def test_oraclegeneral_values(tmp_path):
    p = tmp_path / "z.bin"
    write_oracle(p, [1, 2, 3, 4], sizes=[1, 0, 5, 0])
    t = open_trace(p, "oraclegeneral")
    assert t.length == 2 and pages(t) == [1, 3]  # size-0 requests skipped, as libCacheSim does
    assert pages(open_trace(p, "oraclegeneral", zero_size="keep")) == [1, 2, 3, 4]
    with raises(p, "record 1", "obj_size is 0"):
        open_trace(p, "oraclegeneral", zero_size="error")
    with raises(p, "zero_size must be"):
        open_trace(p, "oraclegeneral", zero_size="drop")
    q = tmp_path / "n.bin"
    write_oracle(q, [1, 2, 3], nxt=[-1, -5, 2])
    with raises(q, "record 1 (byte offset 24)", "next_access_vtime -5"):
        open_trace(q, "oraclegeneral")
    r = tmp_path / "allzero.bin"
    write_oracle(r, [1, 2], sizes=[0, 0])
    with raises(r, "no requests"):
        open_trace(r, "oraclegeneral")


def vscsi1(n, **fields):
    rec = np.zeros(n, dtype=VSCSI1_DTYPE)
    rec["ver"] = 1 << 8
    rec["cmd"] = 0x28
    rec["len"] = 4096
    for k, v in fields.items():
        rec[k] = v
    return rec


def test_vscsi_bad(tmp_path):
    short = write_text(tmp_path, "short.vscsi", vscsi1(2).tobytes()[:50])
    with raises(short, "too short", "50 bytes"):
        open_trace(short, "vscsi")
    junk = write_text(tmp_path, "junk.vscsi", b"\xff" * 320)
    with raises(junk, "not a vscsi trace", "version"):
        open_trace(junk, "vscsi")
    trunc = write_text(tmp_path, "trunc.vscsi", vscsi1(5).tobytes() + b"\0" * 7)
    with raises(trunc, "truncated record", "32-byte record", "7 trailing bytes"):
        open_trace(trunc, "vscsi")
    rec = vscsi1(5)
    rec["len"][3] = (1 << 30) + 512
    huge = write_text(tmp_path, "huge.vscsi", rec.tobytes())
    with raises(huge, "record 3", "exceeds 1 GiB"):
        open_trace(huge, "vscsi")
    rec = vscsi1(5)
    rec["ver"][4] = 2 << 8
    mixed = write_text(tmp_path, "mixed.vscsi", rec.tobytes())
    with raises(mixed, "record 4 (byte offset 128)", "version byte 2, expected 1"):
        open_trace(mixed, "vscsi")
    rec = vscsi1(5)
    rec["lbn"][2] = 2**63
    far = write_text(tmp_path, "far.vscsi", rec.tobytes())
    with raises(far, "record 2", "lbn"):
        open_trace(far, "vscsi")


def native_file(tmp_path, name, records, magic=NATIVE_MAGIC, version=1, size=16):
    head = magic + np.array([version, size], "<u4").tobytes()
    return write_text(tmp_path, name, head + records.tobytes())


def test_native_bad(tmp_path):
    ok = np.zeros(4, RECORD_DTYPE)
    p = native_file(tmp_path, "magic.rxt", ok, magic=b"RXTRACE0")
    with raises(p, "not a native reclaim-ext trace", "magic"):
        open_trace(p, "native")
    p = native_file(tmp_path, "ver.rxt", ok, version=2)
    with raises(p, "unsupported native trace version 2"):
        open_trace(p, "native")
    p = native_file(tmp_path, "size.rxt", ok, size=24)
    with raises(p, "record size 24"):
        open_trace(p, "native")
    p = write_text(tmp_path, "head.rxt", NATIVE_MAGIC + b"\1\0")
    with raises(p, "truncated header", "10 bytes"):
        open_trace(p, "native")
    p = write_text(tmp_path, "trunc.rxt", native_file(tmp_path, "x.rxt", ok).read_bytes()[:-3])
    with raises(p, "truncated record", "13 trailing bytes"):
        open_trace(p, "native")
    for field, value, words in [
        ("kind", 4, ["record 2", "kind 4"]),
        ("write", 2, ["record 2", "write flag 2"]),
        ("page", 2**36, ["record 2", "ANON page", "out of range"]),
    ]:
        bad = ok.copy()
        bad[field][2] = value
        p = native_file(tmp_path, f"{field}.rxt", bad)
        with raises(p, *words):
            open_trace(p, "native")
    fine = ok.copy()
    fine["kind"][2], fine["page"][2] = Kind.FILE_FD, 2**40  # file pages may be any u64 id
    assert open_trace(native_file(tmp_path, "fine.rxt", fine), "native").length == 4


def test_csv_bad(tmp_path):
    p = write_text(tmp_path, "nonnum.csv", "id\n1\n2\nthree\n4\n")
    with raises(p, "line 4", "'three' is not a non-negative integer", "--trace-opt id_is_num=false"):
        open_trace(p, "csv")
    p = write_text(tmp_path, "neg.csv", "id\n1\n-2\n")
    with raises(p, "line 3", "'-2'"):
        open_trace(p, "csv")
    p = write_text(tmp_path, "over.csv", "id\n18446744073709551615\n18446744073709551616\n")
    with raises(p, "line 3", "18446744073709551616"):
        open_trace(p, "csv")
    p = write_text(tmp_path, "miss.csv", "a,b\n1,2\n3\n")
    with raises(p, "line 3", "missing column 2 (b)", "1 field"):
        open_trace(p, "csv", id_col="b")
    with raises(p, "--trace-opt id_col=5", "missing column"):
        open_trace(p, "csv", id_col=5)
    with raises(p, "--trace-opt id_col=zz", "missing column"):
        open_trace(p, "csv", id_col="zz")
    p = write_text(tmp_path, "noid.csv", "1,2\n3,4\n")
    with raises(p, "--trace-opt id_col is required"):
        open_trace(p, "csv")
    with raises(p, "names a column but the file has no header"):
        open_trace(p, "csv", id_col="id")
    p = write_text(tmp_path, "op.csv", "id,op\n1,r\n2,delete\n")
    with raises(p, "line 3", "op 'delete' is not read/write"):
        open_trace(p, "csv", op_col=2)
    p = write_text(tmp_path, "size.csv", "off,len\n0,4096\n0,2147483648\n")
    with raises(p, "line 3", "exceeds 1 GiB"):
        open_trace(p, "csv", offset_col=1, size_col=2)
    with raises(p, "--trace-opt offset_col=N and --trace-opt size_col=N go together"):
        open_trace(p, "csv", offset_col=1)
    with raises(p, "either --trace-opt id_col=N or --trace-opt offset_col=N"):
        open_trace(p, "csv", id_col=1, offset_col=1, size_col=2)
    p = write_text(tmp_path, "negoff.csv", "off,len\n-4096,10\n")
    with raises(p, "line 2", "offset '-4096'"):
        open_trace(p, "csv", offset_col=1, size_col=2)
    p = write_text(tmp_path, "hdr.csv", "obj_id,size\n")
    with raises(p, "no data lines after the header"):
        open_trace(p, "csv")
    p = write_text(tmp_path, "blank.csv", "\n# only a comment\n\n")
    with raises(p, "no data lines"):
        open_trace(p, "csv", id_col=1)
    p = write_text(tmp_path, "late.csv", "id\n" + "1\n" * 600_000 + "x\n")
    t = open_trace(p, "csv")  # the bad line is beyond the first block: found while streaming
    with raises(p, "line 600002", "'x'"):
        t.to_array()
    with raises(p, "delimiter"):
        open_trace(p, "csv", delimiter=";;")
    with raises(p, "op_codes"):
        open_trace(p, "csv", op_codes="ascii")
    with raises(p, "header must be"):
        open_trace(p, "csv", header="maybe")
    q = write_text(tmp_path, "scsi.csv", "op,lbn\n28,1\nzz,2\n")
    with raises(q, "line 3", "not a hexadecimal SCSI opcode"):
        open_trace(q, "csv", op_col=1, op_codes="scsi")
