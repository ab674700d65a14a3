/* A (CLOCK_MONOTONIC, CLOCK_REALTIME) pair: what aligns a log's monotonic times with every other
 * log's (a shim log's header, the launcher's run record; stracer/slog.py clock_pair in Python).
 * Two reads back to back are apart by whatever ran between them: a preemption under load (64 ms
 * measured at a load of 19) made a process's times that much off against the stracer's, which
 * put its stops outside the calls they held and its loader's reads in no process.  So the real
 * clock is read between two reads of the monotonic one, IOT_CLOCK_PAIR_TRIES times, and the
 * narrowest bracket kept: its midpoint is the real reading's monotonic time to within half its
 * width, and a preemption widens only the bracket it fell in. */
#ifndef IOTRACE_CLOCKPAIR_H
#define IOTRACE_CLOCKPAIR_H
#include <stdint.h>
#include <time.h>

#include "iot_format.h" /* IOT_CLOCK_PAIR_TRIES (src/iotrace/format.py) */

static inline uint64_t clock_pair_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t clock_pair_mono(void)
{
    return clock_pair_ns(CLOCK_MONOTONIC);
}

/* `mono_ns`: the monotonic clock as its writer reads it (the shim's: the host's, a time
 * namespace's offset taken off) */
static inline void clock_pair(uint64_t (*mono_ns)(void), uint64_t *mono, uint64_t *real)
{
    uint64_t width = UINT64_MAX;
    for (int i = 0; i < IOT_CLOCK_PAIR_TRIES; i++) {
        uint64_t a = mono_ns(), r = clock_pair_ns(CLOCK_REALTIME), b = mono_ns();
        if (b - a < width)
            width = b - a, *mono = a + (b - a) / 2, *real = r;
    }
}
#endif
