"""The public policy API of reclaim_ext: what a policy author writes against.

A policy is a class with a few hooks that take and return numpy arrays of page *handles* (ints
that name a page for the whole run; a handle is valid while its page is resident). Only `added`
and `evict` are required; the core provides defaults for the rest:

    class MyLRU(Policy):
        name = "my-lru"
        def init(self, ctx):               self.lru = IndexedList()
        def added(self, ctx, handles):     [self.lru.push_head(h) for h in handles]
        def accessed(self, ctx, handles):  [self.lru.move_head(h) for h in handles]
        def removed(self, ctx, handles):   [self.lru.discard(h) for h in handles]
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

import numpy as np


class _Defer:
    """The answer `evict` gives to let the built-in policy decide this request."""

    def __repr__(self) -> str:
        return "DEFER"


DEFER = _Defer()


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
    counters: dict = field(default_factory=dict)  # the policy's own counters (shown in results)

    def exit(self, code: int = 0, reason: str = "policy exited") -> None:
        """Leave voluntarily (like scx_bpf_exit): the fallback takes over."""
        raise PolicyExit(code, reason)


class Policy:
    """Base class for reclaim_ext policies. Subclasses set `name` and implement `added` and
    `evict`; every other hook is optional."""

    name = "policy"

    def init(self, ctx: Context) -> None:
        """Called once before the first access (set up lists, ghost tables)."""

    def added(self, ctx: Context, handles: np.ndarray) -> None:
        """Pages that became resident (a miss brought them in), in access order. Required."""
        raise NotImplementedError(f"policy {self.name}: added() is required")

    def accessed(self, ctx: Context, handles: np.ndarray) -> None:
        """Accesses that hit resident pages, in access order (a page may appear several times)."""

    def evict(self, ctx: Context, n: int):
        """Propose up to n resident pages to evict, best victim first, or return DEFER to let the
        built-in policy decide this request. Required."""
        raise NotImplementedError(f"policy {self.name}: evict() is required")

    def removed(self, ctx: Context, handles: np.ndarray) -> None:
        """Pages that left (evicted on the policy's proposal or by the core), in order."""

    def exit(self, ctx: Context, info) -> None:
        """Called once when the policy stops (normally or ejected); info is the ExitInfo."""

    def dump(self, ctx: Context) -> str:
        """Policy state for the exit record (keep it short)."""
        return ""
