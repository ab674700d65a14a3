/* The wrapper prologue and epilogue: time, stack, and the event record. */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

__thread iot_thread iot_t __attribute__((tls_model("initial-exec")));

#define EVENT_MAX 200 /* 17 fields of at most 9 bytes, and a 2-element aux */

/* ev->stack until --path has decided (recorded()): the stack of an event left out is never
 * taken.  Taken from iot_leave instead of iot_begin, it is the same: the shim's own frames are
 * dropped, the first one kept is the wrapper's caller's. */
#define STACK_LATER UINT32_MAX

static inline __attribute__((always_inline)) uint32_t stack_now(void)
{
    int e = errno; /* libunwind's first unwind leaves EAGAIN: a call that succeeds must not */
    int busy = iot_t.busy;
    iot_t.busy = 1;
    uint32_t s = iot_capture_stack();
    iot_t.busy = busy;
    errno = e;
    return s;
}

void iot_begin(iot_ev *ev, unsigned fn)
{
    ev->fn = (uint16_t)fn;
    ev->has = 0;
    ev->naux = 0;
    ev->path = 0;
    ev->stack = 0;
    ev->quiet = (uint8_t)iot_fn_quiet(fn);
    ev->data_n = 0;
    if (iot_p.stack_depth && IOT_LIKELY(!ev->quiet) && !iot_t.unwinding && /* see below */
        !iot_t.vforked) /* no unwind in a vfork child */
        ev->stack = IOT_UNLIKELY(iot_p.npaths) ? STACK_LATER : stack_now();
    iot_t.in_wrapper++;
    /* its inner I/O: measured around the call */
    if (IOT_UNLIKELY(iot_kio_mode_in(iot_kernel_io[fn])) && !iot_t.vforked)
        iot_kio_in_begin(iot_kernel_io[fn]);
    ev->t0 = IOT_LIKELY(!ev->quiet) ? iot_now() : 0;
}

/* Not ready, busy, a new thread, or a forked child's first call.  Busy: the shim's own work,
 * whose calls pass through; but a signal handler that interrupts it makes the app's calls.
 * Its reads and writes (the calls the kernel counts; their wrappers end in iot_leave) are
 * events of their own, without a stack (libunwind is not re-entered): inside an unwind the
 * interrupted work holds no lock and no log space, so the event is written then (2); anywhere
 * else it is kept (3) and written at the shim's next safe point, its path unknown if the shim
 * had not seen its descriptor.  Calls made from libunwind's code or the shim's own pass
 * through, and so does a call in a handler that interrupted such an event. */
int iot_enter_slow(iot_ev *ev, unsigned fn, const void *caller)
{
    if (iot_t.busy) {
        int v = iot_t.vforked ? iot_vfork_settle() : 1;
        if (v == 2) { /* in a vfork child: its own calls (not the shim's work in it) are kept */
            if (iot_t.busy != IOT_BUSY_VFORK)
                return 0;
            iot_begin(ev, fn);
            return 1;
        }
    }
    if (iot_t.busy) {
        uintptr_t c = (uintptr_t)caller;
        if (iot_t.unwinding > 1 || !iot_kio_mode_syscall(iot_kernel_io[fn]) ||
            iot_from_unwind(caller) || (c >= iot_p.self_lo && c < iot_p.self_hi) ||
            iot_p.state != IOT_READY || iot_t.gen != iot_p.gen || iot_t.busy != 1)
            return 0;
        iot_t.unwinding = iot_t.unwinding ? 2 : 3;
        iot_begin(ev, fn);
        return 1;
    }
    if (IOT_UNLIKELY(iot_t.vm_wait) && iot_vm_shared())
        return 0;
    /* a call from the program's preinit array runs before libc's own start (its environ is
     * not set yet: no trace directory, no stracer, the shim would stay off for good); it passes
     * through untraced, and the shim starts at its constructor */
    if (iot_p.state == IOT_UNINIT && environ)
        iot_init();
    if (iot_p.state != IOT_READY)
        return 0;
    if (iot_t.gen != iot_p.gen) {
        if (!iot_own_begin()) { /* a thread started under the app's seccomp filter: its id is
                                 * a syscall, so is its first chunk's page population: the call
                                 * goes through untraced (the stracer sees it) */
            iot_log_dropped(1);
            return 0;
        }
        iot_thread_reset();
        iot_own_end();
    }
    iot_begin(ev, fn);
    return 1;
}

/* 1: the event passes -e trace= and --path (filter.c) */
static inline int kept(const iot_ev *ev)
{
    return !iot_fn_quiet(ev->fn) && (IOT_LIKELY(!iot_p.npaths) || iot_path_kept(ev));
}

/* 1: the event is recorded; its stack is taken now if --path had to decide first.  An event
 * made from a call filtered out (a completion, a stdio refill beside it) that is itself
 * recorded has no time of its own: it gets now. */
static inline int recorded(iot_ev *ev)
{
    if (!kept(ev))
        return 0;
    if (IOT_UNLIKELY(ev->quiet)) {
        ev->t0 = ev->t1 = iot_now();
        ev->quiet = 0;
    }
    if (IOT_UNLIKELY(ev->stack == STACK_LATER))
        ev->stack = stack_now();
    return 1;
}

int iot_ev_recorded(iot_ev *ev)
{
    return recorded(ev);
}

static void write_event(iot_ev *ev);

/* A signal handler's event made while the shim was busy outside an unwind, for the next safe
 * point.  Under a stracer a signal stops the process at every delivery (~100 us here), so a
 * frequent timer finds the next signal pending when its handler returns: the interrupted work
 * may not go on for a long run of handlers (seen: 5 in one, of a 100 us timer).  So the ring
 * is large, mapped (anonymous: no stop, async-signal-safe) at its first use; it touches only the
 * pages a run of handlers fills.  Beyond it the event is lost, and so is its count: the trace
 * then explains less than the kernel counted (completeness), never more. */
static void late_keep(const iot_ev *ev)
{
    if (!iot_t.late) {
        if (!iot_own_begin()) { /* mapping it is a syscall (sandbox.c) */
            iot_log_dropped(0);
            return;
        }
        void *m = (void *)syscall(SYS_mmap, NULL, IOT_LATE_MAX * sizeof *ev,
                                  PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        iot_own_end();
        if (m == MAP_FAILED)
            return;
        iot_t.late = m;
    }
    uint64_t ht = iot_t.late_ht; /* the interrupted code may be taking from it: it retries */
    uint32_t head = (uint32_t)ht, tail = (uint32_t)(ht >> 32);
    if (tail - head >= IOT_LATE_MAX)
        return;
    iot_ev *slot = &iot_t.late[tail % IOT_LATE_MAX];
    *slot = *ev;
    slot->data_n = 0; /* its buffer will be gone */
    __atomic_store_n(&iot_t.late_ht, ((uint64_t)(tail + 1) << 32) | head, __ATOMIC_RELEASE);
}

void iot_leave(iot_ev *ev)
{
    if (IOT_UNLIKELY(iot_t.vforked)) { /* a vfork child's: kept for its own log (wrap_proc.c) */
        if (recorded(ev))
            iot_vfork_keep(ev);
        iot_t.busy = IOT_BUSY_VFORK;
        errno = ev->saved_errno;
        return;
    }
    if (IOT_UNLIKELY(iot_t.unwinding == 3)) { /* kept for the shim's next safe point */
        late_keep(ev);
        iot_t.unwinding = 0;
        errno = ev->saved_errno;
        return;
    }
    write_event(ev);
    if (IOT_UNLIKELY(iot_t.unwinding == 2)) { /* a signal handler's call inside an unwind */
        iot_t.unwinding = 1;
    } else {
        if (IOT_UNLIKELY(iot_t.late_ht))
            iot_late_flush();
        iot_t.busy = 0;
    }
    errno = ev->saved_errno;
}

/* The signal handlers' events kept while the shim was busy (busy: a handler interrupting this
 * adds to the ring, which the loop takes too).  Only a handler adds (tail), only the thread's
 * own shim work takes (head), each one word's compare-and-swap, so a signal between a read
 * and the swap makes it retry; the ring starts again at 0 each time it is empty. */
void iot_late_flush(void)
{
    for (;;) {
        uint64_t ht = __atomic_load_n(&iot_t.late_ht, __ATOMIC_ACQUIRE);
        uint32_t head = (uint32_t)ht, tail = (uint32_t)(ht >> 32);
        if (head == tail) {
            if (__atomic_compare_exchange_n(&iot_t.late_ht, &ht, 0, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE))
                return;
            continue;
        }
        iot_ev e = iot_t.late[head % IOT_LATE_MAX]; /* a handler adds at tail, never here */
        if (__atomic_compare_exchange_n(&iot_t.late_ht, &ht, ((uint64_t)tail << 32) | (head + 1),
                                        0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            write_event(&e);
    }
}

/* The thread's ring, at its exit (a handler after this maps another, which stays). */
void iot_late_free(void)
{
    iot_ev *r = iot_t.late;
    iot_t.late = NULL;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (r)
        syscall(SYS_munmap, r, IOT_LATE_MAX * sizeof *r);
}

static void write_event(iot_ev *ev)
{
    /* a call filtered out still counts in the KIO sums: the shim saw it (completeness) */
    if (recorded(ev)) {
        size_t n = IOT_UNLIKELY(ev->data_n) ? (size_t)ev->data_n : 0;
        n = n < (size_t)iot_p.data_max ? n : (size_t)iot_p.data_max;
        char *p = iot_log_reserve(EVENT_MAX + (n ? 16 + n : 0));
        if (p) { /* the event and its data: one commit, in one chunk */
            p = iot_pack_event(p, ev);
            iot_log_commit(n ? iot_pack_data(p, iot_t.tid, ev, n) : p);
        }
    }
    iot_kio_count(ev);
}

void iot_emit_event(const iot_ev *ev)
{
    iot_ev e = *ev;
    if (!recorded(&e))
        return;
    if (IOT_UNLIKELY(iot_t.vforked)) {
        iot_vfork_keep(&e);
        return;
    }
    char *p = iot_log_reserve(EVENT_MAX);
    if (p)
        iot_log_commit(iot_pack_event(p, &e));
}

void iot_ev_path_at(iot_ev *ev, int dirfd, const char *path)
{
    if (ev->err == EFAULT) /* maybe a bad path pointer: the kernel could not read it, nor can we */
        return;
    ev->path = iot_path_id_at(dirfd, path);
}

_Static_assert(IOT_AT_EMPTY_PATH == AT_EMPTY_PATH && IOT_AT_FDCWD == AT_FDCWD, "shim.h's copies");

/* A call that made descriptor `fd` (open, fopen, opendir, mkstemp...): the event's fd, the fd
 * registered with the event's path, aux = [dev, inode].  An event left out needs no (dev,
 * inode): no fstat (the descriptor's kind is learnt at its first positioned call, if any). */
void iot_ev_opened(iot_ev *ev, int fd, int flags)
{
    if (fd < 0)
        return;
    iot_ev_fd(ev, fd);
    if (!kept(ev)) {
        iot_fd_opened(fd, ev->path, flags, NULL, NULL);
        return;
    }
    int64_t dev, ino;
    if (iot_fd_opened(fd, ev->path, flags, &dev, &ino) == 0)
        iot_ev_aux2(ev, dev, ino);
}

void iot_emit_exit(int status)
{
    if (iot_p.state != IOT_READY || iot_t.gen != iot_p.gen)
        return;
    int busy = iot_t.busy;
    iot_t.busy = 1;
    char *p = iot_log_reserve(32);
    if (p)
        iot_log_commit(iot_pack_exit(p, iot_now(), status));
    iot_t.busy = busy;
}
