/* Wrappers: HDF5 files and datasets (H5F*, H5D*) and the MPI-IO transfer properties.  Built
 * when CMake found HDF5's headers (with an MPI's, for a parallel HDF5); docs/format.md says
 * what the events hold, docs/hdf5.md how to read them.
 *
 * Real functions are found with dlsym at first use: the shim never links libhdf5.  Like the
 * MPI-IO wrappers, the real call runs with the shim neither busy nor "in a wrapper": the MPI-IO
 * and POSIX calls HDF5 makes for it are recorded in the same thread inside its time span, and
 * that containment is what ties them to it.
 *
 * What an event says about a data call is asked of HDF5 before the real call (the selection,
 * the datatype's size): a query after a failed call would clear the error stack the app may
 * print.  Queries run with HDF5's automatic error printing off, so that a bad id the app
 * passes gives no message of ours. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "shim.h"

#define IOT_H5(name) IOT_REAL_AS(real_##name, #name, name)
/* A function this libhdf5 may not have (a serial HDF5 has no MPI-IO properties): NULL then. */
#define IOT_H5_OPT(name)                                               \
    static __typeof__(name) *real_##name;                              \
    static int got_##name;                                             \
    if (IOT_UNLIKELY(!got_##name)) {                                   \
        real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name);     \
        got_##name = 1;                                                \
    }

/* What a failed HDF5 call's event carries as errno: HDF5 gives none. */
#define H5_FAILED EIO

/* ---- queries of our own, with HDF5's error printing off ---- */

typedef struct {
    H5E_auto2_t func;
    void *data;
    int saved; /* 0: left alone (an app on the H5Eset_auto1 API: H5Eget_auto2 refuses) */
} quiet_t;

static void quiet_on(quiet_t *q)
{
    IOT_H5(H5Eget_auto2);
    IOT_H5(H5Eset_auto2);
    q->saved = real_H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data) >= 0;
    if (q->saved && q->func)
        real_H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void quiet_off(const quiet_t *q)
{
    IOT_H5(H5Eset_auto2);
    if (q->saved && q->func)
        real_H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

/* The absolute path of the file an object is in (H5Fget_name) into out[cap]: its length, 0 if
 * none. */
static size_t file_of(hid_t id, char *out, size_t cap)
{
    IOT_H5(H5Fget_name);
    char buf[4096];
    ssize_t n = real_H5Fget_name(id, buf, sizeof buf);
    if (n <= 0 || (size_t)n >= sizeof buf)
        return 0;
    return iot_abspath(-100 /* AT_FDCWD */, buf, out, cap);
}

/* The interned path of an object: its file's, and for a dataset "FILE:NAME" with its name in
 * the file (H5Iget_name: "/g/temp"), as Darshan names its H5D records. */
static uint32_t path_of(hid_t id, int dataset)
{
    IOT_H5(H5Iget_name);
    char buf[8192];
    size_t n = file_of(id, buf, sizeof buf / 2);
    if (!n)
        return 0;
    if (dataset) {
        buf[n++] = ':';
        ssize_t k = real_H5Iget_name(id, buf + n, sizeof buf - n);
        if (k <= 0 || (size_t)k >= sizeof buf - n)
            return 0;
        n += (size_t)k;
    }
    return iot_intern_string(buf, n);
}

/* ---- hid -> (file path, dataset name): few objects, a locked array ---- */

typedef struct {
    hid_t id;
    uint32_t path; /* string id: the file's absolute path; a dataset's "FILE:NAME" */
    unsigned gen;  /* string ids are per process generation */
} obj_ent;

static pthread_mutex_t objs_lock = PTHREAD_MUTEX_INITIALIZER;
static obj_ent *objs;
static int nobjs, capobjs;

static void obj_add(hid_t id, uint32_t path)
{
    pthread_mutex_lock(&objs_lock);
    int i = 0;
    while (i < nobjs && objs[i].id != id)
        i++;
    if (i == nobjs) {
        if (nobjs == capobjs) {
            int cap = capobjs ? 2 * capobjs : 16;
            obj_ent *o = realloc(objs, (size_t)cap * sizeof *o);
            if (!o)
                goto out;
            objs = o;
            capobjs = cap;
        }
        nobjs++;
    }
    objs[i] = (obj_ent){id, path, iot_p.gen};
out:
    pthread_mutex_unlock(&objs_lock);
}

/* 1 and *o if known (forget: and drop it, its id is closed). */
static int obj_get(hid_t id, obj_ent *o, int forget)
{
    int found = 0;
    pthread_mutex_lock(&objs_lock);
    for (int i = 0; i < nobjs; i++)
        if (objs[i].id == id) {
            if (objs[i].gen == iot_p.gen) {
                *o = objs[i];
                found = 1;
            }
            if (forget)
                objs[i] = objs[--nobjs];
            break;
        }
    pthread_mutex_unlock(&objs_lock);
    return found;
}

/* The path of an object: known since it was made or opened, else asked of HDF5 (a dataset
 * opened in a way not wrapped: H5Oopen, before tracing began). */
static uint32_t obj_path(hid_t id, int dataset)
{
    obj_ent o;
    if (obj_get(id, &o, 0))
        return o.path;
    uint32_t path = path_of(id, dataset);
    if (path)
        obj_add(id, path);
    return path;
}

/* ---- the wrapper shape: like MPI-IO's, the calls inside are recorded ---- */

static inline int h5_enter(iot_ev *ev, unsigned fn)
{
    if (!iot_enter(ev, fn))
        return 0;
    iot_t.in_wrapper--; /* see the top of this file */
    return 1;
}

/* The shim's own work before the real call (busy), not the call's time. */
static inline void h5_work(void)
{
    iot_t.busy = 1;
}
static inline void h5_start(iot_ev *ev)
{
    iot_t.busy = 0;
    ev->t0 = iot_now();
}

/* ret: the call's value, or -1 with errno H5_FAILED. */
static inline void h5_done(iot_ev *ev, int64_t ret, int failed)
{
    iot_t.in_wrapper++;
    iot_done(ev, failed ? -1 : ret, 0);
    if (failed)
        ev->err = H5_FAILED;
}

/* ---- files ---- */

IOT_API hid_t H5Fcreate(const char *filename, unsigned flags, hid_t fcpl_id, hid_t fapl_id)
{
    IOT_H5(H5Fcreate);
    iot_ev ev;
    if (!h5_enter(&ev, IOT_FN_H5Fcreate))
        return real_H5Fcreate(filename, flags, fcpl_id, fapl_id);
    hid_t r = real_H5Fcreate(filename, flags, fcpl_id, fapl_id);
    h5_done(&ev, r, r < 0);
    iot_ev_path(&ev, filename);
    iot_ev_flags(&ev, flags);
    if (r >= 0)
        obj_add(r, ev.path);
    iot_leave(&ev);
    return r;
}

IOT_API hid_t H5Fopen(const char *filename, unsigned flags, hid_t fapl_id)
{
    IOT_H5(H5Fopen);
    iot_ev ev;
    if (!h5_enter(&ev, IOT_FN_H5Fopen))
        return real_H5Fopen(filename, flags, fapl_id);
    hid_t r = real_H5Fopen(filename, flags, fapl_id);
    h5_done(&ev, r, r < 0);
    iot_ev_path(&ev, filename);
    iot_ev_flags(&ev, flags);
    if (r >= 0)
        obj_add(r, ev.path);
    iot_leave(&ev);
    return r;
}

/* obj: any object in the file; its path asked before the call (the call may fail) */
IOT_API herr_t H5Fflush(hid_t obj_id, H5F_scope_t scope)
{
    IOT_H5(H5Fflush);
    iot_ev ev;
    if (!h5_enter(&ev, IOT_FN_H5Fflush))
        return real_H5Fflush(obj_id, scope);
    h5_work();
    quiet_t q;
    quiet_on(&q);
    uint32_t path = obj_path(obj_id, 0);
    quiet_off(&q);
    h5_start(&ev);
    herr_t r = real_H5Fflush(obj_id, scope);
    h5_done(&ev, r, r < 0);
    ev.path = path;
    iot_ev_flags(&ev, scope);
    iot_leave(&ev);
    return r;
}

/* H5Fclose and H5Dclose: the event names what the id was opened as; a closed id is forgotten. */
static herr_t h5_close(unsigned fn, herr_t (*real)(hid_t), hid_t id)
{
    iot_ev ev;
    if (!h5_enter(&ev, fn))
        return real(id);
    herr_t r = real(id);
    h5_done(&ev, r, r < 0);
    obj_ent o;
    if (obj_get(id, &o, r >= 0))
        ev.path = o.path;
    iot_leave(&ev);
    return r;
}

IOT_API herr_t H5Fclose(hid_t file_id)
{
    IOT_H5(H5Fclose);
    return h5_close(IOT_FN_H5Fclose, real_H5Fclose, file_id);
}

/* ---- datasets ---- */

/* A dataset made or opened: path = "FILE:NAME", mode = its datatype's size, req = its bytes
 * (dataspace elements x datatype size), flags = its layout (H5D_layout_t: 0 compact,
 * 1 contiguous, 2 chunked, 3 virtual), aux = the bytes of a chunk (chunked only).  Asked of the
 * new dataset: the call succeeded. */
static void dset_opened(iot_ev *ev, hid_t d)
{
    if (d < 0)
        return;
    IOT_H5(H5Dget_type);
    IOT_H5(H5Dget_space);
    IOT_H5(H5Dget_create_plist);
    IOT_H5(H5Pget_layout);
    IOT_H5(H5Pget_chunk);
    IOT_H5(H5Pclose);
    IOT_H5(H5Tget_size);
    IOT_H5(H5Tclose);
    IOT_H5(H5Sget_simple_extent_npoints);
    IOT_H5(H5Sclose);
    ev->path = path_of(d, 1);
    obj_add(d, ev->path);
    hid_t t = real_H5Dget_type(d), s = real_H5Dget_space(d), p = real_H5Dget_create_plist(d);
    int64_t size = t >= 0 ? (int64_t)real_H5Tget_size(t) : 0;
    if (size > 0) {
        iot_ev_mode(ev, size);
        if (s >= 0)
            iot_ev_req(ev, size * real_H5Sget_simple_extent_npoints(s));
    }
    if (p >= 0) {
        H5D_layout_t layout = real_H5Pget_layout(p);
        hsize_t dims[H5S_MAX_RANK];
        int rank;
        if (layout >= 0)
            iot_ev_flags(ev, layout);
        if (layout == H5D_CHUNKED && size > 0 &&
            (rank = real_H5Pget_chunk(p, H5S_MAX_RANK, dims)) > 0) {
            int64_t chunk = size;
            for (int i = 0; i < rank; i++)
                chunk *= (int64_t)dims[i];
            iot_ev_aux(ev, chunk);
        }
        real_H5Pclose(p);
    }
    if (t >= 0)
        real_H5Tclose(t);
    if (s >= 0)
        real_H5Sclose(s);
}

IOT_API hid_t H5Dcreate2(hid_t loc_id, const char *name, hid_t type_id, hid_t space_id,
                         hid_t lcpl_id, hid_t dcpl_id, hid_t dapl_id)
{
    IOT_H5(H5Dcreate2);
    iot_ev ev;
    if (!h5_enter(&ev, IOT_FN_H5Dcreate2))
        return real_H5Dcreate2(loc_id, name, type_id, space_id, lcpl_id, dcpl_id, dapl_id);
    hid_t r = real_H5Dcreate2(loc_id, name, type_id, space_id, lcpl_id, dcpl_id, dapl_id);
    h5_done(&ev, r, r < 0);
    dset_opened(&ev, r);
    iot_leave(&ev);
    return r;
}

IOT_API hid_t H5Dopen2(hid_t loc_id, const char *name, hid_t dapl_id)
{
    IOT_H5(H5Dopen2);
    iot_ev ev;
    if (!h5_enter(&ev, IOT_FN_H5Dopen2))
        return real_H5Dopen2(loc_id, name, dapl_id);
    hid_t r = real_H5Dopen2(loc_id, name, dapl_id);
    h5_done(&ev, r, r < 0);
    dset_opened(&ev, r);
    iot_leave(&ev);
    return r;
}

IOT_API herr_t H5Dclose(hid_t dset_id)
{
    IOT_H5(H5Dclose);
    return h5_close(IOT_FN_H5Dclose, real_H5Dclose, dset_id);
}

/* What a read or write moves, asked before the call. */
typedef struct {
    uint32_t path;
    int64_t type_size, elems, blocks, first, last; /* -1: unknown */
    int64_t xfer;                                  /* H5FD_mpio_xfer_t asked, -1: unknown */
} xfer_t;

/* The selection in the file: elements, blocks (hyperslab blocks, points, 1 for all), and the
 * byte offsets of its bounding box's first and last elements in the dataset's row-major
 * layout. */
static void selection(xfer_t *x, hid_t dset, hid_t file_space)
{
    IOT_H5(H5Dget_space);
    IOT_H5(H5Sget_select_npoints);
    IOT_H5(H5Sget_select_type);
    IOT_H5(H5Sget_select_hyper_nblocks);
    IOT_H5(H5Sget_select_elem_npoints);
    IOT_H5(H5Sget_select_bounds);
    IOT_H5(H5Sget_simple_extent_ndims);
    IOT_H5(H5Sget_simple_extent_dims);
    IOT_H5(H5Sclose);
    hid_t s = file_space == H5S_ALL ? real_H5Dget_space(dset) : file_space;
    if (s < 0)
        return;
    x->elems = real_H5Sget_select_npoints(s);
    H5S_sel_type t = real_H5Sget_select_type(s);
    x->blocks = t == H5S_SEL_HYPERSLABS ? real_H5Sget_select_hyper_nblocks(s)
                : t == H5S_SEL_POINTS   ? real_H5Sget_select_elem_npoints(s)
                : t == H5S_SEL_ALL      ? 1
                : t == H5S_SEL_NONE     ? 0
                                        : -1;
    hsize_t start[H5S_MAX_RANK], end[H5S_MAX_RANK], dims[H5S_MAX_RANK];
    int rank = real_H5Sget_simple_extent_ndims(s);
    if (x->elems > 0 && x->type_size > 0 && rank >= 0 && rank <= H5S_MAX_RANK &&
        real_H5Sget_simple_extent_dims(s, dims, NULL) == rank &&
        real_H5Sget_select_bounds(s, start, end) >= 0) {
        int64_t a = 0, b = 0;
        for (int i = 0; i < rank; i++) {
            a = a * (int64_t)dims[i] + (int64_t)start[i];
            b = b * (int64_t)dims[i] + (int64_t)end[i];
        }
        x->first = a * x->type_size;
        x->last = b * x->type_size;
    }
    if (s != file_space)
        real_H5Sclose(s);
}

static void xfer_before(xfer_t *x, hid_t dset, hid_t mem_type, hid_t file_space, hid_t dxpl)
{
    IOT_H5(H5Tget_size);
    *x = (xfer_t){.type_size = -1, .elems = -1, .blocks = -1, .first = -1, .last = -1,
                  .xfer = -1};
    quiet_t q;
    quiet_on(&q);
    x->path = obj_path(dset, 1);
    size_t ts = real_H5Tget_size(mem_type);
    if (ts > 0)
        x->type_size = (int64_t)ts;
    selection(x, dset, file_space);
#ifdef H5_HAVE_PARALLEL
    IOT_H5_OPT(H5Pget_dxpl_mpio);
    H5FD_mpio_xfer_t m;
    if (dxpl == H5P_DEFAULT)
        x->xfer = H5FD_MPIO_INDEPENDENT;
    else if (real_H5Pget_dxpl_mpio && real_H5Pget_dxpl_mpio(dxpl, &m) >= 0)
        x->xfer = m;
#else
    (void)dxpl;
#endif
    quiet_off(&q);
}

/* path = "FILE:NAME", mode = the memory datatype's size, req = bytes (elements x that size),
 * ret = req or -1, offset = the byte offset of the selection's first element in the dataset,
 * flags = collective asked (bit 0) | HDF5's actual I/O mode << 1 (H5D_mpio_actual_io_mode_t,
 * a collective call), aux = [blocks, byte offset of the selection's last element]. */
static void xfer_after(iot_ev *ev, const xfer_t *x, int failed, hid_t dxpl)
{
    ev->path = x->path;
    if (x->type_size > 0)
        iot_ev_mode(ev, x->type_size);
    int64_t bytes = x->elems >= 0 && x->type_size >= 0 ? x->elems * x->type_size : -1;
    if (bytes >= 0)
        iot_ev_req(ev, bytes);
    if (!failed)
        ev->ret = bytes >= 0 ? bytes : 0;
    if (x->first >= 0)
        iot_ev_off(ev, x->first);
    if (x->xfer >= 0) {
        int64_t flags = x->xfer == H5FD_MPIO_COLLECTIVE;
#ifdef H5_HAVE_PARALLEL
        IOT_H5_OPT(H5Pget_mpio_actual_io_mode);
        H5D_mpio_actual_io_mode_t am;
        /* after a successful call only (the error stack is the app's after a failed one) */
        if (flags && !failed && real_H5Pget_mpio_actual_io_mode &&
            real_H5Pget_mpio_actual_io_mode(dxpl, &am) >= 0)
            flags |= (int64_t)am << 1;
#else
        (void)dxpl;
#endif
        iot_ev_flags(ev, flags);
    }
    iot_ev_aux2(ev, x->blocks, x->last);
}

IOT_API herr_t H5Dwrite(hid_t dset_id, hid_t mem_type_id, hid_t mem_space_id,
                        hid_t file_space_id, hid_t dxpl_id, const void *buf)
{
    IOT_H5(H5Dwrite);
    iot_ev ev;
    if (!h5_enter(&ev, IOT_FN_H5Dwrite))
        return real_H5Dwrite(dset_id, mem_type_id, mem_space_id, file_space_id, dxpl_id, buf);
    h5_work();
    xfer_t x;
    xfer_before(&x, dset_id, mem_type_id, file_space_id, dxpl_id);
    h5_start(&ev);
    herr_t r = real_H5Dwrite(dset_id, mem_type_id, mem_space_id, file_space_id, dxpl_id, buf);
    h5_done(&ev, r, r < 0);
    xfer_after(&ev, &x, r < 0, dxpl_id);
    iot_leave(&ev);
    return r;
}

IOT_API herr_t H5Dread(hid_t dset_id, hid_t mem_type_id, hid_t mem_space_id,
                       hid_t file_space_id, hid_t dxpl_id, void *buf)
{
    IOT_H5(H5Dread);
    iot_ev ev;
    if (!h5_enter(&ev, IOT_FN_H5Dread))
        return real_H5Dread(dset_id, mem_type_id, mem_space_id, file_space_id, dxpl_id, buf);
    h5_work();
    xfer_t x;
    xfer_before(&x, dset_id, mem_type_id, file_space_id, dxpl_id);
    h5_start(&ev);
    herr_t r = real_H5Dread(dset_id, mem_type_id, mem_space_id, file_space_id, dxpl_id, buf);
    h5_done(&ev, r, r < 0);
    xfer_after(&ev, &x, r < 0, dxpl_id);
    iot_leave(&ev);
    return r;
}

#ifdef H5_HAVE_PARALLEL
/* ---- the MPI-IO properties: the transfer mode asked (flags), the file driver's ranks ---- */

IOT_API herr_t H5Pset_dxpl_mpio(hid_t dxpl_id, H5FD_mpio_xfer_t xfer_mode)
{
    IOT_H5(H5Pset_dxpl_mpio);
    iot_ev ev;
    if (!h5_enter(&ev, IOT_FN_H5Pset_dxpl_mpio))
        return real_H5Pset_dxpl_mpio(dxpl_id, xfer_mode);
    herr_t r = real_H5Pset_dxpl_mpio(dxpl_id, xfer_mode);
    h5_done(&ev, r, r < 0);
    iot_ev_flags(&ev, xfer_mode);
    iot_leave(&ev);
    return r;
}

/* aux = the communicator's size (the ranks that will open files with it together) */
IOT_API herr_t H5Pset_fapl_mpio(hid_t fapl_id, MPI_Comm comm, MPI_Info info)
{
    IOT_H5(H5Pset_fapl_mpio);
    iot_ev ev;
    if (!h5_enter(&ev, IOT_FN_H5Pset_fapl_mpio))
        return real_H5Pset_fapl_mpio(fapl_id, comm, info);
    herr_t r = real_H5Pset_fapl_mpio(fapl_id, comm, info);
    h5_done(&ev, r, r < 0);
    if (r >= 0) {
        IOT_REAL_AS(real_comm_size, "PMPI_Comm_size", PMPI_Comm_size);
        int n;
        if (iot_mpi_is_ours() && real_comm_size && real_comm_size(comm, &n) == MPI_SUCCESS)
            iot_ev_aux(&ev, n);
    }
    iot_leave(&ev);
    return r;
}
#endif
