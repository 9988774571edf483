"""A senpai-like proactive reclaim controller (`--senpai`, `[[senpai]]` in a machine file).

Senpai (the user-space agent of facebookincubator/senpai) keeps a cgroup's memory just above what
its workload needs: at each interval it reads the
cgroup's memory pressure; below the target pressure it probes, reclaiming a share of the cgroup's
memory that grows with how far below the target the pressure is (up to `max_probe` of its usage:
at 1/`coeff_probe` of the target and below); above the target it backs off and reclaims nothing.
The original moves memory.high; here the lever is memory.reclaim (core.vmscan.memory_reclaim, as
`--proactive` writes it), so backing off only stops the probes, and the interval is counted in
accesses of the trace. The pressure is the memcg's refault stall over the
interval in modelled milliseconds: its workingset refaults (memory.stat `workingset_refault_anon`
and `_file`, the subtree's) times the swap device's and the storage's read latency. That stands in
for PSI's memory "some" time, which the model has no task states for; PSI also counts direct
reclaim and memory.high throttling, which this signal leaves out.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from .memcg import Proactive, check_memcg_name

DEFAULTS = {"interval": 50_000, "pressure": 10.0, "max_probe": 0.01, "coeff_probe": 10.0}


@dataclass
class SenpaiConfig:
    path: str                    # the memcg: "" for the root, else a declared memcg's name (a or a/b)
    interval: int = DEFAULTS["interval"]          # accesses between two ticks
    pressure: float = DEFAULTS["pressure"]        # target refault stall per interval (modelled ms)
    max_probe: float = DEFAULTS["max_probe"]      # the most a tick reclaims, as a share of usage
    coeff_probe: float = DEFAULTS["coeff_probe"]  # max_probe is reached at pressure / coeff_probe
    swappiness: int | None = None                 # memory.reclaim's swappiness= key


def parse_senpai(text: str) -> SenpaiConfig:
    """`PATH[:key=value...]`, keys interval (accesses), pressure (ms), max_probe, coeff_probe,
    swappiness; e.g. `/batch:interval=20000:pressure=5`."""
    what = f"--senpai {text!r}"
    path, *kvs = str(text).split(":")
    path = path.strip()
    path = "" if path in ("", "/") else check_memcg_name(path, what)
    cfg = SenpaiConfig(path)
    for kv in kvs:
        k, sep, v = kv.partition("=")
        k = k.strip()
        if not sep or k not in (*DEFAULTS, "swappiness"):
            raise ConfigError(f"{what}: {kv!r} is not KEY=VALUE with KEY one of "
                              f"{', '.join((*DEFAULTS, 'swappiness'))}")
        try:
            num = float(v.replace("_", "")) if k in ("pressure", "max_probe", "coeff_probe") else int(v.replace("_", ""))
        except ValueError:
            raise ConfigError(f"{what}: {k} {v!r} is not a number") from None
        if k == "swappiness" and not 0 <= num <= 200:
            raise ConfigError(f"{what}: swappiness {num} is not within 0..200")
        if k in ("interval", "pressure", "coeff_probe") and not num > 0:
            raise ConfigError(f"{what}: {k} must be above 0, not {v}")
        if k == "max_probe" and not 0 < num <= 1:
            raise ConfigError(f"{what}: max_probe is a share of usage in (0, 1], not {v}")
        setattr(cfg, k, num)
    return cfg


class Senpai:
    """One controller on one memcg; tick() at every multiple of its interval."""

    def __init__(self, cfg: SenpaiConfig, sim):
        self.cfg = cfg
        self.memcg = sim.memcg_by_path("/" + cfg.path)
        self.last = self.stall_ms(sim)
        self.ticks: list[dict] = []

    def stall_ms(self, sim) -> float:
        """The memcg's refault stall so far (modelled ms): refaults times the read latency."""
        lvs = [self.memcg.lruvecs[n.nid] for n in sim.nodes]
        return sum(lv.hier_stat("workingset_refault_anon") * sim.swap.read_latency_us
                   + lv.hier_stat("workingset_refault_file") * sim.storage.read_latency_us for lv in lvs) / 1000.0

    def tick(self, sim, at: int) -> None:
        """senpai's tick: back off above the target pressure, else probe with memory.reclaim."""
        c = self.cfg
        now = self.stall_ms(sim)
        pressure, self.last = now - self.last, now
        rec = {"at": at, "pressure_ms": pressure, "usage": self.memcg.usage}
        if pressure > c.pressure:
            rec["action"] = "backoff"
        else:
            # the probe grows as the square of how far pressure is below the target (senpai's
            # curve; a pressure of 0 counts as 1 us, as senpai divides by max(integral, 1 us))
            err = c.pressure / max(pressure, 0.001)
            share = min((err / c.coeff_probe) ** 2 * c.max_probe, c.max_probe)
            pages = int(self.memcg.usage * share)
            rec.update(action="probe", requested=pages, reclaimed=0, result=None)
            if pages:
                done = sim.proactive_reclaim(Proactive(at, c.path, pages, c.swappiness), at)
                rec.update(reclaimed=done["reclaimed"], result=done["result"])
        self.ticks.append(rec)

    def result(self) -> dict:
        probes = [t for t in self.ticks if t["action"] == "probe"]
        return {"memcg": self.memcg.path, "config": {k: getattr(self.cfg, k) for k in (*DEFAULTS, "swappiness")},
                "ticks": len(self.ticks), "probes": len(probes), "backoffs": len(self.ticks) - len(probes),
                "requested": sum(t["requested"] for t in probes), "reclaimed": sum(t["reclaimed"] for t in probes),
                "eagain": sum(t["result"] == "EAGAIN" for t in probes), "log": self.ticks}
