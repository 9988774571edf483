"""memory.high's penalty (mm/memcontrol.c): how long a task that keeps a memcg above its
memory.high is throttled when reclaim does not bring the memcg back under it. Called by the engine
(Simulator._handle_over_high) on the task's return to user space."""

from __future__ import annotations

HZ = 250  # jiffies per second (Debian's CONFIG_HZ)
MEMCG_CHARGE_BATCH = 64
MEMCG_DELAY_PRECISION_SHIFT = 20
MEMCG_DELAY_SCALING_SHIFT = 14
MEMCG_MAX_HIGH_DELAY_JIFFIES = 2 * HZ


def calculate_overage(usage: int, high: int) -> int:
    """calculate_overage: (usage - high) / high in fixed point (MEMCG_DELAY_PRECISION_SHIFT bits);
    0 at or below high; a high of 0 counts as 1 page."""
    if usage <= high:
        return 0
    high = max(high, 1)
    return ((usage - high) << MEMCG_DELAY_PRECISION_SHIFT) // high


def mem_find_max_overage(memcg) -> int:
    """mem_find_max_overage: the largest overage of the memcg and its ancestors below the root."""
    best = 0
    m = memcg
    while m is not None:
        best = max(best, calculate_overage(m.usage, m.high))
        m = m.parent
        if m is not None and m.parent is None:
            break
    return best


def calculate_high_delay(nr_pages: int, max_overage: int) -> int:
    """calculate_high_delay: jiffies of penalty, quadratic in the overage, scaled by the task's
    own share of it (nr_pages against a nominal MEMCG_CHARGE_BATCH)."""
    if not max_overage:
        return 0
    penalty = (max_overage * max_overage * HZ) >> MEMCG_DELAY_PRECISION_SHIFT >> MEMCG_DELAY_SCALING_SHIFT
    return penalty * nr_pages // MEMCG_CHARGE_BATCH
