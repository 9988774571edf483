"""Classic on every built-in workload, with a plain LRU of the same capacity for contrast.

Prints a markdown table (the one in docs/results.md). Run: python benchmarks/workloads.py
"""

import argparse

from reclaim_ext.api import RunConfig, run
from reclaim_ext.bench.reference import lru_misses
from reclaim_ext.machine.units import format_size, parse_size
from reclaim_ext.trace import WORKLOADS, make_workload

ap = argparse.ArgumentParser()
ap.add_argument("--memory", default="64MiB")
ap.add_argument("--swap", default="64MiB")
ap.add_argument("--seed", type=int, default=0)
args = ap.parse_args()
mem, swap = parse_size(args.memory), parse_size(args.swap)
print(f"memory {format_size(mem)}, swap {format_size(swap)}, seed {args.seed}, default workload parameters\n")
print("| workload | accesses | classic misses | classic miss ratio | refaults | pgscan | pswpout | plain LRU misses | classic / LRU |")
print("|---|---|---|---|---|---|---|---|---|")
for name in WORKLOADS:
    trace = make_workload(name, seed=args.seed)
    r = run(RunConfig(workload=name, seed=args.seed, memory=mem, swap=swap), trace=trace)
    vm = r["vmstat"]
    lru = lru_misses(trace, mem)
    print(f"| {name} | {r['accesses']:,} | {r['misses']:,} | {r['miss_ratio']:.4f} | "
          f"{vm['workingset_refault_anon'] + vm['workingset_refault_file']:,} | "
          f"{vm['pgscan_kswapd'] + vm['pgscan_direct']:,} | {vm['pswpout']:,} | {lru:,} | {r['misses'] / lru:.3f} |")
