"""One spec per report table: its title, its columns (header, JSON key, kind) and its rows of
raw values, built once from the Summary; the console (report.py), the HTML page (html.py) and
the JSON (report.py) render the same specs, each formatting a cell by its column's kind.

A view (console, html, json) only sets how many rows a table keeps; a spec says how many there
were (`total`), so every renderer can say what it left out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from iotrace.record import field, record

from .fmt import fmt_bytes, fmt_int, fmt_pct, fmt_time

if TYPE_CHECKING:
    from .insights import Insight
    from .summary import Summary

# kinds of cell: text (short), wide (long text: paths, sites, commands), int, bytes, time (ns),
# pct (a 0-1 share), hist (an int with a bar beside it where the renderer can draw one), id (a
# number that names: pid, rank)
KINDS = ("text", "wide", "int", "bytes", "time", "pct", "hist", "id")

# rows kept per table and view (None: all); the JSON keeps at least what the console shows
LIMITS: dict[str, dict[str, int | None]] = {
    "console": {"files": 10, "ranks": 16, "processes": 16, "completeness": 10, "directories": 10},
    "html": {"files": 50, "ranks": 64, "processes": 64, "completeness": None, "directories": 50},
    "json": {
        "files": 100,
        "ranks": None,
        "processes": None,
        "completeness": None,
        "directories": 100,
    },
}
RANK_FOLD = (8, 4)  # many ranks: the console shows the slowest 8, fastest 4, and the outliers


@record(frozen=True)
class Col:
    name: str  # the header
    key: str  # the JSON key
    kind: str = "int"


@record
class Table:
    key: str
    title: str
    columns: list[Col]
    rows: list[list[Any]] = field(default_factory=list)
    total: int = 0  # rows before any was left out
    note: str = ""  # what was left out, and how to see it

    @property
    def truncated(self) -> bool:
        return self.total > len(self.rows)


def cell(kind: str, v: Any) -> str:
    """A raw value as the console and the HTML page show it."""
    if kind in ("int", "hist"):
        return fmt_int(v)
    if kind == "bytes":
        return fmt_bytes(v) if v is not None and not pd.isna(v) else "-"
    if kind == "time":
        return fmt_time(None if v is None or pd.isna(v) else v)
    if kind == "pct":
        return fmt_pct(None if v is None or pd.isna(v) else float(v))
    if kind == "id":
        return "-" if v is None or pd.isna(v) else str(int(v))
    return "" if v is None or v is pd.NA else str(v)


def _na(v: Any) -> Any:
    return None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else v


def _make(
    key: str,
    title: str,
    cols: list[Col],
    df: pd.DataFrame,
    limit: int | None,
    src: list[str],
    more: str = "",
) -> Table:
    """A table of df's columns `src` (one per Col), its first `limit` rows."""
    shown = df if limit is None else df.head(limit)
    # column by column: itertuples takes each column out of a new frame of them (pandas 3),
    # ~0.5 ms a table of a few rows, in the command after the map
    rows = [[_na(v) for v in r] for r in zip(*(shown[c] for c in src), strict=True)]
    t = Table(key, title, cols, rows, len(df))
    if t.truncated:
        t.note = f"{len(df) - len(rows):,} more {more or 'rows'} not shown"
    return t


def _held(df: pd.DataFrame) -> list[Col]:
    """The "held" column (the time the stracer held the app inside the calls, already out of
    their time: docs/stracer.md) where the rows have any."""
    return [Col("held", "held", "time")] if "held" in df and df["held"].sum() > 0 else []


def functions(s: Summary) -> Table:
    cols = [
        Col("function", "function", "text"),
        Col("op", "op", "text"),
        Col("calls", "calls"),
        Col("errors", "errors"),
        Col("bytes", "bytes", "bytes"),
        Col("time", "time", "time"),
        Col("mean", "mean_time", "time"),
        *_held(s.functions),
    ]
    return _make("functions", "Functions", cols, s.functions, None, [c.key for c in cols])


def files(s: Summary, limit: int | None) -> Table:
    cols = [
        Col("path", "path", "wide"),
        Col("read", "bytes_read", "bytes"),
        Col("written", "bytes_written", "bytes"),
        Col("reads", "reads"),
        Col("writes", "writes"),
        Col("opens", "opens"),
        Col("meta", "meta_ops"),
        Col("I/O time", "io_time", "time"),
        Col("sequential", "seq_share", "pct"),
        Col("random", "random"),
        Col("unaligned", "unaligned"),
        Col("ranks", "rank_list", "text"),
    ]
    f = s.files.assign(rank_list=s.files["rank_list"].where(s.files["rank_list"] != "", "-"))
    what = "app files" if not s.system else "files"
    t = _make(
        "files",
        f"Top {what} (of {len(f):,}, by bytes)",
        cols,
        f,
        limit,
        [c.key for c in cols],
        "files",
    )
    return t


def directories(s: Summary, limit: int | None) -> Table:
    cols = [
        Col("directory", "directory", "wide"),
        Col("ops", "ops"),
        Col("files", "files"),
        Col("errors", "errors"),
        Col("time", "time", "time"),
        Col("functions", "functions", "wide"),
    ]
    return _make(
        "directories",
        "Metadata operations by directory",
        cols,
        s.directories,
        limit,
        [c.key for c in cols],
        "directories",
    )


def metadata(s: Summary) -> Table:
    cols = [
        Col("function", "function", "text"),
        Col("calls", "calls"),
        Col("errors", "errors"),
        Col("time", "time", "time"),
        *_held(s.metadata),
    ]
    return _make(
        "metadata", "Metadata operations by function", cols, s.metadata, None, [c.key for c in cols]
    )


RANK_COLS = [
    Col("rank", "rank", "id"),
    Col("processes", "processes"),
    Col("read", "bytes_read", "bytes"),
    Col("written", "bytes_written", "bytes"),
    Col("reads", "reads"),
    Col("writes", "writes"),
    Col("meta", "meta_ops"),
    Col("MPI read", "mpi_bytes_read", "bytes"),
    Col("MPI written", "mpi_bytes_written", "bytes"),
    Col("missed", "missed"),
    Col("I/O time", "io_time", "time"),
    Col("file I/O time", "file_io_time", "time"),
    Col("run time", "run_time", "time"),
]


def fold_ranks(s: Summary, limit: int | None) -> pd.DataFrame:
    """The ranks a view shows: all if they fit in `limit`, else the slowest and fastest by file
    I/O time and the outliers the findings name, in rank order."""
    r = s.ranks
    if limit is None or len(r) <= limit:
        return r
    by = r.sort_values(["file_io_time", "rank"], ascending=[False, True])
    keep = set(by["rank"].head(RANK_FOLD[0])) | set(by["rank"].tail(RANK_FOLD[1]))
    for i in s.insights:
        keep |= {o["rank"] for o in i.numbers.get("outliers", [])}
    return r[r["rank"].isin(keep)].sort_values("rank")


def ranks(s: Summary, limit: int | None) -> Table:
    shown = fold_ranks(s, limit)
    cols = list(RANK_COLS)
    if "collective_wait" in s.ranks and s.ranks["collective_wait"].any():
        # time inside collective MPI-IO calls waiting for a later rank (part of file I/O time)
        cols.insert(-1, Col("collective wait", "collective_wait", "time"))
    t = _make("ranks", "Ranks", cols, shown, None, [c.key for c in cols])
    t.total = len(s.ranks)
    if t.truncated:
        t.title = (
            f"Ranks ({len(shown)} of {len(s.ranks):,}: the {RANK_FOLD[0]} slowest and "
            f"{RANK_FOLD[1]} fastest by file I/O time, and the outliers)"
        )
        t.note = f"{t.total - len(shown):,} ranks folded (--ranks all shows every one)"
    return t


def processes(s: Summary, limit: int | None) -> Table:
    cols = [
        Col("pid", "pid", "id"),
        Col("rank", "rank", "id"),
        Col("host", "host", "text"),
        Col("command", "command", "wide"),
        Col("read", "bytes_read", "bytes"),
        Col("written", "bytes_written", "bytes"),
        Col("I/O time", "io_time", "time"),
        Col("run time", "run_time", "time"),
        Col("I/O share", "io_share", "pct"),
        Col("exit", "exit", "text"),
    ]
    p = s.processes.sort_values("io_time", ascending=False)
    ex = [
        f"exit {fmt_int(st)}" if e == "exit" else str(e)
        for e, st in zip(p["ended"], p["exit_status"], strict=True)
    ]
    p = p.assign(exit=ex)
    return _make(
        "processes", "Processes (by I/O time)", cols, p, limit, [c.key for c in cols], "processes"
    )


def sizes(s: Summary) -> Table:
    cols = [
        Col("bucket", "bucket", "text"),
        Col("reads", "reads", "hist"),
        Col("writes", "writes", "hist"),
    ]
    return _make(
        "sizes",
        "Access sizes (bytes per request that reached the kernel)",
        cols,
        s.sizes,
        None,
        ["bucket", "reads", "writes"],
    )


def call_sites(s: Summary) -> Table:
    cols = [
        Col("site", "site", "wide"),
        Col("functions", "functions", "text"),
        Col("calls", "calls"),
        Col("time", "time", "time"),
        Col("bytes", "bytes", "bytes"),
    ]
    return _make(
        "call_sites",
        "Call sites with the most I/O time",
        cols,
        s.call_sites,
        None,
        [c.key for c in cols],
    )


def missed_sites(s: Summary) -> Table:
    cols = [
        Col("site", "site", "wide"),
        Col("functions", "functions", "text"),
        Col("count", "count"),
        Col("bytes", "bytes", "bytes"),
        Col("ranks", "ranks", "text"),
        Col("pids", "pids", "text"),
        Col("paths", "paths", "wide"),
    ]
    ms = s.missed_sites
    if len(ms):
        ms = ms.assign(ranks=ms["ranks"].where(ms["ranks"] != "", "-"))
    return _make(
        "missed_sites",
        "Missed I/O by call site (syscalls the shim did not see, from the stracer)",
        cols,
        ms,
        None,
        [c.key for c in cols],
    )


def mpi_modes(s: Summary) -> Table:
    cols = [
        Col("mode", "mode", "text"),
        Col("kind", "kind", "text"),
        Col("calls", "calls"),
        Col("bytes (MPI)", "bytes", "bytes"),
        Col("POSIX calls", "posix_calls"),
        Col("POSIX bytes", "posix_bytes", "bytes"),
        Col("functions", "functions", "wide"),
    ]
    return _make(
        "mpi_modes",
        "MPI-IO: collective vs independent (MPI-level bytes)",
        cols,
        s.mpi_modes,
        None,
        [c.key for c in cols],
    )


def mpi(s: Summary) -> Table:
    cols = [
        Col("function", "function", "text"),
        Col("mode", "mode", "text"),
        Col("calls", "calls"),
        Col("ranks", "ranks", "text"),
        Col("bytes (MPI)", "bytes", "bytes"),
        Col("time", "time", "time"),
        *_held(s.mpi),
        Col("POSIX inside", "posix", "wide"),
    ]
    m = s.mpi
    if len(m):
        m = m.assign(posix=m["posix"].where(m["posix"] != "", "-"))
    return _make(
        "mpi", "MPI-IO calls and the POSIX calls inside them", cols, m, None, [c.key for c in cols]
    )


def datasets(s: Summary) -> Table:
    """HDF5 and PnetCDF datasets (analyzer/datasets.py): calls, bytes, what moved under them
    (raw data; HDF5's metadata), an HDF5 dataset's dimensions and chunk dimensions."""
    cols = [
        Col("dataset", "dataset", "text"),
        Col("file", "file", "text"),
        Col("library", "library", "text"),
        Col("ranks", "ranks", "text"),
        Col("writes", "writes"),
        Col("written", "bytes_written", "bytes"),
        Col("reads", "reads"),
        Col("read", "bytes_read", "bytes"),
        Col("time", "time", "time"),
        Col("collective", "collective_share", "pct"),
        Col("MPI-IO calls under", "mpi_calls"),
        Col("MPI-IO bytes under", "mpi_bytes", "bytes"),
        Col("POSIX calls under", "posix_calls"),
        Col("POSIX bytes under", "posix_bytes", "bytes"),
        Col("metadata under", "metadata_bytes", "bytes"),
        Col("chunk", "chunk", "text"),
    ]
    return _make(
        "datasets",
        "Datasets: HDF5, PnetCDF (calls, bytes; what moved under them)",
        cols,
        s.datasets,
        None,
        [c.key for c in cols],
    )


def completeness(s: Summary, limit: int | None) -> Table:
    """The processes whose I/O the trace does not explain to the byte or call, with why."""
    cols = [
        Col("pid", "pid", "id"),
        Col("command", "command", "wide"),
        Col("bytes", "bytes", "pct"),
        Col("calls", "calls", "pct"),
        Col("why", "cause", "wide"),
    ]
    ct = s.completeness.get("processes")
    if ct is None or ct.empty:
        ct = pd.DataFrame({c: [] for c in ("pid", "command", "bytes_pct", "calls_pct", "cause")})
    short = ct[ct["cause"] != ""]
    short = short.assign(bytes=short["bytes_pct"] / 100, calls=short["calls_pct"] / 100)
    return _make(
        "completeness",
        "Completeness: processes the trace does not explain to the byte",
        cols,
        short,
        limit,
        ["pid", "command", "bytes", "calls", "cause"],
        "processes",
    )


def insights(s: Summary) -> Table:
    cols = [
        Col("level", "level", "text"),
        Col("finding", "title", "wide"),
        Col("subject", "subject", "wide"),
        Col("calls", "calls"),
        Col("bytes", "bytes", "bytes"),
        Col("time", "time", "time"),
        Col("share of file I/O time", "share", "pct"),
    ]
    df = pd.DataFrame(
        [
            [
                i.level,
                i.title,
                i.subject,
                i.evidence.get("calls"),
                i.evidence.get("bytes"),
                i.evidence.get("time"),
                i.evidence.get("share"),
            ]
            for i in s.insights
        ],
        columns=[c.key for c in cols],
    )
    return _make(
        "insights", "Insights (by the time at stake)", cols, df, None, [c.key for c in cols]
    )


# The order every reporter shows the tables in: these, the job's lines, then AFTER_JOB.
BEFORE_JOB = ("functions", "files", "directories")
AFTER_JOB = (
    "mpi_modes",
    "mpi",
    "datasets",
    "ranks",
    "processes",
    "metadata",
    "sizes",
    "call_sites",
)


def tables(s: Summary, view: str, all_ranks: bool = False) -> list[Table]:
    """Every table of the report, in the report's order, for a view (console, html, json);
    `all_ranks`: no rank left out."""
    lim = dict(LIMITS[view])
    if all_ranks:
        lim["ranks"] = lim["processes"] = None
    out = [
        completeness(s, lim["completeness"]),
        insights(s),
        functions(s),
        files(s, lim["files"]),
        directories(s, lim["directories"]),
    ]
    if len(s.mpi_modes):
        out.append(mpi_modes(s))
    if len(s.mpi):
        out.append(mpi(s))
    if len(s.datasets):
        out.append(datasets(s))
    if len(s.ranks):
        out.append(ranks(s, lim["ranks"]))
    out += [processes(s, lim["processes"]), metadata(s), sizes(s), call_sites(s), missed_sites(s)]
    return out


def as_json(t: Table, rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A table in the JSON: its columns, its rows keyed by column (`rows`: made by the
    caller), and what was left out."""
    return {
        "title": t.title,
        "columns": [{"name": c.name, "key": c.key, "kind": c.kind} for c in t.columns],
        "rows": [{c.key: v for c, v in zip(t.columns, r, strict=True)} for r in t.rows]
        if rows is None
        else rows,
        "total": t.total,
        "shown": len(t.rows),
        "truncated": t.truncated,
        "note": t.note,
    }


def evidence_line(i: Insight) -> str:
    """subject: ...; the finding's calls and bytes (all its subjects', not the first's alone),
    the time at stake (share of the file I/O time)."""
    e = i.evidence
    parts = []
    if e.get("calls"):
        parts.append(f"{e['calls']:,} call{'' if e['calls'] == 1 else 's'}")
    if e.get("bytes"):
        parts.append(fmt_bytes(e["bytes"]))
    if e.get("time"):
        share = e.get("share")
        of = "" if share is None else f" ({fmt_pct(share)} of the file I/O time)"
        parts.append(f"{fmt_time(e['time'])} at stake{of}")
    subject = f"subject: {i.subject}" if i.subject else ""
    return "; ".join(x for x in [subject, "in all " + ", ".join(parts) if parts else ""] if x)


def system_line(s: Summary) -> str:
    """What the system and runtime files cost, and the flag that shows them."""
    si = s.overview["system_io"]
    if not si["calls"]:
        return ""
    shown = (
        "included below"
        if s.system
        else "kept out of the tables and findings (--system shows them)"
    )
    return (
        f"system and runtime files (/proc, /sys, /dev, /usr, /etc, the interpreter's library, "
        f"the MPI runtime's): {si['files']:,} files, {si['calls']:,} calls, "
        f"{fmt_bytes(si['bytes'])}, {fmt_time(si['time'])} in them; {shown}"
    )


def job_lines(s: Summary) -> list[str]:
    """The job's view in words: ranks, the launcher, the file layout, aggregators."""
    jb = s.job
    if not jb.get("ranks"):
        return []
    sl, fa = jb["slowest"], jb["fastest"]
    by = jb.get("by", "io_time")
    what = {"file_io_time": "file I/O", "net_file_io_time": "file I/O (waits in collective "
            "calls for a later rank apart)"}.get(by, "I/O")  # fmt: skip
    out = [
        f"Job: {jb['ranks']} ranks; slowest rank {sl['rank']}: {fmt_time(sl[by])} in {what}, "
        f"{fmt_bytes(sl['bytes'])} moved; fastest rank {fa['rank']}: "
        f"{fmt_time(fa[by])}, {fmt_bytes(fa['bytes'])}; bytes per rank "
        f"{fmt_bytes(jb['bytes_min'])} to {fmt_bytes(jb['bytes_max'])}"
    ]
    nr = jb["non_rank"]
    if nr["processes"]:
        out.append(
            f"not ranks (launcher and helpers: {', '.join(nr['commands']) or '?'}): "
            f"{nr['processes']} process(es), read {fmt_bytes(nr['bytes_read'])}, wrote "
            f"{fmt_bytes(nr['bytes_written'])}, {fmt_time(nr['io_time'])} in I/O (kept out of "
            "the per-rank numbers)"
        )
    lay = jb["layout"]
    out.append(
        f"file layout: {lay['kind']} ({lay['basis']} files: {lay['shared_files']} shared, "
        f"{fmt_bytes(lay['shared_bytes'])} {lay['basis']}; {lay['fpp_files']} per process, "
        f"{fmt_bytes(lay['fpp_bytes'])} {lay['basis']})"
    )
    aggs = jb.get("mpi", {}).get("aggregators")
    if aggs:
        out.append(
            f"collective-buffering aggregators: rank(s) {', '.join(map(str, aggs))} (their POSIX "
            "bytes inside collective calls are the other ranks' data)"
        )
    return out
