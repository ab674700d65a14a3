/* dprintf and vdprintf (__dprintf_chk and __vdprintf_chk built with -D_FORTIFY_SOURCE=2):
 * glibc prints through a stream of its own on the descriptor and flushes it before returning,
 * inside libc; a line wider than its buffer takes several writes. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static int vd(int fd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vdprintf(fd, fmt, ap);
    va_end(ap);
    return r;
}

int main(void)
{
    int fd = open("d.out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return 1;
    int n = 0;
    for (int i = 0; i < 300; i++)
        n += dprintf(fd, "line %d\n", i);
    n += dprintf(fd, "%9000s\n", "wide");
    n += vd(fd, "%s %d\n", "v", 42);
    close(fd);
    printf("%d\n", n);
    return 0;
}
