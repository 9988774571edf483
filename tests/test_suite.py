"""The benchmark suite (reclaim-ext suite): scenarios as sweep cells tagged with their name, the
summary with the published direction, and one real scenario run end to end."""

from __future__ import annotations

import json

import pytest

from conftest import invoke
from reclaim_ext import results
from reclaim_ext.errors import ConfigError
from reclaim_ext.suite import BY_NAME, SCENARIOS, cells, compare, select, summary, summary_markdown, write_meta


def test_every_scenario_expands_into_tagged_cells():
    for sc in SCENARIOS:
        cs = cells([sc])
        assert cs and all(c["suite_scenario"] == sc.name for c in cs), sc.name
        assert {c["policy"] for c in cs} >= set(sc.expect or ()), sc.name  # the compared policies run
    b12 = cells([BY_NAME["B12-cloudphysics"]])
    assert len({c["memory"] for c in b12}) == 2  # 1 % and 10 % of the trace's distinct pages


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
