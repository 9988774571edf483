"""Running a reclaim_ext policy inside the reclaim core (kswapd, direct reclaim,
shrink_folio_list): the adapter between the public policy API and reclaim_ops.

The classic policy runs underneath at all times: every folio is on classic's lists and every
access updates them, so classic is always ready to decide (and an ejected policy hands over
nothing: the fallback is already current). On top of that, the policy sees:
  * a folio allocated (fault or read() miss) -> `added`; a read()/write() hit -> `accessed`, in
    trace order (the fast driver passes runs of events, the exact driver one at a time);
  * each reclaim pass over the lruvec -> `evict(ctx, n)` for batches of up to SWAP_CLUSTER_MAX.
    Returning `DEFER` hands the whole pass to classic. Otherwise the core checks the answer
    (resident, on a list, issued, distinct, not protected), tops up a shortfall from the tails
    of classic's inactive lists, and runs shrink_folio_list on the batch: a folio with a young
    PTE is kept (put back as classic puts back an activated folio, and reported to `accessed`),
    a dirty one waits for writeback, the rest are freed and reported to `removed`;
  * shadow entries and refaults are classic's.
A policy that always answers DEFER therefore changes no counter of a classic run.
"""

from __future__ import annotations

import numpy as np

from ..core.ops import FOLIOREF_ACTIVATE, FOLIOREF_RECLAIM, SWAP_CLUSTER_MAX, ReclaimOps
from ..core.vmscan import shrink_folio_list
from ..machine.folio import LRU_ANON, LRU_FILE, NO_LIST, PG_mlocked, PG_resident, PG_unevictable, PG_writeback
from ..policies.classic import Classic
from .host import HOOK_BUDGET_S, STARVE_LIMIT, PolicyHost
from .policy import DEFER, Context, Policy
from .safety import EXIT_ERROR, EXIT_UNREG, ContractError, check_victims

_PROTECTED = PG_unevictable | PG_mlocked | PG_writeback  # never a policy's to evict (R3)


class ExtOps(ReclaimOps):
    """reclaim_ops for a reclaim_ext Policy, with the classic policy as the fallback."""

    nr_classes = 2
    trusted = False

    def __init__(self, policy: Policy | None, hook_budget: float = HOOK_BUDGET_S,
                 starve_limit: int = STARVE_LIMIT):
        super().__init__()
        self.policy = policy  # None: nothing attached (yet), classic decides
        self.name = getattr(policy, "name", type(policy).__name__) if policy is not None else "classic"
        self.history: list[dict] = []  # exit records of policies detached or replaced earlier
        self.fallback = Classic()
        self.events = {"stale_handles": 0, "refused_protected": 0, "topped_up": 0, "fallback_batches": 0,
                       "deferred": 0}
        self.hook_budget = hook_budget
        self.starve_limit = starve_limit
        self.host: PolicyHost | None = None
        self.sim = None

    @property
    def alive(self) -> bool:
        return self.host is not None and self.host.alive

    @property
    def exit(self):
        return self.host.exit if self.host is not None else None

    def _call(self, hook: str, *args):
        return self.host.call(hook, *args)

    def finish(self) -> None:
        """The run ended: a normal exit if the policy is still attached."""
        if self.host is not None:
            self.host.finish()

    def switch(self, policy: Policy | None, at: int) -> None:
        """Detach the attached policy (exit UNREG) and attach `policy` (None: classic alone). The
        new policy is initialised and adopts every resident folio, in classic's order (inactive
        before active, oldest first)."""
        if self.host is not None:
            if self.host.alive:
                self.host.eject(EXIT_UNREG, f"{'replaced' if policy else 'detached'} at access {at}", None)
            self.host.finish()
            self.history.append(self.host.exit.as_dict())
            self.host = None
        self.policy = policy
        if policy is None:
            return
        self.name = getattr(policy, "name", type(policy).__name__)
        self.events = {k: 0 for k in self.events}
        self.host = PolicyHost(policy, self.ctx, self.events, self.hook_budget, self.starve_limit)
        sim = self.sim
        lv = sim.root_lruvec(sim.node)
        self._sync_ctx(sim, lv)
        self._call("init")
        order = [lv.lists[lv.list_index(t, c)].valid_ids(sim.folios) for t in (LRU_ANON, LRU_FILE) for c in (0, 1)]
        self._call("added", np.concatenate(order))

    # ---- lifecycle and hot path ----------------------------------------------------------------

    def init_lruvec(self, sim, lruvec) -> None:
        self.sim = sim
        self.ctx = Context(capacity=sim.config.memory_pages, rng=np.random.default_rng(0))
        self.fallback.init_lruvec(sim, lruvec)
        if self.policy is not None:
            self.host = PolicyHost(self.policy, self.ctx, self.events, self.hook_budget, self.starve_limit)
            self._call("init")

    def _sync_ctx(self, sim, lruvec) -> None:
        self.ctx.now = sim.accesses
        self.ctx.nr_resident = lruvec.total()

    def folio_add(self, sim, lruvec, page, shadow, shadow_ws, swap_free, fault=False):
        self.fallback.folio_add(sim, lruvec, page, shadow, shadow_ws, swap_free, fault)
        if self.alive:
            self._sync_ctx(sim, lruvec)
            self._call("added", np.array([page], dtype=np.int64))

    def mark_accessed(self, sim, lruvec, page):
        self.fallback.mark_accessed(sim, lruvec, page)
        if self.alive:
            self._sync_ctx(sim, lruvec)
            self._call("accessed", np.array([page], dtype=np.int64))

    def access_events(self, sim, lruvec, ev):
        self.fallback.access_events(sim, lruvec, ev)
        if not self.alive:
            return
        # runs of ADDs and ACCESSes, in order (the exact driver makes one call per event)
        is_add = ev.is_add
        change = np.flatnonzero(is_add[1:] != is_add[:-1]) + 1
        bounds = np.concatenate(([0], change, [len(is_add)]))
        self._sync_ctx(sim, lruvec)
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            if not self.alive:  # ejected mid-segment: classic has seen every event already
                return
            self._call("added" if is_add[a] else "accessed", ev.page[a:b])

    # ---- reclaim -------------------------------------------------------------------------------

    def shrink_lruvec(self, sim, lruvec, sc):
        if not self.alive:
            return self.fallback.shrink_lruvec(sim, lruvec, sc)
        scan = lruvec.total() >> sc.priority
        done = 0
        while done < scan and sc.nr_reclaimed < sc.nr_to_reclaim and self.alive:
            ids = self._candidates(sim, lruvec, min(SWAP_CLUSTER_MAX, scan - done))
            if ids is None:  # DEFER: classic takes this pass
                self.events["deferred"] += 1
                return self.fallback.shrink_lruvec(sim, lruvec, sc)
            if len(ids) == 0:
                break
            done += len(ids)
            self._shrink(sim, lruvec, sc, ids)
        if not self.alive and done < scan:
            self.fallback.shrink_lruvec(sim, lruvec, sc)

    def _candidates(self, sim, lruvec, n: int) -> np.ndarray | None:
        """Up to n folios to reclaim, isolated: the policy's checked answer, topped up from the
        tails of classic's inactive lists; None when the policy defers to classic."""
        f = sim.folios
        self._sync_ctx(sim, lruvec)
        answer = self._call("evict", n)
        if answer is DEFER and self.alive:
            return None
        got = np.zeros(0, dtype=np.int64)
        if self.alive:
            try:
                live = (f.flags[: f.count] & PG_resident) != 0
                got, stale = check_victims(answer, n, live, f.count)
            except ContractError as e:
                self.host.eject(EXIT_ERROR, str(e), "evict")
                got, stale = np.zeros(0, dtype=np.int64), 0
            self.events["stale_handles"] += stale
            if len(got):
                off = f.lru[got] == NO_LIST  # resident but isolated elsewhere: stale too
                self.events["stale_handles"] += int(off.sum())
                got = got[~off]
                prot = (f.flags[got] & _PROTECTED) != 0  # R3: refused, counted
                self.events["refused_protected"] += int(prot.sum())
                got = got[~prot]
        if len(got):
            lruvec.delete(f, got)
        short = n - len(got)
        if self.alive:
            self.events["topped_up"] += short
            self.host.answered(len(got))
        if short:
            extra = []
            for t in (LRU_FILE, LRU_ANON):
                if short <= 0:
                    break
                ids = lruvec.isolate_tail(f, t * 2, short)
                extra.append(ids)
                short -= len(ids)
            if not self.alive:
                self.events["fallback_batches"] += 1
            got = np.concatenate([got] + extra) if extra else got
        return got

    def _shrink(self, sim, lruvec, sc, ids: np.ndarray) -> None:
        vm = sim.vm
        vm["pgscan_kswapd" if sc.kswapd else "pgscan_direct"] += len(ids)
        sim.cost["pages_scanned"] += len(ids)
        sim.cost["lru_lock_ops"] += 2
        res = shrink_folio_list(sim, lruvec, ids, sc, self)
        sc.nr_reclaimed += res.nr_reclaimed
        vm["pgsteal_kswapd" if sc.kswapd else "pgsteal_direct"] += res.nr_reclaimed
        self.putback(sim, lruvec, res.keep_ids, res.keep_active)

    def references(self, sim, lruvec, ids, young, vm_exec, sc):
        if not self.alive:
            return self.fallback.references(sim, lruvec, ids, young, vm_exec, sc)
        return np.where(young > 0, FOLIOREF_ACTIVATE, FOLIOREF_RECLAIM).astype(np.int8)

    def putback(self, sim, lruvec, ids, active):
        """Survivors go back as classic puts them back (activated ones to the active list)."""
        self.fallback.putback(sim, lruvec, ids, active)
        if self.alive and len(ids) and active.any():
            self._call("accessed", ids[active])  # seen young: referenced while the policy held it

    def eviction_token(self, sim, lruvec, ids):
        tokens = self.fallback.eviction_token(sim, lruvec, ids)  # classic's clock, for refaults later
        if self.alive:
            self._sync_ctx(sim, lruvec)
            self._call("removed", np.asarray(ids, dtype=np.int64))
        return tokens

    # everything else is classic's, attached or not (classic's lists stay current underneath)
    def prepare(self, sim, lruvec, sc):
        return self.fallback.prepare(sim, lruvec, sc)

    def age(self, sim, lruvec, lru, nr_to_scan, sc):
        return self.fallback.age(sim, lruvec, lru, nr_to_scan, sc)

    def after_lruvec(self, sim, lruvec, sc):
        return self.fallback.after_lruvec(sim, lruvec, sc)

    def kswapd_age_node(self, sim, node, sc):
        return self.fallback.kswapd_age_node(sim, node, sc)

    def reclaim_done(self, sim, node, sc):
        return self.fallback.reclaim_done(sim, node, sc)

    def dump(self, sim) -> dict:
        exits = self.history + ([self.exit.as_dict()] if self.host is not None else [])
        return {"ext": {"policy": self.name, "attached": self.alive, "events": dict(self.events)},
                "exit": exits[-1] if exits else None, "exits": exits}
