"""The trace record: one page access.

A trace is a stream of numpy structured arrays of RECORD_DTYPE, read in chunks so a trace larger
than memory streams.

Fields:
  pid   process that makes the access (0..65535)
  kind  Kind below
  write 1 for a store / write(), 0 for a load / read()
  file  file id for file kinds (ignored, 0, for ANON)
  page  ANON: virtual page number in the process's address space (< 2**36);
        file kinds: page index inside the file (< 2**32)
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Kind(IntEnum):
    ANON = 0       # anonymous load/store through the process's page tables
    FILE_MMAP = 1  # file load/store through a shared file mapping
    FILE_FD = 2    # file read()/write() through the page cache (software path)
    FILE_EXEC = 3  # instruction fetch from an executable file mapping (VM_EXEC)


RECORD_DTYPE = np.dtype(
    [("pid", "<u2"), ("kind", "u1"), ("write", "u1"), ("file", "<u4"), ("page", "<u8")]
)
assert RECORD_DTYPE.itemsize == 16

MAX_PID = 2**16 - 1
MAX_ANON_PAGE = 2**36 - 1
MAX_FILE_PAGE = 2**32 - 1
MAX_FILE = 2**32 - 1


def make_records(n: int) -> np.ndarray:
    """An empty (zeroed) record array of length n."""
    return np.zeros(n, dtype=RECORD_DTYPE)
