"""The core's side of one attached policy, shared by plain-cache mode (ext.cache) and the
reclaim core (ext.adapter): hooks run under the watchdog, every failure becomes an exit record,
and the policy is either attached or gone for good."""

from __future__ import annotations

from .policy import Context, Policy, PolicyExit
from .safety import (
    EXIT_DONE, EXIT_ERROR, EXIT_ERROR_POLICY, EXIT_ERROR_STALL, EXIT_NONE, EXIT_UNREG_POLICY, ContractError,
    ExitInfo, PolicyStall, Watchdog, format_exception,
)

HOOK_BUDGET_S = 2.0   # wall-clock limit of one hook call (R5)
STARVE_LIMIT = 64     # consecutive evict() answers with no usable victim before ejection (R4)


class PolicyHost:
    """Calls a policy's hooks on behalf of the core (rules R4-R6, R9).

    `events` is the core's counter dict for this policy (it goes into the exit record);
    `on_eject()` runs once when the policy is ejected, for the core to hand its pages over."""

    def __init__(self, policy: Policy, ctx: Context, events: dict, hook_budget: float = HOOK_BUDGET_S,
                 starve_limit: int = STARVE_LIMIT, on_eject=None):
        self.policy = policy
        self.ctx = ctx
        self.events = events
        self.starve_limit = starve_limit
        self.on_eject = on_eject
        self.alive = True
        self.exit = ExitInfo()
        self.watchdog = Watchdog(hook_budget)
        self._starved = 0  # consecutive answers with no usable victim

    def call(self, hook: str, *args):
        """Run policy.<hook>(ctx, *args); a failure ejects the policy (R6). The hook's result,
        or None once ejected."""
        if not self.alive:
            return None
        wd = self.watchdog
        try:
            wd.enter()
            try:
                return getattr(self.policy, hook)(self.ctx, *args)
            finally:
                wd.leave()
        except PolicyStall:
            self.eject(EXIT_ERROR_STALL, f"{hook}() ran longer than {wd.budget:g} s", hook)
        except PolicyExit as e:
            self.eject(EXIT_UNREG_POLICY, e.reason, hook, code=e.code)
        except ContractError as e:
            self.eject(EXIT_ERROR, str(e), hook, tb=format_exception(e))
        except Exception as e:  # noqa: BLE001 - everything a policy raises becomes an exit
            self.eject(EXIT_ERROR_POLICY, f"{type(e).__name__}: {e}", hook, tb=format_exception(e))
        return None

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
        try:
            dump = str(self.policy.dump(self.ctx))[:32768]
        except Exception as e:  # noqa: BLE001
            dump = f"(dump failed: {type(e).__name__}: {e})"
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
