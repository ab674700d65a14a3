/* fork without exec: parent and child each make one raw write to a file the parent opened
 * through libc; the child then writes through libc (covered). */
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int fd = open(argc > 1 ? argv[1] : "fork.out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid = fork();
    if (pid == 0) {
        syscall(SYS_write, fd, "child\n", 6);
        write(fd, "child2\n", 7);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    syscall(SYS_write, fd, "parent\n", 7);
    close(fd);
    return 0;
}
