/* Stack capture: raw return addresses (symbolised after the run), interned.
 *
 * libunwind (94 ns for 10 frames here, libgcc's unwinder 1.2 us) is loaded RTLD_LOCAL: linked
 * normally it would export _Unwind_* into the app's global scope and take over C++ exception
 * unwinding.  It keeps a pipe for validating addresses, opened at the lowest free descriptors --
 * the app would see other fd numbers than untraced -- and it closes and reopens that pipe by its
 * remembered numbers, which by then may be the app's files.  libunwind is loaded after the shim,
 * so its pipe2/read/close bind to the shim's wrappers: while unwinding they come here, the pipe
 * lives at the top of the descriptor range (closed after the unwind under a low limit), and
 * libunwind can touch no other descriptor.  Only
 * calls made from libunwind's own code are diverted: a signal handler running meanwhile does
 * its I/O as usual. */
#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <libunwind.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"
#include "sysraw.h"

static int (*backtrace_fn)(void **, int);
static void check_init(void *h);
static unsigned long checked, differ, slow, differ_bt; /* IOTRACE_STACK_CHECK's counts */
static pid_t check_owner; /* the thread in a checked capture (iot_capture_stack) */
static int ufd[2] = {-1, -1};
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

int iot_unwind_fd(int fd)
{
    return fd >= 0 && (fd == ufd[0] || fd == ufd[1]);
}

/* Below this RLIMIT_NOFILE the pipe is closed after each unwind (release_pipe). */
#define TRANSIENT_BELOW 1024
static int transient;

static int high_base(void)
{
    struct rlimit rl;
    if (syscall(SYS_getrlimit, RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < 64) {
        transient = 1;
        return 3;
    }
    transient = rl.rlim_cur < TRANSIENT_BELOW;
    rlim_t top = rl.rlim_cur > 65536 ? 65536 : rl.rlim_cur;
    return (int)top - 8;
}

int iot_unwind_pipe2(int fds[2], int flags)
{
    int p[2];
    if (IOT_SYSRAW(pipe2, p, flags | O_CLOEXEC) < 0)
        return -1;
    int base = high_base();
    for (int i = 0; i < 2; i++) {
        int h = (int)IOT_SYSRAW(fcntl, p[i], F_DUPFD_CLOEXEC, base);
        if (h >= 0) {
            IOT_SYSRAW(close, p[i]);
            p[i] = h;
        }
        if (flags & O_NONBLOCK)
            IOT_SYSRAW(fcntl, p[i], F_SETFL, O_NONBLOCK);
    }
    fds[0] = ufd[0] = p[0];
    fds[1] = ufd[1] = p[1];
    return 0;
}

int iot_unwind_close(int fd)
{
    if (fd >= 0 && fd == ufd[0])
        iot_own_bytes(1, iot_unwind_held()); /* as in release_pipe */
    if (iot_unwind_fd(fd)) {
        IOT_SYSRAW(close, fd);
        ufd[fd == ufd[1]] = -1;
    }
    return 0;
}

ssize_t iot_unwind_read(int fd, void *buf, size_t n)
{
    /* libunwind drains its pipe before each address check, then checks the address by writing
     * one byte from it with a raw syscall(SYS_write) the shim cannot see: that write is counted
     * here, its byte when it is drained (a valid address) -- the last one by iot_unwind_held */
    iot_own_io(1, 0);
    if (!iot_unwind_fd(fd)) { /* gone (the app closed or reused it): libunwind reopens */
        errno = EBADF;
        return -1;
    }
    long r = IOT_SYSRAW(read, fd, buf, n);
    /* libunwind drains while errno == EINTR: an EINTR the app's last call left (make's pselect
     * after a SIGCHLD) made it read again, two reads for one write, one write counted too many */
    if (r >= 0)
        errno = 0;
    iot_own_io(0, r);
    if (r == 1)
        iot_own_bytes(1, 1);
    return r;
}

const int *iot_unwind_fd_addr(void)
{
    return &ufd[0];
}

/* Bytes libunwind's last address check left in its pipe (written, not yet drained). */
int iot_unwind_held(void)
{
    int n = 0;
    if (ufd[0] < 0 || syscall(SYS_ioctl, ufd[0], FIONREAD, &n) < 0) /* not a stopped syscall */
        return 0;
    return n;
}

/* The app closed or replaced descriptors lo..hi: libunwind's pipe may be among them. */
void iot_unwind_forget(unsigned lo, unsigned hi)
{
    for (int i = 0; i < 2; i++)
        if (ufd[i] >= 0 && (unsigned)ufd[i] >= lo && (unsigned)ufd[i] <= hi)
            ufd[i] = -1;
}

void iot_stack_init(void)
{
    void *h = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return;
    void *fn = dlsym(h, "unw_backtrace");
    if (fn && dl_iterate_phdr(find_unwind, fn))
        backtrace_fn = (int (*)(void **, int))fn;
    const char *c = getenv("IOTRACE_STACK_CHECK");
    if (backtrace_fn && c && *c == '1')
        check_init(h);
}

/* fork while another thread unwinds: libunwind holds the loader's dl_iterate_phdr lock, which
 * glibc does not reset in the child, so the child's first dl_iterate_phdr (its module map, its
 * first unwind) would wait forever (seen: an mpirun child that never exec'd).  The prepare
 * handler lets the unwinds in progress finish and holds new ones off (their events get no
 * stack) until the fork is done. */
static int unwinders, forking;

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
    /* the pipe is the parent's too: its bytes would be drained by either; libunwind opens
     * another at its next check (it finds this one gone) */
    for (int i = 0; i < 2; i++)
        if (ufd[i] >= 0) {
            if (!IOT_SANDBOXED())
                IOT_SYSRAW(close, ufd[i]);
            ufd[i] = -1;
        }
}

/* libunwind opens its pipe at its first unwind and uses it to validate addresses (signal
 * frames, the frame-chain fallback), reopening it when a read says EBADF.  Under a low
 * RLIMIT_NOFILE (< TRANSIENT_BELOW) it is closed after each unwind, so the shim holds no
 * descriptor between calls: the app's descriptor numbers and its EMFILE are those of an
 * untraced run.  Above, it stays at limit-8 (reopening costs ~5 us, and some call sites
 * validate at every unwind).  Closed only while no other thread unwinds (unwinders 0 ->
 * CLOSING): one might be between libunwind's read and its raw write to the pipe, and that
 * number could be the app's file by then. */
#define CLOSING (1 << 30)

static void release_pipe(void)
{
    int idle = 0;
    if (!__atomic_compare_exchange_n(&unwinders, &idle, CLOSING, 0, __ATOMIC_SEQ_CST,
                                     __ATOMIC_RELAXED))
        return; /* the last one out closes it */
    iot_own_bytes(1, iot_unwind_held()); /* a check's byte written, never to be drained */
    for (int i = 0; i < 2; i++)
        if (ufd[i] >= 0) {
            IOT_SYSRAW(close, ufd[i]);
            ufd[i] = -1;
        }
    __atomic_sub_fetch(&unwinders, CLOSING, __ATOMIC_SEQ_CST);
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

/* unw_backtrace records a frame's return address (libunwind 1.6) or that minus one (later
 * versions' fast trace): -2 not known yet, -1 neither (the fast path stays off). */
static int adjust = -2;

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
        if (lead && ip - adjust >= iot_p.self_lo && ip - adjust < iot_p.self_hi)
            continue;
        lead = 0;
        out[n++] = ip - adjust;
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
    if (__atomic_fetch_add(&unwinders, 1, __ATOMIC_SEQ_CST) >= CLOSING ||
        __atomic_load_n(&forking, __ATOMIC_SEQ_CST)) {
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
    iot_t.unwinding = 0;
    __atomic_sub_fetch(&unwinders, 1, __ATOMIC_RELEASE);
    if (IOT_UNLIKELY(transient) && (ufd[0] >= 0 || ufd[1] >= 0))
        release_pipe();
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
    if (IOT_UNLIKELY(adjust == -2)) { /* the first stack: how unw_backtrace records one */
        if (__atomic_fetch_add(&unwinders, 1, __ATOMIC_SEQ_CST) >= CLOSING ||
            __atomic_load_n(&forking, __ATOMIC_SEQ_CST)) {
            __atomic_sub_fetch(&unwinders, 1, __ATOMIC_SEQ_CST);
            return 0;
        }
        iot_t.unwinding = 1;
        int a = calibrate();
        iot_t.unwinding = 0;
        __atomic_sub_fetch(&unwinders, 1, __ATOMIC_RELEASE);
        if (IOT_UNLIKELY(transient) && (ufd[0] >= 0 || ufd[1] >= 0))
            release_pipe();
        if (a >= 0)
            iot_cfi_adjust((unsigned)a);
        adjust = a;
    }
    int m = adjust >= 0 ? iot_cfi_backtrace(fast, depth, idp) : -1;
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
    int before = __atomic_fetch_add(&unwinders, 1, __ATOMIC_SEQ_CST);
    if (IOT_UNLIKELY(before >= CLOSING || __atomic_load_n(&forking, __ATOMIC_SEQ_CST))) {
        __atomic_sub_fetch(&unwinders, 1, __ATOMIC_SEQ_CST);
        return 0;
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
    if (IOT_UNLIKELY(transient) && (ufd[0] >= 0 || ufd[1] >= 0))
        release_pipe();
    if (IOT_UNLIKELY(i > shim_frames) && i < n)
        __atomic_store_n(&shim_frames, i, __ATOMIC_RELAXED);
    m = n - i < depth ? n - i : depth;
    if (m <= 0)
        return 0;
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
    if (__atomic_fetch_add(&unwinders, 1, __ATOMIC_SEQ_CST) >= CLOSING ||
        __atomic_load_n(&forking, __ATOMIC_SEQ_CST)) {
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

uint32_t iot_capture_stack(void)
{
    if (!backtrace_fn || IOT_SANDBOXED()) /* libunwind's pipe, the memos' mapping: syscalls */
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
