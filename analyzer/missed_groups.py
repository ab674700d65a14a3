"""Missed I/O grouped, one way for every output: the stracer's events grouped by process image,
class, syscall, engine, call site, file and descriptor (`Groups`), each group's numbers in forms
that merge -- counts, errors, bytes, time, first and last time, its threads, its first call's
result and arguments -- so that groups made per log, per batch of records or per part of a
trace are merged into those of the whole trace.

Fed two ways, from the same rows of events (stracer_src.Converter makes them):
- `of_trace`: a loaded trace's (or part's) events; `Trace.missed`, the report, in memory and in
  parts (analyzer/parts.py merges the parts' Groups);
- `of_logs`: `iotrace missed`, the stracer logs read a window at a time and their MISSED records
  converted and grouped a batch at a time: memory holds the groups, neither the records nor the
  events, and of the shim logs only their headers are read.

Tables from them: `Groups.table` (the report's missed I/O, bypasses by process, syscall and
call site: `Trace.missed`, `Summary.missed`), `missed_sites` (those by call site over every
process: `Summary.missed_sites`) and `Groups.listed` (`iotrace missed`: every group, with its
frames).  A call site is labelled by its innermost frames outside libc, by function and file
(symbols.site_label, lines left out: the calls of one function are one site).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from iotrace import incarnation
from iotrace.format import SRec
from iotrace.record import field, record
from iotrace.select import Select, mask

from . import schema

if TYPE_CHECKING:
    from .trace import Trace

KEY = ["host", "pid", "proc", "class", "function", "via", "stack_id", "path", "fd"]
UNKNOWN_SITE = "an unknown call site"
BATCH = 4096  # MISSED records converted and grouped at a time by `collect` (none is kept)
# what each of of_logs' two reads of a stracer log passes over (the other one checks it)
MISSED = frozenset({SRec.MISSED})
NOT_MISSED = frozenset(set(SRec) - {SRec.MISSED, SRec.SEAL, SRec.END})
MERGE_EVERY = 16  # batches' groups merged into the groups so far (their frames held till then)
# what of_logs reads of a shim log's header (its process for the converter: load.shim_procs, the
# job's start, a PID namespace's pids: nspid, a reused pid's processes: _begins); the rest (argv,
# cwd, the function names' list ...) let go as each is read: the listed logs held 2.5 KiB each,
# 1.8 now (10,001 logs, tracemalloc)
HEADER = frozenset({"host", "pid", "ppid", "rank", "clock", "exe", "forked"})


class NoStracerLog(Exception):
    """`iotrace missed` on a trace without a stracer log (one line)."""


# how each number of groups with one key merges (the first call's: the earliest group's)
MERGE = {"rank": "first", "count": "sum", "errors": "sum", "bytes": "sum", "time": "sum",
         "first": "min", "last": "max", "tid": "first", "ret": "first", "errno": "first",
         "args": "first"}  # fmt: skip
STATS = [*MERGE, "tids"]


def _merge(frames: list[pd.DataFrame], calls: bool = False) -> pd.DataFrame:
    """Groups from several frames, one per key; `calls`: the frames are rows of events (_rows:
    one call each, its thread in `tid`)."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=[*KEY, *STATS])
    if len(frames) == 1 and not calls:
        return frames[0]
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    g = df.sort_values("first", kind="stable").groupby(KEY, sort=False, dropna=False)
    out = g.agg(MERGE)
    if calls:
        out["tids"] = [frozenset(x.tolist()) for x in g["tid"].unique()]
    else:
        out["tids"] = g["tids"].agg(lambda s: frozenset().union(*s)).tolist()
    return out.reset_index()


@record
class Groups:
    """The missed I/O of a trace, a part or a batch, grouped (one row per KEY); `labels`: the
    call sites' labels by stack id; `frames` (for `listed`) and `libc_function` by stack id."""

    frame: pd.DataFrame = field(default_factory=lambda: _merge([]))
    labels: dict[int, str] = field(default_factory=dict)
    frames: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    libc_function: dict[int, str | None] = field(default_factory=dict)
    # (host, pid) -> the starts of its processes, for the pids that named several (of_logs')
    begins: dict[tuple[str, int], list[int]] = field(default_factory=dict)

    @staticmethod
    def merged(parts: list[Groups]) -> Groups:
        out = Groups(_merge([p.frame for p in parts]))
        for p in parts:
            out.labels.update(p.labels)
            out.frames.update(p.frames)
            out.libc_function.update(p.libc_function)
        return out

    def shifted(self, f: Callable[[int], int]) -> Groups:
        """The stack ids mapped by `f` (a part's -> the whole trace's; -1 stays)."""
        df = self.frame.copy()
        df["stack_id"] = [f(int(x)) if x >= 0 else -1 for x in df["stack_id"]]
        return Groups(
            df,
            {f(k): v for k, v in self.labels.items()},
            {f(k): v for k, v in self.frames.items()},
            {f(k): v for k, v in self.libc_function.items()},
        )

    def table(self) -> pd.DataFrame:
        """The bypasses by process, syscall (with its engine: "pwrite64 via io_uring") and call
        site (schema.MISSED_COLUMNS), the most frequent first."""
        m = self.frame[self.frame["class"] == "bypass"]
        if m.empty:
            return schema.empty_frame(schema.MISSED_COLUMNS)
        m = m.assign(function=[f if not v else f"{f} via {v}"
                               for f, v in zip(m["function"], m["via"], strict=True)])  # fmt: skip
        g = m.groupby(["host", "pid", "proc", "function", "stack_id"], observed=True, sort=True)
        df = g.agg(
            rank=("rank", "first"),
            count=("count", "sum"),
            errors=("errors", "sum"),
            bytes=("bytes", "sum"),
            time=("time", "sum"),
            first=("first", "min"),
            paths=("path", lambda s: ", ".join(sorted({str(p) for p in s.dropna()})[:5])),
        ).reset_index()
        df["site"] = [self.labels.get(int(x), UNKNOWN_SITE) for x in df["stack_id"]]
        df["stack_id"] = df["stack_id"].where(df["stack_id"] >= 0)
        df = df.sort_values(["count", "first", "host", "pid", "proc"], kind="stable",
                            ascending=[False, True, True, True, True])  # fmt: skip
        out = df[list(schema.MISSED_COLUMNS)].astype(schema.MISSED_COLUMNS)  # type: ignore[arg-type]
        return out.reset_index(drop=True)

    def listed(self) -> list[dict[str, Any]]:
        """`iotrace missed`'s groups, the earliest first: the table's columns and the group's
        file, descriptor, threads, first call and frames."""
        df = self.frame.sort_values(["first", "host", "pid", "proc"], kind="stable")
        out = []
        for r in df.itertuples(index=False):
            sid = int(r.stack_id)
            via = r.via or None
            out.append(
                {
                    "host": r.host,
                    "pid": int(r.pid),
                    # which process of its pid (1: the first; a pid reused in the run: 2, ...)
                    "process_nth": incarnation.nth(self.begins, (r.host, int(r.pid)), r.first),
                    "proc": int(r.proc),
                    "rank": None if pd.isna(r.rank) else int(r.rank),
                    "tid": int(r.tid),
                    "tids": sorted(int(t) for t in r.tids),
                    "class": r[KEY.index("class")],
                    "syscall": r.function,
                    "via": via,
                    "function": r.function if via is None else f"{r.function} via {via}",
                    "path": None if pd.isna(r.path) else r.path,
                    "fd": None if pd.isna(r.fd) else int(r.fd),
                    "stack_id": sid if sid >= 0 else None,
                    "site": self.labels.get(sid, UNKNOWN_SITE),
                    "libc_function": self.libc_function.get(sid),
                    "count": int(r.count),
                    "errors": int(r.errors),
                    "bytes": int(r.bytes),
                    "time": int(r.time),
                    "first": int(r.first),
                    "last": int(r.last),
                    "args": r.args,
                    "ret": int(r.ret),
                    "errno": int(r.errno),
                    "frames": self.frames.get(sid, []),
                }
            )
        return out


def _rows(
    host: Any, pid: Any, proc: Any, rank: Any, cls: Any, function: Any, via: Any, stack: Any,
    path: Any, fd: Any, errno: np.ndarray, nbytes: Any, t_start: Any, dur: Any, tid: Any,
    ret: Any, args: list[Any] | None = None,
) -> pd.DataFrame:  # fmt: skip
    """Rows of events as groups of one call (for _merge)."""
    return pd.DataFrame({
        "host": host, "pid": pid, "proc": proc, "class": cls, "function": function, "via": via,
        "stack_id": stack, "path": path, "fd": fd, "rank": rank, "count": 1,
        "errors": (errno != 0).astype(np.int64), "bytes": nbytes, "time": dur, "first": t_start,
        "last": t_start, "tid": tid, "ret": ret, "errno": errno,
        "args": pd.Series(args if args is not None else [None] * len(errno), dtype=object),
    })  # fmt: skip


def _sites(groups: Groups, site_frames: Any, frames: bool, trace: Trace | None = None) -> None:
    """The labels (and with `frames` the frames) of the groups' call sites, symbolised as the
    report's call sites are (symbols.symbolise: the stracer's frames, addr2line for the
    libc-internal ones it left)."""
    from .symbols import site_labels, symbolise
    from .trace import Trace

    ids = sorted({int(x) for x in groups.frame["stack_id"] if x >= 0})
    if not ids:
        return
    if trace is None:
        trace = Trace(Path("."), pd.DataFrame(), pd.DataFrame(), 0, 0, [], {}, {}, site_frames)
    st = symbolise(trace, ids)
    if frames:
        for sid, g in st.groupby("stack_id", sort=False):
            groups.frames[int(sid)] = [
                {"pc": int(pc), "module": mod, "offset": int(off), "function": fn,
                 "file": fl, "line": None if pd.isna(ln) else int(ln)}
                for pc, mod, off, fn, fl, ln in zip(
                    g["pc"], g["module"], g["module_offset"], g["function"], g["file"], g["line"],
                    strict=True)
            ]  # fmt: skip
    st["line"] = pd.array([None] * len(st), dtype="Int32")
    groups.labels.update(site_labels(st, skip_libc=True))


def of_trace(trace: Trace) -> Groups:
    """The bypasses among a loaded trace's (or part's) events, grouped."""
    ev = trace.events
    m = ev[ev["missed"]] if len(ev) else ev
    if m.empty:
        return Groups()
    rows = _rows(
        m["host"].astype(str).to_numpy(),
        m["pid"].to_numpy(),
        m["proc"].to_numpy(),
        m["rank"].array,
        m["class"].astype(str).to_numpy(),
        m["function"].astype(str).to_numpy(),
        m["via"].astype(str).to_numpy(),
        m["stack_id"].fillna(-1).to_numpy(dtype=np.int64),
        m["path"].astype(object).where(m["path"].notna(), None).to_numpy(),
        m["fd"].array,
        m["errno"].to_numpy(),
        m["bytes"].fillna(0).to_numpy(dtype=np.int64),
        m["t_start"].to_numpy(),
        (m["t_end"] - m["t_start"]).to_numpy(),
        m["tid"].to_numpy(),
        m["ret"].to_numpy(),
    )
    groups = Groups(_merge([rows], calls=True))
    _sites(groups, trace.site_frames, False, trace)
    return groups


def missed_table(trace: Trace) -> pd.DataFrame:
    """The report's missed I/O of a loaded trace (Trace.missed)."""
    return of_trace(trace).table()


def collect(
    trace_dir: str | Path, everything: bool = False, sel: Select | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """`iotrace missed`'s groups (Groups.listed) and warnings: of_logs'."""
    groups, warnings = of_logs(trace_dir, everything, sel)
    return groups.listed(), warnings


def of_logs(
    trace_dir: str | Path, everything: bool = False, sel: Select | None = None
) -> tuple[Groups, list[str]]:
    """The groups of the bypasses (with `everything` also the libc-internal and attached
    syscalls) of the events passing `sel` (iotrace.select), and warnings, from the stracer logs
    read a window at a time (slog.read), their records converted and grouped a batch at a time
    (every log is read twice: its process records first, which the conversion needs)."""
    from iotrace.stracer import slog

    from iotrace.tracefile import job_start, regular_size, run_records

    from .load import _Names, shim_logs, shim_procs
    from .log_kinds import CLASS_NAMES, STRACER, VIA_NAMES
    from .stracer_src import Converter, SLog

    sel = sel or Select()
    d = Path(trace_dir)
    if not d.is_dir():
        raise NoStracerLog(f"{d}: no such trace directory")
    files = STRACER.find(d)
    if not files:
        raise NoStracerLog(
            f"{d}: no stracer log (*{slog.SUFFIX}): the run used --no-stracer, or the stracer "
            "could not run there"
        )
    names = _Names()  # names as the tables spell them (load's)
    slogs: list[SLog] = []
    for f in files:
        try:
            # the records but the MISSED ones, which the second read checks and converts
            size = regular_size(f)  # a FIFO, a device: refused (TraceFormatError)
            lg = slog.read(f, stops=False, skip=MISSED) if size else None
        except slog.StracerLogError as exc:
            raise NoStracerLog(str(exc)) from None
        if lg is not None:
            for k in ("header", "sites", "site_fn", "procs"):
                setattr(lg, k, names(getattr(lg, k)))
        slogs.append(SLog(f, size, lg))
    # a damaged one: its processes are the stracer's
    logs = shim_logs(d, damaged_ok=True, fields=HEADER)
    for lg in logs:
        lg.header = names(lg.header)
    t0 = job_start([*logs, *slogs], run_records(d))
    shims, n_logs = shim_procs(logs, t0), len(logs)
    begins = _begins(logs, slogs, t0)
    del logs  # held no longer than needed: their processes are the converter's now
    conv = Converter(slogs, shims, t0, n_logs, 0)
    pid_of = {s.proc: s.pid for s in shims}
    del shims
    keep = [CLASS_NAMES.index(c) for c in (CLASS_NAMES[1:] if everything else ["bypass"])]
    done: list[pd.DataFrame] = []
    batch: list[Any] = []

    def add(li: int) -> None:
        from .event_columns import RawColumns

        if not batch:
            return
        recs = batch[:]
        batch.clear()
        n = Converter.n_rows(recs)
        raw = RawColumns.empty(n)
        proc, cls, via = np.empty(n, np.int32), np.empty(n, np.int8), np.empty(n, np.int8)
        fns: dict[str, int] = {}
        paths: dict[str, int] = {}
        n = conv.rows(li, recs, raw, proc, cls, via, lambda s: fns.setdefault(s, len(fns)),
                      lambda s: paths.setdefault(names(s), len(paths)))  # fmt: skip
        args: list[Any] | None = [r[5] for r in recs for _ in range(Converter.n_rows([r]))]
        if len(args) != n:  # a record the conversion skipped
            args = None
        a = {k: v[:n] for k, v in raw.arrays.items()}
        proc, cls, via = proc[:n], cls[:n], via[:n]
        for img in conv.extra[len(pid_of) - n_logs :]:  # stracer-only processes met now
            pid_of[img.proc] = img.pid
        pid = np.array([pid_of[int(p)] for p in proc], dtype=np.int64)
        rank = np.array([r if (r := conv.rank(int(p))) is not None else -1 for p in proc],
                        dtype=np.int64)  # fmt: skip
        fn_names, path_names = list(fns), list(paths)
        ok = np.isin(cls, keep) & mask(
            sel, rank=rank, pid=pid, path=a["path"].astype(np.int64), path_names=path_names,
            fn=a["fn"].astype(np.int64), fn_names=fn_names, errno=a["errno"].astype(np.int64),
            t=a["t_start"],
        )  # fmt: skip
        if not ok.any():
            return
        from .event_columns import NULL_BITS

        fn = np.array(fn_names, dtype=object)[a["fn"]]
        nb = np.array([schema.bytes_rule(f) != 0 for f in fn_names] or [False])[a["fn"]]
        ret = a["ret"]
        nbytes = np.where(nb & (ret >= 0), ret, 0)
        pc = a["path"]
        path = np.where(pc >= 0, np.array([*path_names, None], dtype=object)[pc], None)
        fd = pd.array(a["fd"], dtype="Int64")
        fd[(a["nulls"] & NULL_BITS["fd"]) != 0] = pd.NA
        rows = _rows(
            np.full(n, conv.slogs[li].host, dtype=object), pid, proc,
            pd.array([r if r >= 0 else None for r in rank.tolist()], dtype="Int32"),
            np.array(CLASS_NAMES, dtype=object)[cls], fn,
            np.array(VIA_NAMES, dtype=object)[via], a["stack"].astype(np.int64), path, fd,
            a["errno"], nbytes, a["t_start"], a["dur"], a["tid"], ret, args,
        )  # fmt: skip
        done.append(_merge([rows[ok]], calls=True))
        if len(done) >= MERGE_EVERY:
            done[:] = [_merge(done)]

    warnings: list[str] = []
    for li, sl in enumerate(slogs):

        def take(rec: list[Any], li: int = li) -> None:
            batch.append(rec)
            if len(batch) >= BATCH:
                add(li)

        if sl.log is not None:
            try:
                slog.read(sl.path, on_missed=take, stops=False, skip=NOT_MISSED)
            except slog.StracerLogError as exc:
                raise NoStracerLog(str(exc)) from None
            add(li)
        if sl.log is None or not sl.log.complete:
            warnings.append(
                f"{sl.path.name}: the stracer did not finish (killed?): missed syscalls are "
                "listed up to its last whole record"
            )
        procs = sl.log.procs if sl.log is not None else []
        for rec in procs:  # processes nothing could trace (stracer/tracer.py)
            if len(rec) >= 6 and rec[4] == "untraced":
                warnings.append(f"pid {rec[2]} was not traced ({rec[5]} code): its I/O is "
                                "unknown, missed or not")  # fmt: skip
    groups = Groups(_merge(done), libc_function=conv.site_fn, begins=begins)
    _sites(groups, conv.site_frames, True)
    return groups, warnings


def _begins(logs: list[Any], slogs: list[Any], t0: int) -> dict[tuple[str, int], list[int]]:
    """The starts of the processes of each (host, pid) that named several (iotrace.incarnation),
    from the shim logs' headers and the stracer's forks, on the trace's clock."""
    items: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for lg in logs:
        h = lg.header
        if isinstance(h.get("pid"), int) and isinstance(h.get("clock"), dict):
            kind = incarnation.FORKED_LOG if h.get("forked") else incarnation.IMAGE
            t = int(h["clock"].get("real", 0)) - t0
            items.setdefault((str(h.get("host")), h["pid"]), []).append((t, kind))
    for sl in slogs:
        for rec in sl.log.procs if sl.log is not None else []:
            if rec[4] == "fork" and isinstance(rec[2], int) and isinstance(rec[3], int):
                t = int(rec[1]) + sl.shift - t0
                items.setdefault((sl.host, rec[2]), []).append((t, incarnation.FORK))
    return incarnation.several(items)


MISSED_SITE_COLUMNS = ["site", "functions", "count", "errors", "bytes", "ranks", "pids", "paths"]


def missed_sites(missed: pd.DataFrame) -> pd.DataFrame:
    """The missed syscalls by call site (the same code in several processes: one row)."""
    if missed.empty:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in MISSED_SITE_COLUMNS})
    from .access import compact_ranks

    rows = []
    for site, g in missed.groupby("site", sort=False):
        paths = sorted({p for ps in g["paths"] for p in ps.split(", ") if p})
        rows.append(
            {
                "site": site,
                "functions": ", ".join(
                    f"{fn} {int(c):,}"
                    for fn, c in g.groupby("function")["count"]
                    .sum()
                    .sort_values(ascending=False)
                    .items()
                ),
                "count": int(g["count"].sum()),
                "errors": int(g["errors"].sum()),
                "bytes": int(g["bytes"].sum()),
                "ranks": compact_ranks([int(r) for r in g["rank"].dropna()]),
                "pids": ", ".join(str(p) for p in sorted(set(g["pid"].tolist()))[:8]),
                "paths": ", ".join(paths[:5]) + (f" (+{len(paths) - 5})" if len(paths) > 5 else ""),
            }
        )
    df = pd.DataFrame(rows, columns=MISSED_SITE_COLUMNS)
    return df.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)
