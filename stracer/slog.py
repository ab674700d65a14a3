"""The stracer's own log: one msgpack file per `iotrace run`, in the trace directory
(docs/format.md, "The stracer log").  A header map, then records, appended as they happen."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import IO, Any

import msgpack

from iotrace.calls import SYSCALLS
from iotrace.tracedir import TraceDir

FORMAT = "iotrace-stracer"
VERSION = 5  # 2: t_exit; 3: class, SITE the libc function; 4: the other end; 5: via
READABLE = (1, 2, 3, 4, 5)
SUFFIX = ".stracer"


class SRec(IntEnum):
    # [0, t, pid, tid, syscall, args, ret, errno, site, fd, path, t_exit, class
    #  (, offset, fd2, path2, offset2: a call with two ends, version 4)
    #  (, via: an operation of an asynchronous engine, after nil ends, version 5)]
    MISSED = 0
    SITE = 1  # [1, site, [[pc, module, offset, function, file, line], ...], libc_function]
    PROC = 2  # [2, t, pid, ppid, what, detail]
    COUNTS = 3  # [3, pid, {"covered": n, "loader": n, "shim": n, "libc": n, "bypass": n}]
    END = 4  # [4, t, returncode]
    # [5, t, pid, [rchar, wchar, syscr, syscw, read_bytes, write_bytes, cancelled], own, when,
    #  threads]
    KIO = 5


class Writer:
    """A fault (full disk, RLIMIT_FSIZE, the trace dir gone) stops the log, never the stracer:
    the command runs on, `error` says why, and what was written stays readable (a torn tail)."""

    def __init__(self, trace_dir: TraceDir, argv: list[str]) -> None:
        host = socket.gethostname()
        self.path = trace_dir.path / f"{host}.{os.getpid()}{SUFFIX}"
        self.f: IO[bytes] | None = None
        self.error: int | None = None  # errno of the fault that stopped the log
        self.pk = msgpack.Packer()
        self.last_flush = time.monotonic()
        self.n = 0
        header = {
            "format": FORMAT,
            "version": VERSION,
            "host": host,
            "pid": os.getpid(),
            "argv": argv,
            "clock": {"mono": time.monotonic_ns(), "real": time.time_ns()},
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
            if flush:
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


@dataclass
class StracerLog:
    path: Path
    header: dict[str, Any]
    missed: list[list[Any]] = field(default_factory=list)
    sites: dict[int, list[list[Any]]] = field(default_factory=dict)
    site_fn: dict[int, str | None] = field(default_factory=dict)  # the libc function, if any
    procs: list[list[Any]] = field(default_factory=list)
    counts: dict[int, dict[str, int]] = field(default_factory=dict)
    kio: list[list[Any]] = field(default_factory=list)  # KIO records
    returncode: int | None = None
    complete: bool = False  # an END record: the stracer finished


class StracerLogError(Exception):
    pass


def read(path: Path) -> StracerLog:
    with open(path, "rb") as f:
        data = f.read()
    up = msgpack.Unpacker(raw=False, strict_map_key=False)
    up.feed(data)
    try:
        header = up.unpack()
    except (msgpack.OutOfData, ValueError, msgpack.FormatError, msgpack.StackError):
        raise StracerLogError(f"{path}: not a stracer log") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise StracerLogError(f"{path}: not a stracer log")
    if header.get("version") not in READABLE:
        raise StracerLogError(f"{path}: stracer log version {header.get('version')} unsupported")
    log = StracerLog(path, header)
    try:
        for rec in up:  # a torn tail (the stracer was killed) ends the loop quietly
            kind = rec[0]
            if kind == SRec.MISSED:
                log.missed.append(rec)
            elif kind == SRec.SITE:
                log.sites[rec[1]] = rec[2]
                log.site_fn[rec[1]] = rec[3] if len(rec) > 3 else None
            elif kind == SRec.PROC:
                log.procs.append(rec)
            elif kind == SRec.COUNTS:
                log.counts[rec[1]] = rec[2]
            elif kind == SRec.KIO:
                log.kio.append(rec)
            elif kind == SRec.END:
                log.returncode = rec[2]
                log.complete = True
    except (ValueError, msgpack.FormatError, msgpack.StackError, IndexError, TypeError):
        print(f"iotrace: warning: {path}: unreadable record; read up to it", file=sys.stderr)
    return log


def missed_class(rec: list[Any]) -> str:
    """A MISSED record's class: "libc" (libc-internal) or "bypass" (missed I/O).  Logs before
    version 3 did not tell: every record counted as missed I/O."""
    return str(rec[12]) if len(rec) > 12 else "bypass"


def missed_via(rec: list[Any]) -> str | None:
    """The asynchronous engine ("io_uring", "aio") that carried a MISSED record's operation, or
    a note on an io_uring_setup record (version 5); None for a syscall of the app's own."""
    return str(rec[17]) if len(rec) > 17 and rec[17] is not None else None


def log_files(trace_dir: Path) -> list[Path]:
    return sorted(trace_dir.glob(f"*{SUFFIX}"))
