"""valgrind lackey's memory trace (`--tool=lackey --trace-mem=yes`), parsed with numpy.

Lackey prints one line per guest access:

    I  0400d7d4,8      instruction fetch of 8 bytes at 0x0400d7d4
     L 1ffefff8a0,8    load
     S 1ffefff8a0,8    store
     M 0402a060,4      modify (load then store of the same bytes)

and valgrind's own messages as `==PID== text`. `parse_lackey(buf)` parses the complete lines of a
byte buffer at once (no Python code per line) and says how many bytes it consumed; the caller keeps
the rest (a partial last line) for the next chunk. Lines that are neither accesses nor well formed
are skipped and counted.
"""

from __future__ import annotations

import numpy as np

OP_I, OP_L, OP_S, OP_M = 0, 1, 2, 3

_HEX = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX[_c] = 10 + _i
_DEC = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789"):
    _DEC[_c] = _i
_OP = np.full(256, 255, dtype=np.uint8)
_OP[ord("L")], _OP[ord("S")], _OP[ord("M")] = OP_L, OP_S, OP_M


class Parsed:
    """Accesses of one parsed buffer: op (OP_*), addr (u64), size (u32), at (i64: the byte offset of
    each access's line in the buffer, to order other lines of the stream against them); `skipped`
    lines that were not accesses (valgrind messages, malformed text); `consumed` bytes (up to the
    last newline)."""

    __slots__ = ("op", "addr", "size", "at", "skipped", "consumed", "lines")

    def __init__(self, op, addr, size, skipped, consumed, lines, at=None):
        self.op, self.addr, self.size = op, addr, size
        self.at = np.zeros(0, np.int64) if at is None else at
        self.skipped, self.consumed, self.lines = skipped, consumed, lines


def parse_lackey(buf) -> Parsed:
    a = np.frombuffer(buf, dtype=np.uint8)
    nl = np.flatnonzero(a == 10)
    if len(nl) == 0:
        e = np.zeros(0, np.uint8)
        return Parsed(e, np.zeros(0, np.uint64), np.zeros(0, np.uint32), 0, 0, 0)
    end = nl
    start = np.empty_like(nl)
    start[0] = 0
    start[1:] = nl[:-1] + 1
    ok = end - start >= 6  # shortest access line: "I  0,1"
    s = start[ok]
    c0, c1, c2 = a[s], a[s + 1], a[s + 2]
    op = np.where(c0 == ord("I"), np.where(c1 == ord(" "), OP_I, 255), np.where(c0 == ord(" "), _OP[c1], 255))
    good = (op != 255) & (c2 == ord(" "))
    idx = np.flatnonzero(ok)[good]
    s, e, op = start[idx], end[idx], op[good].astype(np.uint8)
    commas = np.flatnonzero(a == ord(","))
    if len(commas) == 0:
        return Parsed(np.zeros(0, np.uint8), np.zeros(0, np.uint64), np.zeros(0, np.uint32), len(nl), int(nl[-1]) + 1,
                      len(nl))
    ci = np.minimum(np.searchsorted(commas, s), len(commas) - 1)
    comma = commas[ci]
    nd = comma - s - 3
    nds = e - comma - 1
    good = (comma < e) & (nd >= 1) & (nd <= 16) & (nds >= 1) & (nds <= 9)
    s, e, op, comma, nd, nds = s[good], e[good], op[good], comma[good], nd[good], nds[good]
    addr = np.zeros(len(s), dtype=np.uint64)
    bad = np.zeros(len(s), dtype=bool)
    for j in range(int(nd.max()) if len(nd) else 0):
        has = j < nd
        d = _HEX[a[np.where(has, comma - 1 - j, 0)]]
        bad |= has & (d == 255)
        addr |= np.where(has, d.astype(np.uint64) << np.uint64(4 * j), np.uint64(0))
    size = np.zeros(len(s), dtype=np.uint64)
    mul = np.ones(len(s), dtype=np.uint64)
    for j in range(int(nds.max()) if len(nds) else 0):
        has = j < nds
        d = _DEC[a[np.where(has, e - 1 - j, 0)]]
        bad |= has & (d == 255)
        size += np.where(has, d.astype(np.uint64) * mul, np.uint64(0))
        mul *= np.uint64(10)
    keep = ~bad
    n_acc = int(np.count_nonzero(keep))
    return Parsed(op[keep], addr[keep], size[keep].astype(np.uint32), len(nl) - n_acc, int(nl[-1]) + 1, len(nl),
                  s[keep].astype(np.int64))


def message_pid(line: bytes) -> int | None:
    """The PID of a valgrind message line `==PID== ...`, else None."""
    if line.startswith(b"=="):
        head, sep, _ = line[2:].partition(b"==")
        if sep and head.isdigit():
            return int(head)
    return None
