/* N short-lived children over K pids: each appends 7 B to loop.dat and exits; child i >= K
 * gets child i % K's pid again (the parent sets ns_last_pid: run as root, the first process
 * of a PID namespace of its own, `unshare -pf --mount-proc`).  A trace of many processes
 * whose pids were reused, as a long loop past pid_max makes one (bench/README.md, pidreuse).
 * Prints how many children got a reused pid. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000, k = argc > 2 ? atoi(argv[2]) : 50, reused = 0;
    pid_t *pids = calloc((size_t)k, sizeof *pids);
    for (int i = 0; i < n; i++) {
        if (i >= k) {
            FILE *f = fopen("/proc/sys/kernel/ns_last_pid", "w");
            if (!f || fprintf(f, "%d", (int)pids[i % k] - 1) < 0 || fclose(f) != 0)
                return 2;
        }
        pid_t pid = fork();
        if (pid == 0) {
            int fd = open("loop.dat", O_WRONLY | O_APPEND | O_CREAT, 0644);
            _exit(fd < 0 || write(fd, "7 bytes", 7) != 7 || close(fd) != 0);
        }
        if (pid < 0 || waitpid(pid, NULL, 0) != pid)
            return 1;
        if (i < k)
            pids[i] = pid;
        else
            reused += pid == pids[i % k];
    }
    printf("%d children, %d with a reused pid\n", n, reused);
    return 0;
}
