"""Fuzzing every input parser (issue 14): trace readers, size and spec parsers, and the CLI.

Each target takes an input (bytes for a trace file, text for a spec, an argument list for the
CLI) and must end in one of two ways: success, with output that passes the target's sanity check
(records of valid kinds, a size that is a page count, ...), or the project's own error
(ReclaimExtError, which the CLI prints as one `reclaim-ext: error:` line; for the CLI target, exit
status 2 with that line). Anything else is a finding: another exception (a traceback for the
user), a hang over the time limit, or garbage read silently.

Inputs are random and mutated: seeds are slices of the real traces in shared/traces (and valid
specs), mutated by bit flips, interesting bytes and numbers (field boundaries, 2**64, quotes,
newlines, magic numbers), truncation, splicing and duplication; plus purely random inputs. The
mutator is seeded, so a run is reproducible (`--seed`); every finding is saved with its input so
it can become a regression test (tests/test_fuzz_inputs.py).

Run: python benchmarks/fuzz_inputs.py [--inputs N] [--targets a,b] [--seed S] [--out DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ReclaimExtError

HANG_SECONDS = 5.0
SHARED_TRACES = Path(__file__).resolve().parents[4] / "shared" / "traces"


class Hang(Exception):
    """The input ran over the time limit."""


class Garbage(Exception):
    """A target accepted the input and produced output that fails its sanity check."""


# ---- seeds -----------------------------------------------------------------------------------


def _shared(name: str) -> Path:
    p = SHARED_TRACES / name
    if not p.is_file():
        raise SystemExit(f"fuzz: the shared trace {p} is missing (shared/traces beside the checkout)")
    return p


def _head(name: str, nbytes: int) -> bytes:
    with open(_shared(name), "rb") as f:
        return f.read(nbytes)


def _text_head(data: bytes, lines: int) -> bytes:
    return b"".join(data.splitlines(keepends=True)[:lines])


def trace_seeds() -> dict[str, list[bytes]]:
    """Valid small files per trace target (slices of the shared real traces)."""
    import zstandard

    from ..trace import make_workload, write_native

    oracle = _head("cloudPhysicsIO.oracleGeneral.bin", 24 * 64)
    vscsi = _head("cloudPhysicsIO.vscsi", 4096)
    cp_csv = _text_head(_head("cloudPhysicsIO.csv", 1 << 14), 40)
    with zstandard.ZstdDecompressor().stream_reader(open(_shared("twitter_cluster52.csv.zst"), "rb")) as r:
        tw_csv = _text_head(r.read(1 << 14), 40)
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "n.bin")
        write_native(p, make_workload("mixed", seed=1, accesses=64, procs=2))
        native = Path(p).read_bytes()
    zc = zstandard.ZstdCompressor(level=1)
    return {
        "oraclegeneral": [oracle],
        "oraclegeneral-zst": [zc.compress(oracle)],
        "vscsi": [vscsi],
        "csv": [cp_csv, tw_csv],
        "csv-zst": [zc.compress(tw_csv)],
        "native": [native],
    }


# csv reader options: the ones each seed file needs, and random values for the option target
CSV_OPTS = [
    dict(offset_col="lbn", size_col="size", offset_unit="512", op_col="op", op_codes="scsi"),
    dict(id_col="2", id_is_num="true"),
    dict(id_col="object", id_is_num="false"),
    {},
]
CSV_OPT_VALUES = {
    "id_col": ["1", "2", "5", "0", "-1", "99", "lbn", "object", "nope", "", "1.5"],
    "op_col": ["3", "op", "1", "0", "x"],
    "header": ["true", "false", "auto", "maybe", ""],
    "delimiter": [",", "\t", "tab", ";", " ", "#", '"', "", ",,", "\n", "é"],
    "id_is_num": ["true", "false", "1", "no", "x"],
    "offset_col": ["5", "lbn", "0", "x"],
    "size_col": ["4", "size", "0", "x"],
    "offset_unit": ["1", "512", "0", "-1", "4096", "1099511627776", "x", "1.5"],
    "op_codes": ["rw", "scsi", "x", ""],
    "bogus": ["1"],
}

SPEC_SEEDS = {
    "size": ["64MiB", "2GiB", "4096B", "1000", "0", "1.5GiB", "16EiB", "4KiB", "100pages", "0x10", "1e3"],
    "memcg": ["name=a,pids=0,max=16MiB", "name=b/c,pids=1+2,max=24MiB", "name=a,min=8MiB,max=max",
              "name=/x,pids=1-3;7"],
    "switch": ["1000000:s3fifo", "500000:none", "1000:lru@memcg:/a", "0:classic@node:0", "1_000:lfu"],
    "scope": ["system", "node:0", "memcg:/a/b", "/a", "memcg:/"],
    "mechanism": ["+ptwalk,-bloom", "-lookaround", "+lockfree", "", "+ptwalk"],
    "workload-param": ["pages=1000", "accesses=2000", "alpha=0.9", "procs=2", "kind=anon", "write_ratio=0.5",
                       "dist=zipf", "passes=2", "hot_pages=100", "seed=3"],
    "proactive": ["500000:/a:64MiB", "1_000:a/b:8MiB:swappiness=0", "0:/:4KiB", "10:/x:1MiB:swappiness=200"],
    "swapon": ["kind=zram,size=64MiB,prio=100,ratio=3", "kind=disk,size=1GiB", "size=4096", "kind=zram,size=1MiB,prio=0"],
    "memcg-knobs": ["name=a,high=24MiB,low=8MiB", "name=b,swap_max=0,min=1MiB", "name=c,max=max,high=max,swap_max=max"],
    "machine-file": [
        'memory = "64MiB"\nswap = "32MiB"\nswappiness = 60\n[[memcg]]\nname = "web"\npids = "0"\nhigh = "24MiB"\n'
        'low = "8MiB"\n[[memcg]]\nname = "batch"\npids = [1, 2]\nmax = "32MiB"\nswap_max = "8MiB"\n'
        '[[proactive]]\nat = 500000\nmemcg = "/batch"\nsize = "8MiB"\nswappiness = 0\n',
        'memory = 4096\nmemory_recursiveprot = true\nwatermark_scale_factor = 10\nmin_free_kbytes = 4096\n'
        '[[memcg]]\nname = "a/b"\nmin = "1MiB"\n',
        '[[swap_device]]\nkind = "zram"\nsize = "16MiB"\nprio = 100\nratio = 2.5\n[[swap_device]]\nkind = "disk"\n'
        'size = "1GiB"\n',
    ],
}
INTERESTING_TEXT = ["0", "-1", "18446744073709551616", "9" * 30, "1e308", "nan", "inf", "-0", "0x1f", " ",
                    ",", "=", ":", "@", "/", "..", "+", "-", ";", "\x00", "é", "\n", "KiB", "pages", "max",
                    "name=", "pids=", "1-0", "5-3", "4294967296", "2**64", "1_000", "_", "."]
INTERESTING_BYTES = [b"\n", b",", b'"', b"#", b"\r", b"\x00", b"\xff", b"-1", b"18446744073709551616",
                     b"99999999999999999999999", b"1e5", b" ", b"\t", b"\xff\xfe", b"RXTRACE1",
                     b"\x28\xb5\x2f\xfd", b"nan", b"\"\"", b"\n\n", b"#x\n"]
BOUNDARY_INTS = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, (1 << 63) - 1, 1 << 63,
                 (1 << 64) - 1, 1 << 30, (1 << 30) + 1, 4096, 4095]


# ---- mutation --------------------------------------------------------------------------------


def mutate_bytes(rng: np.random.Generator, data: bytes, others: list[bytes]) -> bytes:
    """One to four random mutations of `data` (or, one time in sixteen, random bytes)."""
    if rng.random() < 1 / 16 or not data:
        return rng.bytes(int(rng.integers(0, 2048)))
    b = bytearray(data)
    for _ in range(int(rng.integers(1, 5))):
        op = int(rng.integers(0, 8))
        n = len(b)
        if n == 0:
            b += rng.bytes(8)
            continue
        i = int(rng.integers(0, n))
        if op == 0:  # bit flips
            for _ in range(int(rng.integers(1, 9))):
                j = int(rng.integers(0, n))
                b[j] ^= 1 << int(rng.integers(0, 8))
        elif op == 1:  # an interesting token, overwriting or inserted
            tok = INTERESTING_BYTES[int(rng.integers(0, len(INTERESTING_BYTES)))]
            if rng.random() < 0.5:
                b[i:i + len(tok)] = tok
            else:
                b[i:i] = tok
        elif op == 2:  # truncate
            del b[i:]
        elif op == 3:  # a boundary value over a 4- or 8-byte field
            w = 8 if rng.random() < 0.5 else 4
            v = BOUNDARY_INTS[int(rng.integers(0, len(BOUNDARY_INTS)))] & ((1 << (8 * w)) - 1)
            b[i:i + w] = v.to_bytes(w, "little")
        elif op == 4:  # splice with another seed
            o = others[int(rng.integers(0, len(others)))]
            j = int(rng.integers(0, len(o) + 1))
            b = b[:i] + bytearray(o[j:])
        elif op == 5:  # duplicate a region
            j = int(rng.integers(i, min(n, i + 512) + 1))
            b[j:j] = b[i:j]
        elif op == 6:  # delete a region
            del b[i:i + int(rng.integers(1, 64))]
        else:  # random bytes inserted
            b[i:i] = rng.bytes(int(rng.integers(1, 32)))
    return bytes(b)


def mutate_text(rng: np.random.Generator, text: str, others: list[str]) -> str:
    """One to three mutations of a spec string (or a random string)."""
    if rng.random() < 1 / 16:
        alphabet = "0123456789abcdefxyz=,:;@/+-._ \tKMGiBpages\x00é"
        return "".join(alphabet[int(k)] for k in rng.integers(0, len(alphabet), int(rng.integers(0, 24))))
    s = text
    for _ in range(int(rng.integers(1, 4))):
        op = int(rng.integers(0, 5))
        i = int(rng.integers(0, len(s) + 1))
        if op == 0:
            s = s[:i] + INTERESTING_TEXT[int(rng.integers(0, len(INTERESTING_TEXT)))] + s[i:]
        elif op == 1:
            j = int(rng.integers(i, len(s) + 1))
            s = s[:i] + INTERESTING_TEXT[int(rng.integers(0, len(INTERESTING_TEXT)))] + s[j:]
        elif op == 2:
            s = s[:i]
        elif op == 3:
            o = others[int(rng.integers(0, len(others)))]
            s = s[:i] + o[int(rng.integers(0, len(o) + 1)):]
        else:
            s = s[:i] + s[i:i + 1] * int(rng.integers(2, 4)) + s[i + 1:]
    return s


# ---- targets ---------------------------------------------------------------------------------


def _check_records(chunk) -> int:
    from ..trace import RECORD_DTYPE, Kind

    if chunk.dtype != RECORD_DTYPE:
        raise Garbage(f"a chunk of dtype {chunk.dtype}")
    kinds = np.array([int(k) for k in Kind])
    if len(chunk) and not np.isin(chunk["kind"], kinds).all():
        raise Garbage(f"record kinds {sorted(set(chunk['kind'].tolist()) - set(kinds.tolist()))}")
    if len(chunk) and chunk["write"].max() > 1:
        raise Garbage("a write flag other than 0 or 1")
    return len(chunk)


def run_trace_input(path: str, fmt: str, opts: dict, data: bytes) -> str:
    """Write `data` to `path`, open it as `fmt` and read every record. Returns 'ok'; raises the
    reader's error or Garbage."""
    from ..trace import open_trace

    with open(path, "wb") as f:
        f.write(data)
    trace = open_trace(path, fmt, **opts)
    n = 0
    for chunk in trace.chunks(4096):
        n += _check_records(chunk)
    if trace.length is not None and n != trace.length:
        raise Garbage(f"{n} records read, the reader announced {trace.length}")
    return "ok"


def _spec_runner(name: str) -> Callable[[str], object]:
    if name == "size":
        from ..machine.units import MAX_PAGES, parse_size

        def run(text):
            v = parse_size(text, "memory")
            if not isinstance(v, int) or not 0 <= v <= MAX_PAGES:
                raise Garbage(f"parse_size({text!r}) = {v!r}")
        return run
    if name == "memcg":
        from ..machine.memcg import parse_memcg_spec
        return parse_memcg_spec
    if name == "switch":
        from ..ext.switch import parse_switch
        return parse_switch
    if name == "scope":
        from ..ext.adapter import parse_scope
        return parse_scope
    if name == "mechanism":
        from ..policies import BUILTIN, parse_mechanisms

        def run(text):
            for cls in BUILTIN.values():
                parse_mechanisms(text, cls)
        return run
    if name == "proactive":
        from ..machine.memcg import parse_proactive
        return parse_proactive
    if name == "swapon":
        from ..machine.node import Swap, parse_swapon

        def run(text):
            Swap([parse_swapon(text)])
        return run
    if name == "memcg-knobs":
        from ..machine.memcg import parse_memcg_spec, resolve_memcgs

        def run(text):
            resolve_memcgs([parse_memcg_spec(text)])
        return run
    if name == "machine-file":
        from ..machine.file import describe, load_machine

        def run(text):
            import tempfile

            with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False, dir="/dev/shm" if os.path.isdir("/dev/shm") else None,
                                             encoding="utf-8", errors="surrogateescape") as fh:
                fh.write(text)
            try:
                describe(load_machine(fh.name))
            finally:
                os.unlink(fh.name)
        return run
    if name == "workload-param":
        from ..trace import WORKLOADS, make_workload, parse_workload_params

        names = sorted(WORKLOADS)

        def run(text):
            # the parameter given to each workload; a parsed set is also built and its first
            # chunk drawn, so values that parse but cannot run are found too
            error, accepted = None, False
            for w in names:
                try:
                    params = parse_workload_params(w, [text])
                except ReclaimExtError as e:
                    error = e
                    continue
                accepted = True
                trace = make_workload(w, **params)
                for chunk in trace.chunks(1024):
                    _check_records(chunk)
                    break
            if not accepted:  # no workload takes it: its error
                raise error
        return run
    raise KeyError(name)


TRACE_TARGETS = {
    "oraclegeneral": "oraclegeneral",
    "oraclegeneral-zst": "oraclegeneral",
    "vscsi": "vscsi",
    "csv": "csv",
    "csv-zst": "csv",
    "csv-options": "csv",
    "native": "native",
}
SPEC_TARGETS = tuple(SPEC_SEEDS)
CLI_TARGET = "cli"
TARGETS = (*TRACE_TARGETS, "wrong-format", *SPEC_TARGETS, CLI_TARGET)
# share of the inputs per target, by cost (a CLI run is thousands of times a spec parse)
WEIGHTS = {**{t: 6 for t in TRACE_TARGETS}, "wrong-format": 4, **{t: 8 for t in SPEC_TARGETS}, CLI_TARGET: 0.05}

CLI_SEEDS = [
    ["run", "-p", "accesses=2000", "--memory", "1MiB"],
    ["run", "--workload", "mixed", "-p", "accesses=2000", "--memory", "2MiB", "--memcg", "name=a,pids=0,max=1MiB"],
    ["run", "--policy", "mglru", "-p", "accesses=2000", "--memory", "1MiB", "--mechanism", "-bloom"],
    ["run", "--cache", "--capacity", "100", "--policy", "s3fifo", "-p", "accesses=2000"],
    ["run", "-p", "accesses=2000", "--memory", "1MiB", "--switch", "1000:lru"],
    ["run", "--workload", "loop", "-p", "pages=300", "--memory", "1MiB", "--swap", "1MiB", "--swappiness", "100"],
]


def _run_cli(args: list[str]) -> str:
    """The CLI in this process: exit 0, or exit 2 with one `reclaim-ext: error:` line (exit 3 is
    the simulated machine running out of memory, a result)."""
    from click.testing import CliRunner

    from ..cli import main

    res = CliRunner().invoke(main, args, catch_exceptions=True)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    err = res.stderr if hasattr(res, "stderr") else res.output
    if res.exit_code in (0, 3):
        return "ok"
    lines = [x for x in err.strip().splitlines() if x.strip()]
    if res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("reclaim-ext: error:"):
        return "error"
    raise Garbage(f"exit {res.exit_code}: {err.strip()[-300:]!r}")


LONG_RUN = 1_000_000  # accesses: a CLI input asking for more may take over the time limit


def _asked_long(args: list[str]) -> bool:
    """Whether a `run` command line asks for a workload of more than LONG_RUN accesses."""
    from ..trace import make_workload, parse_workload_params

    workload, params = "zipf", []
    for i, a in enumerate(args[:-1]):
        if a == "--workload":
            workload = args[i + 1]
        elif a in ("-p", "--param"):
            params.append(args[i + 1])
    try:
        length = make_workload(workload, **parse_workload_params(workload, params)).length
    except (ReclaimExtError, Hang):
        return False
    return length is not None and length > LONG_RUN


def _mutate_cli(rng: np.random.Generator, seeds: dict[str, list[bytes]], tmp: str) -> list[str]:
    if rng.random() < 0.3:  # a mutated trace file replayed end to end
        target = list(TRACE_TARGETS)[int(rng.integers(0, len(TRACE_TARGETS)))].replace("-options", "")
        fmt = TRACE_TARGETS[target]
        data = seeds[target][int(rng.integers(0, len(seeds[target])))]
        path = os.path.join(tmp, "cli.trace")
        Path(path).write_bytes(mutate_bytes(rng, data, seeds[target]) if rng.random() < 0.8 else data)
        args = ["run", "--trace", path, "--format", fmt, "--memory", "1MiB"]
        if fmt == "csv" and rng.random() < 0.5:
            args += ["--trace-opt", "id_col=2"]
        return args
    args = list(CLI_SEEDS[int(rng.integers(0, len(CLI_SEEDS)))])
    texts = [a for seeds in SPEC_SEEDS.values() for a in seeds]
    for _ in range(int(rng.integers(1, 3))):
        i = int(rng.integers(0, len(args)))
        if args[i].startswith("-") or rng.random() < 0.2:
            continue
        args[i] = mutate_text(rng, args[i], texts)
    return args


# ---- the harness -----------------------------------------------------------------------------


def _alarm(signum, frame):
    raise Hang(f"over {HANG_SECONDS:g} s")


def _where(exc: BaseException) -> str:
    """The innermost reclaim_ext frame of a traceback (file:line function)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "reclaim_ext" in f.filename]
    f = frames[-1] if frames else (traceback.extract_tb(exc.__traceback__) or [None])[-1]
    if f is None:
        return "?"
    return f"{Path(f.filename).name}:{f.lineno} {f.name}"


class Fuzzer:
    def __init__(self, seed: int = 0, out: str | None = None, quiet: bool = False):
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.out = Path(out) if out else None
        self.quiet = quiet
        self.tmp = tempfile.mkdtemp(prefix="reclaim-ext-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        self.seeds = trace_seeds()
        self.spec_runners = {t: _spec_runner(t) for t in SPEC_TARGETS}
        self.counts: Counter = Counter()
        self.outcomes: Counter = Counter()
        self.findings: dict[tuple[str, str, str], dict] = {}
        self.cli_warm = False

    def one(self, target: str) -> tuple[str, object]:
        """Build one input for `target` and run it: ('ok' | 'error' | 'finding', the input)."""
        rng = self.rng
        if target in TRACE_TARGETS:
            fmt = TRACE_TARGETS[target]
            base = target.replace("-options", "")
            seeds = self.seeds[base]
            k = int(rng.integers(0, len(seeds)))
            opts: dict = {}
            if fmt == "csv":
                opts = dict(CSV_OPTS[0] if k == 0 and base == "csv" else CSV_OPTS[1 + int(rng.integers(0, 3))])
                if target == "csv-options":
                    for name in rng.choice(list(CSV_OPT_VALUES), size=int(rng.integers(1, 4)), replace=False):
                        vals = CSV_OPT_VALUES[name]
                        opts[name] = vals[int(rng.integers(0, len(vals)))]
            data = seeds[k] if target == "csv-options" and rng.random() < 0.5 else mutate_bytes(rng, seeds[k], seeds)
            if target.endswith("-zst") and rng.random() < 0.5:  # mutate the plain text, then compress
                import zstandard

                plain = zstandard.ZstdDecompressor().decompressobj().decompress(seeds[k])
                data = zstandard.ZstdCompressor(level=1).compress(mutate_bytes(rng, plain, [plain]))
            path = os.path.join(self.tmp, "t.zst" if target.endswith("-zst") and rng.random() < 0.5 else "t.bin")
            inp = {"format": fmt, "opts": opts, "bytes": data, "name": os.path.basename(path)}
            return self._guard(target, inp, lambda: run_trace_input(path, fmt, opts, data))
        if target == "wrong-format":  # a text trace given as a binary format, or the reverse
            binary = ("oraclegeneral", "vscsi", "native")
            if rng.random() < 0.5:
                seeds, fmt = self.seeds["csv"], binary[int(rng.integers(0, 3))]
            else:
                seeds, fmt = self.seeds[binary[int(rng.integers(0, 3))]], "csv"
            data = seeds[int(rng.integers(0, len(seeds)))]
            if rng.random() < 0.5:
                data = mutate_bytes(rng, data, seeds)
            path = os.path.join(self.tmp, "w.bin")
            inp = {"format": fmt, "opts": {}, "bytes": data, "name": "w.bin"}

            def run():
                run_trace_input(path, fmt, {}, data)
                # mutated text may have become binary noise, which is as valid as binary records
                # as any other bytes; text (90 % printable in the first KiB) must be refused
                head = np.frombuffer(data[:1024], dtype=np.uint8)
                text = np.count_nonzero(((head >= 32) & (head < 127)) | np.isin(head, (9, 10, 13))) >= 0.9 * len(head)
                if fmt == "csv" or text:
                    raise Garbage(f"a {'text' if fmt != 'csv' else 'binary'} file read as {fmt} records")
                return "ok"
            return self._guard(target, inp, run)
        if target in SPEC_TARGETS:
            seeds = SPEC_SEEDS[target]
            text = mutate_text(rng, seeds[int(rng.integers(0, len(seeds)))], seeds)
            return self._guard(target, text, lambda: self.spec_runners[target](text))
        if not self.cli_warm:  # the first use of a code path loads (or compiles) it: not a hang
            self.cli_warm = True
            for seed in CLI_SEEDS:
                _run_cli(seed)
        args = _mutate_cli(rng, self.seeds, self.tmp)

        def run_cli():
            try:
                return _run_cli(args)
            except Hang:
                if _asked_long(args):  # a long run because a long run was asked for
                    self.outcomes[(target, "long")] += 1
                    return "ok"
                raise
        return self._guard(target, args, run_cli)

    def _guard(self, target: str, inp, fn) -> tuple[str, object]:
        self.counts[target] += 1
        signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
        try:
            r = fn()
            outcome = "error" if r == "error" else "ok"
        except ReclaimExtError:
            outcome = "error"
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001 - a finding is anything else
            outcome = "finding"
            self._record(target, inp, e)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        self.outcomes[(target, outcome)] += 1
        return outcome, inp

    def _record(self, target: str, inp, e: BaseException) -> None:
        key = (target, type(e).__name__, _where(e))
        if key in self.findings:
            self.findings[key]["count"] += 1
            return
        entry = {"target": target, "exception": type(e).__name__, "where": key[2],
                 "message": str(e)[:300], "count": 1}
        if isinstance(inp, dict):
            entry.update(format=inp["format"], opts=inp["opts"], file_name=inp["name"], size=len(inp["bytes"]))
            if self.out:
                self.out.mkdir(parents=True, exist_ok=True)
                fname = f"finding-{len(self.findings)}-{target}.bin"
                (self.out / fname).write_bytes(inp["bytes"])
                entry["input_file"] = fname
        else:
            entry["input"] = inp
        self.findings[key] = entry
        if not self.quiet:
            print(f"  finding: {target}: {type(e).__name__} at {key[2]}: {str(e)[:120]}", file=sys.stderr)

    def run(self, total: int, targets: tuple[str, ...] = TARGETS, progress: bool = True) -> dict:
        w = np.array([WEIGHTS[t] for t in targets], dtype=float)
        plan = self.rng.choice(len(targets), size=total, p=w / w.sum())
        t0 = time.monotonic()
        last = t0
        for n, ti in enumerate(plan, 1):
            self.one(targets[int(ti)])
            now = time.monotonic()
            if progress and now - last > 10:
                last = now
                print(f"  {n:,} / {total:,} inputs, {n / (now - t0):,.0f}/s, {len(self.findings)} findings",
                      file=sys.stderr, flush=True)
        return self.report(time.monotonic() - t0)

    def report(self, seconds: float) -> dict:
        per = {}
        for t in sorted(self.counts):
            per[t] = {"inputs": self.counts[t], "ok": self.outcomes[(t, "ok")], "error": self.outcomes[(t, "error")],
                      "findings": self.outcomes[(t, "finding")]}
            if self.outcomes[(t, "long")]:
                per[t]["long_runs_stopped"] = self.outcomes[(t, "long")]
        return {"seed": self.seed, "inputs": sum(self.counts.values()), "seconds": round(seconds, 1),
                "targets": per, "findings": list(self.findings.values())}

    def close(self) -> None:
        import shutil

        shutil.rmtree(self.tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="fuzz_inputs.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--inputs", type=int, default=100_000, help="inputs in total (default 100,000)")
    ap.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated (default all: {', '.join(TARGETS)})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="fuzz-findings", help="where findings' inputs and report.json go")
    a = ap.parse_args(argv)
    targets = tuple(t.strip() for t in a.targets.split(",") if t.strip())
    bad = [t for t in targets if t not in TARGETS]
    if bad or not targets or a.inputs < 1:
        ap.error(f"unknown targets {bad} (known: {', '.join(TARGETS)})" if bad else "need inputs >= 1 and a target")
    fz = Fuzzer(a.seed, a.out)
    try:
        rep = fz.run(a.inputs, targets)
    finally:
        fz.close()
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "report.json").write_text(json.dumps(rep, indent=1, default=str))
    buf = io.StringIO()
    print(f"{rep['inputs']:,} inputs in {rep['seconds']} s (seed {rep['seed']}), {len(rep['findings'])} findings",
          file=buf)
    for t, c in rep["targets"].items():
        print(f"  {t:18s} {c['inputs']:>9,} inputs  {c['ok']:>9,} ok  {c['error']:>9,} errors  {c['findings']:>5} findings",
              file=buf)
    for f in rep["findings"]:
        print(f"  FINDING {f['target']}: {f['exception']} at {f['where']} (x{f['count']}): {f['message'][:100]}", file=buf)
    print(buf.getvalue(), end="")
    return 1 if rep["findings"] else 0
