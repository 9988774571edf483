"""F2 fidelity (../shared/reference/extension-anchors.md §5(b), docs/hardening.md "F2 fidelity"):
MGLRU and classic LRU implemented *through* reclaim_ext (examples/mglru_ext.py,
examples/classic_ext.py) against the built-in versions, on B1, B4 and B7.

The metric is cache_ext's: throughput, here the modelled one (accesses per modelled second: I/O,
faults and the reclaim CPU the cost model charges), so a policy that reaches the same hit ratio
with more reclaim work scores lower. ratio = throughput(ext) / throughput(built-in); the check
wants every ratio within 1 +- 0.05 and the harmonic mean over the workloads >= 0.98. The hit-ratio
ratio is reported beside it.

Workloads (fixed seeds; `scale` multiplies the accesses and sizes):
  B1  Zipf key-value over files: `mixed` (3 processes, read()/write() and mapped accesses), the
      files 10x memory, no swap;
  B4  Twitter cluster 52 (../shared/traces/twitter_cluster52.csv.zst, the first N requests),
      memory 10 % of the objects it touches;
  B7  an anonymous Zipf working set 3x memory, writes, swap 4x memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..api import RunConfig, run
from ..trace import open_trace
from ..trace.base import ArrayTrace

PAIRS = (("classic", "classic_ext.py"), ("mglru", "mglru_ext.py"))
PER_WORKLOAD, HMEAN = 0.05, 0.98
FULL = dict(accesses=1_000_000, memory=4096)
REDUCED = dict(accesses=60_000, memory=1024)


@dataclass
class Workload:
    name: str
    cfg: dict
    trace: object = None


def workloads(accesses: int, memory: int, traces: Path) -> list[Workload]:
    b1 = Workload("B1", dict(workload="mixed", swap=0, workload_params=dict(
        procs=3, anon_pages=memory // 16, files=2, file_pages=5 * memory, exec_pages=32, accesses=accesses,
        write_ratio=0.2)))
    tw = open_trace(traces / "twitter_cluster52.csv.zst", "csv").to_array()[:accesses]
    objects = len(np.unique(tw["page"]))
    b4 = Workload("B4", dict(trace_memory=max(objects // 10, 64), swap=0), ArrayTrace("twitter_cluster52", tw))
    b7 = Workload("B7", dict(workload="zipf", swap=4 * memory, workload_params=dict(
        pages=3 * memory, accesses=accesses, kind="anon", write_ratio=0.3)))
    return [b1, b4, b7]


def _run(policy: str, w: Workload, memory: int, seed: int) -> dict:
    kw = dict(w.cfg)
    mem = kw.pop("trace_memory", memory)
    return run(RunConfig(policy=policy, memory=mem, seed=seed, **kw), trace=w.trace)


def throughput(res: dict) -> float:
    return res["accesses"] / res["modeled_seconds"]


def hit_ratio(res: dict) -> float:
    return 1.0 - res["misses"] / res["accesses"]


def f2_rows(accesses: int, memory: int, examples: Path, traces: Path, seed: int = 3) -> list[dict]:
    """One row per (workload, policy pair): both runs' numbers and the ratios."""
    rows = []
    for w in workloads(accesses, memory, traces):
        for builtin, ext in PAIRS:
            b = _run(builtin, w, memory, seed)
            e = _run(str(examples / ext), w, memory, seed)
            events = (e.get("ext") or {}).get("events", {})
            rows.append(dict(workload=w.name, builtin=builtin, ext=ext, memory=b["memory_pages"],
                             accesses=b["accesses"], misses_builtin=b["misses"], misses_ext=e["misses"],
                             throughput_builtin=throughput(b), throughput_ext=throughput(e),
                             ratio=throughput(e) / throughput(b), hit_ratio_ratio=hit_ratio(e) / hit_ratio(b),
                             exit=(e.get("exit") or {}).get("kind"), topped_up=events.get("topped_up", 0)))
    return rows


def harmonic_mean(xs) -> float:
    xs = list(xs)
    return len(xs) / sum(1.0 / x for x in xs)


def verdict(rows: list[dict], builtin: str) -> dict:
    """The check for one policy pair: every ratio within 1 +- PER_WORKLOAD, harmonic mean >= HMEAN."""
    ratios = [r["ratio"] for r in rows if r["builtin"] == builtin]
    hm = harmonic_mean(ratios)
    worst = max(abs(x - 1) for x in ratios)
    return dict(builtin=builtin, hmean=hm, worst=worst, ok=worst <= PER_WORKLOAD and hm >= HMEAN)


def markdown(rows: list[dict]) -> str:
    out = ["| workload | pair | memory (pages) | accesses | misses built-in | misses ext | throughput ratio | "
           "hit-ratio ratio | ext exit | topped up |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['workload']} | {r['ext']} / {r['builtin']} | {r['memory']:,} | {r['accesses']:,} | "
                   f"{r['misses_builtin']:,} | {r['misses_ext']:,} | {r['ratio']:.4f} | {r['hit_ratio_ratio']:.4f} | "
                   f"{r['exit']} | {r['topped_up']:,} |")
    out.append("")
    for b, _ in PAIRS:
        v = verdict(rows, b)
        out.append(f"- {b}: harmonic mean {v['hmean']:.4f}, worst |ratio - 1| {v['worst']:.4f}: "
                   f"{'meets' if v['ok'] else 'MISSES'} F2 (within {PER_WORKLOAD:.0%}, mean >= {HMEAN})")
    return "\n".join(out)
