"""The guide-table inverse-CDF sampler (trace.generators.CdfSampler / zipf_ranks): it must return
exactly np.searchsorted(cdf, u, side="left") for every u, so generated traces keep every value."""

from __future__ import annotations

import numpy as np
import pytest

from reclaim_ext.trace import generators as gen
from reclaim_ext.trace.generators import CdfSampler, cdf_guide, make_workload, zipf_cdf, zipf_ranks
from reclaim_ext.trace.record import RECORD_DTYPE

ALPHAS = (0.5, 1.0, 1.5, 3.0)
SIZES = (1, 2, 3, 5, 1000, 4099, 200_003)


def assert_same(cdf, u):
    u = np.asarray(u, dtype=np.float64)
    s = CdfSampler(cdf)
    want = np.searchsorted(cdf, u, side="left")
    got = s.ranks(u)
    assert got.dtype == np.int64
    bad = np.flatnonzero(got != want)
    assert len(bad) == 0, f"u={u[bad[:5]]!r}: got {got[bad[:5]]}, numpy {want[bad[:5]]}"
    assert np.array_equal(zipf_ranks(s.cdf, s.guide, u), want)


def probes(cdf, rng, n_random=20_000):
    """Random u (with 0.0), every cdf entry, the doubles just below and above each, and u next to
    1.0 and to the guide's bucket edges j / K."""
    k = len(cdf_guide(cdf)) - 1
    inside = cdf[cdf < 1.0]
    near_one = 1.0 - np.arange(1, 200, dtype=np.float64) * np.finfo(np.float64).epsneg
    edges = np.arange(k + 1, dtype=np.float64)[:: max(1, k // 4096)] / k
    return np.concatenate(
        [
            [0.0, np.nextafter(0.0, 1.0), np.nextafter(1.0, 0.0)],
            rng.random(n_random),
            inside,
            np.nextafter(cdf, 0.0),
            np.nextafter(inside, 1.0),
            near_one,
            edges[edges < 1.0],
            np.nextafter(edges[1:], 0.0),
            np.nextafter(edges[edges < 1.0], 1.0),
        ]
    )


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("n", SIZES)
def test_ranks_equal_searchsorted(n, alpha):
    cdf = zipf_cdf(n, alpha)
    rng = np.random.default_rng(n * 31 + int(alpha * 10))
    u = probes(cdf, rng)
    if n > 10_000:  # keep the per-entry probes of the big CDF to a sample
        u = np.concatenate([u[:20_003], rng.choice(u[20_003:], 60_000)])
    assert_same(cdf, u)


def test_values_equal_to_cdf_entries_exactly():
    """u == cdf[i] must give i (side="left"), u just above gives i + 1 (unless a tie follows)."""
    cdf = zipf_cdf(5000, 1.0)
    s = CdfSampler(cdf)
    idx = np.arange(len(cdf))
    assert np.array_equal(s.ranks(cdf[:-1]), idx[:-1])
    assert np.array_equal(s.ranks(np.nextafter(cdf[:-1], 2.0)), idx[1:])
    assert np.array_equal(s.ranks(np.nextafter(cdf, 0.0)), idx)


def test_u_near_one_and_out_of_range():
    cdf = zipf_cdf(1000, 1.5)
    u = [np.nextafter(1.0, 0.0), 1.0, np.nextafter(1.0, 2.0), 2.0, np.inf, -0.0, -1e-300, -1.0, -np.inf, np.nan]
    assert_same(cdf, u)
    assert CdfSampler(cdf).ranks([np.nan])[0] == len(cdf)  # numpy sorts NaN last


def test_ties_and_entries_on_bucket_edges():
    """A CDF with repeated values, entries exactly on the guide's bucket edges j / K, and a last
    entry below 1.0 (so the search may end past the array)."""
    k = len(cdf_guide(np.zeros(8))) - 1
    cdf = np.sort(
        np.concatenate(
            [
                np.arange(0, k + 1, 7, dtype=np.float64) / k,  # on edges, including 0.0
                np.full(50, 0.5),
                np.full(20, 3 / 8),
                np.random.default_rng(1).random(3000) * 0.99,
            ]
        )
    )
    cdf = cdf[cdf < 0.995]
    u = probes(cdf, np.random.default_rng(2))
    assert_same(cdf, u)
    assert CdfSampler(cdf).ranks([0.999])[0] == len(cdf)


def test_extreme_alpha_underflows_to_ties_at_one():
    cdf = zipf_cdf(5000, 100.0)  # pmf underflows: most entries are exactly 1.0
    assert (cdf == 1.0).sum() > 4000
    assert_same(cdf, probes(cdf, np.random.default_rng(3)))


def test_guide_is_searchsorted_of_bucket_edges():
    for n, alpha in ((1, 1.0), (3, 3.0), (4099, 0.5), (70_000, 1.0)):
        cdf = zipf_cdf(n, alpha)
        guide = cdf_guide(cdf)
        k = len(guide) - 1
        assert k & (k - 1) == 0 and k >= n
        assert np.array_equal(guide, np.searchsorted(cdf, np.arange(k + 1) / k))


def test_take_gathers_into_new_array_or_view():
    cdf = zipf_cdf(3000, 1.0)
    s = CdfSampler(cdf)
    table = np.random.default_rng(4).permutation(3000).astype(np.uint64)
    u = np.random.default_rng(5).random(10_000)
    want = table[np.searchsorted(cdf, u)]
    got = s.take(u, table)
    assert got.dtype == np.uint64 and np.array_equal(got, want)
    rec = np.zeros(len(u), dtype=RECORD_DTYPE)
    rec["file"] = 7
    assert s.take(u, table, out=rec["page"]) is not None
    assert np.array_equal(rec["page"], want) and (rec["file"] == 7).all() and (rec["kind"] == 0).all()
    with pytest.raises(ValueError):
        s.take(u, table, out=np.empty(3, np.uint64))
    assert len(s.ranks(np.empty(0))) == 0
    with pytest.raises(IndexError):  # as table[np.searchsorted(...)] would
        s.take(u, table[:100])
    with pytest.raises(IndexError):  # u past the last cdf entry: rank len(cdf)
        CdfSampler(cdf * 0.5).take([0.75], table)


def test_big_cdf_random_draws():
    """The case the guide table is for: a multi-million-entry CDF (random u, as the generators
    draw them)."""
    cdf = zipf_cdf(3_000_000, 1.0)
    u = np.random.default_rng(6).random(300_000)
    assert_same(cdf, u)


class _SearchsortedSampler:
    """The reference: plain np.searchsorted, as the generators were written before the guide."""

    def __init__(self, cdf):
        self.cdf = cdf

    def ranks(self, u):
        return np.searchsorted(self.cdf, u)

    def take(self, u, table, out=None):
        res = table[np.searchsorted(self.cdf, u)]
        if out is not None:
            out[...] = res
            return out
        return res


ZIPF_WORKLOADS = [
    ("zipf", dict(pages=4000, accesses=150_000, alpha=0.5, write_ratio=0.3, kind="anon")),
    ("zipf", dict(pages=3, accesses=70_000, alpha=3.0)),
    ("scan-hot", dict(hot_pages=700, scan_pages=900, scan_every=5000, accesses=80_000, hot_dist="zipf", alpha=1.5)),
    ("shift", dict(pages=900, accesses=90_000, dist="zipf", alpha=1.0)),
    ("mixed", dict(anon_pages=300, file_pages=600, exec_pages=2, accesses=90_000, alpha=1.5)),
]


@pytest.mark.parametrize("name,params", ZIPF_WORKLOADS)
def test_workloads_unchanged_by_the_sampler(monkeypatch, name, params):
    fast = make_workload(name, seed=9, **params).to_array()
    monkeypatch.setattr(gen, "CdfSampler", _SearchsortedSampler)
    ref = make_workload(name, seed=9, **params).to_array()
    assert np.array_equal(fast, ref)
