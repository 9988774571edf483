"""Chunking helpers shared by the generators and the readers (private)."""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np



def check_chunk(chunk: int) -> int:
    """Validate the `chunk` argument of Trace.chunks() (a programming error, not a user error)."""
    if not isinstance(chunk, (int, np.integer)) or isinstance(chunk, bool) or chunk <= 0:
        raise ValueError(f"chunk must be a positive integer, not {chunk!r}")
    return int(chunk)


def rechunk(blocks: Iterable[np.ndarray], chunk: int) -> Iterator[np.ndarray]:
    """Re-cut a stream of record arrays into arrays of exactly `chunk` records (the last may be
    shorter). Empty blocks are dropped, so a consumer never sees an empty chunk.

    Producers generate or decode in blocks of their own natural size (a fixed generator block, one
    read() of a file, the pages of a batch of requests); rechunking makes the stream the consumer
    sees independent of that size.
    """
    pending: list[np.ndarray] = []
    n = 0
    for block in blocks:
        if len(block) == 0:
            continue
        if n == 0 and len(block) == chunk:
            yield block
            continue
        pending.append(block)
        n += len(block)
        if n < chunk:
            continue
        buf = pending[0] if len(pending) == 1 else np.concatenate(pending)
        cut = (n // chunk) * chunk
        for i in range(0, cut, chunk):
            yield buf[i : i + chunk]
        rest = buf[cut:]
        pending = [rest] if len(rest) else []
        n = len(rest)
    if n:
        yield pending[0] if len(pending) == 1 else np.concatenate(pending)


def expand_ranges(first: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For requests covering pages [first[i], first[i] + count[i]), return (request index, page) of
    every page touched, request by request and page by page in ascending order. Vectorized."""
    count = count.astype(np.int64, copy=False)
    total = int(count.sum())
    req = np.repeat(np.arange(len(count), dtype=np.int64), count)
    start_of = np.cumsum(count) - count  # position of each request's first page in the output
    within = np.arange(total, dtype=np.int64) - start_of[req]
    pages = first.astype(np.uint64, copy=False)[req] + within.astype(np.uint64)
    return req, pages

