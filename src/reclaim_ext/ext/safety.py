"""The core's side of the contract with a policy: exit kinds, exit records, answer checks.

Modelled on sched_ext (reference extension-anchors.md §1.4, rules R1-R12): the policy only
proposes; the core validates every answer, ignores and counts small mistakes (stale handles),
and ejects the policy on a contract violation, an exception or a voluntary exit, recording why.
"""

from __future__ import annotations

import ctypes
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


def check_victims(answer, n: int, resident: np.ndarray, issued: int) -> tuple[np.ndarray, int]:
    """Validate an evict() answer (rule R2): a sequence of at most n distinct int handles, each
    one a handle the core has issued. Returns (victims that are resident now, number of stale
    handles: issued but not resident, ignored and counted as in sched_ext). Raises ContractError
    for anything else."""
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
    live = resident[arr]
    return arr[live], int((~live).sum())


def format_exception(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


class PolicyStall(BaseException):
    """Injected into a hook that ran past its time budget (exit kind ERROR_STALL). A
    BaseException, so a policy's own `except Exception` cannot swallow it."""


class Watchdog:
    """Bounds the wall time of every hook call (rule R5): a daemon thread watches the call in
    progress and, once it has run longer than `budget` seconds, raises PolicyStall inside it (an
    asynchronous exception: it lands at the next Python bytecode, so a pure-Python loop is
    stopped; a hook stuck inside one C call is stopped when that call returns)."""

    def __init__(self, budget: float):
        self.budget = float(budget)
        self._target = threading.get_ident()
        self._started: float | None = None
        self._fired = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="reclaim_ext-watchdog", daemon=True)
        self._thread.start()

    def enter(self) -> None:
        self._fired = False
        self._started = time.monotonic()

    def leave(self) -> None:
        self._started = None

    def _watch(self) -> None:
        period = max(0.005, min(0.05, self.budget / 4))
        while not self._stop.wait(period):
            t0 = self._started
            if t0 is not None and not self._fired and time.monotonic() - t0 > self.budget:
                self._fired = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._target), ctypes.py_object(PolicyStall))

    def close(self) -> None:
        self._stop.set()

