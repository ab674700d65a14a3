/* Preloaded into `iotrace run` (tests/test_clock.py): in each process, the first CLOCK_REALTIME
 * reading that follows a CLOCK_MONOTONIC one in the same thread is taken LATE_REALTIME_MS ms
 * late -- a preemption between the two reads of a clock pair, made certain (under load one
 * came now and then: 64 ms measured).  Every other reading is the clock's own. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static __thread int after_mono;
static int done;

int clock_gettime(clockid_t c, struct timespec *ts)
{
    static int (*real)(clockid_t, struct timespec *);
    if (!real)
        real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    if (c == CLOCK_REALTIME && after_mono && !__atomic_exchange_n(&done, 1, __ATOMIC_RELAXED)) {
        const char *ms = getenv("LATE_REALTIME_MS");
        long n = ms ? atol(ms) : 0;
        struct timespec d = {n / 1000, n % 1000 * 1000000};
        syscall(SYS_nanosleep, &d, NULL);
    }
    after_mono = c == CLOCK_MONOTONIC;
    return real(c, ts);
}
