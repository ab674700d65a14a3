/* Threads mapping and unmapping files of their own at once, interleaved with anonymous
 * mappings: every file mmap/munmap is logged once, with its own file's path. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define THREADS 4
#define ROUNDS 200

static void *work(void *arg)
{
    long t = (long)arg;
    char name[32];
    snprintf(name, sizeof name, "t%ld.bin", t);
    int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
    ftruncate(fd, 4096);
    long sum = 0;
    for (int i = 0; i < ROUNDS; i++) {
        char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        char *a = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        p[i] = (char)t;
        a[0] = p[i];
        sum += a[0];
        munmap(a, 8192);
        munmap(p, 4096);
    }
    close(fd);
    return (void *)sum;
}

int main(void)
{
    pthread_t th[THREADS];
    for (long t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, work, (void *)t);
    long total = 0;
    for (int t = 0; t < THREADS; t++) {
        void *r;
        pthread_join(th[t], &r);
        total += (long)r;
    }
    printf("total=%ld\n", total);
    return 0;
}
