/* stdio and descriptor calls on the same file, and a forked child that goes on writing to a
 * stream whose buffer it inherited. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    FILE *f = fopen("mix.txt", "w");
    fprintf(f, "hello stdio\n"); /* 12 bytes */
    fflush(f);
    write(fileno(f), "raw\n", 4); /* at 12: the shim never saw stdio move the offset */
    fclose(f);

    int fd = open("mix.txt", O_RDONLY);
    FILE *g = fdopen(fd, "r");
    char b[8], c[4];
    fgets(b, sizeof b, g);        /* stdio reads the whole 16-byte file into its buffer */
    ssize_t n = read(fd, c, 4);   /* at 16: end of file */
    fclose(g);

    FILE *h = fopen("fork.txt", "w");
    fwrite("0123456789", 1, 10, h); /* buffered, not yet written */
    pid_t p = fork();
    if (p == 0) {
        fwrite("child", 1, 5, h); /* the child's stream is at 10 */
        fclose(h);
        _exit(0);
    }
    waitpid(p, NULL, 0);
    fclose(h);
    printf("read %zd\n", n);
    return 0;
}
