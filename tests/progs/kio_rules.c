/* How the kernel counts each read/write-type call in /proc/self/io (rchar, wchar, syscr,
 * syscw): for each call, one line "NAME ret errno offset count drchar dwchar dsyscr dsyscw", the
 * deltas less the cost of reading /proc/self/io itself.  tests/test_completeness.py checks them
 * against calls.KERNEL_IO_SYSCALLS and KERNEL_IO_UNCOUNTED, the rules the trace is counted by.
 * Argument "libc": only the failing calls (which of them the kernel counts), through libc's
 * functions rather than raw syscalls, for the shim's wrappers to record. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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
    int fd = open("/proc/self/io", O_RDONLY); /* libc's: the shim alone sees them too */
    long n = read(fd, b, sizeof b - 1);
    close(fd);
    b[n > 0 ? n : 0] = 0;
    sscanf(b, "rchar: %ld wchar: %ld syscr: %ld syscw: %ld", &v[0], &v[1], &v[2], &v[3]);
    return (int)n; /* this read: counted after the values it returned */
}

static void report(const char *name, long ret, int err, long off, unsigned long count)
{
    long v[4];
    io(v);
    printf("%s %ld %d %ld %lu %ld %ld %ld %ld\n", name, ret, err, off, count,
           v[0] - base[0] - base_cost,
           v[1] - base[1], v[2] - base[2] - 1, v[3] - base[3]);
    fflush(stdout); /* stdout's write comes before the next base reading */
    base_cost = io(base);
}

/* one call: its name, offset and count arguments (0: none) as the rules take them */
#define CALLA(name, off, count, expr)                                                             \
    do {                                                                                          \
        errno = 0;                                                                                \
        long r_ = (long)(expr);                                                                   \
        int e_ = r_ < 0 ? errno : 0;                                                              \
        report(name, r_, e_, off, count);                                                         \
    } while (0)
#define CALL(name, expr) CALLA(name, 0, 0, expr)
/* raw: the syscall itself; else libc's function of it (the shim's wrapper) */
#define RW(raw, name, fd, b, n, expr)                                                             \
    CALLA(#name, 0, n, raw ? syscall(SYS_##name, fd, b, n) : expr(fd, b, n))
#define PRW(raw, name, fd, b, n, o, expr)                                                         \
    CALLA(#name, o, n, raw ? syscall(SYS_##name, fd, b, n, (long)(o)) : expr(fd, b, n, o))
#define RWV(raw, name, fd, v, c)                                                                  \
    CALLA(#name, 0, 0, raw ? syscall(SYS_##name, fd, v, c) : name(fd, v, c))
#define PRWV(raw, name, fd, v, c, o)                                                              \
    CALLA(#name, o, 0, raw ? syscall(SYS_##name, fd, v, c, (long)(o), 0) : name(fd, v, c, o))
#define PRWV2(raw, name, fd, v, c, o)                                                             \
    CALLA(#name, o, 0, raw ? syscall(SYS_##name, fd, v, c, (long)(o), 0, 0) : name(fd, v, c, o, 0))

/* Failing calls, which the kernel counts or not by the failure (fs/read_write.c: the checks
 * before a call's inc_syscr/inc_syscw): fd reads 100 bytes and is open both ways, ro read-only,
 * wo write-only, dir a directory, p a pipe. */
static void fails(int raw, int fd, int ro, int wo, int dir, const int p[2])
{
    char *buf = malloc(8192); /* its size unknown to fortified calls */
    volatile size_t huge = SIZE_MAX;  /* past the user address space: access_ok's EFAULT */
    void *volatile bad = (void *)8;   /* a fault of the copy itself */
    struct iovec iov[2] = {{buf, 10}, {buf, 20}};
    volatile int many = 5000; /* past IOV_MAX */
    RW(raw, read, 999, buf, 10, read);  /* EBADF: no such descriptor */
    RW(raw, read, wo, buf, 10, read);   /* EBADF: not open for reading */
    RW(raw, read, fd, buf, huge, read); /* EFAULT of access_ok */
    RW(raw, read, fd, bad, 10, read);   /* EFAULT of the copy: counted */
    RW(raw, read, dir, buf, 10, read);  /* EISDIR: counted */
    RW(raw, write, 999, buf, 10, write);
    RW(raw, write, ro, buf, 10, write);
    RW(raw, write, fd, buf, huge, write);
    RW(raw, write, fd, bad, 10, write);
    PRW(raw, pread64, 999, buf, 10, 0, pread);
    PRW(raw, pread64, wo, buf, 10, 0, pread);
    PRW(raw, pread64, fd, buf, 10, -1, pread); /* EINVAL: a negative offset */
    PRW(raw, pread64, p[0], buf, 10, 0, pread); /* ESPIPE */
    PRW(raw, pread64, fd, buf, huge, 0, pread);
    PRW(raw, pread64, fd, bad, 10, 0, pread);
    PRW(raw, pread64, dir, buf, 10, 0, pread);
    PRW(raw, pwrite64, 999, buf, 10, 0, pwrite);
    PRW(raw, pwrite64, ro, buf, 10, 0, pwrite);
    PRW(raw, pwrite64, fd, buf, 10, -5, pwrite);
    PRW(raw, pwrite64, p[1], buf, 10, 0, pwrite);
    PRW(raw, pwrite64, fd, buf, huge, 0, pwrite);
    PRW(raw, pwrite64, fd, bad, 10, 0, pwrite);
    RWV(raw, readv, 999, iov, 2);  /* the vector calls: EBADF counted */
    RWV(raw, readv, wo, iov, 2);
    RWV(raw, readv, fd, iov, many); /* EINVAL */
    RWV(raw, readv, fd, bad, 2);   /* EFAULT: the iovec array */
    RWV(raw, writev, 999, iov, 2);
    RWV(raw, writev, ro, iov, 2);
    RWV(raw, writev, fd, iov, many);
    RWV(raw, writev, fd, bad, 2);
    PRWV(raw, preadv, 999, iov, 2, 0);
    PRWV(raw, preadv, fd, iov, 2, -1); /* EINVAL: a negative offset, not counted */
    PRWV(raw, preadv, p[0], iov, 2, 0); /* ESPIPE: counted */
    PRWV(raw, preadv, fd, bad, 2, 0);
    PRWV(raw, pwritev, 999, iov, 2, 0);
    PRWV(raw, pwritev, fd, iov, 2, -3);
    PRWV(raw, pwritev, fd, iov, many, 0);
    PRWV2(raw, preadv2, 999, iov, 2, 0);
    PRWV2(raw, preadv2, fd, iov, 2, -2); /* EINVAL; -1 is the descriptor's position */
    PRWV2(raw, preadv2, wo, iov, 2, -1);
    PRWV2(raw, preadv2, fd, bad, 2, 0);
    PRWV2(raw, pwritev2, 999, iov, 2, 0);
    PRWV2(raw, pwritev2, fd, iov, 2, -2);
    PRWV2(raw, pwritev2, ro, iov, 2, -1);
    RW(raw, read, fd, buf, 0, read); /* nothing asked: counted */
    free(buf);
}

int main(int argc, char **argv)
{
    int raw = argc < 2 || strcmp(argv[1], "libc") != 0;
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
    if (!raw) { /* the failures only, after the file's first bytes */
        CALL("write", write(fd, buf, 100));
    } else {
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
    }
    int ro = open("kio_rules.a", O_RDONLY), wo = open("kio_rules.a", O_WRONLY);
    int dir = open(".", O_RDONLY | O_DIRECTORY);
    lseek(fd, 0, SEEK_SET);
    for (int i = 0; i < 2; i++) /* a site's second call: the stracer's C loop records it */
        fails(raw, fd, ro, wo, dir, p);
    close(fd);
    close(g);
    unlink("kio_rules.a");
    unlink("kio_rules.b");
    return 0;
}
