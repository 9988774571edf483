"""Built-in policies, by name."""

from __future__ import annotations

from ..errors import ConfigError
from ..core.ops import CORE_MECHANISMS, MECHANISMS
from .classic import Classic
from .mglru import MGLRU, MGLRU612

BUILTIN = {"classic": Classic, "mglru": MGLRU, "mglru-6.12": MGLRU612}


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
        if item[0] == "+" and name not in cls.supported_mechanisms and name not in CORE_MECHANISMS:
            supported = ", ".join(cls.supported_mechanisms) or "none"
            raise ConfigError(f"mechanism: policy {cls.name} cannot use {name} (it supports: {supported})")
        out[name] = item[0] == "+"
    return out


def plugin_mechanisms(spec: str | None, name: str = "a reclaim_ext policy") -> dict[str, bool]:
    """The mechanisms a reclaim_ext plug-in may switch: the core's (demotion, promotion), which
    every policy gets; the walks and the rest are classic's and MGLRU's own."""
    from .classic import Classic

    got = parse_mechanisms(spec, Classic)
    own = [m for m in got if m not in CORE_MECHANISMS]
    if own:
        raise ConfigError(f"mechanism: {name} is a reclaim_ext policy; --mechanism gives it only the core "
                          f"mechanisms ({', '.join(CORE_MECHANISMS)}), not {', '.join(own)}")
    return got


def policy_class(name: str):
    """The class of a policy spec: a built-in name, a registered plug-in, file.py[:Class] or
    module:Class (reclaim_ext.ext.loader)."""
    from ..ext.loader import load_policy_class

    return load_policy_class(name, BUILTIN)


def get_policy(name: str, mechanisms: str | None = None, **options):
    """A new instance of policy `name` (see policy_class), with mechanisms switched on/off
    (`+ptwalk,-bloom`) and policy options (MGLRU: min_ttl_ms). reclaim_ext plug-ins take no
    mechanisms or options."""
    from ..core.ops import ReclaimOps

    cls = policy_class(name)
    if issubclass(cls, ReclaimOps):
        return cls(parse_mechanisms(mechanisms, cls), **options)
    if mechanisms:
        plugin_mechanisms(mechanisms, name)  # the core's only; the adapter (ExtOps) applies them
    if options:
        raise ConfigError(f"policy: {name} takes no options ({', '.join(options)})")
    from ..ext.safety import run_guarded

    try:  # under the watchdog: a stall or a SystemExit in the constructor is a ConfigError too
        return run_guarded(cls, name, f"creating {cls.__name__}()")
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - a user class that cannot even be built
        raise ConfigError(f"policy: {name}: creating {cls.__name__}() raised {type(e).__name__}: {e}") from None
