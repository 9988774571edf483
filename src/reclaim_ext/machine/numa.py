"""NUMA nodes of a run: how memory is split into nodes, and where each task allocates.

A machine has N nodes (`--nodes N` splits --memory into N equal nodes, the last taking the
remainder; a machine file gives each node's size). Each node has one zone (ZONE_NORMAL), its own
watermarks (min_free_kbytes shared in proportion to size, __setup_per_zone_wmarks), its own
kswapd and its own lruvec per memcg.

A task's memory policy (`--numa pids=1-3,node=1[,bind]`) names its node: it allocates there
first and, when that node is below its low watermark, on the next node of its zonelist (nodes by
distance, then id: build_zonelists); with `bind` (MPOL_BIND) only on its own node. A task not
named runs on node pid mod N with the default policy (local allocation, fallback allowed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .memcg import MAX_PID, parse_pids

LOCAL_DISTANCE = 10   # node_distance(n, n) (the ACPI SLIT's local entry)
REMOTE_DISTANCE = 20  # node_distance(n, m) without a SLIT


@dataclass
class NumaPolicy:
    """A memory policy for some tasks: their node and whether they may fall back to others."""

    pids: list[int]
    node: int
    bind: bool = False


def parse_numa_spec(spec: str) -> NumaPolicy:
    """`pids=1-3+7,node=1[,bind]` -> NumaPolicy."""
    what = f"--numa {spec!r}"
    seen: dict[str, str] = {}
    bind = False
    for item in spec.split(","):
        item = item.strip()
        if item == "bind":
            bind = True
            continue
        k, sep, v = item.partition("=")
        if not sep or k not in ("pids", "node"):
            raise ConfigError(f"{what}: {item!r} is not pids=..., node=N or bind (e.g. pids=0-3,node=1,bind)")
        seen[k] = v
    if "pids" not in seen or "node" not in seen:
        raise ConfigError(f"{what}: give both pids= and node= (e.g. pids=0-3,node=1)")
    try:
        node = int(seen["node"])
    except ValueError:
        raise ConfigError(f"{what}: node={seen['node']!r} is not a node number") from None
    try:
        pids = parse_pids(seen["pids"], spec)
    except ConfigError as e:
        raise ConfigError(str(e).replace("--memcg", "--numa", 1)) from None
    return NumaPolicy(pids=pids, node=node, bind=bind)


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


def zonelists(nr_nodes: int, policies: list[NumaPolicy | str]) -> tuple[np.ndarray, np.ndarray]:
    """The compiled access path's zonelist table and each pid's row in it: rows 0..N-1 are node
    n's full zonelist (default policy, fallback allowed), row N + n node n alone (bind). Pids not
    named by a policy use row pid mod N."""
    zl = np.full((2 * nr_nodes, nr_nodes), -1, dtype=np.int64)
    for n in range(nr_nodes):
        zl[n] = zonelist(n, nr_nodes)
        zl[nr_nodes + n, 0] = n
    pid_row = (np.arange(MAX_PID + 1) % nr_nodes).astype(np.int16)
    for p in policies:
        if isinstance(p, str):
            p = parse_numa_spec(p)
        if not 0 <= p.node < nr_nodes:
            raise ConfigError(f"--numa: node {p.node} does not exist (the machine has {nr_nodes} node"
                              f"{'s' if nr_nodes > 1 else ''}: 0..{nr_nodes - 1})")
        pid_row[np.asarray(p.pids, dtype=np.int64)] = p.node + (nr_nodes if p.bind else 0)
    return zl, pid_row
