/* A metadata storm: 700 open/close pairs of one file, and 50 opens of a missing one. */
#include <fcntl.h>
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
    return 0;
}
