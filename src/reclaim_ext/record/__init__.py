"""Recording real programs into native traces (`reclaim-ext record`, docs/traces.md, "Recording
real programs").

- lackey.py   parse valgrind lackey's `--trace-mem=yes` text, vectorized, chunk by chunk
- maps.py     /proc/PID/maps snapshots and address -> mapping lookup
- classify.py memory accesses + a maps snapshot -> trace records (ANON / FILE_MMAP / FILE_EXEC)
- fold.py     drop repeated touches of a page by the same process within a short window
- fdio.py     the read()/write() rules both syscall parsers share: calls, files, positions, records
- strace.py   strace lines -> FILE_FD read()/write() records per page (mode syscalls)
- vgsys.py    valgrind's --trace-syscalls lines -> FILE_FD records, in order among lackey's (mode all)
- runner.py   run the program under valgrind or strace, stream into write_native
- recipes.py  the built-in workloads (`--recipe`), and their recordings cached for the suite
- check.py    the trace against the kernel: peak RSS and page cache of a native run (`--check`)
"""

from .classify import FileIds, PidIds, classify
from .fold import Folder, fold
from .lackey import parse_lackey
from .maps import MapsSnapshot, MapsTracker, parse_maps
from .strace import StraceParser
from .vgsys import VgSyscalls

__all__ = ["FileIds", "Folder", "MapsSnapshot", "MapsTracker", "PidIds", "StraceParser", "VgSyscalls", "classify",
           "fold", "parse_lackey", "parse_maps"]
