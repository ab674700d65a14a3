/* The analyzer's log decoder: walks the chunks of one iotrace log (docs/format.md) and writes
 * EVENT records straight into column arrays; every other record is handed back as (offset,
 * length) for Python to unpack (they are few: strings, stacks, modules, exit).
 *
 * Plain C, no Python headers: loaded with cffi in ABI mode (analyzer/event_columns.py compiles it once
 * per machine into a cache directory).  Every read is bounds-checked: a torn tail stops the scan
 * (`truncated`), anything malformed is reported (`error`), nothing is trusted. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iot_format.h" /* the EVENT's fields and the raw columns: src/iotrace/format.py */

/* The raw columns (format.py RAW_COLUMNS): tid, the EVENT fields with a dtype, and `nulls`
 * (NULL_BITS: the field was nil).  mode and aux (per-function meanings) and `big` only where
 * given (`iotrace show` prints them; the analyzer leaves them NULL): `big` has a BIG_* bit for
 * each 64-bit field that was an unsigned integer past INT64_MAX (its column holds it wrapped). */
#define COLUMN(type, name) type *name;
typedef struct {
    IOT_RAW_COLUMNS(COLUMN)
    int64_t *mode;
    int64_t *aux;
    uint8_t *big;
} iot_cols;

enum { BIG_REQ = 1, BIG_RET = 2, BIG_OFF = 4, BIG_MODE = 8, BIG_AUX = 16, BIG_OFF2 = 32 };

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
       N_AUXPAIR = IOT_NULL_auxpair, N_END2 = IOT_NULL_end2, N_MODE_W = IOT_NULL_mode_w };

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
    uint8_t big = 0; /* BIG_* */
    if (nfields + 1 < IOT_EVENT_BASE_FIELDS)
        return BAD;
    for (int k = 1; k < IOT_EV_aux; k++) {
        uint8_t tag = p < end ? *p : 0;
        r = get_int(&p, end, &v[k], &nil);
        if (r != OK)
            return r;
        if (nil)
            nulls |= bit[k];
        if (tag == 0xcf && v[k] < 0)
            big |= k == IOT_EV_req ? BIG_REQ : k == IOT_EV_ret ? BIG_RET
                 : k == IOT_EV_offset ? BIG_OFF : k == IOT_EV_mode ? BIG_MODE : 0;
    }
    if (!(nulls & bit[IOT_EV_mode]) && (V(mode) & 2)) /* mode is no column: an mmap's PROT_WRITE */
        nulls |= N_MODE_W;
    /* aux: nil, an integer, or an array ([dev, inode] of open-like calls) */
    if (p >= end)
        return SHORT;
    if ((*p & 0xf0) == 0x90 || *p == 0xdc || *p == 0xdd) {
        r = skip(&p, end, 0);
        V(aux) = 0;
        nulls |= N_AUX | N_AUXPAIR;
    } else {
        uint8_t tag = *p;
        r = get_int(&p, end, &V(aux), &nil);
        if (nil)
            nulls |= N_AUX;
        if (tag == 0xcf && V(aux) < 0)
            big |= BIG_AUX;
    }
    if (r != OK)
        return r;
    uint16_t nulls2 = 0;
    int ends = nfields + 1 >= IOT_EVENT_NFIELDS;
    for (uint32_t k = IOT_EVENT_BASE_FIELDS; k < IOT_EVENT_NFIELDS && ends; k++) {
        uint8_t tag = p < end ? *p : 0;
        r = get_int(&p, end, &v[k], &nil);
        if (r == OK && k == IOT_EV_offset2 && tag == 0xcf && v[k] < 0)
            big |= BIG_OFF2;
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
        if (c->mode) {
            c->mode[i] = V(mode);
            c->aux[i] = V(aux);
            c->big[i] = big;
        }
        if (ends) { /* the end read: the same, but for its own fd path offset */
            i++;
            c->tid[i] = tid;
            IOT_EVENT_COLUMNS(STORE)
            c->fd[i] = (int32_t)V(fd2);
            c->path[i] = (int32_t)V(path2);
            c->offset[i] = V(offset2);
            c->nulls[i] = (uint16_t)((nulls & ~(N_FD | N_PATH | N_OFF)) | nulls2 | N_END2);
            if (c->mode) {
                c->mode[i] = V(mode);
                c->aux[i] = V(aux);
                c->big[i] = (uint8_t)((big & ~BIG_OFF) | (big & BIG_OFF2 ? BIG_OFF : 0));
            }
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

/* Per group: the length of the union of the intervals [start, end) (given in start order).  A
 * group < 0 is no interval (a subset with no copies of the columns). */
void iot_union_length(const int64_t *group, const int64_t *start, const int64_t *end, int64_t n,
                      int64_t *reach, int64_t *total, int64_t ngroups)
{
    for (int64_t g = 0; g < ngroups; g++) {
        reach[g] = INT64_MIN;
        total[g] = 0;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t g = group[i], s = start[i], e = end[i];
        if (g < 0)
            continue;
        int64_t from = s > reach[g] ? s : reach[g];
        if (e > from)
            total[g] += e - from;
        if (e > reach[g])
            reach[g] = e;
    }
}

/* Per bin of `key`: how many elements, and the sums of the int64 weights `w0` and `w1` (either
 * NULL: not summed), in one pass: numpy's bincount makes a pass per weight (two over the key),
 * each cast to float64 first.  A key < 0 is no element (left out: no copies of the columns for
 * a subset); a key >= nbins: returns -1 (nothing is written past the bins), else 0. */
#define SUMS_LOOP(BODY)                                                                            \
    for (int64_t i = 0; i < n; i++) {                                                              \
        int64_t k = key[i];                                                                        \
        if (k < 0)                                                                                 \
            continue;                                                                              \
        if (k >= nbins)                                                                            \
            return -1;                                                                             \
        counts[k]++;                                                                               \
        BODY;                                                                                      \
    }
int iot_sums(const int64_t *key, int64_t n, int64_t nbins, const int64_t *w0, const int64_t *w1,
             int64_t *counts, int64_t *sum0, int64_t *sum1)
{
    for (int64_t b = 0; b < nbins; b++) {
        counts[b] = 0;
        if (w0)
            sum0[b] = 0;
        if (w1)
            sum1[b] = 0;
    }
    if (w0 && w1)
        SUMS_LOOP((sum0[k] += w0[i], sum1[k] += w1[i]))
    else if (w0)
        SUMS_LOOP(sum0[k] += w0[i])
    else if (w1)
        SUMS_LOOP(sum1[k] += w1[i])
    else
        SUMS_LOOP((void)0)
    return 0;
}
#undef SUMS_LOOP

/* Per bin of `key`: out[k] = the largest of out[k] and the values of its elements (the caller
 * sets out's start).  A key < 0 is no element; a key >= nbins: returns -1, else 0. */
int iot_max_by(const int64_t *key, const int64_t *val, int64_t n, int64_t nbins, int64_t *out)
{
    for (int64_t i = 0; i < n; i++) {
        int64_t k = key[i];
        if (k < 0)
            continue;
        if (k >= nbins)
            return -1;
        if (val[i] > out[k])
            out[k] = val[i];
    }
    return 0;
}

/* bandwidth_sums's calls within one bin (analyzer/job.py), in one pass over the events: for each
 * event of `m` (a read or write: `is_write`), its bins are floor(s / w) and floor(max(e - 1, s) / w)
 * clipped to [0, bins), s and e its times as doubles; when they are one bin, its bytes are added to
 * acc[row * (bins + 1) + bin] (row 1: writes), sums of integers, exact below 2**53 in any order.
 * The rest go to `rest` (their indices, ascending; returns how many) for job.py to spread in numpy:
 * the calls over several bins, and those whose quotient is within 1e-9 of an integer (numpy's
 * float floor division rounds those its own way: job._floor_div) or too large for int64. */
int64_t iot_one_bin(int64_t n, const uint8_t *m, const uint8_t *is_write, const int64_t *t_start,
                    const int64_t *t_end, const int64_t *bytes, double w, int64_t bins, double *acc,
                    int64_t *rest)
{
    int64_t k = 0;
    for (int64_t j = 0; j < 2 * (bins + 1); j++)
        acc[j] = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (!m[i])
            continue;
        double s = (double)t_start[i], e1 = (double)t_end[i] - 1.0;
        double q[2] = {s / w, (e1 > s ? e1 : s) / w};
        int64_t b[2];
        int safe = 1;
        for (int h = 0; h < 2; h++) {
            if (!(q[h] > -4503599627370496.0 && q[h] < 4503599627370496.0)) { /* 2**52 */
                safe = 0;
                break;
            }
            double f = (double)(int64_t)q[h]; /* floor(q), exact below 2**52 */
            if (f > q[h])
                f -= 1.0;
            double r = q[h] - f;
            if (r < 1e-9 || r > 1 - 1e-9) {
                safe = 0;
                break;
            }
            int64_t v = (int64_t)f;
            b[h] = v < 0 ? 0 : v > bins - 1 ? bins - 1 : v;
        }
        if (safe && b[0] == b[1])
            acc[(is_write[i] ? bins + 1 : 0) + b[0]] += (double)bytes[i];
        else
            rest[k++] = i;
    }
    return k;
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
 * runs (the caller sorts another way) or on allocation failure; with one run (or none) writes
 * nothing either: the keys are in order. */
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
    if (runs <= 1)
        return runs; /* in order already (one thread's events): nothing to merge */
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

/* `iotrace show`'s lines of a shim log's events, strace-like (src/iotrace/show.py says what each
 * argument kind prints): rows as iot_scan decodes them (with mode, aux and big), every text that
 * depends on names (paths, flag names, errno names, stack frames, kept data) looked up by index
 * in tables Python made, so that the names have one source (iotrace.flags, errno, text.escape). */
typedef struct {
    const char *blob;
    const int64_t *off; /* text k: blob[off[k], off[k + 1]) */
    int64_t n;
} iot_texts;

/* argument kinds (show.py KINDS) */
enum { K_FD = 1, K_PATH, K_PATH2, K_FD2, K_END2, K_WHENCE, K_ADDR, K_REQ, K_OFF, K_FLAGS, K_MODE, K_FDS,
       K_STREAM /* no argument: the result is a FILE * or DIR *, shown by its descriptor */,
       K_HEXOFF /* the offset in hex, 0 as 0 (strace's mmap) */,
       K_NEWFD /* no argument: the result is a new descriptor of the record's path, 3</path> */,
       K_ENTRY /* no argument: the result is readdir's entry (ret 1) or NULL */,
       K_HINT /* aux as an address argument, NULL for 0 (mmap's hint) */,
       K_MAPPED /* aux as an address in a mapping of the record's path, 0x7f..</path> */,
       K_AUX /* aux as a number, named where aux_text_ix names it (socket's protocol) */ };

typedef struct {
    int64_t n;              /* rows (an end read's row right after its call's) */
    const uint8_t *keep;    /* per row: shown (NULL: every one) */
    int64_t origin;         /* a line's time: t_start - origin, ns */
    const int32_t *path_ix; /* per row: its path in `paths`, -1 none (nil or no string) */
    const int32_t *aux_ix;  /* per row: aux as a path in `paths`, -1 none */
    const int32_t *flags_ix, *mode_ix, *data_ix, *stack_ix; /* in `texts`, -1 none */
    const int32_t *ret_ix;  /* a result named (fcntl F_GETFL's flags), in `texts`, -1 none */
    const int32_t *aux_text_ix; /* per row: aux named (K_AUX), in `texts`, -1 none */
    iot_texts paths;        /* escaped path strings */
    iot_texts texts;        /* decoded flags and modes, kept data quoted, stacks' frames lines */
    iot_texts fnames;       /* per function id: its name, escaped */
    iot_texts kinds;        /* per function id: its argument kinds (K_*), one byte each */
    iot_texts errors;       /* per errno: "NAME (message)" */
    iot_texts whence;       /* per lseek whence: its name */
    const char *prefix;     /* "[pid P" or "[rank R pid P" */
    int64_t prefix_len;
} iot_show;

typedef struct {
    char *p, *end;
} iot_out;

static inline int put(iot_out *o, const char *s, int64_t n)
{
    if (o->end - o->p < n)
        return -1;
    memcpy(o->p, s, (size_t)n);
    o->p += n;
    return 0;
}

static inline int put_text(iot_out *o, const iot_texts *t, int64_t k)
{
    return put(o, t->blob + t->off[k], t->off[k + 1] - t->off[k]);
}

static inline int put_dec(iot_out *o, int64_t v, int unsig)
{
    char tmp[24], *q = tmp + sizeof tmp;
    uint64_t u = unsig || v >= 0 ? (uint64_t)v : -(uint64_t)v;
    do
        *--q = (char)('0' + u % 10);
    while (u /= 10);
    if (!unsig && v < 0)
        *--q = '-';
    return put(o, q, tmp + sizeof tmp - q);
}

static inline int put_hex(iot_out *o, uint64_t u) /* as Python's hex() of a positive int */
{
    char tmp[24], *q = tmp + sizeof tmp;
    do
        *--q = "0123456789abcdef"[u & 15];
    while (u >>= 4);
    *--q = 'x';
    *--q = '0';
    return put(o, q, tmp + sizeof tmp - q);
}

/* ns as seconds with 6 decimals, as Python's f"{ns / 1e9:.6f}": whole microseconds where the
 * integer rounding is the double's (not a tie, below 2^53 ns), else the double printed. */
static inline int put_secs(iot_out *o, int64_t ns)
{
    if (ns >= 0 && ns < (INT64_C(1) << 53) && ns % 1000 != 500) {
        int64_t us = ns / 1000 + (ns % 1000 > 500);
        char tmp[32], *q = tmp + sizeof tmp;
        int64_t frac = us % 1000000, whole = us / 1000000;
        for (int k = 0; k < 6; k++, frac /= 10)
            *--q = (char)('0' + frac % 10);
        *--q = '.';
        do
            *--q = (char)('0' + whole % 10);
        while (whole /= 10);
        return put(o, q, tmp + sizeof tmp - q);
    }
    char tmp[64];
    int n = snprintf(tmp, sizeof tmp, "%.6f", (double)ns / 1e9);
    return n < 0 || n >= (int)sizeof tmp ? -1 : put(o, tmp, n);
}

static inline int put_path(iot_out *o, const iot_show *s, int32_t k) /* "path", ? when none */
{
    if (k < 0)
        return put(o, "?", 1);
    return put(o, "\"", 1) || put_text(o, &s->paths, k) || put(o, "\"", 1);
}

static inline int path_len(const iot_show *s, int32_t k)
{
    return k >= 0 && s->paths.off[k + 1] > s->paths.off[k];
}

/* "<path>" after a descriptor or an address, strace -y's way, if the row has a path */
static inline int put_named(iot_out *o, const iot_show *s, uint16_t nl, int32_t k)
{
    if ((nl & N_PATH) || !path_len(s, k))
        return 0;
    return put(o, "<", 1) || put_text(o, &s->paths, k) || put(o, ">", 1);
}

static inline int has_kind(const uint8_t *kinds, int64_t nk, int kind)
{
    return kinds && memchr(kinds, kind, (size_t)nk) != NULL;
}

/* One row's line (`e`: its end read's row, or -1). */
static int show_line(iot_out *o, const iot_show *s, const iot_cols *c, int64_t i, int64_t e)
{
    uint16_t nl = c->nulls[i];
    uint8_t big = c->big[i];
    int64_t fn = c->fn[i];
    int has_kinds = fn < s->kinds.n;
    const uint8_t *kinds = has_kinds ? (const uint8_t *)s->kinds.blob + s->kinds.off[fn] : NULL;
    int64_t nk = has_kinds ? s->kinds.off[fn + 1] - s->kinds.off[fn] : 0;
    int addr = has_kind(kinds, nk, K_ADDR), stream = has_kind(kinds, nk, K_STREAM);
    int newfd = has_kind(kinds, nk, K_NEWFD), entry = has_kind(kinds, nk, K_ENTRY);
    int64_t ret = c->ret[i];
    int ret_pos = (big & BIG_RET) || ret > 0;
    if (put(o, s->prefix, s->prefix_len) || put(o, " tid ", 5) || put_dec(o, c->tid[i], 0) ||
        put(o, "] +", 3) || put_secs(o, c->t_start[i] - s->origin) || put(o, " ", 1))
        return -1;
    if (fn < s->fnames.n) {
        if (put_text(o, &s->fnames, fn))
            return -1;
    } else if (put(o, "fn", 2) || put_dec(o, fn, 0)) {
        return -1;
    }
    if (put(o, "(", 1))
        return -1;
    int nargs = 0, data = s->data_ix ? s->data_ix[i] : -1;
#define SEP() (nargs++ ? put(o, ", ", 2) : 0)
#define DATA() (data >= 0 && nargs == 1 ? (put(o, ", ", 2) || put_text(o, &s->texts, data) ||    \
                                           (data = -1, nargs++, 0))                             \
                                        : 0)
    for (int64_t k = 0; k < nk; k++) {
        int aux_int = !(nl & N_AUX) && !(nl & N_AUXPAIR);
        int r = 0;
        switch (kinds[k]) {
        case K_FD:
            if (nl & N_FD)
                continue;
            r = SEP() || put_dec(o, c->fd[i], 0) || put_named(o, s, nl, s->path_ix[i]);
            break;
        case K_PATH:
            if (nl & N_PATH)
                continue;
            r = SEP() || put_path(o, s, s->path_ix[i]);
            break;
        case K_PATH2:
            if (!aux_int)
                continue;
            r = SEP() || put_path(o, s, s->aux_ix[i]);
            break;
        case K_FD2:
            if (!aux_int)
                continue;
            r = SEP() || put_dec(o, c->aux[i], big & BIG_AUX);
            break;
        case K_END2:
            if (e < 0 || (c->nulls[e] & N_FD))
                continue;
            r = SEP() || put(o, "from ", 5) || put_dec(o, c->fd[e], 0) ||
                put_named(o, s, c->nulls[e], s->path_ix[e]);
            if (!r && !(c->nulls[e] & N_OFF))
                r = put(o, "@", 1) || put_dec(o, c->offset[e], c->big[e] & BIG_OFF);
            break;
        case K_WHENCE:
            if (!aux_int)
                continue;
            if (c->aux[i] >= 0 && c->aux[i] < s->whence.n && !(big & BIG_AUX))
                r = SEP() || put_text(o, &s->whence, c->aux[i]);
            else
                r = SEP() || put_dec(o, c->aux[i], big & BIG_AUX);
            break;
        case K_REQ:
            if (nl & IOT_NULL_req)
                continue;
            r = SEP() || put_dec(o, c->req[i], big & BIG_REQ);
            break;
        case K_OFF:
            if (nl & N_OFF)
                continue;
            r = SEP() || put_dec(o, c->offset[i], big & BIG_OFF);
            break;
        case K_HEXOFF:
            if (nl & N_OFF)
                continue;
            r = SEP() || (c->offset[i] ? put_hex(o, (uint64_t)c->offset[i]) : put(o, "0", 1));
            break;
        case K_FLAGS:
            if (nl & IOT_NULL_flags)
                continue;
            r = SEP() || (s->flags_ix[i] >= 0 ? put_text(o, &s->texts, s->flags_ix[i])
                                               : put_dec(o, c->flags[i], 0));
            break;
        case K_MODE:
            if (nl & IOT_NULL_mode)
                continue;
            r = SEP() || (s->mode_ix[i] >= 0 ? put_text(o, &s->texts, s->mode_ix[i])
                                              : put_dec(o, c->mode[i], big & BIG_MODE));
            break;
        case K_HINT:
            if (!aux_int)
                continue;
            r = SEP() || (c->aux[i] ? put_hex(o, (uint64_t)c->aux[i]) : put(o, "NULL", 4));
            break;
        case K_MAPPED:
            if (!aux_int)
                continue;
            r = SEP() || (c->aux[i] ? put_hex(o, (uint64_t)c->aux[i]) : put(o, "NULL", 4)) ||
                put_named(o, s, nl, s->path_ix[i]);
            break;
        case K_AUX:
            if (!aux_int)
                continue;
            if (s->aux_text_ix && s->aux_text_ix[i] >= 0)
                r = SEP() || put_text(o, &s->texts, s->aux_text_ix[i]);
            else
                r = SEP() || put_dec(o, c->aux[i], big & BIG_AUX);
            break;
        case K_FDS: /* a pipe's two ends as the int[2] it filled, as strace prints it */
            if ((nl & N_FD) || !aux_int)
                continue;
            r = SEP() || put(o, "[", 1) || put_dec(o, c->fd[i], 0) || put(o, ", ", 2) ||
                put_dec(o, c->aux[i], big & BIG_AUX) || put(o, "]", 1);
            break;
        default:
            continue;
        }
        if (r || DATA())
            return -1;
    }
    if (data >= 0 && put_text(o, &s->texts, data)) /* no argument: the data alone */
        return -1;
#undef SEP
#undef DATA
    if (put(o, ") = ", 4))
        return -1;
    int64_t err = c->err[i];
    if (err) {
        if ((stream || entry ? put(o, "NULL", 4) : put_dec(o, ret, big & BIG_RET)) ||
            put(o, " ", 1) || put_text(o, &s->errors, err))
            return -1;
    } else if (s->ret_ix && s->ret_ix[i] >= 0) {
        if (put_text(o, &s->texts, s->ret_ix[i]))
            return -1;
    } else if (stream) { /* the stream's descriptor, as strace -y shows an open's: 3</path> */
        if (nl & N_FD ? put(o, "?", 1)
                      : put_dec(o, c->fd[i], 0) || put_named(o, s, nl, s->path_ix[i]))
            return -1;
    } else if (entry) { /* a struct dirent * (not kept), NULL at the end */
        if (ret ? put(o, "{...}", 5) : put(o, "NULL", 4))
            return -1;
    } else if (newfd && ret >= 0 && !(big & BIG_RET)) { /* as strace -y: 3</path> */
        if (put_dec(o, ret, 0) || put_named(o, s, nl, s->path_ix[i]))
            return -1;
    } else if (addr && ret_pos ? put_hex(o, (uint64_t)ret) : put_dec(o, ret, big & BIG_RET)) {
        return -1;
    }
    if (put(o, " <", 2) || put_secs(o, c->dur[i]) || put(o, ">\n", 2))
        return -1;
    int32_t st = s->stack_ix ? s->stack_ix[i] : -1;
    if (st >= 0 && put_text(o, &s->texts, st))
        return -1;
    return 0;
}

/* The lines of rows [from, s->n) into buf (`cap` bytes), whole lines only: for each line its
 * row's key (t_start - origin) in keys and its end in buf in ends.  Returns the row to go on
 * from (s->n: all done), *used the bytes written, *lines the lines; -1 on an errno the tables
 * do not hold. */
int64_t iot_show_lines(const iot_show *s, const iot_cols *c, int64_t from, char *buf, int64_t cap,
                       int64_t *keys, int64_t *ends, int64_t *used, int64_t *lines)
{
    iot_out o = {buf, buf + cap};
    int64_t i = from, n = 0;
    while (i < s->n) {
        int64_t e = i + 1 < s->n && (c->nulls[i + 1] & N_END2) ? i + 1 : -1;
        int64_t next = e >= 0 ? e + 1 : i + 1;
        if (c->nulls[i] & N_END2 || (s->keep && !s->keep[i])) {
            i = next;
            continue;
        }
        char *at = o.p;
        if (c->err[i] >= s->errors.n)
            return -1;
        if (show_line(&o, s, c, i, e)) {
            o.p = at; /* no room: the caller flushes and goes on from here */
            break;
        }
        keys[n] = c->t_start[i] - s->origin;
        ends[n++] = o.p - buf;
        i = next;
    }
    *used = o.p - buf;
    *lines = n;
    return i;
}

/* `iotrace show`'s time sort in bounded memory (src/iotrace/spill.py): texts in blocks of
 * (keys, ends, blob), text k of a block being blob[ends[k - 1], ends[k]) (from 0 for the first).
 *
 * iot_gather: the texts of `order` (n entries, each text k of batch which[k] at
 * [starts[k], ends[k]) of blobs[which[k]]) one after the other into out (room enough: the caller
 * sums their lengths); out_ends[i] the end of the i-th. */
void iot_gather(int64_t n, const int64_t *order, const int32_t *which, const int64_t *starts,
                const int64_t *ends, const char *const *blobs, char *out, int64_t *out_ends)
{
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t k = order[i], len = ends[k] - starts[k];
        memcpy(out + at, blobs[which[k]] + starts[k], (size_t)len);
        at += len;
        out_ends[i] = at;
    }
}

/* One step of merging k runs by key, ties to the lower run: run r's current block is
 * keys[r], ends[r], blobs[r] of len[r] texts, read up to pos[r] (advanced here); done[r]: it has
 * no block after this one.  Texts go to out (cap bytes, at most max_n texts), with their keys and
 * ends, until out is full (returns -1), a run's block is used up while it has more (returns that
 * run: the caller reads its next block) or every run is (returns -2).  *n: texts written. */
int64_t iot_merge_step(int64_t k, const int64_t *const *keys, const int64_t *const *ends,
                       const char *const *blobs, int64_t *pos, const int64_t *len,
                       const uint8_t *done, char *out, int64_t cap, int64_t max_n,
                       int64_t *out_keys, int64_t *out_ends, int64_t *n)
{
    int64_t at = *n ? out_ends[*n - 1] : 0, m = *n;
    int64_t ret = -2;
    for (;;) {
        int64_t best = -1;
        for (int64_t r = 0; r < k; r++) {
            if (pos[r] >= len[r]) {
                if (!done[r]) {
                    best = -3 - r;
                    break;
                }
                continue;
            }
            if (best < 0 || keys[r][pos[r]] < keys[best][pos[best]])
                best = r;
        }
        if (best < -2) {
            ret = -3 - best;
            break;
        }
        if (best < 0)
            break; /* every run used up */
        int64_t p = pos[best];
        int64_t s = p ? ends[best][p - 1] : 0, e = ends[best][p];
        if (m >= max_n || cap - at < e - s) {
            ret = -1;
            break;
        }
        memcpy(out + at, blobs[best] + s, (size_t)(e - s));
        at += e - s;
        out_keys[m] = keys[best][p];
        out_ends[m++] = at;
        pos[best] = p + 1;
    }
    *n = m;
    return ret;
}
