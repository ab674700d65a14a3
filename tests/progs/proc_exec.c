/* Exec a child with an empty environment: the shim puts itself back, the child stays traced. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "child")) {
        int fd = open("from_child.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        write(fd, "hello", 5);
        close(fd);
        printf("child env LD_PRELOAD=%s\n", getenv("LD_PRELOAD") ? "set" : "unset");
        return 0;
    }
    pid_t p = fork();
    if (p == 0) {
        char *args[] = {argv[0], "child", NULL};
        char *env[] = {NULL};
        execve(argv[0], args, env);
        _exit(99);
    }
    int st;
    waitpid(p, &st, 0);
    execl("/nonexistent/prog", "prog", (char *)NULL); /* fails: ENOENT */
    return WEXITSTATUS(st);
}
