/* A mapping made before fork and used in the child: the child's munmap/msync must name the file
 * in the child's own log (whose string ids start afresh). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    int fd = open("shared.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
    ftruncate(fd, 8192);
    char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    pid_t pid = fork();
    if (pid == 0) {
        memcpy(p + 4096, "child", 5);
        msync(p + 4096, 4096, MS_SYNC);
        munmap(p, 8192);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("parent sees %.5s\n", p + 4096);
    munmap(p, 8192);
    return WEXITSTATUS(status);
}
