"""`load(DIR)`: every log of a trace directory, streamed into one time-ordered events table.

In C (event_columns.py, _decode.c) and never one Python object per event: each log is decoded
straight into its slice of columns allocated once for an upper bound of the events; per log, times
are aligned to the job's start with the header's clock pair and function/path/stack ids mapped to
the trace-wide dictionaries; the per-thread runs of start times are merged into the time order, and
every column is taken through it into memory the previous column freed. What a load costs is mostly
the memory it first touches: see docs/analyzer.md, "How loading works"."""

from __future__ import annotations

import bisect
import functools
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any

import msgpack
import numpy as np
import pandas as pd

from iotrace import format as fmt
from iotrace import kio as kio_core
from iotrace.calls import CHUNK_SIZE, END2_SUFFIX, EVENT_ENDS, KIO_FIELDS, KIO_OWN_FIELDS
from iotrace.format import KIO_URING_FIELDS
from iotrace.record import field, record, replace
from iotrace.tracedir import held
from iotrace.tracefile import (
    LOG_SUFFIX,
    BadChunk,
    BadRecord,
    Log,
    Records,
    TraceFormatError,
    UnwrittenLogError,
    _Prefixed,
    data_end,
    id_limit,
    job_start,
    log_paths,
    open_regular,
    other_record,
    read_header,
    run_records,
    verify,
)

from . import completeness, kept, schema, stracer_src
from .event_columns import ERRORS, NULL_BITS, Decoder, RawColumns, decoder, empty, require_native
from .log_kinds import (
    CLASS_NAMES,
    SHIM,
    SOURCE_NAMES,
    STRACER,
    VIA_NAMES,
    Source,
    find_run_records,
    shim_log_names,
)
from .trace import Trace

WINDOW = 64 << 20  # bytes of chunks decoded per call (progress granularity)
MIN_EVENT_BYTES = fmt.MIN_EVENT_BYTES  # the fewest bytes per row of events
PROGRESS_MIN_BYTES = 32 << 20  # show a progress bar from this much log data on (on a tty)


@record(frozen=True)
class Part:
    """A share of a trace for the bounded path (analyzer/parts.py): the events of the logs
    `first` <= index < `stop` (in the trace's order; every image of a process in one part) and,
    if `stracer_only`, of the processes only the stracer saw.  Every header is still read: ids,
    the job's start and the process table are the whole trace's."""

    first: int
    stop: int
    stracer_only: bool
    # a range of a log (analyzer/ranges.py): its events starting in [lo, hi) (the log's clock,
    # None: open), read from the chunk slots of ranges.Range; `n_ends` the whole log's
    window: tuple[int | None, int | None] | None = None
    slots: Any = field(default=None, compare=False, hash=False)
    n_ends: int = 0
    seq: int = 0  # the range's number in its log (0: the first, or not a range)
    group: int = -1  # parts of one group (a process cut into ranges) are reduced in order


class TruncatedLogWarning(UserWarning):
    """Some logs end mid-chunk (a crash or a copy cut them short): read up to the last whole
    record."""


@record
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
    n_ends: int = 0  # rows that are the end read of a call with two ends
    truncated: bool = False
    strings: dict[int, str] = field(default_factory=dict)
    stacks: dict[int, tuple[int, ...]] = field(default_factory=dict)
    modules: list[tuple[int, int, int, str, bytes | None]] = field(default_factory=list)
    exit: tuple[int, int] | None = None
    kio: list[kio_core.Reading] = field(default_factory=list)  # its KIO records
    data: dict[tuple[int, int], bytes] = field(default_factory=dict)  # DATA: (tid, t) -> bytes
    shapes: dict[tuple[int, int], Any] = field(default_factory=dict)  # SHAPE: (tid, t) -> ...
    selections: dict[tuple[int, int], Any] = field(default_factory=dict)  # SELECTION
    tids: dict[int, int] | None = None  # its threads' ids in its PID namespace -> the run's
    named: dict[str, bytes] | None = None  # header already named (_listed): its exact names

    @property
    def shift(self) -> int:
        """CLOCK_MONOTONIC of this process -> CLOCK_REALTIME."""
        c = self.header.get("clock") or {}
        return int(c.get("real", 0)) - int(c.get("mono", 0))


@contextmanager
def _windows(log: _Log) -> Iterator[Callable[[int], bytes]]:
    """Reads of the log's bytes [start, start + _step) up to its size, with pread(2): never
    mapped, for a shim trims its log at exit (preload/writer.c iot_log_finish) and a page of a
    mapping past the new end would kill the reader with SIGBUS (a report on a running job).
    Past the end, reads come back short, as from a log cut short."""
    with open_regular(log.path) as fd:
        yield lambda start: os.pread(fd, max(0, min(_step(log), log.size - start)), start)


def _corrupt(log: _Log, code: int, off: int) -> TraceFormatError:
    return TraceFormatError(
        f"{log.path}: corrupt log ({ERRORS.get(code, 'bad data')} at byte {off})"
    )


def opened(i: int, path: Path) -> _Log:
    """Shim log `path` (the trace's `i`th), its size and header read through one descriptor:
    TraceFormatError for what is not a regular file or not a log (listing 40,000 logs opened
    each twice, ~50 us an open on this VM's file system)."""
    with open_regular(path) as fd:
        st = os.fstat(fd)
        lg = _Log(i, SHIM, path, st.st_size)
        _open(lg, fd, st)
    return lg


def _open(log: _Log, fd: int | None = None, st: os.stat_result | None = None) -> None:
    """The log's header read (through `fd` if given, `st` its fstat)."""
    if log.size == 0:
        log.truncated = True  # created, then killed before its header was written
        return
    key = _header_key(log, st)
    if key in _HEADERS:
        log.header, log.first, log.chunk, log.size = _HEADERS[key]
        return
    try:
        if fd is None:
            with open_regular(log.path) as own:
                _read_header(log, own)
        else:
            _read_header(log, fd)
    except UnwrittenLogError:
        log.truncated = True  # as an empty one: created, killed before its header
        return
    if key is not None:
        _HEADERS[key] = (log.header, log.first, log.chunk, log.size)


def _read_header(log: _Log, fd: int) -> None:
    """The header, and the size up to the last written chunk (a killed process's sparse room
    past it is never read: tracefile.data_end)."""
    log.header, log.first, log.chunk = read_header(_Prefixed(fd, log.size), log.path)
    log.size = data_end(fd, log.size, log.first, log.chunk)


# Every part of a trace reads every log's header (the processes table): with 128 logs ~0.25 s
# of each part.  A process that reduces part after part (parts.tune_malloc: keep_headers) keeps
# them, and their names for the tables (_Names), by the file's identity, size and mtime.
_HEADERS: dict[Any, tuple[dict[str, Any], int, int, int]] = {}
_NAMED: dict[Any, tuple[dict[str, Any], dict[str, bytes]]] = {}
_KEEP_HEADERS = False


def keep_headers() -> None:
    global _KEEP_HEADERS
    _KEEP_HEADERS = True


def _header_key(
    log: _Log, st: os.stat_result | None = None
) -> tuple[str, int, int, int, int] | None:
    if not _KEEP_HEADERS:
        return None
    if st is None:
        try:
            st = os.stat(log.path)
        except OSError:
            return None
    return (str(log.path), log.size, st.st_size, st.st_mtime_ns, st.st_ino)


def _named_header(log: _Log, names: _Names) -> dict[str, Any]:
    """names(log.header), kept with the header (keep_headers)."""
    if log.named is not None:  # from the worker's listing (_listed): named then
        names.exact.update(log.named)
        return log.header
    key = _header_key(log) if log.size else None
    got = _NAMED.get(key) if key is not None else None
    if got is None:
        own = _Names()
        got = (own(log.header), own.exact)
        if key is not None:
            _NAMED[key] = got
    names.exact.update(got[1])
    return got[0]


def _bound(log: _Log, _part: Part | None = None) -> int:
    """At most this many events fit in the log (an EVENT record takes at least 14 bytes)."""
    return max(0, log.size - log.first) // MIN_EVENT_BYTES + 1 if log.size else 0


def _count(log: _Log) -> int:
    """The exact number of events in the log (one decoding pass that stores nothing)."""
    dec = decoder()
    n = 0
    with _windows(log) as read:
        for start in range(log.first, log.size, _step(log)):
            buf = read(start)
            res = dec.scan(buf, 0, len(buf), log.chunk, None, 0)
            if res.error:
                raise _corrupt(log, res.error, start + res.error_off)
            n += res.n_events
            if res.truncated:
                break
    return n


def _range_bound(log: _Log, part: Part) -> int:
    """At most this many rows a range of the log takes while it is read (ranges._fill)."""
    from .ranges import RUN_BYTES

    slots = len(part.slots) if part.slots is not None else 0
    return 2 * (slots * log.chunk + RUN_BYTES) // MIN_EVENT_BYTES + 2


def _fill_range(log: _Log, out: RawColumns, part: Part) -> None:
    """Decode the part's range of the log into the start of `out`: its chunk slots read in
    runs, each run's rows outside [lo, hi) dropped at once (the chunks read only for their other
    records leave nothing); the DATA, SHAPE and SELECTION records outside it too."""
    from .ranges import RUN_BYTES, runs

    lo, hi = part.window or (None, None)
    big = np.iinfo(np.int64).max
    a, b = (lo if lo is not None else -big - 1), (hi if hi is not None else big)
    dec = decoder()
    pos = 0
    room_other = 256
    with open_regular(log.path) as fd:
        for slot, k in runs(part.slots, max(1, RUN_BYTES // log.chunk)):
            start = log.first + slot * log.chunk
            buf = os.pread(fd, max(0, min(k * log.chunk, log.size - start)), start)
            view = out.view(pos, len(out))
            res, room_other = _scan(dec, log, buf, start, view, room_other)
            n = res.n_events
            t = view["t_start"][:n]
            keep = (t >= a) & (t < b)
            m = int(keep.sum())
            if m < n:
                for col in view.arrays.values():
                    col[:m] = col[:n][keep]
            pos += m
            for d in (log.data, log.shapes, log.selections):
                for key in [key for key in d if not a <= key[1] < b]:
                    del d[key]
            if res.truncated:
                log.truncated = True
                break
    log.n_events = pos
    log.n_ends = part.n_ends


def _scan(
    dec: Decoder, log: _Log, buf: Any, start: int, view: RawColumns, room_other: int
) -> tuple[Any, int]:
    """Checks and decodes one buffer of the log (read at `start`) into `view`, its other records
    into the log; returns the decoder's result and the room for other records to ask next."""
    try:
        verify(buf, 0, len(buf), log.chunk)
    except BadChunk as exc:
        raise _corrupt(log, exc.code, start + exc.off) from None
    res = dec.scan(buf, 0, len(buf), log.chunk, view, room_other)
    if not res.error and len(res.other_off) < res.n_other:
        room_other = res.n_other  # more strings/stacks than room: once more, with room
        res = dec.scan(buf, 0, len(buf), log.chunk, view, room_other)
    if res.error:
        raise _corrupt(log, res.error, start + res.error_off)
    _other_records(log, buf, res.other_off, res.other_len, start)
    return res, room_other


def _step(log: _Log) -> int:
    return max(1, WINDOW // log.chunk) * log.chunk


def _other_records(log: _Log, buf: Any, offs: np.ndarray, lens: np.ndarray, base: int = 0) -> None:
    """The records other than EVENT the C decoder found, read as every reader does
    (tracefile: Records.one, other_record, Log.add)."""
    limit = id_limit(log.size)
    got = Log(
        log.path,
        log.header,
        strings=log.strings,
        stacks=log.stacks,
        modules=log.modules,
        data=log.data,
        shapes=log.shapes,
        selections=log.selections,
    )  # filled in place
    for off, ln in zip(offs.tolist(), lens.tolist(), strict=True):
        try:
            got.add(other_record(Records.one(buf, off, off + ln), limit))
        except (BadRecord, ValueError, TypeError, IndexError, msgpack.UnpackException):
            raise _corrupt(log, 3, base + off) from None
    if got.exit_time is not None:
        log.exit = (got.exit_time, got.exit_status or 0)  # or 0: never None with a time
    for rec in got.kio:
        reading = kio_core.shim_reading(rec, log.proc)
        if reading is not None:
            if reading.when == "seccomp" and got.seccomp is not None:  # beside it, its counts
                reading.dropped, reading.nnp = list(got.seccomp[1:3]), got.seccomp_nnp
            log.kio.append(reading)


def _fill(log: _Log, out: RawColumns, advance: Callable[[int], None]) -> None:
    """Decode the log into the start of `out` (room enough); sets n_events, truncated."""
    dec = decoder()
    pos = 0
    step = _step(log)
    room_other = 256
    with _windows(log) as read:
        for start in range(log.first, log.size, step):
            buf = read(start)  # offsets in it: from `start`
            res, room_other = _scan(dec, log, buf, start, out.view(pos, len(out)), room_other)
            pos += res.n_events
            log.n_ends += res.n_ends
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


def load(trace_dir: str | Path, progress: bool | None = None, part: Part | None = None) -> Trace:
    """Load a trace directory.  `progress`: None = a bar on a tty when the logs are large.
    `part`: only that part's events (analyzer/parts.py).  Its files are read relative to the
    directory opened once (tracedir.held), not by their paths.

    Raises TraceFormatError (one-line message) for anything that is not a readable trace; warns
    once (TruncatedLogWarning) when logs were cut short."""
    with held(trace_dir):
        return _load(trace_dir, progress, part)


def _load(trace_dir: str | Path, progress: bool | None, part: Part | None) -> Trace:
    d = Path(trace_dir)
    slog_paths = STRACER.find(d) if d.is_dir() else []
    if not slog_paths:
        log_paths(d)  # the directory checks and their messages
    logs = shim_logs(d) if part is None else _listed(d, part)
    keep = None if part is None else _missed_of(logs, part)
    slogs = stracer_src.read_logs(slog_paths, keep)
    runs = run_records(d, find_run_records(d))  # listed once per worker (log_kinds)
    n_missed = sum(s.n_rows for s in slogs)
    mine = logs if part is None else logs[part.first : part.stop]
    raw = _decode_all(logs, progress, n_missed, mine, part)
    memo = _Memo(d, logs, part)
    # a listed log not opened again by the part has a header: never cut short (_Memo.fresh)
    _warn_truncated([logs[i] for i in memo.fresh(logs)], slogs)
    names = _Names()
    # the listed logs were named when listed (their exact names merged once), never decoded
    names.exact.update(memo(("exact",), lambda: _exact(memo.listed)))
    for i in memo.fresh(logs):
        lg = logs[i]
        lg.header = _named_header(lg, names)
        lg.strings, lg.modules = names.strings(lg.strings), names.modules(lg.modules)
    for sl in slogs:
        if sl.log is not None:
            sl.log.missed = names(sl.log.missed)
            # the rest as the log's index read it: the same in every part
            named, exact = memo(("named", str(sl.path), sl.size), lambda sl=sl: _named_slog(sl))
            for k, v in named.items():
                setattr(sl.log, k, v)
            names.exact.update(exact)
    trace = _assemble(d, logs, slogs, names(runs), raw, part, memo)
    trace.exact_names = names.exact
    return trace


class _Names:
    """Text for the tables, whose strings are UTF-8 (pandas, Arrow): a name that is not (Linux
    allows any bytes; the readers keep them as surrogates) is spelled with \\xNN for those
    bytes, as `show` prints it, and its exact bytes are kept in `exact` for the exports."""

    def __init__(self) -> None:
        self.exact: dict[str, bytes] = {}

    def strings(self, d: dict[int, str]) -> dict[int, str]:
        """A log's strings (their ids are ints): as they are when all are ASCII (most logs:
        walking each value through __call__ cost ~1 ms a log)."""
        return d if all(s.isascii() for s in d.values()) else self(d)

    def modules(self, mods: list[Any]) -> list[Any]:
        """A log's modules (start, end, offset, path, build id): only a non-ASCII path named."""
        return [m if m[3].isascii() else self(m) for m in mods]

    def __call__(self, v: Any) -> Any:
        if isinstance(v, str):
            if v.isascii():
                return v
            try:
                v.encode("utf-8")
                return v
            except UnicodeEncodeError:
                b = v.encode("utf-8", "surrogateescape")
                spelled = b.decode("utf-8", "backslashreplace")
                self.exact[spelled] = b
                return spelled
        if isinstance(v, list):
            if _ascii_strs(v) or all(map(_plain, v)):  # a header's function names
                return v
            return [self(x) for x in v]
        if isinstance(v, tuple):
            return tuple(self(x) for x in v)
        if isinstance(v, dict):
            # the stracer's records of processes (every part names them: ~1 ms per 10
            # processes), a log's header (a copy of each of 40,000: ~30 us a log)
            if _own(v):
                return v
            return {self(k): self(x) for k, x in v.items()}
        return v


def _ascii_strs(v: list[Any]) -> bool:
    """Every item of `v` is ASCII text, told in C (a header's ~300 function names, every log:
    a test per item cost ~7 us a log)."""
    try:
        return "".join(v).isascii()
    except TypeError:  # not all text
        return False


def _own(v: Any) -> bool:
    """`v` is its own name (_Names), whatever it holds: no text in it that is not UTF-8."""
    t = type(v)
    if t is str:
        if v.isascii():
            return True
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if t is list:
        return _ascii_strs(v) or all(map(_own, v))
    if t is dict:
        return (_ascii_strs(list(v)) or all(map(_own, v))) and all(map(_own, v.values()))
    if t is tuple:
        return all(map(_own, v))
    return not isinstance(v, str | list | tuple | dict)  # a subclass: named as __call__ does


def _plain(v: Any) -> bool:
    """`v` is its own name (_Names): not text, or ASCII text, and holds none."""
    return not isinstance(v, str | list | tuple | dict) or (type(v) is str and v.isascii())


def shim_logs(
    d: Path, damaged_ok: bool = False, fields: frozenset[str] | None = None
) -> list[_Log]:
    """The shim logs of trace `d`, their headers read (their events not).  `damaged_ok`: a log
    that cannot be read is kept without a header (as an empty one), not refused.  `fields`:
    only these of each header kept, cut as it is read (a command holding every log's header
    for few of its fields: `iotrace missed`)."""
    logs = []
    damaged = []
    for i, p in enumerate(SHIM.find(d)):
        try:
            lg = opened(i, p)
            if fields is not None:
                lg.header = {k: v for k, v in lg.header.items() if k in fields}
        except TraceFormatError:
            if not damaged_ok:
                raise
            lg = _Log(i, SHIM, p, 0, {}, truncated=True)
            damaged.append(lg)
        logs.append(lg)
    if damaged:
        hosts = {str(lg.header.get("host")) for lg in logs if lg.header.get("host")}
        for lg in damaged:
            lg.header = _host_pid_of(lg.path.name.removesuffix(LOG_SUFFIX), hosts)
    _in_namespaces(d, logs)
    return logs


def _host_pid_of(stem: str, hosts: set[str]) -> dict[str, Any]:
    """A damaged log's host and pid from its name, HOST.PID[.N] (stracer_src.Converter: no
    start): after a host the other logs name (a host may hold dots: node1.cluster), else its
    last numbers; {} where they are not there."""
    for host in sorted(hosts, key=len, reverse=True):
        pid = stem[len(host) + 1 :].split(".")[0] if stem.startswith(host + ".") else ""
        if pid.isdigit():
            return {"host": host, "pid": int(pid)}
    *head, a, b = ["", "", *stem.split(".")]
    if a.isdigit() and b.isdigit() and head[-1]:  # HOST.PID.N
        return {"host": ".".join(head[2:]), "pid": int(a)}
    if b.isdigit() and a:  # HOST.PID
        return {"host": ".".join([*head[2:], a]), "pid": int(b)}
    return {}


# Per worker (keep_headers): the trace's shim logs as last listed, their headers named, by
# directory.  A part's load opens only its own logs again (their sizes, a header not yet written):
# opening and naming every log for every part cost a trace of thousands of short-lived processes
# O(parts x logs) (bench/README.md, "manyparts").  A log added or removed lists anew.
@record
class _Listing:
    names: list[str]
    logs: list[_Log]
    headerless: list[int]  # the logs without a header when listed (opened again by each part)
    nested: bool  # a log of a process that began a PID namespace (_in_namespaces)
    # the trace's tables every part builds the same from the headers and the stracer's records
    # (_kept): built once per worker, not once per part (O(processes) each: "manyprocs")
    memo: dict[Any, Any] = field(default_factory=dict)


_LISTINGS: dict[str, _Listing] = {}


def listing(d: Path) -> list[_Log]:
    """The trace's shim logs, their headers read and named: with keep_headers the process's
    listing, kept for its parts (the plan's: the local workers forked after it inherit it),
    else shim_logs(d)."""
    if not _KEEP_HEADERS:
        return shim_logs(d)
    return _listing(d).logs


def _listing(d: Path) -> _Listing:
    names = shim_log_names(d)
    got = _LISTINGS.get(str(d))
    if got is None or got.names != names:
        _LISTINGS.clear()  # one directory at a time (a worker's)
        with kept.making():
            logs = shim_logs(d)
            slim, made = _Slim(), {}
            for lg in logs:
                own, whole = _Names(), lg.header
                lg.header, lg.named = slim(own(whole)), own.exact
                made[id(whole)] = lg.header
                slim.bare(lg)
            # the header cache holds the slim ones (its part opens a log again, its header not
            # read again: the keys tracefile.Log reads of the events' log are kept)
            for k, (h, first, chunk, size) in list(_HEADERS.items()):
                _HEADERS[k] = (made.get(id(h), h), first, chunk, size)
            got = _LISTINGS[str(d)] = _Listing(
                names, logs, [lg.proc for lg in logs if lg.truncated], _nested(logs)
            )
    return got


# what the tables read of a log not its part's own (_processes, shim_procs, _starts, job_start,
# the function names, iotrace.nspid), and its part of its events (tracefile.Log: functions):
# its listing and the header cache keep only these
LISTED_KEYS = ("host", "pid", "ppid", "rank", "nspid", "argv", "exe", "cwd", "clock", "forked",
               "functions")  # fmt: skip


class _Slim:
    """A listed log made small (a worker holds every log's: ~2.4 KB of its header and ~0.9 KB
    of empty records' tables a log, 0.6 GB of a worker at 100,000 processes): its header's
    LISTED_KEYS, their text and argv lists one object per distinct value, its tables for
    decoded records shared empty ones (never decoded: its part opens it again)."""

    EMPTY_DICT: Any = MappingProxyType({})

    def __init__(self) -> None:
        self.seen: dict[Any, Any] = {}

    def one(self, v: Any) -> Any:
        if type(v) is str:
            return self.seen.setdefault(v, v)
        if type(v) is list and _ascii_strs(v):  # argv (a header's function names are shared)
            return self.seen.setdefault(("argv", *v), v)
        return v

    def __call__(self, h: dict[str, Any]) -> dict[str, Any]:
        return {k: self.one(h[k]) for k in LISTED_KEYS if k in h}

    def bare(self, lg: _Log) -> None:
        lg.windows = lg.modules = lg.kio = ()  # type: ignore[assignment]
        lg.strings = lg.stacks = lg.data = lg.shapes = lg.selections = self.EMPTY_DICT
        if not lg.named:
            lg.named = self.EMPTY_DICT


def _listed(d: Path, part: Part) -> list[_Log]:
    """shim_logs(d) for `part`'s load: its logs opened, the others' as listed before."""
    if not _KEEP_HEADERS:
        return shim_logs(d)
    got = _listing(d)
    # the others' as listed (never decoded here: nothing of theirs changes); the part's own and
    # those without a header then (written since?) opened again
    out = list(got.logs)
    fresh = sorted({*range(part.first, min(part.stop, len(out))), *got.headerless})
    _NAMED.clear()  # those of the parts before let go (a worker held every log's again)
    for i in fresh:
        lg = opened(i, out[i].path)
        if lg.header is out[i].header:  # as listed (the header cache's): named then
            lg.named = out[i].named
        out[i] = lg
    new = [out[i] for i in fresh]
    if got.nested:  # the listed logs have their thread ids already
        _outer_all(d, new)
    elif _nested(new):
        _outer_all(d, out)
    return out


class _Memo:
    """The worker's tables of trace `d` as listed (_Listing.memo), for a part's load: each
    built once by `make` under `key` (which names every input beyond the listed headers), the
    headers of the logs that had none when listed included.  Without a listing (a whole load,
    or not a worker: keep_headers) each is built for the load alone."""

    def __init__(self, d: Path, logs: list[_Log], part: Part | None) -> None:
        got = _LISTINGS.get(str(d)) if part is not None and _KEEP_HEADERS else None
        self.memo = got.memo if got is not None else None
        self.listed = got.logs if got is not None else []
        self.headerless = got.headerless if got is not None else []
        self.part = part if got is not None else None
        # a log written since it was listed may have its header now: tables made before it not
        self.state = () if got is None else tuple(
            (i, logs[i].size, bool(logs[i].header)) for i in got.headerless)  # fmt: skip

    def fresh(self, logs: list[_Log]) -> list[int]:
        """The logs of `logs` not as listed (_listed: the part's own, those that had no header),
        in order: every log without a listing."""
        if self.part is None:
            return list(range(len(logs)))
        own = range(self.part.first, min(self.part.stop, len(logs)))
        return sorted({*own, *self.headerless})

    def __call__(self, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        if self.memo is None:
            return make()
        key = (*key, self.state)
        if key not in self.memo:
            with kept.making():
                self.memo[key] = make()
        return self.memo[key]


def _exact(logs: list[_Log]) -> dict[str, bytes]:
    """The exact bytes of the listed logs' names (_listed named their headers)."""
    out: dict[str, bytes] = {}
    for lg in logs:
        if lg.named:
            out.update(lg.named)
    return out


def _named_slog(sl: stracer_src.SLog) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A stracer log's records but its MISSED ones, named (_Names), and their exact names."""
    own = _Names()
    assert sl.log is not None
    named = {k: own(getattr(sl.log, k)) for k in ("header", "sites", "site_fn")}
    procs = sl.log.procs
    if isinstance(procs, stracer_src.Packed):  # its index's: kept packed, its names its own
        mine = _Names()
        got = mine(procs.records())
        named["procs"] = got if mine.exact else procs
        own.exact.update(mine.exact)
    else:
        named["procs"] = own(procs)
    return named, own.exact


def _in_namespaces(d: Path, logs: list[_Log]) -> None:
    """The logs of processes in a PID namespace of their own (one began it: its parent is
    outside it, ppid 0) with the run's pids and threads, from the stracer's records
    (iotrace.nspid): the stracer's events and the kernel's counts are by those."""
    if _nested(logs):
        _outer_all(d, logs)


def _outer_all(d: Path, logs: list[_Log]) -> None:
    from iotrace import nspid

    outer = nspid.outer(STRACER.find(d))
    for lg in logs:
        o = outer.get(str(lg.header.get("host", "?")))
        if o is not None:
            lg.tids = o.header(lg.header)


def _nested(logs: list[_Log]) -> bool:
    return any(lg.header.get("ppid") == 0 for lg in logs)


def _outer_tids(lg: _Log, tid: np.ndarray) -> None:
    """The log's thread ids (`tid`: its events', in place; its DATA, SHAPE and SELECTION
    records') made the run's (_in_namespaces)."""
    if not lg.tids:
        return
    inner = np.fromiter(lg.tids, np.int64, len(lg.tids))
    order = np.argsort(inner)
    inner, run = inner[order], np.fromiter(lg.tids.values(), np.int64, len(lg.tids))[order]
    at = np.minimum(np.searchsorted(inner, tid), len(inner) - 1)
    hit = inner[at] == tid
    tid[hit] = run[at[hit]]
    for d in (lg.data, lg.shapes, lg.selections):
        for key in [k for k in d if k[0] in lg.tids]:
            d[(lg.tids[key[0]], key[1])] = d.pop(key)


def _missed_of(logs: list[_Log], part: Part) -> stracer_src.Keep:
    """The stracer's MISSED records a part converts (the rest are not held): its processes'
    (in a range, those that may have a row in its time: on the log's clock, from the call's
    entry to its exit), with `stracer_only` those the stracer-only processes may have
    (stracer_src.stracer_only_spans), and the first of every other pid in each log (the
    stracer-only processes are numbered as the records meet them: the same numbers in every
    part)."""
    mine = logs[part.first : part.stop]
    pids = {(str(lg.header.get("host", "?")), lg.header.get("pid")) for lg in mine}
    lo, hi = part.window if part.window is not None else (None, None)
    at = mine[0].shift if mine else 0

    shims = shim_procs(logs, 0) if part.stracer_only else []

    def of_log(sl: stracer_src.SLog) -> stracer_src.Wanted:
        a = None if lo is None else lo + at - sl.shift
        b = None if hi is None else hi + at - sl.shift
        spans = stracer_src.stracer_only_spans(sl, shims) if part.stracer_only else {}
        return stracer_src.Wanted({p for h, p in pids if h == sl.host}, a, b, spans=spans)

    return of_log


def shim_procs(logs: list[_Log], t0: int) -> list[stracer_src.ShimProc]:
    """What the stracer's events need to know of the shim logs (stracer_src.Converter)."""
    return [
        stracer_src.ShimProc(
            lg.proc,
            str(lg.header.get("host", "?")),
            _int_or(lg.header.get("pid"), 0),
            int(lg.header["clock"]["real"]) - t0 if "clock" in lg.header else None,
            lg.header.get("rank") if isinstance(lg.header.get("rank"), int) else None,
        )
        for lg in logs
    ]


def _decode_all(
    logs: list[_Log],
    progress: bool | None,
    extra: int = 0,
    mine: list[_Log] | None = None,
    part: Part | None = None,
) -> RawColumns:
    """One pass: every log decoded back to back into columns sized by an upper bound.  Pages
    past the events are never touched, so they cost address space, not memory.  Where even
    the address space is refused (strict overcommit), count first and allocate exactly.
    `extra` rows are left at the end (the stracer's events, filled by _assemble).  The columns
    come back with one more, `proc` (the log's index of each event).  Only the logs in `mine`
    (default: all) are decoded."""
    logs = logs if mine is None else mine
    total_bytes = sum(lg.size for lg in logs)
    ranged = part is not None and part.window is not None
    try:
        bound = _range_bound if ranged else _bound
        cap = sum(bound(lg, part) for lg in logs) + extra  # type: ignore[operator]
        raw = RawColumns.empty(cap)
    except MemoryError:
        cap = sum(_count(lg) for lg in logs) + extra
        raw = RawColumns.empty(cap)
    proc = empty(cap, np.int32)
    pos = 0
    with _progress(total_bytes, progress) as advance:
        for lg in logs:
            if lg.size and ranged:
                _fill_range(lg, raw.view(pos, cap), part)  # type: ignore[arg-type]
            elif lg.size:
                _fill(lg, raw.view(pos, cap), advance)
            proc[pos : pos + lg.n_events] = lg.proc
            _outer_tids(lg, raw["tid"][pos : pos + lg.n_events])
            pos += lg.n_events
    raw.arrays["proc"] = proc
    return raw.view(0, pos + extra)


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


def _job_start(logs: list[_Log], slogs: list[stracer_src.SLog], runs: list[dict[str, Any]],
               memo: _Memo) -> int:  # fmt: skip
    """job_start of the run records and every log, the shim logs' earliest start kept (_Memo)."""
    first = memo(("first",), lambda: job_start(logs, []) if _clocked(logs) else None)
    return job_start([*slogs, *([_Clocked(first)] if first is not None else [])], runs)


def _clocked(logs: list[_Log]) -> bool:
    return any("clock" in lg.header for lg in logs)


@record
class _Clocked:
    """What job_start reads of a log: its header's clock."""

    real: int

    @property
    def header(self) -> dict[str, Any]:
        return {"clock": {"real": self.real}}


def _assemble(
    d: Path,
    logs: list[_Log],
    slogs: list[stracer_src.SLog],
    runs: list[dict[str, Any]],
    raw: RawColumns,
    part: Part | None = None,
    memo: _Memo | None = None,
) -> Trace:
    """The tables from the decoded columns.  `raw` is consumed: its columns are dropped as soon
    as the events table no longer needs them (every column is ~10-80 MB per 10 million events,
    and memory first touched is what a load pays most for: docs/analyzer.md)."""
    memo = memo or _Memo(d, logs, None)
    t0 = _job_start(logs, slogs, runs, memo)
    fnames = memo(("functions",), lambda: schema.function_names(_function_lists(logs)))
    fdict = _Dict(fnames)
    paths = _Dict()
    hosts = _Dict()
    # a part numbers its stacks from 0 as if its logs were the only ones (parts.py shifts them)
    mine = logs if part is None else logs[part.first : part.stop]
    stack_base, raw_stacks = _map_ids(mine, raw, t0, fdict, paths)
    shim_paths = len(paths.items)
    pos = sum(lg.n_events for lg in mine)  # the others are not decoded
    # the stracer's events, at the end of the columns (room was left for them)
    slog_key = tuple((str(sl.path), sl.size) for sl in slogs)
    shims = memo(("shims", t0), lambda: shim_procs(logs, t0))
    n_st = len(raw) - pos
    cls = np.zeros(len(raw) if n_st else 0, dtype=np.int8)
    via = np.zeros(len(raw) if n_st else 0, dtype=np.int8)
    matched = memo(("matching", t0, slog_key),
                   lambda: stracer_src.matching(slogs, shims, t0, len(logs)))  # fmt: skip
    conv = stracer_src.Converter(slogs, shims, t0, len(logs), stack_base, matched)
    at = pos
    for li, sl in enumerate(slogs):
        if sl.log is not None:
            at += conv.rows(li, sl.log.missed, raw.view(at, len(raw)), raw["proc"][at:],
                            cls[at:], via[at:], fdict.code, paths.code)  # fmt: skip
    st_res = conv.result()
    if part is not None and n_st:  # only the part's processes' stracer events
        pr = raw["proc"][pos:]
        keep = ((pr >= part.first) & (pr < part.stop)) | (part.stracer_only & (pr >= len(logs)))
        if part.window is not None:  # a range of a log: its time too (on the trace's clock)
            t = raw["t_start"][pos:]
            shift = logs[part.first].shift - t0
            lo, hi = part.window
            if lo is not None:
                keep &= t >= lo + shift
            if hi is not None:
                keep &= t < hi + shift
        k = int(keep.sum())
        for a in [*raw.arrays.values(), cls, via]:
            a[pos : pos + k] = a[pos:][keep]
        raw, cls, via, n_st = raw.view(0, pos + k), cls[: pos + k], via[: pos + k], k
    if n_st or st_res.processes:
        src = np.zeros(len(raw), dtype=np.int8)
        src[pos:] = SOURCE_NAMES.index(STRACER.name)
        raw.arrays["src"] = src
        del src
    if n_st:
        raw.arrays["cls"] = cls
        raw.arrays["via"] = via
    del cls, via
    t_end = raw.arrays.pop("dur")
    t_end += raw["t_start"]
    raw.arrays["t_end"] = t_end
    del t_end
    last, counts = _per_process(mine, raw["t_end"], raw["proc"], len(logs) + len(st_res.processes))
    # the stracer-only processes: the matching's, and the pids no image has met by now
    met = conv.extra[len(matched.extra) :]
    st_key = (t0, slog_key, tuple((i.host, i.pid, i.start) for i in met))
    processes = _processes(logs, runs, last, counts, hosts, st_res, memo, st_key)
    # a part's events are of its logs' processes and the stracer-only ones (after the logs')
    n = len(logs)
    own = None if part is None else np.r_[part.first : min(part.stop, n), n : len(processes)]
    events, writable = _events(processes, raw, fdict, paths, hosts, own)
    if any(lg.data for lg in mine):
        _add_data(events, mine, t0)
    # of the decoded logs (the others' have no MODULE, SHAPE nor SELECTION records read)
    modules = {lg.proc: lg.modules for lg in mine}
    chunking = _chunking(mine, t0)
    ends = [int(processes["end"].max())] if len(processes) else []
    for r in runs:
        if isinstance(r.get("end_mono_ns"), int) and isinstance(r.get("start_mono_ns"), int):
            ends.append(int(r["start_real_ns"]) + r["end_mono_ns"] - r["start_mono_ns"] - t0)
    duration = max([0, *ends])
    kio = _kio(mine, slogs, t0, memo, slog_key, part is None or part.stracer_only)
    tr = Trace(
        d, events, processes, t0, duration, runs, raw_stacks, modules, st_res.site_frames, kio,
        stops=stracer_src.stops(slogs, t0, None if part is None else _threads(events)),
        stack_base=stack_base, shim_paths=shim_paths,
        chunking=chunking, writable_maps=writable,
    )  # fmt: skip
    if memo.memo is not None:  # the processes' starts by pid: of the headers, the same each part
        tr._cache["begins"] = memo(("begins", *st_key, repr(runs)),
                                   lambda: completeness.begins(processes))  # fmt: skip
    return tr


def _function_lists(logs: list[_Log]) -> list[list[str]]:
    """The logs' lists of function names, each list object once (the listing's logs share
    one per distinct list: _listed), in the logs' order."""
    got: dict[int, list[str]] = {}
    for lg in logs:
        f = lg.header.get("functions", [])
        got.setdefault(id(f), f)
    return [list(f) for f in got.values()]


def _threads(events: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per host, the thread ids of the events: the STOP records a part needs (those of its
    threads; access.held matches them to the events by host and thread)."""
    if not len(events):
        return {}
    codes = events["host"].cat.codes.to_numpy()
    tid = events["tid"].to_numpy()
    cats = events["host"].cat.categories
    # a thread's events come in runs (a log's chunk is one thread's): the distinct values of
    # the runs' heads are the column's, found in a pass of comparisons and a hash table of the
    # few heads (pd.unique over every event took 6 ms of a 625,000-event part's ~280)
    hosts = np.sort(pd.unique(_run_heads(codes))).tolist()
    if len(hosts) == 1:
        return {str(cats[hosts[0]]): np.sort(pd.unique(_run_heads(tid))).astype(np.int64)}
    return {
        str(cats[c]): np.sort(pd.unique(_run_heads(tid[codes == c]))).astype(np.int64)
        for c in hosts
    }


def _run_heads(a: np.ndarray) -> np.ndarray:
    """The first value of each run of equal values of `a` (the same distinct values)."""
    if len(a) < 2:
        return a
    heads = np.not_equal(a[1:], a[:-1])
    return np.concatenate([a[:1], a[1:][heads]])


def _kio(
    logs: list[_Log],
    slogs: list[stracer_src.SLog],
    t0: int,
    memo: _Memo,
    slog_key: tuple[tuple[str, int], ...],
    every: bool = True,
) -> pd.DataFrame:
    """The kernel's I/O counters as the shim (of the decoded `logs`) and the stracer read them
    (KIO records); the stracer's rows, every process's end, made once per worker (_Memo).  Not
    `every`: of the stracer's rows those of the logs' pids (a part's completeness reads no
    others: completeness.explained) and at least one (stracer_read), not every process's."""
    shim = _typed_frame([_kio_row(str(lg.header.get("host", "?")), _int_or(lg.header.get("pid"), 0),
                                  replace(r, t=r.t + lg.shift - t0))
                         for lg in logs for r in lg.kio], schema.KIO_COLUMNS)  # fmt: skip
    st, pids = memo(("kio", t0, slog_key), lambda: (
        f := _stracer_kio(slogs, t0), f["pid"].to_numpy(dtype=np.int64)))  # fmt: skip
    if not len(st):
        return shim
    if not every:
        mine = np.fromiter({_int_or(lg.header.get("pid"), 0) for lg in logs}, np.int64)
        rows = np.flatnonzero(np.isin(pids, mine))
        st = st.iloc[rows if len(rows) else [0]]
    return pd.concat([shim, st], ignore_index=True) if len(shim) else st.reset_index(drop=True)


def _stracer_kio(slogs: list[stracer_src.SLog], t0: int) -> pd.DataFrame:
    rows = []
    for sl in slogs:
        for rec in sl.log.kio if sl.log is not None else []:
            got = kio_core.stracer_reading(rec, sl.shift - t0)
            if got is not None:
                rows.append(_kio_row(sl.host, got[0], got[1]))
    return _typed_frame(rows, schema.KIO_COLUMNS)


def _kio_row(host: str, pid: int, r: kio_core.Reading) -> dict[str, Any]:
    return {"host": host, "pid": pid, "proc": r.image, "source": r.source, "when": r.when,
            "t": r.t, **dict(zip(KIO_FIELDS, r.counters, strict=True)),
            **{f"own_{k}": v for k, v in zip(KIO_OWN_FIELDS, r.own, strict=True)},
            "stdio_pending": r.pending, "stdio_pending_streams": r.pending_streams,
            **{f"events_{k}": v for k, v in zip(schema.KIO_SUMS, r.sums, strict=True)},
            **{f"threads_{k}": (r.threads[i] if r.threads is not None else None)
               for i, k in enumerate(("rchar", "wchar", "syscr", "syscw"))},
            **{f"uring_{k}": v for k, v in zip(KIO_URING_FIELDS, r.uring, strict=True)},
            **{f"shim_{k}": (r.shim[i] if r.shim is not None else None)
               for i, k in enumerate(schema.KIO_SHIM)},
            "lost": r.lost, "euid": r.euid, "next": r.next,
            "dropped": r.dropped[0], "untraced": r.dropped[1], "nnp": r.nnp,
            }  # fmt: skip


def _map_ids(
    logs: list[_Log], raw: RawColumns, t0: int, fdict: _Dict, paths: _Dict
) -> tuple[int, dict[int, tuple[int, tuple[int, ...]]]]:
    """Per log, in place: times aligned to the job's start, function/path/stack ids mapped to
    the trace-wide ones.  Returns the next free stack id and the stacks by trace-wide id."""
    stack_base = 0
    raw_stacks: dict[int, tuple[int, tuple[int, ...]]] = {}
    pos = 0
    for lg in logs:
        sl = slice(pos, pos + lg.n_events)
        pos += lg.n_events
        names = [str(f) for f in lg.header.get("functions", [])]
        unknown = fdict.code(schema.UNKNOWN_FUNCTION)
        codes = [fdict.code(f) for f in names]
        if lg.n_ends:  # the end read of a call with two ends: function name + END2_SUFFIX
            fn = raw["fn"][sl]
            fn[(raw["nulls"][sl] & NULL_BITS["end2"]) != 0] += len(names)
            codes += [fdict.code(f + END2_SUFFIX) if f in EVENT_ENDS else unknown for f in names]
        fn_lut = np.array([*codes, unknown], dtype=np.int16)
        path_lut = paths.lut(lg.strings)
        cols = {k: raw[k][sl] for k in ("t_start", "fn", "path", "stack", "nulls")}
        top = map_ids(cols, lg.shift - t0, fn_lut, path_lut, stack_base) if lg.n_events else -1
        for sid, pcs in lg.stacks.items():
            raw_stacks[stack_base + sid] = (lg.proc, pcs)
        stack_base += max(lg.stacks, default=0) + 1
        if lg.n_events:
            stack_base = max(stack_base, int(top) + 1)
    return stack_base, raw_stacks


def map_ids(
    cols: dict[str, np.ndarray], shift: int, fn_lut: np.ndarray, path_lut: np.ndarray, base: int
) -> int:
    """One log's columns mapped in place (iot_map_ids): times shifted, function and path ids
    through their tables, stack ids moved by `base`; the top stack id."""
    nat = require_native()
    return int(
        nat.lib.iot_map_ids(
            len(cols["t_start"]),
            nat.ptr("int64_t *", cols["t_start"]),
            shift,
            nat.ptr("int16_t *", cols["fn"]),
            nat.ptr("int16_t *", fn_lut),
            len(fn_lut),
            nat.ptr("int32_t *", cols["path"]),
            nat.ptr("int32_t *", path_lut),
            len(path_lut),
            nat.ptr("int32_t *", cols["stack"]),
            base,
            nat.ptr("uint16_t *", cols["nulls"]),
            NULL_BITS["path"],
            NULL_BITS["stack"],
        )
    )


def _sort_order(t_start: np.ndarray) -> np.ndarray | None:
    """The stable order by start time, None if the events are in order already.  Each thread's
    events are in order already, so the times are runs: in C they are merged through a heap of
    their heads into an int32 order, in 4 KiB pages (numpy's argsort makes an int64 order and a
    scratch buffer, in huge pages; it is no faster with 16 runs, slower with runs shorter than
    ~64 events: then it is used instead)."""
    n = len(t_start)
    if n < 2:
        return None
    nat = require_native()
    if n < 2**31:
        order = empty(n, np.int32)
        runs = nat.lib.iot_merge_order(
            nat.ptr("int64_t *", t_start), n, max(64, n >> 6), nat.ptr("int32_t *", order)
        )
        if runs == 1:
            return None
        if runs > 1:
            return order
        del order
    if bool(np.all(t_start[1:] >= t_start[:-1])):
        return None
    return np.argsort(t_start, kind="stable")


class _Take:
    """Gathers through the sort's order (None: the events are in order), in C when compiled:
    there the order is int32 and no index array is ever widened to intp, as numpy's take and
    fancy indexing do.  A column taken through the order is written into a buffer of the same
    size that is no longer needed (the previous column taken, the order once done): memory
    already faulted in costs nothing, new memory costs a page fault per 4 KiB, and on a VM more
    (docs/analyzer.md)."""

    def __init__(self, order: np.ndarray | None) -> None:
        self.nat = require_native()
        if order is not None and order.dtype != np.int32 and len(order) < 2**31:
            narrow = empty(len(order), np.int32)
            np.copyto(narrow, order, casting="unsafe")
            order = narrow
        self.order = order
        self.spare: dict[int, list[np.ndarray]] = {}  # by size in bytes

    def give(self, a: np.ndarray) -> None:
        """`a` is no longer needed (nothing else refers to it): its memory may be reused."""
        if a.ndim == 1 and a.flags.c_contiguous and a.flags.writeable:
            self.spare.setdefault(a.nbytes, []).append(a)

    def new(self, n: int, dtype: Any) -> np.ndarray:
        """An uninitialised array: a spare buffer of that size (else half of one twice as large,
        the other half a spare), else new memory."""
        dt = np.dtype(dtype)
        size = n * dt.itemsize
        free = self.spare.get(size)
        if free:
            return free.pop().view(dt)
        twice = self.spare.get(2 * size)
        if twice and size:
            buf = twice.pop().view(np.uint8)
            self.give(buf[size:])
            return buf[:size].view(dt)
        return empty(n, dt)

    def done(self) -> None:
        """The order is no longer needed: its memory becomes a spare."""
        if self.order is not None:
            self.give(self.order)
        self.order = None

    def _c(
        self, src: np.ndarray, idx: np.ndarray | None, dtype: np.dtype[Any], n: int
    ) -> np.ndarray:
        nat = self.nat
        out = self.new(n, dtype)
        sp = nat.ffi.from_buffer(src)
        ip = nat.ffi.NULL if idx is None else nat.ffi.from_buffer(idx)
        isize = 0 if idx is None else idx.dtype.itemsize
        dp = nat.ffi.from_buffer(out, require_writable=True)
        if nat.lib.iot_take(sp, src.itemsize, len(src), ip, isize, n, dp, out.itemsize):
            raise IndexError("index out of range")
        return out

    def __call__(self, a: np.ndarray, dtype: Any = None) -> np.ndarray:
        """a[order] as `dtype` (an integer type; default: a's); `a` is given up (its memory may
        be reused: the caller must hold no other reference to it)."""
        dt = a.dtype if dtype is None else np.dtype(dtype)
        if self.order is None:
            return a if a.dtype == dt else a.astype(dt)
        if a.dtype.kind in "iub" and dt.kind in "iub":
            out = self._c(a, self.order, dt, len(self.order))
        elif a.dtype == dt:
            out = np.take(a, self.order, out=self.new(len(self.order), dt))
        else:
            out = np.take(a, self.order).astype(dt)
        self.give(a)
        return out

    def lut(self, table: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """table[idx] for small integer codes `idx` (not through the order)."""
        if table.dtype.kind in "iub" and idx.dtype.kind in "iu":
            return self._c(table, idx, table.dtype, len(idx))
        return table[idx]

    def null_masks(self, nulls: np.ndarray, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        """(nulls[order] & NULL_BITS[name]) != 0 for each name, in one pass in C; `nulls` is given
        up."""
        n = len(nulls) if self.order is None else len(self.order)
        out = {k: self.new(n, bool) for k in names}
        nat = self.nat
        bits = np.array([NULL_BITS[k] for k in names], dtype=np.uint16)
        keep = [nat.ffi.from_buffer(m, require_writable=True) for m in out.values()]
        ptrs = nat.ffi.new("uint8_t *[]", [nat.ffi.cast("uint8_t *", p) for p in keep])
        idx = nat.ffi.NULL if self.order is None else nat.ptr("int32_t *", self.order)
        if nat.lib.iot_null_masks(
            nat.ffi.from_buffer("uint16_t[]", nulls),
            len(nulls),
            idx,
            n,
            nat.ffi.from_buffer("uint16_t[]", bits),
            len(names),
            ptrs,
        ):
            raise IndexError("index out of range")
        if self.order is not None:
            self.give(nulls)
        return out


def _code_dtype(ncats: int) -> np.dtype[Any]:
    """The dtype pandas keeps the codes of `ncats` categories in."""
    return np.dtype(np.int8 if ncats < 127 else np.int16 if ncats < 32767 else np.int32)


CACHED_CATEGORIES = 4096  # the most categories of a column whose dtype is kept (_categories)


@functools.lru_cache(maxsize=64)
def _categories(cats: tuple[str, ...]) -> pd.CategoricalDtype:
    """The dtype of a categorical column of these categories, made (their uniqueness checked)
    once per process: the same lists (the functions', the sources') come in every part."""
    return pd.CategoricalDtype(pd.Index(list(cats), dtype=object))


def _codes(a: np.ndarray, ncats: int) -> np.ndarray:
    """Category codes in the dtype pandas keeps them in (so from_codes does not copy)."""
    dt = _code_dtype(ncats)
    return a if a.dtype == dt else a.astype(dt)


def _masked(values: np.ndarray, null: np.ndarray) -> pd.arrays.IntegerArray:
    """A nullable integer column over `values` (no copy); Int32/Int64 by the values' dtype."""
    return pd.arrays.IntegerArray(values, null)


def _events(
    processes: pd.DataFrame,
    raw: RawColumns,
    fdict: _Dict,
    paths: _Dict,
    hosts: _Dict,
    own: np.ndarray | None = None,
) -> tuple[pd.DataFrame, frozenset[tuple[int, int]]]:
    """The events table, in time order, from `raw` (consumed: each column is given up once
    taken through the order, and its memory holds the next one), and the (proc, t_start) of its
    writable mmaps (Trace.writable_maps).  raw["src"]: per event, the index of its source in
    SOURCE_NAMES (absent: all from the shim).  `own`: the rows of `processes` the events may be
    of (a part's: the others' per-process values are not read, O(processes) each part)."""
    a = raw.arrays
    n = len(raw)
    take = _Take(_sort_order(a["t_start"]))
    # in an order where each column taken finds the previous one's memory free (the int32 path
    # ids become int8 codes: their buffer holds the first int32 column; the order, the last)
    path = take(a.pop("path"), _code_dtype(len(paths.items)))
    cols: dict[str, Any] = {}
    for k in ("tid", "errno", "fd", "flags", "stack", "proc"):
        cols[k] = take(a.pop(k))
    for k in ("t_start", "t_end", "ret", "offset", "req"):
        cols[k] = take(a.pop(k))
    fn = take(a.pop("fn"), _code_dtype(len(fdict.items)))
    masks = take.null_masks(a.pop("nulls"), ("fd", "offset", "req", "flags", "mode_w"))
    src = take(a.pop("src")) if "src" in a else None
    cls = take(a.pop("cls")) if "cls" in a else None
    via = take(a.pop("via")) if "via" in a else np.zeros(n, dtype=np.int8)
    take.done()
    proc = cols.pop("proc")
    w = masks.pop("mode_w")  # the mmaps with PROT_WRITE: few, kept as keys, not as a column
    w &= fn == (fdict.items.index("mmap") if "mmap" in fdict.items else -1)
    writable = frozenset(zip(proc[w].tolist(), cols["t_start"][w].tolist(), strict=True))
    del w

    # per process (a row of `processes` per proc, in order: its host coded already)
    m = len(processes)
    of = processes if own is None else processes.iloc[own]
    codes = pd.Categorical(of["host"], categories=hosts.items).codes if m else [0]
    rank = of["rank"]
    host_code = _at(own, m, np.asarray(codes, dtype=np.int32), 0)
    host_code = host_code.astype(_code_dtype(len(hosts.items)))
    rank_val, rank_null, pid_val = (
        np.zeros(1, np.int32),
        np.ones(1, dtype=bool),
        np.zeros(1, np.int32),
    )
    if m:
        rank_val = _at(own, m, rank.to_numpy(dtype=np.int32, na_value=0), 0)
        rank_null = _at(own, m, rank.isna().to_numpy(), False)
        pid_val = _at(own, m, of["pid"].to_numpy(dtype=np.int32), 0)
    if src is None:  # zero pages: memory only if written to
        src = np.zeros(n, dtype=np.int8)
    if cls is None:
        cls = np.zeros(n, dtype=np.int8)
        missed = np.zeros(n, dtype=bool)
    else:
        missed = np.equal(cls, CLASS_NAMES.index("bypass"), out=take.new(n, bool))

    op_lut = np.array([schema.OP_NAMES.index(schema.op_of(f)) for f in fdict.items], np.int8)
    rule_lut = np.array([schema.bytes_rule(f) for f in fdict.items], np.int8)
    ret = cols["ret"]
    rule = take.lut(rule_lut, fn)
    bytes_null = np.equal(rule, 0, out=take.new(n, bool))
    neg = np.less(ret, 0, out=rule.view(bool))
    bytes_null |= neg  # a failed stdio read may still have moved bytes
    take.give(rule)
    del rule, neg
    bytes_val = take.new(n, np.int64)
    np.copyto(bytes_val, ret)
    np.copyto(bytes_val, 0, where=bytes_null)

    def cat(codes: np.ndarray, cats: list[str]) -> pd.Categorical:
        if len(cats) > CACHED_CATEGORIES:  # a part's many paths: not kept past the part
            dtype = pd.CategoricalDtype(pd.Index(cats, dtype=object))
        else:
            dtype = _categories(tuple(cats))
        return pd.Categorical.from_codes(_codes(codes, len(cats)), dtype=dtype, validate=False)

    # a part of one process (most are): its per-process columns are constants, no gathers
    one = int(proc[0]) if n and proc.min() == proc.max() else None

    def of_proc(table: np.ndarray) -> np.ndarray:
        return take.lut(table, proc) if one is None else np.full(n, table[one], table.dtype)

    stack = cols.pop("stack")
    out: dict[str, Any] = {
        "source": cat(src, SOURCE_NAMES),
        "host": cat(of_proc(host_code), hosts.items),
        "rank": _masked(
            of_proc(rank_val),
            of_proc(rank_null) if rank_null.any() else np.zeros(n, dtype=bool),
        ),
        "pid": of_proc(pid_val),
        "tid": cols.pop("tid"),
        "proc": proc,
        "function": cat(fn, fdict.items),
        "op": cat(take.lut(op_lut, fn), schema.OP_NAMES),
        "fd": _masked(cols.pop("fd"), masks["fd"]),
        "path": cat(path, paths.items),
        "offset": _masked(cols.pop("offset"), masks["offset"]),
        "req": _masked(cols.pop("req"), masks["req"]),
        "bytes": _masked(bytes_val, bytes_null),
        "ret": cols.pop("ret"),
        "errno": cols.pop("errno"),
        "t_start": cols.pop("t_start"),
        "t_end": cols.pop("t_end"),
        "class": cat(cls, CLASS_NAMES),
        "via": cat(via, VIA_NAMES),
        "missed": missed,
        "stack_id": _masked(stack, np.less(stack, 0, out=take.new(n, bool))),
        "flags": _masked(cols.pop("flags"), masks["flags"]),
    }
    return pd.DataFrame(out, copy=False), writable


def _at(rows: np.ndarray | None, m: int, values: np.ndarray, other: Any) -> np.ndarray:
    """Per process (m rows) `values` at `rows` (None: every row), `other` elsewhere."""
    if rows is None or not m:
        return values
    out = np.full(m, other, dtype=values.dtype)
    out[rows] = values
    return out


def _add_data(events: pd.DataFrame, logs: list[_Log], t0: int) -> None:
    """`iotrace run -s N`: the bytes kept of each read/write call's buffer, as a `data` column
    of text escaped as `show` and strace print it (None where none was kept)."""
    from iotrace.calls import DATA_FUNCS
    from iotrace.text import data_text

    kept = {
        (lg.proc, tid, t + lg.shift - t0): data_text(b)
        for lg in logs
        for (tid, t), b in lg.data.items()
    }
    rows = zip(events["proc"].tolist(), events["tid"].tolist(), events["t_start"].tolist(),
               events["function"].isin(DATA_FUNCS).tolist(), strict=True)  # fmt: skip
    events["data"] = pd.Series([kept.get((p, i, t)) if ok else None for p, i, t, ok in rows],
                               index=events.index, dtype=object)  # fmt: skip


def _chunking(logs: list[_Log], t0: int) -> pd.DataFrame:
    """HDF5's SHAPE and SELECTION records, one row per event they belong to (proc, tid, t_start
    as in `events`): at a dataset's open its datatype size, dimensions and chunk dimensions
    ("AxB"; "" not chunked); at a read or write its selection's bytes in the file and the chunks
    it touched, and in part (-1: not chunked)."""
    rows = [
        (lg.proc, tid, t + lg.shift - t0, size, "x".join(map(str, dims)),
         "x".join(map(str, chunk)), -1, -1, -1)
        for lg in logs
        for (tid, t), (size, dims, chunk) in lg.shapes.items()
    ] + [
        (lg.proc, tid, t + lg.shift - t0, -1, "", "", nbytes,
         -1 if n is None else n, -1 if part is None else part)
        for lg in logs
        for (tid, t), (nbytes, n, part) in lg.selections.items()
    ]  # fmt: skip
    cols = ["proc", "tid", "t_start", "size", "dims", "chunk", "bytes", "chunks", "partial"]
    return pd.DataFrame(rows, columns=cols)


def _int_or(v: Any, default: int) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else default


def _per_process(
    logs: list[_Log], t_end: np.ndarray, proc: np.ndarray, nproc: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per process: the last end of its events and their number.  A log's events are one slice
    of the columns (before the sort): no pass over `proc` but for the stracer's rows after them."""
    last = np.full(nproc, np.iinfo(np.int64).min, dtype=np.int64)
    counts = np.zeros(nproc, dtype=np.intp)
    pos = 0
    for lg in logs:
        if lg.n_events:
            top = int(t_end[pos : pos + lg.n_events].max())
            last[lg.proc] = max(int(last[lg.proc]), top)
            counts[lg.proc] += lg.n_events
        pos += lg.n_events
    if len(proc) > pos:
        np.maximum.at(last, proc[pos:], t_end[pos:])
        counts += np.bincount(proc[pos:], minlength=nproc)
    return last, counts


def _processes(
    logs: list[_Log],
    runs: list[dict[str, Any]],
    last: np.ndarray,
    counts: np.ndarray,
    hosts: _Dict,
    st: stracer_src.Result,
    memo: _Memo,
    st_key: tuple[Any, ...],
) -> pd.DataFrame:
    """A row per log and per stracer-only process.  A part's load (_Memo) makes those of its own
    logs (and of those listed without a header) and takes the others' as the worker made them
    once (none of theirs decoded: no events, no exit record), and the stracer-only processes'
    unless it holds their events: not a row per process of the trace per part.  `st_key`: the
    job's start, then what names the stracer-only processes."""
    n = len(logs)
    if not n + len(st.processes):
        return schema.empty_frame(schema.PROCESS_COLUMNS)
    t0 = st_key[0]
    by_pid = {(r.get("host"), r.get("pid")): r for r in runs}
    starts = memo(("starts", *st_key), lambda: _starts(logs, st, t0))
    none = np.full(n + len(st.processes), np.iinfo(np.int64).min, dtype=np.int64)
    zero = np.zeros(n + len(st.processes), dtype=np.intp)
    fresh = memo.fresh(logs)
    rows = [_log_row(logs[i], t0, last, counts, by_pid, starts, st) for i in fresh]
    frame = None
    if len(fresh) == n:
        host_of = [r["host"] for r in rows]
    else:
        frame, host_of, order = memo(("processes", *st_key, repr(runs)), lambda: (
            _typed_frame(b := [_log_row(lg, t0, none, zero, by_pid, starts, st)
                               for lg in memo.listed], schema.PROCESS_COLUMNS),
            h := [r["host"] for r in b], list(dict.fromkeys(h))))  # fmt: skip
        if any(host_of[i] != r["host"] for i, r in zip(fresh, rows, strict=True)):
            host_of = list(host_of)  # a header written since the listing: the order anew
            for i, r in zip(fresh, rows, strict=True):
                host_of[i] = r["host"]
            order = list(dict.fromkeys(host_of))
        host_of = order
    for h in dict.fromkeys(host_of):  # coded in the rows' order
        hosts.code(h)
    for h in memo(("stracer hosts", *st_key), lambda: list(dict.fromkeys(
            r["host"] for r in st.processes))):  # fmt: skip
        hosts.code(h)

    def stracer_rows(last: np.ndarray, counts: np.ndarray) -> pd.DataFrame:
        return _typed_frame([{**r, "end": max(r["end"], int(last[r["proc"]])),
                              "events": int(counts[r["proc"]])} for r in st.processes],
                            schema.PROCESS_COLUMNS)  # fmt: skip

    if memo.memo is None or counts[n:].any() or (last[n:] != none[n:]).any():
        st_frame = stracer_rows(last, counts)  # (a part holds their events: the first)
    else:
        st_frame = memo(("stracer rows", *st_key), lambda: stracer_rows(none, zero))
    made = _typed_frame(rows, schema.PROCESS_COLUMNS)
    pieces = [made] if frame is None else _spliced(frame, fresh, made)
    return pd.concat([p for p in [*pieces, st_frame] if len(p)] or [made], ignore_index=True)


def _starts(
    logs: list[_Log], st: stracer_src.Result, t0: int
) -> dict[tuple[Any, Any], list[tuple[int, bool]]]:
    """The starts of each (host, pid)'s images, and whether a fork began each: a log followed
    by another of the same process (an exec'd image, not `forked`: not another process of a
    reused pid, iotrace.incarnation) ended with an exec."""
    starts: dict[tuple[Any, Any], list[tuple[int, bool]]] = {}
    for lg in logs:
        key = (lg.header.get("host"), lg.header.get("pid"))
        t = int(lg.header.get("clock", {}).get("real", 0))
        starts.setdefault(key, []).append((t, bool(lg.header.get("forked"))))
    for r in st.processes:
        starts.setdefault((r["host"], r["pid"]), []).append((r["start"] + t0, bool(r["forked"])))
    return starts


def _log_row(
    lg: _Log,
    t0: int,
    last: np.ndarray,
    counts: np.ndarray,
    by_pid: dict[tuple[Any, Any], dict[str, Any]],
    starts: dict[tuple[Any, Any], list[tuple[int, bool]]],
    st: stracer_src.Result,
) -> dict[str, Any]:
    """A log's row of processes."""
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
        # the end of the stracer's image of the pid this log began in (not another process's
        # of a reused pid: iotrace.incarnation)
        ends = st.exits.get((str(h.get("host", "?")), _int_or(h.get("pid"), 0)), [])
        i = bisect.bisect_right([e[0] for e in ends], start) - 1
        ex = ends[max(i, 0)][1:] if ends else None
        mine = int(h.get("clock", {}).get("real", 0))
        later = [s for s in starts.get(key, []) if s[0] > mine]
        if later and not min(later)[1]:  # its next image is its own (not a fork's)
            ended = "exec"
        elif isinstance(rc, int):
            status, ended = (rc, "exit") if rc >= 0 else (None, f"signal {-rc}")
        elif ex is not None and ex[1] is not None and not ex[2]:
            # the stracer saw the process end
            end = max(end, ex[0])
            status, ended = (ex[1], "exit") if ex[1] >= 0 else (None, f"signal {-ex[1]}")
    argv = h.get("argv") or []
    return {
        "proc": lg.proc,
        "source": lg.source.name,
        "host": str(h.get("host", "?")),
        "rank": h.get("rank") if isinstance(h.get("rank"), int) else None,
        "pid": _int_or(h.get("pid"), 0),
        "ppid": h.get("ppid") if isinstance(h.get("ppid"), int) else None,
        # one object per distinct command (the worker's processes frame holds a row a log)
        "command": sys.intern(" ".join(str(a) for a in argv)),
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


def _spliced(base: pd.DataFrame, at: list[int], made: pd.DataFrame) -> list[pd.DataFrame]:
    """The pieces of `base` with its rows `at` (sorted) those of `made`, in order."""
    pieces, prev, k = [], 0, 0
    for run in np.split(np.asarray(at, dtype=np.int64), np.flatnonzero(np.diff(at) != 1) + 1):
        if not len(run):
            continue
        pieces += [base.iloc[prev : int(run[0])], made.iloc[k : k + len(run)]]
        prev, k = int(run[-1]) + 1, k + len(run)
    return [*pieces, base.iloc[prev:]]


def _typed_frame(rows: list[dict[str, Any]], dtypes: dict[str, Any]) -> pd.DataFrame:
    """The frame of `rows` (dicts with every key of `dtypes`), each column made in its dtype:
    what DataFrame(rows).astype(dtypes) makes, without its per-column conversions (~5 ms for
    the 48 columns of a few kernel readings, paid by every part)."""
    cols: dict[str, Any] = {}
    for k, dt in dtypes.items():
        vals = [r[k] for r in rows]
        if isinstance(dt, np.dtype):  # converted as astype does (wrapping, not refusing)
            cols[k] = np.asarray(vals).astype(dt, copy=False)
        elif dt == "object":
            cols[k] = pd.Series(vals, dtype=object)
        else:
            cols[k] = pd.array(vals, dtype=dt)
    return pd.DataFrame(cols, copy=False)
