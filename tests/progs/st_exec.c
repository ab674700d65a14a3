/* A child started by a raw execve with an empty environment: it lost LD_PRELOAD (the shim's
 * exec wrappers never ran), so its I/O is missed; the loader's is not. */
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc > 2 && !strcmp(argv[2], "child")) {
        int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        write(fd, "child\n", 6);
        close(fd);
        return 0;
    }
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {argv[0], argv[1], "child", NULL};
        char *env[] = {NULL};
        syscall(SYS_execve, "/proc/self/exe", args, env);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
