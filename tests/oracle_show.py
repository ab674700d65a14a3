"""`iotrace show`'s lines as its Python formatter made them record by record before they were
formatted in C from the decoder's columns (analyzer/_decode.c iot_show_lines): the oracle the
tests hold `iotrace show` to, byte for byte.  The shim's logs read with tracefile.Windows (every
record unpacked and checked), every line held and sorted in memory; the stracer's lines are
iotrace.show's own (they were not moved to C)."""

from __future__ import annotations

import errno as errno_mod
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from iotrace.calls import DATA_FUNCS, EVENT_FIELDS, FUNCTIONS
from iotrace.flags import (
    WHENCE,
    eventfd_flags,
    fallocate_mode,
    fcntl_arg,
    fcntl_cmd,
    fcntl_result,
    fd_flags,
    mmap_flags,
    mmap_prot,
    mpi_amode,
    mremap_flags,
    msync_flags,
    oflags,
    rename_flags,
    socket_domain,
    socket_protocol,
    socket_type,
    statx_flags,
    statx_mask,
    umode,
    unlink_flags,
)
from iotrace.format import Rec, SRec
from iotrace.select import Select, mask
from iotrace.show import (
    STREAMS,
    _dup_result,
    _selected,
    _sshift,
    _stracer_text,
    _symbolise,
    stracer_logs,
)
from iotrace.text import escape, quote_data
from iotrace.tracefile import (
    Log,
    UnwrittenLogError,
    Windows,
    id_limit,
    job_start,
    log_header,
    log_paths,
    reading,
    run_records,
)

# Log.events rows are (tid, *record[1:]): the record's type slot holds the thread.  Only calls
# with two ends have the last three.
(TID, FN, T0, DUR, FD, PATH, REQ, RET, ERR, OFF, FLAGS, MODE, STACK, AUX,
 FD2, PATH2, OFF2) = range(len(EVENT_FIELDS))  # fmt: skip
BATCH = 1 << 14  # events decoded and formatted at a time

_OPENERS = {"open", "openat", "creat", "fopen", "fdopen", "freopen", "popen"}
# function -> (its flags' names, its mode's names)
_DECODERS = {
    "mmap": (mmap_flags, mmap_prot),
    "mremap": (mremap_flags, lambda v: [str(v)]),  # its mode: the old length
    "msync": (msync_flags, mmap_prot),
    "MPI_File_open": (mpi_amode, mpi_amode),
    "pipe2": (fd_flags, fd_flags),
    "dup3": (fd_flags, fd_flags),
    "fcntl": (fcntl_cmd, lambda v: [str(v)]),
    "fallocate": (fallocate_mode, fallocate_mode),
    "socket": (socket_domain, socket_type),
    "eventfd": (eventfd_flags, eventfd_flags),
    "statx": (statx_flags, statx_mask),
    "renameat2": (rename_flags, rename_flags),
    "unlinkat": (unlink_flags, unlink_flags),
}


class Formatter:
    """A shim log's events as `show` prints them, one line each (strace-like): what is the same
    for many events (function names, each function's arguments, paths, threads) made once."""

    def __init__(self, log: Log) -> None:
        self.log = log
        h = log.header
        self.names = h.get("functions", [])
        self.prefix = (
            f"[rank {h['rank']} pid {h['pid']}"
            if h.get("rank") is not None
            else (f"[pid {h['pid']}")
        )
        self.who: dict[int, str] = {}  # tid -> "[... tid N]"
        self.quoted: dict[int, str] = {}  # path id -> '"path"'
        self.escaped: dict[int, str] = {}  # path id -> path
        self.calls: dict[int, tuple[str, tuple[str, ...], bool]] = {}  # fn -> name, shows, data

    def _call(self, fn: int) -> tuple[str, tuple[str, ...], bool]:
        got = self.calls.get(fn)
        if got is None:
            fname = escape(self.names[fn]) if fn < len(self.names) else f"fn{fn}"
            shows = FUNCTIONS[fn].shows if fn < len(FUNCTIONS) else ()
            got = self.calls[fn] = (fname, shows, fname in DATA_FUNCS)
        return got

    def _path(self, pid: Any) -> str:
        """A path argument: quoted, "?" for an id with no string, NULL for none."""
        q = self.quoted.get(pid)
        if q is None:
            strings = self.log.strings
            q = f'"{escape(strings[pid])}"' if pid in strings else "?"
            q = self.quoted[pid] = q if pid is not None else "NULL"
        return q

    def _named(self, pid: Any) -> str:
        """The path of a descriptor, escaped ("" for none)."""
        p = self.escaped.get(pid)
        if p is None:
            got = self.log.strings.get(pid) if pid is not None else None
            p = self.escaped[pid] = escape(got) if got else ""
        return p

    def _arg(self, kind: str, fname: str, ev: tuple[Any, ...]) -> str | None:
        if kind == "fd":
            fd = ev[FD]
            if fd is None:
                return None
            p = self._named(ev[PATH])
            return f"{fd}<{p}>" if p else str(fd)
        if kind == "path":
            return self._path(ev[PATH]) if ev[PATH] is not None else None
        aux = ev[AUX]
        if kind == "path2":
            return self._path(aux) if isinstance(aux, int) else None
        if kind == "fd2":
            return str(aux) if isinstance(aux, int) else None
        if kind == "fds":  # a pipe's two ends
            return f"[{ev[FD]}, {aux}]" if ev[FD] is not None and isinstance(aux, int) else None
        if kind == "end2":  # the end read: from fd2<path2>@offset2
            if len(ev) <= OFF2 or ev[FD2] is None:
                return None
            p = self._named(ev[PATH2])
            at = f"@{ev[OFF2]}" if ev[OFF2] is not None else ""
            return f"from {ev[FD2]}<{p}>{at}" if p else f"from {ev[FD2]}{at}"
        if kind == "whence":
            return WHENCE.get(aux, str(aux)) if isinstance(aux, int) else None
        if kind in ("addr", "newfd", "entry"):  # the result's form, no argument
            return None
        if kind in ("hint", "mapped"):  # an address: mmap's hint; one in a mapping of `path`
            if not isinstance(aux, int):
                return None
            at = hex(aux % (1 << 64)) if aux else "NULL"
            p = self._named(ev[PATH]) if kind == "mapped" else ""
            return f"{at}<{p}>" if p else at
        if kind == "aux":  # a number: socket's protocol named by its domain
            if not isinstance(aux, int):
                return None
            dom = ev[FLAGS]
            return (
                socket_protocol(dom if isinstance(dom, int) else 0, aux)
                if fname == "socket"
                else str(aux)
            )
        if kind == "hexoff":  # strace's mmap offset
            v = ev[OFF]
            return None if v is None else hex(v % (1 << 64)) if v else "0"
        value = ev[{"req": REQ, "off": OFF, "flags": FLAGS, "mode": MODE}[kind]]
        if value is None:
            return None
        if kind == "mode" and fname == "fcntl":
            cmd = ev[FLAGS]
            return "|".join(fcntl_arg(cmd if isinstance(cmd, int) else 0, value))
        if kind == "flags" and fname in _OPENERS:
            return "|".join(oflags(value))
        if kind in ("flags", "mode") and fname in _DECODERS:
            return "|".join(_DECODERS[fname][kind == "mode"](value))
        if kind == "mode" and fname in _OPENERS | {"mkdir", "mkdirat"}:
            return umode(value)
        return str(value)

    def __call__(self, ev: tuple[Any, ...], since: int) -> str:
        """The event's line (with its newline); `since`: its start, ns since the job's."""
        tid = ev[TID]
        who = self.who.get(tid)
        if who is None:
            who = self.who[tid] = f"{self.prefix} tid {tid}]"
        fname, shows, data_call = self._call(ev[FN])
        args = [a for k in shows if (a := self._arg(k, fname, ev)) is not None]
        ret = ev[RET]
        data = self.log.data
        if data and data_call and (buf := data.get((tid, ev[T0]))) is not None:
            args.insert(1 if args else 0, quote_data(buf, ret))  # -s N: where strace has it
        if ev[ERR]:
            name = errno_mod.errorcode.get(ev[ERR], str(ev[ERR]))
            null = fname in STREAMS or "entry" in shows
            result = f"{'NULL' if null else ret} {name} ({os.strerror(ev[ERR])})"
        elif (
            fname == "fcntl"
            and isinstance(ev[FLAGS], int)
            and (
                got := (
                    _dup_result(ret, self.log.strings.get(ev[PATH]))
                    if ev[FLAGS] in (0, 1030)
                    else fcntl_result(ev[FLAGS], ret)
                )
            )
        ):  # F_GETFL's flags named, F_DUPFD's descriptor with its file
            result = got
        elif fname in STREAMS:  # a FILE * or DIR *: its descriptor, as strace -y's open's
            p = self._named(ev[PATH]) if ev[FD] is not None else ""
            result = "?" if ev[FD] is None else f"{ev[FD]}<{p}>" if p else str(ev[FD])
        elif "entry" in shows:  # readdir's struct dirent *, not kept
            result = "{...}" if ret else "NULL"
        elif "newfd" in shows and 0 <= ret < 1 << 63:  # a new descriptor of `path`'s file
            p = self._named(ev[PATH]) if ev[PATH] is not None else ""
            result = f"{ret}<{p}>" if p else str(ret)
        else:
            result = hex(ret) if "addr" in shows and ret > 0 else str(ret)
        return (
            f"{who} +{since / 1e9:.6f} {fname}({', '.join(args)}) = {result} "
            f"<{ev[DUR] / 1e9:.6f}>\n"
        )


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


class _Lines:
    """Every (key, text) added, sorted by key (ties in the order added) when read."""

    def __init__(self) -> None:
        self.entries: list[tuple[int, str]] = []

    def add(self, keys: list[int], texts: list[str]) -> None:
        self.entries += zip(keys, texts, strict=True)

    def text(self) -> str:
        return "".join(t for _k, t in sorted(self.entries, key=lambda e: e[0]))


def show_text(trace_dir: str | os.PathLike[str], sel: Select | None = None,
              stacks: bool = False) -> str:  # fmt: skip
    """What `iotrace show` printed (stdout) for the trace, `sel` and `stacks`."""
    from iotrace.stracer import slog

    sel = sel or Select()
    d = Path(trace_dir)
    warnings: list[str] = []
    logs = []
    for p in log_paths(d):
        try:
            logs.append(log_header(p))
        except UnwrittenLogError:
            pass
    slogs = stracer_logs(d, warnings)
    t0 = job_start([*(lg[0] for lg in logs), *slogs], run_records(d))
    ranks = {int(lg[0].header["pid"]): lg[0].header["rank"] for lg in logs
             if isinstance(lg[0].header.get("rank"), int)}  # fmt: skip
    lines = _Lines()
    for log, size, first, chunk in logs:
        _shim_log(lines, log, size, first, chunk, t0, sel, stacks)
    not_missed = frozenset(set(SRec) - {SRec.MISSED, SRec.SEAL, SRec.END})
    for lg in slogs:
        batch: list[Any] = []
        slog.read(lg.path, on_missed=batch.append, stops=False, skip=not_missed)
        shift = _sshift(lg) - t0
        kept = _selected(lg.header, batch, sel, ranks, t0)
        keys = [r[1] + shift for r in kept]
        # no pid reused (a reused pid's P#2: tests/test_pidreuse.py)
        lines.add(keys, [_stracer_text(lg, r, k, stacks, {})
                         for r, k in zip(kept, keys, strict=True)])  # fmt: skip
    return lines.text()


def _shim_log(
    lines: Any, log: Log, size: int, first: int, chunk: int, t0: int, sel: Select, stacks: bool
) -> None:
    """A shim log's events that pass `sel`, formatted into `lines` a batch at a time: its
    other records read (and checked) first, for a string may be defined after an event that
    uses it; its events checked as they are formatted."""
    others = Windows(log, size, first, chunk, id_limit(size), events=False)
    with reading(log):
        for _tid, rec in others:
            if rec[0] != Rec.EVENT:
                log.add(rec)
    log.truncated = others.truncated
    if log.truncated:
        print(f"iotrace: warning: {log.path} was cut short; read up to its last whole record",
              file=sys.stderr)  # fmt: skip
    frames = _symbolise(log) if stacks else {}
    origin = t0 - _shift(log)
    line = Formatter(log)
    batch: list[tuple[Any, ...]] = []

    def flush() -> None:
        evs = _select(log, batch, sel, t0) if sel.active else batch
        keys = [e[T0] - origin for e in evs]
        texts = [line(e, k) for e, k in zip(evs, keys, strict=True)]
        if stacks:
            for k, e in enumerate(evs):
                if e[STACK] is not None and frames.get(e[STACK]):
                    texts[k] += "".join(f"    at {fr}\n" for fr in frames[e[STACK]])
        lines.add(keys, texts)
        batch.clear()

    with reading(log):
        for tid, rec in Windows(log, size, first, chunk, None):
            if rec[0] == Rec.EVENT:
                batch.append(log.event_row(tid, rec))
                if len(batch) >= BATCH:
                    flush()
    flush()


def _select(log: Log, evs: list[tuple[Any, ...]], sel: Select, t0: int) -> list[tuple[Any, ...]]:
    """The events of a shim log that pass `sel` (iotrace.select.mask over their columns)."""
    n = len(evs)
    if not n:
        return evs
    col = lambda k: np.fromiter((e[k] for e in evs), dtype=np.int64, count=n)  # noqa: E731
    rank = log.header.get("rank")
    keep = mask(
        sel,
        rank=np.full(n, rank if isinstance(rank, int) else -1, dtype=np.int64),
        pid=np.full(n, int(log.header.get("pid", -1)), dtype=np.int64),
        path=np.fromiter((-1 if e[PATH] is None else e[PATH] for e in evs), np.int64, n),
        path_names=log.strings,
        fn=col(FN),
        fn_names=log.functions,
        errno=col(ERR),
        t=col(T0) + _shift(log) - t0,
        path2=np.fromiter(map(_path2, evs), np.int64, n),
    )
    return [e for e, k in zip(evs, keep.tolist(), strict=True) if k]
