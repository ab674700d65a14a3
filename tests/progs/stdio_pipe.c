/* fread of more than a buffer from a pipe whose writer writes three chunks apart: glibc reads
 * straight into the caller's memory, three short reads and the one at end of file in one
 * call.  Prints the bytes read.  The writer writes a chunk only once the pipe is empty (the
 * reader took the one before): a chunk a read whatever the load (30 ms apart was two in one
 * read when the reader came late). */
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    int p[2];
    if (pipe(p))
        return 2;
    pid_t kid = fork();
    if (kid == 0) {
        char chunk[1000] = {0};
        for (int i = 0; i < 3; i++) {
            if (write(p[1], chunk, sizeof chunk) != (ssize_t)sizeof chunk)
                _exit(3);
            int left;
            while (ioctl(p[0], FIONREAD, &left) == 0 && left > 0)
                usleep(1000);
        }
        _exit(0);
    }
    close(p[1]);
    FILE *f = fdopen(p[0], "r");
    static char buf[1 << 16];
    size_t got = fread(buf, 1, sizeof buf, f);
    fclose(f);
    int st;
    waitpid(kid, &st, 0);
    printf("%zu\n", got);
    return got == 3000 && WIFEXITED(st) && !WEXITSTATUS(st) ? 0 : 1;
}
