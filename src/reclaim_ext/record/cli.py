"""`reclaim-ext record [--out FILE] [--mode all|mem|syscalls] -- CMD ARGS...`"""

from __future__ import annotations

import json
import sys
import time

import click

from ..cli_common import _user_errors


@click.command(context_settings={"ignore_unknown_options": False})
@click.option("--out", default="record.rxt", show_default=True, type=click.Path(dir_okay=False),
              help="Native trace to write (zstd if it ends in .zst); FILE.json gets the pid and file tables.")
@click.option("--mode", type=click.Choice(["all", "mem", "syscalls"]), default="all", show_default=True,
              help="all: every load/store/instruction fetch and every read()/write() of a file, in program "
                   "order (valgrind lackey and its syscall trace; thousands of times slower than the program); "
                   "mem: the memory accesses only (as recorded before mode all; the recipes' cached traces); "
                   "syscalls: read()/write() of files only (strace, at about native speed).")
@click.option("--fold-window", type=click.IntRange(0, 64), default=8, show_default=True,
              help="Drop a touch repeating one of the process's previous N touches (0 = keep all; mem mode).")
@click.option("--recipe", default=None, metavar="NAME",
              help="Record a built-in workload instead of CMD (its input made in a temporary directory): "
                   "xz, sqlite, build, python (docs/traces.md).")
@click.option("--check", "do_check", is_flag=True,
              help="Then run the program again natively and compare the trace's distinct pages (anon, file, "
                   "exec, page cache) with the kernel's peak RSS and mincore (modes all and mem; exit 1 when outside "
                   "the tolerance; docs/traces.md, \"Sanity against the kernel\").")
@click.argument("cmd", nargs=-1, type=click.UNPROCESSED)
def record(out, mode, fold_window, recipe, do_check, cmd):
    """Run CMD and record its page accesses as a native trace (docs/traces.md, "Recording real programs")."""
    import tempfile

    from .runner import Progress, Recorder

    with _user_errors(), tempfile.TemporaryDirectory(prefix="reclaim-ext-recipe-") as tmp:
        if recipe is not None:
            if cmd:
                raise click.UsageError("give --recipe NAME or a command to record, not both")
            from .recipes import recipe_command

            cmd = recipe_command(recipe, tmp)
        elif not cmd:
            raise click.UsageError("give the command to record after --, or --recipe NAME")
        if do_check and mode == "syscalls":
            raise click.UsageError("--check applies to --mode all or mem: it compares mapped and anonymous "
                                   "pages with the process's RSS")
        rec = Recorder(mode, fold_window, Progress())
        t0 = time.monotonic()
        n = rec.record(out, list(cmd))
        wall = time.monotonic() - t0
        meta = rec.meta()
        meta["wall_seconds"] = round(wall, 3)
        meta["command"] = list(cmd)
        try:
            with open(out + ".json", "w") as fh:
                json.dump(meta, fh, indent=2)
        except OSError as e:
            click.echo(f"reclaim-ext: warning: {out}.json: {e.strerror or e}", err=True)
        st = meta["stats"]
        click.echo(f"reclaim-ext: record: wrote {n:,} records to {out} in {wall:.1f} s "
                   f"({st['accesses']:,} accesses, {st['folded']:,} folded, {st['processes']} processes, "
                   f"{len(meta['files'])} files; program exit status {rec.exit_status}"
                   f"{', interrupted' if rec.interrupted else ''})", err=True)
        kinds = ", ".join(f"{k} {st['records_by_kind'][k]:,} records / {st['pages_by_kind'][k]:,} pages"
                          for k in st["records_by_kind"])
        click.echo(f"reclaim-ext: record: {kinds}", err=True)
        if st.get("forked_without_exec"):
            click.echo(f"reclaim-ext: warning: record: {st['forked_without_exec']} process(es) forked without exec: "
                       f"valgrind writes their accesses into their parent's stream, so they are recorded as the "
                       f"parent's (docs/traces.md, \"Recording real programs\")", err=True)
        checked = None
        if do_check and rec.interrupted:
            click.echo("reclaim-ext: warning: record: --check skipped: the recording was interrupted", err=True)
        if do_check and not rec.interrupted:
            from .check import check, check_text

            with tempfile.TemporaryDirectory(prefix="reclaim-ext-check-") as tmp2:
                native_cmd = recipe_command(recipe, tmp2) if recipe is not None else list(cmd)
                checked = check(out, meta, native_cmd)
            click.echo(check_text(checked), err=True)
            meta["check"] = checked
            try:
                with open(out + ".json", "w") as fh:
                    json.dump(meta, fh, indent=2)
            except OSError:
                pass
    if rec.interrupted:
        sys.exit(130)
    if checked is not None and not checked["ok"]:
        sys.exit(1)
