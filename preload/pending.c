/* Outstanding asynchronous requests: posted by one call, completed by another (MPI_File_iwrite
 * then MPI_Wait, wrap_mpi.c; aio_write then aio_return, wrap_aio.c).  The posting wrapper adds
 * the request, keyed by its handle; the completing wrapper takes it out and writes the *_done
 * event from it.  A small array searched linearly: few requests are outstanding at a time.
 * Completions are collected in signal handlers too (aio_return is async-signal-safe: SIGEV_SIGNAL
 * handlers call it): a handler that interrupted its own thread inside the table finds it busy
 * (its call is then a plain one, untracked) rather than waiting forever for the lock its thread
 * holds, and the array grows by mmap, not by the malloc the handler may have interrupted. */
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

#define MAX_PENDING 65536

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static iot_pend *ents;
static int n, cap;

/* 0: this thread is inside the table already (a handler interrupted it there).  The flag is
 * set before the lock is taken and cleared after it is given back: a signal in between finds
 * the table busy, never the lock held by its own thread. */
static int lock_table(void)
{
    if (iot_t.pend_held)
        return 0;
    iot_t.pend_held = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    pthread_mutex_lock(&lock);
    return 1;
}

static void unlock_table(void)
{
    pthread_mutex_unlock(&lock);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    iot_t.pend_held = 0;
}

/* Room for twice the entries (16 at first), mapped: 0, else -1 (the request goes untracked). */
static int grow(void)
{
    size_t old = (size_t)cap * sizeof *ents, want = cap ? 2 * old : 16 * sizeof *ents;
    if (!iot_own_begin())
        return -1;
    void *p = ents ? (void *)syscall(SYS_mremap, ents, old, want, MREMAP_MAYMOVE)
                   : (void *)syscall(SYS_mmap, NULL, want, PROT_READ | PROT_WRITE,
                                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    iot_own_end();
    if (p == MAP_FAILED)
        return -1;
    ents = p;
    cap = (int)(want / sizeof *ents);
    return 0;
}
/* Per kind, read without the lock by every completion call: 0 (nothing outstanding) makes them
 * plain calls.  A request is added before its handle reaches the app, so a completion call on
 * it always sees a count > 0. */
static volatile int outstanding[IOT_PEND_KINDS];

static void count(int kind, int d)
{
    __atomic_add_fetch(&outstanding[kind], d, __ATOMIC_RELEASE);
}

static int find_locked(int kind, uintptr_t key);

void iot_pend_add(const iot_pend *e)
{
    if (!lock_table())
        return;
    /* the same handle again: the earlier request was completed and never collected (aio_return
     * is optional), so this one replaces it */
    int i = find_locked(e->kind, e->key);
    if (i >= 0) {
        ents[i] = *e;
        unlock_table();
        return;
    }
    if (n >= MAX_PENDING) { /* requests nobody collects: one of them goes */
        count(ents[0].kind, -1);
        ents[0] = ents[--n];
    }
    if (n == cap && grow() != 0) { /* not tracked: its bytes go unrecorded */
        unlock_table();
        return;
    }
    ents[n++] = *e;
    count(e->kind, 1);
    unlock_table();
}

static int find_locked(int kind, uintptr_t key)
{
    for (int i = 0; i < n; i++)
        if (ents[i].key == key && ents[i].kind == kind)
            return i;
    return -1;
}

int iot_pend_take(int kind, uintptr_t key, iot_pend *out)
{
    int found = 0;
    if (!lock_table())
        return 0;
    int i = find_locked(kind, key);
    if (i >= 0) {
        found = ents[i].gen == iot_p.gen; /* a parent's request, before a fork: not ours */
        if (found && out)
            *out = ents[i];
        ents[i] = ents[--n];
        count(kind, -1);
    }
    unlock_table();
    return found;
}

int iot_pend_peek(int kind, uintptr_t key, iot_pend *out)
{
    if (!lock_table())
        return 0;
    int i = find_locked(kind, key);
    int found = i >= 0 && ents[i].gen == iot_p.gen;
    if (found)
        *out = ents[i];
    unlock_table();
    return found;
}

int iot_pend_none(int kind)
{
    return IOT_LIKELY(__atomic_load_n(&outstanding[kind], __ATOMIC_ACQUIRE) == 0);
}

void iot_pend_fork_child(void)
{
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    lock = fresh; /* the child's only thread: a holder at the fork is gone */
}

void iot_pend_fill(iot_ev *ev, const iot_pend *e)
{
    iot_ev_fd(ev, e->fd);
    ev->path = e->path;
    if (e->asked >= 0)
        iot_ev_req(ev, e->asked);
    iot_ev_off(ev, e->off);
    iot_ev_aux2(ev, e->post_fn, (int64_t)e->t_post);
}
