"""MGLRU's per-batch rules compiled: each against the numpy statement it replaced, on random
folio states (the oracles below are those statements, kept here)."""

from __future__ import annotations

import numpy as np
import pytest

from reclaim_ext.core.ops import FOLIOREF_ACTIVATE, FOLIOREF_KEEP, FOLIOREF_RECLAIM
from reclaim_ext.machine.folio import LRU_ANON, LRU_FILE, NO_LIST, PG_active, PG_referenced, PG_workingset
from reclaim_ext.policies.mglru import MAX_NR_GENS, folio_update_gen, set_refs_verdicts

U16 = np.uint16


def folios(rng, n=40):
    """Random flags (PG_referenced, PG_workingset, PG_active), LRU_REFS, types and logical lists
    (a quarter isolated)."""
    bits = rng.integers(0, 2, (n, 3)) * np.array([PG_referenced, PG_workingset, PG_active])
    flags = bits.sum(axis=1).astype(U16)
    lru_refs = rng.integers(0, 4, n).astype(np.uint8)
    ftype = rng.integers(0, 2, n).astype(np.uint8)
    lru_gen = (ftype * MAX_NR_GENS + rng.integers(0, MAX_NR_GENS, n)).astype(np.int8)
    lru_gen[rng.random(n) < 0.25] = NO_LIST
    return flags, lru_refs, ftype, lru_gen


def update_gen_oracle(ids, gen, flags, lru_refs, lru_gen, ftype, nl, pre):
    """The numpy _update_gen (lock-free): returns the promoted folios per type."""
    uniq, k = np.unique(ids, return_counts=True)
    if pre:
        on = lru_gen[uniq] != NO_LIST
        flags[uniq[~on]] |= U16(PG_referenced)
        p = uniq[on]
        flags[p] &= ~U16(PG_referenced) & ~U16(PG_workingset)
        lru_refs[p] = 0
    else:
        fl = flags[uniq]
        seen = (fl & (PG_referenced | PG_workingset)) != 0
        promote = seen | (k >= 2)
        first = uniq[~seen]
        flags[first] |= U16(PG_referenced)
        lru_refs[first] = 0
        p = uniq[promote & (lru_gen[uniq] != NO_LIST)]
        flags[p] = (flags[p] & ~U16(PG_referenced)) | U16(PG_workingset)
        lru_refs[p] = 0
    out = []
    t = ftype[p].astype(np.int64)
    for typ in (LRU_ANON, LRU_FILE):
        sel = p[t == typ]
        sel = sel[lru_gen[sel] != typ * MAX_NR_GENS + gen]
        for g in sel.tolist():
            nl[lru_gen[g]] -= 1
        lru_gen[sel] = typ * MAX_NR_GENS + gen
        nl[typ * MAX_NR_GENS + gen] += len(sel)
        out.append(sel)
    return out


@pytest.mark.parametrize("pre", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_folio_update_gen_is_the_numpy_rule(pre, seed):
    rng = np.random.default_rng(seed)
    state = folios(rng)
    ids = rng.integers(0, len(state[0]), 60).astype(np.int64)  # a folio may be young through several PTEs
    gen = int(rng.integers(0, MAX_NR_GENS))
    a = [x.copy() for x in state]
    b = [x.copy() for x in state]
    nla = np.zeros(2 * MAX_NR_GENS, dtype=np.int64)
    nlb = nla.copy()
    flags, lru_refs, ftype, lru_gen = a
    want = update_gen_oracle(ids, gen, flags, lru_refs, lru_gen, ftype, nla, pre)
    flags, lru_refs, ftype, lru_gen = b
    out = np.empty(len(ids), dtype=np.int64)
    n, nanon = folio_update_gen(ids, gen, flags, lru_refs, lru_gen, ftype, nlb, True, pre, out)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(nla, nlb)
    assert (n, nanon) == (len(want[0]) + len(want[1]), len(want[0]))
    assert sorted(out[:n].tolist()) == sorted(np.concatenate(want).tolist())


def test_folio_update_gen_without_lockfree_only_lists_the_folios():
    rng = np.random.default_rng(3)
    flags, lru_refs, ftype, lru_gen = folios(rng)
    ids = rng.integers(0, len(flags), 60).astype(np.int64)
    before = lru_gen.copy()
    nl = np.zeros(2 * MAX_NR_GENS, dtype=np.int64)
    want = update_gen_oracle(ids, 1, flags.copy(), lru_refs.copy(), lru_gen.copy(), ftype, nl.copy(), False)
    out = np.empty(len(ids), dtype=np.int64)
    n, _ = folio_update_gen(ids, 1, flags, lru_refs, lru_gen, ftype, nl, False, False, out)
    np.testing.assert_array_equal(lru_gen, before)
    assert not nl.any()
    assert np.unique(out[:n]).tolist() == sorted(np.concatenate(want).tolist())


def set_refs_oracle(ids, young, flags, lru_refs):
    """The numpy references verdicts (lru_gen_set_refs over the young folios)."""
    v = np.full(len(ids), FOLIOREF_RECLAIM, dtype=np.int8)
    y = young > 0
    yi = ids[y]
    seen = (flags[yi] & (PG_referenced | PG_workingset)) != 0
    flags[yi[~seen]] |= U16(PG_referenced)
    lru_refs[yi[~seen]] = 0  # set_mask_bits(LRU_REFS_MASK, PG_referenced)
    s = yi[seen]
    flags[s] = (flags[s] & ~U16(PG_referenced)) | U16(PG_workingset)
    lru_refs[s] = 0
    v[y] = np.where(seen, FOLIOREF_ACTIVATE, FOLIOREF_KEEP)
    return v


@pytest.mark.parametrize("seed", range(4))
def test_set_refs_verdicts_is_the_numpy_rule(seed):
    rng = np.random.default_rng(seed)
    flags, lru_refs, _, _ = folios(rng)
    ids = rng.permutation(len(flags))[:32].astype(np.int64)
    young = rng.integers(0, 3, len(ids)).astype(np.int32)
    fa, ra = flags.copy(), lru_refs.copy()
    want = set_refs_oracle(ids, young, fa, ra)
    got = set_refs_verdicts(ids, young, flags, lru_refs)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(flags, fa)
    np.testing.assert_array_equal(lru_refs, ra)


# ---- list insertions: lru_gen_add_folio and evict_folios' putback, on a small machine -------------


def isolated_batch(seed, pre=False):
    """A machine with anon (mapped) and file (read) folios over three generations, 24 of them
    isolated as shrink_folio_list leaves them, with random PG_active, PG_referenced,
    PG_workingset, PG_dirty, PG_writeback and unmapped anon."""
    from mglru_helpers import age, new_sim, recs, replay, state

    from reclaim_ext.core import lockfree
    from reclaim_ext.core.engine import SimConfig, Simulator
    from reclaim_ext.machine.folio import PG_dirty, PG_writeback
    from reclaim_ext.policies import get_policy
    from reclaim_ext.trace import Kind

    sim = new_sim(memory=4096)
    if pre:
        sim = Simulator(SimConfig(memory_pages=4096, swap_pages=1024, mode="exact", check=True),
                        get_policy("mglru-6.12"))
    replay(sim, recs(Kind.ANON, range(40)), recs(Kind.FILE_FD, range(40)))
    if not pre:
        age(sim)
    replay(sim, recs(Kind.FILE_FD, range(40, 60)))
    ops, lv, lg = state(sim)
    rng = np.random.default_rng(seed)
    f = sim.folios
    ids = rng.permutation(np.flatnonzero(f.lru[: f.count] != NO_LIST))[:24].astype(np.int64)
    lv.delete(f, ids)
    lockfree.take(sim, lv, ids)
    bits = np.array([PG_active, PG_referenced, PG_workingset, PG_dirty, PG_writeback])
    extra = (rng.random((len(ids), len(bits))) < 0.3) * bits
    f.flags[ids] = (f.flags[ids] & ~U16(bits.sum())) | extra.sum(axis=1).astype(U16)
    f.lru_refs[ids] = rng.integers(0, 4, len(ids))
    unmap = ids[rng.random(len(ids)) < 0.5]
    sim.ptes.present[f.pte_head[unmap[f.pte_head[unmap] >= 0]]] = False
    return sim, ops, lv, lg, ids


def add_oracle(sim, lv, lg, ids, pre):
    """The numpy _add: folio_seq over arrays, then core.lockfree.add."""
    from reclaim_ext.core import lockfree
    from reclaim_ext.policies.mglru import folio_seqs

    f = sim.folios
    t = f.type[ids].astype(np.int64)
    fl = f.flags[ids]
    seq = folio_seqs(lg.max_seq, lg.min_seq[LRU_ANON], lg.min_seq[LRU_FILE], t, fl, False, pre)
    if pre:
        act = (fl & PG_active) != 0
        fl = np.where(act, fl & ~U16(PG_referenced), fl)
        f.lru_refs[ids[act]] = 0
    f.flags[ids] = fl & ~U16(PG_active)
    lockfree.add(sim, lv, ids, t * MAX_NR_GENS + seq % MAX_NR_GENS)


def putback_oracle(sim, lv, lg, keep, skip_retry):
    """The numpy survivors of evict_folios (after the rework)."""
    from reclaim_ext.core.rmap import folio_mapped
    from reclaim_ext.machine.folio import PG_dirty, PG_writeback
    from reclaim_ext.policies.mglru import folio_seqs

    f = sim.folios
    retry = np.zeros(len(keep), dtype=bool)
    if not skip_retry:
        retry = ((f.flags[keep] & (PG_active | PG_dirty | PG_writeback)) == 0) & ~folio_mapped(sim, keep)
    put = keep[~retry]
    tp = f.type[put].astype(np.int64)
    oldest = folio_seqs(lg.max_seq, lg.min_seq[LRU_ANON], lg.min_seq[LRU_FILE], tp, f.flags[put], False, False) == \
        np.where(tp == LRU_FILE, lg.min_seq[LRU_FILE], lg.min_seq[LRU_ANON])
    rej = put[oldest]
    f.flags[rej] = (f.flags[rej] & ~U16(PG_referenced)) | U16(PG_active)
    f.lru_refs[rej] = 0
    if len(put):
        sim.cost["lru_lock_ops"] += 1
        add_oracle(sim, lv, lg, put, False)
    return keep[retry]


def lists_state(sim, lv):
    f = sim.folios
    n = f.count
    return ([fl.valid_ids(f).tolist() for fl in lv.lists], lv.nr[:], lv.nr_logical[:], f.flags[:n].tolist(),
            f.lru_refs[:n].tolist(), f.lru_gen[:n].tolist(), f.lru[:n].tolist(), f.stamp[:n].tolist(),
            sim.cost["lru_lock_ops"])


def compiled_and_oracle(seed, pre, compiled, oracle):
    """(what each returns, the lists' state, pgactivate) after `compiled` and after `oracle`,
    each called as f(sim, ops, lruvec, lrugen, ids) on a fresh isolated_batch machine."""
    res = []
    for fn in (compiled, oracle):
        sim, ops, lv, lg, ids = isolated_batch(seed, pre)
        ret = fn(sim, ops, lv, lg, ids)
        res.append((None if ret is None else ret.tolist(), lists_state(sim, lv), sim.vm["pgactivate"]))
    return res


@pytest.mark.parametrize("pre", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_lru_gen_add_folios_is_the_numpy_rule(pre, seed):
    got, want = compiled_and_oracle(seed, pre, lambda sim, ops, lv, lg, ids: ops._add(sim, lv, ids),
                                    lambda sim, ops, lv, lg, ids: add_oracle(sim, lv, lg, ids, pre))
    assert got == want


def putback_pre_oracle(sim, lv, lg, keep, skip_retry):
    """The numpy survivors of evict_folios before the rework."""
    from reclaim_ext.core.rmap import folio_mapped
    from reclaim_ext.machine.folio import PG_dirty, PG_reclaim, PG_writeback

    f = sim.folios
    fl = f.flags[keep]
    waiting = ((fl & PG_reclaim) != 0) & ((fl & (PG_dirty | PG_writeback)) != 0)
    rej = ~waiting & (skip_retry | ((fl & (PG_active | PG_referenced | PG_dirty | PG_writeback)) != 0)
                      | folio_mapped(sim, keep))
    retry = ~waiting & ~rej
    w = keep[waiting]
    f.flags[w] |= np.where((f.flags[w] & PG_workingset) != 0, U16(PG_referenced), U16(0))
    r = keep[rej]
    f.flags[r] = (f.flags[r] & ~U16(PG_referenced) & ~U16(PG_workingset)) | U16(PG_active)
    f.lru_refs[r] = 0
    put = keep[~retry]
    if len(put):
        sim.cost["lru_lock_ops"] += 1
        add_oracle(sim, lv, lg, put, True)
    return keep[retry]


@pytest.mark.parametrize("pre", [False, True])
@pytest.mark.parametrize("skip_retry", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_evict_putback_is_the_numpy_rule(pre, skip_retry, seed):
    def reclaiming(sim, ops, lv, lg, ids):  # some folios marked PG_reclaim, the first under writeback
        from reclaim_ext.machine.folio import PG_reclaim, PG_writeback

        f = sim.folios
        f.flags[ids[::3]] |= U16(PG_reclaim)
        f.flags[ids[:3]] = (f.flags[ids[:3]] & ~U16(PG_referenced)) | U16(PG_reclaim | PG_writeback | PG_workingset)

    def compiled(sim, ops, lv, lg, ids):
        reclaiming(sim, ops, lv, lg, ids)
        return ops._putback(sim, lv, ids, skip_retry)

    def oracle(sim, ops, lv, lg, ids):
        reclaiming(sim, ops, lv, lg, ids)
        return (putback_pre_oracle if pre else putback_oracle)(sim, lv, lg, ids, skip_retry)

    got, want = compiled_and_oracle(seed, pre, compiled, oracle)
    assert got == want
    assert skip_retry or got[0]  # some folios are retried


def activate_oracle(sim, lv, lg, ids, pre):
    """The per-folio _activate / _activate_pre (lookaround without a walk struct)."""
    from reclaim_ext.core import lockfree

    f = sim.folios
    new = lg.max_seq % MAX_NR_GENS
    for i in ids.tolist():
        one = np.array([i], dtype=np.int64)
        if pre:
            if f.lru_gen[i] == NO_LIST:
                f.flags[i] |= U16(PG_referenced)
                continue
            if f.lru_gen[i] % MAX_NR_GENS == new or f.lru[i] == NO_LIST:
                continue
            f.flags[i] &= ~U16(PG_referenced) & ~U16(PG_workingset)
            f.lru_refs[i] = 0
        else:
            fl = f.flags[i]
            if not fl & (PG_referenced | PG_workingset):
                f.flags[i] |= U16(PG_referenced)
                f.lru_refs[i] = 0
                continue
            f.flags[i] = (fl & ~U16(PG_referenced)) | U16(PG_workingset)
            f.lru_refs[i] = 0
            if f.lru[i] == NO_LIST or f.lru_gen[i] % MAX_NR_GENS == new:  # old_gen != new_gen
                continue
        lockfree.take(sim, lv, one)
        lv.delete(f, one)
        f.flags[i] |= U16(PG_active)
        add_oracle(sim, lv, lg, one, pre)
        sim.vm["pgactivate"] += 1
        sim.cost["lru_lock_ops"] += 1


@pytest.mark.parametrize("pre", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_look_around_activate_is_the_per_folio_rule(pre, seed):
    def young(sim):  # the folios of young PTEs: any folio, isolated or not, some more than once
        return np.random.default_rng(seed).integers(0, sim.folios.count, 50).astype(np.int64)

    got, want = compiled_and_oracle(seed, pre, lambda sim, ops, lv, lg, ids: ops._activate(sim, lv, young(sim)),
                                    lambda sim, ops, lv, lg, ids: activate_oracle(sim, lv, lg, young(sim), pre))
    assert got == want
    assert got[2]  # some were activated
