/* Wrappers: glibc's time-zone load and sysconf's processor counts, I/O glibc does inside them
 * that the shim alone never saw (a date, ls -l, git, python3: 174 B in 1-2 reads of the zone
 * file "not in the trace"; fio, libnuma: sysconf's /sys reads).  Kernel I/O mode "in-shim"
 * (calls.py): with the shim alone their reads are counted by the thread's counters around the
 * call; under the stracer the real call runs outside the wrapper's marker (IOT_LIBC_OWN), its
 * syscalls libc-internal events of the stracer's, as setlocale's.
 *
 * glibc reads the zone file ($TZ's, or /etc/localtime) at its first conversion of the process
 * and again where TZ changed: tzset, localtime, mktime, ctime and strftime look at TZ every call;
 * localtime_r, ctime_r, gmtime and gmtime_r load only the first time.  Only such a call is
 * measured and recorded (one counter reading costs ~10 us; ls -l converts a time per file): the
 * others run the real function at once.  Not seen: a reload for a changed /etc/localtime (glibc
 * stats it at each localtime) and libc's own conversions (syslog, getdate).  Event: "tzset"
 * whichever function loaded it; path = TZ as it was (nil: unset), ret 1 (0: a NULL result).
 *
 * sysconf: only _SC_NPROCESSORS_CONF, _SC_NPROCESSORS_ONLN (/sys/devices/system/cpu) and
 * _SC_NGROUPS_MAX (/proc/sys/kernel/ngroups_max) read files; get_nprocs and get_nprocs_conf
 * are the first two.  Event: "sysconf", flags = the _SC_ name, ret its result.
 *
 * pthread_getattr_np: for the initial thread (which has no stack block of glibc's) glibc reads
 * /proc/self/maps to find its stack: Rust's std at every program's start, ruby, the JVM.  Only
 * that call is measured and recorded.  Event: "pthread_getattr_np", ret its result. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

/* TZ when the zone was last loaded: whether a call loads it again (per process: a fork's child
 * has its parent's zone, an exec starts again) */
static int tz_loaded, tz_was_set;
static char tz_was[256];

/* looks: the function looks at TZ each call (else it loads the zone only the first time) */
static int tz_loads(int looks)
{
    if (!__atomic_load_n(&tz_loaded, __ATOMIC_RELAXED))
        return 1;
    if (!looks)
        return 0;
    const char *tz = getenv("TZ");
    return tz ? !tz_was_set || strncmp(tz, tz_was, sizeof tz_was) != 0 : tz_was_set;
}

static void tz_ev(iot_ev *ev, const char *tz)
{
    tz_was_set = tz != NULL;
    snprintf(tz_was, sizeof tz_was, "%s", tz ? tz : "");
    __atomic_store_n(&tz_loaded, 1, __ATOMIC_RELAXED);
    if (tz)
        ev->path = iot_intern_string(tz, strnlen(tz, 1024));
}

/* a wrapper of a function that may load the zone: T its result, looks as tz_loads' */
#define TZ_WRAP(T, name, looks, call)                                                      \
    IOT_REAL(name);                                                                        \
    if (IOT_LIKELY(!tz_loads(looks)))                                                      \
        return call;                                                                       \
    const char *tz = getenv("TZ");                                                         \
    IOT_ENTER(IOT_FN_tzset, call);                                                         \
    IOT_CALL(T, IOT_LIBC_OWN(call), 1, 0);                                                 \
    tz_ev(&ev, tz);                                                                        \
    IOT_LEAVE(r)

IOT_API void tzset(void)
{
    IOT_REAL(tzset);
    if (IOT_LIKELY(!tz_loads(1))) {
        real_tzset();
        return;
    }
    const char *tz = getenv("TZ");
    IOT_ENTER(IOT_FN_tzset, real_tzset());
    IOT_CALL(int, IOT_LIBC_OWN((real_tzset(), 1)), 1, 0);
    tz_ev(&ev, tz);
    IOT_LEAVE();
}

IOT_API struct tm *localtime(const time_t *t)
{
    TZ_WRAP(struct tm *, localtime, 1, real_localtime(t));
}

IOT_API struct tm *localtime_r(const time_t *t, struct tm *tm)
{
    TZ_WRAP(struct tm *, localtime_r, 0, real_localtime_r(t, tm));
}

IOT_API struct tm *gmtime(const time_t *t)
{
    TZ_WRAP(struct tm *, gmtime, 0, real_gmtime(t));
}

IOT_API struct tm *gmtime_r(const time_t *t, struct tm *tm)
{
    TZ_WRAP(struct tm *, gmtime_r, 0, real_gmtime_r(t, tm));
}

IOT_API time_t mktime(struct tm *tm)
{
    TZ_WRAP(time_t, mktime, 1, real_mktime(tm));
}
IOT_ALIAS(mktime, timelocal);

IOT_API char *ctime(const time_t *t)
{
    TZ_WRAP(char *, ctime, 1, real_ctime(t));
}

IOT_API char *ctime_r(const time_t *t, char *buf)
{
    TZ_WRAP(char *, ctime_r, 0, real_ctime_r(t, buf));
}

IOT_API size_t strftime(char *s, size_t max, const char *format, const struct tm *tm)
{
    TZ_WRAP(size_t, strftime, 1, real_strftime(s, max, format, tm));
}

/* sysconf's names that read a file */
static int reads_files(int name)
{
    return name == _SC_NPROCESSORS_CONF || name == _SC_NPROCESSORS_ONLN || name == _SC_NGROUPS_MAX;
}

#define SYSCONF_WRAP(name, sc, call)                                                       \
    IOT_REAL(name);                                                                        \
    if (IOT_LIKELY(!reads_files(sc)))                                                      \
        return call;                                                                       \
    IOT_ENTER(IOT_FN_sysconf, call);                                                       \
    IOT_CALL(long, IOT_LIBC_OWN(call), r, r < 0);                                          \
    iot_ev_flags(&ev, sc);                                                                 \
    IOT_LEAVE(r)

IOT_API long sysconf(int name)
{
    SYSCONF_WRAP(sysconf, name, real_sysconf(name));
}

IOT_API int get_nprocs(void)
{
    SYSCONF_WRAP(get_nprocs, _SC_NPROCESSORS_ONLN, (int)real_get_nprocs());
}

IOT_API int get_nprocs_conf(void)
{
    SYSCONF_WRAP(get_nprocs_conf, _SC_NPROCESSORS_CONF, (int)real_get_nprocs_conf());
}

/* the initial thread: the shim's constructors run on it */
static pthread_t initial;
__attribute__((constructor)) static void initial_thread(void)
{
    initial = pthread_self();
}

IOT_API int pthread_getattr_np(pthread_t th, pthread_attr_t *attr)
{
    IOT_REAL(pthread_getattr_np);
    if (IOT_LIKELY(!pthread_equal(th, initial)))
        return real_pthread_getattr_np(th, attr);
    IOT_ENTER(IOT_FN_pthread_getattr_np, real_pthread_getattr_np(th, attr));
    IOT_CALL(int, IOT_LIBC_OWN(real_pthread_getattr_np(th, attr)), r, r != 0);
    IOT_LEAVE(r);
}
