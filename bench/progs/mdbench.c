/* mdtest-like metadata load (bench/cost_bench.py, case md): every rank creates (open O_CREAT,
 * write 8 B, close), stats, reads (open, read, close) and removes N files of its own in one
 * shared directory, each phase between barriers.  Then the in-process microbenchmark of the
 * same calls: the same four steps N times on one file name, each step timed on its own (the
 * thread's CPU clock read around it: the same cost traced or not).  Rank 0 prints the slowest
 * rank's microseconds per file of each phase and of the loop (each step, and the whole), on
 * the wall clock and in the thread's CPU time (what the calls cost, whatever else the machine
 * runs), and what the wall time holds beside the CPU: the phase's time off the CPU, the part of
 * it spent runnable, waiting for a CPU (the kernel's run_delay of the thread: preempted by
 * whatever else runs), and its context switches, involuntary (preempted: the machine's load)
 * and voluntary (blocked: the directory's lock, which the ranks share).  The barriers sleep (MPI_Ibarrier polled every
 * 20 us): a rank done first does not spin on a CPU the other rank's phase could use, as
 * mdtest's barriers (Open MPI's MPI_Barrier) do, which made its 2-rank wall times unreadable. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char name[4096];

static double cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* A barrier that sleeps while it waits. */
static void barrier(void)
{
    MPI_Request rq;
    int done = 0;
    MPI_Ibarrier(MPI_COMM_WORLD, &rq);
    for (;;) {
        MPI_Test(&rq, &done, MPI_STATUS_IGNORE);
        if (done)
            return;
        nanosleep(&(struct timespec){0, 20000}, NULL);
    }
}

/* The thread's time runnable but not running, in us (/proc/thread-self/schedstat's second
 * field: the kernel's run_delay); -1e9 where the kernel does not say (the phase's figure is
 * then negative: unknown). */
static double wait_us(void)
{
    unsigned long long run, delay;
    FILE *f = fopen("/proc/thread-self/schedstat", "re");
    int ok = f && fscanf(f, "%llu %llu", &run, &delay) == 2;
    if (f)
        fclose(f);
    return ok ? delay / 1e3 : -1e9;
}

/* The thread's context switches: voluntary, involuntary. */
static void switches(double *v, double *iv)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    *v = (double)ru.ru_nvcsw;
    *iv = (double)ru.ru_nivcsw;
}

static const char *fname(const char *dir, int rank, int i)
{
    snprintf(name, sizeof name, "%s/file.%d.%d", dir, rank, i);
    return name;
}

static void one(const char *path, int phase)
{
    char buf[8] = "12345678";
    struct stat st;
    int fd;
    switch (phase) {
    case 0:
        fd = open(path, O_CREAT | O_WRONLY, 0644);
        if (fd < 0 || write(fd, buf, sizeof buf) != sizeof buf)
            MPI_Abort(MPI_COMM_WORLD, 1);
        close(fd);
        break;
    case 1:
        if (stat(path, &st) != 0)
            MPI_Abort(MPI_COMM_WORLD, 2);
        break;
    case 2:
        fd = open(path, O_RDONLY);
        if (fd < 0 || read(fd, buf, sizeof buf) != sizeof buf)
            MPI_Abort(MPI_COMM_WORLD, 3);
        close(fd);
        break;
    default:
        if (unlink(path) != 0)
            MPI_Abort(MPI_COMM_WORLD, 4);
    }
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    const char *dir = argv[1];
    int n = atoi(argv[2]);
    static const char *names[] = {"create", "stat", "read", "remove"};
    /* wall, then CPU; then CPU of each step in the loop; then per phase the us off the CPU,
     * and the voluntary and involuntary switches, per 1,000 files; then per phase the us
     * waiting for a CPU */
    double us[30] = {0};
    for (int phase = 0; phase < 4; phase++) {
        barrier();
        double v0, iv0, v1, iv1;
        switches(&v0, &iv0);
        double w0 = wait_us(), t0 = MPI_Wtime(), c0 = cpu_us();
        for (int i = 0; i < n; i++)
            one(fname(dir, rank, i), phase);
        us[phase] = (MPI_Wtime() - t0) * 1e6 / n;
        us[5 + phase] = (cpu_us() - c0) / n;
        us[26 + phase] = (wait_us() - w0) / n;
        switches(&v1, &iv1);
        us[14 + phase] = us[phase] - us[5 + phase];
        us[18 + phase] = (v1 - v0) * 1000 / n;
        us[22 + phase] = (iv1 - iv0) * 1000 / n;
    }
    barrier();
    fname(dir, rank, -1);
    double t0 = MPI_Wtime(), c0 = cpu_us();
    for (int i = 0; i < n; i++)
        for (int phase = 0; phase < 4; phase++) {
            double c = cpu_us();
            one(name, phase);
            us[10 + phase] += cpu_us() - c;
        }
    us[4] = (MPI_Wtime() - t0) * 1e6 / n;
    us[9] = (cpu_us() - c0) / n;
    for (int p = 0; p < 4; p++)
        us[10 + p] /= n;
    double mx[30];
    MPI_Reduce(us, mx, 30, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        for (int p = 0; p < 4; p++)
            printf("%s %.3f cpu_%s %.3f cpu_loop_%s %.3f off_%s %.3f vcs_%s %.3f ivcs_%s %.3f "
                   "rq_%s %.3f ", names[p], mx[p], names[p], mx[5 + p], names[p], mx[10 + p],
                   names[p], mx[14 + p], names[p], mx[18 + p], names[p], mx[22 + p], names[p],
                   mx[26 + p]);
        printf("files %.3f loop %.3f cpu_files %.3f cpu_loop %.3f\n", mx[0] + mx[1] + mx[2] + mx[3],
               mx[4], mx[5] + mx[6] + mx[7] + mx[8], mx[9]);
    }
    MPI_Finalize();
    return 0;
}
