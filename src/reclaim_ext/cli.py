"""The reclaim-ext command line."""

from __future__ import annotations

import json
import os
import sys
import time

import click

from . import __version__
from .cli_common import (EXIT_BAD_INPUT, EXIT_OOM, _check_json_path, _emit_json, _given, _ignored_warning,
                         _not_with, _size, _trace_opts, _user_errors)
from .machine.units import format_size
from .record.cli import record  # reclaim-ext record -- CMD: trace a real program (docs/traces.md)
from .sweep_cli import mrc, suite, sweep  # reclaim-ext sweep / mrc: grids on Dask, miss-ratio curves (docs/benchmarks.md)
from .validate.cli import validate  # reclaim-ext validate kernel (docs/fidelity.md)


class _LazyProgress:
    """A progress bar that appears only once a run has taken a couple of seconds, and only on a
    terminal."""

    def __init__(self, total: int | None, enabled: bool):
        self.total = total
        self.enabled = enabled
        self.done = 0
        self.t0 = time.monotonic()
        self.bar = None
        self.task = None

    def __call__(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        if self.bar is None:
            if time.monotonic() - self.t0 < 2.0:
                return
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), transient=True, console=_err_console())
            self.bar.start()
            self.task = self.bar.add_task("replay", total=self.total)
        self.bar.update(self.task, completed=self.done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


class _RunCounter:
    """Finished runs out of `total`, as a progress bar on a terminal."""

    def __init__(self, total: int, enabled: bool):
        self.bar = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("runs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                transient=True, console=_err_console())
            self.bar.start()
            self.task = self.bar.add_task("runs", total=total)

    def __call__(self, label: str) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _err_console():
    from rich.console import Console

    return Console(stderr=True)


class _Cli(click.Group):
    """Usage errors as one line: `reclaim-ext: error: <what>`, exit code 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            if type(e).__name__ == "NoArgsIsHelpError":  # bare `reclaim-ext`: show the help
                click.echo(e.format_message())
                sys.exit(0)
            hint = f" (see `{_command_path(e.ctx)} --help`)" if e.ctx and e.ctx.parent else ""
            click.echo(f"reclaim-ext: error: {e.format_message()}{hint}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except click.exceptions.Abort:
            click.echo("reclaim-ext: aborted", err=True)
            sys.exit(130)
        except click.ClickException as e:
            click.echo(f"reclaim-ext: error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)


def _command_path(ctx: click.Context) -> str:
    """The command as typed, e.g. `reclaim-ext validate kernel` (whatever the program was named)."""
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name)
        ctx = ctx.parent
    return " ".join(["reclaim-ext", *reversed(names)])


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reclaim-ext")
def main() -> None:
    """reclaim-ext: Linux page reclaim (one core, pluggable policies) on page-access traces."""


_MECHANISM_HELP = ("Mechanisms on/off: comma-separated +name/-name from ptwalk, bloom, pmd_young, lookaround, "
                   "lockfree, memcg_lru (MGLRU's root reclaim through the memcg LRU; off: the memcg tree walk) "
                   "(e.g. `--policy classic --mechanism +ptwalk,+lookaround`, "
                   "`--policy mglru --mechanism -bloom,-lookaround`; see `reclaim-ext policies`).")

# Options shared by `run` and `ablate`: what to replay, on which machine, with which policy.
_RUN_OPTIONS = (
    click.option("--policy", default="classic", show_default=True, help="Reclaim policy (see `reclaim-ext policies`)."),
    click.option("--mechanism", "mechanisms", metavar="SPEC", default=None, help=_MECHANISM_HELP),
    click.option("--min-ttl-ms", type=float, default=0, show_default=True,
                 help="MGLRU's /sys/kernel/mm/lru_gen/min_ttl_ms: OOM-kill rather than evict a generation "
                      "younger than this (0 = off; mglru only)."),
    click.option("--workload", default="zipf", show_default=True,
                 help="Built-in workload (see `reclaim-ext workloads`)."),
    click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
                 help="Workload parameter, repeatable (e.g. -p alpha=1.2 -p pages=100000)."),
    click.option("--trace", "trace_path", type=click.Path(dir_okay=False),
                 help="Replay this trace file instead of a workload."),
    click.option("--format", "trace_format", type=click.Choice(["oraclegeneral", "csv", "vscsi", "native"]),
                 help="Format of --trace."),
    click.option("--trace-opt", "trace_opts", multiple=True, metavar="KEY=VALUE",
                 help="Reader option, repeatable (e.g. --trace-opt id_col=5 for csv; see docs/traces.md)."),
    click.option("--memory", default="64MiB", show_default=True, callback=_size("memory"),
                 help="Memory size (64MiB, 2GiB, or a page count)."),
    click.option("--swap", default=None, callback=_size("swap"),
                 help="Swap size [default: as large as --memory; 0 = no swap]."),
    click.option("--swappiness", default=60, show_default=True, type=click.IntRange(0, 200), help="vm.swappiness."),
    click.option("--swap-device", "swap_device", default="zram", show_default=True,
                 type=click.Choice(["zram", "disk"]),
                 help="zram: a swap-in frees its slot (no swap cache); disk: a read fault keeps the page in the "
                      "swap cache with its slot, and reclaiming it again unwritten needs no write (docs/model.md)."),
    click.option("--zram-ratio", "zram_ratio", default=0.0, show_default=True, type=click.FloatRange(min=0),
                 help="zram's compression ratio: each page it stores takes 1/RATIO of a page of the node's memory; "
                      "0: zram's memory is not modelled."),
    click.option("--swapon", "swapon", multiple=True, metavar="SPEC",
                 help="A swap device, repeatable, in place of --swap/--swap-device/--zram-ratio: "
                      "kind=zram|disk,size=SIZE[,prio=N][,ratio=R] (prio as swapon -p: slots come from the "
                      "highest-priority device with room, equal priorities in turn; default below the devices "
                      "before it), e.g. --swapon kind=zram,size=32MiB,prio=100 --swapon kind=disk,size=1GiB."),
    click.option("--seed", default=0, show_default=True, type=int, help="Seed of the workload generator."),
    click.option("--mode", default="fast", show_default=True, type=click.Choice(["fast", "exact"]),
                 help="Driver: fast (vectorized segments) or exact (one access at a time); same counters."),
    click.option("--check/--no-check", default=None,
                 help="Check page conservation after every reclaim (slow; for debugging) "
                      "[default: off, on with RECLAIM_EXT_CHECK=1]."),
    click.option("--min-free-kbytes", type=click.IntRange(128, None), default=None,
                 help="vm.min_free_kbytes [default: kernel formula]."),
    click.option("--watermark-scale-factor", type=click.IntRange(1, 3000), default=10, show_default=True,
                 help="vm.watermark_scale_factor."),
)


def _run_options(f):
    """Decorate a command with the shared run options (see _run_config)."""
    for opt in reversed(_RUN_OPTIONS):
        f = opt(f)
    return f


def _check_run_options(cache: bool, trace_path) -> list[str]:
    """Options that the run would ignore: refused when the result would not be what they ask for;
    a warning (returned, for after the other checks) when the result is the same either way."""
    if trace_path is not None:
        _not_with("--trace", _given("workload"), "the trace is what is replayed (give --workload or --trace)")
    elif _given("trace_format"):
        raise click.UsageError("--format needs --trace (it is the format of the trace file)")
    if cache:
        _not_with("--cache", _given("memory", "swap", "swappiness", "swap_device", "zram_ratio", "swapon",
                                    "min_free_kbytes", "watermark_scale_factor"),
                  "plain-cache mode has no machine, only --capacity pages")
        if _given("mode"):
            return ["--mode is ignored with --cache: plain-cache mode has one driver"]
    elif trace_path is not None and _given("seed"):
        return ["--seed is ignored with --trace: it seeds the workload generators, and the trace replays as recorded"]
    return []


def _run_config(policy, mechanisms, min_ttl_ms, workload, params, trace_path, trace_format, trace_opts, memory,
                swap, swappiness, seed, mode, check, min_free_kbytes, watermark_scale_factor, swap_device="zram",
                zram_ratio=0.0, swapon=(), cache=False, capacity=None, switches=(), memcgs=(), scope="system",
                topology=None):
    """The RunConfig of the shared run options, validated (bad input raises click or ReclaimExtError);
    topology: (nodes, numa, tiers) of _topology_options, set before the check (a scope names a node)."""
    from .api import RunConfig
    from .core.engine import default_check
    from .trace import parse_workload_params

    opts = _trace_opts(trace_opts)
    if trace_path is None and trace_opts:
        raise click.BadParameter("needs --trace", param_hint="--trace-opt")
    if trace_path is not None and params:
        raise click.BadParameter("workload parameters do not apply to --trace", param_hint="--param")
    ignored = _check_run_options(cache, trace_path)
    wparams = parse_workload_params(workload, list(params)) if trace_path is None else {}
    cfg = RunConfig(
        policy=policy, workload=workload, workload_params=wparams, trace=trace_path,
        trace_format=trace_format, trace_opts=opts, memory=memory, swap=swap, swappiness=swappiness,
        swap_device=swap_device, zram_ratio=zram_ratio, swap_devices=list(swapon), seed=seed, mode=mode, check=default_check() if check is None else check,
        min_free_kbytes=min_free_kbytes,
        watermark_scale_factor=watermark_scale_factor,
        mechanisms=mechanisms, min_ttl_ms=min_ttl_ms, cache=cache, capacity=capacity, switches=list(switches),
        memcgs=list(memcgs), scope=scope,
    )
    if topology is not None:
        _set_topology(cfg, *topology)
    cfg.validate()
    for text in ignored:
        _ignored_warning(text)
    return cfg


def _lru_gen_policies() -> list[str]:
    from .policies import BUILTIN

    return sorted(n for n, c in BUILTIN.items() if hasattr(c, "lru_gen_state"))


def _topology_options(f):
    """--nodes, --numa and --tiers (run, ablate)."""
    for opt in reversed((
        click.option("--nodes", "nodes", type=int, default=None, metavar="N",
                     help="NUMA nodes: --memory split into N equal nodes, each with its own watermarks, kswapd and "
                          "lruvecs (default 1). A task allocates on its node and falls back to the others by distance "
                          "when that node is at its low watermark. The result's `nodes` lists each node's counters."),
        click.option("--numa", "numa", multiple=True, metavar="pids=LIST,node=N[,bind]",
                     help="A memory policy, repeatable: the tasks of LIST allocate on node N (with bind: only there, "
                          "MPOL_BIND), or pids=LIST,interleave=0+1 (MPOL_INTERLEAVE: folio by folio over those nodes). "
                          "Tasks not named run on a DRAM node, pid mod their number, falling back to the others."),
        click.option("--tiers", "tiers", default=None, metavar="TIER,...",
                     help="Each node's memory tier, in node order: dram, cxl or pmem (e.g. --nodes 2 --tiers dram,cxl). "
                          "CXL and PMEM nodes have no CPUs and are slower to access; reclaim on a node demotes to the "
                          "nearest node of the next lower tier before it evicts (--mechanism -demotion: off)."),
    )):
        f = opt(f)
    return f


def _set_topology(cfg, nodes, numa, tiers) -> None:
    """The topology flags onto a RunConfig (checked with it)."""
    if nodes is not None:
        cfg.nodes = nodes
    cfg.numa = list(numa)
    cfg.tiers = [t.strip() for t in tiers.split(",")] if tiers else []


@main.command()
@_run_options
@click.option("--cache", is_flag=True,
              help="Plain-cache mode: a fixed --capacity, one eviction per miss, no reclaim core "
                   "(libCacheSim's model; for reclaim_ext policies such as lru, s3fifo or your file.py).")
@click.option("--capacity", default=None, callback=_size("capacity"),
              help="Pages the plain cache holds (with --cache; 1000, or a size like 4MiB).")
@click.option("--scope", default="system", show_default=True, metavar="SCOPE",
              help="Where --policy (a reclaim_ext policy) attaches: system, node:0 or memcg:/PATH (a --memcg). "
                   "Each lruvec (a memcg on a node) is governed by the policy of the nearest attached scope "
                   "(its memcg, an ancestor, its node, the system), else by classic.")
@click.option("--switch", "switches", multiple=True, metavar="AT:POLICY[@SCOPE]",
              help="Before access AT, replace the reclaim_ext policy attached to SCOPE (default system) by "
                   "POLICY (or detach it with 'none'); repeatable. E.g. --policy lru --switch 1000000:s3fifo, "
                   "--switch 0:lru@memcg:/a.")
@click.option("--memcg", "memcgs", multiple=True, metavar="SPEC",
              help="A memory cgroup, repeatable: name=PATH[,pids=LIST][,max=SIZE][,high=SIZE][,min=SIZE][,low=SIZE]"
                   "[,swap_max=SIZE], e.g. "
                   "--memcg name=a,pids=1-3,max=32MiB --memcg name=a/b,pids=4+7. PATH a or a/b (undeclared "
                   "parents are created without a limit); pids: trace pids charged to it (ranges lo-hi joined "
                   "by +; others stay in the root memcg); max: memory.max (sizes as for --memory, at least "
                   "32 pages); high: memory.high (above it, the charging task reclaims, and is throttled when "
                   "that does not keep up); min: memory.min (reclaim skips the memcg while its usage is at or below it); "
                   "low: memory.low (skipped likewise while other memcgs have reclaimable memory). Both also "
                   "scale the memcg's scan down in proportion. swap_max: memory.swap.max (swap slots its pages may "
                   "hold). A charge "
                   "over max reclaims from that memcg; when nothing can be reclaimed the "
                   "run ends out of memory (exit 3).")
@click.option("--proactive", "proactive", multiple=True, metavar="AT:PATH:SIZE[:swappiness=N]",
              help="Proactive reclaim, repeatable: before access AT, write SIZE (and swappiness=N) to memory.reclaim "
                   "of the memcg at PATH (/ for the root), e.g. --proactive 500000:/a:64MiB. The result lists "
                   "each write: pages reclaimed, and EAGAIN when reclaim gave up short of SIZE.")
@click.option("--senpai", "senpai", multiple=True, metavar="PATH[:KEY=VALUE...]",
              help="A senpai-like controller on the memcg at PATH, repeatable: every interval=N accesses (50000) "
                   "it compares the memcg's refault stall over the interval (modelled ms) with pressure=MS (10) "
                   "and, below it, writes up to max_probe (0.01) of the memcg's usage to memory.reclaim, fully "
                   "at pressure/coeff_probe (10) and below; above it, backs off. Also swappiness=N. The result's "
                   "`senpai` counts its ticks, probes, backoffs and pages, with a log of each tick.")
@click.option("--machine", "machine", metavar="FILE.toml", default=None,
              help="The machine from a file: memory, swap, watermark knobs, the memcg tree with every knob, "
                   "proactive reclaim and senpai controllers (format: `reclaim-ext machine show --help`). Flags "
                   "given on the command line win; --memcg, --proactive and --senpai add to the file's.")
@_topology_options
@click.option("--memory-recursiveprot", is_flag=True,
              help="cgroup2's memory_recursiveprot mount option: a parent's memory.min/low that its children do "
                   "not claim is shared among them in proportion to their unprotected usage.")
@click.option("--dump-lru-gen", is_flag=True,
              help="After the run, print the generations as /sys/kernel/debug/lru_gen shows them "
                   "(mglru only; on stderr with --json -).")
@click.option("--json", "json_out", metavar="FILE", help="Write the result as JSON to FILE ('-' for stdout, no summary).")
@click.option("--progress/--no-progress", default=True, help="Progress bar on long runs (only on a terminal).")
def run(cache, capacity, scope, switches, memcgs, proactive, senpai, nodes, numa, tiers, memory_recursiveprot,
        machine, dump_lru_gen, json_out, progress, **run_opts):
    """Replay a workload or a trace through the reclaim core and print what happened.

    \b
    Examples:
      reclaim-ext run --policy classic --workload zipf --memory 64MiB
      reclaim-ext run --policy classic --mechanism +ptwalk,+lookaround --workload mixed
      reclaim-ext run --policy mglru --mechanism -bloom --dump-lru-gen
      reclaim-ext run --workload scan-hot --json result.json
      reclaim-ext run --workload mixed -p procs=2 --memcg name=a,pids=0,max=16MiB --memcg name=b,pids=1
      reclaim-ext run --trace traces/cloudPhysicsIO.oracleGeneral.bin --format oraclegeneral
      reclaim-ext run --cache --capacity 1000 --policy s3fifo \\
          --trace traces/cloudPhysicsIO.oracleGeneral.bin --format oraclegeneral
      reclaim-ext run --cache --capacity 1000 --policy examples/hello.py
      reclaim-ext run --cache --capacity 1000 --policy lru --switch 1000000:s3fifo
      reclaim-ext run --policy classic --switch 500000:examples/hello.py --workload mixed
      reclaim-ext run --workload mixed -p procs=2 --memcg name=a,pids=0,max=16MiB --memcg name=b,pids=1 \\
          --policy lru --scope memcg:/a
      reclaim-ext run --workload mixed -p procs=3 --machine examples/machine.toml
      reclaim-ext run --workload mixed -p procs=2 --memcg name=a,pids=0 --senpai /a:interval=20000
      reclaim-ext run --workload mixed -p procs=4 --nodes 2 --numa pids=0+1,node=0 --numa pids=2+3,node=1
    """
    from .api import build_trace
    from .api import run as api_run
    from .core.engine import OutOfMemory

    _check_json_path(json_out)
    with _user_errors():
        m = _with_machine_file(machine, run_opts, memcgs, proactive, senpai, nodes, numa, tiers, memory_recursiveprot)
        cfg = _run_config(**run_opts, cache=cache, capacity=capacity, switches=list(switches), memcgs=m["memcgs"],
                          scope=scope, topology=m["topology"])
        _set_memcg_extras(cfg, m)
        if dump_lru_gen and cfg.policy not in _lru_gen_policies():
            raise click.UsageError(f"--dump-lru-gen needs the {' or '.join(_lru_gen_policies())} policy "
                                   f"({cfg.policy} has no generations)")
        trace = build_trace(cfg)
        bar = _LazyProgress(trace.length, progress and sys.stderr.isatty() and json_out != "-")
        oom = None
        try:
            result = api_run(cfg, trace=trace, progress=bar)
        except OutOfMemory as e:  # the result up to there is still written (and exit 3 below)
            if e.result is None:
                raise
            oom, result = e, e.result
        finally:
            bar.close()
    for w in result.get("warnings") or ():  # a policy ejected, a --switch or --memcg pid that never applied
        click.echo(f"reclaim-ext: warning: {w}", err=True)
    if not _emit_json(json_out, result):
        if cfg.cache:
            _print_cache_summary(result)
        else:
            _print_summary(result)
    if dump_lru_gen:
        from .policies.mglru import format_lru_gen

        click.echo(format_lru_gen(result["lru_gen"]), nl=False, err=json_out == "-")
    if oom is not None:
        at = result["out_of_memory"]["at_access"]
        click.echo(f"reclaim-ext: {oom} (at access {at:,}: the result covers the {at:,} accesses before it)",
                   err=True)
        sys.exit(EXIT_OOM)


def _with_machine_file(machine, run_opts, memcgs=(), proactive=(), senpai=(), nodes=None, numa=(), tiers=None,
                       memory_recursiveprot=False) -> dict:
    """The machine of --machine FILE under the command line's flags (run, ablate): a flag given
    wins (run_opts is updated in place); --memcg, --proactive, --senpai and --numa add to the
    file's. Returns memcgs, proactive, senpai, memory_recursiveprot and topology (nodes, numa, tiers)."""
    file = {}
    if machine is not None:
        from .machine.file import load_machine

        file = load_machine(machine)
        for k in ("memory", "swap", "swap_device", "zram_ratio", "swappiness", "min_free_kbytes",
                  "watermark_scale_factor"):
            if k in file and not _given(k):
                run_opts[k] = file[k]
        # the file's swap devices, unless the command line describes the swap
        if file.get("swap_devices") and not _given("swap", "swap_device", "zram_ratio", "swapon"):
            run_opts["swapon"] = tuple(file["swap_devices"])
        if "workload" in file and not (_given("workload", "trace_path") or run_opts["params"]):
            run_opts["workload"], run_opts["params"] = file["workload"], tuple(file["params"])
        if file.get("nodes") and nodes is None:  # --memory given: split evenly over the file's nodes
            nodes = len(file["nodes"]) if _given("memory") else file["nodes"]
        if file.get("tiers") and tiers is None:
            tiers = ",".join(file["tiers"])
    return {"memcgs": list(file.get("memcgs", ())) + list(memcgs),
            "proactive": list(file.get("proactive", ())) + list(proactive),
            "senpai": list(file.get("senpai", ())) + list(senpai),
            "memory_recursiveprot": memory_recursiveprot or file.get("memory_recursiveprot", False),
            "topology": (nodes, list(file.get("numa") or []) + list(numa), tiers)}


def _set_memcg_extras(cfg, m: dict) -> None:
    """Proactive reclaim, senpai and memory_recursiveprot of _with_machine_file onto cfg, checked."""
    if m["proactive"] or m["senpai"]:
        cfg.proactive, cfg.senpai = list(m["proactive"]), list(m["senpai"])
        cfg.validate()
    if m["memory_recursiveprot"]:
        if not m["memcgs"]:
            raise click.UsageError("--memory-recursiveprot needs memcgs (--memcg): it shapes their protection")
        cfg.memory_recursiveprot = True


def _on_off(mech: dict, tiered: bool = True) -> str:
    """The mechanisms on; the core's (demotion, promotion) only on a machine with memory tiers,
    the only one where they act."""
    from .core.ops import CORE_MECHANISMS

    on = [m for m, v in mech.items() if v and (tiered or m not in CORE_MECHANISMS)]
    return ", ".join(on) or "none"


_COST_ROWS = (("ptes_walked", "PTEs walked"), ("rmap_walks", "rmap walks"), ("lru_lock_ops", "LRU-lock ops"),
              ("atomic_updates", "atomic flag updates"))


def _print_tables(*tables) -> None:
    """Rich tables on stdout, each at its natural width or wider: piped (not a terminal: 80 columns
    by default) or on a narrow terminal, a number is never cut with '…' nor wrapped."""
    from rich.console import Console

    con = Console()
    for t in tables:
        need = con.measure(t, options=con.options.update(width=1 << 16)).maximum
        (con if need <= con.width else Console(width=need)).print(t)


def _ejections(r: dict) -> list[dict]:
    from .api import is_ejection

    return [e for e in r.get("exits") or () if is_ejection(e)]


def _policy_label(r: dict) -> str:
    """The run's policy and what replaced it on the way (switches, ejections), in access order."""
    steps = [(sw["at"], f"→ {sw['to']} at access {sw['at']:,}" if sw["scope"] == "system"
              else f"+ {sw['to']} in {sw['scope']} from access {sw['at']:,}")
             for sw in r.get("switches") or () if sw["happened"]]
    steps += [(e["at_access"] or 0, f"ejected at access {e['at_access'] or 0:,} → {e.get('successor') or 'classic'}")
              for e in _ejections(r)]
    return " ".join([r["policy"]] + [s for _, s in sorted(steps, key=lambda x: x[0])])


def _policy_rows(r: dict) -> list[tuple[str, str]]:
    """A row per --switch (at which access, from what to what, where; or that it never happened)
    and per policy exit: an ejection (kind, hook, reason, access, who took over), else how the last
    policy ended."""
    rows = []
    for sw in r.get("switches") or ():
        if sw["happened"]:
            rows.append(("switch", f"at access {sw['at']:,}: {sw['from']} → {sw['to']} ({sw['scope']})"))
        else:
            rows.append(("switch", f"at access {sw['at']:,} to {sw['to']} ({sw['scope']}): never happened, "
                                   f"the run ended after {r['accesses']:,} accesses"))
    from .api import describe_ejection

    for e in _ejections(r):
        rows.append(("policy exit", describe_ejection(e)))
    if not _ejections(r) and r.get("exit"):
        rows.append(("policy exit", r["exit"]["kind"] + (": attached to the end" if r["exit"]["kind"] == "DONE" else "")))
    from rich.text import Text

    return [(k, Text(v, justify="left") if len(v) > 40 else v) for k, v in rows]  # long text wraps flush left


def _print_cache_summary(r: dict) -> None:
    from rich.table import Table

    src = r["trace"] or f"workload {r['workload']}"
    t = Table(title=f"{_policy_label(r)} on {src}, plain cache of {r['capacity']:,} pages", show_header=False)
    t.add_column(style="bold")
    t.add_column(justify="right", max_width=80)  # a long exit reason wraps (at spaces), no number does
    rows = [
        ("accesses", f"{r['accesses']:,}"), ("objects", f"{r['objects']:,}"),
        ("hits", f"{r['hits']:,}"), ("misses", f"{r['misses']:,}"), ("miss ratio", f"{r['miss_ratio']:.6f}"),
        ("evictions", f"{r['evictions']:,}"),
    ] + _policy_rows(r)
    rows += [(k.replace("_", " "), f"{v:,}") for k, v in r["events"].items() if v]
    rows.append(("wall time / rate", f"{r['wall_seconds']:.2f} s / {r['accesses_per_second'] / 1e6:.2f} M accesses/s"))
    rows.append(("trace time (generated or read) / rate without it",
                 f"{r['trace_seconds']:.2f} s / {r['simulated_accesses_per_second'] / 1e6:.2f} M accesses/s"))
    for k, v in rows:
        t.add_row(k, v)
    _print_tables(t)


def _print_summary(r: dict) -> None:
    from rich.table import Table

    vm = r["vmstat"]
    src = r["trace"] or f"workload {r['workload']}"
    head = Table(title=f"{_policy_label(r)} on {src}, memory {format_size(r['memory_pages'])}, "
                       f"swap {format_size(r['swap_pages'])}, {r['mode']} mode", show_header=False)
    head.add_column(style="bold")
    head.add_column(justify="right", max_width=80)  # a long exit reason wraps (at spaces), no number does
    refaults = vm["workingset_refault_anon"] + vm["workingset_refault_file"]
    cost = r["cost"]
    rows = []
    if "mechanisms" in r:
        rows.append(("mechanisms", _on_off(r["mechanisms"], len(r.get("tiers") or ()) > 1)))
    if r.get("min_ttl_ms"):
        rows.append(("min_ttl_ms", f"{r['min_ttl_ms']:g}"))
    rows += [
        ("accesses", f"{r['accesses']:,}"),
        ("misses (folios allocated)", f"{r['misses']:,}"),
        ("miss ratio", f"{r['miss_ratio']:.4f}"),
        ("refaults (anon + file)", f"{refaults:,}"),
        ("pages scanned for eviction (pgscan kswapd / direct)", f"{vm['pgscan_kswapd']:,} / {vm['pgscan_direct']:,}"),
        ("pages scanned (pgscan + pgrefill)", f"{cost['pages_scanned']:,}"),
        ("pages reclaimed (kswapd / direct)", f"{vm['pgsteal_kswapd']:,} / {vm['pgsteal_direct']:,}"),
        ("swap in / out", f"{vm['pswpin']:,} / {vm['pswpout']:,}"),
    ]
    devs = r.get("swap_devices") or []
    if len(devs) > 1:  # each device: its swap I/O and the slots it holds (as /proc/swaps)
        rows += [(f"  {d['kind']} {i} (prio {d['priority']}): in / out, used", f"{d['pswpin']:,} / {d['pswpout']:,}, "
                  f"{d['used_pages']:,} of {d['size_pages']:,}") for i, d in enumerate(devs)]
    rows += [
        ("direct reclaim stalls", f"{vm['allocstall_normal']:,}"),
    ]
    cost = r["cost"]
    rows += [(label, f"{cost[k]:,}") for k, label in _COST_ROWS if cost.get(k)]
    rows += _policy_rows(r)
    if r.get("out_of_memory"):
        oom = r["out_of_memory"]
        rows.append(("ended out of memory", f"at access {oom['at_access']:,}"
                     + (f" (memcg {oom['memcg']})" if oom["memcg"] else "")))
    rows += [
        ("modelled runtime", f"{r['modeled_seconds']:.3f} s"),
        ("wall time / rate", f"{r['wall_seconds']:.2f} s / {r['accesses_per_second'] / 1e6:.2f} M accesses/s"),
        ("trace time (generated or read) / rate without it",
         f"{r['trace_seconds']:.2f} s / {r['simulated_accesses_per_second'] / 1e6:.2f} M accesses/s"),
    ]
    for k, v in rows:
        head.add_row(k, v)
    _print_tables(head)
    lists = Table(title="LRU lists at the end (pages)")
    for k in r["lru_sizes"]:
        lists.add_column(k, justify="right")
    lists.add_row(*(f"{v:,}" for v in r["lru_sizes"].values()))
    _print_tables(lists)
    nz = Table(title="vmstat (non-zero)", show_header=False)
    nz.add_column()
    nz.add_column(justify="right")
    for k, v in vm.items():
        if v:
            nz.add_row(k, f"{v:,}")
    _print_tables(nz)
    if len(r.get("nodes") or ()) > 1:
        nt = Table(title="NUMA nodes (pages; node vmstat and numastat)")
        tiered = len(r.get("tiers") or ()) > 1
        cols = ("memory", "free", "pgalloc_normal", "numa_hit", "numa_miss", "numa_foreign", "kswapd_wakeups",
                "pgsteal_kswapd", "pgsteal_direct") + (("pgdemote", "pgpromote_success") if tiered else ())
        nt.add_column("node")
        if tiered:
            nt.add_column("tier")
        for c in cols:
            nt.add_column(c, justify="right")
        for n in r["nodes"]:
            v = dict(n["vmstat"], pgdemote=n["vmstat"].get("pgdemote_kswapd", 0) + n["vmstat"].get("pgdemote_direct", 0))
            nt.add_row(str(n["nid"]), *((n["tier"],) if tiered else ()), f"{n['memory_pages']:,}",
                       f"{n['free_pages']:,}", *(f"{v.get(c, 0):,}" for c in cols[2:]))
        _print_tables(nt)
    if len(r.get("memcgs") or ()) > 1:
        mt = Table(title="memcgs (memory.stat / memory.events, hierarchical; pages)")
        # memory.high / memory.low columns only when a memcg has them (or their events)
        high = any(m.get("high") is not None or m["memory_events"].get("high") for m in r["memcgs"])
        low = any(m.get("low") or m.get("min") or m["memory_events"].get("low") for m in r["memcgs"])
        cols = ["usage", "peak", "max"] + (["high"] if high else []) + (["min", "low"] if low else []) + [
            "faults", "major", "scan", "steal", "refault"] + (["low ev"] if low else []) + (
            ["high ev"] if high else []) + ["max ev", "oom"]
        mt.add_column("memcg")
        for c in cols:
            mt.add_column(c, justify="right")
        for m in r["memcgs"]:
            st, ev = m["memory_stat"], m["memory_events"]
            v = {"usage": m["usage"], "peak": m["peak"], "max": m["max"], "high": m.get("high"), "min": m.get("min"),
                 "low": m.get("low"), "faults": st["pgfault"], "major": st["pgmajfault"], "scan": st["pgscan"],
                 "steal": st["pgsteal"], "refault": st["workingset_refault_anon"] + st["workingset_refault_file"],
                 "low ev": ev.get("low"), "high ev": ev.get("high"), "max ev": ev["max"], "oom": ev["oom"]}
            mt.add_row(m["name"], *("max" if v[c] is None else f"{v[c]:,}" for c in cols))
        _print_tables(mt)
    if r.get("proactive"):
        pt = Table(title="memory.reclaim writes (--proactive; pages)")
        for c in ("at access", "memcg", "requested", "swappiness", "reclaimed", "result"):
            pt.add_column(c, justify="left" if c in ("memcg", "result") else "right")
        for p in r["proactive"]:
            swp = "-" if p["swappiness"] is None else str(p["swappiness"])
            pt.add_row(f"{p['at']:,}", p["memcg"], f"{p['requested']:,}", swp, f"{p['reclaimed']:,}", p["result"])
        _print_tables(pt)
    if r.get("senpai"):
        st = Table(title="senpai controllers (--senpai; pages)")
        for c in ("memcg", "interval", "pressure ms", "ticks", "probes", "backoffs", "requested", "reclaimed", "EAGAIN"):
            st.add_column(c, justify="left" if c == "memcg" else "right")
        for c in r["senpai"]:
            st.add_row(c["memcg"], f"{c['config']['interval']:,}", f"{c['config']['pressure']:g}", f"{c['ticks']:,}",
                       f"{c['probes']:,}", f"{c['backoffs']:,}", f"{c['requested']:,}", f"{c['reclaimed']:,}",
                       f"{c['eagain']:,}")
        _print_tables(st)


@main.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args):
    """Throughput against libCacheSim's LRU on the same Zipf trace (see --help of the benchmark).

    \b
    reclaim-ext bench                      # 10M reads over 1M pages, memory 10%
    reclaim-ext bench --accesses 2000000 --json -
    """
    from .bench.throughput import main as bench_main

    sys.exit(bench_main(list(args)))


@main.command()
def workloads():
    """List the built-in workloads and their parameters."""
    from rich.console import Console
    from rich.table import Table

    from .trace import WORKLOADS

    con = Console()
    for spec in WORKLOADS.values():
        t = Table(title=f"{spec.name}: {spec.summary}", title_justify="left")
        t.add_column("parameter")
        t.add_column("default", justify="right")
        t.add_column("meaning")
        for p in spec.params:
            extra = f" ({', '.join(p.choices)})" if p.choices else ""
            t.add_row(p.name, str(p.default), p.help + extra)
        con.print(t)


@main.command()
@_run_options
@click.option("--variant", "variants", multiple=True, metavar="SPEC",
              help="A --mechanism spec to compare against the baseline, repeatable, applied on top of "
                   "--mechanism [default: the policy's ablation variants, see `reclaim-ext policies`].")
@click.option("-j", "--jobs", type=click.IntRange(1, None), default=None,
              help="Runs in parallel (processes) [default: the number of CPUs; 1 = in this process].")
@click.option("--json", "json_out", metavar="FILE",
              help="Write the comparison as JSON to FILE ('-' for stdout, no table).")
@click.option("--progress/--no-progress", default=True, help="Count finished runs (only on a terminal).")
@click.option("--machine", "machine", metavar="FILE.toml", default=None,
              help="The machine from a file, as for `run --machine` (nodes and tiers, memcgs, proactive reclaim, "
                   "senpai; flags given on the command line win).")
@_topology_options
def ablate(variants, jobs, json_out, progress, machine, nodes, numa, tiers, **run_opts):
    """Switch a policy's mechanisms on or off one variant at a time and compare each run with the
    unmodified policy on the same trace.

    \b
    Variants by default: mglru, each mechanism removed on its own (-ptwalk, -bloom, ...);
    classic, MGLRU's mechanisms added (+ptwalk, +lookaround, ...); on a machine with memory
    tiers also the core's: -demotion, +promotion.

    \b
    Examples:
      reclaim-ext ablate --policy mglru      # default workload: mixed -p accesses=500000
      reclaim-ext ablate --policy mglru --workload zipf
      reclaim-ext ablate --policy classic --workload mixed --json ablation.json
      reclaim-ext ablate --policy mglru --variant -ptwalk --variant -ptwalk,-lookaround -j 2
      reclaim-ext ablate --policy classic --nodes 2 --tiers dram,cxl --numa pids=0-3,node=0,bind
      reclaim-ext ablate --policy mglru --machine examples/machines/dram-cxl.toml
    """
    from .bench.ablate import DEFAULT_WORKLOAD, default_variants
    from .bench.ablate import ablate as run_ablation

    _check_json_path(json_out)
    with _user_errors():
        m = _with_machine_file(machine, run_opts, nodes=nodes, numa=numa, tiers=tiers)
        # no workload or trace given: one where the mechanisms have work (mapped pages), not run's zipf
        default = run_opts["trace_path"] is None and not run_opts["params"] and not _given("workload")
        if default:
            run_opts["workload"], params = DEFAULT_WORKLOAD
            run_opts["params"] = tuple(f"{k}={v}" for k, v in params.items())
        cfg = _run_config(**run_opts, memcgs=m["memcgs"], topology=m["topology"])
        _set_memcg_extras(cfg, m)
        from .policies import BUILTIN

        if cfg.policy not in BUILTIN:
            raise click.UsageError(f"ablate: policy {cfg.policy} has no mechanisms to ablate "
                                   f"(ablate takes {' or '.join(sorted(BUILTIN))})")
        runs = 1 + len(variants or default_variants(cfg))
        counter = _RunCounter(runs, progress and sys.stderr.isatty() and json_out != "-")
        try:
            result = run_ablation(cfg, variants=list(variants) or None, jobs=jobs, on_done=counter)
        finally:
            counter.close()
    result["default_workload"] = default
    for v in result["variants"]:
        if v["error"]:
            click.echo(f"reclaim-ext: variant {v['mechanisms']}: {v['error']}", err=True)
    if not _emit_json(json_out, result):
        _print_ablation(result)


def _print_ablation(result: dict) -> None:
    """A rich table on a terminal wide enough for it, else aligned plain text."""
    from .bench.ablate import format_plain, rich_table

    if sys.stdout.isatty():
        from rich.console import Console

        con = Console()
        table = rich_table(result)
        if con.measure(table, options=con.options.update(width=1 << 20)).maximum <= con.width:
            con.print(table)
            return
    click.echo(format_plain(result), nl=False)


@main.command()
def policies():
    """List the built-in policies (their mechanisms and defaults) and the registered plug-ins."""
    from .api import policy_has_option
    from .core.ops import CORE_DEFAULT, CORE_MECHANISMS, CORE_VARIANTS
    from .policies import BUILTIN

    for name, cls in sorted(BUILTIN.items()):
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        click.echo(f"{name:10s} {doc}")
        pad = " " * 11
        click.echo(f"{pad}mechanisms: {', '.join(cls.supported_mechanisms + CORE_MECHANISMS)}")
        click.echo(f"{pad}default:    {', '.join(cls.default_mechanisms + CORE_DEFAULT)}")
        if cls.ablation_variants:
            click.echo(f"{pad}ablate:     {' | '.join(cls.ablation_variants)}"
                       f" (with memory tiers also {' | '.join(CORE_VARIANTS)})")
        if policy_has_option(cls, "min_ttl_ms"):
            click.echo(f"{pad}options:    --min-ttl-ms")
    from .ext.loader import registered

    plugins = registered()
    if plugins:
        click.echo("\nreclaim_ext plug-ins (entry points `reclaim_ext.policies`; plain-cache mode with --cache, "
                   "or inside the reclaim core):")
        for name, target in sorted(plugins.items()):
            click.echo(f"{name:10s} {target}")
        click.echo("\nAny file.py[:Class] or module:Class with a reclaim_ext.ext.Policy subclass works too "
                   "(docs/writing-policies.md).")


@main.command()
@click.argument("policy")
@click.option("--json", "json_out", metavar="FILE", help="Write the findings as JSON to FILE ('-' for stdout).")
def check(policy, json_out):
    """Run a reclaim_ext policy through its contract on small workloads; say what breaks.

    \b
    POLICY is a plug-in name, path/to/file.py[:Class] or module:Class. Every scenario runs with
    the page-conservation check on, in plain-cache mode (capacities 1 to 1000) and inside the
    reclaim core (both drivers). Exit code 0: no problem found; 1: a problem, listed.

    \b
    Example:
      reclaim-ext check examples/hello.py
    """
    from dataclasses import asdict

    from .ext.check import check_policy

    _check_json_path(json_out)
    with _user_errors():
        findings = check_policy(policy)
    if not _emit_json(json_out, [asdict(f) for f in findings]):
        for f in findings:
            click.echo(f"{'ok  ' if f.ok else 'FAIL'}  {f.scenario}: {f.detail}")
        bad = sum(not f.ok for f in findings)
        click.echo(f"{policy}: {'no problem found' if not bad else f'{bad} problem(s)'} in {len(findings)} checks")
    if any(not f.ok for f in findings):
        sys.exit(1)



main.add_command(validate)


@main.command()
@click.argument("result", metavar="RESULT.json", type=click.Path(dir_okay=False))
@click.option("--out", metavar="FILE.png", default=None, help="The picture [default: RESULT.png].")
def plot(result, out):
    """Plot one run's JSON result (reclaim-ext run --json): list sizes, free pages and memcg usage
    over the trace (sampled once per chunk of 65,536 accesses)."""
    from .report import plot_result

    with _user_errors():
        try:
            with open(result) as fh:
                data = json.load(fh)
        except (OSError, ValueError) as e:
            raise click.BadParameter(f"{result}: not a readable JSON result ({e})", param_hint="RESULT.json") from None
        if not isinstance(data, dict):
            raise click.BadParameter(f"{result}: not a run result", param_hint="RESULT.json")
        path = plot_result(data, out or os.path.splitext(result)[0] + ".png")
    click.echo(f"wrote {path}")


@main.command()
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, exists=True))
@click.option("--out", metavar="DIR", default=None, help="Where report.html, report.md and the PNGs go [default: DIR/report].")
def report(directory, out):
    """A report of a sweep's results (reclaim-ext sweep --out DIR): a miss-ratio curve per scenario
    and variant, and the scenario x variant table with the lowest miss ratio marked, as one
    self-contained HTML file and as Markdown with PNGs."""
    from .report import report as make_report

    with _user_errors():
        r = make_report(directory, out)
    click.echo(f"wrote {r['html']} and {r['markdown']} ({len(r['plots'])} plots)")


@main.group()
def machine() -> None:
    """The simulated machine described by a file (run --machine FILE)."""


@machine.command("show")
@click.argument("file", metavar="FILE.toml")
def machine_show(file):
    """Print the machine of FILE.toml as a tree: node, memcgs with their knobs, proactive reclaim.

    \b
    The file (TOML; sizes like "64MiB", numbers are pages):
      memory = "64MiB"
      swap = "64MiB"
      swappiness = 60
      memory_recursiveprot = false
      [[memcg]]
      name = "a"            # a/b for a child of a
      pids = "0-2"          # or [0, 1, 2]
      max = "16MiB"         # also high, min, low, swap_max
      [[proactive]]
      at = 500000           # before this access
      memcg = "/a"          # "/" for the root
      size = "16MiB"
      swappiness = 0        # optional
    """
    from .machine.file import describe, load_machine

    with _user_errors():
        click.echo(describe(load_machine(file)), nl=False)

main.add_command(sweep)
main.add_command(mrc)
main.add_command(suite)
main.add_command(record)


if __name__ == "__main__":  # pragma: no cover
    main()
