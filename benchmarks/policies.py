"""Classic and MGLRU side by side on every built-in workload (the table in docs/mglru.md).

Both policies replay the same trace on the same machine; a plain LRU of the same capacity is shown
for contrast. Run: python benchmarks/policies.py [--memory 64MiB] [--swap 64MiB] [--seed 0]
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
ap.add_argument("--policies", default="classic,mglru")
args = ap.parse_args()
mem, swap = parse_size(args.memory), parse_size(args.swap)
policies = args.policies.split(",")
print(f"memory {format_size(mem)}, swap {format_size(swap)}, seed {args.seed}, default workload parameters\n")
print("| workload | policy | misses | miss ratio | refaults | pages scanned | rmap walks | PTEs walked "
      "| LRU-lock ops | modelled s | wall s |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
# every built-in workload with its defaults, plus the page-cache workloads touched through a
# shared mapping (mmap) and anonymous memory, where page tables carry the access information
CASES = [(name, {}) for name in WORKLOADS] + [
    ("zipf", {"kind": "mmap"}), ("zipf", {"kind": "anon", "pages": 24576}), ("shift", {"kind": "mmap"}),
    ("shift", {"kind": "anon"}),
]
for name, params in CASES:
    trace = make_workload(name, seed=args.seed, **params)
    label = name + "".join(f" {k}={v}" for k, v in params.items())
    for policy in policies:
        r = run(RunConfig(policy=policy, workload=name, workload_params=params, seed=args.seed, memory=mem,
                          swap=swap), trace=trace)
        vm, c = r["vmstat"], r["cost"]
        print(f"| {label} | {policy} | {r['misses']:,} | {r['miss_ratio']:.4f} | "
              f"{vm['workingset_refault_anon'] + vm['workingset_refault_file']:,} | {c['pages_scanned']:,} | "
              f"{c['rmap_walks']:,} | {c['ptes_walked']:,} | {c['lru_lock_ops']:,} | "
              f"{r['modeled_seconds']:.2f} | {r['wall_seconds']:.1f} |")
    print(f"| {label} | plain LRU | {lru_misses(trace, mem):,} | | | | | | | | |")
