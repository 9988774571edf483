"""A user policy's speed: the LRU plug-in (Python, public reclaim_ext API) in plain-cache mode,
against libcachesim 0.3.5's Python-hook PluginCache LRU at the same capacity, in the same run, on
the Zipf trace of benchmarks/throughput.py (Zipf 1.0 over 1M pages, seed 42; 10M requests by
default). Prints both rates, both miss ratios and the ratio of the rates.

Run: python benchmarks/user_policy.py [--accesses N] [--capacity PAGES]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import OrderedDict

import numpy as np

from reclaim_ext.bench.reference import write_oracle_general
from reclaim_ext.bench.throughput import build_trace
from reclaim_ext.ext.cache import run_cache
from reclaim_ext.policies import get_policy


def plugin_cache_lru(ids: np.ndarray, capacity: int) -> dict:
    import libcachesim as lcs

    def init_hook(params):
        return OrderedDict()

    def hit_hook(data, req):
        data.move_to_end(req.obj_id, last=True)

    def miss_hook(data, req):
        data[req.obj_id] = req.obj_size

    def eviction_hook(data, req):
        return data.popitem(last=False)[0]

    def remove_hook(data, obj_id):
        data.pop(obj_id, None)

    def free_hook(data):
        data.clear()

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "zipf.oracleGeneral.bin")
        write_oracle_general(ids, path)
        reader = lcs.TraceReader(path, lcs.TraceType.ORACLE_GENERAL_TRACE, lcs.ReaderInitParam(ignore_obj_size=True))
        cache = lcs.PluginCache(capacity, init_hook, hit_hook, miss_hook, eviction_hook, remove_hook,
                                free_hook, cache_name="Plugin_LRU")
        t0 = time.perf_counter()
        mr, _ = cache.process_trace(reader)
        wall = time.perf_counter() - t0
    return {"rate": len(ids) / wall, "wall_seconds": wall, "miss_ratio": mr}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accesses", type=int, default=10_000_000)
    ap.add_argument("--pages", type=int, default=1_000_000)
    ap.add_argument("--capacity", type=int, default=100_000)
    args = ap.parse_args(argv)
    ids, trace = build_trace(args.pages, args.accesses, 1.0, 42)
    ours = run_cache(trace, get_policy("lru"), args.capacity)
    peer = plugin_cache_lru(ids, args.capacity)
    print(f"Zipf(1.0) {args.accesses:,} requests over {args.pages:,} objects, capacity {args.capacity:,}")
    print(f"  reclaim_ext lru plug-in (cache mode)  {ours['accesses_per_second'] / 1e6:6.3f} M req/s  "
          f"wall {ours['wall_seconds']:6.1f} s  miss ratio {ours['miss_ratio']:.6f}")
    print(f"  libcachesim PluginCache LRU           {peer['rate'] / 1e6:6.3f} M req/s  "
          f"wall {peer['wall_seconds']:6.1f} s  miss ratio {peer['miss_ratio']:.6f}")
    print(f"  ratio (ours / PluginCache): {ours['accesses_per_second'] / peer['rate']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
