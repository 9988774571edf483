"""Access detection through the reverse map: folio_referenced over a batch (compiled: one walk
of each folio's reverse-map chain, the folios in batch order)."""

from __future__ import annotations

import numpy as np
from numba import njit

from ..jit import noref


@noref
def referenced_from(c, present, pyoung, pexec, nxt_of, found, nfound):
    """folio_referenced's walk of one folio's reverse-map chain from PTE `c`: its young present
    PTEs are counted and cleared (test-and-clear), each one's id written to found[nfound] and on
    (none written when `found` is empty: nfound stays 0). Stops before a young PTE that `found`
    has no room for, once it has room for some (len(found) > 0). Returns (the PTE it stopped at,
    -1 at the chain's end; young PTEs, one of them VM_EXEC, a present PTE seen, PTEs checked,
    nfound)."""
    young = 0
    vm_exec = False
    seen = False
    checked = 0
    record = len(found) > 0
    while c >= 0:
        if present[c]:
            if record and pyoung[c] and nfound == len(found):
                return c, young, vm_exec, seen, checked, nfound
            seen = True
            checked += 1
            if pyoung[c]:
                young += 1
                if pexec[c]:
                    vm_exec = True
                pyoung[c] = False
                if record:
                    found[nfound] = c
                    nfound += 1
        c = nxt_of[c]
    return c, young, vm_exec, seen, checked, nfound


@noref
def referenced_into(ids, pte_head, present, pyoung, pexec, nxt_of, young, vm_exec, none):
    """walk_referenced without the young PTE ids, its young counts and VM_EXEC flags written
    into `young` and `vm_exec` (`none`: an empty int64 array). Returns (folios walked, PTEs
    checked)."""
    walked = 0
    checked = 0
    for i in range(len(ids)):
        _, young[i], vm_exec[i], seen, chk, _ = referenced_from(pte_head[ids[i]], present, pyoung, pexec, nxt_of,
                                                                none, 0)
        walked += seen
        checked += chk
    return walked, checked


@njit(cache=True)
def walk_referenced(ids, pte_head, present, pyoung, pexec, nxt_of):
    """folio_referenced for each folio of the batch, in order (referenced_from). Returns young
    counts, whether one of them is VM_EXEC, the folios walked (those with a present PTE), the
    PTEs checked, and the young PTE ids in batch order (chain order within a folio)."""
    n = len(ids)
    young = np.zeros(n, dtype=np.int32)
    vm_exec = np.zeros(n, dtype=np.bool_)
    found = np.empty(16, dtype=np.int64)
    nfound = 0
    walked = 0
    checked = 0
    for i in range(n):
        c = pte_head[ids[i]]
        seen = False
        while True:
            c, y, x, s, chk, nfound = referenced_from(c, present, pyoung, pexec, nxt_of, found, nfound)
            young[i] += y
            vm_exec[i] = vm_exec[i] or x
            seen = seen or s
            checked += chk
            if c < 0:
                break
            grown = np.empty(2 * len(found), dtype=np.int64)  # full: room for more
            grown[:nfound] = found[:nfound]
            found = grown
        if seen:
            walked += 1
    return young, vm_exec, walked, checked, found[:nfound]


@noref
def unmap_folio(g, pte_head, present, pyoung, nxt_of):
    """try_to_unmap for one folio: clear every PTE of its reverse-map chain."""
    c = pte_head[g]
    while c >= 0:
        present[c] = False
        pyoung[c] = False
        c = nxt_of[c]


@noref
def _unmap(ids, pte_head, present, pyoung, nxt_of):
    for i in range(len(ids)):
        unmap_folio(ids[i], pte_head, present, pyoung, nxt_of)


@noref
def mapped_one(g, pte_head, present, pexec, nxt_of, exec_only):
    """folio_mapped for one folio: a present PTE in its reverse-map chain (exec_only: in a
    VM_EXEC mapping)."""
    c = pte_head[g]
    while c >= 0:
        if present[c] and (pexec[c] or not exec_only):
            return True
        c = nxt_of[c]
    return False


@njit(cache=True)
def _mapped(ids, pte_head, present, pexec, nxt_of, exec_only):
    out = np.zeros(len(ids), dtype=np.bool_)
    for i in range(len(ids)):
        out[i] = mapped_one(ids[i], pte_head, present, pexec, nxt_of, exec_only)
    return out


def _referenced(sim, ids: np.ndarray):
    """walk_referenced on the simulator's tables, with the rmap cost counted."""
    ids = np.asarray(ids, dtype=np.int64)
    p = sim.ptes
    young, vm_exec, walked, checked, found = walk_referenced(ids, sim.folios.pte_head, p.present, p.young, p.exec,
                                                              p.next)
    count_rmap_walks(sim, walked, checked)
    return young, vm_exec, found


def count_rmap_walks(sim, walked: int, checked: int) -> None:
    """The cost of walk_referenced: folios whose reverse map was walked, PTEs checked."""
    if walked:
        sim.cost["rmap_walks"] += int(walked)
        sim.cost["ptes_checked"] += int(checked)


def folio_referenced(sim, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each folio: the number of mappings (VMAs) with the young bit set, and whether one of
    those is VM_EXEC; the young bits found are cleared (test-and-clear, as folio_referenced).

    Every PTE of a process maps a distinct VMA here, so "VMAs with a young mapping" is the number
    of young present PTEs. Unmapped folios cost nothing (the kernel returns before the walk).
    """
    young, vm_exec, _ = _referenced(sim, ids)
    return young, vm_exec


def folio_referenced_lookaround(sim, ids: np.ndarray, look) -> tuple[np.ndarray, np.ndarray]:
    """folio_referenced with a lookaround after every young PTE (MGLRU's rmap path: the kernel's
    folio_referenced_one calls lru_gen_look_around for each mapping).

    Same result and cost counting as folio_referenced; `look(pte_ids)` then gets the young PTEs
    found, in batch order (reverse-map chain order within a folio), to run the lookarounds in
    that order. The lookaround skips folios that are off their lists, so it never changes what
    the rmap walk of the batch's own (isolated) folios finds: doing the walk first and the
    lookarounds after gives the kernel's interleaved result.
    """
    young, vm_exec, young_ptes = _referenced(sim, ids)
    if len(young_ptes):
        look(young_ptes)
    return young, vm_exec


def try_to_unmap(sim, ids: np.ndarray) -> None:
    """Clear every present PTE of the folios (replace anon mappings by swap entries)."""
    p = sim.ptes
    _unmap(np.asarray(ids, dtype=np.int64), sim.folios.pte_head, p.present, p.young, p.next)


def folio_mapped(sim, ids: np.ndarray, exec_only: bool = False) -> np.ndarray:
    """folio_mapped: whether each folio has a present PTE (exec_only: a present PTE in a VM_EXEC
    mapping). No rmap walk is charged: the kernel reads the folio's mapcount, and the VMA flags
    are known to whoever holds the PTE."""
    p = sim.ptes
    return _mapped(np.asarray(ids, dtype=np.int64), sim.folios.pte_head, p.present, p.exec, p.next, exec_only)
