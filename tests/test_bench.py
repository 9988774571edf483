"""The benchmark command and the plain-LRU reference used for contrast."""

import json

import numpy as np
from click.testing import CliRunner

from reclaim_ext.bench.reference import lru_misses
from reclaim_ext.cli import main
from reclaim_ext.trace import ArrayTrace, Kind
from reclaim_ext.trace.record import make_records


def _reads(pages):
    r = make_records(len(pages))
    r["kind"] = Kind.FILE_FD
    r["page"] = pages
    return ArrayTrace("t", r)


def test_lru_reference_counts_misses_of_a_plain_lru():
    # capacity 2: 1 2 1 3 2 -> miss miss hit miss(evict 2) miss(evict 1)
    assert lru_misses(_reads([1, 2, 1, 3, 2]), 2) == 4
    assert lru_misses(_reads([1, 2, 1, 3, 2]), 3) == 3


def test_lru_reference_keeps_anon_and_file_pages_apart():
    r = make_records(2)
    r["kind"] = [Kind.ANON, Kind.FILE_FD]
    r["page"] = [5, 5]
    assert lru_misses(ArrayTrace("t", r), 10) == 2


def test_bench_command_reports_rates_and_miss_ratio():
    res = CliRunner().invoke(main, ["bench", "--pages", "20000", "--accesses", "50000", "--json", "-"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["memory_pages"] == 2000 and out["warmup_accesses"] == 50000  # the default, at most the trace
    assert out["ours"]["requests_per_second"] > 0
    assert 0 < out["ours"]["miss_ratio"] < 1
    # libcachesim is in the test extra: the peer ran on the same ids at the same capacity
    assert 0 < out["peer"]["miss_ratio"] < 1
    assert np.isclose(out["ratio"], out["ours"]["requests_per_second"] / out["peer"]["requests_per_second"])


def test_bench_warm_up_reaches_reclaim():
    # at the benchmark's own memory (all 20,000 pages here) the warm-up's 20,000 accesses would fit,
    # and reclaim's compiled code would first load, or compile, inside the first timed replay
    res = CliRunner().invoke(main, ["bench", "--pages", "20000", "--accesses", "40000", "--memory-fraction", "1",
                                    "--warmup", "20000", "--json", "-"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["memory_pages"] == 20000 and out["warmup"]["memory_pages"] == 2000
    assert set(out["warmup"]["kswapd_wakeups"]) == {"classic", "mglru"}
    assert min(out["warmup"]["kswapd_wakeups"].values()) > 0
    res = CliRunner().invoke(main, ["bench", "--pages", "20000", "--accesses", "40000", "--warmup", "0", "--json", "-"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["warmup"] == {"memory_pages": 0, "kswapd_wakeups": {}}


def test_bench_rejects_bad_sizes():
    res = CliRunner().invoke(main, ["bench", "--pages", "0"])
    assert res.exit_code == 2
    res = CliRunner().invoke(main, ["bench", "--warmup", "-1"])
    assert res.exit_code == 2 and "--warmup -1: must be >= 0" in res.output
