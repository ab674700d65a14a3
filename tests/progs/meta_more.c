/* What real programs call beyond open/read/write (tar, rsync, make, git): permissions, owners,
 * links, times, realpath, temporary files, eventfd, popen; each result and errno printed, the
 * same traced or not.  Run in an empty directory. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <utime.h>

#define SHOW(name, expr)                                                                     \
    do {                                                                                     \
        errno = 0;                                                                           \
        long r_ = (long)(expr);                                                              \
        printf("%s %ld %s\n", name, r_, r_ < 0 ? strerrorname_np(errno) : "-");              \
    } while (0)

static const char *base(const char *p)
{
    const char *s = p ? strrchr(p, '/') : NULL;
    return s ? s + 1 : p ? p : "(null)";
}

int main(void)
{
    ssize_t n;
    int fd = open("f", O_RDWR | O_CREAT | O_TRUNC, 0644);
    SHOW("chmod", chmod("f", 0600));
    SHOW("chmod missing", chmod("missing", 0600));
    SHOW("fchmod", fchmod(fd, 0640));
    SHOW("fchmod bad", fchmod(-1, 0640));
    SHOW("fchmodat", fchmodat(AT_FDCWD, "f", 0644, 0));
    SHOW("fchmodat nofollow", fchmodat(AT_FDCWD, "f", 0644, AT_SYMLINK_NOFOLLOW));
    SHOW("fchmodat badflag", fchmodat(AT_FDCWD, "f", 0644, 0x4000));
    SHOW("chown", chown("f", getuid(), getgid()));
    SHOW("chown missing", chown("missing", (uid_t)-1, (gid_t)-1));
    SHOW("lchown", lchown("f", (uid_t)-1, (gid_t)-1));
    SHOW("fchown", fchown(fd, (uid_t)-1, (gid_t)-1));
    SHOW("fchown bad", fchown(-1, (uid_t)-1, (gid_t)-1));
    SHOW("fchownat", fchownat(AT_FDCWD, "f", (uid_t)-1, (gid_t)-1, AT_SYMLINK_NOFOLLOW));
    SHOW("link", link("f", "g"));
    SHOW("link again", link("f", "g"));
    SHOW("linkat", linkat(AT_FDCWD, "f", AT_FDCWD, "h", 0));
    SHOW("symlink", symlink("f", "s"));
    SHOW("symlink again", symlink("f", "s"));
    SHOW("symlinkat", symlinkat("nowhere", AT_FDCWD, "s2"));
    struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
    SHOW("utimensat", utimensat(AT_FDCWD, "f", ts, 0));
    SHOW("utimensat missing", utimensat(AT_FDCWD, "missing", ts, 0));
    SHOW("futimens", futimens(fd, NULL));
    SHOW("futimens bad", futimens(-1, NULL));
    struct timeval tv[2] = {{1000000000, 0}, {1000000000, 0}};
    SHOW("utimes", utimes("f", tv));
    struct utimbuf ub = {1000000000, 1000000000};
    SHOW("utime", utime("f", &ub));
    SHOW("utime missing", utime("missing", &ub));
    SHOW("lutimes", lutimes("s", tv));
    SHOW("futimes", futimes(fd, tv));
    SHOW("futimes bad", futimes(-1, tv));
    struct stat st;
    stat("f", &st);
    printf("mtime %ld mode %o\n", (long)st.st_mtime, st.st_mode & 07777);

    char buf[PATH_MAX];
    printf("realpath %s\n", base(realpath("s", buf)));
    errno = 0;
    const char *rp = realpath("missing", buf);
    printf("realpath missing %s %s\n", base(rp), strerrorname_np(errno));
    char *c = canonicalize_file_name("g");
    printf("canonicalize_file_name %s\n", base(c));
    free(c);

    char t1[] = "tmpXXXXXX", t2[] = "tmpXXXXXX", t3[] = "tmpXXXXXX.c", bad[] = "bad";
    int m = mkstemp(t1);
    n = write(m, "12345", 5);
    printf("mkstemp %d write %zd\n", m >= 0, n);
    close(m);
    m = mkostemp(t2, O_CLOEXEC);
    printf("mkostemp %d cloexec %d\n", m >= 0, (fcntl(m, F_GETFD) & FD_CLOEXEC) != 0);
    close(m);
    m = mkstemps(t3, 2);
    printf("mkstemps %d %s\n", m >= 0, strchr(t3, '.'));
    close(m);
    SHOW("mkstemp bad", mkstemp(bad));
    char d[] = "dXXXXXX";
    printf("mkdtemp %d\n", mkdtemp(d) != NULL);
    FILE *tf = tmpfile();
    int put = fputs("hello", tf);
    printf("tmpfile %d fputs %d\n", tf != NULL, put);
    fclose(tf);

    int e = eventfd(1, EFD_CLOEXEC);
    uint64_t v = 0;
    n = read(e, &v, 8);
    printf("eventfd %d read %zd %llu\n", e >= 0, n, (unsigned long long)v);
    close(e);
    SHOW("eventfd bad", eventfd(0, -1));

    FILE *p = popen("echo hi", "r");
    char line[16] = "";
    const char *got = fgets(line, sizeof line, p);
    printf("popen %d %s", p != NULL, got);
    printf("pclose %d\n", pclose(p));
    p = popen("exit 3", "r");
    printf("pclose exit %d\n", pclose(p));
    close(fd);
    return 0;
}
