"""Pictures of results (matplotlib, Agg): `reclaim-ext plot RESULT.json` draws one run's list sizes,
free pages and memcg usage over the trace; `reclaim-ext report DIR` turns a sweep's rows (reclaim_ext
.results) into miss-ratio curves per scenario, a scenario x variant table with the winner marked and,
where a policy ran with several mechanism sets, ablation bars per mechanism set (misses, rmap walks,
PTEs walked, modelled time against the policy's own mechanisms), as Markdown with PNG files and as
one self-contained HTML file."""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

from .errors import ReclaimExtError


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_result(result: dict, out: str | os.PathLike) -> Path:
    """A run's series (sampled once per trace chunk): each list's size, free pages, and each
    memcg's usage when the run has memcgs. Returns the PNG's path."""
    series = result.get("series") or []
    if not series:
        raise ReclaimExtError("the result has no series to plot (a run in plain-cache mode, or an empty run)")
    plt = _pyplot()
    x = [s["accesses"] for s in series]
    names = list((result.get("lru_sizes") or {}).keys())
    nlists = len(series[0].get("lists", []))
    if len(names) != nlists:
        names = [f"list {i}" for i in range(nlists)]
    memcgs = sorted({k for s in series for k in (s.get("memcg_usage") or {})})
    fig, axes = plt.subplots(2 if memcgs else 1, 1, figsize=(9, 7 if memcgs else 4), sharex=True, squeeze=False)
    ax = axes[0][0]
    for i, name in enumerate(names):
        ax.plot(x, [s["lists"][i] for s in series], label=name)
    ax.plot(x, [s["free"] for s in series], label="free", linestyle="--", color="grey")
    ax.set_ylabel("pages")
    ax.set_title(f"{result.get('policy', '?')} on {result.get('workload') or result.get('trace') or '?'}: "
                 "lists and free pages")
    ax.legend(fontsize="small", ncol=3)
    if memcgs:
        ax = axes[1][0]
        for name in memcgs:
            ax.plot(x, [(s.get("memcg_usage") or {}).get(name, 0) for s in series], label=name)
        ax.set_ylabel("memcg usage (pages)")
        ax.legend(fontsize="small", ncol=3)
    axes[-1][0].set_xlabel("accesses")
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _scenario(row) -> str:
    if isinstance(row.get("suite_scenario"), str) and row["suite_scenario"]:  # a benchmark suite's cell
        return row["suite_scenario"]
    if isinstance(row.get("trace"), str) and row["trace"]:
        return f"trace {Path(row['trace']).name}"
    params = row.get("workload_params")
    try:
        params = json.loads(params) if isinstance(params, str) else (params or {})
    except ValueError:
        params = {}
    extra = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
    return f"{row.get('workload')}" + (f" ({extra})" if extra else "")


def _variant(row) -> str:
    mech = row.get("mechanisms")
    mech = mech if isinstance(mech, str) and mech and mech != "default" else ""
    cache = " (cache)" if row.get("cache") is True else ""
    return f"{row['policy']}{' ' + mech if mech else ''}{cache}"


# the ablation bars' metrics: (result column, label); the cost counters are the cost_* columns
ABLATION_METRICS = (("misses", "misses"), ("cost_rmap_walks", "rmap walks"), ("cost_ptes_walked", "PTEs walked"),
                    ("modeled_seconds", "modelled time"))


def ablations(rows: list[dict]) -> dict:
    """Per scenario and policy that ran with its own mechanisms (no --mechanism, or 'default')
    and with other mechanism sets: each set's change in percent against the policy's own, per
    metric (ABLATION_METRICS), from the sums over the sizes and seeds both ran. None where the
    baseline is 0 and the variant is not."""
    out: dict = {}
    by: dict = {}
    for r in rows:
        if r.get("cache") is True:
            continue
        mech = r.get("mechanisms")
        mech = mech if isinstance(mech, str) and mech and mech != "default" else ""
        by.setdefault((r["_scenario"], r["policy"]), {}).setdefault(mech, {})[(r["_size"], r.get("seed"))] = r
    for (sc, policy), sets in sorted(by.items()):
        base = sets.get("")
        if base is None or len(sets) < 2:
            continue
        res = {}
        for mech, cells in sorted(sets.items()):
            if not mech:
                continue
            common = sorted(set(base) & set(cells), key=str)
            if not common:
                continue
            changes = {}
            for col, label in ABLATION_METRICS:
                b = sum(float(base[k].get(col) or 0) for k in common)
                v = sum(float(cells[k].get(col) or 0) for k in common)
                changes[label] = (0.0 if v == 0 else None) if b == 0 else (v - b) / b * 100.0
            res[mech] = changes
        if res:
            out[(sc, policy)] = res
    return out


def _ablation_png(plt, sc: str, policy: str, res: dict, png: Path) -> None:
    labels = [label for _, label in ABLATION_METRICS]
    mechs = list(res)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(mechs) + 2), 4))
    width = 0.8 / len(labels)
    for j, label in enumerate(labels):
        xs = [i + (j - (len(labels) - 1) / 2) * width for i in range(len(mechs))]
        ax.bar(xs, [res[m][label] or 0.0 for m in mechs], width, label=label)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(mechs)))
    ax.set_xticklabels(mechs)
    ax.set_ylabel(f"change against {policy}'s own mechanisms (%)")
    ax.set_title(f"{sc}: {policy} ablation")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def _suite_summary(directory) -> list[dict] | None:
    """The suite summary (reclaim_ext.suite.summary) when DIR holds a `reclaim-ext suite run`."""
    from .suite import SUITE_FILE, summary

    return summary(directory) if (Path(directory) / SUITE_FILE).exists() else None


def _metric_bars(ax, row: dict) -> None:
    """A suite scenario's primary metric per variant (mean over seeds), the winner darker."""
    names = sorted(row["means"])
    ax.bar(range(len(names)), [row["means"][n] for n in names],
           color=["tab:blue" if n == row["winner"] else "lightsteelblue" for n in names])
    ax.set_xticks(range(len(names)), names, rotation=15, fontsize="small")
    ax.set_ylabel(row["metric"] + (" (higher is better)" if row.get("higher_is_better") else " (lower is better)"))


def _suite_html(rows: list[dict]) -> str:
    """The suite summary as an HTML table: each variant's mean, the winner in bold."""
    out = ["<h2>Benchmark suite</h2><p>Each scenario's primary metric per variant (mean over seeds), the winner "
           "in bold, the published direction and whether ours agrees:</p><table><tr><th>scenario</th><th>metric"
           "</th><th>results</th><th>published</th><th>ours agrees</th></tr>"]
    for r in rows:
        higher = r.get("higher_is_better", False)
        res = ", ".join((f"<b>{html.escape(p)} {v:.4g}</b>" if p == r["winner"] else f"{html.escape(p)} {v:.4g}")
                        for p, v in sorted(r["means"].items(), key=lambda kv: kv[1], reverse=higher))
        exp = f" ({r['expect'][0]} {'>=' if higher else '<='} {r['expect'][1]})" if r["expect"] else ""
        agree = "-" if r["agrees"] is None else ("yes" if r["agrees"] else "no")
        metric = r["metric"] + (" (higher is better)" if higher else "")
        out.append(f"<tr><td>{html.escape(r['scenario'])}</td><td>{html.escape(metric)}</td>"
                   f"<td style='text-align:left'>{res}</td><td style='text-align:left'>"
                   f"{html.escape(r['published'] + exp)}</td><td>{agree}</td></tr>")
    return "".join(out) + "</table>"


def _pct(x) -> str:
    return "n/a" if x is None else f"{x:+.1f}%"


def report(directory: str | os.PathLike, out: str | os.PathLike | None = None) -> dict:
    """Miss-ratio curves (mean over seeds) per scenario and variant (policy, mechanisms), and the
    table of each variant's mean miss ratio per scenario (over the sizes every variant ran), the
    lowest marked. Writes report.md, report.html and one PNG per scenario into `out` (default
    DIR/report). Returns {"markdown", "html", "plots", "table"}."""
    from . import results

    df = results.load(directory)
    if "status" in df.columns:
        df = df[df["status"] == "ok"]
    if df.empty:
        raise ReclaimExtError(f"{directory}: no finished cells to report on")
    out = Path(out) if out is not None else Path(directory) / "report"
    out.mkdir(parents=True, exist_ok=True)
    rows = df.to_dict("records")
    for r in rows:  # the size a cell ran at: plain-cache mode's capacity, else the machine's memory
        r["_scenario"], r["_variant"] = _scenario(r), _variant(r)
        r["_size"] = r.get("capacity") if r.get("cache") is True else r.get("memory_pages")
    scenarios = sorted({r["_scenario"] for r in rows})
    variants = sorted({r["_variant"] for r in rows})
    suite_rows = {r["scenario"]: r for r in _suite_summary(directory) or ()}
    plt = _pyplot()
    plots, table = [], {}
    for i, sc in enumerate(scenarios):
        fig, ax = plt.subplots(figsize=(7, 4))
        curves = {}
        if sc in suite_rows and len({r["_size"] for r in rows if r["_scenario"] == sc}) == 1:
            _metric_bars(ax, suite_rows[sc])  # one size: the scenario's primary metric, not a one-point curve
        for v in variants:
            pts: dict[int, list[float]] = {}
            for r in rows:
                if r["_scenario"] == sc and r["_variant"] == v:
                    pts.setdefault(int(r["_size"]), []).append(float(r["miss_ratio"]))
            if pts:
                xs = sorted(pts)
                curves[v] = {x: sum(pts[x]) / len(pts[x]) for x in xs}
                if not ax.patches:
                    ax.plot(xs, [curves[v][x] for x in xs], marker="o", label=v)
        if not ax.patches:
            ax.set_xlabel("memory or cache capacity (pages)")
            ax.set_ylabel("miss ratio")
            ax.legend(fontsize="small")
        ax.set_title(sc)
        fig.tight_layout()
        png = out / f"mrc-{i + 1}.png"
        fig.savefig(png, dpi=100)
        plt.close(fig)
        plots.append((sc, png))
        common = set.intersection(*(set(c) for c in curves.values())) if curves else set()
        table[sc] = {v: (sum(c[x] for x in common) / len(common) if common else None) for v, c in curves.items()}
    md = ["# reclaim-ext report", "", f"From `{directory}`: {len(rows)} cells, {len(scenarios)} scenarios, "
          f"{len(variants)} variants.", "", "Mean miss ratio per scenario over the sizes every variant ran "
          "(lowest in bold):", "", "| scenario | " + " | ".join(variants) + " |",
          "|---|" + "---|" * len(variants)]
    for sc in scenarios:
        vals = table[sc]
        best = min((x for x in vals.values() if x is not None), default=None)
        cells = []
        for v in variants:
            x = vals.get(v)
            cells.append("—" if x is None else (f"**{x:.4f}**" if x == best else f"{x:.4f}"))
        md.append(f"| {sc} | " + " | ".join(cells) + " |")
    md.append("")
    for sc, png in plots:
        md += [f"## {sc}", "", f"![miss-ratio curve]({png.name})", ""]
    abl = ablations(rows)
    abl_plots = []
    if abl:
        md += ["## Ablations", "", "Each mechanism set against the policy's own mechanisms, summed over the sizes and "
               "seeds both ran (change in %):", ""]
    for k, ((sc, policy), res) in enumerate(abl.items()):
        png = out / f"ablation-{k + 1}.png"
        _ablation_png(plt, sc, policy, res, png)
        abl_plots.append(((sc, policy), png))
        labels = [label for _, label in ABLATION_METRICS]
        md += [f"### {sc}: {policy}", "", "| mechanisms | " + " | ".join(labels) + " |",
               "|---|" + "---|" * len(labels)]
        md += [f"| {m} | " + " | ".join(_pct(ch[label]) for label in labels) + " |" for m, ch in res.items()]
        md += ["", f"![ablation]({png.name})", ""]
    suite_rows = list(suite_rows.values())
    if suite_rows:
        from .suite import summary_markdown

        md[4:4] = ["The benchmark suite: each scenario's primary metric per variant (mean over seeds), the "
                   "winner, the published direction and whether ours agrees; a scenario run at one size is "
                   "pictured by that metric, one at several by its miss-ratio curves:", "",
                   summary_markdown(suite_rows)]
    md_path = out / "report.md"
    md_path.write_text("\n".join(md))
    body = [f"<h1>reclaim-ext report</h1><p>From <code>{html.escape(str(directory))}</code>: {len(rows)} cells, "
            f"{len(scenarios)} scenarios, {len(variants)} variants.</p>"]
    if suite_rows:
        body.append(_suite_html(suite_rows))
    body += ["<p>Mean miss ratio per scenario over the sizes every variant ran (lowest in bold):</p><table>",
            "<tr><th>scenario</th>" + "".join(f"<th>{html.escape(v)}</th>" for v in variants) + "</tr>"]
    for sc in scenarios:
        vals = table[sc]
        best = min((x for x in vals.values() if x is not None), default=None)
        tds = "".join("<td>—</td>" if vals.get(v) is None else
                      (f"<td><b>{vals[v]:.4f}</b></td>" if vals[v] == best else f"<td>{vals[v]:.4f}</td>")
                      for v in variants)
        body.append(f"<tr><td>{html.escape(sc)}</td>{tds}</tr>")
    body.append("</table>")
    for sc, png in plots:
        data = base64.b64encode(png.read_bytes()).decode()
        body.append(f"<h2>{html.escape(sc)}</h2><img alt='miss-ratio curve' src='data:image/png;base64,{data}'>")
    if abl:
        body.append("<h2>Ablations</h2><p>Each mechanism set against the policy's own mechanisms, summed over the "
                    "sizes and seeds both ran (change in %):</p>")
    for (sc, policy), png in abl_plots:
        res = abl[(sc, policy)]
        labels = [label for _, label in ABLATION_METRICS]
        body.append(f"<h3>{html.escape(sc)}: {html.escape(policy)}</h3><table><tr><th>mechanisms</th>"
                    + "".join(f"<th>{html.escape(x)}</th>" for x in labels) + "</tr>")
        body += [f"<tr><td>{html.escape(m)}</td>" + "".join(f"<td>{_pct(ch[x])}</td>" for x in labels) + "</tr>"
                 for m, ch in res.items()]
        data = base64.b64encode(png.read_bytes()).decode()
        body.append(f"</table><img alt='ablation' src='data:image/png;base64,{data}'>")
    html_path = out / "report.html"
    html_path.write_text("<!doctype html><html><head><meta charset='utf-8'><title>reclaim-ext report</title>"
                         "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
                         "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>"
                         + "\n".join(body) + "</body></html>\n")
    return {"markdown": md_path, "html": html_path, "plots": [p for _, p in plots], "table": table,
            "ablations": abl, "ablation_plots": [p for _, p in abl_plots]}
