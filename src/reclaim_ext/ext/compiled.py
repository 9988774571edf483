"""Compiled hooks: a policy whose hooks are numba `@njit` functions over numpy state, run by a
compiled replay loop of the core in plain-cache mode (no Python per access).

A compiled policy subclasses `CompiledPolicy` and declares

  * `handle_arrays`: ((dtype, initial value), ...), arrays indexed by handle that the core
    allocates and grows as handles are issued (links of a list, a frequency, a flag); an initial
    value that is a tuple makes a 2-D array with one column per value (the fields of a handle in
    one row: one cache line instead of one per field, about twice as fast as separate arrays);
  * `state(ctx)`: a tuple of numpy arrays of fixed size (sizes, list ends, parameters: a scalar
    lives in an array), allocated once in Python;
  * four module-level `@njit(cache=True)` functions as class attributes, each taking `state`,
    the tuple (*handle arrays, *state(ctx)):

        on_hit(state, handle, now)         a resident page was accessed (a hit)
        on_admit(state, handle, now)       a page became resident (a miss brought it in)
        on_evict(state, incoming, now)     -> the handle of one resident page to evict (the
                                           policy keeps it until on_removed); incoming is the
                                           page coming in (-1 when unknown)
        on_removed(state, handle, now)     a page left (the core evicted it)

    `on_evict` is required, the others default to doing nothing; `now` is the access index.

Plain-cache mode runs each chunk of accesses in one compiled loop (`_templates`, specialized per
policy): per access, a hit calls on_hit; a miss with the cache full calls on_evict, checks the
victim (an issued, resident handle: anything else ends the loop with the bad value), evicts it,
calls on_removed, then admits the page and calls on_admit. The core updates its own residency and
recency (the fallback LRU's) *before* each hook call and records in `cnt` the access and the hook
in progress, so when a hook raises (numba supports `raise` in compiled code) the exception leaves
the loop with the core's state exact up to that hook, and Python finishes that access the way the
Python path would (ejection, then the fallback). The hits, misses, evictions and events of a run
are the Python path's for the same policy logic.

The loops call lean copies of the hooks (and of the @njit helpers they call): compiled without
numba's runtime (NRT), so no reference counting of the state's arrays at every call (1.4-3x
faster per access); a policy whose hooks allocate or raise with non-constant arguments sets
`nrt = True` and gets its hooks as they are.

The loop runs without the GIL, one block of accesses per call, each call timed by the watchdog
like one hook call (ext.cache._compiled_block); compiled code cannot be interrupted, so a block
past its budget is ejected only once it returns, and one that never returns meets the watchdog's
last resort (the process ends with one error line). The author guarantees termination.

The same class also works through the Python API (`added`, `accessed`, `evict`, `removed` call
the compiled hooks in a compiled batch): a switch adopts the resident pages that way, and the
reclaim core runs the policy so. There `evict(ctx, n)` answers with up to n victims in one
compiled call: on_evict, then on_removed for that victim before on_evict is asked again (as the
plain-cache loop does between misses); the victims the core keeps come back as admitted.

Numba caches the compiled loop (cache=True): it is specialized per policy by the functions in its
globals, and its cache key carries the hooks' names and a hash of their source files, so editing
a policy recompiles it (a helper the hooks call from another file is not hashed: after editing
one, change the hooks' file too, or clear numba's cache).
"""

from __future__ import annotations

import hashlib
import inspect
import re
import types

import numpy as np
from numba import njit, typeof
from numba import types as nbtypes
from numba.extending import is_jitted

from ..core.batch import is_member
from .policy import Context, Policy

HOOKS = ("on_hit", "on_admit", "on_evict", "on_removed")

# cnt: the loop's counters and progress (int64), read by the core after each call
C_POS, C_HITS, C_MISSES, C_EVICTIONS, C_NR, C_STAGE, C_STATUS, C_BAD = range(8)
N_CNT = 8
# C_STAGE: the hook in progress at access C_POS (STAGE_HOOK names it)
S_NONE, S_HIT, S_EVICT, S_REMOVED, S_ADMIT = range(5)
STAGE_HOOK = {S_NONE: None, S_HIT: "on_hit", S_EVICT: "on_evict", S_REMOVED: "on_removed", S_ADMIT: "on_admit"}
# C_STATUS
ST_RUNNING, ST_DONE, ST_BAD_VICTIM = range(3)
# apply(): which hook (OP_EVENTS: each handle's own, OP_ADMIT or OP_HIT, in `kinds`)
OP_HIT, OP_ADMIT, OP_REMOVED, OP_EVICT, OP_EVENTS = range(5)


class CompiledHookError(Exception):
    """The compiled hooks cannot run: not njit functions, state not arrays, a typing error, an
    on_evict that does not return an integer. The core ejects the policy (exit kind ERROR)."""


# ---- helpers for policies: doubly linked lists over a per-handle array ---------------------------
# A list keeps its head (newest), tail (oldest) and length in s[at], s[at + 1], s[at + 2] of an
# int64 state array; a handle's links are nodes[h, p] (prev) and nodes[h, p + 1] (next) of a 2-D
# per-handle int64 array (-1: none), so a handle's links and its other fields share a cache line.
# Several lists may share the columns p, p + 1 when a handle is on at most one of them (the
# policy tracks which).

@njit(cache=True)
def list_push_head(nodes, p, s, at, h):
    """Put h at the head (newest end) of the list at s[at]."""
    head = s[at]
    nodes[h, p] = -1
    nodes[h, p + 1] = head
    if head >= 0:
        nodes[head, p] = h
    else:
        s[at + 1] = h
    s[at] = h
    s[at + 2] += 1


@njit(cache=True)
def list_remove(nodes, p, s, at, h):
    """Take h (a member) off the list at s[at]."""
    a = nodes[h, p]
    b = nodes[h, p + 1]
    if a >= 0:
        nodes[a, p + 1] = b
    else:
        s[at] = b
    if b >= 0:
        nodes[b, p] = a
    else:
        s[at + 1] = a
    nodes[h, p] = -1
    nodes[h, p + 1] = -1
    s[at + 2] -= 1


@njit(cache=True)
def list_move_head(nodes, p, s, at, h):
    """Move h (a member) to the head of the list at s[at]."""
    if s[at] != h:
        list_remove(nodes, p, s, at, h)
        list_push_head(nodes, p, s, at, h)


@njit(cache=True)
def list_contains(nodes, p, s, at, h):
    """Whether h is on the list at s[at], when no other list shares the columns p, p + 1."""
    return nodes[h, p] >= 0 or s[at] == h


@njit(cache=True)
def _no_hook(state, h, now):
    pass


# ---- the core's compiled loops (templates; specialized per policy in _build) ---------------------

def _templates():
    _hooks_key = ""  # the hooks' names and source hash: a closure cell, so part of numba's cache key

    def replay(ids, t0, resident, last, capacity, count, state, cnt):
        """Accesses ids (t0, t0 + 1, ...) with the policy's compiled hooks (module docstring).
        The counters in cnt are added to; cnt[C_NR] is the number of resident pages."""
        _hooks_key  # noqa: B018
        nr = cnt[C_NR]
        for i in range(len(ids)):
            h = ids[i]
            t = t0 + i
            cnt[C_POS] = i
            if resident[h]:
                last[h] = t
                cnt[C_HITS] += 1
                cnt[C_STAGE] = S_HIT
                on_hit(state, h, t)  # noqa: F821
            else:
                cnt[C_MISSES] += 1
                if nr >= capacity:
                    cnt[C_STAGE] = S_EVICT
                    v = np.int64(on_evict(state, h, t))  # noqa: F821
                    if v < 0 or v >= count or not resident[v]:
                        cnt[C_BAD] = v
                        cnt[C_STATUS] = ST_BAD_VICTIM
                        return
                    resident[v] = False
                    nr -= 1
                    cnt[C_NR] = nr
                    cnt[C_EVICTIONS] += 1
                    cnt[C_STAGE] = S_REMOVED
                    on_removed(state, v, t)  # noqa: F821
                resident[h] = True
                last[h] = t
                nr += 1
                cnt[C_NR] = nr
                cnt[C_STAGE] = S_ADMIT
                on_admit(state, h, t)  # noqa: F821
        cnt[C_POS] = len(ids)
        cnt[C_STAGE] = S_NONE
        cnt[C_STATUS] = ST_DONE

    def apply(op, state, handles, when, incoming, now, resident, kinds):
        """One Python-API call in one compiled call: a hook over a batch of handles, or (OP_EVICT)
        up to len(handles) victims written into `handles`, each taken out of the policy
        (on_removed, and out of `resident`: the pages the policy was told are resident) before
        the next on_evict. Returns how many were taken; an answer that is not a resident page
        (-1 for none, a forged or a repeated handle) ends it, written after them."""
        _hooks_key  # noqa: B018
        if op == OP_EVICT:
            for k in range(len(handles)):
                v = np.int64(on_evict(state, incoming, now))  # noqa: F821
                handles[k] = v
                if v < 0 or v >= len(resident) or not resident[v]:
                    return np.int64(k)
                resident[v] = False
                on_removed(state, v, now)  # noqa: F821
            return np.int64(len(handles))
        for i in range(len(handles)):
            k = kinds[i] if op == OP_EVENTS else op
            if k == OP_HIT:
                on_hit(state, handles[i], when[i])  # noqa: F821
            elif k == OP_ADMIT:
                resident[handles[i]] = True
                on_admit(state, handles[i], when[i])  # noqa: F821
            else:
                on_removed(state, handles[i], when[i])  # noqa: F821
        return np.int64(-1)

    return replay, apply


_REPLAY, _APPLY = _templates()
_BUILT: dict = {}  # (the hooks (a tuple of dispatchers), nrt) -> (replay, apply)


def _hooks_of(cls) -> tuple:
    """The class's four compiled hooks (a missing optional one: a no-op); CompiledHookError if
    one is not an @njit function."""
    out = []
    for name in HOOKS:
        f = getattr(cls, name, None)
        if f is None and name != "on_evict":
            f = _no_hook
        if f is None or not is_jitted(f):
            what = "missing" if f is None else f"a {type(f).__name__}, not a numba @njit function"
            raise CompiledHookError(f"compiled hook {name} is {what} (set it to a module-level @njit function)")
        out.append(f)
    return tuple(out)


def _cache_key(hooks) -> tuple[str, bool]:
    """A key naming the hooks and hashing their source files; whether the loop may be cached (not
    when a hook has no source file, e.g. defined in an interactive session)."""
    digest = hashlib.sha256()
    names = []
    for f in hooks:
        py = f.py_func
        names.append(f"{py.__module__}.{py.__qualname__}")
        try:
            path = inspect.getsourcefile(py)
            with open(path, "rb") as fh:
                digest.update(fh.read())
        except (OSError, TypeError):
            return "|".join(names), False
    return "|".join(names) + ":" + digest.hexdigest(), True


def _lean(f, done=None):
    """The hook f compiled without numba's runtime (NRT): no reference counting of the state's
    arrays at each call (they stay alive in Python meanwhile), 1.4-3x faster per access; it may
    not allocate or raise with non-constant arguments. A copy of the function (f itself, its own
    compilations and its numba cache are untouched; the loops' cache holds the lean code); the
    @njit functions it calls through its globals (helpers) are made lean the same way."""
    done = {} if done is None else done
    if f in done:
        return done[f]
    py = f.py_func
    g = dict(py.__globals__)
    done[f] = out = njit(_nrt=False, nogil=True)(
        types.FunctionType(py.__code__, g, py.__name__, py.__defaults__, py.__closure__))
    out.py_func.__qualname__ = py.__qualname__ + "__lean"
    for name in py.__code__.co_names:
        v = g.get(name)
        if v is not None and is_jitted(v):
            g[name] = _lean(v, done)
    return out


def _build(hooks, nrt: bool) -> tuple:
    """The loops replay and apply specialized for `hooks` (functions in their globals), the
    hooks compiled lean (see _lean) unless `nrt`."""
    got = _BUILT.get((hooks, nrt))
    if got is None:
        key, cacheable = _cache_key(hooks)
        g = dict(_REPLAY.__globals__)
        done: dict = {}
        g.update(zip(HOOKS, hooks if nrt else tuple(_lean(f, done) for f in hooks)))
        got = []
        for tmpl in (_REPLAY, _APPLY):
            cell = types.CellType(("nrt " if nrt else "lean ") + key)
            fn = types.FunctionType(tmpl.__code__, g, tmpl.__name__, tmpl.__defaults__, (cell,))
            fn.__qualname__ = tmpl.__qualname__
            fn.__doc__ = tmpl.__doc__
            # nogil: the watchdog thread keeps running (its last resort); no NRT: the loops allocate nothing
            got.append(njit(cache=cacheable, nogil=True, _nrt=nrt)(fn))
        got = _BUILT[(hooks, nrt)] = tuple(got)
    return got


class CompiledPolicy(Policy):
    """Base class of policies with compiled hooks (see the module docstring). Subclasses set
    `name`, `handle_arrays`, `state(ctx)` and the hooks; they do not override the Python hooks."""

    name = "compiled"
    handle_arrays: tuple = ()  # ((dtype, initial value), ...): per-handle arrays, state[0], state[1], ...
    # False: the hooks are compiled without numba's runtime (see _lean): faster, but they may not
    # allocate arrays or raise exceptions with non-constant arguments; True allows both
    nrt = False
    on_hit = None
    on_admit = None
    on_evict = None
    on_removed = None

    def state(self, ctx: Context) -> tuple:
        """The policy's fixed-size state: a tuple of numpy arrays (after the handle arrays)."""
        return ()

    # ---- what the core uses ------------------------------------------------------------------

    def init(self, ctx):
        self._hooks = _hooks_of(type(self))
        fixed = self.state(ctx)
        if not isinstance(fixed, tuple) or not all(isinstance(a, np.ndarray) for a in fixed):
            raise CompiledHookError("state(ctx) must return a tuple of numpy arrays")
        self._fixed = fixed
        self._per_handle = [_handle_array(spec, 1024) for spec in self.handle_arrays]
        self._size = 1024
        # through the Python API: the pages it was told are resident, and the victims evict()
        # took out of the policy that the core has not yet reported gone (see evict)
        self._resident = np.zeros(1024, dtype=np.bool_)
        self._taken = np.zeros(0, dtype=np.int64)
        self.arrays = tuple(self._per_handle) + fixed  # what the hooks get as `state`

    def grow(self, n: int) -> None:
        """Make the per-handle arrays hold handles 0 .. n-1 (new entries at their initial value)."""
        if n <= self._size:
            return
        size = max(n, 2 * self._size)
        grown = []
        for a, spec in zip(self._per_handle, self.handle_arrays):
            b = np.empty((size,) + a.shape[1:], dtype=a.dtype)
            b[: len(a)] = a
            b[len(a):] = spec[1]  # the initial value (a tuple: one per column)
            grown.append(b)
        self._per_handle, self._size = grown, size
        self._resident = np.concatenate((self._resident, np.zeros(size - len(self._resident), dtype=np.bool_)))
        self.arrays = tuple(grown) + self._fixed

    def compile_hooks(self, replay: bool = True, apply: bool = True):
        """Compile (or load from numba's cache) the loops for this policy's state types, outside
        any hook's time budget; the replay loop. CompiledHookError when they cannot run."""
        rep, app = _build(self._hooks, bool(self.nrt))
        st = self.arrays
        try:
            sig = (typeof(st), nbtypes.int64, nbtypes.int64)
            self._hooks[2].compile(sig)
            rt = self._hooks[2].overloads[sig].signature.return_type
        except Exception as e:  # noqa: BLE001 - numba's typing errors are long: first line
            raise CompiledHookError(f"on_evict does not compile: {_first_line(e)}") from e
        if not isinstance(rt, nbtypes.Integer):
            raise CompiledHookError(f"on_evict returns {rt}, not an integer handle")
        empty = np.zeros(0, dtype=np.int64)
        try:
            if replay:
                rep(empty, 0, np.zeros(1, dtype=bool), np.zeros(1, dtype=np.int64), 1, 0, st,
                    np.zeros(N_CNT, dtype=np.int64))
            if apply:
                app(OP_HIT, st, empty, empty, -1, 0, self._resident, empty)
        except Exception as e:  # noqa: BLE001
            hint = ("; a hook that allocates or raises with non-constant arguments needs numba's runtime: set "
                    "nrt = True on the policy class" if not self.nrt and "NRT required" in str(e) else "")
            raise CompiledHookError(f"the compiled hooks do not compile: {_first_line(e)}{hint}") from e
        return rep

    def _apply(self, op, ctx, handles, when=None, kinds=None):
        handles = np.asarray(handles, dtype=np.int64)
        if len(handles):
            self.grow(int(handles.max()) + 1)
        if when is None:
            when = ctx.when if ctx.when is not None and len(ctx.when) == len(handles) else \
                np.full(len(handles), ctx.now, dtype=np.int64)
        _build(self._hooks, bool(self.nrt))[1](op, self.arrays, handles, np.asarray(when, dtype=np.int64), -1,
                                               ctx.now, self._resident,
                                               handles if kinds is None else kinds)  # (read for OP_EVENTS only)
        return handles

    def _give_back(self, ctx) -> None:
        """evict()'s victims the core kept (refused, or survivors of reclaim) come back into the
        policy as pages admitted now, before the policy hears of anything else."""
        if len(self._taken):
            back, self._taken = self._taken, self._taken[:0]
            self._apply(OP_ADMIT, ctx, back, np.full(len(back), ctx.now, dtype=np.int64))

    def added(self, ctx, handles):
        self._give_back(ctx)
        self._apply(OP_ADMIT, ctx, handles)

    def accessed(self, ctx, handles):
        self._give_back(ctx)
        self._apply(OP_HIT, ctx, handles)

    def events(self, ctx, handles, is_add):
        """added and accessed calls in one: handle i was admitted (is_add[i]) or hit, in order
        (the reclaim core's stretch of events, one compiled call instead of one per run)."""
        self._give_back(ctx)
        self._apply(OP_EVENTS, ctx, handles, kinds=np.where(is_add, OP_ADMIT, OP_HIT))

    def removed(self, ctx, handles):
        handles = np.asarray(handles, dtype=np.int64)
        if len(self._taken):  # evict() took these out of the policy already
            size = len(self._resident)  # handles issued so far are below it
            gone = is_member(handles, self._taken, size)
            self._taken = self._taken[~is_member(self._taken, handles, size)]
            handles = handles[~gone]
        handles = self._apply(OP_REMOVED, ctx, handles)
        self._resident[handles] = False

    def evict(self, ctx, n):
        """Up to n victims in one compiled call: on_evict, the victim taken out of the policy
        (on_removed) before the next is asked for, so a policy that names one page at a time
        answers the whole request. The core frees what it takes and reports it (removed: not
        passed on again); a victim it keeps comes back as admitted at the policy's next call
        (_give_back). A first answer that is not a resident page is returned as it is, for the
        core's check; after some victims it ends the answer (the policy has no more)."""
        self._give_back(ctx)
        if n <= 0:
            return []
        inc = -1 if ctx.incoming is None else int(ctx.incoming)
        out = np.empty(int(n), dtype=np.int64)
        k = int(_build(self._hooks, bool(self.nrt))[1](OP_EVICT, self.arrays, out, out[:0], inc, ctx.now,
                                                       self._resident, out[:0]))
        self._taken = out[:k].copy()
        return out[: k if k else 1].tolist()


def _handle_array(spec, n: int) -> np.ndarray:
    """A per-handle array for handles 0 .. n-1 from its spec (dtype, initial value or tuple of
    initial values, one per column)."""
    try:
        dtype, fill = spec
        out = np.empty((n, len(fill)) if isinstance(fill, tuple) else n, dtype=dtype)
        out[:] = fill
        return out
    except (TypeError, ValueError) as e:
        raise CompiledHookError(f"handle_arrays: {spec!r} is not (dtype, initial value): {e}") from None


def _first_line(e: BaseException) -> str:
    """The gist of a (numba) error in one line: its first lines without numba's context lines and
    terminal colours (the whole error goes into the exit record's traceback)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    skip = ("During:", "File ", "<source elided>", "^", "Failed in nopython mode pipeline")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(skip)]
    return f"{type(e).__name__}: {lines[0] if lines else text.strip()[:200]}"
