"""`reclaim-ext sweep` and `reclaim-ext mrc`: grids of runs on Dask, and miss-ratio curves.

The library side is reclaim_ext.sweep (grids, cells, the Dask driver), reclaim_ext.mrc (curves,
the stack algorithm) and reclaim_ext.results (the Parquet dataset); reclaim_ext.cli registers
these commands.
"""

from __future__ import annotations

import json
import sys
import time

import click

from .cli_common import _check_json_path, _emit_json, _given, _not_with, _trace_opts, _user_errors

EXIT_INTERRUPTED = 130
_FORMATS = ["oraclegeneral", "csv", "vscsi", "native"]

# Options every cell shares (the grid's fixed options): None when not given, so the grid's
# defaults (and plain-cache mode's refusal of machine options) apply.
_FIXED_OPTIONS = (
    click.option("--swap", default=None, help="Swap size [default: as large as each cell's --memory; 0 = no swap]."),
    click.option("--swappiness", default=None, type=click.IntRange(0, 200), help="vm.swappiness [default: 60]."),
    click.option("--mode", default=None, type=click.Choice(["fast", "exact"]), help="Driver [default: fast]."),
    click.option("--min-free-kbytes", type=click.IntRange(128, None), default=None,
                 help="vm.min_free_kbytes [default: kernel formula]."),
    click.option("--watermark-scale-factor", type=click.IntRange(1, 3000), default=None,
                 help="vm.watermark_scale_factor [default: 10]."),
    click.option("--min-ttl-ms", type=float, default=None, help="MGLRU's min_ttl_ms (mglru only) [default: 0]."),
    click.option("--memcg", "memcgs", multiple=True, metavar="SPEC",
                 help="A memory cgroup in every cell, as `reclaim-ext run --memcg` takes it; repeatable."),
)
_CLUSTER_OPTIONS = (
    click.option("--scheduler", metavar="ADDRESS",
                 help="Run the cells on the Dask cluster of this scheduler (tcp://host:8786) "
                      "[default: a LocalCluster on this machine]."),
    click.option("--workers", type=click.IntRange(1, None), default=None,
                 help="Worker processes of the LocalCluster (one thread each) [default: the number of cores]."),
    click.option("--progress/--no-progress", default=True, help="Progress bar (only on a terminal)."),
)
_GRID_AXES = ("policies", "mechanisms", "memories", "cache", "capacities", "workloads", "params", "traces",
              "trace_format", "trace_opts", "seeds", "swap", "swappiness", "mode", "min_free_kbytes",
              "watermark_scale_factor", "min_ttl_ms", "memcgs")


def _options(opts):
    def deco(f):
        for o in reversed(opts):
            f = o(f)
        return f

    return deco


def _fixed(swap, swappiness, mode, min_free_kbytes, watermark_scale_factor, min_ttl_ms, memcgs=()) -> dict:
    from .machine.units import parse_size

    out = {"swappiness": swappiness, "mode": mode, "min_free_kbytes": min_free_kbytes,
           "watermark_scale_factor": watermark_scale_factor, "min_ttl_ms": min_ttl_ms,
           "memcgs": list(memcgs) or None}
    if swap is not None:
        out["swap"] = parse_size(swap, "swap")
    return {k: v for k, v in out.items() if v is not None}


class _SweepProgress:
    """Cells done and failed, and the ETA, as a rich progress bar on stderr (a terminal only)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None
        self.task = None
        self.failed = 0

    def start(self, todo: int, skipped: int, workers: int) -> None:
        if not self.enabled or not todo:
            return
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.bar = Progress(TextColumn("cells"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("[red]{task.fields[failed]} failed"), TimeElapsedColumn(),
                            TextColumn("ETA"), TimeRemainingColumn(), TextColumn(f"({workers} workers)"),
                            transient=True, console=Console(stderr=True))
        self.bar.start()
        self.task = self.bar.add_task("cells", total=todo, failed=0)

    def row(self, row: dict) -> None:
        self.failed += row["status"] != "ok"
        if self.bar is not None:
            self.bar.update(self.task, advance=1, failed=self.failed)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _run(cells, out, resume, scheduler, workers, progress):
    """run_sweep with a progress bar; ^C: the rows so far stay, exit 130 with a line saying so."""
    from .sweep import run_sweep

    bar = _SweepProgress(progress and sys.stderr.isatty())
    try:
        return run_sweep(cells, out, resume=resume, scheduler=scheduler, workers=workers, on_start=bar.start,
                         on_row=bar.row)
    except KeyboardInterrupt as e:
        bar.close()
        res = getattr(e, "sweep", None)
        n = len(res.rows) if res is not None else 0
        have = n + (res.skipped if res is not None else 0)
        where = (f"; {out} holds {have} of the {len(cells)} cells: run the same command with --resume to finish"
                 if out else "")
        click.echo(f"reclaim-ext: sweep interrupted after {n} new cell{'s' if n != 1 else ''}{where}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        bar.close()


def _report_failures(rows, limit: int = 10) -> None:
    from .sweep import describe_cell

    bad = [r for r in rows if r["status"] != "ok"]
    for r in bad[:limit]:
        cell = {"policy": r["policy"], "mechanisms": r["mechanisms"], "cache": r["cache"],
                "capacity": r["capacity"], "memory": r["memory_pages"], "workload": r["workload"],
                "workload_params": json.loads(r["workload_params"]), "trace": r["trace"], "seed": r["seed"]}
        click.echo(f"reclaim-ext: warning: cell {r['cell_id']} ({describe_cell(cell)}): {r['error']}", err=True)
    if len(bad) > limit:
        click.echo(f"reclaim-ext: warning: ... and {len(bad) - limit} more failed cells (see the error column)",
                   err=True)


@click.command()
@click.option("--grid", "grid_file", type=click.Path(dir_okay=False), metavar="FILE.toml",
              help="Read the grid from a TOML file instead of the grid flags (docs/benchmarks.md).")
@click.option("--policy", "policies", multiple=True, metavar="LIST",
              help="Policies, comma-separated or repeated [default: classic]. reclaim_ext policies on several "
                   "scopes in one cell: POLICY@SCOPE joined by '+', e.g. lfu@memcg:/a+mru@memcg:/b.")
@click.option("--mechanism", "mechanisms", multiple=True, metavar="SPEC",
              help="A mechanism set (+ptwalk,-bloom, ...; 'default' for the policy's own), repeat for more "
                   "[default: the policy's own].")
@click.option("--memory", "memories", multiple=True, metavar="SIZES",
              help="Memory sizes: 16MiB,32MiB, or ranges LO..HI:STEP and LO..HI/N [default: 64MiB].")
@click.option("--cache", is_flag=True, help="Plain-cache mode (reclaim_ext policies; sizes from --capacity).")
@click.option("--capacity", "capacities", multiple=True, metavar="SIZES",
              help="Plain-cache capacities (with --cache), as --memory.")
@click.option("--workload", "workloads", multiple=True, metavar="LIST",
              help="Built-in workloads, comma-separated or repeated [default: zipf].")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE[,VALUE]",
              help="Workload parameter for every workload, repeatable; several values: one scenario each.")
@click.option("--trace", "traces", multiple=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="Trace files instead of workloads, repeatable.")
@click.option("--format", "trace_format", type=click.Choice(_FORMATS), help="Format of the --trace files.")
@click.option("--trace-opt", "trace_opts", multiple=True, metavar="KEY=VALUE", help="Reader option, repeatable.")
@click.option("--seed", "seeds", multiple=True, metavar="LIST",
              help="Seeds: 0,1,2 or a range 0..4 [default: 0].")
@_options(_FIXED_OPTIONS)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="The Parquet dataset the rows go to (one row per cell; reclaim_ext.results.load).")
@click.option("--resume", is_flag=True,
              help="Run only the cells not in --out yet (the grid of the last sweep there unless given).")
@click.option("--dry-run", is_flag=True, help="List the cells (id and config) and run none.")
@_options(_CLUSTER_OPTIONS)
def sweep(grid_file, out_dir, resume, dry_run, scheduler, workers, progress, **axes):
    """Run every cell of a grid (policies x mechanism sets x memory sizes x scenarios x seeds) on
    Dask, one Parquet row per cell in --out, as the cells finish.

    \b
    A failed cell (out of memory, a bad policy, an exception) is a row with its error. ^C stops
    the sweep; the rows written stay, and --resume runs only the missing cells.

    \b
    Examples:
      reclaim-ext sweep --policy classic,mglru --memory 16MiB..64MiB:16MiB --workload zipf,loop \\
          -p accesses=200000 --seed 0,1 --out /tmp/sweep
      reclaim-ext sweep --policy mglru --mechanism default --mechanism -bloom --mechanism -ptwalk \\
          --workload mixed --memory 48MiB,64MiB --out /tmp/ablation
      reclaim-ext sweep --grid grid.toml --out /tmp/sweep --scheduler tcp://host:8786
      reclaim-ext sweep --resume --out /tmp/sweep      # finish a killed sweep
    """
    from .sweep import cell_id, describe_cell, grid_from_options, grid_from_toml

    given_axes = _given(*_GRID_AXES)
    if scheduler:
        _not_with("--scheduler", _given("workers"), "the cluster at the scheduler has its own workers")
    if not dry_run and not out_dir:
        raise click.UsageError("sweep needs --out DIR (where the rows go), or --dry-run")
    if resume and dry_run:
        raise click.UsageError("--resume does not apply with --dry-run")
    with _user_errors():
        if grid_file:
            _not_with("--grid", given_axes, "the grid file defines the grid")
            cells = grid_from_toml(grid_file).cells()
        elif resume and not given_axes:
            from .results import read_grid

            cells = read_grid(out_dir)
        else:
            fixed = _fixed(**{k: axes.pop(k) for k in ("swap", "swappiness", "mode", "min_free_kbytes",
                                                        "watermark_scale_factor", "min_ttl_ms", "memcgs")})
            axes["trace_opts"] = _trace_opts(axes["trace_opts"]) or None
            cells = grid_from_options(**axes, **fixed).cells()
        if dry_run:
            for i, c in enumerate(cells):
                click.echo(f"{i:5d}  {cell_id(c)}  {describe_cell(c)}")
            click.echo(f"{len(cells)} cells")
            return
        t0 = time.perf_counter()
        res = _run(cells, out_dir, resume, scheduler, workers, progress)
    _report_failures(res.rows)
    new = len(res.rows)
    ok = new - res.failed
    on = f" on {res.workers} worker{'s' if res.workers != 1 else ''}" if new else ""
    click.echo(f"sweep: {len(cells)} cell{'s' if len(cells) != 1 else ''} in {out_dir}: {new} run now ({ok} ok, {res.failed} failed), "
               f"{res.skipped} already there; {time.perf_counter() - t0:.1f} s{on}")


@click.command()
@click.option("--policy", default="classic", show_default=True, help="The policy (kernel, plug-in or file.py).")
@click.option("--mechanism", "mechanisms", default=None, metavar="SPEC", help="Its mechanisms on/off (+ptwalk,-bloom).")
@click.option("--memory", "memories", multiple=True, metavar="SIZES",
              help="Memory sizes: 8MiB,16MiB, or ranges LO..HI:STEP and LO..HI/N.")
@click.option("--cache", is_flag=True, help="Plain-cache mode: sizes from --capacity (reclaim_ext policies).")
@click.option("--capacity", "capacities", multiple=True, metavar="SIZES", help="Plain-cache capacities, as --memory.")
@click.option("--workload", default=None, help="Built-in workload [default: zipf].")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="Workload parameter, repeatable.")
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False), help="Replay this trace file instead.")
@click.option("--format", "trace_format", type=click.Choice(_FORMATS), help="Format of --trace.")
@click.option("--trace-opt", "trace_opts", multiple=True, metavar="KEY=VALUE", help="Reader option, repeatable.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, None), help="Seed of the workload.")
@_options(_FIXED_OPTIONS)
@click.option("--method", type=click.Choice(["auto", "stack", "sweep"]), default="auto", show_default=True,
              help="stack: LRU's one-pass stack-distance curve (--cache --policy lru only); sweep: one run per "
                   "size on Dask; auto: stack where it applies, else sweep.")
@click.option("--json", "json_out", metavar="FILE", help="Write the curve as JSON to FILE ('-' for stdout, no table).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Also write the points as a Parquet dataset (rows as `reclaim-ext sweep` writes them).")
@_options(_CLUSTER_OPTIONS)
def mrc(policy, mechanisms, memories, cache, capacities, workload, params, trace_path, trace_format, trace_opts,
        seed, method, json_out, out_dir, scheduler, workers, progress, **fixed_opts):
    """The miss-ratio curve of a policy on a workload or trace over a list or range of sizes.

    \b
    Kernel policies and plug-ins: one run per size, as a sweep on Dask (exact). LRU in
    plain-cache mode (--cache --policy lru): the one-pass stack-distance curve, equal to the
    runs at every capacity.

    \b
    Examples:
      reclaim-ext mrc --policy classic --workload zipf -p accesses=500000 --memory 16MiB..128MiB:16MiB
      reclaim-ext mrc --cache --policy lru --capacity 100..10000/25 \\
          --trace traces/cloudPhysicsIO.oracleGeneral.bin --format oraclegeneral
      reclaim-ext mrc --cache --policy s3fifo --capacity 1000,2000,4000 --json -
    """
    from .mrc import STACK_POLICIES, stack_curve, sweep_curve
    from .sweep import grid_from_options

    _check_json_path(json_out)
    if scheduler:
        _not_with("--scheduler", _given("workers"), "the cluster at the scheduler has its own workers")
    if trace_path is not None:
        _not_with("--trace", _given("workload", "params"), "the trace is what is replayed")
        if _given("seed") and not cache:
            click.echo("reclaim-ext: warning: --seed is ignored with --trace: it seeds the workload generators",
                       err=True)
    if cache and not capacities:
        raise click.UsageError("mrc --cache needs --capacity SIZES (e.g. 100..10000/25)")
    if not cache and not memories:
        raise click.UsageError("mrc needs --memory SIZES (e.g. 8MiB..64MiB:8MiB), or --cache --capacity SIZES")
    stack_ok = cache and policy in STACK_POLICIES and not mechanisms
    if method == "stack" and not stack_ok:
        raise click.UsageError(f"--method stack is LRU's curve in plain-cache mode (--cache --policy "
                               f"{' or '.join(STACK_POLICIES)}); use --method sweep")
    use_stack = method == "stack" or (method == "auto" and stack_ok)
    if use_stack:
        _not_with("--method stack", _given("scheduler", "workers"), "the stack algorithm is one pass in this process")
    with _user_errors():
        grid = grid_from_options(
            policies=[policy], mechanisms=[mechanisms] if mechanisms else (), memories=memories, cache=cache,
            capacities=capacities, workloads=[workload] if workload else (), params=params,
            traces=[trace_path] if trace_path else (), trace_format=trace_format,
            trace_opts=_trace_opts(trace_opts) or None, seeds=[str(seed)],
            **_fixed(**fixed_opts))
        cells = sorted(grid.cells(), key=lambda c: c["capacity"] if cache else c["memory"])
        if use_stack:
            curve, rows = stack_curve(cells)
            if out_dir:
                from . import results
                from .sweep import SweepError

                if results.parts(out_dir):
                    raise SweepError(f"--out {out_dir} already holds rows: give another directory")
                import pathlib

                pathlib.Path(out_dir).mkdir(parents=True, exist_ok=True)
                results.write_rows(out_dir, rows)
        else:
            res = _run(cells, out_dir, False, scheduler, workers, progress and json_out != "-")
            curve = sweep_curve(cells, res.rows, res.wall_seconds, res.workers)
    d = curve.as_dict()
    if not _emit_json(json_out, d):
        _print_curve(d)
    for p in d["points"]:
        if p["status"] != "ok":
            click.echo(f"reclaim-ext: warning: size {p['size']:,}: {p['error']}", err=True)


def _print_curve(d: dict) -> None:
    from rich.table import Table

    from rich.console import Console

    from .machine.units import format_size

    how = ("one-pass stack distances" if d["method"] == "stack"
           else f"a sweep on {d['workers']} worker{'s' if d['workers'] != 1 else ''}")
    click.echo(f"miss-ratio curve of {d['policy']}{' (plain cache)' if d['cache'] else ''} on {d['source']}: "
               f"{how}, {d['wall_seconds']:.1f} s")
    up = set(d["non_monotone"])
    notes = [("higher than at the size before" if p["size"] in up else "") if p["status"] == "ok" else
             {"oom": "out of memory (see the warning)"}.get(p["status"], "failed (see the warning)")
             for p in d["points"]]
    t = Table()
    if d["cache"]:
        t.add_column("capacity", justify="right")
    else:
        t.add_column("memory", justify="right")
        t.add_column("pages", justify="right")
    for c in ("accesses", "misses", "miss ratio") + (("note",) if any(notes) else ()):
        t.add_column(c, justify="left" if c == "note" else "right")
    for p, note in zip(d["points"], notes):
        size = [f"{p['size']:,}"] if d["cache"] else [format_size(p["size"]), f"{p['size']:,}"]
        cells = ([f"{p['accesses']:,}", f"{p['misses']:,}", f"{p['miss_ratio']:.6f}"] if p["status"] == "ok"
                 else ["-", "-", "-"])
        t.add_row(*size, *cells, *((note,) if any(notes) else ()))
    con = Console()  # at its natural width, also piped: a number is never cut nor wrapped
    need = con.measure(t, options=con.options.update(width=1 << 16)).maximum
    (con if need <= con.width else Console(width=need)).print(t)


@click.group()
def suite() -> None:
    """The benchmark suite: named scenarios after the agreed-upon reclaim benchmarks (B1-B12,
    reduced to simulator sizes with fixed seeds) and the MGLRU rough edges, run as one sweep."""


@suite.command("list")
def suite_list():
    """The scenarios: name, what it runs, its metric and what the literature published."""
    from .suite import SCENARIOS

    for s in SCENARIOS:
        exp = f" (expected: {s.expect[0]} {'>=' if s.higher_is_better else '<='} {s.expect[1]})" if s.expect else ""
        extra = ("" if s.default else "\n    run when named (not in the default run); its recording is cached "
                 "in ~/.cache/reclaim-ext/recipes")
        click.echo(f"{s.name}: {s.title}\n    metric {s.metric} ({'higher' if s.higher_is_better else 'lower'} "
                   f"is better); published: {s.published}{exp}{extra}")


@suite.command("run")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), metavar="DIR", required=True,
              help="The results directory (Parquet rows, as reclaim-ext sweep writes them).")
@click.option("--resume", is_flag=True, help="Run only the cells missing from DIR.")
@click.option("--quick", is_flag=True, help="Each scenario with its first seed only (about half the cells).")
@click.option("--trace", "trace", type=click.Path(dir_okay=False), metavar="FILE",
              help="Replay FILE instead of the shared trace in the scenarios that replay one (B4-twitter, "
                   "B12-cloudphysics), e.g. another Twitter cluster; memory as fractions of its distinct pages.")
@click.option("--trace-format", "trace_format", metavar="FORMAT",
              help="The format of --trace FILE (default: the scenario's own: csv for B4, oraclegeneral for B12).")
@_options(_CLUSTER_OPTIONS)
def suite_run(names, out_dir, resume, quick, trace, trace_format, scheduler, workers, progress):
    """Run the scenarios NAME... (shell patterns allowed, e.g. 'REC-*'; default: all but the recorded
    programs REC-*) into DIR; then `reclaim-ext suite report DIR`. A REC-* scenario records its
    program under valgrind into ~/.cache/reclaim-ext/recipes the first time (minutes)."""
    from .suite import cells, select, write_meta

    with _user_errors():
        if trace_format and not trace:
            raise click.BadParameter("--trace-format needs --trace FILE", param_hint="--trace-format")
        chosen = select(names)
        grid = cells(chosen, echo=lambda text: click.echo(text, err=True), trace=trace, trace_format=trace_format,
                     quick=quick)
        res = _run(grid, out_dir, resume, scheduler, workers, progress)
        write_meta(out_dir, chosen)
    _report_failures(res.rows)
    click.echo(f"suite: {len(chosen)} scenarios, {res.total} cells in {out_dir}: {len(res.rows)} run now "
               f"({res.failed} failed), {res.skipped} already there; {res.wall_seconds:.1f} s")


@suite.command("report")
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, exists=True))
def suite_report(directory):
    """Each scenario's results, the winner, the published direction and whether ours agrees
    (Markdown; also written to DIR/suite.md)."""
    from pathlib import Path

    from .suite import SUITE_FILE, summary, summary_markdown

    with _user_errors():
        if not (Path(directory) / SUITE_FILE).exists():
            raise click.BadParameter(f"{directory}: not a suite results directory (no {SUITE_FILE})",
                                     param_hint="DIR")
        text = summary_markdown(summary(directory))
    (Path(directory) / "suite.md").write_text(text)
    click.echo(text, nl=False)


@suite.command("compare")
@click.argument("old", metavar="OLD", type=click.Path(file_okay=False, exists=True))
@click.argument("new", metavar="NEW", type=click.Path(file_okay=False, exists=True))
@click.option("--min-change", type=click.FloatRange(0, None), default=0.01, show_default=True,
              help="A change smaller than this fraction of the old value is the same, whatever the seeds say.")
def suite_compare(old, new, min_change):
    """Which scenarios got better or worse from suite run OLD to suite run NEW, beyond the noise of
    seeds (twice the larger standard deviation of the per-seed means). Exit 1 when something got
    worse, so a CI job can guard a change."""
    from pathlib import Path

    from .suite import SUITE_FILE, compare, compare_markdown

    with _user_errors():
        for d in (old, new):
            if not (Path(d) / SUITE_FILE).exists():
                raise click.BadParameter(f"{d}: not a suite results directory (no {SUITE_FILE})", param_hint="OLD/NEW")
        rows = compare(old, new, min_change)
    click.echo(compare_markdown(rows), nl=False)
    if any(r["verdict"] == "worse" for r in rows):
        sys.exit(1)
