"""Classic fast-mode throughput against libCacheSim LRU on the same Zipf trace (see
reclaim_ext.bench.throughput). Run: python benchmarks/throughput.py [--accesses N ...]"""

import sys

from reclaim_ext.bench.throughput import main

sys.exit(main())
