"""How much of each process's I/O the trace explains, checked against the kernel's own counters.

The kernel counts, per process, the bytes and the calls of every read- and write-type syscall:
/proc/PID/io's rchar, wchar, syscr and syscw (which calls count, and how: calls.KERNEL_IO_*).
The shim reads them at its start, just before an exec and at exit; the stracer at the process's
last exit stop (schema.KIO_COLUMNS).  What the trace explains of a process's counters at its end:

- its events, counted the kernel's way: the shim's, and the stracer's (syscalls no wrapper
  covered); stdio calls by their bytes only (their syscalls, stdio's buffer flushes and refills,
  are not traced one by one);
- what happened in each image before its shim started: the kernel's own reads of the program at
  exec and the dynamic loader's, measured by the shim's first reading less the reading the image
  before it took just before the exec (nothing for a fork: a child starts at zero);
- the shim's own syscalls (it counts them) and its readings of /proc/self/io (each one read of
  the text of the values it shows, counted by the kernel after them).

The end is the stracer's reading, or without a stracer the shim's at exit, before stdio's final
flush: the output then still in stdio buffers (which the shim also reads) is not yet in the
kernel's counters.  docs/analyzer.md, "Completeness".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from iotrace.calls import KERNEL_IO_FUNCS, KERNEL_IO_SYSCALLS, KIO_FIELDS

from .trace import Trace

COUNTERS = ("rchar", "wchar", "syscr", "syscw")
EBADF = 9  # the kernel counts no call that fails its descriptor lookup


def reading_cost(row: Any) -> np.ndarray:
    """The kernel's count of one read of /proc/self/io that returned `row`'s values."""
    text = "".join(f"{k}: {int(getattr(row, k))}\n" for k in KIO_FIELDS)
    return np.array([len(text), 0, 1, 0], dtype=np.int64)


def _vec(row: Any, prefix: str = "") -> np.ndarray:
    return np.array([int(getattr(row, prefix + k)) for k in COUNTERS], dtype=np.int64)


@dataclass
class Explained:
    events: np.ndarray = field(default_factory=lambda: np.zeros(4, np.int64))
    stdio: np.ndarray = field(default_factory=lambda: np.zeros(4, np.int64))
    before_shim: np.ndarray = field(default_factory=lambda: np.zeros(4, np.int64))
    own: np.ndarray = field(default_factory=lambda: np.zeros(4, np.int64))

    @property
    def total(self) -> np.ndarray:
        return self.events + self.stdio + self.before_shim + self.own


def _event_counts(ev: pd.DataFrame) -> pd.DataFrame:
    """Per (host, pid): the events' rchar, wchar, syscr, syscw counted the kernel's way, and the
    bytes of stdio calls apart (stdio_r, stdio_w); with the time of each event for the cut at a
    process's end reading."""
    fn = ev["function"].astype(str)
    stracer = (ev["source"].astype(str) == "stracer").to_numpy()
    mode = np.where(stracer, fn.map(KERNEL_IO_SYSCALLS), fn.map(KERNEL_IO_FUNCS))
    mode = pd.Series(mode, index=ev.index).fillna("")
    ret = ev["ret"].to_numpy()
    moved = np.where(ret > 0, ret, 0)
    counted = (ev["errno"].to_numpy() != EBADF).astype(np.int64)
    is_r = mode.isin(["r", "rw"]).to_numpy()
    is_w = mode.isin(["w", "rw"]).to_numpy()
    nbytes = ev["bytes"].fillna(0).to_numpy(dtype=np.int64)
    return pd.DataFrame(
        {
            "host": ev["host"].astype(str).to_numpy(),
            "pid": ev["pid"].to_numpy(),
            "t": ev["t_start"].to_numpy(),
            "rchar": np.where(is_r, moved, 0),
            "wchar": np.where(is_w, moved, 0),
            "syscr": np.where(is_r, counted, 0),
            "syscw": np.where(is_w, counted, 0),
            "stdio_r": np.where((mode == "sr").to_numpy(), nbytes, 0),
            "stdio_w": np.where((mode == "sw").to_numpy(), nbytes, 0),
        }
    )


def _explain(rows: pd.DataFrame, end: Any, evs: pd.DataFrame | None) -> Explained:
    out = Explained()
    if evs is not None:
        mine = evs[evs["t"] <= end.t]
        out.events = mine[list(COUNTERS)].sum().to_numpy(dtype=np.int64)
        out.stdio = np.array([mine["stdio_r"].sum(), mine["stdio_w"].sum(), 0, 0], np.int64)
    shim = rows[(rows["source"].astype(str) == "shim") & (rows["t"] <= end.t)]
    prev: Any = None
    for r in shim.itertuples():
        # stdio output in buffers: a forked child inherits it and writes it again; an exec
        # loses it; at the shim's end reading it is yet to be written by the final flush
        if r.when == "start":
            out.stdio[1] += r.stdio_pending
        elif r.when == "exec" or (r.t == end.t and end.source == "shim"):
            out.stdio[1] -= r.stdio_pending
        if r.when == "start":
            if prev is None:  # a fork child, or the first image: the process started at zero
                base = np.zeros(4, np.int64)
            elif prev.when == "exec":
                base = _vec(prev) + reading_cost(prev)
            else:  # the image before had no reading at its exec: not known
                base = None
            if base is not None:
                out.before_shim += _vec(r) - _vec(r, "own_") - base
        prev = r
    for _, image in shim.groupby("proc"):
        last = image.iloc[-1]
        out.own += _vec(last, "own_")
        if not (last["source"] == end.source and last["t"] == end.t):
            out.own += reading_cost(last)
    return out


def _pct(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


def completeness_table(trace: Trace) -> pd.DataFrame:
    """One row per process (host, pid) the kernel's counters were read for."""
    kio = trace.kio
    cols = [
        "host", "pid", "command", "end", *(f"kernel_{k}" for k in COUNTERS),
        *(f"explained_{k}" for k in COUNTERS), "events_bytes", "stdio_bytes",
        "before_shim_bytes", "own_bytes", "bytes_pct", "calls_pct", "cause",
    ]  # fmt: skip
    if kio is None or kio.empty:
        return pd.DataFrame(columns=cols)
    ev = _event_counts(trace.events) if len(trace.events) else None
    by_proc = dict(iter(ev.groupby(["host", "pid"]))) if ev is not None else {}
    procs = trace.processes
    commands = {
        (str(h), int(p)): c for h, p, c in zip(procs["host"], procs["pid"], procs["command"], strict=True)
    }  # fmt: skip
    stracer_ran = bool((kio["source"].astype(str) == "stracer").any())
    out = []
    for (host, pid), rows in kio.sort_values("t").groupby(["host", "pid"], sort=False):
        key = (str(host), int(pid))
        st = rows[rows["source"].astype(str) == "stracer"]
        last = rows.iloc[-1]
        end: Any = None
        if len(st):
            end = st.iloc[-1]
        elif last["when"] == "exit":
            end = last
        row: dict[str, Any] = {"host": key[0], "pid": key[1], "command": commands.get(key, "")}
        if end is None:
            row.update(end=None, cause="no counters at its end: killed, or still running")
            out.append(row)
            continue
        ex = _explain(rows, end, by_proc.get(key))
        kernel = _vec(end)
        total = ex.total
        row["end"] = "stracer" if end["source"] == "stracer" else "shim at exit"
        row.update({f"kernel_{k}": int(v) for k, v in zip(COUNTERS, kernel, strict=True)})
        row.update({f"explained_{k}": int(v) for k, v in zip(COUNTERS, total, strict=True)})
        row["events_bytes"] = int(ex.events[0] + ex.events[1])
        row["stdio_bytes"] = int(ex.stdio[0] + ex.stdio[1])
        row["before_shim_bytes"] = int(ex.before_shim[0] + ex.before_shim[1])
        row["own_bytes"] = int(ex.own[0] + ex.own[1])
        kb, tb = int(kernel[0] + kernel[1]), int(total[0] + total[1])
        kc, tc = int(kernel[2] + kernel[3]), int(total[2] + total[3])
        row["bytes_pct"] = _pct(tb, kb)
        row["calls_pct"] = _pct(tc, kc)
        row["cause"] = _cause(tb, kb, tc, kc, ex, end, stracer_ran)
        out.append(row)
    return pd.DataFrame(out, columns=cols)


def _cause(tb: int, kb: int, tc: int, kc: int, ex: Explained, end: Any, stracer: bool) -> str:
    if tb < kb:
        if not stracer:
            return (f"{kb - tb:,} bytes in {kc - tc:,} calls the shim did not see (raw syscalls, "
                    "a static or Go program, a library's own I/O): run with the stracer")  # fmt: skip
        return f"{kb - tb:,} bytes in {kc - tc:,} calls unexplained"
    if tb > kb:
        return f"{tb - kb:,} bytes more than the kernel counted"
    if tc < kc and (ex.stdio[0] or ex.stdio[1]):
        return f"{kc - tc:,} calls are stdio's buffer transfers (their bytes are traced)"
    if tc != kc:
        return f"{abs(kc - tc):,} calls {'unexplained' if tc < kc else 'more than counted'}"
    return ""


@dataclass
class JobCompleteness:
    kernel_bytes: int
    explained_bytes: int
    kernel_calls: int
    explained_calls: int
    processes: int  # with counters at their end
    without_end: int  # processes whose counters could not be read at their end

    @property
    def bytes_pct(self) -> float | None:
        return _pct(self.explained_bytes, self.kernel_bytes)

    @property
    def calls_pct(self) -> float | None:
        return _pct(self.explained_calls, self.kernel_calls)


def job_completeness(table: pd.DataFrame) -> JobCompleteness | None:
    if table.empty:
        return None
    done = table[table["end"].notna()]

    def s(col: str) -> int:
        return int(done[col].sum()) if len(done) else 0

    return JobCompleteness(
        kernel_bytes=s("kernel_rchar") + s("kernel_wchar"),
        explained_bytes=s("explained_rchar") + s("explained_wchar"),
        kernel_calls=s("kernel_syscr") + s("kernel_syscw"),
        explained_calls=s("explained_syscr") + s("explained_syscw"),
        processes=len(done),
        without_end=len(table) - len(done),
    )
