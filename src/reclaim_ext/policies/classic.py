"""The classic active/inactive LRU (mm/vmscan.c, mm/swap.c) as a reclaim_ops instance.

Two classes per type: 0 = inactive, 1 = active. Everything else (scan budget, shrink_folio_list,
shadows, rmap) is the core's.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..core.ops import FOLIOREF_KEEP, FOLIOREF_RECLAIM, SWAP_CLUSTER_MAX, AccessEvents, BatchedEvents, ScanControl
from ..core.lru import HookOut, list_add
from ..core.ptwalk import WalkRounds
from ..core.rmap import folio_mapped
from ..core.access import DONE
from ..core.kswapd import WAKE_DONE, WAKE_NO, WAKE_ROOM, driver_kswapd, folio_check_references, shrink_active_on
from ..core.vmscan import (
    can_reclaim_anon, deactivate_flags, driver_stretch, file_is_tiny, inactive_is_low, note_cost, push_slots,
)
from ..core.workingset import age_nonresident, workingset_age_nonresident, workingset_eviction, workingset_test_recent
from ..jit import PREFETCH_AHEAD, noref, prefetch
from ..machine.folio import LRU_ANON, LRU_FILE, PG_active, PG_referenced, PG_unevictable, PG_workingset

INACTIVE, ACTIVE = 0, 1


# per-lruvec counters classic_events keeps (HookOut.stat columns); pgactivate is the last column
_EVENT_COUNTERS = ("workingset_activate_anon", "workingset_activate_file", "workingset_restore_anon",
                   "workingset_restore_file", "pgactivate")


@noref
def classic_events(page, is_add, shadow, shadow_ws, swap_free, flags, ftype, flru, fstamp, fmemcg, fshadow_memcg,
                   lvt, clock, stat, push):
    """Classic's hot path, one event after the other, each on its folio's lruvec (the memcg it is
    charged to): an ADD is folio_add_lru after the refault check (workingset_refault), an ACCESS
    is folio_mark_accessed. Returns the number of list insertions left in `push` for the caller
    (HookOut.apply)."""
    nr, nonres, anon_cost, file_cost, parent, sub_ptr, sub_idx = lvt
    npush = 0
    for j in range(len(page)):
        if j + PREFETCH_AHEAD < len(page):  # the list fields an ADD ahead touches (asked for every
            h = page[j + PREFETCH_AHEAD]     # event: which are ADDs is random, a branch mispredicted)
            prefetch(flru, h)
            prefetch(fstamp, h)
            prefetch(fshadow_memcg, h)
        g = page[j]
        if is_add[j]:
            row = np.int64(fmemcg[g])
            t = np.int64(ftype[g])
            cls = INACTIVE
            if shadow[j] >= 0 and workingset_test_recent(nr, nonres, sub_ptr, sub_idx, np.int64(fshadow_memcg[g]),
                                                         shadow[j], t == LRU_FILE, swap_free[j] > 0):
                flags[g] |= PG_active | (PG_workingset if shadow_ws[j] else 0)
                age_nonresident(nonres, parent, row, 1)
                stat[row, t] += 1  # workingset_activate
                if shadow_ws[j]:  # lru_note_cost_refault, workingset_restore
                    note_cost(nr, anon_cost, file_cost, parent, sub_ptr, sub_idx, row, t == LRU_FILE, 1, 0, 0)
                    stat[row, 2 + t] += 1
                cls = ACTIVE
            npush = list_add(g, row, t * 2 + cls, flru, fstamp, nr, clock, push, npush)
        else:
            # folio_mark_accessed: an evictable inactive folio on a list, referenced, is activated;
            # else PG_referenced is stored (not tested: a branch mispredicted on random pages)
            fl = flags[g]
            if (fl & (PG_referenced | PG_unevictable | PG_active)) != PG_referenced or flru[g] < 0:
                flags[g] = fl | PG_referenced
            else:
                row = np.int64(fmemcg[g])  # read here only: most accesses need the flags alone
                t = np.int64(ftype[g])
                flags[g] = (fl | PG_active) & ~PG_referenced
                nr[row, flru[g]] -= 1
                npush = list_add(g, row, t * 2 + ACTIVE, flru, fstamp, nr, clock, push, npush)
                stat[row, 4] += 1  # pgactivate
                age_nonresident(nonres, parent, row, 1)
    return npush


@njit(cache=True)
def classic_segments(head, tail, ev, s, usage, i, granted, skip_used, sampled, bg, evt, ids, stamps, lohi, kt, nodev, wb,
                     wa_base, refaults, swp, clock, batches, kc, resume, on):
    """Classic's compiled driver (ReclaimOps.segment_driver; engine.drive_compiled has the
    arguments and the answer): stretches of the chunk (driver_stretch), their events
    (classic_events) and list insertions (push_slots), and each kswapd wake (driver_kswapd:
    the compiled kswapd run), until a stop it leaves to the engine. `wa_base`: the lruvec's
    workingset_activate counts before the call, to which the events' counters add (prepare's
    refault test against the `refaults` snapshot, which reclaim_done takes)."""
    stat, push = evt[8], evt[9]
    why = DONE
    budget = np.empty(1, dtype=np.int64)  # driver_stretch's allocation budget
    while i < len(head[0]):
        i, why, ne, granted, skip_used = driver_stretch(head, tail, s, nodev, i, granted, skip_used, budget)
        npush = classic_events(ev[0][:ne], ev[1][:ne], ev[2][:ne], ev[3][:ne], ev[4][:ne], *evt)
        if not push_slots(push, npush, ids, stamps, lohi):
            return i, why, granted, npush, WAKE_ROOM, ids, stamps
        if why == DONE:
            continue
        done, ids, stamps = driver_kswapd(why, sampled, bg, s, wb, nodev, ids, stamps, lohi, kt, usage,
                                          wa_base[0] + stat[0, 0] != refaults[0], wa_base[1] + stat[0, 1] != refaults[1],
                                          swp, clock, batches, kc, on)
        if done != WAKE_NO:
            refaults[0] = wa_base[0] + stat[0, 0]  # reclaim_done: snapshot_refaults
            refaults[1] = wa_base[1] + stat[0, 1]
        if done != WAKE_DONE:
            return i, why, granted, 0, done, ids, stamps
        granted = True
    return i, why, granted, 0, WAKE_NO, ids, stamps


class Classic(BatchedEvents):
    """Linux's active/inactive LRU (two lists per type): two-touch promotion, refault-distance
    activation, deactivation driven by inactive_is_low and refaults."""

    name = "classic"
    nr_classes = 2
    trusted = True
    multi_lruvec_events = True  # access_events handles segments spanning several memcgs
    bulk_clean_file_pass = True  # ptes == 0 -> RECLAIM / RECLAIM_CLEAN; aging deactivates in order
    # MGLRU's access-detection mechanisms on a traditional LRU ("classic with page-table scanning")
    supported_mechanisms = ("ptwalk", "bloom", "pmd_young", "lookaround")
    ablation_variants = ("+ptwalk", "+ptwalk,+pmd_young", "+ptwalk,+pmd_young,+bloom", "+lookaround",
                         "+ptwalk,+pmd_young,+bloom,+lookaround")
    _compiled = False  # classic itself without mechanisms: the compiled paths run its rules

    def __init__(self, mechanisms=None):
        super().__init__(mechanisms)
        walks = any(self.uses(m) for m in self.supported_mechanisms)  # its own, not the core's demotion
        if walks:  # a walk in prepare() changes lists: no bulk passes
            self.bulk_clean_file_pass = False
        self._compiled = type(self) is Classic and not walks

    def init_lruvec(self, sim, lruvec) -> None:
        if self.uses("ptwalk") or self.uses("lookaround"):
            lruvec.priv["walks"] = WalkRounds()
        if self.uses("ptwalk") and not hasattr(sim.folios, "walk_exec"):
            sim.folios.add_field("walk_exec", np.bool_, False)  # seen young through a VM_EXEC PTE

    def _pte_young(self, sim, lruvec, ids: np.ndarray, walk: bool) -> None:
        """MGLRU's mechanisms on the two lists. ptwalk: once per reclaim run, before its first
        pass, a page-table walk harvests the young bits, and the active list's aging reads what it
        found instead of the rmap; lookaround: the eviction-time rmap walk also clears the young
        neighbours of a young PTE. `ids`: the folios of the young PTEs either cleared (one entry
        per PTE, in order), to which classic's two-sighting rule (folio_check_references' for
        mapped folios) applies: on the inactive list, seen young while PG_referenced or through
        two PTEs: activated; otherwise PG_referenced."""
        if len(ids) == 0:
            return
        f = sim.folios
        uniq, k = np.unique(ids, return_counts=True)
        fl = f.flags[uniq]
        lru = f.lru[uniq].astype(np.int64)
        inactive = (lru >= 0) & (lru % 2 == INACTIVE) & ((fl & PG_unevictable) == 0)
        act = uniq[inactive & (((fl & PG_referenced) != 0) | (k >= 2))]
        f.flags[uniq] = fl | np.uint16(PG_referenced)
        if walk:
            f.walk_exec[uniq] |= folio_mapped(sim, uniq, exec_only=True)
        if len(act):
            f.flags[act] |= np.uint16(PG_active)
            lruvec.add_events(f, act, f.type[act].astype(np.int64) * 2 + ACTIVE, unique=True)
            sim.vm["pgactivate"] += len(act)
            sim.cost["lru_lock_ops"] += 1
            workingset_age_nonresident(lruvec, len(act))

    def _walk_once(self, sim, lruvec, sc) -> None:
        """ptwalk: the lruvec's page-table walk, once per reclaim run, before its first pass."""
        walked = sc.priv.setdefault("walked", set())
        if not self.uses("ptwalk") or id(lruvec) in walked:
            return
        walked.add(id(lruvec))
        lruvec.priv["walks"].walk(sim, lruvec, lambda ids: self._pte_young(sim, lruvec, ids, True),
                                  bloom=self.uses("bloom"), pmd_young=self.uses("pmd_young"),
                                  anon_ok=can_reclaim_anon(sim, sc))

    def rmap_look(self, sim, lruvec, sc):
        if not self.uses("lookaround"):
            return None
        bloom, anon_ok = self.uses("bloom") and self.uses("ptwalk"), can_reclaim_anon(sim, sc)
        return lambda ptes: lruvec.priv["walks"].look(sim, lruvec, ptes, lambda ids: self._pte_young(
            sim, lruvec, ids, False), bloom=bloom, anon_ok=anon_ok)

    # ---- workingset ---------------------------------------------------------------------------

    def eviction_lruvec(self, sim, lruvec, sc):
        """workingset_eviction stamps the reclaim target's lruvec (the root's for global reclaim)."""
        return sim.target_lruvec(sc, lruvec.node)

    def eviction_token(self, sim, lruvec, ids):
        """workingset_eviction (core.workingset): the non-resident age, which each eviction advances."""
        return workingset_eviction(lruvec, len(ids))

    # ---- hot path: classic_events (compiled, above) for one event or a whole stretch ----------

    def apply_events(self, sim, lruvec, ev: AccessEvents) -> None:
        """classic_events over events in order, each on its folio's lruvec on lruvec's node."""
        f = sim.folios
        out = HookOut.get(sim, _EVENT_COUNTERS, len(ev.page), lruvec.node)
        out.npush = classic_events(ev.page, ev.is_add, ev.shadow, ev.shadow_ws, ev.swap_free, f.flags, f.type, f.lru,
                                   f.stamp, f.memcg, f.shadow_memcg, lruvec.table.arrays(), sim._stamp_clock,
                                   out.stat, out.push)
        out.apply()

    def segment_driver(self, sim, slots):
        """classic_segments and its own arguments (ReclaimOps.segment_driver), for classic itself
        with no mechanism."""
        if not self._compiled:
            return None
        f = sim.folios
        out = HookOut.get(sim, _EVENT_COUNTERS, slots)
        return classic_segments, (f.flags, f.type, f.lru, f.stamp, f.memcg, f.shadow_memcg, sim.lruvec_table.arrays(),
                                  sim._stamp_clock, out.stat, out.push), out

    # ---- reclaim ------------------------------------------------------------------------------

    def prepare(self, sim, lruvec, sc: ScanControl) -> None:
        """prepare_scan_control: cost snapshot, which types may be deactivated, cache trim mode,
        and the tiny-file-cache check."""
        sc.anon_cost, sc.file_cost = lruvec.anon_cost, lruvec.file_cost  # the target memcg's: over its subtree
        nr, refaulted = np.asarray(lruvec.hier_nr(), dtype=np.int64), self.refaulted(sim, lruvec)
        may, trim = deactivate_flags(nr, 2, refaulted[0], refaulted[1], bool(sc.force_deactivate),
                                     int(sc.may_deactivate), int(sc.priority))
        sc.may_deactivate, sc.cache_trim_mode = int(may), bool(trim)
        self._walk_once(sim, lruvec, sc)
        if sc.target_memcg is None or sc.target_memcg.parent is None:
            node = lruvec.node  # the root's sizes: node_page_state
            sc.file_is_tiny = bool(file_is_tiny(nr, 2, sc.may_deactivate, int(sc.priority), int(node.free),
                                                int(node.wmark.high)))

    @staticmethod
    def _activations(lruvec) -> list[int]:
        return [lruvec.hier_stat("workingset_activate_anon"), lruvec.hier_stat("workingset_activate_file")]

    def refaulted(self, sim, lruvec) -> tuple[bool, bool]:
        """Whether each type saw refault activations since the last snapshot_refaults."""
        return tuple(a != r for a, r in zip(self._activations(lruvec), lruvec.refaults))

    def compiled_refaults(self, sim, lruvec):
        """The refault flags prepare() reads (ReclaimOps.compiled_refaults); a subclass may read
        more in its hooks, and mechanisms walk: None."""
        return self.refaulted(sim, lruvec) if self._compiled else None

    def reclaim_done(self, sim, node, sc: ScanControl) -> None:
        """snapshot_refaults(target memcg) at the end of kswapd's and direct/memcg reclaim's runs."""
        lv = sim.target_lruvec(sc, node)
        lv.refaults = self._activations(lv)

    def shrink_lruvec(self, sim, lruvec, sc):
        """shrink_lruvec; with ptwalk, a memcg's lruvec other than the target's is walked before
        its first pass of this reclaim run (the target's was walked in prepare)."""
        self._walk_once(sim, lruvec, sc)
        super().shrink_lruvec(sim, lruvec, sc)

    def references(self, sim, lruvec, ids, young, vm_exec, sc):
        """folio_check_references (mm/vmscan.c), compiled (core.kswapd)."""
        return folio_check_references(np.asarray(ids, dtype=np.int64), young, vm_exec, sim.folios.flags, sim.folios.type)

    def putback(self, sim, lruvec, ids, active):
        """move_folios_to_lru: activated folios to the active head (ticking the non-resident
        clock), the rest to the inactive head, in order."""
        if len(ids) == 0:
            return
        t = sim.folios.type[ids].astype(np.int64)
        lruvec.add_events(sim.folios, ids, t * 2 + active, unique=True)
        nact = int(np.count_nonzero(active))
        if nact:
            workingset_age_nonresident(lruvec, nact)

    def age(self, sim, lruvec, lru, nr_to_scan, sc):
        """shrink_active_list on the active list of that type (the core counts the LRU locking)."""
        self.shrink_active_list(sim, lruvec, lru // 2, nr_to_scan, sc)

    age.deactivates_in_order = True  # never-mapped folios: none rotates (core.vmscan bulk passes)

    def shrink_active_list(self, sim, lruvec, lru_type: int, nr_to_scan: int, sc) -> None:
        """shrink_active_list: deactivate from the active tail; only young executable file folios
        stay active (core.kswapd.shrink_active_lists, compiled)."""
        shrink_active_on(sim, lruvec, lru_type, nr_to_scan, sim.folios.walk_exec if self.uses("ptwalk") else None)

    def after_lruvec(self, sim, lruvec, sc):
        """End of shrink_lruvec: keep the anon inactive list from running low."""
        if can_reclaim_anon(sim, sc) and inactive_is_low(lruvec, LRU_ANON):
            sim.cost["lru_lock_ops"] += 2  # isolate + putback
            self.shrink_active_list(sim, lruvec, LRU_ANON, SWAP_CLUSTER_MAX, sc)

    def kswapd_age_node(self, sim, node, sc):
        """kswapd_age_node: background anon deactivation when the root's anon inactive is low."""
        if not can_reclaim_anon(sim, sc) or not inactive_is_low(sim.root_lruvec(node), LRU_ANON, hierarchical=True):
            return
        for lv in sim.lruvecs_under(None, node):
            if self.ages_in_background(lv):
                sim.cost["lru_lock_ops"] += 2
                self.shrink_active_list(sim, lv, LRU_ANON, SWAP_CLUSTER_MAX, sc)

    def ages_in_background(self, lruvec) -> bool:
        """Whether kswapd_age_node ages this lruvec's anon lists (reclaim_ext: not where a
        policy chooses the victims)."""
        return True


__all__ = ["Classic", "FOLIOREF_KEEP", "FOLIOREF_RECLAIM"]
