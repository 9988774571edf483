"""What `run` and `ablate` print says what happened: switches and policy exits in the table, the
JSON and a warning line; counters labelled as what they count; piped tables never cut a number;
settings that cannot apply are refused or warned about; results carry the reclaim-ext version."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import invoke, run_json

from reclaim_ext import __version__

SMALL = ["-p", "accesses=20000", "-p", "pages=4000", "--memory", "4MiB"]
CACHE = ["--cache", "--capacity", "200", "-p", "accesses=20000", "-p", "pages=4000"]


def _lines(text: str) -> list[str]:
    return [x for x in text.splitlines() if x.strip()]


def _row(stdout: str, label: str) -> str:
    """The value of the summary row `label` (the first one), its wrapped lines joined."""
    lines = stdout.splitlines()
    i = next(i for i, x in enumerate(lines) if x.count("│") == 3 and x.split("│")[1].strip() == label)
    parts = [lines[i].split("│")[2].strip()]
    for x in lines[i + 1:]:
        cells = x.split("│")
        if len(cells) != 4 or cells[1].strip():
            break
        parts.append(cells[2].strip())
    return " ".join(parts)


def _policy_file(tmp_path: Path, body: str, name: str = "pol.py") -> str:
    """A policy file: the LRU plug-in with `body` added to (or overriding in) its class."""
    src = tmp_path / name
    src.write_text("from reclaim_ext.plugins.lru import LRU\n\n\nclass Pol(LRU):\n" + body)
    return str(src)


RAISE_EVICT = "    def evict(self, ctx, n):\n        raise RuntimeError('boom')\n"
RAISE_INIT = "    def init(self, ctx):\n        raise ValueError('bad init')\n"


# ---- issue 16.4a: a --switch shows in the table and the JSON --------------------------------------


def test_switch_is_shown_in_cache_table_and_json():
    args = [*CACHE, "--policy", "lru", "--switch", "5000:s3fifo"]
    r = invoke("run", *args)
    assert r.exit_code == 0, r.output
    assert _row(r.stdout, "switch") == "at access 5,000: lru → s3fifo (system)"
    assert "lru → s3fifo at access 5,000" in r.stdout  # the title names both policies
    res = run_json(*args)
    assert res["switches"] == [{"at": 5000, "scope": "system", "from": "lru", "to": "s3fifo", "happened": True}]


def test_switch_is_shown_in_reclaim_core_table_and_json():
    args = [*SMALL, "--policy", "lru", "--switch", "10000:fifo"]
    res = run_json(*args)
    assert res["switches"] == [{"at": 10000, "scope": "system", "from": "lru", "to": "fifo", "happened": True}]
    r = invoke("run", *args)
    assert r.exit_code == 0 and _row(r.stdout, "switch") == "at access 10,000: lru → fifo (system)"


# ---- 16.4b: "fallback evictions" counts evictions -------------------------------------------------


def test_fallback_evictions_count_evictions_not_requested_victims(tmp_path):
    pol = _policy_file(tmp_path, RAISE_EVICT)  # lookahead: the fallback is asked for many victims at once
    res = run_json(*CACHE, "--policy", pol)
    assert res["exit"]["kind"] == "ERROR_POLICY"
    ev = res["events"]
    # the policy never chose a victim: every eviction is the fallback's, and each counted once
    assert ev["fallback_evictions"] == res["evictions"] > 0
    assert 0 < ev["fallback_requests"] < ev["fallback_evictions"]
    r = invoke("run", *CACHE, "--policy", pol)
    assert _row(r.stdout, "fallback evictions") == f"{res['evictions']:,}"


# ---- 16.4c: piped tables never cut a number ---------------------------------------------------------


def test_piped_tables_never_cut_or_ellipsize_numbers():
    r = invoke("run", "--workload", "mixed", "-p", "procs=3", "-p", "accesses=30000", "--memory", "64MiB",
               "--memcg", "name=a,pids=0,max=16MiB", "--memcg", "name=b/c,pids=1+2,max=24MiB")
    assert r.exit_code == 0, r.output
    assert "…" not in r.stdout
    res = run_json("--workload", "mixed", "-p", "procs=3", "-p", "accesses=30000", "--memory", "64MiB",
                   "--memcg", "name=a,pids=0,max=16MiB", "--memcg", "name=b/c,pids=1+2,max=24MiB")
    for m in res["memcgs"]:  # every memcg's numbers, whole, on its row
        row = next(x for x in r.stdout.splitlines() if re.match(rf"│ {re.escape(m['name'])}\s", x))
        assert f"{m['memory_stat']['pgscan']:,}" in row and f"{m['memory_stat']['pgfault']:,}" in row


# ---- 16.4d: one definition of "pages scanned" -------------------------------------------------------


def test_pages_scanned_has_one_definition_in_run_and_ablate():
    from reclaim_ext.bench.ablate import METRICS

    res = run_json("--workload", "mixed", "-p", "accesses=30000", "--memory", "16MiB")
    vm = res["vmstat"]
    assert res["cost"]["pages_scanned"] == vm["pgscan_kswapd"] + vm["pgscan_direct"] + vm["pgrefill"]
    label = dict(METRICS)["pages_scanned"]
    assert label == "pages scanned (pgscan + pgrefill)"
    r = invoke("run", "--workload", "mixed", "-p", "accesses=30000", "--memory", "16MiB")
    assert _row(r.stdout, label) == f"{res['cost']['pages_scanned']:,}"
    assert _row(r.stdout, "pages scanned for eviction (pgscan kswapd / direct)") == \
        f"{vm['pgscan_kswapd']:,} / {vm['pgscan_direct']:,}"


# ---- 16.4e: ablate's default workload exercises the mechanisms --------------------------------------


def test_ablate_default_workload_exercises_the_mechanisms():
    r = invoke("ablate", "--policy", "mglru", "--variant", "-lookaround", "-j", "1", "--json", "-")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["workload"] == "mixed" and res["default_workload"] is True
    moved = [k for k, v in res["variants"][0]["relative"].items() if v]
    assert "ptes_walked" in moved and "misses" in moved
    from reclaim_ext.bench.ablate import format_plain

    assert "mixed -p accesses=500000 (ablate's default" in format_plain(res)


# ---- issue 17.1: an ejected policy shows in the table and on stderr ---------------------------------


def test_ejected_policy_has_a_row_and_one_warning_line(tmp_path, monkeypatch):
    _policy_file(tmp_path, RAISE_EVICT, "raise_evict.py")
    monkeypatch.chdir(tmp_path)
    pol = "raise_evict.py"
    r = invoke("run", *SMALL, "--policy", pol)
    assert r.exit_code == 0, r.output  # the fallback finished the run: a result, with a warning
    row = _row(r.stdout, "policy exit")
    assert re.fullmatch(r"raise_evict\.py \(system\): ERROR_POLICY in evict\(\) at access [\d,]+: "
                        r"RuntimeError: boom; classic took over", row), row
    assert "ejected at access" in " ".join(r.stdout.split())  # the title says so
    (line,) = _lines(r.stderr)
    assert line == "reclaim-ext: warning: policy ejected: " + row  # the same words as the row
    res = run_json(*SMALL, "--policy", pol)
    assert res["exit"]["successor"] == "classic" and res["warnings"] == [line.removeprefix("reclaim-ext: warning: ")]


def test_ejected_memcg_policy_names_its_scope_and_successor(tmp_path):
    pol = _policy_file(tmp_path, RAISE_INIT)
    args = ["--workload", "mixed", "-p", "procs=2", "-p", "accesses=20000", "--memcg", "name=a,pids=0",
            "--memcg", "name=b,pids=1", "--policy", pol, "--scope", "memcg:/a"]
    r = invoke("run", *args)
    assert r.exit_code == 0, r.output
    assert _row(r.stdout, "policy exit").endswith(
        "pol.py (memcg:/a): ERROR_POLICY in init() at access 0: ValueError: bad init; classic took over")
    (line,) = _lines(r.stderr)
    assert "reclaim-ext: warning:" in line and "memcg:/a" in line and "init()" in line


# ---- 17.2: --min-free-kbytes above the memory is bad input ------------------------------------------


def test_min_free_kbytes_above_memory_is_an_input_error():
    r = invoke("run", "--min-free-kbytes", "1000000000")
    assert r.exit_code == 2
    (line,) = _lines(r.stderr)
    assert line.startswith("reclaim-ext: error: --min-free-kbytes 1000000000")
    assert "exceeds the machine's memory" in line


# ---- 17.3: settings that never apply ---------------------------------------------------------------


def test_memcg_pid_missing_from_trace_is_warned_about():
    r = invoke("run", "--workload", "mixed", "-p", "procs=2", "-p", "accesses=20000",
               "--memcg", "name=a,pids=0+5", "--memcg", "name=b,pids=1")
    assert r.exit_code == 0, r.output
    (line,) = _lines(r.stderr)
    assert line.startswith("reclaim-ext: warning: --memcg a: pid 5 never appears in the trace")


def test_memcg_min_above_max_is_refused():
    r = invoke("run", *SMALL, "--memcg", "name=a,pids=0,min=8MiB,max=4MiB")
    assert r.exit_code == 2
    (line,) = _lines(r.stderr)
    assert line.startswith("reclaim-ext: error: --memcg a: min 8 MiB is above max 4 MiB")


@pytest.mark.parametrize("mode", [CACHE, SMALL])
def test_switch_past_the_end_is_warned_about(mode):
    r = invoke("run", *mode, "--policy", "lru", "--switch", "5000:fifo", "--switch", "20000:s3fifo")
    assert r.exit_code == 0, r.output
    (line,) = _lines(r.stderr)
    assert line == "reclaim-ext: warning: --switch 20000:s3fifo never happened: the run ended after 20,000 accesses"
    assert _row(r.stdout, "switch") == "at access 5,000: lru → fifo (system)"
    assert "never happened" in r.stdout  # and the second switch's row says so


# ---- 17.4: --trace-opt values are typed per option; errors use --trace-opt wording ------------------


def test_trace_opt_values_are_parsed_per_option(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("ts,off,len\n1,0,4096\n2,8192,8192\n3,0,100\n")
    res = run_json("--trace", str(p), "--format", "csv", "--trace-opt", "offset_col=off",
                   "--trace-opt", "size_col=len", "--memory", "1MiB")
    assert res["accesses"] == 4  # column 'off', not the boolean false
    q = tmp_path / "s.csv"
    q.write_text("ts,key\n1,abc\n2,def\n1,abc\n")
    res = run_json("--trace", str(q), "--format", "csv", "--trace-opt", "id_col=key", "--trace-opt", "id_is_num=off",
                   "--memory", "1MiB")
    assert res["accesses"] == 3 and res["misses"] == 2


def test_csv_errors_name_trace_opt_keys(tmp_path):
    q = tmp_path / "s.csv"
    q.write_text("ts,key\n1,abc\n")
    r = invoke("run", "--trace", str(q), "--format", "csv", "--trace-opt", "id_col=key")
    assert r.exit_code == 2
    (line,) = _lines(r.stderr)
    assert "--trace-opt id_is_num=false" in line and "False" not in line
    r = invoke("run", "--trace", str(q), "--format", "csv", "--trace-opt", "id_col=zz")
    assert "--trace-opt id_col=zz: missing column" in r.stderr
    r = invoke("run", "--trace", str(q), "--format", "csv", "--trace-opt", "offset_col=ts")
    assert "--trace-opt offset_col=N and --trace-opt size_col=N go together" in r.stderr


# ---- 17.5: results carry the version -------------------------------------------------------------------


def test_results_carry_version_and_commit():
    from reclaim_ext.provenance import git_commit

    res = run_json(*SMALL)
    assert res["reclaim_ext_version"] == __version__
    checkout = (Path(__file__).resolve().parents[1] / ".git").exists()
    assert res["git_commit"] == git_commit() and (res["git_commit"] is not None) == checkout
    if checkout:
        assert re.match(r"^[0-9a-f]{7,}|^v?\d", res["git_commit"])
    cache = run_json(*CACHE, "--policy", "lru")
    assert cache["reclaim_ext_version"] == __version__ and "git_commit" in cache


def test_trace_seconds_is_the_time_the_trace_took_to_give_its_chunks():
    """A run's wall time splits into the trace's own (a slow reader here: 0.05 s per chunk) and the
    rest; the rate without the trace's time is the higher one. Plain-cache mode the same."""
    import time as _time

    import numpy as np

    from reclaim_ext.api import RunConfig, run
    from reclaim_ext.trace import ArrayTrace, Kind
    from reclaim_ext.trace.record import make_records

    class Slow(ArrayTrace):
        def chunks(self, chunk=1000):
            for c in super().chunks(chunk):
                _time.sleep(0.05)
                yield c

    rec = make_records(3000)
    rec["kind"] = Kind.FILE_FD
    rec["page"] = np.arange(3000) % 700
    for cfg in (RunConfig(policy="classic", workload=None, memory=512, swap=0),
                RunConfig(policy="lru", workload=None, cache=True, capacity=300)):
        r = run(cfg, trace=Slow("slow", rec))
        assert 0.15 <= r["trace_seconds"] < r["wall_seconds"]
        assert r["simulated_accesses_per_second"] == pytest.approx(3000 / (r["wall_seconds"] - r["trace_seconds"]))
        assert r["simulated_accesses_per_second"] > r["accesses_per_second"]
