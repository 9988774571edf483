"""reclaim_ops: the only interface between the reclaim core and a policy.

A policy is a class with these hooks. Every hook receives `sim`, the core (core.engine.Simulator),
for the folio table, counters and shared mechanisms. Hot-path hooks come in two forms: scalar
(`folio_add`, `mark_accessed`), used by the exact driver one access at a time, and batched
(`access_events`), used by the fast driver once per trace segment. The default batched hook loops
over the scalar ones, so a policy only has to write the batched form when it wants speed; the
driver-equality test checks that both give the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..machine.folio import LRU_ANON, LRU_FILE

# folio_check_references verdicts (enum folio_references)
FOLIOREF_ACTIVATE = 0
FOLIOREF_KEEP = 1
FOLIOREF_RECLAIM = 2
FOLIOREF_RECLAIM_CLEAN = 3
VERDICT_NAMES = ("ACTIVATE", "KEEP", "RECLAIM", "RECLAIM_CLEAN")

# Mechanisms a run can switch on or off per policy (MGLRU's, in mm/vmscan.c):
#   ptwalk     page-table walk during aging (core.ptwalk.walk_mm)
#   bloom      skip PTE tables absent from the Bloom filter of dense tables (needs ptwalk)
#   pmd_young  skip PTE tables whose non-leaf PMD accessed bit is clear (needs ptwalk)
#   lookaround scan the neighbours of a young PTE found by rmap (core.ptwalk.look_around)
#   lockfree   age updates as flag updates, list moves deferred to eviction (core.lockfree)
#   memcg_lru  root reclaim through the per-node memcg LRU (lru_gen_shrink_node, shrink_many);
#              off: the memcg tree walk (shrink_node_memcgs), as before Linux 6.3 (MGLRU only)
# access-detection and list mechanisms a policy may support (core.ptwalk, core.lockfree, MGLRU's
# memcg LRU), and the core's own, which every policy gets on by default (core.vmscan: demotion
# to a lower memory tier, /sys/kernel/mm/numa/demotion_enabled)
ACCESS_MECHANISMS = ("ptwalk", "bloom", "pmd_young", "lookaround", "lockfree", "memcg_lru")
CORE_MECHANISMS = ("demotion", "promotion")
CORE_DEFAULT = ("demotion",)  # on unless switched off (promotion: NUMA balancing, off by default)
MECHANISMS = ACCESS_MECHANISMS + CORE_MECHANISMS
CORE_VARIANTS = ("-demotion", "+promotion")  # what `reclaim-ext ablate` adds on a machine with memory tiers

DEF_PRIORITY = 12
SWAP_CLUSTER_MAX = 32
MAX_RECLAIM_RETRIES = 16


@dataclass
class ReclaimStat:
    """Per-round counters of scan_control.nr (reset by shrink_node)."""

    dirty: int = 0
    unqueued_dirty: int = 0
    congested: int = 0
    writeback: int = 0
    immediate: int = 0
    file_taken: int = 0
    taken: int = 0


@dataclass
class ScanControl:
    """struct scan_control (mm/vmscan.c), the fields the simulator uses."""

    nr_to_reclaim: int
    kswapd: bool = False
    order: int = 0
    priority: int = DEF_PRIORITY
    may_writepage: bool = True
    may_unmap: bool = True
    may_swap: bool = True
    target_memcg: object = None
    proactive: bool = False
    swappiness: int | None = None  # proactive swappiness override
    nr_reclaimed: int = 0
    nr_scanned: int = 0
    may_deactivate: int = 0        # bit 0 anon, bit 1 file
    force_deactivate: bool = False
    skipped_deactivate: bool = False
    memcg_full_walk: bool = False  # visit every memcg under the target (no shared-cursor partial walk)
    memcg_low_reclaim: bool = False  # reclaim memcgs below memory.low too (do_try_to_free_pages' last retry)
    memcg_low_skipped: bool = False  # memory.low made this reclaim skip or spare a memcg
    cache_trim_mode: bool = False
    file_is_tiny: bool = False
    anon_cost: int = 0
    file_cost: int = 0
    nr: ReclaimStat = field(default_factory=ReclaimStat)
    priv: dict = field(default_factory=dict)  # the policy's per-invocation scratch state


@dataclass
class AccessEvents:
    """The software-visible events of one trace segment, in trace order.

    Each event is either an ADD (a folio was allocated for a fault or a page-cache miss and must be
    placed on a list; `shadow` >= 0 if a shadow entry was found, i.e. a refault) or an ACCESS (a
    read()/write() touched the folio: folio_mark_accessed). For one access that misses, the ADD
    comes before the ACCESS. A built-in (trusted) policy gets views of the engine's buffers,
    which the next segment overwrites; other policies get copies.
    """

    page: np.ndarray       # folio ids
    is_add: np.ndarray     # bool
    shadow: np.ndarray     # eviction token for ADD events with a shadow, else -1
    shadow_ws: np.ndarray  # workingset bit of that shadow
    lru_type: np.ndarray   # LRU_ANON / LRU_FILE of the folio
    swap_free: np.ndarray  # free swap slots when the event happens (mem_cgroup_get_nr_swap_pages)
    fault: np.ndarray      # ADD events: the folio was allocated by a page fault (lru_gen_in_fault)
    # memcg id of each event's folio (its lruvec) when the run has several memcgs; None: every
    # event is on the lruvec the hook was called with
    memcg: np.ndarray | None = None

    @classmethod
    def one(cls, sim, page: int, is_add: bool, shadow: int = -1, shadow_ws: bool = False, swap_free: int = 0,
            fault: bool = False) -> "AccessEvents":
        """A single event: what the scalar hooks (folio_add, mark_accessed) are, for a policy whose
        rule is stated once in its batched hook."""
        return cls(page=np.array([page], np.int64), is_add=_BOOL[bool(is_add)], shadow=np.array([shadow], np.int64),
                   shadow_ws=_BOOL[bool(shadow_ws)], lru_type=sim.folios.type[page : page + 1],
                   swap_free=np.array([swap_free], np.int64), fault=_BOOL[bool(fault)])


# one-element read-only boolean arrays (AccessEvents.one)
_BOOL = {False: np.zeros(1, np.bool_), True: np.ones(1, np.bool_)}
for _a in _BOOL.values():
    _a.flags.writeable = False


class ReclaimOps:
    """Base class for policies: defaults for every optional hook."""

    name = "base"
    nr_classes = 2
    trusted = False  # built-in policies skip the per-call output checks unless --check is on
    # The core may run a shrink_lruvec pass that only meets clean, never-mapped file folios in
    # bulk (core.vmscan._clean_file_pass) when the policy guarantees, for such folios: references() frees
    # every one isolated from class 0; age(n1) then age(n2) equals age(n1 + n2), leaves the
    # class-0 tail and the workingset clock alone; eviction_token() depends only on the eviction
    # order; prepare() and scan_budget() only read scalars; after_lruvec() and kswapd_age_node()
    # do nothing while the lruvec holds no anon folio.
    bulk_clean_file_pass = False
    # Shared access-detection mechanisms (core.ptwalk, core.lockfree) the policy can use, and the
    # ones it uses by default; a run may switch each on or off (--mechanism, `ablate`).
    supported_mechanisms: tuple[str, ...] = ()
    default_mechanisms: tuple[str, ...] = ()
    ablation_variants: tuple[str, ...] = ()  # --mechanism specs `reclaim-ext ablate` compares
    # access_events takes a segment whose events span several lruvecs (AccessEvents.memcg) in one
    # call; otherwise the core hands over each run of events of one lruvec separately
    multi_lruvec_events = False

    def __init__(self, mechanisms: dict[str, bool] | None = None):
        self.mech = {m: m in self.default_mechanisms or m in CORE_DEFAULT for m in MECHANISMS}
        if mechanisms:
            self.mech.update(mechanisms)

    def uses(self, mechanism: str) -> bool:
        mech = self.__dict__.get("mech")  # a subclass may not have called __init__
        if mech is not None:
            return mech.get(mechanism, False)
        return mechanism in self.default_mechanisms or mechanism in CORE_DEFAULT

    # --- lifecycle ---------------------------------------------------------------------------
    def init_lruvec(self, sim, lruvec) -> None:
        """Set up per-lruvec policy state (lruvec.priv)."""

    # --- hot path ----------------------------------------------------------------------------
    def folio_add(self, sim, lruvec, page: int, shadow: int, shadow_ws: bool, swap_free: int,
                  fault: bool) -> None:
        """Place a newly allocated folio (shadow >= 0: a refault; swap_free: free swap slots at
        that moment, for the refault decision; fault: allocated by a page fault rather than by
        read()/write()). Required."""
        raise NotImplementedError

    def mark_accessed(self, sim, lruvec, page: int) -> None:
        """A read()/write() touched a resident folio (folio_mark_accessed)."""

    def access_events(self, sim, lruvec, ev: AccessEvents) -> None:
        """Batched hot path; the default replays the events through the scalar hooks."""
        page, is_add, shadow, ws = ev.page.tolist(), ev.is_add.tolist(), ev.shadow.tolist(), ev.shadow_ws.tolist()
        swap_free, fault = ev.swap_free.tolist(), ev.fault.tolist()
        for i in range(len(page)):
            if is_add[i]:
                self.folio_add(sim, lruvec, page[i], shadow[i], ws[i], swap_free[i], fault[i])
            else:
                self.mark_accessed(sim, lruvec, page[i])

    # --- reclaim -----------------------------------------------------------------------------
    def shrink_node(self, sim, node, sc: ScanControl) -> None:
        """One reclaim pass over a node. Default: the core's shrink_node (prepare, then
        shrink_lruvec on every lruvec, then the node flags)."""
        sim.vmscan.shrink_node_lruvecs(sim, node, sc, self)

    def rmap_look(self, sim, lruvec, sc: ScanControl):
        """A callable(pte_id) run on every young PTE the rmap walk of shrink_folio_list finds
        (lookaround), or None for the plain walk."""
        return None

    def prepare(self, sim, lruvec, sc: ScanControl) -> None:
        """Per node pass, before any lruvec is shrunk (prepare_scan_control)."""

    def shrink_lruvec(self, sim, lruvec, sc: ScanControl) -> None:
        """Reclaim from one lruvec. Default: the core's list-budget loop."""
        sim.vmscan.shrink_lruvec_lists(sim, lruvec, sc, self)

    def scan_budget(self, sim, lruvec, sc: ScanControl) -> list[int]:
        """Pages to scan per list this pass. Default: get_scan_count over the lists."""
        return sim.vmscan.get_scan_count(sim, lruvec, sc)

    def age(self, sim, lruvec, lru: int, nr_to_scan: int, sc: ScanControl) -> None:
        """Age list `lru` (a class > 0): move its cold folios towards class 0. The core charges
        the LRU-lock operations of the call (isolate + putback)."""

    def isolate(self, sim, lruvec, lru_type: int, nr_to_scan: int, sc: ScanControl) -> np.ndarray:
        """Eviction candidates of a type, in order. Default: the tail of class 0."""
        return lruvec.isolate_tail(sim.folios, lruvec.list_index(lru_type, 0), nr_to_scan)

    def references(self, sim, lruvec, ids: np.ndarray, young: np.ndarray, vm_exec: np.ndarray,
                   sc: ScanControl) -> np.ndarray:
        """Verdicts (FOLIOREF_*) for isolated folios, given the young PTE count the rmap walk found
        per folio and whether a VM_EXEC mapping was among them. Default: reclaim all."""
        return np.full(len(ids), FOLIOREF_RECLAIM, dtype=np.int8)

    def putback(self, sim, lruvec, ids: np.ndarray, active: np.ndarray) -> None:
        """Return survivors of shrink_folio_list to the lists (move_folios_to_lru)."""
        raise NotImplementedError

    def folio_isolate(self, sim, lruvec, ids: np.ndarray) -> None:
        """folio_isolate_lru for folios on this lruvec's lists (a migration takes them, e.g. a
        NUMA promotion): off their lists. Default: the physical lists' bookkeeping."""
        lruvec.delete(sim.folios, ids)

    def folio_migrate(self, sim, ids: np.ndarray) -> None:
        """Isolated folios leave their node (migrate_folios: demotion, promotion); the old folios
        are freed without a shadow and the new ones come back as ADD events on their new node.
        Default: nothing (the policy's lists no longer hold them)."""

    def eviction_lruvec(self, sim, lruvec, sc: ScanControl):
        """The lruvec whose clock an eviction from `lruvec` is stamped with (the shadow's memcg).
        Default: the folio's own lruvec (lru_gen_eviction); classic: the reclaim target's
        (workingset_eviction)."""
        return lruvec

    def eviction_token(self, sim, lruvec, ids: np.ndarray) -> np.ndarray:
        """Shadow payloads for folios being evicted, in eviction order. Default: no shadows."""
        return np.full(len(ids), -1, dtype=np.int64)

    def after_lruvec(self, sim, lruvec, sc: ScanControl) -> None:
        """End of shrink_lruvec for this lruvec."""

    def segment_driver(self, sim, slots: int):
        """A compiled driver the engine may hand whole stretches of a chunk to, for a run with one
        memcg, no limit and no check (engine.Simulator.drive_compiled has the arguments every
        such driver takes and what it returns): (loop, the policy's own arguments or a function
        that returns them at each call, the HookOut its events count into, with room for `slots`
        list slots). None (the default): the engine drives, one stretch at a time."""
        return None

    def compiled_refaults(self, sim, lruvec):
        """Whether each type (anon, file) saw refault activations since the last
        snapshot_refaults, when every reclaim hook of the policy is the core's classic rule
        (prepare_scan_control, get_scan_count, shrink_active_list, folio_check_references,
        move_folios_to_lru, workingset_eviction's tokens, the anon aging): kswapd then runs as
        one compiled call (core.kswapd.kswapd_balance), and the policy's segment_driver may run
        its wakes. None (the default): it is not."""
        return None

    def kswapd_age_node(self, sim, node, sc: ScanControl) -> str | None:
        """Background aging before each kswapd pass. Returning a reason string asks the core to
        invoke the OOM killer (MGLRU's min_ttl_ms protection)."""

    def reclaim_done(self, sim, node, sc: ScanControl) -> None:
        """End of one kswapd run or direct reclaim (where snapshot_refaults runs)."""

    def rotate_reclaimable(self, sim, lruvec, ids: np.ndarray) -> None:
        """folio_rotate_reclaimable: writeback finished on folios reclaim wanted gone; default:
        clear PG_active and move them to the tail of class 0 so the next scan frees them."""
        sim.vmscan.rotate_reclaimable(sim, lruvec, ids)

    # --- introspection -------------------------------------------------------------------------
    def lru_sizes(self, lruvec) -> dict[str, int]:
        """Final list sizes by name for the result (two classes: inactive/active per type)."""
        out = {}
        for t, tname in enumerate(("anon", "file")):
            for c in range(lruvec.nr_classes):
                key = f"{('inactive', 'active')[c]}_{tname}" if lruvec.nr_classes == 2 else f"{tname}_class{c}"
                out[key] = int(lruvec.nr[t * lruvec.nr_classes + c])
        return out

    def finish(self) -> None:
        """The run is over (a policy host records its exit here)."""

    def dump(self, sim) -> dict:
        """Policy state for the JSON result (MGLRU: {"lru_gen": ...})."""
        return {}

    def sample(self, sim, lruvec) -> dict:
        """Extra fields for each point of the time series."""
        return {}

    def check(self, sim, lruvec) -> list[str]:
        """Policy invariants for the conservation check: a list of problems."""
        return []

    def reclaimable_types(self, sim) -> tuple[int, ...]:
        return (LRU_ANON, LRU_FILE)


class BatchedEvents(ReclaimOps):
    """A policy whose access rules are stated once, in apply_events (events in order, each on its
    folio's lruvec): access_events is a call of it, and the scalar hooks (folio_add,
    mark_accessed) are single events of it (AccessEvents.one). A subclass that extends one hook
    (the plug-in adapter delivers each event to its plug-in) does not see the others call it."""

    def apply_events(self, sim, lruvec, ev: AccessEvents) -> None:
        """The events, all of folios on lruvec.node (of lruvec's memcg, or of any memcg when
        the policy declares multi_lruvec_events)."""
        raise NotImplementedError

    def access_events(self, sim, lruvec, ev: AccessEvents) -> None:
        self.apply_events(sim, lruvec, ev)

    def folio_add(self, sim, lruvec, page, shadow, shadow_ws, swap_free, fault=False):
        self.apply_events(sim, lruvec, AccessEvents.one(sim, page, True, shadow, shadow_ws, swap_free, fault))

    def mark_accessed(self, sim, lruvec, page):
        self.apply_events(sim, lruvec, AccessEvents.one(sim, page, False))
