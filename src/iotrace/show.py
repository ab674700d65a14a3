"""`iotrace show`: every event, one a line, strace-like, in time order across processes: the
shim's, and the stracer's (the syscalls no wrapper covered, marked by their class: [libc] inside
a libc function the shim does not wrap, [bypass] missed I/O); `--stacks` adds each event's
symbolised call stack under it."""

from __future__ import annotations

import bisect
import errno as errno_mod
import heapq
import os
import sys
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from iotrace.calls import DATA_FUNCS, EVENT_FIELDS, FUNCTIONS
from iotrace.flags import WHENCE, mmap_flags, mmap_prot, mpi_amode, msync_flags, oflags
from iotrace.format import EV, MS, Rec
from iotrace.select import Select, mask
from iotrace.text import escape, quote_data
from iotrace.tracefile import Log, Records, open_log, reading

# Log.events rows are (tid, *record[1:]): the record's type slot holds the thread.  Only calls
# with two ends have the last three.
(TID, FN, T0, DUR, FD, PATH, REQ, RET, ERR, OFF, FLAGS, MODE, STACK, AUX,
 FD2, PATH2, OFF2) = range(len(EVENT_FIELDS))  # fmt: skip

_OPENERS = {"open", "openat", "creat", "fopen", "fdopen", "freopen"}
# function -> (its flags' names, its mode's names)
_DECODERS = {
    "mmap": (mmap_flags, mmap_prot),
    "mremap": (lambda v: [hex(v)], mmap_prot),
    "msync": (msync_flags, mmap_prot),
    "MPI_File_open": (mpi_amode, mpi_amode),
}


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
    if kind in ("flags", "mode") and fname in _DECODERS:
        return "|".join(_DECODERS[fname][kind == "mode"](value))
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


Line = tuple[int, int, str, list[str]]  # (start, order, line, stack lines)


def _shim_lines(i: int, st: Stream, t0: int, stacks: bool) -> Iterator[Line]:
    """(ns since the job's start, ...) of each event of a shim log, in time order."""
    log = st.log
    frames = _symbolise(log) if stacks else {}
    origin = t0 - _shift(log)
    for _t, e in st:
        st = frames.get(e[STACK], []) if stacks and e[STACK] is not None else []
        yield e[T0] - origin, i, format_event(log, e, origin), st


def _symbolise(log: Log) -> dict[int, list[str]]:
    """stack id -> its frames as text ("func (file.c:12)", else "module+0xoff")."""
    from iotrace.addr2line import resolve

    mods = sorted(log.modules)
    bases = [m[0] for m in mods]
    where: dict[int, list[tuple[str | None, int]]] = {}
    wanted: dict[str, set[int]] = {}
    for sid, pcs in log.stacks.items():
        fr = []
        for pc in pcs:
            k = bisect.bisect_right(bases, pc) - 1
            m = mods[k] if k >= 0 and mods[k][1] <= pc < mods[k][2] else None
            if m is None:
                fr.append((None, pc))
                continue
            off = max(pc - m[0] - 1, 0)  # a return address: the call is just before it
            fr.append((m[3], off))
            wanted.setdefault(m[3], set()).add(off)
        where[sid] = fr
    names = {mod: resolve(mod, offs) for mod, offs in wanted.items()}
    out = {}
    for sid, fr in where.items():
        out[sid] = [_frame(*(names.get(mod, {}).get(off) or (None, None, None)), mod, off)
                    for mod, off in fr]  # fmt: skip
    return out


def _frame(fn: str | None, file: str | None, line: int | None, mod: str | None, off: int) -> str:
    if fn:
        return escape(f"{fn} ({os.path.basename(file)}:{line})" if file and line else fn)
    return escape(f"{os.path.basename(mod)}+{off:#x}") if mod else hex(off)


def _stracer_lines(
    slogs: list[Any], t0: int, stacks: bool, sel: Select, ranks: dict[int, int]
) -> Iterator[Line]:
    """The stracer's events (their MISSED records) passing `sel`, one line each, in time
    order."""
    from iotrace.stracer import slog

    recs = sorted(
        (
            (r[1] + _sshift(lg) - t0, n, r)
            for n, lg in enumerate(slogs)
            for r in _selected(lg.header, lg.missed, sel, ranks, t0)
        ),
        key=lambda x: (x[0], x[1]),
    )
    for since, n, rec in recs:
        log = slogs[n]
        kinds = log.header.get("syscalls", {})
        _, t, pid, tid, name, args, ret, err, site, fd, fpath = rec[:11]
        t_exit = rec[11] if len(rec) > 11 and isinstance(rec[11], int) else t
        cls = slog.missed_class(rec)
        via = slog.missed_via(rec)
        kind = kinds.get(name, [])
        # a call with two ends (copy_file_range, sendfile, splice, tee) names both descriptors
        named = {fd: fpath}
        if len(rec) > MS.path2 and rec[MS.path2] is not None:
            named.setdefault(rec[MS.fd2], rec[MS.path2])
        shown = [_sarg(kind[j] if j < len(kind) else "", a, named)
                 for j, a in enumerate(args or [])]  # fmt: skip
        result = str(ret)
        if err:
            result = f"{ret} {errno_mod.errorcode.get(err, str(err))} ({os.strerror(err)})"
        mark = f"[{cls}" + (f" via {via}" if via else "") + "]"
        line = (
            f"[pid {pid} tid {tid}] +{since / 1e9:.6f} {escape(name)}"
            f"({', '.join(shown)}) = {result} <{(t_exit - t) / 1e9:.6f}> {escape(mark)}"
        )
        st = []
        if stacks:
            st = [_frame(f[3], f[4], f[5], f[1], f[2] or 0) for f in log.sites.get(site, [])]
        yield since, 1_000_000 + n, line, st


def _selected(
    header: dict[str, Any], recs: list[Any], sel: Select, ranks: dict[int, int], t0: int
) -> list[Any]:
    """The MISSED records passing `sel` (iotrace.select.mask over their columns)."""
    if not sel.active or not recs:
        return recs
    clock = header.get("clock", {})
    paths = sorted({r[10] for r in recs if r[10] is not None})
    names = sorted({r[4] for r in recs})
    pcode, ncode = {p: i for i, p in enumerate(paths)}, {n: i for i, n in enumerate(names)}
    keep = mask(
        sel,
        rank=np.array([ranks.get(r[2], -1) for r in recs], dtype=np.int64),
        pid=np.array([r[2] for r in recs], dtype=np.int64),
        path=np.array([pcode.get(r[10], -1) for r in recs], dtype=np.int64),
        path_names=paths,
        fn=np.array([ncode[r[4]] for r in recs], dtype=np.int64),
        fn_names=names,
        errno=np.array([r[7] or 0 for r in recs], dtype=np.int64),
        t=np.array([r[1] for r in recs], dtype=np.int64)
        + int(clock.get("real", 0))
        - int(clock.get("mono", 0))
        - t0,
    )
    return [r for r, k in zip(recs, keep.tolist(), strict=True) if k]


def _sshift(log: Any) -> int:
    """A stracer log's CLOCK_MONOTONIC -> CLOCK_REALTIME."""
    c = log.header.get("clock") or {}
    return int(c.get("real", 0)) - int(c.get("mono", 0))


def stracer_logs(trace_dir: str) -> list[Any]:
    """The stracer's logs of a trace, read whole (a damaged one: StracerLogError, a
    TraceFormatError), each one that did not finish said on stderr."""
    from iotrace.stracer import slog

    out = []
    for path in slog.log_files(Path(trace_dir)):
        log = slog.read(path)
        if not log.complete:
            print(f"iotrace: warning: {escape(path.name)}: the stracer did not finish (killed?): "
                  "its events are shown up to its last whole record", file=sys.stderr)  # fmt: skip
        out.append(log)
    return out


def _sarg(kind: str, a: Any, named: dict[Any, Any]) -> str:
    """One of the stracer's decoded arguments as strace writes it; `named`: the record's
    descriptors and their paths."""
    if isinstance(a, list):
        return "|".join(escape(str(x)) for x in a) or "0"
    if kind == "path" and isinstance(a, str):
        return f'"{escape(a)}"'
    if kind == "fd" and named.get(a):
        return f"{a}<{escape(named[a])}>"
    if kind in ("buf", "ptr", "iov") and isinstance(a, int):
        return hex(a)
    return escape(str(a))


def show(
    streams: list[Stream],
    out: IO[str],
    t0: int,
    sel: Select | None = None,
    slogs: list[Any] | None = None,
    stacks: bool = False,
) -> int:
    """Print the events of `streams` (made with columns=True to filter) and of the stracer's
    logs `slogs` (stracer_logs) that pass `sel`, in time order; times are seconds since the
    job's start `t0` (CLOCK_REALTIME ns, iotrace.tracefile.job_start over both kinds of log, as
    every reader counts them); `stacks`: each event's call stack under it.  Returns how many."""
    sel = sel or Select()
    slogs = slogs or []
    for st in streams:
        st.select(sel, t0)
    ranks = {int(st.log.header["pid"]): st.log.header["rank"] for st in streams
             if isinstance(st.log.header.get("rank"), int)}  # fmt: skip
    lines = [_shim_lines(i, st, t0, stacks) for i, st in enumerate(streams)]
    lines.append(_stracer_lines(slogs, t0, stacks, sel, ranks))
    n = 0
    for _t, _i, line, st_lines in heapq.merge(*lines, key=lambda x: (x[0], x[1])):
        out.write(line + "\n")
        for fr in st_lines:
            out.write(f"    at {fr}\n")
        n += 1
    return n
