"""The C hot loop (_loop.c), loaded with cffi in ABI mode (docs/stracer.md, "Performance").

Built by CMake at install time next to this module (`_loop.so`); a source edited since then,
or an install without it, is compiled once per machine into a cache directory.  It makes every
verdict on a stop (covered, loader, shim's own, libc-internal, bypass): without it there is no
stracer (`iotrace run` says so and traces with the shim alone).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

from iotrace.stracer.syscall_args import plan

from iotrace.calls import (
    KERNEL_IO_MODES,
    KERNEL_IO_SYSCALLS,
    KERNEL_IO_UNCOUNTED,
    SYSCALLS,
    Syscall,
    kernel_io_args,
    kernel_io_checks,
)
from iotrace.native import ffi as native_ffi
from iotrace.native import library as native_library

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing for type checkers only: ~2 ms of the stracer's start (issue 19)
    from typing import Any

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
int iotl_nr(int nr, int mode, int nargs, const uint8_t *kind, int fdarg, int patharg,
            int dirfdarg, int fdop, int kio, int checks, int offarg, int countarg,
            const char *name);
int iotl_kio_add(int pid, int64_t t, const int64_t *sums);
int iotl_kio_take(int pid, int64_t *out);
int iotl_conv(int kind, uint64_t value, const uint8_t *bytes, int len);
int iotl_untold(int op, int pid, int a, int b);
iotl_batch *iotl_batch_state(void);
void iotl_batch_reset(void);
int iotl_abandon(int tid);
int iotl_run(iotl_ev *ev);
int iotl_follow(int on);
void iotl_spin(long long ns);
"""

# how the C loop records a syscall (_loop.c M_*): M_PY by Python, M_FAST integer arguments and
# no descriptor effect, M_PATH strings, flags, and the opens and closes libc makes for itself
M_PY, M_FAST, M_PATH = 0, 1, 2
# argument kinds the C loop encodes itself (_loop.c K_*): unsigned, signed 32-bit, signed
# 64-bit, a dirfd, a string (syscall_args.py's SIMPLE converters for these: int or _ident,
# _signed32, _signed64, "dirfd", read_str); the decoded kinds after them are Python's
# converters, whose encodings the C loop learns value by value (Loop.teach)
_DECODED = ("whence", "oflags", "mode", "amode", "atflags", "fcntlcmd", "prot", "mflags",
            "domain", "socktype", "fdflags", "mfdflags")  # fmt: skip
K_DEC = 5
_KINDS = {"size": 0, "iovcnt": 0, "buf": 0, "ptr": 0, "iov": 0, "fds2": 0, "fd": 1, "off": 2,
          "int": 2, "dirfd": 3, "path": 4, "str": 4} | {
          k: K_DEC + i for i, k in enumerate(_DECODED)}  # fmt: skip
FD_OPS = {"": 0, "open": 1, "close": 2}  # _loop.c FD_*; any other effect: FD_OTHER (3)
U_HAS, U_ADD, U_DEL, U_RANGE, U_CLEAR, U_COPY = range(6)  # iotl_untold's operations


def record_mode(sc: Syscall, paths: bool = True) -> int:
    """How the C loop records sc at a call site it knows.  Never a call with two ends (tracer.py
    records both) nor an asynchronous engine's (engines.py decodes its operations); M_FAST: no
    path or string argument, no effect on descriptors, every argument a plain integer; M_PATH
    (paths): any other whose effect is none, an open or a close."""
    if sc.ends or sc.engine or any(k not in _KINDS for k in sc.args):
        return M_PY
    if not sc.fdop and sc.name != "mmap" and all(_KINDS[k] <= 2 for k in sc.args):
        return M_FAST
    return M_PATH if paths and sc.fdop in FD_OPS else M_PY


class Loop:
    """The loaded library, its event struct and batch."""

    def __init__(self, path: Path) -> None:
        self.ffi = native_ffi("loop", _CDEF)
        self.lib: Any = self.ffi.dlopen(str(path))
        self.ev = self.ffi.new("iotl_ev *")
        self.batch = self.lib.iotl_batch_state()
        self.counts = self.ffi.new("long long[]", len(COUNT_NAMES))
        self.kio_out = self.ffi.new("int64_t[]", 5)
        # placement (docs/stracer.md, "Performance"): poll up to SPIN_US for the next stop
        # before sleeping; following the tracee's CPU only with IOTRACE_STRACER_FOLLOW=1
        self.lib.iotl_follow(os.environ.get("IOTRACE_STRACER_FOLLOW", "") == "1")
        self.lib.iotl_spin(_spin_us() * 1000)
        # IOTRACE_STRACER_PYREC=1: path and descriptor syscalls recorded by Python, as before
        # the C loop did (the records are the same: tests/test_stracer.py compares them)
        paths = os.environ.get("IOTRACE_STRACER_PYREC", "") != "1"
        self.taught: set[tuple[int, int]] = set()
        self.decoded: dict[int, tuple[tuple[int, int], ...]] = {}  # nr -> (position, kind)
        for sc in SYSCALLS:
            mode = record_mode(sc, paths)
            kinds = bytes(_KINDS.get(k, 0) for k in sc.args).ljust(6, b"\0")
            pl = plan(sc)
            if mode == M_PATH:
                self.decoded[sc.nr] = tuple(
                    (i, _KINDS[k]) for i, k in enumerate(sc.args) if _KINDS[k] >= K_DEC
                )
            fdop = FD_OPS.get(sc.fdop, 3)
            # how the kernel counts it: the codes of iot_kio.h (calls.kio_c_header)
            kio = KERNEL_IO_MODES.index(KERNEL_IO_SYSCALLS.get(sc.name, ""))
            checks = list(KERNEL_IO_UNCOUNTED).index(kernel_io_checks(sc.name))
            rc = self.lib.iotl_nr(sc.nr, mode, len(sc.args), kinds, pl.fd, pl.path, pl.dirfd,
                                  fdop, kio, checks, *kernel_io_args(sc),
                                  sc.name.encode())  # fmt: skip
            if rc != 0:
                raise OSError(f"the C loop refused syscall {sc.name}")

    def teach(self, nr: int, raw: tuple[int, ...], args: list[Any], pack: Callable) -> None:
        """The encodings of an M_PATH syscall's decoded arguments (flag names...), as the log's
        packer writes them: the C loop then records that syscall with those values itself."""
        for i, kind in self.decoded.get(nr, ()):
            if (kind, raw[i]) not in self.taught:
                self.taught.add((kind, raw[i]))
                b = pack(args[i])
                self.lib.iotl_conv(kind, raw[i], b, len(b))

    def untold(self, op: int, pid: int, a: int = 0, b: int = 0) -> bool:
        """The untold descriptors (_loop.c iotl_untold, their one copy): U_HAS, U_DEL say
        whether a was there."""
        return self.lib.iotl_untold(op, pid, a, b) == 1

    def kio_take(self, pid: int) -> tuple[int, int, list[int]] | None:
        """(pid, t, rchar wchar syscr syscw): the sums of pid's records since the last take
        (pid 0: any process's); None: none left; OSError: some were lost (out of memory)."""
        got = self.lib.iotl_kio_take(pid, self.kio_out)
        if got < 0:
            raise OSError("the C loop's sums for the end line were lost (out of memory)")
        return (got, int(self.kio_out[0]), [int(x) for x in self.kio_out[1:5]]) if got else None

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
