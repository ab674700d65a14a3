/* Faults test: what an app started with some of descriptors 0-2 closed sees: for 0-9 whether it
 * is open and what it is (/proc/self/fd), then the descriptor its first open gets (the lowest
 * free one).  Written to OUT (its own stdout may be closed); exits 5. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    char buf[2048];
    int n = 0;
    for (int fd = 0; fd < 10; fd++) {
        char p[64], link[256] = "";
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
        ssize_t k = readlink(p, link, sizeof link - 1);
        link[k > 0 ? k : 0] = '\0';
        char *colon = strchr(link, ':'); /* pipe:[N], socket:[N]: their kind */
        if (colon && link[0] != '/')
            *colon = '\0';
        n += snprintf(buf + n, sizeof buf - (size_t)n, "%d %s\n", fd,
                      fcntl(fd, F_GETFD) < 0 ? "closed" : link);
    }
    int out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0)
        return 3;
    n += snprintf(buf + n, sizeof buf - (size_t)n, "opened %d\n", out);
    return write(out, buf, (size_t)n) == n ? 5 : 4;
}
