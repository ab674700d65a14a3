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
- Ranks: the MPI rank; a trace without ranks gives each process (host, pid, start: a reused pid
  is two) a rank of its own in the order they started; in a trace with ranks, processes without
  one (the launcher) are left out and counted in the line `export` prints.
- Times are seconds since the job's start, as Darshan's; the job's start and end are the trace's.
"""

from __future__ import annotations

import errno
import marshal
import os
import sys
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import xxhash

from iotrace import __version__
from iotrace.calls import STDIO_UNDER
from iotrace.record import field, record
from iotrace.tracedir import check_replaceable

from . import proc_keys, schema
from .access import ALIGN, READ, WRITE, arrays, bucket_of, classify

if TYPE_CHECKING:
    from .access import Arrays
    from .load import Part
    from .parts import Bounded
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
int darshan_log_put_mod(void *fd, int mod_id, void *mod_buf, int mod_buf_sz, int ver);
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
MODULES = ("posix", "mpiio", "stdio", "dxt_posix", "dxt_mpiio")  # the records' order in the log
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


def _module_id(mod: str) -> int:
    """A module's id in this libdarshan-util (its enum grew between versions), as PyDarshan
    numbers them."""
    from darshan.backend.cffi_backend import mod_name_to_idx

    return int(mod_name_to_idx(mod.upper()))


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
        """Set a counter; one the module has not (STDIO keeps no access sizes...) is left."""
        if name in self.ci:
            self.c[self.ci[name]] = int(value)
        elif name in self.fi:
            self.f[self.fi[name]] = float(value)

    def tobytes(self) -> bytes:
        head = np.array([self.rid], dtype=np.uint64).tobytes()
        return head + np.int64(self.rank).tobytes() + self.c.tobytes() + self.f.tobytes()


@record
class Stats:
    """One module record (a rank's file) in forms that merge over parts of a trace: counters
    summed, least and most values (times in ns, seconds at the end), each direction's slowest
    access, the access sizes' counts, the read/write switches of each part (in time order),
    the last open's mode."""

    sums: dict[str, int] = field(default_factory=dict)
    ns: dict[str, int] = field(default_factory=dict)  # fcounters that are times: ns summed
    least: dict[str, int] = field(default_factory=dict)
    most: dict[str, int] = field(default_factory=dict)
    slowest: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # READ: dur, -t, bytes
    sizes: dict[int, int] = field(default_factory=dict)
    # per part: its first and last access's start, first and last direction (1: write), switches
    switches: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    mode: tuple[int, int] | None = None  # the last open's (t_start, flags)

    def add(self, o: Stats) -> None:
        """Another part's (a later one: ties keep the first slowest, the last open)."""
        for k, v in o.sums.items():
            self.sums[k] = self.sums.get(k, 0) + v
        for k, v in o.ns.items():
            self.ns[k] = self.ns.get(k, 0) + v
        for k, v in o.least.items():
            self.least[k] = min(self.least.get(k, v), v)
        for k, v in o.most.items():
            self.most[k] = max(self.most.get(k, v), v)
        for k, s in o.slowest.items():
            if k not in self.slowest or s[:2] > self.slowest[k][:2]:
                self.slowest[k] = s
        for k, v in o.sizes.items():
            self.sizes[k] = self.sizes.get(k, 0) + v
        self.switches += o.switches
        if o.mode is not None and (self.mode is None or o.mode[0] >= self.mode[0]):
            self.mode = o.mode

    def compact(self) -> None:
        """Its zero sums left out (a record's counters start at zero) and its counters' names
        shared: the records are held until the log is written, ~200,000 of them for a trace of
        100,000 short-lived processes (~6 KiB a record before, mostly zero sums)."""
        self.sums = {sys.intern(k): v for k, v in self.sums.items() if v}
        self.ns = {sys.intern(k): v for k, v in self.ns.items() if v}
        self.least = {sys.intern(k): v for k, v in self.least.items()}
        self.most = {sys.intern(k): v for k, v in self.most.items()}


Key = tuple[str, int, str]  # module, rank, path
# a DXT record's share in a part: the file its accesses are in, their offset there, write and
# read accesses, its first access's start and host
Piece = tuple[str, int, int, int, int, str]
SEGMENT = np.dtype([("off", "<i8"), ("len", "<i8"), ("t0", "<f8"), ("t1", "<f8")])
# a piece's accesses as written by its worker: in time order, each with its direction
ACCESS = np.dtype([*SEGMENT.descr, ("w", "u1")])
DXT_BATCH = 1 << 22  # bytes of accesses read at a time to merge a DXT record's pieces
DXT_VERSION = {"dxt_posix": 1, "dxt_mpiio": 2}  # DXT_POSIX_VER, DXT_MPIIO_VER (log_put_record's)


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


def _first_last(st: Stats, a: Arrays, idx: np.ndarray, start: str, end: str) -> None:
    if len(idx):
        st.least[start] = int(a.t_start[idx].min())
        st.most[end] = int(a.t_end[idx].max())


def _data_stats(
    st: Stats, a: Arrays, dur: np.ndarray, idx: np.ndarray, p: str, agg: str = ""
) -> None:
    """What every module counts of its data accesses `idx` (time order)."""
    for d, op in (("READ", READ), ("WRITE", WRITE)):
        sel = idx[a.op[idx] == op]
        past = "READ" if d == "READ" else "WRITTEN"
        st.sums[f"{p}_BYTES_{past}"] = int(a.bytes[sel].sum())
        known = sel[a.has_offset[sel]]
        if len(known):
            st.most[f"{p}_MAX_BYTE_{past}"] = int((a.offset[known] + a.bytes[known] - 1).max())
        st.ns[f"{p}_F_{d}_TIME"] = int(dur[sel].sum())
        _first_last(st, a, sel, f"{p}_F_{d}_START_TIMESTAMP", f"{p}_F_{d}_END_TIMESTAMP")
        if len(sel):
            i = sel[np.argmax(dur[sel])]  # the first of the slowest
            st.slowest[d] = (int(dur[i]), -int(a.t_start[i]), int(a.bytes[i]))
        hist = np.bincount(bucket_of(a.bytes[sel]), minlength=10)
        for j, label in enumerate(_SIZE_LABELS):
            st.sums[f"{p}_SIZE_{d}{agg}_{label}"] = int(hist[j])
    if len(idx):
        w = (a.op[idx] == WRITE).astype(np.int8)
        n = int(np.count_nonzero(np.diff(w)))
        st.switches.append((int(a.t_start[idx[0]]), int(a.t_start[idx[-1]]), int(w[0]),
                            int(w[-1]), n))  # fmt: skip
        sizes, counts = np.unique(a.bytes[idx], return_counts=True)
        st.sizes = dict(zip(sizes.tolist(), counts.tolist(), strict=True))


_SIZE_LABELS = ("0_100", "100_1K", "1K_10K", "10K_100K", "100K_1M", "1M_4M", "4M_10M",
                "10M_100M", "100M_1G", "1G_PLUS")  # fmt: skip


def _ranks(trace: Trace, a: Arrays) -> tuple[np.ndarray, int, int]:
    """Per event: its Darshan rank (-1: left out); nprocs; processes left out."""
    per_proc, nprocs, left_out = _rank_of(trace)
    lut = np.append(per_proc, -1) if len(per_proc) else np.array([-1], dtype=np.int64)
    return lut[a.proc], nprocs, left_out


def _rank_of(trace: Trace) -> tuple[np.ndarray, int, int]:
    """Per row of the processes table: its Darshan rank (-1: left out); nprocs; processes
    left out."""
    procs = trace.processes
    ranked = procs["rank"].notna()
    if ranked.any():
        per_proc = procs["rank"].fillna(-1).astype(np.int64).to_numpy()
        nprocs = int(procs.loc[ranked, "rank"].max()) + 1
        left_out = int((~ranked).sum())
    else:
        import pandas as pd

        # a process is (host, pid, start): a pid reused in the run is two (proc_keys)
        procs = procs.assign(key=proc_keys.of_trace(trace)[0])
        first = procs.sort_values("start").drop_duplicates(["host", "pid", "key"])
        # each process's number, found at once (a part's table holds every process of the trace)
        number = pd.MultiIndex.from_arrays([first["host"], first["pid"], first["key"]])
        per_proc = number.get_indexer(
            pd.MultiIndex.from_arrays([procs["host"], procs["pid"], procs["key"]])
        )
        per_proc = per_proc.astype(np.int64)
        nprocs, left_out = len(number), 0
    return per_proc, nprocs, left_out


@record
class _Layers:
    """Per event: which Darshan module counts it."""

    posix: np.ndarray
    stdio: np.ndarray
    mpi: np.ndarray
    data: np.ndarray  # a read or write that moved a known number of bytes


def _layers(a: Arrays) -> _Layers:
    # per function, then per event through its code (no per-event object array)
    fams = ("fd", "meta", "mmap", "syscall")
    lut = [schema.family_of(f) in fams or f in STDIO_UNDER for f in a.functions] + [False]
    posix = np.array(lut, dtype=bool)[a.fn]
    return _Layers(posix=posix, stdio=a.stdio, mpi=a.mpi, data=a.moved)


def _fn_mask(a: Arrays, names: frozenset[str] | tuple[str, ...]) -> np.ndarray:
    return np.array([f in names for f in a.functions] + [False], dtype=bool)[a.fn]


def _put(out: dict[Key, Stats], key: Key, st: Stats) -> None:
    if key in out:
        out[key].add(st)
    else:
        out[key] = st


def _posix(a: Arrays, lay: _Layers, rank: np.ndarray, cls: Any, out: dict[Key, Stats]) -> None:
    ok = a.errno == 0
    opens = (
        lay.posix
        & (a.op == schema.OP_NAMES.index("open"))
        & ~_fn_mask(a, frozenset({"opendir", "fdopendir"}))
    )
    closes = lay.posix & (a.op == schema.OP_NAMES.index("close"))
    consec = np.zeros(a.n, dtype=bool)
    seq = np.zeros(a.n, dtype=bool)
    consec[cls.idx[cls.consecutive]] = True
    seq[cls.idx[cls.sequential]] = True
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
    for g in _groups(rank, a.path, lay.posix, len(a.paths)):
        st = Stats()
        d = g.idx[data[g.idx]]
        st.sums["POSIX_READS"] = int(np.count_nonzero(a.op[d] == READ))
        st.sums["POSIX_WRITES"] = int(np.count_nonzero(a.op[d] == WRITE))
        for name, m in masks.items():
            st.sums[name] = int(np.count_nonzero(m[g.idx]))
        st.sums["POSIX_FILE_NOT_ALIGNED"] = int(np.count_nonzero(unaligned[g.idx]))
        _data_stats(st, a, dur, d, "POSIX")
        _first_last(st, a, g.idx[opens[g.idx]], "POSIX_F_OPEN_START_TIMESTAMP",
                    "POSIX_F_OPEN_END_TIMESTAMP")  # fmt: skip
        _first_last(st, a, g.idx[closes[g.idx]], "POSIX_F_CLOSE_START_TIMESTAMP",
                    "POSIX_F_CLOSE_END_TIMESTAMP")  # fmt: skip
        st.ns["POSIX_F_META_TIME"] = int(dur[g.idx[~data[g.idx]]].sum())
        _put(out, ("posix", g.rank, a.paths[g.path]), st)


def _stdio(a: Arrays, lay: _Layers, rank: np.ndarray, out: dict[Key, Stats]) -> None:
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
    for g in _groups(rank, a.path, lay.stdio, len(a.paths)):
        st = Stats()
        d = g.idx[data[g.idx]]
        st.sums["STDIO_READS"] = int(np.count_nonzero(a.op[d] == READ))
        st.sums["STDIO_WRITES"] = int(np.count_nonzero(a.op[d] == WRITE))
        for name, m in masks.items():
            st.sums[name] = int(np.count_nonzero(m[g.idx]))
        _data_stats(st, a, dur, d, "STDIO")
        _first_last(st, a, g.idx[opens[g.idx]], "STDIO_F_OPEN_START_TIMESTAMP",
                    "STDIO_F_OPEN_END_TIMESTAMP")  # fmt: skip
        _first_last(st, a, g.idx[closes[g.idx]], "STDIO_F_CLOSE_START_TIMESTAMP",
                    "STDIO_F_CLOSE_END_TIMESTAMP")  # fmt: skip
        st.ns["STDIO_F_META_TIME"] = int(dur[g.idx[~data[g.idx]]].sum())
        _put(out, ("stdio", g.rank, a.paths[g.path]), st)


def _mpiio(trace: Trace, a: Arrays, lay: _Layers, rank: np.ndarray, out: dict[Key, Stats]) -> None:
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
    for g in _groups(rank, a.path, lay.mpi, len(a.paths)):
        st = Stats()
        for name, m in masks.items():
            st.sums[name] = int(np.count_nonzero(m[g.idx]))
        mine = g.idx[opens[g.idx]]
        if len(mine):
            st.mode = (int(a.t_start[mine[-1]]), int(flags[mine[-1]]))
        d = g.idx[data[g.idx]]
        _data_stats(st, a, dur, d, "MPIIO", "_AGG")
        _first_last(st, a, g.idx[opens[g.idx]], "MPIIO_F_OPEN_START_TIMESTAMP",
                    "MPIIO_F_OPEN_END_TIMESTAMP")  # fmt: skip
        _first_last(st, a, g.idx[closes[g.idx]], "MPIIO_F_CLOSE_START_TIMESTAMP",
                    "MPIIO_F_CLOSE_END_TIMESTAMP")  # fmt: skip
        st.ns["MPIIO_F_META_TIME"] = int(dur[g.idx[~data[g.idx] & ~rd[g.idx]]].sum())
        _put(out, ("mpiio", g.rank, a.paths[g.path]), st)


def _dxt(
    trace: Trace, a: Arrays, masks: dict[str, np.ndarray], rank: np.ndarray, f: BinaryIO,
    out: dict[Key, list[Piece]],
) -> None:  # fmt: skip
    """Each (rank, file)'s data accesses in time order, with their direction, appended to `f`
    (a Piece each): the DXT segments, and the order of reads and writes (RW_SWITCHES)."""
    # each access's host by its code (a str per event took ~75 B each: 190 MiB for a part of
    # 2.5 M events, the Darshan export's peak)
    host = trace.events["host"]
    hosts, host_code = list(host.cat.categories), host.cat.codes.to_numpy()
    for mod, mask in masks.items():
        for g in _groups(rank, a.path, mask, len(a.paths)):
            s = g.idx
            acc = np.zeros(len(s), dtype=ACCESS)
            acc["off"] = np.where(a.has_offset[s], a.offset[s], -1)
            acc["len"] = a.bytes[s]
            acc["t0"] = a.t_start[s] / 1e9
            acc["t1"] = a.t_end[s] / 1e9
            acc["w"] = a.op[s] == WRITE
            pos = f.tell()
            f.write(acc.tobytes())
            nw = int(np.count_nonzero(acc["w"]))
            t, h = int(a.t_start[s[0]]), str(hosts[host_code[s[0]]])
            out.setdefault((mod, g.rank, a.paths[g.path]), []).append(
                (f.name, pos, nw, len(s) - nw, t, h)
            )


def _merged(pieces: list[Piece], want: int | None) -> Iterator[np.ndarray]:
    """The pieces' accesses (`want`: 1 the writes, 0 the reads, None all) in time order, a
    batch at a time: as a stable sort of their concatenation by start time would give them
    (each piece is in time order already; ties in piece order), holding ~DXT_BATCH bytes."""
    k = len(pieces)
    step = max(DXT_BATCH // (ACCESS.itemsize * k), 1)
    files = [open(p[0], "rb") for p in pieces]
    try:
        for f, p in zip(files, pieces, strict=True):
            f.seek(p[1])
        left = [p[2] + p[3] for p in pieces]  # accesses not read yet
        bufs = [np.zeros(0, dtype=ACCESS)] * k

        def refill(i: int) -> None:
            while not len(bufs[i]) and left[i]:
                n = min(step, left[i])
                b = np.frombuffer(files[i].read(n * ACCESS.itemsize), dtype=ACCESS)
                if len(b) != n:
                    raise OSError(0, "a DXT piece file is short", pieces[i][0])
                left[i] -= n
                bufs[i] = b if want is None else b[b["w"] == want]

        for i in range(k):
            refill(i)
        while True:
            live = [i for i in range(k) if len(bufs[i])]
            if not live:
                return
            # what no access still unread can precede: the least (last start, piece) of a
            # piece with more to read; every access up to it goes out now
            more = [(float(bufs[i]["t0"][-1]), i) for i in live if left[i]]
            bt, bi = min(more) if more else (np.inf, k)
            take = []
            for i in live:
                cut = int(np.searchsorted(bufs[i]["t0"], bt, side="right" if i <= bi else "left"))
                take.append(bufs[i][:cut])
                bufs[i] = bufs[i][cut:]
                refill(i)
            out = np.concatenate(take) if len(take) > 1 else take[0]
            if len(take) > 1:
                out = out[np.argsort(out["t0"], kind="stable")]
            if len(out):
                yield out
    finally:
        for f in files:
            f.close()


def _packed(st: Stats) -> bytes:
    return marshal.dumps((st.sums, st.ns, st.least, st.most, st.slowest, st.sizes, st.switches,
                          st.mode))  # fmt: skip


def _unpacked(b: Stats | bytes) -> Stats:
    """A record as held (Stats, or fold's bytes: marshal round-trips its ints, dicts, lists and
    tuples as they were)."""
    return b if isinstance(b, Stats) else Stats(*marshal.loads(b))


@record
class Collected:
    """A trace's (or a share of it's) Darshan records in forms that merge."""

    stats: dict[Key, Stats | bytes] = field(default_factory=dict)  # bytes: fold's, packed
    pieces: dict[Key, list[Piece]] = field(default_factory=dict)
    exact_names: dict[str, bytes] = field(default_factory=dict)
    duration: int = 0
    # the parts' own rows of the processes table, the job's start, the trace's directory
    # (collect_parts: export.trace_of_parts joins them)
    processes: list[Any] = field(default_factory=list)
    t0: int = 0
    dir: str = ""

    def add(self, o: Collected) -> None:
        for k, st in o.stats.items():
            _put(self.stats, k, st)  # type: ignore[arg-type]
        self._rest(o)

    def fold(self, o: Collected) -> None:
        """A task's records added in the command, each then held packed (_packed) until the
        log is written: a record of a process that opened a file once is ~0.8 KB so, ~3 KB as
        a Stats (its dicts, tracemalloc), ~0.3 GB of a trace of 100,000 such processes."""
        for k, st in o.stats.items():
            had = self.stats.get(k)
            if had is not None:
                prev = _unpacked(had)
                prev.add(st)  # type: ignore[arg-type]
                st = prev
            self.stats[k] = _packed(st)  # type: ignore[arg-type]
        o.stats = {}
        self._rest(o)

    def _rest(self, o: Collected) -> None:
        for k, ps in o.pieces.items():
            self.pieces.setdefault(k, []).extend(ps)
        self.exact_names.update(o.exact_names)
        self.duration = max(self.duration, o.duration)
        self.processes += o.processes
        if o.dir:
            self.t0, self.dir = o.t0, o.dir


def collect(trace: Trace, f: BinaryIO, streams: dict[Any, int] | None = None) -> Collected:
    """The trace's records (or a part's: `streams` its processes' streams, access.classify's
    carry), its DXT segments written to `f`."""
    a = arrays(trace.events)
    lay = _layers(a)
    rank = _ranks(trace, a)[0]
    out = Collected(exact_names=dict(trace.exact_names), duration=int(trace.duration))
    _posix(a, lay, rank, classify(a, streams), out.stats)
    _mpiio(trace, a, lay, rank, out.stats)
    _stdio(a, lay, rank, out.stats)
    dxt = {"dxt_posix": lay.posix & lay.data, "dxt_mpiio": lay.mpi & lay.data}
    _dxt(trace, a, dxt, rank, f, out.pieces)
    for st in out.stats.values():
        st.compact()
    return out


def collect_parts(trace_dir: str, task: list[Part], tmp: str, name: str, select: Any) -> Collected:
    """A task of the bounded path (a part, or a process's ranges in order: analyzer/parts.py)
    collected, its DXT segments in a file of its own under `tmp` (run in a worker)."""
    from .parts import _owned, load_part

    out = Collected()
    streams: dict[Any, int] = {}  # carried from range to range, as parts.partial does
    with open(Path(tmp) / f"{name}.dxt", "wb") as f:
        for part in task:
            tr = load_part(trace_dir, part, select)
            out.add(collect(tr, f, streams))
            out.processes.append(tr.processes[_owned(tr, part)])
            out.t0, out.dir = tr.t0, str(tr.dir)
    return out


def _counters(mod: str, rank: int, st: Stats, pieces: list[Piece] | None) -> _Counters:
    """A record's counters from its merged stats (`pieces`: its DXT record's)."""
    p = {"posix": "POSIX", "stdio": "STDIO", "mpiio": "MPIIO"}[mod]
    c = _Counters(library().names[mod], 0, rank)
    for k, v in st.sums.items():
        c[k] = v
    for k, v in st.ns.items():
        c[k] = v / 1e9
    for k, v in (st.least | st.most).items():
        c[k] = v / 1e9 if k in c.fi else v
    for d, (dur, _, size) in st.slowest.items():
        c[f"{p}_F_MAX_{d}_TIME"] = dur / 1e9
        c[f"{p}_MAX_{d}_TIME_SIZE"] = size
    if st.switches:
        c[f"{p}_RW_SWITCHES"] = _switches(st, pieces)
    top = sorted(st.sizes.items(), key=lambda t: (-t[1], -t[0]))[:4]
    for k, (size, n) in enumerate(top, 1):
        c[f"{p}_ACCESS{k}_ACCESS"] = size
        c[f"{p}_ACCESS{k}_COUNT"] = n
    if st.mode is not None:
        c[f"{p}_MODE"] = st.mode[1]
    if mod == "posix":
        c["POSIX_FILE_ALIGNMENT"] = ALIGN
    return c


def _put_dxt(put: Callable[[bytes], int], rid: int, rank: int, pieces: list[Piece]) -> None:
    """A DXT record from its pieces, handed to `put` a batch at a time (never held whole):
    its head, then the writes and the reads, each in time order."""
    nw, nr = sum(p[2] for p in pieces), sum(p[3] for p in pieces)
    host = min(pieces, key=lambda p: p[4])[5]
    head = np.uint64(rid).tobytes() + np.array([rank, 0], dtype=np.int64).tobytes()
    head += host.encode()[: HOSTNAME_SIZE - 1].ljust(HOSTNAME_SIZE, b"\0")
    put(head + np.array([nw, nr], dtype=np.int64).tobytes())
    for want in (1, 0):
        for batch in _merged(pieces, want):
            seg = np.empty(len(batch), dtype=SEGMENT)
            for name in SEGMENT.names:
                seg[name] = batch[name]
            put(seg.tobytes())


def _switches(st: Stats, pieces: list[Piece] | None) -> int:
    """RW_SWITCHES over a record's parts: each part's own and one where a part's last direction
    differs from the next one's first, when the parts follow each other in time; else (a rank's
    processes overlapping in different parts) counted over their accesses merged in time order
    (the DXT pieces)."""
    sw = sorted(st.switches, key=lambda s: s[0])
    if all(x[1] < y[0] for x, y in pairwise(sw)) or not pieces:
        return sum(s[4] for s in sw) + sum(x[3] != y[2] for x, y in pairwise(sw))
    n, last = 0, -1
    for batch in _merged(pieces, None):
        w = batch["w"].astype(np.int8)
        n += int(np.count_nonzero(np.diff(w))) + int(last >= 0 and last != w[0])
        last = int(w[-1])
    return n


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


def _check_out(out: Path) -> None:
    """What the library would fail on, said in one line before any work."""
    parent = out.parent
    if not parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such directory", str(parent))
    if not os.access(parent, os.W_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(parent))
    if out.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(out))
    check_replaceable(out)


def write_darshan(trace: Trace, out: Path) -> str:
    """Write `trace` (loaded whole) as a Darshan log at `out` (replaced atomically); returns
    what was written."""
    import tempfile

    library()
    _check_out(out)
    with tempfile.TemporaryFile(dir=out.parent) as f:
        got = collect(trace, f)  # type: ignore[arg-type]
        f.flush()
        name = f"/proc/self/fd/{f.fileno()}"
        got.pieces = {k: [(name, *p[1:]) for p in ps] for k, ps in got.pieces.items()}
        return _write_log(trace, got, out)


def write_darshan_parts(b: Bounded, out: Path) -> str:
    """write_darshan in bounded memory (analyzer/parts.py): each part's records as sums that
    merge (Stats), its DXT segments in a file of its own beside OUT; each DXT record is then
    assembled from its pieces and written, one at a time."""
    import shutil
    import tempfile

    from . import parts
    from .export import trace_of_parts

    library()
    _check_out(out)
    trace_dir, select = b.trace_dir, b.select
    plan, mapper = parts.planned(b)
    tmp = Path(tempfile.mkdtemp(prefix=".iotrace-export-", dir=out.parent))
    try:
        args = [(str(trace_dir), t, str(tmp), f"part-{k}", select)
                for k, t in enumerate(parts.groups(plan))]  # fmt: skip
        got = Collected()
        for c in mapper(collect_parts, args):
            got.fold(c)
        # the processes, the job's start and end: the parts' own rows joined
        frames, got.processes = got.processes, []
        head = trace_of_parts(got.dir or str(Path(trace_dir)), frames, got.t0, got.duration)
        del frames
        parts._warn(Path(trace_dir), head.processes)
        return _write_log(head, got, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_log(trace: Trace, got: Collected, out: Path) -> str:
    """The log from the merged records (`trace`: its processes, start, end and directory)."""
    L = library()
    ffi, lib = L.ffi, L.lib
    _, nprocs, left_out = _rank_of(trace)
    keys = sorted(got.stats, key=lambda k: (MODULES.index(k[0]), k[1], k[2]))
    dxt = sorted(got.pieces, key=lambda k: (MODULES.index(k[0]), k[1], k[2]))

    def exact(p: str) -> bytes:
        return got.exact_names.get(p) or p.encode()

    ids: dict[str, int] = {}
    for _, _, p in keys + dxt:
        if p not in ids:
            ids[p] = record_id(exact(p))
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
        for mod, rank, p in keys:
            st = _unpacked(got.stats[(mod, rank, p)])
            c = _counters(mod, rank, st, got.pieces.get((f"dxt_{mod}", rank, p)))
            c.rid = ids[p]
            buf = ffi.from_buffer(bytearray(c.tobytes()))
            put("record", getattr(lib, f"{mod}_logutils").log_put_record(fd, buf))
        for mod, rank, p in dxt:  # a batch of one record in memory at a time
            mod_id = _module_id(mod)

            def chunk(b: bytes, mod: str = mod, mod_id: int = mod_id) -> int:
                # log_put_record's own call (DXT's writes the record with one), a chunk at a
                # time: one compressed stream either way, the same bytes
                ret = lib.darshan_log_put_mod(fd, mod_id, ffi.from_buffer(b), len(b),
                                              DXT_VERSION[mod])  # fmt: skip
                put("DXT record", ret)
                return ret

            _put_dxt(chunk, ids[p], rank, got.pieces[(mod, rank, p)])
    finally:
        lib.darshan_log_close(fd)
    if failed or not tmp.exists():
        tmp.unlink(missing_ok=True)
        step = failed[0] if failed else "close"
        raise OSError(0, f"libdarshan-util failed writing the log ({step})", str(out))
    os.chmod(tmp, 0o600)
    os.replace(tmp, out)
    count = {m: sum(1 for k in keys + dxt if k[0] == m) for m in MODULES}
    what = (
        f"wrote a Darshan log to {out}: {count['posix']} POSIX, {count['stdio']} STDIO, "
        f"{count['mpiio']} MPI-IO records, DXT {count['dxt_posix']} POSIX and "
        f"{count['dxt_mpiio']} MPI-IO file traces, {nprocs} rank(s)"
    )
    if left_out:
        what += f"; {left_out} process(es) without an MPI rank left out"
    return what
