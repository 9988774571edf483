"""The `reclaim-ext validate` command group (registered at the end of reclaim_ext/cli.py)."""

from __future__ import annotations

import json
import sys

import click

from ..cli import EXIT_BAD_INPUT, _check_json_path, _parse_opt_value, _size, _write_json
from ..errors import ReclaimExtError
from .errors import Unavailable

EXIT_UNAVAILABLE = 4

# Smaller defaults than `run`'s: the kernel takes ~110 µs per miss. A 128 MiB data file and 200K
# accesses are the reference's sizes (../shared/reference/real-kernel.md §2.1).
VALIDATE_DEFAULTS = {"zipf": {"pages": 32768}, "loop": {"pages": 32768, "passes": 4}}
DEFAULT_ACCESSES = 200_000


def workload_params(workload: str, params: tuple[str, ...]) -> dict:
    """The workload's parameters: the user's, over the validation defaults."""
    from ..trace import WORKLOADS, parse_workload_params

    given = parse_workload_params(workload, list(params))
    spec = WORKLOADS[workload]
    names = {p.name for p in spec.params}
    out = dict(VALIDATE_DEFAULTS.get(workload, {}))
    if "accesses" in names:
        out.setdefault("accesses", DEFAULT_ACCESSES)
    out.update(given)
    return out


@click.group()
def validate() -> None:
    """Check the model against a reference (the host kernel)."""


@validate.command()
@click.option("--workload", default="zipf", show_default=True, help="Built-in workload (see `reclaim-ext workloads`).")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Workload parameter, repeatable [defaults here: accesses=200000; zipf pages=32768; "
                   "loop pages=32768, passes=4].")
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False, exists=True),
              help="Replay this trace file instead of a workload (its pages are remapped densely onto the data file).")
@click.option("--format", "trace_format", type=click.Choice(["oraclegeneral", "csv", "vscsi", "native"]),
              help="Format of --trace.")
@click.option("--trace-opt", "trace_opts", multiple=True, metavar="KEY=VALUE", help="Reader option, repeatable.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the workload generator.")
@click.option("--max-accesses", type=click.IntRange(1, None), default=None,
              help="Replay only the first N accesses of the trace.")
@click.option("--memory", default="32MiB", show_default=True, callback=_size("memory"),
              help="The memory cgroup's limit (32MiB, or a page count).")
@click.option("--access", type=click.Choice(["pread", "mmap"]), default="pread", show_default=True,
              help="How the worker touches a page: pread(2) of 4 KiB (FADV_RANDOM) or a load through a "
                   "MAP_SHARED mapping (opened with read-ahead 0).")
@click.option("--reps", type=click.IntRange(1, 100), default=3, show_default=True,
              help="Kernel runs (the spread is reported).")
@click.option("--dir", "workdir", type=click.Path(file_okay=False), default="/var/tmp", show_default=True,
              help="Where the data file is made (a disk file system, not tmpfs).")
@click.option("--overhead", type=click.IntRange(0, None), default=None,
              help="Pages of the limit that are not data cache [default: measured in the runs].")
@click.option("--json", "json_out", metavar="FILE", help="Write the result as JSON to FILE ('-' for stdout, no summary).")
def kernel(workload, params, trace_path, trace_format, trace_opts, seed, max_accesses, memory, access, reps,
           workdir, overhead, json_out):
    """Replay a trace on the host kernel under a memory-cgroup limit and compare its misses with the
    classic model's at the calibrated capacity (docs/fidelity.md).

    Needs root, a memory cgroup controller and a C compiler; otherwise one error line and exit 4.
    The cgroup is removed and read_ahead_kb restored even on Ctrl-C.

    \b
    Examples:
      reclaim-ext validate kernel --workload zipf --memory 32MiB
      reclaim-ext validate kernel --workload zipf -p alpha=1.2 --memory 12MiB --access mmap --json -
      reclaim-ext validate kernel --trace t.bin --format oraclegeneral --max-accesses 200000
    """
    from ..trace import make_workload, open_trace
    from .kernel import validate_kernel

    _check_json_path(json_out)
    log = (lambda s: click.echo(s, err=True))
    try:
        if trace_path is not None:
            if not trace_format:
                raise click.BadParameter("needs --format", param_hint="--trace")
            if params:
                raise click.BadParameter("workload parameters do not apply to --trace", param_hint="--param")
            opts = {}
            for item in trace_opts:
                k, sep, v = item.partition("=")
                if not sep or not k:
                    raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--trace-opt")
                opts[k.strip()] = _parse_opt_value(v.strip())
            trace = open_trace(trace_path, trace_format, **opts)
        else:
            trace = make_workload(workload, seed=seed, **workload_params(workload, params))
        res = validate_kernel(trace, limit_pages=memory, access=access, reps=reps, workdir=workdir,
                              overhead=overhead, max_accesses=max_accesses, log=log)
    except Unavailable as e:
        click.echo(f"reclaim-ext: error: {e}", err=True)
        sys.exit(EXIT_UNAVAILABLE)
    except ReclaimExtError as e:
        click.echo(f"reclaim-ext: error: {e}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if trace_path is not None:
        res["trace"] = trace_path
    if json_out == "-":
        click.echo(json.dumps(res, indent=2))
        return
    if json_out:
        _write_json(json_out, res)
    _print(res)


def _print(r: dict) -> None:
    cal = r["calibration"]
    click.echo(f"{r['workload']}: {r['accesses']:,} accesses over {r['distinct_pages']:,} pages, "
               f"memcg limit {r['limit_pages']:,} pages, {r['access']}, {r['reps']} kernel run(s)")
    click.echo(f"  kernel misses   {r['kernel_misses']:>12,.1f}  [{r['kernel_misses_min']:,} .. "
               f"{r['kernel_misses_max']:,}], CV {100 * r['kernel_misses_cv']:.2f}%")
    click.echo(f"  model misses    {r['model_misses']:>12,}  (classic, memcg max {cal['model_max']:,} = limit − "
               f"{cal['overhead']} pages {cal['source']} overhead)")
    click.echo(f"  error           {100 * r['error']:>+11.2f}%  (model − kernel) / kernel")
    click.echo(f"  plain LRU       {r['lru_misses_at_c_eff']:>12,}  at the kernel's C_eff {r['c_eff']:,.0f} pages")
