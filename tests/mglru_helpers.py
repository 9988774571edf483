"""Helpers shared by the MGLRU test files: a small MGLRU machine, replay, and the names of its
generations' lists."""

from __future__ import annotations

import numpy as np
from conftest import recs

from reclaim_ext.core.engine import SimConfig, Simulator
from reclaim_ext.policies import get_policy
from reclaim_ext.trace import ArrayTrace, Kind

NR_GENS = 4


def new_sim(memory: int = 1024, swap: int = 1024, *, swappiness: int = 60, mechanisms=None,
            min_ttl_ms: float = 0, mode: str = "exact") -> Simulator:
    return Simulator(
        SimConfig(memory_pages=memory, swap_pages=swap, swappiness=swappiness, mode=mode, check=True),
        get_policy("mglru", mechanisms=mechanisms, min_ttl_ms=min_ttl_ms),
    )


def state(sim):
    """(policy, root lruvec, its LruGen)."""
    lv = sim.root_lruvec(sim.node)
    return sim.ops, lv, sim.ops.lrugen(lv)


def replay(sim: Simulator, *parts: np.ndarray) -> None:
    sim.run(ArrayTrace("t", np.concatenate(parts)))


def ids_of(sim: Simulator, records: np.ndarray) -> np.ndarray:
    return sim.mm.translate(records)[0]


def ptes_of(sim: Simulator, records: np.ndarray) -> np.ndarray:
    return sim.mm.translate(records)[1]


def one(sim: Simulator, records: np.ndarray) -> int:
    return int(ids_of(sim, records)[0])


def lst(t: int, seq: int) -> int:
    """List index of generation `seq` of type t (type * 4 + seq % 4)."""
    return t * NR_GENS + seq % NR_GENS


def nr_gens(lg, t: int) -> int:
    return lg.max_seq - lg.min_seq[t] + 1


def age(sim, times: int = 1, swappiness: int = 60) -> None:
    ops, lv, lg = state(sim)
    for _ in range(times):
        assert ops.try_to_inc_max_seq(sim, lv, lg.max_seq, swappiness)


def reads_by_many(page: int, times: int) -> np.ndarray:
    """read() of one page by `times` processes (each read starts a new stream, so each counts as
    an access without putting any other folio on the lists)."""
    r = recs(Kind.FILE_FD, [page] * times)
    r["pid"] = np.arange(times)
    return r
