"""cffi bindings (ABI mode: nothing to compile at install time) to ptrace, process_vm_readv,
seccomp and libunwind-ptrace.

ABI mode through `ffi.dlopen(None)` (libc) was chosen over API mode: an API-mode module would
need a C build step in the wheel for a handful of plain calls whose cost (~0.3 µs each) is small
next to the ~10-50 µs of a ptrace stop.  ptrace(2) is variadic in glibc; declaring it with its
four fixed arguments is safe on x86_64 (integer arguments, the callee reads them as va_args).
"""

from __future__ import annotations

import errno
import functools

from iotrace.native import ffi as _cached_ffi

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing for type checkers only: ~2 ms of the stracer's start (issue 19)
    from typing import Any

ffi = _cached_ffi(
    "sys",
    """
    typedef int pid_t;
    struct user_regs_struct {
        unsigned long r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi,
            orig_rax, rip, cs, eflags, rsp, ss, fs_base, gs_base, ds, es, fs, gs;
    };
    struct iovec { void *iov_base; size_t iov_len; };
    struct sock_filter { unsigned short code; unsigned char jt; unsigned char jf;
                         unsigned int k; };
    struct sock_fprog { unsigned short len; struct sock_filter *filter; };

    long ptrace(int request, pid_t pid, void *addr, void *data);
    long syscall(long number, ...);
    int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4,
              unsigned long a5);
    long process_vm_readv(pid_t pid, const struct iovec *local, unsigned long liovcnt,
                          const struct iovec *remote, unsigned long riovcnt,
                          unsigned long flags);
    long process_vm_writev(pid_t pid, const struct iovec *local, unsigned long liovcnt,
                           const struct iovec *remote, unsigned long riovcnt,
                           unsigned long flags);
    void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset);
    int munmap(void *addr, size_t length);
    """,
)
libc: Any = ffi.dlopen(None)

# ptrace requests and options (linux/ptrace.h)
PTRACE_TRACEME = 0
PTRACE_PEEKDATA = 2
PTRACE_CONT = 7
PTRACE_KILL = 8
PTRACE_SINGLESTEP = 9
PTRACE_GETREGS = 12
PTRACE_SETREGS = 13
PTRACE_GETREGSET = 0x4204
PTRACE_SETREGSET = 0x4205
NT_X86_XSTATE = 0x202  # the x87/SSE/AVX... registers, as XSAVE lays them out
PTRACE_SYSCALL = 24
PTRACE_SETOPTIONS = 0x4200
PTRACE_GETEVENTMSG = 0x4201
PTRACE_GETSIGINFO = 0x4202
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_LISTEN = 0x4208

O_TRACESYSGOOD = 1
O_TRACEFORK = 1 << 1
O_TRACEVFORK = 1 << 2
O_TRACECLONE = 1 << 3
O_TRACEEXEC = 1 << 4
O_TRACEEXIT = 1 << 6
O_TRACESECCOMP = 1 << 7
O_EXITKILL = 1 << 20

EVENT_FORK = 1
EVENT_VFORK = 2
EVENT_CLONE = 3
EVENT_EXEC = 4
EVENT_EXIT = 6
EVENT_SECCOMP = 7
EVENT_STOP = 128

PR_SET_NO_NEW_PRIVS = 38
SYS_seccomp = 317
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_SPEC_ALLOW = 4

SIGTRAP = 5


class PtraceError(OSError):
    pass


def ptrace(req: int, pid: int, addr: Any = ffi.NULL, data: Any = ffi.NULL) -> int:
    r = libc.ptrace(req, pid, addr, data)
    if r == -1 and req not in (PTRACE_PEEKDATA,):
        e = ffi.errno
        raise PtraceError(e, f"ptrace({req}, {pid})")
    return int(r)


def ptrace_raw(req: int, pid: int, addr: Any, data: Any) -> int:
    """ptrace without the exception: -1 on failure (a tracee that vanished is routine)."""
    return int(libc.ptrace(req, pid, addr, data))


class Regs:
    """A reusable user_regs_struct buffer."""

    __slots__ = ("buf", "r")

    def __init__(self) -> None:
        self.buf = ffi.new("struct user_regs_struct *")
        self.r = self.buf[0]

    def fetch(self, tid: int) -> bool:
        return libc.ptrace(PTRACE_GETREGS, tid, ffi.NULL, self.buf) == 0


class Mem:
    """process_vm_readv / writev with preallocated iovecs."""

    def __init__(self, size: int = 4096) -> None:
        self.local = ffi.new("struct iovec *")
        self.remote = ffi.new("struct iovec *")
        self.data = ffi.new("char[]", size)
        self.size = size
        self.local.iov_base = self.data
        self.readv = libc.process_vm_readv
        self.remote2 = ffi.new("struct iovec[2]")
        self.remote2[0].iov_len = self.remote2[1].iov_len = 8

    def read(self, pid: int, addr: int, n: int) -> bytes | None:
        if n > self.size:
            self.data = ffi.new("char[]", n)
            self.size = n
            self.local.iov_base = self.data
        self.local.iov_len = n
        remote = self.remote
        remote.iov_base = ffi.cast("void *", addr)
        remote.iov_len = n
        got = self.readv(pid, self.local, 1, remote, 1, 0)
        if got <= 0:
            return None
        return ffi.unpack(self.data, got)

    def read_pair(self, pid: int, a: int, b: int) -> tuple[int, int] | None:
        """Two 8-byte words at a and b with one process_vm_readv; None if a is unreadable
        (b unreadable reads as 0)."""
        self.local.iov_len = 16
        r2 = self.remote2
        r2[0].iov_base = ffi.cast("void *", a)
        r2[1].iov_base = ffi.cast("void *", b)
        got = self.readv(pid, self.local, 1, r2, 2, 0)
        if got < 8:
            return None
        w = ffi.cast("unsigned long *", self.data)
        return int(w[0]), int(w[1]) if got >= 16 else 0

    def write(self, pid: int, addr: int, payload: bytes) -> bool:
        buf = ffi.from_buffer(payload)
        local = ffi.new("struct iovec *", {"iov_base": buf, "iov_len": len(payload)})
        self.remote.iov_base = ffi.cast("void *", addr)
        self.remote.iov_len = len(payload)
        return libc.process_vm_writev(pid, local, 1, self.remote, 1, 0) == len(payload)

    def read_str(self, pid: int, addr: int, limit: int = 4096) -> str | None:
        """A NUL-terminated string; reads page by page so a short string near the end of a
        mapping does not fail."""
        if not addr:
            return None
        out = b""
        while len(out) < limit:
            n = min(4096 - (addr % 4096), limit - len(out))
            chunk = self.read(pid, addr, n)
            if chunk is None:
                break
            i = chunk.find(b"\0")
            if i >= 0:
                return (out + chunk[:i]).decode(errors="surrogateescape")
            out += chunk
            addr += n
        return out.decode(errors="surrogateescape") if out else None


def install_filter(prog: list[tuple[int, int, int, int]], no_new_privs: bool) -> int:
    """Install a seccomp-bpf filter on the calling process; 0 or an errno."""
    n = len(prog)
    insns = ffi.new("struct sock_filter[]", prog)  # filled by cffi: 0.14 ms, 0.45 field by field
    fprog = ffi.new("struct sock_fprog *", {"len": n, "filter": insns})
    if no_new_privs and libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return ffi.errno or 1
    # SPEC_ALLOW: where the kernel's speculative-store-bypass mitigation is "seccomp" (the
    # default before Linux 5.16), a filter would otherwise slow every instruction of the app;
    # kernels before 4.17 do not know the flag (EINVAL): then without it
    for flags in (SECCOMP_FILTER_FLAG_SPEC_ALLOW, 0):
        r = libc.syscall(
            ffi.cast("long", SYS_seccomp),
            ffi.cast("long", SECCOMP_SET_MODE_FILTER),
            ffi.cast("long", flags),
            fprog,
        )
        if r == 0:
            return 0
        if ffi.errno != errno.EINVAL:
            break
    return ffi.errno or 1


# ---- libunwind-ptrace ------------------------------------------------------------------------

uffi = _cached_ffi(
    "unwind",
    """
    typedef unsigned long unw_word_t;
    typedef struct { unw_word_t opaque[127]; } unw_cursor_t;
    typedef void *unw_addr_space_t;
    extern int _UPT_accessors;
    void *_UPT_create(int pid);
    void _UPT_destroy(void *arg);
    unw_addr_space_t _Ux86_64_create_addr_space(void *accessors, int byteorder);
    void _Ux86_64_destroy_addr_space(unw_addr_space_t as);
    int _Ux86_64_set_caching_policy(unw_addr_space_t as, int policy);
    int _Ux86_64_init_remote(unw_cursor_t *c, unw_addr_space_t as, void *arg);
    int _Ux86_64_step(unw_cursor_t *c);
    int _Ux86_64_get_reg(unw_cursor_t *c, int reg, unw_word_t *val);
    int _Ux86_64_get_proc_name(unw_cursor_t *c, char *buf, size_t len, unw_word_t *off);
    int _Ux86_64_dwarf_search_unwind_table(unw_addr_space_t as, unw_word_t ip, void *di,
                                           void *pi, int need_unwind_info, void *arg);
    const void *iotu_accessors(const void *upt_accessors, void *create, void *destroy,
                               void *search);
    void *iotu_image(void);
    int iotu_maps(void *img, int pid, const unw_word_t *lo, const unw_word_t *hi,
                  const int *mod, int n, const unw_word_t *base, int nmods);
    void *iotu_begin(void *img, int tid);
    void iotu_end(void);
    void iotu_free(void *img);
    """,
)
UNW_REG_IP = 16
UNW_REG_SP = 7  # UNW_X86_64_RSP
UNW_CACHE_GLOBAL = 1


@functools.cache
def unwind_libs() -> tuple[Any, Any] | None:
    """(libunwind-ptrace, libunwind-x86_64), or None where libunwind is not installed."""
    try:
        # libunwind-ptrace leaves its _Ux86_64_* (and liblzma) references to the global scope
        ux = uffi.dlopen("libunwind-x86_64.so.8", uffi.RTLD_NOW | uffi.RTLD_GLOBAL)
        upt = uffi.dlopen("libunwind-ptrace.so.0")
    except OSError:
        return None
    return upt, ux


@functools.cache
def unwind_helper() -> tuple[Any, Any] | None:
    """(stracer/_unwind.c loaded, the accessors to create address spaces with), or None: then
    no unwinding (libunwind-ptrace's own accessors map the tracee's files: _unwind.c)."""
    from iotrace.native import library

    libs = unwind_libs()
    path = library("iotrace.stracer", "_unwind", "stunwind", say=False) if libs else None
    if libs is None or path is None:
        return None
    try:
        lib = uffi.dlopen(str(path))
    except OSError:
        return None
    upt, ux = libs
    acc = lib.iotu_accessors(
        uffi.addressof(upt, "_UPT_accessors"),
        uffi.cast("void *", upt._UPT_create),
        uffi.cast("void *", upt._UPT_destroy),
        uffi.cast("void *", ux._Ux86_64_dwarf_search_unwind_table),
    )
    return lib, acc
