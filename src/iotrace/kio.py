"""How much of each process's I/O a trace explains, checked against the kernel's own counters.

The kernel counts, per process, the bytes and the calls of every read- and write-type syscall:
/proc/PID/io's rchar, wchar, syscr and syscw (which calls count, and how: calls.KERNEL_IO_*).
The shim reads them at its start, just before an exec and at exit, with its events' sums counted
the kernel's way; the stracer at the process's last exit stop (KIO records, docs/format.md).
What the trace explains of a process's counters at its end:

- its events: the shim's (stdio streams by their refills and flushes, the bytes stdio read
  and wrote underneath the app's calls; their syscalls are not traced one by one) and the
  stracer's (the syscalls no wrapper covered: libc-internal and bypass);
- what happened in each image before its shim started: the kernel's own reads of the program at
  exec and the dynamic loader's, measured by the shim's first reading less the reading the image
  before it took just before the exec (nothing for a fork: a child starts at zero);
- the shim's own syscalls (it counts them) and its readings of /proc/self/io (each one read of
  the text of the values it shows, counted by the kernel after them);
- stdio output in buffers at the shim's reading at exit: recorded as the final flush's events
  just before it, written by that flush just after it.

The end is the stracer's reading, or without a stracer the shim's at exit.  Used by the analyzer
(analyzer/completeness.py) and by `iotrace run`'s closing line; docs/analyzer.md, "Completeness".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .calls import KERNEL_IO_SYSCALLS, KIO_FIELDS, KIO_WHEN
from .format import KIO_NEXT, KIO_URING_FIELDS
from .record import field, record
from .units import fmt_bytes, fmt_pct

EBADF = 9  # the kernel counts no call that fails its descriptor lookup
LIBURING = re.compile(r"/liburing\.so[.\d]*$")  # a module path: io_uring's raw-syscall library
COUNTERS = ("rchar", "wchar", "syscr", "syscw")
Vec = list[int]  # rchar, wchar, syscr, syscw


@record
class Reading:
    """One KIO record."""

    source: str  # "shim" or "stracer"
    when: str  # start, exec, exit (shim); end (stracer)
    t: int  # ns, on one clock for all readings of a process
    image: int  # the shim log it is from (-1: the stracer)
    counters: list[int]  # KIO_FIELDS
    own: Vec = field(default_factory=lambda: [0, 0, 0, 0])  # the shim's: before the reading
    pending: int = 0  # stdio output bytes in buffers
    pending_streams: int = 0  # the streams holding them: one write each at the final flush
    sums: list[int] = field(default_factory=lambda: [0] * 6)  # events: Vec + stdio read, write
    threads: Vec | None = None  # the stracer's: the sum of every thread's own counters
    uring: list[int] = field(default_factory=lambda: [0, 0, 0])  # the shim's: KIO_URING_FIELDS
    lost: int = 0  # the errno of a reading the shim could not take (its counters then zeros)
    euid: int = -1  # the process's effective uid at a shim's reading (-1: not known)
    next: str = ""  # at an exec: why the image it starts may have no log (format.KIO_NEXT)
    # the stracer's end: the shim's own I/O and its events' sums in the process's memory then
    # (Vec + Vec + stdio read, written), None without a shim
    shim: list[int] | None = None

    @property
    def vec(self) -> Vec:
        return list(self.counters[:4])

    @property
    def cost(self) -> Vec:
        """The kernel's count of the read of /proc/self/io that returned these values (none for a
        reading not taken: its open failed)."""
        if self.lost:
            return [0, 0, 0, 0]
        text = "".join(f"{k}: {v}\n" for k, v in zip(KIO_FIELDS, self.counters, strict=True))
        return [len(text), 0, 1, 0]


def shim_reading(rec: list[Any], image: int, shift: int = 0) -> Reading | None:
    """A shim KIO record [6, when, t, counters, own, [pending, streams], sums, uring, [errno,
    euid], [next]] (the trailing fields since they were added); None if malformed.  A reading
    the shim could not take (errno, counters []) comes back with `lost` and zero counters.
    `shift` is added to its time."""
    try:
        _, when, t, counters, own, pending, sums = rec[:7]
        uring = [int(x) for x in rec[7]] if len(rec) > 7 else [0] * len(KIO_URING_FIELDS)
        lost, euid = (int(rec[8][0]), int(rec[8][1])) if len(rec) > 8 and rec[8] else (0, -1)
        nxt = (
            dict(enumerate(KIO_NEXT, 1)).get(int(rec[9][0]), "") if len(rec) > 9 and rec[9] else ""
        )
        if lost and not counters:
            counters = [0] * len(KIO_FIELDS)
        r = Reading("shim", KIO_WHEN[when], int(t) + shift, image, [int(x) for x in counters],
                    [int(x) for x in own], int(pending[0]), int(pending[1]),
                    sums=[int(x) for x in sums], uring=uring, lost=lost, euid=euid,
                    next=nxt)  # fmt: skip
    except (ValueError, TypeError, IndexError):
        return None
    ok = len(r.counters) == len(KIO_FIELDS) and len(r.own) == 4 and len(r.sums) == 6
    ok = ok and len(r.uring) == len(KIO_URING_FIELDS)
    return r if ok else None


def stracer_reading(rec: list[Any], shift: int = 0) -> tuple[int, Reading] | None:
    """(pid, reading) of a stracer KIO record [5, t, pid, counters, own, when, threads]; None if
    malformed.  own: the I/O of the threads the shim started, the shim's own.  threads (at the
    end): the sum of each thread's own counters -- the process's I/O without its children's.
    shim (at the end, version 8): the shim's own I/O and its events' sums in its memory.
    when: "end" (the process's last exit stop, or `iotrace attach`'s detach) or "exec" (an
    exec into a program no shim starts in: the kernel's reads of it are done, the program's own
    I/O not begun) or "attach" (`iotrace attach`: where its trace begins)."""
    try:
        _, t, pid, counters, own, when = rec[:6]
        if when not in ("end", "exec", "attach"):
            return None
        threads = rec[6] if len(rec) > 6 and rec[6] is not None else None
        shim = rec[7] if len(rec) > 7 and rec[7] is not None else None
        r = Reading("stracer", when, int(t) + shift, -1, [int(x) for x in counters],
                    [int(x) for x in own],
                    threads=[int(x) for x in threads] if threads is not None else None,
                    shim=[int(x) for x in shim] if shim is not None else None)  # fmt: skip
        if r.threads is not None and len(r.threads) != 4:
            return None
        if r.shim is not None and len(r.shim) != 10:
            return None
    except (ValueError, TypeError, IndexError):
        return None
    return (int(pid), r) if len(r.counters) == len(KIO_FIELDS) else None


def _add(a: Vec, b: Vec, sign: int = 1) -> Vec:
    return [x + sign * y for x, y in zip(a, b, strict=True)]


def event_sums(mode: str, ret: int | None, err: int, nbytes: int = 0) -> list[int]:
    """One call counted the kernel's way (a KERNEL_IO_* mode): [rchar, wchar, syscr, syscw,
    stdio bytes read, stdio bytes written] -- as the shim's iot_kio_add counts its events."""
    moved = ret if isinstance(ret, int) and ret > 0 else 0
    counted = int(moved > 0) if mode == "rwm" else int(err != EBADF)
    out = [0] * 6
    if mode in ("r", "rw", "rwm"):
        out[0], out[2] = moved, counted
    if mode in ("w", "rw", "rwm"):
        out[1], out[3] = moved, counted
    if mode == "sr":  # stdio's refill or flush: one read or write syscall each
        out[4], out[2] = nbytes, counted
    if mode == "sw":
        out[5], out[3] = nbytes, counted
    return out


def syscall_sums(records: Iterable[tuple[str, int | None, int]]) -> Vec:
    """rchar, wchar, syscr, syscw of the stracer's records: (syscall, ret, errno)."""
    out = [0, 0, 0, 0]
    for name, ret, err in records:
        mode = KERNEL_IO_SYSCALLS.get(name)
        if mode:
            out = _add(out, event_sums(mode, ret, err)[:4])
    return out


def stracer_sums(missed: Iterable[list[Any]], shift: int = 0) -> dict[int, list[tuple[int, Vec]]]:
    """pid -> (t + shift, sums) of the stracer's MISSED records that the kernel counts: not the
    operations an asynchronous engine carried out (`via`: io_uring, aio), which are no syscall."""
    out: dict[int, list[tuple[int, Vec]]] = {}
    for rec in missed:
        try:
            if len(rec) > 17 and rec[17] is not None:
                continue
            sums = syscall_sums([(rec[4], rec[6], rec[7])])
            if any(sums):
                out.setdefault(int(rec[2]), []).append((int(rec[1]) + shift, sums))
        except (ValueError, TypeError, IndexError):
            continue
    return out


@record
class Process:
    """What the trace explains of one process's counters at its end (None: no end reading)."""

    end: str | None  # "stracer", "shim at exit", or None
    kernel: Vec = field(default_factory=lambda: [0, 0, 0, 0])
    events: Vec = field(default_factory=lambda: [0, 0, 0, 0])  # shim and stracer events
    stdio: Vec = field(default_factory=lambda: [0, 0, 0, 0])  # stdio bytes read, written
    before_shim: Vec = field(default_factory=lambda: [0, 0, 0, 0])
    own: Vec = field(default_factory=lambda: [0, 0, 0, 0])
    children: Vec = field(default_factory=lambda: [0, 0, 0, 0])  # reaped: in `kernel` no more
    end_t: int = 0
    alone: bool = False  # `kernel` is the process's own (its threads'), no children's in it
    unfinished: bool = False  # an image ended without a reading: its last events not summed
    tail: bool = False  # an image ended without a reading: its last events summed from the trace
    final: Vec = field(default_factory=lambda: [0, 0, 0, 0])  # what the kernel adds to the parent
    # read_bytes, write_bytes at its end: what reached storage (io_uring's I/O among it)
    storage: list[int] = field(default_factory=lambda: [0, 0])
    # io_uring without the stracer: "liburing" (loaded: it sets rings up with raw syscalls the
    # shim cannot see), "rings" (the shim saw one mapped), "held" (rings or liburing still
    # there at the shim's exec or exit reading: a liburing linked statically or dlopen'd too);
    # "" none seen
    uring: str = ""
    # without counters at its end, why as far as the shim said (no_end_why): kind, text
    why: tuple[str, str] = ("", "")
    attached: bool = False  # iotrace attach: `kernel` is its counters since the attach
    # an exec into an image that had no log (the shim's exec reading's `next`, no reading after
    # it), and the effective uid then: the kernel's and the loader's reads there are not known
    nolog: str = ""
    nolog_uid: int = -1
    shimmed: bool = False  # a shim's reading is among its own
    # an image installed a seccomp filter: its shim makes no syscall after it, so its reading
    # then ("seccomp") is its last (none at exit; under the stracer, whose end reading has the
    # shim's sums, it is exact), and the records it had no room for are lost (preload/sandbox.c)
    sandboxed: bool = False

    @property
    def explained(self) -> Vec:
        return [
            sum(v) for v in zip(self.events, self.stdio, self.before_shim, self.own, strict=True)
        ]

    @property
    def kernel_bytes(self) -> int:
        return self.kernel[0] + self.kernel[1]

    @property
    def kernel_calls(self) -> int:
        return self.kernel[2] + self.kernel[3]

    @property
    def bytes(self) -> int:
        e = self.explained
        return e[0] + e[1]

    @property
    def calls(self) -> int:
        e = self.explained
        return e[2] + e[3]

    def cause(self, stracer: bool) -> str:
        """Why the trace explains less (or more) than the kernel counted; "" when it all adds up."""
        if self.end is None and self.why[1]:
            return f"no counters at its end: {self.why[1]}"
        if self.end is None:
            if stracer:
                return "no counters at its end: killed (SIGKILL), or still running"
            return ("no counters at its end: it ended without the shim's exit (libc's exit and "
                    "_exit read them): a raw exit_group syscall, or killed (SIGKILL), or still "
                    "running")  # fmt: skip
        if self.uring and not stracer:
            how = {
                "liburing": "liburing loaded or linked in (it sets its rings up with raw "
                "syscalls the shim cannot see)",
                "held": "io_uring found at its end (ring descriptors or mappings, or liburing, "
                "in /proc/self: a liburing linked statically or dlopen'd sets its rings up with "
                "raw syscalls the shim cannot see)",
            }.get(self.uring, "io_uring rings mapped")
            wb, tw = fmt_bytes(self.storage[1]), fmt_bytes(self.explained[1])
            return (f"{how} and no stracer: io_uring's reads and writes are in neither the "
                    "kernel's read/write counters nor the trace; the kernel's write_bytes (what "
                    f"the process put in the page cache for storage) is {wb} against {tw} "
                    "written in the trace: run with the stracer")  # fmt: skip
        if self.unfinished:
            return ("ended without the shim's last reading (a signal, or a raw exit_group "
                    "syscall?): its events after it are counted by iotrace report")  # fmt: skip
        kb, tb, kc, tc = self.kernel_bytes, self.bytes, self.kernel_calls, self.calls
        if tb < kb:
            what = f"{kb - tb:,} bytes in {max(kc - tc, 0):,} calls"
            if not stracer:
                return (f"{what} the shim did not see (raw syscalls, a static or Go program, "
                        "a library's own I/O): run with the stracer to see them")  # fmt: skip
            if self.tail and self.sandboxed:
                return (f"{what} unexplained (the app installed a seccomp filter: records the "
                        "shim had no room left for after it?)")  # fmt: skip
            if self.tail:
                return f"{what} unexplained (the shim's own I/O after its last reading)"
            if self.nolog:
                why = "it exec'd a set-user-ID or set-group-ID program, which runs without the shim"
                if self.nolog == "unwritable":
                    why = (f"its program, run as uid {self.nolog_uid} after an exec, could "
                           "create no log in the trace directory (by design: no write access "
                           "for a process whose uid changed)")  # fmt: skip
                return (f"{what} unexplained: {why}, so the kernel's, the loader's and the "
                        "shim's reads at that exec are not known (its calls after: the "
                        "stracer's)")  # fmt: skip
            return f"{what} unexplained"
        if tb > kb:
            return f"{tb - kb:,} bytes more than the kernel counted"
        if tc < kc and (self.stdio[0] or self.stdio[1]):
            return (f"{kc - tc:,} calls unexplained, likely stdio's reads of a pipe or terminal "
                    "that returned less than asked, more than one in a call (their bytes are "
                    "traced)")  # fmt: skip
        if tc != kc:
            return f"{abs(kc - tc):,} calls {'unexplained' if tc < kc else 'more than counted'}"
        return ""


def explain(
    readings: list[Reading],
    stracer_events: list[tuple[int, Vec]],
    shim_events: dict[int, list[tuple[int, list[int]]]] | None = None,
) -> Process:
    """One process: its readings (any order), its stracer events as (t, sums of one event), and
    if known its shim events by image as (t, sums of one event: Vec + stdio read, written), for
    an image whose shim had no reading at its end (killed by a signal): its events after its
    last reading count from them (the inner I/O of "in" calls there excepted)."""
    every = sorted(readings, key=lambda r: r.t)
    last = every[-1] if every else None
    # a reading the shim could not take has no counters, but its image's sums and own I/O until
    # then: the stracer's end reading is the kernel's
    readings = [r for r in every if not r.lost]
    ends = [r for r in readings if r.source == "stracer" and r.when == "end"]
    end = ends[-1] if ends else None
    if end is None and readings and readings[-1].when in ("exit", "_exit"):
        end = readings[-1]
    sandboxed = any(r.when == "seccomp" for r in readings)
    if end is None:
        why = no_end_why(last) if last is not None else ("", "")
        return Process(None, why=why, sandboxed=sandboxed)
    p = Process("stracer" if end.source == "stracer" else "shim at exit", kernel=end.vec,
                end_t=end.t, final=end.vec, storage=list(end.counters[4:6]),
                sandboxed=sandboxed)  # fmt: skip
    if end.threads is not None:
        p.kernel, p.alone = list(end.threads), True
    att = [r for r in readings if r.when == "attach" and r.t <= end.t]
    if att:  # iotrace attach: the trace begins there, and so does what it explains
        a, p.attached = att[-1], True
        if p.alone and a.threads is not None:
            p.kernel = _add(p.kernel, a.threads, -1)
        else:
            p.kernel, p.alone = _add(end.vec, a.vec, -1), False
    if end.source == "shim":  # the reading's own read, and stdio's final flush, come after it
        p.final = _add(end.vec, end.cost)
        if end.when == "exit":
            p.final = _add(p.final, [0, end.pending, 0, end.pending_streams])
    for t, sums in stracer_events:
        if t <= end.t:
            p.events = _add(p.events, sums)
    shim = [r for r in every if r.source == "shim" and r.t <= end.t]
    starts = [r for r in readings if r.t <= end.t and (r.source == "shim" or r.when == "exec")]
    prev: Reading | None = None
    for r in starts:
        # where this image began: zero for a fork child or the first image; the reading the
        # shim of the image before took just before its exec; else not known
        base: Vec | None = None
        if prev is None:
            base = [0, 0, 0, 0]
        elif prev.source == "shim" and prev.when == "exec":
            base = _add(prev.vec, prev.cost)
        if r.source == "stracer":  # an image without a shim: before it, the exec's own reads
            if base is not None:
                p.before_shim = _add(p.before_shim, _add(r.vec, base, -1))
            prev = r
            continue
        if r.when == "start":
            if base is not None:
                p.before_shim = _add(p.before_shim, _add(_add(r.vec, r.own, -1), base, -1))
        elif r is end and r.when == "exit":
            # its final flush is recorded (and summed) before exit()'s reading, written after:
            # one write per stream
            p.stdio[1] -= r.pending
            p.stdio[3] -= r.pending_streams
        prev = r
    lasts: dict[int, Reading] = {}
    for r in shim:
        lasts[r.image] = r
    # the image alive at the stracer's end reading, which read its shim's sums in its memory:
    # one that took no reading at its end (a raw exit_group) is explained by them exactly
    alive = None
    if end.shim is not None and starts and starts[-1].source == "shim":
        alive = starts[-1].image
    for r in lasts.values():  # each image's sums and own I/O up to its last reading
        sums = list(r.sums)
        # (a sandboxed image's last is the one before its seccomp filter: none after that)
        if r.image == alive and r.when in ("start", "seccomp") and end.shim is not None:
            p.events = _add(p.events, end.shim[4:8])
            p.stdio = _add(p.stdio, [end.shim[8], end.shim[9], 0, 0])
            p.own = _add(p.own, end.shim[:4])
            continue
        if r.when in ("start", "seccomp") and r is not end:  # ended without a reading
            if shim_events is None:
                p.unfinished = True
            else:
                p.tail = True
                for t, d in shim_events.get(r.image, []):
                    if r.t < t <= end.t:
                        sums = [a + b for a, b in zip(sums, d, strict=True)]
        p.events = _add(p.events, sums[:4])
        p.stdio = _add(p.stdio, [sums[4], sums[5], 0, 0])
        p.own = _add(p.own, r.own if r is end else _add(r.own, r.cost))
    p.shimmed = bool(shim)
    if end.source == "stracer":
        p.own = _add(p.own, end.own)
        if starts and starts[-1].when == "exec" and starts[-1].next:
            p.nolog, p.nolog_uid = starts[-1].next, starts[-1].euid
    if any(any(r.uring) for r in shim):
        p.uring = "held"
    return p


EPERM, EACCES, ENFILE, EMFILE = 1, 13, 23, 24
# short names of no_end_why's kinds, for the job's line
NO_END = {
    "ids": "uid changed: its counters and logs are root's after it",
    "fds": "no fd left for the shim's reading of them: ulimit -n reached",
    "setid": "a set-user-ID or set-group-ID program, which runs without the shim",
    "unread": "the shim could not read them",
    "seccomp": "the app installed a seccomp filter, after which the shim makes no syscall",
}


def no_end_why(r: Reading) -> tuple[str, str]:
    """(kind, text): why a process whose last reading is `r` has no counters at its end, where
    the shim said it (a reading it could not take, an exec into an image that can have no log);
    ("", "") otherwise (killed, a raw exit_group, still running: not known)."""
    import os

    if r.lost in (EACCES, EPERM):
        return ("ids", f"its ids changed (effective uid {r.euid} at its {r.when}): a process "
                "that changes its ids is no longer dumpable, its /proc/self/io is root's, and "
                "the shim could not read its counters there (it was not killed)")  # fmt: skip
    if r.lost in (EMFILE, ENFILE):
        how = (
            "it had used all of its ulimit -n"
            if r.lost == EMFILE
            else "the system's file table was full"
        )
        return ("fds", f"no fd left for the shim's reading of /proc/self/io at its {r.when} "
                f"({how}): its counters then are not known (it was not killed)")  # fmt: skip
    if r.lost:
        return ("unread", f"the shim could not read /proc/self/io at its {r.when}: "
                f"{os.strerror(r.lost)}")  # fmt: skip
    if r.when == "seccomp":
        return ("seccomp", "the app installed a seccomp filter, after which the shim makes no "
                "syscall: it read them just before (it was not killed)")  # fmt: skip
    if r.when == "exec" and r.next == "setid":
        return ("setid", "it exec'd a set-user-ID or set-group-ID program, which runs without "
                "the shim (secure execution: the loader ignores LD_PRELOAD there): nothing "
                "after the exec is traced")  # fmt: skip
    if r.when == "exec" and r.next == "unwritable":
        return ("ids", f"it exec'd as uid {r.euid}, which cannot write the trace directory: "
                "the program it exec'd, and the processes that started, have no log (a process "
                "whose uid changed gets no write access to iotrace's files)")  # fmt: skip
    return ("", "")


def explain_all(
    readings: dict[Any, list[Reading]],
    parent: dict[Any, Any],
    stracer_events: dict[Any, list[tuple[int, Vec]]],
    shim_events: dict[int, list[tuple[int, list[int]]]] | None = None,
) -> dict[Any, Process]:
    """Every process (by key: pid, or (host, pid)).  A process's counters include those of the
    children it reaped (the kernel adds them at the wait).  The stracer's end reading has the
    process's own, its threads' sum; without it a child that ended before its parent's end
    reading is taken for reaped by it, and its final counters are taken off the parent's."""
    procs = {
        k: explain(rs, stracer_events.get(k, []), None if shim_events is None else shim_events)
        for k, rs in readings.items()
    }
    return link(procs, parent)


def link(procs: dict[Any, Process], parent: dict[Any, Any]) -> dict[Any, Process]:
    """explain_all's second step, once every process is explained (the analyzer explains parts
    of a trace apart): each parent's counters less the children it reaped."""
    for k, p in procs.items():
        par = procs.get(parent.get(k))
        if par is not None and par.nolog == "unwritable" and not p.shimmed and not p.nolog:
            p.nolog, p.nolog_uid = par.nolog, par.nolog_uid  # a child of one: no log either
        if par is None or par.alone or par.end is None or p.end is None or p.end_t > par.end_t:
            continue
        par.children = _add(par.children, p.final)
    for p in procs.values():
        p.kernel = _add(p.kernel, p.children, -1)
    return procs


@record
class Job:
    kernel_bytes: int = 0
    explained_bytes: int = 0
    kernel_calls: int = 0
    explained_calls: int = 0
    stdio_calls: int = 0  # calls short where stdio's bytes add up: its short reads of pipes
    processes: int = 0  # with counters at their end
    without_end: int = 0
    short: int = 0  # processes whose bytes the trace explains less than all of
    short_bytes: int = 0  # the bytes those are short of
    unfinished: int = 0  # processes whose last events only the report counts
    tail: int = 0  # processes whose last events the report counted from the trace
    uring: int = 0  # processes with an io_uring ring and no stracer: I/O no counter shows
    stracer: bool = False
    attached: int = 0  # processes iotrace attach began tracing mid-life: counted from there
    no_end: dict[str, int] = field(default_factory=dict)  # without_end by no_end_why's kind
    # their app installed a seccomp filter, and the stracer's end reading had no shim sums: their
    # last events only the report counts (not in unfinished), or counted from the trace
    sandboxed: int = 0
    sandboxed_tail: int = 0

    def add(self, p: Process) -> None:
        if p.end is not None and p.unfinished and p.sandboxed:
            self.sandboxed += 1
            return
        if p.end is None:
            self.without_end += 1
            self.no_end[p.why[0]] = self.no_end.get(p.why[0], 0) + 1
            return
        if p.unfinished:  # its last events are not summed: a share of it would be a false alarm
            self.unfinished += 1
            return
        self.uring += bool(p.uring) and not self.stracer
        self.attached += p.attached
        self.processes += 1
        self.tail += p.tail and not p.sandboxed
        self.sandboxed_tail += p.tail and p.sandboxed
        self.kernel_bytes += p.kernel_bytes
        self.explained_bytes += p.bytes
        self.kernel_calls += p.kernel_calls
        self.explained_calls += p.calls
        if p.bytes < p.kernel_bytes:
            self.short += 1
            self.short_bytes += p.kernel_bytes - p.bytes
        if p.bytes == p.kernel_bytes and p.calls < p.kernel_calls and (p.stdio[0] or p.stdio[1]):
            self.stdio_calls += p.kernel_calls - p.calls

    @property
    def _no_end(self) -> str:
        """Why processes have no counters at their end: what the shim said (NO_END), else with
        the shim alone a process that ends by a raw exit_group syscall runs none of its exit
        hooks."""
        unknown = "killed?" if self.stracer else "killed, or a raw exit_group syscall?"
        said = {NO_END.get(k, unknown): n for k, n in self.no_end.items()}
        if len(said) == 1:
            return next(iter(said))
        return "; ".join(f"{n:,}: {why}" for why, n in sorted(said.items()))

    def line(self) -> str:
        """The job's completeness in one line (`iotrace run`'s last, `report`'s first)."""
        if not self.processes:
            if self.unfinished:
                return (f"completeness: {self.unfinished:,} ended by a signal or a raw "
                        "exit_group syscall before the shim's last reading, the only processes "
                        "with counters at their end: iotrace report counts their last "
                        "events")  # fmt: skip
            if self.without_end:
                return (f"completeness: no counters at the end of the {self.without_end:,} "
                        f"processes traced ({self._no_end})")  # fmt: skip
            return (
                "completeness: no shim and no stracer read the kernel's counters (a static or "
                "Go program under --no-stracer, or iotrace attach --shim: the shim takes no "
                "reading in a process it was loaded into, whose counters hold the I/O before "
                "it): this trace cannot check itself"
            )
        b = _pct(self.explained_bytes, self.kernel_bytes)
        c = _pct(self.explained_calls, self.kernel_calls)
        out = (f"the trace explains {b} of the {fmt_bytes(self.kernel_bytes)} and {c} of the "
               f"{self.kernel_calls:,} read/write syscalls the kernel counted")  # fmt: skip
        if self.processes > 1:
            out += f" in {self.processes:,} processes"
        if self.attached:
            out += (" between the attach and the end (the kernel's counters at the attach are "
                    "where it begins)")  # fmt: skip
        if self.stdio_calls:
            out += (f" (the other {self.stdio_calls:,}: likely stdio's short reads of a pipe "
                    "or terminal, whose bytes are traced)")  # fmt: skip
        if self.short:
            out += f"; {fmt_bytes(self.short_bytes)} not in the trace"
            if not self.stracer:
                out += " (the shim alone does not see raw syscalls: run with the stracer)"
            out += ", by process: iotrace report"
        if self.unfinished:
            out += (f"; {self.unfinished:,} more ended by a signal or a raw exit_group syscall "
                    "before the shim's last reading, left out here (iotrace report counts their "
                    "last events)")  # fmt: skip
        if self.tail:
            out += (f"; {self.tail:,} ended by a signal or a raw exit_group syscall before the "
                    "shim's last reading (their last events counted from the trace)")  # fmt: skip
        if self.sandboxed_tail:
            out += (f"; {self.sandboxed_tail:,} installed a seccomp filter, after which the shim "
                    "makes no syscall (its last reading was just before it; the events after it "
                    "counted from the trace)")  # fmt: skip
        if self.sandboxed:
            out += (f"; {self.sandboxed:,} more installed a seccomp filter, after which the shim "
                    "makes no syscall: its last reading was just before it, left out here "
                    "(iotrace report counts the events after it)")  # fmt: skip
        if self.without_end:
            out += f"; {self.without_end:,} without counters at their end ({self._no_end})"
        if self.uring:
            out += (f"; but io_uring ran in {self.uring:,} process(es) without the stracer "
                    "(rings mapped, or liburing loaded): its I/O is in neither these counters "
                    "nor the trace, so they are not all of the job's I/O (run with the stracer; "
                    "by process: iotrace report)")  # fmt: skip
        return out


def _pct(part: int, whole: int) -> str:
    if not whole:
        return "100.0%" if not part else "more than"
    return fmt_pct(part / whole)


def run_job(trace_dir: Path, host: str, root: int) -> Job:
    """The completeness of the process tree one `iotrace run` traced (root: its command's pid),
    from the KIO records alone: the shim logs' first and last ones and the stracer's."""
    from .elf import names_liburing
    from .stracer import slog
    from .tracefile import TraceFormatError, kio_records, log_paths

    readings: dict[int, list[Reading]] = {}
    parent: dict[int, int] = {}
    stracer_events: dict[int, list[tuple[int, Vec]]] = {}
    stracer = False
    for path in slog.log_files(trace_dir):
        try:
            log = slog.read(path)
        except slog.StracerLogError:
            continue
        if log.header.get("host") != host or not any(r[2] == root for r in log.procs):
            continue
        stracer = True
        for rec in log.procs:
            if rec[4] == "fork" and isinstance(rec[3], int):
                parent[rec[2]] = rec[3]
        for rec in log.kio:
            got = stracer_reading(rec)
            if got is not None:
                readings.setdefault(got[0], []).append(got[1])
        for pid, evs in stracer_sums(log.missed).items():
            stracer_events.setdefault(pid, []).extend(evs)
    try:
        paths = log_paths(trace_dir)
    except TraceFormatError:
        paths = []
    # logs are named HOST.PID[.N].iot: under the stracer the run's pids are known, and the ranks
    # of a job sharing the directory read only their own logs
    tree = {root, *parent} if stracer else None
    paths = [p for p in paths if _log_host_pid(p.name, host, tree)]
    uring: set[int] = set()  # liburing loaded (its rings are set up with raw syscalls)
    for image, path in enumerate(paths):
        modules: list[str] = []
        try:
            header, records = kio_records(path, modules=modules)
        except (OSError, TraceFormatError):
            continue
        if isinstance(header.get("pid"), int) and (
            any(LIBURING.search(m) for m in modules)
            or (not stracer and names_liburing(str(header.get("exe") or "")))
        ):  # liburing loaded, or linked statically (its rings may be gone by the exit reading)
            uring.add(header["pid"])
        pid = header.get("pid")
        if header.get("host") != host or not isinstance(pid, int):
            continue
        if isinstance(header.get("ppid"), int) and pid != root:
            parent.setdefault(pid, header["ppid"])
        for rec in records:
            r = shim_reading(rec, image)
            if r is not None:
                readings.setdefault(pid, []).append(r)
    job = Job(stracer=stracer)
    for pid, proc in explain_all(readings, parent, stracer_events).items():
        proc.uring = "liburing" if pid in uring else proc.uring  # else "held", or none
        p, seen = pid, set()
        while p != root and p in parent and p not in seen:  # in the tree of this run?
            seen.add(p)
            p = parent[p]
        if p == root:
            job.add(proc)
    return job


def _log_host_pid(name: str, host: str, pids: set[int] | None) -> bool:
    if not name.startswith(host + "."):
        return False
    pid = name[len(host) + 1 :].split(".", 1)[0]
    return pids is None or (pid.isdigit() and int(pid) in pids)
