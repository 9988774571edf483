"""The host validation on a busy machine (issue 14): one validation per block device at a time,
and other processes' changes to the host-wide counters reported (no root or kernel run needed)."""

from __future__ import annotations

import pytest

from reclaim_ext.validate import kernel as K
from reclaim_ext.validate.errors import Unavailable


def test_a_second_validation_on_the_same_device_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(K, "lock_dir", lambda: str(tmp_path))
    with K.device_lock(str(tmp_path)) as path:
        with pytest.raises(Unavailable, match="another reclaim-ext validation .* is running on the device"):
            with K.device_lock(str(tmp_path)):
                pass
        assert open(path).read().strip().isdigit()  # the holder's pid, for the message
    with K.device_lock(str(tmp_path)):  # released: the next one runs
        pass


def test_other_processes_activity_is_reported():
    # the probe evicted 1,000 pages and read 1,200; the host saw more of each
    dv = {"pgsteal_file": 1_000 + 5_000, "pgpgin": 4 * 1_200 + 4 * 30, "workingset_refault_file": 900}
    stat0, stat1 = {"workingset_refault_file": 100}, {"workingset_refault_file": 1_000}
    assert K.other_activity(dv, 1_000, 1_200, stat0, stat1) == {"pgsteal_file": 5_000}
    # within the margin (per-CPU counter batching) nothing is reported
    assert K.other_activity({"pgsteal_file": 1_050, "pgpgin": 4_800}, 1_000, 1_200, {}, {}) == {}
    # refaults beyond the probe's own memory.stat
    assert K.other_activity({"workingset_refault_file": 2_000}, 0, 0, {}, {"workingset_refault_file": 500}) == \
        {"workingset_refault_file": 1_500}


def test_damon_on_the_host_is_detected(tmp_path):
    proc, admin = tmp_path / "proc", tmp_path / "kdamonds"
    for pid, comm in ((1, "init"), (81, "kdamond.0"), (90, "bash")):
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "comm").write_text(comm + "\n")
    scheme = admin / "0" / "contexts" / "0" / "schemes" / "0"
    scheme.mkdir(parents=True)
    (admin / "0" / "state").write_text("on\n")
    (scheme / "action").write_text("pageout\n")
    d = K.damon_state(str(proc), str(admin))
    assert d == {"kdamond_threads": 1, "kdamonds": [{"id": 0, "state": "on", "actions": ["pageout"]}],
                 "reclaiming": True}
    (admin / "0" / "state").write_text("off\n")
    assert not K.damon_state(str(proc), str(admin))["reclaiming"]
    assert K.damon_state(str(tmp_path / "none"), str(tmp_path / "none")) == \
        {"kdamond_threads": 0, "kdamonds": [], "reclaiming": False}
