/* stdout's buffering as glibc decides it, at the first I/O: after `stdbuf -oL` (its setvbuf runs
 * in a constructor before the shim's), and with a terminal dup2'ed onto fd 1 before the first
 * printf ("pty"); stderr's, unbuffered.  The decisions are written to the file "result", so the
 * runs can be compared. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int pty = argc > 1 && !strcmp(argv[1], "pty");
    int saved = dup(1);
    if (pty) {
        int m = posix_openpt(O_RDWR | O_NOCTTY);
        if (m < 0 || grantpt(m) || unlockpt(m))
            return 2;
        int s = open(ptsname(m), O_RDWR | O_NOCTTY);
        if (s < 0 || dup2(s, 1) < 0)
            return 3;
    }
    printf("x\n");
    fputs("e\n", stderr); /* stderr stays unbuffered: its first I/O must not give it a buffer */
    int line = __flbf(stdout) != 0;
    size_t size = __fbufsize(stdout), esize = __fbufsize(stderr);
    fflush(stdout);
    dup2(saved, 1);
    FILE *r = fopen("result", "w");
    fprintf(r, "line %d size %zu stderr %zu\n", line, size, esize);
    fclose(r);
    return 0;
}
