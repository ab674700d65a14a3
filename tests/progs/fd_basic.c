/* Deterministic descriptor I/O whose every call the tests know. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

int main(void)
{
    char buf[8192];
    memset(buf, 'x', sizeof buf);
    int fd = open("data.bin", O_RDWR | O_CREAT | O_TRUNC, 0640);
    for (int i = 0; i < 4; i++)
        write(fd, buf, 1000);                  /* offsets 0, 1000, 2000, 3000 */
    pwrite(fd, buf, 512, 10000);               /* explicit offset */
    lseek(fd, 100, SEEK_SET);
    read(fd, buf, 50);                         /* offset 100 */
    struct iovec iov[2] = {{buf, 10}, {buf + 10, 20}};
    writev(fd, iov, 2);                        /* offset 150, 30 bytes */
    pread(fd, buf, 4096, 0);
    int d = dup(fd);
    write(d, buf, 7);                          /* shared position: 180 */
    int d2 = dup2(fd, 20);
    fcntl(fd, F_SETFL, O_APPEND);
    write(d2, buf, 3);                          /* append: at the end, 10512 */
    ftruncate(fd, 4096);
    fsync(fd);
    close(d2);
    close(d);
    close(fd);
    int bad = open("missing/nothing", O_RDONLY);
    int e = errno;
    ssize_t w = write(bad, buf, 1);             /* EBADF */
    printf("bad=%d errno=%d w=%zd\n", bad, e, w);
    return 7;
}
