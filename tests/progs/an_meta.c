/* A metadata storm: 700 open/close pairs of one file, and 50 opens of a missing one; then, as
 * MPI launchers' helpers do, 60 reads of a non-blocking pipe with nothing in it (EAGAIN) and 20
 * socket() calls for an address family the kernel lacks (EAFNOSUPPORT): not failed file calls. */
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void)
{
    int fd = open("meta.dat", O_CREAT | O_WRONLY, 0644);
    close(fd);
    for (int i = 0; i < 700; i++) {
        fd = open("meta.dat", O_RDONLY);
        close(fd);
    }
    for (int i = 0; i < 50; i++)
        open("missing.dat", O_RDONLY);
    int p[2];
    char c;
    if (pipe2(p, O_NONBLOCK) != 0)
        return 1;
    for (int i = 0; i < 60; i++)
        if (read(p[0], &c, 1) != -1)
            return 1;
    for (int i = 0; i < 20; i++)
        if (socket(AF_MAX + 1, SOCK_STREAM, 0) != -1)
            return 1;
    return 0;
}
