/* Wrappers: POSIX semaphores and shared memory by name.  glibc makes their files under /dev/shm
 * with its internal calls (sem_open: open, lstat, open O_EXCL, write, mmap, link, fstat, unlink,
 * close of a temporary file; the others one open or unlink), which carry no cookie: under the
 * stracer each was a ptrace stop (covered, resumed by its C loop: ~10-40 us each), 9-13 per
 * sem_open, and OMPIO calls sem_open at every MPI_File_open (issue 19).  So under a stracer the
 * shim does these calls itself, as glibc 2.36 does them (sysdeps/pthread/sem_open.c,
 * sem_routines.c, sem_close.c, sem_unlink.c, rt/shm_open.c, rt/shm_unlink.c,
 * posix/shm-directory.c), with cookie'd syscalls (sysraw.h): no stop.  The same names and
 * errno, the same file (a temporary file written whole, mapped, then linked under the name, so
 * no process ever sees a half-made semaphore), the same bytes (sem_init's, pshared), the same
 * per-process table (one mapping per (file, name as given), counted; sem_close unmaps at the
 * last close, EINVAL for an address not in it); the mapping carries the cookie as its address
 * hint (sysraw.h).  What differs: the temporary name is not lstat'ed first (mktemp's check; the
 * O_EXCL open decides anyway).  A failed write (a full /dev/shm) gives SEM_FAILED and its errno,
 * the temporary file unlinked, as glibc's (tests/test_shm.py).  Names glibc refuses or too long (own() below), calls without a stracer or once
 * the shim is off are glibc's.  A semaphore glibc opened before the shim's hello (from the
 * program's preinit array, which runs before libc's start: record.c) is entered in the shim's
 * table too, as glibc's (its count of glibc's references), so that a re-open under the stracer
 * returns glibc's address, as glibc would; sem_close hands glibc the references that are its
 * own, the shim's first, so glibc unmaps it at the last close as it would.  Under the app's
 * own seccomp filter the shim still makes these calls itself: they are glibc's syscalls with
 * glibc's arguments (and the cookie in a slot the kernel does not read), one fewer (the lstat),
 * which the app's filter allowed for its sem_open; and a semaphore opened before the filter
 * keeps its address when opened again after it.
 *
 * Events: path = the file glibc names ("/dev/shm/" + "sem." for semaphores + the name without
 * its leading slashes; the name as given when it is not a valid one), flags = oflag, mode;
 * sem_open ret 1 or 0 (SEM_FAILED); shm_open ret = the descriptor, registered like an open()'s;
 * the unlinks ret 0 or -1.  sem_open's bytes (its 32-byte write): glibc's are the kernel's
 * counters around the call, with the shim alone (calls.py KERNEL_IO_FUNCS "in-shim"); the shim's
 * own are counted as it makes them (no /proc reading around the call); sem_close has no
 * event. */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "shim.h"
#include "sysraw.h"

#define SHM_NAME_CAP 320

/* The file of a shm/sem name, as glibc's __shm_get_name builds it, or 0 when the name is none
 * (empty, a slash after the leading ones) or too long for out */
static size_t shm_name(char out[SHM_NAME_CAP], const char *name, int sem)
{
    while (*name == '/')
        name++;
    size_t len = strlen(name), pre = sem ? 13 : 9;
    if (len == 0 || memchr(name, '/', len) || pre + len + 1 > SHM_NAME_CAP)
        return 0;
    memcpy(out, sem ? "/dev/shm/sem." : "/dev/shm/", pre);
    memcpy(out + pre, name, len + 1);
    return pre + len;
}

/* The event's path: the file, or the name as given when it names none */
static void shm_path(iot_ev *ev, const char *name, int sem)
{
    char buf[SHM_NAME_CAP];
    if (!name || ev->err == EFAULT)
        return;
    size_t n = shm_name(buf, name, sem);
    ev->path = n ? iot_intern_string(buf, n) : iot_intern_string(name, strlen(name));
}

/* Whether the shim makes the call itself (the file into path): under a stracer, its shim not
 * off (an off shim's I/O stays the stracer's to see), for a name whose file name is at most
 * NAME_MAX long.  Other names are glibc's to refuse, in its words: its buffer's size and its
 * errno for a long name changed between versions (2.36: EINVAL past 255 bytes with "sem.",
 * later ENAMETOOLONG). */
static int own(char path[SHM_NAME_CAP], const char *name, int sem)
{
    size_t n;
    return iot_stracing && iot_p.state != IOT_OFF && name &&
           (n = shm_name(path, name, sem)) && n - 9 <= NAME_MAX;
}

/* ---- the semaphores this process has mapped (glibc's sem_mappings) ---- */
typedef struct sem_ent {
    struct sem_ent *next;
    dev_t dev;
    ino_t ino;
    int refcnt; /* the shim's references */
    int glibc;  /* glibc's (its table's), for a semaphore its sem_open mapped */
    int pending; /* glibc's, its file (dev, ino) not known yet */
    sem_t *sem;
    char name[]; /* as given to sem_open */
} sem_ent;
static sem_ent *sems;
static pthread_mutex_t sems_lock = PTHREAD_MUTEX_INITIALIZER;

/* libc's mmap and munmap where no cookie'd one: the app's calls, as glibc's sem_open and
 * sem_close make them (the shim's syscall() makes none under the app's seccomp filter) */
static void *sem_map(int fd)
{
    IOT_REAL(mmap);
    return iot_mmap_hintable(NULL, PROT_READ | PROT_WRITE, MAP_SHARED, fd)
               ? iot_sysraw_mmap(sizeof(sem_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
               : real_mmap(NULL, sizeof(sem_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
}

static int sem_unmap(void *sem)
{
    IOT_REAL(munmap);
    return real_munmap(sem, sizeof(sem_t));
}

/* Whether e's file is known: one glibc mapped before the hello is looked up now, by the
 * kernel's link to the mapping itself (/proc/self/map_files: the file mapped, whatever its name
 * names since; root's, or CAP_CHECKPOINT_RESTORE's, to follow): no syscall was made before
 * the hello, where it would have stopped as a missed one.  Not found, it stays unknown: a
 * re-open maps the file anew (another address).  Under the app's seccomp filter not looked up:
 * that syscall is not glibc's. */
static int file_of(sem_ent *e)
{
    if (!e->pending || IOT_SANDBOXED())
        return !e->pending;
    char link[80];
    uintptr_t pg = (uintptr_t)getpagesize(), lo = (uintptr_t)e->sem & ~(pg - 1);
    snprintf(link, sizeof link, "/proc/self/map_files/%lx-%lx", (unsigned long)lo,
             (unsigned long)(lo + pg));
    struct stat st;
    int save = errno;
    if (IOT_SYSRAW(newfstatat, AT_FDCWD, link, &st, 0) == 0) {
        e->dev = st.st_dev;
        e->ino = st.st_ino;
    }
    errno = save;
    e->pending = 0;
    return 1;
}

/* glibc's __sem_check_add_mapping: the mapping this process has of (fd's file, name), counted
 * once more, or `existing` (or a new one when SEM_FAILED) entered; SEM_FAILED on failure */
static sem_t *sem_add(const char *name, int fd, sem_t *existing)
{
    size_t namelen = strlen(name);
    if (namelen > NAME_MAX)
        return SEM_FAILED;
    sem_t *result = SEM_FAILED;
    struct stat st;
    if (IOT_SYSRAW(newfstatat, fd, "", &st, AT_EMPTY_PATH) == 0) {
        pthread_mutex_lock(&sems_lock);
        sem_ent *e = sems;
        while (e && !(file_of(e) && e->ino == st.st_ino && e->dev == st.st_dev &&
                      !strcmp(e->name, name)))
            e = e->next;
        if (e) {
            result = e->sem;
            e->refcnt++;
        } else if ((e = malloc(sizeof *e + namelen + 1))) {
            if (existing == SEM_FAILED)
                existing = sem_map(fd);
            *e = (sem_ent){sems, st.st_dev, st.st_ino, 1, 0, 0, existing};
            memcpy(e->name, name, namelen + 1);
            if (existing != MAP_FAILED) {
                sems = e;
                result = existing;
            } else {
                free(e);
            }
        }
        pthread_mutex_unlock(&sems_lock);
    }
    if (result != existing && existing != SEM_FAILED && existing != MAP_FAILED) {
        int save = errno;
        sem_unmap(existing);
        errno = save;
    }
    return result;
}

/* A semaphore glibc's sem_open mapped before the shim's hello: one more of glibc's references
 * to it, entered under the name as given, its file looked up later (file_of) */
static void sem_note(const char *name, sem_t *sem)
{
    size_t namelen = strlen(name);
    pthread_mutex_lock(&sems_lock);
    sem_ent *e = sems;
    while (e && e->sem != sem)
        e = e->next;
    if (e) {
        e->glibc++;
    } else if (namelen <= NAME_MAX && (e = malloc(sizeof *e + namelen + 1))) {
        *e = (sem_ent){sems, 0, 0, 0, 1, 1, sem};
        memcpy(e->name, name, namelen + 1);
        sems = e;
    }
    pthread_mutex_unlock(&sems_lock);
}

/* glibc's __sem_remove_mapping: 1 done, 0 not the shim's to close (not in the table, or a
 * reference of glibc's: its sem_close then closes it), -1 its unmapping failed */
static int sem_remove(sem_t *sem)
{
    int ret = 0;
    pthread_mutex_lock(&sems_lock);
    sem_ent **p = &sems;
    while (*p && (*p)->sem != sem)
        p = &(*p)->next;
    sem_ent *e = *p;
    if (e) {
        ret = e->refcnt > 0;
        if (e->refcnt > 0)
            e->refcnt--;
        else
            e->glibc--;
        if (e->refcnt == 0 && e->glibc == 0) {
            *p = e->next;
            if (ret && sem_unmap(e->sem) == -1) /* glibc's mapping: its sem_close unmaps it */
                ret = -1;
            free(e);
        }
    }
    pthread_mutex_unlock(&sems_lock);
    return ret;
}

/* glibc's sem_open, with cookie'd syscalls.  glibc disables cancellation inside it: none of
 * these raw syscalls is a cancellation point. */
static sem_t *own_sem_open(const char *path, const char *name, int oflag, mode_t mode,
                           unsigned value, uint64_t io[4])
{
    sem_t *result = SEM_FAILED;
    int fd;
    if (!(oflag & O_CREAT) || !(oflag & O_EXCL)) {
    try_again:
        fd = IOT_SYSRAW(openat, AT_FDCWD, path, (oflag & ~(O_CREAT | O_ACCMODE)) | O_NOFOLLOW | O_RDWR,
                        0);
        if (fd == -1) {
            if ((oflag & O_CREAT) && errno == ENOENT)
                goto try_create;
        } else {
            result = sem_add(name, fd, SEM_FAILED);
        }
    } else {
    try_create:
        if (value > SEM_VALUE_MAX) {
            errno = EINVAL;
            return SEM_FAILED;
        }
        union {
            sem_t sem;
            char bytes[sizeof(sem_t)];
        } init;
        memset(&init, 0, sizeof init);
        sem_init(&init.sem, 1, value); /* glibc's __new_sem_open_init: the same bytes */
        static const char az[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        char tmp[] = "/dev/shm/sem.XXXXXX";
        for (int retries = 0;;) {
            uint64_t v;
            if (getrandom(&v, sizeof v, GRND_NONBLOCK) != sizeof v)
                v = iot_now() ^ (uint64_t)(uintptr_t)&v;
            for (int i = 0; i < 6; i++, v /= 62)
                tmp[sizeof tmp - 7 + i] = az[v % 62];
            fd = IOT_SYSRAW(openat, AT_FDCWD, tmp, O_RDWR | O_CREAT | O_EXCL, mode);
            if (fd != -1)
                break;
            if (errno != EEXIST)
                return SEM_FAILED;
            if (++retries == 50) {
                errno = EAGAIN;
                return SEM_FAILED;
            }
        }
        ssize_t w;
        do {
            w = IOT_SYSRAW(write, fd, init.bytes, sizeof init.bytes);
            io[1] += w > 0 ? (uint64_t)w : 0; /* as the kernel counts it: wchar, syscw */
            io[3]++;
        } while (w == -1 && errno == EINTR);
        if (w == (ssize_t)sizeof init.bytes && (result = sem_map(fd)) != MAP_FAILED) {
            if (IOT_SYSRAW(link, tmp, path) != 0) {
                sem_unmap(result);
                result = SEM_FAILED;
                if (!(oflag & O_EXCL) && errno == EEXIST) {
                    IOT_SYSRAW(unlink, tmp);
                    IOT_SYSRAW(close, fd);
                    goto try_again;
                }
            } else {
                result = sem_add(name, fd, result);
            }
        }
        IOT_SYSRAW(unlink, tmp); /* glibc leaves errno to it */
    }
    if (result == MAP_FAILED)
        result = SEM_FAILED;
    if (fd != -1) {
        int save = errno;
        IOT_SYSRAW(close, fd);
        errno = save;
    }
    return result;
}

static int own_unlink(const char *path)
{
    int r = (int)IOT_SYSRAW(unlink, path);
    if (r < 0 && errno == EPERM)
        errno = EACCES;
    return r;
}

static int own_shm_open(const char *path, int oflag, mode_t mode)
{
    int fd = (int)IOT_SYSRAW(openat, AT_FDCWD, path, oflag | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd == -1 && errno == EISDIR)
        errno = EINVAL;
    return fd;
}

/* glibc's, noted when the shim has not said its hello yet (a preinit function's) */
static sem_t *glibc_sem_open(sem_t *(*real)(const char *, int, ...), const char *name, int oflag,
                             mode_t mode, unsigned value)
{
    sem_t *r = real(name, oflag, mode, value);
    if (r != SEM_FAILED && iot_p.state == IOT_UNINIT) {
        int save = errno;
        sem_note(name, r);
        errno = save;
    }
    return r;
}

#define SEM_OPEN() (own(path, name, 1) ? own_sem_open(path, name, oflag, mode, value, io) \
                                     : glibc_sem_open(real_sem_open, name, oflag, mode, value))
IOT_API sem_t *sem_open(const char *name, int oflag, ...)
{
    mode_t mode = 0;
    unsigned value = 0;
    if (oflag & O_CREAT) {
        va_list ap;
        va_start(ap, oflag);
        mode = va_arg(ap, mode_t);
        value = va_arg(ap, unsigned);
        va_end(ap);
    }
    IOT_REAL(sem_open);
    char path[SHM_NAME_CAP];
    uint64_t io[4] = {0, 0, 0, 0}; /* its write: no counters read around it (mode "in-shim") */
    IOT_ENTER(IOT_FN_sem_open, SEM_OPEN());
    IOT_CALL(sem_t *, SEM_OPEN(), r != SEM_FAILED, r == SEM_FAILED);
    iot_kio_inner(io);
    shm_path(&ev, name, 1);
    iot_ev_flags(&ev, oflag);
    if (oflag & O_CREAT)
        iot_ev_mode(&ev, mode);
    IOT_LEAVE(r);
}

/* No event (glibc's makes no I/O: an unmapping at the last close): the shim's table, else
 * glibc's (what glibc's sem_open mapped: before the hello, or without a stracer) */
IOT_API int sem_close(sem_t *sem)
{
    IOT_REAL(sem_close);
    int r = sem_remove(sem);
    if (r == 0)
        return real_sem_close(sem);
    if (r < 0)
        errno = EINVAL;
    return r < 0 ? -1 : 0;
}

IOT_API int sem_unlink(const char *name)
{
    IOT_REAL(sem_unlink);
    char path[SHM_NAME_CAP];
#define SEM_UNLINK() (own(path, name, 1) ? own_unlink(path) : real_sem_unlink(name))
    IOT_ENTER(IOT_FN_sem_unlink, SEM_UNLINK());
    IOT_CALL(int, SEM_UNLINK(), r, r < 0);
    shm_path(&ev, name, 1);
    IOT_LEAVE(r);
}

IOT_API int shm_open(const char *name, int oflag, mode_t mode)
{
    IOT_REAL(shm_open);
    char path[SHM_NAME_CAP];
#define SHM_OPEN() \
    (own(path, name, 0) ? own_shm_open(path, oflag, mode) : real_shm_open(name, oflag, mode))
    IOT_ENTER(IOT_FN_shm_open, SHM_OPEN());
    IOT_CALL(int, SHM_OPEN(), r, r < 0);
    shm_path(&ev, name, 0);
    iot_ev_flags(&ev, oflag | O_NOFOLLOW | O_CLOEXEC); /* what glibc adds */
    if (oflag & O_CREAT)
        iot_ev_mode(&ev, mode);
    iot_ev_opened(&ev, r, oflag | O_NOFOLLOW | O_CLOEXEC);
    IOT_LEAVE(r);
}

IOT_API int shm_unlink(const char *name)
{
    IOT_REAL(shm_unlink);
    char path[SHM_NAME_CAP];
#define SHM_UNLINK() (own(path, name, 0) ? own_unlink(path) : real_shm_unlink(name))
    IOT_ENTER(IOT_FN_shm_unlink, SHM_UNLINK());
    IOT_CALL(int, SHM_UNLINK(), r, r < 0);
    shm_path(&ev, name, 0);
    IOT_LEAVE(r);
}
