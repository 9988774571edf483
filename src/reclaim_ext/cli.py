"""The reclaim-ext command line."""

from __future__ import annotations

import json
import sys
import time

import click

from . import __version__
from .errors import ReclaimExtError
from .machine.units import format_size, parse_size

EXIT_BAD_INPUT = 2
EXIT_OOM = 3


def _size(what: str):
    def convert(ctx, param, value):
        if value is None:
            return None
        try:
            return parse_size(value, what)
        except ReclaimExtError as e:
            raise click.BadParameter(str(e)) from None

    return convert


def _parse_opt_value(text: str):
    low = text.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    try:
        return int(text)
    except ValueError:
        return text


class _LazyProgress:
    """A progress bar that appears only once a run has taken a couple of seconds, and only on a
    terminal."""

    def __init__(self, total: int | None, enabled: bool):
        self.total = total
        self.enabled = enabled
        self.done = 0
        self.t0 = time.monotonic()
        self.bar = None
        self.task = None

    def __call__(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        if self.bar is None:
            if time.monotonic() - self.t0 < 2.0:
                return
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), transient=True, console=_err_console())
            self.bar.start()
            self.task = self.bar.add_task("replay", total=self.total)
        self.bar.update(self.task, completed=self.done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _err_console():
    from rich.console import Console

    return Console(stderr=True)


class _Cli(click.Group):
    """Usage errors as one line: `reclaim-ext: error: <what>`, exit code 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            if type(e).__name__ == "NoArgsIsHelpError":  # bare `reclaim-ext`: show the help
                click.echo(e.format_message())
                sys.exit(0)
            hint = f" (see `reclaim-ext {e.ctx.info_name} --help`)" if e.ctx and e.ctx.parent else ""
            click.echo(f"reclaim-ext: error: {e.format_message()}{hint}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except click.exceptions.Abort:
            click.echo("reclaim-ext: aborted", err=True)
            sys.exit(130)
        except click.ClickException as e:
            click.echo(f"reclaim-ext: error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reclaim-ext")
def main() -> None:
    """reclaim-ext: Linux page reclaim (one core, pluggable policies) on page-access traces."""


@main.command()
@click.option("--policy", default="classic", show_default=True, help="Reclaim policy (see `reclaim-ext policies`).")
@click.option("--workload", default="zipf", show_default=True, help="Built-in workload (see `reclaim-ext workloads`).")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Workload parameter, repeatable (e.g. -p alpha=1.2 -p pages=100000).")
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False), help="Replay this trace file instead of a workload.")
@click.option("--format", "trace_format", type=click.Choice(["oraclegeneral", "csv", "vscsi", "native"]),
              help="Format of --trace.")
@click.option("--trace-opt", "trace_opts", multiple=True, metavar="KEY=VALUE",
              help="Reader option, repeatable (e.g. --trace-opt id_col=5 for csv; see docs/traces.md).")
@click.option("--memory", default="64MiB", show_default=True, callback=_size("memory"),
              help="Memory size (64MiB, 2GiB, or a page count).")
@click.option("--swap", default=None, callback=_size("swap"), help="Swap size [default: as large as --memory; 0 = no swap].")
@click.option("--swappiness", default=60, show_default=True, type=click.IntRange(0, 200), help="vm.swappiness.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the workload generator.")
@click.option("--mode", default="fast", show_default=True, type=click.Choice(["fast", "exact"]),
              help="Driver: fast (vectorized segments) or exact (one access at a time); same counters.")
@click.option("--check/--no-check", default=None,
              help="Check page conservation after every reclaim (slow; for debugging) "
                   "[default: off, on with RECLAIM_EXT_CHECK=1].")
@click.option("--min-free-kbytes", type=click.IntRange(128, None), default=None, help="vm.min_free_kbytes [default: kernel formula].")
@click.option("--watermark-scale-factor", type=click.IntRange(1, 3000), default=10, show_default=True,
              help="vm.watermark_scale_factor.")
@click.option("--json", "json_out", metavar="FILE", help="Write the result as JSON to FILE ('-' for stdout, no summary).")
@click.option("--progress/--no-progress", default=True, help="Progress bar on long runs (only on a terminal).")
def run(policy, workload, params, trace_path, trace_format, trace_opts, memory, swap, swappiness, seed, mode,
        check, min_free_kbytes, watermark_scale_factor, json_out, progress):
    """Replay a workload or a trace through the reclaim core and print what happened.

    \b
    Examples:
      reclaim-ext run --policy classic --workload zipf --memory 64MiB
      reclaim-ext run --workload scan-hot --json result.json
      reclaim-ext run --trace ../shared/traces/cloudPhysicsIO.oracleGeneral.bin --format oraclegeneral
    """
    from .api import RunConfig, build_trace
    from .core.engine import default_check
    from .api import run as api_run
    from .core.engine import OutOfMemory
    from .trace import parse_workload_params

    try:
        opts = {}
        for item in trace_opts:
            k, sep, v = item.partition("=")
            if not sep or not k:
                raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--trace-opt")
            opts[k.strip()] = _parse_opt_value(v.strip())
        if trace_path is None and trace_opts:
            raise click.BadParameter("needs --trace", param_hint="--trace-opt")
        if trace_path is not None and params:
            raise click.BadParameter("workload parameters do not apply to --trace", param_hint="--param")
        wparams = parse_workload_params(workload, list(params)) if trace_path is None else {}
        cfg = RunConfig(
            policy=policy, workload=workload, workload_params=wparams, trace=trace_path,
            trace_format=trace_format, trace_opts=opts, memory=memory, swap=swap, swappiness=swappiness,
            seed=seed, mode=mode, check=default_check() if check is None else check,
            min_free_kbytes=min_free_kbytes,
            watermark_scale_factor=watermark_scale_factor,
        )
        cfg.validate()
        trace = build_trace(cfg)
        bar = _LazyProgress(trace.length, progress and sys.stderr.isatty() and json_out != "-")
        try:
            result = api_run(cfg, trace=trace, progress=bar)
        finally:
            bar.close()
    except OutOfMemory as e:
        click.echo(f"reclaim-ext: {e}", err=True)
        sys.exit(EXIT_OOM)
    except ReclaimExtError as e:
        click.echo(f"reclaim-ext: error: {e}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if json_out == "-":
        click.echo(json.dumps(result, indent=2))
        return
    if json_out:
        with open(json_out, "w") as fh:
            json.dump(result, fh, indent=2)
    _print_summary(result)


def _print_summary(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    vm = r["vmstat"]
    src = r["trace"] or f"workload {r['workload']}"
    head = Table(title=f"{r['policy']} on {src}, memory {format_size(r['memory_pages'])}, "
                       f"swap {format_size(r['swap_pages'])}, {r['mode']} mode", show_header=False)
    head.add_column(style="bold")
    head.add_column(justify="right")
    refaults = vm["workingset_refault_anon"] + vm["workingset_refault_file"]
    rows = [
        ("accesses", f"{r['accesses']:,}"),
        ("misses (folios allocated)", f"{r['misses']:,}"),
        ("miss ratio", f"{r['miss_ratio']:.4f}"),
        ("refaults (anon + file)", f"{refaults:,}"),
        ("pages scanned (kswapd / direct)", f"{vm['pgscan_kswapd']:,} / {vm['pgscan_direct']:,}"),
        ("pages reclaimed (kswapd / direct)", f"{vm['pgsteal_kswapd']:,} / {vm['pgsteal_direct']:,}"),
        ("swap in / out", f"{vm['pswpin']:,} / {vm['pswpout']:,}"),
        ("direct reclaim stalls", f"{vm['allocstall_normal']:,}"),
        ("modelled runtime", f"{r['modeled_seconds']:.3f} s"),
        ("wall time / rate", f"{r['wall_seconds']:.2f} s / {r['accesses_per_second'] / 1e6:.2f} M accesses/s"),
    ]
    for k, v in rows:
        head.add_row(k, v)
    con.print(head)
    lists = Table(title="LRU lists at the end (pages)")
    for k in r["lru_sizes"]:
        lists.add_column(k, justify="right")
    lists.add_row(*(f"{v:,}" for v in r["lru_sizes"].values()))
    con.print(lists)
    nz = Table(title="vmstat (non-zero)", show_header=False)
    nz.add_column()
    nz.add_column(justify="right")
    for k, v in vm.items():
        if v:
            nz.add_row(k, f"{v:,}")
    con.print(nz)


@main.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args):
    """Throughput against libCacheSim's LRU on the same Zipf trace (see --help of the benchmark).

    \b
    reclaim-ext bench                      # 10M reads over 1M pages, memory 10%
    reclaim-ext bench --accesses 2000000 --json -
    """
    from .bench.throughput import main as bench_main

    sys.exit(bench_main(list(args)))


@main.command()
def workloads():
    """List the built-in workloads and their parameters."""
    from rich.console import Console
    from rich.table import Table

    from .trace import WORKLOADS

    con = Console()
    for spec in WORKLOADS.values():
        t = Table(title=f"{spec.name}: {spec.summary}", title_justify="left")
        t.add_column("parameter")
        t.add_column("default", justify="right")
        t.add_column("meaning")
        for p in spec.params:
            extra = f" ({', '.join(p.choices)})" if p.choices else ""
            t.add_row(p.name, str(p.default), p.help + extra)
        con.print(t)


@main.command()
def policies():
    """List the built-in policies."""
    from .policies import BUILTIN

    for name, cls in sorted(BUILTIN.items()):
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        click.echo(f"{name:10s} {doc}")


if __name__ == "__main__":  # pragma: no cover
    main()
