/* `run --no-stracer`'s closing line: what the trace explains of the kernel's counters of the
 * process tree `iotrace run` started, as kio.py's run_job reads it for full tracing: the KIO and
 * MODULE records of the first and the last chunk of each shim log that holds any
 * (tracefile.kio_records), explained by _kio.c, the one computation kio.py uses too. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "../src/iotrace/_kio.h"
#include "iot_format.h"
#include "launch.h"

/* ---- a minimal msgpack reader over [p, e) ---- */
struct mp {
    const unsigned char *p, *e;
    int bad;
    int hard;    /* bad, and not from running out of bytes (msgpack's ValueError, StackError) */
    int depth;   /* of skip's nesting: over msgpack's 1024 is bad (its StackError) */
    int64_t max; /* a length or count over this is bad (the Unpacker's max_buffer_size); 0: none */
};

static int too_long(struct mp *m, int64_t v, int64_t max)
{
    if (m->max && v > max) {
        m->bad = m->hard = 1;
        return 1;
    }
    return 0;
}

static uint64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static int need(struct mp *m, size_t n)
{
    if (m->bad || (size_t)(m->e - m->p) < n) {
        m->bad = 1;
        return 0;
    }
    return 1;
}

/* kinds: 'i' int (v), 's' str/bin (s, v = length), 'a' array (v), 'm' map (v), 'x' other */
static int next(struct mp *m, int64_t *v, const char **s)
{
    if (!need(m, 1))
        return 0;
    unsigned c = *m->p++;
    *v = 0;
    if (c <= 0x7f) { *v = c; return 'i'; }
    if (c >= 0xe0) { *v = (int8_t)c; return 'i'; }
    if ((c & 0xf0) == 0x90) { *v = c & 0x0f; return 'a'; }
    if ((c & 0xf0) == 0x80) { *v = c & 0x0f; return 'm'; }
    if ((c & 0xe0) == 0xa0) {
        *v = c & 0x1f;
        goto str;
    }
    int n;
    switch (c) {
    case 0xc0: case 0xc2: case 0xc3: return 'x';
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        n = 1 << (c - 0xcc);
        if (!need(m, (size_t)n)) return 0;
        *v = (int64_t)be(m->p, n); m->p += n; return 'i';
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        n = 1 << (c - 0xd0);
        if (!need(m, (size_t)n)) return 0;
        uint64_t u = be(m->p, n);
        m->p += n;
        int sh = 64 - 8 * n;
        *v = sh ? (int64_t)(u << sh) >> sh : (int64_t)u;
        return 'i';
    }
    case 0xca: if (!need(m, 4))
            return 0;
        m->p += 4; return 'x';
    case 0xcb: if (!need(m, 8))
            return 0;
        m->p += 8; return 'x';
    case 0xd9: case 0xc4:
        if (!need(m, 1))
            return 0;
        *v = (int64_t)be(m->p, 1); m->p += 1; goto str;
    case 0xda: case 0xc5:
        if (!need(m, 2))
            return 0;
        *v = (int64_t)be(m->p, 2); m->p += 2; goto str;
    case 0xdb: case 0xc6:
        if (!need(m, 4))
            return 0;
        *v = (int64_t)be(m->p, 4); m->p += 4; goto str;
    case 0xdc: if (!need(m, 2))
            return 0;
        *v = (int64_t)be(m->p, 2); m->p += 2; return 'a';
    case 0xdd: if (!need(m, 4))
            return 0;
        *v = (int64_t)be(m->p, 4); m->p += 4; return 'a';
    case 0xde: if (!need(m, 2))
            return 0;
        *v = (int64_t)be(m->p, 2); m->p += 2; return 'm';
    case 0xdf: if (!need(m, 4))
            return 0;
        *v = (int64_t)be(m->p, 4); m->p += 4; return 'm';
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
        n = (1 << (c - 0xd4)) + 1;
        if (!need(m, (size_t)n))
            return 0;
        m->p += n;
        return 'x';
    case 0xc7: case 0xc8: case 0xc9: {
        n = 1 << (c - 0xc7);
        if (!need(m, (size_t)n)) return 0;
        uint64_t len = be(m->p, n) + 1;
        m->p += n;
        if (too_long(m, (int64_t)len - 1, m->max))
            return 0;
        if (!need(m, len)) return 0;
        m->p += len;
        return 'x';
    }
    default: m->bad = 1; return 0;
    }
str:
    if (too_long(m, *v, m->max) || !need(m, (size_t)*v))
        return 0;
    *s = (const char *)m->p;
    m->p += *v;
    return 's';
}

static void skip(struct mp *m)
{
    int64_t v;
    const char *s;
    int k = next(m, &v, &s);
    if ((k == 'a' || k == 'm') && (too_long(m, v, k == 'm' ? m->max / 2 : m->max) ||
                                   m->depth >= 1024)) {
        m->bad = m->hard = 1;
        return;
    }
    m->depth++;
    if (k == 'a')
        for (int64_t i = 0; i < v && !m->bad; i++)
            skip(m);
    else if (k == 'm')
        for (int64_t i = 0; i < 2 * v && !m->bad; i++)
            skip(m);
    m->depth--;
}

/* tracefile.MAX_UNCOMMITTED: after the committed records of an unsealed chunk, at most one
 * record written but not committed (a kill between the two) */
#define MAX_UNCOMMITTED (2 * 4096 + 64)

/* tracefile._unsealed_tail_ok: the bytes after an unsealed chunk's committed records are at
 * most one record (whole, or cut short by a kill), then zeros; anything else is damage (a
 * length that lost a bit would leave whole records after it) */
static int unsealed_tail_ok(const unsigned char *t, size_t n)
{
    size_t nz = n;
    while (nz && !t[nz - 1])
        nz--;
    if (nz == 0)
        return 1;
    if (nz > MAX_UNCOMMITTED)
        return 0;
    struct mp m = {t, t + n, 0, 0, 0, (int64_t)n + 1};
    skip(&m);
    if (!m.bad)
        return (size_t)(m.p - t) >= nz;
    if (m.hard)
        return 0;
    /* cut short: the start of one record at most MAX_UNCOMMITTED longer (tracefile.torn_tail) */
    static unsigned char padded[MAX_UNCOMMITTED * 2];
    memcpy(padded, t, nz);
    memset(padded + nz, 0, MAX_UNCOMMITTED);
    m = (struct mp){padded, padded + nz + MAX_UNCOMMITTED, 0, 0, 0, nz + MAX_UNCOMMITTED + 1};
    skip(&m);
    return !m.bad;
}

/* an array of n ints into out; 0 if it is not one */
static int ints(struct mp *m, int64_t *out, int n)
{
    int64_t v;
    const char *s;
    if (next(m, &v, &s) != 'a' || v != n)
        return 0;
    for (int i = 0; i < n; i++)
        if (next(m, &out[i], &s) != 'i')
            return 0;
    return 1;
}

/* ---- readings ---- */
/* One log of the host: its header's ids and start, its readings. */
struct log {
    int pid, ppid, has_ppid, liburing, forked;
    int64_t mono; /* its header's clock.mono: when the log began */
    char *exe;
    struct iot_kio_reading *r;
    int n;
};

static struct log *logs;
static int nlogs, caplogs;

/* One process: a pid from one start (iotrace/incarnation.py: a log a fork began is another
 * process of its pid, a log that is not the same one's next image after an exec). */
struct proc {
    int pid, ppid, has_ppid, liburing;
    int64_t start;
    char *exe; /* its first log's program */
    struct iot_kio_reading *r;
    int n;
    struct iot_kio_process x;
};

static struct proc *procs;
static int nprocs;

static struct log *new_log(void)
{
    if (nlogs == caplogs) {
        caplogs = caplogs ? 2 * caplogs : 16;
        logs = realloc(logs, (size_t)caplogs * sizeof *logs);
    }
    memset(&logs[nlogs], 0, sizeof *logs);
    return &logs[nlogs++];
}

static int by_pid_start(const void *a, const void *b)
{
    const struct log *x = *(struct log *const *)a, *y = *(struct log *const *)b;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    if (x->mono != y->mono)
        return x->mono < y->mono ? -1 : 1;
    return x->forked > y->forked ? -1 : x->forked < y->forked; /* incarnation.py's order */
}

/* The processes of the logs, sorted by (pid, start). */
static void make_procs(void)
{
    struct log **order = calloc((size_t)nlogs + 1, sizeof *order);
    for (int i = 0; i < nlogs; i++)
        order[i] = &logs[i];
    qsort(order, (size_t)nlogs, sizeof *order, by_pid_start);
    procs = calloc((size_t)nlogs + 1, sizeof *procs);
    for (int i = 0; i < nlogs; i++) {
        struct log *l = order[i];
        if (!nprocs || procs[nprocs - 1].pid != l->pid || l->forked) {
            struct proc *p = &procs[nprocs++];
            p->pid = l->pid, p->start = l->mono, p->exe = l->exe;
        }
        struct proc *p = &procs[nprocs - 1];
        p->liburing |= l->liburing;
        if (l->has_ppid && !p->has_ppid)
            p->ppid = l->ppid, p->has_ppid = 1;
        if (l->n) {
            p->r = realloc(p->r, (size_t)(p->n + l->n) * sizeof *p->r);
            memcpy(p->r + p->n, l->r, (size_t)l->n * sizeof *p->r);
            p->n += l->n;
        }
    }
    free(order);
}

/* The process of pid alive at t (the latest begun by then, else its first); -1: none. */
static int proc_at(int pid, int64_t t)
{
    int lo = 0, hi = nprocs, got = -1;
    while (lo < hi) { /* the first of pid */
        int mid = (lo + hi) / 2;
        if (procs[mid].pid < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (int i = lo; i < nprocs && procs[i].pid == pid; i++)
        if (got < 0 || procs[i].start <= t)
            got = i;
    return got;
}

static int kio_record(struct mp *m, int64_t len, struct iot_kio_reading *r)
{
    int64_t v, pend[2];
    const char *s;
    /* the log's when (format.KIO_WHEN), as _kio.c's code (format.KIO_READING_WHEN) */
    static const int64_t at[] = IOT_KIO_WHEN_AT;
    if (len < 6 || next(m, &v, &s) != 'i' || v < 0 || v >= (int64_t)(sizeof at / sizeof *at))
        return 0;
    memset(r, 0, sizeof *r);
    r->when = at[v];
    r->euid = -1;
    if (next(m, &r->t, &s) != 'i')
        return 0;
    struct mp counters = *m; /* [] for a reading the shim could not take (its errno below) */
    int64_t nc;
    if (next(&counters, &nc, &s) == 'a' && nc == 0)
        *m = counters;
    else if (!ints(m, r->counters, 7))
        return 0;
    if (!ints(m, r->own, 4) || !ints(m, pend, 2) || !ints(m, r->sums, 6))
        return 0;
    r->pending = pend[0], r->streams = pend[1];
    if (len > 6 && !ints(m, r->uring, 3))
        return 0;
    int64_t ids[2], nxt;
    if (len > 7) { /* [errno, euid], or nil / [] */
        struct mp x = *m;
        if (ints(&x, ids, 2))
            r->lost = ids[0], r->euid = ids[1], *m = x;
        else
            skip(m);
    }
    if (len > 8) { /* [next] */
        struct mp x = *m;
        if (ints(&x, &nxt, 1))
            r->next = nxt >= 1 && nxt <= 2 ? nxt : 0, *m = x;
        else
            skip(m);
    }
    if (nc == 0 && !r->lost)
        return 0; /* no counters and no reason: malformed */
    return !m->bad;
}

static regex_t liburing_re;

/* the KIO records of chunk slot at off (and its modules' liburing); -1: none readable */
/* The end of the file's last data at or after `first`: a shim sizes its log ahead, the room
 * not written yet a hole (preload/writer.c), and a log not trimmed at its process's end (killed,
 * still running, sandboxed) keeps it.  `size` where the file system cannot tell.  As
 * tracefile.py's _data_end. */
static size_t data_end(int fd, size_t first, size_t size)
{
    size_t hi = size, step = 1 << 18;
    while (hi > first) { /* back from the end by doubling steps, to the last region with data */
        size_t pos = hi - first > step ? hi - step : first;
        off_t data = lseek(fd, (off_t)pos, SEEK_DATA);
        if (data < 0) {
            if (errno != ENXIO)
                return size;
            hi = pos;
            step *= 2;
            continue;
        }
        off_t end = data;
        while ((size_t)end < size) { /* forward through its extents to its last hole */
            end = lseek(fd, data, SEEK_HOLE);
            if (end < 0)
                return size;
            if ((data = lseek(fd, end, SEEK_DATA)) < 0)
                break;
        }
        return (size_t)end;
    }
    return first;
}

static int chunk_records(int fd, unsigned char *buf, size_t size, size_t off, size_t chunk,
                         struct iot_kio_reading *out, int max, int *liburing)
{
    /* pread, not a mapping: another rank's shim may truncate its log meanwhile (SIGBUS) */
    ssize_t got = off < size ? pread(fd, buf, chunk, (off_t)off) : -1;
    if (got < 5 || buf[0] != 0xc6)
        return 0;
    size_t len = (size_t)be(buf + 1, 4);
    if (len > chunk - 5)
        return 0;
    size_t end = 5 + len;
    if ((size_t)got == chunk) { /* whole: sealed and checked, or its tail checked */
        int sealed = chunk - end >= 14 && buf[end] == 0xc9 && buf[end + 5] == 126 &&
                     be(buf + end + 1, 4) == chunk - end - 6;
        if (sealed ? XXH3_64bits(buf, end) != be(buf + end + 6, 8)
                   : !unsealed_tail_ok(buf + end, chunk - end))
            return -1; /* damage (tracefile.chunks) */
    }
    struct mp m = {buf + 5, buf + (5 + len < (size_t)got ? 5 + len : (size_t)got), 0, 0, 0,
                   (int64_t)chunk};
    int n = 0;
    while (m.p < m.e && !m.bad) {
        struct mp rec = m; /* the record; then on after it, however much was read of it */
        skip(&m);
        int64_t alen, kind, v;
        const char *s;
        if (m.bad || next(&rec, &alen, &s) != 'a' || alen < 1 || next(&rec, &kind, &s) != 'i')
            continue;
        if (kind == IOT_REC_KIO && n < max) {
            if (kio_record(&rec, alen - 1, &out[n]))
                n++;
        } else if (kind == IOT_REC_SECCOMP && alen >= 3) {
            /* [10, t, dropped, untraced, nnp]: the counts go with the reading before it */
            int64_t t, d[2] = {0, 0}, nnp = 0;
            int ok = next(&rec, &t, &s) == 'i' && next(&rec, &d[0], &s) == 'i' &&
                     (alen < 4 || next(&rec, &d[1], &s) == 'i') &&
                     (alen < 5 || next(&rec, &nnp, &s) == 'i');
            for (int i = 0; ok && i < n; i++)
                if (out[i].when == IOT_KIO_AT_SECCOMP)
                    out[i].dropped[0] = d[0], out[i].dropped[1] = d[1], out[i].nnp = nnp != 0;
        } else if (kind == IOT_REC_MODULE && alen > 4) { /* its path */
            for (int i = 1; i < 4; i++)
                skip(&rec);
            if (next(&rec, &v, &s) == 's') {
                char path[4096];
                snprintf(path, sizeof path, "%.*s", (int)v, s);
                if (regexec(&liburing_re, path, 0, NULL, 0) == 0)
                    *liburing = 1;
            }
        }
    }
    return m.bad ? -1 : n;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void read_log(int dfd, const char *name, int image, const char *host, int root)
{
    int fd = openat(dfd, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
        close(fd);
        return;
    }
    size_t size = (size_t)st.st_size, hsize = 1 << 16;
    unsigned char *d = NULL, *cbuf = NULL;
    int64_t nmap, v, chunk = 32768, pid = -1, ppid = -1;
    const char *s;
    char lhost[256] = "", exe[4096] = "";
    int fmt_ok = 0, has_pid = 0, has_ppid = 0, forked = 0;
    int64_t mono = 0;
    struct mp m;
again: /* 64 KiB first, more only for a longer header (up to tracefile.MAX_HEADER) */
    free(d);
    d = malloc(hsize);
    ssize_t hgot = pread(fd, d, hsize, 0);
    m = (struct mp){d, d + (hgot > 0 ? hgot : 0), 0, 0, 0, 0};
    fmt_ok = has_pid = has_ppid = forked = 0;
    if (next(&m, &nmap, &s) != 'm')
        goto out;
    for (int64_t i = 0; i < nmap && !m.bad; i++) {
        if (next(&m, &v, &s) != 's') {
            skip(&m);
            continue;
        }
        char key[32];
        snprintf(key, sizeof key, "%.*s", (int)(v < 31 ? v : 31), s);
        int64_t x;
        const char *xs;
        if (!strcmp(key, "forked") && m.p < m.e)
            forked = *m.p == 0xc3;
        int k = next(&m, &x, &xs);
        if (k == 'm' && !strcmp(key, "clock")) { /* {"mono": t, "real": t} */
            for (int64_t j = 0; j < x && !m.bad; j++) {
                int64_t kl, t;
                const char *ks;
                struct mp name = m;
                int mk = next(&name, &kl, &ks) == 's' && kl == 4 && !memcmp(ks, "mono", 4);
                skip(&m);
                struct mp val = m;
                if (mk && next(&val, &t, &ks) == 'i')
                    mono = t;
                skip(&m);
            }
            continue;
        }
        if (k == 'a' || k == 'm') {
            for (int64_t j = 0; j < (k == 'm' ? 2 * x : x); j++)
                skip(&m);
            continue;
        }
        if (!strcmp(key, "format"))
            fmt_ok = k == 's' && x == 7 && !memcmp(xs, "iotrace", 7);
        else if (!strcmp(key, "host") && k == 's')
            snprintf(lhost, sizeof lhost, "%.*s", (int)x, xs);
        else if (!strcmp(key, "exe") && k == 's')
            snprintf(exe, sizeof exe, "%.*s", (int)x, xs);
        else if (!strcmp(key, "pid") && k == 'i')
            pid = x, has_pid = 1;
        else if (!strcmp(key, "ppid") && k == 'i')
            ppid = x, has_ppid = 1;
        else if (!strcmp(key, "chunk_size") && k == 'i')
            chunk = x;
    }
    if (m.bad && hsize < size && hsize < 1 << 24) {
        hsize *= 8;
        goto again;
    }
    if (m.bad || !fmt_ok || chunk < 64 || chunk > 1 << 26)
        goto out;
    size_t end = (size_t)(m.p - d);
    size_t first = (end + 14 + (size_t)chunk - 1) / (size_t)chunk * (size_t)chunk;
    if (first > size)
        goto out;
    size_t nchunks = (data_end(fd, first, size) - first + (size_t)chunk - 1) / (size_t)chunk;
    struct iot_kio_reading head[16], tail[16];
    int nh = 0, nt = 0, lib = 0;
    cbuf = malloc((size_t)chunk);
    for (size_t k = 0; k < nchunks && k < 256 && nh <= 0; k++)
        nh = chunk_records(fd, cbuf, size, first + k * (size_t)chunk, (size_t)chunk, head, 16,
                           &lib);
    for (size_t k = nchunks; k-- > 0 && nchunks - k <= 256 && nt <= 0;)
        nt = chunk_records(fd, cbuf, size, first + k * (size_t)chunk, (size_t)chunk, tail, 16,
                           &lib);
    if (!has_pid || strcmp(lhost, host))
        goto out;
    struct log *p = new_log();
    p->pid = (int)pid, p->mono = mono, p->forked = forked, p->exe = strdup(exe);
    p->liburing = lib || iot_elf_names_liburing(exe);
    if (has_ppid && pid != root)
        p->ppid = (int)ppid, p->has_ppid = 1;
    p->r = malloc(32 * sizeof *p->r);
    /* head + tail, one chunk may be both: by (when, t) */
    struct iot_kio_reading all[32];
    int n = 0;
    for (int i = 0; i < nh + nt; i++) {
        struct iot_kio_reading *r = i < nh ? &head[i] : &tail[i - nh];
        int dup = 0;
        for (int j = 0; j < n && !dup; j++)
            dup = all[j].when == r->when && all[j].t == r->t;
        if (!dup)
            all[n++] = *r;
    }
    for (int i = 0; i < n; i++) {
        all[i].image = image;
        p->r[p->n++] = all[i];
    }
out:
    free(d);
    free(cbuf);
    close(fd);
}

void iot_end_line(const char *dirpath, const char *host, int root, char *out, size_t cap)
{
    regcomp(&liburing_re, "/liburing\\.so[.0-9]*$", REG_EXTENDED | REG_NOSUB);
    int dfd = open(dirpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
    char **names = NULL;
    size_t nn = 0, cn = 0, hl = strlen(host);
    struct dirent *e;
    while (dir && (e = readdir(dir))) {
        size_t l = strlen(e->d_name);
        if (l < 4 || strcmp(e->d_name + l - 4, ".iot") || strncmp(e->d_name, host, hl) ||
            e->d_name[hl] != '.')
            continue;
        if (nn == cn)
            names = realloc(names, (cn = cn ? 2 * cn : 16) * sizeof *names);
        names[nn++] = strdup(e->d_name);
    }
    if (nn)
        qsort(names, nn, sizeof *names, cmp_name);
    for (size_t i = 0; i < nn; i++)
        read_log(dfd, names[i], (int)i, host, root);
    if (dir)
        closedir(dir);
    make_procs();
    for (int i = 0; i < nprocs; i++)
        iot_kio_explain(procs[i].r, (size_t)procs[i].n, NULL, 0, NULL, 0, 0, &procs[i].x);
    struct iot_kio_process *xs = calloc((size_t)nprocs + 1, sizeof *xs);
    int64_t *parent = calloc((size_t)nprocs + 1, sizeof *parent);
    for (int i = 0; i < nprocs; i++) {
        xs[i] = procs[i].x;
        int j = procs[i].has_ppid ? proc_at(procs[i].ppid, procs[i].start) : -1;
        parent[i] = j >= 0 && procs[j].n ? j : -1;
    }
    int top = proc_at(root, INT64_MIN);
    iot_kio_link(xs, (size_t)nprocs, parent);
    struct iot_kio_job job = {0};
    for (int i = 0; i < nprocs; i++) {
        if (!procs[i].n) /* kio.run_job: the processes with readings */
            continue;
        int q = i, hops = 0; /* in the tree of this run? */
        while (q != top && procs[q].has_ppid && hops++ < nprocs) {
            int up = proc_at(procs[q].ppid, procs[q].start);
            if (up < 0)
                break;
            q = up;
        }
        if (q != top)
            continue;
        if (procs[i].liburing)
            xs[i].uring = 1; /* "liburing" */
        iot_kio_job_add(&job, &xs[i], procs[i].pid, procs[i].exe);
    }
    for (int i = 0; i < nprocs; i++) /* kio.Job.pidns: began a PID namespace of their own */
        job.pidns += procs[i].has_ppid && procs[i].ppid == 0 && procs[i].pid != root;
    iot_kio_job_line(&job, out, cap);
    free(xs);
    free(parent);
}
