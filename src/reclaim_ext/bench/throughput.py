"""Throughput benchmark: classic and MGLRU fast mode against libCacheSim's LRU on the same Zipf trace.

The trace: Zipf(1.0) over 1M pages, 10M read() accesses (numpy seed 42, ranks
permuted onto ids). reclaim-ext replays it with each policy (default classic and mglru) at memory = 10% of the pages;
libcachesim 0.3.5 (the `bench` extra) replays the same ids with LRU at the same capacity, in the
same process, timed the same way (replay call only). Prints both rates and their ratio.

Each policy first replays the trace's first WARMUP accesses untimed (--warmup; 0: none): that
loads its compiled code from numba's cache, a once-per-process cost that `reclaim-ext run`
reports as its start time, not part of the replay rate. libCacheSim has no such step.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time

import numpy as np

from ..api import RunConfig, run
from ..core.engine import OutOfMemory
from ..errors import ConfigError, ReclaimExtError
from ..trace import ArrayTrace, Kind, zipf_ids
from ..trace.generators import MAX_ACCESSES, MAX_PAGES
from ..trace.record import make_records
from .reference import write_oracle_general

WARMUP = 100_000  # accesses each policy replays untimed first (--warmup)


def build_trace(pages: int, accesses: int, alpha: float, seed: int) -> tuple[np.ndarray, ArrayTrace]:
    ids = zipf_ids(pages, accesses, alpha, seed)
    rec = make_records(len(ids))
    rec["kind"] = Kind.FILE_FD
    rec["page"] = ids - 1
    return ids, ArrayTrace("zipf-bench", rec, {"pages": pages, "accesses": accesses, "alpha": alpha, "seed": seed})


def libcachesim_lru(ids: np.ndarray, capacity: int) -> dict | None:
    """Replay ids through libcachesim's LRU (C++ replay); None if libcachesim is not installed.
    A libcachesim that fails (another version than the bench extra's) is a ReclaimExtError."""
    try:
        import libcachesim as lcs
    except ImportError:
        return None
    try:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "zipf.oracleGeneral.bin")
            write_oracle_general(ids, path)
            reader = lcs.TraceReader(path, lcs.TraceType.ORACLE_GENERAL_TRACE,
                                     lcs.ReaderInitParam(ignore_obj_size=True))
            cache = lcs.LRU(capacity)
            t0 = time.perf_counter()
            mr, _ = cache.process_trace(reader)
            wall = time.perf_counter() - t0
    except Exception as e:  # the peer library's own failure, whatever its type
        version = getattr(lcs, "__version__", "?")
        raise ReclaimExtError(f"libcachesim {version} failed ({type(e).__name__}: {e}); the bench extra pins "
                              "libcachesim==0.3.5 (pip install -e '.[bench]')") from None
    return {"algo": "libcachesim LRU", "wall_seconds": wall, "requests_per_second": len(ids) / wall, "miss_ratio": mr}


class _Parser(argparse.ArgumentParser):
    """Bad options as a ConfigError (one error line), not a usage dump."""

    def error(self, message: str):
        raise ConfigError(f"{message} (see `reclaim-ext bench --help`)")


def _check_json_out(path: str | None) -> None:
    """Fail before the runs, not after them, when --json FILE cannot be written."""
    if not path or path == "-":
        return
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ConfigError(f"--json {path}: is a directory")
    if not os.path.isdir(parent):
        raise ConfigError(f"--json {path}: no such directory {parent}")
    if not os.access(path if os.path.exists(path) else parent, os.W_OK):
        raise ConfigError(f"--json {path}: not writable")


def main(argv: list[str] | None = None) -> int:
    """The benchmark; bad input is one `reclaim-ext: error: bench: ...` line and exit code 2."""
    try:
        return _main(argv)
    except OutOfMemory as e:
        print(f"reclaim-ext: bench: {e}", file=sys.stderr)
        return 3
    except ReclaimExtError as e:
        print(f"reclaim-ext: error: bench: {e}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None) -> int:
    ap = _Parser(prog="reclaim-ext bench", description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=1_000_000)
    ap.add_argument("--accesses", type=int, default=10_000_000)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--memory-fraction", type=float, default=0.10)
    ap.add_argument("--policy", default="classic,mglru", help="comma-separated policies to time")
    ap.add_argument("--warmup", type=int, default=WARMUP,
                    help=f"accesses each policy replays untimed first, loading its compiled code (default {WARMUP:,})")
    ap.add_argument("--json", dest="json_out", help="write the results as JSON to this file ('-' = stdout)")
    args = ap.parse_args(argv)
    if not 0 < args.pages <= MAX_PAGES:
        raise ConfigError(f"--pages {args.pages}: must be in 1..{MAX_PAGES}")
    if not 0 < args.accesses <= MAX_ACCESSES:
        raise ConfigError(f"--accesses {args.accesses}: must be in 1..{MAX_ACCESSES}")
    if args.warmup < 0:
        raise ConfigError(f"--warmup {args.warmup}: must be >= 0")
    if not 0 < args.memory_fraction <= 1:
        raise ConfigError(f"--memory-fraction {args.memory_fraction}: must be in (0, 1]")
    if not args.alpha > 0 or args.alpha == float("inf"):
        raise ConfigError(f"--alpha {args.alpha}: must be a finite number > 0")
    memory = int(args.pages * args.memory_fraction)
    if memory < 64:
        raise ConfigError(f"--pages {args.pages} x --memory-fraction {args.memory_fraction} = {memory} pages of "
                          "memory; need at least 64")
    policies = [p.strip() for p in args.policy.split(",") if p.strip()]
    if not policies:
        raise ConfigError(f"--policy {args.policy!r}: no policy")
    for policy in policies:  # an unknown policy fails before the trace is made
        RunConfig(policy=policy, workload=None, memory=memory, swap=0).validate()
    _check_json_out(args.json_out)
    try:
        ids, trace = build_trace(args.pages, args.accesses, args.alpha, args.seed)
    except MemoryError:
        raise ConfigError(f"--accesses {args.accesses:,}: not enough host memory for the trace") from None
    runs = []
    warm = min(args.warmup, args.accesses)
    for policy in policies:
        if warm:
            run(RunConfig(policy=policy, workload=None, memory=memory, swap=0),
                trace=ArrayTrace("warm-up", trace.records[:warm]))
        res = run(RunConfig(policy=policy, workload=None, memory=memory, swap=0), trace=trace)
        runs.append({
            "algo": f"reclaim-ext {policy} (fast)", "policy": policy, "wall_seconds": res["wall_seconds"],
            "requests_per_second": res["accesses_per_second"], "miss_ratio": res["miss_ratio"],
        })
    peer = libcachesim_lru(ids, memory)
    if peer is None:
        print("reclaim-ext: warning: bench: libcachesim is not installed (pip install -e '.[bench]'): "
              "no peer rate, no ratio", file=sys.stderr)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for r in runs:
        r["ratio"] = r["requests_per_second"] / peer["requests_per_second"] if peer else None
    out = {"trace": trace.params, "memory_pages": memory, "warmup_accesses": warm, "runs": runs, "ours": runs[0], "peer": peer,
           "ratio": runs[0]["ratio"], "max_rss_mib": rss_mib}
    if args.json_out == "-":
        print(json.dumps(out, indent=2))
        return 0
    if args.json_out:
        try:
            with open(args.json_out, "w") as fh:
                json.dump(out, fh, indent=2)
        except OSError as e:
            raise ConfigError(f"--json {args.json_out}: {e.strerror or e}") from None
    print(f"trace: Zipf({args.alpha}) {args.accesses:,} reads over {args.pages:,} pages; memory {memory:,} pages"
          + (f"; each policy first replays {warm:,} of them untimed (warm-up)" if warm else ""))
    for r in runs + ([peer] if peer else []):
        print(f"  {r['algo']:28s} {r['requests_per_second'] / 1e6:6.2f} M req/s  "
              f"wall {r['wall_seconds']:6.2f} s  miss ratio {r['miss_ratio']:.4f}")
    if peer:
        for r in runs:
            print(f"  ratio ({r['policy']} / libCacheSim LRU): {r['ratio']:.2f}x")
    print(f"  peak RSS of this process: {rss_mib:.0f} MiB")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
