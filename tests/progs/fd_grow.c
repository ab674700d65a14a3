/* The main thread opens and closes /dev/null in a loop while other threads come and go, each
 * writing once (a thread's first event takes a chunk of the log; every 128th chunk grows it).
 * Untraced, every open gets the same, lowest free descriptor; the count of those that did not
 * is printed.  At most OPENS_MAX opens, whatever the machine's speed: their events and the
 * threads' chunks stay within the log's size at creation (32 MiB: growing past it reopens the
 * log by name, writer.c).  fd_grow THREADS */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define OPENS_MAX 100000

static int out;
static volatile int done;

static void *worker(void *arg)
{
    (void)arg;
    return (void *)(long)write(out, "x", 1);
}

static void *spawner(void *arg)
{
    long n = (long)arg;
    for (long i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker, NULL) == 0)
            pthread_join(t, NULL);
    }
    done = 1;
    return NULL;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000;
    out = open("/dev/null", O_WRONLY);
    int lowest = open("/dev/null", O_RDONLY);
    close(lowest);
    pthread_t s;
    if (out < 0 || lowest < 0 || pthread_create(&s, NULL, spawner, (void *)n) != 0)
        return 1;
    long opens = 0, other = 0;
    while (!done && opens < OPENS_MAX) {
        int fd = open("/dev/null", O_RDONLY);
        opens++;
        other += fd != lowest;
        close(fd);
    }
    pthread_join(s, NULL);
    printf("other %ld\n", other);
    fprintf(stderr, "opens %ld\n", opens);
    return 0;
}
