/* The stat entry points binaries built against glibc < 2.33 call (version 1 = _STAT_VER on
 * x86_64), next to the glibc 2.33 symbols: all must be traced, with the same results. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

extern int __xstat(int, const char *, struct stat *);
extern int __lxstat(int, const char *, struct stat *);
extern int __fxstat(int, int, struct stat *);
extern int __fxstatat(int, int, const char *, struct stat *, int);
extern int __xstat64(int, const char *, struct stat64 *);
extern int __lxstat64(int, const char *, struct stat64 *);
extern int __fxstat64(int, int, struct stat64 *);
extern int __fxstatat64(int, int, const char *, struct stat64 *, int);

#define V 1

static void show(const char *what, int r1, struct stat *a, int r2, struct stat *b, int r3,
                 struct stat64 *c)
{
    printf("%s: new %d %lld, old %d %lld, old64 %d %lld\n", what, r1, (long long)a->st_size, r2,
           (long long)b->st_size, r3, (long long)c->st_size);
}

int main(void)
{
    struct stat a, b;
    struct stat64 c;
    int fd = open("f.txt", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    write(fd, "hello, world\n", 13);
    int r1, r2, r3; /* one call a statement: the event order is the program's */
    r1 = stat("f.txt", &a);
    r2 = __xstat(V, "f.txt", &b);
    r3 = __xstat64(V, "f.txt", &c);
    show("stat", r1, &a, r2, &b, r3, &c);
    r1 = lstat("f.txt", &a);
    r2 = __lxstat(V, "f.txt", &b);
    r3 = __lxstat64(V, "f.txt", &c);
    show("lstat", r1, &a, r2, &b, r3, &c);
    r1 = fstat(fd, &a);
    r2 = __fxstat(V, fd, &b);
    r3 = __fxstat64(V, fd, &c);
    show("fstat", r1, &a, r2, &b, r3, &c);
    r1 = fstatat(AT_FDCWD, "f.txt", &a, 0);
    r2 = __fxstatat(V, AT_FDCWD, "f.txt", &b, 0);
    r3 = __fxstatat64(V, AT_FDCWD, "f.txt", &c, 0);
    show("fstatat", r1, &a, r2, &b, r3, &c);
    errno = 0;
    r2 = __xstat(V, "missing.txt", &b);
    printf("__xstat missing %d errno %d\n", r2, errno);
    close(fd);
    return 0;
}
