"""Miss-ratio curves: a policy's misses over a list of memory sizes (or plain-cache capacities).

Two ways to get the curve:
- `sweep`: every size is a cell of a sweep (reclaim_ext.sweep), run on Dask: exact for every
  policy, the kernel's included, at the cost of one run per size;
- `stack`: LRU in plain-cache mode in one pass over the trace (Mattson et al.'s stack algorithm):
  each access's stack distance, the number of distinct pages touched since the previous access
  to the same page, counted with a Fenwick tree over access positions (compiled with numba), gives
  the misses at every capacity at once: an access misses in an LRU cache of C pages exactly when
  it is the page's first access or its stack distance is C or more. The points equal plain-cache
  mode's `lru` run at each capacity (tests/test_sweep.py checks it against the sweep).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from .errors import ConfigError

STACK_POLICIES = ("lru", "lru-compiled")  # plain-cache policies whose curve the stack algorithm gives exactly


@njit(cache=True)
def _stack_distances(ids: np.ndarray, n_objects: int) -> np.ndarray:
    """Per access: -1 on a page's first access, else the number of distinct other pages accessed
    since its previous access (LRU stack distance, 0 for an immediate re-access)."""
    n = ids.shape[0]
    tree = np.zeros(n + 1, dtype=np.int64)  # Fenwick tree: 1 at each page's last access position
    last = np.full(n_objects, -1, dtype=np.int64)
    out = np.empty(n, dtype=np.int64)
    marked = 0
    for t in range(n):
        o = ids[t]
        p = last[o]
        if p < 0:
            out[t] = -1
        else:
            s = 0  # marked positions <= p
            i = p + 1
            while i > 0:
                s += tree[i]
                i -= i & -i
            out[t] = marked - s
            i = p + 1
            while i <= n:
                tree[i] -= 1
                i += i & -i
            marked -= 1
        i = t + 1
        while i <= n:
            tree[i] += 1
            i += i & -i
        marked += 1
        last[o] = t
    return out


def stack_distances(trace) -> tuple[np.ndarray, int]:
    """The stack distance of every access of `trace` (objects as in plain-cache mode: one per
    (file, page)) and the number of distinct objects."""
    from .ext.cache import object_keys

    keys = [object_keys(c) for c in trace.chunks() if len(c)]
    if not keys:
        return np.zeros(0, dtype=np.int64), 0
    uniq, ids = np.unique(np.concatenate(keys), return_inverse=True)
    return _stack_distances(ids.astype(np.int64), len(uniq)), len(uniq)


def lru_misses(distances: np.ndarray, capacities) -> np.ndarray:
    """Misses of an LRU cache of each capacity: first accesses plus accesses of stack distance
    at or above it."""
    caps = np.asarray(capacities, dtype=np.int64)
    cold = int(np.count_nonzero(distances < 0))
    d = np.sort(distances[distances >= 0])
    return cold + (len(d) - np.searchsorted(d, caps, side="left"))


@dataclass
class Curve:
    policy: str
    cache: bool
    method: str  # "stack" or "sweep"
    source: str  # the workload (with parameters) or the trace
    points: list[dict] = field(default_factory=list)  # size (pages), misses, accesses, miss_ratio, status, error
    wall_seconds: float = 0.0
    workers: int = 0

    def non_monotone(self) -> list[int]:
        """Sizes at which the miss ratio is higher than at the next smaller size that ran."""
        out, prev = [], None
        for p in self.points:
            if p["status"] != "ok":
                continue
            if prev is not None and p["misses"] > prev["misses"]:
                out.append(p["size"])
            prev = p
        return out

    def as_dict(self) -> dict:
        from .provenance import provenance

        return {**provenance(), "policy": self.policy, "cache": self.cache, "method": self.method,
                "source": self.source, "unit": "capacity (objects)" if self.cache else "memory (pages)",
                "wall_seconds": self.wall_seconds, "workers": self.workers, "points": self.points,
                "non_monotone": self.non_monotone()}


def source_label(cell: dict) -> str:
    if cell.get("trace"):
        return f"trace {cell['trace']}"
    params = " ".join(f"-p {k}={v}" for k, v in (cell.get("workload_params") or {}).items())
    return f"workload {cell['workload']}" + (f" {params}" if params else "") + f" (seed {cell['seed']})"


def stack_curve(cells: list[dict]) -> tuple[Curve, list[dict]]:
    """The LRU plain-cache curve of `cells` (one per capacity, same policy, scenario and seed) in
    one pass; also the rows a sweep would have written for them (the measured columns it has)."""
    from .sweep import _versions, cell_id, config_columns, run_config

    t0 = time.perf_counter()
    first = cells[0]
    cfg = run_config({**first})
    cfg.validate()
    from .api import build_trace

    dist, objects = stack_distances(build_trace(cfg))
    if len(dist) == 0:
        raise ConfigError("the trace holds no records")
    caps = [c["capacity"] for c in cells]
    misses = lru_misses(dist, caps)
    wall = time.perf_counter() - t0
    curve = Curve(policy=first["policy"], cache=True, method="stack", source=source_label(first), wall_seconds=wall)
    rows = []
    for c, m in zip(cells, misses.tolist()):
        curve.points.append({"size": c["capacity"], "accesses": len(dist), "misses": m,
                             "miss_ratio": m / len(dist), "status": "ok", "error": None})
        rows.append({"cell_id": cell_id(c), "cell_index": len(rows), "status": "ok", "error": None,
                     **config_columns(c), "accesses": len(dist), "misses": m, "miss_ratio": m / len(dist),
                     "hits": len(dist) - m, "objects": objects, "method": "stack", "wall_seconds": wall,
                     "finished_at": time.time(), **_versions()})
    return curve, rows


def sweep_curve(cells: list[dict], rows: list[dict], wall: float, workers: int) -> Curve:
    """The curve of a sweep's rows over the sizes of `cells` (in their order)."""
    from .sweep import cell_id

    first = cells[0]
    by_id = {r["cell_id"]: r for r in rows}
    curve = Curve(policy=first["policy"], cache=bool(first.get("cache")), method="sweep",
                  source=source_label(first), wall_seconds=wall, workers=workers)
    for c in cells:
        r = by_id.get(cell_id(c))
        size = c["capacity"] if c.get("cache") else c["memory"]
        if r is None:
            curve.points.append({"size": size, "accesses": None, "misses": None, "miss_ratio": None,
                                 "status": "missing", "error": "not run"})
            continue
        ok = r["status"] == "ok"
        curve.points.append({"size": size, "accesses": r.get("accesses") if ok else None,
                             "misses": r.get("misses") if ok else None, "miss_ratio": r.get("miss_ratio") if ok else None,
                             "status": r["status"], "error": r.get("error")})
    return curve


__all__ = ["Curve", "lru_misses", "stack_curve", "stack_distances", "sweep_curve"]
