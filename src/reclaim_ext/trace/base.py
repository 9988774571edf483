"""The Trace interface every generator and reader implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import time

import numpy as np

DEFAULT_CHUNK = 1 << 16


@dataclass
class Trace:
    """A replayable page-access trace.

    `chunks()` may be called more than once; each call replays the trace from the start and yields
    arrays of RECORD_DTYPE of at most `chunk` records. `length` is the number of records when it is
    known without reading the whole trace (None otherwise).
    """

    name: str
    length: int | None = None
    params: dict = field(default_factory=dict)

    def chunks(self, chunk: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def to_array(self) -> np.ndarray:
        """The whole trace in memory (for tests and small traces)."""
        parts = list(self.chunks())
        from .record import RECORD_DTYPE

        return np.concatenate(parts) if parts else np.zeros(0, dtype=RECORD_DTYPE)


class TimedChunks:
    """A trace's chunks, with the time spent producing them (generating or reading the trace) in
    `seconds`: the part of a run's wall time that is the trace's own (trace_seconds)."""

    def __init__(self, trace: Trace | None):
        self.seconds = 0.0
        self._chunks = trace.chunks() if trace is not None else iter(())

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            t0 = time.perf_counter()
            chunk = next(self._chunks, None)
            self.seconds += time.perf_counter() - t0
            if chunk is None:
                return
            yield chunk

    def rates(self, accesses: int, wall: float) -> dict:
        """A run's wall time and rate, and the trace's part of it (trace_seconds) and the rate
        without it (simulated_accesses_per_second)."""
        rest = wall - self.seconds
        return {"wall_seconds": wall, "accesses_per_second": accesses / wall if wall > 0 else 0.0,
                "trace_seconds": self.seconds, "simulated_accesses_per_second": accesses / rest if rest > 0 else 0.0}


class ArrayTrace(Trace):
    """A trace held in memory."""

    def __init__(self, name: str, records: np.ndarray, params: dict | None = None):
        super().__init__(name=name, length=len(records), params=params or {})
        self.records = records

    def chunks(self, chunk: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        for i in range(0, len(self.records), chunk):
            yield self.records[i : i + chunk]

    def to_array(self) -> np.ndarray:
        return self.records
