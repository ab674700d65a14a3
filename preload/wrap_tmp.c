/* Wrappers: temporary files.  glibc makes their names and opens them inside (its internal
 * open, never the open wrapper), so a temporary file shows up only here.  The wrappers are in
 * the shapes of shim.h.
 *
 * mkstemp and its variants (mkostemp, mkstemps, mkostemps, and their 64 names) are one event,
 * mkstemp: path = the name made (the template as given when it fails), fd, flags = the open
 * flags glibc used (O_RDWR | O_CREAT | O_EXCL | the caller's), mode 0600.  The descriptor is
 * registered like an open()'s, so later calls on it carry the path. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "shim.h"

/* what glibc's __gen_tempname opens with */
#define TMP_FLAGS (O_RDWR | O_CREAT | O_EXCL)

#define MKSTEMP_BODY(real_call, tmpl, oflags)                           \
    IOT_ENTER(IOT_FN_mkstemp, real_call);                               \
    IOT_CALL(int, real_call, r, r < 0);                                 \
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
    MKSTEMP_BODY(real_mkstemp(tmpl), tmpl, 0);
}
IOT_ALIAS(mkstemp, mkstemp64);

IOT_API int mkostemp(char *tmpl, int flags)
{
    IOT_REAL(mkostemp);
    MKSTEMP_BODY(real_mkostemp(tmpl, flags), tmpl, flags);
}
IOT_ALIAS(mkostemp, mkostemp64);

IOT_API int mkstemps(char *tmpl, int suffixlen)
{
    IOT_REAL(mkstemps);
    MKSTEMP_BODY(real_mkstemps(tmpl, suffixlen), tmpl, 0);
}
IOT_ALIAS(mkstemps, mkstemps64);

IOT_API int mkostemps(char *tmpl, int suffixlen, int flags)
{
    IOT_REAL(mkostemps);
    MKSTEMP_BODY(real_mkostemps(tmpl, suffixlen, flags), tmpl, flags);
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
