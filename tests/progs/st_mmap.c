/* mmap I/O: a file mapped with a raw mmap syscall (missed), written through memory (no
 * syscall at all: invisible to every tracer), unmapped and closed through libc. */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int fd = open(argc > 1 ? argv[1] : "mmap.out", O_RDWR | O_CREAT | O_TRUNC, 0644);
    ftruncate(fd, 4096);
    char *p = (char *)syscall(SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return 3;
    memcpy(p, "mmap\n", 5);
    syscall(SYS_munmap, p, 4096);
    close(fd);
    return 0;
}
