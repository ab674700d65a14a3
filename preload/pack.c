/* msgpack encoding of every record type (msgpack-c's inline packers, writing straight into the
 * space writer.c reserved in the mapped log).  Layouts are documented in docs/format.md. */
#include <msgpack.h>
#include <string.h>

#include "shim.h"

static int put(void *data, const char *buf, size_t len)
{
    char **p = data;
    memcpy(*p, buf, len);
    *p += len;
    return 0;
}

#define PACKER(pk, cursor) msgpack_packer pk; msgpack_packer_init(&pk, &cursor, put)

static void opt_int(msgpack_packer *pk, int present, int64_t v)
{
    if (present)
        msgpack_pack_int64(pk, v);
    else
        msgpack_pack_nil(pk);
}

static inline void pack_aux(msgpack_packer *pk, const iot_ev *ev)
{
    if (ev->naux == 0) {
        msgpack_pack_nil(pk);
    } else if (ev->naux == 1) {
        msgpack_pack_int64(pk, ev->aux[0]);
    } else {
        msgpack_pack_array(pk, 2);
        msgpack_pack_int64(pk, ev->aux[0]);
        msgpack_pack_int64(pk, ev->aux[1]);
    }
}

/* Each EVENT field from the iot_ev, by its name in src/iotrace/format.py; the order is the
 * table's (IOT_EVENT_BASE, IOT_EVENT_ENDS): a field added there without a line here does not
 * compile. */
#define PACK_rec msgpack_pack_uint8(&pk, IOT_REC_EVENT)
#define PACK_fn msgpack_pack_uint16(&pk, ev->fn)
#define PACK_t_start msgpack_pack_uint64(&pk, ev->t0)
#define PACK_dur msgpack_pack_uint64(&pk, ev->t1 - ev->t0)
#define PACK_fd opt_int(&pk, ev->has & IOT_HAS_FD, ev->fd)
#define PACK_path opt_int(&pk, ev->path, ev->path)
#define PACK_req opt_int(&pk, ev->has & IOT_HAS_REQ, ev->req)
#define PACK_ret msgpack_pack_int64(&pk, ev->ret)
#define PACK_err msgpack_pack_int(&pk, ev->err)
#define PACK_offset opt_int(&pk, ev->has & IOT_HAS_OFF, ev->off)
#define PACK_flags opt_int(&pk, ev->has & IOT_HAS_FLAGS, ev->flags)
#define PACK_mode opt_int(&pk, ev->has & IOT_HAS_MODE, ev->mode)
#define PACK_stack opt_int(&pk, ev->stack, ev->stack)
#define PACK_aux pack_aux(&pk, ev)
#define PACK_fd2 msgpack_pack_int64(&pk, ev->fd2)
#define PACK_path2 opt_int(&pk, ev->path2, ev->path2)
#define PACK_offset2 opt_int(&pk, ev->has & IOT_HAS_OFF2, ev->off2)
#define PACK_FIELD(name, pos) PACK_##name;

/* The one record of the hot path.  `flatten` inlines msgpack-c's packers and the `put`
 * callback into straight-line code (each field's memcpy has a constant size): the bytes are
 * msgpack-c's own, the per-field calls through the callback are gone.  Measured (bench/): the
 * traced write(2) went from +108 to +93 ns added per call. */
__attribute__((flatten)) char *iot_pack_event(char *p, const iot_ev *ev)
{
    PACKER(pk, p);
    int ends = ev->has & IOT_HAS_END2; /* fd2 path2 offset2 only on calls with two ends */
    msgpack_pack_array(&pk, ends ? IOT_EVENT_NFIELDS : IOT_EVENT_BASE_FIELDS);
    IOT_EVENT_BASE(PACK_FIELD)
    if (ends) {
        IOT_EVENT_ENDS(PACK_FIELD)
    }
    return p;
}

/* [7, tid, t_start, bytes]: the first n bytes of the event's buffer (-s N), gathered from its
 * iovecs if it has them; (tid, t_start) name the event for readers that do not keep records in
 * order. */
char *iot_pack_data(char *p, pid_t tid, const iot_ev *ev, size_t n)
{
    PACKER(pk, p);
    msgpack_pack_array(&pk, IOT_REC_DATA_NFIELDS);
    msgpack_pack_uint8(&pk, IOT_REC_DATA);
    msgpack_pack_int(&pk, tid);
    msgpack_pack_uint64(&pk, ev->t0);
    msgpack_pack_bin(&pk, n);
    if (ev->data_iov < 0) {
        memcpy(p, ev->data, n);
        return p + n;
    }
    const struct { void *base; size_t len; } *iov = ev->data;
    for (int i = 0; i < ev->data_iov && n; i++) {
        size_t k = iov[i].len < n ? iov[i].len : n;
        memcpy(p, iov[i].base, k);
        p += k;
        n -= k;
    }
    return p;
}

static void pack_dims(msgpack_packer *pk, int n, const uint64_t *v)
{
    msgpack_pack_array(pk, (size_t)(n > 0 ? n : 0));
    for (int i = 0; i < n; i++)
        msgpack_pack_uint64(pk, v[i]);
}

/* [8, tid, t_start, size, [dims], [chunk dims]]: the dataset the event made or opened (HDF5). */
char *iot_pack_shape(char *p, pid_t tid, const iot_ev *ev, int64_t size, int rank,
                     const uint64_t *dims, int chunk_rank, const uint64_t *chunk)
{
    PACKER(pk, p);
    msgpack_pack_array(&pk, IOT_REC_SHAPE_NFIELDS);
    msgpack_pack_uint8(&pk, IOT_REC_SHAPE);
    msgpack_pack_int(&pk, tid);
    msgpack_pack_uint64(&pk, ev->t0);
    msgpack_pack_int64(&pk, size);
    pack_dims(&pk, rank, dims);
    pack_dims(&pk, chunk_rank, chunk);
    return p;
}

/* [9, tid, t_start, bytes, chunks, partial]: an H5Dread/H5Dwrite's selection in the file;
 * chunks < 0: not chunked (nil, nil). */
char *iot_pack_selection(char *p, pid_t tid, const iot_ev *ev, int64_t bytes, int64_t chunks,
                         int64_t partial)
{
    PACKER(pk, p);
    msgpack_pack_array(&pk, IOT_REC_SELECTION_NFIELDS);
    msgpack_pack_uint8(&pk, IOT_REC_SELECTION);
    msgpack_pack_int(&pk, tid);
    msgpack_pack_uint64(&pk, ev->t0);
    msgpack_pack_int64(&pk, bytes);
    opt_int(&pk, chunks >= 0, chunks);
    opt_int(&pk, chunks >= 0, partial);
    return p;
}

char *iot_pack_string(char *p, uint32_t id, const char *s, size_t n)
{
    PACKER(pk, p);
    msgpack_pack_array(&pk, IOT_REC_STRING_NFIELDS);
    msgpack_pack_uint8(&pk, IOT_REC_STRING);
    msgpack_pack_uint32(&pk, id);
    msgpack_pack_str_with_body(&pk, s, n);
    return p;
}

char *iot_pack_stack(char *p, uint32_t id, const uintptr_t *pcs, int n)
{
    PACKER(pk, p);
    msgpack_pack_array(&pk, IOT_REC_STACK_NFIELDS);
    msgpack_pack_uint8(&pk, IOT_REC_STACK);
    msgpack_pack_uint32(&pk, id);
    msgpack_pack_array(&pk, (size_t)n);
    for (int i = 0; i < n; i++)
        msgpack_pack_uint64(&pk, pcs[i]);
    return p;
}

char *iot_pack_thread(char *p, pid_t tid)
{
    PACKER(pk, p);
    msgpack_pack_array(&pk, IOT_REC_THREAD_NFIELDS);
    msgpack_pack_uint8(&pk, IOT_REC_THREAD);
    msgpack_pack_int32(&pk, tid);
    return p;
}

char *iot_pack_module(char *p, uintptr_t base, uintptr_t lo, uintptr_t hi, const char *path,
                      const void *build_id, size_t id_len)
{
    PACKER(pk, p);
    msgpack_pack_array(&pk, IOT_REC_MODULE_NFIELDS);
    msgpack_pack_uint8(&pk, IOT_REC_MODULE);
    msgpack_pack_uint64(&pk, base);
    msgpack_pack_uint64(&pk, lo);
    msgpack_pack_uint64(&pk, hi);
    msgpack_pack_str_with_body(&pk, path, strlen(path));
    if (build_id)
        msgpack_pack_bin_with_body(&pk, build_id, id_len);
    else
        msgpack_pack_nil(&pk);
    return p;
}

/* [6, when, t, [rchar, wchar, syscr, syscw, read_bytes, write_bytes, cancelled_write_bytes],
 *  [own rchar, wchar, syscr, syscw], [stdio bytes pending, streams with some],
 *  [events' rchar, wchar, syscr, syscw, stdio bytes read, written],
 *  [io_uring descriptors, ring mappings, liburing's lines in the maps],
 *  [errno of the reading (0: taken; else v NULL, counters []), euid], [next] or []] */
char *iot_pack_kio(char *p, int when, uint64_t t, const uint64_t v[IOT_KIO_N],
                   const uint64_t own[IOT_KIO_OWN_N], const uint64_t pending[2],
                   const uint64_t sums[IOT_KIO_SUMS_N], const uint64_t uring[IOT_KIO_URING_N],
                   const int lost[2], int next)
{
    PACKER(pk, p);
    msgpack_pack_array(&pk, IOT_REC_KIO_NFIELDS);
    msgpack_pack_uint8(&pk, IOT_REC_KIO);
    msgpack_pack_uint8(&pk, (uint8_t)when);
    msgpack_pack_uint64(&pk, t);
    msgpack_pack_array(&pk, v ? IOT_KIO_N : 0);
    for (int i = 0; v && i < IOT_KIO_N; i++)
        msgpack_pack_uint64(&pk, v[i]);
    msgpack_pack_array(&pk, IOT_KIO_OWN_N);
    for (int i = 0; i < IOT_KIO_OWN_N; i++)
        msgpack_pack_uint64(&pk, own[i]);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint64(&pk, pending[0]);
    msgpack_pack_uint64(&pk, pending[1]);
    msgpack_pack_array(&pk, IOT_KIO_SUMS_N);
    for (int i = 0; i < IOT_KIO_SUMS_N; i++)
        msgpack_pack_uint64(&pk, sums[i]);
    msgpack_pack_array(&pk, IOT_KIO_URING_N);
    for (int i = 0; i < IOT_KIO_URING_N; i++)
        msgpack_pack_uint64(&pk, uring[i]);
    msgpack_pack_array(&pk, lost ? 2 : 0);
    if (lost) {
        msgpack_pack_int(&pk, lost[0]);
        msgpack_pack_int(&pk, lost[1]);
    }
    msgpack_pack_array(&pk, next ? 1 : 0);
    if (next)
        msgpack_pack_int(&pk, next);
    return p;
}

char *iot_pack_exit(char *p, uint64_t t, int status)
{
    PACKER(pk, p);
    msgpack_pack_array(&pk, IOT_REC_EXIT_NFIELDS);
    msgpack_pack_uint8(&pk, IOT_REC_EXIT);
    msgpack_pack_uint64(&pk, t);
    msgpack_pack_int(&pk, status);
    return p;
}

/* [10, t, dropped, untraced, nnp]: the two counts as uint64s of fixed width, their 8 bytes at
 * count[0] and count[1], raised in place (writer.c iot_log_dropped); nnp a positive fixint, one
 * byte at *nnp_at, set in place (writer.c iot_log_sandbox_nnp) */
char *iot_pack_seccomp(char *p, uint64_t t, char *count[2], char **nnp_at)
{
    PACKER(pk, p);
    msgpack_pack_array(&pk, IOT_REC_SECCOMP_NFIELDS);
    msgpack_pack_uint8(&pk, IOT_REC_SECCOMP);
    msgpack_pack_uint64(&pk, t);
    for (int i = 0; i < 2; i++) {
        *p++ = (char)0xcf;
        count[i] = p;
        memset(p, 0, 8);
        p += 8;
    }
    *nnp_at = p;
    *p++ = 0;
    return p;
}
