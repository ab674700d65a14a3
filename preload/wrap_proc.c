/* Wrappers: process life.  fork gives the child a log of its own (init.c's atfork handler); the
 * exec family puts LD_PRELOAD and IOTRACE_* back into an environment the app stripped, so every
 * descendant stays traced; exit records the status. */
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

extern char **environ;

static size_t env_count(char *const envp[])
{
    size_t n = 0;
    while (envp && envp[n])
        n++;
    return n;
}

/* Room for iot_fix_envp: the app's variables, the ones the shim puts back, and NULL. */
#define FIXED_ENV(var, envp)                                              \
    size_t var##_n = env_count(envp) + iot_env_extra() + 1;               \
    char *var##_slots[var##_n];                                           \
    char var##_buf[8192];                                                 \
    char **var = iot_fix_envp(envp, var##_slots, var##_n, var##_buf, sizeof var##_buf)

/* vfork: the child runs on the parent's thread and memory until it execs or _exits, so
 * whatever the shim did for it (fd table, log) would be the parent's.  vfork cannot be wrapped
 * by a C function (the child would return through the wrapper's frame, which the parent then
 * returns through again): `vfork` is a stub that marks the thread busy (iot_vfork_begin) and
 * jumps to libc's, which returns straight to the app.  The next wrapper call on that thread
 * (or exit) settles it: in the parent, a getpid that is the shim's pid clears the mark.  In the
 * child, under the stracer (which tells the mark, IOT_BUSY_VFORK, from the shim's own work)
 * every call goes straight to libc and its syscalls are its own events; with the shim alone its
 * calls are recorded as usual but kept apart (iot_vfork_keep: not the parent's log, nor its
 * descriptor table: fdtable.c asks iot_vfork_fd), and the parent, when it sees its thread
 * again, writes them in a log for the child (wrap_spawn.c iot_kid_log). */
#define VK_EVENTS 128
#define VK_FDS 64
typedef struct {
    pid_t pid;    /* the child's, 0 until its first call */
    int n, exited, status;
    uint64_t t;   /* the vfork's time */
    iot_kid_kio kio; /* its counters at its exec or _exit */
    uint64_t own[IOT_KIO_OWN_N]; /* its readings' reads so far */
    iot_ev ev[VK_EVENTS];
    struct { int lo, hi; uint32_t path; } fd[VK_FDS]; /* its descriptor changes, in order */
    int nfd;
} vkid;
static __thread vkid *vk; /* the parent thread's: the child runs on it */
static void *real_vfork;

IOT_HIDDEN void *iot_vfork_begin(void)
{
    if (!real_vfork)
        real_vfork = iot_dlsym("vfork");
    if (iot_t.vforked && iot_t.busy == IOT_BUSY_VFORK)
        iot_vfork_settle(); /* the last vfork, not settled since (no call in between) */
    if (iot_p.state == IOT_READY && !iot_t.busy) {
        if (!iot_stracing && (vk || (vk = calloc(1, sizeof *vk)))) {
            vk->pid = 0;
            vk->n = vk->exited = vk->nfd = vk->kio.when = 0;
            memset(vk->own, 0, sizeof vk->own);
            vk->t = iot_now();
        }
        iot_t.busy = IOT_BUSY_VFORK;
        iot_t.vforked = 1;
        iot_kio_spawn_hold(); /* released when the parent is seen again (iot_vfork_settle) */
    }
    return real_vfork;
}

int iot_vfork_settle(void)
{
    if (!iot_t.vforked)
        return 0;
    pid_t me = (pid_t)syscall(SYS_getpid);
    if (me != iot_p.pid) {
        if (iot_stracing || !vk)
            return 1;
        vk->pid = me;
        return 2;
    }
    iot_t.vforked = 0;
    iot_kio_spawn_release();
    iot_t.busy = 1;
    if (vk && vk->pid && (vk->n || vk->exited))
        iot_kid_log(vk->pid, vk->t, vk->ev, vk->n, vk->exited, vk->status, &vk->kio);
    if (vk)
        vk->pid = vk->n = vk->exited = 0;
    iot_t.busy = 0;
    return 0;
}

/* The vfork child's counters just before its exec or _exit. */
static void vfork_reading(int when)
{
    if (vk && iot_t.vforked && iot_kio_read_self(vk->kio.v)) {
        vk->kio.when = when;
        vk->kio.t = iot_now();
        memcpy(vk->kio.own, vk->own, sizeof vk->own);
        vk->own[0] += iot_t.kio_in_cost; /* the kernel counts this read after its values */
        vk->own[2]++;
    }
}

int iot_vfork_exit(int status)
{
    int child = iot_vfork_settle() != 0;
    if (child && vk && iot_t.vforked) {
        vfork_reading(IOT_KIO_EXIT);
        vk->exited = 1;
        vk->status = status;
    }
    return child;
}

void iot_vfork_keep(const iot_ev *ev)
{
    if (vk && vk->n < VK_EVENTS)
        vk->ev[vk->n++] = *ev;
}

void iot_vfork_fd(int lo, int hi, uint32_t path)
{
    if (vk && vk->nfd < VK_FDS)
        vk->fd[vk->nfd++] = (typeof(vk->fd[0])){lo, hi, path};
}

int iot_vfork_fd_path(int fd, uint32_t *path)
{
    for (int i = vk ? vk->nfd - 1 : -1; i >= 0; i--)
        if (vk->fd[i].lo <= fd && fd <= vk->fd[i].hi) {
            *path = vk->fd[i].path;
            return 1;
        }
    return 0;
}

__asm__(".text\n"
        ".globl vfork\n"
        ".type vfork, @function\n"
        "vfork:\n"
        "    subq $8, %rsp\n" /* the stack 16-byte aligned for the call */
        "    call iot_vfork_begin\n"
        "    addq $8, %rsp\n"
        "    jmp *%rax\n"
        ".size vfork, .-vfork\n");

/* The program a call runs: a name without '/' that the p-variants search in PATH is kept as
 * given (the cwd has nothing to do with it), any other path made absolute. */
static void prog_path(iot_ev *ev, unsigned fn, const char *name)
{
    int searched = fn == IOT_FN_execvp || fn == IOT_FN_execvpe || fn == IOT_FN_execlp ||
                   fn == IOT_FN_posix_spawnp;
    if (searched && name && ev->err != EFAULT && !__builtin_strchr(name, '/'))
        ev->path = iot_intern_string(name, __builtin_strlen(name));
    else if (name)
        iot_ev_path(ev, name);
}

/* An exec that succeeds never returns, so the attempt is recorded before the call (ret 0);
 * a failure adds a second event with its errno.  A vfork child's are its own (kept apart). */

static int exec_begin(iot_ev *ev, unsigned fn, const char *path, int fd)
{
    if (!iot_enter(ev, fn)) /* under the stracer, a vfork child's go straight to libc */
        return 0;
    iot_done(ev, 0, 0);
    prog_path(ev, fn, path);
    if (fd >= 0) {
        iot_ev_fd(ev, fd);
        iot_ev_fdpath(ev, fd);
    }
    iot_leave(ev);
    if (iot_t.vforked) { /* a vfork child's: the parent's log goes on */
        vfork_reading(IOT_KIO_EXEC);
        return 1;
    }
    iot_emit_kio_exec(path, fd);
    iot_finish(); /* the image is about to go: trim its log */
    return 1;
}

static int exec_failed(unsigned fn, const char *path, int fd, int r)
{
    int e = errno;
    iot_ev ev;
    if (iot_enter(&ev, fn)) {
        errno = e;
        iot_done(&ev, r, 1);
        prog_path(&ev, fn, path);
        if (fd >= 0) {
            iot_ev_fd(&ev, fd);
            iot_ev_fdpath(&ev, fd);
        }
        iot_leave(&ev);
    }
    errno = e;
    return r;
}


static int do_execve(unsigned fn, const char *path, char *const argv[], char *const envp[])
{
    IOT_REAL(execve);
    FIXED_ENV(env, envp);
    iot_ev ev;
    exec_begin(&ev, fn, path, -1);
    int r = real_execve(path, argv, env);
    return exec_failed(fn, path, -1, r);
}

static int do_execvpe(unsigned fn, const char *file, char *const argv[], char *const envp[])
{
    IOT_REAL(execvpe);
    FIXED_ENV(env, envp);
    iot_ev ev;
    exec_begin(&ev, fn, file, -1);
    int r = real_execvpe(file, argv, env);
    return exec_failed(fn, file, -1, r);
}

IOT_API int execve(const char *path, char *const argv[], char *const envp[])
{
    return do_execve(IOT_FN_execve, path, argv, envp);
}

IOT_API int execv(const char *path, char *const argv[])
{
    return do_execve(IOT_FN_execv, path, argv, environ);
}

IOT_API int execvpe(const char *file, char *const argv[], char *const envp[])
{
    return do_execvpe(IOT_FN_execvpe, file, argv, envp);
}

IOT_API int execvp(const char *file, char *const argv[])
{
    return do_execvpe(IOT_FN_execvp, file, argv, environ);
}

IOT_API int fexecve(int fd, char *const argv[], char *const envp[])
{
    IOT_REAL(fexecve);
    FIXED_ENV(env, envp);
    iot_ev ev;
    exec_begin(&ev, IOT_FN_fexecve, NULL, fd);
    int r = real_fexecve(fd, argv, env);
    return exec_failed(IOT_FN_fexecve, NULL, fd, r);
}

/* execl*: collect the variadic arguments into an argv on the stack. */
#define ARGV_FROM_VA(arg0, argv, envp_out)                                \
    va_list ap;                                                           \
    size_t argc = 1;                                                      \
    va_start(ap, arg0);                                                   \
    while (va_arg(ap, const char *))                                      \
        argc++;                                                           \
    va_end(ap);                                                           \
    const char *argv[argc + 1];                                           \
    argv[0] = arg0;                                                       \
    va_start(ap, arg0);                                                   \
    for (size_t i = 1; i <= argc; i++)                                    \
        argv[i] = va_arg(ap, const char *);                               \
    envp_out;                                                             \
    va_end(ap)

IOT_API int execl(const char *path, const char *arg0, ...)
{
    ARGV_FROM_VA(arg0, argv, (void)0);
    return do_execve(IOT_FN_execl, path, (char *const *)argv, environ);
}

IOT_API int execlp(const char *file, const char *arg0, ...)
{
    ARGV_FROM_VA(arg0, argv, (void)0);
    return do_execvpe(IOT_FN_execlp, file, (char *const *)argv, environ);
}

IOT_API int execle(const char *path, const char *arg0, ...)
{
    char *const *envp;
    ARGV_FROM_VA(arg0, argv, envp = va_arg(ap, char *const *));
    return do_execve(IOT_FN_execle, path, (char *const *)argv, envp);
}

/* A call that returns its error number (pthread_create, posix_spawn): errno is set to it, as
 * the event's.  1 if it failed. */
static int error_number(int r)
{
    if (r)
        errno = r;
    return r != 0;
}

/* posix_spawn returns the error number instead of setting errno.  The child's file actions
 * (wrap_spawn.c) are its own events, in a log written for it: the shim alone sees them only
 * as what the app asked for. */
#define SPAWN_BODY(FN, real_fn, name)                                     \
    FIXED_ENV(env, envp);                                                 \
    IOT_ENTER(FN, real_fn(pid, name, fa, attr, argv, env));               \
    iot_spawn sp;                                                         \
    iot_spawn_begin(fa, &sp);                                             \
    iot_kio_spawn_hold();                                                 \
    IOT_CALL(int, real_fn(pid, name, fa, attr, argv, env), r,             \
             error_number(r));                                            \
    iot_kio_spawn_release();                                              \
    prog_path(&ev, FN, name);                                             \
    if (r == 0 && pid)                                                    \
        iot_ev_aux(&ev, *pid);                                            \
    iot_spawn_end(&sp, r, pid, ev.t0);                                    \
    IOT_LEAVE(r)

IOT_API int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                        const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    IOT_REAL(posix_spawn);
    SPAWN_BODY(IOT_FN_posix_spawn, real_posix_spawn, path);
}

IOT_API int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                         const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    IOT_REAL(posix_spawnp);
    SPAWN_BODY(IOT_FN_posix_spawnp, real_posix_spawnp, file);
}

IOT_API pid_t fork(void)
{
    IOT_REAL(fork);
    IOT_ENTER(IOT_FN_fork, real_fork());
    IOT_CALL(pid_t, real_fork(), r, r < 0); /* the child's log: the atfork handler, in there */
    IOT_LEAVE(r);
}

/* clone() children that are not threads.  Without CLONE_VM the child is a fork that runs no
 * atfork handler: it starts its own log before fn (its copy of the parent's log mapping is
 * MAP_SHARED: writing it would corrupt the parent's chunks).  With CLONE_VM (and no
 * CLONE_SETTLS) the child runs on the calling thread's TLS -- its chunk, its markers -- so that
 * thread and its child run untraced (the stracer, if any, logs their I/O as missed) until the
 * kernel clears the child's tid word at its exit or exec (CLONE_CHILD_CLEARTID on a word of
 * ours).  A child whose tid word the app uses itself cannot be watched: that thread stays
 * untraced.  No event: clone is not I/O, and the stracer logs the process tree. */
#define VM_SLOTS 63
#define VM_FOREVER (1ull << 63)
static int vm_word[VM_SLOTS]; /* 1 while the child lives: the kernel zeroes it */
static int vm_used[VM_SLOTS];

int iot_vm_shared(void)
{
    for (int i = 0; i < VM_SLOTS; i++) {
        uint64_t bit = 1ull << i;
        if ((iot_t.vm_wait & bit) && !__atomic_load_n(&vm_word[i], __ATOMIC_ACQUIRE) &&
            (__atomic_fetch_and(&iot_t.vm_wait, ~bit, __ATOMIC_ACQ_REL) & bit))
            __atomic_store_n(&vm_used[i], 0, __ATOMIC_RELEASE);
    }
    if (__atomic_load_n(&iot_t.vm_wait, __ATOMIC_ACQUIRE))
        return 1;
    iot_t.gen = iot_t.vm_gen;
    return 0;
}

struct clone_start {
    int (*fn)(void *);
    void *arg;
};

static int forked_start(void *p)
{
    struct clone_start s = *(struct clone_start *)p; /* the child's copy of the parent's */
    iot_fork_child();
    return s.fn(s.arg);
}

IOT_API int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
    IOT_REAL(clone);
    va_list ap; /* as glibc's clone, read whether the flags use them or not */
    va_start(ap, arg);
    pid_t *ptid = va_arg(ap, pid_t *);
    void *tls = va_arg(ap, void *);
    pid_t *ctid = va_arg(ap, pid_t *);
    va_end(ap);
    if (iot_p.state != IOT_READY || (flags & CLONE_THREAD) ||
        (flags & (CLONE_VM | CLONE_SETTLS)) == (CLONE_VM | CLONE_SETTLS))
        return real_clone(fn, stack, flags, arg, ptid, tls, ctid);
    if (!(flags & CLONE_VM)) {
        struct clone_start s = {fn, arg};
        iot_fork_prepare();
        int r = real_clone(forked_start, stack, flags, &s, ptid, tls, ctid);
        int e = errno;
        iot_fork_parent();
        errno = e;
        return r;
    }
    int slot = -1;
    if (!(flags & (CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID)))
        for (int i = 0; i < VM_SLOTS && slot < 0; i++) {
            int idle = 0;
            if (__atomic_compare_exchange_n(&vm_used[i], &idle, 1, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_RELAXED))
                slot = i;
        }
    if (slot >= 0) {
        __atomic_store_n(&vm_word[slot], 1, __ATOMIC_RELEASE);
        flags |= CLONE_CHILD_CLEARTID;
        ctid = &vm_word[slot];
    }
    if (!iot_t.vm_wait && iot_t.gen)
        iot_t.vm_gen = iot_t.gen;
    uint64_t had = iot_t.vm_wait;
    __atomic_fetch_or(&iot_t.vm_wait, slot >= 0 ? 1ull << slot : VM_FOREVER, __ATOMIC_ACQ_REL);
    iot_t.gen = 0;
    int r = real_clone(fn, stack, flags, arg, ptid, tls, ctid);
    if (r < 0) { /* no child: nothing to wait for */
        int e = errno;
        if (slot >= 0)
            __atomic_store_n(&vm_word[slot], 0, __ATOMIC_RELEASE);
        else if (!(had & VM_FOREVER))
            __atomic_fetch_and(&iot_t.vm_wait, ~VM_FOREVER, __ATOMIC_ACQ_REL);
        errno = e;
    }
    return r;
}

IOT_API int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                           void *arg)
{
    IOT_REAL(pthread_create);
    IOT_ENTER(IOT_FN_pthread_create, real_pthread_create(t, attr, fn, arg));
    IOT_CALL(int, real_pthread_create(t, attr, fn, arg), r, error_number(r));
    IOT_LEAVE(r);
}

IOT_API void exit(int status)
{
    IOT_REAL(exit);
    iot_ev ev;
    if (iot_enter(&ev, IOT_FN_exit)) {
        iot_done(&ev, 0, 0);
        iot_ev_req(&ev, status);
        iot_leave(&ev);
    }
    real_exit(status); /* on_exit (init.c) records the EXIT status */
    __builtin_unreachable();
}

/* _exit skips on_exit handlers: the EXIT record is written here. */
#define UNDERSCORE_EXIT(name)                                             \
    IOT_API void name(int status)                                         \
    {                                                                     \
        IOT_REAL(name);                                                   \
        iot_ev ev;                                                        \
        if (iot_enter(&ev, IOT_FN__exit)) {                               \
            iot_done(&ev, 0, 0);                                          \
            iot_ev_req(&ev, status);                                      \
            iot_leave(&ev);                                               \
            if (vk && iot_t.vforked) { /* a vfork child's: its own log */ \
                vfork_reading(IOT_KIO__EXIT);                             \
                vk->exited = 1;                                           \
                vk->status = status;                                      \
                real_##name(status);                                      \
            }                                                             \
            iot_emit_exit(status);                                        \
            iot_emit_kio(IOT_KIO__EXIT);                                  \
            iot_finish();                                                 \
        }                                                                 \
        real_##name(status);                                              \
        __builtin_unreachable();                                          \
    }
UNDERSCORE_EXIT(_exit)
UNDERSCORE_EXIT(_Exit)

IOT_API void *dlopen(const char *file, int flags)
{
    IOT_REAL(dlopen);
    IOT_ENTER(IOT_FN_dlopen, real_dlopen(file, flags));
    IOT_CALL(void *, real_dlopen(file, flags), r != NULL, 0); /* dlerror(), not errno, says why */
    iot_ev_flags(&ev, flags);
    if (file)
        ev.path = iot_intern_string(file, __builtin_strlen(file)); /* a name the loader searches */
    if (r)
        iot_modules_emit(); /* what this dlopen mapped */
    IOT_LEAVE(r);
}

/* dlclose: not an event.  The stack walk keeps a rule per code address (cfi.c): another
 * library may be mapped where this one was. */
IOT_API int dlclose(void *handle)
{
    IOT_REAL(dlclose);
    int r = real_dlclose(handle);
    iot_cfi_flush();
    return r;
}

/* popen: fd = the stream's end of the pipe (its name learnt on first use), flags = O_RDONLY or
 * O_WRONLY as the mode says; glibc's pipe2, posix_spawn of the shell (a CLONE_VM child that
 * runs inside this call until its exec) and the closes are inside, covered.  pclose: ret = the
 * command's wait status. */
IOT_API FILE *popen(const char *cmd, const char *mode)
{
    IOT_REAL(popen);
    IOT_ENTER(IOT_FN_popen, real_popen(cmd, mode));
    iot_spawn sp;
    iot_popen_begin(mode, &sp); /* the child's end of the pipe foreseen (wrap_spawn.c) */
    iot_kio_spawn_hold();
    IOT_CALL(FILE *, real_popen(cmd, mode), r != NULL, r == NULL);
    iot_kio_spawn_release();
    if (ev.err != EFAULT && mode)
        iot_ev_flags(&ev, mode[0] == 'w' ? O_WRONLY : O_RDONLY);
    if (r) {
        int fd = fileno(r);
        iot_fd_closed(fd);
        iot_ev_fd(&ev, fd);
        iot_popen_end(&sp, fd, ev.t0);
        iot_popen_track(fd, 1);
    }
    IOT_LEAVE(r);
}

IOT_API int pclose(FILE *f)
{
    IOT_REAL(pclose);
    IOT_ENTER(IOT_FN_pclose, real_pclose(f));
    int fd = f ? fileno(f) : -1;
    uint32_t path = fd >= 0 ? iot_fd_path(fd) : 0;
    int64_t pend = iot_stdio_pending(f), spos = fd >= 0 ? iot_stdio_pos(fd) : IOT_NO_OFFSET;
    IOT_CALL(int, real_pclose(f), r, r == -1);
    if (fd >= 0)
        iot_popen_track(fd, 0);
    if (fd >= 0) {
        iot_ev_fd(&ev, fd);
        ev.path = path;
        iot_stdio_flushed(&ev, pend, spos); /* what was waiting went to the pipe */
        iot_fd_closed(fd);
    }
    IOT_LEAVE(r);
}
