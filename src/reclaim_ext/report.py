"""Pictures of results (matplotlib, Agg): `reclaim-ext plot RESULT.json` draws one run's list sizes,
free pages and memcg usage over the trace; `reclaim-ext report DIR` turns a sweep's rows (reclaim_ext
.results) into miss-ratio curves per scenario and a scenario x variant table with the winner marked,
as Markdown with PNG files and as one self-contained HTML file."""

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
    plt = _pyplot()
    plots, table = [], {}
    for i, sc in enumerate(scenarios):
        fig, ax = plt.subplots(figsize=(7, 4))
        curves = {}
        for v in variants:
            pts: dict[int, list[float]] = {}
            for r in rows:
                if r["_scenario"] == sc and r["_variant"] == v:
                    pts.setdefault(int(r["_size"]), []).append(float(r["miss_ratio"]))
            if pts:
                xs = sorted(pts)
                curves[v] = {x: sum(pts[x]) / len(pts[x]) for x in xs}
                ax.plot(xs, [curves[v][x] for x in xs], marker="o", label=v)
        ax.set_xlabel("memory or cache capacity (pages)")
        ax.set_ylabel("miss ratio")
        ax.set_title(sc)
        ax.legend(fontsize="small")
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
    md_path = out / "report.md"
    md_path.write_text("\n".join(md))
    body = [f"<h1>reclaim-ext report</h1><p>From <code>{html.escape(str(directory))}</code>: {len(rows)} cells, "
            f"{len(scenarios)} scenarios, {len(variants)} variants.</p>",
            "<p>Mean miss ratio per scenario over the sizes every variant ran (lowest in bold):</p><table>",
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
    html_path = out / "report.html"
    html_path.write_text("<!doctype html><html><head><meta charset='utf-8'><title>reclaim-ext report</title>"
                         "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
                         "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>"
                         + "\n".join(body) + "</body></html>\n")
    return {"markdown": md_path, "html": html_path, "plots": [p for _, p in plots], "table": table}
