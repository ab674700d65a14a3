/* An app that sandboxes itself with seccomp (OpenSSH's privilege-separated child, browsers'
 * renderers, libseccomp's seccomp_load, SECCOMP_MODE_STRICT) is killed, or sees a call fail,
 * for any syscall its filter does not list: the shim's own (log growth, the exit reading,
 * unwinding, a new thread's id, a forked child's log) are on no such list, and the traced app
 * died earlier than untraced.  So the shim takes the install here -- prctl(PR_SET_SECCOMP) and
 * syscall(SYS_seccomp) -- and before it prepares what it will need (writer.c
 * iot_log_sandbox): room in the log ahead, and a note chunk holding the kernel's counters read
 * now (a KIO reading "seccomp", the image's last) and the count of records dropped later.
 * Once a filter is in, the shim makes no syscall of its own in the process (IOT_SANDBOXED):
 * events go into the room made ahead, without stacks, then are counted as dropped; threads
 * started since and forked children are not traced; there is no exit reading.  The shim's own
 * syscall() calls (and libunwind's) are refused here, without a syscall.  A filter installed
 * with an inline syscall instruction reaches no wrapper: under the stracer, which stops it, it
 * comes in by iot_sandbox_entry; the shim alone goes out at the no_new_privs before it
 * (no_new_privs below; docs/design.md). */
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <sched.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"
#include "sysraw.h"

static long (*real_syscall)(long, ...); /* libc's */
IOT_HIDDEN long iot_syscall(long nr, ...);
static long seccomp_call(long op, long flags, long args);

int iot_own_begin(void)
{
    __atomic_add_fetch(&iot_p.own_syscalls, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&iot_p.sandboxed, __ATOMIC_SEQ_CST)) {
        __atomic_sub_fetch(&iot_p.own_syscalls, 1, __ATOMIC_SEQ_CST);
        return 0;
    }
    iot_t.own_depth++;
    return 1;
}

void iot_own_end(void)
{
    iot_t.own_depth--;
    __atomic_sub_fetch(&iot_p.own_syscalls, 1, __ATOMIC_SEQ_CST);
}

/* Before an install: 1 when the note chunk was written (undone if the kernel refuses).  Then
 * the shim is sandboxed already (*was: whether it was before), and the threads in the middle
 * of the shim's own syscalls (iot_own_begin: a thread's set-up, a new chunk, the log's growth)
 * are waited for: none starts one from then on, so none makes one once the filter is in -- with
 * SECCOMP_FILTER_FLAG_TSYNC it is theirs too as soon as the install returns.  (Other syscalls
 * of the shim's, rarer, are not waited for: docs/design.md.) */
static int prepare(int *was)
{
    *was = iot_p.sandboxed;
    int ok = 0;
    if (!iot_p.sandboxed && iot_p.state == IOT_READY && !iot_t.busy) {
        int e = errno;
        if (iot_t.gen != iot_p.gen)
            iot_thread_reset();
        iot_t.busy = 1;
        ok = iot_log_sandbox() == 0;
        iot_t.busy = 0;
        errno = e;
    }
    __atomic_store_n(&iot_p.sandboxed, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&iot_p.own_syscalls, __ATOMIC_SEQ_CST) > iot_t.own_depth)
        sched_yield(); /* a few instructions and a syscall each; not under the filter yet */
    return ok;
}

/* After it.  Strict mode also disables the TSC on x86 (rdtsc, and so the vDSO's clock, raise
 * SIGSEGV) and allows no clock_gettime syscall: the shim cannot even time an event.  So no
 * thread records any more (the generation changes: each call is a new thread's, dropped).
 * Refused: the shim is as it was. */
static void installed(int ok, int prepared, int was, int strict)
{
    if (ok) {
        if (strict)
            __atomic_add_fetch(&iot_p.gen, 1, __ATOMIC_SEQ_CST);
        if (was == IOT_SANDBOX_NNP) /* the install foreseen at no_new_privs: seen now */
            iot_log_sandbox_nnp(0);
        return;
    }
    __atomic_store_n(&iot_p.sandboxed, was, __ATOMIC_SEQ_CST);
    if (prepared)
        iot_log_sandbox_undo();
}

/* The installs themselves, with the run's cookie (sysraw.h) in the slot neither call uses: the
 * stracer's filter stops every seccomp(2) and prctl(PR_SET_SECCOMP) without it (the app's raw
 * ones, iot_sandbox_entry below), not these.  -1 and errno, as libc's. */
static long sys_seccomp(long op, long flags, long args)
{
    return iot_sysraw6(SYS_seccomp, 3, op, flags, args, 0, 0, 0);
}

static long sys_prctl_seccomp(long mode, long a3, long a4, long a5)
{
    return iot_sysraw6(SYS_prctl, 5, PR_SET_SECCOMP, mode, a3, a4, a5, 0);
}

#define ALLOW(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
                  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

/* Strict mode under the stracer: the kernel refuses it (EINVAL) in a thread that already has a
 * filter -- the stracer's.  What it allows is installed as a filter instead: read, write, exit,
 * rt_sigreturn, any other call killing the thread (strict mode kills it with SIGKILL, a filter
 * with SIGSYS: the one difference, seen only by an app that breaks its own sandbox), and the TSC
 * disabled as strict mode does.  no_new_privs, which a filter needs, changes nothing once only
 * those four calls are left. */
static long strict_as_filter(int (*real_prctl)(int, ...))
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_THREAD),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        ALLOW(SYS_read), ALLOW(SYS_write), ALLOW(SYS_exit), ALLOW(SYS_rt_sigreturn),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_THREAD),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof *f, .filter = f};
    if (real_prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1 &&
        real_prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    int tsc = 0;
    real_prctl(PR_GET_TSC, &tsc, 0, 0, 0);
    if (real_prctl(PR_SET_TSC, PR_TSC_SIGSEGV, 0, 0, 0) != 0)
        tsc = 0;
    long r = sys_seccomp(SECCOMP_SET_MODE_FILTER, 0, (long)&prog);
    if (r != 0 && tsc) {
        int e = errno;
        real_prctl(PR_SET_TSC, tsc, 0, 0, 0);
        errno = e;
    }
    return r;
}

/* prctl(PR_SET_SECCOMP, ...): the install as the shim makes it, for the wrapper below and for
 * iot_sandbox_entry. */
static long seccomp_prctl(long mode, long a3, long a4, long a5)
{
    if ((mode != SECCOMP_MODE_STRICT && mode != SECCOMP_MODE_FILTER) ||
        (mode == SECCOMP_MODE_FILTER && !a3)) /* no filter: EFAULT, nothing installed */
        return sys_prctl_seccomp(mode, a3, a4, a5);
    IOT_REAL(prctl);
    int strict = mode == SECCOMP_MODE_STRICT, was, prepared = prepare(&was);
    long r = strict && iot_stracing ? strict_as_filter(real_prctl)
                                    : sys_prctl_seccomp(mode, a3, a4, a5);
    int e = errno;
    installed(r == 0, prepared, was, strict);
    errno = e;
    return r;
}

/* With the shim alone nothing tells it of an install by an inline syscall, and its next own
 * syscall the filter does not list would kill the app.  An unprivileged process can install a
 * filter only once no_new_privs is set: the shim alone goes out there already, as for an install
 * (room and note chunk, the nnp flag in the SECCOMP record), and stays out in this image (an
 * image exec'd after it starts as any other: IOTRACE_SANDBOXED is for installs seen, init.c).
 * Not covered: no_new_privs set by a raw syscall or inherited, an install by a privileged
 * process (CAP_SYS_ADMIN needs no no_new_privs), an exec after an unseen install.  Under the
 * stracer the install itself is handed over (iot_sandbox_entry): nothing is done here. */
static void no_new_privs(void)
{
    if (iot_stracing || iot_p.sandboxed)
        return;
    int was, prepared = prepare(&was);
    __atomic_store_n(&iot_p.sandboxed, IOT_SANDBOX_NNP, __ATOMIC_SEQ_CST);
    if (prepared)
        iot_log_sandbox_nnp(1);
}

IOT_API int prctl(int option, ...)
{
    va_list ap;
    va_start(ap, option);
    unsigned long a2 = va_arg(ap, unsigned long), a3 = va_arg(ap, unsigned long),
                  a4 = va_arg(ap, unsigned long), a5 = va_arg(ap, unsigned long);
    va_end(ap);
    if (option == PR_SET_SECCOMP)
        return (int)seccomp_prctl((long)a2, (long)a3, (long)a4, (long)a5);
    IOT_REAL(prctl);
    int r = real_prctl(option, a2, a3, a4, a5);
    if (option == PR_SET_NO_NEW_PRIVS && a2 == 1 && r == 0) {
        int e = errno;
        no_new_privs();
        errno = e;
    }
    return r;
}

/* syscall() is an assembly stub, as vfork is (wrap_proc.c): the app's raw syscalls reach
 * libc's with no frame of the shim's on the stack (the stracer labels a missed syscall by the
 * first frames above libc's, which would be the shim's).  It asks iot_syscall_route with the
 * arguments kept, then jumps to libc's syscall() or to iot_syscall below. */
IOT_HIDDEN long (*iot_syscall_route(long nr))(long, ...)
{
    if (IOT_UNLIKELY(!real_syscall))
        real_syscall = (long (*)(long, ...))iot_dlsym("syscall");
    if (IOT_LIKELY(nr != SYS_seccomp && nr != SYS_write) && !IOT_SANDBOXED())
        return real_syscall;
    if (nr == SYS_write && !iot_t.unwinding && !IOT_SANDBOXED())
        return real_syscall;
    return iot_syscall;
}

__asm__(".text\n"
        ".globl syscall\n"
        ".type syscall, @function\n"
        "syscall:\n"
        "    pushq %rdi\n" /* the six argument registers, and the stack 16-byte aligned */
        "    pushq %rsi\n"
        "    pushq %rdx\n"
        "    pushq %rcx\n"
        "    pushq %r8\n"
        "    pushq %r9\n"
        "    subq $8, %rsp\n"
        "    call iot_syscall_route\n"
        "    addq $8, %rsp\n"
        "    popq %r9\n"
        "    popq %r8\n"
        "    popq %rcx\n"
        "    popq %rdx\n"
        "    popq %rsi\n"
        "    popq %rdi\n"
        "    movq %rax, %r11\n"
        "    xorl %eax, %eax\n" /* a variadic callee: no vector registers */
        "    jmp *%r11\n"
        ".size syscall, .-syscall\n");

/* The calls the stub does not hand to libc's syscall() straight: libunwind's address check,
 * the install of a filter, and once one is in, the shim's own (and libunwind's), refused
 * without a syscall.  Its return address is the stub's caller's. */
IOT_HIDDEN long iot_syscall(long nr, ...)
{
    va_list ap;
    va_start(ap, nr);
    long a[6];
    for (int i = 0; i < 6; i++) /* as glibc's syscall(): six words, whatever the call takes */
        a[i] = va_arg(ap, long);
    va_end(ap);
    const void *caller = __builtin_return_address(0);
    if (IOT_SANDBOXED()) { /* the shim's own calls, and libunwind's: none any more */
        uintptr_t c = (uintptr_t)caller;
        if ((c >= iot_p.self_lo && c < iot_p.self_hi) || iot_from_unwind(caller))
            return -1;
    }
    if (nr == SYS_write && iot_t.unwinding && iot_from_unwind(caller)) /* stack.c */
        return iot_unwind_write((int)a[0], (const void *)a[1], (size_t)a[2]);
    if (nr != SYS_seccomp)
        return real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    return seccomp_call(a[0], a[1], a[2]);
}

/* seccomp(2): the install as the shim makes it, for syscall() above and iot_sandbox_entry.
 * libseccomp probes what the kernel supports with installs it refuses: strict mode with flags
 * or arguments (EINVAL), a filter of NULL (EFAULT); those go through as they are, as do the
 * other operations. */
static long seccomp_call(long op, long flags, long args)
{
    if ((op != SECCOMP_SET_MODE_STRICT && op != SECCOMP_SET_MODE_FILTER) ||
        (op == SECCOMP_SET_MODE_STRICT ? flags || args : !args))
        return sys_seccomp(op, flags, args);
    IOT_REAL(prctl);
    int strict = op == SECCOMP_SET_MODE_STRICT, was, prepared = prepare(&was);
    long r = strict && iot_stracing ? strict_as_filter(real_prctl) : sys_seccomp(op, flags, args);
    int e = errno;
    /* NEW_LISTENER: a descriptor on success; TSYNC: the id of a thread that could not be
     * synchronised on failure (unless TSYNC_ESRCH) */
    unsigned long fl = (unsigned long)flags;
    int tsync_fails = (fl & SECCOMP_FILTER_FLAG_TSYNC) && !(fl & SECCOMP_FILTER_FLAG_TSYNC_ESRCH);
    int ok = r == 0 || (r > 0 && (fl & SECCOMP_FILTER_FLAG_NEW_LISTENER) && !tsync_fails);
    installed(ok, prepared, was, strict);
    errno = e;
    return r;
}

/* An install by an inline syscall instruction (browsers' own stubs), which reaches no function
 * of the shim's: under the stracer, whose filter stops it (stracer/bpf.py), the thread is sent
 * here instead (stracer/tracer.py _raw_install: its registers kept, the call skipped, the
 * arguments as a call's, on its stack below the red zone), and the install is made as the
 * wrappers make it -- the shim sandboxed first.  The breakpoint at the end (not a syscall: the
 * app's filter is in now) gives the stracer the result: it puts the thread back where its
 * syscall was, with that result, as the kernel would have returned it; the app sees no SIGTRAP. */
void iot_sandbox_entry(long nr, long a0, long a1, long a2, long a3, long a4)
{
    int e = errno;
    long r = nr == SYS_prctl ? seccomp_prctl(a1, a2, a3, a4) : seccomp_call(a0, a1, a2);
    if (r == -1)
        r = -errno;
    errno = e;
    __asm__ volatile("int3" : : "a"(r), "S"(&iot_link), "d"(IOT_LINK_RESUME) : "memory");
    __builtin_trap(); /* not reached: the stracer resumed the thread where it was */
}
