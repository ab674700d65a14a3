/* Wrappers: temporary files.  glibc makes their names and opens them inside (its internal
 * open, never the open wrapper), so a temporary file shows up only here.  The wrappers are in
 * the shapes of shim.h.
 *
 * mkstemp and its variants (mkostemp, mkstemps, mkostemps, and their 64 names) are one event,
 * mkstemp: path = the name made (the template as given when it fails), fd, flags = the open
 * flags glibc used (O_RDWR | O_CREAT | O_EXCL | the caller's), mode 0600.  The descriptor is
 * registered like an open()'s, so later calls on it carry the path.  Under a stracer the
 * shim makes the name and opens the file itself, with the cookie, as glibc 2.36's
 * __gen_tempname does (issue 19: glibc's open inside was a stop per call); only the random
 * letters are drawn otherwise (getrandom).  Not under the app's own seccomp filter: getrandom
 * is not glibc's there. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "shim.h"
#include "sysraw.h"

/* what glibc's __gen_tempname opens with */
#define TMP_FLAGS (O_RDWR | O_CREAT | O_EXCL)

/* glibc's __gen_tempname(tmpl, suffixlen, flags, __GT_FILE): the six X before the suffix
 * replaced by letters and digits until an O_EXCL open works (62^3 tries, then EEXIST); EINVAL
 * for a template without them; errno as it was on success; the template keeps the last name
 * tried on failure */
static int own_mkstemp(char *tmpl, int suffixlen, int flags)
{
    static const char az[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    size_t len = strlen(tmpl);
    if (suffixlen < 0 || len < 6 + (size_t)suffixlen ||
        strspn(tmpl + len - 6 - suffixlen, "X") < 6) {
        errno = EINVAL;
        return -1;
    }
    char *x = tmpl + len - 6 - suffixlen;
    int save = errno;
    for (unsigned n = 0; n < 62 * 62 * 62; n++) {
        uint64_t v;
        if (getrandom(&v, sizeof v, GRND_NONBLOCK) != sizeof v)
            v = iot_now() ^ (uint64_t)(uintptr_t)&v ^ n;
        for (int i = 0; i < 6; i++, v /= 62)
            x[i] = az[v % 62];
        int fd = (int)IOT_SYSRAW_CANCEL(openat, AT_FDCWD, tmpl,
                                        (flags & ~O_ACCMODE) | TMP_FLAGS, S_IRUSR | S_IWUSR);
        if (fd >= 0) {
            errno = save;
            return fd;
        }
        if (errno != EEXIST)
            return -1;
    }
    errno = EEXIST;
    return -1;
}

#define MKSTEMP_BODY(real_call, tmpl, suffixlen, oflags)                \
    IOT_ENTER(IOT_FN_mkstemp, real_call);                               \
    IOT_CALL(int, iot_stracing && !IOT_SANDBOXED() ? own_mkstemp(tmpl, suffixlen, oflags)  \
                                                   : real_call,                             \
             r, r < 0);                                                                     \
    tmp_name(&ev, tmpl);                                                \
    iot_ev_flags(&ev, TMP_FLAGS | (oflags));                            \
    iot_ev_mode(&ev, S_IRUSR | S_IWUSR);                                \
    iot_ev_opened(&ev, r, TMP_FLAGS | (oflags));                        \
    IOT_LEAVE(r)

/* The name made (the template as given on failure); not read if the pointer is bad. */
static void tmp_name(iot_ev *ev, const char *tmpl)
{
    if (tmpl && ev->err != EFAULT)
        iot_ev_path(ev, tmpl);
}

IOT_API int mkstemp(char *tmpl)
{
    IOT_REAL(mkstemp);
    MKSTEMP_BODY(real_mkstemp(tmpl), tmpl, 0, 0);
}
IOT_ALIAS(mkstemp, mkstemp64);

IOT_API int mkostemp(char *tmpl, int flags)
{
    IOT_REAL(mkostemp);
    MKSTEMP_BODY(real_mkostemp(tmpl, flags), tmpl, 0, flags);
}
IOT_ALIAS(mkostemp, mkostemp64);

IOT_API int mkstemps(char *tmpl, int suffixlen)
{
    IOT_REAL(mkstemps);
    MKSTEMP_BODY(real_mkstemps(tmpl, suffixlen), tmpl, suffixlen, 0);
}
IOT_ALIAS(mkstemps, mkstemps64);

IOT_API int mkostemps(char *tmpl, int suffixlen, int flags)
{
    IOT_REAL(mkostemps);
    MKSTEMP_BODY(real_mkostemps(tmpl, suffixlen, flags), tmpl, suffixlen, flags);
}
IOT_ALIAS(mkostemps, mkostemps64);

/* path = the directory made (the template as given when it fails); ret 1 or 0 (NULL) */
IOT_API char *mkdtemp(char *tmpl)
{
    IOT_REAL(mkdtemp);
    IOT_ENTER(IOT_FN_mkdtemp, real_mkdtemp(tmpl));
    IOT_CALL(char *, real_mkdtemp(tmpl), r != NULL, r == NULL);
    tmp_name(&ev, tmpl);
    iot_ev_mode(&ev, S_IRWXU);
    IOT_LEAVE(r);
}

/* fd = the stream's; its path is learnt from /proc on first use (an O_TMPFILE file has no
 * name: "/tmp/#123 (deleted)"); ret 1 or 0 (NULL) */
IOT_API FILE *tmpfile(void)
{
    IOT_REAL(tmpfile);
    IOT_ENTER(IOT_FN_tmpfile, real_tmpfile());
    IOT_CALL(FILE *, real_tmpfile(), r != NULL, r == NULL);
    if (r) {
        int fd = fileno(r);
        iot_fd_closed(fd); /* whatever the table held for this number is gone */
        iot_ev_fd(&ev, fd);
        iot_ev_fdpath(&ev, fd);
    }
    IOT_LEAVE(r);
}
IOT_ALIAS(tmpfile, tmpfile64);
