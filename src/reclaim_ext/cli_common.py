"""What the command modules share (reclaim_ext.cli and reclaim_ext.validate.cli import it; it
imports neither): exit codes, option converters, the checks that refuse options a command would
ignore, and --json output."""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager

import click

from .errors import ReclaimExtError
from .machine.units import parse_size

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


def _given(*names: str) -> list[str]:
    """Which of the current command's parameters `names` the user gave (on the command line or in
    the environment, not by default), as their option strings (e.g. '--memory')."""
    from click.core import ParameterSource

    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return []
    out = []
    for p in ctx.command.params:
        if p.name in names and ctx.get_parameter_source(p.name) in (ParameterSource.COMMANDLINE,
                                                                      ParameterSource.ENVIRONMENT):
            out.append(max(p.opts, key=len))
    return out


def _not_with(what: str, given: list[str], why: str) -> None:
    """Refuse options that would be silently ignored: `given` (from _given) do not apply with `what`."""
    if given:
        verb = "does" if len(given) == 1 else "do"
        raise click.UsageError(f"{', '.join(given)} {verb} not apply with {what}: {why}")


def _ignored_warning(text: str) -> None:
    """One stderr line for an option that is accepted but has no effect on the result."""
    click.echo(f"reclaim-ext: warning: {text}", err=True)


def _check_json_path(path: str | None) -> None:
    """Fail before a long run, not after it, when --json FILE cannot be written."""
    if not path or path == "-":
        return
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise click.BadParameter(f"{path} is a directory", param_hint="--json")
    if not os.path.isdir(parent):
        raise click.BadParameter(f"{path}: no such directory {parent}", param_hint="--json")
    if not os.access(path if os.path.exists(path) else parent, os.W_OK):
        raise click.BadParameter(f"{path}: not writable", param_hint="--json")


def _write_json(path: str, obj) -> None:
    try:
        with open(path, "w") as fh:
            json.dump(obj, fh, indent=2)
    except OSError as e:
        click.echo(f"reclaim-ext: error: --json {path}: {e.strerror or e}", err=True)
        sys.exit(EXIT_BAD_INPUT)


def _trace_opts(items) -> dict:
    """--trace-opt KEY=VALUE items as a dict of strings: each reader parses its own options by type
    (a column number or header name, a boolean, a byte count), so `offset_col=off` names column
    'off' and `header=off` is false."""
    opts = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--trace-opt")
        opts[k.strip()] = v.strip()
    return opts


def _emit_json(json_out: str | None, obj) -> bool:
    """--json: '-' prints the JSON on stdout (True: print nothing else), a path writes the file."""
    if json_out == "-":
        click.echo(json.dumps(obj, indent=2))
        return True
    if json_out:
        _write_json(json_out, obj)
    return False


@contextmanager
def _user_errors():
    """Out of memory: exit 3; any other ReclaimExtError: one error line, exit 2."""
    from .core.engine import OutOfMemory

    try:
        yield
    except OutOfMemory as e:
        click.echo(f"reclaim-ext: {e}", err=True)
        sys.exit(EXIT_OOM)
    except ReclaimExtError as e:
        click.echo(f"reclaim-ext: error: {e}", err=True)
        sys.exit(EXIT_BAD_INPUT)
