"""One machine file (--machine FILE.toml, reclaim-ext machine show): the same model as the flags,
flags on the command line win, and every bad file gets one error line naming the file and key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import invoke
from reclaim_ext.errors import ConfigError
from reclaim_ext.machine.file import load_machine

EXAMPLE = Path(__file__).parents[1] / "examples" / "machine.toml"
CONTAINER_HOST = Path(__file__).parents[1] / "examples" / "machines" / "container-host.toml"
SMALL = ("run", "--workload", "mixed", "-p", "procs=3", "-p", "accesses=40000", "--json", "-")


def test_the_example_loads():
    m = load_machine(EXAMPLE)
    assert m["memory"] == 16384 and m["swap"] == 8192 and m["swappiness"] == 60
    web, batch = m["memcgs"]
    assert (web.name, web.pids, web.high, web.low) == ("web", [0], 6144, 2048)
    assert (batch.pids, batch.max, batch.swap_max) == ([1, 2], 8192, 2048)
    assert m["proactive"] == ["500000:/batch:8MiB:swappiness=0"]


def test_a_machine_file_runs_as_its_flags():
    f = invoke(*SMALL, "--machine", str(EXAMPLE))
    flags = invoke(*SMALL, "--memory", "64MiB", "--swap", "32MiB", "--memcg", "name=web,pids=0,high=24MiB,low=8MiB",
                   "--memcg", "name=batch,pids=1-2,max=32MiB,swap_max=8MiB", "--proactive", "500000:/batch:8MiB:swappiness=0")
    assert f.exit_code == 0 and flags.exit_code == 0, (f.stderr, flags.stderr)
    a, b = json.loads(f.stdout), json.loads(flags.stdout)
    assert a["vmstat"] == b["vmstat"] and a["memcgs"] == b["memcgs"] and a["memory_pages"] == 16384


def test_flags_win_over_the_file():
    r = invoke(*SMALL, "--machine", str(EXAMPLE), "--memory", "48MiB")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["memory_pages"] == 12288


def test_machine_show_prints_the_tree():
    r = invoke("machine", "show", str(EXAMPLE))
    assert r.exit_code == 0
    assert "memory 64 MiB" in r.stdout and "├── web" in r.stdout and "└── batch" in r.stdout
    assert "high 24 MiB" in r.stdout and "swap_max 8 MiB" in r.stdout and "proactive: at access 500,000" in r.stdout


@pytest.mark.parametrize("text,message", [
    ('memory = "64MiB"\nbogus = 1\n', "unknown key 'bogus'"),
    ('memory = "lots"\n', "memory"),
    ('[[swap_devices]]\nsize = "1GiB"\n', "not a key; nodes are"),
    ('[[swap_device]]\nkind = "zram"\n[[swap_device]]\nkind = "disk"\n', "1: needs a size"),
    ('[[swap_device]]\nsize = "1GiB"\nprio = "high"\n', "prio: 'high' is not an integer"),
    ('[[swap_device]]\nkind = "disk"\nsize = "1GiB"\nratio = 2\n', "ratio: the swap device is disk"),
    ('swap = "1GiB"\n[[swap_device]]\nkind = "disk"\n', "give one of them"),
    ('[[swap_device]]\nkind = "tape"\n', "not one of zram, disk"),
    ('[[swap_device]]\nkind = "zram"\nspeed = 1\n', "unknown key 'speed'"),
    ('[[node]]\nmemory = "1GiB"\ncolour = 1\n', "unknown key 'colour'"),
    ('[[node]]\ntier = "cxl"\n', "needs memory"),
    ('[[node]]\nmemory = "1GiB"\ntier = "hbm"\n', "not a memory tier"),
    ('memory = "2GiB"\n[[node]]\nmemory = "1GiB"\n', "not the sum"),
    ('[[node]]\nmemory = "1GiB"\n[[numa]]\npids = "0"\nnode = 1\n', "node 1 is not a node of the machine"),
    ('[[numa]]\nnode = 0\n', "needs pids"),
    ('[[process]]\nworkload = "zipf"\nbind = true\n', "bind needs node"),
    ('[[memcg]]\npids = "0"\n', "needs a name"),
    ('[[memcg]]\nname = "a"\nmax = "4KiB"\n', "too small"),
    ('[[memcg]]\nname = "a"\ncolour = "red"\n', "unknown key 'colour'"),
    ('[[proactive]]\nat = 5\nmemcg = "/"\n', "needs at, memcg and size"),
    ('swappiness = 300\n', "swappiness must be an integer from 0 to 200"),
    ('memory = \n', "not valid TOML"),
    ('[[process]]\nworkload = "zipf"\npid = 1\n', "process 1 is pid 0"),
    ('[[process]]\nmemcg = "/a"\nworkload = "zipf"\n', "memcg /a is not declared"),
    ('[[process]]\nworkload = "zipf colour=red"\n', "colour"),
    ('[[process]]\nmemcg = "/"\n', "needs a workload"),
    ('[[process]]\nworkload = "zipf"\nnice = 5\n', "unknown key 'nice'"),
    ('[[process]]\nworkload = "zipf"\n' * 5, "up to 4"),
])
def test_bad_files_get_one_error(tmp_path, text, message):
    p = tmp_path / "m.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_machine(p)
    r = invoke("machine", "show", str(p))
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1 and str(p) in r.stderr


def test_a_missing_file():
    r = invoke("run", "--machine", "/nonexistent/m.toml")
    assert r.exit_code == 2 and "no such file" in r.stderr


def test_processes_run_their_workloads_in_their_memcgs():
    """[[process]] i is pid i running its workload as tenant i, in its memcg; the container-host
    example runs as the same flags would run it, and a --workload given wins over the file's."""
    m = load_machine(CONTAINER_HOST)
    assert m["workload"] == "tenants" and [p.partition("=")[0] for p in m["params"]] == ["a", "b", "c"]
    homes = {mc.name: mc.pids for mc in m["memcgs"]}
    assert homes["system.slice/journald.service"] == [0] and homes["workload.slice/web.service"] == [1]
    assert homes["workload.slice/batch.service"] == [2] and homes["workload.slice"] == []
    show = invoke("machine", "show", str(CONTAINER_HOST)).stdout
    assert "process 2: loop pages=12288 passes=3 kind=file  (memcg /workload.slice/batch.service)" in show
    small = [p.replace("accesses=400000", "accesses=20000").replace("passes=3", "passes=1") for p in m["params"]]
    f = invoke("run", "--machine", str(CONTAINER_HOST), "--json", "-", *sum((["-p", p] for p in small), []),
               "--workload", "tenants")
    assert f.exit_code == 0, f.stderr
    r = json.loads(f.stdout)
    assert r["workload"] == "tenants" and r["senpai"][0]["ticks"] == r["accesses"] // 50000
    usage = {mc["name"]: mc["peak"] for mc in r["memcgs"]}
    assert all(usage[n] > 0 for n in ("/system.slice/journald.service", "/workload.slice/web.service",
                                      "/workload.slice/batch.service"))
    own = invoke("run", "--machine", str(CONTAINER_HOST), "--workload", "zipf", "-p", "accesses=2000", "--json", "-")
    assert own.exit_code == 0 and json.loads(own.stdout)["workload"] == "zipf"


def test_machine_file_nodes_tiers_and_policies(tmp_path):
    p = tmp_path / "m.toml"
    p.write_text('[[node]]\nmemory = "16MiB"\n[[node]]\nmemory = "8MiB"\ntier = "cxl"\n'
                 '[[numa]]\npids = [0, 1]\nnode = 0\nbind = true\n')
    r = invoke("machine", "show", str(p))
    assert r.exit_code == 0, r.stderr
    assert "2 nodes (node 0 16 MiB dram, node 1 8 MiB cxl), memory 24 MiB" in r.stdout
    assert "numa: pids 0,1 on node 0 only (bind)" in r.stdout
    r = invoke("run", "--machine", str(p), "--workload", "zipf", "-p", "accesses=20000", "--json", "-")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert [n["memory_pages"] for n in out["nodes"]] == [4096, 2048]
    assert [n["tier"] for n in out["nodes"]] == ["dram", "cxl"]
    assert out["nodes"][1]["vmstat"]["numa_foreign"] == 0  # pids 0-1 bound to node 0


def test_two_socket_example_runs_on_both_nodes():
    ex = Path(__file__).parents[1] / "examples" / "machines" / "two-socket.toml"
    r = invoke("run", "--machine", str(ex), "--workload", "tenants", "-p", "a=zipf pages=14000 accesses=60000 kind=anon",
               "-p", "b=zipf pages=10000 accesses=30000 kind=mmap",
               "-p", "c=mixed procs=1 anon_pages=4096 file_pages=8192 accesses=40000",
               "-p", "d=loop pages=8192 passes=1 kind=file", "--json", "-")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["nodes"]) == 2 and all(n["vmstat"]["pgalloc_normal"] > 0 for n in out["nodes"])


def test_one_swap_device_table(tmp_path):
    p = tmp_path / "m.toml"
    p.write_text('memory = "16MiB"\n[[swap_device]]\nkind = "zram"\nsize = "8MiB"\nratio = 2.5\n')
    r = invoke("run", "--machine", str(p), "--workload", "zipf", "-p", "accesses=20000", "-p", "pages=5000", "-p", "kind=anon",
               "--json", "-")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["swap_pages"], out["swap_device"], out["zram_ratio"]) == (2048, "zram", 2.5)
