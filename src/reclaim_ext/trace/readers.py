"""Readers for recorded traces: libCacheSim oracleGeneral, CloudPhysics vscsi, csv, and
reclaim-ext's own native format.

`open_trace(path, fmt, **opts)` returns a Trace whose chunks() streams the file: it reads a block
of records' bytes (or of csv lines), decodes it with numpy (np.frombuffer and vectorized parsing;
never Python code per record on the normal path), and yields RECORD_DTYPE arrays. Any format may
be zstd-compressed (detected by the zstd magic bytes 28 b5 2f fd; a `.zst` suffix without them is
an error); compressed data is decompressed as a stream, frame by frame.

Every problem with the input raises TraceError(path, problem). Problems are looked for when the
trace is opened, so a bad file fails before a run starts:
  * always: missing/unreadable file, empty file, bad header or magic, bad zstd data at the start,
    and every record of the first block;
  * uncompressed binary files (oraclegeneral, vscsi, native): the whole file is validated at open
    (a vectorized pass over it), which also gives the exact `length` in records;
  * compressed files and csv: later blocks are validated as they are read (length is None).

Recorded block traces carry no process or file structure: every reader except native produces
FILE_FD records of pid 0, file 0, i.e. read()/write() of the pages of one big file (the block
device). `page` is then an arbitrary u64 (an object id or a 4 KiB block number); the machine
remaps ids densely.
"""

from __future__ import annotations

import csv as _csv
import inspect
import os
from typing import Any, BinaryIO, Iterator

import numpy as np
import zstandard

from ..errors import TraceError
from ._util import check_chunk, expand_ranges, rechunk
from .base import DEFAULT_CHUNK, Trace
from .record import MAX_ANON_PAGE, RECORD_DTYPE, Kind

FORMATS = ("oraclegeneral", "csv", "vscsi", "native")

PAGE_SIZE = 4096
PAGE_SHIFT = 12
SECTOR_SIZE = 512
MAX_REQUEST_BYTES = 1 << 30
"""Largest request (vscsi len, csv size) accepted: 1 GiB. Larger values are corrupt data."""

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
NATIVE_MAGIC = b"RXTRACE1"
NATIVE_VERSION = 1
NATIVE_HEADER = np.dtype([("magic", "S8"), ("version", "<u4"), ("record_size", "<u4")])
assert NATIVE_HEADER.itemsize == 16

SCAN_RECORDS = 1 << 20  # records per block of the open-time validation pass
COMPRESSED_READ = 1 << 18  # compressed bytes fed to the decompressor at a time
CSV_BLOCK = 1 << 20  # csv bytes per parsed block (extended to the end of the last whole line)


# ============================================================================================
# Byte sources


class _Source:
    """The bytes of a trace file, read sequentially; zstd-decompressed when compressed.

    read(n) returns exactly n bytes, fewer only at the end of the data. Errors (unreadable file,
    corrupt or truncated zstd data) are raised as TraceError(path, ...).
    """

    def __init__(self, path: str):
        self.path = path
        self.f: BinaryIO = _open_file(path)
        try:
            magic = self.f.read(4)
            self.f.seek(0)
        except OSError as e:
            self.f.close()
            raise TraceError(path, f"cannot read: {e.strerror or e}") from None
        self.compressed = magic == ZSTD_MAGIC
        if not self.compressed and path.endswith(".zst") and magic:
            self.f.close()
            raise TraceError(
                path, f"has a .zst suffix but does not start with the zstd magic bytes 28 b5 2f fd (starts {magic.hex(' ')})"
            )
        self._buf = bytearray()
        self._dobj = None  # decompressor of the current zstd frame
        self._in_frame = False
        self._eof = False

    def __enter__(self) -> "_Source":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.f.close()

    def _fill(self, n: int) -> None:
        while len(self._buf) < n and not self._eof:
            try:
                data = self.f.read(COMPRESSED_READ)
            except OSError as e:
                raise TraceError(self.path, f"cannot read: {e.strerror or e}") from None
            if not data:
                self._eof = True
                if self._in_frame:
                    raise TraceError(self.path, "truncated zstd data: the file ends inside a compressed frame")
                return
            while data:
                if self._dobj is None:
                    self._dobj = zstandard.ZstdDecompressor().decompressobj()
                self._in_frame = True
                try:
                    self._buf += self._dobj.decompress(data)
                except zstandard.ZstdError as e:
                    raise TraceError(self.path, f"corrupt zstd data: {e}") from None
                if self._dobj.eof:  # frame complete; what follows starts the next frame
                    data = self._dobj.unused_data
                    self._dobj = None
                    self._in_frame = False
                else:
                    data = b""

    def read(self, n: int) -> bytes:
        if not self.compressed:
            try:
                return self.f.read(n)
            except OSError as e:
                raise TraceError(self.path, f"cannot read: {e.strerror or e}") from None
        self._fill(n)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out


def _open_file(path: str) -> BinaryIO:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise TraceError(path, "no such file") from None
    except IsADirectoryError:
        raise TraceError(path, "is a directory, not a trace file") from None
    except PermissionError:
        raise TraceError(path, "permission denied (cannot read the file)") from None
    except OSError as e:
        raise TraceError(path, f"cannot open: {e.strerror or e}") from None


def _file_size(path: str) -> int:
    with _open_file(path) as f:
        try:
            return os.fstat(f.fileno()).st_size
        except OSError as e:  # pragma: no cover - fstat on an open file practically never fails
            raise TraceError(path, f"cannot stat: {e.strerror or e}") from None


def _is_compressed(path: str) -> bool:
    with _Source(path) as src:
        return src.compressed


# ============================================================================================
# Trace classes


class FileTrace(Trace):
    """A trace read from a file. chunks() reopens the file and streams it from the start."""

    fmt = ""

    def __init__(self, path: str, length: int | None, params: dict):
        super().__init__(name=os.path.basename(path), length=length, params=dict(params, fmt=self.fmt, path=path))
        self.path = path

    def _blocks(self, chunk: int) -> Iterator[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def chunks(self, chunk: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        """Replay the trace from the start in arrays of at most `chunk` records."""
        return rechunk(self._blocks(check_chunk(chunk)), chunk)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r}, length={self.length})"


class _RecordFileTrace(FileTrace):
    """A binary file of fixed-size records after an optional header."""

    header_size = 0
    raw_dtype: np.dtype

    def _check(self, raw: np.ndarray, first: int) -> int:
        """Validate the raw records `first`, `first`+1, ... (vectorized); return the number of
        trace records they produce."""
        raise NotImplementedError  # pragma: no cover

    def _convert(self, raw: np.ndarray, first: int, chunk: int) -> Iterator[np.ndarray]:
        """Trace records of already validated raw records."""
        raise NotImplementedError  # pragma: no cover

    def _where(self, first: int, i: int) -> str:
        n = first + int(i)
        return f"record {n} (byte offset {self.header_size + n * self.raw_dtype.itemsize})"

    def _raw_blocks(self, n_records: int) -> Iterator[tuple[int, np.ndarray]]:
        size = self.raw_dtype.itemsize
        with _Source(self.path) as src:
            if self.header_size:
                src.read(self.header_size)
            first = 0
            while True:
                data = src.read(n_records * size)
                if not data:
                    return
                whole, rem = divmod(len(data), size)
                if rem:
                    raise TraceError(
                        self.path,
                        f"truncated record: the data ends {rem} bytes into record {first + whole} "
                        f"(records are {size} bytes)",
                    )
                raw = np.frombuffer(data, dtype=self.raw_dtype)
                yield first, raw
                first += whole

    def _blocks(self, chunk: int) -> Iterator[np.ndarray]:
        for first, raw in self._raw_blocks(chunk):
            self._check(raw, first)
            yield from self._convert(raw, first, chunk)

    def _refuse_text(self) -> None:
        """A file whose first KiB is (nearly) all printable text is a text trace given the wrong
        format: binary records hold zero bytes and small integers (at most about a quarter of the
        bytes of the shared oracleGeneral and vscsi traces are printable), text decodes to
        plausible garbage."""
        with _Source(self.path) as src:
            head = np.frombuffer(src.read(1024)[self.header_size:], dtype=np.uint8)
        printable = ((head >= 32) & (head < 127)) | (head == 9) | (head == 10) | (head == 13)
        if len(head) >= self.raw_dtype.itemsize and np.count_nonzero(printable) >= 0.9 * len(head):
            raise TraceError(self.path, f"looks like a text file, not {self.fmt} binary records "
                                        "(a csv trace? give --format csv)")

    def _validate_at_open(self) -> None:
        """Check the size (plain files) and validate: the whole file if uncompressed (setting
        `length`), the first block if compressed."""
        size = self.raw_dtype.itemsize
        self._refuse_text()
        if not _is_compressed(self.path):
            fsize = _file_size(self.path)
            whole, rem = divmod(fsize - self.header_size, size)
            if rem:
                raise TraceError(
                    self.path,
                    f"truncated record: file size {fsize} is not {self.header_size} + a multiple of the "
                    f"{size}-byte record ({rem} trailing bytes after {whole} whole records)",
                )
            self.length = sum(self._check(raw, first) for first, raw in self._raw_blocks(SCAN_RECORDS))
        else:
            # up to the first block that yields a record (all of the file if none does)
            seen = 0
            for first, raw in self._raw_blocks(DEFAULT_CHUNK):
                seen += len(raw)
                if self._check(raw, first):
                    break
            else:
                if seen:
                    raise TraceError(self.path, f"no requests: none of its {seen:,} records touches a page")
                after = " after the header" if self.header_size else ""
                raise TraceError(self.path, f"holds no records: the zstd data decompresses to no records{after}")
            self.length = None


# --------------------------------------------------------------------------------------------
# oracleGeneral

ORACLE_DTYPE = np.dtype(
    [("clock_time", "<u4"), ("obj_id", "<u8"), ("obj_size", "<u4"), ("next_access_vtime", "<i8")]
)
assert ORACLE_DTYPE.itemsize == 24


class OracleGeneralTrace(_RecordFileTrace):
    """libCacheSim oracleGeneral: 24-byte little-endian records {u32 clock_time, u64 obj_id,
    u32 obj_size, i64 next_access_vtime (-1 = never again)}, no header.

    Each request becomes one FILE_FD read of page `obj_id` of file 0: every object is one
    unit-size page (obj_size is not used beyond the zero check) and the clock is ignored.
    Requests of obj_size 0 are skipped, as libCacheSim's reader does by default
    (ignore_size_zero_req), unless zero_size="keep" (one record anyway) or "error".
    next_access_vtime must be >= -1 (it is otherwise ignored).
    """

    fmt = "oraclegeneral"
    raw_dtype = ORACLE_DTYPE

    def __init__(self, path: str, zero_size: str = "skip"):
        if zero_size not in ("skip", "keep", "error"):
            raise TraceError(path, f"--trace-opt zero_size must be skip, keep or error, not {zero_size!r}")
        self.zero_size = zero_size
        super().__init__(path, None, dict(zero_size=zero_size))
        self._validate_at_open()

    def _check(self, raw, first):
        bad = np.flatnonzero(raw["next_access_vtime"] < -1)
        if len(bad):
            i = bad[0]
            raise TraceError(
                self.path,
                f"{self._where(first, i)}: next_access_vtime {raw['next_access_vtime'][i]} is negative "
                "(only -1, never accessed again, is allowed)",
            )
        zero = raw["obj_size"] == 0
        if self.zero_size == "error" and zero.any():
            i = np.flatnonzero(zero)[0]
            raise TraceError(self.path, f"{self._where(first, i)}: obj_size is 0 (zero_size=error)")
        if self.zero_size == "skip":
            return len(raw) - int(np.count_nonzero(zero))
        return len(raw)

    def _convert(self, raw, first, chunk):
        if self.zero_size == "skip":
            raw = raw[raw["obj_size"] != 0]
        rec = np.zeros(len(raw), dtype=RECORD_DTYPE)
        rec["kind"] = Kind.FILE_FD
        rec["page"] = raw["obj_id"]
        yield rec


# --------------------------------------------------------------------------------------------
# vscsi

VSCSI1_DTYPE = np.dtype(
    [("sn", "<u4"), ("len", "<u4"), ("nSG", "<u4"), ("cmd", "<u2"), ("ver", "<u2"), ("lbn", "<u8"), ("ts", "<u8")]
)
VSCSI2_DTYPE = np.dtype(
    [("cmd", "<u2"), ("ver", "<u2"), ("sn", "<u4"), ("len", "<u4"), ("nSG", "<u4"), ("lbn", "<u8"),
     ("ts", "<u8"), ("rt", "<u8")]
)
assert VSCSI1_DTYPE.itemsize == 32 and VSCSI2_DTYPE.itemsize == 40

# SCSI opcodes libCacheSim's vscsi reader maps to OP_READ / OP_WRITE (everything else is
# OP_INVALID): READ(6/10/12/16) and 0x2d; WRITE(10/12/16), WRITE AND VERIFY, WRITE SAME, ...
SCSI_READ_OPS = (0x28, 0x08, 0x88, 0x2D, 0xA8)
SCSI_WRITE_OPS = (0x2A, 0x3F, 0x8A, 0x8E, 0x9A, 0x9C, 0xAA, 0xAE)
_SCSI_OP = np.full(1 << 16, 2, dtype=np.uint8)  # opcode -> 0 read, 1 write, 2 other (skipped)
_SCSI_OP[list(SCSI_READ_OPS)] = 0
_SCSI_OP[list(SCSI_WRITE_OPS)] = 1

MAX_LBN = ((1 << 64) - 1 - MAX_REQUEST_BYTES) // SECTOR_SIZE


def _byte_range_pages(offset: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First page and number of pages of byte ranges [offset, offset+length) (u64 arrays);
    a zero length touches no page."""
    offset = offset.astype(np.uint64, copy=False)
    length = length.astype(np.uint64, copy=False)
    first = offset >> np.uint64(PAGE_SHIFT)
    last = (offset + np.maximum(length, np.uint64(1)) - np.uint64(1)) >> np.uint64(PAGE_SHIFT)
    count = np.where(length > 0, last - first + np.uint64(1), np.uint64(0)).astype(np.int64)
    return first, count


def _expand_requests(first: np.ndarray, count: np.ndarray, write: np.ndarray, chunk: int) -> Iterator[np.ndarray]:
    """FILE_FD records for the pages of requests (first page, page count, write flag), split so no
    piece holds much more than `chunk` records however large the requests."""
    if len(first) == 0:
        return
    cum = np.cumsum(count)
    total = int(cum[-1])
    cuts = np.searchsorted(cum, np.arange(chunk, total, chunk, dtype=np.int64), side="left") + 1
    bounds = np.unique(np.concatenate([[0], cuts, [len(first)]]))
    for a, b in zip(bounds[:-1], bounds[1:]):
        req, pages = expand_ranges(first[a:b], count[a:b])
        rec = np.zeros(len(pages), dtype=RECORD_DTYPE)
        rec["kind"] = Kind.FILE_FD
        rec["write"] = write[a:b][req]
        rec["page"] = pages
        yield rec


class VscsiTrace(_RecordFileTrace):
    """CloudPhysics vscsi binary traces, as libCacheSim reads them.

    Two record layouts, no header (little-endian):
      v1 (32 bytes): u32 sn, u32 len, u32 nSG, u16 cmd, u16 ver, u64 lbn, u64 ts
      v2 (40 bytes): u16 cmd, u16 ver, u32 sn, u32 len, u32 nSG, u64 lbn, u64 ts, u64 rt
    The version is detected as libCacheSim does: if the high byte of `ver` is 2 in the first two
    records read as v2, it is v2; else if it is 1 in the first two records read as v1, it is v1.
    Every record must carry the detected version (a mismatch means a corrupt record).

    `lbn` is the request's first 512-byte sector and `len` its length in bytes, so a request covers
    bytes [lbn*512, lbn*512 + len); it becomes one FILE_FD record per 4 KiB page it touches, in
    ascending page order, page = byte offset // 4096. `cmd` is the SCSI opcode, classified as
    libCacheSim does: READ opcodes (0x08 0x28 0x2d 0x88 0xa8) give reads, WRITE opcodes (0x2a 0x3f
    0x8a 0x8e 0x9a 0x9c 0xaa 0xae) writes; other commands (no data through the page cache, e.g.
    TEST UNIT READY, SYNCHRONIZE CACHE) and zero-length requests produce no record.
    """

    fmt = "vscsi"

    def __init__(self, path: str):
        with _Source(path) as src:
            head = src.read(2 * VSCSI2_DTYPE.itemsize)
        if not head:
            raise TraceError(path, "empty file")
        if len(head) < 2 * VSCSI2_DTYPE.itemsize:
            raise TraceError(
                path, f"too short for a vscsi trace: {len(head)} bytes, need at least {2 * VSCSI2_DTYPE.itemsize} to detect the version"
            )
        v2 = np.frombuffer(head, dtype=VSCSI2_DTYPE, count=2)["ver"] >> 8
        v1 = np.frombuffer(head, dtype=VSCSI1_DTYPE, count=2)["ver"] >> 8
        if (v2 == 2).all():
            self.version, self.raw_dtype = 2, VSCSI2_DTYPE
        elif (v1 == 1).all():
            self.version, self.raw_dtype = 1, VSCSI1_DTYPE
        else:
            raise TraceError(
                path,
                "not a vscsi trace: no version byte 1 (32-byte v1 records) or 2 (40-byte v2 records) "
                f"in the first two records (read {v1.tolist()} as v1, {v2.tolist()} as v2)",
            )
        super().__init__(path, None, dict(version=self.version))
        self._validate_at_open()

    def _check(self, raw, first):
        bad = np.flatnonzero((raw["ver"] >> 8) != self.version)
        if len(bad):
            i = bad[0]
            raise TraceError(
                self.path, f"{self._where(first, i)}: version byte {raw['ver'][i] >> 8}, expected {self.version} (corrupt record)"
            )
        bad = np.flatnonzero(raw["len"] > MAX_REQUEST_BYTES)
        if len(bad):
            i = bad[0]
            raise TraceError(self.path, f"{self._where(first, i)}: request length {raw['len'][i]} bytes exceeds 1 GiB")
        bad = np.flatnonzero(raw["lbn"] > MAX_LBN)
        if len(bad):
            i = bad[0]
            raise TraceError(self.path, f"{self._where(first, i)}: lbn {raw['lbn'][i]} is beyond any 64-bit byte offset")
        keep = _SCSI_OP[raw["cmd"]] < 2
        _, count = _byte_range_pages(raw["lbn"][keep] * np.uint64(SECTOR_SIZE), raw["len"][keep])
        return int(count.sum())

    def _convert(self, raw, first, chunk):
        op = _SCSI_OP[raw["cmd"]]
        keep = op < 2
        first_page, count = _byte_range_pages(raw["lbn"][keep] * np.uint64(SECTOR_SIZE), raw["len"][keep])
        yield from _expand_requests(first_page, count, op[keep], chunk)


# --------------------------------------------------------------------------------------------
# native


class NativeTrace(_RecordFileTrace):
    """reclaim-ext's own format: a 16-byte header {8 bytes magic b"RXTRACE1", u32 version = 1,
    u32 record size = 16} followed by RECORD_DTYPE records (little-endian), read as they are.

    Records are validated: kind must be a Kind (0..3), write 0 or 1, an ANON page a VPN below
    2**36. (File pages may be any u64: readers of block traces produce arbitrary ids.)
    """

    fmt = "native"
    raw_dtype = RECORD_DTYPE
    header_size = NATIVE_HEADER.itemsize

    def __init__(self, path: str):
        with _Source(path) as src:
            head = src.read(self.header_size)
        if not head:
            raise TraceError(path, "empty file")
        if len(head) < self.header_size:
            raise TraceError(path, f"truncated header: {len(head)} bytes, the native header is {self.header_size}")
        h = np.frombuffer(head, dtype=NATIVE_HEADER)[0]
        if h["magic"] != NATIVE_MAGIC:
            raise TraceError(path, f"not a native reclaim-ext trace: magic {bytes(head[:8])!r}, expected {NATIVE_MAGIC!r}")
        if h["version"] != NATIVE_VERSION:
            raise TraceError(path, f"unsupported native trace version {h['version']} (this reader knows {NATIVE_VERSION})")
        if h["record_size"] != RECORD_DTYPE.itemsize:
            raise TraceError(
                path, f"record size {h['record_size']} in the header, expected {RECORD_DTYPE.itemsize} (RECORD_DTYPE)"
            )
        super().__init__(path, None, {})
        self._validate_at_open()

    def _check(self, raw, first):
        _check_records(raw, self.path, lambda i: self._where(first, i))
        return len(raw)

    def _convert(self, raw, first, chunk):
        yield raw.copy()  # frombuffer arrays are read-only views of the bytes read


def _check_records(rec: np.ndarray, source: str, where) -> None:
    bad = np.flatnonzero(rec["kind"] > max(Kind))
    if len(bad):
        i = bad[0]
        raise TraceError(source, f"{where(i)}: kind {rec['kind'][i]} is not a Kind (0..{int(max(Kind))})")
    bad = np.flatnonzero(rec["write"] > 1)
    if len(bad):
        i = bad[0]
        raise TraceError(source, f"{where(i)}: write flag {rec['write'][i]} is not 0 or 1")
    bad = np.flatnonzero((rec["kind"] == Kind.ANON) & (rec["page"] > MAX_ANON_PAGE))
    if len(bad):
        i = bad[0]
        raise TraceError(source, f"{where(i)}: ANON page {rec['page'][i]} is out of range (VPNs are < 2**36)")


def write_native(path: str | os.PathLike, trace_or_array: Trace | np.ndarray, chunk: int = DEFAULT_CHUNK) -> int:
    """Write a trace (streamed chunk by chunk) or a RECORD_DTYPE array as a native trace file;
    zstd-compressed if `path` ends in .zst. Returns the number of records written.

    Records are validated as open_trace(..., "native") would; on an error the partial file is
    removed and TraceError(path, problem) raised.
    """
    path = os.fspath(path)
    if isinstance(trace_or_array, np.ndarray):
        if trace_or_array.dtype != RECORD_DTYPE:
            raise TraceError(path, f"records must be of RECORD_DTYPE, not {trace_or_array.dtype}")
        parts: Any = (trace_or_array[i : i + chunk] for i in range(0, len(trace_or_array), chunk))
    elif isinstance(trace_or_array, Trace):
        parts = trace_or_array.chunks(chunk)
    else:
        raise TraceError(path, f"cannot write a {type(trace_or_array).__name__} (need a Trace or a RECORD_DTYPE array)")
    header = np.array([(NATIVE_MAGIC, NATIVE_VERSION, RECORD_DTYPE.itemsize)], dtype=NATIVE_HEADER).tobytes()
    n = 0
    try:
        f = open(path, "wb")
    except OSError as e:
        raise TraceError(path, f"cannot create: {e.strerror or e}") from None
    try:
        with f:
            out: Any = zstandard.ZstdCompressor().stream_writer(f, closefd=False) if path.endswith(".zst") else f
            out.write(header)
            for part in parts:
                part = np.ascontiguousarray(part, dtype=RECORD_DTYPE)
                _check_records(part, path, lambda i, base=n: f"record {base + int(i)}")
                out.write(part.tobytes())
                n += len(part)
            if out is not f:
                out.close()
    except BaseException:
        try:
            os.unlink(path)
        except OSError:
            pass
        raise
    return n


# ============================================================================================
# csv

# Header names recognized as the object id column when id_col is not given (first match wins).
ID_COLUMN_NAMES = ("obj_id", "object_id", "objid", "object", "obj", "key", "id", "lbn", "lba", "block", "page")

_READ_WORDS = ("read", "r", "0", "get")
_WRITE_WORDS = ("write", "w", "1", "set", "put")
_WS = np.zeros(256, dtype=bool)
_WS[[ord(" "), ord("\t"), ord("\r")]] = True
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_U64_MAX_DIGITS = np.frombuffer(b"18446744073709551615", dtype=np.uint8) - ord("0")


def _pack_word(buf: np.ndarray, s: np.ndarray, e: np.ndarray, width: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Lowercased field bytes packed big-endian into a u64 key (fields of at most `width` bytes);
    returns (keys, too_long)."""
    n = len(s)
    length = e - s
    idx = s[:, None] + np.arange(width)
    inside = np.arange(width) < length[:, None]
    b = np.where(inside, buf[np.minimum(idx, len(buf) - 1)], 0).astype(np.uint8)
    upper = (b >= ord("A")) & (b <= ord("Z"))
    b = np.where(upper, b + 32, b).astype(np.uint64)
    keys = np.zeros(n, dtype=np.uint64)
    for k in range(width):
        keys = (keys << np.uint64(8)) | b[:, k]
    return keys, length > width


def _word_key(word: str) -> int:
    raw = word.lower().encode().ljust(8, b"\0")
    return int.from_bytes(raw, "big")


_READ_KEYS = np.array([_word_key(w) for w in _READ_WORDS], dtype=np.uint64)
_WRITE_KEYS = np.array([_word_key(w) for w in _WRITE_WORDS], dtype=np.uint64)


def _parse_uint(buf: np.ndarray, s: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decimal fields buf[s:e] as u64; returns (values, bad) where bad marks empty, non-digit or
    overflowing fields. Vectorized over fields (a loop over at most 20 digit positions)."""
    n = len(s)
    length = e - s
    bad = (length < 1) | (length > 20)
    width = int(min(length.max(initial=0), 20))
    if width == 0:
        return np.zeros(n, dtype=np.uint64), np.ones(n, dtype=bool)
    idx = e[:, None] - width + np.arange(width)  # right-aligned digit positions
    inside = idx >= s[:, None]
    d = buf[np.where(inside, idx, 0)] - np.uint8(ord("0"))
    bad |= (inside & (d > 9)).any(axis=1)
    d = np.where(inside & ~bad[:, None], d, 0).astype(np.uint8)
    val = np.zeros(n, dtype=np.uint64)
    ten = np.uint64(10)
    for k in range(width):
        val = val * ten + d[:, k].astype(np.uint64)
    if width == 20:  # 20-digit fields may exceed 2**64 - 1
        full = np.flatnonzero((length == 20) & ~bad)
        if len(full):
            rows = d[full]
            diff = rows != _U64_MAX_DIGITS
            pos = diff.argmax(axis=1)
            over = diff.any(axis=1) & (rows[np.arange(len(full)), pos] > _U64_MAX_DIGITS[pos])
            bad[full[over]] = True
    return val, bad


def _parse_hex(buf: np.ndarray, s: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hexadecimal fields (optional 0x prefix, at most 4 digits) as integers; (values, bad)."""
    s = s.copy()
    prefixed = (e - s >= 2) & (buf[s] == ord("0")) & np.isin(buf[np.minimum(s + 1, len(buf) - 1)], (ord("x"), ord("X")))
    s[prefixed] += 2
    keys, too_long = _pack_word(buf, s, e, width=4)
    length = e - s
    val = np.zeros(len(s), dtype=np.int64)
    bad = too_long | (length < 1)
    for k in range(4):
        c = ((keys >> np.uint64(8 * (3 - k))) & np.uint64(0xFF)).astype(np.int64)
        used = k < length
        digit = np.where((c >= 48) & (c <= 57), c - 48, np.where((c >= 97) & (c <= 102), c - 87, -1))
        bad |= used & (digit < 0)
        val = np.where(used, val * 16 + np.maximum(digit, 0), val)
    return val, bad


def _fnv1a64(buf: np.ndarray, s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """64-bit FNV-1a hashes of fields buf[s:e] (deterministic across runs and platforms)."""
    h = np.full(len(s), _FNV_OFFSET, dtype=np.uint64)
    length = e - s
    for j in range(int(length.max(initial=0))):
        act = np.flatnonzero(length > j)
        h[act] = (h[act] ^ buf[s[act] + j].astype(np.uint64)) * _FNV_PRIME
    return h


def _bool_option(path: str, name: str, value: Any, allow_auto: bool = False) -> bool | None:
    """A boolean option given as a bool or as text (true/false, yes/no, 1/0; auto -> None)."""
    if isinstance(value, bool) or (value is None and allow_auto):
        return value
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("1", "true", "yes", "y", "on"):
            return True
        if v in ("0", "false", "no", "n", "off"):
            return False
        if allow_auto and v == "auto":
            return None
    what = "true, false or auto" if allow_auto else "true or false"
    raise TraceError(path, f"--trace-opt {name} must be {what}, not {value!r}")


def _csv_problem(e: Exception) -> str:
    """What Python's csv module found wrong with a line, in the user's terms."""
    if "new-line character" in str(e):
        return "a carriage return (\\r) inside a field that is not quoted"
    if "unexpected end of data" in str(e):
        return "a quoted field is not closed on its line"
    if "expected after" in str(e):
        return "text after the closing quote of a field"
    return f"not readable as delimited text ({e})"


class CsvTrace(FileTrace):
    """A delimited text trace, one request per line.

    Options (columns are 1-based numbers, or names from the header line):
      id_col      the object id column (default: a header column named one of ID_COLUMN_NAMES)
      op_col      optional read/write column (without it every request is a read)
      op_codes    "rw" (default): read/r/0/get = read, write/w/1/set/put = write, any case;
                  "scsi": hexadecimal SCSI opcodes (e.g. 28 / 2a), classified as the vscsi reader
                  does, other commands skipped
      header      True / False / None (auto: the first line is a header if it starts with '#' or
                  has a non-numeric field where the next data line has a number)
      delimiter   one character, default ","; whitespace around fields is ignored
      id_is_num   True (default): ids must be non-negative decimal integers < 2**64, used as the
                  page; False: ids are strings hashed to u64 with 64-bit FNV-1a
      offset_col, size_col
                  instead of id_col: a byte offset (in units of offset_unit bytes) and a length in
                  bytes; each request becomes one record per 4 KiB page it touches, like vscsi
      offset_unit bytes per unit of offset_col (default 1; 512 for sector numbers)
    Lines that are empty or start with '#' (after the header) are skipped. Fields may be
    double-quoted (then they may contain the delimiter, but not a newline).
    """

    fmt = "csv"

    def __init__(
        self,
        path: str,
        id_col: int | str | None = None,
        op_col: int | str | None = None,
        header: bool | None = None,
        delimiter: str = ",",
        id_is_num: bool = True,
        offset_col: int | str | None = None,
        size_col: int | str | None = None,
        offset_unit: int = 1,
        op_codes: str = "rw",
    ):
        self.path = path
        header = _bool_option(path, "header", header, allow_auto=True)
        id_is_num = _bool_option(path, "id_is_num", id_is_num)
        if isinstance(offset_unit, str) and offset_unit.strip().isdigit():
            offset_unit = int(offset_unit)
        if delimiter in ("tab", "\\t"):
            delimiter = "\t"
        if not isinstance(delimiter, str) or len(delimiter) != 1 or not delimiter.isascii() or delimiter in "\r\n\"#":
            raise TraceError(path, f"--trace-opt delimiter must be one ASCII character other than quote, # or newline, not {delimiter!r}")
        if op_codes not in ("rw", "scsi"):
            raise TraceError(path, f"--trace-opt op_codes must be rw or scsi, not {op_codes!r}")
        if isinstance(offset_unit, bool) or not isinstance(offset_unit, int) or not 1 <= offset_unit <= MAX_REQUEST_BYTES:
            raise TraceError(path, f"--trace-opt offset_unit must be a positive integer number of bytes, not {offset_unit!r}")
        if (offset_col is None) != (size_col is None):
            raise TraceError(path, "--trace-opt offset_col=N and --trace-opt size_col=N go together (give both or neither)")
        if offset_col is not None and id_col is not None:
            raise TraceError(path, "give either --trace-opt id_col=N or --trace-opt offset_col=N with size_col=N, not both")
        self.delim = ord(delimiter)
        self.delimiter = delimiter
        self.id_is_num = bool(id_is_num)
        self.offset_unit = offset_unit
        self.op_codes = op_codes

        with _Source(path) as src:
            head = src.read(CSV_BLOCK)
            while b"\n" not in head:
                more = src.read(CSV_BLOCK)
                if not more:
                    break
                head += more
        if not head:
            raise TraceError(path, "empty file")
        first = np.frombuffer(head[:1024], dtype=np.uint8)
        control = ((first < 32) & ~np.isin(first, (9, 10, 13))) | (first == 127)
        if np.count_nonzero(control) >= 0.1 * len(first):  # text (UTF-8 too) has next to none
            raise TraceError(path, "looks like a binary file, not delimited text (an oracleGeneral, vscsi or "
                                   "native trace? give --format oraclegeneral, vscsi or native)")
        lines = head.split(b"\n", 64)
        line1 = lines[0].rstrip(b"\r")
        # the first data line after line 1 (skipping blank and comment lines)
        n2, line2 = next(((i, x.rstrip(b"\r")) for i, x in enumerate(lines[1:64], 2) if x.strip() and not x.startswith(b"#")),
                         (0, None))
        f1 = self._split_line(line1, 1)
        if header is None:
            header = line1.startswith(b"#") or self._looks_like_header(f1, self._split_line(line2, n2) if line2 else None)
        self.header = bool(header)
        self.names: list[str] = []
        if self.header:
            self.names = [n.strip().lstrip("#").strip().lower() for n in f1]

        self.id_col = self.op_col = self.offset_col = self.size_col = None
        if offset_col is not None:
            self.offset_col = self._column(offset_col, "offset_col")
            self.size_col = self._column(size_col, "size_col")
        elif id_col is not None:
            self.id_col = self._column(id_col, "id_col")
        else:
            found = next((n for n in ID_COLUMN_NAMES if n in self.names), None)
            if found is None:
                what = f"header columns: {', '.join(self.names)}" if self.header else "no header line"
                raise TraceError(
                    path, f"--trace-opt id_col is required: no column is named as an object id ({what}); "
                    "give --trace-opt id_col=N (a 1-based number or a header name), or --trace-opt offset_col=N "
                    "with --trace-opt size_col=N"
                )
            self.id_col = self.names.index(found)
        if op_col is not None:
            self.op_col = self._column(op_col, "op_col")

        super().__init__(
            path,
            None,
            dict(
                id_col=None if self.id_col is None else self.id_col + 1,
                op_col=None if self.op_col is None else self.op_col + 1,
                header=self.header, delimiter=delimiter, id_is_num=self.id_is_num,
                offset_col=None if self.offset_col is None else self.offset_col + 1,
                size_col=None if self.size_col is None else self.size_col + 1,
                offset_unit=offset_unit, op_codes=op_codes,
            ),
        )
        # Validate the first block now (all of it: a block is parsed before its first record is
        # yielded), so a bad file fails before a run starts. Blocks without any request (only
        # comments, or only non-data SCSI commands) do not count as the first block.
        for line_base, block in self._text_blocks():
            if any(len(r) for r in self._parse_block(line_base, block, DEFAULT_CHUNK)):
                break
        else:
            after = " after the header" if self.header else ""
            raise TraceError(path, f"no data lines{after}: the file holds no request that touches a page")

    # ---- open-time helpers

    def _split_line(self, line: bytes, lineno: int) -> list[str]:
        text = line.decode("utf-8", errors="replace")
        try:
            return next(_csv.reader([text], delimiter=self.delimiter), [])
        except _csv.Error as e:
            raise TraceError(self.path, f"line {lineno}: {_csv_problem(e)}") from None

    @staticmethod
    def _is_number(text: str) -> bool:
        try:
            float(text.strip())
            return True
        except ValueError:
            return False

    def _looks_like_header(self, f1: list[str], f2: list[str] | None) -> bool:
        if not any(x.strip() for x in f1):
            return False  # an empty first line is skipped as a blank line
        if f2 is None:
            return not any(self._is_number(x) for x in f1)
        return any(not self._is_number(a) and self._is_number(b) for a, b in zip(f1, f2))

    def _column(self, spec: int | str, option: str) -> int:
        """0-based index of a column given as a 1-based number or a header name."""
        if isinstance(spec, str) and spec.strip().isdigit():
            spec = int(spec)
        if isinstance(spec, bool) or not isinstance(spec, (int, str)):
            raise TraceError(self.path, f"--trace-opt {option} must be a column number or name, not {spec!r}")
        if isinstance(spec, int):
            if spec < 1:
                raise TraceError(self.path, f"--trace-opt {option} is 1-based, not {spec}")
            if self.header and spec > len(self.names):
                raise TraceError(
                    self.path, f"--trace-opt {option}={spec}: missing column, the header has {len(self.names)} columns ({', '.join(self.names)})"
                )
            return spec - 1
        name = spec.strip().lower()
        if not self.header:
            raise TraceError(self.path, f"--trace-opt {option}={spec} names a column but the file has no header line")
        if name not in self.names:
            raise TraceError(self.path, f"--trace-opt {option}={spec}: missing column, no such name in the header ({', '.join(self.names)})")
        return self.names.index(name)

    # ---- streaming

    def _text_blocks(self) -> Iterator[tuple[int, bytes]]:
        """(number of lines before the block, bytes of whole lines each ending in a newline);
        the header line is not included."""
        with _Source(self.path) as src:
            carry = b""
            line_base = 0
            skip_header = self.header
            while True:
                data = src.read(CSV_BLOCK)
                if data:
                    data = carry + data
                    cut = data.rfind(b"\n")
                    if cut < 0:
                        carry = data
                        continue
                    block, carry = data[: cut + 1], data[cut + 1 :]
                elif carry:
                    block, carry = carry + b"\n", b""
                else:
                    return
                if skip_header:
                    block = block[block.index(b"\n") + 1 :]
                    line_base, skip_header = 1, False
                if block:
                    yield line_base, block
                    line_base += block.count(b"\n")

    def _blocks(self, chunk: int) -> Iterator[np.ndarray]:
        for line_base, block in self._text_blocks():
            yield from self._parse_block(line_base, block, chunk)

    def _fields(self, line_base: int, block: bytes) -> tuple[np.ndarray, dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
        """Line numbers of the data lines of a block and, per needed column, (buffer, starts, ends)
        of that column's field on each data line, whitespace-trimmed."""
        buf = np.frombuffer(block, dtype=np.uint8)
        nl = np.flatnonzero(buf == 10)
        starts = np.concatenate([[0], nl[:-1] + 1]).astype(np.int64)
        ends = nl.astype(np.int64)
        cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13)
        ends = ends - cr
        keep = (ends > starts) & (buf[starts] != ord("#"))
        lineno = line_base + 1 + np.flatnonzero(keep)
        starts, ends = starts[keep], ends[keep]
        cols = sorted({c for c in (self.id_col, self.op_col, self.offset_col, self.size_col) if c is not None})
        out: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        if b'"' in block:
            # each line on its own (one reader over all lines would join a line with an unclosed
            # quote to the next); strict: an unclosed quote or text after a closing one is an error
            rows: list[list[str]] = []
            try:
                for s, e in zip(starts.tolist(), ends.tolist()):
                    text = block[s:e].decode("utf-8", errors="surrogateescape")
                    rows.append(next(_csv.reader((text,), delimiter=self.delimiter, strict=True), []))
            except _csv.Error as e:
                raise TraceError(self.path, f"line {lineno[len(rows)]}: {_csv_problem(e)}") from None
            for c in cols:
                try:
                    fields = [r[c].encode("utf-8", errors="surrogateescape") for r in rows]
                except IndexError:
                    i = next(i for i, r in enumerate(rows) if len(r) <= c)
                    self._missing(int(lineno[i]), len(rows[i]), c)
                lens = np.fromiter((len(x) + 1 for x in fields), dtype=np.int64, count=len(fields))
                cb = np.frombuffer(b"".join(x + b"\n" for x in fields), dtype=np.uint8)
                e = np.cumsum(lens) - 1
                out[c] = self._trim(cb, e - (lens - 1), e)
            return lineno, out
        d = np.flatnonzero(buf == self.delim)
        line_of = np.searchsorted(nl, d)  # delimiters by line of the whole block
        count_all = np.bincount(line_of, minlength=len(nl))
        first_all = np.cumsum(count_all) - count_all
        count, firstd = count_all[keep], first_all[keep]
        d_ext = np.concatenate([d, [0]]).astype(np.int64)  # guard for the index clipping below
        for c in cols:
            short = np.flatnonzero(count < c)
            if len(short):
                i = short[0]
                self._missing(int(lineno[i]), int(count[i]) + 1, c)
            s = starts if c == 0 else d_ext[np.minimum(firstd + c - 1, len(d))] + 1
            e = np.where(count == c, ends, d_ext[np.minimum(firstd + c, len(d))])
            e = np.minimum(e, ends)
            out[c] = self._trim(buf, s, e)
        return lineno, out

    def _missing(self, lineno: int, nfields: int, c: int) -> None:
        name = f" ({self.names[c]})" if c < len(self.names) else ""
        raise TraceError(self.path, f"line {lineno}: missing column {c + 1}{name}, the line has {nfields} field(s)")

    @staticmethod
    def _trim(buf: np.ndarray, s: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s, e = s.copy(), e.copy()
        while True:
            m = (s < e) & _WS[buf[np.minimum(s, len(buf) - 1)]]
            if not m.any():
                break
            s[m] += 1
        while True:
            m = (s < e) & _WS[buf[np.maximum(e - 1, 0)]]
            if not m.any():
                break
            e[m] -= 1
        return buf, s, e

    def _field_text(self, col: tuple[np.ndarray, np.ndarray, np.ndarray], i: int) -> str:
        buf, s, e = col
        return bytes(buf[s[i] : e[i]]).decode("utf-8", errors="replace")[:60]

    def _uint_column(self, lineno, cols, c, what) -> np.ndarray:
        val, bad = _parse_uint(*cols[c])
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            hint = " (use --trace-opt id_is_num=false to hash string ids)" if c == self.id_col else ""
            raise TraceError(
                self.path, f"line {lineno[i]}: {what} {self._field_text(cols[c], i)!r} is not a non-negative integer{hint}"
            )
        return val

    def _parse_block(self, line_base: int, block: bytes, chunk: int) -> Iterator[np.ndarray]:
        lineno, cols = self._fields(line_base, block)
        n = len(lineno)
        if n == 0:
            return
        write = np.zeros(n, dtype=np.uint8)
        keep = None
        if self.op_col is not None:
            col = cols[self.op_col]
            if self.op_codes == "rw":
                keys, too_long = _pack_word(*col)
                is_r, is_w = np.isin(keys, _READ_KEYS), np.isin(keys, _WRITE_KEYS)
                bad = too_long | ~(is_r | is_w)
                if bad.any():
                    i = int(np.flatnonzero(bad)[0])
                    raise TraceError(
                        self.path, f"line {lineno[i]}: op {self._field_text(col, i)!r} is not read/write (read, r, 0, get / write, w, 1, set, put)"
                    )
                write = is_w.astype(np.uint8)
            else:
                code, bad = _parse_hex(*col)
                if bad.any():
                    i = int(np.flatnonzero(bad)[0])
                    raise TraceError(self.path, f"line {lineno[i]}: op {self._field_text(col, i)!r} is not a hexadecimal SCSI opcode")
                op = _SCSI_OP[np.minimum(code, 0xFFFF)]
                keep = op < 2
                write = op.astype(np.uint8)
        if self.offset_col is not None:
            off = self._uint_column(lineno, cols, self.offset_col, "offset")
            size = self._uint_column(lineno, cols, self.size_col, "size")
            big = np.flatnonzero(size > MAX_REQUEST_BYTES)
            if len(big):
                i = int(big[0])
                raise TraceError(self.path, f"line {lineno[i]}: size {size[i]} bytes exceeds 1 GiB per request")
            limit = np.uint64(((1 << 64) - 1 - MAX_REQUEST_BYTES) // self.offset_unit)
            big = np.flatnonzero(off > limit)
            if len(big):
                i = int(big[0])
                raise TraceError(self.path, f"line {lineno[i]}: offset {off[i]} is beyond any 64-bit byte offset")
            if keep is not None:
                off, size, write = off[keep], size[keep], write[keep]
            first, count = _byte_range_pages(off * np.uint64(self.offset_unit), size)
            yield from _expand_requests(first, count, write, chunk)
            return
        col = cols[self.id_col]
        ids = self._uint_column(lineno, cols, self.id_col, "id") if self.id_is_num else _fnv1a64(*col)
        if keep is not None:
            ids, write = ids[keep], write[keep]
        rec = np.zeros(len(ids), dtype=RECORD_DTYPE)
        rec["kind"] = Kind.FILE_FD
        rec["page"] = ids
        rec["write"] = write
        yield rec


# ============================================================================================
# Entry point

_READERS = {
    "oraclegeneral": OracleGeneralTrace,
    "csv": CsvTrace,
    "vscsi": VscsiTrace,
    "native": NativeTrace,
}


def open_trace(path: str | os.PathLike, fmt: str, **opts: Any) -> Trace:
    """Open a recorded trace of format `fmt` (one of FORMATS) for streaming.

    Options: oraclegeneral: zero_size ("skip" | "keep" | "error"); csv: see CsvTrace; vscsi and
    native: none. Raises TraceError(path, problem) for an unknown format or option and for any
    problem found in the file at open time (see the module docstring).
    """
    path = os.fspath(path)
    key = str(fmt).lower().replace("-", "").replace("_", "")
    cls = _READERS.get(key)
    if cls is None:
        raise TraceError(path, f"unknown trace format {fmt!r} (known: {', '.join(FORMATS)})")
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "path")]
    for k in opts:
        if k not in allowed:
            known = ", ".join(allowed) if allowed else "none"
            raise TraceError(path, f"unknown option {k!r} for format {key} (--trace-opt keys: {known})")
    if not os.path.exists(path):
        raise TraceError(path, "no such file")
    if os.path.isdir(path):
        raise TraceError(path, "is a directory, not a trace file")
    if os.path.getsize(path) == 0:
        raise TraceError(path, "empty file")
    trace = cls(path, **opts)
    if trace.length == 0:
        raise TraceError(path, "holds no records (a header only)" if cls is NativeTrace else
                         "no requests: the file holds no record that touches a page")
    return trace
