/* Writes N records, says so, then waits to be killed with SIGKILL. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    int fd = open("k.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (int i = 0; i < n; i++)
        write(fd, "0123456789", 10);
    fprintf(stderr, "ready\n");
    for (;;)
        pause();
}
