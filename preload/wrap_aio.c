/* Wrappers: POSIX asynchronous I/O (aio_read, aio_write, lio_listio; completion in aio_return).
 *
 * glibc moves the bytes in helper threads of its own, with internal pread/pwrite calls no
 * wrapper sees (Open MPI's OMPIO uses this for MPI_File_iwrite & co.).  The shape is that of
 * MPI's nonblocking calls (wrap_mpi.c, docs/format.md "aio"):
 *   - aio_read, aio_write: an event when posted (op other): fd, path, req = aio_nbytes, offset =
 *     aio_offset, ret the C value (0: queued);
 *   - lio_listio: the same event per LIO_READ/LIO_WRITE element, flags = its opcode;
 *   - aio_return of a traced request: an aio_read_done or aio_write_done event (op read or
 *     write) with the request's fd, path, req and offset, ret the bytes done (-1 with errno =
 *     aio_error's on failure), aux = [posting function id, its t_start]; its time is
 *     aio_return's.  A request never passed to aio_return has no *_done event.
 * The stracer counts the helper threads' syscalls as covered: they are created while a posting
 * wrapper runs with IOT_SPAWNS_HELPERS in its marker (docs/stracer.md).  aio_fsync, aio_error, aio_suspend and aio_cancel are not
 * recorded. */
#include <aio.h>

#include "shim.h"

/* Before the real call: a request can complete, and be collected by another thread, before
 * aio_read returns. */
static void post(iot_ev *ev, const struct aiocb *cb, unsigned done_fn)
{
    iot_ev_fd(ev, cb->aio_fildes);
    iot_ev_fdpath(ev, cb->aio_fildes);
    iot_ev_req(ev, (int64_t)cb->aio_nbytes);
    iot_ev_off(ev, (int64_t)cb->aio_offset);
    iot_pend_add(&(iot_pend){.key = (uintptr_t)cb,
                             .kind = IOT_PEND_AIO,
                             .post_fn = ev->fn,
                             .done_fn = (uint16_t)done_fn,
                             .gen = iot_p.gen,
                             .fd = cb->aio_fildes,
                             .path = ev->path,
                             .asked = (int64_t)cb->aio_nbytes,
                             .off = (int64_t)cb->aio_offset,
                             .t_post = ev->t0});
}

/* The real call: the helper threads libc starts in it are the wrapper's (in_wrapper, shim.h). */
#define HELPERS(call)                                                   \
    (__extension__({                                                    \
        iot_t.in_wrapper += IOT_SPAWNS_HELPERS;                         \
        int r_ = (call);                                                \
        iot_t.in_wrapper -= IOT_SPAWNS_HELPERS;                         \
        r_;                                                             \
    }))

#define AIO_POST_BODY(FN, DONE_FN, real_call)                           \
    IOT_ENTER(FN, real_call);                                           \
    iot_t.busy = 1;                                                     \
    post(&ev, cb, DONE_FN);                                             \
    iot_t.busy = 0;                                                     \
    IOT_CALL(int, HELPERS(real_call), r, r != 0);                       \
    if (r != 0)                                                         \
        iot_pend_take(IOT_PEND_AIO, (uintptr_t)cb, NULL);               \
    IOT_LEAVE(r)

IOT_API int aio_read(struct aiocb *cb)
{
    IOT_REAL(aio_read);
    AIO_POST_BODY(IOT_FN_aio_read, IOT_FN_aio_read_done, real_aio_read(cb));
}

IOT_API int aio_write(struct aiocb *cb)
{
    IOT_REAL(aio_write);
    AIO_POST_BODY(IOT_FN_aio_write, IOT_FN_aio_write_done, real_aio_write(cb));
}

IOT_API int lio_listio(int mode, struct aiocb *const list[], int nent, struct sigevent *sev)
{
    IOT_REAL(lio_listio);
    iot_ev ev[32];
    const struct aiocb *cbs[32];
    if (nent <= 0 || nent > 32 || !iot_enter(&ev[0], IOT_FN_lio_listio))
        return real_lio_listio(mode, list, nent, sev); /* long lists: not recorded */
    iot_t.busy = 1;
    int k = 0;
    for (int i = 0; i < nent; i++) {
        const struct aiocb *cb = list[i];
        if (!cb || (cb->aio_lio_opcode != LIO_READ && cb->aio_lio_opcode != LIO_WRITE))
            continue;
        if (k)
            ev[k] = ev[0];
        ev[k].has = 0;
        iot_ev_flags(&ev[k], cb->aio_lio_opcode);
        post(&ev[k], cb, cb->aio_lio_opcode == LIO_READ ? IOT_FN_aio_read_done
                                                          : IOT_FN_aio_write_done);
        cbs[k++] = cb;
    }
    iot_t.busy = 0;
    int r = HELPERS(real_lio_listio(mode, list, nent, sev));
    iot_done(&ev[0], r, r != 0);
    for (int j = 1; j < k; j++) { /* one call: the others share its times and result */
        ev[j].t0 = ev[0].t0;
        ev[j].t1 = ev[0].t1;
        ev[j].ret = ev[0].ret;
        ev[j].err = ev[0].err;
        ev[j].saved_errno = ev[0].saved_errno;
    }
    for (int j = 0; j < k; j++) {
        /* EAGAIN/EINVAL/ENOMEM: none queued; EIO: each element's own aio_error says */
        if (r != 0 && ev[j].err != EIO)
            iot_pend_take(IOT_PEND_AIO, (uintptr_t)cbs[j], NULL);
    }
    for (int j = 0; j < (k ? k : 1); j++) { /* only LIO_NOPs: the call's own event */
        iot_t.busy = 1; /* iot_leave ends the shim's work: each of them */
        iot_leave(&ev[j]);
    }
    return r;
}

IOT_API ssize_t aio_return(struct aiocb *cb)
{
    IOT_REAL(aio_return);
    IOT_REAL(aio_error);
    iot_pend e;
    if (iot_pend_none(IOT_PEND_AIO) || !iot_pend_take(IOT_PEND_AIO, (uintptr_t)cb, &e))
        return real_aio_return(cb);
    int saved = errno;
    int err = real_aio_error(cb);
    errno = saved;
    if (err == EINPROGRESS) { /* collected too early (undefined): keep waiting for it */
        iot_pend_add(&e);
        return real_aio_return(cb);
    }
    IOT_ENTER(e.done_fn, real_aio_return(cb));
    IOT_CALL(ssize_t, real_aio_return(cb), r, 0);
    if (r < 0)
        ev.err = err;
    iot_pend_fill(&ev, &e);
    IOT_LEAVE(r);
}

/* The 64 names take struct aiocb64, the same layout on 64-bit targets (off_t is 64 bits) and
 * aliases of the same glibc functions: they go through the wrappers above. */
_Static_assert(sizeof(struct aiocb) == sizeof(struct aiocb64), "aiocb64 is aiocb");

IOT_API int aio_read64(struct aiocb64 *cb)
{
    return aio_read((struct aiocb *)cb);
}

IOT_API int aio_write64(struct aiocb64 *cb)
{
    return aio_write((struct aiocb *)cb);
}

IOT_API int lio_listio64(int mode, struct aiocb64 *const list[], int nent, struct sigevent *sev)
{
    return lio_listio(mode, (struct aiocb *const *)list, nent, sev);
}

IOT_API ssize_t aio_return64(struct aiocb64 *cb)
{
    return aio_return((struct aiocb *)cb);
}
