/* MPI_Init, N x (MPI_File_open + MPI_File_close) of one file, MPI_Finalize
 * (bench/cost_bench.py).  Rank 0 prints the ms per open+close (slowest rank), the CPU
 * seconds its MPI_Init and MPI_Finalize took (getrusage, the process alone) and MPI_Init's wall
 * time. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static double cpu(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    double c0 = cpu(), w0 = now();
    MPI_Init(&argc, &argv);
    double c_init = cpu() - c0, w_init = now() - w0;
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    int n = argc > 2 ? atoi(argv[2]) : 20;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (int i = 0; i < n; i++) {
        MPI_File fh;
        if (MPI_File_open(MPI_COMM_WORLD, argv[1], MPI_MODE_CREATE | MPI_MODE_RDWR,
                          MPI_INFO_NULL, &fh) != MPI_SUCCESS)
            MPI_Abort(MPI_COMM_WORLD, 1);
        MPI_File_close(&fh);
    }
    double t = n ? (MPI_Wtime() - t0) / n : 0, tmax;
    MPI_Reduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    double c1 = cpu();
    MPI_Finalize();
    double c_fin = cpu() - c1;
    if (rank == 0)
        printf("open_ms %.4f init_cpu %.4f init_s %.4f fin_cpu %.4f\n", tmax * 1e3, c_init,
               w_init, c_fin);
    return 0;
}
