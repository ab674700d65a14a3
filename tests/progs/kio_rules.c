/* How the kernel counts each read/write-type call in /proc/self/io (rchar, wchar, syscr,
 * syscw): for each call, one line "NAME ret errno drchar dwchar dsyscr dsyscw", the deltas less
 * the cost of reading /proc/self/io itself.  tests/test_completeness.py checks them
 * against calls.KERNEL_IO_SYSCALLS, the rules the trace is counted by. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static long base[4];
static int base_cost; /* the bytes of the read that took `base`: counted after it */

static int io(long v[4])
{
    char b[512];
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/io", O_RDONLY);
    long n = syscall(SYS_read, fd, b, sizeof b - 1);
    syscall(SYS_close, fd);
    b[n > 0 ? n : 0] = 0;
    sscanf(b, "rchar: %ld wchar: %ld syscr: %ld syscw: %ld", &v[0], &v[1], &v[2], &v[3]);
    return (int)n; /* this read: counted after the values it returned */
}

static void report(const char *name, long ret, int err)
{
    long v[4];
    io(v);
    printf("%s %ld %d %ld %ld %ld %ld\n", name, ret, err, v[0] - base[0] - base_cost,
           v[1] - base[1], v[2] - base[2] - 1, v[3] - base[3]);
    fflush(stdout); /* stdout's write comes before the next base reading */
    base_cost = io(base);
}

#define CALL(name, expr)                                                                          \
    do {                                                                                          \
        errno = 0;                                                                                \
        long r_ = (long)(expr);                                                                   \
        int e_ = r_ < 0 ? errno : 0;                                                              \
        report(name, r_, e_);                                                                     \
    } while (0)

int main(void)
{
    char buf[8192];
    memset(buf, 'x', sizeof buf);
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    int fd = open("kio_rules.a", O_RDWR | O_CREAT | O_TRUNC, 0600);
    int g = open("kio_rules.b", O_RDWR | O_CREAT | O_TRUNC, 0600);
    int p[2];
    pipe2(p, O_NONBLOCK);
    struct iovec iov[2] = {{buf, 10}, {buf, 20}};
    off_t off = 0;
    loff_t lo = 0;
    base_cost = io(base);
    CALL("write", syscall(SYS_write, fd, buf, 100));
    CALL("pwrite64", syscall(SYS_pwrite64, fd, buf, 50, 10));
    CALL("writev", syscall(SYS_writev, fd, iov, 2));
    CALL("pwritev", syscall(SYS_pwritev, fd, iov, 2, 0, 0));
    CALL("read", syscall(SYS_read, fd, buf, 100));   /* at the end: 0 */
    CALL("pread64", syscall(SYS_pread64, fd, buf, 60, 0));
    CALL("readv", (lseek(fd, 0, SEEK_SET), syscall(SYS_readv, fd, iov, 2)));
    CALL("preadv", syscall(SYS_preadv, fd, iov, 2, 0, 0));
    CALL("read", syscall(SYS_read, 999, buf, 10));   /* EBADF: not counted */
    CALL("read", syscall(SYS_read, p[0], buf, 10));  /* EAGAIN: counted */
    CALL("write", syscall(SYS_write, p[1], buf, 10));
    CALL("sendfile", syscall(SYS_sendfile, g, fd, &off, 40));
    CALL("copy_file_range", syscall(SYS_copy_file_range, fd, &lo, g, NULL, 30, 0));
    lo = 1 << 20; /* past the end: nothing to copy, not counted */
    CALL("copy_file_range", syscall(SYS_copy_file_range, fd, &lo, g, NULL, 30, 0));
    off = 1 << 20;
    CALL("sendfile", syscall(SYS_sendfile, g, fd, &off, 40)); /* past the end: counted */
    int sp[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sp); /* the socket calls: not counted */
    CALL("sendto", syscall(SYS_sendto, sp[0], buf, 10, 0, NULL, 0));
    CALL("recvfrom", syscall(SYS_recvfrom, sp[1], buf, 10, 0, NULL, 0));
    CALL("splice", syscall(SYS_splice, p[0], NULL, g, NULL, 10, 0)); /* not counted */
    close(fd);
    close(g);
    unlink("kio_rules.a");
    unlink("kio_rules.b");
    return 0;
}
