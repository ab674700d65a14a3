/* The analyzer's log decoder: walks the chunks of one iotrace log (docs/format.md) and writes
 * EVENT records straight into column arrays; every other record is handed back as (offset,
 * length) for Python to unpack (they are few: strings, stacks, modules, exit).
 *
 * Plain C, no Python headers: loaded with cffi in ABI mode (analyzer/event_columns.py compiles it once
 * per machine into a cache directory).  Every read is bounds-checked: a torn tail stops the scan
 * (`truncated`), anything malformed is reported (`error`), nothing is trusted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iot_format.h" /* the EVENT's fields and the raw columns: src/iotrace/format.py */

/* The raw columns (format.py RAW_COLUMNS): tid, the EVENT fields with a dtype, and `nulls`
 * (NULL_BITS: the field was nil).  Not kept: mode, aux (per-function meanings; `iotrace show`
 * prints them). */
#define COLUMN(type, name) type *name;
typedef struct {
    IOT_RAW_COLUMNS(COLUMN)
} iot_cols;

typedef struct {
    int64_t n_events;
    int64_t n_other;
    int64_t truncated; /* the file ends inside a chunk: read up to its last whole record */
    int64_t error_off; /* byte offset of the first malformed thing, or -1 */
    int32_t error;     /* 0 ok, 1 bad chunk marker, 2 chunk length too long, 3 bad record,
                          4 output arrays too small */
    int64_t n_ends;    /* rows of n_events that are the end read of a call with two ends */
} iot_result;

enum { N_FD = IOT_NULL_fd, N_PATH = IOT_NULL_path, N_OFF = IOT_NULL_offset, N_AUX = IOT_NULL_aux,
       N_AUXPAIR = IOT_NULL_auxpair, N_END2 = IOT_NULL_end2 };

enum { OK = 0, SHORT = 1, BAD = 2, FULL = 3 }; /* SHORT: ran out of bytes; BAD: malformed;
                                                 FULL: no room for the rows */

static inline uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* An integer or nil at *pp. */
static inline int get_int(const uint8_t **pp, const uint8_t *end, int64_t *v, int *nil)
{
    const uint8_t *p = *pp;
    if (p >= end)
        return SHORT;
    uint8_t c = *p;
    *nil = 0;
    if (c <= 0x7f) {
        *v = c;
        *pp = p + 1;
        return OK;
    }
    if (c >= 0xe0) {
        *v = (int8_t)c;
        *pp = p + 1;
        return OK;
    }
    if (c == 0xc0) {
        *nil = 1;
        *v = 0;
        *pp = p + 1;
        return OK;
    }
    if (c < 0xcc || c > 0xd3)
        return BAD;
    unsigned k = c - 0xcc; /* 0-3: uint 8/16/32/64, 4-7: int 8/16/32/64 */
    unsigned len = 1u << (k & 3);
    size_t left = (size_t)(end - p);
    if (left < 1 + len)
        return SHORT;
    uint64_t u;
    if (left >= 9) { /* one unaligned load, no loop */
        memcpy(&u, p + 1, 8);
        u = __builtin_bswap64(u) >> (64 - 8 * len);
    } else {
        u = be(p + 1, (int)len);
    }
    if (k >= 4 && len < 8) {
        unsigned sh = 64 - 8 * len;
        *v = (int64_t)(u << sh) >> sh;
    } else {
        *v = (int64_t)u;
    }
    *pp = p + 1 + len;
    return OK;
}

/* An array header at *pp. */
static int get_array(const uint8_t **pp, const uint8_t *end, uint32_t *n)
{
    const uint8_t *p = *pp;
    if (p >= end)
        return SHORT;
    uint8_t c = *p;
    if ((c & 0xf0) == 0x90) {
        *n = c & 0x0f;
        *pp = p + 1;
        return OK;
    }
    if (c == 0xdc || c == 0xdd) {
        int len = c == 0xdc ? 2 : 4;
        if (end - p < 1 + len)
            return SHORT;
        *n = (uint32_t)be(p + 1, len);
        *pp = p + 1 + len;
        return OK;
    }
    return BAD;
}

/* Skip one msgpack object of any type. */
static int skip(const uint8_t **pp, const uint8_t *end, int depth)
{
    const uint8_t *p = *pp;
    if (depth > 64)
        return BAD;
    if (p >= end)
        return SHORT;
    uint8_t c = *p;
    uint64_t body = 0, items = 0; /* bytes of payload; nested objects to skip */
    int hdr = 1;
    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
        body = 0;
    } else if ((c & 0xe0) == 0xa0) {
        body = c & 0x1f;
    } else if ((c & 0xf0) == 0x90) {
        items = c & 0x0f;
    } else if ((c & 0xf0) == 0x80) {
        items = 2 * (uint64_t)(c & 0x0f);
    } else {
        int lenb = 0;
        switch (c) {
        case 0xcc: case 0xd0: body = 1; break;
        case 0xcd: case 0xd1: body = 2; break;
        case 0xce: case 0xd2: case 0xca: body = 4; break;
        case 0xcf: case 0xd3: case 0xcb: body = 8; break;
        case 0xd4: body = 2; break; /* fixext: type + data */
        case 0xd5: body = 3; break;
        case 0xd6: body = 5; break;
        case 0xd7: body = 9; break;
        case 0xd8: body = 17; break;
        case 0xd9: case 0xc4: lenb = 1; break; /* str8, bin8 */
        case 0xda: case 0xc5: lenb = 2; break;
        case 0xdb: case 0xc6: lenb = 4; break;
        case 0xc7: lenb = 1; body = 1; break; /* ext8: len, type */
        case 0xc8: lenb = 2; body = 1; break;
        case 0xc9: lenb = 4; body = 1; break;
        case 0xdc: case 0xdd: case 0xde: case 0xdf: {
            int len = (c == 0xdc || c == 0xde) ? 2 : 4;
            if (end - p < 1 + len)
                return SHORT;
            items = be(p + 1, len) * ((c >= 0xde) ? 2 : 1);
            hdr = 1 + len;
            break;
        }
        default: return BAD; /* 0xc1 */
        }
        if (lenb) {
            if (end - p < 1 + lenb)
                return SHORT;
            body += be(p + 1, lenb);
            hdr = 1 + lenb;
        }
    }
    if ((uint64_t)(end - p) < hdr + body)
        return SHORT;
    p += hdr + body;
    for (uint64_t i = 0; i < items; i++) {
        int r = skip(&p, end, depth + 1);
        if (r != OK)
            return r;
    }
    *pp = p;
    return OK;
}

/* The rest of an EVENT record (after its array header and type).  A call with two ends
 * (fd2 path2 offset2 after aux, docs/format.md) is two rows: the end written, then the end read
 * (N_END2 set, fd/path/offset its own, the rest the same); *rows says how many. */
static int event(const uint8_t **pp, const uint8_t *end, uint32_t nfields, iot_cols *c,
                 int64_t i, int64_t cap, int32_t tid, int *rows)
{
    /* v[k]: the field at position k (format.py EVENT; 0, the record type, is read already) */
#define NULL_BIT(name, pos, bit) [pos] = bit,
    static const uint16_t bit[IOT_EVENT_BASE_FIELDS] = {IOT_EVENT_NULLABLE(NULL_BIT)};
#define V(name) v[IOT_EV_##name]
    const uint8_t *p = *pp;
    int64_t v[IOT_EVENT_NFIELDS];
    int nil, r;
    uint16_t nulls = 0;
    if (nfields + 1 < IOT_EVENT_BASE_FIELDS)
        return BAD;
    for (int k = 1; k < IOT_EV_aux; k++) {
        r = get_int(&p, end, &v[k], &nil);
        if (r != OK)
            return r;
        if (nil)
            nulls |= bit[k];
    }
    /* aux: nil, an integer, or an array ([dev, inode] of open-like calls) */
    if (p >= end)
        return SHORT;
    if ((*p & 0xf0) == 0x90 || *p == 0xdc || *p == 0xdd) {
        r = skip(&p, end, 0);
        V(aux) = 0;
        nulls |= N_AUX | N_AUXPAIR;
    } else {
        r = get_int(&p, end, &V(aux), &nil);
        if (nil)
            nulls |= N_AUX;
    }
    if (r != OK)
        return r;
    uint16_t nulls2 = 0;
    int ends = nfields + 1 >= IOT_EVENT_NFIELDS;
    for (uint32_t k = IOT_EVENT_BASE_FIELDS; k < IOT_EVENT_NFIELDS && ends; k++) {
        r = get_int(&p, end, &v[k], &nil);
        if (r != OK)
            return r;
        if (nil) /* fd2 path2 offset2: the end read's row has them in fd path offset */
            nulls2 |= k == IOT_EV_fd2 ? N_FD : k == IOT_EV_path2 ? N_PATH : N_OFF;
    }
    for (uint32_t k = ends ? IOT_EVENT_NFIELDS : IOT_EVENT_BASE_FIELDS; k <= nfields; k++) {
        r = skip(&p, end, 0); /* fields a later version appends */
        if (r != OK)
            return r;
    }
    /* values the columns could not hold are damage, not wrapped into other values */
    if (V(fn) < 0 || V(fn) > 32767 || V(t_start) < 0 || V(dur) < 0 || V(err) < 0 ||
        V(err) > 65535 || V(fd) != (int32_t)V(fd) || V(flags) != (int32_t)V(flags) ||
        V(path) < 0 || V(path) > INT32_MAX || V(stack) < 0 || V(stack) > INT32_MAX ||
        (ends && (V(fd2) != (int32_t)V(fd2) || V(path2) < 0 || V(path2) > INT32_MAX)))
        return BAD;
    *rows = 1 + ends;
    if (c && i + *rows > cap)
        return FULL;
    if (c) {
#define STORE(type, name, pos) c->name[i] = (type)v[pos];
        c->tid[i] = tid;
        IOT_EVENT_COLUMNS(STORE)
        c->nulls[i] = nulls;
        if (ends) { /* the end read: the same, but for its own fd path offset */
            i++;
            c->tid[i] = tid;
            IOT_EVENT_COLUMNS(STORE)
            c->fd[i] = (int32_t)V(fd2);
            c->path[i] = (int32_t)V(path2);
            c->offset[i] = V(offset2);
            c->nulls[i] = (uint16_t)((nulls & ~(N_FD | N_PATH | N_OFF)) | nulls2 | N_END2);
        }
#undef STORE
    }
    *pp = p;
    return OK;
#undef V
}

/* Scan the chunks of one log that start in [first, stop) (`len` is the whole file's length, `chunk`
 * the chunk size; `first` a chunk boundary).  With cols == NULL only counts.  Other records go to
 * other_off/other_len (if not NULL) up to other_cap of them; n_other counts them all. */
int iot_scan(const uint8_t *buf, int64_t len, int64_t first, int64_t stop, int64_t chunk,
             iot_cols *cols, int64_t cap, int64_t *other_off, int64_t *other_len,
             int64_t other_cap, iot_result *res)
{
    memset(res, 0, sizeof *res);
    res->error_off = -1;
    if (chunk < 64 || first < 0)
        return res->error = 3, -1;
    if (stop > len)
        stop = len;
    for (int64_t off = first; off < stop; off += chunk) {
        uint8_t m = buf[off];
        if (m == 0)
            continue; /* a slot reserved but never written */
        if (m != 0xc6) {
            res->error = 1;
            res->error_off = off;
            return -1;
        }
        if (len - off < 5) {
            res->truncated = 1;
            break;
        }
        int64_t n = (int64_t)be(buf + off + 1, 4);
        if (n > chunk - 5) {
            res->error = 2;
            res->error_off = off;
            return -1;
        }
        const uint8_t *p = buf + off + 5;
        const uint8_t *end = p + n;
        int torn = 0;
        if (off + 5 + n > len) {
            end = buf + len;
            torn = 1;
            res->truncated = 1;
        }
        int64_t tid = -1; /* every chunk starts with its THREAD record */
        while (p < end) {
            const uint8_t *rec = p;
            uint32_t nf;
            int64_t kind;
            int nil;
            int r = get_array(&p, end, &nf);
            if (r == OK && nf == 0)
                r = BAD;
            if (r == OK)
                r = get_int(&p, end, &kind, &nil);
            if (r == OK && nil)
                r = BAD;
            if (r == OK) {
                if (tid < 0 && kind != 3) {
                    r = BAD;
                } else if (kind == 0) {
                    int rows = 1;
                    r = event(&p, end, nf - 1, cols, res->n_events, cap, (int32_t)tid, &rows);
                    if (r == FULL) {
                        res->error = 4;
                        return -1;
                    }
                    if (r == OK) {
                        res->n_events += rows;
                        res->n_ends += rows - 1;
                    }
                } else if (kind == 3) {
                    int64_t t = -1;
                    r = tid >= 0 || nf != 2 ? BAD : get_int(&p, end, &t, &nil);
                    if (r == OK && (nil || t < 0 || t > INT32_MAX))
                        r = BAD;
                    tid = t;
                    for (uint32_t k = 2; r == OK && k < nf; k++)
                        r = skip(&p, end, 0);
                } else {
                    for (uint32_t k = 1; r == OK && k < nf; k++)
                        r = skip(&p, end, 0);
                    if (r == OK) {
                        if (other_off && res->n_other < other_cap) {
                            other_off[res->n_other] = rec - buf;
                            other_len[res->n_other] = p - rec;
                        } /* else: only counted; the caller scans again with more room */
                        res->n_other++;
                    }
                }
            }
            if (r == SHORT && torn)
                break; /* the torn tail: stop at the last whole record */
            if (r != OK) {
                res->error = 3;
                res->error_off = rec - buf;
                return -1;
            }
        }
        if (torn)
            break;
    }
    return 0;
}

/* Kernels for the summaries: per-group scans in event (time) order, O(n), no sort. */

/* out[i] = the value of the previous event of the same group, or `first` for a group's first. */
void iot_prev_in_group(const int64_t *group, const int64_t *val, int64_t n, int64_t *last,
                       int64_t ngroups, int64_t first, int64_t *out)
{
    for (int64_t g = 0; g < ngroups; g++)
        last[g] = first;
    for (int64_t i = 0; i < n; i++) {
        int64_t g = group[i];
        out[i] = last[g];
        last[g] = val[i];
    }
}

/* Per group: the length of the union of the intervals [start, end) (given in start order). */
void iot_union_length(const int64_t *group, const int64_t *start, const int64_t *end, int64_t n,
                      int64_t *reach, int64_t *total, int64_t ngroups)
{
    for (int64_t g = 0; g < ngroups; g++) {
        reach[g] = INT64_MIN;
        total[g] = 0;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t g = group[i], s = start[i], e = end[i];
        int64_t from = s > reach[g] ? s : reach[g];
        if (e > from)
            total[g] += e - from;
        if (e > reach[g])
            reach[g] = e;
    }
}

/* Gathers for building the time-ordered events table (load.py): dst[i] = src[idx[i]], the items
 * signed integers of 1, 2, 4 or 8 bytes (`ssize`, `dsize`: a narrower destination keeps the low
 * bytes, as numpy's astype), the index of `isize` bytes (0: no index, dst[i] = src[i]).  Every
 * index is checked against `slen`: returns 0, or -1 at the first one out of range. */
#define TAKE_BY(I, D)                                                                              \
    {                                                                                              \
        const I *x = ix;                                                                           \
        for (int64_t i = 0; i < n; i++) {                                                          \
            uint64_t k = (uint64_t)(int64_t)x[i];                                                  \
            if (k >= (uint64_t)slen)                                                               \
                return -1;                                                                         \
            d[i] = (D)s[k];                                                                        \
        }                                                                                          \
        return 0;                                                                                  \
    }
#define TAKE(S, D)                                                                                 \
    static int take_##S##_##D(const S *s, int64_t slen, const void *ix, int isize, int64_t n,     \
                              D *d)                                                                \
    {                                                                                              \
        switch (isize) {                                                                           \
        case 0:                                                                                    \
            if (n > slen)                                                                          \
                return -1;                                                                         \
            for (int64_t i = 0; i < n; i++)                                                        \
                d[i] = (D)s[i];                                                                    \
            return 0;                                                                              \
        case 1: TAKE_BY(int8_t, D)                                                                 \
        case 2: TAKE_BY(int16_t, D)                                                                \
        case 4: TAKE_BY(int32_t, D)                                                                \
        case 8: TAKE_BY(int64_t, D)                                                                \
        default: return -1;                                                                        \
        }                                                                                          \
    }
#define TAKE_TO(S) TAKE(S, int8_t) TAKE(S, int16_t) TAKE(S, int32_t) TAKE(S, int64_t)
TAKE_TO(int8_t)
TAKE_TO(int16_t)
TAKE_TO(int32_t)
TAKE_TO(int64_t)

#define TAKE_CALL(S)                                                                               \
    switch (dsize) {                                                                               \
    case 1: return take_##S##_int8_t(src, slen, idx, isize, n, dst);                               \
    case 2: return take_##S##_int16_t(src, slen, idx, isize, n, dst);                              \
    case 4: return take_##S##_int32_t(src, slen, idx, isize, n, dst);                              \
    case 8: return take_##S##_int64_t(src, slen, idx, isize, n, dst);                              \
    default: return -1;                                                                            \
    }

int iot_take(const void *src, int32_t ssize, int64_t slen, const void *idx, int32_t isize,
             int64_t n, void *dst, int32_t dsize)
{
    switch (ssize) {
    case 1: TAKE_CALL(int8_t)
    case 2: TAKE_CALL(int16_t)
    case 4: TAKE_CALL(int32_t)
    case 8: TAKE_CALL(int64_t)
    default: return -1;
    }
}

/* masks[j][i] = (nulls[idx[i]] & bits[j]) != 0, k masks in one pass (idx int32, else none:
 * nulls[i]).  Returns 0, or -1 at an index out of range (`len`: nulls' length). */
int iot_null_masks(const uint16_t *nulls, int64_t len, const int32_t *idx, int64_t n,
                   const uint16_t *bits, int32_t k, uint8_t **masks)
{
    if (!idx && n > len)
        return -1;
    for (int64_t i = 0; i < n; i++) {
        uint64_t x = idx ? (uint64_t)(int64_t)idx[i] : (uint64_t)i;
        if (x >= (uint64_t)len)
            return -1;
        uint16_t v = nulls[x];
        for (int32_t j = 0; j < k; j++)
            masks[j][i] = (v & bits[j]) != 0;
    }
    return 0;
}

/* The stable ascending order of `key` (n values), for keys made of sorted runs (each thread's
 * events are in time order already): the runs are merged through a binary heap of their heads,
 * ties going to the earlier run, so that equal keys keep their order.  Writes order[0..n) and
 * returns the number of runs; returns -1, writing nothing, when there are more than `max_runs`
 * runs (the caller sorts another way) or on allocation failure. */
typedef struct {
    int64_t key;
    int64_t run;
} iot_head;

static inline int head_lt(const iot_head *a, const iot_head *b)
{
    return a->key < b->key || (a->key == b->key && a->run < b->run);
}

static void sift_down(iot_head *h, int64_t size, int64_t i)
{
    iot_head x = h[i];
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= size)
            break;
        if (c + 1 < size && head_lt(&h[c + 1], &h[c]))
            c++;
        if (!head_lt(&h[c], &x))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

int64_t iot_merge_order(const int64_t *key, int64_t n, int64_t max_runs, int32_t *order)
{
    int64_t runs = n > 0;
    for (int64_t i = 1; i < n; i++)
        runs += key[i] < key[i - 1];
    if (runs > max_runs)
        return -1;
    int64_t *pos = malloc(sizeof(int64_t) * 2 * (size_t)(runs + 1));
    iot_head *heap = malloc(sizeof(iot_head) * (size_t)(runs + 1));
    if (!pos || !heap) {
        free(pos);
        free(heap);
        return -1;
    }
    int64_t *end = pos + runs + 1;
    int64_t r = 0;
    for (int64_t i = 0; i < n; i++) {
        if (i == 0 || key[i] < key[i - 1]) {
            if (r)
                end[r - 1] = i;
            pos[r++] = i;
        }
    }
    if (r)
        end[r - 1] = n;
    for (int64_t j = 0; j < runs; j++)
        heap[j] = (iot_head){key[pos[j]], j};
    for (int64_t j = runs / 2 - 1; j >= 0; j--)
        sift_down(heap, runs, j);
    int64_t size = runs;
    for (int64_t i = 0; i < n; i++) {
        int64_t j = heap[0].run;
        order[i] = (int32_t)pos[j];
        if (++pos[j] < end[j])
            heap[0].key = key[pos[j]];
        else
            heap[0] = heap[--size];
        if (size)
            sift_down(heap, size, 0);
    }
    free(pos);
    free(heap);
    return runs;
}

/* One log's events (n, in place): times shifted by `shift` (to the job's clock), function ids
 * mapped through fn_lut (fn_n entries, the last for ids out of range), path ids through path_lut
 * (-1 where nil, out of range or without a string), stack ids moved by `stack_base` (-1 where nil
 * or negative).  As load.py's numpy version: two's-complement wrapping, no overflow checks.
 * Returns the largest stack id written, or -1. */
int64_t iot_map_ids(int64_t n, int64_t *t_start, int64_t shift, int16_t *fn, const int16_t *fn_lut,
                    int64_t fn_n, int32_t *path, const int32_t *path_lut, int64_t path_n,
                    int32_t *stack, int32_t stack_base, const uint16_t *nulls, uint16_t path_bit,
                    uint16_t stack_bit)
{
    int32_t top = -1;
    for (int64_t i = 0; i < n; i++) {
        t_start[i] = (int64_t)((uint64_t)t_start[i] + (uint64_t)shift);
        int64_t f = fn[i];
        fn[i] = fn_lut[(f < 0 || f >= fn_n - 1) ? fn_n - 1 : f];
        int64_t p = path[i];
        path[i] = ((nulls[i] & path_bit) || p < 0 || p >= path_n) ? -1 : path_lut[p];
        int32_t s = stack[i];
        s = ((nulls[i] & stack_bit) || s < 0) ? -1 : (int32_t)((uint32_t)s + (uint32_t)stack_base);
        stack[i] = s;
        top = s > top ? s : top;
    }
    return top;
}
