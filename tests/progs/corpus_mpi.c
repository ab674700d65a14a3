/* The labelled corpus's MPI jobs (tests/test_corpus.py), one known pathology per mode:
 *   corpus_mpi heavy   each rank writes rank.R.dat in 1 MiB writes and fsyncs it: 2 MiB, rank 1
 *                      16 MiB (one heavy, slow rank)
 *   corpus_mpi indep   each rank 1,000 independent MPI_File_write_at of 256 bytes into shared.dat,
 *                      interleaved by rank (independent small writes to a shared file);
 *                      `indep late`: the last rank 300 ms late to the open, which the others
 *                      wait for inside it (the open's set-up among ranks, not file I/O)
 *   corpus_mpi coll    each rank 16 blocks of 256 KiB into coll.dat, interleaved by rank, in one
 *                      MPI_File_write_all through a strided view (collective: fine)
 *   corpus_mpi probe   each rank opens missing.R.conf 50 times (ENOENT): the app's own failed
 *                      calls, beside the MPI runtime's (its probes, its session directory) */
#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIB (1 << 20)

int main(int argc, char **argv)
{
    static char buf[MIB * 4];
    int rank, size, rc = 0;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    memset(buf, 'a' + rank, sizeof buf);
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "heavy") == 0) {
        char name[64];
        snprintf(name, sizeof name, "rank.%d.dat", rank);
        int fd = open(name, O_CREAT | O_TRUNC | O_WRONLY, 0644);
        int n = rank == 1 ? 16 : 2;
        for (int i = 0; fd >= 0 && i < n; i++)
            if (write(fd, buf, MIB) != MIB)
                rc = 1;
        if (fd < 0 || fsync(fd) != 0 || close(fd) != 0)
            rc = 1;
    } else if (strcmp(mode, "indep") == 0 || strcmp(mode, "coll") == 0) {
        int indep = mode[0] == 'i';
        MPI_File fh;
        if (argc > 2 && strcmp(argv[2], "late") == 0 && rank == size - 1)
            usleep(300 * 1000);
        MPI_File_open(MPI_COMM_WORLD, indep ? "shared.dat" : "coll.dat",
                      MPI_MODE_CREATE | MPI_MODE_WRONLY, MPI_INFO_NULL, &fh);
        if (indep) {
            for (int i = 0; i < 1000; i++)
                if (MPI_File_write_at(fh, (MPI_Offset)(i * size + rank) * 256, buf, 256, MPI_BYTE,
                                      MPI_STATUS_IGNORE) != MPI_SUCCESS)
                    rc = 1;
        } else {
            const int blk = 256 * 1024, n = 16;
            MPI_Datatype ft;
            MPI_Type_vector(n, blk, blk * size, MPI_BYTE, &ft);
            MPI_Type_commit(&ft);
            MPI_File_set_view(fh, (MPI_Offset)rank * blk, MPI_BYTE, ft, "native", MPI_INFO_NULL);
            if (MPI_File_write_all(fh, buf, blk * n, MPI_BYTE, MPI_STATUS_IGNORE) != MPI_SUCCESS)
                rc = 1;
            MPI_Type_free(&ft);
        }
        MPI_File_close(&fh);
    } else if (strcmp(mode, "probe") == 0) {
        char name[64];
        snprintf(name, sizeof name, "missing.%d.conf", rank);
        for (int i = 0; i < 50; i++)
            if (open(name, O_RDONLY) >= 0)
                rc = 1;
    } else {
        rc = 2;
    }
    MPI_Finalize();
    return rc;
}
