"""noop: a policy that defers every decision to the built-in one (classic LRU). Its run has the
counters of a plain classic run; the difference in wall time is the cost of the extension layer.

Run it:  reclaim-ext run --policy examples/noop.py --workload zipf --memory 64MiB
"""

from reclaim_ext.ext import DEFER, Policy


class Noop(Policy):
    name = "noop"

    def added(self, ctx, handles):
        pass

    def evict(self, ctx, n):
        return DEFER
