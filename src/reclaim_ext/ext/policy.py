"""The public policy API of reclaim_ext: what a policy author writes against.

A policy is a class with a few hooks that take and return numpy arrays of page *handles* (ints
that name a page for the whole run; a handle is valid while its page is resident). Every hook is
optional: a policy without `evict` only observes (the built-in policy decides every eviction),
and the core never calls a hook the policy does not define. A typical policy:

    class MyLRU(Policy):
        name = "my-lru"
        def init(self, ctx):               self.lru = IndexedList()
        def added(self, ctx, handles):     [self.lru.push_head(h) for h in handles.tolist()]
        def accessed(self, ctx, handles):  [self.lru.move_head(h) for h in handles.tolist()]
        def removed(self, ctx, handles):   [self.lru.discard(h) for h in handles.tolist()]
        def evict(self, ctx, n):           return [self.lru.tail()]

The core owns every page. A policy only proposes: `evict(ctx, n)` returns at most n handles of
resident pages, best victim first; the core checks the answer (see `reclaim_ext.ext.safety`),
evicts, and then reports every page that left through `removed` (also pages the core evicted on
its own, e.g. while the fallback policy topped up a shortfall). Whatever a hook raises, or a
broken answer, ends the policy with an exit record; the built-in fallback takes over and no page
is lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


class _Defer:
    """The answer `evict` gives to let the built-in policy decide this request."""

    def __repr__(self) -> str:
        return "DEFER"


DEFER = _Defer()
ANON, FILE = 0, 1  # page types (Context.types), the kernel's LRU_ANON and LRU_FILE


class PolicyExit(Exception):
    """Raised by ctx.exit(): the policy leaves voluntarily (exit kind UNREG_POLICY)."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class Context:
    """What a hook can see and do besides its arguments."""

    capacity: int                    # pages the cache / scope holds (plain-cache mode)
    rng: np.random.Generator         # deterministic per run (seeded)
    now: int = 0                     # index of the access being processed
    nr_resident: int = 0             # pages resident in the scope now
    incoming: int | None = None      # during evict() in plain-cache mode: the page being brought in
    # per handle of the current added/accessed/removed call: when its event happened (the access
    # index in plain-cache mode, an event sequence number in the reclaim core); increasing in
    # trace order, so `when` orders events across calls (batched calls may come out of order)
    when: np.ndarray | None = None
    scope: str = "cache"             # where the policy is attached: system, node:N, memcg:/PATH
    memcg: str | None = None         # during evict() in the reclaim core: the memcg being reclaimed
    node: int | None = None          # during evict() in the reclaim core: the node being reclaimed
    counters: dict = field(default_factory=dict)  # the policy's own counters (shown in results)
    # during evict() in the reclaim core: whether anon pages of the memcg being reclaimed can be
    # reclaimed now (swap room, memory.swap.max); get_scan_count scans no anon list otherwise and
    # the core sets proposed anon pages aside. Always True in plain-cache mode.
    anon_ok: bool = True
    _types: Any = field(default=None, repr=False)  # set by the reclaim core: handles -> types
    _referenced: Any = field(default=None, repr=False)  # set by the reclaim core (evict only)
    _walk: Any = field(default=None, repr=False)  # set by the reclaim core (evict only)

    def types(self, handles) -> np.ndarray:
        """Per handle, its page type: ANON (0, anonymous memory) or FILE (1, page cache), like the
        kernel's folio_is_file_lru. Plain-cache mode has file pages only. The handles must have
        been issued (a handle the core never issued raises ValueError)."""
        h = np.asarray(handles, dtype=np.int64).reshape(-1)
        if self._types is None:
            return np.ones(len(h), dtype=np.int8)
        return self._types(h)

    def referenced(self, handles) -> tuple[np.ndarray, np.ndarray]:
        """folio_referenced, from evict() in the reclaim core: per handle, the number of its
        mappings whose accessed (young) bit is set, and whether one of them is executable; the
        bits found are cleared, and the rmap walk is charged as the kernel's. This is how the
        kernel's aging sees mapped accesses (shrink_active_list, MGLRU's aging). Handles of pages
        that are not resident count 0; elsewhere (other hooks, plain-cache mode, which has no
        page tables) every count is 0."""
        h = np.asarray(handles, dtype=np.int64).reshape(-1)
        if self._referenced is None:
            return np.zeros(len(h), dtype=np.int64), np.zeros(len(h), dtype=bool)
        return self._referenced(h)

    def walk_page_tables(self, types=(ANON, FILE), bloom: bool = False,
                         pmd_young: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The aging walk of MGLRU (walk_mm), from evict() in the reclaim core: the page tables of
        the processes of the memcg being reclaimed are scanned in address order, and every young
        PTE that maps a page of that memcg's lruvec (resident, on a list, of one of `types`) is
        cleared. Returns the pages found young, each once, in the order first seen, and per page
        the number of its PTEs found young. As the kernel's walk, it skips a process that has not
        run since the last walk on this lruvec and a PTE table whose PMD accessed bit is clear
        (`pmd_young`). With `bloom`, it also skips a table that the previous walk did not find
        dense (fewer than one young PTE in eight; two Bloom filters per policy and lruvec; a
        process not walked before is walked whole). Off by default: the kernel's look-around
        also adds dense tables to the filter, and without it a table once skipped is never
        walked again (a policy has no look-around). Charged as the kernel's walk: per PTE of the
        tables scanned. Elsewhere (other hooks, plain-cache mode) nothing is found."""
        kinds = {int(t) for t in np.atleast_1d(np.asarray(types, dtype=np.int64)).tolist()}
        if not kinds <= {ANON, FILE}:
            raise ValueError(f"walk_page_tables(): types are ANON ({ANON}) and FILE ({FILE})")
        if self._walk is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return self._walk(ANON in kinds, FILE in kinds, bool(bloom), bool(pmd_young))

    def exit(self, code: int = 0, reason: str = "policy exited") -> None:
        """Leave voluntarily (like scx_bpf_exit): the fallback takes over."""
        raise PolicyExit(code, reason)


class Policy:
    """Base class for reclaim_ext policies. Subclasses set `name` and implement the hooks they
    need; the core calls only the hooks a subclass defines."""

    name = "policy"

    # lookahead = True promises, for plain-cache mode: the handles evict(ctx, n) returns stay, in
    # order, the policy's next victims, except that a victim accessed meanwhile leaves the list
    # (the others keep their order); accesses to other pages and pages added meanwhile never
    # become victims before them. True of LRU and FIFO; not of CLOCK, LFU or ARC. The core may
    # then ask for many victims at once and replay the accesses up to the next ask with numpy,
    # calling each hook once per stretch (removed, added, accessed; `ctx.when` orders the
    # events). It cuts a stretch right before any access to an outstanding victim, so the
    # promise is all it relies on. The reclaim core, too, calls added once and then accessed once
    # per stretch between two reclaims (ExtOps.access_events).
    lookahead = False

    # per_lruvec = True asks the reclaim core for one instance of the policy per lruvec it governs
    # (the kernel's model: one set of lists per memcg's lruvec on each node), as if the policy were
    # attached to each memcg on each node alone: the first lruvec gets this object, each other one
    # a new instance made with the same constructor arguments (not copied), when the policy first
    # governs it. An instance sees only its lruvec's pages; its ctx has that memcg's capacity on
    # that node, `nr_resident`, `memcg` and `node` (in every hook), and its own `counters` (summed
    # in results); an lruvec that moves to a nearer scope takes its instance away (a new one if it
    # comes back); whatever one instance raises or answers ends them all (one exit record, `dump`
    # per lruvec). False (the default):
    # one instance for the whole scope, as in plain-cache mode, which always has one.
    per_lruvec = False

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        self._made_with = (args, kwargs)  # for per_lruvec: how the core makes the other instances
        return self

    def init(self, ctx: Context) -> None:
        """Called once before the first access (set up lists, ghost tables)."""

    def added(self, ctx: Context, handles: np.ndarray) -> None:
        """Pages that became resident (a miss brought them in), in access order."""

    def accessed(self, ctx: Context, handles: np.ndarray) -> None:
        """Accesses that hit resident pages, in access order (a page may appear several times)."""

    def evict(self, ctx: Context, n: int):
        """Propose up to n resident pages to evict, best victim first, or return DEFER to let the
        built-in policy decide this request. Not defining evict() defers every request (an
        observer policy: the core then keeps the built-in policy's fast paths)."""
        return DEFER

    def removed(self, ctx: Context, handles: np.ndarray) -> None:
        """Pages that left (evicted on the policy's proposal or by the core), in order."""

    def exit(self, ctx: Context, info) -> None:
        """Called once when the policy stops (normally or ejected); info is the ExitInfo."""

    def dump(self, ctx: Context) -> str:
        """Policy state for the exit record (keep it short)."""
        return ""


def defines(policy: Policy, hook: str) -> bool:
    """Whether the policy's class overrides `hook` (the core skips hooks left at the default)."""
    return getattr(type(policy), hook, None) is not getattr(Policy, hook)
