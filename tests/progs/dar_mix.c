/* POSIX and stdio I/O with known counts, for the Darshan export:
 *   dar_mix DIR N B
 * DIR/posix.dat: open, N pwrite of B bytes at k*B, lseek 0, N read of B bytes, fstat, fsync,
 *   close.
 * DIR/stdio.txt: fopen "w", N fwrite of B bytes, fflush, fclose; fopen "r", fseek 0,
 *   N fread of B bytes, fclose. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    int n = atoi(argv[2]), b = atoi(argv[3]);
    char *buf = malloc((size_t)b), path[4096];
    memset(buf, 'x', (size_t)b);
    snprintf(path, sizeof path, "%s/posix.dat", argv[1]);
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    if (fd < 0)
        return 1;
    for (int k = 0; k < n; k++)
        if (pwrite(fd, buf, (size_t)b, (off_t)k * b) != b)
            return 1;
    lseek(fd, 0, SEEK_SET);
    for (int k = 0; k < n; k++)
        if (read(fd, buf, (size_t)b) != b)
            return 1;
    struct stat st;
    fstat(fd, &st);
    fsync(fd);
    close(fd);

    snprintf(path, sizeof path, "%s/stdio.txt", argv[1]);
    FILE *f = fopen(path, "w");
    if (!f)
        return 1;
    for (int k = 0; k < n; k++)
        fwrite(buf, 1, (size_t)b, f);
    fflush(f);
    fclose(f);
    f = fopen(path, "r");
    if (!f)
        return 1;
    fseek(f, 0, SEEK_SET);
    for (int k = 0; k < n; k++)
        if (fread(buf, 1, (size_t)b, f) != (size_t)b)
            return 1;
    fclose(f);
    free(buf);
    return 0;
}
