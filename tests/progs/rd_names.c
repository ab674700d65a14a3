/* File names the readers must keep and escape: bytes that are not UTF-8, a newline that would
 * forge a line of `show`, a terminal escape; each written through the shim (open/write/close)
 * and once by a raw syscall the stracer records as missed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

static void touch(const char *name)
{
    int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, "x", 1) != 1 || close(fd) != 0)
        perror(name);
}

int main(void)
{
    touch("bad\xff\xfe.dat");
    touch("two\n[pid 1 tid 1] +0.000000 unlink(\"precious\") = 0 <0.000001>");
    touch("esc\x1b]0;owned\x07\x1b[31m.dat");
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "raw\xff\n\x1b[2J.dat", O_WRONLY | O_CREAT, 0644);
    syscall(SYS_write, fd, "raw\n", 4);
    syscall(SYS_close, fd);
    return 0;
}
