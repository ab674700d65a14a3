"""`iotrace missed DIR`: the I/O syscalls that bypassed the shim (class "bypass"), grouped by
call site as the report groups them (analyzer/symbols.site_label); with `--all` also the
libc-internal ones (class "libc": inside a libc function the shim does not wrap, recorded as
events).  docs/stracer.md, "Classification"."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from iotrace.stracer import slog
from iotrace.stracer.unwind import fill_frames

from iotrace.calls import SYSCALL_BY_NAME, Op, syscall_op
from iotrace.record import record
from iotrace.select import Select, mask
from iotrace.text import escape
from iotrace.tracefile import _Pread, job_start, log_paths, open_regular, read_header, run_records

FRAME = ("pc", "module", "offset", "function", "file", "line")


class NoStracerLog(Exception):
    pass


def _job(d: Path, sel: Select, headers: list[dict[str, Any]]) -> tuple[dict[int, int], int]:
    """pid -> MPI rank and the job's start, from the shim logs' headers (their events unread):
    only what `sel` needs."""
    if sel.ranks is None and sel.t_from is None and sel.t_to is None:
        return {}, 0
    logs = [_Header(h) for h in map(_shim_header, log_paths(d)) if h is not None]
    ranks = {int(lg.header["pid"]): lg.header["rank"] for lg in logs
             if isinstance(lg.header.get("rank"), int)}  # fmt: skip
    return ranks, job_start([*logs, *map(_Header, headers)], run_records(d))


@record
class _Header:
    header: dict[str, Any]


def _shim_header(path: Path) -> dict[str, Any] | None:
    """A shim log's header (None for an empty log: killed before it was written)."""
    with open_regular(path) as fd:
        size = os.fstat(fd).st_size
        return read_header(_Pread(fd, size), path)[0] if size else None


def _selected(
    header: dict[str, Any], recs: list[Any], sel: Select, ranks: dict[int, int], t0: int
) -> list[Any]:
    """The missed records passing `sel` (iotrace.select.mask over their columns)."""
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


BATCH = 4096  # missed records selected and grouped at a time (none is kept)


def collect(
    trace_dir: str | os.PathLike[str], everything: bool = False, sel: Select | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Groups (one per call site, process, syscall, path, fd and class) and warnings: the
    bypasses, or with `everything` the libc-internal syscalls too; of the syscalls passing
    `sel` (iotrace.select).  The records are grouped as they are read: memory holds the groups,
    not the records, and of the shim logs only their headers are read."""
    sel = sel or Select()
    d = Path(trace_dir)
    if not d.is_dir():
        raise NoStracerLog(f"{d}: no such trace directory")
    files = slog.log_files(d)
    if not files:
        raise NoStracerLog(
            f"{d}: no stracer log (*{slog.SUFFIX}): the run used --no-stracer, or the stracer "
            "could not run there"
        )
    warnings: list[str] = []
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    try:
        headers = [slog.read_header(f) for f in files]
    except slog.StracerLogError as exc:
        raise NoStracerLog(str(exc)) from None
    ranks, t0 = _job(d, sel, headers)
    for f, header in zip(files, headers, strict=True):
        log = _group_log(f, header, groups, everything, sel, ranks, t0)
        if not log.complete:
            warnings.append(
                f"{f.name}: the stracer did not finish (killed?): missed syscalls are listed "
                "up to its last whole record"
            )
        for rec in log.procs:  # processes nothing could trace (stracer/tracer.py)
            if len(rec) >= 6 and rec[4] == "untraced":
                warnings.append(f"pid {rec[2]} was not traced ({rec[5]} code): its I/O is "
                                "unknown, missed or not")  # fmt: skip
    out = sorted(groups.values(), key=lambda g: g["first_ns"])
    # libc-internal sites are symbolised here, not by the stracer (unwind.fill_frames)
    lists = [[[fr.get(k) for k in FRAME] for fr in g["frames"]] for g in out]
    fill_frames(lists)
    for g, frames in zip(out, lists, strict=True):
        g["frames"] = [dict(zip(FRAME, fr, strict=True)) for fr in frames]
    return out, warnings


def _group_log(
    f: Path,
    header: dict[str, Any],
    groups: dict[tuple[Any, ...], dict[str, Any]],
    everything: bool,
    sel: Select,
    ranks: dict[int, int],
    t0: int,
) -> Any:
    """One stracer log's missed records added to `groups` as they are read, BATCH at a time;
    the log (its records but the missed ones)."""
    batch: list[Any] = []
    mine: list[dict[str, Any]] = []  # this log's groups (their frames: from its SITE records)

    def add(recs: list[Any]) -> None:
        for rec in _selected(header, recs, sel, ranks, t0):
            _, t, pid, tid, name, args, ret, err, site, fd, path = rec[:11]
            cls = slog.missed_class(rec)
            if cls != "bypass" and not everything:
                continue
            via = slog.missed_via(rec)  # an io_uring or AIO operation
            key = (f.name, site, pid, name, path, fd, cls, via)
            g = groups.get(key)
            if g is None:
                g = groups[key] = {
                    "pid": pid, "tid": tid, "tids": [], "syscall": name, "count": 0,
                    "path": path, "fd": fd, "site": site, "frames": [], "first_ns": t,
                    "args": args, "ret": ret, "errno": err, "errors": 0, "class": cls,
                    "libc_function": None, "via": via, "bytes": 0,
                }  # fmt: skip
                mine.append(g)
            g["count"] += 1
            g["errors"] += 1 if err else 0
            sc = SYSCALL_BY_NAME.get(name)
            if isinstance(ret, int) and ret > 0 and sc and syscall_op(sc) in (Op.READ, Op.WRITE):
                g["bytes"] += ret
            if tid not in g["tids"]:
                g["tids"].append(tid)

    def take(rec: list[Any]) -> None:
        batch.append(rec)
        if len(batch) >= BATCH:
            add(batch)
            batch.clear()

    try:
        log = slog.read(f, on_missed=take, stops=False)
    except slog.StracerLogError as exc:
        raise NoStracerLog(str(exc)) from None
    add(batch)
    for g in mine:
        g["frames"] = [dict(zip(FRAME, fr, strict=False)) for fr in log.sites.get(g["site"], [])]
        if g["class"] == "libc":
            g["libc_function"] = log.site_fn.get(g["site"])
    return log


def _frames(frames: list[dict[str, Any]], lines: bool = True) -> list[Any]:
    return [(f.get("function"), f.get("file"), f.get("line") if lines else None,
             f.get("module"), f.get("offset") or 0) for f in frames]  # fmt: skip


def print_text(groups: list[dict[str, Any]], out: TextIO) -> None:
    """By call site as the report's missed I/O groups them (the analyzer's site label, without
    line numbers: the calls of one function are one site), over all processes."""
    from iotrace.analyzer.symbols import site_label

    if not groups:
        out.write("no missed I/O: nothing bypassed the shim\n")
        return
    by_site: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for g in groups:
        key = (g["class"], site_label(_frames(g["frames"], lines=False), skip_libc=True))
        by_site.setdefault(key, []).append(g)
    for (cls, _site), gs in by_site.items():
        total = sum(g["count"] for g in gs)
        where = (site_label(_frames(gs[0]["frames"]), 4, skip_libc=True, sep=" <- ")
                 if gs[0]["frames"] else "an unknown call site")  # fmt: skip
        what = (
            "missed" if cls == "bypass"
            else "recorded by iotrace attach" if cls == "attached"
            else f"inside libc's {gs[0]['libc_function']}"
        )  # fmt: skip
        pids = sorted({g["pid"] for g in gs})
        who = f"pid {pids[0]}" if len(pids) == 1 else f"pids {', '.join(map(str, pids))}"
        out.write(f"{total} {what} at {escape(where, quote=False)} [{who}]\n")
        for g in gs:
            fd = f" fd {g['fd']}" if g["fd"] is not None else ""
            path = f" {escape(g['path'], quote=False)}" if g["path"] else ""
            err = f" ({g['errors']} failed)" if g["errors"] else ""
            via = f" via {escape(g['via'])}" if g.get("via") else ""
            moved = f", {g['bytes']} B" if g.get("bytes") else ""
            pid = f" [pid {g['pid']}]" if len(pids) > 1 else ""
            out.write(f"  {g['count']:>8}  {escape(g['syscall'])}{via}{fd}{path}{moved}{err}"
                      f"{pid}\n")  # fmt: skip


def missed(
    trace_dir: str,
    as_json: bool,
    out: TextIO | None = None,
    everything: bool = False,
    sel: Select | None = None,
) -> int:
    out = out or sys.stdout  # the stdout of the call, not of the import
    groups, warnings = collect(trace_dir, everything, sel)
    for w in warnings:
        print(f"iotrace: warning: {escape(w, quote=False)}", file=sys.stderr)
    try:
        if as_json:
            json.dump(groups, out, indent=1)
            out.write("\n")
        else:
            print_text(groups, out)
        out.flush()
    except BrokenPipeError:  # `iotrace missed DIR | head`
        sys.stderr.close()
    return 0
