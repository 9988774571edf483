"""Folding: drop a touch when the same process made the very same touch (kind, write flag, file,
page) among its previous `window` touches. Instruction fetches and data accesses interleave
(fetch from the code page, store to the stack, fetch from the code page, ...), so comparing with
only the previous record would fold little; a window of a few records folds the runs. The kernel's
accessed bit cannot see such repeats either: it is set once until reclaim or aging clears it.

read()/write() records (FILE_FD, mode `all`) are never dropped: each call marks the page accessed
in the kernel (a second read() of a page activates it), accessed bit or not. They still take their
place in the window."""

from __future__ import annotations

import numpy as np

from ..trace.record import Kind

DEFAULT_WINDOW = 8


def _key(rec: np.ndarray) -> np.ndarray:
    return ((rec["pid"].astype(np.uint64) << np.uint64(48)) | (rec["kind"].astype(np.uint64) << np.uint64(40))
            | (rec["write"].astype(np.uint64) << np.uint64(32)) | rec["file"].astype(np.uint64))


def fold(rec: np.ndarray, window: int = DEFAULT_WINDOW, carry: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The records of `rec` that are not a repeat of one of the `window` records before them (the
    tail `carry` of the previous chunk of the same stream counts); returns (kept, new carry)."""
    if window <= 0 or len(rec) == 0:
        return rec, rec[:0] if carry is None else carry
    if carry is None:
        carry = rec[:0]
    allr = np.concatenate([carry, rec])
    k, p = _key(allr), allr["page"]
    c = len(carry)
    dup = np.zeros(len(rec), dtype=bool)
    for s in range(1, window + 1):
        lo = max(c, s)
        if lo >= len(allr):
            break
        dup[lo - c:] |= (k[lo:] == k[lo - s:len(allr) - s]) & (p[lo:] == p[lo - s:len(allr) - s])
    dup &= rec["kind"] != Kind.FILE_FD
    return rec[~dup], allr[-window:].copy()


class Folder:
    """fold() over a stream, one carry per stream."""

    def __init__(self, window: int = DEFAULT_WINDOW):
        self.window = window
        self.carry = None
        self.seen = 0
        self.kept = 0

    def __call__(self, rec: np.ndarray) -> np.ndarray:
        out, self.carry = fold(rec, self.window, self.carry)
        self.seen += len(rec)
        self.kept += len(out)
        return out
