"""Access detection through the reverse map: folio_referenced, vectorized over a batch."""

from __future__ import annotations

import numpy as np


def folio_referenced(sim, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each folio: the number of mappings (VMAs) with the young bit set, and whether one of
    those is VM_EXEC; the young bits found are cleared (test-and-clear, as folio_referenced).

    Every PTE of a process maps a distinct VMA here, so "VMAs with a young mapping" is the number
    of young present PTEs. Unmapped folios cost nothing (the kernel returns before the walk).
    """
    ptes = sim.ptes
    n = len(ids)
    young = np.zeros(n, dtype=np.int32)
    vm_exec = np.zeros(n, dtype=bool)
    cur = sim.folios.pte_head[ids]
    if n == 0 or cur.max() < 0:  # no folio was ever mapped: nothing to walk
        return young, vm_exec
    walked = np.zeros(n, dtype=bool)
    checked = 0
    sel = np.flatnonzero(cur >= 0)  # batch index of each chain being walked
    c = cur[sel]
    while len(c):  # one PTE of every chain per round: a folio appears at most once per round
        pres = ptes.present[c]
        cp, ip = c[pres], sel[pres]
        if len(cp):
            walked[ip] = True
            checked += len(cp)
            y = ptes.young[cp]
            if y.any():
                cy, iy = cp[y], ip[y]
                young[iy] += 1
                vm_exec[iy] |= ptes.exec[cy]
                ptes.young[cy] = False
        nxt = ptes.next[c]
        more = nxt >= 0
        c, sel = nxt[more], sel[more]
    sim.cost["rmap_walks"] += int(walked.sum())
    sim.cost["ptes_checked"] += checked
    return young, vm_exec


def try_to_unmap(sim, ids: np.ndarray) -> None:
    """Clear every present PTE of the folios (replace anon mappings by swap entries)."""
    ptes = sim.ptes
    cur = sim.folios.pte_head[ids]
    if len(cur) == 0 or cur.max() < 0:
        return
    cur = cur[cur >= 0]
    while len(cur):
        ptes.present[cur] = False
        ptes.young[cur] = False
        cur = ptes.next[cur]
        cur = cur[cur >= 0]

