"""The senpai-like controller (--senpai PATH[:key=value...], [[senpai]] in a machine file): at every
interval it probes the memcg with memory.reclaim while its refault stall stays below the target,
sized by senpai's curve, and backs off above it."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import invoke
from reclaim_ext.api import RunConfig, run
from reclaim_ext.errors import ConfigError
from reclaim_ext.ext.switch import CutTrace
from reclaim_ext.machine.file import describe, load_machine
from reclaim_ext.machine.senpai import parse_senpai
from reclaim_ext.trace import ArrayTrace
from reclaim_ext.trace.record import make_records

# one process in memcg a on a machine with room: no pressure but what senpai makes
ROOMY = dict(workload="mixed", workload_params=dict(procs=1, accesses=80_000, anon_pages=600, file_pages=3000),
             memory=16384, swap=4096, memcgs=["name=a,pids=0"], check=True)


def go(*senpai, **kw):
    return run(RunConfig(senpai=list(senpai), **{**ROOMY, **kw}))


def usage(res, name="/a"):
    return next(m for m in res["memcgs"] if m["name"] == name)["usage"]


def test_specs():
    c = parse_senpai("a/b:interval=1_000:pressure=2.5:max_probe=0.1:coeff_probe=4:swappiness=0")
    assert (c.path, c.interval, c.pressure, c.max_probe, c.coeff_probe, c.swappiness) == ("a/b", 1000, 2.5, 0.1, 4, 0)
    d = parse_senpai("/")
    assert (d.path, d.interval, d.pressure, d.max_probe, d.coeff_probe) == ("", 50_000, 10.0, 0.01, 10.0)
    for bad in ("a:interval=0", "a:interval=x", "a:pressure=-1", "a:max_probe=1.5", "a:max_probe=0",
                "a:swappiness=201", "a:speed=3", "a:interval", "a//b"):
        with pytest.raises(ConfigError):
            parse_senpai(bad)


def test_ticks_cut_the_trace_at_every_interval():
    rec = make_records(1000)
    tr = CutTrace(ArrayTrace("t", rec), [250, 999], every=(300, 400))
    lens = [len(c) for c in tr.chunks(128)]
    ends = np.cumsum(lens)
    assert ends[-1] == 1000
    for cut in (250, 300, 400, 600, 800, 900, 999):
        assert cut in ends


def test_without_pressure_it_probes_max_probe_of_usage_each_tick():
    base, r = go(), go("/a:interval=10000:max_probe=0.05")
    (s,) = r["senpai"]
    assert s["memcg"] == "/a" and s["ticks"] == 7 and [t["at"] for t in s["log"]] == list(range(10000, 80000, 10000))
    first = s["log"][0]
    assert first["pressure_ms"] == 0 and first["requested"] == int(first["usage"] * 0.05) > 0
    assert first["reclaimed"] >= first["requested"] and first["result"] == "ok"
    assert s["reclaimed"] == sum(t["reclaimed"] for t in s["log"]) > 0
    assert usage(r) < usage(base)
    assert next(m for m in r["memcgs"] if m["name"] == "/a")["memory_stat"]["pgsteal"] > 0
    for t in s["log"]:  # senpai's curve: the square of how far below the target, at most max_probe
        if t["action"] == "probe":
            share = min((10.0 / max(t["pressure_ms"], 0.001) / 10.0) ** 2 * 0.05, 0.05)
            assert t["requested"] == int(t["usage"] * share)


def test_above_the_target_it_backs_off():
    r = go("/a:interval=10000:pressure=0.005:max_probe=0.2")  # a refault or two is above it
    log = r["senpai"][0]["log"]
    backs = [t for t in log if t["action"] == "backoff"]
    assert backs and all(t["pressure_ms"] > 0.005 and "requested" not in t for t in backs)
    assert log[0]["action"] == "probe"  # nothing refaulted yet: it probes first, and the refaults follow


@pytest.mark.parametrize("policy", ["classic", "mglru"])
def test_drivers_agree_under_senpai(policy):
    fast = go("/a:interval=15000:max_probe=0.05", "/:interval=20000", policy=policy, mode="fast")
    exact = go("/a:interval=15000:max_probe=0.05", "/:interval=20000", policy=policy, mode="exact")
    assert fast["vmstat"] == exact["vmstat"] and fast["senpai"] == exact["senpai"]


def test_machine_file_and_errors(tmp_path):
    f = tmp_path / "m.toml"
    f.write_text('memory = "64MiB"\n[[memcg]]\nname = "a"\npids = "0"\n'
                 '[[senpai]]\nmemcg = "/a"\ninterval = 20000\npressure = 5\n')
    m = load_machine(f)
    assert m["senpai"] == ["/a:interval=20000:pressure=5"]
    assert "senpai: /a every 20,000 accesses, pressure 5 ms" in describe(m)
    f.write_text('[[senpai]]\nmemcg = "/a"\nspeed = 1\n')
    with pytest.raises(ConfigError, match=r"\[\[senpai\]\] 1: unknown key 'speed'"):
        load_machine(f)
    r = invoke("run", "-p", "accesses=1000", "--senpai", "/nope")
    assert r.exit_code == 2 and "--senpai: nope: no such memcg" in r.stderr
    r = invoke("run", "--cache", "--capacity", "10", "--policy", "lru", "-p", "accesses=100", "--senpai", "/")
    assert r.exit_code == 2 and "plain-cache mode" in r.stderr
