/* The cookie fast path (docs/stracer.md): a wrapper issues its real syscall itself, with the
 * run's cookie in the first argument slot that syscall does not use.  The stracer's seccomp
 * filter lets syscalls carrying the cookie through without a ptrace stop, so a covered call
 * costs ~40 ns more than native instead of a ~10-50 us stop.  Without a stracer (iot_stracing == 0)
 * wrappers keep calling the real libc function: nothing changes for a shim-only run.
 *
 *     ssize_t r = IOT_FAST(IOT_SYSRAW_CANCEL(write, fd, buf, n), real_write(fd, buf, n));
 *
 * IOT_SYSRAW(name, args...) is the syscall SYS_name(args..., cookie): -1 and errno on failure,
 * as the libc function.  The argument count is checked at compile time against the SYSCALLS
 * table (src/iotrace/calls.py, generated into calls.h as IOT_SYSRAW_SLOT_name): a syscall with
 * six arguments (splice, copy_file_range, preadv2...) has no slot and no macro, and keeps its
 * stop (the stracer then reads the in_wrapper marker); mmap carries the cookie in its address
 * hint where it can (iot_sysraw_mmap below).
 *
 * IOT_SYSRAW_CANCEL is for the libc functions that are cancellation points (read, write, open,
 * close, pread, pwrite, readv, writev, fsync, fdatasync, fallocate, accept, connect...), done as
 * glibc (2.36) does it: while the process is single-threaded (__libc_single_threaded, which
 * glibc's pthread_cancel also clears for a self-cancel) a plain syscall; otherwise the
 * asynchronous cancel type for the duration of the syscall, so a pending cancellation acts
 * before it and one arriving during a blocking call interrupts it.
 *
 * What the raw syscall skips that libc's function does, and what a wrapper must do instead:
 *   - the x86_64 kernel ABI is libc's for every syscall of the table (struct stat, off_t,
 *     O_LARGEFILE == 0), except:
 *   - stat/lstat/fstatat: glibc >= 2.33 issues newfstatat(AT_FDCWD, path, buf, 0 /
 *     AT_SYMLINK_NOFOLLOW); fstat is newfstatat(fd, "", buf, AT_EMPTY_PATH) after glibc's own
 *     EBADF for fd < 0 (AT_FDCWD is negative: the kernel would stat the cwd);
 *   - __xstat & co.: version 0 or 1 only (else EINVAL), then stat/lstat/fstat/newfstatat;
 *   - preadv/pwritev: the offset goes in two registers, IOT_SYSRAW(preadv, fd, iov, cnt, off, 0);
 *   - open/creat: openat(AT_FDCWD, path, flags, mode); creat = O_CREAT|O_WRONLY|O_TRUNC;
 *   - the fortified entry points keep their checks (__read_chk: __chk_fail when n > buflen);
 *   - faccessat: faccessat2, and libc's function where the kernel says ENOSYS;
 *   - dup2(fd, fd): the kernel returns fd after checking it, as libc does;
 *   - nothing else: errno is set by iot_sysraw6, and the shim's iot_leave restores it anyway.
 *   Restarting (SA_RESTART) or EINTR is the kernel's doing, the same for a raw syscall as for libc.
 *
 * The shim's own syscalls use IOT_SYSRAW unconditionally: without a stracer the slot holds 0,
 * an argument the kernel never reads. */
#ifndef IOT_SYSRAW_H
#define IOT_SYSRAW_H

#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#if __GLIBC_PREREQ(2, 32)
#include <sys/single_threaded.h>
#define IOT_SINGLE_THREADED() __libc_single_threaded
#else
#define IOT_SINGLE_THREADED() 0 /* unknown: always the cancellable way */
#endif

#include "shim.h"

/* The run's cookie (IOTRACE_COOKIE, read at the hello): read by the asm below only. */
extern long iot_cookie IOT_HIDDEN;

/* One syscall instruction, with the cookie loaded from memory into its argument's register
 * inside the asm and that register cleared right after.  So no register holds the cookie when
 * the wrapper returns, and a raw syscall the app makes next, whose unused argument registers
 * hold whatever they held, cannot pass the filter by accident (glibc's syscall() leaves its
 * arguments in rdx/r10/r8/r9: a raw write right after a traced fopen went unseen). */
#define IOT_SYSCALL_ASM(load, clear)                                                          \
    __asm__ volatile(load "\n\tsyscall\n\t" clear                                           \
                     : "+a"(r), "+D"(a0), "+S"(a1), "+d"(a2), "+r"(r10), "+r"(r8), "+r"(r9) \
                     : [ck] "m"(iot_cookie)                                                   \
                     : "rcx", "r11", "memory")

static inline long iot_sysraw6(long nr, int slot, long a0, long a1, long a2, long a3, long a4,
                               long a5)
{
    register long r10 __asm__("r10") = a3;
    register long r8 __asm__("r8") = a4;
    register long r9 __asm__("r9") = a5;
    long r = nr;
    switch (slot) { /* a constant: one case is compiled */
    case 1:
        IOT_SYSCALL_ASM("mov %[ck], %%rsi", "xor %%esi, %%esi");
        break;
    case 2:
        IOT_SYSCALL_ASM("mov %[ck], %%rdx", "xor %%edx, %%edx");
        break;
    case 3:
        IOT_SYSCALL_ASM("mov %[ck], %%r10", "xor %%r10d, %%r10d");
        break;
    case 4:
        IOT_SYSCALL_ASM("mov %[ck], %%r8", "xor %%r8d, %%r8d");
        break;
    default:
        IOT_SYSCALL_ASM("mov %[ck], %%r9", "xor %%r9d, %%r9d");
        break;
    }
    if ((unsigned long)r > -4096UL) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

static inline long iot_sysraw_cancel6(long nr, int slot, long a0, long a1, long a2, long a3,
                                      long a4, long a5)
{
    if (IOT_LIKELY(IOT_SINGLE_THREADED()))
        return iot_sysraw6(nr, slot, a0, a1, a2, a3, a4, a5);
    int old;
    pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old);
    long r = iot_sysraw6(nr, slot, a0, a1, a2, a3, a4, a5);
    pthread_setcanceltype(old, &old);
    return r;
}

#define IOT_NARGS_(_1, _2, _3, _4, _5, N, ...) N
#define IOT_NARGS(...) IOT_NARGS_(__VA_ARGS__, 5, 4, 3, 2, 1)
#define IOT_L6_(a0, a1, a2, a3, a4, a5, ...) (long)(a0), (long)(a1), (long)(a2), (long)(a3), \
                                             (long)(a4), (long)(a5)
#define IOT_L6(...) IOT_L6_(__VA_ARGS__, 0, 0, 0, 0, 0, 0)

/* A descriptor-changing syscall raises iot_link.fdgen first: the stracer, which does not see
 * it, then no longer trusts the paths it cached for this process's fds (fdtable.c raises it
 * again once the change is done). */
#define IOT_SYSRAW_(fn, name, ...)                                                      \
    (__extension__({                                                                    \
        _Static_assert(IOT_NARGS(__VA_ARGS__) == IOT_SYSRAW_SLOT_##name,                \
                       "argument count differs from the SYSCALLS table");               \
        _Static_assert(IOT_SYSRAW_SLOT_##name >= 1 && IOT_SYSRAW_SLOT_##name <= 5,      \
                       "the cookie goes in rsi, rdx, r10, r8 or r9");                   \
        if (IOT_SYSRAW_FDOP_##name)                                                     \
            iot_fdgen_bump();                                                           \
        fn(SYS_##name, IOT_SYSRAW_SLOT_##name, IOT_L6(__VA_ARGS__));                    \
    }))
#define IOT_SYSRAW(name, ...) IOT_SYSRAW_(iot_sysraw6, name, __VA_ARGS__)
#define IOT_SYSRAW_CANCEL(name, ...) IOT_SYSRAW_(iot_sysraw_cancel6, name, __VA_ARGS__)

/* mmap has six arguments, no free slot: a mapping the kernel places itself (no MAP_FIXED,
 * MAP_FIXED_NOREPLACE, no address asked) of a regular file carries the cookie as its address
 * hint instead, bit 63 set and bit 62 clear (stracer/bpf.py, mmap_hint): beyond the address
 * space, so the kernel ignores the hint and places the mapping as for NULL.  Regular files only:
 * a device's or io_uring's own placement may refuse any hint (io_uring's rings: EINVAL).  Not
 * where a hint above 47 bits opens the 57-bit address space (5-level paging: the probe in
 * wrap_mmap.c), nor for PROT_EXEC (glibc may first try MAP_32BIT there), nor under the app's
 * own seccomp filter (the fstat is not the app's).  Otherwise the caller keeps its covered
 * stop. */
int iot_mmap_hint_ok(void) IOT_HIDDEN;
static inline int iot_mmap_hintable(void *addr, int prot, int flags, int fd)
{
    struct stat st;
    return !addr && !(prot & PROT_EXEC) && !(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) &&
           !IOT_SANDBOXED() && iot_mmap_hint_ok() && IOT_SYSRAW(fstat, fd, &st) == 0 &&
           S_ISREG(st.st_mode);
}
static inline void *iot_sysraw_mmap(size_t len, int prot, int flags, int fd, off_t off)
{
    register long r10 __asm__("r10") = flags;
    register long r8 __asm__("r8") = fd;
    register long r9 __asm__("r9") = off;
    long r = SYS_mmap, a0 = 0, a1 = (long)len, a2 = prot;
    IOT_SYSCALL_ASM("mov %[ck], %%rdi\n\tbtr $62, %%rdi\n\tbts $63, %%rdi", "xor %%edi, %%edi");
    if ((unsigned long)r > -4096UL) {
        errno = (int)-r;
        return MAP_FAILED;
    }
    return (void *)r;
}

/* A traced wrapper's real call: `raw` (an IOT_SYSRAW expression) under a stracer, `real` (the
 * libc function) otherwise.  Without a stracer this is one predictable branch. */
#define IOT_FAST(raw, real) (IOT_UNLIKELY(iot_stracing) ? (long)(raw) : (long)(real))

/* glibc's fortify check, for the _chk entry points handled here */
void __chk_fail(void) __attribute__((noreturn));

#endif
