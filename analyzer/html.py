"""`iotrace report DIR --html OUT.html`: one self-contained page (no script, no external file:
the plots are inline SVG, see plots.py), with the console report's tables."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from iotrace.text import escape
from iotrace.tracedir import write_atomic

from . import plots
from .datasets import overview_text
from .fmt import fmt_bytes, fmt_pct, fmt_time
from .over_time import MAX_ROWS, OverTime
from .summary import no_missed_text
from .tables import (
    AFTER_JOB,
    BEFORE_JOB,
    Col,
    Table,
    cell,
    evidence_line,
    job_lines,
    system_line,
    tables,
)

if TYPE_CHECKING:
    from .insights import Insight
    from .summary import Summary
    from .trace import Trace

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2em auto;
max-width:1100px;padding:0 1em;color:#222}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid
#ddd;padding-bottom:.2em} .sub{color:#666}
table{border-collapse:collapse;margin:.5em 0;font-size:13px} th,td{padding:3px 8px;
border-bottom:1px solid #eee;text-align:right;vertical-align:top}
th{background:#f6f6f6} td.t,th.t{text-align:left} td.path{word-break:break-all;max-width:36em}
.ov td{text-align:left} .ov td:first-child{color:#666}
.ins{border-left:4px solid #999;padding:.3em .8em;margin:.6em 0;background:#fafafa}
.ins.high{border-color:#d62728} .ins.warn{border-color:#ff7f0e} .ins.info{border-color:#1f77b4}
.ins b{display:block} .lvl{font-size:11px;text-transform:uppercase;color:#666}
figure{margin:1em 0} figure svg{max-width:100%;height:auto} .note{color:#666;font-size:12px}
.ev{color:#555;font-size:12px;margin:.1em 0 .2em} .bar{display:inline-block;height:9px;
background:#1f77b4;margin-left:6px;vertical-align:middle}
nav.toc{background:#f6f6f6;padding:.4em 1em;margin:1em 0} nav.toc ol{margin:.2em 0;
columns:3} section{scroll-margin-top:1em}
"""


def _e(x: Any) -> str:
    """Text from the trace in HTML: control characters and bytes that are not UTF-8 as \\xNN
    (as on the console), then HTML's own escapes."""
    return html.escape(escape(x, quote=False))


def _table(headers: list[str], rows: list[list[str]], text_cols: set[int]) -> str:
    """A table of cells formatted (and escaped) already (`iotrace diff --html`)."""
    th = "".join(
        f'<th class="{"t" if i in text_cols else ""}">{_e(h)}</th>' for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>" + "".join(f'<td class="{"t" if i in text_cols else ""}">{c}</td>'
                         for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )  # fmt: skip
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def table_html(t: Table) -> str:
    """One table spec as HTML (cells formatted by kind, as on the console)."""

    def cls(c: Col) -> str:
        return {"text": "t", "wide": "t path", "hist": ""}.get(c.kind, "")

    th = "".join(f'<th class="{cls(c)}">{_e(c.name)}</th>' for c in t.columns)
    top = {
        i: max([int(r[i] or 0) for r in t.rows] + [1])
        for i, c in enumerate(t.columns)
        if c.kind == "hist"
    }
    body = []
    for r in t.rows:
        tds = []
        for i, (c, v) in enumerate(zip(t.columns, r, strict=True)):
            text = _e(cell(c.kind, v))
            if c.kind == "hist":
                w = round(100 * int(v or 0) / top[i])
                text += f"<span class='bar' style='width:{w}px'></span>"
            tds.append(f'<td class="{cls(c)}">{text}</td>')
        body.append(f"<tr>{''.join(tds)}</tr>")
    note = f"<p class='note'>{_e(t.note)}.</p>" if t.note else ""
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>{note}"


def _insight_html(i: Insight) -> str:
    return (
        f"<div class='ins {i.level}'><span class='lvl'>{_e(i.level)}</span>"
        f"<b>{_e(i.title)}</b><div class='ev'>{_e(evidence_line(i))}</div>{_e(i.detail)}</div>"
    )


def render(trace: Trace, s: Summary) -> str:
    ov = s.overview
    ts = {t.key: t for t in tables(s, "html")}
    sections: list[tuple[str, str, str]] = []  # (id, heading, body)

    def section(sid: str, heading: str, body: str) -> None:
        if body:
            sections.append((sid, heading, body))

    ovrows = [
        ("run time", fmt_time(ov["run_time"])),
        (
            "processes / images / threads / ranks / hosts",
            f"{ov['processes']} / {ov['images']} / {ov['threads']} / {ov['ranks']} / {ov['hosts']}",
        ),
        ("events", f"{ov['events']:,}"),
        (
            "time in I/O",
            f"{fmt_time(ov['io_time'])} = {fmt_pct(ov['io_share'])} of the "
            f"processes' time ({fmt_time(ov['process_time'])}); on files "
            f"{fmt_time(ov['file_io_time'])}",
        ),
        (
            "read",
            f"{fmt_bytes(ov['bytes_read'])} in {ov['reads']:,} calls, "
            f"{fmt_bytes(ov['read_bandwidth'])}/s inside the calls",
        ),
        (
            "written",
            f"{fmt_bytes(ov['bytes_written'])} in {ov['writes']:,} calls, "
            f"{fmt_bytes(ov['write_bandwidth'])}/s inside the calls",
        ),
        ("metadata operations", f"{ov['metadata_ops']:,}"),
        ("failed calls", f"{ov['errors']:,}"),
        ("files", f"{ov['files']:,}"),
        (
            "sequential accesses",
            fmt_pct(ov["sequential"] / ov["classified"]) if ov["classified"] else "-",
        ),
        ("missed I/O (stracer)", f"{ov['missed']:,}"),
    ]
    if line := system_line(s):
        ovrows.append(("system and runtime files", line.split(": ", 1)[1]))
    if ov["mpi_reads"] or ov["mpi_writes"]:
        ovrows.append(
            (
                "MPI-IO (not added to the totals)",
                f"read {fmt_bytes(ov['mpi_bytes_read'])} in {ov['mpi_reads']:,} calls, wrote "
                f"{fmt_bytes(ov['mpi_bytes_written'])} in {ov['mpi_writes']:,} calls; "
                f"{fmt_bytes(ov['posix_bytes_in_mpi'])} of the POSIX bytes moved inside them",
            )
        )
    if "datasets" in ov:
        ovrows.append(("HDF5/PnetCDF", overview_text(ov["datasets"])))
    body = _kv(ovrows)
    if ov["events"] == 0:
        none = f"No event passes the filters ({ov['selection']})" if ov.get("selection") else ""
        body += f"<p><b>{_e(none or 'The trace holds no events')}.</b></p>"
    section("overview", "Overview", body)
    comp = s.completeness
    if comp:
        body = f"<p>{_e(comp['line'])} (the kernel's /proc/PID/io of every process).</p>"
        if ts["completeness"].rows:
            body += table_html(ts["completeness"])
        section("completeness", "Completeness", body)
    section(
        "insights",
        "Insights",
        "".join(_insight_html(i) for i in s.insights) or "<p>Nothing to flag.</p>",
    )
    figs = []
    ot = s.over_time or OverTime()
    tl, left_out = plots.timeline(ot, trace.processes)
    hm = plots.rank_heatmap(ot)
    for fig in (hm, tl, plots.bandwidth(s.bandwidth), plots.sizes(s.sizes), plots.files(s.files)):
        if fig:
            figs.append(f"<figure>{fig}</figure>")
    if left_out:
        figs.append(
            f"<p class='note'>The timeline shows the {MAX_ROWS} processes with the most I/O "
            f"time; {left_out} more are left out (the heatmap above has every rank).</p>"
        )
    section("plots", "Plots", "".join(figs))
    titles = {
        "functions": "Functions",
        "files": "Files",
        "directories": "Metadata by directory",
        "mpi_modes": "MPI-IO: collective vs independent",
        "mpi": "MPI-IO calls",
        "datasets": "Datasets: HDF5, PnetCDF",
        "ranks": "Ranks",
        "processes": "Processes",
        "metadata": "Metadata by function",
        "sizes": "Access sizes",
        "call_sites": "Call sites",
    }
    for key in BEFORE_JOB:
        if ts[key].rows:
            section(key, titles[key], _caption(ts[key]) + table_html(ts[key]))
    job = job_lines(s)
    if job:
        section("job", "Job", "".join(f"<p>{_e(x)}</p>" for x in job))
    for key in AFTER_JOB:
        if key in ts and ts[key].rows:
            section(key, titles[key], _caption(ts[key]) + table_html(ts[key]))
    ms = ts["missed_sites"]
    section(
        "missed",
        "Missed I/O by call site",
        table_html(ms) if ms.rows else f"<p>{_e(no_missed_text(s).capitalize())}.</p>",
    )
    title = f"iotrace report: {Path(str(ov['trace'])).name}"
    toc = "".join(f"<li><a href='#{sid}'>{_e(h)}</a></li>" for sid, h, _ in sections)
    parts = [
        f"<h1>iotrace report</h1><div class='sub'>{_e(ov['trace'])}"
        f"{' — ' + _e(ov['command']) if ov['command'] else ''}</div>",
        f"<nav class='toc'><b>Contents</b><ol>{toc}</ol></nav>",
        *(f"<section id='{sid}'><h2>{_e(h)}</h2>{b}</section>" for sid, h, b in sections),
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>\n"
        + "\n".join(parts)
        + "\n<p class='note'>Made by iotrace. Times are in the traced calls; sizes in bytes "
        "(KiB = 1024 B).</p></body></html>\n"
    )


def _caption(t: Table) -> str:
    return f"<p class='sub'>{_e(t.title)}</p>"


def _kv(rows: list[tuple[str, str]]) -> str:
    return (
        "<table class='ov'>"
        + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows)
        + "</table>"
    )


def write_html(trace: Trace, s: Summary, out: str | os.PathLike[str]) -> None:
    data = render(trace, s).encode("utf-8")
    write_atomic(out, lambda f: f.write(data))
