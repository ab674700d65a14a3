/* Wrappers: descriptor I/O, in the shapes of shim.h; under a stracer the real call is the raw
 * syscall carrying the cookie (IOT_FAST, sysraw.h): no ptrace stop. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shim.h"
#include "sysraw.h"

extern int __dprintf_chk(int, int, const char *, ...);
extern int __vdprintf_chk(int, int, const char *, va_list);

static int has_mode(int flags)
{
    return (flags & O_CREAT) || (flags & __O_TMPFILE) == __O_TMPFILE;
}

/* The bytes an iovec array asks for, read after the call: not after a failure the kernel
 * returns before it read the array whole (EBADF, ESPIPE: not yet; EFAULT: unreadable; EINVAL: a
 * count past IOV_MAX), where reading it would fault or overrun here as it did not there: 0. */
static int64_t iov_total(const struct iovec *iov, int n, int err)
{
    if (err == EBADF || err == ESPIPE || err == EFAULT || err == EINVAL)
        return 0;
    int64_t t = 0;
    for (int i = 0; i < n; i++)
        t += (int64_t)iov[i].iov_len;
    return t;
}

static int do_openat(unsigned fn, int dirfd, const char *path, int flags, mode_t mode,
                     int (*real)(int, const char *, int, ...))
{
    IOT_ENTER(fn, real(dirfd, path, flags, mode));
    IOT_CALL(int, IOT_FAST(IOT_SYSRAW_CANCEL(openat, dirfd, path, flags, mode),
                           real(dirfd, path, flags, mode)), r, r < 0);
    iot_ev_path_at(&ev, dirfd, path); /* "" made absolute, as the kernel reads it */
    iot_ev_flags(&ev, flags);
    if (has_mode(flags))
        iot_ev_mode(&ev, mode);
    iot_ev_opened(&ev, r, flags);
    IOT_LEAVE(r);
}

/* open(path, ...) through openat's real function keeps one code path for the open family. */
#define OPEN_MODE(flags, mode)            \
    mode_t mode = 0;                      \
    if (has_mode(flags)) {                \
        va_list ap;                       \
        va_start(ap, flags);              \
        mode = (mode_t)va_arg(ap, int);   \
        va_end(ap);                       \
    }

IOT_API int openat(int dirfd, const char *path, int flags, ...)
{
    IOT_REAL(openat);
    OPEN_MODE(flags, mode);
    return do_openat(IOT_FN_openat, dirfd, path, flags, mode, real_openat);
}
IOT_ALIAS(openat, openat64);

IOT_API int open(const char *path, int flags, ...)
{
    IOT_REAL(openat);
    OPEN_MODE(flags, mode);
    return do_openat(IOT_FN_open, AT_FDCWD, path, flags, mode, real_openat);
}
IOT_ALIAS(open, open64);

/* _FORTIFY_SOURCE builds call these when the flags are not a compile-time constant.  Flags
 * that need a mode are a fortify failure: libc's own function aborts with its message. */
IOT_API int __open_2(const char *path, int flags)
{
    IOT_REAL(openat);
    IOT_REAL(__open_2);
    if (has_mode(flags))
        return real___open_2(path, flags);
    return do_openat(IOT_FN_open, AT_FDCWD, path, flags, 0, real_openat);
}
IOT_ALIAS(__open_2, __open64_2);

IOT_API int __openat_2(int dirfd, const char *path, int flags)
{
    IOT_REAL(openat);
    IOT_REAL(__openat_2);
    if (has_mode(flags))
        return real___openat_2(dirfd, path, flags);
    return do_openat(IOT_FN_openat, dirfd, path, flags, 0, real_openat);
}
IOT_ALIAS(__openat_2, __openat64_2);

IOT_API int creat(const char *path, mode_t mode)
{
    IOT_REAL(openat);
    return do_openat(IOT_FN_creat, AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode,
                     real_openat);
}
IOT_ALIAS(creat, creat64);

IOT_API int close(int fd)
{
    if (IOT_UNLIKELY(iot_t.unwinding) && iot_from_unwind(__builtin_return_address(0)))
        return iot_unwind_close(fd);
    IOT_REAL(close);
    /* a thread's counters descriptor (kio.c), above the app's numbers: none of the app's */
    int own = IOT_UNLIKELY(fd >= iot_kio_kept_min) && iot_kio_kept(fd);
    IOT_ENTER(IOT_FN_close, own ? (errno = EBADF, -1) : real_close(fd));
    uint32_t path = iot_fd_path(fd); /* the table forgets it below */
    IOT_CALL(int, own ? (errno = EBADF, -1) : IOT_FAST(IOT_SYSRAW_CANCEL(close, fd), real_close(fd)),
             r, r < 0);
    iot_ev_fd(&ev, fd);
    ev.path = path;
    iot_fd_closed(fd);
    IOT_LEAVE(r);
}

IOT_API int close_range(unsigned lo, unsigned hi, int flags)
{
    IOT_REAL(close_range);
    IOT_ENTER(IOT_FN_close_range, real_close_range(lo, hi, flags));
    IOT_CALL(int, IOT_FAST(IOT_SYSRAW(close_range, lo, hi, flags), real_close_range(lo, hi, flags)),
             r, r < 0);
    iot_ev_fd(&ev, (int)lo);
    iot_ev_aux(&ev, hi);
    iot_ev_flags(&ev, flags);
    if (r == 0 && !(flags & CLOSE_RANGE_CLOEXEC)) {
        iot_fd_close_range(lo, hi);
    }
    IOT_LEAVE(r);
}

IOT_API void closefrom(int lo)
{
    IOT_REAL(closefrom);
    IOT_ENTER(IOT_FN_close_range, real_closefrom(lo));
    /* glibc: close_range(max(lo, 0), ~0U, 0), its fallback (and fortify failure) if refused */
    IOT_CALL(int, (!iot_stracing || IOT_SYSRAW(close_range, lo < 0 ? 0 : lo, ~0U, 0) != 0
                       ? real_closefrom(lo) : (void)0, 0),
             0, 0);
    iot_ev_fd(&ev, lo);
    iot_ev_aux(&ev, ~0u);
    iot_fd_close_range((unsigned)lo, ~0u);
    IOT_LEAVE();
}

/* read/write family: the offset recorded is the one the call used: the descriptor's position,
 * which moves on by the bytes done (at_pos), else `off`; the wrapper adds its fields and leaves. */
#define RW_CALL(FN, real_call, raw_call, nbytes, buf, iovcnt, at_pos, off) \
    IOT_ENTER(FN, real_call);                                           \
    int64_t pos = (at_pos) ? iot_fd_pos(fd) : (off);                    \
    IOT_FD_CALL(ssize_t, fd, IOT_FAST(raw_call, real_call));            \
    iot_ev_req(&ev, nbytes);                                            \
    iot_ev_off(&ev, (at_pos) ? iot_fd_advance(fd, pos, r) : pos);       \
    iot_ev_data(&ev, buf, iovcnt, r)
#define RW_BODY(FN, real_call, raw_call, nbytes, buf, iovcnt)          \
    RW_CALL(FN, real_call, raw_call, nbytes, buf, iovcnt, 1, 0);        \
    IOT_LEAVE(r)
/* positioned family: the offset is the argument, the descriptor's position is untouched. */
#define PRW_BODY(FN, real_call, raw_call, nbytes, offset, buf, iovcnt) \
    RW_CALL(FN, real_call, raw_call, nbytes, buf, iovcnt, 0, offset);   \
    IOT_LEAVE(r)

IOT_API ssize_t read(int fd, void *buf, size_t n)
{
    if (IOT_UNLIKELY(iot_t.unwinding) && iot_from_unwind(__builtin_return_address(0)))
        return iot_unwind_read(fd, buf, n);
    IOT_REAL(read);
    RW_BODY(IOT_FN_read, real_read(fd, buf, n), IOT_SYSRAW_CANCEL(read, fd, buf, n), (int64_t)n,
            buf, -1);
}

/* The fortified entry points check the buffer size first, as glibc's do. */
IOT_API ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    if (n > buflen)
        __chk_fail();
    IOT_REAL(__read_chk);
    RW_BODY(IOT_FN_read, real___read_chk(fd, buf, n, buflen),
            IOT_SYSRAW_CANCEL(read, fd, buf, n), (int64_t)n, buf, -1);
}

IOT_API ssize_t write(int fd, const void *buf, size_t n)
{
    IOT_REAL(write);
    RW_BODY(IOT_FN_write, real_write(fd, buf, n), IOT_SYSRAW_CANCEL(write, fd, buf, n),
            (int64_t)n, buf, -1);
}

/* dprintf family: libc prints through a stream of its own on the descriptor and flushes it
 * before it returns, one write per buffer's worth, inside libc (busybox's patch writes every
 * line so): its writes are measured around the call (calls.py KERNEL_IO_FUNCS "in"; covered
 * stops under the stracer).  `flag` >= 0: the fortified entry. */
static int do_dprintf(int fd, int flag, const char *fmt, va_list ap)
{
    IOT_REAL(vdprintf);
    IOT_REAL(__vdprintf_chk);
#define VDPRINTF_REAL \
    (flag < 0 ? real_vdprintf(fd, fmt, ap) : real___vdprintf_chk(fd, flag, fmt, ap))
    IOT_ENTER(IOT_FN_dprintf, VDPRINTF_REAL);
    int64_t pos = iot_fd_pos(fd);
    IOT_FD_CALL(int, fd, VDPRINTF_REAL);
    iot_ev_off(&ev, iot_fd_advance(fd, pos, r));
    IOT_LEAVE(r);
#undef VDPRINTF_REAL
}

IOT_API int dprintf(int fd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = do_dprintf(fd, -1, fmt, ap);
    va_end(ap);
    return r;
}

IOT_API int __dprintf_chk(int fd, int flag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = do_dprintf(fd, flag, fmt, ap);
    va_end(ap);
    return r;
}

IOT_API int vdprintf(int fd, const char *fmt, va_list ap)
{
    return do_dprintf(fd, -1, fmt, ap);
}

IOT_API int __vdprintf_chk(int fd, int flag, const char *fmt, va_list ap)
{
    return do_dprintf(fd, flag, fmt, ap);
}

IOT_API ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
    IOT_REAL(readv);
    RW_BODY(IOT_FN_readv, real_readv(fd, iov, cnt), IOT_SYSRAW_CANCEL(readv, fd, iov, cnt),
            iov_total(iov, cnt, ev.err), iov, cnt);
}

IOT_API ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    IOT_REAL(writev);
    RW_BODY(IOT_FN_writev, real_writev(fd, iov, cnt), IOT_SYSRAW_CANCEL(writev, fd, iov, cnt),
            iov_total(iov, cnt, ev.err), iov, cnt);
}

IOT_API ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    IOT_REAL(pread);
    PRW_BODY(IOT_FN_pread, real_pread(fd, buf, n, off),
             IOT_SYSRAW_CANCEL(pread64, fd, buf, n, off), (int64_t)n, off, buf, -1);
}
IOT_ALIAS(pread, pread64);

IOT_API ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
{
    if (n > buflen)
        __chk_fail();
    IOT_REAL(__pread_chk);
    PRW_BODY(IOT_FN_pread, real___pread_chk(fd, buf, n, off, buflen),
             IOT_SYSRAW_CANCEL(pread64, fd, buf, n, off), (int64_t)n, off, buf, -1);
}
IOT_ALIAS(__pread_chk, __pread64_chk);

IOT_API ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    IOT_REAL(pwrite);
    PRW_BODY(IOT_FN_pwrite, real_pwrite(fd, buf, n, off),
             IOT_SYSRAW_CANCEL(pwrite64, fd, buf, n, off), (int64_t)n, off, buf, -1);
}
IOT_ALIAS(pwrite, pwrite64);

IOT_API ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
    IOT_REAL(preadv);
    PRW_BODY(IOT_FN_preadv, real_preadv(fd, iov, cnt, off),
             IOT_SYSRAW_CANCEL(preadv, fd, iov, cnt, off, 0), iov_total(iov, cnt, ev.err), off, iov,
             cnt);
}
IOT_ALIAS(preadv, preadv64);

IOT_API ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    IOT_REAL(pwritev);
    PRW_BODY(IOT_FN_pwritev, real_pwritev(fd, iov, cnt, off),
             IOT_SYSRAW_CANCEL(pwritev, fd, iov, cnt, off, 0), iov_total(iov, cnt, ev.err), off, iov,
             cnt);
}
IOT_ALIAS(pwritev, pwritev64);

/* preadv2/pwritev2 with offset -1 use and move the descriptor's position.  Six arguments: no
 * raw syscall (sysraw.h). */
#define RWV2_BODY(FN, real_call)                                        \
    RW_CALL(FN, real_call, real_call, iov_total(iov, cnt, ev.err), iov, cnt, off == -1, off); \
    iot_ev_flags(&ev, flags);                                           \
    IOT_LEAVE(r)

IOT_API ssize_t preadv2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
    IOT_REAL(preadv2);
    RWV2_BODY(IOT_FN_preadv2, real_preadv2(fd, iov, cnt, off, flags));
}
IOT_ALIAS(preadv2, preadv64v2);

IOT_API ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
    IOT_REAL(pwritev2);
    RWV2_BODY(IOT_FN_pwritev2, real_pwritev2(fd, iov, cnt, off, flags));
}
IOT_ALIAS(pwritev2, pwritev64v2);

IOT_API off_t lseek(int fd, off_t off, int whence)
{
    IOT_REAL(lseek);
    IOT_ENTER(IOT_FN_lseek, real_lseek(fd, off, whence));
    IOT_FD_CALL(off_t, fd,
                IOT_FAST(IOT_SYSRAW(lseek, fd, off, whence), real_lseek(fd, off, whence)));
    iot_ev_off(&ev, off);
    iot_ev_aux(&ev, whence);
    if (r >= 0)
        iot_fd_seek(fd, r);
    IOT_LEAVE(r);
}
IOT_ALIAS(lseek, lseek64);


/* dup family: the new descriptor is the old one's from now on; aux = the number asked for */
static void duped(int fd, int r)
{
    if (r < 0)
        return;
    iot_fd_dup(fd, r);
}

IOT_API int dup(int fd)
{
    IOT_REAL(dup);
    IOT_ENTER(IOT_FN_dup, real_dup(fd));
    IOT_FD_CALL(int, fd, IOT_FAST(IOT_SYSRAW(dup, fd), real_dup(fd)));
    duped(fd, r);
    IOT_LEAVE(r);
}

IOT_API int dup2(int fd, int newfd)
{
    IOT_REAL(dup2);
    if (IOT_UNLIKELY(newfd >= iot_kio_kept_min)) /* onto a thread's counters descriptor? */
        iot_kio_fd_reused(newfd);
    IOT_ENTER(IOT_FN_dup2, real_dup2(fd, newfd));
    IOT_FD_CALL(int, fd, IOT_FAST(IOT_SYSRAW(dup2, fd, newfd), real_dup2(fd, newfd)));
    iot_ev_aux(&ev, newfd);
    duped(fd, r);
    IOT_LEAVE(r);
}

IOT_API int dup3(int fd, int newfd, int flags)
{
    IOT_REAL(dup3);
    if (IOT_UNLIKELY(newfd >= iot_kio_kept_min)) /* onto a thread's counters descriptor? */
        iot_kio_fd_reused(newfd);
    IOT_ENTER(IOT_FN_dup3, real_dup3(fd, newfd, flags));
    IOT_FD_CALL(int, fd, IOT_FAST(IOT_SYSRAW(dup3, fd, newfd, flags), real_dup3(fd, newfd, flags)));
    iot_ev_aux(&ev, newfd);
    iot_ev_flags(&ev, flags);
    duped(fd, r);
    IOT_LEAVE(r);
}

/* fcntl: the argument is an int or a pointer depending on cmd; an integer-sized read of the
 * va_list is what glibc itself does. */
IOT_API int fcntl(int fd, int cmd, ...)
{
    IOT_REAL(fcntl);
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    IOT_ENTER(IOT_FN_fcntl, real_fcntl(fd, cmd, arg));
    /* only the F_DUPFD commands stop (the filter's "dupfd"); F_SETLKW's cancellation and
     * F_GETOWN's conversion stay libc's */
    int dupfd = cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC;
    IOT_FD_CALL(int, fd, dupfd ? IOT_FAST(IOT_SYSRAW(fcntl, fd, cmd, arg), real_fcntl(fd, cmd, arg))
                               : real_fcntl(fd, cmd, arg));
    iot_ev_flags(&ev, cmd);
    long iarg = (long)arg;
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC || cmd == F_SETFL || cmd == F_SETFD)
        iot_ev_mode(&ev, iarg);
    if ((cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && r >= 0)
        iot_fd_dup(fd, r);
    if (cmd == F_SETFL && r == 0)
        iot_fd_set_append(fd, (iarg & O_APPEND) != 0);
    IOT_LEAVE(r);
}
IOT_ALIAS(fcntl, fcntl64);

IOT_API int fsync(int fd)
{
    IOT_REAL(fsync);
    IOT_ENTER(IOT_FN_fsync, real_fsync(fd));
    IOT_FD_CALL(int, fd, IOT_FAST(IOT_SYSRAW_CANCEL(fsync, fd), real_fsync(fd)));
    IOT_LEAVE(r);
}

IOT_API int fdatasync(int fd)
{
    IOT_REAL(fdatasync);
    IOT_ENTER(IOT_FN_fdatasync, real_fdatasync(fd));
    IOT_FD_CALL(int, fd, IOT_FAST(IOT_SYSRAW_CANCEL(fdatasync, fd), real_fdatasync(fd)));
    IOT_LEAVE(r);
}

IOT_API int ftruncate(int fd, off_t len)
{
    IOT_REAL(ftruncate);
    IOT_ENTER(IOT_FN_ftruncate, real_ftruncate(fd, len));
    IOT_FD_CALL(int, fd, IOT_FAST(IOT_SYSRAW(ftruncate, fd, len), real_ftruncate(fd, len)));
    iot_ev_off(&ev, len);
    IOT_LEAVE(r);
}
IOT_ALIAS(ftruncate, ftruncate64);

IOT_API int fallocate(int fd, int mode, off_t off, off_t len)
{
    IOT_REAL(fallocate);
    IOT_ENTER(IOT_FN_fallocate, real_fallocate(fd, mode, off, len));
    IOT_FD_CALL(int, fd, IOT_FAST(IOT_SYSRAW_CANCEL(fallocate, fd, mode, off, len), /* as glibc's */
                                  real_fallocate(fd, mode, off, len)));
    iot_ev_mode(&ev, mode);
    iot_ev_off(&ev, off);
    iot_ev_req(&ev, len);
    IOT_LEAVE(r);
}
IOT_ALIAS(fallocate, fallocate64);

/* posix_fallocate returns the error number.  libc's own call, even under a stracer: where the
 * file system refuses fallocate, glibc writes the range itself (its syscalls are covered). */
IOT_API int posix_fallocate(int fd, off_t off, off_t len)
{
    IOT_REAL(posix_fallocate);
    IOT_ENTER(IOT_FN_posix_fallocate, real_posix_fallocate(fd, off, len));
    IOT_FD_CALL(int, fd, real_posix_fallocate(fd, off, len));
    ev.err = r;
    iot_ev_off(&ev, off);
    iot_ev_req(&ev, len);
    IOT_LEAVE(r);
}
IOT_ALIAS(posix_fallocate, posix_fallocate64);

IOT_API int posix_fadvise(int fd, off_t off, off_t len, int advice)
{
    IOT_REAL(posix_fadvise);
    /* fadvise64 does not stop (not in the table) and returns the error number: libc's */
    IOT_ENTER(IOT_FN_posix_fadvise, real_posix_fadvise(fd, off, len, advice));
    IOT_FD_CALL(int, fd, real_posix_fadvise(fd, off, len, advice));
    iot_ev_off(&ev, off);
    iot_ev_req(&ev, len);
    iot_ev_flags(&ev, advice);
    IOT_LEAVE(r);
}
IOT_ALIAS(posix_fadvise, posix_fadvise64);

/* The calls with two ends (docs/format.md): fd, path, offset are the end written; fd2, path2,
 * offset2 the end read.  An offset given by pointer is the one used and the descriptor's
 * position does not move; else the position is used and advances. */
static int64_t end_at(int fd, const off_t *off) { return off ? *off : iot_fd_pos(fd); }
static int64_t end_used(int fd, const off_t *off, int64_t at, ssize_t r)
{
    return off ? at : iot_fd_advance(fd, at, r);
}

static void two_ends(iot_ev *ev, int in, const off_t *inoff, int64_t inat, int out,
                     const off_t *outoff, int64_t outat, size_t n, ssize_t r)
{
    iot_ev_fd(ev, out);
    iot_ev_fdpath(ev, out);
    iot_ev_req(ev, (int64_t)n);
    iot_ev_off(ev, end_used(out, outoff, outat, r));
    iot_ev_end2(ev, in, end_used(in, inoff, inat, r));
}

IOT_API ssize_t sendfile(int out, int in, off_t *off, size_t n)
{
    IOT_REAL(sendfile);
    IOT_ENTER(IOT_FN_sendfile, real_sendfile(out, in, off, n));
    int64_t inat = end_at(in, off), outat = iot_fd_pos(out);
    IOT_CALL(ssize_t,
             IOT_FAST(IOT_SYSRAW(sendfile, out, in, off, n), real_sendfile(out, in, off, n)), r,
             r < 0);
    two_ends(&ev, in, off, inat, out, NULL, outat, n, r);
    IOT_LEAVE(r);
}
IOT_ALIAS(sendfile, sendfile64);

IOT_API ssize_t copy_file_range(int in, off_t *inoff, int out, off_t *outoff, size_t n,
                                unsigned flags)
{
    IOT_REAL(copy_file_range);
    IOT_ENTER(IOT_FN_copy_file_range, real_copy_file_range(in, inoff, out, outoff, n, flags));
    int64_t inat = end_at(in, inoff), outat = end_at(out, outoff);
    /* six arguments: no raw syscall */
    IOT_CALL(ssize_t, real_copy_file_range(in, inoff, out, outoff, n, flags), r, r < 0);
    two_ends(&ev, in, inoff, inat, out, outoff, outat, n, r);
    iot_ev_flags(&ev, flags);
    IOT_LEAVE(r);
}

IOT_API ssize_t splice(int in, loff_t *inoff, int out, loff_t *outoff, size_t n, unsigned flags)
{
    IOT_REAL(splice);
    IOT_ENTER(IOT_FN_splice, real_splice(in, inoff, out, outoff, n, flags));
    int64_t inat = end_at(in, inoff), outat = end_at(out, outoff);
    IOT_CALL(ssize_t, real_splice(in, inoff, out, outoff, n, flags), r, r < 0); /* 6 arguments */
    two_ends(&ev, in, inoff, inat, out, outoff, outat, n, r);
    iot_ev_flags(&ev, flags);
    IOT_LEAVE(r);
}

/* tee(in, out, n): both pipes; the bytes stay in `in` as well (read without being consumed). */
IOT_API ssize_t tee(int in, int out, size_t n, unsigned flags)
{
    IOT_REAL(tee);
    IOT_ENTER(IOT_FN_tee, real_tee(in, out, n, flags));
    IOT_CALL(ssize_t,
             IOT_FAST(IOT_SYSRAW_CANCEL(tee, in, out, n, flags), real_tee(in, out, n, flags)), r,
             r < 0);
    two_ends(&ev, in, NULL, IOT_NO_OFFSET, out, NULL, IOT_NO_OFFSET, n, r);
    iot_ev_flags(&ev, flags);
    IOT_LEAVE(r);
}

static void pipe_ends(iot_ev *ev, int r, const int fds[2])
{
    if (r != 0)
        return;
    iot_ev_fd(ev, fds[0]);
    iot_ev_aux(ev, fds[1]);
    iot_fd_closed(fds[0]); /* learnt lazily from /proc: "pipe:[inode]" */
    iot_fd_closed(fds[1]);
}

IOT_API int pipe(int fds[2])
{
    if (IOT_UNLIKELY(iot_t.unwinding) && iot_from_unwind(__builtin_return_address(0)))
        return iot_unwind_pipe2(fds, 0);
    IOT_REAL(pipe);
    IOT_ENTER(IOT_FN_pipe, real_pipe(fds));
    IOT_CALL(int, IOT_FAST(IOT_SYSRAW(pipe, fds), real_pipe(fds)), r, r < 0);
    pipe_ends(&ev, r, fds);
    IOT_LEAVE(r);
}

IOT_API int pipe2(int fds[2], int flags)
{
    if (IOT_UNLIKELY(iot_t.unwinding) && iot_from_unwind(__builtin_return_address(0)))
        return iot_unwind_pipe2(fds, flags);
    IOT_REAL(pipe2);
    IOT_ENTER(IOT_FN_pipe2, real_pipe2(fds, flags));
    IOT_CALL(int, IOT_FAST(IOT_SYSRAW(pipe2, fds, flags), real_pipe2(fds, flags)), r, r < 0);
    iot_ev_flags(&ev, flags);
    pipe_ends(&ev, r, fds);
    IOT_LEAVE(r);
}

IOT_API int socket(int domain, int type, int proto)
{
    IOT_REAL(socket);
    IOT_ENTER(IOT_FN_socket, real_socket(domain, type, proto));
    IOT_CALL(int,
             IOT_FAST(IOT_SYSRAW(socket, domain, type, proto), real_socket(domain, type, proto)), r,
             r < 0);
    iot_ev_flags(&ev, domain);
    iot_ev_mode(&ev, type);
    iot_ev_aux(&ev, proto);
    if (r >= 0) {
        iot_ev_fd(&ev, r);
        iot_fd_closed(r); /* "socket:[inode]" on first use */
    }
    IOT_LEAVE(r);
}

/* glibc 2.36: the eventfd2 syscall; the descriptor's name is learnt on first use
 * ("anon_inode:[eventfd]") */
IOT_API int eventfd(unsigned int initval, int flags)
{
    IOT_REAL(eventfd);
    IOT_ENTER(IOT_FN_eventfd, real_eventfd(initval, flags));
    IOT_CALL(int, IOT_FAST(IOT_SYSRAW(eventfd2, initval, flags), real_eventfd(initval, flags)), r,
             r < 0);
    iot_ev_flags(&ev, flags);
    iot_ev_aux(&ev, initval);
    if (r >= 0) {
        iot_ev_fd(&ev, r);
        iot_fd_closed(r);
    }
    IOT_LEAVE(r);
}

/* The new descriptor's name ("socket:[inode]") is learnt on first use. */
static void accepted(iot_ev *ev, int flags, int r)
{
    if (flags)
        iot_ev_flags(ev, flags);
    if (r >= 0)
        iot_fd_closed(r);
}

IOT_API int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    IOT_REAL(accept);
    IOT_ENTER(IOT_FN_accept, real_accept(fd, addr, len));
    IOT_FD_CALL(int, fd,
                IOT_FAST(IOT_SYSRAW_CANCEL(accept, fd, addr, len), real_accept(fd, addr, len)));
    accepted(&ev, 0, r);
    IOT_LEAVE(r);
}

IOT_API int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    IOT_REAL(accept4);
    IOT_ENTER(IOT_FN_accept4, real_accept4(fd, addr, len, flags));
    IOT_FD_CALL(int, fd, IOT_FAST(IOT_SYSRAW_CANCEL(accept4, fd, addr, len, flags),
                                  real_accept4(fd, addr, len, flags)));
    accepted(&ev, flags, r);
    IOT_LEAVE(r);
}

IOT_API int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    IOT_REAL(connect);
    IOT_ENTER(IOT_FN_connect, real_connect(fd, addr, len));
    IOT_FD_CALL(int, fd,
                IOT_FAST(IOT_SYSRAW_CANCEL(connect, fd, addr, len), real_connect(fd, addr, len)));
    if (addr && addr->sa_family == AF_UNIX && len > sizeof(sa_family_t)) {
        const char *p = ((const char *)addr) + sizeof(sa_family_t);
        if (*p)
            iot_ev_path(&ev, p);
    }
    IOT_LEAVE(r);
}
