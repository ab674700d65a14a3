"""`iotrace report`: the summary as rich console tables, or as JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from iotrace.text import escape

from .access import BUCKETS
from .datasets import overview_text
from .fmt import fmt_bytes, fmt_pct, fmt_time
from .summary import Summary, no_missed_text
from .tables import (
    AFTER_JOB,
    BEFORE_JOB,
    Col,
    as_json,
    cell,
    evidence_line,
    job_lines,
    system_line,
    tables,
)
from .tables import Table as TableSpec

JSON_TOP_FILES = 100
LEVEL_STYLE = {"high": "bold red", "warn": "yellow", "info": "cyan"}


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


def _table(title: str, cols: list[Col]) -> Table:
    t = _Table(title=title, title_justify="left", title_style="bold", header_style="bold")
    for c in cols:
        if c.kind == "wide":
            t.add_column(c.name, justify="left", overflow="fold", ratio=1, min_width=20)
        else:
            left = c.kind in ("text", "hist")
            t.add_column(c.name, justify="left" if left else "right", no_wrap=True)
    return t


def render_table(c: _Console, t: TableSpec) -> None:
    """One table spec on the console (nothing for an empty one), and what it left out."""
    if not t.rows:
        return
    tab = _table(t.title, t.columns)
    top = {
        i: max([int(r[i] or 0) for r in t.rows] + [1])
        for i, col in enumerate(t.columns)
        if col.kind == "hist"
    }
    for r in t.rows:
        cells = []
        for i, (col, v) in enumerate(zip(t.columns, r, strict=True)):
            text = cell(col.kind, v)
            if col.kind == "hist":
                text = f"{text:>9} {_bar(int(v or 0), top[i])}"
            cells.append(text)
        tab.add_row(*cells)
    c.print(tab)
    if t.note:
        c.print(f"... {t.note}")


def _print_insights(c: _Console, s: Summary) -> None:
    if not s.insights:
        c.print("Insights: nothing to flag.")
        return
    t = _Table(
        title="Insights (by the time at stake)",
        title_justify="left",
        title_style="bold",
        header_style="bold",
    )
    t.add_column("level", no_wrap=True)
    t.add_column("finding", overflow="fold", ratio=1)
    for i in s.insights:
        t.add_row(
            Text(i.level, style=LEVEL_STYLE.get(i.level, "")),
            _text(i.title, style="bold")
            + Text("\n")
            + Text(evidence_line(i), style="dim")
            + Text("\n")
            + _text(i.detail),
        )
    c.print(t)


def print_report(s: Summary, console: Console | None = None, all_ranks: bool = False) -> None:
    c = _Console(console or Console())
    ts = {t.key: t for t in tables(s, "console", all_ranks)}
    ov = s.overview
    c.print(_text(f"iotrace report: {ov['trace']}", style="bold"))
    if ov["command"]:
        c.print(f"command: {ov['command']}")
    c.print(
        f"run time {fmt_time(ov['run_time'])}; {ov['processes']} process(es) "
        f"({ov['images']} program image(s): exec starts a new one), {ov['threads']} thread(s), "
        f"{ov['ranks']} rank(s) on {ov['hosts']} host(s); {ov['events']:,} events"
    )
    if s.completeness:
        c.print(Text(s.completeness["line"]))
        render_table(c, ts["completeness"])
    if ov["events"] == 0:
        attached = (s.completeness or {}).get("job", {}).get("attached")
        c.print(
            Text(
                f"No event passes the filters ({ov['selection']})."
                if ov.get("selection")
                else "The trace holds no events: no I/O syscall while attached."
                if attached
                else "The trace holds no events: the command made no traced call (a static "
                "binary, or no I/O through libc?).",
                style="yellow",
            )
        )
    c.print(
        f"I/O time {fmt_time(ov['io_time'])} = {fmt_pct(ov['io_share'])} of the processes' time "
        f"({fmt_time(ov['process_time'])}), {fmt_time(ov['file_io_time'])} of it on files; read "
        f"{fmt_bytes(ov['bytes_read'])} in {ov['reads']:,} calls "
        f"({fmt_bytes(ov['read_bandwidth'])}/s in the calls), wrote "
        f"{fmt_bytes(ov['bytes_written'])} in {ov['writes']:,} calls "
        f"({fmt_bytes(ov['write_bandwidth'])}/s); {ov['metadata_ops']:,} metadata ops; "
        f"{ov['errors']:,} failed call{'' if ov['errors'] == 1 else 's'}; {ov['files']:,} "
        f"file{'' if ov['files'] == 1 else 's'}"
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
    if line := system_line(s):
        c.print(line)
    if m := ov.get("mapped_shared"):
        c.print(
            f"memory-mapped: {m['files']:,} file(s) mapped shared ({m['mappings']:,} mappings, "
            f"{fmt_bytes(m['bytes'])}; {m['msyncs']:,} msync calls over "
            f"{fmt_bytes(m['msync_bytes'])}): what the app stored through them reached the "
            "files with no write call, so it is not in the bytes written above"
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
    _print_insights(c, s)
    for key in BEFORE_JOB:
        render_table(c, ts[key])
    for line in job_lines(s):
        c.print(line)
    for key in (*AFTER_JOB, "missed_sites"):
        if key in ts:
            render_table(c, ts[key])
    if not len(s.missed_sites):
        c.print(f"Missed I/O: {no_missed_text(s)}.")


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


ROWS_BLOCK = 4096  # rows of a table made into the JSON's dicts at a time (_Rows)


class _Rows(list):  # type: ignore[type-arg]
    """A table's rows for json_blocks, made ROWS_BLOCK at a time as the encoder walks them: the
    encoder (with an indent: its Python code) asks a list whether it is empty and iterates it,
    so the text is the same, and no more than a block of dicts is alive (the 20,002-process
    trace's processes and completeness rows, all at once: ~61 MB of the command's peak)."""

    def __init__(self, n: int, make: Callable[[int, int], list[Any]]) -> None:
        super().__init__()
        self.n, self.make = n, make

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[Any]:
        for i in range(0, self.n, ROWS_BLOCK):
            yield from self.make(i, min(i + ROWS_BLOCK, self.n))


def _rows(df: pd.DataFrame, lazy: bool) -> list[dict[str, Any]]:
    """_records, or with `lazy` a _Rows of them."""
    if not lazy or len(df) <= ROWS_BLOCK:
        return _records(df)
    return _Rows(len(df), lambda i, j: _records(df.iloc[i:j]))


def _table_json(t: TableSpec, lazy: bool) -> dict[str, Any]:
    """as_json(t), cleaned (_clean); with `lazy` its rows a _Rows."""
    if not lazy or len(t.rows) <= ROWS_BLOCK:
        return _clean(as_json(t))
    keys = [c.key for c in t.columns]
    rows = _Rows(
        len(t.rows),
        lambda i, j: [_clean(dict(zip(keys, r, strict=True))) for r in t.rows[i:j]],
    )
    return {k: v if k == "rows" else _clean(v) for k, v in as_json(t, rows).items()}


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as JSON-able dicts (_clean's values), made column by column: numpy's columns
    by tolist (a row's dict, then _clean on each of its values, cost ~0.4 ms a process of the
    20,002-process trace's three tables of processes)."""
    cols = []
    for name in df.columns:
        col = df[name]
        kind = col.dtype.kind if isinstance(col.dtype, np.dtype) else "O"
        if kind in "iub":
            cols.append(col.to_numpy().tolist())
        elif kind == "f":
            v = col.to_numpy()
            cols.append(np.where(np.isfinite(v), v, None).tolist())
        else:
            cols.append([_clean(x) for x in col.astype(object).tolist()])
    if not cols:
        return [{} for _ in range(len(df))]
    keys = [str(c) for c in df.columns]
    return [dict(zip(keys, row, strict=True)) for row in zip(*cols, strict=True)]


def report_dict(s: Summary, lazy: bool = False) -> dict[str, Any]:
    """The report as JSON-able values; `lazy`: the tables of a row per process or rank made
    as json_blocks encodes them (_Rows), for json_blocks only."""
    return {
        "overview": _clean(s.overview),
        "insights": [
            {
                "key": i.key,
                "level": i.level,
                "title": i.title,
                "detail": i.detail,
                "subject": i.subject,
                "evidence": _clean(i.evidence),
                "numbers": _clean(i.numbers),
            }
            for i in s.insights
        ],
        "functions": _records(s.functions),
        "files": _records(s.files.head(JSON_TOP_FILES)),
        "files_total": len(s.files),
        "ranks": _rows(s.ranks, lazy),
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
        "processes": _rows(s.processes, lazy),
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
            "processes": _rows(s.completeness["processes"], lazy)
            if "processes" in s.completeness
            else [],
        },
        "directories": _records(s.directories.head(JSON_TOP_FILES)),
        "directories_total": len(s.directories),
        "system": s.system,
        # every table as the console and the HTML show it (raw values), and what each left out
        "tables": {t.key: _table_json(t, lazy) for t in tables(s, "json")},
        "job_lines": job_lines(s),
        "system_line": system_line(s),
        "units": {"time": "ns", "bytes": "bytes", "share": "fraction 0-1"},
    }


JSON_BLOCK = 1 << 16  # characters of the JSON handed on at a time (json_blocks)


def json_blocks(s: Summary) -> Iterator[str]:
    """The report's JSON (json.dumps(report_dict(s), indent=1, ensure_ascii=False), the same
    text) in blocks of about JSON_BLOCK characters, encoded as they are handed on: json.dumps
    joins the encoder's pieces all at once, ~360 per process (20,002 processes: 7.2 M pieces,
    324 MB above the report's own memory)."""
    pieces: list[str] = []
    size = 0
    whole = report_dict(s, lazy=True)
    for piece in json.JSONEncoder(indent=1, ensure_ascii=False).iterencode(whole):
        pieces.append(piece)
        size += len(piece)
        if size >= JSON_BLOCK:
            yield "".join(pieces)
            pieces.clear()
            size = 0
    yield "".join(pieces)


def report_json(s: Summary) -> str:
    return "".join(json_blocks(s))


def write_json(s: Summary, out: TextIO) -> None:
    """The report's JSON and a newline written to `out` block by block (json_blocks)."""
    for block in json_blocks(s):
        out.write(block)
    out.write("\n")
