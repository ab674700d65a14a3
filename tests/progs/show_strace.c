/* Calls whose `iotrace show` lines a strace user compares with `strace -f`'s
 * (tests/test_show_strace.py): each argument and flag as strace prints it. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
    int p[2], q[2], r[2], s[2];
    struct statx sx;
    if (pipe2(p, 0) || pipe2(q, O_CLOEXEC | O_NONBLOCK) || pipe(r))
        return 1;
    if (syscall(SYS_pipe2, s, 0)) /* raw: the stracer's record (full tracing) */
        return 1;
    if (dup3(p[0], 40, 0) != 40 || dup3(p[1], 41, O_CLOEXEC) != 41)
        return 1;
    if (syscall(SYS_dup3, q[0], 42, O_CLOEXEC) != 42)
        return 1;
    int fd = open("f.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || fcntl(fd, F_DUPFD, 50) != 50 || fcntl(fd, F_DUPFD_CLOEXEC, 60) != 60 ||
        fcntl(fd, F_GETFD) < 0 || fcntl(fd, F_GETPIPE_SZ) != -1 ||
        fcntl(fd, F_SETFL, O_NONBLOCK | O_APPEND) || fcntl(fd, F_SETFD, FD_CLOEXEC) ||
        fcntl(fd, F_SETFD, 0))
        return 1;
    if (fallocate(fd, 0, 0, 4096) || fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 0, 4096))
        return 1;
    if (socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0) < 0 ||
        socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) < 0)
        return 1;
    if (eventfd(0, 0) < 0 || eventfd(3, EFD_SEMAPHORE | EFD_CLOEXEC | EFD_NONBLOCK) < 0)
        return 1;
    if (statx(AT_FDCWD, "f.bin", AT_SYMLINK_NOFOLLOW, STATX_SIZE, &sx) ||
        statx(AT_FDCWD, "f.bin", AT_STATX_DONT_SYNC, STATX_BASIC_STATS | STATX_BTIME, &sx) ||
        statx(AT_FDCWD, "f.bin", 0, STATX_BASIC_STATS, &sx))
        return 1;
    if (syscall(SYS_memfd_create, "mf", MFD_CLOEXEC | MFD_ALLOW_SEALING) < 0 ||
        syscall(SYS_memfd_create, "mg", 0) < 0) /* raw: the stracer's */
        return 1;
    if (mkdir("d", 0755) || renameat2(AT_FDCWD, "d", AT_FDCWD, "d2", RENAME_NOREPLACE) ||
        unlinkat(AT_FDCWD, "d2", AT_REMOVEDIR) || unlinkat(AT_FDCWD, "f.bin", 0))
        return 1;
    return 0;
}
