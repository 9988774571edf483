"""Finding a policy class from what the user typed after --policy.

Accepted forms, tried in this order:
  * a registered name: a built-in reclaim policy (classic, mglru) or a plug-in registered under
    the entry-point group `reclaim_ext.policies` (this package registers fifo, lru, clock, mru,
    lfu, 2q, arc, s3fifo, sieve, and lru-compiled, s3fifo-compiled with compiled hooks; any
    installed package can add more);
  * `path/to/file.py` or `path/to/file.py:Class` (without :Class the file must define exactly one
    policy class);
  * `package.module:Class` (or `package.module` holding exactly one policy class).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from importlib.metadata import entry_points

from ..errors import ConfigError
from .safety import run_guarded

ENTRY_POINT_GROUP = "reclaim_ext.policies"


def registered() -> dict[str, str]:
    """Plug-in name -> "module:Class" from the entry points of installed packages."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _is_policy_class(obj) -> bool:
    from ..core.ops import ReclaimOps
    from .policy import Policy

    return inspect.isclass(obj) and issubclass(obj, (Policy, ReclaimOps)) and obj not in (Policy, ReclaimOps)


def _pick(namespace: dict, cls_name: str | None, where: str):
    if cls_name:
        obj = namespace.get(cls_name)
        if obj is None:
            raise ConfigError(f"policy: {where} has no {cls_name!r}")
        if not _is_policy_class(obj):
            raise ConfigError(f"policy: {where}:{cls_name} is not a policy class (subclass reclaim_ext.ext.Policy)")
        return obj
    found = [v for k, v in namespace.items() if _is_policy_class(v) and getattr(v, "__module__", None) == namespace.get("__name__")]
    if len(found) == 1:
        return found[0]
    if not found:
        raise ConfigError(f"policy: {where} defines no policy class (a subclass of reclaim_ext.ext.Policy)")
    names = ", ".join(sorted(c.__name__ for c in found))
    raise ConfigError(f"policy: {where} defines several policy classes ({names}); name one as {where}:Class")


def _from_file(path: str, cls_name: str | None):
    if not os.path.isfile(path):
        raise ConfigError(f"policy: {path}: no such file")
    mod_name = "reclaim_ext_user_policy_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"policy: {path}: cannot be loaded as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:  # under the watchdog: a stall or a SystemExit is the file's problem too (ConfigError)
        run_guarded(lambda: spec.loader.exec_module(module), path, "importing it")
    except SyntaxError as e:
        raise ConfigError(f"policy: {path}:{e.lineno}: syntax error: {e.msg}") from None
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - any import-time failure is the file's problem
        raise ConfigError(f"policy: {path}: importing it raised {type(e).__name__}: {e}") from None
    return _pick(vars(module), cls_name, path)


def _from_module(mod: str, cls_name: str | None, spec: str):
    try:
        module = run_guarded(lambda: importlib.import_module(mod), spec, f"importing {mod}")
    except ModuleNotFoundError as e:
        raise ConfigError(f"policy: {spec}: no module {e.name!r}") from None
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001
        raise ConfigError(f"policy: {spec}: importing {mod} raised {type(e).__name__}: {e}") from None
    return _pick(vars(module), cls_name, mod)


def load_policy_class(spec: str, builtin: dict):
    """The class `spec` names (see the module docstring); ConfigError with the reason if none."""
    if not spec or not isinstance(spec, str):
        raise ConfigError("policy: give a policy name, a file.py[:Class] or a module:Class")
    if spec in builtin:
        return builtin[spec]
    plugins = registered()
    if spec in plugins:
        return _from_module(*_split(plugins[spec]), spec)
    path, cls_name = spec, None
    if ".py:" in spec:
        path, _, cls_name = spec.rpartition(":")
    if path.endswith(".py") or os.sep in path:
        return _from_file(path, cls_name)
    if ":" in spec or "." in spec:
        return _from_module(*_split(spec), spec)
    known = sorted(set(builtin) | set(plugins))
    raise ConfigError(f"policy: unknown policy {spec!r} (known: {', '.join(known)}; or a file.py[:Class] "
                      f"or a module:Class)")


def _split(value: str) -> tuple[str, str | None]:
    mod, _, cls = value.partition(":")
    return mod, (cls or None)
