/* A vfork child rewires and closes descriptors before its exec: dup2 over the parent's output
 * descriptor, close of the pipe's other end.  The parent's descriptors are untouched (the child
 * has its own table); the parent then writes to its file.  With "fail": a second child opens
 * child.log, fails to exec, writes why there and _exits 3 ("exit": exit(3), as sloppy programs
 * do).  Usage: vfork_dup OUT [fail|exit] */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    int out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int p[2];
    if (out < 0 || pipe(p))
        return 1;
    pid_t pid = vfork();
    if (pid == 0) {
        dup2(p[1], out);
        close(p[0]);
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || st != 0)
        return 1;
    if (argc > 2) {
        pid = vfork();
        if (pid == 0) {
            int log = open("child.log", O_WRONLY | O_CREAT | O_TRUNC, 0644);
            execl("/nonexistent/prog", "prog", (char *)NULL);
            write(log, "exec failed\n", 12);
            if (argv[2][0] == 'e') /* "exit": its atexit handlers run on the parent's memory */
                exit(3);
            _exit(3);
        }
        if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 3)
            return 1;
    }
    if (write(out, "parent\n", 7) != 7)
        return 1;
    return close(out) || close(p[0]) || close(p[1]);
}
