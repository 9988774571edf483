"""The reclaim_ext plug-ins in plain-cache mode take exactly libcachesim 0.3.5's misses on the
shared traces (tests/data/cache_reference.json, written by benchmarks/cache_reference.py from
libcachesim itself), and exactly the misses of libcachesim run here and now on a generated trace."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from reclaim_ext.bench.reference import write_oracle_general
from reclaim_ext.ext.cache import run_cache
from reclaim_ext.policies import get_policy
from reclaim_ext.trace import ArrayTrace, Kind, open_trace
from reclaim_ext.trace.record import make_records

HERE = os.path.dirname(os.path.abspath(__file__))
TRACES = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "traces"))
with open(os.path.join(HERE, "data", "cache_reference.json")) as fh:
    REF = json.load(fh)

CASES = [
    pytest.param(trace, plug, int(cap), marks=[pytest.mark.slow] if entry["requests"] > 500_000 else [],
                 id=f"{trace}-{plug}-{cap}")
    for trace, entry in REF["traces"].items()
    for plug, caps in entry["miss_ratio"].items()
    for cap in caps
]


@pytest.mark.parametrize("trace,plugin,capacity", CASES)
def test_plugin_matches_libcachesim_reference(trace, plugin, capacity):
    entry = REF["traces"][trace]
    res = run_cache(open_trace(os.path.join(TRACES, entry["file"]), entry["format"]), get_policy(plugin), capacity,
                    check=True)
    assert res["accesses"] == entry["requests"]
    assert res["exit"]["kind"] == "DONE", res["exit"]
    expected = round(entry["miss_ratio"][plugin][str(capacity)] * entry["requests"])
    assert res["misses"] == expected, f"{plugin} at {capacity}: {res['misses']} misses, libcachesim {expected}"


@pytest.mark.parametrize("plugin", list(REF["algorithms"]))
def test_plugin_matches_libcachesim_on_a_fresh_trace(plugin, tmp_path):
    """Not only the stored numbers: a Zipf trace made now, libcachesim run now."""
    import libcachesim as lcs

    rng = np.random.default_rng(7)
    ids = (rng.zipf(1.2, 30_000) % 5000).astype(np.uint64)
    rec = make_records(len(ids))
    rec["kind"] = Kind.FILE_FD
    rec["page"] = ids
    path = tmp_path / "z.oracleGeneral.bin"
    write_oracle_general(ids, str(path))
    for cap in (50, 700):
        reader = lcs.TraceReader(str(path), lcs.TraceType.ORACLE_GENERAL_TRACE, lcs.ReaderInitParam(ignore_obj_size=True))
        mr, _ = getattr(lcs, REF["algorithms"][plugin])(cap).process_trace(reader)
        res = run_cache(ArrayTrace("z", rec), get_policy(plugin), cap, check=True)
        assert res["misses"] == round(mr * len(ids)), f"{plugin} at {cap}"
