"""The access path, compiled: what one trace record does to the machine (module docstring of
core.engine has the semantics, per kind). Both drivers run it; they differ only in how the
policy hears of the events (one scalar hook call each, or one batched call per stretch).

`run_accesses` replays records from `start` in order until one needs the allocator's or the
memcg charge's slow path (it stops *before* that access, having set nothing for it but the
mm's used bit). It fills the event arrays the engine hands to the policy (AccessEvents): an ADD
for each allocation (with the shadow entry it found and the free swap slots at that moment) and an ACCESS
for each read() that calls folio_mark_accessed. Counters go to small arrays the engine adds to
its vmstat and cost dicts (indices below); memcg usage and peak are updated in place.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..jit import PREFETCH_AHEAD, noref, prefetch
from ..machine.folio import LRU_ANON, LRU_FILE, PG_dirty, PG_mlocked, PG_resident, PG_swapcache
from ..trace.record import Kind
from ..machine.index import hash_get_or_add
from ..machine.node import SWP_IN, SWP_SYNC, swap_used_add
from .memcontrol import MEMCG_CHARGE_BATCH

_FILE_FD = int(Kind.FILE_FD)

# vmstat counters (index into `vmc`)
VM_NAMES = ("pgfault", "pgmajfault", "pgalloc_normal", "pswpin", "pgpgin", "workingset_refault_anon",
            "workingset_refault_file")
PGFAULT, PGMAJFAULT, PGALLOC, PSWPIN, PGPGIN, REFAULT_ANON, REFAULT_FILE = range(len(VM_NAMES))
# per-memcg memory.stat events (index into the columns of `mstat`): the task's memcg
MEMCG_NAMES = ("pgfault", "pgmajfault", "workingset_refault_anon", "workingset_refault_file")
M_PGFAULT, M_PGMAJFAULT, M_REFAULT_ANON, M_REFAULT_FILE = range(len(MEMCG_NAMES))
# cost model counters (index into `cost`)
COST_NAMES = ("hits", "major_faults", "minor_faults", "swap_ins", "file_reads")
HITS, MAJOR, MINOR, SWAP_INS, FILE_READS = range(len(COST_NAMES))
# machine scalars (index into `s`), read and written back by the engine around a call: node n's
# free pages are s[FREE + n]
SWAP_USED, SWAP_TOTAL, NR_FILE_DIRTY, MISSES, FREE = range(5)
# per-node allocation counters (columns of `ncnt`, one row per node): zone_statistics' NUMA events
NODE_NAMES = ("pgalloc_normal", "numa_hit", "numa_miss", "numa_foreign")
N_PGALLOC, N_NUMA_HIT, N_NUMA_MISS, N_NUMA_FOREIGN = range(len(NODE_NAMES))
N_HITS = len(NODE_NAMES)  # and the accesses that found their page on the node (several nodes only)
NODE_COLUMNS = NODE_NAMES + ("hits",)
# why run_accesses stopped
DONE, STOP_WMARK, STOP_MEMCG, STOP_HIGH, STOP_NUMA = 0, 1, 2, 3, 4
# A task handles its memory.high overage after charging MEMCG_CHARGE_BATCH pages above it: the
# kernel sees the overage once per per-CPU charge-stock refill of that many pages (the model has
# no stock).


@njit(cache=True)
def alloc_budget(free, low, min_wmark, kswapd_failures, max_retries):
    """Order-0 allocations that can happen before the next one enters the slow path: down to the
    low watermark, or to min once kswapd has failed max_retries times (it is not woken then)."""
    if free > low:
        return free - low
    if kswapd_failures >= max_retries and free > min_wmark:
        return free - min_wmark
    return 0


@noref
def charged_over_high(mc, usage, mhigh, mparent):
    """try_charge_memcg after a successful charge: whether the memcg or an ancestor is now above
    its memory.high (the task then owes reclaim on its return to user space)."""
    m = mc
    while m >= 0:
        if usage[m] > mhigh[m]:
            return True
        m = mparent[m]
    return False


@noref
def over_limit(mc, n, usage, mmax, mparent):
    """page_counter_try_charge: the lowest memcg from `mc` up whose memory.max a charge of n
    pages would exceed, or -1."""
    m = mc
    while m >= 0:
        if usage[m] + n > mmax[m]:
            return m
        m = mparent[m]
    return -1


@noref
def swap_slot_free(g, swap_memcg, swap_usage, mparent, swap_type, sw):
    """swap_free of the slot holding page g's data: mem_cgroup_uncharge_swap (the memcg charged
    when the slot was taken and its ancestors; the root's usage is not counted) and the slot's
    device (swap_type[g], a row of `sw`: Swap.table). Returns the node pages zram's pool gives
    back (as swap_used_add, negative or 0); the caller counts the slot in its free total."""
    m = swap_memcg[g]
    while m > 0:
        swap_usage[m] -= 1
        m = mparent[m]
    swap_memcg[g] = -1
    d = swap_type[g]
    swap_type[g] = -1
    return swap_used_add(sw, d, -1)


@noref
def mem_cgroup_swap_full(mc, swap_used, swap_total, swap_usage, swap_max, mparent):
    """mem_cgroup_swap_full: vm_swap_full (fewer than half the slots free), or memcg `mc` or an
    ancestor below the root using at least half its memory.swap.max (cgroup v2)."""
    if (swap_total - swap_used) * 2 < swap_total:
        return True
    m = mc
    while m > 0:
        if swap_usage[m] * 2 >= swap_max[m]:
            return True
        m = mparent[m]
    return False


@noref
def should_try_to_free_swap(g, mc, write, flags, s, swap_usage, swap_max, mparent):
    """should_try_to_free_swap, for a fault (do_swap_page) that maps folio g from the swap cache,
    charged to memcg `mc`: its slot is freed (folio_free_swap) when the folio is mlocked, when
    mem_cgroup_swap_full, or on a write fault (the swap cache's reference is then the only
    other one: the model has no KSM and no other page references)."""
    return write or (flags[g] & PG_mlocked) != 0 or mem_cgroup_swap_full(mc, s[SWAP_USED], s[SWAP_TOTAL], swap_usage,
                                                                         swap_max, mparent)


@noref
def zonelist_row(zonelists, pid_zonelist, pid, g, ftype):
    """The row of `zonelists` (machine.numa.zonelists) an allocation of folio g by task `pid`
    uses: the task's own (pid_zonelist[pid, 0]), or for an interleaving task (a row past the 2N
    zonelists, holding its nodes) the zonelist of one of its nodes: for page cache, which has no
    VMA, the next node after the task's last (interleave_nodes: pid_zonelist[pid, 1] counts the
    task's page-cache allocations, il_prev); for anon memory by folio (interleave_nid by the
    VMA offset; here the folio's number, first-touch order)."""
    row = pid_zonelist[pid, 0]
    nn = zonelists.shape[1]
    if row < 2 * nn:
        return row
    il = zonelists[row]
    m = 0
    while m < nn and il[m] >= 0:
        m += 1
    return il[(pid_zonelist[pid, 1] if ftype[g] == LRU_FILE else g) % m]


@noref
def alloc_node(zonelist, nalloc_n, budget):
    """get_page_from_freelist's first pass (ALLOC_WMARK_LOW) for order 0: the first node of the
    task's zonelist (`zonelist`: node ids by distance, -1 padded; a bound task's holds only its
    nodes) that can still allocate without the slow path (`nalloc_n[n] < budget[n]`), or -1."""
    for k in range(len(zonelist)):
        nid = zonelist[k]
        if nid < 0:
            break
        if nalloc_n[nid] < budget[nid]:
            return nid
    return -1


@noref
def count_numa(nid, preferred, ncnt):
    """zone_statistics: an allocation on its preferred node is a numa_hit there; one that fell
    back is a numa_miss on the node it came from and a numa_foreign on the preferred one."""
    ncnt[nid, N_PGALLOC] += 1
    if nid == preferred:
        ncnt[nid, N_NUMA_HIT] += 1
    else:
        ncnt[nid, N_NUMA_MISS] += 1
        ncnt[preferred, N_NUMA_FOREIGN] += 1


@noref
def count_numa_all(nids, preferred, ncnt):
    """count_numa for allocations on nodes `nids`, each with its preferred node (a migration's)."""
    for k in range(len(nids)):
        count_numa(nids[k], preferred[k], ncnt)


@noref
def _alloc(g, mc, nid, read, fault, write, flags, ftype, fmemcg, fnid, fshadow, fws, fever, usage, peak, mparent,
           s, vmc, cost, mstat, ev_page, ev_add, ev_shadow, ev_ws, ev_swap, ev_fault, ne, swap_memcg, swap_usage,
           swap_max, swap_type, sw):
    """Allocate on node `nid`, charge (the task's memcg and every ancestor) and fill the folio for page g: the
    refault check against its shadow entry, the ADD event, the swap-in or the file read (none for
    a whole-page write()). `write`: a write fault; `swap_type`, `sw`: the device of each swapped
    page and the devices (machine.node.Swap.table). Returns the new event count. `mstat` has one row per (memcg, node): mc * nodes + nid."""
    s[FREE + nid] -= 1
    fnid[g] = nid
    row = mc * (len(s) - FREE) + nid
    m = mc
    while m >= 0:  # page_counter_charge
        usage[m] += 1
        if usage[m] > peak[m]:
            peak[m] = usage[m]
        m = mparent[m]
    fmemcg[g] = mc
    vmc[PGALLOC] += 1
    s[MISSES] += 1
    t = ftype[g]
    shadow = fshadow[g]
    fshadow[g] = -1
    flags[g] |= PG_resident
    if shadow >= 0:  # workingset_refault: counted on the task's memcg
        if t == LRU_ANON:
            vmc[REFAULT_ANON] += 1
            mstat[row, M_REFAULT_ANON] += 1
        else:
            vmc[REFAULT_FILE] += 1
            mstat[row, M_REFAULT_FILE] += 1
    ev_page[ne] = g
    ev_add[ne] = True
    ev_shadow[ne] = shadow
    ev_ws[ne] = fws[g]
    ev_swap[ne] = s[SWAP_TOTAL] - s[SWAP_USED]  # the refault check sees the slot still in use
    ev_fault[ne] = fault
    if t == LRU_ANON:
        if fever[g]:  # swapped out before: do_swap_page reads it back from its slot's device
            d = swap_type[g]
            sw[d, SWP_IN] += 1
            if not sw[d, SWP_SYNC] and not should_try_to_free_swap(g, mc, write, flags, s, swap_usage, swap_max,
                                                                   mparent):
                # a disk: the folio stays in the swap cache and keeps its slot and the slot's
                # swap charge, so a clean reclaim later drops it without writing
                flags[g] |= PG_swapcache
            else:  # zram's skip-swapcache path, or folio_free_swap: the slot is released (zram's
                # pool, on node 0 in the model, gives its pages back)
                s[FREE] -= swap_slot_free(g, swap_memcg, swap_usage, mparent, swap_type, sw)
                s[SWAP_USED] -= 1
            vmc[PSWPIN] += 1
            vmc[PGPGIN] += 4
            cost[SWAP_INS] += 1
    elif read:
        vmc[PGPGIN] += 4
        cost[FILE_READS] += 1
    return ne + 1


@noref
def _dirty(g, flags, s):
    if (flags[g] & PG_dirty) == 0:
        flags[g] |= PG_dirty
        s[NR_FILE_DIRTY] += 1


@noref
def run_accesses(pages, ptes, kinds, writes, marks, pids, start, budget, skip_used, multi, limited,
                 flags, ftype, fmemcg, fshadow, fws, fever, present, young, pte_pmd, pmd_young, mm_used,
                 memcg_of_pid, usage, peak, mmax, mparent, s, vmc, cost, mstat, ev, highs, mhigh, over_high,
                 swap_memcg, swap_usage, swap_max, swap_type, sw, fnid, zonelists, pid_zonelist, nalloc_n,
                 ncnt, promo, prot_numa):
    """Replay records start.. (see the module docstring). `budget[n]`: allocations node n allows
    before the watermark slow path; an allocation takes the first node of its task's zonelist
    (`zonelists[pid_zonelist[pid]]`; its first node is the task's preferred one) with budget left
    (alloc_node; `nalloc_n`: the allocations per node so far, zeroed here), counted in `ncnt`
    (count_numa); with `promo` (NUMA balancing's tiering mode), an access through a PTE its scan
    made PROT_NONE (`prot_numa`) stops before the record (STOP_NUMA: the hint fault); `skip_used`: the record at `start` already marked its mm used
    (it stopped there for the slow path). With `highs` (a memcg has memory.high), a charge that
    leaves the task's memcg or an ancestor above its high adds a page to the task's
    `over_high`; once that reaches MEMCG_CHARGE_BATCH, the run stops after the record
    (STOP_HIGH): the task handles the overage on its return to user space. Returns (next
    record, why stopped, events, allocations)."""
    n = len(pages)
    ne = 0
    nalloc = 0
    i = start
    # the event arrays, unpacked once: a tuple item taken inside the loop costs a reference
    # count increment and decrement (atomic) per use
    ev_page, ev_add, ev_shadow, ev_ws, ev_swap, ev_fault = ev
    nn = len(nalloc_n)
    nalloc_n[:] = 0
    while i < n:
        # the folio fields of records ahead: a page not in the cache is waited for at its
        # residency test, and an allocation then reads its folio's other fields
        if i + 2 * PREFETCH_AHEAD < n:
            prefetch(flags, pages[i + 2 * PREFETCH_AHEAD])
        if i + PREFETCH_AHEAD < n:
            h = pages[i + PREFETCH_AHEAD]
            if (flags[h] & PG_resident) == 0:
                prefetch(fshadow, h)
                prefetch(ftype, h)
                prefetch(fmemcg, h)
                prefetch(fws, h)
                prefetch(fnid, h)
            if ptes[i + PREFETCH_AHEAD] >= 0:
                prefetch(present, ptes[i + PREFETCH_AHEAD])
                prefetch(pte_pmd, ptes[i + PREFETCH_AHEAD])
        g = pages[i]
        pid = pids[i]
        if not (skip_used and i == start):
            mm_used[pid] = True  # the task runs: its mm is used (lru_gen_mm_state)
        mc = memcg_of_pid[pid] if multi else 0
        resident = (flags[g] & PG_resident) != 0
        if kinds[i] == _FILE_FD:
            if not resident:
                zonelist = zonelists[zonelist_row(zonelists, pid_zonelist, pid, g, ftype)]
                nid = alloc_node(zonelist, nalloc_n, budget)
                if nid < 0:
                    return i, STOP_WMARK, ne, nalloc
                if limited and over_limit(mc, 1, usage, mmax, mparent) >= 0:
                    return i, STOP_MEMCG, ne, nalloc
                pid_zonelist[pid, 1] += 1  # a page-cache allocation (il_prev moves on)
                ne = _alloc(g, mc, nid, not writes[i], False, False, flags, ftype, fmemcg, fnid, fshadow, fws, fever,
                            usage, peak, mparent, s, vmc, cost, mstat, ev_page, ev_add, ev_shadow, ev_ws, ev_swap,
                            ev_fault, ne, swap_memcg, swap_usage, swap_max, swap_type, sw)
                nalloc += 1
                nalloc_n[nid] += 1
                count_numa(nid, zonelist[0], ncnt)
                if highs and charged_over_high(mc, usage, mhigh, mparent):
                    over_high[pid] += 1
            else:
                cost[HITS] += 1
                if nn > 1:  # the node's tier prices the access (CostModel)
                    ncnt[fnid[g], N_HITS] += 1
            if writes[i]:  # generic_perform_write: dirtied, not marked accessed
                _dirty(g, flags, s)
            elif marks[i]:  # filemap_read: folio_mark_accessed unless the read continues a folio
                ev_page[ne] = g
                ev_add[ne] = False
                ev_shadow[ne] = -1
                ev_ws[ne] = False
                ev_swap[ne] = 0
                ev_fault[ne] = False
                ne += 1
        else:
            p = ptes[i]
            if promo and prot_numa[p]:
                if present[p]:  # a NUMA hint fault: handled (do_numa_page) before the access
                    return i, STOP_NUMA, ne, nalloc
                prot_numa[p] = False  # unmapped since the scan: a fault maps it afresh
            if present[p]:
                cost[HITS] += 1
                if nn > 1:
                    ncnt[fnid[g], N_HITS] += 1
            else:  # a page fault
                if not resident:
                    zonelist = zonelists[zonelist_row(zonelists, pid_zonelist, pid, g, ftype)]
                    nid = alloc_node(zonelist, nalloc_n, budget)
                    if nid < 0:
                        return i, STOP_WMARK, ne, nalloc
                    if limited and over_limit(mc, 1, usage, mmax, mparent) >= 0:
                        return i, STOP_MEMCG, ne, nalloc
                    if ftype[g] == LRU_FILE:
                        pid_zonelist[pid, 1] += 1  # a page-cache allocation (il_prev moves on)
                    major = ftype[g] == LRU_FILE or fever[g]
                    ne = _alloc(g, mc, nid, True, True, writes[i] != 0, flags, ftype, fmemcg, fnid, fshadow, fws, fever,
                                usage, peak, mparent, s, vmc, cost, mstat, ev_page, ev_add, ev_shadow, ev_ws, ev_swap,
                                ev_fault, ne, swap_memcg, swap_usage, swap_max, swap_type, sw)
                    nalloc += 1
                    nalloc_n[nid] += 1
                    count_numa(nid, zonelist[0], ncnt)
                    if highs and charged_over_high(mc, usage, mhigh, mparent):
                        over_high[pid] += 1
                    if major:
                        vmc[PGMAJFAULT] += 1
                        mstat[mc * nn + nid, M_PGMAJFAULT] += 1  # count_memcg_event_mm: the task's memcg
                        cost[MAJOR] += 1
                    else:
                        cost[MINOR] += 1
                else:
                    cost[MINOR] += 1
                    if (flags[g] & PG_swapcache) != 0 and should_try_to_free_swap(
                            g, fmemcg[g], writes[i] != 0, flags, s, swap_usage, swap_max, mparent):
                        # do_swap_page finds the folio in the swap cache
                        flags[g] &= ~PG_swapcache
                        s[FREE] -= swap_slot_free(g, swap_memcg, swap_usage, mparent, swap_type, sw)
                        s[SWAP_USED] -= 1
                vmc[PGFAULT] += 1
                mstat[mc * nn + fnid[g], M_PGFAULT] += 1
                present[p] = True
            young[p] = True  # the "hardware" accessed bit, and the non-leaf PMD one (x86)
            pmd_young[pte_pmd[p]] = True
            if writes[i]:
                if ftype[g] == LRU_FILE:
                    _dirty(g, flags, s)
                elif (flags[g] & PG_swapcache) != 0:
                    # the PTE's dirty bit (try_to_unmap moves it to the folio): its copy on swap
                    # is stale, reclaim writes it again to the same slot
                    flags[g] |= PG_dirty
        i += 1
        if highs and over_high[pid] >= MEMCG_CHARGE_BATCH:
            return i, STOP_HIGH, ne, nalloc
    return i, DONE, ne, nalloc


@njit(cache=True)
def read_marks(kinds, writes, pids, files, pages, start, slots, shift, nstreams, room, slast, marks):
    """filemap_read's folio_mark_accessed test, records start..: a read() marks its folio
    accessed unless it starts in the folio the previous read() of the same stream (the struct
    file: pid, file) ended in; no other record does. The streams are named by a KeyIndex's hash
    table (`slots`, `shift`: machine.index.hash_get_or_add), `nstreams` of them so far;
    `slast[stream]` is the page its previous read() ended in (-1: none). Stops at the record
    that would name a stream beyond `room` (the caller makes room). Returns (next record,
    streams named)."""
    mask = len(slots) // 2 - 1
    key = sid = last = -1  # the stream of the previous read() here, held while reads stay in it
    for i in range(start, len(kinds)):
        if kinds[i] != _FILE_FD or writes[i]:
            marks[i] = False
            continue
        k = (np.int64(pids[i]) << 32) | np.int64(files[i])
        if k != key:
            if sid >= 0:
                slast[sid] = last
            if nstreams >= room:
                return i, nstreams
            sid, nstreams = hash_get_or_add(slots, k, nstreams, shift, mask)
            key, last = k, slast[sid]
        marks[i] = pages[i] != last
        last = pages[i]
    if sid >= 0:
        slast[sid] = last
    return len(kinds), nstreams


def new_event_arrays(n: int):
    """Room for the events of n records (at most two each: an ADD and an ACCESS)."""
    m = 2 * n
    return (np.empty(m, np.int64), np.empty(m, np.bool_), np.empty(m, np.int64), np.empty(m, np.bool_),
            np.empty(m, np.int64), np.empty(m, np.bool_))
