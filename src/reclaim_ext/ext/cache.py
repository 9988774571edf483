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
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import ConfigError
from ..machine.index import KeyIndex
from .host import HOOK_BUDGET_S, STARVE_LIMIT, PolicyHost
from .policy import DEFER, Context, Policy
from .safety import EXIT_ERROR, EXIT_UNREG, ContractError, check_victims

_PAGE_BITS = 40


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


class CacheSim:
    """One cache of `capacity` pages run by a reclaim_ext policy (see the module docstring)."""

    def __init__(self, capacity: int, policy: Policy, seed: int = 0, hook_budget: float = HOOK_BUDGET_S,
                 starve_limit: int = STARVE_LIMIT):
        if capacity < 1:
            raise ConfigError(f"capacity: {capacity} pages is too small (need at least 1)")
        self.capacity = int(capacity)
        self.policy = policy
        self.index = KeyIndex()
        self.resident = np.zeros(1024, dtype=bool)
        self.last = np.zeros(1024, dtype=np.int64)  # last access position: the fallback's LRU order
        self.nr_resident = 0
        self.accesses = self.hits = self.misses = self.evictions = 0
        self.events = {"stale_handles": 0, "topped_up": 0, "fallback_evictions": 0, "deferred": 0}
        self.ctx = Context(capacity=self.capacity, rng=np.random.default_rng(seed))
        self.host = PolicyHost(policy, self.ctx, self.events, hook_budget, starve_limit)
        self.history: list[dict] = []  # exit records of policies detached or replaced earlier
        self.host.call("init")

    @property
    def alive(self) -> bool:
        return self.host.alive

    @property
    def exit(self):
        return self.host.exit

    def _ask_victim(self) -> int | None:
        """evict(ctx, 1) checked against the contract (R2); None on a shortfall."""
        host = self.host
        answer = host.call("evict", 1)
        if not host.alive:
            return None
        if answer is DEFER:  # the fallback decides this one
            self.events["deferred"] += 1
            return DEFER
        if type(answer) is list and len(answer) == 1 and type(answer[0]) is int \
                and 0 <= answer[0] < self.index.count:  # the common answer: one int handle
            h = answer[0]
            if self.resident[h]:
                host.answered(1)
                return h
            self.events["stale_handles"] += 1
            host.answered(0)
            return None
        try:
            victims, stale = check_victims(answer, 1, self.resident, self.index.count)
        except ContractError as e:
            host.eject(EXIT_ERROR, str(e), "evict")
            return None
        self.events["stale_handles"] += stale
        host.answered(len(victims))
        return int(victims[0]) if len(victims) else None

    def _fallback_victim(self) -> int:
        res = np.flatnonzero(self.resident[: self.index.count])
        return int(res[np.argmin(self.last[res])])

    def _evict_one(self) -> None:
        asked = self.alive
        victim = self._ask_victim() if asked else None
        if victim is DEFER:
            victim = self._fallback_victim()
        elif victim is None:
            victim = self._fallback_victim()
            if asked:  # a shortfall (or the answer that ejected the policy): topped up (R4)
                self.events["topped_up"] += 1
            else:
                self.events["fallback_evictions"] += 1
        self.resident[victim] = False
        self.nr_resident -= 1
        self.evictions += 1
        self.ctx.nr_resident = self.nr_resident
        self.host.call("removed", np.array([victim], dtype=np.int64))

    # ---- the driver ----------------------------------------------------------------------------

    def _grow(self, n: int) -> None:
        if n > len(self.resident):
            cap = max(n, 2 * len(self.resident))
            self.resident = np.concatenate((self.resident, np.zeros(cap - len(self.resident), bool)))
            self.last = np.concatenate((self.last, np.zeros(cap - len(self.last), np.int64)))

    def _hits(self, hits: list[int], t: int) -> None:
        """The run of hits that ended just before access t: recency, then one accessed() call."""
        self.last[hits] = np.arange(t - len(hits), t)
        self.hits += len(hits)
        if self.alive:
            self.ctx.now = t - 1
            self.host.call("accessed", np.array(hits, dtype=np.int64))

    def switch(self, policy: Policy | None, at: int) -> None:
        """Detach the current policy (exit UNREG) and attach `policy` (None: the fallback LRU
        alone): it is initialised and adopts every resident page, least recently used first."""
        old = self.host
        if old.alive:
            old.eject(EXIT_UNREG, f"{'replaced' if policy else 'detached'} at access {at}", None)
        old.finish()
        self.history.append(old.exit.as_dict())
        if policy is None:
            return
        self.policy = policy
        self.events = {k: 0 for k in self.events}
        self.host = PolicyHost(policy, self.ctx, self.events, old.watchdog.budget, old.starve_limit)
        self.host.call("init")
        res = np.flatnonzero(self.resident[: self.index.count])
        self.host.call("added", res[np.argsort(self.last[res], kind="stable")])

    def run(self, trace, progress=None, on_chunk=None) -> None:
        ctx = self.ctx
        for chunk in trace.chunks():
            if len(chunk) == 0:
                continue
            if on_chunk is not None:
                on_chunk(self.accesses)
            host = self.host
            ids = self.index.get_or_add(object_keys(chunk))
            self._grow(self.index.count)
            resident, last = self.resident, self.last
            hits: list[int] = []
            t = self.accesses
            for h in ids.tolist():
                if resident[h]:
                    hits.append(h)
                else:
                    if hits:
                        self._hits(hits, t)
                        hits = []
                    ctx.now = t
                    self.misses += 1
                    if self.nr_resident >= self.capacity:
                        ctx.incoming = h
                        self._evict_one()
                        ctx.incoming = None
                    resident[h] = True
                    last[h] = t
                    self.nr_resident += 1
                    ctx.nr_resident = self.nr_resident
                    if self.alive:
                        host.call("added", np.array([h], dtype=np.int64))
                t += 1
            if hits:
                self._hits(hits, t)
            self.accesses = t
            if progress is not None:
                progress(len(chunk))
        self.host.finish()

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
        }


def run_cache(trace, policy: Policy, capacity: int, seed: int = 0, progress=None, check: bool = False,
              switches=(), **limits) -> dict:
    """Replay `trace` through a cache of `capacity` pages run by `policy`; the result dict.
    `switches`: (access index, Policy or None) to attach/replace/detach on the way.
    `limits`: hook_budget (seconds per hook call), starve_limit (see CacheSim)."""
    sim = CacheSim(capacity, policy, seed, **limits)
    todo = sorted(switches, key=lambda s: s[0])

    def on_chunk(at: int) -> None:
        while todo and todo[0][0] == at:
            sim.switch(todo.pop(0)[1], at)

    t0 = time.perf_counter()
    if todo:
        from .switch import CutTrace

        trace = CutTrace(trace, [a for a, _ in todo])
    sim.run(trace, progress, on_chunk if todo else None)
    wall = time.perf_counter() - t0
    if check:
        sim.check_conservation()
    out = sim.result()
    out["wall_seconds"] = wall
    out["accesses_per_second"] = sim.accesses / wall if wall > 0 else 0.0
    return out
