"""memory.low in the VM (`reclaim-ext validate kernel --vm KERNEL --low SIZE`): two sibling memcgs
under the probe, a with memory.low and b without, pressed by the probe's memory.max.

The trace must have two processes, pid 0 and pid 1 (e.g. `--workload tenants`); pid 0's accesses
are charged to sibling a, pid 1's to b. In the guest one worker replays them all and moves itself
into the sibling of the access's pid (its cgroup.procs) whenever the pid changes: a file page is
charged to the memcg of the task that adds it to the page cache (filemap_add_folio charges
current's memcg), so the charges follow the trace as they do in the model, and the interleaving
is exactly the trace's. To keep the moves few, each pid's accesses are regrouped into runs of
CHUNK (chunk_by_pid), each pid's own order kept. What is compared per sibling: misses (the
per-access bitmaps split by pid), memory.current and the page cache at the end (memory.stat
`file`), memory.events `low` and workingset refaults (memory.stat).
"""

from __future__ import annotations

import statistics

import numpy as np

from ..errors import ReclaimExtError
from ..trace import Trace
from .bitmaps import load
from .calibrate import relative_error
from .cgroup import parse_stat
from .kernel import LOW_SIBLINGS, PAGE, dense_index, trace_records

CHUNK = 256   # accesses of one pid in a row: the worker moves between the siblings at most every CHUNK


def chunk_by_pid(pids: np.ndarray, chunk: int = CHUNK) -> np.ndarray:
    """The order that regroups each pid's accesses into runs of `chunk` (its last run shorter),
    the runs in the order of their first access, each pid's own accesses in their order."""
    pids = np.asarray(pids)
    first = np.empty(len(pids), dtype=np.int64)
    for p in np.unique(pids):
        idx = np.flatnonzero(pids == p)
        first[idx] = idx[(np.arange(len(idx)) // chunk) * chunk]
    return np.lexsort((np.arange(len(pids)), first))


def sibling_trace(trace: Trace, max_accesses: int | None = None, chunk: int = CHUNK) -> tuple[np.ndarray, np.ndarray, int]:
    """The trace as (dense pages, pid of each access, distinct pages), each pid's accesses in runs
    of `chunk` (chunk_by_pid). Its pids must be 0 and 1, both present (one per sibling)."""
    rec = trace_records(trace, max_accesses)
    have = sorted(int(p) for p in np.unique(rec["pid"]))
    if have != [0, 1]:
        raise ReclaimExtError(f"low: the trace's pids are {', '.join(map(str, have))}; it needs two processes, "
                              f"pid 0 (in sibling {LOW_SIBLINGS[0]}, with memory.low) and pid 1 (in "
                              f"{LOW_SIBLINGS[1]}), e.g. --workload tenants")
    rec = rec[chunk_by_pid(rec["pid"], chunk)]
    pages, npages = dense_index(rec, trace.name)
    return pages, rec["pid"].astype(np.uint32), npages


def sibling_record(r: dict) -> dict:
    """One guest run's siblings at the end (its sections current_S, stat_S, events_S for S in a, b):
    {S: {current_pages, file_pages, workingset_refault_file, events_low}}."""
    out = {}
    for s in LOW_SIBLINGS:
        cur = r.get(f"current_{s}", "").strip()
        if not cur.isdigit():
            raise ReclaimExtError(f"guest run {r.get('n')}: no memory.current of sibling {s}")
        st, ev = parse_stat(r.get(f"stat_{s}", "")), parse_stat(r.get(f"events_{s}", ""))
        out[s] = {"current_pages": int(cur) // PAGE, "file_pages": st.get("file", 0) // PAGE,
                  "workingset_refault_file": st.get("workingset_refault_file"), "events_low": ev.get("low")}
    return out


def low_comparison(result: dict, pids: np.ndarray, low_pages: int) -> dict:
    """Per sibling, each kernel run's misses (its bitmap split by pid), memory.current and page
    cache at the end, memory.events low and workingset refaults, against the model's at the
    calibrated capacity (its usage is its page cache); `result` is kernel.compare's."""
    runs, model = result["kernel_runs"], result["model"]
    bm = load(result)
    kernel, mbits = bm.kernel, np.asarray(bm.model_calibrated, dtype=bool)
    out: dict = {"low_pages": low_pages, "chunk": CHUNK, "siblings": {}}
    for i, s in enumerate(LOW_SIBLINGS):
        mine = pids == i
        ms = (model.get("siblings") or {}).get(s) or {}
        kr = [r["siblings"][s] for r in runs]
        km = [int(k[mine].sum()) for k in kernel]
        mm = int(mbits[mine].sum())
        out["siblings"][s] = {
            "accesses": int(mine.sum()),
            "low_pages": low_pages if i == 0 else 0,
            "kernel_misses": km, "model_misses": mm,
            "error": relative_error(mm, statistics.fmean(km)),
            "kernel_current_pages": [x["current_pages"] for x in kr],
            "kernel_file_pages": [x["file_pages"] for x in kr],
            "model_usage_pages": ms.get("usage"),
            "kernel_events_low": [x["events_low"] for x in kr],
            "model_events_low": (ms.get("memory_events") or {}).get("low"),
            "kernel_refault_file": [x["workingset_refault_file"] for x in kr],
            "model_refault_file": (ms.get("memory_stat") or {}).get("workingset_refault_file"),
        }
    return out
