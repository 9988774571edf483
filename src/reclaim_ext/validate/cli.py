"""The `reclaim-ext validate` command group (registered in reclaim_ext/cli.py)."""

from __future__ import annotations

import json
import sys

import click

from ..cli_common import (EXIT_BAD_INPUT, _check_json_path, _emit_json, _given, _ignored_warning, _not_with,
                          _size, _trace_opts, _write_json)
from ..errors import ReclaimExtError
from .errors import Unavailable

EXIT_UNAVAILABLE = 4

# Smaller defaults than `run`'s: the kernel takes ~110 µs per miss. A 128 MiB data file and 200K
# accesses keep one kernel run to seconds (docs/fidelity.md).
VALIDATE_DEFAULTS = {"zipf": {"pages": 32768}, "loop": {"pages": 32768, "passes": 4}}
DEFAULT_ACCESSES = 200_000


def workload_params(workload: str, params: tuple[str, ...]) -> dict:
    """The workload's parameters: the user's, over the validation defaults."""
    from ..trace import WORKLOADS, parse_workload_params

    given = parse_workload_params(workload, list(params))
    spec = WORKLOADS[workload]
    names = {p.name for p in spec.params}
    out = dict(VALIDATE_DEFAULTS.get(workload, {}))
    if "accesses" in names:
        out.setdefault("accesses", DEFAULT_ACCESSES)
    out.update(given)
    return out


def _fail(e: Exception) -> None:
    """One error line; exit 4 when the host cannot run the replay, 2 for bad input."""
    click.echo(f"reclaim-ext: error: {e}", err=True)
    sys.exit(EXIT_UNAVAILABLE if isinstance(e, Unavailable) else EXIT_BAD_INPUT)


@click.group()
def validate() -> None:
    """Check the model against a reference (the host kernel, or another kernel in a VM)."""


@validate.command()
@click.option("--workload", default="zipf", show_default=True, help="Built-in workload (see `reclaim-ext workloads`).")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Workload parameter, repeatable [defaults here: accesses=200000; zipf pages=32768; "
                   "loop pages=32768, passes=4].")
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False, exists=True),
              help="Replay this trace file instead of a workload (its pages are remapped densely onto the data file).")
@click.option("--format", "trace_format", type=click.Choice(["oraclegeneral", "csv", "vscsi", "native"]),
              help="Format of --trace.")
@click.option("--trace-opt", "trace_opts", multiple=True, metavar="KEY=VALUE", help="Reader option, repeatable.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the workload generator.")
@click.option("--max-accesses", type=click.IntRange(1, None), default=None,
              help="Replay only the first N accesses of the trace.")
@click.option("--memory", default="32MiB", show_default=True, callback=_size("memory"),
              help="The memory cgroup's limit (32MiB, or a page count).")
@click.option("--access", type=click.Choice(["pread", "mmap", "anon"]), default=None,
              help="How the worker touches a page: pread(2) of 4 KiB (FADV_RANDOM) or a load through a "
                   "MAP_SHARED mapping (opened with read-ahead 0); with --vm also anon: anonymous memory "
                   "with a swap device in the guest [default: pread; with --suite pread and mmap].")
@click.option("--swap-device", "swap_device", type=click.Choice(["disk", "zram", "zram+disk"]), default=None,
              help="With --vm --access anon: the guest's swap, a virtio disk or zram (the kernel's zram module) "
                   "of the data's size + 64 MiB; zram+disk: zram of a quarter of the data's pages at priority "
                   "100 in front of the disk (it fills, the rest goes to the disk), compared per device. The "
                   "model swaps to the same devices (with --suite: the anon set) [default: disk].")
@click.option("--swappiness", "swappiness", type=click.IntRange(0, 200), default=None,
              help="With --vm --access anon: the guest's /proc/sys/vm/swappiness and the model's [default: 60].")
@click.option("--knob", "knob", type=click.Choice(["max", "high", "none"]), default=None,
              help="With --vm: the probe memcg's limit is its memory.max, or its memory.high (memory.max left at "
                   "max: reclaim on the way back to user space and throttling, no OOM); the model's memcg gets the "
                   "same knob. none (with --vm-nodes 2, pread): no limit, --memory is the guest's memory and its "
                   "kswapd reclaims (the global path): the worker prefers node 1 and falls back to node 0; "
                   "compares misses, per-node numa_hit/miss/foreign, file pages and refaults, kswapd's "
                   "steals [default: max].")
@click.option("--reclaim", "reclaim", default=None, callback=_size("reclaim"), metavar="SIZE",
              help="With --vm --access pread: after each replay write SIZE to the probe memcg's memory.reclaim "
                   "(and to the model's after its run); compares the pages taken and the result (ok, or EAGAIN "
                   "when it cannot take that much).")
@click.option("--low", "low", default=None, callback=_size("low"), metavar="SIZE",
              help="With --vm --access pread: the probe memcg gets two children under its memory.max, a with "
                   "memory.low = SIZE and b; the trace's pid 0 runs in a and pid 1 in b (e.g. --workload tenants), "
                   "one worker moving between them (each pid's accesses in runs of 256); the model gets the same "
                   "memcgs. Compares misses, memory.current, memory.events low and refaults per child.")
@click.option("--vm-nodes", "vm_nodes", type=click.IntRange(1, 2), default=None,
              help="With --vm: 2 gives the guest two NUMA nodes of equal size and interleaves the worker over both "
                   "(MPOL_INTERLEAVE); the model runs two nodes with the task interleaved, and the probe's "
                   "memory.numa_stat (file pages, refaults per node) is compared [default: 1].")
@click.option("--reps", type=click.IntRange(1, 100), default=None,
              help="Kernel runs per configuration (the spread is reported) [default: 3].")
@click.option("--suite", is_flag=True,
              help="Run the standard validation set (zipf0.9, zipf1.2, loop, hotscan50, shift × pread, mmap × "
                   "limits of 10/25/50% of a 32768-page file), print the table and write --out.")
@click.option("--only", "only", multiple=True, metavar="TRACE",
              help="With --suite: run only this suite trace (repeatable).")
@click.option("--out", "out", metavar="FILE", default=None,
              help="With --suite: the JSON result file [default: docs/data/fidelity.json; with --vm "
                   "docs/data/fidelity-vm-KERNEL-lru-gen-on|off.json].")
@click.option("--scale", "scale", type=click.FloatRange(0.001, 1.0), default=None,
              help="With --suite: replay this fraction of each trace's accesses (a quicker, smaller suite; "
                   "with --vm under TCG emulation the full suite took ~21 min per --reps) [default: 1].")
@click.option("--table", "table_from", metavar="FILE", type=click.Path(dir_okay=False, exists=True),
              help="Print the Markdown table of a suite JSON file (no kernel run) and exit.")
@click.option("--dir", "workdir", type=click.Path(file_okay=False), default="/var/tmp", show_default=True,
              help="Where the data file is made (a disk file system, not tmpfs); with --vm, where the disk image "
                   "and the initramfs are built.")
@click.option("--overhead", type=click.IntRange(0, None), default=None,
              help="Pages of the limit that are not data cache [default: measured in the runs].")
@click.option("--vm", "vm", metavar="KERNEL", default=None,
              help="Replay in a qemu VM booting KERNEL instead of on the host: a Debian version (6.12, 6.1; the "
                   "newest linux-image-<version>*-cloud-amd64-unsigned, fetched with apt-get download and cached "
                   "in ~/.cache/reclaim-ext), a package name, an unpacked kernel tree, or a vmlinuz path. Needs "
                   "qemu-system-x86 and busybox-static; not root.")
@click.option("--vm-modules", "vm_modules", metavar="DIR", type=click.Path(file_okay=False, exists=True),
              help="With --vm PATH: the kernel's lib/modules/<release> directory [default: found next to the vmlinuz].")
@click.option("--lru-gen", "lru_gen", type=click.Choice(["on", "off"]), default=None,
              help="With --vm: write y or n to the guest's /sys/kernel/mm/lru_gen/enabled; the model runs MGLRU "
                   "when it is on, classic when off [default: the kernel's own setting].")
@click.option("--min-ttl-ms", "min_ttl_ms", type=click.IntRange(0, None), default=None,
              help="With --vm --lru-gen on: MGLRU's /sys/kernel/mm/lru_gen/min_ttl_ms in the guest (and the model).")
@click.option("--vm-accel", "vm_accel", type=click.Choice(["auto", "kvm", "tcg"]), default="auto", show_default=True,
              help="With --vm: qemu's accelerator; auto tries KVM and falls back to TCG if the guest fails.")
@click.option("--vm-timeout", "vm_timeout", type=click.FloatRange(1, None), default=None,
              help="With --vm: seconds before the VM is stopped [default: 180 + 1 ms per access and run].")
@click.option("--json", "json_out", metavar="FILE", help="Write the result as JSON to FILE ('-' for stdout, no summary).")
def kernel(workload, params, trace_path, trace_format, trace_opts, seed, max_accesses, memory, access, knob, reclaim,
           low, vm_nodes, reps,
           swap_device, swappiness, suite, only, out, scale, table_from, workdir, overhead, vm, vm_modules, lru_gen, min_ttl_ms,
           vm_accel, vm_timeout, json_out):
    """Replay a trace on the host kernel under a memory-cgroup limit and compare its misses with the
    classic model's at the calibrated capacity (docs/fidelity.md).

    Needs root, a memory cgroup controller and a C compiler; otherwise one error line and exit 4.
    The cgroup is removed and read_ahead_kb restored even on Ctrl-C.

    On a shared machine: in mmap mode, read_ahead_kb of the whole block device holding --dir is
    0 for a moment (while the data file is opened), so other readers of that device get no
    read-ahead then. Some counters compared come from the host-wide /proc/vmstat: when other
    processes changed them during a run, a warning says so (other_activity in the JSON). One
    validation runs at a time per block device (a lock file in /run/lock); a second gets exit 4.

    With --vm KERNEL the replay runs in a qemu VM booting that kernel (cgroup v2, one vCPU), with
    MGLRU on or off (--lru-gen), and the model runs the matching policy. Needs qemu-system-x86_64,
    a static busybox and a C compiler with a static libc (apt-get install qemu-system-x86
    busybox-static gcc libc6-dev), and apt for a kernel given by version; not root. The VM and its
    temporary files are removed even on Ctrl-C. --suite with --vm runs the standard set in the VM
    (pread, mmap, and anon with swap at swappiness 60), one boot per trace (under TCG ~21 min per
    --reps on 6.12 for pread and mmap: --reps 1, --only, --access and --scale make it smaller).
    --access anon (VM only) replays anonymous memory with a swap device in the guest
    (--swappiness).

    \b
    Examples:
      reclaim-ext validate kernel --workload zipf --memory 32MiB
      reclaim-ext validate kernel --workload zipf -p alpha=1.2 --memory 12MiB --access mmap --json -
      reclaim-ext validate kernel --trace t.bin --format oraclegeneral --max-accesses 200000
      reclaim-ext validate kernel --suite --out docs/data/fidelity.json
      reclaim-ext validate kernel --table docs/data/fidelity.json
      reclaim-ext validate kernel --vm 6.12 --lru-gen on --workload zipf --memory 32MiB --json -
      reclaim-ext validate kernel --vm ./boot/vmlinuz-6.1.0-57-cloud-amd64 --lru-gen off -p accesses=50000
      reclaim-ext validate kernel --suite --vm 6.12 --lru-gen on --reps 1
      reclaim-ext validate kernel --vm 6.12 --low 16MiB --workload tenants -p a='zipf pages=12000' \\
          -p b='zipf pages=12000'
    """
    from ..trace import make_workload, open_trace
    from .kernel import validate_kernel

    if table_from is not None:
        _not_with("--table", [o for o in _given(*_KERNEL_PARAMS) if o != "--table"],
                  "it prints the table of a saved suite result and runs nothing")
        _table(table_from)
        return
    if vm is None:
        _not_with("the host kernel (no --vm)", _given("vm_modules", "lru_gen", "min_ttl_ms", "vm_accel", "vm_timeout",
                                                      "swappiness", "swap_device", "knob", "reclaim", "low",
                                                      "vm_nodes"),
                  "they configure the VM of --vm KERNEL (the host's cgroup v1 has no memory.high)")
        if access == "anon":
            raise click.BadParameter("anon needs --vm (the host has no swap to compare with)", param_hint="--access")
    if swappiness is not None and access != "anon":
        raise click.BadParameter("needs --access anon (only anon runs have swap)", param_hint="--swappiness")
    if swap_device is not None and access != "anon":
        raise click.BadParameter("needs --access anon (only anon runs have swap; with --suite, the anon set alone)",
                                 param_hint="--swap-device")
    if suite and swappiness is not None:
        raise click.BadParameter("the suite's anon set runs at swappiness 60 (run other values one by one)",
                                 param_hint="--swappiness")
    if min_ttl_ms is not None and lru_gen != "on":
        raise click.BadParameter("is MGLRU's knob: it needs --lru-gen on", param_hint="--min-ttl-ms")
    if suite:
        _not_with("--suite", _given("workload", "seed", "memory", "max_accesses", "trace_format", "trace_opts",
                                    "json_out", "knob", "reclaim", "low", "vm_nodes"),
                  "the suite has its own traces and limits, and writes its JSON to --out")
        _suite(only, access, reps, out, workdir, trace_path, params, overhead, scale,
               vm=vm and {"kernel": vm, "lru_gen": lru_gen, "min_ttl_ms": min_ttl_ms, "modules": vm_modules,
                          "accel": vm_accel, "timeout": vm_timeout, "swap_device": swap_device})
        return
    if only or out or scale is not None:
        raise click.BadParameter("only with --suite", param_hint="--only/--out/--scale")
    if trace_path is not None:
        _not_with("--trace", _given("workload"), "the trace is what is replayed (give --workload or --trace)")
    elif _given("trace_format", "trace_opts"):
        raise click.UsageError(f"{', '.join(_given('trace_format', 'trace_opts'))} needs --trace")
    access = access or "pread"
    reps = reps or 3
    _check_json_path(json_out)
    log = (lambda s: click.echo(s, err=True))
    try:
        if trace_path is not None:
            if not trace_format:
                raise click.BadParameter("needs --format", param_hint="--trace")
            if params:
                raise click.BadParameter("workload parameters do not apply to --trace", param_hint="--param")
            trace = open_trace(trace_path, trace_format, **_trace_opts(trace_opts))
            if _given("seed"):
                _ignored_warning("--seed is ignored with --trace: it seeds the workload generators, and the "
                                 "trace replays as recorded")
        else:
            trace = make_workload(workload, seed=seed, **workload_params(workload, params))
        if vm is not None:
            from .vm import validate_vm

            res = validate_vm(trace, vm, limit_pages=memory, access=access, reps=reps, lru_gen=lru_gen,
                              min_ttl_ms=min_ttl_ms, modules=vm_modules, workdir=workdir, overhead=overhead,
                              max_accesses=max_accesses, timeout=vm_timeout, accel=vm_accel, swappiness=swappiness,
                              swap_device=swap_device or "disk", knob=knob or "max", reclaim_pages=reclaim or 0,
                              nodes=vm_nodes or 1, low_pages=low or 0, log=log)
        else:
            res = validate_kernel(trace, limit_pages=memory, access=access, reps=reps, workdir=workdir,
                                  overhead=overhead, max_accesses=max_accesses, log=log)
    except (Unavailable, ReclaimExtError) as e:
        _fail(e)
    if trace_path is not None:
        res["trace"] = trace_path
    if not _emit_json(json_out, res):
        _print(res)


_KERNEL_PARAMS = ("workload", "params", "trace_path", "trace_format", "trace_opts", "seed", "max_accesses", "memory",
                  "access", "knob", "reclaim", "low", "vm_nodes", "reps", "swap_device", "swappiness", "suite", "only", "out",
                  "scale", "table_from", "workdir",
                  "overhead", "vm", "vm_modules", "lru_gen", "min_ttl_ms", "vm_accel", "vm_timeout", "json_out")


def _print_global(r: dict) -> None:
    """The global path's summary (validate/globalpath.py)."""
    h, c = r.get("host", {}), r["model_config"]
    click.echo(f"{r['workload']}: {r['accesses']:,} accesses over {r['distinct_pages']:,} pages, no memcg limit "
               f"(the global path), two nodes, pread, {r['reps']} kernel run(s)")
    click.echo(f"  VM: kernel {h.get('kernel')} ({h.get('accel')}), lru_gen {h.get('lru_gen')}, "
               f"{h.get('guest_memory_mib')} MiB, {h.get('vm_seconds', 0):.0f} s")
    click.echo(f"  kernel misses   {r['kernel_misses']:>12,.1f}  [{r['kernel_misses_min']:,} .. {r['kernel_misses_max']:,}]")
    click.echo(f"  model misses    {r['model_misses']:>12,}  ({r['model']['policy']}, nodes {c['node_sizes']} pages, "
               f"the zones' watermarks)")
    click.echo(f"  error           {100 * r['error']:>+11.2f}%  (model − kernel) / kernel")
    g = r["global"]
    for n in g["nodes"]:
        z, w = n["kernel_zone_start"], n["model_watermarks"]
        click.echo(f"  node {n['node']}: zone free {z['free']:,} min/low/high {z['min']}/{z['low']}/{z['high']} "
                   f"(model {w['min']}/{w['low']}/{w['high']})")
        for k in ("numa_hit", "numa_miss", "numa_foreign", "workingset_refault_file", "file_pages_end"):
            kern = ", ".join("–" if x is None else f"{x:,}" for x in n[f"kernel_{k}"])
            click.echo(f"    {k:<24} kernel {kern}; model {n[f'model_{k}']:,}")
    ks, mk = g["kernel_kswapd"], g["model_kswapd"]
    for k in ("pgscan_kswapd", "pgsteal_kswapd", "pgsteal_direct", "pageoutrun"):
        click.echo(f"  {k:<26} kernel {', '.join(f'{x:,}' for x in ks[k] if x is not None)}; model {mk.get(k, 0):,}")


def _print(r: dict) -> None:
    if r.get("knob") == "none":
        return _print_global(r)
    cal = r["calibration"]
    click.echo(f"{r['workload']}: {r['accesses']:,} accesses over {r['distinct_pages']:,} pages, "
               f"memcg limit {r['limit_pages']:,} pages, {r['access']}, {r['reps']} kernel run(s)")
    h = r.get("host", {})
    if h.get("vm"):
        click.echo(f"  VM: kernel {h.get('kernel')} ({h.get('accel')}), lru_gen {h.get('lru_gen')}, "
                   f"{h.get('vm_seconds', 0):.0f} s")
    click.echo(f"  kernel misses   {r['kernel_misses']:>12,.1f}  [{r['kernel_misses_min']:,} .. "
               f"{r['kernel_misses_max']:,}], CV {100 * r['kernel_misses_cv']:.2f}%")
    policy = r["model"].get("policy", "classic")
    click.echo(f"  model misses    {r['model_misses']:>12,}  ({policy}, memcg {r.get('knob', 'max')} "
               f"{cal['model_max']:,} = limit − "
               f"{cal['overhead']} pages {cal['source']} overhead)")
    click.echo(f"  error           {100 * r['error']:>+11.2f}%  (model − kernel) / kernel")
    if "error_noncompulsory" in r:
        nc = r["error_noncompulsory"]
        click.echo("  non-compulsory  " + (f"{100 * nc:>+11.2f}%" if nc is not None else f"{'–':>12}") +
                   f"  (model − kernel) / (kernel − {r['distinct_pages']:,} distinct pages)"
                   + ("" if nc is not None else ": the kernel had none"))
    pr = r.get("per_run")
    if pr and pr.get("median_abs_error") is not None:
        each = ", ".join(f"{100 * x['error']:+.2f}% at {x['model_max']:,}" for x in pr["runs"])
        line = (f"  run by run      median |error| {100 * pr['median_abs_error']:.2f}%, worst "
                f"{100 * pr['worst_abs_error']:.2f}% (run {pr['worst_run']})")
        if pr.get("median_abs_error_noncompulsory") is not None:
            line += (f"; non-compulsory median {100 * pr['median_abs_error_noncompulsory']:.2f}%, worst "
                     f"{100 * pr['worst_abs_error_noncompulsory']:.2f}%")
        click.echo(line)
        click.echo(f"                  each run at its own capacity (model max): {each}")
    click.echo(f"  plain LRU       {r['lru_misses_at_c_eff']:>12,}  at the kernel's C_eff {r['c_eff']:,.0f} pages")
    div = r.get("divergence")
    if div:
        from .bitmaps import table_lines

        click.echo(f"  per access      where kernel and model disagree, by reuse distance (the model at each run's "
                   f"capacity; mean over {div['runs']} run(s)):")
        for line in table_lines(div, indent="    "):
            click.echo(line)
    sw = r.get("swap")
    if sw:
        def n(x):
            return "–" if x is None else f"{x:,.0f}"
        click.echo(f"  swap-ins        kernel {n(sw['kernel_pswpin'])} (pswpin), model {n(sw['model_pswpin'])}; major "
                   f"faults kernel {n(sw['kernel_majflt'])}, model {n(sw['model_pgmajfault'])}; swap-outs kernel "
                   f"{n(sw['kernel_pswpout'])}, model {n(sw['model_pswpout'])}")
    sd = r.get("swap_devices")
    if sd:
        for i, m in enumerate(sd["model"]):
            kern = "; ".join(f"{k[i]['pswpin']:,} / {k[i]['pswpout']:,} / {k[i]['used_pages']:,}"
                             for k in sd["kernel"] if k and i < len(k))
            click.echo(f"  {m['kind']} (prio {m['priority']})  in / out / slots used at the end: kernel {kern}; "
                       f"model {m['pswpin']:,} / {m['pswpout']:,} / {m['used_pages']:,}")
    ns = r.get("numa_stat")
    if ns:
        def per_node(stat, key):
            return "/".join(f"{v:,}" for v in (stat or {}).get(key, [])) or "–"
        for key in ("file", "workingset_refault_file"):
            kern = "; ".join(per_node(s, key) for s in ns["kernel"])
            click.echo(f"  {key:<15} per node: kernel {kern}; model {per_node(ns['model'], key)}")
    rc = r.get("reclaim")
    if rc:
        took = ", ".join("{:,} ({})".format(x["reclaimed_pages"], x["result"]) for x in rc["kernel"] if x)
        click.echo(f"  memory.reclaim  {rc['requested_pages']:,} pages asked: kernel took {took}; model "
                   f"{rc['model_reclaimed_pages']:,} ({rc['model_result']})")
    lo = r.get("low")
    if lo:
        def each(xs):
            return ", ".join("–" if x is None else f"{x:,}" for x in (xs if isinstance(xs, list) else [xs]))
        for name, sib in lo["siblings"].items():
            click.echo(f"  sibling {name} (memory.low {sib['low_pages']:,} pages, {sib['accesses']:,} accesses): misses "
                       f"kernel {each(sib['kernel_misses'])}, model {each(sib['model_misses'])}; file pages at the end "
                       f"kernel {each(sib['kernel_file_pages'])} (memory.current {each(sib['kernel_current_pages'])}), "
                       f"model {each(sib['model_usage_pages'])}; low events kernel {each(sib['kernel_events_low'])}, "
                       f"model {each(sib['model_events_low'])}; refaults kernel {each(sib['kernel_refault_file'])}, "
                       f"model {each(sib['model_refault_file'])}")
    hi = r.get("high")
    if hi:
        click.echo(f"  memory.high     events kernel {', '.join(str(x) for x in hi['kernel_events_high'])}, model "
                   f"{hi['model_events_high']}; peak pages kernel "
                   f"{', '.join(str(x) for x in hi['kernel_peak_pages'])}, model {hi['model_peak_pages']}")


def _table(path: str) -> None:
    from .suite import table_markdown

    try:
        with open(path) as fh:
            data = json.load(fh)
        click.echo(table_markdown(data), nl=False)
    except (OSError, ValueError, KeyError, TypeError) as e:
        click.echo(f"reclaim-ext: error: --table {path}: not a suite result ({e})", err=True)
        sys.exit(EXIT_BAD_INPUT)


def default_vm_out(kernel: str, lru_gen: str | None, swap_device: str | None = None) -> str:
    """docs/data/fidelity-vm-<kernel>-lru-gen-<on|off|default>[-zram].json (the kernel's name made
    file-safe; -zram: the anon set swapping to zram)."""
    import os
    import re

    name = re.sub(r"[^A-Za-z0-9.+-]+", "_", os.path.basename(kernel.rstrip("/")))
    dev = f"-{swap_device}" if swap_device and swap_device != "disk" else ""
    return f"docs/data/fidelity-vm-{name}-lru-gen-{lru_gen or 'default'}{dev}.json"


def suite_command(only, access, reps, scale, vm: dict | None) -> str:
    """The command line that reproduces a suite run (stored in the JSON)."""
    cmd = "reclaim-ext validate kernel --suite"
    if vm:
        cmd += f" --vm {vm['kernel']}" + (f" --lru-gen {vm['lru_gen']}" if vm.get("lru_gen") else "") + \
            (f" --min-ttl-ms {vm['min_ttl_ms']}" if vm.get("min_ttl_ms") is not None else "") + \
            (f" --swap-device {vm['swap_device']}" if vm.get("swap_device") else "")
    return cmd + "".join(f" --only {t}" for t in only) + (f" --access {access}" if access else "") + \
        f" --reps {reps}" + (f" --scale {scale:g}" if scale is not None else "")


def _suite(only, access, reps, out, workdir, trace_path, params, overhead, scale=None, vm=None) -> None:
    from .suite import ACCESS, DEFAULT_OUT, DEFAULT_REPS, TRACES, VM_ACCESS, plan, run_suite, table_markdown

    if trace_path is not None or params or overhead is not None:
        raise click.BadParameter("--suite has its own traces and calibration", param_hint="--trace/--param/--overhead")
    out = out or (default_vm_out(vm["kernel"], vm.get("lru_gen"), vm.get("swap_device")) if vm else DEFAULT_OUT)
    _check_json_path(out)
    traces = tuple(only) or TRACES
    modes = (access,) if access else (VM_ACCESS if vm else ACCESS)
    try:
        cfgs = plan(traces, modes)
    except ReclaimExtError as e:
        raise click.BadParameter(str(e), param_hint="--only") from None
    reps = reps or DEFAULT_REPS
    log = (lambda s: click.echo(s, err=True))
    log(f"suite: {len(cfgs)} configurations x {reps} kernel run(s)" + (f" in a VM booting {vm['kernel']}" if vm else ""))
    try:
        if vm:
            from .vm import run_suite_vm

            data = run_suite_vm(vm["kernel"], traces=traces, access=modes, reps=reps, lru_gen=vm.get("lru_gen"),
                                min_ttl_ms=vm.get("min_ttl_ms"), modules=vm.get("modules"), workdir=workdir,
                                scale=scale or 1.0, timeout=vm.get("timeout"), accel=vm.get("accel") or "auto",
                                swap_device=vm.get("swap_device") or "disk", log=log)
        else:
            data = run_suite(traces=traces, access=modes, reps=reps, workdir=workdir, scale=scale or 1.0, log=log)
    except (Unavailable, ReclaimExtError) as e:
        _fail(e)
    data["command"] = suite_command(only, access, reps, scale, vm)
    _write_json(out, data)
    click.echo(table_markdown(data), nl=False)
    click.echo(f"written: {out}")
