"""Calibration: the model memcg's memory.max from the kernel memcg's limit and the measured overhead.

The kernel memcg's limit covers everything charged to it: the data file's page cache (what the
model simulates) plus the worker's own anon memory (rss, ~55 pages for the C worker), kernel memory
(xarray and shadow nodes, task struct and stack, slab; page tables in mmap mode) and the per-CPU
charge stock. The worker samples, every SAMPLE_EVERY accesses, the resident data-file pages
(whole-file mincore) and the memcg's usage (memory.usage_in_bytes / memory.current); their
difference is that overhead. In steady state (from the first sample whose residency reaches 97% of
the run's maximum) its median is the run's overhead, and

    model memory.max = limit − overhead      (median of the runs' overheads)

Nothing is subtracted for the gap between usage and limit: the kernel reclaims when a charge
fails at the limit and frees ≥ 32 pages (try_to_free_mem_cgroup_pages), and the model's memcg
does the same at its max, so the sawtooth below the limit is the model's own, not a parameter.
C_eff (mean steady-state residency, with min and max) is reported as a cross-check: the model's
mean residency should land in the kernel's [c_min, c_max] band.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

from ..errors import ReclaimExtError


class CalibrationError(ReclaimExtError, ValueError):
    """The runs cannot be calibrated (input too small for the measurement); one error line in the CLI."""

PAGE = 4096
STEADY_FRACTION = 0.97


@dataclass
class RunCalibration:
    """What one kernel run's samples say (pages)."""

    overhead: int          # median(usage − resident data pages) in steady state
    c_eff: float           # mean resident data pages in steady state
    c_min: int
    c_max: int
    gap: float             # mean(limit − usage) in steady state (reported, not subtracted)
    samples: int           # steady-state samples used

    def to_dict(self) -> dict:
        return asdict(self)


def steady_samples(samples: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """The samples (position, resident pages, usage bytes) from the first one whose residency
    reaches 97% of the run's maximum, up to the end; samples without a usage reading are dropped."""
    good = [s for s in samples if s[2] >= 0]
    if not good:
        return []
    top = max(s[1] for s in good)
    first = next(i for i, s in enumerate(good) if s[1] >= STEADY_FRACTION * top)
    return good[first:]


def calibrate_run(samples: list[tuple[int, int, int]], limit_pages: int) -> RunCalibration:
    """One run's overhead, C_eff band and gap from its samples."""
    st = steady_samples(samples)
    if not st:
        raise CalibrationError("no calibration samples with a usage reading: the replay is shorter than one "
                               "sample (1000 accesses); replay more accesses (-p accesses=N, a longer --trace or "
                               "a larger --max-accesses)")
    res = [s[1] for s in st]
    usage = [s[2] // PAGE for s in st]
    over = [u - r for u, r in zip(usage, res)]
    return RunCalibration(
        overhead=int(round(statistics.median(over))),
        c_eff=statistics.fmean(res),
        c_min=min(res),
        c_max=max(res),
        gap=statistics.fmean(limit_pages - u for u in usage),
        samples=len(st),
    )


@dataclass
class Calibration:
    """The one calibration of an invocation: the model memcg's max for the given limit."""

    limit_pages: int
    overhead: int          # pages charged to the kernel memcg that are not data-file cache
    model_max: int         # limit − overhead: the model memcg's memory.max
    source: str            # "measured" (median over runs) or "given" (--overhead)
    runs: list[RunCalibration]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["runs"] = [r.to_dict() for r in self.runs]
        return d


def combine(runs: list[RunCalibration], limit_pages: int, overhead: int | None = None) -> Calibration:
    """The model max from the runs' overheads (their median), or from a given overhead."""
    if overhead is None:
        if not runs:
            raise CalibrationError("no runs to calibrate from")
        over = int(round(statistics.median(r.overhead for r in runs)))
        source = "measured"
    else:
        over, source = int(overhead), "given"
    model_max = limit_pages - over
    if model_max < 32:
        raise CalibrationError(f"limit {limit_pages} pages minus overhead {over} pages leaves {model_max} pages "
                               "for the data (need at least 32): raise --memory"
                               + (" or lower --overhead" if overhead is not None else ""))
    return Calibration(limit_pages=limit_pages, overhead=over, model_max=model_max, source=source, runs=list(runs))


def relative_error(model: float, kernel: float) -> float:
    """(model − kernel) / kernel (0 when both are 0)."""
    if kernel == 0:
        return 0.0 if model == 0 else float("inf")
    return (model - kernel) / kernel


def noncompulsory_error(model: float, kernel: float, distinct: int) -> float | None:
    """The error on non-compulsory misses, (model − kernel) / (kernel − distinct): every first touch
    misses on both sides, so only the misses reclaim caused are compared. None when the kernel had
    no non-compulsory miss (nothing to compare: a configuration the limit does not bind)."""
    k_nc = kernel - distinct
    if k_nc <= 0:
        return None
    return (model - kernel) / k_nc


def _median_worst(errs: list[float | None]) -> tuple[float | None, float | None, int | None]:
    """Median and worst |e| of the defined errors, and the index of the worst (None, None, None if none)."""
    got = [(abs(e), i) for i, e in enumerate(errs) if e is not None]
    if not got:
        return None, None, None
    worst, at = max(got)
    return statistics.median(a for a, _ in got), worst, at


def per_run_comparison(kernel_misses: list[int], model_misses: list[int], overheads: list[int],
                       limit_pages: int, distinct: int) -> dict:
    """Run by run: kernel run i against the model at that run's own calibrated capacity (limit −
    the run's overhead), which gave model_misses[i]. The errors of every run, on all misses and on
    non-compulsory ones, and the median and worst |error| of them."""
    if not (len(kernel_misses) == len(model_misses) == len(overheads)) or not kernel_misses:
        raise ValueError("per_run_comparison: one model run per kernel run")
    runs = []
    for k, m, o in zip(kernel_misses, model_misses, overheads):
        runs.append({"kernel_misses": int(k), "overhead": int(o), "model_max": int(limit_pages - o),
                     "model_misses": int(m), "error": relative_error(m, k),
                     "error_noncompulsory": noncompulsory_error(m, k, distinct)})
    med, worst, at = _median_worst([r["error"] for r in runs])
    med_nc, worst_nc, at_nc = _median_worst([r["error_noncompulsory"] for r in runs])
    return {"runs": runs, "median_abs_error": med, "worst_abs_error": worst,
            "worst_run": None if at is None else at + 1,
            "median_abs_error_noncompulsory": med_nc, "worst_abs_error_noncompulsory": worst_nc,
            "worst_run_noncompulsory": None if at_nc is None else at_nc + 1}
