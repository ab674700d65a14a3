/* What the shim knows of each descriptor: the path it was opened with, and the file position
 * the next read or write will use (tracked, so an offset costs no lseek).
 *
 * Positions and O_APPEND belong to the open file description, which dup/dup2/fcntl(F_DUPFD)
 * share between descriptors: an fd points to a shared `ofd` slot, reference-counted.  An fd the
 * shim never saw open (inherited, or opened behind its back) is learnt once from /proc/self/fd
 * and lseek. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"
#include "sysraw.h"

#define MAX_FDS (1 << 16)
enum { SEEK_UNKNOWN = 0, SEEKABLE = 1, UNSEEKABLE = 2 };

static uint8_t kind_of(const struct stat *st)
{
    return S_ISREG(st->st_mode) || S_ISBLK(st->st_mode) ? SEEKABLE : UNSEEKABLE;
}

typedef struct {
    uint32_t path;
    uint32_t refs;
    uint8_t seek, append;
    uint8_t stale; /* stdio (or another process) moved the kernel offset: relearn it */
    int64_t pos;  /* descriptor position */
    int64_t seen; /* bytes in its stream's write buffer already counted (wrap_stdio.c) */
    int64_t spos; /* stdio stream position */
    uint32_t next_free;
} ofd;

static uint32_t *fds;   /* fd -> ofd index + 1; 0 = unknown */
static ofd *pool;       /* index 0 unused */
static uint32_t pool_top = 1, free_head;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *zeroed(size_t n)
{
    void *m = (void *)syscall(SYS_mmap, NULL, n, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

static int ready(void)
{
    if (IOT_LIKELY(fds))
        return 1;
    pthread_mutex_lock(&lock);
    if (!fds) {
        pool = zeroed((MAX_FDS + 1) * sizeof(ofd));
        uint32_t *f = pool ? zeroed(MAX_FDS * sizeof(uint32_t)) : NULL;
        __atomic_store_n(&fds, f, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&lock);
    return fds != NULL;
}

static ofd *of(int fd)
{
    iot_link_check(); /* the stracer's news of raw opens and closes come first */
    /* a vfork child's descriptors are its own (wrap_proc.c keeps its changes apart): the
     * parent's descriptions, positions and stdio counts are not its to read or move */
    if (fd < 0 || fd >= MAX_FDS || !ready() || IOT_UNLIKELY(iot_t.vforked))
        return NULL;
    uint32_t i = __atomic_load_n(&fds[fd], __ATOMIC_ACQUIRE);
    return i ? &pool[i] : NULL;
}

/* Point fd at slot i (0: unknown), dropping its previous description.  Under `lock`. */
static void bind(int fd, uint32_t i)
{
    iot_fdgen_bump(); /* the stracer's cached path of this fd is stale (stracer_link.c) */
    uint32_t old = fds[fd];
    if (i)
        pool[i].refs++;
    __atomic_store_n(&fds[fd], i, __ATOMIC_RELEASE);
    if (old && --pool[old].refs == 0) {
        pool[old].next_free = free_head;
        free_head = old;
    }
}

static uint32_t new_slot(void)
{
    uint32_t i = free_head;
    if (i)
        free_head = pool[i].next_free;
    else if (pool_top <= MAX_FDS)
        i = pool_top++;
    if (i)
        pool[i] = (ofd){0};
    return i;
}

/* A new description for fd; returns it (NULL if the table is full). */
static ofd *fresh(int fd, uint32_t path, uint8_t seek, uint8_t append, int64_t pos)
{
    if (fd < 0 || fd >= MAX_FDS || !ready())
        return NULL;
    pthread_mutex_lock(&lock);
    uint32_t i = new_slot();
    if (i) {
        pool[i].path = path;
        pool[i].seek = seek;
        pool[i].append = append;
        pool[i].pos = pool[i].spos = pos;
        pool[i].seen = 0;
    }
    bind(fd, i);
    pthread_mutex_unlock(&lock);
    return i ? &pool[i] : NULL;
}

static ofd *known(int fd)
{
    ofd *o = of(fd);
    /* 3: the interrupted shim may hold the locks (record.c); a vfork child binds nothing */
    if (o || fd < 0 || fd >= MAX_FDS || iot_t.unwinding == 3 || iot_t.vforked ||
        IOT_SANDBOXED())
        return o;
    int busy = iot_t.busy;
    iot_t.busy = 1;
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    long n = IOT_SYSRAW(readlinkat, AT_FDCWD, link, target, sizeof target - 1);
    if (n > 0) {
        long p = IOT_SYSRAW(lseek, fd, 0, SEEK_CUR);
        long fl = IOT_SYSRAW(fcntl, fd, F_GETFL, 0);
        o = fresh(fd, iot_intern_string(target, (size_t)n), p < 0 ? UNSEEKABLE : SEEKABLE,
                  fl >= 0 && (fl & O_APPEND), p < 0 ? 0 : p);
    }
    iot_t.busy = busy;
    return o;
}

/* After "self/", "thread-self/" or "PID/" at s, or NULL */
static const char *after_proc_id(const char *s)
{
    if (strncmp(s, "self/", 5) == 0)
        return s + 5;
    if (strncmp(s, "thread-self/", 12) == 0)
        return s + 12;
    const char *d = s;
    while (*s >= '0' && *s <= '9')
        s++;
    return s > d && *s == '/' ? s + 1 : NULL;
}

/* 1: path names a descriptor, not a file: /dev/stdin, /dev/stdout, /dev/stderr, /dev/fd/N,
 * /proc/self/fd/N, /proc/thread-self/fd/N, /proc/PID/fd/N, /proc/PID/task/TID/fd/N */
static int fd_link(const char *s)
{
    if (strncmp(s, "/dev/", 5) == 0)
        return strncmp(s + 5, "fd/", 3) == 0 || strcmp(s + 5, "stdin") == 0 ||
               strcmp(s + 5, "stdout") == 0 || strcmp(s + 5, "stderr") == 0;
    if (strncmp(s, "/proc/", 6) != 0 || !(s = after_proc_id(s + 6)))
        return 0;
    if (strncmp(s, "task/", 5) == 0 && !(s = after_proc_id(s + 5)))
        return 0;
    return strncmp(s, "fd/", 3) == 0;
}

/* The file a descriptor opened through a link to another names (tee /dev/stderr, a memfd
 * reopened through /proc/self/fd/N), or an unnamed file made in a directory (O_TMPFILE:
 * Python's tempfile.TemporaryFile): its bytes are that file's, named as /proc/self/fd names it
 * (strace -y's name, "DIR/#INODE (deleted)"), not the link's, which the report would count
 * among /dev's and /proc's, nor the directory's (the open itself keeps the name the app gave) */
static __attribute__((noinline)) uint32_t fd_target(int fd, uint32_t path)
{
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    long n = IOT_SYSRAW(readlinkat, AT_FDCWD, link, target, sizeof target - 1);
    return n > 0 ? iot_intern_string(target, (size_t)n) : path;
}

/* The 4 KiB of fd_target's frame only when it is asked: every open comes here, and one from a
 * handler on a small alternate stack has no 4 KiB to spare (tests/test_small_stacks.py) */
static uint32_t fd_file(int fd, uint32_t path, int oflags)
{
    const char *s = iot_string(path);
    if (!s || IOT_SANDBOXED() || !(fd_link(s) || (oflags & __O_TMPFILE) == __O_TMPFILE))
        return path;
    return fd_target(fd, path);
}

/* Records a new descriptor; gives its (dev, inode), 0 on success.  dev NULL: no fstat now (an
 * open left out by a filter), whether it seeks is asked at its first positioned call. */
int iot_fd_opened(int fd, uint32_t path, int oflags, int64_t *dev, int64_t *ino)
{
    path = fd_file(fd, path, oflags);
    if (IOT_UNLIKELY(iot_t.vforked)) { /* a vfork child's: kept apart from the parent's table */
        struct stat st;
        int ok = dev && !IOT_SANDBOXED() && IOT_SYSRAW(fstat, fd, &st) == 0;
        iot_vfork_fd(fd, fd, path);
        if (dev) {
            *dev = ok ? (int64_t)st.st_dev : 0;
            *ino = ok ? (int64_t)st.st_ino : 0;
        }
        return ok ? 0 : -1;
    }
    if (!dev) {
        fresh(fd, path, SEEK_UNKNOWN, (oflags & O_APPEND) != 0, 0);
        return -1;
    }
    struct stat st;
    int ok = !IOT_SANDBOXED() && IOT_SYSRAW(fstat, fd, &st) == 0;
    uint8_t seek = ok ? kind_of(&st) : IOT_SANDBOXED() ? SEEK_UNKNOWN : UNSEEKABLE;
    fresh(fd, path, seek, (oflags & O_APPEND) != 0, 0);
    *dev = ok ? (int64_t)st.st_dev : 0;
    *ino = ok ? (int64_t)st.st_ino : 0;
    return ok ? 0 : -1;
}

/* 1: positions on fd mean nothing (a pipe, socket, terminal...) */
static int unseekable(int fd, ofd *o)
{
    if (IOT_UNLIKELY(o->seek == SEEK_UNKNOWN)) {
        if (IOT_SANDBOXED()) /* not known, not asked: no offsets */
            return 1;
        struct stat st;
        o->seek = IOT_SYSRAW(fstat, fd, &st) == 0 ? kind_of(&st) : UNSEEKABLE;
    }
    return o->seek == UNSEEKABLE;
}

void iot_fd_closed(int fd)
{
    if (IOT_UNLIKELY(iot_t.vforked)) {
        iot_vfork_fd(fd, fd, 0);
        return;
    }
    if (fd < 0 || fd >= MAX_FDS || !ready())
        return;
    pthread_mutex_lock(&lock);
    bind(fd, 0);
    pthread_mutex_unlock(&lock);
}

void iot_fd_close_range(unsigned lo, unsigned hi)
{
    if (IOT_UNLIKELY(iot_t.vforked)) {
        iot_vfork_fd((int)(lo < MAX_FDS ? lo : MAX_FDS), hi < MAX_FDS ? (int)hi : MAX_FDS, 0);
        return;
    }
    iot_kio_fds_closed(lo, hi); /* the threads' counters descriptors too, maybe (kio.c) */
    if (!ready())
        return;
    pthread_mutex_lock(&lock);
    for (unsigned fd = lo; fd <= hi && fd < MAX_FDS; fd++)
        if (fds[fd])
            bind((int)fd, 0);
    pthread_mutex_unlock(&lock);
}

/* In a forked child the string ids restart: before the reset, keep each description's path
 * text; after it, intern them again in the child's log.  Stream positions carry over (the
 * child has the parent's stdio buffers); descriptor offsets are shared with the parent, which
 * may move them at any time: relearnt on first use. */
static char **fork_paths;

void iot_fd_fork_prepare(void)
{
    pthread_mutex_init(&lock, NULL);
    if (!fds)
        return;
    fork_paths = calloc(pool_top, sizeof *fork_paths);
    for (uint32_t i = 1; i < pool_top; i++) {
        const char *p = pool[i].refs ? iot_string(pool[i].path) : NULL;
        if (fork_paths && p)
            fork_paths[i] = strdup(p);
        pool[i].path = 0;
        pool[i].stale = 1;
    }
}

void iot_fd_fork_commit(void)
{
    if (!fork_paths)
        return;
    for (uint32_t i = 1; i < pool_top; i++)
        if (fork_paths[i]) {
            pool[i].path = iot_intern_string(fork_paths[i], strlen(fork_paths[i]));
            free(fork_paths[i]);
        }
    free(fork_paths);
    fork_paths = NULL;
}

void iot_fd_dup(int oldfd, int newfd)
{
    if (IOT_UNLIKELY(iot_t.vforked)) {
        if (newfd >= 0 && oldfd != newfd)
            iot_vfork_fd(newfd, newfd, iot_fd_path(oldfd));
        return;
    }
    if (!known(oldfd) || newfd < 0 || newfd >= MAX_FDS || oldfd == newfd)
        return;
    pthread_mutex_lock(&lock);
    bind(newfd, fds[oldfd]);
    pthread_mutex_unlock(&lock);
}

uint32_t iot_fd_path(int fd)
{
    if (IOT_UNLIKELY(iot_t.vforked)) { /* the child's own change, else what it inherited */
        uint32_t path;
        if (iot_vfork_fd_path(fd, &path))
            return path;
        uint32_t i = fd >= 0 && fd < MAX_FDS && fds ? fds[fd] : 0;
        if (i)
            return pool[i].path;
        char link[64], target[4096];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        long n = IOT_SANDBOXED()
                     ? -1
                     : IOT_SYSRAW(readlinkat, AT_FDCWD, link, target, sizeof target - 1);
        return n > 0 ? iot_intern_string(target, (size_t)n) : 0;
    }
    ofd *o = known(fd);
    return o ? o->path : 0;
}

void iot_ev_fdpath(iot_ev *ev, int fd)
{
    ev->path = iot_fd_path(fd);
}

void iot_ev_end2(iot_ev *ev, int fd, int64_t off)
{
    ev->fd2 = fd;
    ev->path2 = iot_fd_path(fd);
    ev->off2 = off;
    ev->has |= IOT_HAS_END2 | (off != IOT_NO_OFFSET ? IOT_HAS_OFF2 : 0);
}

/* Sentinel: the description appends, the offset is known only after the write. */
#define APPEND_OFFSET (IOT_NO_OFFSET + 1)

int64_t iot_fd_pos(int fd)
{
    ofd *o = known(fd);
    if (!o || unseekable(fd, o))
        return IOT_NO_OFFSET;
    if (IOT_UNLIKELY(o->stale)) {
        if (IOT_SANDBOXED())
            return IOT_NO_OFFSET;
        long p = IOT_SYSRAW(lseek, fd, 0, SEEK_CUR);
        if (p >= 0)
            o->pos = p;
        o->stale = 0;
    }
    return o->append ? APPEND_OFFSET : o->pos;
}

/* stdio reads, writes and seeks its descriptor through libc-internal calls the shim never sees:
 * the next descriptor-level call asks the kernel where the offset is. */
void iot_fd_pos_stale(int fd)
{
    ofd *o = of(fd);
    if (o)
        o->stale = 1;
}

int64_t iot_fd_advance(int fd, int64_t before, int64_t done)
{
    ofd *o = of(fd);
    if (before == IOT_NO_OFFSET || !o)
        return IOT_NO_OFFSET;
    if (before == APPEND_OFFSET) {
        if (done <= 0 || IOT_SANDBOXED())
            return IOT_NO_OFFSET;
        long end = IOT_SYSRAW(lseek, fd, 0, SEEK_CUR);
        if (end < 0)
            return IOT_NO_OFFSET;
        o->pos = end;
        return end - done;
    }
    if (done > 0)
        o->pos = before + done;
    return before;
}

void iot_fd_seek(int fd, int64_t pos)
{
    ofd *o = of(fd);
    if (o && pos >= 0) {
        o->pos = pos;
        o->stale = 0;
    }
}

void iot_fd_set_append(int fd, int on)
{
    ofd *o = known(fd);
    if (o)
        o->append = on != 0;
}

int64_t iot_stdio_pos(int fd)
{
    ofd *o = known(fd);
    if (!o || unseekable(fd, o) || o->append) /* appends: the position is the end */
        return IOT_NO_OFFSET;
    return o->spos;
}

int64_t iot_stdio_advance(int fd, int64_t before, int64_t done)
{
    ofd *o = of(fd);
    if (before == IOT_NO_OFFSET || !o)
        return IOT_NO_OFFSET;
    if (done > 0)
        o->spos = before + done;
    return before;
}

void iot_stdio_set_seen(int fd, int64_t n)
{
    ofd *o = of(fd);
    if (o)
        o->seen = n;
}

int64_t iot_stdio_seen(int fd)
{
    ofd *o = of(fd);
    return o ? o->seen : 0;
}

void iot_stdio_seek(int fd, int64_t pos)
{
    ofd *o = of(fd);
    if (o && pos >= 0)
        o->spos = pos;
}

/* A descriptor change the stracer saw behind the shim's back (stracer_link.c). */
void iot_fd_remote(int op, int a, int b, const char *path, size_t n)
{
    if (a < 0 || a >= MAX_FDS || !ready())
        return;
    if (op == 1) { /* a was opened as path */
        long p = IOT_SYSRAW(lseek, a, 0, SEEK_CUR);
        long fl = IOT_SYSRAW(fcntl, a, F_GETFL, 0);
        fresh(a, iot_intern_string(path, n), p < 0 ? UNSEEKABLE : SEEKABLE,
              fl >= 0 && (fl & O_APPEND), p < 0 ? 0 : p);
        return;
    }
    if (op == 2 && (b < 0 || b >= MAX_FDS || a == b))
        return;
    unsigned hi = op == 4 ? (unsigned)b : op == 2 ? (unsigned)b : (unsigned)a;
    unsigned lo = op == 2 ? (unsigned)b : (unsigned)a;
    pthread_mutex_lock(&lock);
    if (op == 2) /* b is a dup of a */
        bind(b, fds[a]);
    else /* 3: a closed; 4: a..b closed */
        for (unsigned fd = lo; fd <= hi && fd < MAX_FDS; fd++)
            if (fds[fd])
                bind((int)fd, 0);
    pthread_mutex_unlock(&lock);
}
