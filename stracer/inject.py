"""`iotrace attach --shim PID`: load the shim into a running process, so that its calls are
recorded as `iotrace run` records them (function-level events, stacks) from that moment, until
Ctrl-C or SIGTERM; then unload its bindings and leave the process running (docs/attach.md).

The process is stopped only for the calls made in it: one thread is seized (PTRACE_SEIZE,
PTRACE_INTERRUPT) and made to call, as if it had called them itself, setenv (the trace
directory, for the shim's start-up), dlopen (the shim: its constructor starts it and binds the
process's calls to its wrappers, preload/inject.c), and at the end dlsym and iotrace_detach.
Each call runs on the thread's stack below its red zone, returns to address 0, and the fault
that follows (SIGSEGV at 0, never delivered) gives the result; the thread's registers are then
put back, so it resumes where it was, a syscall it was in restarted as the kernel would.
Between the start and the end the process is not traced at all: no ptrace stop.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from typing import Any

from iotrace.stracer import _ffi as F

PTRACE_SETREGS = 13
PTRACE_DETACH = 17
WALL = 0x40000000
RED_ZONE = 128
RTLD_NOW = 2


class InjectError(Exception):
    """The shim cannot be loaded into the process (one line)."""


def _libc_base(pid: int | str, shim_there: bool = True) -> tuple[int, str, int]:
    """Where libc is mapped in a process: (base address, path, inode).  `shim_there` False:
    one with the shim mapped already is refused."""
    found = None
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            name = os.path.basename(parts[5]) if len(parts) >= 6 else ""
            if name.startswith("libiotrace") and not shim_there:
                raise InjectError(f"process {pid} has the shim already (iotrace run?)")
            if name.startswith("libc.so") and int(parts[2], 16) == 0 and found is None:
                found = int(parts[0].split("-")[0], 16), parts[5], int(parts[4])
    if found is None:
        raise InjectError(f"process {pid} has no libc to load the shim with (static? Go?)")
    return found


class Remote:
    """Calls made in one thread of another process."""

    def __init__(self, pid: int, shim_there: bool = True) -> None:
        self.pid = pid
        base, path, ino = _libc_base(pid, shim_there)
        mine, my_path, my_ino = _libc_base("self")
        if (path, ino) != (my_path, my_ino):
            raise InjectError(f"process {pid} runs another libc ({path}) than iotrace's")
        libc = ctypes.CDLL(None)
        # the same libc file: a function's offset in it is the same in both processes
        self.fn = {
            name: base + ctypes.cast(getattr(libc, name), ctypes.c_void_p).value - mine
            for name in ("setenv", "unsetenv", "dlopen", "dlsym", "dlerror")
        }
        self.saved = F.ffi.new("struct user_regs_struct *")
        self.regs = F.ffi.new("struct user_regs_struct *")
        self.mem = F.Mem()

    def __enter__(self) -> Remote:
        if F.ptrace_raw(F.PTRACE_SEIZE, self.pid, F.ffi.NULL, F.ffi.NULL):
            raise InjectError(f"cannot attach to {self.pid}: {os.strerror(F.ffi.errno)}")
        F.ptrace_raw(F.PTRACE_INTERRUPT, self.pid, F.ffi.NULL, F.ffi.NULL)
        self._wait_stop()
        if F.libc.ptrace(F.PTRACE_GETREGS, self.pid, F.ffi.NULL, self.saved) != 0:
            raise InjectError(f"cannot read the registers of {self.pid}")
        return self

    def __exit__(self, *exc: object) -> None:
        F.libc.ptrace(PTRACE_SETREGS, self.pid, F.ffi.NULL, self.saved)
        F.ptrace_raw(PTRACE_DETACH, self.pid, F.ffi.NULL, F.ffi.NULL)

    def _wait_stop(self) -> int:
        """The thread's next stop; other signals meanwhile are delivered to it as they came."""
        while True:
            _, status = os.waitpid(self.pid, WALL)
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                raise InjectError(f"process {self.pid} ended")
            sig = os.WSTOPSIG(status)
            if status >> 16 == F.EVENT_STOP or sig == signal.SIGSEGV:
                return sig
            # a signal for the app: it gets it, at this point of its run
            F.ptrace_raw(F.PTRACE_CONT, self.pid, F.ffi.NULL, F.ffi.cast("void *", sig))

    def call(self, fn: str | int, *args: int | bytes) -> int:
        """fn(*args) in the thread; bytes arguments are copied onto its stack, NUL-ended."""
        r = self.regs
        F.ffi.memmove(r, self.saved, F.ffi.sizeof("struct user_regs_struct"))
        top = (self.saved.rsp - RED_ZONE - 256) & ~0xF
        values = []
        for a in args:
            if isinstance(a, bytes):
                top = (top - len(a) - 1) & ~0xF
                if not self.mem.write(self.pid, top, a + b"\0"):
                    raise InjectError(f"cannot write into process {self.pid}")
                values.append(top)
            else:
                values.append(a)
        sp = top - 64 - 8  # at a function's entry rsp % 16 == 8: a call pushed its return
        if not self.mem.write(self.pid, sp, b"\0" * 8):  # returns to 0: a fault ends the call
            raise InjectError(f"cannot write into process {self.pid}")
        for reg, v in zip(("rdi", "rsi", "rdx"), values, strict=False):
            setattr(r, reg, v)
        r.rsp, r.rax = sp, 0
        r.rip = self.fn[fn] if isinstance(fn, str) else fn
        r.orig_rax = 2**64 - 1  # not in a syscall: no restart of the one it was in
        F.libc.ptrace(PTRACE_SETREGS, self.pid, F.ffi.NULL, r)
        F.ptrace_raw(F.PTRACE_CONT, self.pid, F.ffi.NULL, F.ffi.NULL)
        while True:
            sig = self._wait_stop()
            F.libc.ptrace(F.PTRACE_GETREGS, self.pid, F.ffi.NULL, r)
            if sig == signal.SIGSEGV and r.rip == 0:
                return int(r.rax)
            if sig == signal.SIGSEGV:  # the call itself faulted: the app would have died
                raise InjectError(f"the call faulted in process {self.pid}")
            F.ptrace_raw(F.PTRACE_CONT, self.pid, F.ffi.NULL, F.ffi.NULL)

    def error(self) -> str:
        p = self.call("dlerror")
        return (self.mem.read_str(self.pid, p) or "?") if p else "?"


def _fsuid(pid: int) -> int | None:
    """The uid a process creates files as (/proc/PID/status Uid: real, effective, saved, fs)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[4])
    return None


def inject(pid: int, trace_dir: str, shim: str, say: Any) -> int:
    """Load the shim into `pid`, recording into `trace_dir`, until Ctrl-C or SIGTERM."""
    # the shim writes its log as the process: root's `attach --shim` of another user's said
    # "its calls are recorded" and "trace written", and no log could be made in the private
    # trace directory (nor may that user write there)
    uid = _fsuid(pid)
    if uid is not None and uid != os.geteuid():
        raise InjectError(f"process {pid} runs as uid {uid}: the shim loaded into it could not "
                          f"write the trace directory, which is uid {os.geteuid()}'s alone; "
                          "attach without --shim records its syscalls")  # fmt: skip
    with Remote(pid, shim_there=False) as rem:
        rem.call("setenv", b"IOTRACE_OUT", trace_dir.encode(), 1)
        rem.call("setenv", b"IOTRACE_INJECTED", b"1", 1)
        handle = rem.call("dlopen", shim.encode(), RTLD_NOW)
        if not handle:
            why = rem.error()
            for var in (b"IOTRACE_OUT", b"IOTRACE_INJECTED"):  # the app's environment as it was
                rem.call("unsetenv", var)
            raise InjectError(f"process {pid} could not load the shim: {why}")
        detach = rem.call("dlsym", handle, b"iotrace_detach")
    say(f"iotrace: shim loaded into {pid}: its calls are recorded; Ctrl-C to detach")
    ending = []

    def end(_sig: int, _frame: object) -> None:
        ending.append(1)

    old = [signal.signal(s, end) for s in (signal.SIGINT, signal.SIGTERM)]
    try:
        while not ending and os.path.exists(f"/proc/{pid}"):
            with contextlib.suppress(InterruptedError):
                time.sleep(0.1)
    finally:
        for s, h in zip((signal.SIGINT, signal.SIGTERM), old, strict=True):
            signal.signal(s, h)
    if not os.path.exists(f"/proc/{pid}"):
        say(f"iotrace: process {pid} ended")
        return 0
    with Remote(pid) as rem:
        rem.call(detach)
    say(f"iotrace: detached from {pid}: the shim's bindings undone, it runs on")
    return 0
