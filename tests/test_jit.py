"""The compiled hot path: the first-run notice and numba's cache."""

import pytest

import reclaim_ext.jit as jit
from reclaim_ext.api import RunConfig, run


def test_a_cold_cache_is_announced_once_on_stderr(monkeypatch, capsys):
    monkeypatch.setattr(jit, "_announced", False)
    monkeypatch.setattr(jit, "cache_is_warm", lambda hot_path: False)
    run(RunConfig(workload_params={"accesses": 2000}, memory=256))
    run(RunConfig(workload_params={"accesses": 2000}, memory=256))
    err = capsys.readouterr().err
    assert err.count("reclaim-ext: compiling the simulator's hot path") == 1
    assert len(err.strip().splitlines()) == 1


def test_a_warm_cache_says_nothing(monkeypatch, capsys):
    monkeypatch.setattr(jit, "_announced", False)
    monkeypatch.setattr(jit, "cache_is_warm", lambda hot_path: True)
    run(RunConfig(workload_params={"accesses": 2000}, memory=256))
    assert capsys.readouterr().err == ""


def test_what_a_run_compiles_is_in_the_cache():
    import os

    run(RunConfig(workload_params={"accesses": 2000}, memory=256))
    from reclaim_ext.core.engine import HOT_PATH

    compiled = [fn for fn in HOT_PATH if fn.signatures]
    assert compiled, "a run compiles the hot path"
    for fn in compiled:
        assert os.path.exists(fn._cache._cache_file._index_path), fn.py_func.__name__


def _cache_dir_of(tree, tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(PYTHONPATH=str(tree), XDG_CACHE_HOME=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-c", "import reclaim_ext, os; print(os.environ['NUMBA_CACHE_DIR'])"],
                         env=env, capture_output=True, text=True, check=True, cwd=tmp_path)
    return out.stdout.strip()


def test_the_cache_is_named_by_the_compiled_sources(tmp_path):
    """numba checks only a function's own file: an edit to a compiled helper another module
    inlines must give a new cache directory; an edit to a module with no compiled code must not."""
    import shutil
    from pathlib import Path

    import reclaim_ext

    tree = tmp_path / "src"
    shutil.copytree(Path(reclaim_ext.__file__).parent, tree / "reclaim_ext",
                    ignore=shutil.ignore_patterns("__pycache__"))
    first = _cache_dir_of(tree, tmp_path)
    assert first.startswith(str(tmp_path / "cache" / "reclaim-ext" / "numba"))
    with open(tree / "reclaim_ext" / "cli.py", "a") as fh:
        fh.write("\n# no compiled code here\n")
    assert _cache_dir_of(tree, tmp_path) == first
    with open(tree / "reclaim_ext" / "core" / "lru.py", "a") as fh:
        fh.write("\n# an edit next to compiled helpers\n")
    assert _cache_dir_of(tree, tmp_path) != first


def test_the_hot_path_is_cached_in_that_directory():
    import os

    from reclaim_ext.core.engine import HOT_PATH

    run(RunConfig(workload_params={"accesses": 2000}, memory=256))
    for fn in HOT_PATH:
        assert fn._cache._cache_file._index_path.startswith(os.environ["NUMBA_CACHE_DIR"])


_PROBE = """
import sys
from numba import njit
import reclaim_ext.jit as jit

@njit(cache=True)
def twice(x):
    return 2 * x

warm = jit.cache_is_warm([twice])
twice(3)
print(int(warm), twice.stats.cache_hits.get(twice.signatures[0], 0))
"""


def test_the_notice_says_what_numba_will_do(tmp_path):
    """cache_is_warm answers numba's own question (its index's stamp of the source), not the
    files' times: cold before the first compile, warm after it, and after the source is touched
    (a checkout) exactly when numba loads the cached code rather than compiling again."""
    import os
    import subprocess
    import sys

    src = tmp_path / "probe_mod.py"
    src.write_text(_PROBE)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))

    def probe():
        out = subprocess.run([sys.executable, str(src)], env=env, capture_output=True, text=True, check=True)
        warm, hits = out.stdout.split()
        return warm == "1", int(hits) > 0

    assert probe() == (False, False)
    assert probe() == (True, True)
    later = os.stat(src).st_mtime + 100
    os.utime(src, (later, later))  # same content, newer time
    warm, loaded = probe()
    assert warm == loaded


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["classic", "mglru"])
def test_a_first_run_compiles_from_an_empty_cache(tmp_path, policy):
    """The first `reclaim-ext run` after an install compiles the hot path from an empty cache, in
    the order the run reaches it. A helper compiled without reference counting (jit.noref) that
    calls one returning arrays types only when that callee was compiled first, so a warm cache
    hides it. The run says so once on stderr and gives a warm run's counters."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    cmd = [sys.executable, "-m", "reclaim_ext", "run", "--policy", policy, "--workload", "mixed",
           "-p", "accesses=100000", "--memory", "32MiB", "--json", "-"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stderr.count("reclaim-ext: compiling the simulator's hot path") == 1
    warm = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert warm.returncode == 0 and warm.stderr == ""
    a, b = json.loads(first.stdout), json.loads(warm.stdout)
    assert a["vmstat"]["pgsteal_kswapd"] > 0  # the reclaim path ran (and compiled)
    assert (a["misses"], a["vmstat"]) == (b["misses"], b["vmstat"])
