/* POSIX I/O from every MPI rank, known exactly from the arguments:
 *   mpi_posix fpp NBLK BS     each rank writes NBLK blocks of BS bytes to its own file
 *                             fpp.RANK.dat with write(), then preads them back
 *   mpi_posix shared NBLK BS  all ranks pwrite into shared.dat, interleaved: block i of rank r
 *                             at (i * size + r) * BS; then each preads its own blocks back
 * Exits 1 if anything read back differs. */
#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc != 4) {
        fprintf(stderr, "usage: %s fpp|shared NBLK BS\n", argv[0]);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    int shared = strcmp(argv[1], "shared") == 0;
    int nblk = atoi(argv[2]);
    size_t bs = (size_t)atol(argv[3]);
    char *buf = malloc(bs), *back = malloc(bs);
    int bad = 0;

    char name[64];
    if (shared)
        snprintf(name, sizeof name, "shared.dat");
    else
        snprintf(name, sizeof name, "fpp.%d.dat", rank);
    if (shared && rank != 0)
        MPI_Barrier(MPI_COMM_WORLD); /* rank 0 creates the file first */
    int fd = open(name, O_RDWR | O_CREAT, 0644);
    if (shared && rank == 0)
        MPI_Barrier(MPI_COMM_WORLD);
    if (fd < 0) {
        perror(name);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (int i = 0; i < nblk; i++) {
        memset(buf, 'A' + (rank * 7 + i) % 26, bs);
        ssize_t n = shared ? pwrite(fd, buf, bs, (off_t)((size_t)i * size + rank) * bs)
                           : write(fd, buf, bs);
        bad |= n != (ssize_t)bs;
    }
    MPI_Barrier(MPI_COMM_WORLD);
    for (int i = 0; i < nblk; i++) {
        memset(buf, 'A' + (rank * 7 + i) % 26, bs);
        off_t off = shared ? (off_t)((size_t)i * size + rank) * bs : (off_t)i * bs;
        bad |= pread(fd, back, bs, off) != (ssize_t)bs || memcmp(buf, back, bs) != 0;
    }
    close(fd);
    printf("rank %d of %d: %s %s\n", rank, size, name, bad ? "BAD" : "ok");
    MPI_Finalize();
    return bad;
}
