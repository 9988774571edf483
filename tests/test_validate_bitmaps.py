"""Per-access miss bitmaps (issue 11): the model's record of which accesses missed, the stored
encoding, and the divergence table by reuse distance. No kernel needed: the host replay's own
bitmaps are checked in tests/test_validate_kernel.py."""

import numpy as np
import pytest

from reclaim_ext.api import RunConfig, run
from reclaim_ext.errors import ConfigError, ReclaimExtError
from reclaim_ext.trace import ArrayTrace, Kind
from reclaim_ext.trace.record import make_records
from reclaim_ext.validate import bitmaps
from reclaim_ext.validate.kernel import model_run


def _zipf_pages(n=6000, pages=600, seed=3):
    rng = np.random.default_rng(seed)
    w = 1.0 / np.arange(1, pages + 1) ** 0.9
    return rng.choice(pages, size=n, p=w / w.sum()).astype(np.uint64)


def _trace(pages, kind=Kind.FILE_FD):
    rec = make_records(len(pages))
    rec["page"], rec["kind"] = pages, kind
    rec["write"] = kind == Kind.ANON  # anon: written, so a page reclaimed goes to swap
    return ArrayTrace("t", rec)


def _bits(policy, pages, mode="fast", memory=2048, memcg="name=a,pids=0,max=150", kind=Kind.FILE_FD, swap=0):
    cfg = RunConfig(policy=policy, workload=None, memory=memory, mode=mode, swap=swap,
                    memcgs=[memcg] if memcg else [])
    out = run(cfg, trace=_trace(pages, kind), record_misses=True)
    return out["miss_bitmap"], out


def test_encode_decode_round_trip_and_the_set_count_is_checked():
    rng = np.random.default_rng(0)
    for n in (0, 1, 7, 8, 9, 1000):
        b = rng.random(n) < 0.3
        d = bitmaps.encode(b)
        assert d["n"] == n and d["set"] == int(b.sum())
        assert np.array_equal(bitmaps.decode(d), b)
    d = bitmaps.encode(np.array([True, False, True]))
    d["set"] = 1
    with pytest.raises(ValueError, match="2 bits set, the record says 1"):
        bitmaps.decode(d)


def test_worker_bitmap_is_least_significant_bit_first():
    assert bitmaps.from_worker(bytes([0b00000101, 0b1]), 9).tolist() == \
        [True, False, True, False, False, False, False, False, True]
    with pytest.raises(ValueError, match="1 bytes for 9 accesses"):
        bitmaps.from_worker(bytes([1]), 9)


def test_divergence_counts_by_hand():
    # pages 1 2 1 3 1 2: reuse distances -1 -1 1 -1 1 2 (distinct others since the last access)
    pages = np.array([1, 2, 1, 3, 1, 2])
    assert bitmaps.reuse_distances(pages).tolist() == [-1, -1, 1, -1, 1, 2]
    kernel = np.array([1, 1, 0, 1, 1, 1], bool)
    model = np.array([1, 1, 0, 1, 0, 0], bool)
    div = bitmaps.divergence(pages, [kernel], [model], capacity=2)
    # capacity 2: edges round(FRACTIONS * 2) = 0, 1, 2, 3, 4, 8 → distance 1 in [1, 2), 2 in [2, 3)
    rows = {(r["lo"], r["hi"]): r for r in div["buckets"] if r["accesses"]}
    assert rows[(None, None)]["accesses"] == 3 and rows[(None, None)]["kernel_only"] == 0
    assert rows[(1, 2)]["accesses"] == 2 and rows[(1, 2)]["kernel_only"] == 1 and rows[(1, 2)]["model_only"] == 0
    assert rows[(2, 3)]["accesses"] == 1 and rows[(2, 3)]["kernel_only"] == 1
    assert div["total"] == {"accesses": 6, "kernel_misses": 5, "model_misses": 3, "kernel_only": 2,
                            "model_only": 0}
    best = bitmaps.largest_divergence(div)
    assert (best["lo"], best["hi"]) in ((1, 2), (2, 3))
    with pytest.raises(ValueError, match="bitmaps of 5 and 6 accesses"):
        bitmaps.divergence(pages, [kernel[:5]], [model], capacity=2)


@pytest.mark.parametrize("policy", ["classic", "mglru"])
def test_model_bitmap_counts_the_misses_and_both_drivers_agree(policy):
    pages = _zipf_pages()
    fast, out = _bits(policy, pages)
    exact, out_exact = _bits(policy, pages, mode="exact")
    assert len(fast) == len(pages)
    assert int(fast.sum()) == out["misses"] > len(np.unique(pages))  # the limit made misses beyond first touches
    assert np.array_equal(fast, exact)
    # every first touch misses
    _, first = np.unique(pages, return_index=True)
    assert fast[first].all()


@pytest.mark.parametrize("kind", [Kind.FILE_FD, Kind.ANON])
def test_without_pressure_exactly_the_first_touches_miss(kind):
    pages = _zipf_pages(n=3000, pages=300)
    bits, out = _bits("classic", pages, memcg=None, memory=4096, kind=kind)
    expect = np.zeros(len(pages), bool)
    expect[np.unique(pages, return_index=True)[1]] = True
    assert np.array_equal(bits, expect) and out["misses"] == len(np.unique(pages))


def test_model_run_gives_the_bitmap_of_its_misses():
    pages = _zipf_pages()
    m = model_run(pages, 600, 150, "pread", "classic", 0, 60)
    assert int(m["_bitmap"].sum()) == m["misses"]


def test_record_misses_errors():
    with pytest.raises(ConfigError, match="not in plain-cache mode"):
        run(RunConfig(policy="lru", workload=None, cache=True, capacity=100), trace=_trace(_zipf_pages(100)), record_misses=True)
    from reclaim_ext.api import build_simulator

    sim = build_simulator(RunConfig(policy="classic", workload=None, memory=1024))
    with pytest.raises(ReclaimExtError, match="record_misses was not called"):
        sim.miss_bitmap()


def test_store_and_load_give_the_bitmaps_back(tmp_path):
    pages = _zipf_pages(n=2000, pages=200)
    k1 = np.random.default_rng(1).random(2000) < 0.2
    m1 = np.random.default_rng(2).random(2000) < 0.2
    m2 = np.random.default_rng(3).random(2000) < 0.2
    raw = np.packbits(k1, bitorder="little").tobytes()
    rec, div = bitmaps.compare_bitmaps(pages, [raw, raw], {100: m1, 101: m2}, [100, 101], 101)
    assert div["runs"] == 2 and div["total"]["kernel_misses"] == k1.sum()
    assert div["total"]["model_misses"] == (m1.sum() + m2.sum()) / 2
    b = bitmaps.load({"bitmaps": rec})
    assert np.array_equal(b.kernel[1], k1) and np.array_equal(b.model[0], m1) and np.array_equal(b.model[1], m2)
    assert np.array_equal(b.model_calibrated, m2) and b.run_model_max == [100, 101]
    suite = bitmaps.load({"results": [{"trace": "z", "access": "pread", "limit_pages": 9, "bitmaps": rec},
                                      {"trace": "old", "access": "pread", "limit_pages": 9}]})
    assert list(suite) == ["z pread 9"]
    assert bitmaps.compare_bitmaps(pages, [raw, None], {100: m1}, [100, 100], 100) is None
    with pytest.raises(ValueError, match="no bitmaps"):
        bitmaps.load({"misses": 3})
    lines = bitmaps.table_lines(div)
    assert lines[0].strip().startswith("reuse distance (C = 101 pages)") and lines[-1].strip().startswith("all")
