"""The compiled hot path and its cache.

The hot path is compiled with numba (`@njit(cache=True)`): the first run after an install or an
upgrade compiles it once and numba keeps the machine code next to the sources (`__pycache__`);
later runs load it. `announce_compile` says so on stderr, once per process, when the cache does
not hold the current code yet.
"""

from __future__ import annotations

import os
import sys

_announced = False


def _hot_path():
    """The compiled functions every simulation calls first (their cache tells whether a run
    compiles; others compile, in a fraction of a second each, the first time a run needs them)."""
    from .core.access import run_accesses

    return (run_accesses,)


def cache_is_warm() -> bool:
    """Whether numba's cache holds every hot-path function for the current sources."""
    for fn in _hot_path():
        try:
            index = fn._cache._cache_file._index_path
            source = fn.py_func.__code__.co_filename
            if not os.path.exists(index) or os.path.getmtime(index) < os.path.getmtime(source):
                return False
        except (AttributeError, OSError):  # another numba layout: say nothing rather than guess
            return True
    return True


def announce_compile() -> None:
    """One line on stderr before the first run after an install or upgrade compiles the hot path."""
    global _announced
    if _announced:
        return
    _announced = True
    if not cache_is_warm():
        print("reclaim-ext: compiling the simulator's hot path with numba (once after an install or "
              "upgrade; later runs start at once)", file=sys.stderr, flush=True)
