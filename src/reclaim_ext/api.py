"""The library entry point: describe a run, build its trace and machine, run it, get a result."""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .core.engine import OutOfMemory, SimConfig, Simulator, default_check
from .core.stats import CostModel, si_mem_available
from .errors import ConfigError, TraceError
from .machine.folio import LRU_FILE
from .machine.node import SwapDevice, check_swap_device, check_swappiness, check_zram_ratio, parse_swapon
from .machine.units import parse_size
from .policies import BUILTIN, get_policy, plugin_mechanisms
from .trace import Trace, make_workload, open_trace
from .trace.base import DEFAULT_CHUNK

DEFAULT_MEMORY = "64MiB"


@dataclass
class RunConfig:
    """Everything that defines one run. Sizes (memory, swap, capacity) are 4 KiB pages or size
    strings as on the command line ("64MiB", "2GiB", "1000"), turned into pages on construction and
    by validate(); a bad one is a ConfigError, which is a ValueError (machine.units.parse_size)."""

    policy: str = "classic"
    workload: str | None = "zipf"
    workload_params: dict[str, Any] = field(default_factory=dict)
    trace: str | None = None            # a trace file replaces the workload
    trace_format: str | None = None
    trace_opts: dict[str, Any] = field(default_factory=dict)
    memory: int = parse_size(DEFAULT_MEMORY)
    swap: int | None = None             # None: as large as memory
    swappiness: int = 60
    swap_device: str = "zram"           # machine.node.SWAP_DEVICES: zram or disk (a swap cache on swap-in)
    zram_ratio: float = 0.0             # zram's compression ratio: its pool takes node memory (0: not modelled)
    # several swap devices in swapon order, in place of swap / swap_device / zram_ratio:
    # "kind=zram,size=64MiB,prio=100" specs (--swapon) or machine.node.SwapDevice
    swap_devices: list = field(default_factory=list)
    seed: int = 0
    mode: str = "fast"
    check: bool = field(default_factory=default_check)
    min_free_kbytes: int | None = None
    watermark_scale_factor: int = 10
    mechanisms: str | None = None       # "+ptwalk,-bloom": switch the policy's mechanisms on/off
    min_ttl_ms: float = 0               # MGLRU's /sys/kernel/mm/lru_gen/min_ttl_ms (0: off)
    cache: bool = False                 # plain-cache mode (reclaim_ext.ext.cache): no reclaim core
    capacity: int | None = None         # pages the plain cache holds
    switches: list[str] = field(default_factory=list)  # "AT:POLICY[@SCOPE]" / "AT:none[@SCOPE]"
    scope: str = "system"               # where --policy (a reclaim_ext policy) attaches: system, node:N, memcg:/a
    # memory cgroups: "name=a,pids=1-3,max=32MiB" specs or machine.memcg.MemcgConfig (--memcg)
    memcgs: list = field(default_factory=list)
    memory_recursiveprot: bool = False  # cgroup2 mount option: a parent's unclaimed min/low shared by its children
    # writes to memory.reclaim during the run: "AT:PATH:SIZE[:swappiness=N]" (--proactive)
    proactive: list = field(default_factory=list)
    # senpai-like controllers probing memcgs with memory.reclaim: "PATH[:key=value...]" (--senpai)
    senpai: list = field(default_factory=list)
    # NUMA nodes: a number (memory split evenly, --nodes) or each node's size (a machine file)
    nodes: Any = 1
    # tasks' memory policies: "pids=1-3,node=1[,bind]" or machine.numa.NumaPolicy (--numa)
    numa: list = field(default_factory=list)
    tiers: list = field(default_factory=list)  # each node's memory tier: dram, cxl or pmem (--tiers)
    # each node's watermarks as (min, low, high) pages, replacing the min_free_kbytes formula (empty:
    # the formula); validate's global path gives a guest zone's own (validate/globalpath.py)
    node_watermarks: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.parse_sizes()

    def parse_sizes(self) -> None:
        """memory, swap and capacity as page counts (size strings parsed as the CLI parses them)."""
        self.memory = parse_size(self.memory, "memory")
        if self.swap is not None:
            self.swap = parse_size(self.swap, "swap")
        if self.capacity is not None:
            self.capacity = parse_size(self.capacity, "capacity")
        if isinstance(self.nodes, (list, tuple)):
            self.nodes = [parse_size(n, f"node {i} memory") for i, n in enumerate(self.nodes)]

    def node_sizes(self) -> list[int]:
        """Each node's memory in pages (one node: [memory])."""
        from .machine.numa import split_memory

        if isinstance(self.nodes, list):
            if sum(self.nodes) != self.memory:
                raise ConfigError(f"nodes: their sizes add up to {sum(self.nodes)} pages, not the memory "
                                  f"({self.memory} pages)")
            return list(self.nodes)
        if isinstance(self.nodes, bool) or not isinstance(self.nodes, int) or not 1 <= self.nodes <= 64:
            raise ConfigError(f"--nodes: {self.nodes!r} is not a number of nodes from 1 to 64")
        return split_memory(self.memory, self.nodes)

    def _check_nodes(self) -> None:
        """--nodes and --numa: sizes, node numbers, and what runs on one node only."""
        from .machine.numa import check_tiers, zonelists

        sizes = self.node_sizes()
        if min(sizes) < 64:
            raise ConfigError(f"nodes: a node of {min(sizes)} pages is too small (each needs at least 64 pages)")
        check_tiers(list(self.tiers), len(sizes))
        zonelists(len(sizes), list(self.numa))  # bad --numa specs, nodes that do not exist
        if len(sizes) > 1:
            if self.cache:
                raise ConfigError("--nodes: plain-cache mode (--cache) has no nodes")
            if self.zram_ratio:
                raise ConfigError("--zram-ratio: zram's pool memory is modelled on a one-node machine only")

    def policy_options(self) -> dict[str, Any]:
        """Keyword options for the policy's constructor (MGLRU: min_ttl_ms)."""
        if not isinstance(self.min_ttl_ms, (int, float)) or not math.isfinite(self.min_ttl_ms):
            raise ConfigError(f"min_ttl_ms: {self.min_ttl_ms!r} is not a finite number of milliseconds")
        if self.min_ttl_ms < 0:
            raise ConfigError(f"min_ttl_ms: {self.min_ttl_ms:g} must not be negative")
        cls = BUILTIN.get(self.policy)
        if cls is not None and policy_has_option(cls, "min_ttl_ms"):
            return {"min_ttl_ms": self.min_ttl_ms}
        if self.min_ttl_ms:
            having = sorted(n for n, c in BUILTIN.items() if policy_has_option(c, "min_ttl_ms"))
            which = f"the {having[0]} policy has" if len(having) == 1 else f"the {', '.join(having)} policies have"
            raise ConfigError(f"min_ttl_ms: only {which} min_ttl_ms")
        return {}

    def validate(self) -> None:
        self.parse_sizes()
        if self.mode not in ("fast", "exact"):
            raise ConfigError(f"mode: {self.mode!r} is not fast or exact")
        check_swappiness(self.swappiness)
        if self.memory < 64:
            raise ConfigError(f"memory: {self.memory} pages is too small (need at least 64 pages = 256 KiB)")
        if self.swap is not None and self.swap < 0:
            raise ConfigError("swap: must not be negative")
        check_swap_device(self.swap_device)
        check_zram_ratio(self.zram_ratio, self.swap_device)
        self.swap_devices = [d if isinstance(d, SwapDevice) else parse_swapon(d) for d in self.swap_devices]
        if self.swap_devices and (self.swap is not None or self.zram_ratio or self.swap_device != "zram"):
            raise ConfigError("swap devices (--swapon): give each device's size, kind and ratio there, not with "
                              "--swap, --swap-device or --zram-ratio")
        if self.trace is not None and not self.trace_format:
            raise ConfigError("--trace needs --format (oraclegeneral, csv, vscsi or native)")
        if self.min_free_kbytes is not None and self.min_free_kbytes // 4 >= self.memory:
            raise ConfigError(f"--min-free-kbytes {self.min_free_kbytes}: "
                              f"{'exceeds' if self.min_free_kbytes > self.memory * 4 else 'equals'} the machine's "
                              f"memory ({self.memory * 4} kB, --memory): the min watermark would leave no page "
                              "to allocate")
        if not 1 <= self.watermark_scale_factor <= 3000:
            raise ConfigError(f"watermark_scale_factor: {self.watermark_scale_factor} is out of range 1..3000")
        policy = self.make_policy()  # unknown policy, bad --mechanism spec, bad min_ttl_ms
        self.memcg_plan()  # bad --memcg specs
        self._check_nodes()
        from .ext.policy import Policy

        if self.cache:
            if self.capacity is None or self.capacity < 1:
                raise ConfigError("--cache needs --capacity PAGES (at least 1)")
            if not isinstance(policy, Policy):
                from .ext.loader import registered

                raise ConfigError(f"--cache: {self.policy} is a reclaim_ops policy of the reclaim core; "
                                  "plain-cache mode runs reclaim_ext policies "
                                  f"({', '.join(sorted(registered()))}, or your own)")
        elif self.capacity is not None:
            raise ConfigError("--capacity applies to --cache (plain-cache mode); use --memory otherwise")
        for sw in self.switch_plan():
            if self.cache and sw.policy is None and sw.written != "none":
                raise ConfigError(f"switch: {sw.at}:{sw.written}: {sw.written} is the reclaim core's built-in policy; "
                                  "plain-cache mode (--cache) has no reclaim core: switch to a reclaim_ext policy, "
                                  "or to 'none' (the cache's fallback LRU)")
            if sw.policy is not None and not isinstance(get_policy(sw.policy), Policy):
                raise ConfigError(f"switch: {sw.policy} is not a reclaim_ext policy (switch to one, or to none)")
        if self.switches and not self.cache and not (isinstance(policy, Policy) or self.policy == "classic"):
            raise ConfigError(f"switch: policies switch on top of classic; {self.policy} cannot be switched")
        self._check_scopes(policy)
        for flag, given, plan in (("--proactive", self.proactive, self.proactive_plan),
                                  ("--senpai", self.senpai, self.senpai_plan)):
            if not given:
                continue
            if self.cache:
                raise ConfigError(f"{flag}: plain-cache mode (--cache) has no memcgs to reclaim from")
            known = {m.name for m in self.memcg_plan()}
            for p in plan():
                if p.path and p.path not in known:
                    raise ConfigError(f"{flag}: {p.path}: no such memcg (declare it with --memcg name=...)")

    def _check_scopes(self, policy) -> None:
        """--scope and the @SCOPE of switches name the system, a node of the machine or a declared memcg."""
        from .ext.adapter import SYSTEM, parse_scope
        from .ext.policy import Policy

        scopes = [parse_scope(self.scope)] + [parse_scope(sw.scope) for sw in self.switch_plan()]
        if parse_scope(self.scope) != SYSTEM and not isinstance(policy, Policy):
            raise ConfigError(f"--scope: {self.policy} is a built-in policy; scopes are for reclaim_ext policies")
        if self.cache and any(sc != SYSTEM for sc in scopes):
            raise ConfigError("--scope: plain-cache mode (--cache) has one scope, the cache")
        known = {"memcg:/"} | {"memcg:/" + m.name.strip("/") for m in self.memcg_plan()}
        for sc in scopes:
            n = len(self.node_sizes())
            if sc.startswith("node:") and int(sc[5:]) >= n:
                raise ConfigError(f"--scope: {sc}: no such node (the simulated machine has "
                                  f"{'node 0 only' if n == 1 else f'nodes 0-{n - 1}'})")
            if sc.startswith("memcg:") and sc not in known:
                raise ConfigError(f"--scope: {sc}: no such memcg (declare it with --memcg name=...)")

    def memcg_plan(self):
        """The memcgs of the run, checked, parents first (machine.memcg.resolve_memcgs)."""
        from .machine.memcg import resolve_memcgs

        plan = resolve_memcgs(list(self.memcgs))
        if plan and self.cache:
            raise ConfigError("--memcg: plain-cache mode (--cache) has no memcgs")
        return plan

    def proactive_plan(self):
        """The parsed --proactive entries, in access order."""
        from .machine.memcg import parse_proactive

        return sorted((parse_proactive(p) for p in self.proactive), key=lambda p: p.at)

    def senpai_plan(self):
        """The parsed --senpai controllers."""
        from .machine.senpai import parse_senpai

        return [parse_senpai(p) for p in self.senpai]

    def switch_plan(self):
        """The parsed --switch entries, in access order."""
        from .ext.switch import parse_switch

        return sorted((parse_switch(s) for s in self.switches), key=lambda s: s.at)

    def make_policy(self):
        """A new policy instance for this run (mechanisms and options applied)."""
        return get_policy(self.policy, self.mechanisms, **self.policy_options())


def policy_has_option(cls, name: str) -> bool:
    """Whether the policy class takes the constructor option `name` (e.g. min_ttl_ms)."""
    return name in inspect.signature(cls.__init__).parameters


def build_trace(cfg: RunConfig) -> Trace:
    if cfg.trace is not None:
        return open_trace(cfg.trace, cfg.trace_format, **cfg.trace_opts)
    if cfg.workload is None:
        raise ConfigError("give a --workload or a --trace")
    return make_workload(cfg.workload, seed=cfg.seed, **cfg.workload_params)


def build_simulator(cfg: RunConfig, cost_model: CostModel | None = None) -> Simulator:
    cfg.validate()
    sim_cfg = SimConfig(
        memory_pages=cfg.memory,
        swap_pages=cfg.memory if cfg.swap is None else cfg.swap,
        swappiness=cfg.swappiness,
        swap_device=cfg.swap_device,
        zram_ratio=cfg.zram_ratio,
        swap_devices=list(cfg.swap_devices),
        min_free_kbytes=cfg.min_free_kbytes,
        watermark_scale_factor=cfg.watermark_scale_factor,
        mode=cfg.mode,
        check=cfg.check,
        cost_model=cost_model or CostModel(),
        memcgs=cfg.memcg_plan(),
        memory_recursiveprot=cfg.memory_recursiveprot,
        nodes=cfg.node_sizes(),
        numa=list(cfg.numa),
        tiers=list(cfg.tiers),
        node_watermarks=[tuple(w) for w in cfg.node_watermarks],
    )
    policy = cfg.make_policy()
    from .ext.policy import Policy

    if isinstance(policy, Policy) or cfg.switches:  # reclaim_ext policies inside the reclaim core
        from .ext.adapter import ExtOps

        if isinstance(policy, Policy):  # the core mechanisms it asked for (--mechanism -demotion)
            policy = ExtOps(policy, scope=cfg.scope, mechanisms=plugin_mechanisms(cfg.mechanisms, cfg.policy))
        else:  # classic, to be switched: its mechanisms
            policy = ExtOps(None, scope=cfg.scope, mechanisms=policy.mech)
    return Simulator(sim_cfg, policy)


def run(cfg: RunConfig, trace: Trace | None = None, progress: Callable[[int], None] | None = None, *,
        record_misses: bool = False) -> dict:
    """Run `cfg` (on `trace` if given) and return the result as a JSON-ready dict.

    `record_misses` (not in plain-cache mode): the result also has `miss_bitmap`, a numpy bool
    array with one entry per access, True where it missed (Simulator.record_misses; not JSON:
    the caller encodes or drops it).

    A run that ends out of memory raises OutOfMemory; its `result` is the result up to the access
    that could not be served, with `out_of_memory` = {at_access, memcg, message} (None otherwise).
    """
    cfg.validate()
    if trace is None:
        trace = build_trace(cfg)
    if cfg.cache:
        if record_misses:
            raise ConfigError("record_misses: not in plain-cache mode")
        return run_cache_mode(cfg, trace, progress)
    sim = build_simulator(cfg)
    if record_misses:
        sim.record_misses()
    t0 = time.perf_counter()
    plan = [(sw.at, get_policy(sw.policy) if sw.policy else None, sw.scope) for sw in cfg.switch_plan()]
    reclaims = cfg.proactive_plan()
    cuts = [p[0] for p in plan] + [p.at for p in reclaims]
    done: list[dict] = []
    from .machine.senpai import Senpai

    senpais = [Senpai(c, sim) for c in cfg.senpai_plan()]

    def on_chunk(at: int) -> None:
        while plan and plan[0][0] == at:
            _, pol, scope = plan.pop(0)
            sim.ops.switch(pol, at, scope)
        while reclaims and reclaims[0].at == at:
            done.append(sim.proactive_reclaim(reclaims.pop(0), at))
        for c in senpais:
            if at and at % c.cfg.interval == 0:
                c.tick(sim, at)

    pids = _SeenPids(trace) if any(m.pids for m in cfg.memcg_plan()) else None
    trace = pids or trace
    if cuts or senpais:
        from .ext.switch import CutTrace

        trace = CutTrace(trace, cuts, every=tuple(c.cfg.interval for c in senpais))
    oom = None
    try:
        sim.run(trace, progress=progress, on_chunk=on_chunk if cuts or senpais else None)
        while reclaims and reclaims[0].at == sim.accesses:  # AT = the trace's length: after its last access
            done.append(sim.proactive_reclaim(reclaims.pop(0), sim.accesses))
    except OutOfMemory as e:
        oom = e
        sim.accesses = sim.pos  # the accesses served: all before the one that found no memory
    finally:
        sim.ops.finish()
    wall = time.perf_counter() - t0
    if oom is None:
        _check_not_empty(trace, sim.accesses)
    res = sim.result()
    out = {
        **result_source(cfg, trace),
        "mode": cfg.mode,
        "memory_pages": cfg.memory,
        "swap_pages": sim.swap.total,
        "swap_device": sim.swap.kind,
        "swap_used_pages": sim.swap.used,
        # disk swap: resident folios still holding their slot (PG_swapcache)
        "swap_cache_pages": sim.swap_cache_pages(),
        "zram_ratio": sim.swap.ratio,
        "zram_pool_pages": sim.swap.pool_pages,  # node memory zram's compressed store takes (0: not modelled)
        "swap_devices": sim.swap.describe(),  # each device (/proc/swaps), in swapon order
        "swappiness": cfg.swappiness,
        "accesses": res["accesses"],
        "accesses_by_kind": res["accesses_by_kind"],
        "misses": res["misses"],
        "miss_ratio": res["miss_ratio"],
        # the wall time, and of it the trace's own: generating it or reading it (Simulator.run)
        **sim.chunks.rates(res["accesses"], wall),
        "modeled_seconds": res["modeled_seconds"],
        "vmstat": res["vmstat"],
        "cost": res["cost"],
        "watermarks": res["watermarks"],
        "free_pages": res["free_pages"],
        "lru_sizes": _node_lru_sizes(sim),
        "nodes": res["nodes"],
        "tiers": res["tiers"],
        "mem_available": None,
        "series": sim.samples,
        "conservation_checked": cfg.check,
        "mechanisms": dict(sim.ops.mech),
    }
    wm = res["watermarks"]
    file_pages = sum(lv.type_size(LRU_FILE) for n in sim.nodes for lv in sim.lruvecs_under(None, n))  # NR_{IN,}ACTIVE_FILE
    out["mem_available"] = si_mem_available(res["free_pages"], file_pages, wm["low"], wm["high"])
    out.update(sim.ops.dump(sim))
    out["memcgs"] = res["memcgs"]
    if cfg.proactive:
        out["proactive"] = done
    if senpais:
        out["senpai"] = [c.result() for c in senpais]
    _add_switches_and_warnings(cfg, out, pids)
    out["out_of_memory"] = None if oom is None else {"at_access": sim.pos, "memcg": oom.memcg, "message": str(oom)}
    if record_misses:
        out["miss_bitmap"] = sim.miss_bitmap()
    if oom is not None:
        oom.result = out
        raise oom
    return out


def _node_lru_sizes(sim) -> dict:
    """The machine's list sizes: the sum over every memcg's lruvec on every node."""
    out: dict = {}
    for lv in (lv for n in sim.nodes for lv in sim.lruvecs_under(None, n)):
        for k, v in sim.ops.lru_sizes(lv).items():
            out[k] = out.get(k, 0) + v
    return out


def run_cache_mode(cfg: RunConfig, trace: Trace, progress=None) -> dict:
    """Plain-cache mode (reclaim_ext.ext.cache): the policy alone on a fixed capacity."""
    from .ext.cache import run_cache

    plan = [(sw.at, get_policy(sw.policy) if sw.policy else None) for sw in cfg.switch_plan()]
    res = run_cache(trace, cfg.make_policy(), cfg.capacity, seed=cfg.seed, progress=progress, check=cfg.check,
                    switches=plan)
    _check_not_empty(trace, res["accesses"])
    out = {**result_source(cfg, trace), **res}
    for e in out["exits"]:
        if is_ejection(e):
            e["successor"] = "fallback LRU"
    _add_switches_and_warnings(cfg, out, None)
    return out


def is_ejection(e: dict | None) -> bool:
    """An exit record that is not a normal end (the policy was ejected, or quit)."""
    from .ext.safety import NORMAL_EXITS

    return bool(e) and e["kind"] not in NORMAL_EXITS


def describe_ejection(e: dict) -> str:
    """One line for an ejection: 'POLICY (SCOPE): KIND in HOOK() at access N: REASON; SUCCESSOR
    took over' (the table's policy-exit row and the warning on stderr)."""
    where = f"{e['policy']} ({e['scope']}): " if e.get("scope") else f"{e['policy']}: "
    hook = f" in {e['hook']}()" if e.get("hook") else ""
    reason = (e["reason"].splitlines() or [""])[0]
    return (f"{where}{e['kind']}{hook} at access {e['at_access'] or 0:,}: {reason}; "
            f"{e.get('successor') or 'classic'} took over")


class _SeenPids(Trace):
    """The trace, noting which pids occur in it (to warn about --memcg pids that never do)."""

    def __init__(self, trace: Trace):
        super().__init__(name=trace.name, length=trace.length, params=trace.params)
        self.trace = trace
        self.seen = np.zeros(1 << 16, dtype=bool)

    def chunks(self, chunk: int = DEFAULT_CHUNK):
        for c in self.trace.chunks(chunk):
            self.seen[c["pid"]] = True
            yield c


def _add_switches_and_warnings(cfg: RunConfig, out: dict, pids: _SeenPids | None) -> None:
    """The result's `switches` (each --switch: at, scope, from, to, happened) and `warnings` (one
    line each: a policy ejected and who took over, a --switch or --proactive that never happened,
    --memcg pids that never appear in the trace)."""
    from .ext.adapter import parse_scope

    done = out.get("switches") or []
    plan = cfg.switch_plan()
    out["switches"] = done + [{"at": sw.at, "scope": parse_scope(sw.scope), "from": None, "to": sw.policy or "none",
                               "happened": False} for sw in plan[len(done):]]
    warnings = []
    for i, e in enumerate(out.get("exits") or []):
        if is_ejection(e):
            if i == 0 and parse_scope(e.get("scope") or "system") == parse_scope(cfg.scope):
                e["policy"] = cfg.policy  # the run's own policy, as the user named it (a file, ...)
            warnings.append("policy ejected: " + describe_ejection(e))
    for p in cfg.proactive_plan()[len(out.get("proactive") or []):]:
        warnings.append(f"--proactive {p.at}:/{p.path}:{p.pages} (pages) never happened: the run ended after "
                        f"{out['accesses']:,} accesses")
    for sw in out["switches"]:
        if not sw["happened"]:
            at_scope = "" if sw["scope"] == "system" else f"@{sw['scope']}"
            warnings.append(f"--switch {sw['at']}:{sw['to']}{at_scope} never happened: the run ended after "
                            f"{out['accesses']:,} accesses")
    if pids is not None:
        for m in cfg.memcg_plan():
            unseen = [p for p in m.pids if not pids.seen[p]]
            if unseen:
                shown = "+".join(map(str, unseen[:8])) + ("+..." if len(unseen) > 8 else "")
                many = len(unseen) > 1
                warnings.append(f"--memcg {m.name}: pid{'s' if many else ''} {shown} never "
                                f"appear{'' if many else 's'} in the trace (nothing was charged to {m.name} for "
                                f"{'them' if many else 'it'})")
    out["warnings"] = warnings


def _check_not_empty(trace: Trace, accesses: int) -> None:
    """A run of no access has no miss ratio: the trace is bad input (readers refuse an empty file at
    open; this catches any other trace, e.g. an empty ArrayTrace)."""
    if accesses == 0:
        raise TraceError(f"trace {trace.name}", "holds no records: nothing was replayed")


def result_source(cfg: RunConfig, trace: Trace) -> dict:
    """The head of every result: the policy and what was replayed, and which reclaim-ext ran it
    (version, git commit when run from a checkout)."""
    from .provenance import provenance

    return {
        **provenance(),
        "policy": cfg.policy,
        "workload": None if cfg.trace else cfg.workload,
        "workload_params": trace.params if cfg.trace is None else {},
        "trace": cfg.trace,
        "trace_format": cfg.trace_format,
        "seed": cfg.seed,
    }
