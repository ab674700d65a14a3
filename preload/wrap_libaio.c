/* Wrappers: Linux AIO through libaio (io_setup, io_submit, io_getevents, io_pgetevents,
 * io_cancel, io_destroy).
 *
 * libaio is a separate library: these matter only when the app links it, and the real
 * functions are libaio's (dlsym(RTLD_NEXT)).  libaio's functions are raw syscalls and return
 * the kernel's result (-errno on failure, errno untouched); so do these.  Under a stracer the
 * wrapper makes the syscall itself with the cookie (sysraw.h): no stop, covered.  The kernel
 * moves the bytes with no syscall of the app's, so the shape is that of POSIX AIO (wrap_aio.c):
 *   - io_submit: one event per iocb (op other): fd, path, req = bytes asked (the iovecs' sum
 *     for PREADV/PWRITEV), offset, flags = the iocb's opcode (IOCB_CMD_*), ret = the call's
 *     result (how many iocbs it queued; an iocb at or past it was not queued);
 *   - io_getevents / io_pgetevents: per event of a read or write iocb traced at its io_submit,
 *     an aio_read_done or aio_write_done event with the iocb's fd, path, req and offset, ret =
 *     the event's res (-1 with errno = -res on failure), aux = [io_submit's id, its t_start];
 *     its times are io_getevents';
 *   - io_cancel: an event with the iocb's fd, path, req, offset and opcode; io_setup (req =
 *     nr_events) and io_destroy: an event each.
 * Requests are keyed by the iocb's address (pending.c, kind IOT_PEND_LIBAIO). */
#include <linux/aio_abi.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <time.h>

#include "shim.h"
#include "sysraw.h"

typedef unsigned long iot_aio_ctx; /* libaio's io_context_t (a pointer), the kernel's id */

/* A raw syscall's -1/errno back to libaio's convention: -errno, errno as it was. */
static long kret(long r, int e0)
{
    if (r == -1) {
        r = -errno;
        errno = e0;
    }
    return r;
}

/* A libaio call's event: ret the C value, errno -ret on failure. */
static void kerr(iot_ev *ev)
{
    ev->err = ev->ret < 0 ? (int)-ev->ret : 0;
}

static int64_t asked(const struct iocb *cb)
{
    if (cb->aio_lio_opcode != IOCB_CMD_PREADV && cb->aio_lio_opcode != IOCB_CMD_PWRITEV)
        return (int64_t)cb->aio_nbytes;
    const struct iovec *iov = (const struct iovec *)(uintptr_t)cb->aio_buf;
    if (!iov || cb->aio_nbytes > 1024)
        return -1;
    int64_t n = 0;
    for (size_t i = 0; i < cb->aio_nbytes; i++)
        n += (int64_t)iov[i].iov_len;
    return n;
}

static int is_read(unsigned op) { return op == IOCB_CMD_PREAD || op == IOCB_CMD_PREADV; }
static int is_write(unsigned op) { return op == IOCB_CMD_PWRITE || op == IOCB_CMD_PWRITEV; }

/* The iocb's fields into an event (the shim is busy). */
static void iocb_fields(iot_ev *ev, const struct iocb *cb)
{
    iot_ev_fd(ev, (int)cb->aio_fildes);
    iot_ev_fdpath(ev, (int)cb->aio_fildes);
    int64_t n = asked(cb);
    if (n >= 0)
        iot_ev_req(ev, n);
    iot_ev_off(ev, cb->aio_offset);
    iot_ev_flags(ev, cb->aio_lio_opcode);
}

IOT_API int io_submit(iot_aio_ctx ctx, long nr, struct iocb **ios)
{
    IOT_REAL_AS(real_io_submit, "io_submit", int(iot_aio_ctx, long, struct iocb **));
    if (IOT_UNLIKELY(!real_io_submit))
        return -ENOSYS; /* no libaio behind this name: its convention, -errno */
    iot_ev ev;
    if (nr <= 0 || !ios || !iot_enter(&ev, IOT_FN_io_submit))
        return real_io_submit(ctx, nr, ios);
    /* Before the call: a request can complete, and be collected by another thread, before
     * io_submit returns.  The events are made from these copies afterwards. */
    iot_ev stack[16], *evs = nr <= 16 ? stack : NULL;
    iot_t.busy = 1;
    if (!evs)
        evs = malloc((size_t)nr * sizeof *evs);
    for (long i = 0; evs && i < nr; i++) {
        const struct iocb *cb = ios[i];
        evs[i] = ev;
        iocb_fields(&evs[i], cb);
        unsigned op = cb->aio_lio_opcode;
        unsigned done_fn = is_read(op) ? IOT_FN_aio_read_done
                         : is_write(op) ? IOT_FN_aio_write_done : 0;
        iot_pend_add(&(iot_pend){.key = (uintptr_t)cb,
                                 .kind = IOT_PEND_LIBAIO,
                                 .post_fn = IOT_FN_io_submit,
                                 .done_fn = (uint16_t)done_fn,
                                 .gen = iot_p.gen,
                                 .fd = (int)cb->aio_fildes,
                                 .path = evs[i].path,
                                 .asked = (evs[i].has & IOT_HAS_REQ) ? evs[i].req : -1,
                                 .off = cb->aio_offset,
                                 .t_post = ev.t0});
    }
    iot_t.busy = 0;
    int e0 = errno;
    long r = IOT_FAST(kret(IOT_SYSRAW(io_submit, ctx, nr, ios), e0),
                      real_io_submit(ctx, nr, ios));
    iot_done(&ev, r, 0);
    kerr(&ev);
    if (!evs) { /* no memory for the copies: the call's own event */
        iot_leave(&ev);
        return (int)r;
    }
    for (long i = 0; i < nr; i++) {
        if (i >= r) /* not queued */
            iot_pend_take(IOT_PEND_LIBAIO, (uintptr_t)ios[i], NULL);
        evs[i].t0 = ev.t0;
        evs[i].t1 = ev.t1;
        evs[i].ret = ev.ret;
        evs[i].err = ev.err;
        evs[i].saved_errno = ev.saved_errno;
        iot_t.busy = 1; /* iot_leave ends the shim's work: each of them */
        iot_leave(&evs[i]);
    }
    if (evs != stack)
        free(evs);
    return (int)r;
}

/* The completions: a *_done event per event of a traced read or write iocb. */
static void completions(const iot_ev *call, const struct io_event *events, long n)
{
    for (long i = 0; i < n; i++) {
        iot_pend e;
        if (!iot_pend_take(IOT_PEND_LIBAIO, (uintptr_t)events[i].obj, &e) || !e.done_fn)
            continue;
        iot_ev ev = *call;
        ev.fn = e.done_fn;
        ev.has = 0;
        ev.naux = 0;
        int64_t res = events[i].res;
        ev.ret = res < 0 ? -1 : res;
        ev.err = res < 0 ? (int)-res : 0;
        iot_pend_fill(&ev, &e);
        iot_t.busy = 1;
        iot_leave(&ev);
    }
}

IOT_API int io_getevents(iot_aio_ctx ctx, long min_nr, long nr, struct io_event *events,
                         struct timespec *timeout)
{
    IOT_REAL_AS(real_io_getevents, "io_getevents",
                int(iot_aio_ctx, long, long, struct io_event *, struct timespec *));
    if (IOT_UNLIKELY(!real_io_getevents))
        return -ENOSYS; /* no libaio behind this name: its convention, -errno */
    IOT_ENTER(IOT_FN_io_submit, real_io_getevents(ctx, min_nr, nr, events, timeout));
    int e0 = errno;
    long r = IOT_FAST(kret(IOT_SYSRAW(io_getevents, ctx, min_nr, nr, events, timeout), e0),
                      real_io_getevents(ctx, min_nr, nr, events, timeout));
    iot_done(&ev, r, 0);
    kerr(&ev);
    completions(&ev, events, r);
    iot_t.busy = 0; /* no event of its own: its completions carry its times */
    errno = ev.saved_errno;
    return (int)r;
}

/* Six arguments: no cookie slot, so libaio's call, a covered stop under a stracer. */
IOT_API int io_pgetevents(iot_aio_ctx ctx, long min_nr, long nr, struct io_event *events,
                          struct timespec *timeout, sigset_t *sigmask)
{
    IOT_REAL_AS(real_io_pgetevents, "io_pgetevents",
                int(iot_aio_ctx, long, long, struct io_event *, struct timespec *, sigset_t *));
    if (IOT_UNLIKELY(!real_io_pgetevents))
        return -ENOSYS; /* no libaio behind this name: its convention, -errno */
    IOT_ENTER(IOT_FN_io_submit, real_io_pgetevents(ctx, min_nr, nr, events, timeout, sigmask));
    long r = real_io_pgetevents(ctx, min_nr, nr, events, timeout, sigmask);
    iot_done(&ev, r, 0);
    kerr(&ev);
    completions(&ev, events, r);
    iot_t.busy = 0;
    errno = ev.saved_errno;
    return (int)r;
}

IOT_API int io_cancel(iot_aio_ctx ctx, struct iocb *cb, struct io_event *result)
{
    IOT_REAL_AS(real_io_cancel, "io_cancel", int(iot_aio_ctx, struct iocb *, struct io_event *));
    if (IOT_UNLIKELY(!real_io_cancel))
        return -ENOSYS; /* no libaio behind this name: its convention, -errno */
    if (!cb)
        return real_io_cancel(ctx, cb, result);
    IOT_ENTER(IOT_FN_io_cancel, real_io_cancel(ctx, cb, result));
    int e0 = errno;
    IOT_CALL(long, IOT_FAST(kret(IOT_SYSRAW(io_cancel, ctx, cb, result), e0),
                            real_io_cancel(ctx, cb, result)), r, 0);
    kerr(&ev);
    iocb_fields(&ev, cb);
    if (r == 0) /* cancelled: its result is here, never in io_getevents */
        iot_pend_take(IOT_PEND_LIBAIO, (uintptr_t)cb, NULL);
    IOT_LEAVE((int)r);
}

IOT_API int io_setup(int nr_events, iot_aio_ctx *ctxp)
{
    IOT_REAL_AS(real_io_setup, "io_setup", int(int, iot_aio_ctx *));
    if (IOT_UNLIKELY(!real_io_setup))
        return -ENOSYS; /* no libaio behind this name: its convention, -errno */
    IOT_ENTER(IOT_FN_io_setup, real_io_setup(nr_events, ctxp));
    int e0 = errno;
    IOT_CALL(long, IOT_FAST(kret(IOT_SYSRAW(io_setup, nr_events, ctxp), e0),
                            real_io_setup(nr_events, ctxp)), r, 0);
    kerr(&ev);
    iot_ev_req(&ev, nr_events);
    IOT_LEAVE((int)r);
}

IOT_API int io_destroy(iot_aio_ctx ctx)
{
    IOT_REAL_AS(real_io_destroy, "io_destroy", int(iot_aio_ctx));
    if (IOT_UNLIKELY(!real_io_destroy))
        return -ENOSYS; /* no libaio behind this name: its convention, -errno */
    IOT_ENTER(IOT_FN_io_destroy, real_io_destroy(ctx));
    int e0 = errno;
    IOT_CALL(long, IOT_FAST(kret(IOT_SYSRAW(io_destroy, ctx), e0), real_io_destroy(ctx)), r, 0);
    kerr(&ev);
    IOT_LEAVE((int)r);
}
