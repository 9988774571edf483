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


def folio_referenced_lookaround(sim, ids: np.ndarray, look) -> tuple[np.ndarray, np.ndarray]:
    """folio_referenced with a lookaround after every young PTE (MGLRU's rmap path: the kernel's
    folio_referenced_one calls lru_gen_look_around for each mapping).

    Same result and cost counting as folio_referenced, but the batch is processed in order: for
    each folio, each present young PTE (reverse-map chain order) is cleared and `look(pte_id)` is
    called right after. core.ptwalk's lookaround skips folios that are off their lists, so it
    does not clear the young bits of the batch's own (isolated) folios; the order still decides
    which neighbours each lookaround finds young. Costs (rmap_walks, ptes_checked) do not depend on the young bits and are
    counted vectorized; only folios with a present young PTE when the call starts take a Python
    step (plus one per young PTE, for its `look` call).
    """
    ptes = sim.ptes
    n = len(ids)
    young = np.zeros(n, dtype=np.int32)
    vm_exec = np.zeros(n, dtype=bool)
    cur = sim.folios.pte_head[ids]
    if n == 0 or cur.max() < 0:
        return young, vm_exec
    walked = np.zeros(n, dtype=bool)
    checked = 0
    sel = np.flatnonzero(cur >= 0)
    c = cur[sel]
    got_i, got_p = [], []
    while len(c):  # collect the present PTEs of every chain, one chain step per round
        pres = ptes.present[c]
        cp, ip = c[pres], sel[pres]
        if len(cp):
            walked[ip] = True
            checked += len(cp)
            got_i.append(ip)
            got_p.append(cp)
        nxt = ptes.next[c]
        more = nxt >= 0
        c, sel = nxt[more], sel[more]
    sim.cost["rmap_walks"] += int(walked.sum())
    sim.cost["ptes_checked"] += checked
    if not got_p:
        return young, vm_exec
    bi = np.concatenate(got_i)
    bp = np.concatenate(got_p)
    y0 = ptes.young[bp]
    if not y0.any():
        return young, vm_exec
    # keep the present PTEs young now, grouped by batch position (stable: chain order inside);
    # PTEs old now stay old: a lookaround only clears young bits
    bi, bp = bi[y0], bp[y0]
    order = np.argsort(bi, kind="stable")
    bi, bp = bi[order], bp[order]
    starts = np.flatnonzero(np.concatenate(([True], bi[1:] != bi[:-1])))
    ends = np.append(starts[1:], len(bi))
    for i, s, e in zip(bi[starts].tolist(), starts.tolist(), ends.tolist()):
        for p in bp[s:e].tolist():
            if not ptes.young[p]:  # cleared by an earlier lookaround of this batch
                continue
            ptes.young[p] = False
            young[i] += 1
            if ptes.exec[p]:
                vm_exec[i] = True
            look(p)
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



def folio_mapped(sim, ids: np.ndarray, exec_only: bool = False) -> np.ndarray:
    """folio_mapped: whether each folio has a present PTE (exec_only: a present PTE in a VM_EXEC
    mapping). No rmap walk is charged: the kernel reads the folio's mapcount, and the VMA flags
    are known to whoever holds the PTE."""
    ptes = sim.ptes
    out = np.zeros(len(ids), dtype=bool)
    cur = sim.folios.pte_head[ids]
    sel = np.flatnonzero(cur >= 0)
    c = cur[sel]
    while len(c):
        hit = ptes.present[c] & ptes.exec[c] if exec_only else ptes.present[c]
        out[sel[hit]] = True
        nxt = ptes.next[c]
        more = nxt >= 0
        c, sel = nxt[more], sel[more]
    return out
