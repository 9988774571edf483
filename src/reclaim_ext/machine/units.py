"""Sizes with units. Memory is counted in 4 KiB base pages; a bare number means pages."""

from __future__ import annotations

import re

from ..errors import ConfigError

PAGE_SIZE = 4096
PAGE_SHIFT = 12

_UNITS = {
    "": None,  # bare number: pages
    "b": 1,
    "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
    "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
    "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
    "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
    "p": PAGE_SIZE, "page": PAGE_SIZE, "pages": PAGE_SIZE,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str | int, what: str = "size") -> int:
    """Parse '64MiB', '2GiB', '4096B', '1000' (pages) into a number of 4 KiB pages.

    Byte sizes are rounded down to whole pages; a size that is not a whole number of bytes, has an
    unknown unit or is negative is a ConfigError naming `what`.
    """
    if isinstance(text, int):
        if text < 0:
            raise ConfigError(f"{what}: {text} is negative")
        return text
    m = _SIZE_RE.match(str(text))
    if not m:
        raise ConfigError(f"{what}: cannot read {text!r} as a size (use e.g. 64MiB, 2GiB or a page count)")
    num, unit = m.group(1), m.group(2).lower()
    if unit not in _UNITS:
        raise ConfigError(f"{what}: unknown unit {m.group(2)!r} in {text!r} (use B, KiB, MiB, GiB, TiB or pages)")
    scale = _UNITS[unit]
    if scale is None:
        if "." in num:
            raise ConfigError(f"{what}: a page count must be a whole number, got {text!r}")
        return int(num)
    nbytes = float(num) * scale if "." in num else int(num) * scale
    return int(nbytes) // PAGE_SIZE


def format_size(pages: int) -> str:
    """Pages as a human size, e.g. 16384 -> '64 MiB'."""
    nbytes = pages * PAGE_SIZE
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            val = nbytes / scale
            return f"{val:.0f} {unit}" if val == int(val) else f"{val:.1f} {unit}"
    return f"{nbytes} B"
