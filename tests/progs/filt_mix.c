/* A bit of every class for -e trace= and --path: two files written and read by descriptor, a
 * rename, stats, a stdio file, and one raw syscall write (a bypass the stracer must report
 * whatever is filtered). */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
    int a = open("a.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int b = open("b.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (write(a, "aaaa", 4) != 4 || write(b, "bb", 2) != 2 || pwrite(a, "x", 1, 10) != 1)
        return 1;
    close(a);
    close(b);
    struct stat st;
    stat("a.txt", &st);
    stat("b.txt", &st);
    rename("b.txt", "b2.txt");
    FILE *f = fopen("c.txt", "w");
    fprintf(f, "%d\n", 42);
    fclose(f);
    char buf[16];
    a = open("a.txt", O_RDONLY);
    if (read(a, buf, sizeof buf) != 11)
        return 2;
    close(a);
    syscall(SYS_write, 1, "raw\n", 4);
    return 0;
}
