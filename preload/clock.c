/* Event times (iot_now, shim.h): CLOCK_MONOTONIC, the clock of the stracer and of every other
 * process's log.  clock_gettime costs ~24 ns here (the vDSO: a fenced rdtsc, a sequence count,
 * the scale), a plain rdtsc ~10, and every event reads the clock twice.  So where the kernel's
 * own clock is the TSC (clocksource "tsc": the kernel has then checked that the TSCs of all
 * CPUs run in step at a constant rate, and its vDSO reads whichever CPU it runs on), a time is
 * interpolated from the TSC: per thread, an anchor (a clock_gettime reading and the TSC beside
 * it) at most SPAN_NS old, plus the ticks since, times a scale measured against clock_gettime
 * over CAL_MIN_NS..CAL_MAX_NS of this process's life (so it follows NTP's rate too).
 *
 * Error: an anchor's, where in its pair the clock was read (at most ~0.1 us: a pair is kept only
 * if its two TSC reads are close), plus the scale's (~1e-5: that jitter over >= 10 ms) over at
 * most SPAN_NS, ~2 ns; rdtsc unfenced may run a few ns early.  Each new anchor checks the old
 * one's interpolation against the clock: off by more than ERR_MAX_NS (TSCs not in step after
 * all, a VM migrated) and the process goes back to clock_gettime for good, as does a process
 * whose kernel clock is not the TSC.  Until the scale is measured (the first CAL_MIN_NS), every
 * time is clock_gettime's.  A thread's times never go back (a floor: the latest time it may
 * have been given), so an event ends after it starts and a nested call's event stays inside
 * its caller's (MPI-IO's POSIX calls, docs/format.md).
 *
 * In a time namespace (unshare --time, CRIU) CLOCK_MONOTONIC is shifted by the namespace's
 * offset: taken off here (/proc/self/timens_offsets), so that every time of the log is on the
 * clock of the stracer and of every other process (the host's, or that of the namespace
 * `iotrace run` itself runs in): a reused pid's processes, an exec's images, are told apart by
 * their times (docs/format.md, "Processes"). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#else
#define __rdtsc() 0ull /* no TSC: iot_clk_on stays 0 */
#endif

#include "shim.h"
#include "sysraw.h"

#define SPAN_NS 200000ull      /* an anchor's life: a clock_gettime per thread per 0.2 ms */
#define CAL_MIN_NS 10000000ull /* the scale is measured over at least 10 ms... */
#define CAL_MAX_NS 2000000000ull /* ...and at most ~2 s back (then measured again from there) */
#define ERR_MAX_NS 1000        /* an interpolation off by more: the TSC is not usable */
#define PAIR_MAX_TICKS 400     /* rdtsc, clock_gettime, rdtsc further apart (~0.2 us): not a pair */

int iot_clk_on IOT_HIDDEN; /* 1: the TSC may be used (read on the hot path) */

static struct {
    int lock;              /* taken by trylock only: a signal handler never waits */
    uint64_t ns, tsc;      /* the reference pair the scale is measured from */
    uint64_t mult;         /* ns per tick << 32; 0 until measured */
} cal;

static struct {
    uint64_t off;   /* CLOCK_MONOTONIC's offset from the run's clock, ns (0: the same) */
    long long run;  /* the offset of the namespace `iotrace run` runs in (IOTRACE_TIMENS) */
    char ns[48];    /* which time namespace it is of (/proc/self/ns/time), "" unknown */
} timens;

static uint64_t clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec - timens.off;
}

uint64_t iot_mono(void)
{
    return clock_ns();
}

/* The namespace's link, into `to` ("" if none: a kernel without time namespaces). */
static void timens_link(char to[48])
{
    long n = IOT_SYSRAW(readlinkat, AT_FDCWD, "/proc/self/ns/time", to, 47);
    to[n > 0 ? n : 0] = '\0';
}

/* Its time namespace's offset less that of the namespace `iotrace run` runs in (timens.run):
 * its line "monotonic SECS NSECS" of /proc/self/timens_offsets, read only outside the initial
 * namespace. */
static void timens_read(void)
{
    long long own = 0;
    timens_link(timens.ns);
    if (timens.ns[0] && strcmp(timens.ns, "time:[4026531834]")) { /* not the initial one */
        char buf[128] = "";
        int fd = (int)IOT_SYSRAW(openat, AT_FDCWD, "/proc/self/timens_offsets",
                                 O_RDONLY | O_CLOEXEC, 0);
        long n = fd < 0 ? -1 : IOT_SYSRAW(read, fd, buf, sizeof buf - 1);
        if (fd >= 0) {
            iot_own_io(0, n);
            IOT_SYSRAW(close, fd);
        }
        buf[n > 0 ? n : 0] = '\0';
        char *at = strstr(buf, "monotonic"), *end;
        if (at) {
            long long sec = strtoll(at + 9, &end, 10), nsec = strtoll(end, NULL, 10);
            own = sec * 1000000000ll + nsec;
        }
    }
    timens.off = (uint64_t)(own - timens.run);
}

void iot_clock_init(void)
{
    /* the stracer's and launcher's clock, read once: set only when not the host's, and gone
     * from a child's environment that the app cleared before it forked into a namespace of
     * its own (its times were then a namespace's offset off) */
    const char *base = getenv("IOTRACE_TIMENS");
    timens.run = base ? strtoll(base, NULL, 10) : 0;
    timens_read();
    char buf[32] = "";
    int fd = (int)IOT_SYSRAW(openat, AT_FDCWD,
                             "/sys/devices/system/clocksource/clocksource0/current_clocksource",
                             O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return;
    long n = IOT_SYSRAW(read, fd, buf, sizeof buf - 1);
    iot_own_io(0, n);
    IOT_SYSRAW(close, fd);
    if (n == 4 && !memcmp(buf, "tsc\n", 4) && __rdtsc())
        __atomic_store_n(&iot_clk_on, 1, __ATOMIC_RELAXED);
}

/* A forked child: another thread of the parent may have held the lock. */
void iot_clock_fork_child(void)
{
    cal.lock = 0;
    char now[48];
    timens_link(now);
    if (strcmp(now, timens.ns)) /* forked after its parent's unshare(CLONE_NEWTIME) */
        timens_read();
}

static void turn_off(void)
{
    __atomic_store_n(&iot_clk_on, 0, __ATOMIC_RELAXED);
}

/* The scale, from the reference pair to (ns, tsc); 0 while not measured yet. */
static uint64_t calibrate(uint64_t ns, uint64_t tsc)
{
    int free = 0;
    if (!__atomic_compare_exchange_n(&cal.lock, &free, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return __atomic_load_n(&cal.mult, __ATOMIC_RELAXED);
    uint64_t mult = cal.mult;
    if (!cal.ns || ns < cal.ns || tsc <= cal.tsc) {
        cal.ns = ns;
        cal.tsc = tsc;
    } else if (ns - cal.ns >= CAL_MIN_NS) {
        uint64_t m = (uint64_t)(((unsigned __int128)(ns - cal.ns) << 32) / (tsc - cal.tsc));
        /* the rate moved by more than NTP may move it (500 ppm): something else is going on */
        if (mult && (m > mult + mult / 1000 || m < mult - mult / 1000))
            turn_off();
        else if (!m || m >= (1ull << 36)) /* not a TSC of 62.5 MHz or more */
            turn_off();
        else
            __atomic_store_n(&cal.mult, mult = m, __ATOMIC_RELAXED);
        if (ns - cal.ns >= CAL_MAX_NS) {
            cal.ns = ns;
            cal.tsc = tsc;
        }
    }
    __atomic_store_n(&cal.lock, 0, __ATOMIC_RELEASE);
    return mult;
}

/* ns, or the thread's floor if that is later (the floor becomes it, outside an anchoring) */
static uint64_t settle(uint64_t ns, uint64_t floor)
{
    ns = ns > floor ? ns : floor;
    if (!(iot_t.clk_gen & 1))
        iot_t.clk_floor = ns;
    return ns;
}

/* tsc: read just before (the fast path's) */
uint64_t iot_clock_slow(uint64_t t0)
{
    uint64_t ns = clock_ns();
    uint64_t floor = iot_t.clk_floor;
    int64_t d = (int64_t)(t0 - iot_t.clk_tsc);
    if (iot_t.clk_span && !(iot_t.clk_gen & 1) && d > 0) { /* the latest the anchor gave */
        uint64_t upto = (uint64_t)d < iot_t.clk_span ? (uint64_t)d : iot_t.clk_span;
        uint64_t last = iot_t.clk_ns + ((upto * iot_t.clk_mult) >> 32);
        floor = last > floor ? last : floor;
    }
    if (!__atomic_load_n(&iot_clk_on, __ATOMIC_RELAXED) || (iot_t.clk_gen & 1))
        return settle(ns, floor); /* not usable, or a handler interrupted the anchoring */
    uint64_t since = ns - __atomic_load_n(&cal.ns, __ATOMIC_RELAXED);
    if (!__atomic_load_n(&cal.mult, __ATOMIC_RELAXED) && since < CAL_MIN_NS)
        return settle(ns, floor); /* too early to measure the scale (not for a first pair) */
    uint64_t t1 = __rdtsc();
    if (t1 - t0 > PAIR_MAX_TICKS)
        return settle(ns, floor);
    uint64_t tsc = t0 + (t1 - t0) / 2;
    d = (int64_t)(tsc - iot_t.clk_tsc);
    int64_t lim = 4 * (int64_t)iot_t.clk_span;
    if (d > -lim && d < lim) { /* the old anchor, checked */
        int64_t at = (int64_t)(((__int128)d * (__int128)iot_t.clk_mult) >> 32);
        int64_t err = (int64_t)(iot_t.clk_ns + (uint64_t)at - ns);
        if (err > ERR_MAX_NS || err < -ERR_MAX_NS) {
            turn_off();
            return settle(ns, floor);
        }
    }
    uint64_t mult = calibrate(ns, tsc);
    if (!mult || !__atomic_load_n(&iot_clk_on, __ATOMIC_RELAXED))
        return settle(ns, floor);
    iot_t.clk_gen++; /* odd: a handler's read meanwhile takes clock_gettime and leaves it */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    iot_t.clk_tsc = tsc;
    iot_t.clk_ns = ns;
    iot_t.clk_mult = mult;
    iot_t.clk_span = (SPAN_NS << 32) / mult;
    iot_t.clk_floor = floor;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    iot_t.clk_gen++;
    return ns > floor ? ns : floor;
}
