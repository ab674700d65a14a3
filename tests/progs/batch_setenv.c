/* An app that points IOTRACE_DIR and IOTRACE_OUT elsewhere (argv[1]) and then starts children:
 * one forked (no exec) that writes, one exec'd through execve with the changed environment,
 * one posix_spawn'd.  Their logs must stay in the trace. */
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc > 2) { /* the exec'd child */
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        return write(fd, "child\n", 6) == 6 ? 0 : 1;
    }
    setenv("IOTRACE_DIR", argv[1], 1);
    setenv("IOTRACE_OUT", argv[1], 1);
    pid_t p = fork();
    if (p == 0) {
        int fd = open("forked.out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        _exit(write(fd, "forked\n", 7) == 7 ? 0 : 1);
    }
    int st;
    waitpid(p, &st, 0);
    p = fork();
    if (p == 0) {
        char *args[] = {argv[0], argv[1], "execd.out", NULL};
        execve(argv[0], args, environ);
        _exit(127);
    }
    waitpid(p, &st, 0);
    char *args[] = {argv[0], argv[1], "spawned.out", NULL};
    if (posix_spawn(&p, argv[0], NULL, NULL, args, environ) == 0)
        waitpid(p, &st, 0);
    return 0;
}
