/* Built with -static: LD_PRELOAD cannot reach it, every I/O syscall is missed. */
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int fd = open(argc > 1 ? argv[1] : "static.out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    write(fd, "static\n", 7);
    close(fd);
    return 0;
}
