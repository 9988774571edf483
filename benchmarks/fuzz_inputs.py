"""Fuzz every input parser: trace readers, size and spec parsers, the CLI (see
reclaim_ext.bench.fuzz). Run: python benchmarks/fuzz_inputs.py [--inputs N] [--targets ...]"""

import sys

from reclaim_ext.bench.fuzz import main

sys.exit(main())
