/* The kernel's I/O accounting of this process (/proc/self/io: rchar, wchar, syscr, syscw,
 * read_bytes, write_bytes, cancelled_write_bytes), read at the shim's start, just before an exec
 * and at exit, and written as KIO records: the analyzer checks what the trace explains against
 * it (docs/format.md, docs/analyzer.md "Completeness").  The kernel counts every read- and
 * write-type syscall of the process, the shim's own among them: those are counted here, so that
 * they are not taken for the app's. */
#include <fcntl.h>
#include <stdio.h>
#include <stdio_ext.h>

#include "shim.h"
#include "sysraw.h"

/* The shim's own read/write syscalls in this image: rchar, wchar, syscr, syscw. */
static uint64_t own[4];

void iot_own_io(int is_write, long ret)
{
    if (ret > 0)
        __atomic_fetch_add(&own[is_write ? 1 : 0], (uint64_t)ret, __ATOMIC_RELAXED);
    __atomic_fetch_add(&own[is_write ? 3 : 2], 1, __ATOMIC_RELAXED);
}

void iot_kio_fork_child(void)
{
    for (int i = 0; i < 4; i++)
        own[i] = 0; /* a forked child's counters start at zero in the kernel too */
}

/* The seven counters of /proc/self/io in the kernel's order; 0 if it cannot be read. */
static int read_counters(uint64_t v[IOT_KIO_N])
{
    char buf[512];
    int fd = (int)IOT_SYSRAW(openat, AT_FDCWD, "/proc/self/io", O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    long n = IOT_SYSRAW(read, fd, buf, sizeof buf - 1);
    IOT_SYSRAW(close, fd);
    if (n <= 0)
        return 0;
    iot_own_io(0, n); /* counted by the kernel after the values it returned */
    int k = 0;
    for (long i = 0; i < n && k < IOT_KIO_N; i++) {
        if (buf[i] != ':')
            continue;
        uint64_t x = 0;
        for (i++; i < n && buf[i] == ' '; i++)
            ;
        for (; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
            x = x * 10 + (uint64_t)(buf[i] - '0');
        v[k++] = x;
    }
    return k == IOT_KIO_N;
}

/* glibc's list of every open stream (chained by the public _chain field) and its lock. */
extern FILE *_IO_list_all;
extern void _IO_list_lock(void);
extern void _IO_list_unlock(void);

/* Output in stdio buffers: written by a later flush (at exit: stdio's final one, after the
 * shim's last reading), inherited by a forked child, or lost at an exec. */
static void stdio_pending(uint64_t out[2])
{
    out[0] = out[1] = 0;
    _IO_list_lock();
    for (FILE *f = _IO_list_all; f; f = f->_chain) {
        size_t n = __fpending(f);
        if (n) {
            out[0] += n;
            out[1]++;
        }
    }
    _IO_list_unlock();
}

void iot_emit_kio(int when)
{
    if (iot_p.state != IOT_READY || iot_t.gen != iot_p.gen)
        return;
    int busy = iot_t.busy;
    iot_t.busy = 1;
    uint64_t v[IOT_KIO_N], o[4], pending[2];
    uint64_t t = iot_now();
    stdio_pending(pending);
    for (int i = 0; i < 4; i++) /* before the reading: the kernel counts its read after it */
        o[i] = __atomic_load_n(&own[i], __ATOMIC_RELAXED);
    if (read_counters(v)) {
        char *p = iot_log_reserve(160);
        if (p)
            iot_log_commit(iot_pack_kio(p, when, t, v, o, pending));
    }
    iot_t.busy = busy;
}
