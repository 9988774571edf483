"""validate kernel --vm --low: two sibling memcgs under the probe, a with memory.low; one worker
moving between them. Everything here runs without a VM (the real boots are in docs/fidelity.md)."""

import os
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from reclaim_ext.cli import main
from reclaim_ext.errors import ReclaimExtError
from reclaim_ext.trace import make_workload
from reclaim_ext.validate import kernel as kernel_mod
from reclaim_ext.validate import low as low_mod
from reclaim_ext.validate import vm as vmmod
from reclaim_ext.validate import vmimage as vi


def test_guest_script_makes_the_siblings_and_moves_the_worker():
    text = vi.init_script(vi.GuestPlan(limit_pages=1000, low_bytes=500 * 4096))
    assert "echo +memory > $CG/cgroup.subtree_control" in text
    assert "for s in a b w; do mkdir $CG/$s" in text
    assert "echo 2048000 > $CG/a/memory.low" in text
    assert "HOME_CG=$CG/w; PIDS=/trace.pids; CGS=$CG/a/cgroup.procs:$CG/b/cgroup.procs" in text
    assert "RECLAIM_EXT_PIDS=$PIDS RECLAIM_EXT_CGROUPS=$CGS" in text
    assert 'echo \\$\\$ > $HOME_CG/cgroup.procs && exec /worker' in text
    assert "$M section current_$s" in text and "$M section events_$s" in text
    assert "cp /mnt/$t /$t" in text and "for t in trace.u32 trace.pids; do" in text
    assert kernel_mod.LOW_SIBLINGS == ("a", "b")  # the script's literal names
    off = vi.init_script(vi.GuestPlan(limit_pages=1000))
    assert "if [ 0 -gt 0 ]; then   # memory.low" in off and "for t in trace.u32; do" in off


@pytest.mark.parametrize("extra", [dict(knob="high"), dict(nodes=2), dict(reclaim_bytes=4096),
                                   dict(swap=True, access="anon")])
def test_guest_plan_low_refuses_other_shapes(extra):
    with pytest.raises(ReclaimExtError, match="memory.low runs take memory.max, one node"):
        vi.init_script(vi.GuestPlan(limit_pages=1000, low_bytes=4096, **extra))


def test_chunk_by_pid_keeps_each_pids_order():
    pids = np.array([0, 1] * 6)
    order = low_mod.chunk_by_pid(pids, 4)
    assert pids[order].tolist() == [0] * 4 + [1] * 4 + [0, 0, 1, 1]
    assert order.tolist() == [0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 9, 11]


def _tenants(n=2000):
    return make_workload("tenants", seed=0, a=f"zipf pages=600 accesses={n}", b=f"zipf pages=600 accesses={n}")


def test_sibling_trace_disjoint_pages_in_runs_of_chunk():
    pages, pids, npages = low_mod.sibling_trace(_tenants(), chunk=64)
    assert len(pages) == 4000 and np.bincount(pids).tolist() == [2000, 2000]
    assert pages[pids == 0].max() < pages[pids == 1].min()          # each sibling its own page range
    assert npages == len(np.unique(pages))
    changes = np.flatnonzero(np.diff(pids.astype(int))) + 1
    runs = np.diff(np.r_[0, changes, len(pids)])
    assert np.all(runs[:-2] == 64) and runs[-2:].tolist() == [2000 % 64] * 2  # each pid's last run shorter


def test_sibling_trace_needs_two_pids():
    with pytest.raises(ReclaimExtError, match="low: the trace's pids are 0; it needs two processes"):
        low_mod.sibling_trace(make_workload("zipf", pages=100, accesses=500))


@pytest.mark.skipif(not shutil.which("gcc") or not os.path.exists("/usr/lib/x86_64-linux-gnu/libc.a"),
                    reason="needs gcc and a static libc (libc6-dev)")
def test_worker_moves_when_the_pid_changes(tmp_path):
    """The worker writes 0 (itself) to the cgroup.procs of the access's pid whenever it changes;
    here the two "cgroup.procs" are plain files, which record the writes."""
    from reclaim_ext.validate.worker import parse_worker_output

    exe = vi.compile_static_worker(str(tmp_path))
    data = tmp_path / "data"
    data.write_bytes(np.repeat(np.arange(8, dtype=np.uint64), 512).tobytes())
    trace, pids = tmp_path / "t.u32", tmp_path / "t.pids"
    np.array([0, 1, 2, 5, 6, 3, 7], dtype=np.uint32).tofile(trace)
    np.array([0, 0, 0, 1, 1, 0, 1], dtype=np.uint32).tofile(pids)
    procs = [tmp_path / "a.procs", tmp_path / "b.procs"]
    for f in procs:
        f.write_text("")
    usage = tmp_path / "usage"
    usage.write_text("1\n")
    env = dict(os.environ, RECLAIM_EXT_PIDS=str(pids), RECLAIM_EXT_CGROUPS=f"{procs[0]}:{procs[1]}")
    p = subprocess.run([exe, str(data), str(trace), "pread", "1000", "0", "/dev/null", str(usage)],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    w = parse_worker_output(p.stdout)
    assert w["moves"] == 4 and w["bad"] == 0 and w["accesses"] == 7
    assert [f.read_text() for f in procs] == ["0", "0"]  # opened anew and written at each move
    np.array([0, 2], dtype=np.uint32).tofile(pids)
    np.array([0, 1], dtype=np.uint32).tofile(trace)
    p = subprocess.run([exe, str(data), str(trace), "pread", "1000", "0", "/dev/null", str(usage)],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 1 and "access 1: cannot move to the memcg of pid 2" in p.stderr


CONSOLE_RUN = """@@reclaim-ext run 1 rc=0 trace=trace.u32 access=pread limit=4194304
@@reclaim-ext section out
accesses 10
@@reclaim-ext section current_a
2101248
@@reclaim-ext section stat_a
anon 0
file 2080768
workingset_refault_file 31
@@reclaim-ext section events_a
low 2
high 0
max 0
@@reclaim-ext section current_b
1000000
@@reclaim-ext section stat_b
file 950272
workingset_refault_file 77
@@reclaim-ext section events_b
low 0
@@reclaim-ext end 1
"""


def test_console_sibling_sections_parsed():
    run = vmmod.parse_console("@@reclaim-ext init 6.12\n" + CONSOLE_RUN + "@@reclaim-ext done\n")["runs"][0]
    got = low_mod.sibling_record(run)
    assert got == {"a": {"current_pages": 513, "file_pages": 508, "workingset_refault_file": 31, "events_low": 2},
                   "b": {"current_pages": 244, "file_pages": 232, "workingset_refault_file": 77, "events_low": 0}}
    del run["current_b"]
    with pytest.raises(ReclaimExtError, match="guest run 1: no memory.current of sibling b"):
        low_mod.sibling_record(run)


def test_model_runs_the_siblings_and_protects_a():
    pages, pids, npages = low_mod.sibling_trace(_tenants(4000), chunk=64)
    free = kernel_mod.model_run(pages, npages, 600, "pread", low_pages=1, pids=pids)
    prot = kernel_mod.model_run(pages, npages, 600, "pread", low_pages=400, pids=pids)
    assert set(prot["siblings"]) == {"a", "b"} and prot["siblings"]["a"]["low"] == 400
    a_free, a_prot = (np.asarray(m["_bitmap"])[pids == 0].sum() for m in (free, prot))
    assert a_prot < a_free                                           # memory.low keeps a's pages
    assert prot["siblings"]["a"]["usage"] > free["siblings"]["a"]["usage"]
    assert kernel_mod.model_run(pages, npages, 600, "pread")["siblings"] is None


def test_low_comparison_splits_the_bitmaps_by_pid():
    from reclaim_ext.validate.bitmaps import store

    pids = np.array([0, 0, 1, 1, 0, 1, 1, 1], dtype=np.uint32)
    kbits = np.array([1, 0, 1, 1, 0, 0, 1, 0], dtype=bool)
    mbits = np.array([1, 1, 1, 0, 0, 0, 0, 0], dtype=bool)
    sib = {"a": {"current_pages": 9, "file_pages": 8, "workingset_refault_file": 1, "events_low": 0},
           "b": {"current_pages": 5, "file_pages": 4, "workingset_refault_file": 2, "events_low": 3}}
    model = {"siblings": {"a": {"usage": 7, "memory_stat": {"workingset_refault_file": 1},
                                "memory_events": {"low": 0}},
                          "b": {"usage": 6, "memory_stat": {"workingset_refault_file": 3},
                                "memory_events": {"low": 4}}}}
    result = {"kernel_runs": [{"siblings": sib}], "model": model,
              "bitmaps": store([kbits], {90: mbits, 95: ~mbits}, [95], 90)}   # the model at 90: the calibrated one
    out = low_mod.low_comparison(result, pids, 10)
    a, b = out["siblings"]["a"], out["siblings"]["b"]
    assert (a["kernel_misses"], a["model_misses"], a["error"], a["low_pages"]) == ([1], 2, 1.0, 10)
    assert (b["kernel_misses"], b["model_misses"], b["low_pages"]) == ([3], 1, 0)
    assert b["kernel_events_low"] == [3] and b["model_events_low"] == 4 and a["kernel_file_pages"] == [8]


@pytest.mark.parametrize("kw, msg", [
    (dict(access="mmap"), "low: only with pread access"),
    (dict(knob="high"), "low: not with --knob high"),
    (dict(reclaim_pages=10, nodes=2), "low: not with --reclaim, --vm-nodes 2"),
    (dict(low_pages=2000), "low: 2000 pages is above the probe's limit \\(1000 pages\\)"),
])
def test_validate_vm_low_errors(kw, msg):
    args = dict(limit_pages=1000, low_pages=500)
    args.update(kw)
    with pytest.raises(ReclaimExtError, match=msg):
        vmmod.validate_vm(None, "6.12", **args)


@pytest.mark.parametrize("args, msg", [
    (["--low", "4MiB"], "--low does not apply with the host kernel"),
    (["--vm", "6.12", "--suite", "--low", "4MiB"], "--low does not apply with --suite"),
])
def test_low_option_errors(args, msg):
    r = CliRunner().invoke(main, ["validate", "kernel", *args])
    assert r.exit_code == 2 and msg in r.output and "Traceback" not in r.output


@pytest.mark.vm
def test_real_vm_low_siblings(tmp_path):
    """memory.low in a real 6.12 guest (classic LRU), 8000 accesses of two tenants; behind the `vm`
    marker for the reasons of test_validate_vm.py's test_real_vm_replay."""
    import json

    r = CliRunner().invoke(main, ["validate", "kernel", "--vm", "6.12", "--lru-gen", "off", "--workload", "tenants",
                                  "-p", "a=zipf pages=1500 accesses=4000", "-p", "b=zipf pages=1500 accesses=4000",
                                  "--memory", "4MiB", "--low", "2MiB", "--reps", "1", "--dir", str(tmp_path),
                                  "--json", "-"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["kernel_runs"][0]["moves"] == 32 and res["kernel_runs"][0]["bad_reads"] == 0
    for s in ("a", "b"):
        sib = res["low"]["siblings"][s]
        assert sib["kernel_file_pages"][0] > 0 and sib["model_usage_pages"] > 0   # both siblings were charged
        assert abs(sib["model_misses"] - sib["kernel_misses"][0]) < 0.05 * sib["kernel_misses"][0]
    assert os.listdir(tmp_path) == []
