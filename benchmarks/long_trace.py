"""Write a long recorded-trace file for the long-run measurements (docs/hardening.md, "Long runs").

The records are those of the `zipf` workload (its default 65,536 pages and alpha, or -p values),
streamed chunk by chunk into a libCacheSim oracleGeneral file (24-byte records {u32 clock,
u64 obj_id, u32 obj_size, i64 next_access_vtime = -1}) or a native one. Nothing of the trace's
length is held in memory. Replay it with

    /usr/bin/time -v reclaim-ext run --trace FILE --format oraclegeneral --memory 64MiB --json out.json

and delete the file afterwards (100M oracleGeneral records are 2.4 GB).

    python benchmarks/long_trace.py --records 100000000 --out /tmp/z100M.oracleGeneral.bin
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from reclaim_ext.trace import make_workload
from reclaim_ext.trace.readers import write_native

ORACLE = np.dtype([("clock_time", "<u4"), ("obj_id", "<u8"), ("obj_size", "<u4"), ("next_access_vtime", "<i8")])
assert ORACLE.itemsize == 24


def write_oracle(path: str, trace) -> int:
    n = 0
    with open(path, "wb") as out:
        for rec in trace.chunks():
            raw = np.empty(len(rec), dtype=ORACLE)
            raw["clock_time"] = (np.arange(n, n + len(rec)) // 1000).astype(np.uint32)
            raw["obj_id"] = rec["page"]
            raw["obj_size"] = 4096
            raw["next_access_vtime"] = -1
            out.write(raw.tobytes())
            n += len(rec)
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--format", choices=("oraclegeneral", "native"), default="oraclegeneral")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-p", action="append", default=[], metavar="KEY=VALUE", help="zipf workload parameter")
    args = ap.parse_args()
    params = {k: float(v) if "." in v else int(v) for k, v in (s.split("=", 1) for s in args.p)}
    trace = make_workload("zipf", seed=args.seed, accesses=args.records, **params)
    t = time.perf_counter()
    n = write_oracle(args.out, trace) if args.format == "oraclegeneral" else write_native(args.out, trace)
    print(f"{args.out}: {n:,} records ({args.format}) in {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
