"""Per-access miss bitmaps of a validation (kernel and model) and where they diverge.

Every kernel run's worker reports, per access, whether the page was resident before it (mincore;
bit i of its `bitmap`, least significant bit first). The model run at that run's calibrated
capacity records the same (Simulator.record_misses: an access misses when it allocates a folio).
Both are stored in the validation's JSON, compressed (`encode`; `load` gives them back as numpy
bool arrays), and compared access by access, bucketed by reuse distance (`divergence`): where the
kernel misses and the model hits (kernel-only) or the reverse (model-only). docs/fidelity.md has
the layout and the known cases.
"""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ENCODING = "zlib+base64 of numpy.packbits(bits, bitorder='little')"
# bucket edges of the reuse distance as fractions of the capacity C (the model's memcg max): fine
# around the classic inactive list's target (C/2 below 1 GiB: inactive_is_low's ratio 1) and C
FRACTIONS = (0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0, 1.25, 1.5, 2.0, 4.0)
COUNTS = ("accesses", "kernel_misses", "model_misses", "kernel_only", "model_only")


# ---------------------------------------------------------------- encoding

def encode(bits: np.ndarray) -> dict:
    """A bool array as a JSON-ready dict: its length, its number of set bits and the packed bits
    (bit i of byte i // 8 at position i % 8, least significant first), zlib-compressed, base64."""
    bits = np.asarray(bits, dtype=bool)
    packed = np.packbits(bits, bitorder="little").tobytes()
    return {"n": int(len(bits)), "set": int(np.count_nonzero(bits)),
            "zlib_b64": base64.b64encode(zlib.compress(packed, 9)).decode("ascii")}


def decode(d: dict) -> np.ndarray:
    """The bool array of an `encode`d dict (its `set` count is checked)."""
    raw = np.frombuffer(zlib.decompress(base64.b64decode(d["zlib_b64"])), dtype=np.uint8)
    bits = np.unpackbits(raw, count=int(d["n"]), bitorder="little").astype(bool)
    if "set" in d and int(np.count_nonzero(bits)) != int(d["set"]):
        raise ValueError(f"bitmap: {np.count_nonzero(bits)} bits set, the record says {d['set']}")
    return bits


def from_worker(raw: bytes, n: int) -> np.ndarray:
    """The worker's `bitmap` bytes (bit i: access i missed) as a bool array of n accesses."""
    if len(raw) * 8 < n:
        raise ValueError(f"worker bitmap: {len(raw)} bytes for {n} accesses")
    return np.unpackbits(np.frombuffer(raw, dtype=np.uint8), count=n, bitorder="little").astype(bool)


@dataclass
class Bitmaps:
    """One validation's bitmaps: per kernel run, its misses and the model's at that run's own
    calibrated capacity (`run_model_max`), and the model's at the calibrated capacity."""
    kernel: list[np.ndarray]
    model: list[np.ndarray]
    run_model_max: list[int]
    model_max: int
    model_calibrated: np.ndarray


def store(kernel: list[np.ndarray], model: dict[int, np.ndarray], run_model_max: list[int], model_max: int) -> dict:
    """The JSON record of a validation's bitmaps (`load` reads it back): the kernel runs' in run
    order, the model's per capacity (keys: the model's memcg max, as strings)."""
    return {"encoding": ENCODING, "kernel": [encode(b) for b in kernel],
            "model": {str(m): encode(b) for m, b in sorted(model.items())},
            "run_model_max": [int(m) for m in run_model_max], "model_max": int(model_max)}


def _one(rec: dict) -> Bitmaps:
    bm = rec["bitmaps"]
    model = {int(k): decode(v) for k, v in bm["model"].items()}
    return Bitmaps(kernel=[decode(b) for b in bm["kernel"]], model=[model[int(m)] for m in bm["run_model_max"]],
                   run_model_max=list(bm["run_model_max"]), model_max=int(bm["model_max"]),
                   model_calibrated=model[int(bm["model_max"])])


def load(result) -> Bitmaps | dict[str, Bitmaps]:
    """The bitmaps of a validation result (a dict, a JSON text or a path to a JSON file): a
    Bitmaps for `reclaim-ext validate kernel --json`, or {"trace access limit": Bitmaps} for a
    suite result (configurations without bitmaps, from before they were stored, are left out)."""
    if isinstance(result, (str, Path)):
        text = str(result)
        result = json.loads(text) if text.lstrip().startswith("{") else json.loads(Path(result).read_text())
    if "results" in result:
        return {f"{r['trace']} {r['access']} {r['limit_pages']}": _one(r) for r in result["results"] if "bitmaps" in r}
    if "bitmaps" not in result:
        raise ValueError("the result has no bitmaps (made before they were stored?)")
    return _one(result)


# ---------------------------------------------------------------- divergence by reuse distance

def reuse_distances(pages: np.ndarray) -> np.ndarray:
    """Per access: the number of distinct other pages accessed since the previous access to the
    same page (the LRU stack distance, mrc's), -1 on a page's first access."""
    from ..mrc import _stack_distances

    _, ids = np.unique(np.asarray(pages), return_inverse=True)
    ids = ids.reshape(-1).astype(np.int64)
    return _stack_distances(ids, int(ids.max()) + 1 if len(ids) else 0)


def bucket_edges(capacity: int) -> np.ndarray:
    """The lower edges (pages) of the reuse-distance buckets after the first one (0): FRACTIONS of
    `capacity`, rounded, without repeats."""
    return np.unique(np.round(np.array(FRACTIONS) * max(1, int(capacity))).astype(np.int64))


def bucket_of(distances: np.ndarray, capacity: int) -> tuple[np.ndarray, list[tuple[int | None, int | None]]]:
    """Each access's bucket (0: first touch; 1..: reuse distance in [lo, hi) pages, the edges of
    bucket_edges) and the buckets' (lo, hi) (None, None for first touches; hi None: unbounded)."""
    edges = bucket_edges(capacity)
    b = np.where(distances < 0, 0, 1 + np.searchsorted(edges, distances, side="right"))
    lows = [0] + edges.tolist()
    ranges = [(None, None)] + [(lo, hi) for lo, hi in zip(lows, edges.tolist() + [None])]
    return b, ranges


def divergence(pages: np.ndarray, kernel: list[np.ndarray], model: list[np.ndarray], capacity: int,
               distances: np.ndarray | None = None) -> dict:
    """Where kernel and model disagree, by reuse distance. `kernel[k]` and `model[k]`: run k's
    per-access misses (the model at run k's capacity). Per bucket (first touches, then reuse
    distance ranges relative to `capacity`): accesses, kernel misses, model misses, kernel-only
    and model-only misses (the mean over runs; per run in `runs`)."""
    if distances is None:
        distances = reuse_distances(pages)
    b, ranges = bucket_of(distances, capacity)
    nb = len(ranges)
    acc = np.bincount(b, minlength=nb)
    runs = []
    for kb, mb in zip(kernel, model):
        if len(kb) != len(b) or len(mb) != len(b):
            raise ValueError(f"bitmaps of {len(kb)} and {len(mb)} accesses for a trace of {len(b)}")
        runs.append(np.stack([acc, np.bincount(b, kb, nb), np.bincount(b, mb, nb), np.bincount(b, kb & ~mb, nb),
                              np.bincount(b, mb & ~kb, nb)]).astype(np.int64))
    mean = np.mean(runs, axis=0) if runs else np.zeros((len(COUNTS), nb))
    buckets = []
    for j, (lo, hi) in enumerate(ranges):
        row = {"lo": lo, "hi": hi, "lo_c": None if lo is None else lo / capacity,
               "hi_c": None if hi is None else hi / capacity}
        row.update({k: float(mean[i, j]) for i, k in enumerate(COUNTS)})
        buckets.append(row)
    total = {k: float(mean[i].sum()) for i, k in enumerate(COUNTS)}
    return {"capacity": int(capacity), "runs": len(runs), "buckets": buckets, "total": total,
            "per_run": [{k: r[i].tolist() for i, k in enumerate(COUNTS)} for r in runs]}


def compare_bitmaps(pages: np.ndarray, kernel_raw: list[bytes | None], model: dict[int, np.ndarray],
                    run_model_max: list[int], model_max: int) -> tuple[dict, dict] | None:
    """A validation's bitmaps record (store) and divergence table from the kernel runs' worker
    bitmaps and the model's per capacity; None when a kernel run has none."""
    if not kernel_raw or any(r is None for r in kernel_raw):
        return None
    n = len(pages)
    kernel = [from_worker(r, n) for r in kernel_raw]
    return (store(kernel, model, run_model_max, model_max),
            divergence(pages, kernel, [model[m] for m in run_model_max], model_max))


def _n(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"


def _range(row: dict) -> str:
    if row["lo"] is None:
        return "first touch"
    if row["hi"] is None:
        return f"≥ {row['lo']:,} ({row['lo_c']:.2f} C)"
    return f"{row['lo']:,}–{row['hi'] - 1:,} ({row['lo_c']:.2f}–{row['hi_c']:.2f} C)"


def table_lines(div: dict, indent: str = "  ") -> list[str]:
    """The divergence table as text lines (buckets without accesses left out)."""
    cols = ("accesses", "kernel", "model", "kernel-only", "model-only")
    head = f"{indent}{'reuse distance (C = ' + format(div['capacity'], ',') + ' pages)':<34}" + \
        "".join(f"{c:>12}" for c in cols)
    lines = [head]
    for row in div["buckets"] + [dict(div["total"], lo=-1, hi=None)]:
        if not row["accesses"]:
            continue
        label = "all" if row["lo"] == -1 else _range(row)
        lines.append(f"{indent}{label:<34}" + "".join(f"{_n(row[k]):>12}" for k in COUNTS))
    return lines


def largest_divergence(div: dict) -> dict | None:
    """The bucket where kernel-only and model-only misses differ most, or None if nowhere."""
    best = max(div["buckets"], key=lambda r: abs(r["kernel_only"] - r["model_only"]))
    return best if best["kernel_only"] != best["model_only"] else None


def summary_line(name: str, div: dict) -> str:
    """One line per configuration (the suite): disagreements and the bucket of the largest net one."""
    t = div["total"]
    line = f"{name}: kernel-only {_n(t['kernel_only'])}, model-only {_n(t['model_only'])}"
    best = largest_divergence(div)
    if best is not None:
        net = best["kernel_only"] - best["model_only"]
        line += f"; largest net at reuse distance {_range(best)}: kernel {'+' if net > 0 else '−'}{_n(abs(net))}"
    return line


__all__ = ["Bitmaps", "ENCODING", "FRACTIONS", "bucket_of", "compare_bitmaps", "decode", "divergence", "encode",
           "from_worker", "load", "reuse_distances", "store", "summary_line", "table_lines"]
