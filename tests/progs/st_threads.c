/* 4 threads, each a raw openat/write/close of its own file: 12 missed, 4 threads. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *dir;

static void *work(void *arg)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/t%ld.out", dir, (long)arg);
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    syscall(SYS_write, fd, "t\n", 2);
    syscall(SYS_close, fd);
    return NULL;
}

int main(int argc, char **argv)
{
    dir = argc > 1 ? argv[1] : ".";
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, work, (void *)i);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    return 0;
}
