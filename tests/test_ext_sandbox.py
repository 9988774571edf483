"""The sandbox around policy code (rule R5 and what a policy may not do to the run; issue 16,
item 2): a hook, constructor or module import blocked in a C call (time.sleep) is stopped at its
budget; SystemExit is a policy error, never the end of the run; a hook that cannot be stopped ends
the run with one error line and exit code 2 instead of hanging; Ctrl-C always aborts (130), never
taken as a stall; no signal handler or watchdog thread is left after a run; a run outside the main
thread degrades to the asynchronous exception. The cases that could hang run `reclaim-ext` in a
subprocess with a timeout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from conftest import list_lru

from reclaim_ext.errors import ConfigError
from reclaim_ext.ext.cache import run_cache
from reclaim_ext.policies import get_policy
from reclaim_ext.trace import ArrayTrace, Kind
from reclaim_ext.trace.record import make_records

CACHE_RUN = ["--cache", "--capacity", "100", "--workload", "zipf", "-p", "pages=2000", "-p", "accesses=20000"]


def policy_file(tmp_path, name: str, body: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text("import os, signal, sys, time\nfrom reclaim_ext.ext import DEFER, Policy\n"
                    + textwrap.dedent(body))
    return str(path)


def start(*args) -> subprocess.Popen:
    env = dict(os.environ, RECLAIM_EXT_CHECK="0")
    return subprocess.Popen([sys.executable, "-m", "reclaim_ext", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def finish(p: subprocess.Popen, timeout: float = 30) -> tuple[int, str, str]:
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        pytest.fail(f"hung: {p.args} still running after {timeout} s")
    return p.returncode, out, err


def wait_for(path, timeout: float = 20) -> None:
    t = time.monotonic()
    while not os.path.exists(path):
        assert time.monotonic() - t < timeout, f"{path} never appeared"
        time.sleep(0.02)


SLEEPS_IN_EVICT = """
    class SleepsInEvict(Policy):
        def evict(self, ctx, n):
            open(os.environ["MARK"], "w").close() if "MARK" in os.environ else None
            time.sleep(100)
            return []
"""


# ---- the command line: started together at the first use (they mostly sleep), checked one by one ----

POLICIES = {
    "sleepy": SLEEPS_IN_EVICT,
    "slow_ctor": """
        class SlowCtor(Policy):
            def __init__(self):
                time.sleep(100)
    """,
    "slow_import": """
        time.sleep(100)
        class SlowImport(Policy):
            pass
    """,
    "stuck": """
        class Stuck(Policy):  # SIGALRM blocked, then a blocking sleep: nothing can interrupt it
            def evict(self, ctx, n):
                signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
                time.sleep(100)
                return []
    """,
    "reads": """
        class Reads(Policy):  # a read from a pipe nobody writes to
            def evict(self, ctx, n):
                r, w = os.pipe()
                os.read(r, 1)
                return []
    """,
    "waits": """
        import threading
        class Waits(Policy):  # waiting for an event nobody sets
            def evict(self, ctx, n):
                threading.Event().wait()
                return []
    """,
    "quits": """
        class Quits(Policy):
            def evict(self, ctx, n):
                sys.exit(0)
    """,
    "flaky": """
        class Flaky(Policy):
            def evict(self, ctx, n):
                if ctx.capacity == 1:
                    sys.exit(0)
                if ctx.capacity == 64:
                    time.sleep(100)
                ctx.exit(0, "done")  # leave the other scenarios at once (UNREG_POLICY)
    """,
}


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sandbox")
    pol = {k: policy_file(tmp, k, body) for k, body in POLICIES.items()}
    t = time.monotonic()
    procs = {
        "sleepy": start("run", "--policy", pol["sleepy"], *CACHE_RUN, "--json", "-"),
        "slow_ctor": start("run", "--policy", pol["slow_ctor"], *CACHE_RUN),
        "slow_import": start("run", "--policy", pol["slow_import"], *CACHE_RUN),
        "check_slow_ctor": start("check", pol["slow_ctor"]),
        "reads": start("run", "--policy", pol["reads"], *CACHE_RUN, "--json", "-"),
        "waits": start("run", "--policy", pol["waits"], *CACHE_RUN, "--json", "-"),
        "stuck": start("run", "--policy", pol["stuck"], *CACHE_RUN),
        "quits": start("run", "--policy", pol["quits"], *CACHE_RUN, "--json", "-"),
        "check": start("check", pol["flaky"]),
    }
    done: dict = {}

    def result(name: str):
        if name not in done:
            done[name] = (*finish(procs[name], timeout=60), time.monotonic() - t)
        return done[name]

    yield pol, result
    for p in procs.values():
        if p.poll() is None:
            p.kill()
            p.communicate()


@pytest.mark.parametrize("case", ["sleepy", "reads", "waits"])
def test_a_hook_blocked_in_c_is_ejected_and_the_run_finishes(cli, case):
    _, result = cli
    rc, out, err, took = result(case)
    assert rc == 0, err
    res = json.loads(out)
    ex = res["exit"]
    assert ex["kind"] == "ERROR_STALL" and ex["hook"] == "evict" and "2 s" in ex["reason"], ex
    assert res["accesses"] == 20000  # the fallback finished the run
    assert took < 30  # 2 s budget + 2 s grace + the subprocess's start (slow on a loaded machine)


def test_a_constructor_or_import_sleeping_in_c_is_a_load_error(cli):
    pol, result = cli
    rc, _, err, _ = result("slow_ctor")
    assert rc == 2 and err.strip() == (f"reclaim-ext: error: policy: {pol['slow_ctor']}: creating SlowCtor() ran "
                                       "longer than 2 s (stopped; rule R5)"), err
    rc, _, err, _ = result("slow_import")
    assert rc == 2 and err.strip() == (f"reclaim-ext: error: policy: {pol['slow_import']}: importing it ran longer "
                                       "than 2 s (stopped; rule R5)"), err
    rc, out, err, _ = result("check_slow_ctor")
    assert rc == 2 and err.strip() == (f"reclaim-ext: error: policy: {pol['slow_ctor']}: creating SlowCtor() ran "
                                       "longer than 2 s (stopped; rule R5)"), out + err


def test_check_reports_a_stalling_and_an_exiting_policy(cli):
    _, result = cli
    rc, out, err, _ = result("check")
    assert rc == 1, out + err
    lines = out.splitlines()
    assert any(ln.startswith("FAIL  cache: zipf, capacity 1:") and "ERROR_POLICY: SystemExit(0) in hook evict"
               in ln for ln in lines), out
    assert any(ln.startswith("FAIL  cache: zipf, capacity 64:") and "ERROR_STALL" in ln for ln in lines), out
    assert "no problem" not in out and "problem(s)" in lines[-1]


def test_a_hook_that_cannot_be_stopped_ends_the_run_with_one_error_line(cli):
    """The last resort ends the process a grace period after the budget: one line naming the
    policy, the hook and the budget; exit code 2."""
    _, result = cli
    rc, out, err, took = result("stuck")
    assert rc == 2 and out == ""
    assert err.splitlines() == ["reclaim-ext: error: policy Stuck: hook evict() ran past its 2 s budget and could "
                                "not be stopped (blocked in code that ignores signals, or it catches PolicyStall); "
                                "gave up 2 s later"], err
    assert took < 30  # 2 s budget + 2 s grace + the subprocess's start (slow on a loaded machine)


# ---- SystemExit: an error of the policy, never the end of the run -----------------------------------

def test_sys_exit_in_a_hook_is_ejected_from_the_cli(cli):
    _, result = cli
    rc, out, err, _ = result("quits")
    assert rc == 0, err
    res = json.loads(out)
    assert res["exit"]["kind"] == "ERROR_POLICY" and res["exit"]["reason"].startswith("SystemExit(0) in hook evict")
    assert res["accesses"] == 20000


def _trace(n: int = 5_000, objects: int = 1_000) -> ArrayTrace:
    rec = make_records(n)
    rec["kind"] = Kind.FILE_FD
    rec["page"] = (np.random.default_rng(1).zipf(1.1, n) % objects).astype(np.uint64)
    return ArrayTrace("zipf", rec)


LRU = list_lru()


def _lru_misses() -> int:
    return run_cache(_trace(), LRU(), 100)["misses"]


@pytest.mark.parametrize("hook", ["init", "added", "accessed", "evict", "removed"])
@pytest.mark.parametrize("exc", [SystemExit(0), SystemExit("bye"), KeyboardInterrupt(), GeneratorExit()])
def test_base_exceptions_from_any_hook_eject_the_policy(hook, exc):
    """SystemExit, a KeyboardInterrupt the policy raises itself (no Ctrl-C happened), any
    BaseException: ERROR_POLICY, and the fallback finishes the run."""

    class Raises(LRU):
        pass

    def bad(self, ctx, *args):
        raise exc

    setattr(Raises, hook, bad)
    res = run_cache(_trace(), Raises(), 100, check=True)
    ex = res["exit"]
    assert ex["kind"] == "ERROR_POLICY" and ex["hook"] == hook, ex
    assert ex["reason"].startswith(f"{exc!r} in hook {hook}: a policy cannot end the run")
    assert res["accesses"] == 5_000
    if hook == "init":
        assert res["misses"] == _lru_misses()  # the fallback (LRU by last access) from the start


def test_dump_and_exit_hooks_cannot_stall_or_end_the_run():
    class BadGoodbye(LRU):
        def evict(self, ctx, n):
            raise RuntimeError("bug")

        def dump(self, ctx):
            time.sleep(5)

        def exit(self, ctx, info):
            sys.exit(1)

    t = time.monotonic()
    res = run_cache(_trace(), BadGoodbye(), 100, hook_budget=0.2)
    assert time.monotonic() - t < 4  # the dump sleeps 5 s
    assert res["exit"]["kind"] == "ERROR_POLICY" and res["exit"]["dump"] == "(dump failed: ran longer than 0.2 s)"


def test_sys_exit_in_the_constructor_or_import_is_a_load_error(tmp_path):
    ctor = policy_file(tmp_path, "quits_ctor", """
        class QuitsCtor(Policy):
            def __init__(self):
                sys.exit(3)
    """)
    imp = policy_file(tmp_path, "quits_import", "sys.exit(0)\n")
    with pytest.raises(ConfigError, match=r"creating QuitsCtor\(\) raised SystemExit\(3\): a policy cannot end"):
        get_policy(ctor)
    with pytest.raises(ConfigError, match=r"importing it raised SystemExit\(0\): a policy cannot end the run"):
        get_policy(imp)


# ---- stalls the policy catches ----------------------------------------------------------------------

def test_a_hook_that_catches_the_stall_and_returns_is_still_ejected():
    class Catches(LRU):
        slept = False

        def evict(self, ctx, n):
            if not self.slept:
                self.slept = True
                try:
                    time.sleep(1)
                except BaseException:  # noqa: BLE001 - the point of the test
                    pass
            return super().evict(ctx, n)

    res = run_cache(_trace(), Catches(), 100, hook_budget=0.2)
    assert res["exit"]["kind"] == "ERROR_STALL" and res["exit"]["hook"] == "evict"


# ---- Ctrl-C -------------------------------------------------------------------------------------------

def _interrupt_after(tmp_path, body: str, delay: float, args=CACHE_RUN, timeout: float = 30):
    pol = policy_file(tmp_path, "sleeper", body)
    mark = str(tmp_path / "sleeping")
    p = subprocess.Popen([sys.executable, "-m", "reclaim_ext", "run", "--policy", pol, *args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, RECLAIM_EXT_CHECK="0", MARK=mark))
    wait_for(mark)
    time.sleep(delay)
    t = time.monotonic()
    p.send_signal(signal.SIGINT)
    rc, out, err = finish(p, timeout)
    return rc, out, err, time.monotonic() - t


def test_ctrl_c_while_a_hook_sleeps_aborts_the_run(tmp_path):
    rc, out, err, _ = _interrupt_after(tmp_path, SLEEPS_IN_EVICT, 0.5)
    assert rc == 130 and err.strip().endswith("reclaim-ext: aborted") and "ERROR_STALL" not in out + err


def test_ctrl_c_after_the_budget_is_not_taken_as_a_stall(tmp_path):
    """Once the budget is over, the hook is ejected (at 2 s) and classic goes on; the Ctrl-C at
    3 s aborts the run. (It used to be replaced by the pending stall: exit 0, a stall record.)"""
    rc, out, err, took = _interrupt_after(tmp_path, SLEEPS_IN_EVICT, 3.0,
                                          args=["--workload", "zipf", "-p", "accesses=20000000"])
    assert rc == 130 and err.strip().endswith("reclaim-ext: aborted"), (rc, out[-500:], err)
    assert "miss ratio" not in out and took < 10


def test_ctrl_c_cannot_be_swallowed_by_a_hook(tmp_path):
    """A hook that catches everything and sleeps on: the Ctrl-C still aborts the run (130), a
    second after it arrived."""
    rc, out, err, took = _interrupt_after(tmp_path, """
        class Swallows(Policy):
            def evict(self, ctx, n):
                open(os.environ["MARK"], "w").close()
                while True:
                    try:
                        time.sleep(100)
                    except BaseException:
                        pass
    """, 0.5)
    assert rc == 130 and "reclaim-ext: aborted" in err and "ERROR_STALL" not in out + err, (rc, err)
    assert took < 5


def _watchdogs() -> set:
    return {th for th in threading.enumerate() if th.name == "reclaim_ext-watchdog"}


@pytest.mark.parametrize("catches", [False, True])
def test_ctrl_c_in_process_raises_keyboard_interrupt_and_leaves_nothing_behind(catches):
    """A Ctrl-C in a hook (here: the hook sends SIGINT to its own process) ends the run with
    KeyboardInterrupt, also when the hook catches it and returns."""

    class CtrlC(LRU):
        def evict(self, ctx, n):
            os.kill(os.getpid(), signal.SIGINT)
            try:
                time.sleep(5)
            except KeyboardInterrupt:
                if not catches:
                    raise
            return super().evict(ctx, n)

    before = signal.getsignal(signal.SIGALRM), signal.getsignal(signal.SIGINT)
    watchdogs_before = _watchdogs()
    t = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_cache(_trace(), CtrlC(), 100)
    assert time.monotonic() - t < 4  # the hook sleeps 5 s
    assert (signal.getsignal(signal.SIGALRM), signal.getsignal(signal.SIGINT)) == before
    assert _watchdogs() <= watchdogs_before  # (a test that never finished its run may have left one)


# ---- nothing left behind; other threads ---------------------------------------------------------------

def test_no_signal_handler_or_watchdog_thread_is_left_after_runs():
    from reclaim_ext.api import RunConfig, run

    class Spins(LRU):
        def evict(self, ctx, n):
            while True:
                pass

    before = signal.getsignal(signal.SIGALRM), signal.getsignal(signal.SIGINT)
    watchdogs_before = _watchdogs()
    assert run_cache(_trace(), Spins(), 100, hook_budget=0.2)["exit"]["kind"] == "ERROR_STALL"
    run(RunConfig(policy="lru", workload="zipf", workload_params=dict(pages=3000, accesses=20_000), memory=512))
    assert (signal.getsignal(signal.SIGALRM), signal.getsignal(signal.SIGINT)) == before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert _watchdogs() <= watchdogs_before  # (a test that never finished its run may have left one)


def test_outside_the_main_thread_the_watchdog_degrades_to_the_async_exception(monkeypatch):
    """No signals there: a Python loop is still stopped at its budget; a hook blocked in C is
    stopped when the call returns (no last resort: this one outlasts budget + grace, and the
    process lives on); the process's signal handlers are not touched."""
    from reclaim_ext.ext import safety

    monkeypatch.setattr(safety, "STUCK_GRACE_S", 0.1)

    class Spins(LRU):
        def evict(self, ctx, n):
            while True:
                pass

    class Naps(LRU):
        def evict(self, ctx, n):
            time.sleep(0.6)
            return super().evict(ctx, n)

    before = signal.getsignal(signal.SIGALRM), signal.getsignal(signal.SIGINT)
    out = {}

    def work():
        out["spins"] = run_cache(_trace(), Spins(), 100, hook_budget=0.2)
        out["naps"] = run_cache(_trace(), Naps(), 100, hook_budget=0.2)

    th = threading.Thread(target=work)
    th.start()
    th.join(20)
    assert not th.is_alive()
    for k in ("spins", "naps"):
        assert out[k]["exit"]["kind"] == "ERROR_STALL" and out[k]["accesses"] == 5_000, out[k]["exit"]
    assert (signal.getsignal(signal.SIGALRM), signal.getsignal(signal.SIGINT)) == before


def test_a_policys_keyboard_interrupt_is_its_error_when_sigint_is_ignored():
    """A run started in the background (SIGINT ignored, as a non-interactive shell's `cmd &` does):
    no Ctrl-C can arrive, so a KeyboardInterrupt from a hook is the policy's error, not a Ctrl-C."""
    import signal

    class Raises(LRU):
        def evict(self, ctx, n):
            raise KeyboardInterrupt()

    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        res = run_cache(_trace(), Raises(), 100, check=True)
    finally:
        signal.signal(signal.SIGINT, old)
    assert res["exit"]["kind"] == "ERROR_POLICY" and res["accesses"] == 5_000
