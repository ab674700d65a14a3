/* Outstanding asynchronous requests: posted by one call, completed by another (MPI_File_iwrite
 * then MPI_Wait, wrap_mpi.c; aio_write then aio_return, wrap_aio.c).  The posting wrapper adds
 * the request, keyed by its handle; the completing wrapper takes it out and writes the *_done
 * event from it.  A small array searched linearly: few requests are outstanding at a time. */
#include <pthread.h>
#include <stdlib.h>

#include "shim.h"

#define MAX_PENDING 65536

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static iot_pend *ents;
static int n, cap;
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
    pthread_mutex_lock(&lock);
    /* the same handle again: the earlier request was completed and never collected (aio_return
     * is optional), so this one replaces it */
    int i = find_locked(e->kind, e->key);
    if (i >= 0) {
        ents[i] = *e;
        pthread_mutex_unlock(&lock);
        return;
    }
    if (n >= MAX_PENDING) { /* requests nobody collects: one of them goes */
        count(ents[0].kind, -1);
        ents[0] = ents[--n];
    }
    if (n == cap) {
        int ncap = cap ? 2 * cap : 16;
        iot_pend *p = realloc(ents, (size_t)ncap * sizeof *p);
        if (!p) { /* not tracked: its bytes go unrecorded */
            pthread_mutex_unlock(&lock);
            return;
        }
        ents = p;
        cap = ncap;
    }
    ents[n++] = *e;
    count(e->kind, 1);
    pthread_mutex_unlock(&lock);
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
    pthread_mutex_lock(&lock);
    int i = find_locked(kind, key);
    if (i >= 0) {
        found = ents[i].gen == iot_p.gen; /* a parent's request, before a fork: not ours */
        if (found && out)
            *out = ents[i];
        ents[i] = ents[--n];
        count(kind, -1);
    }
    pthread_mutex_unlock(&lock);
    return found;
}

int iot_pend_peek(int kind, uintptr_t key, iot_pend *out)
{
    pthread_mutex_lock(&lock);
    int i = find_locked(kind, key);
    int found = i >= 0 && ents[i].gen == iot_p.gen;
    if (found)
        *out = ents[i];
    pthread_mutex_unlock(&lock);
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
