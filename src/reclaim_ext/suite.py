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
    metric: str                      # the primary metric (a result column): lower is better, unless higher_is_better
    published: str                   # what the literature measured
    expect: tuple[str, str] | None   # (a, b): the published direction, a at least as good as b
    grid: dict = field(default_factory=dict)  # grid_from_options arguments
    wss_fractions: tuple[float, ...] = ()     # memory as fractions of the trace's distinct pages
    recipe: str | None = None                 # replay this recorded recipe (reclaim_ext.record.recipes), cached
    default: bool = True                      # run by `suite run` without names
    higher_is_better: bool = False            # the metric is one to maximise (mem_available)
    variants: tuple[tuple[str, str], ...] = ()  # more cells: (policy, mechanism set), e.g. ("mglru", "-memcg_lru")


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
    Scenario("B3-get-scan", "Zipfian GETs over a store twice memory, one range SCAN per 2,000 GETs (99.95/0.05)",
             "miss_ratio", "cache_ext: a GET-favouring policy +70% GET throughput, -57% GET P99, -18% SCAN; "
             "fadvise about no help (our stand-in: S3-FIFO's scan-resistant small queue)",
             ("s3fifo", "classic"),
             dict(policies="classic,mglru,s3fifo", memories="16MiB", workloads="scan-hot",
                  params=("hot_pages=8192", "hot_dist=zipf", "alpha=0.99", "scan_pages=1024", "scan_every=2000",
                          "accesses=400000"), seeds="0,1")),
    Scenario("B4-twitter", "Twitter key-value cluster 52 (first 1M requests) at 10% of its distinct objects",
             "miss_ratio", "cache_ext: no single winner; LFU +13%/+34% hit ratio over classic on cluster 52, "
             "LHD ahead on 34, MGLRU best on 17/18",
             ("lfu", "classic"),
             dict(policies="classic,mglru,lfu,s3fifo", traces=str(SHARED_TRACES / "twitter_cluster52.csv.zst"),
                  trace_format="csv", seeds="0"),
             wss_fractions=(0.1,)),
    Scenario("B5-two-tenants", "B1-C (Zipfian reads) in a 12 MiB memcg beside B2 (a repeated scan) in an 8 MiB one",
             "modeled_seconds", "cache_ext: per-memcg policies +49.8% / +79.4% for the two tenants; a global policy "
             "hurts one of them (per-tenant counters: the memcg_a_* and memcg_b_* columns)",
             ("lfu@memcg:/a+mru@memcg:/b", "classic"),
             dict(policies="classic,mglru,lfu,mru,lfu@memcg:/a+mru@memcg:/b", memories="24MiB", workloads="tenants",
                  params=("a=zipf pages=20480 accesses=300000 alpha=0.99", "b=loop pages=2926 passes=10"),
                  seeds="0", memcgs=("name=a,pids=0,max=12MiB", "name=b,pids=1,max=8MiB"))),
    Scenario("B6-compaction-reads", "foreground Zipfian reads through a mapping beside background sequential "
             "read()s of fresh data (LSM compaction)",
             "vmstat_pgmajfault", "cache_ext: an admission filter for compaction reads cuts foreground P99 "
             "2.61 -> 2.16 ms (-17%) (our stand-in: S3-FIFO's small queue; the metric: the foreground's page "
             "faults, as the background's read()s take none)",
             ("s3fifo", "classic"),
             dict(policies="classic,mglru,s3fifo", memories="16MiB", workloads="tenants",
                  params=("a=zipf pages=3072 accesses=300000 kind=mmap alpha=0.9",
                          "b=loop pages=60000 passes=1 kind=file"), seeds="0,1")),
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
    Scenario("B9-anon-and-io-tenants", "an anonymous Zipfian tenant (memcached-like) beside a buffered random-read "
             "tenant (fio-like), each in its own memcg, under node pressure",
             "modeled_seconds", "MGLRU series on 5.18-rc1: memcached +229-233%, fio +59-61% over 5.18-rc1 (its "
             "patch 'optimize multiple memcgs' +132-136% memcached over the patches before it; the memcg LRU "
             "that replaced it in 6.3 is `mglru -memcg_lru` against `mglru`)",
             ("mglru", "classic"),
             dict(policies="classic,mglru", memories="16MiB", workloads="tenants",
                  params=("a=zipf pages=6144 accesses=300000 kind=anon alpha=0.8",
                          "b=zipf pages=8192 accesses=300000 alpha=0.2"),
                  seeds="0,1", swap="64MiB", memcgs=("name=a,pids=0", "name=b,pids=1")),
             variants=(("mglru", "-memcg_lru"),)),
    Scenario("B10-stutterp", "an anonymous hog and a file copy beside a small mapped latency probe, each in "
             "its own memcg (mmtests stutterp)",
             "memcg_probe_pgmajfault", "mmtests config-pagereclaim-stutterp: regression-only, no published values "
             "(the probe's stalls; allocstall, direct and kswapd reclaim in the vmstat_* columns)",
             None,
             dict(policies="classic,mglru", memories="16MiB", workloads="tenants",
                  params=("a=loop pages=6144 passes=3 kind=anon write_ratio=1.0",
                          "b=loop pages=8192 passes=1 kind=file write_ratio=0.5",
                          "c=zipf pages=512 accesses=40000 kind=mmap alpha=0.6"),
                  seeds="0,1", swap="64MiB",
                  memcgs=("name=hog,pids=0", "name=copy,pids=1", "name=probe,pids=2"))),
    Scenario("B11-app-cycling", "eight apps (executable, mapped resources, heap) launched and used in turn, "
             "three times memory in all, with swap",
             "modeled_seconds", "Android fleet: MGLRU -85% low-memory kills (p75), -18% cold-start launch time (p50)",
             ("mglru", "classic"),
             dict(policies="classic,mglru", memories="24MiB", workloads="apps",
                  params=("apps=8", "launches=40"), seeds="0,1", swap="32MiB")),
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
    Scenario("MGLRU-underprotected-file", "B11's app cycling with the apps' resources read() instead of mapped "
             "(page cache reached only through read())",
             "vmstat_workingset_refault_file", "mm/mglru: fix underprotected page cache (081488051d28, Dec 2023): "
             "read() folios start in the oldest generation; on Android launching 55 apps the fix cut "
             "workingset_refault_file by 8%",
             ("classic", "mglru"),
             dict(policies="classic,mglru", memories="24MiB", workloads="apps",
                  params=("apps=8", "launches=40", "res_kind=file"), seeds="0,1", swap="32MiB")),
    Scenario("MGLRU-swappiness-200", "mixed anon and file at swappiness 200 (anon first, by the knob)",
             "vmstat_workingset_refault_file", "HONOR, LSF/MM/BPF 2026: under MGLRU swappiness 200 and ANON_ONLY do not "
             "fix the anon/file imbalance (anon stays in the youngest generations, file is over-reclaimed)",
             ("classic", "mglru"),
             dict(policies="classic,mglru", memories="32MiB", workloads="mixed", params=("accesses=500000",),
                  seeds="0,1", swap="128MiB", swappiness=200)),
    Scenario("MGLRU-bimodal", "mixed anon and file at swappiness 100: where each type's "
             "pages sit among the generations, and the memory left available",
             "mem_available", "HONOR, LSF/MM/BPF 2026: under MGLRU anon stays in the youngest generations while file "
             "spreads over all of them and is over-reclaimed; a 16 GB media workload keeps MemAvailable about 6,060 MB "
             "under MGLRU against 6,982 MB legacy (-13%) (the distribution: the lru_gen_*_young_share columns)",
             ("classic", "mglru"),
             dict(policies="classic,mglru", memories="32MiB", workloads="mixed", params=("accesses=500000",),
                  seeds="0,1", swap="128MiB", swappiness=100),
             higher_is_better=True),
    # recorded real programs (docs/traces.md, "Recipes"): recorded once under valgrind into the cache
    # (~/.cache/reclaim-ext/recipes) on the first run that needs them (minutes each), replayed at a
    # quarter and at half of their distinct pages; run when named (`suite run 'REC-*'`), not by default.
    # Swap 64 MiB: a trace has no exits, so the anon pages of processes that ended stay (build: 3,395
    # anon pages of 5 processes ran out of memory at 4 MiB with 4 MiB of swap)
    *(Scenario(f"REC-{name}", f"recorded real program: {what}", "miss_ratio",
               "none: a recorded program, compared between policies only", None,
               dict(policies="classic,mglru", trace_format="native", seeds="0", swap="64MiB"),
               wss_fractions=(0.25, 0.5), recipe=name, default=False)
      for name, what in (("xz", "xz -1 compressing 512 KiB of text"),
                         ("sqlite", "sqlite3 building, indexing and querying a 20,000-row table"),
                         ("build", "gcc -O1 compiling a small C file (gcc, cc1, as, collect2, ld)"),
                         ("python", "a Python program filling a dict of 20,000 lists"))),
]
BY_NAME = {s.name: s for s in SCENARIOS}


def select(names) -> list[Scenario]:
    """The scenarios named (shell patterns allowed: 'REC-*'), each once; without names, the default
    ones (all but the recorded programs)."""
    import fnmatch

    if not names:
        return [s for s in SCENARIOS if s.default]
    out = []
    for n in names:
        hits = fnmatch.filter(BY_NAME, n) if any(ch in n for ch in "*?[") else [n] if n in BY_NAME else []
        if not hits:
            raise ConfigError(f"suite: unknown scenario {n!r} (known: {', '.join(BY_NAME)})")
        out.extend(BY_NAME[h] for h in hits if BY_NAME[h] not in out)
    return out


def _distinct_pages(path: str, fmt: str) -> int:
    """Distinct pages as the simulator's folios: an anonymous page is (pid, page), a file page
    (file, page) whatever the kind of access reached it. Keys are packed into 64 bits (anon flag,
    19-bit pid or file, 44-bit page) when they fit, else compared as (anon, owner, page) rows."""
    from .trace import Kind, open_trace

    packed, rows = [], []
    for c in open_trace(path, fmt).chunks(1 << 20):
        anon = c["kind"] == Kind.ANON
        owner = np.where(anon, c["pid"].astype(np.uint64), c["file"].astype(np.uint64))
        page = c["page"].astype(np.uint64)
        if (owner < (1 << 19)).all() and (page < (1 << 44)).all():
            packed.append(np.unique((anon.astype(np.uint64) << np.uint64(63)) | (owner << np.uint64(44)) | page))
        else:
            k = np.zeros(len(c), dtype=[("anon", "u1"), ("owner", "<u8"), ("page", "<u8")])
            k["anon"], k["owner"], k["page"] = anon, owner, page
            rows.append(np.unique(k))
    if rows:  # unpack the packed keys into rows, to count both together
        for p in packed:
            k = np.zeros(len(p), dtype=rows[0].dtype)
            k["anon"] = p >> np.uint64(63)
            k["owner"] = (p >> np.uint64(44)) & np.uint64((1 << 19) - 1)
            k["page"] = p & np.uint64((1 << 44) - 1)
            rows.append(k)
        return int(len(np.unique(np.concatenate(rows))))
    return int(len(np.unique(np.concatenate(packed)))) if packed else 0


def cells(scenarios: list[Scenario], echo=None, trace: str | None = None, trace_format: str | None = None,
          quick: bool = False) -> list[dict]:
    """Every scenario's cells, each tagged with its scenario's name. A recipe scenario's trace is
    recorded into the cache first if it is not there (`echo(text)` is told). `trace` replays
    another file in the scenarios that replay a shared trace (B4 on another Twitter cluster, B12 on
    another block trace), in `trace_format` (default: the scenario's own), memory again as fractions
    of its distinct pages; naming a scenario that replays no trace with it is an error. `quick`: each
    scenario with its first seed only."""
    from .sweep import grid_from_options

    if trace is not None:
        other = [s.name for s in scenarios if not s.wss_fractions or s.recipe]
        if other:
            raise ConfigError(f"suite: --trace {trace}: {', '.join(other)} {'replays' if len(other) == 1 else 'replay'} "
                              "no shared trace (the scenarios "
                              f"that do: {', '.join(s.name for s in SCENARIOS if s.wss_fractions and not s.recipe)})")
        if not os.path.isfile(trace):
            raise ConfigError(f"suite: --trace {trace}: no such file")
    out = []
    for sc in scenarios:
        g = dict(sc.grid)
        if quick:
            g["seeds"] = g.get("seeds", "0").split(",")[0]
        if trace is not None:
            g["traces"] = os.path.abspath(trace)
            g["trace_format"] = trace_format or g["trace_format"]
        if sc.recipe:
            from .record.recipes import cached_trace

            g["traces"] = cached_trace(sc.recipe, echo=echo)
        if sc.wss_fractions:
            path = g["traces"]
            if not os.path.exists(path):
                raise ConfigError(f"suite: {sc.name} needs the shared trace {path}")
            n = _distinct_pages(path, g["trace_format"])
            g["memories"] = ",".join(str(max(64, int(n * f))) for f in sc.wss_fractions)
        grids = [g] + [dict(g, policies=pol, mechanisms=(mech,)) for pol, mech in sc.variants]
        for c in (c for grid in grids for c in grid_from_options(**grid).cells()):
            c["suite_scenario"] = sc.name
            out.append(c)
    return out


def write_meta(directory: str | os.PathLike, scenarios: list[Scenario]) -> None:
    Path(directory).mkdir(parents=True, exist_ok=True)
    (Path(directory) / SUITE_FILE).write_text(json.dumps([asdict(s) for s in scenarios], indent=1))


def _variants(df):
    """Each row's variant: its policy, with its mechanism set when it has one ('mglru -bloom'), so
    a scenario with a mechanism axis does not average the sets together."""
    if "mechanisms" not in df:
        return df["policy"]
    mech = df["mechanisms"].fillna("")
    return df["policy"].where(mech == "", df["policy"] + " " + mech)


def summary(directory: str | os.PathLike) -> list[dict]:
    """Per scenario: each variant's (policy's, or policy with a mechanism set's) mean primary
    metric, the winner, the published direction and whether ours agrees."""
    from . import results

    meta = json.loads((Path(directory) / SUITE_FILE).read_text())
    df = results.load(directory)
    df = df[df["status"] == "ok"]
    if len(df):
        df = df.assign(variant=_variants(df))
    out = []
    for s in meta:
        rows = df[df["suite_scenario"] == s["name"]]
        means = {p: float(g[s["metric"]].mean()) for p, g in rows.groupby("variant")}
        higher = bool(s.get("higher_is_better"))
        winner = (max if higher else min)(means, key=means.get) if means else None
        agree = None
        if s["expect"] and all(p in means for p in s["expect"]):
            a, b = s["expect"]
            agree = means[a] >= means[b] if higher else means[a] <= means[b]
        out.append({"scenario": s["name"], "title": s["title"], "metric": s["metric"], "means": means,
                    "winner": winner, "published": s["published"], "expect": s["expect"], "agrees": agree,
                    "higher_is_better": higher})
    return out


def summary_markdown(rows: list[dict]) -> str:
    lines = ["| scenario | metric | results (mean, best first) | winner | published | ours agrees |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        higher = r.get("higher_is_better", False)
        res = ", ".join(f"{p} {v:.4g}" for p, v in sorted(r["means"].items(), key=lambda kv: kv[1], reverse=higher))
        exp = f"{r['expect'][0]} {'>=' if higher else '<='} {r['expect'][1]}" if r["expect"] else "-"
        agree = "-" if r["agrees"] is None else ("yes" if r["agrees"] else "no")
        metric = f"{r['metric']} (higher is better)" if higher else r["metric"]
        lines.append(f"| {r['scenario']} | {metric} | {res} | {r['winner']} | {r['published']} ({exp}) | {agree} |")
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
        df = df[df["status"] == "ok"]
        frames.append(df.assign(variant=_variants(df)) if len(df) else df.assign(variant=df.get("policy")))
    out = []
    for name, s in meta.items():
        m = s["metric"]
        a, b = (f[f["suite_scenario"] == name] for f in frames)
        for pol in sorted(set(a["variant"]) & set(b["variant"])):
            pa, pb = (x[x["variant"] == pol].groupby("seed")[m].mean() for x in (a, b))
            ma, mb = float(pa.mean()), float(pb.mean())
            noise = 2 * max(float(pa.std(ddof=0)), float(pb.std(ddof=0)))
            change = mb - ma
            beyond = abs(change) > max(noise, min_change * abs(ma))
            better = change > 0 if s.get("higher_is_better") else change < 0
            verdict = "same" if not beyond else ("better" if better else "worse")
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
