/* Faults test: N writes through libc (recorded by the shim) and M raw syscalls (missed: logged
 * by the stracer) of one byte to OUT; prints what it wrote and exits 7, so that a run whose
 * trace disk fills up can be compared with the untraced one.  With a 4th argument L, the writes
 * run under RLIMIT_NOFILE = L (every descriptor in use: the shim cannot reopen its log). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5)
        return 2;
    long n = atol(argv[1]), m = atol(argv[2]), done = 0;
    int fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return 3;
    struct rlimit old, rl;
    getrlimit(RLIMIT_NOFILE, &old);
    if (argc == 5) {
        rl.rlim_cur = (rlim_t)atol(argv[4]);
        rl.rlim_max = old.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return 4;
    }
    for (long i = 0; i < n; i++)
        done += write(fd, "x", 1);
    for (long i = 0; i < m; i++)
        done += syscall(SYS_write, fd, "y", 1);
    close(fd);
    setrlimit(RLIMIT_NOFILE, &old);
    printf("wrote %ld\n", done);
    return 7;
}
