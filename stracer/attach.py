"""`iotrace attach PID`: record the I/O syscalls of a running process, its threads and the
children it starts from then on, until Ctrl-C or SIGTERM, then detach and leave it running
(docs/attach.md).

A process already running cannot be given the seccomp filter `iotrace run` installs before
exec: a filter can only be installed by the process itself, and once in place it cannot be
removed, so one injected now would make every I/O syscall fail with ENOSYS after the detach.
Attach therefore stops the threads at every syscall (PTRACE_SEIZE, then PTRACE_SYSCALL: two
stops per syscall, I/O or not) and tells entry from exit with PTRACE_GET_SYSCALL_INFO.  The I/O
syscalls of the one table (calls.SYSCALLS) are decoded as the stracer decodes them and written
to a stracer log, class "attached" (docs/format.md, "The stracer log"), read by report, export
and missed --all like any other.
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import time
from typing import Any

from iotrace.stracer import _ffi as F
from iotrace.stracer.slog import SRec, Writer
from iotrace.stracer.syscall_args import Plan, decode_args, fd_path, plan, target
from iotrace.stracer.tracer import RESTARTS, read_kio

from iotrace.calls import SYSCALL_BY_NR, Syscall
from iotrace.kio import syscall_sums
from iotrace.record import field, record
from iotrace.tracedir import TraceDir

PTRACE_DETACH = 17
PTRACE_GET_SYSCALL_INFO = 0x420E
INFO_ENTRY, INFO_EXIT = 1, 2
WALL = 0x40000000  # __WALL: threads too
OPTIONS = (F.O_TRACESYSGOOD | F.O_TRACEFORK | F.O_TRACEVFORK | F.O_TRACECLONE | F.O_TRACEEXEC
           | F.O_TRACEEXIT)  # fmt: skip
GROUP_STOPS = {signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU}
CLASS = "attached"

# struct ptrace_syscall_info (linux/ptrace.h): op, pad, arch, ip, sp, then at 24 the entry's
# nr and six args, or the exit's rval and is_error
INFO_SIZE = 88
INFO_ENTRY_FMT = struct.Struct("<B3xIQQQ6Q")
INFO_EXIT_FMT = struct.Struct("<B3xIQQqB")


class AttachError(Exception):
    """The process cannot be attached (one line)."""


class Detach(Exception):
    """Ctrl-C or SIGTERM: detach now."""


@record
class Pending:
    t: int
    sc: Syscall
    args: list[Any]
    fd: int | None
    path: str | None


@record
class Attached:
    pid: int
    log: Writer
    tids: dict[int, int] = field(default_factory=dict)  # tid -> its process (tgid)
    pending: dict[int, Pending] = field(default_factory=dict)
    plans: dict[int, Plan] = field(default_factory=dict)
    calls: int = 0
    children: set[int] = field(default_factory=set)
    waiting: bool = False  # in waitpid: where Ctrl-C may interrupt (Detach)
    ending: bool = False  # Ctrl-C or SIGTERM came: detach at the next chance
    # the kernel's I/O counters (docs/attach.md, "Completeness"): per process, the last exit
    # stop's reading; per thread, its own counters at its exit stop
    kio: dict[int, tuple[int, list[int]]] = field(default_factory=dict)
    thread_io: dict[int, dict[int, list[int]]] = field(default_factory=dict)
    # per process: the calls the detach's own interrupt cut (restarted after it), as counted
    cut: dict[int, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.info = F.ffi.new("char[]", INFO_SIZE)
        self.mem = F.Mem()

    def seize(self) -> None:
        """Every thread of the process, stopped once (PTRACE_INTERRUPT) to start its syscall
        stops.  Threads started meanwhile are seized on a second look."""
        for _ in range(3):
            try:
                tids = [int(t) for t in os.listdir(f"/proc/{self.pid}/task")]
            except OSError:
                raise AttachError(f"no process {self.pid}") from None
            new = [t for t in tids if t not in self.tids]
            if not new:
                break
            for tid in new:
                if F.ptrace_raw(F.PTRACE_SEIZE, tid, F.ffi.NULL, F.ffi.cast("void *", OPTIONS)):
                    err = F.ffi.errno
                    if tid == self.pid:
                        raise AttachError(f"cannot attach to {self.pid}: {os.strerror(err)}")
                    continue  # a thread that just ended
                self.tids[tid] = self.pid
                F.ptrace_raw(F.PTRACE_INTERRUPT, tid, F.ffi.NULL, F.ffi.NULL)
        # every thread stopped (its first stop, handled after): the kernel's counters now are
        # where the trace begins
        first = []
        for tid in list(self.tids):
            try:
                first.append(os.waitpid(tid, WALL))
            except ChildProcessError:
                self.tids.pop(tid, None)
        self.log.rec(SRec.PROC, time.monotonic_ns(), self.pid, None, "attach", None)
        self._reading(self.pid, "attach")
        for tid, status in first:
            self.stop(tid, status)

    def _reading(self, pid: int, when: str) -> None:
        """A KIO record of process pid, every one of its threads stopped: its counters and the
        sum of its threads' own (those gone since the attach: at their exit stops), which has
        none of the children it reaped (docs/format.md, the stracer log's KIO)."""
        counters = read_kio(str(pid))
        if counters is None:
            return
        threads = [0, 0, 0, 0]
        mine = [read_kio(f"{pid}/task/{t}") for t, p in self.tids.items() if p == pid]
        for v in [*mine, *self.thread_io.get(pid, {}).values()]:
            if v is None:
                return  # a thread gone meanwhile: no sum
            threads = [a + b for a, b in zip(threads, v[:4], strict=True)]
        cut = self.cut.get(pid)
        if cut:  # counted once for the cut call; its restart, after the detach, is not here
            counters = [v - d for v, d in zip(counters, [*cut, *[0] * (len(counters) - 4)],
                                                strict=True)]  # fmt: skip
            threads = [v - d for v, d in zip(threads, cut, strict=True)]
        self.log.rec(SRec.KIO, time.monotonic_ns(), pid, counters, [0, 0, 0, 0], when, threads)

    def _exit_stop(self, tid: int) -> None:
        """A thread about to exit: its own counters, and its process's (the last thread's
        reading holds them all)."""
        pid = self.tids.get(tid, tid)
        mine = read_kio(f"{pid}/task/{tid}")
        if mine is not None:
            self.thread_io.setdefault(pid, {})[tid] = mine[:4]
        counters = read_kio(str(pid))
        if counters is not None:
            self.kio[pid] = (time.monotonic_ns(), counters)

    def _gone(self, tid: int) -> None:
        """A thread ended; at its process's last, the end reading taken at its exit stop."""
        pid = self.tids.pop(tid, tid)
        self.pending.pop(tid, None)
        if pid in self.tids.values() or pid not in self.kio:
            return
        t, counters = self.kio.pop(pid)
        own = self.thread_io.pop(pid, {})
        threads = [sum(v) for v in zip(*own.values(), strict=True)] if own else None
        self.log.rec(SRec.KIO, t, pid, counters, [0, 0, 0, 0], "end", threads)

    def resume(self, tid: int, sig: int = 0) -> None:
        F.ptrace_raw(F.PTRACE_SYSCALL, tid, F.ffi.NULL, F.ffi.cast("void *", sig))

    def run(self) -> None:
        """Until every traced process is gone (Detach: Ctrl-C or SIGTERM)."""
        while self.tids and not self.ending:
            self.waiting = True
            try:
                tid, status = os.waitpid(-1, WALL)
            except (ChildProcessError, Detach):
                return
            finally:
                self.waiting = False
            self.stop(tid, status)

    def end(self, _sig: int, _frame: object) -> None:
        """The handler of SIGINT and SIGTERM: out of waitpid, never out of a stop half done."""
        self.ending = True
        if self.waiting:
            raise Detach

    def stop(self, tid: int, status: int) -> None:
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            self._gone(tid)
            return
        if not os.WIFSTOPPED(status):
            return
        if tid not in self.tids:  # a new child or thread, stopped before its parent's event
            self.tids[tid] = tid
        sig, event = os.WSTOPSIG(status), status >> 16
        if sig == signal.SIGTRAP | 0x80:
            self.syscall(tid)
            self.resume(tid)
        elif event in (F.EVENT_FORK, F.EVENT_VFORK, F.EVENT_CLONE):
            msg = F.ffi.new("unsigned long *")
            F.ptrace_raw(F.PTRACE_GETEVENTMSG, tid, F.ffi.NULL, msg)
            child = int(msg[0])
            self.tids[child] = self.tids[tid] if event == F.EVENT_CLONE else child
            if event != F.EVENT_CLONE:
                self.children.add(child)
                self.log.rec(SRec.PROC, time.monotonic_ns(), child, self.tids[tid], "fork", None)
            self.resume(tid)
        elif event == F.EVENT_EXEC:
            self.pending.pop(tid, None)
            self.resume(tid)
        elif event == F.EVENT_EXIT:
            self._exit_stop(tid)
            self.resume(tid)
        elif event == F.EVENT_STOP:
            if sig in GROUP_STOPS:  # a job-control stop: stay stopped, as untraced
                F.ptrace_raw(F.PTRACE_LISTEN, tid, F.ffi.NULL, F.ffi.NULL)
            else:  # our PTRACE_INTERRUPT, or a new child's first stop
                self.resume(tid)
        elif sig == signal.SIGTRAP and event:
            self.resume(tid)
        else:  # a signal for the tracee: delivered
            self.resume(tid, sig)

    def syscall(self, tid: int, detaching: bool = False) -> None:
        """A syscall stop.  At the detach (no signal held), an exit with -ERESTART*: our own
        interrupt cut a blocked call, which the kernel restarts after the detach -- no call of
        the app's failed: not recorded, and taken off the end reading (the kernel counted it)."""
        got = F.ptrace_raw(PTRACE_GET_SYSCALL_INFO, tid, F.ffi.cast("void *", INFO_SIZE), self.info)
        if got <= 0:
            return
        buf = F.ffi.buffer(self.info, INFO_SIZE)[:]
        op = buf[0]
        if op == INFO_ENTRY:
            _op, _arch, _ip, _sp, nr, *raw_args = INFO_ENTRY_FMT.unpack_from(buf)
            sc = SYSCALL_BY_NR.get(nr)
            if sc is None:
                self.pending.pop(tid, None)
                return
            pid = self.tids.get(tid, tid)
            raw = tuple(raw_args)
            args = decode_args(sc, raw, lambda a: self.mem.read_str(pid, a))
            pl = self.plans.get(sc.nr) or self.plans.setdefault(sc.nr, plan(sc))
            fd, path = target(pid, pl, args)
            self.pending[tid] = Pending(time.monotonic_ns(), sc, args, fd, path)
        elif op == INFO_EXIT:
            p = self.pending.pop(tid, None)
            if p is None:
                return
            t_exit = time.monotonic_ns()
            _op, _arch, _ip, _sp, ret, is_error = INFO_EXIT_FMT.unpack_from(buf)
            pid = self.tids.get(tid, tid)
            if detaching and is_error and ret in RESTARTS:
                once = syscall_sums([(p.sc.name, -1, 4, ())])  # one call counted, no bytes
                self.cut[pid] = [a + b for a, b in zip(self.cut.get(pid, [0] * 4), once,
                                                       strict=True)]  # fmt: skip
                return
            err = 0
            if is_error:
                err, ret = -ret, -1
            path = p.path
            if ret >= 0 and p.sc.fdop == "open":
                path = fd_path(pid, ret) or path
            self.log.rec(SRec.MISSED, p.t, pid, tid, p.sc.name, p.args, ret, err, 0,
                         ret if p.sc.fdop == "open" and ret >= 0 else p.fd, path, t_exit,
                         CLASS)  # fmt: skip
            self.calls += 1

    def detach(self) -> int:
        """Every thread still traced, stopped, then let go: how many.  Each is interrupted and
        waited for (a syscall it finishes meanwhile is recorded; one it enters runs after the
        detach), so that the counters read with all of them stopped are the trace's end."""
        for tid in list(self.tids):
            if F.ptrace_raw(F.PTRACE_INTERRUPT, tid, F.ffi.NULL, F.ffi.NULL):
                self._gone(tid)  # gone
        held: dict[int, int] = {}  # stopped: the signal to deliver at the detach
        for tid in list(self.tids):
            # a stop waitpid returned as Ctrl-C came (Detach raised before it was handled):
            # the thread stays in it, and will report nothing more
            info = F.ptrace_raw(PTRACE_GET_SYSCALL_INFO, tid, F.ffi.cast("void *", INFO_SIZE),
                                self.info)  # fmt: skip
            if info > 0:
                self.syscall(tid, detaching=True)  # an exit is recorded, an entry runs after
                held[tid] = 0
        while len(held) < len(self.tids):
            try:
                tid, status = os.waitpid(-1, WALL)
            except ChildProcessError:
                break
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                held.pop(tid, None)
                self._gone(tid)
                continue
            if not os.WIFSTOPPED(status):
                continue
            if tid not in self.tids:  # a child or thread just started: stopped at birth
                self.tids[tid] = tid
            sig, event = os.WSTOPSIG(status), status >> 16
            if sig == signal.SIGTRAP | 0x80:
                self.syscall(tid, detaching=True)  # an exit is recorded; an entry runs after
                sig = 0
            elif event in (F.EVENT_FORK, F.EVENT_VFORK, F.EVENT_CLONE):
                msg = F.ffi.new("unsigned long *")
                F.ptrace_raw(F.PTRACE_GETEVENTMSG, tid, F.ffi.NULL, msg)
                child = int(msg[0])
                self.tids.setdefault(child, self.tids[tid] if event == F.EVENT_CLONE else child)
                if event != F.EVENT_CLONE:
                    self.children.add(child)
                    self.log.rec(SRec.PROC, time.monotonic_ns(), child, self.tids[tid], "fork",
                                 None)  # fmt: skip
                sig = 0
            elif event == F.EVENT_EXIT:
                self._exit_stop(tid)
                sig = 0
            elif event == F.EVENT_STOP or (sig == signal.SIGTRAP and event):
                sig = 0  # our stop, a job-control stop, a ptrace event: nothing to deliver
            held[tid] = sig
        self.pending.clear()
        for pid in set(self.tids.values()):
            self._reading(pid, "end")
        n = 0
        for tid in list(self.tids):
            sig = F.ffi.cast("void *", held.get(tid, 0))
            n += F.ptrace_raw(PTRACE_DETACH, tid, F.ffi.NULL, sig) == 0
            self.tids.pop(tid)
        return n


def attach(pid: int, trace: TraceDir, say: Any) -> int:
    """Trace `pid` until Ctrl-C or SIGTERM (or until it and its children are gone), then detach.
    The exit status of `iotrace attach`: 0, or 1 if the process could not be attached."""
    try:
        argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[:-1]
    except OSError:
        raise AttachError(f"no process {pid}") from None
    log = Writer(trace, [a.decode(errors="surrogateescape") for a in argv])
    a = Attached(pid, log)

    old = {s: signal.signal(s, a.end) for s in (signal.SIGINT, signal.SIGTERM)}
    left = 0
    try:
        try:
            a.seize()
        except AttachError:  # refused: nothing recorded, so no log left behind
            log.close()
            with contextlib.suppress(OSError):
                trace.unlink(log.path.name)
            raise
        say(f"iotrace: attached to {pid} ({len(a.tids)} thread(s)): Ctrl-C to detach")
        a.run()
        for s in old:  # from here the detach runs to its end
            signal.signal(s, signal.SIG_IGN)
        left = a.detach()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        log.rec(SRec.END, time.monotonic_ns(), None)
        log.close()
    if left:  # none let go: it ended while attached (a zombie still answers kill(pid, 0))
        say(f"iotrace: detached from {pid} ({left} thread(s) let go): it runs on")
    else:
        say(f"iotrace: {pid} ended while attached")
    say(f"iotrace: {a.calls} I/O syscalls recorded, {len(a.children)} child process(es) followed")
    from iotrace.kio import run_line

    say(f"iotrace: {run_line(trace.path, os.uname().nodename, pid)}")
    return 0
