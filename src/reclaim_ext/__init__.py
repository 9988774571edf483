"""reclaim-ext: one reclaim core, thin policies behind reclaim_ops, driven by page-access traces."""

import hashlib
import os
import sys
import time

__version__ = "0.1.0"


def _numba_cache_dir() -> None:
    """Keep numba's compiled code in a directory named by the compiled sources' content.

    numba invalidates a cached function when its own file changes, not when a compiled function
    it calls (and inlines) from another module does: after an edit to core/lru.py, a policy's
    cached hook would keep running the old rule. Naming the cache by a hash of every source file
    with compiled code makes any such edit a fresh cache (one compile, stated on stderr by
    jit.announce_compile). A NUMBA_CACHE_DIR the user set is left alone; without a writable
    cache directory numba's default (next to the sources) stays."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    root = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.sha1(__version__.encode())
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                try:
                    with open(os.path.join(d, name), "rb") as fh:
                        data = fh.read()
                except OSError:
                    continue
                if b"njit" in data:
                    h.update(os.path.relpath(os.path.join(d, name), root).encode() + b"\0" + data)
    base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "reclaim-ext", "numba")
    path = os.path.join(base, h.hexdigest()[:16])
    try:
        os.makedirs(path, exist_ok=True)
        os.utime(path)
        for old in os.listdir(base):  # caches of other source versions unused for a week
            p = os.path.join(base, old)
            if old != os.path.basename(path) and time.time() - os.path.getmtime(p) > 7 * 86400:
                import shutil

                shutil.rmtree(p, ignore_errors=True)
    except OSError:
        return
    os.environ["NUMBA_CACHE_DIR"] = path
    if "numba" in sys.modules:  # numba read its configuration already
        sys.modules["numba"].config.CACHE_DIR = path


_numba_cache_dir()
