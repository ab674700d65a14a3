/* A thread of the smallest stack POSIX allows (PTHREAD_STACK_MIN: 16 KiB here, its TLS and
 * thread descriptor taken out of it) opens a file by a relative name, writes, reads it back
 * through stdio, renames it: the shim's wrappers must fit in what is left. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void *worker(void *arg)
{
    static char buf[4096];
    memset(buf, 'a', sizeof buf);
    int fd = open("small.out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return NULL;
    for (int i = 0; i < 10; i++)
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
            return NULL;
    close(fd);
    FILE *f = fopen("small.out", "r");
    if (!f || fread(buf, 1, sizeof buf, f) != sizeof buf)
        return NULL;
    fclose(f);
    return rename("small.out", "small.done") == 0 ? arg : NULL;
}

int main(void)
{
    pthread_attr_t at;
    pthread_t t;
    void *ok = NULL;
    pthread_attr_init(&at);
    if (pthread_attr_setstacksize(&at, PTHREAD_STACK_MIN) ||
        pthread_create(&t, &at, worker, &at) || pthread_join(t, &ok))
        return 3;
    printf("%s %d\n", ok ? "ok" : "failed", (int)PTHREAD_STACK_MIN);
    return ok ? 0 : 1;
}
