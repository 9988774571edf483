"""classic_ext: Linux's classic active/inactive LRU written as a reclaim_ext policy (the F2
fidelity check, docs/hardening.md, compares it with the built-in `classic`).

The kernel's rules (../shared/reference/kernel-reclaim.md §2), as far as the plug-in API can see
them:

  * two lists per type (anon, file; `ctx.types`), head = newest: a new page enters its inactive
    list; a refault whose distance (the policy's own non-resident clock, advanced by every eviction
    and activation) is within the workingset size enters the active list (workingset_refault);
  * folio_mark_accessed (a read()/write() hit, `accessed` outside reclaim): the first touch sets
    "referenced", the second moves an inactive page to the active head;
  * folio_check_references for a page the policy proposed that the core found young (it comes
    back through `accessed` during the same reclaim pass): activated if it was referenced before,
    otherwise marked referenced and kept on the inactive list (one more trip round);
  * deactivation (shrink_active_list, its young bits tested and cleared with `ctx.referenced`;
    a young executable file page stays active): while a type may be deactivated (its inactive list is low,
    inactive * isqrt(10 * GiB) < active, or it saw refault activations since the last reclaim
    run) the active tail is moved to the inactive head, scanned in proportion to the inactive
    scan as get_scan_count's size >> priority budgets do; deactivated pages get "workingset";
  * victims from the inactive tail, file only when the core says anon cannot be reclaimed
    (`ctx.anon_ok`), otherwise anon and file in proportion to their inactive sizes weighted by
    swappiness 60 (anon 60 : file 140, get_scan_count's fractions with equal costs). A proposed
    page is moved to the inactive head at once: if the core keeps it (dirty, young) it is where
    putback would put it.

What it cannot see, so it differs from the built-in: whether a young page found by the core's
check was young through two mappings or an executable one (the core activates every young
page it is given and reports it through `accessed`); refault activations the core made itself
(the policy keeps its own shadows); scan priorities, and the reclaim costs (lru_note_cost) that
bias get_scan_count.

Run it:  reclaim-ext run --policy examples/classic_ext.py --workload mixed --memory 16MiB
"""

from collections import OrderedDict
from math import isqrt

from reclaim_ext.ext import ANON, FILE, IndexedList, Policy

SWAPPINESS = 60


class ClassicExt(Policy):
    name = "classic-ext"

    def init(self, ctx):
        self.inactive = (IndexedList(), IndexedList())  # by type: ANON, FILE
        self.active = (IndexedList(), IndexedList())
        self.kind = {}              # handle -> type
        self.referenced = set()     # PG_referenced
        self.workingset = set()     # PG_workingset (was active)
        self.age = 0                # the non-resident age clock
        self.shadow = OrderedDict()  # evicted handle -> (age at eviction, workingset), oldest first
        self.refault_act = [0, 0]   # refault activations per type
        self.snapshot = [0, 0]      # ... at the start of the current reclaim run
        self.may_refault = [False, False]
        self.proposed = set()       # handles of the current reclaim pass's batches
        self.in_reclaim = False
        self.anon_ok = True

    # ---- the hot path ------------------------------------------------------------------------

    def added(self, ctx, handles):
        self.in_reclaim = False
        self.proposed.clear()
        hs = handles.tolist()
        for h, t in zip(hs, ctx.types(handles).tolist()):
            self.kind[h] = t
            sh = self.shadow.pop(h, None)
            if sh is not None and self.age - sh[0] <= self._workingset_size(t):
                self.age += 1  # workingset_activation
                self.refault_act[t] += 1
                if sh[1]:
                    self.workingset.add(h)
                self.active[t].push_head(h)
            else:
                self.inactive[t].push_head(h)

    def accessed(self, ctx, handles):
        for h in handles.tolist():
            t = self.kind.get(h)
            if t is None:
                continue
            if h in self.proposed:  # folio_check_references: seen young by the core
                self.proposed.discard(h)
                if h in self.referenced and h in self.inactive[t]:
                    self._activate(h, t)
                else:
                    self.referenced.add(h)  # KEEP: it is at the inactive head already
                continue
            self.in_reclaim = False
            self.proposed.clear()
            if h not in self.referenced:  # folio_mark_accessed
                self.referenced.add(h)
            elif h in self.inactive[t]:
                self._activate(h, t)
                self.referenced.discard(h)

    def removed(self, ctx, handles):
        for h in handles.tolist():
            t = self.kind.pop(h, None)
            if t is None:
                continue
            if not self.inactive[t].discard(h):
                self.active[t].discard(h)
            self.shadow[h] = (self.age, h in self.workingset)
            self.age += 1  # workingset_eviction
            self.referenced.discard(h)
            self.workingset.discard(h)
            self.proposed.discard(h)
        cap = max(ctx.capacity, 1)
        while self.shadow:  # older shadows can never be within a workingset size
            h, (a, _) = next(iter(self.shadow.items()))
            if self.age - a <= cap:
                break
            del self.shadow[h]

    # ---- reclaim -----------------------------------------------------------------------------

    def evict(self, ctx, n):
        self.anon_ok = ctx.anon_ok
        if not self.in_reclaim:  # a new reclaim run: prepare_scan_control's refault snapshot
            self.in_reclaim = True
            self.may_refault = [self.refault_act[t] != self.snapshot[t] for t in (ANON, FILE)]
            self.snapshot = list(self.refault_act)
        types = (ANON, FILE) if ctx.anon_ok else (FILE,)
        share = self._split(n, types)
        out, batch = [], set()
        for t in types:
            k = share[t]
            if k <= 0:
                continue
            self._age_active(ctx, t, k)
            self._take(t, k, out, batch)
        for t in (FILE, ANON) if ctx.anon_ok else (FILE,):  # short: the other type, then deactivate
            if len(out) < n:
                self._take(t, n - len(out), out, batch)
            if len(out) < n:
                self._deactivate(ctx, t, n - len(out))
                self._take(t, n - len(out), out, batch)
        if ctx.anon_ok:  # end of shrink_lruvec: keep the anon inactive list from running low
            if self._inactive_low(ANON):
                self._deactivate(ctx, ANON, 32)
        return out

    def _split(self, n, types):
        if len(types) == 1:
            return {types[0]: n, 1 - types[0]: 0}
        a = SWAPPINESS * len(self.inactive[ANON])
        f = (200 - SWAPPINESS) * len(self.inactive[FILE])
        if a + f == 0:
            return {ANON: 0, FILE: n}
        na = (n * a) // (a + f)
        return {ANON: na, FILE: n - na}

    def _take(self, t, k, out, batch):
        lst = self.inactive[t]
        for _ in range(min(k, len(lst))):
            h = lst.tail()
            if h in batch:  # went round the whole list
                break
            lst.move_head(h)  # where putback puts it if the core keeps it
            self.proposed.add(h)
            batch.add(h)
            out.append(h)

    def _age_active(self, ctx, t, k):
        """shrink_active_list on the active list in proportion to the inactive scan, when the
        type may be deactivated."""
        inact, act = len(self.inactive[t]), len(self.active[t])
        if act == 0 or not (self.may_refault[t] or self._inactive_low(t)):
            return
        self._deactivate(ctx, t, max(1, (k * act) // max(inact, 1)))

    def _deactivate(self, ctx, t, k):
        """shrink_active_list: the active tail's young bits are tested and cleared
        (ctx.referenced); young executable file pages stay active, the rest are deactivated."""
        act, inact = self.active[t], self.inactive[t]
        ids = [act.pop_tail() for _ in range(min(k, len(act)))]
        if not ids:
            return
        young, vm_exec = ctx.referenced(ids)
        for h, y, x in zip(ids, young.tolist(), vm_exec.tolist()):
            if y and x and t == FILE:
                act.push_head(h)
            else:
                inact.push_head(h)
                self.workingset.add(h)

    def _activate(self, h, t):
        self.inactive[t].remove(h)
        self.active[t].push_head(h)
        self.age += 1  # workingset_activation

    def _inactive_low(self, t):
        inact, act = len(self.inactive[t]), len(self.active[t])
        gb = (inact + act) >> 18
        ratio = isqrt(10 * gb) if gb else 1
        return inact * ratio < act

    def _workingset_size(self, t):
        ws = len(self.active[FILE])
        if t == ANON:
            ws += len(self.inactive[FILE])
        if self.anon_ok:
            ws += len(self.active[ANON])
            if t == FILE:
                ws += len(self.inactive[ANON])
        return ws

    def dump(self, ctx):
        return (f"anon {len(self.inactive[ANON])}/{len(self.active[ANON])} "
                f"file {len(self.inactive[FILE])}/{len(self.active[FILE])} shadows {len(self.shadow)}")
