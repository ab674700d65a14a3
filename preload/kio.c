/* The kernel's I/O accounting of this process (/proc/self/io: rchar, wchar, syscr, syscw,
 * read_bytes, write_bytes, cancelled_write_bytes), read at the shim's start, just before an exec
 * and at exit, and written as KIO records: the analyzer checks what the trace explains against
 * it (docs/format.md, docs/analyzer.md "Completeness").  The kernel counts every read- and
 * write-type syscall of the process, the shim's own among them: those are counted here, so that
 * they are not taken for the app's. */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"
#include "sysraw.h"

/* The shim's own read/write syscalls in this image: rchar, wchar, syscr, syscw. */
static uint64_t own[4];

/* The events' sums (iot_t.kio: rchar, wchar, syscr, syscw, stdio bytes read, written) are kept
 * per thread, without atomics; a reading adds up the live threads' (a table of pointers to
 * their iot_t.kio) and those of the threads gone.  A thread leaves the table at its exit, before
 * its TLS is freed; one not in it (the table full, or I/O in a later key destructor) adds to
 * `gone` directly. */
#define LIVE_MAX IOT_KIO_LIVE_MAX
static uint64_t *live[LIVE_MAX];
static uint64_t gone[6];
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;

static int read_counters(const char *file, uint64_t v[IOT_KIO_N]);

/* A thread's readings of its own counters (/proc/thread-self/io, around each call it measures)
 * take a descriptor.  Opened and closed at each reading, it held the lowest free number for
 * those microseconds: another thread's open, socket or pipe meanwhile got another number than
 * untraced (tests/progs/fd_measured.c: 49,781 of the main thread's opens beside 20,000
 * measured calls).  In a process with more than one thread it is opened at the thread's first
 * reading and kept for the thread's life, read again with pread at offset 0 (a /proc file is
 * rendered anew), at a number at or above the soft RLIMIT_NOFILE, where no descriptor of the
 * app's can be given: the soft limit is raised for the F_DUPFD and put back, under rl_lock,
 * which the app's setrlimit and prlimit of RLIMIT_NOFILE take too (preload/wrap_rlimit.c).
 * Only its opening takes a low number, once in the thread's life.  A single-threaded process
 * has no other thread to race: its readings hold their descriptor for the reading only, so
 * that `ls /proc/self/fd` lists what it lists untraced.  A fork child closes those it
 * inherited (an exec does: O_CLOEXEC); one the app closed (close_range) is opened again, and
 * all are closed before the app lists its descriptors (opendir of /proc/self/fd, /dev/fd:
 * iot_kio_fds_listed), so that the listing is as untraced; each is opened again at its
 * thread's next reading.
 * Where the soft limit cannot be raised (it is the hard one) or is past KEEP_LIMIT (the
 * kernel's table of descriptors grows to the number), the readings stay one descriptor each. */
#define KEEP_LIMIT 65536
static int kept[LIVE_MAX]; /* the threads' counters descriptors + 1, for a fork child to close */
/* raised (under live_lock) each time the app lists its descriptors and they are closed: a
 * thread's descriptor opened under another value is no longer its own (iot_kio_fds_listed) */
static unsigned kept_gen;
int iot_kio_kept_min = INT_MAX; /* the lowest number ever kept: the app's close looks above */

int iot_kio_kept(int fd)
{
    int found = 0;
    for (int i = 0; i < LIVE_MAX && !found; i++)
        found = __atomic_load_n(&kept[i], __ATOMIC_RELAXED) == fd + 1;
    return found;
}
static pthread_mutex_t rl_lock = PTHREAD_MUTEX_INITIALIZER;

void iot_rlimit_lock(int lock)
{
    if (iot_t.busy) /* a signal handler's call inside the shim's own section: its lock held */
        return;
    if (lock)
        pthread_mutex_lock(&rl_lock);
    else
        pthread_mutex_unlock(&rl_lock);
}

/* While the soft limit is raised (keep_high), a child made by another thread would inherit it
 * (a fork, vfork or posix_spawn copies the limits at the clone: 16 of 3,000 forks beside
 * threads making their first readings, tests/progs/fork_limit.c).  A flag each way, sequentially
 * consistent (Dekker's): keep_high raises only when no child is being made, a child is made
 * only when no raise is on; a raise that meets one is given up (that reading takes a
 * descriptor of its own).  raising_here: this thread raises (a signal handler's fork inside it
 * goes on, not waits for itself). */
static int raising, spawning;
static __thread int raising_here;

void iot_kio_spawn_hold(void)
{
    for (;;) {
        __atomic_add_fetch(&spawning, 1, __ATOMIC_SEQ_CST);
        if (raising_here || !__atomic_load_n(&raising, __ATOMIC_SEQ_CST))
            return;
        __atomic_sub_fetch(&spawning, 1, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(&raising, __ATOMIC_SEQ_CST))
            sched_yield();
    }
}

void iot_kio_spawn_release(void)
{
    __atomic_sub_fetch(&spawning, 1, __ATOMIC_SEQ_CST);
}

/* fd moved to a number at or above the soft RLIMIT_NOFILE: the new one, else -1 (-2: a child
 * was being made, the limit left as it is this once) */
static int keep_high(int fd)
{
    struct rlimit rl, up;
    int high = -1;
    pthread_mutex_lock(&rl_lock);
    if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &rl) == 0 && rl.rlim_cur < rl.rlim_max &&
        rl.rlim_cur <= KEEP_LIMIT) {
        up = rl;
        up.rlim_cur = rl.rlim_max - rl.rlim_cur > LIVE_MAX ? rl.rlim_cur + LIVE_MAX : rl.rlim_max;
        raising_here = 1;
        __atomic_store_n(&raising, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&spawning, __ATOMIC_SEQ_CST))
            high = -2;
        else if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &up, NULL) == 0) {
            high = (int)IOT_SYSRAW(fcntl, fd, F_DUPFD_CLOEXEC, (long)rl.rlim_cur);
            syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &rl, NULL);
        }
        __atomic_store_n(&raising, 0, __ATOMIC_SEQ_CST);
        raising_here = 0;
    }
    pthread_mutex_unlock(&rl_lock);
    return high;
}

/* The thread's kept counters descriptor, opened at its first reading; -1: none to be had. */
static int counters_fd(void)
{
    if (iot_t.kio_fd != 0)
        return iot_t.kio_fd - 1;
    int fd = (int)IOT_SYSRAW(openat, AT_FDCWD, "/proc/thread-self/io", O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int high = keep_high(fd);
    IOT_SYSRAW(close, fd);
    if (high == -2) /* kept at a later reading */
        return -1;
    if (high < 0) {
        iot_t.kio_fd = -1; /* for the thread's life: one descriptor a reading */
        return -1;
    }
    pthread_mutex_lock(&live_lock);
    for (int i = 0; i < LIVE_MAX && !iot_t.kio_fd; i++)
        if (!kept[i]) {
            kept[i] = high + 1;
            if (high < iot_kio_kept_min)
                iot_kio_kept_min = high;
            iot_t.kio_fd = high + 1;
            iot_t.kio_fd_gen = kept_gen;
        }
    pthread_mutex_unlock(&live_lock);
    if (!iot_t.kio_fd) {
        IOT_SYSRAW(close, high);
        return -1;
    }
    return high;
}

/* The thread's kept descriptor forgotten, closed if it is still the shim's (close: 1). */
static void forget_fd(int close)
{
    int fd = iot_t.kio_fd - 1;
    if (fd < 0) {
        iot_t.kio_fd = 0;
        return;
    }
    pthread_mutex_lock(&live_lock);
    /* else closed by a listing or close_range since: its number may be another thread's now */
    int ours = iot_t.kio_fd_gen == kept_gen;
    for (int i = 0; i < LIVE_MAX && ours; i++)
        if (kept[i] == fd + 1)
            kept[i] = 0;
    pthread_mutex_unlock(&live_lock);
    iot_t.kio_fd = 0;
    if (close && ours)
        IOT_SYSRAW(close, fd);
}

/* The thread's counters into buf: through its kept descriptor where it has one to keep, else
 * one for this reading.  The bytes read, else -1 (errno). */
static long read_thread(char *buf, size_t n)
{
    if (!IOT_SINGLE_THREADED() && !iot_t.vforked) /* a vfork child's thread is not the parent's */
        for (int again = 0; again < 2; again++) {
            int fd = counters_fd();
            if (fd < 0)
                break;
            unsigned gen = iot_t.kio_fd_gen;
            long r = __atomic_load_n(&kept_gen, __ATOMIC_ACQUIRE) == gen
                         ? IOT_SYSRAW(pread64, fd, buf, n, 0)
                         : -1;
            /* still its own after the read: no listing closed it meanwhile (whose number
             * another thread's descriptor may have taken since) */
            if (r > 6 && !memcmp(buf, "rchar:", 6) &&
                __atomic_load_n(&kept_gen, __ATOMIC_ACQUIRE) == gen)
                return r;
            /* closed by the app (close_range), or its number since given to a file of the
             * app's (it raised its limit): forgotten, not closed, and opened anew */
            if (r > 0)
                iot_own_io(0, r);
            forget_fd(0);
        }
    int fd = (int)IOT_SYSRAW(openat, AT_FDCWD, "/proc/thread-self/io", O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    long r = IOT_SYSRAW(read, fd, buf, n);
    int e = errno;
    IOT_SYSRAW(close, fd);
    errno = e;
    return r;
}

/* the stracer reads iot_t.kio_in_ok beside busy and in_wrapper (stracer/tracer.py, _restarted) */
_Static_assert(offsetof(iot_thread, kio_in_ok) == 8, "kio_in_ok at tls_off + 8");

/* A call of mode "in" measures its inner I/O with the thread's counters.  Wrapped calls made
 * inside it are events of their own (counted in iot_t.kio), and the shim's own syscalls are
 * counted apart (iot_t.own): both are taken off what it measured.  One nested in another (a
 * constructor's dlopen inside dlopen) is part of the outer one's measure. */
void iot_kio_in_begin(unsigned mode)
{
    uint64_t v[IOT_KIO_N];
    if (iot_t.kio_in_depth++ > 0)
        return;
    if (mode == IOT_KIO_MODE_IN_SHIM && iot_stracing) { /* its I/O is libc-internal events of the stracer's */
        iot_t.kio_in_ok = 0;
        return;
    }
    int busy = iot_t.busy;
    iot_t.busy = 1;
    iot_t.kio_in_ok = read_counters(NULL, v);
    for (int i = 0; i < 4; i++) {
        iot_t.kio_in[i] = v[i];
        iot_t.kio_in_own[i] = iot_t.own[i]; /* after its own reading: counted apart (last) */
    }
    for (int i = 0; i < 6; i++)
        iot_t.kio_in_ev[i] = iot_t.kio[i];
    iot_t.busy = busy;
}

static uint64_t less(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

/* The thread's read/write I/O since iot_kio_in_begin, less the shim's own (the reading that
 * began it, and its syscalls meanwhile) and the events recorded inside it, into sums. */
void iot_kio_in_end(uint64_t sums[6])
{
    uint64_t v[IOT_KIO_N], own_in[4], ev_in[4];
    if (iot_t.kio_in_depth > 0 && --iot_t.kio_in_depth > 0)
        return;
    if (!iot_t.kio_in_ok)
        return;
    iot_t.kio_in_ok = 0;
    uint64_t last = iot_t.kio_in_cost;
    for (int i = 0; i < 4; i++) /* before this reading, which the kernel counts after it */
        own_in[i] = iot_t.own[i] - iot_t.kio_in_own[i];
    ev_in[0] = iot_t.kio[0] - iot_t.kio_in_ev[0] + iot_t.kio[4] - iot_t.kio_in_ev[4];
    ev_in[1] = iot_t.kio[1] - iot_t.kio_in_ev[1] + iot_t.kio[5] - iot_t.kio_in_ev[5];
    ev_in[2] = iot_t.kio[2] - iot_t.kio_in_ev[2];
    ev_in[3] = iot_t.kio[3] - iot_t.kio_in_ev[3];
    if (!read_counters(NULL, v))
        return;
    uint64_t first[4] = {last, 0, 1, 0};
    for (int i = 0; i < 4; i++)
        sums[i] += less(v[i] - iot_t.kio_in[i], first[i] + own_in[i] + ev_in[i]);
}

void iot_kio_inner(const uint64_t d[4])
{
    for (int i = 0; i < 4; i++) {
        if (iot_t.kio_slot > 0)
            iot_t.kio[i] += d[i];
        else
            __atomic_fetch_add(&gone[i], d[i], __ATOMIC_RELAXED);
    }
}

void iot_kio_count_slow(const iot_ev *ev, unsigned mode)
{
    if (iot_kio_mode_in(mode)) {
        if (iot_t.kio_slot > 0) {
            iot_kio_in_end(iot_t.kio);
            return;
        }
        uint64_t d[6] = {0};
        iot_kio_in_end(d);
        for (int i = 0; i < 4; i++)
            __atomic_fetch_add(&gone[i], d[i], __ATOMIC_RELAXED);
        return;
    }
    if (iot_t.kio_slot == 0) {
        pthread_mutex_lock(&live_lock);
        for (int i = 0; i < LIVE_MAX; i++)
            if (!live[i]) {
                live[i] = iot_t.kio;
                iot_t.kio_slot = i + 1;
                break;
            }
        pthread_mutex_unlock(&live_lock);
        if (iot_t.kio_slot > 0) {
            iot_kio_add(iot_t.kio, ev, mode);
            return;
        }
        iot_t.kio_slot = -1;
    }
    uint64_t d[6] = {0};
    iot_kio_add(d, ev, mode);
    for (int i = 0; i < 6; i++)
        if (d[i])
            __atomic_fetch_add(&gone[i], d[i], __ATOMIC_RELAXED);
}

void iot_kio_fds_listed(const char *path)
{
    /* busy: a signal handler's call that interrupted the shim's own work (live_lock held?) */
    if (!path || (strncmp(path, "/proc/", 6) && strncmp(path, "/dev/fd", 7)) || iot_t.busy)
        return;
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    if (n < 3 || memcmp(path + n - 3, "/fd", 3))
        return;
    iot_kio_fds_closed(1, 0); /* none closed by the app: all here */
}

void iot_kio_fd_reused(int fd)
{
    /* busy: a signal handler's call that interrupted the shim's own work (live_lock held?) */
    if (iot_t.busy || !iot_kio_kept(fd))
        return;
    iot_kio_fds_closed(1, 0); /* none closed by the app: all here */
}

void iot_kio_fds_closed(unsigned lo, unsigned hi)
{
    if (IOT_SANDBOXED())
        return;
    int e = errno;
    pthread_mutex_lock(&live_lock);
    __atomic_add_fetch(&kept_gen, 1, __ATOMIC_ACQ_REL);
    for (int i = 0; i < LIVE_MAX; i++)
        if (kept[i]) {
            /* one the app's close_range left open: closed here, not left open forgotten (a
             * listing showed it: close_range(3, 100) beside a thread's 1024) */
            if ((unsigned)(kept[i] - 1) < lo || (unsigned)(kept[i] - 1) > hi)
                IOT_SYSRAW(close, kept[i] - 1);
            kept[i] = 0;
        }
    pthread_mutex_unlock(&live_lock);
    errno = e;
}

void iot_kio_thread_exit(void)
{
    if (iot_t.kio_fd)
        forget_fd(!IOT_SANDBOXED()); /* under the app's seccomp filter: left to the exec */
    if (iot_t.kio_slot <= 0)
        return;
    /* under the app's seccomp filter no lock (waiting on it is a syscall) and no reader in
     * the process: only the stracer's, at the end, reads the sums (gone first: never less) */
    int lock = !IOT_SANDBOXED();
    if (lock)
        pthread_mutex_lock(&live_lock);
    for (int i = 0; i < 6; i++)
        __atomic_fetch_add(&gone[i], iot_t.kio[i], __ATOMIC_SEQ_CST);
    __atomic_store_n(&live[iot_t.kio_slot - 1], NULL, __ATOMIC_SEQ_CST);
    if (lock)
        pthread_mutex_unlock(&live_lock);
    iot_t.kio_slot = -1;
}

static void event_sums(uint64_t out[6])
{
    pthread_mutex_lock(&live_lock);
    for (int k = 0; k < 6; k++)
        out[k] = __atomic_load_n(&gone[k], __ATOMIC_RELAXED);
    for (int i = 0; i < LIVE_MAX; i++)
        if (live[i])
            for (int k = 0; k < 6; k++)
                out[k] += __atomic_load_n(&live[i][k], __ATOMIC_RELAXED);
    pthread_mutex_unlock(&live_lock);
}

void iot_own_io(int is_write, long ret)
{
    if (ret > 0) {
        __atomic_fetch_add(&own[is_write ? 1 : 0], (uint64_t)ret, __ATOMIC_RELAXED);
        iot_t.own[is_write ? 1 : 0] += (uint64_t)ret;
    }
    __atomic_fetch_add(&own[is_write ? 3 : 2], 1, __ATOMIC_RELAXED);
    iot_t.own[is_write ? 3 : 2]++;
}

void iot_own_bytes(int is_write, long n)
{
    __atomic_fetch_add(&own[is_write ? 1 : 0], (uint64_t)n, __ATOMIC_RELAXED);
    iot_t.own[is_write ? 1 : 0] += (uint64_t)n;
}

/* Where the stracer reads them at the process's exit stop (iot_link's kio_*): an image that
 * ends without its exit reading (a raw exit_group) still holds them there. */
void iot_kio_link(uint64_t addr[3])
{
    addr[0] = (uint64_t)(uintptr_t)own;
    addr[1] = (uint64_t)(uintptr_t)gone;
    addr[2] = (uint64_t)(uintptr_t)live;
}

void iot_kio_fork_child(void)
{
    /* a forked child's counters start at zero in the kernel too; its only thread is this one,
     * whose iot_t is reset next (iot_thread_reset) */
    pthread_mutex_init(&live_lock, NULL);
    for (int i = 0; i < 4; i++)
        own[i] = 0;
    for (int i = 0; i < 6; i++)
        gone[i] = 0;
    for (int i = 0; i < LIVE_MAX; i++)
        live[i] = NULL;
    pthread_mutex_init(&rl_lock, NULL);
    raising = spawning = 0; /* the child's only thread makes no child and raises nothing yet */
    for (int i = 0; i < LIVE_MAX; i++) /* the parent's threads' counters, not the child's */
        if (kept[i]) {
            IOT_SYSRAW(close, kept[i] - 1);
            kept[i] = 0;
        }
    iot_t.kio_fd = 0;
}

/* The seven counters of FILE (/proc/self/io; NULL: the thread's, read_thread) in the kernel's
 * order; 0 if it cannot be read.  iot_t.kio_in_cost: the bytes of that read (counted after the values). */
static int read_counters(const char *file, uint64_t v[IOT_KIO_N])
{
    char buf[512];
    if (IOT_SANDBOXED()) /* no syscall of the shim's own: no reading (sandbox.c) */
        return 0;
    long n;
    if (file) {
        int fd = (int)IOT_SYSRAW(openat, AT_FDCWD, file, O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0)
            return 0;
        n = IOT_SYSRAW(read, fd, buf, sizeof buf - 1);
        int e = errno;
        IOT_SYSRAW(close, fd);
        errno = e;
    } else {
        n = read_thread(buf, sizeof buf - 1);
    }
    int e = n < 0 ? errno : EIO;
    if (n <= 0) {
        errno = e;
        return 0;
    }
    if (!iot_t.vforked) /* a vfork child's read is its own, not the parent's (wrap_proc.c) */
        iot_own_io(0, n); /* counted by the kernel after the values it returned */
    iot_t.kio_in_cost = (uint64_t)n;
    int k = 0;
    for (long i = 0; i < n && k < IOT_KIO_N; i++) {
        if (buf[i] != ':')
            continue;
        uint64_t x = 0;
        for (i++; i < n && buf[i] == ' '; i++)
            ;
        for (; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
            x = x * 10 + (uint64_t)(buf[i] - '0');
        v[k++] = x;
    }
    if (k != IOT_KIO_N)
        errno = EIO;
    return k == IOT_KIO_N;
}

/* glibc's list of every open stream (chained by the public _chain field) and its lock. */
extern FILE *_IO_list_all;
extern void _IO_list_lock(void);
extern void _IO_list_unlock(void);

/* Output in the buffers of streams on a descriptor: at exit, recorded as the final flush's
 * stdio_flush events before the shim's last reading, written by that flush after it. */
static void stdio_pending(uint64_t out[2])
{
    out[0] = out[1] = 0;
    _IO_list_lock();
    for (FILE *f = _IO_list_all; f; f = f->_chain) {
        size_t n = f->_fileno >= 0 ? __fpending(f) : 0;
        if (n) {
            out[0] += n;
            out[1]++;
        }
    }
    _IO_list_unlock();
}

/* io_uring under the shim alone (the stracer sees io_uring itself): the kernel counts none of
 * its operations in rchar/wchar/syscr/syscw, and liburing (shared, dlopen'd or linked
 * statically) sets its rings up and submits with raw syscalls the shim never sees.  What the
 * shim can see, at its exec and exit readings, is what is still there: descriptors that are
 * anon_inode:[io_uring] in /proc/self/fd, ring regions mapped from one and liburing's library
 * in /proc/self/maps.  u: [descriptors, ring regions, liburing's lines].  Its read()s of the
 * maps are the kernel's to count: the shim's own. */
static void uring_held(uint64_t u[IOT_KIO_URING_N])
{
    static const char ring[] = "anon_inode:[io_uring]";
    char buf[8192];
    u[0] = u[1] = u[2] = 0;
    int dir = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/fd",
                           O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        long n;
        while ((n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0)
            for (long i = 0; i < n;) {
                struct {
                    uint64_t ino;
                    int64_t off;
                    unsigned short reclen;
                    unsigned char type;
                    char name[];
                } *d = (void *)(buf + i);
                char link[sizeof ring];
                i += d->reclen;
                if (syscall(SYS_readlinkat, dir, d->name, link, sizeof link) ==
                        (long)sizeof ring - 1 && !memcmp(link, ring, sizeof ring - 1))
                    u[0]++;
            }
        syscall(SYS_close, dir);
    }
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    size_t have = 0; /* a line not yet complete, at the start of buf */
    for (;;) {
        long n = syscall(SYS_read, fd, buf + have, sizeof buf - have);
        iot_own_io(0, n);
        if (n <= 0)
            break;
        char *p = buf, *end = buf + have + n, *nl;
        while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
            if (memmem(p, (size_t)(nl - p), ring, sizeof ring - 1))
                u[1]++;
            else if (memmem(p, (size_t)(nl - p), "/liburing.so", 12))
                u[2]++;
            p = nl + 1;
        }
        have = (size_t)(end - p);
        if (have == sizeof buf) /* a line longer than the buffer: not a ring's */
            have = 0;
        memmove(buf, p, have);
    }
    syscall(SYS_close, fd);
    if (!u[2] && iot_modules_liburing()) /* dlopen'd, and dlclose'd since: said all the same */
        u[2] = 1;
}

/* Whether ids euid, egid can create a log in the trace directory after an exec: capabilities
 * (CAP_DAC_OVERRIDE) survive it for root or as ambient ones only, else the directory's mode bits
 * decide (ACLs not looked at).  1 when unknown. */
static int dir_writable(uid_t euid, gid_t egid)
{
    struct stat st;
    if (euid == 0 || prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_DAC_OVERRIDE, 0, 0) == 1 ||
        IOT_SYSRAW(newfstatat, AT_FDCWD, iot_p.dir, &st, 0) != 0)
        return 1;
    if (st.st_uid == euid)
        return (st.st_mode & 0300) == 0300;
    int in = st.st_gid == egid;
    gid_t groups[64];
    int n = getgroups(64, groups);
    for (int i = 0; i < n && !in; i++)
        in = groups[i] == st.st_gid;
    return (st.st_mode & (in ? 030 : 03)) == (in ? 030 : 03);
}

/* Why the image an exec starts may have no log (KIO_NEXT, src/iotrace/format.py), as far as
 * the shim can tell before the exec: a set-user-ID or set-group-ID program
 * that runs with ids other than the real ones (the kernel's secure execution: the loader ignores
 * LD_PRELOAD), or ids that cannot write the trace directory (the uid changed: the next image
 * cannot create its log).  0: nothing known (the setid bits of a name PATH is searched for are
 * not looked at). */
static int exec_next(const char *path, int fd)
{
    struct stat st;
    long r = -1;
    if (fd >= 0 && (!path || !*path))
        r = IOT_SYSRAW(newfstatat, fd, "", &st, AT_EMPTY_PATH);
    else if (fd < 0 && path && strchr(path, '/'))
        r = IOT_SYSRAW(newfstatat, AT_FDCWD, path, &st, 0);
    uid_t euid = geteuid();
    gid_t egid = getegid();
    if (r == 0 && S_ISREG(st.st_mode)) {
        euid = st.st_mode & S_ISUID ? st.st_uid : euid;
        egid = st.st_mode & S_ISGID ? st.st_gid : egid;
        if (euid != getuid() || egid != getgid())
            return IOT_KIO_NEXT_SETID;
    }
    return dir_writable(euid, egid) ? 0 : IOT_KIO_NEXT_UNWRITABLE;
}

/* The reading (when: IOT_KIO_*), and at an exec without a stracer why the next image may have
 * no log (the program `path`, or descriptor fd >= 0). */
static void emit(int when, const char *path, int fd)
{
    /* an image the shim was loaded into while it ran: its counters hold what came before */
    if (iot_p.state != IOT_READY || iot_t.gen != iot_p.gen || iot_p.gen == iot_injected_gen ||
        IOT_SANDBOXED())
        return;
    int busy = iot_t.busy;
    iot_t.busy = 1;
    iot_late_flush(); /* a signal handler's events kept meanwhile: counted before the reading */
    int next = when == IOT_KIO_EXEC ? exec_next(path, fd) : 0;
    uint64_t v[IOT_KIO_N], o[4], pending[2], sums[6], uring[IOT_KIO_URING_N] = {0};
    if (when != IOT_KIO_START && !iot_stracing) /* before `own` is taken: its reads are in it */
        uring_held(uring);
    uint64_t t = iot_now();
    stdio_pending(pending);
    event_sums(sums);
    for (int i = 0; i < 4; i++) /* before the reading: the kernel counts its read after it */
        o[i] = __atomic_load_n(&own[i], __ATOMIC_RELAXED);
    int ok = read_counters("/proc/self/io", v);
    /* not read: said, with why (EACCES: the process changed its ids and is no longer dumpable,
     * /proc/self is root's; EMFILE: no descriptor left for it), never left to be guessed; the
     * effective uid only where it tells something (no syscall more otherwise) */
    int lost[2] = {ok ? 0 : errno, !ok || next ? (int)geteuid() : -1};
    char *p = iot_log_reserve(256);
    if (p)
        iot_log_commit(iot_pack_kio(p, when, t, ok ? v : NULL, o, pending, sums, uring, lost,
                                    next));
    iot_t.busy = busy;
}

void iot_emit_kio(int when)
{
    emit(when, NULL, -1);
}

void iot_emit_kio_exec(const char *path, int fd)
{
    int e = errno;
    emit(IOT_KIO_EXEC, path, fd);
    errno = e;
}

/* A vfork child's reading of its own counters, for the log its parent writes (wrap_proc.c). */
int iot_kio_read_self(uint64_t v[IOT_KIO_N])
{
    return read_counters("/proc/self/io", v);
}
