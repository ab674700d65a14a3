"""`load(DIR)`: every log of a trace directory, streamed into one time-ordered events table.

Two passes over each log, both in the C decoder (decode.py) and never one Python object per
event: the first counts the events so that every column is allocated once at its final size; the
second decodes each log straight into its slice of those columns.  Then per log, vectorised:
times aligned to the job's start with the header's clock pair, function/path/stack ids mapped to
the trace-wide dictionaries.  Then one stable sort by start time.
"""

from __future__ import annotations

import json
import mmap
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pandas as pd

from iotrace.calls import CHUNK_SIZE, Rec
from iotrace.tracefile import TraceFormatError, log_paths, read_header

from . import schema, stracer_src
from .decode import ERRORS, NULL_BITS, RawColumns, decoder
from .sources import SHIM, SOURCE_NAMES, SOURCES, STRACER, Source
from .trace import Trace

WINDOW = 64 << 20  # bytes of chunks decoded per call (progress granularity)
MIN_EVENT_BYTES = 14  # the smallest EVENT record: a fixarray of 14 one-byte fields
PROGRESS_MIN_BYTES = 32 << 20  # show a progress bar from this much log data on (on a tty)


class TruncatedLogWarning(UserWarning):
    """Some logs end mid-chunk (a crash or a copy cut them short): read up to the last whole
    record."""


@dataclass
class _Log:
    proc: int
    source: Source
    path: Path
    size: int
    header: dict[str, Any] = field(default_factory=dict)
    first: int = 0
    chunk: int = CHUNK_SIZE
    windows: list[list[int]] = field(default_factory=list)  # [start, stop, n_events, n_other]
    n_events: int = 0
    truncated: bool = False
    strings: dict[int, str] = field(default_factory=dict)
    stacks: dict[int, tuple[int, ...]] = field(default_factory=dict)
    modules: list[tuple[int, int, int, str]] = field(default_factory=list)
    exit: tuple[int, int] | None = None

    @property
    def shift(self) -> int:
        """CLOCK_MONOTONIC of this process -> CLOCK_REALTIME."""
        c = self.header.get("clock") or {}
        return int(c.get("real", 0)) - int(c.get("mono", 0))


@contextmanager
def _mapped(path: Path, size: int) -> Iterator[Any]:
    if size == 0:
        yield b""
        return
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        yield m


def _corrupt(log: _Log, code: int, off: int) -> TraceFormatError:
    return TraceFormatError(
        f"{log.path}: corrupt log ({ERRORS.get(code, 'bad data')} at byte {off})"
    )


def _open(log: _Log) -> None:
    if log.size == 0:
        log.truncated = True  # created, then killed before its header was written
        return
    with _mapped(log.path, log.size) as buf:
        log.header, log.first, log.chunk = read_header(buf, log.path)


def _bound(log: _Log) -> int:
    """At most this many events fit in the log (an EVENT record takes at least 14 bytes)."""
    return max(0, log.size - log.first) // MIN_EVENT_BYTES + 1 if log.size else 0


def _count(log: _Log) -> int:
    """The exact number of events in the log (one decoding pass that stores nothing)."""
    dec = decoder()
    n = 0
    with _mapped(log.path, log.size) as buf:
        for start in range(log.first, log.size, _step(log)):
            res = dec.scan(buf, start, start + _step(log), log.chunk, None, 0)
            if res.error:
                raise _corrupt(log, res.error, res.error_off)
            n += res.n_events
            if res.truncated:
                break
    return n


def _step(log: _Log) -> int:
    return max(1, WINDOW // log.chunk) * log.chunk


def _other_records(log: _Log, buf: Any, offs: np.ndarray, lens: np.ndarray) -> None:
    for off, ln in zip(offs.tolist(), lens.tolist(), strict=True):
        try:
            rec = msgpack.unpackb(
                buf[off : off + ln],
                raw=False,
                strict_map_key=False,
                unicode_errors="backslashreplace",
            )
            kind = rec[0]
            if kind == Rec.STRING:
                log.strings[int(rec[1])] = str(rec[2])
            elif kind == Rec.STACK:
                log.stacks[int(rec[1])] = tuple(int(x) for x in rec[2])
            elif kind == Rec.MODULE:
                log.modules.append((int(rec[1]), int(rec[2]), int(rec[3]), str(rec[4])))
            elif kind == Rec.EXIT:
                log.exit = (int(rec[1]), int(rec[2]))
        except (ValueError, TypeError, IndexError, msgpack.UnpackException):
            raise _corrupt(log, 3, off) from None


def _fill(log: _Log, out: RawColumns, advance: Callable[[int], None]) -> None:
    """Decode the log into the start of `out` (room enough); sets n_events, truncated."""
    dec = decoder()
    pos = 0
    step = _step(log)
    room_other = 256
    with _mapped(log.path, log.size) as buf:
        for start in range(log.first, log.size, step):
            view = out.view(pos, len(out))
            res = dec.scan(buf, start, start + step, log.chunk, view, room_other)
            if not res.error and len(res.other_off) < res.n_other:
                room_other = res.n_other  # more strings/stacks than room: once more, with room
                res = dec.scan(buf, start, start + step, log.chunk, view, room_other)
            if res.error:
                raise _corrupt(log, res.error, res.error_off)
            _other_records(log, buf, res.other_off, res.other_len)
            pos += res.n_events
            advance(min(step, log.size - start))
            if res.truncated:
                log.truncated = True
                break
    log.n_events = pos


class _Dict:
    """A trace-wide dictionary of strings -> codes."""

    def __init__(self, initial: list[str] | None = None) -> None:
        self.items: list[str] = list(initial or [])
        self.codes: dict[str, int] = {s: i for i, s in enumerate(self.items)}

    def code(self, s: str) -> int:
        c = self.codes.get(s)
        if c is None:
            c = self.codes[s] = len(self.items)
            self.items.append(s)
        return c

    def lut(self, mapping: dict[int, str]) -> np.ndarray:
        """local id -> code array (-1 where the id has no string)."""
        size = max(mapping, default=-1) + 1
        out = np.full(size + 1, -1, dtype=np.int32)
        for local, s in mapping.items():
            if local >= 0:
                out[local] = self.code(s)
        return out


def _lookup(lut: np.ndarray, ids: np.ndarray, null: np.ndarray) -> np.ndarray:
    """lut[ids], -1 where null or out of range."""
    ok = ~null & (ids >= 0) & (ids < len(lut))
    return np.where(ok, lut[np.where(ok, ids, 0)], -1).astype(np.int32)


@contextmanager
def _progress(total: int, enabled: bool | None) -> Iterator[Any]:
    show = sys.stderr.isatty() and total >= PROGRESS_MIN_BYTES if enabled is None else enabled
    if not show:
        yield lambda _n: None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(f"reading logs ({decoder().name} decoder)", total=total)
        yield lambda n: bar.advance(task, n)


def _run_records(trace_dir: Path) -> list[dict[str, Any]]:
    runs = []
    for p in sorted(trace_dir.glob("iotrace-run.*.json")):
        try:
            rec = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict):
            runs.append(rec)
    return runs


def load(trace_dir: str | Path, progress: bool | None = None) -> Trace:
    """Load a trace directory.  `progress`: None = a bar on a tty when the logs are large.

    Raises TraceFormatError (one-line message) for anything that is not a readable trace; warns
    once (TruncatedLogWarning) when logs were cut short."""
    d = Path(trace_dir)
    slog_paths = STRACER.find(d) if d.is_dir() else []
    if not slog_paths:
        log_paths(d)  # the directory checks and their messages
    logs = [_Log(0, SHIM, p, p.stat().st_size) for p in SHIM.find(d)]
    for i, lg in enumerate(logs):
        lg.proc = i
        _open(lg)
    slogs = stracer_src.read_logs(slog_paths)
    runs = _run_records(d)
    n_missed = sum(s.n_missed for s in slogs)
    raw, proc = _decode_all(logs, progress, n_missed)
    _warn_truncated(logs, slogs)
    return _assemble(d, logs, slogs, runs, raw, proc)


def _decode_all(
    logs: list[_Log], progress: bool | None, extra: int = 0
) -> tuple[RawColumns, np.ndarray]:
    """One pass: every log decoded back to back into columns sized by an upper bound.  Pages
    past the events are never touched, so they cost address space, not memory.  Where even
    the address space is refused (strict overcommit), count first and allocate exactly.
    `extra` rows are left at the end (the stracer's events, filled by _assemble)."""
    total_bytes = sum(lg.size for lg in logs)
    try:
        cap = sum(_bound(lg) for lg in logs) + extra
        raw = RawColumns.empty(cap)
    except MemoryError:
        cap = sum(_count(lg) for lg in logs) + extra
        raw = RawColumns.empty(cap)
    proc = np.empty(cap, dtype=np.int32)
    pos = 0
    with _progress(total_bytes, progress) as advance:
        for lg in logs:
            if lg.size:
                _fill(lg, raw.view(pos, cap), advance)
            proc[pos : pos + lg.n_events] = lg.proc
            pos += lg.n_events
    return raw.view(0, pos + extra), proc[: pos + extra]


def _warn_truncated(logs: list[_Log], slogs: list[stracer_src.SLog]) -> None:
    cut: list[Any] = [lg for lg in logs if lg.truncated]
    cut += [s for s in slogs if s.truncated]  # the stracer did not finish (killed?)
    if not cut:
        return
    names = ", ".join(lg.path.name + (" (empty)" if lg.size == 0 else "") for lg in cut[:5])
    more = f" and {len(cut) - 5} more" if len(cut) > 5 else ""
    what = "a log was" if len(cut) == 1 else f"{len(cut)} logs were"
    warnings.warn(
        f"{what} cut short ({names}{more}); read up to the last whole record",
        TruncatedLogWarning,
        stacklevel=3,
    )


def _job_start(logs: list[Any], runs: list[dict[str, Any]]) -> int:
    starts = [int(r["start_real_ns"]) for r in runs if isinstance(r.get("start_real_ns"), int)]
    starts += [int(lg.header["clock"]["real"]) for lg in logs if "clock" in lg.header]
    return min(starts) if starts else 0


def _assemble(
    d: Path,
    logs: list[_Log],
    slogs: list[stracer_src.SLog],
    runs: list[dict[str, Any]],
    raw: RawColumns,
    proc: np.ndarray,
) -> Trace:
    t0 = _job_start([*logs, *slogs], runs)
    fnames = schema.function_names([list(lg.header.get("functions", [])) for lg in logs])
    fdict = _Dict(fnames)
    paths = _Dict()
    hosts = _Dict()
    nulls = raw["nulls"]
    stack_base = 0
    raw_stacks: dict[int, tuple[int, tuple[int, ...]]] = {}
    pos = 0
    for lg in logs:
        sl = slice(pos, pos + lg.n_events)
        pos += lg.n_events
        raw["t_start"][sl] += lg.shift - t0
        fn_lut = np.array(
            [fdict.code(str(f)) for f in lg.header.get("functions", [])]
            + [fdict.code(schema.UNKNOWN_FUNCTION)],
            dtype=np.int16,
        )
        fn = raw["fn"][sl]
        fn[(fn < 0) | (fn >= len(fn_lut) - 1)] = len(fn_lut) - 1
        raw["fn"][sl] = fn_lut[fn]
        nl = nulls[sl]
        raw["path"][sl] = _lookup(
            paths.lut(lg.strings), raw["path"][sl], (nl & NULL_BITS["path"]) != 0
        )
        st = raw["stack"][sl]
        st_null = ((nl & NULL_BITS["stack"]) != 0) | (st < 0)
        raw["stack"][sl] = np.where(st_null, -1, st + stack_base)
        for sid, pcs in lg.stacks.items():
            raw_stacks[stack_base + sid] = (lg.proc, pcs)
        stack_base += max(lg.stacks, default=0) + 1
        if lg.n_events:
            top = int(raw["stack"][sl].max(initial=-1))
            stack_base = max(stack_base, top + 1)
    # the stracer's events, at the end of the columns (room was left for them)
    shims = [
        stracer_src.ShimProc(
            lg.proc,
            str(lg.header.get("host", "?")),
            _int_or(lg.header.get("pid"), 0),
            int(lg.header["clock"]["real"]) - t0 if "clock" in lg.header else 0,
            lg.header.get("rank") if isinstance(lg.header.get("rank"), int) else None,
        )
        for lg in logs
    ]
    n_st = len(raw) - pos
    st_res = stracer_src.fill(
        slogs,
        shims,
        t0,
        len(logs),
        stack_base,
        raw.view(pos, pos + n_st),
        proc[pos:],
        fdict.code,
        paths.code,
    )
    src = None
    if n_st or st_res.processes:
        src = np.zeros(len(raw), dtype=np.int8)
        src[pos:] = SOURCE_NAMES.index(STRACER.name)
    t_end = raw.arrays.pop("dur")
    t_end += raw["t_start"]
    t_start = raw["t_start"]

    # one stable sort by start time (each thread's events are in order already: timsort runs)
    if len(t_start) > 1 and not bool(np.all(t_start[1:] >= t_start[:-1])):
        order = np.argsort(t_start, kind="stable")
        raw.arrays["t_end"] = t_end
        raw.arrays["proc"] = proc
        if src is not None:
            raw.arrays["src"] = src
        _permute(raw.arrays, order)
        t_end = raw.arrays.pop("t_end")
        proc = raw.arrays.pop("proc")
        src = raw.arrays.pop("src", None)
        del order
    processes = _processes(logs, runs, t0, raw, t_end, proc, hosts, st_res)
    metas = [
        _ProcMeta(
            str(lg.header.get("host", "?")),
            lg.header.get("rank") if isinstance(lg.header.get("rank"), int) else None,
            _int_or(lg.header.get("pid"), 0),
        )
        for lg in logs
    ] + [_ProcMeta(r["host"], r["rank"], r["pid"]) for r in st_res.processes]
    events = _events(metas, raw, t_end, proc, src, fdict, paths, hosts)
    modules = {lg.proc: lg.modules for lg in logs}
    ends = [int(processes["end"].max())] if len(processes) else []
    for r in runs:
        if isinstance(r.get("end_mono_ns"), int) and isinstance(r.get("start_mono_ns"), int):
            ends.append(int(r["start_real_ns"]) + r["end_mono_ns"] - r["start_mono_ns"] - t0)
    duration = max([0, *ends])
    return Trace(d, events, processes, t0, duration, runs, raw_stacks, modules, st_res.site_frames)


def _permute(arrays: dict[str, np.ndarray], order: np.ndarray) -> None:
    """arrays[k] = arrays[k][order] for all k, reusing one spare buffer per dtype (the column just
    replaced becomes the next one's destination): fresh pages cost more than the copy here."""
    n = len(order)
    spare: dict[np.dtype[Any], np.ndarray] = {}
    for k, a in arrays.items():
        dst = spare.pop(a.dtype, None)
        if dst is None:
            dst = np.empty(n, dtype=a.dtype)
        np.take(a, order, out=dst[:n])
        arrays[k] = dst[:n]
        spare[a.dtype] = a
    spare.clear()


def _codes(a: np.ndarray, ncats: int) -> np.ndarray:
    """Category codes in the dtype pandas keeps them in (so from_codes does not copy)."""
    dt = np.int8 if ncats < 127 else np.int16 if ncats < 32767 else np.int32
    return a if a.dtype == dt else a.astype(dt)


def _masked(values: np.ndarray, null: np.ndarray) -> pd.arrays.IntegerArray:
    """A nullable integer column over `values` (no copy); Int32/Int64 by the values' dtype."""
    return pd.arrays.IntegerArray(values, null)


@dataclass
class _ProcMeta:
    host: str
    rank: int | None
    pid: int


def _events(
    metas: list[_ProcMeta],
    raw: RawColumns,
    t_end: np.ndarray,
    proc: np.ndarray,
    src: np.ndarray | None,
    fdict: _Dict,
    paths: _Dict,
    hosts: _Dict,
) -> pd.DataFrame:
    """The events table.  `src`: per event, the index of its source in SOURCE_NAMES (None: all
    from the shim)."""
    nulls = raw.arrays.pop("nulls")
    host_code = _codes(
        np.array([hosts.code(m.host) for m in metas] or [0], dtype=np.int32),
        len(hosts.items) + 1,
    )
    rank_val = np.array([m.rank if m.rank is not None else 0 for m in metas] or [0], np.int32)
    rank_null = np.array([m.rank is None for m in metas] or [True])
    pid_val = np.array([m.pid for m in metas] or [0], np.int32)
    if src is None:
        src = np.zeros(len(proc), dtype=np.int8)
    missed_lut = np.array([s.missed for s in SOURCES])

    fn = raw.arrays.pop("fn")
    stack = raw.arrays.pop("stack")
    op_lut = np.array([schema.OP_NAMES.index(schema.op_of(f)) for f in fdict.items], np.int8)
    fn = _codes(fn, len(fdict.items))
    rule_lut = np.array([schema.bytes_rule(f) for f in fdict.items], np.int8)
    ret = raw["ret"]
    rule = rule_lut[fn]
    bytes_null = (rule == 0) | (ret < 0)  # a failed stdio read may still have moved bytes
    bytes_val = np.where(bytes_null, 0, ret)
    del rule

    def cat(codes: np.ndarray, cats: list[str]) -> pd.Categorical:
        return pd.Categorical.from_codes(
            _codes(codes, len(cats)), categories=pd.Index(cats, dtype=object), validate=False
        )

    def bit(name: str) -> np.ndarray:
        return (nulls & NULL_BITS[name]) != 0

    cols: dict[str, Any] = {
        "source": cat(src, SOURCE_NAMES),
        "host": cat(host_code[proc], hosts.items),
        "rank": _masked(rank_val[proc], rank_null[proc]),
        "pid": pid_val[proc],
        "tid": raw.arrays.pop("tid"),
        "proc": proc,
        "function": cat(fn, fdict.items),
        "op": cat(op_lut[fn], schema.OP_NAMES),
        "fd": _masked(raw.arrays.pop("fd"), bit("fd")),
        "path": cat(raw.arrays.pop("path"), paths.items),
        "offset": _masked(raw.arrays.pop("offset"), bit("offset")),
        "req": _masked(raw.arrays.pop("req"), bit("req")),
        "bytes": _masked(bytes_val, bytes_null),
        "ret": raw.arrays.pop("ret"),
        "errno": raw.arrays.pop("errno"),
        "t_start": raw.arrays.pop("t_start"),
        "t_end": t_end,
        "missed": missed_lut[src],
        "stack_id": _masked(stack, stack < 0),
        "flags": _masked(raw.arrays.pop("flags"), bit("flags")),
    }
    return pd.DataFrame(cols, copy=False)


def _int_or(v: Any, default: int) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else default


def _processes(
    logs: list[_Log],
    runs: list[dict[str, Any]],
    t0: int,
    raw: RawColumns,
    t_end: np.ndarray,
    proc: np.ndarray,
    hosts: _Dict,
    st: stracer_src.Result,
) -> pd.DataFrame:
    nproc = len(logs) + len(st.processes)
    if not nproc:
        return schema.empty_frame(schema.PROCESS_COLUMNS)
    last = np.full(nproc, np.iinfo(np.int64).min, dtype=np.int64)
    if len(proc):
        np.maximum.at(last, proc, t_end)
    counts = np.bincount(proc, minlength=nproc)
    by_pid = {(r.get("host"), r.get("pid")): r for r in runs}
    # a log followed by another of the same process (an exec'd image) ended with an exec
    starts: dict[tuple[Any, Any], list[int]] = {}
    for lg in logs:
        key = (lg.header.get("host"), lg.header.get("pid"))
        starts.setdefault(key, []).append(int(lg.header.get("clock", {}).get("real", 0)))
    for r in st.processes:
        starts.setdefault((r["host"], r["pid"]), []).append(r["start"] + t0)
    rows = []
    for lg in logs:
        h = lg.header
        start = int(h["clock"]["real"]) - t0 if "clock" in h else 0
        end = max(start, int(last[lg.proc]))
        status: int | None = None
        ended = "unknown"
        if lg.exit is not None:
            end = max(end, lg.exit[0] + lg.shift - t0)
            status, ended = lg.exit[1], "exit"
        else:
            key = (h.get("host"), h.get("pid"))
            run = by_pid.get(key)
            rc = run.get("returncode") if run else None
            ex = st.exits.get((str(h.get("host", "?")), _int_or(h.get("pid"), 0)))
            mine = int(h.get("clock", {}).get("real", 0))
            if any(t > mine for t in starts.get(key, [])):
                ended = "exec"
            elif isinstance(rc, int):
                status, ended = (rc, "exit") if rc >= 0 else (None, f"signal {-rc}")
            elif ex is not None and ex[1] is not None and not ex[2]:
                # the stracer saw the process end
                end = max(end, ex[0])
                status, ended = (ex[1], "exit") if ex[1] >= 0 else (None, f"signal {-ex[1]}")
        hosts.code(str(h.get("host", "?")))
        argv = h.get("argv") or []
        rows.append(
            {
                "proc": lg.proc,
                "source": lg.source.name,
                "host": str(h.get("host", "?")),
                "rank": h.get("rank") if isinstance(h.get("rank"), int) else None,
                "pid": _int_or(h.get("pid"), 0),
                "ppid": h.get("ppid") if isinstance(h.get("ppid"), int) else None,
                "command": " ".join(str(a) for a in argv),
                "exe": str(h.get("exe", "")),
                "cwd": str(h.get("cwd", "")),
                "forked": bool(h.get("forked", False)),
                "start": start,
                "end": end,
                "exit_status": status,
                "ended": ended,
                "events": int(counts[lg.proc]),
                "truncated": lg.truncated,
                "log": lg.path.name,
            }
        )
    for r in st.processes:
        hosts.code(r["host"])
        i = r["proc"]
        rows.append({**r, "end": max(r["end"], int(last[i])), "events": int(counts[i])})
    df = pd.DataFrame(rows)[list(schema.PROCESS_COLUMNS)]
    return df.astype(schema.PROCESS_COLUMNS)  # type: ignore[arg-type]
