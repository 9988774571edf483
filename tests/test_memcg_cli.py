"""--memcg on the command line: the JSON result's per-memcg section, one-line errors for bad
specs (exit 2), and a memcg out of memory (exit 3, naming the memcg)."""

from __future__ import annotations

import pytest

from conftest import invoke, run_json
from reclaim_ext.api import RunConfig, run
from reclaim_ext.errors import ConfigError
from reclaim_ext.machine.memcg import parse_memcg_spec, resolve_memcgs

SMALL = ("--workload", "mixed", "-p", "procs=3", "-p", "anon_pages=300", "-p", "files=2", "-p", "file_pages=400",
         "-p", "exec_pages=32", "-p", "accesses=20000", "--memory", "1024")


@pytest.mark.parametrize("policy", ["classic", "mglru"])
def test_json_has_memcgs(policy):
    r = run_json(*SMALL, "--policy", policy, "--memcg", "name=a,pids=0,max=1MiB",
                 "--memcg", "name=b/c,pids=1+2")
    names = [m["name"] for m in r["memcgs"]]
    assert names == ["/", "/a", "/b", "/b/c"]
    by = {m["name"]: m for m in r["memcgs"]}
    a = by["/a"]
    assert a["max"] == 256 and a["peak"] <= 256 and a["pids"] == [0]
    assert by["/b"]["max"] is None and by["/b"]["pids"] == []
    assert a["memory_events"]["max"] > 0
    for key in ("pgfault", "pgmajfault", "pgscan", "pgsteal", "workingset_refault_anon",
                "workingset_refault_file", "workingset_activate_anon", "workingset_activate_file"):
        assert key in a["memory_stat"]
    assert set(a["memory_events"]) == {"low", "high", "max", "oom", "oom_kill"}
    assert set(a["lru_sizes"]) == {"inactive_anon", "active_anon", "inactive_file", "active_file"}
    # hierarchical: the root's counters are the machine's
    assert by["/"]["memory_stat"]["pgfault"] == r["vmstat"]["pgfault"]
    assert by["/"]["usage"] == by["/a"]["usage"] + by["/b"]["usage"]  # pids 0-2 are all in a or b/c
    assert by["/b"]["usage"] == by["/b/c"]["usage"]
    assert sum(r["lru_sizes"].values()) == by["/"]["usage"]


def test_one_memcg_run_has_only_the_root():
    r = run_json(*SMALL)
    assert [m["name"] for m in r["memcgs"]] == ["/"]
    assert r["memcgs"][0]["usage"] == sum(r["lru_sizes"].values())


@pytest.mark.parametrize("spec,message", [
    (("name=a,foo=1",), "unknown key 'foo'"),
    (("pids=1,max=1MiB",), "no name="),
    (("name=a,max=10",), "max 10 pages is too small"),
    (("name=a,max=12XB",), "unknown unit 'XB'"),
    (("name=a,pids=3-1",), "pid range '3-1'"),
    (("name=a,pids=x",), "cannot read 'x' as a pid"),
    (("name=a,pids=70000",), "not within 0..65535"),
    (("name=a,pids=1", "name=b,pids=0-2"), "pid 1 is already in memcg a"),
    (("name=a", "name=a"), "declared twice"),
    (("name=/",), "the root memcg cannot be declared"),
    (("name=a//b",), "bad memcg name"),
    (("name=a,oops",), "is not KEY=VALUE"),
])
def test_bad_specs_are_one_line_errors(spec, message):
    args = []
    for s in spec:
        args += [s] if s.startswith("--") or args[-1:] == ["--policy"] else ["--memcg", s]
    r = invoke("run", *SMALL, *args)
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reclaim-ext: error: --memcg"), r.output
    assert message in lines[0]
    assert "Traceback" not in r.output


def test_memcg_out_of_memory_exits_3_naming_it():
    r = invoke("run", "--workload", "zipf", "-p", "kind=anon", "-p", "pages=2000", "-p", "accesses=5000",
               "--memory", "4096", "--swap", "0", "--memcg", "name=tight,pids=0,max=64")
    assert r.exit_code == 3, r.output
    assert "out of memory in memcg /tight" in r.output
    assert "Traceback" not in r.output


def test_api_and_parser():
    assert parse_memcg_spec("name=a/b,pids=1-3+7,max=32MiB").pids == [1, 2, 3, 7]
    plan = resolve_memcgs(["name=x/y,pids=4", "name=x,max=1GiB"])
    assert [(m.name, m.max) for m in plan] == [("x", 262144), ("x/y", None)]  # the parent first
    with pytest.raises(ConfigError, match="--memcg"):
        RunConfig(memcgs=["name=a,pid=1"]).validate()
    with pytest.raises(ConfigError, match="no memcgs"):
        RunConfig(policy="lru", cache=True, capacity=10, memcgs=["name=a"]).validate()
    res = run(RunConfig(workload="zipf", workload_params={"accesses": 3000, "pages": 500}, memory=2048,
                        memcgs=["name=a,pids=0,max=128"]))
    a = res["memcgs"][1]
    assert a["name"] == "/a" and a["usage"] <= 128 and a["memory_events"]["max"] > 0
