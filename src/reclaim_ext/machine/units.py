"""Sizes with units. Memory is counted in 4 KiB base pages; a bare number means pages."""

from __future__ import annotations

import re
from fractions import Fraction

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


MAX_PAGES = 1 << 52
"""The largest size: 2**52 pages = 16 EiB, all of a 64-bit address space."""
_MAX_DIGITS = 20  # a whole part longer than this is above MAX_PAGES in any unit (and int() has a digit limit)
_MAX_DECIMALS = 40  # d / 10**k times a unit of at most 2**40 bytes is whole bytes only if k <= 40


def parse_size(text: str | int, what: str = "size") -> int:
    """Parse '64MiB', '2GiB', '4096B', '1000' (pages) into a number of 4 KiB pages.

    Byte sizes are rounded down to whole pages. A ConfigError (a ValueError) naming `what` for: a
    negative size, an unknown unit, a size that is not a whole number of bytes, a page count that is
    not whole (`1.5`, `1.5pages`), a nonzero size below one page (`100B`), or one above MAX_PAGES
    (16 EiB).
    """
    if isinstance(text, bool):
        raise ConfigError(f"{what}: {text!r} is not a size (use e.g. 64MiB, 2GiB or a page count)")
    if isinstance(text, float):
        if not text.is_integer():
            raise ConfigError(f"{what}: a page count must be a whole number, got {text!r}")
        text = int(text)
    if isinstance(text, int):
        if text < 0:
            raise ConfigError(f"{what}: {text} is negative")
        return _at_most_max(text, text, what)
    m = _SIZE_RE.match(str(text))
    if not m:
        hint = " (sizes must not be negative)" if str(text).strip().startswith("-") else ""
        raise ConfigError(f"{what}: cannot read {text!r} as a size (use e.g. 64MiB, 2GiB or a page count){hint}")
    num, unit = m.group(1), m.group(2).lower()
    if unit not in _UNITS:
        raise ConfigError(f"{what}: unknown unit {m.group(2)!r} in {text!r} (use B, KiB, MiB, GiB, TiB or pages)")
    whole, _, frac = num.partition(".")
    whole, frac = whole.lstrip("0") or "0", frac.rstrip("0")
    if len(whole) > _MAX_DIGITS:
        raise _too_large(text, what)
    scale = _UNITS[unit]
    if scale is None or unit in ("p", "page", "pages"):  # a count of pages
        if frac:
            raise ConfigError(f"{what}: a page count must be a whole number, got {text!r}")
        return _at_most_max(int(whole), text, what)
    if len(frac) > _MAX_DECIMALS:
        raise ConfigError(f"{what}: {text!r} is not a whole number of bytes")
    nbytes = Fraction(f"{whole}.{frac or 0}") * scale
    if nbytes.denominator != 1:
        raise ConfigError(f"{what}: {text!r} is not a whole number of bytes")
    pages = int(nbytes) // PAGE_SIZE
    if pages == 0 and nbytes > 0:
        raise ConfigError(f"{what}: {text!r} is less than one 4 KiB page (give 0 or at least 4KiB)")
    return _at_most_max(pages, text, what)


def _too_large(text, what: str) -> ConfigError:
    text = str(text) if len(str(text)) <= 40 else f"{str(text)[:16]}... ({len(str(text))} characters)"
    return ConfigError(f"{what}: {text!r} is too large (at most 16 EiB = 2**52 pages, a 64-bit address space)")


def _at_most_max(pages: int, text, what: str) -> int:
    if pages > MAX_PAGES:
        raise _too_large(text, what)
    return pages


def format_size(pages: int) -> str:
    """Pages as a human size, e.g. 16384 -> '64 MiB'."""
    nbytes = pages * PAGE_SIZE
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            val = nbytes / scale
            return f"{val:.0f} {unit}" if val == int(val) else f"{val:.1f} {unit}"
    return f"{nbytes} B"
