"""A small real replay on the host kernel (a few seconds). Runs as root on a host with a memory
cgroup controller and a C compiler (CI and the dev machines); skipped elsewhere, with the reason."""

import json
import os
import shutil

import pytest
from click.testing import CliRunner

from reclaim_ext.cli import main
from reclaim_ext.validate import bitmaps as kmod_bitmaps
from reclaim_ext.validate import kernel as kmod
from reclaim_ext.validate.cgroup import NAME_PREFIX, find_memory_controller
from reclaim_ext.validate.errors import Unavailable


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root: the replay creates a memory cgroup"
    try:
        find_memory_controller()
    except Unavailable as e:
        return str(e)
    if not (shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")):
        return "needs a C compiler for the replay worker"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=_why_not() or "")


def _leftovers():
    """This process's probe cgroups (named NAME_PREFIX + pid + ...): another validate run on the
    machine at the same time does not count."""
    ctrl = find_memory_controller()
    mine = f"{NAME_PREFIX}{os.getpid()}-"
    return sorted(n for n in os.listdir(ctrl.root) if n.startswith(mine))


def _ra_values():
    return {p: open(p).read() for p in (f"/sys/block/{d}/queue/read_ahead_kb" for d in os.listdir("/sys/block"))
            if os.path.exists(p)}


@pytest.mark.parametrize("access", ["pread", "mmap"])
def test_small_replay_matches_the_model(access, tmp_path):
    before, ra = _leftovers(), _ra_values()
    args = ["validate", "kernel", "--workload", "zipf", "-p", "pages=2048", "-p", "accesses=6000",
            "--memory", "2MiB", "--reps", "2", "--access", access, "--dir", str(tmp_path), "--json", "-"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["accesses"] == 6000 and res["limit_pages"] == 512 and res["access"] == access
    assert res["kernel_misses_min"] <= res["kernel_misses"] <= res["kernel_misses_max"]
    assert res["distinct_pages"] <= res["kernel_misses_min"] < 6000   # compulsory misses, and some hits
    for run in res["kernel_runs"]:
        assert run["bad_reads"] == 0
        assert run["peak_pages"] <= 512
        assert run["calibration"]["c_max"] <= 512
    cal = res["calibration"]
    assert 30 < cal["overhead"] < 300 and cal["model_max"] == 512 - cal["overhead"]
    assert res["model"]["global_reclaim_scans"] == 0       # only the memcg limit reclaimed in the model
    assert abs(res["error"]) < 0.10
    # the per-access bitmaps: each kernel run's and the model's count exactly their misses
    bm = kmod_bitmaps.load(res)
    assert [int(b.sum()) for b in bm.kernel] == [r["misses"] for r in res["kernel_runs"]]
    assert int(bm.model_calibrated.sum()) == res["model_misses"]
    assert res["divergence"]["total"]["kernel_misses"] == pytest.approx(res["kernel_misses"])
    assert res["divergence"]["buckets"][0]["kernel_only"] == 0   # first touches miss on both sides
    assert _leftovers() == before and _ra_values() == ra
    assert os.listdir(tmp_path) == []


def test_interrupted_run_leaves_nothing_behind(tmp_path, monkeypatch):
    before = _leftovers()
    seen = []

    def interrupted(cg, *a, **k):
        seen.append(cg.path)
        assert os.path.isdir(cg.path)
        raise KeyboardInterrupt

    monkeypatch.setattr(kmod, "run_worker", interrupted)
    r = CliRunner().invoke(main, ["validate", "kernel", "-p", "pages=512", "-p", "accesses=1000",
                                  "--memory", "1MiB", "--reps", "1", "--dir", str(tmp_path)])
    assert r.exit_code != 0 and seen
    assert not os.path.exists(seen[0]) and _leftovers() == before
    assert os.listdir(tmp_path) == []
