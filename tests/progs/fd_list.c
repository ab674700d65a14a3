/* What an app sees of its own descriptors: after I/O whose stacks libunwind takes (a write in a
 * signal handler: the shim's own walk gives signal frames to libunwind), the numbers listed in
 * /proc/self/fd and how many are open below RLIMIT_NOFILE (raised to 4096 first, so that
 * anything kept near the top of the range is within it).  Traced, the same as untraced. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static void on_usr1(int sig)
{
    (void)sig;
    write(1, "handler\n", 8);
}

int main(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
    setrlimit(RLIMIT_NOFILE, &rl);
    write(1, "main\n", 5);
    signal(SIGUSR1, on_usr1);
    raise(SIGUSR1);
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 1;
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && atoi(e->d_name) != self)
            printf("fd %s\n", e->d_name);
    closedir(d);
    int open_fds = 0;
    for (int fd = 0; fd < (int)rl.rlim_cur; fd++)
        open_fds += fcntl(fd, F_GETFD) >= 0;
    printf("%d open\n", open_fds);
    return 0;
}
