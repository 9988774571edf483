"""Several swap devices (machine.node.Swap, folio_alloc_swap): slots come from the
highest-priority device with room, devices of equal priority in turn by batches of the swap slots
cache (get_swap_pages, plist_requeue); each slot remembers its device (the swap entry's type), so
a swap-in frees it there and is priced at that device's latency, and a disk device keeps its
swapped-in folios in the swap cache while a zram one does not. The conservation check (on in
tests) checks each device's used slots against the pages whose slot is on it."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from reclaim_ext.api import RunConfig, run
from reclaim_ext.cli import main
from reclaim_ext.errors import ConfigError
from reclaim_ext.machine.node import (SC_DEV, SC_LEFT, SWAP_BATCH, SWP_USED, Swap, SwapDevice, folio_alloc_swap,
                                      parse_swapon, swap_used_add)
from reclaim_ext.trace import ArrayTrace, Kind
from reclaim_ext.trace.record import make_records

from test_swap_device import _trace


def _take(swap: Swap, n: int) -> list[int]:
    """n slots as add_to_swap takes them: the device, then the slot charged there."""
    out = []
    for _ in range(n):
        d = folio_alloc_swap(swap.table)
        if d >= 0:
            swap_used_add(swap.table, d, 1)
        out.append(int(d))
    return out


def test_highest_priority_first_then_the_next_when_full():
    swap = Swap([SwapDevice(100, "disk"), SwapDevice(70, "zram", priority=100)])
    got = _take(swap, 180)
    assert got[:70] == [1] * 70  # zram (prio 100) before the disk (swapon's default, -2)
    assert got[70:170] == [0] * 100
    assert got[170:] == [-1] * 10  # every device full
    assert swap.used == swap.total == 170


def test_default_priorities_follow_swapon_order():
    swap = Swap([SwapDevice(10), SwapDevice(10), SwapDevice(10, priority=0)])
    assert swap.rows[:, 2].tolist() == [-2, -3, 0]  # least_priority goes down from -1 (setup_swap_info)
    assert _take(swap, 30) == [2] * 10 + [0] * 10 + [1] * 10


def test_equal_priorities_take_turns_by_slot_cache_batches():
    swap = Swap([SwapDevice(1000, priority=5), SwapDevice(1000, "disk", priority=5)])
    got = _take(swap, 4 * SWAP_BATCH)
    assert got == [0] * SWAP_BATCH + [1] * SWAP_BATCH + [0] * SWAP_BATCH + [1] * SWAP_BATCH
    # freed slots go back to their device; the cache's batch goes on where it was
    swap_used_add(swap.table, 0, -10)
    assert swap.table[0, SWP_USED] == 2 * SWAP_BATCH - 10
    assert _take(swap, 1) == [0] and swap.table[-1, SC_DEV] == 0 and swap.table[-1, SC_LEFT] == SWAP_BATCH - 1


def test_a_refill_takes_no_more_than_the_device_has():
    swap = Swap([SwapDevice(3, priority=5), SwapDevice(100, priority=5)])
    assert _take(swap, 8) == [0, 0, 0] + [1] * 5


@pytest.mark.parametrize("spec,message", [
    ("kind=zram", "needs a size"),
    ("kind=tape,size=1GiB", "not one of zram, disk"),
    ("kind=zram,size=1GiB,prio=x", "prio: 'x' is not an integer"),
    ("kind=zram,size=1GiB,prio=40000", "from 0 to 32767"),
    ("kind=zram,size=1GiB,prio=-1", "from 0 to 32767"),
    ("kind=disk,size=1GiB,ratio=3", "ratio: the swap device is disk"),
    ("kind=zram,size=1GiB,ratio=0.5", "ratio: 0.5 is not 0"),
    ("size=1GiB,speed=3", "'speed=3' is not one of kind=, size=, prio=, ratio="),
    ("size=1GiB,size=2GiB", "size= given twice"),
])
def test_bad_device_specs(spec, message):
    with pytest.raises(ConfigError, match=message) as e:
        parse_swapon(spec)
    assert spec in str(e.value)


N, LIMIT = 600, 300


def _run(devices, phases, mode="fast", policy="classic", memcg=True):
    """A memcg-limited run, or (memcg False) one under global pressure: kswapd and direct reclaim
    on a machine of 512 pages (the fast driver takes the compiled kswapd run there)."""
    cfg = RunConfig(policy=policy, workload=None, memory=4096 if memcg else 512, swap_devices=devices, mode=mode,
                    memcgs=[f"name=a,pids=0,max={LIMIT}"] if memcg else [], check=True)
    return run(cfg, trace=_trace(phases))


ALL = np.arange(N)
PHASES = [(ALL, 1), (ALL, 0), (ALL, 0), (ALL, 1)]


@pytest.mark.parametrize("policy", ["classic", "mglru"])
def test_zram_fills_first_then_disk_and_each_counts_its_own(policy):
    small = N // 4
    devs = [f"kind=disk,size={4 * N}", f"kind=zram,size={small},prio=100,ratio=2"]
    r = _run(devs, PHASES[:3], policy=policy)  # read faults last: the disk's folios stay in the swap cache
    disk, zram = r["swap_devices"]
    assert (disk["kind"], disk["priority"], zram["kind"], zram["priority"]) == ("disk", -2, "zram", 100)
    v = r["vmstat"]
    # every swap-in and swap-out is one device's; zram is full when the disk is used, and holds
    # (ratio 2) half a page per stored page in its pool
    assert disk["pswpin"] + zram["pswpin"] == v["pswpin"] > 0
    assert disk["pswpout"] + zram["pswpout"] == v["pswpout"]
    assert zram["pswpout"] > 0 and disk["pswpout"] > 0
    assert disk["used_pages"] + zram["used_pages"] == r["swap_used_pages"]
    assert zram["zram_pool_pages"] == -(-zram["used_pages"] // 2) and r["zram_pool_pages"] == zram["zram_pool_pages"]
    assert r["swap_device"] == "disk+zram" and r["swap_pages"] == 4 * N + small
    # the disk keeps read-faulted folios in the swap cache with their slots, zram does not
    assert r["swap_cache_pages"] > 0 and disk["used_pages"] > disk["pswpout"] - disk["pswpin"]
    assert zram["used_pages"] == zram["pswpout"] - zram["pswpin"]


def test_drivers_agree_with_several_devices():
    devs = ["kind=zram,size=80,prio=10", "kind=disk,size=100,prio=10", f"kind=disk,size={4 * N}"]
    rng = np.random.default_rng(1)
    phases = [(rng.integers(0, N, 3000), 1), (rng.integers(0, N, 3000), 0)]
    out = [_run(devs, phases, mode=m, policy=p, memcg=c) for c in (True, False) for p in ("classic", "mglru")
           for m in ("fast", "exact")]
    for a, b in zip(out[0::2], out[1::2]):
        assert a["swap_devices"] == b["swap_devices"] and a["vmstat"] == b["vmstat"] and a["misses"] == b["misses"]
    assert all(d["pswpout"] > 0 for r in out for d in r["swap_devices"])
    assert out[4]["vmstat"]["pgsteal_kswapd"] > 0


def test_one_device_is_the_single_device_flags():
    a = _run([f"kind=disk,size={4 * N}"], PHASES)
    b = run(RunConfig(workload=None, memory=4096, swap=4 * N, swap_device="disk", check=True,
                      memcgs=[f"name=a,pids=0,max={LIMIT}"]), trace=_trace(PHASES))
    for k in ("vmstat", "misses", "swap_devices", "modeled_seconds"):
        assert a[k] == b[k], k


def test_swap_io_is_priced_per_device():
    devs = [f"kind=zram,size={N // 4},prio=100", f"kind=disk,size={4 * N}"]
    r = _run(devs, PHASES)
    z, d = r["swap_devices"]
    fast = _run([f"kind=zram,size={5 * N}"], PHASES)
    # the same misses; the disk's share of the swap I/O costs more than zram's
    assert r["misses"] == fast["misses"] and d["pswpin"] > 0
    assert r["modeled_seconds"] > fast["modeled_seconds"]


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_cli_swapon_and_machine_file(tmp_path):
    common = ["run", "--workload", "zipf", "-p", "accesses=20000", "-p", "pages=5000", "-p", "kind=anon"]
    r = invoke(*common, "--memory", "8MiB", "--json", "-", "--swapon", "kind=zram,size=4MiB,prio=100", "--swapon", "kind=disk,size=64MiB")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [(d["kind"], d["size_pages"], d["priority"]) for d in out["swap_devices"]] == [("zram", 1024, 100),
                                                                                          ("disk", 16384, -2)]
    assert out["swap_devices"][0]["used_pages"] > 0 and out["swap_devices"][1]["used_pages"] > 0
    p = tmp_path / "m.toml"
    p.write_text('memory = "8MiB"\n[[swap_device]]\nkind = "zram"\nsize = "4MiB"\nprio = 100\n'
                 '[[swap_device]]\nkind = "disk"\nsize = "64MiB"\n')
    f = invoke(*common, "--machine", str(p), "--json", "-")
    assert f.exit_code == 0, f.output
    assert json.loads(f.stdout)["swap_devices"] == out["swap_devices"]
    shown = invoke("machine", "show", str(p))
    assert "swap 4 MiB (zram, prio 100) + 64 MiB (disk)" in shown.stdout
    # a flag describing the swap replaces the file's devices
    g = invoke(*common, "--machine", str(p), "--swap", "16MiB", "--json", "-")
    assert [d["size_pages"] for d in json.loads(g.stdout)["swap_devices"]] == [4096]


def test_cli_swapon_with_swap_flags_is_one_error():
    r = invoke("run", "--workload", "zipf", "--swapon", "kind=zram,size=4MiB", "--swap-device", "disk")
    assert r.exit_code == 2 and "--swapon" in r.output and "Traceback" not in r.output
    r = invoke("run", "--workload", "zipf", "--swapon", "kind=zram")
    assert r.exit_code == 2 and "needs a size" in r.output
