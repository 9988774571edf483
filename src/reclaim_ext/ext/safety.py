"""The core's side of the contract with a policy: exit kinds, exit records, answer checks.

Modelled on sched_ext's scx_exit_info (kernel/sched/ext.c; rules R1-R12 in docs/writing-policies.md): the policy only
proposes; the core validates every answer, ignores and counts small mistakes (stale handles),
and ejects the policy on a contract violation, an exception or a voluntary exit, recording why.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field

import numpy as np

from ..core.batch import first_occurrence

# exit kinds (enum scx_exit_kind analogue)
EXIT_NONE = "NONE"                  # still running
EXIT_DONE = "DONE"                  # the run ended normally
EXIT_UNREG = "UNREG"                # detached by the user / the run
EXIT_UNREG_POLICY = "UNREG_POLICY"  # the policy called ctx.exit()
EXIT_ERROR = "ERROR"                # a contract violation (bad answer)
EXIT_ERROR_POLICY = "ERROR_POLICY"  # the policy raised an exception
EXIT_ERROR_STALL = "ERROR_STALL"    # budget exceeded / no progress
EXIT_KINDS = (EXIT_NONE, EXIT_DONE, EXIT_UNREG, EXIT_UNREG_POLICY, EXIT_ERROR, EXIT_ERROR_POLICY,
              EXIT_ERROR_STALL)
NORMAL_EXITS = (EXIT_NONE, EXIT_DONE, EXIT_UNREG)  # any other kind: the policy was ejected (or quit)


@dataclass
class ExitInfo:
    """Why and when a policy stopped (struct scx_exit_info analogue)."""

    kind: str = EXIT_NONE
    reason: str = ""
    code: int = 0
    hook: str | None = None          # the hook that was running
    at_access: int | None = None     # trace position
    traceback: str | None = None
    dump: str = ""
    counters: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


class ContractError(Exception):
    """A policy answer broke the contract (exit kind ERROR)."""


def check_victims(answer, n: int, resident, issued: int) -> tuple[np.ndarray, int]:
    """Validate an evict() answer (rule R2): a sequence of at most n distinct int handles, each
    one a handle the core has issued. Returns (victims that are resident now, number of stale
    handles: issued but not resident, ignored and counted as in sched_ext). Raises ContractError
    for anything else. `resident`: a bool array by handle, or a function giving that mask for
    an array of handles (so the core need not build a mask over all its handles per answer)."""
    if answer is None:
        raise ContractError("evict() returned None (return a sequence of handles, possibly empty)")
    try:
        arr = np.asarray(answer)
    except Exception as e:  # noqa: BLE001 - any conversion failure is a bad answer
        raise ContractError(f"evict() returned something that is not a sequence of handles: {e}") from None
    if arr.ndim == 0:
        raise ContractError(f"evict() returned a scalar {answer!r}, not a sequence of handles")
    if arr.ndim != 1:
        raise ContractError(f"evict() returned an array of shape {arr.shape}, not a flat sequence")
    if len(arr) == 0:
        return np.zeros(0, dtype=np.int64), 0
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "O" and all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in arr):
            arr = arr.astype(np.int64)
        else:
            raise ContractError(f"evict() returned {arr.dtype} values, not integer handles")
    arr = arr.astype(np.int64)
    if len(arr) > n:
        raise ContractError(f"evict() returned {len(arr)} handles for a request of {n}")
    if (arr < 0).any() or (arr >= issued).any():
        bad = int(arr[(arr < 0) | (arr >= issued)][0])
        raise ContractError(f"evict() returned handle {bad}, which the core never issued (forged)")
    if not first_occurrence(arr, issued).all():
        raise ContractError("evict() returned the same handle twice")
    live = resident(arr) if callable(resident) else resident[arr]
    return arr[live], int((~live).sum())


def format_exception(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


# ---- rule R5: time budgets, and what a policy may not do to the run -------------------------------

HOOK_BUDGET_S = 2.0      # wall-clock limit of one hook call, of importing a policy, of creating it
STUCK_GRACE_S = 2.0      # still running this long after the budget: it cannot be stopped (last resort)
INTERRUPT_GRACE_S = 1.0  # a hook still running this long after a Ctrl-C (last resort)
EXIT_STUCK = 2           # exit code of the last resort: one error line, as for any bad input
EXIT_INTERRUPTED = 130   # exit code after a Ctrl-C, as the CLI's "aborted"


class PolicyStall(BaseException):
    """Raised inside a hook that ran past its time budget (exit kind ERROR_STALL). A
    BaseException, so a policy's own `except Exception` cannot swallow it."""


# The sandbox's signal handlers, installed in the main thread while a watchdog of it is open (the
# first one installs them, the last one closed restores what was there before).
_ARMED: list = []         # open watchdogs of the main thread
_SAVED: dict = {}         # signal number -> the handler to restore
_INTERRUPTED = [False]    # a Ctrl-C (SIGINT) arrived while our SIGINT handler was installed
_OWN_MODULES = (__name__, __name__.rpartition(".")[0] + ".host")  # the guard's own frames
_CAN_SIGNAL = hasattr(signal, "pthread_kill") and hasattr(signal, "SIGALRM")


def _on_alarm(signum, frame):
    """SIGALRM, sent by a watchdog thread to the main thread: raise PolicyStall in the hook that
    ran past its budget. A blocking call in the hook (sleep, read, select, wait, lock) returns with
    EINTR and Python runs this handler (PEP 475); a pure-Python loop runs it at its next bytecode."""
    for wd in _ARMED:
        c = wd._call
        if c is not None and wd._fired is c:
            if frame is not None and frame.f_globals.get("__name__") in _OWN_MODULES:
                return  # in the guard's own bookkeeping: the check after the call reports the stall
            raise PolicyStall(f"{wd.label(c[1])} ran longer than {wd.budget:g} s")
    prev = _SAVED.get(signal.SIGALRM)
    if callable(prev):  # not ours: whoever had SIGALRM before the run
        prev(signum, frame)


def _on_sigint(signum, frame):
    """Ctrl-C: a KeyboardInterrupt, as Python's default handler, and remembered, so that a hook
    that catches it cannot swallow it (PolicyHost raises it again once the hook returns)."""
    _INTERRUPTED[0] = True
    raise KeyboardInterrupt


def is_interrupt(exc: BaseException) -> bool:
    """Whether `exc` is the user's Ctrl-C (to let through), not a KeyboardInterrupt a policy
    raised itself (an error of the policy). Without our SIGINT handler (a run outside the main
    thread) every KeyboardInterrupt counts as a Ctrl-C, unless SIGINT is ignored (a process started
    in the background by a non-interactive shell): then no Ctrl-C can arrive."""
    if not isinstance(exc, KeyboardInterrupt):
        return False
    if _INTERRUPTED[0]:
        return True
    return signal.SIGINT not in _SAVED and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN


def _arm(wd) -> bool:
    """Register a watchdog of the main thread (the first installs the handlers); False in any
    other thread, where signals cannot be used (the watchdog then uses an asynchronous exception)."""
    if not _CAN_SIGNAL or threading.current_thread() is not threading.main_thread():
        return False
    if not _ARMED:
        try:
            prev = signal.signal(signal.SIGALRM, _on_alarm)
        except (ValueError, OSError):  # not the main interpreter
            return False
        if prev is not _on_alarm:
            _SAVED[signal.SIGALRM] = prev
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            _SAVED[signal.SIGINT] = signal.signal(signal.SIGINT, _on_sigint)
        _INTERRUPTED[0] = False
    _ARMED.append(wd)
    return True


def _disarm(wd) -> None:
    """Unregister a watchdog; the last one restores the handlers that were there before."""
    if wd in _ARMED:
        _ARMED.remove(wd)
    if _ARMED or threading.current_thread() is not threading.main_thread():
        return
    for sig, prev in list(_SAVED.items()):
        if signal.getsignal(sig) in (_on_alarm, _on_sigint):
            signal.signal(sig, signal.SIG_DFL if prev is None else prev)
    _SAVED.clear()
    _INTERRUPTED[0] = False


class Watchdog:
    """Bounds the wall time of every guarded call (rule R5). A daemon thread watches the call in
    progress; once it has run longer than `budget` seconds:

    * in the main thread, it sends the thread SIGALRM, and again every few milliseconds until the
      call ends: the handler raises PolicyStall in the hook, which stops a pure-Python loop at its
      next bytecode and a blocking call (sleep, read, select, wait, lock) at once;
    * in another thread (Python runs signal handlers in the main thread only), it raises
      PolicyStall there as an asynchronous exception, which lands at the next Python bytecode: a
      loop is stopped, a hook blocked inside one C call only once that call returns.

    Last resorts, in the main thread only (elsewhere the caller's process is never ended): a call
    still running STUCK_GRACE_S after its budget cannot be stopped (signals blocked or ignored, a
    C call that retries on EINTR): the watchdog prints one error line naming the policy, the hook
    and the budget, and ends the process (exit code 2); a call still running INTERRUPT_GRACE_S
    after a Ctrl-C ends it as aborted (exit code 130). A C call that holds the GIL (a CPU loop in a
    C extension) starves this thread too: nothing in the process can stop it."""

    def __init__(self, budget: float, name: str = "policy"):
        self.budget = float(budget)
        self.name = name
        self._target = threading.get_ident()
        self._call = None   # (start time, what) of the call in progress
        self._fired = None  # the call the watchdog has stopped
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._armed = self._signals = _arm(self)
        self._thread = threading.Thread(target=self._watch, name="reclaim_ext-watchdog", daemon=True)
        self._thread.start()

    @staticmethod
    def label(what: str) -> str:
        return f"hook {what}()" if what.isidentifier() else what

    def enter(self, what: str):
        """A guarded call starts (`what`: a hook name, or e.g. 'importing it'); returns its token."""
        c = self._call = (time.monotonic(), what)
        return c

    def leave(self) -> None:
        if self._signals:
            self._call = None
            return
        with self._lock:  # no asynchronous exception may land after the call: withdraw a pending one
            c, self._call = self._call, None
            if c is not None and self._fired is c:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._target), None)

    def stalled(self, token) -> bool:
        """Whether the watchdog stopped the call `token` (also when the policy caught PolicyStall)."""
        return token is not None and self._fired is token

    def _watch(self) -> None:
        period = max(0.005, min(0.05, self.budget / 4))
        intr = None  # (call, time) a Ctrl-C was first seen during that call
        while not self._stop.wait(period):
            c = self._call
            if c is None:
                continue
            now = time.monotonic()
            over = now - c[0] - self.budget
            if self._signals:
                if _INTERRUPTED[0]:  # the KeyboardInterrupt is on its way; no stall on top of it
                    if intr is None or intr[0] is not c:
                        intr = (c, now)
                    elif now - intr[1] > INTERRUPT_GRACE_S and self._call is c:
                        self._last_resort(c, interrupted=True)
                    continue
                if over > 0:
                    self._fired = c
                    if signal.getsignal(signal.SIGALRM) is _on_alarm:  # unless the policy replaced it
                        try:
                            signal.pthread_kill(self._target, signal.SIGALRM)
                        except OSError:
                            pass
                    if over > STUCK_GRACE_S and self._call is c:
                        self._last_resort(c)
            elif over > 0 and self._fired is not c:
                with self._lock:
                    if self._call is c:
                        self._fired = c
                        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._target),
                                                                   ctypes.py_object(PolicyStall))

    def _last_resort(self, c, interrupted: bool = False) -> None:
        if interrupted:
            msg, code = (f"reclaim-ext: aborted (policy {self.name}: {self.label(c[1])} did not return after "
                         f"Ctrl-C)", EXIT_INTERRUPTED)
        else:
            why = ("compiled code cannot be interrupted" if c[1].startswith("compiled") else
                   "blocked in code that ignores signals, or it catches PolicyStall")
            msg, code = (f"reclaim-ext: error: policy {self.name}: {self.label(c[1])} ran past its "
                         f"{self.budget:g} s budget and could not be stopped ({why}); gave up "
                         f"{STUCK_GRACE_S:g} s later", EXIT_STUCK)
        try:
            os.write(2, (msg + "\n").encode())
        finally:
            os._exit(code)

    def close(self) -> None:
        """Stop watching (idempotent); the last watchdog of the main thread restores the signal
        handlers, after its thread has stopped (so no SIGALRM comes later)."""
        self._stop.set()
        self._call = None
        if self._thread is not threading.current_thread():
            self._thread.join(5.0)
        if self._armed:
            self._armed = False
            _disarm(self)


def run_guarded(fn, name: str, what: str, budget: float = HOOK_BUDGET_S):
    """Run policy code that is not a hook (importing the policy's module, creating the policy)
    under a watchdog and return fn()'s result. A stall, or a BaseException that would end the run
    (SystemExit, ...), becomes a ConfigError "policy: NAME: WHAT ..."; a Ctrl-C goes through, and
    exceptions propagate as they are."""
    from ..errors import ConfigError

    wd = Watchdog(budget, name)
    c = None
    try:
        c = wd.enter(what)
        try:
            out = fn()
        finally:
            wd.leave()
        if _INTERRUPTED[0]:  # a Ctrl-C the code caught
            raise KeyboardInterrupt
        if wd.stalled(c):
            raise PolicyStall
        return out
    except PolicyStall:
        err = f"ran longer than {wd.budget:g} s (stopped; rule R5)"
    except Exception:
        raise
    except BaseException as e:  # noqa: BLE001 - SystemExit and the like may not end the run
        if is_interrupt(e):
            raise
        err = f"raised {e!r}: a policy cannot end the run"
    finally:
        wd.close()
    raise ConfigError(f"policy: {name}: {what} {err}")
