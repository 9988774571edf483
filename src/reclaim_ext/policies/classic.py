"""The classic active/inactive LRU (mm/vmscan.c, mm/swap.c) as a reclaim_ops instance.

Two classes per type: 0 = inactive, 1 = active. Everything else (scan budget, shrink_folio_list,
shadows, rmap) is the core's.
"""

from __future__ import annotations

import numpy as np

from ..core.ops import (
    FOLIOREF_ACTIVATE, FOLIOREF_KEEP, FOLIOREF_RECLAIM, FOLIOREF_RECLAIM_CLEAN, SWAP_CLUSTER_MAX,
    AccessEvents, ReclaimOps, ScanControl,
)
from ..core.batch import dense_labels, occurrence_rank_lt2
from ..core.ptwalk import BloomFilters, look_around_batch, walk_mm
from ..core.rmap import folio_mapped, folio_referenced
from ..core.vmscan import can_reclaim_anon, inactive_is_low, lru_note_cost, lru_note_cost_batch, lru_note_cost_seq
from ..core.workingset import workingset_age_nonresident, workingset_size, workingset_size_batch
from ..machine.folio import (
    LRU_ANON, LRU_FILE, PG_active, PG_referenced, PG_unevictable, PG_workingset, TYPE_NAMES,
)

INACTIVE, ACTIVE = 0, 1
DEACTIVATE_ANON, DEACTIVATE_FILE = 1 << LRU_ANON, 1 << LRU_FILE
_U16 = np.uint16
# references() computes verdicts arithmetically from these values
assert (FOLIOREF_ACTIVATE, FOLIOREF_KEEP, FOLIOREF_RECLAIM, FOLIOREF_RECLAIM_CLEAN) == (0, 1, 2, 3)
_NOT_REFERENCED = ~np.uint16(PG_referenced)


class Classic(ReclaimOps):
    """Linux's active/inactive LRU (two lists per type).

    Two-touch promotion, refault-distance activation, deactivation driven by inactive_is_low and
    refaults."""

    name = "classic"
    nr_classes = 2
    trusted = True
    multi_lruvec_events = True  # access_events handles segments spanning several memcgs
    bulk_clean_file_pass = True  # ptes == 0 -> RECLAIM / RECLAIM_CLEAN; aging deactivates in order
    # MGLRU's access-detection mechanisms on a traditional LRU ("classic with page-table scanning")
    supported_mechanisms = ("ptwalk", "bloom", "pmd_young", "lookaround")
    ablation_variants = ("+ptwalk", "+ptwalk,+pmd_young", "+ptwalk,+pmd_young,+bloom", "+lookaround",
                         "+ptwalk,+pmd_young,+bloom,+lookaround")

    # ---- MGLRU's mechanisms on the two lists ---------------------------------------------------
    #
    # ptwalk: once per reclaim invocation (kswapd run or direct reclaim), before its first pass, a
    # page-table walk harvests the young bits; the active list's aging then reads what the walk
    # found instead of walking the rmap of every folio it scans. lookaround: the eviction-time rmap
    # walk also clears the young neighbours of a young PTE. Both apply classic's two-sighting rule
    # to what they find (the folio_check_references rule for mapped folios): a folio on the
    # inactive list seen young while PG_referenced (or through two PTEs) is activated, otherwise it
    # gets PG_referenced.

    def __init__(self, mechanisms=None):
        super().__init__(mechanisms)
        if any(self.mech.values()):  # a walk in prepare() changes lists: no bulk passes
            self.bulk_clean_file_pass = False

    def init_lruvec(self, sim, lruvec) -> None:
        if self.uses("ptwalk") or self.uses("lookaround"):
            lruvec.priv["walk_seq"] = 0
            lruvec.priv["bloom"] = BloomFilters()
        if self.uses("ptwalk") and not hasattr(sim.folios, "walk_exec"):
            sim.folios.add_field("walk_exec", np.bool_, False)  # seen young through a VM_EXEC PTE

    def _pte_young(self, sim, lruvec, ids: np.ndarray, walk: bool) -> None:
        """Folios whose young PTEs a walk or lookaround cleared (one entry per PTE, in order)."""
        if len(ids) == 0:
            return
        f = sim.folios
        uniq, k = np.unique(ids, return_counts=True)
        fl = f.flags[uniq]
        lru = f.lru[uniq].astype(np.int64)
        inactive = (lru >= 0) & (lru % 2 == INACTIVE) & ((fl & PG_unevictable) == 0)
        act = uniq[inactive & (((fl & PG_referenced) != 0) | (k >= 2))]
        f.flags[uniq] = fl | _U16(PG_referenced)
        if walk:
            f.walk_exec[uniq] |= folio_mapped(sim, uniq, exec_only=True)
        if len(act):
            f.flags[act] |= _U16(PG_active)
            lruvec.add_events(f, act, f.type[act].astype(np.int64) * 2 + ACTIVE, unique=True)
            sim.vm["pgactivate"] += len(act)
            sim.cost["lru_lock_ops"] += 1
            workingset_age_nonresident(lruvec, len(act))

    def _walk(self, sim, lruvec, sc) -> None:
        sc.priv.setdefault("walked", set()).add(id(lruvec))
        seq = lruvec.priv["walk_seq"]
        bloom = lruvec.priv["bloom"]
        walk_mm(sim, lruvec, seq, lambda ids: self._pte_young(sim, lruvec, ids, True),
                bloom=bloom if self.uses("bloom") else None, use_pmd_young=self.uses("pmd_young"),
                anon_ok=can_reclaim_anon(sim, sc), file_ok=True, state=bloom.walk_state)
        lruvec.priv["walk_seq"] = seq + 1

    def rmap_look(self, sim, lruvec, sc):
        if not self.uses("lookaround"):
            return None
        bloom = lruvec.priv["bloom"] if self.uses("bloom") and self.uses("ptwalk") else None
        anon_ok = can_reclaim_anon(sim, sc)

        def look(ptes: np.ndarray) -> None:
            look_around_batch(sim, lruvec, ptes, lambda ids: self._pte_young(sim, lruvec, ids, False), bloom=bloom,
                              seq=lruvec.priv["walk_seq"], anon_ok=anon_ok, file_ok=True)

        return look

    # ---- workingset ---------------------------------------------------------------------------

    def _test_recent(self, lruvec, lru_type: int, token: int, swap_ok: bool) -> bool:
        """workingset_test_recent: refault distance on the eviction lruvec's clock <= the
        workingset size (that lruvec's memcg subtree: lruvec_page_state)."""
        distance = lruvec.nonresident_age - token
        return distance <= workingset_size(lruvec.hier_nr(), lru_type == LRU_FILE, swap_ok)

    def eviction_lruvec(self, sim, lruvec, sc):
        """workingset_eviction stamps the reclaim target's lruvec (the root's for global reclaim)."""
        return sim.target_lruvec(sc)

    def eviction_token(self, sim, lruvec, ids):
        """workingset_eviction: the token is the non-resident age, which each eviction advances."""
        n = len(ids)
        tokens = lruvec.nonresident_age + np.arange(n, dtype=np.int64)
        workingset_age_nonresident(lruvec, n)
        return tokens

    def _activate_refault(self, sim, lruvec, lru_type: int, ws: bool, pending: int) -> None:
        """Counters and cost of a refault judged recent (workingset_refault)."""
        sim.count(lruvec, "workingset_activate_" + TYPE_NAMES[lru_type])
        if ws:
            lru_note_cost(lruvec, lru_type == LRU_FILE, 1, 0, pending=pending)  # lru_note_cost_refault
            sim.count(lruvec, "workingset_restore_" + TYPE_NAMES[lru_type])

    # ---- hot path, one access at a time (exact driver) ----------------------------------------

    def folio_add(self, sim, lruvec, page, shadow, shadow_ws, swap_free, fault=False):
        f = sim.folios
        t = int(f.type[page])
        cls = INACTIVE
        evl = sim.memcgs[int(f.shadow_memcg[page])].lruvecs[lruvec.node.nid] if sim.multi else lruvec
        if shadow >= 0 and self._test_recent(evl, t, shadow, swap_free > 0):
            f.flags[page] |= _U16(PG_active | (PG_workingset if shadow_ws else 0))
            workingset_age_nonresident(lruvec, 1)
            self._activate_refault(sim, lruvec, t, shadow_ws, 0)
            cls = ACTIVE
        lruvec.add(f, np.array([page]), t * 2 + cls)

    def mark_accessed(self, sim, lruvec, page):
        """folio_mark_accessed: referenced on first touch, activated on the second."""
        f = sim.folios
        fl = int(f.flags[page])
        if not fl & PG_referenced:
            f.flags[page] = fl | PG_referenced
        elif fl & PG_unevictable:
            pass
        elif not fl & PG_active:
            f.flags[page] = (fl | PG_active) & ~PG_referenced
            lruvec.move(f, np.array([page]), int(f.type[page]) * 2 + ACTIVE)
            sim.vm["pgactivate"] += 1
            workingset_age_nonresident(lruvec, 1)

    # ---- hot path, one segment at a time (fast driver) ----------------------------------------

    def access_events(self, sim, lruvec, ev: AccessEvents) -> None:
        """The same semantics as folio_add / mark_accessed applied to a whole segment.

        mark_accessed is a counter per folio: state s = 2*active + referenced goes 0 -> 1 -> 2 -> 3
        and stays at 3, activating on the step 1 -> 2. Refault decisions depend on the eviction
        lruvec's clock and (hierarchical) list sizes, which earlier activations and additions in
        the segment under that lruvec's memcg change; they are found by iterating to the fixed
        point (each round fixes at least the first wrong decision; usually 1-2 rounds), falling
        back to the scalar hooks if it takes too long. With several memcgs (ev.memcg) each event
        belongs to its folio's lruvec and each refault is judged on its shadow's lruvec.
        """
        f = sim.folios
        page = ev.page
        is_add = ev.is_add
        typ = ev.lru_type.astype(np.int64)
        nid = lruvec.node.nid
        multi = ev.memcg is not None
        uniq, inv = dense_labels(page, f.count)
        fl = f.flags[uniq]
        s_flags = ((fl & PG_active) != 0) * 2 + ((fl & PG_referenced) != 0)  # int64
        unev = (fl & PG_unevictable) != 0
        add_idx = is_add.nonzero()[0]
        add_f = inv[add_idx]
        acc_idx = (~is_add).nonzero()[0]
        acc_f = inv[acc_idx]
        rank = occurrence_rank_lt2(acc_f, len(uniq))  # 0, 1 or 2 (= later) per ACCESS
        k_per = np.bincount(acc_f, minlength=len(uniq))
        tokens = ev.shadow[add_idx]
        refault = tokens >= 0
        ref_pos = add_idx[refault]
        ref_file = typ[ref_pos] == LRU_FILE
        swap_ok = ev.swap_free[ref_pos] > 0
        add_t = typ[add_idx]
        acc_t = typ[acc_idx]
        ev_m = ev.memcg.astype(np.int64) if multi else None  # lruvec (memcg id) of each event
        # the eviction lruvecs of the refaults (the shadow's memcg), each with the mask of the
        # refaults it judges and, per event, whether the event is under its memcg
        if multi and len(ref_pos):
            ref_em = f.shadow_memcg[page[ref_pos]].astype(np.int64)
            groups = []
            for e in np.unique(ref_em).tolist():
                elv = sim.memcgs[e].lruvecs[nid]
                under = np.zeros(len(sim.memcgs), dtype=bool)
                under[[d.id for d in elv.memcg.subtree()]] = True
                groups.append((elv, ref_em == e, under[ev_m]))
        else:
            groups = [(lruvec, slice(None), None)]  # every refault

        def promotions(act_add: np.ndarray) -> np.ndarray:
            """Which ACCESS events activate, given which ADDs came in active."""
            s_init = s_flags.copy()
            s_init[add_f] = act_add * 2
            return s_init, (rank == 1 - s_init[acc_f]) & ~unev[acc_f]

        act_add = np.zeros(len(add_idx), dtype=bool)
        any_refault = np.count_nonzero(refault) > 0
        if any_refault and np.count_nonzero(typ == LRU_FILE) == len(typ):
            # Only file events: every activation under the eviction lruvec's memcg raises its
            # clock and active_file by one and nothing else changes the file workingset size, so
            # the refault test gives the same answer at every point of the segment: decide with
            # the start values.
            dec = np.zeros(len(ref_pos), dtype=bool)
            for elv, sel, _ in groups:
                sizes0 = elv.hier_nr()
                anon_part = swap_ok[sel] * (sizes0[0] + sizes0[1])
                dec[sel] = (elv.nonresident_age - tokens[refault][sel]) <= sizes0[3] + anon_part
            act_add[refault] = dec
        elif any_refault:
            for _round in range(16):
                _, acc_act = promotions(act_add)
                dec = np.zeros(len(ref_pos), dtype=bool)
                for elv, sel, in_e in groups:
                    rp = ref_pos[sel]
                    sizes0 = elv.hier_nr()

                    def before(mask_pos: np.ndarray, in_e=in_e, rp=rp) -> np.ndarray:
                        """How many of these events (positions, sorted) under the eviction
                        lruvec's memcg come before each refault."""
                        if in_e is not None:
                            mask_pos = mask_pos[in_e[mask_pos]]
                        return np.searchsorted(mask_pos, rp)

                    # list sizes and the clock just before each refault, from the events before it
                    n_act_all = before(np.sort(np.concatenate((add_idx[act_add], acc_idx[acc_act]))))
                    sz = []
                    for t in (LRU_ANON, LRU_FILE):
                        add_in = before(add_idx[~act_add & (add_t == t)])
                        add_act = before(add_idx[act_add & (add_t == t)])
                        promo = before(acc_idx[acc_act & (acc_t == t)])
                        sz += [sizes0[2 * t] + add_in - promo, sizes0[2 * t + 1] + add_act + promo]
                    ws = workingset_size_batch(sz[0], sz[1], sz[2], sz[3], ref_file[sel], swap_ok[sel])
                    dec[sel] = (elv.nonresident_age + n_act_all - tokens[refault][sel]) <= ws
                new = np.zeros(len(add_idx), dtype=bool)
                new[refault] = dec
                if np.array_equal(new, act_add):
                    break
                act_add = new
            else:
                return self._access_events_scalar(sim, lruvec, ev)
        s_init, acc_act = promotions(act_add)

        # --- apply: flags
        s_final = np.minimum(s_init + k_per, 3)
        if np.count_nonzero(unev):
            s_final = np.where(unev & (k_per > 0), s_init | 1, s_final)  # unevictable: never activated
        newfl = (fl & ~_U16(PG_active | PG_referenced)) | ((s_final >= 2) * _U16(PG_active)) \
            | (((s_final & 1) != 0) * _U16(PG_referenced))
        f.flags[uniq] = newfl
        ws_bit = ev.shadow_ws[add_idx] & act_add
        if np.count_nonzero(ws_bit):
            f.flags[page[add_idx[ws_bit]]] |= _U16(PG_workingset)
        nact = int(np.count_nonzero(acc_act))
        sim.vm["pgactivate"] += nact
        # --- list insertions and moves, in event order
        # a folio added and then activated in the same segment ends where its activation puts
        # it: only each folio's last event needs a slot, so the events are unique
        moved = np.zeros(len(uniq), dtype=bool)
        moved[acc_f[acc_act]] = True
        keep_add = ~moved[add_f]
        ev_sel = np.concatenate((add_idx[keep_add], acc_idx[acc_act]))
        ev_lru = np.concatenate(((add_t * 2 + act_add)[keep_add], acc_t[acc_act] * 2 + ACTIVE))
        o = ev_sel.argsort(kind="stable")
        if not multi:
            self._apply_counts(sim, lruvec, act_add, add_t, ws_bit, True)
            workingset_age_nonresident(lruvec, int(np.count_nonzero(act_add)) + nact)
            lruvec.add_events(f, page[ev_sel[o]], ev_lru[o], unique=True)
            return
        add_m = ev_m[add_idx]
        acc_m = ev_m[acc_idx]
        j_all = np.flatnonzero(ws_bit)
        if len(j_all):
            self._note_cost_restores(sim, nid, add_m, add_t, j_all)
        ev_sel, ev_lru = ev_sel[o], ev_lru[o]
        sel_m = ev_m[ev_sel]
        for m in np.unique(ev_m).tolist():
            lv = sim.memcgs[m].lruvecs[nid]
            am = add_m == m
            self._apply_counts(sim, lv, act_add & am, add_t, ws_bit & am, False)
            workingset_age_nonresident(lv, int((act_add & am).sum()) + int((acc_act & (acc_m == m)).sum()))
            sm = sel_m == m
            if sm.any():
                lv.add_events(f, page[ev_sel[sm]], ev_lru[sm], unique=True)

    def _apply_counts(self, sim, lruvec, act_add, add_t, ws_bit, note_cost: bool) -> None:
        """workingset_activate / workingset_restore counters of a segment's refaults on the
        folios' lruvec; with `note_cost` (one lruvec) also the cost signal of each restore."""
        for t in (LRU_ANON, LRU_FILE):
            c = int(np.count_nonzero(act_add & (add_t == t)))
            if c:
                sim.count(lruvec, "workingset_activate_" + TYPE_NAMES[t], c)
        if np.count_nonzero(ws_bit):
            j = ws_bit.nonzero()[0]
            file_j = add_t[j] == LRU_FILE
            if note_cost:
                # lru_note_cost_refault per restore, in order; the folios added earlier in the
                # segment count as on the lists
                lru_note_cost_batch(lruvec, file_j, 1, j)
            nf = int(file_j.sum())
            if nf:
                sim.count(lruvec, "workingset_restore_file", nf)
            if len(j) - nf:
                sim.count(lruvec, "workingset_restore_anon", len(j) - nf)

    def _note_cost_restores(self, sim, nid, add_m, add_t, j) -> None:
        """lru_note_cost_refault for the restores at add positions j (in order), each on its
        folio's lruvec and every ancestor: each lruvec on those chains sees the restores under
        its memcg in order, with the folios added earlier in the segment under its memcg
        counting as on its lists."""
        file_j = add_t[j] == LRU_FILE
        chain = {}
        for m in np.unique(add_m[j]).tolist():
            for a in sim.memcgs[m].ancestors():
                chain[a.id] = a
        for a in chain.values():
            under = np.zeros(len(sim.memcgs), dtype=bool)
            under[[d.id for d in a.subtree()]] = True
            u = under[add_m]
            pending = np.cumsum(u) - u
            sel = u[j]
            lru_note_cost_seq(a.lruvecs[nid], file_j[sel], 1, pending[j[sel]])

    def _access_events_scalar(self, sim, lruvec, ev: AccessEvents) -> None:
        """The scalar hooks over the events, each on its folio's lruvec."""
        if ev.memcg is None:
            return super().access_events(sim, lruvec, ev)
        page, is_add, shadow, ws = ev.page.tolist(), ev.is_add.tolist(), ev.shadow.tolist(), ev.shadow_ws.tolist()
        swap_free, fault, mc = ev.swap_free.tolist(), ev.fault.tolist(), ev.memcg.tolist()
        nid = lruvec.node.nid
        for i in range(len(page)):
            lv = sim.memcgs[mc[i]].lruvecs[nid]
            if is_add[i]:
                self.folio_add(sim, lv, page[i], shadow[i], ws[i], swap_free[i], fault[i])
            else:
                self.mark_accessed(sim, lv, page[i])

    # ---- reclaim ------------------------------------------------------------------------------

    def prepare(self, sim, lruvec, sc: ScanControl) -> None:
        """prepare_scan_control: cost snapshot, which types may be deactivated, cache trim mode,
        and the tiny-file-cache check."""
        target = lruvec  # the target memcg's lruvec: sizes and events over its subtree
        sc.anon_cost = target.anon_cost
        sc.file_cost = target.file_cost
        if sc.force_deactivate:
            sc.may_deactivate = DEACTIVATE_ANON | DEACTIVATE_FILE
        else:
            for t, bit in ((LRU_ANON, DEACTIVATE_ANON), (LRU_FILE, DEACTIVATE_FILE)):
                refaults = target.hier_stat("workingset_activate_" + TYPE_NAMES[t])
                if refaults != target.refaults[t] or inactive_is_low(target, t, hierarchical=True):
                    sc.may_deactivate |= bit
                else:
                    sc.may_deactivate &= ~bit
        inactive_file = target.hier_nr()[LRU_FILE * 2 + INACTIVE]
        sc.cache_trim_mode = bool((inactive_file >> sc.priority) and not (sc.may_deactivate & DEACTIVATE_FILE))
        if self.uses("ptwalk") and id(lruvec) not in sc.priv.get("walked", ()):
            self._walk(sim, lruvec, sc)
        if sc.target_memcg is None or sc.target_memcg.parent is None:
            node = lruvec.node
            nr = target.hier_nr()  # the root's: node_page_state
            file = nr[LRU_FILE * 2] + nr[LRU_FILE * 2 + 1]
            anon = nr[LRU_ANON * 2 + INACTIVE]
            sc.file_is_tiny = bool(
                file + node.free <= node.wmark.high
                and not (sc.may_deactivate & DEACTIVATE_ANON)
                and (anon >> sc.priority)
            )

    def dry_run_key(self, sim, lruvec):
        """What prepare() reads besides list sizes, costs and free pages: whether each type saw
        refault activations since the last snapshot. (get_scan_count reads the swappiness and
        whether swap is left; after_lruvec and kswapd_age_node do nothing without anon folios,
        as in any dry run.) A subclass may read more in its hooks, and mechanisms walk: no key."""
        if type(self) is not Classic or any(self.mech.values()):
            return None
        return (lruvec.hier_stat("workingset_activate_anon") != lruvec.refaults[0],
                lruvec.hier_stat("workingset_activate_file") != lruvec.refaults[1])

    def reclaim_done(self, sim, node, sc: ScanControl) -> None:
        """snapshot_refaults(target memcg) at the end of kswapd's and direct/memcg reclaim's runs."""
        lv = sim.target_lruvec(sc)
        lv.refaults = [lv.hier_stat("workingset_activate_anon"), lv.hier_stat("workingset_activate_file")]

    def shrink_lruvec(self, sim, lruvec, sc):
        """shrink_lruvec; with ptwalk, a memcg's lruvec other than the target's is walked before
        its first pass of this reclaim run (the target's was walked in prepare)."""
        if self.uses("ptwalk") and id(lruvec) not in sc.priv.get("walked", ()):
            self._walk(sim, lruvec, sc)
        super().shrink_lruvec(sim, lruvec, sc)

    def references(self, sim, lruvec, ids, young, vm_exec, sc):
        """folio_check_references (mm/vmscan.c)."""
        f = sim.folios
        fl = f.flags[ids]
        ref = (fl & PG_referenced) != 0
        f.flags[ids] = fl & _NOT_REFERENCED  # folio_test_clear_referenced
        file = f.type[ids] == LRU_FILE
        v = (file & ref).view(np.int8) + np.int8(FOLIOREF_RECLAIM)  # RECLAIM_CLEAN if file & ref
        y = young > 0
        if np.count_nonzero(y):
            f.flags[ids[y]] |= _U16(PG_referenced)
            hot = ref | (young > 1) | (vm_exec & file)
            v[y] = (~hot[y]).view(np.int8)  # FOLIOREF_ACTIVATE if hot, else FOLIOREF_KEEP
        return v

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

    def shrink_active_list(self, sim, lruvec, lru_type: int, nr_to_scan: int, sc) -> None:
        """shrink_active_list: deactivate from the active tail; only young executable file folios
        stay active."""
        f = sim.folios
        ids = lruvec.isolate_tail(f, lru_type * 2 + ACTIVE, nr_to_scan)
        if len(ids) == 0:
            return
        sim.vm["pgrefill"] += len(ids)
        sim.cost["pages_scanned"] += len(ids)
        if self.uses("ptwalk"):  # what the last walk found instead of an rmap walk per folio
            rotate = f.walk_exec[ids] & (lru_type == LRU_FILE)
            f.walk_exec[ids] = False
        else:
            young, vm_exec = folio_referenced(sim, ids)
            rotate = (young > 0) & vm_exec & (lru_type == LRU_FILE)
        keep, deact = ids[rotate], ids[~rotate]
        f.flags[deact] = (f.flags[deact] & ~_U16(PG_active)) | _U16(PG_workingset)
        lruvec.add(f, keep, lru_type * 2 + ACTIVE)
        if len(keep):
            workingset_age_nonresident(lruvec, len(keep))
        lruvec.add(f, deact, lru_type * 2 + INACTIVE)
        sim.vm["pgdeactivate"] += len(deact)
        if len(keep):
            lru_note_cost(lruvec, lru_type == LRU_FILE, 0, len(keep))

    def after_lruvec(self, sim, lruvec, sc):
        """End of shrink_lruvec: keep the anon inactive list from running low."""
        if can_reclaim_anon(sim, sc) and inactive_is_low(lruvec, LRU_ANON):
            sim.cost["lru_lock_ops"] += 2  # isolate + putback
            self.shrink_active_list(sim, lruvec, LRU_ANON, SWAP_CLUSTER_MAX, sc)

    def kswapd_age_node(self, sim, node, sc):
        """kswapd_age_node: background anon deactivation when the root's anon inactive is low."""
        if not can_reclaim_anon(sim, sc):
            return
        if not inactive_is_low(sim.root_lruvec(node), LRU_ANON, hierarchical=True):
            return
        for lv in sim.lruvecs_under(None, node):
            sim.cost["lru_lock_ops"] += 2
            self.shrink_active_list(sim, lv, LRU_ANON, SWAP_CLUSTER_MAX, sc)


__all__ = ["Classic", "FOLIOREF_KEEP", "FOLIOREF_RECLAIM"]
