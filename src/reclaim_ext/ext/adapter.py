"""Running reclaim_ext policies inside the reclaim core (kswapd, direct and memcg reclaim,
shrink_folio_list): the adapter between the public policy API and reclaim_ops.

ExtOps *is* the classic policy (a subclass), so classic's lists stay current underneath every
attached policy: every folio is on classic's lists and every access updates them. Ejecting a
policy therefore hands over nothing that could be lost: the fallback is already up to date.

Policies attach to a scope: the whole system, a node (`node:N`) or a memcg (`memcg:/a/b`, its
subtree, on every node). Each lruvec (memcg, node) is governed by the nearest attached scope: its
memcg or the nearest ancestor memcg with a policy, else its node's, else the system's, else
classic alone. An lruvec is named by its key, memcg id * number of nodes + node id.
When a policy leaves (detached, replaced or ejected), its lruvecs go to the next scope up, whose
policy adopts their pages (`added`, in classic's order); a policy that loses lruvecs to a nearer
attachment sees their pages in `removed`.

What an attached policy sees, for the lruvecs it governs:
  * a folio allocated (fault or read() miss) -> `added`; a read()/write() hit -> `accessed`, in
    trace order (the fast driver passes runs of events); `ctx.when` numbers the events;
  * each reclaim pass over one of its lruvecs -> `evict(ctx, n)` for batches of up to
    SWAP_CLUSTER_MAX (`ctx.memcg`, `ctx.node`: the lruvec's memcg and node). Returning DEFER
    hands the pass to classic. Otherwise the core checks the answer (rules R1-R4, R8: resident,
    on a list, issued, distinct, in scope, not protected), tops up a shortfall from the tails of
    classic's inactive lists, and runs shrink_folio_list on the batch: a folio with a young PTE
    is kept (put back as classic puts back an activated folio, and reported to `accessed`), a
    dirty one waits for writeback, the rest are freed;
  * every folio that leaves one of its lruvecs -> `removed` (whoever chose it);
  * shadow entries and refaults are classic's.
A policy without `evict` only observes: classic decides, with all its fast paths. A policy that
always answers DEFER changes no counter of a classic run either. A policy class that sets
`per_lruvec` runs as one instance per lruvec it governs (ext.lruvecs.PerLruvec, which the host
calls as the policy): each sees its lruvec's pages only and is asked for that lruvec's victims.
"""

from __future__ import annotations

import numpy as np

from ..core.batch import is_member
from ..core.ptwalk import WalkRounds
from ..core.rmap import folio_referenced
from ..core.ops import FOLIOREF_ACTIVATE, FOLIOREF_RECLAIM, SWAP_CLUSTER_MAX
from ..core.vmscan import can_reclaim_anon, count_reclaim_batch, note_folio_list_result, shrink_folio_list
from ..errors import ConfigError
from ..machine.folio import LRU_ANON, LRU_FILE, NO_LIST, PG_mlocked, PG_resident, PG_unevictable, PG_writeback
from ..policies.classic import Classic
from .host import HOOK_BUDGET_S, STARVE_LIMIT, PolicyHost, policy_name
from .lruvecs import PerLruvec, is_compiled
from .policy import DEFER, Context, Policy, defines
from .safety import EXIT_ERROR, EXIT_UNREG, ContractError, check_victims

_PROTECTED = PG_unevictable | PG_mlocked | PG_writeback  # never a policy's to evict (R3)
SYSTEM = "system"
_EVENTS = ("stale_handles", "refused_protected", "anon_without_swap", "other_lruvec", "topped_up", "fallback_batches",
           "deferred")


def parse_scope(text: str | None) -> str:
    """The canonical scope: 'system', 'node:N' or 'memcg:/PATH' ('/PATH' and 'memcg:PATH' work too;
    'memcg:/' is the root memcg, which governs what the system scope would)."""
    t = (text or SYSTEM).strip()
    if t == SYSTEM:
        return SYSTEM
    if t.startswith("node:"):
        try:
            nid = int(t[5:])
        except ValueError:
            raise ConfigError(f"scope: {text!r}: node:N needs a node number") from None
        if nid < 0:
            raise ConfigError(f"scope: {text!r}: a node number is >= 0")
        return f"node:{nid}"
    if t.startswith("memcg:") or t.startswith("/"):
        path = t[6:] if t.startswith("memcg:") else t
        parts = [p for p in path.split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise ConfigError(f"scope: {text!r}: a memcg path has no . or .. parts")
        return "memcg:/" + "/".join(parts)
    raise ConfigError(f"scope: {text!r} is not system, node:N or memcg:PATH")


class Attachment:
    """One policy attached to one scope: its host (watchdog, exits), context and counters."""

    def __init__(self, ops: "ExtOps", policy: Policy, scope: str):
        # per_lruvec: the host runs PerLruvec, which runs one instance of the policy per lruvec
        # (with the root memcg alone, the policy is its one lruvec's instance)
        self.per_lruvec = (getattr(type(policy), "per_lruvec", False) is True
                           and len(ops.sim.memcgs) * len(ops.sim.nodes) > 1)
        self.policy = PerLruvec(policy, ops) if self.per_lruvec else policy
        self.scope = scope
        self.name = getattr(policy, "name", type(policy).__name__)
        self.events = {k: 0 for k in _EVENTS}
        self.ctx = Context(capacity=0, rng=np.random.default_rng(0), scope=scope)
        self.ctx._types = ops._page_types
        self.host = PolicyHost(self.policy, self.ctx, self.events, ops.hook_budget, ops.starve_limit,
                               on_eject=lambda: ops._ejected(self), entry_cap=ops.entry_cap, name=policy_name(policy))
        self.successor: str | None = None  # once ejected: the policy that took its lruvecs over
        self.lruvec_keys = np.zeros(0, dtype=np.int64)  # the lruvecs it governs now (keys, sorted)
        self.evicts = defines(policy, "evict")
        self.hooks = {h: defines(policy, h) for h in ("added", "accessed", "removed")}
        # a compiled policy takes a stretch's adds and accesses in one call (CompiledPolicy.events)
        self.mixed_events = is_compiled(policy)
        # a lookahead policy takes a stretch's adds in one call and its accesses in the next, as
        # in plain-cache mode (ctx.when orders them)
        self.lookahead = getattr(type(policy), "lookahead", False) is True
        self.walks: dict[int, WalkRounds] = {}  # lruvec key -> its walks (ctx.walk_page_tables)

    @property
    def trusted(self) -> bool:
        """Classic's own answers are trusted (checked only with --check) while no attached policy
        proposes victims; a policy's candidates are always checked (in _candidates)."""
        return not any(a.alive and a.evicts for a in self.attached.values())

    @trusted.setter
    def trusted(self, value: bool) -> None:  # Classic's class attribute; derived here
        pass

    @property
    def alive(self) -> bool:
        return self.host.alive

    def as_dict(self) -> dict:
        per = self.per_lruvec
        return {"scope": self.scope, "policy": self.name, "attached": self.alive, "per_lruvec": per,
                "events": dict(self.events), "exit": self.host.exit.as_dict(),
                "policy_counters": self.policy.counters() if per else dict(self.ctx.counters)}


class ExtOps(Classic):
    """reclaim_ops for reclaim_ext policies attached to scopes, with classic underneath."""


    def __init__(self, policy: Policy | None = None, hook_budget: float = HOOK_BUDGET_S,
                 starve_limit: int = STARVE_LIMIT, scope: str = SYSTEM, mechanisms=None,
                 entry_cap: int | None = None):
        self._bulk = Classic.bulk_clean_file_pass
        super().__init__(mechanisms)
        self.hook_budget = hook_budget
        self.starve_limit = starve_limit
        self.entry_cap = entry_cap
        self.attached: dict[str, Attachment] = {}
        self.history: list[dict] = []  # exit records of policies detached or replaced earlier
        self.switches: list[dict] = []  # the switches made: at, scope, from, to
        self._pending = [(parse_scope(scope), policy)] if policy is not None else []
        self._owner: dict[int, Attachment] = {}   # lruvec key -> governing attachment (alive)
        self._owner_of = np.zeros(0, dtype=np.int64)  # lruvec key -> index into _owners, -1: none
        self._owners: list[Attachment] = []
        self._seq = 0         # event numbers for ctx.when
        self._batch = False   # inside a policy's own reclaim batch (references by young bits)
        self.sim = None
        self.enable_seq = 0   # attachments made so far (sched_ext's enable_seq)

    # ---- naming and the core's switches --------------------------------------------------------

    @property
    def name(self) -> str:
        live = [a for a in self.attached.values() if a.alive]
        return "+".join(a.name for a in live) if live else "classic"

    @name.setter
    def name(self, value) -> None:  # Classic's class attribute; the name is derived
        pass

    @property
    def bulk_clean_file_pass(self) -> bool:
        """Classic's bulk passes skip shrink_lruvec: allowed while no attached policy evicts."""
        return self._bulk and not any(a.alive and a.evicts for a in self.attached.values())

    @bulk_clean_file_pass.setter
    def bulk_clean_file_pass(self, value: bool) -> None:
        self._bulk = value

    @property
    def alive(self) -> bool:
        return any(a.alive for a in self.attached.values())

    @property
    def exit(self):
        """The exit record of the system-scope (or only) attachment."""
        a = self.attached.get(SYSTEM) or next(iter(self.attached.values()), None)
        return a.host.exit if a is not None else None

    @property
    def events(self) -> dict:
        """Counters summed over the attachments."""
        out = {k: 0 for k in _EVENTS}
        for a in self.attached.values():
            for k, v in a.events.items():
                out[k] += v
        return out

    # ---- attaching -----------------------------------------------------------------------------

    def init_lruvec(self, sim, lruvec) -> None:
        self.sim = sim
        super().init_lruvec(sim, lruvec)

    def _start(self) -> None:
        pending, self._pending = self._pending, []
        for scope, policy in pending:
            self.attach(policy, scope, 0)

    def _check_scope(self, scope: str) -> None:
        sim = self.sim
        if scope.startswith("node:") and int(scope[5:]) not in [n.nid for n in sim.nodes]:
            raise ConfigError(f"scope: {scope}: no such node (the machine has {len(sim.nodes)})")
        if scope.startswith("memcg:") and scope != "memcg:/":
            try:
                sim.memcg_by_path(scope[6:])
            except KeyError:
                raise ConfigError(f"scope: {scope}: no such memcg (declare it with --memcg)") from None

    def attach(self, policy: Policy, scope: str = SYSTEM, at: int = 0) -> None:
        """Attach `policy` to `scope` (replacing the policy attached there, exit UNREG): it is
        initialised and adopts the pages of the lruvecs it now governs."""
        scope = parse_scope(scope)
        self._check_scope(scope)
        self.detach(scope, at, replaced=True)
        att = Attachment(self, policy, scope)
        att.ctx.capacity = self._capacity(scope)
        self.attached[scope] = att
        self.enable_seq += 1
        att.ctx.now = self.sim.pos
        att.host.start()  # init (and compiled hooks compiled)
        self._reassign()

    def detach(self, scope: str = SYSTEM, at: int = 0, replaced: bool = False) -> None:
        """Detach the policy of `scope` (exit UNREG); its lruvecs go to the next scope up."""
        scope = parse_scope(scope)
        att = self.attached.pop(scope, None)
        if att is None:
            return
        if att.alive:
            att.host.on_eject = None
            att.host.eject(EXIT_UNREG, f"{'replaced' if replaced else 'detached'} at access {at}", None)
        att.host.finish()
        self.history.append(att.as_dict()["exit"] | {"scope": scope, "policy": att.name, "successor": att.successor})
        self._reassign(gone=att)

    def disable(self, scope: str = SYSTEM, reason: str = "disabled by the operator") -> None:
        """Force-disable (SysRq-S analogue, R12): the policy of `scope` is ejected at once."""
        att = self.attached.get(parse_scope(scope))
        if att is not None and att.alive:
            att.host.eject(EXIT_UNREG, reason, None)

    def switch(self, policy: Policy | None, at: int, scope: str = SYSTEM) -> None:
        """Replace the policy of `scope` at access `at` (None: detach it)."""
        if self._pending:
            self._start()
        scope = parse_scope(scope)
        before = self.governor(scope)
        if policy is None:
            self.detach(scope, at)
        else:
            self.attach(policy, scope, at)
        to = self.governor(scope) if policy is None else getattr(policy, "name", type(policy).__name__)
        self.switches.append({"at": at, "scope": scope, "from": before, "to": to, "happened": True})

    def key(self, memcg_id, nid):
        """The lruvec key of (memcg, node): memcg id * number of nodes + node id (arrays too)."""
        return memcg_id * len(self.sim.nodes) + nid

    def lruvec_key(self, lruvec) -> int:
        return self.key(lruvec.memcg.id, lruvec.node.nid)

    def _governing(self, lruvec) -> Attachment | None:
        """The attachment that governs `lruvec` now (None: classic alone)."""
        return self._owner.get(self.lruvec_key(lruvec))

    def governor(self, scope: str) -> str:
        """The name of the policy that governs `scope` now, 'classic' when no attached policy does:
        for a node, its root memcg's lruvec; for the system or a memcg, that memcg's lruvec on the
        first node without a node policy of its own (else node 0)."""
        sim = self.sim
        m = sim.root_memcg
        if scope.startswith("memcg:") and scope != "memcg:/":
            m = sim.memcg_by_path(scope[6:])
        if scope.startswith("node:"):
            nid = int(scope[5:])
        else:
            free = [n.nid for n in sim.nodes if not self._live(f"node:{n.nid}")]
            nid = free[0] if free else sim.nodes[0].nid
        a = self._resolve(m, nid)
        return a.name if a is not None else "classic"

    def _live(self, scope: str) -> Attachment | None:
        a = self.attached.get(scope)
        return a if a is not None and a.alive else None

    def _ejected(self, att: Attachment) -> None:
        """A policy was ejected: its lruvecs go to the next scope up (recorded as its successor)."""
        self._reassign()
        att.successor = self.governor(att.scope)

    def _capacity(self, scope: str, nid: int | None = None) -> int:
        """Pages the scope can hold: a node's managed pages, the machine's, or a memcg's limit
        (on node `nid` only, when given: a per-lruvec instance)."""
        sim = self.sim
        if scope.startswith("node:"):
            return int(sim.nodes[int(scope[5:])].managed)
        managed = sum(n.managed for n in sim.nodes) if nid is None else sim.nodes[nid].managed
        if scope.startswith("memcg:") and scope != "memcg:/":
            m = sim.memcg_by_path(scope[6:])
            return int(min(m.max, managed))
        return int(managed)

    def _resolve(self, memcg, nid: int) -> Attachment | None:
        """The nearest scope with a live policy for the lruvec (memcg, node nid): the memcg or an
        ancestor, the node, the system."""
        for m in memcg.ancestors():
            a = self._live(f"memcg:{m.path}")
            if a is not None:
                return a
        return self._live(f"node:{nid}") or self._live(SYSTEM)

    def _reassign(self, gone: Attachment | None = None) -> None:
        """Recompute which attachment governs each lruvec; pages of an lruvec that changes hands
        leave the old policy (`removed`) and are adopted by the new one (`added`, classic order:
        inactive before active, oldest first)."""
        sim = self.sim
        old = dict(self._owner)
        new: dict[int, Attachment] = {}
        for lv in self._lruvecs():
            a = self._resolve(lv.memcg, lv.node.nid)
            if a is not None:
                new[self.lruvec_key(lv)] = a
        self._owner = new
        owners = list({id(a): a for a in new.values()}.values())
        self._owners = owners
        self._owner_of = np.full(self.key(max(sim.memcgs) + 1, 0), -1, dtype=np.int64)
        for k, a in new.items():
            self._owner_of[k] = owners.index(a)
        for a in self.attached.values():
            a.lruvec_keys = np.array(sorted(k for k, o in new.items() if o is a), dtype=np.int64)
        for lv in self._lruvecs():
            k = self.lruvec_key(lv)
            before, after = old.get(k), new.get(k)
            if before is after:
                continue
            pages = self._pages(lv)
            if before is not None and before.alive and len(pages):
                self._deliver(before, "removed", pages)
            if before is not None and before.per_lruvec:
                before.policy.drop(k)  # its instance for that lruvec goes
            if after is not None and len(pages):
                self._deliver(after, "added", pages)

    def _lruvecs(self):
        """Every lruvec: each memcg's, node by node."""
        sim = self.sim
        return [m.lruvecs[n.nid] for m in sim.memcgs.values() for n in sim.nodes]

    def lruvec_of(self, key: int):
        mid, nid = divmod(int(key), len(self.sim.nodes))
        return self.sim.memcgs[mid].lruvecs[nid]

    def _pages(self, lv) -> np.ndarray:
        f = self.sim.folios
        return np.concatenate([lv.lists[lv.list_index(t, c)].valid_ids(f) for t in (LRU_ANON, LRU_FILE)
                               for c in (0, 1)])

    def _issued(self, handles: np.ndarray, what: str):
        """The folio table, after checking that every handle was issued (ValueError otherwise)."""
        f = self.sim.folios
        if len(handles) and (handles.min() < 0 or handles.max() >= f.count):
            raise ValueError(f"{what}(): a handle the core never issued")
        return f

    def _page_types(self, handles: np.ndarray) -> np.ndarray:
        """Context.types: the type of each issued handle (0 anon, 1 file)."""
        return self._issued(handles, "types").type[handles].astype(np.int8)

    def _page_referenced(self, handles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Context.referenced during evict(): folio_referenced on the resident, listed pages."""
        f = self._issued(handles, "referenced")
        young = np.zeros(len(handles), dtype=np.int64)
        vm_exec = np.zeros(len(handles), dtype=bool)
        ok = np.flatnonzero(((f.flags[handles] & PG_resident) != 0) & (f.lru[handles] != NO_LIST))
        if len(ok):
            y, x = folio_referenced(self.sim, handles[ok])
            young[ok], vm_exec[ok] = y, x
        return young, vm_exec

    def _page_walk(self, att: Attachment, lruvec, anon: bool, file: bool, bloom: bool,
                   pmd_young: bool) -> tuple[np.ndarray, np.ndarray]:
        """Context.walk_page_tables during evict(): core.ptwalk.walk_mm over the mms of the
        lruvec's memcg, with the attachment's own Bloom filters and round number for that lruvec
        (the built-in MGLRU's walk, whose round is max_seq); it charges the PTEs walked."""
        k = self.lruvec_key(lruvec)
        rounds = att.walks.get(k)
        if rounds is None:
            rounds = att.walks[k] = WalkRounds()
        found = []
        rounds.walk(self.sim, lruvec, found.append, bloom=bloom, pmd_young=pmd_young, anon_ok=anon, file_ok=file)
        ids = np.asarray(found[0], dtype=np.int64) if found else np.zeros(0, dtype=np.int64)
        if len(ids) == 0:
            return ids, np.zeros(0, dtype=np.int64)
        uniq, first, count = np.unique(ids, return_index=True, return_counts=True)
        order = np.argsort(first, kind="stable")
        return uniq[order], count[order].astype(np.int64)

    # ---- events --------------------------------------------------------------------------------

    def _deliver(self, att: Attachment, hook: str, handles: np.ndarray, when: np.ndarray | None = None,
                 *more) -> None:
        """One added/accessed/removed (or events) call (skipped if the policy has no such hook).
        `when`: the events' numbers if not the next len(handles) ones; `more`: the hook's other
        arguments."""
        if not att.alive or not att.hooks.get(hook, True):
            if when is None:
                self._seq += len(handles)
            return
        ctx = att.ctx
        n = len(handles)
        if when is None:
            when = np.arange(self._seq, self._seq + n, dtype=np.int64)
            self._seq += n
        ctx.when = when
        ctx.now = self.sim.pos
        if not att.per_lruvec:  # (each instance counts its own lruvec's)
            ctx.nr_resident = self._resident(att)
        att.host.call(hook, handles, *more)
        ctx.when = None

    def _resident(self, att: Attachment) -> int:
        """Pages on the lists of the lruvecs the attachment governs: each node's table's rows
        (a memcg's id; lruvec key = memcg id * nodes + node id)."""
        keys, tables = att.lruvec_keys, self.sim.lruvec_tables
        if len(tables) == 1:
            return int(tables[0].nr[keys].sum())
        return sum(int(t.nr[keys[keys % len(tables) == nid] // len(tables)].sum()) for nid, t in enumerate(tables))

    def folio_add(self, sim, lruvec, page, shadow, shadow_ws, swap_free, fault=False):
        if self._pending:
            self._start()
        super().folio_add(sim, lruvec, page, shadow, shadow_ws, swap_free, fault)
        self._one_event(lruvec, "added", page)

    def mark_accessed(self, sim, lruvec, page):
        if self._pending:
            self._start()
        super().mark_accessed(sim, lruvec, page)
        self._one_event(lruvec, "accessed", page)

    def _one_event(self, lruvec, hook: str, page: int) -> None:
        """The exact driver's single event, for the policy governing the lruvec."""
        att = self._governing(lruvec)
        if att is not None:
            self._deliver(att, hook, np.array([page], dtype=np.int64))

    def access_events(self, sim, lruvec, ev):
        if self._pending:
            self._start()
        super().access_events(sim, lruvec, ev)
        if not self._owners:
            return
        # runs of ADDs and ACCESSes of one attachment, in order
        owners = self._owners  # (an ejection mid-way reassigns; the dead one is skipped)
        multi = len(owners) > 1 or len(self._owner) < len(sim.memcgs) * len(sim.nodes)
        if not multi:
            att = owners[0]
            if att.alive and att.mixed_events:  # one compiled call for the whole stretch
                self._deliver(att, "events", ev.page, None, ev.is_add)
                return
            if att.lookahead or not (att.alive and att.hooks["added"] and att.hooks["accessed"]):
                # one call per kind of event: the adds, then the hits (no reclaim runs inside a
                # stretch, so a page's add comes before its hits; a policy with one of the two
                # hooks, or lookahead, needs no other order)
                base = self._seq
                self._seq += len(ev.page)
                for hook, mask in (("added", ev.is_add), ("accessed", ~ev.is_add)):
                    if att.alive and att.hooks[hook]:
                        sel = np.flatnonzero(mask)
                        if len(sel):
                            self._deliver(att, hook, ev.page[sel], base + sel)
                return
        key = ev.is_add.astype(np.int64)
        if multi:
            mc = ev.memcg if ev.memcg is not None else sim.folios.memcg[ev.page]
            key += 2 * (self._owner_of[self.key(mc, sim.folios.nid[ev.page])] + 1)  # 0/1: no policy's lruvec
        change = np.flatnonzero(key[1:] != key[:-1]) + 1
        bounds = np.concatenate(([0], change, [len(key)])).tolist()
        for a, b in zip(bounds[:-1], bounds[1:]):
            k = int(key[a])
            if multi and k < 2:
                self._seq += b - a
                continue
            att = owners[k // 2 - 1] if multi else owners[0]
            self._deliver(att, "added" if k % 2 else "accessed", ev.page[a:b])

    def eviction_token(self, sim, lruvec, ids):
        tokens = super().eviction_token(sim, lruvec, ids)  # classic's clock, for refaults later
        self._leave(sim, ids)
        return tokens

    def folio_migrate(self, sim, ids):
        """A demoted or promoted folio leaves its lruvec's policy (`removed`); it is `added` to
        its new node's when the core puts it on that node's lruvec."""
        super().folio_migrate(sim, ids)
        self._leave(sim, ids)

    def _leave(self, sim, ids) -> None:
        """Folios leaving their lruvecs: `removed` for the policies governing those."""
        owners = self._owners
        if owners:
            ids = np.asarray(ids, dtype=np.int64)
            f = sim.folios
            if len(owners) == 1 and len(self._owner) == len(sim.memcgs) * len(sim.nodes):
                self._deliver(owners[0], "removed", ids)
            else:
                own = self._owner_of[self.key(f.memcg[ids], f.nid[ids])]
                for k in np.unique(own).tolist():
                    if k >= 0:
                        self._deliver(owners[k], "removed", ids[own == k])

    # ---- reclaim -------------------------------------------------------------------------------

    def shrink_lruvec(self, sim, lruvec, sc):
        if self._pending:
            self._start()
        att = self._governing(lruvec)
        if att is None or not att.alive or not att.evicts:
            return super().shrink_lruvec(sim, lruvec, sc)
        scan = lruvec.total() >> sc.priority
        done = 0
        while done < scan and sc.nr_reclaimed < sc.nr_to_reclaim and att.alive:
            ids = self._candidates(sim, lruvec, att, min(SWAP_CLUSTER_MAX, scan - done))
            if ids is None:  # DEFER: classic takes this pass
                att.events["deferred"] += 1
                return super().shrink_lruvec(sim, lruvec, sc)
            if len(ids) == 0:  # nothing from the policy nor from the inactive tails: classic's
                return super().shrink_lruvec(sim, lruvec, sc)  # whole pass (it also ages)
            done += len(ids)
            self._shrink(sim, lruvec, sc, ids)
        if not att.alive and done < scan:
            super().shrink_lruvec(sim, lruvec, sc)

    def ages_in_background(self, lruvec) -> bool:
        """Classic's background anon aging (kswapd_age_node) skips the lruvecs whose policy
        proposes the victims. Their young bits are that policy's to test (ctx.referenced, or the
        check of its candidates): classic's aging of its own lists underneath would clear them,
        so the policy would see fewer young pages than the kernel's policy it may implement."""
        att = self._governing(lruvec)
        return not (att is not None and att.alive and att.evicts)

    def _candidates(self, sim, lruvec, att: Attachment, n: int) -> np.ndarray | None:
        """Up to n folios of `lruvec` to reclaim, isolated: the policy's checked answer, topped up
        from the tails of classic's inactive lists; None when the policy defers to classic."""
        f = sim.folios
        ctx = att.ctx
        ctx.now = sim.pos
        ctx.nr_resident = self._resident(att)
        ctx.memcg, ctx.node = lruvec.memcg.path, lruvec.node.nid
        # get_scan_count scans no anon without swap room for this lruvec's memcg (memory.swap.max too)
        anon_ok = ctx.anon_ok = can_reclaim_anon(sim, None, lruvec.memcg)
        ctx._referenced = self._page_referenced
        ctx._walk = lambda *a: self._page_walk(att, lruvec, *a)
        try:
            answer = att.host.call("evict", n)
        finally:
            ctx._referenced = None
            ctx._walk = None
        ctx.memcg = ctx.node = None
        ctx.anon_ok = True
        if answer is DEFER and att.alive:
            return None
        got = np.zeros(0, dtype=np.int64)
        other = att.events["other_lruvec"]
        if att.alive:
            try:
                got, stale = check_victims(answer, n, lambda h: (f.flags[h] & PG_resident) != 0, f.count)
                got = self._in_scope(sim, lruvec, att, got)
            except ContractError as e:
                att.host.eject(EXIT_ERROR, str(e), "evict")
                got, stale = np.zeros(0, dtype=np.int64), 0
            att.events["stale_handles"] += stale
            if len(got):
                off = f.lru[got] == NO_LIST  # resident but isolated elsewhere: stale too
                att.events["stale_handles"] += int(off.sum())
                got = got[~off]
                prot = (f.flags[got] & _PROTECTED) != 0  # R3: refused, counted
                att.events["refused_protected"] += int(prot.sum())
                got = got[~prot]
        answered = len(got)
        if len(got) and not anon_ok:
            anon = f.type[got] == LRU_ANON
            att.events["anon_without_swap"] += int(anon.sum())
            got = got[~anon]
        if len(got):
            lruvec.delete(f, got)
        short = n - len(got)
        if att.alive:
            att.events["topped_up"] += short
            elsewhere = not answered and att.events["other_lruvec"] > other
            att.host.answered(answered, "its answers were pages of other lruvecs than the one reclaimed (another "
                                        "memcg or node): answer from ctx.memcg and ctx.node's pages, or set "
                                        "per_lruvec = True" if elsewhere else None)
        if short:
            extra = []
            # anon only while there is swap to put it in (can_reclaim_anon): an unreclaimable
            # batch would keep the pass from reaching classic's, which ages the active lists
            for t in (LRU_FILE, LRU_ANON) if anon_ok else (LRU_FILE,):
                if short <= 0:
                    break
                ids = lruvec.isolate_tail(f, t * 2, short)
                extra.append(ids)
                short -= len(ids)
            if not att.alive:
                att.events["fallback_batches"] += 1
            got = np.concatenate([got] + extra) if extra else got
        return got

    def _in_scope(self, sim, lruvec, att: Attachment, got: np.ndarray) -> np.ndarray:
        """R8: a handle outside the policy's scope ends it (ERROR); one of another lruvec the
        policy also governs is ignored and counted (the request is for this lruvec)."""
        if (not sim.multi and len(sim.nodes) == 1) or len(got) == 0:
            return got
        f = sim.folios
        keys = self.key(f.memcg[got], f.nid[got])
        other = keys != self.lruvec_key(lruvec)
        if not other.any():
            return got
        outside = ~np.isin(keys, att.lruvec_keys)
        if outside.any():
            h = int(got[outside][0])
            raise ContractError(f"evict() returned handle {h} of memcg {sim.memcgs[int(f.memcg[h])].path} on node "
                                f"{int(f.nid[h])}, outside the policy's scope ({att.scope})")
        att.events["other_lruvec"] += int(other.sum())
        return got[~other]

    def _shrink(self, sim, lruvec, sc, ids: np.ndarray) -> None:
        # pgscan/pgsteal as shrink_inactive_list counts them (core.vmscan.count_reclaim), by
        # reclaimer and by type; the batch may mix anon and file: each folio counts as its type
        count_reclaim_batch(sim, lruvec, sc, "pgscan", ids)
        sim.cost["pages_scanned"] += len(ids)
        sim.cost["lru_lock_ops"] += 2
        self._batch = True
        try:
            res = shrink_folio_list(sim, lruvec, ids, sc, self)
        finally:
            self._batch = False
        sc.nr_reclaimed += res.nr_reclaimed
        note_folio_list_result(sim, sc, res, len(ids))
        if res.nr_reclaimed:  # the folios not kept were freed
            freed = ids[~is_member(ids, res.keep_ids, sim.folios.count)] if len(res.keep_ids) else ids
            count_reclaim_batch(sim, lruvec, sc, "pgsteal", freed)
        self._putback_batch(sim, lruvec, res.keep_ids, res.keep_active)

    def references(self, sim, lruvec, ids, young, vm_exec, sc):
        if not self._batch:
            return super().references(sim, lruvec, ids, young, vm_exec, sc)
        return np.where(young > 0, FOLIOREF_ACTIVATE, FOLIOREF_RECLAIM).astype(np.int8)

    def _putback_batch(self, sim, lruvec, ids, active):
        """Survivors of a policy's batch go back as classic puts them back (activated ones to the
        active list) and the activated ones are reported as accessed (seen young)."""
        self.putback(sim, lruvec, ids, active)
        att = self._governing(lruvec)
        if att is not None and len(ids) and active.any():
            self._deliver(att, "accessed", ids[active])

    # ---- the end -------------------------------------------------------------------------------

    def finish(self) -> None:
        """The run ended: a normal exit for every policy still attached."""
        if self._pending and self.sim is not None:
            self._start()
        for a in self.attached.values():
            a.host.finish()

    def dump(self, sim) -> dict:
        atts = list(self.attached.values())
        exits = self.history + [a.host.exit.as_dict() | {"scope": a.scope, "policy": a.name, "successor": a.successor}
                                for a in atts]
        main = self.attached.get(SYSTEM) or (atts[0] if atts else None)
        ext = {"policy": main.name if main else "classic", "attached": bool(main and main.alive),
               "events": self.events, "enable_seq": self.enable_seq,
               "scopes": [a.as_dict() for a in atts]}
        return {"ext": ext, "exit": exits[-1] if exits else None, "exits": exits, "switches": list(self.switches)}
