"""Sweeps on Dask, miss-ratio curves, and the Parquet results (issue 13, items 2 and 3).

Grids expand the same from flags and from TOML, cell ids are stable, a 2x2x3 grid runs on a
LocalCluster of 2 workers, a sweep killed with SIGINT half-way is finished by --resume with
exactly the missing cells, failing cells are rows, and LRU's one-pass stack-distance curve equals
the sweep's points.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import invoke

from reclaim_ext import results
from reclaim_ext.errors import ConfigError
from reclaim_ext.mrc import lru_misses, stack_curve, stack_distances, sweep_curve
from reclaim_ext.sweep import (Grid, SweepError, cell_id, grid_from_options, grid_from_toml, parse_sizes, run_cell,
                               run_sweep)


SMALL = ["pages=2000", "accesses=20000"]


@pytest.fixture(scope="module")
def cluster():
    """One LocalCluster of 2 single-threaded worker processes for the in-process tests."""
    import logging

    from distributed import LocalCluster

    c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                     silence_logs=logging.ERROR)
    yield c
    c.close()


# ---- grids ---------------------------------------------------------------------------------------------


def test_grid_from_flags_expands_every_axis():
    g = grid_from_options(policies=["classic,mglru"], mechanisms=["default", "-lookaround"],
                          memories=["4MiB..12MiB:4MiB"], workloads=["zipf", "loop"], params=["pages=2000"],
                          seeds=["0..1"])
    cells = g.cells()
    assert len(cells) == 2 * 2 * 3 * 2 * 2
    assert {c["policy"] for c in cells} == {"classic", "mglru"}
    assert {c["mechanisms"] for c in cells} == {None, "-lookaround"}
    assert sorted({c["memory"] for c in cells}) == [1024, 2048, 3072]
    assert {(c["workload"], c["workload_params"]["pages"]) for c in cells} == {("zipf", 2000), ("loop", 2000)}
    assert {c["seed"] for c in cells} == {0, 1}
    assert len({cell_id(c) for c in cells}) == len(cells)
    # a list of parameter values is one scenario per value; repeated values count once
    g = grid_from_options(workloads=["zipf"], params=["alpha=0.8,1.2", "pages=100"], memories=["1MiB,256,1MiB"])
    assert [c["workload_params"]["alpha"] for c in g.cells()] == [0.8, 1.2]
    assert len(g.cells()) == 2  # 1MiB is 256 pages: one size
    assert parse_sizes(["1MiB..2MiB/3"]) == [256, 384, 512]


def test_grid_from_toml_equals_flags(tmp_path):
    f = tmp_path / "grid.toml"
    f.write_text("""
policy = ["classic", "mglru"]
mechanism = ["default", "-lookaround"]
memory = "4MiB..12MiB:4MiB"
seed = "0..1"
workload = ["zipf", "loop"]
params = { pages = 2000 }
""")
    flags = grid_from_options(policies=["classic,mglru"], mechanisms=["default", "-lookaround"],
                              memories=["4MiB,8MiB,12MiB"], workloads=["zipf,loop"], params=["pages=2000"],
                              seeds=["0", "1"])
    assert [cell_id(c) for c in grid_from_toml(f).cells()] == [cell_id(c) for c in flags.cells()]
    # [[scenario]] tables, a trace path relative to the file, and plain-cache mode
    (tmp_path / "t.csv").write_text("1\n2\n1\n")
    f.write_text("""
cache = true
capacity = [1, 2]
policy = "lru"
[[scenario]]
workload = "zipf"
params = { pages = 100, alpha = [0.8, 1.0] }
[[scenario]]
trace = "t.csv"
format = "csv"
trace_opts = { header = "off" }
""")
    cells = grid_from_toml(f).cells()
    assert len(cells) == 3 * 2
    assert {c["trace"] for c in cells} == {None, str((tmp_path / "t.csv").resolve())}
    assert all(c["cache"] and c["memory"] is None for c in cells)


@pytest.mark.parametrize("text,words", [
    ("policy = 'classic'\nbogus = 1\n", ["unknown key", "bogus"]),
    ("memory = '8MiB..4MiB:1MiB'\n", ["ends below its start"]),
    ("workload = 'nosuch'\n", ["nosuch"]),
    ("workload = 'zipf'\nparams = { nope = 1 }\n", ["nope"]),
    ("cache = true\nmemory = '8MiB'\n", ["memory does not apply"]),
    ("policy = [\n", ["not valid TOML"]),
    ("[[scenario]]\ntrace = 'missing.bin'\nformat = 'csv'\n", ["no such file"]),
])
def test_bad_toml_is_one_error(tmp_path, text, words):
    f = tmp_path / "g.toml"
    f.write_text(text)
    with pytest.raises(SweepError) as e:
        grid_from_toml(f)
    for w in words:
        assert w in str(e.value)
    r = invoke("sweep", "--grid", str(f), "--dry-run")
    assert r.exit_code == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reclaim-ext: error: "), r.stderr


def test_cell_ids_are_stable():
    cell = grid_from_options(policies=["classic"], memories=["64MiB"], workloads=["zipf"],
                             params=["pages=1000"]).cells()[0]
    # the same run has the same id in every process, version and spelling of its sizes
    assert cell_id(cell) == "eed675d60dd5bd0c"
    again = grid_from_options(policies=["classic"], memories=["16384"], workloads=["zipf"],
                              params=["pages=1_000"]).cells()[0]
    assert cell_id(again) == cell_id(cell)
    assert cell_id(dict(reversed(list(cell.items())))) == cell_id(cell)
    assert cell_id({**cell, "seed": 1}) != cell_id(cell)


# ---- running cells -----------------------------------------------------------------------------------------


def test_failing_cells_are_rows(monkeypatch):
    g = grid_from_options(policies=["nosuch"], memories=["1MiB"], workloads=["zipf"], params=SMALL)
    row = run_cell(g.cells()[0])
    assert row["status"] == "error" and "unknown policy 'nosuch'" in row["error"] and row.get("misses") is None
    oom = grid_from_options(memories=["1MiB"], workloads=["zipf"], params=SMALL + ["kind=anon"], swap="0").cells()[0]
    row = run_cell(oom)
    assert row["status"] == "oom" and row["error"].startswith("out of memory")
    import reclaim_ext.api

    def broken(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(reclaim_ext.api, "run", broken)
    row = run_cell(g.cells()[0] | {"policy": "classic"})
    assert row["status"] == "error" and row["error"].startswith("RuntimeError: boom")


def test_2x2x3_grid_on_a_local_cluster(tmp_path, cluster):
    g = grid_from_options(policies=["classic,mglru"], mechanisms=["default", "-lookaround"],
                          memories=["1MiB,2MiB,3MiB"], workloads=["zipf"], params=SMALL + ["kind=mmap"])
    cells = g.cells()
    assert len(cells) == 12
    seen = []
    bad_cell = grid_from_options(policies=["nosuch"], memories=["1MiB"], workloads=["zipf"], params=SMALL).cells()
    res = run_sweep(cells + bad_cell, tmp_path / "s", scheduler=cluster.scheduler_address, on_row=seen.append)
    assert res.total == 13 and res.skipped == 0 and len(res.rows) == 13 and res.failed == 1
    df = results.load(tmp_path / "s")
    assert len(df) == 13
    assert set(df.cell_id) == {r["cell_id"] for r in seen} == {cell_id(c) for c in cells + bad_cell}
    ok = df[df.status == "ok"]
    assert len(ok) == 12 and ok.worker.nunique() == 2
    bad = df[df.status != "ok"].iloc[0]
    assert bad.policy == "nosuch" and "unknown policy" in bad.error and pd.isna(bad.misses)
    for col in ("misses", "miss_ratio", "modeled_seconds", "wall_seconds", "vmstat_pgscan_kswapd",
                "vmstat_workingset_refault_file", "cost_rmap_walks", "cost_ptes_walked", "reclaim_ext_version",
                "git_commit", "memory_pages", "mechanisms", "seed"):
        assert col in df.columns, col
    # a row is the run's result: the same counters as running the cell here
    from reclaim_ext.api import run
    from reclaim_ext.sweep import run_config

    one = ok.iloc[0]
    here = run(run_config(next(c for c in cells if cell_id(c) == one.cell_id)))
    assert one.misses == here["misses"] and one.vmstat_pgscan_direct == here["vmstat"]["pgscan_direct"]
    # a second run without --resume refuses the directory; with it, nothing is left to run
    with pytest.raises(SweepError, match="--resume"):
        run_sweep(cells, tmp_path / "s", scheduler=cluster.scheduler_address)
    again = run_sweep(cells, tmp_path / "s", resume=True, scheduler=cluster.scheduler_address)
    assert again.skipped == 12 and again.rows == []


def test_killed_sweep_resumes_with_exactly_the_missing_cells(tmp_path):
    out = tmp_path / "s"
    # 2 policies x 2 mechanism sets x 3 sizes, each cell about half a second
    args = [sys.executable, "-m", "reclaim_ext", "sweep", "--policy", "classic,mglru", "--mechanism", "default",
            "--mechanism", "-lookaround", "--memory", "4MiB,6MiB,8MiB", "--workload", "zipf",
            "-p", "pages=4000", "-p", "accesses=100000", "-p", "kind=mmap", "--workers", "2", "--out", str(out)]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not results.parts(out) and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert p.poll() is None, p.communicate()
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, (stdout, stderr)
    assert "sweep interrupted" in stderr and "--resume" in stderr and "Traceback" not in stderr, stderr
    before = results.load(out)
    assert 0 < len(before) < 12 and before.cell_id.is_unique
    parts_before = set(results.parts(out))
    r = subprocess.run([sys.executable, "-m", "reclaim_ext", "sweep", "--resume", "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    missing = 12 - len(before)
    assert f"{missing} run now ({missing} ok, 0 failed), {len(before)} already there" in r.stdout
    new_rows = [row for part in set(results.parts(out)) - parts_before
                for row in pq.read_table(part, columns=["cell_id"]).to_pylist()]
    grid = results.read_grid(out)
    assert {x["cell_id"] for x in new_rows} == {cell_id(c) for c in grid} - set(before.cell_id)
    after = results.load(out)
    assert len(after) == 12 and after.cell_id.is_unique and set(after.status) == {"ok"}


# ---- miss-ratio curves ---------------------------------------------------------------------------------------


def test_stack_distances_by_hand():
    from reclaim_ext.trace import ArrayTrace
    from reclaim_ext.trace.record import make_records

    r = make_records(7)
    r["page"] = [1, 2, 3, 1, 1, 3, 2]
    d, n = stack_distances(ArrayTrace("t", r))
    assert n == 3 and d.tolist() == [-1, -1, -1, 2, 0, 1, 2]
    assert lru_misses(d, [1, 2, 3]).tolist() == [6, 5, 3]


def test_mrc_lru_stack_distance_equals_the_sweep(cluster):
    g = grid_from_options(policies=["lru"], cache=True, capacities=["1,10..2000/12"], workloads=["zipf"],
                          params=SMALL)
    cells = g.cells()
    curve, _ = stack_curve(cells)
    res = run_sweep(cells, None, scheduler=cluster.scheduler_address)
    swept = sweep_curve(cells, res.rows, res.wall_seconds, res.workers)
    assert [p["misses"] for p in curve.points] == [p["misses"] for p in swept.points]
    assert [p["miss_ratio"] for p in curve.points] == [p["miss_ratio"] for p in swept.points]
    assert curve.non_monotone() == [] and len(curve.points) == 13


def test_mrc_command_stack_json_and_out(tmp_path):
    r = invoke("mrc", "--cache", "--policy", "lru", "--capacity", "100,500..1500:500", "--workload", "zipf",
               *[x for kv in SMALL for x in ("-p", kv)], "--json", "-", "--out", str(tmp_path / "m"))
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["method"] == "stack" and [p["size"] for p in d["points"]] == [100, 500, 1000, 1500]
    misses = [p["misses"] for p in d["points"]]
    assert misses == sorted(misses, reverse=True)
    df = results.load(tmp_path / "m")
    assert df.misses.tolist() == misses and set(df.method) == {"stack"}


# ---- bad input: one line, exit 2 -------------------------------------------------------------------------------


@pytest.mark.parametrize("args,words", [
    (["sweep", "--policy", "classic"], ["--out"]),
    (["sweep", "--memory", "8MiB..4MiB:1MiB", "--dry-run"], ["ends below"]),
    (["sweep", "--memory", "4MiB..8MiB", "--dry-run"], ["step"]),
    (["sweep", "--seed", "x", "--dry-run"], ["seed"]),
    (["sweep", "--workload", "nosuch", "--dry-run"], ["nosuch"]),
    (["sweep", "-p", "bogus=1", "--dry-run"], ["bogus"]),
    (["sweep", "--cache", "--memory", "8MiB", "--dry-run"], ["--memory", "--cache"]),
    (["sweep", "--capacity", "8", "--dry-run"], ["--capacity"]),
    (["sweep", "--grid", "g.toml", "--policy", "mglru", "--dry-run"], ["--policy", "--grid"]),
    (["sweep", "--scheduler", "tcp://127.0.0.1:1", "--workers", "2", "--out", "x"], ["--workers"]),
    (["sweep", "--resume", "--out", "/nonexistent-dir-of-reclaim-ext"], ["no sweep here"]),
    (["mrc", "--policy", "classic"], ["--memory"]),
    (["mrc", "--cache", "--policy", "lru"], ["--capacity"]),
    (["mrc", "--policy", "classic", "--memory", "1MiB", "--method", "stack"], ["stack"]),
    (["mrc", "--cache", "--policy", "lru", "--capacity", "0", "--method", "stack"], ["capacity"]),
    (["mrc", "--policy", "classic", "--memory", "4MiB", "--trace", "t.bin", "--workload", "zipf"], ["--workload"]),
])
def test_bad_input_is_one_error_line(args, words):
    r = invoke(*args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reclaim-ext: error: "), r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_grid_rejects_nonsense():
    with pytest.raises(ConfigError, match="no policy"):
        Grid(policies=[]).cells()
    with pytest.raises(ConfigError, match="seed axis"):
        grid_from_options(params=["seed=3"])


def test_memcg_cells_carry_their_memcgs_and_per_memcg_columns(tmp_path):
    """A grid's memcgs (the run command's --memcg specs) reach every cell; a row has each memcg's
    memory.stat and memory.events as memcg_<name>_* columns, and the per-memcg counts add up."""
    g = grid_from_options(policies=["classic"], memories=["4MiB"], workloads=["tenants"],
                          params=["a=zipf pages=1500 accesses=20000", "b=loop pages=600 passes=10"],
                          memcgs=("name=a,pids=0", "name=b,pids=1,max=1MiB"))
    (cell,) = g.cells()
    assert cell["memcgs"] == ["name=a,pids=0", "name=b,pids=1,max=1MiB"]
    row = run_cell(cell)
    assert row["status"] == "ok", row.get("error")
    assert json.loads(row["memcgs"]) == cell["memcgs"]
    assert row["memcg_b_max"] > 0 and row["memcg_b_peak"] <= 256  # memory.max of 1 MiB was hit, and held
    assert row["memcg_a_workingset_refault_file"] + row["memcg_b_workingset_refault_file"] == \
        row["vmstat_workingset_refault_file"]
    with pytest.raises(ConfigError, match="memcg"):
        grid_from_options(policies=["classic"], memories=["4MiB"], memcgs=("name=a,pids=x",))
    with pytest.raises(ConfigError, match="not a list"):
        grid_from_options(policies=["classic"], memories=["4MiB"], memcgs="name=a")


def test_sweep_command_takes_memcgs(tmp_path):
    base = ["sweep", "--policy", "classic,mglru", "--memory", "4MiB", "--workload", "tenants", "--dry-run"]
    with_memcgs = invoke(*base, "--memcg", "name=a,pids=0", "--memcg", "name=b,pids=1,max=1MiB")
    without = invoke(*base)
    assert with_memcgs.exit_code == 0 and without.exit_code == 0, with_memcgs.stderr + without.stderr
    assert "2 cells" in with_memcgs.stdout
    # the memcgs are part of each cell: its ids are the flags' grid's, not the grid without them
    flags = grid_from_options(policies=["classic,mglru"], memories=["4MiB"], workloads=["tenants"],
                              memcgs=("name=a,pids=0", "name=b,pids=1,max=1MiB")).cells()
    ids = {cell_id(c) for c in flags}
    assert all(i in with_memcgs.stdout for i in ids)
    assert not any(i in without.stdout for i in ids)
    r = invoke("sweep", "--policy", "classic", "--memory", "4MiB", "--memcg", "name=a,pids=x", "--out",
               str(tmp_path / "t"))
    assert r.exit_code == 2 and r.stderr.count("reclaim-ext: error:") == 1 and "pids" in r.stderr


def test_a_batch_of_rows_keeps_every_rows_columns(tmp_path):
    """One Parquet part holds rows with different columns (a cell with memcgs beside one
    without, in whatever order they finished): every row keeps its own columns."""
    results.write_rows(tmp_path, [
        {"cell_id": "a", "misses": 5, "miss_ratio": 0.5},
        {"cell_id": "b", "misses": 7, "miss_ratio": 0.7, "memcg_probe_pgmajfault": 3},
        {"cell_id": "c", "memcg_probe_pgmajfault": 4, "misses": 9},
    ])
    df = results.load(tmp_path).set_index("cell_id")
    assert df.loc["b", "memcg_probe_pgmajfault"] == 3 and df.loc["c", "memcg_probe_pgmajfault"] == 4
    assert pd.isna(df.loc["a", "memcg_probe_pgmajfault"]) and pd.isna(df.loc["c", "miss_ratio"])
    assert df["misses"].tolist() == [5, 7, 9]


def test_a_cell_attaches_policies_per_memcg():
    """A grid's policy may attach reclaim_ext policies to several scopes (POLICY@SCOPE joined by
    '+'): the cell runs as --policy with --scope and a --switch at access 0 for the others, each
    memcg governed by its own policy; a malformed item is one error."""
    from reclaim_ext.sweep import policy_attachments, run_config

    assert policy_attachments("classic") == ("classic", "system", [])
    assert policy_attachments("lfu@memcg:/a+mru@memcg:/b") == ("lfu", "memcg:/a", ["0:mru@memcg:/b"])
    for bad in ("lfu@", "lfu+mru", "@memcg:/a", "lfu@memcg:/a+"):
        with pytest.raises(ConfigError, match="POLICY"):
            policy_attachments(bad)
    with pytest.raises(ConfigError, match="POLICY@SCOPE"):
        grid_from_options(policies="lfu+mru", memories="4MiB", workloads="tenants")
    g = grid_from_options(policies="mru,lfu@memcg:/a+mru@memcg:/b", memories="8MiB", workloads="tenants",
                          params=("a=zipf pages=1500 accesses=20000", "b=loop pages=600 passes=10"),
                          memcgs=("name=a,pids=0,max=4MiB", "name=b,pids=1,max=2MiB"))
    cells = g.cells()
    cfg = run_config(cells[1])
    assert (cfg.policy, cfg.scope, cfg.switches) == ("lfu", "memcg:/a", ["0:mru@memcg:/b"])
    rows = [run_cell(c) for c in cells]
    assert [r["status"] for r in rows] == ["ok", "ok"]
    # MRU over the system runs one instance per memcg's lruvec (per_lruvec): the scan tenant (b),
    # limited on its own, refaults as under its own MRU in the per-memcg cell
    assert rows[1]["memcg_b_workingset_refault_file"] == rows[0]["memcg_b_workingset_refault_file"]


def test_rows_carry_the_end_state():
    """free pages, MemAvailable (si_mem_available on the run's own end state) and, under MGLRU,
    each type's share of pages in the two youngest generations; a batch of classic rows only
    (no generations: None) reads back as floats beside MGLRU's rows."""
    from reclaim_ext.api import RunConfig, run
    from reclaim_ext.core.stats import si_mem_available
    from reclaim_ext.sweep import lru_gen_young_shares

    g = grid_from_options(policies=["classic", "mglru"], memories=["8MiB"], workloads=["mixed"],
                          params=["accesses=40000"], swap="16MiB")
    rows = {c["policy"]: run_cell(c) for c in g.cells()}
    for policy, row in rows.items():
        res = run(RunConfig(policy=policy, workload="mixed", workload_params={"accesses": 40000},
                            memory=2048, swap=4096))
        file_pages = sum(v for k, v in res["lru_sizes"].items() if k.endswith("_file"))
        wm = res["watermarks"]
        assert row["free_pages"] == res["free_pages"] > 0
        assert row["mem_available"] == res["mem_available"] == \
            si_mem_available(res["free_pages"], file_pages, wm["low"], wm["high"]) > res["free_pages"] - wm["high"]
    assert rows["classic"]["lru_gen_anon_young_share"] is None
    young = rows["mglru"]["lru_gen_anon_young_share"], rows["mglru"]["lru_gen_file_young_share"]
    assert all(0 <= y <= 1 for y in young) and young != (1.0, 1.0)
    st = [{"max_seq": 7, "generations": [{"seq": 4, "anon": 0, "file": 30}, {"seq": 5, "anon": 10, "file": 10},
                                        {"seq": 6, "anon": 30, "file": 0}, {"seq": 7, "anon": 60, "file": 10}]}]
    assert lru_gen_young_shares(st) == {"lru_gen_anon_young_share": 0.9, "lru_gen_file_young_share": 0.2}
    assert si_mem_available(100, 1000, 50, 80) == 100 - 80 + 1000 - 50
    assert si_mem_available(10, 60, 50, 80) == 0  # never negative; half the cache at most is kept


def test_a_batch_without_generations_reads_back_with_one_with_them(tmp_path):
    results.write_rows(tmp_path, [{"cell_id": "a", "status": "ok", "lru_gen_anon_young_share": None,
                                   "mem_available": None}])
    results.write_rows(tmp_path, [{"cell_id": "b", "status": "ok", "lru_gen_anon_young_share": 0.5,
                                   "mem_available": 7}])
    df = results.load(tmp_path)
    assert df["lru_gen_anon_young_share"].tolist()[1] == 0.5 and df["mem_available"].tolist()[1] == 7
