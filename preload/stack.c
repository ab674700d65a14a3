/* Stack capture: raw return addresses (symbolised after the run), interned.
 *
 * Most stacks are walked by cfi.c; libunwind takes only those it cannot (no unwind table, an
 * expression), and is loaded at the first of them, not at start: most processes never need it
 * (its dlopen, with liblzma, was ~0.16 ms of CPU and 13 stops of ld.so under the stracer per
 * process).  dlopen is not async-signal-safe (a handler interrupting malloc or the loader
 * would deadlock in it), so it is loaded only where no handler can be running on the thread
 * (may_load); an event that needs it elsewhere goes without a stack, and a later one loads it.
 *
 * libunwind (94 ns for 10 frames here, libgcc's unwinder 1.2 us) is loaded RTLD_LOCAL: linked
 * normally it would export _Unwind_* into the app's global scope and take over C++ exception
 * unwinding.  It checks an address it is unsure of (the frame-chain fallback, signal frames) by
 * writing one byte from it into a pipe of its own (EFAULT: not readable), drained before each
 * check, and it closes and reopens that pipe by its remembered numbers.  Those would be two
 * descriptors of the app's: in /proc/self/fd, closed by its closefrom, counted against
 * RLIMIT_NOFILE (they sat at RLIMIT_NOFILE-8, 19992 and 19993 under a limit of 20000).
 * libunwind is loaded after the shim, so its pipe2, read, close and syscall bind to the shim's
 * wrappers: made from libunwind's own code while it unwinds they come here, and the pipe never
 * exists.  Its descriptors are two negative numbers the kernel refuses (one reaching it fails
 * with EBADF: an address taken for invalid), the drain finds it empty, and the check is
 * process_vm_readv of that byte from this process: no descriptor, and no read or write the
 * kernel counts.  Only calls made from libunwind's own code are diverted: a signal handler
 * running meanwhile does its I/O as usual. */
#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <libunwind.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"
#include "sysraw.h"

static int unwinders, forking; /* see iot_stack_fork_prepare */
static int (*backtrace_fn)(void **, int);
static void *(*real_dlopen)(const char *, int); /* libc's: no dlopen event of the app's */
static int unw_state; /* 0 not loaded, 1 loading, 2 loaded, -1 not to be had */
static uintptr_t unw_shift; /* added to libunwind's addresses: the fast path's convention */
static void check_init(void *h);
static unsigned long checked, differ, slow, differ_bt; /* IOTRACE_STACK_CHECK's counts */
static pid_t check_owner; /* the thread in a checked capture (iot_capture_stack) */
static uintptr_t unw_lo, unw_hi; /* libunwind's text: only its own calls are diverted */

int iot_from_unwind(const void *caller)
{
    return (uintptr_t)caller >= unw_lo && (uintptr_t)caller < unw_hi;
}

static int find_unwind(struct dl_phdr_info *info, size_t size, void *fn)
{
    (void)size;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_LOAD) {
            uintptr_t a = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
            lo = a < lo ? a : lo;
            hi = a + info->dlpi_phdr[i].p_memsz > hi ? a + info->dlpi_phdr[i].p_memsz : hi;
        }
    if ((uintptr_t)fn >= lo && (uintptr_t)fn < hi) {
        unw_lo = lo;
        unw_hi = hi;
        return 1;
    }
    return 0;
}

/* libunwind's pipe: read end, write end */
#define UNW_READ_FD (-1000)
#define UNW_WRITE_FD (-1001)

static int iot_unwind_fd(int fd)
{
    return fd == UNW_READ_FD || fd == UNW_WRITE_FD;
}

int iot_unwind_pipe2(int fds[2], int flags)
{
    (void)flags;
    fds[0] = UNW_READ_FD;
    fds[1] = UNW_WRITE_FD;
    return 0;
}

int iot_unwind_close(int fd)
{
    (void)fd;
    return 0;
}

/* The drain before a check: an empty nonblocking pipe.  Not EINTR, on which libunwind loops
 * (whatever errno the app's last call left: make's pselect left EINTR after a SIGCHLD). */
ssize_t iot_unwind_read(int fd, void *buf, size_t n)
{
    (void)buf;
    (void)n;
    errno = iot_unwind_fd(fd) ? EAGAIN : EBADF;
    return -1;
}

/* The check itself, libunwind's syscall(SYS_write, pipe, addr, 1): 1 if the byte at addr can
 * be read, else -1 and EFAULT, as the write into its pipe would. */
long iot_unwind_write(int fd, const void *addr, size_t n)
{
    if (fd != UNW_WRITE_FD) {
        errno = EBADF;
        return -1;
    }
    char byte;
    struct iovec here = {&byte, 1}, there = {(void *)addr, 1};
    if (n < 1 || process_vm_readv(iot_p.pid, &here, 1, &there, 1, 0) == 1) {
        errno = 0; /* libunwind loops while errno is EINTR */
        return n < 1 ? 0 : 1;
    }
    errno = EFAULT;
    return -1;
}

static __attribute__((noinline)) int calibrate(void);

/* The signals a fault raises: a crash handler's (SA_RESETHAND: no longer caught once it runs). */
#define FAULTS (1ull << (SIGSEGV - 1) | 1ull << (SIGBUS - 1) | 1ull << (SIGILL - 1) | \
                1ull << (SIGFPE - 1) | 1ull << (SIGTRAP - 1) | 1ull << (SIGSYS - 1) |  \
                1ull << (SIGABRT - 1))

/* 1: a signal frame (the kernel's rt_sigframe) is live on this thread's stack above sp: a
 * handler is running, whatever its flags.  A handler reset on entry (SA_RESETHAND, a strict-ISO
 * signal()'s SA_RESETHAND|SA_NODEFER) leaves no trace in the thread's signal state: its signal
 * is no longer caught, and with SA_NODEFER not blocked.  The frame is told by its ucontext:
 * uc_flags small, uc_link 0, user code's CS, the saved fpstate and the interrupted RSP just
 * above it.  The scan ends at the main stack's top or the thread's descriptor (glibc puts it at
 * its stack's top); a stack neither bounds counts as a handler's (nothing is loaded). */
extern void *__libc_stack_end;
static int in_handler(uintptr_t sp)
{
    uintptr_t top = (uintptr_t)__libc_stack_end, self = (uintptr_t)pthread_self();
    if (sp >= top || top - sp > (256u << 20))
        top = self;
    if (sp >= top || top - sp > (256u << 20))
        return 1;
    for (uintptr_t x = sp & ~(uintptr_t)7; x + 8 + 0xe8 <= top; x += 8) {
        const uintptr_t *uc = (const uintptr_t *)(x + 8); /* after the frame's pretcode */
        if (uc[0] > 0xf || uc[1] || (uc[0xb8 / 8] & 0xffff) != 0x33)
            continue;
        uintptr_t fp = uc[0xe0 / 8], rsp = uc[0xa0 / 8];
        if ((!fp || (fp > x && fp - x < (64u << 10))) && rsp > x && rsp - x < (1u << 20))
            return 1;
    }
    return 0;
}

/* 1: no signal handler can be running on this thread, so dlopen may run.  A handler runs with
 * its signal blocked unless SA_NODEFER, and SA_RESETHAND's (crash handlers') is no longer caught
 * meanwhile: so no blocked signal that is caught or a fault's, no caught one with SA_NODEFER,
 * not on the alternate signal stack, no signal frame on the stack (in_handler).
 * Called by one thread at a time (unw_state). */
static int may_load(void)
{
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    if ((iot_t.alt_hi && sp >= iot_t.alt_lo && sp < iot_t.alt_hi) || in_handler(sp) ||
        iot_t.in_phdr)
        return 0;
    /* The thread's signal state from the kernel by syscalls that take no descriptor (a read of
     * /proc/thread-self/status took the number another thread's open would get untraced). */
    uint64_t blocked;
    if (syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &blocked, 8) != 0)
        return 0;
    /* refused under this mask before: not asked again at each event (the 64 dispositions); a
     * handler changed meanwhile leaves the answer no, its events without a stack */
    if (iot_t.unw_refused && blocked == iot_t.unw_refused_mask)
        return 0;
    int ok = !(blocked & FAULTS);
    for (int sig = 1; ok && sig <= 64; sig++) {
        struct {
            void *handler;
            unsigned long flags;
            void *restorer;
            uint64_t mask;
        } k; /* the kernel's struct sigaction */
        if (sig == SIGKILL || sig == SIGSTOP ||
            syscall(SYS_rt_sigaction, sig, NULL, &k, 8) != 0 || k.handler == SIG_DFL ||
            k.handler == SIG_IGN)
            continue;
        /* caught: not blocked, no SA_NODEFER (glibc's own, 32 and 33, defer: not asked) */
        ok = !(blocked >> (sig - 1) & 1) && (sig == 32 || sig == 33 || !(k.flags & SA_NODEFER));
    }
    iot_t.unw_refused = !ok;
    iot_t.unw_refused_mask = blocked;
    return ok;
}

/* The app's dl_iterate_phdr (C++ runtimes, profilers, JITs walk the loaded objects): its
 * callback runs with the loader's lock held, so an event there must not load libunwind.  Its
 * dlopen would wait for another thread's dlopen, which waits for that lock (dl_phdr: hung at
 * once).  Resolved at the first call, which is never inside a callback: the outermost call is
 * this one too. */
IOT_API int dl_iterate_phdr(int (*cb)(struct dl_phdr_info *, size_t, void *), void *data)
{
    static int (*real)(int (*)(struct dl_phdr_info *, size_t, void *), void *);
    if (!real)
        real = (int (*)(int (*)(struct dl_phdr_info *, size_t, void *), void *))dlsym(
            RTLD_NEXT, "dl_iterate_phdr");
    if (!real)
        return 0;
    iot_t.in_phdr++;
    int r = real(cb, data);
    iot_t.in_phdr--;
    return r;
}

/* libunwind, now if it may be loaded (called in an unwind: a fork waits for it).  ld.so's
 * reads of its files are the shim's own I/O, measured around the dlopen. */
static int load_unwind(void)
{
    int state = 0;
    while (!__atomic_compare_exchange_n(&unw_state, &state, 1, 0, __ATOMIC_ACQUIRE,
                                        __ATOMIC_ACQUIRE)) {
        if (state != 1)
            return state == 2;
        sched_yield(); /* another thread is loading it */
        state = 0;
    }
    int ok = may_load();
    if (ok && !real_dlopen) /* dlsym too waits for the loader's lock: not before the check */
        real_dlopen = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
    if (!ok || !real_dlopen) {
        __atomic_store_n(&unw_state, 0, __ATOMIC_RELEASE); /* a later event tries again */
        return 0;
    }
    uint64_t io[6] = {0};
    int ready = iot_p.state == IOT_READY; /* else before the start reading, which counts it */
    if (ready)
        iot_kio_in_begin(IOT_KIO_MODE_IN);
    void *h = real_dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
    if (ready) {
        iot_kio_in_end(io);
        iot_own_io(0, (long)io[0]);
        for (uint64_t i = 1; i < io[2]; i++)
            iot_own_io(0, 0);
    }
    void *fn = h ? dlsym(h, "unw_backtrace") : NULL;
    if (fn && dl_iterate_phdr(find_unwind, fn)) {
        backtrace_fn = (int (*)(void **, int))fn; /* for other threads once unw_state is 2 */
        int unwinding = iot_t.unwinding;
        iot_t.unwinding = 1;
        int a = calibrate();
        iot_t.unwinding = unwinding;
        if (a >= 0) {
            unw_shift = (uintptr_t)a;
            const char *c = getenv("IOTRACE_STACK_CHECK");
            if (c && *c == '1')
                check_init(h);
            __atomic_store_n(&unw_state, 2, __ATOMIC_RELEASE);
            return 1;
        }
        backtrace_fn = NULL;
    }
    __atomic_store_n(&unw_state, -1, __ATOMIC_RELEASE);
    return 0;
}

void iot_stack_init(void)
{
    const char *c = getenv("IOTRACE_STACK_CHECK");
    if (c && *c == '1') { /* tests: libunwind from the start, to check every stack */
        __atomic_add_fetch(&unwinders, 1, __ATOMIC_SEQ_CST);
        load_unwind();
        __atomic_sub_fetch(&unwinders, 1, __ATOMIC_RELEASE);
    }
}

/* fork while another thread unwinds: libunwind holds the loader's dl_iterate_phdr lock, which
 * glibc does not reset in the child, so the child's first dl_iterate_phdr (its module map, its
 * first unwind) would wait forever (seen: an mpirun child that never exec'd).  The prepare
 * handler lets the unwinds in progress finish and holds new ones off (their events get no
 * stack) until the fork is done. */
void iot_stack_fork_prepare(void)
{
    __atomic_store_n(&forking, 1, __ATOMIC_SEQ_CST);
    int self = iot_t.unwinding != 0; /* fork from a signal handler inside an unwind */
    while (__atomic_load_n(&unwinders, __ATOMIC_SEQ_CST) > self)
        sched_yield();
}

void iot_stack_fork_parent(void)
{
    __atomic_store_n(&forking, 0, __ATOMIC_SEQ_CST);
}

/* The child's count is its only thread's: another's backing off at the fork does not exist. */
void iot_stack_fork_child(void)
{
    checked = differ = slow = differ_bt = 0; /* IOTRACE_STACK_CHECK's counts: per process */
    check_owner = 0; /* held, if at all, by a thread the child does not have */
    unwinders = iot_t.unwinding != 0;
    forking = 0;
}

/* The shim's own frames under the wrapper's caller, the most an unwind has found (3 on a
 * wrapper's usual path): an unwind asks for that many more than the depth kept, not a fixed
 * margin of 6, so that frames past the last one kept are not walked (~7 ns each).  A path with
 * more of them unwinds again, deeper, once.  A hint only: any value gives the same stack. */
static int shim_frames = 3;

/* IOTRACE_STACK_CHECK=1 (tests): every stack the fast path takes is compared with a full
 * unwind by libunwind (unw_step from a fresh cursor, no caches) and with unw_backtrace's; the
 * counts go to stderr at exit, each difference from the full unwind when found. */
static int check;
static int (*u_getcontext)(unw_context_t *);
static int (*u_init_local)(unw_cursor_t *, unw_context_t *);
static int (*u_step)(unw_cursor_t *);
static int (*u_get_reg)(unw_cursor_t *, int, unw_word_t *);
static int (*u_policy)(unw_addr_space_t, unw_caching_policy_t);
static unw_addr_space_t *u_local;

static void check_init(void *h)
{
    u_policy =
        (int (*)(unw_addr_space_t, unw_caching_policy_t))dlsym(h, "_ULx86_64_set_caching_policy");
    u_local = dlsym(h, "_ULx86_64_local_addr_space");
    u_getcontext = (int (*)(unw_context_t *))dlsym(h, "_Ux86_64_getcontext");
    u_init_local = (int (*)(unw_cursor_t *, unw_context_t *))dlsym(h, "_ULx86_64_init_local");
    u_step = (int (*)(unw_cursor_t *))dlsym(h, "_ULx86_64_step");
    u_get_reg = (int (*)(unw_cursor_t *, int, unw_word_t *))dlsym(h, "_ULx86_64_get_reg");
    if (u_policy && u_local && u_getcontext && u_init_local && u_step && u_get_reg) {
        u_policy(*u_local, UNW_CACHE_NONE); /* nothing remembered from code unloaded since */
        check = 1;
    }
}

/* What unw_backtrace records of a frame: its return address (libunwind 1.6) or that minus one
 * (said of later versions' fast trace); -1 neither (libunwind is then not used).  cfi.c records
 * the return address; libunwind's addresses are shifted to it. */
static __attribute__((noinline)) int calibrate(void)
{
    void *pcs[2];
    int n = backtrace_fn(pcs, 2);
    uintptr_t ret = (uintptr_t)__builtin_extract_return_addr(__builtin_return_address(0));
    __asm__ volatile("" ::: "memory"); /* not a tail call */
    return n == 2 && ret - (uintptr_t)pcs[1] <= 1 ? (int)(ret - (uintptr_t)pcs[1]) : -1;
}

/* The full unwind, addresses as the fast path records them. */
static __attribute__((noinline)) int full_unwind(uintptr_t *out, int depth)
{
    unw_context_t uc;
    unw_cursor_t c;
    if (u_getcontext(&uc) < 0 || u_init_local(&c, &uc) < 0)
        return -1;
    int n = 0, lead = 1;
    do {
        unw_word_t ip;
        if (u_get_reg(&c, UNW_REG_IP, &ip) < 0 || ip < 0x4000)
            break;
        if (lead && ip >= iot_p.self_lo && ip < iot_p.self_hi)
            continue;
        lead = 0;
        out[n++] = ip;
    } while (n < depth && u_step(&c) > 0);
    return n;
}

static void put_stack(char *buf, size_t cap, size_t *len, const uintptr_t *pcs, int n)
{
    for (int i = 0; i < n && *len < cap; i++)
        *len += (size_t)snprintf(buf + *len, cap - *len, " %lx", (unsigned long)pcs[i]);
}

static void check_stack(const uintptr_t *fast, int m, int depth)
{
    uintptr_t full[IOT_MAX_STACK];
    __atomic_add_fetch(&unwinders, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&forking, __ATOMIC_SEQ_CST)) {
        __atomic_sub_fetch(&unwinders, 1, __ATOMIC_SEQ_CST);
        return;
    }
    iot_t.unwinding = 1;
    int n = full_unwind(full, depth);
    void *bt[IOT_MAX_STACK + 32]; /* and what unw_backtrace gives (the stacks before cfi.c):
                                   * its fast trace, which it takes only with caches on */
    u_policy(*u_local, UNW_CACHE_GLOBAL);
    int nb = backtrace_fn(bt, depth + 32), i = 0;
    u_policy(*u_local, UNW_CACHE_NONE);
    for (int k = 0; k < nb; k++)
        bt[k] = (char *)bt[k] + unw_shift;
    iot_t.unwinding = 0;
    __atomic_sub_fetch(&unwinders, 1, __ATOMIC_RELEASE);
    while (i < nb && (uintptr_t)bt[i] >= iot_p.self_lo && (uintptr_t)bt[i] < iot_p.self_hi)
        i++;
    nb = nb - i < depth ? nb - i : depth;
    if (nb != m || memcmp(fast, bt + i, sizeof *fast * (size_t)(m > 0 ? m : 0)))
        __atomic_add_fetch(&differ_bt, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&checked, 1, __ATOMIC_RELAXED);
    if (n == m && !memcmp(fast, full, sizeof *fast * (size_t)m))
        return;
    __atomic_add_fetch(&differ, 1, __ATOMIC_RELAXED);
    char buf[2048];
    size_t len = (size_t)snprintf(buf, sizeof buf, "iotrace: stack check: fast");
    put_stack(buf, sizeof buf - 64, &len, fast, m);
    len += (size_t)snprintf(buf + len, sizeof buf - len, " | full");
    put_stack(buf, sizeof buf - 2, &len, full, n);
    buf[len++] = '\n';
    IOT_SYSRAW(write, 2, buf, len);
}

__attribute__((destructor)) static void check_report(void)
{
    if (!check)
        return;
    char buf[200];
    int len = snprintf(buf, sizeof buf,
                       "iotrace: stack check: %lu fast, %lu differ, %lu by libunwind, "
                       "%lu differ from unw_backtrace, %lu read the tables\n",
                       __atomic_load_n(&checked, __ATOMIC_RELAXED),
                       __atomic_load_n(&differ, __ATOMIC_RELAXED),
                       __atomic_load_n(&slow, __ATOMIC_RELAXED),
                       __atomic_load_n(&differ_bt, __ATOMIC_RELAXED),
                       __atomic_load_n(&iot_cfi_unknown, __ATOMIC_RELAXED));
    IOT_SYSRAW(write, 2, buf, (size_t)len);
}

static uint32_t capture(void)
{
    int depth = iot_p.stack_depth;
    uintptr_t fast[IOT_MAX_STACK];
    uint32_t id, *idp = IOT_UNLIKELY(check) ? NULL : &id;
    memset(fast, 0, (size_t)depth * sizeof *fast); /* a failed walk's frames end at a 0 */
    int m = iot_cfi_backtrace(fast, depth, idp);
    if (IOT_UNLIKELY(m == IOT_CFI_MISS)) /* tables not read now (fork, or libunwind closing) */
        return 0;
    if (m >= 0) {
        if (IOT_UNLIKELY(check))
            check_stack(fast, m, depth);
        else if (id)
            return id;
        id = m ? iot_intern_stack(fast, m) : 0;
        iot_cfi_memo_id(id);
        return id;
    }
    if (IOT_UNLIKELY(check))
        __atomic_add_fetch(&slow, 1, __ATOMIC_RELAXED);
    void *pcs[IOT_MAX_STACK + 16];
    int want = depth + __atomic_load_n(&shim_frames, __ATOMIC_RELAXED);
    __atomic_add_fetch(&unwinders, 1, __ATOMIC_SEQ_CST);
    if (IOT_UNLIKELY(__atomic_load_n(&forking, __ATOMIC_SEQ_CST))) {
        __atomic_sub_fetch(&unwinders, 1, __ATOMIC_SEQ_CST);
        return 0;
    }
    if (__atomic_load_n(&unw_state, __ATOMIC_ACQUIRE) != 2 && !load_unwind()) {
        __atomic_sub_fetch(&unwinders, 1, __ATOMIC_SEQ_CST);
        /* libunwind may not be loaded here (a handler may be running, a makecontext stack
         * whose bounds are unknown): the frames the fast walk took before the one it could
         * not, innermost first (docs/format.md) */
        int k = 0;
        while (k < depth && fast[k])
            k++;
        return k ? iot_intern_stack(fast, k) : 0;
    }
    iot_t.unwinding = 1;
    int n, i;
    for (;;) {
        want = want < (int)(sizeof pcs / sizeof *pcs) ? want : (int)(sizeof pcs / sizeof *pcs);
        n = backtrace_fn(pcs, want);
        i = 0; /* drop the shim's own frames: the stack starts at the wrapper's caller */
        while (i < n && (uintptr_t)pcs[i] >= iot_p.self_lo && (uintptr_t)pcs[i] < iot_p.self_hi)
            i++;
        /* cut short by `want` with fewer than depth frames past the shim's: deeper */
        if (n < want || n - i >= depth || want == (int)(sizeof pcs / sizeof *pcs))
            break;
        want = depth + i + 2;
    }
    iot_t.unwinding = 0;
    __atomic_sub_fetch(&unwinders, 1, __ATOMIC_RELEASE);
    if (IOT_UNLIKELY(i > shim_frames) && i < n)
        __atomic_store_n(&shim_frames, i, __ATOMIC_RELAXED);
    m = n - i < depth ? n - i : depth;
    if (m <= 0)
        return 0;
    for (int k = i; k < i + m; k++)
        pcs[k] = (char *)pcs[k] + unw_shift;
    return iot_intern_stack((const uintptr_t *)(pcs + i), m);
}

/* IOTRACE_STACK_CHECK switches libunwind's caching policy around each check, and libunwind
 * reads the policy both when it takes its cache lock and when it gives it back: a switch while
 * another thread unwinds left that lock taken for good (threads of tests/progs/stack_paths.c
 * hung in _ULx86_64_step).  So checked captures run one at a time; a handler interrupting its
 * own thread's capture goes on (the policy is restored outside the unwinding window, and
 * inside it the handler's events are deferred).  Tests only: never taken without the check. */
/* cfi.c reads the unwind tables, taking the loader's lock, only between these: an unwind, for
 * fork (also from a handler inside).  0: not now. */
int iot_cfi_derive_begin(void)
{
    __atomic_add_fetch(&unwinders, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&forking, __ATOMIC_SEQ_CST)) {
        __atomic_sub_fetch(&unwinders, 1, __ATOMIC_SEQ_CST);
        return 0;
    }
    iot_t.unwinding = 1;
    return 1;
}

void iot_cfi_derive_end(void)
{
    iot_t.unwinding = 0;
    __atomic_sub_fetch(&unwinders, 1, __ATOMIC_RELEASE);
}

/* 1: running on the thread's alternate signal stack with less than a walk's room left below
 * (an 8 KiB sigaltstack, the classic SIGSTKSZ, has ~2 KiB to spare under a handler that opens
 * and writes: a walk would run past it, into whatever lies below) */
static __attribute__((noinline)) int short_of_room(void)
{
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    return sp >= iot_t.alt_lo && sp < iot_t.alt_hi && sp - iot_t.alt_lo < IOT_WALK_ROOM;
}

uint32_t iot_capture_stack(void)
{
    if (IOT_SANDBOXED()) /* the memos' mapping, the address checks: syscalls */
        return 0;
    if (IOT_UNLIKELY(iot_t.alt_hi) && short_of_room()) /* the event goes without a stack */
        return 0;
    if (IOT_LIKELY(!check))
        return capture();
    pid_t self = iot_t.tid ? iot_t.tid : iot_gettid(), none = 0;
    if (__atomic_load_n(&check_owner, __ATOMIC_ACQUIRE) == self)
        return capture();
    while (!__atomic_compare_exchange_n(&check_owner, &none, self, 0, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED)) {
        none = 0;
        sched_yield();
    }
    uint32_t id = capture();
    __atomic_store_n(&check_owner, 0, __ATOMIC_RELEASE);
    return id;
}
