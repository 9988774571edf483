"""The trace layer: the page-access record format, synthetic workloads and trace-file readers.

A trace is a replayable stream of RECORD_DTYPE arrays (see record.py): which process touches which
page, how (Kind) and whether it writes. Traces come from `make_workload` (synthetic, deterministic
from a seed) or `open_trace` (recorded files); `write_native` saves any trace in reclaim-ext's own
format. docs/traces.md describes everything here.
"""

from .base import ArrayTrace, Trace
from .generators import WORKLOADS, Param, WorkloadSpec, make_workload, parse_workload_params, zipf_ids
from .readers import FORMATS, open_trace, write_native
from .record import RECORD_DTYPE, Kind

__all__ = [
    "ArrayTrace",
    "FORMATS",
    "Kind",
    "Param",
    "RECORD_DTYPE",
    "Trace",
    "WORKLOADS",
    "WorkloadSpec",
    "make_workload",
    "open_trace",
    "parse_workload_params",
    "write_native",
    "zipf_ids",
]
