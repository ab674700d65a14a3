/* Wrappers: POSIX semaphores and shared memory by name.  glibc makes their files under /dev/shm
 * with its internal calls (sem_open: open, lstat, open O_EXCL, write, mmap, link, unlink, close
 * of a temporary file; the others one open or unlink).  Unwrapped, each of those syscalls was a
 * libc-internal stop that Python recorded (entry and exit stops, ~165 us each): OMPIO calls
 * sem_open at every MPI_File_open (issue 19).  Wrapped, they run inside the wrapper's marker,
 * so the stracer's C loop counts them covered and resumes at once (one stop each, no Python,
 * no exit stop), and the event stands for them; their bytes (sem_open's 32-byte write) are the
 * kernel's counters around the call (calls.py KERNEL_IO_FUNCS "in").
 *
 * Events: path = the file glibc names ("/dev/shm/" + "sem." for semaphores + the name without
 * its leading slashes; the name as given when it is not a valid one), flags = oflag, mode;
 * sem_open ret 1 or 0 (SEM_FAILED); shm_open ret = the descriptor, registered like an open()'s;
 * the unlinks ret 0 or -1. */
#include <fcntl.h>
#include <semaphore.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>

#include "shim.h"

/* The file of a shm/sem name, as glibc's __shm_get_name builds it (never read: the event's) */
static void shm_path(iot_ev *ev, const char *name, int sem)
{
    if (!name || ev->err == EFAULT)
        return;
    const char *n = name;
    while (*n == '/')
        n++;
    size_t len = strlen(n);
    char buf[320];
    if (len == 0 || memchr(n, '/', len) || len > sizeof buf - 16) {
        ev->path = iot_intern_string(name, strlen(name));
        return;
    }
    size_t pre = sem ? 13 : 9;
    memcpy(buf, sem ? "/dev/shm/sem." : "/dev/shm/", pre);
    memcpy(buf + pre, n, len);
    ev->path = iot_intern_string(buf, pre + len);
}

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
    IOT_ENTER(IOT_FN_sem_open, real_sem_open(name, oflag, mode, value));
    IOT_CALL(sem_t *, real_sem_open(name, oflag, mode, value), r != SEM_FAILED, r == SEM_FAILED);
    shm_path(&ev, name, 1);
    iot_ev_flags(&ev, oflag);
    if (oflag & O_CREAT)
        iot_ev_mode(&ev, mode);
    IOT_LEAVE(r);
}

IOT_API int sem_unlink(const char *name)
{
    IOT_REAL(sem_unlink);
    IOT_ENTER(IOT_FN_sem_unlink, real_sem_unlink(name));
    IOT_CALL(int, real_sem_unlink(name), r, r < 0);
    shm_path(&ev, name, 1);
    IOT_LEAVE(r);
}

IOT_API int shm_open(const char *name, int oflag, mode_t mode)
{
    IOT_REAL(shm_open);
    IOT_ENTER(IOT_FN_shm_open, real_shm_open(name, oflag, mode));
    IOT_CALL(int, real_shm_open(name, oflag, mode), r, r < 0);
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
    IOT_ENTER(IOT_FN_shm_unlink, real_shm_unlink(name));
    IOT_CALL(int, real_shm_unlink(name), r, r < 0);
    shm_path(&ev, name, 0);
    IOT_LEAVE(r);
}
