"""Per process, what the trace explains of the kernel's read/write counters (iotrace.kio has the
rules; this turns the trace's tables into its inputs and its answers into a table)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd
from iotrace.stracer import slog

from iotrace import incarnation, kio
from iotrace.calls import KERNEL_IO_FUNCS, KIO_FIELDS, KIO_OWN_FIELDS, kernel_io_checks
from iotrace.format import KIO_URING_FIELDS

from . import schema, stracer_src
from .log_kinds import STRACER
from .trace import Trace

COLUMNS = [
    "host", "pid", "command", "end",
    "kernel_rchar", "kernel_wchar", "kernel_syscr", "kernel_syscw",
    "explained_rchar", "explained_wchar", "explained_syscr", "explained_syscw",
    "events_bytes", "stdio_bytes", "before_shim_bytes", "own_bytes",
    "bytes_pct", "calls_pct", "dropped", "untraced", "cause",
]  # fmt: skip
Key = tuple[str, int, int]  # a process: host, pid, start (iotrace.incarnation)
Begins = dict[tuple[str, int], list[int]]  # (host, pid) -> its processes' starts


def begins(procs: pd.DataFrame) -> Begins:
    """The starts of the processes of each (host, pid) of the processes table (a row per log
    and per stracer-only image): a row a fork began (`forked`) begins one, unless a stracer-only
    fork row just did (iotrace.incarnation)."""
    items: dict[tuple[str, int], list[tuple[int, int]]] = {}
    cols = zip(procs["host"], procs["pid"], procs["start"], procs["forked"], procs["source"],
               strict=True)  # fmt: skip
    for h, p, t, forked, src in cols:
        if not forked:
            kind = incarnation.IMAGE
        else:
            kind = incarnation.FORK if str(src) == STRACER.name else incarnation.FORKED_LOG
        items.setdefault((str(h), int(p)), []).append((int(t), kind))
    return {k: incarnation.starts(v) for k, v in items.items()}


def trace_begins(trace: Trace) -> Begins:
    """begins(trace.processes), once per trace: a part's load gives the one its worker made
    for the trace's parts (load._assemble: a walk of every process, three times a part, cost
    a part of 2 logs ~0.5 CPU-s at 20,000 processes)."""
    got = trace._cache.get("begins")
    if got is None:
        got = trace._cache["begins"] = begins(trace.processes)
    return got


def keys_of(procs: pd.DataFrame, starts: Begins) -> list[Key]:
    """Each row's process."""
    return [
        (str(h), int(p), incarnation.of(starts.get((str(h), int(p)), [0]), int(t)))
        for h, p, t in zip(procs["host"], procs["pid"], procs["start"], strict=True)
    ]


def _key(starts: Begins, host: str, pid: int, t: int) -> Key:
    return (host, pid, incarnation.of(starts.get((host, pid), [0]), t))


def _readings(k: pd.DataFrame, starts: Begins) -> dict[Key, list[kio.Reading]]:
    """The KIO rows `k` as readings, by process (at its time) in the rows' order, the keys
    sorted.  Each column is made a list once: a frame per process (groupby, then
    itertuples, which makes a namedtuple class per call) cost ~17 ms per process, minutes for
    a trace of thousands of short-lived processes."""
    c = {name: k[name].tolist() for name in k.columns}

    def ints(names: list[str], i: int) -> list[int]:
        return [int(c[n][i]) for n in names]

    counters, own = list(KIO_FIELDS), [f"own_{x}" for x in KIO_OWN_FIELDS]
    sums, threads = [f"events_{x}" for x in schema.KIO_SUMS], [f"threads_{x}" for x in kio.COUNTERS]
    uring, shim = [f"uring_{x}" for x in KIO_URING_FIELDS], [f"shim_{x}" for x in schema.KIO_SHIM]
    out: dict[Key, list[kio.Reading]] = {}
    for i in range(len(k)):
        key = _key(starts, str(c["host"][i]), int(c["pid"][i]), int(c["t"][i]))
        out.setdefault(key, []).append(
            kio.Reading(
                str(c["source"][i]),
                str(c["when"][i]),
                int(c["t"][i]),
                int(c["proc"][i]),
                ints(counters, i),
                ints(own, i),
                int(c["stdio_pending"][i]),
                int(c["stdio_pending_streams"][i]),
                ints(sums, i),
                None if pd.isna(c["threads_rchar"][i]) else ints(threads, i),
                ints(uring, i),
                int(c["lost"][i]),
                int(c["euid"][i]),
                str(c["next"][i]),
                None if pd.isna(c["shim_own_rchar"][i]) else ints(shim, i),
                [int(c["dropped"][i]), int(c["untraced"][i])],
                nnp=bool(c["nnp"][i]),
            )
        )
    return dict(sorted(out.items()))


def _shim_events(trace: Trace) -> dict[int, list[tuple[int, list[int]]]]:
    """proc -> (t, [rchar, wchar, syscr, syscw, stdio read, stdio written]) of each shim event
    that counts, by calls.KERNEL_IO_FUNCS: for the images that ended without a reading (their
    last is the one at their start, or the one before the app's seccomp filter), the only ones
    kio.explain asks for: the others' events are not walked (one Python step per event: minutes
    for 10 million)."""
    k = trace.kio
    # most images end with a reading: none to walk, told without pandas (~3 ms a part)
    latest: dict[int, tuple[int, str]] = {}  # proc -> its shim readings' latest (t, when)
    cols = (k[c].astype(str).tolist() if c in ("source", "when") else k[c].tolist()
            for c in ("source", "proc", "t", "when"))  # fmt: skip
    for src, proc, t, when in zip(*cols, strict=True):
        if src == "shim" and (proc not in latest or t >= latest[proc][0]):
            latest[proc] = (t, when)
    if not any(when in ("start", "seccomp") for _, when in latest.values()):
        return {}
    shim = k[k["source"].astype(str) == "shim"].sort_values("t", kind="stable")
    last = shim.groupby("proc", sort=False)[["when", "t"]].last()
    last = last[last["when"].astype(str).isin(("start", "seccomp"))]
    ev = trace.events
    if not len(last):
        return {}
    ev = ev[ev["proc"].isin(last.index)]
    ev = ev[ev["source"].astype(str) == "shim"]
    # only those after the reading (callers may sum them: parts.py): before a seccomp reading
    # there are events its sums hold
    ev = ev[ev["t_start"].to_numpy() > last["t"].reindex(ev["proc"]).to_numpy()]
    mode = ev["function"].astype(str).map(KERNEL_IO_FUNCS).fillna("")
    ev, mode = ev[mode != ""], mode[mode != ""]
    out: dict[int, list[tuple[int, list[int]]]] = {}
    checks = ev["function"].astype(str).map(kernel_io_checks)
    cols = zip(ev["proc"], ev["t_start"], mode, ev["ret"], ev["errno"], ev["bytes"].fillna(0),
               checks, ev["offset"].fillna(0), ev["req"].fillna(0), strict=True)  # fmt: skip
    for proc, t, m, ret, err, nbytes, ch, off, req in cols:
        d = kio.event_sums(m, int(ret), int(err), int(nbytes), ch, int(off), int(req))
        out.setdefault(int(proc), []).append((int(t), d))
    under = ev["function"].astype(str).isin(("stdio_refill", "stdio_flush"))
    for proc, t in last.loc[last["when"].astype(str) == "start", "t"].items():
        mine = ev.loc[under & (ev["proc"] == proc), "t_start"]
        if not len(mine):
            continue
        reads, writes = _more_calls(trace, int(proc), int(t), set(mine.astype(int)))
        if reads or writes:  # after the reading, before any event the end could leave out
            out.setdefault(int(proc), []).append((int(t) + 1, [0, 0, reads, writes, 0, 0]))
    return out


def _more_calls(trace: Trace, proc: int, since: int, times: set[int]) -> tuple[int, int]:
    """The reads and writes beyond one that stdio refills and flushes stood for (their `aux`:
    a pipe's short reads in one call, a line-buffered stream's lines, which the events table
    does not keep), of the image's after its last reading at `since` that this trace holds
    (`times`: theirs; a part of a process holds some): read from its log, only for an image
    that ended without a reading (killed by a signal: its parent's counters, or the stracer's
    end, hold them).  The log is streamed, its records not kept."""
    from iotrace.calls import EVENT_FIELDS
    from iotrace.format import KI, Rec
    from iotrace.tracefile import TraceFormatError, open_log, reading

    pr = trace.processes
    name = pr.loc[pr["proc"] == proc, "log"]
    if name.empty:
        return 0, 0
    try:
        log, _, records = open_log(trace.dir / str(name.iloc[0]))
        fns = {log.functions.index(f): i for i, f in enumerate(("stdio_refill", "stdio_flush"))
               if f in log.functions}  # fmt: skip
        if not fns:
            return 0, 0
        t0, aux = EVENT_FIELDS.index("t_start"), EVENT_FIELDS.index("aux")
        kio_t, got = None, []  # the log's last reading's time; (t, 0 read 1 write, calls - 1)
        with reading(log):
            for _s, _e, _tid, rec in records:
                if rec[0] == Rec.KIO and len(rec) > KI.t and isinstance(rec[KI.t], int):
                    kio_t = max(kio_t or 0, rec[KI.t])
                elif rec[0] == Rec.EVENT and rec[1] in fns and len(rec) > aux:
                    if isinstance(rec[aux], int) and rec[aux] > 1:
                        got.append((rec[t0], fns[rec[1]], rec[aux] - 1))
    except (OSError, TraceFormatError):
        return 0, 0
    if kio_t is None:
        return 0, 0
    shift = since - kio_t  # the trace's clock less the log's: the same reading
    more = [0, 0]
    for t, which, n in got:
        if t > kio_t and t + shift in times:
            more[which] += n
    return more[0], more[1]


def _stracer_events(trace: Trace, keys: set[Key], starts: Begins) -> dict[Key, list[kio.StEvent]]:
    """The stracer's events that the kernel counts, of the processes `keys`, from its logs (as
    `iotrace run` reads them), on the trace's clock (the others' records not held)."""
    out: dict[Key, list[kio.StEvent]] = {}
    for path in STRACER.find(trace.dir):  # listed once per worker (log_kinds)
        try:
            header = slog.read_header(path)
            host = str(header.get("host", "?"))
            pids = {p for h, p, _ in keys if h == host}
            if not pids:
                continue
            # their records only, read through the log's index (one reading of it per process)
            log = stracer_src.read_wanted(path, stracer_src.Wanted(pids, others=False))[0]
            missed = log.missed
        except slog.StracerLogError:
            continue
        clock = log.header.get("clock") or {}
        shift = int(clock.get("real", 0)) - int(clock.get("mono", 0)) - trace.t0
        for pid, evs in kio.stracer_sums(missed, shift).items():
            for ev in evs:
                out.setdefault(_key(starts, host, pid, ev[0]), []).append(ev)
    return out


def _pct(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


def processes(trace: Trace) -> list[tuple[Key, kio.Process]]:
    """(host, pid, start) -> what the trace explains, for every process with readings."""
    if "kio_processes" not in trace._cache:
        procs = kio.link(explained(trace), parents(trace))
        trace._cache["kio_processes"] = sorted(procs.items())
    return trace._cache["kio_processes"]


def parents(trace: Trace) -> dict[Key, Key]:
    """Each process's parent: the process of its ppid alive at its start."""
    pr = trace.processes
    starts = trace_begins(trace)
    out: dict[Key, Key] = {}
    for key, pp in zip(keys_of(pr, starts), pr["ppid"], strict=True):
        if not pd.isna(pp):
            out.setdefault(key, _key(starts, key[0], int(pp), key[2]))
    return out


def explained(
    trace: Trace,
    keys: set[Key] | None = None,
    shim: dict[int, list[tuple[int, list[int]]]] | None = None,
    uring: dict[Key, str] | None = None,
) -> dict[Key, kio.Process]:
    """Each process with readings (of `keys`, default all) explained on its own: not yet less
    the children it reaped (kio.link).  `shim`, `uring`: _shim_events and _uring of the
    process's events when the trace holds none of them (a process reduced range by range,
    its trace without a processes table: its processes' starts are those of `keys`)."""
    k = trace.kio
    if k is None or k.empty:
        return {}
    pr = trace.processes
    if len(pr) or keys is None:
        starts = trace_begins(trace) if len(pr) else {}
    else:
        starts = {}
        for h, p, t in sorted(keys):
            starts.setdefault((h, p), []).append(t)
    if keys is not None:  # a part's own: not every process's (grouping them all cost a part
        # ~0.5 ms per process of the trace)
        k = k[_of(k, keys)]
    readings = _readings(k, starts)
    if keys is not None:  # not the other processes of its pids
        readings = {key: rs for key, rs in readings.items() if key in keys}
    st = _stracer_events(trace, set(readings), starts)
    shim = _shim_events(trace) if shim is None else shim
    out = {key: kio.explain(rs, st.get(key, []), shim) for key, rs in readings.items()}
    for key, how in (_uring(trace, keys) if uring is None else uring).items():
        if key in out:
            out[key].uring = how  # what the trace shows of it: before "held" at its end
    return out


def _of(frame: pd.DataFrame, keys: set[Key]) -> np.ndarray:
    """The rows of `frame` (host, pid columns) of the pids of the processes `keys`: its pids
    first, at once (a part's keys are few, a trace's rows many: a test per row cost
    O(processes) a part)."""
    pids = frame["pid"].to_numpy()
    sel = np.isin(pids, np.fromiter({p for _, p, _ in keys}, np.int64, -1))
    hosts = frame["host"].to_numpy()
    pairs = {(h, p) for h, p, _ in keys}
    for i in np.flatnonzero(sel).tolist():
        sel[i] = (str(hosts[i]), int(pids[i])) in pairs
    return sel


def _uring(trace: Trace, keys: set[Key] | None = None) -> dict[Key, str]:
    """(host, pid, start) -> how io_uring was seen in the process: "rings" (the shim saw a ring
    mapped: fio's engine maps them through libc), else "liburing" (loaded, by the module map the
    shim recorded: liburing maps its rings with raw syscalls, so nothing else shows them).  Of
    the processes `keys` only, if given."""
    from .insights import IO_URING_PATH

    pr = trace.processes
    starts = trace_begins(trace)
    if keys is not None:
        pr = pr[_of(pr, keys)]
    key = dict(zip(pr["proc"].astype(int).tolist(), keys_of(pr, starts), strict=True))
    out = {key[p]: "liburing" for p, mods in trace.modules.items()
           if p in key and any(kio.LIBURING.search(str(m[3])) for m in mods)}  # fmt: skip
    if not stracer_read(trace):  # linked statically: its rings may be gone by the exit reading
        from iotrace.elf import names_liburing

        for p, exe in zip(pr["proc"], pr["exe"], strict=True):
            if int(p) in key and isinstance(exe, str) and names_liburing(exe):
                out.setdefault(key[int(p)], "liburing")
    ev = trace.events
    if len(ev) and IO_URING_PATH in ev["path"].cat.categories:
        rings = (ev["function"].astype(str) == "mmap") & (ev["path"] == IO_URING_PATH)
        for p in set(ev.loc[rings, "proc"].astype(int)):
            if p in key:
                out[key[p]] = "rings"
    return out


def stracer_read(trace: Trace) -> bool:
    """Whether a stracer read the kernel's counters."""
    k = trace.kio
    return bool(len(k)) and bool((k["source"] == "stracer").any())


def _signal(ended: str) -> str:
    """The signal's name from the processes table's `ended` ("signal 15": SIGTERM)."""
    import signal

    try:
        return signal.Signals(int(ended.split()[1])).name
    except (ValueError, IndexError):
        return "a signal"


def completeness_table(trace: Trace) -> pd.DataFrame:
    """One row per process the kernel's counters were read for."""
    return table(processes(trace), trace.processes, stracer_read(trace))


def table(
    kprocs: Iterable[tuple[Key, kio.Process]], procs: pd.DataFrame, stracer: bool
) -> pd.DataFrame:
    """completeness_table from the explained processes and the processes table."""
    return job_and_table(kprocs, stracer, 0, procs, job=False)[1]


def _row_of(procs: pd.DataFrame, stracer: bool) -> Callable[[Key, kio.Process], list]:
    """A process's row of the table (COLUMNS' values), by the processes table."""
    # how each process's last image ended ("signal N" where iotrace run or the stracer saw it)
    procs = procs.sort_values("start", kind="stable")
    keys = keys_of(procs, begins(procs))
    images: dict[Key, list[str]] = {}
    for key, c in zip(keys, procs["command"], strict=True):
        images.setdefault(key, []).append(str(c))
    commands = {k: named(v) for k, v in images.items()}
    ended = {key: str(e) for key, e in zip(keys, procs["ended"], strict=True)}

    def row(key: Key, p: kio.Process) -> list[Any]:
        return [
            key[0],
            key[1],
            commands.get(key, ""),
            p.end,
            *p.kernel,
            *p.explained,
            p.events[0] + p.events[1],
            p.stdio[0] + p.stdio[1],
            p.before_shim[0] + p.before_shim[1],
            p.own[0] + p.own[1],
            _pct(p.bytes, p.kernel_bytes) if p.end else None,
            _pct(p.calls, p.kernel_calls) if p.end else None,
            # after the app's seccomp filter: records dropped, calls untraced by the shim
            p.dropped[0],
            p.dropped[1],
            _cause(p, stracer, ended.get(key, "")),
        ]

    return row


CHAIN_SHOWN = 3  # images of a process named in its row; a longer chain names its first
CHAIN_WIDTH = 60  # characters of each earlier image's command


def named(images: list[str]) -> str:
    """A process's row's command: the program that ran last (its last image), and the ones
    it exec'd from (a shell's `sh -c 'exec yes'`, a forked shell's child that exec'd cat)."""
    last, before = images[-1], images[:-1]
    if not before:
        return last
    cut = [c if len(c) <= CHAIN_WIDTH else c[: CHAIN_WIDTH - 1] + "…" for c in before]
    if len(images) > CHAIN_SHOWN:
        return f"{last} (exec'd from: {cut[0]} -> … ({len(images) - 2:,} more))"
    return f"{last} (exec'd from: {' -> '.join(cut)})"


def _cause(p: kio.Process, stracer: bool, ended: str) -> str:
    cause = p.cause(stracer)
    if p.end is None and p.why[1]:  # the shim said why
        return cause
    if p.end is None and ended.startswith("signal"):
        return f"no counters at its end: killed by {_signal(ended)}"
    if p.end is None and ended == "exit" and not stracer and not p.sandboxed:
        # it exited (iotrace run saw its status), but neither libc's exit nor _exit ran
        return ("no counters at its end: it exited without libc's exit or _exit, whose hooks "
                "read them: a raw exit_group syscall (syscall(SYS_exit_group, n)) bypassed the "
                "shim; run with the stracer, which reads them at every exit")  # fmt: skip
    if p.tail and not p.sandboxed:
        how = ("exited by a raw exit_group syscall, bypassing libc's exit," if ended == "exit"
               else f"ended by {_signal(ended)}")  # fmt: skip
        what = f"{how} before the shim's last reading: its last events counted from the trace"
        cause = f"{what}; {cause}" if cause else what
    if not p.died_in:
        return cause
    return f"{cause}; {_died_in(p, ended)}" if cause else _died_in(p, ended)


def _died_in(p: kio.Process, ended: str) -> str:
    """The wrappers' calls its threads died in (a write cut short by SIGPIPE): the kernel
    counted them, the shim never saw them return; the stracer read them at the end."""
    when = f"{_signal(ended)} killed it" if ended.startswith("signal") else "it ended"
    calls = ", ".join(f"{name} of {v[0] + v[1]:,} bytes" for name, v in sorted(p.died_in.items()))
    return f"in flight when {when}: {calls} (the stracer read them at its end)"


def job(trace: Trace) -> kio.Job:
    uring = 0
    ev = trace.events
    if len(ev):  # processes that mapped io_uring rings (the kernel counts none of their I/O)
        from .insights import IO_URING_PATH

        rings = (ev["function"].astype(str) == "mmap") & (ev["path"].astype(str) == IO_URING_PATH)
        uring = int(ev.loc[rings, "pid"].nunique())
    return job_of(processes(trace), stracer_read(trace), uring, trace.processes)


def job_of(
    kprocs: Iterable[tuple[Key, kio.Process]],
    stracer: bool,
    uring: int,
    procs: pd.DataFrame | None = None,
) -> kio.Job:
    """The job's completeness from the explained processes; `uring`: how many processes mapped
    io_uring rings; `procs`: the processes table (their commands, named by the line)."""
    return job_and_table(kprocs, stracer, uring, procs, table=False)[0]


def job_and_table(
    kprocs: Iterable[tuple[Key, kio.Process]],
    stracer: bool,
    uring: int,
    procs: pd.DataFrame | None = None,
    job: bool = True,
    table: bool = True,
) -> tuple[kio.Job, pd.DataFrame]:
    """job_of (if `job`) and table (if `table`, of `procs`) in one walk of `kprocs`, which may
    make each process as it is walked (kio.Packed.linked: the merge of a trace's parts holds
    none of them)."""
    commands: dict[Key, str] = {}
    if job and procs is not None:
        cols = zip(keys_of(procs, begins(procs)), procs["exe"], strict=True)
        commands = {k: str(e) for k, e in cols if isinstance(e, str)}
    j = kio.Job(stracer=stracer)
    if job and procs is not None and "ppid" in procs and len(procs):  # kio.Job.pidns: began a PID
        ns = procs["ppid"].to_numpy(dtype="int64", na_value=-1) == 0  # namespace of their own
        j.pidns = len(set(zip(procs["host"][ns].astype(str), procs["pid"][ns], strict=True)))
    row = _row_of(procs, stracer) if table and procs is not None else None
    out: list[list[Any]] = []

    def walked() -> Iterator[tuple[kio.Process, int, str]]:
        for key, p in kprocs:
            if row is not None:
                out.append(row(key, p))
            yield p, key[1], commands.get(key, "")

    if job:  # counts the processes that used io_uring without the stracer
        j.add_all(walked())
    else:
        for _ in walked():
            pass
    if not j.stracer:  # the kernel counts no io_uring operation in rchar/wchar: say so
        j.uring = max(j.uring, uring)
    return j, pd.DataFrame(out, columns=COLUMNS)
