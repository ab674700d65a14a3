/* One MPI-like rank (rank from PMI_RANK, world size from PMI_SIZE): 16 pwrite(64 KiB) into the
 * shared file argv[1], strided by rank; with argv[2] = "slow", also reads 96 MiB of /dev/urandom
 * (the straggler); "big": also writes 16 MiB to its own file rank.N, fsyncs it and reads it
 * back (a straggler on its data files: a preloaded slow_fsync makes it certain); "stdin": first
 * reads its standard input to the end (a rank waiting for its input on a pipe).  Descriptor
 * calls only. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK (64 * 1024)

int main(int argc, char **argv)
{
    static char buf[4 << 20];
    const char *r = getenv("PMI_RANK"), *s = getenv("PMI_SIZE");
    int rank = r ? atoi(r) : 0, size = s ? atoi(s) : 1;
    if (argc < 2)
        return 2;
    if (argc > 2 && strcmp(argv[2], "stdin") == 0)
        while (read(0, buf, sizeof buf) > 0)
            ;
    memset(buf, 'a' + rank, BLOCK);
    int fd = open(argv[1], O_CREAT | O_WRONLY, 0644);
    if (fd < 0)
        return perror("open"), 1;
    for (int k = 0; k < 16; k++)
        if (pwrite(fd, buf, BLOCK, (off_t)(rank + k * size) * BLOCK) != BLOCK)
            return perror("pwrite"), 1;
    close(fd);
    if (argc > 2 && strcmp(argv[2], "slow") == 0) {
        int u = open("/dev/urandom", O_RDONLY);
        for (int i = 0; i < 24; i++)
            if (read(u, buf, sizeof buf) != (ssize_t)sizeof buf)
                return perror("read"), 1;
        close(u);
    }
    if (argc > 2 && strcmp(argv[2], "big") == 0) {
        char own[32];
        snprintf(own, sizeof own, "rank.%d", rank);
        int o = open(own, O_CREAT | O_RDWR | O_TRUNC, 0644);
        for (int i = 0; i < 4; i++)
            if (write(o, buf, sizeof buf) != (ssize_t)sizeof buf)
                return perror("write"), 1;
        if (fsync(o) != 0)
            return perror("fsync"), 1;
        for (int i = 0; i < 4; i++)
            if (pread(o, buf, sizeof buf, (off_t)i * sizeof buf) != (ssize_t)sizeof buf)
                return perror("pread"), 1;
        close(o);
    }
    return 0;
}
