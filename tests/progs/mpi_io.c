/* MPI-IO, collective and independent, every call's bytes and offsets known from the arguments:
 *   mpi_io FILE B C
 * FILE (MPI names it, a "ufs:" prefix allowed) is laid out in regions of size*B bytes; rank r
 * owns bytes [r*B, (r+1)*B) of each region:
 *   region 0  MPI_File_write_at_all                         (collective, contiguous per rank)
 *   region 1  MPI_File_write_all through a strided view:    (collective, interleaved)
 *             pieces of C bytes, rank r's k-th at 1*size*B + (k*size + r)*C
 *   region 2  MPI_File_write_at                             (independent, explicit offset)
 *   region 3  MPI_File_seek + MPI_File_write                (independent, file pointer)
 *   region 4  MPI_File_iwrite_at + MPI_Wait (a ring of Isend/Irecv + MPI_Waitall in between)
 *   region 5  MPI_File_seek + MPI_File_iwrite + MPI_Test until done
 * then MPI_File_sync; reads back: read_at_all (region 0), read_at (2), iread_at (4) + seek +
 * iread (5) completed by one MPI_Waitall(MPI_STATUSES_IGNORE); close.  Rank 0 then fails to open
 * a missing file, and creates, closes and deletes another (MPI_COMM_SELF).
 * Prints the constants the test checks against; exits 1 if anything read back differs. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bad;

static void fill(char *p, int n, int region, int rank)
{
    for (int i = 0; i < n; i++)
        p[i] = (char)('a' + (region * 5 + rank * 3 + i / 512) % 26);
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
    if (argc != 4) {
        fprintf(stderr, "usage: %s FILE B C\n", argv[0]);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    const char *file = argv[1];
    int B = atoi(argv[2]), C = atoi(argv[3]);
    MPI_Offset R = (MPI_Offset)size * B; /* one region */
    MPI_Offset mine = (MPI_Offset)rank * B;
    char *buf = malloc((size_t)B), *buf2 = malloc((size_t)B);
    MPI_File fh;
    MPI_Status st;
    MPI_Request rq[2];
    int amode = MPI_MODE_CREATE | MPI_MODE_RDWR;

    if (MPI_File_open(MPI_COMM_WORLD, file, amode, MPI_INFO_NULL, &fh) != MPI_SUCCESS)
        MPI_Abort(MPI_COMM_WORLD, 3);

    fill(buf, B, 0, rank);
    MPI_File_write_at_all(fh, 0 * R + mine, buf, B, MPI_BYTE, MPI_STATUS_IGNORE);

    MPI_Datatype piece, tiled;
    MPI_Type_contiguous(C, MPI_BYTE, &piece);
    MPI_Type_create_resized(piece, 0, (MPI_Aint)size * C, &tiled);
    MPI_Type_commit(&tiled);
    MPI_File_set_view(fh, 1 * R + (MPI_Offset)rank * C, MPI_BYTE, tiled, "native", MPI_INFO_NULL);
    fill(buf, B, 1, rank);
    MPI_File_write_all(fh, buf, B, MPI_BYTE, &st);
    MPI_File_set_view(fh, 0, MPI_BYTE, MPI_BYTE, "native", MPI_INFO_NULL);

    fill(buf, B, 2, rank);
    MPI_File_write_at(fh, 2 * R + mine, buf, B, MPI_BYTE, &st);

    fill(buf, B, 3, rank);
    MPI_File_seek(fh, 3 * R + mine, MPI_SEEK_SET);
    MPI_File_write(fh, buf, B / 4, MPI_INT, MPI_STATUS_IGNORE); /* 4-byte elements */

    fill(buf, B, 4, rank);
    MPI_File_iwrite_at(fh, 4 * R + mine, buf, B, MPI_BYTE, &rq[0]);
    /* message requests completed while a file request is outstanding: no I/O events */
    int token = rank, got = -1;
    MPI_Request msg[2];
    MPI_Irecv(&got, 1, MPI_INT, (rank + size - 1) % size, 7, MPI_COMM_WORLD, &msg[0]);
    MPI_Isend(&token, 1, MPI_INT, (rank + 1) % size, 7, MPI_COMM_WORLD, &msg[1]);
    MPI_Waitall(2, msg, MPI_STATUSES_IGNORE);
    bad |= got != (rank + size - 1) % size;
    MPI_Wait(&rq[0], &st);

    fill(buf2, B, 5, rank);
    MPI_File_seek(fh, 5 * R + mine, MPI_SEEK_SET);
    MPI_File_iwrite(fh, buf2, B, MPI_BYTE, &rq[0]);
    int done = 0;
    while (!done)
        MPI_Test(&rq[0], &done, MPI_STATUS_IGNORE);

    MPI_File_sync(fh);
    MPI_Barrier(MPI_COMM_WORLD);

    memset(buf, 0, (size_t)B);
    MPI_File_read_at_all(fh, 0 * R + mine, buf, B, MPI_BYTE, &st);
    check(buf, B, 0, rank, "read_at_all");
    MPI_File_read_at(fh, 2 * R + mine, buf, B, MPI_BYTE, MPI_STATUS_IGNORE);
    check(buf, B, 2, rank, "read_at");
    MPI_File_iread_at(fh, 4 * R + mine, buf, B, MPI_BYTE, &rq[0]);
    MPI_File_seek(fh, 5 * R + mine, MPI_SEEK_SET);
    MPI_File_iread(fh, buf2, B, MPI_BYTE, &rq[1]);
    MPI_Waitall(2, rq, MPI_STATUSES_IGNORE);
    check(buf, B, 4, rank, "iread_at");
    check(buf2, B, 5, rank, "iread");
    MPI_File_close(&fh);

    if (rank == 0) {
        MPI_File f2;
        int rc = MPI_File_open(MPI_COMM_SELF, "missing/nothing.dat", MPI_MODE_RDONLY,
                               MPI_INFO_NULL, &f2);
        int cls = -1;
        if (rc != MPI_SUCCESS)
            MPI_Error_class(rc, &cls);
        printf("missing-open class %d\n", cls);
        MPI_File_open(MPI_COMM_SELF, "scratch.dat", MPI_MODE_CREATE | MPI_MODE_WRONLY,
                      MPI_INFO_NULL, &f2);
        MPI_File_close(&f2);
        MPI_File_delete("scratch.dat", MPI_INFO_NULL);
    }
    printf("rank %d of %d amode %d seek_set %d %s\n", rank, size, amode, MPI_SEEK_SET,
           bad ? "BAD" : "ok");
    MPI_Type_free(&tiled);
    MPI_Type_free(&piece);
    free(buf);
    free(buf2);
    MPI_Finalize();
    return bad;
}
