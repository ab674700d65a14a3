/* Strings (paths) and stacks are written once per process and referred to by id.  The tables
 * are process-wide behind one mutex; a record defining an id is committed before the id is
 * published, so no event can name a definition a crash lost.  Stacks also have a per-thread
 * cache, so a hot call site costs no lock. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"

typedef struct {
    uint64_t hash;
    uint32_t id;
    uint32_t len;
    char *s; /* NULL for stacks */
} slot;

typedef struct {
    slot *slots;
    uint32_t cap, count;
} table;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static table strings, stacks;
static uint32_t next_string = 1, next_stack = 1;
static char **by_id; /* string id -> text */
static uint32_t by_id_cap;

static uint64_t hash_bytes(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h ? h : 1;
}

static int grow(table *t)
{
    uint32_t cap = t->cap ? t->cap * 2 : 1024;
    slot *s = calloc(cap, sizeof *s);
    if (!s)
        return -1;
    for (uint32_t i = 0; i < t->cap; i++)
        if (t->slots[i].hash) {
            uint32_t j = (uint32_t)t->slots[i].hash & (cap - 1);
            while (s[j].hash)
                j = (j + 1) & (cap - 1);
            s[j] = t->slots[i];
        }
    free(t->slots);
    t->slots = s;
    t->cap = cap;
    return 0;
}

/* The slot holding (hash, s/n), or the empty slot where it belongs. */
static slot *find(table *t, uint64_t h, const char *s, size_t n)
{
    uint32_t j = (uint32_t)h & (t->cap - 1);
    for (;; j = (j + 1) & (t->cap - 1)) {
        slot *e = &t->slots[j];
        if (!e->hash || (e->hash == h && (!s || (e->len == n && !memcmp(e->s, s, n)))))
            return e;
    }
}

uint32_t iot_intern_string(const char *s, size_t n)
{
    uint64_t h = hash_bytes(s, n);
    uint32_t id = 0;
    pthread_mutex_lock(&lock);
    if ((strings.count + 1) * 2 <= strings.cap || grow(&strings) == 0) {
        slot *e = find(&strings, h, s, n);
        if (e->hash) {
            id = e->id;
        } else {
            char *copy = malloc(n + 1);
            if (copy && next_string >= by_id_cap) {
                uint32_t cap = by_id_cap ? by_id_cap * 2 : 1024;
                char **b = realloc(by_id, cap * sizeof *b);
                if (b) {
                    by_id = b;
                    by_id_cap = cap;
                }
            }
            char *p = copy && next_string < by_id_cap ? iot_log_reserve(n + 16) : NULL;
            if (p) {
                memcpy(copy, s, n);
                copy[n] = '\0';
                iot_log_commit(iot_pack_string(p, next_string, s, n));
                by_id[next_string] = copy;
                *e = (slot){h, next_string++, (uint32_t)n, copy};
                strings.count++;
                id = e->id;
            } else {
                free(copy);
            }
        }
    }
    pthread_mutex_unlock(&lock);
    return id;
}

const char *iot_string(uint32_t id)
{
    pthread_mutex_lock(&lock);
    const char *r = id && id < next_string ? by_id[id] : NULL;
    pthread_mutex_unlock(&lock);
    return r;
}

/* Return addresses are whole words: mix a word at a time (byte-wise FNV over 64 bytes cost
 * ~70 ns per event at --stack 8, measured with bench/). */
static uint64_t hash_words(const uintptr_t *w, int n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n;
    for (int i = 0; i < n; i++) {
        h ^= (uint64_t)w[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h ? h : 1;
}

uint32_t iot_intern_stack(const uintptr_t *pcs, int n)
{
    uint64_t h = hash_words(pcs, n);
    /* 64-bit hashes of return-address lists: a collision would need ~2^32 distinct stacks. */
    unsigned c = (unsigned)(h >> 7) & 63;
    if (iot_t.stack_cache_hash[c] == (uint32_t)h && iot_t.stack_cache_id[c])
        return iot_t.stack_cache_id[c];
    uint32_t id = 0;
    pthread_mutex_lock(&lock);
    if ((stacks.count + 1) * 2 <= stacks.cap || grow(&stacks) == 0) {
        slot *e = find(&stacks, h, NULL, 0);
        if (e->hash) {
            id = e->id;
        } else {
            char *p = iot_log_reserve(16 + (size_t)n * 9);
            if (p) {
                iot_log_commit(iot_pack_stack(p, next_stack, pcs, n));
                *e = (slot){h, next_stack++, 0, NULL};
                stacks.count++;
                id = e->id;
            }
        }
    }
    pthread_mutex_unlock(&lock);
    iot_t.stack_cache_hash[c] = (uint32_t)h;
    iot_t.stack_cache_id[c] = id;
    return id;
}

/* In a forked child, first of all: a parent thread may have held the lock at the fork, and
 * iot_fd_fork_prepare reads the old strings (seen: an mpirun child waiting forever). */
void iot_intern_fork_child(void)
{
    pthread_mutex_init(&lock, NULL);
}

/* In a forked child: the new log starts with no definitions. */
void iot_intern_reset(void)
{
    pthread_mutex_init(&lock, NULL);
    for (uint32_t i = 0; i < strings.cap; i++)
        free(strings.slots[i].s);
    free(strings.slots);
    free(stacks.slots);
    free(by_id);
    by_id = NULL;
    by_id_cap = 0;
    strings = (table){0};
    stacks = (table){0};
    next_string = next_stack = 1;
}
