/* Ends by a raw exit_group syscall, as a program that bypasses libc's exit does: none of the
 * shim's exit hooks run.  A forked child first does the same.  Exits with 3. */
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    int fd = open("out.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t kid = fork();
    if (kid == 0) {
        if (write(fd, "child", 5) != 5)
            syscall(SYS_exit_group, 1);
        syscall(SYS_exit_group, 0);
    }
    waitpid(kid, NULL, 0);
    if (write(fd, "parent", 6) != 6)
        return 1;
    syscall(SYS_exit_group, 3);
    return 0;
}
