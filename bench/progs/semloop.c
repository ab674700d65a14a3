/* sem_open(O_CREAT) + sem_close + sem_unlink, N times (bench/cost_bench.py): what OMPIO does
 * at every MPI_File_open.  Prints the wall-clock ns per iteration of the timed loop. */
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    char name[64];
    snprintf(name, sizeof name, "/iotrace-bench-%d", (int)getpid());
    double t0 = 0;
    for (int i = -n / 10; i < n; i++) { /* a tenth as warm-up */
        if (i == 0)
            t0 = now();
        sem_t *s = sem_open(name, O_CREAT, 0600, 1);
        if (s == SEM_FAILED)
            return 1;
        sem_close(s);
        sem_unlink(name);
    }
    printf("ns %.1f\n", (now() - t0) / n);
    return 0;
}
