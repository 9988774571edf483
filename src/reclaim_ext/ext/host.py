"""The core's side of one attached policy, shared by plain-cache mode (ext.cache) and the
reclaim core (ext.adapter): hooks run under the watchdog, every failure becomes an exit record
(also a stall, SystemExit or anything else a hook raises: a policy cannot end the run; only a
Ctrl-C goes through), and the policy is either attached or gone for good."""

from __future__ import annotations

import weakref
from time import monotonic as _monotonic

from . import lists
from .policy import Context, Policy, PolicyExit
from .safety import (
    _INTERRUPTED, EXIT_DONE, EXIT_ERROR, EXIT_ERROR_POLICY, EXIT_ERROR_STALL, EXIT_NONE, EXIT_UNREG_POLICY,
    HOOK_BUDGET_S, ContractError, ExitInfo, PolicyStall, Watchdog, format_exception, is_interrupt,
)

STARVE_LIMIT = 64     # consecutive evict() answers with no usable victim before ejection (R4)
MAX_HELPERS = 4096    # helper structures (lists, tables) one policy may create (R11)
MIN_ENTRY_CAP = 65536  # entries all of a policy's helpers may hold: max(this, 8 x its capacity) (R11)


class PolicyHost:
    """Calls a policy's hooks on behalf of the core (rules R4-R6, R9).

    `events` is the core's counter dict for this policy (it goes into the exit record);
    `on_eject()` runs once when the policy is ejected, for the core to hand its pages over;
    `name`: the policy's name in messages (default: policy_name(policy))."""

    def __init__(self, policy: Policy, ctx: Context, events: dict, hook_budget: float = HOOK_BUDGET_S,
                 starve_limit: int = STARVE_LIMIT, on_eject=None, entry_cap: int | None = None,
                 name: str | None = None):
        self.policy = policy
        self.ctx = ctx
        self.events = events
        self.starve_limit = starve_limit
        self.on_eject = on_eject
        self.alive = True
        self.exit = ExitInfo()
        self.watchdog = Watchdog(hook_budget, name or policy_name(policy))
        self._starved = 0  # consecutive answers with no usable victim
        # the policy's live lists and tables (registered as they are created, gone when dropped)
        self.helpers: weakref.WeakSet = weakref.WeakSet()
        self.entry_cap = entry_cap  # None: max(MIN_ENTRY_CAP, 8 x ctx.capacity)
        self._calls = 0

    def start(self, replay: bool = False, apply: bool = True):
        """call("init"); for a policy with compiled hooks (ext.compiled), then compile them (or
        load them from numba's cache) outside the hooks' time budget: a policy whose hooks cannot
        run is ejected (ERROR) now. `replay`: the plain-cache loop (returned), `apply`: the
        Python-API calls (see CompiledPolicy.compile_hooks)."""
        self.call("init")
        from .compiled import CompiledHookError, CompiledPolicy
        from .lruvecs import PerLruvec

        compiled = self.policy.prototype if isinstance(self.policy, PerLruvec) else self.policy
        if not self.alive or not isinstance(compiled, CompiledPolicy):
            return None
        try:
            return compiled.compile_hooks(replay=replay, apply=apply)
        except CompiledHookError as e:
            self.eject(EXIT_ERROR, str(e), None, tb=format_exception(e))
        return None

    def call(self, hook: str, *args):
        """Run policy.<hook>(ctx, *args); a failure ejects the policy (R6). The hook's result,
        or None once ejected."""
        if not self.alive:
            return None
        wd = self.watchdog
        cur = lists._HOOK
        reg = lists._REGISTRY
        saved = cur[0], reg[0]
        c = None
        try:
            c = wd._call = (_monotonic(), hook)  # wd.enter(hook), inlined: the hot path
            cur[0], reg[0] = hook, self.helpers
            lists._VIOLATION[0] = None
            try:
                out = getattr(self.policy, hook)(self.ctx, *args)
            finally:
                cur[0], reg[0] = saved
                if wd._signals:  # wd.leave(), inlined
                    wd._call = None
                else:
                    wd.leave()
                if _INTERRUPTED[0]:  # a Ctrl-C, even one the hook caught, aborts the run
                    raise KeyboardInterrupt
            if wd._fired is c:  # stopped, but the policy caught PolicyStall and went on
                raise PolicyStall
            bad, lists._VIOLATION[0] = lists._VIOLATION[0], None
            if bad is not None:  # caught by the policy itself: still a violation
                raise lists.HelperNotAllowed(bad)
            self._calls += 1
            if self._calls & 255 == 0 or hook == "init":  # amortized: a leak is caught within 256 calls
                self._check_resources()
            return out
        except PolicyStall:
            cur[0], reg[0] = saved  # (again: the stall may have landed in the cleanup above)
            wd.leave()
            self.eject(EXIT_ERROR_STALL, f"{hook}() ran longer than {wd.budget:g} s", hook)
        except PolicyExit as e:
            self.eject(EXIT_UNREG_POLICY, e.reason, hook, code=e.code)
        except ContractError as e:
            lists._VIOLATION[0] = None
            self.eject(EXIT_ERROR, str(e), hook, tb=format_exception(e))
        except Exception as e:  # noqa: BLE001 - everything a policy raises becomes an exit
            if wd.stalled(c):  # it caught PolicyStall, then failed otherwise
                self.eject(EXIT_ERROR_STALL, f"{hook}() ran longer than {wd.budget:g} s", hook)
            else:
                self.eject(EXIT_ERROR_POLICY, f"{type(e).__name__}: {e}", hook, tb=format_exception(e))
        except BaseException as e:  # noqa: BLE001 - SystemExit & co.: a policy cannot end the run
            cur[0], reg[0] = saved  # (again: the Ctrl-C may have landed in the cleanup above)
            wd.leave()
            if is_interrupt(e):  # the user's Ctrl-C: abort the run
                raise
            self.eject(EXIT_ERROR_POLICY, f"{e!r} in hook {hook}: a policy cannot end the run (ctx.exit() "
                       "leaves it)", hook, tb=format_exception(e))
        return None

    def _quietly(self, hook: str, fn) -> str | None:
        """Run policy code whose failure has no consequence (dump, exit) under the watchdog: None
        if it returned, else what went wrong; only a Ctrl-C goes through."""
        wd = self.watchdog
        c = None
        was = _INTERRUPTED[0]  # (set already: the run is being aborted, which is under way)
        try:
            c = wd.enter(hook)
            try:
                fn()
            finally:
                wd.leave()
            if _INTERRUPTED[0] and not was:  # a Ctrl-C the hook caught
                raise KeyboardInterrupt
            return f"ran longer than {wd.budget:g} s" if wd.stalled(c) else None
        except PolicyStall:
            wd.leave()
            return f"ran longer than {wd.budget:g} s"
        except BaseException as e:  # noqa: BLE001
            wd.leave()
            if is_interrupt(e):
                raise
            return f"{type(e).__name__}: {e}"

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

    def answered(self, usable: int, why: str | None = None) -> None:
        """Record how many usable victims an evict() answer gave; K empty answers in a row eject
        the policy (starvation, R4); `why`: what was wrong with the last answer, for the record."""
        if not self.alive:
            return
        self._starved = 0 if usable else self._starved + 1
        if self._starved >= self.starve_limit:
            self.eject(EXIT_ERROR_STALL, f"evict() gave no usable victim {self._starved} times in a row "
                       "(starvation)" + (f": {why}" if why else ""), "evict")

    def eject(self, kind: str, reason: str, hook: str | None, code: int = 0, tb: str | None = None) -> None:
        """Stop calling the policy for good and record why (R9)."""
        if not self.alive:
            return
        self.alive = False
        cur = lists._HOOK
        saved = cur[0]
        cur[0] = "dump"
        out = [""]
        try:
            failed = self._quietly("dump", lambda: out.__setitem__(0, str(self.policy.dump(self.ctx))[:32768]))
        finally:
            cur[0] = saved
        dump = out[0] if failed is None else f"(dump failed: {failed})"
        self.exit = ExitInfo(kind=kind, reason=reason, code=code, hook=hook, at_access=self.ctx.now, traceback=tb,
                             dump=dump, counters=dict(self.events))
        if self.on_eject is not None:
            self.on_eject()
        self._goodbye()

    def finish(self) -> None:
        """The run ended (or is aborted): a normal exit if the policy is still attached; the
        watchdog stops in any case."""
        try:
            if self.alive and self.exit.kind == EXIT_NONE:
                self.exit = ExitInfo(kind=EXIT_DONE, reason="the run ended", at_access=self.ctx.now,
                                     counters=dict(self.events))
                self._goodbye()
        finally:
            self.watchdog.close()

    def _goodbye(self) -> None:
        self._quietly("exit", lambda: self.policy.exit(self.ctx, self.exit))  # the policy is already gone
        self.helpers = weakref.WeakSet()  # R9: the policy's private state is dropped


def policy_name(policy) -> str:
    """The name a policy goes by in messages: its `name`, else its class name."""
    name = getattr(type(policy), "name", None)
    return name if isinstance(name, str) and name != Policy.name else type(policy).__name__
