"""One instance of a policy per lruvec (`Policy.per_lruvec`), inside the reclaim core.

The kernel keeps one set of LRU lists per memcg's lruvec, and cache_ext one set of eviction
lists per cgroup; a policy whose class sets `per_lruvec` gets the same: PerLruvec is the policy
the adapter (ext.adapter) runs for such an attachment, and it runs one instance of the user's
policy per lruvec the attachment governs (on a machine without memcgs, whose one lruvec is the
root memcg's, the adapter runs the policy as it is: its one object is that instance). It is a
Policy itself, so the host's rules (watchdog, exits, R7, R11) apply to it as to any policy:
whatever one instance raises, or a broken answer, ends the attachment (one exit record), and the
fallback takes over as for any other policy.

  * an instance is made when the policy starts (`init`) for each lruvec it governs then, and on
    first use for one it governs later (a page added, accessed or removed, or a reclaim pass):
    the user's object for the first lruvec, then new objects of its class made with the same
    constructor arguments (Policy.__new__ keeps them); each is initialised then, with its own
    Context: the memcg's capacity on the lruvec's node (as a `memcg:/PATH` attachment gets on a
    one-node machine), its lruvec's `nr_resident`, `memcg` and `node` set in every hook, its own
    `counters`;
  * added/accessed/removed calls are split by the pages' lruvecs (memcg and node; each instance's
    pages in their order), and evict goes to the instance of the lruvec being reclaimed
    (`ctx.memcg`, `ctx.node`);
  * an lruvec the attachment loses to a nearer scope takes its instance away (`drop`, after the
    instance saw its pages in `removed`); if the lruvec comes back, a new instance adopts it;
  * `dump` is one line per lruvec, `exit` reaches every instance, `counters()` sums them.
"""

from __future__ import annotations

import sys
from numbers import Number

import numpy as np

from . import lists
from .policy import Context, Policy, defines


def another(policy: Policy) -> Policy:
    """A new object of the policy's class, made with the constructor arguments it was made with."""
    args, kwargs = getattr(policy, "_made_with", ((), {}))
    return type(policy)(*args, **kwargs)


def is_compiled(policy) -> bool:
    """Whether the policy has compiled hooks (ext.compiled, which such a policy has imported)."""
    mod = sys.modules.get("reclaim_ext.ext.compiled")
    return mod is not None and isinstance(policy, mod.CompiledPolicy)


class PerLruvec(Policy):
    """`policy`'s class, one instance per lruvec of the attachment (module docstring); `ops` is
    the adapter (ExtOps), which knows the pages' memcgs and the lruvecs."""

    name = "per-lruvec"

    def __init__(self, policy: Policy, ops):
        self.template = policy   # its class and constructor arguments make the instances
        self.first = policy      # the first lruvec's instance (None once given)
        self.ops = ops
        self.instances: dict[int, tuple[Policy, Context]] = {}  # lruvec key -> (instance, its ctx)
        self.retired: list[Context] = []  # the contexts of instances dropped (their counters count)
        self.prototype = None    # a compiled policy: an instance to compile the loops with (PolicyHost.start)
        self._ids: dict[str, int] = {}  # memcg path -> id

    def init(self, ctx):
        """The instances of the lruvecs the attachment governs from the start (the others on
        first use); a compiled policy's prototype."""
        ops = self.ops
        self._ids = {m.path: mid for mid, m in ops.sim.memcgs.items()}
        if is_compiled(self.template):
            self.prototype = another(self.template)
            self.prototype.init(Context(capacity=ctx.capacity, rng=np.random.default_rng(0), scope=ctx.scope))
        for lv in ops._lruvecs():
            att = ops._resolve(lv.memcg, lv.node.nid)
            if att is not None and att.policy is self:
                self._instance(ctx, ops.lruvec_key(lv))

    def _instance(self, ctx, key: int) -> tuple[Policy, Context]:
        """The instance of the lruvec `key` (made and initialised on first use)."""
        got = self.instances.get(key)
        if got is not None:
            return got
        pol, self.first = (another(self.template) if self.first is None else self.first), None
        lv = self.ops.lruvec_of(key)
        path, nid = lv.memcg.path, lv.node.nid
        ictx = Context(capacity=self.ops._capacity(f"memcg:{path}", nid), rng=np.random.default_rng(0),
                       scope=ctx.scope, memcg=path, node=nid)
        ictx._types = ctx._types
        ictx.now, ictx.nr_resident = ctx.now, lv.total()
        saved = lists._HOOK[0]
        lists._HOOK[0] = "init"  # R7 holds in an instance's init too
        try:
            pol.init(ictx)
        finally:
            lists._HOOK[0] = saved
        got = self.instances[key] = (pol, ictx)
        return got

    def _enter(self, ctx, key: int) -> tuple[Policy, Context]:
        """The instance of lruvec `key`, its ctx brought up to date for a call."""
        pol, ictx = self._instance(ctx, key)
        ictx.now, ictx.nr_resident = ctx.now, self.ops.lruvec_of(key).total()
        return pol, ictx

    def _split(self, ctx, hook: str, handles: np.ndarray, *more) -> None:
        """One added/accessed/removed (or a compiled policy's events) call, as one call per
        instance on its pages, in order; `more`: per-handle arrays that go along."""
        if len(handles) == 0:
            return
        f = self.ops.sim.folios
        keys = self.ops.key(f.memcg[handles], f.nid[handles])
        if len(keys) == 1 or (keys == keys[0]).all():
            groups = [(int(keys[0]), None)]
        else:
            groups = [(k, keys == k) for k in np.unique(keys).tolist()]
        for key, sel in groups:
            pol, ictx = self._enter(ctx, key)
            ictx.when = ctx.when if sel is None or ctx.when is None else ctx.when[sel]
            args = (handles, *more) if sel is None else (handles[sel], *(a[sel] for a in more))
            try:
                getattr(pol, hook)(ictx, *args)
            finally:
                ictx.when = None

    def added(self, ctx, handles):
        self._split(ctx, "added", handles)

    def accessed(self, ctx, handles):
        self._split(ctx, "accessed", handles)

    def removed(self, ctx, handles):
        self._split(ctx, "removed", handles)

    def events(self, ctx, handles, is_add):  # (the adapter calls it for a compiled policy only)
        self._split(ctx, "events", handles, is_add)

    def evict(self, ctx, n):
        pol, ictx = self._enter(ctx, self.ops.key(self._ids[ctx.memcg], ctx.node))
        ictx.anon_ok, ictx._referenced, ictx._walk = ctx.anon_ok, ctx._referenced, ctx._walk
        try:
            return pol.evict(ictx, n)
        finally:
            ictx.anon_ok, ictx._referenced, ictx._walk = True, None, None

    def exit(self, ctx, info):
        for pol, ictx in self.instances.values():
            ictx.now = ctx.now
            pol.exit(ictx, info)

    def dump(self, ctx):
        if not defines(self.template, "dump"):
            return ""
        nodes = len(self.ops.sim.nodes) > 1
        return "\n".join(f"{ictx.memcg}{f' node {ictx.node}' if nodes else ''}: {pol.dump(ictx)}" for pol, ictx in
                          sorted(self.instances.values(), key=lambda x: (x[1].memcg, x[1].node)))

    def drop(self, key: int) -> None:
        """The attachment no longer governs lruvec `key`: its instance goes (its counters stay)."""
        got = self.instances.pop(key, None)
        if got is not None:
            self.retired.append(got[1])

    def counters(self) -> dict:
        """The instances' own counters (ctx.counters), summed (those of dropped ones too)."""
        out: dict = {}
        for ictx in [c for _, c in self.instances.values()] + self.retired:
            for k, v in ictx.counters.items():
                was = out.get(k, 0)
                out[k] = was + v if isinstance(v, Number) and isinstance(was, Number) else v
        return out
