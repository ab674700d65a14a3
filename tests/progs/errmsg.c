/* glibc's error messages: error, error_at_line (twice on one line with error_one_per_line set:
 * the second is not printed), warn, warnx, vwarn, vwarnx, then the one that exits that argv[1]
 * names (err, errx, verr, verrx, error, error_at_line; "none": returns 0).  Their arguments
 * fill the six argument registers, the stack and a vector register (a double), so a wrapper
 * that lost one would print something else.  stdout holds buffered output when error() runs
 * (it flushes stdout first); error_message_count is printed. */
#include <err.h>
#include <errno.h>
#include <error.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void v(int k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (k == 0)
        vwarn(fmt, ap);
    else if (k == 1)
        vwarnx(fmt, ap);
    else if (k == 2)
        verr(3, fmt, ap);
    else
        verrx(4, fmt, ap);
    va_end(ap);
}

int main(int argc, char **argv)
{
    const char *last = argc > 1 ? argv[1] : "none";
    printf("before error: buffered\n");
    error(0, ENOENT, "error %d %s %.2f %ld %ld %ld %ld", 1, "two", 3.5, 4L, 5L, 6L, 7L);
    error_one_per_line = 1;
    for (int i = 0; i < 2; i++)
        error_at_line(0, EACCES, "file.c", 42, "at line %d of %d", i, 2);
    errno = EPIPE;
    warn("warn %s %d %d %d %d %d", "a", 1, 2, 3, 4, 5);
    warnx("warnx %g", 0.25);
    errno = ENOSPC;
    v(0, "vwarn %s", "b");
    v(1, "vwarnx %d", 9);
    printf("count %u\n", error_message_count);
    fflush(stdout);
    errno = EIO;
    if (!strcmp(last, "err"))
        err(5, "err %s", "c");
    if (!strcmp(last, "errx"))
        errx(6, "errx %d", 10);
    if (!strcmp(last, "verr"))
        v(2, "verr %s", "d");
    if (!strcmp(last, "verrx"))
        v(3, "verrx %d", 11);
    if (!strcmp(last, "error")) {
        printf("buffered at exit\n");
        error(7, EBADF, "error exits %s", "e");
    }
    if (!strcmp(last, "error_at_line"))
        error_at_line(8, 0, "other.c", 7, "error_at_line exits");
    printf("returned\n");
    return 0;
}
