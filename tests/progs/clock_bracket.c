/* Each thread (main and one more) writes 1 byte to /dev/null NW times in each of NR rounds,
 * reading CLOCK_MONOTONIC right before and right after each write, and sleeps 0.3 ms between
 * rounds (longer than the shim's clock anchors live: preload/clock.c).  At the end, one line
 * per write: "tid before after" (ns), for tests/test_stack.py's clock check. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define NR 60
#define NW 150

typedef struct {
    long tid;
    long long t[NR * NW][2];
} stamps;

static long long now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *run(void *arg)
{
    stamps *s = arg;
    s->tid = gettid();
    int fd = open("/dev/null", O_WRONLY);
    if (fd < 0)
        exit(1);
    for (int r = 0; r < NR; r++) {
        for (int i = 0; i < NW; i++) {
            long long *t = s->t[r * NW + i];
            t[0] = now();
            if (write(fd, "x", 1) != 1)
                exit(2);
            t[1] = now();
        }
        struct timespec pause = {0, 300000};
        nanosleep(&pause, NULL);
    }
    close(fd);
    return NULL;
}

int main(void)
{
    static stamps a, b;
    pthread_t th;
    if (pthread_create(&th, NULL, run, &b))
        return 3;
    run(&a);
    pthread_join(th, NULL);
    for (int k = 0; k < 2; k++) {
        stamps *s = k ? &b : &a;
        for (int i = 0; i < NR * NW; i++)
            printf("%ld %lld %lld\n", s->tid, s->t[i][0], s->t[i][1]);
    }
    return 0;
}
