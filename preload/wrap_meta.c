/* Wrappers: metadata and directories, in the shapes of shim.h.
 *
 * The stat family is wrapped under every name a binary may bind to: binaries built against
 * glibc >= 2.33 call stat/fstat/lstat/fstatat themselves (the symbols Darshan misses), older
 * ones call __xstat & co. with a version argument.  The 64 names take struct stat64, a distinct
 * type in C even where its layout is struct stat's, so they are thin wrappers, not aliases.
 *
 * Under a stracer the real call is the raw syscall carrying the cookie (IOT_FAST, sysraw.h),
 * made as glibc 2.36 makes it on x86_64, whose struct stat is the kernel's. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <utime.h>

#include "shim.h"
#include "sysraw.h"

/* The pre-2.33 entry points: no longer declared by glibc's headers, still exported. */
int __xstat(int ver, const char *path, struct stat *st);
int __lxstat(int ver, const char *path, struct stat *st);
int __fxstat(int ver, int fd, struct stat *st);
int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags);
int __xstat64(int ver, const char *path, struct stat64 *st);
int __lxstat64(int ver, const char *path, struct stat64 *st);
int __fxstat64(int ver, int fd, struct stat64 *st);
int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags);

/* A call naming a path relative to dirfd (shim.h's path shape, untraced: real_call); the
 * wrapper adds its fields and leaves. */
#define PATH_BODY(FN, real_call, raw_call, dirfd, path, atflags)        \
    IOT_ENTER(FN, real_call);                                           \
    IOT_PATH_CALL(int, dirfd, path, atflags, IOT_FAST(raw_call, real_call))
#define FD_BODY(FN, real_call, raw_call, fd)                            \
    IOT_ENTER(FN, real_call);                                           \
    IOT_FD_CALL(int, fd, IOT_FAST(raw_call, real_call))

/* ---- stat family ---- */

/* Under a stracer, the syscall each libc entry point makes (glibc 2.36, x86_64). */
#define RAW_STAT(path, st) IOT_SYSRAW(newfstatat, AT_FDCWD, path, st, 0)
#define RAW_LSTAT(path, st) IOT_SYSRAW(newfstatat, AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW)
/* glibc's fstat refuses fd < 0 itself: newfstatat(AT_FDCWD, "", AT_EMPTY_PATH) is the cwd */
#define RAW_FSTAT(fd, st) \
    ((fd) < 0 ? (errno = EBADF, -1L) : IOT_SYSRAW(newfstatat, fd, "", st, AT_EMPTY_PATH))
#define RAW_FSTATAT(dirfd, path, st, flags) IOT_SYSRAW(newfstatat, dirfd, path, st, flags)
/* __xstat & co. take _STAT_VER_KERNEL (0) or _STAT_VER_LINUX (1), else EINVAL; then the old
 * syscalls, whose struct is struct stat on x86_64 */
#define RAW_XVER(ver, call) ((unsigned)(ver) > 1 ? (errno = EINVAL, -1L) : (call))

#define STAT_PATH(name, FN, args, call, raw)                            \
    IOT_API int name args                                               \
    {                                                                   \
        IOT_REAL(name);                                                 \
        PATH_BODY(FN, real_##name call, raw, AT_FDCWD, path, 0);        \
        IOT_LEAVE(r);                                                   \
    }
#define STAT_FD(name, args, call, raw)                                  \
    IOT_API int name args                                               \
    {                                                                   \
        IOT_REAL(name);                                                 \
        FD_BODY(IOT_FN_fstat, real_##name call, raw, fd);               \
        IOT_LEAVE(r);                                                   \
    }
#define STAT_AT(name, args, call, raw)                                  \
    IOT_API int name args                                               \
    {                                                                   \
        IOT_REAL(name);                                                 \
        PATH_BODY(IOT_FN_fstatat, real_##name call, raw, dirfd, path, flags); \
        iot_ev_flags(&ev, flags);                                       \
        IOT_LEAVE(r);                                                   \
    }

STAT_PATH(stat, IOT_FN_stat, (const char *path, struct stat *st), (path, st),
          RAW_STAT(path, st))
STAT_PATH(stat64, IOT_FN_stat, (const char *path, struct stat64 *st), (path, st),
          RAW_STAT(path, st))
STAT_PATH(lstat, IOT_FN_lstat, (const char *path, struct stat *st), (path, st),
          RAW_LSTAT(path, st))
STAT_PATH(lstat64, IOT_FN_lstat, (const char *path, struct stat64 *st), (path, st),
          RAW_LSTAT(path, st))
STAT_FD(fstat, (int fd, struct stat *st), (fd, st), RAW_FSTAT(fd, st))
STAT_FD(fstat64, (int fd, struct stat64 *st), (fd, st), RAW_FSTAT(fd, st))
STAT_AT(fstatat, (int dirfd, const char *path, struct stat *st, int flags),
        (dirfd, path, st, flags), RAW_FSTATAT(dirfd, path, st, flags))
STAT_AT(fstatat64, (int dirfd, const char *path, struct stat64 *st, int flags),
        (dirfd, path, st, flags), RAW_FSTATAT(dirfd, path, st, flags))

STAT_PATH(__xstat, IOT_FN_stat, (int ver, const char *path, struct stat *st),
          (ver, path, st), RAW_XVER(ver, IOT_SYSRAW(stat, path, st)))
STAT_PATH(__xstat64, IOT_FN_stat, (int ver, const char *path, struct stat64 *st),
          (ver, path, st), RAW_XVER(ver, IOT_SYSRAW(stat, path, st)))
STAT_PATH(__lxstat, IOT_FN_lstat, (int ver, const char *path, struct stat *st),
          (ver, path, st), RAW_XVER(ver, IOT_SYSRAW(lstat, path, st)))
STAT_PATH(__lxstat64, IOT_FN_lstat, (int ver, const char *path, struct stat64 *st),
          (ver, path, st), RAW_XVER(ver, IOT_SYSRAW(lstat, path, st)))
STAT_FD(__fxstat, (int ver, int fd, struct stat *st), (ver, fd, st),
        RAW_XVER(ver, IOT_SYSRAW(fstat, fd, st)))
STAT_FD(__fxstat64, (int ver, int fd, struct stat64 *st), (ver, fd, st),
        RAW_XVER(ver, IOT_SYSRAW(fstat, fd, st)))
STAT_AT(__fxstatat,
        (int ver, int dirfd, const char *path, struct stat *st, int flags),
        (ver, dirfd, path, st, flags), RAW_XVER(ver, RAW_FSTATAT(dirfd, path, st, flags)))
STAT_AT(__fxstatat64,
        (int ver, int dirfd, const char *path, struct stat64 *st, int flags),
        (ver, dirfd, path, st, flags), RAW_XVER(ver, RAW_FSTATAT(dirfd, path, st, flags)))

/* raw, or libc's function (its emulation) where the kernel lacks the syscall */
#define RAW_OR_LIBC(raw, real)                                          \
    (__extension__({                                                    \
        long r_ = (raw);                                                \
        r_ == -1 && errno == ENOSYS ? (long)(real) : r_;                \
    }))

/* mode = the mask of fields asked for. */
IOT_API int statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *stx)
{
    IOT_REAL(statx);
    PATH_BODY(IOT_FN_statx, real_statx(dirfd, path, flags, mask, stx),
              RAW_OR_LIBC(IOT_SYSRAW(statx, dirfd, path, flags, mask, stx),
                          real_statx(dirfd, path, flags, mask, stx)),
              dirfd, path, flags);
    iot_ev_flags(&ev, flags);
    iot_ev_mode(&ev, mask);
    IOT_LEAVE(r);
}

/* ---- access ---- */

IOT_API int access(const char *path, int mode)
{
    IOT_REAL(access);
    PATH_BODY(IOT_FN_access, real_access(path, mode), IOT_SYSRAW(access, path, mode), AT_FDCWD,
              path, 0);
    iot_ev_mode(&ev, mode);
    IOT_LEAVE(r);
}

IOT_API int faccessat(int dirfd, const char *path, int mode, int flags)
{
    IOT_REAL(faccessat);
    /* glibc: faccessat2, its own emulation where the kernel has none */
    PATH_BODY(IOT_FN_faccessat, real_faccessat(dirfd, path, mode, flags),
              RAW_OR_LIBC(IOT_SYSRAW(faccessat2, dirfd, path, mode, flags),
                          real_faccessat(dirfd, path, mode, flags)),
              dirfd, path, flags);
    iot_ev_mode(&ev, mode);
    iot_ev_flags(&ev, flags);
    IOT_LEAVE(r);
}

IOT_API int euidaccess(const char *path, int mode)
{
    IOT_REAL(euidaccess);
    /* glibc's euidaccess has user-space logic of its own: it keeps its stop */
    PATH_BODY(IOT_FN_euidaccess, real_euidaccess(path, mode), real_euidaccess(path, mode),
              AT_FDCWD, path, 0);
    iot_ev_mode(&ev, mode);
    IOT_LEAVE(r);
}
IOT_ALIAS(euidaccess, eaccess);

/* ---- names ---- */

IOT_API int unlink(const char *path)
{
    IOT_REAL(unlink);
    PATH_BODY(IOT_FN_unlink, real_unlink(path), IOT_SYSRAW(unlink, path), AT_FDCWD, path, 0);
    IOT_LEAVE(r);
}

/* remove: glibc 2.36 unlinks, and on EISDIR removes the directory; under a stracer the same two
 * syscalls carrying the cookie (each was a libc-internal stop through Python: OMPIO removes its
 * shared-file-pointer file at every MPI_File_close).  ret/errno the call's. */
static long raw_remove(const char *path)
{
    long r = IOT_SYSRAW(unlinkat, AT_FDCWD, path, 0);
    if (r != 0 && errno == EISDIR)
        r = IOT_SYSRAW(unlinkat, AT_FDCWD, path, AT_REMOVEDIR);
    return r;
}

IOT_API int remove(const char *path)
{
    IOT_REAL(remove);
    PATH_BODY(IOT_FN_remove, real_remove(path), raw_remove(path), AT_FDCWD, path, 0);
    IOT_LEAVE(r);
}

IOT_API int unlinkat(int dirfd, const char *path, int flags)
{
    IOT_REAL(unlinkat);
    PATH_BODY(IOT_FN_unlinkat, real_unlinkat(dirfd, path, flags),
              IOT_SYSRAW(unlinkat, dirfd, path, flags), dirfd, path, 0);
    iot_ev_flags(&ev, flags);
    IOT_LEAVE(r);
}

/* readlink family: path = the link, req = the buffer's size, ret = the target's length (what
 * was stored).  glibc 2.36 makes readlink's syscall readlink; readlinkat(AT_FDCWD) is the same. */
#define READLINK_BODY(FN, real_call, raw_call, dirfd, path, n)          \
    IOT_ENTER(FN, real_call);                                           \
    IOT_PATH_CALL(ssize_t, dirfd, path, 0, IOT_FAST(raw_call, real_call)); \
    iot_ev_req(&ev, (int64_t)(n));                                      \
    IOT_LEAVE(r)

IOT_API ssize_t readlink(const char *path, char *buf, size_t n)
{
    IOT_REAL(readlink);
    READLINK_BODY(IOT_FN_readlink, real_readlink(path, buf, n),
                  IOT_SYSRAW(readlinkat, AT_FDCWD, path, buf, n), AT_FDCWD, path, n);
}

IOT_API ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t n)
{
    IOT_REAL(readlinkat);
    READLINK_BODY(IOT_FN_readlinkat, real_readlinkat(dirfd, path, buf, n),
                  IOT_SYSRAW(readlinkat, dirfd, path, buf, n), dirfd, path, n);
}

/* The fortified entry points check the buffer size first, as glibc's do. */
extern ssize_t __readlink_chk(const char *, char *, size_t, size_t);
extern ssize_t __readlinkat_chk(int, const char *, char *, size_t, size_t);

IOT_API ssize_t __readlink_chk(const char *path, char *buf, size_t n, size_t buflen)
{
    if (n > buflen)
        __chk_fail();
    IOT_REAL(__readlink_chk);
    READLINK_BODY(IOT_FN_readlink, real___readlink_chk(path, buf, n, buflen),
                  IOT_SYSRAW(readlinkat, AT_FDCWD, path, buf, n), AT_FDCWD, path, n);
}

IOT_API ssize_t __readlinkat_chk(int dirfd, const char *path, char *buf, size_t n, size_t buflen)
{
    if (n > buflen)
        __chk_fail();
    IOT_REAL(__readlinkat_chk);
    READLINK_BODY(IOT_FN_readlinkat, real___readlinkat_chk(dirfd, path, buf, n, buflen),
                  IOT_SYSRAW(readlinkat, dirfd, path, buf, n), dirfd, path, n);
}

/* rename family: path = the old name, aux = the string id of the new one. */
static void new_name(iot_ev *ev, int newdir, const char *new)
{
    if (ev->err != EFAULT)
        iot_ev_aux(ev, iot_path_id_at(newdir, new));
}

IOT_API int rename(const char *old, const char *new)
{
    IOT_REAL(rename);
    PATH_BODY(IOT_FN_rename, real_rename(old, new), IOT_SYSRAW(rename, old, new), AT_FDCWD,
              old, 0);
    new_name(&ev, AT_FDCWD, new);
    IOT_LEAVE(r);
}

IOT_API int renameat(int olddir, const char *old, int newdir, const char *new)
{
    IOT_REAL(renameat);
    PATH_BODY(IOT_FN_renameat, real_renameat(olddir, old, newdir, new),
              IOT_SYSRAW(renameat, olddir, old, newdir, new), olddir, old, 0);
    new_name(&ev, newdir, new);
    IOT_LEAVE(r);
}

IOT_API int renameat2(int olddir, const char *old, int newdir, const char *new, unsigned flags)
{
    IOT_REAL(renameat2);
    PATH_BODY(IOT_FN_renameat2, real_renameat2(olddir, old, newdir, new, flags),
              IOT_SYSRAW(renameat2, olddir, old, newdir, new, flags), olddir, old, 0);
    new_name(&ev, newdir, new);
    iot_ev_flags(&ev, flags);
    IOT_LEAVE(r);
}

IOT_API int mkdir(const char *path, mode_t mode)
{
    IOT_REAL(mkdir);
    PATH_BODY(IOT_FN_mkdir, real_mkdir(path, mode), IOT_SYSRAW(mkdir, path, mode), AT_FDCWD,
              path, 0);
    iot_ev_mode(&ev, mode);
    IOT_LEAVE(r);
}

IOT_API int mkdirat(int dirfd, const char *path, mode_t mode)
{
    IOT_REAL(mkdirat);
    PATH_BODY(IOT_FN_mkdirat, real_mkdirat(dirfd, path, mode),
              IOT_SYSRAW(mkdirat, dirfd, path, mode), dirfd, path, 0);
    iot_ev_mode(&ev, mode);
    IOT_LEAVE(r);
}

IOT_API int rmdir(const char *path)
{
    IOT_REAL(rmdir);
    PATH_BODY(IOT_FN_rmdir, real_rmdir(path), IOT_SYSRAW(rmdir, path), AT_FDCWD, path, 0);
    IOT_LEAVE(r);
}

/* offset = the new length, as for ftruncate. */
IOT_API int truncate(const char *path, off_t len)
{
    IOT_REAL(truncate);
    PATH_BODY(IOT_FN_truncate, real_truncate(path, len), IOT_SYSRAW(truncate, path, len),
              AT_FDCWD, path, 0);
    iot_ev_off(&ev, len);
    IOT_LEAVE(r);
}
IOT_ALIAS(truncate, truncate64);

/* ---- working directory: relative paths of later calls are resolved against it ---- */

IOT_API int chdir(const char *path)
{
    IOT_REAL(chdir);
    /* chdir and fchdir do not stop (not in the table) */
    PATH_BODY(IOT_FN_chdir, real_chdir(path), real_chdir(path), AT_FDCWD, path,
              0); /* against the old cwd */
    if (r == 0)
        iot_cwd_changed();
    IOT_LEAVE(r);
}

IOT_API int fchdir(int fd)
{
    IOT_REAL(fchdir);
    FD_BODY(IOT_FN_fchdir, real_fchdir(fd), real_fchdir(fd), fd);
    if (r == 0)
        iot_cwd_changed();
    IOT_LEAVE(r);
}

/* ---- directory streams: ret is 1 for a DIR or an entry returned, 0 for NULL ----
 * glibc's own opendir/readdir/closedir reach the kernel through internal calls, never through
 * the open/close wrappers, so a directory stream shows up only here. */

/* The stream's descriptor is registered like an open()'s, so fd events on it (fstat, fchdir,
 * openat relative to it) carry the directory's path. */
static void dir_opened(iot_ev *ev, DIR *d)
{
    iot_ev_opened(ev, d ? dirfd(d) : -1, O_RDONLY | O_DIRECTORY);
}

IOT_API DIR *opendir(const char *path)
{
    IOT_REAL(opendir);
    iot_kio_fds_listed(path); /* before any shape: a listing of the app's descriptors */
    IOT_ENTER(IOT_FN_opendir, real_opendir(path));
    IOT_CALL(DIR *, real_opendir(path), r != NULL, r == NULL);
    iot_ev_path(&ev, path);
    dir_opened(&ev, r);
    IOT_LEAVE(r);
}

IOT_API DIR *fdopendir(int fd)
{
    IOT_REAL(fdopendir);
    IOT_ENTER(IOT_FN_fdopendir, real_fdopendir(fd));
    IOT_CALL(DIR *, real_fdopendir(fd), r != NULL, r == NULL);
    iot_ev_fd(&ev, fd);
    iot_ev_fdpath(&ev, fd);
    IOT_LEAVE(r);
}

/* NULL is both the end of the stream and an error: the idiom is errno = 0 before the call.  The
 * wrapper clears errno itself to tell them apart, and puts back the app's value when readdir
 * left it alone, so the app sees errno exactly as untraced. */
static int readdir_failed(int got, int app_errno)
{
    int failed = !got && errno != 0;
    if (errno == 0)
        errno = app_errno;
    return failed;
}

#define READDIR_BODY(real_call)                                         \
    int app_errno = errno;                                              \
    IOT_ENTER(IOT_FN_readdir, real_call);                               \
    errno = 0;                                                          \
    IOT_CALL(__auto_type, real_call, r != NULL, readdir_failed(r != NULL, app_errno)); \
    int fd = dirfd(d);                                                  \
    iot_ev_fd(&ev, fd);                                                 \
    iot_ev_fdpath(&ev, fd);                                             \
    IOT_LEAVE(r)

IOT_API struct dirent *readdir(DIR *d)
{
    IOT_REAL(readdir);
    READDIR_BODY(real_readdir(d));
}

IOT_API struct dirent64 *readdir64(DIR *d)
{
    IOT_REAL(readdir64);
    READDIR_BODY(real_readdir64(d));
}

IOT_API int closedir(DIR *d)
{
    IOT_REAL(closedir);
    IOT_ENTER(IOT_FN_closedir, real_closedir(d));
    int fd = dirfd(d);
    uint32_t path = iot_fd_path(fd);
    IOT_CALL(int, real_closedir(d), r, r < 0);
    iot_ev_fd(&ev, fd);
    ev.path = path;
    iot_fd_closed(fd); /* closedir frees the stream and its descriptor even when it fails */
    IOT_LEAVE(r);
}

/* ---- permissions, owners, links, times: what real programs call (tar, rsync, make, git) ---- */

IOT_API int chmod(const char *path, mode_t mode)
{
    IOT_REAL(chmod);
    PATH_BODY(IOT_FN_chmod, real_chmod(path, mode), IOT_SYSRAW(chmod, path, mode), AT_FDCWD,
              path, 0);
    iot_ev_mode(&ev, mode);
    IOT_LEAVE(r);
}

IOT_API int fchmod(int fd, mode_t mode)
{
    IOT_REAL(fchmod);
    FD_BODY(IOT_FN_fchmod, real_fchmod(fd, mode), IOT_SYSRAW(fchmod, fd, mode), fd);
    iot_ev_mode(&ev, mode);
    IOT_LEAVE(r);
}

/* glibc: the fchmodat syscall for flags 0; AT_SYMLINK_NOFOLLOW is its own emulation (O_PATH,
 * /proc/self/fd) and other flags EINVAL: both left to libc, inside the wrapper */
IOT_API int fchmodat(int dirfd, const char *path, mode_t mode, int flags)
{
    IOT_REAL(fchmodat);
    PATH_BODY(IOT_FN_fchmodat, real_fchmodat(dirfd, path, mode, flags),
              flags ? real_fchmodat(dirfd, path, mode, flags)
                    : IOT_SYSRAW(fchmodat, dirfd, path, mode),
              dirfd, path, flags);
    iot_ev_mode(&ev, mode);
    iot_ev_flags(&ev, flags);
    IOT_LEAVE(r);
}

/* chown family: owner and group are not kept (ret and errno are) */
IOT_API int chown(const char *path, uid_t owner, gid_t group)
{
    IOT_REAL(chown);
    PATH_BODY(IOT_FN_chown, real_chown(path, owner, group),
              IOT_SYSRAW(chown, path, owner, group), AT_FDCWD, path, 0);
    IOT_LEAVE(r);
}

IOT_API int lchown(const char *path, uid_t owner, gid_t group)
{
    IOT_REAL(lchown);
    PATH_BODY(IOT_FN_lchown, real_lchown(path, owner, group),
              IOT_SYSRAW(lchown, path, owner, group), AT_FDCWD, path, 0);
    IOT_LEAVE(r);
}

IOT_API int fchown(int fd, uid_t owner, gid_t group)
{
    IOT_REAL(fchown);
    FD_BODY(IOT_FN_fchown, real_fchown(fd, owner, group),
                IOT_SYSRAW(fchown, fd, owner, group), fd);
    IOT_LEAVE(r);
}

IOT_API int fchownat(int dirfd, const char *path, uid_t owner, gid_t group, int flags)
{
    IOT_REAL(fchownat);
    PATH_BODY(IOT_FN_fchownat, real_fchownat(dirfd, path, owner, group, flags),
              IOT_SYSRAW(fchownat, dirfd, path, owner, group, flags), dirfd, path, flags);
    iot_ev_flags(&ev, flags);
    IOT_LEAVE(r);
}

/* link family: path = the existing file, aux = the string id of the new name (as rename) */
IOT_API int link(const char *old, const char *new)
{
    IOT_REAL(link);
    PATH_BODY(IOT_FN_link, real_link(old, new), IOT_SYSRAW(link, old, new), AT_FDCWD, old, 0);
    new_name(&ev, AT_FDCWD, new);
    IOT_LEAVE(r);
}

IOT_API int linkat(int olddir, const char *old, int newdir, const char *new, int flags)
{
    IOT_REAL(linkat);
    PATH_BODY(IOT_FN_linkat, real_linkat(olddir, old, newdir, new, flags),
              IOT_SYSRAW(linkat, olddir, old, newdir, new, flags), olddir, old, flags);
    new_name(&ev, newdir, new);
    iot_ev_flags(&ev, flags);
    IOT_LEAVE(r);
}

/* symlink family: path = the link made, aux = the string id of its target, as given */
static void target(iot_ev *ev, const char *to)
{
    if (ev->err != EFAULT && to)
        iot_ev_aux(ev, iot_intern_string(to, strlen(to)));
}

IOT_API int symlink(const char *to, const char *path)
{
    IOT_REAL(symlink);
    PATH_BODY(IOT_FN_symlink, real_symlink(to, path), IOT_SYSRAW(symlink, to, path), AT_FDCWD,
              path, 0);
    target(&ev, to);
    IOT_LEAVE(r);
}

IOT_API int symlinkat(const char *to, int dirfd, const char *path)
{
    IOT_REAL(symlinkat);
    PATH_BODY(IOT_FN_symlinkat, real_symlinkat(to, dirfd, path),
              IOT_SYSRAW(symlinkat, to, dirfd, path), dirfd, path, 0);
    target(&ev, to);
    IOT_LEAVE(r);
}

/* times: glibc's own checks and conversions (a NULL path, fd < 0, timevals) stay libc's */
IOT_API int utimensat(int dirfd, const char *path, const struct timespec t[2], int flags)
{
    IOT_REAL(utimensat);
    PATH_BODY(IOT_FN_utimensat, real_utimensat(dirfd, path, t, flags),
              real_utimensat(dirfd, path, t, flags), dirfd, path, flags);
    iot_ev_flags(&ev, flags);
    IOT_LEAVE(r);
}

IOT_API int futimens(int fd, const struct timespec t[2])
{
    IOT_REAL(futimens);
    FD_BODY(IOT_FN_futimens, real_futimens(fd, t), real_futimens(fd, t), fd);
    IOT_LEAVE(r);
}

IOT_API int utimes(const char *path, const struct timeval t[2])
{
    IOT_REAL(utimes);
    PATH_BODY(IOT_FN_utimes, real_utimes(path, t), real_utimes(path, t), AT_FDCWD, path, 0);
    IOT_LEAVE(r);
}

/* the older names: utime and lutimes are recorded as utimes (lutimes with flags
 * AT_SYMLINK_NOFOLLOW), futimes as futimens */
IOT_API int utime(const char *path, const struct utimbuf *t)
{
    IOT_REAL(utime);
    PATH_BODY(IOT_FN_utimes, real_utime(path, t), real_utime(path, t), AT_FDCWD, path, 0);
    IOT_LEAVE(r);
}

IOT_API int lutimes(const char *path, const struct timeval t[2])
{
    IOT_REAL(lutimes);
    PATH_BODY(IOT_FN_utimes, real_lutimes(path, t), real_lutimes(path, t), AT_FDCWD, path, 0);
    iot_ev_flags(&ev, AT_SYMLINK_NOFOLLOW);
    IOT_LEAVE(r);
}

IOT_API int futimes(int fd, const struct timeval t[2])
{
    IOT_REAL(futimes);
    FD_BODY(IOT_FN_futimens, real_futimes(fd, t), real_futimes(fd, t), fd);
    IOT_LEAVE(r);
}

/* ---- realpath: glibc's lstat/readlink walk, inside; ret 1 (resolved) or 0 (NULL) ---- */

#define REALPATH_BODY(real_call)                                        \
    IOT_ENTER(IOT_FN_realpath, real_call);                              \
    IOT_CALL(char *, real_call, r != NULL, r == NULL);                  \
    iot_ev_at(&ev, AT_FDCWD, path, 0);                                  \
    IOT_LEAVE(r)

IOT_API char *realpath(const char *path, char *resolved)
{
    IOT_REAL(realpath);
    REALPATH_BODY(real_realpath(path, resolved));
}

IOT_API char *canonicalize_file_name(const char *path)
{
    IOT_REAL(canonicalize_file_name);
    REALPATH_BODY(real_canonicalize_file_name(path));
}

extern char *__realpath_chk(const char *, char *, size_t);

IOT_API char *__realpath_chk(const char *path, char *resolved, size_t resolvedlen)
{
    if (resolvedlen < PATH_MAX)
        __chk_fail();
    IOT_REAL(__realpath_chk);
    REALPATH_BODY(real___realpath_chk(path, resolved, resolvedlen));
}
