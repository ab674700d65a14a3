/* The MPI-IO calls mpi_io.c does not make, each once per rank, every byte known:
 *   mpi_rest FILE B
 * FILE is laid out in regions of size*B bytes; rank r owns [r*B, (r+1)*B) of each:
 *   MPI_File_set_size to 4 regions;
 *   region 0  MPI_File_write_ordered (the shared pointer, in rank order)
 *   region 1  MPI_File_write_shared (the shared pointer, in whatever order the ranks come)
 *   region 2  MPI_File_seek + MPI_File_iwrite_all + MPI_Wait
 *   region 3  MPI_File_iwrite_at_all + MPI_Wait
 * then reads back: MPI_File_seek + MPI_File_read_all (region 0), MPI_File_seek + MPI_File_read
 * (2), MPI_File_seek + MPI_File_iread_all + MPI_Wait (3), MPI_File_iread_at_all + MPI_Wait (2),
 * MPI_File_read_ordered (region 0, the shared pointer put back to 0 by MPI_File_seek_shared),
 * MPI_File_read_shared (region 1, some rank's block).  Exits 1 if anything read differs. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bad;

static void fill(char *p, int n, int region, int rank)
{
    for (int i = 0; i < n; i++)
        p[i] = (char)('a' + (region * 7 + rank * 3 + i / 256) % 26);
}

static void check(const char *p, int n, int region, int rank, const char *what)
{
    char *want = malloc((size_t)n);
    fill(want, n, region, rank);
    if (memcmp(want, p, (size_t)n) != 0) {
        fprintf(stderr, "rank %d: %s: data differs\n", rank, what);
        bad = 1;
    }
    free(want);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc != 3) {
        fprintf(stderr, "usage: %s FILE B\n", argv[0]);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    int B = atoi(argv[2]);
    MPI_Offset R = (MPI_Offset)size * B, mine = (MPI_Offset)rank * B;
    char *buf = malloc((size_t)B);
    MPI_File fh;
    MPI_Request rq;
    if (MPI_File_open(MPI_COMM_WORLD, argv[1], MPI_MODE_CREATE | MPI_MODE_RDWR, MPI_INFO_NULL,
                      &fh) != MPI_SUCCESS)
        MPI_Abort(MPI_COMM_WORLD, 3);
    MPI_File_set_size(fh, 4 * R);

    fill(buf, B, 0, rank);
    MPI_File_write_ordered(fh, buf, B, MPI_BYTE, MPI_STATUS_IGNORE);
    fill(buf, B, 1, 0); /* every rank the same bytes: the order does not matter */
    MPI_File_write_shared(fh, buf, B, MPI_BYTE, MPI_STATUS_IGNORE);
    fill(buf, B, 2, rank);
    MPI_File_seek(fh, 2 * R + mine, MPI_SEEK_SET);
    MPI_File_iwrite_all(fh, buf, B, MPI_BYTE, &rq);
    MPI_Wait(&rq, MPI_STATUS_IGNORE);
    fill(buf, B, 3, rank);
    MPI_File_iwrite_at_all(fh, 3 * R + mine, buf, B, MPI_BYTE, &rq);
    MPI_Wait(&rq, MPI_STATUS_IGNORE);
    MPI_File_sync(fh);
    MPI_Barrier(MPI_COMM_WORLD);

    MPI_File_seek(fh, 0 * R + mine, MPI_SEEK_SET);
    MPI_File_read_all(fh, buf, B, MPI_BYTE, MPI_STATUS_IGNORE);
    check(buf, B, 0, rank, "read_all");
    MPI_File_seek(fh, 2 * R + mine, MPI_SEEK_SET);
    MPI_File_read(fh, buf, B, MPI_BYTE, MPI_STATUS_IGNORE);
    check(buf, B, 2, rank, "read");
    MPI_File_seek(fh, 3 * R + mine, MPI_SEEK_SET);
    MPI_File_iread_all(fh, buf, B, MPI_BYTE, &rq);
    MPI_Wait(&rq, MPI_STATUS_IGNORE);
    check(buf, B, 3, rank, "iread_all");
    MPI_File_iread_at_all(fh, 2 * R + mine, buf, B, MPI_BYTE, &rq);
    MPI_Wait(&rq, MPI_STATUS_IGNORE);
    check(buf, B, 2, rank, "iread_at_all");
    MPI_File_seek_shared(fh, 0, MPI_SEEK_SET);
    MPI_File_read_ordered(fh, buf, B, MPI_BYTE, MPI_STATUS_IGNORE);
    check(buf, B, 0, rank, "read_ordered");
    MPI_File_read_shared(fh, buf, B, MPI_BYTE, MPI_STATUS_IGNORE);
    check(buf, B, 1, 0, "read_shared");
    MPI_File_close(&fh);
    free(buf);
    MPI_Finalize();
    return bad;
}
