"""mglru_ext: the multi-generational LRU written as a reclaim_ext policy, like cache_ext's eBPF
MGLRU (the F2 fidelity check, docs/hardening.md, compares it with the built-in `mglru`).

Generations by access recency (../shared/reference/kernel-reclaim.md §3), per type (`ctx.types`):

  * four generations in a ring, max_seq shared, min_seq per type; a list per generation, head =
    newest;
  * placement (lru_gen_folio_seq): anon pages (faulted in: active) go to max_seq - 1, page cache
    read through read() to the oldest generation max_seq - 3, a refault that the policy's own
    shadow (the min_seq at eviction, with the page's tier) finds recent, |max_seq - seq| < 4,
    and that was workingset, one generation younger; never below min_seq;
  * an fd access (`accessed` outside reclaim) counts references, lru_gen_inc_refs: referenced,
    then LRU_REFS 1..3, then workingset; tier = 3 if workingset else order_base_2(refs);
  * a proposed page the core found young (`accessed` during the same reclaim pass): lru_gen_set_refs
    (the first sighting only marks it referenced, a later one sets workingset and promotes it to
    max_seq); a first sighting is kept and goes back as evict_folios puts it back: never into
    the oldest generation (page cache: refs cleared, to max_seq - 1; anon: max_seq - 1);
  * eviction from the tail of the oldest generation of the type chosen by the PID controller
    (anon only when the core says it can be reclaimed, `ctx.anon_ok`); sort_folio: a page whose
    tier is above the controller's tier index is protected (moved to min_seq + 1, counted);
    candidates are moved to min_seq + 1 at once, where a page the core keeps would go;
  * try_to_inc_min_seq past empty generations; aging (inc_max_seq) when only two generations of
    an evictable type are left; a full ring moves the oldest generation up (inc_min_seq);
  * the PID controller's refaulted/evicted/protected counters per type and tier, folded into the
    averages whenever min_seq advances.

  * the aging's page-table walk is the kernel's walk_mm (`ctx.walk_page_tables`: the PTE tables
    of the memcg's processes, skipping those whose PMD accessed bit is clear, charged per PTE
    walked): pages found young are marked referenced, or promoted to max_seq when seen before.

What it cannot see, so it differs from the built-in: there is no look-around (the rmap check of
a proposed page does not scan its neighbours), hence no Bloom filter either (look-around is what
adds tables back to it: without it the walk would skip more and more tables, as the built-in's
does with `--mechanism -lookaround`), page faults of file pages are placed as read()s, and the
built-in's priority-driven aging ("better age" at three generations) is replaced by aging when
two are left.

Run it:  reclaim-ext run --policy examples/mglru_ext.py --workload zipf -p kind=anon --memory 16MiB
"""

from reclaim_ext.ext import ANON, FILE, IndexedList, Policy

MIN_NR_GENS, MAX_NR_GENS, MAX_NR_TIERS = 2, 4, 4
MIN_LRU_BATCH = 64
MAX_SCAN = 4096
SWAPPINESS = 60


def tier_of(refs, ws):
    """lru_tier_from_refs: 3 if workingset, else order_base_2(refs) (refs 0..4)."""
    if ws:
        return MAX_NR_TIERS - 1
    return 0 if refs <= 1 else (1 if refs == 2 else 2)


class MglruExt(Policy):
    name = "mglru-ext"

    def init(self, ctx):
        self.gens = tuple(tuple(IndexedList() for _ in range(MAX_NR_GENS)) for _ in (ANON, FILE))
        self.max_seq = MAX_NR_GENS - 1
        self.min_seq = [0, 0]
        self.kind = {}           # handle -> type
        self.gen = {}            # handle -> generation (seq % 4)
        self.refs = {}           # handle -> 0 (not referenced) .. 4 (referenced, LRU_REFS 3)
        self.ws = set()          # PG_workingset
        self.shadow = {}         # evicted handle -> (min_seq of its type at eviction, refs, ws)
        z = lambda: [[0] * MAX_NR_TIERS for _ in (ANON, FILE)]
        self.avg_refaulted, self.avg_total = z(), z()
        self.refaulted, self.evicted, self.protected = z(), z(), z()
        self.proposed = set()

    # ---- placement ---------------------------------------------------------------------------

    def _place(self, h, t, seq, tail=False):
        seq = max(seq, self.min_seq[t])
        g = seq % MAX_NR_GENS
        self.gen[h] = g
        lst = self.gens[t][g]
        lst.push_tail(h) if tail else lst.push_head(h)

    def _move(self, h, t, seq):
        self.gens[t][self.gen[h]].remove(h)
        self._place(h, t, seq)

    def added(self, ctx, handles):
        self.proposed.clear()
        for h, t in zip(handles.tolist(), ctx.types(handles).tolist()):
            self.kind[h] = t
            self.refs[h] = 0
            ws = False
            sh = self.shadow.pop(h, None)
            if sh is not None and abs(self.max_seq - sh[0]) < MAX_NR_GENS:  # lru_gen_refault: recent
                self.refaulted[t][tier_of(sh[1], sh[2])] += 1
                if sh[2]:
                    self.ws.add(h)
                    ws = True
            if t == ANON:  # a fault: active (or not in swap cache): max_seq - 1, max_seq if workingset
                self._place(h, t, self.max_seq - 1 + ws)
            else:          # page cache: the oldest generation, one younger if workingset
                self._place(h, t, self.max_seq - MAX_NR_GENS + 1 + ws)

    def accessed(self, ctx, handles):
        for h in handles.tolist():
            t = self.kind.get(h)
            if t is None:
                continue
            if h in self.proposed:  # seen young: lru_gen_set_refs, then activation
                self.proposed.discard(h)
                if self.refs[h] or h in self.ws:
                    self.ws.add(h)
                    self.refs[h] = 0
                    self._move(h, t, self.max_seq)
                else:
                    self._keep(h, t)
                continue
            self.proposed.clear()
            r = self.refs[h]  # lru_gen_inc_refs
            if r == 0:
                self.refs[h] = 1
            elif r == 4:
                self.ws.add(h)
            else:
                self.refs[h] = r + 1

    def _keep(self, h, t):
        """A first sighting (FOLIOREF_KEEP): the page goes back where lru_gen_folio_seq puts an
        inactive page, anon to max_seq - 1 with PG_referenced kept, page cache to the oldest
        generation; but evict_folios puts no rejected page back into the oldest generation: it
        gets PG_active with its refs cleared instead, so it lands in max_seq - 1 (as every page
        cache page does here, since max_seq - 3 <= min_seq)."""
        seq = self.max_seq - 1 if t == ANON else self.max_seq - MAX_NR_GENS + 1
        if seq <= self.min_seq[t]:
            self.refs[h] = 0
            seq = self.max_seq - 1
        else:
            self.refs[h] = 1
        self._move(h, t, seq)

    def removed(self, ctx, handles):
        for h in handles.tolist():
            t = self.kind.pop(h, None)
            if t is None:
                continue
            self.gens[t][self.gen.pop(h)].discard(h)
            r, ws = self.refs.pop(h), h in self.ws
            self.ws.discard(h)
            self.proposed.discard(h)
            self.evicted[t][tier_of(r, ws)] += 1
            self.shadow[h] = (self.min_seq[t], r, ws)
        if len(self.shadow) > 2 * max(ctx.capacity, 1):  # shadows four generations old are never recent
            self.shadow = {h: s for h, s in self.shadow.items() if self.max_seq - s[0] < MAX_NR_GENS}

    # ---- the PID controller ------------------------------------------------------------------

    def _pos(self, t, tier, gain):
        tiers = range(MAX_NR_TIERS) if tier == MAX_NR_TIERS else (tier,)
        ref = sum(self.avg_refaulted[t][i] + self.refaulted[t][i] for i in tiers)
        tot = sum(self.avg_total[t][i] + self.protected[t][i] + self.evicted[t][i] for i in tiers)
        return ref, tot, gain

    @staticmethod
    def _positive(sp, pv):
        return pv[0] < MIN_LRU_BATCH or pv[0] * (sp[1] + MIN_LRU_BATCH) * sp[2] <= (sp[0] + 1) * pv[1] * pv[2]

    def _tier_idx(self, t):
        sp = self._pos(t, 0, 2)
        for tier in range(1, MAX_NR_TIERS):
            if not self._positive(sp, self._pos(t, tier, 3)):
                return tier - 1
        return MAX_NR_TIERS - 1

    def _type_to_scan(self):
        sp = self._pos(ANON, MAX_NR_TIERS, SWAPPINESS)
        pv = self._pos(FILE, MAX_NR_TIERS, 200 - SWAPPINESS)
        return FILE if self._positive(sp, pv) else ANON

    def _fold(self, t):
        for i in range(MAX_NR_TIERS):
            self.avg_refaulted[t][i] = (self.avg_refaulted[t][i] + self.refaulted[t][i]) // 2
            self.avg_total[t][i] = (self.avg_total[t][i] + self.evicted[t][i] + self.protected[t][i]) // 2
            self.refaulted[t][i] = self.evicted[t][i] = self.protected[t][i] = 0

    # ---- aging -------------------------------------------------------------------------------

    def _inc_min_seq_empty(self, t):
        """try_to_inc_min_seq for one type: past empty generations while three are left."""
        moved = False
        while self.min_seq[t] + MIN_NR_GENS <= self.max_seq and not self.gens[t][self.min_seq[t] % MAX_NR_GENS]:
            self.min_seq[t] += 1
            moved = True
        if moved:
            self._fold(t)
        return moved

    def _walk(self, ctx, evictable):
        """The aging's page-table walk (ctx.walk_page_tables: walk_mm with its Bloom filters, over
        the page tables of the memcg being reclaimed) for the evictable types: folio_update_gen
        on each page found young: one seen for the first time is marked referenced, one seen
        before or young through two PTEs is promoted to max_seq with workingset."""
        young_ids, young = ctx.walk_page_tables(evictable)
        g = self.max_seq % MAX_NR_GENS
        for h, y in zip(young_ids.tolist(), young.tolist()):
            t = self.kind.get(h)
            if t is None:
                continue
            if self.refs[h] or h in self.ws or y >= 2:
                self.ws.add(h)
                self.refs[h] = 0
                if self.gen[h] != g:
                    self._move(h, t, self.max_seq)
            else:
                self.refs[h] = 1

    def _inc_max_seq(self, evictable):
        for t in (ANON, FILE):
            if self.max_seq - self.min_seq[t] + 1 < MAX_NR_GENS:
                continue
            if t in evictable:  # inc_min_seq: the oldest generation moves up to min_seq + 1
                old = self.gens[t][self.min_seq[t] % MAX_NR_GENS]
                nxt = (self.min_seq[t] + 1) % MAX_NR_GENS
                while old:
                    h = old.pop_tail()
                    r, ws = self.refs[h], h in self.ws
                    if r + ws != 5:
                        self.protected[t][tier_of(r, ws)] += 1
                    self.refs[h] = 0
                    self.gen[h] = nxt
                    self.gens[t][nxt].push_tail(h)
                self._fold(t)
            self.min_seq[t] += 1  # not evictable: the oldest slot becomes the youngest
        self.max_seq += 1

    # ---- eviction ----------------------------------------------------------------------------

    def evict(self, ctx, n):
        evictable = (ANON, FILE) if ctx.anon_ok else (FILE,)
        for t in evictable:
            self._inc_min_seq_empty(t)
        if min(self.min_seq[t] for t in evictable) + MIN_NR_GENS >= self.max_seq:
            self._walk(ctx, evictable)  # only two generations left: age
            self._inc_max_seq(evictable)
        first = self._type_to_scan() if len(evictable) == 2 else FILE
        out, batch = [], set()
        for t in (first, 1 - first):
            if t in evictable and len(out) < n:
                self._scan(t, n - len(out), out, batch)
            if out:
                break
        return out

    def _scan(self, t, k, out, batch):
        """scan_folios + sort_folio on the oldest generation of type t."""
        tier_idx = self._tier_idx(t)
        scanned = 0
        while len(out) < k and scanned < MAX_SCAN:
            if self.max_seq - self.min_seq[t] + 1 <= MIN_NR_GENS:
                return
            lst = self.gens[t][self.min_seq[t] % MAX_NR_GENS]
            h = lst.tail()
            if h is None:
                if not self._inc_min_seq_empty(t):
                    return
                continue
            if h in batch:
                return
            scanned += 1
            r, ws = self.refs[h], h in self.ws
            tier = tier_of(r, ws)
            nxt = self.min_seq[t] + 1
            if tier > tier_idx or r + ws == 5:  # protected: folio_inc_gen
                if r + ws != 5:
                    self.protected[t][tier] += 1
                self.refs[h] = 0
                self._move(h, t, nxt)
                continue
            self._move(h, t, nxt)  # where a page the core keeps goes back to
            self.proposed.add(h)
            batch.add(h)
            out.append(h)

    def dump(self, ctx):
        sizes = [[len(self.gens[t][(s) % MAX_NR_GENS]) for s in range(self.min_seq[t], self.max_seq + 1)]
                 for t in (ANON, FILE)]
        return f"max_seq {self.max_seq} min_seq {self.min_seq} anon {sizes[0]} file {sizes[1]}"
