"""Behavioural tests of the simple plug-ins (FIFO, CLOCK, SIEVE, MRU, LFU) in plain-cache mode:
tiny hand-made traces that pin each algorithm's defining behaviour (which object is evicted when),
a cross-check of the eviction order against naive list-based models on random traces, and the
hook-level contract (several victims at once, removals the policy did not ask for).

The exact match with libcachesim's miss ratios on real traces is checked elsewhere (stored
reference values); these tests are fast and need no trace file.
"""

from __future__ import annotations

import numpy as np
import pytest

from reclaim_ext.ext import Context
from reclaim_ext.ext.cache import run_cache
from reclaim_ext.plugins.clock import Clock
from reclaim_ext.plugins.fifo import FIFO
from reclaim_ext.plugins.lfu import LFU
from reclaim_ext.plugins.lru import LRU
from reclaim_ext.plugins.mru import MRU
from reclaim_ext.plugins.sieve import Sieve
from reclaim_ext.trace import ArrayTrace, Kind
from reclaim_ext.trace.record import make_records

PLUGINS = [FIFO, Clock, Sieve, MRU, LFU, LRU]


def replay(cls, ids, capacity):
    """Run object ids through a cache of `capacity` objects; (victims as object ids, result)."""
    ids = [int(i) for i in ids]
    obj_of = list(dict.fromkeys(ids))  # handles are issued in order of first appearance
    victims = []

    class Recording(cls):
        # every eviction is the policy's own (the events are checked to be zero below), and a
        # lookahead policy may be asked for more victims than the next miss uses: record them
        # as they leave
        def removed(self, ctx, handles):
            victims.extend(obj_of[h] for h in handles.tolist())
            return super().removed(ctx, handles)

    rec = make_records(len(ids))
    rec["kind"] = Kind.FILE_FD
    rec["file"] = 0
    rec["page"] = ids
    res = run_cache(ArrayTrace("hand-made", rec), Recording(), capacity, check=True)
    assert res["exit"]["kind"] == "DONE", res["exit"]
    assert not any(res["events"].values()), res["events"]
    assert len(victims) == res["evictions"]
    return victims, res


# ---- the defining behaviour of each algorithm ---------------------------------------------------


def test_names():
    assert [c.name for c in PLUGINS] == ["fifo", "clock", "sieve", "mru", "lfu", "lru"]


@pytest.mark.parametrize("cls", PLUGINS)
def test_no_eviction_below_capacity_and_done(cls):
    victims, res = replay(cls, [0, 1, 2, 0, 1, 2, 2], 3)
    assert victims == [] and res["misses"] == 3 and res["hits"] == 4


def test_fifo_ignores_hits():
    # 0 is hit just before the miss on 3, but it is still the oldest admission
    victims, res = replay(FIFO, [0, 1, 2, 0, 0, 3, 4, 0], 3)
    assert victims == [0, 1, 2]
    assert res["misses"] == 6
    assert replay(LRU, [0, 1, 2, 0, 0, 3], 3)[0] == [1]  # LRU would have kept 0


def test_clock_second_chance():
    # 0 is referenced: on the miss on 3 it is moved to the head with its bit cleared, 1 goes;
    # then 2 goes, and 0 (no second reference) goes next
    assert replay(Clock, [0, 1, 2, 0, 3, 4, 5], 3)[0] == [1, 2, 0]


def test_clock_one_bit_saturates():
    # three hits on 0 still buy one pass only (1-bit counter); a 2-bit counter would spare 0 again
    # and evict 3 instead of 0 on the miss on 5
    assert replay(Clock, [0, 1, 2, 0, 0, 0, 3, 4, 5], 3)[0] == [1, 2, 0]


def test_clock_new_objects_start_unreferenced():
    # no hits at all: CLOCK is FIFO
    ids = [0, 1, 2, 3, 4, 5, 1, 6]
    assert replay(Clock, ids, 3)[0] == replay(FIFO, ids, 3)[0] == [0, 1, 2, 3, 4]


def test_clock_all_referenced_evicts_the_oldest():
    # every bit set: the hand clears them all in one turn and comes back to the oldest
    assert replay(Clock, [0, 1, 2, 2, 1, 0, 3], 3)[0] == [0]


def test_sieve_keeps_visited_objects_in_place():
    # 0 is visited: the hand clears its bit and evicts 1, then keeps going towards the head (2,
    # then the new 3); 0 stays at the tail untouched. CLOCK would have moved 0 to the head and
    # evicted it third.
    assert replay(Sieve, [0, 1, 2, 0, 3, 4, 5], 3)[0] == [1, 2, 3]
    assert replay(Clock, [0, 1, 2, 0, 3, 4, 5], 3)[0] == [1, 2, 0]


def test_sieve_hand_wraps_from_head_to_tail():
    # 0 and 1 visited: the hand clears both and evicts 2 (the head), so it runs off the head;
    # the next eviction starts again at the tail, where 0 now has a clear bit
    assert replay(Sieve, [0, 1, 2, 0, 1, 3, 4, 5], 3)[0] == [2, 0, 1]


def test_sieve_hand_resumes_where_it_stopped():
    # the hand clears 0 and evicts 1, then rests on 2; 0 is visited again, but the hand does not
    # go back to the tail: it evicts 2, then the new 3. A hand restarting at the tail on every
    # eviction would clear 0 again and evict 2, then 0.
    assert replay(Sieve, [0, 1, 2, 0, 3, 0, 4, 5], 3)[0] == [1, 2, 3]


def test_mru_evicts_the_last_used():
    # on the miss on 3 the most recently used resident object is 0 (just hit); on the miss on 4
    # it is 3 (just admitted)
    assert replay(MRU, [0, 1, 2, 0, 3, 4], 3)[0] == [0, 3]


def test_mru_beats_lru_on_a_loop_larger_than_the_cache():
    loop = list(range(5)) * 20
    _, mru = replay(MRU, loop, 4)
    _, lru = replay(LRU, loop, 4)
    assert lru["hits"] == 0
    assert mru["hits"] > 0.6 * len(loop)


def test_lfu_evicts_the_least_frequent():
    # 1 has three uses, 2 two, 0 one: 0 goes; then the new 3 (one use) goes before 2
    assert replay(LFU, [0, 1, 2, 1, 1, 2, 3, 4], 3)[0] == [0, 3]


def test_lfu_tie_break_is_first_to_reach_the_frequency():
    # 0 and 1 both reach frequency 2, 1 first (hit before 0): 1 goes, although 0 was admitted first
    assert replay(LFU, [0, 1, 1, 0, 2], 2)[0] == [1]
    # among frequency-1 objects, the oldest admission goes (FIFO), not the newest
    assert replay(LFU, [0, 1, 2, 3, 4], 3)[0] == [0, 1]


def test_lfu_forgets_evicted_objects():
    # 0 (frequency 2) loses to 1 (frequency 3), then 2 (frequency 1) loses to 1; 0 comes back with
    # frequency 1, not 3, so it goes again on the miss on 3 (with its history kept it would tie
    # with 1 at 3 and 1, the first to reach 3, would go)
    victims, _ = replay(LFU, [0, 0, 1, 1, 1, 2, 0, 3], 2)
    assert victims == [0, 2, 0]


# ---- cross-check against naive models on random traces ------------------------------------------


def naive_victims(algo: str, ids, capacity):
    """Eviction order of a plain list-based model (index 0 = oldest / tail)."""
    q, bit, last, freq, victims = [], {}, {}, {}, []
    hand = None  # SIEVE: index into q of the next object to examine, None = tail
    for t, x in enumerate(ids):
        if x in q:
            bit[x] = 1
            freq[x] += 1
            last[x] = t
            if algo == "mru":
                q.remove(x)
                q.append(x)
            continue
        if len(q) == capacity:
            if algo in ("fifo", "mru"):
                v = q[0] if algo == "fifo" else q[-1]
            elif algo == "clock":
                while bit[q[0]]:
                    bit[q[0]] = 0
                    q.append(q.pop(0))
                v = q[0]
            elif algo == "sieve":
                i = 0 if hand is None else hand
                while bit[q[i]]:
                    bit[q[i]] = 0
                    i = (i + 1) % len(q)
                v = q[i]
                hand = i if i + 1 < len(q) else None  # after removing q[i], q[i] is its neighbour
            elif algo == "lru":
                v = min(q, key=lambda o: last[o])
            else:  # lfu: lowest frequency, then the earliest to reach it (= its last access)
                v = min(q, key=lambda o: (freq[o], last[o]))
            q.remove(v)
            victims.append(v)
        q.append(x)
        bit[x], freq[x], last[x] = 0, 1, t
    return victims


@pytest.mark.parametrize("cls", PLUGINS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matches_naive_model(cls, seed):
    rng = np.random.default_rng(seed)
    # skewed ids so there are hits, repeated hits and ties
    ids = (rng.zipf(1.3, 3000) % 40).tolist()
    for capacity in (1, 2, 7, 16):
        victims, _ = replay(cls, ids, capacity)
        assert victims == naive_victims(cls.name, ids, capacity), (cls.name, capacity)


# ---- the hook contract --------------------------------------------------------------------------


def _ctx():
    return Context(capacity=8, rng=np.random.default_rng(0))


def _arr(*h):
    return np.array(h, dtype=np.int64)


def _loaded(cls, ctx):
    """A policy holding handles 0..7 (admitted in order), with some hits."""
    p = cls()
    p.init(ctx)
    for h in range(8):
        ctx.when = _arr(h)
        p.added(ctx, _arr(h))
    ctx.when = _arr(8, 9, 10, 11, 12)
    p.accessed(ctx, _arr(2, 5, 2, 7, 0))
    ctx.when = _arr(13)
    p.accessed(ctx, _arr(5))
    return p


@pytest.mark.parametrize("cls", PLUGINS)
def test_several_victims_equal_one_at_a_time(cls):
    ctx = _ctx()
    many = _loaded(cls, ctx).evict(ctx, 5)
    one = _loaded(cls, ctx)
    singles = []
    for _ in range(5):
        [v] = one.evict(ctx, 1)
        one.removed(ctx, _arr(v))
        singles.append(v)
    assert list(many) == singles
    assert len(set(many)) == 5


@pytest.mark.parametrize("cls", PLUGINS)
def test_asking_for_more_than_resident(cls):
    ctx = _ctx()
    p = _loaded(cls, ctx)
    out = p.evict(ctx, 20)
    assert sorted(out) == list(range(8))
    p.removed(ctx, _arr(*out))
    assert list(p.evict(ctx, 1)) == []


@pytest.mark.parametrize("cls", PLUGINS)
def test_removal_the_policy_did_not_propose(cls):
    ctx = _ctx()
    p = _loaded(cls, ctx)
    # the core takes 4 and 5 away on its own (e.g. the fallback); 99 was never in the policy
    p.removed(ctx, _arr(4, 5, 99))
    first = p.evict(ctx, 1)
    assert len(first) == 1 and first[0] not in (4, 5)
    assert sorted(p.evict(ctx, 8)) == [0, 1, 2, 3, 6, 7]


def test_sieve_removal_of_the_object_under_the_hand():
    ctx = _ctx()
    p = _loaded(Sieve, ctx)
    [v] = p.evict(ctx, 1)  # 0 visited (cleared), 1 evicted; the hand rests on 2
    p.removed(ctx, _arr(v))
    assert v == 1
    p.removed(ctx, _arr(2))  # 2 (visited) removed by the core: the hand moves on to 3
    assert p.evict(ctx, 1) == [3]


def test_lfu_lowest_bucket_emptied_by_the_core():
    ctx = _ctx()
    p = _loaded(LFU, ctx)  # frequencies: 5 -> 3, 2 -> 3, 7 -> 2, 0 -> 2, the rest 1
    p.removed(ctx, _arr(1, 3, 4, 6))  # every frequency-1 object leaves without an eviction
    assert p.evict(ctx, 1) == [7]  # 7 reached frequency 2 before 0
    assert p.evict(ctx, 4) == [7, 0, 2, 5]
