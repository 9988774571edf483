"""Swap device kinds (machine.node.SwapDevice): zram frees a slot at swap-in; a disk keeps a
swapped-in folio in the swap cache with its slot, so reclaiming it again unwritten needs no
write (do_swap_page, should_try_to_free_swap, mem_cgroup_swap_full, shrink_folio_list). The
conservation check (on in tests) checks the slots: swapped-out pages + resident swap-cache
folios = slots used, and each memcg's swap usage."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from reclaim_ext.api import RunConfig, run
from reclaim_ext.cli import main
from reclaim_ext.errors import ConfigError
from reclaim_ext.trace import ArrayTrace, Kind
from reclaim_ext.trace.record import make_records

N, LIMIT = 600, 300  # anon pages touched, memcg limit (pages)


def _trace(phases):
    """Anon records of pid 0: each phase is (pages, write) in order."""
    pages = np.concatenate([np.asarray(p, dtype=np.uint64) for p, _ in phases])
    rec = make_records(len(pages))
    rec["page"], rec["kind"] = pages, int(Kind.ANON)
    rec["write"] = np.concatenate([np.full(len(p), w, dtype=np.uint8) for p, w in phases])
    return ArrayTrace("swap", rec)


def _run(phases, device, swap=4 * N, memcg=f"name=a,pids=0,max={LIMIT}", mode="fast", policy="classic"):
    cfg = RunConfig(policy=policy, workload=None, memory=4096, swap=swap, swap_device=device, mode=mode,
                    memcgs=[memcg])
    return run(cfg, trace=_trace(phases))


ALL = np.arange(N)


def test_zram_writes_every_reclaimed_anon_folio():
    r = _run([(ALL, 1), (ALL, 0), (ALL, 0)], "zram")
    v = r["vmstat"]
    assert v["pswpin"] > 0 and v["pswpout"] == v["pgsteal_anon"]
    assert r["swap_cache_pages"] == 0 and r["swap_used_pages"] == v["pswpout"] - v["pswpin"]


def test_disk_drops_clean_swap_cache_folios_unwritten():
    zram = _run([(ALL, 1), (ALL, 0), (ALL, 0)], "zram")
    disk = _run([(ALL, 1), (ALL, 0), (ALL, 0)], "disk")
    v = disk["vmstat"]
    assert disk["swap_device"] == "disk" and zram["swap_device"] == "zram"
    # the same misses (every miss reads the page back either way), fewer writes
    assert disk["misses"] == zram["misses"] and v["pswpin"] == zram["vmstat"]["pswpin"]
    # nothing is stored after the first touch: each page is written to swap once, the first time
    # it is reclaimed, and keeps that slot; every later reclaim drops a clean swap-cache folio
    assert v["pswpout"] == N < v["pgsteal_anon"] == zram["vmstat"]["pgsteal_anon"]
    assert zram["vmstat"]["pswpout"] == zram["vmstat"]["pgsteal_anon"]
    # every page holds a slot: swapped out, or resident in the swap cache
    assert disk["swap_used_pages"] == N and 0 < disk["swap_cache_pages"] <= LIMIT


def test_disk_rewrites_a_folio_written_after_swap_in():
    read = _run([(ALL, 1), (ALL, 0), (ALL, 0)], "disk")
    written = _run([(ALL, 1), (ALL, 0), (ALL, 1)], "disk")
    # a store after a read-fault swap-in dirties the folio (the PTE's dirty bit): reclaim writes it
    # again to its slot
    assert written["vmstat"]["pswpout"] > read["vmstat"]["pswpout"]
    assert written["misses"] == read["misses"]


def test_disk_write_fault_frees_the_slot():
    # the swap-ins are write faults: should_try_to_free_swap frees each slot, as zram does
    r = _run([(ALL, 1), (ALL, 1), (ALL, 1)], "disk")
    z = _run([(ALL, 1), (ALL, 1), (ALL, 1)], "zram")
    assert r["vmstat"]["pswpout"] == r["vmstat"]["pgsteal_anon"] == z["vmstat"]["pswpout"]
    assert r["swap_cache_pages"] == 0


def test_disk_swap_more_than_half_full_frees_slots():
    # N - LIMIT slots of N - LIMIT + 20: vm_swap_full at every swap-in, no folio keeps its slot
    r = _run([(ALL, 1), (ALL, 0), (ALL, 0)], "disk", swap=N - LIMIT + 20)
    assert r["swap_cache_pages"] == 0 and r["vmstat"]["pswpout"] == r["vmstat"]["pgsteal_anon"]


def test_disk_memcg_swap_max_half_used_frees_slots():
    # memory.swap.max: at least half of it in use at each swap-in (mem_cgroup_swap_full, cgroup v2)
    r = _run([(ALL, 1), (ALL, 0), (ALL, 0)], "disk",
             memcg=f"name=a,pids=0,max={LIMIT},swap_max={N - LIMIT + 40}")
    assert r["swap_cache_pages"] == 0 and r["vmstat"]["pswpout"] == r["vmstat"]["pgsteal_anon"]
    roomy = _run([(ALL, 1), (ALL, 0), (ALL, 0)], "disk", memcg=f"name=a,pids=0,max={LIMIT},swap_max={4 * N}")
    assert roomy["swap_cache_pages"] > 0


@pytest.mark.parametrize("policy", ["classic", "mglru"])
def test_disk_swap_fast_equals_exact(policy):
    rng = np.random.default_rng(7)
    pages = rng.integers(0, N, 6000)
    writes = (rng.random(6000) < 0.3).astype(np.uint8)
    rec = make_records(len(pages))
    rec["page"], rec["kind"], rec["write"] = pages, int(Kind.ANON), writes
    out = {}
    for mode in ("fast", "exact"):
        cfg = RunConfig(policy=policy, workload=None, memory=4096, swap=4 * N, swap_device="disk", mode=mode,
                        memcgs=[f"name=a,pids=0,max={LIMIT}"])
        out[mode] = run(cfg, trace=ArrayTrace("r", rec.copy()))
    assert out["fast"]["vmstat"] == out["exact"]["vmstat"]
    assert out["fast"]["swap_cache_pages"] == out["exact"]["swap_cache_pages"] > 0
    assert out["fast"]["vmstat"]["pswpout"] < out["fast"]["vmstat"]["pgsteal_anon"]


def test_mixed_workload_under_both_devices_and_the_errors():
    r = CliRunner().invoke(main, ["run", "--workload", "mixed", "-p", "accesses=60000", "--memory", "16MiB",
                                  "--swap-device", "disk", "--json", "-"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["swap_device"] == "disk" and res["vmstat"]["pswpin"] > 0
    bad = CliRunner().invoke(main, ["run", "--swap-device", "tape"])
    assert bad.exit_code == 2 and "tape" in bad.output
    with pytest.raises(ConfigError, match="swap_device: 'tape' is not one of zram, disk"):
        RunConfig(swap_device="tape").validate()


def test_machine_file_swap_device(tmp_path):
    good = tmp_path / "m.toml"
    good.write_text('memory = "16MiB"\nswap = "16MiB"\nswap_device = "disk"\n')
    r = CliRunner().invoke(main, ["run", "--machine", str(good), "--workload", "mixed", "-p", "accesses=20000",
                                  "--json", "-"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["swap_device"] == "disk"
    shown = CliRunner().invoke(main, ["machine", "show", str(good)])
    assert shown.exit_code == 0 and "(disk)" in shown.output
    bad = tmp_path / "b.toml"
    bad.write_text('swap_device = "tape"\n')
    r = CliRunner().invoke(main, ["run", "--machine", str(bad)])
    assert r.exit_code != 0 and f"{bad}: swap_device: 'tape' is not one of zram, disk" in r.output


@pytest.mark.parametrize("policy", ["classic", "mglru"])
def test_zram_pool_takes_node_memory_and_both_drivers_agree(policy):
    """--zram-ratio: the pool holds ceil(used / ratio) pages of the node (the conservation check,
    on in tests, counts it with free and resident pages); global reclaim without memcgs takes the
    compiled kswapd path in the fast driver and the Python one in the exact driver."""
    out = {}
    for mode in ("fast", "exact"):
        for ratio in (0.0, 2.5):
            cfg = RunConfig(policy=policy, workload="mixed", workload_params={"accesses": 150000}, memory="32MiB",
                            zram_ratio=ratio, mode=mode)
            out[mode, ratio] = run(cfg)
    r = out["fast", 2.5]
    assert r["zram_ratio"] == 2.5 and r["vmstat"]["pswpout"] > 0
    assert r["zram_pool_pages"] == -(-r["swap_used_pages"] * 2 // 5) > 0
    assert out["fast", 0.0]["zram_pool_pages"] == 0
    # the pool's pages are memory the workload no longer has: more reclaim, more misses
    assert r["misses"] > out["fast", 0.0]["misses"]
    for ratio in (0.0, 2.5):
        assert out["fast", ratio]["vmstat"] == out["exact", ratio]["vmstat"]
        assert out["fast", ratio]["free_pages"] == out["exact", ratio]["free_pages"]


def test_zram_ratio_errors(tmp_path):
    with pytest.raises(ConfigError, match="zram_ratio: 0.5 is not 0"):
        RunConfig(zram_ratio=0.5).validate()
    with pytest.raises(ConfigError, match="zram_ratio: the swap device is disk, not zram"):
        RunConfig(zram_ratio=3, swap_device="disk").validate()
    bad = CliRunner().invoke(main, ["run", "--zram-ratio", "-1"])
    assert bad.exit_code == 2 and "--zram-ratio" in bad.output
    f = tmp_path / "m.toml"
    f.write_text('swap_device = "zram"\nzram_ratio = 3\n')
    shown = CliRunner().invoke(main, ["machine", "show", str(f)])
    assert shown.exit_code == 0 and "(zram, ratio 3)" in shown.output
    f.write_text('swap_device = "disk"\nzram_ratio = 3\n')
    r = CliRunner().invoke(main, ["machine", "show", str(f)])
    assert r.exit_code != 0 and f"{f}: zram_ratio: the swap device is disk, not zram" in r.output
