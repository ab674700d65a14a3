/* Faults test: prints its effective uid and what it wrote, so a run that loses set-user-ID
 * privileges, or that does not see a 32-bit program, can be compared with the untraced one. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc > 1) {
        int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, "abc", 3) != 3)
            return 3;
        close(fd);
    }
    printf("euid %d\n", (int)geteuid());
    return 9;
}
