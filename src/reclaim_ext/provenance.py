"""Which reclaim-ext produced a result: the package version and, when it runs from a git checkout,
the commit (so results stay comparable across versions)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from . import __version__


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """`git describe --always --dirty --abbrev=40` of the checkout the package runs from (e.g.
    '7bd1b77...-dirty'); None when it is not a checkout (an installed wheel) or git is missing."""
    root = Path(__file__).resolve().parents[2]  # src/reclaim_ext/provenance.py -> the checkout
    if not (root / ".git").exists() or not (root / "src" / "reclaim_ext").is_dir():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=40"],
                             capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    text = out.stdout.strip()
    return text if out.returncode == 0 and text else None


def provenance() -> dict:
    """The result keys `reclaim_ext_version` and `git_commit` (None outside a checkout)."""
    return {"reclaim_ext_version": __version__, "git_commit": git_commit()}
