"""Memory cgroups of a run: what the user declares (name, pids, memory.max) and its checks.

A memcg is named by its path below the root, components separated by '/': `a`, `a/b`. A parent
that is not declared is created implicitly (no pids, no limit), so `--memcg name=a/b,...` alone
makes both `a` and `a/b`; declaring the parent too (in any order) gives it pids or a limit.
Processes (trace pids) not assigned to a memcg are charged to the root memcg.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import ConfigError
from .units import parse_size

MAX_PID = (1 << 16) - 1       # trace records carry a 16-bit pid
MIN_MEMCG_MAX = 32            # SWAP_CLUSTER_MAX: one reclaim batch; smaller limits cannot make progress
_NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")


@dataclass
class MemcgConfig:
    """One declared memcg: path below the root, the pids charged to it, memory.max in pages
    (None: no limit), memory.min and memory.low in pages (0: none), memory.high in pages (None:
    no limit)."""

    name: str
    pids: list[int] = field(default_factory=list)
    max: int | None = None
    min: int = 0
    low: int = 0
    high: int | None = None
    swap_max: int | None = None  # memory.swap.max (None: no limit)


def _err(what: str, msg: str) -> ConfigError:
    return ConfigError(f"--memcg {what}: {msg}")


def parse_pids(text: str, spec: str) -> list[int]:
    """'1-3+7+9' or '1-3;7' -> [1, 2, 3, 7, 9]; ranges inclusive."""
    out: list[int] = []
    for part in re.split(r"[+;:]", text):
        part = part.strip()
        if not part:
            raise _err(spec, f"empty pid in pids={text!r} (use e.g. pids=1-3+7)")
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise _err(spec, f"cannot read {part!r} as a pid or a pid range (e.g. 4 or 1-3)") from None
        if a < 0 or b > MAX_PID or a > b:
            raise _err(spec, f"pid range {part!r} is not within 0..{MAX_PID} (low-high)")
        out.extend(range(a, b + 1))
    return out


def check_memcg_name(text: str, what: str) -> str:
    """A memcg path as declared (`a`, `a/b`, or `/a/b` from the root) -> its canonical form `a/b`.
    Refused: the root itself, empty components (`a//b`, `a/`), `.` and `..` (a memcg is named by
    its path, not reached by one) and characters other than letters, digits, _ . : -."""
    name = text[1:] if text.startswith("/") else text
    if not name:
        raise _err(what, "the root memcg cannot be declared; give a child name such as name=a")
    for comp in name.split("/"):
        if not comp:
            raise _err(what, f"bad memcg name {text!r}: empty path component (write a/b, not a//b, /a/ or a/)")
        if comp in (".", ".."):
            raise _err(what, f"bad memcg name {text!r}: {comp!r} is not a memcg name (give the path itself, "
                             "e.g. b rather than a/../b)")
        if not _NAME_RE.match(comp):
            raise _err(what, f"bad memcg name {text!r} (path components of letters, digits, _ . : -)")
    return name


def parse_memcg_spec(spec: str) -> MemcgConfig:
    """`name=a/b,pids=1-3+7,max=32MiB,high=24MiB,min=8MiB,low=16MiB` -> MemcgConfig. Keys: name
    (required), pids, max and high (sizes as for --memory, or 'max' for no limit), min
    (memory.min, a size), low (memory.low, a size)."""
    seen: dict[str, str] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        k, sep, v = item.partition("=")
        k = k.strip().lower()
        if not sep:
            raise _err(repr(spec), f"{item!r} is not KEY=VALUE (keys: name, pids, max, high, min, low, swap_max)")
        if k not in ("name", "pids", "max", "high", "min", "low", "swap_max"):
            raise _err(repr(spec), f"unknown key {k!r} (keys: name, pids, max, high, min, low, swap_max)")
        if k in seen:
            raise _err(repr(spec), f"key {k!r} given twice")
        seen[k] = v.strip()
    if "name" not in seen:
        raise _err(repr(spec), "no name= (e.g. name=a or name=a/b)")
    name = check_memcg_name(seen["name"], repr(spec))
    pids = parse_pids(seen["pids"], repr(spec)) if seen.get("pids") else []
    lim = {"max": None, "high": None}
    for k in lim:
        if k in seen and seen[k].lower() != "max":
            try:
                lim[k] = parse_size(seen[k], k)
            except ConfigError as e:
                raise _err(repr(spec), str(e)) from None
            if lim[k] < MIN_MEMCG_MAX:
                raise _err(repr(spec), f"{k} {lim[k]} pages is too small (at least {MIN_MEMCG_MAX} pages = 128KiB, "
                                       "one reclaim batch)")
    mx = lim["max"]
    swap_max = None
    if "swap_max" in seen and seen["swap_max"].lower() != "max":
        try:
            swap_max = parse_size(seen["swap_max"], "swap_max")
        except ConfigError as e:
            raise _err(repr(spec), str(e)) from None
    prot = {"min": 0, "low": 0}
    for k in prot:
        if seen.get(k):
            try:
                prot[k] = parse_size(seen[k], k)
            except ConfigError as e:
                raise _err(repr(spec), str(e)) from None
    return MemcgConfig(name=name, pids=pids, max=mx, min=prot["min"], low=prot["low"], high=lim["high"],
                       swap_max=swap_max)


def resolve_memcgs(memcgs: list[MemcgConfig | str]) -> list[MemcgConfig]:
    """Check a run's memcgs and add the implicit parents; parents come before children.
    Errors: a memcg declared twice, a pid in two memcgs."""
    out: dict[str, MemcgConfig] = {}
    owner: dict[int, str] = {}
    for m in memcgs:
        if isinstance(m, str):
            m = parse_memcg_spec(m)
        if not isinstance(m, MemcgConfig):
            raise ConfigError(f"--memcg: {m!r} is not a memcg spec")
        if not isinstance(m.name, str):
            raise ConfigError(f"--memcg: name {m.name!r} is not a path such as 'a' or 'a/b'")
        m = MemcgConfig(check_memcg_name(m.name, m.name), m.pids, m.max, m.min, getattr(m, "low", 0),
                        getattr(m, "high", None), getattr(m, "swap_max", None))
        if m.name in out:
            raise ConfigError(f"--memcg {m.name}: declared twice")
        for k in ("max", "high"):
            v = getattr(m, k)
            if v is not None and v < MIN_MEMCG_MAX:
                raise ConfigError(f"--memcg {m.name}: {k} {v} pages is too small (at least {MIN_MEMCG_MAX} pages)")
        for p in m.pids:
            if not 0 <= p <= MAX_PID:
                raise ConfigError(f"--memcg {m.name}: pid {p} is not within 0..{MAX_PID}")
            if p in owner:
                where = "listed twice" if owner[p] == m.name else f"already in memcg {owner[p]}"
                raise ConfigError(f"--memcg {m.name}: pid {p} is {where} (a process is in one memcg)")
            owner[p] = m.name
        for k in ("min", "low"):
            v = getattr(m, k)
            if v < 0:
                raise ConfigError(f"--memcg {m.name}: {k} must not be negative")
            if m.max is not None and v > m.max:
                from .units import format_size

                raise ConfigError(f"--memcg {m.name}: {k} {format_size(v)} is above max {format_size(m.max)} "
                                  f"(memory.{k} protects usage up to it; it cannot exceed memory.max)")
        out[m.name] = MemcgConfig(m.name, list(m.pids), m.max, m.min, m.low, m.high, m.swap_max)
    order = list(out)
    for name in order:  # implicit parents
        parts = name.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent not in out:
                out[parent] = MemcgConfig(parent)
    return sorted(out.values(), key=lambda m: m.name.count("/"))


@dataclass
class Proactive:
    """One write to a memcg's memory.reclaim at a point of the trace (--proactive)."""

    at: int                 # before this access
    path: str               # the memcg: "" for the root, else a declared memcg's name (a or a/b)
    pages: int
    swappiness: int | None = None


def parse_proactive(text: str) -> Proactive:
    """`AT:PATH:SIZE[:swappiness=N]`, e.g. `500000:/a:64MiB` or `1_000_000:a/b:8MiB:swappiness=0`:
    before access AT, write SIZE (and the swappiness= key) to memory.reclaim of the memcg at PATH
    (`/` for the root)."""
    parts = str(text).split(":")
    what = f"--proactive {text!r}"
    if len(parts) not in (3, 4):
        raise ConfigError(f"{what}: not AT:PATH:SIZE[:swappiness=N] (e.g. 500000:/a:64MiB)")
    try:
        at = int(parts[0].replace("_", ""))
    except ValueError:
        raise ConfigError(f"{what}: {parts[0]!r} is not an access index") from None
    if at < 0:
        raise ConfigError(f"{what}: access index {at} is negative")
    path = parts[1].strip()
    path = "" if path in ("", "/") else check_memcg_name(path, what)
    try:
        pages = parse_size(parts[2], "size")
    except ConfigError as e:
        raise ConfigError(f"{what}: {e}") from None
    if pages == 0:
        raise ConfigError(f"{what}: a size of 0 reclaims nothing")
    swp = None
    if len(parts) == 4:
        k, sep, v = parts[3].partition("=")
        if k.strip() != "swappiness" or not sep:
            raise ConfigError(f"{what}: {parts[3]!r} is not swappiness=N (the one key memory.reclaim takes here)")
        try:
            swp = int(v)
        except ValueError:
            raise ConfigError(f"{what}: swappiness {v!r} is not a number from 0 to 200") from None
        if not 0 <= swp <= 200:
            raise ConfigError(f"{what}: swappiness {swp} is not within 0..200")
    return Proactive(at, path, pages, swp)

