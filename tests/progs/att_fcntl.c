/* fcntl's reading and setting commands on one descriptor, made once a byte comes on stdin (so
 * that an `iotrace attach` started before sees them all), then "done" and a wait for stdin's
 * end (tests/test_show_strace.py: the stracer's fcntl lines read as strace's). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char c;
    int fd = open(argc > 1 ? argv[1] : "f.bin", O_RDWR | O_CREAT | O_APPEND, 0644);
    if (fd < 0 || write(1, "ready\n", 6) != 6 || read(0, &c, 1) != 1)
        return 1;
    if (fcntl(fd, F_GETFL) < 0 || fcntl(fd, F_SETFL, O_NONBLOCK | O_APPEND) ||
        fcntl(fd, F_GETFD) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) || fcntl(fd, F_GETFD) != 1 ||
        fcntl(fd, F_GETFL) < 0 || fcntl(fd, F_DUPFD, 30) != 30)
        return 1;
    if (write(1, "done\n", 5) != 5)
        return 1;
    while (read(0, &c, 1) > 0)
        ;
    return 0;
}
