/* A straggler before collective MPI-IO: every rank opens FILE, then twice the last rank works
 * 0.25 s (sleeps) before MPI_File_write_at_all of its 1 MiB block, which the others entered
 * at once; then the collective close.  The others' time in those calls is waiting for it.
 * usage: mpi_late FILE */
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
    static char buf[1 << 20];
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    memset(buf, 'a' + rank, sizeof buf);
    MPI_File fh;
    if (argc < 2 || MPI_File_open(MPI_COMM_WORLD, argv[1], MPI_MODE_CREATE | MPI_MODE_WRONLY,
                                  MPI_INFO_NULL, &fh) != MPI_SUCCESS)
        MPI_Abort(MPI_COMM_WORLD, 2);
    for (int step = 0; step < 2; step++) {
        if (rank == size - 1) {
            struct timespec ts = {0, 250000000};
            nanosleep(&ts, NULL);
        }
        MPI_Offset off = ((MPI_Offset)step * size + rank) * (MPI_Offset)sizeof buf;
        MPI_File_write_at_all(fh, off, buf, sizeof buf, MPI_BYTE, MPI_STATUS_IGNORE);
    }
    MPI_File_close(&fh);
    printf("rank %d of %d ok\n", rank, size);
    MPI_Finalize();
    return 0;
}
