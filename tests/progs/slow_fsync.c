/* Preloaded after the shim (tests/test_findings.py): each fsync and msync takes SLOW_FSYNC_MS
 * ms more, as on a disk or parallel file system where a sync waits for the device -- made
 * certain, since on tmpfs or a fast SSD an fsync of 1 MiB (or an msync of a page) costs
 * microseconds and the finding it tests would rightly not be made. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void slow(void)
{
    const char *ms = getenv("SLOW_FSYNC_MS");
    long n = ms ? atol(ms) : 0;
    struct timespec d = {n / 1000, n % 1000 * 1000000};
    syscall(SYS_nanosleep, &d, NULL);
}

int fsync(int fd)
{
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    slow();
    return real(fd);
}

int msync(void *addr, size_t length, int flags)
{
    static int (*real)(void *, size_t, int);
    if (!real)
        real = (int (*)(void *, size_t, int))dlsym(RTLD_NEXT, "msync");
    slow();
    return real(addr, length, flags);
}
