/* 4 threads, each writing 10 records of (index+1)*100 bytes to its own file. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *work(void *arg)
{
    long i = (long)arg;
    char name[32], buf[400];
    memset(buf, 'a' + (int)i, sizeof buf);
    snprintf(name, sizeof name, "t%ld.dat", i);
    int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (int k = 0; k < 10; k++)
        write(fd, buf, (size_t)(i + 1) * 100);
    close(fd);
    printf("thread %ld tid %ld\n", i, (long)syscall(SYS_gettid));
    return NULL;
}

int main(void)
{
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, work, (void *)i);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    return 0;
}
