/* Raw syscall(2) openat/write/close: all three bypass the shim (missed). A libc write on an
 * fd the shim knows is covered. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

__attribute__((noinline)) static void raw_open(const char *path)
{
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    syscall(SYS_write, fd, "raw\n", 4);
    syscall(SYS_close, fd);
}

int main(int argc, char **argv)
{
    raw_open(argc > 1 ? argv[1] : "raw.out");
    write(1, "ok\n", 3);
    return 0;
}
