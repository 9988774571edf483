"""Reference caches for contrast: a plain LRU of a fixed capacity over the same page keys."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..trace import Kind, Trace


def page_keys(chunk: np.ndarray) -> np.ndarray:
    """One int64 key per distinct page: anon pages by (pid, vpn), file pages by (file, index)."""
    kind = chunk["kind"].astype(np.int64)
    anon = kind == Kind.ANON
    pid = chunk["pid"].astype(np.int64)
    page = chunk["page"].astype(np.uint64).astype(np.int64)
    file = chunk["file"].astype(np.int64)
    anon_key = (1 << 62) | (pid << 40) | (page & ((1 << 40) - 1))
    file_key = (file << 40) ^ page
    return np.where(anon, anon_key, file_key)


def lru_misses(trace: Trace, capacity: int) -> int:
    """Misses of a plain LRU holding `capacity` pages (every access is a touch). Python per
    access: for contrast on traces of a few million accesses, not for speed."""
    od: OrderedDict = OrderedDict()
    move, pop = od.move_to_end, od.popitem
    miss = 0
    for chunk in trace.chunks():
        for k in page_keys(chunk).tolist():
            if k in od:
                move(k)
            else:
                miss += 1
                od[k] = None
                if len(od) > capacity:
                    pop(last=False)
    return miss


ORACLE_GENERAL_DTYPE = np.dtype([("t", "<u4"), ("id", "<u8"), ("sz", "<u4"), ("nxt", "<i8")])


def write_oracle_general(ids: np.ndarray, path: str) -> None:
    """Write object ids as a libCacheSim oracleGeneral trace: one unit-size request per id, time
    = index // 1000, next access unknown (-1)."""
    rec = np.zeros(len(ids), dtype=ORACLE_GENERAL_DTYPE)
    rec["t"] = np.arange(len(ids), dtype=np.uint64) // 1000
    rec["id"] = ids
    rec["sz"] = 1
    rec["nxt"] = -1
    rec.tofile(path)

