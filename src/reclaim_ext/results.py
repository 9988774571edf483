"""Sweep results on disk: a directory of Parquet files, one row per cell (reclaim_ext.sweep).

Each finished batch of cells is one file `part-<time>-<random>.parquet`, written under a temporary
name and renamed, so a killed sweep leaves whole files only. `_grid.json` holds the cells of the
last sweep that wrote to the directory (so `reclaim-ext sweep --resume --out DIR` needs no grid).

    >>> from reclaim_ext import results
    >>> df = results.load("/tmp/sweep")          # a pandas DataFrame, one row per cell
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

from .errors import ReclaimExtError

PART_GLOB = "part-*.parquet"


def parts(directory: str | os.PathLike) -> list[Path]:
    """The dataset's files, oldest first."""
    return sorted(Path(directory).glob(PART_GLOB))


_INT_COLUMNS = ("cell_index", "memory_pages", "capacity", "seed", "swap", "swappiness", "min_free_kbytes",
                "watermark_scale_factor", "accesses", "misses", "swap_pages", "hits", "evictions", "objects",
                "free_pages", "mem_available")
_FLOAT_COLUMNS = ("min_ttl_ms", "miss_ratio", "modeled_seconds", "wall_seconds", "accesses_per_second",
                  "trace_seconds", "simulated_accesses_per_second",
                  "cell_seconds", "finished_at", "lru_gen_anon_young_share", "lru_gen_file_young_share")
_INT_PREFIXES = ("vmstat_", "cost_", "events_")


def _typed(table):
    """Columns with no value in any row (type null) get their real type: the counters and sizes
    int64, seconds and ratios float64, the rest strings; so every file has one schema per column."""
    import pyarrow as pa

    for i, f in enumerate(table.schema):
        if pa.types.is_null(f.type):
            if f.name in _INT_COLUMNS or f.name.startswith(_INT_PREFIXES):
                t = pa.int64()
            elif f.name in _FLOAT_COLUMNS:
                t = pa.float64()
            else:
                t = pa.string()
            table = table.set_column(i, pa.field(f.name, t), table.column(i).cast(t))
    return table


def write_rows(directory: str | os.PathLike, rows: list[dict]) -> Path | None:
    """Append `rows` to the dataset as one new Parquet file (atomically: written, then renamed)."""
    if not rows:
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    import signal

    d = Path(directory)
    name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
    tmp = d / f".{name}.tmp"
    # every row's columns (from_pylist would take the first row's keys only and drop the rest:
    # a batch of cells with memcgs and without)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    table = _typed(pa.Table.from_pydict({k: [r.get(k) for r in rows] for k in keys}))
    # ^C waits until the file is in place: the rows are then written exactly once
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, d / name)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return d / name


def write_grid(directory: str | os.PathLike, cells: list[dict]) -> None:
    d = Path(directory)
    tmp = d / ".grid.json.tmp"
    tmp.write_text(json.dumps({"cells": cells}, indent=1, default=str))
    os.replace(tmp, d / "_grid.json")


def read_grid(directory: str | os.PathLike) -> list[dict]:
    """The cells of the last sweep written to `directory`."""
    p = Path(directory) / "_grid.json"
    try:
        return json.loads(p.read_text())["cells"]
    except FileNotFoundError:
        raise ReclaimExtError(f"{directory}: no sweep here (no _grid.json): give the grid again") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ReclaimExtError(f"{p}: unreadable ({e})") from None


def _table(directory: str | os.PathLike, columns: list[str] | None = None):
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(p, columns=columns) for p in parts(directory)]
    if not tables:
        return None
    try:
        return _typed(pa.concat_tables(tables, promote_options="permissive"))
    except (pa.ArrowTypeError, pa.ArrowInvalid) as e:  # parts that disagree on a column's type
        raise ReclaimExtError(f"{directory}: its Parquet files do not agree on a column ({e}); were they "
                              "written by different reclaim-ext versions?") from None


def cell_ids(directory: str | os.PathLike) -> set[str]:
    """The ids of the cells the dataset holds a row for."""
    t = _table(directory, ["cell_id"])
    return set() if t is None else set(t.column("cell_id").to_pylist())


def load(directory: str | os.PathLike):
    """The sweep's rows as a pandas DataFrame, in the order they were written: one row per cell,
    with its config (policy, mechanisms, memory_pages or capacity, workload, workload_params as
    JSON, trace, seed, ...), status ('ok', 'oom', 'error') and error, accesses, misses,
    miss_ratio, modeled_seconds, wall_seconds, every vmstat_* and cost_* counter, and the
    versions (reclaim_ext_version, git_commit, ...). Integer counters are pandas' nullable Int64
    (missing, <NA>, in the row of a failed cell). An empty DataFrame for a directory of no rows."""
    import pandas as pd
    import pyarrow as pa

    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"{directory}: no such directory")
    t = _table(d)
    if t is None:
        return pd.DataFrame()
    return t.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get).reset_index(drop=True)


__all__ = ["cell_ids", "load", "parts", "read_grid", "write_grid", "write_rows"]
