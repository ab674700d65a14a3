/* Security test: creates READY (its log exists by then), waits up to 30 s for FLAG, then makes
 * N one-byte writes to OUT (enough records to grow its log past the first 4 MiB) and exits 0. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    int r = open(argv[1], O_WRONLY | O_CREAT, 0644);
    if (r < 0)
        return 3;
    close(r);
    struct stat st;
    for (int i = 0; i < 3000 && stat(argv[2], &st) != 0; i++)
        usleep(10000);
    long n = atol(argv[3]), done = 0;
    int fd = open(argv[4], O_WRONLY);
    if (fd < 0)
        return 4;
    for (long i = 0; i < n; i++)
        done += write(fd, "x", 1);
    close(fd);
    printf("wrote %ld\n", done);
    return 0;
}
