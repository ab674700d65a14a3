/* The wrapped functions no other test program called (tests/test_wrappers.py): every exec and
 * spawn variant on a program that does not exist (the call fails, returns, and is recorded with
 * ENOENT), fexecve on a descriptor that is not open, posix_fadvise, pwritev2 and preadv2 on a
 * file, newlocale.  Prints the spawns' and posix_fadvise's results and the bytes moved. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <locale.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/uio.h>
#include <unistd.h>

extern char **environ;

int main(void)
{
    char *argv[] = {"none", NULL};
    const char *path = "/nonexistent/iotrace-none", *name = "iotrace-none-on-path";
    execv(path, argv);
    execvpe(name, argv, environ);
    execlp(name, "none", (char *)NULL);
    execle(path, "none", (char *)NULL, environ);
    fexecve(-1, argv, environ);
    pid_t pid;
    int r1 = posix_spawn(&pid, path, NULL, NULL, argv, environ);
    int r2 = posix_spawnp(&pid, name, NULL, NULL, argv, environ);
    int fd = open("fadvise.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
    int r3 = posix_fadvise(fd, 0, 4096, POSIX_FADV_SEQUENTIAL);
    char buf[10] = "0123456789";
    struct iovec iov = {buf, sizeof buf};
    ssize_t w = pwritev2(fd, &iov, 1, 100, 0), r = preadv2(fd, &iov, 1, 104, 0);
    close(fd);
    locale_t loc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (loc)
        freelocale(loc);
    printf("%d %d %d %zd %zd\n", r1, r2, r3, w, r);
    return 0;
}
