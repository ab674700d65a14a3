/* Buffers for -s N: bytes that need escaping (newline, NUL, 0x01, 0xff), a gathered write, a
 * positioned read of it all, stdio reads and writes, and one write longer than any -s. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

int main(void)
{
    static char big[5000];
    memset(big, 'z', sizeof big);
    int fd = open("d.bin", O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (write(fd, "hi\n\0\001\377end", 9) != 9)
        return 1;
    struct iovec v[2] = {{"ab", 2}, {"cdef", 4}};
    if (writev(fd, v, 2) != 6 || write(fd, big, sizeof big) != sizeof big)
        return 1;
    char b[64];
    if (pread(fd, b, 12, 0) != 12)
        return 1;
    close(fd);
    FILE *f = fopen("s.txt", "w");
    fputs("line1\n", f);
    fwrite("xyz", 1, 3, f);
    fclose(f);
    f = fopen("s.txt", "r");
    if (!fgets(b, sizeof b, f) || fread(b, 1, 3, f) != 3)
        return 1;
    fclose(f);
    return 0;
}
