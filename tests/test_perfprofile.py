"""The compiled-code profile's perf map (bench.perfprofile): it names functions compiled in the
process, at their addresses, and reads numba's mangled names back as module.function."""

from __future__ import annotations

import weakref

import numpy as np
from numba import njit

from reclaim_ext.bench.perfprofile import compiled_symbols, short_name, write_perf_map


@njit  # not cached: compiled in this process, so its symbols are there to name
def _profiled_sum_of_squares(a):
    s = 0
    for x in a:
        s += x * x
    return s


def test_perf_map_names_a_function_compiled_here_at_its_address(tmp_path):
    assert _profiled_sum_of_squares(np.arange(4)) == 14
    path, n = write_perf_map(str(tmp_path / "perf.map"))
    rows = [line.split(" ", 2) for line in open(path).read().splitlines()]
    assert n == len(rows) >= 1
    names = {name: (int(a, 16), int(size, 16)) for a, size, name in rows}
    key = "test_perfprofile._profiled_sum_of_squares"
    assert key in names, sorted(names)[:10]
    addr, size = names[key]
    assert addr > 0 and size > 0
    addrs = sorted(int(a, 16) for a, _, _ in rows)
    assert addrs == sorted(set(addrs))  # one row per address


def test_short_name_reads_numba_mangling():
    assert short_name("_ZN11reclaim_ext4core6access12run_accessesB3v23B36c8tJTIeFIjxE5ArrayIxLi1E1C7mutable7alignedE") \
        == "reclaim_ext.core.access.run_accesses"
    assert short_name("_ZN7cpython11reclaim_ext8policies7classic16classic_segmentsB3v20B38c8tE") \
        == "reclaim_ext.policies.classic.classic_segments"
    assert short_name("NRT_decref") == "NRT_decref"  # not numba's: left as it is


def test_compiled_symbols_passes_over_dead_weak_proxies():
    """gc.get_objects() can hold a weak proxy whose object is gone (isinstance on it raises
    ReferenceError): compiled_symbols skips it."""
    class Gone:
        pass

    obj = Gone()
    proxy = weakref.proxy(obj)
    del obj
    assert isinstance(compiled_symbols(), dict)
    del proxy
