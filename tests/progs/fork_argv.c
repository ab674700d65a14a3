/* fork_argv [rename]: forks 3 children; each writes what the kernel gives as its command line
 * (/proc/self/cmdline) to cmdline.PID and exits.  `rename`: argv[0] overwritten in place first
 * (as setproctitle does), its tail left NUL.  tests/test_completeness.py: a fork child's log
 * header has the kernel's command line without reading it itself. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "rename") == 0) {
        size_t n = strlen(argv[0]);
        memset(argv[0], 0, n);
        argv[0][0] = 'X';
    }
    for (int i = 0; i < 3; i++) {
        pid_t p = fork();
        if (p == 0) {
            char buf[4096], name[64];
            int in = open("/proc/self/cmdline", O_RDONLY);
            ssize_t n = in >= 0 ? read(in, buf, sizeof buf) : -1;
            snprintf(name, sizeof name, "cmdline.%d", (int)getpid());
            int out = open(name, O_CREAT | O_TRUNC | O_WRONLY, 0644);
            _exit(n < 0 || out < 0 || write(out, buf, (size_t)n) != n);
        }
        int st;
        if (p < 0 || waitpid(p, &st, 0) != p || st != 0)
            return 1;
    }
    return 0;
}
