"""The stracer's logs as a source of events: its MISSED records become rows of `events`
(`source='stracer'`, `class` libc or bypass, `missed=True` for a bypass), its call sites rows of
`stacks` (already symbolised by the stracer: reused as they are), and the process images it saw
without a shim (static binaries, Go, children that lost LD_PRELOAD) rows of `processes`.

The log (`HOST.PID.stracer`, docs/format.md) is read with the stracer's own reader,
`iotrace.stracer.slog.read`: one reader per format.  It reads the log a window at a time, and
load keeps its records as Python lists; the stracer writes at most a few tens of thousands of
records a second (every missed syscall is a ptrace stop), so a log is small next to the shim's,
and turning its records into columns costs ~2 µs each (see docs/analyzer.md).  `Converter`
turns them into rows a batch at a time too (`iotrace missed`: analyzer/missed_groups.py).

Which process a missed syscall belongs to: the stracer's PROC records (fork, exec, shim ready,
exit) cut each pid's life into images.  An image in which the shim said hello has a shim log; an
image without one is a process of its own (source 'stracer').  A missed syscall at time t of pid
P goes to the image of P that started last at or before t.  Rank: the shim log's of the same pid
if there is one, else the parent's (ranks inherit the launcher's environment), else none.
"""

from __future__ import annotations

import copy
import os
import sys
from bisect import bisect_right
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pandas as pd
from iotrace.stracer import slog
from iotrace.stracer.syscall_args import _MAP

from iotrace.calls import END2_SUFFIX, SYSCALL_BY_NAME
from iotrace.format import MS, SRec
from iotrace.record import field, record
from iotrace.tracefile import TraceFormatError, regular_size

from . import kept
from .event_columns import NULL_BITS, RawColumns
from .log_kinds import CLASS_NAMES, VIA_NAMES

INT64_MAX = int(np.iinfo(np.int64).max)


def _i64(v: int) -> int:
    """A 64-bit value as the int64 columns hold it: an unsigned one past INT64_MAX wrapped, as
    the shim's decoder holds its own (_decode.c BIG_*); msgpack's ints are within 64 bits."""
    return v - (1 << 64) if v >= 1 << 63 else v


@record
class SLog:
    """One stracer log, read."""

    path: Path
    size: int
    log: slog.StracerLog | None  # None: empty file (killed before its header)
    # its STOP records as columns (tid, t, ns), when indexed: by thread (Index.stops)
    stops: np.ndarray | None = None

    @property
    def header(self) -> dict[str, Any]:
        return self.log.header if self.log is not None else {}

    @property
    def host(self) -> str:
        return str(self.header.get("host", "?"))

    @property
    def shift(self) -> int:
        c = self.header.get("clock") or {}
        return int(c.get("real", 0)) - int(c.get("mono", 0))

    @property
    def truncated(self) -> bool:
        return self.log is None or not self.log.complete

    @property
    def n_missed(self) -> int:
        return len(self.log.missed) if self.log is not None else 0

    @property
    def n_rows(self) -> int:
        """Rows of events: one per MISSED record, two for a call with two ends."""
        return Converter.n_rows(self.log.missed) if self.log is not None else 0


@record
class Wanted:
    """Which MISSED records of one log a part holds: those of `pids` whose call (entry to exit,
    on the log's clock) reaches into [a, b) (None: unbounded); those of the pids in `spans`
    whose entry is in one of their spans [lo, hi] (the stracer-only images' times, ends
    included: stracer_only_spans); and with `others` the first record of every other pid (the
    stracer-only processes are numbered as the records meet them: the same numbers in every
    part)."""

    pids: set[int]
    a: int | None = None
    b: int | None = None
    others: bool = True
    spans: dict[int, list[tuple[int | None, int | None]]] = field(default_factory=dict)

    def keep(self) -> Callable[[list[Any]], bool]:
        """The test of each record, in the log's order."""
        seen: set[int] = set()
        pids, a, b, others, spans = self.pids, self.a, self.b, self.others, self.spans

        def keep(rec: list[Any]) -> bool:
            pid, t = rec[2], rec[1]
            first = pid not in seen
            seen.add(pid)
            if pid in spans and any(
                (lo is None or t >= lo) and (hi is None or t <= hi) for lo, hi in spans[pid]
            ):
                return True
            if pid not in pids:
                return others and first
            if b is not None and t >= b:
                return False
            if a is not None:
                return _t_end(rec) >= a
            return True

        return keep


def _t_end(rec: list[Any]) -> int:
    """A MISSED record's exit time (its entry's when it has none)."""
    te = rec[MS.t_exit] if len(rec) > MS.t_exit else None
    return max(rec[1], te) if isinstance(te, int) else rec[1]


# which MISSED records of a log to hold, from the log (its header, its PROC records: load.Part's
# filter)
Keep = Callable[["SLog"], Wanted]


def read_logs(paths: list[Path], keep: Keep | None = None, kept: bool = False) -> list[SLog]:
    """The stracer logs, read; with `keep` only the MISSED records it wants are read (through
    the log's index) and held.  `kept`: a log this process indexed (its parts) is that index's
    log, MISSED and STOP records not held (the command's warning of logs cut short read the
    20,002-process trace's log whole again: 2 CPU-s)."""
    out = []
    for p in paths:
        size = regular_size(p)
        if size == 0:
            out.append(SLog(p, 0, None))
            continue
        try:
            ix = _indexed(p) if kept else None
            if ix is not None:
                out.append(SLog(p, size, ix.log, ix.stops))
                continue
            if keep is None:
                out.append(SLog(p, size, slog.read(p)))
                continue
            ix = index(p)
            h = SLog(p, size, ix.log)
            log, stops = read_wanted(p, keep(h))
            out.append(SLog(p, size, log, stops))
        except slog.StracerLogError as exc:
            raise TraceFormatError(str(exc)) from None
    return out


BLOCK = 1 << 15  # bytes of MISSED records one entry of a log's index covers


class Packed:
    """A stracer log's PROC or KIO records as one msgpack buffer, unpacked each time they are
    walked: a worker's index holds every process's records for its parts (a fork, an exec,
    the shim's hello, an exit and a reading a process), and as Python lists they cost ~2 KB a
    process (41 MB of a worker at 20,000 processes); packed, ~190 B.  The tables made of
    them (matching, the stracer's readings) are made once per worker (load._Memo): the walks
    are few.  The same records as read (msgpack's types round-trip: lists, ints, text with
    surrogates, dicts)."""

    __slots__ = ("buf", "n")

    def __init__(self, records: list[list[Any]]) -> None:
        self.buf = msgpack.packb(records, unicode_errors="surrogateescape")
        self.n = len(records)

    def __iter__(self) -> Any:
        return iter(self.records())

    def __len__(self) -> int:
        return self.n

    def records(self) -> list[list[Any]]:
        return msgpack.unpackb(self.buf, raw=False, strict_map_key=False,
                               unicode_errors="surrogateescape")  # fmt: skip


@record
class Index:
    """A stracer log read whole once (and checked) by this process, for the parts it reads:
    its records but MISSED and STOP (`log`), its STOP records as columns (tid, t, ns) sorted by
    thread (a part takes its threads' by two searches, not a pass over every record; each
    thread's in the log's order) and their count and ns (`stop_sums`), and where
    its MISSED records lie: blocks of ~BLOCK bytes (`starts`, `ends`) and per block and pid
    the least entry and the latest end of its records there (`rows`: block, pid, least, most);
    with each pid's first record and its position (`firsts`)."""

    log: slog.StracerLog
    stops: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    rows: np.ndarray
    firsts: list[tuple[int, list[Any]]]
    stop_sums: tuple[int, int] = (0, 0)


_INDEX: dict[tuple[str, int, int], Index] = {}  # (path, size, mtime): a worker's parts share it


def _index_key(path: Path) -> tuple[str, int, int]:
    st = os.stat(path)
    return (str(path), st.st_size, st.st_mtime_ns)


def _indexed(path: Path) -> Index | None:
    """The log's index if this process made it (and the file is as it was then)."""
    return _INDEX.get(_index_key(path))


def index(path: Path) -> Index:
    """The log's index, read once per process (and per version of the file): a part reads
    only the blocks of the MISSED records it wants (read_wanted), not every record."""
    key = _index_key(path)
    if key in _INDEX:
        return _INDEX[key]
    stops: list[tuple[int, int, int]] = []
    starts: list[int] = []
    ends: list[int] = []
    rows: dict[tuple[int, int], list[int]] = {}
    firsts: list[tuple[int, list[Any]]] = []
    seen: set[int] = set()

    def at(start: int, end: int, rec: list[Any]) -> None:
        if rec[0] == SRec.STOP:
            stops.append((rec[1], rec[2], rec[3]))
            return
        if not starts or start - starts[-1] >= BLOCK:
            starts.append(start)
            ends.append(end)
        ends[-1] = end
        pid, t, te = rec[2], rec[1], _t_end(rec)
        row = rows.get((len(starts) - 1, pid))
        if row is None:
            rows[(len(starts) - 1, pid)] = [t, te]
        else:
            row[0], row[1] = min(row[0], t), max(row[1], te)
        if pid not in seen:
            seen.add(pid)
            firsts.append((start, rec))

    with kept.making():  # kept for the process's next parts
        log = slog.read(path, at=at)
        log.procs, log.kio = Packed(log.procs), Packed(log.kio)  # type: ignore[assignment]
    r = np.array([(b, p, lo, hi) for (b, p), (lo, hi) in rows.items()], dtype=np.int64)
    st = np.array(stops, dtype=np.int64).reshape(-1, 3)
    st = st[np.argsort(st[:, 0], kind="stable")]
    ix = Index(log, st, np.array(starts, np.int64), np.array(ends, np.int64), r.reshape(-1, 4),
               firsts, (len(st), int(st[:, 2].sum())))  # fmt: skip
    for k in [k for k in _INDEX if Path(k[0]).parent != path.parent]:
        del _INDEX[k]  # one trace at a time: another trace's logs let go
    _INDEX[key] = ix
    return ix


def read_wanted(path: Path, w: Wanted) -> tuple[slog.StracerLog, np.ndarray]:
    """The log with only the MISSED records `w` wants, in the log's order, read from the blocks
    that may hold them (the index); and its STOP records (columns)."""
    ix = index(path)
    r = ix.rows
    sel = np.isin(r[:, 1], np.fromiter(w.pids, np.int64, len(w.pids)))
    if w.a is not None:
        sel &= r[:, 3] >= w.a
    if w.b is not None:
        sel &= r[:, 2] < w.b
    for pid, spans in w.spans.items():
        of = r[:, 1] == pid
        for lo, hi in spans:
            sel |= (
                of
                & (r[:, 3] >= (lo if lo is not None else r[:, 3]))
                & (r[:, 2] <= (hi if hi is not None else r[:, 2]))
            )
    blocks = np.unique(r[sel, 0])
    found = dict(ix.firsts) if w.others else {}
    # runs of consecutive blocks, each read with one pread
    cuts = np.flatnonzero(np.diff(blocks) != 1) + 1
    for run in np.split(blocks, cuts) if len(blocks) else []:
        for pos, rec in slog.records(path, int(ix.starts[run[0]]), int(ix.ends[run[-1]])):
            if type(rec) is list and rec and rec[0] == SRec.MISSED:
                found[pos] = rec
    keep = w.keep()
    log = copy.copy(ix.log)
    log.missed = [rec for _, rec in sorted(found.items(), key=lambda x: x[0]) if keep(rec)]
    return log, ix.stops


def stop_totals(paths: list[Path]) -> tuple[int, int]:
    """The whole trace's STOP records and the ns they held, from the logs' indexes (a part holds
    only its threads' records: stops)."""
    n = ns = 0
    for p in paths:
        if regular_size(p):
            got = index(p).stop_sums
            n, ns = n + got[0], ns + got[1]
    return n, ns


def stracer_only_spans(
    sl: SLog, shims: list[ShimProc]
) -> dict[int, list[tuple[int | None, int | None]]]:
    """Per pid of log `sl`, the times (its clock) of its MISSED records that may belong to a
    process the shim had no log of (the stracer-only processes, as Converter assigns them):
    from such an image's start (none for a pid's first) to the next image's or log's start
    (none for the last); a pid with neither image nor log: all.  `shims`: every shim log's,
    their starts on the real clock (load.shim_procs(logs, 0))."""
    if sl.log is None:
        return {}
    first = len(shims) + 1  # the stracer-only images' numbers: past every shim log's
    conv = Converter([sl], shims, 0, first, 0)
    out: dict[int, list[tuple[int | None, int | None]]] = {}
    for (host, pid), cands in conv.cands.items():
        if host != sl.host:
            continue
        for i, (start, proc) in enumerate(cands):
            if proc >= first:
                lo = start - sl.shift if i > 0 else None
                hi = cands[i + 1][0] - sl.shift if i + 1 < len(cands) else None
                out.setdefault(pid, []).append((lo, hi))
    known = {pid for host, pid in conv.cands if host == sl.host}
    for pid in np.unique(index(sl.path).rows[:, 1]).tolist():
        if pid not in known:
            out[int(pid)] = [(None, None)]
    return out


@record
class Image:
    """A process image the stracer saw (between fork/exec and the next exec or exit)."""

    host: str
    pid: int
    start: int  # ns since the job's start
    forked: bool
    exe: str
    ppid: int | None = None
    shim: bool = False  # the shim said hello in it
    end: int | None = None
    rc: int | None = None  # exit record: returncode (-N: signal N)
    execd: bool = False  # ended by an exec
    log: str = ""
    truncated: bool = False
    proc: int = -1  # row of processes, when it is a stracer-only process


@record
class ShimProc:
    """What the stracer source needs to know of a shim log."""

    proc: int
    host: str
    pid: int
    start: int | None  # None: its header is damaged (iotrace missed reads on without it)
    rank: int | None


@record
class Result:
    processes: list[dict[str, Any]]  # rows of the stracer-only processes
    site_frames: dict[int, list[tuple[Any, ...]]]  # stack_id -> frames
    # (host, pid) -> its images' (start, end t, rc, execd), by start: a pid may be reused
    exits: dict[tuple[str, int], list[tuple[int, int, int | None, bool]]]
    images: list[Image] = field(default_factory=list)


def _images(sl: SLog, t0: int) -> list[Image]:
    """The images of every pid of one log, in order."""
    assert sl.log is not None
    shift, host = sl.shift - t0, sl.host  # (a property: ~0.3 us a record)
    cur: dict[int, Image] = {}
    out: list[Image] = []
    attached: dict[int, Image] = {}
    for rec in sl.log.procs:
        try:
            _, t, pid, ppid, what, detail = rec[:6]
            t = int(t) + shift
        except (ValueError, TypeError):
            continue
        img = cur.get(pid)
        if what == "fork":
            parent = cur.get(ppid)
            new = Image(host, pid, t, True, parent.exe if parent else "", ppid,
                        shim=parent.shim if parent else False)  # fmt: skip
        elif what == "exec":
            # one object per distinct program (a worker's matching holds an image a process)
            exe = sys.intern(str(detail.get("exe", ""))) if isinstance(detail, dict) else ""
            new = Image(host, pid, t, False, exe, img.ppid if img else None)
            if img is not None:
                img.end, img.execd = t, True
        elif what == "attach":  # `iotrace attach`: the trace of pid begins (with no I/O, too)
            new = attached[pid] = Image(host, pid, t, False, "")
        elif what == "shim":
            if img is None:
                img = cur[pid] = Image(host, pid, t, False, "")
                out.append(img)
            img.shim = detail == "ready"
            continue
        elif what == "exit":
            if img is not None:
                img.end = t
                img.rc = detail if isinstance(detail, int) else None
            continue
        else:
            continue
        cur[pid] = new
        out.append(new)
    for rec in sl.log.kio:  # an attached image ends at its last reading (its exit, the detach)
        img = attached.get(rec[2]) if len(rec) > 2 else None
        if img is not None and isinstance(rec[1], int):
            img.end = max(img.end or img.start, rec[1] + shift)
    for img in out:
        img.log = sl.path.name
        img.truncated = sl.truncated
    return out


def _frames(raw: Any) -> list[tuple[Any, ...]]:
    out = []
    for fr in raw if isinstance(raw, list) else []:
        fr = list(fr)[:6] + [None] * max(0, 6 - len(fr))
        out.append(tuple(fr))
    return out


# open flags' names, and mmap's as the stracer names them (the flags column of an mmap)
_OFLAG_BITS = {n: getattr(os, n) for n in dir(os) if n.startswith("O_")} | {
    name: bit for bit, name in _MAP
}


def _oflags(v: Any) -> int | None:
    """Open or mmap flags given as names (["O_WRONLY", "O_CREAT"]) back to the number."""
    if isinstance(v, int):
        return v
    if not isinstance(v, list):
        return None
    n = 0
    for name in v:
        if isinstance(name, str):
            if name in _OFLAG_BITS:
                n |= _OFLAG_BITS[name]
            elif name.startswith("0x"):
                try:
                    n |= int(name, 16)
                except ValueError:
                    pass
    return n


def _positions(header: dict[str, Any], name: str) -> tuple[int, int, int, int]:
    """Argument positions of (size, off, flags: open's, mmap's, pipe2's or dup3's, prot) of a
    syscall, -1 if none: from the log's header (how its args are to be read), else from
    calls.SYSCALLS."""
    kinds = (header.get("syscalls") or {}).get(name)
    if kinds is None:
        sc = SYSCALL_BY_NAME.get(name)
        kinds = list(sc.args) if sc else []

    def at(kind: str) -> int:
        return kinds.index(kind) if kind in kinds else -1

    return at("size"), at("off"), max(at("oflags"), at("mflags"), at("fdflags")), at("prot")


def _writable(prot: Any) -> bool:
    """An mmap's protection (as the log gives it: names, or the number) has PROT_WRITE."""
    return (prot & 2 != 0) if isinstance(prot, int) else isinstance(prot, list) and (
        "PROT_WRITE" in prot)  # fmt: skip


@record
class Matching:
    """Which process each pid's time belongs to (Converter): the stracer's images of every pid,
    per (host, pid) the candidates (start, proc), the stracer-only images (numbered from
    `first_proc`), the ranks, the parents and how each pid's last image ended.  It depends on
    the stracer logs' PROC records and the shim logs' headers only: a worker's parts of one
    trace share it (load.py: built once per worker, not once per part, O(processes) each)."""

    images: list[Image]
    cands: dict[tuple[str, int], list[tuple[int, int]]]
    extra: list[Image]
    shim_rank: dict[int, int | None]
    rank_of_pid: dict[tuple[str, int], int | None]
    parent: dict[tuple[str, int], int]
    exits: dict[tuple[str, int], list[tuple[int, int, int | None, bool]]]
    rows: list[dict[str, Any]] | None = None  # the rows of processes of `extra` (Converter)


def matching(slogs: list[SLog], shims: list[ShimProc], t0: int, first_proc: int) -> Matching:
    """The Matching of the stracer logs `slogs` (their PROC records) and the shim logs `shims`."""
    images: list[Image] = []
    for sl in slogs:
        if sl.log is not None:
            images += _images(sl, t0)
    by_pid: dict[tuple[str, int], list[ShimProc]] = {}
    for s in shims:
        by_pid.setdefault((s.host, s.pid), []).append(s)
    imgs_of: dict[tuple[str, int], list[Image]] = {}
    for img in images:
        imgs_of.setdefault((img.host, img.pid), []).append(img)

    # Candidates per (host, pid): (boundary, proc).  A shim log's boundary is the start of the
    # stracer image it belongs to (its header is written a little after the exec/fork).
    cands: dict[tuple[str, int], list[tuple[int, int]]] = {}
    extra: list[Image] = []
    for key, imgs in imgs_of.items():
        logs = sorted((s for s in by_pid.get(key, []) if s.start is not None),
                      key=lambda s: s.start)  # fmt: skip
        # a log without a start: the first image with the shim and no log of its own
        unknown = [s for s in by_pid.get(key, []) if s.start is None]
        for img in imgs:
            end = img.end if img.end is not None else INT64_MAX
            mine = [s for s in logs if img.start <= s.start <= end] if img.shim else []
            if img.shim and not mine and unknown:
                mine = [unknown.pop(0)]
            if not mine:
                img.proc = first_proc + len(extra)
                extra.append(img)
                cands.setdefault(key, []).append((img.start, img.proc))
            else:
                cands.setdefault(key, []).append((img.start, mine[0].proc))
                cands[key] += [(s.start, s.proc) for s in mine[1:]]
    for key, logs in by_pid.items():
        if key not in imgs_of:
            cands[key] = sorted((s.start or 0, s.proc) for s in logs)
    # ranks: the shim log's of the same pid, else the parent's
    rank_of_pid: dict[tuple[str, int], int | None] = {}
    for key, logs in by_pid.items():
        ranks = [s.rank for s in logs if s.rank is not None]
        rank_of_pid[key] = ranks[-1] if ranks else None
    parent: dict[tuple[str, int], int] = {}
    exits: dict[tuple[str, int], list[tuple[int, int, int | None, bool]]] = {}
    for img in images:
        if img.ppid:
            parent.setdefault((img.host, img.pid), img.ppid)
        if img.end is not None:
            exits.setdefault((img.host, img.pid), []).append(
                (img.start, img.end, img.rc, img.execd)
            )
    for ends in exits.values():
        ends.sort(key=lambda e: e[0])
    return Matching(images, {k: sorted(v) for k, v in cands.items()}, extra,
                    {s.proc: s.rank for s in shims}, rank_of_pid, parent, exits)  # fmt: skip


class Converter:
    """MISSED records -> rows of events, a batch at a time: each record's process image (from
    every log's PROC records and the shim logs), its columns, its call site's stack id.  Made
    once for the trace's stracer logs (their records but the MISSED ones read: `procs`, `sites`,
    `site_fn`); `rows` then takes each log's MISSED records, whole (load) or in batches as they
    are read (`iotrace missed`, analyzer/missed_groups.py).  Stracer-only processes are
    numbered from `first_proc` as the records meet them, the sites from `stack_base`."""

    def __init__(
        self,
        slogs: list[SLog],
        shims: list[ShimProc],
        t0: int,
        first_proc: int,
        stack_base: int,
        matched: Matching | None = None,
    ) -> None:
        self.slogs, self.t0, self.first_proc = slogs, t0, first_proc
        m = matched if matched is not None else matching(slogs, shims, t0, first_proc)
        self.images, self.cands, self.exits = m.images, m.cands, m.exits
        self.shim_rank, self.rank_of_pid, self.parent = m.shim_rank, m.rank_of_pid, m.parent
        self.matched = m
        self.extra = list(m.extra)  # rows() adds the pids no image has: this converter's own
        self.no_proc: dict[tuple[str, int], Image] = {}

        # the sites: each log's after the previous log's
        self.site_frames: dict[int, list[tuple[Any, ...]]] = {}
        self.site_fn: dict[int, str | None] = {}  # stack id -> the libc function it is inside
        self.bases: list[int] = []
        base = stack_base
        for sl in slogs:
            self.bases.append(base)
            if sl.log is None:
                continue
            for sid, frames in sl.log.sites.items():
                if isinstance(sid, int) and sid >= 0:
                    self.site_frames[base + sid] = _frames(frames)
                    self.site_fn[base + sid] = sl.log.site_fn.get(sid)
            base += max((s for s in sl.log.sites if isinstance(s, int)), default=0) + 1
        self.pos_cache: dict[tuple[int, str], tuple[int, int, int, int]] = {}

    @staticmethod
    def n_rows(records: list[list[Any]]) -> int:
        """Rows of events: one per MISSED record, two for a call with two ends."""
        return sum(1 + (len(r) > MS.fd2 and isinstance(r[MS.fd2], int)) for r in records)

    def rows(
        self,
        li: int,
        records: list[list[Any]],
        out: RawColumns,
        proc_out: np.ndarray,
        cls_out: np.ndarray,
        via_out: np.ndarray,
        fn_code: Any,
        path_code: Any,
    ) -> int:
        """The MISSED `records` of log `li` into `out` (room for n_rows), `proc_out`, `cls_out`
        (their class's index in log_kinds.CLASS_NAMES) and `via_out` (their engine's in
        VIA_NAMES); codes for function names and paths come from `fn_code(name)` and
        `path_code(path)` (the trace-wide dictionaries).  Returns the rows written."""
        sl = self.slogs[li]
        shift = sl.shift - self.t0
        header = sl.header
        base = self.bases[li]
        cands = self.cands
        cols = {k: out[k] for k in ("tid", "fn", "t_start", "dur", "fd", "path", "req", "ret",
                                    "errno", "offset", "flags", "stack", "nulls")}  # fmt: skip
        pos = 0
        for rec in records:
            try:
                _, t, pid, tid, name, args, ret, err, site, fd, path = rec[:11]
                t_exit = rec[MS.t_exit] if len(rec) > MS.t_exit else None  # log version 2
                dur = int(t_exit) - int(t) if isinstance(t_exit, int) and t_exit >= t else 0
                t = int(t) + shift
            except (ValueError, TypeError):
                continue
            key = (sl.host, int(pid))
            cs = cands.get(key)
            if cs is None:
                img = self.no_proc.get(key)
                if img is None:
                    img = self.no_proc[key] = Image(sl.host, int(pid), t, False, "",
                                                    log=sl.path.name,
                                                    truncated=sl.truncated)  # fmt: skip
                    img.proc = self.first_proc + len(self.extra)
                    self.extra.append(img)
                proc = img.proc
            else:
                i = bisect_right(cs, (t, INT64_MAX)) - 1
                proc = cs[max(i, 0)][1]
            name = str(name)
            pk = (li, name)
            p = self.pos_cache.get(pk)
            if p is None:
                p = self.pos_cache[pk] = _positions(header, name)
            i_size, i_off, i_ofl, i_prot = p
            args = args if isinstance(args, list) else []
            nulls = 0
            size = args[i_size] if 0 <= i_size < len(args) else None
            off = args[i_off] if 0 <= i_off < len(args) else None
            if name == "lseek" and isinstance(ret, int) and ret >= 0:
                off = ret  # the offset reached
            ends = rec[MS.offset : MS.via] if len(rec) >= MS.via else None  # a call with two ends
            if ends is not None:
                off = ends[0]
            flags = _oflags(args[i_ofl]) if 0 <= i_ofl < len(args) else None
            if not isinstance(size, int):
                nulls |= NULL_BITS["req"]
                size = 0
            else:  # a register's unsigned value (write(fd, buf, (size_t)-1)): held wrapped
                size = _i64(size)
            if not isinstance(off, int):
                nulls |= NULL_BITS["offset"]
                off = 0
            else:
                off = _i64(off)
            if flags is None:
                nulls |= NULL_BITS["flags"]
                flags = 0
            if not isinstance(fd, int):
                nulls |= NULL_BITS["fd"]
                fd = 0
            if 0 <= i_prot < len(args) and _writable(args[i_prot]):
                nulls |= NULL_BITS["mode_w"]  # an mmap's PROT_WRITE, as the shim's mode has it
            pc = path_code(path) if isinstance(path, str) and path else -1
            if not isinstance(site, int) or site < 0:
                st = -1
            else:
                st = base + site
            cols["tid"][pos] = tid if isinstance(tid, int) else pid
            cols["fn"][pos] = fn_code(name)
            cols["t_start"][pos] = t
            cols["dur"][pos] = dur  # entry stop to exit stop (0: never returned, or a v1 log)
            cols["fd"][pos] = fd
            cols["path"][pos] = pc
            cols["req"][pos] = size
            cols["ret"][pos] = _i64(ret) if isinstance(ret, int) else -1  # nil: never returned
            cols["errno"][pos] = slog.app_errno(err)  # a cut call (ERESTARTSYS): not failed
            cols["offset"][pos] = off
            cols["flags"][pos] = flags
            cols["stack"][pos] = st
            cols["nulls"][pos] = nulls
            proc_out[pos] = proc
            cls_out[pos] = CLASS_NAMES.index(slog.missed_class(rec))
            via = slog.missed_via(rec)
            via_out[pos] = VIA_NAMES.index(via) if via in VIA_NAMES else 0
            pos += 1
            if ends is not None and isinstance(ends[1], int):  # the end read: a row of its own
                for k in cols:
                    cols[k][pos] = cols[k][pos - 1]
                _, fd2, path2, off2 = ends
                nulls &= ~(NULL_BITS["offset"] | NULL_BITS["fd"])
                nulls |= NULL_BITS["end2"] | (0 if isinstance(off2, int) else NULL_BITS["offset"])
                cols["fn"][pos] = fn_code(name + END2_SUFFIX)
                cols["fd"][pos] = fd2
                cols["path"][pos] = path_code(path2) if isinstance(path2, str) and path2 else -1
                cols["offset"][pos] = _i64(off2) if isinstance(off2, int) else 0
                cols["nulls"][pos] = nulls
                proc_out[pos] = proc
                cls_out[pos] = cls_out[pos - 1]
                via_out[pos] = via_out[pos - 1]
                pos += 1
        return pos

    def rank_of(self, host: str, pid: int) -> int | None:
        """A stracer-only process's rank: its pid's shim log's, else its parent's."""
        seen = set()
        key = (host, pid)
        while key not in seen:
            seen.add(key)
            r = self.rank_of_pid.get(key)
            if r is not None:
                return r
            pp = self.parent.get(key)
            if pp is None:
                return None
            key = (host, pp)
        return None

    def rank(self, proc: int) -> int | None:
        """The rank of process `proc` (a shim log's or a stracer-only one met so far)."""
        if proc < self.first_proc:
            return self.shim_rank.get(proc)
        img = self.extra[proc - self.first_proc]
        return self.rank_of(img.host, img.pid)

    def _rows(self, images: list[Image]) -> list[dict[str, Any]]:
        """The stracer-only images' rows of processes."""
        rows = []
        for img in images:
            status: int | None = None
            ended = "unknown"
            if img.execd:
                ended = "exec"
            elif img.rc is not None:
                status, ended = (img.rc, "exit") if img.rc >= 0 else (None, f"signal {-img.rc}")
            rows.append(
                {
                    "proc": img.proc,
                    "source": "stracer",
                    "host": img.host,
                    "rank": self.rank_of(img.host, img.pid),
                    "pid": img.pid,
                    "ppid": img.ppid,
                    "command": img.exe,
                    "exe": img.exe,
                    "cwd": "",
                    "forked": img.forked,
                    "start": img.start,
                    "end": img.end if img.end is not None else img.start,
                    "exit_status": status,
                    "ended": ended,
                    "truncated": img.truncated,
                    "log": img.log,
                }
            )
        return rows

    def result(self) -> Result:
        """The stracer-only processes (every record converted) and the sites' frames."""
        m = self.matched
        if m.rows is None:  # the same for every converter of this matching: made once
            m.rows = self._rows(m.extra)
        rows = [*m.rows, *self._rows(self.extra[len(m.extra) :])]
        return Result(rows, self.site_frames, self.exits, self.images)


def stops(slogs: list[SLog], t0: int, threads: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Every STOP record (the stracer held thread `tid` from `t` for `ns`), t from the job's
    start as the events' (docs/format.md, "The stracer log"); with `threads` (per host, thread
    ids: a part's) only theirs."""
    host: list[str] = []
    parts: list[np.ndarray] = []
    for sl in slogs:
        mine = None if threads is None else threads.get(sl.host, np.zeros(0, np.int64))
        if sl.stops is not None:  # (by thread: Index.stops)
            a = sl.stops if mine is None else _of_threads(sl.stops, mine)
        elif sl.log is None or not sl.log.stops:
            continue
        else:
            a = np.array([r[1:4] for r in sl.log.stops], dtype=np.int64).reshape(-1, 3)
            if mine is not None:
                a = a[np.isin(a[:, 0], mine)]
        a = a.copy()
        a[:, 1] += sl.shift - t0
        parts.append(a)
        host += [sl.host] * len(a)
    a = np.concatenate(parts) if parts else np.zeros((0, 3), dtype=np.int64)
    return pd.DataFrame({"host": host, "tid": a[:, 0], "t": a[:, 1], "ns": a[:, 2]})


def _of_threads(a: np.ndarray, tids: np.ndarray) -> np.ndarray:
    """The rows of `a` (sorted by its first column, the thread) of the threads `tids`."""
    tids = np.unique(tids)
    lo = np.searchsorted(a[:, 0], tids, side="left")
    hi = np.searchsorted(a[:, 0], tids, side="right")
    keep = hi > lo
    if not keep.any():
        return a[:0]
    idx = np.concatenate([np.arange(x, y) for x, y in zip(lo[keep], hi[keep], strict=True)])
    return a[idx]
