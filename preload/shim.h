/* Internal API of the iotrace shim.  Every wrapper is written with the shapes at the end of
 * this file ("the wrapper shapes"): one prologue, one of four call shapes, its own fields, one
 * epilogue.  Hand-written wrappers are listed there, each with why. */
#ifndef IOT_SHIM_H
#define IOT_SHIM_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#include "calls.h"

#define IOT_API __attribute__((visibility("default")))
#define IOT_HIDDEN __attribute__((visibility("hidden")))
#define IOT_LIKELY(x) __builtin_expect(!!(x), 1)
#define IOT_UNLIKELY(x) __builtin_expect(!!(x), 0)

#define IOT_MAX_STACK 64
#define IOT_NO_OFFSET INT64_MIN

/* Which optional fields of an event are present (absent ones are written as nil). */
enum {
    IOT_HAS_FD = 1 << 0,
    IOT_HAS_PATH = 1 << 1,
    IOT_HAS_REQ = 1 << 2,
    IOT_HAS_OFF = 1 << 3,
    IOT_HAS_FLAGS = 1 << 4,
    IOT_HAS_MODE = 1 << 5,
    IOT_HAS_END2 = 1 << 6,  /* fd2, path2, offset2 written (a call with two ends) */
    IOT_HAS_OFF2 = 1 << 7,
};

/* One event under construction, on the wrapper's stack. */
typedef struct iot_ev {
    uint16_t fn;
    uint16_t has;
    uint8_t naux;       /* 0: aux nil, 1: aux = aux[0], 2: aux = [aux[0], aux[1]] */
    uint8_t quiet;      /* filtered out by -e trace= (filter.c): no time, stack or record */
    int data_iov;       /* -s N: data is an iovec array of this many (-1: a plain buffer) */
    const void *data;   /* -s N: the call's buffer (still the app's: packed in iot_leave) */
    int64_t data_n;     /* its bytes moved (0: none kept) */
    int err;            /* errno of the failing call, else 0 */
    int saved_errno;    /* errno as the real call left it, restored by iot_leave */
    int fd;
    uint32_t path;      /* interned string id */
    uint32_t stack;     /* interned stack id, 0 = none */
    uint64_t t0, t1;
    int64_t req, ret, off, flags, mode;
    int64_t aux[2];
    int fd2;            /* the end read of a call with two ends (calls.py EVENT_ENDS) */
    uint32_t path2;
    int64_t off2;
} iot_ev;

#define IOT_SPAWNS_HELPERS (1 << 16)
/* busy's value between vfork and the thread's next call (wrap_proc.c): the shim records nothing,
 * but the stracer takes the syscalls made meanwhile for the app's (a vfork child's own) */
#define IOT_BUSY_VFORK 2

#define IOT_LATE_MAX 4096 /* a signal handler's events kept while the shim was busy (record.c) */

/* A message call (error(), err()...: wrap_msg.c) in progress: its event, and its caller's
 * return address, which the stub keeps here while libc's function runs */
typedef struct iot_msg_frame {
    iot_ev ev;
    void *ret;
} iot_msg_frame;
/* one at a time: one nested in it (a signal handler's) goes untraced, its I/O in the outer's
 * measure (static TLS is small where the shim is dlopen'd: iotrace attach --shim) */
#define IOT_MSG_MAX 1

/* Per-thread state.  initial-exec TLS: no allocation, no lock, one %fs-relative load. */
typedef struct iot_thread {
    int busy;           /* inside the shim's own work: wrappers pass straight through */
    int in_wrapper;     /* a wrapper is running in this thread (read by the stracer);
                         * + IOT_SPAWNS_HELPERS while a call that may start libc helper
                         * threads runs (aio: the stracer counts their I/O as covered) */
    int kio_in_ok;      /* a call of mode "in" is measured (kio.c); read by the stracer at
                         * tls_off + 8: a restart inside it is in the measure already */
    int unwinding;      /* inside libunwind: its pipe2/read/close go to stack.c; 2, 3: a
                         * signal handler's call that interrupted the shim's work is being
                         * recorded, inside an unwind (2) or elsewhere (3: record.c) */
    pid_t tid;
    unsigned gen;       /* process generation this state belongs to (changes on fork) */
    char *chunk;        /* current chunk in the mapped log, NULL if none */
    uint32_t used;      /* bytes of records in the chunk after its 5-byte bin header */
    void *stack_memo;   /* cfi.c: this thread's memos of stack walks */
    uint32_t stack_cache_hash[64];
    uint32_t stack_cache_id[64];
    uint64_t kio[6];    /* this thread's events counted the kernel's way (kio.c) */
    uint64_t kio_in[4]; /* the thread's counters when a call of mode "in" began (kio.c) */
    uint64_t kio_in_cost; /* bytes of the last reading's read */
    uint64_t kio_in_ev[6];  /* kio when it began: the events recorded inside it are its own */
    uint64_t kio_in_own[4]; /* own when it began */
    uint64_t own[4];    /* the shim's own read/write syscalls made on this thread (kio.c) */
    int kio_in_depth;   /* "in" calls open on this thread: the outermost one measures */
    int kio_slot;       /* its place in kio.c's table of live threads + 1; 0: not yet in it,
                         * -1: not in it (exited, or the table was full) */
    /* clone(CLONE_VM) children that are not threads share this TLS (wrap_proc.c): while any
     * lives, gen is 0 (every call takes the slow path) and this thread and they run untraced */
    uint64_t vm_wait;   /* their watch slots; bit 63: one that cannot be watched (for good) */
    unsigned vm_gen;    /* gen to put back when they are gone */
    int vforked;        /* vfork was called: busy until this thread is seen again in the
                         * parent (a vfork child borrows the parent's thread and memory) */
    /* a signal handler's reads and writes made while the shim was busy outside an unwind:
     * written at the shim's next safe point (record.c): a ring of IOT_LATE_MAX mapped at its
     * first use; late_ht: head (low half) and tail (high half), count on, modulo the size */
    iot_ev *late;
    uint64_t late_ht;
    /* clock.c: this thread's anchor, a clock_gettime reading and the TSC beside it, the scale
     * (ns per tick << 32) and the ticks it serves for (0: none); clk_gen odd while written */
    uint64_t clk_ns, clk_tsc, clk_mult, clk_span;
    uint64_t clk_floor; /* the latest time given to this thread: none earlier is given */
    unsigned clk_gen;
    iot_msg_frame msg[IOT_MSG_MAX]; /* wrap_msg.c: the message calls in progress */
    int msg_depth;
    int own_depth; /* inside iot_own_begin/end (sandbox.c), nested by a signal handler */
    /* the thread's alternate signal stack as its sigaltstack set it (wrap_sigstack.c), 0 if
     * none: a call made on it with less room left than a walk needs gets no stack (stack.c) */
    uintptr_t alt_lo, alt_hi;
    /* stack.c may_load: refused to load libunwind under this blocked mask */
    int unw_refused;
    int pend_held; /* pending.c: inside the table of outstanding requests */
    int in_phdr;   /* stack.c: inside the app's dl_iterate_phdr (the loader's lock held) */
    uint64_t unw_refused_mask;
    int kio_fd; /* kio.c: this thread's counters descriptor + 1, kept for its life (0: none
                 * yet, -1: none to be had) */
    unsigned kio_fd_gen; /* kio.c's kept_gen when it was opened: closed since if it differs */
} iot_thread;

extern __thread iot_thread iot_t __attribute__((tls_model("initial-exec")));

/* Process-wide state. */
typedef struct iot_proc {
    volatile int state;         /* IOT_UNINIT, IOT_READY, IOT_OFF */
    unsigned gen;
    pid_t pid;
    int stack_depth;
    uintptr_t self_lo, self_hi; /* the shim's own text, skipped in stacks */
    char self_path[4096];       /* the shim's file, as LD_PRELOAD named it */
    char dir[4096];             /* the trace directory, fixed at start-up (init.c trace_dir) */
    uint64_t quiet[(IOT_FN_COUNT + 63) / 64]; /* functions -e trace= leaves out (filter.c) */
    int npaths;                 /* --path globs (filter.c): events on other paths are dropped */
    int data_max;               /* -s N: bytes of each read/write buffer kept (0: none) */
    int sandboxed;              /* the app installed a seccomp filter (sandbox.c): from then on
                                 * the shim makes no syscall of its own in this process;
                                 * IOT_SANDBOX_NNP: with the shim alone, it set no_new_privs */
    int own_syscalls;           /* threads inside iot_own_begin/end (sandbox.c) */
} iot_proc;

enum { IOT_UNINIT = 0, IOT_INITIALIZING, IOT_READY, IOT_OFF };
enum { IOT_SANDBOX_NNP = 2 }; /* iot_p.sandboxed: no install seen, one may come unseen */
extern iot_proc iot_p IOT_HIDDEN;

/* 1: the shim must make no syscall of its own (sandbox.c): the app's seccomp filter may kill
 * the process for one, or fail it with an errno, where the app untraced makes none. */
#define IOT_SANDBOXED() IOT_UNLIKELY(iot_p.sandboxed)
/* Around the syscalls of the shim's own that any thread may make at any time (a thread's
 * set-up, a new chunk, the log's growth): 1 go on, then iot_own_end; 0 sandboxed, make none.
 * An install waits for the threads inside (sandbox.c): with SECCOMP_FILTER_FLAG_TSYNC the
 * filter is theirs too as it returns. */
int iot_own_begin(void) IOT_HIDDEN;
void iot_own_end(void) IOT_HIDDEN;

/* ---- init.c ---- */
void iot_init(void) IOT_HIDDEN;
/* Trim the log: at exit, _exit and exec. */
void iot_finish(void) IOT_HIDDEN;
void *iot_dlsym(const char *name) IOT_HIDDEN;
void *iot_dlsym_any(const char *name) IOT_HIDDEN; /* NULL if no object defines it */
/* A forked child's start: its own log (pthread_atfork's child handler; clone without CLONE_VM) */
void iot_fork_child(void) IOT_HIDDEN;
/* wrap_proc.c: 1 while a CLONE_VM child shares this thread's TLS (then the call is untraced) */
int iot_vm_shared(void) IOT_HIDDEN;
pid_t iot_gettid(void) IOT_HIDDEN;
/* The environment the shim needs in every descendant (LD_PRELOAD, IOTRACE_*), as captured at
 * start-up: exec wrappers put back what an app dropped. */
char **iot_fix_envp(char *const envp[], char **scratch, size_t nscratch, char *buf,
                    size_t nbuf) IOT_HIDDEN;
size_t iot_env_extra(void) IOT_HIDDEN;
/* jobdir.c: the job's trace directory in the central directory `central`, created or joined */
int iot_jobdir(const char *central, char *out, size_t cap) IOT_HIDDEN;
int iot_dir_ours(int dfd) IOT_HIDDEN;

/* ---- inject.c: the shim dlopen'd into a running process binds the calls to its wrappers ---- */
int iot_inject_bind(void) IOT_HIDDEN;
/* iot_p.gen of the image it was loaded into (0: preloaded): no KIO readings there (kio.c) */
extern unsigned iot_injected_gen IOT_HIDDEN;

/* ---- wrap_mpi.c ---- */
/* 1: the MPI in this process is the family the MPI wrappers were compiled for */
int iot_mpi_is_ours(void) IOT_HIDDEN;

/* ---- wrap_proc.c ---- */
/* After vfork: in the parent, the thread is traced again (0); in the child, nothing is (1), or
 * (2: the shim alone) its calls are kept apart for a log of its own, written by the parent. */
int iot_vfork_settle(void) IOT_HIDDEN;
void iot_vfork_keep(const iot_ev *ev) IOT_HIDDEN; /* the child's event (record.c iot_leave) */
int iot_vfork_exit(int status) IOT_HIDDEN; /* settles; 1 in a vfork child (its exit kept) */
/* fdtable.c in the vfork child: descriptors lo..hi now name path (0: closed); 1: fd is one the
 * child changed, its path in *path */
void iot_vfork_fd(int lo, int hi, uint32_t path) IOT_HIDDEN;
int iot_vfork_fd_path(int fd, uint32_t *path) IOT_HIDDEN;

/* ---- wrap_spawn.c: posix_spawn's file actions, as the child's events (shim alone) ---- */
typedef struct { void *acts; long last; } iot_spawn;
int iot_spawn_begin(const void *fa, iot_spawn *sp) IOT_HIDDEN; /* a posix_spawn_file_actions_t */
void iot_spawn_end(iot_spawn *sp, int r, const pid_t *pid, uint64_t t) IOT_HIDDEN;
/* popen's child: glibc's own file actions, foreseen before the call and written after it */
int iot_popen_begin(const char *mode, iot_spawn *sp) IOT_HIDDEN;
void iot_popen_end(iot_spawn *sp, int fd, uint64_t t) IOT_HIDDEN;
void iot_popen_track(int fd, int open) IOT_HIDDEN; /* a popen stream's descriptor, pclosed */
/* A log for a vfork child (wrap_proc.c): its n events (the parent's string ids), its _exit. */
typedef struct { /* a reading (when 0: none) and the child's own reads before it */
    int when;
    uint64_t t, v[IOT_KIO_N], own[IOT_KIO_OWN_N];
} iot_kid_kio;
void iot_kid_log(pid_t pid, uint64_t t, const iot_ev *ev, int n, int exited, int status,
                 const iot_kid_kio *kio) IOT_HIDDEN;

/* ---- record.c: wrapper prologue/epilogue and event packing ---- */
int iot_enter_slow(iot_ev *ev, unsigned fn, const void *caller) IOT_HIDDEN;
void iot_leave(iot_ev *ev) IOT_HIDDEN;
void iot_late_flush(void) IOT_HIDDEN;
void iot_late_free(void) IOT_HIDDEN;
void iot_emit_exit(int status) IOT_HIDDEN;
void iot_ev_opened(iot_ev *ev, int fd, int flags) IOT_HIDDEN;
void iot_thread_reset(void) IOT_HIDDEN;

void iot_begin(iot_ev *ev, unsigned fn) IOT_HIDDEN;
/* One more event, written as it is (the shim busy: inside a wrapper, after iot_done). */
void iot_emit_event(const iot_ev *ev) IOT_HIDDEN;
/* 1: the event will be written at iot_leave (not filtered out): a record about it may be. */
int iot_ev_recorded(iot_ev *ev) IOT_HIDDEN;

/* ---- clock.c: event times, CLOCK_MONOTONIC (interpolated from the TSC where that is exact) ---- */
extern int iot_clk_on IOT_HIDDEN;
void iot_clock_init(void) IOT_HIDDEN;
/* CLOCK_MONOTONIC of the host (a time namespace's offset taken off), read now */
uint64_t iot_mono(void) IOT_HIDDEN;
void iot_clock_fork_child(void) IOT_HIDDEN;
uint64_t iot_clock_slow(uint64_t tsc) IOT_HIDDEN;
/* From the thread's anchor, unless it is older than its span, being written (clk_gen odd: a
 * signal handler interrupted its writing) or was rewritten while read (by a handler). */
static inline uint64_t iot_now(void)
{
#if defined(__x86_64__)
    unsigned g = iot_t.clk_gen;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    uint64_t tsc = __builtin_ia32_rdtsc();
    uint64_t d = tsc - iot_t.clk_tsc;
    uint64_t t = iot_t.clk_ns + ((d * iot_t.clk_mult) >> 32);
    int fresh = d < iot_t.clk_span;
    uint64_t floor = iot_t.clk_floor;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (IOT_LIKELY(fresh && iot_t.clk_gen == g && !(g & 1) && iot_clk_on))
        return t > floor ? t : floor;
    return iot_clock_slow(tsc);
#else
    return iot_clock_slow(0);
#endif
}

/* 1: trace this call (the start time is taken); 0: call the real function untraced.  Inlined
 * into the wrapper: the return address is its caller's (a signal handler's, record.c). */
static inline __attribute__((always_inline)) int iot_enter(iot_ev *ev, unsigned fn)
{
    if (IOT_UNLIKELY(iot_p.state != IOT_READY || iot_t.busy || iot_t.gen != iot_p.gen))
        return iot_enter_slow(ev, fn, __builtin_return_address(0));
    iot_begin(ev, fn);
    return 1;
}

static inline void iot_done(iot_ev *ev, int64_t ret, int failed)
{
    int e = errno;
    ev->t1 = IOT_LIKELY(!ev->quiet) ? iot_now() : 0;
    ev->saved_errno = e;
    ev->ret = ret;
    ev->err = failed ? e : 0;
    iot_t.in_wrapper--;
    iot_t.busy = 1; /* from here to iot_leave the shim works for itself */
}
static inline void iot_ev_fd(iot_ev *ev, int fd) { ev->fd = fd; ev->has |= IOT_HAS_FD; }
static inline void iot_ev_req(iot_ev *ev, int64_t n) { ev->req = n; ev->has |= IOT_HAS_REQ; }
static inline void iot_ev_flags(iot_ev *ev, int64_t f) { ev->flags = f; ev->has |= IOT_HAS_FLAGS; }
static inline void iot_ev_mode(iot_ev *ev, int64_t m) { ev->mode = m; ev->has |= IOT_HAS_MODE; }
static inline void iot_ev_off(iot_ev *ev, int64_t off)
{
    if (off != IOT_NO_OFFSET) { ev->off = off; ev->has |= IOT_HAS_OFF; }
}
/* -s N: the first bytes the call moved through buf (iovcnt -1) or an iovec array of iovcnt;
 * n the bytes moved.  Read at iot_leave, while the buffer is still the call's. */
static inline void iot_ev_data(iot_ev *ev, const void *buf, int iovcnt, int64_t n)
{
    if (IOT_UNLIKELY(iot_p.data_max) && n > 0) {
        ev->data = buf;
        ev->data_iov = iovcnt;
        ev->data_n = n;
    }
}
static inline void iot_ev_aux(iot_ev *ev, int64_t a) { ev->aux[0] = a; ev->naux = 1; }
static inline void iot_ev_aux2(iot_ev *ev, int64_t a, int64_t b)
{
    ev->aux[0] = a; ev->aux[1] = b; ev->naux = 2;
}
/* The end read of a call with two ends: its descriptor, path and offset (IOT_NO_OFFSET: none). */
void iot_ev_end2(iot_ev *ev, int fd, int64_t off) IOT_HIDDEN;
/* The path of an fd event: the one that fd was opened with. */
void iot_ev_fdpath(iot_ev *ev, int fd) IOT_HIDDEN;
/* A path argument, made absolute against dirfd (AT_FDCWD for the cwd). */
void iot_ev_path_at(iot_ev *ev, int dirfd, const char *path) IOT_HIDDEN;
static inline void iot_ev_path(iot_ev *ev, const char *path) { iot_ev_path_at(ev, -100, path); }
uint32_t iot_path_id_at(int dirfd, const char *path) IOT_HIDDEN;

/* ---- filter.c: what `iotrace run -e trace=SET --path GLOB` records ---- */
void iot_filter_init(void) IOT_HIDDEN;
void iot_filter_fork_child(void) IOT_HIDDEN;
/* 0: the event's paths match no --path glob (one fnmatch per path per process, then cached) */
int iot_path_kept(const iot_ev *ev) IOT_HIDDEN;
static inline int iot_fn_quiet(unsigned fn)
{
    return (int)(iot_p.quiet[fn >> 6] >> (fn & 63) & 1);
}

/* ---- header.c: the self-describing first object of every log ---- */
struct msgpack_sbuffer;
void iot_header_build(struct msgpack_sbuffer *sb) IOT_HIDDEN;
/* The same for a child of this process, forked, started at mono time t (writer.c) */
void iot_header_build_child(struct msgpack_sbuffer *sb, pid_t pid, uint64_t t) IOT_HIDDEN;

/* ---- writer.c: the mapped log file ---- */
int iot_log_create(void) IOT_HIDDEN;
/* A whole log for another process (a child that ran on this one's memory before its exec):
 * whole records (strings before the events naming them), its start at mono time t. */
void iot_log_write_child(pid_t pid, uint64_t t, const char *recs, size_t n) IOT_HIDDEN;
/* Space for a record of at most `max` bytes in this thread's chunk; NULL if tracing stopped. */
char *iot_log_reserve(size_t max) IOT_HIDDEN;
void iot_log_commit(char *end) IOT_HIDDEN;
void iot_log_close_chunk(void) IOT_HIDDEN;
void iot_log_finish(void) IOT_HIDDEN;
/* sandbox.c: before the app's seccomp filter, room ahead and the note chunk (the reading taken
 * now, the count of records dropped later); 0: ready.  Undone if the filter was refused. */
int iot_log_sandbox(void) IOT_HIDDEN;
void iot_log_sandbox_undo(void) IOT_HIDDEN;
void iot_log_sandbox_nnp(int nnp) IOT_HIDDEN; /* the SECCOMP record's nnp, set in place */
/* A record lost to the sandbox (untraced 0: no room left for it), or a call the shim let
 * through without an event (untraced 1: a thread it cannot set up): counted in the note chunk,
 * in place */
void iot_log_dropped(int untraced) IOT_HIDDEN;
void iot_log_forget(void) IOT_HIDDEN; /* a sandboxed process's forked child: no log */

/* ---- pack.c: msgpack encoding of records into reserved space ---- */
char *iot_pack_event(char *p, const iot_ev *ev) IOT_HIDDEN;
char *iot_pack_string(char *p, uint32_t id, const char *s, size_t n) IOT_HIDDEN;
char *iot_pack_stack(char *p, uint32_t id, const uintptr_t *pcs, int n) IOT_HIDDEN;
char *iot_pack_thread(char *p, pid_t tid) IOT_HIDDEN;
char *iot_pack_module(char *p, uintptr_t base, uintptr_t lo, uintptr_t hi, const char *path,
                      const void *build_id, size_t id_len) IOT_HIDDEN;
char *iot_pack_exit(char *p, uint64_t t, int status) IOT_HIDDEN;
char *iot_pack_seccomp(char *p, uint64_t t, char *count[2], char **nnp_at) IOT_HIDDEN;
char *iot_pack_data(char *p, pid_t tid, const iot_ev *ev, size_t n) IOT_HIDDEN;
char *iot_pack_shape(char *p, pid_t tid, const iot_ev *ev, int64_t size, int rank,
                     const uint64_t *dims, int chunk_rank, const uint64_t *chunk) IOT_HIDDEN;
char *iot_pack_selection(char *p, pid_t tid, const iot_ev *ev, int64_t bytes, int64_t chunks,
                         int64_t partial) IOT_HIDDEN;
char *iot_pack_kio(char *p, int when, uint64_t t, const uint64_t v[IOT_KIO_N],
                   const uint64_t own[IOT_KIO_OWN_N], const uint64_t pending[2],
                   const uint64_t sums[IOT_KIO_SUMS_N],
                   const uint64_t uring[IOT_KIO_URING_N], const int lost[2],
                   int next) IOT_HIDDEN;

/* ---- kio.c: the kernel's I/O counters of the process (KIO records) ---- */
void iot_emit_kio(int when) IOT_HIDDEN;
/* The reading just before an exec of `path` (or of descriptor fd >= 0) */
void iot_emit_kio_exec(const char *path, int fd) IOT_HIDDEN;
int iot_kio_read_self(uint64_t v[IOT_KIO_N]) IOT_HIDDEN; /* /proc/self/io; 0: unreadable */
/* One read (is_write 0) or write syscall of the shim's own, returning ret. */
void iot_own_io(int is_write, long ret) IOT_HIDDEN;
/* the image's argument and environment strings (header.c: a fork child's argv from memory) */
void iot_header_args(int argc, char **argv, char **envp) IOT_HIDDEN;
/* Bytes of a syscall of the shim's own already counted by iot_own_io. */
void iot_own_bytes(int is_write, long n) IOT_HIDDEN;
void iot_kio_fork_child(void) IOT_HIDDEN;
void iot_kio_link(uint64_t addr[3]) IOT_HIDDEN;
int iot_modules_liburing(void) IOT_HIDDEN; /* modules.c: liburing was loaded in this image */ /* addresses of own, gone, live (iot_link) */
void iot_kio_thread_exit(void) IOT_HIDDEN;
/* Around the app's setrlimit/prlimit of RLIMIT_NOFILE (lock 1, then 0): kio.c raises the soft
 * limit for a moment to keep a thread's counters descriptor above the app's numbers. */
void iot_rlimit_lock(int lock) IOT_HIDDEN;
/* Around the making of a child (fork, clone, vfork, posix_spawn, popen): no raise of that
 * limit is on meanwhile, for the child to inherit (kio.c) */
void iot_kio_spawn_hold(void) IOT_HIDDEN;
void iot_kio_spawn_release(void) IOT_HIDDEN;
/* The app is about to list its descriptors (opendir of /proc/self/fd, /dev/fd...): the threads'
 * kept counters descriptors are closed first (kio.c). */
void iot_kio_fds_listed(const char *path) IOT_HIDDEN;
/* ... or closed its descriptors lo..hi (close_range, closefrom; lo > hi: none, it is to list
 * them): the threads' kept descriptors are no longer theirs, those outside lo..hi closed */
void iot_kio_fds_closed(unsigned lo, unsigned hi) IOT_HIDDEN;
/* 1: fd is a thread's kept counters descriptor (the app's close of it fails with EBADF, as
 * untraced); none is below iot_kio_kept_min */
int iot_kio_kept(int fd) IOT_HIDDEN;
/* The app's dup2/dup3 onto fd (it raised its limit): a thread's kept descriptor there is
 * closed first, all forgotten, so that no thread reads, closes or refuses the app's file. */
void iot_kio_fd_reused(int fd) IOT_HIDDEN;
extern int iot_kio_kept_min IOT_HIDDEN;
void iot_kio_count_slow(const iot_ev *ev, unsigned mode) IOT_HIDDEN;
void iot_kio_in_begin(unsigned mode) IOT_HIDDEN;
void iot_kio_in_end(uint64_t sums[6]) IOT_HIDDEN;
/* The reads and writes a wrapper of mode "in-shim" made itself under a stracer, with raw
 * syscalls no one measures (wrap_shm.c): rchar, wchar, syscr, syscw */
void iot_kio_inner(const uint64_t d[4]) IOT_HIDDEN;
/* wrap_msg.c: at exit, the message calls that exit inside libc (err, error(status != 0)) */
void iot_msg_exit(void) IOT_HIDDEN;
/* Whether the kernel counts a finished call in syscr/syscw: not a failure its checks make before
 * counting (iot_kio_counted: the rule generated from calls.py KERNEL_IO_UNCOUNTED). */
static inline uint64_t iot_kio_ev_counted(const iot_ev *ev)
{
    if (IOT_LIKELY(!ev->err))
        return 1;
    return (uint64_t)iot_kio_counted(iot_kernel_io_checks[ev->fn], ev->err,
                                     ev->has & IOT_HAS_OFF ? ev->off : 0,
                                     ev->has & IOT_HAS_REQ ? (uint64_t)ev->req : 0);
}

/* A finished event counted the kernel's way (calls.py KERNEL_IO_FUNCS, its IOT_KIO_MODE_*: the
 * "in" modes are kio.c's) into sums[rchar, wchar, syscr, syscw, stdio read, stdio write]. */
static inline void iot_kio_add(uint64_t *sums, const iot_ev *ev, unsigned mode)
{
    uint64_t moved = ev->ret > 0 ? (uint64_t)ev->ret : 0;
    uint64_t counted = mode == IOT_KIO_MODE_RWM ? moved > 0 : iot_kio_ev_counted(ev);
    if (mode == IOT_KIO_MODE_R || mode == IOT_KIO_MODE_RW || mode == IOT_KIO_MODE_RWM) {
        sums[0] += moved;
        sums[2] += counted;
    }
    if (mode == IOT_KIO_MODE_W || mode == IOT_KIO_MODE_RW || mode == IOT_KIO_MODE_RWM) {
        sums[1] += moved;
        sums[3] += counted;
    }
    if (mode == IOT_KIO_MODE_SR || mode == IOT_KIO_MODE_SW) { /* stdio's refill or flush: one
                                   * read or write syscall (its aux: the reads or writes it stands
                                   * for) */
        int w = mode == IOT_KIO_MODE_SW;
        sums[4 + w] += moved;
        sums[2 + w] += ev->naux == 1 ? (uint64_t)ev->aux[0] : counted;
    }
}

/* Hot: every event's epilogue. */
static inline void iot_kio_count(const iot_ev *ev)
{
    unsigned m = iot_kernel_io[ev->fn];
    if (!m)
        return;
    if (IOT_UNLIKELY(ev->naux == 2 && ev->aux[0] == IOT_FN_io_submit))
        return; /* a Linux AIO completion: the kernel counts none of its bytes in these */
    if (IOT_UNLIKELY(iot_kio_mode_in(m) || iot_t.kio_slot <= 0))
        iot_kio_count_slow(ev, m);
    else
        iot_kio_add(iot_t.kio, ev, m);
}

/* ---- intern.c: strings and stacks, written once per process, referred to by id ---- */
uint32_t iot_intern_string(const char *s, size_t n) IOT_HIDDEN;
uint32_t iot_intern_stack(const uintptr_t *pcs, int n) IOT_HIDDEN;
void iot_intern_reset(void) IOT_HIDDEN;
void iot_intern_fork_child(void) IOT_HIDDEN;
const char *iot_string(uint32_t id) IOT_HIDDEN;

/* ---- stack.c ---- */
uint32_t iot_capture_stack(void) IOT_HIDDEN;
/* The room a stack walk and the rest of the shim's work after it need on the stack (measured,
 * tests/progs/small_stack.c alt: a handler's open/write/close used 6,120 B of the alternate
 * stack untraced, 7,016 traced without a walk, 15,208 with one) */
#define IOT_WALK_ROOM (12 * 1024)
/* ---- cfi.c: the stack walk's fast path ---- */
/* The stack above the shim's frames into out (at most depth addresses): their number; -1 where
 * libunwind must walk; IOT_CFI_MISS when an address's rule is not known yet and may not be
 * derived now (deriving takes the loader's lock: between iot_cfi_derive_begin, which may say
 * no, and iot_cfi_derive_end, stack.c counts it as an unwind, for fork).  One call site: the
 * walk reads the return address of its own call, which a memo matches. */
#define IOT_CFI_MISS (-2)
/* *id: the stack's interned id when a memo of the same walk has it (then out is not filled;
 * id NULL: always fill out); else 0, and iot_cfi_memo_id(id) gives the memo the id */
int iot_cfi_backtrace(uintptr_t *out, int depth, uint32_t *id) IOT_HIDDEN;
int iot_cfi_derive_begin(void) IOT_HIDDEN;
extern unsigned long iot_cfi_unknown IOT_HIDDEN; /* walks that had to read the tables */
void iot_cfi_derive_end(void) IOT_HIDDEN;
void iot_cfi_memo_id(uint32_t id) IOT_HIDDEN;
void iot_cfi_thread_exit(void) IOT_HIDDEN; /* the thread's memos unmapped */
void iot_cfi_flush(void) IOT_HIDDEN; /* code was unloaded (dlclose) */
void iot_stack_init(void) IOT_HIDDEN;
void iot_stack_fork_prepare(void) IOT_HIDDEN;
void iot_stack_fork_parent(void) IOT_HIDDEN;
/* A fork's (or a clone's without CLONE_VM) parent before and after it (init.c) */
void iot_fork_prepare(void) IOT_HIDDEN;
void iot_fork_parent(void) IOT_HIDDEN;
void iot_stack_fork_child(void) IOT_HIDDEN;
/* libunwind's pipe for its address checks, which never exists (see stack.c): its calls made
 * from libunwind's code while it unwinds come here */
int iot_from_unwind(const void *caller) IOT_HIDDEN;
int iot_unwind_pipe2(int fds[2], int flags) IOT_HIDDEN;
int iot_unwind_close(int fd) IOT_HIDDEN;
ssize_t iot_unwind_read(int fd, void *buf, size_t n) IOT_HIDDEN;
long iot_unwind_write(int fd, const void *addr, size_t n) IOT_HIDDEN; /* its syscall(SYS_write) */

/* ---- modules.c ---- */
void iot_modules_emit(void) IOT_HIDDEN;
void iot_modules_reset(void) IOT_HIDDEN;

/* ---- fdtable.c: what the shim knows of each descriptor ---- */
int iot_fd_opened(int fd, uint32_t path, int oflags, int64_t *dev, int64_t *ino) IOT_HIDDEN;
void iot_fd_closed(int fd) IOT_HIDDEN;
void iot_fd_close_range(unsigned lo, unsigned hi) IOT_HIDDEN;
void iot_fd_fork_prepare(void) IOT_HIDDEN;
void iot_fd_fork_commit(void) IOT_HIDDEN;
void iot_fd_pos_stale(int fd) IOT_HIDDEN;
void iot_fd_dup(int oldfd, int newfd) IOT_HIDDEN;
uint32_t iot_fd_path(int fd) IOT_HIDDEN;
int64_t iot_fd_pos(int fd) IOT_HIDDEN;
int64_t iot_fd_advance(int fd, int64_t before, int64_t done) IOT_HIDDEN;
void iot_fd_seek(int fd, int64_t pos) IOT_HIDDEN;
void iot_fd_set_append(int fd, int on) IOT_HIDDEN;
/* stdio keeps a position of its own: what the FILE's reader/writer sees */
int64_t iot_stdio_pos(int fd) IOT_HIDDEN;
int64_t iot_stdio_advance(int fd, int64_t before, int64_t done) IOT_HIDDEN;
void iot_stdio_seek(int fd, int64_t pos) IOT_HIDDEN;
/* Bytes in the write buffer of the stream on fd that are counted already (wrap_stdio.c). */
void iot_stdio_set_seen(int fd, int64_t n) IOT_HIDDEN;
int64_t iot_stdio_seen(int fd) IOT_HIDDEN;
/* At exit, before stdio's final flush: the bytes it will flush that no call counted. */
void iot_stdio_exit(void) IOT_HIDDEN;

/* ---- stracer_link.c: what the stracer reads and writes in this process (docs/stracer.md) ---- */
/* The layout (and the hello's IOT_HELLO_MAGIC, IOT_LINK_FETCH) is format.py's LINK: the stracer
 * reads and writes these fields by the offsets generated from it (iot_format.h). */
#define IOT_LINK_DECL(type, name) type name;
typedef struct iot_link {
    IOT_LINK_FIELDS(IOT_LINK_DECL)
} iot_link_t;
_Static_assert(sizeof(iot_link_t) == IOT_LINK_SIZE, "iot_link_t is format.py's LINK");
extern iot_link_t iot_link IOT_HIDDEN;
void iot_stracer_hello(int state) IOT_HIDDEN;
/* sandbox.c: where the stracer sends a thread that installs a seccomp filter by a raw syscall */
void iot_sandbox_entry(long nr, long a0, long a1, long a2, long a3, long a4) IOT_HIDDEN
    __attribute__((noreturn));
void iot_stracer_exiting(void) IOT_HIDDEN;
void iot_link_drain(void) IOT_HIDDEN;
/* 1: a stracer traces this process (its filter knows the cookie, sysraw.h); tested instead of
 * the cookie itself so that the cookie is never in a register outside sysraw.h's asm. */
extern int iot_stracing IOT_HIDDEN;
static inline void iot_fdgen_bump(void)
{
    if (iot_stracing)
        __atomic_add_fetch(&iot_link.fdgen, 1, __ATOMIC_RELAXED);
}
void iot_link_fork_child(void) IOT_HIDDEN;
/* One load on every fd lookup: did the stracer post descriptor changes we have not applied? */
static inline void iot_link_check(void)
{
    if (IOT_UNLIKELY(iot_link.posted != iot_link.seen))
        iot_link_drain();
}
/* fdtable.c: apply one checked message (op: 1 open, 2 dup a->b, 3 close a, 4 close a..b) */
void iot_fd_remote(int op, int a, int b, const char *path, size_t n) IOT_HIDDEN;

/* ---- pending.c: asynchronous requests, from their posting call to their completing one ---- */
enum { IOT_PEND_MPI, IOT_PEND_AIO, IOT_PEND_LIBAIO, IOT_PEND_KINDS };
typedef struct {
    uintptr_t key;            /* the request's handle (MPI_Request, struct aiocb *, struct iocb *) */
    uint8_t kind;             /* IOT_PEND_* */
    uint16_t post_fn, done_fn;
    unsigned gen;             /* iot_p.gen at posting: a forked child's are not its own */
    int fd;
    uint32_t path;
    int64_t asked, off;       /* bytes asked (-1: unknown), offset */
    uint64_t t_post;          /* t_start of the posting event */
} iot_pend;
void iot_pend_add(const iot_pend *e) IOT_HIDDEN;
int iot_pend_take(int kind, uintptr_t key, iot_pend *out) IOT_HIDDEN; /* out may be NULL */
int iot_pend_peek(int kind, uintptr_t key, iot_pend *out) IOT_HIDDEN;
int iot_pend_none(int kind) IOT_HIDDEN;
void iot_pend_fork_child(void) IOT_HIDDEN;
/* A completion event's fd, path, bytes asked, offset and aux = [posting function, its t_start]. */
void iot_pend_fill(iot_ev *ev, const iot_pend *e) IOT_HIDDEN;

/* ---- stdio_arena.c: stdio buffers the stracer's filter lets through ---- */
#include <stdio.h>
void iot_arena_init(void) IOT_HIDDEN;
void iot_arena_fork_child(void) IOT_HIDDEN;
void iot_arena_adopt(FILE *f) IOT_HIDDEN;   /* a new stream: a buffer in the window */
void iot_arena_release(char *buf) IOT_HIDDEN; /* a stream's old buffer (no-op if not ours) */
void iot_arena_limit(void) IOT_HIDDEN;          /* a finite RLIMIT_AS set: the rest goes back */
void iot_arena_yield(const void *addr, size_t len) IOT_HIDDEN; /* the app maps there: idem */
int iot_arena_owns(const char *p) IOT_HIDDEN;   /* a buffer the window gave: a stream we opened */
#define IOT_GLIBC_NOCLOSE 32 /* glibc's _IO_FLAGS2_NOCLOSE (libio/libioP.h) */
int iot_arena_noclose(void) IOT_HIDDEN;         /* fclose may leave the close to the wrapper */
void iot_arena_disown(FILE *f) IOT_HIDDEN; /* a stream going wide, no I/O yet: buffer back */
/* The eight entry points of a printf family P (printf: wrap_stdio.c, wprintf: wrap_wstdio.c),
 * each one call of its DO(fn, stream, flag, format, va_list); flag >= 0: the fortified entry.
 * fP, __fP_chk, vfP, __vfP_chk on a stream; P, __P_chk, vP, __vP_chk on stdout. */
#define IOT_PRINT_VARIADIC(DO, FN, f, flag)                                                  \
    va_list ap;                                                                              \
    va_start(ap, fmt);                                                                       \
    int r = DO(FN, f, flag, fmt, ap);                                                        \
    va_end(ap);                                                                              \
    return r
#define IOT_PRINT_FAMILY(P, CH, DO)                                                          \
    IOT_API int f##P(FILE *f, const CH *fmt, ...)                                            \
    {                                                                                        \
        IOT_PRINT_VARIADIC(DO, IOT_FN_f##P, f, -1);                                          \
    }                                                                                        \
    IOT_API int __f##P##_chk(FILE *f, int flag, const CH *fmt, ...)                          \
    {                                                                                        \
        IOT_PRINT_VARIADIC(DO, IOT_FN_f##P, f, flag);                                        \
    }                                                                                        \
    IOT_API int vf##P(FILE *f, const CH *fmt, va_list ap)                                    \
    {                                                                                        \
        return DO(IOT_FN_f##P, f, -1, fmt, ap);                                              \
    }                                                                                        \
    IOT_API int __vf##P##_chk(FILE *f, int flag, const CH *fmt, va_list ap)                  \
    {                                                                                        \
        return DO(IOT_FN_f##P, f, flag, fmt, ap);                                            \
    }                                                                                        \
    IOT_API int P(const CH *fmt, ...)                                                        \
    {                                                                                        \
        IOT_PRINT_VARIADIC(DO, IOT_FN_##P, stdout, -1);                                      \
    }                                                                                        \
    IOT_API int __##P##_chk(int flag, const CH *fmt, ...)                                    \
    {                                                                                        \
        IOT_PRINT_VARIADIC(DO, IOT_FN_##P, stdout, flag);                                    \
    }                                                                                        \
    IOT_API int v##P(const CH *fmt, va_list ap)                                              \
    {                                                                                        \
        return DO(IOT_FN_##P, stdout, -1, fmt, ap);                                          \
    }                                                                                        \
    IOT_API int __v##P##_chk(int flag, const CH *fmt, va_list ap)                            \
    {                                                                                        \
        return DO(IOT_FN_##P, stdout, flag, fmt, ap);                                        \
    }
/* wrap_stdio.c: a stream's bytes waiting to be written; a flush of `n` of them ending at stream
 * position `end` that the call of `ev` made (its fd and path the stream's): pclose's */
int64_t iot_stdio_pending(FILE *f) IOT_HIDDEN;
void iot_stdio_flushed(const iot_ev *ev, int64_t n, int64_t end) IOT_HIDDEN;
/* One stdio_refill or stdio_flush `fn` of `n` bytes at `off` (errno `err`) standing for `calls`
 * syscalls, beside the call's event `ev` (fd and path set): wrap_wstdio.c's measured ones */
void iot_stdio_under(const iot_ev *ev, unsigned fn, int64_t n, int err, int64_t off,
                     int64_t calls) IOT_HIDDEN;
/* wrap_wstdio.c: a wide stream's characters waiting to be written, as bytes; its flush by
 * fflush/fclose/freopen measured (begin: 1 if begun, then end) */
int64_t iot_wstdio_pending(FILE *f) IOT_HIDDEN;
int iot_wstdio_flush_begin(FILE *f) IOT_HIDDEN;
void iot_wstdio_flush_end(const iot_ev *ev, int ok, int64_t end) IOT_HIDDEN;

/* ---- paths.c ---- */
/* Writes the absolute form of `path` (relative to dirfd) into out; returns its length. */
size_t iot_abspath(int dirfd, const char *path, char *out, size_t cap) IOT_HIDDEN;
void iot_cwd_changed(void) IOT_HIDDEN;
void iot_cwd_fork_child(void) IOT_HIDDEN;

/* Resolve the next definition of a libc function, once, on first use. */
#define IOT_REAL_AS(var, sym, proto)                                          \
    static __typeof__(proto) *var;                                            \
    if (IOT_UNLIKELY(!var))                                                   \
        var = (__typeof__(proto) *)iot_dlsym(sym)
#define IOT_REAL(name) IOT_REAL_AS(real_##name, #name, name)

/* Another exported name for the same wrapper (open64 for open, ...). */
#define IOT_ALIAS(name, other) \
    extern __typeof__(name) other __attribute__((alias(#name), visibility("default")))

/* The path of an *at call.  AT_EMPTY_PATH with "" (or NULL) is dirfd itself: its fd and path;
 * a plain "" (fails with ENOENT) is kept as "", not made the directory; NULL is no path. */
#define IOT_AT_FDCWD (-100)        /* <fcntl.h>'s, checked in record.c */
#define IOT_AT_EMPTY_PATH 0x1000
static inline void iot_ev_at(iot_ev *ev, int dirfd, const char *path, int atflags)
{
    if (ev->err == EFAULT) /* maybe a bad path pointer: not read (iot_ev_path_at) */
        return;
    if (path && *path) {
        iot_ev_path_at(ev, dirfd, path);
    } else if (!(atflags & IOT_AT_EMPTY_PATH)) {
        if (path)
            ev->path = iot_intern_string("", 0);
    } else if (dirfd == IOT_AT_FDCWD) {
        iot_ev_path(ev, ".");
    } else {
        iot_ev_fd(ev, dirfd);
        iot_ev_fdpath(ev, dirfd);
    }
}

/* ---- the wrapper shapes ----
 * Every wrapper is the same few lines (as Darshan's are the same macros):
 *
 *     IOT_API int ftruncate(int fd, off_t len)
 *     {
 *         IOT_REAL(ftruncate);
 *         IOT_ENTER(IOT_FN_ftruncate, real_ftruncate(fd, len));  // else: that call, untraced
 *         IOT_FD_CALL(int, fd, IOT_FAST(IOT_SYSRAW(ftruncate, fd, len), real_ftruncate(fd, len)));
 *         iot_ev_off(&ev, len);                                   // the wrapper's own fields
 *         IOT_LEAVE(r);                        // pack the record, restore errno, return r
 *     }
 *
 * IOT_ENTER declares the event `ev` (the shim busy, disabled or not ready: the untraced call is
 * returned); what must be read before the call (a file position, a path about to go) is read
 * between it and the call.  The call shapes declare `r`, its result, end the call's time and
 * record errno if it failed:
 *   IOT_FD_CALL(T, fd, call)       a call on a descriptor: failed if r < 0; fd and its path
 *   IOT_PATH_CALL(T, dirfd, path, atflags, call)
 *                                  a call naming a path: failed if r < 0; the path (iot_ev_at)
 *   IOT_CALL(T, call, ret, failed) any other: the event's ret and whether it failed, given
 *   IOT_LAYER_CALL(T, call, ret, failed, code)
 *                                  a call of a library above libc (MPI-IO, HDF5, PnetCDF), begun
 *                                  by IOT_ENTER_BY(iot_enter_layer, ...): the libc calls it
 *                                  makes are recorded too; code its own error code
 * A family of wrappers (the read/write calls, the stat names, fread's four entry points) is
 * one macro made of these, used once per name.
 *
 * Hand-written (what they do is not one call and its event; tests/test_wrappers.py holds every
 * other wrapper to the shapes by this list):
 *   fclose         under a stracer it closes the stream's descriptor itself; the flush inside
 *   freopen        one stream, two files: the old one's flush and close, the new one's open
 *   fflush fflush_unlocked
 *                  fflush(NULL) is one event per stream, under glibc's list lock
 *   execve execv execvpe execvp fexecve execl execlp execle
 *                  an exec that works never returns: recorded before the call, and again if it
 *                  fails; nothing in a vfork child
 *   exit _exit _Exit
 *                  never return: recorded before the call (_exit also ends the log)
 *   lio_listio     one event per element of the list, all of one call
 *   io_submit      one event per iocb, made before the call (a completion can come first)
 *   io_getevents io_pgetevents
 *                  no event of their own: one per completion, with the call's times
 *   MPI_Wait MPI_Test MPI_Waitany MPI_Testany MPI_Waitall MPI_Testall MPI_Waitsome MPI_Testsome
 *                  untraced unless a traced request is among theirs; one event per completion
 */
#define IOT_ENTER_BY(enter, FN, untraced)                                \
    iot_ev ev;                                                          \
    if (!enter(&ev, (FN)))                                              \
        return untraced
#define IOT_ENTER(FN, untraced) IOT_ENTER_BY(iot_enter, FN, untraced)

#define IOT_CALL(T, call, ret, failed)                                  \
    T r = (call);                                                       \
    (void)r; /* a void function's: (its call, 0) */                     \
    iot_done(&ev, (ret), (failed))

#define IOT_FD_CALL(T, fd, call)                                        \
    IOT_CALL(T, call, r, r < 0);                                        \
    iot_ev_fd(&ev, (fd));                                               \
    iot_ev_fdpath(&ev, (fd))

#define IOT_PATH_CALL(T, dirfd, path, atflags, call)                    \
    IOT_CALL(T, call, r, r < 0);                                        \
    iot_ev_at(&ev, (dirfd), (path), (atflags))

/* The libraries above libc: while the real call runs the thread is not "in a wrapper" (the
 * stracer's marker), so the libc calls it makes are events of their own and the syscalls that
 * bypass libc still count as missed; the event's span contains theirs, which ties them.  A
 * failed call's ret is -1 and its errno `code`, the library's own (read after the call). */
static inline int iot_enter_layer(iot_ev *ev, unsigned fn)
{
    if (!iot_enter(ev, fn))
        return 0;
    iot_t.in_wrapper--;
    return 1;
}
#define IOT_LAYER_CALL(T, call, ret, failed, code)                      \
    T r = (call);                                                       \
    iot_t.in_wrapper++;                                                 \
    iot_done(&ev, (failed) ? -1 : (ret), 0);                            \
    if (failed)                                                         \
        ev.err = (code)

/* The real call, with this wrapper's in_wrapper count taken off for its duration: the I/O libc
 * does inside it is then the stracer's libc-internal events, recorded with their files and bytes
 * (kio.c measures it around the call only without a stracer: kernel I/O mode "in-shim"). */
#define IOT_LIBC_OWN(call)                                              \
    (__extension__({                                                    \
        iot_t.in_wrapper--;                                             \
        __auto_type r_ = (call);                                        \
        iot_t.in_wrapper++;                                             \
        r_;                                                             \
    }))

#define IOT_LEAVE(r)                                                    \
    iot_leave(&ev);                                                     \
    return r

#endif
