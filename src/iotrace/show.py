"""`iotrace show`: every event, one a line, strace-like, in time order across processes."""

from __future__ import annotations

import errno as errno_mod
import heapq
import os
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from iotrace.calls import DATA_FUNCS, EVENT_FIELDS, FUNCTIONS
from iotrace.flags import WHENCE, oflags
from iotrace.format import EV, Rec
from iotrace.select import Select, mask
from iotrace.text import escape, quote_data
from iotrace.tracefile import Log, Records, open_log, reading

# Log.events rows are (tid, *record[1:]): the record's type slot holds the thread.  Only calls
# with two ends have the last three.
(TID, FN, T0, DUR, FD, PATH, REQ, RET, ERR, OFF, FLAGS, MODE, STACK, AUX,
 FD2, PATH2, OFF2) = range(len(EVENT_FIELDS))  # fmt: skip

_OPENERS = {"open", "openat", "creat", "fopen", "fdopen", "freopen"}


def _arg(kind: str, fname: str, ev: tuple[Any, ...], strings: dict[int, str]) -> str | None:
    def path(pid: Any) -> str:
        return f'"{escape(strings[pid])}"' if pid in strings else "?" if pid is not None else "NULL"

    fd, aux = ev[FD], ev[AUX]
    if kind == "fd":
        if fd is None:
            return None
        p = strings.get(ev[PATH]) if ev[PATH] is not None else None
        return f"{fd}<{escape(p)}>" if p else str(fd)
    if kind == "path":
        return path(ev[PATH]) if ev[PATH] is not None else None
    if kind == "path2":
        return path(aux) if isinstance(aux, int) else None
    if kind == "fd2":
        return str(aux) if isinstance(aux, int) else None
    if kind == "end2":  # the end read: from fd2<path2>@offset2
        if len(ev) <= OFF2 or ev[FD2] is None:
            return None
        p = strings.get(ev[PATH2]) if ev[PATH2] is not None else None
        at = f"@{ev[OFF2]}" if ev[OFF2] is not None else ""
        return f"from {ev[FD2]}<{p}>{at}" if p else f"from {ev[FD2]}{at}"
    if kind == "whence":
        return WHENCE.get(aux, str(aux)) if isinstance(aux, int) else None
    if kind == "addr":
        return hex(ev[RET]) if isinstance(ev[RET], int) and ev[RET] > 0 else None
    value = ev[{"req": REQ, "off": OFF, "flags": FLAGS, "mode": MODE}[kind]]
    if value is None:
        return None
    if kind == "flags" and fname in _OPENERS:
        return "|".join(oflags(value))
    if kind == "mode" and fname in _OPENERS | {"mkdir", "mkdirat"}:
        return oct(value)
    return str(value)


def format_event(log: Log, ev: tuple[Any, ...], t_origin: int) -> str:
    h = log.header
    who = f"pid {h['pid']} tid {ev[TID]}"
    if h.get("rank") is not None:
        who = f"rank {h['rank']} " + who
    names = log.functions
    fname = escape(names[ev[FN]]) if ev[FN] < len(names) else f"fn{ev[FN]}"
    shows = FUNCTIONS[ev[FN]].shows if ev[FN] < len(FUNCTIONS) else ()
    args = [a for k in shows if (a := _arg(k, fname, ev, log.strings)) is not None]
    ret = ev[RET]
    data = log.data.get((ev[TID], ev[T0])) if log.data and fname in DATA_FUNCS else None
    if data is not None:  # -s N: the buffer, where strace has it (after the descriptor)
        args.insert(1 if args else 0, quote_data(data, ret))
    if ev[ERR]:
        name = errno_mod.errorcode.get(ev[ERR], str(ev[ERR]))
        result = f"{ret} {name} ({os.strerror(ev[ERR])})"
    else:
        result = hex(ret) if "addr" in shows and ret > 0 else str(ret)
    t = (ev[T0] - t_origin) / 1e9
    return f"[{who}] +{t:.6f} {fname}({', '.join(args)}) = {result} <{ev[DUR] / 1e9:.6f}>"


class Stream:
    """One log's events in start-time order, decoded one at a time as they are printed: kept
    in memory are the log's bytes, its other records (strings, ...) and 32 bytes per event (its
    start time, where it is, its thread), not the events; with `columns`, also what a filter
    looks at (function, path ids, errno: 32 bytes more)."""

    def __init__(self, path: Path, columns: bool = False) -> None:
        self.log, self.data, records = open_log(path)
        t, start_, end_, tid = array("q"), array("q"), array("q"), array("q")
        cols = [array("q") for _ in range(4)] if columns else []  # fn path errno path2
        with reading(self.log):
            for start, end, th, rec in records:
                if rec[0] != Rec.EVENT:
                    self.log.add(rec)
                    continue
                t.append(rec[EV.t_start])
                start_.append(start)
                end_.append(end)
                tid.append(th)
                if columns:
                    ev = self.log.event_row(th, rec)
                    path = -1 if ev[PATH] is None else ev[PATH]
                    for c, v in zip(cols, (ev[FN], path, ev[ERR], _path2(ev)), strict=True):
                        c.append(v)
        self.log.truncated = records.truncated
        self.start, self.end, self.tid = start_, end_, tid
        self.t = np.frombuffer(t, dtype=np.int64)
        self.cols = [np.frombuffer(c, dtype=np.int64) for c in cols]
        self.order = np.argsort(self.t, kind="stable")

    def select(self, sel: Select, t0: int) -> None:
        """Keep the events that pass `sel` (iotrace.select.mask over the log's records)."""
        n = len(self.t)
        if not sel.active or not n or not self.cols:
            return
        fn, path, err, path2 = self.cols
        rank = self.log.header.get("rank")
        keep = mask(
            sel,
            rank=np.full(n, rank if isinstance(rank, int) else -1, dtype=np.int64),
            pid=np.full(n, int(self.log.header.get("pid", -1)), dtype=np.int64),
            path=path,
            path_names=self.log.strings,
            fn=fn,
            fn_names=self.log.functions,
            errno=err,
            t=self.t + _shift(self.log) - t0,
            path2=path2,
        )
        kept = np.flatnonzero(keep)
        self.order = kept[np.argsort(self.t[kept], kind="stable")]

    def __iter__(self) -> Iterator[tuple[int, tuple[Any, ...]]]:
        log, data, start, end, tid = self.log, self.data, self.start, self.end, self.tid
        for i in map(int, self.order):
            ev = log.event_row(tid[i], Records.one(data, start[i], end[i]))
            yield ev[T0], ev


def merged(streams: list[Stream]) -> Iterator[tuple[Log, tuple[Any, ...]]]:
    """All events of all logs in start-time order (ties: in the order of the logs)."""

    def tagged(i: int, st: Stream) -> Iterator[tuple[int, int, Log, tuple[Any, ...]]]:
        for t, ev in st:
            yield t, i, st.log, ev

    streams_ = [tagged(i, st) for i, st in enumerate(streams)]
    for _t, _i, log, ev in heapq.merge(*streams_, key=lambda x: (x[0], x[1])):
        yield log, ev


def _shift(log: Log) -> int:
    """The log's CLOCK_MONOTONIC -> CLOCK_REALTIME."""
    c = log.header.get("clock") or {}
    return int(c.get("real", 0)) - int(c.get("mono", 0))


def _path2(ev: tuple[Any, ...]) -> int:
    """The string id of a call's second path (the end read; rename's and link's new name)."""
    if len(ev) > PATH2 and ev[PATH2] is not None:
        return int(ev[PATH2])
    f = FUNCTIONS[ev[FN]] if ev[FN] < len(FUNCTIONS) else None
    return ev[AUX] if f and "path2" in f.shows and isinstance(ev[AUX], int) else -1


def show(streams: list[Stream], out: IO[str], t0: int, sel: Select | None = None) -> int:
    """Print the events of `streams` passing `sel` (made with columns=True to filter); times
    are seconds since the job's start `t0` (CLOCK_REALTIME ns, iotrace.tracefile.job_start), as
    every reader counts them."""
    for st in streams:
        st.select(sel or Select(), t0)
    n = 0
    for log, ev in merged(streams):
        out.write(format_event(log, ev, t0 - _shift(log)) + "\n")
        n += 1
    return n
