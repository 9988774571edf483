"""The compiled hot path: the first-run notice and numba's cache."""

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
