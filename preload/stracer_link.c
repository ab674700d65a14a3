/* The shim's side of the stracer (docs/stracer.md).
 *
 * Hello: at start-up the shim makes one getpid syscall carrying a magic number and the address
 * of `iot_link`.  The stracer's seccomp filter stops exactly that call, so the stracer learns,
 * synchronously and before any wrapper runs, where to read this process's per-thread markers
 * (iot_t.busy, iot_t.in_wrapper at fs_base + tls_off) and where the fd-message counter is.
 *
 * fd messages: when a syscall the shim missed changes the descriptor table (a raw openat, close,
 * dup...), the stracer queues a message for this process and, before it resumes the tracee,
 * raises iot_link.posted with process_vm_writev.  Every fd lookup compares posted with seen (one
 * load, fdtable.c); when they differ the shim fetches: a getpid with the same magic and
 * IOT_LINK_FETCH, which the filter stops too; at that stop the stracer writes the messages after
 * `seen` into `box` and resumes.  A wrapped call on an fd from a raw openat the line before
 * always sees the mapping.
 *
 * The channel is the ptrace relation itself: no socket, no name, no descriptor, no thread.  Only
 * the process's tracer sees its syscalls stop, and only a process allowed to ptrace it (its own
 * user or root, who could rewrite its memory anyway) can write into it; another user has nothing
 * to connect to, read or squat.  The box is still checked field by field before anything in it
 * is used: a malformed message is dropped (with every one after it in its box: the framing is
 * lost) and counted in iot_link.bad, which the stracer puts in the trace; nothing is copied
 * beyond a length that was checked. */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"
#include "sysraw.h"

long iot_cookie;
int iot_stracing;
iot_link_t iot_link = {.magic = IOT_LINK_MAGIC, .version = IOT_LINK_VERSION};

/* What the stracer writes at a fetch (stracer/tracer.py, _fetch): a header, then `count`
 * messages, each its size (u32, written by the stracer's framing) and that many bytes: the fixed
 * part and the path (no NUL, only for op 1).  Packed, little-endian. */
#define BOX_MAGIC IOT_BOX_MAGIC
#define BOX_SIZE IOT_BOX_SIZE
#define PATH_MAX_ 4096
/* format.py's BOX_HEAD and BOX_MSG */
typedef struct {
    IOT_BOX_HEAD_FIELDS(IOT_LINK_DECL)
} box_head;
typedef struct {
    IOT_BOX_MSG_FIELDS(IOT_LINK_DECL)
} box_msg;
/* the stracer reads and writes them at format.py's offsets: C's layout must be the same */
#define LINK_AT(type, name) _Static_assert(offsetof(iot_link_t, name) == IOT_LINK_OFF_##name, #name);
#define HEAD_AT(type, name) _Static_assert(offsetof(box_head, name) == IOT_BOX_HEAD_OFF_##name, #name);
#define MSG_AT(type, name) _Static_assert(offsetof(box_msg, name) == IOT_BOX_MSG_OFF_##name, #name);
IOT_LINK_FIELDS(LINK_AT)
IOT_BOX_HEAD_FIELDS(HEAD_AT)
IOT_BOX_MSG_FIELDS(MSG_AT)
_Static_assert(sizeof(box_head) == IOT_BOX_HEAD_SIZE && sizeof(box_msg) == IOT_BOX_MSG_SIZE,
               "the box is format.py's BOX_HEAD, BOX_MSG");
static union {
    box_head h;
    char raw[BOX_SIZE];
} box __attribute__((aligned(64)));

static pthread_mutex_t drain_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread int draining __attribute__((tls_model("initial-exec")));

void iot_stracer_hello(int state)
{
    const char *id = getenv("IOTRACE_STRACER");
    if (!id || !*id)
        return; /* no stracer: its filter is not there to stop the hello */
    const char *c = getenv("IOTRACE_COOKIE");
    iot_cookie = c ? (long)strtoul(c, NULL, 0) : 0;
    iot_stracing = iot_cookie != 0;
    /* the stracer reads busy and in_wrapper as one 8-byte word at tls_off */
    _Static_assert(offsetof(iot_thread, busy) == 0 && offsetof(iot_thread, in_wrapper) == 4,
                   "iot_thread's marker words");
    iot_link.tls_off = (int32_t)((char *)&iot_t - (char *)__builtin_thread_pointer());
    iot_link.state = state;
    uint64_t kio[3];
    iot_kio_link(kio);
    iot_link.kio_own = kio[0];
    iot_link.kio_gone = kio[1];
    iot_link.kio_live = kio[2];
    iot_link.sandbox_entry = (uint64_t)(uintptr_t)iot_sandbox_entry;
    syscall(SYS_getpid, IOT_HELLO_MAGIC, &iot_link, (long)state);
}

void iot_stracer_exiting(void)
{
    /* exit() flushes stdio after every on_exit handler: those writes carry bytes the stdio
     * wrappers already logged, so from here on this thread counts as inside a wrapper. */
    iot_t.in_wrapper = 1 << 24;
}

/* In a forked child: a parent thread may have been draining at the fork. */
void iot_link_fork_child(void)
{
    pthread_mutex_init(&drain_lock, NULL);
    iot_link.bad = 0; /* the parent's drops are counted in the parent */
}

/* 1: a well-formed message (op 1 open a as path, 2 dup a -> b, 3 close a, 4 close a..b). */
static int valid(const box_msg *m, const char *path, uint32_t n)
{
    if (m->pad)
        return 0;
    if (m->op == 1)
        return n > 0 && n < PATH_MAX_ && !memchr(path, 0, n);
    return m->op >= 2 && m->op <= 4 && n == 0;
}

/* Apply the messages of a box the stracer answered; returns how many were dropped: each
 * malformed one, and all that follow a size running past the box (their framing is lost). */
static uint64_t apply_box(uint32_t count, uint32_t bytes)
{
    const char *p = box.raw + sizeof(box_head), *end = p + bytes;
    uint64_t dropped = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t size;
        if ((size_t)(end - p) < sizeof size)
            return dropped + (count - i); /* truncated box */
        memcpy(&size, p, sizeof size);
        p += sizeof size;
        if (size > (size_t)(end - p))
            return dropped + (count - i); /* a size past the end: nothing after it is framed */
        box_msg m;
        if (size < sizeof m) { /* truncated message */
            dropped++;
            p += size;
            continue;
        }
        memcpy(&m, p, sizeof m);
        const char *path = p + sizeof m;
        uint32_t n = size - (uint32_t)sizeof m;
        if (valid(&m, path, n))
            iot_fd_remote(m.op, m.a, m.b, path, n);
        else
            dropped++; /* oversize path, unknown op, stray bytes, NUL inside */
        p += size;
    }
    return dropped + (p != end); /* bytes the header counted that no message held */
}

/* One fetch: 1 if seen advanced (more may follow). */
static int fetch(void)
{
    uint64_t seen = iot_link.seen;
    box.h = (box_head){0};
    syscall(SYS_getpid, IOT_HELLO_MAGIC, &iot_link, IOT_LINK_FETCH, &box, (long)sizeof box);
    uint64_t posted = iot_link.posted; /* raised meanwhile, maybe, by another thread's news */
    box_head h = box.h;
    int ok = h.magic == BOX_MAGIC && h.bytes <= BOX_SIZE - sizeof h && seen < h.upto &&
             h.upto <= posted && h.count > 0;
    if (!ok) {
        if (h.magic != BOX_MAGIC || h.count || h.bytes || h.upto > posted)
            iot_link.bad++; /* an answer that is none of the stracer's */
        iot_link.seen = posted; /* nothing more to learn: fds are learnt from /proc/self/fd */
        return 0;
    }
    iot_link.bad += apply_box(h.count, h.bytes);
    iot_link.seen = h.upto;
    return 1;
}

void iot_link_drain(void)
{
    if (draining || IOT_SANDBOXED()) /* applying a message looks fds up again; a fetch is a
                                      * syscall (sandbox.c) */
        return;
    int busy = iot_t.busy, saved = errno;
    iot_t.busy = 1;
    draining = 1;
    pthread_mutex_lock(&drain_lock);
    uint64_t bad = iot_link.bad;
    if (!iot_stracing)
        iot_link.seen = iot_link.posted; /* no stracer wrote that */
    while (iot_link.seen != iot_link.posted && fetch())
        ;
    if (iot_link.bad != bad && iot_stracing) /* let the stracer count them now (box size 0) */
        syscall(SYS_getpid, IOT_HELLO_MAGIC, &iot_link, IOT_LINK_FETCH, &box, 0L);
    pthread_mutex_unlock(&drain_lock);
    draining = 0;
    iot_t.busy = busy;
    errno = saved;
}

/* Compile-time check of sysraw.h's argument counting against the table. */
__attribute__((unused)) static long iot_sysraw_selftest(int fd, const void *buf, size_t n)
{
    return IOT_SYSRAW_CANCEL(write, fd, buf, n) + IOT_SYSRAW(close, fd) +
           IOT_SYSRAW(openat, -100, "x", 0, 0);
}
