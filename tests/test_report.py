"""reclaim-ext plot / report: pictures of a run and of a sweep's rows."""

from __future__ import annotations

import json

from conftest import invoke
from reclaim_ext import results
from reclaim_ext.api import RunConfig, run
from reclaim_ext.report import plot_result, report

PNG = b"\x89PNG\r\n\x1a\n"


def _rows():
    rows = []
    for policy, base in (("classic", 0.50), ("mglru", 0.45)):
        for mem in (1024, 2048, 4096):
            for seed in (0, 1):
                rows.append({"cell_id": f"{policy}-{mem}-{seed}", "status": "ok", "policy": policy, "mechanisms": "",
                             "cache": False, "memory_pages": mem, "workload": "zipf",
                             "workload_params": json.dumps({"accesses": 1000}), "trace": None, "seed": seed,
                             "miss_ratio": base * 1024 / mem + 0.01 * seed})
    rows.append({"cell_id": "bad", "status": "error", "policy": "nosuch", "mechanisms": "", "cache": False,
                 "memory_pages": 1024, "workload": "zipf", "workload_params": "{}", "trace": None, "seed": 0,
                 "miss_ratio": None})
    return rows


def test_report_of_a_sweep(tmp_path):
    d = tmp_path / "sweep"
    d.mkdir()
    results.write_rows(d, _rows())
    r = report(d)
    assert r["html"].exists() and r["markdown"].exists() and len(r["plots"]) == 1
    assert r["plots"][0].read_bytes().startswith(PNG)
    (scenario, vals), = r["table"].items()
    assert scenario == "zipf (accesses=1000)" and set(vals) == {"classic", "mglru"}  # the error row is left out
    assert vals["mglru"] < vals["classic"]
    md = r["markdown"].read_text()
    assert f"**{vals['mglru']:.4f}**" in md and f"{vals['classic']:.4f}" in md
    page = r["html"].read_text()
    assert "data:image/png;base64," in page and f"<b>{vals['mglru']:.4f}</b>" in page


def test_report_of_a_suite_run(tmp_path):
    """A suite's directory: curves per scenario (its name, not its workload), and the suite's
    table: each scenario's primary metric per variant with the winner, the published direction
    and whether ours agrees, in the Markdown and in the HTML."""
    from reclaim_ext.suite import BY_NAME, write_meta

    d = tmp_path / "suite"
    sc = BY_NAME["B2-repeated-scan"]
    write_meta(d, [sc])
    rows = [dict(r, suite_scenario=sc.name, modeled_seconds=4.0 if r["policy"] == "classic" else 3.0)
            for r in _rows()]
    results.write_rows(d, rows)
    r = report(d)
    assert set(r["table"]) == {"B2-repeated-scan"}
    md = r["markdown"].read_text()
    assert "| B2-repeated-scan | modeled_seconds | mglru 3, classic 4 | mglru |" in md
    assert "(mru <= classic) | - |" in md  # mru did not run: no verdict
    page = r["html"].read_text()
    assert "<h2>Benchmark suite</h2>" in page and "<b>mglru 3</b>, classic 4" in page
    assert "cache_ext: MRU about 2x faster" in page


def test_a_suite_scenario_at_one_size_is_pictured_by_its_metric(tmp_path, monkeypatch):
    from reclaim_ext import report as rep
    from reclaim_ext.suite import BY_NAME, write_meta

    drawn = []
    monkeypatch.setattr(rep, "_metric_bars", lambda ax, row: (drawn.append(row["scenario"]), ax.bar([0], [1])))
    d = tmp_path / "suite"
    sc = BY_NAME["B2-repeated-scan"]
    write_meta(d, [sc])
    results.write_rows(d, [dict(r, suite_scenario=sc.name, modeled_seconds=1.0) for r in _rows()
                           if r["memory_pages"] == 1024])
    r = rep.report(d)
    assert drawn == ["B2-repeated-scan"] and r["plots"][0].read_bytes().startswith(PNG)
    results.write_rows(d, [dict(r, suite_scenario=sc.name, modeled_seconds=1.0) for r in _rows()
                           if r["memory_pages"] == 2048])
    rep.report(d)
    assert drawn == ["B2-repeated-scan"]  # two sizes: the curves


def test_quick_suite_runs_one_seed_per_scenario():
    from reclaim_ext.suite import BY_NAME, cells

    chosen = [BY_NAME["B1-kv-zipf"], BY_NAME["B2-repeated-scan"]]
    full, quick = cells(chosen), cells(chosen, quick=True)
    assert {c["seed"] for c in full} == {0, 1} and {c["seed"] for c in quick} == {0}
    assert len(quick) == 4 + 3 and len(full) == 8 + 3


def test_plot_of_a_run(tmp_path):
    res = run(RunConfig(workload="mixed", workload_params=dict(procs=2, accesses=140_000), memory=8192,
                        memcgs=["name=a,pids=0", "name=b,pids=1"]))
    out = plot_result(res, tmp_path / "r.png")
    assert out.read_bytes().startswith(PNG) and out.stat().st_size > 10_000


def test_cli_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    r = invoke("report", str(tmp_path / "empty"))
    assert r.exit_code == 2 and "no finished cells" in r.stderr
    (tmp_path / "x.json").write_text("[1]")
    r = invoke("plot", str(tmp_path / "x.json"))
    assert r.exit_code == 2 and "not a run result" in r.stderr


def test_ablation_bars(tmp_path):
    """A policy run with its own mechanisms and with others: per mechanism set, the change of
    misses, rmap walks, PTEs walked and modelled time against its own, over the cells both ran."""
    rows = []
    for mech, misses, walks, ptes, secs in (("", 100, 50, 1000, 2.0), ("-bloom", 100, 40, 1500, 2.0),
                                            ("-lookaround", 110, 0, 0, 2.2)):
        for mem in (1024, 2048):
            rows.append({"cell_id": f"{mech}-{mem}", "status": "ok", "policy": "mglru", "mechanisms": mech,
                         "cache": False, "memory_pages": mem, "workload": "mixed", "workload_params": "{}",
                         "trace": None, "seed": 0, "miss_ratio": misses / 1000, "misses": misses,
                         "cost_rmap_walks": walks, "cost_ptes_walked": ptes, "modeled_seconds": secs})
    rows.append(dict(rows[0], cell_id="classic", policy="classic"))  # one mechanism set only: no bars
    d = tmp_path / "sweep"
    d.mkdir()
    results.write_rows(d, rows)
    r = report(d)
    assert list(r["ablations"]) == [("mixed", "mglru")]
    res = r["ablations"][("mixed", "mglru")]
    assert res["-bloom"] == {"misses": 0.0, "rmap walks": -20.0, "PTEs walked": 50.0, "modelled time": 0.0}
    assert res["-lookaround"]["misses"] == 10.0 and res["-lookaround"]["rmap walks"] == -100.0
    assert len(r["ablation_plots"]) == 1 and r["ablation_plots"][0].read_bytes().startswith(PNG)
    md = r["markdown"].read_text()
    assert "## Ablations" in md and "| -bloom | +0.0% | -20.0% | +50.0% | +0.0% |" in md
    assert "ablation" in r["html"].read_text()
