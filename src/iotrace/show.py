"""`iotrace show`: every event, one a line, strace-like, in time order across processes: the
shim's, and the stracer's (the syscalls no wrapper covered, marked by their class: [libc] inside
a libc function the shim does not wrap, [bypass] missed I/O); `--stacks` adds each event's
symbolised call stack under it."""

from __future__ import annotations

import bisect
import errno as errno_mod
import os
import sys
from pathlib import Path
from typing import IO, Any

import numpy as np

from iotrace.calls import DATA_FUNCS, EVENT_FIELDS, FUNCTIONS
from iotrace.flags import WHENCE, mmap_flags, mmap_prot, mpi_amode, msync_flags, oflags
from iotrace.format import MS, Rec, SRec
from iotrace.select import Select, mask
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
from iotrace.units import MEMORY_DEFAULT

# Log.events rows are (tid, *record[1:]): the record's type slot holds the thread.  Only calls
# with two ends have the last three.
(TID, FN, T0, DUR, FD, PATH, REQ, RET, ERR, OFF, FLAGS, MODE, STACK, AUX,
 FD2, PATH2, OFF2) = range(len(EVENT_FIELDS))  # fmt: skip
BATCH = 1 << 14  # events decoded and formatted at a time
# bytes of the memory bound not for the held lines: the interpreter and numpy, one log's other
# records, a batch, a block of each run being merged (spill.BLOCK)
BASE_MEMORY = 192 << 20

_OPENERS = {"open", "openat", "creat", "fopen", "fdopen", "freopen"}
# function -> (its flags' names, its mode's names)
_DECODERS = {
    "mmap": (mmap_flags, mmap_prot),
    "mremap": (lambda v: [hex(v)], mmap_prot),
    "msync": (msync_flags, mmap_prot),
    "MPI_File_open": (mpi_amode, mpi_amode),
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
        if kind == "end2":  # the end read: from fd2<path2>@offset2
            if len(ev) <= OFF2 or ev[FD2] is None:
                return None
            p = self._named(ev[PATH2])
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
            result = f"{ret} {name} ({os.strerror(ev[ERR])})"
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


def _stracer_text(log: Any, rec: list[Any], since: int, stacks: bool) -> str:
    """One of the stracer's events (a MISSED record) as its line, with its site's frames
    (`stacks`) under it."""
    from iotrace.stracer import slog

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
        f"({', '.join(shown)}) = {result} <{(t_exit - t) / 1e9:.6f}> {escape(mark)}\n"
    )
    if stacks:
        line += "".join(f"    at {_frame(f[3], f[4], f[5], f[1], f[2] or 0)}\n"
                        for f in log.sites.get(site, []))  # fmt: skip
    return line


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


def stracer_logs(trace_dir: Path, warnings: list[str]) -> list[Any]:
    """The stracer's logs of a trace, read but their MISSED records (damaged: StracerLogError,
    a TraceFormatError); for each one that did not finish, a line in `warnings`."""
    from iotrace.stracer import slog

    out = []
    for path in slog.log_files(trace_dir):
        log = slog.read(path, stops=False, skip=frozenset({SRec.MISSED}))
        if not log.complete:
            warnings.append(
                f"iotrace: warning: {escape(path.name)}: the stracer did not finish (killed?): "
                "its events are shown up to its last whole record"
            )
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
    trace_dir: str | os.PathLike[str],
    out: IO[str],
    sel: Select | None = None,
    stacks: bool = False,
    memory: int = MEMORY_DEFAULT,
) -> int:
    """Print the events of a trace, the shim's and the stracer's, that pass `sel`, in time
    order (ties: the logs' order, then each log's), one a line; times are seconds since the
    job's start (iotrace.tracefile.job_start over both kinds of log, as every reader counts
    them); `stacks`: each event's call stack under it.  Returns how many.

    Within `memory` bytes whatever the trace's size: each log is read a window at a time twice
    (its strings, stacks and other records first, which its lines need; then its events a
    batch at a time, formatted at once), the lines held in a spill.Sorter that writes sorted
    runs to temporary files beyond its budget and merges them.  Held at once: one log's other
    records, one batch, the Sorter's budget."""
    from iotrace.spill import Sorter
    from iotrace.stracer import slog

    sel = sel or Select()
    d = Path(trace_dir)
    warnings: list[str] = []
    logs = []
    for p in log_paths(d):
        try:
            logs.append(log_header(p))
        except UnwrittenLogError:  # no record in it: said, as the report says it
            warnings.append(f"iotrace: warning: {escape(p.name)} was never written (its "
                            "process was killed as its log was made)")  # fmt: skip
    slogs = stracer_logs(d, warnings)
    t0 = job_start([*(lg[0] for lg in logs), *slogs], run_records(d))
    ranks = {int(lg[0].header["pid"]): lg[0].header["rank"] for lg in logs
             if isinstance(lg[0].header.get("rank"), int)}  # fmt: skip
    with Sorter(max(memory - BASE_MEMORY, memory // 8), _runs_dir(d)) as lines:
        for log, size, first, chunk in logs:
            _shim_log(lines, log, size, first, chunk, t0, sel, stacks)
        for w in warnings:
            print(w, file=sys.stderr)
        not_missed = frozenset(set(SRec) - {SRec.MISSED, SRec.SEAL, SRec.END})
        for lg in slogs:
            batch: list[Any] = []

            def take(rec: list[Any], lg: Any = lg, batch: list[Any] = batch) -> None:
                batch.append(rec)
                if len(batch) >= BATCH:
                    _stracer_batch(lines, lg, batch, t0, sel, ranks, stacks)
                    batch.clear()

            slog.read(lg.path, on_missed=take, stops=False, skip=not_missed)
            _stracer_batch(lines, lg, batch, t0, sel, ranks, stacks)
        n = 0
        held: list[str] = []
        for text in lines:
            held.append(text)
            if len(held) >= BATCH:
                out.write("".join(held))
                n += len(held)
                held.clear()
        out.write("".join(held))
        return n + len(held)


def _runs_dir(trace_dir: Path) -> str | None:
    """Where the sorted runs go: TMPDIR if set, else the trace's directory if this process may
    write there (its file system has room for the trace), else tempfile's default."""
    if os.environ.get("TMPDIR") or not os.access(trace_dir, os.W_OK | os.X_OK):
        return None
    return str(trace_dir)


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


def _stracer_batch(
    lines: Any,
    log: Any,
    recs: list[Any],
    t0: int,
    sel: Select,
    ranks: dict[int, int],
    stacks: bool,
) -> None:
    """A batch of a stracer log's MISSED records: those passing `sel`, formatted into
    `lines`."""
    shift = _sshift(log) - t0
    kept = _selected(log.header, recs, sel, ranks, t0)
    keys = [r[1] + shift for r in kept]
    lines.add(keys, [_stracer_text(log, r, k, stacks) for r, k in zip(kept, keys, strict=True)])
