/* An app that sandboxes itself with seccomp, as OpenSSH's privilege-separated child, browsers'
 * renderers and systemd's services do, then goes on with its I/O:
 *
 *   sandbox MODE OUT N
 *
 * writes a line to OUT and stdout, then installs its filter, then writes N records to OUT
 * (write) and N lines to stdout (stdio), and ends.  MODE:
 *   kill     a filter (prctl(PR_SET_SECCOMP)) allowing only the calls this program needs
 *            untraced, killing the process on any other; a thread and a forked child are
 *            started under it; exit() at the end
 *   killsys  the same installed with syscall(SYS_seccomp), as libseccomp's seccomp_load does
 *   libseccomp  the same list through libseccomp itself (dlopen'd: its headers need not be
 *            installed), as systemd and other sandboxes build theirs
 *   errno    the same list, every other call failing with EPERM; each record says what errno
 *            the program saw after its calls
 *   strict   SECCOMP_MODE_STRICT (read, write, exit, sigreturn only); no stdio, raw exit
 *   exec     as kill, allowing also what an exec and the dynamic loader need, and at the end
 *            execs itself (mode "after": appends a line to OUT), as systemd starts a service
 *            under its SystemCallFilter=
 *   inline   as kill, installed by an inline syscall instruction (browsers' own stubs): no
 *            libc function the shim could wrap sees it
 *   inline-trap  as inline, any other call raising SIGSYS (SECCOMP_RET_TRAP) in a handler of
 *            the program's that counts them: "sigsys N" at the end
 *   inline-strict  strict mode (as strict) by an inline seccomp(SECCOMP_SET_MODE_STRICT)
 *   inline-raw  as inline, no_new_privs set by an inline prctl too
 *   inline-tsync  tsync's, installed as inline's
 *   nnp      no_new_privs set (prctl), no filter; at the end execs itself as exec does
 *   tsync    as kill, with SECCOMP_FILTER_FLAG_TSYNC while a thread started before writes N
 *            records of its own to OUT.thread
 * The output and exit status must be the same traced and untraced. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* what this program needs untraced after the filter (strace -f says) */
static const int needed[] = {
    SYS_read, SYS_write, SYS_exit, SYS_exit_group, SYS_rt_sigreturn, SYS_newfstatat, SYS_fstat,
    SYS_brk,
    /* a thread and a forked child */
    SYS_clone, SYS_clone3, SYS_mmap, SYS_mprotect, SYS_munmap, SYS_madvise, SYS_rt_sigprocmask,
    SYS_set_robust_list, SYS_rseq, SYS_futex, SYS_wait4, SYS_rt_sigaction,
};
/* and for mode exec: the exec and the dynamic loader's start */
static const int exec_needed[] = {
    SYS_execve, SYS_arch_prctl, SYS_access, SYS_openat, SYS_pread64, SYS_close,
    SYS_set_tid_address, SYS_prlimit64, SYS_getrandom, SYS_lseek,
};

/* libseccomp's API, as seccomp.h declares it */
#define SCMP_ACT_KILL_PROCESS 0x80000000U
#define SCMP_ACT_ALLOW 0x7fff0000U

static int install_libseccomp(void)
{
    void *h = dlopen("libseccomp.so.2", RTLD_NOW);
    if (!h)
        return -1;
    void *(*init)(unsigned) = (void *(*)(unsigned))dlsym(h, "seccomp_init");
    int (*add)(void *, unsigned, int, unsigned, ...) =
        (int (*)(void *, unsigned, int, unsigned, ...))dlsym(h, "seccomp_rule_add");
    int (*load)(void *) = (int (*)(void *))dlsym(h, "seccomp_load");
    void *ctx = init && add && load ? init(SCMP_ACT_KILL_PROCESS) : NULL;
    if (!ctx)
        return -1;
    for (size_t i = 0; i < sizeof needed / sizeof *needed; i++)
        if (add(ctx, SCMP_ACT_ALLOW, needed[i], 0) != 0)
            return -1;
    return load(ctx); /* the context is the app's to release: never, here */
}

/* prctl(PR_SET_NO_NEW_PRIVS, 1) by an inline syscall instruction */
static long inline_nnp(void)
{
    long r = SYS_prctl;
    register long r10 __asm__("r10") = 0;
    register long r8 __asm__("r8") = 0;
    __asm__ volatile("syscall"
                     : "+a"(r)
                     : "D"((long)PR_SET_NO_NEW_PRIVS), "S"(1L), "d"(0L), "r"(r10), "r"(r8)
                     : "rcx", "r11", "memory");
    return r;
}

/* seccomp(2) by an inline syscall instruction, as Chromium's sandbox makes its calls.  The
 * kernel keeps every register but rax, rcx and r11: the argument registers, r8-r10 and an SSE
 * register are checked to hold after it what they held before (-1000 if not). */
static long inline_seccomp(long op, long flags, void *args)
{
    long r = SYS_seccomp, d = op, s = flags, x = (long)args;
    register long r10 __asm__("r10") = 0x1010101010101010;
    register long r8 __asm__("r8") = 0x0808080808080808;
    register long r9 __asm__("r9") = 0x0909090909090909;
    double f = 1.25;
    __asm__ volatile("syscall"
                     : "+a"(r), "+D"(d), "+S"(s), "+d"(x), "+r"(r10), "+r"(r8), "+r"(r9), "+x"(f)
                     :
                     : "rcx", "r11", "memory");
    if (d != op || s != flags || x != (long)args || r10 != 0x1010101010101010 ||
        r8 != 0x0808080808080808 || r9 != 0x0909090909090909 || f != 1.25)
        return -1000;
    return r;
}

static volatile sig_atomic_t sigsys;

static void on_sigsys(int sig)
{
    (void)sig;
    sigsys++;
}

static int install(const char *mode)
{
    if (!strcmp(mode, "libseccomp"))
        return install_libseccomp();
    unsigned deny = !strcmp(mode, "errno")         ? SECCOMP_RET_ERRNO | EPERM
                    : !strcmp(mode, "inline-trap") ? SECCOMP_RET_TRAP
                                                   : SECCOMP_RET_KILL_PROCESS;
    if (deny == SECCOMP_RET_TRAP && signal(SIGSYS, on_sigsys) == SIG_ERR)
        return -1;
    struct sock_filter f[64];
    int n = 0;
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, arch));
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, nr));
    int k = sizeof needed / sizeof *needed, m = sizeof exec_needed / sizeof *exec_needed;
    for (int i = 0; i < k + (strcmp(mode, "exec") ? 0 : m); i++) {
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                              i < k ? needed[i] : exec_needed[i - k], 0, 1);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    }
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, deny);
    struct sock_fprog prog = {.len = (unsigned short)n, .filter = f};
    if (!strcmp(mode, "inline-raw") ? inline_nnp() : prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
        return -1;
    if (!strcmp(mode, "nnp"))
        return 0;
    if (!strcmp(mode, "strict"))
        return prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0);
    if (!strcmp(mode, "inline-strict"))
        return (int)inline_seccomp(SECCOMP_SET_MODE_STRICT, 0, NULL);
    if (!strcmp(mode, "killsys"))
        return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
    if (!strcmp(mode, "inline-tsync"))
        return (int)inline_seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
    if (!strncmp(mode, "inline", 6))
        return (int)inline_seccomp(SECCOMP_SET_MODE_FILTER, 0, &prog);
    if (!strcmp(mode, "tsync"))
        return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}

static int out_fd, n_rec;

/* mode tsync: a thread writing its own records while the filter goes in */
static void *busy(void *arg)
{
    int fd = *(int *)arg;
    char rec[64];
    for (int i = 0; i < n_rec; i++) {
        int k = snprintf(rec, sizeof rec, "thread record %d\n", i);
        if (write(fd, rec, (size_t)k) != k)
            return (void *)1;
    }
    return NULL;
}

static void *writer(void *arg)
{
    char rec[64];
    int k = snprintf(rec, sizeof rec, "thread %s\n", (const char *)arg);
    if (write(out_fd, rec, (size_t)k) != k)
        return (void *)1;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    const char *mode = argv[1];
    if (!strcmp(mode, "after")) { /* exec'd under the filter */
        int fd = open(argv[2], O_WRONLY | O_APPEND);
        return fd >= 0 && write(fd, "after exec\n", 11) == 11 ? 0 : 9;
    }
    int strict = !strcmp(mode, "strict") || !strcmp(mode, "inline-strict");
    n_rec = atoi(argv[3]);
    out_fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out_fd < 0)
        return 3;
    char rec[128];
    int k = snprintf(rec, sizeof rec, "before the filter\n");
    if (write(out_fd, rec, (size_t)k) != k)
        return 4;
    printf("before the filter\n");
    fflush(stdout);
    pthread_t bt;
    int bfd = -1;
    if (!strcmp(mode, "tsync") || !strcmp(mode, "inline-tsync")) {
        char name[4096];
        snprintf(name, sizeof name, "%s.thread", argv[2]);
        bfd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (bfd < 0 || pthread_create(&bt, NULL, busy, &bfd))
            return 3;
    }
    if (install(mode) != 0)
        return 5;
    void *bret;
    if (bfd >= 0 && (pthread_join(bt, &bret) || bret))
        return 11;
    for (int i = 0; i < n_rec; i++) {
        errno = 0;
        k = snprintf(rec, sizeof rec, "record %d of %d, errno %d\n", i, n_rec, errno);
        if (write(out_fd, rec, (size_t)k) != k)
            return 6;
        if (!strict)
            printf("line %d errno %d\n", i, errno);
    }
    if (strict) { /* only read, write, exit and sigreturn: no exit_group, no stdio */
        const char done[] = "done\n";
        write(1, done, sizeof done - 1);
        syscall(SYS_exit, 0);
    }
    pthread_t t;
    if (pthread_create(&t, NULL, writer, "under the filter") || pthread_join(t, NULL))
        return 7;
    pid_t pid = fork();
    if (pid == 0) {
        k = snprintf(rec, sizeof rec, "child errno %d\n", errno);
        _exit(write(out_fd, rec, (size_t)k) == k ? 0 : 1);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || st != 0)
        return 8;
    printf("done errno %d\n", errno);
    if (!strcmp(mode, "inline-trap"))
        printf("sigsys %d\n", (int)sigsys);
    if (!strcmp(mode, "exec") || !strcmp(mode, "nnp")) {
        fflush(stdout);
        execl(argv[0], argv[0], "after", argv[2], "0", (char *)NULL);
        return 10;
    }
    return 0;
}
