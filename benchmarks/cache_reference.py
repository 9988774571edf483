"""Regenerate tests/data/cache_reference.json: libcachesim 0.3.5's miss ratios for the classic
cache algorithms on the shared traces, every object one unit (ignore_obj_size), at several
capacities. tests/test_plugins_reference.py checks that the reclaim_ext plug-ins, in plain-cache
mode, give exactly these numbers.

Run: python benchmarks/cache_reference.py [--out tests/data/cache_reference.json]
(needs the `bench` or `test` extra: libcachesim==0.3.5, and ../shared/traces beside the repo)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TRACES = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "traces"))

# plug-in name -> libcachesim class name
ALGORITHMS = {"lru": "LRU", "fifo": "FIFO", "clock": "Clock", "sieve": "Sieve", "arc": "ARC",
              "s3fifo": "S3FIFO", "2q": "TwoQ", "lfu": "LFU"}
# trace name -> (file, format, capacities in objects)
CASES = {
    "cloudPhysicsIO": ("cloudPhysicsIO.oracleGeneral.bin", "oraclegeneral", [100, 1000, 10000]),
    "twitter_cluster52": ("twitter_cluster52.csv.zst", "csv", [1000, 10000]),
}


def object_ids(path: str, fmt: str) -> np.ndarray:
    """The object id of every request, as reclaim_ext's plain-cache mode names objects."""
    from reclaim_ext.ext.cache import object_keys
    from reclaim_ext.trace import open_trace

    return np.concatenate([object_keys(c) for c in open_trace(path, fmt).chunks()])


def libcachesim_miss_ratio(ids: np.ndarray, algo: str, capacity: int) -> float:
    import libcachesim as lcs

    from reclaim_ext.bench.reference import write_oracle_general

    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "t.oracleGeneral.bin")
        write_oracle_general(ids, p)
        reader = lcs.TraceReader(p, lcs.TraceType.ORACLE_GENERAL_TRACE, lcs.ReaderInitParam(ignore_obj_size=True))
        mr, _ = getattr(lcs, algo)(capacity).process_trace(reader)
    return float(mr)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(HERE, "..", "tests", "data", "cache_reference.json"))
    ap.add_argument("--traces", default=TRACES, help="folder holding the shared traces")
    args = ap.parse_args(argv)
    import libcachesim

    out = {"libcachesim": getattr(libcachesim, "__version__", "0.3.5"), "unit": "objects (ignore_obj_size)",
           "algorithms": ALGORITHMS, "traces": {}}
    for name, (fname, fmt, caps) in CASES.items():
        ids = object_ids(os.path.join(args.traces, fname), fmt)
        entry = {"file": fname, "format": fmt, "requests": int(len(ids)), "miss_ratio": {}}
        for plug, algo in ALGORITHMS.items():
            entry["miss_ratio"][plug] = {str(c): libcachesim_miss_ratio(ids, algo, c) for c in caps}
            print(name, plug, entry["miss_ratio"][plug], file=sys.stderr)
        out["traces"][name] = entry
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=2)
        fh.write("\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
