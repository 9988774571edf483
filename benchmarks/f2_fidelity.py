"""The F2 fidelity table (docs/hardening.md, "F2 fidelity"): examples/classic_ext.py and
examples/mglru_ext.py against the built-in classic and MGLRU on B1, B4 and B7
(reclaim_ext.bench.f2 has the workloads and the metric).

    python benchmarks/f2_fidelity.py                 # full size: 1M accesses, 16 MiB
    python benchmarks/f2_fidelity.py --reduced       # the CI size (tests/test_stress.py)

Exit code 1 when a pair misses the check.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from reclaim_ext.bench.f2 import FULL, PAIRS, REDUCED, f2_rows, markdown, verdict

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reduced", action="store_true", help="the CI size")
    ap.add_argument("--accesses", type=int)
    ap.add_argument("--memory", type=int, help="pages (B1, B7; B4 uses 10 %% of its objects)")
    ap.add_argument("--traces", default=str(ROOT.parent / "shared" / "traces"))
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()
    size = dict(REDUCED if args.reduced else FULL)
    if args.accesses:
        size["accesses"] = args.accesses
    if args.memory:
        size["memory"] = args.memory
    t = time.perf_counter()
    rows = f2_rows(size["accesses"], size["memory"], ROOT / "examples", Path(args.traces))
    print(markdown(rows))
    print(f"\n({time.perf_counter() - t:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0 if all(verdict(rows, b)["ok"] for b, _ in PAIRS) else 1


if __name__ == "__main__":
    sys.exit(main())
