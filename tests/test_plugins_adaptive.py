"""Behaviour of the ARC, 2Q and S3-FIFO plug-ins on tiny hand-made traces in plain-cache mode.

Each trace is a list of object ids; the core names objects by handles 0, 1, 2, ... in order of
first appearance, and `Run` translates the plug-in's lists back to object ids. (That the
plug-ins give libcachesim's exact miss counts on real traces is tests/test_plugins_reference.py.)
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from reclaim_ext.ext import Context
from reclaim_ext.ext.cache import run_cache
from reclaim_ext.plugins.arc import ARC
from reclaim_ext.plugins.s3fifo import S3FIFO
from reclaim_ext.plugins.twoq import TwoQ
from reclaim_ext.trace import ArrayTrace, Kind
from reclaim_ext.trace.record import make_records


class Run:
    """Replay `ids` (object ids) through `policy` at `capacity`; look at the policy's state by
    object id afterwards."""

    def __init__(self, policy, ids, capacity):
        rec = make_records(len(ids))
        rec["kind"] = Kind.FILE_FD
        rec["file"] = 0
        rec["page"] = ids
        self.policy = policy
        self.res = run_cache(ArrayTrace("hand-made", rec), policy, capacity, check=True)
        assert self.res["exit"]["kind"] == "DONE", self.res["exit"]
        assert not any(self.res["events"].values()), self.res["events"]
        self.obj = list(dict.fromkeys(ids))           # handle -> object id
        self.handle = {o: h for h, o in enumerate(self.obj)}

    def objs(self, q):
        """An IndexedList's object ids, head (newest / most recent) first."""
        return [self.obj[h] for h in q.from_head()]

    def ghosts(self, table, candidates):
        """Which of `candidates` (object ids) a GhostTable remembers."""
        return {o for o in candidates if o in self.handle and self.handle[o] in table}


# ---- ARC ---------------------------------------------------------------------------------------

def test_arc_new_objects_enter_t1_and_a_hit_moves_them_to_t2():
    r = Run(ARC(), [1, 2, 3, 1, 2, 1], 4)
    a = r.policy
    assert r.objs(a.t1) == [3]
    assert r.objs(a.t2) == [1, 2]                     # T2 is an LRU: the last hit at its head
    assert not a.b1 and not a.b2 and a.p == 0.0
    assert (r.res["misses"], r.res["hits"]) == (3, 3)


def test_arc_adapts_p_up_on_a_b1_hit_and_down_on_a_b2_hit():
    # capacity 4:  1 2 3 4 | 4 hit -> T2 | 5: REPLACE(p=0) sends T1's LRU 1 to B1
    # 1: B1 hit, p = 0 + max(|B2|/|B1|, 1) = 1, T1's LRU 2 goes to B1, 1 enters T2
    # 3 hit -> T2 | 6: |T1| = 1 is not > p = 1, so T2's LRU 4 goes to B2
    # 4: B2 hit, p = 1 - max(|B1|/|B2|, 1) = 0, T1's LRU 5 goes to B1, 4 enters T2
    ids = [1, 2, 3, 4, 4, 5, 1, 3, 6, 4]
    r = Run(ARC(), ids[:7], 4)
    a = r.policy
    assert a.p == 1.0
    assert r.objs(a.t2) == [1, 4] and r.objs(a.t1) == [5, 3]
    assert r.objs(a.b1) == [2] and not a.b2

    r = Run(ARC(), ids[:9], 4)
    a = r.policy
    assert a.p == 1.0
    assert r.objs(a.t2) == [3, 1] and r.objs(a.t1) == [6, 5]
    assert r.objs(a.b2) == [4] and r.objs(a.b1) == [2]

    r = Run(ARC(), ids, 4)
    a = r.policy
    assert a.p == 0.0
    assert r.objs(a.t2) == [4, 3, 1] and r.objs(a.t1) == [6]
    assert r.objs(a.b1) == [5, 2] and not a.b2
    assert (r.res["misses"], r.res["hits"]) == (8, 2)


def test_arc_t1_holding_the_whole_cache_evicts_without_a_ghost():
    # capacity 2, no hit: |T1| + |B1| reaches C with B1 empty, so T1's LRU is simply dropped
    r = Run(ARC(), [1, 2, 3, 1], 2)
    a = r.policy
    assert not a.b1 and not a.b2 and not a.t2
    assert r.objs(a.t1) == [1, 3]                     # 1 came back as a new object (T1, not T2)
    assert r.res["misses"] == 4


def test_arc_victim_on_a_ghost_hit_follows_the_adapted_p():
    # needs ctx.incoming: evict() must know the missed object is a ghost before REPLACE runs
    # capacity 2: 1 2 | 1 hit -> T2 | 3: T1's LRU 2 to B1 | 2: B1 hit, p = 1 before REPLACE, and
    # |T1| = 1 is not > 1, so the victim is T2's LRU 1 (with the old p = 0 it would be T1's 3)
    r = Run(ARC(), [1, 2, 1, 3, 2], 2)
    a = r.policy
    assert a.p == 1.0
    assert r.objs(a.t1) == [3] and r.objs(a.t2) == [2]
    assert r.objs(a.b2) == [1] and not a.b1


# ---- 2Q ----------------------------------------------------------------------------------------

def test_2q_admits_to_a1in_and_promotes_to_am_on_an_a1out_hit():
    # capacity 4: A1in share int(4 * 0.25) = 1, A1out int(4 * 0.5) = 2 ghosts, Am 3
    r = Run(TwoQ(), [1, 2, 3, 4, 5, 6, 1], 4)
    q = r.policy
    assert (q.ain_size, q.aout.capacity, q.am_size) == (1, 2, 3)
    # 5 and 6 pushed 1 and 2 from A1in (above its share) to A1out; 1 came back from A1out to Am,
    # pushing 3 out of A1in
    assert r.objs(q.am) == [1]
    assert r.objs(q.ain) == [6, 5, 4]
    assert r.ghosts(q.aout, range(10)) == {2, 3}


def test_2q_a1in_hits_change_nothing_am_is_lru_and_a1out_is_a_bounded_fifo():
    ids = [1, 2, 3, 4, 5, 6, 1, 2, 3]     # A1in [6], Am [3 2 1], A1out {4, 5}
    ids += [1]                            # Am hit: 1 to Am's head
    ids += [7]                            # A1in at its share: Am's LRU 2 leaves, forgotten
    ids += [6]                            # A1in hit: nothing moves
    ids += [8]                            # A1in above its share: its oldest, 6, goes to A1out,
    r = Run(TwoQ(), ids, 4)               # and the full A1out forgets 4
    q = r.policy
    assert r.objs(q.am) == [1, 3]
    assert r.objs(q.ain) == [8, 7]
    assert r.ghosts(q.aout, range(10)) == {5, 6}
    assert r.res["hits"] == 2


def test_2q_incoming_object_leaves_a1out_before_the_victim_enters_it():
    # as above, A1out = {5, 6} is full and 5 is its oldest entry; the miss on 5 evicts A1in's 7
    # into A1out. libCacheSim looks 5 up (and drops its entry) first, so 5 is an A1out hit.
    ids = [1, 2, 3, 4, 5, 6, 1, 2, 3, 1, 7, 6, 8, 5]
    r = Run(TwoQ(), ids, 4)
    q = r.policy
    assert r.objs(q.am) == [5, 1, 3]
    assert r.objs(q.ain) == [8]
    assert r.ghosts(q.aout, range(10)) == {6, 7}


# ---- S3-FIFO -----------------------------------------------------------------------------------

def test_s3fifo_small_queue_ghost_and_main_queue():
    # capacity 20: small int(20 * 0.1) = 2, main 18, ghost int(20 * 0.9) = 18 entries
    ids = list(range(1, 21))              # before any eviction: 1 2 fill small, 3..20 go to main
    r = Run(S3FIFO(), ids, 20)
    s = r.policy
    assert (s.small_size, s.main_size, s.ghost.capacity) == (2, 18, 18)
    assert r.objs(s.small) == [2, 1] and len(s.main) == 18

    ids += [21]                           # small's oldest, 1, was not hit again: to the ghost
    ids += [1]                            # ghost hit: 1 enters main; small's 2 to the ghost
    r = Run(S3FIFO(), ids, 20)
    s = r.policy
    assert r.objs(s.small) == [21]
    assert r.objs(s.main)[0] == 1 and len(s.main) == 19
    assert r.ghosts(s.ghost, range(30)) == {2}

    ids += [22]                           # main is above its 18: its oldest, 3, unused, leaves
    r = Run(S3FIFO(), ids, 20)
    s = r.policy
    assert 3 not in r.objs(s.main) and r.ghosts(s.ghost, [3]) == set()
    assert r.objs(s.small) == [22, 21] and len(s.main) == 18


def test_s3fifo_promotes_on_two_hits_in_small_and_main_is_a_2bit_clock():
    ids = list(range(1, 21)) + [21, 1, 22]   # state of the test above: small [22 21], main 4..20 1
    ids += [21, 21, 22]                   # 21 hit twice, 22 once
    ids += [23]                           # small's 21 (2 hits) moves to main; 22 (1 hit) is evicted
    r = Run(S3FIFO(), ids, 20)
    s = r.policy
    assert r.objs(s.small) == [23]
    assert r.objs(s.main)[0] == 21 and s.freq[r.handle[21]] == 0
    assert r.ghosts(s.ghost, range(30)) == {2, 22}

    ids += [4, 5, 5, 5, 5]                # main's two oldest: 4 hit once, 5 hit four times
    ids += [24]                           # main is above its share: 4 (freq 1) and 5 (freq 4)
    r = Run(S3FIFO(), ids, 20)            # go round again with freq 0 and min(4, 3) - 1 = 2;
    s = r.policy                          # 6, never hit, is evicted (no ghost for main)
    main = r.objs(s.main)
    assert main[:2] == [5, 4] and 6 not in main
    assert s.freq[r.handle[4]] == 0 and s.freq[r.handle[5]] == 2
    assert r.ghosts(s.ghost, [6]) == set()


def test_s3fifo_incoming_object_leaves_the_ghost_before_the_victim_enters_it():
    # a 2-entry ghost: after 21 and 22 the ghost holds {1, 2}, 1 the oldest; the miss on 1 evicts
    # small's 21 into the full ghost. libCacheSim looks 1 up (and drops it) first: a ghost hit.
    r = Run(S3FIFO(ghost_size_ratio=0.1), list(range(1, 21)) + [21, 22, 1], 20)
    s = r.policy
    assert s.ghost.capacity == 2
    assert r.objs(s.main)[0] == 1
    assert r.ghosts(s.ghost, range(30)) == {2, 21}


# ---- batches (the reclaim core asks for up to 32 victims at once) ------------------------------

@pytest.mark.parametrize("make", [ARC, TwoQ, S3FIFO], ids=["arc", "2q", "s3fifo"])
def test_a_batch_is_what_successive_single_evictions_would_take(make):
    rng = np.random.default_rng(3)
    ids = [int(x) for x in rng.zipf(1.3, 3000) % 200]
    r = Run(make(), ids, 40)
    ctx = Context(capacity=40, rng=np.random.default_rng(0))
    batch_policy, single_policy = r.policy, copy.deepcopy(r.policy)
    batch = batch_policy.evict(ctx, 12)
    singles = []
    for _ in range(12):
        (v,) = single_policy.evict(ctx, 1)
        single_policy.removed(ctx, np.array([v], dtype=np.int64))
        singles.append(v)
    assert batch == singles and len(set(batch)) == 12
