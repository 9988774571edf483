"""Throughput benchmark: classic and MGLRU fast mode against libCacheSim's LRU on the same Zipf trace.

The trace: Zipf(1.0) over 1M pages, 10M read() accesses (numpy seed 42, ranks
permuted onto ids). reclaim-ext replays it with each policy (default classic and mglru) at memory = 10% of the pages;
libcachesim 0.3.5 (the `bench` extra) replays the same ids with LRU at the same capacity, in the
same process, timed the same way (replay call only). Prints both rates and their ratio.

Each policy first replays the trace's first WARMUP accesses untimed (--warmup; 0: none), at a
memory a tenth of that so that kswapd reclaims in it (warm_up): that loads its compiled code from
numba's cache, or compiles it on a first run after an install, a once-per-process cost that is
not part of the replay rate. libCacheSim has no such step.

With --repeat N the policies and libCacheSim replay the trace N times in turn (round r: each
policy, then libCacheSim), and the rates and ratios reported are the medians over the rounds
(each round's are in the JSON): on a shared machine whose speed drifts, a ratio of two replays
made seconds apart is steadier than one of two single runs.
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


def libcachesim_replays(ids: np.ndarray, capacity: int, repeat: int):
    """Replays of ids through libcachesim's LRU (C++ replay) at `capacity`, one result each, as a
    generator (a caller interleaves its own runs; the trace file is written once); None if
    libcachesim is not installed. A libcachesim that fails (another version than the bench
    extra's) is a ReclaimExtError."""
    try:
        import libcachesim as lcs
    except ImportError:
        return None
    return _lcs_replays(lcs, ids, capacity, repeat)


def _lcs_replays(lcs, ids: np.ndarray, capacity: int, repeat: int):
    try:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "zipf.oracleGeneral.bin")
            write_oracle_general(ids, path)
            for _ in range(repeat):
                reader = lcs.TraceReader(path, lcs.TraceType.ORACLE_GENERAL_TRACE,
                                         lcs.ReaderInitParam(ignore_obj_size=True))
                cache = lcs.LRU(capacity)
                t0 = time.perf_counter()
                mr, _ = cache.process_trace(reader)
                wall = time.perf_counter() - t0
                yield {"algo": "libcachesim LRU", "wall_seconds": wall, "requests_per_second": len(ids) / wall,
                       "miss_ratio": mr}
    except ReclaimExtError:
        raise
    except Exception as e:  # the peer library's own failure, whatever its type
        version = getattr(lcs, "__version__", "?")
        raise ReclaimExtError(f"libcachesim {version} failed ({type(e).__name__}: {e}); the bench extra pins "
                              "libcachesim==0.3.5 (pip install -e '.[bench]')") from None


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


def warm_up(policies: list[str], trace: ArrayTrace, memory: int, warm: int) -> dict:
    """Replay the trace's first `warm` accesses untimed with each policy, so that the timed
    replays find the compiled code they call loaded, or compiled on a first run after an install.
    The warm-up's memory is a tenth of its accesses (at most the benchmark's, at least 64 pages),
    so kswapd reclaims in it as in the timed replays: at the benchmark's own memory a short
    prefix of the trace fits, and reclaim's code would first load (or compile) inside the first
    timed replay. Returns the warm-up's memory and each policy's kswapd wakeups in it."""
    wmem = max(64, min(memory, warm // 10))
    wakeups = {}
    if warm:
        for policy in policies:
            res = run(RunConfig(policy=policy, workload=None, memory=wmem, swap=0),
                      trace=ArrayTrace("warm-up", trace.records[:warm]))
            wakeups[policy] = int(res["vmstat"].get("kswapd_wakeups", 0))
    return {"memory_pages": wmem if warm else 0, "kswapd_wakeups": wakeups}


def _median_run(results: list[dict], algo: str) -> dict:
    """One entry for results of the same replay in several rounds: the median of each rate, time
    and ratio (the miss ratio is the same in every round)."""
    out = {"algo": algo, **{k: v for k, v in results[0].items() if k not in ("wall_seconds", "requests_per_second",
                                                                             "ratio")}}
    for key in ("wall_seconds", "requests_per_second", "ratio"):
        values = [r[key] for r in results if r.get(key) is not None]
        out[key] = float(np.median(values)) if values else None
    return out


def _main(argv: list[str] | None) -> int:
    ap = _Parser(prog="reclaim-ext bench", description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=1_000_000)
    ap.add_argument("--accesses", type=int, default=10_000_000)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--memory-fraction", type=float, default=0.10)
    ap.add_argument("--policy", default="classic,mglru", help="comma-separated policies to time")
    ap.add_argument("--warmup", type=int, default=WARMUP,
                    help=f"accesses each policy replays untimed first, at a tenth of that in pages so that kswapd runs, "
                         f"loading its compiled code (default {WARMUP:,})")
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds of replays, each policy then libCacheSim in turn; the medians are reported (default 1)")
    ap.add_argument("--json", dest="json_out", help="write the results as JSON to this file ('-' = stdout)")
    args = ap.parse_args(argv)
    if not 0 < args.pages <= MAX_PAGES:
        raise ConfigError(f"--pages {args.pages}: must be in 1..{MAX_PAGES}")
    if not 0 < args.accesses <= MAX_ACCESSES:
        raise ConfigError(f"--accesses {args.accesses}: must be in 1..{MAX_ACCESSES}")
    if args.warmup < 0:
        raise ConfigError(f"--warmup {args.warmup}: must be >= 0")
    if not 1 <= args.repeat <= 100:
        raise ConfigError(f"--repeat {args.repeat}: must be in 1..100")
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
    warm = min(args.warmup, args.accesses)
    warmup = warm_up(policies, trace, memory, warm)
    peer_runs = libcachesim_replays(ids, memory, args.repeat)
    if peer_runs is None:
        print("reclaim-ext: warning: bench: libcachesim is not installed (pip install -e '.[bench]'): "
              "no peer rate, no ratio", file=sys.stderr)
    rounds = []
    for _ in range(args.repeat):
        ours = []
        for policy in policies:
            res = run(RunConfig(policy=policy, workload=None, memory=memory, swap=0), trace=trace)
            ours.append({"policy": policy, "wall_seconds": res["wall_seconds"],
                         "requests_per_second": res["accesses_per_second"], "miss_ratio": res["miss_ratio"]})
        peer = next(peer_runs) if peer_runs is not None else None
        for r in ours:
            r["ratio"] = r["requests_per_second"] / peer["requests_per_second"] if peer else None
        rounds.append({"runs": ours, "peer": peer})
    runs = [_median_run([rd["runs"][k] for rd in rounds], f"reclaim-ext {p} (fast)") for k, p in enumerate(policies)]
    peer = _median_run([rd["peer"] for rd in rounds], "libcachesim LRU") if peer_runs is not None else None
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"trace": trace.params, "memory_pages": memory, "warmup_accesses": warm, "warmup": warmup,
           "repeat": args.repeat, "runs": runs,
           "ours": runs[0], "peer": peer, "ratio": runs[0]["ratio"], "rounds": rounds, "max_rss_mib": rss_mib}
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
          + (f"; each policy first replays {warm:,} of them untimed at {warmup['memory_pages']:,} pages (warm-up)"
             if warm else "")
          + (f"; medians of {args.repeat} rounds" if args.repeat > 1 else ""))
    for r in runs + ([peer] if peer else []):
        print(f"  {r['algo']:28s} {r['requests_per_second'] / 1e6:6.2f} M req/s  "
              f"wall {r['wall_seconds']:6.2f} s  miss ratio {r['miss_ratio']:.4f}")
    if peer:
        for k, r in enumerate(runs):
            each = ", ".join(f"{rd['runs'][k]['ratio']:.2f}" for rd in rounds)
            print(f"  ratio ({r['policy']} / libCacheSim LRU): {r['ratio']:.2f}x"
                  + (f" (rounds: {each})" if args.repeat > 1 else ""))
    print(f"  peak RSS of this process: {rss_mib:.0f} MiB")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
