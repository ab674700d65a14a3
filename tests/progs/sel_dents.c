/* A syscall no shim function covers, for the read filters by syscall name:
 *   sel_dents
 * lists "." by a raw getdents64 (the stracer records it: a bypass), then writes "ok\n" to
 * out.txt. */
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
    char buf[4096];
    int d = open(".", O_RDONLY | O_DIRECTORY);
    if (d < 0 || syscall(SYS_getdents64, d, buf, sizeof buf) <= 0)
        return 1;
    close(d);
    int fd = open("out.txt", O_CREAT | O_TRUNC | O_WRONLY, 0600);
    return fd < 0 || write(fd, "ok\n", 3) != 3 || close(fd) != 0;
}
