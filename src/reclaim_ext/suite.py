"""The benchmark suite (`reclaim-ext suite`): named scenarios after the agreed-upon reclaim
benchmarks (B1-B12 of the extension design notes, reduced to simulator sizes with fixed seeds), plus
the MGLRU rough edges found on the list, each a sweep grid (reclaim_ext.sweep) with its primary
metric and what the literature published. `suite run` runs the chosen scenarios on Dask into one
results directory; `suite report` puts our direction next to the published one.

Sizes are relative to memory, as in the benchmark definitions, so the quick suite fits a laptop;
the published numbers are compared in direction and rough size, never in absolute value.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import ConfigError

SHARED_TRACES = Path(__file__).resolve().parents[3] / "shared" / "traces"
SUITE_FILE = "_suite.json"


@dataclass
class Scenario:
    name: str
    title: str
    metric: str                      # the primary metric (a result column): lower is better
    published: str                   # what the literature measured
    expect: tuple[str, str] | None   # (a, b): the published direction, metric(a) <= metric(b)
    grid: dict = field(default_factory=dict)  # grid_from_options arguments
    wss_fractions: tuple[float, ...] = ()     # memory as fractions of the trace's distinct pages


SCENARIOS = [
    Scenario("B1-kv-zipf", "Zipfian key-value reads over a file ten times memory",
             "miss_ratio", "cache_ext: LFU up to +37% hit ratio over classic; MRU worst; MGLRU <= classic on most",
             ("lfu", "classic"),
             dict(policies="classic,mglru,lfu,mru", memories="16MiB", workloads="zipf",
                  params=("pages=40960", "accesses=400000", "alpha=0.99"), seeds="0,1")),
    Scenario("B2-repeated-scan", "10 passes over a file at 1/0.7 of memory",
             "modeled_seconds", "cache_ext: MRU about 2x faster than classic; classic about MGLRU",
             ("mru", "classic"),
             dict(policies="classic,mglru,mru", memories="16MiB", workloads="loop",
                  params=("pages=5851", "passes=10"), seeds="0")),
    Scenario("B7-anon-swap", "an anonymous working set 1.5x memory with fast swap",
             "modeled_seconds", "MGLRU +101-105% ops/s over classic (5.17-rc2, memcached)",
             ("mglru", "classic"),
             dict(policies="classic,mglru", memories="16MiB", workloads="zipf",
                  params=("pages=6144", "accesses=400000", "kind=anon", "alpha=0.8"), seeds="0,1", swap="64MiB")),
    Scenario("B8-random-read", "buffered random reads over a file set of 2x memory (fio doublemem)",
             "miss_ratio", "MGLRU +47-49% IOPS over classic (tiers)",
             ("mglru", "classic"),
             dict(policies="classic,mglru", memories="16MiB", workloads="zipf",
                  params=("pages=8192", "accesses=400000", "alpha=0.2"), seeds="0,1")),
    Scenario("B12-cloudphysics", "the CloudPhysics block trace at 1% and 10% of its distinct pages",
             "miss_ratio", "libCacheSim: S3-FIFO lowest mean miss ratio on 10 of 14 datasets",
             ("s3fifo", "lru"),
             dict(policies="classic,mglru,lru,s3fifo", traces=str(SHARED_TRACES / "cloudPhysicsIO.oracleGeneral.bin"),
                  trace_format="oraclegeneral", seeds="0"),
             wss_fractions=(0.01, 0.1)),
    Scenario("MGLRU-read-shift", "read()-only working-set shift (the model's MGLRU far behind classic, docs/mglru.md)",
             "miss_ratio", "mailing list: MGLRU under-protects file cache that is only read(); not measured",
             ("classic", "mglru"),
             dict(policies="classic,mglru", memories="16MiB", workloads="shift", seeds="0")),
]
BY_NAME = {s.name: s for s in SCENARIOS}


def select(names) -> list[Scenario]:
    out = []
    for n in names or [s.name for s in SCENARIOS]:
        if n not in BY_NAME:
            raise ConfigError(f"suite: unknown scenario {n!r} (known: {', '.join(BY_NAME)})")
        out.append(BY_NAME[n])
    return out


def _distinct_pages(path: str, fmt: str) -> int:
    from .trace import open_trace

    seen = [np.unique(c["page"]) for c in open_trace(path, fmt).chunks()]
    return int(len(np.unique(np.concatenate(seen)))) if seen else 0


def cells(scenarios: list[Scenario]) -> list[dict]:
    """Every scenario's cells, each tagged with its scenario's name."""
    from .sweep import grid_from_options

    out = []
    for sc in scenarios:
        g = dict(sc.grid)
        if sc.wss_fractions:
            path = g["traces"]
            if not os.path.exists(path):
                raise ConfigError(f"suite: {sc.name} needs the shared trace {path}")
            n = _distinct_pages(path, g["trace_format"])
            g["memories"] = ",".join(str(max(64, int(n * f))) for f in sc.wss_fractions)
        for c in grid_from_options(**g).cells():
            c["suite_scenario"] = sc.name
            out.append(c)
    return out


def write_meta(directory: str | os.PathLike, scenarios: list[Scenario]) -> None:
    Path(directory).mkdir(parents=True, exist_ok=True)
    (Path(directory) / SUITE_FILE).write_text(json.dumps([asdict(s) for s in scenarios], indent=1))


def summary(directory: str | os.PathLike) -> list[dict]:
    """Per scenario: each policy's mean primary metric, the winner, the published direction and
    whether ours agrees."""
    from . import results

    meta = json.loads((Path(directory) / SUITE_FILE).read_text())
    df = results.load(directory)
    df = df[df["status"] == "ok"]
    out = []
    for s in meta:
        rows = df[df["suite_scenario"] == s["name"]]
        means = {p: float(g[s["metric"]].mean()) for p, g in rows.groupby("policy")}
        winner = min(means, key=means.get) if means else None
        agree = None
        if s["expect"] and all(p in means for p in s["expect"]):
            a, b = s["expect"]
            agree = means[a] <= means[b]
        out.append({"scenario": s["name"], "title": s["title"], "metric": s["metric"], "means": means,
                    "winner": winner, "published": s["published"], "expect": s["expect"], "agrees": agree})
    return out


def summary_markdown(rows: list[dict]) -> str:
    lines = ["| scenario | metric | results (mean; lower is better) | winner | published | ours agrees |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        res = ", ".join(f"{p} {v:.4g}" for p, v in sorted(r["means"].items(), key=lambda kv: kv[1]))
        exp = f"{r['expect'][0]} <= {r['expect'][1]}" if r["expect"] else "-"
        agree = "-" if r["agrees"] is None else ("yes" if r["agrees"] else "no")
        lines.append(f"| {r['scenario']} | {r['metric']} | {res} | {r['winner']} | {r['published']} ({exp}) | {agree} |")
    return "\n".join(lines) + "\n"


def compare(old: str | os.PathLike, new: str | os.PathLike, min_change: float = 0.01) -> list[dict]:
    """Each scenario and policy of two suite runs: the primary metric's mean in each, the
    change, and whether it is beyond the noise: larger than twice the larger spread over seeds
    (the standard deviation of the per-seed means) and than `min_change` (relative) at least."""
    from . import results

    meta = {s["name"]: s for s in json.loads((Path(new) / SUITE_FILE).read_text())}
    frames = []
    for d in (old, new):
        df = results.load(d)
        frames.append(df[df["status"] == "ok"])
    out = []
    for name, s in meta.items():
        m = s["metric"]
        a, b = (f[f["suite_scenario"] == name] for f in frames)
        for pol in sorted(set(a["policy"]) & set(b["policy"])):
            pa, pb = (x[x["policy"] == pol].groupby("seed")[m].mean() for x in (a, b))
            ma, mb = float(pa.mean()), float(pb.mean())
            noise = 2 * max(float(pa.std(ddof=0)), float(pb.std(ddof=0)))
            change = mb - ma
            beyond = abs(change) > max(noise, min_change * abs(ma))
            verdict = "same" if not beyond else ("better" if change < 0 else "worse")  # lower is better
            out.append({"scenario": name, "policy": pol, "metric": m, "old": ma, "new": mb, "change": change,
                        "noise": noise, "verdict": verdict})
    return out


def compare_markdown(rows: list[dict]) -> str:
    lines = ["| scenario | policy | metric | old | new | change | noise (2 sd over seeds) | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rel = f" ({100 * r['change'] / r['old']:+.1f} %)" if r["old"] else ""
        lines.append(f"| {r['scenario']} | {r['policy']} | {r['metric']} | {r['old']:.4g} | {r['new']:.4g} | "
                     f"{r['change']:+.4g}{rel} | {r['noise']:.3g} | {r['verdict']} |")
    return "\n".join(lines) + "\n"
