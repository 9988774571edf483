"""noop: a policy that attaches and defers every decision to the built-in one (classic LRU). It
defines no hook, so the core calls none: its run has the counters of a plain classic run, and the
difference in wall time is the cost of the extension layer itself.

Run it:  reclaim-ext run --policy examples/noop.py --workload zipf --memory 64MiB
"""

from reclaim_ext.ext import Policy


class Noop(Policy):
    name = "noop"
