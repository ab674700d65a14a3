/* Process life of the shim: start-up, fork, thread start and exit, process exit, and the
 * environment every descendant must inherit. */
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"
#include "sysraw.h"

iot_proc iot_p;

static pthread_key_t thread_key;

/* LD_PRELOAD and every IOTRACE_* variable as they were at start-up, "NAME=value". */
#define MAX_ENV 16
static char *kept_env[MAX_ENV];
static size_t nkept;

pid_t iot_gettid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

/* The definition of `name` after the shim's: in the global scope (RTLD_NEXT), else in any
 * object loaded with RTLD_LOCAL (Python's extension modules bring libhdf5 and libmpi that way:
 * h5py, mpi4py), whose calls the global scope still binds to the shim's wrappers; NULL if none.
 * Each loaded object is reopened by name (RTLD_NOLOAD: no load, a handle to it) with libc's
 * dlopen, not the shim's, and searched with its dependencies. */
void *iot_dlsym_any(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    struct link_map *me = NULL;
    Dl_info info;
    if (f || !dladdr1((void *)iot_dlsym_any, &info, (void **)&me, RTLD_DL_LINKMAP) || !me)
        return f;
    static void *(*real_dlopen)(const char *, int);
    if (!real_dlopen && !(real_dlopen = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen")))
        return NULL;
    struct link_map *lm = me;
    while (lm->l_prev)
        lm = lm->l_prev;
    for (; lm && !f; lm = lm->l_next) {
        if (lm == me || !lm->l_name || lm->l_name[0] != '/')
            continue; /* the program and the vDSO define none of a library's functions */
        void *h = real_dlopen(lm->l_name, RTLD_LAZY | RTLD_NOLOAD);
        if (!h)
            continue;
        struct link_map *at = NULL;
        f = dlsym(h, name);
        if (f && dladdr1(f, &info, (void **)&at, RTLD_DL_LINKMAP) && at == me)
            f = NULL; /* ours, reached through a dependency: not the next definition */
        dlclose(h); /* the object stays: loaded by its own opener */
    }
    return f;
}

/* The shim's entry in the loader's list of objects (find_self). */
static struct link_map *self_map;

/* The default definition of `name` in the objects after the shim's entry, read from their
 * symbol tables without the loader's lock: for a wrapper first called inside the app's
 * dl_iterate_phdr callback (iot_t.in_phdr), where dlsym would wait for another thread's dlopen,
 * which waits for the lock the callback runs under.  The loader links an object into the list
 * only once it is mapped.  NULL if none has it (then dlsym, as elsewhere). */
static void *lookup_unlocked(const char *name)
{
    uint32_t h = 5381; /* the GNU hash */
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        h = h * 33 + *c;
    for (struct link_map *lm = self_map ? self_map->l_next : NULL; lm; lm = lm->l_next) {
        const ElfW(Sym) *syms = NULL;
        const char *strs = NULL;
        const uint32_t *gh = NULL;
        const ElfW(Half) *vers = NULL;
        for (const ElfW(Dyn) *d = lm->l_ld; d && d->d_tag != DT_NULL; d++) {
            uintptr_t p = d->d_un.d_ptr; /* the loader rebased it, except in the vDSO */
            p += p < lm->l_addr ? lm->l_addr : 0;
            if (d->d_tag == DT_SYMTAB)
                syms = (const ElfW(Sym) *)p;
            else if (d->d_tag == DT_STRTAB)
                strs = (const char *)p;
            else if (d->d_tag == DT_GNU_HASH)
                gh = (const uint32_t *)p;
            else if (d->d_tag == DT_VERSYM)
                vers = (const ElfW(Half) *)p;
        }
        if (!syms || !strs || !gh || !gh[0])
            continue;
        const uint32_t *buckets = gh + 4 + gh[2] * (sizeof(ElfW(Addr)) / 4);
        const uint32_t *chain = buckets + gh[0] - gh[1];
        for (uint32_t i = buckets[h % gh[0]]; i >= gh[1]; i++) {
            const ElfW(Sym) *sym = &syms[i];
            int type = ELF64_ST_TYPE(sym->st_info);
            if ((chain[i] | 1) == (h | 1) && sym->st_shndx != SHN_UNDEF && sym->st_value &&
                (type == STT_FUNC || type == STT_GNU_IFUNC || type == STT_OBJECT) &&
                !(vers && vers[i] & 0x8000) && !strcmp(strs + sym->st_name, name)) {
                void *f = (void *)(lm->l_addr + sym->st_value);
                return type == STT_GNU_IFUNC ? ((void *(*)(void))f)() : f;
            }
            if (chain[i] & 1)
                break;
        }
    }
    return NULL;
}

void *iot_dlsym(const char *name)
{
    void *f = IOT_UNLIKELY(iot_t.in_phdr) ? lookup_unlocked(name) : NULL;
    if (!f)
        f = iot_dlsym_any(name);
    if (!f) /* symbols glibc keeps only for old binaries (__xstat...) */
        f = dlvsym(RTLD_NEXT, name, "GLIBC_2.2.5");
    if (!f) {
        char msg[256];
        int n = snprintf(msg, sizeof msg, "iotrace: no libc function '%s' to wrap\n", name);
        IOT_SYSRAW(write, 2, msg, (size_t)n);
        abort();
    }
    return f;
}

static void thread_exit(void *unused)
{
    (void)unused;
    if (iot_t.gen == iot_p.gen) {
        int busy = iot_t.busy;
        iot_t.busy = 1;
        iot_late_flush(); /* a signal handler's events kept meanwhile (record.c) */
        iot_log_close_chunk();
        iot_kio_thread_exit(); /* its sums, read at the end from the shim's memory */
        if (!iot_own_begin()) { /* what is left to free is given back by a syscall */
            iot_t.busy = busy;
            return;
        }
        iot_late_free();
        iot_cfi_thread_exit();
        iot_own_end();
        iot_t.busy = busy;
    }
}

void iot_thread_reset(void)
{
    iot_t.tid = iot_gettid();
    iot_t.gen = iot_p.gen;
    iot_t.chunk = NULL;
    iot_t.used = 0;
    iot_t.in_wrapper = 0;
    iot_t.vm_wait = 0; /* a forked child's memory is its own */
    memset(iot_t.stack_cache_id, 0, sizeof iot_t.stack_cache_id);
    memset(iot_t.kio, 0, sizeof iot_t.kio);
    iot_t.kio_slot = 0;
    iot_t.kio_in_depth = iot_t.kio_in_ok = 0;
    iot_t.late_ht = 0; /* a fork child's: the parent's events, its to write */
    pthread_setspecific(thread_key, (void *)1); /* so thread_exit runs */
}

static void keep_env(void)
{
    extern char **environ;
    for (char **e = environ; e && *e && nkept < MAX_ENV; e++)
        if (!strncmp(*e, "LD_PRELOAD=", 11) || !strncmp(*e, "IOTRACE_", 8))
            kept_env[nkept++] = strdup(*e);
}

size_t iot_env_extra(void)
{
    return nkept + 1; /* and SANDBOXED */
}

/* Passed on by an exec after the app's seccomp filter (which the new image inherits): the shim
 * there stays out from its start, whose syscalls the filter may not allow (sandbox.c). */
#define SANDBOXED "IOTRACE_SANDBOXED=1"

static const char *lookup(char *const envp[], const char *kv)
{
    size_t n = (size_t)(strchr(kv, '=') - kv) + 1;
    for (char *const *e = envp; e && *e; e++)
        if (!strncmp(*e, kv, n))
            return *e;
    return NULL;
}

/* A variable of the same name as `kv` is one the shim keeps. */
static int kept(const char *kv)
{
    size_t n = (size_t)(strchr(kv, '=') - kv) + 1;
    for (size_t i = 0; i < nkept; i++)
        if (!strncmp(kept_env[i], kv, n))
            return 1;
    return 0;
}

/* envp for an image that only lists its objects (ldd's LD_TRACE_LOADED_OBJECTS, of any value:
 * the loader maps them, prints them and exits, the program never runs): LD_PRELOAD without the
 * shim, whose name would else be in the listing. */
static char **unlisted(char *const envp[], char **scratch, size_t nscratch, char *buf,
                       size_t nbuf)
{
    size_t n = 0, self = strlen(iot_p.self_path);
    for (char *const *e = envp; e && *e && n + 1 < nscratch; e++) {
        if (strncmp(*e, "LD_PRELOAD=", 11) || !strstr(*e, iot_p.self_path)) {
            scratch[n++] = *e;
            continue;
        }
        size_t k = (size_t)snprintf(buf, nbuf, "LD_PRELOAD="), kept = 0;
        for (const char *w = *e + 11; *w;) { /* the loader splits it at spaces and colons */
            size_t len = strcspn(w, " :");
            if (len && (len != self || strncmp(w, iot_p.self_path, len)) && k + len + 1 < nbuf) {
                if (kept++)
                    buf[k++] = ':';
                memcpy(buf + k, w, len);
                k += len;
            }
            w += len + (w[len] != 0);
        }
        buf[k] = 0;
        if (kept)
            scratch[n++] = buf;
    }
    scratch[n] = NULL;
    return scratch;
}

/* envp with what the shim needs put back: `scratch` holds count(envp) + iot_env_extra() + 1
 * pointers.  An LD_PRELOAD the app set is kept, with the shim in front of it. */
char **iot_fix_envp(char *const envp[], char **scratch, size_t nscratch, char *buf, size_t nbuf)
{
    size_t n = 0, missing = 0;
    if (lookup(envp, "LD_TRACE_LOADED_OBJECTS="))
        return unlisted(envp, scratch, nscratch, buf, nbuf);
    for (size_t i = 0; i < nkept; i++) {
        const char *have = lookup(envp, kept_env[i]);
        if (!have || (!strncmp(have, "LD_PRELOAD=", 11) ? !strstr(have, iot_p.self_path)
                                                        : strcmp(have, kept_env[i])))
            missing++;
    }
    int sandboxed = iot_p.sandboxed == 1; /* an install seen; not IOT_SANDBOX_NNP */
    if (!missing && (!sandboxed || lookup(envp, SANDBOXED)))
        return (char **)envp;
    for (char *const *e = envp; e && *e && n + nkept + 1 < nscratch; e++) {
        if (!strncmp(*e, "IOTRACE_", 8) && kept(*e))
            continue; /* changed by the app: the value the trace was started with goes back */
        if (!strncmp(*e, "LD_PRELOAD=", 11) && !strstr(*e, iot_p.self_path)) {
            int k = snprintf(buf, nbuf, "LD_PRELOAD=%s:%s", iot_p.self_path, *e + 11);
            if (k > 0 && (size_t)k < nbuf) {
                scratch[n++] = buf;
                continue;
            }
        }
        scratch[n++] = *e;
    }
    scratch[n] = NULL;
    for (size_t i = 0; i < nkept; i++)
        if (!lookup(scratch, kept_env[i])) {
            scratch[n++] = kept_env[i];
            scratch[n] = NULL;
        }
    if (sandboxed && !lookup(scratch, SANDBOXED) && n + 1 < nscratch) {
        scratch[n++] = (char *)SANDBOXED;
        scratch[n] = NULL;
    }
    return scratch;
}

static void find_self(void)
{
    Dl_info di;
    struct link_map *lm = NULL;
    if (dladdr1((void *)iot_init, &di, (void **)&lm, RTLD_DL_LINKMAP) && di.dli_fname) {
        self_map = lm;
        snprintf(iot_p.self_path, sizeof iot_p.self_path, "%s", di.dli_fname);
        const ElfW(Ehdr) *eh = di.dli_fbase;
        const ElfW(Phdr) *ph = (const void *)((const char *)eh + eh->e_phoff);
        uintptr_t base = lm ? lm->l_addr : 0;
        iot_p.self_lo = UINTPTR_MAX;
        for (int i = 0; i < eh->e_phnum; i++)
            if (ph[i].p_type == PT_LOAD) {
                uintptr_t a = base + ph[i].p_vaddr;
                if (a < iot_p.self_lo)
                    iot_p.self_lo = a;
                if (a + ph[i].p_memsz > iot_p.self_hi)
                    iot_p.self_hi = a + ph[i].p_memsz;
            }
    }
}

/* Registered at start-up, before libc registers the loader's destructor pass, so it runs last
 * of all exit handlers: after every destructor, before stdio's final flush. */
static void on_exit_status(int status, void *unused)
{
    (void)unused;
    if (iot_vfork_exit(status)) /* exit() in a vfork child: nothing of the parent's log is its */
        return;
    iot_msg_exit(); /* err(), error(1, ...): their messages' I/O, before the last reading */
    iot_stdio_exit();
    iot_emit_exit(status);
    iot_emit_kio(IOT_KIO_EXIT);
    iot_stracer_exiting();
    iot_finish();
}

void iot_finish(void)
{
    if (iot_p.state == IOT_READY && iot_t.gen == iot_p.gen) {
        int busy = iot_t.busy;
        iot_t.busy = 1;
        iot_log_finish();
        iot_t.busy = busy;
    }
}

/* After iot_log_create failed: a log this process can never write (its ids changed: the trace
 * directory is not its own, EACCES), not a passing fault.  Under a stracer the shim then steps
 * aside (IOT_OFF: the wrappers call libc straight, no cookie, no marker), so that the stracer
 * records every call itself instead of counting calls that no log holds as covered. */
static int no_log_ever(void)
{
    return iot_stracing && (errno == EACCES || errno == EPERM);
}

/* A fork's parent: no unwind of another thread is cut in the child, no limit raised for it
 * to inherit (kio.c). */
void iot_fork_prepare(void)
{
    iot_stack_fork_prepare();
    iot_kio_spawn_hold();
}

void iot_fork_parent(void)
{
    iot_kio_spawn_release();
    iot_stack_fork_parent();
}

/* A forked child writes a log of its own, with its own string and stack ids. */
void iot_fork_child(void)
{
    iot_p.own_syscalls = iot_t.own_depth; /* the other threads are not in the child */
    iot_stack_fork_child();
    if (iot_p.state != IOT_READY)
        return;
    if (IOT_SANDBOXED()) { /* its log, its id, its readings are syscalls: not traced; the
                            * parent's log, mapped here too, is not its to write */
        iot_p.state = IOT_OFF;
        iot_t.chunk = NULL;
        iot_log_forget();
        return;
    }
    iot_p.pid = (pid_t)syscall(SYS_getpid);
    iot_p.gen++;
    iot_t.busy = 1;
    iot_kio_fork_child();
    /* the child's only thread: locks other parent threads held at the fork are free */
    iot_intern_fork_child();
    iot_clock_fork_child();
    iot_arena_fork_child();
    iot_pend_fork_child();
    iot_cwd_fork_child();
    iot_link_fork_child();
    iot_fd_fork_prepare();
    iot_intern_reset();
    iot_filter_fork_child(); /* its path verdicts were by the parent's string ids */
    iot_modules_reset();
    int in_wrapper = iot_t.in_wrapper; /* the fork wrapper is still running: its iot_done */
    iot_thread_reset();                 /* decrements the marker the stracer reads */
    iot_t.in_wrapper = in_wrapper;
    /* no log (a fault): the wrappers go on (the stracer counts their calls as covered) */
    if (iot_log_create() < 0 && no_log_ever()) {
        iot_p.state = IOT_OFF;
        iot_t.busy = 0;
        return;
    }
    iot_fd_fork_commit();
    iot_modules_emit();
    iot_emit_kio(IOT_KIO_START);
    iot_t.busy = 0;
}

/* iot_p.dir: $IOTRACE_OUT (the trace directory `iotrace run` made), else the job's directory
 * in the central $IOTRACE_DIR (jobdir.c), which is then exported as IOTRACE_OUT (and the job's
 * name as IOTRACE_JOB) for every descendant to join.  Read once: the directory of a forked
 * child is its parent's, whatever the app did to its environment since. */
static int trace_dir(void)
{
    const char *out = getenv("IOTRACE_OUT");
    if (out && *out) {
        if (strlen(out) >= sizeof iot_p.dir)
            return 0;
        strcpy(iot_p.dir, out);
        return 1;
    }
    const char *central = getenv("IOTRACE_DIR");
    if (!central || !*central || iot_jobdir(central, iot_p.dir, sizeof iot_p.dir) != 0)
        return 0;
    setenv("IOTRACE_OUT", iot_p.dir, 1);
    if (!getenv("IOTRACE_JOB"))
        setenv("IOTRACE_JOB", strrchr(iot_p.dir, '/') + 1, 1);
    return 1;
}

void iot_init(void)
{
    int expect = IOT_UNINIT;
    if (!__atomic_compare_exchange_n(&iot_p.state, &expect, IOT_INITIALIZING, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return;
    int saved = errno;
    /* first called after the app's seccomp filter, or an image exec'd under one: stays out,
     * making no syscall (its start would make many) */
    if (IOT_SANDBOXED() || getenv("IOTRACE_SANDBOXED")) {
        iot_p.sandboxed = 1;
        iot_p.state = IOT_OFF;
        return;
    }
    /* loaded into a running process (inject.c): said once, not passed on to its children */
    int injected = getenv("IOTRACE_INJECTED") != NULL;
    if (injected)
        unsetenv("IOTRACE_INJECTED");
    if (!trace_dir()) { /* preloaded with no trace directory: stay out of the way */
        iot_p.state = IOT_OFF;
        iot_stracer_hello(IOT_OFF);
        errno = saved;
        return;
    }
    if (injected) /* the attacher set it: the app's environment is given back as it was */
        unsetenv("IOTRACE_OUT");
    iot_t.busy = 1; /* from the hello on, the stracer counts init's I/O as the shim's own */
    iot_stracer_hello(IOT_INITIALIZING);
    const char *depth = getenv("IOTRACE_STACK");
    iot_p.stack_depth = depth && *depth ? atoi(depth) : 8;
    if (iot_p.stack_depth < 0)
        iot_p.stack_depth = 0;
    if (iot_p.stack_depth > IOT_MAX_STACK)
        iot_p.stack_depth = IOT_MAX_STACK;
    iot_p.pid = (pid_t)syscall(SYS_getpid);
    iot_p.gen = 1;
    find_self();
    keep_env();
    iot_filter_init();
    if (iot_p.stack_depth)
        iot_stack_init();
    pthread_key_create(&thread_key, thread_exit);
    iot_t.busy = 1;
    iot_thread_reset();
    iot_cwd_changed(); /* the cwd as it starts: a first chdir's path is against it, not its own */
    iot_clock_init();
    /* no log (a fault, said in the fault file): the wrappers go on, recording nothing, so
     * that the stracer still counts their calls as covered, not missed */
    if (iot_log_create() < 0 && no_log_ever()) {
        iot_p.state = IOT_OFF;
        iot_t.busy = 0;
        errno = saved;
        return;
    }
    iot_p.state = IOT_READY;
    iot_modules_emit();
    if (injected)
        iot_injected_gen = iot_p.gen;
    iot_emit_kio(IOT_KIO_START); /* what the kernel and the loader did before the shim */
    iot_arena_init(); /* stdin/stdout get theirs at their first I/O (wrap_stdio.c, hold) */
    pthread_atfork(iot_fork_prepare, iot_fork_parent, iot_fork_child);
    on_exit(on_exit_status, NULL);
    if (injected) /* last: a fork from now on finds the child's handler in place */
        iot_inject_bind();
    iot_t.busy = 0;
    errno = saved;
}

/* glibc passes the program's argc, argv and envp to constructors, a dlopen's too */
__attribute__((constructor(101))) static void shim_start(int argc, char **argv, char **envp)
{
    iot_header_args(argc, argv, envp);
    iot_init();
}
