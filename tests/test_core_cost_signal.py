"""lru_note_cost: the anon/file cost signal (reference §1.8)."""

from reclaim_ext.core.lru import Lruvec
from reclaim_ext.core.vmscan import lru_note_cost
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
