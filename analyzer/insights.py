"""What a performance engineer would flag, each with the numbers behind it.

Every finding carries its `subject` (the file, directory or rank it is about) and its evidence
(calls, bytes, time, share of the job's I/O time); its level follows the time at stake, and the
findings are ranked by it, so the first is the one that would save the most.  File findings
judge the app's data files (access.is_data_file: system and runtime files apart) at the level
that reached the kernel (stdio's refills and flushes, not the app's buffered calls; an MPI-IO
call's POSIX requests are judged at the MPI level).  The rules and thresholds are module
constants, documented in docs/analyzer.md.
"""

from __future__ import annotations

import errno as errno_mod
import os
import posixpath
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from iotrace.calls import Op
from iotrace.record import field, record

from .access import ALIGN, DESCRIPTORS, OP_CODE, READ, SMALL, WRITE, Arrays, Classified, op_in
from .datasets import SMALL_WRITE, chunking_findings
from .fmt import fmt_bytes, fmt_pct, fmt_time
from .group_scans import max_by, sums

if TYPE_CHECKING:
    from .summary import Summary
    from .trace import Trace

SMALL_SHARE = 0.5  # more than this share of a file's reads (writes) below SMALL bytes...
SMALL_MIN_OPS = 100  # ...out of at least this many
RANDOM_SHARE = 0.2  # a file whose accesses go backwards more often than this...
RANDOM_MIN_OPS = 50  # ...out of at least this many with a known offset
UNALIGNED_SHARE = 0.1  # more than this share of accesses at offsets not a multiple of ALIGN...
UNALIGNED_MIN_OPS = 100  # ...out of at least this many
META_STORM_OPS = 1000  # at least this many opens/closes/stats/... in one directory, or in
META_DIR_OPS = 100  # ...the directories with at least this many each (a storm spread over them)
META_ONE_FILE = 0.5  # a storm's file named: this share of its directory's operations or more
RANK_RATIO = 2.0  # a rank's I/O time (bytes) at least this times the median of the ranks...
RANK_MIN_NS = 10_000_000  # ...and at least this much more time (10 ms)...
RANK_MIN_BYTES = 1 << 20  # ...or this many more bytes (1 MiB)
OUTLIER_SPREAD = 0.5  # outliers named: within this share of the furthest one's excess
AGGREGATOR_RATIO = 1.5  # POSIX bytes inside collective calls over the rank's own MPI bytes
SHARED_MIN_RANKS = 2  # a file written by at least this many ranks
INDEPENDENT_MIN_CALLS = 16  # independent MPI-IO data calls on a shared file: at least this many...
INDEPENDENT_SHARE = 0.5  # ...and more than this share of the MPI-IO data calls on it
DATASET_SMALL_MIN_CALLS = 8  # independent dataset writes < datasets.SMALL_WRITE, several ranks
SYNC_MIN_CALLS = 32  # fsync/fdatasync/msync calls on one data file: at least this many...
SYNC_WRITES = 4  # ...and one at least every this many of its writes (a sync per write or so)
# fewer syncs (2 or more) that take this share of the file I/O time (make demo's 3 fsyncs: 97%
# of it idle, 42% on a loaded machine whose page cache throttled the checkpoints' writes)
SYNC_TIME_SHARE = 0.25
WHOLE_MIN_BYTES = 1 << 20  # a file of at least this size read whole by 2 ranks or more
WHOLE_SHARE = 0.99  # ...each rank at least this share of it (HDF5: its metadata read once)
REREAD_RATIO = 4  # one process read a data file's bytes at least this many times over...
REREAD_MIN_BYTES = 1 << 20  # ...and at least this many bytes more than the file's once
AMPLIFY_RATIO = 4  # stdio read at least this times the bytes the app's stdio reads asked...
AMPLIFY_MIN_REFILLS = 100  # ...in at least this many refills of the stream's buffer
# the level of a finding by the time at stake: its share of the job's I/O time
HIGH_SHARE = 0.25
WARN_SHARE = 0.05
MIN_STAKE_NS = 1_000_000  # below 1 ms at stake a finding is info, whatever its share
LEVELS = ("high", "warn", "info")
# not failures: "try again" answers of non-blocking and interrupted calls (errno 0 too)
NOT_FAILED = (0, errno_mod.EAGAIN, errno_mod.EINTR, errno_mod.EINPROGRESS)
NOT_FILE_CALLS = frozenset({"socket", "socketpair"})  # a runtime probing address families
FILE_OPS = (Op.OPEN, Op.CLOSE, Op.READ, Op.WRITE, Op.SEEK, Op.SYNC, Op.META)
TOP_SUBJECTS = 5  # the subjects a finding lists (its numbers hold up to this many)
# not findings: listed after them
CONTEXT = frozenset({"io-time-share", "truncated-logs", "runtime-failed-calls",
                     "untold-failed-calls", "collective-wait"})  # fmt: skip
# a failed call whose chain meets one of these before the program (runtime_calls) is the
# parallel runtime's (MPI, PMIx, UCX, libfabric, hwloc: its session directory's mkdir -p, its
# configuration probes in $HOME and the working directory), not the app's; POSIX calls failed
# inside an MPI-IO call that failed stay the app's (ROMIO's open of a missing file is the app's
# MPI_File_open), inside one that succeeded they are the MPI-IO layer's (Counts.of)
RUNTIME_MODULES = re.compile(
    r"^(libmpi|libmpich|libopen-(pal|rte)|libpmix|libprrte|libpmi|libucs|libucp|libuct|libucm"
    r"|libfabric|libpsm|libinfinipath|libibverbs|librdmacm|libhwloc|libevent|mca_|libmca_)"
    r"[-_.a-z0-9]*\.so"
)
# the MPI launchers' own processes (mpirun's, Hydra's): what fails in them is the runtime's too
# (Hydra's ~/.mpiexec.hydra.conf, its PATH search for ssh)
MPI_LAUNCHERS = frozenset({"mpirun", "mpiexec", "orterun", "orted", "prterun", "prted",
                           "mpiexec.hydra", "hydra_pmi_proxy", "mpirun.openmpi",
                           "mpiexec.openmpi", "mpirun.mpich", "mpiexec.mpich"})  # fmt: skip


@record
class Insight:
    key: str
    level: str  # high | warn | info
    title: str
    detail: str
    numbers: dict[str, Any] = field(default_factory=dict)
    subject: str = ""  # the file, directory, rank or call site it is about
    # calls, bytes, time (ns) at stake, share (of the job's I/O time)
    evidence: dict[str, Any] = field(default_factory=dict)


PATTERN_COLUMNS = ["path", "direction", "calls", "bytes", "time", "small", "small_time",
                   "small_bytes", "known", "random", "unaligned", "unaligned_time"]  # fmt: skip
GROUPED_COLUMNS = ["path", "function", "calls", "errors", "time"]  # _grouped's
META_COLUMNS = [*GROUPED_COLUMNS, "ranks"]  # ranks: how many made them (summed over parts)
# bytes: the lengths msync'd (0: the other syncs); procs: the processes that made them (parts
# are whole processes: the sum over parts is the trace's), pid and rank: theirs when one did
SYNC_COLUMNS = [*GROUPED_COLUMNS, "bytes", "procs", "pid", "rank"]
MPIIO_COLUMNS = ["path", "calls", "independent", "bytes", "time", "writes", "written"]
COLLECTIVE_COLUMNS = ["path", "rank", "t_start", "t_end", "setup"]
STDIO_COLUMNS = ["path", "calls", "bytes", "seeks", "refills", "refill_bytes", "refill_time"]
STDIO_SEEKS = ("fseek", "fsetpos", "rewind")  # what moves a stream (ftell, fgetpos only ask)


_EMPTY: dict[tuple[str, ...], pd.DataFrame] = {}


def _frame(cols: list[str], data: dict[str, Any] | None = None) -> pd.DataFrame:
    if data is None:  # a copy of one made once (making it: ~0.7 ms, a part makes several)
        key = tuple(cols)
        if key not in _EMPTY:
            text = ("path", "direction", "function")
            _EMPTY[key] = pd.DataFrame(
                {c: pd.Series([], dtype=object if c in text else "int64") for c in cols}
            )
        return _EMPTY[key].copy()
    return pd.DataFrame(data, columns=cols)


def _summed(frames: list[pd.DataFrame], keys: list[str]) -> pd.DataFrame:
    """Rows with the same keys summed, sorted by the keys (the same whatever the parts)."""
    nonempty = [f for f in frames if len(f)]
    if not nonempty:
        return frames[0]
    df = pd.concat(nonempty, ignore_index=True)
    return df.groupby(keys, sort=True).sum().reset_index()


@record
class Counts:
    """What the findings need of the events, as sums that add up over parts of a trace
    (analyzer/parts.py merges them; summarise makes them of the whole trace at once):
    - patterns: per (path, direction) of the judged data files (access.is_data_file, system
      files too with --system) at the level that reached the kernel (not the POSIX requests
      inside MPI-IO calls, not 0-byte end-of-file reads): calls, bytes, time, small ones (count,
      time, bytes), accesses at a known offset and the random ones, unaligned ones (count, time);
      pattern_ranks: per (path, direction, rank) of the same accesses by ranks: [calls, small,
      unaligned, random, bytes] (a finding names the ranks that made what it is about);
    - meta: metadata operations per (path, function) on the kept files: calls, errors, time,
      the ranks that made them (summary.directories groups them by directory);
    - ranks: per rank on the judged files, bytes [own, aggregated, mpi] (rank_view);
    - mpiio: MPI-IO data calls per judged file (calls, independent ones, their bytes and time,
      the writes and their bytes) and the (path, rank) pairs of the independent ones;
      mpiio_reads: per (path, rank, function) the bytes the rank's MPI-IO reads returned
      (read-by-every-rank:
      ranks that each read a whole input through MPI-IO, HDF5's MPI-IO driver included);
    - errors: failed file calls by (function, errno): [calls, time]; error_paths: per path;
      runtime_errors, runtime_error_paths: the same of the calls the parallel runtime made
      (runtime_calls); untold_errors, untold_error_paths: of those neither can be told of
      (no stack, in a process that loaded the runtime);
    - collective: each collective MPI-IO call on a judged file by a rank (open, close, view,
      sync, *_all): path, rank, its start and end (collective_waits matches them across ranks),
      setup 1 for an open or close (their time is no file I/O time: summary.file_time_mask);
    - uring: io_uring rings mapped (pids, mmaps, rings);
    - system: what the system and runtime files cost: [calls, bytes, time] and their paths;
    - mapped: the judged files mapped MAP_SHARED (stores through such a mapping reach the file
      with no write call): [mappings, their bytes, msync calls, their bytes] and the paths;
    - syncs: the syncs (fsync, fdatasync, msync, MPI_File_sync; not stdio's fflush, not the
      POSIX ones inside MPI-IO calls, not HDF5's) per (path, function) of the judged files:
      calls, errors, time, the bytes msync'd, the processes that made them (their pid and
      rank when one did);
    - rereads: per judged file the process that read REREAD_RATIO times its highest offset
      read or more (the most bytes, if several): [bytes, that offset, time, pid, rank];
    - stdio: per judged file the app's stdio reads (calls, the bytes they returned), its
      seeks (STDIO_SEEKS) and the refills of the streams' buffers under them (calls, bytes,
      time): what stdio read from the file for what the app asked."""

    patterns: pd.DataFrame = field(default_factory=lambda: _frame(PATTERN_COLUMNS))
    pattern_ranks: dict[tuple[str, str, int], list[int]] = field(default_factory=dict)
    meta: pd.DataFrame = field(default_factory=lambda: _frame(META_COLUMNS))
    ranks: dict[int, list[int]] = field(default_factory=dict)
    mpiio: pd.DataFrame = field(default_factory=lambda: _frame(MPIIO_COLUMNS))
    mpiio_ranks: set[tuple[str, int]] = field(default_factory=set)
    mpiio_reads: dict[tuple[str, int, str], int] = field(default_factory=dict)
    collective: pd.DataFrame = field(default_factory=lambda: _frame(COLLECTIVE_COLUMNS))
    errors: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    error_paths: dict[str, int] = field(default_factory=dict)
    runtime_errors: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    runtime_error_paths: dict[str, int] = field(default_factory=dict)
    untold_errors: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    untold_error_paths: dict[str, int] = field(default_factory=dict)
    uring: list[Any] = field(default_factory=lambda: [set(), 0, 0])
    system: list[int] = field(default_factory=lambda: [0, 0, 0])
    system_paths: set[str] = field(default_factory=set)
    mapped: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    mapped_paths: set[str] = field(default_factory=set)
    syncs: pd.DataFrame = field(default_factory=lambda: _frame(SYNC_COLUMNS))
    stdio: pd.DataFrame = field(default_factory=lambda: _frame(STDIO_COLUMNS))
    rereads: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, trace: Trace, a: Arrays, c: Classified, parent: np.ndarray, system: bool) -> Counts:
        """The counts of a trace (or a part of one: whole processes) from its event arrays;
        `parent`: job.mpi_ties; `system`: judge system files too."""
        from .job import mpi_mode
        from .summary import file_mask, metadata_mask

        # every table made once here (the defaults: empty ones, ~0.3 ms each to make)
        out: dict[str, Any] = {}
        files = file_mask(a, system)
        tied = parent >= 0
        collective = tied.copy()
        if tied.any():
            coll_fn = np.array([mpi_mode(f) == "collective" for f in a.functions], dtype=bool)
            collective[tied] = coll_fn[a.fn[parent[tied]]]
        out["patterns"], out["pattern_ranks"] = _patterns_of(
            a, c, a.data & files & ~tied & (a.bytes > 0)
        )
        out["rereads"] = _rereads_of(
            a, trace.events, a.data & files & ~tied & (a.bytes > 0) & (a.op == READ) & (a.path >= 0)
        )
        keep = np.ones(a.n, dtype=bool) if system else ~a.system
        m = metadata_mask(a) & keep & (a.path >= 0)
        out["meta"] = _meta_of(a, m)
        sync = (a.op == OP_CODE[Op.SYNC.value]) & files & ~tied & ~a.datalib & ~a.stdio
        out["syncs"] = _syncs_of(a, trace.events, sync & (a.path >= 0))
        out["stdio"] = _stdio_of(a, files & (a.path >= 0))
        out["ranks"] = rank_view(a, tied, collective, files)
        out["mpiio"], out["mpiio_ranks"] = _mpiio_of(a, a.mpi_data & (a.path >= 0) & files)
        out["mpiio_reads"] = _mpi_reads_of(
            a, a.mpi_data & (a.path >= 0) & files & (a.op == READ) & (a.rank >= 0)
        )
        out["collective"] = _collective_of(a, a.mpi & (a.path >= 0) & files & (a.rank >= 0))
        # the failed file calls: judged among the calls that failed (few: one pass over all)
        at = np.flatnonzero(a.errno != 0)
        ok = op_in(a.op[at], [OP_CODE[o.value] for o in FILE_OPS]) & (~a.system[at] | system)
        ok &= ~np.isin(a.errno[at], NOT_FAILED)
        ok &= ~np.isin(a.fn[at], [i for i, f in enumerate(a.functions) if f in NOT_FILE_CALLS])
        if ok.any():  # a pipe's or socket's empty non-blocking read is no failed file call
            streams = np.array([p.startswith(DESCRIPTORS) for p in a.paths] + [False], dtype=bool)
            ok &= ~streams[a.path[at]]  # -1 (no path): the row of False
        bad = np.zeros(a.n, dtype=bool)
        bad[at[ok]] = True
        runtime, untold = runtime_calls(trace, a, bad & ~tied)
        # failed inside an MPI-IO call that succeeded: the MPI-IO layer's probe (MPICH's ROMIO
        # lstats the file MPI_File_open then creates), no failure the app saw; inside one that
        # failed (errno: its MPI error class) it is the app's
        inner = np.flatnonzero(bad & tied)
        runtime[inner[a.errno[parent[inner]] == 0]] = True
        kinds = (
            (bad & ~runtime & ~untold, "errors", "error_paths"),
            (runtime, "runtime_errors", "runtime_error_paths"),
            (untold, "untold_errors", "untold_error_paths"),
        )
        for m, errs_key, paths_key in kinds:
            errs: dict[tuple[str, int], list[int]] = {}
            paths: dict[str, int] = {}
            out[errs_key], out[paths_key] = errs, paths
            i = np.flatnonzero(m)
            for (fn, err), g in _by(a.fn[i].astype(np.int64) * 4096 + a.errno[i], a.dur[i]):
                errs[(a.functions[fn], err)] = g
            bp = a.path[i]
            bp = bp[bp >= 0]
            for i, n in zip(*np.unique(bp, return_counts=True), strict=True):
                paths[a.paths[int(i)]] = int(n)
        ev = trace.events
        fcat, pcat = ev["function"].cat.categories, ev["path"].cat.categories
        if "mmap" in fcat and IO_URING_PATH in pcat:  # by code: no string per event
            fc, pc = ev["function"].cat.codes, ev["path"].cat.codes
            u = ev[(fc == fcat.get_loc("mmap")) & (pc == pcat.get_loc(IO_URING_PATH))]
            out["uring"] = [{int(p) for p in u["pid"]}, len(u), len(u[u["offset"] == 0])]
        out["mapped"], out["mapped_paths"] = _mapped_of(a, ev, files, trace.writable_maps)
        sm = a.system & a.io
        out["system"] = [int(sm.sum()), int(a.bytes[sm & a.data].sum()), int(a.dur[sm].sum())]
        out["system_paths"] = {a.paths[int(i)] for i in np.unique(a.path[sm])}
        return cls(**out)

    @classmethod
    def sum_of(cls, parts: list[Counts]) -> Counts:
        """The counts of a trace from its parts' (each table summed once, whatever the number
        of parts)."""
        out = cls()
        if not parts:
            return out
        out.patterns = _summed([p.patterns for p in parts], ["path", "direction"])
        out.meta = _summed([p.meta for p in parts], ["path", "function"])
        out.mpiio = _summed([p.mpiio for p in parts], ["path"])
        out.syncs = _summed([p.syncs for p in parts], ["path", "function"])
        out.stdio = _summed([p.stdio for p in parts], ["path"])
        coll = [p.collective for p in parts if len(p.collective)]
        if coll:
            out.collective = pd.concat(coll, ignore_index=True)
        for o in parts:
            for r, v in o.ranks.items():
                mine = out.ranks.get(r, [0, 0, 0])
                out.ranks[r] = [x + y for x, y in zip(mine, v, strict=True)]
            out.mpiio_ranks |= o.mpiio_ranks
            for k, n in o.mpiio_reads.items():
                out.mpiio_reads[k] = out.mpiio_reads.get(k, 0) + n
            for k, v in o.rereads.items():  # the process that read the most
                if k not in out.rereads or v[0] > out.rereads[k][0]:
                    out.rereads[k] = v
            for k, v in o.pattern_ranks.items():
                was = out.pattern_ranks.get(k, [0, 0, 0, 0, 0])
                out.pattern_ranks[k] = [x + y for x, y in zip(was, v, strict=True)]
            for errs, mine in ((o.errors, out.errors), (o.runtime_errors, out.runtime_errors),
                               (o.untold_errors, out.untold_errors)):  # fmt: skip
                for k, (n, t) in errs.items():
                    was = mine.get(k, [0, 0])
                    mine[k] = [was[0] + n, was[1] + t]
            for paths, into in ((o.error_paths, out.error_paths),
                                (o.runtime_error_paths, out.runtime_error_paths),
                                (o.untold_error_paths, out.untold_error_paths)):  # fmt: skip
                for k, n in paths.items():
                    into[k] = into.get(k, 0) + n
            out.uring = [out.uring[0] | o.uring[0], out.uring[1] + o.uring[1],
                         out.uring[2] + o.uring[2]]  # fmt: skip
            out.system = [x + y for x, y in zip(out.system, o.system, strict=True)]
            out.system_paths |= o.system_paths
            out.mapped = [x + y for x, y in zip(out.mapped, o.mapped, strict=True)]
            out.mapped_paths |= o.mapped_paths
        return out


def _syncs_of(a: Arrays, ev: pd.DataFrame, m: np.ndarray) -> pd.DataFrame:
    """Counts.syncs of the syncs in `m`: per (path, function), with the lengths msync'd and
    the processes that made them."""
    if not m.any():  # most parts
        return _frame(SYNC_COLUMNS)
    u, data = _grouped(a, m)
    nf = len(a.functions)
    key = a.path[m].astype(np.int64) * nf + a.fn[m]
    who = np.unique(np.stack([key, ev["pid"].to_numpy(dtype=np.int64)[m], a.rank[m]]), axis=1)
    _, first, procs = np.unique(who[0], return_index=True, return_counts=True)  # u's order
    data.update(procs=procs.astype(np.int64), pid=who[1][first], rank=who[2][first])
    nbytes = np.zeros(len(u), dtype=np.int64)
    if "msync" in a.functions:
        at = u % nf == a.functions.index("msync")
        if at.any():
            ms = m & (a.fn == a.functions.index("msync"))
            req = ev["req"].to_numpy(dtype=np.int64, na_value=0)
            per = np.bincount(
                a.path[ms], weights=req[ms].astype(np.float64), minlength=len(a.paths)
            )
            nbytes[at] = np.rint(per[u[at] // nf]).astype(np.int64)
    data["bytes"] = nbytes
    return _frame(SYNC_COLUMNS, data)


def _rereads_of(a: Arrays, ev: pd.DataFrame, m: np.ndarray) -> dict[str, list[int]]:
    """Counts.rereads of the reads in `m` (at a known offset or not, with a path)."""
    k = len(a.paths)
    if not m.any():
        return {}
    # first per path, over every process (few paths read more than REREAD_RATIO times over)
    end = np.where(a.has_offset & m, a.offset + a.bytes, 0)
    key = np.where(m, a.path, -1)  # < 0: no element
    per_path, top = sums(key, k, a.bytes)[1], max_by(key, k, end)
    maybe = np.flatnonzero((per_path >= REREAD_RATIO * top) & (per_path - top >= REREAD_MIN_BYTES))
    out: dict[str, list[int]] = {}
    if not len(maybe):
        return out
    at = np.flatnonzero(m & np.isin(a.path, maybe))
    pid = ev["pid"].to_numpy(dtype=np.int64)
    nproc = int(a.proc.max()) + 1
    u, inv = np.unique(a.path[at].astype(np.int64) * nproc + a.proc[at], return_inverse=True)
    _, nb, tm = sums(inv, len(u), a.bytes[at], a.dur[at])
    hi = max_by(inv, len(u), end[at])
    first = np.zeros(len(u), dtype=np.int64)
    first[inv[::-1]] = at[::-1]  # an event of each (path, process): its pid and rank
    for i in np.flatnonzero((nb >= REREAD_RATIO * hi) & (nb - hi >= REREAD_MIN_BYTES) & (hi > 0)):
        path, e = a.paths[int(u[i] // nproc)], int(first[i])
        row = [round(nb[i]), int(hi[i]), round(tm[i]), int(pid[e]), int(a.rank[e])]
        if path not in out or row[0] > out[path][0]:
            out[path] = row
    return out


def _meta_of(a: Arrays, m: np.ndarray) -> pd.DataFrame:
    """Counts.meta of the metadata calls in `m`: per (path, function), with the number of ranks
    that made them (a rank is a process: parts, whole processes, add up to the trace's)."""
    if not m.any():
        return _frame(META_COLUMNS)
    u, data = _grouped(a, m)
    ranks = np.zeros(len(u), dtype=np.int64)
    ranked = m & (a.rank >= 0)
    if ranked.any():
        nr = int(a.rank[ranked].max()) + 1
        key = (a.path[ranked].astype(np.int64) * len(a.functions) + a.fn[ranked]) * nr
        keys, n = np.unique(np.unique(key + a.rank[ranked]) // nr, return_counts=True)
        ranks[np.searchsorted(u, keys)] = n
    data["ranks"] = ranks
    return _frame(META_COLUMNS, data)


def _stdio_of(a: Arrays, files: np.ndarray) -> pd.DataFrame:
    """Counts.stdio of the events on `files` (a mask, with a path)."""
    if "stdio_refill" not in a.functions:  # no stream refilled (most parts)
        return _frame(STDIO_COLUMNS)
    refill = files & (a.fn == a.functions.index("stdio_refill"))
    asked = files & a.stdio & (a.op == READ)
    if not refill.any():
        return _frame(STDIO_COLUMNS)
    k = len(a.paths)

    def per(m: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
        x = np.bincount(a.path[m], weights=None if w is None else w[m].astype(np.float64),
                        minlength=k)  # fmt: skip
        return np.rint(x).astype(np.int64)

    refills = per(refill)
    used = np.flatnonzero(refills)
    seeks = [i for i, f in enumerate(a.functions) if f in STDIO_SEEKS]
    return _frame(
        STDIO_COLUMNS,
        {
            "path": [a.paths[i] for i in used],
            "calls": per(asked)[used],
            "bytes": per(asked, a.bytes)[used],
            "seeks": per(files & np.isin(a.fn, seeks))[used],
            "refills": refills[used],
            "refill_bytes": per(refill, a.bytes)[used],
            "refill_time": per(refill, a.dur)[used],
        },
    )


MAP_SHARED = 0x01  # in MAP_SHARED_VALIDATE (0x03) too


def _mapped_of(
    a: Arrays, ev: pd.DataFrame, files: np.ndarray, writable: frozenset[tuple[int, int]]
) -> tuple[list[int], set[str]]:
    """Counts.mapped of the events: successful writable (`writable`: Trace.writable_maps)
    MAP_SHARED mmaps of the files in `files` (the judged ones) and the msyncs on them.  A
    read-only shared mapping stores nothing (an mprotect to make it writable is not traced)."""
    fcat = ev["function"].cat.categories

    def ok(m: np.ndarray) -> np.ndarray:  # the calls asked for first: few, most parts none
        return m & files & (a.errno == 0) & (a.path >= 0) if m.any() else m

    out, paths = [0, 0, 0, 0], set()
    if "mmap" in fcat:  # by code: no string per event
        m = ok(a.fn == fcat.get_loc("mmap"))
        if m.any():
            flags = ev["flags"].to_numpy(dtype=np.int64, na_value=0)
            m &= (flags & MAP_SHARED) != 0
            at = np.flatnonzero(m)  # few: each looked up
            m[at] = [(int(a.proc[i]), int(a.t_start[i])) in writable for i in at]
            req = ev["req"].to_numpy(dtype=np.int64, na_value=0)
            out[:2] = [int(m.sum()), int(req[m].sum())]
            paths = {a.paths[int(i)] for i in np.unique(a.path[m])}
    if "msync" in fcat and paths:
        m = ok(a.fn == fcat.get_loc("msync"))
        if m.any():
            req = ev["req"].to_numpy(dtype=np.int64, na_value=0)
            out[2:] = [int(m.sum()), int(req[m].sum())]
    return out, paths


def runtime_calls(trace: Trace, a: Arrays, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Of the events in `m`: those the parallel runtime made, and those whose maker cannot be
    told.  The runtime's: an MPI launcher's process (MPI_LAUNCHERS), or a call whose chain,
    walked from its caller outward, meets a RUNTIME_MODULES library before the program's own
    executable (MPI_Init's probes through libz, libudev or libpciaccess under hwloc are the
    runtime's; an app's callback that the runtime called is the app's).  Modules by the ranges
    the shim recorded, or named in the stracer's sites: no symbols needed.  Cannot be told: an
    event without a stack (--stack 0) in a process that loaded a runtime library."""
    if not m.any():  # no failed call (most parts): nothing to tell
        return m, m.copy()
    procs = trace.processes
    exes = [str(e) for e in procs["exe"]] if "exe" in procs else []
    launcher = np.array([os.path.basename(e) in MPI_LAUNCHERS for e in exes] + [False])
    by_proc = m & launcher[np.minimum(a.proc, len(launcher) - 1)]
    m = m & ~by_proc
    if not m.any():
        return by_proc, m
    loaded = np.array([_runtime_loaded(trace.modules.get(p, [])) for p in range(len(exes))]
                      + [False])  # fmt: skip
    untold = m & (a.stack < 0) & loaded[np.minimum(a.proc, len(loaded) - 1)]
    m &= a.stack >= 0
    ids = np.unique(a.stack[m])
    programs = set(exes)
    theirs = np.array([_runtime_chain(trace, int(sid), programs) for sid in ids], dtype=bool)
    out = by_proc
    out[m] = theirs[np.searchsorted(ids, a.stack[m])] if len(ids) else False
    return out, untold


def _runtime_loaded(mods: list[Any]) -> bool:
    return any(RUNTIME_MODULES.match(str(mod[3]).rsplit("/", 1)[-1]) for mod in mods)


def _runtime_chain(trace: Trace, sid: int, programs: set[str]) -> bool:
    """Whether the chain of stack `sid` meets a runtime library before an executable of the
    trace (runtime_calls)."""
    from .symbols import module_of

    raw = trace.raw_stacks.get(sid)
    if raw is not None:
        mods = trace.modules.get(raw[0], [])
        names = [str(mod[3]) if (mod := module_of(mods, pc)) else "" for pc in raw[1]]
    else:  # a stracer's site: its frames name their modules
        names = [str(fr[1] or "") for fr in trace.site_frames.get(sid, [])]
    for name in names:
        if RUNTIME_MODULES.match(name.rsplit("/", 1)[-1]):
            return True
        if name in programs:
            return False
    return False


def _by(keys: np.ndarray, dur: np.ndarray) -> list[tuple[tuple[int, int], list[int]]]:
    """(key // 4096, key % 4096) -> [count, time] over the distinct keys."""
    u, inv, n = np.unique(keys, return_inverse=True, return_counts=True)
    t = np.bincount(inv, weights=dur.astype(np.float64), minlength=len(u))
    return [((int(k) // 4096, int(k) % 4096), [int(c), int(x)])
            for k, c, x in zip(u, n, t, strict=True)]  # fmt: skip


def _grouped(a: Arrays, m: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Calls in `m` (some) per (path, function), in that order: their keys (path * number of
    functions + function, ascending) and the columns path, function, calls, errors, time."""
    nf = len(a.functions)
    key = a.path[m].astype(np.int64) * nf + a.fn[m]
    dur, failed = a.dur[m], a.errno[m] != 0
    if len(a.paths) * nf <= 4 * len(key):  # few pairs possible: bins, not a sort
        n, t, err = sums(key, len(a.paths) * nf, dur, failed)
        u = np.flatnonzero(n)
        n, t, err = n[u], t[u], err[u]
    else:
        u, inv = np.unique(key, return_inverse=True)
        n, t, err = sums(inv, len(u), dur, failed)
    return u, {
        "path": [a.paths[int(k) // nf] for k in u],
        "function": [a.functions[int(k) % nf] for k in u],
        "calls": n.astype(np.int64),
        "errors": err.astype(np.int64),
        "time": t.astype(np.int64),
    }


def _patterns_of(
    a: Arrays, c: Classified, base: np.ndarray
) -> tuple[pd.DataFrame, dict[tuple[str, str, int], list[int]]]:
    """Per (path, direction) of the events in `base` (reads and writes): Counts.patterns'
    columns; and Counts.pattern_ranks."""
    # per event: write 16, small 8, unaligned 4, known 2, random 1 (int8: the passes over it
    # move an eighth of int64's bytes)
    flags = np.zeros(a.n, dtype=np.int8)
    flags[c.idx] = 2
    flags[c.idx[~c.sequential]] = 3
    flags |= (a.op == WRITE).view(np.int8) * np.int8(16)
    flags |= (a.bytes < SMALL).view(np.int8) * np.int8(8)
    unaligned = a.has_offset & (a.offset & (ALIGN - 1) != 0)  # ALIGN: a power of 2
    flags |= unaligned.view(np.int8) * np.int8(4)
    del unaligned
    ranks = _pattern_ranks(a, base, flags)
    k = len(a.paths)
    # one bin per (path, its flags), the events out of `base` in a row of their own (k): three
    # bincounts over the columns, no copies of them; float sums of integers, exact below 2**53
    key = np.where(base, a.path, k).astype(np.int64) * 32 + flags
    del flags
    rows = (k + 1) * 32
    cnt, tm, by = (x.reshape(k + 1, 2, 16)[:k] for x in sums(key, rows, a.dur, a.bytes))
    del key
    names: list[str] = []
    directions: list[str] = []
    parts: list[dict[str, np.ndarray]] = []
    for name, d in (("write", 1), ("read", 0)):

        def per(x: np.ndarray, flag: int = 0, d: int = d) -> np.ndarray:
            cols = [i for i in range(16) if i & flag == flag]
            return np.rint(x[:, d, cols].sum(axis=1)).astype(np.int64)

        ops = per(cnt)
        if not ops.any():
            continue
        used = np.flatnonzero(ops)
        cols = {
            "calls": ops,
            "bytes": per(by),
            "time": per(tm),
            "small": per(cnt, 8),
            "small_time": per(tm, 8),
            "small_bytes": per(by, 8),
            "known": per(cnt, 2),
            "random": per(cnt, 1),
            "unaligned": per(cnt, 4),
            "unaligned_time": per(tm, 4),
        }
        names += [a.paths[i] for i in used]
        directions += [name] * len(used)
        parts.append({key: v[used] for key, v in cols.items()})
    if not parts:
        return _frame(PATTERN_COLUMNS), ranks
    # _summed's order (by path, direction; each pair once), made in one frame (pandas' concat,
    # sort and groupby of small frames: ~3 ms a part)
    order = sorted(range(len(names)), key=lambda i: (names[i], directions[i]))
    at = np.array(order, dtype=np.intp)
    data: dict[str, Any] = {
        "path": [names[i] for i in order],
        "direction": [directions[i] for i in order],
    }
    for c in PATTERN_COLUMNS[2:]:
        data[c] = np.concatenate([p[c] for p in parts])[at]
    return _frame(PATTERN_COLUMNS, data), ranks


def _pattern_ranks(
    a: Arrays, base: np.ndarray, flags: np.ndarray
) -> dict[tuple[str, str, int], list[int]]:
    """Counts.pattern_ranks of the ranked events in `base` (`flags`: _patterns_of's)."""
    m = base & (a.rank >= 0)
    if not m.any():  # no MPI job: nothing made per event
        return {}
    nr = int(a.rank[m].max()) + 1
    f = flags[m]
    # one key per (path, direction, rank, what the access is: small 4, unaligned 2, random 1)
    key = (a.path[m].astype(np.int64) * 2 + (a.op[m] == WRITE)) * nr + a.rank[m]
    key = key * 8 + (((f >> 1) & 6) | (f & 1))
    bins = len(a.paths) * 2 * nr
    nbytes = a.bytes[m].astype(np.float64)
    if bins * 8 <= 4 * len(key):  # few keys possible: one bincount, not a sort
        c = np.bincount(key, minlength=bins * 8).reshape(bins, 8)
        u = np.flatnonzero(c.any(axis=1))
        c = c[u]
        moved = np.bincount(key >> 3, weights=nbytes, minlength=bins)[u]
    else:
        uk, n = np.unique(key, return_counts=True)
        u, at = np.unique(uk // 8, return_inverse=True)
        c = np.zeros((len(u), 8), dtype=np.int64)
        np.add.at(c, (at, uk % 8), n)
        moved = np.bincount(np.searchsorted(u, key >> 3), weights=nbytes, minlength=len(u))
    cols = [
        c.sum(axis=1),
        c[:, 4:].sum(axis=1),
        c[:, [2, 3, 6, 7]].sum(axis=1),
        c[:, 1::2].sum(axis=1),
        np.rint(moved).astype(np.int64),
    ]
    return {
        (a.paths[k // nr // 2], "write" if (k // nr) % 2 else "read", k % nr): v
        for k, *v in zip(u.tolist(), *(x.tolist() for x in cols), strict=True)
    }


def _mpiio_of(a: Arrays, m: np.ndarray) -> tuple[pd.DataFrame, set[tuple[str, int]]]:
    """MPI-IO data calls in `m` per path (Counts.mpiio) and the (path, rank) pairs of the
    independent ones."""
    if not m.any():
        return _frame(MPIIO_COLUMNS), set()
    from .job import mpi_mode

    ind_fn = np.array([mpi_mode(fn) == "independent" for fn in a.functions], dtype=bool)
    k = len(a.paths)
    p = a.path[m].astype(np.int64)
    ind = ind_fn[a.fn[m]]
    total = np.bincount(p, minlength=k)
    used = np.flatnonzero(total)

    def per(w: np.ndarray | None, at: np.ndarray = ind) -> np.ndarray:
        return np.rint(np.bincount(p[at], weights=w, minlength=k)).astype(np.int64)[used]

    wr = a.op[m] == WRITE

    df = _frame(
        MPIIO_COLUMNS,
        {
            "path": [a.paths[i] for i in used],
            "calls": total[used].astype(np.int64),
            "independent": per(None),
            "bytes": per(a.bytes[m][ind].astype(np.float64)),
            "time": per(a.dur[m][ind].astype(np.float64)),
            "writes": per(None, wr),
            "written": per(a.bytes[m][wr].astype(np.float64), wr),
        },
    )
    r = a.rank[m][ind].astype(np.int64)
    pr = p[ind]
    has = r >= 0
    pairs = {
        (a.paths[int(x)], int(y)) for x, y in zip(pr[has].tolist(), r[has].tolist(), strict=True)
    }
    return df, pairs


def _mpi_reads_of(a: Arrays, m: np.ndarray) -> dict[tuple[str, int, str], int]:
    """Counts.mpiio_reads of the MPI-IO reads in `m` (ranked, with a path)."""
    at = np.flatnonzero(m)
    if not len(at):
        return {}
    cols = np.stack([a.path[at], a.rank[at], a.fn[at]]).astype(np.int64)
    keys, inv = np.unique(cols, axis=1, return_inverse=True)
    got = np.bincount(inv.ravel(), weights=a.bytes[at].astype(np.float64))
    return {(a.paths[p], r, a.functions[f]): round(b)
            for (p, r, f), b in zip(keys.T.tolist(), got.tolist(), strict=True)}  # fmt: skip


def _collective_of(a: Arrays, m: np.ndarray) -> pd.DataFrame:
    """The collective MPI-IO calls in `m` (Counts.collective): data calls, opens, closes,
    views, syncs (a close waits for every rank like a write_all does)."""
    from .job import mpi_mode

    if not m.any():
        return _frame(COLLECTIVE_COLUMNS)
    coll_fn = np.array(
        [mpi_mode(f) == "collective" and not f.endswith("_done") for f in a.functions], dtype=bool
    )
    m = m & coll_fn[a.fn]
    if not m.any():
        return _frame(COLLECTIVE_COLUMNS)
    setup = op_in(a.op[m], (OP_CODE[Op.OPEN.value], OP_CODE[Op.CLOSE.value]))
    return _frame(
        COLLECTIVE_COLUMNS,
        {
            "path": [a.paths[int(i)] for i in a.path[m]],
            "rank": a.rank[m].astype(np.int64),
            "t_start": a.t_start[m].astype(np.int64),
            "t_end": a.t_end[m].astype(np.int64),
            "setup": setup.astype(np.int64),
        },
    )


def collective_waits(
    coll: pd.DataFrame, setup: bool = True
) -> tuple[dict[int, int], dict[int, int], int]:
    """The time ranks spent inside collective MPI-IO calls waiting for the last rank to arrive:
    the k-th collective call of each rank on a file is one call of them all (MPI has every rank
    of the file's communicator make them in the same order); a rank's wait is from its start to
    the last rank's start.  Only calls that held every rank until the last came count (no rank
    left before it: a collective that does not synchronise, or a file opened by each rank alone
    with MPI_COMM_SELF, has none).  Returns per rank its wait, per rank the wait it caused the
    others as the last to arrive, and the calls that made ranks wait.  That wait is not I/O: the
    rank that came late is the slow one (its work before the call), the ones that waited not.
    `setup` False: the first dict leaves out the waits inside opens and closes (not in a rank's
    file I/O time to begin with: summary.file_time_mask)."""
    if coll.empty:
        return {}, {}, 0
    d = coll.sort_values(["path", "rank", "t_start"], kind="stable").reset_index(drop=True)
    d["k"] = d.groupby(["path", "rank"], sort=False).cumcount()
    g = d.groupby(["path", "k"], sort=False)
    last = g["t_start"].transform("max").to_numpy(dtype=np.int64)
    first_end = g["t_end"].transform("min").to_numpy(dtype=np.int64)
    n = g["t_start"].transform("size").to_numpy()
    start = d["t_start"].to_numpy(dtype=np.int64)
    held = (n >= 2) & (first_end >= last)
    wait = np.where(held, last - start, 0)
    d["wait"] = wait
    counted = d if setup else d.assign(wait=np.where(d["setup"].to_numpy() != 0, 0, wait))
    waits = {int(r): int(w) for r, w in counted.groupby("rank")["wait"].sum().items()}
    # the last to arrive at each call (ties: the lower rank) caused the others' wait there
    d["caused"] = d.groupby(["path", "k"], sort=False)["wait"].transform("sum")
    lastrows = d[held & (start == last)].drop_duplicates(["path", "k"])
    caused = {int(r): int(w) for r, w in lastrows.groupby("rank")["caused"].sum().items() if w}
    return waits, caused, len(lastrows)


@record
class Context:
    trace: Trace
    s: Summary
    cnt: Counts
    io_time: int  # the job's I/O time on files (ns, the processes' unions summed)
    system: bool  # judge system files too
    waits: tuple[dict[int, int], dict[int, int], int]  # collective_waits of cnt.collective


def _pct(x: float) -> str:
    return fmt_pct(x)


def _size(n: float) -> str:
    return fmt_bytes(n)


def _secs(ns: float) -> str:
    return fmt_time(ns)


def _share(time: float, io_time: int) -> float:
    return min(float(time) / io_time, 1.0) if io_time > 0 else 0.0


def level_of(time: float, io_time: int) -> str:
    """high / warn / info by the time at stake and its share of the job's I/O time."""
    share = _share(time, io_time)
    if time < MIN_STAKE_NS or share < WARN_SHARE:
        return "info"
    return "high" if share >= HIGH_SHARE else "warn"


def _evidence(calls: int, nbytes: int, time: float, io_time: int) -> dict[str, Any]:
    return {
        "calls": int(calls),
        "bytes": int(nbytes),
        "time": int(time),
        "share": _share(time, io_time),
    }


# ---- access patterns, per file and direction --------------------------------------------


def _patterns(x: Context) -> list[Insight]:
    """Per data file and direction one diagnosis, the most specific that holds: random access,
    else small requests, else unaligned ones; then one finding per diagnosis, its subject the
    file with the most time at stake."""
    found: dict[str, list[dict[str, Any]]] = {}
    amplified = {r["path"] for r in _amplified(x.cnt.stdio)}  # told by _stdio_amplification
    for r in x.cnt.patterns.itertuples():
        if r.direction == "read" and r.path in amplified:
            continue
        row = {
            "path": r.path,
            "direction": r.direction,
            "calls": int(r.calls),
            "bytes": int(r.bytes),
            "mean_bytes": float(r.bytes / r.calls),
        }
        if r.known >= RANDOM_MIN_OPS and r.random / r.known > RANDOM_SHARE:
            row.update(
                key="random-access",
                time=float(r.time),
                accesses=int(r.known),
                random=int(r.random),
                random_share=float(r.random / r.known),
                sequential_share=float(1 - r.random / r.known),
            )
        elif r.calls >= SMALL_MIN_OPS and r.small / r.calls > SMALL_SHARE:
            row.update(
                key=f"small-{r.direction}s",
                time=float(r.small_time),
                small=int(r.small),
                small_bytes=int(r.small_bytes),
                share=float(r.small / r.calls),
            )
        elif r.calls >= UNALIGNED_MIN_OPS and r.unaligned / r.calls > UNALIGNED_SHARE:
            row.update(
                key="unaligned-access",
                time=float(r.unaligned_time),
                unaligned=int(r.unaligned),
                share=float(r.unaligned / r.calls),
            )
        else:
            continue
        found.setdefault(row["key"], []).append(row)
    out = []
    for key in sorted(found):
        rows = sorted(found[key], key=lambda r: (-r["time"], r["path"], r["direction"]))
        out.append(_pattern_insight(key, rows, x.io_time, x.cnt.pattern_ranks))
    return out


ADVICE = {
    "random": "Random accesses defeat read-ahead and write-behind: sort or batch the requests by "
    "offset, or read whole blocks and pick from memory.",
    "small": "Small requests pay the per-call (and on a parallel file system, per-RPC) cost each "
    "time: buffer them (a larger stdio buffer, aggregation in memory) into requests of at least "
    "a file-system block.",
    "unaligned": "Unaligned requests straddle file-system blocks (and Lustre/GPFS stripes): "
    "read-modify-write and lock contention. Align offsets and sizes to the block or stripe size.",
}


def _pattern_insight(
    key: str,
    rows: list[dict[str, Any]],
    io_time: int,
    ranks: dict[tuple[str, str, int], list[int]],
) -> Insight:
    top = rows[0]
    calls = sum(r["calls"] for r in rows)
    time = sum(r["time"] for r in rows)
    more = f" (and {len(rows) - 1} more file(s))" if len(rows) > 1 else ""

    def line(r: dict[str, Any]) -> str:
        if key.startswith("small-"):  # the small ones' size, not the mean of them all
            return (
                f"{r['path']}: {r['small']:,} of {r['calls']:,} {r['direction']}s small, "
                f"{_size(r['small_bytes'] / r['small'])} on average, {_secs(r['time'])}"
            )
        return (
            f"{r['path']}: {r['calls']:,} {r['direction']}s of {_size(r['mean_bytes'])} on "
            f"average, {_secs(r['time'])}"
        )

    lines = "; ".join(line(r) for r in rows[:TOP_SUBJECTS])
    by, who = _pattern_by(key, top, ranks)
    if who:
        lines = f"{lines}. {who}"
    if key == "random-access":
        nb = sum(r["bytes"] for r in rows)
        rnd = sum(r["random"] for r in rows)
        known = sum(r["accesses"] for r in rows)
        title = (
            f"Random access to {top['path']}{by}{more}: {rnd:,} of {known:,} accesses "
            f"({_pct(rnd / known)}) went backwards"
        )
        advice = ADVICE["random"]
        numbers = {"random": rnd, "accesses": known}
    elif key.startswith("small-"):
        name = top["direction"]
        nb = sum(r["small_bytes"] for r in rows)
        small = sum(r["small"] for r in rows)
        ops = calls
        calls = small  # the evidence: the small ones (their bytes, their time)
        title = (
            f"Many small {name}s to {top['path']}{by}{more}: {small:,} of {ops:,} {name}s "
            f"({_pct(small / ops)}) moved less than {_size(SMALL)}"
        )
        advice = ADVICE["small"]
        numbers = {
            "ops": ops,
            "small_ops": small,
            "share": small / ops,
            "threshold_bytes": SMALL,
            "mean_bytes": top["mean_bytes"],
        }
    else:
        nb = sum(r["bytes"] for r in rows)
        bad = sum(r["unaligned"] for r in rows)
        title = (
            f"Unaligned access to {top['path']}{by}{more}: {bad:,} of {calls:,} accesses "
            f"({_pct(bad / calls)}) start at offsets that are not a multiple of "
            f"{_size(ALIGN)}"
        )
        advice = ADVICE["unaligned"]
        numbers = {"accesses": calls, "unaligned": bad, "share": bad / calls, "alignment": ALIGN}
    numbers["files"] = [{k: v for k, v in r.items() if k != "key"} for r in rows[:TOP_SUBJECTS]]
    numbers["ranks"] = _pattern_rank_list(key, top, ranks)
    return Insight(
        key,
        level_of(time, io_time),
        title,
        f"{lines}. {advice}",
        numbers,
        subject=top["path"],
        evidence=_evidence(calls, nb, time, io_time),
    )


RANK_FLAG = {"small-reads": 1, "small-writes": 1, "unaligned-access": 2, "random-access": 3}
RANK_WORD = {1: "small", 2: "unaligned", 3: "backward"}


def _pattern_rank_list(
    key: str, top: dict[str, Any], ranks: dict[tuple[str, str, int], list[int]]
) -> list[dict[str, int]]:
    """The ranks that made the top file's accesses of the finding's direction: per rank its
    accesses and those the finding is about (most first); none outside an MPI job."""
    i = RANK_FLAG[key]
    mine = [(r, v) for (p, d, r), v in ranks.items() if p == top["path"] and d == top["direction"]]
    mine.sort(key=lambda rv: (-rv[1][i], rv[0]))
    return [{"rank": r, "calls": v[0], RANK_WORD[i]: v[i]} for r, v in mine]


def _pattern_by(
    key: str, top: dict[str, Any], ranks: dict[tuple[str, str, int], list[int]]
) -> tuple[str, str]:
    """The ranks that made the finding's accesses of its top file, for its title (" by rank 3",
    when not every rank on it) and its detail; empty outside an MPI job."""
    rows = _pattern_rank_list(key, top, ranks)
    word = RANK_WORD[RANK_FLAG[key]]
    bad = [r for r in rows if r[word]]
    if not bad:
        return "", ""
    named = ", ".join(str(r["rank"]) for r in bad[:TOP_SUBJECTS])
    named += f" and {len(bad) - TOP_SUBJECTS} more" if len(bad) > TOP_SUBJECTS else ""
    ranks_word = "rank" if len(bad) == 1 else "ranks"
    by = f" by {ranks_word} {named}" if len(bad) < len(rows) else ""
    n = sum(r[word] for r in bad)
    who = (
        f"The {n:,} {word} {top['direction']}s of {top['path']}: {ranks_word} {named}"
        + (f" alone of the {len(rows)} ranks that {top['direction']} it" if by else "")
        + "; "
        + ", ".join(
            f"rank {r['rank']}: {r[word]:,} of its {r['calls']:,}" for r in bad[:TOP_SUBJECTS]
        )
    )
    return by, who


# ---- ranks reading one file whole ------------------------------------------------------


def _whole_reads(x: Context) -> list[dict[str, Any]]:
    """Data files of WHOLE_MIN_BYTES or more that two ranks or more each read whole (the bytes
    of a rank's POSIX reads, Counts.pattern_ranks, or of its MPI-IO reads, Counts.mpiio_reads,
    at least the file's highest offset): the file system serves the same bytes once per rank.
    The time at stake: the file's read time less one rank's share of it."""
    size = dict(zip(x.s.files["path"], x.s.files["max_offset"], strict=True))
    rtime = dict(zip(x.s.files["path"], x.s.files["read_time"], strict=True))
    read = {(p, r): v[4] for (p, d, r), v in x.cnt.pattern_ranks.items() if d == "read"}
    how: dict[str, set[str]] = {}  # the MPI-IO reads of each file
    for (p, r, fn), n in x.cnt.mpiio_reads.items():  # the rank's own requests
        read[(p, r)] = read.get((p, r), 0) + n
        how.setdefault(p, set()).add(fn)
    readers: dict[str, dict[int, int]] = {}
    for (path, r), n in read.items():
        if size.get(path, 0) >= WHOLE_MIN_BYTES and n >= WHOLE_SHARE * size[path]:
            readers.setdefault(path, {})[r] = n
    rows = []
    for path, by in readers.items():
        if len(by) >= 2:
            n, t = len(by), int(rtime.get(path, 0))
            rows.append({"path": path, "size": int(size[path]), "ranks": sorted(by),
                         "bytes_read": sum(by.values()), "time": t - t // n})  # fmt: skip
            if path in how:
                rows[-1]["functions"] = "/".join(sorted(how[path]))
    rows.sort(key=lambda r: (-r["time"], r["path"]))
    return rows


def _read_by_every_rank(x: Context) -> list[Insight]:
    """The files several ranks each read whole (_whole_reads), the first the one with the most
    time at stake."""
    from .job import mpi_mode

    rows = _whole_reads(x)
    if not rows:
        return []
    top = rows[0]
    f = x.s.files
    rtime = dict(zip(f["path"], f["read_time"], strict=True))
    n = len(top["ranks"])
    more = f" (and {len(rows) - 1} more file(s))" if len(rows) > 1 else ""
    named = ", ".join(map(str, top["ranks"][:TOP_SUBJECTS]))
    named += f" and {n - TOP_SUBJECTS} more" if n > TOP_SUBJECTS else ""
    time = sum(r["time"] for r in rows)
    through = f" through {top['functions']}" if "functions" in top else ""
    collective = any(mpi_mode(f) == "collective" for f in top.get("functions", "").split("/") if f)
    advice = (
        "Read it on one rank (or one per node) and MPI_Bcast it: a collective read still "
        "hands every rank the whole file."
        if collective
        else "Read it on one rank (or one per node) and MPI_Bcast it, or read it with a "
        "collective MPI_File_read_all."
    )
    return [
        Insight(
            "read-by-every-rank",
            level_of(time, x.io_time),
            f"{n} ranks each read the whole of {top['path']}{more}: {_size(top['bytes_read'])} "
            f"read for a file of {_size(top['size'])}",
            f"Ranks {named} read all of its {_size(top['size'])}{through}, "
            f"{_secs(rtime[top['path']])} in its reads: the file system serves the same bytes "
            "once per rank (on a parallel file system every rank's requests reach its "
            f"servers). {advice}",
            {"files": rows[:TOP_SUBJECTS]},
            subject=top["path"],
            evidence=_evidence(0, sum(r["bytes_read"] for r in rows), time, x.io_time),
        )
    ]


# ---- one process reading a file again and again ----------------------------------------


def _rereads(x: Context) -> list[Insight]:
    """Data files one process read REREAD_RATIO times over or more (Counts.rereads: an input
    reopened and read whole at each step), not those told by _stdio_amplification (stdio's
    refills read again what the app's seeks left).  The time at stake: that process's reads
    of the file less one pass of them."""
    amplified = {r["path"] for r in _amplified(x.cnt.stdio)}
    rows = []
    for path, (nbytes, size, time, pid, rank) in x.cnt.rereads.items():
        if path not in amplified:
            rows.append({"path": path, "bytes_read": nbytes, "size": size,
                         "passes": nbytes / size, "time": time - time * size // nbytes,
                         "read_time": time, "pid": pid, "rank": rank})  # fmt: skip
    if not rows:
        return []
    rows.sort(key=lambda r: (-r["time"], r["path"]))
    top = rows[0]

    def who(r: dict[str, Any]) -> str:
        return f"rank {r['rank']}" if r["rank"] >= 0 else f"process {r['pid']}"

    more = f" (and {len(rows) - 1} more file(s))" if len(rows) > 1 else ""
    time = sum(r["time"] for r in rows)
    lines = "; ".join(
        f"{r['path']}: {who(r)} read {_size(r['bytes_read'])} of its {_size(r['size'])} "
        f"({r['passes']:,.1f} times), {_secs(r['read_time'])}"
        for r in rows[:TOP_SUBJECTS]
    )
    return [
        Insight(
            "reread",
            level_of(time, x.io_time),
            f"{who(top).capitalize()} read {top['path']}{more} {top['passes']:,.1f} times over: "
            f"{_size(top['bytes_read'])} read for its {_size(top['size'])}",
            f"{lines}. Each pass asks the file system for the same bytes again (the page cache "
            "may hide it on one node; a parallel file system's servers serve each one): read it "
            "once and keep what is needed in memory (or mmap it), and open an input once, not "
            "at each step.",
            {"files": rows[:TOP_SUBJECTS]},
            subject=top["path"],
            evidence=_evidence(0, sum(r["bytes_read"] - r["size"] for r in rows), time, x.io_time),
        )
    ]


# ---- stdio ------------------------------------------------------------------------------


def _amplified(st: pd.DataFrame) -> list[dict[str, Any]]:
    """The files whose streams' refills read AMPLIFY_RATIO times the bytes the app's stdio
    reads asked of them or more, in AMPLIFY_MIN_REFILLS refills or more (most time first)."""
    rows = [
        {
            "path": str(r.path),
            "calls": int(r.calls),
            "bytes": int(r.bytes),
            "seeks": int(r.seeks),
            "refills": int(r.refills),
            "refill_bytes": int(r.refill_bytes),
            "time": int(r.refill_time),
        }
        for r in st.itertuples()
        if r.refills >= AMPLIFY_MIN_REFILLS and r.refill_bytes >= AMPLIFY_RATIO * max(r.bytes, 1)
    ]
    return sorted(rows, key=lambda r: (-r["time"], r["path"]))


def _stdio_amplification(x: Context) -> list[Insight]:
    """stdio reading far more of a file than the app asked (Counts.stdio): a stream whose
    position is moved (fseek) before each small read refills its whole buffer for it.  The time
    at stake: the refills' own.  The file's random-access (small-reads) diagnosis is this one."""
    rows = _amplified(x.cnt.stdio)
    if not rows:
        return []
    top = rows[0]
    more = f" (and {len(rows) - 1} more file(s))" if len(rows) > 1 else ""
    time = sum(r["time"] for r in rows)
    lines = "; ".join(
        f"{r['path']}: {r['refills']:,} refills of {_size(r['refill_bytes'] / r['refills'])} "
        f"on average ({_size(r['refill_bytes'])}) for {r['calls']:,} reads of "
        f"{_size(r['bytes'] / max(r['calls'], 1))} on average ({_size(r['bytes'])}) "
        f"after {r['seeks']:,} seeks, "
        f"{_secs(r['time'])}"
        for r in rows[:TOP_SUBJECTS]
    )
    ratio = top["refill_bytes"] / max(top["bytes"], 1)
    return [
        Insight(
            "stdio-read-amplification",
            level_of(time, x.io_time),
            f"stdio read {_size(top['refill_bytes'])} of {top['path']}{more} for the "
            f"{_size(top['bytes'])} the app's reads asked ({ratio:,.1f}x)",
            f"{lines}. A stream whose position is moved (fseek, fsetpos, rewind) out of its "
            "buffer before each small read refills the whole buffer for it: read the records "
            "with pread, or give the stream a buffer of a record's size (setvbuf), or visit "
            "the records in file order so that one refill serves several.",
            {"ratio": ratio, "files": rows[:TOP_SUBJECTS]},
            subject=top["path"],
            evidence=_evidence(
                sum(r["refills"] for r in rows),
                sum(r["refill_bytes"] for r in rows),
                time,
                x.io_time,
            ),
        )
    ]


# ---- syncs -----------------------------------------------------------------------------


def _sync_rows(x: Context) -> list[dict[str, Any]]:
    """Per data file synced (Counts.syncs): its syncs, their functions and time, its writes (the
    POSIX ones of Counts.patterns and the MPI-IO ones of Counts.mpiio) and their bytes, the
    bytes msync'd; `frequent`: SYNC_MIN_CALLS syncs or more, one at least every SYNC_WRITES
    writes.  By the time in the syncs, most first."""
    sy = x.cnt.syncs
    if sy.empty:
        return []
    per = sy.groupby("path", sort=True).agg(
        calls=("calls", "sum"), time=("time", "sum"), synced=("bytes", "sum")
    )
    fns = sy.groupby("path", sort=True)["function"].agg(lambda f: "/".join(sorted(set(f))))
    pat = x.cnt.patterns
    w = pat[pat["direction"] == "write"].set_index("path")
    mw = x.cnt.mpiio.set_index("path")
    one = sy.groupby("path", sort=True).agg(
        procs=("procs", "max"), pid=("pid", "min"), pid_max=("pid", "max"), rank=("rank", "min")
    )
    rows = []
    for path, r in per.iterrows():
        o = one.loc[path]
        # who synced it: one process (its pid and rank), or None: several
        alone = o["procs"] == 1 and o["pid"] == o["pid_max"]
        who = (int(o["pid"]), int(o["rank"])) if alone else None
        writes = int(w.at[path, "calls"]) if path in w.index else 0
        nbytes = int(w.at[path, "bytes"]) if path in w.index else 0
        if path in mw.index:  # MPI-IO's writes (the POSIX ones inside them are not in `w`)
            writes += int(mw.at[path, "writes"])
            nbytes += int(mw.at[path, "written"])
        rows.append({"path": str(path), "functions": str(fns[path]),
                     "syncs": int(r["calls"]), "writes": writes, "bytes_written": nbytes,
                     "time": int(r["time"])})  # fmt: skip
        if r["synced"]:  # msync: the stores through a shared mapping it wrote back
            rows[-1]["msync_bytes"] = int(r["synced"])
        rows[-1]["frequent"] = r["calls"] >= SYNC_MIN_CALLS and r["calls"] * SYNC_WRITES >= writes
        rows[-1]["series"] = _series(str(path), who)
    rows.sort(key=lambda r: (-r["time"], r["path"]))
    return rows


def _series(path: str, who: tuple[int, int] | None) -> tuple[str, str, Any]:
    """The output a synced file is a version of: its directory, its name with its numbers left
    out (ckpt.0, ckpt.1, ... are checkpoints of one output) and the process that synced it
    (each rank's out.R.dat is an output of its own)."""
    head, name = os.path.split(path)
    return head, re.sub(r"[0-9]+", "#", name), who


def _shown(r: dict[str, Any]) -> dict[str, Any]:
    """A _sync_rows row as a finding lists it."""
    return {k: v for k, v in r.items() if k not in ("frequent", "series")}


def _sync_lines(rows: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{r['path']}: {r['syncs']:,} {r['functions']} for {r['writes']:,} writes "
        f"({_size(r['bytes_written'])})"
        + (f", {_size(r['msync_bytes'])} msync'd" if r.get("msync_bytes") else "")
        + f", {_secs(r['time'])}"
        for r in rows[:TOP_SUBJECTS]
    )


def _frequent_sync(x: Context) -> list[Insight]:
    """Data files synced (fsync, fdatasync, msync, MPI_File_sync) SYNC_MIN_CALLS times or more,
    once at least every SYNC_WRITES of their writes (_sync_rows): each sync waits for the
    device; the time at stake is the syncs' own."""
    rows = [_shown(r) for r in _sync_rows(x) if r["frequent"]]
    if not rows:
        return []
    top = rows[0]
    calls, time = sum(r["syncs"] for r in rows), sum(r["time"] for r in rows)
    more = f" (and {len(rows) - 1} more file(s))" if len(rows) > 1 else ""
    title = f"{top['functions']} after {_every(top)} to {top['path']}{more}: {calls:,} calls took "
    advice = (": sync once after the last write, or at the checkpoints a restart needs, not after "
              "each write (fdatasync where the metadata need not be durable).")  # fmt: skip
    return [_sync_insight(x, "frequent-sync", level_of(time, x.io_time), title + _secs(time),
                          advice, rows, time)]  # fmt: skip


def _sync_insight(
    x: Context, key: str, level: str, title: str, advice: str, rows: list[dict[str, Any]],
    stake: int,
) -> Insight:  # fmt: skip
    """A finding on syncs (frequent-sync, sync-time): its files' lines, why a sync costs, the
    advice; subject: the file with the most time in them."""
    calls = sum(r["syncs"] for r in rows)
    nbytes = sum(r["bytes_written"] + r.get("msync_bytes", 0) for r in rows)
    return Insight(
        key,
        level,
        title,
        f"{_sync_lines(rows)}. Each sync waits until the data is on stable storage (on a "
        "parallel file system: a round trip to its servers and a flush of the client's "
        f"cache){advice}",
        {"syncs": calls, "files": rows[:TOP_SUBJECTS]},
        subject=rows[0]["path"],
        evidence=_evidence(calls, nbytes, stake, x.io_time),
    )


def _sync_time(x: Context) -> list[Insight]:
    """Syncs too few for frequent-sync (3 checkpoints, each fsync'd) that take SYNC_TIME_SHARE
    or more of the job's file I/O time, two or more of one output (_series: the versions of a
    checkpoint, or one file synced twice): the I/O time is the syncs'.  One sync of each output
    after its last write is needed whatever the app does (2 outputs, each synced once: nothing
    to say): the time at stake is each output's syncs less one of them at their mean.  Always
    "info": whether a sync is one a restart needs is the app's to know, so it says where the
    time went and ranks after the problems that have a fix (a heavy rank's fsync was the first
    finding of a rank imbalance)."""
    outputs: dict[tuple[str, str, Any], list[dict[str, Any]]] = {}
    for r in _sync_rows(x):
        if not r["frequent"]:
            outputs.setdefault(r["series"], []).append(r)
    again = [g for g in outputs.values() if sum(r["syncs"] for r in g) >= 2]
    rows = sorted((_shown(r) for g in again for r in g), key=lambda r: (-r["time"], r["path"]))
    calls, time = sum(r["syncs"] for r in rows), sum(r["time"] for r in rows)
    if not rows or x.io_time <= 0 or time < SYNC_TIME_SHARE * x.io_time:
        return []
    stake = 0
    for g in again:
        n, t = sum(r["syncs"] for r in g), sum(r["time"] for r in g)
        stake += t - t // n
    top = rows[0]
    fns = "/".join(sorted({f for r in rows for f in r["functions"].split("/")}))
    more = f" (and {len(rows) - 1} more file(s))" if len(rows) > 1 else ""
    title = (f"{calls:,} {fns} calls took {_pct(time / x.io_time)} of the file I/O time "
             f"({_secs(time)}), on {top['path']}{more}")  # fmt: skip
    advice = (f", here {_pct(time / x.io_time)} of the file I/O time: keep only the syncs a "
              "restart needs (the checkpoint it restarts from, once after its last write), use "
              "fdatasync where the metadata need not be durable, or sync once after the last "
              "write of the run.")  # fmt: skip
    return [_sync_insight(x, "sync-time", "info", title, advice, rows, stake)]


def _every(r: dict[str, Any]) -> str:
    if not r["writes"] and r.get("msync_bytes"):  # stores through a mapping: no write calls
        return f"every {_size(r['msync_bytes'] / r['syncs'])} stored through a shared mapping"
    per = r["writes"] / r["syncs"]
    return "every write" if per <= 1 else f"every {per:.1f} writes"


# ---- metadata, by directory -------------------------------------------------------------


def _meta_storm(x: Context) -> list[Insight]:
    """Directories with META_STORM_OPS metadata operations or more; else, when those with
    META_DIR_OPS or more each have META_STORM_OPS together, the storm spread over them (300
    files created and stat'd in each of 6 directories: 900 each), its subject their common
    parent (or the directory with the most time, when they have none but /)."""
    d = x.s.directories
    if d.empty:
        return []
    bad = d[d["ops"] >= META_STORM_OPS]
    spread = False
    if bad.empty:
        bad = d[d["ops"] >= META_DIR_OPS]
        if bad.empty or bad["ops"].sum() < META_STORM_OPS:
            return []
        spread = True
    bad = bad.sort_values("time", ascending=False)
    top = bad.iloc[0]
    ops, time = int(bad["ops"].sum()), float(bad["time"].sum())
    run = max(int(x.s.overview["run_time"]), 1)
    rate = f"{ops / (run / 1e9):,.0f}/s over the run"
    one = None  # the file that took most of one directory's storm
    if spread:
        under = os.path.commonpath([str(p) for p in bad["directory"]])
        subject = under if under != "/" else str(top["directory"])
        title = (
            f"Metadata storm over {len(bad)} directories under {subject}: {ops:,} metadata "
            f"operations ({rate}), at most {int(bad['ops'].max()):,} in one"
        )
    else:
        more = f" (and {len(bad) - 1} more directories)" if len(bad) > 1 else ""
        subject = str(top["directory"])
        title = (
            f"Metadata storm in {top['directory']}{more}: {int(top['ops']):,} metadata "
            f"operations ({int(top['ops']) / (run / 1e9):,.0f}/s over the run)"
        )
        one = _storm_file(x.cnt.meta, subject, int(top["ops"]))
        if one:
            title += f", {one['ops']:,} of them on {os.path.basename(one['path'])}" + (
                f" by {one['ranks']} ranks" if one["ranks"] > 1 else ""
            )
    by_function: dict[str, int] = {}  # the top directory's; a spread storm's summed
    for per in list(bad["by_function"]) if spread else [top["by_function"]]:
        for f, n in per.items():
            by_function[f] = by_function.get(f, 0) + n
    lines = "; ".join(
        f"{r.directory}: {int(r.ops):,} ops on {int(r.files):,} files ({r.functions}), "
        + (f"{int(r.errors):,} failed, " if r.errors else "")
        + _secs(r.time)
        for r in bad.head(TOP_SUBJECTS).itertuples()
    )
    advice = (
        "Parallel file systems serve metadata from few servers: open once, stat once, cache "
        "the answer; fewer, larger files (or one container file) per directory."
    )
    if one:
        fns = ", ".join(f"{f} {n:,}" for f, n in one["by_function"].items())
        advice = (
            f"{one['path']}: {one['ops']:,} of them ({fns})"
            + (f", by {one['ranks']} ranks" if one["ranks"] > 1 else "")
            + ". Parallel file systems serve metadata from few servers: "
            + (
                "read the file on one rank and MPI_Bcast what it holds, "
                if one["ranks"] > 1
                else ""
            )
            + "open it once and keep the descriptor, stat it once and keep the answer (a file "
            "polled for: wait for a message, not on the file system)."
        )
    return [
        Insight(
            "metadata-storm",
            level_of(time, x.io_time),
            title,
            f"{lines}. {advice}",
            {
                "ops": ops,
                "per_second": ops / (run / 1e9),
                "time": int(time),
                "share_of_io_time": _share(time, x.io_time),
                "by_function": dict(sorted(by_function.items(), key=lambda kv: (-kv[1], kv[0]))),
                "directories": [
                    {
                        "directory": r.directory,
                        "ops": int(r.ops),
                        "files": int(r.files),
                        "time": int(r.time),
                    }
                    for r in bad.head(TOP_SUBJECTS).itertuples()
                ],
                **({"file": one} if one else {}),
            },
            subject=subject,
            evidence=_evidence(ops, 0, time, x.io_time),
        )
    ]


def _storm_file(meta: pd.DataFrame, directory: str, ops: int) -> dict[str, Any] | None:
    """The file of `directory` that took META_ONE_FILE or more of its `ops` metadata operations
    (a file reopened or stat'd in a loop, every rank opening one input): its path, operations,
    those by function, the ranks that made them (the most of any of its functions); or None."""
    m = meta[[posixpath.dirname(p) == directory for p in meta["path"]]]
    if m.empty:
        return None
    per = m.groupby("path", sort=True)["calls"].sum()
    path = str(per.idxmax())
    if per[path] < META_ONE_FILE * ops:
        return None
    g = m[m["path"] == path]
    by = sorted(zip(g["function"], g["calls"], strict=True), key=lambda fn: (-fn[1], fn[0]))
    return {"path": path, "ops": int(per[path]), "ranks": int(g["ranks"].max()),
            "by_function": {str(f): int(n) for f, n in by}}  # fmt: skip


# ---- ranks ------------------------------------------------------------------------------


def rank_view(
    a: Arrays, tied: np.ndarray, collective: np.ndarray, files: np.ndarray
) -> dict[int, list[int]]:
    """Per rank, on the `files` (a mask): the bytes it moved for itself (its MPI-IO calls' bytes
    plus its POSIX bytes outside MPI-IO) and the POSIX bytes it moved inside collective calls
    (as an aggregator)."""
    r = (a.rank >= 0) & files
    if not r.any():
        return {}
    k = int(a.rank[r].max()) + 1

    def cnt(m: np.ndarray) -> np.ndarray:
        m = m & r
        return np.bincount(a.rank[m], weights=a.bytes[m].astype(np.float64), minlength=k)

    own = cnt(a.mpi_data) + cnt(a.data & ~tied)
    agg = cnt(a.data & collective)
    mpi = cnt(a.mpi_data)
    ranks = np.unique(a.rank[r])
    return {int(i): [int(own[i]), int(agg[i]), int(mpi[i])] for i in ranks}


def aggregators(view: dict[int, list[int]]) -> list[int]:
    """Ranks whose POSIX bytes inside collective calls are well above their own MPI bytes: they
    wrote (read) the other ranks' data (ROMIO cb_nodes, OMPIO aggregators)."""
    return sorted(r for r, (_own, agg, mpi) in view.items() if agg > AGGREGATOR_RATIO * mpi + SMALL)


def _outliers(values: dict[int, float], min_more: float) -> tuple[list[int], float]:
    """Ranks at least RANK_RATIO times the median (with 2 ranks: the other's) and min_more
    above it, and within OUTLIER_SPREAD of the furthest one's excess (the ones that hold the
    job, not the noise under them); and that median."""
    v = np.array(list(values.values()), dtype=np.float64)
    med = float(np.median(v)) if len(v) > 2 else float(v.min())
    out = [r for r, x in values.items() if x >= RANK_RATIO * med and x - med >= min_more]
    if out:
        top = max(values[r] - med for r in out)
        out = [r for r in out if values[r] - med >= OUTLIER_SPREAD * top]
    return sorted(out, key=lambda r: -values[r]), med


def _rank_imbalance(x: Context) -> list[Insight]:
    ranks = x.s.ranks
    if len(ranks) < 2:
        return []
    view = x.cnt.ranks
    aggs = set(aggregators(view))
    # the time a rank waited in collective calls for a late one is not its I/O (collective_waits)
    t = {int(r.rank): float(r.file_io_time - r.collective_wait) for r in ranks.itertuples()}
    b = {r: float(view[r][0]) if r in view else 0.0 for r in t}
    slow, t_med = _outliers(t, RANK_MIN_NS)
    heavy, b_med = _outliers(b, RANK_MIN_BYTES)
    # an aggregator moves the other ranks' data: not an outlier by it
    slow = [r for r in slow if r not in aggs or b[r] >= RANK_RATIO * b_med + RANK_MIN_BYTES]
    heavy = [r for r in heavy if r not in aggs]
    named = list(dict.fromkeys(slow + heavy))
    # an outlier by both first: by time alone a rank may be one the machine held back, or one
    # that waited inside a collective call for the heavy rank's data
    named.sort(key=lambda r: not (r in slow and r in heavy))
    if not named:
        return []
    stake = 0.0
    for r in named:  # the time the other ranks wait for it
        stake += t[r] - t_med if r in slow else t[r] * max(b[r] - b_med, 0) / max(b[r], 1)
    who = ", ".join(str(r) for r in named[:TOP_SUBJECTS])
    subject = f"rank {named[0]}" if len(named) == 1 else f"ranks {who}"
    parts = [
        f"rank {r}: {_secs(t[r])} in I/O (median {_secs(t_med)}), {_size(b[r])} moved "
        f"(median {_size(b_med)})"
        for r in named[:TOP_SUBJECTS]
    ]
    agg_note = (
        f" Rank(s) {', '.join(map(str, sorted(aggs)))}: collective-buffering "
        "aggregator(s), whose POSIX bytes are the other ranks' data: not counted as "
        "theirs."
        if aggs
        else ""
    )
    by = "time and bytes" if slow and heavy else "time" if slow else "bytes"
    wait_note = (
        " Time waiting in collective MPI-IO calls for a later rank is not counted as I/O."
        if ranks["collective_wait"].any()
        else ""
    )
    return [
        Insight(
            "rank-imbalance",
            level_of(stake, x.io_time),
            f"Rank imbalance: {subject} {'is' if len(named) == 1 else 'are'} far above the "
            f"other ranks by I/O {by}",
            f"{'; '.join(parts)}.{agg_note}{wait_note} A straggler holds every rank at the "
            "next barrier: "
            "spread its I/O over the ranks (or aggregators), or look at its node and files.",
            {
                "rank": named[0],
                "outliers": [
                    {
                        "rank": r,
                        "io_time": int(t[r]),
                        "bytes": int(b[r]),
                        "by": " and ".join(
                            w for w, on in (("time", r in slow), ("bytes", r in heavy)) if on
                        ),
                    }
                    for r in named
                ]
                + [],
                "median_io_time": t_med,
                "median_bytes": b_med,
                "aggregators": sorted(aggs),
                "ranks": len(ranks),
            },
            subject=subject,
            evidence=_evidence(0, sum(b[r] for r in named), stake, x.io_time),
        )
    ]


def _late_ranks(x: Context) -> list[Insight]:
    """Ranks that arrived last at collective MPI-IO calls while the others waited inside them
    (collective_waits): the others' time in those calls is the late rank's doing, not I/O."""
    waits, caused, calls = x.waits
    total = sum(caused.values())
    if not caused or total < RANK_MIN_NS:  # ranks reach a call a few ms apart by nature
        return []
    late = sorted(caused, key=lambda r: (-caused[r], r))
    top = late[0]
    who = ", ".join(f"rank {r} ({_secs(caused[r])})" for r in late[:TOP_SUBJECTS])
    aggs = set(aggregators(x.cnt.ranks)) & set(late[:TOP_SUBJECTS])
    if aggs:  # late because it wrote (read) the others' data in the call before
        who += (
            f"; rank(s) {', '.join(map(str, sorted(aggs)))}: collective-buffering aggregator(s), "
            "late from doing the others' I/O"
        )
    # Context, not an I/O pathology ("info"): the waiting is the work before the call, and
    # where that work is the ranks' own I/O its finding says what to change (4 ranks on 2 cores
    # arrive 20-130 ms apart at a collective close: as "high" it came before independent-mpiio
    # and made a collective write through aggregators look wrong)
    return [
        Insight(
            "collective-wait",
            "info",
            f"Ranks waited {_secs(total)} inside collective MPI-IO calls for rank {top}, "
            "the last to arrive",
            f"Across {calls:,} collective calls the other ranks waited for: {who}. A collective "
            "call starts its I/O when every rank has called it: the late rank's work before the "
            "call (computation, its own I/O) holds them all; that waiting is not I/O time. "
            "Balance the work before the call, or use nonblocking or independent I/O there.",
            {
                "wait": total,
                "calls": calls,
                "late": [{"rank": r, "caused": caused[r]} for r in late[:TOP_SUBJECTS]],
                "waited": {str(r): w for r, w in sorted(waits.items()) if w},
            },
            subject=f"rank {top}",
            evidence=_evidence(calls, 0, total, x.io_time),
        )
    ]


# ---- shared files and MPI-IO ------------------------------------------------------------


def _independent_mpiio(x: Context) -> list[Insight]:
    """Independent MPI-IO data calls on files several ranks use: there collective calls let the
    MPI-IO layer merge the ranks' requests.  Never for collective I/O, nor for a file only
    read, each rank reading it whole (read-by-every-rank: collective reads would still hand
    each rank all of it)."""
    f = x.s.files
    shared = set(f[f["data_ranks"] >= 2]["path"])
    written = set(x.cnt.mpiio[x.cnt.mpiio["writes"] > 0]["path"])
    shared -= {r["path"] for r in _whole_reads(x) if r["path"] not in written}
    mp = x.cnt.mpiio
    if mp.empty or not shared:
        return []
    nranks: dict[str, int] = {}
    for path, _rank in x.cnt.mpiio_ranks:
        nranks[path] = nranks.get(path, 0) + 1
    bad = mp[(mp["independent"] >= INDEPENDENT_MIN_CALLS)
             & (mp["independent"] > INDEPENDENT_SHARE * mp["calls"])]  # fmt: skip
    rows = [
        {
            "path": r.path,
            "independent_calls": int(r.independent),
            "calls": int(r.calls),
            "ranks": nranks.get(r.path, 0),
            "bytes": int(r.bytes),
            "time": float(r.time),
        }
        for r in bad.itertuples()
        if r.path in shared
    ]
    if not rows:
        return []
    rows.sort(key=lambda r: (-r["time"], r["path"]))
    top = rows[0]
    n = sum(r["independent_calls"] for r in rows)
    total = sum(r["calls"] for r in rows)
    nb = sum(r["bytes"] for r in rows)
    time = sum(r["time"] for r in rows)
    return [
        Insight(
            "independent-mpiio",
            level_of(time, x.io_time),
            f"Independent MPI-IO on the shared file {top['path']}: {top['independent_calls']:,} "
            f"calls from {top['ranks']} ranks, {_size(top['bytes'] / top['independent_calls'])} "
            "on average",
            f"{n:,} of {total:,} MPI-IO reads and writes ({_pct(n / total)}) on files shared by "
            f"ranks are independent, {_secs(time)} in them. Collective calls "
            "(MPI_File_write_all, read_all, ...) let the MPI-IO layer merge the ranks' requests "
            "into few large ones (two-phase I/O).",
            {
                "independent_calls": n,
                "calls": total,
                "share": n / total,
                "files": [{**r, "time": int(r["time"])} for r in rows[:TOP_SUBJECTS]],
            },
            subject=top["path"],
            evidence=_evidence(n, nb, time, x.io_time),
        )
    ]


def _datasets(x: Context) -> list[Insight]:
    """Small independent dataset writes (HDF5, PnetCDF) from several ranks; collective
    transfers HDF5 did independently (chunking or selections it could not combine).  Their time
    at stake: the time in those datasets' calls."""
    d = x.s.datasets
    if d.empty:
        return []
    out = []
    shared = d[d["ranks"].str.contains("[-,]", regex=True)]  # written by 2 ranks or more
    n = int(shared["independent_small"].sum())
    if n >= DATASET_SMALL_MIN_CALLS:
        bad = shared[shared["independent_small"] > 0].sort_values("time", ascending=False)
        time = float(bad["time"].sum())
        out.append(
            Insight(
                "dataset-small-independent",
                level_of(time, x.io_time),
                f"Small independent dataset writes: {n:,} writes of less than "
                f"{fmt_bytes(SMALL_WRITE)} from several ranks ({', '.join(bad['dataset'])})",
                "Collective transfers (HDF5: H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE); "
                "PnetCDF: the *_all calls) let MPI-IO merge the ranks' pieces into few large "
                "writes (two-phase I/O).",
                {"calls": n, "datasets": len(bad)},
                subject=f"{bad['file'].iloc[0]}:{bad['dataset'].iloc[0]}",
                evidence=_evidence(n, int(bad["bytes_written"].sum()), time, x.io_time),
            )
        )
    broke = d[d["done_independently"] > 0].sort_values("time", ascending=False)
    if len(broke):
        n = int(broke["done_independently"].sum())
        time = float(broke["time"].sum())
        out.append(
            Insight(
                "hdf5-collective-done-independently",
                level_of(time, x.io_time),
                f"HDF5 did {n:,} collective H5Dread/H5Dwrite calls independently "
                f"({', '.join(broke['dataset'])})",
                "Asked collective, HDF5 fell back to independent I/O (H5Pget_mpio_no_collective_"
                "cause says why): chunks the ranks' selections cross, a datatype conversion, "
                "a selection it cannot combine. Chunk dimensions that match each rank's block "
                "keep the transfer collective.",
                {"calls": n, "datasets": len(broke)},
                subject=f"{broke['file'].iloc[0]}:{broke['dataset'].iloc[0]}",
                evidence=_evidence(
                    n, int(broke[["bytes_written", "bytes_read"]].sum().sum()), time, x.io_time
                ),
            )
        )
    for f in chunking_findings(d):  # one per dataset: its reads' and writes' time at stake
        n = f["numbers"]
        out.append(
            Insight(
                "hdf5-chunking-mismatch",
                level_of(f["time"], x.io_time),
                f"Chunking mismatches the access pattern of {f['subject']}: {f['what']}",
                f"{n['calls']:,} reads and writes of {fmt_bytes(n['access_bytes'])} on average "
                f"touched {n['chunks_touched']:,} chunks ({n['chunks_per_call']:.1f} per access), "
                f"{n['chunks_partial']:,} of them only in part; dataset {n['dims']}, chunks "
                f"{n['chunk']} ({fmt_bytes(n['chunk_bytes'])}). Chunk dimensions that match the "
                "block each access reads or writes (H5Pset_chunk) make each access whole chunks.",
                n,
                subject=f["subject"],
                evidence=_evidence(n["calls"], f["bytes"], f["time"], x.io_time),
            )
        )
    return out


def _shared(x: Context) -> list[Insight]:
    """Files several ranks wrote with POSIX calls of their own (MPI-IO's are judged above)."""
    f = x.s.files
    f = f[(f["write_ranks"] >= SHARED_MIN_RANKS) & (f["mpi_writes"] == 0)]
    f = f[f["path"].map(lambda p: p in x.s.app_paths or x.system)]
    if f.empty:
        return []
    f = f.sort_values(["write_time", "write_ranks"], ascending=False)
    top = f.head(TOP_SUBJECTS)
    lines = "; ".join(
        f"{r.path}: {int(r.write_ranks)} ranks, {_size(int(r.bytes_written))}, "
        f"{_pct(r.random_share) if r.random_share == r.random_share else 'n/a'} random"
        for r in top.itertuples()
    )
    first = top.iloc[0]
    most = int(first["write_ranks"])
    time = float(top["write_time"].sum())
    # lock contention grows with the writers: few ranks are worth a note, many a warning
    level = level_of(time, x.io_time) if most >= 8 else "info"
    return [
        Insight(
            "shared-file",
            level,
            f"Shared file {first['path']} written by {most} ranks"
            + (f" (and {len(f) - 1} more such files)" if len(f) > 1 else ""),
            f"{lines}. Many ranks writing one file contend for its locks and stripes: use "
            "collective MPI-IO (or a library on it), align each rank's part to the stripe size, "
            "or write a file per rank or node.",
            {
                "files": [
                    {
                        "path": r.path,
                        "ranks": int(r.write_ranks),
                        "bytes_written": int(r.bytes_written),
                    }
                    for r in top.itertuples()
                ]
            },
            subject=str(first["path"]),
            evidence=_evidence(
                int(top["writes"].sum()), int(top["bytes_written"].sum()), time, x.io_time
            ),
        )
    ]


# ---- the rest: time share, failures, what the trace lacks -------------------------------


def _io_share(x: Context) -> list[Insight]:
    ov = x.s.overview
    share = ov.get("io_share")
    if share is None or ov["events"] == 0:
        return []
    return [
        Insight(
            "io-time-share",
            "info",  # context, not a pathology: what is wrong in that time is told above
            f"I/O took {_pct(share)} of the processes' time ({_secs(ov['io_time'])} of "
            f"{_secs(ov['process_time'])})",
            f"Time inside traced calls (all threads of a process together), over the "
            f"processes' lifetimes; the run took {_secs(ov['run_time'])}. Read "
            f"{_size(ov['bytes_read'])}, wrote {_size(ov['bytes_written'])}.",
            {
                "share": share,
                "io_time": ov["io_time"],
                "process_time": ov["process_time"],
                "run_time": ov["run_time"],
            },
            subject="job",
            evidence={
                **_evidence(
                    ov["reads"] + ov["writes"],
                    ov["bytes_read"] + ov["bytes_written"],
                    ov["io_time"],
                    x.io_time,
                ),
                "share": None,
            },
        )
    ]


def _errors(x: Context) -> list[Insight]:
    """Failed file calls (not a socket's creation or connect, nor a pipe's or socket's
    EAGAIN: a non-blocking descriptor with nothing to read); those on system files are the
    runtime probing its search paths: not the app's (Counts.errors)."""
    errs = x.cnt.errors
    n = sum(v[0] for v in errs.values())
    if n == 0:
        return []
    parts = []
    by: dict[str, int] = {}
    for (fn, err), (c, _t) in sorted(errs.items(), key=lambda kv: (-kv[1][0], kv[0]))[:4]:
        name = errno_mod.errorcode.get(err, str(err))
        parts.append(f"{fn} {name} {int(c):,}")
        by[f"{fn} {name}"] = int(c)
    time = float(sum(v[1] for v in errs.values()))
    ep = x.cnt.error_paths
    subject = min(ep, key=lambda p: (-ep[p], p)) if ep else ""
    where = f", most on {subject}" if subject else ""
    numbers: dict[str, Any] = {"failed": n, "by_call": by}
    if ep and ep[subject] * 2 < sum(ep.values()):  # spread over many paths (a search path
        # probed): no one path is the subject, the directory most failed in is
        dirs: dict[str, int] = {}
        for p, c in ep.items():
            d = os.path.dirname(p) or "."
            dirs[d] = dirs.get(d, 0) + c
        top = sorted(dirs, key=lambda d: (-dirs[d], d))[:TOP_SUBJECTS]
        subject = top[0]
        where = (
            f" on {len(ep):,} paths in {len(dirs):,} "
            f"director{'y' if len(dirs) == 1 else 'ies'}, most in {subject}"
        )
        parts.append("by directory: " + ", ".join(f"{d} {dirs[d]:,}" for d in top))
        numbers["directories"] = {d: dirs[d] for d in top}
    return [
        Insight(
            "failed-calls",
            level_of(time, x.io_time),
            f"{n:,} call{'' if n == 1 else 's'} failed{where}",
            f"{', '.join(parts)}. Failed opens and stats of missing files often mean a search "
            "path is probed: each probe is a metadata round trip.",
            numbers,
            subject=subject,
            evidence=_evidence(n, 0, time, x.io_time),
        )
    ]


def _runtime_errors(x: Context) -> list[Insight]:
    """Failed file calls the parallel runtime made (Counts.runtime_errors): its probes of
    configuration files and its session directory's mkdir -p.  Told after the findings, not
    among them: the app did not make them, and nothing in the app would change them."""
    got = _failed_of(x.cnt.runtime_errors, x.cnt.runtime_error_paths)
    if got is None:
        return []
    n, by, time, paths, ep = got
    return [
        Insight(
            "runtime-failed-calls",
            "info",
            f"{n:,} failed call{'s were' if n > 1 else ' was'} the parallel runtime's, not the "
            "app's" + (f" (most on {paths[0]})" if paths else ""),
            f"{', '.join(f'{k} {v:,}' for k, v in by.items())}, called from MPI, PMIx, UCX or "
            "their components (their configuration probes, their session directory): not "
            f"counted as the app's failed calls. Paths: {', '.join(paths[:TOP_SUBJECTS])}.",
            {"failed": n, "by_call": by, "paths": {p: ep[p] for p in paths[:TOP_SUBJECTS]}},
            subject=paths[0] if paths else "",
            evidence=_evidence(n, 0, time, x.io_time),
        )
    ]


def _untold_errors(x: Context) -> list[Insight]:
    """Failed file calls without a stack (--stack 0) in processes that loaded the parallel
    runtime (Counts.untold_errors): the app's or the runtime's, nothing tells; said so rather
    than counted as either."""
    got = _failed_of(x.cnt.untold_errors, x.cnt.untold_error_paths)
    if got is None:
        return []
    n, by, time, paths, ep = got
    return [
        Insight(
            "untold-failed-calls",
            "info",
            f"{n:,} failed call{'s' if n > 1 else ''} in processes of the parallel runtime "
            "had no stack: the app's or the runtime's cannot be told"
            + (f" (most on {paths[0]})" if paths else ""),
            f"{', '.join(f'{k} {v:,}' for k, v in by.items())}, traced without call stacks "
            "(--stack 0) in processes that loaded MPI, PMIx, UCX or their components, whose own "
            "probes fail too: counted neither as the app's failed calls nor as the runtime's; "
            f"traced with stacks they are told apart. Paths: {', '.join(paths[:TOP_SUBJECTS])}.",
            {"failed": n, "by_call": by, "paths": {p: ep[p] for p in paths[:TOP_SUBJECTS]}},
            subject=paths[0] if paths else "",
            evidence=_evidence(n, 0, time, x.io_time),
        )
    ]


def _failed_of(
    errs: dict[tuple[str, int], list[int]], ep: dict[str, int]
) -> tuple[int, dict[str, int], float, list[str], dict[str, int]] | None:
    """Failed calls' count, the four most by call ("open ENOENT"), their time and paths (most
    failed on first); None: none."""
    n = sum(v[0] for v in errs.values())
    if n == 0:
        return None
    by = {
        f"{fn} {errno_mod.errorcode.get(err, str(err))}": int(c)
        for (fn, err), (c, _t) in sorted(errs.items(), key=lambda kv: (-kv[1][0], kv[0]))[:4]
    }
    time = float(sum(v[1] for v in errs.values()))
    return n, by, time, sorted(ep, key=lambda p: (-ep[p], p)), ep


def _missed(x: Context) -> list[Insight]:
    s = x.s
    n = int(s.overview["missed"])
    if n == 0:
        return []
    ms = s.missed_sites
    top = "; ".join(
        f"{r.site}: {r.functions}" + (f" (ranks {r.ranks})" if r.ranks else "")
        for r in ms.head(3).itertuples()
    )
    nbytes = int(ms["bytes"].sum()) if len(ms) else 0
    return [
        Insight(
            "missed-io",
            "warn",  # what the trace lacks: not weighed by time (it is not known)
            f"{n:,} syscalls were I/O the shim did not see ({_size(nbytes)} moved), "
            f"from {len(ms)} call site(s)",
            f"Most: {top}. They came from code that bypasses libc (static binaries, raw "
            "syscall(), io_uring, Go, threads of libraries): their bytes are in the totals, "
            "their durations are not known. See the missed I/O table.",
            {
                "missed": n,
                "bytes": nbytes,
                "sites": [
                    {"site": r.site, "count": int(r.count), "ranks": r.ranks}
                    for r in ms.head(10).itertuples()
                ],
            },
            subject=str(ms["site"].iloc[0]) if len(ms) else "",
            evidence=_evidence(n, nbytes, 0, x.io_time),
        )
    ]


IO_URING_PATH = "anon_inode:[io_uring]"


def _io_uring_unseen(x: Context) -> list[Insight]:
    """io_uring rings the shim saw mapped in a run without the stracer: the kernel moves their
    bytes with no libc call, so what went through them is in no log."""
    from iotrace.stracer import slog

    pid_set, mapped, rings = x.cnt.uring
    if not mapped or slog.log_files(x.trace.dir):
        return []
    pids = sorted(pid_set)
    return [
        Insight(
            "io-uring-unseen",
            "high",  # what the trace lacks: every total may be wrong
            f"io_uring: {rings or mapped} ring(s) mapped (pid {', '.join(map(str, pids))}) and "
            "no stracer ran: the I/O submitted through them is not in this trace",
            "io_uring operations are read from a ring in memory by the kernel, with no libc call "
            "the shim could wrap: their files, offsets and bytes are missing from every total "
            "here. Run without --no-stracer: the stracer decodes each operation from the ring.",
            {"rings": rings, "pids": pids},
            subject=f"pid {pids[0]}",
            evidence=_evidence(mapped, 0, 0, x.io_time),
        )
    ]


def _truncated(x: Context) -> list[Insight]:
    n = int(x.s.overview["truncated_logs"])
    if n == 0:
        return []
    return [
        Insight(
            "truncated-logs",
            "info",
            f"{n} log(s) were cut short",
            "Read up to the last whole record: the events of those processes after that point "
            "are missing.",
            {"logs": n},
            subject="trace",
            evidence=_evidence(0, 0, 0, x.io_time),
        )
    ]


def insights_of(trace: Trace, s: Summary, cnt: Counts) -> list[Insight]:
    """The findings from the summary and the events' Counts (`trace`: its directory)."""
    x = Context(trace, s, cnt, int(s.overview.get("file_io_time", 0)), s.system,
                collective_waits(cnt.collective))  # fmt: skip
    found = [
        *_rank_imbalance(x),
        *_late_ranks(x),
        *_patterns(x),
        *_read_by_every_rank(x),
        *_stdio_amplification(x),
        *_rereads(x),
        # on equal time (a search path probed: its failed lookups are the storm's operations)
        # the failures, which say why, first
        *_errors(x),
        *_meta_storm(x),
        *_frequent_sync(x),
        *_sync_time(x),
        *_independent_mpiio(x),
        *_datasets(x),
        *_shared(x),
        *_missed(x),
        *_io_uring_unseen(x),
        *_runtime_errors(x),
        *_untold_errors(x),
        *_io_share(x),
        *_truncated(x),
    ]
    # by level, then by the time at stake: the first finding would save the most; the context
    # (how much of the time was I/O, logs cut short) after the findings
    found.sort(key=lambda i: (i.key in CONTEXT, LEVELS.index(i.level), -i.evidence["time"]))
    return found
