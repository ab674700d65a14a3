"""`iotrace report`: the summary as rich console tables, or as JSON."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from iotrace.text import escape

from .access import BUCKETS
from .datasets import overview_text, table_rows
from .fmt import RANK_COLUMNS, fmt_bytes, fmt_int, fmt_pct, fmt_time, rank_cells
from .summary import Summary, no_missed_text

TOP_FILES = 10
TOP_PROCS = 16
JSON_TOP_FILES = 100
COMPLETENESS_ROWS = 10  # processes the console names where the trace falls short
LEVEL_STYLE = {"high": "bold red", "warn": "yellow", "info": "cyan"}


TEXT_COLUMNS = {
    "function",
    "path",
    "command",
    "site",
    "bucket",
    "op",
    "host",
    "functions",
    "finding",
    "level",
    "exit",
    "paths",
    "mode",
    "kind",
    "posix",
    "ranks list",
    "why",
    "",
}
WIDE_COLUMNS = {"path", "site", "finding", "command", "paths", "posix", "summary", "why"}


def _text(x: Any, style: str = "") -> Any:
    """A cell or line of text from the trace as it is: no markup, controls escaped."""
    return Text(escape(x, quote=False), style=style) if isinstance(x, str) else x


class _Table(Table):
    def add_row(self, *cells: Any, **kw: Any) -> None:
        super().add_row(*map(_text, cells), **kw)


class _Console:
    """The console, every str printed as plain text (names in a trace are not markup)."""

    def __init__(self, c: Console) -> None:
        self.c = c

    def print(self, *objs: Any, **kw: Any) -> None:
        self.c.print(*map(_text, objs), **kw)


def _table(title: str, *cols: str) -> Table:
    t = _Table(title=title, title_justify="left", title_style="bold", header_style="bold")
    for c in cols:
        if c in WIDE_COLUMNS:
            t.add_column(c, justify="left", overflow="fold", ratio=1, min_width=20)
        else:
            t.add_column(c, justify="left" if c in TEXT_COLUMNS else "right", no_wrap=True)
    return t


def print_report(s: Summary, console: Console | None = None) -> None:
    c = _Console(console or Console())
    ov = s.overview
    c.print(_text(f"iotrace report: {ov['trace']}", style="bold"))
    if ov["command"]:
        c.print(f"command: {ov['command']}")
    c.print(
        f"run time {fmt_time(ov['run_time'])}; {ov['processes']} process(es) "
        f"({ov['images']} program image(s): exec starts a new one), {ov['threads']} thread(s), "
        f"{ov['ranks']} rank(s) on {ov['hosts']} host(s); {ov['events']:,} events"
    )
    _print_completeness(c, s)
    if ov["events"] == 0:
        c.print(
            Text(
                f"No event passes the filters ({ov['selection']})."
                if ov.get("selection")
                else "The trace holds no events: the command made no traced call (a static "
                "binary, or no I/O through libc?).",
                style="yellow",
            )
        )
    c.print(
        f"I/O time {fmt_time(ov['io_time'])} = {fmt_pct(ov['io_share'])} of the processes' time "
        f"({fmt_time(ov['process_time'])}); read {fmt_bytes(ov['bytes_read'])} in "
        f"{ov['reads']:,} calls ({fmt_bytes(ov['read_bandwidth'])}/s in the calls), wrote "
        f"{fmt_bytes(ov['bytes_written'])} in {ov['writes']:,} calls "
        f"({fmt_bytes(ov['write_bandwidth'])}/s); {ov['metadata_ops']:,} metadata ops; "
        f"{ov['errors']:,} failed calls; {ov['files']:,} files"
    )
    if ov.get("stracer_held"):
        n = ov["stracer_held_events"]
        where = (
            f"taken out of the time of the {n:,} traced calls they fell in"
            if n
            else "none fell in a traced call"
        )
        c.print(
            f"the stracer held the app {fmt_time(ov['stracer_held'])} in "
            f"{ov['stracer_stops']:,} stops: {where} (the tracer's cost, not the app's)"
        )
    if ov["mpi_reads"] or ov["mpi_writes"]:
        c.print(
            f"MPI-IO: read {fmt_bytes(ov['mpi_bytes_read'])} in {ov['mpi_reads']:,} calls, wrote "
            f"{fmt_bytes(ov['mpi_bytes_written'])} in {ov['mpi_writes']:,} calls (the MPI layer: "
            f"not added to the POSIX-level totals above, of which "
            f"{fmt_bytes(ov['posix_bytes_in_mpi'])} moved inside MPI-IO calls)"
        )
    if "datasets" in ov:
        c.print(f"HDF5/PnetCDF: {overview_text(ov['datasets'])}")
    if ov["classified"]:
        c.print(
            f"access pattern: {fmt_pct(ov['sequential'] / ov['classified'])} sequential "
            f"({fmt_pct(ov['consecutive'] / ov['classified'])} consecutive) of "
            f"{ov['classified']:,} accesses with a known offset"
        )
    c.print()
    if s.insights:
        t = _table("Insights", "level", "finding")
        for i in s.insights:
            t.add_row(
                Text(i.level, style=LEVEL_STYLE.get(i.level, "")),
                _text(i.title, style="bold") + Text("\n") + _text(i.detail),
            )
        c.print(t)
    else:
        c.print("Insights: nothing to flag.")

    t = _table("Functions", "function", "op", "calls", "errors", "bytes", "time", "mean")
    for r in s.functions.itertuples():
        t.add_row(
            r.function,
            r.op,
            fmt_int(r.calls),
            fmt_int(r.errors),
            fmt_bytes(r.bytes),
            fmt_time(r.time),
            fmt_time(r.mean_time),
        )
    c.print(t)

    f = s.files.head(TOP_FILES)
    t = _table(
        f"Top files (of {len(s.files):,}, by bytes)",
        "path",
        "read",
        "written",
        "reads",
        "writes",
        "opens",
        "meta",
        "I/O time",
        "sequential",
        "ranks",
    )
    for r in f.itertuples():
        t.add_row(
            r.path,
            fmt_bytes(r.bytes_read),
            fmt_bytes(r.bytes_written),
            fmt_int(r.reads),
            fmt_int(r.writes),
            fmt_int(r.opens),
            fmt_int(r.meta_ops),
            fmt_time(r.io_time),
            fmt_pct(r.seq_share),
            fmt_int(r.ranks),
        )
    c.print(t)

    _print_job(c, s)
    if len(s.ranks):
        r_df = s.ranks.sort_values("io_time", ascending=False).head(TOP_PROCS)
        more = f", slowest {len(r_df)} of {len(s.ranks)}" if len(s.ranks) > TOP_PROCS else ""
        t = _table(f"Ranks (by I/O time{more})", *RANK_COLUMNS)
        for r in r_df.itertuples():
            t.add_row(*rank_cells(r))
        c.print(t)
    p_df = s.processes.sort_values("io_time", ascending=False).head(TOP_PROCS)
    more = f", top {len(p_df)} of {len(s.processes)}" if len(s.processes) > TOP_PROCS else ""
    t = _table(
        f"Processes (by I/O time{more})",
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
    )
    for r in p_df.itertuples():
        ex = r.ended if r.ended != "exit" else f"exit {fmt_int(r.exit_status)}"
        t.add_row(
            fmt_int(r.pid),
            fmt_int(None if pd.isna(r.rank) else r.rank),
            r.host,
            _short(r.command, 40),
            fmt_bytes(r.bytes_read),
            fmt_bytes(r.bytes_written),
            fmt_time(r.io_time),
            fmt_time(r.run_time),
            fmt_pct(r.io_share),
            ex,
        )
    c.print(t)

    if len(s.metadata):
        t = _table("Metadata operations", "function", "calls", "errors", "time")
        for r in s.metadata.itertuples():
            t.add_row(r.function, fmt_int(r.calls), fmt_int(r.errors), fmt_time(r.time))
        c.print(t)

    t = _table("Access sizes (bytes per read/write)", "bucket", "reads", "", "writes", "")
    rmax = max(int(s.sizes["reads"].max()), 1) if len(s.sizes) else 1
    wmax = max(int(s.sizes["writes"].max()), 1) if len(s.sizes) else 1
    for r in s.sizes.itertuples():
        rd, wr = fmt_int(r.reads), fmt_int(r.writes)
        t.add_row(r.bucket, rd, _bar(r.reads, rmax), wr, _bar(r.writes, wmax))
    c.print(t)

    if len(s.call_sites):
        t = _table("Call sites with the most I/O", "site", "functions", "calls", "bytes", "time")
        for r in s.call_sites.itertuples():
            t.add_row(r.site, r.functions, fmt_int(r.calls), fmt_bytes(r.bytes), fmt_time(r.time))
        c.print(t)

    if len(s.missed_sites):
        t = _table(
            "Missed I/O by call site (syscalls the shim did not see, from the stracer)",
            "site",
            "functions",
            "count",
            "bytes",
            "ranks",
            "pids",
            "paths",
        )
        for r in s.missed_sites.itertuples():
            t.add_row(
                r.site,
                r.functions,
                fmt_int(r.count),
                fmt_bytes(r.bytes),
                r.ranks or "-",
                r.pids,
                r.paths,
            )
        c.print(t)
    else:
        c.print(f"Missed I/O: {no_missed_text(s)}.")


def _print_completeness(c: _Console, s: Summary) -> None:
    """The job's line, and the processes whose I/O the trace does not explain to the byte."""
    comp = s.completeness
    if not comp:
        return
    c.print(Text(comp["line"]))
    table = comp["processes"]
    short = table[(table["cause"] != "") & ~table["cause"].str.contains("stdio's buffer")]
    if short.empty:
        return
    t = _table("Completeness: processes the trace does not explain to the byte",
               "pid", "command", "bytes", "calls", "why")  # fmt: skip
    for r in short.head(COMPLETENESS_ROWS).itertuples():
        t.add_row(str(r.pid), _short(r.command, 40), fmt_pct(_frac(r.bytes_pct)),
                  fmt_pct(_frac(r.calls_pct)), r.cause)  # fmt: skip
    c.print(t)
    if len(short) > COMPLETENESS_ROWS:
        c.print(f"... and {len(short) - COMPLETENESS_ROWS:,} more (iotrace report --json)")


def _frac(pct: Any) -> float | None:
    return None if pct is None or pd.isna(pct) else float(pct) / 100


def _print_job(c: _Console, s: Summary) -> None:
    """The job's view: ranks, the launcher, file layout, MPI-IO."""
    jb = s.job
    if jb.get("ranks"):
        sl, fa = jb["slowest"], jb["fastest"]
        c.print(Text("Job", style="bold"))
        c.print(
            f"{jb['ranks']} ranks; slowest rank {sl['rank']}: {fmt_time(sl['io_time'])} in I/O, "
            f"{fmt_bytes(sl['bytes'])} moved; fastest rank {fa['rank']}: "
            f"{fmt_time(fa['io_time'])}, {fmt_bytes(fa['bytes'])}; bytes per rank "
            f"{fmt_bytes(jb['bytes_min'])} to {fmt_bytes(jb['bytes_max'])}"
        )
        nr = jb["non_rank"]
        if nr["processes"]:
            c.print(
                f"not ranks (launcher and helpers: {', '.join(nr['commands']) or '?'}): "
                f"{nr['processes']} process(es), read {fmt_bytes(nr['bytes_read'])}, wrote "
                f"{fmt_bytes(nr['bytes_written'])}, {fmt_time(nr['io_time'])} in I/O (kept out of "
                "the per-rank numbers)"
            )
        lay = jb["layout"]
        c.print(
            f"file layout: {lay['kind']} ({lay['basis']} files: {lay['shared_files']} shared, "
            f"{fmt_bytes(lay['shared_bytes'])}; {lay['fpp_files']} per process, "
            f"{fmt_bytes(lay['fpp_bytes'])})"
        )
    if len(s.mpi_modes):
        t = _table(
            "MPI-IO: collective vs independent (MPI-level bytes)",
            "mode",
            "kind",
            "calls",
            "bytes",
            "posix calls",
            "posix bytes",
            "functions",
        )
        for r in s.mpi_modes.itertuples():
            t.add_row(
                r.mode,
                r.kind,
                fmt_int(r.calls),
                fmt_bytes(r.bytes),
                fmt_int(r.posix_calls),
                fmt_bytes(r.posix_bytes),
                r.functions,
            )
        c.print(t)
    if len(s.mpi):
        t = _table("MPI-IO calls and the POSIX calls inside them", "summary", "ranks", "time")
        for r in s.mpi.itertuples():
            t.add_row(r.summary, r.ranks, fmt_time(r.time))
        c.print(t)
    if len(s.datasets):
        heads, rows = table_rows(s.datasets)
        t = _table("Datasets: HDF5, PnetCDF (calls, bytes; what moved under them)", *heads)
        for row in rows:
            t.add_row(*row)
        c.print(t)


def _short(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _bar(v: int, vmax: int, width: int = 20) -> str:
    return "█" * round(width * v / vmax) if v else ""


def _clean(v: Any) -> Any:
    """JSON-able: numpy scalars to Python, NaN/NA to null."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if v is None or v is pd.NA:
        return None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating | float):
        f = float(v)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [_clean(r) for r in df.astype(object).to_dict(orient="records")]


def report_dict(s: Summary) -> dict[str, Any]:
    return {
        "overview": _clean(s.overview),
        "insights": [
            {
                "key": i.key,
                "level": i.level,
                "title": i.title,
                "detail": i.detail,
                "numbers": _clean(i.numbers),
            }
            for i in s.insights
        ],
        "functions": _records(s.functions),
        "files": _records(s.files.head(JSON_TOP_FILES)),
        "files_total": len(s.files),
        "ranks": _records(s.ranks),
        "job": _clean(s.job),
        "mpi": _records(s.mpi),
        "mpi_modes": _records(s.mpi_modes),
        "datasets": _records(s.datasets),
        "bandwidth": {
            "bin_ns": int(s.bandwidth["t_end"].iloc[0] - s.bandwidth["t_start"].iloc[0])
            if len(s.bandwidth)
            else 0,
            **{
                k: s.bandwidth[k].astype(int).tolist()
                for k in ("t_start", "bytes_read", "bytes_written")
            },
        },
        "processes": _records(s.processes),
        "metadata": _records(s.metadata),
        "access_sizes": {
            "buckets": BUCKETS,
            **{k: s.sizes[k].astype(int).tolist() for k in ("reads", "writes")},
        },
        "call_sites": _records(s.call_sites),
        "missed": _records(s.missed),
        "missed_sites": _records(s.missed_sites),
        "completeness": {
            "line": s.completeness.get("line"),
            "job": _clean(s.completeness.get("job", {})),
            "processes": _records(s.completeness["processes"])
            if "processes" in s.completeness
            else [],
        },
        "units": {"time": "ns", "bytes": "bytes", "share": "fraction 0-1"},
    }


def report_json(s: Summary) -> str:
    return json.dumps(report_dict(s), indent=1, ensure_ascii=False)
