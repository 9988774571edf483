"""Access detection through the reverse map: folio_referenced, vectorized over a batch."""

from __future__ import annotations

import numpy as np


def _chain_rounds(sim, ids: np.ndarray):
    """Walk the reverse-map chains of a batch of folios one PTE per chain per round: yields
    (PTE ids, batch positions of their folios); a folio appears at most once per round."""
    cur = sim.folios.pte_head[ids]
    if len(cur) == 0 or cur.max() < 0:  # no folio was ever mapped
        return
    nxt_of = sim.ptes.next
    sel = np.flatnonzero(cur >= 0)
    c = cur[sel]
    while len(c):
        yield c, sel
        nxt = nxt_of[c]
        more = nxt >= 0
        c, sel = nxt[more], sel[more]


def folio_referenced(sim, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each folio: the number of mappings (VMAs) with the young bit set, and whether one of
    those is VM_EXEC; the young bits found are cleared (test-and-clear, as folio_referenced).

    Every PTE of a process maps a distinct VMA here, so "VMAs with a young mapping" is the number
    of young present PTEs. Unmapped folios cost nothing (the kernel returns before the walk).
    """
    young, vm_exec, _ = _referenced(sim, ids, want_ptes=False)
    return young, vm_exec


def _referenced(sim, ids: np.ndarray, want_ptes: bool):
    """folio_referenced, plus (want_ptes) the young PTE ids cleared, in batch order and chain
    order within a folio. (The rounds of _chain_rounds, inlined: this runs for every reclaim
    batch, most of them a few folios.)"""
    ptes = sim.ptes
    n = len(ids)
    young = np.zeros(n, dtype=np.int32)
    vm_exec = np.zeros(n, dtype=bool)
    cur = sim.folios.pte_head[ids]
    sel = (cur >= 0).nonzero()[0]
    if len(sel) == 0:  # no folio was ever mapped
        return young, vm_exec, _NONE
    present, pyoung, pexec, nxt_of = ptes.present, ptes.young, ptes.exec, ptes.next
    walked = np.zeros(n, dtype=bool)
    checked = 0
    got_i, got_p = [], []
    c = cur[sel]
    while len(c):  # one PTE per chain per round: a folio appears at most once per round
        pres = present[c]
        npres = np.count_nonzero(pres)
        if npres:
            walked[sel[pres]] = True
            checked += int(npres)
            y = pyoung[c] & pres
            if np.count_nonzero(y):
                cy, iy = c[y], sel[y]
                young[iy] += 1
                vm_exec[iy] |= pexec[cy]
                pyoung[cy] = False
                if want_ptes:
                    got_i.append(iy)
                    got_p.append(cy)
        nxt = nxt_of[c]
        more = nxt >= 0
        c, sel = nxt[more], sel[more]
    sim.cost["rmap_walks"] += int(np.count_nonzero(walked))
    sim.cost["ptes_checked"] += checked
    if not got_p:
        return young, vm_exec, _NONE
    bi = np.concatenate(got_i)
    bp = np.concatenate(got_p)
    return young, vm_exec, bp[np.argsort(bi, kind="stable")]


_NONE = np.zeros(0, dtype=np.int64)
_NONE.flags.writeable = False


def folio_referenced_lookaround(sim, ids: np.ndarray, look) -> tuple[np.ndarray, np.ndarray]:
    """folio_referenced with a lookaround after every young PTE (MGLRU's rmap path: the kernel's
    folio_referenced_one calls lru_gen_look_around for each mapping).

    Same result and cost counting as folio_referenced; `look(pte_ids)` then gets the young PTEs
    found, in batch order (reverse-map chain order within a folio), to run the lookarounds in
    that order. The lookaround skips folios that are off their lists, so it never changes what
    the rmap walk of the batch's own (isolated) folios finds: doing the walk first and the
    lookarounds after gives the kernel's interleaved result.
    """
    young, vm_exec, young_ptes = _referenced(sim, ids, want_ptes=True)
    if len(young_ptes):
        look(young_ptes)
    return young, vm_exec


def try_to_unmap(sim, ids: np.ndarray) -> None:
    """Clear every present PTE of the folios (replace anon mappings by swap entries)."""
    cur = sim.folios.pte_head[ids]
    if len(cur) == 0 or cur.max() < 0:
        return
    ptes = sim.ptes
    present, young, nxt_of = ptes.present, ptes.young, ptes.next
    c = cur[cur >= 0]
    while len(c):
        present[c] = False
        young[c] = False
        c = nxt_of[c]
        c = c[c >= 0]


def folio_mapped(sim, ids: np.ndarray, exec_only: bool = False) -> np.ndarray:
    """folio_mapped: whether each folio has a present PTE (exec_only: a present PTE in a VM_EXEC
    mapping). No rmap walk is charged: the kernel reads the folio's mapcount, and the VMA flags
    are known to whoever holds the PTE."""
    ptes = sim.ptes
    out = np.zeros(len(ids), dtype=bool)
    for c, sel in _chain_rounds(sim, ids):
        hit = ptes.present[c] & ptes.exec[c] if exec_only else ptes.present[c]
        out[sel[hit]] = True
    return out
