"""The one table of every record's layout: the shim's log, the stracer's log, the shim<->stracer
link.

Each record is a tuple of `Field`s in wire order (name, kind, nullability, and the dtype of the
analyzer's column where it keeps one).  Everything else is generated from it:

- C: `iot_format.h` (written at build time next to calls.h, which includes it): record types,
  field positions (`IOT_EV_fd`), null bits, and X-macros in wire order that the C writers and
  readers expand (`IOT_EVENT_BASE(X)` in preload/pack.c and analyzer/_decode.c,
  `IOT_MISSED_BASE(X)` in stracer/_loop.c, `IOT_LINK_FIELDS(X)` for preload/shim.h's
  iot_link_t);
- Python: the positions (`EV.fd`, `MS.t_exit`), the analyzer's raw columns and null bits, the
  struct formats of the link (`LINK`, `BOX_HEAD`, `BOX_MSG`).

Adding a field: append it to its record here (a reader skips fields it does not know), write it
in the C writer's X-macro expansion (a field without one is a compile error), and document it in
docs/format.md.  A record's layout that readers must know about bumps FORMAT_VERSION
(or the stracer log's VERSION).

This module must import nothing outside the standard library: CMake runs calls.py, which
imports it, as a script.
"""

from __future__ import annotations

import struct
from enum import IntEnum

from iotrace.record import record

FORMAT_NAME = "iotrace"
FORMAT_VERSION = 2  # 2: chunks and the header sealed with a checksum (SEAL_EXT_TYPE)
CHUNK_SIZE = 32 * 1024  # per-thread chunk of the log file
# A chunk (and the header) the writer finished ends in a seal: an ext32 object of this type whose
# first 8 bytes are the XXH3-64 (seed 0, big-endian) of everything before it in the chunk (the
# header: in the file), the rest meaningless padding up to the next chunk boundary.
SEAL_EXT_TYPE = 126
SEAL_SIZE = 14  # the smallest seal: ext32 header (6 bytes) and the 8-byte checksum
# brackets (monotonic, real, monotonic) read for a header's clock pair, the narrowest kept
# (src/iotrace/_clockpair.h, stracer/slog.py clock_pair)
CLOCK_PAIR_TRIES = 4


@record(frozen=True)
class Field:
    """One field of a record.  `kind`: uint, int, id (a STRING or STACK id), str, bin, list,
    map, aux (nil, an int or [int, int]).  `dtype`: the analyzer's raw column of an EVENT field
    ("" = not kept)."""

    name: str
    kind: str
    nullable: bool = False
    dtype: str = ""

    @property
    def cname(self) -> str:
        """The name in C, where `errno` is a macro and `class` a C++ keyword."""
        return {"errno": "err", "class": "cls"}.get(self.name, self.name)


def _fields(spec: str) -> tuple[Field, ...]:
    """'name:kind[?][:dtype] ...' -- `?` marks a nullable field."""
    out = []
    for item in spec.split():
        name, kind, *dtype = item.split(":")
        out.append(Field(name, kind.rstrip("?"), kind.endswith("?"), dtype[0] if dtype else ""))
    return tuple(out)


# ---- the shim's log (.iot): records inside chunks ------------------------------------------


class Rec(IntEnum):
    """Record types: the first element of every record array inside a chunk."""

    EVENT = 0
    STRING = 1
    STACK = 2
    THREAD = 3  # first record of every chunk
    MODULE = 4
    EXIT = 5  # exit()/_exit() called with status
    KIO = 6
    DATA = 7  # `iotrace run -s N`: the bytes of the EVENT just before it
    SHAPE = 8  # an HDF5 dataset made or opened: its datatype size, dimensions, chunk dimensions
    SELECTION = 9  # an H5Dread/H5Dwrite: its selection's bytes in the file, the chunks it touches
    SECCOMP = 10  # the app installed a seccomp filter: what the shim could not record after it


# fmt: off
RECORDS: dict[Rec, tuple[Field, ...]] = {
    # one wrapped call; fd2 path2 offset2 only on calls with two ends (calls.EVENT_ENDS)
    Rec.EVENT: _fields(
        "rec:uint fn:uint:int16 t_start:uint:int64 dur:uint:int64 fd:int?:int32 path:id?:int32"
        " req:int?:int64 ret:int:int64 errno:int:int32 offset:int?:int64 flags:int?:int32"
        " mode:int? stack:id?:int32 aux:aux?"
        " fd2:int? path2:id? offset2:int?"
    ),
    Rec.STRING: _fields("rec:uint id:uint text:str"),
    Rec.STACK: _fields("rec:uint id:uint pcs:list"),
    Rec.THREAD: _fields("rec:uint tid:int"),
    Rec.MODULE: _fields("rec:uint base:uint lo:uint hi:uint path:str build_id:bin?"),
    Rec.EXIT: _fields("rec:uint t:uint status:int"),
    # counters: KIO_FIELDS; own: KIO_OWN_FIELDS; pending: [bytes, streams]; sums: KIO_SUM_FIELDS;
    # uring: KIO_URING_FIELDS; lost: [errno, euid]: why the reading could not be taken (0: it
    # was; else counters []) and the process's effective uid; next: [KIO_NEXT code] at an exec
    # (trailing fields since they were added: readers take them as optional)
    Rec.KIO: _fields(
        "rec:uint when:uint t:uint counters:list own:list pending:list sums:list uring:list"
        " lost:list next:list"
    ),
    # the first bytes of its EVENT's buffer; (tid, t_start) are the EVENT's, for readers that
    # do not keep records in order
    Rec.DATA: _fields("rec:uint tid:int t_start:uint data:bin"),
    # of the EVENT (tid, t_start) that made or opened a dataset (H5Dcreate2, H5Dopen2, H5Oopen):
    # its datatype's size, its dataspace's dimensions, its chunk dimensions ([] not chunked)
    Rec.SHAPE: _fields("rec:uint tid:int t_start:uint size:int dims:list chunk:list"),
    # of the H5Dread/H5Dwrite EVENT (tid, t_start): the bytes its selection covers in the file
    # (elements x the dataset's datatype size); on a chunked dataset the chunks its selection's
    # bounding box touches and how many of them it covers only in part (else nil)
    Rec.SELECTION: _fields("rec:uint tid:int t_start:uint bytes:int chunks:uint? partial:uint?"),
    # the app installed a seccomp filter at t (preload/sandbox.c); dropped: the records the shim
    # could not write after it (no room left, and making more is a syscall); untraced: the calls
    # it let through without an event (a thread started after it; every call after strict
    # mode): the stracer sees those, the shim alone does not; both raised in place; nnp: 1 when
    # the shim alone went out at the app's prctl(PR_SET_NO_NEW_PRIVS), which comes before a
    # filter it may install unseen (an inline syscall), 0 once an install is seen (in place)
    Rec.SECCOMP: _fields("rec:uint t:uint dropped:uint untraced:uint nnp:uint?"),
}
# fmt: on
EVENT = RECORDS[Rec.EVENT]
EVENT_FIELDS = tuple(f.name for f in EVENT)
EVENT_BASE_FIELDS = EVENT_FIELDS.index("aux") + 1  # fields every EVENT has
EV = IntEnum("EV", [(f.name, i) for i, f in enumerate(EVENT)])  # positions: rec[EV.fd]
KI = IntEnum("KI", [(f.name, i) for i, f in enumerate(RECORDS[Rec.KIO])])  # rec[KI.uring]
# the end read of a call with two ends is a row of its own in the analyzer, in these columns
END2_COLUMNS = {"fd2": "fd", "path2": "path", "offset2": "offset"}

KIO_FIELDS = (
    "rchar", "wchar", "syscr", "syscw", "read_bytes", "write_bytes", "cancelled_write_bytes",
)  # fmt: skip
KIO_OWN_FIELDS = ("rchar", "wchar", "syscr", "syscw")  # the shim's own syscalls, in KIO records
KIO_SUM_FIELDS = ("rchar", "wchar", "syscr", "syscw", "stdio_read", "stdio_written")
# io_uring the process held at the reading, seen by the shim alone (at exec and exit, without a
# stracer): descriptors anon_inode:[io_uring] in /proc/self/fd, ring regions mapped from one
# and liburing's library in /proc/self/maps (its lines)
KIO_URING_FIELDS = ("fds", "maps", "liburing")
# when the shim read them (`when` of its KIO records): at its start, before an exec, in exit()'s
# last handler (stdio's final flush comes after), in _exit() (stdio's buffers are discarded),
# before the app installed a seccomp filter (the image's last: no syscall of the shim's after)
KIO_WHEN = ("start", "exec", "exit", "_exit", "seccomp")
# why the image an exec starts may have no log of its own, as the shim saw it before the exec
# (`next` of its exec reading without a stracer): the program is set-user-ID or set-group-ID and
# runs with other ids (secure execution: the loader ignores LD_PRELOAD), or the trace directory
# is not writable for the process's effective ids (its uid changed: the new image cannot create
# its log).  Code i + 1 is KIO_NEXT[i].
KIO_NEXT = ("setid", "unwritable")
# The completeness computation's code of each reading's `when` (src/iotrace/_kio.c, kio.py,
# launcher/end.c): the shim's KIO_WHEN and the stracer's own, "end" and "attach".
KIO_READING_WHEN = ("start", "exec", "exit", "_exit", "end", "attach", "seccomp")

# The analyzer's raw event columns (analyzer/event_columns.py, analyzer/_decode.c), in this order:
# the thread, the EVENT fields with a dtype, and a bit set of the nil fields.
RAW_COLUMNS: tuple[tuple[str, str], ...] = (
    ("tid", "int32"),
    *((f.name, f.dtype) for f in EVENT if f.dtype),
    ("nulls", "uint16"),
)
# Bits of `nulls`: the field was nil (each nullable field of an EVENT's base, in order), then
# AUXPAIR: aux was an array ([dev, inode]); END2: the row is the end read of a call with two ends
# (the record's fd2/path2/offset2 in fd/path/offset; the row before it is the end written);
# MODE_W: `mode` (not a column) has bit 1, an mmap's PROT_WRITE (analyzer: writable mappings).
NULL_BITS: dict[str, int] = {
    name: 1 << i
    for i, name in enumerate(
        [f.name for f in EVENT[:EVENT_BASE_FIELDS] if f.nullable] + ["auxpair", "end2", "mode_w"]
    )
}
# The fewest bytes per row of events: an EVENT is a fixarray of one-byte fields (one row), or of
# all of them (two rows: a call with two ends).
MIN_EVENT_BYTES = min(1 + EVENT_BASE_FIELDS, (1 + len(EVENT)) // 2)


# ---- the stracer's log (.stracer) --------------------------------------------------------------


class SRec(IntEnum):
    """Record types of the stracer's log: the first element of every record array."""

    MISSED = 0
    SITE = 1  # [1, site, [[pc, module, offset, function, file, line], ...], libc_function]
    PROC = 2  # SPROC
    COUNTS = 3  # [3, pid, {"covered": n, "loader": n, "shim": n, "libc": n, "bypass": n}]
    END = 4  # [4, t, returncode]
    KIO = 5  # SKIO
    SEAL = 6  # [6, xxh3_64 of the bytes since the previous seal (the first: since the start)]
    STOP = 7  # [7, tid, t, ns]: the stracer held thread tid from t for ns (version 7)


# MISSED: one I/O syscall no wrapper covered.  Its base; then (offset fd2 path2 offset2) on a call
# with two ends; then `via` on an operation of an asynchronous engine (after nil ends).
MISSED = _fields(
    "rec:uint t:uint pid:int tid:int syscall:str args:list ret:int? errno:int site:int fd:int?"
    " path:str? t_exit:uint? class:str"
    " offset:int? fd2:int? path2:str? offset2:int?"
    " via:str"
)
MISSED_FIELDS = tuple(f.name for f in MISSED)
MS = IntEnum("MS", [(f.name, i) for i, f in enumerate(MISSED)])  # positions: rec[MS.t_exit]
MISSED_BASE_FIELDS = MISSED_FIELDS.index("class") + 1
MISSED_SIZES = (MISSED_BASE_FIELDS, MISSED_FIELDS.index("via"), len(MISSED))
# PROC: what happened to process pid at t: fork (ppid: its parent), exec (detail: {"exe": ...}),
# shim (its phase), exit (detail: its status), untraced, nspid, attach
SPROC = _fields("rec:uint t:uint pid:int ppid:int? what:str detail:any?")
SP = IntEnum("SP", [(f.name, i) for i, f in enumerate(SPROC)])  # positions: rec[SP.what]
# KIO: the kernel's counters of process pid at t (KIO_FIELDS); own: the I/O of the threads the
# shim started (KIO_OWN_FIELDS); when: end, exec or attach; at the end (trailing, optional since
# they were added): threads, the sum of each thread's own counters (KIO_OWN_FIELDS), and shim,
# the shim's own I/O and its events' sums in the process's memory (KIO_OWN_FIELDS +
# KIO_SUM_FIELDS)
SKIO = _fields("rec:uint t:uint pid:int counters:list own:list when:str threads:list? shim:list?")
SK = IntEnum("SK", [(f.name, i) for i, f in enumerate(SKIO)])  # positions: rec[SK.when]
SKIO_LENS = {"threads": len(KIO_OWN_FIELDS), "shim": len(KIO_OWN_FIELDS) + len(KIO_SUM_FIELDS)}


def fits(f: Field, v: object) -> bool:
    """A value of field `f`'s kind (no range checks)."""
    if v is None:
        return f.nullable
    if f.kind == "any":
        return True
    if f.kind in ("uint", "int", "id"):
        return isinstance(v, int) and not isinstance(v, bool)
    if f.kind == "aux":
        return isinstance(v, (int, list, tuple)) and not isinstance(v, bool)
    kinds: dict[str, type | tuple[type, ...]] = {
        "str": str, "bin": bytes, "list": (list, tuple), "map": dict,
    }  # fmt: skip
    return isinstance(v, kinds[f.kind])


# ---- the shim<->stracer link (preload/stracer_link.c, stracer/tracer.py) ----------------------
#
# The stracer reads and writes these in the traced process's memory: little-endian, packed.


@record(frozen=True)
class Layout:
    """A C struct shared with the stracer: (C type, name, what) in order."""

    name: str
    fields: tuple[tuple[str, str, str], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for _, n, _ in self.fields)

    @property
    def struct(self) -> struct.Struct:
        return self.prefix(None)

    def prefix(self, upto: str | None) -> struct.Struct:
        """The fields before `upto` (None: all of them)."""
        n = self.names.index(upto) if upto else len(self.fields)
        return struct.Struct("<" + "".join(_CODES[t.split()[-1]] for t, _, _ in self.fields[:n]))

    def offset(self, name: str) -> int:
        return self.prefix(name).size

    def unpack(self, raw: bytes) -> dict[str, int]:
        return dict(zip(self.names, self.struct.unpack(raw), strict=True))


_CODES = {"uint32_t": "I", "int32_t": "i", "uint64_t": "Q", "int64_t": "q"}

LINK_MAGIC = 0x6C746F69  # "iotl": iot_link.magic
LINK_VERSION = 6  # 2: fdgen; 3: fd news fetched (older shims listened on ZeroMQ); 4: kio_*;
# 5: unwind_fd gone (libunwind's address checks no longer use a pipe); 6: sandbox_entry
HELLO_MAGIC = 0x696F74726163654C  # "iotraceL": first argument of a hello and a fetch (getpid)
LINK_FETCH = 0x6663746C  # the fetch's third argument (the hello's is a state)
# in rdx at the breakpoint that ends the shim's handling of a raw seccomp install
# (preload/sandbox.c iot_sandbox_entry); rax holds the install's result
LINK_RESUME = 0x6D736572
BOX_MAGIC = 0x62746F69  # "iotb"
BOX_SIZE = 65536  # the shim's box
# fmt: off
LINK = Layout("iot_link", (
    ("uint32_t", "magic", ""),
    ("uint32_t", "version", ""),
    ("int32_t", "tls_off", "&iot_t - thread pointer: the markers are at fs_base + tls_off"),
    ("int32_t", "state", "iot_p.state at the hello"),
    ("volatile uint64_t", "posted", "fd messages queued: raised by the stracer"),
    ("uint64_t", "seen", "fd messages applied"),
    ("volatile uint64_t", "fdgen", "raised around every descriptor change the stracer does not "
     "stop for: its fd -> path cache of this process is valid while this stays the same"),
    ("uint64_t", "bad", "malformed fd messages dropped (read by the stracer)"),
    # read by the stracer at a process's exit stop, where an image that took no reading at its
    # end (a raw exit_group) still holds them (preload/kio.c)
    ("uint64_t", "kio_own", "address of the shim's own I/O: rchar, wchar, syscr, syscw (u64)"),
    ("uint64_t", "kio_gone", "address of the events' sums of the threads gone (u64 x 6)"),
    ("uint64_t", "kio_live", "address of the live threads' sums: KIO_LIVE_MAX pointers"),
    ("uint64_t", "sandbox_entry", "address of the shim's entry for a raw seccomp install "
     "the stracer stopped (preload/sandbox.c)"),
))
KIO_LIVE_MAX = 1024  # preload/kio.c's table of live threads' event sums
# a fetch's answer: this head, then `count` messages, each its size (u32) and that many bytes:
# BOX_MSG and the path (no NUL, only for op 1)
BOX_HEAD = Layout("iot_box_head", (
    ("uint32_t", "magic", ""),
    ("uint32_t", "count", ""),
    ("uint64_t", "upto", "iot_link.seen once these are applied"),
    ("uint32_t", "bytes", ""),
    ("uint32_t", "pad", ""),
))
BOX_MSG = Layout("iot_box_msg", (
    ("int32_t", "op", "1 open, 2 dup a->b, 3 close a, 4 close a..b"),
    ("int32_t", "a", ""),
    ("int32_t", "b", ""),
    ("int32_t", "pad", ""),
))
# fmt: on
LAYOUTS = (LINK, BOX_HEAD, BOX_MSG)


# ---- C ------------------------------------------------------------------------------------------


def _xmacro(name: str, items: list[str]) -> list[str]:
    return [f"#define {name}(X) \\"] + [f"    X({i}) \\" for i in items] + [""]


def c_header() -> str:
    """iot_format.h: the layouts above for the C writers and readers (no code, no data)."""
    out = [
        "/* Generated from src/iotrace/format.py -- do not edit. */",
        "#ifndef IOT_FORMAT_H",
        "#define IOT_FORMAT_H",
        "#include <stdint.h>",
        f'#define IOT_FORMAT_NAME "{FORMAT_NAME}"',
        f"#define IOT_FORMAT_VERSION {FORMAT_VERSION}",
        f"#define IOT_CHUNK_SIZE {CHUNK_SIZE}",
        f"#define IOT_SEAL_EXT_TYPE {SEAL_EXT_TYPE}",
        f"#define IOT_SEAL_SIZE {SEAL_SIZE}",
        f"#define IOT_CLOCK_PAIR_TRIES {CLOCK_PAIR_TRIES}",
        f"#define IOT_EVENT_NFIELDS {len(EVENT)}",
        f"#define IOT_EVENT_BASE_FIELDS {EVENT_BASE_FIELDS}",
        f"#define IOT_KIO_N {len(KIO_FIELDS)}",
        f"#define IOT_KIO_OWN_N {len(KIO_OWN_FIELDS)}",
        f"#define IOT_KIO_SUMS_N {len(KIO_SUM_FIELDS)}",
        f"#define IOT_KIO_URING_N {len(KIO_URING_FIELDS)}",
    ]
    out += [f"#define IOT_KIO_{w.upper()} {i}" for i, w in enumerate(KIO_WHEN)]
    out += [f"#define IOT_KIO_NEXT_{w.upper()} {i + 1}" for i, w in enumerate(KIO_NEXT)]
    out += [f"#define IOT_KIO_AT_{w.upper()} {i}" for i, w in enumerate(KIO_READING_WHEN)]
    # the code of each of the shim's KIO_WHEN, in its order
    out.append("#define IOT_KIO_WHEN_AT {" + ", ".join(f"IOT_KIO_AT_{w.upper()}"
                                                      for w in KIO_WHEN) + "}")  # fmt: skip
    out.append("#define IOT_KIO_FIELD_NAMES " + ", ".join(f'"{n}"' for n in KIO_FIELDS))
    for r in Rec:
        out += [f"#define IOT_REC_{r.name} {r.value}",
                f"#define IOT_REC_{r.name}_NFIELDS {len(RECORDS[r])}"]  # fmt: skip
    out += [f"#define IOT_EV_{f.cname} {i}" for i, f in enumerate(EVENT)]
    out += [f"#define IOT_NULL_{k} {v}" for k, v in NULL_BITS.items()]
    # X(name, position): an EVENT's fields in wire order; its base, then the two ends' fields
    out += _xmacro("IOT_EVENT_BASE", [f"{f.cname}, {i}" for i, f in enumerate(EVENT)
                                      if i < EVENT_BASE_FIELDS])  # fmt: skip
    out += _xmacro("IOT_EVENT_ENDS", [f"{f.cname}, {i}" for i, f in enumerate(EVENT)
                                      if i >= EVENT_BASE_FIELDS])  # fmt: skip
    # X(name, position, null bit): the nullable fields of an EVENT's base
    out += _xmacro("IOT_EVENT_NULLABLE", [f"{f.cname}, {i}, {NULL_BITS[f.name]}"
                                          for i, f in enumerate(EVENT[:EVENT_BASE_FIELDS])
                                          if f.nullable])  # fmt: skip
    # X(C type, name): the analyzer's raw columns
    out += _xmacro("IOT_RAW_COLUMNS", [f"{t}_t, {'err' if n == 'errno' else n}"
                                       for n, t in RAW_COLUMNS])  # fmt: skip
    # X(C type, name, position): the EVENT fields kept as columns
    out += _xmacro("IOT_EVENT_COLUMNS", [f"{f.dtype}_t, {f.cname}, {i}"
                                         for i, f in enumerate(EVENT) if f.dtype])  # fmt: skip
    # the stracer's log
    out += [f"#define IOT_SREC_{r.name} {r.value}" for r in SRec]
    out += [f"#define IOT_MS_{f.cname} {i}" for i, f in enumerate(MISSED)]
    out.append(f"#define IOT_MISSED_BASE_FIELDS {MISSED_BASE_FIELDS}")
    out += _xmacro(
        "IOT_MISSED_BASE", [f"{f.cname}, {i}" for i, f in enumerate(MISSED[:MISSED_BASE_FIELDS])]
    )
    # the link
    out += [
        f"#define IOT_LINK_MAGIC {LINK_MAGIC:#x}u",
        f"#define IOT_LINK_VERSION {LINK_VERSION}",
        f"#define IOT_KIO_LIVE_MAX {KIO_LIVE_MAX}",
        f"#define IOT_HELLO_MAGIC {HELLO_MAGIC:#x}L",
        f"#define IOT_LINK_FETCH {LINK_FETCH:#x}L",
        f"#define IOT_LINK_RESUME {LINK_RESUME:#x}L",
        f"#define IOT_BOX_MAGIC {BOX_MAGIC:#x}u",
        f"#define IOT_BOX_SIZE {BOX_SIZE}",
    ]
    for lay in LAYOUTS:
        up = lay.name.upper()
        out += _xmacro(f"{up}_FIELDS", [f"{t}, {n}" for t, n, _ in lay.fields])
        out += [f"#define {up}_OFF_{n} {lay.offset(n)}" for _, n, _ in lay.fields]
        out.append(f"#define {up}_SIZE {lay.struct.size}")
    out += ["#endif", ""]
    return "\n".join(out)
