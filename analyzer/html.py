"""`iotrace report DIR --html OUT.html`: one self-contained page (no script, no external file:
the plots are inline SVG, see plots.py), with the console report's tables."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from iotrace.text import escape
from iotrace.tracedir import write_atomic

from . import plots
from .access import arrays
from .datasets import overview_text, table_rows
from .fmt import RANK_COLUMNS, fmt_bytes, fmt_int, fmt_pct, fmt_time, rank_cells
from .summary import no_missed_text

if TYPE_CHECKING:
    from .summary import Summary
    from .trace import Trace

TOP_FILES = 50
TOP_PROCS = 64

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
"""


def _e(x: Any) -> str:
    """Text from the trace in HTML: control characters and bytes that are not UTF-8 as \\xNN
    (as on the console), then HTML's own escapes."""
    return html.escape(escape(x, quote=False))


def _table(headers: list[str], rows: list[list[str]], text_cols: set[int]) -> str:
    th = "".join(
        f'<th class="{"t" if i in text_cols else ""}">{_e(h)}</th>' for i, h in enumerate(headers)
    )
    body = []
    for r in rows:
        cells = []
        for i, c in enumerate(r):
            cls = ("t" if i in text_cols else "") + (
                " path" if headers[i] in ("path", "site") else ""
            )
            cells.append(f'<td class="{cls.strip()}">{c}</td>')
        tds = "".join(cells)
        body.append(f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render(trace: Trace, s: Summary) -> str:
    ov = s.overview
    a = arrays(trace.events)
    span = max(int(trace.duration), int(a.t_end.max()) if a.n else 0, 1)
    parts: list[str] = []
    add = parts.append
    add(
        f"<h1>iotrace report</h1><div class='sub'>{_e(ov['trace'])}"
        f"{' — ' + _e(ov['command']) if ov['command'] else ''}</div>"
    )
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
            f"processes' time ({fmt_time(ov['process_time'])})",
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
    add(
        "<table class='ov'>"
        + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in ovrows)
        + "</table>"
    )
    if ov["events"] == 0:
        none = f"No event passes the filters ({ov['selection']})" if ov.get("selection") else ""
        add(f"<p><b>{_e(none or 'The trace holds no events')}.</b></p>")
    comp = s.completeness
    if comp:
        add("<h2>Completeness</h2>")
        add(f"<p>{_e(comp['line'])} (the kernel's /proc/PID/io of every process).</p>")
        ct = comp["processes"]
        short = ct[ct["cause"] != ""]
        if len(short):
            add(
                _table(
                    ["pid", "command", "bytes", "calls", "why"],
                    [
                        [
                            str(r.pid),
                            _e(r.command),
                            fmt_pct(None if pd.isna(r.bytes_pct) else r.bytes_pct / 100),
                            fmt_pct(None if pd.isna(r.calls_pct) else r.calls_pct / 100),
                            _e(r.cause),
                        ]
                        for r in short.itertuples()
                    ],
                    {1, 4},
                )
            )

    add("<h2>Insights</h2>")
    if not s.insights:
        add("<p>Nothing to flag.</p>")
    for i in s.insights:
        add(
            f"<div class='ins {i.level}'><span class='lvl'>{_e(i.level)}</span>"
            f"<b>{_e(i.title)}</b>{_e(i.detail)}</div>"
        )

    add("<h2>Plots</h2>")
    tl, left_out = plots.timeline(a, trace.processes, span)
    for fig in (tl, plots.bandwidth(s.bandwidth), plots.sizes(s.sizes), plots.files(s.files)):
        if fig:
            add(f"<figure>{fig}</figure>")
    if left_out:
        add(
            f"<p class='note'>The timeline shows the {plots.MAX_ROWS} processes with the most I/O "
            f"time; {left_out} more are left out.</p>"
        )

    add("<h2>Functions</h2>")
    add(
        _table(
            ["function", "op", "calls", "errors", "bytes", "time", "mean"],
            [
                [
                    _e(r.function),
                    _e(r.op),
                    fmt_int(r.calls),
                    fmt_int(r.errors),
                    fmt_bytes(r.bytes),
                    fmt_time(r.time),
                    fmt_time(r.mean_time),
                ]
                for r in s.functions.itertuples()
            ],
            {0, 1},
        )
    )

    top = f", top {TOP_FILES}" if len(s.files) > TOP_FILES else ""
    add(f"<h2>Files ({len(s.files):,}{top})</h2>")
    add(
        _table(
            [
                "path",
                "read",
                "written",
                "reads",
                "writes",
                "opens",
                "meta",
                "I/O time",
                "sequential",
                "random",
                "unaligned",
                "ranks",
            ],
            [
                [
                    _e(r.path),
                    fmt_bytes(r.bytes_read),
                    fmt_bytes(r.bytes_written),
                    fmt_int(r.reads),
                    fmt_int(r.writes),
                    fmt_int(r.opens),
                    fmt_int(r.meta_ops),
                    fmt_time(r.io_time),
                    fmt_pct(r.seq_share),
                    fmt_int(r.random),
                    fmt_int(r.unaligned),
                    _e(r.rank_list) if r.rank_list else fmt_int(r.ranks),
                ]
                for r in s.files.head(TOP_FILES).itertuples()
            ],
            {0},
        )
    )

    _job(s, add)
    if len(s.ranks):
        add("<h2>Ranks</h2>")
        add(
            _table(
                RANK_COLUMNS, [rank_cells(r) for r in s.ranks.head(TOP_PROCS).itertuples()], set()
            )
        )
    add("<h2>Processes</h2>")
    pp = s.processes.sort_values("io_time", ascending=False).head(TOP_PROCS)
    add(
        _table(
            [
                "pid",
                "rank",
                "host",
                "command",
                "read",
                "written",
                "I/O time",
                "run time",
                "I/O share",
                "exit",
            ],
            [
                [
                    fmt_int(r.pid),
                    fmt_int(r.rank),
                    _e(r.host),
                    _e(r.command),
                    fmt_bytes(r.bytes_read),
                    fmt_bytes(r.bytes_written),
                    fmt_time(r.io_time),
                    fmt_time(r.run_time),
                    fmt_pct(r.io_share),
                    _e(f"exit {fmt_int(r.exit_status)}" if r.ended == "exit" else r.ended),
                ]
                for r in pp.itertuples()
            ],
            {2, 3, 9},
        )
    )

    if len(s.metadata):
        add("<h2>Metadata operations</h2>")
        add(
            _table(
                ["function", "calls", "errors", "time"],
                [
                    [_e(r.function), fmt_int(r.calls), fmt_int(r.errors), fmt_time(r.time)]
                    for r in s.metadata.itertuples()
                ],
                {0},
            )
        )
    add("<h2>Access sizes</h2>")
    add(
        _table(
            ["bucket", "reads", "writes"],
            [[_e(r.bucket), fmt_int(r.reads), fmt_int(r.writes)] for r in s.sizes.itertuples()],
            {0},
        )
    )
    if len(s.call_sites):
        add("<h2>Call sites with the most I/O</h2>")
        add(
            _table(
                ["site", "functions", "calls", "bytes", "time"],
                [
                    [
                        _e(r.site),
                        _e(r.functions),
                        fmt_int(r.calls),
                        fmt_bytes(r.bytes),
                        fmt_time(r.time),
                    ]
                    for r in s.call_sites.itertuples()
                ],
                {0, 1},
            )
        )
    add("<h2>Missed I/O by call site</h2>")
    if len(s.missed_sites):
        add(
            _table(
                ["site", "functions", "count", "bytes", "ranks", "pids", "paths"],
                [
                    [
                        _e(r.site),
                        _e(r.functions),
                        fmt_int(r.count),
                        fmt_bytes(r.bytes),
                        _e(r.ranks or "-"),
                        _e(r.pids),
                        _e(r.paths),
                    ]
                    for r in s.missed_sites.itertuples()
                ],
                {0, 1, 4, 5, 6},
            )
        )
    else:
        add(f"<p>{_e(no_missed_text(s).capitalize())}.</p>")
    title = f"iotrace report: {Path(str(ov['trace'])).name}"
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>\n"
        + "\n".join(parts)
        + "\n<p class='note'>Made by iotrace. Times are in the traced calls; sizes in bytes "
        "(KiB = 1024 B).</p></body></html>\n"
    )


def _job(s: Summary, add: Any) -> None:
    jb = s.job
    if jb.get("ranks"):
        sl, fa, lay, nr = jb["slowest"], jb["fastest"], jb["layout"], jb["non_rank"]
        add("<h2>Job</h2>")
        rows = [
            ("ranks", f"{jb['ranks']}"),
            (
                "slowest rank",
                f"rank {sl['rank']}: {fmt_time(sl['io_time'])} in I/O, {fmt_bytes(sl['bytes'])}",
            ),
            (
                "fastest rank",
                f"rank {fa['rank']}: {fmt_time(fa['io_time'])} in I/O, {fmt_bytes(fa['bytes'])}",
            ),
            ("bytes per rank", f"{fmt_bytes(jb['bytes_min'])} to {fmt_bytes(jb['bytes_max'])}"),
            (
                "file layout",
                f"{lay['kind']} ({lay['basis']} files: {lay['shared_files']} shared, "
                f"{fmt_bytes(lay['shared_bytes'])}; {lay['fpp_files']} per process, "
                f"{fmt_bytes(lay['fpp_bytes'])})",
            ),
        ]
        if nr["processes"]:
            rows.append(
                (
                    "not ranks (launcher)",
                    f"{nr['processes']} process(es) ({', '.join(nr['commands'])}): read "
                    f"{fmt_bytes(nr['bytes_read'])}, wrote {fmt_bytes(nr['bytes_written'])}, "
                    f"{fmt_time(nr['io_time'])} in I/O",
                )
            )
        add(
            "<table class='ov'>"
            + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows)
            + "</table>"
        )
    if len(s.mpi_modes):
        add("<h2>MPI-IO: collective vs independent</h2>")
        add(
            _table(
                ["mode", "kind", "calls", "bytes (MPI)", "POSIX calls", "POSIX bytes", "functions"],
                [
                    [
                        _e(r.mode),
                        _e(r.kind),
                        fmt_int(r.calls),
                        fmt_bytes(r.bytes),
                        fmt_int(r.posix_calls),
                        fmt_bytes(r.posix_bytes),
                        _e(r.functions),
                    ]
                    for r in s.mpi_modes.itertuples()
                ],
                {0, 1, 6},
            )
        )
    if len(s.mpi):
        add("<h2>MPI-IO calls and the POSIX calls inside them</h2>")
        add(
            _table(
                ["function", "mode", "calls", "ranks", "bytes (MPI)", "time", "POSIX inside"],
                [
                    [
                        _e(r.function),
                        _e(r.mode),
                        fmt_int(r.calls),
                        _e(r.ranks),
                        fmt_bytes(r.bytes),
                        fmt_time(r.time),
                        _e(r.posix or "-"),
                    ]
                    for r in s.mpi.itertuples()
                ],
                {0, 1, 3, 6},
            )
        )
    if len(s.datasets):
        add("<h2>Datasets: HDF5, PnetCDF</h2>")
        heads, rows = table_rows(s.datasets)
        add(_table(heads, [[_e(v) for v in r] for r in rows], {0, 1, 2}))


def write_html(trace: Trace, s: Summary, out: str | os.PathLike[str]) -> None:
    data = render(trace, s).encode("utf-8")
    write_atomic(out, lambda f: f.write(data))
