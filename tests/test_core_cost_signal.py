"""lru_note_cost: the anon/file cost signal (reference §1.8), scalar and batched."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from reclaim_ext.core.lru import Lruvec
from reclaim_ext.core.vmscan import lru_note_cost, lru_note_cost_batch
from reclaim_ext.machine.node import Memcg, Node, compute_watermarks


def _lruvec(sizes, anon_cost=0, file_cost=0):
    node = Node(nid=0, managed=1 << 20, wmark=compute_watermarks(1 << 20, 16384, 10))
    lv = Lruvec(Memcg(id=0), node, 2, [0])
    lv.nr = list(sizes)
    lv.anon_cost, lv.file_cost = anon_cost, file_cost
    return lv


def test_cost_is_io_times_cluster_plus_rotated():
    lv = _lruvec([1000, 1000, 1000, 1000])
    lru_note_cost(lv, True, 2, 5)
    assert (lv.anon_cost, lv.file_cost) == (0, 2 * 32 + 5)


def test_costs_halve_above_a_quarter_of_the_lru_pages():
    lv = _lruvec([100, 0, 100, 0], anon_cost=30, file_cost=10)  # 200 pages: limit 50
    lru_note_cost(lv, True, 0, 11)                               # 30 + 21 = 51 > 50
    assert (lv.anon_cost, lv.file_cost) == (15, 10)


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 3000), min_size=4, max_size=4),
    costs=st.tuples(st.integers(0, 5000), st.integers(0, 5000)),
    events=st.lists(st.booleans(), min_size=1, max_size=200),
)
def test_batched_cost_equals_one_call_per_event(sizes, costs, events):
    a, b = _lruvec(sizes, *costs), _lruvec(sizes, *costs)
    for j, file in enumerate(events):
        lru_note_cost(a, file, 1, 0, pending=j)
    lru_note_cost_batch(b, np.array(events), 1, np.arange(len(events)))
    assert (a.anon_cost, a.file_cost) == (b.anon_cost, b.file_cost)
