"""T12 of the safety tests (docs/writing-policies.md, "The safety model"): every shipped policy
under stress.

Each built-in policy, each registered plug-in and each example runs a B1-like workload (Zipf reads
and writes over a file ten times the memcg limits) and a B7-like one (an anonymous working set
larger than memory, with swap), in two memcgs with limits, attached system-wide and to one memcg's
scope, detached and re-attached mid-run, with the conservation check on. Nothing may be ejected,
the run must complete, and the core must not have had to correct the policy's answers. The F1
check: the no-op extension costs nothing in modelled time against the built-in policy.

In CI the runs are short; `-m slow` runs them at 10x the length (a longer simulated time).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reclaim_ext.api import RunConfig, run
from reclaim_ext.ext.loader import registered

EXAMPLES = sorted(str(p) for p in (Path(__file__).parents[1] / "examples").glob("*.py"))
PLUGINS = sorted(registered())
SHIPPED = ["classic", "mglru", *PLUGINS, *EXAMPLES]
MEMCGS = ["name=a,pids=0,max=1MiB", "name=b,pids=1+2,max=2MiB"]


def _b1(accesses: int) -> dict:
    """B1-like: Zipf read()s and write()s over a file ten times the memcg limits, three processes."""
    return dict(workload="mixed", workload_params=dict(procs=3, anon_pages=64, files=2, file_pages=4_000,
                                                       exec_pages=32, accesses=accesses, write_ratio=0.2))


def _b7(accesses: int) -> dict:
    """B7-like: an anonymous working set larger than memory, with fast swap."""
    return dict(workload="zipf", workload_params=dict(pages=3_000, accesses=accesses, kind="anon", write_ratio=0.3),
                swap=4096)


def _ok(res: dict, accesses: int, name: str) -> None:
    assert res["accesses"] == accesses, name
    assert res["conservation_checked"], name
    kinds = {e["kind"] for e in res.get("exits", [])} | ({res["exit"]["kind"]} if res.get("exit") else set())
    assert kinds <= {"DONE", "UNREG"}, (name, res.get("exits"), res.get("exit"))
    events = (res.get("ext") or {}).get("events", {})
    corrected = {k: v for k, v in events.items() if k in ("stale_handles", "refused_protected") and v}
    assert not corrected, (name, corrected)


def _stress(policy: str, accesses: int, workload: dict) -> None:
    builtin = policy in ("classic", "mglru")
    switches = [] if builtin else [f"{accesses // 3}:none", f"{accesses // 2}:{policy}@memcg:/b",
                                   f"{2 * accesses // 3}:{policy}"]
    cfg = RunConfig(policy=policy, memory=1024, memcgs=list(MEMCGS), check=True, switches=switches, seed=3,
                    **{"swap": 0, **workload})
    _ok(run(cfg), accesses, policy)


@pytest.mark.parametrize("policy", SHIPPED, ids=[Path(p).name for p in SHIPPED])
@pytest.mark.parametrize("workload", [_b1, _b7], ids=["B1", "B7"])
def test_t12_every_shipped_policy_under_stress(policy, workload):
    _stress(policy, 6_000, workload(6_000))


@pytest.mark.slow
@pytest.mark.parametrize("policy", SHIPPED, ids=[Path(p).name for p in SHIPPED])
@pytest.mark.parametrize("workload", [_b1, _b7], ids=["B1", "B7"])
def test_t12_every_shipped_policy_under_stress_long(policy, workload):
    _stress(policy, 60_000, workload(60_000))


@pytest.mark.parametrize("workload", [_b1, _b7], ids=["B1", "B7"])
def test_f1_a_noop_extension_costs_no_modelled_time(workload):
    """F1: a no-op extension against the built-in policy: modelled time per I/O within 2 %
    (it defers every decision, so the counters are the built-in policy's)."""
    noop = next(p for p in EXAMPLES if p.endswith("noop.py"))
    kw = dict(memory=1024, memcgs=list(MEMCGS), seed=3, **{"swap": 0, **workload(6_000)})
    base, ext = run(RunConfig(policy="classic", **kw)), run(RunConfig(policy=noop, **kw))
    assert ext["misses"] == base["misses"]
    assert abs(ext["modeled_seconds"] - base["modeled_seconds"]) <= 0.02 * base["modeled_seconds"]


# ---- the chaos mode (T11 across many seeds, in the reclaim core)

CHAOS = '''
import numpy as np
from {module} import {cls} as Base


class Chaos(Base):
    """{cls} with faults injected at random hooks: exceptions, garbage answers, a voluntary exit."""

    name = "chaos"

    def init(self, ctx):
        self._rng = np.random.default_rng({seed})
        super().init(ctx)

    def _fault(self, ctx):
        u = self._rng.random()
        if u < {p} / 3:
            raise RuntimeError("chaos")
        if u < {p} / 2:
            ctx.exit(7, "chaos exit")
        return u < {p}

    def added(self, ctx, handles):
        self._fault(ctx)
        super().added(ctx, handles)

    def accessed(self, ctx, handles):
        self._fault(ctx)
        super().accessed(ctx, handles)

    def removed(self, ctx, handles):
        self._fault(ctx)
        super().removed(ctx, handles)

    def evict(self, ctx, n):
        if self._fault(ctx):
            return [None, [10**12], [-1], [0, 0], list(range(n + 5)), 3.5][int(self._rng.integers(0, 6))]
        return super().evict(ctx, n)
'''


def _chaos(tmp_path, seed: int, p: float = 0.002) -> None:
    module, cls = registered()[("lru", "s3fifo", "2q", "clock")[seed % 4]].split(":")
    path = tmp_path / f"chaos{seed}.py"
    path.write_text(CHAOS.format(module=module, cls=cls, seed=seed, p=p))
    accesses = 8_000
    res = run(RunConfig(policy=str(path), memory=1024, memcgs=list(MEMCGS), check=True, seed=seed, swap=2048,
                        **_b1(accesses)))
    assert res["accesses"] == accesses
    assert res["conservation_checked"]
    exits = res["exits"] or [res["exit"]]
    assert exits and all(e["kind"] in ("ERROR", "ERROR_POLICY", "UNREG_POLICY", "UNREG", "DONE") for e in exits), exits
    ejected = [e for e in exits if e["kind"] != "DONE"]
    for e in ejected:  # each ejection says why: the chaos fault that caused it
        assert "chaos" in e["reason"] or e["kind"] == "ERROR", e


@pytest.mark.parametrize("seed", range(6))
def test_chaos_faults_at_random_hooks_never_break_the_run(tmp_path, seed):
    _chaos(tmp_path, seed)


@pytest.mark.slow
def test_chaos_across_many_seeds(tmp_path):
    for seed in range(6, 106):
        _chaos(tmp_path, seed)


# ---- F2 fidelity (reduced size; `python benchmarks/f2_fidelity.py` runs the full size)


@pytest.fixture(scope="module")
def f2_rows():
    from reclaim_ext.bench.f2 import REDUCED, f2_rows as rows

    root = Path(__file__).parents[1]
    return rows(REDUCED["accesses"], REDUCED["memory"], root / "examples", root.parent / "shared" / "traces")


@pytest.mark.parametrize("builtin", ["classic", "mglru"])
def test_f2_ext_policies_match_the_builtin_ones(f2_rows, builtin):
    """F2: the policy implemented through reclaim_ext against the built-in one on B1, B4 and B7:
    modelled throughput within +-5 % per workload and a harmonic mean >= 0.98; the ext policy is
    never ejected."""
    from reclaim_ext.bench.f2 import HMEAN, PER_WORKLOAD, verdict

    rows = [r for r in f2_rows if r["builtin"] == builtin]
    assert [r["workload"] for r in rows] == ["B1", "B4", "B7"]
    assert all(r["exit"] == "DONE" for r in rows), rows
    for r in rows:
        assert abs(r["ratio"] - 1) <= PER_WORKLOAD, r
    assert verdict(f2_rows, builtin)["hmean"] >= HMEAN
