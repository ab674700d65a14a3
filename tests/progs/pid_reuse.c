/* Two children with one pid, one after the other: the first writes 1000 B to a.dat and exits;
 * the parent, root in a PID namespace of its own (unshare -pf), sets ns_last_pid so that the
 * next child gets the same pid; that one writes 3000 B to b.dat, then exec's this program
 * ("exec" argument), which writes 5000 B to c.dat.  Exits 0, or 3 if the pid was not reused.
 * With the argument "kill" the first child kills itself (SIGKILL) after its write. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int put(const char *path, size_t n)
{
    static char buf[8192];
    memset(buf, 'x', sizeof buf);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, buf, n) != (ssize_t)n)
        return 1;
    return close(fd) != 0;
}

static pid_t child(size_t n, char *self, int kill_it)
{
    pid_t pid = fork();
    if (pid == 0) {
        int bad = put(n == 1000 ? "a.dat" : "b.dat", n);
        if (kill_it && !bad)
            raise(SIGKILL);
        if (n == 1000 || bad)
            _exit(bad);
        execl(self, self, "exec", (char *)NULL);
        _exit(1);
    }
    int st = -1;
    waitpid(pid, &st, 0);
    int ok = kill_it ? WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL
                     : WIFEXITED(st) && WEXITSTATUS(st) == 0;
    return ok ? pid : -1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "exec"))
        return put("c.dat", 5000);
    pid_t first = child(1000, argv[0], argc > 1 && !strcmp(argv[1], "kill"));
    if (first < 0)
        return 1;
    FILE *f = fopen("/proc/sys/kernel/ns_last_pid", "w");
    if (!f || fprintf(f, "%d", (int)first - 1) < 0 || fclose(f) != 0)
        return 2;
    pid_t second = child(3000, argv[0], 0);
    printf("%d %d\n", (int)first, (int)second);
    return second == first ? 0 : 3;
}
