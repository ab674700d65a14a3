/* The log file: one per process, mapped MAP_SHARED so that every committed record is in the page
 * cache the moment it is written -- a SIGKILL loses nothing that completed, and there is no
 * flush at exit.  Layout (docs/format.md): a header map and its seal up to a chunk boundary,
 * then chunks of IOT_CHUNK_SIZE bytes.  Each chunk belongs to one thread and is a msgpack bin32
 * whose length is the committed size: the writer bumps it after each whole record, so a reader
 * never sees a torn one.  A chunk the thread leaves (full, thread end, exit) is sealed with the
 * XXH3-64 of its bytes, once: the hot path only keeps room for the seal.  The shim keeps no
 * descriptor open (apps close all fds), and takes none while the app may run other threads: a
 * descriptor of the shim's would take the number another thread's open or pipe gets untraced.
 * So the log is sized at its creation (RESERVE, sparse: no block yet) and each chunk's blocks
 * are allocated when it is taken (MADV_POPULATE_WRITE, which fails where a write would SIGBUS);
 * only a log past RESERVE reopens the file by name to grow. */
#include <fcntl.h>
#include <limits.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"
#include "sysraw.h"

/* xxHash (Debian's libxxhash-dev), used header-only: inlined and private to the shim, no
 * library to link, no symbol exported */
#define XXH_INLINE_ALL
#include <xxhash.h>

/* Each mapping window is 32 MiB of the file, 4 MiB under a finite RLIMIT_AS (`ulimit -v`, a
 * batch system's memory limit): RLIMIT_AS counts every mapped byte against the app's own (a
 * 256 MiB window made the app's 250 MiB malloc fail under `ulimit -v 300000`, or after its own
 * setrlimit).  A log is given its first window at its creation (RESERVE: the file sized to it),
 * and reopens the file by name to grow past it, mapping each next window then. */
#define SEG_SHIFT L.shift
#define SEG_SIZE (1ull << SEG_SHIFT)
#define SHIFT_WIDE 25
#define SHIFT_AS_LIMITED 22
#define MAX_SEGS 32768 /* 1 TiB of log in 32 MiB windows */
#define GROW_MIN (4ull << 20)
/* The size a log is given at its creation, with the descriptor it is made with: its first
 * window, 32 MiB (~1,000 threads' first chunks or ~1.4 M events before the log must grow).  A
 * process killed before its exit's trim leaves a file of this size, its unwritten part holes. */
#define RESERVE SEG_SIZE
#define POPULATE_WRITE 23 /* MADV_POPULATE_WRITE, Linux >= 5.14 */
#define BIN_HDR 5
#define EXT_HDR 6

static struct {
    char path[PATH_MAX];
    dev_t dev; /* the log created at path: a file found there later must be it (reopen) */
    ino_t ino;
    int making; /* the log's descriptor while iot_log_create makes it (maybe unnamed), or -1 */
    char faults[PATH_MAX]; /* $IOTRACE_FAULTS at start-up: the app may clear its environment */
    const char *unsaid;    /* a fault not yet in the fault file (no descriptor free): at exit */
    int unsaid_err;
    char *seg[MAX_SEGS];
    unsigned shift; /* SEG_SHIFT */
    uint64_t cap;   /* the file's size: bytes allocated in it, or reserved (sparse) */
    int sparse;     /* the kernel populates a chunk's blocks as it is taken (sparse reserve) */
    uint64_t safe;  /* sandboxed, sparse: the end of the room populated before the filter */
    uint64_t next;  /* offset of the next free chunk */
    pthread_mutex_t grow;
    int dead;       /* the file system refused space: tracing stopped for this process */
    int finished;   /* past exit: grow by single chunks, for the odd late destructor */
} L = {.grow = PTHREAD_MUTEX_INITIALIZER, .making = -1};

/* A fault (full disk, RLIMIT_FSIZE, the trace dir gone) stops this process's log; the app goes
 * on untouched.  The shim never writes to the app's stderr: it appends one line to the run's
 * fault file ($IOTRACE_FAULTS, created by `iotrace run`, which sums them up in one line at the
 * end).  Its size is checked against RLIMIT_FSIZE first: the append must not raise SIGXFSZ in
 * the app.  No fault file (the directory is gone): `iotrace run` sees that itself. */
static void say(const char *what, int err)
{
    const char *faults = L.faults;
    if (!*faults || IOT_SANDBOXED())
        return;
    char msg[128];
    int n = snprintf(msg, sizeof msg, "%d %d %s\n", (int)iot_p.pid, err, what);
    if (n <= 0 || n >= (int)sizeof msg)
        return;
    int e = errno;
    int fd = (int)IOT_SYSRAW(openat, AT_FDCWD, faults, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC,
                             0);
    if (fd >= 0) {
        struct stat st;
        struct rlimit rl;
        if (IOT_SYSRAW(fstat, fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
            (syscall(SYS_prlimit64, 0, RLIMIT_FSIZE, NULL, &rl) != 0 ||
             rl.rlim_cur == RLIM_INFINITY || (uint64_t)st.st_size + (uint64_t)n <= rl.rlim_cur))
            IOT_SYSRAW(write, fd, msg, (size_t)n);
        IOT_SYSRAW(close, fd);
        L.unsaid = NULL;
    } else if (errno == EMFILE || errno == ENFILE) {
        L.unsaid = what;
        L.unsaid_err = err;
    }
    errno = e;
}

/* Growing a file past RLIMIT_FSIZE would raise SIGXFSZ in the app: stay below it. */
static uint64_t fsize_limit(void)
{
    struct rlimit rl;
    if (syscall(SYS_prlimit64, 0, RLIMIT_FSIZE, NULL, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return UINT64_MAX;
    return rl.rlim_cur;
}

/* The log, opened again by name: only the file this process created.  Whoever can rename the
 * trace directory's entry (its parent writable by another user) could otherwise put a file of
 * theirs at the same path, and the shim would map it and write the job's records there. */
static int reopen(void)
{
    if (L.making >= 0) /* not named yet: the descriptor it was made with */
        return L.making;
    int fd = (int)IOT_SYSRAW(openat, AT_FDCWD, L.path, O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0);
    struct stat st;
    if (fd >= 0 && (IOT_SYSRAW(fstat, fd, &st) != 0 || st.st_dev != L.dev || st.st_ino != L.ino)) {
        IOT_SYSRAW(close, fd);
        errno = ESTALE;
        return -1;
    }
    return fd;
}

static void unopen(int fd)
{
    if (fd != L.making)
        IOT_SYSRAW(close, fd);
}

/* Make sure [0, need) is allocated in the file and mapped.  Called under L.grow. */
static int ensure(uint64_t need, int ahead)
{
    if (need <= L.cap)
        return 0;
    uint64_t want = L.cap + (L.cap / 4 > GROW_MIN ? L.cap / 4 : GROW_MIN);
    uint64_t limit = fsize_limit();
    if (!ahead || L.finished || want < need || want > limit)
        want = need;
    if (want > limit) {
        errno = EFBIG;
        return -1;
    }
    if ((want >> SEG_SHIFT) >= MAX_SEGS) {
        errno = EFBIG;
        return -1;
    }
    int fd = reopen();
    if (fd < 0)
        return -1;
    /* Allocate blocks now: a sparse file on a full disk would SIGBUS the app later.  Ahead of
     * need if there is room, else only what is needed (a nearly full disk still gets a log).
     * Sparse: new_chunk populates each chunk, or fails where a write would SIGBUS. */
    long r = L.sparse ? -1 : IOT_SYSRAW(fallocate, fd, 0, (off_t)L.cap, (off_t)(want - L.cap));
    if (L.sparse || (r < 0 && errno == EOPNOTSUPP))
        r = IOT_SYSRAW(ftruncate, fd, (off_t)want);
    if (r < 0 && want > need && !L.sparse) {
        want = need;
        r = IOT_SYSRAW(fallocate, fd, 0, (off_t)L.cap, (off_t)(want - L.cap));
        if (r < 0 && errno == EOPNOTSUPP)
            r = IOT_SYSRAW(ftruncate, fd, (off_t)want);
    }
    int ok = r == 0, err = errno;
    for (uint64_t s = 0; ok && s <= ((want - 1) >> SEG_SHIFT); s++) {
        if (L.seg[s])
            continue;
        void *m = (void *)syscall(SYS_mmap, NULL, SEG_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                                  fd, (off_t)(s << SEG_SHIFT));
        if (m == MAP_FAILED) {
            ok = 0;
            err = errno;
        } else {
            /* No read-ahead on our own faults: each chunk's pages are faulted in when it is
             * taken (new_chunk); a fault would otherwise read around it up to the device's
             * read_ahead_kb (8 MiB on the bench VM: the whole 4 MiB grown ahead, zeroed into
             * the page cache by a process that writes 64 KiB, ~2 ms of CPU each). */
            syscall(SYS_madvise, m, SEG_SIZE, MADV_RANDOM);
            L.seg[s] = m;
        }
    }
    unopen(fd);
    if (!ok) {
        errno = err;
        return -1;
    }
    L.cap = want;
    return 0;
}

static char *at(uint64_t off)
{
    return L.seg[off >> SEG_SHIFT] + (off & (SEG_SIZE - 1));
}

/* Seal [c, c + len) with the ext object that fills [c + len, c + room): the XXH3-64 of the
 * sealed bytes, then meaningless padding (docs/format.md).  The checksum goes in before the
 * object's first byte: a seal cut short by a kill reads as no seal at all. */
static void seal(char *c, size_t len, size_t room)
{
    char *s = c + len;
    uint64_t h = __builtin_bswap64(XXH3_64bits(c, len));
    uint32_t be = __builtin_bswap32((uint32_t)(room - len - EXT_HDR));
    memcpy(s + EXT_HDR, &h, 8);
    memcpy(s + 1, &be, 4);
    s[5] = IOT_SEAL_EXT_TYPE;
    __atomic_signal_fence(__ATOMIC_RELEASE);
    s[0] = (char)0xc9;
}

/* Give back the blocks of [from, to) of the log: a seal's padding, zeros no one writes again.
 * A short-lived process's log then costs the pages its header and records use, not a whole
 * header area and chunk (100,000 processes made 6.2 GB, 64 KiB each).  The file's size and
 * every byte read stay the same (a hole reads as zeros).  A full chunk has less than a page
 * of padding: no call on the hot path.  Punched through the mapping (MADV_REMOVE: the
 * kernel's fallocate punch), with no descriptor: a reopen here, at a thread's end, took one
 * of the app's descriptor numbers for as long as the punch slept (ms on a `discard` mount),
 * so another thread's open or pipe got other numbers than untraced (CPython's subprocess then
 * found its pass_fds adjacent, close_range refused the empty range between, and it listed
 * /proc/self/fd by raw getdents64: missed I/O). */
static void release(uint64_t from, uint64_t to)
{
    from = (from + 4095) & ~4095ull;
    to &= ~4095ull;
    if (to < from + 4096 || !iot_own_begin()) /* the zeros stay */
        return;
    int e = errno;
    syscall(SYS_madvise, at(from), (size_t)(to - from), MADV_REMOVE);
    iot_own_end();
    errno = e;
}

/* The offset in the file of a mapped address of it. */
static uint64_t offset_of(const char *p)
{
    for (uint64_t s = 0; s < MAX_SEGS && L.seg[s]; s++)
        if (p >= L.seg[s] && p < L.seg[s] + SEG_SIZE)
            return (s << SEG_SHIFT) + (uint64_t)(p - L.seg[s]);
    return UINT64_MAX;
}

/* Seal the thread's chunk: it holds whole records only, and no more will come. */
void iot_log_close_chunk(void)
{
    char *c = iot_t.chunk;
    if (!c)
        return;
    size_t len = BIN_HDR + iot_t.used;
    seal(c, len, IOT_CHUNK_SIZE);
    iot_t.chunk = NULL;
    if (IOT_CHUNK_SIZE - len >= 4096 + EXT_HDR + 8) { /* left before it was full */
        uint64_t off = offset_of(c);
        if (off != UINT64_MAX)
            release(off + len + EXT_HDR + 8, off + IOT_CHUNK_SIZE);
    }
}

static char *new_chunk(void)
{
    uint64_t off = __atomic_fetch_add(&L.next, IOT_CHUNK_SIZE, __ATOMIC_RELAXED);
    if (off + IOT_CHUNK_SIZE > __atomic_load_n(&L.cap, __ATOMIC_ACQUIRE)) {
        if (!iot_own_begin()) /* the room made before the filter is used up */
            return NULL;
        pthread_mutex_lock(&L.grow);
        int r = L.dead ? -1 : ensure(off + IOT_CHUNK_SIZE, 1);
        if (r < 0 && !L.dead) {
            L.dead = 1;
            say("grow", errno);
        }
        pthread_mutex_unlock(&L.grow);
        iot_own_end();
        if (r < 0)
            return NULL;
    }
    char *c = at(off);
    /* Fault the chunk's pages in with one call rather than one page fault per 4 KiB as records
     * reach them (MADV_POPULATE_WRITE, Linux >= 5.14; older kernels refuse it and the pages
     * fault as before).  Measured with bench/: about -5 ns per traced write(2).  In a sparse
     * log this allocates the chunk's blocks: a full disk fails it here, not with a SIGBUS. */
    int e = errno;
    if (iot_own_begin()) {
        long r = syscall(SYS_madvise, c, (size_t)IOT_CHUNK_SIZE, POPULATE_WRITE);
        iot_own_end();
        if (r != 0 && L.sparse) {
            L.dead = 1;
            say("grow", errno);
            errno = e;
            return NULL;
        }
    } else if (L.sparse && off + IOT_CHUNK_SIZE > L.safe) {
        errno = e;
        return NULL; /* sandboxed: past the room populated before the filter */
    }
    errno = e;
    c[0] = (char)0xc6; /* bin32, length committed below */
    memset(c + 1, 0, 4);
    iot_t.chunk = c;
    iot_t.used = 0;
    char *p = iot_pack_thread(c + BIN_HDR, iot_t.tid);
    iot_log_commit(p);
    return c;
}

char *iot_log_reserve(size_t max)
{
    if (IOT_UNLIKELY(L.dead))
        return NULL;
    if (IOT_UNLIKELY(!iot_t.chunk || BIN_HDR + iot_t.used + max > IOT_CHUNK_SIZE - IOT_SEAL_SIZE)) {
        iot_log_close_chunk();
        if (!new_chunk()) {
            if (IOT_SANDBOXED())
                iot_log_dropped(0);
            return NULL;
        }
    }
    return iot_t.chunk + BIN_HDR + iot_t.used;
}

/* A process that sandboxed itself (sandbox.c): the room made ahead for its records, and its
 * note chunk: a chunk of its own, written before the filter and never sealed, holding the KIO
 * reading "seccomp" and the SECCOMP record, whose count of dropped records (a fixed-width
 * uint64) is raised in place.  4 MiB: ~100,000 events; the file keeps that size (no trim at
 * exit: that is a syscall). */
#define SANDBOX_AHEAD (4ull << 20)
static char *note, *drop_at[2], *nnp_at;
static uint32_t note_used;
static uint64_t dropped[2];

int iot_log_sandbox(void)
{
    if (L.dead || note)
        return -1;
    pthread_mutex_lock(&L.grow);
    uint64_t from = __atomic_load_n(&L.next, __ATOMIC_RELAXED);
    uint64_t end = from + IOT_CHUNK_SIZE + SANDBOX_AHEAD;
    int r = ensure(end, 0);
    if (r == 0 && L.sparse) { /* the room's blocks, while a syscall may still be made */
        r = (int)syscall(SYS_madvise, at(from), (size_t)(end - from), POPULATE_WRITE);
        L.safe = r == 0 ? end : 0;
    }
    pthread_mutex_unlock(&L.grow);
    if (r < 0)
        return -1;
    iot_late_flush(); /* into the thread's own chunk, not the note */
    char *c = at(__atomic_fetch_add(&L.next, IOT_CHUNK_SIZE, __ATOMIC_RELAXED));
    char *chunk = iot_t.chunk;
    uint32_t used = iot_t.used;
    c[0] = (char)0xc6;
    memset(c + 1, 0, 4);
    iot_t.chunk = c; /* the records below go into the note chunk */
    iot_log_commit(iot_pack_thread(c + BIN_HDR, iot_t.tid));
    iot_emit_kio(IOT_KIO_SECCOMP); /* the kernel's counters, the last this image can read */
    char *p = iot_log_reserve(32);
    if (p && iot_t.chunk == c) {
        p = iot_pack_seccomp(p, iot_now(), drop_at, &nnp_at);
        iot_log_commit(p);
        note = c;
        note_used = iot_t.used;
    }
    iot_t.chunk = chunk;
    iot_t.used = used;
    return note ? 0 : -1;
}

/* The kernel refused the filter: the note chunk becomes an empty one (its thread only). */
void iot_log_sandbox_undo(void)
{
    char *c = note;
    if (!c)
        return;
    note = drop_at[0] = drop_at[1] = nnp_at = NULL;
    char *p = iot_pack_thread(c + BIN_HDR, 0);
    uint32_t be = __builtin_bswap32((uint32_t)(p - (c + BIN_HDR)));
    memcpy(c + 1, &be, 4);
    memset(p, 0, note_used - (size_t)(p - (c + BIN_HDR)));
}

/* A forked child of a sandboxed process: the parent's log, mapped here too, is not its own. */
void iot_log_forget(void)
{
    L.dead = 1;
    note = drop_at[0] = drop_at[1] = nnp_at = NULL;
}

void iot_log_sandbox_nnp(int nnp)
{
    if (nnp_at)
        *nnp_at = (char)(nnp != 0);
}

void iot_log_dropped(int untraced)
{
    uint64_t n = __atomic_add_fetch(&dropped[untraced], 1, __ATOMIC_RELAXED);
    char *d = drop_at[untraced];
    if (!d)
        return;
    for (;;) { /* stored again if another thread counted meanwhile: the last count stays */
        uint64_t be = __builtin_bswap64(n), now;
        memcpy(d, &be, 8);
        if ((now = __atomic_load_n(&dropped[untraced], __ATOMIC_RELAXED)) == n)
            return;
        n = now;
    }
}

void iot_log_commit(char *end)
{
    iot_t.used = (uint32_t)(end - (iot_t.chunk + BIN_HDR));
    uint32_t be = __builtin_bswap32(iot_t.used);
    /* The record's bytes are stored before its length: a kill between the two loses only it. */
    __atomic_signal_fence(__ATOMIC_RELEASE);
    memcpy(iot_t.chunk + 1, &be, 4);
}

/* The trace directory itself, not whatever its path leads to now: a directory of ours no one
 * else may write (the launcher's check, made again: the entry may have been swapped for a
 * symbolic link or another user's directory since).  AT_FDCWD when no descriptor is free (an
 * app at RLIMIT_NOFILE that exec'd): by name, as before the check (it needs a second one); -1
 * refused or gone. */
static int trace_dir(void)
{
    int dfd = (int)IOT_SYSRAW(openat, AT_FDCWD, iot_p.dir,
                              O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (dfd < 0)
        return errno == EMFILE || errno == ENFILE ? AT_FDCWD : -1;
    if (!iot_dir_ours(dfd)) {
        IOT_SYSRAW(close, dfd);
        errno = EACCES;
        return -1;
    }
    return dfd;
}

/* The name of process `pid`'s log, HOST.PID.iot, else HOST.PID.N.iot (an exec'd image keeps
 * the pid), into path (PATH_MAX); what to give with dfd (the name in it, else the path). */
static const char *log_name(char *path, int dfd, pid_t pid, int n)
{
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    for (char *h = host; *h; h++)
        if (*h == '/')
            *h = '_';
    int k = n == 0 ? snprintf(path, PATH_MAX, "%s/%s.%d.iot", iot_p.dir, host, (int)pid)
                   : snprintf(path, PATH_MAX, "%s/%s.%d.%d.iot", iot_p.dir, host, (int)pid, n);
    if (k < 0 || k >= PATH_MAX) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    return dfd == AT_FDCWD ? path : path + strlen(iot_p.dir) + 1;
}

/* A new file for a log in the trace directory (*dfd, which may become AT_FDCWD): unnamed
 * (O_TMPFILE), so that no reader ever sees a log before its header -- a process killed before
 * name_log leaves no file at all; or, where the file system has no O_TMPFILE, created under
 * its name at once (*named = 1, path filled).  The log is private (0600) unless `iotrace run
 * --share-with-group` set IOTRACE_SHARE=group (0640): a job's paths and command lines are its
 * own.  O_EXCL|O_NOFOLLOW: a name planted in the directory is skipped, never followed. */
static int new_log(int *dfd, char *path, pid_t pid, int *named)
{
    const char *share = getenv("IOTRACE_SHARE");
    mode_t mode = share && !strcmp(share, "group") ? 0640 : 0600;
    *named = 0;
    for (;;) {
        int fd = (int)IOT_SYSRAW(openat, *dfd, *dfd == AT_FDCWD ? iot_p.dir : ".",
                                 O_TMPFILE | O_RDWR | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd >= 0)
            return fd;
        if ((errno == EMFILE || errno == ENFILE) && *dfd != AT_FDCWD) {
            IOT_SYSRAW(close, *dfd); /* one descriptor free: by name */
            *dfd = AT_FDCWD;
            continue;
        }
        if (errno != EOPNOTSUPP && errno != EISDIR) /* EISDIR: a kernel before 3.11 */
            return -1;
        break;
    }
    *named = 1;
    for (int n = 0; n < 1000; n++) {
        const char *name = log_name(path, *dfd, pid, n);
        if (!name)
            return -1;
        int fd = (int)IOT_SYSRAW(openat, *dfd, name,
                                 O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

/* Name the unnamed log fd under the first free name in *dfd, into path: 0, else -1.  linkat
 * never follows or replaces a name planted there (EEXIST: the next name). */
static int name_log(int dfd, int fd, char *path, pid_t pid)
{
    char self[32];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    for (int n = 0; n < 1000; n++) {
        const char *name = log_name(path, dfd, pid, n);
        if (!name)
            return -1;
        long r = IOT_SYSRAW(linkat, fd, "", dfd, name, AT_EMPTY_PATH);
        if (r < 0 && errno == ENOENT) /* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH: by /proc */
            r = IOT_SYSRAW(linkat, AT_FDCWD, self, dfd, name, AT_SYMLINK_FOLLOW);
        if (r == 0 || errno != EEXIST)
            return (int)r;
    }
    return -1;
}

static void close_dir(int dfd)
{
    int e = errno;
    if (dfd >= 0)
        IOT_SYSRAW(close, dfd);
    errno = e;
}

/* Create this process's log in the trace directory (iot_p.dir) and write its header (new_log:
 * unnamed until then where the file system allows).  -1: no log (a fault, said in the fault
 * file); the shim goes on with its wrappers, which record nothing. */
int iot_log_create(void)
{
    const char *faults = getenv("IOTRACE_FAULTS");
    if (faults && strlen(faults) < sizeof L.faults)
        strcpy(L.faults, faults);
    for (unsigned i = 0; i < MAX_SEGS && L.seg[i]; i++) { /* mapped from the first on */
        syscall(SYS_munmap, L.seg[i], SEG_SIZE); /* after fork: the parent's, not ours */
        L.seg[i] = NULL;
    }
    struct rlimit as;
    L.shift = syscall(SYS_prlimit64, 0, RLIMIT_AS, NULL, &as) == 0 && as.rlim_cur != RLIM_INFINITY
                  ? SHIFT_AS_LIMITED
                  : SHIFT_WIDE;
    L.cap = L.next = L.safe = 0;
    L.dead = L.finished = L.sparse = 0;
    L.unsaid = NULL;
    L.making = -1;
    pthread_mutex_init(&L.grow, NULL);

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    iot_header_build(&sb);
    int named = 0, dfd = trace_dir();
    int fd = dfd == -1 ? -1 : new_log(&dfd, L.path, iot_p.pid, &named);
    struct stat st;
    if (fd >= 0 && IOT_SYSRAW(fstat, fd, &st) != 0) {
        int err = errno;
        IOT_SYSRAW(close, fd);
        if (named)
            IOT_SYSRAW(unlink, L.path);
        fd = -1;
        errno = err;
    }
    if (fd < 0) {
        int err = errno;
        close_dir(dfd);
        msgpack_sbuffer_destroy(&sb);
        L.dead = 1;
        say("create", err);
        errno = err;
        return -1;
    }
    L.dev = st.st_dev;
    L.ino = st.st_ino;
    L.making = fd;
    /* Held while the log is mapped (its mappings keep this description), taken before it has a
     * name or its room: the run's end, which may see neither this process nor its mappings (a
     * pid namespace of another run's), cuts no log a lock holds (launcher/trim.c). */
    struct flock lk = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
    IOT_SYSRAW(fcntl, fd, F_OFD_SETLK, &lk);

    /* header, then its seal up to the first chunk boundary */
    uint64_t area = ((sb.size + IOT_SEAL_SIZE + IOT_CHUNK_SIZE - 1) / IOT_CHUNK_SIZE) *
                    IOT_CHUNK_SIZE;
    /* Only the header's area for now: written at once, before the slow 4 MiB allocation (at
     * the first chunk), so a process killed meanwhile (a tracer's test child, an OOM kill)
     * leaves a log that says whose it was, not zeros.  (Through the mapping, not write(2):
     * the kernel's I/O counters of the process must not count the shim's log.) */
    int r = area >> SEG_SHIFT ? -1 : ensure(area, 0);
    if (r == 0) {
        memcpy(at(0), sb.data, sb.size);
        seal(at(0), sb.size, area);
        L.next = area;
        L.sparse = syscall(SYS_madvise, at(0), (size_t)area, POPULATE_WRITE) == 0;
        release(sb.size + EXT_HDR + 8, area);
        if (!named)
            r = name_log(dfd, fd, L.path, iot_p.pid);
    }
    if (r == 0 && L.sparse) { /* the room for the chunks, now, through this descriptor */
        uint64_t limit = fsize_limit() / IOT_CHUNK_SIZE * IOT_CHUNK_SIZE;
        ensure(RESERVE < limit ? RESERVE : limit, 0);
    }
    int err = errno;
    L.making = -1;
    IOT_SYSRAW(close, fd);
    close_dir(dfd);
    msgpack_sbuffer_destroy(&sb);
    if (r < 0) {
        L.dead = 1;
        if (named)
            IOT_SYSRAW(unlink, L.path); /* an empty file is no log: leave none */
        say("create", err);
        return -1;
    }
    return 0;
}

/* At exit or exec: give back the space allocated past the last chunk.  Threads still running
 * keep their chunks (all below L.next); a later chunk grows the file again, by one chunk. */
void iot_log_finish(void)
{
    iot_log_close_chunk(); /* the exiting thread's records are sealed */
    if (IOT_SANDBOXED()) /* a trim is a syscall: the room made ahead stays, zeros */
        return;
    pthread_mutex_lock(&L.grow);
    L.finished = 1;
    if (L.unsaid)
        say(L.unsaid, L.unsaid_err);
    if (!L.dead && L.cap > L.next) {
        int fd = reopen();
        if (fd >= 0) {
            if (IOT_SYSRAW(ftruncate, fd, (off_t)L.next) == 0)
                __atomic_store_n(&L.cap, L.next, __ATOMIC_RELEASE);
            IOT_SYSRAW(close, fd);
        }
    }
    pthread_mutex_unlock(&L.grow);
}

/* A whole log for a child that ran on this process's memory until its exec (wrap_spawn.c): the
 * header, then one chunk of `recs`.  Written with pwrite (the holes read as the seals' padding),
 * counted as the shim's own output, then named (new_log); never past RLIMIT_FSIZE. */
void iot_log_write_child(pid_t pid, uint64_t t, const char *recs, size_t n)
{
    if (L.dead || IOT_SANDBOXED() || BIN_HDR + 8 + n + IOT_SEAL_SIZE > IOT_CHUNK_SIZE)
        return;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    iot_header_build_child(&sb, pid, t);
    uint64_t area = ((sb.size + IOT_SEAL_SIZE + IOT_CHUNK_SIZE - 1) / IOT_CHUNK_SIZE) *
                    IOT_CHUNK_SIZE;
    char *head = malloc(sb.size + IOT_SEAL_SIZE), *chunk = malloc(IOT_CHUNK_SIZE);
    char path[PATH_MAX];
    int fd = -1, dfd = -1, named = 0, e = errno;
    if (head && chunk && area + IOT_CHUNK_SIZE <= fsize_limit() && (dfd = trace_dir()) != -1 &&
        (fd = new_log(&dfd, path, pid, &named)) >= 0) {
        memcpy(head, sb.data, sb.size);
        seal(head, sb.size, area);
        chunk[0] = (char)0xc6;
        char *p = iot_pack_thread(chunk + BIN_HDR, pid);
        memcpy(p, recs, n);
        size_t len = (size_t)(p + n - chunk);
        uint32_t be = __builtin_bswap32((uint32_t)(len - BIN_HDR));
        memcpy(chunk + 1, &be, 4);
        seal(chunk, len, IOT_CHUNK_SIZE);
        long w1 = IOT_SYSRAW(pwrite64, fd, head, sb.size + IOT_SEAL_SIZE, 0);
        long w2 = IOT_SYSRAW(pwrite64, fd, chunk, len + IOT_SEAL_SIZE, (off_t)area);
        iot_own_io(1, w1);
        iot_own_io(1, w2);
        if (w1 < 0 || w2 < 0 || IOT_SYSRAW(ftruncate, fd, (off_t)(area + IOT_CHUNK_SIZE)) < 0) {
            say("child", errno);
            if (named)
                IOT_SYSRAW(unlink, path);
        } else if (!named && name_log(dfd, fd, path, pid) < 0) {
            say("child", errno);
        }
        IOT_SYSRAW(close, fd);
    }
    close_dir(dfd);
    free(head);
    free(chunk);
    msgpack_sbuffer_destroy(&sb);
    errno = e;
}
