/* The cookie fast path (docs/stracer.md): every wrapper whose real call becomes a raw syscall
 * under the stracer, with results and errno values printed one line per call, so that a run
 * under `iotrace run`, one with --no-stracer and one untraced can be compared line by line.
 * Descriptor numbers, sizes, modes and errno values are deterministic; inode numbers are only
 * compared with each other.
 *
 *   ck_calls            the calls, in the current directory, where "link" -> "f1" (symlink is
 *                       not wrapped: the test makes it)
 *   ck_calls eintr      a blocking pipe read interrupted by a signal: EINTR without SA_RESTART,
 *                       restarted with it
 *   ck_calls cancel     pthread_cancel of a thread blocked in read(pipe), and a deferred
 *                       self-cancel at the read of a single-threaded process
 *   ck_calls chk        __read_chk with n > buflen: glibc's fortify abort
 *   ck_calls open2      __open_2 with O_CREAT: glibc's fortify abort
 *   ck_calls none       nothing: the shim's own start and exit */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

extern int __xstat(int, const char *, struct stat *);
extern int __lxstat(int, const char *, struct stat *);
extern int __fxstat(int, int, struct stat *);
extern int __fxstatat(int, int, const char *, struct stat *, int);
extern ssize_t __read_chk(int, void *, size_t, size_t);
extern ssize_t __pread_chk(int, void *, size_t, off_t, size_t);
extern int __open_2(const char *, int);

/* One line per call: what it returned and errno (0 when it succeeded). */
static void show(const char *what, long r)
{
    printf("%-28s %ld %s\n", what, r, r < 0 ? strerrorname_np(errno) : "-");
    errno = 0;
}

static void show_stat(const char *what, int r, const struct stat *st)
{
    show(what, r);
    if (r == 0)
        printf("  mode %o size %lld nlink %lu\n", st->st_mode, (long long)st->st_size,
               (unsigned long)st->st_nlink);
}

/* never mapped: EFAULT (volatile: the compiler must not see it is a bad pointer) */
static volatile unsigned long bad_addr = 16, minus_one = (unsigned long)-1;
#define BAD_PTR ((void *)bad_addr)

static void calls(void)
{
    char buf[64];
    struct stat st, st2;
    int fd = open("f1", O_CREAT | O_WRONLY | O_TRUNC, 0640);
    show("open f1", fd);
    show("write", write(fd, "hello, world\n", 13));
    show("write bad buffer", write(fd, BAD_PTR, 10));
    show("write bad fd", write(99, "x", 1));
    show("lseek cur", lseek(fd, 0, SEEK_CUR));
    show("lseek bad whence", lseek(fd, 0, 42));
    show("pwrite", pwrite(fd, "HELLO", 5, 0));
    show("pwrite negative offset", pwrite(fd, "x", 1, -1));
    show("ftruncate", ftruncate(fd, 20));
    show("fallocate", fallocate(fd, 0, 0, 4096));
    show("fallocate bad mode", fallocate(fd, 0x7fff0000, 0, 1));
    show("fsync", fsync(fd));
    show("fdatasync", fdatasync(fd));
    show("close", close(fd));
    show("close again", close(fd));
    show("fsync closed", fsync(fd));

    fd = open("f1", O_RDONLY);
    show("open f1 rdonly", fd);
    memset(buf, 0, sizeof buf);
    show("read", read(fd, buf, 5));
    printf("  %s\n", buf);
    show("read bad buffer", read(fd, BAD_PTR, 5));
    show("pread", pread(fd, buf, 5, 7));
    printf("  %.5s\n", buf);
    show("__read_chk", __read_chk(fd, buf, 4, sizeof buf));
    show("__pread_chk", __pread_chk(fd, buf, 4, 0, sizeof buf));
    show("write rdonly", write(fd, "x", 1));
    show("lseek end", lseek(fd, 0, SEEK_END));
    show("lseek64 set", lseek64(fd, 3, SEEK_SET));
    struct iovec iov[2] = {{buf, 3}, {buf + 3, 4}};
    show("readv", readv(fd, iov, 2));
    show("preadv", preadv(fd, iov, 2, 1));
    show("readv bad count", readv(fd, iov, (int)minus_one));
    show("close", close(fd));

    /* offsets above 4 GiB: preadv/pwritev pass them in two registers */
    fd = open("big", O_CREAT | O_RDWR | O_TRUNC, 0600);
    off_t far = (1LL << 32) + 5;
    struct iovec w[2] = {{"ab", 2}, {"cde", 3}};
    show("pwritev far", pwritev(fd, w, 2, far));
    show("preadv far", preadv(fd, iov, 2, far + 1));
    printf("  %.4s\n", buf);
    show("pwritev negative", pwritev(fd, w, 2, -5));
    show("writev", writev(fd, w, 2));
    show("fstat big", fstat(fd, &st));
    printf("  size %lld\n", (long long)st.st_size);
    show("close", close(fd));
    show("unlink big", unlink("big"));

    /* the stat family */
    show_stat("stat f1", stat("f1", &st), &st);
    show_stat("stat link", stat("link", &st2), &st2);
    printf("  same inode %d\n", st.st_ino == st2.st_ino);
    show_stat("lstat link", lstat("link", &st2), &st2);
    show_stat("stat missing", stat("missing", &st), &st);
    show_stat("stat empty", stat("", &st), &st);
    show_stat("stat bad path", stat(BAD_PTR, &st), &st);
    show_stat("stat bad buffer", stat("f1", BAD_PTR), NULL);
    fd = open("f1", O_RDONLY);
    show_stat("fstat", fstat(fd, &st), &st);
    show_stat("fstat -1", fstat(-1, &st), &st);
    show_stat("fstat AT_FDCWD", fstat(AT_FDCWD, &st), &st);
    show_stat("fstat 99", fstat(99, &st), &st);
    show_stat("fstatat", fstatat(AT_FDCWD, "link", &st, AT_SYMLINK_NOFOLLOW), &st);
    show_stat("fstatat empty path", fstatat(fd, "", &st, AT_EMPTY_PATH), &st);
    show_stat("fstatat bad flags", fstatat(fd, "", &st, 0x40000000), &st);
    show_stat("__xstat 1", __xstat(1, "f1", &st), &st);
    show_stat("__xstat 0", __xstat(0, "f1", &st), &st);
    show_stat("__xstat 3", __xstat(3, "f1", &st), &st);
    show_stat("__xstat -1", __xstat(-1, "f1", &st), &st);
    show_stat("__lxstat 1", __lxstat(1, "link", &st), &st);
    show_stat("__fxstat 1", __fxstat(1, fd, &st), &st);
    show_stat("__fxstat 1 bad fd", __fxstat(1, -1, &st), &st);
    show_stat("__fxstat 2", __fxstat(2, fd, &st), &st);
    show_stat("__fxstatat 1", __fxstatat(1, AT_FDCWD, "f1", &st, 0), &st);
    struct statx sx;
    show("statx", statx(AT_FDCWD, "f1", 0, STATX_SIZE, &sx));
    printf("  size %llu\n", (unsigned long long)sx.stx_size);
    show("statx missing", statx(AT_FDCWD, "missing", 0, STATX_SIZE, &sx));

    /* descriptors */
    show("dup", dup(fd));
    show("dup bad", dup(99));
    show("dup2 same", dup2(fd, fd));
    show("dup2 same bad", dup2(98, 98));
    show("dup2", dup2(fd, 20));
    show("dup2 bad", dup2(99, 21));
    show("dup3 same", dup3(fd, fd, 0));
    show("dup3", dup3(fd, 21, O_CLOEXEC));
    show("dup3 bad flags", dup3(fd, 22, 0x1234));
    show("fcntl F_DUPFD", fcntl(fd, F_DUPFD, 30));
    show("fcntl F_DUPFD_CLOEXEC", fcntl(fd, F_DUPFD_CLOEXEC, 40));
    show("fcntl F_GETFD", fcntl(40, F_GETFD));
    show("fcntl F_DUPFD bad", fcntl(99, F_DUPFD, 0));
    show("close_range", close_range(20, 21, 0));
    show("close 20", close(20));
    closefrom(30);
    show("close 40", close(40));
    int out = open("copy", O_CREAT | O_WRONLY | O_TRUNC, 0600);
    off_t soff = 0;
    show("sendfile", sendfile(out, fd, &soff, 100));
    printf("  offset %lld\n", (long long)soff);
    show("sendfile bad", sendfile(out, 99, NULL, 1));
    show("close", close(out));
    show("close", close(fd));
    int c = creat("c1", 0600);
    show("creat", c);
    show("close", close(c));
    show("open missing", open("missing", O_RDONLY));
    show("open exists excl", open("f1", O_CREAT | O_EXCL | O_WRONLY, 0600));
    int dot = openat(AT_FDCWD, ".", O_RDONLY | O_DIRECTORY);
    show("openat dir", dot);
    show("openat rel", openat(dot, "f1", O_RDONLY));
    show("openat bad dirfd", openat(99, "f1", O_RDONLY));
    show("openat bad path", openat(AT_FDCWD, BAD_PTR, O_RDONLY));
    show("__open_2", __open_2("f1", O_RDONLY));
    show("close_range all", close_range(3, ~0U, 0));

    int p[2];
    show("pipe", pipe(p));
    show("pipe2", pipe2(p, O_CLOEXEC | O_NONBLOCK));
    show("read empty nonblocking", read(p[0], buf, 1));
    show("pipe2 bad flags", pipe2(p, 0x1234));
    show("pipe bad pointer", pipe(BAD_PTR));
    show("close_range pipes", close_range(3, 6, 0));
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    show("socket", s);
    show("socket bad", socket(12345, SOCK_STREAM, 0));
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, "no-such-socket");
    show("connect", connect(s, (struct sockaddr *)&sa, sizeof sa));
    show("accept not listening", accept(s, NULL, NULL));
    show("accept4 bad fd", accept4(99, NULL, NULL, SOCK_CLOEXEC));
    show("close", close(s));

    /* names */
    show("access", access("f1", R_OK));
    show("access missing", access("missing", F_OK));
    show("faccessat", faccessat(AT_FDCWD, "f1", W_OK, AT_EACCESS));
    show("faccessat bad flags", faccessat(AT_FDCWD, "f1", R_OK, 0x4000));
    show("mkdir", mkdir("d", 0750));
    show("mkdir exists", mkdir("d", 0750));
    int d = open("d", O_RDONLY | O_DIRECTORY);
    show("open d", d);
    show("mkdirat", mkdirat(d, "sub", 0700));
    show("rename", rename("c1", "c2"));
    show("rename missing", rename("c1", "c3"));
    show("renameat", renameat(AT_FDCWD, "c2", d, "c3"));
    show("renameat2 noreplace", renameat2(d, "c3", AT_FDCWD, "f1", RENAME_NOREPLACE));
    show("renameat2", renameat2(d, "c3", AT_FDCWD, "c4", 0));
    show("rmdir not empty", rmdir("d"));
    show("unlinkat dir", unlinkat(d, "sub", AT_REMOVEDIR));
    show("unlinkat missing", unlinkat(d, "sub", 0));
    show("truncate", truncate("c4", 7));
    show_stat("stat c4", stat("c4", &st), &st);
    show("truncate missing", truncate("missing", 1));
    show("unlink", unlink("c4"));
    show("unlink missing", unlink("c4"));
    show("close", close(d));
    show("rmdir", rmdir("d"));
    show("unlink link", unlink("link"));
    show("unlink copy", unlink("copy"));
}

/* ---- EINTR ---- */

static int wake[2];

static void on_alarm(int sig)
{
    (void)sig;
}

static void on_alarm_write(int sig)
{
    (void)sig;
    write(wake[1], "w", 1);
}

static void eintr(void)
{
    char c;
    pipe(wake);
    struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART */
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {.it_value = {0, 100000}};
    setitimer(ITIMER_REAL, &it, NULL);
    show("read interrupted", read(wake[0], &c, 1));
    sa.sa_handler = on_alarm_write;
    sa.sa_flags = SA_RESTART; /* the read restarts and gets the handler's byte */
    sigaction(SIGALRM, &sa, NULL);
    setitimer(ITIMER_REAL, &it, NULL);
    show("read restarted", read(wake[0], &c, 1));
    printf("  %c\n", c);
}

/* ---- cancellation ---- */

static int cp[2];

static void cleanup(void *what)
{
    printf("cleanup: %s\n", (const char *)what);
}

static void *blocked_reader(void *unused)
{
    (void)unused;
    char c;
    pthread_cleanup_push(cleanup, "blocked read");
    read(cp[0], &c, 1); /* nothing ever comes */
    pthread_cleanup_pop(0);
    printf("read returned\n");
    return NULL;
}

static void cancel(void)
{
    pipe(cp);
    pthread_t t;
    pthread_create(&t, NULL, blocked_reader, NULL);
    usleep(200000);
    pthread_cancel(t);
    void *res;
    pthread_join(t, &res);
    printf("joined: %s\n", res == PTHREAD_CANCELED ? "canceled" : "not canceled");
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "calls";
    if (strcmp(mode, "calls")) /* these end in a signal or a cancel: no output held back */
        setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(mode, "calls")) {
        calls();
    } else if (!strcmp(mode, "eintr")) {
        eintr();
    } else if (!strcmp(mode, "cancel")) {
        cancel();
    } else if (!strcmp(mode, "selfcancel")) {
        /* deferred self-cancel of a single-threaded process: the read acts on it */
        int q[2];
        pipe(q);
        write(q[1], "x", 1);
        printf("self-cancel\n");
        pthread_cancel(pthread_self());
        char c;
        read(q[0], &c, 1);
        printf("not canceled\n");
    } else if (!strcmp(mode, "chk")) {
        char small[4];
        int fd = open("/dev/zero", O_RDONLY);
        printf("chk\n");
        __read_chk(fd, small, 8, sizeof small);
        printf("not aborted\n");
    } else if (!strcmp(mode, "open2")) {
        printf("open2\n");
        __open_2("f1", O_CREAT | O_WRONLY);
        printf("not aborted\n");
    }
    return 0;
}
