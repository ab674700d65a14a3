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
        real_##name = (__typeof__(name) *)iot_dlsym_any(#name);        \
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

/* ---- hid -> (file path, dataset name, chunk dimensions): few objects, a locked array ---- */

typedef struct {
    hid_t id;
    uint32_t path;   /* string id: the file's absolute path; an object's "FILE:NAME" */
    unsigned gen;    /* string ids are per process generation */
    int64_t size;    /* a dataset: its datatype's size (0: unknown) */
    int chunk_rank;  /* a chunked dataset: its chunk dimensions' number (0: not chunked) */
    hsize_t chunk[H5S_MAX_RANK];
} obj_ent;

static pthread_mutex_t objs_lock = PTHREAD_MUTEX_INITIALIZER;
static obj_ent *objs;
static int nobjs, capobjs;

static void obj_put(const obj_ent *e)
{
    pthread_mutex_lock(&objs_lock);
    int i = 0;
    while (i < nobjs && objs[i].id != e->id)
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
    objs[i] = *e;
    objs[i].gen = iot_p.gen;
out:
    pthread_mutex_unlock(&objs_lock);
}

static void obj_add(hid_t id, uint32_t path)
{
    obj_put(&(obj_ent){.id = id, .path = path});
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

static int dset_info(hid_t d, obj_ent *o, iot_ev *ev, hsize_t *dims);

/* An object: known since it was made or opened, else asked of HDF5 (one opened before tracing
 * began, or in a way not wrapped: H5Rdereference...). */
static void obj_find(hid_t id, int dataset, obj_ent *o)
{
    if (obj_get(id, o, 0))
        return;
    *o = (obj_ent){.id = id, .path = path_of(id, dataset)};
    if (dataset) {
        hsize_t dims[H5S_MAX_RANK];
        dset_info(id, o, NULL, dims);
    }
    if (o->path)
        obj_put(o);
}

/* ---- the wrapper shape: like MPI-IO's, the calls inside are recorded ---- */

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
#define H5_CALL(T, call) IOT_LAYER_CALL(T, call, r, r < 0, H5_FAILED)

/* ---- files ---- */

IOT_API hid_t H5Fcreate(const char *filename, unsigned flags, hid_t fcpl_id, hid_t fapl_id)
{
    IOT_H5(H5Fcreate);
    IOT_ENTER_BY(iot_enter_layer, IOT_FN_H5Fcreate,
                 real_H5Fcreate(filename, flags, fcpl_id, fapl_id));
    H5_CALL(hid_t, real_H5Fcreate(filename, flags, fcpl_id, fapl_id));
    iot_ev_path(&ev, filename);
    iot_ev_flags(&ev, flags);
    if (r >= 0)
        obj_add(r, ev.path);
    IOT_LEAVE(r);
}

IOT_API hid_t H5Fopen(const char *filename, unsigned flags, hid_t fapl_id)
{
    IOT_H5(H5Fopen);
    IOT_ENTER_BY(iot_enter_layer, IOT_FN_H5Fopen, real_H5Fopen(filename, flags, fapl_id));
    H5_CALL(hid_t, real_H5Fopen(filename, flags, fapl_id));
    iot_ev_path(&ev, filename);
    iot_ev_flags(&ev, flags);
    if (r >= 0)
        obj_add(r, ev.path);
    IOT_LEAVE(r);
}

/* obj: any object in the file; its path asked before the call (the call may fail) */
IOT_API herr_t H5Fflush(hid_t obj_id, H5F_scope_t scope)
{
    IOT_H5(H5Fflush);
    IOT_ENTER_BY(iot_enter_layer, IOT_FN_H5Fflush, real_H5Fflush(obj_id, scope));
    h5_work();
    quiet_t q;
    obj_ent o;
    quiet_on(&q);
    obj_find(obj_id, 0, &o);
    quiet_off(&q);
    h5_start(&ev);
    H5_CALL(herr_t, real_H5Fflush(obj_id, scope));
    ev.path = o.path;
    iot_ev_flags(&ev, scope);
    IOT_LEAVE(r);
}

/* H5Fclose and H5Dclose: the event names what the id was opened as; a closed id is forgotten. */
static herr_t h5_close(unsigned fn, herr_t (*real)(hid_t), hid_t id)
{
    IOT_ENTER_BY(iot_enter_layer, fn, real(id));
    H5_CALL(herr_t, real(id));
    obj_ent o;
    if (obj_get(id, &o, r >= 0))
        ev.path = o.path;
    IOT_LEAVE(r);
}

IOT_API herr_t H5Fclose(hid_t file_id)
{
    IOT_H5(H5Fclose);
    return h5_close(IOT_FN_H5Fclose, real_H5Fclose, file_id);
}

/* ---- datasets ---- */

/* What a dataset is: into o its datatype's size and chunk dimensions, into dims its
 * dimensions (their number returned, -1 unknown); into ev (when not NULL) the event of its
 * open: mode = the datatype's size, req = its bytes (dataspace elements x datatype size),
 * flags = its layout (H5D_layout_t: 0 compact, 1 contiguous, 2 chunked, 3 virtual), aux = the
 * bytes of a chunk (chunked only). */
static int dset_info(hid_t d, obj_ent *o, iot_ev *ev, hsize_t *dims)
{
    IOT_H5(H5Dget_type);
    IOT_H5(H5Dget_space);
    IOT_H5(H5Dget_create_plist);
    IOT_H5(H5Pget_layout);
    IOT_H5(H5Pget_chunk);
    IOT_H5(H5Pclose);
    IOT_H5(H5Tget_size);
    IOT_H5(H5Tclose);
    IOT_H5(H5Sget_simple_extent_npoints);
    IOT_H5(H5Sget_simple_extent_dims);
    IOT_H5(H5Sclose);
    hid_t t = real_H5Dget_type(d), s = real_H5Dget_space(d), p = real_H5Dget_create_plist(d);
    o->size = t >= 0 ? (int64_t)real_H5Tget_size(t) : 0;
    int rank = s >= 0 ? real_H5Sget_simple_extent_dims(s, dims, NULL) : -1;
    if (ev && o->size > 0) {
        iot_ev_mode(ev, o->size);
        if (s >= 0)
            iot_ev_req(ev, o->size * real_H5Sget_simple_extent_npoints(s));
    }
    if (p >= 0) {
        H5D_layout_t layout = real_H5Pget_layout(p);
        if (ev && layout >= 0)
            iot_ev_flags(ev, layout);
        int n;
        if (layout == H5D_CHUNKED && (n = real_H5Pget_chunk(p, H5S_MAX_RANK, o->chunk)) > 0) {
            o->chunk_rank = n;
            int64_t chunk = o->size;
            for (int i = 0; i < n; i++)
                chunk *= (int64_t)o->chunk[i];
            if (ev && o->size > 0)
                iot_ev_aux(ev, chunk);
        }
        real_H5Pclose(p);
    }
    if (t >= 0)
        real_H5Tclose(t);
    if (s >= 0)
        real_H5Sclose(s);
    return rank;
}

/* A dataset made or opened (the call succeeded): its event (path = "FILE:NAME", and what
 * dset_info says), a SHAPE record with its dimensions and chunk dimensions; kept with its id for
 * its reads and writes. */
static void dset_opened(iot_ev *ev, hid_t d)
{
    if (d < 0)
        return;
    obj_ent o = {.id = d, .path = path_of(d, 1)};
    ev->path = o.path;
    hsize_t dims[H5S_MAX_RANK];
    int rank = dset_info(d, &o, ev, dims);
    obj_put(&o);
    uint64_t d64[H5S_MAX_RANK], c64[H5S_MAX_RANK];
    for (int i = 0; i < rank; i++)
        d64[i] = dims[i];
    for (int i = 0; i < o.chunk_rank; i++)
        c64[i] = o.chunk[i];
    char *rec;
    if (rank >= 0 && iot_ev_recorded(ev) && (rec = iot_log_reserve(64 + 18 * H5S_MAX_RANK)))
        iot_log_commit(iot_pack_shape(rec, iot_t.tid, ev, o.size, rank, d64, o.chunk_rank,
                                      c64));
}

IOT_API hid_t H5Dcreate2(hid_t loc_id, const char *name, hid_t type_id, hid_t space_id,
                         hid_t lcpl_id, hid_t dcpl_id, hid_t dapl_id)
{
    IOT_H5(H5Dcreate2);
    IOT_ENTER_BY(iot_enter_layer, IOT_FN_H5Dcreate2,
                 real_H5Dcreate2(loc_id, name, type_id, space_id, lcpl_id, dcpl_id, dapl_id));
    H5_CALL(hid_t, real_H5Dcreate2(loc_id, name, type_id, space_id, lcpl_id, dcpl_id, dapl_id));
    dset_opened(&ev, r);
    IOT_LEAVE(r);
}

IOT_API hid_t H5Dopen2(hid_t loc_id, const char *name, hid_t dapl_id)
{
    IOT_H5(H5Dopen2);
    IOT_ENTER_BY(iot_enter_layer, IOT_FN_H5Dopen2, real_H5Dopen2(loc_id, name, dapl_id));
    H5_CALL(hid_t, real_H5Dopen2(loc_id, name, dapl_id));
    dset_opened(&ev, r);
    IOT_LEAVE(r);
}

IOT_API herr_t H5Dclose(hid_t dset_id)
{
    IOT_H5(H5Dclose);
    return h5_close(IOT_FN_H5Dclose, real_H5Dclose, dset_id);
}

/* Any object by name: a dataset's event is H5Dopen2's (and its reads and writes know it);
 * another object's has its path "FILE:NAME" alone. */
IOT_API hid_t H5Oopen(hid_t loc_id, const char *name, hid_t lapl_id)
{
    IOT_H5(H5Oopen);
    IOT_H5(H5Iget_type);
    IOT_ENTER_BY(iot_enter_layer, IOT_FN_H5Oopen, real_H5Oopen(loc_id, name, lapl_id));
    H5_CALL(hid_t, real_H5Oopen(loc_id, name, lapl_id));
    if (r >= 0 && real_H5Iget_type(r) == H5I_DATASET) {
        dset_opened(&ev, r);
    } else if (r >= 0) {
        quiet_t q;
        quiet_on(&q); /* a named datatype has no file of its own to name */
        ev.path = path_of(r, 1);
        quiet_off(&q);
        if (ev.path)
            obj_add(r, ev.path);
    }
    IOT_LEAVE(r);
}

IOT_API herr_t H5Oclose(hid_t object_id)
{
    IOT_H5(H5Oclose);
    return h5_close(IOT_FN_H5Oclose, real_H5Oclose, object_id);
}

/* What a read or write moves, asked before the call. */
typedef struct {
    obj_ent o;
    int64_t type_size, elems, blocks, first, last; /* -1: unknown */
    int64_t xfer;                                  /* H5FD_mpio_xfer_t asked, -1: unknown */
    int64_t chunks, partial; /* chunked: chunks the selection's box touches, partly; -1 */
} xfer_t;

/* Of a selection's bounding box [start, end] in a dataspace of dims cut in chunks: the chunks
 * it touches, and how many of them it covers only in part (a chunk cut by the dataspace's edge
 * is whole up to the edge; a selection smaller than its box covers every chunk in part). */
static void chunks_of(xfer_t *x, int rank, const hsize_t *start, const hsize_t *end,
                      const hsize_t *dims)
{
    int64_t touched = 1, whole = 1, box = 1;
    for (int i = 0; i < rank; i++) {
        hsize_t c = x->o.chunk[i];
        if (c == 0)
            return;
        hsize_t k0 = start[i] / c, k1 = end[i] / c;
        hsize_t w0 = start[i] % c ? k0 + 1 : k0; /* first chunk whole in this dimension */
        hsize_t w1 = (end[i] + 1) % c && end[i] + 1 < dims[i] ? k1 : k1 + 1; /* one past last */
        touched *= (int64_t)(k1 - k0 + 1);
        whole *= w1 > w0 ? (int64_t)(w1 - w0) : 0;
        box *= (int64_t)(end[i] - start[i] + 1);
    }
    x->chunks = touched;
    x->partial = box == x->elems ? touched - whole : touched;
}

/* The selection in the file: elements, blocks (hyperslab blocks, points, 1 for all), the byte
 * offsets of its bounding box's first and last elements in the dataset's row-major layout, and
 * on a chunked dataset the chunks it touches. */
static void selection(xfer_t *x, hid_t dset, hid_t file_space)
{
    IOT_H5(H5Dget_space);
    IOT_H5(H5Sget_select_npoints);
    IOT_H5(H5Sget_select_type);
    IOT_H5(H5Sget_select_hyper_nblocks);
    IOT_H5(H5Sget_select_elem_npoints);
    IOT_H5(H5Sget_select_bounds);
    IOT_H5(H5Sget_simple_extent_dims);
    IOT_H5(H5Sclose);
    hid_t s = file_space == H5S_ALL ? real_H5Dget_space(dset) : file_space;
    if (s < 0)
        return;
    x->elems = real_H5Sget_select_npoints(s);
    /* a hyperslab's blocks asked first: the selection's type is asked only when it is not one */
    x->blocks = file_space == H5S_ALL ? 1 : real_H5Sget_select_hyper_nblocks(s);
    if (x->blocks < 0) {
        H5S_sel_type t = real_H5Sget_select_type(s);
        x->blocks = t == H5S_SEL_POINTS ? real_H5Sget_select_elem_npoints(s)
                    : t == H5S_SEL_ALL  ? 1
                    : t == H5S_SEL_NONE ? 0
                                        : -1;
    }
    hsize_t start[H5S_MAX_RANK], end[H5S_MAX_RANK], dims[H5S_MAX_RANK];
    int rank;
    if (x->elems > 0 && x->type_size > 0 &&
        (rank = real_H5Sget_simple_extent_dims(s, dims, NULL)) >= 0 &&
        real_H5Sget_select_bounds(s, start, end) >= 0) {
        int64_t a = 0, b = 0;
        for (int i = 0; i < rank; i++) {
            a = a * (int64_t)dims[i] + (int64_t)start[i];
            b = b * (int64_t)dims[i] + (int64_t)end[i];
        }
        x->first = a * x->type_size;
        x->last = b * x->type_size;
        if (x->o.chunk_rank == rank)
            chunks_of(x, rank, start, end, dims);
    }
    if (s != file_space)
        real_H5Sclose(s);
}

#ifdef H5_HAVE_PARALLEL
/* The transfer mode of the last few transfer property lists asked (a data call asks it of the
 * same one again and again): forgotten when H5Pset_dxpl_mpio changes it. */
#define NDXPL 8
static struct {
    hid_t id;
    H5FD_mpio_xfer_t mode;
} dxpls[NDXPL];
static int ndxpl;

static int dxpl_mode(hid_t dxpl, int64_t *mode)
{
    int found = 0;
    pthread_mutex_lock(&objs_lock);
    for (int i = 0; i < NDXPL && !found; i++)
        if (dxpls[i].id == dxpl && dxpl > 0) {
            *mode = dxpls[i].mode;
            found = 1;
        }
    pthread_mutex_unlock(&objs_lock);
    if (found)
        return 1;
    IOT_H5_OPT(H5Pget_dxpl_mpio);
    H5FD_mpio_xfer_t m;
    if (!real_H5Pget_dxpl_mpio || real_H5Pget_dxpl_mpio(dxpl, &m) < 0)
        return 0;
    *mode = m;
    pthread_mutex_lock(&objs_lock);
    dxpls[ndxpl] = (__typeof__(dxpls[0])){dxpl, m};
    ndxpl = (ndxpl + 1) % NDXPL;
    pthread_mutex_unlock(&objs_lock);
    return 1;
}

static void dxpl_forget(hid_t dxpl)
{
    pthread_mutex_lock(&objs_lock);
    for (int i = 0; i < NDXPL; i++)
        if (dxpls[i].id == dxpl)
            dxpls[i].id = 0;
    pthread_mutex_unlock(&objs_lock);
}
#endif

static void xfer_before(xfer_t *x, hid_t dset, hid_t mem_type, hid_t file_space, hid_t dxpl)
{
    IOT_H5(H5Tget_size);
    *x = (xfer_t){.type_size = -1, .elems = -1, .blocks = -1, .first = -1, .last = -1,
                  .xfer = -1, .chunks = -1, .partial = -1};
    quiet_t q;
    quiet_on(&q);
    obj_find(dset, 1, &x->o);
    size_t ts = real_H5Tget_size(mem_type);
    if (ts > 0)
        x->type_size = (int64_t)ts;
    selection(x, dset, file_space);
#ifdef H5_HAVE_PARALLEL
    if (dxpl == H5P_DEFAULT)
        x->xfer = H5FD_MPIO_INDEPENDENT;
    else
        dxpl_mode(dxpl, &x->xfer);
#else
    (void)dxpl;
#endif
    quiet_off(&q);
}

/* path = "FILE:NAME", mode = the memory datatype's size, req = bytes (elements x that size),
 * ret = req or -1, offset = the byte offset of the selection's first element in the dataset,
 * flags = collective asked (bit 0) | HDF5's actual I/O mode << 1 (H5D_mpio_actual_io_mode_t,
 * a collective call), aux = [blocks, byte offset of the selection's last element]; on a
 * SELECTION record: the selection's bytes in the file (elements x the dataset's datatype size)
 * and on a chunked dataset the chunks it touches. */
static void xfer_after(iot_ev *ev, const xfer_t *x, int failed, hid_t dxpl)
{
    ev->path = x->o.path;
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
    char *rec;
    if (x->elems >= 0 && x->o.size > 0 && iot_ev_recorded(ev) && (rec = iot_log_reserve(64)))
        iot_log_commit(iot_pack_selection(rec, iot_t.tid, ev, x->elems * x->o.size, x->chunks,
                                          x->partial));
}

IOT_API herr_t H5Dwrite(hid_t dset_id, hid_t mem_type_id, hid_t mem_space_id,
                        hid_t file_space_id, hid_t dxpl_id, const void *buf)
{
    IOT_H5(H5Dwrite);
    IOT_ENTER_BY(iot_enter_layer, IOT_FN_H5Dwrite,
                 real_H5Dwrite(dset_id, mem_type_id, mem_space_id, file_space_id, dxpl_id, buf));
    h5_work();
    xfer_t x;
    xfer_before(&x, dset_id, mem_type_id, file_space_id, dxpl_id);
    h5_start(&ev);
    H5_CALL(herr_t, real_H5Dwrite(dset_id, mem_type_id, mem_space_id, file_space_id, dxpl_id, buf));
    xfer_after(&ev, &x, r < 0, dxpl_id);
    IOT_LEAVE(r);
}

IOT_API herr_t H5Dread(hid_t dset_id, hid_t mem_type_id, hid_t mem_space_id,
                       hid_t file_space_id, hid_t dxpl_id, void *buf)
{
    IOT_H5(H5Dread);
    IOT_ENTER_BY(iot_enter_layer, IOT_FN_H5Dread,
                 real_H5Dread(dset_id, mem_type_id, mem_space_id, file_space_id, dxpl_id, buf));
    h5_work();
    xfer_t x;
    xfer_before(&x, dset_id, mem_type_id, file_space_id, dxpl_id);
    h5_start(&ev);
    H5_CALL(herr_t, real_H5Dread(dset_id, mem_type_id, mem_space_id, file_space_id, dxpl_id, buf));
    xfer_after(&ev, &x, r < 0, dxpl_id);
    IOT_LEAVE(r);
}

#ifdef H5_HAVE_PARALLEL
/* ---- the MPI-IO properties: the transfer mode asked (flags), the file driver's ranks ---- */

IOT_API herr_t H5Pset_dxpl_mpio(hid_t dxpl_id, H5FD_mpio_xfer_t xfer_mode)
{
    IOT_H5(H5Pset_dxpl_mpio);
    dxpl_forget(dxpl_id);
    IOT_ENTER_BY(iot_enter_layer, IOT_FN_H5Pset_dxpl_mpio,
                 real_H5Pset_dxpl_mpio(dxpl_id, xfer_mode));
    H5_CALL(herr_t, real_H5Pset_dxpl_mpio(dxpl_id, xfer_mode));
    iot_ev_flags(&ev, xfer_mode);
    IOT_LEAVE(r);
}

/* aux = the communicator's size (the ranks that will open files with it together) */
IOT_API herr_t H5Pset_fapl_mpio(hid_t fapl_id, MPI_Comm comm, MPI_Info info)
{
    IOT_H5(H5Pset_fapl_mpio);
    IOT_ENTER_BY(iot_enter_layer, IOT_FN_H5Pset_fapl_mpio,
                 real_H5Pset_fapl_mpio(fapl_id, comm, info));
    H5_CALL(herr_t, real_H5Pset_fapl_mpio(fapl_id, comm, info));
    if (r >= 0) {
        IOT_REAL_AS(real_comm_size, "PMPI_Comm_size", PMPI_Comm_size);
        int n;
        if (iot_mpi_is_ours() && real_comm_size && real_comm_size(comm, &n) == MPI_SUCCESS)
            iot_ev_aux(&ev, n);
    }
    IOT_LEAVE(r);
}
#endif
