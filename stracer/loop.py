"""The C hot loop (_loop.c), loaded with cffi in ABI mode (docs/stracer.md, "Performance").

Built by CMake at install time next to this module (`_loop.so`); a source edited since then,
or an install without it, is compiled once per machine into a cache directory.  It makes every
verdict on a stop (covered, loader, shim's own, libc-internal, bypass): without it there is no
stracer (`iotrace run` says so and traces with the shim alone).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from iotrace.calls import SYSCALLS, Syscall
from iotrace.native import ffi as native_ffi
from iotrace.native import library as native_library

EV_STOP, EV_BATCH, EV_ECHILD, EV_EINTR = 1, 2, 3, 4
PHASES = {"launch": 0, "preinit": 1, "ready": 2, "noshim": 3}
# the classes (C_* in _loop.c); "libc": libc-internal, "bypass": missed I/O
COUNT_NAMES = ("covered", "loader", "shim", "libc", "bypass")
C_COVERED, C_LOADER, C_LIBC, C_BYPASS = 0, 1, 3, 4
V_PY, V_NEW, V_REC = 0, 1, 2  # a stop handed to Python (_loop.c)
# a call site's chain (_loop.c iotl_frame): at most CHAIN_MAX return addresses; a frame's
# delta D_OUT ends it (outside libc and the loader), D_VAR: the frame's size varies
CHAIN_MAX, D_OUT, D_VAR = 12, -(1 << 31), -(1 << 31) + 1
T_APP, T_SHIM, T_HELPER, T_VMCHILD = 0, 1, 2, 3  # iotl_thread's kind

_CDEF = """
typedef struct { int tid, status; int verdict, site, cls; uint64_t top, t; } iotl_ev;
typedef struct { int pid, site, nr, count, cls; int32_t path_off, path_len; long long bytes; }
    iotl_tally;
typedef struct { uint8_t *buf; size_t len; int nrec, ntally; iotl_tally *tally; } iotl_batch;
int iotl_thread(int tid, int pid, int img, int kind);
int iotl_forget(int tid, long long *out);
int iotl_pending(int tid);
int iotl_image(int id, int phase, long tls_off, uint64_t link, uint64_t ld_lo, uint64_t ld_hi);
int iotl_frame(int img, uint64_t pc, int isip, int delta);
int iotl_site(int img, uint64_t ip, int nw, const uint64_t *w, int site, int cls);
int iotl_seccomp(int tid, iotl_ev *ev);
int iotl_nr(int nr, int fast, int nargs, const uint8_t *conv, int fdarg, int fdchg,
            const char *name);
iotl_batch *iotl_batch_state(void);
void iotl_batch_reset(void);
int iotl_abandon(int tid);
int iotl_run(iotl_ev *ev);
int iotl_follow(int on);
void iotl_spin(long long ns);
"""

# argument kinds the C loop encodes itself: 0 unsigned, 1 signed 32-bit, 2 signed 64-bit
# (syscall_args.py's SIMPLE converters for these are exactly int, _signed32, _signed64)
_CONV = {"fd": 1, "off": 2, "int": 2, "size": 0, "iovcnt": 0, "buf": 0, "ptr": 0, "iov": 0}


def fast_kind(sc: Syscall) -> tuple[bytes, int] | None:
    """(conversions, descriptor argument) when the C loop can record sc by itself: no path or
    string argument, no effect on the descriptor table, one descriptor (not a call with two ends:
    tracer.py records both), every argument a plain integer, not an asynchronous engine's (its
    operations are decoded in Python: engines.py)."""
    if sc.fdop or sc.ends or sc.engine or sc.name == "mmap" or any(k not in _CONV for k in sc.args):
        return None
    conv = bytes(_CONV[k] for k in sc.args).ljust(6, b"\0")
    fdarg = 0 if sc.args and sc.args[0] == "fd" else -1
    return conv, fdarg


class Loop:
    """The loaded library, its event struct and batch."""

    def __init__(self, path: Path) -> None:
        self.ffi = native_ffi("loop", _CDEF)
        self.lib: Any = self.ffi.dlopen(str(path))
        self.ev = self.ffi.new("iotl_ev *")
        self.batch = self.lib.iotl_batch_state()
        self.counts = self.ffi.new("long long[]", len(COUNT_NAMES))
        # placement (docs/stracer.md, "Performance"): poll up to SPIN_US for the next stop
        # before sleeping; following the tracee's CPU only with IOTRACE_STRACER_FOLLOW=1
        self.lib.iotl_follow(os.environ.get("IOTRACE_STRACER_FOLLOW", "") == "1")
        self.lib.iotl_spin(_spin_us() * 1000)
        for sc in SYSCALLS:
            fk = fast_kind(sc)
            conv, fdarg = fk if fk else (b"\0" * 6, -1)
            self.lib.iotl_nr(
                sc.nr, fk is not None, len(sc.args), conv, fdarg, bool(sc.fdop), sc.name.encode()
            )

    def forget(self, tid: int) -> dict[str, int] | None:
        """Drop a thread; its counts of stops handled here."""
        if not self.lib.iotl_forget(tid, self.counts):
            return None
        return {n: int(self.counts[i]) for i, n in enumerate(COUNT_NAMES) if self.counts[i]}


SPIN_US = 100


def _spin_us() -> int:
    try:
        return max(0, int(os.environ.get("IOTRACE_STRACER_SPIN_US", SPIN_US)))
    except ValueError:
        return SPIN_US


@functools.lru_cache(maxsize=1)
def library() -> Path | None:
    return native_library("iotrace.stracer", "_loop", "stloop", say=False)


def load() -> Loop | None:
    """A fresh Loop (its state is the process's: one tracer per process), or None."""
    path = library()
    if path is None:
        return None
    try:
        return Loop(path)
    except OSError:
        return None
