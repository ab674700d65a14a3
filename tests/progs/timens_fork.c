/* A child forked into a time namespace of its own after the app cleared its environment
 * (tests/test_pidreuse.py): its shim still puts its times on the run's clock. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    static char buf[5000];
    if (argc < 2 || clearenv() != 0 || unshare(CLONE_NEWTIME) != 0)
        return 2;
    pid_t p = fork(); /* the first process of the new namespace: its offsets, the parent's */
    if (p == 0) {
        int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || write(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
            _exit(3);
        close(fd);
        _exit(0);
    }
    int st = 0;
    if (p < 0 || waitpid(p, &st, 0) != p)
        return 4;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 5;
}
