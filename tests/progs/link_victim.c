/* The link tests' target (tests/test_link_security.py): a raw openat (missed: the stracer sends
 * its shim fd news) and a wrapped write on it; then it waits for a byte on stdin (the attacker's
 * turn), forks a child that does the same on another file, then the same again itself, and
 * writes once more on the first. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int raw_open(const char *path)
{
    return (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    int fd = raw_open(argv[1]);
    if (write(fd, "first\n", 6) != 6)
        return 3;
    char c;
    if (read(0, &c, 1) != 1)
        return 4;
    pid_t p = fork();
    if (p == 0) {
        int f = raw_open(argv[2]);
        _exit(write(f, "child\n", 6) == 6 && close(f) == 0 ? 0 : 1);
    }
    int st;
    if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st))
        return 5;
    int g = raw_open(argv[3]);
    if (write(g, "third\n", 6) != 6 || close(g))
        return 6;
    if (write(fd, "second\n", 7) != 7 || close(fd))
        return 7;
    puts("done");
    return 0;
}
