/* What the shim knows of each descriptor: the path it was opened with, and the file position
 * the next read or write will use (tracked, so an offset costs no lseek).  Process-wide, as
 * descriptors are.  An fd the shim never saw open (inherited, or opened behind its back) is
 * learnt once from /proc/self/fd and lseek. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

#define MAX_FDS (1 << 16)
enum { UNKNOWN = 0, KNOWN = 1 };
enum { SEEK_UNKNOWN = 0, SEEKABLE = 1, UNSEEKABLE = 2 };

typedef struct {
    uint32_t path;
    uint8_t state, seek, append, pad;
    int64_t pos;  /* descriptor position */
    int64_t spos; /* stdio stream position */
} fdent;

static fdent *tab;

static fdent *ent(int fd)
{
    if (fd < 0 || fd >= MAX_FDS)
        return NULL;
    if (IOT_UNLIKELY(!tab)) {
        void *m = (void *)syscall(SYS_mmap, NULL, MAX_FDS * sizeof(fdent), PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        if (!__atomic_compare_exchange_n(&tab, &(fdent *){NULL}, (fdent *)m, 0, __ATOMIC_ACQ_REL,
                                          __ATOMIC_ACQUIRE))
            syscall(SYS_munmap, m, MAX_FDS * sizeof(fdent));
    }
    return &tab[fd];
}

static void learn_seek(fdent *e, int fd)
{
    long p = syscall(SYS_lseek, fd, 0, SEEK_CUR);
    e->seek = p < 0 ? UNSEEKABLE : SEEKABLE;
    e->pos = p < 0 ? 0 : p;
    long fl = syscall(SYS_fcntl, fd, F_GETFL);
    e->append = fl >= 0 && (fl & O_APPEND);
}

static fdent *known(int fd)
{
    fdent *e = ent(fd);
    if (!e || e->state == KNOWN)
        return e;
    int busy = iot_t.busy;
    iot_t.busy = 1;
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    long n = syscall(SYS_readlinkat, AT_FDCWD, link, target, sizeof target - 1);
    if (n > 0) {
        e->path = iot_intern_string(target, (size_t)n);
        learn_seek(e, fd);
        e->spos = e->pos;
        e->state = KNOWN;
    }
    iot_t.busy = busy;
    return n > 0 ? e : NULL;
}

/* Records a new descriptor; gives its (dev, inode), 0 on success. */
int iot_fd_opened(int fd, uint32_t path, int oflags, int64_t *dev, int64_t *ino)
{
    struct stat st;
    int ok = syscall(SYS_fstat, fd, &st) == 0;
    int seekable = ok && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode));
    fdent *e = ent(fd);
    if (e)
        *e = (fdent){.path = path, .state = KNOWN, .seek = seekable ? SEEKABLE : UNSEEKABLE,
                     .append = (oflags & O_APPEND) != 0};
    *dev = ok ? (int64_t)st.st_dev : 0;
    *ino = ok ? (int64_t)st.st_ino : 0;
    return ok ? 0 : -1;
}

void iot_fd_closed(int fd)
{
    fdent *e = ent(fd);
    if (e)
        e->state = UNKNOWN;
}

void iot_fd_close_range(unsigned lo, unsigned hi)
{
    for (unsigned fd = lo; fd <= hi && fd < MAX_FDS; fd++)
        iot_fd_closed((int)fd);
}

void iot_fd_dup(int oldfd, int newfd)
{
    fdent *o = known(oldfd), *n = ent(newfd);
    if (o && n && o != n)
        *n = *o;
}

uint32_t iot_fd_path(int fd)
{
    fdent *e = known(fd);
    return e ? e->path : 0;
}

void iot_ev_fdpath(iot_ev *ev, int fd)
{
    ev->path = iot_fd_path(fd);
}

/* Sentinel: the descriptor appends, the offset is known only after the write. */
#define APPEND_OFFSET (IOT_NO_OFFSET + 1)

int64_t iot_fd_pos(int fd)
{
    fdent *e = known(fd);
    if (!e || e->seek == UNSEEKABLE)
        return IOT_NO_OFFSET;
    return e->append ? APPEND_OFFSET : e->pos;
}

int64_t iot_fd_advance(int fd, int64_t before, int64_t done)
{
    fdent *e = ent(fd);
    if (before == IOT_NO_OFFSET || !e)
        return IOT_NO_OFFSET;
    if (before == APPEND_OFFSET) {
        if (done <= 0)
            return IOT_NO_OFFSET;
        long end = syscall(SYS_lseek, fd, 0, SEEK_CUR);
        if (end < 0)
            return IOT_NO_OFFSET;
        e->pos = end;
        return end - done;
    }
    if (done > 0)
        e->pos = before + done;
    return before;
}

void iot_fd_seek(int fd, int64_t pos)
{
    fdent *e = ent(fd);
    if (e && e->state == KNOWN && pos >= 0)
        e->pos = e->spos = pos;
}

void iot_fd_set_append(int fd, int on)
{
    fdent *e = known(fd);
    if (e)
        e->append = on != 0;
}

int64_t iot_stdio_pos(int fd)
{
    fdent *e = known(fd);
    if (!e || e->seek == UNSEEKABLE || e->append) /* appends: the position is the end */
        return IOT_NO_OFFSET;
    return e->spos;
}

int64_t iot_stdio_advance(int fd, int64_t before, int64_t done)
{
    fdent *e = ent(fd);
    if (before == IOT_NO_OFFSET || !e)
        return IOT_NO_OFFSET;
    if (done > 0)
        e->spos = before + done;
    return before;
}

void iot_stdio_seek(int fd, int64_t pos)
{
    fdent *e = ent(fd);
    if (e && e->state == KNOWN && pos >= 0)
        e->spos = pos;
}
