/* Wrappers: memory mappings, in the shapes of shim.h.
 *
 * Only file mappings are I/O: mmap of a file is logged, anonymous mmap is not (glibc's malloc
 * maps through internal calls the shim never sees anyway, but an app or an allocator library
 * calling mmap(MAP_ANONYMOUS) through the PLT would flood the log).  A process-wide table of the
 * file mappings made through the wrapper (address range -> path, file offset) lets munmap,
 * msync and mremap be logged -- with the path and the file offset of the range they touch --
 * exactly when they touch one; on anything else they pass straight through.
 *
 * While the shim is busy (its own work, libunwind's msync/mmap) the wrappers pass straight
 * through and leave the table alone: those ranges are never in it.  The table is only touched
 * with `busy` set, so a signal handler interrupting an update passes through too, instead of
 * waiting for a lock its own thread holds. */
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shim.h"
#include "sysraw.h"

typedef struct {
    uintptr_t lo, hi; /* [lo, hi), whole pages */
    int64_t off;      /* file offset at lo */
    uint32_t path;    /* string id, valid in generation gen */
    unsigned gen;
    char *name;       /* the path's text, kept across fork (a child's log numbers strings anew) */
} mapping;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static mapping *maps; /* sorted by lo, never overlapping */
static size_t nmaps, cap;
static uintptr_t page = 4096;
static __thread int fork_locked __attribute__((tls_model("initial-exec"))); /* this thread forks */

static uintptr_t pages(size_t len)
{
    return ((uintptr_t)len + page - 1) & ~(page - 1);
}

/* Index of the first mapping ending after a. */
static size_t first_after(uintptr_t a)
{
    size_t lo = 0, hi = nmaps;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (maps[mid].hi > a)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static int insert_at(size_t i, mapping m)
{
    if (nmaps == cap) {
        size_t ncap = cap ? cap * 2 : 64;
        mapping *n = realloc(maps, ncap * sizeof *n);
        if (!n)
            return -1;
        maps = n;
        cap = ncap;
    }
    memmove(maps + i + 1, maps + i, (nmaps - i) * sizeof *maps);
    maps[i] = m;
    __atomic_store_n(&nmaps, nmaps + 1, __ATOMIC_RELAXED);
    return 0;
}

/* The range [lo, hi) is no longer (or no longer only) what the table says: cut it out. */
static void cut(uintptr_t lo, uintptr_t hi)
{
    size_t i = first_after(lo);
    while (i < nmaps && maps[i].lo < hi) {
        mapping *m = &maps[i];
        if (m->lo < lo && m->hi > hi) { /* a hole in the middle: two mappings remain */
            mapping right = *m;
            right.off += (int64_t)(hi - m->lo);
            right.lo = hi;
            right.name = m->name ? strdup(m->name) : NULL;
            m->hi = lo;
            if (insert_at(i + 1, right) != 0)
                free(right.name);
            return;
        }
        if (m->lo < lo) {
            m->hi = lo;
            i++;
        } else if (m->hi > hi) {
            m->off += (int64_t)(hi - m->lo);
            m->lo = hi;
            return;
        } else {
            free(m->name);
            memmove(m, m + 1, (nmaps - i - 1) * sizeof *maps);
            __atomic_store_n(&nmaps, nmaps - 1, __ATOMIC_RELAXED);
        }
    }
}

static void add(uintptr_t lo, uintptr_t hi, int64_t off, uint32_t path)
{
    cut(lo, hi); /* MAP_FIXED replaced what was there, or an unmap the shim did not see */
    insert_at(first_after(lo), (mapping){lo, hi, off, path, iot_p.gen, NULL});
}

/* The first mapping [a, a + len) touches: its path (current string id) and the file offset at
 * a.  0 if none. */
static int find(uintptr_t a, size_t len, uint32_t *path, int64_t *off)
{
    size_t i = first_after(a);
    if (i >= nmaps || maps[i].lo >= a + pages(len))
        return 0;
    mapping *m = &maps[i];
    if (m->gen != iot_p.gen) {
        m->path = m->name ? iot_intern_string(m->name, strlen(m->name)) : 0;
        m->gen = iot_p.gen;
    }
    *path = m->path;
    *off = m->off + (int64_t)(a > m->lo ? a - m->lo : 0);
    return 1;
}

/* For the wrappers' untraced paths: 0 if the table must be left alone (not tracing, or busy). */
static int table_lock(void)
{
    if (iot_p.state != IOT_READY || iot_t.busy)
        return 0;
    iot_t.busy = 1;
    pthread_mutex_lock(&lock);
    return 1;
}

static void table_unlock(void)
{
    pthread_mutex_unlock(&lock);
    iot_t.busy = 0;
}

/* A range mapped or unmapped without an event: whatever the table said of it is stale. */
static void forget(void *addr, size_t len)
{
    if (!__atomic_load_n(&nmaps, __ATOMIC_RELAXED))
        return;
    int e = errno;
    if (table_lock()) {
        cut((uintptr_t)addr, (uintptr_t)addr + pages(len));
        table_unlock();
    }
    errno = e;
}

/* Whether [addr, addr + len) touches a file mapping: worth an event. */
static int tracked(void *addr, size_t len)
{
    if (!__atomic_load_n(&nmaps, __ATOMIC_RELAXED))
        return 0;
    int e = errno, hit = 0;
    if (table_lock()) {
        size_t i = first_after((uintptr_t)addr);
        hit = i < nmaps && maps[i].lo < (uintptr_t)addr + pages(len);
        table_unlock();
    }
    errno = e;
    return hit;
}

/* Fork holds the table still and gives each mapping its text, so the child can name it in a
 * log whose string ids start afresh. */
static void before_fork(void)
{
    fork_locked = 0;
    if (iot_p.state != IOT_READY || iot_t.busy)
        return;
    iot_t.busy = 1;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nmaps; i++)
        if (!maps[i].name && maps[i].gen == iot_p.gen) {
            const char *s = iot_string(maps[i].path);
            maps[i].name = s ? strdup(s) : NULL;
        }
    fork_locked = 1;
}

static void after_fork(void)
{
    if (!fork_locked)
        return;
    fork_locked = 0;
    pthread_mutex_unlock(&lock);
    iot_t.busy = 0;
}

__attribute__((constructor)) static void mmap_start(void)
{
    long p = sysconf(_SC_PAGESIZE);
    if (p > 0)
        page = (uintptr_t)p;
    pthread_atfork(before_fork, after_fork, after_fork);
}

/* path = the file of fd, req = length, offset = file offset, flags, mode = prot, ret = the
 * address (-1 for MAP_FAILED). */
/* A mapping made untraced (anonymous, or the shim busy): what the table said of it is stale. */
static void *fresh(void *r, size_t len)
{
    if (r != MAP_FAILED)
        forget(r, len);
    return r;
}

/* May a mapping carry the cookie as its hint (sysraw.h)?  Asked once per process: a hint
 * beyond the address space must leave the placement as for NULL, which 5-level paging does not
 * (such a hint opens the 57-bit space): an anonymous mapping with the hint shows it. */
int iot_mmap_hint_ok(void)
{
    static int ok; /* 0 not asked, 1 yes, -1 no */
    if (IOT_UNLIKELY(!ok)) {
        void *p = (void *)syscall(SYS_mmap, 1UL << 63, page, PROT_NONE,
                                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ok = p != MAP_FAILED && (uintptr_t)p < (1UL << 47) ? 1 : -1;
        if (p != MAP_FAILED)
            syscall(SYS_munmap, p, page);
    }
    return ok > 0;
}

IOT_API void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    IOT_REAL(mmap);
    iot_arena_yield(addr, len); /* an address in the stdio arena's unused part: the app's */
    if (flags & MAP_ANONYMOUS)
        return fresh(real_mmap(addr, len, prot, flags, fd, off), len);
    IOT_ENTER(IOT_FN_mmap, fresh(real_mmap(addr, len, prot, flags, fd, off), len));
    IOT_CALL(void *,
             iot_stracing && iot_mmap_hintable(addr, prot, flags, fd)
                 ? iot_sysraw_mmap(len, prot, flags, fd, off)
                 : real_mmap(addr, len, prot, flags, fd, off),
             (int64_t)(intptr_t)r, r == MAP_FAILED);
    iot_ev_fd(&ev, fd);
    iot_ev_fdpath(&ev, fd);
    iot_ev_req(&ev, (int64_t)len);
    iot_ev_off(&ev, off);
    iot_ev_flags(&ev, flags);
    iot_ev_mode(&ev, prot);
    iot_ev_aux(&ev, (int64_t)(uintptr_t)addr); /* the app's hint, not the cookie's */
    if (r != MAP_FAILED) {
        pthread_mutex_lock(&lock);
        add((uintptr_t)r, (uintptr_t)r + pages(len), off, ev.path);
        pthread_mutex_unlock(&lock);
    }
    IOT_LEAVE(r);
}
IOT_ALIAS(mmap, mmap64);

/* The path and file offset of the mapping [addr, addr + len) touches; req, aux = addr.  Under
 * the lock; 0 if no mapping (another thread unmapped it meanwhile). */
static int range_event(iot_ev *ev, void *addr, size_t len, int64_t req)
{
    uint32_t path;
    int64_t off;
    int hit = find((uintptr_t)addr, len, &path, &off);
    if (hit) {
        ev->path = path;
        iot_ev_off(ev, off);
    }
    iot_ev_req(ev, req);
    iot_ev_aux(ev, (int64_t)(uintptr_t)addr);
    return hit;
}

/* munmap and mremap unmap and update the table in one step under the lock: else another thread's
 * mmap could be handed the freed range, and record it, before this one cuts it out.  busy is
 * set first: a signal handler must not wait for the lock its own thread holds. */
static void hold(void)
{
    iot_t.busy = 1;
    pthread_mutex_lock(&lock);
}

/* munmap of a file mapping: path and file offset of the range's first mapping, req = length,
 * aux = the address. */
IOT_API int munmap(void *addr, size_t len)
{
    IOT_REAL(munmap);
    if (!tracked(addr, len))
        return real_munmap(addr, len);
    IOT_ENTER(IOT_FN_munmap, real_munmap(addr, len)); /* a stale entry left: cut by the next mmap */
    hold();
    IOT_CALL(int, real_munmap(addr, len), r, r < 0);
    range_event(&ev, addr, len, (int64_t)len);
    if (r == 0)
        cut((uintptr_t)addr, (uintptr_t)addr + pages(len));
    pthread_mutex_unlock(&lock);
    IOT_LEAVE(r);
}

/* msync of a file mapping: as munmap, and flags.  It may write back for long: no lock held. */
IOT_API int msync(void *addr, size_t len, int flags)
{
    IOT_REAL(msync);
    if (!tracked(addr, len))
        return real_msync(addr, len, flags);
    IOT_ENTER(IOT_FN_msync, real_msync(addr, len, flags));
    IOT_CALL(int, real_msync(addr, len, flags), r, r < 0);
    pthread_mutex_lock(&lock);
    range_event(&ev, addr, len, (int64_t)len);
    pthread_mutex_unlock(&lock);
    iot_ev_flags(&ev, flags);
    IOT_LEAVE(r);
}

/* mremap of a file mapping: path and file offset of the old range, req = the new length,
 * mode = the old one, flags, ret = the new address, aux = the old one.  The table follows the move. */
IOT_API void *mremap(void *addr, size_t len, size_t newlen, int flags, ...)
{
    IOT_REAL(mremap);
    void *want = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        want = va_arg(ap, void *);
        va_end(ap);
        iot_arena_yield(want, newlen);
    }
    if (!tracked(addr, len))
        return fresh(real_mremap(addr, len, newlen, flags, want), newlen);
    IOT_ENTER(IOT_FN_mremap, fresh(real_mremap(addr, len, newlen, flags, want), newlen));
    hold();
    IOT_CALL(void *, real_mremap(addr, len, newlen, flags, want), (int64_t)(intptr_t)r,
             r == MAP_FAILED);
    int hit = range_event(&ev, addr, len, (int64_t)newlen);
    iot_ev_flags(&ev, flags);
    iot_ev_mode(&ev, (int64_t)len); /* the old length, strace's second argument */
    if (r != MAP_FAILED) {
        if (!(flags & MREMAP_DONTUNMAP))
            cut((uintptr_t)addr, (uintptr_t)addr + pages(len));
        if (hit)
            add((uintptr_t)r, (uintptr_t)r + pages(newlen), ev.off, ev.path);
        else
            cut((uintptr_t)r, (uintptr_t)r + pages(newlen));
    }
    pthread_mutex_unlock(&lock);
    IOT_LEAVE(r);
}
