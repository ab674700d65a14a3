"""Reading one process log (layout in docs/format.md).

A log is a header map sealed with its checksum, then fixed-size chunks, one thread's each: a
msgpack bin32 whose length counts only whole records, sealed with the checksum of the chunk when
the thread left it.  A chunk slot of zeros was reserved but never written (the process died
first).  Nothing read is trusted: every length, id and type is checked before it is used, and
anything that does not fit is a TraceFormatError (one line).
"""

from __future__ import annotations

import errno
import itertools
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgpack
import xxhash

from iotrace.calls import (
    CHUNK_SIZE,
    DATA_MAX,
    EVENT_BASE_FIELDS,
    EVENT_FIELDS,
    FORMAT_NAME,
    FORMAT_VERSION,
    SEAL_EXT_TYPE,
    SEAL_SIZE,
    Rec,
)
from iotrace.format import EV, EVENT
from iotrace.record import field, record
from iotrace.tracedir import pinned

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing for type checkers only: ~2 ms of the stracer's start (issue 19)
    from typing import Any

LOG_SUFFIX = ".iot"
MAX_HEADER = 1 << 24  # bytes: a header is a few KiB (the function names, the command line)
MAX_STACK = 256  # frames in a STACK record (the shim records at most 64)
# The unsealed chunk of a thread still writing (or killed) may hold one record written but not
# yet committed after its committed length: at most this long (a STRING of PATH_MAX and more).
MAX_UNCOMMITTED = 2 * 4096 + 64


class TraceFormatError(Exception):
    """A file or directory that is not a readable iotrace trace; the message is one line."""


class UnwrittenLogError(TraceFormatError):
    """A log its shim created and sized, its process killed before the header was written
    (preload/writer.c iot_log_create: a forked worker terminated at once): zeros, no record."""


@contextmanager
def open_regular(path: str | os.PathLike[str]) -> Iterator[int]:
    """A descriptor of `path` if it is a regular file, else TraceFormatError: a FIFO, a device
    (/dev/zero) or a directory named like a log is refused, not read (O_NONBLOCK: opening a FIFO
    does not wait for a writer), and so is a symbolic link: iotrace never makes one in a trace,
    and one planted in another user's trace led root's report or export to a private trace's
    log elsewhere, its events shown as that user's.  A hard link is refused the same way when
    the file is not the trace directory's owner's (_linked_in).  A file of a trace directory
    the command was given is opened relative to the descriptor it opened (tracedir.pin), not by
    a path its owner could lead elsewhere meanwhile."""
    name = os.fspath(path)
    dfd = pinned(os.path.dirname(name) or ".")
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(name if dfd is None else os.path.basename(name), flags, dir_fd=dfd)
    except OSError as exc:
        if exc.errno == errno.ELOOP and os.path.islink(path):
            raise TraceFormatError(f"{path}: a symbolic link, not a regular file (a trace's files "
                                   "are never links: refused)") from None  # fmt: skip
        raise TraceFormatError(f"{path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise TraceFormatError(f"{path}: not a regular file")
        if st.st_nlink > 1:
            _linked_in(path, st, dfd)
        yield fd
    finally:
        os.close(fd)


def _linked_in(path: str | os.PathLike[str], st: os.stat_result, dfd: int | None) -> None:
    """TraceFormatError if a file of several names is not its directory's owner's: a hard link
    another user put in their trace (where fs.protected_hardlinks is off: to a log of root's
    private trace, to /etc/shadow) made root's report read root's file as theirs.  A file of
    the owner's is theirs to read, however many names it has (a backup's cp -al)."""
    try:
        owner = (os.stat(os.path.dirname(os.fspath(path)) or ".") if dfd is None
                 else os.fstat(dfd)).st_uid  # fmt: skip
    except OSError as exc:
        raise TraceFormatError(f"{path}: {exc.strerror}") from None
    if st.st_uid != owner:
        raise TraceFormatError(f"{path}: a hard link to a file of uid {st.st_uid}'s in a "
                               f"directory of uid {owner}'s (a trace's files are its owner's: "
                               "refused)")  # fmt: skip


def regular_size(path: str | os.PathLike[str]) -> int:
    """The size of a regular file (TraceFormatError for anything else)."""
    with open_regular(path) as fd:
        return os.fstat(fd).st_size


def read_regular(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """The bytes of a regular file (TraceFormatError for anything else, or past `limit` bytes)."""
    with open_regular(path) as fd:
        size = os.fstat(fd).st_size
        if limit is not None and size > limit:
            raise TraceFormatError(f"{path}: too large ({size} bytes) for what it should be")
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(size)


def xxh3(data: Any) -> int:
    return xxhash.xxh3_64_intdigest(data)


def _xxh3_of(buf: Any, start: int, end: int) -> int:
    """xxh3 of buf[start:end], hashed in place where buf is in memory (copied out, the chunks
    of a 625,000-event part cost a 20 MB copy); a _Pread's slice is a read."""
    try:
        whole = memoryview(buf)
    except TypeError:
        return xxh3(buf[start:end])
    with whole:
        return xxh3(whole[start:end])


def seal_at(buf: Any, pos: int, end: int) -> int | None:
    """The checksum of the seal object filling buf[pos:end] exactly, None if there is none."""
    if end - pos < SEAL_SIZE or end > len(buf):
        return None
    if buf[pos] != 0xC9 or buf[pos + 5] != SEAL_EXT_TYPE:
        return None
    if int.from_bytes(buf[pos + 1 : pos + 5], "big") != end - pos - 6:
        return None
    return int.from_bytes(buf[pos + 6 : pos + 14], "big")


def _is_int(v: Any) -> bool:
    return v.__class__ is int or (isinstance(v, int) and not isinstance(v, bool))


def _check_header(h: Any, path: Path, shared: bool = False) -> None:
    """The header's fields have the types docs/format.md gives them (`shared`: its function
    names are a list checked before, _share_functions)."""
    ints = ("version", "pid", "ppid", "stack_depth", "chunk_size")
    bad = [k for k in ints if k in h and not _is_int(h[k])]
    bad += [k for k in ("rank", "size") if h.get(k) is not None and not _is_int(h[k])]
    bad += [k for k in ("host", "exe", "cwd", "job") if h.get(k) is not None
            and not isinstance(h[k], str)]  # fmt: skip
    for k in ("argv",) if shared else ("argv", "functions"):
        v = h.get(k, [])
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            bad.append(k)
    clock = h.get("clock", {})
    if not isinstance(clock, dict) or not all(_is_int(clock.get(k, 0)) for k in ("mono", "real")):
        bad.append("clock")
    if bad:
        raise TraceFormatError(f"{path}: corrupt log (header field {bad[0]!r})")


# The function names of the headers: the logs of a trace carry one list or a few (~200 names,
# ~18 KiB as Python strings, most of a header's memory): one list object per distinct list,
# checked once, so that the headers of a trace of 100,000 short-lived processes (200,000 logs),
# held at once by `missed`, `show` and the exports, cost what they differ in.  The list is
# shared: nothing changes a header's list in place.
_FUNCTION_LISTS: dict[tuple[str, ...], list[str]] = {}
FUNCTION_LISTS_KEPT = 256  # distinct lists kept (a hostile trace's many: the others not shared)


def _share_functions(h: dict[Any, Any]) -> bool:
    """h["functions"] made the list object of that content read before; True if so."""
    f = h.get("functions")
    if f.__class__ is not list:
        return False
    try:
        key = tuple(f)
        got = _FUNCTION_LISTS.get(key)
    except TypeError:  # an unhashable item: _check_header refuses it
        return False
    if got is None:
        if len(_FUNCTION_LISTS) >= FUNCTION_LISTS_KEPT or not all(s.__class__ is str for s in f):
            return False
        got = _FUNCTION_LISTS[key] = f
    h["functions"] = got
    return True


def read_header(buf: Any, path: Path) -> tuple[dict[str, Any], int, int]:
    """The header of a log, the offset of its first chunk, and its chunk size."""
    # fed 64 KiB first, more only if the header is longer: a copy of MAX_HEADER bytes per log
    # cost 0.13 s (the bounded report reads every header in every part)
    size, top = 1 << 16, min(len(buf), MAX_HEADER)
    while True:
        unpacker = msgpack.Unpacker(
            raw=False,
            strict_map_key=False,
            unicode_errors="surrogateescape",
            max_buffer_size=MAX_HEADER,
        )
        unpacker.feed(buf[: min(size, top)])
        try:
            header = unpacker.unpack()
            end = unpacker.tell()
            break
        except msgpack.OutOfData as exc:
            if size >= top:
                raise TraceFormatError(
                    f"{path}: not an iotrace log ({exc.__class__.__name__})"
                ) from None
            size *= 8
        except Exception as exc:  # msgpack raises several kinds on garbage
            raise TraceFormatError(
                f"{path}: not an iotrace log ({exc.__class__.__name__})"
            ) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        head = bytes(buf[: min(len(buf), MAX_HEADER)])
        if header == 0 and head.count(0) == len(head):
            raise UnwrittenLogError(f"{path}: a log never written (zeros: its process was "
                                    "killed as the log was made)")  # fmt: skip
        raise TraceFormatError(f"{path}: not an iotrace log (no iotrace header)")
    if header.get("version") != FORMAT_VERSION:
        raise TraceFormatError(
            f"{path}: log format version {header.get('version')!r} is not supported "
            f"(this iotrace reads version {FORMAT_VERSION})"
        )
    chunk = header.get("chunk_size", CHUNK_SIZE)
    if not _is_int(chunk) or not 64 <= chunk <= 1 << 26:
        raise TraceFormatError(f"{path}: corrupt log (chunk_size {chunk!r})")
    first = -(-(end + SEAL_SIZE) // chunk) * chunk
    if first > len(buf):
        raise TraceFormatError(f"{path}: log cut short in its header")
    want = seal_at(buf, end, first)
    if want is None:
        raise TraceFormatError(f"{path}: corrupt log (no seal after the header)")
    if xxh3(buf[:end]) != want:
        raise TraceFormatError(f"{path}: corrupt log (header checksum mismatch)")
    _check_header(header, path, _share_functions(header))
    return header, first, chunk


# What is wrong at a byte offset of a log (BadChunk, and the C decoder's error codes).
ERRORS = {
    1: "bad chunk",
    2: "chunk too long",
    3: "bad record",
    4: "decoder output overflow",
    5: "checksum mismatch",
    6: "data after the committed records",
}


class BadChunk(Exception):
    """What is wrong (a key of ERRORS) with the chunk at byte `off`."""

    def __init__(self, code: int, off: int) -> None:
        super().__init__(code, off)
        self.code, self.off = code, off


def _unsealed_tail_ok(tail: bytes) -> bool:
    """After the committed records of a chunk without a seal: at most one record written but
    not committed (a kill between the two), then zeros.  Anything else is damage (a length that
    lost a bit would leave whole records after it)."""
    nz = len(tail.rstrip(b"\0"))
    if nz == 0:
        return True
    if nz > MAX_UNCOMMITTED:
        return False
    up = msgpack.Unpacker(max_buffer_size=len(tail) + 1)
    up.feed(tail)
    try:
        up.skip()
    except msgpack.OutOfData:
        return torn_tail(tail[:nz], MAX_UNCOMMITTED)  # a record cut short by the kill
    except (ValueError, msgpack.FormatError, msgpack.StackError):
        return False
    return up.tell() >= nz


def torn_tail(tail: bytes, most: int) -> bool:
    """Whether `tail`, which ends inside a msgpack object, is the start of an object at most
    `most` bytes longer (a record cut short), rather than one whose length field lost a bit."""
    up = msgpack.Unpacker(max_buffer_size=len(tail) + most + 1)
    up.feed(tail + bytes(most))  # zero bytes complete any object that needs fewer
    try:
        up.skip()
    except (msgpack.OutOfData, ValueError, msgpack.FormatError, msgpack.StackError):
        return False
    return True


def chunks(buf: Any, first: int, stop: int, chunk: int) -> Iterator[tuple[int, int, bool]]:
    """(start, end, torn) of the committed records of each written chunk that starts in
    [first, stop), its checksum verified if sealed, its tail if not.  torn: the file ends before
    the chunk does (cut short); the records are read up to the end of the file.  Slots of zeros
    were reserved but never written: skipped.  BadChunk for anything else."""
    size = len(buf)
    for off in range(first, min(stop, size), chunk):
        mark = buf[off]
        slot_end = min(off + chunk, size)
        if mark == 0:
            if buf[off:slot_end].count(0) != slot_end - off:
                raise BadChunk(1, off)
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
        if end > size or off + chunk > size:
            yield off + 5, min(end, size), True  # cut short: no seal to check
            return
        want = seal_at(buf, end, off + chunk)
        if want is not None:
            if _xxh3_of(buf, off, end) != want:
                raise BadChunk(5, off)
        elif not _unsealed_tail_ok(buf[end : off + chunk]):
            raise BadChunk(6, off)
        yield off + 5, end, False


def verify(buf: Any, first: int, stop: int, chunk: int) -> bool:
    """Check the chunks starting in [first, stop) (BadChunk); True if the file was cut short."""
    torn = False
    for _s, _e, t in chunks(buf, first, stop, chunk):
        torn = torn or t
    return torn


@record
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
    # the app installed a seccomp filter (SECCOMP): (t, records the shim dropped after it, calls
    # it let through untraced: 0 in a log written before that count)
    seccomp: tuple[int, int, int] | None = None
    # ... and it was the shim alone going out at the app's no_new_privs (SECCOMP nnp): no
    # install seen, one may have followed unseen (preload/sandbox.c)
    seccomp_nnp: bool = False
    truncated: bool = False
    # (tid, fn, t_start, dur, fd, path, req, ret, errno, offset, flags, mode, stack, aux, fd2,
    # path2, offset2): EVENT_FIELDS, the record's type slot holding the thread; the fields a
    # record leaves off (fd2.. on calls with one end) are None
    events: list[tuple[Any, ...]] = field(default_factory=list)
    # `iotrace run -s N`: (tid, t_start) of an event -> the first bytes of its buffer (DATA)
    data: dict[tuple[int, int], bytes] = field(default_factory=dict)
    # HDF5: (tid, t_start) of a dataset's open/create event -> (datatype size, dims, chunk dims)
    shapes: dict[tuple[int, int], tuple[int, tuple[int, ...], tuple[int, ...]]] = field(
        default_factory=dict
    )
    # HDF5: (tid, t_start) of an H5Dread/H5Dwrite -> (file bytes, chunks, partial); chunks and
    # partial None on a dataset not chunked
    selections: dict[tuple[int, int], tuple[int, int | None, int | None]] = field(
        default_factory=dict
    )

    @property
    def functions(self) -> list[str]:
        return list(self.header.get("functions", []))

    def add(self, rec: tuple[Any, ...]) -> None:
        """A checked record other than EVENT and THREAD (Records gives them)."""
        kind = rec[0]
        if kind == Rec.STRING:
            self.strings[rec[1]] = rec[2]
        elif kind == Rec.STACK:
            self.stacks[rec[1]] = tuple(rec[2])
        elif kind == Rec.MODULE:
            self.modules.append((rec[1], rec[2], rec[3], rec[4], rec[5]))
        elif kind == Rec.EXIT:
            self.exit_time, self.exit_status = rec[1], rec[2]
        elif kind == Rec.KIO:
            self.kio.append(list(rec))
        elif kind == Rec.DATA:
            self.data[(rec[1], rec[2])] = rec[3]
        elif kind == Rec.SHAPE:
            self.shapes[(rec[1], rec[2])] = (rec[3], tuple(rec[4]), tuple(rec[5]))
        elif kind == Rec.SELECTION:
            self.selections[(rec[1], rec[2])] = (rec[3], rec[4], rec[5])
        elif kind == Rec.SECCOMP:
            self.seccomp = (rec[1], rec[2], rec[3] if len(rec) > 3 else 0)
            self.seccomp_nnp = bool(rec[4]) if len(rec) > 4 else False

    def event_row(self, tid: int, rec: tuple[Any, ...]) -> tuple[Any, ...]:
        """An EVENT record as a row of `events`."""
        return (tid, *rec[1:_NFIELDS], *(None,) * (_NFIELDS - len(rec)))


def _ext_hook(code: int, data: bytes) -> Any:
    return msgpack.ExtType(code, b"")


_NFIELDS = len(EVENT_FIELDS)
_NULLABLE = frozenset(i for i, f in enumerate(EVENT) if f.nullable)
# ranges as the C decoder's columns (analyzer/_decode.c): int32; ids (0 <= id < 2**31); 64 bits
_INT32 = (EV.fd, EV.flags, EV.fd2)
_IDS = (EV.path, EV.stack, EV.path2)
_INT64 = (EV.req, EV.ret, EV.offset, EV.mode, EV.offset2)


class BadRecord(ValueError):
    pass


def _field_range(i: int) -> tuple[int, int]:
    if i in _INT32:
        return -(1 << 31), 1 << 31
    if i in _IDS:
        return 0, 1 << 31
    if i in _INT64:
        return -(1 << 63), 1 << 64
    return 0, {EV.errno: 1 << 16}.get(i, 1 << 63)  # t_start, dur


# (index, nullable, least, bound) of every field of an EVENT but rec, fn and aux, in order
_FIELDS = tuple(
    (i, i in _NULLABLE, *_field_range(i))
    for i in (*range(EV.t_start, EV.aux), *range(EVENT_BASE_FIELDS, _NFIELDS))
)
_CHECKED = {EVENT_BASE_FIELDS: _FIELDS[: EV.aux - EV.t_start], _NFIELDS: _FIELDS}


def check_event(rec: Any, n_functions: int) -> None:
    """An EVENT record as docs/format.md has it (BadRecord otherwise): its length; fn below
    `n_functions`; every other field an int (not a bool) in its column's range, or nil where the
    field is nullable; aux nil, an int or a pair of ints.  (Every reader's hot loop: an int field
    is taken on the first test.)"""
    fields = _CHECKED.get(len(rec))  # fd2, path2, offset2: two ends only
    if fields is None:
        raise BadRecord
    fn = rec[EV.fn]
    if not (_is_int(fn) and 0 <= fn < n_functions):
        raise BadRecord
    for i, nullable, lo, hi in fields:
        v = rec[i]
        if v.__class__ is int:
            if not lo <= v < hi:
                raise BadRecord
        elif v is None:
            if not nullable:
                raise BadRecord
        elif not (_is_int(v) and lo <= v < hi):
            raise BadRecord
    aux = rec[EV.aux]
    if aux is not None and not _is_int(aux):
        if not (isinstance(aux, tuple | list) and len(aux) == 2 and all(map(_is_int, aux))):
            raise BadRecord


def id_limit(size: int) -> int:
    """The largest string or stack id a log of `size` bytes can hold (every definition takes at
    least 4 bytes): ids beyond are damage, and memory indexed by id stays within the file's."""
    return size // 4 + 1


def other_record(rec: Any, limit: int) -> tuple[Any, ...]:
    """A STRING, STACK, MODULE or EXIT record, checked (BadRecord); other types as they are."""
    kind = rec[0]
    if kind == Rec.STRING:
        if len(rec) != 3 or not _is_int(rec[1]) or not 1 <= rec[1] <= limit:
            raise BadRecord
        if not isinstance(rec[2], str):
            raise BadRecord
    elif kind == Rec.STACK:
        if len(rec) != 3 or not _is_int(rec[1]) or not 1 <= rec[1] <= limit:
            raise BadRecord
        pcs = rec[2]
        if not isinstance(pcs, tuple | list) or len(pcs) > MAX_STACK:
            raise BadRecord
        if not all(_is_int(pc) and 0 <= pc < 1 << 64 for pc in pcs):
            raise BadRecord
    elif kind == Rec.MODULE:
        if len(rec) < 5 or not all(_is_int(v) and 0 <= v < 1 << 64 for v in rec[1:4]):
            raise BadRecord
        bid = rec[5] if len(rec) > 5 else None  # a build-id since the records had one
        if not isinstance(rec[4], str) or not (bid is None or isinstance(bid, bytes)):
            raise BadRecord
        return (*rec[:5], bid)
    elif kind == Rec.EXIT:
        if len(rec) != 3 or not (_is_int(rec[1]) and _is_int(rec[2])):
            raise BadRecord
    elif kind == Rec.KIO:  # [6, when, t, [counters], [own], [stdio pending], ...]: int lists
        if not 6 <= len(rec) <= 16 or not (_is_int(rec[1]) and _is_int(rec[2])):
            raise BadRecord
        for v in rec[3:]:
            if not isinstance(v, tuple | list) or len(v) > 64 or not all(map(_is_int, v)):
                raise BadRecord
    elif kind == Rec.THREAD:
        if len(rec) != 2 or not _is_int(rec[1]) or not 0 <= rec[1] < 1 << 31:
            raise BadRecord
    elif kind == Rec.DATA:  # [7, tid, t_start, bytes]
        if len(rec) < 4 or not (_is_int(rec[1]) and _is_int(rec[2])):
            raise BadRecord
        if not isinstance(rec[3], bytes) or len(rec[3]) > DATA_MAX:
            raise BadRecord
    elif kind == Rec.SHAPE:  # [8, tid, t_start, size, [dims], [chunk dims]]
        if len(rec) < 6 or not all(_is_int(v) and 0 <= v < 1 << 63 for v in rec[1:4]):
            raise BadRecord
        for v in rec[4:6]:
            if not isinstance(v, tuple | list) or len(v) > 32:
                raise BadRecord
            if not all(_is_int(x) and 0 <= x < 1 << 64 for x in v):
                raise BadRecord
    elif kind == Rec.SECCOMP:  # [10, t, dropped, untraced]
        if len(rec) < 3 or not all(_is_int(v) and 0 <= v < 1 << 64 for v in rec[1:4]):
            raise BadRecord
    elif kind == Rec.SELECTION:  # [9, tid, t_start, bytes, chunks, partial]
        if len(rec) < 6 or not all(_is_int(v) and 0 <= v < 1 << 63 for v in rec[1:4]):
            raise BadRecord
        n, part = rec[4], rec[5]
        if (n is None) != (part is None):
            raise BadRecord
        if n is not None and not (_is_int(n) and _is_int(part) and 0 <= part <= n < 1 << 64):
            raise BadRecord
    return tuple(rec)


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


class _Prefixed(_Pread):
    """A _Pread whose first `head` bytes come from one read: a header's slices (the msgpack
    object, its seal, its checksum) were ~6 preads a log."""

    def __init__(self, fd: int, size: int, head: int = 1 << 14) -> None:
        super().__init__(fd, size)
        self.head = os.pread(fd, min(size, head), 0)

    def __getitem__(self, k: int | slice) -> Any:
        if isinstance(k, slice):
            start, stop, step = k.indices(self.size)
            if stop <= len(self.head) and step == 1:
                return self.head[start:stop]
        elif 0 <= k < len(self.head):
            return self.head[k]
        return super().__getitem__(k)


def _data_end(fd: int, start: int, size: int) -> int:
    """The end of the file's last data at or after `start`: a shim sizes its log ahead, the
    room not written yet a hole (preload/writer.c), and a log not trimmed at its process's end
    (killed, still running, sandboxed) keeps it.  `size` where the file system cannot tell."""
    hi, step = size, 1 << 18
    while hi > start:  # back from the end by doubling steps, to the last region with data
        pos = max(start, hi - step)
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno != errno.ENXIO:
                return size
            hi, step = pos, step * 2
            continue
        end = data
        while end < size:  # forward through that region's extents to its last hole
            end = os.lseek(fd, data, os.SEEK_HOLE)
            try:
                data = os.lseek(fd, end, os.SEEK_DATA)
            except OSError:
                break
        return end
    return start


def data_end(fd: int, size: int, first: int, chunk: int) -> int:
    """Where a log's last written chunk ends: `size`, or less where the file ends in chunks no
    record reached (_data_end).  A process killed before its exit's trim leaves 32 MiB of
    holes, which readers read and decoded, and the plan costed as events (300 killed processes:
    report --json's plan made 901 parts, not 2: 27 times the CPU)."""
    try:
        if -(-(size - first) // chunk) <= 1 or os.fstat(fd).st_blocks * 512 >= size:
            return size  # a chunk at most (no call for most logs), or no hole anywhere
        end = _data_end(fd, first, size)
    except OSError:
        return size
    return min(size, first + -(-(end - first) // chunk) * chunk)


def kio_records(
    path: Path, limit: int = 256, modules: list[str] | None = None
) -> tuple[dict[str, Any], list[list[Any]]]:
    """The header and the KIO records of a log without reading its events: those of the first
    chunk that has any, from the start (the shim's start reading), and of the last, from the end
    (its exec or exit reading, or the one before the app's seccomp filter, with the SECCOMP
    record beside it, also returned), each looked for in at most `limit` chunks.  For
    `iotrace run`'s closing line; the analyzer reads every record.  `modules`: gets the paths
    of the MODULE records in the chunks read (the module map at the start)."""
    with open_regular(path) as fd:
        size = os.fstat(fd).st_size
        if size == 0:
            raise TraceFormatError(f"{path}: empty file, not an iotrace log")
        buf = _Pread(fd, size)
        header, first, chunk = read_header(buf, path)
        n = max(0, -(-(_data_end(fd, first, size) - first) // chunk))

        def found(k: int) -> list[list[Any]]:
            out = []
            off = first + k * chunk
            try:
                for start, end, _torn in chunks(buf, off, off + 1, chunk):
                    up = msgpack.Unpacker(raw=False, strict_map_key=False, use_list=True,
                                          unicode_errors="surrogateescape",  # paths' bytes
                                          max_buffer_size=chunk)  # fmt: skip
                    up.feed(buf[start:end])
                    for r in up:
                        if not isinstance(r, list) or not r:
                            continue
                        if r[0] in (Rec.KIO, Rec.SECCOMP) and other_record(r, 0):
                            out.append(r)
                        elif r[0] == Rec.MODULE and modules is not None and len(r) > 4:
                            modules.append(str(r[4]))
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


class BadRecordAt(Exception):
    """A record that is not as docs/format.md has it: it starts at byte `start`; the reader got
    to byte `end` (its end, or the start for bytes that are no record)."""

    def __init__(self, start: int, end: int) -> None:
        super().__init__(start, end)
        self.start, self.end = start, end


def _unpacker(chunk: int) -> msgpack.Unpacker:
    return msgpack.Unpacker(
        raw=False,
        strict_map_key=False,
        use_list=False,
        ext_hook=_ext_hook,
        unicode_errors="surrogateescape",
        max_buffer_size=chunk,
    )


class Records:
    """The one reader of a log's records: every record of the chunks starting in [first, stop)
    of the log's bytes, in file order, each checked, as (start, end, tid, record); THREAD records
    only give the tid of their chunk.  read_log, `iotrace show` and the analyzer's Python decoder
    (the C decoder's oracle) all read through it.  `n_functions`: EVENT's fn is below it;
    `limit` the largest string or stack id (None: records other than EVENT and THREAD are not
    checked); `events` False: EVENT records are not checked (a reader that reads a log twice checks
    each kind once).  BadChunk, BadRecordAt for what is wrong; `truncated`: the bytes end inside
    a chunk (read up to its last whole record)."""

    def __init__(
        self,
        buf: Any,
        first: int,
        stop: int,
        chunk: int,
        n_functions: int,
        limit: int | None,
        events: bool = True,
    ) -> None:
        self.buf, self.first, self.stop, self.chunk = buf, first, stop, chunk
        self.n_functions, self.limit, self.events = n_functions, limit, events
        self.truncated = False

    def __iter__(self) -> Iterator[tuple[int, int, int, tuple[Any, ...]]]:
        buf, limit = self.buf, self.limit
        for start, end, torn in chunks(buf, self.first, self.stop, self.chunk):
            self.truncated = self.truncated or torn
            unpacker = _unpacker(self.chunk)
            unpacker.feed(buf[start:end])
            tid = -1
            pos = start  # after the last whole record (tell() after the loop counts a torn one)
            recs = iter(unpacker)
            for i in itertools.count():
                try:
                    rec = next(recs)
                except StopIteration:
                    break
                except (ValueError, TypeError, msgpack.FormatError, msgpack.StackError):
                    raise BadRecordAt(pos, pos) from None
                here, pos = pos, start + unpacker.tell()
                try:
                    if not isinstance(rec, tuple) or not rec or not _is_int(rec[0]):
                        raise BadRecord
                    kind = rec[0]
                    if (i == 0) != (kind == Rec.THREAD):  # a chunk starts with its THREAD, once
                        raise BadRecord
                    if kind == Rec.EVENT:
                        if self.events:
                            check_event(rec, self.n_functions)
                    elif kind == Rec.THREAD:
                        tid = other_record(rec, 0)[1]
                        continue
                    elif limit is not None:
                        rec = other_record(rec, limit)
                except (BadRecord, TypeError):
                    raise BadRecordAt(here, pos) from None
                yield here, pos, tid, rec
            if pos != end and not torn:
                raise BadRecordAt(pos, pos)  # a record cut short inside a whole chunk

    @staticmethod
    def one(buf: Any, start: int, end: int) -> tuple[Any, ...]:
        """The record at [start, end) again, as iterating gave it (checked then)."""
        return tuple(msgpack.unpackb(buf[start:end], raw=False, use_list=False,
                                     strict_map_key=False, ext_hook=_ext_hook,
                                     unicode_errors="surrogateescape"))  # fmt: skip


def open_log(path: str | os.PathLike[str]) -> tuple[Log, bytes, Records]:
    """A log's header (TraceFormatError if it is not an iotrace log), its bytes, and a reader of
    all its records (read them through `reading`)."""
    p = Path(path)
    data = read_regular(p)
    if not data:
        raise TraceFormatError(f"{p}: empty file, not an iotrace log")
    header, first, chunk = read_header(data, p)
    log = Log(p, header)
    return (
        log,
        data,
        Records(data, first, len(data), chunk, len(log.functions), id_limit(len(data))),
    )


@contextmanager
def reading(log: Log) -> Iterator[None]:
    """What is wrong with the records read inside: one TraceFormatError naming the log and the
    byte (a whole log read: `truncated` set if it was cut short)."""
    try:
        yield
    except BadChunk as exc:
        raise TraceFormatError(
            f"{log.path}: corrupt log ({ERRORS[exc.code]} at byte {exc.off})"
        ) from None
    except BadRecordAt as exc:
        raise TraceFormatError(f"{log.path}: corrupt log (bad record at byte {exc.end})") from None


def read_log(path: str | os.PathLike[str]) -> Log:
    """Parse a whole log.  A log cut short (a crash, a copy) is read up to its last whole record
    and flagged `truncated`; anything that is not an iotrace log raises TraceFormatError."""
    log, _data, records = open_log(path)
    events = log.events
    with reading(log):
        for _start, _end, tid, rec in records:
            if rec[0] == Rec.EVENT:
                events.append(log.event_row(tid, rec))
            else:
                log.add(rec)
    log.truncated = records.truncated
    return log


# a run record's fields every reader relies on, with their types (src/iotrace/run.py writes them)
RUN_FIELDS: dict[str, type | tuple[type, ...]] = {
    "host": str,
    "pid": int,
    "argv": list,
    "start_real_ns": int,
    "start_mono_ns": int,
    "end_mono_ns": int,
    "returncode": int,
    "status": int,
}


def run_records(trace_dir: Path, paths: list[Path] | None = None) -> list[dict[str, Any]]:
    """The run records (iotrace-run.*.json, or `paths`: those the caller listed) that parse and
    have every field of RUN_FIELDS with its type; the others (damaged: a flipped bit can rename a
    key) are skipped, never guessed."""
    import json  # the readers' only: not on the stracer's start (issue 19)

    runs = []
    for p in sorted(trace_dir.glob("iotrace-run.*.json")) if paths is None else paths:
        try:
            rec = json.loads(read_regular(p, 1 << 20))
        except (OSError, ValueError, RecursionError, TraceFormatError):  # nested past the limit
            continue
        if isinstance(rec, dict) and all(
            isinstance(rec.get(k), t) and not isinstance(rec.get(k), bool)
            for k, t in RUN_FIELDS.items()
        ):
            runs.append(rec)
    return runs


def job_start(logs: list[Any], runs: list[dict[str, Any]]) -> int:
    """The job's start (CLOCK_REALTIME ns): the earliest run record or log header clock.  Every
    reader's times are counted from it (ns since the job's start)."""
    starts = [int(r["start_real_ns"]) for r in runs if isinstance(r.get("start_real_ns"), int)]
    starts += [int(lg.header["clock"]["real"]) for lg in logs if "clock" in lg.header]
    return min(starts) if starts else 0


def log_paths(trace_dir: str | os.PathLike[str]) -> list[Path]:
    """The process logs of a trace directory; TraceFormatError if it is not one.  A trace
    of stracer logs alone (`iotrace attach`) is one, with no process logs."""
    from iotrace.stracer.slog import SUFFIX

    d = Path(trace_dir)
    if not d.exists():
        raise TraceFormatError(f"{d}: no such trace directory")
    if not d.is_dir():
        raise TraceFormatError(f"{d}: not a directory (give the trace directory)")
    try:  # glob finds nothing in a directory it may not read: say why
        os.scandir(d).close()
    except OSError as exc:
        raise TraceFormatError(f"{d}: cannot read the trace directory ({exc.strerror})") from None
    logs = sorted(d.glob(f"*{LOG_SUFFIX}"))
    if not logs and not any(d.glob("iotrace-run.*.json")) and not any(d.glob(f"*{SUFFIX}")):
        raise TraceFormatError(f"{d}: not an iotrace trace directory (no *{LOG_SUFFIX} logs)")
    return logs


WINDOW = 4 << 20  # bytes of whole chunks a windowed reader reads at a time


def log_header(path: str | os.PathLike[str]) -> tuple[Log, int, int, int]:
    """A log's header alone, read with pread (TraceFormatError if it is not an iotrace log):
    the Log (no records yet), the file's size, the offset of its first chunk, its chunk size."""
    p = Path(path)
    with open_regular(p) as fd:
        size = os.fstat(fd).st_size
        if size == 0:
            raise UnwrittenLogError(f"{p}: empty file, not an iotrace log")
        header, first, chunk = read_header(_Pread(fd, size), p)
        size = data_end(fd, size, first, chunk)
    return Log(p, header), size, first, chunk


class Windows:
    """Records over a whole log read WINDOW bytes (whole chunks) at a time with pread, never
    the whole file at once (a reader of many large logs holds one window): (tid, record) of
    every record, in file order, checked as Records checks them (`limit` None: the records other
    than EVENT and THREAD unchecked; `events` False: EVENT records unchecked).  Read inside
    `reading(log)`: the errors name the file's bytes; `truncated` once read: the log was cut
    short."""

    def __init__(
        self,
        log: Log,
        size: int,
        first: int,
        chunk: int,
        limit: int | None,
        events: bool = True,
        window: int = WINDOW,
    ) -> None:
        self.log, self.size, self.first, self.chunk, self.limit = log, size, first, chunk, limit
        self.events = events
        self.step = max(1, window // chunk) * chunk
        self.truncated = False

    def __iter__(self) -> Iterator[tuple[int, tuple[Any, ...]]]:
        n_functions = len(self.log.functions)
        with open_regular(self.log.path) as fd:
            for start in range(self.first, self.size, self.step):
                buf = os.pread(fd, min(self.step, self.size - start), start)
                recs = Records(buf, 0, len(buf), self.chunk, n_functions, self.limit, self.events)
                try:
                    for _s, _e, tid, rec in recs:
                        yield tid, rec
                except BadChunk as exc:
                    raise BadChunk(exc.code, start + exc.off) from None
                except BadRecordAt as exc:
                    raise BadRecordAt(start + exc.start, start + exc.end) from None
                if recs.truncated or len(buf) < self.step:  # the file ends (or was trimmed)
                    self.truncated = self.truncated or recs.truncated
                    return
