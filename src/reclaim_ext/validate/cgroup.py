"""The probe memory cgroup: find the memory controller (v2 where it is enabled, else v1), create a
fresh memcg with a limit, put the worker in it, read its counters, and remove it again.

Everything takes the controller's mount point as a path, so the tests run against a fake cgroup
root in a temporary directory (`MemoryController(version, root)`).
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass, field

from .errors import CgroupError, Unavailable

PAGE = 4096
NAME_PREFIX = "reclaim-ext-validate-"


def _rmdir(path: str) -> None:
    """Remove a cgroup directory (cgroupfs removes the control files with it; the tests replace
    this for their plain-directory fake)."""
    os.rmdir(path)


@dataclass
class MemoryController:
    """A mounted memory controller: cgroup `version` 1 or 2 at `root`."""

    version: int
    root: str

    # control files by version
    @property
    def limit_file(self) -> str:
        return "memory.limit_in_bytes" if self.version == 1 else "memory.max"

    @property
    def usage_file(self) -> str:
        return "memory.usage_in_bytes" if self.version == 1 else "memory.current"

    @property
    def peak_file(self) -> str:
        return "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"


def find_memory_controller(mounts: str = "/proc/self/mounts") -> MemoryController:
    """The host's memory controller: cgroup v2 if its root lists `memory` in cgroup.controllers,
    else a v1 hierarchy mounted with the memory option. Unavailable otherwise."""
    v1 = v2 = None
    try:
        with open(mounts) as fh:
            lines = fh.read().splitlines()
    except OSError as e:
        raise Unavailable(f"cannot read {mounts}: {e.strerror}") from None
    for line in lines:
        parts = line.split()
        if len(parts) < 4:
            continue
        where, fstype, opts = parts[1], parts[2], parts[3].split(",")
        if fstype == "cgroup2" and v2 is None:
            try:
                with open(os.path.join(where, "cgroup.controllers")) as fh:
                    if "memory" in fh.read().split():
                        v2 = where
            except OSError:
                pass
        elif fstype == "cgroup" and "memory" in opts and v1 is None:
            v1 = where
    if v2:
        return MemoryController(2, v2)
    if v1:
        return MemoryController(1, v1)
    raise Unavailable("no memory cgroup controller on this host (neither a cgroup v2 hierarchy with the "
                      "memory controller nor a cgroup v1 memory hierarchy is mounted)")


def check_host() -> MemoryController:
    """Root and a memory controller, or Unavailable with the reason in one line."""
    if os.geteuid() != 0:
        raise Unavailable("the kernel replay needs root (it creates a memory cgroup); run it as root")
    return find_memory_controller()


def _read(path: str) -> str:
    with open(path) as fh:
        return fh.read()


def _write(path: str, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)


def parse_stat(text: str) -> dict[str, int]:
    """memory.stat / /proc/vmstat text as {key: value}."""
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        try:
            out[k] = int(v)
        except ValueError:
            continue
    return out


@dataclass
class ProbeCgroup:
    """One fresh memcg below `parent` (a path under the controller root; default the root) with
    the limit `limit_pages`. A context manager: `with ProbeCgroup(...) as cg:` creates it and
    always removes it, whatever happens inside."""

    ctrl: MemoryController
    limit_pages: int
    name: str = field(default_factory=lambda: f"{NAME_PREFIX}{os.getpid()}-{time.time_ns() % 10**9}")
    parent: str | None = None
    path: str = ""
    created: bool = False
    _enabled_memory_in: str | None = None   # v2: subtree_control we switched +memory on in

    def __post_init__(self):
        base = self.parent or self.ctrl.root
        self.path = os.path.join(base, self.name)

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def create(self) -> "ProbeCgroup":
        base = os.path.dirname(self.path)
        if not os.path.isdir(base):
            raise CgroupError(f"cgroup parent {base} does not exist")
        if self.ctrl.version == 2:
            ctl = os.path.join(base, "cgroup.subtree_control")
            try:
                if "memory" not in _read(ctl).split():
                    _write(ctl, "+memory")
                    self._enabled_memory_in = ctl
            except OSError as e:
                raise CgroupError(f"cannot enable the memory controller in {ctl}: {e.strerror}") from None
        try:
            os.mkdir(self.path)
        except OSError as e:
            self._restore_subtree_control()
            raise CgroupError(f"cannot create cgroup {self.path}: {e.strerror}") from None
        self.created = True
        want = self.limit_pages * PAGE
        try:
            _write(self.file(self.ctrl.limit_file), str(want))
            got = int(_read(self.file(self.ctrl.limit_file)).strip())
            if got != want:
                raise CgroupError(f"{self.file(self.ctrl.limit_file)} reads {got} after writing {want}")
            if self.ctrl.version == 2 and os.path.exists(self.file("memory.swap.max")):
                _write(self.file("memory.swap.max"), "0")
        except (OSError, ValueError, CgroupError) as e:
            self.remove()
            if isinstance(e, CgroupError):
                raise
            raise CgroupError(f"cannot set the limit of {self.path}: {getattr(e, 'strerror', None) or e}") from None
        return self

    def join_self(self) -> None:
        """Move the calling process into the cgroup (from the worker's preexec_fn)."""
        _write(self.file("cgroup.procs"), str(os.getpid()))

    def procs(self) -> list[int]:
        try:
            return [int(x) for x in _read(self.file("cgroup.procs")).split()]
        except (OSError, ValueError):
            return []

    def usage_pages(self) -> int:
        return int(_read(self.file(self.ctrl.usage_file)).strip()) // PAGE

    def peak_pages(self) -> int | None:
        try:
            return int(_read(self.file(self.ctrl.peak_file)).strip()) // PAGE
        except (OSError, ValueError):
            return None

    def stat(self) -> dict[str, int]:
        return parse_stat(_read(self.file("memory.stat")))

    def extra_counters(self) -> dict[str, int]:
        """failcnt and kmem peak (v1) or memory.events (v2), whatever exists."""
        out = {}
        names = (("memory.failcnt", "failcnt"), ("memory.kmem.max_usage_in_bytes", "kmem_peak_bytes"),
                 ("memory.kmem.usage_in_bytes", "kmem_bytes"))
        for fname, key in names:
            try:
                out[key] = int(_read(self.file(fname)).strip())
            except (OSError, ValueError):
                pass
        if self.ctrl.version == 2:
            try:
                out.update({f"events_{k}": v for k, v in parse_stat(_read(self.file("memory.events"))).items()})
            except OSError:
                pass
        return out

    def _restore_subtree_control(self) -> None:
        if self._enabled_memory_in:
            try:
                _write(self._enabled_memory_in, "-memory")
            except OSError:
                pass  # another cgroup below uses it now; leaving it on is harmless
            self._enabled_memory_in = None

    def remove(self, own_pids: tuple[int, ...] = (), timeout: float = 5.0) -> None:
        """Remove the cgroup. Processes of ours still inside (`own_pids`) are killed and reaped
        by the caller before this; any other process is moved to the parent (never killed).
        Retries while the kernel still reports it busy; CgroupError names the path on failure."""
        if not self.created:
            return
        parent_procs = os.path.join(os.path.dirname(self.path), "cgroup.procs")
        deadline = time.monotonic() + timeout
        while True:
            for pid in self.procs():
                if pid in own_pids:
                    continue
                try:
                    _write(parent_procs, str(pid))
                except OSError:
                    pass
            try:
                _rmdir(self.path)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno not in (errno.EBUSY, errno.ENOTEMPTY, errno.EAGAIN) or time.monotonic() > deadline:
                    raise CgroupError(f"cannot remove cgroup {self.path}: {e.strerror}; remove it by hand "
                                      f"(rmdir {self.path})") from None
                time.sleep(0.05)
        self.created = False
        self._restore_subtree_control()

    def __enter__(self) -> "ProbeCgroup":
        return self.create()

    def __exit__(self, *exc) -> None:
        self.remove()


def stale_cgroups(ctrl: MemoryController) -> list[str]:
    """Probe cgroups left behind by a run that was killed (SIGKILL cannot be cleaned up after):
    ours by name, whose creating process is gone."""
    out = []
    try:
        names = os.listdir(ctrl.root)
    except OSError:
        return out
    for n in names:
        if not n.startswith(NAME_PREFIX):
            continue
        pid = n[len(NAME_PREFIX):].split("-")[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            out.append(os.path.join(ctrl.root, n))
    return out
