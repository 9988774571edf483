"""validate kernel --vm --vm-nodes 2 --knob none: the global (kswapd) path on two guest nodes.
Everything here runs without a VM (the real boots are in docs/fidelity.md)."""

import json
import os
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from reclaim_ext.cli import main
from reclaim_ext.errors import ReclaimExtError
from reclaim_ext.validate import globalpath as gp
from reclaim_ext.validate import kernel as kernel_mod
from reclaim_ext.validate import vm as vmmod
from reclaim_ext.validate import vmimage as vi

SAMPLE = os.path.join(os.path.dirname(__file__), "data", "vm_console_sample.txt")


def _zone(node, name, free, wm, managed, prot, file=None):
    stats = (f"  per-node stats\n      nr_inactive_file {file}\n      nr_file_pages {file}\n" if file is not None else "")
    return (f"Node {node}, zone {name:>8}\n{stats}  pages free     {free}\n        boost    0\n"
            f"        min      {wm[0]}\n        low      {wm[1]}\n        high     {wm[2]}\n"
            f"        spanned  {managed + 100}\n        present  {managed + 50}\n        managed  {managed}\n"
            f"        cma      0\n        protection: ({', '.join(map(str, prot))})\n      nr_free_pages {free}\n"
            f"  pagesets\n    cpu: 0\n              count: 10\n              high:  40\n              batch: 1\n")


def _snap(free0, free1, dma_free=3808, hit=(900, 5000), miss=(2000, 0), foreign=(0, 2000), refault=(10, 20),
          file=(100, 200), extra_zone=""):
    text = (_zone(0, "DMA", dma_free, (25, 31, 37), 3840, (0, 43919, 43919), file=file[0])
            + _zone(0, "DMA32", free0, (294, 367, 440), 43919, (0, 0, 0))
            + _zone(0, "Normal", 0, (0, 0, 0), 0, (0, 0, 0)) + extra_zone
            + _zone(1, "DMA32", free1, (260, 325, 390), 38884, (0, 0, 0), file=file[1]))
    for n in (0, 1):
        text += (f"== node{n} numastat\nnuma_hit {hit[n]}\nnuma_miss {miss[n]}\nnuma_foreign {foreign[n]}\n"
                 f"interleave_hit 0\nlocal_node {hit[n]}\nother_node 0\n"
                 f"== node{n} vmstat\nnr_free_pages {free0 if n == 0 else free1}\nnr_file_pages {file[n]}\n"
                 f"workingset_refault_file {refault[n]}\nworkingset_activate_file 1\n")
    return text


def test_guest_script_global_path():
    text = vi.init_script(vi.GuestPlan(limit_pages=98304, knob="none", nodes=2))
    assert 'echo "1 256 32 0 0" > /proc/sys/vm/lowmem_reserve_ratio' in text
    assert "echo 0 > /proc/sys/vm/watermark_boost_factor" in text
    assert "cat /proc/sys/vm/min_free_kbytes > /proc/sys/vm/min_free_kbytes" in text
    assert '[ none = none ] || echo $4 > $CG/memory.none' in text       # no limit is written
    assert "RECLAIM_EXT_INTERLEAVE= RECLAIM_EXT_PIDS" in text
    assert "RECLAIM_EXT_PREFERRED=1 RECLAIM_EXT_CACHESTAT=1" in text
    assert "nodes0=$(node_snap)" in text and "node_snap > /tmp/nodes1" in text and " nodes0 nodes1; do" in text
    assert 'echo "== ${d##*/} numastat"; cat $d/numastat' in text
    plain = vi.init_script(vi.GuestPlan(limit_pages=1000, nodes=2))
    assert "RECLAIM_EXT_PREFERRED= RECLAIM_EXT_CACHESTAT=" in plain and "RECLAIM_EXT_INTERLEAVE=3" in plain
    assert 'if [ -n "" ]; then   # the global path' in plain and "[ max = none ] || echo $4 > $CG/memory.max" in plain


@pytest.mark.parametrize("kw", [dict(nodes=1), dict(nodes=2, access="mmap"), dict(nodes=2, reclaim_bytes=4096),
                                dict(nodes=2, swap=True, access="anon", swap_bytes=1 << 20)])
def test_guest_plan_global_refuses_other_shapes(kw):
    with pytest.raises(ReclaimExtError, match="the global path .knob none. takes two nodes, pread, no swap"):
        vi.init_script(vi.GuestPlan(limit_pages=98304, knob="none", **kw))


def test_parse_zoneinfo_and_the_node_snapshot():
    snap = gp.parse_node_snap(_snap(38985, 36272))
    zones = [(z["node"], z["zone"], z["free"], z["min"], z["low"], z["high"], z["managed"]) for z in snap["zones"]]
    # the pagesets' "high:" is not the zone's high; zones without managed pages are left out
    assert zones == [(0, "DMA", 3808, 25, 31, 37, 3840), (0, "DMA32", 38985, 294, 367, 440, 43919),
                     (1, "DMA32", 36272, 260, 325, 390, 38884)]
    assert snap["zones"][0]["protection"] == [0, 43919, 43919]
    assert snap["numastat"][1]["numa_foreign"] == 2000 and snap["vmstat"][0]["workingset_refault_file"] == 10


def test_global_run_record_and_the_model_config():
    rec = gp.global_run_record(_snap(38985, 36272), _snap(445, 421, hit=(950, 55000), miss=(55440, 0),
                                                          foreign=(0, 55440), refault=(1509, 1346), file=(38923, 36957)),
                               {"pgscan_kswapd": 5, "pgsteal_kswapd": 5, "pageoutrun": 1},
                               {"pgscan_kswapd": 27353, "pgsteal_kswapd": 27353, "pageoutrun": 322})
    n0, n1 = rec["nodes"]
    assert (n0["numa_hit"], n0["numa_miss"], n0["numa_foreign"]) == (50, 53440, 0)
    assert (n1["numa_hit"], n1["numa_miss"], n1["numa_foreign"]) == (50000, 0, 53440)
    assert n0["workingset_refault_file"] == 1499 and n1["file_pages_end"] == 36957
    assert n0["zone_start"]["free"] == 38985 and [z["zone"] for z in n0["other_zones_start"]] == ["DMA"]
    assert n0["other_zones_end"][0]["free"] == 3808     # ZONE_DMA took no page cache
    assert rec["kswapd"]["pgsteal_kswapd"] == 27348 and rec["kswapd"]["pageoutrun"] == 321
    cfg = gp.global_model_config(rec)
    assert cfg == {"node_sizes": [38985, 36272], "node_watermarks": [[294, 367, 440], [260, 325, 390]]}
    # a layout with a second zone user pages can take on a node is refused
    with pytest.raises(ReclaimExtError, match="node 0: the guest's layout is not one DMA32 zone per node"):
        gp.global_run_record(_snap(1000, 1000, extra_zone=_zone(0, "Movable", 500, (1, 2, 3), 600, (0, 0))),
                             _snap(1000, 1000), {}, {})
    with pytest.raises(ReclaimExtError, match="fewer than two nodes"):
        gp.global_run_record("Node 0, zone DMA32\n  pages free 5\n        managed 9\n", "", {}, {})


def test_model_on_two_nodes_with_the_zones_watermarks():
    """The model's global path: nodes of the given sizes and watermarks, pid 0 preferring node 1,
    falling back to node 0 (numa_miss there, numa_foreign on node 1), each node's kswapd."""
    rng = np.random.default_rng(3)
    pages = (rng.zipf(1.3, 30000) % 4000).astype(np.uint32)
    u, inv = np.unique(pages, return_inverse=True)
    m = kernel_mod.model_run(inv.astype(np.uint32), len(u), 0, "pread", node_sizes=[900, 1100],
                             node_watermarks=[[20, 30, 40], [25, 35, 45]], preferred=1)
    n0, n1 = m["nodes"]
    assert n0["watermarks"] == {"min": 20, "low": 30, "high": 40} and n1["memory_pages"] == 1100
    v0, v1 = n0["vmstat"], n1["vmstat"]
    assert v0["numa_miss"] == v1["numa_foreign"] > 0 and v0["numa_hit"] == 0 and v1["numa_miss"] == 0
    assert v0["numa_miss"] + v1["numa_hit"] == m["misses"]           # one allocation per miss
    assert v0["pgsteal_kswapd"] > 0 and v1["pgsteal_kswapd"] > 0
    assert m["kswapd"]["pgsteal_kswapd"] == v0["pgsteal_kswapd"] + v1["pgsteal_kswapd"]
    assert m["numa_stat"]["file"][1] <= 1100 - 35 and m["memory_stat"] is not None
    with pytest.raises(ReclaimExtError, match=r"node watermarks .*: need one \(min, low, high\) per node"):
        kernel_mod.model_run(inv.astype(np.uint32), len(u), 0, "pread", node_sizes=[900, 1100],
                             node_watermarks=[[20, 10, 40], [25, 35, 45]])


@pytest.mark.parametrize("kw, msg", [
    (dict(nodes=1), "needs --vm-nodes 2"),
    (dict(nodes=2, access="mmap"), "only with pread access"),
    (dict(nodes=2, reclaim_pages=10), "not with --reclaim or --low"),
    (dict(nodes=2, limit_pages=16384), "64 MiB is outside 256 MiB to 3 GiB"),
    (dict(nodes=2, limit_pages=1 << 20), "4096 MiB is outside"),
])
def test_validate_vm_global_errors(kw, msg):
    kw = dict(dict(limit_pages=98304, access="pread"), **kw)
    with pytest.raises(ReclaimExtError, match=msg):
        vmmod.validate_vm(None, "6.12", knob="none", **kw)


def test_option_error_lines():
    r = CliRunner().invoke(main, ["validate", "kernel", "--vm", "6.12", "--knob", "none", "--memory", "384MiB"])
    assert r.exit_code == 2 and "needs --vm-nodes 2" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["validate", "kernel", "--knob", "none"])
    assert r.exit_code == 2 and "--knob does not apply with the host kernel" in r.output


def test_console_global_marker():
    p = vmmod.parse_console("@@reclaim-ext init 6.12\n@@reclaim-ext global 2324 10 1,256,32,0,0\n@@reclaim-ext done\n")
    assert p["global"] == {"min_free_kbytes": 2324, "watermark_scale_factor": 10, "lowmem_reserve_ratio": [1, 256, 32, 0, 0]}
    assert "global" not in vmmod.parse_console("@@reclaim-ext init 6.12\n@@reclaim-ext done\n")


def test_fake_boot_end_to_end(monkeypatch, tmp_path):
    """boot_plan replaced by the recorded console's runs with node snapshots added: the global
    result, its JSON and the printed summary."""
    sample = vmmod.parse_console(open(SAMPLE, encoding="utf-8").read())
    plans = []

    def boot(k, plan, traces, npages, **kw):
        plans.append(plan)
        runs = [dict(sample["runs"][i % 2], n=i + 1, nodes0=_snap(700, 600),
                     nodes1=_snap(40, 30, hit=(950, 5900), miss=(3000, 0), foreign=(0, 3000),
                                                     file=(290, 240)),
                     numa_stat="file N0=1187840 N1=983040\nworkingset_refault_file N0=12 N1=30\n")
                for i in range(plan.reps)]
        parsed = dict(sample, runs=runs, **{"global": {"min_free_kbytes": 2324, "watermark_scale_factor": 10,
                                                        "lowmem_reserve_ratio": [1, 256, 32, 0, 0]}})
        return {"parsed": parsed, "console": "", "accel": "tcg", "kvm_fallback_reason": "no kvm", "memory_mib": 384,
                "modules": [], "seconds": 1.5}

    monkeypatch.setattr(vmmod, "boot_plan", boot)
    monkeypatch.setattr(vmmod, "find_qemu", lambda: "qemu")
    monkeypatch.setattr(vmmod, "find_busybox", lambda: "busybox")
    tree = tmp_path / "k" / "boot"
    tree.mkdir(parents=True)
    (tree / "vmlinuz-6.12.0-test").write_text("kernel")
    args = ["validate", "kernel", "--vm", str(tree / "vmlinuz-6.12.0-test"), "-p", "pages=1024", "-p",
            "accesses=3000", "--memory", "384MiB", "--vm-nodes", "2", "--knob", "none", "--reps", "2",
            "--lru-gen", "off", "--dir", str(tmp_path)]
    r = CliRunner().invoke(main, args + ["--json", "-"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert plans[0].knob == "none" and plans[0].nodes == 2 and plans[0].limit_pages == 98304
    assert res["knob"] == "none" and res["kernel_misses"] == 939.5 and res["model"]["policy"] == "classic"
    assert res["model_config"]["node_sizes"] == [700, 600]
    assert res["model_config"]["node_watermarks"] == [[294, 367, 440], [260, 325, 390]]
    n0, n1 = res["global"]["nodes"]
    assert n0["kernel_numa_miss"] == [1000, 1000] and n1["kernel_numa_foreign"] == [1000, 1000]
    assert n0["kernel_file_pages_end"] == [290, 290] and n1["model_numa_foreign"] == n0["model_numa_miss"] > 0
    assert res["host"]["global"]["lowmem_reserve_ratio"] == [1, 256, 32, 0, 0]
    assert "_bitmap" not in json.dumps(res) and "bitmaps" not in res
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "no memcg limit (the global path), two nodes" in r.stdout
    assert "node 0: zone free 700 min/low/high 294/367/440 (model 294/367/440)" in r.stdout
    assert "numa_miss                kernel 1,000, 1,000; model " in r.stdout


def test_worker_preferred_node_and_cachestat(tmp_path):
    """RECLAIM_EXT_PREFERRED: the worker sets MPOL_PREFERRED on the node (node 0 exists on every
    host); RECLAIM_EXT_CACHESTAT=1: the hit/miss checks by cachestat(2) give the same bitmap as
    mincore(2). Skipped on a host kernel without cachestat (before 6.5)."""
    from reclaim_ext.validate.worker import compile_worker, parse_worker_output

    exe = compile_worker(str(tmp_path))
    data = tmp_path / "data"
    data.write_bytes(np.repeat(np.arange(64, dtype=np.uint64), 512).tobytes())
    trace = tmp_path / "t.u32"
    np.array([0, 5, 5, 63, 7, 0, 9], dtype=np.uint32).tofile(trace)
    usage = tmp_path / "usage"
    usage.write_text("1\n")
    fd = os.open(data, os.O_RDONLY)
    outs = []
    for env in ({}, {"RECLAIM_EXT_CACHESTAT": "1", "RECLAIM_EXT_PREFERRED": "0"}):
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)    # drop what can be dropped: both see the same state
        p = subprocess.run([exe, str(data), str(trace), "pread", "2", "0", "/dev/null", str(usage)],
                           capture_output=True, text=True, env=dict(os.environ, **env))
        if "cachestat" in p.stderr and "implemented" in p.stderr:
            pytest.skip("the host kernel has no cachestat(2)")
        assert p.returncode == 0, p.stderr
        outs.append(parse_worker_output(p.stdout))
    os.close(fd)
    a, b = outs
    assert a["bitmap"] == b["bitmap"] and a["misses"] == b["misses"] and b["bad"] == 0
    assert [s[:2] for s in a["samples"]] == [s[:2] for s in b["samples"]]


@pytest.mark.vm
def test_real_vm_global_path(tmp_path):
    """Boots Debian's 6.12 cloud kernel (256 MiB, two nodes) with no memcg limit and a file larger
    than the guest's memory: node 1 fills, the page cache falls back to node 0, both kswapds
    reclaim, ZONE_DMA takes nothing. Behind the `vm` marker (python -m pytest -m vm)."""
    r = CliRunner().invoke(main, ["validate", "kernel", "--vm", "6.12", "--lru-gen", "off", "--vm-nodes", "2",
                                  "--knob", "none", "--memory", "256MiB", "-p", "pages=200000", "-p", "alpha=0.5",
                                  "-p", "accesses=80000", "--reps", "1", "--dir", str(tmp_path), "--json", "-"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    n0, n1 = res["global"]["nodes"]
    assert n0["kernel_numa_miss"][0] > 0 and n1["kernel_numa_foreign"][0] == n0["kernel_numa_miss"][0]
    assert all(o["start"][0]["free"] == o["end"][0]["free"] for o in n0["kernel_other_zones"])   # ZONE_DMA
    assert res["global"]["kernel_kswapd"]["pgsteal_kswapd"][0] > 0 and abs(res["error"]) < 0.02
    assert os.listdir(tmp_path) == []
