"""Lock-free age updates (folio_update_gen, include/linux/mm_inline.h): a folio's logical class apart from its physical list.

MGLRU promotes folios found young by a page-table walk or lookaround by rewriting the generation
field in the folio flags with a compare-and-swap; the folio stays on the list of its old
generation, and the move is made later, when eviction's sort_folio (or inc_min_seq) meets the
folio. Size counters follow the logical class.

This module gives any policy that bookkeeping: a per-folio logical list index (`lru_gen`, -1 while
the folio is on no list) next to the physical one (`FolioTable.lru`), logical sizes per list
(`lruvec.nr_logical`), and the list operations that keep the two in step. `promote(..., lazy=True)`
is the lock-free update; `lazy=False` is the classic alternative (a real list move under the LRU
lock, batched per folio_batch), which is what the `lockfree` ablation switch selects.

Cost counters: `atomic_updates` per lock-free flag update; `lru_lock_ops` per LRU-lock
acquisition (one per batch of size deltas, or per folio_batch of list moves).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..jit import noref
from ..machine.folio import NO_LIST

FOLIO_BATCH_SIZE = 31  # PAGEVEC_SIZE / folio_batch capacity: list moves per LRU-lock hold


def init(sim, lruvec) -> None:
    """Set up the logical-class bookkeeping (the per-folio field is shared by all lruvecs)."""
    if not hasattr(sim.folios, "lru_gen"):
        sim.folios.add_field("lru_gen", np.int8, NO_LIST)
    lruvec.nr_logical = [0] * lruvec.nr_lists


def _count(lruvec, lrus: np.ndarray, sign: int) -> None:
    c = np.bincount(lrus.astype(np.int64), minlength=lruvec.nr_lists).tolist()
    nl = lruvec.nr_logical
    for i, k in enumerate(c):
        if k:
            nl[i] += sign * k


def add(sim, lruvec, ids: np.ndarray, lrus, tail: bool = False) -> None:
    """Put folios that are on no list onto lists, physical = logical, in order (head: the last
    one ends up nearest the head; tail: the last one ends up the oldest)."""
    if len(ids) == 0:
        return
    f = sim.folios
    lrus = np.broadcast_to(np.asarray(lrus, dtype=np.int64), ids.shape)
    if tail:
        for lru in np.unique(lrus).tolist():
            sel = ids[lrus == lru]
            lruvec.add(f, sel, lru, tail=True)
    else:
        lruvec.add_events(f, ids, lrus, unique=True)
    f.lru_gen[ids] = lrus
    _count(lruvec, lrus, +1)


def take(sim, lruvec, ids: np.ndarray) -> None:
    """Folios just taken off their physical lists (isolation, deletion): drop them logically."""
    if len(ids):
        _take_all(np.asarray(ids, dtype=np.int64), sim.folios.lru_gen, lruvec.nr_logical.a)


def pop_tail(sim, lruvec, lru: int, n: int) -> np.ndarray:
    """Take up to n folios off the tail of physical list `lru`, oldest first."""
    ids = lruvec.isolate_tail(sim.folios, lru, n)
    take(sim, lruvec, ids)
    return ids


def move(sim, lruvec, ids: np.ndarray, lrus, tail: bool = False) -> None:
    """Move folios (on lists) physically and logically to `lrus`."""
    if len(ids) == 0:
        return
    lruvec.delete(sim.folios, ids)
    take(sim, lruvec, ids)
    add(sim, lruvec, ids, lrus, tail)


def promote(sim, lruvec, ids: np.ndarray, lru: int, lazy: bool) -> None:
    """Move folios (on lists, unique) to the head of class list `lru` as an age update.

    lazy: the lock-free update, only the logical class changes (folio_update_gen) and the size
    deltas are applied in one batch; else a list move per folio through folio_batches."""
    n = len(ids)
    if n == 0:
        return
    f = sim.folios
    if lazy:
        _update_gens(np.asarray(ids, dtype=np.int64), lru, f.lru_gen, lruvec.nr_logical.a)
        count_lazy(sim, n)
    else:
        move(sim, lruvec, ids, lru)
        sim.cost["lru_lock_ops"] += -(-n // FOLIO_BATCH_SIZE)


@noref
def update_gen(g, lru, lru_gen, nl):
    """The lock-free age update of one folio on a list (folio_update_gen's cmpxchg): its logical
    list becomes `lru` and the logical sizes `nl` (the lruvec's row of nr_logical) follow; the
    folio stays where it is physically."""
    nl[lru_gen[g]] -= 1
    lru_gen[g] = lru
    nl[lru] += 1


@noref
def take_one(g, lru_gen, nl):
    """take for one folio from compiled code: it leaves its logical list."""
    nl[lru_gen[g]] -= 1
    lru_gen[g] = NO_LIST


@njit(cache=True)
def _take_all(ids, lru_gen, nl):
    for i in range(len(ids)):
        take_one(ids[i], lru_gen, nl)


@njit(cache=True)
def _update_gens(ids, lru, lru_gen, nl):
    for i in range(len(ids)):
        update_gen(ids[i], lru, lru_gen, nl)


def count_lazy(sim, n: int) -> None:
    """lazy_cost of n lock-free age updates made in one batch, counted."""
    if n:
        atomic, locks = lazy_cost(n)
        sim.cost["atomic_updates"] += atomic
        sim.cost["lru_lock_ops"] += locks


@noref
def lazy_cost(n):
    """The cost of n lock-free age updates made in one batch: (an atomic update each, one
    LRU-lock acquisition for the batched size deltas, reset_batch_size)."""
    return n, (1 if n else 0)


def logical_sizes(lruvec) -> list[int]:
    return list(lruvec.nr_logical)


def check(sim, lruvec) -> list[str]:
    """Conservation of the logical view: sizes match the folios' logical tags, and a folio is
    logically on a list exactly when it is physically on one."""
    f = sim.folios
    cnt = f.count
    lg = f.lru_gen[:cnt].astype(np.int64)
    on = f.lru[:cnt] != NO_LIST
    problems = []
    if ((lg != NO_LIST) != on).any():
        problems.append(f"{int(((lg != NO_LIST) != on).sum())} folios are logically and physically on different sides of a list")
    mine = lg >= 0
    if getattr(sim, "multi", False):  # several memcgs: this lruvec's folios only
        mine &= f.memcg[:cnt] == lruvec.memcg.id
    if len(getattr(sim, "nodes", ())) > 1:  # several nodes: the folios on this lruvec's node
        mine &= f.nid[:cnt] == lruvec.node.nid
    counts = np.bincount(lg[mine], minlength=lruvec.nr_lists).tolist()
    if counts != list(lruvec.nr_logical):
        problems.append(f"logical list sizes {lruvec.nr_logical} != folios tagged {counts}")
    return problems
