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
