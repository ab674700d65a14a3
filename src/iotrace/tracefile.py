"""Reading one process log (layout in docs/format.md).

A log is a header map, then fixed-size chunks, one thread's each: a msgpack bin32 whose length
counts only whole records.  A chunk slot of zeros was reserved but never written (the process
died first); padding objects (ext type 127) fill the rest.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from iotrace.calls import (
    CHUNK_SIZE,
    EVENT_FIELDS,
    FORMAT_NAME,
    FORMAT_VERSION,
    PAD_EXT_TYPE,
    Rec,
)

LOG_SUFFIX = ".iot"


class TraceFormatError(Exception):
    """A file or directory that is not a readable iotrace trace; the message is one line."""


@dataclass
class Log:
    path: Path
    header: dict[str, Any]
    strings: dict[int, str] = field(default_factory=dict)
    stacks: dict[int, tuple[int, ...]] = field(default_factory=dict)
    # (base, lo, hi, path, build_id or None)
    modules: list[tuple[int, int, int, str, bytes | None]] = field(default_factory=list)
    exit_status: int | None = None
    exit_time: int | None = None
    # KIO records as they are: [6, when, t, counters, own, stdio pending, event sums]
    kio: list[list[Any]] = field(default_factory=list)
    truncated: bool = False
    # (tid, fn, t_start, dur, fd, path, req, ret, errno, offset, flags, mode, stack, aux, fd2,
    # path2, offset2): EVENT_FIELDS, the record's type slot holding the thread; the fields a
    # record leaves off (fd2.. on calls with one end) are None
    events: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def functions(self) -> list[str]:
        return list(self.header.get("functions", []))


def _ext_hook(code: int, data: bytes) -> Any:
    return msgpack.ExtType(code, b"") if code == PAD_EXT_TYPE else msgpack.ExtType(code, data)


def read_header(buf: Any, path: Path) -> tuple[dict[str, Any], int, int]:
    """The header of a log, the offset of its first chunk, and its chunk size."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, unicode_errors="backslashreplace")
    unpacker.feed(buf[: min(len(buf), 1 << 20)])
    try:
        header = unpacker.unpack()
        end = unpacker.tell()
    except Exception as exc:  # msgpack raises several kinds on garbage
        raise TraceFormatError(f"{path}: not an iotrace log ({exc.__class__.__name__})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise TraceFormatError(f"{path}: not an iotrace log (no iotrace header)")
    if header.get("version") != FORMAT_VERSION:
        raise TraceFormatError(
            f"{path}: log format version {header.get('version')} is not supported "
            f"(this iotrace reads version {FORMAT_VERSION})"
        )
    chunk = header.get("chunk_size", CHUNK_SIZE)
    if not isinstance(chunk, int) or chunk < 64:
        raise TraceFormatError(f"{path}: corrupt log (chunk_size {chunk!r})")
    first = -(-end // chunk) * chunk
    if end + 6 <= len(buf) and buf[end] == 0xC9 and buf[end + 5] == PAD_EXT_TYPE:
        pad_end = end + 6 + int.from_bytes(buf[end + 1 : end + 5], "big")
        if pad_end % chunk == 0:
            first = pad_end  # the header's padding object ends at the first chunk
    return header, first, chunk


class BadChunk(Exception):
    """A chunk slot that is neither written nor empty (code 1), or a chunk longer than its slot
    (code 2), at byte `off`."""

    def __init__(self, code: int, off: int) -> None:
        super().__init__(code, off)
        self.code, self.off = code, off


def chunks(buf: Any, first: int, stop: int, chunk: int) -> Iterator[tuple[int, int, bool]]:
    """(start, end, torn) of the committed records of each written chunk that starts in
    [first, stop).  torn: the file ends before the chunk does (cut short); the records are read up
    to the end of the file.  Slots of zeros were reserved but never written: skipped."""
    size = len(buf)
    for off in range(first, min(stop, size), chunk):
        mark = buf[off]
        if mark == 0:
            continue
        if mark != 0xC6:
            raise BadChunk(1, off)
        if size - off < 5:
            yield size, size, True
            return
        length = int.from_bytes(buf[off + 1 : off + 5], "big")
        if length > chunk - 5:
            raise BadChunk(2, off)
        end = off + 5 + length
        yield off + 5, min(end, size), end > size


def chunk_payloads(path: Path) -> tuple[dict[str, Any], Iterator[bytes], list[bool]]:
    """The header, and the committed bytes of each chunk in file order."""
    size = path.stat().st_size
    if size == 0:
        raise TraceFormatError(f"{path}: empty file, not an iotrace log")
    with open(path, "rb") as f:
        data: bytes = f.read()
    header, first, chunk = read_header(data, path)
    truncated = [False]

    def payloads() -> Iterator[bytes]:
        try:
            for start, end, torn in chunks(data, first, len(data), chunk):
                truncated[0] = truncated[0] or torn
                yield data[start:end]
        except BadChunk as exc:
            what = (
                f"bad chunk at byte {exc.off}"
                if exc.code == 1
                else f"chunk at byte {exc.off} too long"
            )
            raise TraceFormatError(f"{path}: corrupt log ({what})") from None

    return header, payloads(), truncated


class _Pread:
    """A log read with pread(2), not mapped: `iotrace run` reads the logs of a job's other
    ranks while they run, and a shim trims its log at exit (preload/writer.c iot_log_finish):
    a page of a mapping past the new end would kill the reader with SIGBUS.  Past the end,
    reads come back short, as from a log cut short."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size = fd, size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, k: int | slice) -> Any:
        if isinstance(k, slice):
            start, stop, _ = k.indices(self.size)
            return os.pread(self.fd, max(0, stop - start), start)
        b = os.pread(self.fd, 1, k)
        return b[0] if b else 0  # past the end: as a slot never written


def kio_records(path: Path, limit: int = 256) -> tuple[dict[str, Any], list[list[Any]]]:
    """The header and the KIO records of a log without reading its events: those of the first
    chunk that has any, from the start (the shim's start reading), and of the last, from the end
    (its exec or exit reading), each looked for in at most `limit` chunks.  For `iotrace run`'s
    closing line; the analyzer reads every record."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise TraceFormatError(f"{path}: empty file, not an iotrace log")
        buf = _Pread(f.fileno(), size)
        header, first, chunk = read_header(buf, path)
        n = max(0, -(-(size - first) // chunk))

        def found(k: int) -> list[list[Any]]:
            out = []
            off = first + k * chunk
            try:
                for start, end, _torn in chunks(buf, off, off + 1, chunk):
                    up = msgpack.Unpacker(raw=False, strict_map_key=False, use_list=True)
                    up.feed(buf[start:end])
                    out += [r for r in up if isinstance(r, list) and r and r[0] == Rec.KIO]
            except (BadChunk, ValueError, msgpack.UnpackException):
                return []
            return out

        head: list[list[Any]] = []
        for k in range(min(n, limit)):
            if head := found(k):
                break
        tail: list[list[Any]] = []
        for k in range(n - 1, max(-1, n - 1 - limit), -1):
            if tail := found(k):
                break
    records = {(r[1], r[2]): r for r in head + tail}  # one chunk may be both
    return header, sorted(records.values(), key=lambda r: r[2])


def read_log(path: str | os.PathLike[str]) -> Log:
    """Parse a whole log.  A log cut short (a crash, a copy) is read up to its last whole record
    and flagged `truncated`; anything that is not an iotrace log raises TraceFormatError."""
    p = Path(path)
    header, payloads, truncated = chunk_payloads(p)
    log = Log(p, header)
    events = log.events
    for payload in payloads:
        unpacker = msgpack.Unpacker(
            raw=False, strict_map_key=False, use_list=False, ext_hook=_ext_hook
        )
        unpacker.feed(payload)
        tid = None
        nf = len(EVENT_FIELDS)
        try:
            for rec in unpacker:
                kind = rec[0]
                if kind == Rec.EVENT:
                    events.append((tid, *rec[1:nf], *(None,) * (nf - len(rec))))
                elif kind == Rec.THREAD:
                    tid = rec[1]
                elif kind == Rec.STRING:
                    log.strings[rec[1]] = rec[2]
                elif kind == Rec.STACK:
                    log.stacks[rec[1]] = tuple(rec[2])
                elif kind == Rec.MODULE:
                    bid = rec[5] if len(rec) > 5 and isinstance(rec[5], bytes) else None
                    log.modules.append((rec[1], rec[2], rec[3], rec[4], bid))
                elif kind == Rec.EXIT:
                    log.exit_time, log.exit_status = rec[1], rec[2]
                elif kind == Rec.KIO:
                    log.kio.append(list(rec))
        except (ValueError, TypeError, IndexError, msgpack.FormatError, msgpack.StackError):
            if truncated[0]:
                break
            raise TraceFormatError(f"{p}: corrupt log (bad record)") from None
    log.truncated = truncated[0]
    return log


def log_paths(trace_dir: str | os.PathLike[str]) -> list[Path]:
    """The process logs of a trace directory; TraceFormatError if it is not one."""
    d = Path(trace_dir)
    if not d.exists():
        raise TraceFormatError(f"{d}: no such trace directory")
    if not d.is_dir():
        raise TraceFormatError(f"{d}: not a directory (give the trace directory)")
    logs = sorted(d.glob(f"*{LOG_SUFFIX}"))
    if not logs and not any(d.glob("iotrace-run.*.json")):
        raise TraceFormatError(f"{d}: not an iotrace trace directory (no *{LOG_SUFFIX} logs)")
    return logs
