"""NUMA nodes of a run: how memory is split into nodes, and where each task allocates.

A machine has N nodes (`--nodes N` splits --memory into N equal nodes, the last taking the
remainder; a machine file gives each node's size). Each node has one zone (ZONE_NORMAL), its own
watermarks (min_free_kbytes shared in proportion to size, __setup_per_zone_wmarks), its own
kswapd and its own lruvec per memcg.

A task's memory policy (`--numa pids=1-3,node=1[,bind]`) names its node: it allocates there
first and, when that node is below its low watermark, on the next node of its zonelist (nodes by
distance, then id: build_zonelists); with `bind` (MPOL_BIND) only on its own node. A task not
named runs on the CPU node pid mod (CPU nodes) with the default policy (local allocation,
fallback allowed).

Nodes sit in memory tiers (`--tiers dram,cxl`, `tier =` in a machine file): DRAM nodes have CPUs;
CXL and PMEM nodes are memory only, slower, and each node's reclaim demotes to the nearest node
of the next lower tier (next_demotion_node, mm/memory-tiers.c) before it evicts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .memcg import MAX_PID, parse_pids

LOCAL_DISTANCE = 10   # node_distance(n, n) (the ACPI SLIT's local entry)
REMOTE_DISTANCE = 20  # node_distance(n, m) without a SLIT
# memory tiers, top (fastest) first: a node's tier (memory_tier's abstract distance, in order);
# only DRAM nodes have CPUs
TIERS = ("dram", "cxl", "pmem")


def check_tiers(tiers: list[str], nr_nodes: int) -> list[str]:
    """Each node's tier (default all dram), checked: known names, one per node, a DRAM node."""
    tiers = list(tiers) or ["dram"] * nr_nodes
    if len(tiers) != nr_nodes:
        raise ConfigError(f"--tiers: {len(tiers)} tiers for {nr_nodes} node{'s' if nr_nodes > 1 else ''} "
                          "(give one per node, e.g. --nodes 2 --tiers dram,cxl)")
    for t in tiers:
        if t not in TIERS:
            raise ConfigError(f"--tiers: {t!r} is not a memory tier ({', '.join(TIERS)})")
    if "dram" not in tiers:
        raise ConfigError("--tiers: no dram node: tasks run on the CPUs of DRAM nodes (give at least one)")
    return tiers


def demotion_order(tiers: list[str], nid: int, distance=None) -> list[int]:
    """Where reclaim on node `nid` demotes to, in the order demote_folio_list tries them: the
    target (next_demotion_node: the nearest node of the next lower tier that has nodes, ties by
    id), then the other nodes of every lower tier (node_get_allowed_targets) by distance from the
    target. Empty: the node is in the lowest tier (no demotion)."""
    dist = distance or (lambda a, b: LOCAL_DISTANCE if a == b else REMOTE_DISTANCE)
    rank = [TIERS.index(t) for t in tiers]
    lower = [m for m in range(len(tiers)) if rank[m] > rank[nid]]
    if not lower:
        return []
    nxt = min(rank[m] for m in lower)
    target = min((m for m in lower if rank[m] == nxt), key=lambda m: (dist(nid, m), m))
    return [target] + sorted((m for m in lower if m != target), key=lambda m: (dist(target, m), m))


@dataclass
class NumaPolicy:
    """A memory policy for some tasks: their node and whether they may fall back to others, or
    the nodes they interleave over (MPOL_INTERLEAVE; `node` is then the first of them)."""

    pids: list[int]
    node: int
    bind: bool = False
    interleave: list[int] | None = None


def parse_numa_spec(spec: str) -> NumaPolicy:
    """`pids=1-3+7,node=1[,bind]` or `pids=1-3,interleave=0+1` -> NumaPolicy."""
    what = f"--numa {spec!r}"
    seen: dict[str, str] = {}
    bind = False
    for item in spec.split(","):
        item = item.strip()
        if item == "bind":
            bind = True
            continue
        k, sep, v = item.partition("=")
        if not sep or k not in ("pids", "node", "interleave"):
            raise ConfigError(f"{what}: {item!r} is not pids=..., node=N, bind or interleave=NODES "
                              "(e.g. pids=0-3,node=1,bind or pids=0-3,interleave=0+1)")
        seen[k] = v
    il = None
    if "interleave" in seen:
        if "node" in seen or bind:
            raise ConfigError(f"{what}: interleave= takes the place of node= and bind")
        try:
            il = [int(x) for x in seen["interleave"].split("+")]
        except ValueError:
            raise ConfigError(f"{what}: interleave={seen['interleave']!r} is not node numbers joined by + "
                              "(e.g. interleave=0+1)") from None
        if len(set(il)) != len(il):
            raise ConfigError(f"{what}: interleave={seen['interleave']!r} names a node twice")
        seen["node"] = str(il[0])
    if "pids" not in seen or "node" not in seen:
        raise ConfigError(f"{what}: give pids= and node= or interleave= (e.g. pids=0-3,node=1)")
    try:
        node = int(seen["node"])
    except ValueError:
        raise ConfigError(f"{what}: node={seen['node']!r} is not a node number") from None
    try:
        pids = parse_pids(seen["pids"], spec)
    except ConfigError as e:
        raise ConfigError(str(e).replace("--memcg", "--numa", 1)) from None
    return NumaPolicy(pids=pids, node=node, bind=bind, interleave=il)


def split_memory(pages: int, n: int) -> list[int]:
    """`--nodes n`: n nodes of equal size, the last one taking the remainder."""
    if n < 1:
        raise ConfigError(f"--nodes: {n} is not a number of nodes (1 or more)")
    each = pages // n
    return [each] * (n - 1) + [pages - each * (n - 1)]


def zonelist(nid: int, nr_nodes: int, distance=None) -> list[int]:
    """build_zonelists: the nodes by distance from `nid`, ties by node id (nid itself first)."""
    dist = distance or (lambda a, b: LOCAL_DISTANCE if a == b else REMOTE_DISTANCE)
    return sorted(range(nr_nodes), key=lambda m: (dist(nid, m), m != nid, m))


def zonelists(nr_nodes: int, policies: list[NumaPolicy | str], cpu_nodes: list[int] | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """The compiled access path's zonelist table and each pid's row in it: rows 0..N-1 are node
    n's full zonelist (default policy, fallback allowed), row N + n node n alone (bind), and each
    interleave policy's row after those holds its nodes (core.access.zonelist_row picks one of
    their zonelists per folio). Pids not named by a policy use the zonelist of CPU node pid mod
    (number of CPU nodes; `cpu_nodes`, default all)."""
    pols = [parse_numa_spec(p) if isinstance(p, str) else p for p in policies]
    for p in pols:
        for n in p.interleave or [p.node]:
            if not 0 <= n < nr_nodes:
                raise ConfigError(f"--numa: node {n} does not exist (the machine has {nr_nodes} node"
                                  f"{'s' if nr_nodes > 1 else ''}: 0..{nr_nodes - 1})")
    ils = []
    for p in pols:
        if p.interleave and p.interleave not in ils:
            ils.append(p.interleave)
    zl = np.full((2 * nr_nodes + len(ils), nr_nodes), -1, dtype=np.int64)
    for n in range(nr_nodes):
        zl[n] = zonelist(n, nr_nodes)
        zl[nr_nodes + n, 0] = n
    for k, il in enumerate(ils):
        zl[2 * nr_nodes + k, : len(il)] = il
    cpus = np.asarray(cpu_nodes if cpu_nodes else range(nr_nodes), dtype=np.int64)
    pid_row = cpus[np.arange(MAX_PID + 1) % len(cpus)].astype(np.int16)
    for p in pols:
        row = 2 * nr_nodes + ils.index(p.interleave) if p.interleave else p.node + (nr_nodes if p.bind else 0)
        pid_row[np.asarray(p.pids, dtype=np.int64)] = row
    return zl, pid_row
