"""Several swap devices in the VM (`validate kernel --vm --access anon --swap-device zram+disk`):
the guest swaps on zram at priority 100 in front of the swap disk, and each device's swap I/O
(its block device's sectors) and slots (/proc/swaps) are compared with the model's devices. No VM
here: the guest script, the console sections' parsing and the model side."""

import numpy as np
import pytest

from reclaim_ext.validate import kernel as kernel_mod
from reclaim_ext.validate import vm as vmmod
from reclaim_ext.validate import vmimage as vi
from reclaim_ext.validate.kernel import PAGE, ZRAM_PRIO, model_swap, swap_bytes, zram_front_bytes


def test_init_sets_up_zram_in_front_of_the_disk():
    plan = vi.GuestPlan(limit_pages=2048, access="anon", swap=True, swap_device="zram+disk",
                        swap_bytes=swap_bytes(4000), zram_bytes=zram_front_bytes(4000))
    text = vi.init_script(plan)
    assert "SWAP=zram+disk" in text and f"echo {1000 * PAGE} > /sys/block/zram0/disksize" in text
    assert f"PRIO={ZRAM_PRIO}\n" in text and "SWAPDEV=/dev/vdb; PRIO=\n" in text
    assert "if [ -n \"$PRIO\" ]; then /worker swapon $SWAPDEV $PRIO; else swapon $SWAPDEV; fi" in text
    # the I/O of each device around the replay, and /proc/swaps at its end, in the run's sections
    assert 'for d in $SWAPDEVS; do echo "$d $(cat /sys/block/$d/stat)"; done > /tmp/swapio0' in text
    assert "RECLAIM_EXT_SWAPS=${SWAPDEVS:+/tmp/swaps} " in text and "numa_stat swapio0 swapio1 swaps nodes0 nodes1; do" in text
    single = vi.init_script(vi.GuestPlan(limit_pages=2048, access="anon", swap=True, swap_device="zram",
                                         swap_bytes=swap_bytes(4000)))
    assert "SWAPDEV=/dev/zram0; PRIO=\n" in single and f"echo {swap_bytes(4000)} > /sys/block/zram0/disksize" in single
    with pytest.raises(vi.ReclaimExtError, match="zram swap device needs its size"):
        vi.init_script(vi.GuestPlan(limit_pages=2048, access="anon", swap=True, swap_device="zram+disk",
                                    swap_bytes=swap_bytes(4000)))


SWAPS = """Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority
/dev/zram0                              partition\t4000\t\t3996\t\t100
/dev/vdb                                partition\t81916\t\t17552\t\t-2
"""
IO0 = "zram0 10 0 80 0 20 0 160 0 0 0 0 0 0 0 0 0 0\nvdb 5 0 40 3 7 0 56 2 0 3 5 0 0 0 0 0 0\n"
IO1 = "zram0 810 0 6480 0 1020 0 8160 0 0 0 0 0 0 0 0 0 0\nvdb 505 0 4040 3 307 0 35160 2 0 3 5 0 0 0 0 0 0\n"


def test_per_device_io_and_slots_parsed():
    devs = vmmod.parse_swap_devices(SWAPS, IO0, IO1)
    assert devs == [{"kind": "zram", "used_pages": 999, "priority": 100, "pswpin": 800, "pswpout": 1000},
                    {"kind": "disk", "used_pages": 4388, "priority": -2, "pswpin": 500, "pswpout": 4388}]
    assert vmmod.parse_swap_devices("", "", "") == []


def test_model_swaps_to_the_same_devices():
    assert model_swap("zram", 4000) == {"swap": swap_bytes(4000) // PAGE, "swap_device": "zram"}
    both = model_swap("zram+disk", 4000)["swap_devices"]
    assert both == [f"kind=zram,size=999,prio={ZRAM_PRIO}", f"kind=disk,size={swap_bytes(4000) // PAGE - 1}"]
    # an anon trace that swaps out more than zram holds: zram fills, the disk takes the rest
    rng = np.random.default_rng(0)
    pages = rng.integers(0, 2000, 20000).astype(np.uint32)
    m = kernel_mod.model_run(pages, 2000, 600, "anon", swap_device="zram+disk")
    z, d = m["swap_devices"]
    assert (z["kind"], z["size_pages"], z["priority"], d["kind"], d["priority"]) == ("zram", 499, 100, "disk", -2)
    assert z["pswpout"] > 0 and d["pswpout"] > 0 and z["used_pages"] >= 499 - 64
    assert z["pswpin"] + d["pswpin"] == m["vmstat"]["pswpin"]
    assert kernel_mod.model_run(pages[:3000], 2000, 600, "anon")["swap_devices"][0]["kind"] == "disk"
