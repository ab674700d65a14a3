"""The tracee's seccomp-bpf filter, generated from the SYSCALLS table (iotrace.calls).

Only the syscalls of the table stop the tracee (SECCOMP_RET_TRACE); everything else, and any of
them carrying the run's cookie in its first unused argument slot (the shim's own real calls,
preload/sysraw.h), runs without a stop; so do read and write on a buffer in the stdio window
(STDIO_ARENA: stdio's own flushes and refills of the buffers the shim gave its streams), and
the dynamic loader's mappings of libraries (MAP_DENYWRITE), which the stracer only counted (~290
of an MPI rank's ~740 stops in MPI_Init, where Open MPI dlopens ~100 components), and file
mappings whose address hint is the cookie, bit 63 set and 62 clear (`mmap_hint`: mmap has no
free slot; the kernel ignores a hint beyond the address space).  The
syscall number is found by a binary search, so a non-I/O syscall costs ~7 BPF instructions, not
one per table entry.  The cookie in args[3] or args[4] (read, write, lseek; pread64, pwrite64,
openat...) is checked first, before the search: the shim's hottest calls then run 7-9
instructions instead of 17-21 (~5 ns per syscall less on this VM: the floor of a filter that
reads one argument); every other syscall runs 4 more (18 -> 22 for a non-I/O one).  Any
syscall carrying the cookie there is let through: the cookie is 64 random bits the shim never
leaves in a register (sysraw.h), so a syscall of the app carries it only if the app read it
from the environment, as it could put it in the slot the table names.  Besides the table, the
filter stops the shim's hello (getpid with a magic first argument, preload/stracer_link.c) and
an install of a seccomp filter the shim did not make (preload/sandbox.c iot_sandbox_entry).
Other ABIs (i386 `int 0x80`, x32) are let through: documented as not covered.
"""

from __future__ import annotations

from iotrace.calls import STDIO_ARENA, SYSCALLS, Syscall
from iotrace.format import HELLO_MAGIC

LD_W_ABS = 0x20
JEQ = 0x15
JGE = 0x35
JSET = 0x45
JA = 0x05
RET = 0x06

AUDIT_ARCH_X86_64 = 0xC000003E
RET_ALLOW = 0x7FFF0000
RET_TRACE = 0x7FF00000
X32_BIT = 0x40000000
MAP_ANONYMOUS = 0x20
# the dynamic loader maps libraries MAP_PRIVATE|MAP_DENYWRITE (glibc's MAP_COPY, also a static
# program's dlopen); the kernel ignores the flag for user mappings and nothing else sets it
MAP_DENYWRITE = 0x800
F_DUPFD, F_DUPFD_CLOEXEC = 0, 1030
# mmap has six arguments, no free slot: the shim's file mappings carry the cookie as their
# address hint instead, bit 63 set and bit 62 clear (preload/sysraw.h, iot_sysraw_mmap): an
# address beyond the address space, which the kernel ignores as a hint
MMAP_HINT_CLEAR, MMAP_HINT_SET = 1 << 62, 1 << 63
SYS_GETPID = 39
SYS_PTRACE = 101
SYS_PRCTL = 157
SYS_SECCOMP = 317
PR_SET_SECCOMP = 22
SECCOMP_SET_MODE_FILTER = 1
PTRACE_TRACEME, PTRACE_ATTACH, PTRACE_SEIZE = 0, 16, 0x4206

Insn = tuple[int, int, int, int]

# the cookie slots checked before the binary search: those of the calls a data loop makes
HOT_SLOTS = (3, 4)


def _arg(i: int, hi: bool = False) -> int:
    return 16 + 8 * i + (4 if hi else 0)  # offsetof(struct seccomp_data, args[i]), LE halves


def _match64(slot: int, value: int, then: list[Insn], other: list[Insn]) -> list[Insn]:
    """if args[slot] == value: then  else: other (both end in a return)."""
    lo, hi = value & 0xFFFFFFFF, value >> 32
    then_and_other = [(LD_W_ABS, 0, 0, _arg(slot, True)), (JEQ, 0, len(then), hi), *then]
    return [
        (LD_W_ABS, 0, 0, _arg(slot)),
        (JEQ, 0, len(then_and_other), lo),
        *then_and_other,
        *other,
    ]


def mmap_hint(cookie: int) -> int:
    """The address hint a shim's file mapping carries instead of the cookie (sysraw.h)."""
    return (cookie & ~MMAP_HINT_CLEAR) | MMAP_HINT_SET


def _block(s: Syscall, cookie: int | None) -> list[Insn]:
    """What happens once the number matched: ends in a return."""
    allow, trace = [(RET, 0, 0, RET_ALLOW)], [(RET, 0, 0, RET_TRACE)]
    slot = s.cookie_slot
    stop = (
        _match64(slot, cookie, allow, trace) if cookie is not None and slot is not None else trace
    )
    if s.trap == "file":  # mmap: only file-backed mappings are I/O, not the loader's
        if cookie is not None:
            stop = _match64(0, mmap_hint(cookie), allow, trace)
        return [(LD_W_ABS, 0, 0, _arg(3)), (JSET, 0, 1, MAP_ANONYMOUS | MAP_DENYWRITE), *allow,
                *stop]  # fmt: skip
    if s.trap == "stdio":  # read/write: not on a buffer in the shim's 4 GiB-aligned window
        return [(LD_W_ABS, 0, 0, _arg(1, True)), (JEQ, 0, 1, STDIO_ARENA >> 32), *allow, *stop]
    if s.trap == "dupfd":  # fcntl: only the descriptor-creating commands
        return [
            (LD_W_ABS, 0, 0, _arg(1)),
            (JEQ, 1, 0, F_DUPFD),
            (JEQ, 0, len(stop), F_DUPFD_CLOEXEC),
            *stop,
            *allow,
        ]
    return stop


def _tree(entries: list[tuple[int, list[Insn]]]) -> list[Insn]:
    """Binary search on the syscall number (in A); unmatched numbers are allowed."""
    if len(entries) == 1:
        nr, block = entries[0]
        return [(JEQ, 0, len(block), nr), *block, (RET, 0, 0, RET_ALLOW)]
    mid = len(entries) // 2
    left, right = _tree(entries[:mid]), _tree(entries[mid:])
    # jge → right subtree; a JA carries the (possibly > 255) distance
    return [(JGE, 0, 1, entries[mid][0]), (JA, 0, 0, len(left)), *left, *right]


def build_filter(cookie: int | None = None) -> list[Insn]:
    entries = [(s.nr, _block(s, cookie)) for s in SYSCALLS]
    hello = _match64(0, HELLO_MAGIC, [(RET, 0, 0, RET_TRACE)], [(RET, 0, 0, RET_ALLOW)])
    entries.append((SYS_GETPID, hello))
    # ptrace(TRACEME/ATTACH/SEIZE) inside the job: it fails (the stracer holds the ptrace
    # slot of every process); stopping it lets the stracer say why, once
    ret = [(RET, 0, 0, RET_ALLOW), (RET, 0, 0, RET_TRACE)]
    attach = [
        (LD_W_ABS, 0, 0, _arg(0)),
        (JEQ, 3, 0, PTRACE_TRACEME),
        (JEQ, 2, 0, PTRACE_ATTACH),
        (JEQ, 1, 0, PTRACE_SEIZE),
        *ret,
    ]
    entries.append((SYS_PTRACE, attach))
    if cookie is not None:
        # an install of a seccomp filter (or strict mode) the shim did not make itself (its
        # own carry the cookie: args[3], a hot slot, for seccomp; args[5] for prctl): the app's
        # raw one, which the stracer hands to the shim (preload/sandbox.c iot_sandbox_entry)
        op = [(LD_W_ABS, 0, 0, _arg(0)), (JGE, 1, 0, SECCOMP_SET_MODE_FILTER + 1), *ret[::-1]]
        entries.append((SYS_SECCOMP, op))
        mine = _match64(5, cookie, ret[:1], ret[1:])
        entries.append((SYS_PRCTL, [(LD_W_ABS, 0, 0, _arg(0)), (JEQ, 1, 0, PR_SET_SECCOMP),
                                    *ret[:1], *mine]))  # fmt: skip
    entries.sort()
    first: list[Insn] = []
    for slot in HOT_SLOTS if cookie is not None else ():
        first += [
            (LD_W_ABS, 0, 0, _arg(slot)),
            (JEQ, 0, 3, cookie & 0xFFFFFFFF),
            (LD_W_ABS, 0, 0, _arg(slot, True)),
            (JEQ, 0, 1, cookie >> 32),
            (RET, 0, 0, RET_ALLOW),
        ]
    prog: list[Insn] = [
        (LD_W_ABS, 0, 0, 4),  # arch
        (JEQ, 1, 0, AUDIT_ARCH_X86_64),
        (RET, 0, 0, RET_ALLOW),
        *first,
        (LD_W_ABS, 0, 0, 0),  # nr
        (JGE, 0, 1, X32_BIT),
        (RET, 0, 0, RET_ALLOW),
        *_tree(entries),
    ]
    if len(prog) > 4096:
        raise ValueError("seccomp filter too long")
    return prog


def run_filter(prog: list[Insn], nr: int, args: tuple[int, ...] = (), arch: int = 0) -> int:
    """Interpret the filter (for tests): the SECCOMP_RET_* value for one syscall."""
    return filter_run(prog, nr, args, arch)[0]


def filter_run(
    prog: list[Insn], nr: int, args: tuple[int, ...] = (), arch: int = 0
) -> tuple[int, int]:
    """(the SECCOMP_RET_* value, the instructions run) for one syscall."""
    data = {0: nr, 4: arch or AUDIT_ARCH_X86_64}
    steps = 0
    for i, a in enumerate((*args, 0, 0, 0, 0, 0, 0)[:6]):
        data[_arg(i)], data[_arg(i, True)] = a & 0xFFFFFFFF, a >> 32
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = prog[pc]
        pc += 1
        steps += 1
        if code == LD_W_ABS:
            acc = data[k]
        elif code == JA:
            pc += k
        elif code in (JEQ, JGE, JSET):
            hit = acc == k if code == JEQ else acc >= k if code == JGE else bool(acc & k)
            pc += jt if hit else jf
        elif code == RET:
            return k, steps
        else:
            raise ValueError(f"bad insn {code:#x}")
