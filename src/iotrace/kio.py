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

import functools
import re
from collections.abc import Iterable
from pathlib import Path

from .calls import (
    KERNEL_IO_CONDS,
    KERNEL_IO_SYSCALLS,
    KERNEL_IO_UNCOUNTED,
    KIO_FIELDS,
    KIO_WHEN,
    SYSCALL_BY_NAME,
    kernel_io_args,
    kernel_io_checks,
)
from .format import (
    KI,
    KIO_NEXT,
    KIO_OWN_FIELDS,
    KIO_READING_WHEN,
    KIO_SUM_FIELDS,
    KIO_URING_FIELDS,
    SK,
    SKIO_LENS,
    SP,
    Rec,
    SRec,
)
from .record import field, record
from .units import fmt_bytes

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing for type checkers only: ~2 ms of the stracer's start (issue 19)
    from typing import Any

    from .nspid import Outer

LIBURING = re.compile(r"/liburing\.so[.\d]*$")  # a module path: io_uring's raw-syscall library
COUNTERS = ("rchar", "wchar", "syscr", "syscw")
Vec = list[int]  # rchar, wchar, syscr, syscw
# one stracer event the kernel counts: (t, its Vec, the syscall's name if a wrapper's call its
# thread died in -- class "killed": the shim never saw it return -- else "")
StEvent = tuple[int, Vec, str]


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
    # a "seccomp" reading: its log's SECCOMP counts, [records the shim had no room for after the
    # filter, calls it let through untraced (threads started after it)]
    dropped: list[int] = field(default_factory=lambda: [0, 0])
    # ... and it was the shim alone going out at the app's no_new_privs (no filter seen)
    nnp: bool = False

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
    """A shim KIO record (format.RECORDS[Rec.KIO], positions KI: pending [bytes, streams], lost
    [errno, euid], next [code]; the trailing fields since they were added); None if malformed.
    A reading the shim could not take (errno, counters []) comes back with `lost` and zero
    counters.  `shift` is added to its time."""
    try:
        _, when, t, counters, own, pending, sums = rec[: KI.uring]
        n = len(rec)
        uring = [int(x) for x in rec[KI.uring]] if n > KI.uring else [0] * len(KIO_URING_FIELDS)
        lo = rec[KI.lost] if n > KI.lost else None
        lost, euid = (int(lo[0]), int(lo[1])) if lo else (0, -1)
        nx = rec[KI.next] if n > KI.next else None
        nxt = dict(enumerate(KIO_NEXT, 1)).get(int(nx[0]), "") if nx else ""
        if lost and not counters:
            counters = [0] * len(KIO_FIELDS)
        r = Reading("shim", KIO_WHEN[when], int(t) + shift, image, [int(x) for x in counters],
                    [int(x) for x in own], int(pending[0]), int(pending[1]),
                    sums=[int(x) for x in sums], uring=uring, lost=lost, euid=euid,
                    next=nxt)  # fmt: skip
    except (ValueError, TypeError, IndexError):
        return None
    ok = len(r.counters) == len(KIO_FIELDS) and len(r.own) == len(KIO_OWN_FIELDS)
    ok = ok and len(r.sums) == len(KIO_SUM_FIELDS)
    ok = ok and len(r.uring) == len(KIO_URING_FIELDS)
    return r if ok else None


def stracer_reading(rec: list[Any], shift: int = 0) -> tuple[int, Reading] | None:
    """(pid, reading) of a stracer KIO record (format.SKIO); None if malformed.  own: the I/O of
    the threads the shim started, the shim's own.  threads (at the end): the sum of each
    thread's own counters -- the process's I/O without its children's.  shim (at the end,
    version 8): the shim's own I/O and its events' sums in its memory.  when: "end" (the
    process's last exit stop, or `iotrace attach`'s detach) or "exec" (an exec into a program
    no shim starts in: the kernel's reads of it are done, the program's own I/O not begun) or
    "attach" (`iotrace attach`: where its trace begins)."""
    try:
        _, t, pid, counters, own, when = rec[: SK.threads]
        if when not in ("end", "exec", "attach"):
            return None
        threads, shim = (rec[i] if len(rec) > i else None for i in (SK.threads, SK.shim))
        r = Reading("stracer", when, int(t) + shift, -1, [int(x) for x in counters],
                    [int(x) for x in own],
                    threads=[int(x) for x in threads] if threads is not None else None,
                    shim=[int(x) for x in shim] if shim is not None else None)  # fmt: skip
        if r.threads is not None and len(r.threads) != SKIO_LENS["threads"]:
            return None
        if r.shim is not None and len(r.shim) != SKIO_LENS["shim"]:
            return None
    except (ValueError, TypeError, IndexError):
        return None
    return (int(pid), r) if len(r.counters) == len(KIO_FIELDS) else None


def _add(a: Vec, b: Vec, sign: int = 1) -> Vec:
    return [x + sign * y for x, y in zip(a, b, strict=True)]


def counted(checks: str, err: int, off: int = 0, count: int = 0) -> bool:
    """Whether the kernel counts a call (in syscr or syscw) that failed with err, of those checks
    (calls.KERNEL_IO_UNCOUNTED), its offset and count arguments (0: none) -- the rule of
    iot_kio_counted (calls.kio_c_header), which the shim and the stracer's loop apply."""
    if not err:
        return True
    for e, cond in KERNEL_IO_UNCOUNTED[checks]:
        arg, bound = KERNEL_IO_CONDS[cond]
        if e == err and (
            not arg
            or (arg == "count" and count % (1 << 64) > bound)
            or (arg == "off" and off < bound)
        ):
            return False
    return True


def event_sums(
    mode: str, ret: int | None, err: int, nbytes: int = 0, checks: str = "fd", off: int = 0,
    count: int = 0,
) -> list[int]:  # fmt: skip
    """One call counted the kernel's way (a KERNEL_IO_* mode, its checks, offset and count:
    counted): [rchar, wchar, syscr, syscw, stdio bytes read, stdio bytes written] -- as the
    shim's iot_kio_add counts its events."""
    moved = ret if isinstance(ret, int) and ret > 0 else 0
    ok = int(moved > 0) if mode == "rwm" else int(counted(checks, err, off, count))
    out = [0] * 6
    if mode in ("r", "rw", "rwm"):
        out[0], out[2] = moved, ok
    if mode in ("w", "rw", "rwm"):
        out[1], out[3] = moved, ok
    if mode == "sr":  # stdio's refill or flush: one read or write syscall each
        out[4], out[2] = nbytes, ok
    if mode == "sw":
        out[5], out[3] = nbytes, ok
    return out


def _arg(args: Any, i: int) -> int:
    """An integer argument of a recorded syscall (0: none or not a number)."""
    try:
        v = args[i] if i >= 0 else 0
    except (IndexError, TypeError):
        return 0
    return v if isinstance(v, int) else 0


def syscall_sums(records: Iterable[tuple[str, int | None, int, Any]]) -> Vec:
    """rchar, wchar, syscr, syscw of the stracer's records: (syscall, ret, errno, its args)."""
    out = [0, 0, 0, 0]
    for name, ret, err, args in records:
        mode = KERNEL_IO_SYSCALLS.get(name)
        if mode:
            offarg, countarg = kernel_io_args(SYSCALL_BY_NAME[name])
            off, count = _arg(args, offarg), _arg(args, countarg)
            sums = event_sums(mode, ret, err, 0, kernel_io_checks(name), off, count)
            out = _add(out, sums[:4])
    return out


def stracer_sums(missed: Iterable[list[Any]], shift: int = 0) -> dict[int, list[StEvent]]:
    """pid -> (t + shift, sums, killed) of the stracer's MISSED records that the kernel counts:
    not the operations an asynchronous engine carried out (`via`: io_uring, aio), which are no
    syscall.  killed: the syscall's name for a call of class "killed", else ""."""
    out: dict[int, list[StEvent]] = {}
    for rec in missed:
        try:
            if len(rec) > 17 and rec[17] is not None:
                continue
            sums = syscall_sums([(rec[4], rec[6], rec[7], rec[5])])
            if any(sums):
                killed = str(rec[4]) if len(rec) > 12 and rec[12] == "killed" else ""
                out.setdefault(int(rec[2]), []).append((int(rec[1]) + shift, sums, killed))
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
    # shim's sums, it is exact), and the records it had no room for are lost (preload/sandbox.c):
    # 1; 2: it set no_new_privs, where the shim alone goes out, and no filter was seen
    sandboxed: int = 0
    # without counters at its end, its last reading a shim's at an image's start: the least the
    # kernel added to its parent at the wait (that reading and, unless floor_partial, the
    # image's events after it), and the last of those times (_kio.c's unended)
    floor: Vec | None = None
    floor_t: int = 0
    floor_partial: bool = False
    # reaped children without counters at their end, taken off `kernel` by their floors; some
    # of whose floors lack their last events (iotrace run's line: it reads no log whole)
    unended: int = 0
    unended_partial: bool = False
    # of `events`: the calls its threads died in (class "killed"), by syscall: their Vec
    died_in: dict[str, Vec] = field(default_factory=dict)
    # its images' SECCOMP counts: records dropped (no room left), calls let through untraced
    dropped: list[int] = field(default_factory=lambda: [0, 0])
    # an exec after the app's seccomp filter: the kernel's reads of the program and its loader
    # at it are not known (the image took no reading before it; the stracer's is after them)
    exec_unread: bool = False
    # of final's wchar: stdio's final flush as recorded, which may have written less (SIGPIPE)
    final_pending: int = 0

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
        """Why the trace explains less (or more) than the kernel counted, and what the shim could
        not record after the app's seccomp filter; "" when it all adds up."""
        cause, lost = self._cause(stracer), self.dropped_text(stracer)
        return f"{cause}; {lost}" if cause and lost else cause or lost

    def dropped_text(self, stracer: bool) -> str:
        """What the shim could not record after the app's seccomp filter (preload/sandbox.c)."""
        out = []
        if self.dropped[0]:
            out.append(f"{self.dropped[0]:,} records dropped after the app's seccomp filter "
                       "(the shim had no room left in its log, and making more is a syscall): "
                       "those events are not in the trace")  # fmt: skip
        if self.dropped[1] and not stracer:
            out.append(f"{self.dropped[1]:,} calls of threads the shim had not set up before "
                       "the app's seccomp filter went untraced (setting one up takes a "
                       "syscall): run with the stracer to record them")  # fmt: skip
        return "; ".join(out)

    def _cause(self, stracer: bool) -> str:
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
        if tb < kb and self.unended:
            # the kernel added each child's final counters at the wait; the trace has them but
            # for what came after the child's shim's last reading and is no event
            alone = "" if stracer else "; or raw syscalls the shim alone does not see"
            return (f"{kb - tb:,} bytes in {max(kc - tc, 0):,} calls unexplained: likely of the "
                    f"{self.unended:,} child process(es) it reaped that had no counters at "
                    "their end (killed?), whose I/O the kernel adds to its parent's: the trace "
                    "holds theirs but a call in flight when they died (a write cut short by "
                    "SIGPIPE, and what the stdio call it was in wrote before it) and the shim's "
                    f"own I/O after its last reading{alone}")  # fmt: skip
        if tb < kb:
            what = f"{kb - tb:,} bytes in {max(kc - tc, 0):,} calls"
            if not stracer:
                return (f"{what} the shim did not see (raw syscalls, a static or Go program, "
                        "a library's own I/O): run with the stracer to see them")  # fmt: skip
            if self.tail and self.sandboxed and self.dropped[0]:
                return f"{what} not in the trace"  # dropped_text says why
            if self.exec_unread:
                return (f"{what} unexplained: the kernel's reads of the program's and its "
                        "loader's headers at its exec under the app's seccomp filter (the "
                        "shim makes no syscall under it, so no reading was taken just before "
                        "the exec; the stracer's is after them)")  # fmt: skip
            if self.tail and self.sandboxed:
                did = "set no_new_privs" if self.sandboxed == 2 else "installed a seccomp filter"
                return (f"{what} unexplained (the app {did}, after which "
                        "the shim makes no syscall)")  # fmt: skip
            if self.tail and self.died_in:
                return (f"{what} unexplained: likely what the stdio call it died in wrote or read "
                        "before the call cut short (a stdio call's flushes and refills are "
                        "recorded when it returns, and the stracer does not stop for stdio's "
                        "buffers), or the shim's own I/O after its last reading")  # fmt: skip
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
            e, k = self.explained, self.kernel
            which = [w for w, short in (
                ("stdio's reads of a pipe or terminal that returned less than asked", k[2] > e[2]),
                ("a line-buffered stdio stream's writes, a line each", k[3] > e[3]),
            ) if short]  # fmt: skip
            return (f"{kc - tc:,} calls unexplained, likely {' and '.join(which)}, more than "
                    "one in a call (their bytes are traced)")  # fmt: skip
        if tc != kc:
            return f"{abs(kc - tc):,} calls {'unexplained' if tc < kc else 'more than counted'}"
        return ""


def explain(
    readings: list[Reading],
    stracer_events: list[StEvent],
    shim_events: dict[int, list[tuple[int, list[int]]]] | None = None,
) -> Process:
    """One process: its readings (any order), its stracer events as (t, sums of one event), and
    if known its shim events by image as (t, sums of one event: Vec + stdio read, written), for
    an image whose shim had no reading at its end (killed by a signal): its events after its
    last reading count from them (the inner I/O of "in" calls there excepted).  Computed by
    _kio.c (iot_kio_explain), which the C launcher shares."""
    c = _c()
    ffi, lib = c.ffi, c.lib
    rs = ffi.new("struct iot_kio_reading[]", max(len(readings), 1))
    for i, r in enumerate(readings):
        _reading_to_c(r, rs[i])
    st = ffi.new("struct iot_kio_event[]", max(len(stracer_events), 1))
    for i, (t, sums, _) in enumerate(stracer_events):
        st[i].t, st[i].sums = t, [*sums, 0, 0]
    images = {r.image for r in readings if r.source == "shim"}
    mine = [(im, t, d) for im in images for t, d in (shim_events or {}).get(im, [])]
    sh = ffi.new("struct iot_kio_event[]", max(len(mine), 1))
    for i, (im, t, d) in enumerate(mine):
        sh[i].t, sh[i].image, sh[i].sums = t, im, d
    out = ffi.new("struct iot_kio_process *")
    lib.iot_kio_explain(rs, len(readings), st, len(stracer_events), sh, len(mine),
                        shim_events is not None, out)  # fmt: skip
    p = _process(out)
    for t, sums, killed in stracer_events:
        if killed and p.end is not None and t <= p.end_t:
            p.died_in[killed] = _add(p.died_in.get(killed, [0, 0, 0, 0]), sums)
    if p.end is None and readings:
        p.why = no_end_why(sorted(readings, key=lambda r: r.t)[-1])
    return p


_WHEN = {w: i for i, w in enumerate(KIO_READING_WHEN)}  # _kio.c's codes (iot_format.h)
_END = (None, "stracer", "shim at exit")
_URING = ("", "liburing", "rings", "held")
_NEXT = ("", *KIO_NEXT)
_KINDS = ("", "ids", "fds", "setid", "unread", "seccomp", "nnp")  # _kio.h IOT_KIO_NO_END_KINDS


def _reading_to_c(r: Reading, x: Any) -> None:
    x.source = r.source == "stracer"
    x.when = _WHEN[r.when]
    x.t, x.image = r.t, r.image
    x.counters, x.own, x.sums, x.uring = r.counters[:7], r.own, r.sums, r.uring
    x.pending, x.streams = r.pending, r.pending_streams
    x.lost, x.euid, x.next = r.lost, r.euid, _NEXT.index(r.next)
    if r.threads is not None:
        x.has_threads, x.threads = 1, r.threads
    if r.shim is not None:
        x.has_shim, x.shim = 1, r.shim
    x.dropped, x.nnp = r.dropped, r.nnp


def _process(c: Any) -> Process:
    return Process(_END[c.end], list(c.kernel), list(c.events), list(c.stdio),
                   list(c.before_shim), list(c.own), list(c.children), c.end_t, bool(c.alone),
                   bool(c.unfinished), bool(c.tail), list(c.final), list(c.storage),
                   _URING[c.uring], (_KINDS[c.why], ""), bool(c.attached), _NEXT[c.nolog],
                   c.nolog_uid, bool(c.shimmed), int(c.sandboxed),
                   list(c.floor) if c.has_floor else None, c.floor_t, bool(c.floor_partial),
                   c.unended, bool(c.unended_partial), dropped=list(c.dropped),
                   exec_unread=bool(c.exec_unread), final_pending=c.final_pending)  # fmt: skip


def _to_c(p: Process, c: Any) -> None:
    c.end = _END.index(p.end)
    c.kernel, c.events, c.stdio, c.before_shim = p.kernel, p.events, p.stdio, p.before_shim
    c.own, c.children, c.final, c.storage = p.own, p.children, p.final, p.storage
    c.end_t, c.alone, c.unfinished, c.tail = p.end_t, p.alone, p.unfinished, p.tail
    c.uring, c.why, c.attached = _URING.index(p.uring), _KINDS.index(p.why[0]), p.attached
    c.nolog, c.nolog_uid, c.shimmed = _NEXT.index(p.nolog), p.nolog_uid, p.shimmed
    c.sandboxed = p.sandboxed
    c.has_floor = p.floor is not None
    c.floor, c.floor_t, c.floor_partial = p.floor or [0] * 4, p.floor_t, p.floor_partial
    c.unended, c.unended_partial = p.unended, p.unended_partial
    c.dropped, c.exec_unread, c.final_pending = p.dropped, p.exec_unread, p.final_pending


class _Native:
    def __init__(self) -> None:
        from iotrace.native import ffi, library

        path = library("iotrace", "_kio", "kio")
        if path is None:
            raise RuntimeError("iotrace's C code (_kio.so) is missing: reinstall iotrace")
        header = Path(__file__).with_name("_kio.h").read_text()
        cdef = header.split("#include <stdint.h>", 1)[1].rsplit("#endif", 1)[0]
        cdef = cdef.replace("IOT_KIO_NO_END_KINDS]", f"{len(_KINDS)}]")
        cdef = "\n".join(ln for ln in cdef.splitlines() if not ln.startswith("#define"))
        self.ffi = ffi("kio", cdef)
        self.lib: Any = self.ffi.dlopen(str(path))


@functools.lru_cache(maxsize=1)
def _c() -> _Native:
    return _Native()


EMFILE = 24


def no_end_said(kind: str) -> str:
    """The job line's short text for one of no_end_why's kinds (_kio.c has the texts)."""
    c = _c()
    return c.ffi.string(c.lib.iot_kio_no_end_said(_KINDS.index(kind))).decode()


def no_end_why(r: Reading) -> tuple[str, str]:
    """(kind, text): why a process whose last reading is `r` has no counters at its end, where
    the shim said it (a reading it could not take, an exec into an image that can have no log);
    ("", "") otherwise (killed, a raw exit_group, still running: not known)."""
    import os

    x = _c().ffi.new("struct iot_kio_reading *")
    _reading_to_c(r, x)
    kind = _KINDS[_c().lib.iot_kio_no_end_kind(x)]  # the decision is _kio.c's
    if kind == "ids" and r.lost:
        return ("ids", f"its ids changed (effective uid {r.euid} at its {r.when}): a process "
                "that changes its ids is no longer dumpable, its /proc/self/io is root's, and "
                "the shim could not read its counters there (it was not killed)")  # fmt: skip
    if kind == "fds":
        how = (
            "it had used all of its ulimit -n"
            if r.lost == EMFILE
            else "the system's file table was full"
        )
        return ("fds", f"no fd left for the shim's reading of /proc/self/io at its {r.when} "
                f"({how}): its counters then are not known (it was not killed)")  # fmt: skip
    if kind == "unread":
        return ("unread", f"the shim could not read /proc/self/io at its {r.when}: "
                f"{os.strerror(r.lost)}")  # fmt: skip
    if kind == "seccomp":
        return ("seccomp", "the app installed a seccomp filter, after which the shim makes no "
                "syscall: it read them just before (it was not killed)")  # fmt: skip
    if kind == "nnp":
        return ("nnp", "the app set no_new_privs (the shim alone goes out there: a seccomp filter "
                "it cannot see may follow), after which the shim makes no syscall: it read them "
                "just before (it was not killed)")  # fmt: skip
    if kind == "setid":
        return ("setid", "it exec'd a set-user-ID or set-group-ID program, which runs without "
                "the shim (secure execution: the loader ignores LD_PRELOAD there): nothing "
                "after the exec is traced")  # fmt: skip
    if kind == "ids":
        return ("ids", f"it exec'd as uid {r.euid}, which cannot write the trace directory: "
                "the program it exec'd, and the processes that started, have no log (a process "
                "whose uid changed gets no write access to iotrace's files)")  # fmt: skip
    return ("", "")


def explain_all(
    readings: dict[Any, list[Reading]],
    parent: dict[Any, Any],
    stracer_events: dict[Any, list[StEvent]],
    shim_events: dict[int, list[tuple[int, list[int]]]] | None = None,
) -> dict[Any, Process]:
    """Every process (by key: pid, or (host, pid)).  A process's counters include those of the
    children it reaped (the kernel adds them at the wait).  The stracer's end reading has the
    process's own, its threads' sum; without it a child that ended before its parent's end
    reading is taken for reaped by it, and its final counters taken off the parent's, if they
    fit in what the parent's trace leaves unexplained (the largest child first): a child left a
    zombie, or reaped with SIGCHLD ignored, is in no parent's counters."""
    procs = {
        k: explain(rs, stracer_events.get(k, []), None if shim_events is None else shim_events)
        for k, rs in readings.items()
    }
    return link(procs, parent)


def link(procs: dict[Any, Process], parent: dict[Any, Any]) -> dict[Any, Process]:
    """explain_all's second step, once every process is explained (the analyzer explains parts
    of a trace apart): each parent's counters less the children it reaped (_kio.c).  Returns
    copies, `procs` untouched: linked twice (the report merges its parts again when the span
    it guessed was off) a parent would lose its children twice."""
    return dict(Packed(procs).linked(parent))


class Packed:
    """Explained processes by key (as explain_all's), held as the C records link works on:
    ~0.5 KB a process where a Process is ~1.9 KB of objects (a 20,002-process trace's merge
    held 39 MB of them, and link's copies).  What C has no room for, the shim's words on why
    a process has no end reading and the calls its threads died in, is kept beside, for the
    few that have any.  A key added again takes the new process in the first one's place, as
    a dict's update."""

    def __init__(self, procs: dict[Any, Process] | None = None) -> None:
        self.keys: list[Any] = []
        self.data = bytearray()
        self.extra: dict[int, tuple[str, dict[str, Vec]]] = {}  # by index: why's text, died_in
        self._at: dict[Any, int] = {}
        if procs:
            self.update(procs)

    def __len__(self) -> int:
        return len(self.keys)

    def update(self, procs: dict[Any, Process] | Packed) -> None:
        c = _c()
        size = c.ffi.sizeof("struct iot_kio_process")
        if isinstance(procs, Packed):
            items = [(k, procs.data[i * size : (i + 1) * size], procs.extra.get(i))
                     for i, k in enumerate(procs.keys)]  # fmt: skip
        else:
            cp = c.ffi.new("struct iot_kio_process[]", max(len(procs), 1))
            items = []
            for i, (k, p) in enumerate(procs.items()):
                _to_c(p, cp[i])
                more = (p.why[1], p.died_in) if p.why[1] or p.died_in else None
                items.append((k, c.ffi.buffer(cp + i, size)[:], more))
        for k, raw, more in items:
            i = self._at.get(k)
            if i is None:
                i = self._at[k] = len(self.keys)
                self.keys.append(k)
                self.data += raw
            else:
                self.data[i * size : (i + 1) * size] = raw
            if more is None:
                self.extra.pop(i, None)
            else:
                self.extra[i] = more

    def __getstate__(self) -> tuple[list[Any], bytes, dict[int, tuple[str, dict[str, Vec]]]]:
        return self.keys, bytes(self.data), self.extra

    def __setstate__(self, state: tuple[list[Any], bytes, dict[int, Any]]) -> None:
        self.keys, data, self.extra = state
        self.data = bytearray(data)
        self._at = {k: i for i, k in enumerate(self.keys)}

    def linked(
        self, parent: dict[Any, Any], ordered: bool = False
    ) -> Iterable[tuple[Any, Process]]:
        """link's processes (key, Process), made one at a time (in the keys' order if
        `ordered`, else as added)."""
        c = _c()
        n = len(self.keys)
        cp = c.ffi.new("struct iot_kio_process[]", max(n, 1))
        c.ffi.memmove(cp, self.data, len(self.data))
        par = c.ffi.new("int64_t[]", [self._at.get(parent.get(k), -1) for k in self.keys] or [0])
        c.lib.iot_kio_link(cp, n, par)
        order = sorted(range(n), key=self.keys.__getitem__) if ordered else range(n)
        for i in order:
            p = _process(cp[i])
            if i in self.extra:
                why, p.died_in = self.extra[i]
                p.why = (p.why[0], why)
            yield self.keys[i], p


@record
class Job:
    kernel_bytes: int = 0
    explained_bytes: int = 0
    kernel_calls: int = 0
    explained_calls: int = 0
    stdio_calls: int = 0  # calls short where stdio's bytes add up: its short reads of pipes
    stdio_writes: int = 0  # of those, writes: a line-buffered stream's, a line a syscall
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
    sandboxed_nnp: int = 0  # of those, the ones that set no_new_privs and installed no filter seen
    sandboxed_tail_nnp: int = 0
    short_reaped: int = 0  # of the short, processes that reaped a child without end counters
    reaped: int = 0  # left out: they reaped a child whose last events the line cannot count
    # the processes' SECCOMP counts (records dropped, calls untraced), the processes with any,
    # and the one with the most: pid, command's name (said by the line)
    dropped: list[int] = field(default_factory=lambda: [0, 0])
    dropped_procs: int = 0
    dropped_pid: int = 0
    dropped_most: int = 0
    dropped_command: str = ""
    # logs of processes whose parent is outside their PID namespace (ppid 0): unshare -p, a
    # container; they and the processes in it are named by their pids in it, not this run's
    pidns: int = 0

    def _c(self) -> Any:
        j = _c().ffi.new("struct iot_kio_job *")
        for name in _JOB_FIELDS:
            setattr(j, "short_" if name == "short" else name, int(getattr(self, name)))
        j.no_end = [self.no_end.get(k, 0) for k in _KINDS]
        j.dropped = self.dropped
        j.dropped_command = self.dropped_command.encode(errors="surrogateescape")[:63]
        return j

    def add(self, p: Process, pid: int = 0, command: str = "") -> None:
        """Adds the process `pid` running `command` (named by the line if it dropped most)."""
        self.add_all([(p, pid, command)])

    def add_all(self, procs: Iterable[tuple[Process, int, str]]) -> None:
        """add of each (process, pid, command), summed in C meanwhile: add's copies of every
        field both ways took ~30 us a process, seconds of a report of 100,000 processes."""
        c = _c()
        j, cp = self._c(), c.ffi.new("struct iot_kio_process *")
        for p, pid, command in procs:
            _to_c(p, cp)
            c.lib.iot_kio_job_add(j, cp, pid, command.encode(errors="surrogateescape"))
        for name in _JOB_FIELDS:
            setattr(self, name, getattr(j, "short_" if name == "short" else name))
        self.stracer = bool(self.stracer)
        self.no_end = {k: n for k, n in zip(_KINDS, j.no_end, strict=True) if n}
        self.dropped = list(j.dropped)
        self.dropped_command = c.ffi.string(j.dropped_command).decode(errors="surrogateescape")

    def line(self) -> str:
        """The job's completeness in one line (`iotrace run`'s last, `report`'s first)."""
        c = _c()
        buf = c.ffi.new("char[]", 8192)
        n = c.lib.iot_kio_job_line(self._c(), buf, len(buf))
        return c.ffi.string(buf, n).decode()


_JOB_FIELDS = ("kernel_bytes", "explained_bytes", "kernel_calls", "explained_calls",
               "stdio_calls", "stdio_writes", "processes", "without_end", "short", "short_bytes",
               "unfinished", "tail", "uring", "stracer", "attached", "sandboxed", "sandboxed_tail",
               "sandboxed_nnp", "sandboxed_tail_nnp",
               "short_reaped", "reaped", "dropped_procs", "dropped_pid",
               "dropped_most", "pidns")  # fmt: skip


@record
class StracerPart:
    """What run_job needs of one stracer's log: its header's host, its PROC and KIO records, and
    its MISSED records' sums (stracer_sums) -- read from the log, or kept by the stracer as it
    wrote them (its run's end line then reads no record of its log back)."""

    host: str
    procs: list[list[Any]] = field(default_factory=list)
    kio: list[list[Any]] = field(default_factory=list)
    events: dict[int, list[StEvent]] = field(default_factory=dict)


def _stracer_parts(trace_dir: Path) -> Iterable[StracerPart]:
    from .stracer import slog

    for path in slog.log_files(trace_dir):
        try:  # the STOP records (most of a log) are not needed here: not even checked
            log = slog.read(path, stops=False, skip=frozenset({SRec.STOP}))
        except slog.StracerLogError:
            continue
        yield StracerPart(str(log.header.get("host")), log.procs, log.kio,
                          stracer_sums(log.missed))  # fmt: skip


def run_job(trace_dir: Path, host: str, root: int, mine: StracerPart | None = None) -> Job:
    """The completeness of the process tree one `iotrace run` traced (root: its command's pid),
    from the KIO records alone: the shim logs' first and last ones and the stracer's -- `mine`
    when the stracer that traced root gives it, else its log read back.  Its processes are
    (pid, start) (iotrace.incarnation: a pid reused in the run is another process)."""
    from .elf import names_liburing
    from .incarnation import FORK, FORKED_LOG, IMAGE, of, starts
    from .nspid import Outer
    from .tracefile import TraceFormatError, kio_records, log_paths

    items: dict[int, list[tuple[int, int]]] = {}  # pid -> what began or continued a process
    forks: list[tuple[int, int, int]] = []  # the stracer's: (t, pid, ppid)
    st_readings: list[tuple[int, Reading]] = []
    stracer_events: dict[int, list[StEvent]] = {}
    stracer = False
    procs: list[list[Any]] = []  # the stracer's PROC records: for the logs of PID namespaces
    for part in [mine] if mine is not None else _stracer_parts(trace_dir):
        if part.host != host or not any(r[SP.pid] == root for r in part.procs):
            continue
        stracer = True
        procs += part.procs
        for rec in part.procs:
            if rec[SP.what] == "fork" and isinstance(rec[SP.ppid], int):
                forks.append((int(rec[SP.t]), rec[SP.pid], rec[SP.ppid]))
                items.setdefault(rec[SP.pid], []).append((int(rec[SP.t]), FORK))
        for rec in part.kio:
            got = stracer_reading(rec)
            if got is not None:
                st_readings.append(got)
        for pid, evs in part.events.items():
            stracer_events.setdefault(pid, []).extend(evs)
    try:
        paths = log_paths(trace_dir)
    except TraceFormatError:
        paths = []
    # logs are named HOST.PID[.N].iot: under the stracer the run's pids are known, and the ranks
    # of a job sharing the directory read only their own logs
    tree = {root, *(pid for _, pid, _ in forks)} if stracer else None
    mine = [p for p in paths if _log_host_pid(p.name, host, tree)]
    outer = Outer(procs)  # logs named by pids in a namespace of their own: the run's
    # (a set: a list's `in` made these O(logs^2): 40,000 logs kept a run going for an hour)
    chosen = set(mine)
    mine += [p for p in paths if p not in chosen and outer and _in_run(p, host, outer, tree)]
    chosen = set(mine)
    pidns = {pid for p in paths if p not in chosen and (pid := _pidns(p, host)) is not None}
    paths = mine
    # each log: its pid, start (the header's clock.mono: the stracer's clock), and what it holds
    images: list[tuple[int, int, dict[str, Any], list[Reading], bool]] = []
    for image, path in enumerate(paths):
        modules: list[str] = []
        try:
            header, records = kio_records(path, modules=modules)
        except (OSError, TraceFormatError):
            continue
        outer.header(header)
        pid = header.get("pid")
        if header.get("host") != host or not isinstance(pid, int):
            continue
        clock = header.get("clock")
        t = clock.get("mono") if isinstance(clock, dict) else None
        t = t if isinstance(t, int) else 0
        items.setdefault(pid, []).append((t, FORKED_LOG if header.get("forked") else IMAGE))
        # liburing loaded, or linked statically (its rings may be gone by the exit reading)
        liburing = any(LIBURING.search(m) for m in modules) or (
            not stracer and names_liburing(str(header.get("exe") or ""))
        )
        seccomp = [r for r in records if r[0] == Rec.SECCOMP]
        dropped = [[int(x) for x in (*r[2:4], 0)[:2]] for r in seccomp]
        readings = []
        for rec in records:
            r = shim_reading(rec, image) if rec[0] == Rec.KIO else None
            if r is not None:
                if r.when == "seccomp" and dropped:  # its SECCOMP record's counts
                    r.dropped, r.nnp = dropped[0], len(seccomp[0]) > 4 and bool(seccomp[0][4])
                readings.append(r)
        images.append((pid, t, header, readings, liburing))
    begins = {pid: starts(its) for pid, its in items.items()}

    def key(pid: int, t: int) -> tuple[int, int]:
        return (pid, of(begins.get(pid, [0]), t))

    readings_of: dict[tuple[int, int], list[Reading]] = {}
    parent: dict[tuple[int, int], tuple[int, int]] = {}
    for t, pid, ppid in forks:
        parent[key(pid, t)] = key(ppid, t)
    for pid, r in st_readings:
        readings_of.setdefault(key(pid, r.t), []).append(r)
    st_events: dict[tuple[int, int], list[StEvent]] = {}
    for pid, evs in stracer_events.items():
        for ev in evs:
            st_events.setdefault(key(pid, ev[0]), []).append(ev)
    uring: set[tuple[int, int]] = set()  # liburing loaded (its rings are set up with raw syscalls)
    exe: dict[tuple[int, int], str] = {}
    for pid, t, header, readings, liburing in images:
        k = key(pid, t)
        if liburing:
            uring.add(k)
        if isinstance(header.get("ppid"), int) and pid != root:
            parent.setdefault(k, key(header["ppid"], t))
        exe.setdefault(k, str(header.get("exe") or ""))
        for r in readings:
            readings_of.setdefault(k, []).append(r)
    job = Job(stracer=stracer)
    pidns |= {h["pid"] for _, _, h, _, _ in images if h.get("ppid") == 0 and h["pid"] != root}
    job.pidns = len(pidns)
    top = key(root, 0)
    for k, proc in explain_all(readings_of, parent, st_events).items():
        proc.uring = "liburing" if k in uring else proc.uring  # else "held", or none
        p, seen = k, set()
        while p != top and p in parent and p not in seen:  # in the tree of this run?
            seen.add(p)
            p = parent[p]
        if p == top:
            job.add(proc, k[0], exe.get(k, ""))
    return job


def _header(path: Path, host: str) -> dict[str, Any] | None:
    """The header of a log of `host` (None: another host's, or unreadable)."""
    from .tracefile import TraceFormatError, kio_records

    if not _log_host_pid(path.name, host, None):
        return None
    try:
        return kio_records(path, limit=1)[0]
    except (OSError, TraceFormatError):
        return None


def _in_run(path: Path, host: str, outer: Outer, tree: set[int] | None) -> bool:
    """Whether the log of `host` is of a process in a PID namespace of its own that is in the
    run's `tree` (iotrace.nspid)."""
    header = _header(path, host)
    if header is None:
        return False
    return outer.header(header) is not None and (tree is None or header["pid"] in tree)


def _pidns(path: Path, host: str) -> int | None:
    """The pid of a log of `host` whose process began a PID namespace of its own (its parent
    outside it: ppid 0), so its pid and its children's are not the run's; else None."""
    header = _header(path, host) or {}
    pid = header.get("pid")
    return pid if header.get("ppid") == 0 and isinstance(pid, int) else None


def run_line(trace_dir: Path, host: str, root: int, mine: StracerPart | None = None) -> str:
    """`iotrace run`'s closing line: what the trace explains of the kernel's count of the I/O of
    the process tree of `root` (the stracer says it for a full run, with `mine`, the launcher
    for the shim alone: launcher/end.c; `iotrace attach` too)."""
    try:
        return run_job(trace_dir, host, root, mine).line()
    except Exception as exc:  # the run's own status matters more than this line
        return f"completeness not computed ({exc.__class__.__name__}: {exc})"


def _log_host_pid(name: str, host: str, pids: set[int] | None) -> bool:
    if not name.startswith(host + "."):
        return False
    pid = name[len(host) + 1 :].split(".", 1)[0]
    return pids is None or (pid.isdigit() and int(pid) in pids)
