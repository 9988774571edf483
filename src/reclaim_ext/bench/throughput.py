"""Throughput benchmark: classic and MGLRU fast mode against libCacheSim's LRU on the same Zipf trace.

The trace is peers.md's: Zipf(1.0) over 1M pages, 10M read() accesses (numpy seed 42, ranks
permuted onto ids). reclaim-ext replays it with each policy (default classic and mglru) at memory = 10% of the pages;
libcachesim 0.3.5 (the `bench` extra) replays the same ids with LRU at the same capacity, in the
same process, timed the same way (replay call only). Prints both rates and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time

import numpy as np

from ..api import RunConfig, run
from ..trace import ArrayTrace, Kind, zipf_ids
from ..trace.record import make_records
from .reference import write_oracle_general


def build_trace(pages: int, accesses: int, alpha: float, seed: int) -> tuple[np.ndarray, ArrayTrace]:
    ids = zipf_ids(pages, accesses, alpha, seed)
    rec = make_records(len(ids))
    rec["kind"] = Kind.FILE_FD
    rec["page"] = ids - 1
    return ids, ArrayTrace("zipf-bench", rec, {"pages": pages, "accesses": accesses, "alpha": alpha, "seed": seed})


def libcachesim_lru(ids: np.ndarray, capacity: int) -> dict | None:
    """Replay ids through libcachesim's LRU (C++ replay); None if libcachesim is not installed."""
    try:
        import libcachesim as lcs
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "zipf.oracleGeneral.bin")
        write_oracle_general(ids, path)
        reader = lcs.TraceReader(path, lcs.TraceType.ORACLE_GENERAL_TRACE, lcs.ReaderInitParam(ignore_obj_size=True))
        cache = lcs.LRU(capacity)
        t0 = time.perf_counter()
        mr, _ = cache.process_trace(reader)
        wall = time.perf_counter() - t0
    return {"algo": "libcachesim LRU", "wall_seconds": wall, "requests_per_second": len(ids) / wall, "miss_ratio": mr}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="reclaim-ext bench", description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=1_000_000)
    ap.add_argument("--accesses", type=int, default=10_000_000)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--memory-fraction", type=float, default=0.10)
    ap.add_argument("--policy", default="classic,mglru", help="comma-separated policies to time")
    ap.add_argument("--json", dest="json_out", help="write the results as JSON to this file ('-' = stdout)")
    args = ap.parse_args(argv)
    if args.pages <= 0 or args.accesses <= 0 or not 0 < args.memory_fraction <= 1:
        ap.error("--pages and --accesses must be > 0 and --memory-fraction in (0, 1]")
    ids, trace = build_trace(args.pages, args.accesses, args.alpha, args.seed)
    memory = int(args.pages * args.memory_fraction)
    policies = [p.strip() for p in args.policy.split(",") if p.strip()]
    runs = []
    for policy in policies:
        res = run(RunConfig(policy=policy, workload=None, memory=memory, swap=0), trace=trace)
        runs.append({
            "algo": f"reclaim-ext {policy} (fast)", "policy": policy, "wall_seconds": res["wall_seconds"],
            "requests_per_second": res["accesses_per_second"], "miss_ratio": res["miss_ratio"],
        })
    peer = libcachesim_lru(ids, memory)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for r in runs:
        r["ratio"] = r["requests_per_second"] / peer["requests_per_second"] if peer else None
    out = {"trace": trace.params, "memory_pages": memory, "runs": runs, "ours": runs[0], "peer": peer,
           "ratio": runs[0]["ratio"], "max_rss_mib": rss_mib}
    if args.json_out == "-":
        print(json.dumps(out, indent=2))
        return 0
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(out, fh, indent=2)
    print(f"trace: Zipf({args.alpha}) {args.accesses:,} reads over {args.pages:,} pages; memory {memory:,} pages")
    for r in runs + ([peer] if peer else []):
        print(f"  {r['algo']:28s} {r['requests_per_second'] / 1e6:6.2f} M req/s  "
              f"wall {r['wall_seconds']:6.2f} s  miss ratio {r['miss_ratio']:.4f}")
    if peer:
        for r in runs:
            print(f"  ratio ({r['policy']} / libCacheSim LRU): {r['ratio']:.2f}x")
    else:
        print("  libcachesim not installed (pip install -e .[bench]): no peer rate", file=sys.stderr)
    print(f"  peak RSS of this process: {rss_mib:.0f} MiB")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
