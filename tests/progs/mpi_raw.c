/* An MPI rank that also does raw-syscall I/O the shim cannot see:
 *   mpi_raw N BS
 * every rank writes N blocks of BS bytes to raw.RANK.dat with syscall(SYS_pwrite64) (after a
 * raw openat, before a raw close), and one block with libc's write (seen by the shim). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

__attribute__((noinline)) static long raw_blocks(const char *name, int n, size_t bs, char *buf)
{
    int fd = (int)syscall(SYS_openat, AT_FDCWD, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    long done = 0;
    for (int i = 0; i < n; i++)
        done += syscall(SYS_pwrite64, fd, buf, bs, (off_t)i * (off_t)bs);
    syscall(SYS_close, fd);
    return done;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int n = argc > 1 ? atoi(argv[1]) : 4;
    size_t bs = argc > 2 ? (size_t)atol(argv[2]) : 4096;
    char *buf = malloc(bs);
    memset(buf, 'a' + rank % 26, bs);
    char name[64];
    snprintf(name, sizeof name, "raw.%d.dat", rank);
    long done = raw_blocks(name, n, bs, buf);
    int fd = open(name, O_WRONLY | O_APPEND);
    long libc = write(fd, buf, bs);
    close(fd);
    MPI_Barrier(MPI_COMM_WORLD);
    printf("rank %d of %d: raw %ld libc %ld\n", rank, size, done, libc);
    free(buf);
    MPI_Finalize();
    return done != (long)n * (long)bs || libc != (long)bs;
}
