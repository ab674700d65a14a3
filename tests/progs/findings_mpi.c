/* MPI jobs with one planted I/O problem each (tests/test_findings.py):
 *   findings_mpi straggler   every rank writes its 4 MiB block of slow/shared.dat; the last
 *                            rank alone in 4,096 pwrites of 1 KiB at offsets 512 bytes off the
 *                            4 KiB grid, the others in one pwrite each; each rank then writes
 *                            fast/rank.R.dat in 4 writes of 1 MiB (fine)
 *   findings_mpi mpisync     every rank 64 collective writes of 64 KiB to ckpt.dat
 *                            (MPI_File_write_at_all, interleaved by rank), an MPI_File_sync
 *                            after each
 *   findings_mpi imbalance   one MPI_File_write_at_all to out.dat, each rank its own block: the
 *                            last rank 16 MiB, the others 1 MiB
 *   findings_mpi readall F   every rank reads all of the input file F (8 MiB, made before the
 *                            job) in 1 MiB reads: no rank reads it and broadcasts it
 *   findings_mpi readat F    the same through MPI-IO: each rank 8 MPI_File_read_at of 1 MiB
 *   findings_mpi readatall F the same with MPI_File_read_at_all (collective)
 *   findings_mpi sameopen    every rank opens params.in (made by rank 0 before a barrier),
 *                            reads its 64 bytes and closes it 500 times: 1,000 opens and
 *                            closes a rank on one file
 *   findings_mpi rankzero    the ranks send their 8 MiB to rank 0, which alone writes them all
 *                            to out.dat in 1 MiB writes
 *   findings_mpi ownsync     each rank writes its own out.R.dat (1 MiB in 256 KiB writes) and
 *                            fsyncs it once after its last write
 *   findings_mpi eofread F   each rank MPI_File_read_at_all 4 MiB at rank * 4 MiB of the
 *                            8 MiB F: ranks past its end read nothing */
#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIB (1 << 20)
#define BLOCK (4 * MIB)
#define SMALL 1024

int main(int argc, char **argv)
{
    static char buf[BLOCK];
    int rank, size, rc = 0;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    memset(buf, 'a' + rank, sizeof buf);
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "straggler") == 0) {
        if (rank == 0) {
            mkdir("slow", 0755);
            mkdir("fast", 0755);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        int fd = open("slow/shared.dat", O_CREAT | O_WRONLY, 0644);
        off_t base = (off_t)rank * BLOCK;
        if (fd < 0)
            rc = 1;
        else if (rank == size - 1) { /* 512 B in: every 1 KiB write straddles a 4 KiB line */
            for (int i = 0; i < BLOCK / SMALL; i++)
                if (pwrite(fd, buf, SMALL, base + 512 + (off_t)i * SMALL) != SMALL)
                    rc = 1;
        } else if (pwrite(fd, buf, BLOCK, base) != BLOCK)
            rc = 1;
        if (fd >= 0 && close(fd) != 0)
            rc = 1;
        char name[64];
        snprintf(name, sizeof name, "fast/rank.%d.dat", rank);
        fd = open(name, O_CREAT | O_TRUNC | O_WRONLY, 0644);
        for (int i = 0; fd >= 0 && i < 4; i++)
            if (write(fd, buf, MIB) != MIB)
                rc = 1;
        if (fd < 0 || close(fd) != 0)
            rc = 1;
    } else if (strcmp(mode, "mpisync") == 0) {
        const int blk = 64 * 1024;
        MPI_File fh;
        if (MPI_File_open(MPI_COMM_WORLD, "ckpt.dat", MPI_MODE_CREATE | MPI_MODE_WRONLY,
                          MPI_INFO_NULL, &fh) != MPI_SUCCESS)
            rc = 1;
        for (int i = 0; rc == 0 && i < 64; i++)
            if (MPI_File_write_at_all(fh, (MPI_Offset)(i * size + rank) * blk, buf, blk, MPI_BYTE,
                                      MPI_STATUS_IGNORE) != MPI_SUCCESS ||
                MPI_File_sync(fh) != MPI_SUCCESS)
                rc = 1;
        if (rc == 0 && MPI_File_close(&fh) != MPI_SUCCESS)
            rc = 1;
    } else if (strcmp(mode, "imbalance") == 0) {
        static char big[16 * MIB];
        MPI_File fh;
        int last = rank == size - 1;
        memset(big, 'a' + rank, sizeof big);
        MPI_Offset at = (MPI_Offset)rank * MIB; /* the last rank's block after the others' */
        if (MPI_File_open(MPI_COMM_WORLD, "out.dat", MPI_MODE_CREATE | MPI_MODE_WRONLY,
                          MPI_INFO_NULL, &fh) != MPI_SUCCESS ||
            MPI_File_write_at_all(fh, at, big, last ? 16 * MIB : MIB, MPI_BYTE,
                                  MPI_STATUS_IGNORE) != MPI_SUCCESS ||
            MPI_File_close(&fh) != MPI_SUCCESS)
            rc = 1;
    } else if (strcmp(mode, "readall") == 0) {
        int fd = argc > 2 ? open(argv[2], O_RDONLY) : -1;
        if (fd < 0)
            rc = 1;
        for (int i = 0; fd >= 0 && i < 8; i++)
            if (read(fd, buf, MIB) != MIB)
                rc = 1;
        if (fd < 0 || close(fd) != 0)
            rc = 1;
    } else if (strcmp(mode, "readat") == 0 || strcmp(mode, "readatall") == 0) {
        int all = strcmp(mode, "readatall") == 0;
        MPI_File fh;
        if (argc < 3 || MPI_File_open(MPI_COMM_WORLD, argv[2], MPI_MODE_RDONLY, MPI_INFO_NULL,
                                      &fh) != MPI_SUCCESS) {
            rc = 1;
        } else {
            for (int i = 0; i < 8; i++) {
                MPI_Status st;
                int n = 0;
                int err = all ? MPI_File_read_at_all(fh, (MPI_Offset)i * MIB, buf, MIB, MPI_BYTE,
                                                     &st)
                              : MPI_File_read_at(fh, (MPI_Offset)i * MIB, buf, MIB, MPI_BYTE, &st);
                MPI_Get_count(&st, MPI_BYTE, &n);
                if (err != MPI_SUCCESS || n != MIB)
                    rc = 1;
            }
            if (MPI_File_close(&fh) != MPI_SUCCESS)
                rc = 1;
        }
    } else if (strcmp(mode, "sameopen") == 0) {
        char small[64];
        if (rank == 0) {
            int fd = open("params.in", O_CREAT | O_TRUNC | O_WRONLY, 0644);
            if (fd < 0 || write(fd, buf, sizeof small) != sizeof small || close(fd) != 0)
                rc = 1;
        }
        MPI_Barrier(MPI_COMM_WORLD);
        for (int i = 0; i < 500; i++) {
            int fd = open("params.in", O_RDONLY);
            if (fd < 0 || read(fd, small, sizeof small) != sizeof small || close(fd) != 0)
                rc = 1;
        }
    } else if (strcmp(mode, "rankzero") == 0) {
        if (rank == 0) {
            static char all[8 * MIB];
            int fd = open("out.dat", O_CREAT | O_TRUNC | O_WRONLY, 0644);
            for (int r = 0; r < size; r++) {
                if (r > 0)
                    MPI_Recv(all, 8 * MIB, MPI_BYTE, r, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                else
                    memset(all, 'a', sizeof all);
                for (int i = 0; fd >= 0 && i < 8; i++)
                    if (write(fd, all + (size_t)i * MIB, MIB) != MIB)
                        rc = 1;
            }
            if (fd < 0 || close(fd) != 0)
                rc = 1;
        } else {
            static char mine[8 * MIB];
            memset(mine, 'a' + rank, sizeof mine);
            MPI_Send(mine, 8 * MIB, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
        }
    } else if (strcmp(mode, "ownsync") == 0) {
        char name[64];
        snprintf(name, sizeof name, "out.%d.dat", rank);
        int fd = open(name, O_CREAT | O_TRUNC | O_WRONLY, 0644);
        for (int b = 0; fd >= 0 && b < 4; b++)
            if (pwrite(fd, buf, MIB / 4, (off_t)b * (MIB / 4)) != MIB / 4)
                rc = 1;
        if (fd < 0 || fsync(fd) != 0 || close(fd) != 0)
            rc = 1;
    } else if (strcmp(mode, "eofread") == 0) {
        MPI_File fh;
        MPI_Status st;
        int n = -1;
        if (argc < 3 || MPI_File_open(MPI_COMM_WORLD, argv[2], MPI_MODE_RDONLY, MPI_INFO_NULL,
                                      &fh) != MPI_SUCCESS) {
            rc = 1;
        } else { /* each collective call made by every rank, whatever it got */
            if (MPI_File_read_at_all(fh, (MPI_Offset)rank * BLOCK, buf, BLOCK, MPI_BYTE, &st) !=
                    MPI_SUCCESS ||
                MPI_Get_count(&st, MPI_BYTE, &n) != MPI_SUCCESS)
                rc = 1;
            printf("rank %d read %d\n", rank, n);
            if (MPI_File_close(&fh) != MPI_SUCCESS)
                rc = 1;
        }
    } else {
        rc = 2;
    }
    MPI_Finalize();
    return rc;
}
