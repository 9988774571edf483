"""Markdown table for docs/fidelity.md from the JSON of `reclaim-ext validate kernel --suite`.

Run: reclaim-ext validate kernel --suite --out docs/data/fidelity.json
     python benchmarks/fidelity_table.py docs/data/fidelity.json
(the same as `reclaim-ext validate kernel --table docs/data/fidelity.json`)
"""

import json
import sys

from reclaim_ext.validate.suite import table_markdown

if __name__ == "__main__":
    paths = sys.argv[1:] or ["docs/data/fidelity.json"]
    for path in paths:
        with open(path) as fh:
            sys.stdout.write(table_markdown(json.load(fh)))
