"""The stracer's own log: one msgpack file per `iotrace run`, in the trace directory
(docs/format.md, "The stracer log").  A header map, then records, appended as they happen; each
flush ends with a SEAL record, the checksum of every byte since the previous seal."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import msgpack
import xxhash

from iotrace.calls import SYSCALLS
from iotrace.format import (
    CLOCK_PAIR_TRIES,
    MISSED,
    MISSED_SIZES,
    MS,
    SK,
    SKIO,
    SKIO_LENS,
    SP,
    SPROC,
    SRec,
)
from iotrace.record import field, record
from iotrace.tracedir import TraceDir
from iotrace.tracefile import TraceFormatError, _Pread, open_regular, torn_tail

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing for type checkers only: ~2 ms of the stracer's start (issue 19)
    from typing import IO, Any

FORMAT = "iotrace-stracer"
VERSION = 8  # 2: t_exit; 3: class, SITE the libc function; 4: the other end; 5: via; 6: SEAL;
# 7: STOP; 8: KIO's shim sums
READABLE = (6, 7, 8)
SUFFIX = ".stracer"
MAX_TORN = 1 << 20  # bytes: a record cut short by a kill is no longer than this
MAX_HEADER = 1 << 20  # bytes: a header is no longer than this
KEPT = frozenset({SRec.PROC, SRec.KIO})  # records the Writer keeps as it writes them
WINDOW = 1 << 20  # bytes the reader reads at a time (the first: MAX_HEADER at least)
READ_SIZE = 1 << 16  # the least the reader's unpacker may hold (a log's bytes, else)


def clock_pair(
    mono: Callable[[], int] = time.monotonic_ns,
    real: Callable[[], int] = time.time_ns,
) -> dict[str, int]:
    """The header's (CLOCK_MONOTONIC, CLOCK_REALTIME) pair, as the shim reads its own
    (src/iotrace/_clockpair.h): the real clock between two reads of the monotonic one, the
    narrowest of CLOCK_PAIR_TRIES brackets, `mono` its midpoint.  Two reads back to back were
    apart by a preemption now and then (64 ms at a load of 19): every time of this log was then
    that much late against the shims', its stops outside the calls they held and the loader's
    reads of exec'd images in no process of the report."""
    brackets = [(mono(), real(), mono()) for _ in range(CLOCK_PAIR_TRIES)]
    a, r, b = min(brackets, key=lambda x: x[2] - x[0])
    return {"mono": a + (b - a) // 2, "real": r}


class Writer:
    """A fault (full disk, RLIMIT_FSIZE, the trace dir gone) stops the log, never the stracer:
    the command runs on, `error` says why, and what was written stays readable (a torn tail)."""

    def __init__(self, trace_dir: TraceDir, argv: list[str]) -> None:
        host = os.uname().nodename
        self.path = trace_dir.path / f"{host}.{os.getpid()}{SUFFIX}"
        self.f: IO[bytes] | None = None
        self.error: int | None = None  # errno of the fault that stopped the log
        # paths read from a tracee are bytes: kept as they are (str with surrogates)
        self.pk = msgpack.Packer(unicode_errors="surrogateescape")
        self.hash = xxhash.xxh3_64()
        self.last_flush = time.monotonic()
        self.n = 0
        self.kept: list[list[Any]] = []  # the PROC and KIO records: the end line's (kio.run_job)
        header = {
            "format": FORMAT,
            "version": VERSION,
            "host": host,
            "pid": os.getpid(),
            "argv": argv,
            "clock": clock_pair(),
            "syscalls": {s.name: list(s.args) for s in SYSCALLS},
            "site_frame": ["pc", "module", "offset", "function", "file", "line"],
        }
        try:  # in the checked directory, O_EXCL|O_NOFOLLOW (tracedir)
            name, self.f = trace_dir.create_unique(f"{host}.{os.getpid()}", SUFFIX)
            self.path = trace_dir.path / name
        except OSError as exc:
            self.error = exc.errno or 0
            return
        self._write(self.pk.pack(header), True)

    def _write(self, data: bytes, flush: bool) -> None:
        if self.f is None:
            return
        try:
            self.f.write(data)
            self.hash.update(data)
            if flush:  # seal what was written since the last seal, and hand it to the kernel
                self.f.write(self.pk.pack((SRec.SEAL, self.hash.intdigest())))
                self.hash.reset()
                self.f.flush()
                self.last_flush = time.monotonic()
        except OSError as exc:
            self.error = exc.errno or 0
            f, self.f = self.f, None
            with contextlib.suppress(OSError):
                f.close()  # may flush a little more; the rest is dropped
            with contextlib.suppress(OSError, ValueError):
                os.close(f.fileno())

    def rec(self, *fields: Any, flush: bool = False) -> None:
        if fields[0] in KEPT:
            self.kept.append(list(fields))
        self.n += 1
        if not flush and self.n & 31 == 0:  # a hot loop looks at the clock every 32 records
            flush = time.monotonic() - self.last_flush > 0.2
        self._write(self.pk.pack(fields), flush)

    def raw(self, data: bytes, n: int) -> None:
        """n records already encoded (by the C loop, as the Packer would)."""
        self.n += n
        self._write(data, time.monotonic() - self.last_flush > 0.2)

    def close(self) -> None:
        self._write(b"", True)
        if self.f is not None:
            f, self.f = self.f, None
            try:
                f.close()
            except OSError as exc:
                self.error = exc.errno or 0


@record
class StracerLog:
    path: Path
    header: dict[str, Any]
    missed: list[list[Any]] = field(default_factory=list)
    sites: dict[int, list[list[Any]]] = field(default_factory=dict)
    site_fn: dict[int, str | None] = field(default_factory=dict)  # the libc function, if any
    procs: list[list[Any]] = field(default_factory=list)
    counts: dict[int, dict[str, int]] = field(default_factory=dict)
    kio: list[list[Any]] = field(default_factory=list)  # KIO records
    stops: list[list[Any]] = field(default_factory=list)  # STOP records
    returncode: int | None = None
    complete: bool = False  # an END record: the stracer finished


class StracerLogError(TraceFormatError):
    pass


def _int(v: Any) -> bool:
    return type(v) is int  # msgpack gives exact types: a bool is not an int here


# format.fits for each MISSED field, as the exact types msgpack gives (a check of type(v) per
# field, with no Python call per field: the end line and `iotrace missed` read every record)
_KIND_TYPES: dict[str, tuple[type, ...]] = {
    "uint": (int,), "int": (int,), "id": (int,), "aux": (int, list, tuple), "str": (str,),
    "bin": (bytes,), "list": (list, tuple), "map": (dict,),
}  # fmt: skip
_MISSED_TYPES = tuple(
    frozenset(_KIND_TYPES[f.kind] + ((type(None),) if f.nullable else ())) for f in MISSED
)


def _opt(v: Any, t: type) -> bool:
    return v is None or (_int(v) if t is int else isinstance(v, t))


def _frame_ok(fr: Any) -> bool:
    """[pc, module, offset, function, file, line]"""
    return (
        isinstance(fr, list) and len(fr) == 6 and _int(fr[0]) and _opt(fr[1], str)
        and _opt(fr[2], int) and _opt(fr[3], str) and _opt(fr[4], str) and _opt(fr[5], int)
    )  # fmt: skip


# a MISSED record's `class` (docs/stracer.md, "Classification")
CLASSES = ("libc", "bypass", "attached", "killed")
_I32 = range(-(1 << 31), 1 << 31)  # pids, tids, sites, descriptors: the readers' int32 columns
_TIME = range(1 << 63)  # CLOCK_MONOTONIC ns: int64
_ERRNO = range(4096)  # the kernel's errnos: -4095..-1 as a syscall's return


def _missed_ok(rec: list[Any]) -> bool:
    """A MISSED record's values (types checked) in the ranges its readers hold them in."""
    t_exit, fd2 = rec[MS.t_exit], rec[MS.fd2] if len(rec) > MS.fd2 else None
    return (
        rec[MS.t] in _TIME and (t_exit is None or t_exit in _TIME) and rec[MS.pid] in _I32
        and rec[MS.tid] in _I32 and rec[MS.errno] in _ERRNO and rec[MS.site] in _I32
        and (rec[MS.fd] is None or rec[MS.fd] in _I32) and (fd2 is None or fd2 in _I32)
        and rec[MS["class"]] in CLASSES
    )  # fmt: skip


def _record_ok(rec: Any) -> bool:
    """A record as docs/format.md has it ("The stracer log")."""
    if not isinstance(rec, list) or not rec or not _int(rec[0]):
        return False
    kind, n = rec[0], len(rec)
    if kind == SRec.MISSED:  # the fields of format.py's MISSED
        return (
            n in MISSED_SIZES
            and all(map(frozenset.__contains__, _MISSED_TYPES[1:n], map(type, rec[1:])))
            and _missed_ok(rec)
        )
    if kind == SRec.SITE:
        return (
            n == 4 and _int(rec[1]) and isinstance(rec[2], list) and all(map(_frame_ok, rec[2]))
            and _opt(rec[3], str)
        )  # fmt: skip
    if kind == SRec.KIO:  # format.SKIO: its trailing lists optional
        return (
            SK.threads <= n <= len(SKIO) and _int(rec[SK.t]) and _int(rec[SK.pid])
            and isinstance(rec[SK.when], str)
            and all(isinstance(v, list) and all(map(_int, v)) for v in rec[SK.counters : SK.when])
            and all(v is None or (isinstance(v, list) and len(v) == SKIO_LENS[f.name]
                                  and all(map(_int, v)))
                    for v, f in zip(rec[SK.threads :], SKIO[SK.threads :], strict=False))
        )  # fmt: skip
    if kind == SRec.PROC:  # format.SPROC
        return (
            n == len(SPROC) and _int(rec[SP.t]) and _int(rec[SP.pid]) and _opt(rec[SP.ppid], int)
            and isinstance(rec[SP.what], str)  # fork, exec, shim, exit, untraced; others skipped
            and (not isinstance(rec[SP.detail], dict) or _opt(rec[SP.detail].get("exe"), str))
        )  # fmt: skip
    if kind == SRec.COUNTS:
        return (
            n == 3
            and _int(rec[1])
            and isinstance(rec[2], dict)
            and all(isinstance(k, str) and _int(v) for k, v in rec[2].items())
        )
    if kind == SRec.END:
        return n == 3 and _int(rec[1]) and _opt(rec[2], int)
    if kind == SRec.STOP:
        return n == 4 and _int(rec[1]) and _int(rec[2]) and _int(rec[3])
    return kind == SRec.SEAL and n == 2 and _int(rec[1])


# the sizes of a packed [SEAL, checksum]: fixarray, kind, then the checksum as fixint, uint8,
# uint16, uint32 or uint64
_SEAL_SIZES = (3, 4, 5, 7, 11)


def _ends_with_seal(data: bytes, pos: int) -> bool:
    """Whether the bytes after pos end with a whole SEAL record.  Every flush ends with one, so
    a killed stracer's torn tail ends inside a flush; a tail that runs to a seal was written
    whole, and a record in it that reads past the end had its length damaged."""
    for k in _SEAL_SIZES:
        if len(data) - k < pos:
            break
        try:
            rec = msgpack.unpackb(data[len(data) - k :])
        except (ValueError, TypeError, msgpack.FormatError, msgpack.StackError, msgpack.ExtraData):
            continue
        if isinstance(rec, list) and len(rec) == 2 and rec[0] == SRec.SEAL and _int(rec[1]):
            return True
    return False


def _header(
    up: msgpack.Unpacker, path: Path, more: Callable[[], bool] = lambda: False
) -> dict[str, Any]:
    """The header, the log's first object, checked (`more`: feeds the unpacker more bytes)."""
    while True:
        try:
            header = up.unpack()
            break
        except msgpack.OutOfData:
            if not more():
                raise StracerLogError(f"{path}: not a stracer log") from None
        except (ValueError, TypeError, msgpack.FormatError, msgpack.StackError):
            raise StracerLogError(f"{path}: not a stracer log") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise StracerLogError(f"{path}: not a stracer log")
    if header.get("version") not in READABLE:
        raise StracerLogError(
            f"{path}: stracer log version {header.get('version')!r} unsupported "
            f"(this iotrace reads version {VERSION})"
        )
    clock = header.get("clock", {})
    if not isinstance(clock, dict) or not all(_int(clock.get(k, 0)) for k in ("mono", "real")):
        raise StracerLogError(f"{path}: corrupt stracer log (header field 'clock')")
    kinds = header.get("syscalls", {})  # syscall -> its arguments' kinds
    if (not isinstance(header.get("host", ""), str) or not isinstance(kinds, dict)
            or not all(isinstance(k, list) and all(isinstance(a, str) for a in k)
                       for k in kinds.values())):  # fmt: skip
        raise StracerLogError(f"{path}: corrupt stracer log (header)")
    return header


def read_header(path: Path) -> dict[str, Any]:
    """A stracer log's header alone (its records unread)."""
    with open_regular(path) as fd:
        size = min(os.fstat(fd).st_size, MAX_HEADER)
        data = os.pread(fd, size, 0)
    up = msgpack.Unpacker(raw=False, strict_map_key=False, unicode_errors="surrogateescape",
                          max_buffer_size=max(len(data), 1))  # fmt: skip
    up.feed(data)
    return _header(up, path)


def read(
    path: Path,
    on_missed: Callable[[list[Any]], None] | None = None,
    stops: bool = True,
    skip: frozenset[int] = frozenset(),
    at: Callable[[int, int, list[Any]], None] | None = None,
) -> StracerLog:
    """The whole log, every record checked.  Only sealed bytes are trusted as they are: the
    unsealed tail of a stracer that was killed is read up to its last whole record.  A checksum
    that does not match, a record of the wrong shape: StracerLogError (one line).
    The bytes are read with pread a WINDOW at a time (tracefile._Pread, as the shim logs are),
    never whole.  `on_missed`: each MISSED record is given to it as it is read instead of kept
    (`missed` is then empty): a reader that only sums them holds none.  `stops`: keep the STOP
    records (one per stop of the app: only the analyzer's times need them).  `skip`: records of
    these kinds are passed over unchecked (for a reader that reads the log twice, checking
    each kind once: `iotrace missed`).  `at`: each MISSED and STOP record is given to it with
    its first byte and the byte after it, instead of kept (the analyzer's index of the log)."""
    with open_regular(path) as fd:
        return _read(path, _Pread(fd, os.fstat(fd).st_size), on_missed, stops, skip, at)


def records(path: Path, start: int, end: int) -> list[tuple[int, list[Any]]]:
    """The records in bytes [start, end) of a log read whole before (and checked there), each
    with its first byte."""
    with open_regular(path) as fd:
        data = os.pread(fd, end - start, start)
    up = msgpack.Unpacker(raw=False, strict_map_key=False, unicode_errors="surrogateescape",
                          max_buffer_size=max(len(data), 1))  # fmt: skip
    up.feed(data)
    out = []
    pos = 0
    for rec in up:
        out.append((start + pos, rec))
        pos = up.tell()
    return out


def _read(
    path: Path,
    data: _Pread,
    on_missed: Callable[[list[Any]], None] | None,
    stops: bool,
    skip: frozenset[int],
    at_: Callable[[int, int, list[Any]], None] | None = None,
) -> StracerLog:
    size = len(data)
    up = msgpack.Unpacker(
        raw=False,
        strict_map_key=False,
        unicode_errors="surrogateescape",
        read_size=READ_SIZE,
        max_buffer_size=max(size, READ_SIZE),
    )
    fed = 0  # bytes of the file given to the unpacker
    held: list[tuple[int, bytes]] = []  # the windows fed, from the first byte not hashed yet
    hasher = xxhash.xxh3_64()
    hashed = 0  # bytes up to here are in `hasher` (since the last seal)

    def hash_to(end: int) -> None:
        """The bytes [hashed, end) into the hasher; the windows before `end` let go."""
        nonlocal hashed
        for start, b in held:
            lo, hi = max(hashed, start), min(end, start + len(b))
            if lo < hi:
                hasher.update(memoryview(b)[lo - start : hi - start])
        hashed = max(hashed, end)
        held[:] = [(s, b) for s, b in held if s + len(b) > end]

    def more(start: int = 0) -> bool:
        """The next window fed, the bytes before `start` (where the record being read starts:
        before any seal to come) hashed; False at the end."""
        nonlocal fed
        if fed >= size:
            return False
        hash_to(start)
        b = data[fed : min(fed + WINDOW, size)]
        if not b:  # the file shrank under us: as a log cut short
            return False
        held.append((fed, b))
        up.feed(b)
        fed += len(b)
        return True

    more()
    header = _header(up, path, lambda: fed < MAX_HEADER and more())
    log = StracerLog(path, header)
    sealed = 0  # bytes up to the end of the last seal
    ended = False
    # where the next record starts (the unpacker's tell can be inside a record a window's end
    # cut: fed more, it goes on with it), and where the one read starts
    pos = at = up.tell()
    try:
        while True:
            at = pos
            try:
                rec = up.unpack()
            except msgpack.OutOfData:
                if more(at):
                    continue
                # a torn tail (the stracer was killed)
                if not torn_tail(data[at:size], MAX_TORN):  # a length gone wrong, not a tail
                    raise ValueError from None
                if _ends_with_seal(data, at):  # a whole flush follows: a length gone wrong
                    raise StracerLogError(f"{path}: corrupt stracer log (checksum mismatch "
                                          f"after byte {at})") from None  # fmt: skip
                break
            pos = up.tell()
            if skip and type(rec) is list and rec and rec[0] in skip:
                continue
            if not _record_ok(rec):
                raise ValueError
            kind = rec[0]
            if kind == SRec.SEAL:
                hash_to(at)
                if hasher.intdigest() != rec[1]:
                    raise StracerLogError(f"{path}: corrupt stracer log (checksum mismatch "
                                          f"before byte {at})")  # fmt: skip
                sealed = pos
                hasher.reset()
                hashed = sealed
                continue
            if ended:
                raise ValueError  # nothing but a seal after END
            if at_ is not None and kind in (SRec.MISSED, SRec.STOP):
                at_(at, pos, rec)
            elif kind == SRec.MISSED:
                if on_missed is None:
                    log.missed.append(rec)
                else:
                    on_missed(rec)
            elif kind == SRec.SITE:
                log.sites[rec[1]] = rec[2]
                log.site_fn[rec[1]] = rec[3] if len(rec) > 3 else None
            elif kind == SRec.PROC:
                log.procs.append(rec)
            elif kind == SRec.COUNTS:
                log.counts[rec[1]] = rec[2]
            elif kind == SRec.KIO:
                log.kio.append(rec)
            elif kind == SRec.STOP:
                if stops:
                    log.stops.append(rec)
            elif kind == SRec.END:
                log.returncode = rec[2]
                ended = True
    except (ValueError, TypeError, msgpack.FormatError, msgpack.StackError):
        raise StracerLogError(f"{path}: corrupt stracer log (bad record at byte {at})") from None
    log.complete = ended and sealed == size  # a finished log is sealed to its end
    return log


# A MISSED record's err that is no failure: the kernel's own code for a call a signal cut
# (include/linux/errno.h), which the app never sees -- the kernel restarts the call after the
# signal (recorded again then) or turns the code into EINTR.  Names and texts as strace's.
RESTART_ERRNOS = {
    512: ("ERESTARTSYS", "To be restarted if SA_RESTART is set"),
    513: ("ERESTARTNOINTR", "To be restarted"),
    514: ("ERESTARTNOHAND", "To be restarted if no handler"),
    516: ("ERESTART_RESTARTBLOCK", "Interrupted by signal"),
}


def app_errno(err: Any) -> int:
    """A MISSED record's err as the app's errno: 0 for none, and for a cut call (not failed)."""
    return 0 if not isinstance(err, int) or err in RESTART_ERRNOS else err


def missed_class(rec: list[Any]) -> str:
    """A MISSED record's class: "libc" (libc-internal) or "bypass" (missed I/O)."""
    return str(rec[MS["class"]])


def missed_via(rec: list[Any]) -> str | None:
    """The asynchronous engine ("io_uring", "aio") that carried a MISSED record's operation, or
    a note on an io_uring_setup record (version 5); None for a syscall of the app's own."""
    return str(rec[MS.via]) if len(rec) > MS.via and rec[MS.via] is not None else None


def log_files(trace_dir: Path) -> list[Path]:
    return sorted(trace_dir.glob(f"*{SUFFIX}"))
