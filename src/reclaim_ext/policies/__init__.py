"""Built-in policies, by name."""

from __future__ import annotations

from ..errors import ConfigError
from .classic import Classic

BUILTIN = {"classic": Classic}


def get_policy(name: str):
    """A new instance of the built-in policy `name`."""
    try:
        return BUILTIN[name]()
    except KeyError:
        raise ConfigError(f"policy: unknown policy {name!r} (built-in: {', '.join(sorted(BUILTIN))})") from None
