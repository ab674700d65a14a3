"""`iotrace show`: every event, one a line, strace-like, in time order across processes."""

from __future__ import annotations

import errno as errno_mod
import heapq
import os
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

from iotrace.calls import DATA_FUNCS, EVENT_FIELDS, FUNCTIONS
from iotrace.flags import WHENCE, oflags
from iotrace.select import Select, mask
from iotrace.text import escape, quote_data
from iotrace.tracefile import Log

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


def merged(logs: list[Log]) -> Iterator[tuple[Log, tuple[Any, ...]]]:
    """All events of all logs in start-time order."""

    def stream(i: int, log: Log) -> Iterator[tuple[int, int, Log, tuple[Any, ...]]]:
        log.events.sort(key=lambda e: e[T0])
        for e in log.events:
            yield e[T0], i, log, e

    streams = [stream(i, log) for i, log in enumerate(logs)]
    for _t, _i, log, ev in heapq.merge(*streams, key=lambda x: (x[0], x[1])):
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


def selected(log: Log, sel: Select, t0: int) -> None:
    """Keep the log's events that pass `sel` (iotrace.select.mask over its records)."""
    evs = log.events
    if not sel.active or not evs:
        return
    rank = log.header.get("rank")
    cols = list(zip(*((e[FN], e[PATH], e[ERR], e[T0], _path2(e)) for e in evs), strict=True))
    fn, path, err, t, path2 = (np.array(c, dtype=object) for c in cols)
    keep = mask(
        sel,
        rank=np.full(len(evs), rank if isinstance(rank, int) else -1, dtype=np.int64),
        pid=np.full(len(evs), int(log.header.get("pid", -1)), dtype=np.int64),
        path=np.array([-1 if p is None else p for p in path], dtype=np.int64),
        path_names=log.strings,
        fn=fn.astype(np.int64),
        fn_names=log.functions,
        errno=err.astype(np.int64),
        t=t.astype(np.int64) + _shift(log) - t0,
        path2=path2.astype(np.int64),
    )
    log.events = [e for e, k in zip(evs, keep.tolist(), strict=True) if k]


def show(logs: list[Log], out: IO[str], t0: int, sel: Select | None = None) -> int:
    """Print the events of `logs` passing `sel`; times are seconds since the job's start `t0`
    (CLOCK_REALTIME ns, iotrace.tracefile.job_start), as every reader counts them."""
    for log in logs:
        selected(log, sel or Select(), t0)
    n = 0
    for log, ev in merged(logs):
        out.write(format_event(log, ev, t0 - _shift(log)) + "\n")
        n += 1
    return n
