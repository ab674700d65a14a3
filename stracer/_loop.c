/* The stracer's hot loop (stracer/loop.py loads it with cffi in ABI mode; docs/stracer.md,
 * "Performance").
 *
 * iotl_run() waits for the next stop and handles, without returning to Python:
 *   - seccomp stops that are covered, loader I/O, the shim's own, or not in the table: counted,
 *     PTRACE_CONT;
 *   - missed syscalls at a call site Python has already unwound, of the "fast" kinds (no path
 *     argument, no descriptor effect, arguments that are plain integers: read, write, pread64,
 *     fstat, ...) and of the "path" kinds (strings, flags, libc's own opens and closes:
 *     path_entry): time, arguments and the descriptor's path (/proc/PID/fd/N, cached: see
 *     fd_path) or the path made absolute taken at the entry,
 *     PTRACE_SYSCALL, and at the exit stop the record, msgpack-encoded exactly as the Python
 *     Packer would, appended to a batch, plus a tally per (pid, site, syscall, path) for the
 *     console;
 * and returns for everything else (unknown threads, the shim's hello, new call sites, missed
 * syscalls of the other kinds, exit stops Python asked for, process events, signals, exits), or
 * when the batch should be written.  Python stays the owner of the process tree: it tells this
 * file about threads (iotl_thread, iotl_forget), images (iotl_image), call sites (iotl_site) and
 * syscalls (iotl_nr).  The decisions are exactly tracer.py's _seccomp, in the same order.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "iot_format.h" /* the records' and the link's layouts: src/iotrace/format.py */
#include "iot_kio.h" /* how the kernel counts a call: calls.KERNEL_IO_*, the shim's rule too */

#define NR_MAX 512
#define SYS_GETPID_ 39
#define SYS_PTRACE_ 101
#define SYS_PRCTL_ 157 /* PR_SET_SECCOMP only, and seccomp: the app's raw installs (bpf.py) */
#define SYS_SECCOMP_ 317
#define PATH_CAP 4096 /* a string argument's bytes at most (_ffi.Mem.read_str's limit) */
#define ABS_CAP (2 * PATH_CAP + 2) /* a path made absolute: a directory's path, '/', the argument */
#define ARGS_CAP (2 * PATH_CAP + 512) /* a syscall's arguments encoded: two strings at most */
#define BATCH_CAP (1u << 20)
#define BATCH_ROOM (ARGS_CAP + ABS_CAP + 1024) /* the largest record, with room to spare */
#define TALLY_MAX 64
#define BATCH_AGE_NS 100000000LL /* a batch older than this is handed over at the next stop */

enum { PH_LAUNCH, PH_PREINIT, PH_READY, PH_NOSHIM };
/* The classes of an I/O syscall the stracer stops (docs/stracer.md, "Classification"): the
 * decision is made here and nowhere else; Python only learns it (iotl_ev) and, once per call
 * site, says from the unwound frames whether a site is libc-internal or a bypass (iotl_site). */
enum { C_COVERED, C_LOADER, C_SHIM, C_LIBC, C_BYPASS, C_N };
/* the shim's busy mark after a vfork (IOT_BUSY_VFORK): not its own work, the app's syscalls */
#define BUSY_VFORK 2
enum { EV_STOP = 1, EV_BATCH = 2, EV_ECHILD = 3, EV_EINTR = 4 };
/* what a stop handed to Python is: V_PY anything Python handles itself (not a seccomp stop,
 * the shim's hello, ptrace, registers unreadable); V_NEW a missed syscall at a call site not
 * yet unwound (Python unwinds it, says its class with iotl_site, and records it); V_REC a
 * missed syscall of a known site and class that Python records (news for the shim, two ends,
 * an engine's, a flag value not taught yet: path_entry) */
enum { V_PY = 0, V_NEW = 1, V_REC = 2 };

typedef struct {
    int tid, status;
    int verdict, site, cls; /* a seccomp stop's verdict (V_*), its site and class (C_*) */
    uint64_t top;           /* the word at the stack pointer: with the ip, the site's key */
    uint64_t t;             /* when waitpid reported the stop (CLOCK_MONOTONIC ns) */
} iotl_ev;

typedef struct {
    int pid, site, nr, count, cls;
    int32_t path_off, path_len; /* in the batch buffer; path_len -1: no path */
    long long bytes;            /* the positive results' sum (bytes, for reads and writes) */
} iotl_tally;

typedef struct {
    uint8_t *buf;
    size_t len;
    int nrec, ntally;
    iotl_tally *tally;
} iotl_batch;

/* how a syscall is recorded here: M_PY by Python; M_FAST integer arguments only, no effect on
 * descriptors; M_PATH strings, flags and descriptors' opens and closes (docs/stracer.md,
 * "Libc-internal I/O in the C loop") */
enum { M_PY, M_FAST, M_PATH };
/* an argument's kind (loop.py _KINDS): K_DEC and up are decoded by Python (flag names), their
 * encodings learnt value by value (iotl_conv) */
enum { K_U, K_S32, K_S64, K_DIRFD, K_STR, K_DEC };
enum { FD_NONE, FD_OPEN, FD_CLOSE, FD_OTHER }; /* the syscall's effect on descriptors */

typedef struct {
    uint8_t in_table, mode, nargs, fdop;
    /* how the kernel counts it (IOT_KIO_MODE_*), the failures it does not count (its checks:
     * IOT_KIO_CHECKS_*), the positions of the offset and count arguments they test (-1: none) */
    uint8_t kio, checks;
    int8_t offarg, countarg;
    int8_t fdarg, patharg, dirfdarg; /* the argument positions (-1: none): syscall_args.plan */
    int8_t strarg; /* M_PATH: its first string argument (-1: none), read with the marker */
    uint8_t kind[6];
    uint8_t namelen;
    char name[31];
} nr_info;

typedef struct {
    int phase;
    long tls_off;
    uint64_t link; /* the shim's iot_link_t (0: none yet) */
    uint64_t ld_lo, ld_hi;
} image;

/* loop.py: who started the thread (tracer.py, _new_child).  T_VMCHILD: a vfork/CLONE_VM child
 * before its exec (posix_spawn's, popen's): the markers at its fs_base are its parent thread's,
 * not its own, so its syscalls are the app's (the file actions it runs before its exec) */
enum { T_APP, T_SHIM, T_HELPER, T_VMCHILD };

typedef struct {
    int tid, pid, img, kind;
    int pending; /* a missed syscall recorded here waits for its exit stop */
    long long counts[C_N];
    uint64_t t, args[6];
    int nr, site, cls, fd, plen;
    int hasfd;  /* the record's fd field is t->fd (else nil) */
    int quiet;  /* M_PATH open (close): its descriptor joins (leaves) the untold set at the exit */
    size_t alen; /* M_PATH: the arguments, encoded at the entry into abuf */
    uint64_t sgen; /* M_PATH: the shim's descriptor counter at the entry */
    uint8_t *abuf;
    char path[ABS_CAP];
} thread;

static nr_info nrs[NR_MAX];
static image *images;
static int nimages;

/* The one hash table of this file (threads, frames, sites, flag encodings, untold descriptors,
 * the end line's sums): open addressing, linear probing, never shrunk, backward-shift
 * deletion; entries of esz bytes, each starting with its key (klen bytes, a multiple of 8, its
 * first word never 0: 0 marks an empty slot) */
typedef struct {
    unsigned char *slot;
    size_t cap, used, esz, klen;
} table;

/* tid -> thread (tid > 0) */
typedef struct {
    uint64_t tid;
    thread *t;
} th_ent;
static table threads_t = {NULL, 0, 0, sizeof(th_ent), 8};

/* The call sites' keys (docs/stracer.md, "Call sites").  A libc-internal syscall is named by the
 * libc function called from outside libc, often several frames up, so the ip and the word at sp
 * do not tell it: every path through one inner helper shares them (__getdents64 <- readdir
 * under fts_read and under sysconf).  A site is keyed by its chain: the return addresses up to
 * and including the first frame outside libc and the loader, found on the stack by frame sizes
 * Python learnt from its unwinds (iotl_frame): at a return address pc, the next one lies delta
 * bytes further up, as long as the frame's size at pc is fixed (an sp-based CFA).  A pc whose
 * unwinds found two sizes (alloca: setlocale's _nl_find_locale) is D_VAR: the chain ends there
 * (the frames above it are not found; one inner path reached from two libc functions through
 * such a frame is still one site).  An ip outside libc (an inline syscall) keeps the old key:
 * the ip and the word at sp. */
#define CHAIN_MAX 12
#define D_OUT INT32_MIN        /* the chain ends at this pc: outside libc and the loader */
#define D_VAR (INT32_MIN + 1)  /* the frame's size varies: the chain ends at this pc too */
#define WIN_WORDS 128          /* the stack is read 1 KiB at a time past the first window */
#define WIN_READS 4
/* The first window (read with the marker: stack_read) is the span the last chains walked from
 * the syscall's ip needed, at least 1 KiB: an NSS lookup's or sysconf's chain lies 1-3 KiB up
 * the stack (their buffers), and a second read for it cost each such stop a process_vm_readv
 * (getgrouplist and sysconf: 2.0 reads a syscall before, 1.0-1.05 now) */
#define FIRST_MIN (WIN_WORDS * 8)
#define FIRST_MAX 8192

typedef struct {
    uint64_t pc;
    int32_t img, isip; /* isip: the syscall's ip, its delta from sp (else a return address) */
    int32_t delta;
    uint32_t span; /* isip: the bytes from sp the chains walked from it read (FIRST_MAX at most) */
} frame_ent;

typedef struct {
    uint64_t ip, w[CHAIN_MAX];
    int32_t img, nw;
} chain_key;

typedef struct {
    chain_key k;
    int32_t site, cls; /* cls: C_LIBC, C_BYPASS or C_LOADER */
} site_ent;

static table frames_t = {NULL, 0, 0, sizeof(frame_ent), 16};
static table sites_t = {NULL, 0, 0, sizeof(site_ent), sizeof(chain_key)};

/* fd -> path: a readlink of /proc/PID/fd/N costs more than the rest of a fast missed syscall's
 * handling, so the path is cached per (pid, fd), valid while nothing may have changed that
 * process's descriptors since: `lgen` counts every change the stracer could learn of (a stop
 * for a descriptor-changing syscall, whatever its verdict; any stop Python handles; any news
 * about threads and images: fork, exec, exit), and the shim's iot_link.fdgen, read with the
 * marker, counts those made without a stop (the wrappers' and the shim's own, sysraw.h).  Not
 * seen by either: descriptors changed by io_uring operations. */
#define PCACHE 512
#define PCACHE_PATH 256
#define NO_SGEN UINT64_MAX /* the shim's counter could not be read: no caching */
typedef struct {
    int pid, fd, plen;
    uint64_t lgen, sgen;
    char path[PCACHE_PATH];
} pc_ent;
static pc_ent pcache[PCACHE];
static uint64_t lgen = 1;

static uint8_t batch_buf[BATCH_CAP];
static iotl_tally tallies[TALLY_MAX];
static iotl_batch batch = {batch_buf, 0, 0, 0, tallies};
static long long batch_t0;

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static size_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

/* ---- the tables: open addressing, linear probing, backward-shift deletion ---------------- */

static size_t key_hash(const void *key, size_t len)
{
    const uint64_t *w = key;
    uint64_t h = 0;
    for (size_t i = 0; i < len / 8; i++)
        h = (h ^ w[i]) * 0x9e3779b97f4a7c15ULL;
    return hash_u64(h);
}

static void *tab_get(const table *t, const void *key)
{
    if (!t->cap)
        return NULL;
    for (size_t i = key_hash(key, t->klen) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        unsigned char *e = t->slot + i * t->esz;
        if (!*(const uint64_t *)e)
            return NULL;
        if (!memcmp(e, key, t->klen))
            return e;
    }
}

/* key's entry, made (zeroed past its key) if new; NULL: out of memory */
static void *tab_put(table *t, const void *key)
{
    unsigned char *e = tab_get(t, key);
    if (e)
        return e;
    if ((t->used + 1) * 2 > t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 1024;
        unsigned char *n = calloc(ncap, t->esz);
        if (!n)
            return NULL;
        for (size_t i = 0; i < t->cap; i++) {
            const unsigned char *o = t->slot + i * t->esz;
            if (!*(const uint64_t *)o)
                continue;
            size_t j = key_hash(o, t->klen) & (ncap - 1);
            while (*(const uint64_t *)(n + j * t->esz))
                j = (j + 1) & (ncap - 1);
            memcpy(n + j * t->esz, o, t->esz);
        }
        free(t->slot);
        t->slot = n;
        t->cap = ncap;
    }
    size_t i = key_hash(key, t->klen) & (t->cap - 1);
    while (*(const uint64_t *)(t->slot + i * t->esz))
        i = (i + 1) & (t->cap - 1);
    e = t->slot + i * t->esz;
    memset(e, 0, t->esz);
    memcpy(e, key, t->klen);
    t->used++;
    return e;
}

/* e's entry removed (no tombstones: the entries after it that would not be found move back) */
static void tab_del(table *t, unsigned char *e)
{
    size_t mask = t->cap - 1, i = (size_t)(e - t->slot) / t->esz;
    memset(e, 0, t->esz);
    t->used--;
    for (size_t j = (i + 1) & mask; *(const uint64_t *)(t->slot + j * t->esz); j = (j + 1) & mask) {
        unsigned char *ej = t->slot + j * t->esz;
        size_t home = key_hash(ej, t->klen) & mask;
        /* move back unless its home lies cyclically in (i, j] */
        int keep = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!keep) {
            memcpy(t->slot + i * t->esz, ej, t->esz);
            memset(ej, 0, t->esz);
            i = j;
        }
    }
}

/* ---- threads ----------------------------------------------------------------------------- */

static thread *th_find(int tid)
{
    uint64_t key = (uint64_t)(uint32_t)tid;
    const th_ent *e = tab_get(&threads_t, &key);
    return e ? e->t : NULL;
}

static void th_remove(int tid)
{
    uint64_t key = (uint64_t)(uint32_t)tid;
    th_ent *e = tab_get(&threads_t, &key);
    if (!e)
        return;
    free(e->t->abuf);
    free(e->t);
    tab_del(&threads_t, (unsigned char *)e);
}

/* A thread, new or changed: its process, image and who started it (T_*). */
int iotl_thread(int tid, int pid, int img, int kind)
{
    thread *t = th_find(tid);
    if (!t) {
        uint64_t key = (uint64_t)(uint32_t)tid;
        th_ent *e = tid > 0 ? tab_put(&threads_t, &key) : NULL;
        if (!e)
            return -1;
        t = e->t = calloc(1, sizeof *t);
        if (!t) {
            tab_del(&threads_t, (unsigned char *)e);
            return -1;
        }
        t->tid = tid;
    }
    t->pid = pid;
    t->img = img;
    t->kind = kind;
    lgen++;
    return 0;
}

/* Drop a thread (its pending syscall, if any, unrecorded); its counts go to out[C_N]. */
int iotl_forget(int tid, long long *out)
{
    thread *t = th_find(tid);
    if (!t)
        return 0;
    lgen++;
    memcpy(out, t->counts, sizeof t->counts);
    th_remove(tid);
    return 1;
}

int iotl_pending(int tid)
{
    thread *t = th_find(tid);
    return t && t->pending;
}

/* ---- images, sites, syscalls ------------------------------------------------------------- */

int iotl_image(int id, int phase, long tls_off, uint64_t link, uint64_t ld_lo, uint64_t ld_hi)
{
    lgen++;
    if (id < 0)
        return -1;
    if (id >= nimages) {
        int n = nimages ? nimages : 16;
        while (n <= id)
            n *= 2;
        image *m = realloc(images, (size_t)n * sizeof *m);
        if (!m)
            return -1;
        memset(m + nimages, 0, (size_t)(n - nimages) * sizeof *m);
        images = m;
        nimages = n;
    }
    images[id] = (image){phase, tls_off, link, ld_lo, ld_hi};
    return 0;
}

static frame_ent *frame_get(int img, uint64_t pc, int isip)
{
    frame_ent k = {pc, img, isip, 0, 0};
    return tab_get(&frames_t, &k);
}

/* The first window's bytes for a stop at ip: what its chains needed so far (FIRST_MIN..MAX) */
static size_t first_window(int img, uint64_t ip)
{
    const frame_ent *f = frame_get(img, ip, 1);
    return f && f->span > FIRST_MIN ? f->span : FIRST_MIN;
}

/* What Python's unwind found at pc (isip: the syscall's ip): the next return address delta
 * bytes up the stack, or D_OUT.  Two unwinds that disagree make it D_VAR.  The delta kept. */
int iotl_frame(int img, uint64_t pc, int isip, int delta)
{
    if (!pc)
        return D_VAR;
    frame_ent k = {pc, img, isip, 0, 0};
    int fresh = !tab_get(&frames_t, &k);
    frame_ent *e = tab_put(&frames_t, &k);
    if (!e)
        return D_VAR;
    if (delta != D_OUT && (delta < !isip || delta > (1 << 20))) /* a leaf's ip: 0 */
        delta = D_VAR;
    e->delta = fresh || e->delta == delta ? delta : D_VAR;
    return e->delta;
}

/* The chain of a stop at ip with the stack at sp (top: the word at sp; st: the stack from sp
 * on, st_len bytes of it, read with the marker: stack_read): 1 made, 0 not (a pc not learnt,
 * the stack unreadable: Python unwinds it).  Beyond st, up to WIN_READS more reads; the span
 * walked is kept at ip for the next stop's first window (first_window). */
static int chain_of(int tid, int img, uint64_t ip, uint64_t sp, uint64_t top, const uint64_t *st,
                    size_t st_len, chain_key *k)
{
    memset(k, 0, sizeof *k);
    k->ip = ip;
    k->img = img;
    frame_ent *fi = frame_get(img, ip, 1);
    const frame_ent *f = fi;
    if (!f)
        return 0;
    if (f->delta == D_OUT || f->delta == D_VAR) {
        k->w[k->nw++] = top;
        return 1;
    }
    uint64_t win[WIN_WORDS], base = sp, pos = (uint64_t)f->delta, span = 0;
    const uint64_t *buf = st;
    size_t have = st_len;
    int reads = 0;
    while (k->nw < CHAIN_MAX) {
        uint64_t at = sp + pos, w;
        if (pos == 0) {
            w = top;
        } else {
            if (at < base || at + 8 > base + have) {
                struct iovec local = {win, sizeof win}, remote = {(void *)at, sizeof win};
                ssize_t got = reads++ < WIN_READS ? process_vm_readv(tid, &local, 1, &remote, 1, 0)
                                                  : -1;
                if (got < 8)
                    return 0;
                buf = win;
                base = at;
                have = (size_t)got;
            }
            w = buf[(at - base) / 8];
            span = pos + 8 > span ? pos + 8 : span;
        }
        k->w[k->nw++] = w;
        f = frame_get(img, w, 0);
        if (!f)
            return 0;
        if (f->delta == D_OUT || f->delta == D_VAR)
            break;
        pos += (uint64_t)f->delta;
    }
    span = (span + 63) & ~(uint64_t)63;
    if (span > fi->span)
        fi->span = span < FIRST_MAX ? (uint32_t)span : FIRST_MAX;
    return 1;
}

/* A call site unwound by Python, by its chain (iotl_frame's walk: ip, nw words): its id and
 * class (C_LIBC: inside a libc function the shim does not wrap, called from outside libc;
 * C_LOADER: the loader's own; C_BYPASS: everything else). */
int iotl_site(int img, uint64_t ip, int nw, const uint64_t *w, int site, int cls)
{
    if (site <= 0 || nw < 1 || nw > CHAIN_MAX || !ip ||
        (cls != C_LIBC && cls != C_BYPASS && cls != C_LOADER))
        return -1;
    chain_key k;
    memset(&k, 0, sizeof k);
    k.ip = ip;
    k.img = img;
    k.nw = nw;
    memcpy(k.w, w, (size_t)nw * 8);
    site_ent *e = tab_put(&sites_t, &k);
    if (!e)
        return -1;
    e->site = site;
    e->cls = cls;
    return 0;
}

/* A syscall of the table (loop.py): how it is recorded (M_*), its arguments' kinds (K_*), the
 * positions of its descriptor, path and dirfd arguments (-1: none), its effect (FD_*), how the
 * kernel counts it (KIO_*: calls.KERNEL_IO_SYSCALLS). */
int iotl_nr(int nr, int mode, int nargs, const uint8_t *kind, int fdarg, int patharg,
            int dirfdarg, int fdop, int kio, int checks, int offarg, int countarg, const char *name)
{
    if (nr < 0 || nr >= NR_MAX || nargs < 0 || nargs > 6 || mode < M_PY || mode > M_PATH ||
        fdop < FD_NONE || fdop > FD_OTHER || fdarg >= nargs || patharg >= nargs ||
        dirfdarg >= nargs || (kio != IOT_KIO_MODE_NONE && !iot_kio_mode_syscall((unsigned)kio)) ||
        checks < 0 || checks >= IOT_KIO_CHECKS_COUNT || offarg >= nargs || countarg >= nargs)
        return -1;
    nr_info *n = &nrs[nr];
    n->in_table = 1;
    n->kio = (uint8_t)kio;
    n->checks = (uint8_t)checks;
    n->offarg = (int8_t)offarg;
    n->countarg = (int8_t)countarg;
    n->mode = (uint8_t)mode;
    n->fdop = (uint8_t)fdop;
    n->nargs = (uint8_t)nargs;
    n->fdarg = (int8_t)fdarg;
    n->patharg = (int8_t)patharg;
    n->dirfdarg = (int8_t)dirfdarg;
    memcpy(n->kind, kind, 6);
    n->strarg = -1;
    for (int i = nargs - 1; i >= 0; i--)
        if (mode == M_PATH && kind[i] == K_STR)
            n->strarg = (int8_t)i;
    size_t len = strlen(name);
    if (len >= sizeof n->name)
        return -1;
    memcpy(n->name, name, len);
    n->namelen = (uint8_t)len;
    return 0;
}

iotl_batch *iotl_batch_state(void)
{
    return &batch;
}

void iotl_batch_reset(void)
{
    batch.len = 0;
    batch.nrec = 0;
    batch.ntally = 0;
}

/* ---- msgpack, as msgpack-python's Packer writes it (smallest forms, str8 allowed) -------- */

static uint8_t *put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint8_t *pk_int(uint8_t *p, int64_t v)
{
    if (v >= 0) {
        uint64_t u = (uint64_t)v;
        if (u < 128) {
            *p++ = (uint8_t)u;
        } else if (u < 256) {
            *p++ = 0xcc;
            *p++ = (uint8_t)u;
        } else if (u < 65536) {
            *p++ = 0xcd;
            p = put_be(p, u, 2);
        } else if (u < 4294967296ULL) {
            *p++ = 0xce;
            p = put_be(p, u, 4);
        } else {
            *p++ = 0xcf;
            p = put_be(p, u, 8);
        }
    } else if (v >= -32) {
        *p++ = (uint8_t)(int8_t)v;
    } else if (v >= -128) {
        *p++ = 0xd0;
        *p++ = (uint8_t)(int8_t)v;
    } else if (v >= -32768) {
        *p++ = 0xd1;
        p = put_be(p, (uint64_t)v, 2);
    } else if (v >= -2147483648LL) {
        *p++ = 0xd2;
        p = put_be(p, (uint64_t)v, 4);
    } else {
        *p++ = 0xd3;
        p = put_be(p, (uint64_t)v, 8);
    }
    return p;
}

static uint8_t *pk_uint(uint8_t *p, uint64_t u)
{
    if (u >> 63) {
        *p++ = 0xcf;
        return put_be(p, u, 8);
    }
    return pk_int(p, (int64_t)u);
}

static uint8_t *pk_str(uint8_t *p, const char *s, size_t n)
{
    if (n < 32) {
        *p++ = (uint8_t)(0xa0 | n);
    } else if (n < 256) {
        *p++ = 0xd9;
        *p++ = (uint8_t)n;
    } else if (n < 65536) {
        *p++ = 0xda;
        p = put_be(p, n, 2);
    } else {
        *p++ = 0xdb;
        p = put_be(p, n, 4);
    }
    memcpy(p, s, n);
    return p + n;
}

static uint8_t *pk_args(uint8_t *p, const nr_info *n, const uint64_t *args)
{
    *p++ = (uint8_t)(0x90 | n->nargs);
    for (int i = 0; i < n->nargs; i++) {
        uint64_t v = args[i];
        if (n->kind[i] == K_S32)
            p = pk_int(p, (int32_t)(uint32_t)v);
        else if (n->kind[i] == K_S64)
            p = pk_int(p, (int64_t)v);
        else
            p = pk_uint(p, v);
    }
    return p;
}

/* ---- the records' sums for the run's end line (kio.run_job) ------------------------------- */

/* The end line places each recorded read and write counted the kernel's way (kio.stracer_sums
 * of the MISSED records) against its process's readings by time.  Rather than the log read
 * back at the end, each process's sums since the last cut are kept here, with the latest of
 * their times: Python takes them (iotl_kio_take) where a reading may fall between two of its
 * records (an exec, its shim's hello, its end), so that each taken sum lies wholly on one side
 * of every reading, as its records did (docs/stracer.md, "The end line"). */
typedef struct {
    uint64_t pid; /* the key: never 0 */
    int64_t t, n, sums[4]; /* the latest record's time, how many, rchar wchar syscr syscw */
} kio_ent;
static table kio_t = {NULL, 0, 0, sizeof(kio_ent), 8};
static int kio_lost; /* out of memory once: the end line reads the log back */

/* kio.event_sums' r, w, rw and rwm for one recorded syscall (ret -1 and err on a failure) */
static void kio_note(int pid, uint64_t t, const nr_info *n, const uint64_t *args, int has_ret,
                     int64_t ret, int64_t err)
{
    int mode = n->kio;
    if (mode == IOT_KIO_MODE_NONE)
        return;
    int64_t moved = has_ret && ret > 0 ? ret : 0;
    int64_t counted = mode == IOT_KIO_MODE_RWM
                          ? moved > 0
                          : iot_kio_counted(n->checks, err,
                                            n->offarg >= 0 ? (int64_t)args[n->offarg] : 0,
                                            n->countarg >= 0 ? args[n->countarg] : 0);
    if (!moved && !counted)
        return; /* nothing the kernel counted: no event (stracer_sums) */
    uint64_t key = (uint64_t)(uint32_t)pid;
    kio_ent *e = key ? tab_put(&kio_t, &key) : NULL;
    if (!e) {
        kio_lost = 1;
        return;
    }
    if (mode != IOT_KIO_MODE_W)
        e->sums[0] += moved, e->sums[2] += counted;
    if (mode != IOT_KIO_MODE_R)
        e->sums[1] += moved, e->sums[3] += counted;
    if (!e->n++ || (int64_t)t > e->t)
        e->t = (int64_t)t;
}

/* A record Python wrote (its sums by kio.stracer_sums), added to pid's. */
int iotl_kio_add(int pid, int64_t t, const int64_t *sums)
{
    uint64_t key = (uint64_t)(uint32_t)pid;
    kio_ent *e = key ? tab_put(&kio_t, &key) : NULL;
    if (!e)
        return kio_lost = 1, -1;
    for (int i = 0; i < 4; i++)
        e->sums[i] += sums[i];
    if (!e->n++ || t > e->t)
        e->t = t;
    return 0;
}

/* pid's sums since the last cut (pid 0: any process's, its pid returned) into out: t, rchar,
 * wchar, syscr, syscw; then dropped.  0: none; -1: some were lost (out of memory). */
int iotl_kio_take(int pid, int64_t *out)
{
    if (kio_lost)
        return -1;
    kio_ent *e = NULL;
    uint64_t key = (uint64_t)(uint32_t)pid;
    if (pid)
        e = tab_get(&kio_t, &key);
    for (size_t i = 0; !pid && kio_t.used && i < kio_t.cap && !e; i++)
        if (*(const uint64_t *)(kio_t.slot + i * kio_t.esz))
            e = (kio_ent *)(kio_t.slot + i * kio_t.esz);
    if (!e)
        return 0;
    int got = (int)e->pid;
    out[0] = e->t;
    memcpy(out + 1, e->sums, sizeof e->sums);
    tab_del(&kio_t, (unsigned char *)e);
    return got;
}

/* Each field of a MISSED record (format.py MISSED, the stracer log's SRec.MISSED), by its name
 * there; the order is the table's (IOT_MISSED_BASE): a field added there without a line here
 * does not compile.  t_exit 0: the syscall never returned (nil). */
#define NIL (*p++ = 0xc0, p)
#define EMIT_rec *p++ = IOT_SREC_MISSED
#define EMIT_t p = pk_uint(p, t->t)
#define EMIT_pid p = pk_int(p, t->pid)
#define EMIT_tid p = pk_int(p, t->tid)
#define EMIT_syscall p = pk_str(p, n->name, n->namelen)
#define EMIT_args p = t->alen ? (uint8_t *)memcpy(p, t->abuf, t->alen) + t->alen : pk_args(p, n, t->args)
#define EMIT_ret p = has_ret ? pk_int(p, ret) : NIL
#define EMIT_err p = pk_int(p, err)
#define EMIT_site p = pk_int(p, t->site)
#define EMIT_fd p = t->hasfd ? pk_int(p, t->fd) : NIL
#define EMIT_path                                                                                  \
    if (t->plen >= 0) {                                                                            \
        p = pk_str(p, t->path, (size_t)t->plen);                                                   \
        path_off = (int32_t)(p - t->plen - batch.buf);                                             \
    } else {                                                                                       \
        *p++ = 0xc0;                                                                               \
    }
#define EMIT_t_exit p = t_exit ? pk_uint(p, t_exit) : NIL
#define EMIT_cls p = t->cls == C_LIBC ? pk_str(p, "libc", 4) : pk_str(p, "bypass", 6)
#define EMIT_FIELD(name, pos) EMIT_##name;

static void emit(thread *t, int has_ret, int64_t ret, uint64_t t_exit)
{
    const nr_info *n = &nrs[t->nr];
    uint8_t *p = batch.buf + batch.len;
    int64_t err = 0;
    if (has_ret && ret > -4096 && ret < 0) {
        err = -ret;
        ret = -1;
    }
    int32_t path_off = -1;
    kio_note(t->pid, t->t, n, t->args, has_ret, ret, err);
    *p++ = (uint8_t)(0x90 | IOT_MISSED_BASE_FIELDS);
    IOT_MISSED_BASE(EMIT_FIELD)
    if (!batch.nrec)
        batch_t0 = now_ns();
    batch.len = (size_t)(p - batch.buf);
    batch.nrec++;

    /* the console's tally: the same (pid, site, syscall, path) as a recent one is counted */
    for (int i = batch.ntally - 1; i >= 0; i--) {
        iotl_tally *g = &batch.tally[i];
        if (g->pid == t->pid && g->site == t->site && g->nr == t->nr && g->cls == t->cls &&
            g->path_len == t->plen &&
            (t->plen < 0 || !memcmp(batch.buf + g->path_off, t->path, (size_t)t->plen))) {
            g->count++;
            g->bytes += has_ret && ret > 0 ? ret : 0;
            return;
        }
    }
    batch.tally[batch.ntally++] = (iotl_tally){t->pid,    t->site, t->nr,
                                               1,         t->cls,  path_off,
                                               t->plen,   has_ret && ret > 0 ? ret : 0};
}

/* [STOP, tid, t, ns]: the stracer held thread tid from t (when waitpid reported the stop) for
 * ns (until it was resumed): the analyzer takes it out of the time of the events it fell in
 * (docs/stracer.md, "The time the app spent stopped"). */
static void emit_stop(int tid, uint64_t t, uint64_t ns)
{
    uint8_t *p = batch.buf + batch.len;
    *p++ = 0x94;
    *p++ = IOT_SREC_STOP;
    p = pk_int(p, tid);
    p = pk_uint(p, t);
    p = pk_uint(p, ns);
    if (!batch.nrec)
        batch_t0 = now_ns();
    batch.len = (size_t)(p - batch.buf);
    batch.nrec++;
}

/* A thread gone in the middle of a fast missed syscall: recorded without a result. */
int iotl_abandon(int tid)
{
    thread *t = th_find(tid);
    if (!t || !t->pending || batch.len > BATCH_CAP - BATCH_ROOM || batch.ntally >= TALLY_MAX)
        return 0; /* Python hands the batch over before */
    t->pending = 0;
    emit(t, 0, 0, 0);
    return 1;
}

/* ---- the stops --------------------------------------------------------------------------- */

/* when the last thread was resumed here: the end of its STOP (emit_stop), taken before the
 * ptrace call (the thread may run, and this process wait for the CPU, right after it) */
static uint64_t resumed_at;

static void resume(int tid, enum __ptrace_request req)
{
    resumed_at = (uint64_t)now_ns();
    ptrace(req, tid, NULL, NULL);
}

static void cont(int tid)
{
    resume(tid, PTRACE_CONT);
}

/* The file descriptor fd of process pid refers to (its /proc link), into out (cap bytes), at a
 * stop where the counters were gen (lgen before the stop's own syscall changed anything) and
 * sgen: the cache's while valid, else read and cached.  -1: unknown. */
static int fd_link(int pid, int fd, uint64_t gen, uint64_t sgen, char *out, size_t cap)
{
    size_t h = hash_u64(((uint64_t)(uint32_t)pid << 32) | (uint32_t)fd) & (PCACHE - 1);
    pc_ent *e = &pcache[h];
    if (sgen != NO_SGEN && e->pid == pid && e->fd == fd && e->lgen == gen && e->sgen == sgen &&
        (size_t)e->plen < cap) {
        memcpy(out, e->path, (size_t)e->plen);
        return e->plen;
    }
    char link[64];
    snprintf(link, sizeof link, "/proc/%d/fd/%d", pid, fd);
    ssize_t len = readlink(link, out, cap);
    if (len < 0 || len >= (ssize_t)cap)
        return -1;
    if (sgen != NO_SGEN && len < PCACHE_PATH) {
        *e = (pc_ent){.pid = pid, .fd = fd, .plen = (int)len, .lgen = gen, .sgen = sgen};
        memcpy(e->path, out, (size_t)len);
    }
    return (int)len;
}

/* The file t->fd refers to, into t->path (t->plen stays -1 when it cannot be known). */
static void fd_path(thread *t, uint64_t gen, uint64_t sgen)
{
    int len = fd_link(t->pid, t->fd, gen, sgen, t->path, sizeof t->path);
    if (len >= 0)
        t->plen = len;
}

/* ---- path and descriptor syscalls (M_PATH: docs/stracer.md, "Libc-internal I/O in the C
 * loop") ---------------------------------------------------------------------------------- */

/* A decoded argument's encoding (flag names, a mode in octal: syscall_args.py's converters) by
 * its kind and raw value, as Python packed it (iotl_conv): a value not learnt yet sends the
 * syscall to Python, which records it and teaches the value.  Flag decoding stays in one place. */
#define CONV_BYTES 240
#define CONV_MAX 4096
typedef struct {
    uint64_t kind, value; /* kind + 1: never 0 */
    uint32_t len, pad;
    uint8_t bytes[CONV_BYTES];
} conv_ent;
static table conv_t = {NULL, 0, 0, sizeof(conv_ent), 16};

int iotl_conv(int kind, uint64_t value, const uint8_t *bytes, int len)
{
    if (kind < K_DEC || len <= 0 || len > CONV_BYTES || conv_t.used >= CONV_MAX)
        return -1;
    uint64_t key[2] = {(uint64_t)kind + 1, value};
    conv_ent *e = tab_put(&conv_t, key);
    if (!e)
        return -1;
    memcpy(e->bytes, bytes, (size_t)len);
    e->len = (uint32_t)len;
    return 0;
}

/* The "untold" descriptors: those libc opened for itself inside a function (a libc-internal
 * site), per process, which its shim was not told of; their close needs no news either
 * (tracer.py _fd_news).  This set is the one copy: Python asks and changes it (iotl_untold).
 * Keys pid << 32 | fd (pid > 0: never 0). */
static table untold_t = {NULL, 0, 0, sizeof(uint64_t), 8};
enum { U_HAS, U_ADD, U_DEL, U_RANGE, U_CLEAR, U_COPY };

static uint64_t ukey(int pid, int fd)
{
    return (uint64_t)(uint32_t)pid << 32 | (uint32_t)fd;
}

static int us_has(uint64_t k)
{
    return tab_get(&untold_t, &k) != NULL;
}

static int us_add(uint64_t k)
{
    return tab_put(&untold_t, &k) ? 0 : -1;
}

static int us_del(uint64_t k)
{
    unsigned char *e = tab_get(&untold_t, &k);
    if (e)
        tab_del(&untold_t, e);
    return e != NULL;
}

/* U_HAS fd a; U_ADD a; U_DEL a (1: it was there); U_RANGE: drop a..b; U_CLEAR: drop all of
 * pid's; U_COPY: pid gets process a's (a fork).  -1: out of memory. */
int iotl_untold(int op, int pid, int a, int b)
{
    if (op == U_HAS)
        return us_has(ukey(pid, a));
    if (op == U_ADD)
        return us_add(ukey(pid, a));
    if (op == U_DEL)
        return us_del(ukey(pid, a));
    int from = op == U_COPY ? a : pid, n = 0;
    size_t used = untold_t.used;
    uint64_t *keys = used ? malloc(used * sizeof *keys) : NULL, *slot = (uint64_t *)untold_t.slot;
    if (used && !keys)
        return -1;
    for (size_t i = 0; i < untold_t.cap; i++) {
        int fd = (int)(uint32_t)slot[i];
        if (slot[i] && (int)(slot[i] >> 32) == from && (op != U_RANGE || (a <= fd && fd <= b)))
            keys[n++] = slot[i];
    }
    int rc = 0;
    for (int i = 0; i < n; i++)
        if (op == U_COPY)
            rc |= us_add(ukey(pid, (int)(uint32_t)keys[i]));
        else
            us_del(keys[i]);
    free(keys);
    return rc;
}

/* The start of a stop's first string argument, read with its marker (stack_read): its page's
 * bytes up to STR_PRE; addr 0: none.  Valid for the stop being handled only. */
#define STR_PRE 512
static struct {
    uint64_t addr;
    size_t len;
    char buf[STR_PRE];
} str_pre;

/* A NUL-terminated string of the tracee as _ffi.Mem.read_str reads it: page by page, at most
 * PATH_CAP bytes, what was read before an unreadable page; -1: none (NULL, nothing readable). */
static int read_str(int tid, uint64_t addr, char *out)
{
    if (!addr)
        return -1;
    const char *z = addr == str_pre.addr ? memchr(str_pre.buf, 0, str_pre.len) : NULL;
    if (z) { /* within the first page read: what the first read below would find */
        memcpy(out, str_pre.buf, (size_t)(z - str_pre.buf));
        return (int)(z - str_pre.buf);
    }
    size_t len = 0;
    while (len < PATH_CAP) {
        size_t n = 4096 - (addr % 4096);
        if (n > PATH_CAP - len)
            n = PATH_CAP - len;
        struct iovec l = {out + len, n}, rm = {(void *)addr, n};
        ssize_t got = process_vm_readv(tid, &l, 1, &rm, 1, 0);
        if (got <= 0)
            break;
        const char *z = memchr(out + len, 0, (size_t)got);
        if (z)
            return (int)(z - out);
        len += (size_t)got;
        addr += n;
    }
    return len ? (int)len : -1;
}

/* Python's os.path.normpath (posixpath) of s[0..n) into out, byte for byte: "." and empty
 * components dropped, ".." taking the one before it (kept at the start of a relative path),
 * exactly two leading slashes kept. */
static int normpath(const char *s, int n, char *out)
{
    int init = n && s[0] == '/';
    if (init && n >= 2 && s[1] == '/' && !(n >= 3 && s[2] == '/'))
        init = 2;
    int o = 0, nc = 0;
    static int before[ABS_CAP / 2 + 2], start[ABS_CAP / 2 + 2]; /* each component's place */
    for (int k = 0; k < init; k++)
        out[o++] = '/';
    for (int i = 0; i <= n;) {
        int j = i;
        while (j < n && s[j] != '/')
            j++;
        int len = j - i;
        int dotdot = len == 2 && s[i] == '.' && s[i + 1] == '.';
        if (len == 0 || (len == 1 && s[i] == '.')) {
            /* dropped */
        } else if (!dotdot || (!init && !nc) ||
                   (nc && o - start[nc - 1] == 2 && !memcmp(out + start[nc - 1], "..", 2))) {
            before[nc] = o;
            if (nc)
                out[o++] = '/';
            start[nc++] = o;
            memcpy(out + o, s + i, (size_t)len);
            o += len;
        } else if (nc) {
            o = before[--nc];
        }
        i = j + 1;
    }
    if (!o)
        out[o++] = '.';
    return o;
}

#define AT_FDCWD_ (-100)

/* syscall_args.abs_path: a path argument made absolute against dirfd (its link cached as a
 * descriptor's: fd_link) or the cwd (not cached: chdir does not stop), into out */
static int abs_path(int pid, int dirfd, const char *p, int n, char *out, uint64_t gen,
                    uint64_t sgen)
{
    if (n && p[0] == '/')
        return normpath(p, n, out);
    char link[64], j[ABS_CAP];
    ssize_t b;
    if (dirfd == AT_FDCWD_) {
        snprintf(link, sizeof link, "/proc/%d/cwd", pid);
        b = readlink(link, j, PATH_CAP);
    } else {
        b = fd_link(pid, dirfd, gen, sgen, j, PATH_CAP);
    }
    if (b <= 0 || b >= PATH_CAP) {
        memcpy(out, p, (size_t)n);
        return n;
    }
    if (j[b - 1] != '/') /* os.path.join */
        j[b++] = '/';
    memcpy(j + b, p, (size_t)n);
    return normpath(j, (int)b + n, out);
}

/* An M_PATH syscall's arguments encoded at its entry as Python's record has them
 * (syscall_args.plan), its path argument made absolute into t->path.  0: a decoded value not
 * learnt yet (Python records the syscall). */
static int path_args(thread *t, const nr_info *n, uint64_t gen, uint64_t sgen)
{
    if (!t->abuf && !(t->abuf = malloc(ARGS_CAP)))
        return 0;
    uint8_t *p = t->abuf;
    char s[PATH_CAP];
    *p++ = (uint8_t)(0x90 | n->nargs);
    for (int i = 0; i < n->nargs; i++) {
        uint64_t v = t->args[i];
        int32_t v32 = (int32_t)(uint32_t)v;
        int len;
        const conv_ent *c;
        uint64_t key[2] = {(uint64_t)n->kind[i] + 1, v};
        switch (n->kind[i]) {
        case K_U:
            p = pk_uint(p, v);
            break;
        case K_S32:
            p = pk_int(p, v32);
            break;
        case K_S64:
            p = pk_int(p, (int64_t)v);
            break;
        case K_DIRFD:
            p = v32 == AT_FDCWD_ ? pk_str(p, "AT_FDCWD", 8) : pk_int(p, v32);
            break;
        case K_STR:
            len = read_str(t->tid, v, s);
            if (len < 0) {
                *p++ = 0xc0;
                break;
            }
            p = pk_str(p, s, (size_t)len);
            if (i == n->patharg) {
                int dirfd = n->dirfdarg >= 0 ? (int32_t)(uint32_t)t->args[n->dirfdarg] : AT_FDCWD_;
                t->plen = abs_path(t->pid, dirfd, s, len, t->path, gen, sgen);
            }
            break;
        default:
            c = tab_get(&conv_t, key);
            if (!c)
                return 0;
            memcpy(p, c->bytes, c->len);
            p += c->len;
        }
    }
    t->alen = (size_t)(p - t->abuf);
    return 1;
}

/* The entry of an M_PATH syscall at a known site, recorded here when nothing about it needs
 * Python: a bypass's opens and closes are news for its shim, and so is a libc-internal close of
 * a descriptor the shim was told of.  1: taken (t->pending to be set). */
static int path_entry(thread *t, const nr_info *n, const image *img, uint64_t gen,
                      uint64_t sgen)
{
    if (n->fdop != FD_NONE && (t->cls != C_LIBC || n->fdop == FD_OTHER))
        return 0;
    /* tracer.py _fd_news: a shim hears of descriptors only when ready, never a vfork child's */
    int told = img->phase == PH_READY && t->kind != T_VMCHILD;
    t->quiet = n->fdop != FD_NONE && told;
    if (n->fdop == FD_CLOSE && told && !us_has(ukey(t->pid, (int32_t)(uint32_t)t->args[0])))
        return 0;
    t->sgen = sgen;
    if (!path_args(t, n, gen, sgen)) {
        t->alen = 0;
        t->plen = -1;
        return 0;
    }
    if (n->fdarg >= 0) {
        t->hasfd = 1;
        t->fd = (int32_t)(uint32_t)t->args[n->fdarg];
        if (t->fd >= 0)
            fd_path(t, gen, sgen);
    }
    return 1;
}

/* The exit of an M_PATH syscall (before its record): an open's descriptor and its path, the
 * untold set kept (tracer.py _finish, _fd_news). */
static void path_exit(thread *t, const nr_info *n, int64_t ret)
{
    if (n->fdop == FD_NONE)
        return;
    lgen++; /* the descriptors changed */
    if (ret < 0 || ret > INT32_MAX)
        return;
    if (n->fdop == FD_OPEN) {
        /* cached for the syscalls on it that follow; valid while the shim's counter is what it
         * was at the entry (it changes before any descriptor change of the shim's) */
        char fp[PATH_CAP];
        int len = fd_link(t->pid, (int)ret, lgen, t->sgen, fp, sizeof fp);
        if (len > 0) {
            memcpy(t->path, fp, (size_t)len);
            t->plen = (int)len;
        }
        t->fd = (int)ret;
        t->hasfd = 1;
        if (t->quiet)
            us_add(ukey(t->pid, (int)ret));
    } else if (n->fdop == FD_CLOSE && t->quiet) {
        us_del(ukey(t->pid, t->fd));
    }
}

/* One process_vm_readv: nw words (the marker...) at remote[0..nw) into w, then the stack's
 * `all` bytes from sp into st, as two pieces split at sp's page end (a read stops at the
 * first piece it cannot read: the stack's end leaves the page of sp read), then the start of
 * the string at str (0: none) into str_pre.  The bytes read, str_pre's aside (-1: none). */
static ssize_t stack_read(int tid, uint64_t *w, int nw, struct iovec *remote, uint64_t sp,
                          uint64_t *st, size_t all, uint64_t str)
{
    size_t first = 4096 - (sp & 4095), slen = 4096 - (str & 4095);
    if (first > all)
        first = all;
    if (slen > STR_PRE)
        slen = STR_PRE;
    struct iovec local[3] = {{w, (size_t)nw * 8}, {st, all}, {str_pre.buf, str ? slen : 0}};
    int n = nw;
    remote[n++] = (struct iovec){(void *)sp, first};
    if (first < all)
        remote[n++] = (struct iovec){(void *)(sp + first), all - first};
    if (str)
        remote[n++] = (struct iovec){(void *)str, slen};
    ssize_t got = process_vm_readv(tid, nw ? local : local + 1, nw ? 3 : 2, remote,
                                   (unsigned long)n, 0);
    ssize_t before = (ssize_t)(nw * 8 + all);
    str_pre.addr = str && got > before ? str : 0;
    str_pre.len = str && got > before ? (size_t)(got - before) : 0;
    return got > before ? before : got;
}

/* The verdict on a seccomp stop.  1: handled (the tracee resumed); 0: handed to Python with
 * ev->verdict (V_*) and, for a missed syscall, ev->site (0: not unwound yet), ev->cls, ev->top */
static int on_seccomp(thread *t, iotl_ev *ev)
{
    struct user_regs_struct r;
    ev->verdict = V_PY;
    if (ptrace(PTRACE_GETREGS, t->tid, NULL, &r) != 0)
        return 0;
    uint64_t nr = r.orig_rax, gen = lgen; /* gen: the descriptors as they are at the entry */
    if (nr < NR_MAX && nrs[nr].fdop)
        lgen++; /* whatever the verdict, this process's descriptors may change */
    if (nr == SYS_GETPID_ || nr == SYS_PTRACE_ || nr == SYS_PRCTL_ || nr == SYS_SECCOMP_ ||
        t->img < 0 || t->img >= nimages)
        return 0;
    const image *img = &images[t->img];
    uint64_t top = 0, sgen = 0, st[FIRST_MAX / 8];
    size_t st_len = 0, want = first_window(t->img, r.rip);
    uint64_t regs6[6] = {r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9};
    int8_t sa = nr < NR_MAX ? nrs[nr].strarg : -1;
    uint64_t str = sa >= 0 ? regs6[sa] : 0;
    str_pre.addr = 0;
    if (img->phase == PH_READY) {
        if (t->kind == T_SHIM || t->kind == T_HELPER) {
            t->counts[t->kind == T_SHIM ? C_SHIM : C_COVERED]++;
            cont(t->tid);
            return 1;
        }
        /* one read: the thread's marker, the shim's descriptor counter and the stack from sp
         * (its first word and the call site's chain: chain_of) */
        uint64_t w[2] = {0, 0};
        int nw = img->link ? 2 : 1;
        struct iovec remote[2 + 3] = {{(void *)(r.fs_base + (uint64_t)img->tls_off), 8},
                                      {(void *)(img->link + IOT_LINK_OFF_fdgen), 8}};
        ssize_t got = stack_read(t->tid, w, nw, remote, r.rsp, st, want, str);
        sgen = img->link && got >= 16 ? w[1] : NO_SGEN;
        st_len = got > 8 * nw ? (size_t)(got - 8 * nw) & ~(size_t)7 : 0;
        if (got >= 8) {
            top = st_len ? st[0] : 0;
            uint32_t busy = (uint32_t)w[0], inw = (uint32_t)(w[0] >> 32);
            if (t->kind == T_APP && ((busy && busy != BUSY_VFORK) || inw)) {
                t->counts[busy ? C_SHIM : C_COVERED]++;
                cont(t->tid);
                return 1;
            }
        }
    } else if (img->phase == PH_LAUNCH) {
        cont(t->tid);
        return 1;
    } else {
        if (img->ld_lo <= r.rip && r.rip < img->ld_hi) {
            t->counts[C_LOADER]++;
            cont(t->tid);
            return 1;
        }
        struct iovec remote[3];
        ssize_t got = stack_read(t->tid, NULL, 0, remote, r.rsp, st, want, str);
        st_len = got > 0 ? (size_t)got & ~(size_t)7 : 0;
        top = st_len ? st[0] : 0;
    }
    if (nr >= NR_MAX || !nrs[nr].in_table) {
        cont(t->tid);
        return 1;
    }
    /* the loader's I/O: before the shim; once it is ready, a dlopen libc makes of its own (NSS
     * modules, iconv's gconv modules) is libc-internal: its site says (iotl_site C_LOADER when
     * no libc function is under the loader's frames) */
    if (img->ld_lo <= r.rip && r.rip < img->ld_hi && img->phase != PH_READY) {
        t->counts[C_LOADER]++;
        cont(t->tid);
        return 1;
    }
    const nr_info *n = &nrs[nr];
    chain_key k;
    const site_ent *site =
        chain_of(t->tid, t->img, r.rip, r.rsp, top, st, st_len, &k) ? tab_get(&sites_t, &k)
                                                                    : NULL;
    ev->top = top;
    if (!site) {
        ev->verdict = V_NEW; /* a new call site: Python unwinds it, then records the syscall */
        ev->site = 0;
        ev->cls = C_BYPASS;
        return 0;
    }
    t->counts[site->cls]++;
    if (site->cls == C_LOADER) {
        cont(t->tid);
        return 1;
    }
    t->nr = (int)nr;
    t->site = site->site;
    t->cls = site->cls;
    uint64_t a[6] = {r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9};
    memcpy(t->args, a, sizeof a);
    t->plen = -1;
    t->fd = -1;
    t->hasfd = t->quiet = 0;
    t->alen = 0;
    if (n->mode == M_FAST) {
        if (n->fdarg >= 0) {
            t->hasfd = 1;
            t->fd = (int32_t)(uint32_t)a[n->fdarg];
            if (t->fd >= 0)
                fd_path(t, gen, sgen);
        }
    } else if (n->mode != M_PATH || !path_entry(t, n, img, gen, sgen)) {
        ev->verdict = V_REC;
        ev->site = site->site;
        ev->cls = site->cls;
        return 0;
    }
    t->t = (uint64_t)now_ns();
    t->pending = 1;
    resume(t->tid, PTRACE_SYSCALL);
    return 1;
}

/* A followed syscall's exit: its result is all it needs, one word (PTRACE_PEEKUSER, whose
 * result is the word: errno tells a failure), not the whole register set (GETREGS) */
static int on_sysexit(thread *t)
{
    uint64_t t_exit = (uint64_t)now_ns();
    errno = 0;
    long rax = ptrace(PTRACE_PEEKUSER, t->tid, offsetof(struct user_regs_struct, rax), NULL);
    if (errno)
        return 0;
    t->pending = 0;
    if (nrs[t->nr].mode == M_PATH)
        path_exit(t, &nrs[t->nr], (int64_t)rax);
    emit(t, 1, (int64_t)rax, t_exit);
    cont(t->tid);
    return 1;
}

/* ---- CPU placement ---------------------------------------------------------------------- */

/* A stop costs ~8 us when the stracer runs on the tracee's CPU and ~50 us from the other one
 * (docs/stracer.md, "Performance"): every FOLLOW_EVERY stops the stracer moves itself to the
 * CPU the stopped thread last ran on, within the CPUs it was allowed at the start.  The tracee's
 * affinity is never touched. */
#define FOLLOW_EVERY 64
static cpu_set_t allowed;
static int follow_on, cur_cpu = -1;
static unsigned follow_n;

static long long spin_ns;
static int spinning = 1;

void iotl_spin(long long ns)
{
    spin_ns = ns;
}

int iotl_follow(int on)
{
    follow_on = 0;
    if (!on)
        return 0;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0 || CPU_COUNT(&allowed) < 2)
        return 0;
    follow_on = 1;
    return 1;
}

/* the "processor" field (39th) of /proc/TID/stat */
static int last_cpu(int tid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    for (int field = 2; field < 39; field++) { /* ")" ends field 2 */
        p = strchr(p + 1, ' ');
        if (!p)
            return -1;
    }
    return atoi(p + 1);
}

static void follow(int tid)
{
    if (!follow_on || (++follow_n % FOLLOW_EVERY) != 0)
        return;
    int cpu = last_cpu(tid);
    if (cpu < 0 || cpu == cur_cpu || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed))
        return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (sched_setaffinity(0, sizeof one, &one) == 0)
        cur_cpu = cpu;
}

/* The verdict on the seccomp stop thread tid is in, for a thread Python has just made known
 * (iotl_thread): as iotl_run would have given it.  1: handled (resumed); 0: see ev. */
int iotl_seccomp(int tid, iotl_ev *ev)
{
    thread *t = th_find(tid);
    ev->verdict = V_PY;
    ev->tid = tid;
    if (!t || t->pending)
        return 0;
    return on_seccomp(t, ev);
}

/* Wait for the next stop Python must see (EV_STOP, ev filled), a batch to write (EV_BATCH),
 * no tracee left (EV_ECHILD) or a signal for the stracer (EV_EINTR). */
int iotl_run(iotl_ev *ev)
{
    for (;;) {
        if (batch.nrec && (batch.len > BATCH_CAP - BATCH_ROOM || batch.ntally >= TALLY_MAX ||
                           now_ns() - batch_t0 > BATCH_AGE_NS))
            return EV_BATCH;
        /* A hot loop's next stop comes within microseconds: poll for it (no sleep, no wake-up
         * of an idle vCPU).  A poll that times out stops the polling until a blocking wait is
         * again answered within spin_ns: a tracee that pauses costs one window, not one each
         * stop. */
        int st, tid = 0;
        long long t0 = spin_ns ? now_ns() : 0;
        if (spin_ns && spinning) {
            while ((tid = waitpid(-1, &st, __WALL | WNOHANG)) == 0 && now_ns() - t0 < spin_ns)
                sched_yield(); /* a tracee runnable on this CPU runs now, not at preemption */
            if (tid == 0)
                spinning = 0;
        }
        if (tid == 0) {
            tid = waitpid(-1, &st, __WALL);
            if (spin_ns && tid > 0 && now_ns() - t0 < spin_ns)
                spinning = 1;
        }
        if (tid < 0)
            return errno == EINTR ? EV_EINTR : EV_ECHILD;
        uint64_t tw = (uint64_t)now_ns(); /* the stop, as seen here: see emit_stop */
        ev->t = tw;
        if (WIFSTOPPED(st)) {
            thread *t = th_find(tid);
            int sig = (st >> 8) & 0xff, event = st >> 16;
            ev->verdict = V_PY;
            if (t && sig == SIGTRAP && event == PTRACE_EVENT_SECCOMP && !t->pending) {
                follow(tid);
                if (on_seccomp(t, ev)) {
                    emit_stop(tid, tw, resumed_at - tw);
                    continue;
                }
            } else if (t && sig == (SIGTRAP | 0x80) && t->pending) {
                if (on_sysexit(t)) {
                    emit_stop(tid, tw, resumed_at - tw);
                    continue;
                }
            }
        }
        lgen++; /* Python may see descriptors change (a missed open's exit, fork, exec...) */
        ev->tid = tid;
        ev->status = st;
        return EV_STOP;
    }
}
