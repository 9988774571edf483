"""reclaim_ext: policies written against the public API, checked by the core, ejected safely.

    from reclaim_ext.ext import Policy, IndexedList, GhostTable, ScoreTable
"""

from .lists import GhostTable, IndexedList, ScoreTable
from .policy import DEFER, Context, Policy, PolicyExit
from .safety import EXIT_KINDS, ExitInfo

__all__ = ["DEFER", "Policy", "Context", "PolicyExit", "IndexedList", "GhostTable", "ScoreTable", "ExitInfo", "EXIT_KINDS"]
