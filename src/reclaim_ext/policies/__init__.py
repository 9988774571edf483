"""Built-in policies, by name."""

from __future__ import annotations

from ..errors import ConfigError
from ..core.ops import MECHANISMS
from .classic import Classic
from .mglru import MGLRU

BUILTIN = {"classic": Classic, "mglru": MGLRU}


def parse_mechanisms(spec: str | None, cls) -> dict[str, bool]:
    """`+ptwalk,-bloom` -> {"ptwalk": True, "bloom": False}, checked against what the policy
    class supports."""
    out: dict[str, bool] = {}
    if not spec:
        return out
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        if item[0] not in "+-":
            raise ConfigError(f"mechanism: {item!r} must start with + (on) or - (off), e.g. +ptwalk")
        name = item[1:]
        if name not in MECHANISMS:
            raise ConfigError(f"mechanism: unknown mechanism {name!r} (known: {', '.join(MECHANISMS)})")
        if item[0] == "+" and name not in cls.supported_mechanisms:
            supported = ", ".join(cls.supported_mechanisms) or "none"
            raise ConfigError(f"mechanism: policy {cls.name} cannot use {name} (it supports: {supported})")
        out[name] = item[0] == "+"
    return out


def get_policy(name: str, mechanisms: str | None = None, **options):
    """A new instance of the built-in policy `name`, with mechanisms switched on/off
    (`+ptwalk,-bloom`) and policy options (MGLRU: min_ttl_ms)."""
    try:
        cls = BUILTIN[name]
    except KeyError:
        raise ConfigError(f"policy: unknown policy {name!r} (built-in: {', '.join(sorted(BUILTIN))})") from None
    return cls(parse_mechanisms(mechanisms, cls), **options)
