/* IOR-like load (bench/cost_bench.py, case ior): every rank writes its block of one shared file
 * in XFER-byte transfers, then reads it back, through POSIX (lseek + write / read, as IOR's
 * POSIX backend does, fsync before close) or MPI-IO (MPI_File_write_at / read_at, independent).
 *     iorlike posix|mpiio FILE BLOCK_MIB XFER_BYTES
 * Rank 0 prints the slowest rank's write and read phase in seconds, and the CPU seconds each
 * phase took summed over the ranks (every thread of each: what load on the machine does not
 * change). */
#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (argc < 5)
        MPI_Abort(MPI_COMM_WORLD, 2);
    int posix = strcmp(argv[1], "posix") == 0;
    const char *path = argv[2];
    long block = atol(argv[3]) << 20, xfer = atol(argv[4]);
    char *buf = malloc((size_t)xfer);
    memset(buf, 'a' + rank % 26, (size_t)xfer);
    off_t base = (off_t)rank * block;
    double t[2], c[2];
    for (int phase = 0; phase < 2; phase++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime(), c0 = cpu_s();
        if (posix) {
            int fd = open(path, phase ? O_RDONLY : O_CREAT | O_WRONLY, 0644);
            if (fd < 0)
                MPI_Abort(MPI_COMM_WORLD, 1);
            for (long off = 0; off < block; off += xfer) {
                if (lseek(fd, base + off, SEEK_SET) < 0)
                    MPI_Abort(MPI_COMM_WORLD, 3);
                if ((phase ? read(fd, buf, (size_t)xfer) : write(fd, buf, (size_t)xfer)) != xfer)
                    MPI_Abort(MPI_COMM_WORLD, 4);
            }
            if (!phase)
                fsync(fd);
            close(fd);
        } else {
            MPI_File fh;
            int mode = phase ? MPI_MODE_RDONLY : MPI_MODE_CREATE | MPI_MODE_WRONLY;
            if (MPI_File_open(MPI_COMM_WORLD, path, mode, MPI_INFO_NULL, &fh) != MPI_SUCCESS)
                MPI_Abort(MPI_COMM_WORLD, 1);
            for (long off = 0; off < block; off += xfer) {
                int rc = phase ? MPI_File_read_at(fh, base + off, buf, (int)xfer, MPI_BYTE,
                                                  MPI_STATUS_IGNORE)
                               : MPI_File_write_at(fh, base + off, buf, (int)xfer, MPI_BYTE,
                                                   MPI_STATUS_IGNORE);
                if (rc != MPI_SUCCESS)
                    MPI_Abort(MPI_COMM_WORLD, 4);
            }
            if (!phase)
                MPI_File_sync(fh);
            MPI_File_close(&fh);
        }
        double dt = MPI_Wtime() - t0, dc = cpu_s() - c0;
        MPI_Reduce(&dt, &t[phase], 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
        MPI_Reduce(&dc, &c[phase], 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    }
    if (rank == 0)
        printf("write_s %.6f read_s %.6f write_cpu %.6f read_cpu %.6f\n", t[0], t[1], c[0], c[1]);
    free(buf);
    MPI_Finalize();
    return 0;
}
