/* One MPI-like rank (rank from PMI_RANK, world size from PMI_SIZE): 16 pwrite(64 KiB) into the
 * shared file argv[1], strided by rank; with argv[2] = "slow", also reads 96 MiB of /dev/urandom
 * (the straggler).  Descriptor calls only. */
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
    return 0;
}
