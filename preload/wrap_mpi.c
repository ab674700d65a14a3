/* Wrappers: MPI-IO.  Built only when CMake found an MPI, against that MPI's mpi.h (Open MPI and
 * MPICH handles differ); docs/format.md says what the events hold, docs/mpi.md how to use them.
 *
 * Real functions are the profiling entry points (PMPI_*), found with dlsym at first use: the
 * shim never links libmpi, so a program without MPI never loads it and never reaches these.
 *
 * ROMIO/OMPIO do the file I/O of an MPI-IO call through libc (pwrite, pread...): the fd
 * wrappers record it in the same thread, inside the MPI event's time span, and that containment
 * is what ties the two.  So while the real MPI call runs the shim is neither busy nor "in a
 * wrapper" (the stracer's marker): inner calls are recorded, and inner syscalls that bypass libc
 * still count as missed. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "shim.h"

#ifdef OPEN_MPI
/* Open MPI's MPI_BYTE is the address of libmpi data: weak, so the shim still loads into
 * programs without libmpi (which never call these wrappers). */
#pragma weak ompi_mpi_byte
/* A libmpi loaded with RTLD_LOCAL (by Python's mpi4py or h5py) leaves the weak reference NULL:
 * its MPI_BYTE is then found by name. */
static MPI_Datatype byte_type(void)
{
    static MPI_Datatype b;
    if (IOT_UNLIKELY(!b))
        b = &ompi_mpi_byte ? MPI_BYTE : (MPI_Datatype)iot_dlsym_any("ompi_mpi_byte");
    return b;
}
#else
#define byte_type() MPI_BYTE
#endif

/* The real MPI function NAME is PMPI_NAME. */
#define IOT_PMPI(name) IOT_REAL_AS(real_##name, "P" #name, P##name)

/* How a nonblocking request completed: the `flags` of its *_done event. */
enum { BY_WAIT, BY_TEST, BY_WAITALL, BY_TESTALL, BY_WAITANY, BY_TESTANY, BY_WAITSOME, BY_TESTSOME };

/* ---- small PMPI helpers: bookkeeping, never the app's calls ---- */

static int err_class(int rc)
{
    IOT_PMPI(MPI_Error_class);
    int c;
    return real_MPI_Error_class(rc, &c) == MPI_SUCCESS ? c : rc;
}

static int64_t type_bytes(MPI_Datatype t, int count)
{
    IOT_PMPI(MPI_Type_size_x);
    MPI_Count sz;
    return real_MPI_Type_size_x(t, &sz) == MPI_SUCCESS && sz != MPI_UNDEFINED
               ? (int64_t)sz * count : -1;
}

/* Bytes a completed call moved.  Both Open MPI and MPICH keep bytes in the status; asking in
 * MPI_BYTE needs no datatype (the app may have freed it) and never gives MPI_UNDEFINED for a
 * partial last element. */
static int64_t status_bytes(const MPI_Status *st)
{
    IOT_PMPI(MPI_Get_elements_x);
    MPI_Count n;
    return real_MPI_Get_elements_x(st, byte_type(), &n) == MPI_SUCCESS && n != MPI_UNDEFINED
               ? (int64_t)n : 0;
}

/* Etype offset `off` in the current view -> absolute byte offset in the file. */
static int64_t byte_off(MPI_File fh, MPI_Offset off)
{
    IOT_PMPI(MPI_File_get_byte_offset);
    MPI_Offset b;
    if (off < 0 || real_MPI_File_get_byte_offset(fh, off, &b) != MPI_SUCCESS)
        return IOT_NO_OFFSET;
    return (int64_t)b;
}

/* Byte offset of the individual file pointer. */
static int64_t file_pos(MPI_File fh)
{
    IOT_PMPI(MPI_File_get_position);
    MPI_Offset pos;
    if (real_MPI_File_get_position(fh, &pos) != MPI_SUCCESS)
        return IOT_NO_OFFSET;
    return byte_off(fh, pos);
}

/* ROMIO's file-system prefixes ("ufs:/scratch/x") are not part of the path. */
static const char *strip_prefix(const char *name)
{
    static const char *const pfx[] = {"ufs:", "nfs:", "lustre:", "gpfs:", "pvfs2:", "panfs:",
                                      "xfs:", "testfs:", "daos:", "beegfs:", "ime:", "quobyte:"};
    if (name)
        for (size_t i = 0; i < sizeof pfx / sizeof *pfx; i++)
            if (strncmp(name, pfx[i], strlen(pfx[i])) == 0)
                return name + strlen(pfx[i]);
    return name;
}

/* ---- MPI_File -> path string id (few files: a locked array) ---- */

typedef struct {
    MPI_File fh;
    uint32_t path;
    unsigned gen; /* string ids are per process generation: a forked child has none of them */
} file_ent;

static pthread_mutex_t files_lock = PTHREAD_MUTEX_INITIALIZER;
static file_ent *files;
static int nfiles, capfiles;

static void file_add(MPI_File fh, uint32_t path)
{
    pthread_mutex_lock(&files_lock);
    int i = 0;
    while (i < nfiles && files[i].fh != fh)
        i++;
    if (i == nfiles) {
        if (nfiles == capfiles) {
            int cap = capfiles ? 2 * capfiles : 16;
            file_ent *f = realloc(files, (size_t)cap * sizeof *f);
            if (!f)
                goto out;
            files = f;
            capfiles = cap;
        }
        nfiles++;
    }
    files[i] = (file_ent){fh, path, iot_p.gen};
out:
    pthread_mutex_unlock(&files_lock);
}

static uint32_t file_path(MPI_File fh, int forget)
{
    uint32_t path = 0;
    pthread_mutex_lock(&files_lock);
    for (int i = 0; i < nfiles; i++)
        if (files[i].fh == fh) {
            if (files[i].gen == iot_p.gen)
                path = files[i].path;
            if (forget)
                files[i] = files[--nfiles];
            break;
        }
    pthread_mutex_unlock(&files_lock);
    return path;
}

/* ---- outstanding nonblocking requests, completed in MPI_Wait/MPI_Test & co. ---- */

/* MPI_Request is a pointer (Open MPI) or an int (MPICH): either way a key for pending.c */
#define REQ_KEY(r) ((uintptr_t)(r))

/* ---- the wrapper shape, for calls whose real work is done by libc calls of their own ---- */

/* 1: the MPI in the process is the family this file was compiled for (a symbol only that
 * family's libmpi exports).  The other family's shim passes every call through untraced: its
 * handles and constants would be wrong (`iotrace run` preloads the matching shim). */
int iot_mpi_is_ours(void)
{
    static int ours; /* 0: not asked yet, 1 yes, -1 no */
    if (IOT_UNLIKELY(!ours)) {
#ifdef OPEN_MPI
        const char *probe = "ompi_mpi_comm_world";
#else
        const char *probe = "MPIR_Err_return_comm";
#endif
        ours = dlsym(RTLD_DEFAULT, probe) || iot_dlsym_any(probe) ? 1 : -1;
    }
    return ours > 0;
}

/* shim.h's layer shape (see the top of this file) */
static inline int mpi_enter(iot_ev *ev, unsigned fn)
{
    return iot_mpi_is_ours() && iot_enter_layer(ev, fn);
}

/* ret: 0, or -1 with errno = the MPI error class of r. */
#define MPI_CALL(call) IOT_LAYER_CALL(int, call, 0, r != MPI_SUCCESS, err_class(r))

/* The individual file pointer before a call moves it: the shim's work (busy), not the call's
 * time (the event starts after it). */
static int64_t pos_before(iot_ev *ev, MPI_File fh)
{
    iot_t.busy = 1;
    int64_t off = file_pos(fh);
    iot_t.busy = 0;
    ev->t0 = iot_now();
    return off;
}

/* The bytes asked: on a failed call only if the datatype was not what failed it (asking MPI
 * about a bad datatype would raise an error of our own). */
static void mpi_req(iot_ev *ev, int rc, MPI_Datatype type, int count)
{
    if (rc != MPI_SUCCESS) {
        int c = ev->err;
        if (c == MPI_ERR_TYPE || c == MPI_ERR_ARG || c == MPI_ERR_COUNT || c == MPI_ERR_FILE)
            return;
    }
    int64_t n = type_bytes(type, count);
    if (n >= 0)
        iot_ev_req(ev, n);
}

/* Blocking data calls.  OFF_BEFORE is evaluated before the call (the individual file pointer
 * moves with it), OFF_AFTER after it (an explicit offset is converted through the view once
 * the call has shown it valid).  ret = bytes done, from the status: an app passing
 * MPI_STATUS_IGNORE gets ours in its place. */
#define DATA_BODY(FN, OFF_BEFORE, OFF_AFTER, real_call)                 \
    IOT_ENTER_BY(mpi_enter, FN, real_call);                             \
    int64_t off = OFF_BEFORE;                                           \
    (void)off; /* explicit offsets: unused */                           \
    MPI_Status own;                                                     \
    if (status == MPI_STATUS_IGNORE)                                    \
        status = &own;                                                  \
    MPI_CALL(real_call);                                                \
    ev.path = file_path(fh, 0);                                         \
    mpi_req(&ev, r, datatype, count);                                   \
    if (r == MPI_SUCCESS)                                               \
        ev.ret = status_bytes(status);                                  \
    iot_ev_off(&ev, OFF_AFTER);                                         \
    IOT_LEAVE(r)

#define PTR_DATA(FN, real_call) DATA_BODY(FN, pos_before(&ev, fh), off, real_call)
#define AT_DATA(FN, real_call) DATA_BODY(FN, IOT_NO_OFFSET, byte_off(fh, offset), real_call)
/* Shared file pointer: its value lives in a shared file or another process; reading it would
 * be I/O of its own, so no offset. */
#define SHARED_DATA(FN, real_call) DATA_BODY(FN, IOT_NO_OFFSET, off, real_call)

#define CV const void * /* MPI-3 write buffers */

IOT_API int MPI_File_read(MPI_File fh, void *buf, int count, MPI_Datatype datatype,
                          MPI_Status *status)
{
    IOT_PMPI(MPI_File_read);
    PTR_DATA(IOT_FN_MPI_File_read, real_MPI_File_read(fh, buf, count, datatype, status));
}

IOT_API int MPI_File_write(MPI_File fh, CV buf, int count, MPI_Datatype datatype,
                           MPI_Status *status)
{
    IOT_PMPI(MPI_File_write);
    PTR_DATA(IOT_FN_MPI_File_write, real_MPI_File_write(fh, buf, count, datatype, status));
}

IOT_API int MPI_File_read_all(MPI_File fh, void *buf, int count, MPI_Datatype datatype,
                              MPI_Status *status)
{
    IOT_PMPI(MPI_File_read_all);
    PTR_DATA(IOT_FN_MPI_File_read_all,
             real_MPI_File_read_all(fh, buf, count, datatype, status));
}

IOT_API int MPI_File_write_all(MPI_File fh, CV buf, int count, MPI_Datatype datatype,
                               MPI_Status *status)
{
    IOT_PMPI(MPI_File_write_all);
    PTR_DATA(IOT_FN_MPI_File_write_all,
             real_MPI_File_write_all(fh, buf, count, datatype, status));
}

IOT_API int MPI_File_read_at(MPI_File fh, MPI_Offset offset, void *buf, int count,
                             MPI_Datatype datatype, MPI_Status *status)
{
    IOT_PMPI(MPI_File_read_at);
    AT_DATA(IOT_FN_MPI_File_read_at,
            real_MPI_File_read_at(fh, offset, buf, count, datatype, status));
}

IOT_API int MPI_File_write_at(MPI_File fh, MPI_Offset offset, CV buf, int count,
                              MPI_Datatype datatype, MPI_Status *status)
{
    IOT_PMPI(MPI_File_write_at);
    AT_DATA(IOT_FN_MPI_File_write_at,
            real_MPI_File_write_at(fh, offset, buf, count, datatype, status));
}

IOT_API int MPI_File_read_at_all(MPI_File fh, MPI_Offset offset, void *buf, int count,
                                 MPI_Datatype datatype, MPI_Status *status)
{
    IOT_PMPI(MPI_File_read_at_all);
    AT_DATA(IOT_FN_MPI_File_read_at_all,
            real_MPI_File_read_at_all(fh, offset, buf, count, datatype, status));
}

IOT_API int MPI_File_write_at_all(MPI_File fh, MPI_Offset offset, CV buf, int count,
                                  MPI_Datatype datatype, MPI_Status *status)
{
    IOT_PMPI(MPI_File_write_at_all);
    AT_DATA(IOT_FN_MPI_File_write_at_all,
            real_MPI_File_write_at_all(fh, offset, buf, count, datatype, status));
}

IOT_API int MPI_File_read_shared(MPI_File fh, void *buf, int count, MPI_Datatype datatype,
                                 MPI_Status *status)
{
    IOT_PMPI(MPI_File_read_shared);
    SHARED_DATA(IOT_FN_MPI_File_read_shared,
                real_MPI_File_read_shared(fh, buf, count, datatype, status));
}

IOT_API int MPI_File_write_shared(MPI_File fh, CV buf, int count, MPI_Datatype datatype,
                                  MPI_Status *status)
{
    IOT_PMPI(MPI_File_write_shared);
    SHARED_DATA(IOT_FN_MPI_File_write_shared,
                real_MPI_File_write_shared(fh, buf, count, datatype, status));
}

IOT_API int MPI_File_read_ordered(MPI_File fh, void *buf, int count, MPI_Datatype datatype,
                                  MPI_Status *status)
{
    IOT_PMPI(MPI_File_read_ordered);
    SHARED_DATA(IOT_FN_MPI_File_read_ordered,
                real_MPI_File_read_ordered(fh, buf, count, datatype, status));
}

IOT_API int MPI_File_write_ordered(MPI_File fh, CV buf, int count, MPI_Datatype datatype,
                                   MPI_Status *status)
{
    IOT_PMPI(MPI_File_write_ordered);
    SHARED_DATA(IOT_FN_MPI_File_write_ordered,
                real_MPI_File_write_ordered(fh, buf, count, datatype, status));
}

/* Nonblocking data calls: the event of the call has req and offset, ret 0; the bytes done come
 * in a *_done event when MPI_Wait/MPI_Test & co. complete the request. */
#define NONBLOCKING_BODY(FN, DONE_FN, OFF_BEFORE, OFF_AFTER, real_call) \
    IOT_ENTER_BY(mpi_enter, FN, real_call);                             \
    int64_t off = OFF_BEFORE;                                           \
    (void)off;                                                          \
    MPI_CALL(real_call);                                                \
    ev.path = file_path(fh, 0);                                         \
    mpi_req(&ev, r, datatype, count);                                   \
    int64_t at = OFF_AFTER;                                             \
    iot_ev_off(&ev, at);                                                \
    if (r == MPI_SUCCESS)                                               \
        iot_pend_add(&(iot_pend){.key = REQ_KEY(*request),              \
                                 .kind = IOT_PEND_MPI,                  \
                                 .post_fn = FN,                         \
                                 .done_fn = DONE_FN,                    \
                                 .gen = iot_p.gen,                      \
                                 .fd = -1,                              \
                                 .path = ev.path,                       \
                                 .asked = (ev.has & IOT_HAS_REQ) ? ev.req : -1, \
                                 .off = at,                             \
                                 .t_post = ev.t0});                     \
    IOT_LEAVE(r)

#define PTR_POST(FN, DONE, real_call) \
    NONBLOCKING_BODY(FN, DONE, pos_before(&ev, fh), off, real_call)
#define AT_POST(FN, DONE, real_call) \
    NONBLOCKING_BODY(FN, DONE, IOT_NO_OFFSET, byte_off(fh, offset), real_call)
#define RD_DONE IOT_FN_MPI_File_iread_done
#define WR_DONE IOT_FN_MPI_File_iwrite_done

IOT_API int MPI_File_iread(MPI_File fh, void *buf, int count, MPI_Datatype datatype,
                           MPI_Request *request)
{
    IOT_PMPI(MPI_File_iread);
    PTR_POST(IOT_FN_MPI_File_iread, RD_DONE,
             real_MPI_File_iread(fh, buf, count, datatype, request));
}

IOT_API int MPI_File_iwrite(MPI_File fh, CV buf, int count, MPI_Datatype datatype,
                            MPI_Request *request)
{
    IOT_PMPI(MPI_File_iwrite);
    PTR_POST(IOT_FN_MPI_File_iwrite, WR_DONE,
             real_MPI_File_iwrite(fh, buf, count, datatype, request));
}

IOT_API int MPI_File_iread_all(MPI_File fh, void *buf, int count, MPI_Datatype datatype,
                               MPI_Request *request)
{
    IOT_PMPI(MPI_File_iread_all);
    PTR_POST(IOT_FN_MPI_File_iread_all, RD_DONE,
             real_MPI_File_iread_all(fh, buf, count, datatype, request));
}

IOT_API int MPI_File_iwrite_all(MPI_File fh, CV buf, int count, MPI_Datatype datatype,
                                MPI_Request *request)
{
    IOT_PMPI(MPI_File_iwrite_all);
    PTR_POST(IOT_FN_MPI_File_iwrite_all, WR_DONE,
             real_MPI_File_iwrite_all(fh, buf, count, datatype, request));
}

IOT_API int MPI_File_iread_at(MPI_File fh, MPI_Offset offset, void *buf, int count,
                              MPI_Datatype datatype, MPI_Request *request)
{
    IOT_PMPI(MPI_File_iread_at);
    AT_POST(IOT_FN_MPI_File_iread_at, RD_DONE,
            real_MPI_File_iread_at(fh, offset, buf, count, datatype, request));
}

IOT_API int MPI_File_iwrite_at(MPI_File fh, MPI_Offset offset, CV buf, int count,
                               MPI_Datatype datatype, MPI_Request *request)
{
    IOT_PMPI(MPI_File_iwrite_at);
    AT_POST(IOT_FN_MPI_File_iwrite_at, WR_DONE,
            real_MPI_File_iwrite_at(fh, offset, buf, count, datatype, request));
}

IOT_API int MPI_File_iread_at_all(MPI_File fh, MPI_Offset offset, void *buf, int count,
                                  MPI_Datatype datatype, MPI_Request *request)
{
    IOT_PMPI(MPI_File_iread_at_all);
    AT_POST(IOT_FN_MPI_File_iread_at_all, RD_DONE,
            real_MPI_File_iread_at_all(fh, offset, buf, count, datatype, request));
}

IOT_API int MPI_File_iwrite_at_all(MPI_File fh, MPI_Offset offset, CV buf, int count,
                                   MPI_Datatype datatype, MPI_Request *request)
{
    IOT_PMPI(MPI_File_iwrite_at_all);
    AT_POST(IOT_FN_MPI_File_iwrite_at_all, WR_DONE,
            real_MPI_File_iwrite_at_all(fh, offset, buf, count, datatype, request));
}

/* ---- completion: one *_done event per traced request a call completed ---- */

/* The traced requests among those a completion call was given, saved before the call (it sets
 * completed handles to MPI_REQUEST_NULL). */
typedef struct {
    int n;
    int *idx;           /* their positions in the call's array */
    iot_pend *ent;
    int small_idx[8];
    iot_pend small_ent[8];
} saved_t;

static void saved_free(saved_t *s)
{
    if (s->idx != s->small_idx) {
        free(s->idx);
        free(s->ent);
    }
}

/* How many of reqs[0..count) are traced; 0 leaves nothing to free. */
static int save_pending(saved_t *s, const MPI_Request *reqs, int count)
{
    s->n = 0;
    s->idx = s->small_idx;
    s->ent = s->small_ent;
    if (count > 8) {
        s->idx = malloc((size_t)count * sizeof *s->idx);
        s->ent = malloc((size_t)count * sizeof *s->ent);
        if (!s->idx || !s->ent) {
            saved_free(s);
            return 0;
        }
    }
    for (int i = 0; i < count; i++)
        if (iot_pend_peek(IOT_PEND_MPI, REQ_KEY(reqs[i]), &s->ent[s->n]))
            s->idx[s->n++] = i;
    if (!s->n)
        saved_free(s);
    return s->n;
}

/* The *_done event of request i of the call (`call` holds the call's times), if i is traced.
 * The first event of a call spans it; more from the same call start at its end with no
 * duration, so durations still add up to the time spent. */
static void emit_done(const iot_ev *call, const saved_t *s, int i, int rc,
                      const MPI_Status *st, int by, int *emitted)
{
    int k = 0;
    while (k < s->n && s->idx[k] != i)
        k++;
    if (k == s->n)
        return;
    const iot_pend *e = &s->ent[k];
    /* MPI_ERR_IN_STATUS: each request's own error is in its status */
    int err = rc == MPI_ERR_IN_STATUS ? st->MPI_ERROR : rc;
    if (err == MPI_ERR_PENDING)
        return; /* not completed by this call */
    if (!iot_pend_take(IOT_PEND_MPI, e->key, NULL))
        return; /* freed or completed by another thread meanwhile */
    iot_ev ev = *call;
    ev.fn = e->done_fn;
    if (*emitted)
        ev.t0 = ev.t1;
    if (err != MPI_SUCCESS) {
        ev.ret = -1;
        ev.err = err_class(err);
    } else {
        ev.ret = status_bytes(st);
        ev.err = 0;
    }
    ev.path = e->path;
    if (e->asked >= 0)
        iot_ev_req(&ev, e->asked);
    iot_ev_off(&ev, e->off);
    iot_ev_flags(&ev, by);
    iot_ev_aux2(&ev, e->post_fn, (int64_t)e->t_post);
    iot_leave(&ev);
    iot_t.busy = 1; /* iot_leave ended the bookkeeping: there may be more */
    (*emitted)++;
}

/* The end of a completion call's bookkeeping (iot_leave's part), whatever it emitted. */
static void done_leave(const iot_ev *call, saved_t *s)
{
    saved_free(s);
    iot_t.busy = 0;
    errno = call->saved_errno;
}

/* Statuses for the *all / *some calls: the app's, or ours when it passed MPI_STATUSES_IGNORE. */
static MPI_Status *statuses(MPI_Status *app, int count, MPI_Status *small, int nsmall)
{
    if (app != MPI_STATUSES_IGNORE)
        return app;
    return count <= nsmall ? small : malloc((size_t)count * sizeof *app);
}

/* The common shape.  Untraced (and costing one load) unless an I/O request is outstanding;
 * then untraced unless one of this call's requests is one.  STATUS_SETUP points the call at
 * statuses we can read; EMIT emits the *_done events once the call returned r. */
#define DONE_BODY(COUNT, REQS, real_call, STATUS_SETUP, EMIT, STATUS_FREE)          \
    if (iot_pend_none(IOT_PEND_MPI))                                                \
        return real_call;                                                           \
    saved_t s;                                                                      \
    iot_ev ev;                                                                      \
    if (!save_pending(&s, REQS, COUNT))                                             \
        return real_call;                                                           \
    if (!mpi_enter(&ev, IOT_FN_MPI_File_iwrite_done)) {                             \
        saved_free(&s);                                                             \
        return real_call;                                                           \
    }                                                                               \
    STATUS_SETUP;                                                                   \
    MPI_CALL(real_call);                                                            \
    int n = 0;                                                                      \
    EMIT;                                                                           \
    STATUS_FREE;                                                                    \
    done_leave(&ev, &s);                                                            \
    return r

/* One request, one status. */
#define OWN_STATUS                                                                  \
    MPI_Status own;                                                                 \
    if (status == MPI_STATUS_IGNORE)                                                \
        status = &own

/* An array of statuses (a failed malloc: the app's MPI_STATUSES_IGNORE, and no events). */
#define OWN_STATUSES                                                                \
    MPI_Status small[8], *app = sts;                                                \
    sts = statuses(app, count, small, 8);                                           \
    if (!sts)                                                                       \
        sts = app
#define FREE_STATUSES                                                               \
    if (sts != app && sts != small)                                                 \
        free(sts)
#define STATUSES_OK (sts != MPI_STATUSES_IGNORE && (r == MPI_SUCCESS || r == MPI_ERR_IN_STATUS))

IOT_API int MPI_Wait(MPI_Request *request, MPI_Status *status)
{
    IOT_PMPI(MPI_Wait);
    DONE_BODY(1, request, real_MPI_Wait(request, status), OWN_STATUS,
              emit_done(&ev, &s, 0, r, status, BY_WAIT, &n), (void)0);
}

IOT_API int MPI_Test(MPI_Request *request, int *flag, MPI_Status *status)
{
    IOT_PMPI(MPI_Test);
    DONE_BODY(1, request, real_MPI_Test(request, flag, status), OWN_STATUS,
              if (r != MPI_SUCCESS || *flag)
                  emit_done(&ev, &s, 0, r, status, BY_TEST, &n),
              (void)0);
}

IOT_API int MPI_Waitany(int count, MPI_Request reqs[], int *index, MPI_Status *status)
{
    IOT_PMPI(MPI_Waitany);
    DONE_BODY(count, reqs, real_MPI_Waitany(count, reqs, index, status), OWN_STATUS,
              if (*index != MPI_UNDEFINED)
                  emit_done(&ev, &s, *index, r, status, BY_WAITANY, &n),
              (void)0);
}

IOT_API int MPI_Testany(int count, MPI_Request reqs[], int *index, int *flag,
                        MPI_Status *status)
{
    IOT_PMPI(MPI_Testany);
    DONE_BODY(count, reqs, real_MPI_Testany(count, reqs, index, flag, status), OWN_STATUS,
              if ((r != MPI_SUCCESS || *flag) && *index != MPI_UNDEFINED)
                  emit_done(&ev, &s, *index, r, status, BY_TESTANY, &n),
              (void)0);
}

/* Waitall/Testall: status i is request i's. */
IOT_API int MPI_Waitall(int count, MPI_Request reqs[], MPI_Status *sts)
{
    IOT_PMPI(MPI_Waitall);
    DONE_BODY(count, reqs, real_MPI_Waitall(count, reqs, sts), OWN_STATUSES,
              if (STATUSES_OK)
                  for (int k = 0; k < s.n; k++)
                      emit_done(&ev, &s, s.idx[k], r, &sts[s.idx[k]], BY_WAITALL, &n),
              FREE_STATUSES);
}

IOT_API int MPI_Testall(int count, MPI_Request reqs[], int *flag, MPI_Status *sts)
{
    IOT_PMPI(MPI_Testall);
    DONE_BODY(count, reqs, real_MPI_Testall(count, reqs, flag, sts), OWN_STATUSES,
              if (STATUSES_OK && (r != MPI_SUCCESS || *flag))
                  for (int k = 0; k < s.n; k++)
                      emit_done(&ev, &s, s.idx[k], r, &sts[s.idx[k]], BY_TESTALL, &n),
              FREE_STATUSES);
}

/* Waitsome/Testsome: status j is request indices[j]'s. */
IOT_API int MPI_Waitsome(int count, MPI_Request reqs[], int *outcount, int indices[],
                         MPI_Status *sts)
{
    IOT_PMPI(MPI_Waitsome);
    DONE_BODY(count, reqs, real_MPI_Waitsome(count, reqs, outcount, indices, sts),
              OWN_STATUSES,
              if (STATUSES_OK && *outcount != MPI_UNDEFINED)
                  for (int j = 0; j < *outcount; j++)
                      emit_done(&ev, &s, indices[j], r, &sts[j], BY_WAITSOME, &n),
              FREE_STATUSES);
}

IOT_API int MPI_Testsome(int count, MPI_Request reqs[], int *outcount, int indices[],
                         MPI_Status *sts)
{
    IOT_PMPI(MPI_Testsome);
    DONE_BODY(count, reqs, real_MPI_Testsome(count, reqs, outcount, indices, sts),
              OWN_STATUSES,
              if (STATUSES_OK && *outcount != MPI_UNDEFINED)
                  for (int j = 0; j < *outcount; j++)
                      emit_done(&ev, &s, indices[j], r, &sts[j], BY_TESTSOME, &n),
              FREE_STATUSES);
}

/* A freed request completes unseen: forget it (its handle may be reused). */
IOT_API int MPI_Request_free(MPI_Request *request)
{
    IOT_PMPI(MPI_Request_free);
    if (!iot_pend_none(IOT_PEND_MPI))
        iot_pend_take(IOT_PEND_MPI, REQ_KEY(*request), NULL);
    return real_MPI_Request_free(request);
}

/* ---- open, close and the rest ---- */

IOT_API int MPI_File_open(MPI_Comm comm, const char *filename, int amode, MPI_Info info,
                          MPI_File *fh)
{
    IOT_PMPI(MPI_File_open);
    IOT_ENTER_BY(mpi_enter, IOT_FN_MPI_File_open,
                 real_MPI_File_open(comm, filename, amode, info, fh));
    MPI_CALL(real_MPI_File_open(comm, filename, amode, info, fh));
    iot_ev_path(&ev, strip_prefix(filename));
    iot_ev_flags(&ev, amode);
    if (r == MPI_SUCCESS) {
        IOT_PMPI(MPI_Comm_size);
        int n;
        if (real_MPI_Comm_size(comm, &n) == MPI_SUCCESS)
            iot_ev_aux(&ev, n); /* ranks that opened it together */
        file_add(*fh, ev.path);
    }
    IOT_LEAVE(r);
}

IOT_API int MPI_File_close(MPI_File *fh)
{
    IOT_PMPI(MPI_File_close);
    IOT_ENTER_BY(mpi_enter, IOT_FN_MPI_File_close, real_MPI_File_close(fh));
    MPI_File was = *fh; /* the call sets it to MPI_FILE_NULL */
    MPI_CALL(real_MPI_File_close(fh));
    ev.path = file_path(was, r == MPI_SUCCESS);
    IOT_LEAVE(r);
}

IOT_API int MPI_File_delete(const char *filename, MPI_Info info)
{
    IOT_PMPI(MPI_File_delete);
    IOT_ENTER_BY(mpi_enter, IOT_FN_MPI_File_delete, real_MPI_File_delete(filename, info));
    MPI_CALL(real_MPI_File_delete(filename, info));
    iot_ev_path(&ev, strip_prefix(filename));
    IOT_LEAVE(r);
}

/* offset = the byte offset the individual file pointer moved to, aux = whence. */
IOT_API int MPI_File_seek(MPI_File fh, MPI_Offset offset, int whence)
{
    IOT_PMPI(MPI_File_seek);
    IOT_ENTER_BY(mpi_enter, IOT_FN_MPI_File_seek, real_MPI_File_seek(fh, offset, whence));
    MPI_CALL(real_MPI_File_seek(fh, offset, whence));
    ev.path = file_path(fh, 0);
    if (r == MPI_SUCCESS)
        iot_ev_off(&ev, file_pos(fh));
    iot_ev_aux(&ev, whence);
    IOT_LEAVE(r);
}

/* offset = disp; aux = [filetype size, filetype extent] (equal for a contiguous view). */
IOT_API int MPI_File_set_view(MPI_File fh, MPI_Offset disp, MPI_Datatype etype,
                              MPI_Datatype filetype, const char *datarep, MPI_Info info)
{
    IOT_PMPI(MPI_File_set_view);
    IOT_ENTER_BY(mpi_enter, IOT_FN_MPI_File_set_view,
                 real_MPI_File_set_view(fh, disp, etype, filetype, datarep, info));
    MPI_CALL(real_MPI_File_set_view(fh, disp, etype, filetype, datarep, info));
    ev.path = file_path(fh, 0);
    iot_ev_off(&ev, disp);
    if (r == MPI_SUCCESS) {
        IOT_PMPI(MPI_Type_get_extent_x);
        MPI_Count lb, extent;
        int64_t size = type_bytes(filetype, 1);
        if (size >= 0 && real_MPI_Type_get_extent_x(filetype, &lb, &extent) == MPI_SUCCESS)
            iot_ev_aux2(&ev, size, extent);
    }
    IOT_LEAVE(r);
}

IOT_API int MPI_File_sync(MPI_File fh)
{
    IOT_PMPI(MPI_File_sync);
    IOT_ENTER_BY(mpi_enter, IOT_FN_MPI_File_sync, real_MPI_File_sync(fh));
    MPI_CALL(real_MPI_File_sync(fh));
    ev.path = file_path(fh, 0);
    IOT_LEAVE(r);
}

/* offset = the new size. */
IOT_API int MPI_File_set_size(MPI_File fh, MPI_Offset size)
{
    IOT_PMPI(MPI_File_set_size);
    IOT_ENTER_BY(mpi_enter, IOT_FN_MPI_File_set_size, real_MPI_File_set_size(fh, size));
    MPI_CALL(real_MPI_File_set_size(fh, size));
    ev.path = file_path(fh, 0);
    iot_ev_off(&ev, size);
    IOT_LEAVE(r);
}
