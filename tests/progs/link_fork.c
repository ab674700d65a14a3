/* fd news still waiting at a fork (tests/test_link_security.py): the shim knows fd N as b.out;
 * a raw close and a raw openat make N c.out behind its back (then c.out is renamed d.out, so
 * /proc/self/fd no longer says what was opened); then, before any lookup, fork.  Parent and
 * child each write on N through libc: both must carry c.out (the child fetches the news from
 * its own copy of the parent's queue). */
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    char b[4096], c[4096], d[4096];
    snprintf(b, sizeof b, "%s/b.out", dir);
    snprintf(c, sizeof c, "%s/c.out", dir);
    snprintf(d, sizeof d, "%s/d.out", dir);
    int fb = open(b, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    syscall(SYS_close, fb);
    int fc = (int)syscall(SYS_openat, AT_FDCWD, c, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fc != fb || syscall(SYS_renameat, AT_FDCWD, c, AT_FDCWD, d))
        return 3;
    pid_t pid = fork();
    if (pid == 0)
        _exit(write(fc, "child\n", 6) == 6 ? 0 : 1);
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
        return 4;
    return write(fc, "parent\n", 7) == 7 ? 0 : 5;
}
