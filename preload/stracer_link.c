/* The shim's side of the stracer (docs/stracer.md).
 *
 * Hello: at start-up the shim makes one getpid syscall carrying a magic number and the address
 * of `iot_link`.  The stracer's seccomp filter stops exactly that call, so the stracer learns,
 * synchronously and before any wrapper runs, where to read this process's per-thread markers
 * (iot_t.busy, iot_t.in_wrapper at fs_base + tls_off) and where the fd-message counter is.
 *
 * fd messages: when a syscall the shim missed changes the descriptor table (a raw openat, close,
 * dup...), the stracer sends a message over ZeroMQ and, before it resumes the tracee, raises
 * iot_link.posted with process_vm_writev.  Every fd lookup compares posted with seen (one load,
 * fdtable.c) and drains exactly the difference with blocking receives, so a wrapped call on an
 * fd from a raw openat the line before always sees the mapping.
 *
 * libzmq is dlopen'ed on the first message only: a process that never gets one never has a
 * context (nor its I/O thread).  All of ZeroMQ lives in one "link" thread with a descriptor
 * table of its own (unshare(CLONE_FILES), then its copies of the app's fds closed): libzmq's
 * eventfds, epoll fds and sockets never take a descriptor number the app would get, and the
 * app's dup2 cannot hit them.  RTLD_DEEPBIND binds libzmq's libc calls to libc, not to the
 * shim's wrappers, so its threads produce no events; the stracer counts their syscalls as the
 * shim's own (it sees them created while a shim thread was busy).  All signals are blocked in
 * it.  After fork the child starts a link thread of its own; the parent's is not touched. */
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"
#include "sysraw.h"

long iot_cookie;
int iot_stracing;
iot_link_t iot_link = {.magic = 0x6c746f69u /* "iotl" */, .version = 2};

static char run_id[64];
static pthread_mutex_t drain_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread int draining __attribute__((tls_model("initial-exec")));

/* The link thread and the draining thread hand one message at a time over: */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned gen;     /* iot_p.gen the link thread was started in; 0: none */
    int state;        /* 0 starting, 1 ready, -1 failed */
    int want, have;   /* a message is asked for / has arrived */
    int len;
    struct {
        int32_t op, a, b, pad;
        char path[4096];
    } m;
} L = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static struct {
    void *(*ctx_new)(void);
    void *(*socket)(void *, int);
    int (*bind)(void *, const char *);
    int (*recv)(void *, void *, size_t, int);
    int (*setsockopt)(void *, int, const void *, size_t);
} z;

enum { ZMQ_PULL_ = 7, ZMQ_LINGER_ = 17 };

void iot_stracer_hello(int state)
{
    const char *id = getenv("IOTRACE_STRACER");
    if (!id || !*id)
        return; /* no stracer: its filter is not there to stop the hello */
    snprintf(run_id, sizeof run_id, "%s", id);
    const char *c = getenv("IOTRACE_COOKIE");
    iot_cookie = c ? (long)strtoul(c, NULL, 0) : 0;
    iot_stracing = iot_cookie != 0;
    iot_link.tls_off = (int32_t)((char *)&iot_t - (char *)__builtin_thread_pointer());
    iot_link.state = state;
    syscall(SYS_getpid, IOT_LINK_MAGIC, &iot_link, (long)state);
}

void iot_stracer_exiting(void)
{
    /* exit() flushes stdio after every on_exit handler: those writes carry bytes the stdio
     * wrappers already logged, so from here on this thread counts as inside a wrapper. */
    iot_t.in_wrapper = 1 << 24;
}

static void *zmq_bound(void)
{
    void *h = dlopen("libzmq.so.5", RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!h)
        return NULL;
    z.ctx_new = (void *(*)(void))dlsym(h, "zmq_ctx_new");
    z.socket = (void *(*)(void *, int))dlsym(h, "zmq_socket");
    z.bind = (int (*)(void *, const char *))dlsym(h, "zmq_bind");
    z.recv = (int (*)(void *, void *, size_t, int))dlsym(h, "zmq_recv");
    z.setsockopt = (int (*)(void *, int, const void *, size_t))dlsym(h, "zmq_setsockopt");
    if (!z.ctx_new || !z.socket || !z.bind || !z.recv || !z.setsockopt)
        return NULL;
    char ep[128];
    snprintf(ep, sizeof ep, "ipc://@iotrace-%s-%d", run_id, (int)iot_p.pid);
    void *ctx = z.ctx_new();
    void *sock = ctx ? z.socket(ctx, ZMQ_PULL_) : NULL;
    int zero = 0;
    if (!sock || z.setsockopt(sock, ZMQ_LINGER_, &zero, sizeof zero) || z.bind(sock, ep))
        return NULL;
    return sock;
}

static void *link_main(void *unused)
{
    (void)unused;
    iot_t.busy = 1; /* never traced: its syscalls are the shim's */
    void *sock = NULL;
    /* a descriptor table of our own, holding none of the app's files */
    if (syscall(SYS_unshare, CLONE_FILES) == 0 && IOT_SYSRAW(close_range, 0, ~0U, 0) == 0)
        sock = zmq_bound();
    pthread_mutex_lock(&L.mu);
    L.state = sock ? 1 : -1;
    pthread_cond_broadcast(&L.cv);
    while (sock) {
        while (!L.want)
            pthread_cond_wait(&L.cv, &L.mu);
        pthread_mutex_unlock(&L.mu);
        int n;
        do
            n = z.recv(sock, &L.m, sizeof L.m - 1, 0);
        while (n < 0 && errno == EINTR);
        pthread_mutex_lock(&L.mu);
        L.len = n;
        L.want = 0;
        L.have = 1;
        pthread_cond_broadcast(&L.cv);
    }
    pthread_mutex_unlock(&L.mu);
    return NULL;
}

/* 1: the link thread of this process is up. */
static int link_up(void)
{
    if (L.gen != iot_p.gen) { /* first message, or a forked child: start our own */
        pthread_mutex_init(&L.mu, NULL);
        pthread_cond_init(&L.cv, NULL);
        L.state = 0, L.want = 0, L.have = 0;
        L.gen = iot_p.gen;
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old); /* the app's signals are not for it */
        pthread_t t;
        int bad = pthread_create(&t, NULL, link_main, NULL);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (bad) {
            L.state = -1;
            return 0;
        }
        pthread_detach(t);
    }
    pthread_mutex_lock(&L.mu);
    while (L.state == 0)
        pthread_cond_wait(&L.cv, &L.mu);
    pthread_mutex_unlock(&L.mu);
    return L.state == 1;
}

/* In a forked child: a parent thread may have been draining at the fork. */
void iot_link_fork_child(void)
{
    pthread_mutex_init(&drain_lock, NULL);
}

void iot_link_drain(void)
{
    if (draining) /* applying a message looks fds up again */
        return;
    int busy = iot_t.busy, saved = errno;
    iot_t.busy = 1;
    draining = 1;
    pthread_mutex_lock(&drain_lock);
    if (!link_up())
        iot_link.seen = iot_link.posted; /* no mappings: fds stay learnt from /proc/self/fd */
    while (iot_link.seen != iot_link.posted) {
        pthread_mutex_lock(&L.mu);
        L.want = 1;
        L.have = 0;
        pthread_cond_broadcast(&L.cv);
        while (!L.have)
            pthread_cond_wait(&L.cv, &L.mu);
        int n = L.len;
        size_t off = offsetof(__typeof__(L.m), path);
        if (n >= (int)off)
            iot_fd_remote(L.m.op, L.m.a, L.m.b, L.m.path, (size_t)n - off);
        pthread_mutex_unlock(&L.mu);
        if (n < 0) {
            iot_link.seen = iot_link.posted;
            break;
        }
        iot_link.seen++;
    }
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
