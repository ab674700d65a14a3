"""`iotrace export DIR --format darshan -o FILE.darshan`: the trace as a Darshan log.

The log is written by libdarshan-util's own writer (darshan_log_create, darshan_log_put_job /
_exe / _mounts / _namehash and each module's log_put_record), the library that PyDarshan ships
in its wheel (`pip install iotrace[darshan]`), called through cffi in ABI mode: no encoder of
our own, so PyDarshan, darshan-parser, `python -m darshan summary` and Drishti read it as they
read a log of Darshan's runtime.

What goes where (docs/analyzer.md, "Darshan logs", lists every counter filled and not):

- One record per (file, rank) and module: POSIX (descriptor, metadata and mmap calls, the
  stracer's syscalls, and stdio streams' refills and flushes: the POSIX layer of iotrace's
  files table, which is what reached the kernel), STDIO (the app's stdio calls), MPI-IO, and
  DXT_POSIX / DXT_MPIIO (one segment per data access of those layers, all of them: no 2 MiB cap).
- Ranks: the MPI rank; a trace without ranks gives each process (host, pid) a rank of its own in
  the order they started; in a trace with ranks, processes without one (the launcher) are left
  out and counted in the line `export` prints.
- Times are seconds since the job's start, as Darshan's; the job's start and end are the trace's.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xxhash

from iotrace import __version__
from iotrace.calls import STDIO_UNDER
from iotrace.record import record

from . import schema
from .access import ALIGN, READ, WRITE, arrays, bucket_of, classify

if TYPE_CHECKING:
    from .access import Arrays
    from .trace import Trace

_CDEF = """
typedef uint64_t darshan_record_id;
struct darshan_job {
    int64_t uid; int64_t start_time_sec; int64_t start_time_nsec;
    int64_t end_time_sec; int64_t end_time_nsec; int64_t nprocs; int64_t jobid;
    char metadata[1024];
};
typedef struct UT_hash_handle {
    void *tbl; void *prev; void *next; void *hh_prev; void *hh_next; void *key;
    unsigned keylen; unsigned hashv;
} UT_hash_handle;
struct darshan_mnt_info { char mnt_type[3015]; char mnt_path[3015]; };
struct darshan_name_record_ref { void *name_record; UT_hash_handle hlink; };
struct darshan_mod_logutil_funcs {
    int (*log_get_record)(void *fd, void **buf);
    int (*log_put_record)(void *fd, void *buf);
};  /* its first two members: the only ones called */
void *darshan_log_create(const char *name, int comp_type, int partial_flag);
int darshan_log_put_job(void *fd, struct darshan_job *job);
int darshan_log_put_exe(void *fd, char *buf);
int darshan_log_put_mounts(void *fd, struct darshan_mnt_info *mnt_data_array, int count);
int darshan_log_put_namehash(void *fd, struct darshan_name_record_ref *hash);
void darshan_log_close(void *fd);
char *darshan_log_get_lib_version(void);
extern struct darshan_mod_logutil_funcs posix_logutils, mpiio_logutils, stdio_logutils,
    dxt_posix_logutils, dxt_mpiio_logutils;
extern char *posix_counter_names[], *posix_f_counter_names[], *stdio_counter_names[],
    *stdio_f_counter_names[], *mpiio_counter_names[], *mpiio_f_counter_names[];
"""
ZLIB = 0  # enum darshan_comp_type
EXE_MAX = 3000  # the exe string shares the job region with the mounts (DARSHAN_EXE_LEN 3015)
HOSTNAME_SIZE = 64  # struct dxt_file_record
STAT_CALLS = frozenset({"stat", "lstat", "fstat", "fstatat", "statx", "newfstatat"})
RENAMES = frozenset({"rename", "renameat", "renameat2"})
STDIO_SEEKS = frozenset({"fseek", "rewind", "fsetpos"})  # Darshan counts no ftell/fgetpos
MPI_INDEP = ("MPI_File_read", "MPI_File_write", "MPI_File_read_at", "MPI_File_write_at",
             "MPI_File_read_shared", "MPI_File_write_shared")  # fmt: skip
MPI_COLL = ("MPI_File_read_all", "MPI_File_write_all", "MPI_File_read_at_all",
            "MPI_File_write_at_all", "MPI_File_read_ordered", "MPI_File_write_ordered")  # fmt: skip
MPI_NB = ("MPI_File_iread", "MPI_File_iwrite", "MPI_File_iread_at", "MPI_File_iwrite_at",
          "MPI_File_iread_all", "MPI_File_iwrite_all", "MPI_File_iread_at_all",
          "MPI_File_iwrite_at_all")  # fmt: skip


class DarshanUnavailable(Exception):
    """libdarshan-util (PyDarshan's wheel) is not installed: one line for the user."""


@record
class _Lib:
    ffi: Any
    lib: Any
    names: dict[str, tuple[list[str], list[str]]]  # module -> (counter names, fcounter names)


_LIB: list[_Lib] = []


def _names(arr: Any, ffi: Any) -> list[str]:
    """A module's counter names from the library, up to its *_NUM_INDICES end marker."""
    out: list[str] = []
    while True:
        s = ffi.string(arr[len(out)]).decode()
        if s.endswith("NUM_INDICES"):
            return out
        out.append(s)


def library() -> _Lib:
    """PyDarshan's libdarshan-util, found the way PyDarshan finds it."""
    if _LIB:
        return _LIB[0]
    try:
        import cffi
        from darshan.discover_darshan import find_utils
    except ImportError:
        raise DarshanUnavailable(
            "export --format darshan needs PyDarshan's libdarshan-util: "
            "pip install 'iotrace[darshan]' (or: pip install darshan)"
        ) from None
    ffi = cffi.FFI()
    ffi.cdef(_CDEF)
    try:
        lib = find_utils(ffi, None)
    except Exception as exc:  # PyDarshan raises RuntimeError and others when nothing loads
        raise DarshanUnavailable(f"cannot load libdarshan-util: {exc}") from None
    names = {
        m: (_names(getattr(lib, f"{m}_counter_names"), ffi),
            _names(getattr(lib, f"{m}_f_counter_names"), ffi))
        for m in ("posix", "stdio", "mpiio")
    }  # fmt: skip
    _LIB.append(_Lib(ffi, lib, names))
    return _LIB[0]


def record_id(name: bytes) -> int:
    """A 64-bit id per file name (Darshan hashes the name too, with its own hash)."""
    return xxhash.xxh3_64_intdigest(name)


class _Counters:
    """One module record: counters and fcounters by name, then its bytes."""

    def __init__(self, names: tuple[list[str], list[str]], rid: int, rank: int) -> None:
        self.ci = {n: i for i, n in enumerate(names[0])}
        self.fi = {n: i for i, n in enumerate(names[1])}
        self.c = np.zeros(len(names[0]), dtype=np.int64)
        self.f = np.zeros(len(names[1]), dtype=np.float64)
        self.rid, self.rank = rid, rank

    def __setitem__(self, name: str, value: float) -> None:
        if name in self.ci:
            self.c[self.ci[name]] = int(value)
        else:
            self.f[self.fi[name]] = float(value)

    def tobytes(self) -> bytes:
        head = np.array([self.rid], dtype=np.uint64).tobytes()
        return head + np.int64(self.rank).tobytes() + self.c.tobytes() + self.f.tobytes()


@record
class _Group:
    """The events of one (rank, file) in one layer, as index arrays into the trace's events."""

    rank: int
    path: int  # code into Arrays.paths
    idx: np.ndarray


def _groups(rank: np.ndarray, path: np.ndarray, mask: np.ndarray, npaths: int) -> list[_Group]:
    sel = np.flatnonzero(mask & (rank >= 0) & (path >= 0))
    if len(sel) == 0:
        return []
    key = rank[sel].astype(np.int64) * (npaths + 1) + path[sel]
    order = np.argsort(key, kind="stable")  # events stay in time order within a group
    sel, key = sel[order], key[order]
    cuts = np.flatnonzero(np.diff(key)) + 1
    return [_Group(int(rank[g[0]]), int(path[g[0]]), g) for g in np.split(sel, cuts)]


def _ranks(trace: Trace, a: Arrays) -> tuple[np.ndarray, int, int]:
    """Per event: its Darshan rank (-1: left out); nprocs; processes left out."""
    procs = trace.processes
    ranked = procs["rank"].notna()
    if ranked.any():
        per_proc = procs["rank"].fillna(-1).astype(np.int64).to_numpy()
        nprocs = int(procs.loc[ranked, "rank"].max()) + 1
        left_out = int((~ranked).sum())
    else:
        first = procs.sort_values("start").drop_duplicates(["host", "pid"])
        keys = list(zip(first["host"], first["pid"], strict=True))
        number = {k: i for i, k in enumerate(keys)}
        per_proc = np.array(
            [number[k] for k in zip(procs["host"], procs["pid"], strict=True)], dtype=np.int64
        )
        nprocs, left_out = len(number), 0
    lut = np.append(per_proc, -1) if len(per_proc) else np.array([-1], dtype=np.int64)
    return lut[a.proc], nprocs, left_out


def _secs(ns: np.ndarray) -> np.ndarray:
    return ns.astype(np.float64) / 1e9


def _first_last(c: _Counters, a: Arrays, idx: np.ndarray, start: str, end: str) -> None:
    if len(idx):
        c[start] = a.t_start[idx].min() / 1e9
        c[end] = a.t_end[idx].max() / 1e9


def _data_counters(c: _Counters, a: Arrays, idx: np.ndarray, p: str, agg: str = "") -> None:
    """Counters every module shares over its data accesses `idx` (time order)."""
    rd = idx[a.op[idx] == READ]
    wr = idx[a.op[idx] == WRITE]
    dur = a.t_end - a.t_start
    for d, sel in (("READ", rd), ("WRITE", wr)):
        past = "READ" if d == "READ" else "WRITTEN"
        c[f"{p}_BYTES_{past}"] = a.bytes[sel].sum()
        known = sel[a.has_offset[sel]]
        if len(known) and f"{p}_MAX_BYTE_{past}" in c.ci:
            c[f"{p}_MAX_BYTE_{past}"] = (a.offset[known] + a.bytes[known] - 1).max()
        if f"{p}_F_{d}_TIME" in c.fi:
            c[f"{p}_F_{d}_TIME"] = _secs(dur[sel]).sum()
        _first_last(c, a, sel, f"{p}_F_{d}_START_TIMESTAMP", f"{p}_F_{d}_END_TIMESTAMP")
        if f"{p}_F_MAX_{d}_TIME" in c.fi and len(sel):
            slowest = sel[np.argmax(dur[sel])]
            c[f"{p}_F_MAX_{d}_TIME"] = dur[slowest] / 1e9
            c[f"{p}_MAX_{d}_TIME_SIZE"] = a.bytes[slowest]
        if f"{p}_SIZE_{d}{agg}_0_100" in c.ci:
            hist = np.bincount(bucket_of(a.bytes[sel]), minlength=10)
            for j, label in enumerate(_SIZE_LABELS):
                c[f"{p}_SIZE_{d}{agg}_{label}"] = hist[j]
    if f"{p}_RW_SWITCHES" in c.ci:
        w = (a.op[idx] == WRITE).astype(np.int8)
        c[f"{p}_RW_SWITCHES"] = int(np.count_nonzero(np.diff(w)))
    if f"{p}_ACCESS1_ACCESS" in c.ci and len(idx):
        sizes, counts = np.unique(a.bytes[idx], return_counts=True)
        pairs = zip(counts.tolist(), sizes.tolist(), strict=True)
        top = sorted(pairs, key=lambda t: (-t[0], -t[1]))[:4]
        for k, (n, size) in enumerate(top, 1):
            c[f"{p}_ACCESS{k}_ACCESS"] = size
            c[f"{p}_ACCESS{k}_COUNT"] = n


_SIZE_LABELS = ("0_100", "100_1K", "1K_10K", "10K_100K", "100K_1M", "1M_4M", "4M_10M",
                "10M_100M", "100M_1G", "1G_PLUS")  # fmt: skip


@record
class _Layers:
    """Per event: which Darshan module counts it."""

    posix: np.ndarray
    stdio: np.ndarray
    mpi: np.ndarray
    data: np.ndarray  # a read or write that moved a known number of bytes


def _layers(a: Arrays) -> _Layers:
    fam = np.array([schema.family_of(f) for f in a.functions] + [""], dtype=object)[a.fn]
    under = np.array([f in STDIO_UNDER for f in a.functions] + [False], dtype=bool)[a.fn]
    posix = np.isin(fam, ["fd", "meta", "mmap", "syscall"]) | under
    return _Layers(posix=posix, stdio=a.stdio, mpi=a.mpi, data=a.moved)


def _fn_mask(a: Arrays, names: frozenset[str] | tuple[str, ...]) -> np.ndarray:
    return np.array([f in names for f in a.functions] + [False], dtype=bool)[a.fn]


def posix_records(trace: Trace, a: Arrays, lay: _Layers, rank: np.ndarray) -> list[_Counters]:
    lib = library()
    ok = a.errno == 0
    opens = (
        lay.posix
        & (a.op == schema.OP_NAMES.index("open"))
        & ~_fn_mask(a, frozenset({"opendir", "fdopendir"}))
    )
    closes = lay.posix & (a.op == schema.OP_NAMES.index("close"))
    c_cls = classify(a)
    consec = np.zeros(a.n, dtype=bool)
    seq = np.zeros(a.n, dtype=bool)
    consec[c_cls.idx[c_cls.consecutive]] = True
    seq[c_cls.idx[c_cls.sequential]] = True
    masks = {
        "POSIX_OPENS": opens & ok,
        "POSIX_DUPS": lay.posix & ok & (a.op == schema.OP_NAMES.index("dup")),
        "POSIX_SEEKS": lay.posix & ok & (a.op == schema.OP_NAMES.index("seek")),
        "POSIX_STATS": lay.posix & ok & _fn_mask(a, STAT_CALLS),
        "POSIX_MMAPS": lay.posix & ok & _fn_mask(a, frozenset({"mmap"})),
        "POSIX_FSYNCS": lay.posix & ok & _fn_mask(a, frozenset({"fsync"})),
        "POSIX_FDSYNCS": lay.posix & ok & _fn_mask(a, frozenset({"fdatasync"})),
        "POSIX_RENAME_SOURCES": lay.posix & ok & _fn_mask(a, RENAMES),
        "POSIX_CONSEC_READS": consec & (a.op == READ),
        "POSIX_CONSEC_WRITES": consec & (a.op == WRITE),
        "POSIX_SEQ_READS": seq & (a.op == READ),
        "POSIX_SEQ_WRITES": seq & (a.op == WRITE),
    }
    data = lay.posix & lay.data
    unaligned = data & a.has_offset & (a.offset % ALIGN != 0)
    dur = a.t_end - a.t_start
    out = []
    for g in _groups(rank, a.path, lay.posix, len(a.paths)):
        c = _Counters(lib.names["posix"], 0, g.rank)
        d = g.idx[data[g.idx]]
        c["POSIX_READS"] = np.count_nonzero(a.op[d] == READ)
        c["POSIX_WRITES"] = np.count_nonzero(a.op[d] == WRITE)
        for name, m in masks.items():
            c[name] = np.count_nonzero(m[g.idx])
        c["POSIX_FILE_ALIGNMENT"] = ALIGN
        c["POSIX_FILE_NOT_ALIGNED"] = np.count_nonzero(unaligned[g.idx])
        _data_counters(c, a, d, "POSIX")
        _first_last(c, a, g.idx[opens[g.idx]], "POSIX_F_OPEN_START_TIMESTAMP",
                    "POSIX_F_OPEN_END_TIMESTAMP")  # fmt: skip
        _first_last(c, a, g.idx[closes[g.idx]], "POSIX_F_CLOSE_START_TIMESTAMP",
                    "POSIX_F_CLOSE_END_TIMESTAMP")  # fmt: skip
        c["POSIX_F_META_TIME"] = _secs(dur[g.idx[~data[g.idx]]]).sum()
        out.append(_named(c, g, a))
    return out


def stdio_records(trace: Trace, a: Arrays, lay: _Layers, rank: np.ndarray) -> list[_Counters]:
    lib = library()
    ok = a.errno == 0
    opens = lay.stdio & (a.op == schema.OP_NAMES.index("open"))
    fdopens = _fn_mask(a, frozenset({"fdopen"}))
    closes = lay.stdio & (a.op == schema.OP_NAMES.index("close"))
    masks = {
        "STDIO_OPENS": opens & ok & ~fdopens,
        "STDIO_FDOPENS": opens & ok & fdopens,
        "STDIO_SEEKS": lay.stdio & ok & _fn_mask(a, STDIO_SEEKS),
        "STDIO_FLUSHES": lay.stdio & ok & _fn_mask(a, frozenset({"fflush"})),
    }
    data = lay.stdio & lay.data
    dur = a.t_end - a.t_start
    out = []
    for g in _groups(rank, a.path, lay.stdio, len(a.paths)):
        c = _Counters(lib.names["stdio"], 0, g.rank)
        d = g.idx[data[g.idx]]
        c["STDIO_READS"] = np.count_nonzero(a.op[d] == READ)
        c["STDIO_WRITES"] = np.count_nonzero(a.op[d] == WRITE)
        for name, m in masks.items():
            c[name] = np.count_nonzero(m[g.idx])
        _data_counters(c, a, d, "STDIO")
        _first_last(c, a, g.idx[opens[g.idx]], "STDIO_F_OPEN_START_TIMESTAMP",
                    "STDIO_F_OPEN_END_TIMESTAMP")  # fmt: skip
        _first_last(c, a, g.idx[closes[g.idx]], "STDIO_F_CLOSE_START_TIMESTAMP",
                    "STDIO_F_CLOSE_END_TIMESTAMP")  # fmt: skip
        c["STDIO_F_META_TIME"] = _secs(dur[g.idx[~data[g.idx]]]).sum()
        out.append(_named(c, g, a))
    return out


def mpiio_records(trace: Trace, a: Arrays, lay: _Layers, rank: np.ndarray) -> list[_Counters]:
    lib = library()
    ok = a.errno == 0
    opens = lay.mpi & _fn_mask(a, frozenset({"MPI_File_open"}))
    closes = lay.mpi & _fn_mask(a, frozenset({"MPI_File_close"}))
    rd = a.op == READ
    posted = {
        "INDEP": _fn_mask(a, MPI_INDEP),
        "COLL": _fn_mask(a, MPI_COLL),
        "NB": _fn_mask(a, MPI_NB),
    }
    reads_named = _fn_mask(a, tuple(f for f in MPI_INDEP + MPI_COLL + MPI_NB if "read" in f))
    masks = {
        "MPIIO_COLL_OPENS": opens & ok,
        "MPIIO_SYNCS": ok & _fn_mask(a, frozenset({"MPI_File_sync"})),
        "MPIIO_VIEWS": ok & _fn_mask(a, frozenset({"MPI_File_set_view"})),
    }
    for kind, m in posted.items():
        masks[f"MPIIO_{kind}_READS"] = m & ok & reads_named
        masks[f"MPIIO_{kind}_WRITES"] = m & ok & ~reads_named
    data = lay.mpi & lay.data
    dur = a.t_end - a.t_start
    flags = trace.events["flags"].to_numpy(dtype=np.int64, na_value=0)
    out = []
    for g in _groups(rank, a.path, lay.mpi, len(a.paths)):
        c = _Counters(lib.names["mpiio"], 0, g.rank)
        for name, m in masks.items():
            c[name] = np.count_nonzero(m[g.idx])
        mine = g.idx[opens[g.idx]]
        if len(mine):
            c["MPIIO_MODE"] = flags[mine[-1]]
        d = g.idx[data[g.idx]]
        _data_counters(c, a, d, "MPIIO", "_AGG")
        _first_last(c, a, g.idx[opens[g.idx]], "MPIIO_F_OPEN_START_TIMESTAMP",
                    "MPIIO_F_OPEN_END_TIMESTAMP")  # fmt: skip
        _first_last(c, a, g.idx[closes[g.idx]], "MPIIO_F_CLOSE_START_TIMESTAMP",
                    "MPIIO_F_CLOSE_END_TIMESTAMP")  # fmt: skip
        c["MPIIO_F_META_TIME"] = _secs(dur[g.idx[~data[g.idx] & ~rd[g.idx]]]).sum()
        out.append(_named(c, g, a))
    return out


def _named(c: _Counters, g: _Group, a: Arrays) -> _Counters:
    c.path = a.paths[g.path]  # type: ignore[attr-defined]
    return c


def dxt_records(
    trace: Trace, a: Arrays, mask: np.ndarray, rank: np.ndarray
) -> list[tuple[str, bytes]]:
    """(path, the dxt_file_record and its write segments, then its read segments)."""
    hosts = trace.events["host"].astype(str).to_numpy()
    out = []
    for g in _groups(rank, a.path, mask, len(a.paths)):
        segs = []
        for op in (WRITE, READ):
            s = g.idx[a.op[g.idx] == op]
            seg = np.zeros(len(s), dtype=[("off", "<i8"), ("len", "<i8"), ("t0", "<f8"),
                                          ("t1", "<f8")])  # fmt: skip
            seg["off"] = np.where(a.has_offset[s], a.offset[s], -1)
            seg["len"] = a.bytes[s]
            seg["t0"] = _secs(a.t_start[s])
            seg["t1"] = _secs(a.t_end[s])
            segs.append(seg)
        host = hosts[g.idx[0]].encode()[: HOSTNAME_SIZE - 1].ljust(HOSTNAME_SIZE, b"\0")
        head = np.array([0, g.rank, 0], dtype=np.int64).tobytes() + host
        head += np.array([len(segs[0]), len(segs[1])], dtype=np.int64).tobytes()
        out.append((a.paths[g.path], head + segs[0].tobytes() + segs[1].tobytes()))
    return out


def _job_uid(trace: Trace) -> int:
    try:
        return os.stat(trace.dir).st_uid
    except OSError:
        return 0


def _exe(trace: Trace) -> bytes:
    procs = trace.processes
    top = procs[~procs["forked"]] if len(procs) else procs
    cmd = str(top.sort_values("start")["command"].iloc[0]) if len(top) else ""
    # readers take the exe up to the first newline, where the mount table starts
    return cmd.encode(errors="surrogateescape")[:EXE_MAX].replace(b"\n", b" ")


def write_darshan(trace: Trace, out: Path) -> str:
    """Write `trace` as a Darshan log at `out` (replaced atomically); returns what was written."""
    L = library()
    ffi, lib = L.ffi, L.lib
    a = arrays(trace.events)
    lay = _layers(a)
    rank, nprocs, left_out = _ranks(trace, a)
    posix = posix_records(trace, a, lay, rank)
    mpiio = mpiio_records(trace, a, lay, rank)
    stdio = stdio_records(trace, a, lay, rank)
    dxt_posix = dxt_records(trace, a, lay.posix & lay.data, rank)
    dxt_mpiio = dxt_records(trace, a, lay.mpi & lay.data, rank)

    def exact(p: str) -> bytes:
        return trace.exact_names.get(p) or p.encode()

    ids: dict[str, int] = {}
    for recs in (posix, mpiio, stdio):
        for r in recs:
            ids.setdefault(r.path, record_id(exact(r.path)))
    for recs2 in (dxt_posix, dxt_mpiio):
        for p, _ in recs2:
            ids.setdefault(p, record_id(exact(p)))

    # the library prints its own errors: what we can see coming is said here in one line
    parent = out.parent
    if not parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such directory", str(parent))
    if not os.access(parent, os.W_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(parent))
    if out.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(out))
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = lib.darshan_log_create(str(tmp).encode(), ZLIB, 0)
    if fd == ffi.NULL:
        raise OSError(0, "libdarshan-util cannot create the log", str(out))
    keep: list[Any] = []
    failed = []

    def put(what: str, ret: int) -> None:
        if ret < 0:
            failed.append(what)

    try:
        job = ffi.new("struct darshan_job *")
        job.uid = _job_uid(trace)
        job.start_time_sec, job.start_time_nsec = divmod(trace.t0, 1_000_000_000)
        job.end_time_sec, job.end_time_nsec = divmod(trace.t0 + trace.duration, 1_000_000_000)
        job.nprocs = nprocs
        job.jobid = 0
        # the runtime's version, as `darshan summary` shows it: the writer of this log
        job.metadata = f"lib_ver=iotrace-{__version__}\n".encode()
        put("job", lib.darshan_log_put_job(fd, job))
        put("exe", lib.darshan_log_put_exe(fd, ffi.new("char[]", _exe(trace))))
        # the trace has no mount table: one entry, "/" of an unknown type, that readers need
        mnt = ffi.new("struct darshan_mnt_info *")
        mnt.mnt_type, mnt.mnt_path = b"unknown", b"/"
        put("mounts", lib.darshan_log_put_mounts(fd, mnt, 1))
        refs = ffi.new("struct darshan_name_record_ref[]", max(len(ids), 1))
        for i, (p, rid) in enumerate(ids.items()):
            rec = ffi.new("char[]", np.uint64(rid).tobytes() + exact(p) + b"\0")
            keep.append(rec)
            refs[i].name_record = rec
            refs[i].hlink.next = ffi.addressof(refs, i + 1) if i + 1 < len(ids) else ffi.NULL
        if ids:  # HASH_ITER follows hlink.next from element to element
            put("names", lib.darshan_log_put_namehash(fd, refs))
        for funcs, recs in ((lib.posix_logutils, posix), (lib.mpiio_logutils, mpiio),
                            (lib.stdio_logutils, stdio)):  # fmt: skip
            for r in recs:
                r.rid = ids[r.path]
                buf = ffi.from_buffer(bytearray(r.tobytes()))
                put("record", funcs.log_put_record(fd, buf))
        for funcs, recs2 in ((lib.dxt_posix_logutils, dxt_posix),
                             (lib.dxt_mpiio_logutils, dxt_mpiio)):  # fmt: skip
            for p, raw in recs2:
                buf = bytearray(np.uint64(ids[p]).tobytes() + raw[8:])
                put("DXT record", funcs.log_put_record(fd, ffi.from_buffer(buf)))
    finally:
        lib.darshan_log_close(fd)
    if failed or not tmp.exists():
        tmp.unlink(missing_ok=True)
        step = failed[0] if failed else "close"
        raise OSError(0, f"libdarshan-util failed writing the log ({step})", str(out))
    os.chmod(tmp, 0o600)
    os.replace(tmp, out)
    what = (
        f"wrote a Darshan log to {out}: {len(posix)} POSIX, {len(stdio)} STDIO, {len(mpiio)} "
        f"MPI-IO records, DXT {len(dxt_posix)} POSIX and "
        f"{len(dxt_mpiio)} MPI-IO file traces, {nprocs} rank(s)"
    )
    if left_out:
        what += f"; {left_out} process(es) without an MPI rank left out"
    return what
