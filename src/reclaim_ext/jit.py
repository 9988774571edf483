"""The compiled hot path and its cache.

The hot path is compiled with numba (`@njit(cache=True)`): the first run after an install or an
upgrade compiles it once and numba keeps the machine code in ~/.cache/reclaim-ext/numba/<hash>,
named by the content of every source file with compiled code (reclaim_ext/__init__.py: numba
alone would miss an edit to a compiled helper that another module's function inlines); later
runs load it. `announce_compile` says so on stderr, once per process, when the cache does
not hold the current code yet.
"""

from __future__ import annotations

import sys

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

_announced = False
# loop iterations between a prefetch and the access it is for: far enough ahead for a line that
# comes from memory, not only from L3, in the hot path's loops with small bodies (translate, the
# access path, the policy's events). At 8, translate's lookups ran as fast as with no prefetch at
# all (docs/results.md, seventeenth step: the Zipf benchmark 12-14 % faster at 16, 32 or 64). A
# loop of this many iterations or fewer (a reclaim batch of SWAP_CLUSTER_MAX folios) prefetches nothing.
PREFETCH_AHEAD = 32

# A compiled function that allocates nothing and returns no array: numba's reference counting
# is left out of it (`_nrt=False`). Numba otherwise takes a reference (an atomic increment, and
# a decrement on the way out) to every array argument at each call, unless its pass that prunes
# them can pair them up, which fails in a function with several branches: for the allocator's
# `_alloc` (17 references taken per call) that was a quarter to a third of a Zipf run's time.
# Such a function must not create arrays (np.empty, a slice it returns), which numba refuses to
# compile without NRT or which would outlive their owner, nor call a compiled function that
# returns one: a callee not compiled yet can be compiled under the caller's flags and then fails
# to type; this shows only from an empty cache, in some orders
# (tests/test_jit.py::test_a_first_run_compiles_from_an_empty_cache).
noref = njit(cache=True, _nrt=False)


def cache_is_warm(hot_path) -> bool:
    """Whether numba's cache holds every function of `hot_path` (the compiled functions every
    simulation calls first, named by the caller) for the current sources: numba's own test, its
    index's stamp of the source file (a hash of the content in recent numba, so a file touched
    but not changed, as by a checkout, is still warm; its mtime and size in older ones)."""
    for fn in hot_path:
        try:
            if not fn._cache._cache_file._load_index():
                return False
        except Exception:  # another numba layout, an unreadable index: say nothing rather than guess
            return True
    return True


def announce_compile(hot_path) -> None:
    """One line on stderr before the first run after an install or upgrade compiles the hot path
    (`hot_path`: the compiled functions whose cache tells whether a run compiles; others compile,
    in a fraction of a second each, the first time a run needs them)."""
    global _announced
    if _announced:
        return
    _announced = True
    if not cache_is_warm(hot_path):
        print("reclaim-ext: compiling the simulator's hot path with numba (once after an install or "
              "upgrade; later runs start at once)", file=sys.stderr, flush=True)


@intrinsic
def prefetch(typingctx, arr, idx):
    """In compiled code: start loading the cache line of arr[idx] (llvm.prefetch, for reading,
    kept close). A hint with no effect on results: for a random gather whose index is known a few
    iterations ahead, so that a miss does not stall the loop when it gets there."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                            "llvm.prefetch.p0")
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen
