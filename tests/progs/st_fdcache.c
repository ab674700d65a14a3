/* Raw writes (missed) on descriptor numbers whose file changes between them in every way the
 * stracer's fd -> path cache must notice (stracer/_loop.c, fd_path): a wrapped close and open
 * (no stop), a wrapped dup2, fopen/fclose (libc-internal, covered stops), raw openat/close
 * (missed stops), and another thread.  Each raw write must carry the file it went to. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

static void raw(int fd, const char *what)
{
    syscall(SYS_write, fd, what, 1);
}

static void *other(void *arg)
{
    int *fd = arg;
    close(*fd);
    *fd = open("eight", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    return NULL;
}

int main(void)
{
    int fd = open("one", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (int i = 0; i < 3; i++)
        raw(fd, "1");
    close(fd);
    int again = open("two", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (int i = 0; i < 3; i++)
        raw(again, "2");
    int three = open("three", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(three, again);
    raw(again, "3");
    close(three);
    close(again);

    FILE *f = fopen("four", "w");
    raw(fileno(f), "4");
    fclose(f);
    f = fopen("five", "w");
    raw(fileno(f), "5");
    fclose(f);

    int r = (int)syscall(SYS_openat, AT_FDCWD, "six", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    raw(r, "6");
    syscall(SYS_close, r);
    r = (int)syscall(SYS_openat, AT_FDCWD, "seven", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    raw(r, "7");

    pthread_t t;
    pthread_create(&t, NULL, other, &r);
    pthread_join(t, NULL);
    raw(r, "8");
    close(r);
    return 0;
}
