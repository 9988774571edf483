"""Markdown table from `reclaim-ext ablate --json FILE` output (used for docs/mglru.md).

Run: reclaim-ext ablate --policy mglru --workload mixed --json a.json && python benchmarks/ablation_table.py a.json
"""

import json
import sys

COLUMNS = [("misses", "misses"), ("refaults", "refaults"), ("modeled_seconds", "modelled s"),
           ("pages_scanned", "pages scanned"), ("ptes_walked", "PTEs walked"), ("rmap_walks", "rmap walks"),
           ("lru_lock_ops", "LRU-lock ops"), ("atomic_updates", "atomic updates")]


def cell(value, rel=None) -> str:
    text = f"{value:.2f}" if isinstance(value, float) else f"{value:,}"
    if rel is None:
        return text
    if isinstance(rel, str):
        return f"{text} ({rel})"
    return f"{text} ({rel:+.1f}%)"


for path in sys.argv[1:]:
    d = json.load(open(path))
    print(f"{d['policy']} on {d['workload']}, {d['memory_pages']:,} pages of memory, {d['accesses']:,} accesses\n")
    print("| variant | " + " | ".join(h for _, h in COLUMNS) + " |")
    print("|---|" + "---|" * len(COLUMNS))
    base = d["baseline"]["metrics"]
    print("| baseline | " + " | ".join(cell(base[k]) for k, _ in COLUMNS) + " |")
    for v in d["variants"]:
        if v.get("error"):
            print(f"| {v['mechanisms']} | {v['error']} |")
            continue
        m, rel = v["metrics"], v["relative"]
        print(f"| {v['mechanisms']} | " + " | ".join(cell(m[k], rel.get(k)) for k, _ in COLUMNS) + " |")
    print()
