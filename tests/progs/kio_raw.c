/* kio_raw N SIZE [sleep|stdout|exec PROG ARG...]: N raw write syscalls of SIZE bytes (no
 * wrapper sees them), one write(2) through libc, then exits -- or, with "sleep", waits to be
 * killed; with "stdout" the raw writes go to stdout (into `| head -c 1`: SIGPIPE ends it in
 * one); with "exec" execs PROG (a static image running another program, as busybox does). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1;
    size_t size = argc > 2 ? (size_t)atol(argv[2]) : 4096;
    char *buf = calloc(1, size);
    int fd = open("kio_raw.out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || !buf)
        return 1;
    int out = argc > 3 && !strcmp(argv[3], "stdout") ? 1 : fd;
    for (int i = 0; i < n; i++)
        syscall(SYS_write, out, buf, size);
    if (write(fd, "end\n", 4) != 4)
        return 1;
    close(fd);
    if (argc > 3 && !strcmp(argv[3], "sleep"))
        pause();
    if (argc > 4 && !strcmp(argv[3], "exec")) {
        execv(argv[4], argv + 4);
        return 127;
    }
    return 0;
}
