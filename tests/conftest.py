"""Helpers shared by the classic-policy, engine and CLI tests: tiny hand-written traces replayed
on a small simulated machine, so every folio a test looks at is a real one (named by the address
spaces, placed on a list by the policy, found by the rmap walk)."""

from __future__ import annotations

import os

# The whole suite runs with the conservation check after every reclaim (RECLAIM_EXT_CHECK=1).
os.environ.setdefault("RECLAIM_EXT_CHECK", "1")

import numpy as np
import pytest

import reclaim_ext.jit
from reclaim_ext.core.engine import SimConfig, Simulator
from reclaim_ext.core.ops import ScanControl
from reclaim_ext.machine.folio import LRU_ANON, LRU_FILE
from reclaim_ext.policies.classic import Classic

# The one-line "compiling" notice would show up in the output of whichever test runs first on a
# cold numba cache (a fresh clone); tests/test_jit.py checks it on its own.
reclaim_ext.jit._announced = True
from reclaim_ext.trace import ArrayTrace, Kind
from reclaim_ext.trace.record import make_records

# classic list indices (type * 2 + class)
INACTIVE_ANON, ACTIVE_ANON, INACTIVE_FILE, ACTIVE_FILE = 0, 1, 2, 3


def recs(kind: int, pages, *, file: int = 1, pid: int = 0, write: int = 0) -> np.ndarray:
    """Records touching `pages` in order, all of one kind, file, process and write flag."""
    pages = list(pages)
    r = make_records(len(pages))
    r["pid"] = pid
    r["kind"] = int(kind)
    r["write"] = write
    r["file"] = 0 if kind == Kind.ANON else file
    r["page"] = pages
    return r


def reads(pages, *, file: int = 1, pid: int = 0) -> np.ndarray:
    """read() of file pages (FILE_FD)."""
    return recs(Kind.FILE_FD, pages, file=file, pid=pid)


def writes(pages, *, file: int = 1, pid: int = 0) -> np.ndarray:
    """write() of file pages (FILE_FD)."""
    return recs(Kind.FILE_FD, pages, file=file, pid=pid, write=1)


def cat(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts)


def new_sim(memory: int = 256, swap: int = 0, *, mode: str = "exact", check: bool = True,
            swappiness: int = 60, ops=None) -> Simulator:
    return Simulator(
        SimConfig(memory_pages=memory, swap_pages=swap, swappiness=swappiness, mode=mode, check=check),
        ops if ops is not None else Classic(),
    )


def replay(sim: Simulator, records: np.ndarray) -> None:
    """Replay records as one trace (one segment for the fast driver when no reclaim happens)."""
    sim.run(ArrayTrace("test", records))


def ids_of(sim: Simulator, records: np.ndarray) -> np.ndarray:
    """Folio ids of the pages the records name (pages already seen keep their id)."""
    return sim.mm.translate(records)[0]


def one_id(sim: Simulator, records: np.ndarray) -> int:
    ids = np.unique(ids_of(sim, records))
    assert len(ids) == 1
    return int(ids[0])


def lruvec(sim: Simulator):
    return sim.root_lruvec(sim.node)


def scan_control(**kw) -> ScanControl:
    return ScanControl(nr_to_reclaim=32, **kw)


def vm_delta(before: dict, sim: Simulator) -> dict:
    """vmstat counters that changed since `before`."""
    return {k: v - before.get(k, 0) for k, v in sim.vm.items() if v != before.get(k, 0)}


@pytest.fixture(params=["fast", "exact"])
def mode(request) -> str:
    """Both drivers: the hot-path semantics must not depend on the driver."""
    return request.param


__all__ = [
    "INACTIVE_ANON", "ACTIVE_ANON", "INACTIVE_FILE", "ACTIVE_FILE", "LRU_ANON", "LRU_FILE", "Kind",
    "recs", "reads", "writes", "cat", "new_sim", "replay", "ids_of", "one_id", "lruvec",
    "scan_control", "vm_delta",
]


def invoke(*args):
    """Run the reclaim-ext command line in-process."""
    from click.testing import CliRunner

    from reclaim_ext.cli import main

    return CliRunner().invoke(main, list(args))


def run_json(*args) -> dict:
    """`reclaim-ext run ... --json -`, parsed; the command must succeed."""
    import json

    r = invoke("run", *args, "--json", "-")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def write_raising_lru(tmp_path, call: int = 10):
    """A policy file: the LRU plug-in that raises KeyError on its `call`-th evict(). Returns the
    --policy spec (path:Class)."""
    src = tmp_path / "bad.py"
    src.write_text(
        "from reclaim_ext.plugins.lru import LRU\n\n"
        "class Bad(LRU):\n"
        "    lookahead = False  # one evict() call per miss in plain-cache mode\n"
        "    name = 'bad'\n"
        "    calls = 0\n"
        "    def evict(self, ctx, n):\n"
        "        self.calls += 1\n"
        f"        if self.calls == {call}:\n"
        "            raise KeyError('tenth')\n"
        "        return super().evict(ctx, n)\n"
    )
    return f"{src}:Bad"



def list_lru():
    """An LRU on an IndexedList without lookahead: the core asks it one victim per miss, the
    protocol the broken-policy tests exercise call by call."""
    from reclaim_ext.ext import IndexedList, Policy

    class LRU(Policy):
        name = "lru-list"

        def init(self, ctx):
            self.q = IndexedList()

        def added(self, ctx, handles):
            for h in handles.tolist():
                self.q.push_head(h)

        def accessed(self, ctx, handles):
            for h in handles.tolist():
                self.q.move_head(h)

        def removed(self, ctx, handles):
            for h in handles.tolist():
                self.q.discard(h)

        def evict(self, ctx, n):
            out = []
            for h in self.q.from_tail():
                if len(out) == n:
                    break
                out.append(h)
            return out

    return LRU


def pytest_collection_modifyitems(config, items):
    """Tests marked `vm` boot a real kernel under qemu (tools and a package download CI does not
    have): they run only when selected (`pytest -m vm`), and are deselected otherwise, not
    skipped."""
    expr = config.getoption("markexpr") or ""
    if "vm" in expr and "not vm" not in expr:
        return
    vm = [it for it in items if it.get_closest_marker("vm")]
    if vm:
        config.hook.pytest_deselected(items=vm)
        items[:] = [it for it in items if not it.get_closest_marker("vm")]

