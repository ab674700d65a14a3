/* One short-lived process of a job script's many (scale_bench.py --short): opens a file of its
 * own under DIR, writes 7 B, reads them back, closes and unlinks it.  A shell loop runs it N
 * times, so each is a fork of bash and an exec: two logs per process, as a real script makes. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char path[4096], back[8];
    if (argc != 2) return 64;
    snprintf(path, sizeof path, "%s/f%d", argv[1], (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return 1;
    int ok = write(fd, "payload", 7) == 7 && pread(fd, back, 7, 0) == 7;
    close(fd);
    unlink(path);
    return ok ? 0 : 2;
}
