"""The command line: `run` prints a JSON result, both drivers agree through it, and every bad input
ends with exit code 2 and one error line naming the input and the problem, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import invoke, run_json

from reclaim_ext.trace import WORKLOADS
from reclaim_ext.trace.readers import ORACLE_DTYPE

SMALL = ["--workload", "zipf", "-p", "accesses=20000", "-p", "pages=4000", "--memory", "4MiB"]
RESULT_KEYS = {"policy", "workload", "memory_pages", "accesses", "wall_seconds", "accesses_per_second",
               "miss_ratio", "modeled_seconds", "vmstat", "cost"}


@pytest.fixture(scope="module")
def small_result():
    return run_json(*SMALL)


def test_run_json_has_result_keys(small_result):
    assert RESULT_KEYS <= set(small_result)


def test_run_json_describes_the_run(small_result):
    r = small_result
    assert (r["policy"], r["workload"], r["memory_pages"], r["accesses"]) == ("classic", "zipf", 1024, 20_000)
    assert 0 < r["miss_ratio"] < 1 and r["miss_ratio"] == r["misses"] / r["accesses"]
    assert r["wall_seconds"] > 0 and r["accesses_per_second"] > 0 and r["modeled_seconds"] > 0
    assert r["vmstat"]["pgscan_kswapd"] > 0 and r["cost"]["hits"] > 0


def test_run_json_stdout_is_only_json(small_result):
    r = invoke("run", *SMALL, "--json", "-")
    json.loads(r.stdout)  # nothing but the JSON document on stdout
    assert r.stderr == ""


def test_run_json_to_file_matches_stdout(tmp_path, small_result):
    out = tmp_path / "r.json"
    r = invoke("run", *SMALL, "--json", str(out))
    assert r.exit_code == 0, r.output
    saved = json.loads(out.read_text())
    assert saved["vmstat"] == small_result["vmstat"] and saved["misses"] == small_result["misses"]


def test_run_prints_summary():
    r = invoke("run", *SMALL)
    assert r.exit_code == 0, r.output
    assert "miss ratio" in r.output and "classic" in r.output


def test_exact_mode_gives_identical_counters(small_result):
    exact = run_json(*SMALL, "--mode", "exact")
    assert exact["mode"] == "exact" and small_result["mode"] == "fast"
    assert exact["vmstat"] == small_result["vmstat"]
    assert exact["cost"] == small_result["cost"] and exact["misses"] == small_result["misses"]


def test_same_seed_same_result(small_result):
    again = run_json(*SMALL)
    assert again["vmstat"] == small_result["vmstat"]


def test_module_entry_point_runs():
    """`python -m reclaim_ext run ... --json -` in a real subprocess."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    p = subprocess.run(
        [sys.executable, "-m", "reclaim_ext", "run", "--workload", "zipf", "-p", "accesses=20000",
         "--memory", "4MiB", "--json", "-"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert RESULT_KEYS <= set(r) and r["accesses"] == 20_000 and r["memory_pages"] == 1024


def test_out_of_memory_exits_3_with_message():
    r = invoke("run", "--workload", "zipf", "-p", "kind=anon", "-p", "pages=4000", "-p", "accesses=20000",
               "--memory", "2MiB", "--swap", "0")
    assert r.exit_code == 3
    assert "out of memory" in r.stderr and "Traceback" not in r.output


# ---- bad input ---------------------------------------------------------------------------------


def assert_bad_input(r, *words):
    """Exit code 2, no traceback, exactly one error line, and it names the input and the problem."""
    assert r.exit_code == 2, r.output
    assert not isinstance(r.exception, Exception) or isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output
    errors = [line for line in r.output.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, r.output
    for w in words:
        assert w in errors[0], (w, errors[0])
    assert r.stdout == ""  # nothing half-written on stdout


def test_bad_memory_size():
    assert_bad_input(invoke("run", "--memory", "12XB"), "memory", "12XB", "unit")


def test_memory_too_small():
    assert_bad_input(invoke("run", *SMALL[:6], "--memory", "100KiB"), "memory", "too small")


def test_bad_swap_size():
    assert_bad_input(invoke("run", "--swap", "lots"), "swap", "lots")


def test_unknown_workload():
    assert_bad_input(invoke("run", "--workload", "nope"), "nope", "unknown workload", "zipf")


def test_unknown_policy():
    assert_bad_input(invoke("run", *SMALL, "--policy", "nope"), "policy", "nope")


def test_bad_param_value():
    assert_bad_input(invoke("run", "-p", "accesses=lots"), "accesses", "lots", "not an integer")


def test_param_out_of_range():
    assert_bad_input(invoke("run", "-p", "alpha=-1"), "alpha", "> 0")


def test_unknown_param():
    assert_bad_input(invoke("run", "-p", "colour=3"), "colour", "unknown parameter")


def test_param_without_value():
    assert_bad_input(invoke("run", "-p", "accesses"), "accesses", "key=value")


def test_trace_without_format(tmp_path):
    assert_bad_input(invoke("run", "--trace", str(tmp_path / "t.bin")), "--trace", "--format")


def test_missing_trace_file(tmp_path):
    path = tmp_path / "missing.bin"
    assert_bad_input(invoke("run", "--trace", str(path), "--format", "oraclegeneral"), str(path), "no such file")


def test_empty_trace_file(tmp_path):
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    assert_bad_input(invoke("run", "--trace", str(path), "--format", "oraclegeneral"), str(path), "empty")


def oracle_records(n: int) -> bytes:
    raw = np.zeros(n, dtype=ORACLE_DTYPE)
    raw["clock_time"] = np.arange(n)
    raw["obj_id"] = np.arange(n) % 7
    raw["obj_size"] = 4096
    raw["next_access_vtime"] = -1
    return raw.tobytes()


def test_truncated_oraclegeneral_file(tmp_path):
    path = tmp_path / "cut.oracleGeneral.bin"
    path.write_bytes(oracle_records(10)[:-5])  # the last record is 5 bytes short
    assert_bad_input(invoke("run", "--trace", str(path), "--format", "oraclegeneral"), str(path), "truncated")


def test_valid_oraclegeneral_file_runs(tmp_path):
    """The counterpart of the truncated file: the same records, whole, replay fine."""
    path = tmp_path / "ok.oracleGeneral.bin"
    path.write_bytes(oracle_records(10))
    r = invoke("run", "--trace", str(path), "--format", "oraclegeneral", "--memory", "1MiB", "--json", "-")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["accesses"] == 10 and out["misses"] == 7 and out["trace"] == str(path)


def test_unknown_trace_opt(tmp_path):
    path = tmp_path / "ok.bin"
    path.write_bytes(oracle_records(10))
    assert_bad_input(invoke("run", "--trace", str(path), "--format", "oraclegeneral", "--trace-opt", "speed=9"),
                     "speed", "unknown option")


def test_trace_opt_without_trace():
    assert_bad_input(invoke("run", "--trace-opt", "zero_size=keep"), "--trace-opt", "--trace")


def test_params_with_trace(tmp_path):
    path = tmp_path / "ok.bin"
    path.write_bytes(oracle_records(10))
    assert_bad_input(invoke("run", "--trace", str(path), "--format", "oraclegeneral", "-p", "pages=3"),
                     "--param", "--trace")


def test_bad_swappiness():
    assert_bad_input(invoke("run", "--swappiness", "300"), "swappiness", "300")


# ---- listings ----------------------------------------------------------------------------------


def test_workloads_lists_every_workload_and_its_parameters():
    r = invoke("workloads")
    assert r.exit_code == 0, r.output
    for name, spec in WORKLOADS.items():
        assert f"{name}:" in r.output
        for p in spec.params:
            assert p.name in r.output


def test_policies_lists_classic():
    r = invoke("policies")
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert any(line.split()[0] == "classic" and len(line.split()) > 1 for line in lines)
