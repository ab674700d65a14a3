/* raw_io.c: I/O through syscall(2), which no libc wrapper sees: the stracer catches it. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

static int raw_open(const char *path) {
    return (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
}

int main(void) {
    int fd;
    if ((fd = raw_open("raw.out")) < 0) return 1;
    if (syscall(SYS_write, fd, "raw bytes\n", 10) != 10) return 1;
    syscall(SYS_close, fd);
    puts("ok");
    return 0;
}
