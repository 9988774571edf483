"""The result counts the accesses served by record kind (anon, file mmap, read()/write(), exec),
also when the run ends out of memory."""

from __future__ import annotations

import pytest

from reclaim_ext.api import RunConfig, run
from reclaim_ext.core.engine import OutOfMemory


def test_accesses_by_kind_add_up():
    r = run(RunConfig(workload="mixed", workload_params=dict(procs=2, accesses=50_000), memory=4096))
    kinds = r["accesses_by_kind"]
    assert set(kinds) == {"anon", "file_mmap", "file_fd", "file_exec"}
    assert sum(kinds.values()) == r["accesses"] == 50_000 and all(kinds.values())


def test_accesses_by_kind_up_to_out_of_memory():
    with pytest.raises(OutOfMemory) as e:
        run(RunConfig(workload="mixed", workload_params=dict(procs=2, accesses=100_000), memory=2048, swap=0))
    r = e.value.result
    assert 0 < r["accesses"] < 100_000 and sum(r["accesses_by_kind"].values()) == r["accesses"]
