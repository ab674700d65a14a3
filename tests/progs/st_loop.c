/* A hot loop of raw write(2)s to /dev/null: N missed syscalls from one call site (console
 * grouping; the stracer benchmark). */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000;
    int fd = open("/dev/null", O_WRONLY);
    for (long i = 0; i < n; i++)
        syscall(SYS_write, fd, "x", 1);
    close(fd);
    return 0;
}
