"""Synthetic page-access workloads.

Every workload is a deterministic function of its parameters and `seed`: the same parameters give
the same trace, record for record, on every replay and whatever `chunk` the consumer asks for
(records are generated internally in fixed blocks of GENERATOR_BLOCK records and re-cut). Records
are produced block by block with numpy (Zipf ranks with a compiled guide-table sampler, CdfSampler,
that returns exactly np.searchsorted's ranks); only per-workload tables (a Zipf CDF and its guide,
rank-to-page permutations) are precomputed when the trace is made.

Sizes are in 4 KiB pages. The defaults are sized for a machine of 64 MiB (16384 pages) of memory:
footprints of one to a few times memory and about 1-2 M accesses.

Conventions shared by all workloads:
  * pid: 0 for single-process workloads; 0..procs-1 for `mixed`.
  * file kinds (FILE_FD, FILE_MMAP, FILE_EXEC): `file` is the file id, `page` the page index
    inside that file (pgoff).
  * ANON: `file` = 0 and `page` is the virtual page number (VPN) in the process's address space;
    anonymous regions start at VPN 0 (the address-space layout is not modelled).
  * `kind` parameters: "file" -> FILE_FD read()/write() through the page cache, "anon" -> ANON
    loads/stores, "mmap" -> FILE_MMAP loads/stores through a shared file mapping.
  * `write_ratio` is the probability that an access is a write()/store rather than a
    read()/load. Write flags come from their own random stream, so changing write_ratio never
    changes which pages are accessed.

Use `make_workload(name, seed=0, **params)`, or `WORKLOADS[name].make(seed, **params)`;
`parse_workload_params(name, ["k=v", ...])` converts command-line strings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
from llvmlite import ir as llvm_ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ..errors import TraceError
from ._util import check_chunk, rechunk
from .base import DEFAULT_CHUNK, Trace
from .record import RECORD_DTYPE, Kind

GENERATOR_BLOCK = 1 << 16
"""Records generated per internal block (the random streams are consumed block by block)."""

MAX_PAGES = 1 << 26
"""Largest page count any workload parameter accepts (256 GiB of 4 KiB pages)."""

MAX_ACCESSES = 1 << 40
"""Largest number of accesses a workload accepts."""

KIND_CHOICES = {"file": Kind.FILE_FD, "anon": Kind.ANON, "mmap": Kind.FILE_MMAP}

# Tags separating the independent random streams of one seed (numpy SeedSequence entropy words).
_TAG_WRITE = 0x57524954  # "WRIT": write flags
_TAG_TABLE = 0x5441424C  # "TABL": permutations drawn when the trace is made
_TAG_MAIN = 0x4D41494E  # "MAIN": per-access draws (except `zipf`, which follows gen_trace.py)


# --------------------------------------------------------------------------------------------
# Parameters and the registry


@dataclass(frozen=True)
class Param:
    """One workload parameter.

    `type` is int, float or str. Numeric parameters are checked against `minimum` (inclusive),
    `positive` (strictly greater than zero) and `maximum` (inclusive); str parameters against
    `choices`.
    """

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    positive: bool = False
    maximum: float | None = None


@dataclass(frozen=True)
class WorkloadSpec:
    """A named synthetic workload: its parameters and how to build it."""

    name: str
    summary: str
    params: list[Param]
    builder: Callable[..., Trace] = field(repr=False)

    @property
    def source(self) -> str:
        return f"workload {self.name}"

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.params)
        raise TraceError(self.source, f"unknown parameter {name!r} (known: {known})")

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def check(self, name: str, value: Any) -> Any:
        """Validate one parameter value (already of a Python type); return it normalized."""
        p = self.param(name)
        src = self.source
        if p.type is int:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)):
                raise TraceError(src, f"parameter {name} must be an integer, not {value!r}")
            if isinstance(value, (float, np.floating)):
                if not math.isfinite(value) or value != int(value):
                    raise TraceError(src, f"parameter {name} must be an integer, not {value!r}")
            value = int(value)
        elif p.type is float:
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise TraceError(src, f"parameter {name} must be a number, not {value!r}")
            value = float(value)
            if not math.isfinite(value):
                raise TraceError(src, f"parameter {name} must be finite, not {value!r}")
        else:
            if not isinstance(value, str):
                raise TraceError(src, f"parameter {name} must be a string, not {value!r}")
            if p.choices is not None and value not in p.choices:
                raise TraceError(
                    src, f"parameter {name} must be one of {', '.join(p.choices)}, not {value!r}"
                )
            return value
        if p.positive and value <= 0:
            raise TraceError(src, f"parameter {name} must be > 0, not {value!r}")
        if p.minimum is not None and value < p.minimum:
            raise TraceError(src, f"parameter {name} must be >= {p.minimum:g}, not {value!r}")
        if p.maximum is not None and value > p.maximum:
            raise TraceError(src, f"parameter {name} must be <= {p.maximum:g}, not {value!r}")
        return value

    def resolve(self, seed: int, overrides: dict[str, Any]) -> dict[str, Any]:
        """Defaults, overridden and validated; includes `seed`."""
        values = self.defaults()
        for k, v in overrides.items():
            values[k] = self.check(k, v)
        values["seed"] = self.check("seed", seed)
        return values

    def make(self, seed: int = 0, **overrides: Any) -> Trace:
        """Build the workload's trace. Raises TraceError("workload NAME", problem) on a bad
        parameter name or value."""
        values = self.resolve(seed, overrides)
        return self.builder(**values)


def _seed_param() -> Param:
    return Param("seed", int, 0, "random seed (non-negative); same seed, same trace", minimum=0)


def _kind_param(default: str = "file") -> Param:
    return Param(
        "kind",
        str,
        default,
        "how pages are touched: file (read()/write() via the page cache, FILE_FD), "
        "anon (anonymous loads/stores, ANON), mmap (shared file mapping loads/stores, FILE_MMAP)",
        choices=tuple(KIND_CHOICES),
    )


def _write_param(default: float = 0.0) -> Param:
    return Param(
        "write_ratio", float, default, "probability an access is a write()/store", minimum=0.0, maximum=1.0
    )


def _pages_param(name: str, default: int, help: str) -> Param:
    return Param(name, int, default, help, positive=True, maximum=MAX_PAGES)


def _accesses_param(default: int) -> Param:
    return Param("accesses", int, default, "total number of page accesses (records)", positive=True, maximum=MAX_ACCESSES)


# --------------------------------------------------------------------------------------------
# Building blocks


def zipf_cdf(n: int, alpha: float) -> np.ndarray:
    """The CDF of a Zipf(alpha) law over ranks 1..n, normalized so cdf[-1] == 1.0 exactly.

    Built the plain numpy way (float64 pmf = rank**-alpha, cumsum, divide by the last element),
    so np.searchsorted(cdf, u) reproduces the ranks of that construction bit for bit (the
    generators draw those ranks with CdfSampler, which returns exactly np.searchsorted's answer).
    """
    pmf = np.power(np.arange(1, n + 1, dtype=np.float64), -alpha)
    cdf = np.cumsum(pmf)
    cdf /= cdf[-1]
    return cdf


# Inverse-CDF sampling with a guide table (no binary search over the whole CDF).
#
# guide[j] = np.searchsorted(cdf, j / K, side="left") for j = 0..K, K a power of two. For u in
# [0, 1), j = floor(u * K) is exact (u * K only shifts the exponent), so j / K <= u < (j + 1) / K
# and, cdf being sorted, searchsorted(cdf, u) lies in [guide[j], guide[j + 1]]: every cdf entry
# before guide[j] is < j / K <= u, and cdf[guide[j + 1]] >= (j + 1) / K > u. A binary search of
# that (usually empty or one-entry) range with numpy's comparison (cdf[i] < u) gives numpy's
# answer exactly. With K >= len(cdf) the range holds len(cdf) / K <= 1 entries on average over u,
# whatever the law. u outside [0, 1) (never drawn by Generator.random) searches the whole CDF;
# NaN gives len(cdf), as numpy does (NaN sorts last).
#
# For a large CDF each draw touches up to three random cache lines (guide, cdf, table: 128 + 160
# + 160 MB at 20 M pages), and a search branch that waits on a cache miss stalls the CPU for the
# whole memory latency. So draws are done _SAMPLE_BLOCK at a time in passes, each pass prefetching
# the lines the next one reads: bucket -> prefetch guide; read guide -> prefetch cdf; search ->
# prefetch table; gather. The misses of a block then overlap instead of adding up.

_SAMPLE_BLOCK = 1024
_MIN_GUIDE = 1 << 10


@intrinsic
def _prefetch(typingctx, arr, idx):
    """Hint the CPU to bring the cache line of arr[idx] in (llvm.prefetch: no result, never
    faults). Only a hint: if the intrinsic cannot be emitted, nothing is."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        try:
            aryty = signature.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
            i8p = llvm_ir.IntType(8).as_pointer()
            i32 = llvm_ir.IntType(32)
            fnty = llvm_ir.FunctionType(llvm_ir.VoidType(), [i8p, i32, i32, i32])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
            builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])  # read, keep
        except Exception:  # pragma: no cover - an LLVM without the intrinsic: no hint
            pass
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True)
def _fill_guide(cdf, guide):
    """guide[j] = first index i with cdf[i] >= j / K (len(cdf) if none), K = len(guide) - 1;
    one merge pass over the sorted cdf."""
    n = len(cdf)
    k = len(guide) - 1
    i = 0
    for j in range(k + 1):
        t = j / k
        while i < n and cdf[i] < t:
            i += 1
        guide[j] = i


@njit(cache=True)
def _cdf_ranks_block(cdf, guide, u, start, stop, lo, hi, table):
    """lo[:stop-start] = np.searchsorted(cdf, u[start:stop], side="left"); hi is scratch.
    Prefetches table[rank] for the caller's gather."""
    n = len(cdf)
    last = max(n - 1, 0)
    tlast = max(len(table) - 1, 0)
    fk = float(len(guide) - 1)
    m = stop - start
    for i in range(m):  # bucket of each draw (hi holds it for now)
        x = u[start + i]
        j = int(x * fk) if (x >= 0.0 and x < 1.0) else -1
        hi[i] = j
        if j >= 0:
            _prefetch(guide, j)
    for i in range(m):  # its cdf range
        j = hi[i]
        if j >= 0:
            a = guide[j]
            lo[i] = a
            hi[i] = guide[j + 1]
            _prefetch(cdf, min(a, last))
        elif u[start + i] != u[start + i]:  # NaN: numpy puts it after every number
            lo[i] = n
            hi[i] = n
        else:  # outside [0, 1): the whole cdf
            lo[i] = 0
            hi[i] = n
    for i in range(m):  # the search
        a = lo[i]
        b = hi[i]
        x = u[start + i]
        while a < b:
            mid = (a + b) >> 1
            if cdf[mid] < x:
                a = mid + 1
            else:
                b = mid
        lo[i] = a
        _prefetch(table, min(a, tlast))


@njit(cache=True)
def _cdf_take(cdf, guide, u, table, out, ranks_only):
    """out[k] = table[np.searchsorted(cdf, u[k], side="left")] (out may be a strided view), or
    with `ranks_only` the rank itself (table is then only a prefetch target)."""
    m = len(u)
    nt = len(table)
    lo = np.empty(min(m, _SAMPLE_BLOCK), dtype=np.int64)
    hi = np.empty_like(lo)
    for start in range(0, m, _SAMPLE_BLOCK):
        stop = min(start + _SAMPLE_BLOCK, m)
        _cdf_ranks_block(cdf, guide, u, start, stop, lo, hi, table)
        for i in range(stop - start):
            r = lo[i]
            if ranks_only:
                out[start + i] = r
            else:
                if r >= nt:
                    raise IndexError("rank past the end of the table")
                out[start + i] = table[r]


def cdf_guide(cdf: np.ndarray) -> np.ndarray:
    """The guide table of a sorted (non-decreasing, NaN-free) float64 CDF for zipf_ranks: K + 1
    entries, K the smallest power of two >= len(cdf) (at least 1024)."""
    n = len(cdf)
    k = max(_MIN_GUIDE, 1 << max(n - 1, 0).bit_length())
    guide = np.empty(k + 1, dtype=np.int32 if n < 2**31 else np.int64)
    _fill_guide(cdf, guide)
    return guide


def zipf_ranks(cdf: np.ndarray, guide: np.ndarray, u: np.ndarray, table: np.ndarray | None = None) -> np.ndarray:
    """np.searchsorted(cdf, u, side="left") (int64), value for value, using guide = cdf_guide(cdf);
    with `table`, table[that] instead (a new array of table's dtype)."""
    cdf = np.ascontiguousarray(cdf, dtype=np.float64)
    u = np.ascontiguousarray(u, dtype=np.float64)
    if table is None:
        out = np.empty(len(u), dtype=np.int64)
        _cdf_take(cdf, guide, u, cdf, out, True)
    else:
        out = np.empty(len(u), dtype=table.dtype)
        _cdf_take(cdf, guide, u, table, out, False)
    return out


class CdfSampler:
    """Inverse-CDF sampling from one sorted float64 CDF: rank(u) = np.searchsorted(cdf, u),
    computed exactly but with a guide table built once (see zipf_ranks)."""

    def __init__(self, cdf: np.ndarray):
        self.cdf = np.ascontiguousarray(cdf, dtype=np.float64)
        self.guide = cdf_guide(self.cdf)

    def ranks(self, u: np.ndarray) -> np.ndarray:
        """np.searchsorted(self.cdf, u), int64."""
        return zipf_ranks(self.cdf, self.guide, u)

    def take(self, u: np.ndarray, table: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """table[np.searchsorted(self.cdf, u)], written into `out` (any 1-D view, e.g. a record
        field) if given, else into a new array of table's dtype."""
        if out is None:
            return zipf_ranks(self.cdf, self.guide, u, table)
        if len(out) != len(u):
            raise ValueError("out and u differ in length")
        _cdf_take(self.cdf, self.guide, np.ascontiguousarray(u, dtype=np.float64), table, out, False)
        return out


def zipf_ids(n_obj: int, n_req: int, alpha: float = 1.0, seed: int = 42) -> np.ndarray:
    """Zipf object ids, int64, 1-based (1..n_obj): rank = searchsorted(cdf, rng.random(n_req)),
    then ids = rng.permutation(n_obj)[rank] + 1, with rng = default_rng(seed).

    With n_obj=1_000_000, n_req=10_000_000, alpha=1.0, seed=42 this is the trace of
    `reclaim-ext bench` (bench/throughput.py). The `zipf` workload with pages=n_obj,
    accesses=n_req, alpha, seed touches page `ids - 1` in the same order.
    """
    src = "workload zipf"
    if n_obj <= 0 or n_obj > MAX_PAGES:
        raise TraceError(src, f"n_obj must be in 1..{MAX_PAGES}, not {n_obj}")
    if n_req <= 0:
        raise TraceError(src, f"n_req must be > 0, not {n_req}")
    if not alpha > 0:
        raise TraceError(src, f"alpha must be > 0, not {alpha}")
    if seed < 0:
        raise TraceError(src, f"seed must be >= 0, not {seed}")
    rng = np.random.default_rng(seed)
    sampler = CdfSampler(zipf_cdf(n_obj, alpha))
    u = rng.random(n_req)
    perm = rng.permutation(n_obj).astype(np.int64)  # drawn after the n_req uniforms
    ids = sampler.take(u, perm)
    ids += 1
    return ids


class _RankSampler:
    """Draws page indices 0..n-1: uniformly, or Zipf(alpha) with ranks scattered over the pages by
    a fixed random permutation (so the hottest pages are not simply the lowest indices)."""

    def __init__(self, n: int, alpha: float | None, table_rng: np.random.Generator):
        self.n = n
        if alpha is None:
            self.zipf = None
            self.perm = None
        else:
            self.zipf = CdfSampler(zipf_cdf(n, alpha))
            self.perm = table_rng.permutation(n).astype(np.uint64)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        if self.zipf is None:
            return rng.integers(0, self.n, size=size, dtype=np.uint64)
        return self.zipf.take(rng.random(size), self.perm)


def _table_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([_TAG_TABLE, seed])


def _main_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([_TAG_MAIN, seed])


def _write_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([_TAG_WRITE, seed])


def _writes(rng: np.random.Generator, n: int, ratio: float) -> np.ndarray:
    """Write flags for n accesses. Always consumes n draws, so the stream does not depend on the
    ratio's value (except the degenerate 0 and 1, which draw nothing and are exact)."""
    if ratio <= 0.0:
        return np.zeros(n, dtype=np.uint8)
    if ratio >= 1.0:
        return np.ones(n, dtype=np.uint8)
    return (rng.random(n) < ratio).astype(np.uint8)


class GeneratedTrace(Trace):
    """Base of the synthetic traces: generates GENERATOR_BLOCK records at a time.

    Subclasses implement `_start()` (fresh per-replay state, e.g. random generators) and
    `_block(state, start, stop)` (records start..stop-1 of the trace, as a new RECORD_DTYPE array).
    """

    def __init__(self, name: str, length: int, params: dict):
        super().__init__(name=name, length=length, params=dict(params))

    def _start(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _block(self, state: Any, start: int, stop: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _blocks(self) -> Iterator[np.ndarray]:
        state = self._start()
        assert self.length is not None
        for start in range(0, self.length, GENERATOR_BLOCK):
            yield self._block(state, start, min(start + GENERATOR_BLOCK, self.length))

    def chunks(self, chunk: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        """Replay the trace from the start in arrays of at most `chunk` records."""
        return rechunk(self._blocks(), check_chunk(chunk))


def _records(n: int, kind: int, pid: int = 0, file: int = 0) -> np.ndarray:
    rec = np.zeros(n, dtype=RECORD_DTYPE)
    rec["kind"] = kind
    if pid:
        rec["pid"] = pid
    if file:
        rec["file"] = file
    return rec


# --------------------------------------------------------------------------------------------
# zipf


class ZipfTrace(GeneratedTrace):
    """Independent Zipf(alpha) references over `pages` pages of one file (or one anonymous
    region), with ranks scattered over pages by a random permutation.

    The construction (that of zipf_ids): u = default_rng(seed).random(accesses);
    rank = searchsorted(cdf, u); perm = the same generator's permutation(pages) drawn *after* the
    accesses draws; object id = perm[rank] + 1. Record `page` = perm[rank] = id - 1 (0-based
    page index). The accesses draws are streamed block by block; the permutation is drawn once from
    a copy of the generator advanced past them (PCG64.advance), so nothing of size `accesses` is
    ever held in memory.
    """

    def __init__(self, pages: int, accesses: int, alpha: float, kind: str, write_ratio: float, seed: int):
        super().__init__(
            "zipf",
            accesses,
            dict(pages=pages, accesses=accesses, alpha=alpha, kind=kind, write_ratio=write_ratio, seed=seed),
        )
        self.kind = int(KIND_CHOICES[kind])
        self.write_ratio = write_ratio
        self.seed = seed
        self.zipf = CdfSampler(zipf_cdf(pages, alpha))
        bitgen = np.random.PCG64(seed)
        bitgen.advance(accesses)  # one 64-bit output per float64 drawn by random()
        self.perm = np.random.Generator(bitgen).permutation(pages).astype(np.uint64)

    def _start(self):
        return np.random.default_rng(self.seed), _write_rng(self.seed)

    def _block(self, state, start, stop):
        rng, wrng = state
        n = stop - start
        rec = _records(n, self.kind)
        self.zipf.take(rng.random(n), self.perm, out=rec["page"])
        rec["write"] = _writes(wrng, n, self.write_ratio)
        return rec


def _make_zipf(pages, accesses, alpha, kind, write_ratio, seed):
    return ZipfTrace(pages, accesses, alpha, kind, write_ratio, seed)


# --------------------------------------------------------------------------------------------
# loop


class LoopTrace(GeneratedTrace):
    """A cyclic scan: pages 0, 1, ..., pages-1, repeated `passes` times (record i touches page
    i % pages). Under LRU with memory smaller than `pages` every access misses."""

    def __init__(self, pages: int, passes: int, kind: str, write_ratio: float, seed: int):
        super().__init__(
            "loop",
            pages * passes,
            dict(pages=pages, passes=passes, kind=kind, write_ratio=write_ratio, seed=seed),
        )
        self.pages = pages
        self.kind = int(KIND_CHOICES[kind])
        self.write_ratio = write_ratio
        self.seed = seed

    def _start(self):
        return _write_rng(self.seed)

    def _block(self, wrng, start, stop):
        n = stop - start
        rec = _records(n, self.kind)
        rec["page"] = np.arange(start, stop, dtype=np.uint64) % np.uint64(self.pages)
        rec["write"] = _writes(wrng, n, self.write_ratio)
        return rec


def _make_loop(pages, passes, kind, write_ratio, seed):
    if pages * passes > MAX_ACCESSES:
        raise TraceError("workload loop", f"pages * passes = {pages * passes} exceeds {MAX_ACCESSES}")
    return LoopTrace(pages, passes, kind, write_ratio, seed)


# --------------------------------------------------------------------------------------------
# scan-hot

HOT_FILE = 0
SCAN_FILE = 1


class ScanHotTrace(GeneratedTrace):
    """A hot set read() repeatedly, interrupted by one-time sequential scans of fresh pages.

    The trace is a sequence of periods of `scan_every + scan_pages` records: `scan_every` read()s
    of the hot file (file 0, pages 0..hot_pages-1, uniform or Zipf), then one sequential read()
    scan of `scan_pages` pages of the scan file (file 1) that were never touched before: scan k
    (k = 0, 1, ...) covers scan-file pages k*scan_pages .. (k+1)*scan_pages - 1. The trace stops
    after `accesses` records (possibly inside a scan).

    With memory between hot_pages and scan_pages, plain LRU loses the whole hot set to each scan,
    while a two-list (active/inactive) LRU keeps the hot set on the active list and lets the
    use-once scan pages cycle through the inactive list.
    """

    def __init__(self, hot_pages, scan_pages, scan_every, accesses, hot_dist, alpha, seed):
        super().__init__(
            "scan-hot",
            accesses,
            dict(
                hot_pages=hot_pages, scan_pages=scan_pages, scan_every=scan_every,
                accesses=accesses, hot_dist=hot_dist, alpha=alpha, seed=seed,
            ),
        )
        self.scan_pages = scan_pages
        self.scan_every = scan_every
        self.period = scan_every + scan_pages
        self.seed = seed
        self.hot = _RankSampler(hot_pages, alpha if hot_dist == "zipf" else None, _table_rng(seed))

    def _start(self):
        return _main_rng(self.seed)

    def _block(self, rng, start, stop):
        n = stop - start
        pos = np.arange(start, stop, dtype=np.uint64)
        period = pos // np.uint64(self.period)
        within = pos % np.uint64(self.period)
        scan = within >= np.uint64(self.scan_every)
        hot_pages = self.hot.sample(rng, n)  # drawn for every position: chunking-independent
        rec = _records(n, Kind.FILE_FD)
        rec["file"] = np.where(scan, SCAN_FILE, HOT_FILE)
        scan_page = period * np.uint64(self.scan_pages) + (within - np.uint64(self.scan_every))
        rec["page"] = np.where(scan, scan_page, hot_pages)
        return rec


def _make_scan_hot(hot_pages, scan_pages, scan_every, accesses, hot_dist, alpha, seed):
    n_scans = accesses // (scan_every + scan_pages) + 1
    if n_scans * scan_pages > 2**32:
        raise TraceError("workload scan-hot", "the scans would need more than 2**32 pages of the scan file")
    return ScanHotTrace(hot_pages, scan_pages, scan_every, accesses, hot_dist, alpha, seed)


# --------------------------------------------------------------------------------------------
# shift


class ShiftTrace(GeneratedTrace):
    """A working set that moves: the first accesses//2 records touch pages 0..pages-1, the rest
    pages pages..2*pages-1 (disjoint), each half uniform or Zipf (each half with its own
    rank-to-page permutation). Tests how fast a policy drops a dead working set."""

    def __init__(self, pages, accesses, dist, alpha, kind, write_ratio, seed):
        super().__init__(
            "shift",
            accesses,
            dict(pages=pages, accesses=accesses, dist=dist, alpha=alpha, kind=kind, write_ratio=write_ratio, seed=seed),
        )
        self.pages = pages
        self.half = accesses // 2
        self.kind = int(KIND_CHOICES[kind])
        self.write_ratio = write_ratio
        self.seed = seed
        trng = _table_rng(seed)
        a = alpha if dist == "zipf" else None
        self.samplers = (_RankSampler(pages, a, trng), _RankSampler(pages, a, trng))

    def _start(self):
        return _main_rng(self.seed), _write_rng(self.seed)

    def _block(self, state, start, stop):
        rng, wrng = state
        n = stop - start
        second = np.arange(start, stop) >= self.half
        p0 = self.samplers[0].sample(rng, n)
        p1 = self.samplers[1].sample(rng, n) + np.uint64(self.pages)
        rec = _records(n, self.kind)
        rec["page"] = np.where(second, p1, p0)
        rec["write"] = _writes(wrng, n, self.write_ratio)
        return rec


def _make_shift(pages, accesses, dist, alpha, kind, write_ratio, seed):
    if accesses < 2:
        raise TraceError("workload shift", f"parameter accesses must be >= 2 (two halves), not {accesses}")
    return ShiftTrace(pages, accesses, dist, alpha, kind, write_ratio, seed)


# --------------------------------------------------------------------------------------------
# mixed

EXEC_FILE = 0
"""In `mixed`, file 0 is the shared executable; data files are 1..files."""

MIXED_CATEGORIES = ("anon", "read", "mmap", "exec")


class MixedTrace(GeneratedTrace):
    """Several processes sharing files, the way a small server looks to reclaim.

    Each record picks a process uniformly among 0..procs-1 and an access category with
    probabilities proportional to (anon_share, fd_share, mmap_share, exec_share):
      * anon: ANON load/store to the process's private anonymous memory (VPN 0..anon_pages-1;
        Zipf per process, each process with its own hot pages); store with write_ratio.
      * read: FILE_FD read()/write() of one of the shared data files 1..files (chosen uniformly),
        Zipf over its file_pages pages; write() with write_ratio.
      * mmap: FILE_MMAP load/store of the same data files through a shared mapping (same pages
        as the read() path: one page cache); store with write_ratio.
      * exec: FILE_EXEC instruction fetch from the executable (file 0, exec_pages pages, Zipf),
        mapped by every process; never a write.
    Footprint: procs*anon_pages + files*file_pages + exec_pages pages.
    """

    def __init__(self, procs, anon_pages, files, file_pages, exec_pages, accesses, alpha,
                 write_ratio, anon_share, fd_share, mmap_share, exec_share, seed):
        super().__init__(
            "mixed",
            accesses,
            dict(
                procs=procs, anon_pages=anon_pages, files=files, file_pages=file_pages,
                exec_pages=exec_pages, accesses=accesses, alpha=alpha, write_ratio=write_ratio,
                anon_share=anon_share, fd_share=fd_share, mmap_share=mmap_share,
                exec_share=exec_share, seed=seed,
            ),
        )
        self.procs = procs
        self.files = files
        self.write_ratio = write_ratio
        self.seed = seed
        shares = np.array([anon_share, fd_share, mmap_share, exec_share], dtype=np.float64)
        self.cum = np.cumsum(shares / shares.sum())
        self.cum[-1] = 1.0
        trng = _table_rng(seed)
        self.anon_zipf = CdfSampler(zipf_cdf(anon_pages, alpha))
        self.anon_perm = np.stack([trng.permutation(anon_pages) for _ in range(procs)]).astype(np.uint64)
        self.file_zipf = CdfSampler(zipf_cdf(file_pages, alpha))
        self.file_perm = np.stack([trng.permutation(file_pages) for _ in range(files)]).astype(np.uint64)
        self.exec = _RankSampler(exec_pages, alpha, trng)

    def _start(self):
        return _main_rng(self.seed), _write_rng(self.seed)

    def _block(self, state, start, stop):
        rng, wrng = state
        n = stop - start
        # Every record draws for every category, in this order and these sizes, so the streams
        # (hence the trace) never depend on which categories the records fall in.
        pid = rng.integers(0, self.procs, size=n)
        u_cat = rng.random(n)
        u_anon = rng.random(n)
        fidx = rng.integers(0, self.files, size=n)
        u_file = rng.random(n)
        u_exec = rng.random(n)  # self.exec.sample's draws: alpha is always given, so Zipf
        writes = _writes(wrng, n, self.write_ratio)

        # A record uses at most one of the three Zipf draws: rank only the draws that are used
        # (same samplers, so the same ranks as np.searchsorted), then build the records in one
        # compiled pass. Group g's values (0 anon, 1 read and mmap, 2 exec) are row g of `used`,
        # `rows` and `pages`, in record order.
        cat = np.empty(n, dtype=np.uint8)
        used = np.empty((3, n), dtype=np.float64)
        rows = np.empty((2, n), dtype=np.int64)
        na, nf, ne = _mixed_split(self.cum, u_cat, u_anon, u_file, u_exec, pid, fidx, cat, used, rows)
        pages = np.empty((3, n), dtype=np.uint64)
        _perm_rows_take(self.anon_perm, rows[0, :na], self.anon_zipf.ranks(used[0, :na]), pages[0, :na])
        _perm_rows_take(self.file_perm, rows[1, :nf], self.file_zipf.ranks(used[1, :nf]), pages[1, :nf])
        self.exec.zipf.take(used[2, :ne], self.exec.perm, out=pages[2, :ne])
        rec = np.empty(n, dtype=RECORD_DTYPE)
        _mixed_records(cat, pid, fidx, writes, pages, rec.view(_RECORD_WORDS).reshape(n, 2))
        return rec


@njit(cache=True)
def _mixed_split(cum, u_cat, u_anon, u_file, u_exec, pid, fidx, cat, used, rows):
    """MixedTrace's categories, and the draws and table rows of each group, compacted:
    cat[i] = np.searchsorted(cum, u_cat[i], side="right") (0 anon, 1 read, 2 mmap, 3 exec);
    used[0] and rows[0] get the u_anon and pid of the anon records, used[1] and rows[1] the u_file
    and fidx of the read and mmap ones, used[2] the u_exec of the exec ones, each in record order.
    Returns the three group sizes."""
    na = 0
    nf = 0
    ne = 0
    for i in range(len(u_cat)):
        # The number of cum entries <= u is searchsorted's answer, as those entries are a prefix:
        # cum is sorted (partial sums of shares >= 0), but for its last entry, set to 1.0, which
        # may fall a rounding below its predecessor; then both are > u, as u < 1.0.
        u = u_cat[i]
        c = 0
        for k in range(len(cum)):
            c += cum[k] <= u
        cat[i] = c
        # Branch-free compaction (the categories are random, a branch on them mispredicts):
        # write every group's slot, advance only the record's group.
        used[0, na] = u_anon[i]
        rows[0, na] = pid[i]
        used[1, nf] = u_file[i]
        rows[1, nf] = fidx[i]
        used[2, ne] = u_exec[i]
        na += c == 0
        nf += (c == 1) | (c == 2)
        ne += c == 3
    return na, nf, ne


@njit(cache=True)
def _perm_rows_take(perm, rows, ranks, out):
    """out[k] = perm[rows[k], ranks[k]]: the page of rank ranks[k] in table row rows[k]."""
    for k in range(len(ranks)):
        out[k] = perm[rows[k], ranks[k]]


_MIXED_KINDS = np.array([Kind.ANON, Kind.FILE_FD, Kind.FILE_MMAP, Kind.FILE_EXEC], dtype=np.uint64)

_RECORD_WORDS = np.dtype("<u8")
"""A record seen as two little-endian 64-bit words: pid | kind << 16 | write << 24 | file << 32,
then page (RECORD_DTYPE's layout; numba takes only native-order arrays, so a big-endian host
fails here instead of getting wrong records)."""
assert [RECORD_DTYPE.fields[f][1] for f in ("pid", "kind", "write", "file", "page")] == [0, 2, 3, 4, 8]


@njit(cache=True)
def _mixed_records(cat, pid, fidx, writes, pages, words):
    """MixedTrace's records from _mixed_split's categories and the groups' pages: record i, of
    category cat[i], takes the next page of its group. words: the records as (n, 2) words
    (_RECORD_WORDS); two stores a record are much faster than five field stores."""
    a = 0
    f = 0
    e = 0
    for i in range(len(cat)):
        c = cat[i]
        is_anon = c == 0
        is_exec = c == 3
        is_file = not (is_anon or is_exec)
        # Branch-free: each group's next page is read (always inside `pages`, as a + f + e = i < n,
        # though past a group's end it is garbage) and the record's one selected.
        pa = pages[0, a]
        pf = pages[1, f]
        pe = pages[2, e]
        file = np.uint64(fidx[i] + 1) * np.uint64(is_file)  # anon and exec: file 0 (EXEC_FILE)
        write = np.uint64(writes[i]) * np.uint64(not is_exec)  # an instruction fetch never writes
        words[i, 0] = (np.uint64(pid[i]) | (_MIXED_KINDS[c] << np.uint64(16)) | (write << np.uint64(24))
                       | (file << np.uint64(32)))
        words[i, 1] = pa if is_anon else (pe if is_exec else pf)
        a += is_anon
        f += is_file
        e += is_exec


def _make_mixed(procs, anon_pages, files, file_pages, exec_pages, accesses, alpha, write_ratio,
                anon_share, fd_share, mmap_share, exec_share, seed):
    if anon_share + fd_share + mmap_share + exec_share <= 0:
        raise TraceError("workload mixed", "the four *_share parameters must not all be 0")
    footprint = procs * anon_pages + files * file_pages + exec_pages
    if footprint > MAX_PAGES:
        raise TraceError("workload mixed", f"footprint of {footprint} pages exceeds {MAX_PAGES}")
    return MixedTrace(procs, anon_pages, files, file_pages, exec_pages, accesses, alpha, write_ratio,
                      anon_share, fd_share, mmap_share, exec_share, seed)


# --------------------------------------------------------------------------------------------
# tenants

TENANT_FILES = 1 << 10
"""In `tenants`, tenant i's file f is file i * TENANT_FILES + f."""


class TenantsTrace(GeneratedTrace):
    """Several tenants, each one built-in workload run as one process: tenant i is pid i, its
    files are renumbered i * TENANT_FILES + f, and its records are interleaved with the others'
    in proportion to their lengths (record j of a tenant with n records goes at its share
    (j + 0.5) / n of the trace; ties in tenant order), so the tenants start and end together.
    A tenant's own records keep their order. The tenants' traces are made once, in memory."""

    def __init__(self, specs: list[tuple[str, dict]], texts: dict, seed: int):
        parts = []
        for i, (name, params) in enumerate(specs):
            rec = WORKLOADS[name].make(seed + i, **params).to_array()
            if len(rec) and int(rec["pid"].max()) > 0:
                raise TraceError("workload tenants", f"tenant {i} ({name}) has more than one process: "
                                 "each tenant must be one (mixed: procs=1)")
            if len(rec) and int(rec["file"].max()) >= TENANT_FILES:
                raise TraceError("workload tenants", f"tenant {i} ({name}) uses file ids of {TENANT_FILES} "
                                 "or more")
            rec["pid"] = i
            rec["file"] += i * TENANT_FILES
            parts.append(rec)
        share = np.concatenate([(np.arange(len(r)) + 0.5) / len(r) for r in parts]) if parts else np.zeros(0)
        who = np.concatenate([np.full(len(r), i) for i, r in enumerate(parts)]) if parts else np.zeros(0, int)
        order = np.lexsort((who, share))
        self.records = np.concatenate(parts)[order] if parts else np.zeros(0, dtype=RECORD_DTYPE)
        super().__init__("tenants", len(self.records), dict(texts, seed=seed))

    def _start(self):
        return None

    def _block(self, state, start, stop):
        return self.records[start:stop].copy()


def parse_tenant(text: str, which: str) -> tuple[str, dict] | None:
    """A tenant given as 'WORKLOAD key=value ...' (spaces between items), or None for ''."""
    items = text.split()
    if not items:
        return None
    name, rest = items[0], items[1:]
    if name not in WORKLOADS or name == "tenants":
        known = ", ".join(w for w in WORKLOADS if w != "tenants")
        raise TraceError("workload tenants", f"{which}={text!r}: unknown workload {name!r} (known: {known})")
    if any(item.partition("=")[0] == "seed" for item in rest):
        raise TraceError("workload tenants", f"{which}={text!r}: a tenant's seed is the workload's seed + its index")
    try:
        return name, parse_workload_params(name, rest)
    except TraceError as e:
        raise TraceError("workload tenants", f"{which}={text!r}: {e.problem}") from None


def _make_tenants(a, b, c, d, seed):
    texts = dict(a=a, b=b, c=c, d=d)
    specs = [t for t in (parse_tenant(v, k) for k, v in texts.items()) if t is not None]
    if not specs:
        raise TraceError("workload tenants", "no tenant: give at least a=WORKLOAD")
    return TenantsTrace(specs, texts, seed)


# --------------------------------------------------------------------------------------------
# apps


class AppsTrace(GeneratedTrace):
    """Apps used in turn on a phone-sized memory (mobile app cycling). App i is process i with its
    own executable (file 2i, exec_pages), resources in a file (file 2i + 1, file_pages: loaded
    through a mapping, or with read() when res_kind is "file") and an anonymous heap (anon_pages).
    A session of app i is a launch, then use:
      * launch: every page of the executable fetched, the resources loaded and the heap written,
        in that order (a cold start faults all of it in; a warm one finds it);
      * use: `session` accesses, each to the heap (a load, or a store with write_ratio), the
        resources (a load) or the executable (a fetch), in proportion to their sizes, Zipf(alpha)
        within each, over pages ranked by a permutation of the app's own.
    The apps are chosen session by session with Zipf(app_alpha) popularity (app 0 the most used),
    `launches` sessions in all. Session k is made from its own generator (seed, k), so any stretch
    of the trace can be made on its own; the footprint is apps * (anon + file + exec) pages."""

    def __init__(self, apps, anon_pages, file_pages, exec_pages, session, launches, alpha, app_alpha, res_kind,
                 write_ratio, seed):
        self.size = anon_pages + file_pages + exec_pages
        self.span = self.size + session  # records per session
        super().__init__("apps", launches * self.span, dict(
            apps=apps, anon_pages=anon_pages, file_pages=file_pages, exec_pages=exec_pages, session=session,
            launches=launches, alpha=alpha, app_alpha=app_alpha, res_kind=res_kind, write_ratio=write_ratio,
            seed=seed))
        self.res_kind = int(KIND_CHOICES[res_kind])
        self.sizes = (anon_pages, file_pages, exec_pages)
        self.session = session
        self.write_ratio = write_ratio
        self.seed = seed
        trng = _table_rng(seed)
        self.order = CdfSampler(zipf_cdf(apps, app_alpha)).ranks(trng.random(launches))
        self.samplers = [_RankSampler(n, alpha, trng) for n in self.sizes]
        self.cum = np.cumsum(np.array(self.sizes, dtype=np.float64) / self.size)
        self.cum[-1] = 1.0

    def _session(self, k: int) -> np.ndarray:
        app = int(self.order[k])
        anon, file, exe = self.sizes
        rec = np.zeros(self.span, dtype=RECORD_DTYPE)
        rec["pid"] = app
        # the launch: executable, resources, heap
        rec["kind"][:exe] = Kind.FILE_EXEC
        rec["file"][:exe] = 2 * app
        rec["page"][:exe] = np.arange(exe, dtype=np.uint64)
        rec["kind"][exe:exe + file] = self.res_kind
        rec["file"][exe:exe + file] = 2 * app + 1
        rec["page"][exe:exe + file] = np.arange(file, dtype=np.uint64)
        rec["kind"][exe + file:self.size] = Kind.ANON
        rec["page"][exe + file:self.size] = np.arange(anon, dtype=np.uint64)
        rec["write"][exe + file:self.size] = 1
        # use
        rng = np.random.default_rng([self.seed, k])
        n = self.session
        cat = np.searchsorted(self.cum, rng.random(n), side="right")  # 0 heap, 1 resources, 2 executable
        pages = np.stack([sm.sample(rng, n) for sm in self.samplers])
        use = rec[self.size:]
        use["kind"] = np.array([Kind.ANON, self.res_kind, Kind.FILE_EXEC], dtype=np.uint8)[cat]
        use["file"] = np.where(cat == 0, 0, 2 * app + (cat == 1))
        use["page"] = pages[cat, np.arange(n)]
        use["write"] = (cat == 0) & _writes(rng, n, self.write_ratio)
        return rec

    def _start(self):
        return None

    def _block(self, state, start, stop):
        first, last = start // self.span, (stop - 1) // self.span
        rec = np.concatenate([self._session(k) for k in range(first, last + 1)])
        off = start - first * self.span
        return rec[off:off + stop - start]


def _make_apps(apps, anon_pages, file_pages, exec_pages, session, launches, alpha, app_alpha, res_kind, write_ratio,
               seed):
    footprint = apps * (anon_pages + file_pages + exec_pages)
    if footprint > MAX_PAGES:
        raise TraceError("workload apps", f"footprint of {footprint} pages exceeds {MAX_PAGES}")
    if launches * (anon_pages + file_pages + exec_pages + session) > MAX_ACCESSES:
        raise TraceError("workload apps", f"launches * (pages per app + session) exceeds {MAX_ACCESSES}")
    return AppsTrace(apps, anon_pages, file_pages, exec_pages, session, launches, alpha, app_alpha, res_kind,
                     write_ratio, seed)


# --------------------------------------------------------------------------------------------
# Registry


def _alpha(default: float, help: str = "Zipf exponent (> 0); larger is more skewed") -> Param:
    return Param("alpha", float, default, help, positive=True, maximum=100.0)


def _share(name: str, default: float, what: str) -> Param:
    return Param(name, float, default, f"relative weight of {what}", minimum=0.0)


WORKLOADS: dict[str, WorkloadSpec] = {
    spec.name: spec
    for spec in [
        WorkloadSpec(
            "zipf",
            "independent Zipf references over one file or anonymous region (peers.md gen_trace.py)",
            [
                _pages_param("pages", 65536, "distinct pages (footprint)"),
                _accesses_param(2_000_000),
                _alpha(1.0),
                _kind_param("file"),
                _write_param(0.0),
                _seed_param(),
            ],
            _make_zipf,
        ),
        WorkloadSpec(
            "loop",
            "cyclic sequential scan over a file larger than memory, repeated",
            [
                _pages_param("pages", 24576, "pages in the loop"),
                Param("passes", int, 40, "number of passes over the pages", positive=True, maximum=MAX_ACCESSES),
                _kind_param("file"),
                _write_param(0.0),
                _seed_param(),
            ],
            _make_loop,
        ),
        WorkloadSpec(
            "scan-hot",
            "a read() hot set interrupted by use-once sequential scans of fresh pages",
            [
                _pages_param("hot_pages", 8192, "pages in the hot set (file 0)"),
                _pages_param("scan_pages", 32768, "pages per one-time scan (file 1, fresh every scan)"),
                Param("scan_every", int, 50_000, "hot-set accesses between two scans", positive=True, maximum=MAX_ACCESSES),
                _accesses_param(1_000_000),
                Param("hot_dist", str, "uniform", "distribution within the hot set", choices=("uniform", "zipf")),
                _alpha(0.8, "Zipf exponent within the hot set (hot_dist=zipf only)"),
                _seed_param(),
            ],
            _make_scan_hot,
        ),
        WorkloadSpec(
            "shift",
            "a working set that moves to a disjoint set of pages halfway through",
            [
                _pages_param("pages", 12288, "pages per working set"),
                _accesses_param(1_000_000),
                Param("dist", str, "uniform", "distribution within each working set", choices=("uniform", "zipf")),
                _alpha(1.0, "Zipf exponent (dist=zipf only)"),
                _kind_param("file"),
                _write_param(0.0),
                _seed_param(),
            ],
            _make_shift,
        ),
        WorkloadSpec(
            "tenants",
            "up to four built-in workloads side by side, tenant i as process i (pair with --memcg pids=i)",
            [
                Param("a", str, "zipf pages=24576 accesses=1000000 alpha=0.9", "tenant 0: 'WORKLOAD key=value ...'"),
                Param("b", str, "loop pages=12288 passes=40", "tenant 1 ('' for none)"),
                Param("c", str, "", "tenant 2 ('' for none)"),
                Param("d", str, "", "tenant 3 ('' for none)"),
                _seed_param(),
            ],
            _make_tenants,
        ),
        WorkloadSpec(
            "apps",
            "apps launched and used in turn (mobile app cycling): per app an executable, mapped resources, a heap",
            [
                Param("apps", int, 8, "number of apps (pids 0..apps-1; app 0 the most used)", positive=True,
                      maximum=1 << 15),
                _pages_param("anon_pages", 1024, "anonymous heap pages per app (written at launch)"),
                _pages_param("file_pages", 1024, "pages of each app's mapped resources (file 2i + 1)"),
                _pages_param("exec_pages", 256, "pages of each app's executable (file 2i)"),
                Param("session", int, 22_000, "accesses per session after the launch", minimum=0,
                      maximum=MAX_ACCESSES),
                Param("launches", int, 40, "sessions in all", positive=True, maximum=MAX_ACCESSES),
                _alpha(0.9, "Zipf exponent within an app's heap, resources and executable"),
                Param("app_alpha", float, 0.8, "Zipf exponent of the apps' popularity (>= 0; 0: uniform)",
                      minimum=0.0, maximum=100.0),
                Param("res_kind", str, "mmap", "how the resources are loaded: through a mapping (FILE_MMAP) or "
                      "with read() (FILE_FD)", choices=("mmap", "file")),
                _write_param(0.3),
                _seed_param(),
            ],
            _make_apps,
        ),
        WorkloadSpec(
            "mixed",
            "processes with private anon memory sharing data files (read()/mmap) and an executable",
            [
                Param("procs", int, 4, "number of processes (pids 0..procs-1)", positive=True, maximum=1 << 16),
                _pages_param("anon_pages", 4096, "anonymous pages per process"),
                Param("files", int, 3, "number of shared data files (ids 1..files)", positive=True, maximum=1 << 16),
                _pages_param("file_pages", 8192, "pages per data file"),
                _pages_param("exec_pages", 512, "pages of the shared executable (file 0)"),
                _accesses_param(1_500_000),
                _alpha(0.9),
                _write_param(0.3),
                _share("anon_share", 0.4, "anonymous loads/stores"),
                _share("fd_share", 0.25, "read()/write() of data files"),
                _share("mmap_share", 0.2, "mmap loads/stores of data files"),
                _share("exec_share", 0.15, "instruction fetches from the executable"),
                _seed_param(),
            ],
            _make_mixed,
        ),
    ]
}


def _spec(name: str) -> WorkloadSpec:
    try:
        return WORKLOADS[name]
    except (KeyError, TypeError):
        raise TraceError(
            f"workload {name}", f"unknown workload (known: {', '.join(WORKLOADS)})"
        ) from None


def make_workload(name: str, seed: int = 0, **params: Any) -> Trace:
    """Build the synthetic workload `name` with `seed` and parameter overrides.

    Raises TraceError("workload NAME", problem) for an unknown workload (listing the known ones),
    an unknown parameter or a bad value.
    """
    return _spec(name).make(seed, **params)


def _parse_value(spec: WorkloadSpec, p: Param, text: str) -> Any:
    s = text.strip()
    if p.type is int:
        try:
            return int(s.replace("_", ""), 10)
        except ValueError:
            pass
        try:
            f = float(s.replace("_", ""))
        except ValueError:
            f = math.nan
        if math.isfinite(f) and f == int(f):
            return int(f)
        raise TraceError(spec.source, f"parameter {p.name}: {text!r} is not an integer")
    if p.type is float:
        try:
            return float(s.replace("_", ""))
        except ValueError:
            raise TraceError(spec.source, f"parameter {p.name}: {text!r} is not a number") from None
    return s


def parse_workload_params(name: str, items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Convert ["key=value", ...] (command-line style) into typed, validated parameters for
    workload `name`. Integers accept 1_000_000 and 1e6; errors name the parameter."""
    spec = _spec(name)
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise TraceError(spec.source, f"parameter {item!r} is not of the form key=value")
        p = spec.param(key)
        out[key] = spec.check(key, _parse_value(spec, p, text))
    return out
