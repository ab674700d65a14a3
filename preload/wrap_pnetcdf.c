/* Wrappers: PnetCDF files and the variable-level put/get calls (ncmpi_*).  Built when CMake
 * found pnetcdf.h, with the MPI-IO wrappers (its prototypes use MPI types); docs/format.md says
 * what the events hold, docs/hdf5.md how they are read (a variable is a dataset there).
 *
 * Real functions are found with dlsym at first use: the shim never links libpnetcdf.  As for
 * MPI-IO and HDF5, the real call runs with the shim neither busy nor "in a wrapper": the
 * MPI-IO and POSIX calls PnetCDF makes for it are recorded inside its time span, in the same
 * thread.  The variable's name, type and shape are asked of PnetCDF (ncmpi_inq_*: local,
 * no I/O) before the call. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <pnetcdf.h>

#include "shim.h"

#ifdef OPEN_MPI
/* Open MPI's MPI_DATATYPE_NULL is the address of libmpi data: weak, so the shim still loads
 * into programs without libmpi (which never call these wrappers). */
#pragma weak ompi_mpi_datatype_null
#endif

#define IOT_NC(name) IOT_REAL_AS(real_##name, #name, name)

/* ---- ncid -> the file's path; (ncid, varid) -> "FILE:VAR": few, a locked array ---- */

typedef struct {
    int ncid, varid; /* varid -1: the file itself */
    uint32_t path;
    unsigned gen;
} nc_ent;

static pthread_mutex_t ncs_lock = PTHREAD_MUTEX_INITIALIZER;
static nc_ent *ncs;
static int nncs, capncs;

static void nc_add(int ncid, int varid, uint32_t path)
{
    pthread_mutex_lock(&ncs_lock);
    if (nncs == capncs) {
        int cap = capncs ? 2 * capncs : 16;
        nc_ent *n = realloc(ncs, (size_t)cap * sizeof *n);
        if (!n)
            goto out;
        ncs = n;
        capncs = cap;
    }
    ncs[nncs++] = (nc_ent){ncid, varid, path, iot_p.gen};
out:
    pthread_mutex_unlock(&ncs_lock);
}

/* The path of (ncid, varid), 0 if unknown. */
static uint32_t nc_get(int ncid, int varid)
{
    uint32_t path = 0;
    pthread_mutex_lock(&ncs_lock);
    for (int i = 0; i < nncs; i++)
        if (ncs[i].ncid == ncid && ncs[i].varid == varid && ncs[i].gen == iot_p.gen) {
            path = ncs[i].path;
            break;
        }
    pthread_mutex_unlock(&ncs_lock);
    return path;
}

/* A closed file: its entries go (its ncid may be given to another file). */
static void nc_forget(int ncid)
{
    pthread_mutex_lock(&ncs_lock);
    for (int i = 0; i < nncs;)
        if (ncs[i].ncid == ncid)
            ncs[i] = ncs[--nncs];
        else
            i++;
    pthread_mutex_unlock(&ncs_lock);
}

/* "FILE:VAR" of a variable (FILE absolute, as ncmpi_inq_path gives it made absolute). */
static uint32_t var_path(int ncid, int varid)
{
    uint32_t path = nc_get(ncid, varid);
    if (path)
        return path;
    IOT_NC(ncmpi_inq_path);
    IOT_NC(ncmpi_inq_varname);
    char name[4096], buf[8192 + NC_MAX_NAME + 2];
    int len;
    if (real_ncmpi_inq_path(ncid, &len, NULL) != NC_NOERR || len <= 0 ||
        (size_t)len >= sizeof name || real_ncmpi_inq_path(ncid, NULL, name) != NC_NOERR)
        return 0;
    name[len] = 0;
    size_t n = iot_abspath(-100 /* AT_FDCWD */, name, buf, 8192);
    char var[NC_MAX_NAME + 1];
    if (!n || real_ncmpi_inq_varname(ncid, varid, var) != NC_NOERR)
        return 0;
    buf[n++] = ':';
    size_t k = strnlen(var, NC_MAX_NAME);
    memcpy(buf + n, var, k);
    path = iot_intern_string(buf, n + k);
    nc_add(ncid, varid, path);
    return path;
}

/* ---- the wrapper shape (as wrap_hdf5.c's) ---- */

/* shim.h's layer shape, begun by IOT_ENTER_BY(iot_enter_layer, ...).  ret: 0, or -1 with
 * errno = the PnetCDF error code negated (NC_E*: small negative ints). */
#define NC_CALL(call) IOT_LAYER_CALL(int, call, 0, r != NC_NOERR, r < 0 ? -r : r)

/* ---- files ---- */

/* path = the file, flags = cmode/omode, aux = the ncid */
#define NC_OPEN_BODY(FN, real_call)                                                           \
    IOT_ENTER_BY(iot_enter_layer, FN, real_call);                                             \
    NC_CALL(real_call);                                                                       \
    iot_ev_path(&ev, path);                                                                   \
    iot_ev_flags(&ev, mode);                                                                  \
    if (r == NC_NOERR) {                                                                      \
        nc_forget(*ncidp);                                                                    \
        nc_add(*ncidp, -1, ev.path);                                                          \
        iot_ev_aux(&ev, *ncidp);                                                              \
    }                                                                                         \
    IOT_LEAVE(r)

IOT_API int ncmpi_create(MPI_Comm comm, const char *path, int mode, MPI_Info info, int *ncidp)
{
    IOT_NC(ncmpi_create);
    NC_OPEN_BODY(IOT_FN_ncmpi_create, real_ncmpi_create(comm, path, mode, info, ncidp));
}

IOT_API int ncmpi_open(MPI_Comm comm, const char *path, int mode, MPI_Info info, int *ncidp)
{
    IOT_NC(ncmpi_open);
    NC_OPEN_BODY(IOT_FN_ncmpi_open, real_ncmpi_open(comm, path, mode, info, ncidp));
}

/* A call on a file: path = the file (forget: it closes the file). */
#define NC_FILE_BODY(FN, forget, real_call)                                                   \
    IOT_ENTER_BY(iot_enter_layer, FN, real_call);                                             \
    NC_CALL(real_call);                                                                       \
    ev.path = nc_get(ncid, -1);                                                               \
    if ((forget) && r == NC_NOERR)                                                            \
        nc_forget(ncid);                                                                      \
    IOT_LEAVE(r)

IOT_API int ncmpi_close(int ncid)
{
    IOT_NC(ncmpi_close);
    NC_FILE_BODY(IOT_FN_ncmpi_close, 1, real_ncmpi_close(ncid));
}

/* writes the header (define mode ends) */
IOT_API int ncmpi_enddef(int ncid)
{
    IOT_NC(ncmpi_enddef);
    NC_FILE_BODY(IOT_FN_ncmpi_enddef, 0, real_ncmpi_enddef(ncid));
}

/* independent data mode: PnetCDF opens the file for the rank alone, and syncs at the end */
IOT_API int ncmpi_begin_indep_data(int ncid)
{
    IOT_NC(ncmpi_begin_indep_data);
    NC_FILE_BODY(IOT_FN_ncmpi_begin_indep_data, 0, real_ncmpi_begin_indep_data(ncid));
}

IOT_API int ncmpi_end_indep_data(int ncid)
{
    IOT_NC(ncmpi_end_indep_data);
    NC_FILE_BODY(IOT_FN_ncmpi_end_indep_data, 0, real_ncmpi_end_indep_data(ncid));
}

/* ---- variables: put/get of a subarray (vara), one element (var1), a strided subarray (vars),
 * one mapped in memory (varm) ---- */

#define MAX_DIMS 64 /* a variable of more dimensions: no elements, no offset */

typedef struct {
    uint32_t path;
    int64_t elem, elems, first; /* element size, elements, first element's byte offset */
} nc_xfer;

/* What a put/get moves, asked before the call: the variable's path, its elements and their
 * size (`elem` > 0: the memory type's, of the typed calls; else the variable's external
 * type's, or that of the flexible call's buftype), the byte offset of start[] in the
 * variable's row-major layout (its dimensions' current lengths). */
static void nc_before(nc_xfer *x, int ncid, int varid, const MPI_Offset *start,
                      const MPI_Offset *count, int64_t elem)
{
    IOT_NC(ncmpi_inq_varndims);
    IOT_NC(ncmpi_inq_var);
    IOT_NC(ncmpi_inq_dimlen);
    /* the sizes of the external types NC_BYTE (1) .. NC_UINT64 (11) */
    static const int8_t ext_size[12] = {0, 1, 1, 2, 4, 4, 8, 1, 2, 4, 8, 8};
    iot_t.busy = 1;
    *x = (nc_xfer){var_path(ncid, varid), elem, -1, -1};
    nc_type t;
    int nd, dims[MAX_DIMS];
    if (real_ncmpi_inq_varndims(ncid, varid, &nd) == NC_NOERR && nd >= 0 && nd <= MAX_DIMS &&
        real_ncmpi_inq_var(ncid, varid, NULL, &t, &nd, dims, NULL) == NC_NOERR && count &&
        (nd == 0 || start)) {
        if (x->elem <= 0 && t >= 0 && t < 12)
            x->elem = ext_size[t];
        int64_t n = 1, at = 0;
        int ok = 1;
        for (int i = 0; i < nd; i++) {
            MPI_Offset len;
            n *= count[i];
            ok = ok && real_ncmpi_inq_dimlen(ncid, dims[i], &len) == NC_NOERR;
            at = at * (ok ? len : 0) + start[i];
        }
        x->elems = n;
        if (ok && x->elem > 0)
            x->first = at * x->elem;
    }
    iot_t.busy = 0;
}

/* path = "FILE:VAR", req = bytes (elements x element size), ret = req or -1, mode = the element
 * size, offset = the byte offset of start[] in the variable, flags = 1 collective (_all) or 0,
 * aux = elements. */
static void nc_after(iot_ev *ev, const nc_xfer *x, int rc, int coll)
{
    ev->path = x->path;
    int64_t bytes = x->elems >= 0 && x->elem > 0 ? x->elems * x->elem : -1;
    if (bytes >= 0)
        iot_ev_req(ev, bytes);
    if (rc == NC_NOERR)
        ev->ret = bytes >= 0 ? bytes : 0;
    if (x->elem > 0)
        iot_ev_mode(ev, x->elem);
    if (x->first >= 0)
        iot_ev_off(ev, x->first);
    iot_ev_flags(ev, coll);
    if (x->elems >= 0)
        iot_ev_aux(ev, x->elems);
}

#define NC_DATA_BODY(FN, COLL, ELEM, real_call)                                               \
    IOT_ENTER_BY(iot_enter_layer, FN, real_call);                                             \
    nc_xfer x;                                                                                \
    nc_before(&x, ncid, varid, start, count, ELEM);                                           \
    ev.t0 = iot_now();                                                                        \
    NC_CALL(real_call);                                                                       \
    nc_after(&ev, &x, r, COLL);                                                               \
    IOT_LEAVE(r)

/* The flexible API's element size: its buftype's, when given (else the variable's). */
static int64_t buf_elem(MPI_Offset bufcount, MPI_Datatype buftype)
{
    if (buftype == MPI_DATATYPE_NULL || bufcount < 0 || !iot_mpi_is_ours())
        return 0;
    IOT_REAL_AS(real_type_size, "PMPI_Type_size", PMPI_Type_size);
    int sz;
    return real_type_size(buftype, &sz) == MPI_SUCCESS ? sz : 0;
}

#define CVO const MPI_Offset *

IOT_API int ncmpi_put_vara_all(int ncid, int varid, CVO start, CVO count, const void *buf,
                               MPI_Offset bufcount, MPI_Datatype buftype)
{
    IOT_NC(ncmpi_put_vara_all);
    NC_DATA_BODY(IOT_FN_ncmpi_put_vara_all, 1, buf_elem(bufcount, buftype),
                 real_ncmpi_put_vara_all(ncid, varid, start, count, buf, bufcount, buftype));
}

IOT_API int ncmpi_put_vara(int ncid, int varid, CVO start, CVO count, const void *buf,
                           MPI_Offset bufcount, MPI_Datatype buftype)
{
    IOT_NC(ncmpi_put_vara);
    NC_DATA_BODY(IOT_FN_ncmpi_put_vara, 0, buf_elem(bufcount, buftype),
                 real_ncmpi_put_vara(ncid, varid, start, count, buf, bufcount, buftype));
}

IOT_API int ncmpi_get_vara_all(int ncid, int varid, CVO start, CVO count, void *buf,
                               MPI_Offset bufcount, MPI_Datatype buftype)
{
    IOT_NC(ncmpi_get_vara_all);
    NC_DATA_BODY(IOT_FN_ncmpi_get_vara_all, 1, buf_elem(bufcount, buftype),
                 real_ncmpi_get_vara_all(ncid, varid, start, count, buf, bufcount, buftype));
}

IOT_API int ncmpi_get_vara(int ncid, int varid, CVO start, CVO count, void *buf,
                           MPI_Offset bufcount, MPI_Datatype buftype)
{
    IOT_NC(ncmpi_get_vara);
    NC_DATA_BODY(IOT_FN_ncmpi_get_vara, 0, buf_elem(bufcount, buftype),
                 real_ncmpi_get_vara(ncid, varid, start, count, buf, bufcount, buftype));
}

/* count[] of a single element (var1) */
static const MPI_Offset ONES[MAX_DIMS] = {[0 ... MAX_DIMS - 1] = 1};

/* The flexible var1, vars and varm calls (CT: const void for a put, void for a get), collective
 * (_all, COLL 1) and independent: the event as a vara's (vars, varm: the elements of count[];
 * offset: start[]'s, whatever the stride). */
#define NC_VAR1(RW, CT, SFX, COLL)                                                            \
    IOT_API int ncmpi_##RW##_var1##SFX(int ncid, int varid, CVO start, CT *buf,               \
                                       MPI_Offset bufcount, MPI_Datatype buftype)             \
    {                                                                                         \
        IOT_NC(ncmpi_##RW##_var1##SFX);                                                       \
        const MPI_Offset *count = ONES;                                                       \
        NC_DATA_BODY(IOT_FN_ncmpi_##RW##_var1##SFX, COLL, buf_elem(bufcount, buftype),        \
                     real_ncmpi_##RW##_var1##SFX(ncid, varid, start, buf, bufcount, buftype)); \
    }
#define NC_VARS(RW, CT, SFX, COLL)                                                            \
    IOT_API int ncmpi_##RW##_vars##SFX(int ncid, int varid, CVO start, CVO count, CVO stride, \
                                       CT *buf, MPI_Offset bufcount, MPI_Datatype buftype)    \
    {                                                                                         \
        IOT_NC(ncmpi_##RW##_vars##SFX);                                                       \
        NC_DATA_BODY(IOT_FN_ncmpi_##RW##_vars##SFX, COLL, buf_elem(bufcount, buftype),        \
                     real_ncmpi_##RW##_vars##SFX(ncid, varid, start, count, stride, buf,      \
                                                 bufcount, buftype));                         \
    }
#define NC_VARM(RW, CT, SFX, COLL)                                                            \
    IOT_API int ncmpi_##RW##_varm##SFX(int ncid, int varid, CVO start, CVO count, CVO stride, \
                                       CVO imap, CT *buf, MPI_Offset bufcount,                \
                                       MPI_Datatype buftype)                                  \
    {                                                                                         \
        IOT_NC(ncmpi_##RW##_varm##SFX);                                                       \
        NC_DATA_BODY(IOT_FN_ncmpi_##RW##_varm##SFX, COLL, buf_elem(bufcount, buftype),        \
                     real_ncmpi_##RW##_varm##SFX(ncid, varid, start, count, stride, imap,     \
                                                 buf, bufcount, buftype));                    \
    }
#define NC_FLEX(KIND)                                                                         \
    KIND(put, const void, _all, 1)                                                            \
    KIND(put, const void, , 0)                                                                \
    KIND(get, void, _all, 1)                                                                  \
    KIND(get, void, , 0)

NC_FLEX(NC_VAR1)
NC_FLEX(NC_VARS)
NC_FLEX(NC_VARM)

/* The nonblocking posts (iput, iget, bput: the flexible vara ones): the event as a vara's but
 * flags 0 and aux = [elements, the request's id]; the data moves at ncmpi_wait_all/ncmpi_wait,
 * under their events. */
#define NC_POST(KIND, CT, FN)                                                                 \
    IOT_API int ncmpi_##KIND##_vara(int ncid, int varid, CVO start, CVO count, CT *buf,       \
                                    MPI_Offset bufcount, MPI_Datatype buftype, int *req)      \
    {                                                                                         \
        IOT_NC(ncmpi_##KIND##_vara);                                                          \
        IOT_ENTER_BY(iot_enter_layer, FN,                                                     \
                     real_ncmpi_##KIND##_vara(ncid, varid, start, count, buf, bufcount,       \
                                              buftype, req));                                 \
        nc_xfer x;                                                                            \
        nc_before(&x, ncid, varid, start, count, buf_elem(bufcount, buftype));                \
        ev.t0 = iot_now();                                                                    \
        NC_CALL(real_ncmpi_##KIND##_vara(ncid, varid, start, count, buf, bufcount, buftype,   \
                                         req));                                               \
        nc_after(&ev, &x, r, 0);                                                              \
        if (r == NC_NOERR && req)                                                             \
            iot_ev_aux2(&ev, x.elems, *req);                                                  \
        IOT_LEAVE(r);                                                                         \
    }

NC_POST(iput, const void, IOT_FN_ncmpi_iput_vara)
NC_POST(iget, void, IOT_FN_ncmpi_iget_vara)
NC_POST(bput, const void, IOT_FN_ncmpi_bput_vara)

/* Where the posted requests move their data: path = the file, req = the requests waited for,
 * flags = 1 collective (ncmpi_wait_all), 0 (ncmpi_wait). */
#define NC_WAIT(NAME, COLL)                                                                   \
    IOT_API int NAME(int ncid, int count, int array_of_requests[], int array_of_statuses[])   \
    {                                                                                         \
        IOT_NC(NAME);                                                                         \
        IOT_ENTER_BY(iot_enter_layer, IOT_FN_##NAME,                                          \
                     real_##NAME(ncid, count, array_of_requests, array_of_statuses));         \
        NC_CALL(real_##NAME(ncid, count, array_of_requests, array_of_statuses));              \
        ev.path = nc_get(ncid, -1);                                                           \
        iot_ev_req(&ev, count);                                                               \
        iot_ev_flags(&ev, COLL);                                                              \
        IOT_LEAVE(r);                                                                         \
    }

NC_WAIT(ncmpi_wait_all, 1)
NC_WAIT(ncmpi_wait, 0)

/* The typed calls: ncmpi_{put,get}_vara_TYPE[_all] for double, float, int. */
#define NC_TYPED(T, CT)                                                                       \
    IOT_API int ncmpi_put_vara_##T##_all(int ncid, int varid, CVO start, CVO count,           \
                                         const CT *op)                                        \
    {                                                                                         \
        IOT_NC(ncmpi_put_vara_##T##_all);                                                     \
        NC_DATA_BODY(IOT_FN_ncmpi_put_vara_##T##_all, 1, (int64_t)sizeof(CT),                 \
                     real_ncmpi_put_vara_##T##_all(ncid, varid, start, count, op));           \
    }                                                                                         \
    IOT_API int ncmpi_put_vara_##T(int ncid, int varid, CVO start, CVO count, const CT *op)   \
    {                                                                                         \
        IOT_NC(ncmpi_put_vara_##T);                                                           \
        NC_DATA_BODY(IOT_FN_ncmpi_put_vara_##T, 0, (int64_t)sizeof(CT),                       \
                     real_ncmpi_put_vara_##T(ncid, varid, start, count, op));                 \
    }                                                                                         \
    IOT_API int ncmpi_get_vara_##T##_all(int ncid, int varid, CVO start, CVO count, CT *ip)   \
    {                                                                                         \
        IOT_NC(ncmpi_get_vara_##T##_all);                                                     \
        NC_DATA_BODY(IOT_FN_ncmpi_get_vara_##T##_all, 1, (int64_t)sizeof(CT),                 \
                     real_ncmpi_get_vara_##T##_all(ncid, varid, start, count, ip));           \
    }                                                                                         \
    IOT_API int ncmpi_get_vara_##T(int ncid, int varid, CVO start, CVO count, CT *ip)         \
    {                                                                                         \
        IOT_NC(ncmpi_get_vara_##T);                                                           \
        NC_DATA_BODY(IOT_FN_ncmpi_get_vara_##T, 0, (int64_t)sizeof(CT),                       \
                     real_ncmpi_get_vara_##T(ncid, varid, start, count, ip));                 \
    }

NC_TYPED(double, double)
NC_TYPED(float, float)
NC_TYPED(int, int)
