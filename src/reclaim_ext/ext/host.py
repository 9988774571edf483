"""The core's side of one attached policy, shared by plain-cache mode (ext.cache) and the
reclaim core (ext.adapter): hooks run under the watchdog, every failure becomes an exit record,
and the policy is either attached or gone for good."""

from __future__ import annotations

import weakref

from . import lists
from .policy import Context, Policy, PolicyExit
from .safety import (
    EXIT_DONE, EXIT_ERROR, EXIT_ERROR_POLICY, EXIT_ERROR_STALL, EXIT_NONE, EXIT_UNREG_POLICY, ContractError,
    ExitInfo, PolicyStall, Watchdog, format_exception,
)

HOOK_BUDGET_S = 2.0   # wall-clock limit of one hook call (R5)
STARVE_LIMIT = 64     # consecutive evict() answers with no usable victim before ejection (R4)
MAX_HELPERS = 4096    # helper structures (lists, tables) one policy may create (R11)
MIN_ENTRY_CAP = 65536  # entries all of a policy's helpers may hold: max(this, 8 x its capacity) (R11)


class PolicyHost:
    """Calls a policy's hooks on behalf of the core (rules R4-R6, R9).

    `events` is the core's counter dict for this policy (it goes into the exit record);
    `on_eject()` runs once when the policy is ejected, for the core to hand its pages over."""

    def __init__(self, policy: Policy, ctx: Context, events: dict, hook_budget: float = HOOK_BUDGET_S,
                 starve_limit: int = STARVE_LIMIT, on_eject=None, entry_cap: int | None = None):
        self.policy = policy
        self.ctx = ctx
        self.events = events
        self.starve_limit = starve_limit
        self.on_eject = on_eject
        self.alive = True
        self.exit = ExitInfo()
        self.watchdog = Watchdog(hook_budget)
        self._starved = 0  # consecutive answers with no usable victim
        # the policy's live lists and tables (registered as they are created, gone when dropped)
        self.helpers: weakref.WeakSet = weakref.WeakSet()
        self.entry_cap = entry_cap  # None: max(MIN_ENTRY_CAP, 8 x ctx.capacity)
        self._calls = 0

    def call(self, hook: str, *args):
        """Run policy.<hook>(ctx, *args); a failure ejects the policy (R6). The hook's result,
        or None once ejected."""
        if not self.alive:
            return None
        wd = self.watchdog
        cur = lists._HOOK
        reg = lists._REGISTRY
        saved = cur[0], reg[0]
        try:
            wd.enter()
            cur[0], reg[0] = hook, self.helpers
            lists._VIOLATION[0] = None
            try:
                out = getattr(self.policy, hook)(self.ctx, *args)
            finally:
                cur[0], reg[0] = saved
                wd.leave()
            bad, lists._VIOLATION[0] = lists._VIOLATION[0], None
            if bad is not None:  # caught by the policy itself: still a violation
                raise lists.HelperNotAllowed(bad)
            self._calls += 1
            if self._calls & 255 == 0 or hook == "init":  # amortized: a leak is caught within 256 calls
                self._check_resources()
            return out
        except PolicyStall:
            self.eject(EXIT_ERROR_STALL, f"{hook}() ran longer than {wd.budget:g} s", hook)
        except PolicyExit as e:
            self.eject(EXIT_UNREG_POLICY, e.reason, hook, code=e.code)
        except ContractError as e:
            lists._VIOLATION[0] = None
            self.eject(EXIT_ERROR, str(e), hook, tb=format_exception(e))
        except Exception as e:  # noqa: BLE001 - everything a policy raises becomes an exit
            self.eject(EXIT_ERROR_POLICY, f"{type(e).__name__}: {e}", hook, tb=format_exception(e))
        return None

    def _check_resources(self) -> None:
        """R11: caps on the number of helper structures and on the entries they hold together
        (checked after init and after every 256th hook call)."""
        if not self.helpers:
            return
        if len(self.helpers) > MAX_HELPERS:
            raise ContractError(f"created {len(self.helpers)} lists/tables, over the cap of {MAX_HELPERS} (rule R11)")
        cap = self.entry_cap if self.entry_cap is not None else max(MIN_ENTRY_CAP, 8 * self.ctx.capacity)
        n = sum(map(len, self.helpers))
        if n > cap:
            raise ContractError(f"its lists and tables hold {n} entries, over the cap of {cap} (rule R11)")
        for h in self.helpers:
            c = getattr(h, "capacity", None)  # a ghost table sized beyond the cap
            if c is not None and c > cap:
                raise ContractError(f"a ghost table of capacity {c} is over the cap of {cap} entries (rule R11)")

    def answered(self, usable: int) -> None:
        """Record how many usable victims an evict() answer gave; K empty answers in a row eject
        the policy (starvation, R4)."""
        if not self.alive:
            return
        self._starved = 0 if usable else self._starved + 1
        if self._starved >= self.starve_limit:
            self.eject(EXIT_ERROR_STALL, f"evict() gave no usable victim {self._starved} times in a row "
                       "(starvation)", "evict")

    def eject(self, kind: str, reason: str, hook: str | None, code: int = 0, tb: str | None = None) -> None:
        """Stop calling the policy for good and record why (R9)."""
        if not self.alive:
            return
        self.alive = False
        cur = lists._HOOK
        saved = cur[0]
        cur[0] = "dump"
        try:
            dump = str(self.policy.dump(self.ctx))[:32768]
        except Exception as e:  # noqa: BLE001
            dump = f"(dump failed: {type(e).__name__}: {e})"
        finally:
            cur[0] = saved
        self.exit = ExitInfo(kind=kind, reason=reason, code=code, hook=hook, at_access=self.ctx.now, traceback=tb,
                             dump=dump, counters=dict(self.events))
        if self.on_eject is not None:
            self.on_eject()
        self._goodbye()

    def finish(self) -> None:
        """The run ended: a normal exit if the policy is still attached."""
        if self.alive and self.exit.kind == EXIT_NONE:
            self.exit = ExitInfo(kind=EXIT_DONE, reason="the run ended", at_access=self.ctx.now,
                                 counters=dict(self.events))
            self._goodbye()
        self.watchdog.close()

    def _goodbye(self) -> None:
        try:
            self.policy.exit(self.ctx, self.exit)
        except Exception:  # noqa: BLE001 - the policy is already gone
            pass
        self.helpers = weakref.WeakSet()  # R9: the policy's private state is dropped
