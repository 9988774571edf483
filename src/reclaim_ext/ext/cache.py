"""Plain-cache mode: a fixed capacity in pages, no watermarks, one eviction per miss when full,
every access visible to the policy in order. This is the model of libCacheSim and of cache_ext's
evaluation, so reclaim_ext policies can be checked against libCacheSim's miss ratios.

An object is one page, named by (file, page) of the trace record (pid and kind are ignored). Per
access: a hit goes to the policy's `accessed` (consecutive hits in one call); a miss, when the
cache is full, first asks `evict(ctx, 1)` for a victim, removes it (`removed`), then admits the
page (`added`). A policy that raises, answers outside the contract or exits is ejected (exit
record in the result) and the built-in fallback, LRU by last access, serves the rest of the run;
so does a shortfall (an empty answer) while the policy runs, and a DEFER answer. No page is lost: the core keeps its
own residency and recency for every page.

A policy with compiled hooks (ext.compiled.CompiledPolicy) runs each chunk in one compiled loop
(`_run_compiled`): the same events in the same order, the victim checked by the loop, and a hook
that raises or a bad victim ends the loop at that access, which Python finishes as above.
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from ..errors import ConfigError
from ..machine.index import KeyIndex
from ..trace.base import TimedChunks
from .host import HOOK_BUDGET_S, STARVE_LIMIT, PolicyHost
from ..core.batch import first_occurrence_masked
from . import compiled as cmp
from .policy import DEFER, Context, Policy, defines
from .safety import (
    EXIT_ERROR, EXIT_ERROR_POLICY, EXIT_ERROR_STALL, EXIT_UNREG, ContractError, PolicyStall, check_victims,
    format_exception,
)

_PAGE_BITS = 40
FALLBACK = "fallback LRU"  # the core's own LRU, which serves the run once the policy has left
LOOKAHEAD_MAX = 1 << 15  # victims asked of a lookahead policy at once (at most)
COMPILED_BLOCK = 1 << 16  # accesses per call of a compiled loop: each call has the hook budget (R5)
COMPILED = "compiled hooks"  # what the watchdog names while a compiled loop runs


def object_keys(chunk: np.ndarray) -> np.ndarray:
    """The object key of each record: its page in file 0 (block and key-value traces may use the
    whole 64-bit id space), else file << 40 | page."""
    page = chunk["page"].astype(np.uint64)
    file = chunk["file"].astype(np.uint64)
    if not file.any():
        return page
    if (page[file != 0] >> np.uint64(_PAGE_BITS)).any():
        raise ConfigError("cache mode: a page index above 2**40 is only allowed in file 0")
    return np.where(file != 0, (file << np.uint64(_PAGE_BITS)) | page, page)


_NO_LEFT = np.zeros(0, dtype=np.int64)


@njit(cache=True)
def _listed_walk(fpos, before, pages, rank, cp, free, listed, keeps, miss, gone):
    """CacheSim._run_stretches' walk over a window's accesses to listed pages, in order
    (positions `fpos`, the misses before each `before`, their `pages`): an access to a page
    already evicted by then is a miss (it comes back: `miss` is set, and the misses after it
    count one more); an access before its turn takes the page off the list (unless `keeps`:
    the policy does not see hits); a page met again in the window is a hit. Stops where the
    list runs out. `gone`: scratch by page, left clear. Returns (misses found, pages still
    listed, the places in cand[cp:] of the pages taken off, ascending)."""
    m = listed
    fen = np.zeros(m + 1, dtype=np.int64)  # places taken off so far (a Fenwick tree: prefix counts)
    off = np.zeros(m, dtype=np.bool_)
    extra = 0
    noff = 0
    for j in range(len(fpos)):
        b = before[j] + extra
        if b > free + listed:  # the list ran out before this access
            break
        h = pages[j]
        if gone[h]:
            continue  # left the list or came back earlier in this stretch: a hit
        r = rank[h] - cp
        k = r + 1
        c = 0
        while k > 0:  # places before or at r taken off
            c += fen[k]
            k -= k & -k
        place = r - c  # its place in the list now
        gone[h] = True
        if place < b - free:  # evicted before this access: a miss (brought back)
            miss[fpos[j]] = True
            extra += 1
        elif not keeps:
            k = r + 1
            while k <= m:
                fen[k] += 1
                k += k & -k
            off[r] = True
            noff += 1
            listed -= 1
        else:
            gone[h] = False  # hits do not count for this policy: still listed
    for j in range(len(pages)):
        gone[pages[j]] = False
    left = np.empty(noff, dtype=np.int64)
    k = 0
    for r in range(m):
        if off[r]:
            left[k] = r
            k += 1
    return extra, listed, left


class CacheSim:
    """One cache of `capacity` pages run by a reclaim_ext policy (see the module docstring)."""

    def __init__(self, capacity: int, policy: Policy, seed: int = 0, hook_budget: float = HOOK_BUDGET_S,
                 starve_limit: int = STARVE_LIMIT, entry_cap: int | None = None):
        if capacity < 1:
            raise ConfigError(f"capacity: {capacity} pages is too small (need at least 1)")
        self.capacity = int(capacity)
        self.policy = policy
        self.index = KeyIndex()
        self.resident = np.zeros(1024, dtype=bool)
        self.last = np.zeros(1024, dtype=np.int64)  # last access position: the fallback's LRU order
        self.nr_resident = 0
        self.accesses = self.hits = self.misses = self.evictions = 0
        # fallback_evictions: evictions whose victim the fallback LRU chose (the policy gone, a DEFER
        # answer, a top-up); fallback_requests: victim requests it served after the policy left
        self.events = {"stale_handles": 0, "topped_up": 0, "fallback_evictions": 0, "fallback_requests": 0,
                       "deferred": 0}
        self._by_fallback = False  # whether the last _ask_victims answer came from the fallback
        self.ctx = Context(capacity=self.capacity, rng=np.random.default_rng(seed))
        self.host = PolicyHost(policy, self.ctx, self.events, hook_budget, starve_limit, entry_cap=entry_cap)
        self.history: list[dict] = []  # exit records of policies detached or replaced earlier
        self.switches: list[dict] = []  # the switches made: at, scope, from, to
        self._flag = np.zeros(0, dtype=bool)  # outstanding victims of the current stretch
        self._rank = np.zeros(0, dtype=np.int64)
        self._gone_buf = np.zeros(0, dtype=bool)  # _listed_walk's scratch
        self._cnt = np.zeros(cmp.N_CNT, dtype=np.int64)  # a compiled loop's counters and progress
        self._replay = self.host.start(replay=True, apply=False)  # a compiled policy's loop, else None

    @property
    def alive(self) -> bool:
        return self.host.alive

    def policy_name(self) -> str:
        """The name of what chooses victims now: the policy, or the fallback LRU once it left."""
        return getattr(self.policy, "name", type(self.policy).__name__) if self.alive else FALLBACK

    @property
    def exit(self):
        return self.host.exit

    def _evict_one(self, call_removed: bool, when: np.ndarray, handle: np.ndarray) -> None:
        """One eviction for the miss being served (ctx.incoming is the page coming in);
        `call_removed`: whether the policy defines removed(), which gets `when` (the access's
        position) and `handle` (one slot, for the victim): arrays the core does not read again."""
        victim = self._one_victim()
        if self._by_fallback:
            self.events["fallback_evictions"] += 1
        self.resident[victim] = False
        self.nr_resident -= 1
        self.evictions += 1
        self.ctx.nr_resident = self.nr_resident
        if call_removed and self.alive:
            handle[0] = victim
            self.ctx.when = when
            self.host.call("removed", handle)

    # ---- the driver ----------------------------------------------------------------------------

    def _grow(self, n: int) -> None:
        if n > len(self.resident):
            cap = max(n, 2 * len(self.resident))
            self.resident = np.concatenate((self.resident, np.zeros(cap - len(self.resident), bool)))
            self.last = np.concatenate((self.last, np.zeros(cap - len(self.last), np.int64)))

    def switch(self, policy: Policy | None, at: int) -> None:
        """Detach the current policy (exit UNREG) and attach `policy` (None: the fallback LRU
        alone): it is initialised and adopts every resident page, least recently used first."""
        old = self.host
        self.switches.append({"at": at, "scope": "system", "from": self.policy_name(),
                              "to": getattr(policy, "name", type(policy).__name__) if policy else FALLBACK,
                              "happened": True})
        if old.alive:
            old.eject(EXIT_UNREG, f"{'replaced' if policy else 'detached'} at access {at}", None)
        old.finish()
        self.history.append(old.exit.as_dict())
        self._replay = None
        if policy is None:
            return
        self.policy = policy
        self.events = {k: 0 for k in self.events}
        self.host = PolicyHost(policy, self.ctx, self.events, old.watchdog.budget, old.starve_limit,
                               entry_cap=old.entry_cap)
        self._replay = self.host.start(replay=True)
        res = np.flatnonzero(self.resident[: self.index.count])
        order = np.argsort(self.last[res], kind="stable")
        self.ctx.when = self.last[res][order]  # their last accesses: LRU first
        self.host.call("added", res[order])

    def run(self, trace, progress=None, on_chunk=None) -> None:
        self.chunks = TimedChunks(trace)  # trace_seconds: the trace's own part of the wall time
        for chunk in self.chunks:
            if len(chunk) == 0:
                continue
            if on_chunk is not None:
                on_chunk(self.accesses)
            ids = self.index.get_or_add(object_keys(chunk))
            self._grow(self.index.count)
            t = self.accesses
            done = 0
            if self.alive and self._replay is not None:
                done = self._run_compiled(ids, t)
            elif self.alive and not self.policy.lookahead:
                done = self._run_each(ids, t)
            if done < len(ids):  # a lookahead policy, the fallback alone, or ejected mid-chunk
                self._run_stretches(ids[done:], t + done)
            self.accesses = t + len(ids)
            if progress is not None:
                progress(len(chunk))
        self.host.finish()

    def _run_each(self, ids: np.ndarray, t: int) -> int:
        """One access at a time (any policy): returns how many accesses were done (all of them,
        unless the policy was ejected; the rest then goes to _run_stretches). A run of hits is
        one accessed() call, made when the run ends (at the next miss or the chunk's end)."""
        ctx, host, policy = self.ctx, self.host, self.policy
        resident, last = self.resident, self.last
        call_added, call_accessed = defines(policy, "added"), defines(policy, "accessed")
        call_removed = defines(policy, "removed")
        n = len(ids)
        # each access's position. A hook gets views of `ids`, `when` and, for removed(), of
        # `rwhen` and `victims` (int64): the core reads none of them again at or before the access
        # being served, so a policy may keep or change them
        when = np.arange(t, t + n, dtype=np.int64)
        rwhen, victims = when.copy(), np.empty(n, dtype=np.int64)
        start = -1  # the first access of the run of hits in progress
        j = 0
        for h in ids.tolist():
            if resident[h]:
                last[h] = t + j
                if start < 0:
                    start = j
                j += 1
                continue
            if start >= 0:  # the run of hits that ends here
                self._hits(ids, when, start, j, call_accessed)
                if not host.alive:
                    return j
                start = -1
            ctx.now = now = t + j
            self.misses += 1
            if self.nr_resident >= self.capacity:
                ctx.incoming = h
                self._evict_one(call_removed, rwhen[j : j + 1], victims[j : j + 1])
                ctx.incoming = None
            resident[h] = True
            last[h] = now
            self.nr_resident += 1
            ctx.nr_resident = self.nr_resident
            j += 1
            if call_added and host.alive:
                ctx.when = when[j - 1 : j]
                host.call("added", ids[j - 1 : j])
            if not host.alive:
                return j
        if start >= 0:
            self._hits(ids, when, start, j, call_accessed)
        return j

    def _hits(self, ids: np.ndarray, when: np.ndarray, start: int, end: int, call_accessed: bool) -> None:
        """The run of hits ids[start:end] (at positions when[start:end]): counted, then one
        accessed() call when the policy defines it (their recency is the caller's)."""
        self.hits += end - start
        if call_accessed and self.host.alive:
            self.ctx.now = int(when[end - 1])
            self.ctx.when = when[start:end]
            self.host.call("accessed", ids[start:end])

    # ---- compiled hooks ---------------------------------------------------------------------------

    def _run_compiled(self, ids: np.ndarray, t: int) -> int:
        """A compiled policy's accesses, in blocks of COMPILED_BLOCK, one compiled call each:
        returns how many were done (all, unless the policy was ejected; as _run_each)."""
        self.policy.grow(self.index.count)
        done = 0
        while done < len(ids) and self.alive:
            done += self._compiled_block(ids[done : done + COMPILED_BLOCK], t + done)
        return done

    def _compiled_block(self, ids: np.ndarray, t: int) -> int:
        """One call of the compiled loop, timed as one hook call (R5: a block still running past
        the budget is ejected once it returns; one that never returns meets the watchdog's last
        resort, compiled code cannot be interrupted). A hook that raised or a bad victim stops
        the loop at access `pos` with the core's state exact up to the hook in progress; this
        ejects the policy and finishes that access as the Python path does. Returns how many
        accesses were done."""
        cnt = self._cnt
        cnt[:] = 0
        cnt[cmp.C_NR] = self.nr_resident
        cnt[cmp.C_STATUS] = cmp.ST_RUNNING
        wd = self.host.watchdog
        exc = None
        c = None
        try:
            try:
                c = wd.enter(COMPILED)
                self._replay(ids, t, self.resident, self.last, self.capacity, self.index.count, self.policy.arrays,
                             cnt)
            finally:
                wd.leave()
        except PolicyStall as e:  # the stall lands after the loop returned (or raised: its context)
            wd.leave()
            exc = e.__context__ if isinstance(e.__context__, Exception) else None
        except Exception as e:  # noqa: BLE001 - whatever a compiled hook raises ends the policy
            exc = e
        finally:  # also on a Ctrl-C: the counters of the accesses done
            self.hits += int(cnt[cmp.C_HITS])
            self.misses += int(cnt[cmp.C_MISSES])
            self.evictions += int(cnt[cmp.C_EVICTIONS])
            self.nr_resident = self.ctx.nr_resident = int(cnt[cmp.C_NR])
        stalled = wd.stalled(c)
        n = len(ids)
        if cnt[cmp.C_STATUS] == cmp.ST_DONE:
            self.ctx.now = t + n - 1
            if stalled:
                self.host.eject(EXIT_ERROR_STALL, f"{COMPILED} ran longer than {wd.budget:g} s on accesses {t:,} to "
                                f"{t + n - 1:,}", None)
            return n
        pos = int(cnt[cmp.C_POS])
        stage = int(cnt[cmp.C_STAGE])  # the hook in progress at access pos
        hook = cmp.STAGE_HOOK[stage]
        self.ctx.now = now = t + pos
        if cnt[cmp.C_STATUS] == cmp.ST_BAD_VICTIM:
            self.host.eject(EXIT_ERROR, self._bad_victim(int(cnt[cmp.C_BAD])), hook)
        elif exc is not None:
            self.host.eject(EXIT_ERROR_POLICY, f"{type(exc).__name__}: {exc}", hook, tb=format_exception(exc))
        else:  # a stall that hid the hook's exception: the loop did not finish
            self.host.eject(EXIT_ERROR_STALL, f"{COMPILED} ran longer than {wd.budget:g} s", hook)
        if stage == cmp.S_NONE:  # no hook had run yet: access pos is untouched
            return pos
        h = int(ids[pos])
        if stage == cmp.S_EVICT:  # no victim from the policy: the fallback's, as a top-up (R4)
            self.events["topped_up"] += 1
            self.events["fallback_evictions"] += 1
            victim = int(self._fallback_victims(1)[0])
            self.resident[victim] = False
            self.nr_resident -= 1
            self.evictions += 1
        if stage in (cmp.S_EVICT, cmp.S_REMOVED):  # then the page comes in
            self.resident[h] = True
            self.last[h] = now
            self.nr_resident += 1
        self.ctx.nr_resident = self.nr_resident
        return pos + 1

    def _bad_victim(self, v: int) -> str:
        """Why a compiled on_evict's answer broke the contract (R1, R2)."""
        if v < 0 or v >= self.index.count:
            return f"on_evict() returned handle {v}, which the core never issued (forged)"
        return (f"on_evict() returned handle {v}, which is not resident (a compiled evict must name a "
                "resident page)")

    # ---- stretches: lookahead policies and the fallback alone -----------------------------------

    def _ask_victims(self, k: int) -> np.ndarray:
        """The next k victims or fewer, in order: the policy's answer to evict(ctx, k), checked
        against the contract (R1, R2); the fallback LRU's k oldest pages when the policy defers
        or is gone; when the answer has no usable victim (a shortfall, or the answer that ejected
        the policy), the fallback's oldest page, counted as a top-up (R4)."""
        if not self.alive:
            self._by_fallback = True
            self.events["fallback_requests"] += 1
            return self._fallback_victims(k)
        return self._victims_of(self.host.call("evict", k), k)

    def _victims_of(self, answer, k: int) -> np.ndarray:
        """_ask_victims for the policy's `answer` to evict(ctx, k) (None once it was ejected)."""
        host = self.host
        self._by_fallback = True
        if host.alive:
            if answer is DEFER:
                self.events["deferred"] += 1
                return self._fallback_victims(k)
            try:
                victims, stale = check_victims(answer, k, self.resident, self.index.count)
            except ContractError as e:
                host.eject(EXIT_ERROR, str(e), "evict")
                victims, stale = None, 0
            if victims is not None:
                self.events["stale_handles"] += stale
                host.answered(len(victims))
                if len(victims):
                    self._by_fallback = False
                    return victims
        self.events["topped_up"] += 1
        return self._fallback_victims(1)

    def _one_victim(self) -> int:
        """_ask_victims(1) as a handle; the common answer, one resident handle in a list, is
        checked here without numpy."""
        host = self.host
        if host.alive:
            answer = host.call("evict", 1)
            if host.alive and type(answer) is list and len(answer) == 1:
                v = answer[0]
                if type(v) is int and 0 <= v < self.index.count and self.resident[v]:
                    host.answered(1)
                    self._by_fallback = False
                    return v
            return int(self._victims_of(answer, 1)[0])
        return int(self._ask_victims(1)[0])

    def _fallback_victims(self, k: int) -> np.ndarray:
        """The k least recently used resident pages, oldest first (lookahead-valid: LRU)."""
        res = np.flatnonzero(self.resident[: self.index.count])
        lst = self.last[res]
        if k < len(res):
            part = np.argpartition(lst, k - 1)[:k]
            return res[part[np.argsort(lst[part], kind="stable")]]
        return res[np.argsort(lst, kind="stable")]

    def _run_stretches(self, ids: np.ndarray, t0: int) -> None:
        """Replay `ids` (accesses t0, t0+1, ...) in stretches with numpy.

        A stretch starts with a list of victims in order (asked when the cache is full and the
        list is used up). A page resident at the start and not on the list stays resident for the
        whole stretch, and no page brought in is evicted in it; so an access is a miss iff it is
        the first access in the stretch to a page not resident at the start, or an access to a
        listed page after that page's eviction. The misses give the evictions: once the free
        slots are used, each miss evicts the next listed page. Listed pages accessed before their
        turn leave the list (for a lookahead policy: its promise; a policy that does not see hits
        keeps them listed). The only sequential part is a walk over the accesses to listed pages;
        a stretch ends right before an access to an evicted listed page, or before the miss that
        would need a victim beyond the list. The result is the one-by-one replay's, exactly."""
        n = len(ids)
        resident, last, flag = self.resident, self.last, self._victim_flag(len(self.resident))
        rank = self._rank
        size = len(resident)
        keeps = False   # whether listed pages stay listed when accessed (hits invisible)
        by_fallback = False  # whether the list came from the fallback
        cand = np.zeros(0, dtype=np.int64)  # the list; cand[cp:] not evicted yet
        cp = 0
        pos = 0
        mr = max(self.misses / self.accesses, 0.01) if self.accesses else 0.5
        while pos < n:
            free = self.capacity - self.nr_resident
            avail = free + len(cand) - cp
            if avail <= 0:
                flag[cand] = False
                self.ctx.now = t0 + pos
                self.ctx.incoming = None  # victims for several misses to come
                cand = self._ask_victims(self._lookahead_k())
                by_fallback = self._by_fallback
                cp = 0
                flag[cand] = True
                rank[cand] = np.arange(len(cand))
                keeps = self.alive and not defines(self.policy, "accessed")
                continue
            w = min(n - pos, max(256, min(1 << 16, int(avail / mr * 1.25) + 64)))
            win = ids[pos : pos + w]
            miss = first_occurrence_masked(win, ~resident[win], size)
            miss_pos = np.flatnonzero(miss)
            if len(miss_pos) > avail:
                c = int(miss_pos[avail])
                win, miss, miss_pos = win[:c], miss[:c], miss_pos[:avail]
            left = _NO_LEFT  # places (in cand[cp:]) of listed pages accessed before their turn
            if cp < len(cand):
                fpos = np.flatnonzero(flag[win])
                if len(fpos):
                    before = (np.cumsum(miss) - miss)[fpos]  # misses before each such access
                    listed = len(cand) - cp
                    extra, listed, left = _listed_walk(fpos, before, win[fpos], rank, cp, free, listed, keeps, miss,
                                                       self._gone(size))
                    if extra:
                        miss_pos = np.flatnonzero(miss)
                    if len(miss_pos) > free + listed:  # fewer victims than the misses need
                        c = int(miss_pos[free + listed])
                        win, miss, miss_pos = win[:c], miss[:c], miss_pos[: free + listed]
            if len(left):
                idx = cp + left
                flag[cand[idx]] = False
                cand = np.delete(cand, idx)
                rank[cand[cp:]] = np.arange(cp, len(cand))
            m = len(miss_pos)
            ev = max(0, m - free)
            L = len(win)
            times = np.arange(t0 + pos, t0 + pos + L, dtype=np.int64)
            victims = cand[cp : cp + ev]
            cp += ev
            resident[victims] = False
            flag[victims] = False
            got = win[miss_pos]
            resident[got] = True
            last[win] = times  # a repeated page: its last access wins
            self.nr_resident += m - ev
            self.misses += m
            self.hits += L - m
            self.evictions += ev
            if ev and by_fallback:
                self.events["fallback_evictions"] += ev
            if L:
                mr = 0.8 * mr + 0.2 * max(m / L, 0.001)
            pos += L
            if self.alive and L:
                self._stretch_hooks(win, times, miss, miss_pos, free, victims)
                if not self.alive:  # ejected: the fallback's victims are its own
                    flag[cand[cp:]] = False
                    cand, cp = cand[:0], 0
        flag[cand[cp:]] = False

    def _stretch_hooks(self, win, times, miss, miss_pos, free, victims) -> None:
        """One stretch's events for the policy: removed, added, accessed (ctx.when orders them)."""
        ctx, host, p = self.ctx, self.host, self.policy
        ctx.now = int(times[-1])
        ctx.nr_resident = self.nr_resident
        if len(victims) and defines(p, "removed"):
            ctx.when = times[miss_pos[free:]]
            host.call("removed", victims)
        if len(miss_pos) and defines(p, "added"):
            ctx.when = times[miss_pos]
            host.call("added", win[miss_pos])
        if len(miss_pos) < len(win) and defines(p, "accessed"):
            hp = np.flatnonzero(~miss)
            ctx.when = times[hp]
            host.call("accessed", win[hp])
        ctx.when = None

    def _gone(self, size: int) -> np.ndarray:
        """The listed walk's scratch by page (_listed_walk leaves it clear)."""
        if len(self._gone_buf) < size:
            self._gone_buf = np.zeros(size, dtype=bool)
        return self._gone_buf

    def _victim_flag(self, size: int) -> np.ndarray:
        if len(self._flag) < size:
            self._flag = np.zeros(size, dtype=bool)
            self._rank = np.zeros(size, dtype=np.int64)  # a victim's place in the current list
        return self._flag

    def _lookahead_k(self) -> int:
        """How many victims to ask a lookahead policy for at once (the fallback too)."""
        return max(1, min(LOOKAHEAD_MAX, self.capacity // 4, self.nr_resident))

    def check_conservation(self) -> None:
        """Every page is resident or not, and the count matches (R10)."""
        n = int(self.resident[: self.index.count].sum())
        if n != self.nr_resident or n > self.capacity:
            raise AssertionError(f"cache mode: {n} resident pages, counter {self.nr_resident}, capacity {self.capacity}")

    def result(self) -> dict:
        return {
            "mode": "cache",
            "capacity": self.capacity,
            "accesses": self.accesses,
            "hits": self.hits,
            "misses": self.misses,
            "miss_ratio": self.misses / self.accesses if self.accesses else 0.0,
            "evictions": self.evictions,
            "objects": self.index.count,
            "events": dict(self.events),
            "policy_counters": dict(self.ctx.counters),
            "exit": self.exit.as_dict(),
            "exits": self.history + [self.exit.as_dict()],
            "switches": list(self.switches),
        }


def run_cache(trace, policy: Policy, capacity: int, seed: int = 0, progress=None, check: bool = False,
              switches=(), **limits) -> dict:
    """Replay `trace` through a cache of `capacity` pages run by `policy`; the result dict.
    `switches`: (access index, Policy or None) to attach/replace/detach on the way.
    `limits`: hook_budget (seconds per hook call), starve_limit, entry_cap (see ext.host)."""
    sim = CacheSim(capacity, policy, seed, **limits)
    todo = sorted(switches, key=lambda s: s[0])

    def on_chunk(at: int) -> None:
        while todo and todo[0][0] == at:
            sim.switch(todo.pop(0)[1], at)

    t0 = time.perf_counter()
    if todo:
        from .switch import CutTrace

        trace = CutTrace(trace, [a for a, _ in todo])
    try:
        sim.run(trace, progress, on_chunk if todo else None)
    finally:  # also when the run is aborted (Ctrl-C): no watchdog or signal handler left behind
        sim.host.watchdog.close()
    wall = time.perf_counter() - t0
    if check:
        sim.check_conservation()
    out = sim.result()
    out.update(sim.chunks.rates(sim.accesses, wall))
    return out
