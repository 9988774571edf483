"""reclaim_ext: policies written against the public API, checked by the core, ejected safely.

    from reclaim_ext.ext import Policy, IndexedList, GhostTable, ScoreTable
    from reclaim_ext.ext import CompiledPolicy   # hooks compiled with numba (ext.compiled)
"""

from .lists import GhostTable, IndexedList, ScoreTable
from .policy import ANON, DEFER, FILE, Context, Policy, PolicyExit
from .safety import EXIT_KINDS, ExitInfo

__all__ = ["ANON", "FILE", "DEFER", "Policy", "Context", "PolicyExit", "IndexedList", "GhostTable", "ScoreTable", "ExitInfo", "EXIT_KINDS",
           "CompiledPolicy"]


def __getattr__(name: str):
    if name == "CompiledPolicy":  # on first use: it brings numba in
        from .compiled import CompiledPolicy

        return CompiledPolicy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
