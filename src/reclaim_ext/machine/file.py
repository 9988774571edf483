"""One machine file (`--machine FILE.toml`): the simulated machine that the run flags otherwise
describe, in one place: memory (one node, or NUMA nodes), swap, watermark knobs, the memcg tree
with every memcg knob the model has, the processes, their memory policies, and proactive
reclaim. Memory tiers are a node's `tier`.

    memory = "64MiB"                 # sizes as for --memory; numbers are pages
    swap = "64MiB"
    swap_device = "zram"             # or "disk": a swap cache on swap-in (as --swap-device)
    zram_ratio = 3.0                 # zram's pool takes 1/3 page per stored page (as --zram-ratio)
                                     # (or [[swap_device]] tables in place of the three, below)
    swappiness = 60
    min_free_kbytes = 4096           # optional
    watermark_scale_factor = 10
    memory_recursiveprot = false     # cgroup2 mount option

    [[swap_device]]                  # several swap devices, in swapon order (as --swapon), in
    kind = "zram"                    # place of swap, swap_device and zram_ratio
    size = "32MiB"
    prio = 100                       # swapon -p: slots come from the highest-priority device
    ratio = 3.0                      # with room, equal priorities in turn (default: below the
                                     # devices before it); ratio: zram's compression ratio

    [[node]]                         # NUMA nodes, in order (node 0, 1, ...); without them one node
    memory = "32MiB"                 # of `memory`. With them, `memory` may be left out (their sum)
    tier = "dram"                    # its memory tier: dram (default), cxl or pmem (as --tiers)

    [[numa]]                         # a memory policy (as --numa): these pids allocate on node 1,
    pids = "2-3"                     # falling back to the others by distance unless bind = true
    node = 1                         # (or interleave = [0, 1] in place of node and bind)
    bind = false

    [[memcg]]
    name = "a"                       # a, or a/b below a
    pids = "0-2"                     # or [0, 1, 2]
    max = "16MiB"                    # memory.max; "max" or absent: no limit
    high = "12MiB"                   # memory.high
    min = "2MiB"                     # memory.min
    low = "4MiB"                     # memory.low
    swap_max = "8MiB"                # memory.swap.max

    [[process]]                      # the processes and what they run (the tenants workload):
    memcg = "/a"                     # process i is pid i (pid = i may be given); joins memcg /a
    workload = "zipf pages=6144 accesses=300000 kind=anon"   # a built-in workload, as for tenants
    node = 0                         # optional: its node (bind = true: that node only)

    [[proactive]]                    # writes to memory.reclaim during the run
    at = 500000
    memcg = "/a"                     # "/" for the root
    size = "16MiB"
    swappiness = 0                   # optional

    [[senpai]]                       # a senpai-like controller (reclaim_ext.machine.senpai)
    memcg = "/a"
    interval = 50000                 # accesses between ticks; the other keys as --senpai takes them:
    pressure = 10.0                  # target refault stall per interval (modelled ms)
    max_probe = 0.01
    coeff_probe = 10
    swappiness = 60                  # optional
"""

from __future__ import annotations

import os
import tomllib
from typing import Any

from ..errors import ConfigError
from .senpai import parse_senpai
from .memcg import MemcgConfig, parse_pids, parse_proactive, resolve_memcgs
from .node import SWAPON_KEYS, check_swap_device, check_zram_ratio, parse_swapon
from .numa import check_tiers, parse_numa_spec
from .units import format_size, parse_size

TOP = ("memory", "swap", "swap_device", "zram_ratio", "swappiness", "min_free_kbytes", "watermark_scale_factor", "memory_recursiveprot",
       "node", "numa", "memcg", "process", "proactive", "senpai")
NODE_KEYS = ("memory", "tier")
NUMA_KEYS = ("pids", "node", "bind", "interleave")
MEMCG_KEYS = ("name", "pids", "max", "high", "min", "low", "swap_max")
PROACTIVE_KEYS = ("at", "memcg", "size", "swappiness")
PROCESS_KEYS = ("pid", "memcg", "workload", "node", "bind")
MAX_PROCESSES = 4  # the tenants workload's a..d
SENPAI_KEYS = ("memcg", "interval", "pressure", "max_probe", "coeff_probe", "swappiness")
NOT_YET = ("nodes", "tier", "tiers", "swap_devices")  # keys that are tables: the error says which


def _size(path: str, where: str, value: Any, allow_max: bool = False) -> int | None:
    if allow_max and isinstance(value, str) and value.strip().lower() == "max":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(f"{path}: {where}: {value!r} is not a size (e.g. \"64MiB\" or a page count)")
    try:
        return parse_size(value, where)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def _int(path: str, where: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{path}: {where} must be an integer from {lo} to {hi}, not {value!r}")
    return value


def _table_list(path: str, data: dict, key: str) -> list[dict]:
    v = data.get(key, [])
    if not isinstance(v, list) or not all(isinstance(t, dict) for t in v):
        raise ConfigError(f"{path}: {key} must be a list of tables ([[{key}]] sections)")
    return v


def _unknown(path: str, where: str, table: dict, known: tuple[str, ...]) -> None:
    for k in table:
        if k not in known:
            raise ConfigError(f"{path}: {where}: unknown key {k!r} (keys: {', '.join(known)})")


def _processes(path: str, data: dict, memcgs: list[MemcgConfig], out: dict) -> None:
    """[[process]] i is pid i running its workload text as tenant i of the tenants workload
    (out["workload"], out["params"] as -p gives them); its memcg gets the pid."""
    from ..errors import TraceError
    from ..trace.generators import parse_tenant

    procs = _table_list(path, data, "process")
    if len(procs) > MAX_PROCESSES:
        raise ConfigError(f"{path}: [[process]]: {len(procs)} processes; the tenants workload runs up to "
                          f"{MAX_PROCESSES}")
    by_name = {m.name: m for m in memcgs}
    params = []
    for i, t in enumerate(procs):
        where = f"[[process]] {i + 1}"
        _unknown(path, where, t, PROCESS_KEYS)
        if "pid" in t and (isinstance(t["pid"], bool) or t["pid"] != i):
            raise ConfigError(f"{path}: {where}: pid {t['pid']!r}: process {i + 1} is pid {i} (pids follow the order)")
        text = t.get("workload")
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{path}: {where}: needs a workload (e.g. workload = \"zipf pages=4096 kind=anon\")")
        letter = "abcd"[i]
        try:
            parse_tenant(text, letter)
        except TraceError as e:
            raise ConfigError(f"{path}: {where}: {e.problem}") from None
        params.append(f"{letter}={text}")
        if "node" in t or "bind" in t:
            if "node" not in t:
                raise ConfigError(f"{path}: {where}: bind needs node = N")
            out.setdefault("numa", []).append(_numa_spec(path, where, {"pids": str(i), "node": t["node"],
                                                                         "bind": t.get("bind", False)},
                                                         len(out.get("nodes") or [0])))
        memcg = str(t.get("memcg", "/")).strip().strip("/")
        if memcg:
            if memcg not in by_name:
                raise ConfigError(f"{path}: {where}: memcg /{memcg} is not declared ([[memcg]] name = \"{memcg}\")")
            if i not in by_name[memcg].pids:
                by_name[memcg].pids.append(i)
    if params:
        out["workload"], out["params"] = "tenants", params


def load_machine(path: str | os.PathLike) -> dict[str, Any]:
    """The RunConfig fields a machine file sets (memory, swap, swappiness, min_free_kbytes,
    watermark_scale_factor, memory_recursiveprot, memcgs as MemcgConfig, the processes' workload
    and params, proactive and senpai specs), checked.
    Every problem is a ConfigError naming the file and the key."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"--machine {path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"--machine {path}: is a directory, not a machine file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--machine {path}: not a text (TOML) file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"--machine {path}: not valid TOML: {e}") from None
    for k in data:
        if k in NOT_YET:
            raise ConfigError(f"{path}: [{k}]: not a key; nodes are [[node]] tables, each with its tier, and swap "
                              "devices [[swap_device]] tables")
    _unknown(path, "top level", data, TOP)
    out: dict[str, Any] = {}
    if "memory" in data:
        out["memory"] = _size(path, "memory", data["memory"])
    if isinstance(data.get("swap_device"), list):  # [[swap_device]] tables
        out["swap_devices"] = _swap_device_tables(path, data)
        data = {k: v for k, v in data.items() if k != "swap_device"}
    if "swap" in data:
        out["swap"] = _size(path, "swap", data["swap"])
    try:
        if "swap_device" in data:
            out["swap_device"] = check_swap_device(data["swap_device"])
        if "zram_ratio" in data:
            out["zram_ratio"] = check_zram_ratio(data["zram_ratio"], out.get("swap_device", "zram"))
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    if "swappiness" in data:
        out["swappiness"] = _int(path, "swappiness", data["swappiness"], 0, 200)
    if "min_free_kbytes" in data:
        out["min_free_kbytes"] = _int(path, "min_free_kbytes", data["min_free_kbytes"], 128, 1 << 40)
    if "watermark_scale_factor" in data:
        out["watermark_scale_factor"] = _int(path, "watermark_scale_factor", data["watermark_scale_factor"], 1, 3000)
    if "memory_recursiveprot" in data:
        if not isinstance(data["memory_recursiveprot"], bool):
            raise ConfigError(f"{path}: memory_recursiveprot must be true or false")
        out["memory_recursiveprot"] = data["memory_recursiveprot"]
    _nodes(path, data, out)
    memcgs = []
    for i, t in enumerate(_table_list(path, data, "memcg"), 1):
        where = f"[[memcg]] {i}"
        _unknown(path, where, t, MEMCG_KEYS)
        name = t.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{path}: {where}: needs a name (e.g. name = \"a\" or \"a/b\")")
        where = f"memcg {name}"
        pids = t.get("pids", [])
        if isinstance(pids, str):
            pids = parse_pids(pids, f"{path}: {where}") if pids.strip() else []
        elif not (isinstance(pids, list) and all(isinstance(p, int) and not isinstance(p, bool) for p in pids)):
            raise ConfigError(f"{path}: {where}: pids must be a list of integers or a string like \"0-2+5\"")
        memcgs.append(MemcgConfig(name=name, pids=list(pids), max=_size(path, f"{where}: max", t.get("max", "max"), True),
                                  min=_size(path, f"{where}: min", t.get("min", 0)) or 0,
                                  low=_size(path, f"{where}: low", t.get("low", 0)) or 0,
                                  high=_size(path, f"{where}: high", t.get("high", "max"), True),
                                  swap_max=_size(path, f"{where}: swap_max", t.get("swap_max", "max"), True)))
    _processes(path, data, memcgs, out)
    try:
        out["memcgs"] = resolve_memcgs(memcgs) if memcgs else []
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    out["proactive"] = _specs(path, data, "proactive", PROACTIVE_KEYS, ("at", "memcg", "size"), parse_proactive,
                              lambda t: f"{t['at']}:{t['memcg']}:{t['size']}"
                              + (f":swappiness={t['swappiness']}" if "swappiness" in t else ""))
    out["senpai"] = _specs(path, data, "senpai", SENPAI_KEYS, ("memcg",), parse_senpai,
                           lambda t: ":".join([str(t["memcg"])] + [f"{k}={t[k]}" for k in SENPAI_KEYS[1:] if k in t]))
    return out


def _swap_device_tables(path: str, data: dict) -> list:
    """[[swap_device]] tables (kind, size, prio, ratio; as --swapon) -> machine.node.SwapDevice,
    in swapon order. They replace the top-level swap and zram_ratio keys."""
    for k in ("swap", "zram_ratio"):
        if k in data:
            raise ConfigError(f"{path}: [[swap_device]] and the top-level {k} both describe the swap; give one of them")
    out = []
    for i, t in enumerate(_table_list(path, data, "swap_device"), 1):
        _unknown(path, f"[[swap_device]] {i}", t, SWAPON_KEYS)
        out.append(parse_swapon(t, f"{path}: [[swap_device]] {i}"))
    return out


def _numa_spec(path: str, where: str, t: dict, nr_nodes: int) -> str:
    """A [[numa]] table (or a process's node and bind) as its --numa spec, checked."""
    if "interleave" in t:
        il = t["interleave"]
        if "node" in t or "bind" in t or not isinstance(il, list) or not il or not all(
                isinstance(n, int) and not isinstance(n, bool) and 0 <= n < nr_nodes for n in il):
            raise ConfigError(f"{path}: {where}: interleave must be a list of the machine's node numbers "
                              f"(0..{nr_nodes - 1}) in place of node and bind, not {il!r}")
        t = {"pids": t.get("pids"), "node": il[0], "il": "+".join(map(str, il))}
    node, bind = t.get("node"), t.get("bind", False)
    if isinstance(node, bool) or not isinstance(node, int) or not 0 <= node < nr_nodes:
        raise ConfigError(f"{path}: {where}: node {node!r} is not a node of the machine (it has {nr_nodes} "
                          f"node{'s' if nr_nodes > 1 else ''}: [[node]] tables, numbered from 0)")
    if not isinstance(bind, bool):
        raise ConfigError(f"{path}: {where}: bind must be true or false")
    pids = t.get("pids")
    if isinstance(pids, list) and pids and all(isinstance(p, int) and not isinstance(p, bool) for p in pids):
        pids = "+".join(map(str, pids))
    if not isinstance(pids, str) or not pids.strip():
        raise ConfigError(f"{path}: {where}: needs pids (e.g. pids = \"0-3\" or [0, 1])")
    spec = f"pids={pids}," + (f"interleave={t['il']}" if "il" in t else f"node={node}" + (",bind" if bind else ""))
    try:
        parse_numa_spec(spec)
    except ConfigError as e:
        raise ConfigError(f"{path}: {where}: {e}") from None
    return spec


def _nodes(path: str, data: dict, out: dict) -> None:
    """[[node]] tables (each node's memory; `memory` is their sum) and [[numa]] policies."""
    tables = _table_list(path, data, "node")
    if tables:
        sizes, tiers = [], []
        for i, t in enumerate(tables):
            where = f"[[node]] {i + 1} (node {i})"
            _unknown(path, where, t, NODE_KEYS)
            if "memory" not in t:
                raise ConfigError(f"{path}: {where}: needs memory (e.g. memory = \"32MiB\")")
            sizes.append(_size(path, f"{where}: memory", t["memory"]))
            tiers.append(t.get("tier", "dram"))
        if "memory" in out and out["memory"] != sum(sizes):
            raise ConfigError(f"{path}: memory ({out['memory']} pages) is not the sum of the [[node]] sizes "
                              f"({sum(sizes)} pages); leave memory out or make them agree")
        out["memory"] = sum(sizes)
        out["nodes"] = sizes
        try:
            out["tiers"] = check_tiers(tiers, len(tiers))
        except ConfigError as e:
            raise ConfigError(f"{path}: [[node]] tier: {str(e).replace('--tiers: ', '')}") from None
    out["numa"] = []
    for i, t in enumerate(_table_list(path, data, "numa"), 1):
        _unknown(path, f"[[numa]] {i}", t, NUMA_KEYS)
        out["numa"].append(_numa_spec(path, f"[[numa]] {i}", t, len(tables) or 1))


def _specs(path: str, data: dict, key: str, keys: tuple, needed: tuple, parse, spec_of) -> list[str]:
    """The [[key]] tables as the command line's spec strings (spec_of), each checked by `parse`."""
    out = []
    for i, t in enumerate(_table_list(path, data, key), 1):
        where = f"[[{key}]] {i}"
        _unknown(path, where, t, keys)
        if not all(k in t for k in needed):
            names = ", ".join(needed[:-1]) + " and " + needed[-1] if len(needed) > 1 else needed[0]
            raise ConfigError(f"{path}: {where}: needs {names}")
        spec = spec_of(t)
        try:
            parse(spec)
        except ConfigError as e:
            raise ConfigError(f"{path}: {where}: {e}") from None
        out.append(spec)
    return out


def _swap_text(fields: dict[str, Any]) -> str:
    """The swap of a machine file, as describe() prints it."""
    def dev(size: str, kind: str, prio, ratio) -> str:
        return (f"{size} ({kind}" + (f", prio {prio}" if prio is not None else "")
                + (f", ratio {ratio:g}" if ratio else "") + ")")

    if fields.get("swap_devices"):
        return "swap " + " + ".join(dev(format_size(d.total), d.kind, d.priority, d.ratio) for d in fields["swap_devices"])
    size = format_size(fields["swap"]) if fields.get("swap") is not None else "as large as memory"
    return "swap " + dev(size, fields.get("swap_device", "zram"), None, fields.get("zram_ratio"))


def describe(fields: dict[str, Any]) -> str:
    """The machine of a machine file as a tree (reclaim-ext machine show)."""
    mem = fields.get("memory")
    nodes = fields.get("nodes") or []
    tiers = fields.get("tiers") or ["dram"] * len(nodes)
    where = (f"{len(nodes)} nodes (" + ", ".join(f"node {i} {format_size(s)} {t}" for i, (s, t) in
                                                 enumerate(zip(nodes, tiers))) + ")" if nodes else "node 0")
    lines = [f"machine: {where}, memory {format_size(mem) if mem is not None else 'the --memory default'}, "
             + _swap_text(fields) + ", "
             f"swappiness {fields.get('swappiness', 60)}"
             + (", memory_recursiveprot" if fields.get("memory_recursiveprot") else "")]
    memcgs = fields.get("memcgs") or []
    children: dict[str, list[MemcgConfig]] = {}
    for m in memcgs:
        children.setdefault(m.name.rpartition("/")[0], []).append(m)

    def knobs(m: MemcgConfig) -> str:
        out = []
        if m.pids:
            out.append(f"pids {','.join(map(str, m.pids))}")
        for k in ("max", "high", "swap_max"):
            v = getattr(m, k)
            if v is not None:
                out.append(f"{k} {format_size(v)}")
        for k in ("min", "low"):
            if getattr(m, k):
                out.append(f"{k} {format_size(getattr(m, k))}")
        return "  ".join(out)

    def walk(parent: str, prefix: str) -> None:
        kids = children.get(parent, [])
        for i, m in enumerate(kids):
            last = i == len(kids) - 1
            lines.append(f"{prefix}{'└── ' if last else '├── '}{m.name.rpartition('/')[2]}  {knobs(m)}".rstrip())
            walk(m.name, prefix + ("    " if last else "│   "))

    lines.append("└── / (root memcg)")
    walk("", "    ")
    for text in fields.get("params") or []:
        letter, _, work = text.partition("=")
        pid = "abcd".index(letter)
        home = next((m.name for m in memcgs if pid in m.pids), "")
        lines.append(f"process {pid}: {work}  (memcg /{home})")
    for spec in fields.get("numa") or []:
        p = parse_numa_spec(spec)
        lines.append(f"numa: pids {','.join(map(str, p.pids))} "
                     + (f"interleaved over nodes {'+'.join(map(str, p.interleave))}" if p.interleave else
                        f"on node {p.node}" + (" only (bind)" if p.bind else ", falling back to the others")))
    for spec in fields.get("proactive") or []:
        p = parse_proactive(spec)
        lines.append(f"proactive: at access {p.at:,}, memory.reclaim of /{p.path} {format_size(p.pages)}"
                     + (f", swappiness {p.swappiness}" if p.swappiness is not None else ""))
    for spec in fields.get("senpai") or []:
        c = parse_senpai(spec)
        lines.append(f"senpai: /{c.path} every {c.interval:,} accesses, pressure {c.pressure:g} ms, max_probe "
                     f"{c.max_probe:g}, coeff_probe {c.coeff_probe:g}"
                     + (f", swappiness {c.swappiness}" if c.swappiness is not None else ""))
    return "\n".join(lines) + "\n"
