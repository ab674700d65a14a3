/* Opens and closes argv[1] three times, then stats it: what an open left out by a filter costs
 * is seen in the syscalls it makes (none of its own). */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    for (int i = 0; i < 3; i++) {
        int fd = open(argv[1], O_RDONLY);
        if (fd < 0 || close(fd) != 0)
            return 1;
    }
    struct stat st;
    return stat(argv[1], &st) == 0 ? 0 : 1;
}
