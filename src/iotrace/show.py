"""`iotrace show`: every event, one a line, strace-like, in time order across processes."""

from __future__ import annotations

import errno as errno_mod
import heapq
import os
from collections.abc import Iterator
from typing import IO, Any

from iotrace.calls import EVENT_FIELDS, FUNCTIONS
from iotrace.flags import WHENCE, oflags
from iotrace.text import escape
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


def show(logs: list[Log], out: IO[str]) -> int:
    starts = [lg.header["clock"]["mono"] for lg in logs if "clock" in lg.header]
    origin = min(starts) if starts else 0
    n = 0
    for log, ev in merged(logs):
        out.write(format_event(log, ev, origin) + "\n")
        n += 1
    return n
