"""The ptrace loop: start the command under a seccomp filter, follow the process tree, and record
the I/O syscalls no wrapper covered (docs/stracer.md).

Every stop is classified by the C loop (_loop.c: covered, loader, shim's own, libc-internal,
bypass); this file learns its verdict and does what needs Python: the shim's hello, process
events, unwinding a new call site (and saying, from its frames, whether the site is
libc-internal or a bypass), records with paths and descriptor news.
"""

from __future__ import annotations

import _signal as signal  # signal.py's enums: ~0.7 ms of the stracer's start
import collections
import itertools
import os
import stat
import struct
import time
from collections.abc import Callable

from iotrace.stracer import _ffi as F
from iotrace.stracer import loop as L
from iotrace.stracer.console import Console
from iotrace.stracer.engines import Engines
from iotrace.stracer.slog import SRec, Writer
from iotrace.stracer.syscall_args import Plan, fd_path, plan, target
from iotrace.stracer.unwind import (
    AddressSpace,
    Frame,
    close_symbolisers,
    is_libc,
    is_loader,
    is_shim,
    libc_entry,
    symbolise,
)

from iotrace import format as fmt
from iotrace.calls import KERNEL_IO_SYSCALLS, KIO_FIELDS, SYSCALL_BY_NR, Op, Syscall, syscall_op
from iotrace.elf import is_go
from iotrace.kio import StEvent, StracerPart, stracer_sums, syscall_sums
from iotrace.record import field, record

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing for type checkers only: ~2 ms of the stracer's start (issue 19)
    from typing import Any

_image_ids = itertools.count()
OPTIONS = (
    F.O_TRACESYSGOOD
    | F.O_TRACESECCOMP
    | F.O_TRACEFORK
    | F.O_TRACEVFORK
    | F.O_TRACECLONE
    | F.O_TRACEEXEC
    | F.O_TRACEEXIT
    | F.O_EXITKILL
)
SYS_GETPID = 39
SYS_PTRACE = 101
SYS_PRCTL = 157
SYS_SECCOMP = 317
RED_ZONE = 128
XSTATE_MAX = 16384  # the kernel's XSAVE area (AVX-512: ~2.7 KiB)
IOT_OFF = 3  # iot_p.state values (preload/shim.h)
# the shim's iot_link_t and its box (preload/stracer_link.c): format.py's layouts
LINK = fmt.LINK.struct
LINK_POSTED = fmt.LINK.offset("posted")
LINK_ENTRY = fmt.LINK.offset("sandbox_entry")
HELLO = fmt.LINK.prefix("posted")  # a hello's fields: magic, version, tls_off, state
LINK_NAMES = fmt.LINK.names
PROC_READ = 1 << 16  # _proc_read's buffer
LIVE_NONE = bytes(8 * fmt.KIO_LIVE_MAX)  # the shim's table of live threads' sums, all free
BOX_HEAD = fmt.BOX_HEAD.struct
BOX_MSG = fmt.BOX_MSG.struct
BOX_MAX = 1 << 20  # a larger box asked for is not the shim's (it asks for 64 KiB)
NEWS_KEPT = 65536  # fd messages kept per process until its shim fetches them
SPAWNS_HELPERS = 0xFF << 16  # the bits of iot_t.in_wrapper counting IOT_SPAWNS_HELPERS
BUSY_VFORK = 2  # iot_t.busy after a vfork (IOT_BUSY_VFORK): not the shim's work
CLONE_THREAD = 0x10000
CLONE_VM = 0x100
GROUP_STOP_SIGS = {signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU}
# signals whose default action is to ignore them (the kernel's SIG_KERNEL_IGNORE_MASK)
DEFAULT_IGNORED = {signal.SIGCHLD, signal.SIGCONT, signal.SIGURG, signal.SIGWINCH}
# ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND: a syscall a signal interrupted, which the kernel
# restarts when no handler runs
RESTARTS = (-512, -513, -514)
ERESTARTSYS, ERESTARTNOINTR = -512, -513
# rax saved in a signal handler's frame at its stack pointer: rt_sigframe's pretcode (8), then
# ucontext's uc_flags, uc_link, uc_stack (40), then sigcontext's r8..rdx (13 words)
FRAME_RAX = 8 + 40 + 13 * 8
OP_OPEN, OP_DUP, OP_CLOSE, OP_CLOSE_RANGE = 1, 2, 3, 4
GO_FRAMES = 16  # frames of a Go call site
AT_BASE = 7  # the auxiliary vector's entry: the program interpreter's address
AT_SECURE = 23  # ... and the secure-execution flag (a set-ID exec: LD_PRELOAD ignored)
PT_LOAD, PF_X = 1, 1
PAGE = os.sysconf("SC_PAGE_SIZE")


@record
class Image:
    """A process image (from an exec; shared by fork children until they exec)."""

    exe: str
    phase: str  # launch | preinit | ready | noshim
    link: int = 0
    fdgen: bool = False  # its iot_link has fdgen (version >= 2)
    news: bool = False  # its shim fetches fd news (version >= 3)
    kio: bool = False  # its iot_link has the addresses of the shim's KIO sums (version >= 4)
    tls_off: int = 0
    ld: tuple[int, int] = (0, 0)  # the dynamic loader's text: its syscalls are loader I/O
    # an image exec'd under the app's seccomp filter: no shim's start reading counts its
    # loader's I/O, so that is recorded (libc-internal: not said on the console)
    ld_recorded: tuple[int, int] = (0, 0)
    aspace: AddressSpace | None = None
    # a Go program's sites by their frames' pcs (the C loop knows the others by their chain)
    sites: dict[tuple[int, ...], tuple[int, int]] = field(default_factory=dict)  # -> site, class
    go: bool = False  # a Go executable: call sites from its frame pointers (_go_pcs)
    id: int = field(default_factory=lambda: next(_image_ids))  # the C loop's name for it


@record
class Proc:
    pid: int
    image: Image
    shared_vm: bool = False  # vfork / CLONE_VM child: its memory is its parent's
    posted: int = 0  # fd messages queued for its shim; news holds the last ones not yet fetched
    news: collections.deque[bytes] = field(
        default_factory=lambda: collections.deque(maxlen=NEWS_KEPT)
    )
    shim_bad: int = 0  # iot_link.bad as last read: malformed messages its shim dropped
    threads: set[int] = field(default_factory=set)
    kio: tuple[int, list[int]] | None = None  # the kernel's counters at the last exit stop
    kio_own: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # the shim's threads'
    # each thread's own counters at its exit stop: their sum is the process's own I/O, without
    # the children it reaped (which the process's counters include)
    thread_io: dict[int, list[int]] = field(default_factory=dict)
    # a thread ended with no reading of its own: a SIGKILL (another thread's exit_group) ended
    # its exit stop before it was handled; the sum above is then not the process's own
    unread: bool = False
    # a thread that execs takes the pid: the old leader's reading, kept before its own overwrites
    leader_io: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    # its shim's own I/O and events' sums in its memory at the last exit stop (_shim_sums)
    kio_shim: list[int] | None = None
    # rchar, wchar, syscr, syscw the kernel counted again for calls the stracer's stops made it
    # restart (_restarted): taken off its end reading
    restarted: list[int] = field(default_factory=lambda: [0, 0, 0, 0])


@record
class Thread:
    tid: int
    proc: Proc
    shim_thread: bool = False  # started by the shim while busy: its syscalls are the shim's
    # started by libc inside a wrapped call (glibc's AIO threads): its syscalls are that call's
    helper: bool = False
    pending: list[Any] | None = None  # a missed syscall waiting for its exit stop
    top: int = 0  # the word at the stack pointer at the last stop
    # a raw seccomp install handed to its shim (_raw_install): its registers at the stop
    install: tuple[bytes, bytes] | None = None
    # the syscall a caught signal interrupted (ERESTARTSYS): the thread steps into the handler
    # to learn whether the kernel restarts the call (_handler_frame)
    stepping: int = -1


class Tracer:
    def __init__(self, log: Writer, shim: str, console: Console) -> None:
        self.log = log
        self.shim = shim
        self.console = console
        self.regs = F.Regs()
        self.r = self.regs.r
        self.mem = F.Mem()
        self.threads: dict[int, Thread] = {}
        self.procs: dict[int, Proc] = {}
        self.parked: set[int] = set()  # new tids whose parent's event has not come yet
        self.pcounts: dict[int, collections.Counter[str]] = {}
        self.site_frames: dict[int, list[Frame]] = {}
        self.site_sigs: dict[tuple[tuple[str | None, int | None], ...], int] = {}  # frames -> site
        self.root = 0
        self.returncode: int | None = None
        self.go_cache: dict[tuple[int, int, int, int], bool] = {}  # _is_go's
        self.pidns = os.readlink("/proc/self/ns/pid")  # _other_pidns
        self.failed = False
        self.plans: dict[int, Plan] = {}
        self.warned_ptrace = False
        self.cookie: int | None = None  # the run's (stracer/launch.py): its filter lets it pass
        fast = L.load()
        if fast is None:
            raise RuntimeError("the stracer's C loop is not available")
        self.fast = fast
        self.site_fn: dict[int, str | None] = {}  # site -> the libc function it is inside
        self.on_root_exit: Callable[[int], None] | None = None  # called with its returncode
        self.engines = Engines(self)  # io_uring and Linux AIO operations
        # the end line's sums of the MISSED records by pid (kio.StracerPart): the C loop's, taken
        # at each cut (_kio_cut), and the calls threads died in, one by one (by name)
        self.kio_events: dict[int, list[StEvent]] = {}
        self.kio_lost = False

    # ---- set-up -----------------------------------------------------------------------------

    def attach_root(self, pid: int) -> None:
        """pid has stopped itself (SIGSTOP) before its execve: seize it and let it go on."""
        F.ptrace(F.PTRACE_SEIZE, pid, F.ffi.NULL, F.ffi.cast("void *", OPTIONS))
        self.root = pid
        proc = Proc(pid, Image(exe="", phase="launch"))
        self._add_proc(proc, 0)
        self._sync_image(proc.image)
        self.threads[pid] = th = Thread(pid, proc)
        proc.threads.add(pid)
        self._sync_thread(th)
        os.kill(pid, signal.SIGCONT)

    def _add_proc(self, proc: Proc, ppid: int) -> None:
        self.procs[proc.pid] = proc
        self.pcounts.setdefault(proc.pid, collections.Counter())

    # ---- what the C loop knows -------------------------------------------------------------

    def _sync_image(self, img: Image) -> None:
        link = img.link if img.fdgen else 0  # 0: no fdgen to read, no fd path cache
        self.fast.lib.iotl_image(img.id, L.PHASES[img.phase], img.tls_off, link, *img.ld)

    def _sync_thread(self, th: Thread) -> None:
        kind = L.T_SHIM if th.shim_thread else L.T_HELPER if th.helper else L.T_APP
        if kind == L.T_APP and th.proc.shared_vm:  # its TLS markers are its parent thread's
            kind = L.T_VMCHILD
        self.fast.lib.iotl_thread(th.tid, th.proc.pid, th.proc.image.id, kind)

    def _forget(self, tid: int, pid: int) -> None:
        """A thread dropped: the C loop's counts for it join the process's."""
        c = self.fast.forget(tid)
        if c:
            self.pcounts.setdefault(pid, collections.Counter()).update(c)

    def _drain(self) -> None:
        """The C loop's records into the log (they come before anything Python writes next),
        its tallies to the console."""
        b = self.fast.batch
        if not b.nrec:
            return
        buf = self.fast.ffi.buffer(b.buf, b.len)
        self.log.raw(buf[:], b.nrec)
        frames, missed = self.site_frames, self.console.missed
        for i in range(b.ntally):
            t = b.tally[i]
            path = None
            if t.path_len >= 0:
                path = buf[t.path_off : t.path_off + t.path_len].decode(errors="surrogateescape")
            sc = SYSCALL_BY_NR[t.nr]
            cls = L.COUNT_NAMES[t.cls]
            moved = t.bytes if syscall_op(sc) in (Op.READ, Op.WRITE) else 0
            missed(t.pid, t.site, frames.get(t.site, []), sc.name, path, t.count, cls, moved)
        self.fast.lib.iotl_batch_reset()

    # ---- the loop ---------------------------------------------------------------------------

    def loop(self) -> int:
        lib, ev = self.fast.lib, self.fast.ev
        run, batch = lib.iotl_run, self.fast.batch
        while self.threads or self.parked:
            kind = run(ev)
            if batch.nrec:
                self._drain()
            if kind == L.EV_STOP:
                tid, t, st = ev.tid, ev.t, ev.status
                self._handle(tid, st)
                if os.WIFSTOPPED(st):  # the time it held the thread (_loop.c emit_stop)
                    self.log.rec(SRec.STOP, tid, t, max(time.monotonic_ns() - t, 0))
            elif kind == L.EV_ECHILD:
                break
        return self.returncode if self.returncode is not None else 0

    def _handle(self, tid: int, status: int) -> None:
        """One stop; a bug in handling it is said once and the thread goes on, never hangs."""
        try:
            self._stop(tid, status)
        except Exception as exc:
            if not self.failed:
                self.failed = True
                self.console.internal(f"{exc.__class__.__name__}: {exc}")
            F.libc.ptrace(F.PTRACE_CONT, tid, F.ffi.NULL, F.ffi.NULL)

    def _stop(self, tid: int, status: int) -> None:
        libc, cont, null = F.libc, F.PTRACE_CONT, F.ffi.NULL
        if not os.WIFSTOPPED(status):
            self._gone(tid, status)
            return
        sig = (status >> 8) & 0xFF
        event = status >> 16
        if sig == F.SIGTRAP and event == F.EVENT_SECCOMP:
            ev = self.fast.ev
            if tid not in self.threads:  # made known first, then judged like any other
                self._adopt(tid)
                if self.fast.lib.iotl_seccomp(tid, ev):
                    return
            if self._seccomp(tid, ev.verdict, ev.site, ev.cls, ev.top):
                libc.ptrace(cont, tid, null, null)
        elif sig == F.SIGTRAP | 0x80:
            self._sysexit(tid)
            libc.ptrace(cont, tid, null, null)
        elif sig == F.SIGTRAP and event in (F.EVENT_FORK, F.EVENT_VFORK, F.EVENT_CLONE):
            self._new_child(tid, event)
            self._resume(tid, 0)
        elif sig == F.SIGTRAP and event == F.EVENT_EXEC:
            self._exec(tid)
            self._resume(tid, 0)
        elif sig == F.SIGTRAP and event == F.EVENT_EXIT:
            self._exit_stop(tid)
            libc.ptrace(cont, tid, null, null)
        elif sig == F.SIGTRAP and event == 0 and self._handler_frame(tid):
            self._resume(tid, 0)
        elif sig == F.SIGTRAP and event == 0 and self._install_done(tid):
            libc.ptrace(cont, tid, null, null)  # the shim's breakpoint: not the app's signal
        elif event == F.EVENT_STOP:
            if sig in GROUP_STOP_SIGS:  # job control: stay stopped until SIGCONT
                libc.ptrace(F.PTRACE_LISTEN, tid, null, null)
            elif tid not in self.threads:
                self.parked.add(tid)  # a new child: resumed by its parent's event
            else:
                self._resume(tid, 0)
        else:  # a signal for the app: deliver it unchanged
            if tid not in self.threads:
                self._adopt(tid)
            if self._restarted(tid, sig):  # into the handler, stopping there (_handler_frame)
                libc.ptrace(F.PTRACE_SINGLESTEP, tid, null, F.ffi.cast("void *", sig))
            else:
                self._resume(tid, sig)

    def _restarted(self, tid: int, sig: int) -> bool:
        """A wrapper's read- or write-type call (cookie'd: no stop of its own) that a signal
        interrupted and the kernel restarts: it counts the call twice (syscr or syscw), the shim
        once.  Noted per process and taken off the process's end reading, so that the trace
        explains the app's calls once each.  A signal the app ignores: untraced the kernel drops
        it (SIGCHLD as a child ends while its parent blocks in a read); traced it is delivered
        to the tracer first, so the call stops and is restarted.  A caught signal: the kernel
        restarts the call after the handler (ERESTARTNOINTR always, ERESTARTSYS if the handler
        is SA_RESTART: True, the thread is to step into its handler to learn which), else the
        call fails with EINTR, which the shim records.  A syscall the stracer follows stops
        again at its restart and is recorded each time, as the kernel counts it."""
        th = self.threads.get(tid)
        if th is None or not self.regs.fetch(tid):
            return False
        th.stepping = -1  # a step that stopped elsewhere (no frame: SIGSEGV) is over
        r = self.r
        ret = r.rax - (1 << 64) if r.rax >> 63 else r.rax
        sc = SYSCALL_BY_NR.get(r.orig_rax) if ret in RESTARTS else None
        if sc is None or sc.name not in KERNEL_IO_SYSCALLS or not self._unfollowed(th, sc):
            return False
        if self._measured(th):
            return False  # the shim's measure around the call counts the restart as the kernel
        if not _ignores(th.proc.pid, sig) and ret != ERESTARTNOINTR:
            if ret != ERESTARTSYS or not _caught(th.proc.pid, sig):
                return False  # not restarted: EINTR, or the signal's default action
            th.stepping = r.orig_rax
            return True
        self._count_restart(th.proc, r.orig_rax)
        return False

    def _measured(self, th: Thread) -> bool:
        """The thread is inside a call the shim measures with its counters (kio.c: stdio's
        reads of a pipe, dlopen): the kernel's count of a restart is in that measure, its
        event says so; taken off the end reading too it was explained twice (sort
        --compress-program: 101.2% of the calls).  iot_t.kio_in_ok, at tls_off + 8."""
        img = th.proc.image
        if img.phase != "ready" or not img.tls_off:
            return False
        raw = self.mem.read(th.tid, self.r.fs_base + img.tls_off + 8, 4)
        return bool(raw and len(raw) == 4 and struct.unpack("<i", raw)[0])

    def _handler_frame(self, tid: int) -> bool:
        """The step into a caught signal's handler (_restarted): the kernel saved the thread's
        registers in the handler's frame at the stack pointer (struct rt_sigframe), rax the
        syscall's number again if it restarts the call, else -EINTR.  False: not that stop."""
        th = self.threads.get(tid)
        if th is None or th.stepping < 0:
            return False
        nr, th.stepping = th.stepping, -1
        if self.regs.fetch(tid):
            saved = self.mem.read(tid, self.r.rsp + FRAME_RAX, 8)
            if saved is not None and int.from_bytes(saved, "little") == nr:
                self._count_restart(th.proc, nr)
        return True

    def _count_restart(self, proc: Proc, nr: int) -> None:
        once = syscall_sums([(SYSCALL_BY_NR[nr].name, -1, 4, ())])  # one call: counted, no bytes
        proc.restarted = [a + b for a, b in zip(proc.restarted, once, strict=True)]

    def _resume(self, tid: int, sig: int) -> None:
        th = self.threads.get(tid)
        pending = th is not None and (th.pending or self.fast.lib.iotl_pending(tid))
        req = F.PTRACE_SYSCALL if pending else F.PTRACE_CONT
        F.libc.ptrace(req, tid, F.ffi.NULL, F.ffi.cast("void *", sig))

    # ---- seccomp stops ----------------------------------------------------------------------

    def _seccomp(self, tid: int, verdict: int, site: int, cls: int, top: int) -> bool:
        """Act on the C loop's verdict on a seccomp stop; True: resume with PTRACE_CONT."""
        if not self.regs.fetch(tid):
            return True
        r = self.r
        th = self.threads[tid]
        proc = th.proc
        nr = r.orig_rax
        if verdict == L.V_PY:
            if nr == SYS_GETPID:  # the filter stops it only with bpf.HELLO_MAGIC first
                if r.rdx == fmt.LINK_FETCH:
                    self._fetch(th, r.rsi, r.r10, r.r8)
                else:
                    self._hello(th, r.rsi, r.rdx)
            elif nr in (SYS_SECCOMP, SYS_PRCTL):
                self._raw_install(th)
            elif nr == SYS_PTRACE and not self.warned_ptrace:
                self.warned_ptrace = True
                self.console.ptrace_used(proc.pid, proc.image.exe)
            return True
        sc = SYSCALL_BY_NR[nr]
        th.top = top
        if verdict == L.V_NEW:
            site, cls = self._site(th)
            self._count(proc, L.COUNT_NAMES[cls])
            if cls == L.C_LOADER:
                return True
        self._count(proc, "python")  # a record the C loop could not make (COUNTS)
        self.engines.look(proc.pid, tid)  # a SQPOLL ring's submissions, at any chance
        self._missed_entry(th, sc, site, cls)
        F.libc.ptrace(F.PTRACE_SYSCALL, tid, F.ffi.NULL, F.ffi.NULL)
        return False

    def _count(self, proc: Proc, what: str) -> None:
        self.pcounts[proc.pid][what] += 1

    @property
    def counts(self) -> collections.Counter[str]:
        total: collections.Counter[str] = collections.Counter()
        for c in self.pcounts.values():
            total.update(c)
        return total

    def _hello(self, th: Thread, link: int, state: int) -> None:
        """Once per image, from its shim; anything else (a second hello, a struct that is not
        an iot_link) is dropped and counted, never believed."""
        img = th.proc.image
        first = not img.link and img.phase in ("preinit", "noshim")  # noshim: not foreseen
        hello = HELLO
        raw = self.mem.read(th.tid, link, hello.size) if first and link else None
        magic, version, tls_off, _state = hello.unpack(raw) if raw else (0, 0, 0, 0)
        if magic != fmt.LINK_MAGIC or not 1 <= version < 256 or not -(1 << 24) < tls_off < 1 << 24:
            self._count(th.proc, "link_bad")
            return
        img.link, img.tls_off = link, tls_off
        img.fdgen = version >= 2  # iot_link.fdgen exists: the C loop may cache fd paths
        img.news = version >= 3  # it fetches fd news (older shims listened on ZeroMQ)
        img.kio = version >= 4
        img.phase = "noshim" if state == IOT_OFF else "ready"
        self._kio_cut(th.proc.pid)  # its shim's start reading follows
        self._sync_image(img)
        self.log.rec(SRec.PROC, time.monotonic_ns(), th.proc.pid, 0, "shim", img.phase)

    # ---- the app's raw seccomp install (preload/sandbox.c iot_sandbox_entry) ------------------

    def _raw_install(self, th: Thread) -> None:
        """A seccomp filter (or strict mode) installed by a syscall instruction of the app's own
        (the shim's carry the cookie): its shim must stop making syscalls before it, or the
        filter kills the app at the shim's next one.  The call is skipped and the thread sent to
        the shim's entry, as if it had called iot_sandbox_entry(nr, args...) on its stack below
        the red zone; its registers are kept here until the entry's breakpoint gives the
        result (_install_done).
        An image whose shim is not ready (none, not started yet, too old) keeps the call."""
        img, r = th.proc.image, self.r
        raw = self.mem.read(th.tid, img.link + LINK_ENTRY, 8) if img.phase == "ready" else None
        entry = int.from_bytes(raw, "little") if raw and len(raw) == 8 else 0
        xs = F.ffi.new("char[]", XSTATE_MAX)
        iov = F.ffi.new("struct iovec *", {"iov_base": xs, "iov_len": XSTATE_MAX})
        xstate = F.ffi.cast("void *", F.NT_X86_XSTATE)
        if not entry or th.install or F.ptrace_raw(F.PTRACE_GETREGSET, th.tid, xstate, iov):
            return
        size = F.ffi.sizeof("struct user_regs_struct")
        th.install = (F.ffi.buffer(self.regs.buf, size)[:], F.ffi.buffer(xs, iov.iov_len)[:])
        args = (r.orig_rax, r.rdi, r.rsi, r.rdx, r.r10, r.r8)
        for reg, v in zip(("rdi", "rsi", "rdx", "rcx", "r8", "r9"), args, strict=True):
            setattr(r, reg, v)
        # at a function's entry rsp % 16 == 8 (a call pushed its return address): it never
        # returns, the stracer puts the thread back
        r.rsp = ((r.rsp - RED_ZONE) & ~0xF) - 8
        r.rip, r.orig_rax = entry, (1 << 64) - 1  # the syscall skipped
        F.libc.ptrace(F.PTRACE_SETREGS, th.tid, F.ffi.NULL, self.regs.buf)

    def _install_done(self, tid: int) -> bool:
        """The shim's entry made the install and stopped at its breakpoint (rax the result, rsi
        its iot_link, rdx LINK_RESUME): the thread goes back to where its syscall was, with
        every register as it was there and the result in rax.  False: a SIGTRAP of the app's."""
        th = self.threads.get(tid)
        if th is None or th.install is None or not self.regs.fetch(tid):
            return False
        r = self.r
        if r.rsi != th.proc.image.link or r.rdx != fmt.LINK_RESUME:
            return False
        result = r.rax
        (regs, xstate), th.install = th.install, None
        F.ffi.memmove(self.regs.buf, regs, len(regs))
        r.rax = result
        F.libc.ptrace(F.PTRACE_SETREGS, tid, F.ffi.NULL, self.regs.buf)
        xs = F.ffi.from_buffer(xstate)
        iov = F.ffi.new("struct iovec *", {"iov_base": xs, "iov_len": len(xstate)})
        F.ptrace_raw(F.PTRACE_SETREGSET, tid, F.ffi.cast("void *", F.NT_X86_XSTATE), iov)
        return True

    def _missed_entry(self, th: Thread, sc: Syscall, site: int, cls: int) -> None:
        r, tid, pid = self.r, th.tid, th.proc.pid
        raw = (r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9)
        pl = self.plans.get(sc.nr)
        if pl is None:
            pl = self.plans[sc.nr] = plan(sc)
        read_str = self.mem.read_str
        args = [
            read_str(tid, v) if f is None else f(v) for f, v in zip(pl.convert, raw, strict=False)
        ]
        self.fast.teach(sc.nr, raw, args, self.log.pk.pack)  # the C loop records the next ones
        fd, path = target(pid, pl, args)
        if sc.ends is not None:  # two ends: fd, path are the end written; ends the rest
            fd, path, ends = self._ends(pid, tid, sc.ends, raw)
        else:
            ends = None
        t = time.monotonic_ns()
        th.pending = [t, pid, tid, sc, args, site, fd, path, raw, cls, ends]
        if sc.engine:
            self.engines.entry(th, sc.name, raw, site, t)

    def _ends(
        self, pid: int, tid: int, at: tuple[int, int, int, int], raw: tuple[int, ...]
    ) -> tuple[int, str | None, list[Any]]:
        """A call with two ends, at its entry: the descriptor written and its path, and [offset
        written, descriptor read, its path, offset read] (offsets: the value behind the
        offset pointer, else the descriptor's position; nil for pipes and sockets)."""
        out: list[Any] = []
        for fd_at, off_at in ((at[0], at[1]), (at[2], at[3])):
            fd = raw[fd_at] & 0xFFFFFFFF
            fd = fd - (1 << 32) if fd >> 31 else fd
            path = fd_path(pid, fd)
            off = None
            ptr = raw[off_at] if off_at >= 0 else 0
            if ptr:
                b = self.mem.read(tid, ptr, 8)
                off = int.from_bytes(b, "little", signed=True) if b and len(b) == 8 else None
            elif path is not None and path.startswith("/"):
                off = _fd_pos(pid, fd)
            out += [fd, path, off]
        return out[0], out[1], [out[2], *out[3:]]

    def _site(self, th: Thread) -> tuple[int, int]:
        """A new call site key: unwound and symbolised (once per distinct frames), and its
        class: a bypass in an image without a shim, else libc-internal when its innermost
        frames are a libc function other than syscall(2) called from outside libc (or the
        loader, where it is recorded: ld_recorded)."""
        r, img = self.r, th.proc.image
        if img.go:
            # Go makes every syscall through one leaf stub called from one function: ip and the
            # word at the stack pointer are the same for all; the frame-pointer chain is not.
            # Not given to the C loop, whose key is those two words: every Go syscall comes here.
            pcs = self._go_pcs(th)
            got = img.sites.get(tuple(pcs))
            if got is None:
                got = img.sites[tuple(pcs)] = (self._new_site(th, pcs), L.C_BYPASS)
            return got
        site = self._new_site(th)
        frames = self.site_frames.get(site) or []
        inside = img.phase != "noshim" and self.site_fn.get(site) is not None
        inside = inside or img.ld_recorded[0] <= r.rip < img.ld_recorded[1]
        # the loader's own, not under a libc function (the C loop counts it as loader I/O)
        loader = not inside and bool(frames) and is_loader(frames[0].module)
        cls = L.C_LIBC if inside else L.C_LOADER if loader else L.C_BYPASS
        words = self._chain(img, r.rip, r.rsp, th.top)
        self.fast.lib.iotl_site(img.id, r.rip, len(words), words, site, cls)
        return site, cls

    @staticmethod
    def _shim_unloaded(img: Image) -> bool:
        """A call site outside the loader before the shim's hello: is the shim mapped at all?
        The loader maps every LD_PRELOAD object before any code of the program runs; one it
        could not load (its file not reachable in a container or chroot) it leaves out with a
        line on stderr, and the program's calls to wrapped functions then reach libc directly:
        missed I/O, not libc's own.  The maps the site's unwinding read tell (no read more)."""
        maps = img.aspace.maps if img.aspace is not None else []
        return bool(maps) and not any(is_shim(path) for _, _, _, path in maps)

    def _lost_shim(self, proc: Proc) -> None:
        img = proc.image
        img.phase = "noshim"
        self._sync_image(img)
        self.log.rec(SRec.PROC, time.monotonic_ns(), proc.pid, 0, "shim", "unloaded")
        # a set-user/group-ID program the kernel ran securely (root running a set-group-ID one
        # too): the loader ignored LD_PRELOAD, its file was reachable
        self.console.shim_unloaded(proc.pid, img.exe, secure=bool(_auxv(proc.pid, AT_SECURE)))

    def _chain(self, img: Image, ip: int, sp: int, top: int) -> list[int]:
        """The key of the site just unwound, as the C loop finds it on the stack (_loop.c
        chain_of): the return addresses up to the first frame outside libc and the loader
        (and the shim: a wrapper calling libc, setlocale's, is every caller's), each frame's
        size taught (a frame found in two sizes ends it); an ip outside them (an inline
        syscall) keeps its word at sp."""
        assert img.aspace is not None
        frames, sps, lib = img.aspace.frames, img.aspace.sps, self.fast.lib
        ours = [is_libc(f.module) or is_loader(f.module) for f in frames]
        if not frames or not ours[0] or len(sps) != len(frames) or len(frames) < 2:
            lib.iotl_frame(img.id, ip, 1, L.D_OUT)
            return [top]
        if lib.iotl_frame(img.id, ip, 1, sps[1] - 8 - sp) == L.D_VAR:  # ret address: CFA - 8
            return [top]
        words: list[int] = []
        for k in range(1, len(frames)):
            words.append(frames[k].pc)
            end = not (ours[k] or is_shim(frames[k].module)) or k + 1 == len(frames)
            got = lib.iotl_frame(img.id, frames[k].pc, 0, L.D_OUT if end else sps[k + 1] - sps[k])
            if end or got == L.D_VAR or len(words) == L.CHAIN_MAX:  # a variable frame ends it too
                break
        return words

    def _go_pcs(self, th: Thread) -> list[int]:
        """ip, the return address at the stack pointer (Go's syscall stubs have no frame), then
        the return addresses of the frame-pointer chain (Go keeps rbp on amd64)."""
        r = self.r
        pcs = [r.rip]
        if th.top:
            pcs.append(th.top)
        bp = r.rbp
        while len(pcs) < GO_FRAMES and bp and not bp & 7:
            m = self.mem.read(th.tid, bp, 16)
            if not m or len(m) < 16:
                break
            up, ret = struct.unpack("<QQ", m)
            if not ret:
                break
            if ret != pcs[-1]:  # a stub with a frame: its return address was at rsp too
                pcs.append(ret)
            if up <= bp:
                break
            bp = up
        return pcs

    def _new_site(self, th: Thread, pcs: list[int] | None = None) -> int:
        r, img = self.r, th.proc.image
        if img.aspace is None:
            img.aspace = AddressSpace(th.proc.pid)
        img.aspace.pid = th.proc.pid
        if pcs is not None:  # a Go program: its frames from the pcs, named by its DWARF
            mods = [img.aspace.module_of(pc - (1 if i else 0)) for i, pc in enumerate(pcs)]
            frames = [Frame(pc, m[0] if m else None, (m[1] + (1 if i else 0)) if m else None, None)
                      for i, (pc, m) in enumerate(zip(pcs, mods, strict=True))]  # fmt: skip
            frames = symbolise(frames, img.aspace, inline=True)
        else:
            frames = img.aspace.unwind(th.tid)
            if not frames:
                frames = [Frame(r.rip, *(img.aspace.module_of(r.rip) or (None, None)), None)]
            if img.phase == "preinit" and self._shim_unloaded(img):
                self._lost_shim(th.proc)
            # a bypass is named on the console at once; a libc-internal site is not said, and
            # addr2line (a process per module, its debug info read: ~0.1 s of CPU per rank in
            # MPI_Init) runs only if the trace is read (analyzer/symbols.py)
            if img.phase == "noshim" or libc_entry(frames) is None:
                frames = symbolise(frames, img.aspace)
        # the same frames from another key (a varying word at rsp): one site
        sig = tuple((f.module, f.offset) for f in frames)
        site = self.site_sigs.get(sig)
        if site is not None:
            return site
        site = self.site_sigs[sig] = len(self.site_frames) + 1
        self.site_frames[site] = frames
        self.site_fn[site] = fn = libc_entry(frames)
        self.log.rec(
            SRec.SITE,
            site,
            [[f.pc, f.module, f.offset, f.function, f.file, f.line] for f in frames],
            fn,
        )
        return site

    def _sysexit(self, tid: int) -> None:
        t_exit = time.monotonic_ns()
        th = self.threads.get(tid)
        if th is None or th.pending is None or not self.regs.fetch(tid):
            return
        ret = self.r.rax
        ret = ret - (1 << 64) if ret >> 63 else ret
        self._finish(th, ret, t_exit)

    def _finish(
        self, th: Thread, ret: int | None, t_exit: int | None = None, name: str | None = None
    ) -> None:
        assert th.pending is not None
        t, pid, tid, sc, args, site, fd, path, raw, cls, ends = th.pending
        th.pending = None
        err = 0
        if ret is not None and -4096 < ret < 0:
            err, ret = -ret, -1
        if ret == 0 and sc.fdop == "pipe":  # the int[2] it filled, as strace shows it
            fds = self.mem.read(th.tid, raw[0], 8)
            if fds:
                args = [list(struct.unpack("<ii", fds)), *args[1:]]
        if ret is not None and ret >= 0 and sc.fdop in ("open", "pipe"):
            fd = ret if sc.fdop == "open" else None
            if fd is not None:
                path = fd_path(pid, fd) or path
            self._fd_news(th, sc, raw, ret, path, cls)
        elif ret is not None and ret >= 0 and sc.fdop:
            self._fd_news(th, sc, raw, ret, path, cls)
        name = name or L.COUNT_NAMES[cls]
        via = self.engines.exit(th, sc.name, raw, ret, site) if sc.engine else None
        if via is not None:  # via follows the two ends' places (nil here)
            ends = ends or [None, None, None, None]
        rec = [SRec.MISSED, t, pid, tid, sc.name, args, ret, err, site, fd, path, t_exit, name]
        self.log.rec(*rec, *(ends or ()), *([via] if via else []))  # offset, fd2, path2, offset2
        if via is None:  # an engine's operation is no syscall the kernel counts
            self._kio_add(rec)
        moved = ret if ret and ret > 0 and syscall_op(sc) in (Op.READ, Op.WRITE) else 0
        frames = self.site_frames.get(site, [])
        self.console.missed(pid, site, frames, sc.name, path, 1, name, moved)

    # ---- descriptor news for the shim -------------------------------------------------------

    def _fd_news(  # noqa: ANN202
        self, th: Thread, sc: Syscall, raw: tuple[int, ...], ret: int, path: str | None, cls: int
    ):
        """Tell the shim.  Not about descriptors libc opens and closes for itself inside a
        function (setlocale's /etc/locale.alias, NSS's /etc/passwd): the shim has no entry for
        a number the kernel just gave out (it learns one from /proc if a wrapper ever meets it),
        so it needs no news of their open, nor of their close while it was not told of them
        (each would cost the process a fetch stop).  Those descriptors ("untold") are kept by
        the C loop, which records most such opens and closes itself (_loop.c path_entry)."""
        proc = th.proc
        if proc.image.phase != "ready" or proc.shared_vm:
            return
        op, pid, untold = sc.fdop, proc.pid, self.fast.untold
        quiet = cls == L.C_LIBC
        if quiet and op in ("open", "pipe"):
            fds = self.mem.read(th.tid, raw[0], 8) if op == "pipe" else None
            for fd in struct.unpack("<ii", fds) if fds else (ret,) if op == "open" else ():
                untold(L.U_ADD, pid, fd)
            return
        if quiet and op == "close" and untold(L.U_DEL, pid, _s32(raw[0])):
            return
        msgs: list[bytes] = []
        if op == "open":
            msgs.append(_msg(OP_OPEN, ret, 0, path or ""))
            untold(L.U_DEL, pid, ret)
        elif op == "pipe":
            fds = self.mem.read(th.tid, raw[0], 8)
            if fds:
                for fd in struct.unpack("<ii", fds):
                    msgs.append(_msg(OP_OPEN, fd, 0, fd_path(proc.pid, fd) or ""))
                    untold(L.U_DEL, pid, fd)
        elif op == "dup":
            msgs.append(_msg(OP_DUP, _s32(raw[0]), ret, ""))
        elif op == "dup2":
            msgs.append(_msg(OP_DUP, _s32(raw[0]), _s32(raw[1]), ""))
            untold(L.U_DEL, pid, _s32(raw[1]))
        elif op == "close":
            msgs.append(_msg(OP_CLOSE, _s32(raw[0]), 0, ""))
            untold(L.U_DEL, pid, _s32(raw[0]))
        elif op == "close_range":
            hi = min(raw[1], 0x7FFFFFFF)
            msgs.append(_msg(OP_CLOSE_RANGE, _s32(raw[0]), hi, ""))
            untold(L.U_RANGE, pid, _s32(raw[0]), hi)
        for m in msgs:
            self._post(th, m)

    def _post(self, th: Thread, m: bytes) -> None:
        """Queue m, then raise the counter the shim checks on every fd lookup: the tracee is
        stopped, so its next lookup fetches it (_fetch)."""
        proc = th.proc
        if not proc.image.news:
            return
        proc.posted += 1
        proc.news.append(m)
        self.mem.write(th.tid, proc.image.link + LINK_POSTED, struct.pack("<Q", proc.posted))

    def _fetch(self, th: Thread, link: int, box: int, size: int) -> None:
        """The shim asks for the fd messages after its iot_link.seen (preload/stracer_link.c):
        write as many as fit into its box, framed.  A request that is not its shim's (another
        address, an odd size) is dropped and counted; so are the drops the shim reports."""
        proc, img = th.proc, th.proc.image
        raw = None
        if img.phase == "ready" and img.news and link == img.link and 0 <= size <= BOX_MAX:
            raw = self.mem.read(th.tid, link, LINK.size)
        if raw is None or (size and size < BOX_HEAD.size + 64):
            self._count(proc, "link_bad")
            return
        now = dict(zip(LINK_NAMES, LINK.unpack(raw), strict=True))
        seen, bad = now["seen"], now["bad"]
        if bad > proc.shim_bad:
            self.pcounts[proc.pid]["link_bad"] += bad - proc.shim_bad
        proc.shim_bad = bad
        if not size:  # the shim only reports its drops
            return
        base = proc.posted - len(proc.news)
        while base < seen and proc.news:  # applied: no fork child can need them any more
            proc.news.popleft()
            base += 1
        msgs: list[bytes] = []
        upto = start = max(seen, base)
        if seen < base:  # more were queued than kept: the shim forgets all, learns from /proc
            msgs.append(_msg(OP_CLOSE_RANGE, 0, 0x7FFFFFFF, ""))
        room = size - BOX_HEAD.size - sum(4 + len(m) for m in msgs)
        if seen > proc.posted:  # not a count this stracer wrote
            self._count(proc, "link_bad")
        else:
            for m in itertools.islice(proc.news, start - base, None):
                if 4 + len(m) > size - BOX_HEAD.size:  # can never fit in its box: dropped
                    self._count(proc, "link_bad")
                elif 4 + len(m) > room:
                    break
                else:
                    msgs.append(m)
                    room -= 4 + len(m)
                upto += 1
        body = b"".join(struct.pack("<I", len(m)) + m for m in msgs)
        head = BOX_HEAD.pack(fmt.BOX_MAGIC, len(msgs), upto, len(body), 0)
        self.mem.write(th.tid, box, head + body)

    # ---- process tree -----------------------------------------------------------------------

    def _new_child(self, tid: int, event: int) -> None:
        msg = F.ffi.new("unsigned long *")
        if F.libc.ptrace(F.PTRACE_GETEVENTMSG, tid, F.ffi.NULL, msg) != 0:
            return
        new = int(msg[0])
        parent = self.threads.get(tid) or self._adopt(tid)
        if event == F.EVENT_CLONE:  # a thread or a process: its status says
            tgid, inner = _ids(new)
        else:  # a fork or vfork child leads a thread group of its own
            tgid, inner = new, _ids(new)[1] if self._other_pidns(new) else None
        if event == F.EVENT_CLONE and tgid == parent.proc.pid:
            th = Thread(new, parent.proc)
            # threads started from the shim while it is busy are the shim's; threads
            # libc starts inside a wrapped call marked IOT_SPAWNS_HELPERS (glibc's AIO workers,
            # inside aio_write) do that call's work.  Not the threads those start: a worker's
            # SIGEV_THREAD notification runs the app's own callback.
            busy, inw = self._marker(parent)
            th.shim_thread = parent.shim_thread or busy not in (0, BUSY_VFORK)
            th.helper = not th.shim_thread and bool(inw & SPAWNS_HELPERS)
        else:
            vm = event == F.EVENT_VFORK or (event == F.EVENT_CLONE and self._clone_vm(tid))
            proc = Proc(new, parent.proc.image, shared_vm=vm or parent.proc.shared_vm)
            # its memory is its parent's at the fork: the same counters, the same news to fetch
            proc.posted, proc.shim_bad = parent.proc.posted, 0
            proc.news.extend(parent.proc.news)
            self.fast.untold(L.U_CLEAR, new)
            self.fast.untold(L.U_COPY, new, parent.proc.pid)
            self._add_proc(proc, parent.proc.pid)
            self.log.rec(SRec.PROC, time.monotonic_ns(), new, parent.proc.pid, "fork", None)
            th = Thread(new, proc)
        if inner is not None:  # its shim's ids: the analyzer matches its log and events by them
            self.log.rec(SRec.PROC, time.monotonic_ns(), new, th.proc.pid, "nspid", inner)
        self.threads[new] = th
        th.proc.threads.add(new)
        self._sync_thread(th)
        if new in self.parked:
            self.parked.discard(new)
            self._resume(new, 0)

    def _other_pidns(self, pid: int) -> bool:
        """pid is in a PID namespace other than the stracer's (or unknown): its ids there are in
        its status (_ids); one readlink instead of the status file (~35 us a fork)."""
        try:
            return os.readlink(f"/proc/{pid}/ns/pid") != self.pidns
        except OSError:
            return True

    def _marker(self, th: Thread) -> tuple[int, int]:
        """The thread's iot_t.busy and iot_t.in_wrapper, as they are now."""
        img = th.proc.image
        if img.phase != "ready" or not self.regs.fetch(th.tid):
            return 0, 0
        m = self.mem.read(th.tid, self.r.fs_base + img.tls_off, 8)
        if not m:
            return 0, 0
        busy, inw = struct.unpack("<ii", m)
        return busy, inw

    def _clone_vm(self, tid: int) -> bool:
        if not self.regs.fetch(tid):
            return False
        r = self.r
        if r.orig_rax == 56:  # clone(flags, ...)
            return bool(r.rdi & CLONE_VM)
        if r.orig_rax == 435:  # clone3(struct clone_args *)
            m = self.mem.read(tid, r.rdi, 8)
            return bool(m and struct.unpack("<Q", m)[0] & CLONE_VM)
        return False

    def _adopt(self, tid: int) -> Thread:
        """A tracee seen before its parent's event (or never announced)."""
        tgid = _tgid(tid) or tid
        proc = self.procs.get(tgid)
        if proc is None:
            proc = Proc(tgid, Image(exe=_exe(tgid), phase="noshim"))
            self._add_proc(proc, 0)
            self._sync_image(proc.image)
        th = Thread(tid, proc)
        self.threads[tid] = th
        proc.threads.add(tid)
        self._sync_thread(th)
        return th

    def _exec(self, tid: int) -> None:
        msg = F.ffi.new("unsigned long *")
        F.libc.ptrace(F.PTRACE_GETEVENTMSG, tid, F.ffi.NULL, msg)
        former = int(msg[0])
        th = self.threads.get(former) or self.threads.get(tid) or self._adopt(tid)
        proc = th.proc
        self._kio_cut(proc.pid)  # the old image's records: before any reading of the new one
        # every other thread of the old image is gone; their deaths, if reported, are ignored
        for other in list(proc.threads):
            if other != th.tid:
                self.threads.pop(other, None)
                self._forget(other, proc.pid)
        self.threads.pop(th.tid, None)
        self._forget(th.tid, proc.pid)
        if former != tid and tid in proc.thread_io:  # the leader ended: its reading is kept
            gone = proc.thread_io.pop(tid)
            proc.leader_io = [a + b for a, b in zip(proc.leader_io, gone, strict=True)]
        th.tid = tid
        th.pending = None
        th.shim_thread = th.helper = False
        self.threads[tid] = th
        proc.threads = {tid}
        self.engines.gone(proc.pid)  # its rings and AIO contexts went with the old image
        exe = _exe(proc.pid)
        old = proc.image
        if old.aspace is not None and all(
            p.image is not old for p in self.procs.values() if p is not proc
        ):
            old.aspace.close()
        # the image read once, from what the kernel set up for it: its ELF header (its class
        # and machine), its auxiliary vector (the loader's address; 0: static) and there, in its
        # memory, the loader's program headers (no /proc/PID/maps, no realpath: ~0.2 ms an exec)
        head = _exe_head(proc.pid)
        base = _loader_base(proc.pid) if _elf64(head) else 0
        phase = self._phase_after_exec(proc.pid, bool(base))
        if not base and is_loader(exe) and _loader_only(proc.pid):
            phase = "listing"
        proc.image = Image(exe=exe, phase=phase if phase in L.PHASES else "noshim")
        text = self._loader_text(proc.pid, base)
        if phase in ("sandboxed", "unloaded"):  # no shim reads the counters after the loader's
            proc.image.ld_recorded = text
        elif phase == "listing":  # all it does is the loader's, which may be the program itself
            proc.image.ld_recorded = (0, 1 << 64)
        else:
            proc.image.ld = text
        proc.image.go = self._is_go(proc.pid)
        self._sync_image(proc.image)
        proc.shared_vm = False
        self._sync_thread(th)
        proc.posted = proc.shim_bad = 0
        proc.news.clear()
        self.fast.untold(L.U_CLEAR, proc.pid)
        self.log.rec(SRec.PROC, time.monotonic_ns(), proc.pid, 0, "exec",
                     {"exe": exe, "shim": proc.image.phase == "preinit"})  # fmt: skip
        if phase == "unloaded":
            self.log.rec(SRec.PROC, time.monotonic_ns(), proc.pid, 0, "shim", "unloaded")
            self.console.shim_unloaded(proc.pid, exe)
        if proc.image.phase != "preinit":  # no shim to read the counters at its start
            counters = read_kio(str(proc.pid))
            if counters is not None:
                self.log.rec(SRec.KIO, time.monotonic_ns(), proc.pid, counters, [0, 0, 0, 0],
                             "exec")  # fmt: skip
        self._exec_notes(proc.pid, exe, head)

    def _exec_notes(self, pid: int, exe: str, head: bytes) -> None:
        """What the trace cannot show of this image, said once per program: another ABI (the
        filter lets it through, the 64-bit shim does not load), or set-user/group-ID bits the
        kernel ignored because a non-root tracer traces the exec."""
        abi = _other_abi(head)
        if abi:
            self.log.rec(SRec.PROC, time.monotonic_ns(), pid, 0, "untraced", abi)
            self.console.untraced(pid, exe, abi)
        if os.geteuid() != 0:
            try:
                mode = os.stat(f"/proc/{pid}/exe").st_mode
            except OSError:
                return
            if mode & (stat.S_ISUID | stat.S_ISGID):
                self.console.setid_lost(pid, exe, "user" if mode & stat.S_ISUID else "group")

    def _phase_after_exec(self, pid: int, dyn: bool) -> str:
        """preinit: the shim will load (dynamic executable, LD_PRELOAD names it): what happens
        before its hello is the loader's.  noshim: nothing it does is seen by a shim.
        sandboxed: exec'd under the app's seccomp filter, the shim loads but stays out without
        a syscall (preload/sandbox.c): noshim, and the loader's I/O is not a shim's start's.
        listing: the loader lists the objects and exits, the program never runs (ldd's
        LD_TRACE_LOADED_OBJECTS, the shim takes itself out of LD_PRELOAD there; or the loader
        run as a program to --verify or --list one, _loader_only): noshim, and the loader's I/O
        is all the image's.
        dyn: a 64-bit image the kernel gave a program interpreter (the loader honours
        LD_PRELOAD)."""
        raw = _proc_read(f"/proc/{pid}/environ")
        if raw is None:
            return "noshim"
        env = raw.split(b"\0")
        if b"IOTRACE_SANDBOXED=1" in env:
            return "sandboxed"
        if any(e.startswith(b"LD_TRACE_LOADED_OBJECTS=") for e in env):
            return "listing"
        shim = self.shim.encode()
        preload = any(e.startswith(b"LD_PRELOAD=") and shim in e for e in env)
        if not preload or not dyn:
            return "noshim"
        # the shim's path as the process sees it (its root, its mount namespace): a container
        # or chroot without it, where the loader cannot load it (the rest: _shim_unloaded)
        try:
            os.stat(f"/proc/{pid}/root{self.shim}")
        except FileNotFoundError:
            return "unloaded"
        except OSError:
            pass
        return "preinit"

    def _loader_text(self, tid: int, base: int) -> tuple[int, int]:
        """The executable mapping of the program interpreter (ld.so), which the kernel mapped at
        the exec at `base` (its auxiliary vector's AT_BASE): from its program headers, read in
        the new image's memory; the mapping /proc/PID/maps shows (its first executable PT_LOAD,
        page-aligned).  (0, 0): no interpreter."""
        head = self.mem.read(tid, base, 64) if base else None
        if not _elf64(head):
            return (0, 0)
        assert head is not None
        (phoff,) = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        if phentsize < 56 or not 0 < phnum <= 64:
            return (0, 0)
        ph = self.mem.read(tid, base + phoff, phentsize * phnum)
        if not ph or len(ph) != phentsize * phnum:
            return (0, 0)
        for i in range(phnum):
            ptype, flags, _off, vaddr, _pa, filesz = struct.unpack_from(
                "<IIQQQQ", ph, i * phentsize
            )
            if ptype == PT_LOAD and flags & PF_X:
                lo = base + vaddr
                return (lo & ~(PAGE - 1), (lo + filesz + PAGE - 1) & ~(PAGE - 1))
        return (0, 0)

    def _is_go(self, pid: int) -> bool:
        """elf.is_go of the image's file, once per version of it (inode, mtime and size: elf's
        own key, less the /proc/PID path, which is new at every exec)."""
        try:
            st = os.stat(f"/proc/{pid}/exe")
        except OSError:
            return False
        key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        go = self.go_cache.get(key)
        if go is None:
            go = self.go_cache[key] = is_go(f"/proc/{pid}/exe")
        return go

    def _exit_stop(self, tid: int) -> None:
        """A thread is about to exit: the process's I/O counters as the kernel has them now (the
        last thread's reading holds them all; a SIGKILL'd process may never stop here)."""
        th = self.threads.get(tid)
        pid = th.proc.pid if th is not None else (_tgid(tid) or tid)
        self.engines.look(pid, tid, every=True)  # completions, while its fds still have paths
        proc = self.procs.get(pid)
        if proc is None:
            return
        if th is not None:
            self._died_in_call(th)
        mine = read_kio(f"{pid}/task/{tid}")
        if mine is not None:
            proc.thread_io[tid] = mine[:4]
            if th is not None and th.shim_thread:  # its I/O is the shim's own, not the app's
                proc.kio_own = [a + b for a, b in zip(proc.kio_own, mine[:4], strict=True)]
        counters = read_kio(str(pid))
        if counters is not None:
            proc.kio = (time.monotonic_ns(), counters)
            # a thread a signal ends may be inside a wrapper, its event never recorded: the
            # shim's sums are taken only from an exit (its last events then counted from the
            # trace, docs/analyzer.md)
            msg = F.ffi.new("unsigned long *")
            exited = F.libc.ptrace(F.PTRACE_GETEVENTMSG, tid, F.ffi.NULL, msg) == 0
            exited = exited and os.WIFEXITED(int(msg[0]) & 0xFFFF)
            proc.kio_shim = self._shim_sums(proc, tid) if exited else None

    def _shim_sums(self, proc: Proc, tid: int) -> list[int] | None:
        """The shim's own I/O and its events' sums as its memory holds them at an exit stop
        (preload/kio.c; the addresses from its iot_link): own rchar, wchar, syscr, syscw, then
        the events' rchar,
        wchar, syscr, syscw, stdio read, written.  An image that ends without its exit reading
        (a raw exit_group) is explained by them exactly.  None: no shim (or one that reads
        none), a vfork child (its memory is its parent's), or unreadable."""
        img = proc.image
        if not img.link or not img.kio or img.phase != "ready" or proc.shared_vm:
            return None
        raw = self.mem.read(tid, img.link, LINK.size)
        if raw is None or len(raw) != LINK.size:
            return None
        ln = dict(zip(LINK_NAMES, LINK.unpack(raw), strict=True))
        n = fmt.KIO_LIVE_MAX
        where = (("kio_own", 32), ("kio_gone", 48), ("kio_live", 8 * n))
        got = [self.mem.read(tid, ln[k], size) for k, size in where]
        if any(g is None for g in got) or [len(g or b"") for g in got] != [32, 48, 8 * n]:
            return None
        own_b, gone_b, live_b = (g or b"" for g in got)
        own, sums = list(struct.unpack("<4Q", own_b)), list(struct.unpack("<6Q", gone_b))
        # the table's words from its first in use to its last, not a Python step for each of its
        # 1,024 (~90 us a process; bytes.strip is no faster: a memchr per byte); mostly none
        word = int.from_bytes(live_b, "little") if live_b != LIVE_NONE else 0
        lo = ((word & -word).bit_length() - 1) // 64 * 8 if word else 0
        hi = (word.bit_length() + 63) // 64 * 8
        for (ptr,) in struct.iter_unpack("<Q", live_b[lo:hi]):
            if ptr:  # a live thread's sums, in its TLS (a thread exit_group ended kept its entry)
                d = self.mem.read(tid, ptr, 48)
                if d is None or len(d) != 48:
                    return None
                sums = [a + b for a, b in zip(sums, struct.unpack("<6Q", d), strict=True)]
        return own + sums

    def _died_in_call(self, th: Thread) -> None:
        """A read- or write-type syscall a wrapper issued (with the cookie: no stop) that the
        thread died in or on its way back from it (a write cut short by SIGPIPE, a read when
        another thread's exit_group came): the kernel counted it (and the bytes it moved), the
        shim never saw it return.  The registers at the exit stop still hold it: orig_rax its
        number (an interrupt's or a fault's entry sets -1), rax its result, the argument
        registers its arguments.  Recorded as a MISSED record of class "killed" (the call's
        site unwound), so that the trace explains it.  One the stracer follows is finished as
        it returns, or by _gone."""
        if th.pending is not None or self.fast.lib.iotl_pending(th.tid):
            return
        if not self.regs.fetch(th.tid):
            return
        r = self.r
        sc = SYSCALL_BY_NR.get(r.orig_rax)
        if sc is None or sc.name not in KERNEL_IO_SYSCALLS or not self._unfollowed(th, sc):
            return
        ret = r.rax - (1 << 64) if r.rax >> 63 else r.rax
        self._missed_entry(th, sc, self._new_site(th), L.C_COVERED)
        self._finish(th, ret, name="killed")

    def _unfollowed(self, th: Thread, sc: Syscall) -> bool:
        """The syscall the registers hold is one no one followed to its exit: it carries the
        cookie (in the slot it does not use: the shim's asm clears it after the syscall, which
        a thread that died on the way back never ran), or it stopped as covered (the shim's
        markers set, or a thread the shim or libc started for a wrapped call).  Otherwise it
        was followed: recorded at its exit stop, or by _gone."""
        r = self.r
        slot = sc.cookie_slot
        if self.cookie is not None and slot is not None:
            regs = (r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9)
            if regs[slot] == self.cookie:
                return True
        img = th.proc.image
        if img.phase != "ready":
            return False
        if th.shim_thread or th.helper:
            return True
        raw = self.mem.read(th.tid, r.fs_base + img.tls_off, 8) if img.tls_off else None
        if not raw or len(raw) != 8:
            return False
        busy, inw = struct.unpack("<II", raw)
        return bool((busy and busy != BUSY_VFORK) or inw)

    def _gone(self, tid: int, status: int) -> None:
        self.parked.discard(tid)
        th = self.threads.pop(tid, None)
        if th is None:
            return
        if th.pending is not None:
            self._finish(th, None)  # never returned (killed in the syscall)
        elif self.fast.lib.iotl_abandon(tid):
            self._drain()  # the same, for a syscall the C loop was following
        proc = th.proc
        self._forget(tid, proc.pid)
        proc.threads.discard(tid)
        proc.unread = proc.unread or tid not in proc.thread_io
        if tid == proc.pid:
            rc = os.waitstatus_to_exitcode(status)
            self.log.rec(SRec.PROC, time.monotonic_ns(), proc.pid, 0, "exit", rc)
            if tid == self.root:
                self.returncode = rc
                if self.on_root_exit is not None:
                    self.on_root_exit(rc)
        if not proc.threads:
            self._kio_cut(proc.pid)  # before its end reading (its pid may be reused)
            self.engines.gone(proc.pid)
            self.procs.pop(proc.pid, None)
            self.fast.untold(L.U_CLEAR, proc.pid)
            if proc.kio is not None:
                own_io = [sum(v) for v in zip(*proc.thread_io.values(), strict=True)]
                if any(proc.leader_io):
                    own_io = [a + b for a, b in zip(own_io or [0] * 4, proc.leader_io, strict=True)]
                if proc.unread:  # the process's counters then (less the children it reaped)
                    own_io = []
                counters = proc.kio[1]
                if any(proc.restarted):  # the kernel's counts of the app's calls, not ours
                    cut = proc.restarted
                    pad = [*cut, *[0] * (len(counters) - len(cut))]
                    counters = [v - d for v, d in zip(counters, pad, strict=True)]
                    own_io = own_io and [v - d for v, d in zip(own_io, cut, strict=True)]
                self.log.rec(SRec.KIO, proc.kio[0], proc.pid, counters, proc.kio_own, "end",
                             own_io or None, proc.kio_shim)  # fmt: skip

    # ---- the end line's sums (kio.run_job) -----------------------------------------------------

    def _kio_add(self, rec: list[Any]) -> None:
        """A MISSED record Python wrote: its sums join its process's in the C loop, but a call a
        thread died in, kept apart (the line names the calls by syscall)."""
        for pid, evs in stracer_sums([rec]).items():
            for t, sums, killed in evs:
                if killed:
                    self.kio_events.setdefault(pid, []).append((t, sums, killed))
                elif self.fast.lib.iotl_kio_add(pid, t, sums) != 0:
                    self.kio_lost = True

    def _kio_cut(self, pid: int) -> None:
        """The sums of pid's records since its last cut (pid 0: every process's), as one event
        at the latest of their times.  Cut where one of its readings the end line places events
        against may come between two of its records: its exec, its shim's hello (its start
        reading follows), its end; so each sum lies on the same side of every reading as each
        of its records (docs/stracer.md, "The end line")."""
        try:
            while got := self.fast.kio_take(pid):
                self.kio_events.setdefault(got[0], []).append((got[1], got[2], ""))
                if pid:
                    break
        except OSError:
            self.kio_lost = True

    def end_part(self) -> StracerPart | None:
        """What the run's end line needs of this stracer's log, as it was written; None if the
        log lost records (a full disk) or a sum was lost: the line then reads the log."""
        self._kio_cut(0)
        if self.log.error is not None or self.kio_lost:
            return None
        kept = self.log.kept
        return StracerPart(os.uname().nodename, [r for r in kept if r[0] == SRec.PROC],
                           [r for r in kept if r[0] == SRec.KIO], self.kio_events)  # fmt: skip

    def remaining(self) -> list[int]:
        """The traced processes still alive, the command's own process aside."""
        return [p for p in self.procs if p != self.root and _alive(p)]

    def finish(self) -> None:
        self.engines.close()
        for tid, th in list(self.threads.items()):
            self._forget(tid, th.proc.pid)
        for pid, c in self.pcounts.items():
            if c:
                self.log.rec(SRec.COUNTS, pid, dict(c))
        self.log.rec(SRec.END, time.monotonic_ns(), self.returncode, flush=True)
        close_symbolisers()


def _fd_pos(pid: int, fd: int) -> int | None:
    """A descriptor's file position (/proc/PID/fdinfo/FD), None if unknown."""
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}", "rb") as f:
            head = f.readline()
    except OSError:
        return None
    return int(head.split()[1]) if head.startswith(b"pos:") else None


def _msg(op: int, a: int, b: int, path: str) -> bytes:
    return BOX_MSG.pack(op, a, b, 0) + path.encode(errors="surrogateescape")


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def read_kio(task: str) -> list[int] | None:
    """/proc/TASK/io's counters in KIO_FIELDS order (TASK: a pid, or PID/task/TID), or None."""
    raw = _proc_read(f"/proc/{task}/io")
    if raw is None:
        return None
    try:
        values = [int(line.split(b":")[1]) for line in raw.split(b"\n") if b":" in line]
    except (ValueError, IndexError):
        return None
    return values if len(values) == len(KIO_FIELDS) else None


def _tgid(tid: int) -> int:
    return _ids(tid)[0]


def _ids(tid: int) -> tuple[int, int | None]:
    """The thread's process (0: gone) and, when its PID namespace is not the stracer's (unshare
    -p, a container), its id there: its shim names its log, its events and its children by
    that one (NSpid's last; the stracer and the kernel's counters by the first)."""
    got = _status(tid, b"Tgid", b"NSpid")
    tgid, ids = 0, got.get(b"NSpid", [])
    try:
        tgid = int(got[b"Tgid"][0])
        return tgid, int(ids[-1]) if len(ids) > 1 else None
    except (KeyError, IndexError, ValueError):
        return tgid, None


def _status(tid: int, *names: bytes) -> dict[bytes, list[bytes]]:
    """Fields of /proc/TID/status by name: their words (none if the thread is gone)."""
    out = {}
    for line in (_proc_read(f"/proc/{tid}/status") or b"").split(b"\n"):
        name, _, rest = line.partition(b":")
        if name in names:
            out[name] = rest.split()
    return out


def _alive(pid: int) -> bool:
    """Not gone nor a zombie (its exit not yet seen)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rpartition(b")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def _ignores(pid: int, sig: int) -> bool:
    """Process pid ignores signal sig: SIG_IGN, or the default action is to ignore it and it
    has no handler (/proc/PID/status SigIgn and SigCgt: hex, bit N-1 for signal N)."""
    got = _status(pid, b"SigIgn", b"SigCgt")
    try:
        ign, cgt = (int(got[k][0], 16) for k in (b"SigIgn", b"SigCgt"))
    except (KeyError, IndexError, ValueError):
        return False
    bit = 1 << (sig - 1)
    return bool(ign & bit) or (sig in DEFAULT_IGNORED and not cgt & bit)


def _caught(pid: int, sig: int) -> bool:
    """Process pid has a handler for signal sig (/proc/PID/status SigCgt)."""
    try:
        return bool(int(_status(pid, b"SigCgt")[b"SigCgt"][0], 16) & 1 << (sig - 1))
    except (KeyError, IndexError, ValueError):
        return False


def _exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


# ld.so's own options: those that end it before any program runs, and those taking a value
LOADER_ONLY = {b"--verify", b"--list", b"--list-tunables", b"--list-diagnostics", b"--help",
               b"--version"}  # fmt: skip
LOADER_VALUED = {b"--library-path", b"--inhibit-rpath", b"--audit", b"--preload", b"--argv0",
                 b"--glibc-hwcaps-prepend", b"--glibc-hwcaps-mask"}  # fmt: skip


def _loader_only(pid: int) -> bool:
    """The loader run as the program (ldd's `ld.so --verify FILE`) with an option that ends it
    before the program it names runs: no shim will start there."""
    raw = _proc_read(f"/proc/{pid}/cmdline")
    args = iter(raw.split(b"\0")[1:] if raw else ())
    for a in args:
        if a in LOADER_ONLY:
            return True
        if a in LOADER_VALUED:
            next(args, None)
        elif not a.startswith(b"--"):
            return False
    return False


def _proc_read(path: str) -> bytes | None:
    """A /proc file's bytes (status, io, auxv, environ), with a bare open and read (Python's file
    object costs ~4 us more).  A read short of the buffer is the end: these files give all they
    have that fits (environ) or whole lines while they fit, and each is far shorter than the
    buffer (environ aside), so there is no read of nothing to say so."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        chunks = [os.read(fd, PROC_READ)]
        while len(chunks[-1]) == PROC_READ:
            chunks.append(os.read(fd, PROC_READ))
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _exe_head(pid: int) -> bytes:
    """The first 64 bytes of the process's executable (its ELF header); b"" if unreadable."""
    try:
        fd = os.open(f"/proc/{pid}/exe", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        return os.read(fd, 64)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _elf64(head: bytes | None) -> bool:
    return bool(head) and len(head) >= 64 and head[:4] == b"\x7fELF" and head[4] == 2


def _auxv(pid: int, want: int) -> int:
    """An entry of a 64-bit process's auxiliary vector; 0 when it has none."""
    auxv = _proc_read(f"/proc/{pid}/auxv") or b""
    for key, value in struct.iter_unpack("<QQ", auxv[: len(auxv) & ~15]):
        if key == want:
            return value
        if key == 0:
            break
    return 0


def _loader_base(pid: int) -> int:
    """AT_BASE: where the kernel mapped the program interpreter; 0 without one (a static
    executable, the loader run as the program)."""
    return _auxv(pid, AT_BASE)


def _other_abi(head: bytes) -> str | None:
    """The ABI of an ELF (its header) the x86_64 filter and shim do not cover ("i386", "x32"),
    else None."""
    if len(head) < 20 or head[:4] != b"\x7fELF" or head[4] != 1:
        return None
    machine = struct.unpack_from("<H", head, 18)[0]
    return "i386" if machine == 3 else "x32" if machine == 62 else f"32-bit machine {machine}"
