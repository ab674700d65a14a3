/* Wrappers: libc functions that read the file system for the app inside libc — glob (a
 * directory read and a stat per candidate) and the mount table (setmntent, getmntent,
 * getmntent_r, endmntent: glibc's own stdio stream on /proc/mounts or the file named).
 * Unwrapped, their syscalls were libc-internal stops through Python, and the first of them in a
 * process had the stracer unwind a new call site while the app waited (libc's symbols and the
 * process's maps read: ~30 ms of the stracer's CPU per MPI rank).  Open MPI makes both in
 * MPI_Init: hwloc and the hugepage mpool read the mount table, the PSM2 MTL globs /dev (issue
 * 19).  Wrapped, they run inside the wrapper's marker: covered stops the C loop resumes, no
 * Python, no unwinding; the events stand for them.
 *
 * glob runs the app's own code when given an error callback or GLOB_ALTDIRFUNC: that call is
 * left alone (untraced, its syscalls the stracer's as before), so the app's I/O in its
 * callbacks is never taken for glob's.  glob changed in glibc 2.27 (GLOB_ALTDIRFUNC's gl_lstat):
 * preload/shim.map gives these two the version GLIBC_2.27, so a binary linked before it still
 * binds to libc's old glob, untraced.
 *
 * Events: glob path = the pattern (made absolute as a path), flags, ret = glob's return value
 * (0, GLOB_NOMATCH...; GLOB_NOSPACE and GLOB_ABORTED are failures with errno); setmntent path =
 * the file, fd = the stream's descriptor (registered like an open()'s), ret 1 or 0;
 * getmntent/getmntent_r fd, ret 1 (an entry) or 0 (the end); their reads are counted by the
 * kernel's counters around the call (calls.py KERNEL_IO_FUNCS "in"); endmntent fd, ret 1. */
#include <fcntl.h>
#include <glob.h>
#include <mntent.h>
#include <stdio.h>

#include "shim.h"

typedef int (*glob_errfunc)(const char *, int);

#define GLOB_BODY(FN, real_call)                                                \
    if (errfunc || (flags & GLOB_ALTDIRFUNC)) /* the app's code inside: its own */ \
        return real_call;                                                       \
    IOT_ENTER(FN, real_call);                                                   \
    IOT_CALL(int, real_call, r, r == GLOB_NOSPACE || r == GLOB_ABORTED);        \
    iot_ev_path(&ev, pattern);                                                  \
    iot_ev_flags(&ev, flags);                                                   \
    IOT_LEAVE(r)

IOT_API int glob(const char *pattern, int flags, glob_errfunc errfunc, glob_t *pglob)
{
    IOT_REAL(glob);
    GLOB_BODY(IOT_FN_glob, real_glob(pattern, flags, errfunc, pglob));
}

IOT_API int glob64(const char *pattern, int flags, glob_errfunc errfunc, glob64_t *pglob)
{
    IOT_REAL(glob64);
    GLOB_BODY(IOT_FN_glob, real_glob64(pattern, flags, errfunc, pglob));
}

IOT_API FILE *setmntent(const char *file, const char *mode)
{
    IOT_REAL(setmntent);
    IOT_ENTER(IOT_FN_setmntent, real_setmntent(file, mode));
    IOT_CALL(FILE *, real_setmntent(file, mode), r != NULL, r == NULL);
    iot_ev_path(&ev, file);
    iot_ev_opened(&ev, r ? fileno(r) : -1, O_RDONLY | O_CLOEXEC);
    IOT_LEAVE(r);
}

/* The stream's descriptor and the path it was opened with (none for NULL) */
static void mnt_fd(iot_ev *ev, FILE *f)
{
    int fd = f ? fileno(f) : -1;
    if (fd >= 0) {
        iot_ev_fd(ev, fd);
        iot_ev_fdpath(ev, fd);
    }
}

IOT_API struct mntent *getmntent(FILE *f)
{
    IOT_REAL(getmntent);
    IOT_ENTER(IOT_FN_getmntent, real_getmntent(f));
    IOT_CALL(struct mntent *, real_getmntent(f), r != NULL, 0);
    mnt_fd(&ev, f);
    IOT_LEAVE(r);
}

IOT_API struct mntent *getmntent_r(FILE *f, struct mntent *m, char *buf, int len)
{
    IOT_REAL(getmntent_r);
    IOT_ENTER(IOT_FN_getmntent, real_getmntent_r(f, m, buf, len));
    IOT_CALL(struct mntent *, real_getmntent_r(f, m, buf, len), r != NULL, 0);
    mnt_fd(&ev, f);
    IOT_LEAVE(r);
}

IOT_API int endmntent(FILE *f)
{
    IOT_REAL(endmntent);
    IOT_ENTER(IOT_FN_endmntent, real_endmntent(f));
    int fd = f ? fileno(f) : -1;
    uint32_t path = fd >= 0 ? iot_fd_path(fd) : 0;
    IOT_CALL(int, real_endmntent(f), r, 0);
    if (fd >= 0) {
        iot_ev_fd(&ev, fd);
        ev.path = path;
        iot_fd_closed(fd);
    }
    IOT_LEAVE(r);
}
