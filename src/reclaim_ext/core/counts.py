"""The counters of a compiled reclaim run and where each goes, and the tables compiled reclaim
takes: shared by core.vmscan's Python path, core.kswapd's compiled kswapd and the policies'
compiled paths (a module of its own so that vmscan and kswapd both import it without a cycle)."""

from __future__ import annotations

import numpy as np

from .access import NR_FILE_DIRTY

# what a compiled kswapd run counts (`kc`), and where each goes (flush_counts): vmstat, the cost
# model, or vmstat and the lruvec's memory.stat
NODE_EVENTS = ("kswapd_wakeups", "pageoutrun")  # kswapd's events, counted on its node too
KSWAPD_COUNTS = (("vm", "pgrefill"), ("vm", "pgdeactivate"), ("vm", "pgactivate"), ("vm", "pgfree"),
                 ("vm", "pswpout"), ("vm", "pgpgout"), ("vm", "nr_vmscan_write"), ("vm", "nr_vmscan_immediate_reclaim"),
                 ("vm", "pgscan_anon"), ("vm", "pgscan_file"), ("vm", "pgsteal_anon"), ("vm", "pgsteal_file"),
                 ("lruvec", "pgscan_kswapd"), ("lruvec", "pgsteal_kswapd"), ("cost", "lru_lock_ops"),
                 ("cost", "pages_scanned"), ("cost", "rmap_walks"), ("cost", "ptes_checked"), ("cost", "file_writes"),
                 ("cost", "swap_outs"), ("vm", "kswapd_wakeups"), ("vm", "pageoutrun"), ("sim", "bulk_passes"),
                 ("sim", "reclaims"), ("cost", "ptes_walked"), ("cost", "atomic_updates"), ("vm", "pgrotated"))
(K_PGREFILL, K_PGDEACTIVATE, K_PGACTIVATE, K_PGFREE, K_PSWPOUT, K_PGPGOUT, K_VMSCAN_WRITE, K_IMMEDIATE, K_PGSCAN_ANON,
 K_PGSCAN_FILE, K_PGSTEAL_ANON, K_PGSTEAL_FILE, K_PGSCAN, K_PGSTEAL, K_LOCK_OPS, K_SCANNED, K_RMAP_WALKS,
 K_PTES_CHECKED, K_FILE_WRITES, K_SWAP_OUTS, K_WAKEUPS, K_PAGEOUTRUN, K_BULK, K_RECLAIMS, K_PTES_WALKED,
 K_ATOMIC_UPDATES, K_PGROTATED) = range(len(KSWAPD_COUNTS))
# the flusher's scalars a run reads and writes (`wb`): pages under writeback, flushers woken
WB_WRITEBACK, WB_REQUESTED = range(2)


def tables(sim, lv) -> tuple:
    """kswapd_balance's arguments from the folio table to `row`, but the memcgs' charges: the
    folio, PTE and lruvec tables, the swap charges' arrays and the lruvec's row."""
    f, p = sim.folios, sim.ptes
    return ((f.stamp, f.lru, f.flags, f.type, f.pte_head, f.shadow, f.shadow_ws, f.shadow_memcg, f.ever, f.memcg,
             f.swap_memcg), (p.present, p.young, p.exec, p.next), lv.table.arrays(),
            (sim.swap_usage, sim._swap_max, sim._mparent, sim.swap_events, f.swap_type, sim.swap.table), lv.row)


def reclaim_scalars(sim, node) -> tuple:
    """The simulator's scalars a compiled reclaim run reads and writes: `s` as run_accesses'
    (swap slots used and total, NR_FILE_DIRTY, the node's free pages) and the flusher's `wb`."""
    s = np.array([sim.swap.used, sim.swap.total, sim.nr_file_dirty, 0, node.free], dtype=np.int64)
    return s, np.array([sim.nr_writeback, sim.writeback_requested], dtype=np.int64)


def set_reclaim_scalars(sim, s: np.ndarray, wb: np.ndarray) -> None:
    """reclaim_scalars handed back after the run (the swap slots are in sim.swap.table, the
    node's free pages in its node scalars)."""
    sim.nr_file_dirty = int(s[NR_FILE_DIRTY])
    sim.nr_writeback, sim.writeback_requested = int(wb[WB_WRITEBACK]), bool(wb[WB_REQUESTED])


def flush_counts(sim, lruvec, kc: np.ndarray) -> None:
    """Add (and reset) a compiled run's counters (KSWAPD_COUNTS) to the simulator's."""
    vals = kc.tolist()
    if not any(vals):
        return
    for k, c in enumerate(vals):
        if not c:
            continue
        where, name = KSWAPD_COUNTS[k]
        if where == "sim":
            setattr(sim, name, getattr(sim, name) + c)
        elif where == "cost":
            sim.cost[name] += c
        elif where == "lruvec":
            sim.count(lruvec, name, c)
        else:
            sim.vm[name] += c
            if name in NODE_EVENTS:
                lruvec.node.vm[name] += c
    kc[:] = 0
