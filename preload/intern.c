/* Strings (paths) and stacks are written once per process and referred to by id.  The tables
 * are process-wide behind one mutex; a record defining an id is committed before the id is
 * published, so no event can name a definition a crash lost.  Stacks also have a per-thread
 * cache, so a hot call site costs no lock. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

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

/* The tables' memory is mmap'd, not malloc'd: events are recorded in the app's signal
 * handlers too, and a handler that interrupted the app's malloc (its arena locked) waited
 * forever in the shim's malloc (a SIGALRM handler's write to a new path: the app hung).  Under
 * the app's seccomp filter the shim makes no syscall of its own: malloc's heap then, as before.
 * Each block starts with its size plus one if mapped, 2 if carved from `first`, 0 if malloc'd: the tables' and the
 * text's first blocks (120 KiB) come from one mapping, one mmap a process, not four. */
#define FIRST_SIZE (128u << 10)
static char *first;
static size_t first_used;

static void *get(size_t n)
{
    size_t size = (n + 16 + 4095) & ~(size_t)4095, need = (n + 16 + 15) & ~(size_t)15;
    uint64_t *b;
    if (!first && iot_own_begin()) {
        b = (uint64_t *)syscall(SYS_mmap, NULL, FIRST_SIZE, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        iot_own_end();
        first = b == MAP_FAILED ? NULL : (char *)b;
        first_used = 0;
    }
    if (first && first_used + need <= FIRST_SIZE) {
        b = (uint64_t *)(first + first_used);
        first_used += need;
        b[0] = 2;
    } else if (iot_own_begin()) {
        b = (uint64_t *)syscall(SYS_mmap, NULL, size, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        iot_own_end();
        if (b == MAP_FAILED)
            return NULL;
        b[0] = size | 1;
    } else if ((b = calloc(1, n + 16))) {
        b[0] = 0;
    } else {
        return NULL;
    }
    return b + 2;
}

static void put(void *p)
{
    if (!p)
        return;
    uint64_t *b = (uint64_t *)p - 2;
    if (b[0] == 2) /* part of `first`: unmapped with it (iot_intern_reset) */
        return;
    if (b[0] & 1)
        syscall(SYS_munmap, b, (size_t)(b[0] & ~(uint64_t)1));
    else
        free(b);
}

/* The strings' text: carved from blocks of 64 KiB (one of its own if longer), kept until the
 * tables are reset. */
static char *blocks; /* the newest block; its first word links the one before */
static size_t block_used, block_size;

static char *text(size_t n)
{
    size_t need = (n + 8) & ~(size_t)7;
    if (!blocks || block_used + need > block_size) {
        size_t size = need + 8 > 65536 - 16 ? need + 8 : 65536 - 16;
        char *b = get(size);
        if (!b)
            return NULL;
        memcpy(b, &blocks, sizeof blocks);
        blocks = b;
        block_used = 8;
        block_size = size;
    }
    char *r = blocks + block_used;
    block_used += need;
    return r;
}

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
    slot *s = get(cap * sizeof *s);
    if (!s)
        return -1;
    for (uint32_t i = 0; i < t->cap; i++)
        if (t->slots[i].hash) {
            uint32_t j = (uint32_t)t->slots[i].hash & (cap - 1);
            while (s[j].hash)
                j = (j + 1) & (cap - 1);
            s[j] = t->slots[i];
        }
    put(t->slots);
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
            if (next_string >= by_id_cap) {
                uint32_t cap = by_id_cap ? by_id_cap * 2 : 1024;
                char **b = get(cap * sizeof *b);
                if (b) {
                    if (by_id)
                        memcpy(b, by_id, by_id_cap * sizeof *b);
                    put(by_id);
                    by_id = b;
                    by_id_cap = cap;
                }
            }
            char *copy = next_string < by_id_cap ? text(n + 1) : NULL;
            char *p = copy && next_string < by_id_cap ? iot_log_reserve(n + 16) : NULL;
            if (p) {
                memcpy(copy, s, n);
                copy[n] = '\0';
                iot_log_commit(iot_pack_string(p, next_string, s, n));
                by_id[next_string] = copy;
                *e = (slot){h, next_string++, (uint32_t)n, copy};
                strings.count++;
                id = e->id;
            } else if (copy) {
                block_used -= (n + 9) & ~(size_t)7; /* the block's last: given back */
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
    while (blocks) {
        char *prev;
        memcpy(&prev, blocks, sizeof prev);
        put(blocks);
        blocks = prev;
    }
    block_used = block_size = 0;
    put(strings.slots);
    put(stacks.slots);
    put(by_id);
    if (first)
        syscall(SYS_munmap, first, (size_t)FIRST_SIZE);
    first = NULL;
    first_used = 0;
    by_id = NULL;
    by_id_cap = 0;
    strings = (table){0};
    stacks = (table){0};
    next_string = next_stack = 1;
}
