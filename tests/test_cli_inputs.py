"""Input holes (issue 16, item 3): every bad input is one `reclaim-ext: error: ...` line and exit
code 2, an ignored option is refused or warned about, and a run that ends out of memory still
writes what it has."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
import zstandard
from conftest import invoke

from reclaim_ext.api import RunConfig, run
from reclaim_ext.core.engine import OutOfMemory
from reclaim_ext.errors import ConfigError, ReclaimExtError, TraceError
from reclaim_ext.machine.units import MAX_PAGES, parse_size
from reclaim_ext.trace import RECORD_DTYPE, ArrayTrace, Kind, write_native
from reclaim_ext.trace.readers import ORACLE_DTYPE, VSCSI1_DTYPE

TINY = ["-p", "accesses=2000", "-p", "pages=500", "--memory", "1MiB"]
CACHE = ["--cache", "--capacity", "100", "--policy", "lru", "-p", "accesses=2000", "-p", "pages=500"]


def one_error(r, *words):
    """Exit code 2, no traceback, one stderr line `reclaim-ext: error: ...` containing every word."""
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reclaim-ext: error: "), r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


# ---- 1. sizes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("opt", ["--memory", "--swap"])
def test_sizes_above_2_63_pages_are_input_errors(opt):
    one_error(invoke("run", *TINY[:4], opt, "99999999999999999999999"), opt, "too large", "16 EiB")


@pytest.mark.parametrize("text,words", [
    ("-5", ["must not be negative"]),
    ("1.5", ["whole number"]),
    ("1.5pages", ["whole number"]),
    ("100B", ["less than one 4 KiB page"]),
    ("1.5KiB", ["less than one 4 KiB page"]),
    ("0.1B", ["not a whole number of bytes"]),
    ("1." + "0" * 60 + "1KiB", ["not a whole number of bytes"]),
    ("16777217TiB", ["too large"]),
    ("9" * 5000, ["too large", "5000 characters"]),
    ("1EiB", ["unknown unit"]),
])
def test_parse_size_extremes(text, words):
    with pytest.raises(ConfigError) as e:
        parse_size(text, "memory")
    assert str(e.value).startswith("memory: ")
    for w in words:
        assert w in str(e.value)


def test_parse_size_limits_and_rounding():
    assert parse_size("0") == 0 and parse_size("0B") == 0
    assert parse_size("4097B") == 1 and parse_size("1.5MiB") == 384 and parse_size("2pages") == 2
    assert parse_size("16777216TiB") == MAX_PAGES == parse_size(MAX_PAGES)
    with pytest.raises(ConfigError, match="too large"):
        parse_size(MAX_PAGES + 1)
    with pytest.raises(ConfigError, match="whole number"):
        parse_size(2.5)
    with pytest.raises(ConfigError, match="not a size"):
        parse_size(True)


def test_min_free_kbytes_above_memory_is_an_input_error():
    one_error(invoke("run", *TINY, "--min-free-kbytes", "99999999999999999999999"), "min-free-kbytes",
              "no page to allocate")


# ---- 2. memcg names ------------------------------------------------------------------------------


@pytest.mark.parametrize("name,words", [
    ("a/../b", ["'..' is not a memcg name"]),
    (".", ["'.' is not a memcg name"]),
    ("..", ["'..' is not a memcg name"]),
    ("a/./b", ["'.' is not a memcg name"]),
    ("a//b", ["empty path component"]),
    ("a/", ["empty path component"]),
    ("//a", ["empty path component"]),
])
def test_memcg_names_with_dots_or_empty_components_are_refused(name, words):
    one_error(invoke("run", *TINY, "--memcg", f"name={name},pids=0"), "--memcg", repr(name), *words)


def test_memcg_name_from_the_api_is_checked_too():
    from reclaim_ext.machine.memcg import MemcgConfig, resolve_memcgs

    with pytest.raises(ConfigError, match="not a memcg name"):
        resolve_memcgs([MemcgConfig("a/..")])
    assert [m.name for m in resolve_memcgs([MemcgConfig("/a/b")])] == ["a", "a/b"]


# ---- 3. --switch N:classic in plain-cache mode ---------------------------------------------------


def test_switch_to_classic_in_cache_mode_is_refused():
    line = one_error(invoke("run", *CACHE, "--switch", "1000:classic"), "1000:classic", "--cache", "'none'")
    assert "reclaim core" in line
    r = invoke("run", *CACHE, "--switch", "1000:none", "--json", "-")  # none: the fallback LRU, as documented
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["exits"][0]["reason"] == "detached at access 1000"


# ---- 4. bench ------------------------------------------------------------------------------------


@pytest.mark.parametrize("args,words", [
    (["--bogus"], ["unrecognized arguments: --bogus", "reclaim-ext bench --help"]),
    (["--pages", "abc"], ["--pages", "invalid int value"]),
    (["--pages", "0"], ["--pages 0"]),
    (["--pages", "99999999999999999999"], ["--pages", "must be in"]),
    (["--pages", "1000", "--memory-fraction", "0.01"], ["need at least 64"]),
    (["--alpha", "nan"], ["--alpha nan"]),
    (["--policy", "nosuch", "--pages", "1000"], ["unknown policy 'nosuch'"]),
    (["--json", "/nonexistent-dir/x.json", "--pages", "1000"], ["--json", "no such directory"]),
])
def test_bench_errors_are_one_line(args, words):
    one_error(invoke("bench", *args), "bench", *words)


def test_bench_without_libcachesim_warns_in_one_line(monkeypatch, capsys):
    from reclaim_ext.bench.throughput import main as bench_main

    monkeypatch.setitem(sys.modules, "libcachesim", None)  # import libcachesim -> ImportError
    assert bench_main(["--pages", "2000", "--accesses", "5000", "--policy", "classic", "--json", "-"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["peer"] is None
    assert out.err.strip().startswith("reclaim-ext: warning: bench: libcachesim is not installed")


# ---- 5. validate kernel hints --------------------------------------------------------------------


def test_usage_error_hint_names_the_real_command():
    line = one_error(invoke("validate", "kernel", "--only", "x"))
    assert line.endswith("(see `reclaim-ext validate kernel --help`)")
    assert invoke("run", "--bogus").stderr.strip().endswith("(see `reclaim-ext run --help`)")


def test_calibration_errors_are_one_line_input_errors():
    from reclaim_ext.validate.calibrate import RunCalibration, calibrate_run, combine

    with pytest.raises(ReclaimExtError, match="raise --memory or lower --overhead"):
        combine([], 100, overhead=90)
    with pytest.raises(ReclaimExtError, match="-p accesses=N"):
        calibrate_run([], 100)
    with pytest.raises(ReclaimExtError, match="raise --memory$"):
        combine([RunCalibration(overhead=90, c_eff=0.0, c_min=0, c_max=0, gap=0.0, samples=1)], 100)


def test_worker_killed_by_the_oom_killer_says_raise_memory(tmp_path):
    from reclaim_ext.validate.kernel import run_worker

    exe = tmp_path / "worker"
    exe.write_text("#!/bin/sh\nkill -9 $$\n")
    exe.chmod(0o755)

    class FakeCgroup:
        path = "/sys/fs/cgroup/probe"

        class ctrl:
            usage_file = "memory.current"

        def join_self(self):
            pass

        def file(self, name):
            return os.path.join(self.path, name)

    with pytest.raises(ReclaimExtError, match=r"killed \(SIGKILL\).*raise --memory"):
        run_worker(FakeCgroup(), str(exe), "data", "trace", "pread", min(os.sched_getaffinity(0)), ())


# ---- 6. empty traces -----------------------------------------------------------------------------


def _zst(path, data: bytes):
    path.write_bytes(zstandard.ZstdCompressor().compress(data))
    return str(path)


def _native(path, n=0):
    write_native(path, ArrayTrace("t", np.zeros(n, RECORD_DTYPE)))
    return path


def _empty_traces(tmp_path):
    zero = np.zeros(3, ORACLE_DTYPE)
    zero["obj_id"] = [1, 2, 3]
    zero["next_access_vtime"] = -1  # obj_size 0: skipped as libCacheSim does
    nodata = np.zeros(3, VSCSI1_DTYPE)
    nodata["ver"] = 1 << 8  # cmd 0: TEST UNIT READY, no data
    native = _native(tmp_path / "n.rxt")
    return [
        (_zst(tmp_path / "e.oracleGeneral.bin.zst", b""), "oraclegeneral", "holds no records"),
        (_zst(tmp_path / "z.oracleGeneral.bin.zst", zero.tobytes()), "oraclegeneral", "no requests"),
        (str(native), "native", "holds no records"),
        (_zst(tmp_path / "n.rxt.zst", native.read_bytes()), "native", "holds no records"),
        (_zst(tmp_path / "v.vscsi.zst", nodata.tobytes()), "vscsi", "no requests"),
    ]


def test_empty_traces_are_input_errors(tmp_path):
    for path, fmt, words in _empty_traces(tmp_path):
        for mode in ([], ["--cache", "--capacity", "10", "--policy", "lru"]):
            one_error(invoke("run", "--trace", path, "--format", fmt, *mode), path, words)


def test_an_empty_trace_from_the_api_is_an_input_error():
    for cfg in (RunConfig(), RunConfig(policy="lru", cache=True, capacity=10)):
        with pytest.raises(TraceError, match="holds no records"):
            run(cfg, trace=ArrayTrace("nothing", np.zeros(0, RECORD_DTYPE)))


# ---- 7. ignored options --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("t") / "t.rxt"
    rec = np.zeros(500, RECORD_DTYPE)
    rec["kind"] = Kind.FILE_FD
    rec["page"] = np.arange(500) % 97
    write_native(path, ArrayTrace("t", rec))
    return str(path)


@pytest.mark.parametrize("extra,words", [
    (["--workload", "mixed"], ["--workload does not apply with --trace"]),
    (["--workload", "zipf"], ["--workload does not apply with --trace"]),  # the default, but given
    (["-p", "alpha=1.2"], ["--param", "do not apply to --trace"]),
])
def test_workload_options_with_a_trace_are_refused(trace_file, extra, words):
    one_error(invoke("run", "--trace", trace_file, "--format", "native", *extra), *words)


def test_format_without_trace_is_refused():
    one_error(invoke("run", *TINY, "--format", "csv"), "--format needs --trace")


@pytest.mark.parametrize("extra", [["--memory", "1MiB"], ["--swap", "0"], ["--swappiness", "10"],
                                   ["--min-free-kbytes", "1024"], ["--watermark-scale-factor", "20"]])
def test_machine_options_with_cache_are_refused(extra):
    one_error(invoke("run", *CACHE, *extra), extra[0], "does not apply with --cache", "--capacity")


def test_ablate_shares_the_refusals(trace_file):
    one_error(invoke("ablate", "--trace", trace_file, "--format", "native", "--workload", "loop"),
              "--workload does not apply with --trace")


def test_harmless_ignored_options_warn(trace_file):
    r = invoke("run", *CACHE, "--mode", "exact", "--json", "-")
    assert r.exit_code == 0 and json.loads(r.stdout)["accesses"] == 2000
    assert r.stderr.strip() == "reclaim-ext: warning: --mode is ignored with --cache: plain-cache mode has one driver"
    r = invoke("run", "--trace", trace_file, "--format", "native", "--seed", "7", "--json", "-")
    assert r.exit_code == 0, r.output
    assert r.stderr.strip().startswith("reclaim-ext: warning: --seed is ignored with --trace")
    assert invoke("run", *CACHE, "--seed", "7", "--json", "-").stderr == ""  # seeds the policy's rng


@pytest.mark.parametrize("args,words", [
    (["--suite", "--memory", "1MiB"], ["--memory does not apply with --suite"]),
    (["--suite", "--json", "-"], ["--json does not apply with --suite", "--out"]),
    (["--suite", "--workload", "loop", "--seed", "3"], ["--workload, --seed do not apply with --suite"]),
    (["--table", "README.md", "--suite"], ["--suite does not apply with --table"]),
    (["--table", "README.md", "--memory", "1MiB"], ["--memory does not apply with --table"]),
    (["--format", "csv"], ["--format needs --trace"]),
    (["--trace", "README.md", "--format", "csv", "--workload", "loop"], ["--workload does not apply with --trace"]),
])
def test_validate_kernel_refuses_ignored_options(args, words):
    one_error(invoke("validate", "kernel", *args), *words)


# ---- 8. the Python API takes size strings --------------------------------------------------------


def test_runconfig_takes_size_strings():
    cfg = RunConfig(memory="64MiB", swap="0", workload_params={"accesses": 1000})
    assert (cfg.memory, cfg.swap) == (16384, 0)
    assert RunConfig(policy="lru", cache=True, capacity="4MiB").capacity == 1024
    r = run(RunConfig(memory="1MiB", swap="2MiB", workload_params={"accesses": 2000, "pages": 500}))
    assert (r["memory_pages"], r["swap_pages"]) == (256, 512)
    cfg = RunConfig()
    cfg.memory = "2MiB"  # set after construction: validate() parses it
    cfg.validate()
    assert cfg.memory == 512


@pytest.mark.parametrize("field,value,words", [("memory", "64XB", "unknown unit"), ("swap", "-1", "negative"),
                                               ("capacity", "1.5", "whole number")])
def test_runconfig_bad_size_is_a_value_error(field, value, words):
    with pytest.raises(ValueError, match=f"^{field}: .*{words}"):
        RunConfig(**{field: value})


# ---- 9. out of memory writes what it has ---------------------------------------------------------

OOM = ["--workload", "mixed", "--memory", "2MiB", "--swap", "0"]


def test_out_of_memory_writes_the_partial_json(tmp_path):
    out = tmp_path / "out.json"
    r = invoke("run", *OOM, "--json", str(out))
    assert r.exit_code == 3, r.output
    res = json.loads(out.read_text())
    oom = res["out_of_memory"]
    assert oom["at_access"] == res["accesses"] > 0 and oom["memcg"] is None
    assert oom["message"].startswith("out of memory") and res["vmstat"]["oom_kill"] == 1
    assert 0 < res["misses"] <= res["accesses"]
    assert r.stderr.strip().startswith("reclaim-ext: out of memory") and f"at access {oom['at_access']:,}" in r.stderr
    assert "ended out of memory" in r.stdout  # the summary too


def test_out_of_memory_json_on_stdout_names_the_memcg():
    r = invoke("run", "--workload", "mixed", "-p", "procs=2", "--swap", "0", "--memcg", "name=a,pids=0+1,max=32",
               "--json", "-")
    assert r.exit_code == 3, r.output
    oom = json.loads(r.stdout)["out_of_memory"]
    assert oom["memcg"] == "/a" and "memcg /a" in oom["message"]


def test_out_of_memory_partial_result_from_the_api_is_the_same_in_both_drivers():
    got = []
    for mode in ("fast", "exact"):
        with pytest.raises(OutOfMemory) as e:
            run(RunConfig(workload="mixed", memory="2MiB", swap=0, mode=mode))
        r = e.value.result
        got.append((r["accesses"], r["misses"], r["out_of_memory"]["at_access"]))
    assert got[0] == got[1]


def test_a_completed_run_has_no_out_of_memory():
    assert run(RunConfig(workload_params={"accesses": 1000}))["out_of_memory"] is None


def test_bench_repeat_reports_medians_of_interleaved_rounds(capsys):
    """--repeat N: N rounds of (each policy, then libCacheSim); each entry is the median of its
    rounds, and the miss ratios are the same in every round (the same replay)."""
    from reclaim_ext.bench.throughput import main as bench_main

    assert bench_main(["--pages", "2000", "--accesses", "20000", "--warmup", "0", "--repeat", "3", "--json", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["repeat"] == 3 and len(out["rounds"]) == 3
    for k, r in enumerate(out["runs"]):
        each = [rd["runs"][k] for rd in out["rounds"]]
        assert len({e["miss_ratio"] for e in each}) == 1
        assert r["requests_per_second"] == sorted(e["requests_per_second"] for e in each)[1]
        if out["peer"] is not None:
            assert r["ratio"] == sorted(e["ratio"] for e in each)[1]
            assert all(e["ratio"] == e["requests_per_second"] / rd["peer"]["requests_per_second"]
                       for e, rd in zip(each, out["rounds"]))
    assert bench_main(["--repeat", "0"]) == 2
