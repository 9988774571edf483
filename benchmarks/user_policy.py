"""A user policy's speed in plain-cache mode, against libcachesim 0.3.5 in the same run, on the
Zipf trace of benchmarks/throughput.py (Zipf 1.0 over 1M pages, seed 42; 10M requests by
default), all at the same capacity:

  * the LRU plug-in (Python, public reclaim_ext API) against libcachesim's Python-hook
    PluginCache LRU;
  * the SIEVE plug-in (Python; it promises no victims ahead, so the core calls it once per miss:
    evict, removed, added, and accessed once per run of hits) against the same SIEVE written as
    PluginCache hooks (`plugin_cache_sieve`);
  * the compiled plug-ins (reclaim_ext.ext.compiled: numba hooks run by the core's compiled
    loop) lru-compiled and s3fifo-compiled against libcachesim's native LRU and S3FIFO.

Prints rates (each the best of --repeat runs, every contender alike), miss ratios and the ratios
of the rates. The compiled rates are warm: the compiled loop is compiled (or loaded from numba's
on-disk cache) when the cache is created, before the timed run; the first compile (in a
subprocess with an empty numba cache) and the load from the cache are printed separately.
libcachesim reads an oracleGeneral file of the same requests.

Run: python benchmarks/user_policy.py [--accesses N] [--pages N] [--capacity PAGES] [--repeat R]
                                      [--no-python]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict


from reclaim_ext.bench.reference import write_oracle_general
from reclaim_ext.bench.throughput import build_trace
from reclaim_ext.ext.cache import CacheSim, run_cache
from reclaim_ext.policies import get_policy

COMPILED = (("lru-compiled", "LRU"), ("s3fifo-compiled", "S3FIFO"))  # ours, libcachesim's native peer


def _reader(path: str):
    import libcachesim as lcs

    return lcs.TraceReader(path, lcs.TraceType.ORACLE_GENERAL_TRACE, lcs.ReaderInitParam(ignore_obj_size=True))


def plugin_cache_lru(path: str, n: int, capacity: int) -> dict:
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

    reader = _reader(path)
    cache = lcs.PluginCache(capacity, init_hook, hit_hook, miss_hook, eviction_hook, remove_hook,
                            free_hook, cache_name="Plugin_LRU")
    t0 = time.perf_counter()
    mr, _ = cache.process_trace(reader)
    wall = time.perf_counter() - t0
    return {"rate": n / wall, "wall_seconds": wall, "miss_ratio": mr}


class _SieveData:
    """SIEVE's state for PluginCache: a doubly linked list (head = newest) in two dicts, the
    visited set and the hand, as plugins/sieve.py keeps it in an IndexedList."""

    __slots__ = ("prev", "next", "head", "tail", "visited", "hand")

    def __init__(self):
        self.prev, self.next, self.visited = {}, {}, set()
        self.head = self.tail = self.hand = None

    def unlink(self, h: int) -> None:
        p, n = self.prev.pop(h), self.next.pop(h)
        if p is None:
            self.head = n
        else:
            self.next[p] = n
        if n is None:
            self.tail = p
        else:
            self.prev[n] = p


def plugin_cache_sieve(path: str, n: int, capacity: int) -> dict:
    """libcachesim's PluginCache run by SIEVE in Python hooks (the rules of plugins/sieve.py)."""
    import libcachesim as lcs

    def init_hook(params):
        return _SieveData()

    def hit_hook(d, req):
        d.visited.add(req.obj_id)

    def miss_hook(d, req):
        h = req.obj_id
        d.prev[h], d.next[h] = None, d.head
        if d.head is not None:
            d.prev[d.head] = h
        d.head = h
        if d.tail is None:
            d.tail = h

    def eviction_hook(d, req):
        h = d.tail if d.hand is None else d.hand
        while h in d.visited:
            d.visited.discard(h)
            h = d.prev[h]
            if h is None:
                h = d.tail
        d.hand = d.prev[h]
        d.unlink(h)
        return h

    def remove_hook(d, h):
        if h in d.prev:
            if h == d.hand:
                d.hand = d.prev[h]
            d.unlink(h)
            d.visited.discard(h)

    def free_hook(d):
        d.prev.clear()

    reader = _reader(path)
    cache = lcs.PluginCache(capacity, init_hook, hit_hook, miss_hook, eviction_hook, remove_hook, free_hook,
                            cache_name="Plugin_SIEVE")
    t0 = time.perf_counter()
    mr, _ = cache.process_trace(reader)
    wall = time.perf_counter() - t0
    return {"rate": n / wall, "wall_seconds": wall, "miss_ratio": mr}


def native(algo: str, path: str, n: int, capacity: int) -> dict:
    import libcachesim as lcs

    reader = _reader(path)
    cache = getattr(lcs, algo)(capacity)
    t0 = time.perf_counter()
    mr, _ = cache.process_trace(reader)
    wall = time.perf_counter() - t0
    return {"rate": n / wall, "wall_seconds": wall, "miss_ratio": mr}


def first_compile(name: str) -> float:
    """Seconds to create a plain cache run by `name` in a fresh process with an empty numba cache
    (the compile of its loop and hooks; imports not counted)."""
    code = ("import time\nfrom reclaim_ext.ext.cache import CacheSim\nfrom reclaim_ext.policies import get_policy\n"
            f"p = get_policy({name!r})\nt = time.perf_counter()\nCacheSim(1000, p)\n"
            "print(time.perf_counter() - t)")
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "NUMBA_CACHE_DIR": d},
                             capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def best(fn, repeat: int) -> dict:
    """The fastest of `repeat` runs of fn() (a dict with rate, wall_seconds, miss_ratio)."""
    return max((fn() for _ in range(repeat)), key=lambda r: r["rate"])


def ours(trace, name: str, capacity: int) -> dict:
    res = run_cache(trace, get_policy(name), capacity)
    return {"rate": res["accesses_per_second"], "wall_seconds": res["wall_seconds"], "miss_ratio": res["miss_ratio"]}


def line(label: str, r: dict) -> str:
    return (f"  {label:<46} {r['rate'] / 1e6:7.3f} M req/s  wall {r['wall_seconds']:6.2f} s  "
            f"miss ratio {r['miss_ratio']:.6f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accesses", type=int, default=10_000_000)
    ap.add_argument("--pages", type=int, default=1_000_000)
    ap.add_argument("--capacity", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs per contender; the best rate counts")
    ap.add_argument("--no-python", action="store_true",
                    help="skip the Python plug-ins (lru, sieve) and their PluginCache peers")
    args = ap.parse_args(argv)
    ids, trace = build_trace(args.pages, args.accesses, 1.0, 42)
    n = len(ids)
    print(f"Zipf(1.0) {args.accesses:,} requests over {args.pages:,} objects, capacity {args.capacity:,}")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "zipf.oracleGeneral.bin")
        write_oracle_general(ids, path)
        plugin = None
        if not args.no_python:
            py = best(lambda: ours(trace, "lru", args.capacity), args.repeat)
            plugin = best(lambda: plugin_cache_lru(path, n, args.capacity), args.repeat)
            print(line("reclaim_ext lru plug-in (Python)", py))
            print(line("libcachesim PluginCache LRU (Python)", plugin))
            print(f"  ratio (ours / PluginCache): {py['rate'] / plugin['rate']:.2f}x")
            sv = best(lambda: ours(trace, "sieve", args.capacity), args.repeat)
            psv = best(lambda: plugin_cache_sieve(path, n, args.capacity), args.repeat)
            print(line("reclaim_ext sieve plug-in (Python, per miss)", sv))
            print(line("libcachesim PluginCache SIEVE (Python)", psv))
            print(f"  ratio (ours / PluginCache): {sv['rate'] / psv['rate']:.2f}x")
        for name, algo in COMPILED:
            cold = first_compile(name)
            t0 = time.perf_counter()
            CacheSim(args.capacity, get_policy(name))  # loads the compiled loop from numba's cache
            load = time.perf_counter() - t0
            mine = best(lambda: ours(trace, name, args.capacity), args.repeat)
            peer = best(lambda: native(algo, path, n, args.capacity), args.repeat)
            print(f"  -- {name}: first compile {cold:.2f} s (empty numba cache), load from the cache {load:.2f} s "
                  "(neither timed below)")
            print(line(f"reclaim_ext {name} (compiled hooks)", mine))
            print(line(f"libcachesim {algo} (native C)", peer))
            print(f"  ratio (ours / native {algo}): {mine['rate'] / peer['rate']:.2f}x")
            if name == "lru-compiled" and plugin is not None:
                print(f"  ratio (ours / PluginCache LRU): {mine['rate'] / plugin['rate']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
