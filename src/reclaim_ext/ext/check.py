"""`reclaim-ext check POLICY`: run a reclaim_ext policy through its contract on small workloads
and say exactly what breaks.

Each scenario runs with the conservation check on and reports the policy's exit record and the
core's event counters (stale handles, top-ups, refused pages). A scenario fails when the policy
is ejected, when the core had to top up or ignore its answers, or when two runs that must agree
do not (the same run twice; the fast and exact drivers of the reclaim core).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from .policy import Policy


@dataclass
class Finding:
    scenario: str
    ok: bool
    detail: str


def _cache_scenarios():
    return [
        ("cache: zipf, capacity 1", "zipf", dict(pages=500, accesses=5_000), 1),
        ("cache: zipf, capacity 64", "zipf", dict(pages=2_000, accesses=20_000), 64),
        ("cache: zipf, capacity 1000", "zipf", dict(pages=2_000, accesses=20_000), 1000),
        ("cache: loop larger than the cache", "loop", dict(pages=300, passes=5), 100),
        ("cache: hot set and scans", "scan-hot", dict(hot_pages=100, scan_pages=400, scan_every=1_000,
                                                      accesses=10_000), 200),
    ]


def _reclaim_scenarios():
    return [
        ("reclaim core: zipf read()", "zipf", dict(pages=3_000, accesses=30_000)),
        ("reclaim core: anon, mmap, exec and read() (mixed)", "mixed",
         dict(procs=2, anon_pages=400, files=2, file_pages=600, exec_pages=100, accesses=30_000)),
    ]


def _describe(res: dict) -> tuple[bool, str]:
    ex = res["exit"]
    ev = {k: v for k, v in res.get("events", res.get("ext", {}).get("events", {})).items() if v}
    if ex["kind"] != "DONE":
        where = f" in {ex['hook']}()" if ex.get("hook") else ""
        return False, f"ejected{where} at access {ex['at_access']}: {ex['kind']}: {ex['reason']}"
    bad = {k: v for k, v in ev.items() if k in ("stale_handles", "topped_up", "refused_protected")}
    if bad:
        return False, "the core had to correct its answers: " + ", ".join(f"{k} {v:,}" for k, v in bad.items())
    return True, f"miss ratio {res['miss_ratio']:.4f}"


def check_policy(spec: str) -> list[Finding]:
    """Run every scenario for the policy `spec` (a name, file.py[:Class] or module:Class)."""
    from ..api import RunConfig, run
    from ..policies import get_policy

    if not isinstance(get_policy(spec), Policy):
        raise ConfigError(f"check: {spec} is not a reclaim_ext policy (a subclass of reclaim_ext.ext.Policy)")
    out: list[Finding] = []
    for label, wl, params, cap in _cache_scenarios():
        cfg = RunConfig(policy=spec, workload=wl, workload_params=params, cache=True, capacity=cap, check=True)
        try:
            first = run(cfg)
        except AssertionError as e:
            out.append(Finding(label, False, f"page conservation failed: {e}"))
            continue
        ok, detail = _describe(first)
        out.append(Finding(label, ok, detail))
        if ok:
            again = run(cfg)
            if again["misses"] != first["misses"]:
                out.append(Finding(label + " (run twice)", False,
                                   f"not deterministic: {first['misses']:,} then {again['misses']:,} misses"))
    for label, wl, params in _reclaim_scenarios():
        res = {}
        for mode in ("fast", "exact"):
            cfg = RunConfig(policy=spec, workload=wl, workload_params=params, memory=512, swap=2048, mode=mode,
                            check=True)
            try:
                res[mode] = run(cfg)
            except AssertionError as e:
                res[mode] = None
                out.append(Finding(f"{label} ({mode})", False, f"page conservation failed: {e}"))
        if res.get("fast") is None or res.get("exact") is None:
            continue
        ok, detail = _describe(res["fast"])
        out.append(Finding(label, ok, detail))
        if ok and (res["fast"]["vmstat"], res["fast"]["misses"]) != (res["exact"]["vmstat"], res["exact"]["misses"]):
            out.append(Finding(label + " (fast vs exact driver)", False,
                               f"the drivers disagree ({res['fast']['misses']:,} vs {res['exact']['misses']:,} "
                               "misses): the hooks must give the same result for one call per event and for "
                               "runs of events (and must not depend on anything but their arguments and ctx)"))
    return out
