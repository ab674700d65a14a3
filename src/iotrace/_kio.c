/* What a trace explains of each process's kernel read/write counters, and the job's line: the
 * one computation (iotrace/kio.py says what each step means and why; _kio.h the interface),
 * used by kio.py through cffi and compiled into the C launcher. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "_kio.h"
#include "iot_format.h" /* the readings' codes and fields: src/iotrace/format.py */

enum {
    START = IOT_KIO_AT_START,
    EXEC = IOT_KIO_AT_EXEC,
    EXIT = IOT_KIO_AT_EXIT,
    UEXIT = IOT_KIO_AT__EXIT,
    END = IOT_KIO_AT_END,
    ATTACH = IOT_KIO_AT_ATTACH,
    SECCOMP = IOT_KIO_AT_SECCOMP
};
/* the widths cffi reads from _kio.h as written are format.py's */
_Static_assert(sizeof((struct iot_kio_reading *)0)->counters == IOT_KIO_N * sizeof(int64_t),
               "_kio.h counters: format.KIO_FIELDS");
_Static_assert(sizeof((struct iot_kio_reading *)0)->own == IOT_KIO_OWN_N * sizeof(int64_t),
               "_kio.h own: format.KIO_OWN_FIELDS");
_Static_assert(sizeof((struct iot_kio_reading *)0)->sums == IOT_KIO_SUMS_N * sizeof(int64_t),
               "_kio.h sums: format.KIO_SUM_FIELDS");
_Static_assert(sizeof((struct iot_kio_reading *)0)->uring == IOT_KIO_URING_N * sizeof(int64_t),
               "_kio.h uring: format.KIO_URING_FIELDS");
enum { EPERM_ = 1, EACCES_ = 13, ENFILE_ = 23, EMFILE_ = 24 };
enum { SHIM, STRACER };

static void add(int64_t *a, const int64_t *b, int sign)
{
    for (int i = 0; i < 4; i++)
        a[i] += sign * b[i];
}

/* the kernel's count of the read of /proc/self/io that returned these values */
static void cost(const struct iot_kio_reading *r, int64_t out[4])
{
    if (r->lost) { /* a reading not taken: its open failed */
        out[0] = out[1] = out[2] = out[3] = 0;
        return;
    }
    static const char *names[IOT_KIO_N] = {IOT_KIO_FIELD_NAMES};
    char text[96];
    int64_t len = 0;
    for (int i = 0; i < IOT_KIO_N; i++)
        len += snprintf(text, sizeof text, "%s: %lld\n", names[i], (long long)r->counters[i]);
    out[0] = len, out[1] = 0, out[2] = 1, out[3] = 0;
}

static const struct iot_kio_reading *sort_base;

static int by_t(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int64_t tx = sort_base[x].t, ty = sort_base[y].t;
    if (tx != ty)
        return tx < ty ? -1 : 1;
    return x < y ? -1 : x > y; /* stable, as Python's sort */
}

int64_t iot_kio_no_end_kind(const struct iot_kio_reading *r)
{
    if (r->lost == EACCES_ || r->lost == EPERM_)
        return 1; /* ids */
    if (r->lost == EMFILE_ || r->lost == ENFILE_)
        return 2; /* fds */
    if (r->lost)
        return 4; /* unread */
    if (r->when == SECCOMP) /* the shim makes no syscall after it (it was not killed) */
        return r->nnp ? 6 : 5; /* nnp : seccomp */
    if (r->when == EXEC && r->next == IOT_KIO_NEXT_SETID)
        return 3; /* setid */
    if (r->when == EXEC && r->next == IOT_KIO_NEXT_UNWRITABLE)
        return 1; /* ids */
    return 0;
}

/* A process without counters at its end whose last reading is its image's start (a shim's):
 * the least its parent's counters got from it at the wait -- that reading and the reading's own
 * read -- and, when its events are known, the image's events after it (a child killed by
 * SIGPIPE under the shim alone: its parent's counters hold all of it) */
static void unended(struct iot_kio_process *p, const struct iot_kio_reading *last,
                    const struct iot_kio_event *shim, size_t nshim, int shim_known)
{
    if (last->source != SHIM || last->when != START || last->lost)
        return;
    int64_t c[4];
    p->has_floor = 1;
    memcpy(p->floor, last->counters, sizeof p->floor);
    cost(last, c);
    add(p->floor, c, 1);
    p->floor_t = last->t;
    p->floor_partial = !shim_known;
    for (size_t k = 0; k < nshim && shim_known; k++) {
        const int64_t *d = shim[k].sums;
        if (shim[k].image != last->image || shim[k].t <= last->t)
            continue;
        int64_t v[4] = {d[0] + d[4], d[1] + d[5], d[2], d[3]};
        add(p->floor, v, 1);
        if (shim[k].t > p->floor_t)
            p->floor_t = shim[k].t;
    }
}

/* stdio's final flush is recorded before the shim's exit reading and written after it, as
 * the streams held it then; it may write less (EPIPE at a pipe whose reader is gone, the
 * thread dead of SIGPIPE in it, a full disk).  Under the stracer its writes are at most what
 * the kernel counted after the reading, less the reading's own read and the stracer's events
 * there (the call a thread died in among them): the record's rest is taken off (it explained
 * 2 bytes and a call more than the kernel counted, `ncdump | head -1`) */
static void cut_flush(struct iot_kio_process *p, const struct iot_kio_reading *end,
                      const struct iot_kio_reading *x, const struct iot_kio_event *st, size_t nst)
{
    if (!x || x->when != EXIT || !x->streams)
        return;
    int64_t after[4] = {0, 0, 0, 0}, c[4];
    for (size_t k = 0; k < nst; k++)
        if (x->t < st[k].t && st[k].t <= end->t)
            add(after, st[k].sums, 1);
    cost(x, c);
    int64_t w = end->counters[1] - x->counters[1] - c[1] - after[1];
    int64_t k = end->counters[3] - x->counters[3] - c[3] - after[3];
    w = w < 0 ? 0 : w > x->pending ? x->pending : w;
    k = k < 0 ? 0 : k > x->streams ? x->streams : k;
    p->stdio[1] -= x->pending - w;
    p->stdio[3] -= x->streams - k;
}

void iot_kio_explain(const struct iot_kio_reading *rs, size_t n, const struct iot_kio_event *st,
                     size_t nst, const struct iot_kio_event *shim, size_t nshim, int shim_known,
                     struct iot_kio_process *p)
{
    memset(p, 0, sizeof *p);
    if (!n)
        return;
    size_t *o = malloc(n * sizeof *o);
    if (!o)
        return;
    for (size_t i = 0; i < n; i++)
        o[i] = i;
    sort_base = rs;
    qsort(o, n, sizeof *o, by_t);
    /* every reading in time order; the readings: those taken (a reading the shim could not
     * take has no counters, but its image's sums and own I/O until then) */
#define R(i) (&rs[o[i]])
#define TAKEN(r) (!(r)->lost)
    const struct iot_kio_reading *end = NULL, *last = R(n - 1), *last_taken = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!TAKEN(R(i)))
            continue;
        last_taken = R(i);
        if (R(i)->source == STRACER && R(i)->when == END)
            end = R(i);
    }
    if (!end && last_taken && (last_taken->when == EXIT || last_taken->when == UEXIT))
        end = last_taken;
    for (size_t i = 0; i < n; i++) {
        if (TAKEN(R(i)) && R(i)->when == SECCOMP) /* a filter seen outweighs a no_new_privs */
            p->sandboxed = R(i)->nnp && p->sandboxed != 1 ? 2 : 1;
        p->dropped[0] += R(i)->dropped[0];
        p->dropped[1] += R(i)->dropped[1];
    }
    if (!end) {
        p->why = iot_kio_no_end_kind(last);
        unended(p, last, shim, nshim, shim_known);
        free(o);
        return;
    }
    int64_t c[4];
    p->end = end->source == STRACER ? 1 : 2;
    memcpy(p->kernel, end->counters, sizeof p->kernel);
    memcpy(p->final, end->counters, sizeof p->final);
    p->end_t = end->t;
    p->storage[0] = end->counters[4], p->storage[1] = end->counters[5];
    if (end->has_threads) {
        memcpy(p->kernel, end->threads, sizeof p->kernel);
        p->alone = 1;
    }
    const struct iot_kio_reading *att = NULL; /* iotrace attach: the trace begins there */
    for (size_t i = 0; i < n; i++)
        if (TAKEN(R(i)) && R(i)->when == ATTACH && R(i)->t <= end->t)
            att = R(i);
    if (att) {
        p->attached = 1;
        if (p->alone && att->has_threads) {
            add(p->kernel, att->threads, -1);
        } else {
            memcpy(p->kernel, end->counters, sizeof p->kernel);
            add(p->kernel, att->counters, -1);
            p->alone = 0;
        }
    }
    if (end->source == SHIM) { /* the reading's own read, and stdio's final flush, after it */
        cost(end, c);
        add(p->final, c, 1);
        if (end->when == EXIT) {
            p->final[1] += end->pending, p->final[3] += end->streams;
            p->final_pending = end->pending;
        }
    }
    for (size_t i = 0; i < nst; i++)
        if (st[i].t <= end->t)
            add(p->events, st[i].sums, 1);
    const struct iot_kio_reading *prev = NULL, *last_start = NULL, *last_shim = NULL;
    for (size_t i = 0; i < n; i++)
        if (TAKEN(R(i)) && R(i)->source == SHIM && R(i)->t <= end->t)
            last_shim = R(i);
    for (size_t i = 0; i < n; i++) { /* where each image began */
        const struct iot_kio_reading *r = R(i);
        if (!TAKEN(r) || r->t > end->t || !(r->source == SHIM || r->when == EXEC))
            continue;
        last_start = r;
        int64_t base[4] = {0, 0, 0, 0}, d[4];
        int known = 1;
        if (prev && prev->source == SHIM && prev->when == EXEC) {
            memcpy(base, prev->counters, sizeof base);
            cost(prev, c);
            add(base, c, 1);
        } else if (prev && prev->source == STRACER && prev->when == EXEC) {
            /* an image without a shim exec'd this one (a static busybox running another
             * program): its I/O since its start is the stracer's events, each one recorded */
            memcpy(base, prev->counters, sizeof base);
            for (size_t k = 0; k < nst; k++)
                if (prev->t < st[k].t && st[k].t <= r->t)
                    add(base, st[k].sums, 1);
        } else if (!prev && r->source == STRACER && r->when == EXEC && !att) {
            /* the process's first image had no shim either (a static program's fork child
             * that exec'd): its I/O since the fork (from zero) is the stracer's events */
            for (size_t k = 0; k < nst; k++)
                if (st[k].t <= r->t)
                    add(base, st[k].sums, 1);
        } else if (prev) {
            known = 0;
            p->exec_unread |= prev->when == SECCOMP && r->source == STRACER;
        }
        if (r->source == STRACER) { /* an image without a shim: before it, the exec's reads */
            if (known) {
                memcpy(d, r->counters, sizeof d);
                add(d, base, -1);
                add(p->before_shim, d, 1);
            }
        } else if (r->when == START) {
            if (known) {
                memcpy(d, r->counters, sizeof d);
                add(d, r->own, -1);
                add(d, base, -1);
                /* the stracer's events before the shim started (glibc's I/O inside a wrapped
                 * call from the preinit array, which passes through) are in its counters and
                 * in `events`: counted once (a stracer exec's base holds them already) */
                int64_t since = prev ? prev->t : INT64_MIN;
                if (!(prev && prev->source == STRACER && prev->when == EXEC))
                    for (size_t k = 0; k < nst; k++)
                        if (since < st[k].t && st[k].t <= r->t)
                            add(d, st[k].sums, -1);
                add(p->before_shim, d, 1);
            }
        } else if (r == end && r->when == EXIT) {
            /* its final flush is recorded before exit()'s reading, written after */
            p->stdio[1] -= r->pending;
            p->stdio[3] -= r->streams;
        }
        prev = r;
    }
    /* the image alive at the stracer's end reading, which read its shim's sums in its memory:
     * one that took no reading at its end (a raw exit_group) is explained by them exactly, but
     * not one whose records were dropped (sandboxed: the sums hold events the trace has not) */
    int64_t alive = -2;
    if (end->has_shim && last_start && last_start->source == SHIM)
        alive = last_start->image;
    for (size_t i = 0; i < n; i++) { /* each image's sums and own I/O up to its last reading */
        const struct iot_kio_reading *r = R(i);
        if (r->source != SHIM || r->t > end->t)
            continue;
        p->shimmed = 1;
        if (r->uring[0] || r->uring[1] || r->uring[2])
            p->uring = 3; /* "held" */
        int later = 0;
        for (size_t j = i + 1; j < n && !later; j++)
            later = R(j)->source == SHIM && R(j)->t <= end->t && R(j)->image == r->image;
        if (later)
            continue;
        /* a sandboxed image's last is the one before its seccomp filter: none after that */
        int opened = r->when == START || r->when == SECCOMP;
        if (r->image == alive && opened && end->has_shim && !r->dropped[0]) {
            add(p->events, end->shim + 4, 1);
            p->stdio[0] += end->shim[8];
            p->stdio[1] += end->shim[9];
            add(p->own, end->shim, 1);
            continue;
        }
        int64_t sums[6];
        memcpy(sums, r->sums, sizeof sums);
        if (opened && r != end) { /* the image ended without a reading */
            if (!shim_known) {
                p->unfinished = 1;
            } else {
                p->tail = 1;
                for (size_t k = 0; k < nshim; k++)
                    if (shim[k].image == r->image && r->t < shim[k].t && shim[k].t <= end->t)
                        for (int m = 0; m < 6; m++)
                            sums[m] += shim[k].sums[m];
            }
        }
        add(p->events, sums, 1);
        p->stdio[0] += sums[4];
        p->stdio[1] += sums[5];
        add(p->own, r->own, 1);
        if (r != end) {
            cost(r, c);
            add(p->own, c, 1);
        }
    }
    if (end->source == STRACER)
        cut_flush(p, end, last_shim, st, nst);
    if (end->source == STRACER) {
        add(p->own, end->own, 1);
        if (last_start && last_start->when == EXEC && last_start->next)
            p->nolog = last_start->next, p->nolog_uid = last_start->euid;
    }
#undef R
#undef TAKEN
    free(o);
}

/* a child, by its bytes then its calls */
struct kid {
    int64_t bytes, calls;
    size_t i;
};

static int largest_first(const void *a, const void *b)
{
    const struct kid *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? 1 : -1;
    return (x->calls < y->calls) - (x->calls > y->calls);
}

/* A child that ended before its parent's end may have been reaped by it (its counters are then
 * in the parent's) or not: left a zombie for the subreaper (a shell's process substitution,
 * `diff <(a) <(b)`, that exec'd a program that never waits), or reaped with SIGCHLD ignored.
 * Taken for reaped only if its final counters fit in what the parent's trace leaves
 * unexplained of them (the largest first): a parent never explains less than it did. */
void iot_kio_link(struct iot_kio_process *p, size_t n, const int64_t *parent)
{
    /* kids: the children grouped by parent, those of q at kids[first[q] .. first[q + 1]) */
    struct kid *kids = malloc((n ? n : 1) * sizeof *kids);
    size_t *first = calloc(n + 2, sizeof *first);
    for (size_t i = 0; i < n; i++) {
        if (parent[i] < 0 || (size_t)parent[i] >= n)
            continue;
        struct iot_kio_process *par = &p[parent[i]];
        if (par->nolog == IOT_KIO_NEXT_UNWRITABLE && !p[i].shimmed && !p[i].nolog)
            p[i].nolog = par->nolog, p[i].nolog_uid = par->nolog_uid; /* no log either */
        if (first)
            first[parent[i] + 2]++;
    }
    for (size_t q = 2; q < n + 2 && first; q++)
        first[q] += first[q - 1];
    for (size_t i = 0; i < n && kids && first; i++)
        if (parent[i] >= 0 && (size_t)parent[i] < n) {
            const int64_t *f = p[i].final;
            kids[first[parent[i] + 1]++] = (struct kid){f[0] + f[1], f[2] + f[3], i};
        }
    for (size_t q = 0; q < n && kids && first; q++) {
        struct iot_kio_process *par = &p[q];
        if (par->alone || !par->end)
            continue;
        size_t nk = 0;
        struct kid *mine = kids + first[q];
        for (size_t j = 0; j < first[q + 1] - first[q]; j++) {
            const struct iot_kio_process *c = &p[mine[j].i];
            if (!c->end && c->has_floor && c->floor_t <= par->end_t) {
                /* ended without its counters (killed): what it had at least, taken off */
                add(par->children, c->floor, 1);
                par->unended++;
                par->unended_partial |= c->floor_partial;
            } else if (c->end && c->end_t <= par->end_t) {
                mine[nk++] = mine[j];
            }
        }
        qsort(mine, nk, sizeof *mine, largest_first);
        int64_t room[4];
        for (int k = 0; k < 4; k++)
            room[k] = par->kernel[k] - par->children[k] - par->events[k] - par->stdio[k] -
                      par->before_shim[k] - par->own[k];
        for (size_t j = 0; j < nk; j++) {
            const int64_t *f = p[mine[j].i].final;
            /* its final flush as recorded may have written less (cut by SIGPIPE, a full disk):
             * what the parent's counters leave of it, down to nothing of it */
            int64_t least = f[1] - p[mine[j].i].final_pending;
            int64_t take[4] = {f[0], f[1] > room[1] && least <= room[1] ? room[1] : f[1], f[2],
                               f[3]};
            if (take[0] > room[0] || take[1] > room[1] || take[2] > room[2] || take[3] > room[3])
                continue;
            add(room, take, -1);
            add(par->children, take, 1);
        }
    }
    free(kids);
    free(first);
    for (size_t i = 0; i < n; i++)
        add(p[i].kernel, p[i].children, -1);
}

void iot_kio_job_add(struct iot_kio_job *j, const struct iot_kio_process *p, int64_t pid,
                     const char *command)
{
    if (p->dropped[0] || p->dropped[1]) {
        j->dropped[0] += p->dropped[0];
        j->dropped[1] += p->dropped[1];
        j->dropped_procs++;
        int64_t most = 2 * p->dropped[0] + p->dropped[1]; /* records lost first */
        if (most > j->dropped_most) {
            j->dropped_most = most;
            j->dropped_pid = pid;
            const char *w = command ? command : "", *base = w; /* first word's base name */
            size_t len = strcspn(w, " ");
            for (size_t k = 0; k < len; k++)
                if (w[k] == '/')
                    base = w + k + 1;
            snprintf(j->dropped_command, sizeof j->dropped_command, "%.*s",
                     (int)(w + len - base), base);
        }
    }
    if (p->end && p->unfinished && p->sandboxed) {
        j->sandboxed++;
        j->sandboxed_nnp += p->sandboxed == 2;
        return;
    }
    if (!p->end) {
        j->without_end++;
        if (p->why >= 0 && p->why < IOT_KIO_NO_END_KINDS)
            j->no_end[p->why]++;
        return;
    }
    if (p->unfinished) { /* its last events are not summed: a share would be a false alarm */
        j->unfinished++;
        return;
    }
    if (p->unended_partial) { /* the same for a child's, which its counters hold */
        j->reaped++;
        return;
    }
    j->uring += p->uring && !j->stracer;
    j->attached += p->attached;
    j->processes++;
    j->tail += p->tail && !p->sandboxed;
    j->sandboxed_tail += p->tail && p->sandboxed;
    j->sandboxed_tail_nnp += p->tail && p->sandboxed == 2;
    int64_t e[4];
    for (int i = 0; i < 4; i++)
        e[i] = p->events[i] + p->stdio[i] + p->before_shim[i] + p->own[i];
    int64_t kb = p->kernel[0] + p->kernel[1], kc = p->kernel[2] + p->kernel[3];
    int64_t b = e[0] + e[1], c = e[2] + e[3];
    j->kernel_bytes += kb;
    j->explained_bytes += b;
    j->kernel_calls += kc;
    j->explained_calls += c;
    if (b < kb) {
        j->short_++;
        j->short_bytes += kb - b;
        j->short_reaped += p->unended > 0;
    }
    if (b == kb && c < kc && (p->stdio[0] || p->stdio[1])) {
        j->stdio_calls += kc - c;
        j->stdio_writes += p->kernel[3] > e[3] ? p->kernel[3] - e[3] : 0;
    }
}

/* Python's f"{n:,}" */
static const char *commas(char *out, int64_t v)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%lld", (long long)(v < 0 ? -v : v)), o = 0;
    if (v < 0)
        out[o++] = '-';
    for (int i = 0; i < n; i++) {
        out[o++] = digits[i];
        if ((n - i - 1) % 3 == 0 && i < n - 1)
            out[o++] = ',';
    }
    out[o] = '\0';
    return out;
}

/* units.fmt_bytes */
static const char *fmt_bytes(char *out, size_t cap, double n)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    for (int i = 0; i < 6; i++) {
        if ((n < 0 ? -n : n) < 1024 || i == 5) {
            if (i == 0)
                snprintf(out, cap, "%lld B", (long long)n);
            else
                snprintf(out, cap, "%.1f %s", n, units[i]);
            break;
        }
        n /= 1024;
    }
    return out;
}

/* kio._pct: units.fmt_pct of part / whole (never "100.0%" nor "0.0%" unless it is) */
static const char *pct(char *out, size_t cap, int64_t part, int64_t whole)
{
    if (!whole) {
        snprintf(out, cap, "%s", part ? "more than" : "100.0%");
        return out;
    }
    double p = 100 * ((double)part / (double)whole);
    char text[400] = "";
    for (int d = 1; d < 10; d++) {
        snprintf(text, sizeof text, "%.*f", d, p);
        double back = strtod(text, NULL);
        if ((back != 100.0 && back != 0.0) || p == 100.0 || p == 0.0)
            break;
    }
    snprintf(out, cap, "%s%%", text);
    return out;
}

/* what the shim said of why a process has no counters at its end, by kind (NULL: not known);
 * the one copy of these texts (kio.no_end_said reads them) */
static const char *const no_end_said[IOT_KIO_NO_END_KINDS] = {
    NULL,
    "uid changed: its counters and logs are root's after it",
    "no fd left for the shim's reading of them: ulimit -n reached",
    "a set-user-ID or set-group-ID program, which runs without the shim",
    "the shim could not read them",
    "the app installed a seccomp filter, after which the shim makes no syscall",
    "the app set no_new_privs (the shim alone goes out there: a seccomp filter it cannot see may "
    "follow), after which the shim makes no syscall",
};

const char *iot_kio_no_end_said(int64_t kind)
{
    return kind > 0 && kind < IOT_KIO_NO_END_KINDS ? no_end_said[kind] : NULL;
}

/* Job._no_end: why processes have no counters at their end: what the shim said (no_end_said),
 * else with the shim alone a process that ends by a raw exit_group syscall runs none of its
 * exit hooks; by kind when they differ, in the order of the texts */
static void no_end_text(const struct iot_kio_job *j, char *out, size_t cap)
{
    const char *text[IOT_KIO_NO_END_KINDS];
    int64_t count[IOT_KIO_NO_END_KINDS];
    int n = 0;
    for (int k = 0; k < IOT_KIO_NO_END_KINDS; k++) {
        if (!j->no_end[k])
            continue;
        text[n] = no_end_said[k] ? no_end_said[k]
                  : j->stracer ? "killed?"
                               : "killed, or a raw exit_group syscall?";
        count[n++] = j->no_end[k];
    }
    for (int x = 1; x < n; x++) /* sorted by text */
        for (int y = x; y > 0 && strcmp(text[y - 1], text[y]) > 0; y--) {
            const char *t = text[y];
            int64_t c = count[y];
            text[y] = text[y - 1], count[y] = count[y - 1];
            text[y - 1] = t, count[y - 1] = c;
        }
    if (n == 0) { /* no kinds known: what was said before kinds */
        snprintf(out, cap, "%s", j->stracer ? "killed?" : "killed, or a raw exit_group syscall?");
        return;
    }
    if (n == 1) {
        snprintf(out, cap, "%s", text[0]);
        return;
    }
    size_t o = 0;
    char num[32];
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "%s%s: %s", i ? "; " : "",
                              commas(num, count[i]), text[i]);
}

#define SAY(...) (o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, __VA_ARGS__))

/* What the shim could not record after the apps' seccomp filters (kio.Process.dropped_text),
 * appended at o; the new length */
static size_t dropped_text(const struct iot_kio_job *j, char *out, size_t cap, size_t o)
{
    char a[64];
    if (j->dropped[0])
        SAY("; %s records dropped after the app's seccomp filter (the shim had no room left "
            "in its log, and making more is a syscall): those events are not in the trace",
            commas(a, j->dropped[0]));
    if (j->dropped[1] && !j->stracer)
        SAY("; %s calls of threads the shim had not set up before the app's seccomp filter "
            "went untraced (setting one up takes a syscall): run with the stracer to record "
            "them", commas(a, j->dropped[1]));
    if (j->dropped[0] || (j->dropped[1] && !j->stracer)) {
        if (j->dropped_procs > 1)
            SAY(", in %s processes, most in", commas(a, j->dropped_procs));
        else
            SAY(", in");
        SAY(" pid %lld (%s)", (long long)j->dropped_pid, j->dropped_command);
    }
    return o;
}

/* processes in a PID namespace of their own (kio.Job.pidns), appended at o; the new length */
static size_t pidns_text(const struct iot_kio_job *j, char *out, size_t cap, size_t o)
{
    char a[64];
    if (j->pidns)
        SAY("; %s process%s began a PID namespace of %s own (unshare -p, a container): the "
            "logs of the processes in it are named by their pids in it, which this count "
            "cannot tell from this run's: their I/O is in the trace, not in this count%s",
            commas(a, j->pidns), j->pidns > 1 ? "es" : "", j->pidns > 1 ? "their" : "its",
            j->stracer ? " (the kernel's counts of them are, as not explained)" : "");
    return o;
}

/* what `n` processes of which `nnp` only set no_new_privs did, after which the shim makes no
 * syscall (preload/sandbox.c) */
static const char *sandbox_what(int64_t n, int64_t nnp)
{
    if (!nnp)
        return "installed a seccomp filter";
    if (nnp < n)
        return "installed a seccomp filter or set no_new_privs";
    return "set no_new_privs (the shim alone goes out there: a seccomp filter it cannot see may "
           "follow)";
}

size_t iot_kio_job_line(const struct iot_kio_job *j, char *out, size_t cap)
{
    char a[420], b[64], c[420], d[64], no_end[1024];
    size_t o = 0;
    no_end_text(j, no_end, sizeof no_end);
    if (!j->processes) {
        if (j->unfinished)
            SAY("completeness: %s ended by a signal or a raw exit_group syscall before the "
                "shim's last reading, the only processes with counters at their end: iotrace "
                "report counts their last events", commas(a, j->unfinished));
        else if (j->sandboxed)
            SAY("completeness: %s %s, after which the shim makes no syscall, the only "
                "processes with counters at their end: its last reading was just before it "
                "(iotrace report counts the events after it)", commas(a, j->sandboxed),
                sandbox_what(j->sandboxed, j->sandboxed_nnp));
        else if (j->without_end)
            SAY("completeness: no counters at the end of the %s processes traced (%s)",
                commas(a, j->without_end), no_end);
        else
            SAY("completeness: no shim and no stracer read the kernel's counters (a static or "
                "Go program under --no-stracer, or iotrace attach --shim: the shim takes no "
                "reading in a process it was loaded into, whose counters hold the I/O before "
                "it): this trace cannot check itself");
        o = pidns_text(j, out, cap, dropped_text(j, out, cap, o));
        return o < cap ? o : cap - 1;
    }
    SAY("the trace explains %s of the %s and %s of the %s read/write syscalls the kernel "
        "counted", pct(a, sizeof a, j->explained_bytes, j->kernel_bytes),
        fmt_bytes(b, sizeof b, (double)j->kernel_bytes),
        pct(c, sizeof c, j->explained_calls, j->kernel_calls), commas(d, j->kernel_calls));
    if (j->processes > 1)
        SAY(" in %s processes", commas(a, j->processes));
    if (j->attached)
        SAY(" between the attach and the end (the kernel's counters at the attach are where it "
            "begins)");
    if (j->stdio_calls) {
        SAY(" (the other %s: likely ", commas(a, j->stdio_calls));
        if (j->stdio_writes < j->stdio_calls)
            SAY("stdio's short reads of a pipe or terminal%s",
                j->stdio_writes ? " and " : "");
        if (j->stdio_writes)
            SAY("a line-buffered stdio stream's writes, a line each");
        SAY(", more than one in a call, whose bytes are traced)");
    }
    if (j->short_) {
        SAY("; %s not in the trace", fmt_bytes(a, sizeof a, (double)j->short_bytes));
        if (j->short_reaped == j->short_)
            SAY(" (likely of children that had no counters at their end: a call in flight when "
                "they died, which their parents' counters hold)");
        else if (!j->stracer) /* which of the two: only the stracer can tell */
            SAY(" (the shim alone sees neither raw syscalls nor the I/O a library does inside "
                "a function it does not wrap: run with the stracer to see which)");
        SAY(", by process: iotrace report");
    }
    if (j->unfinished)
        SAY("; %s more ended by a signal or a raw exit_group syscall before the shim's last "
            "reading, left out here (iotrace report counts their last events)",
            commas(a, j->unfinished));
    if (j->reaped)
        SAY("; %s more reaped a child without counters at its end, left out here (iotrace "
            "report counts the child's last events)", commas(a, j->reaped));
    if (j->tail)
        SAY("; %s ended by a signal or a raw exit_group syscall before the shim's last reading "
            "(their last events counted from the trace)", commas(a, j->tail));
    if (j->sandboxed_tail)
        SAY("; %s %s, after which the shim makes no syscall (its last reading was just before "
            "it; the events after it counted from the trace)", commas(a, j->sandboxed_tail),
            sandbox_what(j->sandboxed_tail, j->sandboxed_tail_nnp));
    if (j->sandboxed)
        SAY("; %s more %s, after which the shim makes no syscall: its last reading was just "
            "before it, left out here (iotrace report counts the events after it)",
            commas(a, j->sandboxed), sandbox_what(j->sandboxed, j->sandboxed_nnp));
    if (j->without_end)
        SAY("; %s without counters at their end (%s)", commas(a, j->without_end), no_end);
    o = pidns_text(j, out, cap, dropped_text(j, out, cap, o));
    if (j->uring)
        SAY("; but io_uring ran in %s process(es) without the stracer (rings mapped, or "
            "liburing loaded): its I/O is in neither these counters nor the trace, so they are "
            "not all of the job's I/O (run with the stracer; by process: iotrace report)",
            commas(a, j->uring));
    return o < cap ? o : cap - 1;
}
