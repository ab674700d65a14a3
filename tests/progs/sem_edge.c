/* Named semaphores and shared memory at their edges (preload/wrap_shm.c, wrap_tmp.c): prints
 * results, errno and what is left in /dev/shm, for comparison untraced vs traced.  argv[2]: a
 * unique name.
 *   sem_edge full NAME       /dev/shm filled first (a small tmpfs of its own: run under
 *                            `unshare -m`): sem_open's write of the temporary file, shm_open's
 *                            write and mkstemp there, then what is left
 *   sem_edge race NAME N     N processes create NAME at once, N times over: with O_EXCL one
 *                            wins and the others get EEXIST; without it all share one
 *   sem_edge odd NAME        names with odd bytes (spaces, control bytes, bytes >= 0x80, dots)
 *   sem_edge early NAME      NAME opened from the program's preinit array (before any
 *                            library's constructor, the shim's too), then opened again, closed
 *   sem_edge sandbox NAME    NAME opened, then again under the program's own seccomp filter
 *                            (allow all), then closed */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char name[256];

/* a call's result and errno, errno read after it */
#define SAY(label, call)                            \
    do {                                            \
        errno = 0;                                  \
        long r_ = (long)(call);                     \
        int e_ = errno;                             \
        printf("%s %ld %d\n", label, r_, e_);      \
    } while (0)


/* the entries of /dev/shm whose names hold `part`, sorted by the shell's sort: printed */
static void left(const char *part)
{
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, part) || !strncmp(e->d_name, "sem.", 4)) {
            /* a temporary file's random letters are not the same twice: its kind only */
            int tmp = !strncmp(e->d_name, "sem.", 4) && strlen(e->d_name) == 10 &&
                      !strstr(e->d_name, part);
            printf("  left %s\n", tmp ? "sem.XXXXXX" : e->d_name);
            n++;
        }
    if (d)
        closedir(d);
    printf("  left %d\n", n);
}

static int full(void)
{
    char path[300];
    snprintf(path, sizeof path, "/dev/shm/%s-filler", name + 1);
    int f = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (f < 0)
        return 3;
    static char block[4096];
    while (write(f, block, sizeof block) > 0) /* whole pages, then the last bytes */
        ;
    while (write(f, block, 1) > 0)
        ;
    printf("filled errno %d\n", errno);
    close(f);
    for (int i = 0; i < 3; i++) {
        errno = 0;
        sem_t *s = sem_open(name, O_CREAT, 0600, 1);
        printf("sem_open %d errno %d\n", s != SEM_FAILED, errno);
        errno = 0;
        s = sem_open(name, O_CREAT | O_EXCL, 0600, 1);
        printf("sem_open excl %d errno %d\n", s != SEM_FAILED, errno);
    }
    left(name + 1);
    errno = 0;
    int fd = shm_open(name, O_CREAT | O_RDWR, 0600);
    printf("shm_open %d errno %d\n", fd >= 0, errno);
    SAY("write", write(fd, "x", 1));
    close(fd);
    SAY("shm_unlink", shm_unlink(name));
    char tmpl[300];
    snprintf(tmpl, sizeof tmpl, "/dev/shm/%s-XXXXXX", name + 1);
    errno = 0;
    fd = mkstemp(tmpl);
    printf("mkstemp %d errno %d\n", fd >= 0, errno);
    if (fd >= 0) {
        SAY("write", write(fd, "x", 1));
        close(fd);
        unlink(tmpl);
    }
    unlink(path); /* space again: the same calls succeed */
    errno = 0;
    sem_t *s = sem_open(name, O_CREAT | O_EXCL, 0600, 1);
    printf("sem_open after %d errno %d\n", s != SEM_FAILED, errno);
    int v = -1;
    if (s != SEM_FAILED && sem_getvalue(s, &v) == 0 && sem_close(s) == 0)
        printf("value %d\n", v);
    SAY("sem_unlink", sem_unlink(name));
    left(name + 1);
    return 0;
}

static int race(int n)
{
    int excl_ok = 0, shared_ok = 0;
    for (int round = 0; round < n; round++) {
        for (int excl = 1; excl >= 0; excl--) {
            int go[2];
            if (pipe(go) != 0)
                return 3;
            pid_t kids[64];
            for (int k = 0; k < n && k < 64; k++) {
                kids[k] = fork();
                if (kids[k] == 0) {
                    char c;
                    close(go[1]);
                    if (read(go[0], &c, 1) != 0) /* all start when the pipe closes */
                        _exit(9);
                    sem_t *s = sem_open(name, O_CREAT | (excl ? O_EXCL : 0), 0600, 0);
                    if (s == SEM_FAILED)
                        _exit(errno == EEXIST ? 1 : 2);
                    sem_post(s);
                    _exit(sem_close(s) == 0 ? 0 : 3);
                }
            }
            close(go[0]);
            close(go[1]);
            int won = 0, lost = 0, other = 0;
            for (int k = 0; k < n && k < 64; k++) {
                int st;
                waitpid(kids[k], &st, 0);
                int code = WIFEXITED(st) ? WEXITSTATUS(st) : 100;
                won += code == 0;
                lost += code == 1;
                other += code > 1;
            }
            sem_t *s = sem_open(name, 0);
            int v = -1;
            if (s != SEM_FAILED) {
                sem_getvalue(s, &v);
                sem_close(s);
            }
            sem_unlink(name);
            if (excl)
                excl_ok += won == 1 && lost == n - 1 && v == 1;
            else
                shared_ok += won == n && v == n;
            if (other || (excl && won != 1) || (!excl && won != n))
                printf("round %d excl %d: won %d lost %d other %d value %d\n", round, excl, won,
                       lost, other, v);
        }
    }
    printf("excl: one winner, the others EEXIST, in %d of %d rounds\n", excl_ok, n);
    printf("shared: all %d opened one semaphore in %d of %d rounds\n", n, shared_ok, n);
    left(name + 1);
    return 0;
}

static int odd(void)
{
    static const char *const parts[] = {
        " ", "a b", "tab\there", "nl\nx", "\x01\x7f", "\xff\xfe", "caf\xc3\xa9", "%s%n",
        ".", "..", "...", "-", "*", "?[a]", "\\", "'\"", NULL,
    };
    for (int i = 0; parts[i]; i++) {
        char n[300];
        snprintf(n, sizeof n, "/%s", parts[i]);
        if (strcmp(parts[i], ".") && strcmp(parts[i], ".."))
            snprintf(n, sizeof n, "/%s%s", name + 1, parts[i]);
        printf("[");
        int r, e;
        for (const char *p = n; *p; p++)
            printf("%02x", (unsigned char)*p);
        printf("]");
        errno = 0;
        sem_t *s = sem_open(n, O_CREAT, 0600, 2);
        int v = -1;
        if (s != SEM_FAILED)
            sem_getvalue(s, &v);
        printf(" sem_open %d %d value %d", s != SEM_FAILED, errno, v);
        char path[400];
        snprintf(path, sizeof path, "/dev/shm/sem.%s", n + 1);
        struct stat st;
        printf(" file %d", lstat(path, &st) == 0 && S_ISREG(st.st_mode));
        if (s != SEM_FAILED)
            printf(" close %d", sem_close(s));
        errno = 0;
        r = sem_unlink(n), e = errno;
        printf(" sem_unlink %d %d", r, e);
        errno = 0;
        int fd = shm_open(n, O_CREAT | O_RDWR, 0600);
        printf(" shm_open %d %d", fd >= 0, errno);
        if (fd >= 0)
            close(fd);
        errno = 0;
        fd = shm_open(n, O_RDONLY, 0);
        printf(" shm_open rdonly %d %d", fd >= 0, errno);
        if (fd >= 0)
            close(fd);
        errno = 0;
        r = shm_unlink(n), e = errno;
        printf(" shm_unlink %d %d\n", r, e);
    }
    left(name + 1);
    return 0;
}

static sem_t *early_sem;
static int early_errno;

static void early(int argc, char **argv, char **envp)
{
    (void)envp;
    if (argc > 2 && !strcmp(argv[1], "early")) {
        snprintf(name, sizeof name, "/%s", argv[2]);
        errno = 0;
        early_sem = sem_open(name, O_CREAT, 0600, 5);
        early_errno = errno;
    }
}
__attribute__((section(".preinit_array"), used)) static void (*const preinit)(int, char **,
                                                                             char **) = early;

static void again(sem_t *first, int first_errno)
{
    printf("first %d errno %d\n", first != SEM_FAILED, first_errno);
    sem_t *s = sem_open(name, 0);
    printf("again %d same %d\n", s != SEM_FAILED, s == first);
    int v = -1;
    sem_post(s);
    sem_getvalue(first, &v);
    printf("value %d\n", v);
    SAY("close", sem_close(s));
    sem_getvalue(first, &v); /* still mapped: one reference left */
    printf("value %d\n", v);
    SAY("close", sem_close(first));
    SAY("close again", sem_close(first));
    sem_t *t = sem_open(name, 0); /* mapped anew: the value is the file's */
    sem_getvalue(t, &v);
    printf("reopened %d value %d\n", t != SEM_FAILED, v);
    SAY("close", sem_close(t));
    SAY("unlink", sem_unlink(name));
}

static int sandbox(void)
{
    sem_t *first = sem_open(name, O_CREAT, 0600, 5);
    int e = errno;
    struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = {1, &allow};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        return 3;
    again(first, e);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    snprintf(name, sizeof name, "/%s", argv[2]);
    if (!strcmp(argv[1], "full"))
        return full();
    if (!strcmp(argv[1], "race"))
        return race(argc > 3 ? atoi(argv[3]) : 8);
    if (!strcmp(argv[1], "odd"))
        return odd();
    if (!strcmp(argv[1], "early")) {
        again(early_sem, early_errno);
        return 0;
    }
    if (!strcmp(argv[1], "sandbox"))
        return sandbox();
    return 2;
}
