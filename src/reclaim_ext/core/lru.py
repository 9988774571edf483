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

from ..machine.folio import NO_LIST, FolioTable

_MIN_CAP = 256


class FolioList:
    """One LRU list: slot arrays plus the [lo, hi) window in use (lo = tail, hi - 1 = head)."""

    __slots__ = ("ids", "stamps", "lo", "hi")

    def __init__(self) -> None:
        self.ids = np.zeros(_MIN_CAP, dtype=np.int64)
        self.stamps = np.zeros(_MIN_CAP, dtype=np.int64)
        self.lo = self.hi = _MIN_CAP // 4

    def _compact(self, folios: FolioTable, need_head: int, need_tail: int) -> None:
        ids = self.ids[self.lo : self.hi]
        st = self.stamps[self.lo : self.hi]
        keep = folios.stamp[ids] == st
        ids, st = ids[keep], st[keep]
        n = len(ids)
        cap = max(_MIN_CAP, 2 * (n + need_head + need_tail))
        lo = need_tail + (cap - n - need_head - need_tail) // 4
        self.ids = np.zeros(cap, dtype=np.int64)
        self.stamps = np.zeros(cap, dtype=np.int64)
        self.ids[lo : lo + n] = ids
        self.stamps[lo : lo + n] = st
        self.lo, self.hi = lo, lo + n

    def push_head(self, folios: FolioTable, ids: np.ndarray, stamps: np.ndarray) -> None:
        n = len(ids)
        if self.hi + n > len(self.ids):
            self._compact(folios, n, 0)
        self.ids[self.hi : self.hi + n] = ids
        self.stamps[self.hi : self.hi + n] = stamps
        self.hi += n

    def push_tail(self, folios: FolioTable, ids: np.ndarray, stamps: np.ndarray) -> None:
        """Add at the tail; ids[0] ends up as the very last (oldest) entry."""
        n = len(ids)
        if self.lo < n:
            self._compact(folios, 0, n)
        self.ids[self.lo - n : self.lo] = ids[::-1]
        self.stamps[self.lo - n : self.lo] = stamps[::-1]
        self.lo -= n

    def pop_tail(self, folios: FolioTable, n: int) -> np.ndarray:
        """Remove and return up to n valid folio ids from the tail, oldest first."""
        out = []
        got = 0
        while got < n and self.lo < self.hi:
            w = min(self.hi - self.lo, max(2 * (n - got), 64))
            ids = self.ids[self.lo : self.lo + w]
            valid = (folios.stamp[ids] == self.stamps[self.lo : self.lo + w]).nonzero()[0]
            need = n - got
            if len(valid) >= need:
                out.append(ids[valid[:need]])
                self.lo += int(valid[need - 1]) + 1
                got += need
            else:
                out.append(ids[valid])
                self.lo += w
                got += len(valid)
        if not out:
            return np.zeros(0, dtype=np.int64)
        return out[0].copy() if len(out) == 1 else np.concatenate(out)

    def peek_tail(self, folios: FolioTable, n: int) -> np.ndarray:
        """The first n valid folio ids from the tail, oldest first, without removing them."""
        out, got, lo = [], 0, self.lo
        while got < n and lo < self.hi:
            w = min(self.hi - lo, max(2 * (n - got), 64))
            ids = self.ids[lo : lo + w]
            valid = (folios.stamp[ids] == self.stamps[lo : lo + w]).nonzero()[0]
            take = valid[: n - got]
            out.append(ids[take])
            got += len(take)
            lo += w
        if not out:
            return np.zeros(0, dtype=np.int64)
        return out[0] if len(out) == 1 else np.concatenate(out)

    def valid_ids(self, folios: FolioTable) -> np.ndarray:
        """All folios on the list, tail (oldest) first. O(list) - for checks and dumps."""
        ids = self.ids[self.lo : self.hi]
        return ids[folios.stamp[ids] == self.stamps[self.lo : self.hi]]


class Lruvec:
    """The LRU state of one (memcg, node) pair: lists, sizes, cost signal, workingset clock."""

    def __init__(self, memcg, node, nr_classes: int, stamp_clock: list[int]):
        self.memcg = memcg
        self.node = node
        self.nr_classes = nr_classes
        self.nr_lists = 2 * nr_classes
        self.lists = [FolioList() for _ in range(self.nr_lists)]
        self.nr = [0] * self.nr_lists  # pages per list
        self._clock = stamp_clock      # shared monotonic stamp counter [next]
        self.anon_cost = 0
        self.file_cost = 0
        self.nonresident_age = 0       # workingset clock (mm/workingset.c)
        self.refaults = [0, 0]         # snapshot of workingset_activate_{anon,file} (snapshot_refaults)
        self.priv: dict = {}           # the policy's per-lruvec state
        self.stat: Counter = Counter()  # per-lruvec event counters (lruvec_page_state events)

    def list_index(self, lru_type: int, cls: int) -> int:
        return lru_type * self.nr_classes + cls

    def type_size(self, lru_type: int) -> int:
        b = lru_type * self.nr_classes
        return sum(self.nr[b : b + self.nr_classes])

    def total(self) -> int:
        return sum(self.nr)

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
            return self.nr
        out = [0] * self.nr_lists
        for lv in self._subtree_list():
            for i, c in enumerate(lv.nr):
                out[i] += c
        return out

    def hier_total(self) -> int:
        if not self.memcg.children:
            return sum(self.nr)
        t = 0
        for lv in self._subtree_list():
            t += sum(lv.nr)
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
        st = self._stamps(n)
        folios.stamp[ids] = st
        folios.lru[ids] = lru
        if tail:
            self.lists[lru].push_tail(folios, ids, st)
        else:
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
        old = folios.lru[ids].astype(np.int64)
        st = self._stamps(n)
        per = np.bincount(lrus, minlength=self.nr_lists)  # slots per list (every event gets one)
        if unique:
            folios.stamp[ids] = st
            folios.lru[ids] = lrus
            on = old >= 0
            final = per
        else:
            # stamps grow with the event index, so a folio's largest stamp is its last event
            folios.stamp[ids] = -1
            np.maximum.at(folios.stamp, ids, st)
            last = folios.stamp[ids] == st
            folios.lru[ids] = lrus[folios.stamp[ids] - st[0]]
            on = last & (old >= 0)
            final = np.bincount(lrus[last], minlength=self.nr_lists)
        nr = self.nr
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
