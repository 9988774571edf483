"""Fuzzed inputs (issue 14): a bounded run of the harness (benchmarks/fuzz_inputs.py) and every
input it found that ended in anything but the project's own error, kept as a regression test."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

from reclaim_ext.bench.fuzz import TARGETS, Fuzzer, run_trace_input
from reclaim_ext.errors import TraceError


@pytest.fixture(scope="module")
def fuzzer():
    fz = Fuzzer(seed=20261204, quiet=True)
    yield fz
    fz.close()


def test_a_bounded_fuzz_run_finds_nothing(fuzzer):
    rep = fuzzer.run(6000, tuple(t for t in TARGETS if t != "cli"), progress=False)
    assert rep["inputs"] == 6000
    assert set(rep["targets"]) == set(TARGETS) - {"cli"}
    for t, c in rep["targets"].items():  # every target reached both outcomes
        assert c["ok"] > 0 or t == "wrong-format", t
        assert c["error"] > 0, t
    assert rep["findings"] == []


def test_a_bounded_cli_fuzz_run_finds_nothing(fuzzer):
    rep = fuzzer.run(40, ("cli",), progress=False)
    assert rep["targets"]["cli"]["ok"] > 0 and rep["targets"]["cli"]["error"] > 0
    assert rep["findings"] == []


def test_the_harness_reports_what_is_not_the_projects_error(fuzzer, monkeypatch):
    import reclaim_ext.bench.fuzz as fz

    def broken(path, fmt, opts, data):
        raise IndexError("a bug")

    monkeypatch.setattr(fz, "run_trace_input", broken)
    rep = Fuzzer(seed=1, quiet=True).run(50, ("vscsi",), progress=False)
    assert rep["targets"]["vscsi"]["findings"] == 50
    assert rep["findings"][0]["exception"] == "IndexError"


# ---- the findings, as they were found (the message each now gets)

FINDINGS = [
    # 1,000 random bytes given as csv: a traceback from Python's csv module
    ("csv", np.random.default_rng(7).bytes(1000), "looks like a binary file"),
    # a bare carriage return in the first line (header sniffing)
    ("csv", b"id\rx,y\n1,2\n", "line 1: a carriage return"),
    # a bare carriage return in a data line of a block with quotes
    ("csv", b'id,x\n1,"a"\n2,b\rc\n', "line 3: a carriage return"),
    # a quote left open: the csv module joined the next line to it (a numpy broadcast error)
    ("csv", b'id,x\n1,"a\n2,b\n3,c\n', "line 2: a quoted field is not closed"),
    # text after a closing quote
    ("csv", b'id,x\n1,"a"b\n', "line 2: text after the closing quote"),
    # a csv trace given as oracleGeneral: 24-byte multiples of text read as records
    ("oraclegeneral", b"version,time,op,size,lbn\n" + b"1,5633898,2a,512,42932745\n" * 40 + b"1,56338\n",
     "looks like a text file"),
]


@pytest.mark.parametrize("fmt,data,message", FINDINGS, ids=[f"{i}-{f[0]}" for i, f in enumerate(FINDINGS)])
def test_found_inputs_get_one_clear_error(tmp_path, fmt, data, message):
    opts = {"id_col": "1"} if fmt == "csv" else {}
    with pytest.raises(TraceError) as e:
        run_trace_input(str(tmp_path / "t"), fmt, opts, data)
    assert message in str(e.value)
    assert str(e.value).startswith(str(tmp_path / "t"))


def test_a_real_binary_trace_is_not_taken_for_text():
    from reclaim_ext.bench.fuzz import _head

    # whole records: 24 bytes (oracleGeneral), 32 or 40 (vscsi)
    for name, fmt, n in (("cloudPhysicsIO.oracleGeneral.bin", "oraclegeneral", 24 * 1000),
                         ("cloudPhysicsIO.vscsi", "vscsi", 160 * 100)):
        with tempfile.TemporaryDirectory() as d:
            assert run_trace_input(os.path.join(d, "t"), fmt, {}, _head(name, n)) == "ok"


def test_an_error_quoting_control_characters_stays_one_line(tmp_path):
    """Found by the CLI target: a csv whose header holds control characters, with an id_col past
    its end: the error quoted the header, and its \\x0b / \\x1c split the message over lines."""
    from click.testing import CliRunner

    from reclaim_ext.cli import main

    p = tmp_path / "t.csv"
    p.write_bytes(b"a\x0bb\x1cc\x13d\n" + b"12\n" * 50)  # text: few control bytes
    res = CliRunner().invoke(main, ["run", "--trace", str(p), "--format", "csv", "--trace-opt", "id_col=2"])
    assert res.exit_code == 2
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("reclaim-ext: error:") and "missing column" in lines[0], lines
    assert "\\x0b" in lines[0] and "\\x1c" in lines[0]


def test_a_long_run_asked_for_is_not_taken_for_a_hang():
    """Found by the CLI target: `-p pages=30100000` for the loop workload runs 30M+ accesses, over
    the time limit because it was asked to, not because anything hangs."""
    from reclaim_ext.bench.fuzz import _asked_long

    assert _asked_long(["run", "--workload", "loop", "-p", "pages=30100000", "--memory", "1MiB"])
    assert not _asked_long(["run", "--workload", "loop", "-p", "pages=300", "--memory", "1MiB"])
    assert not _asked_long(["run", "--workload", "nope"])
