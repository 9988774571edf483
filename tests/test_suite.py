"""The benchmark suite (reclaim-ext suite): scenarios as sweep cells tagged with their name, the
summary with the published direction, and one real scenario run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import invoke
from reclaim_ext import results
from reclaim_ext.errors import ConfigError, ReclaimExtError
from reclaim_ext.suite import BY_NAME, SCENARIOS, cells, compare, select, summary, summary_markdown, write_meta


def test_unknown_scenario():
    with pytest.raises(ConfigError, match="unknown scenario"):
        select(["B99"])


def test_summary_compares_with_the_published_direction(tmp_path):
    sc = BY_NAME["B2-repeated-scan"]
    write_meta(tmp_path, [sc])
    rows = [{"cell_id": p, "status": "ok", "suite_scenario": sc.name, "policy": p, "modeled_seconds": t,
             "miss_ratio": 0.5} for p, t in (("classic", 4.0), ("mglru", 4.1), ("mru", 2.0))]
    results.write_rows(tmp_path, rows)
    (r,) = summary(tmp_path)
    assert r["winner"] == "mru" and r["agrees"] is True and r["means"]["classic"] == 4.0
    assert "| B2-repeated-scan | modeled_seconds | mru 2, classic 4, mglru 4.1 | mru |" in summary_markdown([r])


def test_summary_keeps_mechanism_sets_apart(tmp_path):
    """Rows of one policy with different mechanism sets are different variants, never averaged."""
    sc = BY_NAME["B7-anon-swap"]
    write_meta(tmp_path, [sc])
    rows = [{"cell_id": f"{p}{m}", "status": "ok", "suite_scenario": sc.name, "policy": p, "mechanisms": m,
             "modeled_seconds": t, "miss_ratio": 0.5}
            for p, m, t in (("classic", "", 4.0), ("mglru", "", 3.0), ("mglru", "-lookaround", 5.0))]
    results.write_rows(tmp_path, rows)
    (r,) = summary(tmp_path)
    assert r["means"] == {"classic": 4.0, "mglru": 3.0, "mglru -lookaround": 5.0}
    assert r["agrees"] is True and r["winner"] == "mglru"


def test_a_metric_to_maximise_picks_the_highest(tmp_path):
    """MemAvailable is better higher: the winner, the published direction and compare's verdict
    follow the scenario's higher_is_better."""
    sc = BY_NAME["MGLRU-bimodal"]
    assert sc.higher_is_better and sc.expect == ("classic", "mglru")

    def suite_dir(name, classic, mglru):
        d = tmp_path / name
        write_meta(d, [sc])
        results.write_rows(d, [{"cell_id": f"{p}{seed}", "status": "ok", "suite_scenario": sc.name, "policy": p,
                                "seed": seed, "mem_available": v}
                               for seed in (0, 1) for p, v in (("classic", classic + seed), ("mglru", mglru + seed))])
        return d

    old = suite_dir("old", 3000, 5000)
    (r,) = summary(old)
    assert r["winner"] == "mglru" and r["agrees"] is False
    assert "| MGLRU-bimodal | mem_available (higher is better) | mglru 5000, classic 3000 | mglru |" in \
        summary_markdown([r])
    assert "(classic >= mglru) | no |" in summary_markdown([r])
    (r,) = summary(suite_dir("agree", 6000, 5000))
    assert r["winner"] == "classic" and r["agrees"] is True
    rows = {r["policy"]: r["verdict"] for r in compare(old, suite_dir("new", 3000, 4000))}
    assert rows == {"classic": "same", "mglru": "worse"}  # less memory available: worse
    rows = {r["policy"]: r["verdict"] for r in compare(old, suite_dir("up", 3500, 5000))}
    assert rows == {"classic": "better", "mglru": "same"}


def test_mixed_column_types_are_one_error_line(tmp_path):
    results.write_rows(tmp_path, [{"cell_id": "a", "status": "ok", "x": "text"}])
    results.write_rows(tmp_path, [{"cell_id": "b", "status": "ok", "x": 1.5}])
    with pytest.raises(ReclaimExtError, match="do not agree on a column"):
        results.load(tmp_path)


def test_trace_scenarios_replay_a_file_the_user_names(tmp_path):
    """B4/B12 on another trace (another Twitter cluster): its cells replay that file, memory as the
    scenario's fractions of its own distinct pages; a scenario without a trace refuses it."""
    import numpy as np

    from reclaim_ext.bench.reference import write_oracle_general

    path = tmp_path / "other.oracleGeneral.bin"
    write_oracle_general(np.repeat(np.arange(1, 5001), 2), str(path))
    got = cells([BY_NAME["B12-cloudphysics"]], trace=str(path))
    assert {c["trace"] for c in got} == {str(path)} and {c["trace_format"] for c in got} == {"oraclegeneral"}
    assert sorted({c["memory"] for c in got}) == [64, 500]  # 1% (at least 64) and 10% of 5,000
    with pytest.raises(ConfigError, match="B2-repeated-scan replays no shared trace"):
        cells([BY_NAME["B2-repeated-scan"]], trace=str(path))
    with pytest.raises(ConfigError, match="no such file"):
        cells([BY_NAME["B4-twitter"]], trace=str(tmp_path / "missing"))
    r = invoke("suite", "run", "B12-cloudphysics", "--trace", str(path), "--out", str(tmp_path / "s"),
               "--workers", "1", "--no-progress")
    assert r.exit_code == 0, r.stderr
    assert set(results.load(tmp_path / "s")["trace"]) == {str(path)}


def test_a_scenario_runs_end_to_end(tmp_path):
    out = tmp_path / "s"
    r = invoke("suite", "run", "B2-repeated-scan", "--out", str(out), "--workers", "1", "--no-progress")
    assert r.exit_code == 0, r.stderr
    rep = invoke("suite", "report", str(out))
    assert rep.exit_code == 0 and "| B2-repeated-scan | modeled_seconds |" in rep.stdout
    assert (out / "suite.md").read_text() == rep.stdout
    assert json.loads((out / "_suite.json").read_text())[0]["name"] == "B2-repeated-scan"
    bad = invoke("suite", "report", str(tmp_path))
    assert bad.exit_code == 2 and "not a suite results directory" in bad.stderr


def test_compare_flags_changes_beyond_the_noise_of_seeds(tmp_path):
    sc = BY_NAME["B1-kv-zipf"]

    def suite_dir(name, classic, lfu):
        d = tmp_path / name
        write_meta(d, [sc])
        rows = []
        for seed, (c, f) in enumerate(zip(classic, lfu)):
            rows += [{"cell_id": f"c{seed}", "status": "ok", "suite_scenario": sc.name, "policy": "classic",
                      "seed": seed, "miss_ratio": c},
                     {"cell_id": f"l{seed}", "status": "ok", "suite_scenario": sc.name, "policy": "lfu",
                      "seed": seed, "miss_ratio": f}]
        results.write_rows(d, rows)
        return d

    old = suite_dir("old", [0.30, 0.31], [0.25, 0.26])
    new = suite_dir("new", [0.30, 0.312], [0.28, 0.29])  # lfu worse by 0.03, seeds spread 0.005
    rows = {r["policy"]: r for r in compare(old, new)}
    assert rows["classic"]["verdict"] == "same" and rows["lfu"]["verdict"] == "worse"
    r = invoke("suite", "compare", str(old), str(new))
    assert r.exit_code == 1 and "| B1-kv-zipf | lfu | miss_ratio |" in r.stdout and "worse" in r.stdout
    assert invoke("suite", "compare", str(new), str(old)).exit_code == 0  # the reverse: better


def _fake_recording(calls):
    """A stand-in for recording a recipe under valgrind: 300 anon pages of one process and 100
    pages of one file, twice over."""
    import numpy as np

    from reclaim_ext.trace import Kind, write_native
    from reclaim_ext.trace.record import make_records

    def record_recipe(name, out, fold_window=8):
        calls.append(name)
        r = make_records(800)
        r["kind"][:600] = Kind.ANON
        r["page"][:600] = np.tile(np.arange(1000, 1300), 2)
        r["kind"][600:] = Kind.FILE_EXEC
        r["file"][600:] = 1
        r["page"][600:] = np.tile(np.arange(100), 2)
        write_native(out, r)
        (Path(out + ".json")).write_text("{}")
        return {}

    return record_recipe


@pytest.fixture
def fake_recipes(tmp_path, monkeypatch):
    from reclaim_ext.record import recipes

    calls = []
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(recipes, "record_recipe", _fake_recording(calls))
    return calls


def test_every_scenario_expands_into_tagged_cells(fake_recipes):
    for sc in SCENARIOS:
        cs = cells([sc])
        assert cs and all(c["suite_scenario"] == sc.name for c in cs), sc.name
        assert {c["policy"] for c in cs} >= set(sc.expect or ()), sc.name  # the compared policies run
    b12 = cells([BY_NAME["B12-cloudphysics"]])
    assert len({c["memory"] for c in b12}) == 2  # 1 % and 10 % of the trace's distinct pages


def test_recipe_scenarios_replay_a_cached_recording(fake_recipes, tmp_path, monkeypatch):
    from reclaim_ext.record import recipes

    told = []
    cs = cells([BY_NAME["REC-xz"]], echo=told.append)
    assert fake_recipes == ["xz"] and len(told) == 1 and "recording recipe xz" in told[0]
    path = cs[0]["trace"]
    assert path.startswith(str(tmp_path / "cache" / "reclaim-ext" / "recipes")) and Path(path).exists()
    assert {c["trace_format"] for c in cs} == {"native"} and {c["policy"] for c in cs} == {"classic", "mglru"}
    # memory: a quarter and half of the distinct pages (300 anon + 100 file pages; the repeats are not new)
    assert sorted({c["memory"] for c in cs}) == [100, 200]
    assert {c["swap"] for c in cs} == {16384}  # 64 MiB: the anon pages of ended processes stay in a trace
    # the second time the cache answers
    assert cells([BY_NAME["REC-xz"]])[0]["trace"] == path and fake_recipes == ["xz"]
    # a changed recipe (its key) is recorded again, under another name
    monkeypatch.setattr(recipes, "recipe_key", lambda name, fold_window=8: "changed")
    assert cells([BY_NAME["REC-xz"]])[0]["trace"] != path and fake_recipes == ["xz", "xz"]


def test_an_interrupted_recipe_recording_leaves_no_cache_entry(tmp_path, monkeypatch):
    from reclaim_ext.record import recipes
    from reclaim_ext.record.runner import RecordError

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def broken(name, out, fold_window=8):
        Path(out).write_bytes(b"partial")
        raise RecordError(f"record: recipe {name}: the recording did not complete (exit status -2, interrupted)")

    monkeypatch.setattr(recipes, "record_recipe", broken)
    with pytest.raises(RecordError, match="did not complete"):
        cells([BY_NAME["REC-python"]])
    assert list((tmp_path / "cache" / "reclaim-ext" / "recipes").iterdir()) == []
    r = invoke("suite", "run", "REC-python", "--out", str(tmp_path / "s"), "--workers", "1", "--no-progress")
    last = r.stderr.strip().splitlines()[-1]
    assert r.exit_code == 2 and last.startswith("reclaim-ext: error: record: recipe python")


def test_recipe_key_follows_the_recipe():
    from reclaim_ext.record import recipes

    keys = {n: recipes.recipe_key(n) for n in recipes.RECIPES}
    assert len(set(keys.values())) == len(keys)  # one key per recipe
    assert recipes.recipe_key("xz", fold_window=0) != keys["xz"]
    assert recipes.cached_path("xz").endswith(f"xz-{keys['xz']}.rxt")


@pytest.mark.slow
@pytest.mark.skipif(__import__("shutil").which("valgrind") is None, reason="needs valgrind")
def test_a_recipe_scenario_runs_end_to_end(tmp_path, monkeypatch):
    """Records the python recipe under valgrind (minutes) into a fresh cache and replays it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "s"
    r = invoke("suite", "run", "REC-python", "--out", str(out), "--workers", "1", "--no-progress")
    assert r.exit_code == 0, r.stderr
    rep = invoke("suite", "report", str(out))
    assert "| REC-python | miss_ratio |" in rep.stdout


def test_recorded_programs_run_when_named():
    default = [s.name for s in select(None)]
    assert default and not any(n.startswith("REC-") for n in default) and "B1-kv-zipf" in default
    assert [s.name for s in select(["REC-*"])] == ["REC-xz", "REC-sqlite", "REC-build", "REC-python"]
    assert [s.name for s in select(["REC-python", "REC-*"])][0] == "REC-python"  # each once, in order given
    assert len(select(["REC-python", "REC-*"])) == 4
    with pytest.raises(ConfigError, match="unknown scenario 'NOPE-\\*'"):
        select(["NOPE-*"])
    r = invoke("suite", "run", "NOPE-*", "--out", "/tmp/never-made")
    assert r.exit_code == 2 and r.stderr.count("reclaim-ext: error:") == 1


def test_distinct_pages_counts_folios(tmp_path):
    """Anon pages are per process, file pages per file whatever the access kind; page numbers too
    large to pack are compared as rows (the same count)."""
    import numpy as np

    from reclaim_ext.suite import _distinct_pages
    from reclaim_ext.trace import Kind, write_native
    from reclaim_ext.trace.record import make_records

    def trace(big):
        r = make_records(8)
        rows = [(Kind.ANON, 0, 0, 5), (Kind.ANON, 1, 0, 5), (Kind.ANON, 0, 0, 5),     # 2 anon folios
                (Kind.FILE_MMAP, 0, 1, 5), (Kind.FILE_EXEC, 1, 1, 5), (Kind.FILE_FD, 0, 1, 5),  # 1 file folio
                (Kind.FILE_FD, 0, 2, 5), (Kind.FILE_FD, 0, 2, big)]                      # 2 more
        for i, (k, pid, f, pg) in enumerate(rows):
            r[i]["kind"], r[i]["pid"], r[i]["file"], r[i]["page"] = k, pid, f, pg
        p = tmp_path / f"t{big}.rxt"
        write_native(p, r)
        return str(p)

    assert _distinct_pages(trace(6), "native") == 5
    assert _distinct_pages(trace(np.uint64(1) << np.uint64(50)), "native") == 5


def test_a_scenario_adds_mechanism_variants():
    """B9 runs MGLRU without its memcg LRU beside classic and MGLRU; the summary keeps it apart."""
    got = {(c["policy"], c["mechanisms"], c["seed"]) for c in cells([BY_NAME["B9-anon-and-io-tenants"]], quick=True)}
    assert got == {("classic", None, 0), ("mglru", None, 0), ("mglru", "-memcg_lru", 0)}
