"""A process's log larger than a worker's share of the memory bound, cut into time ranges.

`index(PATH)` reads a log once, a chunk at a time (bounded memory), and keeps per chunk the
least and most start time of its events (in the log's own clock), their number, whether it has
records other than events (strings, stacks, modules, the kernel's counters, exit...), and the
spans of its MPI-IO/HDF5/PnetCDF calls.  `cuts(INDEX, EVENTS)` cuts the log's time into ranges
[lo, hi) of about EVENTS events each, at times inside no such call (a POSIX call tied to an
MPI-IO or HDF5 call is in the same range as the call).  A range is loaded (load.py, Part.window)
from the chunks whose events may start in it, filtered to those that do, and from every chunk
with other records (parsed, their events dropped): ids, stacks, the exit and the counters are
the whole log's in every range.  What a process carries from one range to the next (its streams'
ends, the reach of its calls in flight, nonblocking MPI-IO posts, HDF5 datasets' shapes, the
events after its last counters reading) is in parts.Carry; the ranges of a process are reduced
in order, in one worker.
"""

from __future__ import annotations

import os

import numpy as np

from iotrace.record import record
from iotrace.tracefile import BadChunk, open_regular, regular_size, verify

from . import schema
from .event_columns import RawColumns, decoder
from .load import MIN_EVENT_BYTES, _corrupt, _Log, _open
from .log_kinds import SHIM

SPANS_PER_CHUNK = 16  # a chunk's outer calls, merged down to this many spans (its widest gaps kept)
CAND_EVERY = 64  # a range may start at every 64th event's start (and between outer calls)
RUN_BYTES = 4 << 20  # a range load reads its chunks in runs of at most this many bytes
READ_BYTES = 64 << 20  # the index reads this much log at a time


@record
class LogIndex:
    path: str
    size: int
    first: int  # the first chunk's offset
    chunk: int
    tmin: np.ndarray  # per chunk slot: the least start time (the log's clock; none: int64 max)
    tmax: np.ndarray  # the most (none: int64 min)
    n: np.ndarray  # rows decoded
    other: np.ndarray  # bool: records other than events (and the last chunk read)
    spans: np.ndarray  # (k, 2): [start, end] of MPI-IO/HDF5/PnetCDF calls (merged, coarse)
    cands: np.ndarray  # times a range may start at (sorted, unique, inside no span)
    sample: np.ndarray  # every CAND_EVERY-th event's start of each chunk (sorted): ranges' sizes
    n_ends: int  # rows that are the end read of a call with two ends

    @property
    def events(self) -> int:
        return int(self.n.sum())


def _spans(s: np.ndarray, e: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Intervals [s, e] merged, then down to k spans by filling their narrowest gaps."""
    o = np.argsort(s, kind="stable")
    s, e = s[o], np.maximum.accumulate(e[o])
    new = np.r_[True, s[1:] > e[:-1]]
    starts, ends = s[new], e[np.r_[new[1:], True]]
    if len(starts) > k:
        gaps = starts[1:] - ends[:-1]
        keep = np.sort(np.argsort(-gaps, kind="stable")[: k - 1])
        starts, ends = starts[np.r_[0, keep + 1]], ends[np.r_[keep, len(ends) - 1]]
    return starts, ends


def index(path: str) -> LogIndex:
    """One pass over a shim log: its chunks' times, sizes, other records and outer calls."""
    lg = _Log(0, SHIM, __import__("pathlib").Path(path), regular_size(path))
    _open(lg)
    chunk, first = lg.chunk, lg.first
    slots = max(0, -(-(lg.size - first) // chunk)) if lg.size else 0
    tmin = np.full(slots, np.iinfo(np.int64).max, dtype=np.int64)
    tmax = np.full(slots, np.iinfo(np.int64).min, dtype=np.int64)
    n = np.zeros(slots, dtype=np.int64)
    other = np.zeros(slots, dtype=bool)
    names = [str(f) for f in lg.header.get("functions", [])]
    outer = np.array([schema.is_mpi(f) or schema.is_datalib(f) for f in names] + [False] * 2)
    scratch = RawColumns.empty(2 * (chunk // MIN_EVENT_BYTES) + 2)
    dec = decoder()
    span_s: list[np.ndarray] = []
    span_e: list[np.ndarray] = []
    cands: list[np.ndarray] = []
    sample: list[np.ndarray] = []
    n_ends = 0
    step = max(1, READ_BYTES // chunk) * chunk
    with open_regular(lg.path) as fd:
        for start in range(first, lg.size, step):
            buf = os.pread(fd, max(0, min(step, lg.size - start)), start)
            try:
                verify(buf, 0, len(buf), chunk)
            except BadChunk as exc:
                raise _corrupt(lg, exc.code, start + exc.off) from None
            done = False
            for off in range(0, len(buf), chunk):
                res = dec.scan(buf, off, off + chunk, chunk, scratch, 0)
                if res.error:
                    raise _corrupt(lg, res.error, start + res.error_off)
                k = (start + off - first) // chunk
                other[k] = res.n_other > 0 or res.truncated
                n_ends += res.n_ends
                m = res.n_events
                if m:
                    t = scratch["t_start"][:m]
                    n[k], tmin[k], tmax[k] = m, int(t.min()), int(t.max())
                    sample.append(t[::CAND_EVERY].copy())
                    fn = scratch["fn"][:m]
                    o = outer[np.minimum(fn, len(outer) - 1)]
                    if o.any():
                        s, e = _spans(t[o], t[o] + scratch["dur"][:m][o], SPANS_PER_CHUNK)
                        span_s.append(s)
                        span_e.append(e)
                        cands.append((e[:-1] + s[1:]) // 2 + 1)  # inside the widest gaps
                        cands.append(e + 1)
                if res.truncated:
                    done = True
                    break
            if done:
                break
        if slots:
            other[slots - 1] = True  # the last chunk: whether the log was cut short
    spans = np.zeros((0, 2), dtype=np.int64)
    if span_s:
        s, e = _spans(np.concatenate(span_s), np.concatenate(span_e), 1 << 62)
        spans = np.stack([s, e], axis=1)
    smp = np.sort(np.concatenate(sample)) if sample else np.zeros(0, dtype=np.int64)
    c = np.unique(np.concatenate([smp, *cands]))
    if len(spans) and len(c):
        i = np.searchsorted(spans[:, 0], c, side="left") - 1  # the last span starting before
        inside = (i >= 0) & (spans[np.maximum(i, 0), 1] >= c)
        c = c[~inside]
    return LogIndex(str(path), lg.size, first, chunk, tmin, tmax, n, other, spans, c, smp, n_ends)


@record(frozen=True)
class Range:
    """A range of a log's events: those starting in [lo, hi) (None: open), read from the chunk
    slots `slots` (those whose events may start in it, and those with other records)."""

    lo: int | None
    hi: int | None
    slots: np.ndarray

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (Range, (self.lo, self.hi, self.slots))


def cuts(ix: LogIndex, events: int) -> list[Range]:
    """The log's ranges, each holding about `events` events or fewer (more only where no time
    may be cut: a single call, or MPI-IO calls back to back across every thread)."""
    has = ix.n > 0
    tmin, tmax, n = ix.tmin, ix.tmax, ix.n
    out: list[tuple[int | None, int | None]] = []
    lo: int | None = None
    events = max(events, 1)
    while True:
        live = has & (tmax >= (lo if lo is not None else np.iinfo(np.int64).min))
        ts = np.sort(tmin[live])
        cs = np.cumsum(n[live][np.argsort(tmin[live], kind="stable")])
        c = ix.cands if lo is None else ix.cands[ix.cands > lo]
        if not len(cs) or cs[-1] <= events or not len(c):
            out.append((lo, None))
            break
        at = np.searchsorted(ts, c, side="left")
        cost = np.where(at > 0, cs[np.maximum(at - 1, 0)], 0)
        fits = c[(cost <= events) & (cost > 0)]
        if len(fits):
            hi = int(fits[-1])
        else:
            nonzero = c[cost > 0]
            if not len(nonzero):
                out.append((lo, None))
                break
            hi = int(nonzero[0])  # the least more than the bound
        out.append((lo, hi))
        lo = hi
    return [_range(ix, lo_, hi_) for lo_, hi_ in out]


def events_in(ix: LogIndex, r: Range) -> int:
    """About how many events start in the range (every CAND_EVERY-th of each chunk counted)."""
    a = 0 if r.lo is None else int(np.searchsorted(ix.sample, r.lo, side="left"))
    b = len(ix.sample) if r.hi is None else int(np.searchsorted(ix.sample, r.hi, side="left"))
    return (b - a) * CAND_EVERY


def _range(ix: LogIndex, lo: int | None, hi: int | None) -> Range:
    big, small = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    a = lo if lo is not None else small
    b = hi if hi is not None else big
    inside = (ix.n > 0) & (ix.tmax >= a) & (ix.tmin < b)
    return Range(lo, hi, np.flatnonzero(inside | ix.other).astype(np.int64))


def runs(slots: np.ndarray, most: int) -> list[tuple[int, int]]:
    """Consecutive slots as (first slot, count), at most `most` slots each."""
    out: list[tuple[int, int]] = []
    if not len(slots):
        return out
    brk = np.flatnonzero(np.diff(slots) != 1) + 1
    for grp in np.split(slots, brk):
        s, k = int(grp[0]), len(grp)
        for j in range(0, k, most):
            out.append((s + j, min(most, k - j)))
    return out
