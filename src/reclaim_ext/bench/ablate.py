"""Mechanism ablation: one policy on one trace, unmodified (the baseline) and once per variant.

A variant is a --mechanism spec applied on top of the run's own (`cfg.mechanisms`); by default the
policy class's `ablation_variants` (MGLRU: each mechanism removed on its own; classic: MGLRU's
mechanisms added). The trace is built once and every run replays the same records, in parallel
across a process pool. Runs are deterministic, so the metrics do not depend on `jobs`.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace

from ..api import RunConfig, build_trace, result_source, run
from ..core.ops import CORE_VARIANTS
from ..errors import ConfigError, ReclaimExtError
from ..policies import BUILTIN, parse_mechanisms
from ..trace import ArrayTrace

# (key, label): the compared metrics, in table order. refaults = workingset_refault_anon + _file;
# the cost counters come from the result's "cost".
METRICS = (
    ("misses", "misses"),
    ("refaults", "refaults"),
    ("modeled_seconds", "modelled s"),
    ("pages_scanned", "pages scanned (pgscan + pgrefill)"),  # `run`'s row of that name: every list
    ("ptes_walked", "PTEs walked"),
    ("rmap_walks", "rmap walks"),
    ("lru_lock_ops", "LRU-lock ops"),
    ("atomic_updates", "atomic updates"),  # what lockfree trades LRU-lock operations for
)
# The workload `reclaim-ext ablate` replays when given none: processes with mapped anonymous and file
# pages (run's default zipf reads through the page cache, maps nothing, so every page-table
# mechanism is idle and every row reads ±0%), shortened to keep the default ablation under a minute.
DEFAULT_WORKLOAD = ("mixed", {"accesses": 500_000})
_COST_METRICS = ("pages_scanned", "ptes_walked", "rmap_walks", "lru_lock_ops", "atomic_updates")


def metrics_of(result: dict) -> dict:
    """The compared metrics of one api.run result, plus its wall seconds."""
    vm, cost = result["vmstat"], result["cost"]
    out = {
        "misses": result["misses"],
        "refaults": vm["workingset_refault_anon"] + vm["workingset_refault_file"],
        "modeled_seconds": result["modeled_seconds"],
    }
    for k in _COST_METRICS:
        out[k] = cost.get(k, 0)
    out["wall_seconds"] = result["wall_seconds"]
    return out


def relative(value: float, base: float) -> float | None:
    """Change from `base` to `value` in percent; None for a change from 0 to non-zero."""
    if base == 0:
        return 0.0 if value == 0 else None
    return (value - base) / base * 100.0


def combine(base: str | None, variant: str | None) -> str | None:
    """A variant's full mechanism spec: the run's own, then the variant's (later entries win)."""
    parts = [s for s in (base, variant) if s]
    return ",".join(parts) or None


# ---- worker side ---------------------------------------------------------------------------------

_TRACE: ArrayTrace | None = None


def _init_worker(records, name: str, params: dict) -> None:
    global _TRACE
    _TRACE = None if records is None else ArrayTrace(name, records, params)


def _run_one(cfg: RunConfig, label: str) -> dict:
    """One run on the shared trace. Running out of memory is a result (the variant could not run
    the workload), not an error of the whole comparison."""
    from ..core.engine import OutOfMemory

    try:
        res = run(cfg, trace=_TRACE)
    except OutOfMemory as e:
        msg = str(e) if str(e).startswith("out of memory") else f"out of memory: {e}"
        return {"effective": dict(cfg.make_policy().mech), "metrics": None, "vmstat": None, "cost": None,
                "error": msg}
    except ReclaimExtError as e:  # some subclasses do not survive pickling back to the parent
        raise ReclaimExtError(f"{label}: {e}") from None
    return {"effective": res["mechanisms"], "metrics": metrics_of(res), "vmstat": res["vmstat"],
            "cost": res["cost"], "error": None}


def _check_baseline(r: dict) -> None:
    if r["error"]:
        from ..core.engine import OutOfMemory

        raise OutOfMemory(f"baseline: {r['error']}")


# ---- driver ----------------------------------------------------------------------------------------


def default_variants(cfg: RunConfig) -> list[str]:
    """The policy's ablation variants, and on a machine with memory tiers the core's (CORE_VARIANTS:
    -demotion, +promotion), which act nowhere else."""
    tiered = any(t != "dram" for t in (cfg.tiers or ()))
    return list(BUILTIN[cfg.policy].ablation_variants + (CORE_VARIANTS if tiered else ()))


def ablate(cfg: RunConfig, variants=None, jobs: int | None = None,
           on_done: Callable[[str], None] | None = None) -> dict:
    """Run `cfg` as the baseline and once per variant spec (default: the policy's
    ablation_variants) on the same trace; `jobs` processes (default os.cpu_count(); 1 runs
    in-process). `on_done(label)` is called as each run finishes. Returns a JSON-ready dict:
    "baseline" and each of "variants" hold "mechanisms" (the spec), "effective" (on/off per
    mechanism), "metrics" (METRICS keys and wall_seconds), "vmstat", "cost" and "error" (None, or
    "out of memory: ..." for a variant that could not run the workload: no metrics then); variants
    add "relative", the change of each metric against the baseline in percent (None for a change
    from 0 to non-zero). A baseline that runs out of memory raises OutOfMemory."""
    cfg.validate()
    if jobs is None:
        jobs = os.cpu_count() or 1
    if jobs < 1:
        raise ConfigError(f"jobs: {jobs} must be at least 1")
    cls = BUILTIN[cfg.policy]
    variants = default_variants(cfg) if variants is None else list(variants)
    if not variants:
        raise ConfigError(f"ablate: policy {cfg.policy} has no ablation variants; give some")
    for spec in variants:  # a bad variant fails before anything runs
        try:
            parse_mechanisms(spec, cls)
        except ConfigError as e:
            raise ConfigError(f"variant {spec!r}: {e}") from None
    cfgs = [cfg] + [replace(cfg, mechanisms=combine(cfg.mechanisms, spec)) for spec in variants]
    labels = ["baseline"] + list(variants)
    for c in cfgs:
        c.validate()

    trace = build_trace(cfg)
    records = trace.to_array()
    jobs = min(jobs, len(cfgs))

    t0 = time.perf_counter()
    runs: list[dict | None] = [None] * len(cfgs)
    if jobs == 1:
        _init_worker(records, trace.name, trace.params)
        try:
            for i, c in enumerate(cfgs):
                runs[i] = _run_one(c, labels[i])
                if i == 0:
                    _check_baseline(runs[0])
                if on_done:
                    on_done(labels[i])
        finally:
            _init_worker(None, "", {})
    else:
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker,
                                 initargs=(records, trace.name, trace.params)) as pool:
            futures = {pool.submit(_run_one, c, labels[i]): i for i, c in enumerate(cfgs)}
            try:
                for fut in as_completed(futures):
                    i = futures[fut]
                    runs[i] = fut.result()
                    if i == 0:
                        _check_baseline(runs[0])
                    if on_done:
                        on_done(labels[i])
            except BaseException:  # a failed baseline, a bug, ^C: drop the runs not started yet
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    wall = time.perf_counter() - t0

    base = runs[0]
    out_variants = []
    for spec, r in zip(variants, runs[1:]):
        rel = None if r["error"] else {k: relative(r["metrics"][k], base["metrics"][k]) for k, _ in METRICS}
        out_variants.append({"mechanisms": spec, **r, "relative": rel})
    return {
        **result_source(cfg, trace),
        "accesses": len(records),
        "memory_pages": cfg.memory,
        "swap_pages": cfg.memory if cfg.swap is None else cfg.swap,
        "swappiness": cfg.swappiness,
        "mode": cfg.mode,
        "min_ttl_ms": cfg.min_ttl_ms,
        "jobs": jobs,
        "wall_seconds": wall,
        "baseline": {"mechanisms": cfg.mechanisms or "", **base},
        "variants": out_variants,
    }


# ---- presentation ------------------------------------------------------------------------------------


def _fmt_value(key: str, v) -> str:
    if key == "modeled_seconds":
        return f"{v:.3f}"
    return f"{v:,}"


def _fmt_change(rel: float | None, value) -> str:
    if rel is None:
        return "new"
    if rel == 0:
        return "" if value == 0 else "±0%"
    return f"{rel:+.1f}%"


def table_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the ablation table: one row per run, each metric as the value and its
    change against the baseline ("new" for a change from 0)."""
    header = ["variant"] + [label for _, label in METRICS] + ["wall s"]
    rows = []
    base = result["baseline"]
    rows.append(["baseline" + (f" ({base['mechanisms']})" if base["mechanisms"] else "")]
                + [_fmt_value(k, base["metrics"][k]) for k, _ in METRICS]
                + [f"{base['metrics']['wall_seconds']:.2f}"])
    for v in result["variants"]:
        cells = [v["mechanisms"]]
        if v["error"]:
            rows.append(cells + [v["error"].split(":")[0]] + ["-"] * len(METRICS))
            continue
        for k, _ in METRICS:
            val = v["metrics"][k]
            change = _fmt_change(v["relative"][k], val)
            cells.append(_fmt_value(k, val) + (f" ({change})" if change else ""))
        cells.append(f"{v['metrics']['wall_seconds']:.2f}")
        rows.append(cells)
    return header, rows


def title(result: dict) -> str:
    from ..machine.units import format_size

    src = result["trace"] or f"workload {result['workload']}"
    on = [m for m, v in result["baseline"]["effective"].items() if v]
    if result.get("default_workload"):
        params = " ".join(f"-p {k}={v}" for k, v in DEFAULT_WORKLOAD[1].items())
        src += f" {params} (ablate's default; choose with --workload or --trace)"
    return (f"ablation of {result['policy']} on {src}, memory {format_size(result['memory_pages'])}, "
            f"{result['accesses']:,} accesses; baseline mechanisms: {', '.join(on) or 'none'}")


def format_plain(result: dict) -> str:
    """The table as aligned plain text (for pipes and files)."""
    header, rows = table_rows(result)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = [title(result)]
    for r in [header] + rows:
        cells = (c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
        lines.append("  ".join(cells).rstrip())
    lines.append(f"total wall time {result['wall_seconds']:.1f} s with {result['jobs']} process(es)")
    return "\n".join(lines) + "\n"


def rich_table(result: dict):
    from rich.table import Table

    header, rows = table_rows(result)
    t = Table(title=title(result), caption=f"total wall time {result['wall_seconds']:.1f} s "
                                            f"with {result['jobs']} process(es)")
    for i, h in enumerate(header):
        t.add_column(h, justify="left" if i == 0 else "right", style="bold" if i == 0 else None)
    for r in rows:
        t.add_row(*r)
    return t


__all__ = ["METRICS", "ablate", "combine", "format_plain", "metrics_of", "relative", "rich_table", "table_rows"]
