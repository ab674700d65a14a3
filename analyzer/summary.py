"""From a loaded trace to the numbers of the report: overview, per function / file / process /
rank, metadata, access sizes, call sites, missed I/O, the job's view (job.py: ranks, file
layout, MPI-IO, bandwidth), and the insights (insights.py).

Layers: `bytes_read`/`bytes_written` everywhere are POSIX-level (POSIX and stdio calls and the
stracer's syscalls); MPI-IO bytes are the `mpi_*` numbers, never added to them."""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from iotrace.calls import STDIO_UNDER, Op
from iotrace.record import field, record

from . import job, schema
from .access import (
    OP_CODE,
    READ,
    WRITE,
    Arrays,
    arrays,
    classify,
    files_table,
    held,
    is_system_path,
    op_in,
    size_histogram,
)
from .datasets import layer as datasets_layer
from .group_scans import sums, union_length
from .missed_groups import missed_sites

if TYPE_CHECKING:
    from .insights import Counts, Insight
    from .over_time import OverTime
    from .trace import Trace

METADATA_OPS = (Op.OPEN.value, Op.CLOSE.value, Op.META.value)
TOP_SITES = 10


@record
class Summary:
    overview: dict[str, Any]
    functions: pd.DataFrame
    files: pd.DataFrame
    processes: pd.DataFrame
    ranks: pd.DataFrame
    metadata: pd.DataFrame
    sizes: pd.DataFrame
    call_sites: pd.DataFrame
    missed: pd.DataFrame
    missed_sites: pd.DataFrame = field(default_factory=pd.DataFrame)
    job: dict[str, Any] = field(default_factory=dict)
    mpi: pd.DataFrame = field(default_factory=pd.DataFrame)
    mpi_modes: pd.DataFrame = field(default_factory=pd.DataFrame)
    datasets: pd.DataFrame = field(default_factory=pd.DataFrame)  # HDF5, PnetCDF (datasets.py)
    bandwidth: pd.DataFrame = field(default_factory=pd.DataFrame)
    # metadata operations by directory (directories())
    directories: pd.DataFrame = field(default_factory=pd.DataFrame)
    # the paths of the files table that are the app's (not system files)
    app_paths: set[str] = field(default_factory=set)
    # system and runtime files (access.is_system_path): kept out of the tables and findings
    # unless `system`; "system_io" in the overview says what they cost
    system: bool = False
    # the job over time for the HTML page's plots (when asked: summarise's `plots`)
    over_time: OverTime | None = None
    insights: list[Insight] = field(default_factory=list)
    # what the trace explains of the kernel's I/O counters: "line", "job" (iotrace.kio.Job's
    # fields), "processes" (analyzer/completeness.py's table)
    completeness: dict[str, Any] = field(default_factory=dict)


def _threads(ev: pd.DataFrame) -> int:
    """Distinct threads: (host, tid), so that a thread keeps its count across an exec."""
    if not len(ev):
        return 0
    host = ev["host"].cat.codes.to_numpy().astype(np.int64)
    return len(pd.unique(host << 32 | ev["tid"].to_numpy().astype(np.int64)))


def io_union(a: Arrays, nproc: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Per process: ns during which at least one of its threads was inside an I/O call (of
    `mask`)."""
    m = a.io if mask is None else a.io & mask
    return union_length(np.where(m, a.proc, -1), a.t_start, a.t_end, nproc)  # no copies


def file_mask(a: Arrays, system: bool) -> np.ndarray:
    """Events on files: the app's data files, and the system files if `system` (not pipes,
    sockets: waiting on them is not file I/O)."""
    return a.datafile | (a.system & (a.path >= 0)) if system else a.datafile


def file_time_mask(a: Arrays, system: bool) -> np.ndarray:
    """Events whose time is file I/O time (the findings' basis, `file_io_time`): file_mask's,
    less the MPI-IO and HDF5/PnetCDF opens and closes.  Their time is the layer's set-up among
    the ranks (MPICH's MPI_File_open: ~250 ms of communication around 0.1 ms of POSIX calls);
    the file-system calls inside them are events of their own and count."""
    setup = (a.mpi | a.datalib) & op_in(a.op, (OP_CODE[Op.OPEN.value], OP_CODE[Op.CLOSE.value]))
    return file_mask(a, system) & ~setup


def _functions(a: Arrays) -> pd.DataFrame:
    k = len(a.functions)
    calls, nbytes, time = sums(a.fn, k, a.bytes, a.dur)  # bytes: 0 where none (Arrays)
    errors = np.bincount(a.fn[a.errno != 0], minlength=k)
    # the stracer's holds inside the calls, already out of `time` (shown where there are any)
    held = _held_by(a.fn, a.stopped, k)
    df = pd.DataFrame(
        {
            "function": a.functions,
            "op": [schema.op_of(f) for f in a.functions],
            "calls": calls.astype(np.int64),
            "errors": errors.astype(np.int64),
            "bytes": nbytes.astype(np.int64),
            "time": time.astype(np.int64),
            "held": held.astype(np.int64),
        }
    )
    df = df[df["calls"] > 0].copy()
    df["mean_time"] = (df["time"] // df["calls"]).astype(np.int64)
    return df.sort_values(["time", "calls"], ascending=False).reset_index(drop=True)


def _held_by(fn: np.ndarray, stopped: np.ndarray | None, k: int) -> np.ndarray:
    """Per function the ns the stracer held its calls: a bincount over the held ones only
    (few; the same sums: the others add 0)."""
    held = np.flatnonzero(stopped) if stopped is not None else ()
    if not len(held):
        return np.zeros(k, dtype=np.int64)
    return np.bincount(fn[held], weights=stopped[held], minlength=k)


def _per_proc(
    a: Arrays, procs: pd.DataFrame, union: np.ndarray, file_union: np.ndarray
) -> pd.DataFrame:
    """A row per process of `procs` (rows of the processes table, in its order: a part's own,
    not the whole trace's), of its events in `a`; `union`, `file_union` indexed by proc."""
    n = len(procs)
    ids = procs["proc"].to_numpy(np.int64)
    row = _rows_of(a.proc, ids)  # each event's row of procs (-1: a process not in procs)
    # per event one class of these (they exclude each other; 0: none), per (process, class)
    # one bin: two bincounts over the columns, not seven over copies of them
    rd, wr = a.op == READ, a.op == WRITE
    cls = (a.data & rd).view(np.int8) + (a.data & wr) * np.int8(2)
    cls += (a.mpi_data & rd) * np.int8(3) + (a.mpi_data & wr) * np.int8(4)
    cls += op_in(a.op, [OP_CODE[o] for o in METADATA_OPS]) * np.int8(5)
    key = row.astype(np.int64) * 6 + cls
    del cls
    if row is not a.proc:
        key[row < 0] = -1
    calls, moved = (x.reshape(n, 6) for x in sums(key, n * 6, a.bytes))
    del key
    keep = ["proc", "host", "rank", "pid", "command", "start", "end", "ended", "exit_status",
            "events"]  # fmt: skip
    run_time = (procs["end"] - procs["start"]).clip(lower=0)
    union = union[ids]
    # one frame made of every column (a column set at a time: ~0.3 ms each)
    return pd.DataFrame(
        {
            **{c: procs[c] for c in keep},
            "bytes_read": moved[:, 1],
            "bytes_written": moved[:, 2],
            "reads": calls[:, 1].astype(np.int64),
            "writes": calls[:, 2].astype(np.int64),
            "meta_ops": calls[:, 5].astype(np.int64),
            "mpi_bytes_read": moved[:, 3],
            "mpi_bytes_written": moved[:, 4],
            "missed": np.bincount(row[a.missed & (row >= 0)], minlength=n).astype(np.int64),
            "io_time": union,
            "file_io_time": file_union[ids],
            "run_time": run_time,
            "io_share": np.where(run_time > 0, union / run_time.clip(lower=1), np.nan),
        },
        index=procs.index,
    )


def _rows_of(proc: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Per event its row among the processes `ids` (sorted), -1 for another process: `proc`
    itself when `ids` are every process 0..n-1 (a whole trace's table)."""
    n = len(ids)
    if not n:
        return np.full(len(proc), -1, dtype=np.int64)
    if ids[0] == 0 and ids[-1] == n - 1 and (not len(proc) or proc.max() < n):
        return proc
    at = np.minimum(np.searchsorted(ids, proc), n - 1)
    return np.where(ids[at] == proc, at, -1)


def _per_rank(pp: pd.DataFrame) -> pd.DataFrame:
    """One row per rank (the processes with no rank, e.g. the launcher, left out)."""
    r = pp[pp["rank"].notna()]
    cols = [
        "rank",
        "processes",
        "bytes_read",
        "bytes_written",
        "reads",
        "writes",
        "meta_ops",
        "mpi_bytes_read",
        "mpi_bytes_written",
        "missed",
        "io_time",
        "file_io_time",
        "run_time",
    ]
    if r.empty:
        return pd.DataFrame({c: pd.Series([], dtype="int64") for c in cols})
    g = r.groupby("rank", observed=True)
    df = g.agg(
        processes=("proc", "count"),
        bytes_read=("bytes_read", "sum"),
        bytes_written=("bytes_written", "sum"),
        reads=("reads", "sum"),
        writes=("writes", "sum"),
        meta_ops=("meta_ops", "sum"),
        mpi_bytes_read=("mpi_bytes_read", "sum"),
        mpi_bytes_written=("mpi_bytes_written", "sum"),
        missed=("missed", "sum"),
        io_time=("io_time", "sum"),
        file_io_time=("file_io_time", "sum"),
        start=("start", "min"),
        end=("end", "max"),
    ).reset_index()
    df["run_time"] = df["end"] - df["start"]
    return df[cols].astype({"rank": "int64"})


def metadata_mask(a: Arrays) -> np.ndarray:
    """Metadata operations, at the POSIX level (MPI_File_open's own opens are inside it)."""
    return op_in(a.op, [OP_CODE[o] for o in METADATA_OPS]) & ~a.mpi


def _metadata(a: Arrays) -> pd.DataFrame:
    m = metadata_mask(a)
    k = len(a.functions)
    calls, time = sums(np.where(m, a.fn, -1), k, a.dur)
    errors = np.bincount(a.fn[m & (a.errno != 0)], minlength=k)
    held = _held_by(a.fn[m], a.stopped[m] if a.stopped is not None else None, k)
    df = pd.DataFrame(
        {
            "function": a.functions,
            "calls": calls.astype(np.int64),
            "errors": errors.astype(np.int64),
            "time": time.astype(np.int64),
            "held": held.astype(np.int64),
        }
    )
    return df[df["calls"] > 0].sort_values("calls", ascending=False).reset_index(drop=True)


DIRECTORY_COLUMNS = ["directory", "ops", "files", "errors", "time", "functions", "by_function"]


def directories(meta: pd.DataFrame) -> pd.DataFrame:
    """Metadata operations (insights.Counts.meta: per path and function) on absolute paths, by
    the directory that holds the path: ops, distinct files, failures, time, the functions."""
    m = meta[meta["path"].str.startswith("/")] if len(meta) else meta
    if m.empty:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in DIRECTORY_COLUMNS})
    m = m.assign(directory=[posixpath.dirname(p) for p in m["path"]])
    rows = []
    for d, g in m.groupby("directory", sort=True):
        by = g.groupby("function")["calls"].sum()
        by = by[by > 0]
        order = sorted(by.index, key=lambda f: (-int(by[f]), f))
        rows.append(
            {
                "directory": str(d),
                "ops": int(g["calls"].sum()),
                "files": int(g["path"].nunique()),
                "errors": int(g["errors"].sum()),
                "time": int(g["time"].sum()),
                "functions": ", ".join(f"{f} {int(by[f]):,}" for f in order[:4]),
                "by_function": {str(f): int(by[f]) for f in order},
            }
        )
    out = pd.DataFrame(rows, columns=DIRECTORY_COLUMNS)
    return out.sort_values(["time", "ops"], ascending=False, kind="stable").reset_index(drop=True)


def from_counts(trace: Trace, s: Summary, cnt: Counts) -> None:
    """What the summary takes from the events' Counts (the whole trace's, or its parts' added):
    the directories table, what the system files cost, the MPI-IO aggregators, the findings."""
    from .insights import aggregators, collective_waits, insights_of

    s.directories = directories(cnt.meta)
    # each rank's wait inside collective MPI-IO calls for a later rank: not its I/O, so not
    # what makes it the slowest
    waits = collective_waits(cnt.collective, setup=False)[0]
    s.ranks["collective_wait"] = [waits.get(int(r), 0) for r in s.ranks["rank"]]
    s.ranks["collective_wait"] = s.ranks["collective_wait"].astype(np.int64)
    if len(s.ranks) and s.job.get("ranks"):
        s.job.update(job.rank_extremes(s.ranks))
    calls, nbytes, time = cnt.system
    io_time = int(s.overview["io_time"])
    s.overview["system_io"] = {
        "calls": calls,
        "bytes": nbytes,
        "time": time,
        "share": min(time / io_time, 1.0) if io_time > 0 else 0.0,
        "files": len(cnt.system_paths),
    }
    maps, mbytes, syncs, sbytes = cnt.mapped
    if maps:  # stores through them are no write calls: told, never silently left out
        s.overview["mapped_shared"] = {"mappings": maps, "bytes": mbytes, "files":
                                       len(cnt.mapped_paths), "msyncs": syncs,
                                       "msync_bytes": sbytes}  # fmt: skip
    if "mpi" in s.job:
        s.job["mpi"]["aggregators"] = aggregators(cnt.ranks)
    s.insights = insights_of(trace, s, cnt)


SITE_COLUMNS = ["site", "calls", "bytes", "time", "functions", "stacks"]


def site_stats(
    trace: Trace, a: Arrays, keep_from: int | None = None, keep: np.ndarray | None = None
) -> pd.DataFrame:
    """Per call stack that may be a top site (most bytes or most time; and every stack id from
    `keep_from` on) of the events in `keep`: stack, label, calls, bytes, time, functions (a
    set).  Mergeable: a stack is one process's (a stracer site's may be several processes':
    sum them)."""
    cols = ["stack", "label", "calls", "bytes", "time", "functions"]
    # the app's calls: stdio's refills and flushes under them share their stacks and bytes
    under = np.array([f in STDIO_UNDER for f in a.functions], dtype=bool)
    m = (a.stack >= 0) & a.io & ~under[a.fn]
    if keep is not None:
        m &= keep
    if not m.any():
        return pd.DataFrame({c: pd.Series([], dtype="object") for c in cols})
    from .symbols import site_labels, symbolise

    st = np.where(m, a.stack, -1)  # the events out of `m`: -1, no copies of the columns
    k = int(st.max()) + 1
    calls, nbytes, time = sums(st, k, a.bytes, a.dur)  # bytes: 0 where none (Arrays)
    used = np.flatnonzero(calls)
    top = _top_sites(used, nbytes[used], time[used])
    if keep_from is not None:
        top |= set(used[used >= keep_from].tolist())
    labels = site_labels(symbolise(trace, top))
    ids = sorted(top)
    # the functions seen with each of them: (its row in ids, function) pairs, by a bincount
    # where they are few (a hash table: ~10 ns an event)
    nf = len(a.functions)
    row = np.full(k + 1, -1, dtype=np.int64)  # and st's -1: row -1
    row[ids] = np.arange(len(ids))
    r = row[st]
    if len(ids) * nf <= 4 * a.n + 4096:
        key = np.where(r >= 0, r * nf + a.fn, -1)
        pairs = np.flatnonzero(sums(key, len(ids) * nf)[0])
    else:
        seen = r >= 0
        pairs = pd.unique(r[seen] * nf + a.fn[seen])
    fn_of: dict[int, set[str]] = {}
    for pr in pairs.tolist():
        fn_of.setdefault(ids[pr // nf], set()).add(a.functions[pr % nf])
    return pd.DataFrame(
        {
            "stack": ids,
            "label": [labels.get(sid, f"stack {sid} (no frames)") for sid in ids],
            "calls": [int(calls[sid]) for sid in ids],
            "bytes": [int(nbytes[sid]) for sid in ids],
            "time": [int(time[sid]) for sid in ids],
            "functions": [fn_of.get(sid, set()) for sid in ids],
        },
        columns=cols,
    )


def _top_sites(ids: np.ndarray, nbytes: np.ndarray, time: np.ndarray) -> set[int]:
    """The stacks that matter (of `ids`, ascending): most bytes, most time."""
    top = set(ids[np.argsort(-nbytes, kind="stable")][: 5 * TOP_SITES].tolist())
    return top | set(ids[np.argsort(-time, kind="stable")][: 5 * TOP_SITES].tolist())


def call_sites_table(stats: pd.DataFrame) -> pd.DataFrame:
    """The top call sites from site_stats (one stack per row, ascending)."""
    if stats.empty:
        return pd.DataFrame({c: pd.Series([], dtype="object") for c in SITE_COLUMNS})
    ids = stats["stack"].to_numpy(dtype=np.int64)
    top = _top_sites(ids, stats["bytes"].to_numpy(), stats["time"].to_numpy())
    rows: dict[str, dict[str, Any]] = {}
    for r in stats[stats["stack"].isin(top)].itertuples():
        row = rows.setdefault(
            r.label,
            {"site": r.label, "calls": 0, "bytes": 0, "time": 0, "functions": set(), "stacks": 0},
        )
        row["calls"] += int(r.calls)
        row["bytes"] += int(r.bytes)
        row["time"] += int(r.time)
        row["functions"] |= r.functions
        row["stacks"] += 1
    df = pd.DataFrame(list(rows.values()), columns=SITE_COLUMNS)
    df["functions"] = df["functions"].map(lambda s: ", ".join(sorted(s)))
    df = df.sort_values(["time", "bytes"], ascending=False).head(TOP_SITES)
    return df.reset_index(drop=True)


def summarise(trace: Trace, system: bool = False, plots: bool = False) -> Summary:
    """The report's numbers.  `system`: system and runtime files in the tables and findings too
    (by default they are kept apart: overview["system_io"] says what they cost); `plots`: the
    job over time too (the HTML page's heatmap and timeline)."""
    from .insights import Counts

    ev = trace.events
    a = arrays(ev)
    # the time the stracer held a thread is the tracer's: out of the events' times
    a.stopped = held(ev, trace.stops)
    c = classify(a)
    all_files = files_table(ev, a, c)
    trace._cache.setdefault("files", all_files)
    keep = np.ones(a.n, dtype=bool) if system else ~a.system
    files = all_files if system else all_files[~all_files["path"].map(is_system_path).astype(bool)]
    files = files.reset_index(drop=True)
    procs = trace.processes
    union = io_union(a, len(procs))
    file_union = io_union(a, len(procs), file_time_mask(a, system))
    pp = _per_proc(a, procs, union, file_union)
    ranks = _per_rank(pp)
    proc_time = int(pp["run_time"].sum()) if len(pp) else 0
    io_time = int(union.sum())
    rd = a.data & (a.op == READ)
    wr = a.data & (a.op == WRITE)
    mrd = a.mpi_data & (a.op == READ)
    mwr = a.mpi_data & (a.op == WRITE)
    parent = job.mpi_ties(a)
    tied = parent >= 0
    read_time = int(a.dur[rd].sum())
    write_time = int(a.dur[wr].sum())
    bytes_read = int(a.bytes[rd].sum())
    bytes_written = int(a.bytes[wr].sum())
    ov: dict[str, Any] = {
        "trace": str(trace.dir),
        "selection": trace.selection,  # the read filters ("" = every event)
        "command": " ".join(str(x) for x in trace.runs[0].get("argv", [])) if trace.runs else "",
        "hosts": int(ev["host"].nunique()) if len(ev) else len(set(procs["host"])),
        # a process that exec'd is one process with several images (rows of `processes`)
        "processes": len(procs) - int((procs["ended"] == "exec").sum()) if len(procs) else 0,
        "images": len(procs),
        "ranks": int(procs["rank"].nunique()),
        "threads": _threads(ev),
        "events": a.n,
        "run_time": int(trace.duration),
        "process_time": proc_time,
        "io_time": io_time,
        "io_share": io_time / proc_time if proc_time > 0 else None,
        # time in I/O calls on files (the basis of the findings' shares)
        "file_io_time": int(file_union.sum()),
        "bytes_read": bytes_read,
        "bytes_written": bytes_written,
        "reads": int(rd.sum()),
        "writes": int(wr.sum()),
        "read_time": read_time,
        "write_time": write_time,
        "read_bandwidth": bytes_read / (read_time / 1e9) if read_time > 0 else None,
        "write_bandwidth": bytes_written / (write_time / 1e9) if write_time > 0 else None,
        "metadata_ops": int(metadata_mask(a).sum()),
        "errors": int((a.errno != 0).sum()),
        "files": len(files),
        "truncated_logs": int(procs["truncated"].sum()) if len(procs) else 0,
        "missed": int(a.missed.sum()),
        "mpi_reads": int(mrd.sum()),
        "mpi_writes": int(mwr.sum()),
        "mpi_bytes_read": int(a.bytes[mrd].sum()),
        "mpi_bytes_written": int(a.bytes[mwr].sum()),
        "posix_bytes_in_mpi": int(a.bytes[a.data & tied].sum()),
        "stracer_stops": len(trace.stops),
        "stracer_held": int(trace.stops["ns"].sum()) if len(trace.stops) else 0,
        "stracer_held_events": int((a.stopped > 0).sum()),
        "classified": len(c.idx),
        "consecutive": int(c.consecutive.sum()),
        "sequential": int(c.sequential.sum()),
    }
    missed = trace.missed
    span = max(int(trace.duration), int(a.t_end.max()) if a.n else 0, 1)
    mpi = job.mpi_table(a, ev, parent)
    bw = job.bandwidth(a, span)
    ov["peak_read_bandwidth"] = float(bw["read_bw"].max()) if len(bw) else 0.0
    ov["peak_write_bandwidth"] = float(bw["write_bw"].max()) if len(bw) else 0.0
    datasets, libs = datasets_layer(a, ev, trace.chunking)
    if libs:
        ov["datasets"] = libs
    modes = job.mpi_modes(mpi)
    jb = job.job_block(ov, ranks, pp, files, modes)
    s = Summary(
        overview=ov,
        functions=_functions(a),
        files=files,
        processes=pp,
        ranks=ranks,
        metadata=_metadata(a),
        sizes=size_histogram(a, file_mask(a, system)),
        call_sites=call_sites_table(site_stats(trace, a, keep=keep)),
        missed=missed,
        missed_sites=missed_sites(missed),
        job=jb,
        mpi=mpi,
        mpi_modes=modes,
        datasets=datasets,
        bandwidth=bw,
        app_paths=set(files["path"]),
        system=system,
    )
    if plots:
        from .over_time import over_time

        s.over_time = over_time(a, parent, span)
    from_counts(trace, s, Counts.of(trace, a, c, parent, system))
    s.completeness = _completeness(trace)
    return s


def no_missed_text(s: Summary) -> str:
    """The report's words for no missed I/O: that a stracer checked, or that none did."""
    if s.completeness.get("job", {}).get("stracer"):
        return "none: the stracer checked every I/O syscall, and no wrapper was bypassed"
    return "not checked: no stracer ran (--no-stracer), so I/O that bypassed the shim is not known"


def _completeness(trace: Trace) -> dict[str, Any]:
    from iotrace.record import asdict

    from .completeness import job

    if trace.selection:  # the kernel counted every call; the filtered events cannot match it
        line = f"not checked: the events are filtered ({trace.selection})"
        cols = ("pid", "command", "bytes_pct", "calls_pct", "cause")
        none = pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
        return {"line": line, "job": {}, "processes": none}
    j = job(trace)
    return {"line": j.line(), "job": asdict(j), "processes": trace.completeness}
