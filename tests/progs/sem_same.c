/* Named semaphores and shared memory, every case whose result glibc decides (preload/wrap_shm.c
 * does them itself under a stracer): prints results, errno, address relations, the file's mode,
 * links and bytes, for comparison untraced vs traced.  argv[1]: a unique name.
 *   sem_same NAME            the cases
 *   sem_same NAME valid      the cases with valid names only (the shim's own under a stracer)
 *   sem_same NAME wait       create NAME (value 0), print "ready", wait for a post (10 s)
 *   sem_same NAME post       open NAME and post it */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char base[200];

/* a call's result and errno (sequenced: errno read after the call) */
#define SAY(label, call)                                                 \
    do {                                                                 \
        errno = 0;                                                       \
        long r_ = (long)(call);                                          \
        int e_ = errno;                                                  \
        printf("%s %ld %d\n", label, r_ < -1 ? -2 : r_ > 0 ? 1 : r_, e_); \
    } while (0)

static const char *nm(const char *suffix)
{
    static char buf[8][400];
    static int i;
    char *b = buf[i++ % 8];
    snprintf(b, 400, "/%s%s", base, suffix);
    return b;
}

static sem_t *op(const char *what, const char *name, int oflag, mode_t mode, unsigned value)
{
    errno = 0;
    sem_t *s = sem_open(name, oflag, mode, value);
    printf("%s: %s errno %d\n", what, s == SEM_FAILED ? "failed" : "ok", errno);
    return s;
}

static void file(const char *name)
{
    char path[600];
    snprintf(path, sizeof path, "/dev/shm/sem.%s", name + 1);
    struct stat st;
    if (lstat(path, &st) != 0) {
        printf("  file: none %d\n", errno);
        return;
    }
    printf("  file: mode %o links %d size %lld bytes", (unsigned)st.st_mode, (int)st.st_nlink,
           (long long)st.st_size);
    int fd = open(path, O_RDONLY);
    unsigned char b[64];
    ssize_t n = read(fd, b, sizeof b);
    close(fd);
    for (ssize_t i = 0; i < n; i++)
        printf(" %02x", b[i]);
    printf("\n");
}

static int pair(const char *mode)
{
    const char *name = nm("");
    if (!strcmp(mode, "wait")) {
        sem_t *s = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
        if (s == SEM_FAILED)
            return 3;
        printf("ready\n");
        fflush(stdout);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 10;
        int r = sem_timedwait(s, &ts);
        int v = -1;
        sem_getvalue(s, &v);
        printf("waited %d value %d\n", r, v);
        sem_close(s);
        sem_unlink(name);
        return r != 0;
    }
    sem_t *s = sem_open(name, 0);
    if (s == SEM_FAILED)
        return 4;
    printf("posted %d\n", sem_post(s));
    return sem_close(s) != 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    snprintf(base, sizeof base, "%s", argv[1]);
    int valid = argc > 2 && !strcmp(argv[2], "valid");
    if (argc > 2 && !valid)
        return pair(argv[2]);
    umask(022);
    char a[300], b[300];
    snprintf(a, sizeof a, "%s", nm("-a"));
    snprintf(b, sizeof b, "%s", nm("-b"));

    sem_t *s1 = op("create", a, O_CREAT, 0666, 3);
    file(a);
    sem_t *s2 = op("reopen", a, 0, 0, 0);
    printf("  same %d\n", s1 == s2);
    sem_t *s3 = op("reopen creat", a, O_CREAT, 0600, 9);
    printf("  same %d\n", s1 == s3);
    char slashes[300];
    snprintf(slashes, sizeof slashes, "//%.250s", a + 1);
    sem_t *s4 = op("reopen other spelling", slashes, 0, 0, 0);
    printf("  same %d\n", s4 == s1);
    int v = -1;
    sem_post(s1);
    sem_getvalue(s4, &v);
    printf("  value %d\n", v);
    op("excl exists", a, O_CREAT | O_EXCL, 0600, 1);
    SAY("close", sem_close(s1));
    SAY("close", sem_close(s2));
    sem_getvalue(s3, &v); /* still mapped: one reference left */
    printf("  value %d\n", v);
    SAY("close", sem_close(s3));
    SAY("close again", sem_close(s3));
    sem_t local;
    sem_init(&local, 0, 0);
    SAY("close unknown", sem_close(&local));
    SAY("close other spelling", sem_close(s4));
    sem_t *s5 = op("reopen after close", a, 0, 0, 0);
    sem_getvalue(s5, &v);
    printf("  value %d\n", v);
    sem_close(s5);

    sem_t *e = op("excl new", b, O_CREAT | O_EXCL, 0640, 0);
    file(b);
    sem_close(e);
    op("value too big", nm("-c"), O_CREAT, 0600, (unsigned)SEM_VALUE_MAX + 1);
    file(nm("-c"));
    op("missing", nm("-none"), 0, 0, 0);
    op("missing excl only", nm("-none"), O_EXCL, 0, 0);

    const char *bad[] = {"", "/", "//", "a/b", "/a/b", "a/", NULL};
    for (int i = 0; bad[i] && !valid; i++) {
        printf("[%s] ", bad[i]);
        op("bad", bad[i], O_CREAT, 0600, 1);
        SAY("  unlink", sem_unlink(bad[i]));
        SAY("  shm_open", shm_open(bad[i], O_RDWR | O_CREAT, 0600));
        SAY("  shm_unlink", shm_unlink(bad[i]));
    }
    int lens[] = {250, 251, 252, 255, 256, 257, 258, 259, 260, 261, 300};
    for (int i = 0; i < 11 && !valid; i++) {
        char n[400];
        memset(n, 'x', sizeof n);
        n[0] = '/';
        n[lens[i] + 1] = 0;
        printf("[len %d] ", lens[i]);
        sem_t *s = op("long", n, O_CREAT, 0600, 1);
        if (s != SEM_FAILED)
            sem_close(s);
        SAY("  unlink", sem_unlink(n));
        errno = 0;
        int fd = shm_open(n, O_RDWR | O_CREAT, 0600);
        printf("  shm_open %d %d\n", fd >= 0, errno);
        if (fd >= 0)
            close(fd);
        SAY("  shm_unlink", shm_unlink(n));
    }

    /* a directory and a symbolic link under the name */
    char path[600];
    snprintf(path, sizeof path, "/dev/shm/sem.%s-dir", base);
    mkdir(path, 0700);
    op("directory", nm("-dir"), 0, 0, 0);
    op("directory creat", nm("-dir"), O_CREAT, 0600, 1);
    rmdir(path);
    snprintf(path, sizeof path, "/dev/shm/sem.%s-lnk", base);
    symlink(a + 1, path);
    op("symlink", nm("-lnk"), 0, 0, 0);
    unlink(path);
    snprintf(path, sizeof path, "/dev/shm/%s-dir", base);
    mkdir(path, 0700);
    errno = 0;
    int fd = shm_open(nm("-dir"), O_RDWR, 0);
    printf("shm_open directory %d %d\n", fd >= 0, errno);
    errno = 0;
    fd = shm_open(nm("-dir"), O_RDONLY, 0);
    printf("shm_open directory rdonly %d %d cloexec %d\n", fd >= 0, errno,
           fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC));
    if (fd >= 0)
        close(fd);
    SAY("shm_unlink directory", shm_unlink(nm("-dir")));
    rmdir(path);

    /* a forked child shares the table: the same address, its own counts */
    sem_t *p = op("parent", a, 0, 0, 0);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        sem_t *c = sem_open(a, 0);
        printf("child same %d\n", c == p);
        SAY("child close", sem_close(c));
        SAY("child close", sem_close(p));
        SAY("child close again", sem_close(p));
        fflush(stdout);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    sem_getvalue(p, &v);
    printf("parent value %d\n", v);
    SAY("parent close", sem_close(p));
    SAY("unlink", sem_unlink(a));
    SAY("unlink", sem_unlink(b));
    SAY("unlink again", sem_unlink(a));
    return 0;
}
