"""Access patterns: access sizes, sequential vs random, alignment; the per-file table.

Rules (docs/analyzer.md):

- A *data access* is a successful read or write (op READ/WRITE, `bytes` not null) below the
  MPI-IO layer: POSIX calls, stdio streams' refills and flushes (stdio_refill, stdio_flush: the
  app's stdio calls are the layer above, in the functions table only), and the stracer's
  syscalls.  MPI-IO reads and writes are
  *MPI data accesses*, counted apart (their bytes also went through the POSIX calls inside them:
  counting both would count them twice).
- Access-size buckets are Darshan's, upper bound included: 0-100, 100-1K, 1K-10K, 10K-100K,
  100K-1M, 1M-4M, 4M-10M, 10M-100M, 100M-1G, 1G+ (K = 1024, M = 1024², G = 1024³).
- A *stream* is one process's reads (or writes) of one path, in time order.  An access with a
  known offset is *consecutive* if it starts where the previous access of its stream ended (the
  first of a stream, or the first after the process opened the path again: at offset 0),
  *sequential* if it starts there or further on (consecutive included), else *random* (it goes
  back).  Shares are of the accesses with a known offset.
- An access is *unaligned* if its offset is not a multiple of 4096 (ALIGN).
- A *system file* is one the runtime reads for the app, not the app's data (`is_system_path`):
  kernel pseudo-files and devices, the system's programs, libraries and configuration, an
  interpreter's standard library and installed packages, the MPI runtime's session files,
  anonymous inodes.  A *data file* is any other absolute path (pipes and sockets are neither).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from iotrace.calls import Op
from iotrace.record import record

from . import schema
from .group_scans import dense, max_by, prev_in_group, sums

ALIGN = 4096
BUCKET_EDGES = np.array(
    [100, 1 << 10, 10 << 10, 100 << 10, 1 << 20, 4 << 20, 10 << 20, 100 << 20, 1 << 30],
    dtype=np.int64,
)
BUCKETS = [
    "0-100",
    "100-1K",
    "1K-10K",
    "10K-100K",
    "100K-1M",
    "1M-4M",
    "4M-10M",
    "10M-100M",
    "100M-1G",
    "1G+",
]
SMALL = 4096  # "small" accesses: fewer bytes than this
SYSTEM_PREFIXES = (
    "/proc/",
    "/sys/",
    "/dev/",
    "/usr/",
    "/etc/",
    "/lib/",
    "/lib32/",
    "/lib64/",
    "/bin/",
    "/sbin/",
    "/run/",
    "/var/lib/",
    "/var/cache/",
    "anon_inode:",
)
# anywhere in a path: an interpreter's standard library, its compiled modules and installed
# packages; the MPI runtime's session directories (Open MPI, PRRTE, PMIx) and its user settings
SYSTEM_PARTS = re.compile(
    r"/lib/python\d|/__pycache__/|/(site|dist)-packages/|/pyvenv\.cfg$|/\.(openmpi|pmix)/"
    r"|^/(tmp|var/tmp|dev/shm)/(ompi|prte|pmix|openmpi-sessions)[.-]"
)


def is_system_path(path: str) -> bool:
    """A runtime or system file (not the app's data): see the module's docstring."""
    return path.startswith(SYSTEM_PREFIXES) or path == "/sys" or bool(SYSTEM_PARTS.search(path))


def is_data_file(path: str) -> bool:
    """A file of the app's data: an absolute path that is not a system file."""
    return path.startswith("/") and not is_system_path(path)


OP_CODE = {name: i for i, name in enumerate(schema.OP_NAMES)}
READ, WRITE = OP_CODE[Op.READ.value], OP_CODE[Op.WRITE.value]
OPEN = OP_CODE[Op.OPEN.value]


@record
class Arrays:
    """The events' columns as plain numpy arrays (nulls as -1 codes or masks), for fast maths."""

    n: int
    proc: np.ndarray
    rank: np.ndarray  # -1 = none
    path: np.ndarray  # code, -1 = none
    paths: list[str]
    op: np.ndarray  # code into schema.OP_NAMES
    fn: np.ndarray  # code into functions
    functions: list[str]
    bytes: np.ndarray  # 0 where null
    has_bytes: np.ndarray
    offset: np.ndarray
    has_offset: np.ndarray
    t_start: np.ndarray
    t_end: np.ndarray
    errno: np.ndarray
    stack: np.ndarray  # -1 = none
    mpi: np.ndarray  # the event is an MPI-IO call (family "mpi")
    datalib: np.ndarray  # an HDF5 or PnetCDF call: a layer above MPI-IO (the datasets table)
    stdio: np.ndarray  # an app's stdio call (its bytes reached the kernel as refills/flushes)
    missed: np.ndarray  # the event is a syscall the shim missed (the stracer's)
    tid: np.ndarray
    system: np.ndarray  # the event's path is a system file (is_system_path)
    datafile: np.ndarray  # the event's path is a data file (is_data_file)
    # ns the stracer held the event's thread during it (held()): the tracer's, not the app's
    stopped: np.ndarray | None = None

    @property
    def dur(self) -> np.ndarray:
        """Each event's own time (its holds out); made once per `stopped` (read-only: shared)."""
        got = self.__dict__.get("_dur")
        if got is None or got[0] is not self.stopped:
            d = self.t_end - self.t_start
            d = d if self.stopped is None else d - self.stopped
            d.flags.writeable = False
            got = self.__dict__["_dur"] = (self.stopped, d)
        return got[1]

    def _kept(self, name: str, make: Callable[[], np.ndarray]) -> np.ndarray:
        """A mask of the columns (never reassigned), made once (read-only: shared); a part's
        reduction asks for each a dozen times (3 M events: ~2 ms each)."""
        got = self.__dict__.get(name)
        if got is None:
            got = self.__dict__[name] = make()
            got.flags.writeable = False
        return got

    @property
    def moved(self) -> np.ndarray:
        """Mask of reads and writes that moved a known number of bytes (either layer)."""
        return self._kept("_moved", lambda: op_in(self.op, (READ, WRITE)) & self.has_bytes)

    @property
    def data(self) -> np.ndarray:
        """Mask of data accesses (the POSIX layer: what reached the kernel; for stdio streams
        their refills and flushes, not the app's calls)."""
        return self._kept("_data", lambda: self.moved & ~self.mpi & ~self.datalib & ~self.stdio)

    @property
    def mpi_data(self) -> np.ndarray:
        """Mask of MPI-IO data accesses (the MPI layer)."""
        return self._kept("_mpi_data", lambda: self.moved & self.mpi)

    @property
    def io(self) -> np.ndarray:
        """Mask of events counted as time in I/O (all but process control)."""
        return self._kept("_io", lambda: self.op != OP_CODE[Op.PROC.value])


def op_in(op: np.ndarray, codes: Iterable[int]) -> np.ndarray:
    """Mask of the events whose op code is one of `codes` (np.isin took ~15 ns an event, these
    comparisons well under 1)."""
    out = np.zeros(op.shape, dtype=bool)
    for c in codes:
        out |= op == c
    return out


def held(ev: pd.DataFrame, stops: pd.DataFrame) -> np.ndarray:
    """Per event, the ns the stracer held its thread during it: the STOP records of the same
    host and thread that began inside [t_start, t_end], at most the event's duration."""
    out = np.zeros(len(ev), dtype=np.int64)
    if not len(ev) or not len(stops):
        return out
    # only the events with a stop (of any thread) inside them can hold one: more stops began
    # by their end than before their start (stops are few: two searches over their sorted
    # times leave most events out), and those few are matched by thread in numpy
    t_start, t_end = ev["t_start"].to_numpy(np.int64), ev["t_end"].to_numpy(np.int64)
    st_t = np.sort(stops["t"].to_numpy(np.int64))
    near = np.flatnonzero(
        np.searchsorted(st_t, t_end, side="right") > np.searchsorted(st_t, t_start, side="left")
    )
    if not len(near):
        return out
    t0, t1 = t_start[near], t_end[near]
    # one sorted axis: threads (host, tid) ranked, times shifted past each other by the ranks
    first = int(min(t0.min(), st_t[0]))
    span = int(max(t1.max(), st_t[-1])) - first + 1
    cats = list(ev["host"].cat.categories)
    hcode = stops["host"].map({h: i for i, h in enumerate(cats)}).fillna(-1).to_numpy(np.int64)
    skey = hcode << 32 | stops["tid"].to_numpy(np.int64)
    keys = np.unique(skey)
    if span * (len(keys) + 1) >= 1 << 62:
        return out  # not representable this way: nothing taken out
    ekey = ev["host"].cat.codes.to_numpy()[near].astype(np.int64) << 32
    ekey |= ev["tid"].to_numpy()[near].astype(np.int64)
    at = np.minimum(np.searchsorted(keys, ekey), len(keys) - 1)
    erank = np.where(keys[at] == ekey, at, -1)
    pos = stops["t"].to_numpy(np.int64) - first + np.searchsorted(keys, skey) * span
    order = np.argsort(pos, kind="stable")
    pos = pos[order]
    cum = np.concatenate([[0], np.cumsum(stops["ns"].to_numpy(np.int64)[order])])
    has = erank >= 0
    base = erank[has] * span - first
    t0, t1 = t0[has], t1[has]
    lo = np.searchsorted(pos, base + t0, side="left")
    hi = np.searchsorted(pos, base + t1, side="right")
    out[near[has]] = np.minimum(cum[hi] - cum[lo], np.maximum(t1 - t0, 0))
    return out


@functools.lru_cache(maxsize=16)
def _function_bits(functions: tuple[str, ...]) -> np.ndarray:
    """Per function code (and -1's row: none) its bits: MPI-IO's 1, a data library's 2, an
    app's stdio call 4.  Once per list: every part of a trace has the same ~260 (~1 ms a part
    to judge)."""
    bits = np.zeros(len(functions) + 1, dtype=np.uint8)
    for bit, judge in ((1, schema.is_mpi), (2, schema.is_datalib), (4, schema.is_stdio_call)):
        bits[:-1] |= np.array([judge(f) for f in functions], dtype=bool) * np.uint8(bit)
    bits.flags.writeable = False
    return bits


def _flags(bits: np.ndarray, codes: np.ndarray, *which: int) -> list[np.ndarray]:
    """Per event (its code into `bits`, -1: the last row) a mask per bit of `which`: one gather
    (np.take: ~2x a fancy index over int8 codes) for them all."""
    per = np.take(bits, codes)
    return [(per & np.uint8(b)).view(bool) if b == 1 else (per & np.uint8(b)) != 0 for b in which]


def arrays(ev: pd.DataFrame) -> Arrays:
    def ints(col: str, fill: int) -> tuple[np.ndarray, np.ndarray]:
        s = ev[col]
        return s.to_numpy(dtype=np.int64, na_value=fill), s.notna().to_numpy()

    b, hb = ints("bytes", 0)
    o, ho = ints("offset", 0)
    rank, _ = ints("rank", -1)
    stack, _ = ints("stack_id", -1)
    functions = list(ev["function"].cat.categories)
    # intp: a weighted bincount over int16 codes costs ~7x one over intp (numpy 2)
    fn = ev["function"].cat.codes.to_numpy().astype(np.intp)
    mpi, datalib, stdio = _flags(_function_bits(tuple(functions)), fn, 1, 2, 4)
    paths = list(ev["path"].cat.categories)
    path = ev["path"].cat.codes.to_numpy()
    path_bits = np.array([is_system_path(str(p)) + 2 * is_data_file(str(p)) for p in paths] + [0],
                         dtype=np.uint8)  # fmt: skip
    system, datafile = _flags(path_bits, path, 1, 2)
    return Arrays(
        n=len(ev),
        proc=ev["proc"].to_numpy(),
        rank=rank,
        path=path,
        paths=paths,
        op=ev["op"].cat.codes.to_numpy(),
        fn=fn,
        functions=functions,
        bytes=b,
        has_bytes=hb,
        offset=o,
        has_offset=ho,
        t_start=ev["t_start"].to_numpy(),
        t_end=ev["t_end"].to_numpy(),
        errno=ev["errno"].to_numpy(),
        stack=stack,
        mpi=mpi,
        datalib=datalib,
        stdio=stdio,
        missed=ev["missed"].to_numpy(),
        tid=ev["tid"].to_numpy(),
        system=system,
        datafile=datafile,
    )


def bucket_of(nbytes: np.ndarray) -> np.ndarray:
    """Each size's bucket: how many edges lie below it (searchsorted's side="left"), counted
    edge by edge (~2x faster than a binary search per size)."""
    out = np.zeros(np.shape(nbytes), dtype=np.int8)  # at most len(BUCKET_EDGES)
    for e in BUCKET_EDGES.tolist():
        out += nbytes > e
    return out.astype(np.int64)


@record
class Classified:
    """Per data access with a known offset (in `idx`, indices into the events)."""

    idx: np.ndarray
    consecutive: np.ndarray
    sequential: np.ndarray


def _groups(key: np.ndarray) -> tuple[np.ndarray, int]:
    """Group codes 0..k-1 for the values of `key` (not every code used), and k: the key less
    its least where its values span few codes (a part's (process, path) keys: ~0.5 ns an
    event), else dense codes (a hash table: ~10 ns an event)."""
    if not len(key):
        return key.astype(np.int64), 0
    lo, hi = int(key.min()), int(key.max())
    if hi - lo < 4 * len(key) + 4096:
        return key - lo, hi - lo + 1
    return dense(key)


def classify(a: Arrays, carry: dict[tuple[object, ...], int] | None = None) -> Classified:
    """`carry`: where a process's streams were before these events (a range of its events:
    analyzer/ranges.py), by (proc, path, is write): the previous access's end; by (proc, path):
    1 if the last of its accesses and opens was an open.  Updated in place to after them."""
    is_sel = a.data & a.has_offset & (a.path >= 0)
    sel = np.flatnonzero(is_sel)
    npaths = len(a.paths) + 1

    def file_of(idx: np.ndarray) -> np.ndarray:
        key = a.proc[idx].astype(np.int64)
        key *= npaths
        key += a.path[idx]
        return key

    # (the arrays are let go as soon as done with: a part's peak memory is here, ~100 B per
    # event when they were all held to the end)
    direction = (a.op[sel] == WRITE).astype(np.int64)
    key = file_of(sel)
    key *= 2
    key += direction
    stream, k = _groups(key)
    del key
    off = a.offset[sel]
    end = off + a.bytes[sel]
    none = np.iinfo(np.int64).min
    prev_end = prev_in_group(stream, end, k, 0 if carry is None else none)  # in time order
    if carry is not None:
        for i in np.flatnonzero(prev_end == none).tolist():
            j = sel[i]
            prev_end[i] = carry.get((int(a.proc[j]), a.paths[a.path[j]], int(direction[i])), 0)
        last = pd.Series(np.arange(len(sel))).groupby(stream).last().to_numpy()
        for i in last.tolist():
            j = sel[i]
            carry[(int(a.proc[j]), a.paths[a.path[j]], int(direction[i]))] = int(end[i])
    del stream, end, direction
    # a successful open of the file by the process starts its streams again: rereading a file
    # from the start after reopening it is sequential, not a jump back
    opened = (a.op == OPEN) & (a.path >= 0) & (a.errno == 0)  # never a data access
    if carry or opened.any():
        rows = np.flatnonzero(is_sel | opened)  # the accesses and opens, in time order
        is_open = opened[rows].astype(np.int64)
        del is_sel, opened
        g, kg = _groups(file_of(rows))
        after_open = prev_in_group(g, is_open, kg, 0 if carry is None else -1)
        if carry is not None:
            for i in np.flatnonzero(after_open == -1).tolist():
                j = rows[i]
                after_open[i] = carry.get((int(a.proc[j]), a.paths[a.path[j]]), 0)
            last = pd.Series(np.arange(len(rows))).groupby(g).last().to_numpy()
            for i in last.tolist():
                j = rows[i]
                carry[(int(a.proc[j]), a.paths[a.path[j]])] = int(is_open[i])
        reopened = (after_open == 1)[is_open == 0]  # the accesses', in sel's order
        del g, rows, is_open, after_open
        prev_end[reopened] = 0
    return Classified(sel, off == prev_end, off >= prev_end)


def _count(codes: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    if len(codes) == 0:
        return np.zeros(n, dtype=np.int64)
    out = np.bincount(codes, weights=weights, minlength=n)
    return out.astype(np.int64) if weights is None or weights.dtype.kind != "f" else out


def _distinct_per_path(path: np.ndarray, other: np.ndarray, n: int) -> np.ndarray:
    """Per path: how many distinct values of `other` (>= 0) occur with it."""
    ok = (path >= 0) & (other >= 0)
    if not ok.any():
        return np.zeros(n, dtype=np.int64)
    width = int(other[ok].max()) + 1
    key = path[ok].astype(np.int64) * width + other[ok]
    if n * width <= 4 * len(key):  # few pairs possible: a bincount, not a hash table
        return (np.bincount(key, minlength=n * width).reshape(n, width) > 0).sum(axis=1)
    return _count(pd.unique(key) // width, n)


def files_table(
    ev: pd.DataFrame, a: Arrays | None = None, c: Classified | None = None
) -> pd.DataFrame:
    a = a if a is not None else arrays(ev)
    return _files_frame(file_columns(a, c if c is not None else classify(a)))


def file_columns(a: Arrays, c: Classified) -> dict[str, object]:
    """The files table's columns, one row per path code (files_table keeps the files)."""
    n = len(a.paths)
    has = (a.path >= 0) & ~a.datalib  # HDF5's, PnetCDF's files and datasets: the datasets table
    # One key per (path, kind of call): a read/write that moved nothing known (failed) is a
    # kind of its own.  Three bincounts then give every count, byte and time sum per path.
    # The events not `has` count in a row of their own (n), left out: no copies of the columns.
    nk = len(schema.OP_NAMES) + 1
    failed = nk - 1
    kind = np.where(op_in(a.op, (READ, WRITE)) & ~a.data, failed, a.op)
    key = np.where(has, a.path, n).astype(np.int64) * nk + kind
    rows = (n + 1) * nk
    counts, moved, spent = (x.reshape(n + 1, nk)[:n] for x in sums(key, rows, a.bytes, a.dur))
    del key, kind
    io_kinds = [k for k in range(nk) if k != OP_CODE[Op.PROC.value]]
    meta = [OP_CODE[Op.META.value], OP_CODE[Op.OPEN.value]]

    def i64(x: np.ndarray) -> np.ndarray:
        return np.rint(x).astype(np.int64)

    cols: dict[str, object] = {"path": a.paths}
    cols["bytes_read"] = i64(moved[:, READ])
    cols["bytes_written"] = i64(moved[:, WRITE])
    cols["reads"] = counts[:, READ]
    cols["writes"] = counts[:, WRITE]
    cols["opens"] = counts[:, OP_CODE[Op.OPEN.value]]
    cols["meta_ops"] = counts[:, OP_CODE[Op.META.value]]
    cols["seeks"] = counts[:, OP_CODE[Op.SEEK.value]]
    cols["syncs"] = counts[:, OP_CODE[Op.SYNC.value]]
    cols["ops"] = counts.sum(axis=1)
    cols["errors"] = _count(a.path[has & (a.errno != 0)].astype(np.int64), n)
    cols["io_time"] = i64(spent[:, io_kinds].sum(axis=1))
    cols["read_time"] = i64(spent[:, READ])
    cols["write_time"] = i64(spent[:, WRITE])
    cols["meta_time"] = i64(spent[:, meta].sum(axis=1))
    cp = a.path[c.idx].astype(np.intp)  # the classified accesses' paths
    cols["max_offset"] = _max_end(a, c, cp, n)
    cols["ranks"] = _distinct_per_path(a.path, a.rank, n)
    moved = a.moved
    wmask = moved & (a.op == WRITE)
    cols["write_ranks"] = _distinct_per_path(np.where(wmask, a.path, -1), a.rank, n)
    cols["data_ranks"] = _distinct_per_path(np.where(moved, a.path, -1), a.rank, n)
    cols["rank_list"] = _rank_lists(a, n)
    md = a.mpi_data
    if md.any():
        mp = a.path[md & (a.path >= 0)].astype(np.int64)
        mop = a.op[md & (a.path >= 0)]
        mb = a.bytes[md & (a.path >= 0)]
        cols["mpi_reads"] = _count(mp[mop == READ], n)
        cols["mpi_writes"] = _count(mp[mop == WRITE], n)
        cols["mpi_bytes_read"] = np.rint(_count(mp[mop == READ], n, mb[mop == READ].astype(float)))
        cols["mpi_bytes_written"] = np.rint(
            _count(mp[mop == WRITE], n, mb[mop == WRITE].astype(float))
        )
    else:
        for name in ("mpi_reads", "mpi_writes", "mpi_bytes_read", "mpi_bytes_written"):
            cols[name] = np.zeros(n, dtype=np.int64)
    for name in ("mpi_bytes_read", "mpi_bytes_written"):
        cols[name] = np.asarray(cols[name]).astype(np.int64)
    cols["missed"] = _count(a.path[a.missed & has].astype(np.int64), n)
    if a.n and a.proc.min() == a.proc.max() and not a.datalib.any():  # one process: its paths
        cols["processes"] = (counts.sum(axis=1) > 0).astype(np.int64)
    else:
        cols["processes"] = _distinct_per_path(a.path, a.proc.astype(np.int64), n)
    nbk = len(BUCKETS)
    # reads and writes, the others -1 (no copies of the columns)
    flat = a.path.astype(np.int64) * 2
    flat += a.op == WRITE
    flat *= nbk
    flat += bucket_of(a.bytes)
    flat[~(has & a.data)] = -1
    hist = sums(flat, n * 2 * nbk)[0].reshape(n, 2, nbk)
    for d, name in enumerate(("read", "write")):
        for j, label in enumerate(BUCKETS):
            cols[f"{name}_{label}"] = hist[:, d, j]
    # the three counts in one pass (sums of the flags as weights, no copies)
    classified, consec, seq = sums(cp, n, c.consecutive, c.sequential)
    aligned_sel = a.data & a.has_offset & (a.path >= 0)
    cols["classified"] = classified
    cols["consecutive"] = consec
    cols["sequential"] = seq
    cols["random"] = classified - seq
    with np.errstate(invalid="ignore", divide="ignore"):
        cols["seq_share"] = np.where(classified > 0, seq / np.maximum(classified, 1), np.nan)
        cols["random_share"] = np.where(classified > 0, 1 - seq / np.maximum(classified, 1), np.nan)
    unaligned = aligned_sel & (a.offset & (ALIGN - 1) != 0)  # ALIGN: a power of 2
    cols["unaligned"] = _count(a.path[unaligned].astype(np.int64), n)
    return cols


def _files_frame(cols: dict[str, object]) -> pd.DataFrame:
    """The table of these per-path columns: file_rows's rows with calls, in sort_files's order,
    picked and ordered before the frame is made (pandas on the whole table: ~5 ms a part)."""
    paths = cols["path"]
    ops, rd, wr = (np.asarray(cols[c]) for c in ("ops", "bytes_read", "bytes_written"))
    calls = np.zeros(len(ops), dtype=bool)
    for c in ("reads", "writes", "opens", "meta_ops", "bytes_read", "bytes_written"):
        calls |= np.asarray(cols[c]) != 0
    named = [not str(p).startswith(("/", *DESCRIPTORS)) for p in paths]
    rows = [i for i in np.flatnonzero(ops > 0).tolist() if calls[i] or not named[i]]
    if not rows:  # the frame's columns and types as pandas makes them
        df = pd.DataFrame(cols)
        return sort_files(file_rows(df[df["ops"] > 0]))
    moved = (rd + wr).tolist()
    rows.sort(key=lambda i: (-moved[i], -int(ops[i]), paths[i]))
    at = np.array(rows, dtype=np.intp)
    picked = {k: [v[i] for i in rows] if isinstance(v, list) else np.asarray(v)[at]
              for k, v in cols.items()}  # fmt: skip
    return pd.DataFrame(picked)


DESCRIPTORS = ("pipe:", "socket:", "anon_inode:")  # a descriptor's name: no path, yet a file


def file_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The files table's rows that are files: not the names some calls take where others take
    a path (getaddrinfo's "localhost", newlocale's "POSIX", setlocale's ""), rows with no path
    of a file and no open, read, write or metadata call."""
    p = df["path"].astype(str)
    named = ~p.str.startswith("/") & ~p.str.startswith(DESCRIPTORS)
    calls = df[["reads", "writes", "opens", "meta_ops", "bytes_read", "bytes_written"]]
    return df[~(named & (calls == 0).all(axis=1))]


def sort_files(df: pd.DataFrame) -> pd.DataFrame:
    """The files table's order: most bytes moved (read and written: a file only written is not
    put below every file read a byte), then calls; ties by path (the bounded and in-memory paths
    meet the paths in different orders)."""
    moved = df["bytes_read"] + df["bytes_written"]
    keys = ["_moved", "ops", "path"]
    df = df.assign(_moved=moved).sort_values(keys, ascending=[False, False, True], kind="stable")
    return df.drop(columns="_moved").reset_index(drop=True)


def compact_ranks(ranks: list[int]) -> str:
    """[0, 1, 2, 3, 5] -> "0-3,5"."""
    out: list[str] = []
    rs = sorted(set(ranks))
    i = 0
    while i < len(rs):
        j = i
        while j + 1 < len(rs) and rs[j + 1] == rs[j] + 1:
            j += 1
        out.append(str(rs[i]) if i == j else f"{rs[i]}-{rs[j]}")
        i = j + 1
    return ",".join(out)


def _rank_lists(a: Arrays, n: int) -> list[str]:
    """Per path: the ranks that touched it ("" for none), compacted ("0-3,5")."""
    ok = (a.path >= 0) & (a.rank >= 0)
    out = [""] * n
    if not ok.any():
        return out
    width = int(a.rank[ok].max()) + 1
    pairs = np.sort(pd.unique(a.path[ok].astype(np.int64) * width + a.rank[ok]))
    paths, ranks = pairs // width, pairs % width
    bounds = np.flatnonzero(np.diff(paths)) + 1
    for grp_p, grp_r in zip(np.split(paths, bounds), np.split(ranks, bounds), strict=True):
        out[int(grp_p[0])] = compact_ranks(grp_r.tolist())
    return out


def _max_end(a: Arrays, c: Classified, paths: np.ndarray, n: int) -> np.ndarray:
    """Per path the furthest end of a data access at a known offset: the classified ones
    (`paths`: theirs)."""
    return max_by(paths, n, a.offset[c.idx] + a.bytes[c.idx])


def size_histogram(a: Arrays, keep: np.ndarray | None = None) -> pd.DataFrame:
    """Access-size buckets over the files (the events in `keep`, else all): bucket, reads,
    writes."""
    d = a.data if keep is None else a.data & keep
    out = {"bucket": BUCKETS}
    for name, code in (("reads", READ), ("writes", WRITE)):
        m = d & (a.op == code)
        out[name] = np.bincount(bucket_of(a.bytes[m]), minlength=len(BUCKETS))[: len(BUCKETS)]
    return pd.DataFrame(out)
