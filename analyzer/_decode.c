/* The analyzer's log decoder: walks the chunks of one iotrace log (docs/format.md) and writes
 * EVENT records straight into column arrays; every other record is handed back as (offset,
 * length) for Python to unpack (they are few: strings, stacks, modules, exit).
 *
 * Plain C, no Python headers: loaded with cffi in ABI mode (analyzer/decode.py compiles it once
 * per machine into a cache directory).  Every read is bounds-checked: a torn tail stops the scan
 * (`truncated`), anything malformed is reported (`error`), nothing is trusted. */
#include <stdint.h>
#include <string.h>

typedef struct {
    int32_t *tid;
    int16_t *fn;
    int64_t *t_start;
    int64_t *dur;
    int32_t *fd;
    int32_t *path;
    int64_t *req;
    int64_t *ret;
    int32_t *err;
    int64_t *offset;
    int32_t *flags;
    int32_t *stack;
    uint16_t *nulls; /* bit i set: field NULL_BITS[i] was nil (see decode.py) */
    /* not kept: mode, aux (per-function meanings; `iotrace show` prints them) */
} iot_cols;

typedef struct {
    int64_t n_events;
    int64_t n_other;
    int64_t truncated; /* the file ends inside a chunk: read up to its last whole record */
    int64_t error_off; /* byte offset of the first malformed thing, or -1 */
    int32_t error;     /* 0 ok, 1 bad chunk marker, 2 chunk length too long, 3 bad record,
                          4 output arrays too small */
} iot_result;

enum { N_FD = 1, N_PATH = 2, N_REQ = 4, N_OFF = 8, N_FLAGS = 16, N_MODE = 32, N_STACK = 64,
       N_AUX = 128, N_AUXPAIR = 256 };

enum { OK = 0, SHORT = 1, BAD = 2 }; /* SHORT: ran out of bytes; BAD: malformed */

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

/* The rest of an EVENT record (after its array header and type). */
static int event(const uint8_t **pp, const uint8_t *end, uint32_t nfields, iot_cols *c,
                 int64_t i, int32_t tid)
{
    /* fn t_start dur fd path req ret errno offset flags mode stack, then aux */
    static const uint16_t bit[12] = {0, 0, 0, N_FD, N_PATH, N_REQ, 0, 0, N_OFF, N_FLAGS, N_MODE,
                                     N_STACK};
    const uint8_t *p = *pp;
    int64_t v[13];
    int nil, r;
    uint16_t nulls = 0;
    if (nfields < 13) /* 14 fields with the record type */
        return BAD;
    for (int k = 0; k < 12; k++) {
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
        v[12] = 0;
        nulls |= N_AUX | N_AUXPAIR;
    } else {
        r = get_int(&p, end, &v[12], &nil);
        if (nil)
            nulls |= N_AUX;
    }
    if (r != OK)
        return r;
    for (uint32_t k = 13; k < nfields; k++) { /* fields a later format version appends */
        r = skip(&p, end, 0);
        if (r != OK)
            return r;
    }
    if (c) {
        c->tid[i] = tid;
        c->fn[i] = (int16_t)(v[0] < 0 || v[0] > 32767 ? -1 : v[0]);
        c->t_start[i] = v[1];
        c->dur[i] = v[2];
        c->fd[i] = (int32_t)v[3];
        c->path[i] = (int32_t)v[4];
        c->req[i] = v[5];
        c->ret[i] = v[6];
        c->err[i] = (int32_t)v[7];
        c->offset[i] = v[8];
        c->flags[i] = (int32_t)v[9];
        c->stack[i] = (int32_t)v[11];
        c->nulls[i] = nulls;
    }
    *pp = p;
    return OK;
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
        int32_t tid = 0;
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
                if (kind == 0) {
                    if (cols && res->n_events >= cap) {
                        res->error = 4;
                        return -1;
                    }
                    r = event(&p, end, nf - 1, cols, res->n_events, tid);
                    if (r == OK)
                        res->n_events++;
                } else if (kind == 3 && nf >= 2) {
                    int64_t t;
                    r = get_int(&p, end, &t, &nil);
                    tid = (int32_t)t;
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
