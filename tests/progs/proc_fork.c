/* fork without exec: parent and child each write their own file. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    int fd = open("parent.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    write(fd, "before\n", 7);
    pid_t p = fork();
    if (p == 0) {
        int c = open("child.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        write(c, "child!\n", 7);
        write(fd, "from child\n", 11);
        close(c);
        _exit(3);
    }
    int st;
    waitpid(p, &st, 0);
    write(fd, "after\n", 6);
    close(fd);
    printf("child status %d\n", WEXITSTATUS(st));
    return 0;
}
