/* posix_spawn's file actions: what the child does before its exec.  glibc's child runs them on
 * internal calls the shim never sees (a CLONE_VM|CLONE_VFORK child, inside the posix_spawn
 * wrapper).  Under the stracer they are that child's own syscalls (stracer/_loop.c T_VMCHILD).
 * With the shim alone, the posix_spawn_file_actions_add* wrappers keep what was asked (glibc's
 * list is opaque), and after the spawn the parent writes a log for the child (writer.c
 * iot_log_write_child) with one event per action: open (ret: the descriptor asked for),
 * dup2, close (EBADF for one not open), chdir, fchdir, close_range (addclosefrom_np).
 * A spawn that fails ran its actions up to the first one that failed (its errno is the spawn's),
 * and exited with 127: which one is found by replaying the child's descriptor table (dup2,
 * fchdir: EBADF) and by looking up paths without side effects (open, chdir: O_PATH); none found:
 * the exec failed.  The child's pid is the spawn's, or (a failed spawn, a NULL pid) the one
 * pid the kernel handed out meanwhile (ns_last_pid); another process created meanwhile makes it
 * unknown, and nothing is written. */
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

enum { A_OPEN, A_DUP2, A_CLOSE, A_CHDIR, A_FCHDIR, A_CLOSEFROM, A_OTHER };

typedef struct {
    int tag, fd, fd2, oflag;
    mode_t mode;
    int path; /* offset in the slot's names, -1: none */
} action;

#define SLOTS 16
#define ACTIONS 32
#define NAMES 4096

/* One posix_spawn_file_actions_t the app initialised, by address.  An object is changed by one
 * thread at a time (POSIX), so only claiming a slot is atomic. */
typedef struct {
    const void *fa;
    int n, lost;
    action a[ACTIONS];
    size_t used;
    char names[NAMES];
} actions;

static actions slots[SLOTS];

static actions *find(const void *fa)
{
    for (int i = 0; i < SLOTS; i++)
        if (__atomic_load_n(&slots[i].fa, __ATOMIC_ACQUIRE) == fa)
            return &slots[i];
    return NULL;
}

static void forget(const void *fa)
{
    actions *s = find(fa);
    if (s)
        __atomic_store_n(&s->fa, NULL, __ATOMIC_RELEASE);
}

static void add(const void *fa, int tag, int fd, int fd2, const char *path, int oflag,
                mode_t mode)
{
    actions *s = find(fa);
    if (!s)
        return;
    size_t len = path ? strlen(path) + 1 : 0;
    if (s->n >= ACTIONS || s->used + len > NAMES) {
        s->lost = 1;
        return;
    }
    action *a = &s->a[s->n++];
    *a = (action){tag, fd, fd2, oflag, mode, path ? (int)s->used : -1};
    if (path) {
        memcpy(s->names + s->used, path, len);
        s->used += len;
    }
}

IOT_API int posix_spawn_file_actions_init(posix_spawn_file_actions_t *fa)
{
    IOT_REAL(posix_spawn_file_actions_init);
    int r = real_posix_spawn_file_actions_init(fa);
    if (r == 0) {
        forget(fa); /* initialised again without a destroy */
        for (int i = 0; i < SLOTS; i++) {
            const void *none = NULL;
            actions *s = &slots[i];
            if (__atomic_load_n(&s->fa, __ATOMIC_RELAXED) == NULL &&
                __atomic_compare_exchange_n(&s->fa, &none, (const void *)fa, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_RELAXED)) {
                s->n = s->lost = 0;
                s->used = 0;
                break;
            }
        }
    }
    return r;
}

IOT_API int posix_spawn_file_actions_destroy(posix_spawn_file_actions_t *fa)
{
    IOT_REAL(posix_spawn_file_actions_destroy);
    forget(fa);
    return real_posix_spawn_file_actions_destroy(fa);
}

/* One file action: glibc's call, then, if it took it, the action noted for the child. */
#define FA_ADD(name, params, args, action)                                                    \
    IOT_API int name(posix_spawn_file_actions_t *fa, IOT_UNPAREN params)                      \
    {                                                                                         \
        IOT_REAL(name);                                                                       \
        int r = real_##name(fa, IOT_UNPAREN args);                                            \
        if (r == 0)                                                                           \
            add(fa, IOT_UNPAREN action);                                                      \
        return r;                                                                             \
    }
#define IOT_UNPAREN(...) __VA_ARGS__

FA_ADD(posix_spawn_file_actions_addopen, (int fd, const char *path, int oflag, mode_t mode),
       (fd, path, oflag, mode), (A_OPEN, fd, -1, path, oflag, mode))

FA_ADD(posix_spawn_file_actions_adddup2, (int fd, int newfd),
       (fd, newfd), (A_DUP2, fd, newfd, NULL, 0, 0))

FA_ADD(posix_spawn_file_actions_addclose, (int fd), (fd), (A_CLOSE, fd, -1, NULL, 0, 0))

FA_ADD(posix_spawn_file_actions_addchdir_np, (const char *path),
       (path), (A_CHDIR, -1, -1, path, 0, 0))

FA_ADD(posix_spawn_file_actions_addfchdir_np, (int fd), (fd), (A_FCHDIR, fd, -1, NULL, 0, 0))

FA_ADD(posix_spawn_file_actions_addclosefrom_np, (int from),
       (from), (A_CLOSEFROM, from, -1, NULL, 0, 0))

/* no I/O, but one of glibc's entries */
FA_ADD(posix_spawn_file_actions_addtcsetpgrp_np, (int fd), (fd), (A_OTHER, fd, -1, NULL, 0, 0))

/* The last pid the kernel handed out in this pid namespace; -1: unknown. */
static long last_pid(void)
{
    char buf[32];
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/sys/kernel/ns_last_pid",
                          O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    long n = syscall(SYS_read, fd, buf, sizeof buf - 1);
    iot_own_io(0, n);
    syscall(SYS_close, fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return strtol(buf, NULL, 10);
}

int iot_spawn_begin(const void *fap, iot_spawn *sp)
{
    const posix_spawn_file_actions_t *fa = fap;
    sp->acts = NULL;
    if (!fa || iot_stracing) /* the stracer sees the child's own syscalls */
        return 0;
    actions *s = find(fa);
    /* glibc's count of entries (a public field) must be ours: else they were made elsewhere */
    if (!s || s->lost || s->n != fa->__used || !s->n)
        return 0;
    sp->acts = s;
    sp->last = last_pid();
    return 1;
}

/* ---- the child's log ---- */

#define KIDS_FDS 64
#define STRS 64

typedef struct {
    char *p, *end;            /* records packed so far into buf, and buf's end */
    uint32_t str[STRS];       /* the log's strings (offsets in names): id = index + 1 */
    int nstr;
    size_t nused;
    char cwd[PATH_MAX];       /* the child's working directory ("": this process's) */
    struct { int fd, open, path; } fds[KIDS_FDS]; /* what its actions made of descriptors */
    int nfds;
    char names[STRS * 256];
    char paths[KIDS_FDS][PATH_MAX]; /* the text of the paths its descriptors were opened with */
    char buf[IOT_CHUNK_SIZE - 64];
} kid;

static uint32_t str_id(kid *k, const char *s)
{
    if (!s || !*s)
        return 0;
    size_t n = strlen(s);
    for (int i = 0; i < k->nstr; i++)
        if (!strcmp(k->names + k->str[i], s))
            return (uint32_t)i + 1;
    if (k->nstr == STRS || k->nused + n + 1 > sizeof k->names ||
        k->end - k->p < (ptrdiff_t)(n + 16))
        return 0;
    k->str[k->nstr] = (uint32_t)k->nused;
    memcpy(k->names + k->nused, s, n + 1);
    k->nused += n + 1;
    k->p = iot_pack_string(k->p, (uint32_t)k->nstr + 1, s, n);
    return (uint32_t)++k->nstr;
}

/* The child's descriptor fd: open or not, and its path (NULL: unknown). */
static int kid_fd(kid *k, int fd, const char **path)
{
    for (int i = k->nfds - 1; i >= 0; i--)
        if (k->fds[i].fd == fd) {
            *path = k->fds[i].path >= 0 ? k->paths[k->fds[i].path] : NULL;
            return k->fds[i].open;
        }
    uint32_t id = iot_fd_path(fd);
    *path = id ? iot_string(id) : NULL;
    return syscall(SYS_fcntl, fd, F_GETFD) >= 0;
}

static void kid_set(kid *k, int fd, int open, const char *path)
{
    if (k->nfds == KIDS_FDS)
        return;
    int slot = -1;
    if (path) {
        slot = k->nfds;
        snprintf(k->paths[slot], PATH_MAX, "%s", path);
    }
    k->fds[k->nfds].fd = fd;
    k->fds[k->nfds].open = open;
    k->fds[k->nfds++].path = slot;
}

/* path as the child resolves it (its cwd may be one of its chdir actions) into out. */
static const char *kid_path(kid *k, const char *path, char *out)
{
    char joined[PATH_MAX * 2];
    if (path[0] != '/' && k->cwd[0]) {
        snprintf(joined, sizeof joined, "%s/%s", k->cwd, path);
        path = joined;
    }
    return iot_abspath(AT_FDCWD, path, out, PATH_MAX) ? out : NULL;
}

/* Did this action fail with err, as far as can be told without doing it again? */
static int failed_here(kid *k, const action *a, const char *path, int err)
{
    const char *p;
    switch (a->tag) {
    case A_DUP2:
    case A_FCHDIR:
        return err == EBADF && !kid_fd(k, a->fd, &p);
    case A_CHDIR:
    case A_OPEN: {
        if (!path)
            return 0;
        int flags = O_PATH | O_CLOEXEC | (a->tag == A_CHDIR ? O_DIRECTORY : a->oflag & O_NOFOLLOW);
        int fd = (int)syscall(SYS_openat, AT_FDCWD, path, flags);
        int e = fd < 0 ? errno : 0;
        if (fd >= 0)
            syscall(SYS_close, fd);
        if (a->tag == A_CHDIR)
            return e == err;
        if (e == ENOENT && (a->oflag & O_CREAT)) { /* made if its directory is there */
            char dir[PATH_MAX];
            snprintf(dir, sizeof dir, "%s", path);
            char *slash = strrchr(dir, '/');
            if (slash)
                *(slash == dir ? slash + 1 : slash) = '\0';
            fd = (int)syscall(SYS_openat, AT_FDCWD, dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
            e = fd < 0 ? errno : 0;
            if (fd >= 0)
                syscall(SYS_close, fd);
            if (!e && err == EACCES)
                return syscall(SYS_faccessat, AT_FDCWD, dir, W_OK | X_OK) != 0;
            return e == err;
        }
        if (e)
            return e == err;
        if ((a->oflag & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
            return err == EEXIST;
        if (err == EACCES) {
            int acc = a->oflag & O_ACCMODE;
            int want = acc == O_RDONLY ? R_OK : acc == O_WRONLY ? W_OK : R_OK | W_OK;
            return syscall(SYS_faccessat, AT_FDCWD, path, want) != 0;
        }
        struct stat st;
        if (err == EISDIR && (a->oflag & O_ACCMODE) != O_RDONLY &&
            syscall(SYS_newfstatat, AT_FDCWD, path, &st, 0) == 0)
            return S_ISDIR(st.st_mode);
        return 0;
    }
    default:
        return 0;
    }
}

static void kid_event(kid *k, iot_ev *ev)
{
    if (k->end - k->p >= 256)
        k->p = iot_pack_event(k->p, ev);
}

/* The child's pid: the spawn's, else the one pid handed out since sp->last; -1: unknown. */
static long child_pid(const iot_spawn *sp, int r, const pid_t *pidp)
{
    if (r == 0 && pidp)
        return *pidp;
    long now = last_pid();
    return sp->last >= 0 && now == sp->last + 1 ? now : -1; /* else others were made meanwhile */
}

static kid *kid_new(void)
{
    static __thread kid *k; /* a few pages: not on an app thread's stack */
    if (!k && !(k = calloc(1, sizeof *k)))
        return NULL;
    memset(k, 0, offsetof(kid, names));
    k->p = k->buf;
    k->end = k->buf + sizeof k->buf;
    return k;
}

static void write_kid(kid *k, const actions *s, int r, long pid, uint64_t t);

void iot_spawn_end(iot_spawn *sp, int r, const pid_t *pidp, uint64_t t)
{
    kid *k;
    long pid;
    if (sp->acts && (pid = child_pid(sp, r, pidp)) >= 0 && (k = kid_new()))
        write_kid(k, sp->acts, r, pid, t);
}

/* popen's child (glibc 2.36 libio/iopopen.c): pipe2(O_CLOEXEC) takes the two lowest free
 * descriptors; the child's end (moved up with F_DUPFD_CLOEXEC when it is already the number the
 * child wants) is dup2'd onto the child's stdin or stdout, and the streams of earlier popens
 * still open are closed.  Those actions are glibc's own, on internal calls: they are rebuilt
 * here from the descriptors as they were, and kept only if the stream's is the one foreseen. */
#define POPENS 64
static int popen_fds[POPENS]; /* + 1: the descriptors of the popen streams not pclosed */

void iot_popen_track(int fd, int open)
{
    for (int i = 0; i < POPENS; i++) {
        int want = open ? 0 : fd + 1;
        if (__atomic_compare_exchange_n(&popen_fds[i], &want, open ? fd + 1 : 0, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            return;
    }
}

static int lowest_free(int from, int skip1, int skip2)
{
    for (int fd = from;; fd++)
        if (fd != skip1 && fd != skip2 && syscall(SYS_fcntl, fd, F_GETFD) < 0)
            return fd;
}

typedef struct {
    actions a;
    int parent_end, child_end;
} popen_kid;
static __thread popen_kid *po; /* a few pages: not on an app thread's stack */

int iot_popen_begin(const char *mode, iot_spawn *sp)
{
    sp->acts = NULL;
    if (iot_stracing || !mode || (!po && !(po = calloc(1, sizeof *po))))
        return 0;
    int reading = mode[0] == 'r', want = reading ? 1 : 0;
    int lo = lowest_free(0, -1, -1), hi = lowest_free(lo + 1, -1, -1);
    po->parent_end = reading ? lo : hi;
    po->child_end = reading ? hi : lo;
    if (po->child_end == want)
        po->child_end = lowest_free(0, lo, hi);
    actions *s = &po->a;
    s->n = 0;
    s->a[s->n++] = (action){A_DUP2, po->child_end, want, 0, 0, -1};
    for (int i = 0; i < POPENS && s->n < ACTIONS; i++) {
        int fd = __atomic_load_n(&popen_fds[i], __ATOMIC_ACQUIRE) - 1;
        if (fd >= 0 && fd != want)
            s->a[s->n++] = (action){A_CLOSE, fd, -1, 0, 0, -1};
    }
    sp->acts = s;
    sp->last = last_pid();
    return 1;
}

void iot_popen_end(iot_spawn *sp, int fd, uint64_t t)
{
    kid *k;
    long pid;
    if (!sp->acts || fd != po->parent_end || (pid = child_pid(sp, 1, NULL)) < 0 || !(k = kid_new()))
        return;
    char link[64], pipe[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    long n = syscall(SYS_readlinkat, AT_FDCWD, link, pipe, sizeof pipe - 1);
    if (n > 0) {
        pipe[n] = '\0';
        kid_set(k, po->child_end, 1, pipe); /* the other end of the stream's pipe */
    }
    write_kid(k, sp->acts, 0, pid, t);
}

static void write_kid(kid *k, const actions *s, int r, long pid, uint64_t t)
{
    int blamed = 0;
    for (int i = 0; i < s->n && !blamed; i++) {
        const action *a = &s->a[i];
        char abs[PATH_MAX];
        const char *path = a->path >= 0 ? kid_path(k, s->names + a->path, abs) : NULL;
        const char *fdp = NULL;
        iot_ev ev = {.t0 = t, .t1 = t, .fd = a->fd};
        ev.has = IOT_HAS_FD;
        if (r && failed_here(k, a, path, r)) {
            ev.ret = -1;
            ev.err = r;
            blamed = 1;
        }
        switch (a->tag) {
        case A_OPEN:
            ev.fn = IOT_FN_open;
            ev.path = str_id(k, path);
            iot_ev_flags(&ev, a->oflag);
            if (a->oflag & O_CREAT)
                iot_ev_mode(&ev, a->mode);
            if (!blamed) {
                ev.ret = a->fd;
                kid_set(k, a->fd, 1, path);
            } else {
                ev.has &= ~IOT_HAS_FD;
            }
            break;
        case A_DUP2:
            ev.fn = IOT_FN_dup2;
            kid_fd(k, a->fd, &fdp);
            ev.path = str_id(k, fdp);
            iot_ev_aux(&ev, a->fd2);
            if (!blamed) {
                ev.ret = a->fd2;
                kid_set(k, a->fd2, 1, fdp);
            }
            break;
        case A_CLOSE:
            ev.fn = IOT_FN_close;
            if (!kid_fd(k, a->fd, &fdp)) {
                ev.ret = -1;
                ev.err = EBADF;
            }
            ev.path = str_id(k, fdp);
            kid_set(k, a->fd, 0, NULL);
            break;
        case A_CHDIR:
            ev.fn = IOT_FN_chdir;
            ev.has = 0;
            ev.path = str_id(k, path);
            if (!blamed && path)
                snprintf(k->cwd, sizeof k->cwd, "%s", path);
            break;
        case A_FCHDIR:
            ev.fn = IOT_FN_fchdir;
            kid_fd(k, a->fd, &fdp);
            ev.path = str_id(k, fdp);
            if (!blamed && fdp)
                snprintf(k->cwd, sizeof k->cwd, "%s", fdp);
            break;
        case A_CLOSEFROM:
            ev.fn = IOT_FN_close_range; /* glibc's closefrom: close_range(from, ~0U, 0) */
            iot_ev_aux(&ev, 0xffffffffu);
            iot_ev_flags(&ev, 0);
            break;
        default:
            continue;
        }
        kid_event(k, &ev);
    }
    if (r && k->end - k->p >= 32) /* glibc's child exits with 127 when the spawn fails */
        k->p = iot_pack_exit(k->p, t, 127);
    iot_log_write_child((pid_t)pid, t, k->buf, (size_t)(k->p - k->buf));
}

void iot_kid_log(pid_t pid, uint64_t t, const iot_ev *evs, int n, int exited, int status,
                 const iot_kid_kio *kio)
{
    kid *k = kid_new();
    if (!k)
        return;
    uint64_t sums[IOT_KIO_SUMS_N] = {0}, pending[2] = {0, 0};
    for (int i = 0; i < n; i++) {
        if (iot_kernel_io[evs[i].fn] && !iot_kio_mode_in(iot_kernel_io[evs[i].fn]) &&
            evs[i].t1 <= kio->t)
            iot_kio_add(sums, &evs[i], iot_kernel_io[evs[i].fn]);
        iot_ev ev = evs[i];
        ev.path = ev.path ? str_id(k, iot_string(ev.path)) : 0; /* ids of the child's log */
        ev.path2 = ev.path2 ? str_id(k, iot_string(ev.path2)) : 0;
        ev.stack = 0;
        ev.data_n = 0;
        kid_event(k, &ev);
    }
    /* the child's counters before its exec or _exit: the kernel adds them to its parent's at
     * the wait, and the analyzer takes them off there (src/iotrace/kio.py) */
    if (kio->when && k->end - k->p >= 256)
        k->p = iot_pack_kio(k->p, kio->when, kio->t, kio->v, kio->own, pending, sums,
                            (uint64_t[IOT_KIO_URING_N]){0}, NULL, 0);
    if (exited && k->end - k->p >= 32)
        k->p = iot_pack_exit(k->p, n ? evs[n - 1].t1 : t, status);
    iot_log_write_child(pid, t, k->buf, (size_t)(k->p - k->buf));
}
