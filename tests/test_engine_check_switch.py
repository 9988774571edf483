"""The debug switch: the suite runs every simulation with the conservation check on."""

from reclaim_ext.api import RunConfig, run
from reclaim_ext.core.engine import SimConfig


def test_suite_runs_with_conservation_check_on():
    assert SimConfig(memory_pages=1024, swap_pages=0).check
    assert RunConfig().check


def test_run_result_says_the_check_ran():
    r = run(RunConfig(workload="zipf", workload_params={"accesses": 5000, "pages": 2000}, memory=512))
    assert r["conservation_checked"] is True
