"""Sweeps: a grid of runs (policies x mechanism sets x memory sizes x scenarios x seeds) on Dask.

A grid comes from command-line flags (`grid_from_options`) or a TOML file (`grid_from_toml`) and
expands into cells (`Grid.cells`): one cell is one run, a JSON-ready dict of RunConfig fields,
named by a stable id (`cell_id`: a hash of its canonical JSON, so the same run has the same id in
every sweep and after a restart). `run_sweep` runs the cells on a Dask cluster (a
`distributed.LocalCluster` of one single-threaded worker process per core by default, or the
scheduler at an address) and appends each finished cell as one row (`run_cell`: the config
columns, every vmstat and cost counter, misses, miss ratio, modelled and wall seconds, versions)
to a Parquet dataset (reclaim_ext.results). A cell that fails (out of memory, a bad policy, an
exception, a worker that died) is a row with `status` and `error`, not a failed sweep; `resume`
runs only the cells whose id is not in the dataset yet.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, ReclaimExtError
from .machine.units import parse_size

GRID_FILE = "_grid.json"  # the cells of the last sweep written to a dataset (for --resume alone)
DEFAULT_POLICY = "classic"
DEFAULT_MEMORY = "64MiB"
DEFAULT_WORKLOAD = "zipf"
# RunConfig fields that are the same for every cell of a grid (flags or TOML top-level keys)
FIXED_KEYS = ("swap", "swappiness", "mode", "min_free_kbytes", "watermark_scale_factor", "min_ttl_ms", "memcgs")
_FIXED_DEFAULTS = {"swap": None, "swappiness": 60, "mode": "fast", "min_free_kbytes": None,
                   "watermark_scale_factor": 10, "min_ttl_ms": 0, "memcgs": None}
# the measured columns every row has (missing, null, in a failed cell's row)
MEASURED = ("accesses", "misses", "miss_ratio", "modeled_seconds", "wall_seconds")
_KERNEL_ONLY = ("swap", "swappiness", "min_free_kbytes", "watermark_scale_factor", "memcgs")


class SweepError(ReclaimExtError):
    """A grid or a sweep directory that cannot be used (one error line on the command line)."""


# ---- values: lists and ranges ------------------------------------------------------------------------

_RANGE = re.compile(r"^\s*(?P<lo>[^.]+?)\s*\.\.\s*(?P<hi>[^:/]+?)\s*(?:(?P<sep>[:/])\s*(?P<step>.+?))?\s*$")


def split_list(values: Iterable[str] | str | None) -> list[str]:
    """Repeated and comma-separated values as one list: ("a,b", "c") -> [a, b, c]."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out = []
    for v in values:
        out += [s.strip() for s in str(v).split(",") if s.strip()]
    return out


def parse_sizes(values, what: str = "memory") -> list[int]:
    """Sizes in pages from items like '64MiB', '16384', or ranges 'LO..HI:STEP' (LO, LO+STEP, ...
    up to HI inclusive) and 'LO..HI/N' (N sizes evenly spaced from LO to HI, rounded to pages).
    Duplicates are dropped; the order is kept."""
    out: list[int] = []
    for item in values if isinstance(values, list) else split_list(values):
        if isinstance(item, int) and not isinstance(item, bool):
            pages = [parse_size(item, what)]
        else:
            m = _RANGE.match(str(item)) if ".." in str(item) else None
            pages = _size_range(m, str(item), what) if m else [parse_size(str(item), what)]
        out += [p for p in pages if p not in out]
    return out


def _size_range(m: re.Match, item: str, what: str) -> list[int]:
    lo, hi = parse_size(m["lo"], what), parse_size(m["hi"], what)
    if hi < lo:
        raise ConfigError(f"{what}: {item!r}: the range ends below its start")
    if m["sep"] is None:
        raise ConfigError(f"{what}: {item!r}: give a step (LO..HI:STEP) or a count (LO..HI/N)")
    if m["sep"] == ":":
        step = parse_size(m["step"], what)
        if step < 1:
            raise ConfigError(f"{what}: {item!r}: the step must be at least one page")
        n = (hi - lo) // step + 1
        if n > 10_000:
            raise ConfigError(f"{what}: {item!r} has {n:,} sizes (at most 10,000)")
        return [lo + i * step for i in range(n)]
    try:
        n = int(m["step"])
    except ValueError:
        raise ConfigError(f"{what}: {item!r}: {m['step']!r} is not a number of sizes") from None
    if not 1 <= n <= 10_000:
        raise ConfigError(f"{what}: {item!r}: the number of sizes must be 1 to 10,000")
    if n == 1:
        return [lo]
    return sorted({lo + round(i * (hi - lo) / (n - 1)) for i in range(n)})


def parse_ints(values, what: str = "seed") -> list[int]:
    """Integers from items like '0', '1,2' or ranges 'LO..HI' (inclusive)."""
    out: list[int] = []
    items = values if isinstance(values, list) else split_list(values)
    for item in items:
        try:
            if isinstance(item, bool):
                raise ValueError
            if isinstance(item, int):
                vals = [item]
            elif ".." in str(item):
                lo, hi = (int(x) for x in str(item).split("..", 1))
                if hi < lo or hi - lo > 10_000:
                    raise ValueError
                vals = list(range(lo, hi + 1))
            else:
                vals = [int(str(item))]
        except ValueError:
            raise ConfigError(f"{what}: {item!r} is not an integer or a range LO..HI") from None
        if any(v < 0 for v in vals):
            raise ConfigError(f"{what}: {item!r} must not be negative")
        out += [v for v in vals if v not in out]
    return out


def _mechanism_set(spec) -> str | None:
    """One --mechanism set: None for the policy's own ('', 'default', 'none' given as the policy's)."""
    if spec is None:
        return None
    s = str(spec).strip()
    return None if s in ("", "default") else s


# ---- scenarios and grids -----------------------------------------------------------------------------


def _scenario(workload: str | None = None, params: dict | None = None, trace: str | None = None,
              trace_format: str | None = None, trace_opts: dict | None = None) -> dict:
    return {"workload": None if trace else workload, "workload_params": dict(sorted((params or {}).items())),
            "trace": trace, "trace_format": trace_format if trace else None,
            "trace_opts": dict(sorted((trace_opts or {}).items()))}


def workload_scenarios(workload: str, params: dict[str, Any]) -> list[dict]:
    """The scenarios of one workload with parameters, a list value giving one scenario per value
    (e.g. alpha=[0.8, 1.2]); values are checked and typed by the workload's own parser."""
    from .trace import parse_workload_params

    if "seed" in params:
        raise ConfigError(f"workload {workload}: give seeds with --seed (the seed axis), not as a parameter")
    keys = list(params)
    choices = [v if isinstance(v, list) else split_list(v) if isinstance(v, str) else [v] for v in params.values()]
    for k, c in zip(keys, choices):
        if not c:
            raise ConfigError(f"workload {workload}: parameter {k} has no value")
    out = []
    for combo in itertools.product(*choices):
        items = [f"{k}={_param_text(v)}" for k, v in zip(keys, combo)]
        out.append(_scenario(workload, parse_workload_params(workload, items)))
    if not keys:
        parse_workload_params(workload, [])  # an unknown workload fails here
        out = [_scenario(workload, {})]
    return out


def _param_text(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def trace_scenario(path: str, trace_format: str | None, trace_opts: dict | None = None, base: Path | None = None) -> dict:
    from .trace import FORMATS

    if not trace_format:
        raise ConfigError(f"trace {path}: needs a format ({', '.join(sorted(FORMATS))})")
    if trace_format not in FORMATS:
        raise ConfigError(f"trace {path}: unknown format {trace_format!r} ({', '.join(sorted(FORMATS))})")
    p = Path(path).expanduser()
    if base is not None and not p.is_absolute():
        p = base / p
    if not p.is_file():
        raise ConfigError(f"trace {path}: no such file")
    return _scenario(trace=str(p.resolve()), trace_format=trace_format,
                     trace_opts={k: str(v) for k, v in (trace_opts or {}).items()})


@dataclass
class Grid:
    """The axes of a sweep and the options every cell shares. Sizes are pages; a mechanism set of
    None is the policy's own."""

    policies: list[str] = field(default_factory=lambda: [DEFAULT_POLICY])
    mechanisms: list[str | None] = field(default_factory=lambda: [None])
    memories: list[int] = field(default_factory=lambda: [parse_size(DEFAULT_MEMORY)])
    scenarios: list[dict] = field(default_factory=lambda: [_scenario(DEFAULT_WORKLOAD)])
    seeds: list[int] = field(default_factory=lambda: [0])
    cache: bool = False
    capacities: list[int] = field(default_factory=list)
    fixed: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        for name, axis in (("policy", self.policies), ("mechanism", self.mechanisms), ("scenario", self.scenarios),
                           ("seed", self.seeds)):
            if not axis:
                raise ConfigError(f"the grid has no {name}")
        for p in self.policies:
            policy_attachments(p)
        if self.cache:
            if not self.capacities:
                raise ConfigError("--cache needs --capacity (one or more sizes)")
            given = [k for k in _KERNEL_ONLY if self.fixed.get(k, _FIXED_DEFAULTS[k]) != _FIXED_DEFAULTS[k]]
            if given:
                raise ConfigError(f"{', '.join(given)} do(es) not apply with --cache: plain-cache mode has no "
                                  "machine, only --capacity pages")
        else:
            if self.capacities:
                raise ConfigError("--capacity applies to --cache (plain-cache mode); use --memory otherwise")
            if not self.memories:
                raise ConfigError("the grid has no memory size")
        unknown = set(self.fixed) - set(FIXED_KEYS)
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(sorted(unknown))}")
        mode = self.fixed.get("mode", "fast")
        if mode not in ("fast", "exact"):
            raise ConfigError(f"mode: {mode!r} is not fast or exact")
        memcgs = self.fixed.get("memcgs")
        if memcgs is not None:  # --memcg specs, as the run command takes them
            if isinstance(memcgs, str) or not all(isinstance(m, str) for m in memcgs):
                raise ConfigError(f"memcgs: {memcgs!r} is not a list of --memcg specs")
            from .api import RunConfig

            RunConfig(memcgs=list(memcgs)).memcg_plan()

    def cells(self) -> list[dict]:
        """Every cell, scenario and seed outermost (so a worker replays one trace for many runs),
        then policy, mechanism set and size; each cell once (by id)."""
        self.check()
        fixed = {k: self.fixed.get(k, d) for k, d in _FIXED_DEFAULTS.items()}
        if fixed["swap"] is not None:
            fixed["swap"] = parse_size(fixed["swap"], "swap")
        sizes = self.capacities if self.cache else self.memories
        out, seen = [], set()
        for sc, seed, pol, mech, size in itertools.product(self.scenarios, self.seeds, self.policies,
                                                           self.mechanisms, sizes):
            cell = {"policy": pol, "mechanisms": mech, **sc, "seed": seed, "cache": self.cache}
            if self.cache:
                cell.update(capacity=size, memory=None, mode="fast", min_ttl_ms=fixed["min_ttl_ms"],
                            **{k: None for k in _KERNEL_ONLY})
            else:
                cell.update(capacity=None, memory=size, **fixed)
            if cell.get("memcgs") is None:  # a cell without memcgs keeps the id it had before they existed
                cell.pop("memcgs", None)
            else:
                cell["memcgs"] = list(cell["memcgs"])
            cid = cell_id(cell)
            if cid not in seen:
                seen.add(cid)
                out.append(cell)
        return out


def cell_id(cell: dict) -> str:
    """A stable name for a cell: the first 16 hex digits of the SHA-256 of its canonical JSON
    (sorted keys; sizes in pages), the same in every sweep, process and version."""
    canon = json.dumps(cell, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def describe_cell(cell: dict) -> str:
    """One short line naming a cell: policy, mechanisms, size, scenario, seed."""
    from .machine.units import format_size

    parts = [cell["policy"]]
    if cell.get("mechanisms"):
        parts.append(f"[{cell['mechanisms']}]")
    parts.append(f"capacity {cell['capacity']:,}" if cell.get("cache") else f"memory {format_size(cell['memory'])}")
    if cell.get("trace"):
        parts.append(f"trace {Path(cell['trace']).name}")
    else:
        params = ",".join(f"{k}={v}" for k, v in cell["workload_params"].items())
        parts.append(f"{cell['workload']}" + (f"({params})" if params else ""))
    parts.append(f"seed {cell['seed']}")
    return " ".join(parts)


# ---- grids from flags and from TOML ---------------------------------------------------------------


def grid_from_options(policies=(), mechanisms=(), memories=(), workloads=(), params=(), traces=(),
                      trace_format=None, trace_opts=None, seeds=(), cache=False, capacities=(),
                      **fixed) -> Grid:
    """A grid from command-line style values: comma lists and repeats (policies, memories,
    workloads, traces, seeds, capacities), one mechanism set per item of `mechanisms` ('default'
    for the policy's own), `params` as KEY=VALUE items (a comma list of values: one scenario
    each), applied to every workload."""
    g = Grid(fixed={k: v for k, v in fixed.items() if v is not None})
    if policies:
        g.policies = split_list(policies)
    if mechanisms:
        g.mechanisms = list(dict.fromkeys(_mechanism_set(m) for m in mechanisms))
    g.cache = bool(cache)
    if cache:
        if memories:
            raise ConfigError("--memory does not apply with --cache: plain-cache mode has no machine, "
                              "only --capacity pages")
        g.capacities = parse_sizes(split_list(capacities), "capacity")
    else:
        if capacities:
            raise ConfigError("--capacity applies to --cache (plain-cache mode); use --memory otherwise")
        if memories:
            g.memories = parse_sizes(split_list(memories), "memory")
    if seeds:
        g.seeds = parse_ints(split_list(seeds), "seed")
    kv = _kv_items(params, "--param")
    if traces:
        if workloads:
            raise ConfigError("--workload does not apply with --trace: the trace is what is replayed")
        if kv:
            raise ConfigError("--param (workload parameters) does not apply to --trace")
        g.scenarios = [trace_scenario(t, trace_format, trace_opts) for t in split_list(traces)]
    else:
        if trace_format:
            raise ConfigError("--format needs --trace (it is the format of the trace file)")
        if trace_opts:
            raise ConfigError("--trace-opt needs --trace")
        names = split_list(workloads) or [DEFAULT_WORKLOAD]
        g.scenarios = [sc for w in names for sc in workload_scenarios(w, dict(kv))]
    g.check()
    return g


def _kv_items(items, what: str) -> list[tuple[str, str]]:
    out = []
    for item in items or ():
        k, sep, v = str(item).partition("=")
        if not sep or not k.strip():
            raise ConfigError(f"{what}: {item!r} is not KEY=VALUE")
        out.append((k.strip(), v.strip()))
    return out


_TOML_AXES = {"policy", "mechanism", "memory", "capacity", "seed", "cache", "workload", "params", "trace", "format",
              "trace_opts", "scenario"}
_TOML_SCENARIO = {"workload", "params", "trace", "format", "trace_opts"}


def grid_from_toml(path: str | os.PathLike) -> Grid:
    """A grid from a TOML file. Top-level keys: the axes `policy`, `mechanism` (a list of sets:
    "default", "-bloom", "+ptwalk,+lookaround"), `memory` (sizes and ranges) or `cache = true` with
    `capacity`, `seed` (integers and "LO..HI"); the scenarios, either `workload` (a name or list)
    with a `params` table, or `[[scenario]]` tables each with `workload` and `params` or `trace`,
    `format` and `trace_opts` (a list value in params: one scenario per value; trace paths relative
    to the file); and the shared options swap, swappiness, mode, min_free_kbytes,
    watermark_scale_factor, min_ttl_ms. Unknown keys are an error."""
    import tomllib

    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except OSError as e:
        raise SweepError(f"--grid {path}: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SweepError(f"--grid {path}: not valid TOML: {e}") from None
    try:
        return _grid_of(data, p.resolve().parent)
    except ReclaimExtError as e:
        raise SweepError(f"--grid {path}: {e}") from None


def _list(v, key: str) -> list:
    if isinstance(v, list):
        return v
    if isinstance(v, (str, int, float)) and not isinstance(v, bool):
        return [v]
    raise ConfigError(f"{key}: {v!r} is not a value or a list")


def _grid_of(data: dict, base: Path) -> Grid:
    unknown = set(data) - _TOML_AXES - set(FIXED_KEYS)
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(sorted(unknown))} (known: "
                          f"{', '.join(sorted(_TOML_AXES | set(FIXED_KEYS)))})")
    g = Grid(fixed={k: data[k] for k in FIXED_KEYS if k in data})
    for k in ("swappiness", "min_free_kbytes", "watermark_scale_factor"):
        if k in g.fixed and (not isinstance(g.fixed[k], int) or isinstance(g.fixed[k], bool)):
            raise ConfigError(f"{k}: {g.fixed[k]!r} is not an integer")
    if "min_ttl_ms" in g.fixed and (isinstance(g.fixed["min_ttl_ms"], bool)
                                    or not isinstance(g.fixed["min_ttl_ms"], (int, float))):
        raise ConfigError(f"min_ttl_ms: {g.fixed['min_ttl_ms']!r} is not a number")
    if "swappiness" in g.fixed and not 0 <= g.fixed["swappiness"] <= 200:
        raise ConfigError(f"swappiness: {g.fixed['swappiness']} is out of range 0..200")
    if "policy" in data:
        g.policies = [str(x) for x in _list(data["policy"], "policy")]
    if "mechanism" in data:
        g.mechanisms = list(dict.fromkeys(_mechanism_set(m) for m in _list(data["mechanism"], "mechanism")))
    cache = data.get("cache", False)
    if not isinstance(cache, bool):
        raise ConfigError(f"cache: {cache!r} is not true or false")
    g.cache = cache
    if cache:
        if "memory" in data:
            raise ConfigError("memory does not apply with cache = true (give capacity)")
        g.capacities = parse_sizes(_list(data.get("capacity", []), "capacity"), "capacity")
    else:
        if "capacity" in data:
            raise ConfigError("capacity applies to cache = true; use memory otherwise")
        if "memory" in data:
            g.memories = parse_sizes(_list(data["memory"], "memory"), "memory")
    if "seed" in data:
        g.seeds = parse_ints(_list(data["seed"], "seed"), "seed")
    flat = {k for k in _TOML_SCENARIO if k in data}
    if "scenario" in data:
        if flat:
            raise ConfigError(f"give scenarios either as [[scenario]] tables or as top-level {', '.join(sorted(flat))}, "
                              "not both")
        tables = data["scenario"]
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise ConfigError("scenario: write each as a [[scenario]] table")
        g.scenarios = [sc for i, t in enumerate(tables) for sc in _scenarios_of(t, base, f"scenario {i + 1}")]
    elif flat:
        g.scenarios = _scenarios_of({k: data[k] for k in flat}, base, "scenario")
    g.check()
    return g


def _scenarios_of(t: dict, base: Path, where: str) -> list[dict]:
    unknown = set(t) - _TOML_SCENARIO
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} "
                          f"(known: {', '.join(sorted(_TOML_SCENARIO))})")
    params = t.get("params", {})
    opts = t.get("trace_opts", {})
    if not isinstance(params, dict) or not isinstance(opts, dict):
        raise ConfigError(f"{where}: params and trace_opts are tables")
    if "trace" in t:
        if "workload" in t or params:
            raise ConfigError(f"{where}: a trace scenario takes no workload or params")
        return [trace_scenario(str(x), t.get("format"), opts, base) for x in _list(t["trace"], "trace")]
    if "format" in t or opts:
        raise ConfigError(f"{where}: format and trace_opts need a trace")
    names = [str(x) for x in _list(t.get("workload", DEFAULT_WORKLOAD), "workload")]
    return [sc for w in names for sc in workload_scenarios(w, params)]


# ---- one cell (runs on a worker) --------------------------------------------------------------------

_TRACE_CACHE: dict = {}  # this worker's last trace: (key, ArrayTrace)


def _trace_for(cfg) -> Any:
    """The cell's trace, kept in memory for the next cell of the same scenario and seed."""
    from .api import build_trace
    from .trace import ArrayTrace

    key = json.dumps([cfg.workload, cfg.workload_params, cfg.trace, cfg.trace_format, cfg.trace_opts, cfg.seed],
                     sort_keys=True, default=str)
    hit = _TRACE_CACHE.get(key)
    if hit is None:
        trace = build_trace(cfg)
        hit = ArrayTrace(trace.name, trace.to_array(), trace.params)
        _TRACE_CACHE.clear()
        _TRACE_CACHE[key] = hit
    return hit


def policy_attachments(text: str) -> tuple[str, str, list[str]]:
    """A grid's policy: POLICY, or reclaim_ext policies attached to scopes, POLICY[@SCOPE] joined by
    '+' (lfu@memcg:/a+mru@memcg:/b: LFU governs memcg a and MRU memcg b). Returns the run's
    --policy, its --scope and a --switch 0:POLICY@SCOPE for each further one."""
    parts = text.split("+")
    first, at, scope = parts[0].partition("@")
    if not first or (at and not scope):
        raise ConfigError(f"policy {text!r}: {parts[0]!r} is not POLICY or POLICY@SCOPE")
    switches = []
    for p in parts[1:]:
        pol, at, sc = p.partition("@")
        if not (pol and at and sc):
            raise ConfigError(f"policy {text!r}: {p!r} is not POLICY@SCOPE (each policy after the first names "
                              "its scope)")
        switches.append(f"0:{pol}@{sc}")
    return first, scope or "system", switches


def run_config(cell: dict):
    """The RunConfig of a cell."""
    from .api import RunConfig

    kw = {k: v for k, v in cell.items() if v is not None and k not in ("cache", "suite_scenario")}
    kw["policy"], kw["scope"], kw["switches"] = policy_attachments(cell["policy"])
    kw["cache"] = bool(cell.get("cache"))
    kw["workload_params"] = dict(cell.get("workload_params") or {})
    kw["trace_opts"] = dict(cell.get("trace_opts") or {})
    if cell.get("trace"):
        kw["workload"] = None
    kw["check"] = False
    return RunConfig(**kw)


def config_columns(cell: dict) -> dict:
    """The config columns of a cell's row (params and reader options as JSON text)."""
    return {
        "policy": cell["policy"],
        "mechanisms": cell.get("mechanisms") or "",
        "cache": bool(cell.get("cache")),
        "memory_pages": cell.get("memory"),
        "capacity": cell.get("capacity"),
        "workload": cell.get("workload"),
        "workload_params": json.dumps(cell.get("workload_params") or {}, sort_keys=True),
        "trace": cell.get("trace"),
        "trace_format": cell.get("trace_format"),
        "trace_opts": json.dumps(cell.get("trace_opts") or {}, sort_keys=True),
        "seed": cell["seed"],
        "swap": cell.get("swap"),
        "swappiness": cell.get("swappiness"),
        "mode": cell.get("mode"),
        "min_free_kbytes": cell.get("min_free_kbytes"),
        "watermark_scale_factor": cell.get("watermark_scale_factor"),
        "min_ttl_ms": float(cell.get("min_ttl_ms") or 0),
        "memcgs": json.dumps(cell.get("memcgs")) if cell.get("memcgs") else None,
        "suite_scenario": cell.get("suite_scenario"),  # the benchmark scenario (reclaim_ext.suite), if any
    }


def lru_gen_young_shares(states: list[dict] | None) -> dict:
    """MGLRU's distribution of each type over its generations, summed over the lruvecs of a result's
    `lru_gen` list: the share of the type's pages in the two youngest generations (max_seq and
    max_seq - 1, where new and promoted folios go). Both None without MGLRU state."""
    young, total = [0, 0], [0, 0]
    for st in states or ():
        for g in st["generations"]:
            for t, name in enumerate(("anon", "file")):
                total[t] += g[name]
                young[t] += g[name] if g["seq"] >= st["max_seq"] - 1 else 0
    return {f"lru_gen_{name}_young_share": (young[t] / total[t] if total[t] else None) if states else None
            for t, name in enumerate(("anon", "file"))}


def result_columns(res: dict) -> dict:
    """The measured columns of a result: counts, ratios, seconds, and every vmstat (vmstat_*),
    cost (cost_*) and plain-cache event (events_*) counter, flattened; the end state: free pages, MemAvailable
    (mem_available) and MGLRU's young shares (lru_gen_young_shares)."""
    out = {k: res.get(k) for k in ("accesses", "misses", "miss_ratio", "modeled_seconds", "wall_seconds",
                                   "accesses_per_second", "swap_pages", "hits", "evictions", "objects")}
    for group in ("vmstat", "cost", "events"):
        for k, v in (res.get(group) or {}).items():
            out[f"{group}_{k}"] = v
    for m in res.get("memcgs") or ():  # each memcg but the root: its memory.stat, memory.events and usage
        if m.get("name", "/") == "/":
            continue
        key = "memcg_" + m["name"].strip("/").replace("/", "_")
        out[f"{key}_peak"] = m.get("peak")
        for group in ("memory_stat", "memory_events"):
            for k, v in (m.get(group) or {}).items():
                out[f"{key}_{k}"] = v
    out["mem_available"] = res.get("mem_available")
    out["free_pages"] = res.get("free_pages")
    out.update(lru_gen_young_shares(res.get("lru_gen")))
    if "mechanisms" in res:
        out["mechanisms_effective"] = ",".join(m for m, on in res["mechanisms"].items() if on)
    out["warnings"] = "\n".join(res.get("warnings") or ()) or None
    return out


def _versions() -> dict:
    import platform

    import numba
    import numpy

    from .provenance import provenance

    return {**provenance(), "python_version": platform.python_version(), "numpy_version": numpy.__version__,
            "numba_version": numba.__version__}


def _worker_name() -> str | None:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return None


def run_cell(cell: dict, index: int | None = None) -> dict:
    """Run one cell and return its row. Never raises for a failing run: out of memory is status
    'oom', any other error 'error', with the message in `error` (and no measured columns)."""
    from .core.engine import OutOfMemory

    t0 = time.perf_counter()
    row: dict[str, Any] = {"cell_id": cell_id(cell), "cell_index": index, "status": "ok", "error": None,
                           **config_columns(cell), **dict.fromkeys(MEASURED)}
    try:
        cfg = run_config(cell)
        cfg.validate()
        from .api import run

        row.update(result_columns(run(cfg, trace=_trace_for(cfg))))
    except OutOfMemory as e:
        row["status"] = "oom"
        msg = str(e)
        row["error"] = msg if msg.startswith("out of memory") else f"out of memory: {msg}"
    except ReclaimExtError as e:
        row["status"] = "error"
        row["error"] = str(e)
    except Exception as e:  # a bug or a broken policy: the row says where
        row["status"] = "error"
        tb = traceback.extract_tb(e.__traceback__)
        where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
        row["error"] = f"{type(e).__name__}: {e}{where}"
    row["cell_seconds"] = time.perf_counter() - t0
    row["finished_at"] = time.time()
    row["worker"] = _worker_name()
    row.update(_versions())
    return row


def failed_row(cell: dict, index: int | None, error: str) -> dict:
    """The row of a cell whose task never returned (its worker died, the cluster lost it)."""
    return {"cell_id": cell_id(cell), "cell_index": index, "status": "error", "error": error,
            **config_columns(cell), **dict.fromkeys(MEASURED), "cell_seconds": None, "finished_at": time.time(), "worker": None,
            **_versions()}


# ---- the sweep ----------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    total: int  # cells in the grid
    skipped: int  # already in the dataset (resume)
    rows: list[dict]  # the rows of this run, in finishing order
    wall_seconds: float
    workers: int
    interrupted: bool = False

    @property
    def failed(self) -> int:
        return sum(r["status"] != "ok" for r in self.rows)


def _start_client(scheduler: str | None, workers: int | None):
    """A Dask client: of the scheduler at `scheduler`, else of a new LocalCluster with `workers`
    single-threaded worker processes (default: one per core). Returns (client, cluster or None)."""
    import logging

    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="10s"), None
        except (OSError, TimeoutError, ValueError) as e:
            raise SweepError(f"--scheduler {scheduler}: cannot connect ({e})") from None
    n = workers or os.cpu_count() or 1
    # The worker processes ignore SIGINT (a disposition they inherit): ^C on a terminal reaches the
    # whole process group, and it is this process that stops the sweep and closes the cluster.
    import signal
    import threading

    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        # No dashboard; the scheduler's HTTP server (always started) on a free port, not 8787. Dask's
        # own log lines stay quiet up to CRITICAL: a cell's failure is its row, and tearing the
        # cluster down on ^C makes workers log lost-connection errors with tracebacks.
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                               scheduler_kwargs={"dashboard_address": ":0"}, silence_logs=logging.CRITICAL)
    finally:
        if main:
            signal.signal(signal.SIGINT, old)
    try:
        return Client(cluster), cluster
    except BaseException:
        cluster.close()
        raise


def run_sweep(cells: list[dict], out: str | os.PathLike | None, *, resume: bool = False,
              scheduler: str | None = None, workers: int | None = None,
              on_start: Callable[[int, int, int], None] | None = None,
              on_row: Callable[[dict], None] | None = None, flush_seconds: float = 1.0) -> SweepResult:
    """Run `cells` on Dask and append a row per finished cell to the Parquet dataset `out` (None:
    keep the rows in memory only). With `resume`, cells whose id is already in `out` are skipped;
    without it, `out` must hold no rows yet. Rows are written at most `flush_seconds` after they
    finish (one file per batch) and at the end, also when interrupted (KeyboardInterrupt is
    re-raised after the rows are written and the cluster closed; `interrupted` is set on the
    result then attached to the exception as `.sweep`). `on_start(todo, skipped, workers)` is called once
    the cluster is up; `on_row(row)` for each finished cell."""
    from . import results

    ids = [cell_id(c) for c in cells]
    if len(set(ids)) != len(ids):
        raise SweepError("the grid names a cell twice")
    done: set[str] = set()
    if out is not None:
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise SweepError(f"--out {out}: not a directory")
        done = results.cell_ids(out) if out.is_dir() else set()
        if done and not resume:
            raise SweepError(f"--out {out} already holds {len(done):,} cell(s) of a sweep: give --resume to run "
                             "only the missing ones, or another directory")
        out.mkdir(parents=True, exist_ok=True)
        results.write_grid(out, cells)
    todo = [(i, c) for i, c in enumerate(cells) if ids[i] not in done]
    skipped = len(cells) - len(todo)
    t0 = time.perf_counter()
    res = SweepResult(total=len(cells), skipped=skipped, rows=[], wall_seconds=0.0, workers=0)
    if not todo:
        if on_start:
            on_start(0, skipped, 0)
        return res
    client = cluster = None
    pending: list[dict] = []
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal pending, last_flush
        batch, pending = pending, []
        last_flush = time.monotonic()
        if batch and out is not None:
            results.write_rows(out, batch)  # all or nothing, also on ^C

    futures = []
    try:
        from distributed import as_completed

        client, cluster = _start_client(scheduler, workers)
        res.workers = len(client.nthreads()) if scheduler else (workers or os.cpu_count() or 1)
        if on_start:
            on_start(len(todo), skipped, res.workers)
        index_of = {}
        for i, c in todo:
            f = client.submit(run_cell, c, i, pure=False)
            index_of[f.key] = (i, c)
            futures.append(f)
        for fut in as_completed(futures):
            i, c = index_of[fut.key]
            try:
                row = fut.result()
            except Exception as e:  # the worker died (KilledWorker), the task was lost
                row = failed_row(c, i, f"{type(e).__name__}: {e}")
            fut.release()
            pending.append(row)
            res.rows.append(row)
            if on_row:
                on_row(row)
            if time.monotonic() - last_flush >= flush_seconds:
                flush()
    except KeyboardInterrupt as e:
        res.interrupted = True
        e.sweep = res  # type: ignore[attr-defined]
        raise
    finally:
        flush()
        res.wall_seconds = time.perf_counter() - t0
        try:
            if futures:
                client.cancel([f for f in futures if not f.done()])
        except Exception:
            pass
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    return res


__all__ = ["Grid", "SweepError", "SweepResult", "cell_id", "describe_cell", "grid_from_options", "grid_from_toml",
           "parse_ints", "parse_sizes", "run_cell", "run_sweep", "split_list"]
