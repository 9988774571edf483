"""Where the compiled hot path spends its time, by compiled function (perf record with a perf map;
see reclaim_ext.bench.perfprofile). Run: python benchmarks/perf_profile.py [--policy P] [--top N]"""

import sys

from reclaim_ext.bench.perfprofile import main

sys.exit(main())
