"""Attaching, replacing and detaching policies during a run (--switch AT:POLICY)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import invoke

from reclaim_ext.api import RunConfig, run
from reclaim_ext.ext.switch import CutTrace, parse_switch
from reclaim_ext.trace import ArrayTrace
from reclaim_ext.trace.record import make_records

ZIPF = {"accesses": 40_000, "pages": 4_000}


def test_cut_trace_ends_chunks_at_the_switch_points():
    r = make_records(10)
    r["page"] = np.arange(10)
    chunks = [c["page"].tolist() for c in CutTrace(ArrayTrace("t", r), [0, 3, 4, 8, 25]).chunks(4)]
    assert chunks == [[0, 1, 2], [3], [4, 5, 6, 7], [8, 9]]


@pytest.mark.parametrize("text", ["5", "x:lru", "-1:lru", "5:"])
def test_bad_switch_specs(text):
    from reclaim_ext.errors import ConfigError

    with pytest.raises(ConfigError, match="switch"):
        parse_switch(text)


def test_replacing_lru_by_lru_changes_nothing_in_cache_mode():
    """The new policy adopts the resident pages least recently used first: an LRU that takes
    over from an LRU continues exactly where it was."""
    base = run(RunConfig(policy="lru", cache=True, capacity=400, workload_params=ZIPF))
    sw = run(RunConfig(policy="lru", cache=True, capacity=400, workload_params=ZIPF,
                       switches=["15000:lru", "30000:lru"]))
    assert sw["misses"] == base["misses"]
    assert [e["kind"] for e in sw["exits"]] == ["UNREG", "UNREG", "DONE"]
    assert sw["exits"][0]["reason"] == "replaced at access 15000"


def test_detaching_in_cache_mode_leaves_the_fallback_lru():
    lru = run(RunConfig(policy="lru", cache=True, capacity=400, workload_params=ZIPF))
    fifo_then_none = run(RunConfig(policy="fifo", cache=True, capacity=400, workload_params=ZIPF,
                                   switches=["0:none"]))
    assert fifo_then_none["misses"] == lru["misses"]  # detached before the first access
    assert fifo_then_none["exit"]["kind"] == "UNREG"


def test_switching_to_a_deferring_policy_changes_no_classic_counter():
    plain = run(RunConfig(policy="classic", workload_params=ZIPF, memory=1024, check=True))
    sw = run(RunConfig(policy="classic", workload_params=ZIPF, memory=1024, check=True,
                       switches=["20000:examples/noop.py"]))
    assert (sw["misses"], sw["vmstat"]) == (plain["misses"], plain["vmstat"])


def test_switches_in_the_reclaim_core_keep_pages_and_both_drivers_agree():
    out = {}
    for mode in ("fast", "exact"):
        r = run(RunConfig(policy="lru", workload="mixed", memory=512, swap=2048, mode=mode, check=True,
                          workload_params=dict(procs=2, anon_pages=400, files=2, file_pages=600, exec_pages=100,
                                               accesses=30_000),
                          switches=["10000:s3fifo", "20000:none"]))
        assert [e["kind"] for e in r["exits"]] == ["UNREG", "UNREG"]
        assert r["ext"]["attached"] is False
        out[mode] = (r["misses"], r["vmstat"])
    assert out["fast"] == out["exact"]


def test_cli_switch():
    r = invoke("run", "--cache", "--capacity", "300", "--policy", "lru", "--switch", "10000:arc",
               "-p", "accesses=20000", "-p", "pages=3000", "--json", "-")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [e["reason"] for e in out["exits"]] == ["replaced at access 10000", "the run ended"]
    r = invoke("run", "--policy", "mglru", "--switch", "5:lru")
    assert r.exit_code == 2 and "cannot be switched" in r.stderr
