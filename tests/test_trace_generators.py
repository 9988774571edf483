"""Synthetic workloads: determinism, parameters, and the documented shape of each workload."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

from reclaim_ext.errors import TraceError
from reclaim_ext.trace import RECORD_DTYPE, WORKLOADS, Kind, Trace, make_workload, parse_workload_params
from reclaim_ext.trace.generators import GENERATOR_BLOCK, zipf_ids

# Small sizes keep every test fast; the defaults are exercised once in test_defaults_meaningful.
SMALL = {
    "zipf": dict(pages=3000, accesses=150_000),
    "loop": dict(pages=1000, passes=5),
    "scan-hot": dict(hot_pages=500, scan_pages=2000, scan_every=10_000, accesses=100_000),
    "shift": dict(pages=800, accesses=100_000),
    "mixed": dict(anon_pages=300, file_pages=600, exec_pages=50, accesses=100_000),
    "apps": dict(apps=4, anon_pages=100, file_pages=120, exec_pages=30, session=2000, launches=30),
}


def arr(name, seed=0, **kw):
    params = dict(SMALL[name])
    params.update(kw)
    return make_workload(name, seed=seed, **params).to_array()


def test_registry_complete():
    assert set(WORKLOADS) == {"zipf", "loop", "scan-hot", "shift", "mixed", "tenants", "apps"}
    for name, spec in WORKLOADS.items():
        assert spec.name == name and spec.summary and "\n" not in spec.summary
        names = [p.name for p in spec.params]
        assert "seed" in names and len(names) == len(set(names))
        for p in spec.params:
            assert p.type in (int, float, str) and p.help
            assert spec.check(p.name, p.default) == p.default


@pytest.mark.parametrize("name", sorted(SMALL))
def test_deterministic_and_chunk_independent(name):
    t = make_workload(name, seed=7, **SMALL[name])
    assert isinstance(t, Trace) and t.name == name
    a = t.to_array()
    assert a.dtype == RECORD_DTYPE and len(a) == t.length
    assert np.array_equal(a, make_workload(name, seed=7, **SMALL[name]).to_array())
    assert np.array_equal(a, t.to_array())  # replay
    for chunk in (1000, GENERATOR_BLOCK, GENERATOR_BLOCK + 17):
        parts = list(t.chunks(chunk))
        assert all(0 < len(p) <= chunk for p in parts)
        assert all(len(p) == chunk for p in parts[:-1])
        assert np.array_equal(np.concatenate(parts), a)
    assert t.params["seed"] == 7


@pytest.mark.parametrize("name", ["zipf", "scan-hot", "shift", "mixed", "apps"])
def test_seed_changes_trace(name):
    assert not np.array_equal(arr(name, seed=1), arr(name, seed=2))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_records_valid(name):
    a = arr(name, seed=3)
    assert a["kind"].max() <= 3 and a["write"].max() <= 1
    anon = a["kind"] == Kind.ANON
    assert (a["file"][anon] == 0).all()
    assert (a["page"][anon] < 2**36).all() and (a["page"][~anon] < 2**32).all()


def test_defaults_meaningful():
    """Default sizes: ~1-2 M accesses and a footprint of 1-3x a 64 MiB (16384-page) memory."""
    for name, spec in WORKLOADS.items():
        t = spec.make(0)
        assert 900_000 <= t.length <= 2_000_000, name
    d = WORKLOADS["mixed"].defaults()
    footprint = d["procs"] * d["anon_pages"] + d["files"] * d["file_pages"] + d["exec_pages"]
    assert 2 * 16384 <= footprint <= 3 * 16384


# ---------------------------------------------------------------- zipf


def gen_trace_script(n_req, n_obj, alpha, seed):
    """peers.md Appendix A gen_trace.py, verbatim up to the saved ids."""
    rng = np.random.default_rng(seed)
    pmf = np.power(np.arange(1, n_obj + 1, dtype=np.float64), -alpha)
    cdf = np.cumsum(pmf)
    cdf /= cdf[-1]
    ids = np.searchsorted(cdf, rng.random(n_req)).astype(np.int64)
    perm = rng.permutation(n_obj).astype(np.int64)
    return perm[ids] + 1


@pytest.mark.parametrize("n_obj,n_req,alpha,seed", [(10_000, 200_000, 1.0, 42), (777, 70_001, 0.7, 5)])
def test_zipf_matches_gen_trace_script(n_obj, n_req, alpha, seed):
    ids = gen_trace_script(n_req, n_obj, alpha, seed)
    assert np.array_equal(zipf_ids(n_obj, n_req, alpha, seed), ids)
    t = make_workload("zipf", seed=seed, pages=n_obj, accesses=n_req, alpha=alpha)
    a = t.to_array()
    assert np.array_equal(a["page"], (ids - 1).astype(np.uint64))  # page = id - 1
    assert (a["kind"] == Kind.FILE_FD).all() and (a["write"] == 0).all() and (a["file"] == 0).all()


def test_zipf_kinds_and_writes():
    base = arr("zipf", seed=4)
    for kind, k in (("anon", Kind.ANON), ("mmap", Kind.FILE_MMAP), ("file", Kind.FILE_FD)):
        a = arr("zipf", seed=4, kind=kind, write_ratio=0.25)
        assert (a["kind"] == k).all()
        assert np.array_equal(a["page"], base["page"])  # writes never change which pages
        assert 0.23 < a["write"].mean() < 0.27
    assert arr("zipf", seed=4, write_ratio=1.0)["write"].all()


def test_zipf_skew():
    a = arr("zipf", seed=0, alpha=1.2)
    counts = np.sort(np.bincount(a["page"].astype(np.int64)))[::-1]
    assert counts[0] > 0.1 * len(a)  # rank 1 gets ~1/zeta(1.2) of 1/5.6 of the references


# ---------------------------------------------------------------- loop


def test_loop_exactly_cyclic():
    a = arr("loop", pages=1000, passes=5)
    assert len(a) == 5000
    assert np.array_equal(a["page"], np.tile(np.arange(1000, dtype=np.uint64), 5))
    assert (a["kind"] == Kind.FILE_FD).all() and (a["file"] == 0).all()
    assert (arr("loop", kind="anon")["kind"] == Kind.ANON).all()


# ---------------------------------------------------------------- scan-hot


def test_scan_hot_shape():
    p = SMALL["scan-hot"]
    a = arr("scan-hot", seed=9)
    assert len(a) == p["accesses"]
    assert (a["kind"] == Kind.FILE_FD).all() and (a["write"] == 0).all()
    period = p["scan_every"] + p["scan_pages"]
    pos = np.arange(len(a))
    scan = (pos % period) >= p["scan_every"]
    assert np.array_equal(a["file"] == 1, scan)
    hot = a["page"][~scan]
    assert hot.max() < p["hot_pages"] and len(np.unique(hot)) == p["hot_pages"]
    sp = a["page"][scan].astype(np.int64)
    # each scan is sequential over fresh pages: the scan file's pages never repeat
    assert len(np.unique(sp)) == len(sp)
    assert (np.diff(sp) == 1).all()
    assert sp[0] == 0


def test_scan_hot_zipf_hot_set():
    a = arr("scan-hot", hot_dist="zipf", alpha=1.0)
    hot = a["page"][a["file"] == 0].astype(np.int64)
    c = np.bincount(hot, minlength=500)
    assert c.max() > 10 * np.median(c)


def _lru_hits(keys, cap):
    od, hits = OrderedDict(), 0
    for k in keys:
        if k in od:
            hits += 1
            od.move_to_end(k)
        else:
            od[k] = None
            if len(od) > cap:
                od.popitem(last=False)
    return hits


def _two_list_hits(keys, cap):
    """Active/inactive LRU: a first touch enters inactive; a hit on inactive promotes to active;
    the active list is kept at most half of memory (its tail demoted to inactive)."""
    active, inactive, hits = OrderedDict(), OrderedDict(), 0
    for k in keys:
        if k in active:
            hits += 1
            active.move_to_end(k)
        elif k in inactive:
            hits += 1
            del inactive[k]
            active[k] = None
            if len(active) > cap // 2:
                inactive[active.popitem(last=False)[0]] = None
        else:
            inactive[k] = None
            if len(active) + len(inactive) > cap:
                inactive.popitem(last=False)
    return hits


def test_scan_hot_two_list_beats_lru():
    a = arr("scan-hot", seed=1)
    keys = (a["file"].astype(np.int64) << 40 | a["page"].astype(np.int64)).tolist()
    cap = 1000  # hot set 500 < memory 1000 < scan 2000
    lru_misses = len(keys) - _lru_hits(keys, cap)
    two_list_misses = len(keys) - _two_list_hits(keys, cap)
    # two-list: only compulsory misses (hot set once + every scan page); LRU refaults the hot set
    # after each of the 8 scans
    assert two_list_misses == 500 + 8 * 2000
    assert lru_misses >= two_list_misses + 7 * 500


# ---------------------------------------------------------------- shift


@pytest.mark.parametrize("dist", ["uniform", "zipf"])
def test_shift_halves_disjoint(dist):
    a = arr("shift", dist=dist, seed=2)
    half = len(a) // 2
    first, second = set(a["page"][:half].tolist()), set(a["page"][half:].tolist())
    assert not first & second
    assert max(first) < 800 and min(second) >= 800 and max(second) < 1600
    if dist == "uniform":
        assert len(first) == len(second) == 800


# ---------------------------------------------------------------- mixed


def test_mixed_shape():
    p = dict(SMALL["mixed"])
    a = arr("mixed", seed=5)
    d = WORKLOADS["mixed"].defaults() | p
    assert set(np.unique(a["pid"])) == set(range(d["procs"]))
    kinds = np.bincount(a["kind"], minlength=4) / len(a)
    assert np.allclose(kinds, [0.4, 0.2, 0.25, 0.15], atol=0.01)  # ANON, FILE_MMAP, FILE_FD, FILE_EXEC
    anon, ex = a[a["kind"] == Kind.ANON], a[a["kind"] == Kind.FILE_EXEC]
    assert (anon["file"] == 0).all() and anon["page"].max() < d["anon_pages"]
    assert (ex["file"] == 0).all() and ex["page"].max() < d["exec_pages"] and (ex["write"] == 0).all()
    for k in (Kind.FILE_FD, Kind.FILE_MMAP):
        f = a[a["kind"] == k]
        assert set(np.unique(f["file"])) == set(range(1, d["files"] + 1))
        assert f["page"].max() < d["file_pages"]
        assert 0.27 < f["write"].mean() < 0.33
    # shared files: the same page is reached through read() and through mmap, by several pids
    fd = a[a["kind"] == Kind.FILE_FD]
    mm = a[a["kind"] == Kind.FILE_MMAP]
    key = lambda r: set((r["file"].astype(np.int64) << 32 | r["page"].astype(np.int64)).tolist())
    assert len(key(fd) & key(mm)) > 0.5 * len(key(fd))
    assert len(np.unique(ex["pid"])) == d["procs"]


def mixed_reference(t):
    """MixedTrace's records made the plain numpy way (the generator as first written): every
    record gets an anon, a file and an exec page, the category picks one. Same random streams,
    same draws in the same order; ranks with np.searchsorted itself."""
    rng, wrng = t._start()
    kinds = np.array([Kind.ANON, Kind.FILE_FD, Kind.FILE_MMAP, Kind.FILE_EXEC], dtype=np.uint8)
    blocks = []
    for start in range(0, t.length, GENERATOR_BLOCK):
        n = min(start + GENERATOR_BLOCK, t.length) - start
        pid = rng.integers(0, t.procs, size=n)
        cat = np.searchsorted(t.cum, rng.random(n), side="right")
        anon_page = t.anon_perm[pid, np.searchsorted(t.anon_zipf.cdf, rng.random(n))]
        fidx = rng.integers(0, t.files, size=n)
        file_page = t.file_perm[fidx, np.searchsorted(t.file_zipf.cdf, rng.random(n))]
        exec_page = t.exec.perm[np.searchsorted(t.exec.zipf.cdf, rng.random(n))]
        if t.write_ratio <= 0.0:
            writes = np.zeros(n, dtype=np.uint8)
        elif t.write_ratio >= 1.0:
            writes = np.ones(n, dtype=np.uint8)
        else:
            writes = (wrng.random(n) < t.write_ratio).astype(np.uint8)
        rec = np.zeros(n, dtype=RECORD_DTYPE)
        rec["pid"] = pid
        rec["kind"] = kinds[cat]
        is_anon, is_exec = cat == 0, cat == 3
        rec["file"] = np.where(is_anon | is_exec, 0, fidx + 1)
        rec["page"] = np.where(is_anon, anon_page, np.where(is_exec, exec_page, file_page))
        rec["write"] = np.where(is_exec, 0, writes)
        blocks.append(rec)
    return np.concatenate(blocks)


MIXED_CASES = [
    (0, dict(anon_pages=300, file_pages=600, exec_pages=50, accesses=150_000)),
    (3, dict(procs=1, files=1, anon_pages=1, file_pages=2, exec_pages=1, accesses=70_000, write_ratio=0.0,
             alpha=0.5)),
    (11, dict(procs=300, files=40, anon_pages=2000, file_pages=5000, exec_pages=700, accesses=140_000,
              write_ratio=1.0, alpha=1.5, anon_share=0.0)),
    (5, dict(procs=7, anon_pages=1000, accesses=GENERATOR_BLOCK, fd_share=0, mmap_share=0, alpha=3.0)),
    # exec_share 0 with shares whose normalized partial sums round past 1.0 (cum[2] > cum[-1])
    (8, dict(procs=3, accesses=GENERATOR_BLOCK + 1, anon_share=22.701, fd_share=51.072, mmap_share=15.163,
             exec_share=0.0, alpha=0.9)),
    (2, dict(accesses=30_000, anon_share=0, fd_share=0, mmap_share=0, exec_share=1, exec_pages=9000)),
    (4, dict(accesses=30_000, anon_share=1, fd_share=0, mmap_share=0, exec_share=0, write_ratio=0.7)),
    (6, dict(accesses=30_000, anon_share=0, fd_share=0, mmap_share=2, exec_share=0, files=5)),
    (9, dict(accesses=1, procs=2)),
    # the largest pid (65535) and file id (65536)
    (10, dict(procs=1 << 16, files=1 << 16, anon_pages=2, file_pages=1, exec_pages=3, accesses=20_000)),
]


@pytest.mark.parametrize("seed,params", MIXED_CASES)
def test_mixed_equals_numpy_reference(seed, params):
    """The compiled mixed generator gives the plain numpy generator's records, every field, for
    any chunk size."""
    t = make_workload("mixed", seed=seed, **params)
    want = mixed_reference(t)
    assert len(want) == t.length
    for chunk in (7, 1000, GENERATOR_BLOCK, GENERATOR_BLOCK + 17):
        got = np.concatenate(list(t.chunks(chunk)))
        assert got.dtype == RECORD_DTYPE and len(got) == len(want)
        for name in RECORD_DTYPE.names:
            bad = np.flatnonzero(got[name] != want[name])
            assert len(bad) == 0, f"{name} differs at records {bad[:5]} (chunk {chunk})"
        assert got.tobytes() == want.tobytes()


# ---------------------------------------------------------------- parameters and errors


def test_unknown_workload_lists_known():
    with pytest.raises(TraceError) as e:
        make_workload("nope")
    msg = str(e.value)
    assert msg.startswith("workload nope:") and all(n in msg for n in WORKLOADS)


@pytest.mark.parametrize(
    "name,params,words",
    [
        ("zipf", dict(alpha=0), ["alpha", "> 0"]),
        ("zipf", dict(alpha=-1.0), ["alpha"]),
        ("zipf", dict(pages=0), ["pages", "> 0"]),
        ("zipf", dict(pages=-5), ["pages"]),
        ("zipf", dict(accesses=2.5), ["accesses", "integer"]),
        ("zipf", dict(kind="disk"), ["kind", "file, anon, mmap"]),
        ("zipf", dict(write_ratio=1.5), ["write_ratio", "<= 1"]),
        ("zipf", dict(write_ratio=-0.1), ["write_ratio", ">= 0"]),
        ("zipf", dict(pagez=10), ["unknown parameter 'pagez'", "pages"]),
        ("loop", dict(passes=0), ["passes"]),
        ("scan-hot", dict(scan_every=0), ["scan_every"]),
        ("scan-hot", dict(hot_dist="normal"), ["hot_dist"]),
        ("shift", dict(accesses=1), ["accesses", ">= 2"]),
        ("mixed", dict(procs=0), ["procs"]),
        ("mixed", dict(anon_share=0, fd_share=0, mmap_share=0, exec_share=0), ["share"]),
        ("mixed", dict(exec_share=-1), ["exec_share"]),
        ("zipf", dict(pages=True), ["pages", "integer"]),
    ],
)
def test_bad_parameters(name, params, words):
    with pytest.raises(TraceError) as e:
        make_workload(name, **params)
    assert e.value.source == f"workload {name}"
    for w in words:
        assert w in e.value.problem


def test_bad_seed():
    with pytest.raises(TraceError, match="seed"):
        make_workload("loop", seed=-1)


def test_parse_workload_params():
    got = parse_workload_params("zipf", ["pages=1_000", "accesses=2e6", "alpha=0.9", "kind=anon", "seed=3"])
    assert got == dict(pages=1000, accesses=2_000_000, alpha=0.9, kind="anon", seed=3)
    assert type(got["pages"]) is int and type(got["alpha"]) is float
    t = make_workload("zipf", **got)
    assert t.params["seed"] == 3 and t.params["kind"] == "anon"
    with pytest.raises(TraceError, match="parameter pages: '12x' is not an integer"):
        parse_workload_params("zipf", ["pages=12x"])
    with pytest.raises(TraceError, match="parameter alpha: 'hot' is not a number"):
        parse_workload_params("zipf", ["alpha=hot"])
    with pytest.raises(TraceError, match="alpha must be > 0"):
        parse_workload_params("zipf", ["alpha=0"])
    with pytest.raises(TraceError, match="key=value"):
        parse_workload_params("zipf", ["pages"])
    with pytest.raises(TraceError, match="unknown parameter 'x'"):
        parse_workload_params("loop", ["x=1"])
    with pytest.raises(TraceError, match="unknown workload"):
        parse_workload_params("zipff", [])


def test_spec_make_equals_make_workload():
    a = WORKLOADS["shift"].make(11, pages=100, accesses=5000).to_array()
    b = make_workload("shift", seed=11, pages=100, accesses=5000).to_array()
    assert np.array_equal(a, b)


@pytest.mark.slow
def test_zipf_full_size_matches_gen_trace_script():
    """The benchmark's exact trace: 10 M requests over 1 M objects, alpha 1.0, seed 42."""
    ids = gen_trace_script(10_000_000, 1_000_000, 1.0, 42)
    assert np.array_equal(zipf_ids(1_000_000, 10_000_000, 1.0, 42), ids)
    t = make_workload("zipf", seed=42, pages=1_000_000, accesses=10_000_000, alpha=1.0)
    pos = 0
    for c in t.chunks(1 << 20):
        assert np.array_equal(c["page"], (ids[pos : pos + len(c)] - 1).astype(np.uint64))
        pos += len(c)
    assert pos == len(ids)


def test_docs_cover_every_workload_parameter():
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "traces.md").read_text()
    for name, spec in WORKLOADS.items():
        assert f"### {name}" in doc
        for p in spec.params:
            assert f"| `{p.name}` |" in doc.split(f"### {name}", 1)[1], (name, p.name)


# ---------------------------------------------------------------- tenants


def test_tenants_interleave_in_proportion_as_separate_processes():
    t = WORKLOADS["tenants"].make(3, a="zipf pages=500 accesses=3000 kind=anon", b="loop pages=100 passes=10",
                                  c="scan-hot hot_pages=50 scan_pages=20 scan_every=30 accesses=500")
    rec = t.to_array()
    assert len(rec) == t.length == 3000 + 1000 + 500
    for i, (name, params) in enumerate([("zipf", dict(pages=500, accesses=3000, kind="anon")),
                                        ("loop", dict(pages=100, passes=10)),
                                        ("scan-hot", dict(hot_pages=50, scan_pages=20, scan_every=30, accesses=500))]):
        own = rec[rec["pid"] == i]
        alone = make_workload(name, seed=3 + i, **params).to_array()  # tenant i: seed + i, its order kept
        assert np.array_equal(own["page"], alone["page"]) and np.array_equal(own["kind"], alone["kind"])
        assert np.array_equal(own["file"], alone["file"] + i * 1024)
        # in proportion: after a fraction x of the trace, each tenant has done about x of its records
        where = np.flatnonzero(rec["pid"] == i)
        assert abs(where[len(where) // 2] / len(rec) - 0.5) < 0.01
    assert t.params["c"].startswith("scan-hot")


@pytest.mark.parametrize("params, words", [
    (dict(a="nosuch pages=3"), "unknown workload 'nosuch'"),
    (dict(a="zipf pages"), "'pages' is not of the form key=value"),
    (dict(a="zipf pages=abc"), "pages: 'abc' is not an integer"),
    (dict(a="zipf colour=3"), "unknown parameter 'colour'"),
    (dict(a="zipf seed=3"), "a tenant's seed"),
    (dict(a="mixed procs=2 accesses=1000"), "more than one process"),
    (dict(a="tenants"), "unknown workload 'tenants'"),
    (dict(a="", b=""), "no tenant"),
])
def test_tenants_bad_specs_name_the_problem(params, words):
    with pytest.raises(TraceError, match=words):
        WORKLOADS["tenants"].make(0, **params)


# ---------------------------------------------------------------- apps


def test_apps_sessions_launch_then_use_their_own_pages():
    """Each session is one app (one pid): its launch fetches the executable, loads the mapped
    resources and writes the heap, page by page in that order; its use touches only its own
    files and heap; app 0 is the most used, and every app has files of its own."""
    p = SMALL["apps"]
    a = arr("apps", seed=5)
    size = p["anon_pages"] + p["file_pages"] + p["exec_pages"]
    span = size + p["session"]
    assert len(a) == p["launches"] * span
    apps = []
    for k in range(p["launches"]):
        s = a[k * span:(k + 1) * span]
        app = int(s["pid"][0])
        apps.append(app)
        assert (s["pid"] == app).all()
        e, f = p["exec_pages"], p["file_pages"]
        launch = s[:size]
        assert (launch["kind"][:e] == Kind.FILE_EXEC).all() and (launch["file"][:e] == 2 * app).all()
        assert (launch["page"][:e] == np.arange(e)).all()
        assert (launch["kind"][e:e + f] == Kind.FILE_MMAP).all() and (launch["file"][e:e + f] == 2 * app + 1).all()
        assert (launch["page"][e:e + f] == np.arange(f)).all() and not launch["write"][:e + f].any()
        assert (launch["kind"][e + f:] == Kind.ANON).all() and launch["write"][e + f:].all()
        use = s[size:]
        files = use["file"][use["kind"] != Kind.ANON]
        assert set(files.tolist()) <= {2 * app, 2 * app + 1}
        assert not use["write"][use["kind"] != Kind.ANON].any()
        for kind, n in ((Kind.ANON, p["anon_pages"]), (Kind.FILE_MMAP, f), (Kind.FILE_EXEC, e)):
            sel = use["kind"] == kind
            assert sel.any() and (use["page"][sel] < n).all()
    counts = np.bincount(apps, minlength=p["apps"])
    assert counts[0] == counts.max() and (counts > 0).sum() >= 2


def test_apps_bad_sizes():
    with pytest.raises(TraceError, match="footprint"):
        make_workload("apps", apps=1 << 14, anon_pages=1 << 20)


def test_apps_resources_read_with_read_calls():
    a = arr("apps", seed=5, res_kind="file")
    m = arr("apps", seed=5)
    assert not (a["kind"] == Kind.FILE_MMAP).any() and (a["kind"] == Kind.FILE_FD).any()
    same = m["kind"] != Kind.FILE_MMAP
    assert np.array_equal(a[same], m[same]) and ((a["kind"] == Kind.FILE_FD) == ~same).all()
