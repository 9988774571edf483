"""core.batch: first occurrences and membership (compiled), against plain references."""

from __future__ import annotations

import numpy as np
import pytest

from reclaim_ext.core.batch import first_occurrence, first_occurrence_masked, is_member


def _reference(ids, mask):
    seen, out = set(), []
    for g, m in zip(ids.tolist(), mask.tolist()):
        out.append(bool(m) and g not in seen)
        if m:
            seen.add(g)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_is_member_matches_numpy_isin(seed):
    rng = np.random.default_rng(seed)
    for _ in range(50):
        ids = rng.integers(0, 60, rng.integers(0, 40))
        of = rng.integers(0, 60, rng.integers(0, 40))
        assert is_member(ids, of, 60).tolist() == np.isin(ids, of).tolist()
        assert is_member(ids, of, 60).tolist() == np.isin(ids, of).tolist()  # the scratch is left clean


def test_is_member_refuses_ids_outside_its_size():
    with pytest.raises(IndexError, match="outside 0..9"):
        is_member(np.array([10]), np.array([1]), 10)
    with pytest.raises(IndexError, match="outside 0..9"):
        is_member(np.array([1]), np.array([-1]), 10)
    assert is_member(np.array([1, 2]), np.array([2]), 10).tolist() == [False, True]


@pytest.mark.parametrize("seed", range(5))
def test_first_occurrence_matches_a_reference(seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 50, 400)
    mask = rng.random(400) < 0.6
    assert first_occurrence(ids, 50).tolist() == _reference(ids, np.ones(400, bool))
    assert first_occurrence_masked(ids, mask, 50).tolist() == _reference(ids, mask)
    # the scratch is left clean: a second call sees nothing from the first
    assert first_occurrence_masked(ids, mask, 50).tolist() == _reference(ids, mask)


def test_ids_outside_the_range_are_an_error():
    with pytest.raises(IndexError):
        first_occurrence(np.array([0, 5]), 5)
    with pytest.raises(IndexError):
        first_occurrence(np.array([-1]), 5)
    assert first_occurrence(np.zeros(0, np.int64), 5).tolist() == []


@pytest.mark.parametrize("ties", [False, True])
def test_score_table_lowest_orders_ties_by_slot(ties):
    """ScoreTable.lowest: lowest scores first, equal scores in slot order (the order handles
    were added), whether it sorts the whole table or a partition of it."""
    from reclaim_ext.ext import ScoreTable

    rng = np.random.default_rng(3)
    handles = rng.permutation(5000)
    scores = rng.integers(0, 40, 5000).astype(float) if ties else rng.permutation(5000).astype(float)
    t = ScoreTable()
    t.set(handles, scores)
    ref = sorted(range(5000), key=lambda k: (scores[k], k))  # slot k holds the k-th handle added
    for n in (10, 700, 2600, 5000):
        assert t.lowest(n).tolist() == [int(handles[k]) for k in ref[:n]]
