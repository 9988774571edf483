"""N-class LRU lists with lazy deletion, and the lruvec that holds them.

Each list is a double-ended array of folio ids: the head (newest) grows to the right, the tail
(oldest) to the left. A slot is valid while the folio's `stamp` equals the slot's stamp; moving a
folio to another list just gives it a new slot with a new stamp, so a move is O(1) and the old slot
is skipped when a scan reaches it (and dropped when the array is compacted). This is also how
MGLRU's generations behave: a folio's logical class can change without touching the list.

List index = type * nr_classes + class (classic: 0 inactive_anon, 1 active_anon, 2 inactive_file,
3 active_file).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from numba import njit

from ..jit import PREFETCH_AHEAD, noref, prefetch
from ..machine.folio import NO_LIST, PG_active, PG_workingset, FolioTable

_MIN_CAP = 256


@njit(cache=True)
def tail_valid(ids, stamps, lo, hi, fstamp, n):
    """Up to n valid slots from the tail (lo) of a list, oldest first, and the position just
    past the last one taken (stale slots on the way are skipped)."""
    out = np.empty(min(n, hi - lo), dtype=np.int64)
    k = 0
    while k < n and lo < hi:
        g = ids[lo]
        if fstamp[g] == stamps[lo]:
            out[k] = g
            k += 1
        lo += 1
    return out[:k], lo


@noref
def stamp_onto(g, lru, fstamp, flru, clock):
    """A folio put on list `lru` from compiled code: the next stamp of the shared clock (its slot
    is valid while the two match) and the list tag. Returns the stamp."""
    st = clock[0]
    clock[0] = st + 1
    fstamp[g] = st
    flru[g] = lru
    return st


@njit(cache=True)
def _add_unique(ids, lrus, flru, fstamp, nr, clock):
    """Lruvec.add_events' list tags, sizes and stamps for folios that appear once each, in
    order: each leaves its list (if on one) and gets the next stamp. Returns the stamps."""
    st = np.empty(len(ids), dtype=np.int64)
    for k in range(len(ids)):
        g = ids[k]
        if flru[g] >= 0:
            nr[flru[g]] -= 1
        st[k] = stamp_onto(g, lrus[k], fstamp, flru, clock)
        nr[lrus[k]] += 1
    return st


@njit(cache=True)
def compact_slots(ids, stamps, lo, hi, fstamp, need_head, need_tail):
    """A list's valid slots of [lo, hi) copied, in order, into new arrays four times the size they
    need (with `need_head` free slots past the head and `need_tail` before the tail at least;
    slots outside the window are never read, and left unset). Returns (ids, stamps, lo, hi)."""
    vid = np.empty(hi - lo, dtype=np.int64)
    vst = np.empty(hi - lo, dtype=np.int64)
    n = 0
    for k in range(lo, hi):
        if k + PREFETCH_AHEAD < hi:
            prefetch(fstamp, ids[k + PREFETCH_AHEAD])
        vid[n] = ids[k]  # written either way, kept when valid: stale slots come at random
        vst[n] = stamps[k]
        n += fstamp[ids[k]] == stamps[k]
    cap = max(_MIN_CAP, 4 * (n + need_head + need_tail))
    start = need_tail + (cap - n - need_head - need_tail) // 4
    nids = np.empty(cap, dtype=np.int64)
    nst = np.empty(cap, dtype=np.int64)
    nids[start : start + n] = vid[:n]
    nst[start : start + n] = vst[:n]
    return nids, nst, start, start + n


@njit(cache=True)
def rotate_dest(ids, flags, ftype, nr_classes):
    """folio_rotate_reclaimable's target under ReclaimOps' default rule: each folio has
    PG_active cleared and goes to the tail of its type's first class (the inactive list). Returns
    the lists (add_tail's `dest`)."""
    dest = np.empty(len(ids), dtype=np.int64)
    for k in range(len(ids)):
        flags[ids[k]] &= ~PG_active
        dest[k] = np.int64(ftype[ids[k]]) * nr_classes
    return dest


@njit(cache=True)
def add_tail(ids, dest, lru, li, ls, lo, hi, flru, fstamp, nr, clock):
    """Lruvec.add at the tail, from compiled code and Python alike: each folio ids[k] with
    dest[k] == lru, in order, leaves its list if it is on one and goes to the tail of list `lru`
    (arrays li, ls, window [lo, hi); room made before the tail first), with the next stamp, the
    last one ending oldest (lru_move_tail, folio by folio); `nr`: the lruvec's sizes. Returns the
    list's (ids, stamps, lo, hi)."""
    n = 0
    for k in range(len(ids)):
        n += dest[k] == lru
    if n == 0:
        return li, ls, lo, hi
    if lo < n:
        li, ls, lo, hi = compact_slots(li, ls, lo, hi, fstamp, 0, n)
    for k in range(len(ids)):
        if dest[k] != lru:
            continue
        g = ids[k]
        if flru[g] != NO_LIST:
            nr[flru[g]] -= 1
        lo -= 1
        li[lo] = g
        ls[lo] = stamp_onto(g, lru, fstamp, flru, clock)
        nr[lru] += 1
    return li, ls, lo, hi


class FolioList:
    """One LRU list: slot arrays plus the [lo, hi) window in use (lo = tail, hi - 1 = head)."""

    __slots__ = ("ids", "stamps", "lo", "hi")

    def __init__(self) -> None:
        self.ids = np.zeros(_MIN_CAP, dtype=np.int64)
        self.stamps = np.zeros(_MIN_CAP, dtype=np.int64)
        self.lo = self.hi = _MIN_CAP // 4

    def _compact(self, folios: FolioTable, need_head: int, need_tail: int) -> None:
        self.ids, self.stamps, self.lo, self.hi = compact_slots(self.ids, self.stamps, self.lo, self.hi, folios.stamp,
                                                                need_head, need_tail)

    def push_head(self, folios: FolioTable, ids: np.ndarray, stamps: np.ndarray) -> None:
        n = len(ids)
        if self.hi + n > len(self.ids):
            self._compact(folios, n, 0)
        self.ids[self.hi : self.hi + n] = ids
        self.stamps[self.hi : self.hi + n] = stamps
        self.hi += n

    def pop_tail(self, folios: FolioTable, n: int) -> np.ndarray:
        """Remove and return up to n valid folio ids from the tail, oldest first."""
        ids, self.lo = tail_valid(self.ids, self.stamps, self.lo, self.hi, folios.stamp, n)
        return ids

    def peek_tail(self, folios: FolioTable, n: int) -> np.ndarray:
        """The first n valid folio ids from the tail, oldest first, without removing them."""
        return tail_valid(self.ids, self.stamps, self.lo, self.hi, folios.stamp, n)[0]

    def valid_ids(self, folios: FolioTable) -> np.ndarray:
        """All folios on the list, tail (oldest) first. O(list) - for checks and dumps."""
        ids = self.ids[self.lo : self.hi]
        return ids[folios.stamp[ids] == self.stamps[self.lo : self.hi]]


@noref
def subtree_total(nr, sub_ptr, sub_idx, row):
    """Pages on every list of the lruvec in `row` and its memcg subtree (lruvec_page_state)."""
    t = 0
    for k in range(sub_ptr[row], sub_ptr[row + 1]):
        r = sub_idx[k]
        for i in range(nr.shape[1]):
            t += nr[r, i]
    return t


@noref
def subtree_nr(nr, sub_ptr, sub_idx, row, lru):
    """Pages on list `lru` of the lruvec in `row` and its memcg subtree."""
    t = 0
    for k in range(sub_ptr[row], sub_ptr[row + 1]):
        t += nr[sub_idx[k], lru]
    return t


class LruvecTable:
    """The counters of every lruvec on a node as arrays, one row per lruvec (= memcg id): list
    sizes, the workingset clock and the cost signal, plus the memcg tree (each row's parent row,
    and each row's subtree as a slice of `sub_idx`). Python code reads them through the Lruvec
    objects; compiled code (core.workingset, core.vmscan's cost signal, a policy's compiled hooks)
    takes the arrays."""

    def __init__(self, n: int, nr_lists: int):
        self.nr = np.zeros((n, nr_lists), dtype=np.int64)
        self.nr_logical = np.zeros((n, nr_lists), dtype=np.int64)  # core.lockfree: sizes by logical class
        self.nonresident_age = np.zeros(n, dtype=np.int64)
        self.anon_cost = np.zeros(n, dtype=np.int64)
        self.file_cost = np.zeros(n, dtype=np.int64)
        self.parent = np.full(n, -1, dtype=np.int64)
        self.sub_ptr = np.arange(n + 1, dtype=np.int64)
        self.sub_idx = np.arange(n, dtype=np.int64)

    def set_tree(self, parents: list[int]) -> None:
        """The memcg tree: parents[row] (-1 for the root); subtrees in pre-order."""
        n = len(parents)
        self.parent[:] = parents
        children: list[list[int]] = [[] for _ in range(n)]
        for r, p in enumerate(parents):
            if p >= 0:
                children[p].append(r)
        ptr, idx = [0], []
        for r in range(n):
            stack = [r]
            while stack:
                m = stack.pop()
                idx.append(m)
                stack.extend(reversed(children[m]))
            ptr.append(len(idx))
        self.sub_ptr = np.array(ptr, dtype=np.int64)
        self.sub_idx = np.array(idx, dtype=np.int64)

    def arrays(self):
        """The arrays compiled code takes, in this order."""
        return (self.nr, self.nonresident_age, self.anon_cost, self.file_cost, self.parent, self.sub_ptr,
                self.sub_idx)


class ListSizes:
    """A lruvec's list sizes as Python ints over its row of LruvecTable.nr (which compiled code
    updates in place): indexing and slicing give ints and lists, assignment writes the row."""

    __slots__ = ("a",)

    def __init__(self, row: np.ndarray):
        self.a = row

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.a[i].tolist()
        return int(self.a[i])

    def __setitem__(self, i, v) -> None:
        self.a[i] = v

    def __len__(self) -> int:
        return len(self.a)

    def __iter__(self):
        return iter(self.a.tolist())

    def __eq__(self, other) -> bool:
        return self.a.tolist() == list(other)

    def __repr__(self) -> str:
        return repr(self.a.tolist())


class Lruvec:
    """The LRU state of one (memcg, node) pair: lists, sizes, cost signal, workingset clock. The
    sizes, clock and costs live in row `row` of a LruvecTable (its own one-row table if none is
    given)."""

    def __init__(self, memcg, node, nr_classes: int, stamp_clock, table: LruvecTable | None = None,
                 row: int = 0):
        self.memcg = memcg
        self.node = node
        self.nr_classes = nr_classes
        self.nr_lists = 2 * nr_classes
        self.lists = [FolioList() for _ in range(self.nr_lists)]
        self.table = table if table is not None else LruvecTable(1, self.nr_lists)
        self.row = row if table is not None else 0
        self._nr = self.table.nr[self.row]  # pages per list (a view of the table's row)
        self._sizes = ListSizes(self._nr)
        self._logical = ListSizes(self.table.nr_logical[self.row])
        self._clock = stamp_clock      # shared monotonic stamp counter [next]
        self.refaults = [0, 0]         # snapshot of workingset_activate_{anon,file} (snapshot_refaults)
        self.priv: dict = {}           # the policy's per-lruvec state
        self.stat: Counter = Counter()  # per-lruvec event counters (lruvec_page_state events)

    @property
    def nr(self) -> ListSizes:
        """Pages per list."""
        return self._sizes

    @nr.setter
    def nr(self, values) -> None:
        self._nr[:] = values

    @property
    def nr_logical(self) -> ListSizes:
        """Pages per list by logical class (core.lockfree)."""
        return self._logical

    @nr_logical.setter
    def nr_logical(self, values) -> None:
        self._logical.a[:] = values

    @property
    def nonresident_age(self) -> int:
        """The workingset clock (mm/workingset.c)."""
        return int(self.table.nonresident_age[self.row])

    @nonresident_age.setter
    def nonresident_age(self, v: int) -> None:
        self.table.nonresident_age[self.row] = v

    @property
    def anon_cost(self) -> int:
        return int(self.table.anon_cost[self.row])

    @anon_cost.setter
    def anon_cost(self, v: int) -> None:
        self.table.anon_cost[self.row] = v

    @property
    def file_cost(self) -> int:
        return int(self.table.file_cost[self.row])

    @file_cost.setter
    def file_cost(self, v: int) -> None:
        self.table.file_cost[self.row] = v

    def list_index(self, lru_type: int, cls: int) -> int:
        return lru_type * self.nr_classes + cls

    def type_size(self, lru_type: int) -> int:
        b = lru_type * self.nr_classes
        return int(self._nr[b : b + self.nr_classes].sum())

    def total(self) -> int:
        return int(self._nr.sum())

    # hierarchical views (lruvec_page_state: a memcg's lruvec counts its whole subtree); for a
    # memcg without children they are the lruvec's own numbers

    def subtree(self):
        """This lruvec and the lruvecs of every descendant memcg on the same node, pre-order."""
        nid = self.node.nid
        for m in self.memcg.subtree():
            yield m.lruvecs[nid]

    def _subtree_list(self) -> list:
        """subtree() as a list, without generators (the hierarchical sums below run several
        times per reclaim batch)."""
        nid = self.node.nid
        out = []
        stack = [self.memcg]
        while stack:
            m = stack.pop()
            out.append(m.lruvecs[nid])
            stack.extend(reversed(m.children))
        return out

    def hier_nr(self) -> list[int]:
        """Pages per list over the memcg's subtree."""
        if not self.memcg.children:
            return self._nr.tolist()
        out = np.zeros(self.nr_lists, dtype=np.int64)
        for lv in self._subtree_list():
            out += lv._nr
        return out.tolist()

    def hier_total(self) -> int:
        if not self.memcg.children:
            return int(self._nr.sum())
        t = 0
        for lv in self._subtree_list():
            t += int(lv._nr.sum())
        return t

    def hier_stat(self, name: str) -> int:
        """An event counter summed over the memcg's subtree."""
        if not self.memcg.children:
            return self.stat[name]
        t = 0
        for lv in self._subtree_list():
            t += lv.stat[name]
        return t

    def parent_lruvec(self):
        """parent_lruvec: the parent memcg's lruvec on this node (None at the root)."""
        p = self.memcg.parent
        return None if p is None else p.lruvecs[self.node.nid]

    def _stamps(self, n: int) -> np.ndarray:
        s = self._clock[0]
        self._clock[0] = s + n
        return np.arange(s, s + n, dtype=np.int64)

    def add(self, folios: FolioTable, ids: np.ndarray, lru: int, tail: bool = False) -> None:
        """Put folios that are on no list onto list `lru` (head by default), in order."""
        n = len(ids)
        if n == 0:
            return
        if tail:
            fl = self.lists[lru]
            fl.ids, fl.stamps, fl.lo, fl.hi = add_tail(np.asarray(ids, dtype=np.int64), np.full(n, lru, dtype=np.int64),
                                                       lru, fl.ids, fl.stamps, fl.lo, fl.hi, folios.lru, folios.stamp,
                                                       self._nr, self._clock)
            return
        st = self._stamps(n)
        folios.stamp[ids] = st
        folios.lru[ids] = lru
        self.lists[lru].push_head(folios, ids, st)
        self.nr[lru] += n

    def add_events(self, folios: FolioTable, ids: np.ndarray, lrus: np.ndarray, unique: bool = False) -> None:
        """Apply a sequence of head insertions/moves in order; a folio may appear several times
        (e.g. faulted in, then activated): only its last event's slot stays valid. `unique`
        promises that no folio appears twice (cheaper).

        Folios that are on a list before the call are moved off it first.
        """
        n = len(ids)
        if n == 0:
            return
        lrus = np.asarray(lrus, dtype=np.int64)
        if unique:
            st = _add_unique(ids, lrus, folios.lru, folios.stamp, self._nr, self._clock)
            gids, gstamps, spans = group_slots(ids, lrus, st, n, self.nr_lists)
            for lru, a, b in spans.tolist():
                self.lists[lru].push_head(folios, gids[a:b], gstamps[a:b])
            return
        old = folios.lru[ids].astype(np.int64)
        st = self._stamps(n)
        per = np.bincount(lrus, minlength=self.nr_lists)  # slots per list (every event gets one)
        # stamps grow with the event index, so a folio's largest stamp is its last event
        folios.stamp[ids] = -1
        np.maximum.at(folios.stamp, ids, st)
        last = folios.stamp[ids] == st
        folios.lru[ids] = lrus[folios.stamp[ids] - st[0]]
        on = last & (old >= 0)
        final = np.bincount(lrus[last], minlength=self.nr_lists)
        nr = self._nr
        if np.count_nonzero(on):
            for lru, c in enumerate(np.bincount(old[on], minlength=self.nr_lists).tolist()):
                nr[lru] -= c
        for lru, c in enumerate(final.tolist()):
            nr[lru] += c
        # superseded slots are stale from the start
        used = [lru for lru, c in enumerate(per.tolist()) if c]
        if len(used) == 1:
            self.lists[used[0]].push_head(folios, ids, st)
            return
        for lru in used:
            sel = lrus == lru
            self.lists[lru].push_head(folios, ids[sel], st[sel])

    def move(self, folios: FolioTable, ids: np.ndarray, lru: int, tail: bool = False) -> None:
        """Move folios (each on some list of this lruvec) to list `lru`."""
        self.delete(folios, ids)
        self.add(folios, ids, lru, tail)

    def delete(self, folios: FolioTable, ids: np.ndarray) -> None:
        """Take folios off their lists (lazily: their slots become stale)."""
        if len(ids) == 0:
            return
        old = folios.lru[ids]
        cnt = np.bincount(old.astype(np.int64), minlength=self.nr_lists)
        for lru in np.flatnonzero(cnt):
            self.nr[lru] -= int(cnt[lru])
        folios.lru[ids] = NO_LIST
        folios.stamp[ids] = -1

    def isolate_tail(self, folios: FolioTable, lru: int, n: int) -> np.ndarray:
        """isolate_lru_folios: take up to n folios from the tail of `lru`, oldest first."""
        ids = self.lists[lru].pop_tail(folios, n)
        if len(ids):
            self.nr[lru] -= len(ids)
            folios.lru[ids] = NO_LIST
            folios.stamp[ids] = -1
        return ids


# ---- compiled hooks' list insertions and counters ------------------------------------------------


@noref
def isolate_tail_into(ids, stamps, lo, hi, fstamp, flru, n, out):
    """Lruvec.isolate_tail from compiled code, on a list's arrays and window [lo, hi): up to n
    folios from the tail into `out`, oldest first, each taken off its list (tag and stamp
    cleared). Returns (folios taken, the new lo)."""
    k = 0
    while k < n and lo < hi:
        # a slot is stale (its folio moved since) at random: selects, not branches
        g = ids[lo]
        valid = fstamp[g] == stamps[lo]
        out[k] = g
        flru[g] = NO_LIST if valid else flru[g]
        fstamp[g] = -1 if valid else fstamp[g]
        k += valid
        lo += 1
    return k, lo


@noref
def list_del(g, row, flru, fstamp, nr):
    """Lruvec.delete of one folio from compiled code: off its list in `row` (its slot goes
    stale)."""
    nr[row, flru[g]] -= 1
    flru[g] = NO_LIST
    fstamp[g] = -1


@noref
def add_at(g, lru, ids, stamps, h, fstamp, flru, clock):
    """Lruvec.add of one folio from compiled code: the next stamp and the list tag, its slot at
    position h of the list's arrays (the caller advances the list's hi)."""
    stamps[h] = stamp_onto(g, lru, fstamp, flru, clock)
    ids[h] = g


@noref
def folio_deactivate(flags, g):
    """shrink_active_list's deactivation of one folio: PG_active cleared, PG_workingset set (it
    was active once: a refault of it is a workingset refault)."""
    flags[g] = (flags[g] & ~PG_active) | PG_workingset



@noref
def list_add(g, row, lru, flru, fstamp, nr, clock, push, npush):
    """Lruvec.add for one folio from compiled code: a new stamp, the list tag and size now; the
    slot itself is left in `push` (folio, row * nr_lists + list, stamp) for HookOut.apply, which
    pushes the slots onto the lists' heads in order. Returns the new number of slots."""
    st = stamp_onto(g, lru, fstamp, flru, clock)
    nr[row, lru] += 1
    push[0][npush] = g
    push[1][npush] = row * nr.shape[1] + lru
    push[2][npush] = st
    return npush + 1


@njit(cache=True)
def group_slots(ids, lists, stamps, n, nlists):
    """The first n slots (folio, list, stamp) grouped by list, a stable counting sort: returns
    the folios and stamps in list order and, per list that got slots, (list, start, stop) into
    them (slots of one list keep their original order)."""
    starts = np.zeros(nlists + 1, dtype=np.int64)
    for k in range(n):
        starts[lists[k] + 1] += 1
    nused = 0
    for g in range(nlists):
        if starts[g + 1]:
            nused += 1
        starts[g + 1] += starts[g]
    spans = np.empty((nused, 3), dtype=np.int64)
    u = 0
    for g in range(nlists):
        if starts[g + 1] > starts[g]:
            spans[u, 0] = g
            spans[u, 1] = starts[g]
            spans[u, 2] = starts[g + 1]
            u += 1
    gids = np.empty(n, dtype=np.int64)
    gstamps = np.empty(n, dtype=np.int64)
    for k in range(n):
        p = starts[lists[k]]
        gids[p] = ids[k]
        gstamps[p] = stamps[k]
        starts[lists[k]] = p + 1
    return gids, gstamps, spans


class HookOut:
    """What a compiled hook call leaves for Python: list slots to push (list_add) and per-lruvec
    counters (`stat`, one column per name; names that are memory.stat events count on the lruvec
    and in vmstat, the others in vmstat only). apply() hands both over. One per simulator and
    set of names (HookOut.get), its buffers grown as needed."""

    def __init__(self, sim, names: tuple[str, ...]):
        self.sim = sim
        self.names = names
        self.stat = np.zeros((len(sim.memcgs), len(names)), dtype=np.int64)
        self.push = ()
        self.npush = 0
        self.node = sim.node  # the node whose lists and lruvecs apply() updates (get)
        self.lists = {}  # per node id: the node's FolioLists by row * nr_lists + list (made on first use)

    @classmethod
    def get(cls, sim, names: tuple[str, ...], slots: int, node=None) -> "HookOut":
        """The simulator's HookOut for these counter names, with room for `slots` list slots,
        for the lists of `node` (default: the first node)."""
        cache = sim.__dict__.setdefault("_hook_out", {})
        out = cache.get(names)
        if out is None:
            out = cache[names] = cls(sim, names)
        if len(out.push) == 0 or len(out.push[0]) < slots:
            m = max(slots, 64)
            out.push = (np.empty(m, np.int64), np.empty(m, np.int64), np.empty(m, np.int64))
        out.npush = 0
        out.node = node or sim.node
        return out

    def apply(self) -> None:
        sim = self.sim
        n = self.npush
        if n:
            nid = self.node.nid
            lists = self.lists.get(nid)
            if lists is None:  # every list of the node, by row * nr_lists + list
                lists = self.lists[nid] = [fl for row in range(len(sim.memcgs))
                                           for fl in sim.memcgs[row].lruvecs[nid].lists]
            gids, gstamps, spans = group_slots(*self.push, n, len(lists))
            f = sim.folios
            for g, a, b in spans.tolist():
                lists[g].push_head(f, gids[a:b], gstamps[a:b])
        stat = self.stat
        if not self.names or not stat.any():
            return
        nz = np.flatnonzero(stat)
        ncol = len(self.names)
        memcg_stat = sim.MEMCG_STAT
        for k, c in zip(nz.tolist(), stat.ravel()[nz].tolist()):
            row, col = divmod(k, ncol)
            name = self.names[col]
            sim.vm[name] += c
            if name in memcg_stat:
                sim.memcgs[row].lruvecs[self.node.nid].stat[name] += c
        stat[:] = 0
