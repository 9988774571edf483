"""The global (kswapd) path in a two-node VM (`validate kernel --vm ... --vm-nodes 2 --knob none`).

No memcg limit: the guest's own memory runs short. The worker prefers node 1 (MPOL_PREFERRED;
node 1 has no CPU), so its page cache fills node 1, then falls back to node 0 along the zonelist
(`numa_miss` on node 0, `numa_foreign` on node 1), and each node's kswapd reclaims it to its high
watermark. The guest (vmimage.py) keeps ZONE_DMA out of page cache (lowmem_reserve_ratio), so each
node has one zone user pages can take (ZONE_DMA32: the guest's memory is below 4 GiB), as the
model's nodes do; it records /proc/zoneinfo and each node's numastat and vmstat before and after
each run. The model runs two nodes sized to what each zone had free at the start of the first run,
with the zones' own watermarks (global_model_config).
"""

from __future__ import annotations

import re
import statistics

from ..errors import ReclaimExtError
from .cgroup import parse_stat
from .kernel import mean_known, relative_error

NUMA_KEYS = ("numa_hit", "numa_miss", "numa_foreign")
NODE_KEYS = ("workingset_refault_file", "workingset_activate_file")
KSWAPD_KEYS = ("pgscan_kswapd", "pgsteal_kswapd", "pgscan_direct", "pgsteal_direct", "allocstall_normal",
               "allocstall_dma32", "pageoutrun", "allocstall_movable")
ZONE_FIELDS = {"pages free": "free", "min": "min", "low": "low", "high": "high", "managed": "managed",
               "present": "present", "spanned": "spanned"}
USER_ZONE = "DMA32"   # the one zone of each node that page cache takes in the guest's layout


def parse_zoneinfo(text: str) -> list[dict]:
    """/proc/zoneinfo as [{node, zone, free, min, low, high, managed, present, spanned, protection}]
    for the zones with managed pages, in file order."""
    zones = []
    z = None
    for line in text.splitlines():
        m = re.match(r"Node (\d+), zone\s+(\w+)", line)
        if m:
            z = {"node": int(m.group(1)), "zone": m.group(2)}
            zones.append(z)
            continue
        if z is None:
            continue
        s = line.strip()
        if s.startswith("protection:"):
            z["protection"] = [int(x) for x in re.findall(r"\d+", s)]
            continue
        for name, key in ZONE_FIELDS.items():
            if s.startswith(name + " ") and key not in z:
                v = s[len(name):].split()
                if v and v[0].isdigit():
                    z[key] = int(v[0])
    return [z for z in zones if z.get("managed")]


def parse_node_snap(text: str) -> dict:
    """A guest snapshot (vmimage's node_snap: /proc/zoneinfo, then `== nodeN numastat` and `== nodeN
    vmstat` blocks) as {"zones": parse_zoneinfo, "numastat": [per node], "vmstat": [per node]}."""
    head, *blocks = re.split(r"^== (node\d+ \w+)\n", text, flags=re.M)
    out: dict = {"zones": parse_zoneinfo(head), "numastat": [], "vmstat": []}
    for name, body in zip(blocks[::2], blocks[1::2]):
        node, kind = name.split()
        n = int(node[4:])
        lst = out.setdefault(kind, [])
        while len(lst) <= n:
            lst.append({})
        lst[n].update(parse_stat(body))
    return out


def global_run_record(nodes0: str, nodes1: str, vmstat0: dict, vmstat1: dict) -> dict:
    """Per node of one guest run: its user zone (USER_ZONE) at the start and the end (free,
    watermarks, managed), the numastat deltas, the workingset deltas and its file pages at the end;
    the other zones (ZONE_DMA) at the start and the end, to show they took no page cache."""
    a, b = parse_node_snap(nodes0), parse_node_snap(nodes1)
    if not a["zones"] or len(a["numastat"]) < 2:
        raise ReclaimExtError("the guest's node snapshot has no zones or fewer than two nodes")
    out = []
    for n in range(len(a["numastat"])):
        z0 = [z for z in a["zones"] if z["node"] == n]
        z1 = [z for z in b["zones"] if z["node"] == n]
        user0 = next((z for z in z0 if z["zone"] == USER_ZONE), None)
        user1 = next((z for z in z1 if z["zone"] == USER_ZONE), None)
        if user0 is None or user1 is None or len([z for z in z0 if z["zone"] not in ("DMA",)]) != 1:
            raise ReclaimExtError(f"node {n}: the guest's layout is not one {USER_ZONE} zone per node (ZONE_DMA "
                                  f"aside): {[z['zone'] for z in z0]}")
        v0, v1 = a["vmstat"][n], b["vmstat"][n]
        s0, s1 = a["numastat"][n], b["numastat"][n]
        out.append({
            "node": n,
            "zone_start": user0, "zone_end": user1,
            "other_zones_start": [z for z in z0 if z is not user0],
            "other_zones_end": [z for z in z1 if z is not user1],
            **{k: s1.get(k, 0) - s0.get(k, 0) for k in NUMA_KEYS},
            **{k: v1.get(k, 0) - v0.get(k, 0) for k in NODE_KEYS},
            "file_pages_end": v1.get("nr_file_pages"),
            "file_pages_start": v0.get("nr_file_pages"),
            "free_end": v1.get("nr_free_pages"),
        })
    return {"nodes": out, "kswapd": {k: vmstat1.get(k, 0) - vmstat0.get(k, 0) for k in KSWAPD_KEYS}}


def global_model_config(first: dict) -> dict:
    """The model's nodes from a run's global_run_record: each node's size is its user zone's free
    pages at the start (the room the data had), its watermarks the zone's own (min, low, high)."""
    return {"node_sizes": [n["zone_start"]["free"] for n in first["nodes"]],
            "node_watermarks": [[n["zone_start"][k] for k in ("min", "low", "high")] for n in first["nodes"]]}


def global_comparison(runs: list[dict], model: dict) -> dict:
    """Kernel runs (each with `global`: global_run_record) against the model
    (model_run with node_sizes): per node the numa counters, the file pages at the end, the file
    refaults and watermarks; kswapd's scans and steals and direct reclaim."""
    nodes = []
    for n, mnode in enumerate(model["nodes"]):
        kn = [r["global"]["nodes"][n] for r in runs]
        mv = mnode["vmstat"]
        row = {"node": n,
               "kernel_zone_start": kn[0]["zone_start"], "model_watermarks": mnode["watermarks"],
               "model_memory_pages": mnode["memory_pages"],
               "kernel_other_zones": [{"start": k["other_zones_start"], "end": k["other_zones_end"]} for k in kn]}
        for k in NUMA_KEYS + ("workingset_refault_file",):
            row[f"kernel_{k}"] = [x[k] for x in kn]
            row[f"model_{k}"] = mv.get(k, 0)
        row["kernel_file_pages_end"] = [(r.get("numa_stat") or {}).get("file", [None] * 2)[n] for r in runs]
        row["model_file_pages_end"] = model["numa_stat"]["file"][n]
        row["kernel_free_end"] = [x["zone_end"]["free"] for x in kn]
        row["model_free_end"] = mnode["free_pages"]
        row["model_pgsteal_kswapd"] = mv.get("pgsteal_kswapd", 0)
        row["model_pgsteal_direct"] = mv.get("pgsteal_direct", 0)
        nodes.append(row)
    ks = {k: [r["global"]["kswapd"].get(k) for r in runs] for k in KSWAPD_KEYS}
    mk = model["kswapd"]
    return {"nodes": nodes, "kernel_kswapd": ks, "model_kswapd": mk,
            "error_pgsteal_kswapd": relative_error(mk["pgsteal_kswapd"], mean_known(ks["pgsteal_kswapd"]))
            if mean_known(ks["pgsteal_kswapd"]) else None}


def compare_global(trace, pages, npages: int, runs: list[dict], *, guest: dict, host: dict, regime: dict,
                   policy: str, min_ttl_ms: float, log=lambda s: None) -> dict:
    """The global path's result: the model (`policy`) on nodes sized from the first kernel run
    (global_model_config: each zone's free pages and watermarks), pid 0 preferring node 1, no memcg
    limit; misses, per node global_comparison."""
    from .kernel import model_run, noncompulsory_error
    from .vmimage import GLOBAL_PREFERRED

    for r in runs:
        r.pop("_cal", None)
        r.pop("_bitmap", None)
    cfg = global_model_config(runs[0]["global"])
    log(f"model: {policy}, nodes of {cfg['node_sizes']} pages with the guest zones' watermarks "
        f"{cfg['node_watermarks']}, pid 0 preferring node {GLOBAL_PREFERRED}")
    model = model_run(pages, npages, 0, "pread", policy, min_ttl_ms, node_sizes=cfg["node_sizes"],
                      node_watermarks=cfg["node_watermarks"], preferred=GLOBAL_PREFERRED)
    model.pop("_bitmap", None)
    km = [r["misses"] for r in runs]
    kmean = statistics.fmean(km)
    return {
        "workload": trace.name, "trace_params": trace.params, "access": "pread", "accesses": int(len(pages)),
        "distinct_pages": npages, "knob": "none", "nodes": 2, "reps": len(runs),
        "kernel_misses": kmean, "kernel_misses_min": min(km), "kernel_misses_max": max(km),
        "model_misses": model["misses"], "error": relative_error(model["misses"], kmean),
        "error_noncompulsory": noncompulsory_error(model["misses"], kmean, npages),
        "model_config": dict(cfg, guest=guest, preferred=GLOBAL_PREFERRED),
        "global": global_comparison(runs, model),
        "model": model, "kernel_runs": runs, "regime": regime, "host": host,
    }
