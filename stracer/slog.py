"""The stracer's own log: one msgpack file per `iotrace run`, in the trace directory
(docs/format.md, "The stracer log").  A header map, then records, appended as they happen."""

from __future__ import annotations

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

FORMAT = "iotrace-stracer"
VERSION = 2  # 2: MISSED gained t_exit
READABLE = (1, 2)
SUFFIX = ".stracer"


class SRec(IntEnum):
    MISSED = 0  # [0, t, pid, tid, syscall, args, ret, errno, site, fd, path, t_exit]
    SITE = 1  # [1, site, [[pc, module, offset, function, file, line], ...]]
    PROC = 2  # [2, t, pid, ppid, what, detail]
    COUNTS = 3  # [3, pid, {"covered": n, "loader": n, "shim": n, "missed": n}]
    END = 4  # [4, t, returncode]


class Writer:
    def __init__(self, trace_dir: Path, argv: list[str]) -> None:
        host = socket.gethostname()
        self.path = trace_dir / f"{host}.{os.getpid()}{SUFFIX}"
        self.f: IO[bytes] = open(self.path, "wb")
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
        self.f.write(self.pk.pack(header))
        self.f.flush()

    def rec(self, *fields: Any, flush: bool = False) -> None:
        self.f.write(self.pk.pack(fields))
        self.n += 1
        if flush or self.n & 31 == 0:  # a hot loop looks at the clock every 32 records
            now = time.monotonic()
            if flush or now - self.last_flush > 0.2:
                self.f.flush()
                self.last_flush = now

    def raw(self, data: bytes, n: int) -> None:
        """n records already encoded (by the C loop, as the Packer would)."""
        self.f.write(data)
        self.n += n
        now = time.monotonic()
        if now - self.last_flush > 0.2:
            self.f.flush()
            self.last_flush = now

    def close(self) -> None:
        self.f.flush()
        self.f.close()


@dataclass
class StracerLog:
    path: Path
    header: dict[str, Any]
    missed: list[list[Any]] = field(default_factory=list)
    sites: dict[int, list[list[Any]]] = field(default_factory=dict)
    procs: list[list[Any]] = field(default_factory=list)
    counts: dict[int, dict[str, int]] = field(default_factory=dict)
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
            elif kind == SRec.PROC:
                log.procs.append(rec)
            elif kind == SRec.COUNTS:
                log.counts[rec[1]] = rec[2]
            elif kind == SRec.END:
                log.returncode = rec[2]
                log.complete = True
    except (ValueError, msgpack.FormatError, msgpack.StackError, IndexError, TypeError):
        print(f"iotrace: warning: {path}: unreadable record; read up to it", file=sys.stderr)
    return log


def log_files(trace_dir: Path) -> list[Path]:
    return sorted(trace_dir.glob(f"*{SUFFIX}"))
