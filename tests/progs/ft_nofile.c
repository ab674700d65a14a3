/* Faults test: under RLIMIT_NOFILE = argv[1], the descriptor numbers open, pipe, dup, socket and
 * opendir return, up to EMFILE, and what works after closing a few: printed, so that traced and
 * untraced runs can be compared line by line. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static void show(const char *what, int r)
{
    printf("%s %d %s\n", what, r, r < 0 ? strerror(errno) : "");
}

int main(int argc, char **argv)
{
    struct rlimit rl = {(rlim_t)atol(argv[1]), (rlim_t)atol(argv[1])};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 2;
    int fds[4096], n = 0, r;
    DIR *d = opendir("/");
    show("opendir", d ? dirfd(d) : -1);
    if (d) {
        struct dirent *e = readdir(d);
        show("readdir", e != NULL);
        closedir(d);
    }
    while (n < 4090) {
        switch (n % 4) {
        case 0: r = open("/dev/null", O_RDONLY); show("open", r); break;
        case 1: r = dup(0); show("dup", r); break;
        case 2: r = socket(AF_UNIX, SOCK_STREAM, 0); show("socket", r); break;
        default: {
            int p[2];
            r = pipe(p);
            show("pipe", r < 0 ? r : p[0]);
            if (r == 0) {
                fds[n++] = p[0];
                r = p[1];
            }
        }
        }
        if (r < 0)
            break;
        fds[n++] = r;
    }
    FILE *f = fopen("/etc/hostname", "r");
    show("fopen", f ? fileno(f) : -1);
    for (int i = 0; i < n && i < 3; i++)
        close(fds[i]);
    d = opendir("/");
    show("opendir", d ? dirfd(d) : -1);
    f = fopen("/etc/hostname", "r");
    show("fopen", f ? fileno(f) : -1);
    r = open("/dev/null", O_RDONLY);
    show("open", r);
    return 0;
}
