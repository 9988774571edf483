"""Where the compiled hot path spends its time, by compiled function: `perf record` of one replay
of the throughput benchmark's trace (bench.throughput), with a perf map so perf can name numba's
machine code.

numba compiles into memory that perf cannot name (its samples read "[unknown]" or "[JIT]"). perf
reads /tmp/perf-<pid>.map (address, size, name per line) for such code; `write_perf_map` writes
one for every function compiled in this process. A function loaded from numba's cache has no
symbol names left to read, so the profile compiles the hot path afresh into a temporary cache
(about a minute). LLVM inlines small helpers into their callers: their time counts as the
caller's.

Run: python benchmarks/perf_profile.py [--policy classic] [--accesses N] [--top 30]
     python benchmarks/perf_profile.py --workload mixed [--memory 64MiB]  (a built-in workload, as
     `reclaim-ext run` replays it: swap as large as memory)
Needs the `perf` tool (linux-perf) and permission to record this process.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def compiled_symbols() -> dict[int, str]:
    """Address -> name of every function numba compiled in this process (not those loaded from
    its cache: their libraries keep machine code only)."""
    from numba.core.registry import CPUDispatcher

    out = {}
    for obj in gc.get_objects():
        if not issubclass(type(obj), CPUDispatcher):  # (not isinstance: a dead weak proxy raises)
            continue
        for cres in list(obj.overloads.values()):
            lib = cres.library
            mod = getattr(lib, "_final_module", None)
            engine = getattr(getattr(getattr(lib, "_codegen", None), "_engine", None), "_ee", None)
            if mod is None or engine is None:
                continue
            for fn in mod.functions:
                if fn.is_declaration:
                    continue
                addr = engine.get_function_address(fn.name)
                if addr:
                    out[addr] = fn.name
    return out


def short_name(mangled: str) -> str:
    """module.function from numba's mangled name (_ZN11reclaim_ext4core6access12run_accessesB3v...)."""
    m = re.match(r"_ZN(?:7cpython)?((?:\d+[A-Za-z_]\w*?)+?)B\d+v\d+", mangled)
    if not m:
        return mangled
    parts, s = [], m.group(1)
    while s:
        n = re.match(r"\d+", s).group(0)
        parts.append(s[len(n): len(n) + int(n)])
        s = s[len(n) + int(n):]
    return ".".join(parts)


def write_perf_map(path: str | None = None) -> tuple[str, int]:
    """The perf map of this process's compiled functions (each one's size: up to the next
    function's address). Returns (its path, functions written)."""
    syms = compiled_symbols()
    path = path or f"/tmp/perf-{os.getpid()}.map"
    addrs = sorted(syms)
    with open(path, "w") as fh:
        for k, a in enumerate(addrs):
            nxt = addrs[k + 1] if k + 1 < len(addrs) else a + 4096
            size = nxt - a if 0 < nxt - a < 1 << 20 else 4096
            fh.write(f"{a:x} {size:x} {short_name(syms[a])}\n")
    return path, len(addrs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="perf_profile", description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default="classic")
    ap.add_argument("--pages", type=int, default=1_000_000)
    ap.add_argument("--accesses", type=int, default=10_000_000)
    ap.add_argument("--memory-fraction", type=float, default=0.10)
    ap.add_argument("--workload", default=None,
                    help="profile a built-in workload (as `reclaim-ext run --workload`) instead of the Zipf trace")
    ap.add_argument("--memory", default="64MiB", help="memory for --workload (default 64MiB)")
    ap.add_argument("--freq", type=int, default=2000, help="perf samples per second (default 2000)")
    ap.add_argument("--top", type=int, default=30, help="functions to print (default 30)")
    ap.add_argument("--out", default=None, help="keep perf's data in this file (default: a temporary one)")
    args = ap.parse_args(argv)
    if shutil.which("perf") is None:
        print("perf_profile: error: the perf tool is not installed (Debian: apt-get install linux-perf)",
              file=sys.stderr)
        return 2
    if "reclaim_ext.core.access" in sys.modules:
        print("perf_profile: error: the hot path was imported before the profile could set numba's cache aside "
              "(run it as its own process)", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="reclaim-ext-perf-")
    os.environ["NUMBA_CACHE_DIR"] = tmp  # compile afresh: only code compiled here has names
    if "numba" in sys.modules:
        sys.modules["numba"].config.CACHE_DIR = tmp
    from ..api import RunConfig, run
    from ..errors import ReclaimExtError
    from ..trace import ArrayTrace
    from .throughput import build_trace

    print(f"perf_profile: compiling {args.policy}'s hot path afresh (about a minute)", file=sys.stderr)
    try:
        if args.workload is not None:  # the workload's own trace, replayed once untimed first
            trace = warm = None
            cfg = RunConfig(policy=args.policy, workload=args.workload, memory=args.memory)
        else:
            _, trace = build_trace(args.pages, args.accesses, 1.0, 42)
            cfg = RunConfig(policy=args.policy, workload=None, memory=int(args.pages * args.memory_fraction), swap=0)
            warm = ArrayTrace("warm-up", trace.records[:2_000_000])  # far enough to reclaim
        run(cfg, trace=warm)
    except ReclaimExtError as e:  # a bad --policy, --workload or --memory
        print(f"perf_profile: error: {e}", file=sys.stderr)
        return 2
    path, nsym = write_perf_map()
    data = args.out or os.path.join(tmp, "perf.data")
    rec = subprocess.Popen(["perf", "record", "-F", str(args.freq), "-p", str(os.getpid()), "-o", data],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)  # perf attaches
    t0 = time.perf_counter()
    res = run(cfg, trace=trace)
    wall = time.perf_counter() - t0
    rec.send_signal(signal.SIGINT)
    err = rec.communicate()[1].decode(errors="replace")
    if rec.returncode not in (0, -signal.SIGINT) or not os.path.exists(data):
        print(f"perf_profile: error: perf record failed: {err.strip()[-300:]}", file=sys.stderr)
        return 2
    report = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "sym", "--stdio"],
                            capture_output=True, text=True)
    rows = [line for line in report.stdout.splitlines() if line.strip() and not line.startswith("#")]
    print(f"{args.policy}: {res['accesses']:,} accesses in {wall:.2f} s ({res['accesses_per_second'] / 1e6:.2f} M/s) "
          f"under perf; {nsym} compiled functions named in {path}")
    for line in rows[: args.top]:
        print("  " + line.replace("[.] ", "").strip())
    os.remove(path)
    if not args.out:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0
